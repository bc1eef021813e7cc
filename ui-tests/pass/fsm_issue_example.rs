// The machine from the design sketch, with every clause kind, checked `exhaustive`.
use obzenflow::prelude::*;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Door {
    Closed,
    Open,
    Broken { reason: String },
}

#[derive(Clone, Debug, EventVariant)]
enum DoorEvent {
    Open,
    Close,
    Kick(u8),
}

#[derive(Debug)]
enum DoorAction {
    Ring,
    Log(String),
}

struct DoorCtx;

fn main() {
    let machine = fsm! {
        state: Door; event: DoorEvent; context: DoorCtx; action: DoorAction;
        initial: Door::Closed;
        exhaustive;
        state Door::Closed {
            on DoorEvent::Open => |_s, _e, _ctx| Transition::to(Door::Open).with(DoorAction::Ring);
            on_entry => |_s, _ctx| vec![DoorAction::Log("closed".into())];
            ignore DoorEvent::Close;
        }
        state Door::Open {
            on DoorEvent::Close => |_s, _e, _ctx| Transition::to(Door::Closed);
            timeout Duration::from_secs(30) => |_s, _ctx| Transition::to(Door::Closed);
        }
        state Door::Broken { .. } { ignore _; }
        state _ {
            on DoorEvent::Kick(force) => |_s, _e, _ctx| Transition::to(Door::Broken { reason: format!("kick {force}") });
            ignore DoorEvent::Open | DoorEvent::Close;
        }
    };
    let _: &Door = machine.state();
}
