//! A child process for the crash test: runs a disk-journaled flow with an
//! endless source until it is killed. Usage: `crash_writer BASE_DIR`.

use obzenflow::prelude::*;
use obzenflow::stage::{Poll, Source, StageError, map, try_map};

/// Endless numbers, in batches, as text (every 97th garbled, for the error lane).
struct Counter(u64);

impl Source<String> for Counter {
    async fn next(&mut self) -> Result<Poll<String>, StageError> {
        tokio::task::yield_now().await;
        let batch: Vec<String> = (self.0..self.0 + 64)
            .map(|n| {
                if n % 97 == 0 {
                    format!("#{n}")
                } else {
                    n.to_string()
                }
            })
            .collect();
        self.0 += 64;
        Ok(Poll::Events(batch))
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(base) = std::env::args().nth(1) else {
        eprintln!("usage: crash_writer BASE_DIR");
        std::process::exit(2);
    };
    let mut flow = flow! {
        name: "crash",
        journals: disk(base),
        stages: {
            numbers = source!(String => Counter(0));
            parsed = transform!(String -> u64 => try_map(|s: String| s.parse::<u64>()));
            squared = transform!(u64 -> u64 => map(|n: u64| n * n));
            out = sink!(u64 => obzenflow::stage::collect::<u64>().0);
        },
        topology: {
            numbers |> parsed |> squared |> out;
        }
    };
    println!("started");
    let _ = flow.run().await;
}
