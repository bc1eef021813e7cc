//! A stateful stage: folds its inputs into its handler's state and emits on
//! its policy (every N inputs, at the end, or when a window of time passes);
//! at the end its handler's `emit_final` is told why the stage drains.

use super::{ChunkData, Output, StageBody, Step};
use crate::event::{EventId, Parents, Payload};
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
}

impl<I: Payload, O: Payload, X> StatefulBody<I, O, X> {
    pub(crate) fn new(
        handler: X,
        policy: EmitPolicy,
        inputs: Inputs<I>,
        output: Output<O>,
    ) -> Self {
        StatefulBody {
            handler,
            policy,
            inputs,
            output,
            pending: 0,
            first_input: None,
            last_input: None,
            window_ends: None,
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
        let eof = data.finish(&mut self.output);
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
