//! What a handler returns: the next state (or none) and the actions to run.

/// The result of a transition handler: where the machine goes and which
/// actions the transition itself asks for.
///
/// [`Transition::to`] is an external transition: the current state's
/// `on_exit` and the next state's `on_entry` run, even when the next state is
/// the current one (a self-transition, which also restarts the state's
/// timeout). [`Transition::stay`] is an internal transition: no hooks run and
/// the timeout keeps counting.
///
/// ```
/// use obzenflow::fsm::Transition;
///
/// let t: Transition<&str, u8> = Transition::to("open").with(1).with_actions([2, 3]);
/// assert_eq!(t.next_state, Some("open"));
/// assert_eq!(t.actions, [1, 2, 3]);
/// assert_eq!(Transition::<&str, u8>::stay().next_state, None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a transition does nothing until the state machine applies it"]
pub struct Transition<S, A> {
    /// The state to enter; `None` stays in the current state without running hooks.
    pub next_state: Option<S>,
    /// The transition's own actions, run after the exit and entry hooks' actions.
    pub actions: Vec<A>,
}

impl<S, A> Transition<S, A> {
    /// An external transition to `state`.
    pub fn to(state: S) -> Self {
        Transition {
            next_state: Some(state),
            actions: Vec::new(),
        }
    }

    /// An internal transition: the state does not change and no hooks run.
    pub fn stay() -> Self {
        Transition {
            next_state: None,
            actions: Vec::new(),
        }
    }

    /// Adds one action.
    pub fn with(mut self, action: A) -> Self {
        self.actions.push(action);
        self
    }

    /// Adds several actions, in order.
    pub fn with_actions(mut self, actions: impl IntoIterator<Item = A>) -> Self {
        self.actions.extend(actions);
        self
    }
}

/// What the generated dispatch function decided for one (state, event) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dispatch<S, A> {
    /// A handler ran and returned this transition.
    Transition(Transition<S, A>),
    /// The pair is declared `ignore`: nothing happens.
    Ignored,
    /// No clause covers the pair and the machine has no `unhandled` handler.
    Unhandled,
}
