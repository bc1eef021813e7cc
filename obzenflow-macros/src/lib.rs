//! Procedural macros of ObzenFlow. Use them through the `obzenflow` crate, which
//! re-exports them next to the traits and types their expansions name.
//!
//! Each macro lives in its own module: `fsm` (parse, validate, expand, diagram
//! table) and `variant` (the two derives). Every mistake in the input becomes a
//! spanned `compile_error!`; nothing here panics on user input.

mod diagnostics;
mod flow;
mod fsm;
#[cfg(test)]
mod fuzz;
mod variant;

use proc_macro::TokenStream;

/// Used as `obzenflow::fsm!`, whose documentation holds the whole grammar.
#[proc_macro]
pub fn fsm(input: TokenStream) -> TokenStream {
    fsm::expand(input.into()).into()
}

/// Used as `obzenflow::flow!`, whose documentation holds the whole grammar.
#[proc_macro]
pub fn flow(input: TokenStream) -> TokenStream {
    flow::expand(input.into()).into()
}

/// Derives `obzenflow::fsm::StateVariant` for an enum of states.
#[proc_macro_derive(StateVariant)]
pub fn derive_state_variant(input: TokenStream) -> TokenStream {
    variant::derive(input.into(), variant::Role::State).into()
}

/// Derives `obzenflow::fsm::EventVariant` for an enum of events.
#[proc_macro_derive(EventVariant)]
pub fn derive_event_variant(input: TokenStream) -> TokenStream {
    variant::derive(input.into(), variant::Role::Event).into()
}
