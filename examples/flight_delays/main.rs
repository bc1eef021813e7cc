//! The flagship: departure delays per airline, from every flight that left
//! New York City in 2013 (336,776 real rows, nycflights13, CC0; bundled in
//! `data/nycflights13/`).
//!
//! The flights stream out of a gzipped CSV file, are parsed, joined with the
//! airlines reference table, and tallied per carrier (flights, cancellations,
//! mean and 95th-percentile departure delay); the tallies are emitted at the
//! end of input to a console table and a CSV file.
//!
//! What counts as what, so that nothing is dropped silently:
//! - a row with no departure (`dep_time` and `dep_delay` are `NA`) is a
//!   cancelled flight, and counts as one;
//! - a row that departed but has no arrival delay is a diverted flight: its
//!   departure delay is tallied, and it counts as diverted (1,175 in the data);
//! - a row with any other missing or garbled value (a missing carrier, a
//!   departure time without a delay, a delay that is not a finite number or
//!   is more than a week early or late) goes to the error lane, with its line
//!   number, its text and the reason, and is counted. The real data has none.
//!
//! The means are the well-known ones (EV 19.96, 9E 16.73, MQ 10.55, UA 12.11
//! minutes...): every flight with a recorded departure delay counts.
//!
//! Run: `cargo run --release --example flight_delays`. The run is journaled
//! under `target/obzenflow/flight-delays/<run id>/`; at the end the runner
//! prints the command that replays and verifies it
//! (`-- --replay-from DIR --verify`). `-- --help` lists the runner's options;
//! the data can be pointed elsewhere with `OBZENFLOW_FLIGHTS`,
//! `OBZENFLOW_AIRLINES` and `OBZENFLOW_OUT`; a line longer than
//! `OBZENFLOW_MAX_LINE_BYTES` (4 MiB) fails the run, naming it. A run stopped with Ctrl-C prints
//! its partial table and leaves the CSV file as it was, unless
//! `OBZENFLOW_WRITE_PARTIAL=1`. `-- --parallel N` runs the parse and tally
//! stages as N instances each (the tally keyed by carrier), for the same
//! table.

mod flights;

use flights::CarrierDelays;
use obzenflow::app::clap::{Arg, value_parser};
use obzenflow::stage::{MAX_LINE_BYTES, collect, csv};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A path from the environment, or the bundled default.
fn path(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(default),
        PathBuf::from,
    )
}

fn main() -> ExitCode {
    let flights_path = path("OBZENFLOW_FLIGHTS", "data/nycflights13/flights.csv.gz");
    let airlines_path = path("OBZENFLOW_AIRLINES", "data/nycflights13/airlines.csv");
    let out_path = path("OBZENFLOW_OUT", "target/obzenflow/flight_delays.csv");
    let (table, rows) = collect::<CarrierDelays>();
    let written = out_path.clone();
    let partial = std::env::var_os("OBZENFLOW_WRITE_PARTIAL").is_some_and(|v| v == "1");
    let max_line = match std::env::var("OBZENFLOW_MAX_LINE_BYTES") {
        Err(_) => MAX_LINE_BYTES,
        Ok(text) => match text.parse::<usize>() {
            Ok(bytes) => bytes,
            Err(error) => {
                eprintln!(
                    "error: OBZENFLOW_MAX_LINE_BYTES=`{text}` is not a number of bytes: {error}"
                );
                return ExitCode::from(2);
            }
        },
    };
    obzenflow::app::Program::new(
        "Departure delays per airline from every flight that left New York City in 2013",
    )
    .flow("flight-delays")
    .env(
        "OBZENFLOW_FLIGHTS",
        "the flights CSV file, gzipped or not (the bundled one by default)",
    )
    .env(
        "OBZENFLOW_AIRLINES",
        "the airlines CSV file (the bundled one by default)",
    )
    .env(
        "OBZENFLOW_OUT",
        "the CSV file written at the end (target/obzenflow/flight_delays.csv)",
    )
    .env(
        "OBZENFLOW_MAX_LINE_BYTES",
        "the longest line read; a longer one fails the run (4194304)",
    )
    .env(
        "OBZENFLOW_WRITE_PARTIAL",
        "1: a stopped run writes its partial table to the CSV file",
    )
    .arg(
        Arg::new("parallel")
            .long("parallel")
            .value_name("N")
            .value_parser(value_parser!(u32).range(1..))
            .default_value("1")
            .help(
                "Run the parse and tally stages as N instances each (the tally keyed by carrier)",
            ),
    )
    .run_then(
        |app| {
            let instances = app.value::<u32>("parallel").map_or(1, |n| *n as usize);
            flights::flow_parallel(
                app.journals(),
                flights::read_flights(flights_path, max_line),
                csv::read(airlines_path),
                csv::write(out_path).write_partial(partial),
                table,
                instances,
            )
        },
        |report| {
            print!(
                "{}",
                flights::results(report, &rows.snapshot(), &written, partial)
            )
        },
    )
}
