#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{collect, console, from_iter, inner_join, map, filter, group_by, observe};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order { id: u32, total: f64 }

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Customer { id: u32, name: String }

// Stateful stages with each emit policy, and a generic payload type.
use std::time::Duration;

fn main() {
    let _ = flow! {
        name: "stateful",
        stages: {
            orders = source!(Order => from_iter(Vec::<Order>::new()));
            per_id = stateful!(Order -> (u32, f64) => group_by(|o: &Order| o.id, |t: &mut f64, o: Order| *t += o.total).emit_on_eof());
            every = stateful!(Order -> Vec<u32> => obzenflow::stage::reduce(Vec::new(), |v: &mut Vec<u32>, o: Order| v.push(o.id)).emit_every(100));
            windowed = stateful!(Order -> u64 => obzenflow::stage::reduce(0u64, |n: &mut u64, _o: Order| *n += 1).emit_every_window(Duration::from_secs(1)));
            a = sink!((u32, f64) => console());
            b = sink!(Vec<u32> => console());
            c = sink!(u64 => console());
        },
        topology: {
            orders |> (per_id, every, windowed);
            per_id |> a;
            every |> b;
            windowed |> c;
        }
    };
}
