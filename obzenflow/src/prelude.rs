//! What most users of ObzenFlow need, in one import: `use obzenflow::prelude::*;`.

pub use crate::fsm::{
    EventVariant, FsmAction, FsmError, NoAction, StateMachine, StateVariant, Transition,
};
pub use obzenflow_macros::fsm;
