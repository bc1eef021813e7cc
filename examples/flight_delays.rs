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
//! - a row with any other missing or garbled value goes to the error lane,
//!   with its line number, its text and the reason, and is counted. In the
//!   real data these are the 1,175 flights that departed but have no arrival
//!   data (diverted).
//!
//! Run: `cargo run --release --example flight_delays`. The run is journaled
//! under `target/obzenflow/flight-delays/<run id>/`; at the end the runner
//! prints the command that replays and verifies it
//! (`-- --replay-from DIR --verify`). `-- --help` lists the runner's options;
//! the data can be pointed elsewhere with `OBZENFLOW_FLIGHTS`,
//! `OBZENFLOW_AIRLINES` and `OBZENFLOW_OUT`.

use flate2::read::GzDecoder;
use obzenflow::flow;
use obzenflow::stage::{
    Poll, Receipt, Sink, Source, StageError, collect, from_iter, group_by, left_join, map, try_map,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One line of the flights file, as read, with where its header put the
/// columns the tally needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Line {
    number: u64,
    text: String,
    columns: Columns,
}

/// Where the fields the tally needs sit in a line.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Columns {
    dep_time: usize,
    dep_delay: usize,
    arr_delay: usize,
    carrier: usize,
    count: usize,
}

/// A flight, parsed.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Flight {
    carrier: String,
    /// `None` for a cancelled flight.
    dep_delay: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Airline {
    carrier: String,
    name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct NamedFlight {
    carrier: String,
    airline: String,
    dep_delay: Option<f64>,
}

/// What the tally keeps per carrier.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Tally {
    airline: String,
    flights: u64,
    cancelled: u64,
    delays: Vec<f64>,
}

/// One row of the result.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CarrierDelays {
    carrier: String,
    airline: String,
    flights: u64,
    cancelled: u64,
    mean_dep_delay: f64,
    p95_dep_delay: f64,
}

/// A source of the lines of a gzipped CSV file, after its header; the header
/// must name the columns the tally needs.
struct CsvLines {
    path: PathBuf,
    lines: Option<(std::io::Lines<BufReader<GzDecoder<File>>>, Columns)>,
    number: u64,
}

impl CsvLines {
    fn open(&mut self) -> Result<(), StageError> {
        let file = File::open(&self.path)
            .map_err(|e| StageError::fatal(format!("cannot open {}: {e}", self.path.display())))?;
        let mut lines = BufReader::new(GzDecoder::new(file)).lines();
        let header = lines
            .next()
            .ok_or_else(|| {
                StageError::fatal(format!(
                    "{} is empty: it has no header line",
                    self.path.display()
                ))
            })?
            .map_err(|e| StageError::fatal(format!("cannot read {}: {e}", self.path.display())))?;
        let columns = columns(&header)
            .map_err(|e| StageError::fatal(format!("{}: {e}", self.path.display())))?;
        self.number = 1;
        self.lines = Some((lines, columns));
        Ok(())
    }
}

impl Source<Line> for CsvLines {
    async fn next(&mut self) -> Result<Poll<Line>, StageError> {
        if self.lines.is_none() {
            self.open()?;
        }
        let Some((lines, columns)) = self.lines.as_mut() else {
            return Ok(Poll::End);
        };
        let mut batch = Vec::with_capacity(1024);
        for line in lines.by_ref().take(1024) {
            self.number += 1;
            let text = line.map_err(|e| {
                StageError::fatal(format!("{} line {}: {e}", self.path.display(), self.number))
            })?;
            batch.push(Line {
                number: self.number,
                text,
                columns: *columns,
            });
        }
        Ok(if batch.is_empty() {
            Poll::End
        } else {
            Poll::Events(batch)
        })
    }
}

const HEADER_NEEDS: [&str; 4] = ["dep_time", "dep_delay", "arr_delay", "carrier"];

fn columns(header: &str) -> Result<Columns, String> {
    let names: Vec<&str> = header.split(',').collect();
    let find = |name: &str| {
        names.iter().position(|n| *n == name).ok_or_else(|| {
            format!(
                "the header has no `{name}` column (it needs {})",
                HEADER_NEEDS.join(", ")
            )
        })
    };
    Ok(Columns {
        dep_time: find("dep_time")?,
        dep_delay: find("dep_delay")?,
        arr_delay: find("arr_delay")?,
        carrier: find("carrier")?,
        count: names.len(),
    })
}

fn parse(line: Line) -> Result<Flight, String> {
    let columns = line.columns;
    let fail = |reason: &str| format!("line {}: {reason}: `{}`", line.number, line.text);
    let fields: Vec<&str> = line.text.split(',').collect();
    if fields.len() != columns.count {
        return Err(fail(&format!(
            "{} fields where {} were expected",
            fields.len(),
            columns.count
        )));
    }
    let missing = |value: &str| value.is_empty() || value == "NA";
    let carrier = fields[columns.carrier];
    if missing(carrier) {
        return Err(fail("no carrier"));
    }
    let (dep_time, dep_delay, arr_delay) = (
        fields[columns.dep_time],
        fields[columns.dep_delay],
        fields[columns.arr_delay],
    );
    let dep_delay = match (missing(dep_time), missing(dep_delay)) {
        (true, true) => None,
        (false, false) => {
            if missing(arr_delay) {
                return Err(fail(
                    "departed, but the arrival delay is missing (diverted?)",
                ));
            }
            Some(
                dep_delay
                    .parse::<f64>()
                    .map_err(|e| fail(&format!("departure delay `{dep_delay}`: {e}")))?,
            )
        }
        _ => {
            return Err(fail(
                "departure time and departure delay disagree about whether it departed",
            ));
        }
    };
    Ok(Flight {
        carrier: carrier.to_owned(),
        dep_delay,
    })
}

fn airlines(path: &Path) -> Result<Vec<Airline>, String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    reader
        .deserialize::<Airline>()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| format!("{} row {}: {e}", path.display(), i + 2)))
        .collect()
}

fn tally(tally: &mut Tally, flight: NamedFlight) {
    tally.airline = flight.airline;
    tally.flights += 1;
    match flight.dep_delay {
        Some(delay) => tally.delays.push(delay),
        None => tally.cancelled += 1,
    }
}

fn summarize((carrier, mut tally): (String, Tally)) -> CarrierDelays {
    tally.delays.sort_by(f64::total_cmp);
    let count = tally.delays.len();
    let mean = if count == 0 {
        0.0
    } else {
        tally.delays.iter().sum::<f64>() / count as f64
    };
    // Nearest-rank 95th percentile.
    let p95 = match count {
        0 => 0.0,
        n => tally.delays[((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1],
    };
    CarrierDelays {
        carrier,
        airline: tally.airline,
        flights: tally.flights,
        cancelled: tally.cancelled,
        mean_dep_delay: mean,
        p95_dep_delay: p95,
    }
}

/// Writes each row to a CSV file; the receipt says which line.
struct CsvFile {
    path: PathBuf,
    writer: Option<csv::Writer<BufWriter<File>>>,
    rows: u64,
}

impl Sink<CarrierDelays> for CsvFile {
    async fn consume(&mut self, row: CarrierDelays) -> Result<Receipt, StageError> {
        if self.writer.is_none() {
            if let Some(parent) = self.path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StageError::fatal(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let file = File::create(&self.path).map_err(|e| {
                StageError::fatal(format!("cannot create {}: {e}", self.path.display()))
            })?;
            self.writer = Some(csv::Writer::from_writer(BufWriter::new(file)));
        }
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| StageError::fatal("no writer"))?;
        writer.serialize(&row).map_err(StageError::fatal)?;
        self.rows += 1;
        Ok(Receipt::with_detail(format!(
            "{} row {}",
            self.path.display(),
            self.rows
        )))
    }

    async fn drain(&mut self) -> Result<(), StageError> {
        if let Some(writer) = self.writer.as_mut() {
            writer.flush().map_err(StageError::fatal)?;
            writer.get_ref().get_ref().sync_all().map_err(|e| {
                StageError::fatal(format!("cannot sync {}: {e}", self.path.display()))
            })?;
        }
        Ok(())
    }
}

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
    let airlines = match airlines(&airlines_path) {
        Ok(airlines) => airlines,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let (table, rows) = collect::<CarrierDelays>();
    let written = out_path.clone();
    obzenflow::app::run_then(
        |app| flow(app, flights_path, airlines, out_path, table),
        |report| print_results(report, &rows.snapshot(), &written),
    )
}

fn flow(
    app: &obzenflow::app::App,
    flights_path: PathBuf,
    airlines: Vec<Airline>,
    out_path: PathBuf,
    table: obzenflow::stage::CollectSink<CarrierDelays>,
) -> obzenflow::flow::FlowHandle {
    flow! {
        name: "flight-delays",
        journals: app.journals(),
        stages: {
            flights     = source!(Line => CsvLines { path: flights_path.clone(), lines: None, number: 0 });
            parsed      = transform!(Line -> Flight => try_map(parse));
            airlines    = source!(Airline => from_iter(airlines));
            named       = join!(Airline, Flight -> NamedFlight => left_join(
                |a: &Airline| a.carrier.clone(),
                |f: &Flight| f.carrier.clone(),
                |a: Option<&Airline>, f: Flight| NamedFlight {
                    airline: a.map_or_else(|| format!("(unknown carrier {})", f.carrier), |a| a.name.clone()),
                    carrier: f.carrier,
                    dep_delay: f.dep_delay,
                },
            ));
            per_carrier = stateful!(NamedFlight -> (String, Tally) => group_by(
                |f: &NamedFlight| f.carrier.clone(),
                tally,
            ).emit_on_eof());
            summary     = transform!((String, Tally) -> CarrierDelays => map(summarize));
            table       = sink!(CarrierDelays => table);
            file        = sink!(CarrierDelays => CsvFile { path: out_path.clone(), writer: None, rows: 0 });
        },
        topology: {
            flights |> parsed;
            (airlines, parsed) |> named |> per_carrier |> summary |> (table, file);
        }
    }
}

fn print_results(report: &obzenflow::flow::FlowReport, rows: &[CarrierDelays], written: &Path) {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| b.mean_dep_delay.total_cmp(&a.mean_dep_delay));
    println!("Departure delays from New York City, 2013, by airline (minutes)\n");
    println!(
        "{:<4} {:<28} {:>8} {:>10} {:>8} {:>8}",
        "code", "airline", "flights", "cancelled", "mean", "p95"
    );
    for row in &rows {
        println!(
            "{:<4} {:<28} {:>8} {:>10} {:>8.1} {:>8.0}",
            row.carrier,
            row.airline,
            row.flights,
            row.cancelled,
            row.mean_dep_delay,
            row.p95_dep_delay
        );
    }
    if rows.is_empty() {
        println!("(no table: in a replay, sinks do not repeat their effects)");
    }
    let count = |stage: &str| report.stage(stage).map_or(0, |s| s.events_out);
    let total = count("named");
    let cancelled = if rows.is_empty() {
        String::new()
    } else {
        format!(
            " ({} cancelled)",
            rows.iter().map(|r| r.cancelled).sum::<u64>()
        )
    };
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for record in &report.errors {
        let reason = record
            .message
            .split(": ")
            .nth(1)
            .unwrap_or(&record.message)
            .to_owned();
        *reasons.entry(reason).or_default() += 1;
    }
    println!(
        "\n{total} flights tallied{cancelled}; {} rows in the error lane:",
        report.errors.len()
    );
    for (reason, count) in &reasons {
        println!("  {count:>6}  {reason}");
    }
    let read = count("flights");
    println!(
        "{read} rows read = {total} tallied + {} in the error lane",
        report.errors.len()
    );
    if !rows.is_empty() {
        println!("\nwritten to {}", written.display());
    }
}
