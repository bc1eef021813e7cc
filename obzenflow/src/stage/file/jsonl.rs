//! JSON-lines files in and out (feature `files`): one JSON value per line.
//! [`read`] decodes each line into your type; [`write()`] writes each input
//! as one line and replaces the target file only when its input ends. The
//! runner's `--errors-to FILE` writes a run's error lane in this format, so
//! that `jsonl::read::<ErrorRecord>` can drive fixed records again.

use super::{
    BATCH, MAX_LINE_BYTES, OutputFile, bad_row, cannot, line_too_long, open, shown, too_long,
};
use crate::event::{Payload, Receipt, SourcePosition};
use crate::stage::{DrainReason, Poll, Sink, Source, StageError};
use std::io::{BufRead, Write as _};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// A source of the lines of a JSON-lines file, each decoded into a `T`.
/// See [`read`].
pub struct JsonlSource<T> {
    path: PathBuf,
    max_line_bytes: usize,
    expected: Option<u64>,
    reader: Option<Box<dyn BufRead + Send>>,
    line: Vec<u8>,
    /// A bad line found after a batch's good ones: given at the next poll,
    /// with the position after it (the batch's own stops before it).
    failed: Option<(StageError, SourcePosition)>,
    position: SourcePosition,
    ended: bool,
    _rows: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for JsonlSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSource")
            .field("path", &self.path)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// A source that reads the JSON-lines file at `path` once the flow starts
/// and decodes each line into a `T` (blank lines are skipped).
///
/// As [`csv::read`](super::csv::read): gzip told by content; a line that
/// does not decode goes to the error lane with the file, its line number,
/// the reason and its text; a missing file and a line longer than
/// [`max_line_bytes`](JsonlSource::max_line_bytes) fail the stage; its
/// position (records, lines, bytes) is journaled after each batch. An
/// empty file is an empty input (JSON lines have no header).
pub fn read<T>(path: impl Into<PathBuf>) -> JsonlSource<T> {
    JsonlSource {
        path: path.into(),
        max_line_bytes: MAX_LINE_BYTES,
        expected: None,
        reader: None,
        line: Vec::new(),
        failed: None,
        position: SourcePosition::default(),
        ended: false,
        _rows: PhantomData,
    }
}

impl<T> JsonlSource<T> {
    /// The longest line it reads (4 MiB by default).
    pub fn max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes.max(1);
        self
    }

    /// Declares how many records the file holds, for the progress bar; the
    /// flow holds the source to it, as [`csv`](super::csv::CsvSource::expected_rows).
    pub fn expected_records(mut self, records: u64) -> Self {
        self.expected = Some(records);
        self
    }

    /// The file it reads.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl<T: 'static> Source<T> for JsonlSource<T> {
    async fn next(&mut self) -> Result<Poll<T>, StageError>
    where
        T: Payload,
    {
        if let Some((error, after)) = self.failed.take() {
            self.position = after;
            return Err(error);
        }
        if self.ended {
            return Ok(Poll::End);
        }
        if self.reader.is_none() {
            self.open()?;
        }
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            let Some(reader) = self.reader.as_mut() else {
                break;
            };
            let before = self.position;
            self.line.clear();
            let read =
                reader.read_until(b'\n', &mut self.line).map_err(|error| {
                    match line_too_long(&error) {
                        Some(line) => too_long(&self.path, line, self.max_line_bytes),
                        None => cannot("read", &self.path, error),
                    }
                })?;
            if read == 0 {
                self.reader = None;
                self.ended = true;
                break;
            }
            self.position.line += 1;
            self.position.offset += read as u64;
            let text = self.line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            self.position.records += 1;
            match serde_json::from_slice::<T>(text) {
                Ok(record) => batch.push(record),
                Err(error) => {
                    let error = bad_row(
                        &self.path,
                        self.position.line,
                        &error.to_string(),
                        &shown(text),
                    );
                    if batch.is_empty() {
                        return Err(error);
                    }
                    self.failed = Some((error, self.position));
                    self.position = before;
                    break;
                }
            }
        }
        Ok(if batch.is_empty() {
            Poll::End
        } else {
            Poll::Events(batch)
        })
    }

    fn expected_count(&self) -> Option<u64> {
        self.expected
    }

    fn position(&self) -> Option<SourcePosition> {
        Some(self.position)
    }

    /// Continues at `position`'s byte (seeked to, or decompressed up to).
    fn seek(&mut self, position: SourcePosition) -> Result<(), StageError> {
        let input = super::open_at(
            &self.path,
            self.max_line_bytes,
            position.offset,
            position.line,
        )?;
        self.reader = Some(Box::new(std::io::BufReader::with_capacity(64 << 10, input)));
        self.position = position;
        Ok(())
    }
}

impl<T> JsonlSource<T> {
    fn open(&mut self) -> Result<(), StageError> {
        self.reader = Some(Box::new(std::io::BufReader::with_capacity(
            64 << 10,
            open(&self.path, self.max_line_bytes)?,
        )));
        Ok(())
    }
}

/// A sink that writes each input as one JSON line. See [`write()`].
#[derive(Debug)]
pub struct JsonlSink {
    file: OutputFile,
    rows: u64,
}

/// A sink that writes each input as one line of JSON to the file at `path`:
/// into a temporary file beside it that replaces it atomically when the
/// input ends, as [`csv::write`](super::csv::write) does (a stopped,
/// failed or cancelled run leaves the target as it was, unless
/// [`write_partial`](JsonlSink::write_partial)); or appended as it goes
/// with [`append`](JsonlSink::append).
pub fn write(path: impl Into<PathBuf>) -> JsonlSink {
    JsonlSink {
        file: OutputFile::new(path.into()),
        rows: 0,
    }
}

impl JsonlSink {
    /// Whether a stopped run replaces the target with its partial output.
    pub fn write_partial(mut self, partial: bool) -> Self {
        self.file.write_partial(partial);
        self
    }

    /// Appends to the target as records arrive, flushed after each batch.
    pub fn append(mut self) -> Self {
        self.file.append();
        self
    }
}

impl<T> Sink<T> for JsonlSink {
    async fn consume(&mut self, record: T) -> Result<Receipt, StageError>
    where
        T: Payload,
    {
        let writer = self.file.writer()?;
        if let Err(error) = serde_json::to_writer(&mut *writer, &record) {
            return Err(StageError::fatal(format!(
                "cannot write a record to {}: {error}",
                self.file.path.display()
            )));
        }
        if let Err(error) = writer.write_all(b"\n") {
            return Err(cannot("write", &self.file.path, error));
        }
        self.rows += 1;
        Ok(Receipt::with_detail(format!("line {}", self.rows)))
    }

    async fn flush(&mut self) -> Result<(), StageError> {
        self.file.flush()
    }

    fn delivery(&self) -> crate::stage::Delivery {
        self.file.delivery()
    }

    async fn drain(&mut self, reason: DrainReason) -> Result<(), StageError> {
        self.file.finish(reason)
    }
}
