//! The rules of a well-formed `fsm!`, one function per rule. Every violation is
//! reported with its span; the clauses that break a rule are dropped from the
//! model, so the expansion that follows is still well typed and one mistake
//! gives one error.

use super::parse::{Clause, FsmInput, HeaderValue, Selector, StateClause, VariantPat};
use crate::diagnostics::{Diagnostics, line_of, written};
use proc_macro2::Span;
use std::collections::HashMap;
use syn::{Expr, Type};

/// A machine that passed the checks (or the part of it that did).
pub(crate) struct Model {
    pub(crate) state_ty: Type,
    pub(crate) event_ty: Type,
    pub(crate) context_ty: Option<Type>,
    pub(crate) action_ty: Option<Type>,
    /// `None` when the header is missing (already reported).
    pub(crate) initial: Option<Expr>,
    pub(crate) exhaustive: Option<Span>,
    pub(crate) unhandled: Option<Expr>,
    pub(crate) states: Vec<StateClause>,
}

/// Checks `input`; returns `None` only when the state or event type is missing,
/// the two things without which no value of the right type can be produced.
pub(crate) fn validate(input: FsmInput, diagnostics: &mut Diagnostics) -> Option<Model> {
    let FsmInput {
        headers,
        exhaustive,
        unhandled,
        mut states,
        misspelled_headers,
    } = input;

    let mut state_ty = None;
    let mut event_ty = None;
    let mut context_ty = None;
    let mut action_ty = None;
    let mut initial = None;
    let last_header = headers.last().map(|header| header.key.span());
    let mut seen: HashMap<String, Span> = HashMap::new();
    for header in headers {
        let name = header.key.to_string();
        if let Some(first) = seen.get(&name) {
            diagnostics.error(
                header.key.span(),
                format!(
                    "`{name}:` is given twice; the first is on {}",
                    line_of(*first)
                ),
            );
            continue;
        }
        seen.insert(name.clone(), header.key.span());
        match (name.as_str(), header.value) {
            ("state", HeaderValue::Type(ty)) => state_ty = Some(ty),
            ("event", HeaderValue::Type(ty)) => event_ty = Some(ty),
            ("context", HeaderValue::Type(ty)) => context_ty = Some(ty),
            ("action", HeaderValue::Type(ty)) => action_ty = Some(ty),
            (_, HeaderValue::Expr(expr)) => initial = Some(expr),
            (_, HeaderValue::Type(_)) => {}
        }
    }
    // A header reported as misspelled is not reported again as missing.
    // The examples are taken from the clauses where they can be: the enum of
    // the first state and event variants, the first state given by a path.
    let (first_state, first_event) = first_variants(&states);
    let enum_of = |path: &str| {
        path.rsplit_once("::")
            .map(|(enum_path, _)| enum_path.to_owned())
    };
    let state_example = format!(
        "state: {};",
        first_state
            .as_deref()
            .and_then(enum_of)
            .unwrap_or_else(|| "MyState".to_owned())
    );
    let event_example = format!(
        "event: {};",
        first_event
            .as_deref()
            .and_then(enum_of)
            .unwrap_or_else(|| "MyEvent".to_owned())
    );
    let initial_example = format!(
        "initial: {};",
        first_state
            .clone()
            .unwrap_or_else(|| "MyState::First".to_owned())
    );
    let missing: Vec<String> = [
        ("state", state_example, state_ty.is_some()),
        ("event", event_example, event_ty.is_some()),
        ("initial", initial_example, initial.is_some()),
    ]
    .into_iter()
    .filter(|(key, _, present)| !present && !misspelled_headers.contains(key))
    .map(|(_, example, _)| example)
    .collect();
    if !missing.is_empty() {
        // At the last header given, after which the missing ones go.
        let (span, place) = match last_header {
            Some(span) => (span, " after this one"),
            None => (Span::call_site(), ""),
        };
        diagnostics.error(
            span,
            format!(
                "fsm! is missing {}: add `{}`{place}",
                if missing.len() == 1 {
                    "a required header"
                } else {
                    "required headers"
                },
                missing.join(" ")
            ),
        );
    }

    let exhaustive = single(exhaustive, "exhaustive;", diagnostics);
    let unhandled = single_expr(unhandled, diagnostics);
    if let (Some(exhaustive), Some(_)) = (exhaustive, &unhandled) {
        diagnostics.error(
            exhaustive,
            "`exhaustive;` makes every (state, event) pair handled or ignored, so the \
             `unhandled` handler could never run: remove one of the two",
        );
    }

    check_states(&mut states, diagnostics);
    for state in &mut states {
        check_clauses(state, diagnostics);
    }

    Some(Model {
        state_ty: state_ty?,
        event_ty: event_ty?,
        context_ty,
        action_ty,
        initial,
        exhaustive,
        unhandled,
        states,
    })
}

/// Keeps the first of a flag given several times, reporting the others.
fn single(spans: Vec<Span>, what: &str, diagnostics: &mut Diagnostics) -> Option<Span> {
    let first = *spans.first()?;
    for repeat in &spans[1..] {
        diagnostics.error(
            *repeat,
            format!(
                "`{what}` is given twice; the first is on {}",
                line_of(first)
            ),
        );
    }
    Some(first)
}

fn single_expr(handlers: Vec<(Span, Expr)>, diagnostics: &mut Diagnostics) -> Option<Expr> {
    let mut handlers = handlers.into_iter();
    let (first, handler) = handlers.next()?;
    for (repeat, _) in handlers {
        diagnostics.error(
            repeat,
            format!(
                "a machine has one `unhandled` handler; the first is on {}",
                line_of(first)
            ),
        );
    }
    Some(handler)
}

/// Each state variant has at most one clause, and there is at most one `state _`.
fn check_states(states: &mut Vec<StateClause>, diagnostics: &mut Diagnostics) {
    let mut first_clause: HashMap<String, Span> = HashMap::new();
    let mut any: Option<Span> = None;
    states.retain_mut(|clause| match &mut clause.selector {
        Selector::Any(span) => {
            if let Some(first) = any {
                diagnostics.error(
                    *span,
                    format!(
                        "`state _` is given twice; merge it into the first, on {}",
                        line_of(first)
                    ),
                );
                return false;
            }
            any = Some(*span);
            true
        }
        Selector::Variants(variants) => {
            variants.retain(|variant| {
                let name = variant.variant.to_string();
                if let Some(first) = first_clause.get(&name) {
                    diagnostics.error(
                        variant.variant.span(),
                        format!(
                            "state `{name}` already has a clause on {}; put all of a \
                             state's clauses in one `state` block",
                            line_of(*first)
                        ),
                    );
                    return false;
                }
                first_clause.insert(name, variant.variant.span());
                true
            });
            !variants.is_empty()
        }
    });
}

/// Within one state: one clause per event, one catch-all `ignore _`, at most one
/// `on_entry`, `on_exit` and `timeout`; `state _` takes only `on` and `ignore`.
fn check_clauses(state: &mut StateClause, diagnostics: &mut Diagnostics) {
    let is_any_state = matches!(state.selector, Selector::Any(_));
    let state_names = state_names(&state.selector);
    let mut first_for_event: HashMap<String, Span> = HashMap::new();
    let mut ignore_all: Option<Span> = None;
    let mut hooks: HashMap<&'static str, Span> = HashMap::new();

    state.clauses.retain_mut(|clause| match clause {
        Clause::On { events, .. } => match events {
            Selector::Any(span) => {
                diagnostics.error(
                    *span,
                    "`on _` would handle every event alike: name the events, use \
                     `ignore _;` for the rest, or give the machine an `unhandled` handler",
                );
                false
            }
            Selector::Variants(variants) => {
                keep_new_events(variants, &mut first_for_event, &state_names, diagnostics);
                !variants.is_empty()
            }
        },
        Clause::Ignore { events, .. } => match events {
            Selector::Any(span) => {
                if let Some(first) = ignore_all {
                    diagnostics.error(
                        *span,
                        format!(
                            "`ignore _` is given twice; the first is on {}",
                            line_of(first)
                        ),
                    );
                    return false;
                }
                ignore_all = Some(*span);
                true
            }
            Selector::Variants(variants) => {
                keep_new_events(variants, &mut first_for_event, &state_names, diagnostics);
                !variants.is_empty()
            }
        },
        Clause::OnEntry { keyword, .. } => {
            once_per_state("on_entry", *keyword, is_any_state, &mut hooks, diagnostics)
        }
        Clause::OnExit { keyword, .. } => {
            once_per_state("on_exit", *keyword, is_any_state, &mut hooks, diagnostics)
        }
        Clause::Timeout { keyword, .. } => {
            once_per_state("timeout", *keyword, is_any_state, &mut hooks, diagnostics)
        }
    });
}

fn state_names(selector: &Selector) -> String {
    match selector {
        Selector::Any(_) => "any state (`state _`)".to_owned(),
        Selector::Variants(variants) => variants
            .iter()
            .map(|v| format!("`{}`", v.variant))
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

fn keep_new_events(
    variants: &mut Vec<VariantPat>,
    first_for_event: &mut HashMap<String, Span>,
    state_names: &str,
    diagnostics: &mut Diagnostics,
) {
    variants.retain(|variant| {
        let event = variant.variant.to_string();
        if let Some(first) = first_for_event.get(&event) {
            diagnostics.error(
                variant.variant.span(),
                format!(
                    "event `{event}` in state {state_names} already has a clause on {}; \
                     each (state, event) pair takes one `on` or `ignore`",
                    line_of(*first)
                ),
            );
            return false;
        }
        first_for_event.insert(event, variant.variant.span());
        true
    });
}

fn once_per_state(
    hook: &'static str,
    keyword: Span,
    is_any_state: bool,
    seen: &mut HashMap<&'static str, Span>,
    diagnostics: &mut Diagnostics,
) -> bool {
    if is_any_state {
        diagnostics.error(
            keyword,
            format!(
                "`{hook}` cannot be given for `state _`: it belongs to one state; \
                 `state _` takes `on` and `ignore` clauses"
            ),
        );
        return false;
    }
    if let Some(first) = seen.get(hook) {
        diagnostics.error(
            keyword,
            format!("this state already has `{hook}` on {}", line_of(*first)),
        );
        return false;
    }
    seen.insert(hook, keyword);
    true
}

/// The first state variant written as a bare path, and the first event
/// variant's path, as written: examples for a missing header.
fn first_variants(states: &[StateClause]) -> (Option<String>, Option<String>) {
    let state = states.iter().find_map(|state| match &state.selector {
        Selector::Variants(variants) => variants.iter().find_map(|v| v.bare.clone()),
        Selector::Any(_) => None,
    });
    let event = states
        .iter()
        .flat_map(|state| &state.clauses)
        .find_map(|clause| match clause {
            Clause::On {
                events: Selector::Variants(events),
                ..
            }
            | Clause::Ignore {
                events: Selector::Variants(events),
                ..
            } => events.iter().find_map(|v| {
                written(&v.any)
                    .split_once('{')
                    .map(|(path, _)| path.to_owned())
            }),
            _ => None,
        });
    (state, event)
}
