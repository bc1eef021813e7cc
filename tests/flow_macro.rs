//! Flows declared with `flow!`, run, with their outputs checked: each stage
//! kind and each shape (linear, fan-out, fan-in, join, observer, stateful).

use obzenflow::flow::FlowState;
use obzenflow::prelude::*;
use obzenflow::stage::{collect, filter, from_iter, group_by, map, observe};
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
