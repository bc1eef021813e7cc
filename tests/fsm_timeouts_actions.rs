//! Timeouts under tokio's paused clock, and asynchronous actions executed in order.

use obzenflow::fsm::StepError;
use obzenflow::prelude::*;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Conn {
    Idle,
    Connecting { attempt: u32 },
    Up,
}

#[derive(Clone, Debug, EventVariant)]
enum ConnEvent {
    Dial,
    Connected,
    Ping,
}

#[derive(Clone, Debug, PartialEq)]
enum ConnAction {
    Send(&'static str),
    Note(String),
    Fail,
}

#[derive(Default)]
struct Wire {
    sent: Vec<String>,
}

impl FsmAction<Wire> for ConnAction {
    type Error = String;

    async fn execute(&self, wire: &mut Wire) -> Result<(), String> {
        tokio::task::yield_now().await;
        match self {
            ConnAction::Send(what) => wire.sent.push((*what).to_owned()),
            ConnAction::Note(note) => wire.sent.push(note.clone()),
            ConnAction::Fail => return Err("wire cut".to_owned()),
        }
        Ok(())
    }
}

fn conn() -> StateMachine<Conn, ConnEvent, Wire, ConnAction> {
    fsm! {
        state: Conn; event: ConnEvent; context: Wire; action: ConnAction;
        initial: Conn::Idle;
        exhaustive;
        state Conn::Idle {
            on ConnEvent::Dial => |_, _, _| Transition::to(Conn::Connecting { attempt: 1 }).with(ConnAction::Send("syn"));
            ignore ConnEvent::Connected | ConnEvent::Ping;
        }
        state Conn::Connecting { attempt } {
            on ConnEvent::Connected => |_, _, _| Transition::to(Conn::Up);
            ignore ConnEvent::Dial | ConnEvent::Ping;
            timeout Duration::from_secs(u64::from(*attempt) * 5) => |_, _| {
                if *attempt < 3 {
                    Transition::to(Conn::Connecting { attempt: attempt + 1 }).with(ConnAction::Send("syn"))
                } else {
                    Transition::to(Conn::Idle).with(ConnAction::Note(format!("gave up after {attempt}")))
                }
            };
        }
        state Conn::Up {
            on ConnEvent::Ping => |_, _, _| Transition::stay().with(ConnAction::Send("pong"));
            ignore ConnEvent::Dial | ConnEvent::Connected;
            timeout Duration::from_secs(60) => |_, _| Transition::stay().with(ConnAction::Send("keepalive"));
        }
    }
}

/// Moves the paused clock forward to `deadline`.
async fn advance_to(deadline: Instant) {
    tokio::time::advance(deadline.saturating_duration_since(Instant::now())).await;
}

#[tokio::test(start_paused = true)]
async fn a_state_without_timeout_has_no_deadline() {
    let mut conn = conn();
    let wire = Wire::default();
    conn.start(&wire);
    assert_eq!(conn.deadline(), None);
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(conn.check_timeout(&wire), None);
}

#[tokio::test(start_paused = true)]
async fn timeouts_fire_at_their_deadline_and_restart_on_reentry() {
    let mut conn = conn();
    let wire = Wire::default();
    conn.start(&wire);
    let dialed = Instant::now();
    conn.handle(&ConnEvent::Dial, &wire).unwrap();
    // The duration is read from the state's own data: attempt 1 waits 5 s.
    assert_eq!(conn.deadline(), Some(dialed + Duration::from_secs(5)));

    tokio::time::advance(Duration::from_millis(4_999)).await;
    assert_eq!(conn.check_timeout(&wire), None);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(
        conn.check_timeout(&wire),
        Some(vec![ConnAction::Send("syn")])
    );
    assert_eq!(conn.state(), &Conn::Connecting { attempt: 2 });
    // The self-transition re-entered the state, so its timer restarted: 10 s now.
    assert_eq!(
        conn.deadline(),
        Some(Instant::now() + Duration::from_secs(10))
    );

    advance_to(conn.deadline().unwrap()).await;
    conn.check_timeout(&wire).unwrap();
    advance_to(conn.deadline().unwrap()).await;
    assert_eq!(
        conn.check_timeout(&wire),
        Some(vec![ConnAction::Note("gave up after 3".into())])
    );
    assert_eq!(conn.state(), &Conn::Idle);
    assert_eq!(dialed.elapsed(), Duration::from_secs(5 + 10 + 15));
}

#[tokio::test(start_paused = true)]
async fn an_event_before_the_deadline_cancels_the_timeout() {
    let mut conn = conn();
    let wire = Wire::default();
    conn.handle(&ConnEvent::Dial, &wire).unwrap();
    tokio::time::advance(Duration::from_secs(4)).await;
    conn.handle(&ConnEvent::Connected, &wire).unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(conn.check_timeout(&wire), None);
    assert_eq!(conn.state(), &Conn::Up);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_that_stays_rearms_and_internal_events_do_not_reset_it() {
    let mut conn = conn();
    let wire = Wire::default();
    conn.handle(&ConnEvent::Dial, &wire).unwrap();
    conn.handle(&ConnEvent::Connected, &wire).unwrap();
    let up = Instant::now();
    tokio::time::advance(Duration::from_secs(30)).await;
    // A stay() transition keeps the timer counting from when Up was entered.
    conn.handle(&ConnEvent::Ping, &wire).unwrap();
    assert_eq!(conn.deadline(), Some(up + Duration::from_secs(60)));
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(
        conn.check_timeout(&wire),
        Some(vec![ConnAction::Send("keepalive")])
    );
    assert_eq!(
        conn.deadline(),
        Some(Instant::now() + Duration::from_secs(60))
    );
    assert_eq!(conn.check_timeout(&wire), None);
}

#[tokio::test(start_paused = true)]
async fn check_timeout_at_takes_an_explicit_instant() {
    let mut conn = conn();
    let wire = Wire::default();
    conn.handle(&ConnEvent::Dial, &wire).unwrap();
    let deadline = conn.deadline().unwrap();
    assert_eq!(
        conn.check_timeout_at(deadline - Duration::from_nanos(1), &wire),
        None
    );
    assert!(conn.check_timeout_at(deadline, &wire).is_some());
}

#[tokio::test]
async fn handle_and_execute_runs_actions_in_order_against_the_context() {
    let mut conn = conn();
    let mut wire = Wire::default();
    conn.handle_and_execute(&ConnEvent::Dial, &mut wire)
        .await
        .unwrap();
    conn.handle_and_execute(&ConnEvent::Connected, &mut wire)
        .await
        .unwrap();
    conn.handle_and_execute(&ConnEvent::Ping, &mut wire)
        .await
        .unwrap();
    assert_eq!(wire.sent, ["syn", "pong"]);
}

#[tokio::test]
async fn a_failing_action_stops_the_rest_and_says_which() {
    let mut wire = Wire::default();
    let result = obzenflow::fsm::execute_actions(
        vec![
            ConnAction::Send("a"),
            ConnAction::Fail,
            ConnAction::Send("b"),
        ],
        &mut wire,
    )
    .await;
    let error = result.unwrap_err();
    assert_eq!((error.index, error.total), (1, 3));
    assert_eq!(error.to_string(), "action 1 of 3 failed: wire cut");
    assert_eq!(wire.sent, ["a"]);
}

#[tokio::test]
async fn handle_and_execute_reports_unhandled_events_without_running_anything() {
    #[derive(Clone, Debug, PartialEq, StateVariant)]
    enum One {
        Only,
    }
    let mut machine = fsm! {
        state: One; event: ConnEvent; context: Wire; action: ConnAction;
        initial: One::Only;
        state One::Only { on_entry => |_, _| vec![ConnAction::Send("hello")]; }
    };
    let mut wire = Wire::default();
    let error = machine
        .handle_and_execute(&ConnEvent::Ping, &mut wire)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        StepError::Fsm(FsmError::Unhandled {
            state: "Only",
            event: "Ping",
            ..
        })
    ));
    assert!(wire.sent.is_empty());
}
