#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{collect, console, from_iter, inner_join, map, filter, group_by, observe};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order { id: u32, total: f64 }

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Customer { id: u32, name: String }

// source -> transform -> sink, a handler given as a function, the default journals.
fn double(o: Order) -> Order { Order { id: o.id, total: o.total * 2.0 } }

fn main() {
    let flow: FlowHandle = flow! {
        name: "linear",
        stages: {
            orders = source!(Order => from_iter(vec![Order { id: 1, total: 2.0 }]));
            doubled = transform!(Order -> Order => map(double));
            out = sink!(Order => console());
        },
        topology: {
            orders |> doubled |> out;
        }
    };
    assert_eq!(flow.topology().edges.len(), 2);
}
