//! Partitioned sources: several inputs read at once, each by a task of its
//! own, merged in blocks of `BLOCK` records partition by partition in turn.
//! The merge is checked against a plain model of that order: with CSV files
//! whose bad rows go to the error lane, with partitions that take random
//! times (paused clock), across a resume (seek, and a run interrupted and
//! resumed from its disk journals), and when a partition fails or panics.

#[path = "support/crashed.rs"]
mod crashed;
mod support;

use obzenflow::event::{DeliveryKey, SourcePosition};
use obzenflow::flow::resume::ResumeOptions;
use obzenflow::flow::{FlowError, FlowReport};
use obzenflow::prelude::*;
use obzenflow::stage::partitioned::BLOCK;
use obzenflow::stage::{
    Delivery, Poll, Receipt, Sink, Source, StageError, collect, csv, from_iter, partitioned,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("partitioned")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The order the merge promises: up to `BLOCK` records of each partition
/// in turn, skipping those that have ended.
fn model<T: Clone>(partitions: &[Vec<T>]) -> Vec<T> {
    let mut at = vec![0; partitions.len()];
    let mut merged = Vec::new();
    while at.iter().zip(partitions).any(|(at, p)| *at < p.len()) {
        for (at, partition) in at.iter_mut().zip(partitions) {
            let end = (*at + BLOCK).min(partition.len());
            merged.extend_from_slice(&partition[*at..end]);
            *at = end;
        }
    }
    merged
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Reading {
    station: String,
    celsius: f64,
}

/// A record of a partition file: a row's station, or the line of a bad row.
#[derive(Clone, Debug, PartialEq)]
enum Row {
    Good(String),
    Bad(String),
}

/// Writes `rows` readings to `path`, every 700th of them bad; returns the
/// records as the merge should see them.
fn write_readings(path: &Path, partition: usize, rows: usize) -> Vec<Row> {
    let mut text = String::from("station,celsius\n");
    let mut records = Vec::new();
    for i in 0..rows {
        let station = format!("p{partition}-{i}");
        if i % 700 == 699 {
            text.push_str(&format!("{station},warm\n"));
            records.push(Row::Bad(format!("{} line {}:", path.display(), i + 2)));
        } else {
            text.push_str(&format!("{station},{i}.5\n"));
            records.push(Row::Good(station));
        }
    }
    std::fs::write(path, text).unwrap();
    records
}

/// Runs `read |> out` with `partitioned(sources)` as the source: the
/// outcome and what the sink got.
async fn through_flow<T: obzenflow::event::Payload, S: Source<T>>(
    sources: impl IntoIterator<Item = S>,
) -> (Result<FlowReport, FlowError>, Vec<T>) {
    let (sink, out) = collect::<T>();
    let sources: Vec<S> = sources.into_iter().collect();
    let outcome = flow! {
        name: "partitioned",
        stages: {
            read = source!(T => partitioned(sources));
            out  = sink!(T => sink);
        },
        topology: { read |> out; }
    }
    .run()
    .await;
    (outcome, out.snapshot())
}

async fn read_partitioned(paths: &[PathBuf]) -> (Result<FlowReport, FlowError>, Vec<Reading>) {
    through_flow(paths.iter().map(csv::read::<Reading>)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_partitions_merge_in_blocks_with_their_bad_rows_in_the_error_lane_every_run_alike() {
    let dir = scratch("csv");
    let sizes = [2_500, 10, 1_500, 0];
    let mut partitions = Vec::new();
    let mut paths = Vec::new();
    for (index, rows) in sizes.into_iter().enumerate() {
        let path = dir.join(format!("stations-{index}.csv"));
        partitions.push(write_readings(&path, index, rows));
        paths.push(path);
    }
    let expected = model(&partitions);
    let stations: Vec<String> = expected
        .iter()
        .filter_map(|row| match row {
            Row::Good(station) => Some(station.clone()),
            Row::Bad(_) => None,
        })
        .collect();
    let bad: Vec<&String> = expected
        .iter()
        .filter_map(|row| match row {
            Row::Bad(line) => Some(line),
            Row::Good(_) => None,
        })
        .collect();
    assert_eq!(bad.len(), 3 + 2);
    for _ in 0..3 {
        let (outcome, rows) = read_partitioned(&paths).await;
        let report = outcome.unwrap();
        let got: Vec<&String> = rows.iter().map(|r| &r.station).collect();
        assert_eq!(got.len(), stations.len());
        assert!(
            got.iter().zip(&stations).all(|(a, b)| *a == b),
            "the merge's order"
        );
        assert_eq!(report.errors.len(), bad.len());
        for (error, line) in report.errors.iter().zip(&bad) {
            assert!(
                error.message.starts_with(line.as_str()),
                "{}",
                error.message
            );
        }
        let read = report.stage("read").unwrap();
        assert_eq!(read.events_out + read.errors, 4_010, "nothing lost");
    }
}

/// A partition that gives `items` in batches of `batch`, waiting a
/// pseudo-random time (from `seed`) before each, on the paused clock.
struct Paced {
    items: std::vec::IntoIter<u32>,
    batch: usize,
    seed: u64,
}

impl Source<u32> for Paced {
    async fn next(&mut self) -> Result<Poll<u32>, StageError> {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        // The random pace under test, on the test's paused clock.
        tokio::time::sleep(Duration::from_micros(self.seed % 5_000)).await;
        let batch: Vec<u32> = self.items.by_ref().take(self.batch).collect();
        Ok(if batch.is_empty() {
            Poll::End
        } else {
            Poll::Events(batch)
        })
    }
}

#[tokio::test(start_paused = true)]
async fn the_merge_does_not_depend_on_how_fast_each_partition_is() {
    let partitions: Vec<Vec<u32>> = [3_000u32, 700, 5_100, 1]
        .into_iter()
        .enumerate()
        .map(|(index, len)| (0..len).map(|n| index as u32 * 100_000 + n).collect())
        .collect();
    let expected = model(&partitions);
    for seed in [1u64, 7, 1234, 99_999] {
        let sources: Vec<Paced> = partitions
            .iter()
            .enumerate()
            .map(|(index, items)| Paced {
                items: items.clone().into_iter(),
                // Batches that straddle the merge's blocks.
                batch: 300 + 97 * index,
                seed: seed.wrapping_mul(31).wrapping_add(index as u64 + 1),
            })
            .collect();
        let (outcome, out) = through_flow(sources).await;
        outcome.unwrap();
        assert!(out == expected, "seed {seed}");
    }
}

/// Reads `source` to its end through the `Source` API: each record (an
/// event, or an error's message) with the position after its batch.
async fn records<S: Source<Reading>>(
    source: &mut S,
) -> Vec<(Vec<Result<String, String>>, SourcePosition)> {
    let mut out = Vec::new();
    loop {
        let batch = match source.next().await {
            Ok(Poll::Events(rows)) => rows.into_iter().map(|r| Ok(r.station)).collect(),
            Ok(Poll::End) => return out,
            Err(error) => vec![Err(error.message().to_owned())],
        };
        out.push((batch, source.position().unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_partitioned_source_continues_where_it_stopped() {
    let dir = scratch("seek");
    let paths: Vec<PathBuf> = [1_800, 2_900, 40]
        .into_iter()
        .enumerate()
        .map(|(index, rows)| {
            let path = dir.join(format!("stations-{index}.csv"));
            write_readings(&path, index, rows);
            path
        })
        .collect();
    let open = || partitioned(paths.iter().map(csv::read::<Reading>));
    let whole = records(&mut open()).await;
    // Runs of a block at most, not an event at a time: the first
    // partition's rows before its first bad row come as one run.
    assert_eq!(whole[0].0.len(), 699);
    assert!(whole.iter().all(|(batch, _)| batch.len() <= BLOCK));
    assert!(whole.iter().any(|(batch, _)| batch[0].is_err()), "bad rows");
    let total: usize = whole.iter().map(|(batch, _)| batch.len()).sum();
    assert_eq!(whole.last().unwrap().1.records, total as u64);
    for cut in [1, 4, 5, whole.len() - 1] {
        let mut resumed = open();
        resumed.seek(whole[cut - 1].1).unwrap();
        let rest = records(&mut resumed).await;
        let expected: Vec<_> = whole[cut..].iter().flat_map(|(b, _)| b.clone()).collect();
        let got: Vec<_> = rest.iter().flat_map(|(b, _)| b.clone()).collect();
        assert!(got == expected, "after {cut} batches");
        assert_eq!(rest.last().map(|b| b.1), whole.last().map(|b| b.1));
    }
    // Past the end: the inputs changed since the interrupted run.
    let mut past = open();
    past.seek(SourcePosition {
        records: total as u64 + 5,
        ..SourcePosition::default()
    })
    .unwrap();
    let error = past.next().await.unwrap_err();
    assert!(
        error.message().contains(&format!(
            "the partitions end after {total} records, and the interrupted run had taken {}",
            total + 5
        )),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_fails_fails_the_source_naming_the_partition() {
    let dir = scratch("missing");
    let here = dir.join("stations-0.csv");
    write_readings(&here, 0, 10);
    let missing = dir.join("stations-1.csv");
    let (outcome, _) = read_partitioned(&[here, missing.clone()]).await;
    let error = outcome.unwrap_err().to_string();
    assert!(error.contains("`read`"), "{error}");
    assert!(error.contains("partition 1 of 2: "), "{error}");
    assert!(error.contains(&missing.display().to_string()), "{error}");
}

/// A partition that panics at its first poll.
struct Broken;

impl Source<u32> for Broken {
    async fn next(&mut self) -> Result<Poll<u32>, StageError> {
        panic!("the disk caught fire")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_panics_fails_the_source_naming_the_partition() {
    enum Either {
        Fine(obzenflow::stage::IterSource<std::ops::Range<u32>>),
        Broken(Broken),
    }
    impl Source<u32> for Either {
        async fn next(&mut self) -> Result<Poll<u32>, StageError> {
            match self {
                Either::Fine(source) => source.next().await,
                Either::Broken(source) => source.next().await,
            }
        }
    }
    let sources = [Either::Fine(from_iter(0..10u32)), Either::Broken(Broken)];
    let error = through_flow(sources).await.0.unwrap_err().to_string();
    assert!(
        error.contains("partition 1 of 2 panicked: the disk caught fire"),
        "{error}"
    );
    assert!(error.contains("`read`"), "{error}");
}

/// `start..end` in batches of 100; stalls for ever (as a killed process
/// does) once it has handed out `stall_after`, a multiple of 100.
struct Stalling {
    start: u32,
    next: u32,
    end: u32,
    stall_after: Option<u32>,
}

fn stalling(range: std::ops::Range<u32>, stall_after: Option<u32>) -> Stalling {
    Stalling {
        start: range.start,
        next: range.start,
        end: range.end,
        stall_after,
    }
}

impl Source<u32> for Stalling {
    async fn next(&mut self) -> Result<Poll<u32>, StageError> {
        if self
            .stall_after
            .is_some_and(|stall| self.next - self.start >= stall)
        {
            std::future::pending::<()>().await;
        }
        if self.next >= self.end {
            return Ok(Poll::End);
        }
        let stop = (self.next + 100).min(self.end);
        let batch = (self.next..stop).collect();
        self.next = stop;
        Ok(Poll::Events(batch))
    }

    /// It gives the same numbers every time it is read.
    fn position(&self) -> Option<SourcePosition> {
        Some(SourcePosition {
            records: u64::from(self.next - self.start),
            ..SourcePosition::default()
        })
    }
}

/// A deduplicating sink, kept across runs: each key's first effect, in
/// the order of the effects.
#[derive(Clone, Default)]
struct Effects(Arc<Mutex<(std::collections::BTreeSet<DeliveryKey>, Vec<u32>)>>);

impl Sink<u32> for Effects {
    async fn consume(&mut self, _: u32) -> Result<Receipt, StageError> {
        Err(StageError::fatal("it delivers by key"))
    }

    async fn deliver(&mut self, key: &DeliveryKey, n: u32) -> Result<Receipt, StageError> {
        let mut book = self.0.lock().unwrap();
        if book.0.insert(key.clone()) {
            book.1.push(n);
        }
        Ok(Receipt::delivered())
    }

    fn delivery(&self) -> Delivery {
        Delivery::Deduplicated
    }
}

const PARTS: [std::ops::Range<u32>; 3] = [0..3_000, 10_000..12_500, 20_000..20_050];

fn parts_flow(base: &Path, stall_after: Option<u32>, effects: &Effects) -> FlowHandle {
    let parts = PARTS
        .iter()
        .enumerate()
        .map(|(index, range)| stalling(range.clone(), stall_after.filter(|_| index == 0)));
    let effects = effects.clone();
    flow! {
        name: "parts",
        journals: obzenflow::flow::journals::disk(base),
        stages: {
            read = source!(u32 => partitioned(parts));
            out  = sink!(u32 => effects);
        },
        topology: { read |> out; }
    }
}

fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn an_interrupted_run_of_a_partitioned_source_resumes_to_the_uninterrupted_stream() {
    let base = scratch("interrupted");
    let effects = Effects::default();
    // Partition 0 stalls after 1,500: the merge has taken its first block,
    // the others' first blocks (all 50 of the third), and 476 of its second:
    // 2,574 records.
    let runtime = two_workers();
    runtime.block_on(async {
        let mut flow = parts_flow(&base, Some(1_500), &effects);
        flow.start().unwrap();
        support::wait_until(|| {
            flow.report()
                .stage("out")
                .is_some_and(|out| out.events_out >= 2_574)
        })
        .await;
    });
    drop(runtime);
    let flow_dir = base.join("parts");
    let run = std::fs::read_dir(&flow_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    crashed::forget_the_end(&run);
    assert_eq!(effects.0.lock().unwrap().1.len(), 2_574);
    let report = two_workers()
        .block_on(async {
            let mut flow = parts_flow(&base, None, &effects);
            flow.resume_from(&run, ResumeOptions::default()).unwrap();
            flow.run().await
        })
        .unwrap();
    let whole: Vec<Vec<u32>> = PARTS.iter().map(|range| range.clone().collect()).collect();
    let effects = effects.0.lock().unwrap().1.clone();
    assert_eq!(effects.len(), 5_550, "each number once");
    assert!(effects == model(&whole), "the uninterrupted stream's order");
    assert_eq!(
        report.stage("read").unwrap().events_out,
        5_550,
        "counted over both runs"
    );
}

/// `0..total` in batches of 100, counting its polls; a poll after it gave
/// its end is counted apart.
struct Counted {
    next: u32,
    total: u32,
    polls: Arc<std::sync::atomic::AtomicU32>,
    after_end: Arc<std::sync::atomic::AtomicU32>,
}

impl Source<u32> for Counted {
    async fn next(&mut self) -> Result<Poll<u32>, StageError> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.next > self.total {
            self.after_end.fetch_add(1, SeqCst);
        }
        self.polls.fetch_add(1, SeqCst);
        if self.next >= self.total {
            self.next = self.total + 1;
            return Ok(Poll::End);
        }
        let stop = (self.next + 100).min(self.total);
        let batch = (self.next..stop).collect();
        self.next = stop;
        Ok(Poll::Events(batch))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_partition_is_polled_to_its_end_and_never_after() {
    let (polls, after_end) = (Arc::default(), Arc::default());
    let sources: Vec<Counted> = [1_000u32, 250, 0]
        .into_iter()
        .map(|total| Counted {
            next: 0,
            total,
            polls: Arc::clone(&polls),
            after_end: Arc::clone(&after_end),
        })
        .collect();
    let (outcome, out) = through_flow(sources).await;
    outcome.unwrap();
    assert_eq!(out.len(), 1_250);
    use std::sync::atomic::Ordering::SeqCst;
    // 10 batches and an end, 3 and an end, an end.
    assert_eq!(polls.load(SeqCst), 11 + 4 + 1);
    assert_eq!(after_end.load(SeqCst), 0);
}

/// Numbers for ever, in batches of 100, or (`stuck`) nothing, waiting for
/// ever; holds `alive` while it exists.
struct Endless {
    next: u32,
    stuck: bool,
    alive: Arc<()>,
}

impl Source<u32> for Endless {
    async fn next(&mut self) -> Result<Poll<u32>, StageError> {
        let _ = &self.alive;
        if self.stuck {
            std::future::pending::<()>().await;
        }
        let batch = (self.next..self.next + 100).collect();
        self.next += 100;
        tokio::task::yield_now().await;
        Ok(Poll::Events(batch))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_partitioned_source_leaves_no_partition_reading() {
    let alive = Arc::new(());
    let sources: Vec<Endless> = [false, true]
        .into_iter()
        .map(|stuck| Endless {
            next: 0,
            stuck,
            alive: Arc::clone(&alive),
        })
        .collect();
    let (sink, out) = collect::<u32>();
    let mut flow = flow! {
        name: "endless",
        stages: {
            read = source!(u32 => partitioned(sources));
            out  = sink!(u32 => sink);
        },
        topology: { read |> out; }
    };
    flow.start().unwrap();
    // The first partition's first block; then the merge waits on the second.
    support::wait_until(|| out.snapshot().len() >= BLOCK).await;
    let report = flow.stop_graceful(Duration::from_secs(30)).await.unwrap();
    assert_eq!(report.state, obzenflow::flow::FlowState::Stopped);
    assert_eq!(out.snapshot().len(), BLOCK);
    // Every partition's task is gone with the source, the one waiting for
    // ever too, and with them their handlers.
    support::wait_until(|| Arc::strong_count(&alive) == 1).await;
}

#[test]
fn a_partitioned_source_declares_the_sum_of_its_partitions_counts() {
    let known = partitioned([from_iter(0..10u32), from_iter(0..5u32)]);
    assert_eq!(Source::<u32>::expected_count(&known), Some(15));
    assert_eq!(
        format!("{known:?}"),
        "PartitionedSource { partitions: 2, turn: 0, handed: 0, .. }"
    );
    // One partition that cannot say: the sum is unknown.
    let odd = |n: &u32| n % 2 == 1;
    let unknown = partitioned([
        from_iter((0..10u32).filter(odd)),
        from_iter((0..5u32).filter(odd)),
    ]);
    assert_eq!(Source::<u32>::expected_count(&unknown), None);
}
