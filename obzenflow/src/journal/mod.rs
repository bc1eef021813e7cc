//! Journals: the append-only logs that every stage writes its output to and
//! its downstream stages read from.
//!
//! A journal has one writer, which numbers its entries (see [`JournalWriter`]),
//! and any number of readers, each with its own position. [`MemoryJournal`]
//! is the live edge between stages: it hands out appended batches as shared
//! chunks, wakes waiting readers once per batch, holds a writer back while its
//! slowest reader is more than its capacity behind, and forgets what every
//! reader has read unless it is asked to retain everything.

mod block;
pub mod disk;
mod durable;
mod failure;
mod memory;
mod writer;

pub use disk::{DiskJournal, DiskJournalError, DiskJournalOptions, FsyncPolicy, Recovery};
pub(crate) use durable::{DurableWriter, Written};
pub use failure::JournalFailure;
pub(crate) use memory::Spare;
pub use memory::{JournalOptions, MemoryJournal, MemoryReader, WINDOW_BYTES};
pub use writer::JournalWriter;

use crate::event::{Envelope, Payload};
use std::future::Future;
use std::sync::Arc;

/// An append-only log of envelopes with one writer and many readers.
pub trait Journal<T: Payload>: Send + Sync + 'static {
    /// Reads the journal from a position.
    type Reader: JournalReader<T>;

    /// Appends a batch whose sequence numbers continue the journal's; waits
    /// while the journal is full (its slowest reader a capacity behind).
    fn append(
        &self,
        batch: Vec<Envelope<T>>,
    ) -> impl Future<Output = Result<(), JournalError>> + Send;

    /// A reader that starts at sequence number `from`.
    fn reader(&self, from: u64) -> Result<Self::Reader, JournalError>;

    /// The sequence number the next appended entry gets.
    fn next_seq(&self) -> u64;

    /// An empty buffer for a batch of about `capacity` entries (one a
    /// reader has emptied, if the journal keeps them).
    fn buffer(&self, capacity: usize) -> Vec<Envelope<T>> {
        Vec::with_capacity(capacity)
    }
}

/// One reader's view of a journal.
pub trait JournalReader<T: Payload>: Send + 'static {
    /// The next entries, waiting (without spinning) until there are some.
    fn next_chunk(&mut self) -> impl Future<Output = Result<Chunk<T>, JournalError>> + Send;

    /// The sequence number of the next entry this reader will see.
    fn position(&self) -> u64;
}

/// Entries handed to a reader: a batch as its writer appended it, shared with
/// the journal's other readers, from `start` on.
#[derive(Debug)]
pub struct Chunk<T> {
    entries: Arc<Vec<Envelope<T>>>,
    start: usize,
    /// Where the batch's buffer goes once it is read, if it is moved out.
    spare: Option<memory::Spare<T>>,
}

impl<T: Clone> Chunk<T> {
    pub(crate) fn new(entries: Arc<Vec<Envelope<T>>>, start: usize) -> Self {
        Chunk {
            entries,
            start,
            spare: None,
        }
    }

    /// Its buffer, once emptied, is to go back to `spare`.
    pub(crate) fn returning_to(mut self, spare: memory::Spare<T>) -> Self {
        self.spare = Some(spare);
        self
    }

    /// The entries, by reference.
    pub fn entries(&self) -> &[Envelope<T>] {
        &self.entries[self.start..]
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len() - self.start
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, owned: moved out when no one else holds the batch (the
    /// journal has forgotten it and no other reader has it), cloned otherwise.
    pub fn into_entries(self) -> Vec<Envelope<T>> {
        self.into_parts().0
    }

    /// The entries, owned (as [`into_entries`](Self::into_entries)), and
    /// where to give their buffer back once emptied, if they were moved.
    pub(crate) fn into_parts(self) -> (Vec<Envelope<T>>, Option<memory::Spare<T>>) {
        let start = self.start;
        match Arc::try_unwrap(self.entries) {
            Ok(mut entries) => {
                entries.drain(..start);
                (entries, self.spare)
            }
            Err(shared) => (shared[start..].to_vec(), None),
        }
    }
}

/// What can go wrong with a journal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// A reader asked for entries the journal has already forgotten.
    #[error(
        "journal of stage {stage}: entries before {oldest} were already trimmed, \
         so a reader cannot start at {requested}; retain the journal to read it from the start"
    )]
    Trimmed {
        /// The journal's stage.
        stage: u32,
        /// Where the reader wanted to start.
        requested: u64,
        /// The oldest entry still held.
        oldest: u64,
    },
    /// An appended batch does not continue the journal's numbering.
    #[error("journal of stage {stage}: appended entry has sequence {got}, expected {expected}")]
    SequenceGap {
        /// The journal's stage.
        stage: u32,
        /// The next sequence number the journal expected.
        expected: u64,
        /// The one it got.
        got: u64,
    },
    /// The journal's durable copy failed, so it takes no more batches.
    #[error("journal of stage {stage} is broken: {reason}")]
    Broken {
        /// The journal's stage.
        stage: u32,
        /// What failed.
        reason: String,
    },
}
