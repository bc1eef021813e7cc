//! Resuming interrupted runs, in process: a flow is "crashed" by dropping
//! its runtime while it runs (its tasks vanish, its manifest never records
//! an end, as after a SIGKILL), then resumed; the result must be the one an
//! uninterrupted run gives, each sink effect once, and the resumed archive
//! must replay with 0 differences. `tests/resume_kill.rs` does the same
//! with real SIGKILLs of the flagship's flow.

#[path = "support/crashed.rs"]
mod crashed;

use crashed::forget_the_end;
use obzenflow::event::DeliveryKey;
use obzenflow::flow::journals::{Journals, disk};
use obzenflow::flow::replay::ReplayOptions;
use obzenflow::flow::resume::{ResumeError, ResumeOptions};
use obzenflow::flow::{FlowError, FlowHandle, FlowReport, StartError};
use obzenflow::prelude::*;
use obzenflow::stage::StatefulExt;
use obzenflow::stage::{
    Delivery, Emitter, Poll, Receipt, Sink, Source, SourcePosition, StageError, Stateful,
    Transform, collect, filter, flat_map, from_iter, group_by, inner_join, map,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `0..total`, in batches of `batch`; stalls for ever (as a process does
/// when it is killed) once it has handed out `stall_after`.
#[derive(Debug)]
struct Numbers {
    next: u64,
    total: u64,
    batch: u64,
    stall_after: Option<u64>,
}

fn numbers(total: u64, batch: u64, stall_after: Option<u64>) -> Numbers {
    Numbers {
        next: 0,
        total,
        batch,
        stall_after,
    }
}

impl Source<u64> for Numbers {
    async fn next(&mut self) -> Result<Poll<u64>, StageError> {
        if self.stall_after.is_some_and(|stall| self.next >= stall) {
            std::future::pending::<()>().await;
        }
        if self.next >= self.total {
            return Ok(Poll::End);
        }
        let end = (self.next + self.batch).min(self.total);
        let end = self
            .stall_after
            .map_or(end, |stall| end.min(stall.max(self.next + 1)));
        let batch = (self.next..end).collect();
        self.next = end;
        Ok(Poll::Events(batch))
    }

    fn position(&self) -> Option<SourcePosition> {
        Some(SourcePosition {
            records: self.next,
            ..SourcePosition::default()
        })
    }

    fn seek(&mut self, position: SourcePosition) -> Result<(), StageError> {
        self.next = position.records;
        Ok(())
    }
}

/// What a deduplicating sink did, kept across runs: each key's delivery
/// attempts and its one effect.
#[derive(Clone, Debug, Default)]
struct Ledger(Arc<Mutex<LedgerBook>>);

#[derive(Debug, Default)]
struct LedgerBook {
    attempts: BTreeMap<DeliveryKey, u32>,
    effects: BTreeMap<DeliveryKey, String>,
}

impl Ledger {
    fn effects(&self) -> Vec<String> {
        let mut values: Vec<String> = self.0.lock().unwrap().effects.values().cloned().collect();
        values.sort();
        values
    }
}

impl<T: serde::Serialize + Send + 'static> Sink<T> for Ledger {
    async fn consume(&mut self, _: T) -> Result<Receipt, StageError> {
        Err(StageError::fatal("a ledger delivers by key"))
    }

    async fn deliver(&mut self, key: &DeliveryKey, input: T) -> Result<Receipt, StageError> {
        let mut book = self.0.lock().unwrap();
        *book.attempts.entry(key.clone()).or_default() += 1;
        let value = serde_json::to_string(&input).unwrap();
        book.effects.entry(key.clone()).or_insert(value);
        Ok(Receipt::delivered())
    }

    fn delivery(&self) -> Delivery {
        Delivery::Deduplicated
    }
}

/// A sum that keeps a running total (a stateful handler of its own, with
/// snapshots).
#[derive(Debug, Default)]
struct Sum(u64);

impl Stateful<u64, u64> for Sum {
    fn accumulate(&mut self, input: u64) -> Result<(), StageError> {
        if input % 97 == 5 {
            return Err(StageError::permanent(format!("{input} is unlucky")));
        }
        self.0 += input;
        Ok(())
    }

    fn emit(&mut self) -> Vec<u64> {
        vec![self.0]
    }

    fn snapshot(&self) -> Option<Result<Vec<u8>, StageError>> {
        Some(obzenflow::stage::state::encode(&self.0))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), StageError> {
        self.0 = obzenflow::stage::state::decode(state)?;
        Ok(())
    }
}

/// What one run's sinks saw (and how often its filter took each input).
#[derive(Clone, Debug, Default)]
struct Outputs {
    pairs: Ledger,
    sums: Ledger,
    groups: Ledger,
    joined: Ledger,
    picky: Ledger,
    taken: Taken,
    watched: Watched,
    /// How many instances `doubled`, `both`, `by_day`, `named` and
    /// `out_pairs` run as (0 or 1: one).
    instances: usize,
}

/// How often an observer saw each pair, kept across runs: a resumed
/// observer continues after the last chunk whose end it journaled.
#[derive(Clone, Debug, Default)]
struct Watched(Arc<Mutex<BTreeMap<(u64, u64), u32>>>);

impl obzenflow::stage::Observer<(u64, u64)> for Watched {
    fn observe(&mut self, entry: &obzenflow::event::Envelope<(u64, u64)>) {
        if let Some(pair) = entry.data() {
            *self.0.lock().unwrap().entry(*pair).or_default() += 1;
        }
    }
}

/// How often a filter took each input, kept across runs: a stage resumed
/// after the last input its journal shows taken never takes one twice
/// when its journal was complete (inputs it dropped included).
#[derive(Clone, Debug, Default)]
struct Taken(Arc<Mutex<BTreeMap<u64, u32>>>);

impl Transform<u64, u64> for Taken {
    async fn process(&mut self, n: u64, out: &mut Emitter<u64>) -> Result<(), StageError> {
        *self.0.lock().unwrap().entry(n).or_default() += 1;
        if n.is_multiple_of(2) {
            out.emit(n);
        }
        Ok(())
    }
}

/// A deduplicating sink that refuses some inputs (to the error lane).
#[derive(Clone, Debug, Default)]
struct Picky(Ledger);

impl Sink<u64> for Picky {
    async fn consume(&mut self, _: u64) -> Result<Receipt, StageError> {
        Err(StageError::fatal("by key"))
    }

    async fn deliver(&mut self, key: &DeliveryKey, n: u64) -> Result<Receipt, StageError> {
        if n % 10 == 4 {
            return Err(StageError::permanent(format!("{n} ends in 4")));
        }
        self.0.deliver(key, n).await
    }

    fn delivery(&self) -> Delivery {
        Delivery::Deduplicated
    }
}

/// A flow with every stage kind and shape: a filter that drops inputs
/// (consumed marks), a fan-out, a fan-in, a join against a reference, a
/// stateful stage emitting every few inputs with errors on the way, one
/// emitting at the end, an observer, deduplicating sinks.
fn flow(journals: Journals, source: Numbers, outputs: &Outputs) -> FlowHandle {
    let Outputs {
        pairs,
        sums,
        groups,
        joined,
        picky,
        taken,
        watched,
        instances,
    } = outputs.clone();
    let instances = instances.max(1);
    let picky = Picky(picky);
    flow! {
        name: "resumable",
        journals: journals,
        stages: {
            numbers = source!(u64 => source);
            names   = source!((u64, String) => from_iter((0..7u64).map(|k| (k, format!("day{k}")))));
            evens   = transform!(u64 -> u64 => taken);
            odds    = transform!(u64 -> u64 => filter(|n: &u64| n % 2 == 1));
            doubled = transform!(u64 -> u64 => flat_map(|n: u64| if n.is_multiple_of(3) { vec![n, n * 10] } else { vec![n] }), parallel: instances);
            both    = transform!(u64 -> (u64, u64) => map(|n: u64| (n % 7, n)), parallel: instances);
            sum     = stateful!(u64 -> u64 => Sum::default().emit_every(25));
            by_day  = stateful!((u64, u64) -> (u64, u64) => group_by(|p: &(u64, u64)| p.0, |total: &mut u64, p: (u64, u64)| *total += p.1).emit_on_eof(),
                        parallel: instances, key: |p: &(u64, u64)| p.0);
            named   = join!((u64, String), (u64, u64) -> String => inner_join(
                |r: &(u64, String)| r.0,
                |p: &(u64, u64)| p.0,
                |r: &(u64, String), p: (u64, u64)| format!("{}:{}", r.1, p.1),
            ), parallel: instances);
            watch   = observer!((u64, u64) => watched, parallel: instances);
            out_pairs  = sink!((u64, u64) => pairs, parallel: instances, key: |p: &(u64, u64)| p.1);
            out_sums   = sink!(u64 => sums);
            out_groups = sink!((u64, u64) => groups);
            out_joined = sink!(String => joined);
            out_picky  = sink!(u64 => picky);
        },
        topology: {
            numbers |> evens;
            numbers |> odds;
            evens |> out_picky;
            evens |> doubled;
            (doubled, odds) |> both;
            odds |> sum |> out_sums;
            both |> out_pairs;
            both |> by_day |> out_groups;
            (names, both) |> named |> out_joined;
            both |> watch;
        }
    }
}

const TOTAL: u64 = 3_000;

/// A directory of its own for each call (`cargo test` runs this file's
/// tests as threads of one process).
fn base(name: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("resume-{name}-{}-{call}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn journals(base: &Path) -> Journals {
    disk(base).snapshot_every(40, Duration::from_secs(3600))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs until the source stalls after `stall_after` and `settled` holds of
/// the running flow, then drops the runtime: the run is interrupted there.
/// Returns its run directory.
fn crash(
    base: &Path,
    stall_after: u64,
    settled: impl Fn(&FlowReport) -> bool,
    outputs: &Outputs,
) -> PathBuf {
    let runtime = runtime();
    let run = runtime.block_on(async {
        let mut flow = flow(
            journals(base),
            numbers(TOTAL, 64, Some(stall_after)),
            outputs,
        );
        flow.start().unwrap();
        until(&flow, settled).await;
        run_dir(base)
    });
    drop(runtime);
    // Dropping the runtime lets the flow's supervisor see its stages
    // vanish, and record an end; a killed process records none.
    forget_the_end(&run);
    run
}

/// Waits until `what` holds of the running flow's report; panics if the
/// flow ends first (it failed: a waiting test would wait for ever).
async fn until(flow: &FlowHandle, what: impl Fn(&FlowReport) -> bool) {
    loop {
        let report = flow.report();
        if what(&report) {
            return;
        }
        if flow.state().is_terminal() {
            panic!("the flow ended before the test's condition held:\n{report}");
        }
        tokio::task::yield_now().await;
    }
}

/// The one run directory under `base`.
fn run_dir(base: &Path) -> PathBuf {
    let flow_dir = base.join("resumable");
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&flow_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.remove(0)
}

fn resume(base: &Path, run: &Path, outputs: &Outputs) -> Result<FlowReport, FlowError> {
    runtime().block_on(async {
        let mut flow = flow(journals(base), numbers(TOTAL, 64, None), outputs);
        flow.resume_from(run, ResumeOptions::default()).unwrap();
        flow.run().await
    })
}

fn replay_verifies(run: &Path, instances: usize) {
    let replay_base = base("replay");
    runtime().block_on(async {
        let mut flow = flow(
            journals(&replay_base),
            numbers(TOTAL, 64, None),
            &Outputs {
                instances,
                ..Outputs::default()
            },
        );
        flow.replay_from(run, ReplayOptions::default()).unwrap();
        flow.run().await.unwrap();
        let verification = flow.verify_replay().unwrap();
        assert!(verification.matched(), "{verification}");
    });
    let _ = std::fs::remove_dir_all(&replay_base);
}

/// What an uninterrupted run gives.
fn uninterrupted() -> (Outputs, FlowReport) {
    let base = base("whole");
    let outputs = Outputs::default();
    let report = runtime()
        .block_on(async {
            flow(journals(&base), numbers(TOTAL, 64, None), &outputs)
                .run()
                .await
        })
        .unwrap();
    let _ = std::fs::remove_dir_all(&base);
    (outputs, report)
}

fn assert_same(whole: &Outputs, resumed: &Outputs) {
    assert_same_with(whole, resumed, false);
}

/// As [`assert_same`]; `settled`: the run was interrupted with every
/// delivery receipted, so none may have been attempted twice.
fn assert_same_with(whole: &Outputs, resumed: &Outputs, settled: bool) {
    for (name, a, b) in [
        ("pairs", &whole.pairs, &resumed.pairs),
        ("sums", &whole.sums, &resumed.sums),
        ("groups", &whole.groups, &resumed.groups),
        ("joined", &whole.joined, &resumed.joined),
        ("picky", &whole.picky, &resumed.picky),
    ] {
        assert_eq!(a.effects(), b.effects(), "sink `{name}`");
        let book = b.0.lock().unwrap();
        assert_eq!(book.effects.len(), book.attempts.len(), "sink `{name}`");
        if settled {
            let again: Vec<_> = book.attempts.iter().filter(|(_, n)| **n > 1).collect();
            assert!(
                again.is_empty(),
                "sink `{name}` was delivered again: {again:?}"
            );
        }
    }
    let (once, seen) = (
        whole.watched.0.lock().unwrap(),
        resumed.watched.0.lock().unwrap(),
    );
    if settled {
        assert_eq!(
            *once, *seen,
            "observer `watch`: each pair seen as often as in one run"
        );
    } else {
        for (pair, times) in once.iter() {
            assert!(
                seen.get(pair) >= Some(times),
                "observer `watch` missed {pair:?}"
            );
        }
    }
    let taken = resumed.taken.0.lock().unwrap();
    assert_eq!(taken.len() as u64, TOTAL, "every input taken");
    if settled {
        let again: Vec<_> = taken.iter().filter(|(_, n)| **n > 1).collect();
        assert!(again.is_empty(), "`evens` took inputs again: {again:?}");
    }
}

/// Whether `name` journaled a snapshot of its state in the run `run`.
fn journaled_a_snapshot(run: &Path, name: &str, outputs: &Outputs) -> bool {
    let viewer = flow(journals(run), numbers(TOTAL, 64, None), outputs);
    let mut lines = Vec::new();
    viewer.inspect(run, &mut lines).unwrap();
    String::from_utf8(lines).unwrap().lines().any(|line| {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        line["stage"] == name && line["body"].get("Snapshot").is_some()
    })
}

fn stage<'a>(report: &'a FlowReport, name: &str) -> &'a obzenflow::supervise::StageReport {
    report.stage(name).unwrap()
}

/// Interrupted at many points (mid-batch, with stages behind, with the
/// source done and sinks behind), resumed, resumed again, with the
/// parallel stages as one instance or several: always the uninterrupted
/// (one-instance) result, each effect once, and a replay that verifies.
#[test]
fn interrupted_runs_resume_to_the_uninterrupted_result() {
    let (whole, whole_report) = uninterrupted();
    assert!(!whole.pairs.effects().is_empty());
    // (where the source stalls, whether to wait for every stage to catch
    // up, how many instances the parallel stages run as)
    for (stall, settle, instances) in [
        (0, true, 1),
        (1, false, 1),
        (130, true, 1),
        (700, false, 1),
        (1500, true, 1),
        (2999, false, 1),
        (3000, true, 1),
        (1, false, 2),
        (900, true, 3),
        (1700, false, 2),
        (3000, true, 2),
    ] {
        let base = base(&format!("stall-{stall}-{settle}-{instances}"));
        let outputs = Outputs {
            instances,
            ..Outputs::default()
        };
        let settled = |report: &FlowReport| {
            let source = stage(report, "numbers").events_out;
            source >= stall.min(TOTAL)
                && (!settle
                    || stage(report, "evens").events_in == source
                        && stage(report, "odds").events_in == source
                        && stage(report, "out_picky").events_in
                            == stage(report, "evens").events_out
                        && stage(report, "out_picky").events_out
                            + stage(report, "out_picky").errors
                            == stage(report, "out_picky").events_in)
                && (!settle
                    || (stage(report, "out_pairs").events_out == stage(report, "both").events_out
                        && stage(report, "both").events_in
                            == stage(report, "doubled").events_out
                                + stage(report, "odds").events_out
                        && stage(report, "out_sums").events_in == stage(report, "sum").events_out
                        && stage(report, "watch").events_in == stage(report, "both").events_out))
        };
        let run = crash(&base, stall, settled, &outputs);
        let manifest = obzenflow::flow::replay::read_manifest(&run).unwrap();
        assert_eq!(manifest.ended_at, None);
        let report = resume(&base, &run, &outputs).unwrap_or_else(|e| panic!("stall {stall}: {e}"));
        assert_eq!(
            report.state,
            obzenflow::flow::FlowState::Completed,
            "stall {stall}"
        );
        assert_same_with(&whole, &outputs, settle);
        // The report covers the whole run, the interrupted part included.
        for name in [
            "numbers",
            "evens",
            "both",
            "sum",
            "out_pairs",
            "out_joined",
            "out_picky",
        ] {
            assert_eq!(
                (
                    stage(&report, name).events_in,
                    stage(&report, name).events_out,
                    stage(&report, name).errors
                ),
                (
                    stage(&whole_report, name).events_in,
                    stage(&whole_report, name).events_out,
                    stage(&whole_report, name).errors
                ),
                "stall {stall}: stage `{name}`"
            );
        }
        let manifest = obzenflow::flow::replay::read_manifest(&run).unwrap();
        assert_eq!(manifest.resumptions.len(), 1);
        assert_eq!(manifest.status, "completed");
        replay_verifies(&run, instances);
        let _ = std::fs::remove_dir_all(&base);
    }
}

#[test]
fn a_resume_interrupted_again_resumes_again() {
    let (whole, _) = uninterrupted();
    let base = base("twice");
    let outputs = Outputs::default();
    let run = crash(
        &base,
        500,
        |r| stage(r, "numbers").events_out >= 500,
        &outputs,
    );
    // The first resume stalls too: built with a source that stalls later.
    let runtime = runtime();
    runtime.block_on(async {
        let mut flow = flow(journals(&base), numbers(TOTAL, 64, Some(1800)), &outputs);
        flow.resume_from(&run, ResumeOptions::default()).unwrap();
        flow.start().unwrap();
        until(&flow, |r| stage(r, "numbers").events_out >= 1800).await;
    });
    drop(runtime);
    forget_the_end(&run);
    let report = resume(&base, &run, &outputs).unwrap();
    assert_eq!(report.state, obzenflow::flow::FlowState::Completed);
    assert_same(&whole, &outputs);
    let manifest = obzenflow::flow::replay::read_manifest(&run).unwrap();
    assert_eq!(manifest.resumptions.len(), 2);
    assert_eq!(
        manifest.resumptions[1].positions[0].map(|p| p.records),
        Some(1800)
    );
    replay_verifies(&run, 1);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_completed_run_and_a_memory_flow_are_refused() {
    let base = base("refused");
    let runtime = runtime();
    let run = runtime.block_on(async {
        flow(journals(&base), numbers(100, 64, None), &Outputs::default())
            .run()
            .await
            .unwrap()
            .run_dir
            .unwrap()
    });
    let mut again = flow(journals(&base), numbers(100, 64, None), &Outputs::default());
    let error = again
        .resume_from(&run, ResumeOptions::default())
        .unwrap_err();
    assert!(
        matches!(error, ResumeError::Ended { ref status, .. } if status == "completed"),
        "{error}"
    );
    assert!(error.to_string().contains("nothing to resume"), "{error}");
    // Pretend it crashed: a flow in memory cannot continue it.
    forget_the_end(&run);
    let mut memory = flow(
        obzenflow::flow::journals::memory(),
        numbers(100, 64, None),
        &Outputs::default(),
    );
    let error = memory
        .resume_from(&run, ResumeOptions::default())
        .unwrap_err();
    assert!(
        matches!(error, ResumeError::MemoryJournal { .. }),
        "{error}"
    );
    // A run killed while it started, before its manifest.
    let early = base.join("resumable/never-started");
    std::fs::create_dir_all(early.join("stages")).unwrap();
    let error = flow(journals(&base), numbers(100, 64, None), &Outputs::default())
        .resume_from(&early, ResumeOptions::default())
        .unwrap_err();
    assert!(matches!(error, ResumeError::NeverStarted { .. }), "{error}");
    assert!(error.to_string().contains("run the flow again"), "{error}");
    // Another flow's archive.
    let mut other = FlowBuilder::new("resumable");
    other.journals(journals(&base));
    let n = other.source("numbers", from_iter(0..3u64));
    other.sink("out", &n, collect().0);
    let error = other
        .build()
        .unwrap()
        .resume_from(&run, ResumeOptions::default())
        .unwrap_err();
    assert!(error.to_string().contains("different flow"), "{error}");
    let _ = std::fs::remove_dir_all(&base);
}

/// A source that cannot seek refuses the resume once it has journaled
/// events, naming itself; a stateful handler that cannot snapshot is fine
/// while it has emitted nothing, and refused once it has.
#[test]
fn what_cannot_continue_is_refused_naming_the_stage() {
    #[derive(Debug)]
    struct NoSeek(u64, u64);
    impl Source<u64> for NoSeek {
        async fn next(&mut self) -> Result<Poll<u64>, StageError> {
            if self.0 >= self.1 {
                std::future::pending::<()>().await;
            }
            self.0 += 1;
            Ok(Poll::Events(vec![self.0]))
        }
        fn position(&self) -> Option<SourcePosition> {
            Some(SourcePosition::default())
        }
    }
    let dir = base("noseek");
    let build = |base: &Path| {
        let mut flow = FlowBuilder::new("noseek");
        flow.journals(journals(base));
        let n = flow.source("ticks", NoSeek(0, 5));
        flow.sink("out", &n, collect().0);
        flow.build().unwrap()
    };
    let runtime_a = runtime();
    runtime_a.block_on(async {
        let mut flow = build(&dir);
        flow.start().unwrap();
        until(&flow, |r| stage(r, "out").events_in >= 5).await;
    });
    drop(runtime_a);
    let run = run_dir_of(&dir, "noseek");
    forget_the_end(&run);
    let mut again = build(&dir);
    again.resume_from(&run, ResumeOptions::default()).unwrap();
    let error = runtime().block_on(async { again.run().await.unwrap_err() });
    let FlowError::CannotStart { error, .. } = &error else {
        panic!("{error}")
    };
    assert!(
        matches!(**error, StartError::Resume { ref stage, .. } if stage == "ticks"),
        "{error}"
    );
    assert!(error.to_string().contains("Source::seek"), "{error}");
    // Refused before anything ran: the archive is as it was.
    assert_eq!(
        obzenflow::flow::replay::read_manifest(&run)
            .unwrap()
            .resumptions
            .len(),
        0
    );
    let _ = std::fs::remove_dir_all(&dir);

    // A reduce over a type without snapshots, emitted at the end only.
    #[derive(Debug, Default)]
    struct Count(u64);
    impl Stateful<u64, u64> for Count {
        fn accumulate(&mut self, _: u64) -> Result<(), StageError> {
            self.0 += 1;
            Ok(())
        }
        fn emit(&mut self) -> Vec<u64> {
            vec![self.0]
        }
    }
    let base = self::base("count");
    let build = |base: &Path, every: Option<u64>, stall: Option<u64>, out: Ledger| {
        let mut flow = FlowBuilder::new("count");
        flow.journals(journals(base));
        let n = flow.source("numbers", numbers(200, 16, stall));
        let counted = match every {
            Some(every) => flow.stateful_with("count", &n, Count::default().emit_every(every)),
            None => flow.stateful_with("count", &n, Count::default().emit_on_eof()),
        };
        flow.sink("out", &counted, out);
        flow.build().unwrap()
    };
    // Emitting at the end only: it folds everything again, and is right.
    let out = Ledger::default();
    let runtime_a = runtime();
    runtime_a.block_on(async {
        let mut flow = build(&base, None, Some(100), out.clone());
        flow.start().unwrap();
        until(&flow, |r| stage(r, "count").events_in >= 100).await;
    });
    drop(runtime_a);
    let run = run_dir_of(&base, "count");
    forget_the_end(&run);
    let report = runtime()
        .block_on(async {
            let mut flow = build(&base, None, None, out.clone());
            flow.resume_from(&run, ResumeOptions::default()).unwrap();
            flow.run().await
        })
        .unwrap();
    assert_eq!(out.effects(), ["200"]);
    assert_eq!(stage(&report, "count").events_in, 200);
    let _ = std::fs::remove_dir_all(&base);
    // Emitting on the way: refused, saying what to implement.
    let base = self::base("count-every");
    let runtime_b = runtime();
    runtime_b.block_on(async {
        let mut flow = build(&base, Some(10), Some(100), Ledger::default());
        flow.start().unwrap();
        until(&flow, |r| stage(r, "count").events_out >= 10).await;
    });
    drop(runtime_b);
    let run = run_dir_of(&base, "count");
    forget_the_end(&run);
    let error = runtime()
        .block_on(async {
            let mut flow = build(&base, Some(10), None, Ledger::default());
            flow.resume_from(&run, ResumeOptions::default()).unwrap();
            flow.run().await
        })
        .unwrap_err();
    assert!(
        error.to_string().contains("stage `count` cannot resume"),
        "{error}"
    );
    assert!(error.to_string().contains("Stateful::snapshot"), "{error}");
    let _ = std::fs::remove_dir_all(&base);
}

fn run_dir_of(base: &Path, flow: &str) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(base.join(flow))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    runs.remove(0)
}

/// A sink that cannot deduplicate is delivered again what followed its
/// last receipt, and the report counts those as possible duplicates.
#[test]
fn an_at_least_once_sink_is_told_and_counted() {
    /// Keeps what it is given; with `stuck_after`, stops for ever (as a
    /// process killed mid-delivery) once it has delivered that many.
    #[derive(Clone, Debug, Default)]
    struct Slow(Arc<Mutex<Vec<u64>>>, Option<usize>);
    impl Sink<u64> for Slow {
        async fn consume(&mut self, n: u64) -> Result<Receipt, StageError> {
            if self
                .1
                .is_some_and(|stuck| self.0.lock().unwrap().len() >= stuck)
            {
                std::future::pending::<()>().await;
            }
            self.0.lock().unwrap().push(n);
            Ok(Receipt::delivered())
        }
    }
    let base = base("atleast");
    let build = |stall: Option<u64>, out: Slow| {
        let mut flow = FlowBuilder::new("atleast");
        flow.journals(journals(&base));
        let n = flow.source("numbers", numbers(500, 50, stall));
        flow.sink("out", &n, out);
        flow.build().unwrap()
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let runtime_a = runtime();
    runtime_a.block_on(async {
        let mut flow = build(Some(250), Slow(Arc::clone(&seen), Some(100)));
        flow.start().unwrap();
        // The source has journaled 250, the sink receipted two batches of
        // 50 and is stuck in its third.
        until(&flow, |r| {
            stage(r, "numbers").events_out >= 250 && stage(r, "out").events_out >= 100
        })
        .await;
    });
    drop(runtime_a);
    let run = run_dir_of(&base, "atleast");
    forget_the_end(&run);
    let report = runtime()
        .block_on(async {
            let mut flow = build(None, Slow(Arc::clone(&seen), None));
            flow.resume_from(&run, ResumeOptions::default()).unwrap();
            flow.run().await
        })
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    // Every input delivered, in order, each once here (the stuck delivery
    // never happened); the 150 after the last receipt were possibly
    // delivered before, as far as the flow can know.
    assert_eq!(seen, (0..500).collect::<Vec<_>>());
    let out = stage(&report, "out");
    assert_eq!(out.possible_duplicates, 150);
    assert_eq!((out.events_in, out.events_out), (500, 500));
    assert!(
        report.to_string().contains("150 inputs delivered again"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// A join whose reference had not all arrived when the run stopped loads
/// it again, whole, and joins the rest of the stream.
#[test]
fn a_join_interrupted_while_loading_its_reference_resumes() {
    let base = base("join");
    let build = |stall_ref: Option<u64>, out: Ledger| {
        let mut flow = FlowBuilder::new("join");
        flow.journals(journals(&base));
        let days = flow.source("days", numbers(40, 4, stall_ref));
        let events = flow.source("events", from_iter(0..300u64));
        let names = flow.transform("names", &days, map(|d: u64| (d, format!("day{d}"))));
        let joined = flow.join(
            "joined",
            &names,
            &events,
            inner_join(
                |r: &(u64, String)| r.0,
                |e: &u64| e % 50,
                |r: &(u64, String), e: u64| format!("{}:{e}", r.1),
            ),
        );
        flow.sink("out", &joined, out);
        flow.build().unwrap()
    };
    let whole = Ledger::default();
    runtime().block_on(async { build(None, whole.clone()).run().await.unwrap() });
    let _ = std::fs::remove_dir_all(base.join("join"));
    let out = Ledger::default();
    let runtime_a = runtime();
    runtime_a.block_on(async {
        let mut flow = build(Some(17), out.clone());
        flow.start().unwrap();
        until(&flow, |r| stage(r, "names").events_out >= 17).await;
    });
    drop(runtime_a);
    let run = run_dir_of(&base, "join");
    forget_the_end(&run);
    runtime()
        .block_on(async {
            let mut flow = build(None, out.clone());
            flow.resume_from(&run, ResumeOptions::default()).unwrap();
            flow.run().await
        })
        .unwrap();
    assert_eq!(out.effects(), whole.effects());
    let _ = std::fs::remove_dir_all(&base);
}

/// Stateful stages under each emit policy, each with a helper's snapshots:
/// event-time windows (emitting as the watermark passes), a reduce
/// emitting every few inputs, a top-n at the end, a group-by on a
/// processing-time window. Interrupted at several points, resumed: the
/// uninterrupted result.
#[test]
fn stateful_helpers_resume_under_every_emit_policy() {
    use obzenflow::stage::window::{Timestamp, tumbling};
    use obzenflow::stage::{reduce, top_n};
    let build = |base: &Path, stall: Option<u64>, out: [Ledger; 4]| {
        let [windows, sums, best, groups] = out;
        let mut flow = FlowBuilder::new("policies");
        flow.journals(journals(base));
        let n = flow.source("numbers", numbers(2_000, 32, stall));
        let w = flow.stateful_with(
            "windows",
            &n,
            tumbling(
                Duration::from_millis(100),
                |n: &u64| n % 3,
                |n: &u64| Ok(Timestamp::from_millis(*n as i64)),
                |sum: &mut u64, n: u64| *sum += n,
            ),
        );
        let s = flow.stateful_with(
            "sums",
            &n,
            reduce(0u64, |sum: &mut u64, n: u64| *sum += n).emit_every(77),
        );
        let t = flow.stateful_with("best", &n, top_n(5, |n: &u64| n % 101).emit_on_eof());
        let g = flow.stateful_with(
            "groups",
            &n,
            group_by(|n: &u64| n % 4, |c: &mut u64, _: u64| *c += 1)
                .emit_every_window(Duration::from_secs(3600)),
        );
        flow.sink("out_windows", &w, windows);
        flow.sink::<u64>("out_sums", &s, sums);
        flow.sink::<u64>("out_best", &t, best);
        flow.sink::<(u64, u64)>("out_groups", &g, groups);
        flow.build().unwrap()
    };
    let ledgers = || std::array::from_fn::<Ledger, 4, _>(|_| Ledger::default());
    let whole = ledgers();
    let base_whole = base("policies-whole");
    runtime().block_on(async { build(&base_whole, None, whole.clone()).run().await.unwrap() });
    let _ = std::fs::remove_dir_all(&base_whole);
    for stall in [1, 300, 1_000, 1_999] {
        let dir = base(&format!("policies-{stall}"));
        let out = ledgers();
        let interrupted = runtime();
        interrupted.block_on(async {
            let mut flow = build(&dir, Some(stall), out.clone());
            flow.start().unwrap();
            until(&flow, |r| stage(r, "out_sums").events_in >= stall / 77).await;
        });
        drop(interrupted);
        let run = run_dir_of(&dir, "policies");
        forget_the_end(&run);
        runtime()
            .block_on(async {
                let mut flow = build(&dir, None, out.clone());
                flow.resume_from(&run, ResumeOptions::default()).unwrap();
                flow.run().await
            })
            .unwrap_or_else(|e| panic!("stall {stall}: {e}"));
        for (name, (a, b)) in ["windows", "sums", "best", "groups"]
            .iter()
            .zip(whole.iter().zip(&out))
        {
            assert_eq!(a.effects(), b.effects(), "stall {stall}: `{name}`");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A flow with a feedback loop is refused, saying why.
#[test]
fn a_feedback_loop_is_refused() {
    let dir = base("loop");
    let build = |dir: &Path| {
        let mut flow = FlowBuilder::new("loop");
        flow.journals(journals(dir));
        let n = flow.source("numbers", from_iter(0..10u64));
        let (head, port) = flow.loop_head("head", &n, map(|n: u64| n), 10);
        let halved = flow.transform("halved", &head, filter(|n: &u64| *n > 1));
        let back = flow.transform("back", &halved, map(|n: u64| n / 2));
        flow.feedback(&port, &back);
        flow.sink("out", &halved, collect().0);
        flow.build().unwrap()
    };
    let run = runtime().block_on(async { build(&dir).run().await.unwrap().run_dir.unwrap() });
    forget_the_end(&run);
    let error = build(&dir)
        .resume_from(&run, ResumeOptions::default())
        .unwrap_err();
    assert!(
        matches!(error, ResumeError::FeedbackLoop { ref stage } if stage == "head"),
        "{error}"
    );
    assert!(error.to_string().contains("feedback loop"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

mod v1 {
    #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
    pub(crate) struct Reading {
        pub(crate) value: u64,
    }
}

mod v2 {
    #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
    pub(crate) struct Reading {
        pub(crate) label: String,
        pub(crate) value: f64,
    }
}

/// A payload type changed since the run was interrupted (same name, other
/// fields) is refused before anything runs, naming the journal and saying
/// why; the archive stays resumable by the flow that wrote it.
#[test]
fn a_changed_payload_type_is_refused_before_anything_runs() {
    let dir = base("changed");
    let interrupted = runtime();
    interrupted.block_on(async {
        let mut flow = FlowBuilder::new("changed");
        flow.journals(journals(&dir));
        let n = flow.source("numbers", numbers(1_000, 10, Some(500)));
        let r = flow.transform("readings", &n, map(|value: u64| v1::Reading { value }));
        flow.sink("out", &r, collect().0);
        let mut flow = flow.build().unwrap();
        flow.start().unwrap();
        until(&flow, |r| stage(r, "out").events_in >= 500).await;
    });
    drop(interrupted);
    let run = run_dir_of(&dir, "changed");
    forget_the_end(&run);
    let mut flow = FlowBuilder::new("changed");
    flow.journals(journals(&dir));
    let n = flow.source("numbers", numbers(1_000, 10, None));
    let r = flow.transform(
        "readings",
        &n,
        map(|value: u64| v2::Reading {
            label: String::new(),
            value: value as f64,
        }),
    );
    flow.sink("out", &r, collect().0);
    let mut flow = flow.build().unwrap();
    flow.resume_from(&run, ResumeOptions::default()).unwrap();
    let error = runtime().block_on(flow.run()).unwrap_err().to_string();
    assert!(
        error.contains("stage `readings` cannot open its disk journal"),
        "{error}"
    );
    assert!(error.contains("does not decode as"), "{error}");
    assert!(error.contains("payload type"), "{error}");
    let manifest = obzenflow::flow::replay::read_manifest(&run).unwrap();
    assert!(manifest.ended_at.is_none() && manifest.resumptions.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_keyed_stage_resumed_with_another_instance_count_is_refused() {
    // The refusal needs a snapshot of `by_day` in the journal: its count of
    // inputs taken is seen before the snapshot that follows them is written,
    // so a run interrupted in between is run again (a few times at most),
    // with outputs of its own.
    let (base, run, two) = (0..5)
        .find_map(|_| {
            let two = Outputs {
                instances: 2,
                ..Outputs::default()
            };
            let base = base("instances");
            let run = crash(&base, 1700, |r| stage(r, "by_day").events_in >= 500, &two);
            if journaled_a_snapshot(&run, "by_day", &two) {
                Some((base, run, two))
            } else {
                let _ = std::fs::remove_dir_all(&base);
                None
            }
        })
        .expect("`by_day` journaled no snapshot in five interrupted runs");
    let three = Outputs {
        instances: 3,
        ..Outputs::default()
    };
    let error = resume(&base, &run, &three).unwrap_err();
    let FlowError::CannotStart { error, .. } = &error else {
        panic!("{error}")
    };
    let StartError::Resume { stage, reason } = &**error else {
        panic!("{error}")
    };
    assert_eq!(stage, "by_day");
    assert!(
        reason.contains("saved by 2 instances and it now runs as 3"),
        "{reason}"
    );
    // With the count it ran with, it resumes.
    let report = resume(&base, &run, &two).unwrap();
    assert_eq!(report.state, obzenflow::flow::FlowState::Completed);
    let (whole, _) = uninterrupted();
    assert_same(&whole, &two);
    let _ = std::fs::remove_dir_all(&base);
}
