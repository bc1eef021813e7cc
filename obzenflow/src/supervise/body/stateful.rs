//! A stateful stage: folds its inputs into its handler's state and emits on
//! its policy (every N inputs, at the end, or when a window of time passes);
//! at the end its handler's `emit_final` is told why the stage drains.

use super::{ChunkData, Output, StageBody, Step};
use crate::event::{Body, EventId, Parents, Payload, StateSnapshot};
use crate::flow::journals::Snapshots;
use crate::flow::resume::StageResume;
use crate::stage::{EmitPolicy, Stateful};
use crate::supervise::failure::StageFailure;
use crate::supervise::input::{Inputs, Taken};
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

impl<I: Payload, O: Payload, X: Stateful<I, O>> StatefulBody<I, O, X> {
    /// Continues a resumed run: the state of the last snapshot, and each
    /// input from where that state had folded it to.
    pub(crate) fn resume(&mut self, resume: &StageResume) -> Result<(), String> {
        let own = &resume.own;
        if !own.ended && own.written_since_snapshot {
            return Err(match &own.snapshot {
                None if self.handler.snapshot().is_none() => "it had emitted, and its handler cannot snapshot its state to continue from (implement `Stateful::snapshot` and `Stateful::restore`); run the flow again".to_owned(),
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
    fn maybe_snapshot(&mut self, wrote: bool) {
        let Some(policy) = self.snapshots else {
            return;
        };
        let due = wrote
            || self.since_snapshot >= policy.every_inputs
            || (self.since_snapshot > 0 && self.snapshot_at.elapsed() >= policy.every);
        if !due {
            return;
        }
        let state = match self.handler.snapshot() {
            None => {
                // It cannot: stop asking.
                self.snapshots = None;
                return;
            }
            Some(Ok(state)) => state,
            Some(Err(error)) => {
                tracing::warn!(stage = %self.output.name, %error, "cannot snapshot the state; a resume will fold from the last snapshot written");
                return;
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

impl<I: Payload, O: Payload, X: Stateful<I, O>> StatefulBody<I, O, X> {
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

    fn emit(&mut self) -> u64 {
        let items = self.handler.emit();
        self.write(items)
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

    async fn work(&mut self, work: Self::Work) -> Result<Step, StageFailure> {
        let (index, chunk, data_count) = match work {
            StatefulWork::WindowClosed => {
                let produced = self.emit();
                self.maybe_snapshot(produced > 0);
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
        let mut data = ChunkData::new(chunk, data_count, &self.output.counters);
        let mut produced = 0;
        let mut failed = false;
        for (id, item) in &mut data {
            if let Err(error) = self.handler.accumulate(item) {
                self.output.failed(error, Some(id))?;
                failed = true;
                continue;
            }
            self.pending += 1;
            self.first_input.get_or_insert(id);
            self.last_input = Some(id);
            match self.policy {
                EmitPolicy::EveryN(n) if self.pending >= n.max(1) => produced += self.emit(),
                EmitPolicy::Watermark => produced += self.emit(),
                EmitPolicy::Window(window) if self.window_ends.is_none() => {
                    self.window_ends = Some(Instant::now() + window);
                }
                _ => {}
            }
        }
        if let Some(last) = data.last_taken() {
            self.took(last);
        }
        let eof = data.finish(&mut self.output);
        self.since_snapshot += data_count;
        self.maybe_snapshot(produced > 0 || failed);
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
            let items = self.handler.emit_final(self.output.drain_reason());
            self.write(items)
        } else {
            0
        };
        self.output.flush(produced).await?;
        self.output.write_eof().await
    }
}
