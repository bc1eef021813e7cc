#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

fn main() {
    let _ = flow! {
        name: "checkout",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            validated = transform!(Order -> Order => filter(|o: Order| o.cents > 0));
            payments  = transform!(Order -> Payment => map(to_payment));
            ledger    = sink!(Payment => console());
        },
        topology: {
            incoming |> validated |> payments |> ledger;
        }
    };
}
// mended: |o: Order| o.cents > 0 ==> |o: &Order| o.cents > 0
