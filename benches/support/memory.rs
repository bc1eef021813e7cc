//! This process's memory, for the benchmarks that watch it.

/// A `VmHWM` (peak) or `VmRSS` (now) figure of this process, in MB; NaN
/// where `/proc` does not say.
pub(crate) fn memory_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
