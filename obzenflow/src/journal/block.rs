//! A disk journal's blocks (format 3): each holds a run of one stage's
//! records, stored by column, each column as runs.
//!
//! ```text
//! frame:  length: u32 LE | crc32c(the rest): u32 LE
//! head:   first seq: u64 LE | count: u32 LE | stage: u32 LE | base timestamp: u64 LE
//! times:  runs of (zigzag(timestamp - base), n)
//! parents: runs of one of
//!           0, n                 n records with no parents
//!           1, stage, seq, n     n records, the k-th made from (stage, seq + k)
//!           2, stage, seq, n     n records all made from (stage, seq)
//!           3, m, m (stage, seq) one record made from m events
//! bodies: runs of (n << 1 | same, length): n bodies of that length, stored
//!           once if `same`, else one after another
//! then the bodies' bytes (postcard), run after run
//! ```
//!
//! Every number after the head is a varint, and each column's runs add up to
//! exactly `count` records. A stage writes its events in batches that share
//! a timestamp, are mostly made from consecutive inputs, and often carry
//! bodies of one length (or identical ones, as a sink's receipts are), so
//! most of a block is its bodies: a million small events take a few bytes
//! each, and encoding them costs little more than serializing their bodies.

use super::disk::DiskJournalError;
use crate::event::Receipt;
use crate::event::{Body, Envelope, EventId, Parents, StageId};
use serde::Serialize;
use std::any::Any;

/// A block's length and checksum.
pub(super) const FRAME_LEN: usize = 8;
/// What follows the frame before the columns: first seq, count, stage, base timestamp.
pub(super) const BLOCK_HEAD_LEN: usize = 24;
/// Larger bodies are refused on write and treated as damage on read.
pub(super) const MAX_RECORD: u32 = 64 * 1024 * 1024;
/// A record made from more events than this is refused on write.
const MAX_PARENTS: usize = 4 * 1024 * 1024;
/// A block is closed once its columns hold this much.
const CLOSE_BLOCK: usize = 64 * 1024 * 1024;
/// A longer block is damage (a block is closed below `CLOSE_BLOCK` plus one
/// record of at most `MAX_RECORD` bytes and `MAX_PARENTS` parents).
pub(super) const MAX_BLOCK: u32 = 256 * 1024 * 1024;

const NO_PARENTS: u64 = 0;
const NEXT_PARENTS: u64 = 1;
const SAME_PARENT: u64 = 2;
const MANY_PARENTS: u64 = 3;
const RANGE_PARENTS: u64 = 4;

/// Encodes envelopes into framed blocks, checking that their sequence
/// numbers continue each other. Its buffers are kept between calls.
#[derive(Debug, Default)]
pub(crate) struct BlockEncoder {
    next_seq: u64,
    columns: Columns,
    block: Option<Open>,
}

/// The columns of the block being encoded (the body runs apart from their
/// bytes).
#[derive(Debug, Default)]
struct Columns {
    times: Vec<u8>,
    parents: Vec<u8>,
    runs: Vec<u8>,
    bodies: Vec<u8>,
}

/// The block being encoded: its head and each column's current run.
#[derive(Debug)]
struct Open {
    first_seq: u64,
    count: u32,
    stage: StageId,
    base: u64,
    time: (u64, u64),
    parents: ParentRun,
    body: BodyRun,
}

#[derive(Debug)]
enum ParentRun {
    Closed,
    None(u64),
    Next(EventId, u64),
    Same(EventId, u64),
}

#[derive(Debug)]
struct BodyRun {
    n: u64,
    len: usize,
    same: bool,
    /// Whether it is a run of one body, a plain receipt (`Receipt::delivered()`).
    delivered: bool,
    /// Where its first body starts in `bodies`.
    start: usize,
}

impl BlockEncoder {
    /// An encoder whose first record must have sequence number `next_seq`.
    pub(crate) fn new(next_seq: u64) -> Self {
        BlockEncoder {
            next_seq,
            ..BlockEncoder::default()
        }
    }

    /// The sequence number the next record must have.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Continues at `next_seq` (after records encoded elsewhere were written).
    pub(crate) fn continue_at(&mut self, next_seq: u64) {
        self.next_seq = next_seq;
    }

    /// Appends the records of `batches` to `out` as framed blocks (one
    /// unless the stage changes or a block grows past `CLOSE_BLOCK`). On an
    /// error, `out` may hold part of them and must be discarded; the encoder
    /// expects the same first record again.
    pub(crate) fn encode<'a, T: Serialize + 'static>(
        &mut self,
        out: &mut Vec<u8>,
        batches: impl IntoIterator<Item = &'a [Envelope<T>]>,
    ) -> Result<(), DiskJournalError> {
        let first = self.next_seq;
        let result = self.encode_all(out, batches);
        if result.is_err() {
            self.next_seq = first;
            self.block = None;
            self.columns.clear();
        }
        result
    }

    fn encode_all<'a, T: Serialize + 'static>(
        &mut self,
        out: &mut Vec<u8>,
        batches: impl IntoIterator<Item = &'a [Envelope<T>]>,
    ) -> Result<(), DiskJournalError> {
        for batch in batches {
            for envelope in batch {
                if envelope.id.seq != self.next_seq {
                    return Err(DiskJournalError::OutOfSequence {
                        expected: self.next_seq,
                        got: envelope.id.seq,
                    });
                }
                let fits = self.block.as_ref().is_some_and(|block| {
                    block.stage == envelope.id.stage
                        && block.count < u32::MAX
                        && self.columns.len() < CLOSE_BLOCK
                });
                if !fits {
                    self.close(out);
                    self.open(envelope);
                }
                if let Some(block) = &mut self.block {
                    self.columns.push(block, envelope)?;
                }
                self.next_seq += 1;
            }
        }
        self.close(out);
        Ok(())
    }

    fn open<T>(&mut self, first: &Envelope<T>) {
        self.block = Some(Open {
            first_seq: first.id.seq,
            count: 0,
            stage: first.id.stage,
            base: first.timestamp_micros,
            time: (first.timestamp_micros, 0),
            parents: ParentRun::Closed,
            body: BodyRun {
                n: 0,
                len: 0,
                same: true,
                delivered: false,
                start: 0,
            },
        });
    }

    /// Writes the open block, if any, to `out`.
    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(block) = self.block.take() else {
            return;
        };
        put_time_run(&mut self.columns.times, block.base, block.time);
        put_parent_run(&mut self.columns.parents, &block.parents);
        put_body_run(&mut self.columns.runs, &block.body);
        let at = out.len();
        out.reserve(FRAME_LEN + BLOCK_HEAD_LEN + self.columns.len());
        out.extend_from_slice(&[0; FRAME_LEN]);
        out.extend_from_slice(&block.first_seq.to_le_bytes());
        out.extend_from_slice(&block.count.to_le_bytes());
        out.extend_from_slice(&block.stage.0.to_le_bytes());
        out.extend_from_slice(&block.base.to_le_bytes());
        out.extend_from_slice(&self.columns.times);
        out.extend_from_slice(&self.columns.parents);
        out.extend_from_slice(&self.columns.runs);
        out.extend_from_slice(&self.columns.bodies);
        self.columns.clear();
        // Closed below CLOSE_BLOCK plus one record, so the length fits.
        let len = (out.len() - at - FRAME_LEN) as u32;
        let crc = crc32c::crc32c(&out[at + FRAME_LEN..]);
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
        out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    }
}

impl Columns {
    fn len(&self) -> usize {
        self.times.len() + self.parents.len() + self.runs.len() + self.bodies.len()
    }

    fn clear(&mut self) {
        self.times.clear();
        self.parents.clear();
        self.runs.clear();
        self.bodies.clear();
    }

    /// Adds a record to `block`'s columns.
    fn push<T: Serialize + 'static>(
        &mut self,
        block: &mut Open,
        envelope: &Envelope<T>,
    ) -> Result<(), DiskJournalError> {
        // What can be refused first, so that a refused record leaves nothing.
        if let Parents::Many(ids) = &envelope.parents
            && ids.len() > MAX_PARENTS
        {
            return Err(DiskJournalError::TooManyParents { parents: ids.len() });
        }
        // A sink's receipts are nearly all `Receipt::delivered()`: one more
        // in a run of them is counted, not serialized and compared.
        let delivered = is_delivered(&envelope.body);
        if delivered && block.body.delivered {
            block.body.n += 1;
        } else {
            self.push_body(&mut block.body, envelope)?;
            // A run of one body ends with this record's, whichever way it went.
            block.body.delivered = delivered && block.body.same;
        }
        block.count += 1;
        self.push_time_and_parents(block, envelope);
        Ok(())
    }

    /// Adds a record's body to the body columns, in `run` or a new run.
    fn push_body<T: Serialize>(
        &mut self,
        run: &mut BodyRun,
        envelope: &Envelope<T>,
    ) -> Result<(), DiskJournalError> {
        let start = self.bodies.len();
        // Serialized in place into room made for a small body (the common
        // case), or appended piece by piece if it is larger.
        self.bodies.resize(start + SMALL_BODY, 0);
        let room = InPlace {
            room: &mut self.bodies[start..],
            len: 0,
        };
        match postcard::serialize_with_flavor(&envelope.body, room) {
            Ok(len) => self.bodies.truncate(start + len),
            Err(_) => {
                self.bodies.truncate(start);
                serialize_body(&mut self.bodies, &envelope.body, envelope.id.seq)?;
            }
        }
        let len = self.bodies.len() - start;
        if len > MAX_RECORD as usize {
            self.bodies.truncate(start);
            return Err(DiskJournalError::RecordTooLarge { bytes: len });
        }
        if run.n > 0 && run.len == len {
            let body = &self.bodies[start..];
            if run.same {
                if alike(&self.bodies[run.start..run.start + len], body) {
                    run.n += 1;
                    self.bodies.truncate(start);
                } else if run.n == 1 {
                    run.same = false;
                    run.n = 2;
                } else {
                    put_body_run(&mut self.runs, run);
                    *run = BodyRun::first(len, start);
                }
            } else if alike(&self.bodies[start - len..start], body) {
                // Two alike at the end of a run of different bodies: they
                // start a run of the same one.
                run.n -= 1;
                put_body_run(&mut self.runs, run);
                *run = BodyRun {
                    n: 2,
                    len,
                    same: true,
                    delivered: false,
                    start: start - len,
                };
                self.bodies.truncate(start);
            } else {
                run.n += 1;
            }
        } else {
            put_body_run(&mut self.runs, run);
            *run = BodyRun::first(len, start);
        }
        Ok(())
    }

    /// Adds a record's timestamp and parents to their columns.
    fn push_time_and_parents<T>(&mut self, block: &mut Open, envelope: &Envelope<T>) {
        let (time, n) = &mut block.time;
        if *time == envelope.timestamp_micros {
            *n += 1;
        } else {
            put_time_run(&mut self.times, block.base, block.time);
            block.time = (envelope.timestamp_micros, 1);
        }

        block.parents = match (&mut block.parents, &envelope.parents) {
            (ParentRun::None(n), Parents::None) => {
                *n += 1;
                return;
            }
            (ParentRun::Next(first, n), Parents::One(id))
                if first.stage == id.stage && first.seq.checked_add(*n) == Some(id.seq) =>
            {
                *n += 1;
                return;
            }
            (ParentRun::Same(first, n), Parents::One(id)) if first == id => {
                *n += 1;
                return;
            }
            (ParentRun::Next(first, 1), Parents::One(id)) if first == id => ParentRun::Same(*id, 2),
            (run, parents) => {
                put_parent_run(&mut self.parents, run);
                match parents {
                    Parents::None => ParentRun::None(1),
                    Parents::One(id) => ParentRun::Next(*id, 1),
                    Parents::Many(ids) => {
                        put_varint(&mut self.parents, MANY_PARENTS);
                        put_varint(&mut self.parents, ids.len() as u64);
                        for id in ids.iter() {
                            put_id(&mut self.parents, *id);
                        }
                        ParentRun::Closed
                    }
                    Parents::Range([first, last]) => {
                        put_varint(&mut self.parents, RANGE_PARENTS);
                        put_id(&mut self.parents, *first);
                        put_id(&mut self.parents, *last);
                        ParentRun::Closed
                    }
                }
            }
        };
    }
}

/// Whether `body` is `Data(Receipt::delivered())` (false for any other
/// type: the check is resolved when the encoder is compiled for it).
#[inline]
fn is_delivered<T: 'static>(body: &Body<T>) -> bool {
    (body as &dyn Any)
        .downcast_ref::<Body<Receipt>>()
        .is_some_and(|body| matches!(body, Body::Data(Receipt { detail: None })))
}

/// Bodies up to this size are serialized on the stack first.
const SMALL_BODY: usize = 32;

/// Whether two bodies of one length are alike: short ones compared here
/// (most are a few bytes, and a call to `memcmp` costs more than that).
#[inline]
fn alike(a: &[u8], b: &[u8]) -> bool {
    if a.len() <= SMALL_BODY {
        a.iter().zip(b).all(|(x, y)| x == y)
    } else {
        a == b
    }
}

impl BodyRun {
    fn first(len: usize, start: usize) -> Self {
        BodyRun {
            n: 1,
            len,
            same: true,
            delivered: false,
            start,
        }
    }
}

fn put_time_run(column: &mut Vec<u8>, base: u64, (time, n): (u64, u64)) {
    if n > 0 {
        // Zigzag: a clock set back gives a small negative difference.
        let delta = time.wrapping_sub(base) as i64;
        put_varint(column, ((delta << 1) ^ (delta >> 63)) as u64);
        put_varint(column, n);
    }
}

fn put_parent_run(column: &mut Vec<u8>, run: &ParentRun) {
    let (tag, id, n) = match run {
        ParentRun::Closed => return,
        ParentRun::None(n) => {
            put_varint(column, NO_PARENTS);
            put_varint(column, *n);
            return;
        }
        ParentRun::Next(id, n) => (NEXT_PARENTS, id, n),
        ParentRun::Same(id, n) => (SAME_PARENT, id, n),
    };
    put_varint(column, tag);
    put_id(column, *id);
    put_varint(column, *n);
}

fn put_body_run(column: &mut Vec<u8>, run: &BodyRun) {
    if run.n > 0 {
        put_varint(column, (run.n << 1) | u64::from(run.same));
        put_varint(column, run.len as u64);
    }
}

fn serialize_body<T: Serialize>(
    out: &mut Vec<u8>,
    body: &Body<T>,
    seq: u64,
) -> Result<(), DiskJournalError> {
    postcard::serialize_with_flavor(body, Append(out)).map_err(|error| {
        DiskJournalError::Unencodable {
            seq,
            reason: error.to_string(),
        }
    })
}

/// Postcard output written into room already made, a byte at a time for
/// short pieces (postcard writes each varint as a slice, and a call to
/// `memmove` for a byte or two costs more than the bytes); its output is
/// the length written.
struct InPlace<'a> {
    room: &'a mut [u8],
    len: usize,
}

impl postcard::ser_flavors::Flavor for InPlace<'_> {
    type Output = usize;

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        let slot = self
            .room
            .get_mut(self.len)
            .ok_or(postcard::Error::SerializeBufferFull)?;
        *slot = data;
        self.len += 1;
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let end = self.len + data.len();
        let slots = self
            .room
            .get_mut(self.len..end)
            .ok_or(postcard::Error::SerializeBufferFull)?;
        if data.len() <= 16 {
            for (slot, &byte) in slots.iter_mut().zip(data) {
                *slot = byte;
            }
        } else {
            slots.copy_from_slice(data);
        }
        self.len = end;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.len)
    }
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

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_id(out: &mut Vec<u8>, id: EventId) {
    put_varint(out, u64::from(id.stage.0));
    put_varint(out, id.seq);
}

/// A record read from a block, its body still encoded.
#[derive(Clone)]
pub(super) struct Stored<'a> {
    pub(super) seq: u64,
    pub(super) stage: StageId,
    pub(super) parents: Parents,
    pub(super) timestamp_micros: u64,
    pub(super) body: &'a [u8],
}

/// Bytes read from the front.
#[derive(Clone, Copy)]
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Some(value);
            }
        }
        None
    }

    /// A run's length, which is never zero.
    fn run(&mut self) -> Option<u64> {
        self.varint().filter(|n| *n > 0)
    }

    fn id(&mut self) -> Option<EventId> {
        let stage = StageId(u32::try_from(self.varint()?).ok()?);
        let seq = self.varint()?;
        Some(EventId { stage, seq })
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    /// The bytes read since `start` (an earlier copy of these).
    fn since(self, start: Bytes<'a>) -> Bytes<'a> {
        Bytes(&start.0[..start.0.len() - self.0.len()])
    }
}

/// The timestamps column, record by record.
struct Times<'a> {
    bytes: Bytes<'a>,
    base: u64,
    time: u64,
    left: u64,
}

impl Times<'_> {
    fn next(&mut self) -> Option<u64> {
        if self.left == 0 {
            let delta = self.bytes.varint()?;
            let delta = ((delta >> 1) as i64) ^ -((delta & 1) as i64);
            self.time = self.base.wrapping_add(delta as u64);
            self.left = self.bytes.run()?;
        }
        self.left -= 1;
        Some(self.time)
    }
}

/// The parents column, record by record.
struct ParentsColumn<'a> {
    bytes: Bytes<'a>,
    /// The current run: its next parent, and whether that moves on.
    next: Option<(EventId, bool)>,
    left: u64,
}

impl ParentsColumn<'_> {
    fn next(&mut self) -> Option<Parents> {
        if self.left == 0 {
            match self.bytes.varint()? {
                NO_PARENTS => self.next = None,
                tag @ (NEXT_PARENTS | SAME_PARENT) => {
                    let id = self.bytes.id()?;
                    self.next = Some((id, tag == NEXT_PARENTS));
                }
                MANY_PARENTS => {
                    let m = self.bytes.varint()?;
                    // Each id takes at least two bytes: a count past that is damage.
                    if m > self.bytes.0.len() as u64 / 2 {
                        return None;
                    }
                    let ids = (0..m)
                        .map(|_| self.bytes.id())
                        .collect::<Option<Vec<_>>>()?;
                    return Some(Parents::Many(ids.into()));
                }
                RANGE_PARENTS => {
                    let first = self.bytes.id()?;
                    let last = self.bytes.id()?;
                    return Some(Parents::Range([first, last]));
                }
                _ => return None,
            }
            self.left = self.bytes.run()?;
        }
        self.left -= 1;
        Some(match &mut self.next {
            None => Parents::None,
            Some((id, moves)) => {
                let parent = *id;
                if *moves {
                    // The last one of a run must not need a number past u64.
                    id.seq = match id.seq.checked_add(1) {
                        Some(seq) => seq,
                        None if self.left == 0 => id.seq,
                        None => return None,
                    };
                }
                Parents::One(parent)
            }
        })
    }
}

/// The bodies column, record by record.
struct Bodies<'a> {
    runs: Bytes<'a>,
    bytes: Bytes<'a>,
    len: usize,
    /// The body of a run stored once.
    same: Option<&'a [u8]>,
    left: u64,
}

impl<'a> Bodies<'a> {
    /// Reads the next run's head; returns whether its body is stored once.
    fn next_run(&mut self) -> Option<bool> {
        let head = self.runs.varint()?;
        let len = self
            .runs
            .varint()
            .filter(|len| *len <= u64::from(MAX_RECORD))?;
        self.left = head >> 1;
        self.len = len as usize;
        (self.left > 0).then_some(head & 1 == 1)
    }

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            let once = self.next_run()?;
            self.same = None;
            if once {
                self.same = Some(self.bytes.take(self.len)?);
            }
        }
        self.left -= 1;
        match self.same {
            Some(body) => Some(body),
            None => self.bytes.take(self.len),
        }
    }
}

/// A column read record by record.
trait Column<'a> {
    /// Steps past one record; `None` if the column ends or is damaged.
    fn step(&mut self) -> Option<()>;
    /// What is left unread, and how many records remain in the current run.
    fn rest(&self) -> (Bytes<'a>, u64);
}

impl<'a> Column<'a> for Times<'a> {
    fn step(&mut self) -> Option<()> {
        self.next().map(drop)
    }

    fn rest(&self) -> (Bytes<'a>, u64) {
        (self.bytes, self.left)
    }
}

impl<'a> Column<'a> for ParentsColumn<'a> {
    fn step(&mut self) -> Option<()> {
        self.next().map(drop)
    }

    fn rest(&self) -> (Bytes<'a>, u64) {
        (self.bytes, self.left)
    }
}

/// Reads `count` records of a column that starts at `start` and must end
/// with its last run; returns the column's bytes and what follows them.
fn measure<'a>(
    mut column: impl Column<'a>,
    start: Bytes<'a>,
    count: u64,
) -> Option<(Bytes<'a>, Bytes<'a>)> {
    for _ in 0..count {
        column.step()?;
    }
    let (rest, left) = column.rest();
    (left == 0).then(|| (rest.since(start), rest))
}

/// The records of a block whose checksum matched, handed to `each`; `None`
/// if they do not parse (which a good checksum makes corruption, not a torn
/// write). `head` is the block after its frame.
pub(super) fn parse_block(
    head: &[u8],
    mut each: impl FnMut(Stored<'_>) -> Result<(), DiskJournalError>,
) -> Result<Option<u64>, DiskJournalError> {
    let Some(columns) = split_columns(head) else {
        return Ok(None);
    };
    let (fixed, mut times, mut parents, mut bodies) = columns;
    for i in 0..fixed.count {
        let (Some(timestamp_micros), Some(parents), Some(body)) =
            (times.next(), parents.next(), bodies.next())
        else {
            return Ok(None);
        };
        each(Stored {
            seq: fixed.first_seq + i,
            stage: fixed.stage,
            parents,
            timestamp_micros,
            body,
        })?;
    }
    Ok(Some(fixed.count))
}

/// A block's head.
struct Fixed {
    first_seq: u64,
    count: u64,
    stage: StageId,
}

/// The head and the columns of a block, once each column is found to hold
/// exactly `count` records and the bodies' bytes to be exactly there.
fn split_columns(head: &[u8]) -> Option<(Fixed, Times<'_>, ParentsColumn<'_>, Bodies<'_>)> {
    let (fixed, columns) = head.split_first_chunk::<BLOCK_HEAD_LEN>()?;
    let u64_at = |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |at: usize| u32::from_le_bytes(fixed[at..at + 4].try_into().unwrap_or([0; 4]));
    let fixed = Fixed {
        first_seq: u64_at(0),
        count: u64::from(u32_at(8)),
        stage: StageId(u32_at(12)),
    };
    fixed.first_seq.checked_add(fixed.count)?;
    let base = u64_at(16);
    let times = |bytes| Times {
        bytes,
        base,
        time: base,
        left: 0,
    };
    let parents = |bytes| ParentsColumn {
        bytes,
        next: None,
        left: 0,
    };
    let bodies = |runs, bytes| Bodies {
        runs,
        bytes,
        len: 0,
        same: None,
        left: 0,
    };

    let start = Bytes(columns);
    let (time_column, after_times) = measure(times(start), start, fixed.count)?;
    let (parent_column, after_parents) = measure(parents(after_times), after_times, fixed.count)?;
    let mut scan = bodies(after_parents, Bytes(&[]));
    let (mut records, mut stored) = (0u64, 0u64);
    while records < fixed.count {
        let once = scan.next_run()?;
        records = records.checked_add(scan.left)?;
        let bodies = if once { 1 } else { scan.left };
        stored = stored.checked_add(bodies.checked_mul(scan.len as u64)?)?;
    }
    let body_bytes = scan.runs;
    if records != fixed.count || body_bytes.0.len() as u64 != stored {
        return None;
    }
    let run_column = body_bytes.since(after_parents);
    Some((
        fixed,
        times(time_column),
        parents(parent_column),
        bodies(run_column, body_bytes),
    ))
}
