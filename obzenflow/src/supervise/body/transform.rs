//! A transform: each input to zero or more outputs. A transform that heads
//! a feedback loop also reads what the end of the loop sends back, and
//! closes the loop by the probe rounds of [`ProbeRounds`].

use super::{ChunkData, Output, StageBody, Step};
use crate::event::{Body, Control, Parents, Payload};
use crate::journal::Chunk;
use crate::stage::parallel::Partition as Router;
use crate::stage::{Emitter, StageError, Transform};
use crate::supervise::failure::StageFailure;
use crate::supervise::input::{Inputs, Taken};
use crate::supervise::parallel::{Pool, ROUND, TransformWorker};
use crate::supervise::probe::{ProbeReturn, ProbeRounds};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant as StdInstant;

pub(crate) struct TransformBody<I: Payload, O: Payload, X> {
    pub(crate) handler: X,
    pub(crate) inputs: Inputs<I>,
    pub(crate) output: Output<O>,
    /// Present when this transform is the head of a feedback loop.
    pub(crate) feedback: Option<Feedback<I>>,
}

impl<I: Payload, O: Payload, X> TransformBody<I, O, X> {
    pub(crate) fn new(
        handler: X,
        inputs: Inputs<I>,
        output: Output<O>,
        feedback: Option<(FeedbackReaders<I>, u32)>,
    ) -> Self {
        TransformBody {
            handler,
            inputs,
            output,
            feedback: feedback.map(|(port, max_rounds)| Feedback {
                port,
                inputs: None,
                rounds: ProbeRounds::new(max_rounds),
            }),
        }
    }
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
    port: FeedbackReaders<I>,
    inputs: Option<Inputs<I>>,
    rounds: ProbeRounds,
}

impl<I: Payload> Feedback<I> {
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

/// How a transform stage runs its handler over a chunk's data: one call
/// at a time ([`Serial`]), or split among instances ([`Parallel`]).
pub(crate) trait HandleChunk<I: Payload, O: Payload>: Send + 'static {
    /// How many inputs it takes at once when more are ready (0: one chunk
    /// at a time).
    const ROUND: u64;

    /// Runs the handler on each data item of `data` (up to a pause at a
    /// probe), writing what it emitted, in input order, to `output`;
    /// returns how many outputs it wrote.
    fn handle(
        &mut self,
        data: &mut ChunkData<I>,
        output: &mut Output<O>,
    ) -> impl Future<Output = Result<u64, StageFailure>> + Send;
}

/// A transform's handler, called on one input at a time.
pub(crate) struct Serial<X, O> {
    handler: X,
    emitter: Emitter<O>,
}

impl<X, O> Serial<X, O> {
    pub(crate) fn new(handler: X) -> Self {
        Serial {
            handler,
            emitter: Emitter::new(),
        }
    }
}

impl<I: Payload, O: Payload, X: Transform<I, O>> HandleChunk<I, O> for Serial<X, O> {
    const ROUND: u64 = 0;

    #[inline]
    async fn handle(
        &mut self,
        data: &mut ChunkData<I>,
        output: &mut Output<O>,
    ) -> Result<u64, StageFailure> {
        let mut produced = 0;
        for (id, item) in data {
            let result = self.handler.process(item, &mut self.emitter).await;
            produced += output.handled(id, result, &mut self.emitter)?;
        }
        Ok(produced)
    }
}

/// A transform run as several instances (see [`crate::supervise::parallel`]).
pub(crate) struct Parallel<X: Transform<I, O>, I: Payload, O: Payload, R> {
    pool: Pool<TransformWorker<X, I, O>>,
    router: R,
}

impl<X, I, O, R> Parallel<X, I, O, R>
where
    I: Payload,
    O: Payload,
    X: Transform<I, O>,
{
    pub(crate) fn new(output: &Output<O>, handlers: Vec<X>, router: R) -> Self {
        Parallel {
            pool: Pool::new(
                output,
                handlers.into_iter().map(TransformWorker::new).collect(),
            ),
            router,
        }
    }
}

impl<I, O, X, R> HandleChunk<I, O> for Parallel<X, I, O, R>
where
    I: Payload,
    O: Payload,
    X: Transform<I, O>,
    R: Router<I>,
{
    const ROUND: u64 = ROUND;

    async fn handle(
        &mut self,
        data: &mut ChunkData<I>,
        output: &mut Output<O>,
    ) -> Result<u64, StageFailure> {
        self.pool.handle_chunk(data, &self.router, output).await
    }
}

impl<I: Payload, O: Payload, X: HandleChunk<I, O>> TransformBody<I, O, X> {
    /// Handles a chunk's data, passing loop probes on in order (or, from the
    /// feedback side, answering them); returns the outputs produced and
    /// whether the chunk ended with its input's EOF.
    async fn handle_chunk(
        &mut self,
        index: usize,
        chunk: Chunk<I>,
        data_count: &mut u64,
        from_feedback: bool,
    ) -> Result<(u64, bool), StageFailure> {
        let mut data =
            ChunkData::new(chunk, *data_count, &self.output.counters).pausing_at_probes();
        // A parallel handler takes what else its input already holds, up
        // to a round's worth: the fewer rounds, the less its instances
        // wait on each other.
        if !from_feedback {
            data.gather(
                &mut self.inputs,
                index,
                data_count,
                X::ROUND,
                &self.output.counters,
            );
        }
        let mut produced = 0;
        loop {
            if from_feedback
                && let Some(feedback) = &self.feedback
                && feedback.rounds.is_closed()
            {
                let cap = feedback.rounds.max_rounds();
                for (id, _) in &mut data {
                    self.output.failed(
                        StageError::permanent(format!(
                            "still in the feedback loop after {cap} probe rounds, when the loop closed"
                        )),
                        Some(id),
                    )?;
                }
            } else {
                produced += self.handler.handle(&mut data, &mut self.output).await?;
            }
            let Some(round) = data.take_probe() else {
                break;
            };
            match &mut self.feedback {
                Some(feedback) if from_feedback => {
                    if feedback.rounds.returned(round, produced > 0) == ProbeReturn::Close {
                        self.output.push_end();
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
            feedback.rounds.emitted();
        }
        Ok((produced, data.finish(&mut self.output)))
    }

    /// A loop head whose forward inputs have ended sends the next probe round
    /// when none is out and the loop is not closed.
    fn next_probe(&mut self) {
        if !self.inputs.all_closed() {
            return;
        }
        if let Some(feedback) = &mut self.feedback
            && let Some(round) = feedback.rounds.next_round()
        {
            self.output
                .writer
                .push(Parents::None, Body::Control(Control::Probe(round)));
        }
    }

    fn done(&mut self) -> Step {
        let forward_done = self.inputs.all_closed();
        let loop_done = match &mut self.feedback {
            None => true,
            Some(feedback) => feedback.rounds.is_closed() && feedback.inputs().all_closed(),
        };
        if forward_done && loop_done {
            Step::Done
        } else {
            Step::Continue
        }
    }
}

impl<I: Payload, O: Payload, X: HandleChunk<I, O>> StageBody for TransformBody<I, O, X> {
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

    async fn work(&mut self, work: Self::Work) -> Result<Step, StageFailure> {
        self.inputs.check()?;
        let started = StdInstant::now();
        let (chunk, from_feedback) = match work {
            TransformWork::Forward(chunk) => (chunk, false),
            TransformWork::Feedback(chunk) => (chunk, true),
        };
        let mut produced = 0;
        let mut handled = 0;
        if let Some((index, chunk, mut data_count)) = chunk {
            let (count, eof) = self
                .handle_chunk(index, chunk, &mut data_count, from_feedback)
                .await?;
            handled = data_count;
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

    fn cut_short(&self) -> bool {
        self.output.stopped
    }

    async fn finish(&mut self) -> Result<(), StageFailure> {
        if self
            .feedback
            .as_ref()
            .is_some_and(|feedback| feedback.rounds.is_closed())
        {
            // The loop head wrote its EOF when the loop closed.
            return self.output.flush(0).await;
        }
        self.output.write_eof().await
    }
}
