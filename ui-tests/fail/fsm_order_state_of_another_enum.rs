#[path = "../domain/order_fsm.rs"]
mod order_fsm;
use order_fsm::*;

fn main() {
    let _ = fsm! {
        state: OrderState; event: OrderEvent; context: Shop; action: OrderAction;
        initial: OrderState::Placed;

        state OrderState::Placed {
            on OrderEvent::Pay(cents) => |_, _, _| Transition::to(OrderState::Paid { cents: *cents });
        }
        state OrderState::Paid { .. } {
            on OrderEvent::Ship { carrier } => |_, _, _| Transition::to(OrderState::Shipped(carrier.clone()));
        }
        state Parcel::InTransit {
            on OrderEvent::Deliver => |_, _, _| Transition::to(OrderState::Delivered);
        }
    };
}
// mended: state Parcel::InTransit ==> state OrderState::Shipped(_)
