#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

fn main() {
    let _ = flow! {
        name: "checkout",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            payments  = transform!(Order -> Payment => map(to_payment));
            charged   = transform!(Payment -> Charged => map(charge));
            ledger    = sink!(Charged => console());
        }
        topology: {
            incoming |> payments |> charged |> ledger;
        }
    };
}
// mended:         }\n        topology: ==>         },\n        topology:
