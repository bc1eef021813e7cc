//! The inputs of a stage: one or more journals of the same payload type, read
//! as one stream. Inputs are served round-robin, in the order they were
//! connected, among those with entries ready; an input that has reached its
//! EOF is no longer waited on.

use super::StageFailure;
use super::status::StageCounters;
use crate::event::{Envelope, Payload};
use crate::flow::resume::StageResume;
use crate::journal::disk::JournalStream;
use crate::journal::{Chunk, MemoryReader};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// A chunk taken from input `index`, with how many data entries it holds
/// (counted once, here, for the edge's contract and the stage's input count).
pub(crate) type Taken<T> = (usize, Chunk<T>, u64);

pub(crate) struct Inputs<T: Payload> {
    readers: Vec<MemoryReader<T>>,
    /// Data entries read from each input: one side of each edge's contract.
    read: Vec<Arc<AtomicU64>>,
    open: Vec<bool>,
    next: usize,
    /// Each input's stage (by index), where known.
    upstream: Vec<usize>,
    /// For a resumed stage: what each input holds from before the run was
    /// interrupted and the stage had not taken, read from the archive
    /// before the live journal.
    archived: Vec<Option<JournalStream<Envelope<T>>>>,
    /// Why reading the archive failed, once it has.
    failure: Option<StageFailure>,
}

impl<T: Payload> Inputs<T> {
    /// Inputs from `readers`, counting what is read from each into its counter.
    pub(crate) fn new(readers: Vec<(MemoryReader<T>, Arc<AtomicU64>)>) -> Self {
        let upstream = vec![usize::MAX; readers.len()];
        let (readers, read): (Vec<_>, Vec<_>) = readers.into_iter().unzip();
        Inputs {
            open: vec![true; readers.len()],
            archived: readers.iter().map(|_| None).collect(),
            readers,
            read,
            next: 0,
            upstream,
            failure: None,
        }
    }

    /// Inputs from stages `upstream` (their indexes, in the order of `readers`).
    pub(crate) fn of_stages(
        readers: Vec<(MemoryReader<T>, Arc<AtomicU64>)>,
        upstream: Vec<usize>,
    ) -> Self {
        let mut inputs = Self::new(readers);
        inputs.upstream = upstream;
        inputs
    }

    /// Sets a resumed stage's inputs where it continues: `from(stage)` is
    /// where it continues reading stage `stage`'s journal (everything, for
    /// a stage that had finished). What comes before counts as read; what
    /// lies between it and the archived journal's end is read from the
    /// archive, then the live journal follows.
    pub(crate) fn resume(
        &mut self,
        resume: &StageResume,
        from: impl Fn(usize) -> u64,
        counters: &StageCounters,
    ) -> Result<(), String> {
        for (index, reader) in self.readers.iter_mut().enumerate() {
            let stage = self.upstream[index];
            let Some(upstream) = resume.upstream(stage) else {
                return Err(format!(
                    "its input from stage number {stage} was not reopened before it"
                ));
            };
            let end = upstream.facts.records;
            let start = if resume.own.ended { end } else { from(stage) };
            if start > end {
                return Err(format!(
                    "its journal shows events up to {start} taken from {}, whose journal holds {end}: the archive lost records a stage had read (was it written with fsync off, before a machine crash?)",
                    upstream.dir.display()
                ));
            }
            reader.resume_at(end);
            let before = upstream.facts.data_before(start);
            self.read[index].fetch_add(before, Ordering::Relaxed);
            StageCounters::add(&counters.events_in, before);
            if start < end {
                let stream =
                    crate::journal::disk::stream_range::<T>(&upstream.dir, 1024, start, end)
                        .map_err(|error| error.to_string())?;
                self.archived[index] = Some(stream);
            }
        }
        Ok(())
    }

    /// The index of each input's stage.
    pub(crate) fn stages(&self) -> &[usize] {
        &self.upstream
    }

    /// An error if reading an input's archive failed.
    pub(crate) fn check(&mut self) -> Result<(), StageFailure> {
        match self.failure.take() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// Marks input `index` as finished (its EOF was read).
    pub(crate) fn close(&mut self, index: usize) {
        self.open[index] = false;
    }

    /// After a chunk of input `index` was handled: closes the input if the
    /// chunk ended with its EOF, and says whether the stage has input left.
    pub(crate) fn after_chunk(&mut self, index: usize, eof: bool) -> super::body::Step {
        if eof {
            self.close(index);
        }
        if self.all_closed() {
            super::body::Step::Done
        } else {
            super::body::Step::Continue
        }
    }

    /// Whether every input has reached its EOF.
    pub(crate) fn all_closed(&self) -> bool {
        !self.open.contains(&true)
    }

    /// The next chunk of input `index` if one is ready (never from an
    /// archive being read first, nor a closed input).
    pub(crate) fn try_next_from(&mut self, index: usize) -> Option<(Chunk<T>, u64)> {
        if !self.open.get(index).copied().unwrap_or(false) || self.archived[index].is_some() {
            return None;
        }
        let chunk = self.readers[index].try_next()?;
        let data = chunk
            .entries()
            .iter()
            .filter(|entry| matches!(entry.body, crate::event::Body::Data(_)))
            .count() as u64;
        self.read[index].fetch_add(data, Ordering::Relaxed);
        Some((chunk, data))
    }

    fn try_next(&mut self) -> Option<Taken<T>> {
        let count = self.readers.len();
        for offset in 0..count {
            let index = (self.next + offset) % count;
            if !self.open[index] {
                continue;
            }
            let chunk = match self.archived[index].as_mut() {
                Some(stream) => match super::blocking(|| stream.next()) {
                    Some(Ok(entries)) => Some(Chunk::new(Arc::new(entries), 0)),
                    Some(Err(error)) => {
                        self.failure = Some(StageFailure::Journal(
                            crate::journal::JournalFailure::from(&error),
                        ));
                        return None;
                    }
                    None => {
                        self.archived[index] = None;
                        self.readers[index].try_next()
                    }
                },
                None => self.readers[index].try_next(),
            };
            if let Some(chunk) = chunk {
                self.next = (index + 1) % count;
                let data = chunk
                    .entries()
                    .iter()
                    .filter(|entry| matches!(entry.body, crate::event::Body::Data(_)))
                    .count();
                self.read[index].fetch_add(data as u64, Ordering::Relaxed);
                return Some((index, chunk, data as u64));
            }
        }
        None
    }

    /// The next chunk from any open input, waiting without spinning; `None`
    /// once every input is closed. Cancel-safe: nothing is taken until it is
    /// returned.
    pub(crate) async fn next(&mut self) -> Option<Taken<T>> {
        if let Some(ready) = self.try_next() {
            return Some(ready);
        }
        loop {
            if self.all_closed() || self.failure.is_some() {
                return None;
            }
            let notifies: Vec<Arc<Notify>> = self
                .readers
                .iter()
                .zip(&self.open)
                .filter(|(_, open)| **open)
                .map(|(reader, _)| reader.appended())
                .collect();
            let mut waits: Vec<Pin<Box<Notified<'_>>>> =
                notifies.iter().map(|n| Box::pin(n.notified())).collect();
            for wait in &mut waits {
                wait.as_mut().enable();
            }
            if let Some(ready) = self.try_next() {
                return Some(ready);
            }
            poll_fn(|cx| {
                if waits
                    .iter_mut()
                    .any(|wait| wait.as_mut().poll(cx).is_ready())
                {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            if let Some(ready) = self.try_next() {
                return Some(ready);
            }
        }
    }
}
