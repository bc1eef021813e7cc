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
            seen = observer!(Order => obzenflow::stage::observe(|_: &Order| {}));
        },
        topology: {
            orders |> seen;
        }
    };
}
// mended: seen = observer! ==> out = sink!(Order => console());\n            seen = observer!
// mended: orders |> seen; ==> orders |> seen;\n            orders |> out;
