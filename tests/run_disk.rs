//! Runs with disk journals: a directory per run with a manifest, one durable
//! journal per stage holding exactly what the stage emitted, and a system
//! journal of lifecycle events.

use obzenflow::event::{Body, Control};
use obzenflow::flow::FlowState;
use obzenflow::flow::run::{Manifest, SystemEvent};
use obzenflow::journal::disk::read_journal;
use obzenflow::prelude::*;
use obzenflow::stage::{Receipt, collect, from_iter, map, try_map};
use obzenflow::supervise::StageState;
use std::path::PathBuf;

fn base(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("run_disk-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_journaled_run_leaves_a_complete_archive() {
    let base = base("archive");
    let (sink, out) = collect::<u64>();
    let mut flow = flow! {
        name: "archived flow",
        journals: disk(base.clone()),
        stages: {
            numbers = source!(String => from_iter((0..2_500u64).map(|n| if n % 1000 == 7 { "x".to_owned() } else { n.to_string() })));
            parsed = transform!(String -> u64 => try_map(|s: String| s.parse::<u64>()));
            doubled = transform!(u64 -> u64 => map(|n: u64| n * 2));
            out = sink!(u64 => sink);
        },
        topology: {
            numbers |> parsed |> doubled |> out;
        }
    };
    let report = flow.run().await.unwrap();
    let run = report
        .run_dir
        .clone()
        .expect("a disk-journaled run has a directory");
    assert!(
        run.starts_with(base.join("archived_flow")),
        "{}",
        run.display()
    );

    let manifest: Manifest =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.flow, "archived flow");
    assert_eq!(manifest.status, "completed");
    assert_eq!(manifest.final_state, Some(FlowState::Completed));
    assert!(manifest.ended_at.is_some());
    assert_eq!(manifest.topology, *flow.topology());
    assert_eq!(manifest.stage_journals.len(), 4);

    // The transform's journal holds its data, its error-lane records and its EOF, in order.
    let (parsed, recovery) = read_journal::<u64>(&run.join(&manifest.stage_journals[1])).unwrap();
    assert_eq!(recovery.truncated, None);
    let data: Vec<u64> = parsed.iter().filter_map(|e| e.data().copied()).collect();
    assert_eq!(data.len(), 2_497);
    let errors = parsed
        .iter()
        .filter(|e| matches!(e.body, Body::Error(_)))
        .count();
    assert_eq!(errors, 3);
    assert_eq!(parsed.last().unwrap().body, Body::Control(Control::Eof));
    let seqs: Vec<u64> = parsed.iter().map(|e| e.id.seq).collect();
    assert_eq!(seqs, (0..parsed.len() as u64).collect::<Vec<_>>());

    // The sink's journal holds one receipt per delivered event.
    let (receipts, _) = read_journal::<Receipt>(&run.join(&manifest.stage_journals[3])).unwrap();
    assert_eq!(
        receipts.iter().filter(|e| e.data().is_some()).count(),
        out.len()
    );

    let (system, _) = read_journal::<SystemEvent>(&run.join("system")).unwrap();
    let events: Vec<SystemEvent> = system
        .into_iter()
        .filter_map(|e| e.data().cloned())
        .collect();
    assert_eq!(events.first(), Some(&SystemEvent::Flow(FlowState::Running)));
    assert_eq!(
        events.last(),
        Some(&SystemEvent::Flow(FlowState::Completed))
    );
    let ended = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                SystemEvent::StageEnded {
                    state: StageState::Drained,
                    ..
                }
            )
        })
        .count();
    assert_eq!(ended, 4);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&run).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let mode = std::fs::metadata(run.join("manifest.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[tokio::test]
async fn each_run_gets_its_own_directory_and_a_failure_is_recorded() {
    let base = base("failed");
    let build = || {
        flow! {
            name: "fails",
            journals: disk(base.clone()),
            stages: {
                numbers = source!(u32 => from_iter(0..10u32));
                boom = transform!(u32 -> u32 => map(|n: u32| { assert!(n < 5, "too big: {n}"); n }));
                out = sink!(u32 => obzenflow::stage::console());
            },
            topology: {
                numbers |> boom |> out;
            }
        }
    };
    let mut first = build();
    let mut second = build();
    let first_error = first.run().await.unwrap_err();
    let _ = second.run().await.unwrap_err();
    let obzenflow::flow::FlowError::StageFailed { report, .. } = first_error else {
        panic!("expected a stage failure");
    };
    let run = report.run_dir.clone().unwrap();
    let runs = std::fs::read_dir(base.join("fails")).unwrap().count();
    assert_eq!(runs, 2, "two runs, two directories");
    let manifest: Manifest =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert!(
        matches!(manifest.final_state, Some(FlowState::Failed { ref stage, .. }) if stage == "boom")
    );
    assert!(
        manifest.status.contains("failed in stage `boom`"),
        "{}",
        manifest.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_journal_write_fails_its_stage_and_nothing_waits_for_it() {
    let base = base("write-fails");
    // Past the largest record a journal takes (64 MiB): its journal thread
    // cannot write it, so it is never published and the stage fails.
    let huge = "x".repeat(65 * 1024 * 1024);
    let (sink, out) = collect::<usize>();
    let mut flow = flow! {
        name: "too big",
        journals: disk(base.clone()),
        stages: {
            texts = source!(String => from_iter(["small".to_owned(), huge]));
            lengths = transform!(String -> usize => map(|s: String| s.len()));
            out = sink!(usize => sink);
        },
        topology: {
            texts |> lengths |> out;
        }
    };
    let error = flow.run().await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("stage `texts` failed: ")
            && message.contains("is larger than a journal record may be"),
        "{message}"
    );
    // Downstream saw nothing that was not durable: the first batch held
    // both texts, and it never reached the disk.
    assert!(out.snapshot().is_empty());
    assert!(matches!(flow.state(), FlowState::Failed { stage, .. } if stage == "texts"));
}
