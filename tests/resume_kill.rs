//! The resume kill test: the flagship's flow on the real data (with a
//! deduplicating ledger sink besides its own, `tests/bin/resume_child.rs`)
//! is SIGKILLed at 100 random moments spread over its run (10 in its first
//! 5%, 10 in its last 5%), and each killed run is resumed with
//! `--resume-from`; 20 of the resumes are killed too and resumed again.
//! Every final result must be byte for byte the uninterrupted run's, the
//! ledger must hold each flight once (by its event's delivery key), and
//! every resumed archive must replay and verify with 0 differences. The
//! last line printed gives the counts.
//!
//! The kill moments are wall-clock times after the child started: what is
//! under test is a kill at any moment, so this test (as `tests/crash.rs`)
//! sleeps to place them. The seed is printed, and `RESUME_KILL_SEED`
//! replays a sequence.

#![cfg(unix)]

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KILLS: usize = 100;
const KILLED_AGAIN: usize = 20;
const FLIGHTS: usize = 336_776;

struct Random(u64);

impl Random {
    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One run of the child in `dir` (its journals, ledger and CSV file there).
fn child(dir: &Path, args: &[&str], instances: usize) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_resume_child"));
    command
        .args(["--journal-dir", &dir.join("journals").to_string_lossy()])
        .args(args)
        .env("INSTANCES", instances.to_string())
        .env("LEDGER", dir.join("ledger.tsv"))
        .env("OBZENFLOW_OUT", dir.join("delays.csv"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// Waits up to `wait` for `child` to end; kills it (SIGKILL) if it has
/// not. Whether it was killed.
fn kill_after(mut child: Child, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(2)));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// The one run directory of the child's flow under `dir`, if it made one.
fn run_dir(dir: &Path) -> Option<PathBuf> {
    let runs = dir.join("journals/flight-delays-ledger");
    let mut found: Vec<PathBuf> = std::fs::read_dir(runs)
        .ok()?
        .map(|e| e.unwrap().path())
        .collect();
    assert!(found.len() <= 1, "{found:?}");
    found.pop()
}

/// Whether the run had started: its manifest is written before any stage
/// runs (a run killed before has nothing to resume, and says so).
fn has_started(run: &Path) -> bool {
    run.join("manifest.json").exists()
}

fn ended(run: &Path) -> bool {
    obzenflow::flow::replay::read_manifest(run).is_ok_and(|manifest| manifest.ended_at.is_some())
}

/// The ledger's flights (the JSON after each key), sorted; panics if a
/// key appears twice.
fn ledger(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("ledger.tsv")).unwrap_or_default();
    let mut keys = HashSet::new();
    let mut flights = Vec::new();
    for line in text.lines() {
        let (key, flight) = line.split_once('\t').unwrap();
        assert!(keys.insert(key.to_owned()), "the ledger holds {key} twice");
        flights.push(flight.to_owned());
    }
    flights.sort_unstable();
    flights
}

fn resume(dir: &Path, run: &Path, instances: usize) -> Child {
    child(dir, &["--resume-from", &run.to_string_lossy()], instances)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_hundred_kills_each_resume_to_the_uninterrupted_result() {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("resume-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let seed = std::env::var("RESUME_KILL_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("seed {seed} (RESUME_KILL_SEED={seed} repeats this sequence)");
    let mut random = Random(seed);

    // The uninterrupted run: its table, its ledger, and how long it takes;
    // and its table with the parse and tally stages as 2 instances each
    // (the tally's rows then come instance by instance).
    let whole = base.join("whole");
    let started = Instant::now();
    let out = child(&whole, &[], 1).output().unwrap();
    let duration = started.elapsed();
    assert!(out.status.success());
    let table = std::fs::read(whole.join("delays.csv")).unwrap();
    let flights = ledger(&whole);
    assert_eq!(flights.len(), FLIGHTS);
    println!("an uninterrupted run takes {duration:?}");
    let whole_parallel = base.join("whole-parallel");
    assert!(child(&whole_parallel, &[], 2).status().unwrap().success());
    let parallel_table = std::fs::read(whole_parallel.join("delays.csv")).unwrap();
    assert_eq!(ledger(&whole_parallel), flights);
    let sorted = |bytes: &[u8]| {
        let mut lines: Vec<String> = String::from_utf8_lossy(bytes)
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&parallel_table), sorted(&table));

    let (mut kills, mut early, mut late, mut resumes, mut killed_again) = (0, 0, 0, 0, 0);
    let (mut identical, mut verified, mut missed, mut parallel) = (0, 0, 0, 0);
    let mut attempt = 0;
    while kills < KILLS {
        attempt += 1;
        assert!(attempt < 3 * KILLS, "{missed} runs ended before their kill");
        // The first ten in the first 5% of a run, the next ten in the last
        // 5% (shrinking if runs end first), the rest anywhere.
        let (from, to) = match kills {
            0..10 => (0.0, 0.05),
            10..20 => {
                let shrink = 0.97f64.powi(missed);
                (0.95 * shrink, shrink)
            }
            _ => (0.0, 1.0),
        };
        let moment = duration.mul_f64(from + (to - from) * random.unit());
        let dir = base.join(format!("kill-{kills:03}"));
        let _ = std::fs::remove_dir_all(&dir);
        // Every third kill with parallel stages.
        let instances = if kills % 3 == 2 { 2 } else { 1 };
        let killed = kill_after(child(&dir, &[], instances).spawn().unwrap(), moment);
        let run = run_dir(&dir);
        let Some(run) = run.filter(|run| killed && has_started(run) && !ended(run)) else {
            // It ended, or had not started (made its run directory and
            // written its manifest), before the kill.
            missed += 1;
            continue;
        };
        kills += 1;
        match kills {
            1..=10 => early += 1,
            11..=20 => late += 1,
            _ => {}
        }
        // One resume in four, spread over the test, is killed too (and
        // more towards the end if some ended before their kill).
        let wanted = KILLED_AGAIN - killed_again.min(KILLED_AGAIN);
        if wanted > 0 && (kills % 4 == 0 || KILLS - kills < 2 * wanted) {
            let moment = duration.mul_f64(0.4 * random.unit());
            resumes += 1;
            if kill_after(resume(&dir, &run, instances), moment) && !ended(&run) {
                killed_again += 1;
            }
        }
        if !ended(&run) {
            resumes += 1;
            let out = resume(&dir, &run, instances).wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "resume of kill {kills} ({moment:?}) failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The same table, byte for byte; each flight once in the ledger.
        let resumed = std::fs::read(dir.join("delays.csv")).unwrap();
        let table = if instances == 1 {
            &table
        } else {
            &parallel_table
        };
        assert!(
            resumed == *table,
            "kill {kills} ({moment:?}): the table differs"
        );
        assert!(
            ledger(&dir) == flights,
            "kill {kills} ({moment:?}): the ledger differs"
        );
        identical += 1;
        // The resumed archive replays and verifies.
        let replay = child(
            &dir.join("replay"),
            &["--replay-from", &run.to_string_lossy(), "--verify"],
            instances,
        )
        .output()
        .unwrap();
        let stdout = String::from_utf8_lossy(&replay.stdout);
        assert!(
            stdout.contains("verification: all 9 stages matched, 0 differences"),
            "kill {kills} ({moment:?}): {stdout}"
        );
        verified += 1;
        parallel += usize::from(instances > 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(early >= 10 && late >= 10);
    assert!(
        killed_again >= KILLED_AGAIN,
        "only {killed_again} resumes were killed"
    );
    let _ = std::fs::remove_dir_all(&base);
    // Written to the terminal past the test harness's capture, so that it
    // is the last line this test shows in `cargo test` too.
    let _ = writeln!(
        std::io::stderr(),
        "resume kill test: {kills} kills ({early} in the first 5%, {late} in the last 5%; {parallel} with parallel stages), {resumes} resumes ({killed_again} of them killed and resumed again), {identical} identical results, {verified} resumed archives verified with 0 differences"
    );
}
