//! What the `journals:` section of `flow!` takes: `memory()`, optionally
//! refined (`memory().capacity(4096).retain_all()`).

use crate::journal::JournalOptions;

/// Memory journals with the default window.
pub fn memory() -> JournalOptions {
    JournalOptions::default()
}

impl JournalOptions {
    /// How many entries a writer may be ahead of its slowest reader.
    pub fn capacity(mut self, entries: usize) -> Self {
        self.capacity = entries.max(1);
        self
    }

    /// Keep every entry (for tests, replay and verification).
    pub fn retain_all(mut self) -> Self {
        self.retain_all = true;
        self
    }
}
