#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

fn main() {
    let _ = flow! {
        name: "checkout",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            type      = transform!(Order -> Payment => map(to_payment));
            charged   = transform!(Payment -> Charged => map(charge));
            ledger    = sink!(Charged => console());
        },
        topology: {
            incoming |> type |> charged |> ledger;
        }
    };
}
// mended: type      = ==> pay       =
// mended: |> type |> ==> |> pay |>
