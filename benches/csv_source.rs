//! The library's typed CSV source (`obzenflow::stage::csv::read`) against
//! the `csv` crate used by hand, on the flagship's 336,776 real rows (the
//! bundled gzipped file), each decoding every row into a struct of all 19
//! columns, `NA` as `None`. The source is polled directly (no flow), so
//! that only the reading and decoding differ. Two baselines:
//! - `csv_serde`: the csv crate's own serde decoding by header name, as a
//!   user writes it (`reader.deserialize()`, with `csv::invalid_option` on
//!   the optional columns so that `NA` is `None`): the goal's baseline;
//! - `csv_by_index`: the csv crate's records with every field parsed by
//!   hand by its index: the floor of what decoding can cost.
//!
//! Then the same rows as `PARTITIONS` gzipped files (default 2; contiguous
//! shares of the rows, written at the same compression level as the one
//! file they are compared with) read by `partitioned`, on a 2-worker
//! runtime, against that one file read by the plain source on the same
//! runtime: what reading several inputs at once gains.
//!
//! Run: `cargo bench --bench csv_source` (goal: the source at least 0.8x the
//! throughput of `csv_serde`).

mod support;

use obzenflow::stage::{Poll, Source, csv as of_csv, partitioned};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROWS: u64 = 336_776;

/// A row of flights.csv, every column.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Flight {
    year: u16,
    month: u8,
    day: u8,
    dep_time: Option<u16>,
    sched_dep_time: u16,
    dep_delay: Option<f64>,
    arr_time: Option<u16>,
    sched_arr_time: u16,
    arr_delay: Option<f64>,
    carrier: String,
    flight: u32,
    tailnum: Option<String>,
    origin: String,
    dest: String,
    air_time: Option<f64>,
    distance: f64,
    hour: u8,
    minute: u8,
    time_hour: String,
}

/// The same row for the csv crate's serde decoding: `NA` in an optional
/// column does not parse, and `invalid_option` makes that `None`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
struct FlightForCsv {
    year: u16,
    month: u8,
    day: u8,
    #[serde(deserialize_with = "csv::invalid_option")]
    dep_time: Option<u16>,
    sched_dep_time: u16,
    #[serde(deserialize_with = "csv::invalid_option")]
    dep_delay: Option<f64>,
    #[serde(deserialize_with = "csv::invalid_option")]
    arr_time: Option<u16>,
    sched_arr_time: u16,
    #[serde(deserialize_with = "csv::invalid_option")]
    arr_delay: Option<f64>,
    carrier: String,
    flight: u32,
    #[serde(deserialize_with = "csv::invalid_option")]
    tailnum: Option<String>,
    origin: String,
    dest: String,
    #[serde(deserialize_with = "csv::invalid_option")]
    air_time: Option<f64>,
    distance: f64,
    hour: u8,
    minute: u8,
    time_hour: String,
}

fn flights() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/nycflights13/flights.csv.gz")
}

/// The library's source, polled to its end; returns a checksum of the rows.
fn library_source(runtime: &tokio::runtime::Runtime) -> (u64, f64) {
    poll_all(runtime, of_csv::read::<Flight>(flights()))
}

/// Writes the bundled rows under `dir` as one gzipped file and as `parts`
/// files of contiguous shares, all at the same compression level: the one
/// file's path, and the parts'.
fn split_flights(dir: &Path, parts: usize) -> (PathBuf, Vec<PathBuf>) {
    use std::io::{BufRead, Write};
    let _ = std::fs::create_dir_all(dir);
    let input = flate2::read::GzDecoder::new(std::fs::File::open(flights()).expect("the flights"));
    let mut lines = std::io::BufReader::new(input)
        .lines()
        .map(|l| l.expect("a line"));
    let header = lines.next().expect("a header");
    let rows: Vec<String> = lines.collect();
    let write = |path: &Path, rows: &[String]| {
        let file = std::fs::File::create(path).expect("a scratch file");
        let mut out = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        writeln!(out, "{header}").expect("written");
        for row in rows {
            writeln!(out, "{row}").expect("written");
        }
        out.finish().expect("written");
    };
    let one = dir.join("flights.csv.gz");
    write(&one, &rows);
    let share = rows.len().div_ceil(parts.max(1));
    let paths = rows
        .chunks(share.max(1))
        .enumerate()
        .map(|(index, rows)| {
            let path = dir.join(format!("flights-{index}.csv.gz"));
            write(&path, rows);
            path
        })
        .collect();
    (one, paths)
}

/// Polls `source` to its end on `runtime`; returns the rows and a checksum.
fn poll_all<S: Source<Flight>>(runtime: &tokio::runtime::Runtime, mut source: S) -> (u64, f64) {
    runtime.block_on(async {
        let (mut rows, mut sum) = (0, 0.0);
        loop {
            match source.next().await.expect("readable") {
                Poll::Events(batch) => {
                    rows += batch.len() as u64;
                    sum += batch.iter().filter_map(|f| f.dep_delay).sum::<f64>();
                }
                Poll::End => return (rows, sum),
            }
        }
    })
}

/// `NA` or empty as `None`, anything else parsed.
fn optional<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || text == "NA" {
        None
    } else {
        text.parse().ok()
    }
}

fn number<T: std::str::FromStr + Default>(text: &str) -> T {
    text.parse().unwrap_or_default()
}

fn gzipped_reader() -> csv::Reader<flate2::read::GzDecoder<std::io::BufReader<std::fs::File>>> {
    let file = std::fs::File::open(flights()).expect("the flights");
    csv::Reader::from_reader(flate2::read::GzDecoder::new(
        std::io::BufReader::with_capacity(64 << 10, file),
    ))
}

/// The `csv` crate's serde decoding by header name.
fn csv_serde() -> (u64, f64) {
    let mut reader = gzipped_reader();
    let (mut rows, mut sum) = (0, 0.0);
    let mut batch = Vec::with_capacity(1024);
    for flight in reader.deserialize::<FlightForCsv>() {
        let flight = flight.expect("a flight");
        rows += 1;
        sum += flight.dep_delay.unwrap_or(0.0);
        batch.push(flight);
        if batch.len() == 1024 {
            black_box(&batch);
            batch.clear();
        }
    }
    (rows, sum)
}

/// The `csv` crate by hand: a reusable record, fields by index, parsed into
/// the same struct.
fn by_hand() -> (u64, f64) {
    let mut reader = gzipped_reader();
    let mut record = csv::StringRecord::new();
    let (mut rows, mut sum) = (0, 0.0);
    let mut batch = Vec::with_capacity(1024);
    while reader.read_record(&mut record).expect("readable") {
        let f = |i: usize| &record[i];
        let flight = Flight {
            year: number(f(0)),
            month: number(f(1)),
            day: number(f(2)),
            dep_time: optional(f(3)),
            sched_dep_time: number(f(4)),
            dep_delay: optional(f(5)),
            arr_time: optional(f(6)),
            sched_arr_time: number(f(7)),
            arr_delay: optional(f(8)),
            carrier: f(9).to_owned(),
            flight: number(f(10)),
            tailnum: optional(f(11)),
            origin: f(12).to_owned(),
            dest: f(13).to_owned(),
            air_time: optional(f(14)),
            distance: number(f(15)),
            hour: number(f(16)),
            minute: number(f(17)),
            time_hour: f(18).to_owned(),
        };
        rows += 1;
        sum += flight.dep_delay.unwrap_or(0.0);
        batch.push(flight);
        if batch.len() == 1024 {
            black_box(&batch);
            batch.clear();
        }
    }
    (rows, sum)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let (rows, sum) = library_source(&runtime);
    assert_eq!(rows, ROWS);
    let (hand_rows, hand_sum) = by_hand();
    assert_eq!((hand_rows, hand_sum), (rows, sum), "both read the same");
    assert_eq!(csv_serde(), (rows, sum), "all three read the same");

    let mut criterion = support::criterion()
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let mut group = criterion.benchmark_group("csv_source");
    group.throughput(criterion::Throughput::Elements(ROWS));
    group.bench_function("csv_serde", |b| b.iter(|| black_box(csv_serde())));
    group.bench_function("csv_by_index", |b| b.iter(|| black_box(by_hand())));
    group.bench_function("obzenflow_csv_read", |b| {
        b.iter(|| black_box(library_source(&runtime)));
    });
    group.finish();
    criterion.final_summary();
    support::print_ratio(
        "csv_source",
        "obzenflow_csv_read",
        "csv_serde",
        ROWS,
        "goal: at least 0.8x the throughput of the csv crate's serde decoding, i.e. ratio <= 1.25",
    );
    support::print_ratio(
        "csv_source",
        "obzenflow_csv_read",
        "csv_by_index",
        ROWS,
        "for reference: every field parsed by hand by its index",
    );

    let parts = std::env::var("PARTITIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2usize)
        .max(1);
    let scratch = std::env::temp_dir().join(format!("obzenflow-csv-parts-{}", std::process::id()));
    let (one, paths) = split_flights(&scratch, parts);
    let workers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime");
    let read_one = || poll_all(&workers, of_csv::read::<Flight>(&one));
    let read_parts = || {
        poll_all(
            &workers,
            partitioned(paths.iter().map(of_csv::read::<Flight>)),
        )
    };
    let (one_rows, one_sum) = read_one();
    let (part_rows, part_sum) = read_parts();
    assert_eq!((one_rows, part_rows), (ROWS, ROWS), "every row, once");
    assert!(
        (one_sum - part_sum).abs() < 1e-6 * one_sum.abs(),
        "the same rows"
    );
    let mut group = criterion.benchmark_group("csv_partitioned");
    group.throughput(criterion::Throughput::Elements(ROWS));
    group.bench_function("one_file", |b| b.iter(|| black_box(read_one())));
    group.bench_function("partitioned", |b| b.iter(|| black_box(read_parts())));
    group.finish();
    criterion.final_summary();
    let _ = std::fs::remove_dir_all(&scratch);
    support::print_ratio(
        "csv_partitioned",
        "partitioned",
        "one_file",
        ROWS,
        &format!("the rows as {parts} files read at once, against one file; 2 workers"),
    );
}
