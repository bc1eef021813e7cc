use obzenflow::prelude::*;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Door { Closed, Open, Broken { reason: String } }

#[derive(Clone, Debug, EventVariant)]
enum DoorEvent { Open, Close, Kick(u8) }

fn main() {
    // Three independent mistakes (several mistakes on purpose): all three are
    // reported in one compile.
    let _ = fsm! {
        state: Door; event: DoorEvent; initial: Door::Closed;
        state Door::Closed {
            on DoorEvent::Open => ;
            ignore DoorEvent::Close;
        }
        state Door::Open {
            on_entry |_, _| Vec::new();
        }
        stat Door::Broken { .. } { ignore _; }
    };
}
// mended: on DoorEvent::Open => ; ==> on DoorEvent::Open => |_, _, _| Transition::to(Door::Open);
// mended: on_entry |_, _| ==> on_entry => |_, _|
// mended: stat Door::Broken ==> state Door::Broken
