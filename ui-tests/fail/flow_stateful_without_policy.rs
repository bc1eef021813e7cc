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
            orders = source!(Order => from_iter(Vec::<Order>::new()));
            count = stateful!(Order -> u64 => reduce(0u64, |n: &mut u64, _o: Order| *n += 1));
            out = sink!(u64 => console());
        },
        topology: {
            orders |> count |> out;
        }
    };
}
// mended: *n += 1)); ==> *n += 1).emit_on_eof());
