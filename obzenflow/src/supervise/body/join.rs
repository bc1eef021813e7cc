//! A join: loads the whole reference side into its handler, then joins each
//! event of the stream side against it.

use super::{ChunkData, Output, StageBody, Step};
use crate::event::Payload;
use crate::stage::parallel::{Partition, Replicable};
use crate::stage::{Emitter, Join};
use crate::supervise::failure::StageFailure;
use crate::supervise::input::{Inputs, Taken};
use crate::supervise::parallel::{JoinWorker, Pool};
use std::future::Future;
use std::time::Instant as StdInstant;

pub(crate) struct JoinBody<R: Payload, S: Payload, O: Payload, X, Y = SerialJoin> {
    pub(crate) handler: X,
    /// How the stream side is joined: by the handler, or by instances.
    pub(crate) joins: Y,
    pub(crate) reference: Inputs<R>,
    pub(crate) stream: Inputs<S>,
    pub(crate) output: Output<O>,
    pub(crate) emitter: Emitter<O>,
    /// For a resumed run, which loads its reference again: the reference
    /// inputs before this one already have their failures in the journal.
    pub(crate) reloaded_until: Option<crate::event::EventId>,
}

impl<R: Payload, S: Payload, O: Payload, X, Y> JoinBody<R, S, O, X, Y> {
    pub(crate) fn new(
        handler: X,
        joins: Y,
        reference: Inputs<R>,
        stream: Inputs<S>,
        output: Output<O>,
    ) -> Self {
        JoinBody {
            handler,
            joins,
            reference,
            stream,
            output,
            emitter: Emitter::new(),
            reloaded_until: None,
        }
    }

    /// Continues a resumed run: the whole reference again (a join holds
    /// it), the stream after the last event the journal shows taken.
    pub(crate) fn resume(
        &mut self,
        resume: &crate::flow::resume::StageResume,
    ) -> Result<(), String> {
        let counters = std::sync::Arc::clone(&self.output.counters);
        self.reference.resume(resume, |_| 0, &counters)?;
        if let Some(&stage) = self.reference.stages().first() {
            self.reloaded_until = Some(crate::event::EventId {
                stage: crate::event::StageId(u32::try_from(stage).unwrap_or(u32::MAX)),
                seq: resume.taken(stage),
            });
        }
        self.stream.resume(resume, |up| resume.taken(up), &counters)
    }
}

pub(crate) enum JoinWork<R, S> {
    Reference(Option<Taken<R>>),
    Stream(Option<Taken<S>>),
}

/// How a join's stream side is joined.
pub(crate) trait StreamJoin<R, S: Payload, O: Payload, X>: Send + 'static {
    /// Joins a chunk's stream events, writing what each gave in order.
    fn handle(
        &mut self,
        handler: &mut X,
        emitter: &mut Emitter<O>,
        data: &mut ChunkData<S>,
        output: &mut Output<O>,
    ) -> impl Future<Output = Result<u64, StageFailure>> + Send;
}

/// By the join's handler, one event at a time.
pub(crate) struct SerialJoin;

impl<R, S: Payload, O: Payload, X: Join<R, S, O>> StreamJoin<R, S, O, X> for SerialJoin {
    async fn handle(
        &mut self,
        handler: &mut X,
        emitter: &mut Emitter<O>,
        data: &mut ChunkData<S>,
        output: &mut Output<O>,
    ) -> Result<u64, StageFailure> {
        let mut produced = 0;
        for (id, item) in data {
            let result = handler.join(item, emitter);
            produced += output.handled(id, result, emitter)?;
        }
        Ok(produced)
    }
}

/// By instances, each a clone of the handler made once the whole
/// reference was loaded into it (so each holds the whole reference), the
/// stream split among them.
pub(crate) struct ParallelJoin<X: Join<R, S, O>, R: Payload, S: Payload, O: Payload, P> {
    instances: usize,
    partition: P,
    pool: Option<Pool<JoinWorker<X, R, S, O>>>,
}

impl<X: Join<R, S, O>, R: Payload, S: Payload, O: Payload, P> ParallelJoin<X, R, S, O, P> {
    pub(crate) fn new(instances: usize, partition: P) -> Self {
        ParallelJoin {
            instances,
            partition,
            pool: None,
        }
    }
}

impl<R, S, O, X, P> StreamJoin<R, S, O, X> for ParallelJoin<X, R, S, O, P>
where
    R: Payload,
    S: Payload,
    O: Payload,
    X: Join<R, S, O> + Replicable,
    P: Partition<S>,
{
    async fn handle(
        &mut self,
        handler: &mut X,
        _: &mut Emitter<O>,
        data: &mut ChunkData<S>,
        output: &mut Output<O>,
    ) -> Result<u64, StageFailure> {
        let instances = self.instances;
        let pool = self.pool.get_or_insert_with(|| {
            Pool::new(
                output,
                (0..instances)
                    .map(|_| JoinWorker::new(handler.replicate()))
                    .collect(),
            )
        });
        pool.handle_chunk(data, &self.partition, output).await
    }
}

impl<R, S, O, X, Y> StageBody for JoinBody<R, S, O, X, Y>
where
    R: Payload,
    S: Payload,
    O: Payload,
    X: Join<R, S, O>,
    Y: StreamJoin<R, S, O, X>,
{
    type Work = JoinWork<R, S>;

    async fn wait(&mut self) -> Self::Work {
        // The whole reference is loaded before any stream event is joined.
        if self.reference.all_closed() {
            JoinWork::Stream(self.stream.next().await)
        } else {
            JoinWork::Reference(self.reference.next().await)
        }
    }

    async fn work(&mut self, work: Self::Work) -> Result<Step, StageFailure> {
        self.reference.check()?;
        self.stream.check()?;
        let started = StdInstant::now();
        let step = match work {
            JoinWork::Reference(None) | JoinWork::Stream(None) => Step::Continue,
            JoinWork::Reference(Some((index, chunk, data_count))) => {
                let mut data = ChunkData::new(chunk, data_count, &self.output.counters);
                for (id, item) in &mut data {
                    if let Err(error) = self.handler.load(item) {
                        let reported = self
                            .reloaded_until
                            .is_some_and(|until| id.stage == until.stage && id.seq < until.seq);
                        if !reported {
                            self.output.failed(error, Some(id))?;
                        }
                    }
                }
                if data.finish(&mut self.output) {
                    self.reference.close(index);
                }
                self.output.busy_since(started, data_count);
                self.output.flush(0).await?;
                Step::Continue
            }
            JoinWork::Stream(Some((index, chunk, data_count))) => {
                let mut data = ChunkData::new(chunk, data_count, &self.output.counters);
                let produced = self
                    .joins
                    .handle(
                        &mut self.handler,
                        &mut self.emitter,
                        &mut data,
                        &mut self.output,
                    )
                    .await?;
                if data.finish(&mut self.output) {
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

    fn cut_short(&self) -> bool {
        self.output.stopped
    }

    async fn finish(&mut self) -> Result<(), StageFailure> {
        self.output.write_eof().await
    }
}
