//! The flow of the crash test, shared by its child binary (which runs it
//! until killed) and the test (which replays what the child left behind).

use obzenflow::flow::FlowHandle;
use obzenflow::prelude::*;
use obzenflow::stage::{Poll, Source, StageError, map, try_map};

/// Endless numbers, in batches, as text (every 97th garbled, for the error lane).
pub(crate) struct Counter(pub(crate) u64);

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

/// The flow, journaled under `base`.
pub(crate) fn crash_flow(base: String) -> FlowHandle {
    flow! {
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
    }
}
