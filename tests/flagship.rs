//! The flagship flow on bad input: rows with missing or garbled fields go to
//! the error lane, counted and named by line; an empty file, a file that is
//! not what its name says, a header without a needed column and a file that
//! does not exist fail the flow with an error naming the file; nothing is lost.

#[allow(dead_code)]
#[path = "../examples/flight_delays/flights.rs"]
mod flights;

use flights::{Airline, CarrierDelays};
use obzenflow::flow::journals::memory;
use obzenflow::flow::{FlowError, FlowReport};
use obzenflow::stage::csv::CsvSource;
use obzenflow::stage::{MAX_LINE_BYTES, collect, csv};
use std::io::Write;
use std::path::PathBuf;

const HEADER: &str = "year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,carrier,flight,tailnum,origin,dest,air_time,distance,hour,minute,time_hour";

/// A scratch directory of its own for each test.
fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("flagship")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gzip(path: &PathBuf, text: &str) {
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap();
}

fn carriers() -> CsvSource<Airline> {
    csv::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nycflights13/airlines.csv"))
}

/// Runs the flagship flow on `flights` with memory journals.
async fn run(
    dir: &std::path::Path,
    flights: PathBuf,
) -> (Result<FlowReport, FlowError>, Vec<CarrierDelays>) {
    run_as(dir, flights, 1).await
}

/// The same, its parse and tally stages as `instances` instances each.
async fn run_as(
    dir: &std::path::Path,
    flights: PathBuf,
    instances: usize,
) -> (Result<FlowReport, FlowError>, Vec<CarrierDelays>) {
    let (table, rows) = collect::<CarrierDelays>();
    let mut flow = flights::flow_parallel(
        memory(),
        flights::read_flights(flights, MAX_LINE_BYTES),
        carriers(),
        csv::write(dir.join("out.csv")),
        table,
        instances,
    );
    let outcome = flow.run().await;
    (outcome, rows.snapshot())
}

/// The bundled data with the parse and tally stages as 1, 2 and 3
/// instances: the same table, the same rows in the CSV file (in the order
/// of the tally's instances), every row accounted for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flagship_in_parallel_gives_the_same_table() {
    let flights =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nycflights13/flights.csv.gz");
    let mut results = Vec::new();
    for instances in [1, 2, 3] {
        let dir = scratch(&format!("parallel-{instances}"));
        let (outcome, table) = run_as(&dir, flights.clone(), instances).await;
        let report = outcome.unwrap();
        assert_eq!(report.stage("named").unwrap().events_out, 336_776);
        assert!(report.errors.is_empty());
        let mut table: Vec<String> = table.iter().map(|row| format!("{row:?}")).collect();
        table.sort();
        let csv = std::fs::read_to_string(dir.join("out.csv")).unwrap();
        let mut lines: Vec<&str> = csv.lines().collect();
        let header = lines.remove(0).to_owned();
        lines.sort_unstable();
        let lines: Vec<String> = lines.into_iter().map(str::to_owned).collect();
        assert_eq!(table.len(), 16);
        results.push((table, header, lines));
    }
    assert_eq!(results[1], results[0], "2 instances");
    assert_eq!(results[2], results[0], "3 instances");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_go_to_the_error_lane_counted_and_named_by_line() {
    let dir = scratch("bad_rows");
    let rows = [
        // line 2: fine
        "2013,1,1,517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,2013-01-01T10:00:00Z",
        // line 3: cancelled (no departure): counted as a cancellation
        "2013,1,1,NA,1630,NA,NA,1815,NA,EV,4308,N18120,EWR,RDU,NA,416,16,30,2013-01-01T21:00:00Z",
        // line 4: cut short
        "2013,1,1,542,540,2,923",
        // line 5: a garbled departure delay
        "2013,1,1,544,545,minus one,1004,1022,-18,B6,725,N804JB,JFK,BQN,183,1576,5,45,2013-01-01T10:00:00Z",
        // line 6: no carrier
        "2013,1,1,554,600,-6,812,837,-25,,461,N668DN,LGA,ATL,116,762,6,0,2013-01-01T11:00:00Z",
        // line 7: departed, no arrival (diverted): tallied, counted as diverted
        "2013,1,1,554,558,-4,NA,NA,NA,UA,1696,N39463,EWR,ORD,NA,719,5,58,2013-01-01T10:00:00Z",
        // line 8: departure time and delay disagree
        "2013,1,1,NA,600,-5,913,854,19,B6,507,N516JB,EWR,FLL,158,1065,6,0,2013-01-01T11:00:00Z",
        // line 9: a carrier the airlines table does not know: tallied, named as unknown
        "2013,1,1,555,600,-5,913,854,19,ZZ,507,N516JB,EWR,FLL,158,1065,6,0,2013-01-01T11:00:00Z",
        // line 10: fine
        "2013,1,1,557,600,-3,709,723,-14,EV,5708,N829AS,LGA,IAD,53,229,6,0,2013-01-01T11:00:00Z",
        // lines 11 to 14: delays that are not numbers a tally can take
        "2013,1,1,557,600,NaN,709,723,-14,EV,5708,N829AS,LGA,IAD,53,229,6,0,2013-01-01T11:00:00Z",
        "2013,1,1,557,600,inf,709,723,-14,EV,5708,N829AS,LGA,IAD,53,229,6,0,2013-01-01T11:00:00Z",
        "2013,1,1,557,600,-1e308,709,723,-14,EV,5708,N829AS,LGA,IAD,53,229,6,0,2013-01-01T11:00:00Z",
        "2013,1,1,557,600,10081,709,723,-14,EV,5708,N829AS,LGA,IAD,53,229,6,0,2013-01-01T11:00:00Z",
    ];
    let path = dir.join("flights.csv.gz");
    gzip(&path, &format!("{HEADER}\n{}\n", rows.join("\n")));
    let (outcome, table) = run(&dir, path.clone()).await;
    let report = outcome.unwrap();

    // Rows the source could not decode are in the error lane, from the source.
    let source = report.stage("flights").unwrap();
    let read = source.events_out + source.errors;
    let tallied = report.stage("named").unwrap().events_out;
    assert_eq!(read, 13);
    assert_eq!(tallied, 5);
    assert_eq!(read, tallied + report.errors.len() as u64, "nothing lost");
    let messages: Vec<&str> = report.errors.iter().map(|e| e.message.as_str()).collect();
    let file = path.display();
    let expected = [
        format!("{file} line 4: 7 fields where the header has 19: `2013,1,1,542,540,2,923`"),
        format!(
            "{file} line 5: column `dep_delay`: `minus one` is not a number: invalid float literal: `2013,1,1,544,545,minus one,"
        ),
        "line 6: no carrier".to_owned(),
        "line 8: departure time and departure delay disagree about whether it departed".to_owned(),
        "line 11: departure delay `NaN` is not a finite number".to_owned(),
        "line 12: departure delay `inf` is not a finite number".to_owned(),
        "line 13: departure delay `-1e308` is more than a week (10080 minutes) early or late"
            .to_owned(),
        "line 14: departure delay `10081.0` is more than a week (10080 minutes) early or late"
            .to_owned(),
    ];
    assert_eq!(messages.len(), expected.len(), "{messages:#?}");
    for start in &expected {
        assert_eq!(
            messages
                .iter()
                .filter(|m| m.starts_with(start.as_str()))
                .count(),
            1,
            "{start} in {messages:#?}"
        );
    }
    // A row that did not decode is kept as it was, to be fixed and driven
    // again; one that decoded but cannot be tallied names its input event.
    for record in &report.errors {
        match record.stage.as_ref() {
            "flights" => assert!(
                record
                    .input
                    .as_deref()
                    .is_some_and(|row| row.starts_with("\"2013,1,1,54")),
                "{record:?}"
            ),
            stage => assert!(stage == "parsed" && record.input_id.is_some(), "{record:?}"),
        }
    }
    // Every tallied flight is in the table: UA 2 (one diverted), EV 2 (one
    // cancelled), ZZ 1.
    let flights_in_table: u64 = table.iter().map(|row| row.flights).sum();
    assert_eq!(flights_in_table, tallied);
    let row = |code: &str| table.iter().find(|row| row.carrier == code).unwrap();
    assert_eq!((row("EV").flights, row("EV").cancelled), (2, 1));
    assert_eq!(row("ZZ").airline, "(unknown carrier ZZ)");
    assert_eq!((row("UA").flights, row("UA").diverted), (2, 1));
    assert_eq!(
        row("UA").mean_dep_delay,
        -1.0,
        "the diverted flight's delay counts"
    );
    // The CSV file has a header and one line per carrier.
    let written = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    assert_eq!(written.lines().count(), 1 + table.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_csv_file_with_only_a_header_has_nothing_to_tally() {
    let dir = scratch("header_only");
    let path = dir.join("flights.csv");
    std::fs::write(&path, format!("{HEADER}\n")).unwrap();
    let (outcome, table) = run(&dir, path.clone()).await;
    let report = outcome.unwrap();
    assert_eq!(report.stage("flights").unwrap().events_out, 0);
    assert!(report.errors.is_empty());
    assert!(table.is_empty());
}

/// Runs the flow on `path` and returns the error it failed with.
async fn failure(dir: &std::path::Path, path: PathBuf) -> String {
    let (outcome, table) = run(dir, path).await;
    let error = outcome.unwrap_err();
    let FlowError::StageFailed { stage, report, .. } = &error else {
        panic!("{error}")
    };
    assert_eq!(stage, "flights");
    assert_eq!(report.stage("flights").unwrap().events_out, 0);
    assert!(table.is_empty());
    error.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_fails_the_flow_naming_it() {
    let dir = scratch("empty");
    let plain = dir.join("flights.csv");
    std::fs::write(&plain, "").unwrap();
    assert_eq!(
        failure(&dir, plain.clone()).await,
        format!(
            "stage `flights` failed: {} is empty: it has no header line",
            plain.display()
        )
    );
    // Gzipped nothing is empty too.
    let gzipped = dir.join("flights.csv.gz");
    gzip(&gzipped, "");
    assert_eq!(
        failure(&dir, gzipped.clone()).await,
        format!(
            "stage `flights` failed: {} is empty: it has no header line",
            gzipped.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_fails_the_flow_naming_it() {
    let dir = scratch("missing");
    let path = dir.join("no-such-file.csv.gz");
    let error = failure(&dir, path.clone()).await;
    assert!(
        error.starts_with(&format!(
            "stage `flights` failed: cannot open {}: ",
            path.display()
        )),
        "{error}"
    );
    // A missing airlines table fails its own stage, naming the file.
    let missing = dir.join("airlines.csv");
    let (table, _rows) = collect::<CarrierDelays>();
    let flights =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nycflights13/flights.csv.gz");
    let mut flow = flights::flow(
        memory(),
        flights::read_flights(flights, MAX_LINE_BYTES),
        csv::read(missing.clone()),
        csv::write(dir.join("out.csv")),
        table,
    );
    let error = flow.run().await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "stage `airlines` failed: cannot open {}: ",
            missing.display()
        )),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_named_gz_that_is_plain_is_read_and_a_missing_column_fails_naming_it() {
    let dir = scratch("garbled");
    // Gzip is told by content, not by name.
    let path = dir.join("flights.csv.gz");
    std::fs::write(
        &path,
        format!(
            "{HEADER}\n2013,1,1,517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,2013-01-01T10:00:00Z\n"
        ),
    )
    .unwrap();
    let (outcome, table) = run(&dir, path.clone()).await;
    assert_eq!(outcome.unwrap().stage("named").unwrap().events_out, 1);
    assert_eq!(table.len(), 1);
    // A header without a column the rows need fails at once, rows or not.
    let path = dir.join("flights.csv");
    std::fs::write(&path, "year,month,day,dep_time,dep_delay,arr_delay\n").unwrap();
    assert_eq!(
        failure(&dir, path.clone()).await,
        format!(
            "stage `flights` failed: {}: the header has no column `carrier`, which `FlightRow` needs (it has: year, month, day, dep_time, dep_delay, arr_delay)",
            path.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_leaves_the_output_file_as_it_was_and_says_so() {
    let (_dir, out, report, rows) = stopped_run("stopped", false).await;
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "the results of an earlier, complete run\n"
    );
    let said = flights::results(&report, &rows, &out, false);
    assert!(
        said.contains(&format!(
            "stopped before the end of the input: these are partial results, and {} was left as it was",
            out.display()
        )),
        "{said}"
    );
    assert!(!said.contains("written to"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_asked_to_write_partial_results_writes_them_and_says_so() {
    let (_dir, out, report, rows) = stopped_run("partial", true).await;
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.starts_with("carrier,airline,"), "{written}");
    assert_eq!(written.lines().count(), rows.len() + 1, "{written}");
    let said = flights::results(&report, &rows, &out, true);
    assert!(
        said.contains(&format!("were written to {}, as asked", out.display())),
        "{said}"
    );
}

/// Runs the flagship on the real data with `out` holding an earlier run's
/// results, and stops it once the join has seen some flights; checks what
/// every stopped run must show, and that no temporary file is left.
async fn stopped_run(
    test: &str,
    write_partial: bool,
) -> (PathBuf, PathBuf, FlowReport, Vec<CarrierDelays>) {
    let dir = scratch(test);
    let out = dir.join("out.csv");
    std::fs::write(&out, "the results of an earlier, complete run\n").unwrap();
    let flights =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nycflights13/flights.csv.gz");
    let (table, rows) = collect::<CarrierDelays>();
    let file = csv::write(out.clone()).write_partial(write_partial);
    let mut flow = flights::flow(
        memory(),
        flights::read_flights(flights, MAX_LINE_BYTES),
        carriers(),
        file,
        table,
    );
    flow.start().unwrap();
    // Stop once the join has seen some flights, long before the 336,776th.
    let mut state = flow.watch();
    while flow.report().stage("named").unwrap().events_out == 0 {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(5), state.changed()).await;
    }
    let report = flow
        .stop_graceful(std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(report.state, obzenflow::flow::FlowState::Stopped);
    assert!(report.stage("flights").unwrap().events_out < 336_776);
    // The tally emitted what it had: partial rows reached the sinks.
    assert!(!rows.snapshot().is_empty());
    assert!(report.stage("file").unwrap().events_in > 0);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["out.csv"], "no temporary file is left");
    let rows = rows.snapshot();
    (dir, out, report, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_run_replaces_the_output_file_at_the_end() {
    let dir = scratch("complete");
    let path = dir.join("flights.csv.gz");
    gzip(
        &path,
        &format!(
            "{HEADER}\n2013,1,1,517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,2013-01-01T10:00:00Z\n"
        ),
    );
    std::fs::write(dir.join("out.csv"), "stale\n").unwrap();
    let (outcome, rows) = run(&dir, path).await;
    let report = outcome.unwrap();
    let written = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    assert!(written.starts_with("carrier,airline,"), "{written}");
    assert!(written.contains("UA,United Air Lines Inc."), "{written}");
    let said = flights::results(&report, &rows, &dir.join("out.csv"), false);
    assert!(said.contains("written to"), "{said}");
}

/// The table of the well-known result: mean departure delay by carrier over
/// every flight with a recorded departure delay, computed here with the csv
/// crate straight from the bundled file, and four values as published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flagship_gives_the_known_mean_delays_by_carrier() {
    let dir = scratch("known");
    let flights =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nycflights13/flights.csv.gz");
    let mut reader = ::csv::Reader::from_reader(flate2::read::GzDecoder::new(
        std::fs::File::open(&flights).unwrap(),
    ));
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (carrier, delay) = (column("carrier"), column("dep_delay"));
    let mut sums: std::collections::HashMap<String, (f64, u64)> = Default::default();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        rows += 1;
        if let Ok(delay) = record[delay].parse::<f64>() {
            let entry = sums.entry(record[carrier].to_owned()).or_default();
            entry.0 += delay;
            entry.1 += 1;
        }
    }
    assert_eq!(rows, 336_776);
    let (outcome, table) = run(&dir, flights).await;
    let report = outcome.unwrap();
    assert!(
        report.errors.is_empty(),
        "{:?}",
        &report.errors[..3.min(report.errors.len())]
    );
    assert_eq!(report.stage("named").unwrap().events_out, 336_776);
    assert_eq!(table.len(), sums.len());
    for row in &table {
        let (sum, count) = sums[&row.carrier];
        let mean = sum / count as f64;
        assert!(
            (row.mean_dep_delay - mean).abs() < 1e-9,
            "{}: {} against {mean}",
            row.carrier,
            row.mean_dep_delay
        );
    }
    let rounded = |code: &str| {
        let row = table.iter().find(|row| row.carrier == code).unwrap();
        format!("{:.2}", row.mean_dep_delay)
    };
    assert_eq!(
        ["EV", "9E", "MQ", "UA"].map(rounded),
        ["19.96", "16.73", "10.55", "12.11"]
    );
    assert_eq!(table.iter().map(|row| row.diverted).sum::<u64>(), 1_175);
    assert_eq!(table.iter().map(|row| row.cancelled).sum::<u64>(), 8_255);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_is_not_utf8_goes_to_the_error_lane_with_its_bytes_escaped() {
    let dir = scratch("not_utf8");
    let path = dir.join("flights.csv");
    let mut text = format!(
        "{HEADER}\n2013,1,1,517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,2013-01-01T10:00:00Z\n"
    )
    .into_bytes();
    text.extend_from_slice(
        b"2013,1,1,557,600,-3,709,723,-14,E\xffV,5708,N829AS,LGA,IAD,53,229,6,0,2013-01-01T11:00:00Z\r\n",
    );
    std::fs::write(&path, text).unwrap();
    let (outcome, table) = run(&dir, path.clone()).await;
    let report = outcome.unwrap();
    assert_eq!(report.stage("named").unwrap().events_out, 1);
    assert_eq!(table.len(), 1);
    let [record] = report.errors.as_slice() else {
        panic!("{:?}", report.errors);
    };
    assert_eq!(
        record.message,
        format!(
            "{} line 3: column `carrier`: not UTF-8 (from byte 1): `E\\xffV`: `2013,1,1,557,600,-3,709,723,-14,E\\xffV,5708,N829AS,LGA,IAD,53,229,6,0,2013-01-01T11:00:00Z`",
            path.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_longer_than_the_cap_fails_the_source_naming_it_with_bounded_memory() {
    let dir = scratch("too_long");
    let path = dir.join("flights.csv");
    // A second line of 64 KiB without a newline, like a file of zeros.
    let mut text = format!("{HEADER}\n").into_bytes();
    text.extend(std::iter::repeat_n(b'0', 64 << 10));
    std::fs::write(&path, text).unwrap();
    let (table, _rows) = collect::<CarrierDelays>();
    let mut flow = flights::flow(
        memory(),
        flights::read_flights(path.clone(), 4 << 10),
        carriers(),
        csv::write(dir.join("out.csv")),
        table,
    );
    let error = flow.run().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "stage `flights` failed: {} line 2 is longer than 4096 bytes, the most a line may hold",
            path.display()
        )
    );
}
