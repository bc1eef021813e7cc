//! A sink: delivers each input through its handler and journals a receipt
//! for it; in a replay that does not repeat sink effects, it skips the
//! deliveries and journals that it did. At the end its handler's `drain` is
//! told why the stage drains.

use super::{ChunkData, Output, StageBody, Step};
use crate::event::{DeliveryKey, EventId, Payload, Receipt, StageId};
use crate::stage::{Delivery, Sink};
use crate::supervise::failure::StageFailure;
use crate::supervise::input::{Inputs, Taken};
use crate::supervise::status::StageCounters;
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

impl<T: Payload, K: Sink<T>> SinkBody<T, K> {
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

impl<T: Payload, K: Sink<T>> StageBody for SinkBody<T, K> {
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
        if let Err(error) = self.handler.flush().await {
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
        self.handler
            .drain(reason)
            .await
            .map_err(|error| StageFailure::handler(error).while_draining())?;
        self.output.write_eof().await
    }
}
