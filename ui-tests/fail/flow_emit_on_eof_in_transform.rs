#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

fn main() {
    let _ = flow! {
        name: "revenue",
        stages: {
            incoming  = source!(Order => from_iter(orders()));
            validated = transform!(Order -> Order => filter(is_valid));
            per_country = transform!(Order -> (String, u64) => group_by(|o: &Order| o.country.clone(), |sum: &mut u64, o: Order| *sum += o.cents).emit_on_eof());
            ledger    = sink!((String, u64) => console());
        },
        topology: {
            incoming |> validated |> per_country |> ledger;
        }
    };
}
// mended: per_country = transform!( ==> per_country = stateful!(
