//! Replay and verification: an archived run replays with sources reading
//! their archives, verification finds 0 differences, a changed transform is
//! caught, and archives that cannot be replayed are refused clearly.

use obzenflow::flow::replay::{ReplayError, ReplayOptions};
use obzenflow::flow::{FlowHandle, FlowState};
use obzenflow::prelude::*;
use obzenflow::stage::{Poll, Receipt, Sink, Source, StageError, map, try_map};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn base(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("replay-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Text numbers; counts its polls, so a test can see that replay never calls it.
struct Numbers {
    next: u64,
    polls: Arc<AtomicU64>,
}

impl Source<String> for Numbers {
    async fn next(&mut self) -> Result<Poll<String>, StageError> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        if self.next >= 3_000 {
            return Ok(Poll::End);
        }
        let batch = (self.next..self.next + 500)
            .map(|n| {
                if n % 250 == 3 {
                    format!("bad{n}")
                } else {
                    n.to_string()
                }
            })
            .collect();
        self.next += 500;
        Ok(Poll::Events(batch))
    }
}

/// Counts deliveries, so a test can see that replay skips them.
struct Deliveries(Arc<AtomicU64>);

impl Sink<u64> for Deliveries {
    async fn consume(&mut self, _input: u64) -> Result<Receipt, StageError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(Receipt::with_detail("stored"))
    }
}

struct Counters {
    polls: Arc<AtomicU64>,
    deliveries: Arc<AtomicU64>,
}

fn counters() -> Counters {
    Counters {
        polls: Arc::default(),
        deliveries: Arc::default(),
    }
}

fn flow(base: &Path, factor: u64, counters: &Counters) -> FlowHandle {
    let source = Numbers {
        next: 0,
        polls: Arc::clone(&counters.polls),
    };
    let sink = Deliveries(Arc::clone(&counters.deliveries));
    flow! {
        name: "replayed",
        journals: disk(base.to_owned()),
        stages: {
            numbers = source!(String => source);
            parsed = transform!(String -> u64 => try_map(|s: String| s.parse::<u64>()));
            scaled = transform!(u64 -> u64 => map(move |n: u64| n * factor));
            store = sink!(u64 => sink);
        },
        topology: {
            numbers |> parsed |> scaled |> store;
        }
    }
}

async fn archive(base: &Path) -> PathBuf {
    let counters = counters();
    let mut original = flow(base, 2, &counters);
    let report = original.run().await.unwrap();
    assert_eq!(counters.deliveries.load(Ordering::Relaxed), 2_988);
    report.run_dir.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_the_same_flow_matches_its_archive() {
    let base = base("same");
    let archived = archive(&base).await;
    let counters = counters();
    let mut replay = flow(&base, 2, &counters);
    replay
        .replay_from(&archived, ReplayOptions::default())
        .unwrap();
    let report = replay.run().await.unwrap();
    assert_eq!(report.state, FlowState::Completed);
    assert_eq!(
        counters.polls.load(Ordering::Relaxed),
        0,
        "sources read the archive, not their handler"
    );
    assert_eq!(
        counters.deliveries.load(Ordering::Relaxed),
        0,
        "sinks do not repeat their effects"
    );
    assert_eq!(
        report.stage("store").unwrap().events_out,
        2_988,
        "a receipt per event, marked skipped"
    );
    assert_eq!(report.errors.len(), 12, "the error lane is rebuilt too");
    let verification = replay.verify_replay().unwrap();
    assert!(verification.matched(), "{verification}");
    assert_eq!(
        verification.to_string(),
        "all 4 stages matched, 0 differences"
    );
    assert_eq!(verification.stages[1].records, 3_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_transform_is_caught_with_both_versions() {
    let base = base("changed");
    let archived = archive(&base).await;
    let mut replay = flow(&base, 3, &counters());
    replay
        .replay_from(&archived, ReplayOptions::default())
        .unwrap();
    replay.run().await.unwrap();
    let verification = replay.verify_replay().unwrap();
    assert_eq!(verification.differences(), 1, "{verification}");
    let scaled = &verification.stages[2];
    assert_eq!(scaled.stage, "scaled");
    let difference = scaled.first_difference.as_ref().unwrap();
    assert_eq!(
        difference.index, 1,
        "0 * 2 == 0 * 3; the first difference is 1 * 2 against 1 * 3"
    );
    assert!(
        difference
            .archived
            .as_ref()
            .unwrap()
            .ends_with("body {\"Data\":2}"),
        "{difference:?}"
    );
    assert!(
        difference
            .replayed
            .as_ref()
            .unwrap()
            .ends_with("body {\"Data\":3}"),
        "{difference:?}"
    );
    let text = verification.to_string();
    assert!(text.starts_with("1 of 4 stages differ:"), "{text}");
    assert!(text.contains("stage `scaled`, record 1:"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_that_cannot_be_replayed_are_refused() {
    let base = base("refused");
    let archived = archive(&base).await;
    let manifest_path = archived.join("manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();

    // Incomplete: the run never recorded an end.
    let mut value: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    value["ended_at"] = serde_json::Value::Null;
    value["status"] = "running".into();
    std::fs::write(&manifest_path, value.to_string()).unwrap();
    let error = flow(&base, 2, &counters())
        .replay_from(&archived, ReplayOptions::default())
        .unwrap_err();
    assert!(matches!(error, ReplayError::Incomplete { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("replay it anyway with --allow-incomplete"),
        "{error}"
    );
    let allowed = ReplayOptions {
        allow_incomplete: true,
        ..ReplayOptions::default()
    };
    let mut replay = flow(&base, 2, &counters());
    replay.replay_from(&archived, allowed).unwrap();
    replay.run().await.unwrap();
    assert!(replay.verify_replay().unwrap().matched());

    // Newer format.
    let mut value: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    value["manifest_version"] = 99.into();
    std::fs::write(&manifest_path, value.to_string()).unwrap();
    let error = flow(&base, 2, &counters())
        .replay_from(&archived, ReplayOptions::default())
        .unwrap_err();
    assert!(error.to_string().contains("manifest version 99"), "{error}");

    // An older format that no longer reads: a version 1 manifest of a failed
    // run recorded its failure as text.
    let mut value: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    value["manifest_version"] = 1.into();
    value["final_state"] =
        serde_json::json!({ "Failed": { "stage": "store", "reason": "disk full" } });
    std::fs::write(&manifest_path, value.to_string()).unwrap();
    let error = flow(&base, 2, &counters())
        .replay_from(&archived, ReplayOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            error,
            obzenflow::flow::replay::ReplayError::OlderFormat { found: 1, .. }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("run the flow again"), "{error}");

    // Journals outside the archive.
    for outside in ["../../../../../../etc", "stages/../../x", "/etc", "stages"] {
        let mut value: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        value["stage_journals"][1] = outside.into();
        std::fs::write(&manifest_path, value.to_string()).unwrap();
        let error = flow(&base, 2, &counters())
            .replay_from(&archived, ReplayOptions::default())
            .unwrap_err();
        assert!(
            matches!(&error, ReplayError::Manifest { path, reason }
                if *path == manifest_path && reason.contains(outside)),
            "{outside}: {error}"
        );
    }

    // Two stages' journals swapped: each journal says whose it is.
    let mut value: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let journals = value["stage_journals"].as_array_mut().unwrap();
    journals.swap(1, 2);
    let listed_for_parsed = journals[1].as_str().unwrap().to_owned();
    std::fs::write(&manifest_path, value.to_string()).unwrap();
    let error = flow(&base, 2, &counters())
        .replay_from(&archived, ReplayOptions::default())
        .unwrap_err();
    assert!(
        matches!(&error, ReplayError::Journal(obzenflow::journal::DiskJournalError::Corrupt { path, reason, .. })
            if *path == archived.join(&listed_for_parsed) && reason == "it is not the journal of stage `parsed`"),
        "{error}"
    );

    // A manifest that is empty, not JSON, or a directory: named.
    for (damage, expected) in [("", "EOF"), ("{ not json", "key must be a string")] {
        std::fs::write(&manifest_path, damage).unwrap();
        let error = flow(&base, 2, &counters())
            .replay_from(&archived, ReplayOptions::default())
            .unwrap_err();
        let text = error.to_string();
        assert!(text.contains(&*manifest_path.to_string_lossy()), "{text}");
        assert!(text.contains(expected), "{text}");
    }
    std::fs::remove_file(&manifest_path).unwrap();
    std::fs::create_dir(&manifest_path).unwrap();
    let error = flow(&base, 2, &counters())
        .replay_from(&archived, ReplayOptions::default())
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains(&*manifest_path.to_string_lossy()), "{text}");
    assert!(text.contains("directory"), "{text}");
    std::fs::remove_dir(&manifest_path).unwrap();

    // Another topology.
    std::fs::write(&manifest_path, &manifest).unwrap();
    let mut other = flow! {
        name: "replayed",
        stages: {
            numbers = source!(String => obzenflow::stage::from_iter(Vec::<String>::new()));
            store = sink!(String => obzenflow::stage::console());
        },
        topology: {
            numbers |> store;
        }
    };
    let error = other
        .replay_from(&archived, ReplayOptions::default())
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("is of a different flow: it has 4 stages, this flow 2"),
        "{error}"
    );

    // After the start it is too late; without disk journals there is nothing to verify.
    let error = other
        .replay_from(&archived, ReplayOptions::default())
        .unwrap_err();
    assert!(matches!(error, ReplayError::DifferentTopology { .. }));
    other.run().await.unwrap();
    assert!(matches!(
        other.replay_from(&archived, ReplayOptions::default()),
        Err(ReplayError::AlreadyStarted)
    ));
    assert!(matches!(
        other.verify_replay(),
        Err(ReplayError::NoReplayRun)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_prints_every_journal_as_json_lines_with_its_own_types() {
    let base = base("inspect");
    let archived = archive(&base).await;
    let viewer = flow(&base, 2, &counters());
    let mut out = Vec::new();
    let lines = viewer.inspect(&archived, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len() as u64, lines);
    let of = |stage: &str| records.iter().filter(|r| r["stage"] == stage).count();
    // 3,000 source lines and EOF; 2,988 numbers, 12 error records and EOF; and so on.
    assert_eq!(of("numbers"), 3_001);
    assert_eq!(of("parsed"), 3_001);
    assert_eq!(of("scaled"), 2_989);
    assert_eq!(of("store"), 2_989);
    assert!(of("(system)") >= 6);
    let third = records
        .iter()
        .find(|r| r["stage"] == "scaled" && r["seq"] == 2)
        .unwrap();
    assert_eq!(third["body"], serde_json::json!({"Data": 4}));
    let error = records
        .iter()
        .find(|r| r["stage"] == "parsed" && r["body"]["Error"].is_object())
        .unwrap();
    assert_eq!(
        error["body"]["Error"]["message"],
        "invalid digit found in string"
    );
    assert_eq!(error["parents"], serde_json::json!(["0#3"]));
}

/// A run killed before its source's journal held anything: replaying it
/// (allowed, as incomplete) holds no source to the count it declared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_archive_holds_no_source_to_its_declared_count() {
    let base = base("incomplete-count");
    let declared = || {
        let mut flow = obzenflow::flow::FlowBuilder::new("declared");
        flow.journals(obzenflow::flow::journals::disk(base.clone()));
        let numbers = flow.source("numbers", obzenflow::stage::from_iter(0..100u32));
        flow.sink("store", &numbers, obzenflow::stage::collect().0);
        flow.build().unwrap()
    };
    let archived = declared().run().await.unwrap().run_dir.unwrap();
    // As a SIGKILL would leave it: no end recorded, and the source's
    // segment cut back to its header.
    let manifest_path = archived.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["ended_at"] = serde_json::Value::Null;
    manifest["status"] = "running".into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let source_journal = archived.join(manifest["stage_journals"][0].as_str().unwrap());
    for segment in std::fs::read_dir(&source_journal).unwrap() {
        let segment = segment.unwrap().path();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(16)
            .unwrap();
    }
    let allowed = ReplayOptions {
        allow_incomplete: true,
        ..ReplayOptions::default()
    };
    let mut replay = declared();
    replay.replay_from(&archived, allowed).unwrap();
    let report = replay.run().await.unwrap();
    assert_eq!(report.state, obzenflow::flow::FlowState::Completed);
    assert_eq!(report.stage("numbers").unwrap().events_out, 0);
}
