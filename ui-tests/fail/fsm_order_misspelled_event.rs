#[path = "../domain/order_fsm.rs"]
mod order_fsm;
use order_fsm::*;

fn main() {
    let _ = fsm! {
        state: OrderState; event: OrderEvent; context: Shop; action: OrderAction;
        initial: OrderState::Placed;

        state OrderState::Placed {
            on OrderEvent::Pay(cents) => |_, _, shop| {
                if *cents > shop.max_cents { Transition::to(OrderState::Cancelled { reason: "limit".into() }) }
                else { Transition::to(OrderState::Paid { cents: *cents }).with(OrderAction::Charge(*cents)) }
            };
            on OrderEvent::Cancel(reason) => |_, _, _| Transition::to(OrderState::Cancelled { reason: reason.clone() });
        }
        state OrderState::Paid { cents } {
            on OrderEvent::Shipp { carrier } => |_, _, _| Transition::to(OrderState::Shipped(carrier.clone()));
            on OrderEvent::Refund => |_, _, _| Transition::to(OrderState::Placed).with(OrderAction::Charge(*cents));
        }
        state OrderState::Shipped(carrier) {
            on OrderEvent::Deliver => |_, _, _| Transition::to(OrderState::Delivered).with(OrderAction::Notify(carrier.clone()));
        }
        state _ { ignore OrderEvent::Refund; }
    };
}
// mended: OrderEvent::Shipp ==> OrderEvent::Ship
