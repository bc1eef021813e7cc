//! What each kind of stage does between "wait for work" and "work done": the
//! part of a supervisor that differs by kind. The lifecycle around it (the
//! state machine, control, failure handling) is the same for all and lives in
//! `runner`.

use super::input::{Inputs, Taken};
use super::status::StageCounters;
use crate::event::{Body, Control, ErrorRecord, EventId, Parents, Payload};
use crate::journal::{Chunk, JournalError, JournalWriter, MemoryJournal};
use crate::stage::{
    EmitPolicy, Emitter, Join, Observer, Poll, Severity, Sink, Source, StageError, Stateful,
    Transform,
};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant as StdInstant;
use tokio::time::{Instant, sleep_until};

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
    fn work(&mut self, work: Self::Work) -> impl Future<Output = Result<Step, String>> + Send;

    /// After the last input: final emits, flushes, and the EOF.
    fn finish(&mut self) -> impl Future<Output = Result<(), String>> + Send;

    /// Asked to stop producing (only sources produce on their own).
    fn stop_producing(&mut self) {}
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

/// What every body shares: its name, counters, output writer and the error lane.
pub(crate) struct Output<O: Payload> {
    pub(crate) name: Arc<str>,
    pub(crate) counters: Arc<StageCounters>,
    pub(crate) writer: JournalWriter<O, MemoryJournal<O>>,
    /// The durable copy of the stage's journal, for runs with disk journals.
    pub(crate) durable: Option<crate::journal::DurableWriter<O>>,
    pub(crate) errors: ErrorLane,
}

impl<O: Payload> Output<O> {
    #[inline]
    fn emit(&mut self, parents: Parents, item: O) {
        self.writer.push(parents, Body::Data(item));
    }

    /// Handles a handler's failure on `input`: the error lane for a transient
    /// or permanent one, the stage's failure for a fatal one.
    fn failed(&mut self, error: StageError, input: Option<EventId>) -> Result<(), String> {
        if error.severity() == Severity::Fatal {
            return Err(error.message().to_owned());
        }
        let record = ErrorRecord {
            stage: Arc::clone(&self.name),
            kind: error.lane_kind(),
            message: error.message().to_owned(),
            input_id: input,
            input: None,
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
    fn handled(
        &mut self,
        id: EventId,
        result: Result<(), StageError>,
        emitter: &mut Emitter<O>,
    ) -> Result<u64, String> {
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
    async fn flush(&mut self, data_out: u64) -> Result<(), String> {
        match &mut self.durable {
            None => self.writer.flush().await.map_err(journal_failure)?,
            Some(durable) => {
                let batch = self.writer.take_pending();
                match batch.last() {
                    None => durable.check()?,
                    Some(last) => {
                        let ends = matches!(last.body, Body::Control(Control::Eof));
                        let chunk = self
                            .writer
                            .journal()
                            .append_shared(batch)
                            .await
                            .map_err(journal_failure)?;
                        durable.write(&chunk, ends)?;
                        if ends {
                            durable.synced().await?;
                        } else {
                            durable.keep_up().await?;
                        }
                    }
                }
            }
        }
        // Counted once appended: a batch waiting for room is not written yet.
        StageCounters::add(&self.counters.events_out, data_out);
        Ok(())
    }

    async fn write_eof(&mut self, drained: bool) -> Result<(), String> {
        if drained {
            self.writer
                .push(Parents::None, Body::Control(Control::Drain));
        }
        self.writer.push(Parents::None, Body::Control(Control::Eof));
        self.flush(0).await
    }

    /// Counts the time since `started` as busy, spent on `events` events.
    fn busy_since(&self, started: StdInstant, events: u64) {
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

fn journal_failure(error: JournalError) -> String {
    format!("journal: {error}")
}

/// The data of a chunk with their ids, in order, noting an EOF on the way.
/// Error-lane records of upstream stages stay in their own journals.
struct ChunkData<T> {
    entries: std::collections::VecDeque<crate::event::Envelope<T>>,
    /// Where the emptied buffer goes (its writer reuses it).
    spare: Option<crate::journal::Spare<T>>,
    eof: bool,
    /// Whether iteration pauses at a loop probe (for stages that pass probes on).
    stop_at_probes: bool,
    probe: Option<u32>,
}

impl<T: Payload> ChunkData<T> {
    /// Takes a chunk's entries; its `data` entries (counted when the chunk
    /// was taken) count as read by the stage (read, not yet handled: the
    /// count includes what is in flight).
    fn new(chunk: Chunk<T>, data: u64, counters: &StageCounters) -> Self {
        StageCounters::add(&counters.events_in, data);
        let (entries, spare) = chunk.into_parts();
        ChunkData {
            entries: entries.into(),
            spare,
            eof: false,
            stop_at_probes: false,
            probe: None,
        }
    }

    /// Pauses iteration at each loop probe, so that the stage can pass it on
    /// between the outputs of the data before and after it.
    fn pausing_at_probes(mut self) -> Self {
        self.stop_at_probes = true;
        self
    }

    /// The probe iteration paused at, if it did.
    fn take_probe(&mut self) -> Option<u32> {
        self.probe.take()
    }

    /// Whether the chunk ended with the input's EOF.
    fn finish(self) -> bool {
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
                Body::Data(item) => return Some((entry.id, item)),
                Body::Control(Control::Eof) => self.eof = true,
                Body::Control(Control::Probe(round)) if self.stop_at_probes => {
                    self.probe = Some(round);
                    return None;
                }
                Body::Control(Control::Drain | Control::Probe(_)) | Body::Error(_) => {}
            }
        }
    }
}

// ---- source ----

/// Where a source replays from, when its flow replays an archived run: the
/// archived journal's directory. Set before the flow starts.
pub(crate) type ReplaySwitch = Arc<Mutex<Option<std::path::PathBuf>>>;

pub(crate) struct SourceBody<T: Payload, S> {
    pub(crate) handler: S,
    pub(crate) output: Output<T>,
    pub(crate) stopping: bool,
    pub(crate) replay: ReplaySwitch,
    /// The archived journal being replayed, read a batch at a time.
    pub(crate) archived: Option<crate::journal::disk::JournalStream<crate::event::Envelope<T>>>,
}

pub(crate) enum SourceWork<T> {
    Stopped,
    Polled(Result<Poll<T>, StageError>),
    Replayed(Result<Vec<Body<T>>, String>),
}

impl<T: Payload, S> SourceBody<T, S> {
    /// The next batch of archived entries (empty at the end), streaming the
    /// archive so that replaying holds a few batches of it, not all of it.
    fn replayed(&mut self, archive: &std::path::Path) -> Result<Vec<Body<T>>, String> {
        let cannot = |error| format!("cannot replay: {error}");
        let archived = match &mut self.archived {
            Some(archived) => archived,
            None => self
                .archived
                .insert(crate::journal::disk::stream_journal::<T>(archive, 1024).map_err(cannot)?),
        };
        for records in archived.by_ref() {
            let bodies: Vec<Body<T>> = records
                .map_err(cannot)?
                .into_iter()
                .map(|record| record.body)
                .filter(|body| !matches!(body, Body::Control(_)))
                .collect();
            if !bodies.is_empty() {
                return Ok(bodies);
            }
        }
        Ok(Vec::new())
    }
}

impl<T: Payload, S: Source<T>> StageBody for SourceBody<T, S> {
    type Work = SourceWork<T>;

    async fn wait(&mut self) -> Self::Work {
        if self.stopping {
            return SourceWork::Stopped;
        }
        let archive = self
            .replay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match archive {
            Some(archive) => SourceWork::Replayed(self.replayed(&archive)),
            None => SourceWork::Polled(self.handler.next().await),
        }
    }

    async fn work(&mut self, work: Self::Work) -> Result<Step, String> {
        let started = StdInstant::now();
        let step = match work {
            SourceWork::Stopped | SourceWork::Polled(Ok(Poll::End)) => Step::Done,
            SourceWork::Polled(Ok(Poll::Events(events))) => {
                let count = events.len() as u64;
                self.output.writer.push_all(None, events);
                self.output.busy_since(started, count);
                self.output.flush(count).await?;
                Step::Continue
            }
            SourceWork::Polled(Err(error)) => {
                self.output.failed(error, None)?;
                self.output.busy_since(started, 0);
                self.output.flush(0).await?;
                Step::Continue
            }
            SourceWork::Replayed(Err(reason)) => return Err(reason),
            SourceWork::Replayed(Ok(bodies)) if bodies.is_empty() => Step::Done,
            SourceWork::Replayed(Ok(bodies)) => {
                let mut count = 0;
                for body in bodies {
                    match body {
                        Body::Data(event) => {
                            count += 1;
                            self.output.emit(Parents::None, event);
                        }
                        Body::Error(record) => {
                            self.output.errors.push((*record).clone());
                            StageCounters::add(&self.output.counters.errors, 1);
                            self.output.writer.push(Parents::None, Body::Error(record));
                        }
                        Body::Control(_) => {}
                    }
                }
                self.output.busy_since(started, count);
                self.output.flush(count).await?;
                Step::Continue
            }
        };
        Ok(step)
    }

    async fn finish(&mut self) -> Result<(), String> {
        self.output.write_eof(self.stopping).await
    }

    fn stop_producing(&mut self) {
        self.stopping = true;
    }
}

// ---- transform ----

pub(crate) struct TransformBody<I: Payload, O: Payload, X> {
    pub(crate) handler: X,
    pub(crate) inputs: Inputs<I>,
    pub(crate) output: Output<O>,
    pub(crate) emitter: Emitter<O>,
    /// Present when this transform is the head of a feedback loop.
    pub(crate) feedback: Option<Feedback<I>>,
}

/// The readers of a loop head's feedback, each with its read counter.
pub(crate) type FeedbackReaders<I> = Arc<
    Mutex<
        Vec<(
            crate::journal::MemoryReader<I>,
            Arc<std::sync::atomic::AtomicU64>,
        )>,
    >,
>;

/// The feedback side of a loop head: its inputs from the end of the loop and
/// the probe rounds that tell when the loop is empty.
pub(crate) struct Feedback<I: Payload> {
    /// Filled by the builder when the loop is closed; taken at the first wait.
    pub(crate) port: FeedbackReaders<I>,
    pub(crate) inputs: Option<Inputs<I>>,
    /// The most probe rounds after the forward inputs end.
    pub(crate) max_rounds: u32,
    pub(crate) round: u32,
    pub(crate) probe_out: bool,
    pub(crate) emitted_since_probe: bool,
    /// The head has written its EOF: the loop is closed.
    pub(crate) closed: bool,
}

impl<I: Payload> Feedback<I> {
    pub(crate) fn new(port: FeedbackReaders<I>, max_rounds: u32) -> Self {
        Feedback {
            port,
            inputs: None,
            max_rounds: max_rounds.max(1),
            round: 0,
            probe_out: false,
            emitted_since_probe: false,
            closed: false,
        }
    }

    fn inputs(&mut self) -> &mut Inputs<I> {
        let port = &self.port;
        self.inputs.get_or_insert_with(|| {
            Inputs::new(std::mem::take(
                &mut *port.lock().unwrap_or_else(PoisonError::into_inner),
            ))
        })
    }
}

pub(crate) enum TransformWork<I> {
    Forward(Option<Taken<I>>),
    Feedback(Option<Taken<I>>),
}

impl<I: Payload, O: Payload, X: Transform<I, O>> TransformBody<I, O, X> {
    /// Handles a chunk's data, passing loop probes on in order (or, from the
    /// feedback side, answering them); returns the outputs produced and
    /// whether the chunk ended with its input's EOF.
    async fn handle_chunk(
        &mut self,
        chunk: Chunk<I>,
        data_count: u64,
        from_feedback: bool,
    ) -> Result<(u64, bool), String> {
        let mut data = ChunkData::new(chunk, data_count, &self.output.counters).pausing_at_probes();
        let mut produced = 0;
        loop {
            for (id, item) in &mut data {
                if from_feedback && self.feedback.as_ref().is_some_and(|f| f.closed) {
                    let cap = self.feedback.as_ref().map_or(0, |f| f.max_rounds);
                    self.output.failed(
                        StageError::permanent(format!(
                            "still in the feedback loop after {cap} probe rounds, when the loop closed"
                        )),
                        Some(id),
                    )?;
                    continue;
                }
                let result = self.handler.process(item, &mut self.emitter).await;
                produced += self.output.handled(id, result, &mut self.emitter)?;
            }
            let Some(round) = data.take_probe() else {
                break;
            };
            match &mut self.feedback {
                Some(feedback) if from_feedback => {
                    if feedback.probe_out && round == feedback.round {
                        feedback.probe_out = false;
                        if produced > 0 {
                            feedback.emitted_since_probe = true;
                        }
                        if !feedback.emitted_since_probe || feedback.round >= feedback.max_rounds {
                            feedback.closed = true;
                            self.output
                                .writer
                                .push(Parents::None, Body::Control(Control::Eof));
                        }
                    }
                }
                _ => {
                    self.output
                        .writer
                        .push(Parents::None, Body::Control(Control::Probe(round)));
                }
            }
        }
        if produced > 0
            && let Some(feedback) = &mut self.feedback
        {
            feedback.emitted_since_probe = true;
        }
        Ok((produced, data.finish()))
    }

    /// A loop head whose forward inputs have ended sends the next probe round
    /// when none is out and the loop is not closed.
    fn next_probe(&mut self) {
        if !self.inputs.all_closed() {
            return;
        }
        if let Some(feedback) = &mut self.feedback
            && !feedback.probe_out
            && !feedback.closed
        {
            feedback.round += 1;
            feedback.probe_out = true;
            feedback.emitted_since_probe = false;
            self.output
                .writer
                .push(Parents::None, Body::Control(Control::Probe(feedback.round)));
        }
    }

    fn done(&mut self) -> Step {
        let forward_done = self.inputs.all_closed();
        let loop_done = match &mut self.feedback {
            None => true,
            Some(feedback) => feedback.closed && feedback.inputs().all_closed(),
        };
        if forward_done && loop_done {
            Step::Done
        } else {
            Step::Continue
        }
    }
}

impl<I: Payload, O: Payload, X: Transform<I, O>> StageBody for TransformBody<I, O, X> {
    type Work = TransformWork<I>;

    async fn wait(&mut self) -> Self::Work {
        let Some(feedback) = &mut self.feedback else {
            return TransformWork::Forward(self.inputs.next().await);
        };
        let forward = &mut self.inputs;
        let forward_open = !forward.all_closed();
        let back = feedback.inputs();
        tokio::select! {
            biased;
            chunk = back.next() => TransformWork::Feedback(chunk),
            chunk = forward.next(), if forward_open => TransformWork::Forward(chunk),
        }
    }

    async fn work(&mut self, work: Self::Work) -> Result<Step, String> {
        let started = StdInstant::now();
        let (chunk, from_feedback) = match work {
            TransformWork::Forward(chunk) => (chunk, false),
            TransformWork::Feedback(chunk) => (chunk, true),
        };
        let mut produced = 0;
        let mut handled = 0;
        if let Some((index, chunk, data_count)) = chunk {
            handled = data_count;
            let (count, eof) = self.handle_chunk(chunk, data_count, from_feedback).await?;
            produced = count;
            if eof {
                match (&mut self.feedback, from_feedback) {
                    (Some(feedback), true) => feedback.inputs().close(index),
                    _ => self.inputs.close(index),
                }
            }
        }
        self.next_probe();
        self.output.busy_since(started, handled);
        self.output.flush(produced).await?;
        Ok(self.done())
    }

    async fn finish(&mut self) -> Result<(), String> {
        if self.feedback.as_ref().is_some_and(|f| f.closed) {
            // The loop head wrote its EOF when the loop closed.
            return self.output.flush(0).await;
        }
        self.output.write_eof(false).await
    }
}

// ---- sink ----

pub(crate) struct SinkBody<T: Payload, K> {
    pub(crate) handler: K,
    pub(crate) inputs: Inputs<T>,
    pub(crate) output: Output<crate::stage::Receipt>,
    /// Set when a replay must not repeat the sink's external effects.
    pub(crate) dry_run: Arc<std::sync::atomic::AtomicBool>,
    /// The chunk's receipts, with the inputs they are for, written together.
    pub(crate) receipts: Vec<(EventId, crate::stage::Receipt)>,
}

impl<T: Payload, K> SinkBody<T, K> {
    /// Writes the receipts kept so far.
    fn write_receipts(&mut self) {
        self.output.writer.push_each(self.receipts.drain(..));
    }
}

impl<T: Payload, K: Sink<T>> StageBody for SinkBody<T, K> {
    type Work = Option<Taken<T>>;

    async fn wait(&mut self) -> Self::Work {
        self.inputs.next().await
    }

    async fn work(&mut self, work: Self::Work) -> Result<Step, String> {
        let Some((index, chunk, data_count)) = work else {
            return Ok(Step::Done);
        };
        let started = StdInstant::now();
        let mut data = ChunkData::new(chunk, data_count, &self.output.counters);
        let mut delivered = 0;
        let dry_run = self.dry_run.load(std::sync::atomic::Ordering::Relaxed);
        for (id, item) in &mut data {
            if dry_run {
                delivered += 1;
                self.receipts.push((
                    id,
                    crate::stage::Receipt::with_detail("replay: delivery skipped"),
                ));
                continue;
            }
            match self.handler.consume(item).await {
                Ok(receipt) => {
                    delivered += 1;
                    self.receipts.push((id, receipt));
                }
                Err(error) => {
                    self.write_receipts();
                    self.output.failed(error, Some(id))?;
                }
            }
        }
        self.write_receipts();
        let eof = data.finish();
        if let Err(error) = self.handler.flush().await {
            self.output.failed(error, None)?;
        }
        self.output.busy_since(started, data_count);
        self.output.flush(delivered).await?;
        Ok(self.inputs.after_chunk(index, eof))
    }

    async fn finish(&mut self) -> Result<(), String> {
        self.handler
            .drain()
            .await
            .map_err(|error| format!("drain failed: {error}"))?;
        self.output.write_eof(false).await
    }
}

// ---- stateful ----

pub(crate) struct StatefulBody<I: Payload, O: Payload, X> {
    pub(crate) handler: X,
    pub(crate) policy: EmitPolicy,
    pub(crate) inputs: Inputs<I>,
    pub(crate) output: Output<O>,
    /// Inputs taken since the last emit.
    pub(crate) pending: u64,
    /// The last input taken, the parent of what the next emit writes.
    pub(crate) last_input: Option<EventId>,
    /// When the current window closes (only while inputs are pending).
    pub(crate) window_ends: Option<Instant>,
}

pub(crate) enum StatefulWork<I> {
    Input(Option<Taken<I>>),
    WindowClosed,
}

impl<I: Payload, O: Payload, X: Stateful<I, O>> StatefulBody<I, O, X> {
    fn emit(&mut self) -> u64 {
        let items = self.handler.emit();
        let count = items.len() as u64;
        let parents = Parents::from(self.last_input);
        for item in items {
            self.output.emit(parents.clone(), item);
        }
        self.pending = 0;
        self.window_ends = None;
        count
    }
}

impl<I: Payload, O: Payload, X: Stateful<I, O>> StageBody for StatefulBody<I, O, X> {
    type Work = StatefulWork<I>;

    async fn wait(&mut self) -> Self::Work {
        match self.window_ends {
            Some(deadline) => tokio::select! {
                input = self.inputs.next() => StatefulWork::Input(input),
                () = sleep_until(deadline) => StatefulWork::WindowClosed,
            },
            None => StatefulWork::Input(self.inputs.next().await),
        }
    }

    async fn work(&mut self, work: Self::Work) -> Result<Step, String> {
        let (index, chunk, data_count) = match work {
            StatefulWork::WindowClosed => {
                let produced = self.emit();
                self.output.flush(produced).await?;
                return Ok(Step::Continue);
            }
            StatefulWork::Input(None) => return Ok(Step::Done),
            StatefulWork::Input(Some(ready)) => ready,
        };
        let started = StdInstant::now();
        let mut data = ChunkData::new(chunk, data_count, &self.output.counters);
        let mut produced = 0;
        for (id, item) in &mut data {
            if let Err(error) = self.handler.accumulate(item) {
                self.output.failed(error, Some(id))?;
                continue;
            }
            self.pending += 1;
            self.last_input = Some(id);
            match self.policy {
                EmitPolicy::EveryN(n) if self.pending >= n.max(1) => produced += self.emit(),
                EmitPolicy::Window(window) if self.window_ends.is_none() => {
                    self.window_ends = Some(Instant::now() + window);
                }
                _ => {}
            }
        }
        let eof = data.finish();
        self.output.busy_since(started, data_count);
        self.output.flush(produced).await?;
        Ok(self.inputs.after_chunk(index, eof))
    }

    async fn finish(&mut self) -> Result<(), String> {
        let produced = match self.policy {
            EmitPolicy::OnEof => self.emit(),
            _ if self.pending > 0 => self.emit(),
            _ => 0,
        };
        self.output.flush(produced).await?;
        self.output.write_eof(false).await
    }
}

// ---- join ----

pub(crate) struct JoinBody<R: Payload, S: Payload, O: Payload, X> {
    pub(crate) handler: X,
    pub(crate) reference: Inputs<R>,
    pub(crate) stream: Inputs<S>,
    pub(crate) output: Output<O>,
    pub(crate) emitter: Emitter<O>,
}

pub(crate) enum JoinWork<R, S> {
    Reference(Option<Taken<R>>),
    Stream(Option<Taken<S>>),
}

impl<R: Payload, S: Payload, O: Payload, X: Join<R, S, O>> StageBody for JoinBody<R, S, O, X> {
    type Work = JoinWork<R, S>;

    async fn wait(&mut self) -> Self::Work {
        // The whole reference is loaded before any stream event is joined.
        if self.reference.all_closed() {
            JoinWork::Stream(self.stream.next().await)
        } else {
            JoinWork::Reference(self.reference.next().await)
        }
    }

    async fn work(&mut self, work: Self::Work) -> Result<Step, String> {
        let started = StdInstant::now();
        let step = match work {
            JoinWork::Reference(None) | JoinWork::Stream(None) => Step::Continue,
            JoinWork::Reference(Some((index, chunk, data_count))) => {
                let mut data = ChunkData::new(chunk, data_count, &self.output.counters);
                for (id, item) in &mut data {
                    if let Err(error) = self.handler.load(item) {
                        self.output.failed(error, Some(id))?;
                    }
                }
                if data.finish() {
                    self.reference.close(index);
                }
                self.output.busy_since(started, data_count);
                self.output.flush(0).await?;
                Step::Continue
            }
            JoinWork::Stream(Some((index, chunk, data_count))) => {
                let mut data = ChunkData::new(chunk, data_count, &self.output.counters);
                let mut produced = 0;
                for (id, item) in &mut data {
                    let result = self.handler.join(item, &mut self.emitter);
                    produced += self.output.handled(id, result, &mut self.emitter)?;
                }
                if data.finish() {
                    self.stream.close(index);
                }
                self.output.busy_since(started, data_count);
                self.output.flush(produced).await?;
                Step::Continue
            }
        };
        Ok(if self.reference.all_closed() && self.stream.all_closed() {
            Step::Done
        } else {
            step
        })
    }

    async fn finish(&mut self) -> Result<(), String> {
        self.output.write_eof(false).await
    }
}

// ---- observer ----

pub(crate) struct ObserverBody<T: Payload, X> {
    pub(crate) handler: X,
    pub(crate) inputs: Inputs<T>,
    pub(crate) output: Output<()>,
}

impl<T: Payload, X: Observer<T>> StageBody for ObserverBody<T, X> {
    type Work = Option<Taken<T>>;

    async fn wait(&mut self) -> Self::Work {
        self.inputs.next().await
    }

    async fn work(&mut self, work: Self::Work) -> Result<Step, String> {
        let Some((index, chunk, data_count)) = work else {
            return Ok(Step::Done);
        };
        let started = StdInstant::now();
        let mut eof = false;

        for entry in chunk.entries() {
            self.handler.observe(entry);
            if let Body::Control(Control::Eof) = &entry.body {
                eof = true;
            }
        }
        StageCounters::add(&self.output.counters.events_in, data_count);
        self.output.busy_since(started, data_count);
        Ok(self.inputs.after_chunk(index, eof))
    }

    async fn finish(&mut self) -> Result<(), String> {
        self.output.write_eof(false).await
    }
}
