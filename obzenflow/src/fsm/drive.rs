//! Driving a machine whose actions can fail: the one loop that both the
//! stage supervisor and the flow supervisor run.
//!
//! An event is handled, the state change (if any) is announced, and the
//! actions are executed in order; a failing action becomes an event of the
//! machine (handled next, before anything queued), so that a failure takes
//! the same path as every other event. An event the current state does not
//! take can wait for the next state change instead of being dropped.

use super::action::{FsmAction, execute_actions};
use super::machine::StateMachine;
use super::variant::{EventVariant, StateVariant};
use std::collections::VecDeque;

/// Feeds events to a machine and executes what its transitions ask for.
#[derive(Debug)]
pub(crate) struct Driver<E> {
    /// Events the state that received them did not take, tried again after
    /// the next state change (only when deferring).
    deferred: VecDeque<E>,
    defer_unhandled: bool,
}

impl<E: EventVariant> Driver<E> {
    /// A driver that drops events the current state does not take.
    pub(crate) fn dropping_unhandled() -> Self {
        Driver {
            deferred: VecDeque::new(),
            defer_unhandled: false,
        }
    }

    /// A driver that keeps events the current state does not take, and
    /// tries them again after the next state change.
    pub(crate) fn deferring_unhandled() -> Self {
        Driver {
            deferred: VecDeque::new(),
            defer_unhandled: true,
        }
    }

    /// Handles `event` and everything it leads to: `changed` is called
    /// after each change of state (by variant), `failed` turns a failing
    /// action's error into the event handled next.
    pub(crate) async fn step<S, C, A>(
        &mut self,
        machine: &mut StateMachine<S, E, C, A>,
        context: &mut C,
        event: E,
        mut changed: impl FnMut(&S, &mut C),
        failed: impl Fn(A::Error) -> E,
    ) where
        S: StateVariant,
        A: FsmAction<C>,
    {
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let before = machine.state().variant_index();
            let actions = match machine.handle(&event, context) {
                Ok(actions) => actions,
                Err(_unhandled) => {
                    if self.defer_unhandled {
                        self.deferred.push_back(event);
                    }
                    continue;
                }
            };
            if before != machine.state().variant_index() {
                changed(machine.state(), context);
                queue.extend(self.deferred.drain(..));
            }
            if let Err(failure) = execute_actions(actions, context).await {
                queue.push_front(failed(failure.source));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsm::{FsmAction, Transition};

    #[derive(Clone, Debug, PartialEq, crate::fsm::StateVariant)]
    enum Light {
        Off,
        On,
        Broken,
    }

    #[derive(Clone, Debug, crate::fsm::EventVariant)]
    enum Switch {
        Flip,
        Fail,
        Fix,
    }

    #[derive(Debug)]
    enum Bulb {
        Burn,
    }

    #[derive(Default)]
    struct Room {
        changes: Vec<&'static str>,
    }

    impl FsmAction<Room> for Bulb {
        type Error = &'static str;
        async fn execute(&self, _room: &mut Room) -> Result<(), &'static str> {
            Err("burnt out")
        }
    }

    fn light() -> StateMachine<Light, Switch, Room, Bulb> {
        crate::fsm! {
            state: Light; event: Switch; context: Room; action: Bulb;
            initial: Light::Off;
            state Light::Off {
                on Switch::Flip => |_, _, _| Transition::to(Light::On).with(Bulb::Burn);
            }
            state Light::On {
                on Switch::Fail => |_, _, _| Transition::to(Light::Broken);
            }
            state Light::Broken {
                on Switch::Fix => |_, _, _| Transition::to(Light::Off);
            }
        }
    }

    async fn run(
        driver: &mut Driver<Switch>,
        machine: &mut StateMachine<Light, Switch, Room, Bulb>,
        room: &mut Room,
        event: Switch,
    ) {
        driver
            .step(
                machine,
                room,
                event,
                |state, room| room.changes.push(state.variant_name()),
                |_| Switch::Fail,
            )
            .await;
    }

    #[tokio::test]
    async fn a_failing_action_is_the_next_event() {
        let (mut machine, mut room) = (light(), Room::default());
        let mut driver = Driver::dropping_unhandled();
        run(&mut driver, &mut machine, &mut room, Switch::Flip).await;
        assert_eq!(machine.state(), &Light::Broken);
        assert_eq!(room.changes, ["On", "Broken"]);
    }

    #[tokio::test]
    async fn unhandled_events_wait_for_the_next_change_only_when_deferring() {
        let (mut machine, mut room) = (light(), Room::default());
        let mut driver = Driver::deferring_unhandled();
        // `Fix` means nothing when off; it waits, and applies once broken.
        run(&mut driver, &mut machine, &mut room, Switch::Fix).await;
        assert_eq!(machine.state(), &Light::Off);
        run(&mut driver, &mut machine, &mut room, Switch::Flip).await;
        assert_eq!(machine.state(), &Light::Off);
        assert_eq!(room.changes, ["On", "Broken", "Off"]);

        let (mut machine, mut room) = (light(), Room::default());
        let mut driver = Driver::dropping_unhandled();
        run(&mut driver, &mut machine, &mut room, Switch::Fix).await;
        run(&mut driver, &mut machine, &mut room, Switch::Flip).await;
        assert_eq!(machine.state(), &Light::Broken);
    }
}
