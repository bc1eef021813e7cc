//! A source read as several partitions at once: one source per input
//! (several files, say), each polled by a task of its own, so that their
//! reading and decoding spread over the machine's cores, merged into one
//! stream in an order that depends only on what each partition gives.
//!
//! The merge takes a block of up to [`BLOCK`] records from each partition
//! in turn (partition 0, 1, ..., 0, ...), skipping the partitions that have
//! ended. A record is an event or an error-lane record, so the same
//! partitions give the same stream, event for event and error for error,
//! whatever the scheduling: replay verifies and a resumed run continues
//! where the interrupted one stopped. Each partition reads ahead at most a
//! few of its own batches.

use super::{Poll, SourcePosition, StageError};
use super::{Severity, Source};
use crate::event::Payload;
use std::collections::VecDeque;
use std::marker::PhantomData;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many records the merge takes from one partition before it turns to
/// the next.
pub const BLOCK: usize = 1024;

/// How many batches a partition reads ahead of the merge.
const AHEAD: usize = 4;

/// A source whose input is `partitions`: each polled by a task of its own,
/// their records merged in blocks of [`BLOCK`], partition by partition in
/// turn (see [`partitioned`](mod@self)).
///
/// ```
/// use obzenflow::prelude::*;
/// use obzenflow::stage::{collect, from_iter, partitioned};
///
/// # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
/// let (sink, out) = collect();
/// let mut flow = flow! {
///     name: "months",
///     stages: {
///         // With files: `partitioned(paths.iter().map(|path| csv::read(path)))`.
///         rows = source!(u32 => partitioned([from_iter(0..2000u32), from_iter(5000..5100u32)]));
///         out = sink!(u32 => sink);
///     },
///     topology: { rows |> out; }
/// };
/// flow.run().await.unwrap();
/// // 1,024 of the first, then the second's 100, then the rest of the first.
/// let expected: Vec<u32> = (0..1024).chain(5000..5100).chain(1024..2000).collect();
/// assert_eq!(out.snapshot(), expected);
/// # });
/// ```
pub fn partitioned<S, T>(partitions: impl IntoIterator<Item = S>) -> PartitionedSource<S, T>
where
    S: Source<T>,
{
    let idle: Vec<S> = partitions.into_iter().collect();
    let expected = idle
        .iter()
        .map(Source::expected_count)
        .try_fold(0u64, |sum, count| {
            count.map(|count| sum.saturating_add(count))
        });
    let rereadable = idle.iter().all(|partition| partition.position().is_some());
    PartitionedSource {
        idle,
        lanes: Vec::new(),
        turn: 0,
        left_in_block: BLOCK,
        handed: 0,
        skip: 0,
        expected,
        rereadable,
        types: PhantomData,
    }
}

/// A source read as partitions. See [`partitioned`].
pub struct PartitionedSource<S, T> {
    /// The partitions, until the first poll starts their tasks.
    idle: Vec<S>,
    lanes: Vec<Lane<T>>,
    /// The partition whose block is being taken.
    turn: usize,
    left_in_block: usize,
    /// Records handed out (or skipped), errors included.
    handed: u64,
    /// Records still to skip, in a resumed run.
    skip: u64,
    expected: Option<u64>,
    /// Whether every partition gives the same records each time it is read
    /// (each says where it has read to), so that a resumed run can read
    /// them again and skip what the interrupted run had taken.
    rereadable: bool,
    types: PhantomData<fn() -> T>,
}

impl<S, T> std::fmt::Debug for PartitionedSource<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionedSource")
            .field("partitions", &self.idle.len().max(self.lanes.len()))
            .field("turn", &self.turn)
            .field("handed", &self.handed)
            .finish_non_exhaustive()
    }
}

/// One partition's task and what it has read that the merge has not taken.
struct Lane<T> {
    incoming: mpsc::Receiver<Message<T>>,
    buffer: VecDeque<Record<T>>,
    ended: bool,
    task: JoinHandle<()>,
}

impl<T> Drop for Lane<T> {
    fn drop(&mut self) {
        // A source that is stopped or fails leaves no partition reading.
        self.task.abort();
    }
}

enum Message<T> {
    Events(Vec<T>),
    Failed(StageError),
    End,
}

enum Record<T> {
    Event(T),
    Failed(StageError),
}

impl<S: Source<T>, T: Payload> PartitionedSource<S, T> {
    fn start(&mut self) {
        let count = self.idle.len();
        for (index, mut partition) in self.idle.drain(..).enumerate() {
            let (sender, incoming) = mpsc::channel(AHEAD);
            let task = tokio::spawn(async move {
                loop {
                    let polled = crate::supervise::catch_panic(partition.next()).await;
                    let (message, last) = match polled {
                        Ok(Ok(Poll::Events(events))) => (Message::Events(events), false),
                        Ok(Ok(Poll::End)) => (Message::End, true),
                        Ok(Err(error)) => {
                            let fatal = error.severity() == Severity::Fatal;
                            let error = if fatal {
                                StageError::fatal(format!(
                                    "partition {index} of {count}: {}",
                                    error.message()
                                ))
                            } else {
                                error
                            };
                            (Message::Failed(error), fatal)
                        }
                        Err(panic) => (
                            Message::Failed(StageError::fatal(format!(
                                "partition {index} of {count} panicked: {panic}"
                            ))),
                            true,
                        ),
                    };
                    if sender.send(message).await.is_err() || last {
                        break;
                    }
                }
            });
            self.lanes.push(Lane {
                incoming,
                buffer: VecDeque::new(),
                ended: false,
                task,
            });
        }
    }

    /// Turns to the next partition's block.
    fn turn(&mut self) {
        self.turn = (self.turn + 1) % self.lanes.len().max(1);
        self.left_in_block = BLOCK;
    }

    /// The next run of records of the partition whose turn it is: events
    /// (up to the end of its block or its next error) or one error.
    async fn next_run(&mut self) -> Option<Result<Vec<T>, StageError>> {
        loop {
            if self
                .lanes
                .iter()
                .all(|lane| lane.ended && lane.buffer.is_empty())
            {
                return None;
            }
            let lane = &mut self.lanes[self.turn];
            if lane.buffer.is_empty() {
                if lane.ended {
                    self.turn();
                    continue;
                }
                match lane.incoming.recv().await {
                    Some(Message::Events(events)) => {
                        lane.buffer.extend(events.into_iter().map(Record::Event));
                    }
                    Some(Message::Failed(error)) => lane.buffer.push_back(Record::Failed(error)),
                    Some(Message::End) => lane.ended = true,
                    // Its task ended after a fatal error, which it sent.
                    None => lane.ended = true,
                }
                continue;
            }
            let run = match lane.buffer.pop_front() {
                Some(Record::Failed(error)) => Err(error),
                Some(Record::Event(first)) => {
                    let mut events =
                        Vec::with_capacity(self.left_in_block.min(1 + lane.buffer.len()));
                    events.push(first);
                    while events.len() < self.left_in_block
                        && matches!(lane.buffer.front(), Some(Record::Event(_)))
                    {
                        if let Some(Record::Event(event)) = lane.buffer.pop_front() {
                            events.push(event);
                        }
                    }
                    Ok(events)
                }
                None => continue,
            };
            let taken = run.as_ref().map_or(1, Vec::len);
            self.handed += taken as u64;
            self.left_in_block = self.left_in_block.saturating_sub(taken);
            if self.left_in_block == 0 {
                self.turn();
            }
            return Some(run);
        }
    }
}

impl<S: Source<T>, T: Send + 'static> Source<T> for PartitionedSource<S, T> {
    async fn next(&mut self) -> Result<Poll<T>, StageError>
    where
        T: Payload,
    {
        if self.lanes.is_empty() {
            if self.idle.is_empty() {
                return Ok(Poll::End);
            }
            self.start();
        }
        loop {
            let Some(run) = self.next_run().await else {
                if self.skip > 0 {
                    return Err(StageError::fatal(format!(
                        "the partitions end after {} records, and the interrupted run had taken {}",
                        self.handed,
                        self.handed + self.skip
                    )));
                }
                return Ok(Poll::End);
            };
            if self.skip == 0 {
                return run.map(Poll::Events);
            }
            match run {
                Err(_) => self.skip -= 1,
                Ok(mut events) => {
                    let skipped = events
                        .len()
                        .min(usize::try_from(self.skip).unwrap_or(usize::MAX));
                    self.skip -= skipped as u64;
                    events.drain(..skipped);
                    if !events.is_empty() {
                        return Ok(Poll::Events(events));
                    }
                }
            }
        }
    }

    fn expected_count(&self) -> Option<u64> {
        self.expected
    }

    /// The records handed out, errors included: a resumed run reads the
    /// partitions again and skips as many (so it is given only if every
    /// partition says where it has read to, as sources that read the same
    /// records every time do).
    fn position(&self) -> Option<SourcePosition> {
        self.rereadable.then_some(SourcePosition {
            records: self.handed,
            ..SourcePosition::default()
        })
    }

    /// Reads the partitions again from their start, skipping the records
    /// the interrupted run had taken.
    fn seek(&mut self, position: SourcePosition) -> Result<(), StageError>
    where
        T: Payload,
    {
        if !self.rereadable {
            return Err(StageError::fatal(
                "a partition of this source cannot say where it has read to, so it cannot be read again to continue",
            ));
        }
        self.skip = position.records;
        Ok(())
    }
}
