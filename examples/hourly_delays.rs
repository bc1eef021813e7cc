//! Departure delays by origin airport and hour of the day, day by day, from
//! every flight that left New York City in 2013 (the bundled nycflights13
//! data): the flights are read by the library's CSV source, grouped into
//! one-day event-time windows per origin (the flight's scheduled local
//! time, so a day runs from midnight to midnight in New York), and each
//! closed day becomes one row per scheduled hour, written as CSV by the
//! library's CSV sink and, when `--postgres URL` names a database, to the
//! table `hourly_delays` there too (at most once per row of a run). No
//! hand-written source or sink.
//!
//! The bundled file is in the order its publisher sorted it: by month as
//! text (January, October, November, December, February, ...). Event time
//! is what the windows go by, so that order only decides how late a flight
//! may come: by default 8,040 hours (335 days), enough for every flight in
//! this file to count in its day; with `--lateness 1`, the flights of
//! February to September come after December's have closed their days and
//! go to the error lane, counted, with their time and the watermark.
//!
//! Run: `cargo run --release --example hourly_delays` (`-- --help` for the
//! options: `--out FILE`, `--postgres URL`, `--lateness HOURS`, and the
//! runner's own).

use obzenflow::app::clap::{Arg, value_parser};
use obzenflow::prelude::*;
use obzenflow::stage::window::{Timestamp, Window, tumbling};
use obzenflow::stage::{collect, csv, filter, flat_map};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The columns of a flight this example reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Departure {
    year: i32,
    month: u32,
    day: u32,
    /// The scheduled hour of departure, local time.
    hour: u32,
    origin: String,
    /// `NA` (None) for a cancelled flight.
    dep_delay: Option<f64>,
}

impl Departure {
    /// The scheduled local time, as event time: windows then follow local days.
    fn scheduled(&self) -> Result<Timestamp, StageError> {
        Timestamp::parse(&format!(
            "{:04}-{:02}-{:02}T{:02}:00:00Z",
            self.year, self.month, self.day, self.hour
        ))
    }
}

/// A day at one airport: flights and their summed delay, per scheduled hour.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Hours {
    flights: [u64; 24],
    delay: [f64; 24],
}

/// One row of the result.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct HourlyDelay {
    origin: String,
    date: String,
    hour: u32,
    flights: u64,
    mean_dep_delay: f64,
}

fn add(hours: &mut Hours, departure: Departure) {
    let hour = departure.hour.min(23) as usize;
    hours.flights[hour] += 1;
    hours.delay[hour] += departure.dep_delay.unwrap_or(0.0);
}

/// A closed day's rows, one per hour that had departures.
fn rows(day: Window<String, Hours>) -> Vec<HourlyDelay> {
    let date = day.start.to_string()[..10].to_owned();
    (0..24)
        .filter(|&hour| day.value.flights[hour] > 0)
        .map(|hour| HourlyDelay {
            origin: day.key.clone(),
            date: date.clone(),
            hour: hour as u32,
            flights: day.value.flights[hour],
            mean_dep_delay: day.value.delay[hour] / day.value.flights[hour] as f64,
        })
        .collect()
}

fn bundled(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/nycflights13")
        .join(file)
}

fn main() -> ExitCode {
    let (table, results) = collect::<HourlyDelay>();
    let written = std::cell::OnceCell::new();
    obzenflow::app::Program::new(
        "Departure delays from New York City in 2013 by origin and scheduled hour, day by day",
    )
    .flow("hourly-delays")
    .arg(
        Arg::new("flights")
            .long("flights")
            .value_name("FILE")
            .value_parser(value_parser!(PathBuf))
            .help("The flights CSV file, gzipped or not [default: the bundled one]"),
    )
    .arg(
        Arg::new("out")
            .long("out")
            .value_name("FILE")
            .value_parser(value_parser!(PathBuf))
            .default_value("target/obzenflow/hourly_delays.csv")
            .help("The CSV file written when the input ends"),
    )
    .arg(
        Arg::new("postgres")
            .long("postgres")
            .value_name("URL")
            .help("Also write the rows to the table `hourly_delays` of this PostgreSQL database (e.g. 'host=127.0.0.1 user=postgres dbname=test')"),
    )
    .arg(
        Arg::new("lateness")
            .long("lateness")
            .value_name("HOURS")
            .value_parser(value_parser!(u64))
            .default_value("8040")
            .help("How far behind the latest flight seen (in hours) a flight may come and still count in its day"),
    )
    .run_with(
        |app| {
            let flights = app
                .value::<PathBuf>("flights")
                .cloned()
                .unwrap_or_else(|| bundled("flights.csv.gz"));
            let out = app.value::<PathBuf>("out").cloned().unwrap_or_default();
            let _ = written.set(out.clone());
            let lateness = Duration::from_secs(3600 * app.value::<u64>("lateness").copied().unwrap_or(8040));
            let postgres = app.value::<String>("postgres").map(|url| {
                obzenflow::stage::postgres::insert(
                    url.clone(),
                    "hourly_delays",
                    ["origin", "date", "hour", "flights", "mean_dep_delay"],
                    |row: &HourlyDelay| {
                        (
                            row.origin.clone(),
                            row.date.clone(),
                            i64::from(row.hour),
                            row.flights as i64,
                            row.mean_dep_delay,
                        )
                    },
                )
                .create_table(
                    "origin TEXT NOT NULL, date TEXT NOT NULL, hour BIGINT NOT NULL, \
                     flights BIGINT NOT NULL, mean_dep_delay DOUBLE PRECISION NOT NULL",
                )
            });
            flow! {
                name: "hourly-delays",
                journals: app.journals(),
                stages: {
                    flights  = source!(Departure => csv::read(flights));
                    departed = transform!(Departure -> Departure => filter(|d: &Departure| d.dep_delay.is_some()));
                    daily    = stateful!(Departure -> Window<String, Hours> => tumbling(
                        Duration::from_secs(24 * 3600),
                        |d: &Departure| d.origin.clone(),
                        Departure::scheduled,
                        add,
                    ).allowed_lateness(lateness));
                    hourly   = transform!(Window<String, Hours> -> HourlyDelay => flat_map(rows));
                    file     = sink!(HourlyDelay => csv::write(out));
                    database = sink!(HourlyDelay => postgres);
                    table    = sink!(HourlyDelay => table);
                },
                topology: {
                    flights |> departed |> daily |> hourly |> (file, database, table);
                }
            }
        },
        |_flow, report| {
            let mut rows = results.snapshot();
            let departed = report.stage("departed").map_or(0, |s| s.events_out);
            let late = report.stage("daily").map_or(0, |s| s.errors);
            println!(
                "{} hourly rows from {departed} departures ({late} too late for their day, in the error lane)",
                rows.len()
            );
            rows.retain(|row| row.flights >= 10);
            rows.sort_by(|a, b| b.mean_dep_delay.total_cmp(&a.mean_dep_delay));
            println!("the worst hours with at least 10 departures:");
            for row in rows.iter().take(5) {
                println!(
                    "  {} {} {:02}:00  {:>3} flights, mean delay {:6.1} min",
                    row.origin, row.date, row.hour, row.flights, row.mean_dep_delay
                );
            }
            if let (obzenflow::flow::FlowState::Completed, Some(path)) = (&report.state, written.get()) {
                println!("written to {}", path.display());
            }
        },
    )
}
