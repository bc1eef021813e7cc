// A machine built inside a generic function, over generic enums and a generic context.
use obzenflow::prelude::*;
use std::fmt::Debug;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Slot<T> {
    Empty,
    Full(T),
}

#[derive(Clone, Debug, EventVariant)]
enum SlotEvent<T> {
    Put(T),
    Take,
}

trait Limit {
    fn allows(&self, size: usize) -> bool;
}

impl Limit for usize {
    fn allows(&self, size: usize) -> bool {
        size <= *self
    }
}

fn slot<T: Clone + Debug + AsRef<[u8]>, C: Limit>() -> StateMachine<Slot<T>, SlotEvent<T>, C> {
    fsm! {
        state: Slot<T>; event: SlotEvent<T>; context: C;
        initial: Slot::Empty;
        exhaustive;
        state Slot::Empty {
            on SlotEvent::Put(value) => |_, _, limit| if limit.allows(value.as_ref().len()) {
                Transition::to(Slot::Full(value.clone()))
            } else {
                Transition::stay()
            };
            ignore SlotEvent::Take;
        }
        state Slot::Full(_) {
            on SlotEvent::Take => |_, _, _| Transition::to(Slot::Empty);
            ignore SlotEvent::Put(_);
        }
    }
}

fn main() {
    let mut machine = slot::<String, usize>();
    let _ = machine.handle(&SlotEvent::Put("abc".into()), &4);
}
