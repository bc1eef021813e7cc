//! The single writer of a journal: numbers entries, stamps each batch once,
//! and appends a batch at a time.

use super::{Journal, JournalError};
use crate::event::{Body, Envelope, EventId, Parents, Payload, StageId, now_micros};
use std::marker::PhantomData;

/// Builds and appends batches for one journal. There is one per journal, so
/// sequence numbers are assigned here without contention.
#[derive(Debug)]
pub struct JournalWriter<T, J> {
    journal: J,
    stage: StageId,
    next_seq: u64,
    pending: Vec<Envelope<T>>,
    stamp: u64,
    _payload: PhantomData<fn(T)>,
}

impl<T: Payload, J: Journal<T>> JournalWriter<T, J> {
    /// A writer that continues `journal` as stage `stage`.
    pub fn new(journal: J, stage: StageId) -> Self {
        JournalWriter {
            next_seq: journal.next_seq(),
            journal,
            stage,
            pending: Vec::new(),
            stamp: 0,
            _payload: PhantomData,
        }
    }

    /// Adds an entry to the pending batch and returns its id.
    #[inline]
    pub fn push(&mut self, parents: Parents, body: Body<T>) -> EventId {
        if self.pending.is_empty() {
            self.stamp = now_micros();
        }
        let id = EventId {
            stage: self.stage,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.pending.push(Envelope {
            id,
            parents,
            timestamp_micros: self.stamp,
            body,
        });
        id
    }

    /// How many entries wait to be appended.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The entries waiting to be appended.
    pub fn pending_entries(&self) -> &[Envelope<T>] {
        &self.pending
    }

    /// Appends the pending batch, if any, waiting while the journal is full.
    pub async fn flush(&mut self) -> Result<(), JournalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = self.take_pending();
        self.journal.append(batch).await
    }

    /// Takes the pending batch, to append it some other way.
    pub(crate) fn take_pending(&mut self) -> Vec<Envelope<T>> {
        // The next batch is likely the size of this one: make room once.
        let capacity = self.pending.len();
        std::mem::replace(&mut self.pending, self.journal.buffer(capacity))
    }

    /// The journal written to.
    pub fn journal(&self) -> &J {
        &self.journal
    }
}
