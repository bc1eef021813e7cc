#![allow(unused_imports)]
use obzenflow::prelude::*;
use obzenflow::stage::{collect, console, from_iter, map, filter, group_by, try_map, StageError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Reading { station: String, celsius: f64 }

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Checked { station: String, celsius: f64, alarm: bool }

fn check(r: Reading) -> Checked { Checked { alarm: r.celsius > 40.0, station: r.station, celsius: r.celsius } }

fn readings() -> Vec<Reading> { Vec::new() }

fn main() {
    let _ = flow! {
        name: "stations",
        stages: {
            readings = source!(Reading => from_iter(readings()));
            cooled = transform!(Reading -> Reading => map(|r: Reading| r), parallel: 2);
            again = transform!(Reading -> Reading => filter(|r: &Reading| r.celsius > 100.0));
            out = sink!(Reading => console());
        },
        topology: {
            readings |> cooled |> again; cooled |> out; cooled <| again;
        }
    };
}
