//! What each kind of stage does between "wait for work" and "work done": the
//! part of a supervisor that differs by kind, one file per kind. The
//! lifecycle around it (the state machine, control, failure handling) is the
//! same for all and lives in `runner`. What every kind shares is here: the
//! [`StageBody`] trait, the stage's [`Output`] (its journal writer, counters
//! and error lane), and [`ChunkData`], the data of an input chunk in order.

mod join;
mod observer;
mod sink;
mod source;
mod stateful;
mod transform;

pub(crate) use join::{JoinBody, ParallelJoin, SerialJoin};
pub(crate) use observer::{ObserverBody, OneObserver, ParallelObserver};
pub(crate) use sink::{OneSink, ParallelSink, SinkBody};
pub(crate) use source::SourceBody;
pub(crate) use stateful::{Partitioned, Single, StatefulBody};
pub(crate) use transform::{FeedbackReaders, Parallel, Serial, TransformBody};

use super::failure::StageFailure;
use super::input::Inputs;
use super::status::StageCounters;
use crate::event::{Body, Control, ErrorRecord, EventId, Parents, Payload};
use crate::journal::{Chunk, JournalWriter, MemoryJournal};
use crate::stage::{DrainReason, Emitter, Severity, StageError};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant as StdInstant;

/// Whether a stage has more to do after a piece of work.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Continue,
    /// No more input: the stage drains.
    Done,
}

/// One kind of stage, as its supervisor drives it.
pub(crate) trait StageBody: Send + 'static {
    /// A piece of work that `wait` found.
    type Work: Send;

    /// Waits for work. Raced against control messages, so it takes nothing it
    /// would lose if dropped (a source's `next` must be cancel-safe).
    fn wait(&mut self) -> impl Future<Output = Self::Work> + Send;

    /// Does it (never raced).
    fn work(&mut self, work: Self::Work)
    -> impl Future<Output = Result<Step, StageFailure>> + Send;

    /// After the last input: final emits, flushes, and the EOF.
    fn finish(&mut self) -> impl Future<Output = Result<(), StageFailure>> + Send;

    /// Asked to stop producing (only sources produce on their own).
    fn stop_producing(&mut self) {}

    /// Whether a stop cut the stage's input short (it read a stop mark, or
    /// it is a source that was stopped).
    fn cut_short(&self) -> bool;
}

/// A stage of a resumed run: live, or finished before the run was
/// interrupted (its journal ends with its EOF), which does nothing.
pub(crate) enum Resumable<B> {
    Live(B),
    Ended,
}

impl<B: StageBody> StageBody for Resumable<B> {
    type Work = Option<B::Work>;

    async fn wait(&mut self) -> Self::Work {
        match self {
            Resumable::Live(body) => Some(body.wait().await),
            Resumable::Ended => None,
        }
    }

    async fn work(&mut self, work: Self::Work) -> Result<Step, StageFailure> {
        match (self, work) {
            (Resumable::Live(body), Some(work)) => body.work(work).await,
            _ => Ok(Step::Done),
        }
    }

    async fn finish(&mut self) -> Result<(), StageFailure> {
        match self {
            Resumable::Live(body) => body.finish().await,
            Resumable::Ended => Ok(()),
        }
    }

    fn stop_producing(&mut self) {
        if let Resumable::Live(body) = self {
            body.stop_producing();
        }
    }

    fn cut_short(&self) -> bool {
        match self {
            Resumable::Live(body) => body.cut_short(),
            Resumable::Ended => false,
        }
    }
}

/// The error lane of a flow: every record any stage wrote there.
#[derive(Clone, Debug, Default)]
pub(crate) struct ErrorLane(Arc<Mutex<Vec<ErrorRecord>>>);

impl ErrorLane {
    pub(crate) fn push(&self, record: ErrorRecord) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
    }

    pub(crate) fn records(&self) -> Vec<ErrorRecord> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// How a stage's flow runs, fixed when the flow starts.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunMode {
    /// The run's id (its directory's name, for disk journals): with an
    /// event's id, the key a sink can deduplicate its deliveries by.
    pub(crate) run: Arc<str>,
    /// The flow replays an archived run.
    pub(crate) replaying: bool,
    /// For a source in a replay: the archived journal it reads instead of
    /// calling its handler.
    pub(crate) archived_journal: Option<std::path::PathBuf>,
    /// For a sink in a replay: skip its deliveries.
    pub(crate) dry_run: bool,
    /// For a stage of a resumed run: where it continues.
    pub(crate) resume: Option<crate::flow::resume::StageResume>,
}

/// What every body shares: its name, counters, output writer and the error lane.
pub(crate) struct Output<O: Payload> {
    pub(crate) name: Arc<str>,
    pub(crate) counters: Arc<StageCounters>,
    pub(crate) writer: JournalWriter<O, MemoryJournal<O>>,
    /// The durable copy of the stage's journal, for runs with disk journals.
    pub(crate) durable: Option<crate::journal::DurableWriter<O>>,
    pub(crate) errors: ErrorLane,
    /// Whether the flow replays an archived run.
    pub(crate) replaying: bool,
    /// Whether the stage's input ends in a stop rather than its end: a
    /// stopped source sets it, and a stage that reads a stop mark sets it
    /// and passes the mark on before its own EOF.
    pub(crate) stopped: bool,
    /// Whether it marks inputs it took that produced nothing (stateful
    /// stages resume from their snapshots instead).
    pub(crate) marks_consumed: bool,
}

impl<O: Payload> Output<O> {
    #[inline]
    pub(crate) fn emit(&mut self, parents: Parents, item: O) {
        self.writer.push(parents, Body::Data(item));
    }

    /// Why the stage drains (see [`DrainReason`]).
    pub(crate) fn drain_reason(&self) -> DrainReason {
        if self.stopped {
            DrainReason::Stopped
        } else if self.replaying {
            DrainReason::Replay
        } else {
            DrainReason::EndOfInput
        }
    }

    /// Handles a handler's failure on `input`: the error lane for a transient
    /// or permanent one, the stage's failure for a fatal one.
    #[cold]
    #[inline(never)]
    pub(crate) fn failed(
        &mut self,
        mut error: StageError,
        input: Option<EventId>,
    ) -> Result<(), StageFailure> {
        if error.severity() == Severity::Fatal {
            return Err(StageFailure::handler(error));
        }
        let record = ErrorRecord {
            stage: Arc::clone(&self.name),
            kind: error.lane_kind(),
            message: error.message().to_owned(),
            input_id: input,
            input: error.take_input(),
        };
        self.errors.push(record.clone());
        self.writer
            .push(Parents::from(input), Body::Error(Box::new(record)));
        StageCounters::add(&self.counters.errors, 1);
        if input.is_some() {
            StageCounters::add(&self.counters.failed_inputs, 1);
        }
        Ok(())
    }

    /// After a handler ran on input `id`: writes what it emitted (returning
    /// how many) or, if it failed, sends the input to the error lane.
    #[inline]
    pub(crate) fn handled(
        &mut self,
        id: EventId,
        result: Result<(), StageError>,
        emitter: &mut Emitter<O>,
    ) -> Result<u64, StageFailure> {
        match result {
            Ok(()) => {
                let count = emitter.items.len() as u64;
                // One output per input is the common case, and cheaper
                // without draining.
                if count == 1 {
                    self.writer.push_all(Some(id), emitter.items.pop());
                } else {
                    self.writer.push_all(Some(id), emitter.items.drain(..));
                }
                Ok(count)
            }
            Err(error) => {
                emitter.items.clear();
                self.failed(error, Some(id))?;
                Ok(0)
            }
        }
    }

    /// Appends what is pending and counts the data among it. With a disk
    /// journal, readers see the batch once it is written (and fsynced, by
    /// the default policy) by the stage's journal thread; the stage waits
    /// for that when the thread is a window behind, and at its EOF, so that
    /// a drained stage is on disk.
    pub(crate) async fn flush(&mut self, data_out: u64) -> Result<(), StageFailure> {
        let journal = |error| StageFailure::Journal(error);
        match &mut self.durable {
            None => self
                .writer
                .flush()
                .await
                .map_err(|error| journal(error.into()))?,
            Some(durable) => {
                let batch = self.writer.take_pending();
                match batch.last() {
                    None => durable.check().map_err(journal)?,
                    Some(last) => {
                        let ends = matches!(last.body, Body::Control(Control::Eof));
                        let chunk = self
                            .writer
                            .journal()
                            .append_shared(batch)
                            .await
                            .map_err(|error| journal(error.into()))?;
                        durable.write(&chunk, ends).map_err(journal)?;
                        if ends {
                            durable.synced().await.map_err(journal)?;
                        } else {
                            durable.keep_up().await.map_err(journal)?;
                        }
                    }
                }
            }
        }
        // Counted once appended: a batch waiting for room is not written yet.
        StageCounters::add(&self.counters.events_out, data_out);
        Ok(())
    }

    /// After the stage took input `last` and everything before it in its
    /// journal: if nothing pending names `last` among its parents (the
    /// input produced nothing), a mark says it was taken, so that a resumed
    /// run neither takes it again nor skips what follows.
    pub(crate) fn mark_consumed(&mut self, last: EventId) {
        if self.marks_consumed && !self.writer.last_pending_names(last) {
            let next = EventId {
                stage: last.stage,
                seq: last.seq + 1,
            };
            self.writer
                .push(Parents::None, Body::Control(Control::Consumed(next)));
        }
    }

    /// Queues the end of the stage's output: a stop mark if its input ended
    /// in a stop, then the EOF.
    pub(crate) fn push_end(&mut self) {
        if self.stopped {
            self.writer
                .push(Parents::None, Body::Control(Control::Drain));
        }
        self.writer.push(Parents::None, Body::Control(Control::Eof));
    }

    /// Writes the end of the stage's output (see [`push_end`](Self::push_end)).
    pub(crate) async fn write_eof(&mut self) -> Result<(), StageFailure> {
        self.push_end();
        self.flush(0).await
    }

    /// Counts the time since `started` as busy, spent on `events` events.
    pub(crate) fn busy_since(&self, started: StdInstant, events: u64) {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        StageCounters::add(&self.counters.busy_nanos, nanos);
        self.counters.processing.record(nanos, events);
    }
}

impl From<Option<EventId>> for Parents {
    fn from(id: Option<EventId>) -> Self {
        id.map_or(Parents::None, Parents::One)
    }
}

/// Runs blocking file I/O from a stage's task: on a multi-threaded runtime
/// the worker hands its other tasks over first; on a current-thread runtime
/// there is no other worker to hand them to.
pub(crate) fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// The data of a chunk with their ids, in order, noting an EOF and a stop
/// mark on the way. Error-lane records of upstream stages stay in their own
/// journals.
pub(crate) struct ChunkData<T> {
    entries: std::collections::VecDeque<crate::event::Envelope<T>>,
    /// Where the emptied buffer goes (its writer reuses it).
    spare: Option<crate::journal::Spare<T>>,
    eof: bool,
    stopped: bool,
    /// Whether iteration pauses at a loop probe (for stages that pass probes on).
    stop_at_probes: bool,
    probe: Option<u32>,
    /// The last data entry handed out: what the stage has taken up to.
    last: Option<EventId>,
}

impl<T: Payload> ChunkData<T> {
    /// Takes a chunk's entries; its `data` entries (counted when the chunk
    /// was taken) count as read by the stage (read, not yet handled: the
    /// count includes what is in flight).
    pub(crate) fn new(chunk: Chunk<T>, data: u64, counters: &StageCounters) -> Self {
        StageCounters::add(&counters.events_in, data);
        let (entries, spare) = chunk.into_parts();
        ChunkData {
            entries: entries.into(),
            spare,
            eof: false,
            stopped: false,
            stop_at_probes: false,
            probe: None,
            last: None,
        }
    }

    /// Adds the chunks input `index` already holds, while `count` (the data
    /// entries taken so far) is below `up_to`: what a parallel stage takes
    /// into one round. Their data entries count as read, as in
    /// [`new`](Self::new).
    pub(crate) fn gather(
        &mut self,
        inputs: &mut Inputs<T>,
        index: usize,
        count: &mut u64,
        up_to: u64,
        counters: &StageCounters,
    ) {
        while *count < up_to {
            let Some((chunk, data)) = inputs.try_next_from(index) else {
                break;
            };
            StageCounters::add(&counters.events_in, data);
            // Its emptied buffer is not returned to its writer: this one's is.
            let (entries, _) = chunk.into_parts();
            self.entries.extend(entries);
            *count += data;
        }
    }

    /// The last data entry handed out so far, if any.
    pub(crate) fn last_taken(&self) -> Option<EventId> {
        self.last
    }

    /// Pauses iteration at each loop probe, so that the stage can pass it on
    /// between the outputs of the data before and after it.
    pub(crate) fn pausing_at_probes(mut self) -> Self {
        self.stop_at_probes = true;
        self
    }

    /// The probe iteration paused at, if it did.
    pub(crate) fn take_probe(&mut self) -> Option<u32> {
        self.probe.take()
    }

    /// Whether the chunk ended with the input's EOF; a stop mark read on
    /// the way is passed to `output`, and so is how far the stage has
    /// taken this input (see [`Output::mark_consumed`]).
    pub(crate) fn finish<O: Payload>(self, output: &mut Output<O>) -> bool {
        output.stopped |= self.stopped;
        if let Some(last) = self.last {
            output.mark_consumed(last);
        }
        self.eof
    }
}

impl<T> Drop for ChunkData<T> {
    fn drop(&mut self) {
        if let Some(spare) = self.spare.take() {
            spare.give_back(std::mem::take(&mut self.entries).into());
        }
    }
}

impl<T> Iterator for ChunkData<T> {
    type Item = (EventId, T);

    #[inline]
    fn next(&mut self) -> Option<(EventId, T)> {
        loop {
            let entry = self.entries.pop_front()?;
            match entry.body {
                Body::Data(item) => {
                    self.last = Some(entry.id);
                    return Some((entry.id, item));
                }
                Body::Error(_) | Body::Snapshot(_) => {}
                Body::Control(control) => {
                    if self.pauses_at(control) {
                        return None;
                    }
                }
            }
        }
    }
}

impl<T> ChunkData<T> {
    /// Notes a control mark; whether iteration pauses at it (a probe, for
    /// a stage that passes probes on).
    #[cold]
    fn pauses_at(&mut self, control: Control) -> bool {
        match control {
            Control::Eof => self.eof = true,
            Control::Drain => self.stopped = true,
            Control::Probe(round) if self.stop_at_probes => {
                self.probe = Some(round);
                return true;
            }
            Control::Probe(_) | Control::Position(_) | Control::Consumed(_) => {}
        }
        false
    }
}
