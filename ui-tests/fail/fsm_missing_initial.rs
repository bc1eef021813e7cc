use obzenflow::prelude::*;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Door { Closed, Open, Broken { reason: String } }

#[derive(Clone, Debug, EventVariant)]
enum DoorEvent { Open, Close, Kick(u8) }

fn main() {
    let machine = fsm! {
        state: Door; event: DoorEvent;
        state Door::Closed { ignore _; }
    };
    let _: &Door = machine.state();
}
// mended: event: DoorEvent; ==> event: DoorEvent; initial: Door::Closed;
