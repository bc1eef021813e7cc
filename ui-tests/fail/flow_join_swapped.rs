#[path = "../domain/checkout.rs"]
mod checkout;
use checkout::*;

fn main() {
    let _ = flow! {
        name: "checkout",
        stages: {
            customers = source!(Customer => from_iter(customers()));
            incoming  = source!(Order => from_iter(orders()));
            validated = transform!(Order -> Order => filter(is_valid));
            named     = join!(Customer, Order -> (String, u64) => inner_join(|c: &Customer| c.id, |o: &Order| o.customer, |c: &Customer, o: Order| (c.name.clone(), o.cents)));
            ledger    = sink!((String, u64) => console());
        },
        topology: {
            incoming |> validated;
            (validated, customers) |> named |> ledger;
        }
    };
}
// mended: (validated, customers) |> named ==> (customers, validated) |> named
