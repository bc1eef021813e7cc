//! Mermaid and DOT drawings, generated from the same table as the dispatch code.

use obzenflow::fsm::{Edge, Effect, Trigger};
use obzenflow::prelude::*;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Door {
    Closed,
    Open,
    Broken { reason: String },
    Gone,
}

#[derive(Clone, Debug, EventVariant)]
enum DoorEvent {
    Open,
    Close,
    Kick(u8),
    Demolish,
}

fn decide(_: &Door, _: &DoorEvent, _: &()) -> Transition<Door, NoAction> {
    Transition::to(Door::Closed)
}

fn door() -> StateMachine<Door, DoorEvent> {
    fsm! {
        state: Door; event: DoorEvent;
        initial: Door::Closed;
        state Door::Closed {
            on DoorEvent::Open => |_, _, _| Transition::to(Door::Open);
            ignore DoorEvent::Close;
            on DoorEvent::Kick(_) => decide;
        }
        state Door::Open {
            on DoorEvent::Close => |_, _, _| Transition::to(Door::Closed);
            on DoorEvent::Kick(n) => |_, _, _| if *n > 3 {
                Transition::to(Door::Broken { reason: "kick".into() })
            } else {
                Transition::stay()
            };
            timeout Duration::from_secs(30) => |_, _| Transition::to(Door::Closed);
        }
        state Door::Broken { .. } { ignore _; }
        state _ { on DoorEvent::Demolish => |_, _, _| Transition::to(Door::Gone); }
    }
}

#[test]
fn edges_come_from_handler_bodies_and_any_state_clauses() {
    let door = door();
    let states = <Door as StateVariant>::VARIANT_NAMES;
    let edges = door.table().edges(states);
    let edge = |from, to: Option<&'static str>, label: &str| Edge {
        from,
        to,
        label: label.to_owned(),
    };
    assert_eq!(
        edges,
        [
            edge("Closed", Some("Open"), "Open"),
            edge("Closed", None, "Kick"),
            edge("Open", Some("Closed"), "Close"),
            edge("Open", Some("Broken"), "Kick"),
            edge("Open", Some("Open"), "Kick (stay)"),
            edge("Open", Some("Closed"), "timeout"),
            // `state _` reaches every state except Broken, which ignores everything.
            edge("Closed", Some("Gone"), "Demolish"),
            edge("Open", Some("Gone"), "Demolish"),
            edge("Gone", Some("Gone"), "Demolish"),
        ]
    );
}

#[test]
fn the_table_records_ignores_and_triggers() {
    let door = door();
    let table = door.table();
    assert!(
        table
            .entries
            .iter()
            .any(|entry| entry.from == Some("Closed")
                && entry.trigger == Trigger::Event("Close")
                && entry.effect == Effect::Ignore)
    );
    assert!(
        table
            .entries
            .iter()
            .any(|entry| entry.from == Some("Broken") && entry.trigger == Trigger::AnyEvent)
    );
    assert!(
        table
            .entries
            .iter()
            .any(|entry| entry.trigger == Trigger::Timeout)
    );
}

#[test]
fn mermaid_lists_every_state_and_transition() {
    let mermaid = door().to_mermaid();
    let expected = "\
stateDiagram-v2
    [*] --> Closed
    Closed
    Open
    Broken
    Gone
    Closed --> Open: Open
    note right of Closed: on Kick, the next state is chosen at run time
    Open --> Closed: Close
    Open --> Broken: Kick
    Open --> Open: Kick (stay)
    Open --> Closed: timeout
    Closed --> Gone: Demolish
    Open --> Gone: Demolish
    Gone --> Gone: Demolish
";
    assert_eq!(mermaid, expected);
}

#[test]
fn dot_is_a_digraph_named_after_the_state_type() {
    let dot = door().to_dot();
    assert!(dot.starts_with("digraph \"Door\" {\n"), "{dot}");
    assert!(dot.contains("    \"[*]\" -> \"Closed\";\n"), "{dot}");
    assert!(
        dot.contains("    \"Open\" -> \"Broken\" [label=\"Kick\"];\n"),
        "{dot}"
    );
    assert!(
        dot.contains("    \"Closed\" -> \"?\" [label=\"Kick\", style=dashed];\n"),
        "{dot}"
    );
    assert!(dot.contains("    \"Gone\";\n"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
    assert_eq!(dot.matches(" -> ").count(), 1 + 9, "{dot}");
}

#[test]
fn the_initial_state_in_drawings_is_the_one_the_machine_started_in() {
    let machine = fsm! {
        state: Door; event: DoorEvent; initial: Door::Open;
        state Door::Open { on DoorEvent::Close => |_, _, _| Transition::to(Door::Closed); }
    };
    assert!(machine.to_mermaid().contains("[*] --> Open\n"));
}

#[test]
fn dispatch_follows_the_drawn_edges() {
    let mut door = door();
    let mut step = |event: DoorEvent| {
        door.handle(&event, &()).unwrap();
        door.state().variant_name()
    };
    assert_eq!(step(DoorEvent::Close), "Closed"); // ignored
    assert_eq!(step(DoorEvent::Kick(1)), "Closed"); // decided at run time
    assert_eq!(step(DoorEvent::Open), "Open");
    assert_eq!(step(DoorEvent::Kick(1)), "Open"); // stay
    assert_eq!(step(DoorEvent::Kick(9)), "Broken");
    assert_eq!(step(DoorEvent::Demolish), "Broken"); // Broken ignores everything
    let mut closed = self::door();
    closed.handle(&DoorEvent::Demolish, &()).unwrap();
    assert_eq!(closed.state(), &Door::Gone);
}
