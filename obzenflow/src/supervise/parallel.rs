//! A parallel stage: one stage run as N instances, each its own tokio task
//! with its own copy of the handler. The stage's task stays the one reader
//! of its inputs and the one writer of its journal: it splits each chunk of
//! input among the instances (by key, or in contiguous shares), waits for
//! their results, and writes them in input order. So the stage's journal,
//! what downstream stages, replay, verification and resume see, is the same
//! whatever the scheduling, and every event of a key goes to the same
//! instance, in order.
//!
//! A panic in an instance fails the stage, naming the instance.

use super::body::{ChunkData, Output};
use super::catch::catch_panic;
use super::failure::StageFailure;
use super::status::{InstanceCounters, StageCounters};
use crate::event::{DeliveryKey, Receipt};
use crate::event::{EventId, Payload};
use crate::stage::parallel::Partition as Router;
use crate::stage::{DrainReason, Emitter, Join, Severity, Sink, StageError, Stateful, Transform};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many inputs a parallel stage hands its instances at once when its
/// input holds that many: each round ends with the instances waiting for
/// the slowest, so rounds are made large (16 source batches).
pub(crate) const ROUND: u64 = 16 * 1024;

/// What one instance does with the jobs it is given.
pub(crate) trait Work: Send + 'static {
    type Job: Send + 'static;
    type Reply: Send + 'static;
    /// How many inputs a job holds (for the instance's figures).
    fn inputs(job: &Self::Job) -> u64;
    fn run(&mut self, job: Self::Job) -> impl Future<Output = Self::Reply> + Send;
}

/// The instances of a parallel stage. They are spawned at the first job
/// (inside the flow's runtime); until then their handlers can be reached,
/// to restore a resumed run's state.
pub(crate) struct Pool<W: Work> {
    stage: Arc<str>,
    counters: Arc<StageCounters>,
    idle: Vec<W>,
    lanes: Vec<Lane<W>>,
}

struct Lane<W: Work> {
    jobs: mpsc::Sender<W::Job>,
    replies: mpsc::Receiver<Result<W::Reply, String>>,
    task: JoinHandle<()>,
}

impl<W: Work> Drop for Lane<W> {
    fn drop(&mut self) {
        // A stage that fails or is cancelled mid-job does not leave its
        // instances running.
        self.task.abort();
    }
}

impl<W: Work> Pool<W> {
    /// The instances of the stage that writes `output`, one per worker.
    pub(crate) fn new<O: Payload>(output: &Output<O>, workers: Vec<W>) -> Self {
        Pool {
            stage: Arc::clone(&output.name),
            counters: Arc::clone(&output.counters),
            idle: workers,
            lanes: Vec::new(),
        }
    }

    pub(crate) fn instances(&self) -> usize {
        self.idle.len().max(self.lanes.len())
    }

    /// The instances' handlers, before the first job.
    pub(crate) fn idle(&self) -> &[W] {
        &self.idle
    }

    /// The same, to change.
    pub(crate) fn idle_mut(&mut self) -> &mut [W] {
        &mut self.idle
    }

    fn start(&mut self) {
        self.counters.instances.get_or_init(|| {
            self.idle
                .iter()
                .map(|_| InstanceCounters::default())
                .collect()
        });
        for (index, mut worker) in self.idle.drain(..).enumerate() {
            let counters = Arc::clone(&self.counters);
            let (jobs, mut incoming) = mpsc::channel::<W::Job>(1);
            let (reply, replies) = mpsc::channel(1);
            let span = tracing::debug_span!("instance", stage = %self.stage, instance = index);
            let task = tokio::spawn(tracing::Instrument::instrument(
                async move {
                    while let Some(job) = incoming.recv().await {
                        let started = std::time::Instant::now();
                        let inputs = W::inputs(&job);
                        let outcome = catch_panic(worker.run(job)).await;
                        if let Some(figures) =
                            counters.instances.get().and_then(|all| all.get(index))
                        {
                            let nanos =
                                u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                            StageCounters::add(&figures.events, inputs);
                            StageCounters::add(&figures.busy_nanos, nanos);
                        }
                        let panicked = outcome.is_err();
                        if reply.send(outcome).await.is_err() || panicked {
                            break;
                        }
                    }
                },
                span,
            ));
            self.lanes.push(Lane {
                jobs,
                replies,
                task,
            });
        }
    }

    /// Gives instance `i` the job `jobs[i]` (none if `None`), all at once,
    /// and waits for every reply.
    pub(crate) async fn run(
        &mut self,
        jobs: Vec<Option<W::Job>>,
    ) -> Result<Vec<Option<W::Reply>>, StageFailure> {
        if self.lanes.is_empty() {
            self.start();
        }
        let count = self.lanes.len();
        let lost = |index: usize| StageFailure::Panicked {
            message: format!("instance {index} of {count} stopped after an earlier panic"),
            draining: false,
        };
        let mut given = Vec::with_capacity(count);
        for (index, (lane, job)) in self.lanes.iter().zip(jobs).enumerate() {
            let sent = match job {
                Some(job) => {
                    lane.jobs.send(job).await.map_err(|_| lost(index))?;
                    true
                }
                None => false,
            };
            given.push(sent);
        }
        let mut replies = Vec::with_capacity(count);
        for (index, (lane, sent)) in self.lanes.iter_mut().zip(given).enumerate() {
            if !sent {
                replies.push(None);
                continue;
            }
            match lane.replies.recv().await {
                Some(Ok(reply)) => replies.push(Some(reply)),
                Some(Err(message)) => {
                    return Err(StageFailure::Panicked {
                        message: format!("instance {index} of {count}: {message}"),
                        draining: false,
                    });
                }
                None => return Err(lost(index)),
            }
        }
        Ok(replies)
    }

    /// Splits `items` among the instances by `router` (routing on the part
    /// `on` picks), gives each its share as `job(share)`, and returns what
    /// `outcomes` reads from each reply, item by item in input order: up to
    /// the first item an instance did not get to (it stopped at a fatal
    /// error, which comes first in input order).
    pub(crate) async fn run_in_order<I, T, U>(
        &mut self,
        items: Vec<I>,
        router: &impl Router<T>,
        on: impl Fn(&I) -> &T,
        job: impl Fn(Vec<I>) -> W::Job,
        outcomes: impl Fn(W::Reply) -> Vec<U>,
    ) -> Result<Vec<U>, StageFailure> {
        let (jobs, route) = split(items.into_iter(), router, on, self.instances());
        let jobs = jobs.into_iter().map(|share| share.map(&job)).collect();
        let mut replies: Vec<_> = self
            .run(jobs)
            .await?
            .into_iter()
            .map(|reply| reply.map(&outcomes).unwrap_or_default().into_iter())
            .collect();
        let mut ordered = Vec::with_capacity(route.len());
        for instance in route {
            match replies[instance as usize].next() {
                Some(outcome) => ordered.push(outcome),
                None => break,
            }
        }
        Ok(ordered)
    }

    /// Gives every instance a job made by `job` and waits for the replies,
    /// in instance order.
    pub(crate) async fn run_each(
        &mut self,
        mut job: impl FnMut(usize) -> W::Job,
    ) -> Result<Vec<W::Reply>, StageFailure> {
        let jobs = (0..self.instances())
            .map(|index| Some(job(index)))
            .collect();
        Ok(self.run(jobs).await?.into_iter().flatten().collect())
    }
}

impl<W, I, O> Pool<W>
where
    W: Work<Job = Vec<I>, Reply = Handled<O>>,
    I: Payload,
    O: Payload,
{
    /// Runs a chunk's data (up to a pause at a probe) through the
    /// instances, split by `router`, and writes what each input gave (or
    /// its error) in input order: what the stage would write run as one.
    pub(crate) async fn handle_chunk(
        &mut self,
        data: &mut ChunkData<I>,
        router: &impl Router<I>,
        output: &mut Output<O>,
    ) -> Result<u64, StageFailure> {
        let (ids, items): (Vec<EventId>, Vec<I>) = data.unzip();
        if items.is_empty() {
            return Ok(0);
        }
        let (jobs, route) = split(items.into_iter(), router, |item| item, self.instances());
        let mut replies = self.run(jobs).await?;
        let mut produced = 0;
        for (id, instance) in ids.into_iter().zip(route) {
            let Some(Some(reply)) = replies.get_mut(instance as usize) else {
                break;
            };
            match reply.outcomes.next() {
                Some(Ok(count)) => {
                    output
                        .writer
                        .push_all(Some(id), reply.items.by_ref().take(count as usize));
                    produced += u64::from(count);
                }
                Some(Err(error)) => output.failed(error, Some(id))?,
                // The instance stopped at a fatal error, which came first.
                None => break,
            }
        }
        Ok(produced)
    }
}

/// Splits `items` among `instances` by `router`: the jobs, and the instance
/// of each item in order.
pub(crate) fn split<I, T>(
    items: impl ExactSizeIterator<Item = I>,
    router: &impl Router<T>,
    on: impl Fn(&I) -> &T,
    instances: usize,
) -> (Vec<Option<Vec<I>>>, Vec<u32>) {
    let len = items.len();
    let mut jobs: Vec<Vec<I>> = (0..instances)
        .map(|_| Vec::with_capacity(len / instances.max(1) + 1))
        .collect();
    let mut route = Vec::with_capacity(len);
    for (index, item) in items.enumerate() {
        // Below `instances`: both routers (the trait is sealed) make sure.
        let instance = router.route(on(&item), index, len, instances);
        route.push(instance as u32);
        jobs[instance].push(item);
    }
    let jobs = jobs
        .into_iter()
        .map(|job| (!job.is_empty()).then_some(job))
        .collect();
    (jobs, route)
}

/// What an instance made of its share of a chunk: per input, in order, how
/// many outputs it gave or its error; and the outputs. It stops at a fatal
/// error, as a stage would.
pub(crate) struct Handled<O> {
    pub(crate) outcomes: std::vec::IntoIter<Result<u32, StageError>>,
    pub(crate) items: std::vec::IntoIter<O>,
}

impl<O> Handled<O> {
    fn new(outcomes: Vec<Result<u32, StageError>>, items: Vec<O>) -> Self {
        Handled {
            outcomes: outcomes.into_iter(),
            items: items.into_iter(),
        }
    }
}

/// An instance of a parallel transform.
pub(crate) struct TransformWorker<X, I, O> {
    handler: X,
    emitter: Emitter<O>,
    input: PhantomData<fn(I)>,
}

impl<X, I, O> TransformWorker<X, I, O> {
    pub(crate) fn new(handler: X) -> Self {
        TransformWorker {
            handler,
            emitter: Emitter::new(),
            input: PhantomData,
        }
    }
}

impl<I: Send + 'static, O: Send + 'static, X: Transform<I, O>> Work for TransformWorker<X, I, O> {
    type Job = Vec<I>;
    type Reply = Handled<O>;

    fn inputs(job: &Vec<I>) -> u64 {
        job.len() as u64
    }

    async fn run(&mut self, job: Vec<I>) -> Handled<O> {
        let mut collect = Collect::new(job.len());
        for input in job {
            let result = self.handler.process(input, &mut self.emitter).await;
            if !collect.took(result, &mut self.emitter) {
                break;
            }
        }
        collect.done()
    }
}

/// An instance of a parallel join: a clone of the handler made once the
/// whole reference was loaded into it, joining its share of the stream.
pub(crate) struct JoinWorker<X, R, S, O> {
    handler: X,
    emitter: Emitter<O>,
    types: PhantomData<fn(R, S)>,
}

impl<X, R, S, O> JoinWorker<X, R, S, O> {
    pub(crate) fn new(handler: X) -> Self {
        JoinWorker {
            handler,
            emitter: Emitter::new(),
            types: PhantomData,
        }
    }
}

impl<R, S, O, X> Work for JoinWorker<X, R, S, O>
where
    R: Send + 'static,
    S: Send + 'static,
    O: Send + 'static,
    X: Join<R, S, O>,
{
    type Job = Vec<S>;
    type Reply = Handled<O>;

    fn inputs(job: &Vec<S>) -> u64 {
        job.len() as u64
    }

    async fn run(&mut self, job: Vec<S>) -> Handled<O> {
        let mut collect = Collect::new(job.len());
        for input in job {
            let result = self.handler.join(input, &mut self.emitter);
            if !collect.took(result, &mut self.emitter) {
                break;
            }
        }
        collect.done()
    }
}

/// What an instance's inputs gave, as it handles them in turn.
struct Collect<O> {
    outcomes: Vec<Result<u32, StageError>>,
    items: Vec<O>,
}

impl<O> Collect<O> {
    fn new(inputs: usize) -> Self {
        Collect {
            outcomes: Vec::with_capacity(inputs),
            items: Vec::with_capacity(inputs),
        }
    }

    /// Keeps what one input gave; whether to go on (not after a fatal
    /// error, as a stage would not).
    #[inline]
    fn took(&mut self, result: Result<(), StageError>, emitter: &mut Emitter<O>) -> bool {
        match result {
            Ok(()) => {
                self.outcomes.push(Ok(emitter.items.len() as u32));
                self.items.append(&mut emitter.items);
                true
            }
            Err(error) => {
                emitter.items.clear();
                let fatal = error.severity() == Severity::Fatal;
                self.outcomes.push(Err(error));
                !fatal
            }
        }
    }

    fn done(self) -> Handled<O> {
        Handled::new(self.outcomes, self.items)
    }
}

/// What an instance of a parallel sink is asked.
pub(crate) enum SinkJob<T> {
    Deliver(Vec<(DeliveryKey, T)>),
    Flush,
    Drain(DrainReason),
}

/// Its answers: each delivery's receipt or error (up to a fatal one), or
/// how a flush or drain went.
pub(crate) enum SinkReply {
    Delivered(Vec<Result<Receipt, StageError>>),
    Done(Result<(), StageError>),
}

/// An instance of a parallel sink.
pub(crate) struct SinkWorker<X, T>(pub(crate) X, PhantomData<fn(T)>);

impl<X, T> SinkWorker<X, T> {
    pub(crate) fn new(handler: X) -> Self {
        SinkWorker(handler, PhantomData)
    }
}

impl<T: Payload, X: Sink<T>> Work for SinkWorker<X, T> {
    type Job = SinkJob<T>;
    type Reply = SinkReply;

    fn inputs(job: &SinkJob<T>) -> u64 {
        match job {
            SinkJob::Deliver(inputs) => inputs.len() as u64,
            _ => 0,
        }
    }

    async fn run(&mut self, job: SinkJob<T>) -> SinkReply {
        match job {
            SinkJob::Deliver(inputs) => {
                let mut outcomes = Vec::with_capacity(inputs.len());
                for (key, input) in inputs {
                    let outcome = self.0.deliver(&key, input).await;
                    let fatal =
                        matches!(&outcome, Err(error) if error.severity() == Severity::Fatal);
                    outcomes.push(outcome);
                    if fatal {
                        break;
                    }
                }
                SinkReply::Delivered(outcomes)
            }
            SinkJob::Flush => SinkReply::Done(self.0.flush().await),
            SinkJob::Drain(reason) => SinkReply::Done(self.0.drain(reason).await),
        }
    }
}

/// What an instance of a keyed stateful stage is asked.
pub(crate) enum FoldJob<I> {
    Accumulate(Vec<I>),
    Emit,
    EmitFinal(DrainReason),
    Snapshot,
}

/// Its answers, one kind per job.
pub(crate) enum FoldReply<O> {
    Accumulated(Vec<Result<(), StageError>>),
    Emitted(Vec<O>),
    Snapshot(Option<Result<Vec<u8>, StageError>>),
}

/// An instance of a keyed stateful stage.
pub(crate) struct FoldWorker<X, I, O>(pub(crate) X, PhantomData<fn(I) -> O>);

impl<X, I, O> FoldWorker<X, I, O> {
    pub(crate) fn new(handler: X) -> Self {
        FoldWorker(handler, PhantomData)
    }
}

impl<I: Send + 'static, O: Send + 'static, X: Stateful<I, O>> Work for FoldWorker<X, I, O> {
    type Job = FoldJob<I>;
    type Reply = FoldReply<O>;

    fn inputs(job: &FoldJob<I>) -> u64 {
        match job {
            FoldJob::Accumulate(inputs) => inputs.len() as u64,
            _ => 0,
        }
    }

    async fn run(&mut self, job: FoldJob<I>) -> FoldReply<O> {
        match job {
            FoldJob::Accumulate(inputs) => {
                let mut outcomes = Vec::with_capacity(inputs.len());
                for input in inputs {
                    let outcome = self.0.accumulate(input);
                    let fatal =
                        matches!(&outcome, Err(error) if error.severity() == Severity::Fatal);
                    outcomes.push(outcome);
                    if fatal {
                        break;
                    }
                }
                FoldReply::Accumulated(outcomes)
            }
            FoldJob::Emit => FoldReply::Emitted(self.0.emit()),
            FoldJob::EmitFinal(reason) => FoldReply::Emitted(self.0.emit_final(reason)),
            FoldJob::Snapshot => FoldReply::Snapshot(self.0.snapshot()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::parallel::Spread as Shares;

    #[test]
    fn split_keeps_each_instances_order() {
        let (jobs, route) = split([5u32, 6, 7, 8, 9].into_iter(), &Shares, |n| n, 2);
        assert_eq!(route, [0, 0, 0, 1, 1]);
        assert_eq!(jobs, [Some(vec![5, 6, 7]), Some(vec![8, 9])]);
        let (jobs, route) = split([1u32].into_iter(), &Shares, |n| n, 3);
        assert_eq!(route, [0]);
        assert_eq!(jobs, [Some(vec![1]), None, None]);
    }
}
