#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{collect, console, from_iter, inner_join, map, filter, group_by, observe};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order { id: u32, total: f64 }

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Customer { id: u32, name: String }

// A join: the reference first, the stream second.
fn main() {
    let _ = flow! {
        name: "join",
        stages: {
            customers = source!(Customer => from_iter(Vec::<Customer>::new()));
            orders = source!(Order => from_iter(Vec::<Order>::new()));
            named = join!(Customer, Order -> (String, f64) => inner_join(
                |c: &Customer| c.id,
                |o: &Order| o.id,
                |c: &Customer, o: Order| (c.name.clone(), o.total),
            ));
            out = sink!((String, f64) => console());
        },
        topology: {
            (customers, orders) |> named |> out;
        }
    };
}
