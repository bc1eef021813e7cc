//! The durable journal: framed, checksummed records in segment files, with an
//! explicit fsync policy and recovery on open.
//!
//! A journal is a directory of segment files named by the sequence number of
//! their first record (`00000000000000000000.seg`). A segment starts with a
//! 16-byte header (`OBZFJNL\0`, the format version, 4 reserved bytes); then
//! blocks, each a length, a CRC32C checksum and a run of records stored by
//! column (timestamps, parents and bodies, each as runs; bodies encoded with
//! postcard; the layout is in `block.rs`). A stage's journal thread writes
//! the blocks that arrived while it was busy with one write and one fsync (a
//! group commit).
//!
//! On open, every segment is read and
//! checked: blocks must continue each other's sequence numbers and every
//! checksum must match. A damaged block at the very end of the last segment
//! is a torn write (the process died mid-append, before the append was
//! acknowledged): it is cut off, and a warning says where. Damage anywhere
//! else is corruption, reported with the file and the byte offset of the
//! block; no content makes this code panic, and no damaged record is ever
//! returned as valid.
//!
//! Durability follows [`FsyncPolicy`]: by default every appended batch is
//! fsynced before `append` returns (group commit), and a segment's directory
//! is fsynced when the segment is created. Files are created owner-only.

use super::block::{
    BLOCK_HEAD_LEN, BlockEncoder, FRAME_LEN, MAX_BLOCK, MAX_RECORD, Stored, parse_block,
};
use crate::event::{Body, Envelope, EventId, Parents, Payload};
use serde::de::DeserializeOwned;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A segment starts with a 16-byte header: these magic bytes, the format
/// version, the journal's identity (which stage's output it holds), and a
/// CRC32C of those 12 bytes, all little-endian.
const MAGIC: &[u8; 4] = b"OBZJ";
/// How format 3 and earlier began, to tell an older file from damage.
const OLDER_MAGIC: &[u8; 8] = b"OBZFJNL\0";
/// The format version this code writes, and the only one it reads.
pub const FORMAT_VERSION: u32 = 4;
const HEADER_LEN: u64 = 16;

/// When appended records reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Never fsync: the OS writes when it likes. Fastest; a machine crash
    /// may lose recent records (a process crash does not).
    Never,
    /// Fsync every appended batch before `append` returns (group commit).
    #[default]
    EveryBatch,
    /// Fsync at most once per interval; a crash may lose up to one interval.
    Interval(Duration),
}

/// How a disk journal writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskJournalOptions {
    /// Start a new segment once the current one reaches this many bytes.
    pub segment_bytes: u64,
    /// When records reach the disk.
    pub fsync: FsyncPolicy,
    /// Whose journal it is, written in every segment's header: a run writes
    /// each stage's [`journal_identity`], so that a journal read as another
    /// stage's is refused.
    pub identity: u32,
}

impl Default for DiskJournalOptions {
    fn default() -> Self {
        DiskJournalOptions {
            segment_bytes: 64 * 1024 * 1024,
            fsync: FsyncPolicy::EveryBatch,
            identity: 0,
        }
    }
}

/// The identity of the journal of stage number `index` named `name`, as
/// its segments' headers carry it.
pub fn journal_identity(index: usize, name: &str) -> u32 {
    crc32c::crc32c(format!("{index}:{name}").as_bytes())
}

/// What can go wrong with a disk journal.
#[derive(Debug, thiserror::Error)]
pub enum DiskJournalError {
    /// The operating system refused an operation.
    #[error("journal file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Damage that is not a torn tail: the journal cannot be trusted past it.
    #[error("journal file {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Where the damaged record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Written by a newer ObzenFlow.
    #[error(
        "journal file {path} has format version {found}, and this ObzenFlow reads versions up to {FORMAT_VERSION}; use a newer ObzenFlow"
    )]
    NewerFormat {
        /// The segment file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// Written by an older ObzenFlow, in a format this one no longer reads.
    #[error(
        "journal file {path} has format version {found}, which this ObzenFlow (format {FORMAT_VERSION}) no longer reads; run the flow again to archive it anew"
    )]
    OlderFormat {
        /// The segment file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// A record too large to frame.
    #[error(
        "a record of {bytes} bytes is larger than a journal record may be ({MAX_RECORD} bytes)"
    )]
    RecordTooLarge {
        /// Its encoded size.
        bytes: usize,
    },
    /// A record made from more events than a journal record may name.
    #[error("a record made from {parents} events names more parents than a journal record may")]
    TooManyParents {
        /// How many it names.
        parents: usize,
    },
    /// A record whose sequence number does not continue the journal's.
    #[error("appending sequence {got} where {expected} comes next")]
    OutOfSequence {
        /// The sequence number the next record must have.
        expected: u64,
        /// The one it has.
        got: u64,
    },
    /// A body its payload type cannot serialize.
    #[error("cannot encode record {seq}: {reason}")]
    Unencodable {
        /// The record's sequence number.
        seq: u64,
        /// What serde said.
        reason: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> DiskJournalError + '_ {
    move |source| DiskJournalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What opening a journal found.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Recovery {
    /// Valid records found.
    pub records: u64,
    /// The identity its segments' headers carry (see
    /// [`DiskJournalOptions::identity`]), if it has a segment.
    pub identity: Option<u32>,
    /// A torn tail that was cut off: the segment, where it was cut, and how
    /// many bytes were dropped.
    pub truncated: Option<(PathBuf, u64, u64)>,
}

/// A journal in a directory of segment files, with one writer.
#[derive(Debug)]
pub struct DiskJournal<T> {
    dir: PathBuf,
    options: DiskJournalOptions,
    file: File,
    path: PathBuf,
    size: u64,
    next_seq: u64,
    last_sync: Instant,
    encoder: BlockEncoder,
    buffer: Vec<u8>,
    /// Directories holding names created since the last sync: fsynced with
    /// the next one, so that its records are found after a crash.
    unsynced_dirs: Vec<PathBuf>,
    _payload: PhantomData<fn(T)>,
}

impl<T: Payload> DiskJournal<T> {
    /// Opens the journal in `dir`, creating it if needed; recovers a torn
    /// tail and refuses corruption. The names it creates (directories, a
    /// first segment) are made durable by its first [`sync`](Self::sync),
    /// with the records they hold: opening costs no fsync, and a crash
    /// before the first sync leaves at most an empty journal.
    pub fn open(
        dir: &Path,
        options: DiskJournalOptions,
    ) -> Result<(Self, Recovery), DiskJournalError> {
        let mut unsynced_dirs = create_private_dir(dir)?;
        let scan = scan(dir, true, |path, offset, record| {
            decode::<T>(path, offset, record).map(drop)
        })?;
        Self::opened(dir, options, scan, &mut unsynced_dirs)
    }

    /// Opens the journal as [`open`](Self::open) does, showing `visit`
    /// each record it reads on the way (what a resumed run learns its
    /// positions from, in the same pass). Data records are shown by their
    /// sequence number and parents, their payloads not decoded (each is
    /// checked against its checksum, and decoded when it is read).
    pub(crate) fn open_visiting(
        dir: &Path,
        options: DiskJournalOptions,
        mut visit: impl FnMut(Visited<'_, T>),
    ) -> Result<(Self, Recovery), DiskJournalError> {
        let mut unsynced_dirs = create_private_dir(dir)?;
        let mut checked = false;
        let scan = scan(dir, true, |path, offset, record| {
            if record.body.first() == Some(&DATA_TAG) {
                if !checked {
                    // One payload decoded, so that a payload type changed
                    // since is refused here, before anything runs.
                    checked = true;
                    decode::<T>(path, offset, record.clone())?;
                }
                visit(Visited::Data {
                    seq: record.seq,
                    parents: &record.parents,
                });
                return Ok(());
            }
            decode::<T>(path, offset, record).map(|envelope| visit(Visited::Other(&envelope)))
        })?;
        Self::opened(dir, options, scan, &mut unsynced_dirs)
    }

    fn opened(
        dir: &Path,
        options: DiskJournalOptions,
        scan: Scan,
        unsynced_dirs: &mut Vec<PathBuf>,
    ) -> Result<(Self, Recovery), DiskJournalError> {
        let mut unsynced_dirs = std::mem::take(unsynced_dirs);
        if let (Some(found), Some((path, _))) = (scan.recovery.identity, &scan.last_segment)
            && found != options.identity
        {
            return Err(DiskJournalError::Corrupt {
                path: path.clone(),
                offset: 8,
                reason: format!(
                    "the journal is journal {found:08x}, not journal {:08x} it was opened as",
                    options.identity
                ),
            });
        }
        let (path, size) = match scan.last_segment {
            Some((path, size)) => (path, size),
            None => {
                let path = segment_path(dir, 0);
                let size = create_segment(&path, options.identity)?;
                unsynced_dirs.push(dir.to_owned());
                (path, size)
            }
        };
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let journal = DiskJournal {
            dir: dir.to_owned(),
            options,
            file,
            path,
            size,
            next_seq: scan.next_seq,
            last_sync: Instant::now(),
            encoder: BlockEncoder::new(scan.next_seq),
            buffer: Vec::new(),
            unsynced_dirs,
            _payload: PhantomData,
        };
        Ok((journal, scan.recovery))
    }

    /// The sequence number the next record must have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends a batch (sequence numbers must continue the journal's), then
    /// fsyncs as the policy says.
    pub fn append(&mut self, batch: &[Envelope<T>]) -> Result<(), DiskJournalError> {
        self.append_all([batch])
    }

    /// Appends several batches as one block, with one write and (as the
    /// policy says) one fsync: a group commit. A segment rolls over only
    /// between appends, so one may run past its size by an append.
    pub fn append_all<'a>(
        &mut self,
        batches: impl IntoIterator<Item = &'a [Envelope<T>]>,
    ) -> Result<(), DiskJournalError>
    where
        T: 'a,
    {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        let written = match self.encoder.encode(&mut buffer, batches) {
            Ok(()) => self.append_encoded(&buffer, self.encoder.next_seq()),
            Err(error) => Err(error),
        };
        self.buffer = buffer;
        written
    }

    /// Appends blocks a [`BlockEncoder`] made of the records that continue
    /// this journal up to (not including) `end`, with one write and (as the
    /// policy says) one fsync.
    pub(crate) fn append_encoded(
        &mut self,
        blocks: &[u8],
        end: u64,
    ) -> Result<(), DiskJournalError> {
        if blocks.is_empty() {
            return Ok(());
        }
        if self.size >= self.options.segment_bytes {
            self.roll(self.next_seq)?;
        }
        self.file.write_all(blocks).map_err(io_error(&self.path))?;
        self.size += blocks.len() as u64;
        self.next_seq = end;
        self.encoder.continue_at(end);
        let due = match self.options.fsync {
            FsyncPolicy::Never => false,
            FsyncPolicy::EveryBatch => true,
            FsyncPolicy::Interval(interval) => self.last_sync.elapsed() >= interval,
        };
        if due {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes to `file` from now on (to make writes fail in tests).
    #[cfg(test)]
    pub(crate) fn write_to(&mut self, file: File) {
        self.file = file;
    }

    /// Fsyncs what was appended.
    pub fn sync(&mut self) -> Result<(), DiskJournalError> {
        self.file.sync_data().map_err(io_error(&self.path))?;
        self.sync_names()?;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Makes the names the journal created durable now, rather than with
    /// its next sync (a writer thread does it before the first records
    /// come, off the stage's path).
    pub(crate) fn sync_names(&mut self) -> Result<(), DiskJournalError> {
        for dir in &self.unsynced_dirs {
            sync_dir(dir)?;
        }
        self.unsynced_dirs.clear();
        Ok(())
    }

    fn roll(&mut self, first_seq: u64) -> Result<(), DiskJournalError> {
        self.sync()?;
        let path = segment_path(&self.dir, first_seq);
        self.size = create_segment(&path, self.options.identity)?;
        self.unsynced_dirs.push(self.dir.clone());
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        self.path = path;
        Ok(())
    }
}

/// The first byte of a stored data body: postcard writes an enum's variant
/// index first, and `Body::Data` is the first variant (a unit test holds
/// this to the encoding).
const DATA_TAG: u8 = 0;

/// A record a journal being opened shows its visitor.
#[derive(Debug)]
pub(crate) enum Visited<'a, T> {
    /// A data record, its payload not decoded.
    Data { seq: u64, parents: &'a Parents },
    /// Any other record, decoded.
    Other(&'a Envelope<T>),
}

/// Every record of the journal in `dir`, in order, without changing it: a
/// torn tail is left where it is and not returned; corruption is an error.
pub fn read_journal<T: Payload>(
    dir: &Path,
) -> Result<(Vec<Envelope<T>>, Recovery), DiskJournalError> {
    let mut records = Vec::new();
    let scan = scan(dir, false, |path, offset, record| {
        records.push(decode::<T>(path, offset, record)?);
        Ok(())
    })?;
    Ok((records, scan.recovery))
}

/// One record as stored, its body not decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    /// Its sequence number.
    pub seq: u64,
    /// The events it was made from.
    pub parents: Parents,
    /// When it was appended.
    pub timestamp_micros: u64,
    /// The body, encoded with postcard.
    pub body: Vec<u8>,
}

/// A journal's records in order, read on a thread of their own and handed
/// over in batches as they are read: reading a journal this way holds one
/// segment file and a few batches in memory, not the whole journal. Checked
/// as [`read_journal`] checks; an error ends the stream. Dropping it stops
/// the reading.
#[derive(Debug)]
pub struct JournalStream<R> {
    batches: Option<mpsc::Receiver<Result<Streamed<R>, DiskJournalError>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    recovery: Option<Recovery>,
}

/// What the reading thread hands over.
#[derive(Debug)]
enum Streamed<R> {
    Records(Vec<R>),
    End(Recovery),
}

impl<R: Send + 'static> JournalStream<R> {
    /// Starts reading the journal in `dir`, `batch` records at a time, each
    /// made by `make`.
    fn start(
        dir: &Path,
        batch: usize,
        make: impl Fn(&Path, u64, Stored<'_>) -> Result<R, DiskJournalError> + Send + 'static,
    ) -> Result<Self, DiskJournalError> {
        Self::start_until(dir, batch, u64::MAX, move |path, offset, record| {
            make(path, offset, record).map(Some)
        })
    }

    /// Starts reading as [`start`](Self::start) does, up to (not including)
    /// record `until`; `make` may pass a record over (`None`).
    fn start_until(
        dir: &Path,
        batch: usize,
        until: u64,
        make: impl Fn(&Path, u64, Stored<'_>) -> Result<Option<R>, DiskJournalError> + Send + 'static,
    ) -> Result<Self, DiskJournalError> {
        let batch = batch.max(1);
        // Two batches in flight: the reader stays a step ahead, no more.
        let (sender, batches) = mpsc::sync_channel(2);
        let owned = dir.to_owned();
        let thread = std::thread::Builder::new()
            .name("journal reader".to_owned())
            .spawn(move || {
                let mut pending = Vec::with_capacity(batch);
                let mut gone = false;
                let mut reached = false;
                let scanned = scan(&owned, false, |path, offset, record| {
                    if record.seq >= until {
                        // Stop here: what follows is being written now.
                        reached = true;
                        return Err(DiskJournalError::Io {
                            path: path.to_owned(),
                            source: io::Error::other("the end of the range was reached"),
                        });
                    }
                    if let Some(made) = make(path, offset, record)? {
                        pending.push(made);
                    }
                    if pending.len() >= batch {
                        let full = std::mem::replace(&mut pending, Vec::with_capacity(batch));
                        if sender.send(Ok(Streamed::Records(full))).is_err() {
                            // Whoever read the stream dropped it: stop.
                            gone = true;
                            return Err(DiskJournalError::Io {
                                path: path.to_owned(),
                                source: io::Error::other("the stream was dropped"),
                            });
                        }
                    }
                    Ok(())
                });
                if gone {
                    return;
                }
                let scanned = match scanned {
                    Err(_) if reached => Ok(None),
                    scanned => scanned.map(Some),
                };
                let _ = match scanned {
                    Ok(None) => {
                        if !pending.is_empty() {
                            let _ = sender.send(Ok(Streamed::Records(pending)));
                        }
                        sender.send(Ok(Streamed::End(Recovery::default())))
                    }
                    Ok(Some(scan)) => {
                        if !pending.is_empty() {
                            let _ = sender.send(Ok(Streamed::Records(pending)));
                        }
                        sender.send(Ok(Streamed::End(scan.recovery)))
                    }
                    Err(error) => sender.send(Err(error)),
                };
            })
            .map_err(io_error(dir))?;
        Ok(JournalStream {
            batches: Some(batches),
            thread: Some(thread),
            recovery: None,
        })
    }
}

impl<R> JournalStream<R> {
    /// Once the stream has ended without an error: what reading found (a
    /// torn tail is left where it is and reported here).
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }
}

impl<R> Iterator for JournalStream<R> {
    type Item = Result<Vec<R>, DiskJournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        let received = self.batches.as_ref()?.recv();
        match received {
            Ok(Ok(Streamed::Records(records))) => Some(Ok(records)),
            Ok(Ok(Streamed::End(recovery))) => {
                self.recovery = Some(recovery);
                self.batches = None;
                None
            }
            Ok(Err(error)) => {
                self.batches = None;
                Some(Err(error))
            }
            // The thread ended without a word: it panicked.
            Err(_) => {
                self.batches = None;
                Some(Err(DiskJournalError::Io {
                    path: PathBuf::new(),
                    source: io::Error::other("the journal reader thread panicked"),
                }))
            }
        }
    }
}

impl<R> Drop for JournalStream<R> {
    fn drop(&mut self) {
        // Closing the channel stops the thread at its next batch.
        self.batches = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The records of the journal in `dir`, decoded, streamed `batch` at a time
/// (see [`JournalStream`]).
pub fn stream_journal<T: Payload>(
    dir: &Path,
    batch: usize,
) -> Result<JournalStream<Envelope<T>>, DiskJournalError> {
    JournalStream::start(dir, batch, decode::<T>)
}

/// The records of the journal in `dir` numbered from `from` up to (not
/// including) `until`, decoded, streamed `batch` at a time: what a resumed
/// stage reads of an upstream journal that its writer is appending to
/// again. Records before `from` are checked but not decoded; reading stops
/// at `until`, before anything appended since.
pub(crate) fn stream_range<T: Payload>(
    dir: &Path,
    batch: usize,
    from: u64,
    until: u64,
) -> Result<JournalStream<Envelope<T>>, DiskJournalError> {
    JournalStream::start_until(dir, batch, until, move |path, offset, record| {
        if record.seq < from {
            Ok(None)
        } else {
            decode::<T>(path, offset, record).map(Some)
        }
    })
}

/// The records of the journal in `dir` as stored, checked like
/// [`read_journal`] but not decoded (for tools that do not know the payload
/// type), streamed `batch` at a time (see [`JournalStream`]).
pub fn stream_raw(dir: &Path, batch: usize) -> Result<JournalStream<RawRecord>, DiskJournalError> {
    JournalStream::start(dir, batch, |_, _, record| Ok(raw(record)))
}

fn raw(record: Stored<'_>) -> RawRecord {
    RawRecord {
        seq: record.seq,
        parents: record.parents,
        timestamp_micros: record.timestamp_micros,
        body: record.body.to_vec(),
    }
}

fn decode<T: DeserializeOwned>(
    path: &Path,
    offset: u64,
    record: Stored<'_>,
) -> Result<Envelope<T>, DiskJournalError> {
    let body: Body<T> =
        postcard::from_bytes(record.body).map_err(|error| DiskJournalError::Corrupt {
            path: path.to_owned(),
            offset,
            reason: format!(
                "record {} has a good checksum but does not decode as `{}`: {error} (a change of the payload type since it was written does this)",
                record.seq,
                std::any::type_name::<T>()
            ),
        })?;
    Ok(Envelope {
        id: EventId {
            stage: record.stage,
            seq: record.seq,
        },
        parents: record.parents,
        timestamp_micros: record.timestamp_micros,
        body,
    })
}

struct Scan {
    next_seq: u64,
    last_segment: Option<(PathBuf, u64)>,
    recovery: Recovery,
}

/// Reads every segment of `dir`, checking it, handing each record to `each`.
/// With `repair`, a torn tail of the last segment is truncated.
fn scan(
    dir: &Path,
    repair: bool,
    mut each: impl FnMut(&Path, u64, Stored<'_>) -> Result<(), DiskJournalError>,
) -> Result<Scan, DiskJournalError> {
    let segments = segment_files(dir)?;
    let mut next_seq = segments.first().map_or(0, |(base, _)| *base);
    let mut recovery = Recovery::default();
    let mut last_segment: Option<(PathBuf, u64)> = None;
    let count = segments.len();
    for (index, (base, path)) in segments.into_iter().enumerate() {
        let is_last = index + 1 == count;
        if base != next_seq {
            let previous = match &last_segment {
                Some((previous, _)) => format!("the previous one, {}", previous.display()),
                None => "the journal".to_owned(),
            };
            return Err(DiskJournalError::Corrupt {
                path,
                offset: 0,
                reason: format!(
                    "segment starts at sequence {base}, but {previous}, ends before {next_seq}: a segment is missing or cut short"
                ),
            });
        }
        // Read a block at a time: a segment is never held whole.
        let file = File::open(&path).map_err(io_error(&path))?;
        let mut size = file.metadata().map_err(io_error(&path))?.len();
        let mut reader = io::BufReader::with_capacity(64 * 1024, file);
        let (valid_end, damage) = check_segment(
            &path,
            &mut reader,
            size,
            &mut next_seq,
            &mut recovery,
            &mut each,
        )?;
        if let Some(reason) = damage {
            // A torn write leaves nothing valid after it; a valid record
            // after the damage means the damage is corruption, even in the
            // last segment.
            let torn = is_last && !valid_block_after(&read_from(&path, valid_end)?, next_seq);
            if !torn {
                return Err(DiskJournalError::Corrupt {
                    path,
                    offset: valid_end,
                    reason,
                });
            }
            let dropped = size - valid_end;
            tracing::warn!(file = %path.display(), offset = valid_end, bytes = dropped, %reason, "journal: cutting off a torn tail");
            if repair {
                if valid_end < HEADER_LEN {
                    fs::remove_file(&path).map_err(io_error(&path))?;
                    recovery.truncated = Some((path, 0, dropped));
                    continue;
                }
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_error(&path))?;
                file.set_len(valid_end).map_err(io_error(&path))?;
                file.sync_all().map_err(io_error(&path))?;
            }
            recovery.truncated = Some((path.clone(), valid_end, dropped));
            size = valid_end;
        }
        last_segment = Some((path, size));
    }
    Ok(Scan {
        next_seq,
        last_segment,
        recovery,
    })
}

/// Reads and checks a segment's header: its journal identity, damage (as
/// a reason), or an error for another format.
fn read_header(
    path: &Path,
    reader: &mut impl Read,
) -> Result<Result<u32, String>, DiskJournalError> {
    let mut bytes = [0u8; HEADER_LEN as usize];
    reader.read_exact(&mut bytes).map_err(io_error(path))?;
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if bytes[..8] == OLDER_MAGIC[..] && word(8) < FORMAT_VERSION {
        return Err(DiskJournalError::OlderFormat {
            path: path.to_owned(),
            found: word(8),
        });
    }
    if bytes[..4] != MAGIC[..] {
        return Ok(Err(
            "the segment does not start with the journal's magic bytes".to_owned(),
        ));
    }
    // A header that fails its own check is damage, whatever it says.
    if crc32c::crc32c(&bytes[..12]) != word(12) {
        return Ok(Err("the segment header fails its checksum".to_owned()));
    }
    let version = word(4);
    if version > FORMAT_VERSION {
        return Err(DiskJournalError::NewerFormat {
            path: path.to_owned(),
            found: version,
        });
    }
    if version < FORMAT_VERSION {
        return Err(DiskJournalError::OlderFormat {
            path: path.to_owned(),
            found: version,
        });
    }
    Ok(Ok(word(8)))
}

/// The identity in the header of the first segment of the journal in
/// `dir` (see [`DiskJournalOptions::identity`]), if it has a segment whose
/// header is whole and sound.
pub(crate) fn identity_of(dir: &Path) -> Result<Option<u32>, DiskJournalError> {
    let Some((_, first)) = segment_files(dir)?.into_iter().next() else {
        return Ok(None);
    };
    let mut file = File::open(&first).map_err(io_error(&first))?;
    if file.metadata().map_err(io_error(&first))?.len() < HEADER_LEN {
        return Ok(None);
    }
    Ok(read_header(&first, &mut file)?.ok())
}

/// Reads the journal in `dir` through, checking every block, and says what
/// it holds (without repairing a torn tail), and which segment is its last.
pub(crate) fn survey(dir: &Path) -> Result<(Recovery, Option<PathBuf>), DiskJournalError> {
    scan(dir, false, |_, _, _| Ok(()))
        .map(|scan| (scan.recovery, scan.last_segment.map(|(path, _)| path)))
}

/// The segment files of the journal in `dir`, by the sequence each starts at.
fn segment_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, DiskJournalError> {
    let mut segments: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(base) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        segments.push((base, entry.path()));
    }
    segments.sort();
    Ok(segments)
}

/// Checks a segment's header and blocks. Returns where the valid part ends
/// and, if damage follows it, why it is damage. Corruption that cannot be a
/// torn write (a wrong sequence, records that do not parse or decode in a
/// block with a good checksum, another format) is an error at once.
fn check_segment(
    path: &Path,
    reader: &mut impl Read,
    size: u64,
    next_seq: &mut u64,
    recovery: &mut Recovery,
    each: &mut impl FnMut(&Path, u64, Stored<'_>) -> Result<(), DiskJournalError>,
) -> Result<(u64, Option<String>), DiskJournalError> {
    if size < HEADER_LEN {
        return Ok((0, Some("the segment header is incomplete".to_owned())));
    }
    let identity = match read_header(path, reader)? {
        Ok(identity) => identity,
        Err(damage) => return Ok((0, Some(damage))),
    };
    match recovery.identity {
        None => recovery.identity = Some(identity),
        Some(first) if first != identity => {
            return Err(DiskJournalError::Corrupt {
                path: path.to_owned(),
                offset: 8,
                reason: format!(
                    "the segment belongs to journal {identity:08x}, and the segments before it to journal {first:08x}"
                ),
            });
        }
        Some(_) => {}
    }
    let mut offset = HEADER_LEN;
    let mut block = Vec::new();
    while offset < size {
        if size - offset < FRAME_LEN as u64 {
            return Ok((offset, Some(INCOMPLETE_FRAME.to_owned())));
        }
        let mut frame = [0u8; FRAME_LEN];
        reader.read_exact(&mut frame).map_err(io_error(path))?;
        let len = match checked_frame(&frame) {
            Ok(len) if size - offset - FRAME_LEN as u64 >= u64::from(len) => len,
            Ok(len) => return Ok((offset, Some(unheld(len)))),
            Err(damage) => return Ok((offset, Some(damage))),
        };
        block.resize(len as usize, 0);
        reader.read_exact(&mut block).map_err(io_error(path))?;
        let head = match checked_sum(&block, &frame) {
            Ok(()) => &block[..],
            Err(damage) => return Ok((offset, Some(damage))),
        };
        let first_seq = u64::from_le_bytes(head[..8].try_into().unwrap_or([0; 8]));
        if first_seq != *next_seq {
            return Err(DiskJournalError::Corrupt {
                path: path.to_owned(),
                offset,
                reason: format!(
                    "block starts at sequence {first_seq} where {} comes next",
                    *next_seq
                ),
            });
        }
        let at = offset;
        let Some(count) = parse_block(head, |record| each(path, at, record))? else {
            return Err(DiskJournalError::Corrupt {
                path: path.to_owned(),
                offset: at,
                reason: format!(
                    "the block of records from {first_seq} has a good checksum but its records do not parse"
                ),
            });
        };
        *next_seq += count;
        recovery.records += count;
        offset += (FRAME_LEN + head.len()) as u64;
    }
    Ok((offset, None))
}

const INCOMPLETE_FRAME: &str = "a block's frame is incomplete";

/// A block's length from its frame, if plausible.
fn checked_frame(frame: &[u8; FRAME_LEN]) -> Result<u32, String> {
    let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
    if len > MAX_BLOCK || (len as usize) < BLOCK_HEAD_LEN {
        return Err(unheld(len));
    }
    Ok(len)
}

fn unheld(len: u32) -> String {
    format!("a block claims {len} bytes, which the segment does not hold")
}

/// Whether a block's bytes match the checksum in its frame.
fn checked_sum(head: &[u8], frame: &[u8; FRAME_LEN]) -> Result<(), String> {
    let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    if crc32c::crc32c(head) == crc {
        Ok(())
    } else {
        Err("a block's checksum does not match".to_owned())
    }
}

/// The bytes of the file at `path` from `offset` to its end.
fn read_from(path: &Path, offset: u64) -> Result<Vec<u8>, DiskJournalError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    io::Seek::seek(&mut file, io::SeekFrom::Start(offset)).map_err(io_error(path))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io_error(path))?;
    Ok(bytes)
}

/// The block framed at the start of `bytes` (after its length and
/// checksum), if its length is plausible and its checksum matches;
/// otherwise why not.
fn framed_block(bytes: &[u8]) -> Result<&[u8], String> {
    let (frame, rest) = bytes
        .split_first_chunk::<FRAME_LEN>()
        .ok_or_else(|| INCOMPLETE_FRAME.to_owned())?;
    let len = checked_frame(frame)?;
    let head = rest.get(..len as usize).ok_or_else(|| unheld(len))?;
    checked_sum(head, frame)?;
    Ok(head)
}

/// Whether a well-framed block with a matching checksum and a later first
/// sequence number than `next_seq` starts anywhere in `tail` after its first
/// byte (`tail` starts where the damage does). Blocks may hold many records
/// in few bytes (a run of identical bodies), so no bound is put on how much
/// later its sequence number may be: the checksum decides.
fn valid_block_after(tail: &[u8], next_seq: u64) -> bool {
    (1..tail.len()).any(|at| {
        let rest = &tail[at..];
        // Cheap tests first: a later sequence number, then the checksum.
        let Some(first) = rest.get(FRAME_LEN..FRAME_LEN + 8) else {
            return false;
        };
        let first = u64::from_le_bytes(first.try_into().unwrap_or([0; 8]));
        first > next_seq && framed_block(rest).is_ok()
    })
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

/// Creates a segment with its header (made durable, with the file's name, by
/// the journal's next sync; a header cut short by a crash is a torn tail).
/// Returns its size.
fn create_segment(path: &Path, identity: u32) -> Result<u64, DiskJournalError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io_error(path))?;
    let mut header = [0u8; HEADER_LEN as usize];
    header[..4].copy_from_slice(MAGIC);
    header[4..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[8..12].copy_from_slice(&identity.to_le_bytes());
    let check = crc32c::crc32c(&header[..12]);
    header[12..16].copy_from_slice(&check.to_le_bytes());
    file.write_all(&header).map_err(io_error(path))?;
    Ok(HEADER_LEN)
}

/// Creates `dir` (and its missing parents) owner-only. Returns the
/// directories that gained a name: fsync them to make the new ones durable.
pub(crate) fn create_private_dir(dir: &Path) -> Result<Vec<PathBuf>, DiskJournalError> {
    let missing = missing_dirs(dir);
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_error(dir))?;
    Ok(missing
        .iter()
        .filter_map(|created| created.parent())
        .filter(|parent| !parent.as_os_str().is_empty())
        .map(Path::to_owned)
        .collect())
}

/// `dir` and those of its ancestors that do not exist yet, deepest first:
/// what creating `dir` makes.
pub(crate) fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.is_dir())
        .map(Path::to_owned)
        .collect()
}

/// Where a file that replaces `path` is written first: a hidden name beside
/// it (so that the rename stays on one file system), unique to the process.
pub(crate) fn temporary_beside(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Removes the temporary files that processes no longer running left
/// beside `path` (a killed run's, named as [`temporary_beside`] names
/// them), so that crashes do not pile them up; best effort. A process's
/// liveness is known only where `/proc` says it: elsewhere nothing is
/// removed, and a file whose process id has been reused stays.
pub(crate) fn remove_stale_temporaries(path: &Path) {
    let Some(file_name) = path.file_name().and_then(|name| name.to_str()) else {
        return;
    };
    let prefix = format!(".{file_name}.");
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let Ok(entries) = std::fs::read_dir(dir.unwrap_or(Path::new("."))) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && process_is_gone(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether no process `pid` runs (known only where `/proc` lists them).
fn process_is_gone(pid: u32) -> bool {
    let proc = Path::new("/proc");
    proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

/// Fsyncs a directory, making the names it holds durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), DiskJournalError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    let _ = dir;
    Ok(())
}

/// A flow or stage name as a file name: letters, digits, `-`, `_` and `.`
/// kept, anything else replaced by `_`, never empty, `.` or `..`, at most 100 bytes.
pub(crate) fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if out.is_empty() || out.chars().all(|c| c == '.') {
        out = format!("_{out}");
    }
    out
}

#[cfg(test)]
mod name_tests {
    use super::{DATA_TAG, sanitize_name};
    use crate::event::Body;

    #[test]
    fn a_data_body_is_told_by_its_first_byte() {
        let data = postcard::to_allocvec(&Body::<u32>::Data(7)).unwrap();
        assert_eq!(data.first(), Some(&DATA_TAG));
        let eof = postcard::to_allocvec(&Body::<u32>::Control(crate::event::Control::Eof)).unwrap();
        assert_ne!(eof.first(), Some(&DATA_TAG));
    }

    #[test]
    fn names_become_safe_file_names() {
        assert_eq!(sanitize_name("orders"), "orders");
        assert_eq!(sanitize_name("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(sanitize_name(".."), "_..");
        assert_eq!(sanitize_name(""), "_");
        assert_eq!(sanitize_name("naïve name"), "na_ve_name");
        assert_eq!(sanitize_name(&"a".repeat(300)).len(), 100);
    }
}
