//! The in-memory journal: the live edge between a stage and its readers.

use super::{Chunk, Journal, JournalError, JournalReader};
use crate::event::{Envelope, Payload, StageId};
use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// How a memory journal holds its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    /// How many entries the writer may be ahead of its slowest reader before
    /// `append` waits. A batch is never split, so the journal can hold up to
    /// one batch more than this.
    pub capacity: usize,
    /// How many bytes the entries the writer is ahead of its slowest reader
    /// may take before `append` waits, as estimated from each batch's first
    /// payload (its encoded size, plus an envelope); a batch is never split,
    /// so one batch always fits. Bounds memory whatever the payload's size.
    pub capacity_bytes: usize,
    /// Keep every entry, read or not (for tests, replay and verification).
    pub retain_all: bool,
}

/// The bytes a journal's window holds by default (see
/// [`JournalOptions::capacity_bytes`]).
pub const WINDOW_BYTES: usize = 16 << 20;

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            capacity: 16 * 1024,
            capacity_bytes: WINDOW_BYTES,
            retain_all: false,
        }
    }
}

/// A journal held in memory. Cloning gives another handle to the same journal.
///
/// ```
/// use obzenflow::event::{Body, Parents, StageId};
/// use obzenflow::journal::{Journal, JournalOptions, JournalReader, JournalWriter, MemoryJournal};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let journal = MemoryJournal::<u32>::new(StageId(0), JournalOptions::default());
/// let mut reader = journal.reader(0).unwrap();
/// let mut writer = JournalWriter::new(journal.clone(), StageId(0));
/// writer.push(Parents::None, Body::Data(7));
/// writer.push(Parents::None, Body::Data(8));
/// writer.flush().await.unwrap();
/// let chunk = reader.next_chunk().await.unwrap();
/// let values: Vec<u32> = chunk.entries().iter().filter_map(|e| e.data().copied()).collect();
/// assert_eq!(values, [7, 8]);
/// assert_eq!(reader.position(), 2);
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryJournal<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for MemoryJournal<T> {
    fn clone(&self) -> Self {
        MemoryJournal {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// An appended batch, shared by the journal and its readers.
type SharedBatch<T> = Arc<Vec<Envelope<T>>>;

/// Batch buffers that readers have emptied, kept for the journal's writer:
/// reusing them spares an allocation per batch and, with wide windows, the
/// page faults of memory the allocator gave back and takes again. It keeps
/// no more room than the journal's window, so it never holds more than the
/// journal's batches already did.
#[derive(Debug)]
pub(crate) struct Spare<T>(Arc<Mutex<SpareBuffers<T>>>);

#[derive(Debug)]
struct SpareBuffers<T> {
    buffers: Vec<Vec<Envelope<T>>>,
    /// Their room, in entries, and the most to keep.
    room: usize,
    limit: usize,
}

impl<T> Clone for Spare<T> {
    fn clone(&self) -> Self {
        Spare(Arc::clone(&self.0))
    }
}

impl<T> Spare<T> {
    fn new(limit: usize) -> Self {
        Spare(Arc::new(Mutex::new(SpareBuffers {
            buffers: Vec::new(),
            room: 0,
            limit,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, SpareBuffers<T>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `buffer`'s room for the writer, if there is room for it.
    pub(crate) fn give_back(&self, mut buffer: Vec<Envelope<T>>) {
        buffer.clear();
        let room = buffer.capacity();
        let mut spare = self.lock();
        if room > 0 && spare.room + room <= spare.limit {
            spare.room += room;
            spare.buffers.push(buffer);
        }
    }

    /// An empty buffer with room for `capacity` entries.
    fn take(&self, capacity: usize) -> Vec<Envelope<T>> {
        let mut buffer = {
            let mut spare = self.lock();
            let buffer = spare.buffers.pop().unwrap_or_default();
            spare.room -= buffer.capacity();
            buffer
        };
        buffer.reserve(capacity);
        buffer
    }
}

#[derive(Debug)]
struct Shared<T> {
    stage: StageId,
    options: JournalOptions,
    state: Mutex<State<T>>,
    /// Woken when entries are appended (shared with readers that wait on
    /// several journals at once).
    appended: Arc<Notify>,
    /// Woken when a reader moves on (the writer may have room again).
    consumed: Notify,
    spare: Spare<T>,
    /// Told when a reader of a gated journal has read all that is published
    /// while more waits to be: its durable writer then writes at once.
    starved: std::sync::OnceLock<Starved>,
    /// The estimated size of one entry, measured on some batches' first
    /// payload and reused for the others.
    entry_bytes: std::sync::atomic::AtomicU64,
    /// Batches appended, to measure one in [`SAMPLE_EVERY`] small ones.
    batches: std::sync::atomic::AtomicU64,
}

/// A batch of fewer entries than this has its size measured only one time
/// in [`SAMPLE_EVERY`]; a larger one always (one payload is encoded to
/// count its bytes, a small cost against the batch's).
const SAMPLE_BATCH: usize = 8;
const SAMPLE_EVERY: u64 = 16;

/// What a gated journal calls when a reader waits for what is not yet
/// published.
struct Starved(Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Starved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Starved")
    }
}

#[derive(Debug)]
struct State<T> {
    /// Appended batches still held, oldest first.
    chunks: VecDeque<Arc<Vec<Envelope<T>>>>,
    /// For each held batch: the sequence number after it, and the estimated
    /// bytes of every batch appended up to and including it.
    ends: VecDeque<(u64, u64)>,
    /// The estimated bytes of every batch appended.
    bytes: u64,
    /// The estimated bytes of the batches no longer held.
    base_bytes: u64,
    /// The sequence number of the first held entry.
    base: u64,
    /// The sequence number of the next entry.
    next: u64,
    /// Each registered reader's position; `None` once it is dropped.
    cursors: Vec<Option<u64>>,
    /// For a journal whose batches must be durable before anyone reads
    /// them: the end of what was made durable. `None`: everything appended
    /// is readable at once.
    published: Option<u64>,
    /// Why the journal can take no more batches (its durable copy failed).
    broken: Option<String>,
}

impl<T> State<T> {
    fn slowest(&self) -> Option<u64> {
        self.cursors.iter().flatten().copied().min()
    }

    /// Forgets the batches every reader has read.
    fn trim(&mut self, retain_all: bool) {
        if retain_all {
            return;
        }
        let keep_from = self.slowest().unwrap_or(self.next);
        while let Some(front) = self.chunks.front() {
            let end = self.base + front.len() as u64;
            if end > keep_from {
                break;
            }
            self.base = end;
            self.chunks.pop_front();
            if let Some((_, bytes)) = self.ends.pop_front() {
                self.base_bytes = bytes;
            }
        }
    }

    /// The estimated bytes of the entries before `seq`, a batch boundary
    /// (readers take whole batches).
    fn bytes_before(&self, seq: u64) -> u64 {
        match self.ends.binary_search_by_key(&seq, |(end, _)| *end) {
            Ok(index) => self.ends[index].1,
            // Before every held batch (or, for a reader placed inside one,
            // counted as not yet read).
            Err(0) => self.base_bytes,
            Err(index) => self.ends[index - 1].1,
        }
    }
}

impl<T: Payload> MemoryJournal<T> {
    /// An empty journal written by stage `stage`.
    pub fn new(stage: StageId, options: JournalOptions) -> Self {
        MemoryJournal {
            shared: Arc::new(Shared {
                stage,
                options,
                state: Mutex::new(State {
                    chunks: VecDeque::new(),
                    ends: VecDeque::new(),
                    bytes: 0,
                    base_bytes: 0,
                    base: 0,
                    next: 0,
                    cursors: Vec::new(),
                    published: None,
                    broken: None,
                }),
                appended: Arc::new(Notify::new()),
                consumed: Notify::new(),
                spare: Spare::new(options.capacity),
                starved: std::sync::OnceLock::new(),
                entry_bytes: std::sync::atomic::AtomicU64::new(0),
                batches: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the state half-changed
        // (every change is a single push, pop or assignment), so a poisoned
        // lock is still consistent.
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every entry still held, oldest first (all of them with `retain_all`).
    pub fn snapshot(&self) -> Vec<Envelope<T>> {
        let state = self.lock();
        state
            .chunks
            .iter()
            .flat_map(|c| c.iter().cloned())
            .collect()
    }

    /// How many entries the slowest reader has yet to read.
    pub fn lag(&self) -> u64 {
        let state = self.lock();
        state.slowest().map_or(0, |slowest| state.next - slowest)
    }

    /// The estimated bytes the entries the slowest reader has yet to read take.
    pub fn lag_bytes(&self) -> u64 {
        let state = self.lock();
        state
            .slowest()
            .map_or(0, |slowest| state.bytes - state.bytes_before(slowest))
    }

    /// Whether the writer may append now: there is room in entries and in
    /// bytes (or nothing is unread), or the journal is broken (and
    /// appending says so).
    fn has_room(&self) -> bool {
        let state = self.lock();
        let options = &self.shared.options;
        state.broken.is_some()
            || match state.slowest() {
                Some(slowest) => {
                    let ahead = state.bytes - state.bytes_before(slowest);
                    state.next - slowest < options.capacity as u64
                        && (ahead == 0 || ahead < options.capacity_bytes as u64)
                }
                None => true,
            }
    }

    /// The estimated bytes of `batch`: its length times the size of one
    /// entry, measured on its first payload (or, for a small batch, most
    /// times, taken from the last measurement).
    fn estimate(&self, batch: &[Envelope<T>]) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let shared = &self.shared;
        let count = shared.batches.fetch_add(1, Relaxed);
        let mut each = shared.entry_bytes.load(Relaxed);
        if each == 0 || batch.len() >= SAMPLE_BATCH || count.is_multiple_of(SAMPLE_EVERY) {
            let body = batch
                .first()
                .and_then(|entry| {
                    postcard::serialize_with_flavor::<_, postcard::ser_flavors::Size, usize>(
                        &entry.body,
                        postcard::ser_flavors::Size::default(),
                    )
                    .ok()
                })
                .unwrap_or(0);
            each = (std::mem::size_of::<Envelope<T>>() + body) as u64;
            shared.entry_bytes.store(each, Relaxed);
        }
        each * batch.len() as u64
    }

    /// Makes an empty journal continue an archived one of `next` entries:
    /// the next entry appended is number `next` (for a resumed run, whose
    /// readers read what came before from the archive).
    pub(crate) fn start_at(&self, next: u64) {
        let mut state = self.lock();
        if state.chunks.is_empty() {
            state.base = next;
            state.next = next;
            if let Some(published) = &mut state.published {
                *published = next;
            }
            for cursor in state.cursors.iter_mut().flatten() {
                *cursor = (*cursor).max(next);
            }
        }
    }

    /// From now on, readers see an appended batch only once it is
    /// [`publish`](Self::publish)ed (after its durable copy is written);
    /// `starved` is called when a reader has read all that is published
    /// while more has been appended.
    pub(crate) fn gate(&self, starved: impl Fn() + Send + Sync + 'static) {
        let mut state = self.lock();
        state.published = Some(state.next);
        let _ = self.shared.starved.set(Starved(Box::new(starved)));
    }

    /// Lets readers see every entry before `end`.
    pub(crate) fn publish(&self, end: u64) {
        let mut state = self.lock();
        if let Some(published) = &mut state.published {
            *published = (*published).max(end);
        }
        drop(state);
        self.shared.appended.notify_waiters();
    }

    /// Refuses further batches (and wakes a writer waiting for room) because
    /// the journal's durable copy failed for `reason`.
    pub(crate) fn break_with(&self, reason: String) {
        self.lock().broken = Some(reason);
        self.shared.consumed.notify_waiters();
    }

    /// Appends a batch, waiting while the journal is full, and returns it as
    /// the shared chunk readers will get.
    pub(crate) async fn append_shared(
        &self,
        batch: Vec<Envelope<T>>,
    ) -> Result<Arc<Vec<Envelope<T>>>, JournalError> {
        // One writer per journal: once there is room, only the writer can take it away.
        loop {
            let mut consumed = pin!(self.shared.consumed.notified());
            consumed.as_mut().enable();
            if self.has_room() {
                break;
            }
            consumed.await;
        }
        let (chunk, visible) = self.push(batch)?;
        // Readers of a gated journal are woken when it is published.
        if visible {
            self.shared.appended.notify_waiters();
        }
        Ok(chunk)
    }

    /// Adds a batch; returns it as a chunk, and whether readers may see it now.
    fn push(&self, batch: Vec<Envelope<T>>) -> Result<(SharedBatch<T>, bool), JournalError> {
        let bytes = self.estimate(&batch);
        let mut state = self.lock();
        if let Some(reason) = &state.broken {
            return Err(JournalError::Broken {
                stage: self.shared.stage.0,
                reason: reason.clone(),
            });
        }
        let first = batch[0].id.seq;
        if first != state.next {
            return Err(JournalError::SequenceGap {
                stage: self.shared.stage.0,
                expected: state.next,
                got: first,
            });
        }
        state.next += batch.len() as u64;
        state.bytes += bytes;
        let end = (state.next, state.bytes);
        state.ends.push_back(end);
        let chunk = Arc::new(batch);
        state.chunks.push_back(Arc::clone(&chunk));
        if state.cursors.iter().all(Option::is_none) {
            state.trim(self.shared.options.retain_all);
        }
        Ok((chunk, state.published.is_none()))
    }
}

impl<T: Payload> Journal<T> for MemoryJournal<T> {
    type Reader = MemoryReader<T>;

    async fn append(&self, batch: Vec<Envelope<T>>) -> Result<(), JournalError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.append_shared(batch).await.map(drop)
    }

    fn reader(&self, from: u64) -> Result<MemoryReader<T>, JournalError> {
        let mut state = self.lock();
        let oldest = if self.shared.options.retain_all {
            0
        } else {
            state.base
        };
        if from < oldest || from > state.next {
            return Err(JournalError::Trimmed {
                stage: self.shared.stage.0,
                requested: from,
                oldest,
            });
        }
        state.cursors.push(Some(from));
        Ok(MemoryReader {
            journal: self.clone(),
            slot: state.cursors.len() - 1,
            position: from,
        })
    }

    fn next_seq(&self) -> u64 {
        self.lock().next
    }

    fn buffer(&self, capacity: usize) -> Vec<Envelope<T>> {
        self.shared.spare.take(capacity)
    }
}

/// A reader of a [`MemoryJournal`]. Dropping it lets the journal forget what
/// only it still needed.
#[derive(Debug)]
pub struct MemoryReader<T: Payload> {
    journal: MemoryJournal<T>,
    slot: usize,
    position: u64,
}

impl<T: Payload> MemoryReader<T> {
    /// Moves a reader of a journal nothing has been appended to yet to
    /// `position` (where its journal will [start](MemoryJournal::start_at)).
    pub(crate) fn resume_at(&mut self, position: u64) {
        let mut state = self.journal.lock();
        self.position = position;
        state.cursors[self.slot] = Some(position);
    }

    /// What the journal notifies when it appends; enable a `notified()` on it
    /// before [`try_next`](Self::try_next) to wait without missing a batch.
    pub(crate) fn appended(&self) -> Arc<Notify> {
        Arc::clone(&self.journal.shared.appended)
    }

    /// Takes the batch holding this reader's position, if it has been appended.
    pub(crate) fn try_next(&mut self) -> Option<Chunk<T>> {
        let shared = &self.journal.shared;
        let mut state = self.journal.lock();
        if self.position >= state.published.unwrap_or(state.next) {
            let starved = self.position < state.next;
            drop(state);
            if starved && let Some(Starved(starved)) = shared.starved.get() {
                starved();
            }
            return None;
        }
        let mut first = state.base;
        let mut found = None;
        for chunk in &state.chunks {
            let end = first + chunk.len() as u64;
            if self.position < end {
                found = Some((Arc::clone(chunk), (self.position - first) as usize, end));
                break;
            }
            first = end;
        }
        let (entries, start, end) = found?;
        self.position = end;
        state.cursors[self.slot] = Some(end);
        state.trim(shared.options.retain_all);
        drop(state);
        shared.consumed.notify_waiters();
        Some(Chunk::new(entries, start).returning_to(shared.spare.clone()))
    }
}

impl<T: Payload> JournalReader<T> for MemoryReader<T> {
    async fn next_chunk(&mut self) -> Result<Chunk<T>, JournalError> {
        loop {
            let shared = Arc::clone(&self.journal.shared);
            let mut appended = pin!(shared.appended.notified());
            appended.as_mut().enable();
            if let Some(chunk) = self.try_next() {
                return Ok(chunk);
            }
            appended.await;
        }
    }

    fn position(&self) -> u64 {
        self.position
    }
}

impl<T: Payload> Drop for MemoryReader<T> {
    fn drop(&mut self) {
        let mut state = self.journal.lock();
        state.cursors[self.slot] = None;
        state.trim(self.journal.shared.options.retain_all);
        drop(state);
        self.journal.shared.consumed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, EventId, Parents};
    use crate::journal::JournalWriter;

    fn batch(writer: &mut JournalWriter<u64, MemoryJournal<u64>>) {
        for n in 0..4 {
            writer.push(Parents::None, Body::Data(n));
        }
    }

    /// A buffer a reader empties goes back to the journal's writer, which
    /// fills it with its next batch; the journal keeps no more room than its
    /// window, so buffers beyond it are freed.
    #[tokio::test]
    async fn emptied_buffers_go_back_to_the_writer_up_to_the_window() {
        let journal = MemoryJournal::new(
            StageId(0),
            JournalOptions {
                capacity: 6,
                ..JournalOptions::default()
            },
        );
        let mut reader = journal.reader(0).unwrap();
        let mut writer = JournalWriter::new(journal.clone(), StageId(0));
        batch(&mut writer);
        writer.flush().await.unwrap();
        batch(&mut writer);
        writer.flush().await.unwrap();

        let (first, spare) = reader.try_next().unwrap().into_parts();
        let (second, _) = reader.try_next().unwrap().into_parts();
        assert_eq!(
            first
                .iter()
                .chain(&second)
                .map(|e| e.id.seq)
                .collect::<Vec<_>>(),
            (0..8).collect::<Vec<_>>()
        );
        let spare = spare.expect("a moved-out batch has a place to go back to");
        let kept = first.as_ptr();
        assert!(first.capacity() >= 4 && second.capacity() >= 4);
        spare.give_back(first);
        // A second buffer would take the spare room past the window of 6.
        spare.give_back(second);
        assert_eq!(spare.lock().buffers.len(), 1);

        // The writer is filling the buffer it took at its last flush; the
        // one kept is what it takes at the next, for the batch after.
        batch(&mut writer);
        writer.flush().await.unwrap();
        assert!(spare.lock().buffers.is_empty());
        assert_eq!(spare.lock().room, 0);
        batch(&mut writer);
        writer.flush().await.unwrap();
        let _third = reader.try_next().unwrap();
        let fourth = reader.try_next().unwrap().into_entries();
        assert_eq!(fourth.as_ptr(), kept);
        assert_eq!(
            fourth.iter().map(|e| e.id).collect::<Vec<_>>(),
            (12..16)
                .map(|seq| EventId {
                    stage: StageId(0),
                    seq
                })
                .collect::<Vec<_>>()
        );
    }

    /// A reader that has read all that is published, while more has been
    /// appended, tells the gate (so that the durable writer writes at
    /// once); one with nothing more to wait for does not.
    #[tokio::test]
    async fn a_reader_waiting_for_what_is_not_yet_published_says_so() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let journal = MemoryJournal::new(StageId(0), JournalOptions::default());
        let starved = Arc::new(AtomicUsize::new(0));
        journal.gate({
            let starved = Arc::clone(&starved);
            move || {
                starved.fetch_add(1, Ordering::SeqCst);
            }
        });
        let mut reader = journal.reader(0).unwrap();
        assert!(reader.try_next().is_none());
        assert_eq!(starved.load(Ordering::SeqCst), 0, "nothing was appended");

        let mut writer = JournalWriter::new(journal.clone(), StageId(0));
        batch(&mut writer);
        writer.flush().await.unwrap();
        assert!(reader.try_next().is_none(), "not published yet");
        assert_eq!(starved.load(Ordering::SeqCst), 1);

        journal.publish(4);
        let chunk = reader.try_next().expect("published");
        assert_eq!(chunk.len(), 4);
        assert!(reader.try_next().is_none());
        assert_eq!(
            starved.load(Ordering::SeqCst),
            1,
            "all that was appended is read"
        );
    }
}
