//! A completed archive, damaged at random (a flipped bit, a cut, a deleted
//! segment or journal, two journals swapped in the manifest), is always
//! reported, naming what is damaged: a replay and verification of it never
//! ends in "0 differences". Only a run that did not record its end may have
//! a torn tail, which is then cut off with a warning.

use obzenflow::flow::replay::{ReplayError, ReplayOptions};
use obzenflow::flow::{FlowBuilder, FlowHandle, journals};
use obzenflow::stage::{collect, from_iter, map, try_map};
use std::path::{Path, PathBuf};

/// source -> parsed -> scaled -> sink, journaled under `base` in small segments.
fn flow(base: &Path) -> FlowHandle {
    let mut flow = FlowBuilder::new("damaged");
    flow.journals(journals::disk(base).segment_bytes(512));
    let lines = flow.source(
        "lines",
        from_iter((0..20_000u32).map(|n| {
            if n % 97 == 0 {
                format!("x{n}")
            } else {
                n.to_string()
            }
        })),
    );
    let parsed = flow.transform("parsed", &lines, try_map(|s: String| s.parse::<u64>()));
    let scaled = flow.transform("scaled", &parsed, map(|n: u64| n * 3));
    flow.sink("out", &scaled, collect().0);
    flow.build().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every segment file of the archive, the system journal's included.
fn segments(run: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![run.join("system")];
    dirs.extend(
        std::fs::read_dir(run.join("stages"))
            .unwrap()
            .map(|entry| entry.unwrap().path()),
    );
    for dir in dirs {
        for entry in std::fs::read_dir(dir).unwrap() {
            found.push(entry.unwrap().path());
        }
    }
    found.sort();
    found
}

/// A seeded xorshift generator: the same damages every run.
struct Numbers(u64);

impl Numbers {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

/// Damages the archive at `run` one way; returns what it did, and the paths
/// (files or directories) of which a report must name one.
fn damage(run: &Path, numbers: &mut Numbers) -> (String, Vec<PathBuf>) {
    let files = segments(run);
    let file = files[numbers.below(files.len() as u64) as usize].clone();
    let size = std::fs::metadata(&file).unwrap().len();
    match numbers.below(5) {
        0 => {
            let mut bytes = std::fs::read(&file).unwrap();
            let at = numbers.below(size) as usize;
            bytes[at] ^= 1 << numbers.below(8);
            std::fs::write(&file, bytes).unwrap();
            (
                format!("flipped a bit of byte {at} of {}", file.display()),
                vec![file],
            )
        }
        1 => {
            let to = numbers.below(size);
            let cut = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
            cut.set_len(to).unwrap();
            (
                format!("cut {} to {to} of {size} bytes", file.display()),
                vec![file],
            )
        }
        2 => {
            std::fs::remove_file(&file).unwrap();
            let dir = file.parent().unwrap().to_owned();
            (format!("deleted {}", file.display()), vec![dir])
        }
        3 => {
            let dir = file.parent().unwrap().to_owned();
            std::fs::remove_dir_all(&dir).unwrap();
            (format!("deleted {}", dir.display()), vec![dir.clone()])
        }
        _ => {
            let manifest = run.join("manifest.json");
            let mut value: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
            let first = numbers.below(4) as usize;
            let second = (first + 1 + numbers.below(3) as usize) % 4;
            let journals = value["stage_journals"].as_array_mut().unwrap();
            journals.swap(first, second);
            let named = [first, second].map(|index| run.join(journals[index].as_str().unwrap()));
            std::fs::write(&manifest, value.to_string()).unwrap();
            (
                format!("swapped the journals of stages {first} and {second}"),
                named.to_vec(),
            )
        }
    }
}

/// What a replay and verification of `run` says: `Err` with the report's
/// text when it refuses, `Ok` with the verification's text otherwise.
async fn replay(run: &Path, replays: &Path, options: ReplayOptions) -> Result<String, String> {
    let mut flow = flow(replays);
    flow.replay_from(run, options)
        .map_err(|error: ReplayError| error.to_string())?;
    flow.run().await.map_err(|error| error.to_string())?;
    let verification = flow.verify_replay().map_err(|error| error.to_string())?;
    Ok(verification.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_damage_to_a_completed_archive_is_reported_naming_the_file() {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("archive-damage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let archived = flow(&scratch.join("runs")).run().await.unwrap();
    let pristine = archived.run_dir.unwrap();
    assert!(
        segments(&pristine).len() > 6,
        "small segments: several per journal"
    );
    let replays = scratch.join("replays");
    let intact = replay(&pristine, &replays, ReplayOptions::default()).await;
    assert_eq!(intact.as_deref(), Ok("all 4 stages matched, 0 differences"));

    let mut numbers = Numbers(0x2545_f491_4f6c_dd1d);
    let (mut tried, mut reported, mut missed) = (0, 0, Vec::new());
    for round in 0..60 {
        let run = scratch.join(format!("damaged-{round}"));
        copy_dir(&pristine, &run);
        let (what, named) = damage(&run, &mut numbers);
        tried += 1;
        match replay(&run, &replays, ReplayOptions::default()).await {
            Err(report)
                if named
                    .iter()
                    .any(|path| report.contains(&*path.to_string_lossy())) =>
            {
                reported += 1
            }
            Err(report) => missed.push(format!("{what}: reported without naming it: {report}")),
            Ok(verified) => missed.push(format!("{what}: {verified}")),
        }
        let _ = std::fs::remove_dir_all(&run);
    }
    println!(
        "damages tried {tried}, reported {reported}, missed {}",
        missed.len()
    );
    assert!(missed.is_empty(), "{missed:#?}");
    assert_eq!(reported, tried);
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_accepted_only_in_a_run_that_did_not_end() {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("archive-torn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let run = flow(&scratch.join("runs"))
        .run()
        .await
        .unwrap()
        .run_dir
        .unwrap();
    // Cut the last segment of the sink's journal mid-block, as a crash would.
    let sink = std::fs::read_dir(run.join("stages"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|dir| dir.ends_with("003-out"))
        .unwrap();
    let mut last: Vec<PathBuf> = std::fs::read_dir(&sink)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    last.sort();
    let last = last.pop().unwrap();
    let size = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(size - 3)
        .unwrap();
    let replays = scratch.join("replays");
    // The run recorded its end: the cut is damage, named.
    let refused = replay(&run, &replays, ReplayOptions::default())
        .await
        .unwrap_err();
    assert!(refused.contains(&*last.to_string_lossy()), "{refused}");
    // As a run that never ended, the same cut is a crash's torn tail.
    let manifest = run.join("manifest.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    value["ended_at"] = serde_json::Value::Null;
    value["status"] = "running".into();
    std::fs::write(&manifest, value.to_string()).unwrap();
    let options = ReplayOptions {
        allow_incomplete: true,
        ..ReplayOptions::default()
    };
    let mut incomplete = flow(&replays);
    incomplete.replay_from(&run, options).unwrap();
    incomplete.run().await.unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
}
