#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

#[derive(Clone, Debug)]
struct Refund { order: u64, cents: u64 }

fn main() {
    let _ = flow! {
        name: "refunds",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            refunds   = transform!(Order -> Refund => map(|o: Order| Refund { order: o.id, cents: o.cents }));
            large     = transform!(Refund -> Refund => filter(|r: &Refund| r.cents > 10_000));
            ledger    = sink!(Refund => console());
        },
        topology: {
            incoming |> refunds |> large |> ledger;
        }
    };
}
// mended: struct Refund { ==> #[derive(Serialize, Deserialize)]\nstruct Refund {
