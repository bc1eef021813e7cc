//! Errors of the FSM layer.

/// An event the machine has no clause for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FsmError {
    /// No `on` or `ignore` clause covers the pair, and no `unhandled` handler is given.
    #[error(
        "state machine `{machine}` has no transition for event `{event}` in state `{state}`: \
         add `on` or `ignore` for it in `state {state}`, or an `unhandled` handler"
    )]
    Unhandled {
        /// The state type's name.
        machine: &'static str,
        /// The variant the machine was in.
        state: &'static str,
        /// The event's variant.
        event: &'static str,
    },
}

/// An action that returned an error; the actions after it did not run.
#[derive(Debug, thiserror::Error)]
#[error("action {index} of {total} failed: {source}")]
pub struct ActionFailed<E> {
    /// Its position (from 0) in the list that was executing.
    pub index: usize,
    /// How many actions the list held.
    pub total: usize,
    /// The action's own error.
    pub source: E,
}

/// An error of [`StateMachine::handle_and_execute`](super::StateMachine::handle_and_execute).
#[derive(Debug, thiserror::Error)]
pub enum StepError<E> {
    /// The event was not handled; the state did not change.
    #[error(transparent)]
    Fsm(#[from] FsmError),
    /// The transition was applied, but one of its actions failed.
    #[error(transparent)]
    Action(ActionFailed<E>),
}
