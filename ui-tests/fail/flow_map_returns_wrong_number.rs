#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

fn main() {
    let _ = flow! {
        name: "checkout",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            validated = transform!(Order -> Order => filter(is_valid));
            euros     = transform!(Order -> u32 => map(|o: Order| o.cents as f64 / 100.0));
            ledger    = sink!(u32 => console());
        },
        topology: {
            incoming |> validated |> euros |> ledger;
        }
    };
}
