//! Supervision: every stage runs as its own tokio task, driven by a state
//! machine declared with `fsm!` (created, initialized, running, draining,
//! drained, failed, cancelled). `body` holds what differs by stage kind (one
//! file per kind), `runner` the lifecycle they share, `probe` how a feedback
//! loop's head learns that its loop is empty, `input` the fair merge of a
//! stage's inputs, `catch` the conversion of panics into failures, and
//! `failure` the typed reasons a stage fails for.

mod body;
mod catch;
mod failure;
mod input;
pub(crate) mod parallel;
mod probe;
mod runner;
mod status;

pub use crate::journal::JournalFailure;
pub(crate) use body::{
    ErrorLane, FeedbackReaders, JoinBody, ObserverBody, OneObserver, OneSink, Output, Parallel,
    ParallelJoin, ParallelObserver, ParallelSink, Partitioned, Resumable, RunMode, Serial,
    SerialJoin, Single, SinkBody, SourceBody, StageBody, StatefulBody, TransformBody, blocking,
};
pub(crate) use catch::{catch_panic, panic_message};
pub use failure::{ContractViolation, StageFailure};
pub(crate) use input::Inputs;
pub(crate) use runner::{Completion, Runner, StageCommand, run_stage};
#[cfg(feature = "metrics")]
pub(crate) use status::PROCESSING_BOUNDS_NANOS;
pub(crate) use status::StageCounters;
pub use status::{InstanceReport, Percentiles, StageKind, StageReport, StageState};
