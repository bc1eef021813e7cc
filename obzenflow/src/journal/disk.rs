//! The durable journal: framed, checksummed records in segment files, with an
//! explicit fsync policy and recovery on open.
//!
//! A journal is a directory of segment files named by the sequence number of
//! their first record (`00000000000000000000.seg`). A segment starts with a
//! 16-byte header (`OBZFJNL\0`, the format version, 4 reserved bytes); then
//! blocks, one per append (a group commit), each framed as
//!
//! ```text
//! length: u32 LE | crc32c(the rest): u32 LE | first seq: u64 LE | count: u32 LE
//!   | stage: u32 LE | base timestamp: u64 LE | count records
//! record: length: u32 LE | timestamp - base: zigzag varint | parents | body (postcard)
//! ```
//!
//! where `parents` is a tag (0 none, 1 one, 2 many: then a count) and each
//! parent's stage and sequence as varints. On open, every segment is read and
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

use crate::event::{Body, Envelope, EventId, Parents, Payload, StageId};
use serde::de::DeserializeOwned;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MAGIC: &[u8; 8] = b"OBZFJNL\0";
/// The format version this code writes, and the only one it reads.
pub const FORMAT_VERSION: u32 = 2;
const HEADER_LEN: u64 = 16;
/// A block's length and checksum.
const FRAME_LEN: usize = 8;
/// What follows the frame before the records: first seq, count, stage, base timestamp.
const BLOCK_HEAD_LEN: usize = 24;
/// Larger records are refused on write and treated as damage on read.
const MAX_RECORD: u32 = 64 * 1024 * 1024;
/// A block is closed once it holds this much, and a longer one is damage.
const MAX_BLOCK: u32 = 256 * 1024 * 1024;

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
}

impl Default for DiskJournalOptions {
    fn default() -> Self {
        DiskJournalOptions {
            segment_bytes: 64 * 1024 * 1024,
            fsync: FsyncPolicy::EveryBatch,
        }
    }
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
    buffer: Vec<u8>,
    _payload: PhantomData<fn(T)>,
}

impl<T: Payload> DiskJournal<T> {
    /// Opens the journal in `dir`, creating it if needed; recovers a torn
    /// tail and refuses corruption.
    pub fn open(
        dir: &Path,
        options: DiskJournalOptions,
    ) -> Result<(Self, Recovery), DiskJournalError> {
        create_private_dir(dir)?;
        let scan = scan(dir, true, |path, offset, record| {
            decode::<T>(path, offset, record).map(drop)
        })?;
        let (path, size) = match scan.last_segment {
            Some((path, size)) => (path, size),
            None => {
                let path = segment_path(dir, 0);
                let size = create_segment(dir, &path)?;
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
            buffer: Vec::new(),
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
        self.buffer.clear();
        let mut seq = self.next_seq;
        let mut block: Option<Block> = None;
        for batch in batches {
            for envelope in batch {
                if envelope.id.seq != seq {
                    return Err(DiskJournalError::Corrupt {
                        path: self.path.clone(),
                        offset: self.size,
                        reason: format!(
                            "appending sequence {} where {seq} comes next",
                            envelope.id.seq
                        ),
                    });
                }
                let open = block.as_ref().filter(|block| {
                    block.stage == envelope.id.stage
                        && self.buffer.len() - block.at < MAX_BLOCK as usize - MAX_RECORD as usize
                });
                if open.is_none() {
                    if let Some(full) = block.take() {
                        full.close(&mut self.buffer);
                    }
                    block = Some(Block::open(&mut self.buffer, envelope));
                }
                if let Some(block) = &mut block {
                    encode_record(&mut self.buffer, block.base_timestamp, envelope)?;
                    block.count += 1;
                }
                seq += 1;
            }
        }
        let Some(block) = block else {
            return Ok(());
        };
        let first = block.first_seq;
        block.close(&mut self.buffer);
        if self.size >= self.options.segment_bytes {
            self.roll(first)?;
        }
        self.file
            .write_all(&self.buffer)
            .map_err(io_error(&self.path))?;
        self.size += self.buffer.len() as u64;
        self.next_seq = seq;
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

    /// Fsyncs what was appended.
    pub fn sync(&mut self) -> Result<(), DiskJournalError> {
        self.file.sync_data().map_err(io_error(&self.path))?;
        self.last_sync = Instant::now();
        Ok(())
    }

    fn roll(&mut self, first_seq: u64) -> Result<(), DiskJournalError> {
        self.sync()?;
        let path = segment_path(&self.dir, first_seq);
        self.size = create_segment(&self.dir, &path)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        self.path = path;
        Ok(())
    }
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

/// Every record of the journal in `dir` as stored, checked like
/// [`read_journal`] but not decoded (for tools that do not know the payload type).
pub fn read_raw(dir: &Path) -> Result<(Vec<RawRecord>, Recovery), DiskJournalError> {
    let mut records = Vec::new();
    let scan = scan(dir, false, |_, _, record| {
        records.push(RawRecord {
            seq: record.seq,
            parents: record.parents,
            timestamp_micros: record.timestamp_micros,
            body: record.body.to_vec(),
        });
        Ok(())
    })?;
    Ok((records, scan.recovery))
}

/// A record read from a block, its body still encoded.
struct Stored<'a> {
    seq: u64,
    stage: StageId,
    parents: Parents,
    timestamp_micros: u64,
    body: &'a [u8],
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
                "record {} has a good checksum but does not decode: {error}",
                record.seq
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

/// A block being written: where it starts in the buffer and its header.
struct Block {
    at: usize,
    first_seq: u64,
    count: u32,
    stage: StageId,
    base_timestamp: u64,
}

impl Block {
    /// Starts a block whose first record will be `first`.
    fn open<T>(buffer: &mut Vec<u8>, first: &Envelope<T>) -> Self {
        let at = buffer.len();
        buffer.resize(at + FRAME_LEN + BLOCK_HEAD_LEN, 0);
        Block {
            at,
            first_seq: first.id.seq,
            count: 0,
            stage: first.id.stage,
            base_timestamp: first.timestamp_micros,
        }
    }

    /// Writes the block's header and checksum.
    fn close(self, buffer: &mut [u8]) {
        let at = self.at;
        // Blocks are closed below MAX_BLOCK, so the length fits.
        let len = (buffer.len() - at - FRAME_LEN) as u32;
        let head = at + FRAME_LEN;
        buffer[head..head + 8].copy_from_slice(&self.first_seq.to_le_bytes());
        buffer[head + 8..head + 12].copy_from_slice(&self.count.to_le_bytes());
        buffer[head + 12..head + 16].copy_from_slice(&self.stage.0.to_le_bytes());
        buffer[head + 16..head + 24].copy_from_slice(&self.base_timestamp.to_le_bytes());
        let crc = crc32c::crc32c(&buffer[head..]);
        buffer[at..at + 4].copy_from_slice(&len.to_le_bytes());
        buffer[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Writes `value` as a varint into `bytes` at `at`; returns where it ends.
/// (Records are assembled in a fixed-size array and copied at once: tiny
/// copies of varying length cost a call each.)
fn varint_at<const N: usize>(bytes: &mut [u8; N], mut at: usize, mut value: u64) -> usize {
    while value >= 0x80 {
        bytes[at] = (value as u8) | 0x80;
        value >>= 7;
        at += 1;
    }
    bytes[at] = value as u8;
    at + 1
}

fn put_varint(buffer: &mut Vec<u8>, value: u64) {
    let mut bytes = [0u8; 10];
    let end = varint_at(&mut bytes, 0, value);
    buffer.extend_from_slice(&bytes[..end]);
}

/// Postcard output appended to a `Vec`, a slice at a time.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() <= 16 {
            // A varint or a short string: pushing beats a call to memmove.
            for &byte in data {
                self.0.push(byte);
            }
        } else {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// A varint at the start of `bytes` and the bytes after it.
fn take_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

fn put_id(buffer: &mut Vec<u8>, id: EventId) {
    put_varint(buffer, u64::from(id.stage.0));
    put_varint(buffer, id.seq);
}

fn take_id(bytes: &[u8]) -> Option<(EventId, &[u8])> {
    let (stage, bytes) = take_varint(bytes)?;
    let (seq, bytes) = take_varint(bytes)?;
    let stage = StageId(u32::try_from(stage).ok()?);
    Some((EventId { stage, seq }, bytes))
}

fn encode_record<T: serde::Serialize>(
    buffer: &mut Vec<u8>,
    base_timestamp: u64,
    envelope: &Envelope<T>,
) -> Result<(), DiskJournalError> {
    let start = buffer.len();
    // The length (filled in below), the timestamp, and the parents when
    // there are at most one, assembled here and copied at once.
    let mut head = [0u8; 96];
    // Zigzag: a clock set back gives a small negative difference.
    let delta = envelope.timestamp_micros.wrapping_sub(base_timestamp) as i64;
    let mut at = varint_at(&mut head, 4, ((delta << 1) ^ (delta >> 63)) as u64);
    let many = match &envelope.parents {
        Parents::None => {
            at += 1;
            None
        }
        Parents::One(id) => {
            head[at] = 1;
            at = varint_at(&mut head, at + 1, u64::from(id.stage.0));
            at = varint_at(&mut head, at, id.seq);
            None
        }
        Parents::Many(ids) => {
            head[at] = 2;
            at += 1;
            Some(ids)
        }
    };
    if many.is_none() {
        // A small body fits the same array: one fixed-size copy in all.
        if let Ok(body) = postcard::to_slice(&envelope.body, &mut head[at..]) {
            at += body.len();
            buffer.extend_from_slice(&head);
            buffer.truncate(start + at);
            return finish_record(buffer, start);
        }
    }
    buffer.extend_from_slice(&head);
    buffer.truncate(start + at);
    if let Some(ids) = many {
        put_varint(buffer, ids.len() as u64);
        for id in ids.iter() {
            put_id(buffer, *id);
        }
    }
    postcard::serialize_with_flavor(&envelope.body, Append(buffer)).map_err(|error| {
        DiskJournalError::Corrupt {
            path: PathBuf::new(),
            offset: 0,
            reason: format!("cannot encode record {}: {error}", envelope.id.seq),
        }
    })?;
    finish_record(buffer, start)
}

/// Fills in the length of the record that starts at `start`.
fn finish_record(buffer: &mut [u8], start: usize) -> Result<(), DiskJournalError> {
    let len = buffer.len() - start - 4;
    let len32 = u32::try_from(len)
        .ok()
        .filter(|l| *l <= MAX_RECORD)
        .ok_or(DiskJournalError::RecordTooLarge { bytes: len })?;
    buffer[start..start + 4].copy_from_slice(&len32.to_le_bytes());
    Ok(())
}

/// The records of a block whose checksum matched; `None` if they do not
/// parse (which a good checksum makes corruption, not a torn write).
fn parse_block(
    head: &[u8],
    mut each: impl FnMut(Stored<'_>) -> Result<(), DiskJournalError>,
) -> Result<Option<u64>, DiskJournalError> {
    let u64_at = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().unwrap_or([0; 4]));
    let (first_seq, count) = (u64_at(0), u32_at(8));
    let stage = StageId(u32_at(12));
    let base = u64_at(16);
    let mut rest = &head[BLOCK_HEAD_LEN..];
    for i in 0..u64::from(count) {
        let Some((len, after)) = rest.split_first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_le_bytes(*len) as usize;
        if after.len() < len {
            return Ok(None);
        }
        let (record, after) = after.split_at(len);
        rest = after;
        let Some((delta, record)) = take_varint(record) else {
            return Ok(None);
        };
        let delta = ((delta >> 1) as i64) ^ -((delta & 1) as i64);
        let (parents, body) = match record.split_first() {
            Some((0, body)) => (Parents::None, body),
            Some((1, record)) => match take_id(record) {
                Some((id, body)) => (Parents::One(id), body),
                None => return Ok(None),
            },
            Some((2, record)) => {
                let Some((n, mut record)) = take_varint(record) else {
                    return Ok(None);
                };
                // Each id takes at least two bytes: a count past that is damage.
                if n > record.len() as u64 / 2 {
                    return Ok(None);
                }
                let mut ids = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let Some((id, after)) = take_id(record) else {
                        return Ok(None);
                    };
                    ids.push(id);
                    record = after;
                }
                (Parents::Many(ids.into()), record)
            }
            _ => return Ok(None),
        };
        each(Stored {
            seq: first_seq + i,
            stage,
            parents,
            timestamp_micros: base.wrapping_add(delta as u64),
            body,
        })?;
    }
    Ok(rest.is_empty().then_some(u64::from(count)))
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
    let mut next_seq = segments.first().map_or(0, |(base, _)| *base);
    let mut recovery = Recovery::default();
    let mut last_segment = None;
    let count = segments.len();
    for (index, (base, path)) in segments.into_iter().enumerate() {
        let is_last = index + 1 == count;
        if base != next_seq {
            return Err(DiskJournalError::Corrupt {
                path,
                offset: 0,
                reason: format!(
                    "segment starts at sequence {base}, but the previous one ends before {next_seq}"
                ),
            });
        }
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .map_err(io_error(&path))?;
        let (valid_end, damage) =
            check_segment(&path, &bytes, &mut next_seq, &mut recovery, &mut each)?;
        let mut size = bytes.len() as u64;
        if let Some(reason) = damage {
            // A torn write leaves nothing valid after it; a valid record
            // after the damage means the damage is corruption, even in the
            // last segment.
            let torn = is_last && !valid_block_after(&bytes, valid_end, next_seq);
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

/// Checks a segment's header and blocks. Returns where the valid part ends
/// and, if damage follows it, why it is damage. Corruption that cannot be a
/// torn write (a wrong sequence, records that do not parse or decode in a
/// block with a good checksum, another format) is an error at once.
fn check_segment(
    path: &Path,
    bytes: &[u8],
    next_seq: &mut u64,
    recovery: &mut Recovery,
    each: &mut impl FnMut(&Path, u64, Stored<'_>) -> Result<(), DiskJournalError>,
) -> Result<(u64, Option<String>), DiskJournalError> {
    if bytes.len() < HEADER_LEN as usize {
        return Ok((0, Some("the segment header is incomplete".to_owned())));
    }
    if &bytes[..8] != MAGIC {
        return Ok((
            0,
            Some("the segment does not start with the journal's magic bytes".to_owned()),
        ));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
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
    let mut offset = HEADER_LEN as usize;
    while offset < bytes.len() {
        let head = match framed_block(&bytes[offset..]) {
            Ok(head) => head,
            Err(damage) => return Ok((offset as u64, Some(damage))),
        };
        let first_seq = u64::from_le_bytes(head[..8].try_into().unwrap_or([0; 8]));
        if first_seq != *next_seq {
            return Err(DiskJournalError::Corrupt {
                path: path.to_owned(),
                offset: offset as u64,
                reason: format!(
                    "block starts at sequence {first_seq} where {} comes next",
                    *next_seq
                ),
            });
        }
        let at = offset as u64;
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
        offset += FRAME_LEN + head.len();
    }
    Ok((offset as u64, None))
}

/// The block framed at the start of `bytes` (after its length and
/// checksum), if its length is plausible and its checksum matches;
/// otherwise why not.
fn framed_block(bytes: &[u8]) -> Result<&[u8], String> {
    let Some((frame, rest)) = bytes.split_first_chunk::<FRAME_LEN>() else {
        return Err("a block's frame is incomplete".to_owned());
    };
    let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    if len > MAX_BLOCK || (len as usize) < BLOCK_HEAD_LEN || rest.len() < len as usize {
        return Err(format!(
            "a block claims {len} bytes, which the segment does not hold"
        ));
    }
    let head = &rest[..len as usize];
    if crc32c::crc32c(head) != crc {
        return Err("a block's checksum does not match".to_owned());
    }
    Ok(head)
}

/// Whether a well-framed block with a matching checksum and a later first
/// sequence number than `next_seq` starts anywhere after `damaged` in `bytes`.
fn valid_block_after(bytes: &[u8], damaged: u64, next_seq: u64) -> bool {
    let start = usize::try_from(damaged)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    (start..bytes.len()).any(|at| {
        let rest = &bytes[at..];
        // Cheap tests first: a plausible sequence number, then the checksum.
        let Some(first) = rest.get(FRAME_LEN..FRAME_LEN + 8) else {
            return false;
        };
        let first = u64::from_le_bytes(first.try_into().unwrap_or([0; 8]));
        first > next_seq && first - next_seq <= bytes.len() as u64 && framed_block(rest).is_ok()
    })
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

/// Creates a segment with its header, fsynced, and fsyncs the directory so
/// that the new file's name is durable too. Returns its size.
fn create_segment(dir: &Path, path: &Path) -> Result<u64, DiskJournalError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io_error(path))?;
    let mut header = [0u8; HEADER_LEN as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    file.write_all(&header).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))?;
    sync_dir(dir)?;
    Ok(HEADER_LEN)
}

/// Creates `dir` (and its parents) owner-only, fsyncing the parent.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), DiskJournalError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_error(dir))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), DiskJournalError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    let _ = dir;
    Ok(())
}

/// A flow or stage name as a file name: letters, digits, `-`, `_` and `.`
/// kept, anything else replaced by `_`, never empty, `.` or `..`, at most 100 bytes.
pub fn sanitize_name(name: &str) -> String {
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
