#[path = "../domain/order_fsm.rs"]
mod order_fsm;
use order_fsm::*;

fn main() {
    let support = "support@example.com".to_owned();
    let _ = fsm! {
        state: OrderState; event: OrderEvent; context: Shop; action: OrderAction;
        initial: OrderState::Placed;

        state OrderState::Placed {
            on OrderEvent::Pay(cents) => |_, _, _| Transition::to(OrderState::Paid { cents: *cents });
        }
        state OrderState::Cancelled { .. } {
            on_entry => |_, _| vec![OrderAction::Notify(support.clone())];
        }
    };
}
// mended: let support = "support@example.com".to_owned(); ==> const support: &str = "support@example.com";
// mended: Notify(support.clone()) ==> Notify(support.to_owned())
