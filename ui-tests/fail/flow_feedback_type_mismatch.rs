#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{console, from_iter, map, reduce};

fn main() {
    let _ = flow! {
        name: "loops",
        stages: {
            jobs = source!(u32 => from_iter(0..10u32));
            head = transform!(u32 -> u32 => map(|n: u32| n));
            back = transform!(u32 -> String => map(|n: u32| n.to_string()));
            out = sink!(u32 => console());
        },
        topology: {
            jobs |> head |> back;
            head <| back;
            head |> out;
        }
    };
}
