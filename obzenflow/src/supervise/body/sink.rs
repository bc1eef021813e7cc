//! A sink: delivers each input through its handler and journals a receipt
//! for it; in a replay that does not repeat sink effects, it skips the
//! deliveries and journals that it did. At the end its handler's `drain` is
//! told why the stage drains.

use super::{ChunkData, Output, StageBody, Step};
use crate::event::{DeliveryKey, EventId, Payload, Receipt, StageId};
use crate::stage::parallel::Partition;
use crate::stage::{Delivery, DrainReason, Sink, StageError};
use crate::supervise::failure::StageFailure;
use crate::supervise::input::{Inputs, Taken};
use crate::supervise::parallel::{Pool, SinkJob, SinkReply, SinkWorker};
use crate::supervise::status::StageCounters;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant as StdInstant;

pub(crate) struct SinkBody<T: Payload, K> {
    pub(crate) handler: K,
    pub(crate) inputs: Inputs<T>,
    pub(crate) output: Output<Receipt>,
    /// Set when a replay must not repeat the sink's external effects.
    pub(crate) dry_run: bool,
    /// The chunk's receipts, with the inputs they are for, written together.
    pub(crate) receipts: Vec<(EventId, Receipt)>,
    /// The key of the delivery under way (its event changes each time).
    pub(crate) key: DeliveryKey,
    /// For a resumed sink that rebuilds its effect from every input: for
    /// each input stage, the inputs before this one were receipted before
    /// the run was interrupted, and are delivered again without a receipt.
    pub(crate) receipted: Vec<EventId>,
}

impl<T: Payload, K> SinkBody<T, K> {
    pub(crate) fn new(
        handler: K,
        inputs: Inputs<T>,
        output: Output<Receipt>,
        dry_run: bool,
        run: std::sync::Arc<str>,
    ) -> Self {
        SinkBody {
            handler,
            inputs,
            output,
            dry_run,
            receipts: Vec::new(),
            key: DeliveryKey {
                run,
                event: EventId {
                    stage: StageId(0),
                    seq: 0,
                },
            },
            receipted: Vec::new(),
        }
    }

    /// Whether input `id` was receipted before the run was interrupted.
    fn was_receipted(&self, id: EventId) -> bool {
        self.receipted
            .iter()
            .any(|until| until.stage == id.stage && id.seq < until.seq)
    }

    /// Writes the receipts kept so far.
    fn write_receipts(&mut self) {
        self.output.writer.push_each(self.receipts.drain(..));
    }
}

/// How a sink stage delivers: through its one handler ([`OneSink`]), or
/// through instances ([`ParallelSink`]).
pub(crate) trait Deliver<T: Payload>: Send + 'static {
    /// Whether deliveries go a batch at a time (to instances).
    const PARALLEL: bool;
    fn delivery(&self) -> Delivery;
    fn deliver(
        &mut self,
        key: &DeliveryKey,
        input: T,
    ) -> impl Future<Output = Result<Receipt, StageError>> + Send;
    /// Delivers each input with its key, giving each outcome in order (up
    /// to a fatal error).
    #[allow(clippy::type_complexity)]
    fn deliver_all(
        &mut self,
        inputs: Vec<(DeliveryKey, T)>,
    ) -> impl Future<Output = Result<Vec<Result<Receipt, StageError>>, StageFailure>> + Send;
    /// Flushes; the errors it gave.
    fn flush(&mut self) -> impl Future<Output = Result<Vec<StageError>, StageFailure>> + Send;
    fn drain(
        &mut self,
        reason: DrainReason,
    ) -> impl Future<Output = Result<(), StageFailure>> + Send;
}

/// A sink's one handler.
pub(crate) struct OneSink<X>(pub(crate) X);

impl<T: Payload, X: Sink<T>> Deliver<T> for OneSink<X> {
    const PARALLEL: bool = false;

    fn delivery(&self) -> Delivery {
        self.0.delivery()
    }

    #[inline]
    async fn deliver(&mut self, key: &DeliveryKey, input: T) -> Result<Receipt, StageError> {
        self.0.deliver(key, input).await
    }

    async fn deliver_all(
        &mut self,
        inputs: Vec<(DeliveryKey, T)>,
    ) -> Result<Vec<Result<Receipt, StageError>>, StageFailure> {
        let mut outcomes = Vec::with_capacity(inputs.len());
        for (key, input) in inputs {
            outcomes.push(self.0.deliver(&key, input).await);
        }
        Ok(outcomes)
    }

    async fn flush(&mut self) -> Result<Vec<StageError>, StageFailure> {
        Ok(self.0.flush().await.err().into_iter().collect())
    }

    async fn drain(&mut self, reason: DrainReason) -> Result<(), StageFailure> {
        self.0
            .drain(reason)
            .await
            .map_err(|error| StageFailure::handler(error).while_draining())
    }
}

/// A sink run as several instances, each with its own clone of the
/// handler; the receipts are journaled in input order.
pub(crate) struct ParallelSink<X: Sink<T>, T: Payload, P> {
    pool: Pool<SinkWorker<X, T>>,
    partition: P,
    delivery: Delivery,
}

impl<X: Sink<T>, T: Payload, P> ParallelSink<X, T, P> {
    pub(crate) fn new(output: &Output<Receipt>, handlers: Vec<X>, partition: P) -> Self {
        let delivery = handlers
            .first()
            .map_or(Delivery::AtLeastOnce, Sink::delivery);
        ParallelSink {
            pool: Pool::new(output, handlers.into_iter().map(SinkWorker::new).collect()),
            partition,
            delivery,
        }
    }
}

impl<T: Payload, X: Sink<T>, P: Partition<T>> Deliver<T> for ParallelSink<X, T, P> {
    const PARALLEL: bool = true;

    fn delivery(&self) -> Delivery {
        self.delivery
    }

    async fn deliver(&mut self, key: &DeliveryKey, input: T) -> Result<Receipt, StageError> {
        match self.deliver_all(vec![(key.clone(), input)]).await {
            Ok(mut outcomes) => outcomes
                .pop()
                .unwrap_or_else(|| Err(StageError::fatal("the delivery was lost"))),
            Err(failure) => Err(StageError::fatal(failure.to_string())),
        }
    }

    async fn deliver_all(
        &mut self,
        inputs: Vec<(DeliveryKey, T)>,
    ) -> Result<Vec<Result<Receipt, StageError>>, StageFailure> {
        self.pool
            .run_in_order(
                inputs,
                &self.partition,
                |(_, input)| input,
                SinkJob::Deliver,
                |reply| match reply {
                    SinkReply::Delivered(outcomes) => outcomes,
                    SinkReply::Done(_) => Vec::new(),
                },
            )
            .await
    }

    async fn flush(&mut self) -> Result<Vec<StageError>, StageFailure> {
        Ok(self
            .pool
            .run_each(|_| SinkJob::Flush)
            .await?
            .into_iter()
            .filter_map(|reply| match reply {
                SinkReply::Done(Err(error)) => Some(error),
                _ => None,
            })
            .collect())
    }

    async fn drain(&mut self, reason: DrainReason) -> Result<(), StageFailure> {
        let replies = self
            .pool
            .run_each(|_| SinkJob::Drain(reason))
            .await
            .map_err(StageFailure::while_draining)?;
        for reply in replies {
            if let SinkReply::Done(Err(error)) = reply {
                return Err(StageFailure::handler(error).while_draining());
            }
        }
        Ok(())
    }
}

impl<T: Payload, K: Deliver<T>> SinkBody<T, K> {
    /// Continues a resumed run as the handler's [`Delivery`] says: after
    /// the last receipt, or (to rebuild its effect) from the first input.
    pub(crate) fn resume(
        &mut self,
        resume: &crate::flow::resume::StageResume,
    ) -> Result<(), String> {
        let counters = std::sync::Arc::clone(&self.output.counters);
        let delivery = self.handler.delivery();
        if delivery == Delivery::Rebuilt && !resume.own.ended {
            self.receipted = self
                .inputs
                .stages()
                .iter()
                .map(|&up| EventId {
                    stage: StageId(u32::try_from(up).unwrap_or(u32::MAX)),
                    seq: resume.taken(up),
                })
                .collect();
            return self.inputs.resume(resume, |_| 0, &counters);
        }
        if delivery == Delivery::AtLeastOnce && !resume.own.ended {
            // Delivered again, perhaps for the second time: what the
            // interrupted run could have read after its last receipt.
            let again: u64 = resume
                .upstream
                .iter()
                .map(|up| up.facts.data_from(resume.taken(up.index)))
                .sum();
            StageCounters::add(&counters.possible_duplicates, again);
        }
        self.inputs.resume(resume, |up| resume.taken(up), &counters)
    }
}

impl<T: Payload, K: Deliver<T>> SinkBody<T, K> {
    /// Delivers a chunk's data through the instances, and journals the
    /// receipts (and errors) in input order; returns how many it delivered.
    async fn deliver_in_parallel(&mut self, data: &mut ChunkData<T>) -> Result<u64, StageFailure> {
        let mut batch = Vec::new();
        let mut inputs = Vec::new();
        let mut delivered = 0;
        for (id, item) in data {
            if self.dry_run {
                delivered += 1;
                self.receipts
                    .push((id, Receipt::with_detail("replay: delivery skipped")));
                continue;
            }
            // Rebuilding: delivered again, its receipt (or its failure)
            // already journaled.
            let again = !self.receipted.is_empty() && self.was_receipted(id);
            inputs.push((id, again));
            let key = DeliveryKey {
                run: Arc::clone(&self.key.run),
                event: id,
            };
            batch.push((key, item));
        }
        if batch.is_empty() {
            return Ok(delivered);
        }
        let outcomes = self.handler.deliver_all(batch).await?;
        for ((id, again), outcome) in inputs.into_iter().zip(outcomes) {
            match outcome {
                _ if again => {}
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
        Ok(delivered)
    }
}

impl<T: Payload, K: Deliver<T>> StageBody for SinkBody<T, K> {
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
        let mut data = ChunkData::new(chunk, data_count, &self.output.counters);
        let mut delivered = 0;
        if K::PARALLEL {
            delivered = self.deliver_in_parallel(&mut data).await?;
        }
        for (id, item) in &mut data {
            if self.dry_run {
                delivered += 1;
                self.receipts
                    .push((id, Receipt::with_detail("replay: delivery skipped")));
                continue;
            }
            self.key.event = id;
            if !self.receipted.is_empty() && self.was_receipted(id) {
                // Rebuilding: delivered again, its receipt (or its failure)
                // already journaled.
                let _ = self.handler.deliver(&self.key, item).await;
                continue;
            }
            match self.handler.deliver(&self.key, item).await {
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
        let eof = data.finish(&mut self.output);
        for error in self.handler.flush().await? {
            self.output.failed(error, None)?;
        }
        self.output.busy_since(started, data_count);
        self.output.flush(delivered).await?;
        Ok(self.inputs.after_chunk(index, eof))
    }

    fn cut_short(&self) -> bool {
        self.output.stopped
    }

    async fn finish(&mut self) -> Result<(), StageFailure> {
        let reason = self.output.drain_reason();
        self.handler.drain(reason).await?;
        self.output.write_eof().await
    }
}
