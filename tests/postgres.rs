//! The PostgreSQL sink against the real server on this machine
//! (127.0.0.1:5432, trust authentication, database `test`; set
//! `OBZENFLOW_TEST_POSTGRES` to use another). Each test works in a schema
//! of its own and drops it. A server that cannot be reached fails the test
//! and says how to start one: it never passes silently.

use obzenflow::event::{DeliveryKey, EventId, StageId};
use obzenflow::prelude::*;
use obzenflow::stage::{Sink, from_iter, postgres};
use std::sync::Arc;

fn url() -> String {
    std::env::var("OBZENFLOW_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_owned())
}

/// A client, and a fresh schema named after the test (dropped by [`Schema::drop`]).
struct Schema {
    client: tokio_postgres::Client,
    name: String,
}

impl Schema {
    async fn new(test: &str) -> Schema {
        let (client, connection) = match tokio_postgres::connect(&url(), tokio_postgres::NoTls)
            .await
        {
            Ok(connected) => connected,
            Err(error) => panic!(
                "PostgreSQL is not reachable at `{}`: {error}. The tests of the PostgreSQL sink need a \
                 real server: start it (`service postgresql start`, or `apt-get install postgresql` \
                 first), or point OBZENFLOW_TEST_POSTGRES at one (a libpq connection string, trust \
                 or password authentication).",
                url()
            ),
        };
        tokio::spawn(connection);
        // Schemas left by runs that died before dropping theirs (their
        // process is gone) are dropped; those of live runs are not touched.
        let stale: Vec<String> = client
            .query(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'obzenflow\\_%'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<_, String>(0))
            .filter(|name| {
                // Only where a process's liveness can be read from /proc.
                cfg!(target_os = "linux")
                    && name
                        .rsplit('_')
                        .next()
                        .and_then(|pid| pid.parse::<u32>().ok())
                        .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
            })
            .collect();
        for name in stale {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
        let name = format!("obzenflow_{test}_{}", std::process::id());
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name};"
            ))
            .await
            .unwrap();
        Schema { client, name }
    }

    async fn count(&self, table: &str) -> i64 {
        self.client
            .query_one(&format!("SELECT count(*) FROM {}.{table}", self.name), &[])
            .await
            .unwrap()
            .get(0)
    }

    async fn drop(self) {
        self.client
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name))
            .await
            .unwrap();
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Reading {
    station: String,
    celsius: Option<f64>,
    n: i64,
}

fn readings(count: i64) -> Vec<Reading> {
    (0..count)
        .map(|n| Reading {
            station: format!("s{}", n % 5),
            celsius: (n % 4 != 0).then_some(n as f64 / 2.0),
            n,
        })
        .collect()
}

fn sink(
    schema: &Schema,
) -> postgres::PgSink<Reading, impl FnMut(&Reading) -> (String, Option<f64>, i64) + Send + 'static>
{
    // Named after the schema, so that a test can find its session.
    let url = match url() {
        url if url.contains("://") && url.contains('?') => {
            format!("{url}&application_name={}", schema.name)
        }
        url if url.contains("://") => format!("{url}?application_name={}", schema.name),
        url => format!("{url} application_name={}", schema.name),
    };
    postgres::insert(
        url,
        format!("{}.readings", schema.name),
        ["station", "celsius", "n"],
        |r: &Reading| (r.station.clone(), r.celsius, r.n),
    )
    .create_table("station TEXT NOT NULL, celsius DOUBLE PRECISION, n BIGINT NOT NULL")
    .batch_rows(300)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_writes_every_row_once_with_its_key_in_batches() {
    let schema = Schema::new("flow").await;
    let items = readings(2_500);
    let report = flow! {
        name: "to-postgres",
        journals: memory(),
        stages: {
            readings = source!(Reading => from_iter(items));
            table    = sink!(Reading => sink(&schema));
        },
        topology: { readings |> table; }
    }
    .run()
    .await
    .unwrap();
    assert_eq!(report.stage("table").unwrap().events_out, 2_500);
    assert_eq!(schema.count("readings").await, 2_500);
    // What was written is what was read, NULLs included, each row with
    // the key of its input event.
    let rows = schema
        .client
        .query(
            &format!(
                "SELECT station, celsius, n, obzenflow_key FROM {}.readings ORDER BY n",
                schema.name
            ),
            &[],
        )
        .await
        .unwrap();
    for (row, expected) in rows.iter().zip(readings(2_500)) {
        assert_eq!(row.get::<_, String>(0), expected.station);
        assert_eq!(row.get::<_, Option<f64>>(1), expected.celsius);
        assert_eq!(row.get::<_, i64>(2), expected.n);
        let key: String = row.get(3);
        assert!(key.contains("/0#"), "the source is stage 0: {key}");
    }
    let keys: std::collections::HashSet<String> = rows.iter().map(|r| r.get(3)).collect();
    assert_eq!(keys.len(), 2_500);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_delivered_twice_is_written_once() {
    let schema = Schema::new("twice").await;
    let mut sink = sink(&schema);
    let run: Arc<str> = Arc::from("run-1");
    let key = |seq| DeliveryKey {
        run: Arc::clone(&run),
        event: EventId {
            stage: StageId(0),
            seq,
        },
    };
    // The first delivery of a batch; the same batch again, as after a crash
    // between delivery and receipt; then the next batch, overlapping it.
    for round in [0..400u64, 0..400, 200..700] {
        for seq in round {
            let reading = readings(700)[seq as usize].clone();
            sink.deliver(&key(seq), reading).await.unwrap();
        }
        sink.flush().await.unwrap();
    }
    sink.drain(obzenflow::stage::DrainReason::EndOfInput)
        .await
        .unwrap();
    assert_eq!(schema.count("readings").await, 700);
    // Another run's deliveries are its own rows.
    let other: Arc<str> = Arc::from("run-2");
    let key = DeliveryKey {
        run: other,
        event: EventId {
            stage: StageId(0),
            seq: 0,
        },
    };
    sink.deliver(&key, readings(1)[0].clone()).await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(schema.count("readings").await, 701);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_mapping_or_table_fails_the_stage_naming_the_table() {
    let schema = Schema::new("bad").await;
    let items = readings(3);
    // A value of the wrong type for its column.
    let table = format!("{}.readings", schema.name);
    let wrong = postgres::insert(
        url(),
        table.clone(),
        ["station", "celsius", "n"],
        |r: &Reading| (r.station.clone(), r.celsius, r.station.clone()),
    )
    .create_table("station TEXT NOT NULL, celsius DOUBLE PRECISION, n BIGINT NOT NULL");
    let error = flow! {
        name: "wrong-type",
        journals: memory(),
        stages: {
            readings = source!(Reading => from_iter(items));
            table    = sink!(Reading => wrong);
        },
        topology: { readings |> table; }
    }
    .run()
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with(&format!(
            "stage `table` failed: PostgreSQL table `{table}`: cannot insert rows:"
        )),
        "{error}"
    );
    assert_eq!(schema.count("readings").await, 0, "nothing half-written");
    // A table that does not exist, not created.
    let missing = postgres::insert(
        url(),
        format!("{}.nothing", schema.name),
        ["a"],
        |r: &Reading| (r.n,),
    );
    let error = flow! {
        name: "no-table",
        journals: memory(),
        stages: {
            readings = source!(Reading => from_iter(readings(1)));
            table    = sink!(Reading => missing);
        },
        topology: { readings |> table; }
    }
    .run()
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("cannot prepare the table"), "{error}");
    assert!(error.contains("does not exist"), "{error}");
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_is_made_again_and_the_batch_written_once() {
    let schema = Schema::new("reconnect").await;
    let mut sink = sink(&schema);
    let run: Arc<str> = Arc::from("run-1");
    let key = |seq| DeliveryKey {
        run: Arc::clone(&run),
        event: EventId {
            stage: StageId(0),
            seq,
        },
    };
    let rows = readings(600);
    for seq in 0..200u64 {
        sink.deliver(&key(seq), rows[seq as usize].clone())
            .await
            .unwrap();
    }
    sink.flush().await.unwrap();
    // The server ends the sink's session (as a restart or a dropped
    // network would).
    let ended: i64 = schema
        .client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND application_name = $1",
            &[&schema.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ended, 1, "the sink's session was found and ended");
    for seq in 100..600u64 {
        sink.deliver(&key(seq), rows[seq as usize].clone())
            .await
            .unwrap();
    }
    sink.flush().await.unwrap();
    assert_eq!(schema.count("readings").await, 600);
    schema.drop().await;
}
