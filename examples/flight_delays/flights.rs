//! The flagship flow and its parts, shared by the example's `main`, the
//! tests of its handling of bad input (`tests/flagship.rs`) and its benchmark
//! (`benches/flagship.rs`).

use obzenflow::flow;
use obzenflow::flow::journals::Journals;
use obzenflow::stage::csv::{self, CsvSink, CsvSource, Numbered, NumberedCsvSource};
use obzenflow::stage::{CollectSink, group_by, left_join, map, try_map};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The columns of the flights file the tally reads, decoded by the
/// library's CSV source (`NA` or empty is `None`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FlightRow {
    pub(crate) carrier: Option<String>,
    pub(crate) dep_time: Option<u32>,
    pub(crate) dep_delay: Option<f64>,
    pub(crate) arr_delay: Option<f64>,
}

/// A flight, parsed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Flight {
    pub(crate) carrier: String,
    /// `None` for a cancelled flight.
    pub(crate) dep_delay: Option<f64>,
    /// It departed and has no arrival: it was diverted.
    pub(crate) diverted: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Airline {
    pub(crate) carrier: String,
    pub(crate) name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct NamedFlight {
    pub(crate) carrier: String,
    pub(crate) airline: String,
    pub(crate) dep_delay: Option<f64>,
    pub(crate) diverted: bool,
}

/// What the tally keeps per carrier.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Tally {
    pub(crate) airline: String,
    pub(crate) flights: u64,
    pub(crate) cancelled: u64,
    pub(crate) diverted: u64,
    pub(crate) delays: Vec<f64>,
}

/// One row of the result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CarrierDelays {
    pub(crate) carrier: String,
    pub(crate) airline: String,
    pub(crate) flights: u64,
    pub(crate) cancelled: u64,
    pub(crate) diverted: u64,
    pub(crate) mean_dep_delay: f64,
    pub(crate) p95_dep_delay: f64,
}

/// The largest departure delay (or earliness) taken as real: a week. The
/// data's own range is -43 to 1,301 minutes; a value past this is garbled.
pub(crate) const PLAUSIBLE_DELAY_MINUTES: f64 = 7.0 * 24.0 * 60.0;

/// A decoded row as a flight, or why it cannot be tallied.
pub(crate) fn parse(Numbered { line, row }: Numbered<FlightRow>) -> Result<Flight, String> {
    let fail = |reason: String| format!("line {line}: {reason}");
    let carrier = row.carrier.ok_or_else(|| fail("no carrier".to_owned()))?;
    let dep_delay = match (row.dep_time, row.dep_delay) {
        (None, None) => None,
        (Some(_), Some(delay)) if !delay.is_finite() => {
            return Err(fail(format!(
                "departure delay `{delay:?}` is not a finite number"
            )));
        }
        (Some(_), Some(delay)) if delay.abs() > PLAUSIBLE_DELAY_MINUTES => {
            return Err(fail(format!(
                "departure delay `{delay:?}` is more than a week ({PLAUSIBLE_DELAY_MINUTES} minutes) early or late"
            )));
        }
        (Some(_), Some(delay)) => Some(delay),
        _ => {
            return Err(fail(
                "departure time and departure delay disagree about whether it departed".to_owned(),
            ));
        }
    };
    Ok(Flight {
        carrier,
        diverted: dep_delay.is_some() && row.arr_delay.is_none(),
        dep_delay,
    })
}

pub(crate) fn tally(tally: &mut Tally, flight: NamedFlight) {
    tally.airline = flight.airline;
    tally.flights += 1;
    tally.diverted += u64::from(flight.diverted);
    match flight.dep_delay {
        Some(delay) => tally.delays.push(delay),
        None => tally.cancelled += 1,
    }
}

pub(crate) fn summarize((carrier, mut tally): (String, Tally)) -> CarrierDelays {
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
        diverted: tally.diverted,
        mean_dep_delay: mean,
        p95_dep_delay: p95,
    }
}

/// The flights file, read by the library's CSV source, each row with its line.
pub(crate) fn read_flights(path: PathBuf, max_line_bytes: usize) -> NumberedCsvSource<FlightRow> {
    csv::read(path).max_line_bytes(max_line_bytes).numbered()
}

/// The flow: flights (a CSV file, gzipped or not) joined with the airlines
/// table (a CSV file), tallied per carrier into `table` and the CSV file `out`.
// The example calls `flow_parallel`; the tests and benchmarks this.
#[allow(dead_code)]
pub(crate) fn flow(
    journals: Journals,
    flights: NumberedCsvSource<FlightRow>,
    airlines: CsvSource<Airline>,
    out: CsvSink,
    table: CollectSink<CarrierDelays>,
) -> obzenflow::flow::FlowHandle {
    flow_parallel(journals, flights, airlines, out, table, 1)
}

/// [`flow()`] with its parse and tally stages run as `instances` instances
/// each (the tally keyed by carrier): the same table.
pub(crate) fn flow_parallel(
    journals: Journals,
    flights: NumberedCsvSource<FlightRow>,
    airlines: CsvSource<Airline>,
    out: CsvSink,
    table: CollectSink<CarrierDelays>,
    instances: usize,
) -> obzenflow::flow::FlowHandle {
    flow! {
        name: "flight-delays",
        journals: journals,
        stages: {
            flights     = source!(Numbered<FlightRow> => flights);
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
            table       = sink!(CarrierDelays => table);
            file        = sink!(CarrierDelays => out);
        },
        topology: {
            flights |> parsed;
            (airlines, parsed) |> named |> per_carrier |> summary |> (table, file);
        }
    }
}

/// What the flagship prints after a run that completed or was stopped: the
/// table, the row accounting, and where the results went (`write_partial`:
/// whether a stopped run was asked to write its partial results).
pub(crate) fn results(
    report: &obzenflow::flow::FlowReport,
    rows: &[CarrierDelays],
    written: &Path,
    write_partial: bool,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| b.mean_dep_delay.total_cmp(&a.mean_dep_delay));
    let _ = writeln!(
        out,
        "Departure delays from New York City, 2013, by airline (minutes)\n"
    );
    let _ = writeln!(
        out,
        "{:<4} {:<28} {:>8} {:>10} {:>9} {:>8} {:>8}",
        "code", "airline", "flights", "cancelled", "diverted", "mean", "p95"
    );
    for row in &rows {
        let _ = writeln!(
            out,
            "{:<4} {:<28} {:>8} {:>10} {:>9} {:>8.2} {:>8.0}",
            row.carrier,
            row.airline,
            row.flights,
            row.cancelled,
            row.diverted,
            row.mean_dep_delay,
            row.p95_dep_delay
        );
    }
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "(no table: in a replay, sinks do not repeat their effects)"
        );
    }
    let count = |stage: &str| report.stage(stage).map_or(0, |s| s.events_out);
    let total = count("named");
    let cancelled = if rows.is_empty() {
        String::new()
    } else {
        format!(
            " ({} cancelled, {} diverted)",
            rows.iter().map(|r| r.cancelled).sum::<u64>(),
            rows.iter().map(|r| r.diverted).sum::<u64>()
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
    let _ = writeln!(
        out,
        "\n{total} flights tallied{cancelled}; {} rows in the error lane{}",
        report.errors.len(),
        if report.errors.is_empty() { "" } else { ":" }
    );
    for (reason, count) in &reasons {
        let _ = writeln!(out, "  {count:>6}  {reason}");
    }
    // Rows the source could not decode are in the error lane too.
    let read = count("flights") + report.stage("flights").map_or(0, |s| s.errors);
    let _ = writeln!(
        out,
        "{read} rows read = {total} tallied + {} in the error lane",
        report.errors.len()
    );
    if report.state == obzenflow::flow::FlowState::Stopped {
        let _ = writeln!(
            out,
            "\nstopped before the end of the input: these are partial results, and {}",
            if write_partial {
                format!("were written to {}, as asked", written.display())
            } else {
                format!("{} was left as it was", written.display())
            }
        );
    } else if !rows.is_empty() {
        let _ = writeln!(out, "\nwritten to {}", written.display());
    }
    out
}
