//! Feedback loops: a loop head reads its forward input and what the end of
//! the loop sends back; probe rounds tell when the loop is empty.

use obzenflow::flow::{FlowBuilder, FlowState};
use obzenflow::stage::{collect, flat_map, from_iter, map};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_runs_until_nothing_circulates() {
    let mut flow = FlowBuilder::new("halving");
    let numbers = flow.source("numbers", from_iter([8u64, 3, 40]));
    let (head, port) = flow.loop_head("head", &numbers, map(|n: u64| n), 100);
    // Each number comes back halved until it reaches 1.
    let halved = flow.transform("halve", &head, flat_map(|n: u64| (n > 1).then_some(n / 2)));
    flow.feedback(&port, &halved);
    let (sink, out) = collect();
    flow.sink("out", &head, sink);
    let report = flow.build().unwrap().run().await.unwrap();
    assert_eq!(report.state, FlowState::Completed);
    let mut seen = out.snapshot();
    seen.sort_unstable();
    assert_eq!(seen, [1, 1, 1, 2, 2, 3, 4, 5, 8, 10, 20, 40]);
    assert!(report.errors.is_empty());
    assert_eq!(report.stage("head").unwrap().events_in, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_that_never_empties_is_closed_after_its_rounds_and_nothing_is_lost() {
    let mut flow = FlowBuilder::new("forever");
    let numbers = flow.source("numbers", from_iter([1u64, 2]));
    let (head, port) = flow.loop_head("head", &numbers, map(|n: u64| n), 3);
    let again = flow.transform("again", &head, map(|n: u64| n + 10));
    flow.feedback(&port, &again);
    let (sink, out) = collect();
    flow.sink("out", &head, sink);
    let report = flow.build().unwrap().run().await.unwrap();
    assert_eq!(report.state, FlowState::Completed);
    let head_report = report.stage("head").unwrap();
    // Every event the head read was either emitted or is in the error lane.
    assert_eq!(
        head_report.events_in,
        head_report.events_out + head_report.errors
    );
    assert_eq!(
        head_report.errors, 2,
        "the two values still circulating when the loop closed"
    );
    assert!(
        report
            .errors
            .iter()
            .all(|e| e.message.contains("after 3 probe rounds"))
    );
    assert_eq!(out.len() as u64, head_report.events_out);
}

#[tokio::test]
async fn an_unclosed_loop_is_refused_by_the_builder() {
    let mut flow = FlowBuilder::new("open");
    let numbers = flow.source("numbers", from_iter([1u64]));
    let (head, _port) = flow.loop_head("head", &numbers, map(|n: u64| n), 3);
    let (sink, _) = collect();
    flow.sink("out", &head, sink);
    let error = flow.build().unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the feedback loop of `head` is never closed"),
        "{error}"
    );
}
