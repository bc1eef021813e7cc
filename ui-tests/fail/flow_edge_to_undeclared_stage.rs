#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

fn main() {
    let _ = flow! {
        name: "checkout",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            validated = transform!(Order -> Order => filter(is_valid));
            charged   = transform!(Payment -> Charged => map(charge));
            ledger    = sink!(Charged => console());
        },
        topology: {
            incoming |> validated |> payments |> charged |> ledger;
        }
    };
}
