use obzenflow::prelude::*;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Door { Closed, Open, Broken { reason: String } }

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Window { Shut, Ajar }

#[derive(Clone, Debug, EventVariant)]
enum DoorEvent { Open, Close, Kick(u8) }

fn main() {
    let _ = fsm! {
        state: Door; event: DoorEvent; initial: Door::Closed;
        state Door::Closed {
            on DoorEvent::Open => |_, _, _| Transition::to(Door::Open);
        }
        state Window::Ajar {
            on DoorEvent::Close => |_, _, _| Transition::to(Door::Closed);
        }
        state Door::Broken { reason } {
            on DoorEvent::Kick(force) => |_, _, _| if *force > 3 { Transition::to(Door::Closed) } else { Transition::stay() };
        }
    };
}
