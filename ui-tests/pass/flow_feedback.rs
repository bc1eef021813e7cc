// A feedback loop: the head's results come back to it through `retry`, with
// a cap on the probe rounds; the loop's output also goes to a sink.
#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{console, flat_map, from_iter, map};

fn main() {
    let _ = flow! {
        name: "feedback",
        stages: {
            jobs = source!(u32 => from_iter(0..10u32));
            head = transform!(u32 -> u32 => map(|n: u32| n + 1), max_rounds: 16);
            retry = transform!(u32 -> u32 => flat_map(|n: u32| (n < 5).then_some(n)));
            out = sink!(u32 => console());
        },
        topology: {
            jobs |> head |> retry;
            head <| retry;
            head |> out;
        }
    };
}
