//! Resuming an interrupted run where it stopped.
//!
//! A resumed run appends to the same run directory: the journals keep their
//! numbering, so an event keeps its id and a sink's
//! [`DeliveryKey`](crate::event::DeliveryKey) (the run's id and the event's)
//! is the same for a delivery repeated after the crash, which is what lets a
//! sink that deduplicates make its effect exactly once. The manifest records
//! each resumption.
//!
//! Each stage learns where to continue from its own journal, read once as
//! it is reopened:
//! - a source continues after the last position it journaled (its
//!   [`Source::seek`](crate::stage::Source::seek));
//! - a transform, a sink and an observer continue after the last input
//!   their journal shows taken: named by a record's parents, or by a
//!   [`Control::Consumed`] mark for inputs that produced nothing;
//! - a join reads its whole reference side again, and continues its stream;
//! - a stateful stage restores its last snapshot and folds again what came
//!   after it (it writes a snapshot with every batch that emits, so nothing
//!   it emitted comes after its last snapshot);
//! - a stage whose journal ends with its EOF had finished, and stays so.
//!
//! What a stage reads of its upstream journals from before the crash comes
//! from the archive, streamed; what follows comes live.

use super::replay::{ReplayError, ReplayOptions};
use super::run::Manifest;
use super::topology::Topology;
use crate::event::{Body, Control, Envelope, ErrorRecord, SourcePosition, StateSnapshot};
use crate::journal::DiskJournalError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to resume.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResumeOptions {}

/// Why a run cannot be resumed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The archive cannot be read, or is of another flow.
    #[error(transparent)]
    Archive(#[from] ReplayError),
    /// The run recorded its end: there is nothing to continue.
    #[error(
        "the run in {dir} ended (`{status}`), so there is nothing to resume; replay it with --replay-from, or run the flow again"
    )]
    Ended {
        /// The run directory.
        dir: PathBuf,
        /// How it ended.
        status: String,
    },
    /// A stage keeps its journal in memory only.
    #[error(
        "stage `{stage}` keeps its journal in memory, so a run cannot be resumed: build the flow with `journals: disk(..)` for every stage"
    )]
    MemoryJournal {
        /// The stage.
        stage: String,
    },
    /// The flow has a feedback loop.
    #[error(
        "stage `{stage}` heads a feedback loop, and a run with a feedback loop cannot be resumed (what circulated in the loop when it stopped is not journaled as taken); run the flow again"
    )]
    FeedbackLoop {
        /// The loop's head.
        stage: String,
    },
    /// The run was interrupted while it started, before it wrote its
    /// manifest: no stage had run.
    #[error(
        "the run in {dir} was interrupted before it started (it has no manifest yet), so there is nothing to resume: run the flow again"
    )]
    NeverStarted {
        /// The run directory.
        dir: PathBuf,
    },
    /// Resume is set up before the flow starts.
    #[error("a resume must be set up before the flow starts")]
    AlreadyStarted,
}

/// What the manifest records of one resumption.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumption {
    /// When it started (UTC, RFC 3339).
    pub at: String,
    /// Each stage's journal length when it resumed, in stage order.
    pub stage_records: Vec<u64>,
    /// Where each source continued from (`None` for one that started
    /// afresh or had ended), in stage order.
    pub positions: Vec<Option<SourcePosition>>,
}

/// What reopening a stage's journal found, for resuming it.
#[derive(Clone, Debug, Default)]
pub(crate) struct JournalFacts {
    /// Its length.
    pub(crate) records: u64,
    /// The sequence numbers of its records that are not data, in order.
    nondata: Vec<u64>,
    pub(crate) data: u64,
    pub(crate) errors: Vec<ErrorRecord>,
    pub(crate) failed_inputs: u64,
    /// For each upstream stage: the sequence number after the last of its
    /// events this journal shows taken.
    pub(crate) taken: BTreeMap<u32, u64>,
    /// The last source position journaled.
    pub(crate) position: Option<SourcePosition>,
    /// The last snapshot, and whether data or errors were written after it.
    pub(crate) snapshot: Option<StateSnapshot>,
    pub(crate) written_since_snapshot: bool,
    /// Whether its last record is its EOF: the stage had finished.
    pub(crate) ended: bool,
}

impl JournalFacts {
    /// Notes one record of a journal being reopened, read in order.
    pub(crate) fn visit<T>(&mut self, record: crate::journal::disk::Visited<'_, T>) {
        match record {
            crate::journal::disk::Visited::Data { seq, parents } => {
                self.records = seq + 1;
                self.ended = false;
                self.data += 1;
                self.written_since_snapshot = true;
                for parent in parents.ids() {
                    self.took(parent.stage.0, parent.seq + 1);
                }
            }
            crate::journal::disk::Visited::Other(envelope) => self.note(envelope),
        }
    }

    /// Notes one record, read in order.
    pub(crate) fn note<T>(&mut self, envelope: &Envelope<T>) {
        self.records = envelope.id.seq + 1;
        self.ended = matches!(envelope.body, Body::Control(Control::Eof));
        let mut produced = false;
        match &envelope.body {
            Body::Data(_) => {
                self.data += 1;
                produced = true;
            }
            Body::Error(record) => {
                self.nondata.push(envelope.id.seq);
                if record.input_id.is_some() {
                    self.failed_inputs += 1;
                }
                self.errors.push((**record).clone());
                produced = true;
            }
            Body::Control(control) => {
                self.nondata.push(envelope.id.seq);
                match control {
                    Control::Position(position) => self.position = Some(*position),
                    Control::Consumed(next) => self.took(next.stage.0, next.seq),
                    _ => {}
                }
            }
            Body::Snapshot(snapshot) => {
                self.nondata.push(envelope.id.seq);
                self.snapshot = Some((**snapshot).clone());
                self.written_since_snapshot = false;
            }
        }
        if produced {
            self.written_since_snapshot = true;
            for parent in envelope.parents.ids() {
                self.took(parent.stage.0, parent.seq + 1);
            }
        }
    }

    fn took(&mut self, stage: u32, next: u64) {
        let taken = self.taken.entry(stage).or_default();
        *taken = (*taken).max(next);
    }

    /// How many data records come before sequence number `seq`.
    pub(crate) fn data_before(&self, seq: u64) -> u64 {
        let seq = seq.min(self.records);
        seq - self.nondata.partition_point(|&s| s < seq) as u64
    }

    /// Data records from `from` to the end.
    pub(crate) fn data_from(&self, from: u64) -> u64 {
        self.data - self.data_before(from)
    }
}

/// One upstream journal of a resumed stage: its stage's index, its
/// directory in the archive, and what reopening it found.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    pub(crate) index: usize,
    pub(crate) dir: PathBuf,
    pub(crate) facts: Arc<JournalFacts>,
}

/// What a resumed stage's body is told.
#[derive(Clone, Debug)]
pub(crate) struct StageResume {
    /// Its own journal.
    pub(crate) own: Arc<JournalFacts>,
    /// Its upstream journals.
    pub(crate) upstream: Vec<Upstream>,
}

impl StageResume {
    pub(crate) fn upstream(&self, index: usize) -> Option<&Upstream> {
        self.upstream.iter().find(|u| u.index == index)
    }

    /// Where the stage continues reading upstream stage `index`: after the
    /// last input its journal shows taken.
    pub(crate) fn taken(&self, index: usize) -> u64 {
        let stage = u32::try_from(index).unwrap_or(u32::MAX);
        self.own.taken.get(&stage).copied().unwrap_or(0)
    }
}

/// A resume the flow was asked for, filled in stage by stage as the flow
/// materializes over the archive.
#[derive(Clone, Debug)]
pub(crate) struct ResumePlan {
    pub(crate) archive: PathBuf,
    pub(crate) stage_journals: Vec<String>,
    pub(crate) manifest: Manifest,
    /// Each stage's upstream stages (by index).
    pub(crate) upstreams: Vec<Vec<usize>>,
    /// What each stage's journal held, once reopened.
    pub(crate) facts: Vec<Option<Arc<JournalFacts>>>,
}

impl ResumePlan {
    /// Records what stage `index`'s journal held, and returns what its
    /// body is told.
    pub(crate) fn reopened(&mut self, index: usize, facts: JournalFacts) -> StageResume {
        let own = Arc::new(facts);
        if let Some(slot) = self.facts.get_mut(index) {
            *slot = Some(Arc::clone(&own));
        }
        let upstream = self
            .upstreams
            .get(index)
            .into_iter()
            .flatten()
            .filter_map(|&up| {
                let facts = self.facts.get(up)?.as_ref()?;
                Some(Upstream {
                    index: up,
                    dir: self.archive.join(self.stage_journals.get(up)?),
                    facts: Arc::clone(facts),
                })
            })
            .collect();
        StageResume { own, upstream }
    }
}

/// Checks that the run in `archive` can be resumed by a flow of shape
/// `topology`, whose stages are `durable` (each journals to disk).
pub(crate) fn check(
    archive: &Path,
    topology: &Topology,
    durable: &[(String, bool)],
) -> Result<Manifest, ResumeError> {
    if archive.is_dir() && !archive.join("manifest.json").exists() {
        return Err(ResumeError::NeverStarted {
            dir: archive.to_owned(),
        });
    }
    let options = ReplayOptions {
        allow_incomplete: true,
        ..ReplayOptions::default()
    };
    let manifest = super::replay::check_archive(archive, topology, options)?;
    if manifest.ended_at.is_some() {
        return Err(ResumeError::Ended {
            dir: archive.to_owned(),
            status: manifest.status.clone(),
        });
    }
    if let Some((stage, _)) = durable.iter().find(|(_, durable)| !durable) {
        return Err(ResumeError::MemoryJournal {
            stage: stage.clone(),
        });
    }
    if let Some(edge) = topology
        .edges
        .iter()
        .find(|edge| edge.role == super::topology::EdgeRole::Feedback)
    {
        return Err(ResumeError::FeedbackLoop {
            stage: edge.to.clone(),
        });
    }
    Ok(manifest)
}

/// A resumed stage could not be set up: what a stage's resume refuses.
pub(crate) fn refused(stage: &str, reason: impl Into<String>) -> super::StartError {
    super::StartError::Resume {
        stage: stage.to_owned(),
        reason: reason.into(),
    }
}

/// Sets a resumed source where it continues: after the last position it
/// journaled (nothing, for a source that had ended or journaled nothing).
pub(crate) fn seek_source<T: crate::event::Payload, S: crate::stage::Source<T>>(
    handler: &mut S,
    resume: &StageResume,
) -> Result<(), String> {
    let own = &resume.own;
    if own.ended || own.records == 0 {
        return Ok(());
    }
    let Some(position) = own.position else {
        return Err(format!(
            "its journal holds {} records and no position to continue from (its handler's `Source::position` says nothing); run the flow again",
            own.records
        ));
    };
    handler
        .seek(position)
        .map_err(|error| error.message().to_owned())
}

impl From<DiskJournalError> for ResumeError {
    fn from(error: DiskJournalError) -> Self {
        ResumeError::Archive(ReplayError::Journal(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventId, Parents, StageId};

    fn record(seq: u64, parents: Parents, body: Body<u32>) -> Envelope<u32> {
        Envelope {
            id: EventId {
                stage: StageId(3),
                seq,
            },
            parents,
            timestamp_micros: 0,
            body,
        }
    }

    fn id(stage: u32, seq: u64) -> EventId {
        EventId {
            stage: StageId(stage),
            seq,
        }
    }

    #[test]
    fn facts_name_what_was_taken_from_each_input() {
        let mut facts = JournalFacts::default();
        facts.note(&record(0, Parents::One(id(1, 4)), Body::Data(7)));
        facts.note(&record(1, Parents::One(id(2, 9)), Body::Data(8)));
        // Inputs 5 and 6 of stage 1 produced nothing: a mark says so.
        facts.note(&record(
            2,
            Parents::None,
            Body::Control(Control::Consumed(id(1, 7))),
        ));
        facts.note(&record(
            3,
            Parents::Range([id(2, 10), id(2, 12)]),
            Body::Data(9),
        ));
        assert_eq!(facts.records, 4);
        assert_eq!(facts.taken.get(&1), Some(&7));
        assert_eq!(facts.taken.get(&2), Some(&13));
        assert_eq!(facts.data, 3);
        assert_eq!(facts.data_before(2), 2);
        assert_eq!(facts.data_before(3), 2);
        assert_eq!(facts.data_before(4), 3);
        assert_eq!(facts.data_before(99), 3);
        assert_eq!(facts.data_from(1), 2);
        assert!(!facts.ended);
        facts.note(&record(4, Parents::None, Body::Control(Control::Eof)));
        assert!(facts.ended);
    }

    #[test]
    fn a_mark_never_moves_what_was_taken_back() {
        let mut facts = JournalFacts::default();
        facts.note(&record(0, Parents::One(id(1, 9)), Body::Data(1)));
        facts.note(&record(
            1,
            Parents::None,
            Body::Control(Control::Consumed(id(1, 3))),
        ));
        assert_eq!(facts.taken.get(&1), Some(&10));
    }

    #[test]
    fn snapshots_and_what_follows_them_are_told_apart() {
        let mut facts = JournalFacts::default();
        facts.note(&record(0, Parents::One(id(1, 0)), Body::Data(1)));
        assert!(facts.written_since_snapshot);
        let snapshot = StateSnapshot {
            consumed: vec![id(1, 1)],
            ..StateSnapshot::default()
        };
        facts.note(&record(
            1,
            Parents::None,
            Body::Snapshot(Box::new(snapshot.clone())),
        ));
        assert!(!facts.written_since_snapshot);
        assert_eq!(facts.snapshot.as_ref(), Some(&snapshot));
        facts.note(&record(
            2,
            Parents::None,
            Body::Control(Control::Position(SourcePosition::default())),
        ));
        assert!(
            !facts.written_since_snapshot,
            "a control record is not output"
        );
        let error = ErrorRecord {
            stage: "s".into(),
            kind: crate::event::ErrorKind::Permanent,
            message: "bad".into(),
            input_id: Some(id(1, 1)),
            input: None,
        };
        facts.note(&record(
            3,
            Parents::One(id(1, 1)),
            Body::Error(Box::new(error)),
        ));
        assert!(facts.written_since_snapshot);
        assert_eq!((facts.errors.len(), facts.failed_inputs), (1, 1));
        assert_eq!(facts.data_before(4), 1);
        assert_eq!(facts.position, Some(SourcePosition::default()));
    }
}
