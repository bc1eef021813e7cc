#[path = "../domain/order_fsm.rs"]
mod order_fsm;
use order_fsm::*;

fn main() {
    let _ = fsm! {
        state: OrderState; event: OrderEvent; context: Shop; action: OrderAction;
        initial: OrderState::Placed;
        exhaustive;

        state OrderState::Placed {
            on OrderEvent::Pay(cents) => |_, _, _| Transition::to(OrderState::Paid { cents: *cents });
            on OrderEvent::Cancel(reason) => |_, _, _| Transition::to(OrderState::Cancelled { reason: reason.clone() });
            ignore OrderEvent::Ship { .. } | OrderEvent::Deliver | OrderEvent::Refund;
        }
        state OrderState::Paid { .. } {
            on OrderEvent::Ship { carrier } => |_, _, _| Transition::to(OrderState::Shipped(carrier.clone()));
            on OrderEvent::Refund => |_, _, _| Transition::to(OrderState::Placed).with(OrderAction::Restock);
            ignore OrderEvent::Pay(_) | OrderEvent::Deliver;
        }
        state OrderState::Shipped(_) {
            on OrderEvent::Deliver => |_, _, _| Transition::to(OrderState::Delivered);
            ignore _;
        }
        state OrderState::Delivered | OrderState::Cancelled { .. } { ignore _; }
    };
}
// mended: ignore OrderEvent::Pay(_) | OrderEvent::Deliver; ==> ignore OrderEvent::Pay(_) | OrderEvent::Deliver | OrderEvent::Cancel(_);
