//! What the pipeline benchmarks share: the sink that adds up what it
//! receives, and the 2-worker runtime every subject runs on.

use obzenflow::stage::{Receipt, Sink, StageError};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::runtime::Runtime;

/// Adds up what it receives, so that no stage's work can be skipped.
pub(crate) struct Total(pub(crate) Arc<AtomicU64>);

impl Sink<u64> for Total {
    fn consume(&mut self, input: u64) -> impl Future<Output = Result<Receipt, StageError>> + Send {
        self.0.fetch_add(input, Ordering::Relaxed);
        std::future::ready(Ok(Receipt::delivered()))
    }
}

/// A multi-threaded runtime with 2 workers, as the machine has 2 cores.
pub(crate) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
