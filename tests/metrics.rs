//! Prometheus metrics: a scrape's counts match the run's report, and an
//! edge's lag shows events written and not yet read.

use obzenflow::flow::FlowBuilder;
use obzenflow::stage::{collect, from_iter, try_map};

/// The value of the sample of `metric` whose labels contain every `labels` pair.
fn sample(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")))
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_matches_the_report() {
    let mut flow = FlowBuilder::new("scraped");
    let lines = flow.source(
        "lines",
        from_iter((0..5_000u32).map(|n| {
            if n % 100 == 0 {
                "x".to_owned()
            } else {
                n.to_string()
            }
        })),
    );
    let parsed = flow.transform("parsed", &lines, try_map(|s: String| s.parse::<u32>()));
    let (sink, _) = collect();
    flow.sink("out", &parsed, sink);
    let mut handle = flow.build().unwrap();
    let report = handle.run().await.unwrap();
    let text = handle.render_metrics();
    for stage in &report.stages {
        let labels = [("flow", "scraped"), ("stage", stage.name.as_str())];
        assert_eq!(
            sample(&text, "obzenflow_stage_events_in_total", &labels),
            Some(stage.events_in as f64),
            "{text}"
        );
        assert_eq!(
            sample(&text, "obzenflow_stage_events_out_total", &labels),
            Some(stage.events_out as f64)
        );
        assert_eq!(
            sample(&text, "obzenflow_stage_errors_total", &labels),
            Some(stage.errors as f64)
        );
        let state = [("stage", stage.name.as_str()), ("state", "drained")];
        assert_eq!(sample(&text, "obzenflow_stage_state", &state), Some(1.0));
        // The processing-time histogram counts every event the stage handled
        // (what it read; for a source, what it produced), and its +Inf bucket
        // holds them all.
        let handled = if stage.name == "lines" {
            stage.events_out
        } else {
            stage.events_in
        };
        assert_eq!(
            sample(&text, "obzenflow_stage_processing_seconds_count", &labels),
            Some(handled as f64),
            "{text}"
        );
        let all = [labels[0], labels[1], ("le", "+Inf")];
        assert_eq!(
            sample(&text, "obzenflow_stage_processing_seconds_bucket", &all),
            Some(handled as f64)
        );
        let processing = stage.processing.unwrap();
        assert!(processing.p50 <= processing.p99, "{processing:?}");
    }
    assert_eq!(
        sample(
            &text,
            "obzenflow_stage_errors_total",
            &[("stage", "parsed")]
        ),
        Some(50.0)
    );
    assert_eq!(
        sample(
            &text,
            "obzenflow_edge_lag",
            &[("from", "lines"), ("to", "parsed")]
        ),
        Some(0.0)
    );
    assert!(
        text.contains("# TYPE obzenflow_stage_busy_seconds counter"),
        "{text}"
    );
}

/// A sink that never finishes its first delivery.
struct Stuck;

impl obzenflow::stage::Sink<u32> for Stuck {
    async fn consume(
        &mut self,
        _input: u32,
    ) -> Result<obzenflow::stage::Receipt, obzenflow::stage::StageError> {
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_counts_what_was_written_and_not_yet_read() {
    let mut flow = FlowBuilder::new("lagging");
    let numbers = flow.source("numbers", from_iter(0..10_000u32));
    flow.sink("stuck", &numbers, Stuck);
    let mut handle = flow.build().unwrap();
    handle.start().unwrap();
    // The source writes everything (the window is larger); the sink takes its
    // first batch of 1,024 and never comes back for more.
    for _ in 0..1_000_000 {
        let report = handle.report();
        if report.stage("numbers").unwrap().events_out == 10_000
            && report.stage("stuck").unwrap().events_in > 0
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    let text = handle.render_metrics();
    assert_eq!(
        sample(
            &text,
            "obzenflow_edge_lag",
            &[("from", "numbers"), ("to", "stuck")]
        ),
        Some(10_000.0 - 1_024.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "obzenflow_stage_state",
            &[("stage", "stuck"), ("state", "running")]
        ),
        Some(1.0)
    );
    handle.stop_cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_window_set_in_flow_holds_its_writer_back() {
    let mut flow = obzenflow::flow! {
        name: "windowed",
        stages: {
            numbers = source!(u32 => from_iter(0..10_000u32), capacity: 100);
            stuck = sink!(u32 => Stuck);
        },
        topology: {
            numbers |> stuck;
        }
    };
    flow.start().unwrap();
    // The sink takes the first batch (1,024) and never returns; the source may
    // write one more batch past its window of 100, then it waits.
    for _ in 0..1_000_000 {
        let report = flow.report();
        if report.stage("numbers").unwrap().events_out == 2_048
            && report.stage("stuck").unwrap().events_in > 0
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    for _ in 0..1_000 {
        tokio::task::yield_now().await;
    }
    assert_eq!(flow.report().stage("numbers").unwrap().events_out, 2_048);
    assert_eq!(
        sample(
            &flow.render_metrics(),
            "obzenflow_edge_lag",
            &[("from", "numbers")]
        ),
        Some(1_024.0)
    );
    flow.stop_cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_of_a_parallel_stage_is_scraped() {
    let mut flow = FlowBuilder::new("instances");
    let numbers = flow.source("numbers", from_iter(0..3_000u32));
    let parsed = flow.transform_parallel(
        "doubled",
        &numbers,
        try_map(|n: u32| n.checked_mul(2).ok_or("too big")),
        obzenflow::stage::parallel(3),
    );
    flow.sink("out", &parsed, collect().0);
    let mut handle = flow.build().unwrap();
    let report = handle.run().await.unwrap();
    let text = handle.render_metrics();
    let instances = &report.stage("doubled").unwrap().instances;
    assert_eq!(instances.len(), 3);
    let mut scraped = 0.0;
    for (index, instance) in instances.iter().enumerate() {
        let index = index.to_string();
        let events = sample(
            &text,
            "obzenflow_stage_instance_events_total",
            &[("stage", "doubled"), ("instance", &index)],
        );
        assert_eq!(events, Some(instance.events as f64), "{text}");
        scraped += events.unwrap_or_default();
    }
    assert_eq!(scraped, 3_000.0);
}
