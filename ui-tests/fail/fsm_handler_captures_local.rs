use obzenflow::prelude::*;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Door { Closed, Open, Broken { reason: String } }

#[derive(Clone, Debug, EventVariant)]
enum DoorEvent { Open, Close, Kick(u8) }

fn main() {
    let limit = 3;
    let _ = fsm! {
        state: Door; event: DoorEvent; initial: Door::Closed;
        state Door::Open {
            on DoorEvent::Kick(force) => |_, _, _| {
                if *force > limit { Transition::to(Door::Closed) } else { Transition::stay() }
            };
        }
    };
}
// mended: let limit = 3; ==> const limit: u8 = 3;
