use obzenflow::prelude::*;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Door { Closed, Open, Broken { reason: String } }

#[derive(Clone, Debug, EventVariant)]
enum DoorEvent { Open, Close, Kick(u8) }

#[derive(Clone, Debug, PartialEq)]
enum DoorAction { Beep }

fn main() {
    let _ = fsm! {
        state: Door; event: DoorEvent; action: DoorAction; initial: Door::Closed;
        state Door::Closed {
            on DoorEvent::Open => |_, _, _| Transition::to(Door::Open);
        }
        state Door::Open {
            on_entry => |_| vec![DoorAction::Beep];
            on DoorEvent::Close => |_, _, _| Transition::to(Door::Closed);
        }
    };
}
// mended: on_entry => |_| ==> on_entry => |_, _|
