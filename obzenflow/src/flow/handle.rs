//! The running flow: the pipeline supervisor (its own `fsm!` machine) and the
//! handle a user holds to run, stop, cancel or abort it and to watch its state.

use super::FlowError;
use super::builder::StageTask;
use super::report::FlowReport;
use crate::event::ErrorRecord;
use crate::fsm::{
    EventVariant, FsmAction, StateMachine, StateVariant, Transition, execute_actions,
};
use crate::supervise::{
    Completion, ErrorLane, StageCommand, StageCounters, StageKind, StageReport, StageState,
    panic_message,
};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
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
    /// Stopped on request, after draining what was in flight.
    Stopped,
    /// Cancelled on request (or a graceful stop ran out of time).
    Cancelled,
    /// A stage failed; the other stages were cancelled.
    Failed {
        /// The stage that failed.
        stage: String,
        /// Why.
        reason: String,
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
            FlowState::Failed { stage, reason } => write!(f, "failed in stage `{stage}`: {reason}"),
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
    /// What a replay switches in this stage.
    pub(crate) hook: super::replay::ReplayHook,
    /// Decodes a stored body of this stage's output type, for showing differences.
    pub(crate) describe: fn(&[u8]) -> String,
    /// How many events a source said it will produce.
    pub(crate) expected: Option<u64>,
    /// The figures of the middleware around a transform's handler.
    pub(crate) middleware: Vec<crate::stage::Instrument>,
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
        }
    }
}

/// A built flow, not yet running.
pub(crate) struct Pipeline {
    /// Every edge's read counter, for the contracts checked at the end.
    pub(crate) contracts: Vec<super::contract::EdgeContract>,
    /// The run directory and its system journal, for flows with disk journals.
    pub(crate) run: Option<(
        super::run::RunDir,
        crate::journal::DiskJournal<super::run::SystemEvent>,
    )>,
    pub(crate) topology: super::topology::Topology,
    pub(crate) name: Arc<str>,
    pub(crate) stages: Arc<[StageInfo]>,
    pub(crate) tasks: Vec<Option<StageTask>>,
    pub(crate) controls: Vec<Option<mpsc::Sender<StageCommand>>>,
    pub(crate) completions: mpsc::UnboundedReceiver<Completion>,
    pub(crate) errors: ErrorLane,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.name)
            .field("stages", &self.stages.len())
            .finish_non_exhaustive()
    }
}

/// What a handle may ask of a running flow.
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
    StageFailed { stage: String, reason: String },
    AllDone,
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
    pub(crate) stages: Arc<[StageInfo]>,
    tasks: Vec<Option<StageTask>>,
    controls: Vec<Option<mpsc::Sender<StageCommand>>>,
    running: JoinSet<()>,
    /// Each stage's final state, once it reported one.
    finals: Vec<Option<StageState>>,
}

impl FsmAction<Supervisor> for FlowAction {
    type Error = String;

    async fn execute(&self, supervisor: &mut Supervisor) -> Result<(), String> {
        match self {
            FlowAction::StartStages => {
                for task in supervisor.tasks.iter_mut().filter_map(Option::take) {
                    supervisor.running.spawn(task);
                }
                for control in supervisor.controls.iter().flatten() {
                    control
                        .send(StageCommand::Start)
                        .await
                        .map_err(|_| "a stage ended before it was started".to_owned())?;
                }
            }
            FlowAction::StopSources => {
                for (stage, control) in supervisor.stages.iter().zip(&supervisor.controls) {
                    if let (StageKind::Source, Some(control)) = (stage.kind, control) {
                        // A source that already finished has nothing to stop.
                        let _ = control.send(StageCommand::Stop).await;
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
            on FlowEvent::AllDone => |_, _, _| Transition::to(FlowState::Completed);
        }
        state FlowState::Stopping {
            on FlowEvent::AllDone => |_, _, _| Transition::to(FlowState::Stopped);
            ignore FlowEvent::Stop;
        }
        state FlowState::Completed | FlowState::Stopped | FlowState::Cancelled
            | FlowState::Failed { .. } | FlowState::Aborted { .. } {
            ignore _;
        }
        state _ {
            on FlowEvent::StageFailed { stage, reason } => |_, _, _| {
                Transition::to(FlowState::Failed { stage: stage.clone(), reason: reason.clone() })
                    .with(FlowAction::CancelStages)
            };
            on FlowEvent::Cancel => |_, _, _| Transition::to(FlowState::Cancelled).with(FlowAction::CancelStages);
            on FlowEvent::Abort(reason) => |_, _, _| {
                Transition::to(FlowState::Aborted { reason: reason.clone() }).with(FlowAction::CancelStages)
            };
            ignore FlowEvent::Stop | FlowEvent::AllDone;
        }
    }
}

/// Runs the pipeline supervisor until the flow and every stage task has ended.
async fn supervise(
    pipeline: Pipeline,
    mut commands: mpsc::UnboundedReceiver<FlowCommand>,
    state: watch::Sender<FlowState>,
) -> FlowReport {
    let Pipeline {
        name,
        stages,
        tasks,
        controls,
        mut completions,
        errors,
        mut run,
        contracts,
        ..
    } = pipeline;
    let mut system = SystemLog::default();
    let mut supervisor = Supervisor {
        finals: vec![None; stages.len()],
        stages: Arc::clone(&stages),
        tasks,
        controls,
        running: JoinSet::new(),
    };
    let mut machine = flow_machine();
    let mut stop_deadline: Option<Instant> = None;
    let mut commands_open = true;
    let mut event = Some(FlowEvent::Start);
    tracing::info!(flow = %name, stages = stages.len(), "flow starting");
    loop {
        if let Some(next) = event.take() {
            let before = machine.state().clone();
            apply(&mut machine, &mut supervisor, &state, next).await;
            if *machine.state() != before {
                system.record(
                    &mut run,
                    super::run::SystemEvent::Flow(machine.state().clone()),
                );
            }
        }
        if machine.state().is_terminal() && supervisor.running.is_empty() {
            break;
        }
        event = tokio::select! {
            command = commands.recv(), if commands_open => match command {
                Some(FlowCommand::Stop { timeout }) => {
                    let deadline = Instant::now() + timeout;
                    stop_deadline = Some(stop_deadline.map_or(deadline, |d| d.min(deadline)));
                    Some(FlowEvent::Stop)
                }
                Some(FlowCommand::Cancel) => Some(FlowEvent::Cancel),
                Some(FlowCommand::Abort(reason)) => Some(FlowEvent::Abort(reason)),
                // A dropped handle leaves the flow running to its end.
                None => {
                    commands_open = false;
                    None
                }
            },
            Some(completion) = completions.recv() => {
                let failed = match &completion.state {
                    StageState::Failed { reason } => Some(reason.clone()),
                    _ => None,
                };
                system.record(&mut run, super::run::SystemEvent::StageEnded {
                    stage: stages[completion.stage].name.to_string(),
                    state: completion.state.clone(),
                });
                supervisor.finals[completion.stage] = Some(completion.state);
                match failed {
                    Some(reason) => Some(FlowEvent::StageFailed {
                        stage: stages[completion.stage].name.to_string(),
                        reason,
                    }),
                    None if supervisor.finals.iter().all(Option::is_some) => {
                        // Every stage drained: before the flow counts as
                        // complete, what was written must have been read.
                        match super::contract::check(&stages, &contracts) {
                            Some((stage, reason)) => Some(FlowEvent::StageFailed { stage, reason }),
                            None => Some(FlowEvent::AllDone),
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
                    reason: format!("a stage task panicked: {}", panic_message(error.into_panic().as_ref())),
                }),
                _ => None,
            },
            () = sleep_until(stop_deadline.unwrap_or_else(Instant::now)), if stop_deadline.is_some()
                && !machine.state().is_terminal() => {
                tracing::warn!(flow = %name, "graceful stop timed out; cancelling");
                stop_deadline = None;
                Some(FlowEvent::Cancel)
            },
            // Nothing left to wait for, yet the flow has not ended: fail it
            // rather than wait forever.
            else => Some(FlowEvent::StageFailed {
                stage: "(flow supervisor)".to_owned(),
                reason: "every stage task ended without the flow reaching an end state".to_owned(),
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
    let run_dir = run.as_mut().map(|(dir, system)| {
        if let Err(error) = crate::supervise::blocking(|| dir.finish(system, &final_state)) {
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

/// Appends lifecycle events to a run's system journal.
#[derive(Default)]
struct SystemLog {
    next_seq: u64,
}

impl SystemLog {
    fn record(
        &mut self,
        run: &mut Option<(
            super::run::RunDir,
            crate::journal::DiskJournal<super::run::SystemEvent>,
        )>,
        event: super::run::SystemEvent,
    ) {
        let Some((_, journal)) = run else { return };
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

async fn apply(
    machine: &mut FlowMachine,
    supervisor: &mut Supervisor,
    state: &watch::Sender<FlowState>,
    event: FlowEvent,
) {
    let mut queue = vec![event];
    while let Some(event) = queue.pop() {
        let Ok(actions) = machine.handle(&event, supervisor) else {
            continue;
        };
        state.send_if_modified(|current| {
            let changed = current != machine.state();
            if changed {
                *current = machine.state().clone();
            }
            changed
        });
        if let Err(failed) = execute_actions(actions, supervisor).await {
            queue.push(FlowEvent::Abort(failed.source));
        }
    }
}

/// A flow, to run and to steer.
#[derive(Debug)]
pub struct FlowHandle {
    name: Arc<str>,
    /// Every edge's read counter (shared with the supervisor), for metrics.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) edges: Arc<[super::contract::EdgeContract]>,
    topology: Arc<super::topology::Topology>,
    pub(crate) stages: Arc<[StageInfo]>,
    errors: ErrorLane,
    pending: Option<Pipeline>,
    commands: Option<mpsc::UnboundedSender<FlowCommand>>,
    state: watch::Receiver<FlowState>,
    state_sender: Option<watch::Sender<FlowState>>,
    task: Option<JoinHandle<FlowReport>>,
    report: Option<FlowReport>,
    /// The archive this run replays, if it does.
    replaying: Option<std::path::PathBuf>,
}

impl FlowHandle {
    pub(crate) fn new(pipeline: Pipeline) -> Self {
        let (state_sender, state) = watch::channel(FlowState::Created);
        FlowHandle {
            edges: pipeline.contracts.clone().into(),
            topology: Arc::new(pipeline.topology.clone()),
            name: Arc::clone(&pipeline.name),
            stages: Arc::clone(&pipeline.stages),
            errors: pipeline.errors.clone(),
            pending: Some(pipeline),
            commands: None,
            state,
            state_sender: Some(state_sender),
            task: None,
            report: None,
            replaying: None,
        }
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
        use super::replay::ReplayHook;
        if self.pending.is_none() {
            return Err(super::replay::ReplayError::AlreadyStarted);
        }
        let archive = archive.as_ref();
        let manifest = super::replay::check_archive(archive, &self.topology, options)?;
        for (index, stage) in self.stages.iter().enumerate() {
            match &stage.hook {
                ReplayHook::Source(switch) => {
                    let journal = archive.join(&manifest.stage_journals[index]);
                    *switch
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(journal);
                }
                ReplayHook::Sink(dry_run) => {
                    dry_run.store(
                        !options.repeat_sink_effects,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                }
                ReplayHook::None => {}
            }
        }
        self.replaying = Some(archive.to_owned());
        Ok(())
    }

    /// Writes every journal of the archived run in `run` (which must be of
    /// this flow) as JSON lines to `out`, decoding each stage's records with
    /// its payload type. Returns how many lines it wrote.
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

    /// After a replay has run: compares every stage's output with the
    /// archive's. Needs the replay's journals on disk (`journals: disk(..)`).
    pub fn verify_replay(&self) -> Result<super::replay::Verification, super::replay::ReplayError> {
        let archive = self
            .replaying
            .as_deref()
            .ok_or(super::replay::ReplayError::NoReplayRun)?;
        let replay = self
            .report
            .as_ref()
            .and_then(|report| report.run_dir.as_deref())
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
            state: self.state.clone(),
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

    /// Starts the flow's stages. Must be called inside a tokio runtime; a
    /// flow starts once, so a second call is an error.
    pub fn start(&mut self) -> Result<(), FlowError> {
        let (Some(pipeline), Some(state)) = (self.pending.take(), self.state_sender.take()) else {
            return Err(FlowError::AlreadyStarted {
                flow: self.name.to_string(),
            });
        };
        let (commands, receiver) = mpsc::unbounded_channel();
        self.commands = Some(commands);
        self.task = Some(tokio::spawn(supervise(pipeline, receiver, state)));
        Ok(())
    }

    /// Runs the flow to its end and returns its report; an error if it
    /// failed or was aborted, or if it was already started.
    pub async fn run(&mut self) -> Result<FlowReport, FlowError> {
        self.start()?;
        self.wait().await
    }

    /// Waits for a started flow to end (starting it if it was not).
    pub async fn wait(&mut self) -> Result<FlowReport, FlowError> {
        if self.pending.is_some() {
            self.start()?;
        }
        if let Some(task) = self.task.take() {
            let report = match task.await {
                Ok(report) => report,
                Err(error) => FlowReport {
                    flow: self.name.to_string(),
                    state: FlowState::Failed {
                        stage: "(flow supervisor)".to_owned(),
                        reason: if error.is_panic() {
                            panic_message(error.into_panic().as_ref())
                        } else {
                            "the flow supervisor task was cancelled".to_owned()
                        },
                    },
                    stages: self.stages.iter().map(StageInfo::report).collect(),
                    errors: self.errors.records(),
                    run_dir: None,
                },
            };
            self.report = Some(report);
        }
        match &self.report {
            Some(report) => report.clone().into_result(),
            None => Err(FlowError::NotStarted {
                flow: self.name.to_string(),
            }),
        }
    }

    /// Stops the sources, lets the rest drain what is in flight, and cancels
    /// whatever is still running when `timeout` passes. Returns the report.
    /// Stopping an ended flow returns its report again.
    pub async fn stop_graceful(&mut self, timeout: Duration) -> Result<FlowReport, FlowError> {
        self.command(FlowCommand::Stop { timeout })?;
        self.wait().await
    }

    /// Asks a started flow to stop gracefully (see [`stop_graceful`](Self::stop_graceful))
    /// without waiting; [`wait`](Self::wait) returns the report.
    pub fn request_stop(&mut self, timeout: Duration) {
        if let Some(commands) = &self.commands {
            let _ = commands.send(FlowCommand::Stop { timeout });
        }
    }

    /// Asks a started flow to cancel without waiting.
    pub fn request_cancel(&mut self) {
        if let Some(commands) = &self.commands {
            let _ = commands.send(FlowCommand::Cancel);
        }
    }

    /// Cancels every stage now. Returns the report.
    pub async fn stop_cancel(&mut self) -> Result<FlowReport, FlowError> {
        self.command(FlowCommand::Cancel)?;
        self.wait().await
    }

    /// Ends the flow now as aborted, for `reason`.
    pub async fn abort(&mut self, reason: impl Into<String>) -> Result<FlowReport, FlowError> {
        self.command(FlowCommand::Abort(reason.into()))?;
        self.wait().await
    }

    fn command(&mut self, command: FlowCommand) -> Result<(), FlowError> {
        if self.pending.is_some() {
            self.start()?;
        }
        if let Some(commands) = &self.commands {
            // Once the flow has ended, nothing listens; the report says how it ended.
            let _ = commands.send(command);
        }
        Ok(())
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

    /// A stage's state, as a receiver that sees every change.
    pub fn stage_state(&self, name: &str) -> Option<watch::Receiver<StageState>> {
        self.stages
            .iter()
            .find(|stage| &*stage.name == name)
            .map(|stage| stage.status.clone())
    }

    /// Takes the control channel of stage `name` before the flow starts: the
    /// flow will no longer command that stage, and the caller must send it
    /// [`StageCommand::Start`]. Dropping the sender while the stage still runs
    /// fails the stage (and so the flow).
    pub fn take_stage_control(&mut self, name: &str) -> Option<mpsc::Sender<StageCommand>> {
        let pipeline = self.pending.as_mut()?;
        let index = pipeline
            .stages
            .iter()
            .position(|stage| &*stage.name == name)?;
        pipeline.controls[index].take()
    }

    /// What every stage has done so far (or in all, once the flow has ended).
    pub fn report(&self) -> FlowReport {
        if let Some(report) = &self.report {
            return report.clone();
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
