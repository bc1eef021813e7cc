#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{console, filter, from_iter, map, observe};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order { id: u32, total: f64 }

fn main() {
    let _ = flow! {
        name: "orders",
        stages: {
            web    = source!(Order => from_iter(Vec::<Order>::new()));
            shop   = source!(Order => from_iter(Vec::<Order>::new()));
            large  = transform!(Order -> Order => filter(|o: &Order| o.total > 100.0));
            audit  = observer!(Order => observe(|o: &Order| println!("{o:?}")));
            out    = sink!(Order => console());
        },
        topology: {
            (web, shop) |> large |> out;
            (web, shop) |> audit;
        }
    };
}
