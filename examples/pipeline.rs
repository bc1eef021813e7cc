//! A supervised pipeline built with the typed builder: sensor readings arrive
//! as text lines (some of them garbled), are parsed (failures go to the error
//! lane, counted, nothing dropped silently), joined with a reference table of
//! sensor sites, and averaged per site at the end of input. An observer keeps
//! an eye on the parsed stream, and the run ends with a per-stage report.
//!
//! Run: `cargo run --release --example pipeline`

use obzenflow::flow::FlowBuilder;
use obzenflow::stage::{
    EmitPolicy, collect, console, from_iter, group_by, inner_join, observe, try_map,
};
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

    let mut flow = FlowBuilder::new("sensors");
    let raw = flow.source("lines", from_iter(lines()));
    let readings = flow.transform("parsed", &raw, try_map(parse));
    let sites = flow.source("sites", from_iter(sites()));
    let located = flow.join(
        "located",
        &sites,
        &readings,
        inner_join(
            |s: &Site| s.sensor,
            |r: &Reading| r.sensor,
            |s: &Site, r: Reading| SiteReading {
                site: s.site.clone(),
                celsius: r.celsius,
            },
        ),
    );
    flow.observer(
        "hot_watch",
        &readings,
        observe(move |r: &Reading| {
            if r.celsius > 34.0 {
                hot_count.fetch_add(1, Ordering::Relaxed);
            }
        }),
    );
    let means = flow.stateful(
        "per_site",
        &located,
        group_by(
            |r: &SiteReading| r.site.clone(),
            |mean: &mut Mean, r: SiteReading| {
                mean.count += 1;
                mean.total += r.celsius;
            },
        ),
        EmitPolicy::OnEof,
    );
    let (table, rows) = collect();
    flow.sink("table", &means, table);
    flow.sink("print", &means, console());

    let mut handle = flow.build().expect("the flow is well formed");
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
}
