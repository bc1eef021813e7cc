//! What a run did: per stage events in, out, errors, time and final state,
//! plus the error lane.

use super::FlowError;
use super::handle::FlowState;
use crate::event::ErrorRecord;
use crate::supervise::StageReport;
use serde::Serialize;
use std::fmt;

/// The outcome of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowReport {
    /// The flow's name.
    pub flow: String,
    /// How it ended.
    pub state: FlowState,
    /// Each stage, in the order it was added.
    pub stages: Vec<StageReport>,
    /// Every input a stage failed on.
    pub errors: Vec<ErrorRecord>,
    /// The run's directory, for flows with disk journals.
    pub run_dir: Option<std::path::PathBuf>,
}

impl FlowReport {
    /// The report of stage `name`.
    pub fn stage(&self, name: &str) -> Option<&StageReport> {
        self.stages.iter().find(|stage| stage.name == name)
    }

    /// Writes the error lane to `path` as JSON lines, one
    /// [`ErrorRecord`] a line (its `input` holds the input that failed, as
    /// JSON text, where the stage kept it), and returns how many: a
    /// dead-letter file that `jsonl::read::<ErrorRecord>` (feature `files`)
    /// reads back, so that fixed records can be driven through a flow
    /// again. The file is written beside its target and renamed into place.
    pub fn write_error_lane(&self, path: &std::path::Path) -> std::io::Result<u64> {
        write_error_lane(&self.errors, path)
    }

    pub(crate) fn into_result(self) -> Result<FlowReport, FlowError> {
        match &self.state {
            FlowState::Failed { stage, failure } => Err(FlowError::StageFailed {
                stage: stage.clone(),
                failure: failure.clone(),
                report: Box::new(self),
            }),
            FlowState::Aborted { reason } => Err(FlowError::Aborted {
                reason: reason.clone(),
                report: Box::new(self),
            }),
            _ => Ok(self),
        }
    }
}

/// Writes `errors` to `path` as JSON lines, through a temporary file
/// renamed into place (see [`FlowReport::write_error_lane`]).
pub(crate) fn write_error_lane(
    errors: &[ErrorRecord],
    path: &std::path::Path,
) -> std::io::Result<u64> {
    use std::io::Write as _;
    let temporary = crate::journal::disk::temporary_beside(path);
    crate::journal::disk::remove_stale_temporaries(path);
    let write = || -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
        for record in errors {
            serde_json::to_writer(&mut out, record)?;
            out.write_all(b"\n")?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })?;
    Ok(errors.len() as u64)
}

impl fmt::Display for FlowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "flow `{}`: {}", self.flow, self.state)?;
        writeln!(
            f,
            "{:<20} {:<10} {:>10} {:>10} {:>8} {:>10} {:>14}  state",
            "stage", "kind", "in", "out", "errors", "busy ms", "p50/p99 each"
        )?;
        for stage in &self.stages {
            writeln!(
                f,
                "{:<20} {:<10} {:>10} {:>10} {:>8} {:>10.1} {:>14}  {}",
                stage.name,
                format!("{:?}", stage.kind).to_lowercase(),
                stage.events_in,
                stage.events_out,
                stage.errors,
                stage.busy.as_secs_f64() * 1000.0,
                stage
                    .processing
                    .map_or_else(|| "-".to_owned(), |p| p.to_string()),
                stage.state
            )?;
            for layer in &stage.middleware {
                writeln!(f, "  - {layer}")?;
            }
            let slowest = stage
                .instances
                .iter()
                .map(|instance| instance.busy)
                .max()
                .unwrap_or_default();
            let count = stage.instances.len();
            for (index, instance) in stage.instances.iter().enumerate() {
                writeln!(
                    f,
                    "  - instance {index} of {count}: {} in, busy {:.1} ms{}",
                    instance.events,
                    instance.busy.as_secs_f64() * 1000.0,
                    if instance.busy == slowest && count > 1 {
                        " (the slowest)"
                    } else {
                        ""
                    }
                )?;
            }
            if stage.possible_duplicates > 0 {
                writeln!(
                    f,
                    "  - resumed at least once: {} inputs delivered again may have been delivered before the interruption",
                    stage.possible_duplicates
                )?;
            }
        }
        Ok(())
    }
}
