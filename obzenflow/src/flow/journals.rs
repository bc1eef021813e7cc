//! Where a flow's journals live: what the `journals:` section of `flow!` (and
//! [`FlowBuilder::journals`](super::FlowBuilder::journals)) takes.
//!
//! `memory()` keeps journals in memory only. `disk(base)` also writes every
//! stage's journal durably under `base/<flow>/<run id>/`, with a manifest and
//! a system journal, so that the run can be inspected, replayed and verified.

use crate::journal::{DiskJournalOptions, FsyncPolicy, JournalOptions};
use std::path::PathBuf;
use std::time::Duration;

/// Journal settings for a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Journals {
    pub(crate) memory: JournalOptions,
    pub(crate) disk: Option<(PathBuf, DiskJournalOptions)>,
    pub(crate) snapshots: Snapshots,
}

/// When a stateful stage with a disk journal journals its state, besides
/// with every batch it emits in: after so many inputs, or so much time
/// with new inputs, whichever comes first (see
/// [`Journals::snapshot_every`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshots {
    pub(crate) every_inputs: u64,
    pub(crate) every: Duration,
}

impl Default for Snapshots {
    /// Every 100,000 inputs or 10 seconds.
    fn default() -> Self {
        Snapshots {
            every_inputs: 100_000,
            every: Duration::from_secs(10),
        }
    }
}

/// Memory journals with the default window.
pub fn memory() -> Journals {
    Journals {
        memory: JournalOptions::default(),
        disk: None,
        snapshots: Snapshots::default(),
    }
}

/// The window of each edge with disk journals, unless set: wider than with
/// memory journals, because a stage's journal thread writes and fsyncs its
/// batches in groups of up to a quarter of the window, and readers wait for
/// that fsync; a wider window gives larger groups and fewer fsyncs, and
/// costs memory. BENCHMARKS.md has the widths measured and what each costs.
pub const DISK_WINDOW: usize = 128 * 1024;

/// Memory journals between stages, and every stage's output written durably
/// under `base` (one directory per run), fsynced per batch by default. Each
/// edge's window is [`DISK_WINDOW`] unless set with [`Journals::capacity`].
pub fn disk(base: impl Into<PathBuf>) -> Journals {
    Journals {
        memory: JournalOptions {
            capacity: DISK_WINDOW,
            ..JournalOptions::default()
        },
        disk: Some((base.into(), DiskJournalOptions::default())),
        snapshots: Snapshots::default(),
    }
}

impl Journals {
    /// How many entries a writer may be ahead of its slowest reader.
    pub fn capacity(mut self, entries: usize) -> Self {
        self.memory.capacity = entries.max(1);
        self
    }

    /// How many bytes the entries a writer is ahead of its slowest reader
    /// may take (estimated; see [`JournalOptions::capacity_bytes`]), and so
    /// how far a stage's journal thread may fall behind, with disk journals.
    /// [`WINDOW_BYTES`](crate::journal::WINDOW_BYTES) unless set.
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
        self.memory.capacity_bytes = bytes.max(1);
        self
    }

    /// Keep every entry in memory (for tests, replay and verification).
    pub fn retain_all(mut self) -> Self {
        self.memory.retain_all = true;
        self
    }

    /// When disk journals fsync (see [`FsyncPolicy`]).
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        if let Some((_, options)) = &mut self.disk {
            options.fsync = policy;
        }
        self
    }

    /// How often a stateful stage journals its state besides with every
    /// batch it emits in (what a resumed run restores, then folds the
    /// inputs since): after `inputs` inputs, or `interval` with new inputs.
    /// Fewer snapshots cost less while running and more folding when
    /// resuming.
    pub fn snapshot_every(mut self, inputs: u64, interval: Duration) -> Self {
        self.snapshots = Snapshots {
            every_inputs: inputs.max(1),
            every: interval,
        };
        self
    }

    /// The size at which a disk journal starts a new segment file.
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        if let Some((_, options)) = &mut self.disk {
            options.segment_bytes = bytes.max(1);
        }
        self
    }
}

impl From<JournalOptions> for Journals {
    fn from(memory: JournalOptions) -> Self {
        Journals {
            memory,
            disk: None,
            snapshots: Snapshots::default(),
        }
    }
}
