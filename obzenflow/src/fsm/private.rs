//! Items that `fsm!` expansions name. Not part of the public API.

pub use super::diagram::{Effect, FsmTable, TableEntry, Trigger};
pub use super::machine::{DispatchFn, FsmDefinition, HookFn, TimeoutFn, TimeoutHandlerFn};
pub use super::transition::{Dispatch, Transition};

/// Calls a transition handler. Taking the handler as a generic argument gives
/// a closure its expected signature (no annotations needed), and a handler of
/// the wrong shape is one error at the handler.
#[inline(always)]
pub fn call_on<S, E, C, A, F>(handler: F, state: &S, event: &E, context: &C) -> Transition<S, A>
where
    F: Fn(&S, &E, &C) -> Transition<S, A>,
{
    handler(state, event, context)
}

/// The same for `on_entry` and `on_exit` hooks, whose actions are appended to
/// the list being built.
#[inline(always)]
pub fn call_hook<S, C, A, F>(handler: F, state: &S, context: &C, actions: &mut Vec<A>)
where
    F: Fn(&S, &C) -> Vec<A>,
{
    let more = handler(state, context);
    if actions.is_empty() {
        *actions = more;
    } else {
        actions.extend(more);
    }
}

/// The same for timeout handlers.
#[inline(always)]
pub fn call_timeout<S, C, A, F>(handler: F, state: &S, context: &C) -> Transition<S, A>
where
    F: Fn(&S, &C) -> Transition<S, A>,
{
    handler(state, context)
}

/// The `_` arm of the closure that holds a clause's code: dispatch calls it
/// only after matching the same variants, so this never runs.
#[cold]
pub fn unreachable_clause() -> ! {
    unreachable!("fsm! calls a clause's code only for the variants it matches") // invariant: the dispatch arm around the call matched the same variants
}

/// Stands in for a missing `initial:` header, which fsm! has already reported
/// as a compile error; this code never runs.
pub fn missing_initial<S>() -> S {
    unreachable!("fsm! reported the missing `initial:` header as a compile error") // invariant: emitted only beside that compile_error!, so never compiled into a program that runs
}

/// Stands in for a machine whose state or event type is missing, which fsm!
/// has already reported as a compile error; this code never runs.
pub fn unknown_machine() -> ! {
    unreachable!("fsm! reported the missing headers as a compile error") // invariant: emitted only beside that compile_error!, so never compiled into a program that runs
}
