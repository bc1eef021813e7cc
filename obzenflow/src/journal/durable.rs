//! A stage's durable copy, written off the stage's task: the stage appends a
//! batch to its memory journal, where readers cannot see it yet, encodes it
//! as a block while it is still in the cache, and hands the block to a writer
//! thread. The thread writes the blocks that arrived while it was busy, and
//! those that keep arriving for a moment more, with one write and one fsync
//! (a group commit), then publishes them to the readers. So no reader sees an
//! entry before it is on disk (and fsynced, by the default policy), and the
//! stage does not wait for the disk unless its window is full.
//!
//! A group is held open while blocks keep coming (each within [`GAP`] of the
//! last) until it holds an eighth of the window or has been open for
//! [`HOLD`]; a block the stage waits on (its EOF) closes it at once. Every
//! fsync costs the kernel work and this virtualized disk a flush, so fewer,
//! larger groups leave more of 2 cores to the stages: `cargo bench --bench
//! pipeline_linear` measured the durable flow at ~3.0–3.2x the memory flow
//! with groups closed as soon as the thread was free, 2.4–2.8x held so (with
//! the disk window of 131,072 entries). (Two ways of fsyncing on a
//! second thread while the next group is written were measured: handing
//! each group over at once made groups smaller and fsyncs twice as many;
//! handing over only once the previous fsync ended kept the groups, and
//! `cargo bench --bench pipeline_linear` did not tell it from this one.)

use super::DiskJournal;
use super::block::BlockEncoder;
use super::memory::MemoryJournal;
use crate::event::{Envelope, Payload};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a group is held open at most while blocks keep coming.
const HOLD: Duration = Duration::from_millis(2);
/// How long a held group waits for the next block before it is written.
const GAP: Duration = Duration::from_micros(250);

/// What the stage hands over: encoded blocks, the sequence number after
/// their last record, and whether the stage will wait for them.
struct Handover {
    blocks: Vec<u8>,
    end: u64,
    urgent: bool,
}

/// What the thread tells the stage.
#[derive(Debug, Default)]
struct Progress {
    /// The end of what is durable (and published).
    durable: AtomicU64,
    /// Why writing stopped, if it failed.
    failure: Mutex<Option<String>>,
    /// Woken when `durable` moves or writing fails.
    moved: Notify,
}

impl Progress {
    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The stage's side of its durable writer.
#[derive(Debug)]
pub(crate) struct DurableWriter<T: Payload> {
    blocks: Option<mpsc::Sender<Handover>>,
    encoder: BlockEncoder,
    /// The size of the last block, to size the next one's buffer.
    last_len: usize,
    progress: Arc<Progress>,
    thread: Option<JoinHandle<()>>,
    /// The end of what was handed over.
    sent: u64,
    /// How far the thread may fall behind before the stage waits: readers
    /// bound a journal's backlog by its window, but a journal nobody reads
    /// (a sink's receipts) needs this bound of its own.
    window: u64,
    _payload: std::marker::PhantomData<fn(T)>,
}

impl<T: Payload> DurableWriter<T> {
    /// Starts writing `journal`'s batches to `disk`, publishing each once
    /// written; `journal` is gated from now on. The stage waits when the
    /// thread is more than `window` entries behind. The thread is named
    /// after the stage.
    pub(crate) fn start(
        stage: &str,
        disk: DiskJournal<T>,
        journal: MemoryJournal<T>,
        window: usize,
    ) -> std::io::Result<Self> {
        journal.gate();
        let (blocks, receiver) = mpsc::channel();
        let encoder = BlockEncoder::new(disk.next_seq());
        let progress = Arc::new(Progress {
            durable: AtomicU64::new(disk.next_seq()),
            ..Progress::default()
        });
        let sent = disk.next_seq();
        let group = (window as u64 / 8).max(1);
        let thread = std::thread::Builder::new()
            .name(format!("journal {stage}"))
            .stack_size(256 * 1024)
            .spawn({
                let progress = Arc::clone(&progress);
                move || write_batches(disk, journal, receiver, &progress, group)
            })?;
        Ok(DurableWriter {
            blocks: Some(blocks),
            encoder,
            last_len: 0,
            progress,
            thread: Some(thread),
            sent,
            window: window as u64,
            _payload: std::marker::PhantomData,
        })
    }

    /// Encodes a batch appended to the memory journal and hands it over to
    /// be written; `urgent` if the stage will wait for it to be durable. A
    /// record that cannot be encoded fails the stage here.
    pub(crate) fn write(&mut self, batch: &[Envelope<T>], urgent: bool) -> Result<(), String> {
        self.check()?;
        let mut block = Vec::with_capacity(self.last_len);
        self.encoder
            .encode(&mut block, [batch])
            .map_err(|error| format!("disk journal: {error}"))?;
        if block.is_empty() {
            return Ok(());
        }
        self.last_len = block.len();
        self.sent = self.encoder.next_seq();
        let handed = self.blocks.as_ref().is_some_and(|b| {
            b.send(Handover {
                blocks: block,
                end: self.sent,
                urgent,
            })
            .is_ok()
        });
        if handed {
            Ok(())
        } else {
            Err(self
                .progress
                .failure()
                .unwrap_or_else(|| "the journal writer thread ended".to_owned()))
        }
    }

    /// An error if writing has failed.
    pub(crate) fn check(&self) -> Result<(), String> {
        match self.progress.failure() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// Waits until at most `behind` entries handed over are not yet durable.
    async fn within(&self, behind: u64) -> Result<(), String> {
        loop {
            let mut moved = pin!(self.progress.moved.notified());
            moved.as_mut().enable();
            self.check()?;
            let durable = self.progress.durable.load(Ordering::Acquire);
            if self.sent.saturating_sub(durable) <= behind {
                return Ok(());
            }
            moved.await;
        }
    }

    /// Waits while the thread is more than a window behind.
    pub(crate) async fn keep_up(&self) -> Result<(), String> {
        self.within(self.window).await
    }

    /// Waits until everything handed over is durable.
    pub(crate) async fn synced(&self) -> Result<(), String> {
        self.within(0).await
    }
}

impl<T: Payload> Drop for DurableWriter<T> {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has written what it
        // holds; wait for that, so that nothing writes to the run after the
        // stage is gone.
        self.blocks = None;
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
    receiver: mpsc::Receiver<Handover>,
    progress: &Progress,
    group: u64,
) {
    let mut written = disk.next_seq();
    while let Ok(first) = receiver.recv() {
        let opened = Instant::now();
        let Handover {
            blocks: mut bytes,
            mut end,
            mut urgent,
        } = first;
        loop {
            for more in receiver.try_iter() {
                bytes.extend_from_slice(&more.blocks);
                end = more.end;
                urgent |= more.urgent;
            }
            let left = HOLD.saturating_sub(opened.elapsed());
            if urgent || end - written >= group || left.is_zero() {
                break;
            }
            match receiver.recv_timeout(left.min(GAP)) {
                Ok(more) => {
                    bytes.extend_from_slice(&more.blocks);
                    end = more.end;
                    urgent |= more.urgent;
                }
                Err(_) => break,
            }
        }
        written = end;
        if let Err(error) = disk.append_encoded(&bytes, end) {
            let reason = format!("disk journal: {error}");
            journal.break_with(reason.clone());
            *progress
                .failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(reason);
            progress.moved.notify_waiters();
            return;
        }
        journal.publish(end);
        progress.durable.store(end, Ordering::Release);
        progress.moved.notify_waiters();
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
        let mut writer = DurableWriter::start("full", disk, journal.clone(), 16).unwrap();
        let chunk = journal.append_shared(envelope(0)).await.unwrap();
        writer.write(&chunk, true).unwrap();
        let error = writer.synced().await.unwrap_err();
        assert!(
            error.starts_with("disk journal: journal file ") && error.contains("No space left"),
            "{error}"
        );
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
