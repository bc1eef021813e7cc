//! Random topologies under tokio's paused clock: DAGs of 2 to 30 stages
//! built with the builder API (random fan-in and fan-out, random windows
//! from 1 entry up, handlers that sleep, fail, drop or duplicate at random),
//! some run to the end and some stopped gracefully at a random moment. Every
//! event must be accounted for (each edge's reader read what its writer
//! wrote; each stage's inputs were handled or went to the error lane; each
//! sink's receipts are its deliveries) and no run may deadlock (a stuck run
//! shows as the hour-long virtual timeout firing). A failing case prints its
//! seed; `RANDOM_TOPOLOGY_SEED=n` runs that case alone. One transform and
//! one sink in three run as 1 to 4 parallel instances; one source or
//! transform in four is watched by an observer of 1 to 4 instances, which
//! must see each of its data events once.
//!
//! A second test runs 40 of the shapes with disk journals on the real clock
//! (the journal threads are OS threads, which the paused clock cannot wait
//! for), handlers not sleeping: the same accounting holds, and each stage's
//! journal on disk holds exactly the data and error records its report counts.

use obzenflow::event::Envelope;
use obzenflow::flow::{FlowBuilder, FlowState, StageRef, journals};
use obzenflow::journal::FsyncPolicy;
use obzenflow::journal::disk::stream_raw;
use obzenflow::stage::{
    Emitter, Observer, Poll, Receipt, Sink, Source, StageError, Transform, parallel,
};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// xorshift64*: small, seedable, good enough to pick shapes.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// In `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }
}

/// What a handler did, counted by the handler itself.
#[derive(Default)]
struct Tally {
    /// Outputs it emitted (deliveries, for a sink).
    out: AtomicU64,
    /// Inputs it failed on.
    failed: AtomicU64,
}

/// Up to `remaining` events in batches of random size, pausing at random.
struct RandomSource {
    next: u64,
    remaining: u64,
    rng: Rng,
    /// Whether it pauses at random (under the paused clock only).
    pace: bool,
}

impl Source<u64> for RandomSource {
    async fn next(&mut self) -> Result<Poll<u64>, StageError> {
        if self.remaining == 0 {
            return Ok(Poll::End);
        }
        if self.rng.chance(3) && self.pace {
            // `pace` is set only under tokio's paused clock: a pause costs no time.
            tokio::time::sleep(Duration::from_millis(self.rng.range(1, 20))).await;
        }
        let batch = self.rng.range(1, 300).min(self.remaining);
        self.remaining -= batch;
        self.next += batch;
        Ok(Poll::Events((self.next - batch..self.next).collect()))
    }
}

/// Sleeps, fails, drops or duplicates at random.
#[derive(Clone)]
struct Jittery {
    rng: Rng,
    tally: Arc<Tally>,
    pace: bool,
}

impl Transform<u64, u64> for Jittery {
    async fn process(&mut self, input: u64, out: &mut Emitter<u64>) -> Result<(), StageError> {
        if self.rng.chance(40) && self.pace {
            // As above: paused clock only.
            tokio::time::sleep(Duration::from_millis(self.rng.range(1, 10))).await;
        }
        if self.rng.chance(25) {
            self.tally.failed.fetch_add(1, Ordering::Relaxed);
            return Err(StageError::transient(format!("{input} was unlucky")));
        }
        let copies = match self.rng.next() % 10 {
            0 => 0,
            1 => 2,
            _ => 1,
        };
        for _ in 0..copies {
            out.emit(input.wrapping_add(1));
        }
        self.tally.out.fetch_add(copies, Ordering::Relaxed);
        Ok(())
    }
}

/// Delivers, sleeping and failing at random.
#[derive(Clone)]
struct RandomSink {
    rng: Rng,
    tally: Arc<Tally>,
    pace: bool,
}

impl Sink<u64> for RandomSink {
    async fn consume(&mut self, _input: u64) -> Result<Receipt, StageError> {
        if self.rng.chance(50) && self.pace {
            tokio::time::sleep(Duration::from_millis(self.rng.range(1, 10))).await;
        }
        if self.rng.chance(30) {
            self.tally.failed.fetch_add(1, Ordering::Relaxed);
            return Err(StageError::permanent("refused"));
        }
        self.tally.out.fetch_add(1, Ordering::Relaxed);
        Ok(Receipt::delivered())
    }
}

/// Counts the data events it sees, in a count its copies share.
#[derive(Clone)]
struct Watch(Arc<AtomicU64>);

impl Observer<u64> for Watch {
    fn observe(&mut self, entry: &Envelope<u64>) {
        if entry.data().is_some() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Source,
    Transform,
    Sink,
}

struct Stage {
    name: String,
    kind: Kind,
    inputs: Vec<usize>,
    tally: Arc<Tally>,
}

/// A random DAG: sources first, then transforms and sinks, each reading 1 to
/// 3 earlier sources or transforms; whatever nobody reads feeds a sink.
fn shape(rng: &mut Rng) -> Vec<Stage> {
    let total = rng.range(2, 30) as usize;
    let sources = rng.range(1, (total as u64 / 3).clamp(1, 4)) as usize;
    let mut stages: Vec<Stage> = Vec::new();
    for i in 0..total {
        let kind = if i < sources {
            Kind::Source
        } else if rng.chance(4) || i == total - 1 {
            Kind::Sink
        } else {
            Kind::Transform
        };
        let mut inputs = Vec::new();
        if kind != Kind::Source {
            let readable: Vec<usize> = (0..i).filter(|&j| stages[j].kind != Kind::Sink).collect();
            for _ in 0..rng.range(1, 3) {
                let pick = readable[rng.next() as usize % readable.len()];
                if !inputs.contains(&pick) {
                    inputs.push(pick);
                }
            }
        }
        stages.push(Stage {
            name: format!("s{i}"),
            kind,
            inputs,
            tally: Arc::default(),
        });
    }
    // Whatever nobody reads goes to one more sink (a flow has no dangling output).
    let unread: Vec<usize> = (0..stages.len())
        .filter(|&i| stages[i].kind != Kind::Sink)
        .filter(|&i| !stages.iter().any(|s| s.inputs.contains(&i)))
        .collect();
    if !unread.is_empty() {
        stages.push(Stage {
            name: format!("s{}", stages.len()),
            kind: Kind::Sink,
            inputs: unread,
            tally: Arc::default(),
        });
    }
    stages
}

/// Runs one case, with disk journals under `disk` if given (then on the
/// real clock, handlers not pausing); returns its stage count and how it ended.
async fn run_case(seed: u64, disk: Option<&Path>) -> (usize, FlowState) {
    let pace = disk.is_none();
    let mut rng = Rng::new(seed);
    let stages = shape(&mut rng);
    let mut flow = FlowBuilder::new(format!("random-{seed}"));
    if let Some(base) = disk {
        flow.journals(journals::disk(base).fsync(FsyncPolicy::Never));
    }
    let mut refs: Vec<Option<StageRef<u64>>> = Vec::new();
    for stage in &stages {
        if rng.chance(3) {
            flow.next_stage_capacity(rng.range(1, 64) as usize);
        }
        let inputs: Vec<&StageRef<u64>> = stage
            .inputs
            .iter()
            .map(|&i| refs[i].as_ref().expect("inputs are sources or transforms"))
            .collect();
        let handler_rng = Rng::new(rng.next());
        let made = match stage.kind {
            Kind::Source => Some(flow.source(
                &stage.name,
                RandomSource {
                    next: 0,
                    remaining: rng.range(0, 3_000),
                    rng: handler_rng,
                    pace,
                },
            )),
            Kind::Transform => {
                let handler = Jittery {
                    rng: handler_rng,
                    tally: Arc::clone(&stage.tally),
                    pace,
                };
                // One transform in three runs as 1 to 4 instances.
                Some(if rng.chance(3) {
                    let instances = rng.range(1, 4) as usize;
                    flow.transform_parallel(
                        &stage.name,
                        inputs.as_slice(),
                        handler,
                        parallel(instances),
                    )
                } else {
                    flow.transform(&stage.name, inputs.as_slice(), handler)
                })
            }
            Kind::Sink => {
                let handler = RandomSink {
                    rng: handler_rng,
                    tally: Arc::clone(&stage.tally),
                    pace,
                };
                // One sink in three runs as 1 to 4 instances.
                if rng.chance(3) {
                    let instances = rng.range(1, 4) as usize;
                    flow.sink_parallel(
                        &stage.name,
                        inputs.as_slice(),
                        handler,
                        parallel(instances),
                    );
                } else {
                    flow.sink(&stage.name, inputs.as_slice(), handler);
                }
                None
            }
        };
        refs.push(made);
    }
    // Observers, from a generator of their own (the shapes and handlers
    // above stay those of the seed), added last (the stages keep their
    // places in the run's manifest).
    let mut watching = Rng::new(seed ^ 0x0b5e_47e5);
    let mut watches: Vec<(usize, String, Arc<AtomicU64>)> = Vec::new();
    for (index, target) in refs.iter().enumerate() {
        if let Some(target) = target
            && watching.chance(4)
        {
            let name = format!("w{index}");
            let seen = Arc::<AtomicU64>::default();
            let instances = watching.range(1, 4) as usize;
            flow.observer_parallel(&name, target, Watch(Arc::clone(&seen)), parallel(instances));
            watches.push((index, name, seen));
        }
    }
    let mut handle = flow.build().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let stop_after = rng
        .chance(2)
        .then(|| Duration::from_millis(rng.range(0, 200)));
    let run = async {
        match stop_after {
            None => handle.run().await,
            Some(after) => {
                handle.start().unwrap();
                tokio::time::sleep(after).await;
                handle.stop_graceful(Duration::from_secs(600)).await
            }
        }
    };
    let report = tokio::time::timeout(Duration::from_secs(3_600), run)
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: deadlocked ({} stages)", stages.len()))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert!(
        matches!(report.state, FlowState::Completed | FlowState::Stopped),
        "seed {seed}: {}",
        report.state
    );
    let mut lane = 0;
    for stage in &stages {
        let got = report.stage(&stage.name).unwrap();
        let written: u64 = stage
            .inputs
            .iter()
            .map(|&i| report.stage(&stages[i].name).unwrap().events_out)
            .sum();
        let context = format!("seed {seed}, stage {} of {}", stage.name, stages.len());
        assert_eq!(got.events_in, written, "{context}: read what was written");
        let out = stage.tally.out.load(Ordering::Relaxed);
        let failed = stage.tally.failed.load(Ordering::Relaxed);
        match stage.kind {
            Kind::Source => assert_eq!(got.errors, 0, "{context}"),
            Kind::Transform | Kind::Sink => {
                assert_eq!(got.events_out, out, "{context}: outputs or receipts");
                assert_eq!(got.errors, failed, "{context}: error lane");
            }
        }
        if stage.kind == Kind::Sink {
            assert_eq!(got.events_in, out + failed, "{context}: nothing lost");
        }
        lane += got.errors;
    }
    assert_eq!(report.errors.len() as u64, lane, "seed {seed}: error lane");
    for (target, name, seen) in &watches {
        let written = report.stage(&stages[*target].name).unwrap().events_out;
        let context = format!("seed {seed}, observer {name}");
        assert_eq!(report.stage(name).unwrap().events_in, written, "{context}");
        assert_eq!(
            seen.load(Ordering::Relaxed),
            written,
            "{context}: seen once"
        );
    }
    if let Some(run) = &report.run_dir {
        // What each stage's journal on disk holds is what its report counts.
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap())
                .unwrap();
        for (index, stage) in stages.iter().enumerate() {
            let journal = manifest["stage_journals"][index].as_str().unwrap();
            let mut stream = stream_raw(&run.join(journal), 1024).unwrap();
            let records: Vec<_> = stream.by_ref().flat_map(Result::unwrap).collect();
            assert_eq!(stream.recovery().unwrap().truncated, None, "seed {seed}");
            // Postcard writes the body's variant first: data, error, control.
            let count = |tag: u8| records.iter().filter(|r| r.body[0] == tag).count() as u64;
            let got = report.stage(&stage.name).unwrap();
            let context = format!("seed {seed}, journal of {}", stage.name);
            assert_eq!(count(0), got.events_out, "{context}: data");
            assert_eq!(count(1), got.errors, "{context}: error lane");
            assert!(
                records.iter().enumerate().all(|(i, r)| r.seq == i as u64),
                "{context}: contiguous"
            );
        }
    }
    (stages.len(), report.state)
}

#[tokio::test(start_paused = true)]
async fn random_dags_account_for_every_event_and_never_deadlock() {
    if let Some(seed) = std::env::var("RANDOM_TOPOLOGY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run_case(seed, None).await;
        return;
    }
    let mut shapes = Vec::new();
    for seed in 0..200 {
        shapes.push(run_case(seed, None).await);
    }
    // The cases cover what they claim to: small and large flows, runs to
    // the end and runs stopped midway.
    let sizes: Vec<usize> = shapes.iter().map(|(size, _)| *size).collect();
    assert!(
        sizes.iter().any(|&n| n <= 3) && sizes.iter().any(|&n| n >= 25),
        "{sizes:?}"
    );
    let stopped = shapes
        .iter()
        .filter(|(_, state)| *state == FlowState::Stopped)
        .count();
    assert!((40..=160).contains(&stopped), "{stopped} of 200 stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_dags_with_disk_journals_account_for_every_event_on_disk() {
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("random-topologies");
    let _ = std::fs::remove_dir_all(&base);
    for seed in 1_000..1_040 {
        // A stuck run fails here instead of hanging the suite.
        tokio::time::timeout(Duration::from_secs(60), run_case(seed, Some(&base)))
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: no end within 60 s"));
    }
    let _ = std::fs::remove_dir_all(&base);
}
