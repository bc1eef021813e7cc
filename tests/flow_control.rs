//! Steering a flow from anywhere: a `FlowControl` stops, cancels and waits
//! from a spawned task, a plain thread, or two places at once; `wait()` can
//! be dropped and called again; and every stage downstream of a stopped
//! source learns that it drains because of a stop, not the end of its input.

mod support;

use obzenflow::flow::{FlowBuilder, FlowError, FlowHandle, FlowState, journals};
use obzenflow::stage::{
    DrainReason, Receipt, Sink, StageError, Stateful, StatefulExt, collect, from_iter,
    from_receiver, map,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::wait_until;
use tokio::sync::mpsc;

/// A flow whose source waits on `receive`, with what its sink collected.
fn endless(receive: mpsc::Receiver<u32>) -> (FlowHandle, obzenflow::stage::Collected<u32>) {
    let mut flow = FlowBuilder::new("endless");
    let numbers = flow.source("numbers", from_receiver(receive));
    let doubled = flow.transform("doubled", &numbers, map(|n: u32| n * 2));
    let (sink, out) = collect();
    flow.sink("out", &doubled, sink);
    (flow.build().unwrap(), out)
}

#[tokio::test]
async fn a_control_stops_the_flow_from_a_spawned_task() {
    let (send, receive) = mpsc::channel(8);
    let (mut flow, out) = endless(receive);
    let control = flow.control();
    flow.start().unwrap();
    send.send(1).await.unwrap();
    wait_until(|| !out.is_empty()).await;
    let stopper = tokio::spawn(async move { control.stop_graceful(Duration::from_secs(5)).await });
    let report = flow.wait().await.unwrap();
    assert_eq!(report.state, FlowState::Stopped);
    assert_eq!(stopper.await.unwrap().unwrap(), report);
    assert_eq!(out.snapshot(), [2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_stops_the_flow_from_a_plain_thread() {
    let (_send, receive) = mpsc::channel(8);
    let (mut flow, _out) = endless(receive);
    let control = flow.control();
    flow.start().unwrap();
    let runtime = tokio::runtime::Handle::current();
    let thread = std::thread::spawn(move || {
        control.request_stop(Duration::from_secs(5));
        runtime.block_on(control.wait())
    });
    let report = flow.wait().await.unwrap();
    assert_eq!(report.state, FlowState::Stopped);
    assert_eq!(thread.join().unwrap().unwrap(), report);
}

#[tokio::test]
async fn two_places_can_stop_and_cancel_at_once_and_both_hear_how_it_ended() {
    let (_send, receive) = mpsc::channel(8);
    let (mut flow, _out) = endless(receive);
    flow.start().unwrap();
    let (first, second) = (flow.control(), flow.control());
    let (stopped, cancelled) = tokio::join!(
        tokio::spawn(async move { first.stop_graceful(Duration::from_secs(5)).await }),
        tokio::spawn(async move { second.cancel().await }),
    );
    let (stopped, cancelled) = (stopped.unwrap().unwrap(), cancelled.unwrap().unwrap());
    assert_eq!(stopped, cancelled, "one end, seen by both");
    assert!(
        matches!(stopped.state, FlowState::Stopped | FlowState::Cancelled),
        "{}",
        stopped.state
    );
    assert_eq!(flow.wait().await.unwrap(), stopped);
    // Asking an ended flow again answers how it ended.
    assert_eq!(
        flow.control()
            .stop_graceful(Duration::from_secs(1))
            .await
            .unwrap(),
        stopped
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_wait_loses_nothing_and_a_later_wait_returns_the_same_report() {
    let (send, receive) = mpsc::channel(8);
    let (mut flow, out) = endless(receive);
    flow.start().unwrap();
    for _ in 0..3 {
        let waited = tokio::time::timeout(Duration::from_secs(1), flow.wait()).await;
        assert!(waited.is_err(), "the flow is still running");
        assert!(flow.is_running());
    }
    send.send(21).await.unwrap();
    drop(send);
    let report = flow.wait().await.unwrap();
    assert_eq!(report.state, FlowState::Completed);
    assert_eq!(out.snapshot(), [42]);
    assert_eq!(flow.wait().await.unwrap(), report);
    assert_eq!(flow.control().wait().await.unwrap(), report);
}

#[tokio::test]
async fn a_stop_asked_for_before_the_start_stops_the_flow_as_it_starts() {
    let (send, receive) = mpsc::channel(8);
    let (mut flow, out) = endless(receive);
    let control = flow.control();
    control.request_stop(Duration::from_secs(5));
    assert_eq!(control.state(), FlowState::Created);
    send.send(1).await.unwrap();
    let report = flow.run().await.unwrap();
    assert_eq!(report.state, FlowState::Stopped);
    assert!(out.len() <= 1);
}

#[tokio::test]
async fn a_control_of_a_flow_dropped_unstarted_says_so() {
    let (_send, receive) = mpsc::channel(8);
    let (flow, _out) = endless(receive);
    let control = flow.control();
    let waiting = tokio::spawn(async move { control.stop_graceful(Duration::from_secs(1)).await });
    tokio::task::yield_now().await;
    drop(flow);
    let error = waiting.await.unwrap().unwrap_err();
    assert!(matches!(error, FlowError::NotStarted { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "flow `endless` was dropped without being started"
    );
}

#[test]
fn starting_outside_a_runtime_is_an_error_not_a_panic() {
    let (_send, receive) = mpsc::channel(8);
    let (mut flow, _out) = endless(receive);
    let error = flow.start().unwrap_err();
    assert!(matches!(error, FlowError::NoRuntime { .. }), "{error}");
}

/// Records why a sink drained.
struct Remembers(Arc<Mutex<Vec<DrainReason>>>);

impl Sink<u32> for Remembers {
    async fn consume(&mut self, _input: u32) -> Result<Receipt, StageError> {
        Ok(Receipt::delivered())
    }

    async fn drain(&mut self, reason: DrainReason) -> Result<(), StageError> {
        self.0.lock().unwrap().push(reason);
        Ok(())
    }
}

/// Counts its inputs, and says at the end why it drained.
struct Count(u32);

impl Stateful<u32, String> for Count {
    fn accumulate(&mut self, _input: u32) -> Result<(), StageError> {
        self.0 += 1;
        Ok(())
    }

    fn emit(&mut self) -> Vec<String> {
        vec![format!("{} so far", self.0)]
    }

    fn emit_final(&mut self, reason: DrainReason) -> Vec<String> {
        vec![format!("{} at {reason:?}", self.0)]
    }
}

/// numbers |> doubled |> (counted |> totals, sink).
fn drains(
    receive: mpsc::Receiver<u32>,
    reasons: &Arc<Mutex<Vec<DrainReason>>>,
    dir: Option<&std::path::Path>,
) -> (FlowHandle, obzenflow::stage::Collected<String>) {
    let mut flow = FlowBuilder::new("drains");
    if let Some(dir) = dir {
        flow.journals(journals::disk(dir));
    }
    let numbers = flow.source("numbers", from_receiver(receive));
    let doubled = flow.transform("doubled", &numbers, map(|n: u32| n * 2));
    let counted = flow.stateful_with("counted", &doubled, Count(0).emit_on_eof());
    let (totals, out) = collect();
    flow.sink("totals", &counted, totals);
    flow.sink("sink", &doubled, Remembers(Arc::clone(reasons)));
    (flow.build().unwrap(), out)
}

#[tokio::test]
async fn every_stage_downstream_of_a_stopped_source_drains_as_stopped() {
    let reasons = Arc::default();
    let (send, receive) = mpsc::channel(8);
    let (mut flow, totals) = drains(receive, &reasons, None);
    flow.start().unwrap();
    send.send(1).await.unwrap();
    send.send(2).await.unwrap();
    wait_until(|| flow.report().stage("sink").unwrap().events_out == 2).await;
    let report = flow.stop_graceful(Duration::from_secs(5)).await.unwrap();
    assert_eq!(report.state, FlowState::Stopped);
    assert_eq!(*reasons.lock().unwrap(), [DrainReason::Stopped]);
    assert_eq!(totals.snapshot(), ["2 at Stopped"]);
}

#[tokio::test]
async fn a_flow_whose_input_ends_drains_at_the_end_of_input_and_a_replay_as_a_replay() {
    let dir = std::env::temp_dir().join(format!("obzenflow-drains-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let reasons = Arc::default();
    let (send, receive) = mpsc::channel(8);
    let (mut flow, totals) = drains(receive, &reasons, Some(&dir));
    flow.start().unwrap();
    send.send(1).await.unwrap();
    drop(send);
    let report = flow.wait().await.unwrap();
    assert_eq!(report.state, FlowState::Completed);
    assert_eq!(*reasons.lock().unwrap(), [DrainReason::EndOfInput]);
    assert_eq!(totals.snapshot(), ["1 at EndOfInput"]);

    let archive = report.run_dir.unwrap();
    let replayed = Arc::default();
    let (_send, receive) = mpsc::channel(8);
    let (mut replay, totals) = drains(receive, &replayed, Some(&dir));
    let repeat = obzenflow::flow::replay::ReplayOptions {
        repeat_sink_effects: true,
        ..Default::default()
    };
    replay.replay_from(&archive, repeat).unwrap();
    assert_eq!(replay.plan().replays.as_deref(), Some(archive.as_path()));
    assert_eq!(replay.run().await.unwrap().state, FlowState::Completed);
    assert_eq!(*replayed.lock().unwrap(), [DrainReason::Replay]);
    assert_eq!(totals.snapshot(), ["1 at Replay"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A source that was stopped declared a count it no longer owes.
#[tokio::test]
async fn a_stopped_source_is_not_held_to_the_count_it_declared() {
    let mut flow = FlowBuilder::new("declared");
    let numbers = flow.source("numbers", from_iter(0..1_000_000u32));
    let (sink, _out) = collect();
    flow.sink("out", &numbers, sink);
    let mut flow = flow.build().unwrap();
    assert_eq!(flow.expected_source_events(), Some(1_000_000));
    flow.start().unwrap();
    let report = flow.stop_graceful(Duration::from_secs(5)).await.unwrap();
    assert_eq!(report.state, FlowState::Stopped);
}
