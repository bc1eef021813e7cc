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
    let stations = 3;
    let _ = flow! {
        name: "stations",
        stages: {
            readings = source!(Reading => from_iter(readings()));
            checked = transform!(Reading -> Checked => map(check), parallel: stations);
            per_station = stateful!(Checked -> (String, u64) => group_by(|c: &Checked| c.station.clone(), |n: &mut u64, _c: Checked| *n += 1).emit_on_eof(), parallel: 2, key: |c: &Checked| c.station.clone());
            // A key's argument type is inferred from the stage's input.
            alarms = stateful!(Checked -> (String, u64) => group_by(|c: &Checked| c.station.clone(), |n: &mut u64, c: Checked| *n += u64::from(c.alarm)).emit_on_eof(), parallel: 2, key: |c| c.station.clone());
            out = sink!((String, u64) => console());
            alarm_out = sink!((String, u64) => console());
        },
        topology: {
            readings |> checked |> per_station |> out;
            checked |> alarms |> alarm_out;
        }
    };
}
