//! What the file sources and sinks share: opening an input (gzipped or not,
//! told by its content), reading it with a cap on the length of a line, and
//! writing an output that replaces its target only when the input ends.

pub mod csv;
mod decode;
pub mod jsonl;

use super::{DrainReason, StageError};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// How many records a file source hands over per poll.
const BATCH: usize = 1024;

/// The longest line a file source reads by default: far longer than any
/// real row, short enough that a file without newlines cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// The first bytes of a gzip stream (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn cannot(what: &str, path: &Path, error: io::Error) -> StageError {
    StageError::fatal(format!("cannot {what} {}: {error}", path.display())).with_source(error)
}

/// Opens `path` for reading, decompressing it if its content is gzip
/// (whatever its name), with lines capped at `max_line_bytes`. Unbuffered
/// on top: its reader buffers it.
/// After reading a file again to where a resumed source continues: an
/// error unless it got to `wanted` (the file is shorter, or changed).
fn check_seek(
    path: &Path,
    got: crate::event::SourcePosition,
    wanted: crate::event::SourcePosition,
) -> Result<(), StageError> {
    if got == wanted {
        return Ok(());
    }
    Err(StageError::fatal(format!(
        "{} changed since the interrupted run: it read {} records to line {} and byte {} there, and reading it again gives {} records to line {} and byte {}",
        path.display(),
        wanted.records,
        wanted.line,
        wanted.offset,
        got.records,
        got.line,
        got.offset
    )))
}

fn open(path: &Path, max_line_bytes: usize) -> Result<Box<dyn Read + Send>, StageError> {
    open_at(path, max_line_bytes, 0, 0)
}

/// The file at `path` (decompressed), from byte `offset` on, which begins
/// line `line + 1`: where a resumed source continues. A plain file is
/// seeked; a gzipped one is decompressed up to there. The byte before
/// `offset` must end a line (else the file is not the one read before).
fn open_at(
    path: &Path,
    max_line_bytes: usize,
    offset: u64,
    line: u64,
) -> Result<Box<dyn Read + Send>, StageError> {
    use std::io::Seek;
    let mut file = File::open(path).map_err(|e| cannot("open", path, e))?;
    let mut head = [0u8; 2];
    let gzip = matches!(file.read(&mut head), Ok(2) if head == GZIP_MAGIC);
    let mut raw: Box<dyn Read + Send> = if gzip {
        file.rewind().map_err(|e| cannot("read", path, e))?;
        let mut decoded =
            flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(64 << 10, file));
        let before = offset.saturating_sub(1);
        let skipped = io::copy(&mut (&mut decoded).take(before), &mut io::sink())
            .map_err(|e| cannot("read", path, e))?;
        if skipped < before {
            return Err(moved(path, offset));
        }
        Box::new(decoded)
    } else {
        file.seek(io::SeekFrom::Start(offset.saturating_sub(1)))
            .map_err(|e| cannot("read", path, e))?;
        Box::new(BufReader::with_capacity(64 << 10, file))
    };
    if offset > 0 {
        let mut last = [0u8; 1];
        let read = raw.read(&mut last).map_err(|e| cannot("read", path, e))?;
        if read != 1 || last[0] != b'\n' {
            return Err(moved(path, offset));
        }
    }
    let mut capped = CappedLines::new(raw, max_line_bytes);
    capped.lines = line;
    Ok(Box::new(capped))
}

/// A resumed source's file does not end a line where the interrupted run
/// had read to.
fn moved(path: &Path, offset: u64) -> StageError {
    StageError::fatal(format!(
        "{} changed since the interrupted run: it had read {offset} bytes, to the end of a line, and the file does not end a line there",
        path.display()
    ))
}

/// The error a [`CappedLines`] reader gives when a line is too long.
#[derive(Debug)]
struct LineTooLong {
    cap: usize,
    /// The line (from 1) that is too long.
    line: u64,
}

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} is longer than {} bytes", self.line, self.cap)
    }
}

impl std::error::Error for LineTooLong {}

/// The line a [`CappedLines`] reader found too long, if that is what
/// `error` is.
fn line_too_long(error: &io::Error) -> Option<u64> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<LineTooLong>())
        .map(|too_long| too_long.line)
}

/// The error a source fails with for a line longer than its cap.
fn too_long(path: &Path, line: u64, cap: usize) -> StageError {
    StageError::fatal(format!(
        "{} line {line} is longer than {cap} bytes, the most a line may hold",
        path.display()
    ))
}

/// A reader that fails once a line (bytes between two `\n`) grows longer
/// than its cap, so that a file without newlines is not read into memory
/// whole.
struct CappedLines<R> {
    inner: R,
    cap: usize,
    /// Bytes since the last `\n`.
    run: usize,
    /// `\n`s passed.
    lines: u64,
}

impl<R> CappedLines<R> {
    fn new(inner: R, cap: usize) -> Self {
        CappedLines {
            inner,
            cap: cap.max(1),
            run: 0,
            lines: 0,
        }
    }

    fn too_long(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            LineTooLong {
                cap: self.cap,
                line: self.lines + 1,
            },
        )
    }
}

impl<R: Read> Read for CappedLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &buf[..read]) {
            if self.run + (end - start) > self.cap {
                return Err(self.too_long());
            }
            self.run = 0;
            self.lines += 1;
            start = end + 1;
        }
        self.run += read - start;
        if self.run > self.cap {
            return Err(self.too_long());
        }
        Ok(read)
    }
}

/// `bytes` as text for a message: as it is if it is UTF-8, escaped if not.
fn shown(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.escape_ascii().to_string(),
    }
}

/// A row that could not be decoded, for the error lane: its message names
/// the file, the line, the reason and the row's text; the row's text is
/// kept as the input that failed, so that a fixed copy can be driven again.
fn bad_row(path: &Path, line: u64, reason: &str, text: &str) -> StageError {
    StageError::permanent(format!(
        "{} line {line}: {reason}: `{text}`",
        path.display()
    ))
    .with_input(text)
}

/// How an output file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Into a temporary file, renamed over the target at the end.
    Replace { partial: bool },
    /// Appended to the target as it goes.
    Append,
}

/// An output file: a temporary file beside its target that replaces the
/// target atomically when the input ends (or, in append mode, the target
/// itself).
#[derive(Debug)]
struct OutputFile {
    path: PathBuf,
    temporary: PathBuf,
    mode: Mode,
    writer: Option<BufWriter<File>>,
    /// Whether the target held something before (in append mode).
    appending_to_content: bool,
}

impl OutputFile {
    fn new(path: PathBuf) -> Self {
        OutputFile {
            temporary: crate::journal::disk::temporary_beside(&path),
            path,
            mode: Mode::Replace { partial: false },
            writer: None,
            appending_to_content: false,
        }
    }

    /// Whether a stopped run replaces the target (in replace mode).
    fn write_partial(&mut self, partial: bool) {
        if let Mode::Replace { .. } = self.mode {
            self.mode = Mode::Replace { partial };
        }
    }

    /// Appends to the target as it goes instead of replacing it.
    fn append(&mut self) {
        self.mode = Mode::Append;
    }

    /// What its effects are worth after a crash: a file that replaces its
    /// target at the end is written whole again by a resumed run; one
    /// appended to as it goes may get again what followed its last receipt.
    fn delivery(&self) -> super::Delivery {
        match self.mode {
            Mode::Replace { .. } => super::Delivery::Rebuilt,
            Mode::Append => super::Delivery::AtLeastOnce,
        }
    }

    /// The open writer, opening it first if need be.
    fn writer(&mut self) -> Result<&mut BufWriter<File>, StageError> {
        if self.writer.is_none() {
            if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| cannot("create", parent, e))?;
            }
            let file = match self.mode {
                Mode::Replace { .. } => {
                    crate::journal::disk::remove_stale_temporaries(&self.path);
                    File::create(&self.temporary)
                        .map_err(|e| cannot("create", &self.temporary, e))?
                }
                Mode::Append => {
                    let file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)
                        .map_err(|e| cannot("open", &self.path, e))?;
                    self.appending_to_content = file
                        .metadata()
                        .map_err(|e| cannot("read", &self.path, e))?
                        .len()
                        > 0;
                    file
                }
            };
            self.writer = Some(BufWriter::with_capacity(64 << 10, file));
        }
        match &mut self.writer {
            Some(writer) => Ok(writer),
            // invariant: opened just above.
            None => Err(StageError::fatal("the output file is not open")),
        }
    }

    /// Flushes what is buffered (after each batch, in append mode, so that
    /// what was delivered is in the file).
    fn flush(&mut self) -> Result<(), StageError> {
        if self.mode == Mode::Append
            && let Some(writer) = &mut self.writer
        {
            writer.flush().map_err(|e| cannot("write", &self.path, e))?;
        }
        Ok(())
    }

    /// At the end of the input: replaces the target (or, in append mode,
    /// syncs it). A stopped run leaves the target as it was unless partial
    /// results were asked for; a replay that repeats effects replaces it.
    fn finish(&mut self, reason: DrainReason) -> Result<(), StageError> {
        let commit = match (self.mode, reason) {
            (Mode::Append, _) | (_, DrainReason::EndOfInput) => true,
            (Mode::Replace { partial }, DrainReason::Stopped) => partial,
            // Deliveries repeated in a replay were asked for.
            (Mode::Replace { .. }, DrainReason::Replay) => self.writer.is_some(),
        };
        if !commit {
            if self.writer.take().is_some() {
                let _ = std::fs::remove_file(&self.temporary);
            }
            return Ok(());
        }
        // A run with no rows still replaces the target, with an empty file.
        let mut writer = match self.writer.take() {
            Some(writer) => writer,
            None => {
                self.writer()?;
                match self.writer.take() {
                    Some(writer) => writer,
                    None => return Ok(()),
                }
            }
        };
        let written = match self.mode {
            Mode::Append => &self.path,
            Mode::Replace { .. } => &self.temporary,
        };
        writer.flush().map_err(|e| cannot("write", written, e))?;
        let file = writer
            .into_inner()
            .map_err(|e| cannot("write", written, e.into_error()))?;
        crate::supervise::blocking(|| file.sync_all()).map_err(|e| cannot("sync", written, e))?;
        drop(file);
        if let Mode::Replace { .. } = self.mode {
            std::fs::rename(&self.temporary, &self.path)
                .map_err(|e| cannot("replace", &self.path, e))?;
            // Best effort: the rename is done; a directory that cannot be
            // synced (where the platform has no such thing) leaves it as it is.
            let parent = self.path.parent().filter(|p| !p.as_os_str().is_empty());
            let _ = crate::journal::disk::sync_dir(parent.unwrap_or(Path::new(".")));
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        // A failed or cancelled stage leaves no temporary file behind.
        if matches!(self.mode, Mode::Replace { .. }) && self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8], cap: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        // Small reads, so that lines straddle them.
        let mut reader = CappedLines::new(io::Cursor::new(text.to_vec()), cap);
        let mut buf = [0u8; 3];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn lines_up_to_the_cap_pass_and_a_longer_one_fails_wherever_it_is() {
        assert_eq!(read_all(b"abcd\nefgh\n", 4).unwrap(), b"abcd\nefgh\n");
        assert_eq!(read_all(b"abcd\nefgh", 4).unwrap(), b"abcd\nefgh");
        for (text, line) in [
            (&b"abcde\nx\n"[..], 1),
            (b"x\nabcde\n", 2),
            (b"x\nabcde", 2),
            (b"abcdefghij", 1),
        ] {
            let error = read_all(text, 4).unwrap_err();
            assert_eq!(line_too_long(&error), Some(line), "{text:?}");
        }
        // Found within one read, ahead of the lines before it being used.
        let mut reader = CappedLines::new(io::Cursor::new(b"ab\ncd\nabcdef\n".to_vec()), 4);
        let mut buf = [0u8; 64];
        assert_eq!(line_too_long(&reader.read(&mut buf).unwrap_err()), Some(3));
        assert_eq!(line_too_long(&io::Error::other("x")), None);
    }

    #[test]
    fn gzip_is_told_by_content_not_by_name() {
        let dir = std::env::temp_dir().join(format!("obzenflow-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let zipped = dir.join("plain-name.csv");
        let mut encoder =
            flate2::write::GzEncoder::new(File::create(&zipped).unwrap(), Default::default());
        encoder.write_all(b"a,b\n1,2\n").unwrap();
        encoder.finish().unwrap();
        let plain = dir.join("looks-zipped.csv.gz");
        std::fs::write(&plain, b"a,b\n3,4\n").unwrap();
        let text = |path: &Path| {
            let mut text = String::new();
            open(path, 100).unwrap().read_to_string(&mut text).unwrap();
            text
        };
        assert_eq!(text(&zipped), "a,b\n1,2\n");
        assert_eq!(text(&plain), "a,b\n3,4\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
