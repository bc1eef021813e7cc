#![doc = include_str!("fsm_macro.md")]

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
