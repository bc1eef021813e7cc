#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{console, from_iter, map, reduce};

fn main() {
    let _ = flow! {
        name: "loops",
        stages: {
            jobs = source!(u32 => from_iter(0..10u32));
            head = transform!(u32 -> u32 => map(|n: u32| n));
            count = stateful!(u32 -> u32 => reduce(0u32, |c: &mut u32, _n: u32| *c += 1).emit_every(10));
            out = sink!(u32 => console());
        },
        topology: {
            jobs |> head |> count;
            head <| count;
            head |> out;
        }
    };
}
