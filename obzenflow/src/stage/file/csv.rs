//! CSV files in and out (feature `files`): [`read`] decodes each row into
//! your type by its header's column names, [`write()`] writes your type's
//! fields as columns and replaces the target file only when its input ends.
//!
//! ```no_run
//! use obzenflow::prelude::*;
//! use obzenflow::stage::{csv, filter};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! struct Weather {
//!     origin: String,
//!     time_hour: String,
//!     wind_speed: Option<f64>, // `NA` in the file is `None`
//! }
//!
//! # async fn run() {
//! let report = flow! {
//!     name: "wind",
//!     journals: memory(),
//!     stages: {
//!         weather = source!(Weather => csv::read("data/weather.csv.gz"));
//!         calm    = transform!(Weather -> Weather => filter(|w: &Weather| w.wind_speed == Some(0.0)));
//!         out     = sink!(Weather => csv::write("target/calm.csv"));
//!     },
//!     topology: { weather |> calm |> out; }
//! }
//! .run()
//! .await;
//! # }
//! ```

use super::decode::{DecodeError, Row};
use super::{
    BATCH, MAX_LINE_BYTES, OutputFile, bad_row, cannot, line_too_long, open, shown, too_long,
};
use crate::event::{Payload, Receipt, SourcePosition};
use crate::stage::{DrainReason, Poll, Sink, Source, StageError};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// A source of the rows of a CSV file, each decoded into a `T`. See [`read`].
pub struct CsvSource<T> {
    path: PathBuf,
    delimiter: u8,
    missing: Vec<Vec<u8>>,
    max_line_bytes: usize,
    expected: Option<u64>,
    reader: Option<::csv::Reader<Box<dyn std::io::Read + Send>>>,
    header: Vec<String>,
    record: ::csv::ByteRecord,
    /// Whether the header holds every field `T` names.
    checked: bool,
    /// A bad row found after a batch's good ones: given at the next poll,
    /// with the position after it (the batch's own stops before it).
    failed: Option<(StageError, SourcePosition)>,
    position: SourcePosition,
    /// Where its reader started in the file, for a resumed source (its
    /// reader counts lines and bytes from there).
    base: (u64, u64),
    ended: bool,
    _rows: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for CsvSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSource")
            .field("path", &self.path)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// A source that reads the CSV file at `path` once the flow starts and
/// decodes each row after the header into a `T` by column name (a column
/// the type does not name is skipped).
///
/// - The file may be gzipped: that is told by its content, not its name.
/// - A field that is a missing-value marker (`NA` or empty, by default; see
///   [`missing`](CsvSource::missing)) decodes as `None` for an `Option`
///   field; for any other field it is an error, that says so.
/// - A row that does not decode (a field that does not parse, too few or
///   too many fields, bytes that are not UTF-8) goes to the error lane with
///   the file, its line number, the reason and its text, and the source
///   goes on.
/// - A missing or empty file, a header without a column the type needs,
///   and a line longer than [`max_line_bytes`](CsvSource::max_line_bytes)
///   fail the stage, naming the file (and the column).
/// - After each batch it journals its [`SourcePosition`]: rows, lines and
///   bytes read.
pub fn read<T>(path: impl Into<PathBuf>) -> CsvSource<T> {
    CsvSource {
        path: path.into(),
        delimiter: b',',
        missing: vec![b"NA".to_vec(), Vec::new()],
        max_line_bytes: MAX_LINE_BYTES,
        expected: None,
        reader: None,
        header: Vec::new(),
        record: ::csv::ByteRecord::new(),
        checked: false,
        failed: None,
        position: SourcePosition::default(),
        base: (0, 0),
        ended: false,
        _rows: PhantomData,
    }
}

impl<T> CsvSource<T> {
    /// The field delimiter (`,` by default; `b'\t'` for TSV, `b';'`...).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// The texts that mean "no value" (`NA` and the empty field by default).
    pub fn missing<S: AsRef<[u8]>>(mut self, markers: impl IntoIterator<Item = S>) -> Self {
        self.missing = markers.into_iter().map(|m| m.as_ref().to_vec()).collect();
        self
    }

    /// The longest line it reads (4 MiB by default); a longer one fails the
    /// source, naming the line, so that a file without newlines cannot
    /// exhaust memory.
    pub fn max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes.max(1);
        self
    }

    /// Declares how many rows the file holds (after its header), for the
    /// runner's progress bar. The flow holds the source to it: a different
    /// count fails the flow when it ends (rows that went to the error lane
    /// count). A file's rows are not known until it is read, so nothing is
    /// declared by default.
    pub fn expected_rows(mut self, rows: u64) -> Self {
        self.expected = Some(rows);
        self
    }

    /// The file it reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reader(
        &self,
        input: Box<dyn std::io::Read + Send>,
    ) -> ::csv::Reader<Box<dyn std::io::Read + Send>> {
        ::csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(64 << 10)
            .from_reader(input)
    }

    fn open(&mut self) -> Result<(), StageError> {
        let input = open(&self.path, self.max_line_bytes)?;
        let mut reader = self.reader(input);
        let mut header = ::csv::ByteRecord::new();
        let read = reader
            .read_byte_record(&mut header)
            .map_err(|e| self.read_failed(e, 1))?;
        if !read {
            return Err(StageError::fatal(format!(
                "{} is empty: it has no header line",
                self.path.display()
            )));
        }
        self.header = header
            .iter()
            .map(|name| std::str::from_utf8(name).map(|n| n.trim().to_owned()))
            .collect::<Result<_, _>>()
            .map_err(|_| {
                StageError::fatal(format!(
                    "{}: its header line is not UTF-8: `{}`",
                    self.path.display(),
                    shown(header.as_slice())
                ))
            })?;
        self.position.line = reader.position().line().saturating_sub(1);
        self.position.offset = reader.position().byte();
        self.reader = Some(reader);
        Ok(())
    }

    fn read_failed(&self, error: ::csv::Error, line: u64) -> StageError {
        let line = error.position().map_or(line, |p| self.base.0 + p.line());
        if let ::csv::ErrorKind::Io(io) = error.kind()
            && let Some(line) = line_too_long(io)
        {
            return too_long(&self.path, line, self.max_line_bytes);
        }
        StageError::fatal(format!(
            "cannot read {} line {line}: {error}",
            self.path.display()
        ))
    }

    /// The row just read as text, for a message.
    fn row_text(&self) -> String {
        let delimiter = [self.delimiter];
        let parts: Vec<String> = self.record.iter().map(shown).collect();
        parts.join(std::str::from_utf8(&delimiter).unwrap_or(","))
    }
}

impl<T: Payload> CsvSource<T> {
    /// Decodes the row just read.
    fn decode(&mut self, line: u64) -> Result<T, StageError> {
        if self.record.len() != self.header.len() {
            return Err(bad_row(
                &self.path,
                line,
                &format!(
                    "{} fields where the header has {}",
                    self.record.len(),
                    self.header.len()
                ),
                &self.row_text(),
            ));
        }
        // Checked as UTF-8 once, as a whole, and handed back for reuse.
        let fields = match ::csv::StringRecord::from_byte_record(std::mem::take(&mut self.record)) {
            Ok(fields) => fields,
            Err(error) => {
                let (field, valid_up_to) =
                    (error.utf8_error().field(), error.utf8_error().valid_up_to());
                self.record = error.into_byte_record();
                let column = self.header.get(field).map_or("?", String::as_str);
                let bytes = self.record.get(field).unwrap_or_default();
                return Err(bad_row(
                    &self.path,
                    line,
                    &format!(
                        "column `{column}`: not UTF-8 (from byte {valid_up_to}): `{}`",
                        bytes.escape_ascii()
                    ),
                    &self.row_text(),
                ));
            }
        };
        let decoded = T::deserialize(Row {
            header: &self.header,
            fields: &fields,
            missing: &self.missing,
            checked: &mut self.checked,
            probe: false,
        });
        self.record = fields.into_byte_record();
        decoded.map_err(|error| match error {
            DecodeError::MissingColumn(column) => self.missing_column(&column),
            DecodeError::Row(reason) => bad_row(&self.path, line, &reason, &self.row_text()),
            // invariant: only a probe stops so.
            DecodeError::Probed => StageError::fatal("a row was decoded as a probe"),
        })
    }

    /// Checks at once that the header holds every column `T` needs.
    fn probe(&mut self) -> Result<(), StageError> {
        let probed = T::deserialize(Row {
            header: &self.header,
            fields: &::csv::StringRecord::new(),
            missing: &self.missing,
            checked: &mut self.checked,
            probe: true,
        });
        match probed {
            Err(DecodeError::MissingColumn(column)) => Err(self.missing_column(&column)),
            _ => Ok(()),
        }
    }

    fn missing_column(&self, column: &str) -> StageError {
        StageError::fatal(format!(
            "{}: the header has no column `{column}`, which `{}` needs (it has: {})",
            self.path.display(),
            short_type_name::<T>(),
            self.header.join(", ")
        ))
    }
}

/// `T`'s name without its module path.
fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    let end = name.find('<').unwrap_or(name.len());
    name[..end].rsplit("::").next().unwrap_or(name)
}

impl<T: Payload> CsvSource<T> {
    /// Reads up to a batch of rows, each made into a `U` with its line.
    fn read_batch<U>(&mut self, mut wrap: impl FnMut(u64, T) -> U) -> Result<Poll<U>, StageError> {
        if let Some((error, after)) = self.failed.take() {
            self.position = after;
            return Err(error);
        }
        if self.ended {
            return Ok(Poll::End);
        }
        if self.reader.is_none() {
            self.open()?;
            self.probe()?;
        }
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            let Some(reader) = self.reader.as_mut() else {
                break;
            };
            let more = reader.read_byte_record(&mut self.record);
            let next = reader.position().clone();
            let more = more.map_err(|e| self.read_failed(e, self.position.line + 1))?;
            if !more {
                self.reader = None;
                self.ended = true;
                break;
            }
            // The line the row starts on; the position is past its end.
            let (base_line, base_offset) = self.base;
            let line = self
                .record
                .position()
                .map_or(self.position.line + 1, |p| base_line + p.line());
            let before = self.position;
            self.position = SourcePosition {
                records: self.position.records + 1,
                line: base_line + next.line().saturating_sub(1),
                offset: base_offset + next.byte(),
            };
            match self.decode(line) {
                Ok(row) => batch.push(wrap(line, row)),
                Err(error) if batch.is_empty() => return Err(error),
                Err(error) => {
                    self.failed = Some((error, self.position));
                    self.position = before;
                    break;
                }
            }
        }
        Ok(if batch.is_empty() {
            Poll::End
        } else {
            Poll::Events(batch)
        })
    }

    /// Continues at `position`: the header is read and checked as at any
    /// start, then the file is read from `position`'s byte (seeked to, or
    /// decompressed up to, without parsing what comes before).
    fn seek_to(&mut self, position: SourcePosition) -> Result<(), StageError> {
        self.open()?;
        self.probe()?;
        if position.offset <= self.position.offset {
            // Nothing but the header was read.
            return super::check_seek(&self.path, self.position, position);
        }
        let input = super::open_at(
            &self.path,
            self.max_line_bytes,
            position.offset,
            position.line,
        )?;
        self.reader = Some(self.reader(input));
        self.base = (position.line, position.offset);
        self.position = position;
        Ok(())
    }

    /// The same source, giving each row with the line it starts on, so
    /// that a later stage can name the line in its errors too.
    pub fn numbered(self) -> NumberedCsvSource<T> {
        NumberedCsvSource(self)
    }
}

impl<T: 'static> Source<T> for CsvSource<T> {
    async fn next(&mut self) -> Result<Poll<T>, StageError>
    where
        T: Payload,
    {
        self.read_batch(|_, row| row)
    }

    fn expected_count(&self) -> Option<u64> {
        self.expected
    }

    fn position(&self) -> Option<SourcePosition> {
        Some(self.position)
    }

    fn seek(&mut self, position: SourcePosition) -> Result<(), StageError>
    where
        T: Payload,
    {
        self.seek_to(position)
    }
}

/// A row with the line of its file it starts on: what
/// [`CsvSource::numbered`] gives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Numbered<T> {
    /// The line (from 1, the header's) the row starts on.
    pub line: u64,
    /// The row.
    pub row: T,
}

/// A [`CsvSource`] that gives each row with its line. See
/// [`CsvSource::numbered`].
#[derive(Debug)]
pub struct NumberedCsvSource<T>(CsvSource<T>);

impl<T: Payload> Source<Numbered<T>> for NumberedCsvSource<T> {
    async fn next(&mut self) -> Result<Poll<Numbered<T>>, StageError> {
        self.0.read_batch(|line, row| Numbered { line, row })
    }

    fn expected_count(&self) -> Option<u64> {
        self.0.expected
    }

    fn position(&self) -> Option<SourcePosition> {
        Some(self.0.position)
    }

    fn seek(&mut self, position: SourcePosition) -> Result<(), StageError> {
        self.0.seek_to(position)
    }
}

/// A sink that writes each input as a CSV row. See [`write()`].
#[derive(Debug)]
pub struct CsvSink {
    file: OutputFile,
    delimiter: u8,
    writer: Option<::csv::Writer<Vec<u8>>>,
    rows: u64,
}

/// A sink that writes each input as a row of the CSV file at `path`, with a
/// header of its field names (from the first row).
///
/// The rows go to a temporary file beside the target (hidden, named after
/// it), which replaces the target atomically when the input ends: a run
/// that is stopped, fails or is cancelled leaves the target as it was
/// (unless [`write_partial`](CsvSink::write_partial) asks otherwise). A
/// run with no rows leaves an empty file. [`append`](CsvSink::append)
/// writes to the target as it goes instead.
pub fn write(path: impl Into<PathBuf>) -> CsvSink {
    CsvSink {
        file: OutputFile::new(path.into()),
        delimiter: b',',
        writer: None,
        rows: 0,
    }
}

impl CsvSink {
    /// Whether a stopped run replaces the target with its partial rows (by
    /// default it leaves the target as it was).
    pub fn write_partial(mut self, partial: bool) -> Self {
        self.file.write_partial(partial);
        self
    }

    /// Appends to the target as rows arrive, flushed after each batch,
    /// instead of replacing it at the end; the header is written only if
    /// the file was empty.
    pub fn append(mut self) -> Self {
        self.file.append();
        self
    }

    /// The field delimiter (`,` by default).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Writes what the CSV writer holds to the file (the next writer
    /// writes no header: the first one did, if one was due).
    fn pass_on(&mut self) -> Result<(), StageError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let bytes = writer.into_inner().map_err(|error| {
            StageError::fatal(format!(
                "cannot write to {}: {}",
                self.file.path.display(),
                error.error()
            ))
        })?;
        self.writer = Some(self.csv_writer(false, bytes.capacity()));
        if !bytes.is_empty() {
            use std::io::Write as _;
            let path = self.file.path.clone();
            self.file
                .writer()?
                .write_all(&bytes)
                .map_err(|e| cannot("write", &path, e))?;
        }
        Ok(())
    }

    fn csv_writer(&self, header: bool, capacity: usize) -> ::csv::Writer<Vec<u8>> {
        ::csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(header)
            .from_writer(Vec::with_capacity(capacity))
    }
}

impl<T> Sink<T> for CsvSink {
    async fn consume(&mut self, row: T) -> Result<Receipt, StageError>
    where
        T: Payload,
    {
        if self.writer.is_none() {
            // Opened first, so that in append mode it is known whether the
            // file already has a header.
            self.file.writer()?;
            let header = !self.file.appending_to_content;
            self.writer = Some(self.csv_writer(header, 64 << 10));
        }
        let Some(writer) = self.writer.as_mut() else {
            // invariant: set just above.
            return Err(StageError::fatal("the CSV writer is not open"));
        };
        writer.serialize(&row).map_err(|error| {
            StageError::fatal(format!(
                "cannot write a row to {}: {error}",
                self.file.path.display()
            ))
        })?;
        self.rows += 1;
        if self.rows.is_multiple_of(512) {
            self.pass_on()?;
        }
        Ok(Receipt::with_detail(format!("row {}", self.rows)))
    }

    async fn flush(&mut self) -> Result<(), StageError> {
        if self.file.mode == super::Mode::Append {
            self.pass_on()?;
        }
        self.file.flush()
    }

    fn delivery(&self) -> crate::stage::Delivery {
        self.file.delivery()
    }

    async fn drain(&mut self, reason: DrainReason) -> Result<(), StageError> {
        self.pass_on()?;
        self.writer = None;
        self.file.finish(reason)
    }
}
