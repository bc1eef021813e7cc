#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{collect, console, from_iter, map, filter, inner_join, reduce};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order { id: u32, total: f64 }

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Priced { id: u32, total: f64, tax: f64 }

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Customer { id: u32, name: String }

fn price(o: Order) -> Priced { Priced { id: o.id, total: o.total, tax: o.total * 0.2 } }

fn main() {
    let _ = flow! {
        name: "orders",
        stages: {
            customers = source!(Customer => from_iter(Vec::<Customer>::new()));
            orders = source!(Order => from_iter(Vec::<Order>::new()));
            named = join!(Customer, Order -> String => inner_join(|c: &Customer| c.id, |o: &Order| o.id, |c: &Customer, _o: Order| c.name.clone()));
            out = sink!(String => console());
        },
        topology: {
            (orders, customers) |> named |> out;
        }
    };
}
// mended: (orders, customers) |> named ==> (customers, orders) |> named
