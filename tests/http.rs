//! The flow's live view over HTTP, read with a real HTTP client (ureq)
//! while the flow runs and after it ends.

#[path = "support/http.rs"]
mod client;

use obzenflow::flow::FlowBuilder;
use obzenflow::stage::{Receipt, Sink, StageError, collect, from_iter, map};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A sink that delivers one event per permit.
struct Gated(Arc<Semaphore>);

impl Sink<u32> for Gated {
    async fn consume(&mut self, _input: u32) -> Result<Receipt, StageError> {
        self.0
            .acquire()
            .await
            .map_err(|_| StageError::fatal("gate closed"))?
            .forget();
        Ok(Receipt::delivered())
    }
}

/// Sends `method` to `url` off the runtime's threads: status, content type, body.
async fn get(method: &'static str, url: String) -> (u16, String, String) {
    tokio::task::spawn_blocking(move || client::request(method, &url))
        .await
        .unwrap()
}

/// The value of the sample whose line starts with `series`.
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_topology_and_health_while_running_and_after() {
    let gate = Arc::new(Semaphore::new(0));
    let mut flow = FlowBuilder::new("served");
    let numbers = flow.source("numbers", from_iter(0..1_000u32));
    let doubled = flow.transform("doubled", &numbers, map(|n: u32| n * 2));
    flow.sink("out", &doubled, Gated(Arc::clone(&gate)));
    let mut flow = flow.build().unwrap();
    let server = flow.serve("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", server.local_addr());
    assert!(server.local_addr().ip().is_loopback());

    flow.start().unwrap();
    // Wait until the sink has read everything and is blocked on its first
    // delivery (its receipts are counted batch by batch, so none yet).
    for _ in 0..1_000_000 {
        if flow.report().stage("out").unwrap().events_in == 1_000 {
            break;
        }
        tokio::task::yield_now().await;
    }

    let (status, content_type, health) = get("GET", format!("{base}/health")).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(content_type, "application/json");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["flow"], "served");
    assert_eq!(health["state"], "running");
    assert_eq!(health["healthy"], true);
    assert_eq!(health["stages"][2]["name"], "out");
    assert_eq!(health["stages"][2]["state"], "running");

    let (status, content_type, metrics) = get("GET", format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/openmetrics-text"));
    let out = "{flow=\"served\",stage=\"out\",kind=\"sink\"}";
    assert_eq!(
        sample(&metrics, &format!("obzenflow_stage_events_in_total{out}")),
        Some(1_000),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, &format!("obzenflow_stage_events_out_total{out}")),
        Some(0)
    );
    assert!(metrics.ends_with("# EOF\n"));

    let (status, content_type, topology) = get("GET", format!("{base}/topology")).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let topology: serde_json::Value = serde_json::from_str(&topology).unwrap();
    assert_eq!(
        topology,
        serde_json::from_str::<serde_json::Value>(&flow.topology().to_json()).unwrap()
    );
    assert_eq!(topology["stages"][1]["name"], "doubled");

    let (status, _, body) = get("GET", format!("{base}/nothing")).await;
    assert_eq!(status, 404);
    assert!(body.contains("/metrics"), "{body}");
    let (status, _, _) = get("DELETE", format!("{base}/metrics")).await;
    assert_eq!(status, 405);

    // Let it finish: the endpoint still answers with the final figures.
    gate.add_permits(1_000);
    let report = flow.wait().await.unwrap();
    let (status, _, health) = get("GET", format!("{base}/health")).await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["state"], "completed");
    assert_eq!(health["running"], false);
    let (_, _, metrics) = get("GET", format!("{base}/metrics")).await;
    assert_eq!(
        sample(&metrics, &format!("obzenflow_stage_events_out_total{out}")),
        Some(report.stage("out").unwrap().events_out)
    );
    assert_eq!(report.stage("out").unwrap().events_out, 1_000);

    server.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
            .await
            .is_err(),
        "the port is closed after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_once_the_flow_failed() {
    let mut flow = FlowBuilder::new("failing");
    let numbers = flow.source("numbers", from_iter(0..10u32));
    let broken = flow.transform(
        "broken",
        &numbers,
        map(|n: u32| {
            assert!(n != 5, "the disk is gone");
            n
        }),
    );
    let (sink, _) = collect();
    flow.sink("out", &broken, sink);
    let mut flow = flow.build().unwrap();
    let server = flow.serve("127.0.0.1:0").await.unwrap();
    assert!(flow.run().await.is_err());
    let (status, _, health) = get("GET", format!("http://{}/health", server.local_addr())).await;
    assert_eq!(status, 503, "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["state"], "failed");
    assert_eq!(health["healthy"], false);
    let stage = health["stages"][1]["state"].as_str().unwrap();
    assert!(
        stage.starts_with("failed: ") && stage.contains("the disk is gone"),
        "{stage}"
    );
}
