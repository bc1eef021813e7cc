//! Durability under SIGKILL: a disk-journaled flow in a child process is
//! killed at random moments. Afterwards every journal opens (a torn tail is
//! cut off), every record a downstream stage holds has its parent in the
//! upstream journal (a batch reaches the disk before any reader can see it),
//! and the incomplete archive replays when that is allowed.

#![cfg(unix)]

#[path = "support/crash_flow.rs"]
mod crash_flow;

use obzenflow::event::{Body, EventId, Parents};
use obzenflow::flow::run::Manifest;
use obzenflow::journal::DiskJournal;
use obzenflow::journal::DiskJournalOptions;
use obzenflow::stage::Receipt;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const KILLS: usize = 24;

/// The ids and parents in the journal of stage number `index`, `stage`.
fn ids<T: obzenflow::event::Payload>(
    dir: &Path,
    index: usize,
    stage: &str,
) -> (HashSet<EventId>, Vec<Parents>) {
    // Opening recovers a torn tail, as the next run of the flow would, and
    // as that stage's journal.
    let options = DiskJournalOptions {
        identity: obzenflow::journal::disk::journal_identity(index, stage),
        ..DiskJournalOptions::default()
    };
    let (journal, _) = DiskJournal::<T>::open(dir, options).unwrap_or_else(|e| panic!("{e}"));
    drop(journal);
    let (records, recovery) = obzenflow::journal::disk::read_journal::<T>(dir).unwrap();
    assert_eq!(recovery.truncated, None, "recovery left nothing torn");
    let seqs: Vec<u64> = records.iter().map(|r| r.id.seq).collect();
    assert_eq!(seqs, (0..records.len() as u64).collect::<Vec<_>>());
    (
        records.iter().map(|r| r.id).collect(),
        records
            .iter()
            .filter(|r| !matches!(r.body, Body::Control(_)))
            .map(|r| r.parents.clone())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_leave_journals_that_open_and_agree() {
    let base =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut total_records = 0;
    let mut checked: HashSet<PathBuf> = HashSet::new();
    for round in 0..KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
            .arg(&base)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the crash writer starts");
        let mut started = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut started)
            .unwrap();
        assert_eq!(started.trim(), "started");
        // Kill it at a random moment while it writes: the moment, in a real
        // process on a real clock, is what this test varies.
        std::thread::sleep(Duration::from_millis(5 + seed % 120));
        child.kill().unwrap();
        child.wait().unwrap();

        let runs: Vec<PathBuf> = std::fs::read_dir(base.join("crash"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(runs.len(), round + 1);
        let new: Vec<PathBuf> = runs
            .into_iter()
            .filter(|run| !checked.contains(run))
            .collect();
        assert_eq!(new.len(), 1, "one new run directory per child");
        for run in &new {
            checked.insert(run.clone());
            let manifest: Manifest =
                serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap())
                    .unwrap();
            assert_eq!(
                manifest.status, "running",
                "a killed run never recorded an end"
            );
            let journals: Vec<PathBuf> = manifest
                .stage_journals
                .iter()
                .map(|j| run.join(j))
                .collect();
            let (numbers, numbers_records) = ids::<String>(&journals[0], 0, "numbers");
            let (parsed, parsed_parents) = ids::<u64>(&journals[1], 1, "parsed");
            let (squared, squared_parents) = ids::<u64>(&journals[2], 2, "squared");
            let (_, receipt_parents) = ids::<Receipt>(&journals[3], 3, "out");
            for (parents, upstream) in [
                (&parsed_parents, &numbers),
                (&squared_parents, &parsed),
                (&receipt_parents, &squared),
            ] {
                for parent in parents.iter().flat_map(Parents::ids) {
                    assert!(
                        upstream.contains(parent),
                        "{parent} is missing upstream in {}",
                        run.display()
                    );
                }
            }
            total_records += numbers.len() + parsed.len() + squared.len();

            // The incomplete archive replays when allowed: the sources replay
            // what reached their journal, and the rest runs to completion.
            let mut replay = crash_flow::crash_flow(base.join("replays").display().to_string());
            assert!(
                replay
                    .replay_from(run, obzenflow::flow::replay::ReplayOptions::default())
                    .is_err()
            );
            let allowed = obzenflow::flow::replay::ReplayOptions {
                allow_incomplete: true,
                ..Default::default()
            };
            replay.replay_from(run, allowed).unwrap();
            let report = replay.run().await.unwrap();
            let replayed = report.stage("numbers").unwrap();
            assert_eq!(
                replayed.events_out + replayed.errors,
                numbers_records.len() as u64
            );
        }
    }
    assert!(
        total_records > 0,
        "the children wrote something before they were killed"
    );
}
