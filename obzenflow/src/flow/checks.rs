//! The rules `flow!` checks at compile time.
//!
//! `flow!` checks what it can itself (names, edges, cycles, sections) and
//! leaves the types to rustc, through the traits here and through the
//! handler traits ([`Transform`],
//! [`Sink`](crate::stage::Sink), ...). A rule that is broken is reported at
//! your tokens, naming your stages and types; these traits are public so
//! that every name in such a message can be looked up. You never implement
//! or call them.

use super::builder::StageRef;
use crate::event::Payload;
use crate::stage::Transform;

/// An edge `from |> to` is well typed: what stage `From` emits (`Self`) is
/// what stage `To` accepts (`In`). `From` and `To` are the types `flow!`
/// names after your stages, so that a mismatch reads
/// "stage `priced` emits `Priced` but stage `out` accepts `Order`".
/// Implemented when the two payload types are the same.
#[diagnostic::on_unimplemented(
    message = "stage `{From}` emits `{Self}` but stage `{To}` accepts `{In}`",
    label = "this edge connects `{From}` to `{To}`",
    note = "change the payload type of one of the two stages, or put a transform between them"
)]
pub trait Accepts<In, From, To>: Sized {
    /// The upstream stage, as the downstream stage's input.
    fn cast(upstream: &StageRef<Self>) -> StageRef<In>;
}

// Blanket: not listed on every type of the documentation (the trait
// says what implements it).
#[doc(hidden)]
impl<T: Payload, From, To> Accepts<T, From, To> for T {
    #[inline]
    fn cast(upstream: &StageRef<T>) -> StageRef<T> {
        upstream.clone()
    }
}

/// A type `flow!` uses as a stage's payload: `flow!` writes each payload
/// type through this projection, spanned at the stage that declares it, so
/// that a type that is not a [`Payload`] is reported once, there.
/// Implemented for every payload.
pub trait PayloadType {
    /// The type itself.
    type Type: Payload;
}

// Blanket: not listed on every type of the documentation (the trait
// says what implements it).
#[doc(hidden)]
impl<T: Payload> PayloadType for T {
    type Type = T;
}

/// The handler of `transform!(I -> O => handler)`: a [`Transform`] from `I`
/// to `O`. `flow!` checks a transform's handler through this trait, not
/// through [`Transform`] itself, because rustc then names only the rule that
/// failed (the handler's signature, or a helper's requirement such as a
/// `try_map` error that is not `Display`), where checking against
/// [`Transform`] also quotes the helper's impl from the library's source.
/// Implemented for every [`Transform`].
pub trait Handles<I, O> {
    /// The handler, unchanged.
    #[doc(hidden)]
    fn checked(self) -> Self
    where
        Self: Sized,
    {
        self
    }
}

// Blanket: not listed on every type of the documentation (the trait
// says what implements it).
#[doc(hidden)]
impl<I, O, T: Transform<I, O>> Handles<I, O> for T {}
