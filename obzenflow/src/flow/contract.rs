//! Contracts, checked with cheap counters when every stage of a flow has
//! drained: on every edge, what the writer wrote is what the reader read;
//! every event a sink consumed has a delivery receipt (or is in the error
//! lane); a source that declared how many records it would produce produced
//! exactly that many (events, and records it sent to the error lane). Slowness is never a violation: nothing here is timed.

use super::handle::StageInfo;
use crate::supervise::{ContractViolation, StageCounters, StageKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One edge and what its reader has read from it.
#[derive(Clone, Debug)]
pub(crate) struct EdgeContract {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) read: Arc<AtomicU64>,
}

/// The first violated contract, as (the stage to blame, what is wrong).
/// Sources `excused` (stopped early, or replaying a run that never ended)
/// are not held to the counts they declared.
pub(crate) fn check(
    stages: &[StageInfo],
    edges: &[EdgeContract],
    excused: bool,
) -> Option<(String, ContractViolation)> {
    for edge in edges {
        let (from, to) = (&stages[edge.from], &stages[edge.to]);
        let wrote = StageCounters::get(&from.counters.events_out);
        let read = edge.read.load(Ordering::Relaxed);
        if wrote != read {
            return Some((
                to.name.to_string(),
                ContractViolation::Edge {
                    from: from.name.to_string(),
                    to: to.name.to_string(),
                    wrote,
                    read,
                },
            ));
        }
    }
    for stage in stages {
        let counters = &stage.counters;
        let (read, out) = (
            StageCounters::get(&counters.events_in),
            StageCounters::get(&counters.events_out),
        );
        if stage.kind == StageKind::Sink {
            let failed = StageCounters::get(&counters.failed_inputs);
            if read != out + failed {
                return Some((
                    stage.name.to_string(),
                    ContractViolation::Receipts {
                        sink: stage.name.to_string(),
                        consumed: read,
                        receipts: out,
                        failed,
                    },
                ));
            }
        }
        let produced = out + StageCounters::get(&counters.errors);
        if let (StageKind::Source, Some(expected), false) = (stage.kind, stage.expected, excused)
            && produced != expected
        {
            return Some((
                stage.name.to_string(),
                ContractViolation::SourceCount {
                    source_stage: stage.name.to_string(),
                    declared: expected,
                    produced,
                },
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::{StageFailure, StageState};

    fn stage(
        name: &str,
        kind: StageKind,
        events_in: u64,
        events_out: u64,
        failed: u64,
    ) -> StageInfo {
        let counters = Arc::new(StageCounters::default());
        StageCounters::add(&counters.events_in, events_in);
        StageCounters::add(&counters.events_out, events_out);
        StageCounters::add(&counters.failed_inputs, failed);
        StageInfo {
            name: Arc::from(name),
            kind,
            counters,
            status: tokio::sync::watch::channel(StageState::Drained).1,
            control: tokio::sync::mpsc::channel(1).0,
            capacity: 1,
            capacity_bytes: 1,
            durable: false,
            written: Arc::default(),
            describe: |_| String::new(),
            expected: None,
            middleware: Vec::new(),
            instances: 1,
        }
    }

    fn edge(from: usize, to: usize, read: u64) -> EdgeContract {
        EdgeContract {
            from,
            to,
            read: Arc::new(AtomicU64::new(read)),
        }
    }

    #[test]
    fn a_clean_run_keeps_every_contract() {
        let stages = [
            stage("numbers", StageKind::Source, 0, 10, 0),
            stage("parsed", StageKind::Transform, 10, 8, 2),
            stage("out", StageKind::Sink, 8, 7, 1),
        ];
        assert_eq!(
            check(&stages, &[edge(0, 1, 10), edge(1, 2, 8)], false),
            None
        );
    }

    #[test]
    fn an_edge_that_lost_events_names_both_stages_and_the_counts() {
        let stages = [
            stage("numbers", StageKind::Source, 0, 10, 0),
            stage("out", StageKind::Sink, 9, 9, 0),
        ];
        let (stage, violation) = check(&stages, &[edge(0, 1, 9)], false).unwrap();
        assert_eq!(stage, "out");
        assert_eq!(
            StageFailure::Contract(violation).to_string(),
            "contract broken on the edge `numbers |> out`: `numbers` wrote 10 events and `out` read 9"
        );
    }

    #[test]
    fn a_sink_must_account_for_every_event_it_consumed() {
        let stages = [
            stage("numbers", StageKind::Source, 0, 5, 0),
            stage("out", StageKind::Sink, 5, 3, 1),
        ];
        let (stage, violation) = check(&stages, &[edge(0, 1, 5)], false).unwrap();
        assert_eq!(stage, "out");
        assert_eq!(
            StageFailure::Contract(violation).to_string(),
            "contract broken in sink `out`: it consumed 5 events but has 3 delivery receipts and 1 in the error lane"
        );
    }

    #[test]
    fn a_source_is_held_to_its_declared_count_unless_the_flow_was_stopped() {
        let mut source = stage("numbers", StageKind::Source, 0, 4, 0);
        source.expected = Some(10);
        let stages = [source, stage("out", StageKind::Sink, 4, 4, 0)];
        let edges = [edge(0, 1, 4)];
        let (stage, violation) = check(&stages, &edges, false).unwrap();
        assert_eq!(stage, "numbers");
        assert_eq!(
            violation,
            ContractViolation::SourceCount {
                source_stage: "numbers".into(),
                declared: 10,
                produced: 4
            }
        );
        assert_eq!(check(&stages, &edges, true), None);
        // Records it sent to the error lane (rows it could not decode) count.
        StageCounters::add(&stages[0].counters.errors, 5);
        let (_, violation) = check(&stages, &edges, false).unwrap();
        assert!(matches!(
            violation,
            ContractViolation::SourceCount { produced: 9, .. }
        ));
        StageCounters::add(&stages[0].counters.errors, 1);
        assert_eq!(check(&stages, &edges, false), None);
    }
}
