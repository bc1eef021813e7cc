//! The machine's transition table as static data, for the diagrams that
//! `StateMachine::to_mermaid` and `to_dot` draw. It is read off the same
//! clauses the dispatch code is generated from.
//!
//! A handler's possible target states are found by reading its tokens for
//! `Transition::to(Path::Variant ...)` (a target) and `Transition::stay()` (no
//! state change). A handler whose body is out of sight (a function name) has
//! targets decided at run time, which the table records as such.

use super::parse::{Clause, Selector, StateClause};
use super::validate::Model;
use proc_macro2::{TokenStream, TokenTree};
use quote::quote;
use syn::Expr;

pub(crate) fn table(model: &Model, private: &TokenStream) -> TokenStream {
    let state_type = type_name(&model.state_ty);
    let event_type = type_name(&model.event_ty);
    let mut entries = Vec::new();
    for state in &model.states {
        let froms: Vec<TokenStream> = match &state.selector {
            Selector::Any(_) => vec![quote!(::core::option::Option::None)],
            Selector::Variants(variants) => variants
                .iter()
                .map(|v| {
                    let name = v.variant.to_string();
                    quote!(::core::option::Option::Some(#name))
                })
                .collect(),
        };
        for from in &froms {
            for (trigger, effect) in state_entries(state, private) {
                entries.push(quote! {
                    #private::TableEntry { from: #from, trigger: #trigger, effect: #effect }
                });
            }
        }
    }
    quote! {
        #private::FsmTable {
            state_type: #state_type,
            event_type: #event_type,
            entries: &[#(#entries),*],
        }
    }
}

fn type_name(ty: &syn::Type) -> String {
    quote!(#ty).to_string().replace(' ', "")
}

fn state_entries(state: &StateClause, private: &TokenStream) -> Vec<(TokenStream, TokenStream)> {
    let mut out = Vec::new();
    let event_triggers = |events: &Selector| -> Vec<TokenStream> {
        match events {
            Selector::Any(_) => vec![quote!(#private::Trigger::AnyEvent)],
            Selector::Variants(variants) => variants
                .iter()
                .map(|v| {
                    let name = v.variant.to_string();
                    quote!(#private::Trigger::Event(#name))
                })
                .collect(),
        }
    };
    for clause in &state.clauses {
        match clause {
            Clause::On {
                events, handler, ..
            } => {
                let effect = handler_effect(handler, private);
                for trigger in event_triggers(events) {
                    out.push((trigger, effect.clone()));
                }
            }
            Clause::Ignore { events, .. } => {
                for trigger in event_triggers(events) {
                    out.push((trigger, quote!(#private::Effect::Ignore)));
                }
            }
            Clause::Timeout { handler, .. } => {
                out.push((
                    quote!(#private::Trigger::Timeout),
                    handler_effect(handler, private),
                ));
            }
            Clause::OnEntry { .. } | Clause::OnExit { .. } => {}
        }
    }
    out
}

fn handler_effect(handler: &Expr, private: &TokenStream) -> TokenStream {
    let mut targets = Vec::new();
    let mut may_stay = false;
    scan_targets(quote!(#handler), &mut targets, &mut may_stay);
    quote! {
        #private::Effect::Handler { targets: &[#(#targets),*], may_stay: #may_stay }
    }
}

/// Collects the variant names passed to `Transition::to(..)` and notes any
/// `Transition::stay()` in `tokens`, at any depth.
pub(crate) fn scan_targets(tokens: TokenStream, targets: &mut Vec<String>, may_stay: &mut bool) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Group(group) => scan_targets(group.stream(), targets, may_stay),
            TokenTree::Ident(ident) if ident == "Transition" => {
                let is_path_sep = |at: usize| matches!(trees.get(at), Some(TokenTree::Punct(p)) if p.as_char() == ':');
                if !(is_path_sep(i + 1) && is_path_sep(i + 2)) {
                    continue;
                }
                match (trees.get(i + 3), trees.get(i + 4)) {
                    (Some(TokenTree::Ident(method)), Some(TokenTree::Group(args)))
                        if method == "to" =>
                    {
                        if let Some(target) = last_path_ident(args.stream())
                            && !targets.contains(&target)
                        {
                            targets.push(target);
                        }
                    }
                    (Some(TokenTree::Ident(method)), _) if method == "stay" => *may_stay = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// The last identifier of the path that starts `tokens` (`Door::Broken` in
/// `Door::Broken { reason }`), if it starts with a path.
fn last_path_ident(tokens: TokenStream) -> Option<String> {
    let mut last = None;
    let mut expect_ident = true;
    for tree in tokens {
        match tree {
            TokenTree::Ident(ident) if expect_ident => {
                last = Some(ident.to_string());
                expect_ident = false;
            }
            TokenTree::Punct(p) if p.as_char() == ':' => expect_ident = true,
            _ => break,
        }
    }
    last.filter(|name| name != "Self" && name != "self")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets_of(src: &str) -> (Vec<String>, bool) {
        let mut targets = Vec::new();
        let mut stay = false;
        scan_targets(
            src.parse().expect("test input is valid tokens"),
            &mut targets,
            &mut stay,
        );
        (targets, stay)
    }

    #[test]
    fn finds_targets_in_closure_bodies_and_branches() {
        let (targets, stay) = targets_of(
            "|s, e, c| if c.ok { Transition::to(Door::Open).with(A::Ring) } \
             else { Transition::to(Door::Broken { reason: e.0.clone() }) }",
        );
        assert_eq!(targets, ["Open", "Broken"]);
        assert!(!stay);
    }

    #[test]
    fn notes_stay_and_ignores_other_paths() {
        let (targets, stay) =
            targets_of("|s, e, c| { let t = Other::to(Door::X); Transition::stay() }");
        assert!(targets.is_empty());
        assert!(stay);
    }

    #[test]
    fn a_named_function_has_no_visible_targets() {
        assert_eq!(targets_of("handle_open"), (Vec::new(), false));
    }
}
