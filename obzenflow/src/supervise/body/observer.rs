//! An observer: sees every entry of another stage's journal (data, error
//! records and control marks) and changes nothing.

use super::{Output, StageBody, Step};
use crate::event::{Body, Control, Payload};
use crate::stage::Observer;
use crate::supervise::failure::StageFailure;
use crate::supervise::input::{Inputs, Taken};
use crate::supervise::status::StageCounters;
use std::time::Instant as StdInstant;

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

    async fn work(&mut self, work: Self::Work) -> Result<Step, StageFailure> {
        self.inputs.check()?;
        let Some((index, chunk, data_count)) = work else {
            return Ok(Step::Done);
        };
        let started = StdInstant::now();
        let mut eof = false;
        if let Some(last) = chunk.entries().last()
            && self.output.durable.is_some()
        {
            // An observer writes nothing but this (and only on disk, where
            // a resumed run reads it): how far it has seen.
            let next = crate::event::EventId {
                stage: last.id.stage,
                seq: last.id.seq + 1,
            };
            self.output.writer.push(
                crate::event::Parents::None,
                Body::Control(Control::Consumed(next)),
            );
        }
        for entry in chunk.entries() {
            self.handler.observe(entry);
            match &entry.body {
                Body::Control(Control::Eof) => eof = true,
                Body::Control(Control::Drain) => self.output.stopped = true,
                _ => {}
            }
        }
        StageCounters::add(&self.output.counters.events_in, data_count);
        self.output.busy_since(started, data_count);
        if self.output.durable.is_some() {
            self.output.flush(0).await?;
        }
        Ok(self.inputs.after_chunk(index, eof))
    }

    fn cut_short(&self) -> bool {
        self.output.stopped
    }

    async fn finish(&mut self) -> Result<(), StageFailure> {
        self.output.write_eof().await
    }
}
