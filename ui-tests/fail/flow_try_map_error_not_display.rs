#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

#[derive(Debug)]
enum Declined { Fraud, Limit }

fn authorize(p: Payment) -> Result<Charged, Declined> {
    if p.cents > 1_000_000 { Err(Declined::Limit) } else { Ok(charge(p)) }
}

fn main() {
    let _ = flow! {
        name: "checkout",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            payments  = transform!(Order -> Payment => map(to_payment));
            charged   = transform!(Payment -> Charged => try_map(authorize));
            ledger    = sink!(Charged => console());
        },
        topology: {
            incoming |> payments |> charged |> ledger;
        }
    };
}
// mended: fn authorize(p: Payment) -> Result<Charged, Declined> { ==> fn authorize(p: Payment) -> Result<Charged, String> {
// mended: Err(Declined::Limit) ==> Err(format!("{:?}", Declined::Limit))
