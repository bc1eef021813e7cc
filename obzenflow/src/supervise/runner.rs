//! The supervisor of one stage: a task that drives the stage's lifecycle state
//! machine. Everything that happens to the stage (a command, work done, a
//! handler's failure, a failing action, a panic, a closed control channel)
//! becomes an event of that machine, so every failure takes the same path and
//! the stage's completion is reported exactly once, on entering a final state.

use super::body::{StageBody, Step};
use super::catch::catch_panic;
use super::failure::StageFailure;
use super::status::{StageCounters, StageState};
use crate::fsm::{Driver, EventVariant, FsmAction, StateMachine, Transition};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// What the flow may tell a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StageCommand {
    /// Start working.
    Start,
    /// Stop producing and drain (sources; other stages drain when their
    /// inputs end).
    Stop,
}

/// The events of a stage's state machine.
#[derive(Clone, Debug, EventVariant)]
pub(crate) enum StageEvent {
    Initialize,
    Start,
    Stop,
    InputsDone,
    DrainComplete,
    Error(StageFailure),
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
    /// Whether a stop cut the stage's input short.
    pub(crate) cut_short: bool,
}

impl Completion {
    /// Why the stage failed, if it did.
    pub(crate) fn failure(&self) -> Option<&StageFailure> {
        match &self.state {
            StageState::Failed { failure } => Some(failure),
            _ => None,
        }
    }
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
    type Error = StageFailure;

    async fn execute(&self, runner: &mut Runner<B>) -> Result<(), StageFailure> {
        match self {
            StageAction::StopProducing => runner.body.stop_producing(),
            StageAction::Finish => {
                catch_panic(runner.body.finish())
                    .await
                    .map_err(|message| StageFailure::Panicked {
                        message,
                        draining: true,
                    })?
                    .map_err(StageFailure::while_draining)?;
            }
            StageAction::Complete => {
                let state = runner.status.borrow().clone();
                // The flow may already be gone (a cancelled run); nothing is owed then.
                let _ = runner.completions.send(Completion {
                    stage: runner.index,
                    state,
                    cut_short: runner.body.cut_short(),
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
            on StageEvent::Error(failure) => |_, _, _| Transition::to(StageState::Failed { failure: failure.clone() });
        }
    }
}

/// Runs a stage to a final state.
pub(crate) async fn run_stage<B: StageBody>(
    mut runner: Runner<B>,
    mut control: mpsc::Receiver<StageCommand>,
) {
    let mut machine = stage_machine::<B>();
    let mut driver = Driver::deferring_unhandled();
    let mut event = StageEvent::Initialize;
    loop {
        driver
            .step(
                &mut machine,
                &mut runner,
                event,
                announce,
                StageEvent::Error,
            )
            .await;
        event = loop {
            break match machine.state() {
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
                        Ok(Err(message)) => StageEvent::Error(panicked(message)),
                        Ok(Ok(work)) => match catch_panic(runner.body.work(work)).await {
                            Ok(Ok(Step::Continue)) => continue,
                            Ok(Ok(Step::Done)) => StageEvent::InputsDone,
                            Ok(Err(failure)) => StageEvent::Error(failure),
                            Err(message) => StageEvent::Error(panicked(message)),
                        },
                    }
                }
                StageState::Draining => StageEvent::DrainComplete,
                StageState::Drained | StageState::Failed { .. } | StageState::Cancelled => return,
            };
        };
    }
}

fn panicked(message: String) -> StageFailure {
    StageFailure::Panicked {
        message,
        draining: false,
    }
}

/// Publishes a stage's new state.
fn announce<B>(state: &StageState, runner: &mut Runner<B>) {
    runner.status.send_replace(state.clone());
    tracing::debug!(stage = %runner.name, %state, "stage state");
}

/// A command as a machine event; a closed channel is an error, since every
/// state that reads the channel still needs it.
fn command(received: Option<StageCommand>) -> StageEvent {
    match received {
        Some(StageCommand::Start) => StageEvent::Start,
        Some(StageCommand::Stop) => StageEvent::Stop,
        None => StageEvent::Error(StageFailure::ControlClosed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::status::StageCounters;

    /// A body that works `left` times, then has no more input.
    struct Countdown {
        left: u32,
        stopped: bool,
    }

    impl StageBody for Countdown {
        type Work = ();

        async fn wait(&mut self) {}

        async fn work(&mut self, (): ()) -> Result<Step, StageFailure> {
            if self.left == 0 || self.stopped {
                return Ok(Step::Done);
            }
            self.left -= 1;
            Ok(Step::Continue)
        }

        async fn finish(&mut self) -> Result<(), StageFailure> {
            Ok(())
        }

        fn stop_producing(&mut self) {
            self.stopped = true;
        }

        fn cut_short(&self) -> bool {
            self.stopped
        }
    }

    fn runner(
        left: u32,
    ) -> (
        Runner<Countdown>,
        watch::Receiver<StageState>,
        mpsc::UnboundedReceiver<Completion>,
    ) {
        let (status, states) = watch::channel(StageState::Created);
        let (completions, completed) = mpsc::unbounded_channel();
        let runner = Runner {
            index: 0,
            name: Arc::from("countdown"),
            body: Countdown {
                left,
                stopped: false,
            },
            counters: Arc::new(StageCounters::default()),
            status,
            completions,
        };
        (runner, states, completed)
    }

    #[tokio::test]
    async fn a_closed_control_channel_fails_the_stage_instead_of_a_silent_exit() {
        let (runner, states, mut completed) = runner(3);
        let (control, commands) = mpsc::channel(1);
        drop(control);
        run_stage(runner, commands).await;
        let failed = StageState::Failed {
            failure: StageFailure::ControlClosed,
        };
        assert_eq!(*states.borrow(), failed);
        let completion = completed.recv().await.unwrap();
        assert_eq!(completion.failure(), Some(&StageFailure::ControlClosed));
        assert!(completed.try_recv().is_err(), "completion reported once");
    }

    #[tokio::test]
    async fn a_stop_that_arrives_before_the_start_waits_for_a_state_that_takes_it() {
        let (runner, states, mut completed) = runner(u32::MAX);
        let (control, commands) = mpsc::channel(2);
        // Initialized does not take Stop: it waits, and is applied once the
        // stage runs, so the endless countdown ends at once.
        control.send(StageCommand::Stop).await.unwrap();
        control.send(StageCommand::Start).await.unwrap();
        run_stage(runner, commands).await;
        assert_eq!(*states.borrow(), StageState::Drained);
        assert_eq!(completed.recv().await.unwrap().state, StageState::Drained);
    }

    /// A body whose handler panics on the second piece of work.
    struct Fragile(u32);

    impl StageBody for Fragile {
        type Work = ();

        async fn wait(&mut self) {}

        async fn work(&mut self, (): ()) -> Result<Step, StageFailure> {
            self.0 += 1;
            assert!(self.0 < 2, "handler gave up");
            Ok(Step::Continue)
        }

        async fn finish(&mut self) -> Result<(), StageFailure> {
            Ok(())
        }

        fn cut_short(&self) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn a_panic_fails_the_stage_with_its_message() {
        let (status, states) = watch::channel(StageState::Created);
        let (completions, _completed) = mpsc::unbounded_channel();
        let runner = Runner {
            index: 0,
            name: Arc::from("fragile"),
            body: Fragile(0),
            counters: Arc::new(StageCounters::default()),
            status,
            completions,
        };
        let (control, commands) = mpsc::channel(1);
        control.send(StageCommand::Start).await.unwrap();
        run_stage(runner, commands).await;
        assert_eq!(
            *states.borrow(),
            StageState::Failed {
                failure: StageFailure::Panicked {
                    message: "handler gave up".into(),
                    draining: false
                }
            }
        );
    }
}
