//! Supervision: every stage runs as its own tokio task, driven by a state
//! machine declared with `fsm!` (created, initialized, running, draining,
//! drained, failed, cancelled). `body` holds what differs by stage kind,
//! `runner` the lifecycle they share, `input` the fair merge of a stage's
//! inputs, `catch` the conversion of panics into failures.

mod body;
mod catch;
mod input;
mod runner;
mod status;

pub(crate) use body::{
    ErrorLane, Feedback, FeedbackReaders, JoinBody, ObserverBody, Output, ReplaySwitch, SinkBody,
    SourceBody, StageBody, StatefulBody, TransformBody, blocking,
};
pub(crate) use catch::panic_message;
pub(crate) use input::Inputs;
pub use runner::StageCommand;
pub(crate) use runner::{Completion, Runner, run_stage};
#[cfg(feature = "metrics")]
pub(crate) use status::PROCESSING_BOUNDS_NANOS;
pub(crate) use status::StageCounters;
pub use status::{Percentiles, StageKind, StageReport, StageState};
