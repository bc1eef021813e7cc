//! Bounded memory: 10,000,000 events from a fast source into a sink about ten
//! times slower, with memory journals. The writer window on every edge keeps
//! the backlog bounded, so the process's peak RSS stays flat however long the
//! source runs ahead. Prints the peak RSS against the process's RSS before
//! the flow (the baseline, same run) and the 200 MB budget.
//!
//! Then the same shape with 16 KiB records (JSON documents, log lines with
//! context), 40,000 and 160,000 of them, with memory and with disk
//! journals, each in a process of its own so that each peak is its own: the
//! edge windows hold bytes as well as entries, so the peak does not grow
//! with the input.
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

/// A sink slower than the source, for records of any size.
struct SlowRecords;

impl Sink<String> for SlowRecords {
    fn consume(
        &mut self,
        input: String,
    ) -> impl Future<Output = Result<Receipt, StageError>> + Send {
        let mut spin = input.len() as u64;
        for _ in 0..20_000 {
            spin = black_box(spin.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        black_box(spin);
        std::future::ready(Ok(Receipt::delivered()))
    }
}

/// A runtime with 2 workers, as the machine has 2 cores.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `records` records of 16 KiB through source -> map -> slow sink, with
/// disk journals under a scratch directory if `durable`; prints the peak.
fn large_records(records: u64, durable: bool) {
    let runtime = runtime();
    let baseline = memory_mb("VmRSS:");
    let scratch =
        std::env::temp_dir().join(format!("obzenflow-memory-bound-{}", std::process::id()));
    let report = runtime.block_on(async {
        let mut flow = FlowBuilder::new("large-records");
        if durable {
            flow.journals(obzenflow::flow::journals::disk(&scratch));
        }
        let record = "x".repeat(16 << 10);
        let lines = flow.source(
            "lines",
            from_iter((0..records).map(move |_| record.clone())),
        );
        let trimmed = flow.transform("trimmed", &lines, map(|s: String| s));
        flow.sink("slow", &trimmed, SlowRecords);
        flow.build()
            .expect("a valid flow")
            .run()
            .await
            .expect("the flow completes")
    });
    assert_eq!(report.stage("slow").map(|s| s.events_in), Some(records));
    let _ = std::fs::remove_dir_all(&scratch);
    println!(
        "memory_bound: {records} records of 16 KiB, {} journals: peak RSS {:.0} MB, {baseline:.0} MB before the flow",
        if durable { "disk" } else { "memory" },
        memory_mb("VmHWM:")
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|arg| arg == "--test" || arg == "--list") {
        return;
    }
    if let Some(at) = args.iter().position(|arg| arg == "--large") {
        let records = args
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(40_000);
        let durable = args.iter().any(|arg| arg == "--disk");
        return large_records(records, durable);
    }
    for durable in [false, true] {
        for records in [40_000u64, 160_000] {
            let mut child = std::process::Command::new(&args[0]);
            child.args(["--large", &records.to_string()]);
            if durable {
                child.arg("--disk");
            }
            let status = child.status().expect("the benchmark runs itself");
            assert!(status.success());
        }
    }
    let runtime = runtime();
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
