//! Prometheus text exposition of a flow's live counters (feature `metrics`).

use super::handle::FlowHandle;
use crate::fsm::StateVariant;
use crate::supervise::StageCounters;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};

type Labels = Vec<(String, String)>;

impl FlowHandle {
    /// The flow's metrics now, in the Prometheus text exposition format: per
    /// stage, events in and out, errors, busy seconds, wake-ups and state; per
    /// edge, the lag (events written and not yet read).
    ///
    /// ```
    /// use obzenflow::flow::FlowBuilder;
    /// use obzenflow::stage::{collect, from_iter};
    ///
    /// let mut flow = FlowBuilder::new("numbers");
    /// let numbers = flow.source("numbers", from_iter(0..3u32));
    /// let (sink, _) = collect();
    /// flow.sink("out", &numbers, sink);
    /// let handle = flow.build().unwrap();
    /// let text = handle.render_metrics();
    /// assert!(text.contains("obzenflow_stage_events_out_total{flow=\"numbers\",stage=\"numbers\",kind=\"source\"} 0"));
    /// ```
    pub fn render_metrics(&self) -> String {
        let mut registry = Registry::with_prefix("obzenflow");
        let events_in = Family::<Labels, Counter>::default();
        let events_out = Family::<Labels, Counter>::default();
        let errors = Family::<Labels, Counter>::default();
        let wakeups = Family::<Labels, Counter>::default();
        let busy = Family::<Labels, Counter<f64, AtomicU64>>::default();
        let state = Family::<Labels, Gauge>::default();
        let lag = Family::<Labels, Gauge>::default();
        let flow = self.name().to_owned();
        for stage in self.stages.iter() {
            let labels = vec![
                ("flow".to_owned(), flow.clone()),
                ("stage".to_owned(), stage.name.to_string()),
                (
                    "kind".to_owned(),
                    format!("{:?}", stage.kind).to_lowercase(),
                ),
            ];
            let counters = &stage.counters;
            events_in
                .get_or_create(&labels)
                .inc_by(StageCounters::get(&counters.events_in));
            events_out
                .get_or_create(&labels)
                .inc_by(StageCounters::get(&counters.events_out));
            errors
                .get_or_create(&labels)
                .inc_by(StageCounters::get(&counters.errors));
            wakeups
                .get_or_create(&labels)
                .inc_by(StageCounters::get(&counters.wakeups));
            busy.get_or_create(&labels)
                .inc_by(StageCounters::get(&counters.busy_nanos) as f64 / 1e9);
            let mut state_labels = labels.clone();
            state_labels.push((
                "state".to_owned(),
                stage.status.borrow().variant_name().to_lowercase(),
            ));
            state.get_or_create(&state_labels).set(1);
        }
        for edge in &self.edges {
            let (from, to) = (&self.stages[edge.from], &self.stages[edge.to]);
            let written = StageCounters::get(&from.counters.events_out);
            let read = edge.read.load(Ordering::Relaxed);
            let labels = vec![
                ("flow".to_owned(), flow.clone()),
                ("from".to_owned(), from.name.to_string()),
                ("to".to_owned(), to.name.to_string()),
            ];
            lag.get_or_create(&labels)
                .set(i64::try_from(written.saturating_sub(read)).unwrap_or(i64::MAX));
        }
        registry.register("stage_events_in", "Data events a stage read", events_in);
        registry.register(
            "stage_events_out",
            "Data events a stage wrote (receipts, for a sink)",
            events_out,
        );
        registry.register(
            "stage_errors",
            "Inputs a stage sent to the error lane",
            errors,
        );
        registry.register(
            "stage_wakeups",
            "Times a stage's task woke up to work",
            wakeups,
        );
        registry.register(
            "stage_busy_seconds",
            "Time a stage spent handling events",
            busy,
        );
        registry.register(
            "stage_state",
            "A stage's lifecycle state (1 for the current one)",
            state,
        );
        registry.register(
            "edge_lag",
            "Events written to an edge and not yet read",
            lag,
        );
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &registry);
        text
    }
}
