//! What a stage is doing and has done: its lifecycle state and its counters.

use crate::fsm::StateVariant;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The lifecycle of a stage, driven by its supervisor's state machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, StateVariant)]
pub enum StageState {
    /// Built, its task not yet initialized.
    Created,
    /// Ready; waits for the flow to start it.
    Initialized,
    /// Reading, handling and writing.
    Running,
    /// Its inputs ended (or it was asked to stop): flushing, writing EOF.
    Draining,
    /// Finished cleanly: everything it read was handled and its EOF written.
    Drained,
    /// Stopped by an error, a panic or a broken control channel.
    Failed {
        /// What went wrong.
        reason: String,
    },
    /// Cancelled before it could drain.
    Cancelled,
}

impl StageState {
    /// Whether the stage has finished, one way or another.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            StageState::Drained | StageState::Failed { .. } | StageState::Cancelled
        )
    }
}

impl fmt::Display for StageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageState::Failed { reason } => write!(f, "failed: {reason}"),
            other => f.write_str(&other.variant_name().to_lowercase()),
        }
    }
}

/// The kind of a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum StageKind {
    /// Produces events.
    Source,
    /// One input event to zero or more outputs.
    Transform,
    /// Consumes events, returns receipts.
    Sink,
    /// Accumulates and emits on a policy.
    Stateful,
    /// Joins a stream with a reference.
    Join,
    /// Sees every entry of another stage.
    Observer,
}

/// Live counters of one stage, updated as it works and readable at any time.
#[derive(Debug, Default)]
pub(crate) struct StageCounters {
    pub(crate) events_in: AtomicU64,
    pub(crate) events_out: AtomicU64,
    pub(crate) errors: AtomicU64,
    /// Errors that were about an input (the rest are about the stage itself,
    /// such as a failed flush).
    pub(crate) failed_inputs: AtomicU64,
    pub(crate) busy_nanos: AtomicU64,
    /// How many times the stage's task woke up to do something.
    pub(crate) wakeups: AtomicU64,
}

impl StageCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What one stage did in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StageReport {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: StageKind,
    /// How it ended (or where it is, for a report taken while running).
    pub state: StageState,
    /// Data events it read.
    pub events_in: u64,
    /// Data events it wrote (receipts, for a sink).
    pub events_out: u64,
    /// Inputs that went to the error lane.
    pub errors: u64,
    /// Time spent handling events.
    pub busy: Duration,
    /// How many times its task woke up to work.
    pub wakeups: u64,
}
