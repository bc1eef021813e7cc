//! A run's directory: `base/<flow>/<run id>/` with `manifest.json`, one
//! journal per stage under `stages/`, and the system journal under `system/`.

use super::handle::FlowState;
use super::topology::Topology;
use crate::journal::disk::{create_private_dir, missing_dirs, sanitize_name, sync_dir};
use crate::journal::{DiskJournal, DiskJournalError, DiskJournalOptions, FsyncPolicy};
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The version of the run directory's layout and manifest. Version 2
/// records a failure as a [`StageFailure`](crate::supervise::StageFailure)
/// (version 1: as text), in the manifest and the system journal.
pub const MANIFEST_VERSION: u32 = 2;

/// What `manifest.json` says about a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The layout version ([`MANIFEST_VERSION`]).
    pub manifest_version: u32,
    /// The ObzenFlow version that wrote it.
    pub obzenflow_version: String,
    /// The flow's name.
    pub flow: String,
    /// The run's id (its directory name).
    pub run_id: String,
    /// When the run started (UTC, RFC 3339).
    pub started_at: String,
    /// When it ended, once it has.
    pub ended_at: Option<String>,
    /// `running`, or how it ended.
    pub status: String,
    /// The final state, once the run has ended.
    pub final_state: Option<FlowState>,
    /// The flow's stages and edges.
    pub topology: Topology,
    /// Each stage's journal directory, relative to the run directory, in stage order.
    pub stage_journals: Vec<String>,
    /// Once the run has ended: how many records each stage's journal holds,
    /// in stage order. A journal of an ended run that holds another count
    /// (a segment cut short, deleted or damaged) is corrupt.
    #[serde(default)]
    pub stage_records: Option<Vec<u64>>,
    /// Once the run has ended: how many records its system journal holds.
    #[serde(default)]
    pub system_records: Option<u64>,
    /// Each time the run was resumed after it was interrupted, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumptions: Vec<super::resume::Resumption>,
}

/// The identity of a run's system journal (see
/// [`DiskJournalOptions::identity`]): no stage's, whose are CRC32Cs of
/// `index:name`.
pub(crate) const SYSTEM_JOURNAL_IDENTITY: u32 = u32::MAX;

/// A lifecycle event in a run's system journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SystemEvent {
    /// The flow entered a state.
    Flow(FlowState),
    /// A stage ended.
    StageEnded {
        /// Its name.
        stage: String,
        /// How it ended.
        state: crate::supervise::StageState,
    },
}

/// The directory of one run.
#[derive(Debug)]
pub(crate) struct RunDir {
    pub(crate) path: PathBuf,
    pub(crate) options: DiskJournalOptions,
    pub(crate) manifest: Manifest,
    /// Directories that gained names when the run's directories were made,
    /// other than the run's own (fsynced with every manifest); `None` once
    /// they and the stage journals' directories are synced.
    unsynced: Option<Vec<PathBuf>>,
    /// The directories this run made, deepest first (removed by [`RunDir::remove`]).
    created: Vec<PathBuf>,
    /// A resumed run's directory, which holds what the interrupted run
    /// wrote: never removed.
    resumed: bool,
}

/// A new run's id: when it started (UTC), the process and a counter, so
/// that no two runs on a machine share one.
pub(crate) fn new_run_id() -> String {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}-{}",
        utc(SystemTime::now(), true),
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    )
}

impl RunDir {
    /// The run's id: its directory's name.
    pub(crate) fn id(&self) -> String {
        self.path
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
    }

    /// Creates `base/<flow>/<run id>/` owner-only.
    pub(crate) fn create(
        base: &Path,
        flow: &str,
        options: DiskJournalOptions,
    ) -> Result<Self, DiskJournalError> {
        let started = SystemTime::now();
        let run_id = new_run_id();
        let path = flow_dir(base, flow).join(&run_id);
        let stages = path.join("stages");
        let created = missing_dirs(&stages);
        let unsynced = match create_private_dir(&stages) {
            Ok(unsynced) => unsynced,
            Err(error) => {
                remove_empty(&created);
                return Err(error);
            }
        };
        Ok(RunDir {
            resumed: false,
            created,
            unsynced: Some(unsynced.into_iter().filter(|dir| *dir != path).collect()),
            path,
            options,
            manifest: Manifest {
                manifest_version: MANIFEST_VERSION,
                obzenflow_version: env!("CARGO_PKG_VERSION").to_owned(),
                flow: flow.to_owned(),
                run_id,
                started_at: utc(started, false),
                ended_at: None,
                status: "running".to_owned(),
                final_state: None,
                topology: Topology {
                    flow: flow.to_owned(),
                    stages: Vec::new(),
                    edges: Vec::new(),
                },
                stage_journals: Vec::new(),
                stage_records: None,
                system_records: None,
                resumptions: Vec::new(),
            },
        })
    }

    /// Opens the directory of the interrupted run in `path`, whose
    /// manifest is `manifest`, to resume it: its journals are reopened
    /// where they end, and nothing of it is ever removed.
    pub(crate) fn reopen(path: &Path, options: DiskJournalOptions, mut manifest: Manifest) -> Self {
        manifest.stage_journals.clear();
        manifest.status = "running".to_owned();
        RunDir {
            path: path.to_owned(),
            options,
            manifest,
            unsynced: None,
            created: Vec::new(),
            resumed: true,
        }
    }

    /// Removes the run's directory and every directory its creation made:
    /// for a run that failed to start, so that it leaves nothing behind.
    pub(crate) fn remove(self) {
        if self.resumed {
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
        remove_empty(&self.created);
    }

    /// Opens the journal of stage number `index` named `name`.
    pub(crate) fn stage_journal<T: crate::event::Payload>(
        &mut self,
        index: usize,
        name: &str,
        visit: impl FnMut(crate::journal::disk::Visited<'_, T>),
    ) -> Result<DiskJournal<T>, DiskJournalError> {
        let relative = format!("stages/{index:03}-{}", sanitize_name(name));
        let options = DiskJournalOptions {
            identity: crate::journal::disk::journal_identity(index, name),
            ..self.options
        };
        let (journal, _) = DiskJournal::open_visiting(&self.path.join(&relative), options, visit)?;
        self.manifest.stage_journals.push(relative);
        Ok(journal)
    }

    /// The system journal. Its events are fsynced when the run ends, before
    /// the manifest records the end (see [`RunDir::finish`]): a machine crash
    /// may lose those of a run that did not end, whose manifest says so.
    pub(crate) fn system_journal(&self) -> Result<DiskJournal<SystemEvent>, DiskJournalError> {
        let options = DiskJournalOptions {
            fsync: FsyncPolicy::Never,
            identity: SYSTEM_JOURNAL_IDENTITY,
            ..self.options
        };
        DiskJournal::open(&self.path.join("system"), options).map(|(journal, _)| journal)
    }

    /// Writes the manifest atomically (a temporary file, fsynced, renamed).
    /// The first time, the names of the run's directories and of the stage
    /// journals' directories are made durable first, so that a manifest
    /// never lists a journal a crash could lose.
    pub(crate) fn write_manifest(&mut self) -> Result<(), DiskJournalError> {
        if let Some(unsynced) = self.unsynced.take() {
            for dir in unsynced {
                sync_dir(&dir)?;
            }
            sync_dir(&self.path.join("stages"))?;
        }
        write_manifest(&self.path, &self.manifest)
    }

    /// Records the run's end in the manifest, with how many records each
    /// journal holds, once `system` (the system journal) is fsynced.
    pub(crate) fn finish(
        &mut self,
        system: &mut DiskJournal<SystemEvent>,
        state: &FlowState,
        stage_records: Vec<u64>,
        system_records: u64,
    ) -> Result<(), DiskJournalError> {
        system.sync()?;
        self.manifest.stage_records = Some(stage_records);
        self.manifest.system_records = Some(system_records);
        self.manifest.ended_at = Some(utc(SystemTime::now(), false));
        self.manifest.status = state.to_string();
        self.manifest.final_state = Some(state.clone());
        self.write_manifest()
    }
}

/// Where the runs of flow `flow` go under `base`: `base/<flow>/`.
pub(crate) fn flow_dir(base: &Path, flow: &str) -> PathBuf {
    base.join(sanitize_name(flow))
}

/// Removes each of `dirs` (deepest first) that exists and is empty.
fn remove_empty(dirs: &[PathBuf]) {
    for dir in dirs {
        let _ = fs::remove_dir(dir);
    }
}

pub(crate) fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), DiskJournalError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| DiskJournalError::Io { path, source }
    };
    let text = serde_json::to_string_pretty(manifest).unwrap_or_default();
    let temporary = dir.join("manifest.json.tmp");
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(io(&temporary))?;
    file.write_all(text.as_bytes()).map_err(io(&temporary))?;
    file.sync_all().map_err(io(&temporary))?;
    let target = dir.join("manifest.json");
    fs::rename(&temporary, &target).map_err(io(&target))?;
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

/// A UTC time as RFC 3339 (`2026-11-22T17:30:05Z`), or compact for file
/// names (`20261122T173005Z`).
pub(crate) fn utc(time: SystemTime, compact: bool) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    if compact {
        format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::utc;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn utc_dates_are_civil_dates() {
        assert_eq!(utc(UNIX_EPOCH, false), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_723);
        assert_eq!(utc(leap, false), "2000-02-29T01:02:03Z");
        assert_eq!(utc(leap, true), "20000229T010203Z");
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(1_798_761_599), false),
            "2026-12-31T23:59:59Z"
        );
    }
}
