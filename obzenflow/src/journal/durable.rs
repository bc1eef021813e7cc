//! A stage's durable copy, written off the stage's task: the stage appends a
//! batch to its memory journal, where readers cannot see it yet, and hands
//! it to a writer thread. The thread writes every batch that arrived while
//! it was busy as one block with one write and one fsync (a group commit),
//! then publishes them to the readers. So no reader sees an entry before it
//! is on disk (and fsynced, by the default policy), and the stage does not
//! wait for the disk unless its window is full. (Two ways of fsyncing on a
//! second thread while the next group is written were measured: handing
//! each group over at once made groups smaller and fsyncs twice as many;
//! handing over only once the previous fsync ended kept the groups, and
//! `cargo bench --bench pipeline_linear` did not tell it from this one.)

use super::DiskJournal;
use super::memory::MemoryJournal;
use crate::event::{Envelope, Payload};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use tokio::sync::Notify;

type Batch<T> = Arc<Vec<Envelope<T>>>;

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
    batches: Option<mpsc::Sender<Batch<T>>>,
    progress: Arc<Progress>,
    thread: Option<JoinHandle<()>>,
    /// The end of what was handed over.
    sent: u64,
    /// How far the thread may fall behind before the stage waits: readers
    /// bound a journal's backlog by its window, but a journal nobody reads
    /// (a sink's receipts) needs this bound of its own.
    window: u64,
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
        let (batches, receiver) = mpsc::channel();
        let progress = Arc::new(Progress {
            durable: AtomicU64::new(disk.next_seq()),
            ..Progress::default()
        });
        let sent = disk.next_seq();
        let thread = std::thread::Builder::new()
            .name(format!("journal {stage}"))
            .stack_size(256 * 1024)
            .spawn({
                let progress = Arc::clone(&progress);
                move || write_batches(disk, journal, receiver, &progress)
            })?;
        Ok(DurableWriter {
            batches: Some(batches),
            progress,
            thread: Some(thread),
            sent,
            window: window as u64,
        })
    }

    /// Hands a batch appended to the memory journal over to be written.
    pub(crate) fn write(&mut self, batch: Batch<T>) -> Result<(), String> {
        self.check()?;
        if let Some(last) = batch.last() {
            self.sent = last.id.seq + 1;
        }
        let handed = self.batches.as_ref().is_some_and(|b| b.send(batch).is_ok());
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
        self.batches = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_batches<T: Payload>(
    mut disk: DiskJournal<T>,
    journal: MemoryJournal<T>,
    receiver: mpsc::Receiver<Batch<T>>,
    progress: &Progress,
) {
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        group.extend(receiver.try_iter());
        let end = group
            .iter()
            .rev()
            .find_map(|batch| batch.last())
            .map_or(disk.next_seq(), |last| last.id.seq + 1);
        if let Err(error) = disk.append_all(group.iter().map(|batch| batch.as_slice())) {
            let reason = format!("disk journal: {error}");
            journal.break_with(reason.clone());
            *progress
                .failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(reason);
            progress.moved.notify_waiters();
            return;
        }
        // Let go of the batches before readers can take them, so that a
        // sole reader takes its chunk without copying it.
        drop(group);
        journal.publish(end);
        progress.durable.store(end, Ordering::Release);
        progress.moved.notify_waiters();
    }
}
