//! Parallel stages: a transform or a keyed stateful stage run as several
//! instances gives what it gives run as one (in the same order, for a
//! transform; the same emits, for a stateful stage), whatever the
//! instances' timing; a panicking instance fails its stage and the flow,
//! naming both; a graceful stop accounts for every event. (Random
//! topologies with parallel transforms: `random_topologies.rs`; resume and
//! replay of a parallel run: `resume.rs`.)

use obzenflow::flow::{FlowError, FlowHandle, FlowReport, FlowState};
use obzenflow::prelude::*;
use obzenflow::stage::{
    Emitter, StageError, Stateful, StatefulExt, Transform, collect, from_iter, map,
};
use obzenflow::supervise::StageFailure;
use std::collections::BTreeMap;
use std::time::Duration;

/// Takes a pseudo-random while (up to 9 ms, by the input's value) and
/// emits 0, 1 or 2 outputs; unlucky inputs go to the error lane.
#[derive(Clone, Debug)]
struct Slow;

fn scramble(n: u64) -> u64 {
    n.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17)
}

impl Transform<u64, (u64, u64)> for Slow {
    async fn process(&mut self, n: u64, out: &mut Emitter<(u64, u64)>) -> Result<(), StageError> {
        // The delay under test; its test runs on tokio's paused clock.
        tokio::time::sleep(Duration::from_millis(scramble(n) % 10)).await;
        if n % 89 == 3 {
            return Err(StageError::permanent(format!("{n} is unlucky")));
        }
        for copy in 0..(scramble(n) >> 8) % 3 {
            out.emit((n, copy));
        }
        Ok(())
    }
}

/// `0..total` through `Slow` as `instances` instances (keyed by `n % 5` if
/// `keyed`): what the sink got, in order, and how many errors.
async fn slow_flow(total: u64, instances: usize, keyed: bool) -> (Vec<(u64, u64)>, u64) {
    let (sink, out) = collect();
    let mut flow = if keyed {
        flow! {
            name: "slow-keyed",
            stages: {
                numbers = source!(u64 => from_iter(0..total));
                slow = transform!(u64 -> (u64, u64) => Slow, parallel: instances, key: |n: &u64| n % 5);
                out = sink!((u64, u64) => sink);
            },
            topology: { numbers |> slow |> out; }
        }
    } else {
        flow! {
            name: "slow",
            stages: {
                numbers = source!(u64 => from_iter(0..total));
                slow = transform!(u64 -> (u64, u64) => Slow, parallel: instances);
                out = sink!((u64, u64) => sink);
            },
            topology: { numbers |> slow |> out; }
        }
    };
    let report = flow.run().await.unwrap();
    let stage = report.stage("slow").unwrap();
    assert_eq!(stage.events_in, total);
    // Each instance's figures, which add up to the stage's.
    // (one instance is the plain stage)
    if instances > 1 {
        assert_eq!(stage.instances.len(), instances);
        assert_eq!(stage.instances.iter().map(|i| i.events).sum::<u64>(), total);
        assert!(
            report
                .to_string()
                .contains(&format!("instance 0 of {instances}"))
        );
        assert!(
            stage.instances.iter().all(|i| i.events > 0),
            "every instance takes a share: {:?}",
            stage.instances
        );
    } else {
        assert!(stage.instances.is_empty());
    }
    (out.snapshot(), stage.errors)
}

/// What one instance gives, computed by hand.
fn expected(total: u64) -> (Vec<(u64, u64)>, u64) {
    let mut out = Vec::new();
    let mut errors = 0;
    for n in 0..total {
        if n % 89 == 3 {
            errors += 1;
            continue;
        }
        for copy in 0..(scramble(n) >> 8) % 3 {
            out.push((n, copy));
        }
    }
    (out, errors)
}

#[tokio::test(start_paused = true)]
async fn a_parallel_transform_keeps_its_input_order_whatever_each_instance_takes() {
    let want = expected(600);
    assert!(want.0.len() > 400 && want.1 > 0);
    for instances in [1, 2, 3, 4] {
        for keyed in [false, true] {
            assert_eq!(
                slow_flow(600, instances, keyed).await,
                want,
                "{instances} instances, keyed: {keyed}"
            );
        }
    }
}

/// Sums by key (`n % 7`), refusing some inputs; snapshots its state.
#[derive(Clone, Debug, Default)]
struct KeySums(BTreeMap<u64, u64>);

impl Stateful<u64, (u64, u64)> for KeySums {
    fn accumulate(&mut self, n: u64) -> Result<(), StageError> {
        if n % 97 == 5 {
            return Err(StageError::permanent(format!("{n} is unlucky")));
        }
        *self.0.entry(n % 7).or_default() += n;
        Ok(())
    }

    fn emit(&mut self) -> Vec<(u64, u64)> {
        self.0.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// The inputs the instances of `stage` say they handled, summed; each
/// instance has some, and there are `instances` of them.
fn instance_inputs(report: &FlowReport, stage: &str, instances: usize) -> u64 {
    let figures = &report.stage(stage).unwrap().instances;
    assert_eq!(figures.len(), instances, "{stage}");
    assert!(
        figures.iter().all(|one| one.events > 0),
        "{stage}: {figures:?}"
    );
    figures.iter().map(|one| one.events).sum()
}

async fn sums(instances: usize, every: Option<u64>) -> (Vec<(u64, u64)>, FlowReport) {
    let (sink, out) = collect();
    let handler = match every {
        Some(n) => KeySums::default().emit_every(n),
        None => KeySums::default().emit_on_eof(),
    };
    let mut flow = flow! {
        name: "sums",
        stages: {
            numbers = source!(u64 => from_iter(0..2_000u64));
            sums = stateful!(u64 -> (u64, u64) => handler, parallel: instances, key: |n: &u64| n % 7);
            out = sink!((u64, u64) => sink);
        },
        topology: { numbers |> sums |> out; }
    };
    let report = flow.run().await.unwrap();
    (out.snapshot(), report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_stateful_stage_emits_what_one_instance_would_at_every_policy() {
    for every in [None, Some(1), Some(50), Some(333)] {
        let (one, one_report) = sums(1, every).await;
        for instances in [2, 3] {
            let (mut many, report) = sums(instances, every).await;
            let (again, _) = sums(instances, every).await;
            assert_eq!(many, again, "the same emits in the same order every run");
            let context = format!("{instances} instances, every {every:?}");
            let stage = report.stage("sums").unwrap();
            let one_stage = one_report.stage("sums").unwrap();
            assert_eq!(stage.errors, one_stage.errors, "{context}");
            assert_eq!(stage.events_out, one_stage.events_out, "{context}");
            assert_eq!(
                instance_inputs(&report, "sums", instances),
                2_000,
                "{context}"
            );
            // Each emit holds each instance's keys in turn; sorted, the
            // same sums as one instance gives.
            let mut one = one.clone();
            one.sort();
            many.sort();
            assert_eq!(many, one, "{context}");
        }
    }
}

/// Panics on one input.
#[derive(Clone, Debug)]
struct Fragile;

impl Transform<u64, u64> for Fragile {
    async fn process(&mut self, n: u64, out: &mut Emitter<u64>) -> Result<(), StageError> {
        assert!(n != 777, "cannot take {n}");
        out.emit(n);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_instance_fails_its_stage_and_the_flow_naming_both() {
    let mut flow = flow! {
        name: "fragile",
        stages: {
            numbers = source!(u64 => from_iter(0..2_000u64));
            fragile = transform!(u64 -> u64 => Fragile, parallel: 2, key: |n: &u64| *n);
            out = sink!(u64 => collect().0);
        },
        topology: { numbers |> fragile |> out; }
    };
    let error = flow.run().await.unwrap_err();
    assert_an_instance_panicked(&error, "fragile", " of 2: cannot take 777");
}

/// `error` is stage `stage` failing because one of its instances panicked,
/// with a message that names the instance and ends with `ending`.
fn assert_an_instance_panicked(error: &FlowError, stage: &str, ending: &str) {
    let FlowError::StageFailed {
        stage: failed,
        failure: StageFailure::Panicked { message, .. },
        ..
    } = error
    else {
        panic!("{error}");
    };
    assert_eq!(failed, stage);
    assert!(
        message.starts_with("instance ") && message.ends_with(ending),
        "{message}"
    );
    assert!(error.to_string().contains(stage), "{error}");
}

async fn until(flow: &FlowHandle, what: impl Fn(&FlowReport) -> bool) {
    while !what(&flow.report()) {
        assert!(!flow.state().is_terminal(), "{}", flow.report());
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_with_parallel_stages_accounts_for_every_event() {
    let (sink, out) = collect();
    let mut flow = flow! {
        name: "endless",
        stages: {
            numbers = source!(u64 => from_iter(0u64..));
            tripled = transform!(u64 -> u64 => map(|n: u64| n * 3), parallel: 2);
            sums = stateful!(u64 -> (u64, u64) => KeySums::default().emit_every(100), parallel: 3, key: |n: &u64| n % 7);
            out = sink!((u64, u64) => sink);
        },
        topology: { numbers |> tripled |> sums |> out; }
    };
    flow.start().unwrap();
    until(&flow, |report| {
        report.stage("out").is_some_and(|out| out.events_in > 1_000)
    })
    .await;
    let report = flow.stop_graceful(Duration::from_secs(60)).await.unwrap();
    assert_eq!(report.state, FlowState::Stopped);
    let stage = |name: &str| report.stage(name).unwrap();
    let read = stage("numbers").events_out;
    assert_eq!(stage("tripled").events_in, read);
    assert_eq!(stage("tripled").events_out, read);
    assert_eq!(stage("sums").events_in, read);
    assert_eq!(stage("out").events_in, stage("sums").events_out);
    let emitted = out.snapshot();
    assert_eq!(emitted.len() as u64, stage("out").events_out);
    // Stopped, the stateful stage emitted what it held: each key's last
    // sum covers every input the source gave (but the refused ones).
    let last: BTreeMap<u64, u64> = emitted.into_iter().collect();
    let want = (0..read).map(|n| n * 3).filter(|n| n % 97 != 5);
    assert_eq!(last.values().sum::<u64>(), want.clone().sum::<u64>());
    assert_eq!(
        stage("sums").errors,
        (0..read).filter(|n| n * 3 % 97 == 5).count() as u64
    );
}

/// Delivers after a pseudo-random while, refusing some inputs; remembers
/// each delivery's key. Its clones share what they remember.
#[derive(Clone, Debug, Default)]
struct SlowLedger(std::sync::Arc<std::sync::Mutex<Vec<(obzenflow::event::DeliveryKey, String)>>>);

impl obzenflow::stage::Sink<String> for SlowLedger {
    async fn consume(&mut self, _: String) -> Result<obzenflow::stage::Receipt, StageError> {
        Err(StageError::fatal("delivered by key"))
    }

    async fn deliver(
        &mut self,
        key: &obzenflow::event::DeliveryKey,
        text: String,
    ) -> Result<obzenflow::stage::Receipt, StageError> {
        // The delay under test; its test runs on tokio's paused clock.
        tokio::time::sleep(Duration::from_millis(scramble(key.event.seq) % 7)).await;
        if text.ends_with(":7") {
            return Err(StageError::permanent(format!("{text} is refused")));
        }
        self.0.lock().unwrap().push((key.clone(), text));
        Ok(obzenflow::stage::Receipt::delivered())
    }
}

/// A join and a sink as several instances: the join's output in stream
/// order, each delivery once with its key, the receipts journaled in input
/// order, whatever each instance takes.
#[tokio::test(start_paused = true)]
async fn a_parallel_join_and_sink_keep_the_stream_order_and_deliver_each_input_once() {
    use obzenflow::flow::FlowBuilder;
    use obzenflow::flow::journals::memory;
    use obzenflow::stage::{inner_join, parallel};
    let mut results = Vec::new();
    for instances in [1, 3] {
        let mut flow = FlowBuilder::new("deliveries");
        flow.journals(memory().retain_all());
        let days = flow.source("days", from_iter((0..6u64).map(|d| (d, format!("day{d}")))));
        let numbers = flow.source("numbers", from_iter(0..900u64));
        let named = flow.join_parallel(
            "named",
            &days,
            &numbers,
            inner_join(
                |d: &(u64, String)| d.0,
                |n: &u64| n % 7,
                |d: &(u64, String), n: u64| format!("{}:{}", d.1, n % 10),
            ),
            parallel(instances).key_by(|n: &u64| n % 4),
        );
        let ledger = SlowLedger::default();
        let receipts = flow.sink_parallel("out", &named, ledger.clone(), parallel(instances));
        let report = flow.build().unwrap().run().await.unwrap();
        // The receipts name their inputs in input order.
        let parents: Vec<u64> = receipts
            .journal()
            .snapshot()
            .iter()
            .filter(|entry| {
                matches!(
                    entry.body,
                    obzenflow::event::Body::Data(_) | obzenflow::event::Body::Error(_)
                )
            })
            .flat_map(|entry| entry.parents.ids().to_vec())
            .map(|id| id.seq)
            .collect();
        assert!(parents.windows(2).all(|w| w[0] < w[1]), "{parents:?}");
        let delivered = ledger.0.lock().unwrap().clone();
        let keys: std::collections::BTreeSet<_> = delivered.iter().map(|(k, _)| k.event).collect();
        assert_eq!(keys.len(), delivered.len(), "each input delivered once");
        let out = report.stage("out").unwrap();
        assert_eq!(out.events_out, delivered.len() as u64);
        assert_eq!(out.events_in, out.events_out + out.errors);
        assert_eq!(out.errors, report.errors.len() as u64);
        if instances > 1 {
            // Each instance counts the inputs it was given; together, the
            // stage's: every stream event for the join, every input for the sink.
            assert_eq!(instance_inputs(&report, "named", instances), 900);
            assert_eq!(instance_inputs(&report, "out", instances), out.events_in);
        }
        let mut texts: Vec<String> = delivered.into_iter().map(|(_, text)| text).collect();
        texts.sort();
        results.push((
            texts,
            parents,
            report.stage("named").unwrap().events_out,
            out.errors,
        ));
    }
    assert_eq!(results[0].2, 900 - 900 / 7, "stream events with a day");
    assert!(results[0].3 > 0);
    assert_eq!(results[1], results[0]);
}

/// Counts the inputs it finished, taking a (virtual) second each.
#[derive(Clone, Debug, Default)]
struct Ticking(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Transform<u64, u64> for Ticking {
    async fn process(&mut self, n: u64, out: &mut Emitter<u64>) -> Result<(), StageError> {
        // Paused clock: a virtual second.
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        out.emit(n);
        Ok(())
    }
}

/// A cancelled flow leaves none of its instances running: each stops at
/// once, mid-share, not at the end of the share it was given.
#[tokio::test(start_paused = true)]
async fn a_cancelled_parallel_stage_leaves_no_instance_running() {
    use std::sync::atomic::Ordering;
    let ticking = Ticking::default();
    let done = std::sync::Arc::clone(&ticking.0);
    let mut flow = flow! {
        name: "ticking",
        stages: {
            numbers = source!(u64 => from_iter(0..1_000u64));
            ticking = transform!(u64 -> u64 => ticking, parallel: 2);
            out = sink!(u64 => collect().0);
        },
        topology: { numbers |> ticking |> out; }
    };
    flow.start().unwrap();
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let before = done.load(Ordering::Relaxed);
    assert!(before >= 8, "both instances were working: {before}");
    let ended = flow.stop_cancel().await;
    assert!(flow.state().is_terminal(), "{ended:?}");
    let at_cancel = done.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(
        done.load(Ordering::Relaxed),
        at_cancel,
        "an instance ran on"
    );
}

/// What the instances of a parallel observer saw: per instance (numbered
/// as each clone is made), its data, its error records and its control
/// markers, in the order it saw them. A fragile observer panics at 1313.
#[derive(Default)]
struct Sightings {
    fragile: bool,
    made: std::sync::atomic::AtomicUsize,
    seen: std::sync::Mutex<BTreeMap<usize, Seen>>,
}

#[derive(Debug, Default)]
struct Seen {
    data: Vec<u64>,
    errors: u64,
    eofs: u64,
}

struct Watch {
    instance: usize,
    all: std::sync::Arc<Sightings>,
}

impl Watch {
    fn new(all: &std::sync::Arc<Sightings>) -> Self {
        Watch {
            instance: all.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            all: std::sync::Arc::clone(all),
        }
    }
}

impl Clone for Watch {
    fn clone(&self) -> Self {
        Watch::new(&self.all)
    }
}

impl obzenflow::stage::Observer<u64> for Watch {
    fn observe(&mut self, entry: &obzenflow::event::Envelope<u64>) {
        assert!(
            !self.all.fragile || entry.data() != Some(&1_313),
            "cannot watch 1313"
        );
        let mut seen = self.all.seen.lock().unwrap();
        let mine = seen.entry(self.instance).or_default();
        match &entry.body {
            obzenflow::event::Body::Data(n) => mine.data.push(*n),
            obzenflow::event::Body::Error(_) => mine.errors += 1,
            obzenflow::event::Body::Control(obzenflow::event::Control::Eof) => mine.eofs += 1,
            _ => {}
        }
    }
}

/// Lets every input through but those that end in 7, which go to the
/// error lane.
#[derive(Clone)]
struct NoSevens;

impl Transform<u64, u64> for NoSevens {
    async fn process(&mut self, n: u64, out: &mut Emitter<u64>) -> Result<(), StageError> {
        if n % 10 == 7 {
            return Err(StageError::permanent(format!("{n} ends in 7")));
        }
        out.emit(n);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_observer_sees_each_entry_once_each_instance_in_order() {
    for keyed in [false, true] {
        let all = std::sync::Arc::new(Sightings::default());
        let watch = Watch::new(&all);
        let (sink, _) = collect();
        let mut flow = if keyed {
            flow! {
                name: "watched",
                stages: {
                    numbers = source!(u64 => from_iter(0..10_000u64));
                    kept = transform!(u64 -> u64 => NoSevens);
                    out = sink!(u64 => sink);
                    watch = observer!(u64 => watch, parallel: 3, key: |n: &u64| n % 4);
                },
                topology: { numbers |> kept |> out; kept |> watch; }
            }
        } else {
            flow! {
                name: "watched",
                stages: {
                    numbers = source!(u64 => from_iter(0..10_000u64));
                    kept = transform!(u64 -> u64 => NoSevens);
                    out = sink!(u64 => sink);
                    watch = observer!(u64 => watch, parallel: 3);
                },
                topology: { numbers |> kept |> out; kept |> watch; }
            }
        };
        let report = flow.run().await.unwrap();
        assert_eq!(report.state, FlowState::Completed);
        assert_eq!(instance_inputs(&report, "watch", 3), 9_000);
        let seen = all.seen.lock().unwrap();
        // The handler given and its two clones, each an instance.
        assert_eq!(seen.len(), 3, "{keyed}");
        let mut data: Vec<u64> = Vec::new();
        for (instance, mine) in seen.iter() {
            assert!(
                mine.data.windows(2).all(|pair| pair[0] < pair[1]),
                "instance {instance} saw its share out of order"
            );
            assert_eq!(mine.eofs, 1, "every instance sees the end");
            assert!(mine.errors > 0, "instance {instance} saw no error record");
            if keyed {
                let keys: std::collections::BTreeSet<u64> =
                    mine.data.iter().map(|n| n % 4).collect();
                for other in seen.values().filter(|other| !std::ptr::eq(*other, mine)) {
                    assert!(
                        other.data.iter().all(|n| !keys.contains(&(n % 4))),
                        "a key seen by two instances"
                    );
                }
            }
            data.extend(&mine.data);
        }
        data.sort_unstable();
        let kept: Vec<u64> = (0..10_000u64).filter(|n| n % 10 != 7).collect();
        assert_eq!(data, kept, "every event seen once");
        assert_eq!(
            seen.values().map(|mine| mine.errors).sum::<u64>(),
            1_000,
            "every error record seen once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_observer_instance_fails_the_flow_naming_the_stage_and_instance() {
    let all = std::sync::Arc::new(Sightings {
        fragile: true,
        ..Sightings::default()
    });
    let watch = Watch::new(&all);
    let mut flow = flow! {
        name: "watched",
        stages: {
            numbers = source!(u64 => from_iter(0..2_000u64));
            out = sink!(u64 => collect().0);
            watch = observer!(u64 => watch, parallel: 2);
        },
        topology: { numbers |> out; numbers |> watch; }
    };
    let error = flow.run().await.unwrap_err();
    assert_an_instance_panicked(&error, "watch", " of 2: cannot watch 1313");
}
