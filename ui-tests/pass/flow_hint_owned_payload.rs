#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

fn main() {
    let _ = flow! {
        name: "countries",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            country   = transform!(Order -> String => map(|o: Order| if o.country == "FR" { "France".to_owned() } else { "elsewhere".to_owned() }));
            ledger    = sink!(String => console());
        },
        topology: {
            incoming |> country |> ledger;
        }
    };
}
