//! Dispatching events through a machine declared with `fsm!`, against the same
//! machine written by hand as a `match` over the same enums, in the same run.
//!
//! The machine is a stage lifecycle like the runtime's supervisors: entry
//! hooks, data carried in a state, an `ignore`, a `state _` clause. Both
//! versions return the same actions for the same events (checked before
//! timing). Goal: `fsm!` within 2x of the hand-written match.
//!
//! Run: `cargo bench --bench fsm_dispatch`

mod support;

use criterion::Throughput;
use obzenflow::prelude::*;
use std::hint::black_box;

#[derive(Clone, Debug, PartialEq, StateVariant)]
enum Stage {
    Created,
    Initialized,
    Running { processed: u64 },
    Draining { processed: u64 },
    Drained,
    Failed,
}

#[derive(Clone, Debug, EventVariant)]
enum StageEvent {
    Initialize,
    Start,
    Batch(u32),
    BeginDrain,
    DrainComplete,
    Error,
    Reset,
}

#[derive(Clone, Debug, PartialEq)]
enum StageAction {
    Announce,
    Flush,
    Report(u64),
}

struct Ctx {
    report_every: u64,
}

fn generated() -> StateMachine<Stage, StageEvent, Ctx, StageAction> {
    fsm! {
        state: Stage; event: StageEvent; context: Ctx; action: StageAction;
        initial: Stage::Created;
        state Stage::Created {
            on StageEvent::Initialize => |_, _, _| Transition::to(Stage::Initialized);
        }
        state Stage::Initialized {
            on StageEvent::Start => |_, _, _| Transition::to(Stage::Running { processed: 0 }).with(StageAction::Announce);
        }
        state Stage::Running { processed } {
            on StageEvent::Batch(n) => |_, _, ctx| {
                let total = processed + u64::from(*n);
                let next = Transition::to(Stage::Running { processed: total });
                if total % ctx.report_every < u64::from(*n) {
                    next.with(StageAction::Report(total))
                } else {
                    next
                }
            };
            on StageEvent::BeginDrain => |_, _, _| Transition::to(Stage::Draining { processed: *processed });
        }
        state Stage::Draining { processed } {
            on StageEvent::DrainComplete => |_, _, _| Transition::to(Stage::Drained).with(StageAction::Report(*processed));
            ignore StageEvent::Batch(_);
            on_entry => |_, _| vec![StageAction::Flush];
        }
        state Stage::Drained | Stage::Failed {
            on StageEvent::Reset => |_, _, _| Transition::to(Stage::Created);
        }
        state _ {
            on StageEvent::Error => |_, _, _| Transition::to(Stage::Failed);
        }
    }
}

/// The same machine as someone would write it without `fsm!`.
struct HandWritten {
    state: Stage,
}

impl HandWritten {
    fn handle(&mut self, event: &StageEvent, ctx: &Ctx) -> Result<Vec<StageAction>, FsmError> {
        let (next, actions) = match (&self.state, event) {
            (Stage::Created, StageEvent::Initialize) => (Stage::Initialized, Vec::new()),
            (Stage::Initialized, StageEvent::Start) => {
                (Stage::Running { processed: 0 }, vec![StageAction::Announce])
            }
            (Stage::Running { processed }, StageEvent::Batch(n)) => {
                let total = processed + u64::from(*n);
                let actions = if total % ctx.report_every < u64::from(*n) {
                    vec![StageAction::Report(total)]
                } else {
                    Vec::new()
                };
                (Stage::Running { processed: total }, actions)
            }
            (Stage::Running { processed }, StageEvent::BeginDrain) => (
                Stage::Draining {
                    processed: *processed,
                },
                Vec::new(),
            ),
            (Stage::Draining { processed }, StageEvent::DrainComplete) => {
                (Stage::Drained, vec![StageAction::Report(*processed)])
            }
            (Stage::Draining { .. }, StageEvent::Batch(_)) => return Ok(Vec::new()),
            (Stage::Drained | Stage::Failed, StageEvent::Reset) => (Stage::Created, Vec::new()),
            (_, StageEvent::Error) => (Stage::Failed, Vec::new()),
            (state, event) => {
                return Err(FsmError::Unhandled {
                    machine: "Stage",
                    state: state.variant_name(),
                    event: event.variant_name(),
                });
            }
        };
        self.state = next;
        if matches!(self.state, Stage::Draining { .. }) {
            let mut all = vec![StageAction::Flush];
            all.extend(actions);
            return Ok(all);
        }
        Ok(actions)
    }
}

/// A lifecycle with mostly data batches, a drain (with an ignored batch), a
/// reset, and an error now and then.
fn events() -> Vec<StageEvent> {
    let mut events = Vec::new();
    for round in 0..20u32 {
        events.extend([StageEvent::Initialize, StageEvent::Start]);
        events.extend((0..40).map(|i| StageEvent::Batch(1 + (i * 7 + round) % 64)));
        if round % 5 == 4 {
            events.extend([StageEvent::Error, StageEvent::Reset]);
            continue;
        }
        events.extend([
            StageEvent::BeginDrain,
            StageEvent::Batch(1),
            StageEvent::DrainComplete,
            StageEvent::Reset,
        ]);
    }
    events
}

fn main() {
    let events = events();
    let ctx = Ctx { report_every: 100 };

    // Both versions must do the same thing before their speed is compared.
    let mut fsm = generated();
    fsm.start(&ctx);
    let mut hand = HandWritten {
        state: Stage::Created,
    };
    for event in &events {
        assert_eq!(fsm.handle(event, &ctx), hand.handle(event, &ctx));
        assert_eq!(fsm.state(), &hand.state);
    }

    let mut criterion = support::criterion();
    let mut group = criterion.benchmark_group("fsm_dispatch");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("fsm", |b| {
        let mut machine = generated();
        machine.start(&ctx);
        b.iter(|| {
            for event in &events {
                black_box(machine.handle(black_box(event), &ctx).ok());
            }
        });
    });
    group.bench_function("hand_written", |b| {
        let mut machine = HandWritten {
            state: Stage::Created,
        };
        b.iter(|| {
            for event in &events {
                black_box(machine.handle(black_box(event), &ctx).ok());
            }
        });
    });
    group.finish();
    criterion.final_summary();
    support::print_ratio(
        "fsm_dispatch",
        "fsm",
        "hand_written",
        events.len() as u64,
        "goal: fsm! within 2.00x of the hand-written match",
    );
}
