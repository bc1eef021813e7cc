//! Why a stage failed, as a value a program can match on: the handler's
//! fatal error (its source kept), a panic, journal I/O, a closed control
//! channel, a broken contract, or a graceful stop that ran out of time.
//!
//! A failure is recorded in the run's system journal and manifest, so it
//! serializes; what cannot be serialized (the source error a handler gave)
//! is kept in memory only, and two failures compare equal when they say the
//! same thing.

use crate::journal::JournalFailure;
use crate::stage::StageError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Why a stage failed, and so the flow with it.
///
/// ```
/// use obzenflow::flow::{FlowBuilder, FlowError};
/// use obzenflow::stage::{Emitter, StageError, Transform, collect, from_iter};
/// use obzenflow::supervise::StageFailure;
///
/// struct Checked;
///
/// impl Transform<u32, u32> for Checked {
///     async fn process(&mut self, n: u32, out: &mut Emitter<u32>) -> Result<(), StageError> {
///         if n >= 100 {
///             return Err(StageError::fatal(format!("cannot handle {n}")));
///         }
///         out.emit(n);
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let mut flow = FlowBuilder::new("strict");
/// let numbers = flow.source("numbers", from_iter([1u32, 500]));
/// let checked = flow.transform("checked", &numbers, Checked);
/// flow.sink("out", &checked, collect().0);
/// let outcome = flow.build().unwrap().run().await;
/// assert!(matches!(
///     outcome,
///     Err(FlowError::StageFailed { ref stage, failure: StageFailure::Handler { ref error, .. }, .. })
///         if stage == "checked" && error.message() == "cannot handle 500"
/// ));
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum StageFailure {
    /// The handler returned a fatal error (from `process`, `consume`,
    /// `flush`, `drain`...); [`StageError::source`] keeps what caused it.
    #[error("{}{error}", if *.draining { "drain failed: " } else { "" })]
    Handler {
        /// The handler's error.
        error: StageError,
        /// Whether it came from draining (final emits, flush, `drain`).
        draining: bool,
    },
    /// The handler panicked.
    #[error("panicked{}: {message}", if *.draining { " while draining" } else { "" })]
    Panicked {
        /// The panic's message.
        message: String,
        /// Whether it panicked while draining.
        draining: bool,
    },
    /// The stage's journal failed: the disk refused a write, or the journal
    /// was broken by such a failure.
    #[error("journal: {0}")]
    Journal(JournalFailure),
    /// The stage's control channel closed while the stage still needed it.
    #[error("its control channel closed while it was still running")]
    ControlClosed,
    /// A contract checked when every stage had drained does not hold.
    #[error("contract broken {0}")]
    Contract(ContractViolation),
    /// A graceful stop ran out of time while this stage still ran; the
    /// flow cancelled what was left.
    #[error(
        "it had not drained when the graceful stop's {timeout:?} ran out; the flow was cancelled"
    )]
    StopTimedOut {
        /// The stop's timeout.
        timeout: Duration,
    },
    /// The runtime itself could not go on (a task escaped its supervisor).
    #[error("{reason}")]
    Runtime {
        /// What happened.
        reason: String,
    },
}

impl StageFailure {
    /// A handler's fatal error while working.
    pub(crate) fn handler(error: StageError) -> Self {
        StageFailure::Handler {
            error,
            draining: false,
        }
    }

    /// The same failure, noted as happening while the stage drained.
    pub(crate) fn while_draining(self) -> Self {
        match self {
            StageFailure::Handler { error, .. } => StageFailure::Handler {
                error,
                draining: true,
            },
            StageFailure::Panicked { message, .. } => StageFailure::Panicked {
                message,
                draining: true,
            },
            other => other,
        }
    }
}

/// Which contract a flow broke, with the counts that show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum ContractViolation {
    /// An edge's reader did not read what its writer wrote.
    #[error("on the edge `{from} |> {to}`: `{from}` wrote {wrote} events and `{to}` read {read}")]
    Edge {
        /// The writing stage.
        from: String,
        /// The reading stage.
        to: String,
        /// Data events written.
        wrote: u64,
        /// Data events read.
        read: u64,
    },
    /// A sink consumed events it has neither a receipt nor an error for.
    #[error(
        "in sink `{sink}`: it consumed {consumed} events but has {receipts} delivery receipts and {failed} in the error lane"
    )]
    Receipts {
        /// The sink.
        sink: String,
        /// Events it read.
        consumed: u64,
        /// Receipts it wrote.
        receipts: u64,
        /// Inputs it sent to the error lane.
        failed: u64,
    },
    /// A source produced another count than it declared.
    #[error("in source `{source_stage}`: it declared {declared} events and produced {produced}")]
    SourceCount {
        /// The source.
        source_stage: String,
        /// What it declared.
        declared: u64,
        /// What it produced.
        produced: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_as_before_and_survive_the_system_journal() {
        let failures = [
            StageFailure::handler(StageError::fatal("cannot handle 500")),
            StageFailure::handler(StageError::fatal("disk full")).while_draining(),
            StageFailure::Panicked {
                message: "boom".into(),
                draining: false,
            },
            StageFailure::Journal(JournalFailure {
                path: Some("/runs/a/stages/000-x".into()),
                offset: Some(16),
                kind: io::ErrorKind::StorageFull,
                message: "journal file x: No space left on device".into(),
            }),
            StageFailure::ControlClosed,
            StageFailure::Contract(ContractViolation::SourceCount {
                source_stage: "airlines".into(),
                declared: 16,
                produced: 0,
            }),
            StageFailure::StopTimedOut {
                timeout: Duration::from_millis(50),
            },
        ];
        let texts: Vec<String> = failures.iter().map(ToString::to_string).collect();
        assert_eq!(texts[0], "cannot handle 500");
        assert_eq!(texts[1], "drain failed: disk full");
        assert_eq!(texts[2], "panicked: boom");
        assert_eq!(
            texts[5],
            "contract broken in source `airlines`: it declared 16 events and produced 0"
        );
        for failure in failures {
            let json = serde_json::to_string(&failure).unwrap();
            let back: StageFailure = serde_json::from_str(&json).unwrap();
            assert_eq!(back, failure, "{json}");
        }
    }

    use std::io;

    #[test]
    fn a_journal_failure_keeps_the_path_offset_and_kind() {
        let error = crate::journal::DiskJournalError::Corrupt {
            path: "/runs/a/00000000.seg".into(),
            offset: 4096,
            reason: "a block's checksum does not match".into(),
        };
        let failure = JournalFailure::from(&error);
        assert_eq!(
            failure.path.as_deref(),
            Some("/runs/a/00000000.seg".as_ref())
        );
        assert_eq!(failure.offset, Some(4096));
        assert_eq!(failure.kind, io::ErrorKind::InvalidData);
    }
}
