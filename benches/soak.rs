//! Soak: an endless source at a fixed rate (50,000 events a second, 500
//! every 10 ms) through five stages with disk journals and the default
//! fsync policy, for 60 seconds (`SOAK_SECONDS` to change), then a graceful
//! stop. Every 10 ms it samples the largest lag of any edge (events written
//! and not yet read), every second the process's RSS. It reports RSS after the
//! warm-up (10 s) against RSS at the end and the largest of each, and checks
//! that every event is accounted for.
//!
//! Run: `cargo bench --bench soak`

#[path = "support/memory.rs"]
mod memory;

use memory::memory_mb;
use obzenflow::flow::FlowBuilder;
use obzenflow::flow::journals::disk;
use obzenflow::stage::{Poll, Receipt, Sink, Source, StageError, map, try_map};
use std::path::PathBuf;
use std::time::Duration;

const PER_TICK: u64 = 500;
const TICK: Duration = Duration::from_millis(10);

/// `PER_TICK` events every `TICK`, forever.
struct Metronome {
    next: u64,
    interval: tokio::time::Interval,
}

impl Source<u64> for Metronome {
    async fn next(&mut self) -> Result<Poll<u64>, StageError> {
        self.interval.tick().await;
        self.next += PER_TICK;
        Ok(Poll::Events((self.next - PER_TICK..self.next).collect()))
    }
}

/// Counts what it receives.
struct Count(u64);

impl Sink<(u64, u64)> for Count {
    async fn consume(&mut self, _input: (u64, u64)) -> Result<Receipt, StageError> {
        self.0 += 1;
        Ok(Receipt::delivered())
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "--test" || arg == "--list") {
        return;
    }
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("soak-journals");
    let _ = std::fs::remove_dir_all(&base);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let before = memory_mb("VmRSS:");
    let (samples, report) = runtime.block_on(async {
        let mut flow = FlowBuilder::new("soak");
        flow.journals(disk(&base));
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ticks = flow.source("ticks", Metronome { next: 0, interval });
        let keyed = flow.transform("keyed", &ticks, map(|n: u64| (n % 1_000, n)));
        // One event in 10,000 is "bad" and goes to the error lane.
        let checked = flow.transform(
            "checked",
            &keyed,
            try_map(|(key, n): (u64, u64)| {
                if n % 10_000 == 9_999 {
                    Err(format!("event {n} is bad"))
                } else {
                    Ok((key, n))
                }
            }),
        );
        let scaled = flow.transform("scaled", &checked, map(|(k, n): (u64, u64)| (k, n * 3)));
        flow.sink("count", &scaled, Count(0));
        let mut flow = flow.build().expect("a valid flow");
        flow.start().expect("it starts");
        let mut samples = Vec::new();
        // The lag every 10 ms (its largest in each second is reported), RSS
        // once a second.
        let mut clock = tokio::time::interval(Duration::from_millis(10));
        clock.tick().await;
        for second in 1..=seconds {
            let mut lag = 0;
            let mut produced = 0;
            for _ in 0..100 {
                clock.tick().await;
                let report = flow.report();
                let out = |name: &str| report.stage(name).map_or(0, |s| s.events_out);
                let read = |name: &str| report.stage(name).map_or(0, |s| s.events_in);
                lag = [
                    out("ticks") - read("keyed"),
                    out("keyed") - read("checked"),
                    out("checked") - read("scaled"),
                    out("scaled") - read("count"),
                ]
                .into_iter()
                .fold(lag, u64::max);
                produced = out("ticks");
            }
            samples.push((second, memory_mb("VmRSS:"), lag, produced));
        }
        let report = flow
            .stop_graceful(Duration::from_secs(30))
            .await
            .expect("it stops cleanly");
        (samples, report)
    });
    let produced = report.stage("ticks").map_or(0, |s| s.events_out);
    let delivered = report.stage("count").map_or(0, |s| s.events_out);
    assert_eq!(
        produced,
        delivered + report.errors.len() as u64,
        "every event delivered or in the error lane"
    );
    let on_disk = dir_bytes(&base) as f64 / 1e6;
    let _ = std::fs::remove_dir_all(&base);
    let warm_second = 10.min(seconds);
    let warm = samples
        .iter()
        .find(|(second, ..)| *second == warm_second)
        .map_or(f64::NAN, |s| s.1);
    let end = samples.last().map_or(f64::NAN, |s| s.1);
    let max_rss = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let max_lag = samples.iter().map(|s| s.2).max().unwrap_or(0);
    let late_lag = samples
        .iter()
        .filter(|(second, ..)| *second > seconds / 2)
        .map(|s| s.2)
        .max()
        .unwrap_or(0);
    for (second, rss, lag, produced) in &samples {
        if second % 10 == 0 || *second == 1 {
            println!(
                "soak: {second:>3} s: {produced:>9} events, RSS {rss:.1} MB, largest edge lag {lag}"
            );
        }
    }
    println!(
        "soak: {seconds} s, {produced} events ({:.0}/s), {delivered} delivered, {} in the error lane, {on_disk:.0} MB of journals",
        produced as f64 / seconds as f64,
        report.errors.len()
    );
    println!(
        "soak: RSS {before:.1} MB before, {warm:.1} MB at {warm_second} s, {end:.1} MB at the end (growth {:+.1} MB), {max_rss:.1} MB at most; \
         largest edge lag {max_lag} events ({late_lag} in the second half)",
        end - warm
    );
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|entry| match entry.metadata() {
                Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
                Ok(meta) => meta.len(),
                Err(_) => 0,
            })
            .sum()
    })
}
