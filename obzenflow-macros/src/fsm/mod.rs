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

    /// A small deterministic generator, so that failures reproduce.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, bound: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % bound
        }
    }

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

    /// Drops, duplicates and swaps random tokens of a valid machine, and feeds
    /// random token soup: the macro must answer with code or compile errors,
    /// never a panic.
    #[test]
    fn mutated_and_random_input_never_panics() {
        let base: Vec<proc_macro2::TokenTree> = VALID
            .parse::<TokenStream>()
            .expect("valid tokens")
            .into_iter()
            .collect();
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
        let mut rng = Lcg(0x5eed);
        for round in 0..3_000 {
            let mut trees = base.clone();
            for _ in 0..1 + rng.next(4) {
                let len = trees.len();
                match rng.next(3) {
                    0 if len > 1 => {
                        trees.remove(rng.next(len));
                    }
                    1 => {
                        let tree = trees[rng.next(len)].clone();
                        trees.insert(rng.next(len + 1), tree);
                    }
                    _ => trees.swap(rng.next(len), rng.next(len)),
                }
            }
            let _ = expand(trees.into_iter().collect());
            let soup: String = (0..rng.next(40))
                .map(|_| pieces[rng.next(pieces.len())])
                .collect::<Vec<_>>()
                .join(" ");
            let _ = expand_str(&soup);
            let _ = round;
        }
    }
}
