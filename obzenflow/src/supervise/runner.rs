//! The supervisor of one stage: a task that drives the stage's lifecycle state
//! machine. Everything that happens to the stage (a command, work done, a
//! handler's failure, a failing action, a panic, a closed control channel)
//! becomes an event of that machine, so every failure takes the same path and
//! the stage's completion is reported exactly once, on entering a final state.

use super::body::{StageBody, Step};
use super::catch::catch_panic;
use super::status::{StageCounters, StageState};
use crate::fsm::{
    EventVariant, FsmAction, StateMachine, StateVariant, Transition, execute_actions,
};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// What the flow may tell a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageCommand {
    /// Start working.
    Start,
    /// Stop producing and drain (sources; other stages drain when their
    /// inputs end).
    Stop,
    /// Give up now.
    Cancel,
}

/// The events of a stage's state machine.
#[derive(Clone, Debug, EventVariant)]
pub(crate) enum StageEvent {
    Initialize,
    Start,
    Stop,
    InputsDone,
    DrainComplete,
    Error(String),
    Cancel,
}

/// The effects a stage's transitions ask for.
#[derive(Debug)]
pub(crate) enum StageAction {
    StopProducing,
    /// Final emits, flush, EOF: the work of draining.
    Finish,
    /// Report the final state to the flow (once: only final states ask for it).
    Complete,
}

/// What a stage reports when it reaches a final state.
#[derive(Debug)]
pub(crate) struct Completion {
    pub(crate) stage: usize,
    pub(crate) state: StageState,
}

/// The context of a stage's machine: its body and its ties to the flow.
pub(crate) struct Runner<B> {
    pub(crate) index: usize,
    pub(crate) name: Arc<str>,
    pub(crate) body: B,
    pub(crate) counters: Arc<StageCounters>,
    pub(crate) status: watch::Sender<StageState>,
    pub(crate) completions: mpsc::UnboundedSender<Completion>,
}

impl<B: StageBody> FsmAction<Runner<B>> for StageAction {
    type Error = String;

    async fn execute(&self, runner: &mut Runner<B>) -> Result<(), String> {
        match self {
            StageAction::StopProducing => runner.body.stop_producing(),
            StageAction::Finish => {
                catch_panic(runner.body.finish())
                    .await
                    .map_err(|panic| format!("panicked while draining: {panic}"))??;
            }
            StageAction::Complete => {
                let state = runner.status.borrow().clone();
                // The flow may already be gone (a cancelled run); nothing is owed then.
                let _ = runner.completions.send(Completion {
                    stage: runner.index,
                    state,
                });
            }
        }
        Ok(())
    }
}

type StageMachine<B> = StateMachine<StageState, StageEvent, Runner<B>, StageAction>;

fn stage_machine<B: StageBody>() -> StageMachine<B> {
    crate::fsm! {
        state: StageState; event: StageEvent; context: Runner<B>; action: StageAction;
        initial: StageState::Created;

        state StageState::Created {
            on StageEvent::Initialize => |_, _, _| Transition::to(StageState::Initialized);
        }
        state StageState::Initialized {
            on StageEvent::Start => |_, _, _| Transition::to(StageState::Running);
        }
        state StageState::Running {
            on StageEvent::Stop => |_, _, _| Transition::stay().with(StageAction::StopProducing);
            on StageEvent::InputsDone => |_, _, _| Transition::to(StageState::Draining);
        }
        state StageState::Draining {
            on StageEvent::DrainComplete => |_, _, _| Transition::to(StageState::Drained);
            ignore StageEvent::Stop | StageEvent::InputsDone;
            on_entry => |_, _| vec![StageAction::Finish];
        }
        state StageState::Drained {
            ignore _;
            on_entry => |_, _| vec![StageAction::Complete];
        }
        state StageState::Failed { .. } {
            ignore _;
            on_entry => |_, _| vec![StageAction::Complete];
        }
        state StageState::Cancelled {
            ignore _;
            on_entry => |_, _| vec![StageAction::Complete];
        }
        state _ {
            on StageEvent::Error(reason) => |_, _, _| Transition::to(StageState::Failed { reason: reason.clone() });
            on StageEvent::Cancel => |_, _, _| Transition::to(StageState::Cancelled);
        }
    }
}

/// Runs a stage to a final state.
pub(crate) async fn run_stage<B: StageBody>(
    mut runner: Runner<B>,
    mut control: mpsc::Receiver<StageCommand>,
) {
    let mut machine = stage_machine::<B>();
    let mut deferred = VecDeque::new();
    step(
        &mut machine,
        &mut runner,
        &mut deferred,
        StageEvent::Initialize,
    )
    .await;
    loop {
        let event = match machine.state() {
            StageState::Created => StageEvent::Initialize,
            StageState::Initialized => command(control.recv().await),
            StageState::Running => {
                let waited = tokio::select! {
                    biased;
                    received = control.recv() => Err(command(received)),
                    work = catch_panic(runner.body.wait()) => Ok(work),
                };
                StageCounters::add(&runner.counters.wakeups, 1);
                match waited {
                    Err(event) => event,
                    Ok(Err(panic)) => StageEvent::Error(format!("panicked: {panic}")),
                    Ok(Ok(work)) => match catch_panic(runner.body.work(work)).await {
                        Ok(Ok(Step::Continue)) => continue,
                        Ok(Ok(Step::Done)) => StageEvent::InputsDone,
                        Ok(Err(reason)) => StageEvent::Error(reason),
                        Err(panic) => StageEvent::Error(format!("panicked: {panic}")),
                    },
                }
            }
            StageState::Draining => StageEvent::DrainComplete,
            StageState::Drained | StageState::Failed { .. } | StageState::Cancelled => break,
        };
        step(&mut machine, &mut runner, &mut deferred, event).await;
    }
}

/// A command as a machine event; a closed channel is an error, since every
/// state that reads the channel still needs it.
fn command(received: Option<StageCommand>) -> StageEvent {
    match received {
        Some(StageCommand::Start) => StageEvent::Start,
        Some(StageCommand::Stop) => StageEvent::Stop,
        Some(StageCommand::Cancel) => StageEvent::Cancel,
        None => StageEvent::Error("its control channel closed while it was still running".into()),
    }
}

/// Handles `event` and executes the actions, turning a failing action into an
/// `Error` event. An event the current state does not take waits in
/// `deferred` and is tried again after the next state change.
async fn step<B: StageBody>(
    machine: &mut StageMachine<B>,
    runner: &mut Runner<B>,
    deferred: &mut VecDeque<StageEvent>,
    event: StageEvent,
) {
    let mut queue = VecDeque::from([event]);
    while let Some(event) = queue.pop_front() {
        let before = machine.state().variant_index();
        let actions = match machine.handle(&event, runner) {
            Ok(actions) => actions,
            Err(_unhandled) => {
                deferred.push_back(event);
                continue;
            }
        };
        if before != machine.state().variant_index() {
            runner.status.send_replace(machine.state().clone());
            tracing::debug!(stage = %runner.name, state = %machine.state(), "stage state");
            queue.extend(deferred.drain(..));
        }
        if let Err(failed) = execute_actions(actions, runner).await {
            queue.push_front(StageEvent::Error(failed.source));
        }
    }
}
