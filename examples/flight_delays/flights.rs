//! The flagship flow and its parts, shared by the example's `main`, the
//! tests of its handling of bad input (`tests/flagship.rs`) and its benchmark
//! (`benches/flagship.rs`).

use flate2::read::GzDecoder;
use obzenflow::flow;
use obzenflow::flow::journals::Journals;
use obzenflow::stage::{
    CollectSink, DrainReason, Poll, Receipt, Sink, Source, StageError, from_iter, group_by,
    left_join, map, try_map,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::{Path, PathBuf};

/// One line of the flights file, as read, with where its header put the
/// columns the tally needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Line {
    pub(crate) number: u64,
    pub(crate) text: String,
    pub(crate) columns: Columns,
    /// For a line that is not UTF-8: where its encoding breaks (its text
    /// is then its bytes, escaped).
    pub(crate) bad_encoding: Option<usize>,
}

/// Where the fields the tally needs sit in a line.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Columns {
    dep_time: usize,
    dep_delay: usize,
    arr_delay: usize,
    carrier: usize,
    count: usize,
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

/// A source of the lines of a CSV file (gzipped if its name ends in `.gz`),
/// after its header; the header must name the columns the tally needs.
pub(crate) struct CsvLines {
    path: PathBuf,
    reader: Option<(Box<dyn BufRead + Send>, Columns)>,
    number: u64,
    max_line_bytes: usize,
    buffer: Vec<u8>,
    /// The whole file has been read (and closed).
    ended: bool,
}

/// The longest line read by default: far longer than any real row, short
/// enough that a file without newlines cannot exhaust memory.
pub(crate) const MAX_LINE_BYTES: usize = 4 << 20;

/// What one capped read of a line found.
enum LineRead {
    Line,
    End,
    TooLong,
}

/// Reads the next line (without its `\n` or `\r\n`) into `line`, holding
/// at most `cap` bytes of it.
fn read_line_capped(
    reader: &mut dyn BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<LineRead> {
    line.clear();
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(if line.is_empty() {
                LineRead::End
            } else {
                LineRead::Line
            });
        }
        let (taken, ended) = match available.iter().position(|&byte| byte == b'\n') {
            Some(end) => (end, true),
            None => (available.len(), false),
        };
        if line.len() + taken > cap {
            return Ok(LineRead::TooLong);
        }
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken + usize::from(ended));
        if ended {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(LineRead::Line);
        }
    }
}

impl CsvLines {
    /// Reads `path` once the flow starts.
    pub(crate) fn new(path: PathBuf) -> Self {
        CsvLines {
            path,
            reader: None,
            number: 0,
            max_line_bytes: MAX_LINE_BYTES,
            buffer: Vec::new(),
            ended: false,
        }
    }

    /// The longest line it reads; a longer one fails the source, naming it.
    pub(crate) fn max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes.max(1);
        self
    }

    /// The next line as text, or `None` at the end. A line that is not
    /// UTF-8 comes back escaped, with where its encoding breaks.
    fn next_line(&mut self) -> Result<Option<(String, Option<usize>)>, StageError> {
        let Some((reader, _)) = self.reader.as_mut() else {
            return Ok(None);
        };
        let read = read_line_capped(reader.as_mut(), &mut self.buffer, self.max_line_bytes)
            .map_err(|e| {
                StageError::fatal(format!(
                    "cannot read {} line {}: {e}",
                    self.path.display(),
                    self.number + 1
                ))
            })?;
        match read {
            LineRead::End => Ok(None),
            LineRead::TooLong => Err(StageError::fatal(format!(
                "{} line {} is longer than {} bytes, the most a line may hold",
                self.path.display(),
                self.number + 1,
                self.max_line_bytes
            ))),
            LineRead::Line => {
                self.number += 1;
                Ok(Some(match std::str::from_utf8(&self.buffer) {
                    Ok(text) => (text.to_owned(), None),
                    Err(error) => (
                        self.buffer.escape_ascii().to_string(),
                        Some(error.valid_up_to()),
                    ),
                }))
            }
        }
    }

    fn open(&mut self) -> Result<(), StageError> {
        let file = File::open(&self.path)
            .map_err(|e| StageError::fatal(format!("cannot open {}: {e}", self.path.display())))?;
        let reader: Box<dyn BufRead + Send> = if self
            .path
            .extension()
            .is_some_and(|extension| extension == "gz")
        {
            Box::new(BufReader::new(GzDecoder::new(file)))
        } else {
            Box::new(BufReader::new(file))
        };
        self.reader = Some((reader, Columns::default()));
        let header = match self.next_line()? {
            Some((header, None)) => header,
            Some((_, Some(_))) => {
                return Err(StageError::fatal(format!(
                    "{}: its header line is not UTF-8",
                    self.path.display()
                )));
            }
            None => {
                return Err(StageError::fatal(format!(
                    "{} is empty: it has no header line",
                    self.path.display()
                )));
            }
        };
        let columns = columns(&header)
            .map_err(|e| StageError::fatal(format!("{}: {e}", self.path.display())))?;
        if let Some((_, known)) = self.reader.as_mut() {
            *known = columns;
        }
        Ok(())
    }
}

impl Source<Line> for CsvLines {
    async fn next(&mut self) -> Result<Poll<Line>, StageError> {
        if self.ended {
            return Ok(Poll::End);
        }
        if self.reader.is_none() {
            self.open()?;
        }
        let mut batch = Vec::with_capacity(1024);
        while batch.len() < 1024 {
            let Some((text, bad_encoding)) = self.next_line()? else {
                self.reader = None;
                self.ended = true;
                break;
            };
            let columns = self.reader.as_ref().map(|(_, c)| *c).unwrap_or_default();
            batch.push(Line {
                number: self.number,
                text,
                columns,
                bad_encoding,
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

pub(crate) fn columns(header: &str) -> Result<Columns, String> {
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

/// The largest departure delay (or earliness) taken as real: a week. The
/// data's own range is -43 to 1,301 minutes; a value past this is garbled.
pub(crate) const PLAUSIBLE_DELAY_MINUTES: f64 = 7.0 * 24.0 * 60.0;

pub(crate) fn parse(line: Line) -> Result<Flight, String> {
    let columns = line.columns;
    let fail = |reason: &str| format!("line {}: {reason}: `{}`", line.number, line.text);
    if let Some(offset) = line.bad_encoding {
        return Err(fail(&format!("not UTF-8 (from byte {offset})")));
    }
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
            let delay = dep_delay
                .parse::<f64>()
                .map_err(|e| fail(&format!("departure delay `{dep_delay}`: {e}")))?;
            if !delay.is_finite() {
                return Err(fail(&format!(
                    "departure delay `{dep_delay}` is not a finite number"
                )));
            }
            if delay.abs() > PLAUSIBLE_DELAY_MINUTES {
                return Err(fail(&format!(
                    "departure delay `{dep_delay}` is more than a week ({PLAUSIBLE_DELAY_MINUTES} minutes) early or late"
                )));
            }
            Some(delay)
        }
        _ => {
            return Err(fail(
                "departure time and departure delay disagree about whether it departed",
            ));
        }
    };
    Ok(Flight {
        carrier: carrier.to_owned(),
        diverted: dep_delay.is_some() && missing(arr_delay),
        dep_delay,
    })
}

pub(crate) fn airlines(path: &Path) -> Result<Vec<Airline>, String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    reader
        .deserialize::<Airline>()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| format!("{} row {}: {e}", path.display(), i + 2)))
        .collect()
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

/// Writes each row to a CSV file; the receipt says which line.
///
/// The rows go to a temporary file beside the target, which replaces the
/// target only when the sink drains at the end of its input: a stopped run
/// (or a replay) leaves the target as it was, unless asked to write partial
/// results ([`writing_partial`](Self::writing_partial)).
pub(crate) struct CsvFile {
    path: PathBuf,
    temporary: PathBuf,
    writer: Option<csv::Writer<BufWriter<File>>>,
    rows: u64,
    write_partial: bool,
}

impl CsvFile {
    /// Writes `path` when the input ends.
    pub(crate) fn new(path: PathBuf) -> Self {
        let mut name = path.file_name().unwrap_or_default().to_owned();
        name.push(format!(".{}.tmp", std::process::id()));
        CsvFile {
            temporary: path.with_file_name(name),
            path,
            writer: None,
            rows: 0,
            write_partial: false,
        }
    }

    /// Whether a stopped run writes its partial results (by default it
    /// leaves the target as it was).
    pub(crate) fn writing_partial(mut self, write_partial: bool) -> Self {
        self.write_partial = write_partial;
        self
    }
}

fn cannot(what: &str, path: &Path, error: std::io::Error) -> StageError {
    StageError::fatal(format!("cannot {what} {}: {error}", path.display())).with_source(error)
}

impl Sink<CarrierDelays> for CsvFile {
    async fn consume(&mut self, row: CarrierDelays) -> Result<Receipt, StageError> {
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => {
                if let Some(parent) = self.path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| cannot("create", parent, e))?;
                }
                let file = File::create(&self.temporary)
                    .map_err(|e| cannot("create", &self.temporary, e))?;
                self.writer
                    .insert(csv::Writer::from_writer(BufWriter::new(file)))
            }
        };
        writer.serialize(&row).map_err(StageError::fatal)?;
        self.rows += 1;
        Ok(Receipt::with_detail(format!(
            "{} row {}",
            self.path.display(),
            self.rows
        )))
    }

    async fn drain(&mut self, reason: DrainReason) -> Result<(), StageError> {
        let Some(mut writer) = self.writer.take() else {
            return Ok(());
        };
        let partial_asked = reason == DrainReason::Stopped && self.write_partial;
        if reason != DrainReason::EndOfInput && !partial_asked {
            // Partial results: the target keeps what it held.
            drop(writer);
            let _ = std::fs::remove_file(&self.temporary);
            return Ok(());
        }
        writer
            .flush()
            .map_err(|e| cannot("write", &self.temporary, e))?;
        writer
            .get_ref()
            .get_ref()
            .sync_all()
            .map_err(|e| cannot("sync", &self.temporary, e))?;
        drop(writer);
        std::fs::rename(&self.temporary, &self.path)
            .map_err(|e| cannot("replace", &self.path, e))?;
        Ok(())
    }
}

/// The flow: flights from `flights_path` (a CSV file, gzipped if it ends in
/// `.gz`) joined with `airlines`, tallied per carrier into `table` and the
/// CSV file `out`. (The program reads its flights through [`flow_from`];
/// its tests and its benchmark use this.)
#[allow(dead_code)]
pub(crate) fn flow(
    journals: Journals,
    flights_path: PathBuf,
    airlines: Vec<Airline>,
    out: CsvFile,
    table: CollectSink<CarrierDelays>,
) -> obzenflow::flow::FlowHandle {
    flow_from(journals, CsvLines::new(flights_path), airlines, out, table)
}

/// [`flow`], reading the flights through `source`.
pub(crate) fn flow_from(
    journals: Journals,
    source: CsvLines,
    airlines: Vec<Airline>,
    out: CsvFile,
    table: CollectSink<CarrierDelays>,
) -> obzenflow::flow::FlowHandle {
    flow! {
        name: "flight-delays",
        journals: journals,
        stages: {
            flights     = source!(Line => source);
            parsed      = transform!(Line -> Flight => try_map(parse));
            airlines    = source!(Airline => from_iter(airlines));
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
            ).emit_on_eof());
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
    let read = count("flights");
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
