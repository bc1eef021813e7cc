//! Replaying an archived run, and verifying the replay against the archive.
//!
//! A replay runs the same flow again with its sources reading their archived
//! journals instead of calling their handlers; every other stage runs again.
//! Sinks do not repeat their external effects unless asked to: their receipts
//! say the delivery was skipped. Verification then compares, stage by stage,
//! what the replay wrote with what the archive holds: the same records, with
//! the same parents and the same bodies, byte for byte as stored.

use super::handle::StageInfo;
use super::run::{MANIFEST_VERSION, Manifest};
use super::topology::Topology;
use crate::event::{Body, EventId, Parents, Payload};
use std::collections::{HashMap, VecDeque};

/// What a record of a verified stage is matched with its counterpart by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum MatchKey {
    /// Its first parent's place (for a stage reading another's order).
    Parent(EventId),
    /// Its order among records with no single parent (from this input).
    Order(Option<u32>),
}
use crate::journal::DiskJournalError;
use crate::journal::disk::stream_raw;
use crate::supervise::StageKind;
use std::fmt;
use std::path::{Path, PathBuf};

/// How to replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Replay an archive whose run never recorded an end (it crashed or was
    /// killed): its sources replay what reached their journals.
    pub allow_incomplete: bool,
    /// Let sinks deliver again (by default they do not repeat their effects).
    pub repeat_sink_effects: bool,
}

/// Why an archive cannot be replayed or verified.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The manifest is missing or unreadable.
    #[error("cannot read the archive's manifest {path}: {reason}")]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The archived run never recorded an end.
    #[error(
        "the archive {dir} is incomplete: its run never recorded an end (status `{status}`); replay it anyway with --allow-incomplete (in code: `ReplayOptions {{ allow_incomplete: true, .. }}`)"
    )]
    Incomplete {
        /// The archive.
        dir: PathBuf,
        /// The manifest's status.
        status: String,
    },
    /// Written by a newer ObzenFlow.
    #[error(
        "the archive {dir} was written with manifest version {found}, and this ObzenFlow reads versions up to {MANIFEST_VERSION}; use a newer ObzenFlow"
    )]
    NewerFormat {
        /// The archive.
        dir: PathBuf,
        /// Its manifest version.
        found: u32,
    },
    /// Written by an older ObzenFlow, in a form this one no longer reads.
    #[error(
        "the archive {dir} was written with manifest version {found}, which this ObzenFlow (version {MANIFEST_VERSION}) no longer reads: {reason}; run the flow again to archive it anew"
    )]
    OlderFormat {
        /// The archive.
        dir: PathBuf,
        /// Its manifest version.
        found: u32,
        /// What no longer reads.
        reason: String,
    },
    /// The archive is of another flow (or another version of this one).
    #[error("the archive {dir} is of a different flow: {difference}")]
    DifferentTopology {
        /// The archive.
        dir: PathBuf,
        /// The first difference found.
        difference: String,
    },
    /// Replay is set up before the flow starts.
    #[error("a replay must be set up before the flow starts")]
    AlreadyStarted,
    /// Verification needs the replay's own journals on disk.
    #[error(
        "the replay has no run directory to compare with the archive: build the flow with disk journals (`journals: disk(..)`) to verify it"
    )]
    NoReplayRun,
    /// A journal could not be read.
    #[error(transparent)]
    Journal(#[from] DiskJournalError),
}

/// Reads a run directory's manifest.
pub fn read_manifest(dir: &Path) -> Result<Manifest, ReplayError> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|error| ReplayError::Manifest {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|error| {
        // A manifest of an older version that no longer parses is of an
        // older format, not damaged.
        let version = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|value| value.get("manifest_version")?.as_u64());
        match version {
            Some(found) if found < u64::from(MANIFEST_VERSION) => ReplayError::OlderFormat {
                dir: dir.to_owned(),
                found: u32::try_from(found).unwrap_or(0),
                reason: error.to_string(),
            },
            _ => ReplayError::Manifest {
                path,
                reason: error.to_string(),
            },
        }
    })
}

/// Checks that `archive` can be replayed by a flow of shape `topology`.
pub(crate) fn check_archive(
    archive: &Path,
    topology: &Topology,
    options: ReplayOptions,
) -> Result<Manifest, ReplayError> {
    let manifest = read_manifest(archive)?;
    if manifest.manifest_version > MANIFEST_VERSION {
        return Err(ReplayError::NewerFormat {
            dir: archive.to_owned(),
            found: manifest.manifest_version,
        });
    }
    if manifest.ended_at.is_none() && !options.allow_incomplete {
        return Err(ReplayError::Incomplete {
            dir: archive.to_owned(),
            status: manifest.status.clone(),
        });
    }
    if let Some(difference) = topology_difference(&manifest.topology, topology) {
        return Err(ReplayError::DifferentTopology {
            dir: archive.to_owned(),
            difference,
        });
    }
    if let Some(outside) = manifest
        .stage_journals
        .iter()
        .find(|journal| !inside_the_archive(journal))
    {
        return Err(ReplayError::Manifest {
            path: archive.join("manifest.json"),
            reason: format!(
                "the stage journal `{outside}` is not a directory under the archive's `stages/`"
            ),
        });
    }
    if manifest.stage_journals.len() != topology.stages.len() {
        return Err(ReplayError::Manifest {
            path: archive.join("manifest.json"),
            reason: format!(
                "it lists {} stage journals for a flow of {} stages",
                manifest.stage_journals.len(),
                topology.stages.len()
            ),
        });
    }
    check_journals(archive, &manifest, topology)?;
    Ok(manifest)
}

/// Checks that each journal of `archive` is its stage's and, for a run that
/// ended, that it holds whole all that the run wrote: a torn tail is what a
/// crash leaves, and a run that recorded its end did not crash.
fn check_journals(
    archive: &Path,
    manifest: &Manifest,
    topology: &Topology,
) -> Result<(), ReplayError> {
    // Each journal must be its stage's (a journal listed in another's place
    // would replay or verify the wrong records), and a run that ended must
    // have left each whole. One read of a journal tells both (a run that did
    // not end has only its headers read); every identity is checked first.
    let ended = manifest.ended_at.is_some();
    let mut surveys = Vec::new();
    for (index, (journal, stage)) in manifest
        .stage_journals
        .iter()
        .zip(&topology.stages)
        .enumerate()
    {
        let dir = archive.join(journal);
        let identity = if ended {
            let survey = crate::journal::disk::survey(&dir)?;
            let identity = survey.0.identity;
            surveys.push((dir.clone(), survey));
            identity
        } else {
            crate::journal::disk::identity_of(&dir)?
        };
        let expected = crate::journal::disk::journal_identity(index, &stage.name);
        if identity.is_some_and(|identity| identity != expected) {
            return Err(ReplayError::Journal(DiskJournalError::Corrupt {
                path: dir,
                offset: 8,
                reason: format!("it is not the journal of stage `{}`", stage.name),
            }));
        }
    }
    if !ended {
        return Ok(());
    }
    // Manifests before version 2 recorded no counts; their journals are
    // still checked for torn tails.
    let counts = manifest.stage_records.as_deref().unwrap_or_default();
    for (index, (dir, survey)) in surveys.into_iter().enumerate() {
        check_whole(&dir, survey, counts.get(index).copied())?;
    }
    let system = archive.join("system");
    let survey = crate::journal::disk::survey(&system)?;
    check_whole(&system, survey, manifest.system_records)
}

/// Checks what reading the journal in `dir` of a run that ended found: no
/// torn tail, and `expected` records if the manifest says.
fn check_whole(
    dir: &Path,
    (found, last_segment): (crate::journal::Recovery, Option<PathBuf>),
    expected: Option<u64>,
) -> Result<(), ReplayError> {
    if let Some((path, offset, _)) = found.truncated {
        return Err(ReplayError::Journal(DiskJournalError::Corrupt {
            path,
            offset,
            reason: "damaged from here to its end, in a run that recorded its end (a crash's torn tail is only possible in a run that did not)".to_owned(),
        }));
    }
    match expected {
        Some(expected) if expected != found.records => {
            // Gaps between segments are refused as they are read: what is
            // short is the end, the last segment's (or the journal, when no
            // segment is left).
            let (path, offset) = match last_segment {
                Some(last) => {
                    let size = std::fs::metadata(&last).map_or(0, |meta| meta.len());
                    (last, size)
                }
                None => (dir.to_owned(), 0),
            };
            Err(ReplayError::Journal(DiskJournalError::Corrupt {
                path,
                offset,
                reason: format!(
                    "the journal holds {} records up to here, and the run recorded {expected} when it ended: it was cut short, or a segment is missing",
                    found.records
                ),
            }))
        }
        _ => Ok(()),
    }
}

fn inside_the_archive(journal: &str) -> bool {
    let mut parts = Path::new(journal).components();
    parts.next() == Some(std::path::Component::Normal("stages".as_ref()))
        && parts.clone().next().is_some()
        && parts.all(|part| matches!(part, std::path::Component::Normal(_)))
}

/// The first difference between an archived topology and a flow's, if any.
fn topology_difference(archived: &Topology, current: &Topology) -> Option<String> {
    if archived.stages.len() != current.stages.len() {
        return Some(format!(
            "it has {} stages, this flow {}",
            archived.stages.len(),
            current.stages.len()
        ));
    }
    for (old, new) in archived.stages.iter().zip(&current.stages) {
        // The instance count of a parallel stage may differ: its journal
        // is the same whatever the count (a keyed stateful stage checks its
        // own when it restores its state).
        if (&old.name, old.kind) != (&new.name, new.kind) {
            return Some(format!(
                "its stage `{}` ({:?}) is `{}` ({:?}) in this flow",
                old.name, old.kind, new.name, new.kind
            ));
        }
    }
    if archived.edges != current.edges {
        let edge = archived
            .edges
            .iter()
            .find(|edge| !current.edges.contains(edge))
            .or_else(|| {
                current
                    .edges
                    .iter()
                    .find(|edge| !archived.edges.contains(edge))
            });
        return Some(match edge {
            Some(edge) => format!(
                "the edge `{} |> {}` carrying `{}` is not in both",
                edge.from, edge.to, edge.payload
            ),
            None => "its edges are in another order".to_owned(),
        });
    }
    None
}

/// A stored body of type `T`, as JSON (for showing differences).
pub(crate) fn describe_body<T: Payload>(bytes: &[u8]) -> String {
    match postcard::from_bytes::<Body<T>>(bytes) {
        Ok(body) => {
            serde_json::to_string(&body).unwrap_or_else(|error| format!("(cannot show: {error})"))
        }
        Err(error) => format!("(undecodable: {error})"),
    }
}

/// Whether stored body bytes are a `Body::Control` or a `Body::Snapshot`
/// (how a run went, not what it computed), read off the encoded variant
/// tag (postcard writes an enum's variant index first), which is taken from
/// the encoding of real bodies rather than written down.
fn is_control(body: &[u8]) -> bool {
    static TAGS: std::sync::OnceLock<[Option<u8>; 2]> = std::sync::OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        let tag = |body: &Body<()>| {
            postcard::to_allocvec(body)
                .ok()
                .and_then(|bytes| bytes.first().copied())
        };
        [
            tag(&Body::Control(crate::event::Control::Eof)),
            tag(&Body::Snapshot(Box::default())),
        ]
    });
    body.first()
        .is_some_and(|first| tags.contains(&Some(*first)))
}

/// Where control records and snapshots sit in each stage's journal:
/// verification compares a record's parents by their places among the
/// compared records, since marks (a stage's consumed-up-to marks, a
/// stateful stage's snapshots) fall wherever a run's batches ended.
#[derive(Debug, Default)]
struct Uncompared(Vec<Vec<u64>>);

impl Uncompared {
    fn read(run: &Path, manifest: &Manifest) -> Result<Self, ReplayError> {
        let mut all = Vec::new();
        for journal in &manifest.stage_journals {
            let mut seqs = Vec::new();
            for batch in stream_raw(&run.join(journal), 4096)? {
                seqs.extend(
                    batch?
                        .into_iter()
                        .filter(|record| is_control(&record.body))
                        .map(|record| record.seq),
                );
            }
            all.push(seqs);
        }
        Ok(Uncompared(all))
    }

    /// `id` with its sequence number made its place among its journal's
    /// compared records.
    fn place(&self, id: EventId) -> EventId {
        let before = self
            .0
            .get(id.stage.0 as usize)
            .map_or(0, |seqs| seqs.partition_point(|&seq| seq < id.seq));
        EventId {
            stage: id.stage,
            seq: id.seq - before as u64,
        }
    }
}

/// A record as verification compares it: parents and body bytes (ids follow
/// from the order, timestamps differ between runs by nature).
struct Compared {
    seq: u64,
    parents: Parents,
    body: Vec<u8>,
}

/// The records of the journal in `dir` that verification compares, read
/// as a stream (a journal is never held whole).
fn compared_records(
    dir: &Path,
) -> Result<impl Iterator<Item = Result<Compared, ReplayError>> + use<>, ReplayError> {
    let stream = stream_raw(dir, 4096)?;
    Ok(stream.flat_map(|batch| {
        let records: Vec<Result<Compared, ReplayError>> = match batch {
            Ok(records) => records
                .into_iter()
                // Control markers (EOF, drain, probes) are how a run ended,
                // not what it computed.
                .filter(|record| !is_control(&record.body))
                .map(|record| {
                    Ok(Compared {
                        seq: record.seq,
                        parents: record.parents,
                        body: record.body,
                    })
                })
                .collect(),
            Err(error) => vec![Err(error.into())],
        };
        records
    }))
}

/// The first record where a stage's replay differs from its archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// Its position among the stage's data and error records.
    pub index: usize,
    /// The archived record (parents and body as JSON), if there is one.
    pub archived: Option<String>,
    /// The replayed record, if there is one.
    pub replayed: Option<String>,
}

/// How one stage's replay compares with its archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageVerification {
    /// The stage.
    pub stage: String,
    /// Records compared (data and error-lane records).
    pub records: usize,
    /// The first difference, if any.
    pub first_difference: Option<Difference>,
}

/// How a replay compares with its archive, stage by stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Each stage, in order.
    pub stages: Vec<StageVerification>,
}

impl Verification {
    /// How many stages differ.
    pub fn differences(&self) -> usize {
        self.stages
            .iter()
            .filter(|s| s.first_difference.is_some())
            .count()
    }

    /// Whether every stage matched.
    pub fn matched(&self) -> bool {
        self.differences() == 0
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.matched() {
            return write!(f, "all {} stages matched, 0 differences", self.stages.len());
        }
        writeln!(
            f,
            "{} of {} stages differ:",
            self.differences(),
            self.stages.len()
        )?;
        for stage in &self.stages {
            if let Some(difference) = &stage.first_difference {
                writeln!(f, "  stage `{}`, record {}:", stage.stage, difference.index)?;
                writeln!(
                    f,
                    "    archived: {}",
                    difference.archived.as_deref().unwrap_or("(none)")
                )?;
                writeln!(
                    f,
                    "    replayed: {}",
                    difference.replayed.as_deref().unwrap_or("(none)")
                )?;
            }
        }
        Ok(())
    }
}

/// Compares every stage's journal in `replay` with the same stage's in `archive`.
///
/// Records are compared by what they were made from and what they hold,
/// not by their sequence numbers: a parent is taken as its place among its
/// journal's compared records (control marks fall wherever a run's batches
/// ended), and, for a stage that reads several inputs, as the place of the
/// record it was matched with (a fair merge takes its inputs in whatever
/// order they came). So the records made from each input are compared in
/// order, input by input.
pub(crate) fn verify(
    archive: &Path,
    replay: &Path,
    stages: &[StageInfo],
) -> Result<Verification, ReplayError> {
    let archived_manifest = read_manifest(archive)?;
    let replayed_manifest = read_manifest(replay)?;
    let archived_marks = Uncompared::read(archive, &archived_manifest)?;
    let replayed_marks = Uncompared::read(replay, &replayed_manifest)?;
    // For each stage whose records were matched out of order: the replayed
    // place of each archived place.
    let mut moved: Vec<Option<Vec<u64>>> = vec![None; stages.len()];
    let mut out = Vec::new();
    for (index, stage) in stages.iter().enumerate() {
        let journal = |manifest: &Manifest| {
            manifest
                .stage_journals
                .get(index)
                .cloned()
                .unwrap_or_default()
        };
        let mut archived = compared_records(&archive.join(journal(&archived_manifest)))?;
        let mut replayed = compared_records(&replay.join(journal(&replayed_manifest)))?;
        // A sink's replayed receipts say the delivery was skipped: compare
        // what it consumed (the parents), not what it said about it.
        let bodies_matter = stage.kind != StageKind::Sink;
        let show = |record: &Compared| {
            format!(
                "#{} parents {:?} body {}",
                record.seq,
                record
                    .parents
                    .ids()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
                (stage.describe)(&record.body)
            )
        };
        let archived_place = |id: EventId, moved: &[Option<Vec<u64>>]| {
            let place = archived_marks.place(id);
            let seq = moved
                .get(id.stage.0 as usize)
                .and_then(Option::as_ref)
                .and_then(|map| map.get(place.seq as usize).copied())
                .unwrap_or(place.seq);
            EventId { seq, ..place }
        };
        let same = |old: &Compared, new: &Compared, moved: &[Option<Vec<u64>>]| {
            let parents = match (&old.parents, &new.parents) {
                // What a stateful stage folded: all its inputs up to a
                // point, whatever their order.
                (Parents::Range(a), Parents::Range(b)) => a
                    .iter()
                    .zip(b)
                    .all(|(a, b)| archived_marks.place(*a) == replayed_marks.place(*b)),
                (a, b) => {
                    a.ids().len() == b.ids().len()
                        && a.ids()
                            .iter()
                            .zip(b.ids())
                            .all(|(a, b)| archived_place(*a, moved) == replayed_marks.place(*b))
                }
            };
            parents
                && (!bodies_matter
                    || old.body == new.body
                    || same_error(&old.body, &new.body, |a, b| {
                        archived_place(a, moved) == replayed_marks.place(b)
                    }))
        };
        // Records are matched by what they were made from (the first
        // parent, as a place; in order, for several made from one), and
        // wait here for their counterparts.
        let key = |parents: &Parents, place: &dyn Fn(EventId) -> EventId| match parents {
            Parents::One(id) => MatchKey::Parent(place(*id)),
            Parents::Many(ids) => ids
                .first()
                .map_or(MatchKey::Order(None), |id| MatchKey::Parent(place(*id))),
            Parents::Range([first, _]) => MatchKey::Order(Some(first.stage.0)),
            Parents::None => MatchKey::Order(None),
        };
        type Queue = VecDeque<(u64, Compared)>;
        let mut waiting: HashMap<MatchKey, (Queue, Queue)> = HashMap::new();
        let mut map: Vec<u64> = Vec::new();
        let mut reordered = false;
        let mut first_difference = None;
        let (mut archived_count, mut replayed_count) = (0u64, 0u64);
        let mut records = 0;
        let (mut archived_done, mut replayed_done) = (false, false);
        while !(archived_done && replayed_done) {
            let mut touched = Vec::with_capacity(2);
            if !archived_done {
                match archived.next().transpose()? {
                    Some(record) => {
                        let at = key(&record.parents, &|id| archived_place(id, &moved));
                        waiting
                            .entry(at.clone())
                            .or_default()
                            .0
                            .push_back((archived_count, record));
                        touched.push(at);
                        archived_count += 1;
                    }
                    None => archived_done = true,
                }
            }
            if !replayed_done {
                match replayed.next().transpose()? {
                    Some(record) => {
                        let at = key(&record.parents, &|id| replayed_marks.place(id));
                        waiting
                            .entry(at.clone())
                            .or_default()
                            .1
                            .push_back((replayed_count, record));
                        touched.push(at);
                        replayed_count += 1;
                    }
                    None => replayed_done = true,
                }
            }
            for at in touched {
                let Some((old_queue, new_queue)) = waiting.get_mut(&at) else {
                    continue;
                };
                while let (Some(_), Some(_)) = (old_queue.front(), new_queue.front()) {
                    let (Some((old_place, old)), Some((new_place, new))) =
                        (old_queue.pop_front(), new_queue.pop_front())
                    else {
                        break;
                    };
                    if first_difference.is_none() && !same(&old, &new, &moved) {
                        first_difference = Some(Difference {
                            index: records,
                            archived: Some(show(&old)),
                            replayed: Some(show(&new)),
                        });
                    }
                    if map.len() <= old_place as usize {
                        map.resize(old_place as usize + 1, u64::MAX);
                    }
                    map[old_place as usize] = new_place;
                    reordered |= old_place != new_place;
                    records += 1;
                }
                if old_queue.is_empty() && new_queue.is_empty() {
                    waiting.remove(&at);
                }
            }
        }
        // What found no counterpart, first in the archive's order.
        type Left = (Option<(u64, Compared)>, Option<(u64, Compared)>, usize);
        let mut left: Vec<Left> = waiting
            .into_values()
            .map(|(mut old, mut new)| {
                let count = old.len().max(new.len());
                (old.pop_front(), new.pop_front(), count)
            })
            .collect();
        left.sort_by_key(|(old, new, _)| {
            (
                old.as_ref().map_or(u64::MAX, |(place, _)| *place),
                new.as_ref().map_or(u64::MAX, |(place, _)| *place),
            )
        });
        for (old, new, count) in left {
            if first_difference.is_none() {
                first_difference = Some(Difference {
                    index: records,
                    archived: old.as_ref().map(|(_, record)| show(record)),
                    replayed: new.as_ref().map(|(_, record)| show(record)),
                });
            }
            records += count;
        }
        if reordered {
            moved[index] = Some(map);
        }
        out.push(StageVerification {
            stage: stage.name.to_string(),
            records,
            first_difference,
        });
    }
    Ok(Verification { stages: out })
}

/// Whether two stored bodies are error records that say the same, their
/// inputs compared by `same_input`.
fn same_error(old: &[u8], new: &[u8], same_input: impl Fn(EventId, EventId) -> bool) -> bool {
    static ERROR_TAG: std::sync::OnceLock<Option<u8>> = std::sync::OnceLock::new();
    let tag = *ERROR_TAG.get_or_init(|| {
        let record = crate::event::ErrorRecord {
            stage: "".into(),
            kind: crate::event::ErrorKind::Permanent,
            message: String::new(),
            input_id: None,
            input: None,
        };
        postcard::to_allocvec(&Body::<()>::Error(Box::new(record)))
            .ok()
            .and_then(|bytes| bytes.first().copied())
    });
    let decode = |body: &[u8]| {
        if tag.is_none() || body.first().copied() != tag {
            return None;
        }
        postcard::from_bytes::<crate::event::ErrorRecord>(body.get(1..)?).ok()
    };
    let (Some(mut old), Some(mut new)) = (decode(old), decode(new)) else {
        return false;
    };
    let inputs = match (old.input_id.take(), new.input_id.take()) {
        (Some(a), Some(b)) => same_input(a, b),
        (None, None) => true,
        _ => false,
    };
    inputs && old == new
}

/// Writes every record of every stage journal of the run in `run` (and its
/// system journal) to `out` as JSON lines: stage, sequence number, parents,
/// timestamp and body, decoded with the stages' own payload types.
/// Fills in, from the run's journals, the input of each error-lane record
/// that names its input event but did not keep a copy: the input as the
/// payload it was, as JSON text. Each upstream journal is read once.
pub(crate) fn fill_inputs(
    run: &Path,
    stages: &[StageInfo],
    records: &mut [crate::event::ErrorRecord],
) -> Result<(), ReplayError> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut wanted: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    for record in records.iter() {
        if let (Some(id), None) = (record.input_id, &record.input) {
            wanted.entry(id.stage.0).or_default().insert(id.seq);
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let manifest = read_manifest(run)?;
    let mut found: BTreeMap<(u32, u64), String> = BTreeMap::new();
    for (stage, seqs) in &wanted {
        let index = *stage as usize;
        let (Some(info), Some(journal)) = (stages.get(index), manifest.stage_journals.get(index))
        else {
            continue;
        };
        let last = seqs.last().copied().unwrap_or(0);
        let mut stream = stream_raw(&run.join(journal), 4096)?;
        'reading: for batch in stream.by_ref() {
            for record in batch? {
                if record.seq > last {
                    break 'reading;
                }
                if seqs.contains(&record.seq) {
                    let body: serde_json::Value =
                        serde_json::from_str(&(info.describe)(&record.body))
                            .unwrap_or(serde_json::Value::Null);
                    if let Some(data) = body.get("Data") {
                        found.insert((*stage, record.seq), data.to_string());
                    }
                }
            }
        }
    }
    for record in records.iter_mut() {
        if let (Some(id), None) = (record.input_id, &record.input) {
            record.input = found.remove(&(id.stage.0, id.seq));
        }
    }
    Ok(())
}

pub(crate) fn inspect(
    run: &Path,
    stages: &[StageInfo],
    out: &mut dyn std::io::Write,
) -> Result<u64, ReplayError> {
    let manifest = read_manifest(run)?;
    let mut lines = 0;
    let mut write = |line: serde_json::Value| -> Result<(), ReplayError> {
        writeln!(out, "{line}").map_err(|error| ReplayError::Manifest {
            path: run.to_owned(),
            reason: format!("cannot write the inspection: {error}"),
        })?;
        lines += 1;
        Ok(())
    };
    for (index, stage) in stages.iter().enumerate() {
        let Some(journal) = manifest.stage_journals.get(index) else {
            continue;
        };
        let mut records = stream_raw(&run.join(journal), 4096)?;
        for batch in records.by_ref() {
            for record in batch? {
                let body: serde_json::Value = serde_json::from_str(&(stage.describe)(&record.body))
                    .unwrap_or(serde_json::Value::Null);
                write(serde_json::json!({
                    "stage": &*stage.name,
                    "seq": record.seq,
                    "parents": record.parents.ids().iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "timestamp_micros": record.timestamp_micros,
                    "body": body,
                }))?;
            }
        }
        let truncated = records.recovery().and_then(|r| r.truncated.clone());
        if let Some((file, offset, bytes)) = truncated {
            write(serde_json::json!({
                "stage": &*stage.name,
                "torn_tail": { "file": file.display().to_string(), "offset": offset, "bytes": bytes },
            }))?;
        }
    }
    let (system, _) =
        crate::journal::disk::read_journal::<super::run::SystemEvent>(&run.join("system"))?;
    for record in system {
        write(serde_json::json!({
            "stage": "(system)",
            "seq": record.id.seq,
            "timestamp_micros": record.timestamp_micros,
            "body": record.body,
        }))?;
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::is_control;
    use crate::event::{Body, Control, ErrorKind, ErrorRecord};

    #[test]
    fn control_bodies_are_told_apart_by_their_encoded_tag() {
        let encode = |body: &Body<u32>| postcard::to_allocvec(body).unwrap();
        assert!(is_control(&encode(&Body::Control(Control::Eof))));
        assert!(is_control(&encode(&Body::Control(Control::Probe(3)))));
        assert!(!is_control(&encode(&Body::Data(2))));
        assert!(is_control(&encode(&Body::Snapshot(Box::default()))));
        let record = ErrorRecord {
            stage: "s".into(),
            kind: ErrorKind::Permanent,
            message: String::new(),
            input_id: None,
            input: None,
        };
        assert!(!is_control(&encode(&Body::Error(Box::new(record)))));
    }
}
