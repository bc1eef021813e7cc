#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{console, from_iter, map};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order { id: u32, total: f64 }

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Priced { id: u32, total: f64, tax: f64 }

fn price(o: Order) -> Priced { Priced { id: o.id, total: o.total, tax: o.total * 0.2 } }

fn main() {
    let _ = flow! {
        name: "orders",
        stages: {
            orders = source!(Order => from_iter(Vec::<Order>::new()));
            priced = transform!(Order -> Priced => map(price));
        },
        topology: {
            orders |> priced |> receipts;
        }
    };
}
// mended: priced = transform!(Order -> Priced => map(price)); ==> priced = transform!(Order -> Priced => map(price));\n            receipts = sink!(Priced => console());
