//! Parallel stages: 1,000,000 events through source -> work -> sink, where
//! the work is about 2 µs of CPU per event (a chain of multiply-rotate
//! rounds, calibrated at start; a real computation, not a sleep), on a
//! 2-worker runtime, each subject against its baselines in the same run:
//!
//! - a transform doing the work: today's plain stage, then `parallel: n`
//!   for each n of `PARALLEL_INSTANCES` (default `1,2`);
//! - a keyed stateful stage doing the same work in `accumulate` (1,024
//!   keys, emitted at the end): plain, then `parallel: n` keyed.
//!
//! It prints each subject's median time (of `RUNS` runs, default 5) and
//! events per second, the speed-up of n instances against one, and the
//! overhead of `parallel: 1` against the plain stage.
//!
//! Run: `cargo bench --bench parallel` (`WORK_NS=0`: no work, what the
//! flow itself costs per event; `JOURNALS=disk`: every stage's journal
//! also written to disk, fsynced per batch, under the temporary directory)
//! (on a larger machine: `PARALLEL_INSTANCES=1,2,4,8 WORKERS=8 cargo bench --bench parallel`)

use obzenflow::flow::FlowBuilder;
use obzenflow::stage::{
    Receipt, Sink, StageError, Stateful, StatefulExt, from_iter, map, parallel,
};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const EVENTS: u64 = 1_000_000;

/// Rounds of work per event, set once by `calibrate`.
static ROUNDS: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
fn work(n: u64) -> u64 {
    let mut x = n | 1;
    for round in 0..ROUNDS.load(Ordering::Relaxed) {
        x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(23) ^ round;
    }
    black_box(x)
}

/// Sets the rounds so that one call of `work` takes about `target` here
/// (0: no work, to measure what the flow itself costs).
fn calibrate(target: Duration) -> Duration {
    if target.is_zero() {
        ROUNDS.store(0, Ordering::Relaxed);
        return target;
    }
    ROUNDS.store(1_000, Ordering::Relaxed);
    let per_call = |calls: u64| {
        let started = Instant::now();
        for n in 0..calls {
            work(n);
        }
        started.elapsed() / u32::try_from(calls).unwrap_or(u32::MAX)
    };
    per_call(2_000);
    let thousand = (0..5).map(|_| per_call(20_000)).min().unwrap_or(target);
    let rounds = (1_000.0 * target.as_secs_f64() / thousand.as_secs_f64().max(1e-9)) as u64;
    ROUNDS.store(rounds.max(1), Ordering::Relaxed);
    (0..5).map(|_| per_call(20_000)).min().unwrap_or(target)
}

/// Adds up what it receives, so that no work can be skipped.
struct Total(Arc<AtomicU64>);

impl Sink<u64> for Total {
    async fn consume(&mut self, input: u64) -> Result<Receipt, StageError> {
        self.0.fetch_add(input, Ordering::Relaxed);
        Ok(Receipt::delivered())
    }
}

impl Sink<(u64, u64)> for Total {
    async fn consume(&mut self, input: (u64, u64)) -> Result<Receipt, StageError> {
        self.0.fetch_add(input.1, Ordering::Relaxed);
        Ok(Receipt::delivered())
    }
}

/// Folds each event's work into its key's total.
#[derive(Clone, Debug, Default)]
struct Crunch(BTreeMap<u64, u64>);

impl Stateful<u64, (u64, u64)> for Crunch {
    fn accumulate(&mut self, n: u64) -> Result<(), StageError> {
        let total = self.0.entry(n % 1_024).or_default();
        *total = total.wrapping_add(work(n));
        Ok(())
    }

    fn emit(&mut self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.0).into_iter().collect()
    }
}

/// A flow named `name`, with disk journals under a scratch directory if
/// `JOURNALS=disk` (the directory removed when the returned guard drops).
fn new_flow(name: &str) -> (FlowBuilder, Scratch) {
    let mut flow = FlowBuilder::new(name);
    let scratch = Scratch(
        (std::env::var("JOURNALS").as_deref() == Ok("disk")).then(|| {
            std::env::temp_dir().join(format!("obzenflow-parallel-{}", std::process::id()))
        }),
    );
    if let Some(dir) = &scratch.0 {
        flow.journals(obzenflow::flow::journals::disk(dir));
    }
    (flow, scratch)
}

/// A scratch directory, removed on drop.
struct Scratch(Option<std::path::PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The transform subjects: `None` is the plain stage.
async fn transform(instances: Option<usize>) -> u64 {
    let total = Arc::new(AtomicU64::new(0));
    let (mut flow, _scratch) = new_flow("work");
    let numbers = flow.source("numbers", from_iter(0..EVENTS));
    let handler = map(work);
    let worked = match instances {
        None => flow.transform("work", &numbers, handler),
        Some(n) => flow.transform_parallel("work", &numbers, handler, parallel(n)),
    };
    flow.sink("total", &worked, Total(Arc::clone(&total)));
    flow.build().expect("valid").run().await.expect("completes");
    total.load(Ordering::Relaxed)
}

/// The keyed stateful subjects: `None` is the plain stage.
async fn keyed(instances: Option<usize>) -> u64 {
    let total = Arc::new(AtomicU64::new(0));
    let (mut flow, _scratch) = new_flow("crunch");
    let numbers = flow.source("numbers", from_iter(0..EVENTS));
    let handler = Crunch::default().emit_on_eof();
    let crunched = match instances {
        None => flow.stateful_with("crunch", &numbers, handler),
        Some(n) => flow.stateful_parallel(
            "crunch",
            &numbers,
            handler,
            parallel(n).key_by(|n: &u64| n % 1_024),
        ),
    };
    flow.sink("total", &crunched, Total(Arc::clone(&total)));
    flow.build().expect("valid").run().await.expect("completes");
    total.load(Ordering::Relaxed)
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .filter(|&n| n > 0)
        .collect()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// The median of `runs` runs of `subject`, checking each gives `expected`.
fn median<F: std::future::Future<Output = u64>>(
    runtime: &tokio::runtime::Runtime,
    runs: usize,
    expected: &mut Option<u64>,
    subject: impl Fn() -> F,
) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let total = runtime.block_on(subject());
            let took = started.elapsed();
            assert_eq!(*expected.get_or_insert(total), total, "a subject lost work");
            took
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    if std::env::args().any(|arg| arg == "--test" || arg == "--list") {
        // `cargo test --benches`: nothing to check quickly.
        return;
    }
    let workers = env_number("WORKERS", 2);
    let runs = env_number("RUNS", 5).max(1);
    let counts = env_list("PARALLEL_INSTANCES", "1,2");
    let per_event = calibrate(Duration::from_nanos(env_number("WORK_NS", 2_000) as u64));
    println!(
        "parallel: {EVENTS} events, {per_event:?} of work each ({} rounds), {workers} runtime workers, {} cores, median of {runs} runs, {} journals",
        ROUNDS.load(Ordering::Relaxed),
        std::thread::available_parallelism().map_or(0, usize::from),
        std::env::var("JOURNALS").unwrap_or_else(|_| "memory".to_owned()),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let rate = |took: Duration| EVENTS as f64 / took.as_secs_f64();
    for (label, is_keyed) in [("transform", false), ("keyed stateful", true)] {
        let mut expected = None;
        let run = |instances: Option<usize>, expected: &mut Option<u64>| {
            median(&runtime, runs, expected, || async move {
                if is_keyed {
                    keyed(instances).await
                } else {
                    transform(instances).await
                }
            })
        };
        let plain = run(None, &mut expected);
        println!(
            "{label:<15} plain stage      {:>8.1} ms  {:>10.0} events/s",
            plain.as_secs_f64() * 1e3,
            rate(plain)
        );
        let mut one = None;
        for &count in &counts {
            let took = run(Some(count), &mut expected);
            let one = *one.get_or_insert(took);
            println!(
                "{label:<15} parallel: {count:<6} {:>8.1} ms  {:>10.0} events/s  {:.2}x parallel: 1{}",
                took.as_secs_f64() * 1e3,
                rate(took),
                one.as_secs_f64() / took.as_secs_f64(),
                if count == 1 {
                    format!(
                        " (overhead against the plain stage: {:.3}x)",
                        took.as_secs_f64() / plain.as_secs_f64()
                    )
                } else {
                    String::new()
                }
            );
        }
    }
}
