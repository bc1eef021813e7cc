// Under `exhaustive`, `state _` clauses cover their events in every state, and
// every state having a clause of its own leaves nothing for `state _` to cover.
use obzenflow::prelude::*;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Phase {
    Up,
    Down,
}

#[derive(Clone, Debug, EventVariant)]
enum Signal {
    Flip,
    Fail,
}

fn main() {
    let _ = fsm! {
        state: Phase; event: Signal; initial: Phase::Up;
        exhaustive;
        state Phase::Up { on Signal::Flip => |_, _, _| Transition::to(Phase::Down); }
        state Phase::Down { on Signal::Flip => |_, _, _| Transition::to(Phase::Up); }
        state _ { on Signal::Fail => |_, _, _| Transition::to(Phase::Down); }
    };
}
