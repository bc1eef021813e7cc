//! An observer: sees every entry of another stage's journal (data, error
//! records and control marks) and changes nothing. Run as several
//! instances, each sees its share of the data and error records, in order,
//! and every control mark.

use super::{Output, StageBody, Step};
use crate::event::{Body, Control, Envelope, Payload};
use crate::stage::Observer;
use crate::stage::parallel::Partition;
use crate::supervise::failure::StageFailure;
use crate::supervise::input::{Inputs, Taken};
use crate::supervise::parallel::{Pool, Work};
use crate::supervise::status::StageCounters;
use std::future::Future;
use std::marker::PhantomData;
use std::time::Instant as StdInstant;

pub(crate) struct ObserverBody<T: Payload, X> {
    pub(crate) handler: X,
    pub(crate) inputs: Inputs<T>,
    pub(crate) output: Output<()>,
}

/// How an observer stage shows a chunk of entries to its handler (or
/// handlers).
pub(crate) trait ObserveChunk<T>: Send + 'static {
    /// Shows `entries`, of which `data` are data.
    fn observe_chunk(
        &mut self,
        entries: &[Envelope<T>],
        data: u64,
    ) -> impl Future<Output = Result<(), StageFailure>> + Send;
}

/// An observer run as one instance.
pub(crate) struct OneObserver<X>(pub(crate) X);

impl<T: Payload, X: Observer<T>> ObserveChunk<T> for OneObserver<X> {
    async fn observe_chunk(&mut self, entries: &[Envelope<T>], _: u64) -> Result<(), StageFailure> {
        for entry in entries {
            self.0.observe(entry);
        }
        Ok(())
    }
}

/// An observer run as several instances, each with its own clone of the
/// handler: the data is split by the partition (in contiguous shares, or
/// by key), each error record goes to one instance (by its place in the
/// chunk), and every control mark to every instance.
pub(crate) struct ParallelObserver<X: Observer<T>, T: Payload, P> {
    pool: Pool<ObserverWorker<X, T>>,
    partition: P,
}

impl<X, T, P> ParallelObserver<X, T, P>
where
    T: Payload,
    X: Observer<T>,
{
    pub(crate) fn new(output: &Output<()>, handlers: Vec<X>, partition: P) -> Self {
        ParallelObserver {
            pool: Pool::new(
                output,
                handlers
                    .into_iter()
                    .map(|handler| ObserverWorker(handler, PhantomData))
                    .collect(),
            ),
            partition,
        }
    }
}

impl<T: Payload, X: Observer<T>, P: Partition<T>> ObserveChunk<T> for ParallelObserver<X, T, P> {
    async fn observe_chunk(
        &mut self,
        entries: &[Envelope<T>],
        data: u64,
    ) -> Result<(), StageFailure> {
        let instances = self.pool.instances();
        let data = usize::try_from(data).unwrap_or(usize::MAX);
        let mut jobs: Vec<Vec<Envelope<T>>> = (0..instances).map(|_| Vec::new()).collect();
        let mut nth = 0;
        for (place, entry) in entries.iter().enumerate() {
            let instance = match &entry.body {
                Body::Data(item) => {
                    nth += 1;
                    self.partition.route(item, nth - 1, data, instances)
                }
                Body::Control(_) | Body::Snapshot(_) => {
                    for job in &mut jobs {
                        job.push(entry.clone());
                    }
                    continue;
                }
                Body::Error(_) => place * instances / entries.len().max(1),
            };
            jobs[instance].push(entry.clone());
        }
        let jobs = jobs
            .into_iter()
            .map(|job| (!job.is_empty()).then_some(job))
            .collect();
        self.pool.run(jobs).await.map(drop)
    }
}

/// An instance of a parallel observer.
pub(crate) struct ObserverWorker<X, T>(X, PhantomData<fn(T)>);

impl<T: Payload, X: Observer<T>> Work for ObserverWorker<X, T> {
    type Job = Vec<Envelope<T>>;
    type Reply = ();

    fn inputs(job: &Vec<Envelope<T>>) -> u64 {
        job.iter().filter(|entry| entry.data().is_some()).count() as u64
    }

    async fn run(&mut self, job: Vec<Envelope<T>>) {
        for entry in &job {
            self.0.observe(entry);
        }
    }
}

impl<T: Payload, X: ObserveChunk<T>> StageBody for ObserverBody<T, X> {
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
        self.handler
            .observe_chunk(chunk.entries(), data_count)
            .await?;
        for entry in chunk.entries() {
            match &entry.body {
                Body::Control(Control::Eof) => eof = true,
                Body::Control(Control::Drain) => self.output.stopped = true,
                _ => {}
            }
        }
        self.output.busy_since(started, data_count);
        if self.output.durable.is_some() {
            self.output.flush(0).await?;
        }
        // Counted once how far it has seen is written: a run interrupted
        // after this resumes after the chunk.
        StageCounters::add(&self.output.counters.events_in, data_count);
        Ok(self.inputs.after_chunk(index, eof))
    }

    fn cut_short(&self) -> bool {
        self.output.stopped
    }

    async fn finish(&mut self) -> Result<(), StageFailure> {
        self.output.write_eof().await
    }
}
