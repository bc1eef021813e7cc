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
            checked = transform!(Reading -> Checked => map(check), parallel: 4);
            per_station = stateful!(Checked -> (String, u64) => group_by(|c: &Checked| c.station.clone(), |n: &mut u64, _c: Checked| *n += 1).emit_on_eof(), parallel: 2, key: |r: &Reading| r.station.clone());
            out = sink!((String, u64) => console());
        },
        topology: {
            readings |> checked |> per_station |> out;
        }
    };
}
// mended: key: |r: &Reading| r.station.clone()) ==> key: |c: &Checked| c.station.clone())
