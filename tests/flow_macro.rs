//! Flows declared with `flow!`, run, with their outputs checked: each stage
//! kind and each shape (linear, fan-out, fan-in, join, observer, stateful).

use obzenflow::flow::FlowState;
use obzenflow::prelude::*;
use obzenflow::stage::{collect, filter, from_iter, group_by, map, observe, reduce};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    customer: String,
    quantity: u32,
    unit_price: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Priced {
    customer: String,
    total: f64,
}

fn orders() -> Vec<Order> {
    [
        ("ann", 2, 30.0),
        ("bob", 1, 500.0),
        ("ann", 10, 20.0),
        ("cy", 1, 5.0),
        ("bob", 3, 100.0),
    ]
    .into_iter()
    .map(|(customer, quantity, unit_price)| Order {
        customer: customer.into(),
        quantity,
        unit_price,
    })
    .collect()
}

fn price(order: Order) -> Priced {
    Priced {
        customer: order.customer,
        total: f64::from(order.quantity) * order.unit_price,
    }
}

#[tokio::test]
async fn the_sketch_from_the_design_runs() {
    let (out, totals) = collect::<(String, f64)>();
    let audited = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&audited);
    let mut flow = flow! {
        name: "orders",
        journals: memory(),
        stages: {
            orders = source!(Order => from_iter(orders()));
            priced = transform!(Order -> Priced => map(price));
            big    = transform!(Priced -> Priced => filter(|p: &Priced| p.total > 100.0));
            totals = stateful!(Priced -> (String, f64) => group_by(|p: &Priced| p.customer.clone(), |sum: &mut f64, p: Priced| *sum += p.total).emit_on_eof());
            audit  = observer!(Priced => observe(move |_: &Priced| { seen.fetch_add(1, Ordering::Relaxed); }));
            out    = sink!((String, f64) => out);
        },
        topology: {
            orders |> priced |> big |> totals |> out;
            priced |> audit;
        }
    };
    let report = flow.run().await.unwrap();
    assert_eq!(report.state, FlowState::Completed);
    assert_eq!(
        totals.snapshot(),
        [("ann".to_owned(), 200.0), ("bob".to_owned(), 800.0)]
    );
    assert_eq!(audited.load(Ordering::Relaxed), 5);
    assert_eq!(report.stage("big").unwrap().events_out, 3);
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Customer {
    name: String,
    city: String,
}

fn customers() -> Vec<Customer> {
    [("ann", "Oslo"), ("bob", "Lima")]
        .into_iter()
        .map(|(name, city)| Customer {
            name: name.into(),
            city: city.into(),
        })
        .collect()
}

#[tokio::test]
async fn fan_in_fan_out_and_join_through_flow() {
    let (cities, by_city) = collect::<(String, f64)>();
    let (all, everything) = collect::<f64>();
    let mut flow = flow! {
        name: "shapes",
        stages: {
            web = source!(Order => from_iter(orders().into_iter().take(2)));
            shop = source!(Order => from_iter(orders().into_iter().skip(2)));
            customers = source!(Customer => from_iter(customers()));
            priced = transform!(Order -> Priced => map(price));
            located = join!(Customer, Priced -> (String, f64) => obzenflow::stage::inner_join(
                |c: &Customer| c.name.clone(),
                |p: &Priced| p.customer.clone(),
                |c: &Customer, p: Priced| (c.city.clone(), p.total),
            ));
            totals = transform!(Priced -> f64 => map(|p: Priced| p.total));
            cities = sink!((String, f64) => cities);
            all = sink!(f64 => all);
        },
        topology: {
            (web, shop) |> priced |> totals;
            (customers, priced) |> located |> cities;
            totals |> all;
        }
    };
    let report = flow.run().await.unwrap();
    assert_eq!(report.stage("priced").unwrap().events_in, 5);
    let mut totals: Vec<f64> = everything.snapshot();
    totals.sort_by(f64::total_cmp);
    assert_eq!(totals, [5.0, 60.0, 200.0, 300.0, 500.0]);
    let mut joined = by_city.snapshot();
    joined.sort_by(|a, b| a.1.total_cmp(&b.1));
    // `cy` has no customer record: the inner join drops that order.
    assert_eq!(
        joined,
        [
            ("Oslo".to_owned(), 60.0),
            ("Oslo".to_owned(), 200.0),
            ("Lima".to_owned(), 300.0),
            ("Lima".to_owned(), 500.0)
        ]
    );
}

#[tokio::test]
async fn stateful_policies_and_journal_options_through_flow() {
    let (sink, sums) = collect::<u64>();
    let mut flow = flow! {
        name: "policies",
        journals: memory().capacity(2).retain_all(),
        stages: {
            numbers = source!(u64 => from_iter(1..=10u64));
            sums = stateful!(u64 -> u64 => reduce(0u64, |sum: &mut u64, n: u64| *sum += n).emit_every(4));
            out = sink!(u64 => sink);
        },
        topology: {
            numbers |> sums |> out;
        }
    };
    flow.run().await.unwrap();
    assert_eq!(sums.snapshot(), [10, 36, 55]);
}

#[test]
fn the_topology_is_data_with_names_kinds_and_payload_types() {
    let (sink, _) = collect::<Priced>();
    let flow = flow! {
        name: "drawn",
        stages: {
            orders = source!(Order => from_iter(orders()));
            priced = transform!(Order -> Priced => map(price));
            audit = observer!(Priced => observe(|_: &Priced| {}));
            out = sink!(Priced => sink);
        },
        topology: {
            orders |> priced |> out;
            priced |> audit;
        }
    };
    let topology = flow.topology();
    let names: Vec<&str> = topology.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["orders", "priced", "audit", "out"]);
    let edges: Vec<(&str, &str, &str)> = topology
        .edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str(), e.payload.as_str()))
        .collect();
    assert_eq!(
        edges,
        [
            ("orders", "priced", "Order"),
            ("priced", "audit", "Priced"),
            ("priced", "out", "Priced")
        ]
    );
    let mermaid = topology.to_mermaid();
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(
        mermaid.contains("    priced[\"priced<br/><i>transform</i>\"]\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("    orders -->|\"Order\"| priced\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("    priced -.->|\"Priced\"| audit\n"),
        "{mermaid}"
    );
    let dot = topology.to_dot();
    assert!(
        dot.contains("\"priced\" -> \"out\" [label=\"Priced\"];"),
        "{dot}"
    );
    let json: serde_json::Value = serde_json::from_str(&topology.to_json()).unwrap();
    assert_eq!(json["flow"], "drawn");
    assert_eq!(json["stages"][1]["kind"], "Transform");
    assert_eq!(json["edges"][1]["role"], "Observed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feedback_loop_declared_with_flow() {
    let (sink, out) = collect::<u64>();
    let mut flow = flow! {
        name: "collatz",
        stages: {
            starts = source!(u64 => from_iter([6u64, 7]));
            head = transform!(u64 -> u64 => map(|n: u64| n), max_rounds: 500);
            step = transform!(u64 -> u64 => obzenflow::stage::flat_map(|n: u64| {
                (n != 1).then(|| if n.is_multiple_of(2) { n / 2 } else { 3 * n + 1 })
            }));
            out = sink!(u64 => sink);
        },
        topology: {
            starts |> head |> step;
            head <| step;
            head |> out;
        }
    };
    let report = flow.run().await.unwrap();
    assert_eq!(report.state, FlowState::Completed);
    // Every value of both Collatz sequences passes through the head once.
    let mut seen = out.snapshot();
    seen.sort_unstable();
    let mut expected = Vec::new();
    for start in [6u64, 7] {
        let mut n = start;
        expected.push(n);
        while n != 1 {
            n = if n.is_multiple_of(2) {
                n / 2
            } else {
                3 * n + 1
            };
            expected.push(n);
        }
    }
    expected.sort_unstable();
    assert_eq!(seen, expected);
    let feedback: Vec<_> = flow
        .topology()
        .edges
        .iter()
        .filter(|e| e.role == obzenflow::flow::EdgeRole::Feedback)
        .map(|e| (e.from.as_str(), e.to.as_str()))
        .collect();
    assert_eq!(feedback, [("step", "head")]);
}

/// A deliberately broken source: it says it will produce 10 events and
/// produces 7.
struct Liar(u32);

impl obzenflow::stage::Source<u32> for Liar {
    async fn next(&mut self) -> Result<obzenflow::stage::Poll<u32>, obzenflow::stage::StageError> {
        if self.0 == 7 {
            return Ok(obzenflow::stage::Poll::End);
        }
        self.0 += 1;
        Ok(obzenflow::stage::Poll::Events(vec![self.0]))
    }

    fn expected_count(&self) -> Option<u64> {
        Some(10)
    }
}

#[tokio::test]
async fn a_broken_handler_breaks_a_contract_and_the_flow_names_it() {
    let (sink, out) = collect::<u32>();
    let mut flow = flow! {
        name: "broken",
        stages: {
            liar = source!(u32 => Liar(0));
            doubled = transform!(u32 -> u32 => map(|n: u32| n * 2));
            out = sink!(u32 => sink);
        },
        topology: {
            liar |> doubled |> out;
        }
    };
    let error = flow.run().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "stage `liar` failed: contract broken in source `liar`: it declared 10 events and produced 7"
    );
    // Every event it did produce went through: the contract is about what
    // it promised, checked once everything drained.
    assert_eq!(out.snapshot().len(), 7);
    assert!(matches!(flow.state(), FlowState::Failed { stage, .. } if stage == "liar"));
}

/// A sink that refuses odd numbers.
struct Picky;

impl obzenflow::stage::Sink<u32> for Picky {
    async fn consume(
        &mut self,
        input: u32,
    ) -> Result<obzenflow::stage::Receipt, obzenflow::stage::StageError> {
        if input % 2 == 1 {
            return Err(obzenflow::stage::StageError::permanent("odd"));
        }
        Ok(obzenflow::stage::Receipt::delivered())
    }
}

#[tokio::test]
async fn a_sink_that_refuses_inputs_keeps_its_contract() {
    let mut flow = flow! {
        name: "picky",
        stages: {
            numbers = source!(u32 => from_iter(0..100u32));
            out = sink!(u32 => Picky);
        },
        topology: {
            numbers |> out;
        }
    };
    let report = flow.run().await.unwrap();
    let out = report.stage("out").unwrap();
    assert_eq!((out.events_in, out.events_out, out.errors), (100, 50, 50));
    assert_eq!(report.errors.len(), 50);
}

#[tokio::test]
async fn a_stage_sets_its_window_in_entries_and_in_bytes() {
    let (sink, out) = collect();
    let mut flow = flow! {
        name: "windows",
        stages: {
            numbers = source!(u32 => from_iter(0..100u32));
            doubled = transform!(u32 -> u32 => map(|n: u32| n * 2), capacity: 8, capacity_bytes: 4096);
            store = sink!(u32 => sink);
        },
        topology: { numbers |> doubled |> store; }
    };
    let plan = flow.plan();
    let window = |stage: &str| {
        let journal = plan.journals.iter().find(|j| j.stage == stage).unwrap();
        (journal.capacity, journal.capacity_bytes)
    };
    assert_eq!(window("doubled"), (8, 4096));
    let defaults = obzenflow::journal::JournalOptions::default();
    assert_eq!(
        window("numbers"),
        (defaults.capacity, defaults.capacity_bytes)
    );
    flow.run().await.unwrap();
    assert_eq!(out.len(), 100);
}
