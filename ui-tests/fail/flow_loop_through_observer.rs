#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

fn main() {
    let _ = flow! {
        name: "retries",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            validated = transform!(Order -> Order => filter(is_valid));
            audit     = observer!(Order => obzenflow::stage::observe(|_: &Order| {}));
            ledger    = sink!(Order => console());
        },
        topology: {
            incoming |> validated |> audit;
            validated |> ledger;
            validated <| audit;
        }
    };
}
