//! What every benchmark here shares: a criterion set-up with short, fixed
//! timings, and a report that compares a subject with the baseline measured in
//! the same run and prints the ratio.

use criterion::Criterion;
use std::path::PathBuf;
use std::time::Duration;

/// Where this run's estimates are written (and read back for the ratios).
fn output_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("criterion")
}

/// When this benchmark process set up criterion: estimates older than this
/// are from an earlier run.
static STARTED: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();

/// Criterion with the command line's options, writing to our own directory.
pub(crate) fn criterion() -> Criterion {
    STARTED.get_or_init(std::time::SystemTime::now);
    Criterion::default()
        .output_directory(&output_directory())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
        .configure_from_args()
}

/// The median time of one iteration of `group/id` in nanoseconds, as
/// criterion estimated it in this run; `None` when it did not run (a filter,
/// `--test`), and for estimates left by an earlier run. The median, because
/// on a shared machine a few slow samples move the mean far more than the
/// code does.
pub(crate) fn median_ns(group: &str, id: &str) -> Option<f64> {
    let json = this_run(group, id, "estimates.json")?;
    json["median"]["point_estimate"].as_f64()
}

/// The time of one iteration of `group/id` in its fastest sample (each
/// sample is the mean of several iterations), in nanoseconds, from this run
/// only. Next to the median it shows when a subject was slowed by the
/// machine for a stretch of its samples rather than by its code.
pub(crate) fn fastest_ns(group: &str, id: &str) -> Option<f64> {
    let json = this_run(group, id, "sample.json")?;
    let iterations = json["iters"].as_array()?;
    let times = json["times"].as_array()?;
    iterations
        .iter()
        .zip(times)
        .filter_map(|(n, t)| Some(t.as_f64()? / n.as_f64()?))
        .min_by(f64::total_cmp)
}

/// A file criterion wrote for `group/id` in this run, parsed.
fn this_run(group: &str, id: &str, file: &str) -> Option<serde_json::Value> {
    let path = output_directory()
        .join(group)
        .join(id)
        .join("new")
        .join(file);
    let written = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if written < *STARTED.get()? {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Prints `subject` against `baseline` (both in `group`), per element, with
/// the ratio of their medians and the goal it is held to, then the ratio of
/// their fastest samples.
pub(crate) fn print_ratio(group: &str, subject: &str, baseline: &str, elements: u64, goal: &str) {
    let (Some(subject_ns), Some(baseline_ns)) =
        (median_ns(group, subject), median_ns(group, baseline))
    else {
        println!("{group}: {subject} vs {baseline}: not measured in this run");
        return;
    };
    let per = |ns: f64| ns / elements as f64;
    let fastest = match (fastest_ns(group, subject), fastest_ns(group, baseline)) {
        (Some(subject), Some(baseline)) => format!(
            "; fastest samples {:.2} and {:.2} ns/event, ratio {:.2}",
            per(subject),
            per(baseline),
            subject / baseline
        ),
        _ => String::new(),
    };
    println!(
        "{group}: {subject} {:.2} ns/event, {baseline} {:.2} ns/event, ratio {:.2} ({goal}){fastest}",
        per(subject_ns),
        per(baseline_ns),
        subject_ns / baseline_ns
    );
}
