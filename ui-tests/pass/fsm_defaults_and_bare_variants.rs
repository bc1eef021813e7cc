// No context, no action type, variants named without their enum's path, a
// handler given as a function.
use obzenflow::prelude::*;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Light {
    Red,
    Green,
}

#[derive(Clone, Debug, EventVariant)]
enum Tick {
    Next,
}

use Light::*;

fn to_red(_: &Light, _: &Tick, _: &()) -> Transition<Light, NoAction> {
    Transition::to(Red)
}

fn main() {
    let mut light: StateMachine<Light, Tick> = fsm! {
        state: Light; event: Tick; initial: Red;
        state Red { on Tick::Next => |_, _, _| Transition::to(Green); }
        state Green { on Tick::Next => to_red; }
    };
    let _ = light.handle(&Tick::Next, &());
}
