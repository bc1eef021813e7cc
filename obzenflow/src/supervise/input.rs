//! The inputs of a stage: one or more journals of the same payload type, read
//! as one stream. Inputs are served round-robin, in the order they were
//! connected, among those with entries ready; an input that has reached its
//! EOF is no longer waited on.

use crate::event::Payload;
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
}

impl<T: Payload> Inputs<T> {
    /// Inputs from `readers`, counting what is read from each into its counter.
    pub(crate) fn new(readers: Vec<(MemoryReader<T>, Arc<AtomicU64>)>) -> Self {
        let (readers, read): (Vec<_>, Vec<_>) = readers.into_iter().unzip();
        Inputs {
            open: vec![true; readers.len()],
            readers,
            read,
            next: 0,
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

    fn try_next(&mut self) -> Option<Taken<T>> {
        let count = self.readers.len();
        for offset in 0..count {
            let index = (self.next + offset) % count;
            if !self.open[index] {
                continue;
            }
            if let Some(chunk) = self.readers[index].try_next() {
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
            if self.all_closed() {
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
