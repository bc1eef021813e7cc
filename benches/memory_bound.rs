//! Bounded memory: 10,000,000 events from a fast source into a sink about ten
//! times slower, with memory journals. The writer window on every edge keeps
//! the backlog bounded, so the process's peak RSS stays flat however long the
//! source runs ahead. Prints the peak RSS against the process's RSS before
//! the flow (the baseline, same run) and the 200 MB budget.
//!
//! Run: `cargo bench --bench memory_bound`

#[path = "support/memory.rs"]
mod memory;

use memory::memory_mb;
use obzenflow::flow::FlowBuilder;
use obzenflow::stage::{Receipt, Sink, StageError, from_iter, map};
use std::future::Future;
use std::hint::black_box;
use std::time::Instant;

const EVENTS: u64 = 10_000_000;

/// About ten times the per-event cost of the source and the map.
struct SlowSink(u64);

impl Sink<u64> for SlowSink {
    fn consume(&mut self, input: u64) -> impl Future<Output = Result<Receipt, StageError>> + Send {
        let mut spin = input;
        for _ in 0..900 {
            spin = black_box(spin.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        self.0 = self.0.wrapping_add(spin);
        std::future::ready(Ok(Receipt::delivered()))
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "--test" || arg == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let baseline = memory_mb("VmRSS:");
    let started = Instant::now();
    let report = runtime.block_on(async {
        let mut flow = FlowBuilder::new("memory-bound");
        let numbers = flow.source("numbers", from_iter(0..EVENTS));
        let next = flow.transform("next", &numbers, map(|n: u64| n + 1));
        flow.sink("slow", &next, SlowSink(0));
        flow.build()
            .expect("a valid flow")
            .run()
            .await
            .expect("the flow completes")
    });
    let elapsed = started.elapsed();
    let peak = memory_mb("VmHWM:");
    assert_eq!(report.stage("slow").map(|s| s.events_in), Some(EVENTS));
    let sink_busy = report.stage("slow").map_or(0.0, |s| s.busy.as_secs_f64());
    let source_busy = report
        .stage("numbers")
        .map_or(0.0, |s| s.busy.as_secs_f64());
    println!(
        "memory_bound: {EVENTS} events in {:.1} s (sink busy {:.1} s, source busy {:.1} s): \
         peak RSS {peak:.0} MB, {baseline:.0} MB before the flow (budget: 200 MB)",
        elapsed.as_secs_f64(),
        sink_busy,
        source_busy
    );
}
