//! A stage's durable copy, written off the stage's task: the stage appends a
//! batch to its memory journal, where readers cannot see it yet, encodes it
//! as a block while it is still in the cache, and queues the block for a
//! writer thread. The thread writes what is queued with one write and one
//! fsync (a group commit), then publishes it to the readers. So no reader
//! sees an entry before it is on disk (and fsynced, by the default policy),
//! and the stage does not wait for the disk unless its window is full.
//!
//! A group is held open until it holds a quarter of the window or has been
//! open for [`HOLD`]; a block the stage waits on (its EOF) closes it at once,
//! and so does a reader that has read all that is published while more is
//! queued, or the stage waiting for room: holding a group saves fsyncs only
//! while the stages around it have other work, and otherwise leaves a core
//! idle. The stage wakes the thread only for what it waits for (the first
//! block of a group, a full group, or such a block), so that queueing a
//! block is a lock and a copy, not a system call. BENCHMARKS.md has the
//! measurements behind these choices and the ones that were tried and
//! dropped.

use super::DiskJournal;
use super::JournalFailure;
use super::block::BlockEncoder;
use super::memory::MemoryJournal;
use crate::event::{Envelope, Payload};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a group is held open at most.
const HOLD: Duration = Duration::from_millis(2);
/// A group closes once it holds this share of the window.
const GROUP_SHARE: u64 = 4;

/// What the thread waits for, so the stage wakes it only when it must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Nothing: the thread is writing, or already woken.
    Nothing,
    /// The first block of a group.
    First,
    /// A full group, or a block the stage will wait on.
    Group,
}

/// Blocks handed over and not yet taken by the thread.
#[derive(Debug)]
struct Queue {
    blocks: Vec<u8>,
    /// The sequence number after the last record in `blocks`.
    end: u64,
    /// The sequence number after the last record the thread took.
    taken: u64,
    /// Whether the stage will wait for what is queued.
    urgent: bool,
    /// Whether a reader (or the stage, for room) waits for what is queued.
    demand: bool,
    /// The stage is gone: write what is queued and end.
    closed: bool,
    waiting: Waiting,
}

/// What the stage and its thread share.
#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the thread.
    ready: Condvar,
    /// The end of what is durable (and published).
    durable: AtomicU64,
    /// Why writing stopped, if it failed.
    failure: Mutex<Option<JournalFailure>>,
    /// Woken when `durable` moves or writing fails.
    moved: Notify,
}

impl Shared {
    fn failure(&self) -> Option<JournalFailure> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Someone waits for what is queued: the thread writes it at once
    /// rather than holding the group open.
    fn demand(&self) {
        let mut queue = self.queue();
        if !queue.demand {
            queue.demand = true;
            if queue.waiting == Waiting::Group {
                queue.waiting = Waiting::Nothing;
                drop(queue);
                self.ready.notify_one();
            }
        }
    }
}

/// How many records of a stage's journal are on disk: what its durable
/// writer has written (and fsynced, by the default policy) so far, and all
/// it ever wrote once the writer is gone.
#[derive(Clone, Debug)]
pub(crate) struct Written(Arc<Shared>);

impl Written {
    pub(crate) fn records(&self) -> u64 {
        self.0.durable.load(Ordering::Acquire)
    }
}

/// The stage's side of its durable writer.
#[derive(Debug)]
pub(crate) struct DurableWriter<T: Payload> {
    encoder: BlockEncoder,
    /// The block being encoded, kept to reuse its space.
    block: Vec<u8>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The end of what was handed over.
    sent: u64,
    /// How many records make a group worth waking the thread for.
    group: u64,
    /// How far the thread may fall behind before the stage waits: readers
    /// bound a journal's backlog by its window, but a journal nobody reads
    /// (a sink's receipts) needs this bound of its own.
    window: u64,
    /// The same bound in bytes of encoded blocks queued.
    window_bytes: usize,
    _payload: std::marker::PhantomData<fn(T)>,
}

impl<T: Payload> DurableWriter<T> {
    /// Starts writing `journal`'s batches to `disk`, publishing each once
    /// written; `journal` is gated from now on. The stage waits when the
    /// thread is more than `window` entries or `window_bytes` bytes of
    /// blocks behind. The thread is named after the stage.
    pub(crate) fn start(
        stage: &str,
        disk: DiskJournal<T>,
        journal: MemoryJournal<T>,
        window: usize,
        window_bytes: usize,
    ) -> std::io::Result<Self> {
        let encoder = BlockEncoder::new(disk.next_seq());
        let sent = disk.next_seq();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                blocks: Vec::new(),
                end: sent,
                taken: sent,
                urgent: false,
                demand: false,
                closed: false,
                waiting: Waiting::Nothing,
            }),
            ready: Condvar::new(),
            durable: AtomicU64::new(sent),
            failure: Mutex::new(None),
            moved: Notify::new(),
        });
        journal.gate({
            let shared = Arc::clone(&shared);
            move || shared.demand()
        });
        let group = (window as u64 / GROUP_SHARE).max(1);
        let thread = std::thread::Builder::new()
            .name(format!("journal {stage}"))
            .stack_size(256 * 1024)
            .spawn({
                let shared = Arc::clone(&shared);
                move || write_batches(disk, journal, &shared, group, window_bytes)
            })?;
        Ok(DurableWriter {
            encoder,
            block: Vec::new(),
            shared,
            thread: Some(thread),
            sent,
            group,
            window: window as u64,
            window_bytes,
            _payload: std::marker::PhantomData,
        })
    }

    /// Encodes a batch appended to the memory journal and hands it over to
    /// be written; `urgent` if the stage will wait for it to be durable. A
    /// record that cannot be encoded fails the stage here.
    pub(crate) fn write(
        &mut self,
        batch: &[Envelope<T>],
        urgent: bool,
    ) -> Result<(), JournalFailure> {
        self.check()?;
        self.block.clear();
        self.encoder
            .encode(&mut self.block, [batch])
            .map_err(|error| JournalFailure::from(&error))?;
        if self.block.is_empty() {
            return Ok(());
        }
        self.sent = self.encoder.next_seq();
        let wake = {
            let mut queue = self.shared.queue();
            if queue.closed {
                drop(queue);
                return Err(self.shared.failure().unwrap_or_else(|| JournalFailure {
                    path: None,
                    offset: None,
                    kind: std::io::ErrorKind::BrokenPipe,
                    message: "the journal writer thread ended".to_owned(),
                }));
            }
            queue.blocks.extend_from_slice(&self.block);
            queue.end = self.sent;
            queue.urgent |= urgent;
            let wake = match queue.waiting {
                Waiting::Nothing => false,
                Waiting::First => true,
                Waiting::Group => urgent || self.sent - queue.taken >= self.group,
            };
            if wake {
                queue.waiting = Waiting::Nothing;
            }
            wake
        };
        if wake {
            self.shared.ready.notify_one();
        }
        Ok(())
    }

    /// What it has written so far, readable after it is gone.
    pub(crate) fn written(&self) -> Written {
        Written(Arc::clone(&self.shared))
    }

    /// An error if writing has failed.
    pub(crate) fn check(&self) -> Result<(), JournalFailure> {
        match self.shared.failure() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// Waits until at most `behind` entries (and `behind_bytes` bytes of
    /// queued blocks) handed over are not yet durable.
    async fn within(&self, behind: u64, behind_bytes: usize) -> Result<(), JournalFailure> {
        loop {
            let mut moved = pin!(self.shared.moved.notified());
            moved.as_mut().enable();
            self.check()?;
            let durable = self.shared.durable.load(Ordering::Acquire);
            if self.sent.saturating_sub(durable) <= behind
                && self.shared.queue().blocks.len() <= behind_bytes
            {
                return Ok(());
            }
            self.shared.demand();
            moved.await;
        }
    }

    /// Waits while the thread is more than a window behind.
    pub(crate) async fn keep_up(&self) -> Result<(), JournalFailure> {
        self.within(self.window, self.window_bytes).await
    }

    /// Waits until everything handed over is durable.
    pub(crate) async fn synced(&self) -> Result<(), JournalFailure> {
        self.within(0, 0).await
    }
}

impl<T: Payload> Drop for DurableWriter<T> {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has written what it
        // holds; wait for that, so that nothing writes to the run after the
        // stage is gone.
        self.shared.queue().closed = true;
        self.shared.ready.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes groups of blocks as they come, holding each open as the module
/// says until it has `group` records.
fn write_batches<T: Payload>(
    mut disk: DiskJournal<T>,
    journal: MemoryJournal<T>,
    shared: &Shared,
    group: u64,
    window_bytes: usize,
) {
    let fail = |error: super::DiskJournalError| {
        let failure = JournalFailure::from(&error);
        journal.break_with(failure.message.clone());
        *shared
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(failure);
        shared.queue().closed = true;
        shared.moved.notify_waiters();
    };
    if let Err(error) = disk.sync_names() {
        return fail(error);
    }
    let mut bytes = Vec::new();
    loop {
        let end = {
            let mut queue = shared.queue();
            while queue.blocks.is_empty() && !queue.closed {
                queue.waiting = Waiting::First;
                queue = shared
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if queue.blocks.is_empty() {
                return;
            }
            let opened = Instant::now();
            loop {
                let left = HOLD.saturating_sub(opened.elapsed());
                if queue.urgent
                    || queue.demand
                    || queue.closed
                    || queue.end - queue.taken >= group
                    || left.is_zero()
                {
                    break;
                }
                queue.waiting = Waiting::Group;
                queue = shared
                    .ready
                    .wait_timeout(queue, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            queue.waiting = Waiting::Nothing;
            queue.urgent = false;
            std::mem::swap(&mut bytes, &mut queue.blocks);
            queue.taken = queue.end;
            queue.end
        };
        if let Err(error) = disk.append_encoded(&bytes, end) {
            return fail(error);
        }
        bytes.clear();
        // After a spike of large records, give the memory back: this buffer
        // and the queue's trade places at every group.
        if bytes.capacity() > 2 * window_bytes {
            bytes = Vec::new();
        }
        // Whoever waited had waited for this group.
        shared.queue().demand = false;
        journal.publish(end);
        shared.durable.store(end, Ordering::Release);
        shared.moved.notify_waiters();
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::event::{Body, EventId, Parents, StageId};
    use crate::journal::{DiskJournalOptions, Journal, JournalError, JournalOptions};

    fn envelope(seq: u64) -> Vec<Envelope<u64>> {
        vec![Envelope {
            id: EventId {
                stage: StageId(0),
                seq,
            },
            parents: Parents::None,
            timestamp_micros: 1,
            body: Body::Data(seq),
        }]
    }

    /// A disk that is full: the thread's write fails, the stage waiting for
    /// it hears why, no reader ever sees the batch, and the journal takes
    /// nothing more.
    #[tokio::test]
    async fn a_failed_write_is_reported_and_nothing_is_published() {
        let dir =
            std::env::temp_dir().join(format!("obzenflow-durable-full-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut disk, _) = DiskJournal::<u64>::open(&dir, DiskJournalOptions::default()).unwrap();
        // Every write to /dev/full fails with ENOSPC.
        disk.write_to(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        );
        let journal = MemoryJournal::new(StageId(0), JournalOptions::default());
        let mut reader = journal.reader(0).unwrap();
        let mut writer = DurableWriter::start("full", disk, journal.clone(), 16, 1 << 20).unwrap();
        let chunk = journal.append_shared(envelope(0)).await.unwrap();
        writer.write(&chunk, true).unwrap();
        let error = writer.synced().await.unwrap_err();
        assert_eq!(error.kind, std::io::ErrorKind::StorageFull, "{error}");
        assert!(error.path.is_some(), "{error}");
        assert!(error.message.contains("No space left"), "{error}");
        assert!(reader.try_next().is_none());
        assert!(matches!(
            journal.append_shared(envelope(1)).await,
            Err(JournalError::Broken { .. })
        ));
        assert_eq!(writer.write(&chunk, false), Err(error));
        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
