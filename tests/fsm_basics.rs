//! The FSM layer through its public API: dispatch, ignore and unhandled,
//! hooks and the order of actions, data-carrying variants.

use obzenflow::prelude::*;

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
    Repair,
}

#[derive(Clone, Debug, PartialEq)]
enum DoorAction {
    Ring,
    Enter(&'static str),
    Exit(&'static str),
    Log(String),
}

#[derive(Default)]
struct DoorCtx {
    kick_limit: u8,
}

fn door() -> StateMachine<Door, DoorEvent, DoorCtx, DoorAction> {
    fsm! {
        state: Door; event: DoorEvent; context: DoorCtx; action: DoorAction;
        initial: Door::Closed;

        state Door::Closed {
            on DoorEvent::Open => |_, _, _| Transition::to(Door::Open).with(DoorAction::Ring);
            on_entry => |_, _| vec![DoorAction::Enter("closed")];
            on_exit => |_, _| vec![DoorAction::Exit("closed")];
            ignore DoorEvent::Close;
        }
        state Door::Open {
            on DoorEvent::Close => |_, _, _| Transition::to(Door::Closed);
            on DoorEvent::Open => |_, _, _| Transition::to(Door::Open).with(DoorAction::Log("again".into()));
            on DoorEvent::Kick(force) => |_, _, ctx| {
                if *force > ctx.kick_limit {
                    Transition::to(Door::Broken { reason: format!("kicked with force {force}") })
                } else {
                    Transition::stay().with(DoorAction::Log(format!("absorbed {force}")))
                }
            };
            on_entry => |_, _| vec![DoorAction::Enter("open")];
            on_exit => |_, _| vec![DoorAction::Exit("open")];
        }
        state Door::Broken { reason } {
            on DoorEvent::Repair => |_, _, _| Transition::to(Door::Closed).with(DoorAction::Log(format!("fixed: {reason}")));
            ignore _;
        }
    }
}

#[test]
fn first_step_hands_out_the_initial_entry_actions_then_exit_entry_transition() {
    let mut door = door();
    let ctx = DoorCtx::default();
    assert_eq!(
        door.handle(&DoorEvent::Open, &ctx),
        Ok(vec![
            DoorAction::Enter("closed"),
            DoorAction::Exit("closed"),
            DoorAction::Enter("open"),
            DoorAction::Ring,
        ])
    );
    assert_eq!(door.state(), &Door::Open);
    assert_eq!(
        door.handle(&DoorEvent::Close, &ctx),
        Ok(vec![DoorAction::Exit("open"), DoorAction::Enter("closed")])
    );
}

#[test]
fn start_returns_entry_actions_once() {
    let mut door = door();
    let ctx = DoorCtx::default();
    assert!(!door.is_started());
    assert_eq!(door.start(&ctx), vec![DoorAction::Enter("closed")]);
    assert!(door.is_started());
    assert_eq!(door.start(&ctx), vec![]);
    assert_eq!(door.handle(&DoorEvent::Close, &ctx), Ok(vec![]));
}

#[test]
fn self_transition_runs_exit_and_entry_but_stay_runs_no_hooks() {
    let mut door = door();
    let ctx = DoorCtx { kick_limit: 5 };
    door.start(&ctx);
    door.handle(&DoorEvent::Open, &ctx).unwrap();
    assert_eq!(
        door.handle(&DoorEvent::Open, &ctx),
        Ok(vec![
            DoorAction::Exit("open"),
            DoorAction::Enter("open"),
            DoorAction::Log("again".into()),
        ])
    );
    assert_eq!(
        door.handle(&DoorEvent::Kick(2), &ctx),
        Ok(vec![DoorAction::Log("absorbed 2".into())])
    );
    assert_eq!(door.state(), &Door::Open);
}

#[test]
fn handlers_read_event_data_context_and_state_data() {
    let mut door = door();
    let ctx = DoorCtx { kick_limit: 5 };
    door.start(&ctx);
    door.handle(&DoorEvent::Open, &ctx).unwrap();
    door.handle(&DoorEvent::Kick(9), &ctx).unwrap();
    assert_eq!(
        door.state(),
        &Door::Broken {
            reason: "kicked with force 9".into()
        }
    );
    let actions = door.handle(&DoorEvent::Repair, &ctx).unwrap();
    assert_eq!(
        actions.last(),
        Some(&DoorAction::Log("fixed: kicked with force 9".into()))
    );
    assert_eq!(door.state(), &Door::Closed);
}

#[test]
fn ignore_leaves_the_state_alone_and_unhandled_names_state_and_event() {
    let mut door = door();
    let ctx = DoorCtx::default();
    door.start(&ctx);
    assert_eq!(door.handle(&DoorEvent::Close, &ctx), Ok(vec![]));
    let error = door.handle(&DoorEvent::Kick(1), &ctx).unwrap_err();
    assert_eq!(
        error,
        FsmError::Unhandled {
            machine: "Door",
            state: "Closed",
            event: "Kick"
        }
    );
    let message = error.to_string();
    assert!(
        message.contains("event `Kick` in state `Closed`"),
        "{message}"
    );
    assert_eq!(door.state(), &Door::Closed);
}

#[test]
fn ignore_wildcard_swallows_every_other_event() {
    let mut door = door();
    let ctx = DoorCtx::default();
    door.handle(&DoorEvent::Open, &ctx).unwrap();
    door.handle(&DoorEvent::Kick(200), &ctx).unwrap();
    for event in [DoorEvent::Open, DoorEvent::Close, DoorEvent::Kick(1)] {
        assert_eq!(door.handle(&event, &ctx), Ok(vec![]));
    }
    assert!(matches!(door.state(), Door::Broken { .. }));
}

#[test]
fn unhandled_error_does_not_consume_the_initial_entry_actions() {
    let mut door = door();
    let ctx = DoorCtx::default();
    assert!(door.handle(&DoorEvent::Repair, &ctx).is_err());
    assert!(!door.is_started());
    assert_eq!(door.start(&ctx), vec![DoorAction::Enter("closed")]);
}

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Stage {
    Running,
    Draining,
    Failed(String),
}

#[derive(Clone, Debug, EventVariant)]
enum StageEvent {
    Drain,
    Error(String),
    Poke,
}

#[test]
fn any_state_clauses_apply_where_a_state_has_none_and_unhandled_can_fall_back() {
    let mut stage = fsm! {
        state: Stage; event: StageEvent;
        initial: Stage::Running;
        unhandled => |_, _, _| Transition::stay();
        state Stage::Running { on StageEvent::Drain => |_, _, _| Transition::to(Stage::Draining); }
        state Stage::Draining { on StageEvent::Error(_) => |_, _, _| Transition::stay(); }
        state Stage::Failed(_) { ignore _; }
        state _ { on StageEvent::Error(why) => |_, _, _| Transition::to(Stage::Failed(why.clone())); }
    };
    // Poke has no clause anywhere: the unhandled handler stays.
    assert_eq!(stage.handle(&StageEvent::Poke, &()), Ok(vec![]));
    stage.handle(&StageEvent::Drain, &()).unwrap();
    // Draining has its own Error clause, which wins over `state _`.
    stage.handle(&StageEvent::Error("x".into()), &()).unwrap();
    assert_eq!(stage.state(), &Stage::Draining);
    let mut other = stage;
    other.handle(&StageEvent::Poke, &()).unwrap();
    assert_eq!(other.state(), &Stage::Draining);

    // `ignore _` in `state _` covers every pair, `exhaustive;` included.
    let mut running = fsm! {
        state: Stage; event: StageEvent; initial: Stage::Running;
        exhaustive;
        state _ { on StageEvent::Error(why) => |_, _, _| Transition::to(Stage::Failed(why.clone())); ignore _; }
    };
    running.handle(&StageEvent::Poke, &()).unwrap();
    running
        .handle(&StageEvent::Error("disk full".into()), &())
        .unwrap();
    assert_eq!(running.state(), &Stage::Failed("disk full".into()));
}

#[test]
fn or_patterns_select_several_states_and_events() {
    let mut stage = fsm! {
        state: Stage; event: StageEvent; initial: Stage::Running;
        state Stage::Running | Stage::Draining {
            on StageEvent::Drain | StageEvent::Poke => |s, _, _| match s {
                Stage::Running => Transition::to(Stage::Draining),
                _ => Transition::stay(),
            };
            ignore StageEvent::Error(_);
        }
    };
    stage.handle(&StageEvent::Poke, &()).unwrap();
    assert_eq!(stage.state(), &Stage::Draining);
    stage.handle(&StageEvent::Drain, &()).unwrap();
    assert_eq!(stage.state(), &Stage::Draining);
}

#[test]
fn derives_list_names_and_indices_in_declaration_order() {
    assert_eq!(
        <Door as StateVariant>::VARIANT_NAMES,
        ["Closed", "Open", "Broken"]
    );
    assert_eq!(
        <DoorEvent as EventVariant>::VARIANT_NAMES,
        ["Open", "Close", "Kick", "Repair"]
    );
    assert_eq!(DoorEvent::Kick(3).variant_name(), "Kick");
    assert_eq!(DoorEvent::Repair.variant_index(), 3);
    assert_eq!(Stage::Failed(String::new()).variant_name(), "Failed");
}

/// A machine declared inside an `impl` (naming `Self`) and inside a generic
/// function (naming its type parameter in a handler): each handler is a
/// constant of the machine, and constants may name both.
impl Door {
    fn kicked_open<C: Default + 'static>() -> StateMachine<Self, DoorEvent, C> {
        fsm! {
            state: Self; event: DoorEvent; context: C;
            initial: Self::Closed;
            state Self::Closed {
                on DoorEvent::Kick(force) => |_, _, _| {
                    let default_is_free = std::mem::size_of::<C>() == 0;
                    if *force > 3 && default_is_free {
                        Transition::to(Self::Broken { reason: format!("kicked with {force}") })
                    } else {
                        Transition::to(Self::Open)
                    }
                };
            }
            state Self::Broken { reason } {
                on DoorEvent::Repair => |_, _, _| if reason.is_empty() { Transition::stay() } else { Transition::to(Self::Closed) };
            }
        }
    }
}

#[test]
fn a_machine_names_self_and_a_type_parameter_in_its_handlers() {
    let mut door = Door::kicked_open::<()>();
    door.handle(&DoorEvent::Kick(9), &()).unwrap();
    assert_eq!(
        door.state(),
        &Door::Broken {
            reason: "kicked with 9".into()
        }
    );
    door.handle(&DoorEvent::Repair, &()).unwrap();
    assert_eq!(door.state(), &Door::Closed);
    let mut sized = Door::kicked_open::<u64>();
    sized.handle(&DoorEvent::Kick(9), &0).unwrap();
    assert_eq!(sized.state(), &Door::Open);
}
