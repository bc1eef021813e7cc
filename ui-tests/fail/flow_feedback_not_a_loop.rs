#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{console, from_iter, map, reduce};

fn main() {
    let _ = flow! {
        name: "loops",
        stages: {
            jobs = source!(u32 => from_iter(0..10u32));
            head = transform!(u32 -> u32 => map(|n: u32| n));
            other = transform!(u32 -> u32 => map(|n: u32| n));
            out = sink!(u32 => console());
            more = sink!(u32 => console());
        },
        topology: {
            jobs |> head |> out;
            jobs |> other |> more;
            head <| other;
        }
    };
}
