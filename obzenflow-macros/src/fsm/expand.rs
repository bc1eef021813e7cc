//! Code generation for `fsm!`. The machine becomes a `StateMachine` value whose
//! definition holds plain function pointers: `dispatch` is a `match` on the
//! state with a nested `match` on the event, each arm written with the user's
//! own variant paths (so a misspelled variant is a rustc error at the user's
//! token), and the handlers inlined into the arms. No strings, no maps, no
//! allocation, no boxed future on the dispatch path.
//!
//! Each piece of user code (a handler, a hook, a timeout's duration) sits in a
//! closure of its own inside `const { }`, called where the arm needs it: see
//! [`constant`].
//!
//! Precedence, documented on `fsm!`: a state's own `on`/`ignore` clauses, then
//! its `ignore _`, then the clauses of `state _`, then `unhandled`.

use super::parse::{Clause, Selector, StateClause, VariantPat};
use super::table::table;
use super::validate::Model;
use crate::diagnostics::first_span;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;

struct Types {
    state: TokenStream,
    event: TokenStream,
    context: TokenStream,
    action: TokenStream,
    private: TokenStream,
}

pub(crate) fn machine(model: &Model) -> TokenStream {
    let types = Types {
        state: model.state_ty.to_token_stream(),
        event: model.event_ty.to_token_stream(),
        context: model
            .context_ty
            .as_ref()
            .map_or_else(|| quote!(()), ToTokens::to_token_stream),
        action: model.action_ty.as_ref().map_or_else(
            || quote!(::obzenflow::fsm::NoAction),
            ToTokens::to_token_stream,
        ),
        private: quote!(::obzenflow::fsm::__private),
    };
    let Types {
        state: s,
        event: e,
        context: c,
        action: a,
        private: p,
    } = &types;

    let dispatch = dispatch(model, &types);
    let on_entry = hook(model, &types, |clause| match clause {
        Clause::OnEntry { handler, .. } => Some(handler),
        _ => None,
    });
    let on_exit = hook(model, &types, |clause| match clause {
        Clause::OnExit { handler, .. } => Some(handler),
        _ => None,
    });
    let (timeout, on_timeout) = timeouts(model, &types);
    let exhaustive = model
        .exhaustive
        .map(|span| exhaustiveness_check(model, &types, span));
    let table = table(model, p);
    let initial = match &model.initial {
        Some(initial) => quote_spanned!(initial.span()=> { let initial: #s = #initial; initial }),
        None => quote!(#p::missing_initial::<#s>()),
    };

    quote! {
        #exhaustive
        #[allow(unused_variables, unreachable_patterns)]
        let __obzenflow_definition = #p::FsmDefinition::<#s, #e, #c, #a> {
            dispatch: #dispatch,
            on_entry: #on_entry,
            on_exit: #on_exit,
            timeout: #timeout,
            on_timeout: #on_timeout,
            table: &#table,
        };
        ::obzenflow::fsm::StateMachine::new(__obzenflow_definition, #initial)
    }
}

/// The variants with no bindings, joined with `|`.
fn any_of(variants: &[VariantPat]) -> TokenStream {
    let pats = variants.iter().map(|v| &v.any);
    quote!(#(#pats)|*)
}

fn patterns(variants: &[VariantPat]) -> TokenStream {
    let pats = variants.iter().map(|v| &v.pattern);
    quote!(#(#pats)|*)
}

/// The `match event` arms of one state clause: its `on` and `ignore` clauses.
fn event_arms(state: &StateClause, types: &Types) -> TokenStream {
    let p = &types.private;
    let mut arms = TokenStream::new();
    for clause in &state.clauses {
        match clause {
            Clause::On {
                events: Selector::Variants(events),
                handler,
                ..
            } => {
                let call = constant(
                    Code::On(handler),
                    Matched {
                        states: state_patterns(&state.selector),
                        events: Some(patterns(events)),
                    },
                    types,
                );
                let pats = any_of(events);
                arms.extend(quote!(#pats => #p::Dispatch::Transition(#call),));
            }
            Clause::Ignore {
                events: Selector::Variants(events),
                ..
            } => {
                let pats = any_of(events);
                arms.extend(quote!(#pats => #p::Dispatch::Ignored,));
            }
            _ => {}
        }
    }
    arms
}

fn ignores_all(state: &StateClause) -> bool {
    state.clauses.iter().any(|clause| {
        matches!(
            clause,
            Clause::Ignore {
                events: Selector::Any(_),
                ..
            }
        )
    })
}

fn dispatch(model: &Model, types: &Types) -> TokenStream {
    let Types {
        state: s,
        event: e,
        context: c,
        action: a,
        private: p,
    } = types;
    let unhandled = match &model.unhandled {
        Some(handler) => {
            let call = constant(
                Code::On(handler),
                Matched {
                    states: quote!(_),
                    events: Some(quote!(_)),
                },
                types,
            );
            quote!(#p::Dispatch::Transition(#call))
        }
        None => quote!(#p::Dispatch::Unhandled),
    };
    let any_state = model
        .states
        .iter()
        .find(|state| matches!(state.selector, Selector::Any(_)));
    let (any_fn, fallback) = match any_state {
        Some(any) => {
            let arms = event_arms(any, types);
            let rest = if ignores_all(any) {
                quote!(#p::Dispatch::Ignored)
            } else {
                unhandled
            };
            (
                quote! {
                    let __obzenflow_any_state = |state: &#s, event: &#e, ctx: &#c| -> #p::Dispatch<#s, #a> {
                        match event { #arms _ => #rest }
                    };
                },
                quote!(__obzenflow_any_state(state, event, ctx)),
            )
        }
        None => (TokenStream::new(), unhandled),
    };
    let state_arms = model.states.iter().filter_map(|state| {
        let Selector::Variants(variants) = &state.selector else {
            return None;
        };
        let pats = any_of(variants);
        let arms = event_arms(state, types);
        let rest = if ignores_all(state) {
            quote!(#p::Dispatch::Ignored)
        } else {
            fallback.clone()
        };
        Some(quote!(#pats => match event { #arms _ => #rest },))
    });
    quote! {
        |state: &#s, event: &#e, ctx: &#c| -> #p::Dispatch<#s, #a> {
            #any_fn
            match state {
                #(#state_arms)*
                _ => #fallback,
            }
        }
    }
}

/// `on_entry` or `on_exit`: `None` when no state has one, so the machine skips
/// the call entirely.
fn hook(model: &Model, types: &Types, pick: impl Fn(&Clause) -> Option<&syn::Expr>) -> TokenStream {
    let Types {
        state: s,
        context: c,
        action: a,
        ..
    } = types;
    let arms: Vec<TokenStream> = model
        .states
        .iter()
        .filter_map(|state| {
            let Selector::Variants(variants) = &state.selector else {
                return None;
            };
            let handler = state.clauses.iter().find_map(&pick)?;
            let call = constant(
                Code::Hook(handler),
                Matched {
                    states: patterns(variants),
                    events: None,
                },
                types,
            );
            let pats = any_of(variants);
            Some(quote!(#pats => #call,))
        })
        .collect();
    if arms.is_empty() {
        return quote!(::core::option::Option::None);
    }
    quote! {
        ::core::option::Option::Some(|state: &#s, ctx: &#c, actions: &mut ::std::vec::Vec<#a>| {
            match state { #(#arms)* _ => {} }
        })
    }
}

fn timeouts(model: &Model, types: &Types) -> (TokenStream, TokenStream) {
    let Types {
        state: s,
        context: c,
        action: a,
        private: p,
        ..
    } = types;
    let mut duration_arms = Vec::new();
    let mut handler_arms = Vec::new();
    for state in &model.states {
        let Selector::Variants(variants) = &state.selector else {
            continue;
        };
        for clause in &state.clauses {
            if let Clause::Timeout {
                duration, handler, ..
            } = clause
            {
                let matched = || Matched {
                    states: patterns(variants),
                    events: None,
                };
                let duration = constant(Code::Duration(duration), matched(), types);
                let call = constant(Code::Timeout(handler), matched(), types);
                let pats = any_of(variants);
                duration_arms.push(quote!(#pats => ::core::option::Option::Some(#duration),));
                handler_arms.push(quote!(#pats => #call,));
            }
        }
    }
    if duration_arms.is_empty() {
        let none = quote!(::core::option::Option::None);
        return (none.clone(), none);
    }
    (
        quote! {
            ::core::option::Option::Some(|state: &#s| -> ::core::option::Option<::core::time::Duration> {
                match state { #(#duration_arms)* _ => ::core::option::Option::None }
            })
        },
        quote! {
            ::core::option::Option::Some(|state: &#s, ctx: &#c| -> #p::Transition<#s, #a> {
                match state { #(#handler_arms)* _ => #p::Transition::stay() }
            })
        },
    )
}

/// The patterns a piece of user code is reached by, with their bindings:
/// its state clause's and, for a transition handler, its event's.
struct Matched {
    states: TokenStream,
    events: Option<TokenStream>,
}

/// `state _` binds nothing; variants bind what their patterns bind.
fn state_patterns(selector: &Selector) -> TokenStream {
    match selector {
        Selector::Any(_) => quote!(_),
        Selector::Variants(variants) => patterns(variants),
    }
}

/// A piece of user code, by what it is for.
enum Code<'a> {
    /// A transition handler (`on`, `unhandled`): `(state, event, context)`.
    On(&'a syn::Expr),
    /// An `on_entry` or `on_exit` hook: `(state, context)`, its actions appended.
    Hook(&'a syn::Expr),
    /// A timeout's duration, which may read the state's fields.
    Duration(&'a syn::Expr),
    /// A timeout's handler: `(state, context)`.
    Timeout(&'a syn::Expr),
}

/// A piece of user code as a call of a closure that is a constant:
/// `(const { |params| -> ret { match (state, event) { (pats) => code, _ => .. } } })(args)`.
///
/// Being a constant, the closure captures nothing, and that is the rule for
/// user code in a machine (it is built once, as plain function pointers). A
/// handler that uses a local from around `fsm!` is then one error at that
/// local, instead of a fn-pointer mismatch spanning the whole block. The
/// closure binds its clause's fields itself; the dispatch `match` around the
/// call matched the same variants (without bindings), so its `_` arm is never
/// taken. The closure's type is known where it is called, so the call is
/// inlined as a handler written in the arm would be.
fn constant(code: Code<'_>, matched: Matched, types: &Types) -> TokenStream {
    let Types {
        state: s,
        event: e,
        context: c,
        action: a,
        private: p,
    } = types;
    let (span, params, ret, body, args) = match code {
        Code::On(handler) => {
            let span = first_span(handler);
            (
                span,
                quote_spanned!(span=> state: &#s, event: &#e, ctx: &#c),
                quote_spanned!(span=> #p::Transition<#s, #a>),
                quote_spanned!(span=> #p::call_on::<#s, #e, #c, #a, _>(#handler, state, event, ctx)),
                quote!(state, event, ctx),
            )
        }
        Code::Hook(handler) => {
            let span = first_span(handler);
            (
                span,
                quote_spanned!(span=> state: &#s, ctx: &#c, actions: &mut ::std::vec::Vec<#a>),
                quote!(()),
                quote_spanned!(span=> #p::call_hook::<#s, #c, #a, _>(#handler, state, ctx, actions)),
                quote!(state, ctx, actions),
            )
        }
        Code::Duration(duration) => {
            let span = duration.span();
            (
                span,
                quote_spanned!(span=> state: &#s),
                quote!(::core::time::Duration),
                quote_spanned!(span=> { let timeout: ::core::time::Duration = #duration; timeout }),
                quote!(state),
            )
        }
        Code::Timeout(handler) => {
            let span = first_span(handler);
            (
                span,
                quote_spanned!(span=> state: &#s, ctx: &#c),
                quote_spanned!(span=> #p::Transition<#s, #a>),
                quote_spanned!(span=> #p::call_timeout::<#s, #c, #a, _>(#handler, state, ctx)),
                quote!(state, ctx),
            )
        }
    };
    let Matched { states, events } = matched;
    let (scrutinee, pattern) = match events {
        Some(events) => (quote!((state, event)), quote!((#states, #events))),
        None => (quote!(state), states),
    };
    quote_spanned! {span=>
        (const {
            #[allow(unused_variables, unreachable_patterns)]
            let code = |#params| -> #ret {
                match #scrutinee {
                    #pattern => #body,
                    _ => #p::unreachable_clause(),
                }
            };
            code
        })(#args)
    }
}

/// Under `exhaustive;`: a closure that is never called, holding one `match`
/// on `(state, event)` with an arm per clause and no catch-all, so rustc's own
/// exhaustiveness check names every missing (state, event) pair, at the
/// `exhaustive` keyword. `state _` clauses cover their events in every state,
/// and `ignore _` every event of its state, exactly as dispatch lets them.
fn exhaustiveness_check(model: &Model, types: &Types, exhaustive: Span) -> TokenStream {
    let Types {
        state: s, event: e, ..
    } = types;
    let mut arms = Vec::new();
    for state in &model.states {
        let states = match &state.selector {
            Selector::Any(_) => quote!(_),
            Selector::Variants(variants) => any_of(variants),
        };
        for clause in &state.clauses {
            let events = match clause {
                Clause::On {
                    events: Selector::Variants(events),
                    ..
                }
                | Clause::Ignore {
                    events: Selector::Variants(events),
                    ..
                } => any_of(events),
                Clause::Ignore {
                    events: Selector::Any(_),
                    ..
                } => quote!(_),
                _ => continue,
            };
            arms.push(parenthesized_at(quote!(#states, #events), exhaustive));
        }
    }
    // The covered pairs as one pattern of a closure's argument, in
    // parentheses spanned at `exhaustive`: rustc lists the pairs it does not
    // cover there, and proposes no `match` arm (none can go inside `fsm!`).
    let covered = parenthesized_at(quote!(#(#arms)|*), exhaustive);
    let ty = quote_spanned!(exhaustive=> : (&#s, &#e));
    quote! {
        #[allow(unused_variables, unreachable_patterns, unused_parens)]
        let _ = |#covered #ty| {};
    }
}

/// `(tokens)`, the parentheses at `span`: a pattern made of them spans
/// `span` whatever tokens it holds.
fn parenthesized_at(tokens: TokenStream, span: Span) -> proc_macro2::Group {
    let mut group = proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, tokens);
    group.set_span(span);
    group
}
