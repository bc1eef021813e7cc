//! The flagship flow end to end on the bundled 336,776 rows: gzipped CSV ->
//! parse -> join with airlines -> per-carrier tally -> table and CSV file,
//! with memory journals and with durable disk journals (fsync per batch).
//! The baseline, in the same run: the same work written as one plain loop
//! (decompress, parse, join, tally, summarize, write), using the flow's own
//! parse, tally and summary functions, so only the runtime differs.
//!
//! Run: `cargo bench --bench flagship`

mod support;

#[allow(dead_code)]
#[path = "../examples/flight_delays/flights.rs"]
mod flights;

use flights::{CarrierDelays, FlightRow, NamedFlight, Tally};
use obzenflow::flow::journals::{disk, memory};
use obzenflow::stage::csv::Numbered;
use obzenflow::stage::{MAX_LINE_BYTES, collect};
use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROWS: u64 = 336_776;

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/nycflights13")
        .join(file)
}

fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flagship-bench")
}

/// The flow; returns the number of rows it accounted for (tallied + error lane).
fn obzenflow_flagship(runtime: &tokio::runtime::Runtime, durable: bool) -> u64 {
    let (table, rows) = collect::<CarrierDelays>();
    let journals = if durable {
        disk(scratch().join("journals"))
    } else {
        memory()
    };
    let mut flow = flights::flow(
        journals,
        flights::read_flights(data("flights.csv.gz"), MAX_LINE_BYTES),
        obzenflow::stage::csv::read(data("airlines.csv")),
        obzenflow::stage::csv::write(scratch().join("flow.csv")),
        table,
    );
    let report = runtime.block_on(flow.run()).expect("the flow completes");
    let tallied: u64 = rows.snapshot().iter().map(|row| row.flights).sum();
    tallied + report.errors.len() as u64
}

/// The same work as one loop; returns what it accounted for.
fn plain_loop() -> u64 {
    let mut airlines = csv::Reader::from_path(data("airlines.csv")).expect("airlines");
    let names: HashMap<String, String> = airlines
        .deserialize::<flights::Airline>()
        .map(|airline| airline.expect("an airline"))
        .map(|airline| (airline.carrier, airline.name))
        .collect();
    let file = std::fs::File::open(data("flights.csv.gz")).expect("flights");
    let mut reader = csv::Reader::from_reader(flate2::read::GzDecoder::new(file));
    let header = reader.headers().expect("a header").clone();
    let column = |name: &str| header.iter().position(|h| h == name).expect("a column");
    let (carrier, dep_time, dep_delay, arr_delay) = (
        column("carrier"),
        column("dep_time"),
        column("dep_delay"),
        column("arr_delay"),
    );
    let mut tallies: HashMap<String, Tally> = HashMap::new();
    let mut errors = 0;
    let mut record = csv::StringRecord::new();
    let mut line = 1;
    while reader.read_record(&mut record).expect("readable") {
        line += 1;
        let field = |i: usize| Some(&record[i]).filter(|v| !v.is_empty() && *v != "NA");
        let row = FlightRow {
            carrier: field(carrier).map(str::to_owned),
            dep_time: field(dep_time).and_then(|v| v.parse().ok()),
            dep_delay: field(dep_delay).and_then(|v| v.parse().ok()),
            arr_delay: field(arr_delay).and_then(|v| v.parse().ok()),
        };
        match flights::parse(Numbered { line, row }) {
            Ok(flight) => {
                let airline = names
                    .get(&flight.carrier)
                    .cloned()
                    .unwrap_or_else(|| format!("(unknown carrier {})", flight.carrier));
                let entry = tallies.entry(flight.carrier.clone()).or_default();
                flights::tally(
                    entry,
                    NamedFlight {
                        carrier: flight.carrier,
                        airline,
                        dep_delay: flight.dep_delay,
                        diverted: flight.diverted,
                    },
                );
            }
            Err(_) => errors += 1,
        }
    }
    let rows: Vec<CarrierDelays> = tallies.into_iter().map(flights::summarize).collect();
    let mut writer = csv::Writer::from_path(scratch().join("plain.csv")).expect("the output");
    for row in &rows {
        writer.serialize(row).expect("written");
    }
    writer.flush().expect("flushed");
    rows.iter().map(|row| row.flights).sum::<u64>() + errors
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    std::fs::create_dir_all(scratch()).expect("a scratch directory");
    assert_eq!(obzenflow_flagship(&runtime, false), ROWS);
    assert_eq!(obzenflow_flagship(&runtime, true), ROWS);
    assert_eq!(plain_loop(), ROWS);
    let _ = std::fs::remove_dir_all(scratch().join("journals"));

    let mut criterion = support::criterion()
        .sample_size(10)
        .measurement_time(Duration::from_secs(6));
    let mut group = criterion.benchmark_group("flagship");
    group.throughput(criterion::Throughput::Elements(ROWS));
    group.bench_function("plain_loop", |b| b.iter(|| black_box(plain_loop())));
    group.bench_function("obzenflow_memory", |b| {
        b.iter(|| black_box(obzenflow_flagship(&runtime, false)));
    });
    group.bench_function("obzenflow_disk", |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                let started = std::time::Instant::now();
                black_box(obzenflow_flagship(&runtime, true));
                spent += started.elapsed();
                let _ = std::fs::remove_dir_all(scratch().join("journals"));
            }
            spent
        });
    });
    group.finish();
    criterion.final_summary();
    for subject in ["obzenflow_memory", "obzenflow_disk"] {
        support::print_ratio(
            "flagship",
            subject,
            "plain_loop",
            ROWS,
            "for reference: one thread, no runtime, no journals",
        );
    }
}
