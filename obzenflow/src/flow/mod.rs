//! Flows: stages connected by typed edges, planned with [`FlowBuilder`]
//! (which `flow!` generates calls to), started and inspected through a
//! [`FlowHandle`], steered from anywhere through a [`FlowControl`].
//!
//! A flow is a plan until it starts (see [`FlowPlan`]): building it makes no
//! directory, file, thread or task, and starting it reports what the
//! environment refuses as a [`StartError`].
//!
//! EOF travels through the journals: a stage drains when all its inputs have
//! reached EOF, and the flow completes when every stage has drained. A stage
//! that fails (an error it cannot go on from, a panic, a broken control
//! channel) fails the flow, which cancels the other stages; nothing hangs.
//!
//! A run with disk journals can be [replayed](FlowHandle::replay_from) and
//! verified, and an interrupted one [resumed](FlowHandle::resume_from)
//! where it stopped (see [`resume`]).

mod builder;
pub mod checks;
mod contract;
mod handle;
#[cfg(feature = "http")]
pub(crate) mod http;
pub mod journals;
#[cfg(feature = "metrics")]
mod metrics;
mod plan;
pub mod replay;
pub(crate) mod report;
pub mod resume;
pub mod run;
mod topology;

#[doc(hidden)]
pub mod __private;

pub use crate::supervise::{ContractViolation, StageFailure};
pub use builder::{FeedbackPort, FlowBuilder, StageRef, Upstream};
pub use handle::{FlowControl, FlowHandle, FlowState};
#[cfg(feature = "http")]
pub use http::FlowServer;
pub use plan::{FlowPlan, StageJournalPlan, StartError};
pub use report::FlowReport;
pub use topology::{EdgeRole, Topology, TopologyEdge, TopologyStage};

/// What can go wrong with a flow as a whole.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// The builder found the flow malformed.
    #[error("flow `{flow}` is not valid: {}", problems.join("; "))]
    Invalid {
        /// The flow.
        flow: String,
        /// Everything wrong with it.
        problems: Vec<String>,
    },
    /// The environment refused something the flow needed to start (a
    /// directory, a journal, a thread); nothing was left behind.
    #[error("flow `{flow}` cannot start: {error}")]
    CannotStart {
        /// The flow.
        flow: String,
        /// What was refused, where, and why.
        error: Box<StartError>,
    },
    /// `start` (or `run`, `wait`) was called outside a tokio runtime.
    #[error("flow `{flow}` must be started inside a tokio runtime")]
    NoRuntime {
        /// The flow.
        flow: String,
    },
    /// `start` or `run` was called on a flow that had already started.
    #[error("flow `{flow}` was already started; a flow runs once")]
    AlreadyStarted {
        /// The flow.
        flow: String,
    },
    /// Waited for a flow that was dropped without being started.
    #[error("flow `{flow}` was dropped without being started")]
    NotStarted {
        /// The flow.
        flow: String,
    },
    /// A stage failed, and the flow with it.
    #[error("stage `{stage}` failed: {failure}")]
    StageFailed {
        /// The stage.
        stage: String,
        /// Why.
        failure: StageFailure,
        /// The run's report.
        report: Box<FlowReport>,
    },
    /// The flow was aborted.
    #[error("flow aborted: {reason}")]
    Aborted {
        /// The reason given.
        reason: String,
        /// The run's report.
        report: Box<FlowReport>,
    },
}

impl FlowError {
    /// The run's report, for a flow that ran and failed or was aborted.
    pub fn report(&self) -> Option<&FlowReport> {
        match self {
            FlowError::StageFailed { report, .. } | FlowError::Aborted { report, .. } => {
                Some(report)
            }
            _ => None,
        }
    }
}
