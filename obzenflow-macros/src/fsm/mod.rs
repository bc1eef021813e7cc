//! `fsm!`: `parse` reads the DSL into a syntax tree, `validate` checks it and
//! collects every diagnostic, `expand` generates the dispatch code and `table`
//! the static table the diagrams are drawn from.

mod expand;
mod parse;
mod table;
mod validate;

use crate::diagnostics::Diagnostics;
use proc_macro2::TokenStream;
use quote::quote;

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let mut diagnostics = Diagnostics::default();
    let parsed = parse::parse(input, &mut diagnostics);
    let model = validate::validate(parsed, &mut diagnostics);
    let errors = diagnostics.to_compile_errors();
    match model {
        Some(model) => {
            let machine = expand::machine(&model);
            quote!({ #errors #machine })
        }
        // Without a state and an event type there is no machine type to stand
        // in for; the errors above say what is missing.
        None => quote!({ #errors ::obzenflow::fsm::__private::unknown_machine() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "
        state: Door; event: DoorEvent; context: Ctx; action: Act;
        initial: Door::Closed;
        exhaustive;
        state Door::Closed {
            on DoorEvent::Open => |_s, _e, _c| Transition::to(Door::Open).with(Act::Ring);
            on_entry => |_s, _c| vec![Act::Log];
            ignore DoorEvent::Close | DoorEvent::Kick(_);
        }
        state Door::Open {
            on DoorEvent::Close => |_s, _e, _c| Transition::to(Door::Closed);
            on DoorEvent::Kick(force) => |_s, _e, _c| Transition::to(Door::Broken { reason: format!(\"{force}\") });
            timeout Duration::from_secs(30) => |_s, _c| Transition::to(Door::Closed);
            on_exit => |_s, _c| Vec::new();
        }
        state Door::Broken { reason } { ignore _; }
        state _ { on DoorEvent::Kick(_) => |_s, _e, _c| Transition::stay(); }
    ";

    fn expand_str(src: &str) -> String {
        match src.parse::<TokenStream>() {
            Ok(tokens) => expand(tokens).to_string(),
            Err(_) => String::new(),
        }
    }

    #[test]
    fn valid_input_expands_without_errors() {
        let out = expand_str(VALID);
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("StateMachine"), "{out}");
    }

    #[test]
    fn duplicate_pair_is_reported_once() {
        let src = VALID.replace(
            "ignore DoorEvent::Close | DoorEvent::Kick(_);",
            "ignore DoorEvent::Close | DoorEvent::Open;",
        );
        let out = expand_str(&src);
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(
            out.contains("event `Open` in state `Closed` already has a clause"),
            "{out}"
        );
    }

    /// Mutated and random input: the macro answers with code or compile
    /// errors, never a panic.
    #[test]
    fn mutated_and_random_input_never_panics() {
        let pieces = [
            "state",
            "event",
            ":",
            ";",
            "=>",
            "_",
            "|",
            "{",
            "}",
            "on",
            "ignore",
            "timeout",
            "on_entry",
            "Door",
            "::",
            "Open",
            "(",
            ")",
            "initial",
            "exhaustive",
            "unhandled",
            ",",
            "..",
            "|x, y, z|",
            "42",
        ];
        crate::fuzz::never_panics(VALID, &pieces, 3_000, expand);
    }
}
