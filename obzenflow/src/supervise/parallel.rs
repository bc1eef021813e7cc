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

use super::catch::catch_panic;
use super::failure::StageFailure;
use super::status::{InstanceCounters, StageCounters};
use crate::stage::parallel::Partition as Router;
use crate::stage::{Emitter, Severity, StageError, Stateful, Transform};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
    pub(crate) fn new(stage: Arc<str>, counters: Arc<StageCounters>, workers: Vec<W>) -> Self {
        Pool {
            stage,
            counters,
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

/// Splits `items` among `instances` by `router`: the jobs, and the instance
/// of each item in order.
pub(crate) fn split<I>(
    items: impl ExactSizeIterator<Item = I>,
    router: &impl Router<I>,
    instances: usize,
) -> (Vec<Option<Vec<I>>>, Vec<u32>) {
    let len = items.len();
    let mut jobs: Vec<Vec<I>> = (0..instances)
        .map(|_| Vec::with_capacity(len / instances.max(1) + 1))
        .collect();
    let mut route = Vec::with_capacity(len);
    for (index, item) in items.enumerate() {
        let instance = router
            .route(&item, index, len, instances)
            .min(instances - 1);
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
        let mut outcomes = Vec::with_capacity(job.len());
        let mut items = Vec::with_capacity(job.len());
        for input in job {
            match self.handler.process(input, &mut self.emitter).await {
                Ok(()) => {
                    outcomes.push(Ok(self.emitter.items.len() as u32));
                    items.append(&mut self.emitter.items);
                }
                Err(error) => {
                    self.emitter.items.clear();
                    let fatal = error.severity() == Severity::Fatal;
                    outcomes.push(Err(error));
                    if fatal {
                        break;
                    }
                }
            }
        }
        Handled::new(outcomes, items)
    }
}

/// What an instance of a keyed stateful stage is asked.
pub(crate) enum FoldJob<I> {
    Accumulate(Vec<I>),
    Emit,
    EmitFinal(crate::stage::DrainReason),
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
        let (jobs, route) = split([5u32, 6, 7, 8, 9].into_iter(), &Shares, 2);
        assert_eq!(route, [0, 0, 0, 1, 1]);
        assert_eq!(jobs, [Some(vec![5, 6, 7]), Some(vec![8, 9])]);
        let (jobs, route) = split([1u32].into_iter(), &Shares, 3);
        assert_eq!(route, [0]);
        assert_eq!(jobs, [Some(vec![1]), None, None]);
    }
}
