#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

fn main() {
    let _ = flow! {
        name: "checkout",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            validated = transform!(Order -> Order => filter(is_valid));
            payments  = transform!(Order -> Payment => map(to_payment));
            charged   = transform!(Order -> Charged => map(|o: Order| Charged { order: o.id, cents: o.cents, fee: 0 }));
            ledger    = sink!(Charged => console());
        },
        topology: {
            incoming |> validated |> payments |> charged |> ledger;
        }
    };
}
