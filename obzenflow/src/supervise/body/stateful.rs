//! A stateful stage: folds its inputs into its handler's state and emits on
//! its policy (every N inputs, at the end, or when a window of time passes);
//! at the end its handler's `emit_final` is told why the stage drains.

use super::{ChunkData, Output, StageBody, Step};
use crate::event::{Body, EventId, Parents, Payload, StateSnapshot};
use crate::flow::journals::Snapshots;
use crate::flow::resume::StageResume;
use crate::stage::parallel::Keyed;
use crate::stage::{DrainReason, EmitPolicy, StageError, Stateful};
use crate::supervise::failure::StageFailure;
use crate::supervise::input::{Inputs, Taken};
use crate::supervise::parallel::{FoldJob, FoldReply, FoldWorker, Pool, ROUND};
use std::future::Future;
use std::time::Instant as StdInstant;
use tokio::time::{Instant, sleep_until};

pub(crate) struct StatefulBody<I: Payload, O: Payload, X> {
    pub(crate) handler: X,
    pub(crate) policy: EmitPolicy,
    pub(crate) inputs: Inputs<I>,
    pub(crate) output: Output<O>,
    /// Inputs taken since the last emit.
    pub(crate) pending: u64,
    /// The first input taken: with the last, the range of inputs what the
    /// stage emits was folded from.
    pub(crate) first_input: Option<EventId>,
    /// The last input taken, the parent of what the next emit writes.
    pub(crate) last_input: Option<EventId>,
    /// When the current window closes (only while inputs are pending).
    pub(crate) window_ends: Option<Instant>,
    /// When it journals its state (never, with memory journals).
    pub(crate) snapshots: Option<Snapshots>,
    /// For each input stage: the last event taken from it.
    pub(crate) taken: Vec<EventId>,
    /// Inputs taken since the last snapshot, and when it was written.
    pub(crate) since_snapshot: u64,
    pub(crate) snapshot_at: StdInstant,
}

impl<I: Payload, O: Payload, X> StatefulBody<I, O, X> {
    pub(crate) fn new(
        handler: X,
        policy: EmitPolicy,
        inputs: Inputs<I>,
        output: Output<O>,
        snapshots: Snapshots,
    ) -> Self {
        StatefulBody {
            snapshots: output.durable.is_some().then_some(snapshots),
            handler,
            policy,
            inputs,
            output,
            pending: 0,
            first_input: None,
            last_input: None,
            window_ends: None,
            taken: Vec::new(),
            since_snapshot: 0,
            snapshot_at: StdInstant::now(),
        }
    }
}

/// How a stateful stage holds its state: in one handler ([`Single`]), or
/// split by key among instances ([`Keyed`]).
pub(crate) trait Fold<I, O>: Send + 'static {
    /// Whether inputs are folded a batch at a time (by instances).
    const PARALLEL: bool;
    /// Folds one input.
    fn accumulate(&mut self, input: I) -> impl Future<Output = Result<(), StageError>> + Send;
    /// Folds inputs, giving each one's outcome in order (up to a fatal
    /// error).
    fn accumulate_all(
        &mut self,
        inputs: Vec<I>,
    ) -> impl Future<Output = Result<Vec<Result<(), StageError>>, StageFailure>> + Send;
    fn emit(&mut self) -> impl Future<Output = Result<Vec<O>, StageFailure>> + Send;
    fn emit_final(
        &mut self,
        reason: DrainReason,
    ) -> impl Future<Output = Result<Vec<O>, StageFailure>> + Send;
    #[allow(clippy::type_complexity)]
    fn snapshot(
        &mut self,
    ) -> impl Future<Output = Result<Option<Result<Vec<u8>, StageError>>, StageFailure>> + Send;
    /// Whether the handler can snapshot its state (asked before the stage runs).
    fn can_snapshot(&self) -> bool;
    /// Takes back a snapshot (before the stage runs).
    fn restore(&mut self, state: &[u8]) -> Result<(), StageError>;
}

/// A stateful stage's one handler.
pub(crate) struct Single<X>(pub(crate) X);

impl<I: Send, O: Send, X: Stateful<I, O>> Fold<I, O> for Single<X> {
    const PARALLEL: bool = false;

    #[inline]
    async fn accumulate(&mut self, input: I) -> Result<(), StageError> {
        self.0.accumulate(input)
    }

    async fn accumulate_all(
        &mut self,
        inputs: Vec<I>,
    ) -> Result<Vec<Result<(), StageError>>, StageFailure> {
        Ok(inputs
            .into_iter()
            .map(|input| self.0.accumulate(input))
            .collect())
    }

    async fn emit(&mut self) -> Result<Vec<O>, StageFailure> {
        Ok(self.0.emit())
    }

    async fn emit_final(&mut self, reason: DrainReason) -> Result<Vec<O>, StageFailure> {
        Ok(self.0.emit_final(reason))
    }

    async fn snapshot(&mut self) -> Result<Option<Result<Vec<u8>, StageError>>, StageFailure> {
        Ok(self.0.snapshot())
    }

    fn can_snapshot(&self) -> bool {
        self.0.snapshot().is_some()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), StageError> {
        self.0.restore(state)
    }
}

/// A keyed stateful stage run as several instances, each holding the state
/// of its keys. Its emits are each instance's, in instance order; its
/// snapshot holds every instance's state.
pub(crate) struct Partitioned<X: Stateful<I, O>, I: Send + 'static, O: Send + 'static, K> {
    pool: Pool<FoldWorker<X, I, O>>,
    key: K,
}

impl<X, I, O, K> Partitioned<X, I, O, K>
where
    I: Send + 'static,
    O: Send + 'static,
    X: Stateful<I, O>,
{
    pub(crate) fn new(output: &Output<O>, handlers: Vec<X>, key: K) -> Self
    where
        O: Payload,
    {
        Partitioned {
            pool: Pool::new(output, handlers.into_iter().map(FoldWorker::new).collect()),
            key,
        }
    }

    async fn emitted(&mut self, job: impl Fn() -> FoldJob<I>) -> Result<Vec<O>, StageFailure> {
        let mut items = Vec::new();
        for reply in self.pool.run_each(|_| job()).await? {
            if let FoldReply::Emitted(emitted) = reply {
                items.extend(emitted);
            }
        }
        Ok(items)
    }
}

impl<X, I, O, K> Fold<I, O> for Partitioned<X, I, O, K>
where
    I: Send + 'static,
    O: Send + 'static,
    X: Stateful<I, O>,
    K: Keyed<I>,
{
    const PARALLEL: bool = true;

    async fn accumulate(&mut self, input: I) -> Result<(), StageError> {
        match self.accumulate_all(vec![input]).await {
            Ok(mut outcomes) => outcomes.pop().unwrap_or(Ok(())),
            Err(failure) => Err(StageError::fatal(failure.to_string())),
        }
    }

    async fn accumulate_all(
        &mut self,
        inputs: Vec<I>,
    ) -> Result<Vec<Result<(), StageError>>, StageFailure> {
        self.pool
            .run_in_order(
                inputs,
                &self.key,
                |input| input,
                FoldJob::Accumulate,
                |reply| match reply {
                    FoldReply::Accumulated(outcomes) => outcomes,
                    _ => Vec::new(),
                },
            )
            .await
    }

    async fn emit(&mut self) -> Result<Vec<O>, StageFailure> {
        self.emitted(|| FoldJob::Emit).await
    }

    async fn emit_final(&mut self, reason: DrainReason) -> Result<Vec<O>, StageFailure> {
        self.emitted(|| FoldJob::EmitFinal(reason))
            .await
            .map_err(StageFailure::while_draining)
    }

    async fn snapshot(&mut self) -> Result<Option<Result<Vec<u8>, StageError>>, StageFailure> {
        let mut states = Vec::with_capacity(self.pool.instances());
        for reply in self.pool.run_each(|_| FoldJob::Snapshot).await? {
            match reply {
                FoldReply::Snapshot(Some(Ok(state))) => states.push(state),
                FoldReply::Snapshot(Some(Err(error))) => return Ok(Some(Err(error))),
                _ => return Ok(None),
            }
        }
        Ok(Some(crate::stage::state::encode(&states)))
    }

    fn can_snapshot(&self) -> bool {
        // Only asked before the instances start, while their handlers are here.
        self.pool
            .idle()
            .first()
            .is_some_and(|worker| worker.0.snapshot().is_some())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), StageError> {
        let states: Vec<Vec<u8>> = crate::stage::state::decode(state)?;
        let workers = self.pool.idle_mut();
        if states.len() != workers.len() {
            return Err(StageError::fatal(format!(
                "its state was saved by {} instances and it now runs as {}: resume it with `parallel: {}`",
                states.len(),
                workers.len(),
                states.len()
            )));
        }
        for (worker, state) in workers.iter_mut().zip(states) {
            worker.0.restore(&state)?;
        }
        Ok(())
    }
}

impl<I: Payload, O: Payload, X: Fold<I, O>> StatefulBody<I, O, X> {
    /// Continues a resumed run: the state of the last snapshot, and each
    /// input from where that state had folded it to.
    pub(crate) fn resume(&mut self, resume: &StageResume) -> Result<(), String> {
        let own = &resume.own;
        if !own.ended && own.written_since_snapshot {
            return Err(match &own.snapshot {
                None if !self.handler.can_snapshot() => "it had emitted, and its handler cannot snapshot its state to continue from (implement `Stateful::snapshot` and `Stateful::restore`); run the flow again".to_owned(),
                _ => "its journal holds records after its last snapshot, which a snapshot should have followed".to_owned(),
            });
        }
        let snapshot = if own.ended {
            None
        } else {
            own.snapshot.as_ref()
        };
        if let Some(snapshot) = snapshot {
            self.handler
                .restore(&snapshot.state)
                .map_err(|error| error.message().to_owned())?;
            self.pending = snapshot.pending;
            self.first_input = snapshot.inputs.map(|[first, _]| first);
            self.last_input = snapshot.inputs.map(|[_, last]| last);
            self.taken = snapshot
                .consumed
                .iter()
                .filter(|next| next.seq > 0)
                .map(|next| EventId {
                    stage: next.stage,
                    seq: next.seq - 1,
                })
                .collect();
        }
        let consumed = |up: usize| {
            snapshot
                .and_then(|snapshot| {
                    snapshot
                        .consumed
                        .iter()
                        .find(|next| next.stage.0 as usize == up)
                })
                .map_or(0, |next| next.seq)
        };
        self.inputs.resume(resume, consumed, &self.output.counters)
    }

    /// Journals the state after what was taken so far, if the handler can
    /// say it; after every batch that wrote anything (so that nothing the
    /// stage wrote comes after its last snapshot) and, as the policy says,
    /// every so many inputs or so much time.
    async fn maybe_snapshot(&mut self, wrote: bool) -> Result<(), StageFailure> {
        let Some(policy) = self.snapshots else {
            return Ok(());
        };
        let due = wrote
            || self.since_snapshot >= policy.every_inputs
            || (self.since_snapshot > 0 && self.snapshot_at.elapsed() >= policy.every);
        if !due {
            return Ok(());
        }
        let state = match self.handler.snapshot().await? {
            None => {
                // It cannot: stop asking.
                self.snapshots = None;
                return Ok(());
            }
            Some(Ok(state)) => state,
            Some(Err(error)) => {
                tracing::warn!(stage = %self.output.name, %error, "cannot snapshot the state; a resume will fold from the last snapshot written");
                return Ok(());
            }
        };
        let snapshot = StateSnapshot {
            consumed: self
                .taken
                .iter()
                .map(|last| EventId {
                    stage: last.stage,
                    seq: last.seq + 1,
                })
                .collect(),
            pending: self.pending,
            inputs: self.first_input.zip(self.last_input).map(|(a, b)| [a, b]),
            state,
        };
        self.output
            .writer
            .push(Parents::None, Body::Snapshot(Box::new(snapshot)));
        self.since_snapshot = 0;
        self.snapshot_at = StdInstant::now();
        Ok(())
    }

    /// Notes that input `last` (and everything before it from its stage) was taken.
    fn took(&mut self, last: EventId) {
        match self
            .taken
            .iter_mut()
            .find(|taken| taken.stage == last.stage)
        {
            Some(taken) => *taken = last,
            None => self.taken.push(last),
        }
    }
}

pub(crate) enum StatefulWork<I> {
    Input(Option<Taken<I>>),
    WindowClosed,
}

impl<I: Payload, O: Payload, X: Fold<I, O>> StatefulBody<I, O, X> {
    /// Writes `items` as emitted now, after the last input taken.
    fn write(&mut self, items: Vec<O>) -> u64 {
        let count = items.len() as u64;
        // Folded state holds what every input so far brought: its parents
        // are the range of them (one journal's), compactly.
        let parents = match (self.first_input, self.last_input) {
            (Some(first), Some(last)) if first != last && first.stage == last.stage => {
                Parents::Range([first, last])
            }
            (_, last) => Parents::from(last),
        };
        for item in items {
            self.output.emit(parents.clone(), item);
        }
        self.pending = 0;
        self.window_ends = None;
        count
    }

    async fn emit(&mut self) -> Result<u64, StageFailure> {
        let items = self.handler.emit().await?;
        Ok(self.write(items))
    }

    /// Notes that input `id` was folded; whether the policy emits now.
    #[inline]
    fn folded(&mut self, id: EventId) -> bool {
        self.pending += 1;
        self.first_input.get_or_insert(id);
        self.last_input = Some(id);
        match self.policy {
            EmitPolicy::EveryN(n) => self.pending >= n.max(1),
            EmitPolicy::Watermark => true,
            EmitPolicy::Window(window) => {
                if self.window_ends.is_none() {
                    self.window_ends = Some(Instant::now() + window);
                }
                false
            }
            EmitPolicy::OnEof => false,
        }
    }

    /// Folds a chunk's inputs in instances: in runs that end where the
    /// policy may emit, so that each emit holds what a single handler's
    /// would. Returns what it wrote and whether an input failed.
    async fn fold_in_parallel(
        &mut self,
        data: &mut ChunkData<I>,
    ) -> Result<(u64, bool), StageFailure> {
        let (ids, mut items): (Vec<EventId>, Vec<I>) = data.unzip();
        let mut ids = ids.into_iter();
        let (mut produced, mut failed) = (0, false);
        while !items.is_empty() {
            let run = match self.policy {
                EmitPolicy::EveryN(n) => usize::try_from(n.max(1).saturating_sub(self.pending))
                    .unwrap_or(usize::MAX)
                    .max(1),
                EmitPolicy::Watermark => 1,
                EmitPolicy::OnEof | EmitPolicy::Window(_) => items.len(),
            };
            let rest = items.split_off(run.min(items.len()));
            let outcomes = self
                .handler
                .accumulate_all(std::mem::replace(&mut items, rest))
                .await?;
            for outcome in outcomes {
                let Some(id) = ids.next() else { break };
                match outcome {
                    Ok(()) => {
                        if self.folded(id) {
                            produced += self.emit().await?;
                        }
                    }
                    Err(error) => {
                        self.output.failed(error, Some(id))?;
                        failed = true;
                    }
                }
            }
        }
        Ok((produced, failed))
    }
}

impl<I: Payload, O: Payload, X: Fold<I, O>> StageBody for StatefulBody<I, O, X> {
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

    async fn work(&mut self, work: Self::Work) -> Result<Step, StageFailure> {
        let (index, chunk, data_count) = match work {
            StatefulWork::WindowClosed => {
                let produced = self.emit().await?;
                self.maybe_snapshot(produced > 0).await?;
                self.output.flush(produced).await?;
                return Ok(Step::Continue);
            }
            StatefulWork::Input(None) => {
                self.inputs.check()?;
                return Ok(Step::Done);
            }
            StatefulWork::Input(Some(ready)) => ready,
        };
        let started = StdInstant::now();
        let mut data_count = data_count;
        let mut data = ChunkData::new(chunk, data_count, &self.output.counters);
        let mut produced = 0;
        let mut failed = false;
        if X::PARALLEL {
            // What else the input already holds, up to a round's worth
            // (see `parallel::ROUND`).
            data.gather(
                &mut self.inputs,
                index,
                &mut data_count,
                ROUND,
                &self.output.counters,
            );
            (produced, failed) = self.fold_in_parallel(&mut data).await?;
        } else {
            for (id, item) in &mut data {
                if let Err(error) = self.handler.accumulate(item).await {
                    self.output.failed(error, Some(id))?;
                    failed = true;
                    continue;
                }
                if self.folded(id) {
                    produced += self.emit().await?;
                }
            }
        }
        if let Some(last) = data.last_taken() {
            self.took(last);
        }
        let eof = data.finish(&mut self.output);
        self.since_snapshot += data_count;
        self.maybe_snapshot(produced > 0 || failed).await?;
        self.output.busy_since(started, data_count);
        self.output.flush(produced).await?;
        Ok(self.inputs.after_chunk(index, eof))
    }

    fn cut_short(&self) -> bool {
        self.output.stopped
    }

    async fn finish(&mut self) -> Result<(), StageFailure> {
        let produced = match self.policy {
            EmitPolicy::OnEof | EmitPolicy::Watermark => true,
            _ => self.pending > 0,
        };
        let produced = if produced {
            let items = self.handler.emit_final(self.output.drain_reason()).await?;
            self.write(items)
        } else {
            0
        };
        self.output.flush(produced).await?;
        self.output.write_eof().await
    }
}
