//! The child process of the resume kill test (`tests/resume_kill.rs`): the
//! flagship's flow on the bundled real data, with one more sink, a ledger
//! that records each flight it is delivered under its delivery key and
//! keeps each key's effect once (a deduplicating sink, like a database
//! with a key column). It takes the runner's options (`--journal-dir`,
//! `--resume-from`, `--replay-from --verify`); `OBZENFLOW_OUT` is the
//! carrier table's CSV file, `LEDGER` the ledger's file, `INSTANCES` how
//! many instances the parse and tally stages run as (1 by default).

#[path = "../../examples/flight_delays/flights.rs"]
#[allow(dead_code)]
mod flights;

use flights::{
    Airline, CarrierDelays, Flight, FlightRow, NamedFlight, Tally, parse, summarize, tally,
};
use obzenflow::event::DeliveryKey;
use obzenflow::flow;
use obzenflow::stage::csv::{self, Numbered};
use obzenflow::stage::{
    Delivery, Receipt, Sink, StageError, collect, group_by, left_join, map, try_map,
};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Records `key<TAB>flight as JSON` once per key, in a file that outlives
/// the process: keys already in it (from an interrupted run) are not
/// written again.
#[derive(Debug)]
struct Ledger {
    path: PathBuf,
    seen: Option<HashSet<String>>,
    out: Option<BufWriter<File>>,
}

impl Ledger {
    fn open(&mut self) -> Result<(), StageError> {
        let fail = |error: std::io::Error| StageError::fatal(format!("ledger: {error}"));
        let mut seen = HashSet::new();
        let mut whole = 0u64;
        if let Ok(file) = File::open(&self.path) {
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            while reader.read_line(&mut line).map_err(fail)? > 0 {
                // A line the kill cut short is no effect: it goes.
                if !line.ends_with('\n') {
                    break;
                }
                whole += line.len() as u64;
                if let Some((key, _)) = line.split_once('\t') {
                    seen.insert(key.to_owned());
                }
                line.clear();
            }
            OpenOptions::new()
                .write(true)
                .open(&self.path)
                .and_then(|file| file.set_len(whole))
                .map_err(fail)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(fail)?;
        self.seen = Some(seen);
        self.out = Some(BufWriter::new(file));
        Ok(())
    }
}

impl Sink<NamedFlight> for Ledger {
    async fn consume(&mut self, _: NamedFlight) -> Result<Receipt, StageError> {
        Err(StageError::fatal("the ledger delivers by key"))
    }

    async fn deliver(
        &mut self,
        key: &DeliveryKey,
        flight: NamedFlight,
    ) -> Result<Receipt, StageError> {
        if self.out.is_none() {
            self.open()?;
        }
        let key = key.to_string();
        if let (Some(seen), Some(out)) = (&mut self.seen, &mut self.out)
            && seen.insert(key.clone())
        {
            let json = serde_json::to_string(&flight).map_err(StageError::fatal)?;
            writeln!(out, "{key}\t{json}").map_err(StageError::fatal)?;
        }
        Ok(Receipt::delivered())
    }

    /// Written out before the batch's receipts are journaled.
    async fn flush(&mut self) -> Result<(), StageError> {
        match &mut self.out {
            Some(out) => out.flush().map_err(StageError::fatal),
            None => Ok(()),
        }
    }

    fn delivery(&self) -> Delivery {
        Delivery::Deduplicated
    }
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/nycflights13")
        .join(name)
}

fn main() -> ExitCode {
    let out = std::env::var_os("OBZENFLOW_OUT")
        .map_or_else(|| PathBuf::from("delays.csv"), PathBuf::from);
    let ledger =
        std::env::var_os("LEDGER").map_or_else(|| PathBuf::from("ledger.tsv"), PathBuf::from);
    obzenflow::app::Program::new("The flagship's flow with a ledger sink, for the resume kill test")
        .flow("flight-delays-ledger")
        .run(|app| {
            let instances: usize = std::env::var("INSTANCES")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let rows = flights::read_flights(data("flights.csv.gz"), obzenflow::stage::MAX_LINE_BYTES);
            let airlines = csv::read::<Airline>(data("airlines.csv"));
            let file = csv::write(out);
            let ledger = Ledger { path: ledger, seen: None, out: None };
            flow! {
                name: "flight-delays-ledger",
                journals: app.journals(),
                stages: {
                    flights     = source!(Numbered<FlightRow> => rows);
                    parsed      = transform!(Numbered<FlightRow> -> Flight => try_map(parse), parallel: instances);
                    airlines    = source!(Airline => airlines);
                    named       = join!(Airline, Flight -> NamedFlight => left_join(
                        |a: &Airline| a.carrier.clone(),
                        |f: &Flight| f.carrier.clone(),
                        |a: Option<&Airline>, f: Flight| NamedFlight {
                            airline: a.map_or_else(|| format!("(unknown carrier {})", f.carrier), |a| a.name.clone()),
                            carrier: f.carrier,
                            dep_delay: f.dep_delay,
                            diverted: f.diverted,
                        },
                    ));
                    per_carrier = stateful!(NamedFlight -> (String, Tally) => group_by(
                        |f: &NamedFlight| f.carrier.clone(),
                        tally,
                    ).emit_on_eof(), parallel: instances, key: |f: &NamedFlight| f.carrier.clone());
                    summary     = transform!((String, Tally) -> CarrierDelays => map(summarize));
                    table       = sink!(CarrierDelays => collect().0);
                    file        = sink!(CarrierDelays => file);
                    ledger      = sink!(NamedFlight => ledger);
                },
                topology: {
                    flights |> parsed;
                    (airlines, parsed) |> named |> per_carrier |> summary |> (table, file);
                    named |> ledger;
                }
            }
        })
}
