//! The domain of the parallel-stage cases: weather stations' readings,
//! checked for alarms. Each case includes it with `#[path]`.
#![allow(dead_code, unused_imports)]

pub use obzenflow::prelude::*;
pub use obzenflow::stage::{collect, console, filter, from_iter, group_by, map, observe, try_map, StageError};
pub use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reading { pub station: String, pub celsius: f64 }

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checked { pub station: String, pub celsius: f64, pub alarm: bool }

pub fn check(r: Reading) -> Checked { Checked { alarm: r.celsius > 40.0, station: r.station, celsius: r.celsius } }

pub fn readings() -> Vec<Reading> { Vec::new() }
