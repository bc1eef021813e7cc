//! What most users of ObzenFlow need, in one import: `use obzenflow::prelude::*;`.
//!
//! The stage helpers (`map`, `filter`, `collect`...) are not here, since
//! their short names would clash with a user's own; import them from
//! [`crate::stage`].

pub use crate::event::{Envelope, Payload};
pub use crate::flow::{
    FlowBuilder, FlowControl, FlowError, FlowHandle, FlowReport, FlowState, StageFailure, StageRef,
};
pub use crate::fsm::{
    EventVariant, FsmAction, FsmError, NoAction, StateMachine, StateVariant, Transition,
};
pub use crate::stage::{
    DrainReason, EmitPolicy, Emitter, Join, Observer, Poll, Receipt, Sink, Source, StageError,
    Stateful, Transform, TransformExt,
};
pub use obzenflow_macros::{flow, fsm};
