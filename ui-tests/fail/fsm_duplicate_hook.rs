use obzenflow::prelude::*;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Door { Closed, Open, Broken { reason: String } }

#[derive(Clone, Debug, EventVariant)]
enum DoorEvent { Open, Close, Kick(u8) }

use std::time::Duration;

fn main() {
    let _ = fsm! {
        state: Door; event: DoorEvent; initial: Door::Closed;
        state Door::Open {
            timeout Duration::from_secs(1) => |_, _| Transition::to(Door::Closed);
            on_entry => |_, _| Vec::new();
            timeout Duration::from_secs(2) => |_, _| Transition::to(Door::Closed);
        }
    };
}
