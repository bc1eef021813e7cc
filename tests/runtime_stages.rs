//! Every stage kind and helper through the builder API, checking outputs.

mod support;

use obzenflow::event::{Body, Envelope, ErrorKind};
use obzenflow::flow::{FlowBuilder, FlowState};
use obzenflow::stage::{
    EmitPolicy, Emitter, Observer, Poll, Receipt, Sink, Source, StageError, Transform, collect,
    console, filter, flat_map, from_iter, from_receiver, group_by, inner_join, left_join, map,
    observe, reduce, strict_join, top_n, try_map,
};
use obzenflow::supervise::StageState;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use support::wait_until;
use tokio::sync::mpsc;

#[tokio::test]
async fn map_filter_flat_map_chain() {
    let mut flow = FlowBuilder::new("chain");
    let numbers = flow.source("numbers", from_iter(1..=10u32));
    let evens = flow.transform("evens", &numbers, filter(|n: &u32| n.is_multiple_of(2)));
    let squared = flow.transform("squared", &evens, map(|n: u32| u64::from(n * n)));
    let twice = flow.transform("twice", &squared, flat_map(|n: u64| [n, n + 1]));
    let (sink, out) = collect();
    flow.sink("out", &twice, sink);
    let report = flow.build().unwrap().run().await.unwrap();
    assert_eq!(out.snapshot(), [4, 5, 16, 17, 36, 37, 64, 65, 100, 101]);
    assert_eq!(report.state, FlowState::Completed);
    let evens = report.stage("evens").unwrap();
    assert_eq!((evens.events_in, evens.events_out), (10, 5));
    assert_eq!(
        report.stage("out").unwrap().events_out,
        10,
        "one receipt per event"
    );
    assert!(report.stages.iter().all(|s| s.state == StageState::Drained));
}

#[tokio::test]
async fn try_map_sends_failures_to_the_error_lane_and_goes_on() {
    let mut flow = FlowBuilder::new("parse");
    let lines = flow.source(
        "lines",
        from_iter(["1", "x", "3", "", "5"].map(String::from)),
    );
    let parsed = flow.transform("parsed", &lines, try_map(|s: String| s.parse::<u32>()));
    let (sink, out) = collect();
    flow.sink("out", &parsed, sink);
    let report = flow.build().unwrap().run().await.unwrap();
    assert_eq!(out.snapshot(), [1, 3, 5]);
    let stage = report.stage("parsed").unwrap();
    assert_eq!((stage.events_in, stage.events_out, stage.errors), (5, 3, 2));
    assert_eq!(report.errors.len(), 2);
    let first = &report.errors[0];
    assert_eq!(&*first.stage, "parsed");
    assert_eq!(first.kind, ErrorKind::Permanent);
    assert_eq!(
        first.input_id.map(|id| id.seq),
        Some(1),
        "the input `x` was event 1 of `lines`"
    );
    assert!(first.message.contains("invalid digit"), "{}", first.message);
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Sale {
    shop: String,
    amount: u32,
}

fn sales() -> Vec<Sale> {
    [("b", 5), ("a", 1), ("b", 7), ("c", 2), ("a", 4)]
        .into_iter()
        .map(|(shop, amount)| Sale {
            shop: shop.into(),
            amount,
        })
        .collect()
}

#[tokio::test]
async fn reduce_group_by_and_top_n_emit_on_eof() {
    let mut flow = FlowBuilder::new("stats");
    let sales_stage = flow.source("sales", from_iter(sales()));
    let total = flow.stateful(
        "total",
        &sales_stage,
        reduce(0u32, |sum: &mut u32, sale: Sale| *sum += sale.amount),
        EmitPolicy::OnEof,
    );
    let per_shop = flow.stateful(
        "per_shop",
        &sales_stage,
        group_by(
            |s: &Sale| s.shop.clone(),
            |sum: &mut u32, s: Sale| *sum += s.amount,
        ),
        EmitPolicy::OnEof,
    );
    let best = flow.stateful(
        "best",
        &sales_stage,
        top_n(2, |s: &Sale| s.amount),
        EmitPolicy::OnEof,
    );
    let (total_sink, totals) = collect();
    let (shop_sink, shops) = collect();
    let (best_sink, bests) = collect();
    flow.sink("total_out", &total, total_sink);
    flow.sink("shop_out", &per_shop, shop_sink);
    flow.sink("best_out", &best, best_sink);
    flow.build().unwrap().run().await.unwrap();
    assert_eq!(totals.snapshot(), [19]);
    assert_eq!(
        shops.snapshot(),
        [
            ("a".to_owned(), 5),
            ("b".to_owned(), 12),
            ("c".to_owned(), 2)
        ]
    );
    let best: Vec<u32> = bests.snapshot().iter().map(|s: &Sale| s.amount).collect();
    assert_eq!(best, [7, 5]);
}

#[tokio::test]
async fn every_n_policy_emits_running_values_and_the_rest_at_the_end() {
    let mut flow = FlowBuilder::new("every");
    let numbers = flow.source("numbers", from_iter(1..=7u32));
    let sums = flow.stateful(
        "sums",
        &numbers,
        reduce(0u32, |sum: &mut u32, n: u32| *sum += n),
        EmitPolicy::EveryN(3),
    );
    let (sink, out) = collect();
    flow.sink("out", &sums, sink);
    flow.build().unwrap().run().await.unwrap();
    // After 1+2+3, after 4+5+6, and the remainder (7) at EOF.
    assert_eq!(out.snapshot(), [6, 21, 28]);
}

#[tokio::test(start_paused = true)]
async fn window_policy_emits_when_a_window_with_inputs_closes() {
    let (send, receive) = mpsc::channel(16);
    let mut flow = FlowBuilder::new("window");
    let numbers = flow.source("numbers", from_receiver(receive));
    let counts = flow.stateful(
        "counts",
        &numbers,
        reduce(0u32, |count: &mut u32, _: u32| *count += 1),
        EmitPolicy::Window(std::time::Duration::from_secs(10)),
    );
    let (sink, out) = collect();
    flow.sink("out", &counts, sink);
    let mut handle = flow.build().unwrap();
    handle.start().unwrap();
    send.send(1).await.unwrap();
    send.send(2).await.unwrap();
    wait_until(|| out.is_empty() && handle.report().stage("counts").unwrap().events_in == 2).await;
    tokio::time::advance(std::time::Duration::from_secs(10)).await;
    wait_until(|| out.len() == 1).await;
    send.send(3).await.unwrap();
    drop(send);
    handle.wait().await.unwrap();
    assert_eq!(
        out.snapshot(),
        [2, 3],
        "one window of two, then the rest at EOF"
    );
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Airline {
    code: String,
    name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Flight {
    carrier: String,
    number: u32,
}

fn airlines() -> Vec<Airline> {
    [("AA", "American"), ("UA", "United")]
        .into_iter()
        .map(|(code, name)| Airline {
            code: code.into(),
            name: name.into(),
        })
        .collect()
}

fn flights() -> Vec<Flight> {
    [("UA", 1), ("ZZ", 2), ("AA", 3)]
        .into_iter()
        .map(|(carrier, number)| Flight {
            carrier: carrier.into(),
            number,
        })
        .collect()
}

#[tokio::test]
async fn joins_load_the_reference_first_then_join_inner_left_and_strict() {
    let mut flow = FlowBuilder::new("joins");
    // The stream source is added first: the join must still wait for the reference.
    let stream = flow.source("flights", from_iter(flights()));
    let reference = flow.source("airlines", from_iter(airlines()));
    let inner = flow.join(
        "inner",
        &reference,
        &stream,
        inner_join(
            |a: &Airline| a.code.clone(),
            |f: &Flight| f.carrier.clone(),
            |a: &Airline, f: Flight| format!("{} {}", a.name, f.number),
        ),
    );
    let left = flow.join(
        "left",
        &reference,
        &stream,
        left_join(
            |a: &Airline| a.code.clone(),
            |f: &Flight| f.carrier.clone(),
            |a: Option<&Airline>, f: Flight| format!("{} {}", a.map_or("?", |a| &a.name), f.number),
        ),
    );
    let strict = flow.join(
        "strict",
        &reference,
        &stream,
        strict_join(
            |a: &Airline| a.code.clone(),
            |f: &Flight| f.carrier.clone(),
            |a: &Airline, f: Flight| format!("{} {}", a.name, f.number),
        ),
    );
    let (inner_sink, inner_out) = collect();
    let (left_sink, left_out) = collect();
    let (strict_sink, strict_out) = collect();
    flow.sink("inner_out", &inner, inner_sink);
    flow.sink("left_out", &left, left_sink);
    flow.sink("strict_out", &strict, strict_sink);
    let report = flow.build().unwrap().run().await.unwrap();
    assert_eq!(inner_out.snapshot(), ["United 1", "American 3"]);
    assert_eq!(left_out.snapshot(), ["United 1", "? 2", "American 3"]);
    assert_eq!(strict_out.snapshot(), ["United 1", "American 3"]);
    assert_eq!(report.stage("strict").unwrap().errors, 1);
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].message.contains("\"ZZ\""),
        "{}",
        report.errors[0].message
    );
}

#[tokio::test]
async fn observers_see_every_entry_and_change_nothing() {
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<String>>>);
    impl Observer<u32> for Seen {
        fn observe(&mut self, entry: &Envelope<u32>) {
            let text = match &entry.body {
                Body::Data(n) => format!("data {n}"),
                Body::Error(e) => format!("error {}", e.message),
                Body::Control(c) => format!("{c:?}"),
                other => format!("{other:?}"),
            };
            self.0.lock().unwrap().push(text);
        }
    }
    let mut flow = FlowBuilder::new("observed");
    let numbers = flow.source("numbers", from_iter(1..=3u32));
    let checked = flow.transform(
        "checked",
        &numbers,
        try_map(|n: u32| if n == 2 { Err("two") } else { Ok(n) }),
    );
    let seen = Seen::default();
    flow.observer("audit", &checked, seen.clone());
    let sum = Arc::new(Mutex::new(0));
    let total = Arc::clone(&sum);
    flow.observer(
        "sum",
        &checked,
        observe(move |n: &u32| *total.lock().unwrap() += n),
    );
    let (sink, out) = collect();
    flow.sink("out", &checked, sink);
    flow.build().unwrap().run().await.unwrap();
    assert_eq!(out.snapshot(), [1, 3]);
    assert_eq!(
        *seen.0.lock().unwrap(),
        ["data 1", "error two", "data 3", "Eof"]
    );
    assert_eq!(*sum.lock().unwrap(), 4);
}

#[tokio::test]
async fn channel_source_ends_when_its_senders_are_gone() {
    let (send, receive) = mpsc::channel(4);
    let mut flow = FlowBuilder::new("channel");
    let items = flow.source("items", from_receiver(receive));
    let (sink, out) = collect();
    flow.sink("out", &items, sink);
    let mut handle = flow.build().unwrap();
    handle.start().unwrap();
    for n in 0..100u32 {
        send.send(n).await.unwrap();
    }
    drop(send);
    let report = handle.wait().await.unwrap();
    assert_eq!(out.snapshot(), (0..100).collect::<Vec<_>>());
    assert_eq!(report.state, FlowState::Completed);
}

/// A hand-written async transform and sink, and a source that emits several
/// events per poll.
struct Chunks(u32);

impl Source<Vec<u8>> for Chunks {
    async fn next(&mut self) -> Result<Poll<Vec<u8>>, StageError> {
        if self.0 == 0 {
            return Ok(Poll::End);
        }
        self.0 -= 1;
        tokio::task::yield_now().await;
        Ok(Poll::Events(vec![vec![1, 2], vec![3]]))
    }
}

struct Lengths;

impl Transform<Vec<u8>, usize> for Lengths {
    async fn process(
        &mut self,
        input: Vec<u8>,
        out: &mut Emitter<usize>,
    ) -> Result<(), StageError> {
        tokio::task::yield_now().await;
        out.emit(input.len());
        Ok(())
    }
}

struct Summer {
    total: Arc<Mutex<usize>>,
    flushes: Arc<Mutex<u32>>,
}

impl Sink<usize> for Summer {
    async fn consume(&mut self, input: usize) -> Result<Receipt, StageError> {
        *self.total.lock().unwrap() += input;
        Ok(Receipt::with_detail(format!("+{input}")))
    }

    async fn flush(&mut self) -> Result<(), StageError> {
        *self.flushes.lock().unwrap() += 1;
        Ok(())
    }
}

#[tokio::test]
async fn hand_written_async_handlers_and_console_sink() {
    let total = Arc::new(Mutex::new(0));
    let flushes = Arc::new(Mutex::new(0));
    let mut flow = FlowBuilder::new("custom");
    let chunks = flow.source("chunks", Chunks(4));
    let lengths = flow.transform("lengths", &chunks, Lengths);
    flow.sink(
        "sum",
        &lengths,
        Summer {
            total: Arc::clone(&total),
            flushes: Arc::clone(&flushes),
        },
    );
    flow.sink("print", &lengths, console());
    let report = flow.build().unwrap().run().await.unwrap();
    assert_eq!(*total.lock().unwrap(), 12);
    assert!(*flushes.lock().unwrap() >= 1);
    assert_eq!(report.stage("print").unwrap().events_out, 8);
    assert_eq!(report.stage("chunks").unwrap().events_out, 8);
}

#[tokio::test]
async fn sources_that_know_their_size_say_so() {
    let mut known = FlowBuilder::new("known");
    let a = known.source("a", from_iter(0..10u32));
    let b = known.source("b", from_iter(vec![1u32, 2, 3]));
    let (sink, _) = collect();
    known.sink("out", [&a, &b], sink);
    assert_eq!(known.build().unwrap().expected_source_events(), Some(13));

    let (_send, receive) = mpsc::channel::<u32>(1);
    let mut unknown = FlowBuilder::new("unknown");
    let a = unknown.source("a", from_iter(0..10u32));
    let b = unknown.source("b", from_receiver(receive));
    let (sink, _) = collect();
    unknown.sink("out", [&a, &b], sink);
    assert_eq!(unknown.build().unwrap().expected_source_events(), None);
}

/// A sink that fails on odd inputs and says which input each receipt is for.
struct EvenOnly;

impl Sink<u64> for EvenOnly {
    async fn consume(&mut self, input: u64) -> Result<Receipt, StageError> {
        if input % 2 == 1 {
            return Err(StageError::permanent(format!("{input} is odd")));
        }
        Ok(Receipt::with_detail(format!("got {input}")))
    }
}

/// A sink's journal holds one record per input, in the inputs' order: a
/// receipt for each delivered one and an error record for each failed one,
/// each naming its input, across several batches.
#[tokio::test]
async fn a_sinks_receipts_and_errors_are_journaled_in_input_order() {
    let events = 3000u64;
    let mut flow = FlowBuilder::new("receipts");
    flow.journals(obzenflow::flow::journals::memory().retain_all());
    let numbers = flow.source("numbers", from_iter(0..events));
    let out = flow.sink("out", &numbers, EvenOnly);
    let report = flow.build().unwrap().run().await.unwrap();
    let stage = report.stage("out").unwrap();
    assert_eq!((stage.events_out, stage.errors), (events / 2, events / 2));

    let mut reader = obzenflow::journal::Journal::reader(out.journal(), 0).unwrap();
    let mut seen = Vec::new();
    loop {
        let chunk = obzenflow::journal::JournalReader::next_chunk(&mut reader)
            .await
            .unwrap();
        let mut ended = false;
        for entry in chunk.entries() {
            match &entry.body {
                Body::Data(receipt) => seen.push((
                    entry.parents.ids()[0].seq,
                    receipt.detail.clone().unwrap_or_default(),
                )),
                Body::Error(record) => {
                    assert_eq!(entry.parents.ids(), [record.input_id.unwrap()]);
                    seen.push((record.input_id.unwrap().seq, record.message.clone()));
                }
                Body::Control(_) => ended = true,
                _ => {}
            }
        }
        if ended {
            break;
        }
    }
    // In input order: the parents' positions rise (the source's journal
    // also holds its read positions between batches) and the texts follow
    // the numbers.
    assert!(seen.windows(2).all(|pair| pair[0].0 < pair[1].0));
    let texts: Vec<String> = seen.into_iter().map(|(_, text)| text).collect();
    let expected: Vec<String> = (0..events)
        .map(|n| {
            if n % 2 == 0 {
                format!("got {n}")
            } else {
                format!("{n} is odd")
            }
        })
        .collect();
    assert_eq!(texts, expected);
}
