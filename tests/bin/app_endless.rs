//! A child process for the runner's Ctrl-C test: an endless flow under
//! `obzenflow::app::run`. With `APP_ENDLESS_SLOW` set, its sink takes a
//! second an event (and says `consuming` when it starts), so that draining
//! its backlog takes long.

use obzenflow::prelude::*;
use obzenflow::stage::{Poll, Receipt, Sink, Source, StageError, map};

struct Slow {
    slow: bool,
    started: bool,
}

impl Sink<u64> for Slow {
    async fn consume(&mut self, _input: u64) -> Result<Receipt, StageError> {
        if self.slow {
            if !std::mem::replace(&mut self.started, true) {
                println!("consuming");
            }
            // A real process's slow sink: the slowness is what the Ctrl-C
            // tests drain against.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        Ok(Receipt::delivered())
    }
}

struct Endless(u64);

impl Source<u64> for Endless {
    async fn next(&mut self) -> Result<Poll<u64>, StageError> {
        // Endless, but polite: the edge's window holds it back when it runs ahead.
        tokio::task::yield_now().await;
        self.0 += 10;
        Ok(Poll::Events((self.0 - 10..self.0).collect()))
    }
}

fn main() -> std::process::ExitCode {
    let slow = std::env::var_os("APP_ENDLESS_SLOW").is_some();
    obzenflow::app::Program::new("Doubles numbers without end")
        .env("APP_ENDLESS_SLOW", "set: the sink takes a second an event")
        .run(|app| {
            println!("started");
            flow! {
                name: "endless",
                journals: app.journals(),
                stages: {
                    numbers = source!(u64 => Endless(0));
                    doubled = transform!(u64 -> u64 => map(|n: u64| n * 2));
                    out = sink!(u64 => Slow { slow, started: false });
                },
                topology: {
                    numbers |> doubled |> out;
                }
            }
        })
}
