//! Finite state machines declared as transition tables.
//!
//! Every supervisor in ObzenFlow is one of these. A machine is declared with
//! [`fsm!`](crate::fsm!) over a state enum (`#[derive(StateVariant)]`) and an
//! event enum (`#[derive(EventVariant)]`); it expands to `match` arms on the
//! enums' real variants, so a misspelled variant is a compile error at the
//! misspelled token, and dispatching an event costs what a hand-written
//! `match` costs.
//!
//! ```
//! use obzenflow::prelude::*;
//! use std::time::Duration;
//!
//! #[derive(Clone, Debug, PartialEq, StateVariant)]
//! enum Door { Closed, Open, Broken { reason: String } }
//!
//! #[derive(Clone, Debug, EventVariant)]
//! enum DoorEvent { Open, Close, Kick(u8) }
//!
//! #[derive(Debug, PartialEq)]
//! enum DoorAction { Ring, Log(String) }
//!
//! struct DoorCtx { fragile: bool }
//!
//! let mut door = fsm! {
//!     state: Door; event: DoorEvent; context: DoorCtx; action: DoorAction;
//!     initial: Door::Closed;
//!
//!     state Door::Closed {
//!         on DoorEvent::Open => |_, _, _| Transition::to(Door::Open).with(DoorAction::Ring);
//!         on_entry => |_, _| vec![DoorAction::Log("closed".into())];
//!         ignore DoorEvent::Close;
//!     }
//!     state Door::Open {
//!         on DoorEvent::Close => |_, _, _| Transition::to(Door::Closed);
//!         on DoorEvent::Kick(force) => |_, _, ctx| {
//!             if ctx.fragile || *force > 3 {
//!                 Transition::to(Door::Broken { reason: format!("kicked with {force}") })
//!             } else {
//!                 Transition::stay()
//!             }
//!         };
//!         timeout Duration::from_secs(30) => |_, _| Transition::to(Door::Closed);
//!     }
//!     state Door::Broken { .. } { ignore _; }
//!     state _ { ignore DoorEvent::Kick(_); }
//! };
//!
//! let ctx = DoorCtx { fragile: false };
//! // The first step also hands out the initial state's entry actions.
//! assert_eq!(door.handle(&DoorEvent::Open, &ctx), Ok(vec![DoorAction::Log("closed".into()), DoorAction::Ring]));
//! assert_eq!(door.handle(&DoorEvent::Kick(9), &ctx), Ok(vec![]));
//! assert_eq!(door.state(), &Door::Broken { reason: "kicked with 9".into() });
//! assert!(door.to_mermaid().contains("Open --> Broken: Kick"));
//! ```
//!
//! # The table
//!
//! Headers, each ended by `;`: `state: Type` and `event: Type` (required),
//! `initial: expr` (required; evaluated where the macro is called),
//! `context: Type` (default `()`), `action: Type` (default [`NoAction`]).
//! Then any number of state clauses, and optionally `exhaustive;` and
//! `unhandled => handler;`.
//!
//! A state clause is `state Pattern { ... }`, where the pattern names one
//! variant (`Door::Open`), binds its fields (`Door::Broken { reason }`,
//! `Door::Jammed(since)`), joins several with `|`, or is `_` for every state.
//! Inside it, each clause ends with `;`:
//!
//! | clause | handler signature |
//! |---|---|
//! | `on Event::Variant => handler` | `Fn(&S, &E, &C) -> Transition<S, A>` |
//! | `ignore Event::Variant` (or `ignore _`) | none: the event does nothing |
//! | `on_entry => handler`, `on_exit => handler` | `Fn(&S, &C) -> Vec<A>` |
//! | `timeout duration_expr => handler` | `Fn(&S, &C) -> Transition<S, A>` |
//!
//! Fields bound by the state's and the event's patterns can be read by the
//! handler. Handlers are pure: they get the context by shared reference and
//! cannot capture local variables (the compiler says so if one tries).
//!
//! Which clause handles an event: the state's own `on`/`ignore` for that event,
//! then the state's `ignore _`, then the clauses of `state _`, then the
//! `unhandled` handler; without one, [`StateMachine::handle`] returns
//! [`FsmError::Unhandled`] naming the state and the event.
//!
//! With `exhaustive;`, every (state, event) pair that no clause covers is a
//! compile error that lists the missing pairs.
//!
//! # Order of actions
//!
//! On an external transition ([`Transition::to`], self-transitions included):
//! the old state's `on_exit` actions, then the new state's `on_entry` actions,
//! then the transition's own actions. [`Transition::stay`] runs no hooks.
//!
//! # Timeouts
//!
//! A state's timeout counts from when the state was entered, by tokio's clock
//! (paused time works). The machine does not spawn timers:
//! [`StateMachine::deadline`] tells a supervisor when to wake, and
//! [`StateMachine::check_timeout`] runs the handler if the deadline has passed.

mod action;
mod diagram;
mod drive;
mod error;
mod machine;
mod transition;
mod variant;

#[doc(hidden)]
pub mod __private {
    //! Used by `fsm!` expansions; not public API.
    pub use super::private::*;
}
mod private;

pub use action::{FsmAction, NoAction, execute_actions};
pub use diagram::{Edge, Effect, FsmTable, TableEntry, Trigger};
pub(crate) use drive::Driver;
pub use error::{ActionFailed, FsmError, StepError};
pub use machine::StateMachine;
pub use obzenflow_macros::{EventVariant, StateVariant};
pub use transition::{Dispatch, Transition};
pub use variant::{EventVariant, StateVariant};
