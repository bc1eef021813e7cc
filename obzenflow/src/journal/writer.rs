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

    /// Whether the last entry pending names `id` among its parents (the
    /// last of a range).
    pub(crate) fn last_pending_names(&self, id: EventId) -> bool {
        self.pending.last().is_some_and(|last| match &last.parents {
            Parents::Range([_, end]) => *end == id,
            parents => parents.ids().last() == Some(&id),
        })
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

    /// Adds an entry for each of `items`, each made from `parent` (or from
    /// nothing if `None`).
    ///
    /// Each envelope is built where it is stored, rather than built apart
    /// and copied in as `push` in a loop would (which reads each back in
    /// wider pieces than it was written in, and so waits on the store
    /// buffer; BENCHMARKS.md has the figures).
    #[inline]
    pub fn push_all(&mut self, parent: Option<EventId>, items: impl IntoIterator<Item = T>) {
        self.push_data(items.into_iter().map(|item| (parent, item)));
    }

    /// Adds an entry for each of `items`, each made from the input it names.
    #[inline]
    pub fn push_each(&mut self, items: impl IntoIterator<Item = (EventId, T)>) {
        self.push_data(items.into_iter().map(|(parent, item)| (Some(parent), item)));
    }

    #[inline]
    fn push_data(&mut self, items: impl Iterator<Item = (Option<EventId>, T)>) {
        if self.pending.is_empty() {
            self.stamp = now_micros();
        }
        let (stage, stamp) = (self.stage, self.stamp);
        let next_seq = &mut self.next_seq;
        self.pending.extend(items.map(|(parent, item)| {
            let seq = *next_seq;
            *next_seq += 1;
            Envelope {
                id: EventId { stage, seq },
                parents: match parent {
                    Some(parent) => Parents::One(parent),
                    None => Parents::None,
                },
                timestamp_micros: stamp,
                body: Body::Data(item),
            }
        }));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JournalOptions, JournalReader, MemoryJournal};

    fn id(stage: u32, seq: u64) -> EventId {
        EventId {
            stage: StageId(stage),
            seq,
        }
    }

    /// Entries added together or one by one are numbered in order, share
    /// their batch's stamp, and name the parent they were given.
    #[tokio::test]
    async fn entries_added_together_are_numbered_and_parented_in_order() {
        let journal = MemoryJournal::new(StageId(3), JournalOptions::default());
        let mut reader = journal.reader(0).unwrap();
        let mut writer = JournalWriter::new(journal.clone(), StageId(3));
        writer.push_all(None, [10, 11]);
        writer.push_all(Some(id(1, 7)), std::iter::once(12));
        assert_eq!(
            writer.push(Parents::One(id(1, 8)), Body::Data(13)),
            id(3, 3)
        );
        writer.push_all(Some(id(1, 9)), vec![14, 15]);
        writer.push_all(Some(id(1, 10)), []);
        writer.flush().await.unwrap();

        let chunk = reader.next_chunk().await.unwrap();
        let entries = chunk.entries();
        let stamp = entries[0].timestamp_micros;
        assert!(stamp > 0);
        let seen: Vec<_> = entries
            .iter()
            .map(|e| {
                assert_eq!(e.timestamp_micros, stamp);
                let Body::Data(n) = e.body else {
                    panic!("{:?} is not data", e.body)
                };
                (e.id, e.parents.ids().to_vec(), n)
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (id(3, 0), vec![], 10),
                (id(3, 1), vec![], 11),
                (id(3, 2), vec![id(1, 7)], 12),
                (id(3, 3), vec![id(1, 8)], 13),
                (id(3, 4), vec![id(1, 9)], 14),
                (id(3, 5), vec![id(1, 9)], 15),
            ]
        );
    }
}
