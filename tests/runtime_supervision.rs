//! Shapes, stopping, failures and idleness of flows, through the public API.

mod support;

use obzenflow::flow::{FlowBuilder, FlowError, FlowState};
use obzenflow::stage::{
    DrainReason, Poll, Receipt, Sink, Source, StageError, collect, from_iter, from_receiver, map,
};
use obzenflow::supervise::{StageFailure, StageState};
use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use support::wait_until;
use tokio::sync::mpsc;

/// The stage, reason (as the failure reads) and report of a flow that
/// failed in a stage.
fn stage_failure(error: FlowError) -> (String, String, Box<obzenflow::flow::FlowReport>) {
    match error {
        FlowError::StageFailed {
            stage,
            failure,
            report,
        } => (stage, failure.to_string(), report),
        other => panic!("expected a stage failure, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_merges_fairly_and_fan_out_gives_every_reader_everything() {
    let mut flow = FlowBuilder::new("fans");
    let low = flow.source("low", from_iter(0..5_000u32));
    let high = flow.source("high", from_iter(10_000..15_000u32));
    let merged = flow.transform("merged", [&low, &high], map(|n: u32| n));
    let (first, first_out) = collect();
    let (second, second_out) = collect();
    flow.sink("first", &merged, first);
    flow.sink("second", &merged, second);
    let report = flow.build().unwrap().run().await.unwrap();
    let mut got = first_out.snapshot();
    assert_eq!(
        got,
        second_out.snapshot(),
        "both readers see the same order"
    );
    // Each input's own order survives the merge.
    let lows: Vec<u32> = got.iter().copied().filter(|n| *n < 10_000).collect();
    assert_eq!(lows, (0..5_000).collect::<Vec<_>>());
    got.sort_unstable();
    let expected: Vec<u32> = (0..5_000).chain(10_000..15_000).collect();
    assert_eq!(got, expected);
    assert_eq!(report.stage("merged").unwrap().events_in, 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diamond_recombines_both_branches() {
    let mut flow = FlowBuilder::new("diamond");
    let numbers = flow.source("numbers", from_iter(1..=1_000u64));
    let doubled = flow.transform("doubled", &numbers, map(|n: u64| n * 2));
    let negated = flow.transform("negated", &numbers, map(|n: u64| n * 1_000_000));
    let joined = flow.transform("joined", [&doubled, &negated], map(|n: u64| n));
    let (sink, out) = collect();
    flow.sink("out", &joined, sink);
    flow.build().unwrap().run().await.unwrap();
    let values = out.snapshot();
    assert_eq!(values.len(), 2_000);
    let total: u64 = values.iter().sum();
    assert_eq!(
        total,
        (1..=1_000u64).map(|n| n * 2 + n * 1_000_000).sum::<u64>()
    );
}

/// An endless source that counts what it produced.
struct Endless {
    next: u64,
    produced: Arc<AtomicU64>,
}

impl Source<u64> for Endless {
    async fn next(&mut self) -> Result<Poll<u64>, StageError> {
        tokio::task::yield_now().await;
        let batch: Vec<u64> = (self.next..self.next + 100).collect();
        self.next += 100;
        self.produced.fetch_add(100, Ordering::Relaxed);
        Ok(Poll::Events(batch))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_under_load_loses_nothing() {
    let produced = Arc::new(AtomicU64::new(0));
    let mut flow = FlowBuilder::new("load");
    let source = flow.source(
        "endless",
        Endless {
            next: 0,
            produced: Arc::clone(&produced),
        },
    );
    let checked = flow.transform(
        "checked",
        &source,
        obzenflow::stage::try_map(|n: u64| {
            if n.is_multiple_of(7) {
                Err("multiple of 7")
            } else {
                Ok(n)
            }
        }),
    );
    let (sink, out) = collect();
    flow.sink("out", &checked, sink);
    let mut handle = flow.build().unwrap();
    handle.start().unwrap();
    wait_until(|| produced.load(Ordering::Relaxed) >= 50_000).await;
    let report = handle.stop_graceful(Duration::from_secs(30)).await.unwrap();
    assert_eq!(report.state, FlowState::Stopped);
    let written = report.stage("endless").unwrap().events_out;
    assert_eq!(written, produced.load(Ordering::Relaxed));
    let consumed = out.len() as u64;
    let errors = report.stage("checked").unwrap().errors;
    assert_eq!(
        consumed + errors,
        written,
        "every event is consumed or in the error lane"
    );
    assert_eq!(report.errors.len() as u64, errors);
    assert!(report.stages.iter().all(|s| s.state == StageState::Drained));
    // Stopping twice is fine: the same report again.
    assert_eq!(
        handle.stop_graceful(Duration::from_secs(1)).await.unwrap(),
        report
    );
}

/// A sink that never finishes delivering.
struct Stuck;

impl Sink<u64> for Stuck {
    async fn consume(&mut self, _input: u64) -> Result<Receipt, StageError> {
        pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn cancel_returns_promptly_even_with_a_stuck_stage() {
    let produced = Arc::new(AtomicU64::new(0));
    let mut flow = FlowBuilder::new("stuck");
    let source = flow.source(
        "endless",
        Endless {
            next: 0,
            produced: Arc::clone(&produced),
        },
    );
    flow.sink("stuck", &source, Stuck);
    let mut handle = flow.build().unwrap();
    handle.start().unwrap();
    wait_until(|| produced.load(Ordering::Relaxed) > 0).await;
    let started = tokio::time::Instant::now();
    let report = handle.stop_cancel().await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no timer was needed to cancel"
    );
    assert_eq!(report.state, FlowState::Cancelled);
    assert_eq!(report.stage("stuck").unwrap().state, StageState::Cancelled);
    assert!(!handle.is_running());
}

#[tokio::test(start_paused = true)]
async fn a_graceful_stop_that_times_out_escalates_to_cancel() {
    let mut flow = FlowBuilder::new("slow stop");
    let source = flow.source("numbers", from_iter(0..10u64));
    flow.sink("stuck", &source, Stuck);
    let mut handle = flow.build().unwrap();
    handle.start().unwrap();
    // Let the sink take an event it will never finish delivering.
    wait_until(|| handle.report().stage("stuck").unwrap().events_in > 0).await;
    let started = tokio::time::Instant::now();
    let error = handle
        .stop_graceful(Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    let (stage, reason, report) = stage_failure(error);
    assert_eq!(stage, "stuck", "the stage that had not drained is named");
    assert!(reason.contains("graceful stop's 5s ran out"), "{reason}");
    assert_eq!(report.stage("stuck").unwrap().state, StageState::Cancelled);
}

#[tokio::test]
async fn abort_ends_the_flow_with_the_reason() {
    let (send, receive) = mpsc::channel::<u32>(1);
    let mut flow = FlowBuilder::new("aborted");
    let source = flow.source("waiting", from_receiver(receive));
    let (sink, _) = collect();
    flow.sink("out", &source, sink);
    let mut handle = flow.build().unwrap();
    handle.start().unwrap();
    let error = handle.abort("operator said so").await.unwrap_err();
    match error {
        FlowError::Aborted { reason, report } => {
            assert_eq!(reason, "operator said so");
            assert_eq!(
                report.state,
                FlowState::Aborted {
                    reason: "operator said so".into()
                }
            );
        }
        other => panic!("expected an abort, got {other}"),
    }
    drop(send);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_fails_its_stage_and_the_flow_by_name() {
    let mut flow = FlowBuilder::new("panics");
    let numbers = flow.source("numbers", from_iter(0..1_000u32));
    let boom = flow.transform(
        "boom",
        &numbers,
        map(|n: u32| {
            assert!(n != 500, "cannot handle {n}");
            n
        }),
    );
    let (sink, _) = collect();
    flow.sink("out", &boom, sink);
    let error = flow.build().unwrap().run().await.unwrap_err();
    let (stage, reason, report) = stage_failure(error);
    assert_eq!(stage, "boom");
    assert!(reason.contains("cannot handle 500"), "{reason}");
    assert!(matches!(
        report.stage("boom").unwrap().state,
        StageState::Failed { .. }
    ));
    assert!(report.stages.iter().all(|s| s.state.is_terminal()));
}

/// A sink whose drain (run by the Finish action) fails.
struct FailsToDrain(Arc<AtomicU32>);

impl Sink<u32> for FailsToDrain {
    async fn consume(&mut self, _input: u32) -> Result<Receipt, StageError> {
        Ok(Receipt::delivered())
    }

    async fn drain(&mut self, reason: DrainReason) -> Result<(), StageError> {
        assert_eq!(reason, DrainReason::EndOfInput);
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(StageError::fatal("disk full"))
    }
}

#[tokio::test]
async fn an_erroring_action_drives_the_failure_path_exactly_once() {
    let drains = Arc::new(AtomicU32::new(0));
    let mut flow = FlowBuilder::new("drain fails");
    let numbers = flow.source("numbers", from_iter(0..10u32));
    flow.sink("store", &numbers, FailsToDrain(Arc::clone(&drains)));
    let mut handle = flow.build().unwrap();
    let mut store_state = handle.stage_state("store").unwrap();
    let error = handle.run().await.unwrap_err();
    assert!(
        matches!(&error, FlowError::StageFailed { stage, failure: StageFailure::Handler { error, draining: true }, .. }
        if stage == "store" && error.message() == "disk full"),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "stage `store` failed: drain failed: disk full"
    );
    assert_eq!(drains.load(Ordering::SeqCst), 1);
    assert_eq!(
        *store_state.borrow_and_update(),
        StageState::Failed {
            failure: StageFailure::Handler {
                error: StageError::fatal("disk full"),
                draining: true
            }
        }
    );
    assert_eq!(
        handle.report().stage("numbers").unwrap().state,
        StageState::Drained
    );
}

#[tokio::test]
async fn a_fatal_source_error_fails_the_flow() {
    struct Broken;
    impl Source<u32> for Broken {
        async fn next(&mut self) -> Result<Poll<u32>, StageError> {
            Err(StageError::fatal("lost the connection"))
        }
    }
    let mut flow = FlowBuilder::new("broken");
    let source = flow.source("broken", Broken);
    let (sink, _) = collect();
    flow.sink("out", &source, sink);
    let error = flow.build().unwrap().run().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "stage `broken` failed: lost the connection"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_flow_does_not_wake_up() {
    let (send, receive) = mpsc::channel::<u32>(8);
    let mut flow = FlowBuilder::new("idle");
    let source = flow.source("quiet", from_receiver(receive));
    let doubled = flow.transform("doubled", &source, map(|n: u32| n * 2));
    let (sink, out) = collect();
    flow.sink("out", &doubled, sink);
    let mut handle = flow.build().unwrap();
    handle.start().unwrap();
    send.send(1).await.unwrap();
    wait_until(|| !out.is_empty()).await;
    let before: Vec<u64> = handle.report().stages.iter().map(|s| s.wakeups).collect();
    tokio::time::advance(Duration::from_secs(60)).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let after: Vec<u64> = handle.report().stages.iter().map(|s| s.wakeups).collect();
    assert_eq!(before, after, "no stage woke during a minute of silence");
    drop(send);
    assert_eq!(handle.wait().await.unwrap().state, FlowState::Completed);
    assert_eq!(out.snapshot(), [2]);
}

#[tokio::test]
async fn running_twice_is_an_error_not_a_panic() {
    let mut flow = FlowBuilder::new("once");
    let numbers = flow.source("numbers", from_iter(0..3u32));
    let (sink, _) = collect();
    flow.sink("out", &numbers, sink);
    let mut handle = flow.build().unwrap();
    handle.run().await.unwrap();
    let error = handle.run().await.unwrap_err();
    assert!(matches!(error, FlowError::AlreadyStarted { .. }), "{error}");
    assert_eq!(handle.state(), FlowState::Completed);
}

#[tokio::test]
async fn the_builder_refuses_duplicate_names_and_flows_without_a_source() {
    let mut flow = FlowBuilder::new("bad");
    let a = flow.source("same", from_iter(0..3u32));
    let b = flow.transform("same", &a, map(|n: u32| n));
    let (sink, _) = collect();
    flow.sink("out", &b, sink);
    let error = flow.build().unwrap_err();
    assert!(
        error.to_string().contains("two stages are named `same`"),
        "{error}"
    );
    assert!(
        FlowBuilder::new("empty")
            .build()
            .unwrap_err()
            .to_string()
            .contains("no source")
    );
}

/// A source that says it will produce more than it does.
struct Overpromise;

impl Source<u32> for Overpromise {
    async fn next(&mut self) -> Result<Poll<u32>, StageError> {
        Ok(Poll::End)
    }

    fn expected_count(&self) -> Option<u64> {
        Some(10)
    }
}

#[tokio::test]
async fn a_source_that_breaks_its_declared_count_fails_the_flow_with_the_counts() {
    let mut flow = FlowBuilder::new("contract");
    let numbers = flow.source("numbers", Overpromise);
    let (sink, _) = collect();
    flow.sink("out", &numbers, sink);
    let error = flow.build().unwrap().run().await.unwrap_err();
    let (stage, reason, report) = stage_failure(error);
    assert_eq!(stage, "numbers");
    assert_eq!(
        reason,
        "contract broken in source `numbers`: it declared 10 events and produced 0"
    );
    assert!(matches!(report.state, FlowState::Failed { .. }));
}
