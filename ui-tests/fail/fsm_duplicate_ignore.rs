use obzenflow::prelude::*;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Door { Closed, Open, Broken { reason: String } }

#[derive(Clone, Debug, EventVariant)]
enum DoorEvent { Open, Close, Kick(u8) }

fn main() {
    let _ = fsm! {
        state: Door; event: DoorEvent; initial: Door::Closed;
        state Door::Open | Door::Closed {
            on DoorEvent::Kick(force) => |_, _, _| Transition::stay();
            ignore DoorEvent::Close | DoorEvent::Kick(_);
        }
    };
}
