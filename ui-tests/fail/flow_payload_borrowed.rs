#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

fn main() {
    let _ = flow! {
        name: "countries",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            country   = transform!(Order -> &'static str => map(|o: Order| if o.country == "FR" { "France" } else { "elsewhere" }));
            ledger    = sink!(&'static str => console());
        },
        topology: {
            incoming |> country |> ledger;
        }
    };
}
// mended: transform!(Order -> &'static str ==> transform!(Order -> String
// mended: sink!(&'static str ==> sink!(String
// mended: { "France" } else { "elsewhere" } ==> { "France".to_owned() } else { "elsewhere".to_owned() }
