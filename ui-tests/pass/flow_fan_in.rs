#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{collect, console, from_iter, inner_join, map, filter, group_by, observe};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order { id: u32, total: f64 }

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Customer { id: u32, name: String }

// Two sources of the same type merged into one transform.
fn main() {
    let _ = flow! {
        name: "fan-in",
        stages: {
            web = source!(Order => from_iter(Vec::<Order>::new()));
            shop = source!(Order => from_iter(Vec::<Order>::new()));
            merged = transform!(Order -> f64 => map(|o: Order| o.total));
            out = sink!(f64 => console());
        },
        topology: {
            (web, shop) |> merged |> out;
        }
    };
}
