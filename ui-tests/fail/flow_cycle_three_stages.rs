#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

fn main() {
    let _ = flow! {
        name: "retries",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            validated = transform!(Order -> Order => filter(is_valid));
            payments  = transform!(Order -> Payment => map(to_payment));
            retried   = transform!(Payment -> Order => map(|p: Payment| Order { id: p.order, customer: 0, cents: p.cents, country: String::new() }));
            ledger    = sink!(Payment => console());
        },
        topology: {
            incoming |> validated |> payments |> retried;
            retried |> validated;
            payments |> ledger;
        }
    };
}
// mended: retried |> validated; ==> validated <| retried;
