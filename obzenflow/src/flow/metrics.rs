//! Prometheus text exposition of a flow's live counters (feature `metrics`).

use super::contract::EdgeContract;
use super::handle::{FlowHandle, FlowState, StageInfo};
use super::topology::Topology;
use crate::fsm::StateVariant;
use crate::stage::MiddlewareReport;
use crate::supervise::{PROCESSING_BOUNDS_NANOS, StageCounters};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

type Labels = Vec<(String, String)>;

/// What can be read of a flow while it runs, from any task: what the
/// metrics, the HTTP endpoints and the health check show.
#[derive(Clone, Debug)]
pub(crate) struct FlowView {
    pub(crate) name: Arc<str>,
    pub(crate) stages: Arc<[StageInfo]>,
    pub(crate) edges: Arc<[EdgeContract]>,
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) topology: Arc<Topology>,
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) state: watch::Receiver<FlowState>,
}

impl FlowHandle {
    /// The flow's metrics now, in the Prometheus text exposition format: per
    /// stage, events in and out, errors, busy seconds, wake-ups, state and a
    /// histogram of processing time per event (and for each instance of a
    /// parallel stage, its inputs and busy seconds); per edge, the lag (events
    /// written and not yet read); per middleware layer, rate-limiter delays,
    /// retries and circuit-breaker state and transitions.
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
        self.view().render_metrics()
    }
}

impl FlowView {
    fn stage_labels(&self, stage: &StageInfo) -> Labels {
        vec![
            ("flow".to_owned(), self.name.to_string()),
            ("stage".to_owned(), stage.name.to_string()),
            (
                "kind".to_owned(),
                format!("{:?}", stage.kind).to_lowercase(),
            ),
        ]
    }

    pub(crate) fn render_metrics(&self) -> String {
        let mut registry = Registry::with_prefix("obzenflow");
        self.register_stages(&mut registry);
        self.register_edges(&mut registry);
        self.register_middleware(&mut registry);
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &registry);
        text
    }

    fn register_stages(&self, registry: &mut Registry) {
        let events_in = Family::<Labels, Counter>::default();
        let events_out = Family::<Labels, Counter>::default();
        let errors = Family::<Labels, Counter>::default();
        let wakeups = Family::<Labels, Counter>::default();
        let busy = Family::<Labels, Counter<f64, AtomicU64>>::default();
        let state = Family::<Labels, Gauge>::default();
        let instance_events = Family::<Labels, Counter>::default();
        let instance_busy = Family::<Labels, Counter<f64, AtomicU64>>::default();
        let mut processing = Vec::new();
        for stage in self.stages.iter() {
            let labels = self.stage_labels(stage);
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
            for (index, instance) in counters.instances.get().into_iter().flatten().enumerate() {
                let mut instance_labels = labels.clone();
                instance_labels.push(("instance".to_owned(), index.to_string()));
                instance_events
                    .get_or_create(&instance_labels)
                    .inc_by(StageCounters::get(&instance.events));
                instance_busy
                    .get_or_create(&instance_labels)
                    .inc_by(StageCounters::get(&instance.busy_nanos) as f64 / 1e9);
            }
            let mut state_labels = labels.clone();
            state_labels.push((
                "state".to_owned(),
                stage.status.borrow().variant_name().to_lowercase(),
            ));
            state.get_or_create(&state_labels).set(1);
            let (buckets, sum_nanos) = counters.processing.snapshot();
            processing.push((labels, buckets.to_vec(), sum_nanos));
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
            "stage_instance_events",
            "Inputs an instance of a parallel stage handled",
            instance_events,
        );
        registry.register(
            "stage_instance_busy_seconds",
            "Time an instance of a parallel stage spent handling its inputs",
            instance_busy,
        );
        registry.register(
            "stage_state",
            "A stage's lifecycle state (1 for the current one)",
            state,
        );
        registry.register_collector(Box::new(ProcessingHistograms(processing)));
    }

    fn register_edges(&self, registry: &mut Registry) {
        let lag = Family::<Labels, Gauge>::default();
        for edge in self.edges.iter() {
            let (from, to) = (&self.stages[edge.from], &self.stages[edge.to]);
            let written = StageCounters::get(&from.counters.events_out);
            let read = edge.read.load(Ordering::Relaxed);
            let labels = vec![
                ("flow".to_owned(), self.name.to_string()),
                ("from".to_owned(), from.name.to_string()),
                ("to".to_owned(), to.name.to_string()),
            ];
            lag.get_or_create(&labels)
                .set(i64::try_from(written.saturating_sub(read)).unwrap_or(i64::MAX));
        }
        registry.register(
            "edge_lag",
            "Events written to an edge and not yet read",
            lag,
        );
    }

    fn register_middleware(&self, registry: &mut Registry) {
        let delayed = Family::<Labels, Counter>::default();
        let delay = Family::<Labels, Counter<f64, AtomicU64>>::default();
        let retries = Family::<Labels, Counter>::default();
        let recovered = Family::<Labels, Counter>::default();
        let gave_up = Family::<Labels, Counter>::default();
        let breaker_state = Family::<Labels, Gauge>::default();
        let transitions = Family::<Labels, Counter>::default();
        let refused = Family::<Labels, Counter>::default();
        for stage in self.stages.iter() {
            for (layer, instrument) in stage.middleware.iter().enumerate() {
                let labels = vec![
                    ("flow".to_owned(), self.name.to_string()),
                    ("stage".to_owned(), stage.name.to_string()),
                    ("layer".to_owned(), layer.to_string()),
                ];
                let with = |key: &str, value: &str| {
                    let mut labels = labels.clone();
                    labels.push((key.to_owned(), value.to_owned()));
                    labels
                };
                match instrument.report() {
                    MiddlewareReport::RateLimit {
                        delayed: events,
                        delay: total,
                    } => {
                        delayed.get_or_create(&labels).inc_by(events);
                        delay.get_or_create(&labels).inc_by(total.as_secs_f64());
                    }
                    MiddlewareReport::Retry {
                        retries: repeated,
                        recovered: succeeded,
                        gave_up: exhausted,
                    } => {
                        retries.get_or_create(&labels).inc_by(repeated);
                        recovered.get_or_create(&labels).inc_by(succeeded);
                        gave_up.get_or_create(&labels).inc_by(exhausted);
                    }
                    MiddlewareReport::CircuitBreaker {
                        state,
                        opened,
                        half_opened,
                        closed,
                        refused: refusals,
                    } => {
                        for name in crate::stage::BREAKER_STATES {
                            breaker_state
                                .get_or_create(&with("state", name))
                                .set(i64::from(name == state));
                        }
                        for (to, count) in [
                            ("open", opened),
                            ("half_open", half_opened),
                            ("closed", closed),
                        ] {
                            transitions.get_or_create(&with("to", to)).inc_by(count);
                        }
                        refused.get_or_create(&labels).inc_by(refusals);
                    }
                }
            }
        }
        registry.register(
            "rate_limit_delayed_events",
            "Events a rate limiter held back for a token",
            delayed,
        );
        registry.register(
            "rate_limit_delay_seconds",
            "Time events waited for a rate limiter's token",
            delay,
        );
        registry.register(
            "retry_retries",
            "Calls repeated after a transient failure",
            retries,
        );
        registry.register(
            "retry_recovered",
            "Inputs that succeeded after one or more retries",
            recovered,
        );
        registry.register(
            "retry_gave_up",
            "Inputs sent to the error lane with their retries exhausted",
            gave_up,
        );
        registry.register(
            "circuit_breaker_state",
            "A circuit breaker's state (1 for the current one)",
            breaker_state,
        );
        registry.register(
            "circuit_breaker_transitions",
            "Times a circuit breaker entered a state",
            transitions,
        );
        registry.register(
            "circuit_breaker_refused",
            "Inputs a circuit breaker refused while open",
            refused,
        );
    }
}

/// A snapshot of every stage's processing-time histogram, encoded at scrape.
#[derive(Debug)]
struct ProcessingHistograms(Vec<(Labels, Vec<u64>, u64)>);

impl Collector for ProcessingHistograms {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(
            "stage_processing_seconds",
            "Time to handle one event (each event of a batch counted at the batch's mean)",
            None,
            MetricType::Histogram,
        )?;
        for (labels, buckets, sum_nanos) in &self.0 {
            let bounds = PROCESSING_BOUNDS_NANOS
                .iter()
                .map(|&nanos| nanos as f64 / 1e9)
                .chain([f64::MAX]);
            let buckets: Vec<(f64, u64)> = bounds.zip(buckets.iter().copied()).collect();
            let count = buckets.iter().map(|(_, n)| n).sum();
            metric
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(*sum_nanos as f64 / 1e9, count, &buckets, None)?;
        }
        Ok(())
    }
}
