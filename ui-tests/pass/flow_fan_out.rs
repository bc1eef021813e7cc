#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{collect, console, from_iter, inner_join, map, filter, group_by, observe};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order { id: u32, total: f64 }

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Customer { id: u32, name: String }

// One stage read by three: two sinks and an observer.
fn main() {
    let (all, _) = collect::<Order>();
    let _ = flow! {
        name: "fan-out",
        journals: memory().capacity(4096),
        stages: {
            orders = source!(Order => from_iter(Vec::<Order>::new()));
            big = transform!(Order -> Order => filter(|o: &Order| o.total > 10.0));
            all = sink!(Order => all);
            shown = sink!(Order => console());
            seen = observer!(Order => observe(|_: &Order| {}));
        },
        topology: {
            orders |> (all, big);
            big |> shown;
            orders |> seen;
        }
    };
}
