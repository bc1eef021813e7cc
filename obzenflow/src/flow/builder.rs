//! The typed builder: stages are added with their handlers and connected by
//! the typed references the builder returns, so a payload type mismatch on an
//! edge does not compile.
//!
//! Building records a plan and has no side effects: no directory, file,
//! thread or task exists until the flow starts. Each stage is kept as a
//! factory that the start calls with what the environment gave (the run
//! directory, whether this is a replay), see `plan`.

use super::FlowError;
use super::handle::{FlowHandle, StageInfo};
use super::plan::{Materials, Pipeline, StageFactory, StartError};
use super::topology::{EdgeRole, Topology, TopologyEdge, TopologyStage, short_type_name};
use crate::event::{Payload, Receipt, StageId};
use crate::journal::{
    DiskJournalOptions, DurableWriter, JournalFailure, JournalOptions, JournalWriter, MemoryJournal,
};
use crate::stage::parallel::{Keyed, Partition, Replicable};
use crate::stage::{EmitPolicy, Join, Observer, Parallel, Sink, Source, Stateful, Transform};
use crate::supervise::{
    Completion, ErrorLane, Inputs, JoinBody, ObserverBody, OneObserver, OneSink, Output,
    Parallel as ParallelHandler, ParallelJoin, ParallelObserver, ParallelSink, Partitioned,
    Resumable, RunMode, Runner, Serial, SerialJoin, Single, SinkBody, SourceBody, StageBody,
    StageCounters, StageKind, StageState, StatefulBody, TransformBody, run_stage,
};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

/// The output of a stage, to connect other stages to.
#[derive(Debug)]
pub struct StageRef<T> {
    index: usize,
    journal: MemoryJournal<T>,
}

impl<T: Payload> Clone for StageRef<T> {
    fn clone(&self) -> Self {
        StageRef {
            index: self.index,
            journal: self.journal.clone(),
        }
    }
}

impl<T: Payload> StageRef<T> {
    /// The stage's journal (its output).
    pub fn journal(&self) -> &MemoryJournal<T> {
        &self.journal
    }
}

/// One or more upstream stages of the same payload type: `&a`, `[&a, &b]`.
pub trait Upstream<T: Payload> {
    /// The stages.
    fn stages(self) -> Vec<StageRef<T>>;
}

impl<T: Payload> Upstream<T> for &StageRef<T> {
    fn stages(self) -> Vec<StageRef<T>> {
        vec![self.clone()]
    }
}

impl<T: Payload, const N: usize> Upstream<T> for [&StageRef<T>; N] {
    fn stages(self) -> Vec<StageRef<T>> {
        self.into_iter().cloned().collect()
    }
}

impl<T: Payload> Upstream<T> for &[&StageRef<T>] {
    fn stages(self) -> Vec<StageRef<T>> {
        self.iter().map(|stage| (*stage).clone()).collect()
    }
}

pub(crate) type StageTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Builds a flow stage by stage.
///
/// ```
/// use obzenflow::flow::FlowBuilder;
/// use obzenflow::stage::{collect, from_iter, map};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let mut flow = FlowBuilder::new("double");
/// let numbers = flow.source("numbers", from_iter(1..=3u32));
/// let doubled = flow.transform("doubled", &numbers, map(|x: u32| x * 2));
/// let (sink, out) = collect();
/// flow.sink("out", &doubled, sink);
/// let report = flow.build().unwrap().run().await.unwrap();
/// assert_eq!(out.snapshot(), [2, 4, 6]);
/// assert_eq!(report.stage("doubled").unwrap().events_out, 3);
/// # });
/// ```
pub struct FlowBuilder {
    name: Arc<str>,
    options: JournalOptions,
    /// Where the run directory goes, once any stage journals durably.
    disk: Option<(PathBuf, DiskJournalOptions)>,
    /// Whether the stages added from now on journal durably.
    durable: bool,
    stages: Vec<StageInfo>,
    factories: Vec<StageFactory>,
    completions: (
        mpsc::UnboundedSender<Completion>,
        mpsc::UnboundedReceiver<Completion>,
    ),
    errors: ErrorLane,
    problems: Vec<String>,
    edges: Vec<TopologyEdge>,
    /// Loop heads, and whether their loop has been closed.
    open_loops: Vec<(String, bool)>,
    /// Every edge's read counter, for the contracts checked at the end.
    contracts: Vec<super::contract::EdgeContract>,
    /// The window of the next stage added, if it differs from the flow's.
    next_capacity: Option<usize>,
    /// The same in bytes.
    next_capacity_bytes: Option<usize>,
    /// When stateful stages journal their state.
    snapshots: super::journals::Snapshots,
}

/// The feedback input of a loop head, to close the loop with
/// [`FlowBuilder::feedback`].
#[derive(Debug)]
pub struct FeedbackPort<I: Payload> {
    head: usize,
    readers: crate::supervise::FeedbackReaders<I>,
}

impl std::fmt::Debug for FlowBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowBuilder")
            .field("name", &self.name)
            .field("stages", &self.stages)
            .finish_non_exhaustive()
    }
}

impl FlowBuilder {
    /// An empty flow named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        FlowBuilder {
            name: Arc::from(name.into()),
            options: JournalOptions::default(),
            disk: None,
            durable: false,
            stages: Vec::new(),
            factories: Vec::new(),
            completions: mpsc::unbounded_channel(),
            errors: ErrorLane::default(),
            problems: Vec::new(),
            edges: Vec::new(),
            open_loops: Vec::new(),
            contracts: Vec::new(),
            next_capacity: None,
            next_capacity_bytes: None,
            snapshots: super::journals::Snapshots::default(),
        }
    }

    /// Where the journals of the stages added after this call live: in memory
    /// ([`memory()`](super::journals::memory)), or also on disk
    /// ([`disk(base)`](super::journals::disk)), in a run directory made
    /// when the flow starts.
    pub fn journals(&mut self, journals: impl Into<super::journals::Journals>) -> &mut Self {
        let journals = journals.into();
        self.options = journals.memory;
        self.snapshots = journals.snapshots;
        self.durable = journals.disk.is_some();
        if journals.disk.is_some() {
            self.disk = journals.disk;
        }
        self
    }

    /// How the journals of the stages added after this call hold their entries.
    pub fn journal_options(&mut self, options: JournalOptions) -> &mut Self {
        self.options = options;
        self
    }

    /// The window (how far its writer may run ahead of its slowest reader)
    /// of the next stage added only; the flow's setting applies to the rest.
    /// `flow!` sets it from a stage's `capacity: n` option.
    pub fn next_stage_capacity(&mut self, entries: usize) -> &mut Self {
        self.next_capacity = Some(entries.max(1));
        self
    }

    /// The window in bytes (see [`JournalOptions::capacity_bytes`]) of the
    /// next stage added only; the flow's setting applies to the rest.
    pub fn next_stage_capacity_bytes(&mut self, bytes: usize) -> &mut Self {
        self.next_capacity_bytes = Some(bytes.max(1));
        self
    }

    /// Adds a source.
    pub fn source<T: Payload>(&mut self, name: &str, handler: impl Source<T>) -> StageRef<T> {
        let expected = handler.expected_count();
        let stage = self.add(name, StageKind::Source, move |output, mode| {
            let mut handler = handler;
            if let Some(resume) = &mode.resume {
                super::resume::seek_source(&mut handler, resume)?;
            }
            Ok(SourceBody::new(
                handler,
                output,
                mode.archived_journal.clone(),
            ))
        });
        self.stages[stage.index].expected = expected;
        stage
    }

    /// Adds a transform reading `inputs` (one stage, or several of the same
    /// type: a fair merge).
    pub fn transform<I: Payload, O: Payload>(
        &mut self,
        name: &str,
        inputs: impl Upstream<I>,
        handler: impl Transform<I, O>,
    ) -> StageRef<O> {
        let inputs = self.connect(name, inputs, EdgeRole::Input);
        let mut middleware = Vec::new();
        handler.instruments(&mut middleware);
        let stage = self.add(name, StageKind::Transform, move |output, mode| {
            let mut inputs = inputs;
            if let Some(resume) = &mode.resume {
                inputs.resume(resume, |up| resume.taken(up), &output.counters)?;
            }
            Ok(TransformBody::new(
                Serial::new(handler),
                inputs,
                output,
                None,
            ))
        });
        self.stages[stage.index].middleware = middleware;
        stage
    }

    /// Adds a transform run as `parallel.instances()` instances, each with
    /// its own clone of `handler`, its inputs spread over them (or split by
    /// key, see [`Parallel::key_by`]). Its output is in input order, as if
    /// it ran as one: see [`stage::parallel`](mod@crate::stage::parallel).
    /// With one instance, it is the plain [`transform`](Self::transform).
    ///
    /// ```
    /// use obzenflow::flow::FlowBuilder;
    /// use obzenflow::stage::{collect, from_iter, map, parallel};
    ///
    /// # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
    /// let mut flow = FlowBuilder::new("squares");
    /// let numbers = flow.source("numbers", from_iter(1..=1000u64));
    /// let squared = flow.transform_parallel("squared", &numbers, map(|n: u64| n * n), parallel(2));
    /// let (sink, out) = collect();
    /// flow.sink("out", &squared, sink);
    /// flow.build().unwrap().run().await.unwrap();
    /// assert_eq!(out.snapshot(), (1..=1000u64).map(|n| n * n).collect::<Vec<_>>());
    /// # });
    /// ```
    pub fn transform_parallel<I: Payload, O: Payload, P: Partition<I>>(
        &mut self,
        name: &str,
        inputs: impl Upstream<I>,
        handler: impl Transform<I, O> + Replicable,
        parallel: Parallel<P>,
    ) -> StageRef<O> {
        if parallel.instances() == 1 {
            // One instance is the plain stage: nothing to split or merge.
            return self.transform(name, inputs, handler);
        }
        let inputs = self.connect(name, inputs, EdgeRole::Input);
        let mut middleware = Vec::new();
        handler.instruments(&mut middleware);
        let instances = self.instances(name, parallel.instances());
        let partition = parallel.partition;
        let stage = self.add(name, StageKind::Transform, move |output, mode| {
            let mut inputs = inputs;
            if let Some(resume) = &mode.resume {
                inputs.resume(resume, |up| resume.taken(up), &output.counters)?;
            }
            let handlers = crate::stage::parallel::replicas(handler, instances);
            let parallel = ParallelHandler::new(&output, handlers, partition);
            Ok(TransformBody::new(parallel, inputs, output, None))
        });
        self.stages[stage.index].middleware = middleware;
        self.stages[stage.index].instances = instances;
        stage
    }

    /// Checks a stage's instance count.
    fn instances(&mut self, name: &str, instances: usize) -> usize {
        if instances == 0 {
            self.problems.push(format!(
                "stage `{name}` runs as `parallel: 0` instances; it needs at least 1"
            ));
        }
        instances.max(1)
    }

    /// Adds a transform that heads a feedback loop: it reads `inputs` and,
    /// once the loop is closed with [`feedback`](Self::feedback), what the end
    /// of the loop sends back. Once `inputs` end, the head sends probes round
    /// the loop; when one comes back with nothing emitted since, the loop is
    /// empty and the head ends. After `max_rounds` rounds the loop is closed
    /// anyway, and what still circulates goes to the error lane.
    ///
    /// The stages from the head to the end of the loop must be transforms
    /// with one input each (`flow!` checks this), so that a probe cannot
    /// overtake data on a parallel path.
    pub fn loop_head<I: Payload, O: Payload>(
        &mut self,
        name: &str,
        inputs: impl Upstream<I>,
        handler: impl Transform<I, O>,
        max_rounds: u32,
    ) -> (StageRef<O>, FeedbackPort<I>) {
        let inputs = self.connect(name, inputs, EdgeRole::Input);
        let port = FeedbackPort {
            head: self.stages.len(),
            readers: Arc::new(Mutex::new(Vec::new())),
        };
        self.open_loops.push((name.to_owned(), false));
        let readers = Arc::clone(&port.readers);
        let mut middleware = Vec::new();
        handler.instruments(&mut middleware);
        let output = self.add(name, StageKind::Transform, move |output, _| {
            Ok(TransformBody::new(
                Serial::new(handler),
                inputs,
                output,
                Some((readers, max_rounds)),
            ))
        });
        self.stages[output.index].middleware = middleware;
        (output, port)
    }

    /// Closes a feedback loop: what `from` writes goes back into the loop's head.
    pub fn feedback<I: Payload>(&mut self, port: &FeedbackPort<I>, from: impl Upstream<I>) {
        let head = Arc::clone(&self.stages[port.head].name);
        for upstream in from.stages() {
            self.edges.push(TopologyEdge {
                from: self.stages[upstream.index].name.to_string(),
                to: head.to_string(),
                payload: short_type_name(std::any::type_name::<I>()),
                role: EdgeRole::Feedback,
            });
            let read = self.contract(upstream.index, port.head);
            match crate::journal::Journal::reader(&upstream.journal, 0) {
                Ok(reader) => port
                    .readers
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((reader, read)),
                Err(error) => self
                    .problems
                    .push(format!("stage `{head}` cannot read its feedback: {error}")),
            }
        }
        for (name, closed) in &mut self.open_loops {
            if **name == *head {
                *closed = true;
            }
        }
    }

    /// Adds a sink reading `inputs`; its output is its delivery receipts.
    pub fn sink<T: Payload>(
        &mut self,
        name: &str,
        inputs: impl Upstream<T>,
        handler: impl Sink<T>,
    ) -> StageRef<Receipt> {
        let inputs = self.connect(name, inputs, EdgeRole::Input);
        self.add(name, StageKind::Sink, move |output, mode| {
            let handler = OneSink(handler);
            let mut body = SinkBody::new(handler, inputs, output, mode.dry_run, mode.run.clone());
            if let Some(resume) = &mode.resume {
                body.resume(resume)?;
            }
            Ok(body)
        })
    }

    /// Adds a sink run as `parallel.instances()` instances, each with its
    /// own clone of `handler` (a connection of its own, say), its inputs
    /// spread over them (or split by key). Each delivery keeps its key
    /// (the event's id), and the receipts are journaled in input order, so
    /// resume and replay treat it as any sink; `flush` and `drain` reach
    /// every instance.
    ///
    /// ```
    /// use obzenflow::flow::FlowBuilder;
    /// use obzenflow::stage::{collect, from_iter, parallel};
    ///
    /// # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
    /// let mut flow = FlowBuilder::new("deliveries");
    /// let numbers = flow.source("numbers", from_iter(0..1000u32));
    /// let (sink, out) = collect();
    /// flow.sink_parallel("out", &numbers, sink, parallel(2));
    /// let report = flow.build().unwrap().run().await.unwrap();
    /// assert_eq!(report.stage("out").unwrap().events_out, 1000);
    /// let mut got = out.snapshot();
    /// got.sort();
    /// assert_eq!(got, (0..1000).collect::<Vec<u32>>());
    /// # });
    /// ```
    pub fn sink_parallel<T: Payload, P: Partition<T>>(
        &mut self,
        name: &str,
        inputs: impl Upstream<T>,
        handler: impl Sink<T> + Replicable,
        parallel: Parallel<P>,
    ) -> StageRef<Receipt> {
        if parallel.instances() == 1 {
            return self.sink(name, inputs, handler);
        }
        let inputs = self.connect(name, inputs, EdgeRole::Input);
        let instances = self.instances(name, parallel.instances());
        let partition = parallel.partition;
        let stage = self.add(name, StageKind::Sink, move |output, mode| {
            let handlers = crate::stage::parallel::replicas(handler, instances);
            let handler = ParallelSink::new(&output, handlers, partition);
            let mut body = SinkBody::new(handler, inputs, output, mode.dry_run, mode.run.clone());
            if let Some(resume) = &mode.resume {
                body.resume(resume)?;
            }
            Ok(body)
        });
        self.stages[stage.index].instances = instances;
        stage
    }

    /// Adds a stateful stage that emits on `policy`.
    pub fn stateful<I: Payload, O: Payload>(
        &mut self,
        name: &str,
        inputs: impl Upstream<I>,
        handler: impl Stateful<I, O>,
        policy: EmitPolicy,
    ) -> StageRef<O> {
        let inputs = self.connect(name, inputs, EdgeRole::Input);
        let snapshots = self.snapshots;
        self.add(name, StageKind::Stateful, move |output, mode| {
            let mut body = StatefulBody::new(Single(handler), policy, inputs, output, snapshots);
            if let Some(resume) = &mode.resume {
                body.resume(resume)?;
            }
            Ok(body)
        })
    }

    /// Adds a stateful stage run as `parallel.instances()` instances, each
    /// with its own clone of the handler and the state of the keys that
    /// [`Parallel::key_by`] sends it. Its emits are each instance's, in
    /// instance order (a handler that emits at the end emits each
    /// instance's groups in turn); an `emit_every(n)` counts the stage's
    /// inputs, as it would run as one.
    ///
    /// ```
    /// use obzenflow::flow::FlowBuilder;
    /// use obzenflow::stage::{StatefulExt, collect, from_iter, group_by, parallel};
    ///
    /// # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
    /// let mut flow = FlowBuilder::new("sums");
    /// let numbers = flow.source("numbers", from_iter(1..=1000u64));
    /// let sums = flow.stateful_parallel(
    ///     "sums",
    ///     &numbers,
    ///     group_by(|n: &u64| n % 3, |sum: &mut u64, n: u64| *sum += n).emit_on_eof(),
    ///     parallel(2).key_by(|n: &u64| n % 3),
    /// );
    /// let (sink, out) = collect();
    /// flow.sink("out", &sums, sink);
    /// flow.build().unwrap().run().await.unwrap();
    /// let mut sums = out.snapshot();
    /// sums.sort();
    /// assert_eq!(sums.iter().map(|(_, sum)| sum).sum::<u64>(), 500_500);
    /// assert_eq!(sums.len(), 3);
    /// # });
    /// ```
    pub fn stateful_parallel<I: Payload, O: Payload, X, K: Keyed<I>>(
        &mut self,
        name: &str,
        inputs: impl Upstream<I>,
        handler: X,
        parallel: Parallel<K>,
    ) -> StageRef<O>
    where
        X: crate::stage::StatefulStage<I, O>,
        X::Handler: Replicable,
    {
        let (handler, policy) = handler.into_parts();
        let inputs = self.connect(name, inputs, EdgeRole::Input);
        let snapshots = self.snapshots;
        let instances = self.instances(name, parallel.instances());
        let key = parallel.partition;
        let stage = self.add(name, StageKind::Stateful, move |output, mode| {
            let handlers = crate::stage::parallel::replicas(handler, instances);
            let partitioned = Partitioned::new(&output, handlers, key);
            let mut body = StatefulBody::new(partitioned, policy, inputs, output, snapshots);
            if let Some(resume) = &mode.resume {
                body.resume(resume)?;
            }
            Ok(body)
        });
        self.stages[stage.index].instances = instances;
        stage
    }

    /// Adds a stateful stage whose emit policy comes with its handler, as in
    /// `group_by(..).emit_on_eof()` (see [`StatefulExt`](crate::stage::StatefulExt)).
    pub fn stateful_with<I: Payload, O: Payload>(
        &mut self,
        name: &str,
        inputs: impl Upstream<I>,
        handler: impl crate::stage::StatefulStage<I, O>,
    ) -> StageRef<O> {
        let (handler, policy) = handler.into_parts();
        self.stateful(name, inputs, handler, policy)
    }

    /// Adds a join: all of `reference` is loaded before `stream` is joined.
    pub fn join<R: Payload, S: Payload, O: Payload>(
        &mut self,
        name: &str,
        reference: &StageRef<R>,
        stream: &StageRef<S>,
        handler: impl Join<R, S, O>,
    ) -> StageRef<O> {
        let reference = self.connect(name, reference, EdgeRole::Reference);
        let stream = self.connect(name, stream, EdgeRole::Stream);
        self.add(name, StageKind::Join, move |output, mode| {
            let mut body = JoinBody::new(handler, SerialJoin, reference, stream, output);
            if let Some(resume) = &mode.resume {
                body.resume(resume)?;
            }
            Ok(body)
        })
    }

    /// Adds a join whose stream side is joined by `parallel.instances()`
    /// instances: the reference is loaded whole (into `handler`, as for
    /// [`join`](Self::join)), then each instance is a clone of the loaded
    /// handler, so each holds the whole reference and no key is needed
    /// (a key keeps each key's stream events in one instance). Its output
    /// is in stream order, as if it ran as one.
    ///
    /// ```
    /// use obzenflow::flow::FlowBuilder;
    /// use obzenflow::stage::{collect, from_iter, inner_join, parallel};
    ///
    /// # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
    /// let mut flow = FlowBuilder::new("named");
    /// let names = flow.source("names", from_iter([(1u32, "one".to_owned()), (2, "two".to_owned())]));
    /// let numbers = flow.source("numbers", from_iter((0..100u32).map(|n| n % 3)));
    /// let named = flow.join_parallel(
    ///     "named",
    ///     &names,
    ///     &numbers,
    ///     inner_join(|r: &(u32, String)| r.0, |n: &u32| *n, |r: &(u32, String), n: u32| format!("{n}:{}", r.1)),
    ///     parallel(2),
    /// );
    /// let (sink, out) = collect();
    /// flow.sink("out", &named, sink);
    /// flow.build().unwrap().run().await.unwrap();
    /// let want: Vec<String> = (0..100u32).map(|n| n % 3).filter(|n| *n > 0)
    ///     .map(|n| format!("{n}:{}", if n == 1 { "one" } else { "two" })).collect();
    /// assert_eq!(out.snapshot(), want);
    /// # });
    /// ```
    pub fn join_parallel<R: Payload, S: Payload, O: Payload, P: Partition<S>>(
        &mut self,
        name: &str,
        reference: &StageRef<R>,
        stream: &StageRef<S>,
        handler: impl Join<R, S, O> + Replicable,
        parallel: Parallel<P>,
    ) -> StageRef<O> {
        if parallel.instances() == 1 {
            return self.join(name, reference, stream, handler);
        }
        let reference = self.connect(name, reference, EdgeRole::Reference);
        let stream = self.connect(name, stream, EdgeRole::Stream);
        let instances = self.instances(name, parallel.instances());
        let joins = ParallelJoin::new(instances, parallel.partition);
        let stage = self.add(name, StageKind::Join, move |output, mode| {
            let mut body = JoinBody::new(handler, joins, reference, stream, output);
            if let Some(resume) = &mode.resume {
                body.resume(resume)?;
            }
            Ok(body)
        });
        self.stages[stage.index].instances = instances;
        stage
    }

    /// Adds an observer of `target`'s journal.
    pub fn observer<T: Payload>(
        &mut self,
        name: &str,
        target: &StageRef<T>,
        handler: impl Observer<T>,
    ) -> StageRef<()> {
        let inputs = self.connect(name, target, EdgeRole::Observed);
        self.add(name, StageKind::Observer, move |output, mode| {
            let mut inputs = inputs;
            if let Some(resume) = &mode.resume {
                inputs.resume(resume, |up| resume.taken(up), &output.counters)?;
            }
            Ok(ObserverBody {
                handler: OneObserver(handler),
                inputs,
                output,
            })
        })
    }

    /// Adds an observer of `target`'s journal run as `parallel.instances()`
    /// instances, each with its own clone of `handler`: each instance sees
    /// its share of the data (in contiguous shares, or every event of a key
    /// with [`Parallel::key_by`]) and of the error records, in journal
    /// order, and every control marker.
    ///
    /// ```
    /// use obzenflow::event::Envelope;
    /// use obzenflow::flow::FlowBuilder;
    /// use obzenflow::stage::{Observer, collect, from_iter, parallel};
    /// use std::sync::{Arc, Mutex};
    ///
    /// /// Adds up what it sees, in a total shared by its copies.
    /// #[derive(Clone)]
    /// struct Total(Arc<Mutex<u64>>);
    ///
    /// impl Observer<u64> for Total {
    ///     fn observe(&mut self, entry: &Envelope<u64>) {
    ///         if let Some(n) = entry.data() {
    ///             *self.0.lock().unwrap() += n;
    ///         }
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
    /// let mut flow = FlowBuilder::new("watched");
    /// let numbers = flow.source("numbers", from_iter(1..=1000u64));
    /// let (sink, _) = collect();
    /// flow.sink("out", &numbers, sink);
    /// let total = Total(Arc::default());
    /// flow.observer_parallel("total", &numbers, total.clone(), parallel(2));
    /// let report = flow.build().unwrap().run().await.unwrap();
    /// assert_eq!(*total.0.lock().unwrap(), 500_500);
    /// assert_eq!(report.stage("total").unwrap().instances.len(), 2);
    /// # });
    /// ```
    pub fn observer_parallel<T: Payload, P: Partition<T>>(
        &mut self,
        name: &str,
        target: &StageRef<T>,
        handler: impl Observer<T> + Replicable,
        parallel: Parallel<P>,
    ) -> StageRef<()> {
        if parallel.instances() == 1 {
            return self.observer(name, target, handler);
        }
        let inputs = self.connect(name, target, EdgeRole::Observed);
        let instances = self.instances(name, parallel.instances());
        let partition = parallel.partition;
        let stage = self.add(name, StageKind::Observer, move |output, mode| {
            let mut inputs = inputs;
            if let Some(resume) = &mode.resume {
                inputs.resume(resume, |up| resume.taken(up), &output.counters)?;
            }
            let handlers = crate::stage::parallel::replicas(handler, instances);
            Ok(ObserverBody {
                handler: ParallelObserver::new(&output, handlers, partition),
                inputs,
                output,
            })
        });
        self.stages[stage.index].instances = instances;
        stage
    }

    /// Checks the flow and returns its handle, still a plan: nothing runs,
    /// and nothing is created on disk, until it starts.
    pub fn build(self) -> Result<FlowHandle, FlowError> {
        let mut problems = self.problems;
        if self.stages.is_empty() {
            problems.push("it has no stages".to_owned());
        }
        if !self.stages.iter().any(|s| s.kind == StageKind::Source) {
            problems.push("it has no source".to_owned());
        }
        for (name, closed) in &self.open_loops {
            if !closed {
                problems.push(format!("the feedback loop of `{name}` is never closed"));
            }
        }
        if !problems.is_empty() {
            return Err(FlowError::Invalid {
                flow: self.name.to_string(),
                problems,
            });
        }
        let topology = Topology {
            flow: self.name.to_string(),
            stages: self
                .stages
                .iter()
                .map(|stage| TopologyStage {
                    name: stage.name.to_string(),
                    kind: stage.kind,
                    instances: stage.instances,
                })
                .collect(),
            edges: self.edges,
        };
        Ok(FlowHandle::new(Pipeline {
            contracts: self.contracts,
            disk: self.disk,
            topology,
            name: self.name,
            stages: self.stages.into(),
            factories: self.factories,
            completions: self.completions.1,
            errors: self.errors,
        }))
    }

    fn connect<T: Payload>(
        &mut self,
        name: &str,
        inputs: impl Upstream<T>,
        role: EdgeRole,
    ) -> Inputs<T> {
        let mut readers = Vec::new();
        let mut stages = Vec::new();
        for upstream in inputs.stages() {
            self.edges.push(TopologyEdge {
                from: self.stages[upstream.index].name.to_string(),
                to: name.to_owned(),
                payload: short_type_name(std::any::type_name::<T>()),
                role,
            });
            let read = self.contract(upstream.index, self.stages.len());
            match crate::journal::Journal::reader(&upstream.journal, 0) {
                Ok(reader) => {
                    readers.push((reader, read));
                    stages.push(upstream.index);
                }
                Err(error) => self
                    .problems
                    .push(format!("stage `{name}` cannot read its input: {error}")),
            }
        }
        if readers.is_empty() {
            self.problems
                .push(format!("stage `{name}` has no input stage"));
        }
        Inputs::of_stages(readers, stages)
    }

    /// The read counter of a new edge `from -> to`, whose contract the flow
    /// checks when it ends.
    fn contract(&mut self, from: usize, to: usize) -> Arc<std::sync::atomic::AtomicU64> {
        let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
        self.contracts.push(super::contract::EdgeContract {
            from,
            to,
            read: Arc::clone(&read),
        });
        read
    }

    /// Plans a stage: its journal, counters and control channel exist from
    /// now on (in memory only); its body, its disk journal and its journal
    /// thread are made by the factory when the flow starts.
    fn add<O: Payload, B: StageBody>(
        &mut self,
        name: &str,
        kind: StageKind,
        body: impl FnOnce(Output<O>, &RunMode) -> Result<B, String> + Send + 'static,
    ) -> StageRef<O> {
        let index = self.stages.len();
        if self.stages.iter().any(|stage| &*stage.name == name) {
            self.problems.push(format!("two stages are named `{name}`"));
        }
        let id = StageId(u32::try_from(index).unwrap_or(u32::MAX));
        let mut options = self.options;
        if let Some(capacity) = self.next_capacity.take() {
            options.capacity = capacity;
        }
        if let Some(bytes) = self.next_capacity_bytes.take() {
            options.capacity_bytes = bytes;
        }
        let journal = MemoryJournal::new(id, options);
        let name: Arc<str> = Arc::from(name);
        let counters = Arc::new(StageCounters::default());
        let (status, status_receiver) = watch::channel(StageState::Created);
        let (control, control_receiver) = mpsc::channel(8);
        let durable = self.durable;
        let written: Arc<std::sync::OnceLock<crate::journal::Written>> = Arc::default();
        let factory: StageFactory = Box::new({
            let written = Arc::clone(&written);
            let (name, counters, journal) =
                (Arc::clone(&name), Arc::clone(&counters), journal.clone());
            let errors = self.errors.clone();
            let completions: mpsc::UnboundedSender<Completion> = self.completions.0.clone();
            move |materials: &mut Materials<'_>| {
                let mut resumed = None;
                let durable = match (&mut materials.run, durable) {
                    (Some(run), true) => {
                        let mut facts = super::resume::JournalFacts::default();
                        let disk = run
                            .stage_journal(index, &name, |record| facts.visit(record))
                            .map_err(|error| StartError::StageJournal {
                                stage: name.to_string(),
                                failure: JournalFailure::from(&error),
                            })?;
                        if let Some(plan) = materials.resume.as_deref_mut() {
                            // The live journal continues the archived one.
                            journal.start_at(facts.records);
                            resumed = Some(plan.reopened(index, facts));
                        }
                        let writer = DurableWriter::start(
                            &name,
                            disk,
                            journal.clone(),
                            options.capacity,
                            options.capacity_bytes,
                        )
                        .map_err(|error| StartError::JournalThread {
                            stage: name.to_string(),
                            failure: JournalFailure {
                                path: None,
                                offset: None,
                                kind: error.kind(),
                                message: format!(
                                    "cannot spawn the thread `journal {name}`: {error}"
                                ),
                            },
                        })?;
                        let _ = written.set(writer.written());
                        Some(writer)
                    }
                    _ => None,
                };
                if let Some(resumed) = &resumed {
                    // The counters (and the contracts checked with them)
                    // cover the whole run, the interrupted part included.
                    let own = &resumed.own;
                    StageCounters::add(&counters.events_out, own.data);
                    StageCounters::add(&counters.errors, own.errors.len() as u64);
                    StageCounters::add(&counters.failed_inputs, own.failed_inputs);
                    for record in &own.errors {
                        errors.push(record.clone());
                    }
                }
                let ended = resumed.as_ref().is_some_and(|resumed| resumed.own.ended);
                materials.mode.resume = resumed;
                let output = Output {
                    name: Arc::clone(&name),
                    counters: Arc::clone(&counters),
                    writer: JournalWriter::new(journal, id),
                    durable,
                    errors,
                    replaying: materials.mode.replaying,
                    stopped: false,
                    marks_consumed: !matches!(kind, StageKind::Source | StageKind::Stateful),
                };
                let body = body(output, &materials.mode)
                    .map_err(|reason| super::resume::refused(&name, reason))?;
                let runner = Runner {
                    index,
                    name,
                    // A stage that had finished before the run was
                    // interrupted stays finished.
                    body: if ended {
                        Resumable::Ended
                    } else {
                        Resumable::Live(body)
                    },
                    counters,
                    status,
                    completions,
                };
                let task: StageTask = Box::pin(run_stage(runner, control_receiver));
                Ok(task)
            }
        });
        self.factories.push(factory);
        self.stages.push(StageInfo {
            name,
            kind,
            counters,
            status: status_receiver,
            control,
            capacity: options.capacity,
            capacity_bytes: options.capacity_bytes,
            durable,
            written,
            describe: super::replay::describe_body::<O>,
            expected: None,
            middleware: Vec::new(),
            instances: 1,
        });
        StageRef { index, journal }
    }
}
