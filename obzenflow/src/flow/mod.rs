//! Flows: stages connected by typed edges, built with [`FlowBuilder`] (which
//! `flow!` will generate calls to), run and steered through a [`FlowHandle`].
//!
//! EOF travels through the journals: a stage drains when all its inputs have
//! reached EOF, and the flow completes when every stage has drained. A stage
//! that fails (an error it cannot go on from, a panic, a broken control
//! channel) fails the flow, which cancels the other stages; nothing hangs.

mod builder;
mod contract;
mod handle;
#[cfg(feature = "http")]
pub(crate) mod http;
pub mod journals;
#[cfg(feature = "metrics")]
mod metrics;
pub mod replay;
mod report;
pub mod run;
mod topology;

#[doc(hidden)]
pub mod __private;

pub use builder::{FeedbackPort, FlowBuilder, StageRef, Upstream};
pub use handle::{FlowHandle, FlowState};
#[cfg(feature = "http")]
pub use http::FlowServer;
pub use report::FlowReport;
pub use topology::{EdgeRole, Topology, TopologyEdge, TopologyStage};

/// What can go wrong with a flow as a whole.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The builder found the flow malformed.
    #[error("flow `{flow}` is not valid: {}", problems.join("; "))]
    Invalid {
        /// The flow.
        flow: String,
        /// Everything wrong with it.
        problems: Vec<String>,
    },
    /// `start` or `run` was called on a flow that had already started.
    #[error("flow `{flow}` was already started; a flow runs once")]
    AlreadyStarted {
        /// The flow.
        flow: String,
    },
    /// Asked for the outcome of a flow that never started.
    #[error("flow `{flow}` was never started")]
    NotStarted {
        /// The flow.
        flow: String,
    },
    /// A stage failed, and the flow with it.
    #[error("stage `{stage}` failed: {reason}")]
    StageFailed {
        /// The stage.
        stage: String,
        /// Why.
        reason: String,
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
