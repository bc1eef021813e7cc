//! A flow is a plan until it starts. [`FlowBuilder`](super::FlowBuilder)
//! (and so `flow!`) records the stages, edges and journals with no side
//! effects; starting the flow materializes the plan: the run directory, each
//! stage's disk journal and journal thread, then the stage tasks. Anything
//! the environment refuses is a [`StartError`] naming the path and the
//! cause, and whatever was already made is torn down (journal threads
//! joined, the new run directory removed), so a flow that fails to start
//! leaves nothing behind.
//!
//! The same plan serves a replay (materialized over an archive) and, later,
//! a share of a flow (one partition, one process's stages).

use super::handle::StageInfo;
use super::run::{RunDir, SystemEvent};
use super::topology::Topology;
use crate::journal::{DiskJournal, DiskJournalOptions, JournalFailure};
use crate::supervise::{Completion, ErrorLane, RunMode, StageKind};
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A stage's task, made but not spawned.
pub(crate) type StageTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a stage's factory is given when the flow starts.
pub(crate) struct Materials<'a> {
    /// The run directory, for flows with disk journals.
    pub(crate) run: Option<&'a mut RunDir>,
    /// How this stage runs (a replay, a dry run).
    pub(crate) mode: RunMode,
    /// The resume under way, for a resumed run.
    pub(crate) resume: Option<&'a mut super::resume::ResumePlan>,
}

/// Makes a stage's body, disk journal and journal thread, and returns its task.
pub(crate) type StageFactory =
    Box<dyn FnOnce(&mut Materials<'_>) -> Result<StageTask, StartError> + Send>;

/// A built flow, not yet started.
pub(crate) struct Pipeline {
    /// Every edge's read counter, for the contracts checked at the end.
    pub(crate) contracts: Vec<super::contract::EdgeContract>,
    /// Where the run directory goes, for flows with disk journals.
    pub(crate) disk: Option<(PathBuf, DiskJournalOptions)>,
    pub(crate) topology: Topology,
    pub(crate) name: Arc<str>,
    pub(crate) stages: Arc<[StageInfo]>,
    pub(crate) factories: Vec<StageFactory>,
    pub(crate) completions: mpsc::UnboundedReceiver<Completion>,
    pub(crate) errors: ErrorLane,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.name)
            .field("stages", &self.stages.len())
            .finish_non_exhaustive()
    }
}

/// A replay the flow was asked for: the archive and each stage's journal in it.
#[derive(Clone, Debug)]
pub(crate) struct ReplayPlan {
    pub(crate) archive: PathBuf,
    pub(crate) stage_journals: Vec<String>,
    pub(crate) repeat_sink_effects: bool,
    /// The archived run never recorded an end: its sources replay what
    /// reached their journals, which need not be what they declared.
    pub(crate) incomplete: bool,
}

/// A materialized flow: its stage tasks and, with disk journals, its run
/// directory and system journal.
pub(crate) struct Materialized {
    pub(crate) tasks: Vec<StageTask>,
    pub(crate) run: Option<(RunDir, DiskJournal<SystemEvent>)>,
}

/// Materializes `pipeline`'s stages (the factories are consumed whatever
/// happens); on failure, tears down what was made.
pub(crate) fn materialize(
    name: &str,
    disk: Option<(PathBuf, DiskJournalOptions)>,
    topology: &Topology,
    stages: &[StageInfo],
    factories: Vec<StageFactory>,
    replay: Option<&ReplayPlan>,
    mut resume: Option<super::resume::ResumePlan>,
) -> Result<Materialized, StartError> {
    let mut run = match (disk, &resume) {
        (Some((_, options)), Some(resume)) => Some(RunDir::reopen(
            &resume.archive,
            options,
            resume.manifest.clone(),
        )),
        (Some((base, options)), None) => {
            Some(RunDir::create(&base, name, options).map_err(|error| {
                StartError::RunDirectory {
                    base: base.clone(),
                    failure: JournalFailure::from(&error),
                }
            })?)
        }
        (None, _) => None,
    };
    let made = make_stages(
        run.as_mut(),
        topology,
        stages,
        factories,
        replay,
        resume.as_mut(),
    );
    if let (Ok(_), Some(dir), Some(resume)) = (&made, &mut run, &resume) {
        dir.manifest.resumptions.push(super::resume::Resumption {
            at: super::run::utc(std::time::SystemTime::now(), false),
            stage_records: resume
                .facts
                .iter()
                .map(|facts| facts.as_ref().map_or(0, |facts| facts.records))
                .collect(),
            positions: resume
                .facts
                .iter()
                .zip(stages)
                .map(|(facts, stage)| match (facts, stage.kind) {
                    (Some(facts), StageKind::Source) if !facts.ended => facts.position,
                    _ => None,
                })
                .collect(),
        });
    }
    let tasks = match made {
        Ok(tasks) => tasks,
        Err(error) => {
            // The tasks made so far were dropped, and with them their
            // journal threads (each joined as its writer drops); what this
            // start created on disk goes too.
            if let Some(dir) = run {
                dir.remove();
            }
            return Err(error);
        }
    };
    let Some(mut dir) = run else {
        return Ok(Materialized { tasks, run: None });
    };
    let system = dir
        .write_manifest()
        .map_err(|error| StartError::Manifest {
            failure: JournalFailure::from(&error),
        })
        .and_then(|()| {
            dir.system_journal()
                .map_err(|error| StartError::SystemJournal {
                    failure: JournalFailure::from(&error),
                })
        });
    match system {
        Ok(system) => Ok(Materialized {
            tasks,
            run: Some((dir, system)),
        }),
        Err(error) => {
            drop(tasks);
            dir.remove();
            Err(error)
        }
    }
}

fn make_stages(
    mut run: Option<&mut RunDir>,
    topology: &Topology,
    stages: &[StageInfo],
    factories: Vec<StageFactory>,
    replay: Option<&ReplayPlan>,
    mut resume: Option<&mut super::resume::ResumePlan>,
) -> Result<Vec<StageTask>, StartError> {
    if let Some(dir) = &mut run {
        dir.manifest.topology = topology.clone();
    }
    let run_id: Arc<str> = match &run {
        Some(dir) => dir.id().into(),
        None => super::run::new_run_id().into(),
    };
    let mut tasks = Vec::with_capacity(factories.len());
    for ((index, stage), factory) in stages.iter().enumerate().zip(factories) {
        let mode = RunMode {
            run: Arc::clone(&run_id),
            replaying: replay.is_some(),
            archived_journal: match (replay, stage.kind) {
                (Some(replay), StageKind::Source) => replay
                    .stage_journals
                    .get(index)
                    .map(|journal| replay.archive.join(journal)),
                _ => None,
            },
            dry_run: replay.is_some_and(|replay| !replay.repeat_sink_effects),
            resume: None,
        };
        let mut materials = Materials {
            run: run.as_deref_mut(),
            mode,
            resume: resume.as_deref_mut(),
        };
        tasks.push(factory(&mut materials)?);
    }
    Ok(tasks)
}

/// What the environment refused when a flow started: each names the path
/// (in its [`JournalFailure`]) and the cause.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The run directory could not be made under `base`.
    #[error("cannot create its run directory under {}: {failure}", base.display())]
    RunDirectory {
        /// The base directory given to `disk(..)`.
        base: PathBuf,
        /// What failed, and where.
        failure: JournalFailure,
    },
    /// A stage's disk journal could not be opened.
    #[error("stage `{stage}` cannot open its disk journal: {failure}")]
    StageJournal {
        /// The stage.
        stage: String,
        /// What failed, and where.
        failure: JournalFailure,
    },
    /// A stage's journal thread could not be started.
    #[error("stage `{stage}` cannot start its journal thread: {failure}")]
    JournalThread {
        /// The stage.
        stage: String,
        /// What failed.
        failure: JournalFailure,
    },
    /// The run's manifest could not be written.
    #[error("cannot write its manifest: {failure}")]
    Manifest {
        /// What failed, and where.
        failure: JournalFailure,
    },
    /// The run's system journal could not be opened.
    #[error("cannot open its system journal: {failure}")]
    SystemJournal {
        /// What failed, and where.
        failure: JournalFailure,
    },
    /// A stage of a resumed run cannot continue where it stopped.
    #[error("stage `{stage}` cannot resume: {reason}")]
    Resume {
        /// The stage.
        stage: String,
        /// Why.
        reason: String,
    },
}

impl StartError {
    /// What failed, where, and the kind of I/O error.
    pub fn failure(&self) -> &JournalFailure {
        static NONE: std::sync::OnceLock<JournalFailure> = std::sync::OnceLock::new();
        match self {
            StartError::Resume { .. } => NONE.get_or_init(|| JournalFailure {
                path: None,
                offset: None,
                kind: std::io::ErrorKind::InvalidInput,
                message: String::new(),
            }),
            StartError::RunDirectory { failure, .. }
            | StartError::StageJournal { failure, .. }
            | StartError::JournalThread { failure, .. }
            | StartError::Manifest { failure }
            | StartError::SystemJournal { failure } => failure,
        }
    }

    /// The file or directory the environment refused, where known.
    pub fn path(&self) -> Option<&Path> {
        self.failure().path.as_deref()
    }

    /// The kind of I/O error.
    pub fn kind(&self) -> std::io::ErrorKind {
        self.failure().kind
    }
}

/// What a flow will make when it starts, to inspect before running it.
///
/// ```
/// use obzenflow::flow::{FlowBuilder, journals};
/// use obzenflow::stage::{collect, from_iter, map};
///
/// let mut flow = FlowBuilder::new("double");
/// flow.journals(journals::disk("target/obzenflow-doc-plan"));
/// let numbers = flow.source("numbers", from_iter(1..=3u32));
/// let doubled = flow.transform("doubled", &numbers, map(|x: u32| x * 2));
/// flow.sink("out", &doubled, collect().0);
/// let flow = flow.build().unwrap();
/// let plan = flow.plan();
/// assert_eq!(plan.journals.len(), 3);
/// assert!(plan.journals.iter().all(|journal| journal.durable));
/// assert_eq!(plan.run_base.as_deref(), Some("target/obzenflow-doc-plan/double".as_ref()));
/// // Nothing is made before the flow starts.
/// assert!(!std::path::Path::new("target/obzenflow-doc-plan/double").exists());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FlowPlan {
    /// The stages and edges.
    pub topology: Topology,
    /// Each stage's journal, in stage order.
    pub journals: Vec<StageJournalPlan>,
    /// The directory the run's own directory will be made in, with disk journals.
    pub run_base: Option<PathBuf>,
    /// The archive the flow will replay, if it was asked to.
    pub replays: Option<PathBuf>,
}

/// One stage's journal in a [`FlowPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StageJournalPlan {
    /// The stage.
    pub stage: String,
    /// How many entries its writer may be ahead of its slowest reader.
    pub capacity: usize,
    /// How many bytes those entries may take (estimated).
    pub capacity_bytes: usize,
    /// Whether it is also written to disk, in the run directory.
    pub durable: bool,
}

impl FlowPlan {
    pub(crate) fn new(
        topology: &Topology,
        stages: &[StageInfo],
        disk: Option<&Path>,
        replays: Option<&Path>,
        flow: &str,
    ) -> Self {
        FlowPlan {
            topology: topology.clone(),
            journals: stages
                .iter()
                .map(|stage| StageJournalPlan {
                    stage: stage.name.to_string(),
                    capacity: stage.capacity,
                    capacity_bytes: stage.capacity_bytes,
                    durable: stage.durable,
                })
                .collect(),
            run_base: disk.map(|base| super::run::flow_dir(base, flow)),
            replays: replays.map(Path::to_owned),
        }
    }
}
