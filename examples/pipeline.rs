//! A supervised pipeline declared with `flow!`: sensor readings arrive as
//! text lines (some of them garbled), are parsed (failures go to the error
//! lane, counted, nothing dropped silently), joined with a reference table of
//! sensor sites, and averaged per site at the end of input. An observer keeps
//! an eye on the parsed stream, and the run ends with a per-stage report and
//! the flow's topology as a Mermaid chart.
//!
//! The shape is checked at compile time: misspell a stage in `topology`,
//! connect a stage to one that expects another payload type, or leave a
//! stage's output unconnected, and this file does not compile; the error
//! names the stages.
//!
//! Run: `cargo run --release --example pipeline`

use obzenflow::flow;
use obzenflow::stage::{collect, console, from_iter, group_by, inner_join, observe, try_map};
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
            table     = sink!((String, Mean) => table);
            print     = sink!((String, Mean) => console());
        },
        topology: {
            lines |> parsed |> hot_watch;
            (sites, parsed) |> located |> per_site |> (table, print);
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
    for (site, mean) in rows.snapshot() {
        println!(
            "  {site:<8} {:>6.2} °C over {} readings",
            mean.total / mean.count as f64,
            mean.count
        );
    }
    println!(
        "readings above 34 °C seen by the observer: {}",
        hot.load(Ordering::Relaxed)
    );
    println!("\nerror lane ({} records):", report.errors.len());
    for record in &report.errors {
        println!("  {record}");
    }
    println!("\n{report}");
    println!(
        "the flow's topology (Mermaid):\n\n{}",
        handle.topology().to_mermaid()
    );
}
