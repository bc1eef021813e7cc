//! A door controller: a state machine declared with `fsm!`, driven the way
//! ObzenFlow's supervisors drive theirs. One task owns the machine, waits for
//! either the next event or the current state's deadline, and executes the
//! actions each step returns, in order.
//!
//! Run: `cargo run --release --example door`

use obzenflow::prelude::*;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Door {
    Closed,
    Open { visitors: u32 },
    Broken { reason: String },
}

#[derive(Clone, Debug, EventVariant)]
enum DoorEvent {
    Push,
    Close,
    Kick(u8),
    Repair,
}

#[derive(Debug)]
enum DoorAction {
    Chime,
    Say(String),
    CallTechnician,
}

/// What the actions act on; the handlers only read it.
struct Hall {
    started: Instant,
    strength: u8,
    log: Vec<String>,
}

impl FsmAction<Hall> for DoorAction {
    type Error = std::convert::Infallible;

    async fn execute(&self, hall: &mut Hall) -> Result<(), Self::Error> {
        let line = match self {
            DoorAction::Chime => "ding-dong".to_owned(),
            DoorAction::Say(words) => words.clone(),
            DoorAction::CallTechnician => "calling the technician".to_owned(),
        };
        println!("  [{:>4} ms] {line}", hall.started.elapsed().as_millis());
        hall.log.push(line);
        Ok(())
    }
}

fn door() -> StateMachine<Door, DoorEvent, Hall, DoorAction> {
    fsm! {
        state: Door; event: DoorEvent; context: Hall; action: DoorAction;
        initial: Door::Closed;
        exhaustive;

        state Door::Closed {
            on DoorEvent::Push => |_, _, _| Transition::to(Door::Open { visitors: 1 }).with(DoorAction::Chime);
            ignore DoorEvent::Close | DoorEvent::Repair;
            on_entry => |_, _| vec![DoorAction::Say("door closed".into())];
        }
        state Door::Open { visitors } {
            // Another push while open: one more visitor, and the auto-close timer restarts.
            on DoorEvent::Push => |_, _, _| Transition::to(Door::Open { visitors: visitors + 1 });
            on DoorEvent::Close => |_, _, _| Transition::to(Door::Closed);
            ignore DoorEvent::Repair;
            timeout Duration::from_millis(150) => |_, _| {
                Transition::to(Door::Closed).with(DoorAction::Say(format!("auto-closed after {visitors} visitor(s)")))
            };
        }
        state Door::Broken { reason } {
            on DoorEvent::Repair => |_, _, _| {
                Transition::to(Door::Closed).with(DoorAction::Say(format!("repaired ({reason})")))
            };
            ignore DoorEvent::Push | DoorEvent::Close | DoorEvent::Kick(_);
            on_entry => |_, _| vec![DoorAction::CallTechnician];
        }
        state _ {
            on DoorEvent::Kick(force) => |_, _, hall| {
                if *force > hall.strength {
                    Transition::to(Door::Broken { reason: format!("kicked with force {force}") })
                } else {
                    Transition::stay().with(DoorAction::Say(format!("the door shrugs off a kick of {force}")))
                }
            };
        }
    }
}

/// The supervisor loop: the next event or the state's deadline, whichever
/// comes first; every step's actions executed before the next step.
async fn supervise(mut events: mpsc::Receiver<DoorEvent>, mut hall: Hall) -> Hall {
    let mut door = door();
    let entry = door.start(&hall);
    obzenflow::fsm::execute_actions(entry, &mut hall).await.ok();
    loop {
        let deadline = door.deadline();
        let actions = tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    println!("{:?} in {}", event, door.state().variant_name());
                    match door.handle(&event, &hall) {
                        Ok(actions) => actions,
                        Err(error) => {
                            println!("  {error}");
                            continue;
                        }
                    }
                }
                None => break,
            },
            () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                println!("timeout in {}", door.state().variant_name());
                door.check_timeout(&hall).unwrap_or_default()
            }
        };
        obzenflow::fsm::execute_actions(actions, &mut hall)
            .await
            .ok();
    }
    println!("final state: {:?}", door.state());
    println!(
        "\nThe machine, drawn from its own table (Mermaid):\n\n{}",
        door.to_mermaid()
    );
    hall
}

#[tokio::main]
async fn main() {
    let (send, receive) = mpsc::channel(8);
    let hall = Hall {
        started: Instant::now(),
        strength: 5,
        log: Vec::new(),
    };
    let supervisor = tokio::spawn(supervise(receive, hall));

    let script = [
        (0, DoorEvent::Push),
        (50, DoorEvent::Push),
        // Silence: the door closes itself 150 ms after the second push.
        (300, DoorEvent::Push),
        (20, DoorEvent::Kick(3)),
        (20, DoorEvent::Kick(9)),
        (20, DoorEvent::Push),
        (20, DoorEvent::Repair),
        (20, DoorEvent::Close),
    ];
    for (pause_ms, event) in script {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        if send.send(event).await.is_err() {
            break;
        }
    }
    drop(send);
    let hall = supervisor
        .await
        .expect("the supervisor task does not panic");
    println!("{} actions executed", hall.log.len());
}
