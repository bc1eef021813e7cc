//! Event-time windows through `flow!`: per-airport daily weather on the
//! real bundled data (checked against a plain computation), late events in
//! the error lane with their time and the watermark, every open window
//! emitted at the end of the input, and a replay that verifies.

use obzenflow::flow::journals::disk;
use obzenflow::flow::replay::ReplayOptions;
use obzenflow::prelude::*;
use obzenflow::stage::window::{Timestamp, Window, session, sliding, tumbling};
use obzenflow::stage::{collect, csv, from_iter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Weather {
    origin: String,
    wind_speed: Option<f64>,
    precip: f64,
    time_hour: String,
}

/// A day's weather at an airport: the strongest wind and the total rain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Day {
    max_wind: f64,
    precip: f64,
}

fn weather_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nycflights13/weather.csv.gz")
}

fn daily_weather(
    journals: obzenflow::flow::journals::Journals,
) -> (FlowHandle, obzenflow::stage::Collected<Window<String, Day>>) {
    let (sink, days) = collect::<Window<String, Day>>();
    let flow = flow! {
        name: "daily-weather",
        journals: journals,
        stages: {
            weather = source!(Weather => csv::read(weather_path()));
            daily   = stateful!(Weather -> Window<String, Day> => tumbling(
                DAY,
                |w: &Weather| w.origin.clone(),
                |w: &Weather| Timestamp::parse(&w.time_hour),
                |day: &mut Day, w: Weather| {
                    day.max_wind = day.max_wind.max(w.wind_speed.unwrap_or(0.0));
                    day.precip += w.precip;
                },
            ).allowed_lateness(Duration::from_secs(6 * 3600)));
            out     = sink!(Window<String, Day> => sink);
        },
        topology: { weather |> daily |> out; }
    };
    (flow, days)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_weather_per_airport_matches_a_plain_computation_and_replays() {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("windows-weather");
    let _ = std::fs::remove_dir_all(&base);
    let (mut flow, days) = daily_weather(disk(base.clone()));
    let report = flow.run().await.unwrap();
    let days = days.snapshot();

    // The same, computed plainly from the file: every hour in its UTC day.
    let mut reader = ::csv::Reader::from_reader(flate2::read::GzDecoder::new(
        std::fs::File::open(weather_path()).unwrap(),
    ));
    let mut expected: BTreeMap<(String, String), Day> = BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        let (origin, time) = (record[0].to_owned(), record[14].to_owned());
        let day = expected.entry((origin, time[..10].to_owned())).or_default();
        day.max_wind = day.max_wind.max(record[9].parse().unwrap_or(0.0));
        day.precip += record[11].parse::<f64>().unwrap();
    }
    // The file holds EWR's year, then JFK's, then LGA's: once EWR's hours
    // have moved the watermark to the end of the year, the other airports'
    // hours are late (bar the last day, within the 6 hours allowed): in the
    // error lane, with their time, and nothing lost.
    let taken: u64 = days.iter().map(|w| w.count).sum();
    assert_eq!(taken + report.errors.len() as u64, 26_115, "nothing lost");
    let ewr: Vec<&Window<String, Day>> = days.iter().filter(|w| w.key == "EWR").collect();
    assert_eq!(
        ewr.len(),
        expected
            .keys()
            .filter(|(origin, _)| origin == "EWR")
            .count()
    );
    for window in &ewr {
        let date = window.start.to_string()[..10].to_owned();
        assert_eq!(window.end.millis() - window.start.millis(), 86_400_000);
        assert_eq!(window.value, expected[&(window.key.clone(), date)]);
    }
    assert!(days.iter().filter(|w| w.key != "EWR").count() <= 4);
    assert!(report.errors.len() > 17_000);
    for record in &report.errors {
        assert!(
            record.message.starts_with("late: its event time 2013-"),
            "{}",
            record.message
        );
        assert!(record.input_id.is_some());
    }

    // A replay runs the windows again and matches the archive.
    let archived = report.run_dir.clone().unwrap();
    let (mut replay, _) = daily_weather(disk(base.clone()));
    replay
        .replay_from(&archived, ReplayOptions::default())
        .unwrap();
    replay.run().await.unwrap();
    let verification = replay.verify_replay().unwrap();
    assert!(verification.matched(), "{verification}");
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_time_order_every_hour_lands_in_its_day_and_the_last_days_close_at_the_end() {
    // Sorted by time, as a feed of readings arrives: nothing is late.
    let mut rows: Vec<Weather> = Vec::new();
    let mut reader = ::csv::Reader::from_reader(flate2::read::GzDecoder::new(
        std::fs::File::open(weather_path()).unwrap(),
    ));
    for record in reader.records() {
        let record = record.unwrap();
        rows.push(Weather {
            origin: record[0].to_owned(),
            wind_speed: record[9].parse().ok(),
            precip: record[11].parse().unwrap(),
            time_hour: record[14].to_owned(),
        });
    }
    rows.sort_by(|a, b| a.time_hour.cmp(&b.time_hour).then(a.origin.cmp(&b.origin)));
    let hours = rows.len() as u64;
    let jfk_days: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter(|w| w.origin == "JFK")
        .map(|w| &w.time_hour[..10])
        .collect();
    let jfk_days = jfk_days.len();
    let (sink, days) = collect::<Window<String, Day>>();
    let report = flow! {
        name: "sorted-weather",
        journals: memory(),
        stages: {
            weather = source!(Weather => from_iter(rows));
            daily   = stateful!(Weather -> Window<String, Day> => tumbling(
                DAY,
                |w: &Weather| w.origin.clone(),
                |w: &Weather| Timestamp::parse(&w.time_hour),
                |day: &mut Day, w: Weather| {
                    day.max_wind = day.max_wind.max(w.wind_speed.unwrap_or(0.0));
                    day.precip += w.precip;
                },
            ));
            out     = sink!(Window<String, Day> => sink);
        },
        topology: { weather |> daily |> out; }
    }
    .run()
    .await
    .unwrap();
    assert!(report.errors.is_empty());
    let days = days.snapshot();
    assert_eq!(days.iter().map(|w| w.count).sum::<u64>(), hours);
    // A window for each UTC day that has hours in the data.
    let per_airport = |code: &str| days.iter().filter(|w| w.key == code).count();
    assert_eq!(
        [per_airport("EWR"), per_airport("JFK"), per_airport("LGA")]
            .iter()
            .sum::<usize>(),
        days.len()
    );
    assert_eq!(per_airport("JFK"), jfk_days);
    // Emitted in order of their end: the watermark closed them day by day.
    assert!(days.windows(2).all(|w| w[0].end <= w[1].end));
    // The windows closed by the data came out while the input still
    // flowed; only the last day's stayed open until the end.
    let last_end = days.last().unwrap().end;
    assert!(days.iter().filter(|w| w.end == last_end).count() <= 3);
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Click {
    user: String,
    at: i64,
}

#[tokio::test]
async fn late_events_go_to_the_error_lane_with_their_time_and_the_watermark() {
    let clicks = [
        ("ann", 0),
        ("bob", 5),
        ("ann", 65_000),
        ("bob", 1_000),
        ("ann", 200_000),
    ]
    .map(|(user, at)| Click {
        user: user.into(),
        at,
    });
    let (sink, sessions) = collect::<Window<String, u32>>();
    let (sliding_sink, slid) = collect::<Window<String, u32>>();
    let report = flow! {
        name: "clicks",
        journals: memory(),
        stages: {
            clicks   = source!(Click => from_iter(clicks));
            sessions = stateful!(Click -> Window<String, u32> => session(
                Duration::from_secs(60),
                |c: &Click| c.user.clone(),
                |c: &Click| Ok(Timestamp::from_millis(c.at)),
                |n: &mut u32, _c: Click| *n += 1,
            ));
            per_min  = stateful!(Click -> Window<String, u32> => sliding(
                Duration::from_secs(120),
                Duration::from_secs(60),
                |_c: &Click| "all".to_owned(),
                |c: &Click| Ok(Timestamp::from_millis(c.at)),
                |n: &mut u32, _c: Click| *n += 1,
            ));
            out      = sink!(Window<String, u32> => sink);
            out2     = sink!(Window<String, u32> => sliding_sink);
        },
        topology: { clicks |> sessions |> out; clicks |> per_min |> out2; }
    }
    .run()
    .await
    .unwrap();
    let sessions: Vec<(String, i64, i64, u64)> = sessions
        .snapshot()
        .into_iter()
        .map(|w| (w.key, w.start.millis(), w.end.millis(), w.count))
        .collect();
    // ann's click at 65,000 comes more than 60 s after her last: it starts
    // a new session, and moves the watermark past her first and bob's, so
    // bob's click at 1,000 is late. The last session closes at the end.
    assert_eq!(
        sessions,
        [
            ("ann".to_owned(), 0, 60_000, 1),
            ("bob".to_owned(), 5, 60_005, 1),
            ("ann".to_owned(), 65_000, 125_000, 1),
            ("ann".to_owned(), 200_000, 260_000, 1),
        ]
    );
    let [late] = report.errors.as_slice() else {
        panic!("{:?}", report.errors)
    };
    assert_eq!(late.stage.as_ref(), "sessions");
    assert_eq!(
        late.message,
        "late: its event time 1970-01-01T00:00:01.000Z is behind the watermark 1970-01-01T00:01:05.000Z, and its window has been emitted"
    );
    // Sliding windows of two minutes every minute: the click at 1,000 is
    // still in the open window [0, 120 s).
    let counts: Vec<(i64, u64)> = slid
        .snapshot()
        .into_iter()
        .map(|w| (w.start.millis(), w.count))
        .collect();
    assert_eq!(
        counts,
        [
            (-60_000, 2),
            (0, 4),
            (60_000, 1),
            (120_000, 1),
            (180_000, 1)
        ]
    );
}

/// Sees the parents of every data entry of the stage it watches.
#[derive(Clone, Default)]
struct Lineage(std::sync::Arc<std::sync::Mutex<Vec<obzenflow::event::Parents>>>);

impl<T> obzenflow::stage::Observer<T> for Lineage {
    fn observe(&mut self, entry: &obzenflow::event::Envelope<T>) {
        if entry.data().is_some() {
            self.0.lock().unwrap().push(entry.parents.clone());
        }
    }
}

#[tokio::test]
async fn what_a_stateful_stage_emits_names_the_range_of_inputs_it_was_folded_from() {
    use obzenflow::event::{EventId, Parents, StageId};
    use obzenflow::stage::group_by;
    let lineage = Lineage::default();
    let seen = lineage.clone();
    let (sink, _totals) = collect::<(u32, u32)>();
    flow! {
        name: "lineage",
        journals: memory(),
        stages: {
            numbers = source!(u32 => from_iter(0..100u32));
            totals  = stateful!(u32 -> (u32, u32) => group_by(|n: &u32| n % 3, |sum: &mut u32, n: u32| *sum += n).emit_on_eof());
            watch   = observer!((u32, u32) => seen);
            out     = sink!((u32, u32) => sink);
        },
        topology: { numbers |> totals |> (watch, out); }
    }
    .run()
    .await
    .unwrap();
    let id = |seq| EventId {
        stage: StageId(0),
        seq,
    };
    let parents = lineage.0.lock().unwrap().clone();
    assert_eq!(parents, vec![Parents::Range([id(0), id(99)]); 3]);
    assert_eq!(parents[0].ids(), [id(0), id(99)]);
}
