#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{console, from_iter};

fn main() {
    let _ = flow! {
        name: "options",
        stages: {
            numbers = source!(u32 => from_iter(0..10u32), capacty: 16);
            out = sink!(u32 => console());
        },
        topology: {
            numbers |> out;
        }
    };
}
// mended: capacty: ==> capacity:
