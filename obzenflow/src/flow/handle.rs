//! The running flow: the pipeline supervisor (its own `fsm!` machine), the
//! [`FlowHandle`] a user holds to start, run and inspect a flow, and the
//! [`FlowControl`] any task or thread can hold to stop, cancel or abort it
//! and to watch its state.
//!
//! The supervisor runs as its own task and publishes the flow's state on a
//! watch and its final report, once, on another; handles and controls only
//! send commands and read those watches, so dropping a `wait()` loses
//! nothing and any number of them can wait for the same end.

use super::FlowError;
use super::plan::{FlowPlan, Pipeline, ReplayPlan, StageTask};
use super::report::FlowReport;
use super::run::{RunDir, SystemEvent};
use crate::event::ErrorRecord;
use crate::fsm::{Driver, EventVariant, FsmAction, StateMachine, StateVariant, Transition};
use crate::journal::DiskJournal;
use crate::supervise::{
    Completion, ErrorLane, StageCommand, StageCounters, StageFailure, StageKind, StageReport,
    StageState, catch_panic,
};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

/// Where a flow is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, StateVariant)]
pub enum FlowState {
    /// Built, not started.
    Created,
    /// Its stages are running.
    Running,
    /// Asked to stop: sources have stopped, the rest drains.
    Stopping,
    /// Every stage drained after its inputs ended.
    Completed,
    /// Stopped on request before its input ended, after draining what was
    /// in flight. (A stop that comes after every input ended stops nothing:
    /// the flow completes.)
    Stopped,
    /// Cancelled on request (or a graceful stop ran out of time).
    Cancelled,
    /// A stage failed (or had not drained when a graceful stop ran out of
    /// time); the other stages were cancelled.
    Failed {
        /// The stage that failed.
        stage: String,
        /// Why.
        failure: StageFailure,
    },
    /// Aborted on request.
    Aborted {
        /// The reason given.
        reason: String,
    },
}

impl FlowState {
    /// Whether the flow has ended.
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self,
            FlowState::Created | FlowState::Running | FlowState::Stopping
        )
    }
}

impl fmt::Display for FlowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowState::Failed { stage, failure } => {
                write!(f, "failed in stage `{stage}`: {failure}")
            }
            FlowState::Aborted { reason } => write!(f, "aborted: {reason}"),
            other => f.write_str(&other.variant_name().to_lowercase()),
        }
    }
}

/// What a stage is, for reports and handles.
#[derive(Debug)]
pub(crate) struct StageInfo {
    pub(crate) name: Arc<str>,
    pub(crate) kind: StageKind,
    pub(crate) counters: Arc<StageCounters>,
    pub(crate) status: watch::Receiver<StageState>,
    /// Commands to the stage's supervisor.
    pub(crate) control: mpsc::Sender<StageCommand>,
    /// Its journal's window, in entries and in bytes.
    pub(crate) capacity: usize,
    pub(crate) capacity_bytes: usize,
    /// Whether its journal is also written to disk.
    pub(crate) durable: bool,
    /// How many records its disk journal holds, once it has one.
    pub(crate) written: Arc<std::sync::OnceLock<crate::journal::Written>>,
    /// Decodes a stored body of this stage's output type, for showing differences.
    pub(crate) describe: fn(&[u8]) -> String,
    /// How many events a source said it will produce.
    pub(crate) expected: Option<u64>,
    /// The figures of the middleware around a transform's handler.
    pub(crate) middleware: Vec<crate::stage::Instrument>,
    /// How many instances it runs as (`parallel: n`).
    pub(crate) instances: usize,
}

impl StageInfo {
    fn report(&self) -> StageReport {
        let counters = &self.counters;
        StageReport {
            name: self.name.to_string(),
            kind: self.kind,
            state: self.status.borrow().clone(),
            events_in: StageCounters::get(&counters.events_in),
            events_out: StageCounters::get(&counters.events_out),
            errors: StageCounters::get(&counters.errors),
            busy: Duration::from_nanos(StageCounters::get(&counters.busy_nanos)),
            wakeups: StageCounters::get(&counters.wakeups),
            processing: counters.processing.percentiles(),
            middleware: self.middleware.iter().map(|m| m.report()).collect(),
            possible_duplicates: StageCounters::get(&counters.possible_duplicates),
            instances: counters
                .instances
                .get()
                .map(|instances| {
                    instances
                        .iter()
                        .map(|instance| crate::supervise::InstanceReport {
                            events: StageCounters::get(&instance.events),
                            busy: Duration::from_nanos(StageCounters::get(&instance.busy_nanos)),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// What a control may ask of a running flow.
#[derive(Debug)]
enum FlowCommand {
    Stop { timeout: Duration },
    Cancel,
    Abort(String),
}

#[derive(Clone, Debug, EventVariant)]
enum FlowEvent {
    Start,
    Stop,
    StageFailed {
        stage: String,
        failure: StageFailure,
    },
    /// Every stage drained; `cut_short` if a stop cut some input short.
    AllDone {
        cut_short: bool,
    },
    Cancel,
    Abort(String),
}

#[derive(Debug)]
enum FlowAction {
    StartStages,
    StopSources,
    CancelStages,
}

/// The pipeline supervisor's context.
struct Supervisor {
    name: Arc<str>,
    stages: Arc<[StageInfo]>,
    tasks: Vec<StageTask>,
    running: JoinSet<()>,
    /// Each stage's final state, once it reported one.
    finals: Vec<Option<StageState>>,
    state: watch::Sender<FlowState>,
    system: SystemLog,
    /// The sources owe no declared count: they replay an archive of a run
    /// that never ended.
    sources_excused: bool,
}

impl FsmAction<Supervisor> for FlowAction {
    /// The stage whose control channel was closed.
    type Error = String;

    async fn execute(&self, supervisor: &mut Supervisor) -> Result<(), String> {
        match self {
            FlowAction::StartStages => {
                for task in supervisor.tasks.drain(..) {
                    supervisor.running.spawn(task);
                }
                for stage in supervisor.stages.iter() {
                    if stage.control.send(StageCommand::Start).await.is_err() {
                        return Err(stage.name.to_string());
                    }
                }
            }
            FlowAction::StopSources => {
                for stage in supervisor.stages.iter() {
                    if stage.kind == StageKind::Source {
                        // A source that already finished has nothing to stop.
                        let _ = stage.control.send(StageCommand::Stop).await;
                    }
                }
            }
            FlowAction::CancelStages => supervisor.running.abort_all(),
        }
        Ok(())
    }
}

type FlowMachine = StateMachine<FlowState, FlowEvent, Supervisor, FlowAction>;

fn flow_machine() -> FlowMachine {
    crate::fsm! {
        state: FlowState; event: FlowEvent; context: Supervisor; action: FlowAction;
        initial: FlowState::Created;

        state FlowState::Created {
            on FlowEvent::Start => |_, _, _| Transition::to(FlowState::Running).with(FlowAction::StartStages);
        }
        state FlowState::Running {
            on FlowEvent::Stop => |_, _, _| Transition::to(FlowState::Stopping).with(FlowAction::StopSources);
            on FlowEvent::AllDone { .. } => |_, _, _| Transition::to(FlowState::Completed);
        }
        state FlowState::Stopping {
            // A stop that came after every input had ended stopped nothing.
            on FlowEvent::AllDone { cut_short } => |_, _, _| {
                Transition::to(if *cut_short { FlowState::Stopped } else { FlowState::Completed })
            };
            ignore FlowEvent::Stop;
        }
        state FlowState::Completed | FlowState::Stopped | FlowState::Cancelled
            | FlowState::Failed { .. } | FlowState::Aborted { .. } {
            ignore _;
        }
        state _ {
            on FlowEvent::StageFailed { stage, failure } => |_, _, _| {
                Transition::to(FlowState::Failed { stage: stage.clone(), failure: failure.clone() })
                    .with(FlowAction::CancelStages)
            };
            on FlowEvent::Cancel => |_, _, _| Transition::to(FlowState::Cancelled).with(FlowAction::CancelStages);
            on FlowEvent::Abort(reason) => |_, _, _| {
                Transition::to(FlowState::Aborted { reason: reason.clone() }).with(FlowAction::CancelStages)
            };
            ignore FlowEvent::Stop | FlowEvent::AllDone { .. };
        }
    }
}

/// Publishes the flow's new state and records it in the system journal.
fn announce(state: &FlowState, supervisor: &mut Supervisor) {
    supervisor.state.send_replace(state.clone());
    supervisor.system.record(SystemEvent::Flow(state.clone()));
}

/// A graceful stop in progress: when it runs out, and how long it was given.
#[derive(Clone, Copy)]
struct StopDeadline {
    at: Instant,
    timeout: Duration,
}

/// Runs the pipeline supervisor until the flow and every stage task has ended.
async fn supervise(
    mut supervisor: Supervisor,
    mut completions: mpsc::UnboundedReceiver<Completion>,
    contracts: Vec<super::contract::EdgeContract>,
    errors: ErrorLane,
    mut commands: mpsc::UnboundedReceiver<FlowCommand>,
) -> FlowReport {
    let name = Arc::clone(&supervisor.name);
    let stages = Arc::clone(&supervisor.stages);
    let mut machine = flow_machine();
    let mut driver = Driver::dropping_unhandled();
    let mut stop: Option<StopDeadline> = None;
    let mut cut_short = false;
    let mut commands_open = true;
    let mut event = Some(FlowEvent::Start);
    tracing::info!(flow = %name, stages = stages.len(), "flow starting");
    loop {
        if let Some(next) = event.take() {
            driver
                .step(&mut machine, &mut supervisor, next, announce, |stage| {
                    FlowEvent::StageFailed {
                        stage,
                        failure: StageFailure::ControlClosed,
                    }
                })
                .await;
        }
        if machine.state().is_terminal() && supervisor.running.is_empty() {
            break;
        }
        event = tokio::select! {
            command = commands.recv(), if commands_open => match command {
                Some(FlowCommand::Stop { timeout }) => {
                    let at = Instant::now() + timeout;
                    if stop.is_none_or(|current| at < current.at) {
                        stop = Some(StopDeadline { at, timeout });
                    }
                    Some(FlowEvent::Stop)
                }
                Some(FlowCommand::Cancel) => Some(FlowEvent::Cancel),
                Some(FlowCommand::Abort(reason)) => Some(FlowEvent::Abort(reason)),
                // Every handle and control is gone: the flow runs to its end.
                None => {
                    commands_open = false;
                    None
                }
            },
            Some(completion) = completions.recv() => {
                let failed = completion.failure().cloned();
                cut_short |= completion.cut_short;
                supervisor.system.record(SystemEvent::StageEnded {
                    stage: stages[completion.stage].name.to_string(),
                    state: completion.state.clone(),
                });
                supervisor.finals[completion.stage] = Some(completion.state);
                match failed {
                    Some(failure) => Some(FlowEvent::StageFailed {
                        stage: stages[completion.stage].name.to_string(),
                        failure,
                    }),
                    None if supervisor.finals.iter().all(Option::is_some) => {
                        // Every stage drained: before the flow counts as
                        // complete, what was written must have been read.
                        let excused = cut_short || supervisor.sources_excused;
                        match super::contract::check(&stages, &contracts, excused) {
                            Some((stage, violation)) => Some(FlowEvent::StageFailed {
                                stage,
                                failure: StageFailure::Contract(violation),
                            }),
                            None => Some(FlowEvent::AllDone { cut_short }),
                        }
                    }
                    None => None,
                }
            },
            Some(joined) = supervisor.running.join_next() => match joined {
                // Panics inside a stage are caught by its supervisor; this is
                // the backstop for one that escapes it.
                Err(error) if error.is_panic() => Some(FlowEvent::StageFailed {
                    stage: "(unknown)".to_owned(),
                    failure: StageFailure::Runtime {
                        reason: format!(
                            "a stage task panicked: {}",
                            crate::supervise::panic_message(error.into_panic().as_ref())
                        ),
                    },
                }),
                _ => None,
            },
            () = sleep_until(stop.map_or_else(Instant::now, |stop| stop.at)), if stop.is_some()
                && !machine.state().is_terminal() => {
                let timeout = stop.take().map_or(Duration::ZERO, |stop| stop.timeout);
                // Blame the first stage that had not drained.
                let stage = stages
                    .iter()
                    .zip(&supervisor.finals)
                    .find(|(_, final_state)| final_state.is_none())
                    .map_or("(flow supervisor)", |(stage, _)| &*stage.name);
                tracing::warn!(flow = %name, stage, "graceful stop timed out; cancelling");
                Some(FlowEvent::StageFailed {
                    stage: stage.to_owned(),
                    failure: StageFailure::StopTimedOut { timeout },
                })
            },
            // Nothing left to wait for, yet the flow has not ended: fail it
            // rather than wait forever.
            else => Some(FlowEvent::StageFailed {
                stage: "(flow supervisor)".to_owned(),
                failure: StageFailure::Runtime {
                    reason: "every stage task ended without the flow reaching an end state".to_owned(),
                },
            }),
        };
    }
    tracing::info!(flow = %name, state = %machine.state(), "flow ended");
    let final_state = machine.state().clone();
    let stage_reports = stages
        .iter()
        .zip(&supervisor.finals)
        .map(|(stage, final_state)| {
            let mut report = stage.report();
            report.state = match final_state {
                Some(state) => state.clone(),
                None if report.state.is_terminal() => report.state,
                None => StageState::Cancelled,
            };
            report
        })
        .collect();
    let system_records = supervisor.system.next_seq;
    let run_dir = supervisor.system.run.as_mut().map(|(dir, system)| {
        // Every stage task has ended, and with it its journal thread: what
        // each wrote is all its journal will ever hold.
        let records = stages
            .iter()
            .map(|stage| {
                stage
                    .written
                    .get()
                    .map_or(0, crate::journal::Written::records)
            })
            .collect();
        let finish = || dir.finish(system, &final_state, records, system_records);
        if let Err(error) = crate::supervise::blocking(finish) {
            tracing::error!(flow = %name, %error, "cannot record the run's end in its manifest");
        }
        dir.path.clone()
    });
    FlowReport {
        flow: name.to_string(),
        state: final_state,
        stages: stage_reports,
        errors: errors.records(),
        run_dir,
    }
}

/// A run's directory and its system journal, for flows with disk journals,
/// and the lifecycle events appended to that journal.
struct SystemLog {
    run: Option<(RunDir, DiskJournal<SystemEvent>)>,
    next_seq: u64,
}

impl SystemLog {
    fn record(&mut self, event: SystemEvent) {
        let Some((_, journal)) = &mut self.run else {
            return;
        };
        let envelope = crate::event::Envelope {
            id: crate::event::EventId {
                stage: crate::event::StageId(u32::MAX),
                seq: self.next_seq,
            },
            parents: crate::event::Parents::None,
            timestamp_micros: crate::event::now_micros(),
            body: crate::event::Body::Data(event),
        };
        match crate::supervise::blocking(|| journal.append(std::slice::from_ref(&envelope))) {
            Ok(()) => self.next_seq += 1,
            Err(error) => tracing::error!(%error, "cannot write the run's system journal"),
        }
    }
}

/// How a flow ended, as every handle and control sees it.
type Outcome = Option<Result<FlowReport, FlowError>>;

/// Steers a flow from any task or thread: stop it gracefully, cancel or
/// abort it, watch its state, wait for its end. Cheap to clone; every clone
/// steers the same flow, and any number can wait for its end.
///
/// What a control asks before the flow starts takes effect when it starts
/// (a stop asked for first stops it at once). If the flow is dropped without
/// ever starting, waiting controls get [`FlowError::NotStarted`].
///
/// ```
/// use obzenflow::flow::{FlowBuilder, FlowState};
/// use obzenflow::stage::{collect, from_receiver};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let (send, receive) = tokio::sync::mpsc::channel::<u32>(8);
/// let mut flow = FlowBuilder::new("endless");
/// let numbers = flow.source("numbers", from_receiver(receive));
/// flow.sink("out", &numbers, collect().0);
/// let mut flow = flow.build().unwrap();
/// let control = flow.control();
/// flow.start().unwrap();
/// // From another task: stop gracefully, cancelling what is left after a second.
/// let stopper = tokio::spawn(async move { control.stop_graceful(Duration::from_secs(1)).await });
/// let report = flow.wait().await.unwrap();
/// assert_eq!(report.state, FlowState::Stopped);
/// assert_eq!(stopper.await.unwrap().unwrap(), report);
/// # drop(send);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct FlowControl {
    name: Arc<str>,
    commands: mpsc::UnboundedSender<FlowCommand>,
    state: watch::Receiver<FlowState>,
    outcome: watch::Receiver<Outcome>,
}

impl FlowControl {
    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The flow's state now.
    pub fn state(&self) -> FlowState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every change of the flow's state.
    pub fn watch(&self) -> watch::Receiver<FlowState> {
        self.state.clone()
    }

    /// Whether the flow has started and not yet ended.
    pub fn is_running(&self) -> bool {
        matches!(
            *self.state.borrow(),
            FlowState::Running | FlowState::Stopping
        )
    }

    /// Waits for the flow to end and returns its report: an error if it
    /// failed, was aborted, could not start, or was dropped without
    /// starting. Cancel-safe: dropping the future changes nothing, and
    /// every call returns the same outcome.
    pub async fn wait(&self) -> Result<FlowReport, FlowError> {
        let mut outcome = self.outcome.clone();
        match outcome.wait_for(Option::is_some).await {
            Ok(ended) => ended.clone().unwrap_or_else(|| Err(self.not_started())),
            // The flow was dropped before it started (or its runtime shut
            // down under it, which drops its supervisor without an end).
            Err(_) => Err(self.not_started()),
        }
    }

    fn not_started(&self) -> FlowError {
        FlowError::NotStarted {
            flow: self.name.to_string(),
        }
    }

    /// The flow's outcome, if it has ended.
    fn ended(&self) -> Option<Result<FlowReport, FlowError>> {
        self.outcome.borrow().clone()
    }

    fn send(&self, command: FlowCommand) {
        // Once the flow has ended nothing listens; its outcome says how it ended.
        let _ = self.commands.send(command);
    }

    /// Asks the flow to stop gracefully without waiting: the sources stop,
    /// the rest drains what is in flight, and what still runs when `timeout`
    /// passes is cancelled (the flow then fails with
    /// [`StageFailure::StopTimedOut`], naming a stage that had not drained).
    pub fn request_stop(&self, timeout: Duration) {
        self.send(FlowCommand::Stop { timeout });
    }

    /// Stops the flow gracefully (see [`request_stop`](Self::request_stop))
    /// and returns its report. Stopping a flow that has ended returns how it
    /// ended.
    pub async fn stop_graceful(&self, timeout: Duration) -> Result<FlowReport, FlowError> {
        self.request_stop(timeout);
        self.wait().await
    }

    /// Asks the flow to cancel every stage now, without waiting.
    pub fn request_cancel(&self) {
        self.send(FlowCommand::Cancel);
    }

    /// Cancels every stage now and returns the report.
    pub async fn cancel(&self) -> Result<FlowReport, FlowError> {
        self.request_cancel();
        self.wait().await
    }

    /// Ends the flow now as aborted, for `reason`, and returns the outcome
    /// ([`FlowError::Aborted`] unless the flow had already ended).
    pub async fn abort(&self, reason: impl Into<String>) -> Result<FlowReport, FlowError> {
        self.send(FlowCommand::Abort(reason.into()));
        self.wait().await
    }
}

/// What a flow needs to start, held until it does.
struct Pending {
    pipeline: Pipeline,
    commands: mpsc::UnboundedReceiver<FlowCommand>,
    state: watch::Sender<FlowState>,
    outcome: watch::Sender<Outcome>,
}

/// A flow: a plan until it starts, then the running flow's handle.
///
/// [`start`](Self::start) materializes the plan (run directory, journals,
/// threads, tasks) and returns a typed error for anything the environment
/// refuses; [`run`](Self::run) starts it and waits for its end;
/// [`control`](Self::control) gives a [`FlowControl`] to steer it from
/// anywhere. Dropping the handle leaves a started flow running to its end.
pub struct FlowHandle {
    name: Arc<str>,
    /// Every edge's read counter (shared with the supervisor), for metrics.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) edges: Arc<[super::contract::EdgeContract]>,
    topology: Arc<super::topology::Topology>,
    pub(crate) stages: Arc<[StageInfo]>,
    errors: ErrorLane,
    pending: Option<Pending>,
    /// Why the flow cannot start, once that is known: starting again
    /// answers the same.
    refused: Option<FlowError>,
    control: FlowControl,
    /// Where the run directory will go, for the plan.
    run_base: Option<std::path::PathBuf>,
    /// The archive this run replays, if it does.
    replay: Option<ReplayPlan>,
    /// The interrupted run this run resumes, if it does.
    resume: Option<super::resume::ResumePlan>,
}

impl fmt::Debug for FlowHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowHandle")
            .field("name", &self.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl FlowHandle {
    pub(crate) fn new(pipeline: Pipeline) -> Self {
        let (state_sender, state) = watch::channel(FlowState::Created);
        let (outcome_sender, outcome) = watch::channel(None);
        let (commands_sender, commands) = mpsc::unbounded_channel();
        FlowHandle {
            edges: pipeline.contracts.clone().into(),
            topology: Arc::new(pipeline.topology.clone()),
            name: Arc::clone(&pipeline.name),
            stages: Arc::clone(&pipeline.stages),
            errors: pipeline.errors.clone(),
            run_base: pipeline.disk.as_ref().map(|(base, _)| base.clone()),
            control: FlowControl {
                name: Arc::clone(&pipeline.name),
                commands: commands_sender,
                state,
                outcome,
            },
            pending: Some(Pending {
                pipeline,
                commands,
                state: state_sender,
                outcome: outcome_sender,
            }),
            refused: None,
            replay: None,
            resume: None,
        }
    }

    /// A handle whose every start answers `error` (what `flow!` gives for a
    /// flow the builder refused, which its compile-time checks rule out).
    pub(crate) fn refused(error: FlowError) -> Self {
        let name: Arc<str> = Arc::from(match &error {
            FlowError::Invalid { flow, .. } => flow.as_str(),
            _ => "(refused)",
        });
        let mut handle = FlowHandle::new(Pipeline {
            contracts: Vec::new(),
            disk: None,
            topology: super::topology::Topology {
                flow: name.to_string(),
                stages: Vec::new(),
                edges: Vec::new(),
            },
            name,
            stages: Arc::new([]),
            factories: Vec::new(),
            completions: mpsc::unbounded_channel().1,
            errors: ErrorLane::default(),
        });
        handle.refused = Some(error);
        handle
    }

    /// A control to steer this flow from any task or thread.
    pub fn control(&self) -> FlowControl {
        self.control.clone()
    }

    /// What starting the flow will make: its stages, edges and journals.
    pub fn plan(&self) -> FlowPlan {
        FlowPlan::new(
            &self.topology,
            &self.stages,
            self.run_base.as_deref(),
            self.replay.as_ref().map(|replay| replay.archive.as_path()),
            &self.name,
        )
    }

    /// Makes this run a replay of the archived run in `archive`: sources read
    /// their archived journals instead of calling their handlers, every other
    /// stage runs again, and sinks skip their effects unless
    /// `options.repeat_sink_effects`. Refuses an incomplete archive (unless
    /// `options.allow_incomplete`), an archive of another topology, and one
    /// written by a newer format. Call before the flow starts.
    pub fn replay_from(
        &mut self,
        archive: impl AsRef<std::path::Path>,
        options: super::replay::ReplayOptions,
    ) -> Result<(), super::replay::ReplayError> {
        if self.pending.is_none() {
            return Err(super::replay::ReplayError::AlreadyStarted);
        }
        let archive = archive.as_ref();
        let manifest = super::replay::check_archive(archive, &self.topology, options)?;
        self.replay = Some(ReplayPlan {
            archive: archive.to_owned(),
            incomplete: manifest.ended_at.is_none(),
            stage_journals: manifest.stage_journals,
            repeat_sink_effects: options.repeat_sink_effects,
        });
        Ok(())
    }

    /// Makes this run continue the interrupted run in `run_dir` (which must
    /// be of this flow, with disk journals for every stage, and must not
    /// have ended), appending to its journals, so that its final result is
    /// the one the run would have given uninterrupted: each source goes on
    /// after the last position it journaled, each stage after the last
    /// input its journal shows taken (a stateful stage from its last
    /// snapshot), and each sink after its last receipt (see
    /// [`Delivery`](crate::stage::Delivery) for what it delivers again).
    /// The manifest records the resumption. Call before the flow starts;
    /// what a stage's resume refuses (a source that cannot seek) is then
    /// [`StartError::Resume`](super::StartError::Resume).
    pub fn resume_from(
        &mut self,
        run_dir: impl AsRef<std::path::Path>,
        options: super::resume::ResumeOptions,
    ) -> Result<(), super::resume::ResumeError> {
        let _ = options;
        if self.pending.is_none() {
            return Err(super::resume::ResumeError::AlreadyStarted);
        }
        let archive = run_dir.as_ref();
        let durable: Vec<(String, bool)> = self
            .stages
            .iter()
            .map(|stage| (stage.name.to_string(), stage.durable))
            .collect();
        let manifest = super::resume::check(archive, &self.topology, &durable)?;
        let mut upstreams = vec![Vec::new(); self.stages.len()];
        for edge in self.edges.iter() {
            if let Some(list) = upstreams.get_mut(edge.to)
                && !list.contains(&edge.from)
            {
                list.push(edge.from);
            }
        }
        self.resume = Some(super::resume::ResumePlan {
            archive: archive.to_owned(),
            stage_journals: manifest.stage_journals.clone(),
            facts: vec![None; self.stages.len()],
            manifest,
            upstreams,
        });
        Ok(())
    }

    /// Writes every journal of the archived run in `run` (which must be of
    /// this flow) as JSON lines to `out`, decoding each stage's records with
    /// its payload type. Returns how many lines it wrote. Creates nothing.
    pub fn inspect(
        &self,
        run: impl AsRef<std::path::Path>,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, super::replay::ReplayError> {
        let run = run.as_ref();
        let options = super::replay::ReplayOptions {
            allow_incomplete: true,
            ..Default::default()
        };
        super::replay::check_archive(run, &self.topology, options)?;
        super::replay::inspect(run, &self.stages, out)
    }

    /// The error lane of `report` (this flow's), with the input of each
    /// record that names its input event but kept no copy filled in from
    /// the run's journals (for a run with disk journals; with memory
    /// journals the records are as they were): the input as the payload it
    /// was, as JSON text, ready to be mended and driven again.
    pub fn error_lane(
        &self,
        report: &FlowReport,
    ) -> Result<Vec<crate::event::ErrorRecord>, super::replay::ReplayError> {
        let mut records = report.errors.clone();
        if let Some(run) = &report.run_dir {
            super::replay::fill_inputs(run, &self.stages, &mut records)?;
        }
        Ok(records)
    }

    /// After a replay has run: compares every stage's output with the
    /// archive's. Needs the replay's journals on disk (`journals: disk(..)`).
    pub fn verify_replay(&self) -> Result<super::replay::Verification, super::replay::ReplayError> {
        let archive = self
            .replay
            .as_ref()
            .map(|replay| replay.archive.as_path())
            .ok_or(super::replay::ReplayError::NoReplayRun)?;
        let report = match self.control.ended() {
            Some(Ok(report)) => report,
            _ => return Err(super::replay::ReplayError::NoReplayRun),
        };
        let replay = report
            .run_dir
            .as_deref()
            .ok_or(super::replay::ReplayError::NoReplayRun)?;
        super::replay::verify(archive, replay, &self.stages)
    }

    /// What the metrics, the HTTP endpoints and the health check read.
    #[cfg(feature = "metrics")]
    pub(crate) fn view(&self) -> super::metrics::FlowView {
        super::metrics::FlowView {
            name: Arc::clone(&self.name),
            stages: Arc::clone(&self.stages),
            edges: Arc::clone(&self.edges),
            topology: Arc::clone(&self.topology),
            state: self.control.watch(),
        }
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The flow's stages and edges, with Mermaid, DOT and JSON renderings.
    pub fn topology(&self) -> &super::topology::Topology {
        &self.topology
    }

    /// Materializes the flow (its run directory, disk journals and journal
    /// threads, with disk journals) and starts its stages. Must be called
    /// inside a tokio runtime. Anything the environment refuses is
    /// [`FlowError::CannotStart`], naming the path and the cause, and leaves
    /// nothing behind; a flow starts once, so a second call is
    /// [`FlowError::AlreadyStarted`] (or the same refusal again).
    pub fn start(&mut self) -> Result<(), FlowError> {
        if let Some(refused) = &self.refused {
            return Err(refused.clone());
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(FlowError::NoRuntime {
                flow: self.name.to_string(),
            });
        }
        let Some(pending) = self.pending.take() else {
            return Err(FlowError::AlreadyStarted {
                flow: self.name.to_string(),
            });
        };
        let Pending {
            pipeline,
            commands,
            state,
            outcome,
        } = pending;
        let Pipeline {
            contracts,
            disk,
            topology,
            name,
            stages,
            factories,
            completions,
            errors,
        } = pipeline;
        let materialized = super::plan::materialize(
            &name,
            disk,
            &topology,
            &stages,
            factories,
            self.replay.as_ref(),
            self.resume.take(),
        );
        let materialized = match materialized {
            Ok(materialized) => materialized,
            Err(error) => {
                let error = FlowError::CannotStart {
                    flow: name.to_string(),
                    error: Box::new(error),
                };
                outcome.send_replace(Some(Err(error.clone())));
                self.refused = Some(error.clone());
                return Err(error);
            }
        };
        let supervisor = Supervisor {
            name: Arc::clone(&name),
            finals: vec![None; stages.len()],
            stages: Arc::clone(&stages),
            tasks: materialized.tasks,
            running: JoinSet::new(),
            state,
            system: SystemLog {
                next_seq: materialized
                    .run
                    .as_ref()
                    .map_or(0, |(_, journal)| journal.next_seq()),
                run: materialized.run,
            },
            sources_excused: self.replay.as_ref().is_some_and(|replay| replay.incomplete),
        };
        tokio::spawn(async move {
            let ended = catch_panic(supervise(
                supervisor,
                completions,
                contracts,
                errors.clone(),
                commands,
            ))
            .await
            .unwrap_or_else(|message| FlowReport {
                flow: name.to_string(),
                state: FlowState::Failed {
                    stage: "(flow supervisor)".to_owned(),
                    failure: StageFailure::Runtime {
                        reason: format!("the flow supervisor panicked: {message}"),
                    },
                },
                stages: stages.iter().map(StageInfo::report).collect(),
                errors: errors.records(),
                run_dir: None,
            });
            outcome.send_replace(Some(ended.into_result()));
        });
        Ok(())
    }

    /// Runs the flow to its end and returns its report; an error if it
    /// could not start, failed or was aborted, or if it was already started.
    pub async fn run(&mut self) -> Result<FlowReport, FlowError> {
        self.start()?;
        self.wait().await
    }

    /// Waits for the flow to end (starting it if it was not) and returns its
    /// report. Cancel-safe: dropping the future neither stops nor detaches
    /// the flow, and a later call returns the same outcome.
    pub async fn wait(&mut self) -> Result<FlowReport, FlowError> {
        if self.pending.is_some() {
            self.start()?;
        }
        self.control.wait().await
    }

    /// Stops the sources, lets the rest drain what is in flight, and cancels
    /// whatever is still running when `timeout` passes. Returns the report.
    /// Stopping an ended flow returns how it ended; a flow not yet started
    /// is started first (and stops at once).
    pub async fn stop_graceful(&mut self, timeout: Duration) -> Result<FlowReport, FlowError> {
        self.control.request_stop(timeout);
        self.wait().await
    }

    /// Cancels every stage now. Returns the report.
    pub async fn stop_cancel(&mut self) -> Result<FlowReport, FlowError> {
        self.control.request_cancel();
        self.wait().await
    }

    /// Ends the flow now as aborted, for `reason`.
    pub async fn abort(&mut self, reason: impl Into<String>) -> Result<FlowReport, FlowError> {
        self.control.send(FlowCommand::Abort(reason.into()));
        self.wait().await
    }

    /// The flow's state now.
    pub fn state(&self) -> FlowState {
        self.control.state()
    }

    /// A receiver that sees every change of the flow's state.
    pub fn watch(&self) -> watch::Receiver<FlowState> {
        self.control.watch()
    }

    /// Whether the flow has started and not yet ended.
    pub fn is_running(&self) -> bool {
        self.control.is_running()
    }

    /// A stage's state, as a receiver that sees every change.
    pub fn stage_state(&self, name: &str) -> Option<watch::Receiver<StageState>> {
        self.stages
            .iter()
            .find(|stage| &*stage.name == name)
            .map(|stage| stage.status.clone())
    }

    /// What every stage has done so far (or in all, once the flow has ended).
    pub fn report(&self) -> FlowReport {
        match self.control.ended() {
            Some(Ok(report)) => return report,
            Some(Err(
                FlowError::StageFailed { report, .. } | FlowError::Aborted { report, .. },
            )) => return *report,
            _ => {}
        }
        FlowReport {
            flow: self.name.to_string(),
            state: self.state(),
            stages: self.stages.iter().map(StageInfo::report).collect(),
            errors: self.errors.records(),
            run_dir: None,
        }
    }

    /// How many events the flow's sources will produce in all, if every
    /// source says how many it will.
    pub fn expected_source_events(&self) -> Option<u64> {
        self.stages
            .iter()
            .filter(|stage| stage.kind == StageKind::Source)
            .map(|stage| stage.expected)
            .sum()
    }

    /// Every record in the flow's error lane so far.
    pub fn errors(&self) -> Vec<ErrorRecord> {
        self.errors.records()
    }
}
