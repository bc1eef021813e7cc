//! A supervised pipeline declared with `flow!`: sensor readings arrive as
//! text lines (some of them garbled), are parsed (failures go to the error
//! lane, counted, nothing dropped silently), joined with a reference table of
//! sensor sites, and averaged per site at the end of input, written to a CSV
//! file by the library's CSV sink (which replaces the file only when the
//! input ends). An observer keeps an eye on the parsed stream; the error
//! lane is written as JSON lines, to be mended and driven again; and the run
//! ends with a per-stage report and the flow's topology as a Mermaid chart.
//!
//! The shape is checked at compile time: misspell a stage in `topology`,
//! connect a stage to one that expects another payload type, or leave a
//! stage's output unconnected, and this file does not compile; the error
//! names the stages.
//!
//! Run: `cargo run --release --example pipeline`

use obzenflow::flow;
use obzenflow::stage::{collect, csv, from_iter, group_by, inner_join, map, observe, try_map};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Reading {
    sensor: u32,
    celsius: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Site {
    sensor: u32,
    site: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SiteReading {
    site: String,
    celsius: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Mean {
    count: u64,
    total: f64,
}

/// A row of the result file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SiteMean {
    site: String,
    readings: u64,
    mean_celsius: f64,
}

fn site_mean((site, mean): (String, Mean)) -> SiteMean {
    SiteMean {
        site,
        readings: mean.count,
        mean_celsius: mean.total / mean.count.max(1) as f64,
    }
}

/// `sensor,celsius` lines: 100,000 of them, with a garbled one now and then.
fn lines() -> impl Iterator<Item = String> + Send + 'static {
    (0..100_000u32).map(|i| match i % 9_973 {
        17 => format!("{},not-a-number", i % 12),
        42 => "sensor?".to_owned(),
        _ => format!("{},{:.1}", i % 12, 15.0 + f64::from(i % 200) / 10.0),
    })
}

fn parse(line: String) -> Result<Reading, String> {
    let (sensor, celsius) = line
        .split_once(',')
        .ok_or_else(|| format!("no comma in {line:?}"))?;
    Ok(Reading {
        sensor: sensor
            .parse()
            .map_err(|e| format!("sensor in {line:?}: {e}"))?,
        celsius: celsius
            .parse()
            .map_err(|e| format!("celsius in {line:?}: {e}"))?,
    })
}

fn sites() -> Vec<Site> {
    ["roof", "cellar", "lab", "yard"]
        .iter()
        .cycle()
        .take(12)
        .enumerate()
        .map(|(sensor, site)| Site {
            sensor: sensor as u32,
            site: (*site).to_owned(),
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let hot = Arc::new(AtomicU64::new(0));
    let hot_count = Arc::clone(&hot);

    let (table, rows) = collect();
    let mut handle = flow! {
        name: "sensors",
        journals: memory(),
        stages: {
            lines     = source!(String => from_iter(lines()));
            parsed    = transform!(String -> Reading => try_map(parse));
            sites     = source!(Site => from_iter(sites()));
            located   = join!(Site, Reading -> SiteReading => inner_join(
                |s: &Site| s.sensor,
                |r: &Reading| r.sensor,
                |s: &Site, r: Reading| SiteReading { site: s.site.clone(), celsius: r.celsius },
            ));
            hot_watch = observer!(Reading => observe(move |r: &Reading| {
                if r.celsius > 34.0 {
                    hot_count.fetch_add(1, Ordering::Relaxed);
                }
            }));
            per_site  = stateful!(SiteReading -> (String, Mean) => group_by(
                |r: &SiteReading| r.site.clone(),
                |mean: &mut Mean, r: SiteReading| {
                    mean.count += 1;
                    mean.total += r.celsius;
                },
            ).emit_on_eof());
            summary   = transform!((String, Mean) -> SiteMean => map(site_mean));
            table     = sink!(SiteMean => table);
            file      = sink!(SiteMean => csv::write("target/obzenflow/sensor_means.csv"));
        },
        topology: {
            lines |> parsed |> hot_watch;
            (sites, parsed) |> located |> per_site |> summary |> (table, file);
        }
    };
    let report = match handle.run().await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("the flow failed: {error}");
            std::process::exit(1);
        }
    };

    println!("\nmean temperature per site:");
    for row in rows.snapshot() {
        println!(
            "  {:<8} {:>6.2} °C over {} readings",
            row.site, row.mean_celsius, row.readings
        );
    }
    println!("written to target/obzenflow/sensor_means.csv");
    println!(
        "readings above 34 °C seen by the observer: {}",
        hot.load(Ordering::Relaxed)
    );
    println!("\nerror lane ({} records):", report.errors.len());
    for record in &report.errors {
        println!("  {record}");
    }
    let dead_letters = std::path::Path::new("target/obzenflow/sensor_errors.jsonl");
    match report.write_error_lane(dead_letters) {
        Ok(count) => println!("  ({count} written to {})", dead_letters.display()),
        Err(error) => eprintln!("cannot write {}: {error}", dead_letters.display()),
    }
    println!("\n{report}");
    println!(
        "the flow's topology (Mermaid):\n\n{}",
        handle.topology().to_mermaid()
    );
}
