//! Shapes beyond the straight line, each against a hand-written tokio
//! pipeline of the same shape (one task per stage, bounded mpsc channels of
//! 1024, item by item) in the same run:
//! - deep: 200,000 events through a chain of 20 maps (reported per event per
//!   stage; goal: under 100 ns);
//! - fan-in: 8 sources of 125,000 events into one map, then a sink;
//! - fan-out: one source of 1,000,000 events read by 8 sinks.
//!
//! Run: `cargo bench --bench pipeline_shapes`

#[path = "support/pipelines.rs"]
mod pipelines;
mod support;

use obzenflow::flow::{FlowBuilder, StageRef};
use obzenflow::stage::{from_iter, map};
use pipelines::{Total, runtime};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

const DEEP_EVENTS: u64 = 200_000;
const DEPTH: usize = 20;
const FAN: u64 = 8;
const FAN_EVENTS: u64 = 1_000_000;
const CHANNEL: usize = 1024;

async fn run(flow: FlowBuilder) {
    flow.build()
        .expect("the flow is valid")
        .run()
        .await
        .expect("the flow completes");
}

async fn obzenflow_deep() -> u64 {
    let total = Arc::new(AtomicU64::new(0));
    let mut flow = FlowBuilder::new("deep");
    let mut last = flow.source("numbers", from_iter(0..DEEP_EVENTS));
    for stage in 0..DEPTH {
        last = flow.transform(&format!("map{stage}"), &last, map(|n: u64| n + 1));
    }
    flow.sink("total", &last, Total(Arc::clone(&total)));
    run(flow).await;
    total.load(Ordering::Relaxed)
}

async fn tokio_deep() -> u64 {
    let (source, mut receiver) = mpsc::channel::<u64>(CHANNEL);
    tokio::spawn(async move {
        for n in 0..DEEP_EVENTS {
            if source.send(n).await.is_err() {
                break;
            }
        }
    });
    for _ in 0..DEPTH {
        let (sender, next) = mpsc::channel::<u64>(CHANNEL);
        let mut input = receiver;
        tokio::spawn(async move {
            while let Some(n) = input.recv().await {
                if sender.send(n + 1).await.is_err() {
                    break;
                }
            }
        });
        receiver = next;
    }
    let mut total = 0;
    while let Some(n) = receiver.recv().await {
        total += n;
    }
    total
}

async fn obzenflow_fan_in() -> u64 {
    let total = Arc::new(AtomicU64::new(0));
    let mut flow = FlowBuilder::new("fan-in");
    let per = FAN_EVENTS / FAN;
    let sources: Vec<StageRef<u64>> = (0..FAN)
        .map(|i| flow.source(&format!("source{i}"), from_iter(i * per..(i + 1) * per)))
        .collect();
    let inputs: Vec<&StageRef<u64>> = sources.iter().collect();
    let merged = flow.transform("merged", inputs.as_slice(), map(|n: u64| n + 1));
    flow.sink("total", &merged, Total(Arc::clone(&total)));
    run(flow).await;
    total.load(Ordering::Relaxed)
}

async fn tokio_fan_in() -> u64 {
    let per = FAN_EVENTS / FAN;
    let (to_map, mut from_sources) = mpsc::channel::<u64>(CHANNEL);
    for i in 0..FAN {
        let sender = to_map.clone();
        tokio::spawn(async move {
            for n in i * per..(i + 1) * per {
                if sender.send(n).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(to_map);
    let (to_sink, mut from_map) = mpsc::channel::<u64>(CHANNEL);
    tokio::spawn(async move {
        while let Some(n) = from_sources.recv().await {
            if to_sink.send(n + 1).await.is_err() {
                break;
            }
        }
    });
    let mut total = 0;
    while let Some(n) = from_map.recv().await {
        total += n;
    }
    total
}

async fn obzenflow_fan_out() -> u64 {
    let total = Arc::new(AtomicU64::new(0));
    let mut flow = FlowBuilder::new("fan-out");
    let numbers = flow.source("numbers", from_iter(0..FAN_EVENTS));
    for i in 0..FAN {
        flow.sink(&format!("sink{i}"), &numbers, Total(Arc::clone(&total)));
    }
    run(flow).await;
    total.load(Ordering::Relaxed)
}

async fn tokio_fan_out() -> u64 {
    let mut senders = Vec::new();
    let mut sinks = Vec::new();
    for _ in 0..FAN {
        let (sender, mut receiver) = mpsc::channel::<u64>(CHANNEL);
        senders.push(sender);
        sinks.push(tokio::spawn(async move {
            let mut total = 0;
            while let Some(n) = receiver.recv().await {
                total += n;
            }
            total
        }));
    }
    tokio::spawn(async move {
        for n in 0..FAN_EVENTS {
            for sender in &senders {
                if sender.send(n).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut total = 0;
    for sink in sinks {
        total += sink.await.expect("sink task");
    }
    total
}

fn main() {
    let runtime = runtime();
    let deep = (0..DEEP_EVENTS).map(|n| n + DEPTH as u64).sum::<u64>();
    assert_eq!(runtime.block_on(obzenflow_deep()), deep);
    assert_eq!(runtime.block_on(tokio_deep()), deep);
    let fan_in = FAN_EVENTS * (FAN_EVENTS + 1) / 2;
    assert_eq!(runtime.block_on(obzenflow_fan_in()), fan_in);
    assert_eq!(runtime.block_on(tokio_fan_in()), fan_in);
    let fan_out = FAN * (FAN_EVENTS * (FAN_EVENTS - 1) / 2);
    assert_eq!(runtime.block_on(obzenflow_fan_out()), fan_out);
    assert_eq!(runtime.block_on(tokio_fan_out()), fan_out);

    let mut criterion = support::criterion().sample_size(10);
    let mut group = criterion.benchmark_group("deep");
    group.throughput(criterion::Throughput::Elements(DEEP_EVENTS));
    group.bench_function("obzenflow", |b| {
        b.iter(|| black_box(runtime.block_on(obzenflow_deep())));
    });
    group.bench_function("tokio_items", |b| {
        b.iter(|| black_box(runtime.block_on(tokio_deep())));
    });
    group.finish();
    let mut group = criterion.benchmark_group("fan_in");
    group.throughput(criterion::Throughput::Elements(FAN_EVENTS));
    group.bench_function("obzenflow", |b| {
        b.iter(|| black_box(runtime.block_on(obzenflow_fan_in())));
    });
    group.bench_function("tokio_items", |b| {
        b.iter(|| black_box(runtime.block_on(tokio_fan_in())));
    });
    group.finish();
    let mut group = criterion.benchmark_group("fan_out");
    group.throughput(criterion::Throughput::Elements(FAN_EVENTS));
    group.bench_function("obzenflow", |b| {
        b.iter(|| black_box(runtime.block_on(obzenflow_fan_out())));
    });
    group.bench_function("tokio_items", |b| {
        b.iter(|| black_box(runtime.block_on(tokio_fan_out())));
    });
    group.finish();
    criterion.final_summary();

    // Per event per stage for the chain: divided by the 20 maps only
    // (counting the source and the sink as stages would flatter it).
    if let (Some(subject), Some(baseline)) = (
        support::median_ns("deep", "obzenflow"),
        support::median_ns("deep", "tokio_items"),
    ) {
        let per = |ns: f64| ns / DEEP_EVENTS as f64 / DEPTH as f64;
        println!(
            "deep: obzenflow {:.1} ns/event/stage, tokio_items {:.1} ns/event/stage, ratio {:.2} (goal: under 100 ns/event/stage)",
            per(subject),
            per(baseline),
            subject / baseline
        );
    }
    support::print_ratio(
        "fan_in",
        "obzenflow",
        "tokio_items",
        FAN_EVENTS,
        "8 sources into one map; at most 1.00",
    );
    support::print_ratio(
        "fan_out",
        "obzenflow",
        "tokio_items",
        FAN_EVENTS,
        "one source read by 8 sinks, per source event; at most 1.00",
    );
}
