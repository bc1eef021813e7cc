#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;
use obzenflow::stage::{csv, jsonl};

// Read from a CSV export of the shop: only `Deserialize` is derived.
#[derive(Clone, Debug, Deserialize)]
struct Return { order: u64, cents: u64, reason: String }

fn main() {
    let _ = flow! {
        name: "returns",
        stages: {
            returns   = source!(Return => csv::read("returns.csv"));
            large     = transform!(Return -> Return => filter(|r: &Return| r.cents > 10_000));
            archive   = sink!(Return => jsonl::write("large-returns.jsonl"));
        },
        topology: {
            returns |> large |> archive;
        }
    };
}
// mended: #[derive(Clone, Debug, Deserialize)] ==> #[derive(Clone, Debug, Serialize, Deserialize)]
