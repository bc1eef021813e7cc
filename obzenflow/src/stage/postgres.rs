//! A PostgreSQL sink (feature `postgres`): each input becomes a row of a
//! table, inserted in batches, at most once per input of a run.
//!
//! ```no_run
//! use obzenflow::prelude::*;
//! use obzenflow::stage::{from_iter, postgres};
//!
//! # async fn run() {
//! flow! {
//!     name: "to-postgres",
//!     journals: memory(),
//!     stages: {
//!         readings = source!((String, f64) => from_iter([("a".to_owned(), 1.5)]));
//!         table    = sink!((String, f64) => postgres::insert(
//!             "host=127.0.0.1 user=postgres dbname=test",
//!             "readings",
//!             ["station", "celsius"],
//!             |r: &(String, f64)| (r.0.clone(), r.1),
//!         ).create_table("station TEXT NOT NULL, celsius DOUBLE PRECISION"));
//!     },
//!     topology: { readings |> table; }
//! }
//! .run()
//! .await
//! .unwrap();
//! # }
//! ```
//!
//! **Exactly once.** The sink keeps a key column of its own in the table,
//! `obzenflow_key` (added if missing, with a unique index), and writes each
//! input's [`DeliveryKey`] (the run and the input event) there with
//! `ON CONFLICT DO NOTHING`: a delivery repeated for the same input of the
//! same run (a batch delivered again after a crash, by a resumed run)
//! writes no second row. Another run writes its own rows. An input given
//! to [`Sink::consume`] directly, without a key, is written with no key:
//! at least once.
//!
//! **Batches.** Rows are buffered and written with multi-row `INSERT`s, in
//! one transaction, after each batch of inputs the stage takes (and when
//! the buffer holds [`batch_rows`](PgSink::batch_rows) rows). A write that
//! fails fails the stage, naming the table: the receipts of the rows it
//! held are not journaled, so nothing is counted delivered that was not.

use crate::event::{DeliveryKey, Receipt};
use crate::stage::{DrainReason, Sink, StageError};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;
use tokio_postgres::types::ToSql;

/// One value of a row, as tokio-postgres sends it.
pub type Value = Box<dyn ToSql + Send + Sync>;

/// What a row mapping returns: a tuple of values that tokio-postgres can
/// send (`String`, `i32`, `i64`, `f64`, `bool`, `Option<_>` of them...),
/// one per column, in the order the columns were named; or a `Vec<Value>`.
pub trait IntoRow {
    /// The row's values, in column order.
    fn into_row(self) -> Vec<Value>;
}

impl IntoRow for Vec<Value> {
    fn into_row(self) -> Vec<Value> {
        self
    }
}

macro_rules! tuple_rows {
    ($(($($name:ident),+))*) => {$(
        impl<$($name: ToSql + Send + Sync + 'static),+> IntoRow for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_row(self) -> Vec<Value> {
                let ($($name,)+) = self;
                vec![$(Box::new($name) as Value),+]
            }
        }
    )*};
}

tuple_rows! {
    (A)
    (A, B)
    (A, B, C)
    (A, B, C, D)
    (A, B, C, D, E)
    (A, B, C, D, E, F)
    (A, B, C, D, E, F, G)
    (A, B, C, D, E, F, G, H)
    (A, B, C, D, E, F, G, H, I)
    (A, B, C, D, E, F, G, H, I, J)
    (A, B, C, D, E, F, G, H, I, J, K)
    (A, B, C, D, E, F, G, H, I, J, K, L)
}

/// The sink's key column.
pub const KEY_COLUMN: &str = "obzenflow_key";

/// How many times a batch is tried when the connection is lost.
pub const ATTEMPTS: u32 = 4;

/// The most parameters one statement may have (PostgreSQL's protocol).
const MAX_PARAMETERS: usize = 65_535;

/// A sink that inserts each input as a row of a PostgreSQL table. See
/// [`insert`].
pub struct PgSink<T, F> {
    url: String,
    table: String,
    columns: Vec<String>,
    row: F,
    create: Option<String>,
    batch_rows: usize,
    client: Option<Connected>,
    /// Rows waiting to be written, with their keys.
    buffered: Vec<(Option<String>, Vec<Value>)>,
    _rows: PhantomData<fn(&T)>,
}

struct Connected {
    client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl<T, F> fmt::Debug for PgSink<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSink")
            .field("table", &self.table)
            .field("columns", &self.columns)
            .field("buffered", &self.buffered.len())
            .finish_non_exhaustive()
    }
}

/// A sink that inserts each input into `table` (optionally
/// `schema.table`) of the PostgreSQL database at `url` (a libpq-style
/// connection string or URL, without TLS), mapping it to the values of
/// `columns` with `row`. The connection is made at the first delivery.
pub fn insert<T, R, F>(
    url: impl Into<String>,
    table: impl Into<String>,
    columns: impl IntoIterator<Item = impl Into<String>>,
    row: F,
) -> PgSink<T, F>
where
    R: IntoRow,
    F: FnMut(&T) -> R + Send + 'static,
{
    PgSink {
        url: url.into(),
        table: table.into(),
        columns: columns.into_iter().map(Into::into).collect(),
        row,
        create: None,
        batch_rows: 500,
        client: None,
        buffered: Vec::new(),
        _rows: PhantomData,
    }
}

impl<T, F> PgSink<T, F> {
    /// Creates the table if it does not exist, with these column
    /// definitions (`"origin TEXT, flights BIGINT"`); the key column is
    /// added either way.
    pub fn create_table(mut self, columns: impl Into<String>) -> Self {
        self.create = Some(columns.into());
        self
    }

    /// How many rows are buffered at most before they are written (500).
    pub fn batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.max(1);
        self
    }

    fn failed(&self, what: &str, error: tokio_postgres::Error) -> StageError {
        let detail = error
            .as_db_error()
            .map_or_else(|| error.to_string(), |db| db.message().to_owned());
        StageError::fatal(format!(
            "PostgreSQL table `{}`: cannot {what}: {detail}",
            self.table
        ))
        .with_source(error)
    }

    /// Connects, and makes sure the table and its key column exist.
    async fn connect(&mut self) -> Result<(), StageError> {
        if self.client.is_some() {
            return Ok(());
        }
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .map_err(|error| {
                StageError::fatal(format!(
                    "cannot connect to PostgreSQL for table `{}` ({}): {error}",
                    self.table,
                    redacted(&self.url)
                ))
                .with_source(error)
            })?;
        let connection = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!("PostgreSQL connection ended: {error}");
            }
        });
        let connected = Connected { client, connection };
        let table = quoted_path(&self.table);
        let mut setup = String::new();
        if let Some(columns) = &self.create {
            setup.push_str(&format!("CREATE TABLE IF NOT EXISTS {table} ({columns});"));
        }
        let index = quoted(&format!("{}_{KEY_COLUMN}", last_part(&self.table)));
        setup.push_str(&format!(
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {KEY_COLUMN} TEXT;\
             CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {table} ({KEY_COLUMN});"
        ));
        connected
            .client
            .batch_execute(&setup)
            .await
            .map_err(|error| self.failed("prepare the table", error))?;
        self.client = Some(connected);
        Ok(())
    }

    /// Writes the buffered rows, in one transaction. A connection that was
    /// lost (the server restarted or ended the session, the network
    /// dropped) is made again and
    /// the batch written again, up to [`ATTEMPTS`] times with a growing
    /// pause: rows with a key cannot be written twice, so this is safe even
    /// when a commit's answer was lost. An error the server gives (a type
    /// that does not fit, a constraint) fails at once.
    async fn write(&mut self) -> Result<(), StageError> {
        if self.buffered.is_empty() {
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.connect().await?;
            let Some(connected) = self.client.as_mut() else {
                // invariant: connected just above.
                return Err(StageError::fatal("not connected to PostgreSQL"));
            };
            let inserted = insert_rows(
                &mut connected.client,
                &self.table,
                &self.columns,
                &self.buffered,
                self.batch_rows,
            )
            .await;
            match inserted {
                Ok(()) => {
                    self.buffered.clear();
                    return Ok(());
                }
                Err(error) if connection_lost(&error) && attempt < ATTEMPTS => {
                    tracing::warn!(
                        "PostgreSQL table `{}`: {error}; connecting again (attempt {} of {ATTEMPTS})",
                        self.table,
                        attempt + 1
                    );
                    self.client = None;
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(error) => return Err(self.failed("insert rows", error)),
            }
        }
    }

    /// Buffers one row, checking it has a value per column.
    async fn buffer(
        &mut self,
        key: Option<String>,
        values: Vec<Value>,
    ) -> Result<Receipt, StageError> {
        if values.len() != self.columns.len() {
            return Err(StageError::fatal(format!(
                "PostgreSQL table `{}`: the row mapping gave {} values for {} columns ({})",
                self.table,
                values.len(),
                self.columns.len(),
                self.columns.join(", ")
            )));
        }
        let receipt = Receipt::with_detail(match &key {
            Some(key) => format!("{} {key}", self.table),
            None => self.table.clone(),
        });
        self.buffered.push((key, values));
        if self.buffered.len() >= self.batch_rows {
            self.write().await?;
        }
        Ok(receipt)
    }
}

impl<T, R, F> Sink<T> for PgSink<T, F>
where
    T: Send + 'static,
    R: IntoRow,
    F: FnMut(&T) -> R + Send + 'static,
{
    /// Without a key: written at least once.
    async fn consume(&mut self, input: T) -> Result<Receipt, StageError> {
        let values = (self.row)(&input).into_row();
        self.buffer(None, values).await
    }

    async fn deliver(&mut self, key: &DeliveryKey, input: T) -> Result<Receipt, StageError> {
        let values = (self.row)(&input).into_row();
        self.buffer(Some(key.to_string()), values).await
    }

    async fn flush(&mut self) -> Result<(), StageError> {
        self.write().await
    }

    async fn drain(&mut self, reason: DrainReason) -> Result<(), StageError> {
        let _ = reason;
        self.write().await
    }

    /// Each row carries its delivery key, and a row whose key is in the
    /// table already is not inserted again.
    fn delivery(&self) -> crate::stage::Delivery {
        crate::stage::Delivery::Deduplicated
    }
}

/// Inserts `rows` into `table` in one transaction, with their keys.
async fn insert_rows(
    client: &mut tokio_postgres::Client,
    table: &str,
    columns: &[String],
    rows: &[(Option<String>, Vec<Value>)],
    batch_rows: usize,
) -> Result<(), tokio_postgres::Error> {
    let per_row = columns.len() + 1;
    let rows_per_statement = (MAX_PARAMETERS / per_row).clamp(1, batch_rows);
    let names: Vec<String> = columns
        .iter()
        .map(|c| quoted(c))
        .chain([KEY_COLUMN.to_owned()])
        .collect();
    let table = quoted_path(table);
    let transaction = client.transaction().await?;
    for chunk in rows.chunks(rows_per_statement) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", names.join(", "));
        let mut parameters: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * per_row);
        for (r, (key, values)) in chunk.iter().enumerate() {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for (c, value) in values.iter().enumerate() {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", parameters.len() + 1));
                parameters.push(value.as_ref() as &(dyn ToSql + Sync));
            }
            sql.push_str(&format!(", ${})", parameters.len() + 1));
            parameters.push(key);
        }
        sql.push_str(&format!(" ON CONFLICT ({KEY_COLUMN}) DO NOTHING"));
        transaction.execute(sql.as_str(), &parameters).await?;
    }
    transaction.commit().await
}

/// Whether `error` says the connection was lost (closed, broken, or ended
/// by the server: a shutdown, a restart, an administrator), rather than
/// that the server refused the statement.
fn connection_lost(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if error.is_closed() {
        return true;
    }
    match error.as_db_error() {
        // A broken socket; not a value that would not convert.
        None => {
            std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
        }
        Some(db) => {
            let code = db.code();
            code.code().starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
        }
    }
}

/// An identifier in double quotes.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema.table` with each part quoted.
fn quoted_path(name: &str) -> String {
    name.split('.').map(quoted).collect::<Vec<_>>().join(".")
}

fn last_part(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// A connection string with its password hidden, for messages.
fn redacted(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((credentials, host)) = rest.split_once('@')
    {
        let user = credentials.split(':').next().unwrap_or("");
        return format!("{scheme}://{user}:***@{host}");
    }
    url.split_whitespace()
        .map(|part| {
            if part.starts_with("password=") {
                "password=***"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_passwords_hidden() {
        assert_eq!(quoted_path("s.t"), "\"s\".\"t\"");
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
        assert_eq!(last_part("s.t"), "t");
        assert_eq!(
            redacted("postgres://me:secret@db/x"),
            "postgres://me:***@db/x"
        );
        assert_eq!(
            redacted("host=db password=secret user=me"),
            "host=db password=*** user=me"
        );
    }
}
