//! What a stage is doing and has done: its lifecycle state and its counters.

use crate::fsm::StateVariant;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The lifecycle of a stage, driven by its supervisor's state machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, StateVariant)]
pub enum StageState {
    /// Built, its task not yet initialized.
    Created,
    /// Ready; waits for the flow to start it.
    Initialized,
    /// Reading, handling and writing.
    Running,
    /// Its inputs ended (or it was asked to stop): flushing, writing EOF.
    Draining,
    /// Finished cleanly: everything it read was handled and its EOF written.
    Drained,
    /// Stopped by an error, a panic or a broken control channel.
    Failed {
        /// What went wrong.
        failure: super::StageFailure,
    },
    /// Cancelled before it could drain.
    Cancelled,
}

impl StageState {
    /// Whether the stage has finished, one way or another.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            StageState::Drained | StageState::Failed { .. } | StageState::Cancelled
        )
    }
}

impl fmt::Display for StageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageState::Failed { failure } => write!(f, "failed: {failure}"),
            other => f.write_str(&other.variant_name().to_lowercase()),
        }
    }
}

/// The kind of a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum StageKind {
    /// Produces events.
    Source,
    /// One input event to zero or more outputs.
    Transform,
    /// Consumes events, returns receipts.
    Sink,
    /// Accumulates and emits on a policy.
    Stateful,
    /// Joins a stream with a reference.
    Join,
    /// Sees every entry of another stage.
    Observer,
}

/// Live counters of one stage, updated as it works and readable at any time.
#[derive(Debug, Default)]
pub(crate) struct StageCounters {
    pub(crate) events_in: AtomicU64,
    pub(crate) events_out: AtomicU64,
    pub(crate) errors: AtomicU64,
    /// Errors that were about an input (the rest are about the stage itself,
    /// such as a failed flush).
    pub(crate) failed_inputs: AtomicU64,
    pub(crate) busy_nanos: AtomicU64,
    /// How many times the stage's task woke up to do something.
    pub(crate) wakeups: AtomicU64,
    /// For an at-least-once sink of a resumed run: inputs delivered again
    /// that the interrupted run may have delivered already.
    pub(crate) possible_duplicates: AtomicU64,
    /// How long handling one event took.
    pub(crate) processing: Histogram,
    /// For a parallel stage: each instance's figures.
    pub(crate) instances: std::sync::OnceLock<Box<[InstanceCounters]>>,
}

/// What one instance of a parallel stage did.
#[derive(Debug, Default)]
pub(crate) struct InstanceCounters {
    pub(crate) events: AtomicU64,
    pub(crate) busy_nanos: AtomicU64,
}

/// Upper bounds, in nanoseconds, of the processing-time histogram's buckets
/// (a last bucket holds the rest): 50 ns to 10 s in 1-2.5-5 steps.
pub(crate) const PROCESSING_BOUNDS_NANOS: [u64; 26] = [
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// A histogram of per-event processing times that any thread can read while
/// the stage writes it. A stage handles events a batch at a time and times
/// the batch, not each event (a clock read per event would cost more than a
/// cheap handler): each event of a batch is counted at the batch's mean.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; PROCESSING_BOUNDS_NANOS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records `events` events handled in `nanos` in all.
    pub(crate) fn record(&self, nanos: u64, events: u64) {
        if events == 0 {
            return;
        }
        let each = nanos / events;
        let bucket = PROCESSING_BOUNDS_NANOS.partition_point(|&bound| bound < each);
        self.buckets[bucket].fetch_add(events, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The count in each bucket (not cumulative) and the sum, in nanoseconds.
    pub(crate) fn snapshot(&self) -> ([u64; PROCESSING_BOUNDS_NANOS.len() + 1], u64) {
        (
            std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            self.sum_nanos.load(Ordering::Relaxed),
        )
    }

    /// The median and the 99th percentile, each as the upper bound of the
    /// bucket it falls in; `None` before the first event.
    pub(crate) fn percentiles(&self) -> Option<Percentiles> {
        let (buckets, _) = self.snapshot();
        let total: u64 = buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let at = |fraction: f64| {
            // Nearest rank: the smallest bucket holding `fraction` of the events.
            let rank = ((total as f64 * fraction).ceil() as u64).max(1);
            let mut seen = 0;
            for (bucket, count) in buckets.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return PROCESSING_BOUNDS_NANOS
                        .get(bucket)
                        .map_or(Duration::MAX, |&nanos| Duration::from_nanos(nanos));
                }
            }
            Duration::MAX
        };
        Some(Percentiles {
            p50: at(0.50),
            p99: at(0.99),
        })
    }
}

/// Processing time per event, from a stage's histogram: each figure is the
/// upper bound of the bucket it falls in (`Duration::MAX` past the last, 10 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Percentiles {
    /// Half of the events took at most this.
    pub p50: Duration,
    /// 99% of the events took at most this.
    pub p99: Duration,
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn bound(d: Duration) -> String {
            if d == Duration::MAX {
                return ">10s".to_owned();
            }
            let nanos = d.as_nanos();
            if nanos < 1_000 {
                format!("{nanos}ns")
            } else if nanos < 1_000_000 {
                format!("{}us", nanos as f64 / 1e3)
            } else if nanos < 1_000_000_000 {
                format!("{}ms", nanos as f64 / 1e6)
            } else {
                format!("{}s", nanos as f64 / 1e9)
            }
        }
        write!(f, "{}/{}", bound(self.p50), bound(self.p99))
    }
}

impl StageCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What one stage did in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StageReport {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: StageKind,
    /// How it ended (or where it is, for a report taken while running).
    pub state: StageState,
    /// Data events it read.
    pub events_in: u64,
    /// Data events it wrote (receipts, for a sink).
    pub events_out: u64,
    /// Inputs that went to the error lane.
    pub errors: u64,
    /// Time spent handling events.
    pub busy: Duration,
    /// How many times its task woke up to work.
    pub wakeups: u64,
    /// Processing time per event (median and 99th percentile), once it has
    /// handled one.
    #[serde(default)]
    pub processing: Option<Percentiles>,
    /// What the middleware around its handler did, innermost first.
    #[serde(default)]
    pub middleware: Vec<crate::stage::MiddlewareReport>,
    /// For an at-least-once sink of a resumed run: the inputs it delivered
    /// again that the interrupted run may have delivered already (those
    /// after its last receipt). 0 for every other stage.
    #[serde(default)]
    pub possible_duplicates: u64,
    /// For a stage run as several instances (`parallel: n`): each
    /// instance's figures, in instance order. Empty for the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceReport>,
}

/// What one instance of a parallel stage did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct InstanceReport {
    /// The inputs it handled.
    pub events: u64,
    /// The time it spent handling them.
    pub busy: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_counts_each_event_at_its_mean() {
        let histogram = Histogram::default();
        assert_eq!(histogram.percentiles(), None);
        // 100 events in 30 us: 300 ns each, in the (250, 500] bucket.
        histogram.record(30_000, 100);
        // One slow event: 2 ms, in the (1, 2.5] ms bucket.
        histogram.record(2_000_000, 1);
        histogram.record(5, 0);
        let (buckets, sum) = histogram.snapshot();
        assert_eq!(buckets[3], 100);
        assert_eq!(buckets[14], 1);
        assert_eq!(buckets.iter().sum::<u64>(), 101);
        assert_eq!(sum, 2_030_000);
        let p = histogram.percentiles().unwrap();
        assert_eq!(p.p50, Duration::from_nanos(500));
        assert_eq!(p.p99, Duration::from_nanos(500));
        histogram.record(60_000_000_000, 1);
        histogram.record(60_000_000_000, 1);
        let p = histogram.percentiles().unwrap();
        assert_eq!(p.p99, Duration::MAX);
        assert_eq!(p.to_string(), "500ns/>10s");
    }
}
