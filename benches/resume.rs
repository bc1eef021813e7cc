//! Resume and snapshots on the flagship (the bundled 336,776 rows, durable
//! journals, fsync per batch), each against its baseline in the same run:
//!
//! - an uninterrupted run, against a run interrupted when its source had
//!   read half of the file and then resumed: the time from the resume's
//!   start to the first new record its source journals, and to its end
//!   (the resume reopens and reads every journal, reads the file again to
//!   its position, folds the inputs since the tally's last snapshot, and
//!   finishes the run);
//! - the flagship with the default snapshots (every 100,000 inputs or 10
//!   seconds; its tally's state is every delay seen, up to 2.7 MB), against
//!   the same with none but those it must write when it emits.
//!
//! Each figure is the median of several runs. The interruption drops the
//! runtime that runs the flow (its tasks vanish mid-work; the manifest is
//! then made to say the run never ended, as after a SIGKILL).
//!
//! Run: `cargo bench --bench resume`

#[allow(dead_code)]
#[path = "../examples/flight_delays/flights.rs"]
mod flights;

use flights::CarrierDelays;
use obzenflow::flow::FlowHandle;
use obzenflow::flow::journals::{Journals, disk};
use obzenflow::flow::resume::ResumeOptions;
use obzenflow::stage::{MAX_LINE_BYTES, collect};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROWS: u64 = 336_776;
const RUNS: usize = 7;

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/nycflights13")
        .join(file)
}

fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("resume-bench")
}

/// The flights file the flagship reads: the bundled gzipped one, or (with
/// `PLAIN` set) a decompressed copy, which a resumed source seeks in
/// rather than decompressing up to its position.
static PLAIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn flights_file() -> PathBuf {
    if PLAIN.load(std::sync::atomic::Ordering::Relaxed) {
        let plain = scratch().join("flights.csv");
        if !plain.exists() {
            let gz = std::fs::File::open(data("flights.csv.gz")).expect("the bundled flights");
            let mut decoded = flate2::read::MultiGzDecoder::new(gz);
            let mut out = std::fs::File::create(&plain).expect("a scratch file");
            std::io::copy(&mut decoded, &mut out).expect("decompressed");
        }
        plain
    } else {
        data("flights.csv.gz")
    }
}

fn flagship(journals: Journals) -> FlowHandle {
    flights::flow(
        journals,
        flights::read_flights(flights_file(), MAX_LINE_BYTES),
        obzenflow::stage::csv::read(data("airlines.csv")),
        obzenflow::stage::csv::write(scratch().join("delays.csv")),
        collect::<CarrierDelays>().0,
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn journals() -> Journals {
    disk(scratch().join("journals"))
}

fn fresh() {
    let _ = std::fs::remove_dir_all(scratch().join("journals"));
    std::fs::create_dir_all(scratch()).expect("a scratch directory");
}

/// One uninterrupted run with `journals`.
fn whole(journals: Journals) -> Duration {
    fresh();
    let started = Instant::now();
    let report = runtime()
        .block_on(flagship(journals).run())
        .expect("the flow completes");
    let spent = started.elapsed();
    assert_eq!(report.stage("parsed").map(|s| s.events_out), Some(ROWS));
    spent
}

/// A run interrupted once its source has read `at` rows; its directory.
fn interrupted(at: u64) -> PathBuf {
    fresh();
    let runtime = runtime();
    let run = runtime.block_on(async {
        let mut flow = flagship(journals());
        flow.start().expect("the flow starts");
        while flow.report().stage("flights").map_or(0, |s| s.events_out) < at {
            tokio::task::yield_now().await;
        }
        flow.report().run_dir.or_else(|| {
            let runs = scratch().join("journals/flight-delays");
            std::fs::read_dir(runs).ok()?.next()?.ok().map(|e| e.path())
        })
    });
    drop(runtime);
    let run = run.expect("a run directory");
    let path = run.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the manifest"))
            .expect("a manifest");
    manifest["ended_at"] = serde_json::Value::Null;
    manifest["status"] = "running".into();
    manifest["stage_records"] = serde_json::Value::Null;
    manifest["system_records"] = serde_json::Value::Null;
    std::fs::write(&path, manifest.to_string()).expect("the manifest written");
    run
}

/// Resumes `run`: the time to the first new record of the source, and to the end.
fn resumed(run: &Path) -> (Duration, Duration) {
    runtime().block_on(async {
        let started = Instant::now();
        let mut flow = flagship(journals());
        flow.resume_from(run, ResumeOptions::default())
            .expect("the run resumes");
        flow.start().expect("the resume starts");
        let before = flow.report().stage("flights").map_or(0, |s| s.events_out);
        let mut first = None;
        let ended = flow.control();
        while first.is_none() && !ended.state().is_terminal() {
            if flow.report().stage("flights").map_or(0, |s| s.events_out) > before {
                first = Some(started.elapsed());
            }
            tokio::task::yield_now().await;
        }
        let report = flow.wait().await.expect("the resumed run completes");
        assert_eq!(report.stage("parsed").map(|s| s.events_out), Some(ROWS));
        (first.unwrap_or_default(), started.elapsed())
    })
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn main() {
    if std::env::args().any(|arg| arg == "--test") {
        // `cargo test --benches`: one pass of each, no figures.
        whole(journals());
        let run = interrupted(ROWS / 2);
        resumed(&run);
        return;
    }
    std::fs::create_dir_all(scratch()).expect("a scratch directory");
    for (input, plain) in [("gzipped", false), ("plain", true)] {
        PLAIN.store(plain, std::sync::atomic::Ordering::Relaxed);
        let mut full = Vec::new();
        let mut first = Vec::new();
        let mut resume = Vec::new();
        for _ in 0..RUNS {
            full.push(whole(journals()));
            let run = interrupted(ROWS / 2);
            let (to_first, to_end) = resumed(&run);
            first.push(to_first);
            resume.push(to_end);
        }
        let (full, first, resume) = (median(full), median(first), median(resume));
        println!(
            "resume/{input:<8} uninterrupted_run          {:>8.1} ms (median of {RUNS})",
            ms(full)
        );
        println!(
            "resume/{input:<8} from_half_to_first_record  {:>8.1} ms",
            ms(first)
        );
        println!(
            "resume/{input:<8} from_half_to_end           {:>8.1} ms  ratio {:.2}x of an uninterrupted run (goal: at most 0.6x)",
            ms(resume),
            resume.as_secs_f64() / full.as_secs_f64()
        );
    }
    PLAIN.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..RUNS {
        with.push(whole(journals()));
        without.push(whole(
            journals().snapshot_every(u64::MAX, Duration::from_secs(u64::MAX / 4)),
        ));
    }
    let (with, without) = (median(with), median(without));
    println!(
        "snapshots/default                 {:>8.1} ms  ratio {:.3}x of none (goal: within 1.1x)",
        ms(with),
        with.as_secs_f64() / without.as_secs_f64()
    );
    println!("snapshots/none                    {:>8.1} ms", ms(without));
    fresh();
}
