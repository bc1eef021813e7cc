use obzenflow::prelude::*;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Door { Closed, Open, Broken { reason: String } }

#[derive(Clone, Debug, EventVariant)]
enum DoorEvent { Open, Close, Kick(u8) }

fn main() {
    let _ = fsm! {
        state: Door; event: DoorEvent; initial: Door::Closed;
        state Door::Closed { on DoorEvent::Open => |_, _, _| Transition::to(Door::Opened); }
    };
}
// mended: Door::Opened ==> Door::Open
