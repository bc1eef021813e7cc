//! The library's file sources and sinks through `flow!`: typed CSV rows with
//! missing values, bad rows in the error lane with their line and text,
//! gzip told by content, missing and empty files, the atomic replacement of
//! an output file (a stopped or failed run leaves the old one), append mode,
//! JSON lines both ways, and the positions a source journals.

use obzenflow::event::{Body, Control, Envelope, SourcePosition};
use obzenflow::flow::{FlowError, FlowReport, FlowState};
use obzenflow::prelude::*;
use obzenflow::stage::{
    Emitter, Observer, StageError, Transform, collect, csv, from_iter, jsonl, try_map,
};
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("files")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gzip(path: &Path, text: &[u8]) {
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    encoder.write_all(text).unwrap();
    encoder.finish().unwrap();
}

/// One hour of weather at an airport, as the bundled file has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Weather {
    origin: String,
    month: u8,
    day: u8,
    hour: u8,
    wind_speed: Option<f64>,
    wind_gust: Option<f64>,
    precip: f64,
    time_hour: String,
}

/// The entries of a source's journal an observer saw: positions, in order.
#[derive(Clone, Default)]
struct Positions(Arc<Mutex<Vec<SourcePosition>>>);

impl<T> Observer<T> for Positions {
    fn observe(&mut self, entry: &Envelope<T>) {
        if let Body::Control(Control::Position(position)) = entry.body {
            self.0.lock().unwrap().push(position);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_weather_decodes_with_na_as_none_and_positions_are_journaled() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nycflights13/weather.csv.gz");
    let (sink, rows) = collect::<Weather>();
    let positions = Positions::default();
    let seen = positions.clone();
    let report = flow! {
        name: "weather",
        journals: memory(),
        stages: {
            weather = source!(Weather => csv::read(path.clone()).expected_rows(26_115));
            watch   = observer!(Weather => seen);
            out     = sink!(Weather => sink);
        },
        topology: { weather |> watch; weather |> out; }
    }
    .run()
    .await
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors.first());
    let rows = rows.snapshot();
    assert_eq!(rows.len(), 26_115);
    // The first row, as the file has it: no gust (`NA`).
    assert_eq!(
        rows[0],
        Weather {
            origin: "EWR".into(),
            month: 1,
            day: 1,
            hour: 1,
            wind_speed: Some(10.357019999999999),
            wind_gust: None,
            precip: 0.0,
            time_hour: "2013-01-01T06:00:00Z".into(),
        }
    );
    // Counted against `grep` on the file: 20,778 hours without a gust, 4
    // without a wind speed.
    assert_eq!(
        rows.iter().filter(|w| w.wind_gust.is_none()).count(),
        20_778
    );
    assert_eq!(rows.iter().filter(|w| w.wind_speed.is_none()).count(), 4);
    // A position after each batch of 1,024 rows, the last at the end of the
    // file (its decompressed size), lines counting the header.
    let positions = positions.0.lock().unwrap().clone();
    assert_eq!(positions.len(), 26_115usize.div_ceil(1024));
    assert_eq!(positions[0].records, 1024);
    assert_eq!(positions[0].line, 1025);
    let last = *positions.last().unwrap();
    assert_eq!((last.records, last.line), (26_115, 26_116));
    let plain = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/nycflights13/weather.csv"),
    );
    if let Ok(plain) = plain {
        assert_eq!(last.offset, plain.len() as u64);
    }
    assert!(positions.windows(2).all(|p| p[0].offset < p[1].offset));
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Reading {
    station: String,
    celsius: Option<f64>,
    ok: bool,
}

const READINGS: &str = "station,celsius,ok\n\
a,1.5,true\n\
b,NA,true\n\
c,warm,true\n\
d,,false\n\
e,2\n\
f,3,maybe\n\
g,4,true\n";

/// Runs `read |> out` over `source`, returning the outcome and the rows.
async fn read_csv(
    source: csv::CsvSource<Reading>,
) -> (Result<FlowReport, FlowError>, Vec<Reading>) {
    let (sink, rows) = collect::<Reading>();
    let outcome = flow! {
        name: "readings",
        journals: memory(),
        stages: {
            read = source!(Reading => source);
            out  = sink!(Reading => sink);
        },
        topology: { read |> out; }
    }
    .run()
    .await;
    (outcome, rows.snapshot())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_go_to_the_error_lane_with_line_text_and_reason_plain_or_gzipped() {
    let dir = scratch("bad_rows");
    let plain = dir.join("readings.csv");
    std::fs::write(&plain, READINGS).unwrap();
    let zipped = dir.join("readings.data");
    gzip(&zipped, READINGS.as_bytes());
    for path in [plain, zipped] {
        let (outcome, rows) = read_csv(csv::read(&path).expected_rows(7)).await;
        let report = outcome.unwrap();
        let stations: Vec<&str> = rows.iter().map(|r| r.station.as_str()).collect();
        assert_eq!(stations, ["a", "b", "d", "g"]);
        assert_eq!(rows[1].celsius, None, "NA");
        assert_eq!(rows[2].celsius, None, "empty");
        let file = path.display();
        let messages: Vec<&str> = report.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                format!(
                    "{file} line 4: column `celsius`: `warm` is not a number: invalid float literal: `c,warm,true`"
                ),
                format!("{file} line 6: 2 fields where the header has 3: `e,2`"),
                format!(
                    "{file} line 7: column `ok`: `maybe` is not `true` or `false`: `f,3,maybe`"
                ),
            ]
        );
        // Each keeps the row as it was, to be fixed and driven again.
        let inputs: Vec<&str> = report
            .errors
            .iter()
            .filter_map(|e| e.input.as_deref())
            .collect();
        assert_eq!(inputs, [r#""c,warm,true""#, r#""e,2""#, r#""f,3,maybe""#]);
        assert!(report.errors.iter().all(|e| e.stage.as_ref() == "read"));
        let read = report.stage("read").unwrap();
        assert_eq!((read.events_out, read.errors), (4, 3), "nothing lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_row_count_is_held_counting_the_error_lane() {
    let dir = scratch("declared");
    let path = dir.join("readings.csv");
    std::fs::write(&path, READINGS).unwrap();
    let (outcome, _) = read_csv(csv::read(&path).expected_rows(8)).await;
    let error = outcome.unwrap_err().to_string();
    assert!(
        error.contains("declared 8") || error.contains('8'),
        "{error}"
    );
    assert!(error.contains("`read`"), "{error}");
}

/// The error a flow reading `source` failed with.
async fn failed(source: csv::CsvSource<Reading>) -> String {
    let (outcome, rows) = read_csv(source).await;
    assert!(rows.is_empty());
    match outcome {
        Err(error @ FlowError::StageFailed { .. }) => error.to_string(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_empty_files_and_absent_columns_fail_the_stage_naming_them() {
    let dir = scratch("failures");
    let missing = dir.join("nothing-here.csv");
    let error = failed(csv::read(&missing)).await;
    assert!(
        error.starts_with(&format!(
            "stage `read` failed: cannot open {}: No such file",
            missing.display()
        )),
        "{error}"
    );
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(
        failed(csv::read(&empty)).await,
        format!(
            "stage `read` failed: {} is empty: it has no header line",
            empty.display()
        )
    );
    let zipped_empty = dir.join("empty.csv.gz");
    gzip(&zipped_empty, b"");
    assert!(
        failed(csv::read(&zipped_empty))
            .await
            .ends_with("is empty: it has no header line")
    );
    // An absent column fails at once, even an `Option` one, rows or not.
    let absent = dir.join("absent.csv");
    std::fs::write(&absent, "station,ok\n").unwrap();
    assert_eq!(
        failed(csv::read(&absent)).await,
        format!(
            "stage `read` failed: {}: the header has no column `celsius`, which `Reading` needs (it has: station, ok)",
            absent.display()
        )
    );
    // Another delimiter and other missing markers.
    let tabs = dir.join("readings.tsv");
    std::fs::write(&tabs, "station\tcelsius\tok\na\t-\ttrue\nb\t1\ttrue\n").unwrap();
    let (outcome, rows) = read_csv(csv::read(&tabs).delimiter(b'\t').missing(["-"])).await;
    outcome.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.celsius).collect::<Vec<_>>(),
        [None, Some(1.0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_written_by_one_flow_are_read_back_by_another() {
    let dir = scratch("jsonl");
    let path = dir.join("readings.jsonl");
    let written: Vec<Reading> = (0..2500)
        .map(|i| Reading {
            station: format!("s{}", i % 7),
            celsius: (i % 3 != 0).then_some(f64::from(i) / 4.0),
            ok: i % 2 == 0,
        })
        .collect();
    let items = written.clone();
    let report = flow! {
        name: "write",
        journals: memory(),
        stages: {
            readings = source!(Reading => from_iter(items));
            out      = sink!(Reading => jsonl::write(&path));
        },
        topology: { readings |> out; }
    }
    .run()
    .await
    .unwrap();
    assert_eq!(report.stage("out").unwrap().events_out, 2500);
    // A blank line is skipped; a line that is not a reading goes to the
    // error lane with its line.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n{\"station\": \"x\"}\n");
    std::fs::write(&path, text).unwrap();
    let (sink, rows) = collect::<Reading>();
    let report = flow! {
        name: "read",
        journals: memory(),
        stages: {
            read = source!(Reading => jsonl::read(&path));
            out  = sink!(Reading => sink);
        },
        topology: { read |> out; }
    }
    .run()
    .await
    .unwrap();
    assert_eq!(rows.snapshot(), written);
    let [error] = report.errors.as_slice() else {
        panic!("{:?}", report.errors)
    };
    assert!(
        error
            .message
            .starts_with(&format!("{} line 2502: missing field `ok`", path.display())),
        "{}",
        error.message
    );
    assert_eq!(error.input.as_deref(), Some(r#""{\"station\": \"x\"}""#));
}

/// Names each number, and fails the stage (fatally) at one.
struct FailAt(Option<u32>);

impl Transform<u32, (u32, String)> for FailAt {
    async fn process(
        &mut self,
        n: u32,
        out: &mut Emitter<(u32, String)>,
    ) -> Result<(), StageError> {
        if Some(n) == self.0 {
            return Err(StageError::fatal(format!("{n} is the end of the world")));
        }
        out.emit((n, format!("n{n}")));
        Ok(())
    }
}

/// A flow that writes `count` numbers to `out` (CSV and JSON lines) through
/// a transform that fails fatally on `fail_at`, if given.
fn numbers_flow(
    count: u32,
    fail_at: Option<u32>,
    csv_out: csv::CsvSink,
    json_out: jsonl::JsonlSink,
) -> FlowHandle {
    flow! {
        name: "numbers",
        journals: memory(),
        stages: {
            numbers = source!(u32 => from_iter(0..count));
            checked = transform!(u32 -> (u32, String) => FailAt(fail_at));
            table   = sink!((u32, String) => csv_out);
            lines   = sink!((u32, String) => json_out);
        },
        topology: { numbers |> checked |> (table, lines); }
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_file_is_replaced_only_when_the_input_ends() {
    let dir = scratch("atomic");
    let (table, lines) = (dir.join("out.csv"), dir.join("out.jsonl"));
    for path in [&table, &lines] {
        std::fs::write(path, "an earlier run's output\n").unwrap();
    }
    // A failed run leaves both as they were, and no temporary file.
    let error = numbers_flow(5000, Some(3000), csv::write(&table), jsonl::write(&lines))
        .run()
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("3000 is the end of the world"),
        "{error}"
    );
    for path in [&table, &lines] {
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            "an earlier run's output\n"
        );
    }
    assert_eq!(files_in(&dir), ["out.csv", "out.jsonl"]);

    // A stopped run too, unless asked to write its partial output.
    let (sender, receiver) = tokio::sync::mpsc::channel::<u32>(16);
    let mut flow = flow! {
        name: "stopped",
        journals: memory(),
        stages: {
            numbers = source!(u32 => obzenflow::stage::from_receiver(receiver));
            table   = sink!(u32 => csv::write(&table));
            lines   = sink!(u32 => jsonl::write(&lines).write_partial(true));
        },
        topology: { numbers |> (table, lines); }
    };
    flow.start().unwrap();
    for n in 0..10 {
        sender.send(n).await.unwrap();
    }
    let mut state = flow.watch();
    // Polled: the counters change without a state change to wait for.
    while flow.report().stage("lines").unwrap().events_out < 10 {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(5), state.changed()).await;
    }
    let report = flow
        .stop_graceful(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(report.state, FlowState::Stopped);
    assert_eq!(
        std::fs::read_to_string(&table).unwrap(),
        "an earlier run's output\n"
    );
    let partial = std::fs::read_to_string(&lines).unwrap();
    assert_eq!(
        partial.lines().collect::<Vec<_>>(),
        (0..10).map(|n| n.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(files_in(&dir), ["out.csv", "out.jsonl"]);

    // A complete run replaces both.
    numbers_flow(3, None, csv::write(&table), jsonl::write(&lines))
        .run()
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&table).unwrap(),
        "0,n0\n1,n1\n2,n2\n"
    );
    assert_eq!(
        std::fs::read_to_string(&lines).unwrap(),
        "[0,\"n0\"]\n[1,\"n1\"]\n[2,\"n2\"]\n"
    );
    // With no rows at all, the target is replaced by an empty file.
    numbers_flow(0, None, csv::write(&table), jsonl::write(&lines))
        .run()
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&table).unwrap(), "");
    assert_eq!(files_in(&dir), ["out.csv", "out.jsonl"]);
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_removes_the_temporary_files_killed_runs_left_beside_its_outputs() {
    let dir = scratch("stale");
    let (table, lines) = (dir.join("out.csv"), dir.join("out.jsonl"));
    // What a SIGKILLed run leaves: its process is gone (4194305 is above
    // Linux's largest process id). Process 1 runs, and the third file is
    // beside another target: both stay.
    let left = [
        ".out.csv.4194305.tmp",
        ".out.jsonl.4194305.tmp",
        ".out.csv.1.tmp",
        ".other.csv.4194305.tmp",
    ];
    for name in left {
        std::fs::write(dir.join(name), "half a run").unwrap();
    }
    numbers_flow(3, None, csv::write(&table), jsonl::write(&lines))
        .run()
        .await
        .unwrap();
    assert_eq!(
        files_in(&dir),
        [
            ".other.csv.4194305.tmp",
            ".out.csv.1.tmp",
            "out.csv",
            "out.jsonl"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_mode_adds_rows_with_one_header() {
    let dir = scratch("append");
    let path = dir.join("readings.csv");
    for batch in 0..3u32 {
        let items: Vec<Reading> = (0..2)
            .map(|i| Reading {
                station: format!("r{batch}.{i}"),
                celsius: None,
                ok: true,
            })
            .collect();
        flow! {
            name: "append",
            journals: memory(),
            stages: {
                readings = source!(Reading => from_iter(items));
                out      = sink!(Reading => csv::write(&path).append());
            },
            topology: { readings |> out; }
        }
        .run()
        .await
        .unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("station,")).count(),
        1
    );
    let (outcome, rows) = read_csv(csv::read(&path)).await;
    outcome.unwrap();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[5].station, "r2.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_lane_written_as_json_lines_is_read_back_and_driven_again() {
    let dir = scratch("dead_letters");
    let path = dir.join("readings.csv");
    std::fs::write(&path, READINGS).unwrap();
    let (outcome, rows) = read_csv(csv::read(&path)).await;
    let report = outcome.unwrap();
    assert_eq!(rows.len(), 4);
    let dead = dir.join("errors.jsonl");
    assert_eq!(report.write_error_lane(&dead).unwrap(), 3);

    // A flow that reads the dead letters, mends the rows it can (an
    // unknown temperature becomes missing, a short row is padded) and
    // decodes them again.
    use obzenflow::event::ErrorRecord;
    let (sink, mended) = collect::<Reading>();
    let report = flow! {
        name: "redrive",
        journals: memory(),
        stages: {
            dead   = source!(ErrorRecord => jsonl::read(&dead));
            mended = transform!(ErrorRecord -> Reading => try_map(|record: ErrorRecord| {
                let row: String = serde_json::from_str(record.input.as_deref().unwrap_or("null"))?;
                let mut fields: Vec<&str> = row.split(',').collect();
                fields.resize(3, "true");
                let celsius = fields[1].parse::<f64>().ok();
                let ok = fields[2] == "true";
                Ok::<_, serde_json::Error>(Reading { station: fields[0].to_owned(), celsius, ok })
            }));
            out    = sink!(Reading => sink);
        },
        topology: { dead |> mended |> out; }
    }
    .run()
    .await
    .unwrap();
    assert!(report.errors.is_empty());
    let mended = mended.snapshot();
    let stations: Vec<&str> = mended.iter().map(|r| r.station.as_str()).collect();
    assert_eq!(stations, ["c", "e", "f"]);
    assert_eq!((mended[0].celsius, mended[1].celsius), (None, Some(2.0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_runs_error_lane_gets_the_inputs_its_stages_did_not_keep() {
    let base = scratch("error_inputs");
    let items: Vec<Reading> = ["1.5", "warm", "2", "hot"]
        .iter()
        .enumerate()
        .map(|(i, celsius)| Reading {
            station: (*celsius).to_owned(),
            celsius: None,
            ok: i % 2 == 0,
        })
        .collect();
    let (sink, _rows) = collect::<f64>();
    let mut flow = flow! {
        name: "inputs",
        journals: obzenflow::flow::journals::disk(base.clone()),
        stages: {
            readings = source!(Reading => from_iter(items));
            parsed   = transform!(Reading -> f64 => try_map(|r: Reading| r.station.parse::<f64>()));
            out      = sink!(f64 => sink);
        },
        topology: { readings |> parsed |> out; }
    };
    let report = flow.run().await.unwrap();
    assert_eq!(report.errors.len(), 2);
    assert!(
        report.errors.iter().all(|e| e.input.is_none()),
        "the transform kept no copy"
    );
    let records = flow.error_lane(&report).unwrap();
    let inputs: Vec<Reading> = records
        .iter()
        .map(|record| serde_json::from_str(record.input.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(
        inputs
            .iter()
            .map(|r| r.station.as_str())
            .collect::<Vec<_>>(),
        ["warm", "hot"]
    );
    assert_eq!((inputs[0].ok, inputs[1].ok), (false, false));
    // Written as dead letters, they read back as they were.
    let dead = base.join("dead.jsonl");
    obzenflow::flow::FlowReport {
        errors: records.clone(),
        ..report.clone()
    }
    .write_error_lane(&dead)
    .unwrap();
    let text = std::fs::read_to_string(&dead).unwrap();
    let back: Vec<obzenflow::event::ErrorRecord> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(back, records);
}

/// Reads `source` to its end through the `Source` API: each batch with the
/// position journaled after it.
async fn batches<T: obzenflow::event::Payload, S: obzenflow::stage::Source<T>>(
    source: &mut S,
) -> Vec<(Vec<T>, SourcePosition)> {
    let mut out = Vec::new();
    loop {
        match source.next().await.unwrap() {
            obzenflow::stage::Poll::Events(rows) => out.push((rows, source.position().unwrap())),
            obzenflow::stage::Poll::End => return out,
        }
    }
}

/// A resumed CSV source continues at the byte it had read to, in a
/// gzipped file and in a plain one, giving the rows (with their line
/// numbers) an uninterrupted read gives from there; a file that changed
/// since is refused, naming it.
#[tokio::test]
async fn csv_and_json_lines_sources_seek_to_where_they_stopped() {
    use obzenflow::stage::Source;
    let dir = scratch("seek");
    let bundled =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nycflights13/weather.csv.gz");
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(&bundled).unwrap()),
        &mut text,
    )
    .unwrap();
    let plain = dir.join("weather.csv");
    std::fs::write(&plain, &text).unwrap();
    for path in [bundled.clone(), plain.clone()] {
        let whole = batches(&mut csv::read::<Weather>(&path).numbered()).await;
        assert!(whole.len() > 20);
        for cut in [1, 7, whole.len() - 1] {
            let position = whole[cut - 1].1;
            let mut resumed = csv::read::<Weather>(&path).numbered();
            resumed.seek(position).unwrap();
            let rest = batches(&mut resumed).await;
            let expected: Vec<_> = whole[cut..]
                .iter()
                .flat_map(|(rows, _)| rows.clone())
                .collect();
            let got: Vec<_> = rest.iter().flat_map(|(rows, _)| rows.clone()).collect();
            assert_eq!(got.len(), expected.len(), "{}", path.display());
            assert!(
                got == expected,
                "{}: rows or lines differ after {cut} batches",
                path.display()
            );
            assert_eq!(rest.last().map(|b| b.1), whole.last().map(|b| b.1));
        }
    }
    // Changed since: a byte inserted before the position.
    let whole = batches(&mut csv::read::<Weather>(&plain)).await;
    let mut changed = text.clone();
    changed.insert(500, b'x');
    std::fs::write(&plain, &changed).unwrap();
    let error = csv::read::<Weather>(&plain).seek(whole[3].1).unwrap_err();
    assert!(
        error
            .message()
            .contains("changed since the interrupted run"),
        "{error}"
    );
    assert!(error.message().contains("weather.csv"), "{error}");
    // JSON lines, the same way.
    let lines: String = (0..5_000).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    let path = dir.join("numbers.jsonl.gz");
    gzip(&path, lines.as_bytes());
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct N {
        n: u32,
    }
    let whole = batches(&mut jsonl::read::<N>(&path)).await;
    let mut resumed = jsonl::read::<N>(&path);
    resumed.seek(whole[2].1).unwrap();
    let rest = batches(&mut resumed).await;
    let first = rest[0].0[0].clone();
    assert_eq!(first, whole[3].0[0]);
    assert_eq!(rest.last().map(|b| b.1), whole.last().map(|b| b.1));
}
