//! 1,000,000 small events through source -> map -> sink with memory journals,
//! against hand-written tokio pipelines of the same shape, in the same run:
//! one task per stage joined by bounded mpsc channels, item by item (the goal
//! to meet) and in `Vec` batches of 1024 (the speed limit of the shape). And
//! the same flow with durable disk journals (the default fsync policy: each
//! batch fsynced before any reader sees it), against the memory-journal flow.
//!
//! Run: `cargo bench --bench pipeline_linear`

#[path = "support/pipelines.rs"]
mod pipelines;
mod support;

use criterion::Throughput;
use obzenflow::flow::FlowBuilder;
use obzenflow::stage::{from_iter, map};
use pipelines::{Total, runtime};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

const EVENTS: u64 = 1_000_000;
const CHANNEL: usize = 1024;

async fn obzenflow_linear() -> u64 {
    obzenflow_linear_in(None).await
}

/// The linear flow, with disk journals under `disk` if given.
async fn obzenflow_linear_in(disk: Option<&std::path::Path>) -> u64 {
    let total = Arc::new(AtomicU64::new(0));
    let mut flow = FlowBuilder::new("linear");
    if let Some(base) = disk {
        flow.journals(obzenflow::flow::journals::disk(base));
    }
    let numbers = flow.source("numbers", from_iter(0..EVENTS));
    let incremented = flow.transform("incremented", &numbers, map(|n: u64| n + 1));
    flow.sink("total", &incremented, Total(Arc::clone(&total)));
    flow.build()
        .expect("the flow is valid")
        .run()
        .await
        .expect("the flow completes");
    total.load(Ordering::Relaxed)
}

async fn hand_written_items() -> u64 {
    let (to_map, mut from_source) = mpsc::channel::<u64>(CHANNEL);
    let (to_sink, mut from_map) = mpsc::channel::<u64>(CHANNEL);
    let source = tokio::spawn(async move {
        for n in 0..EVENTS {
            if to_map.send(n).await.is_err() {
                break;
            }
        }
    });
    let mapper = tokio::spawn(async move {
        while let Some(n) = from_source.recv().await {
            if to_sink.send(n + 1).await.is_err() {
                break;
            }
        }
    });
    let sink = tokio::spawn(async move {
        let mut total = 0;
        while let Some(n) = from_map.recv().await {
            total += n;
        }
        total
    });
    source.await.expect("source task");
    mapper.await.expect("map task");
    sink.await.expect("sink task")
}

async fn hand_written_batches() -> u64 {
    let (to_map, mut from_source) = mpsc::channel::<Vec<u64>>(CHANNEL / 64);
    let (to_sink, mut from_map) = mpsc::channel::<Vec<u64>>(CHANNEL / 64);
    let source = tokio::spawn(async move {
        let mut next = 0;
        while next < EVENTS {
            let end = (next + 1024).min(EVENTS);
            if to_map.send((next..end).collect()).await.is_err() {
                break;
            }
            next = end;
        }
    });
    let mapper = tokio::spawn(async move {
        while let Some(batch) = from_source.recv().await {
            let mapped: Vec<u64> = batch.into_iter().map(|n| n + 1).collect();
            if to_sink.send(mapped).await.is_err() {
                break;
            }
        }
    });
    let sink = tokio::spawn(async move {
        let mut total = 0;
        while let Some(batch) = from_map.recv().await {
            total += batch.iter().sum::<u64>();
        }
        total
    });
    source.await.expect("source task");
    mapper.await.expect("map task");
    sink.await.expect("sink task")
}

fn main() {
    let runtime = runtime();
    let expected = EVENTS * (EVENTS + 1) / 2;
    assert_eq!(runtime.block_on(obzenflow_linear()), expected);
    assert_eq!(runtime.block_on(hand_written_items()), expected);
    assert_eq!(runtime.block_on(hand_written_batches()), expected);
    let scratch = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("linear-check");
    assert_eq!(
        runtime.block_on(obzenflow_linear_in(Some(&scratch))),
        expected
    );
    let _ = std::fs::remove_dir_all(&scratch);

    let mut criterion = support::criterion().sample_size(10);
    let mut group = criterion.benchmark_group("pipeline_linear");
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("obzenflow", |b| {
        b.iter(|| black_box(runtime.block_on(obzenflow_linear())));
    });
    group.bench_function("tokio_items", |b| {
        b.iter(|| black_box(runtime.block_on(hand_written_items())));
    });
    group.bench_function("tokio_batches", |b| {
        b.iter(|| black_box(runtime.block_on(hand_written_batches())));
    });
    // Each run writes its own run directory (about 8 MB); the time counts
    // the run only, and the directory is removed after it.
    let disk = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("linear-journals");
    group.bench_function("obzenflow_disk", |b| {
        b.iter_custom(|iterations| {
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..iterations {
                let started = std::time::Instant::now();
                black_box(runtime.block_on(obzenflow_linear_in(Some(&disk))));
                spent += started.elapsed();
                let _ = std::fs::remove_dir_all(&disk);
            }
            spent
        });
    });
    group.finish();
    criterion.final_summary();
    support::print_ratio(
        "pipeline_linear",
        "obzenflow",
        "tokio_items",
        EVENTS,
        "goal: at most 1.00, at least the item-by-item pipeline's throughput",
    );
    support::print_ratio(
        "pipeline_linear",
        "obzenflow",
        "tokio_batches",
        EVENTS,
        "for reference: the batched hand-written pipeline",
    );
    support::print_ratio(
        "pipeline_linear",
        "obzenflow_disk",
        "obzenflow",
        EVENTS,
        "goal: at most 2.00, at least half the memory-journal flow's throughput",
    );
}
