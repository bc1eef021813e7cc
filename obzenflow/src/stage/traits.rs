//! The handler traits, one per stage kind. Each kind with a synchronous form
//! has a `Sync*` trait too; everything that implements the synchronous trait
//! implements the asynchronous one.

use super::StageError;
use crate::event::{DeliveryKey, Envelope, Payload, Receipt, SourcePosition};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Duration;

/// The provided method `checked` of every handler trait: the handler
/// itself. `flow!` passes each handler through it by a qualified path
/// (`<_ as Transform<I, O>>::checked(handler)`), so that one that does not
/// fit its stage is reported against that trait, at the handler.
macro_rules! checked_handler {
    () => {
        #[doc(hidden)]
        fn checked(self) -> Self
        where
            Self: Sized,
        {
            self
        }
    };
}

/// Where a handler puts its outputs.
#[derive(Debug)]
pub struct Emitter<O> {
    pub(crate) items: Vec<O>,
}

impl<O> Default for Emitter<O> {
    fn default() -> Self {
        Emitter { items: Vec::new() }
    }
}

impl<O> Emitter<O> {
    /// An empty emitter, for calling a handler outside a flow (in a test).
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes what was emitted so far.
    pub fn take(&mut self) -> Vec<O> {
        std::mem::take(&mut self.items)
    }

    /// Emits one output.
    #[inline]
    pub fn emit(&mut self, item: O) {
        self.items.push(item);
    }

    /// Emits several outputs, in order.
    pub fn emit_all(&mut self, items: impl IntoIterator<Item = O>) {
        self.items.extend(items);
    }
}

/// What one poll of a source gave.
#[derive(Clone, Debug, PartialEq)]
pub enum Poll<T> {
    /// Zero or more new events.
    Events(Vec<T>),
    /// The source is finished: an EOF follows its last events.
    End,
}

/// A stage with no input that produces events.
///
/// `next` is raced against stop requests: if a stop arrives while it waits,
/// its future is dropped, so keep it cancel-safe (as tokio's channel `recv` is).
/// A source that never waits simply has no `.await` in its `next`.
///
/// A flow calls `next` and `seek` only for a [`Payload`], and they say so
/// (`where T: Payload`). So a source generic over its events, such as
/// `csv::read` (feature `files`), can rely on `T: Payload` in them
/// and still implement `Source<T>` for every `T`: a type that is not a
/// payload is then reported once, at the stage that declares it, and not a
/// second time at the handler.
pub trait Source<T>: Send + 'static {
    checked_handler!();

    /// The next events, waiting for them if there are none yet.
    fn next(&mut self) -> impl Future<Output = Result<Poll<T>, StageError>> + Send
    where
        T: Payload;

    /// How many events it will produce in all, if it knows (for progress).
    fn expected_count(&self) -> Option<u64> {
        None
    }

    /// How far it has read, after the events (or the error) it just gave:
    /// journaled after each batch, so that a resumed run knows where to
    /// continue. `None` (the default) for a source that cannot say.
    fn position(&self) -> Option<SourcePosition> {
        None
    }

    /// Continues after `position` (one that [`position`](Self::position)
    /// reported): called once, before the first [`next`](Self::next), by a
    /// resumed run whose source had journaled events. The default refuses,
    /// and so the resume is refused for this source; a source that cannot
    /// seek but gives the same events every time may re-read its input and
    /// skip `position.records` of them.
    fn seek(&mut self, position: SourcePosition) -> Result<(), StageError>
    where
        T: Payload,
    {
        let _ = position;
        Err(StageError::fatal(
            "this source cannot continue from where it stopped (its handler does not implement `Source::seek`)",
        ))
    }
}

/// One input event to zero or more outputs. A transform that never waits
/// simply has no `.await` in its `process` (the helpers return ready futures).
pub trait Transform<I, O>: Send + 'static {
    checked_handler!();

    /// Handles one input.
    fn process(
        &mut self,
        input: I,
        out: &mut Emitter<O>,
    ) -> impl Future<Output = Result<(), StageError>> + Send;

    /// Hands over the figures of the middleware this handler is wrapped in,
    /// innermost first, for the flow's report and metrics. Only middleware
    /// ([`TransformExt`](super::TransformExt)) has any; other handlers keep
    /// the default.
    fn instruments(&self, found: &mut Vec<super::Instrument>) {
        let _ = found;
    }
}

/// The end of a pipeline: consumes events and says what it delivered.
///
/// A flow calls `consume` and `deliver` only for a [`Payload`], and they
/// say so (`where T: Payload`), so that a sink generic over its events,
/// such as [`console`](crate::stage::console), can rely on `T: Payload` in
/// them and still implement `Sink<T>` for every `T` (see [`Source`]).
pub trait Sink<T>: Send + 'static {
    checked_handler!();

    /// Delivers one event.
    fn consume(&mut self, input: T) -> impl Future<Output = Result<Receipt, StageError>> + Send
    where
        T: Payload;

    /// Delivers one event with its idempotency key: what the flow calls. By
    /// default it forgets the key and calls [`consume`](Self::consume); a
    /// sink that can deduplicate (a database with a key column) keeps it,
    /// so that a delivery repeated for the same input of the same run has
    /// its effect once.
    fn deliver(
        &mut self,
        key: &DeliveryKey,
        input: T,
    ) -> impl Future<Output = Result<Receipt, StageError>> + Send
    where
        T: Payload,
    {
        let _ = key;
        self.consume(input)
    }

    /// Called after each batch of inputs.
    fn flush(&mut self) -> impl Future<Output = Result<(), StageError>> + Send {
        std::future::ready(Ok(()))
    }

    /// Called once, after the last input, with why the stage drains: a sink
    /// that replaces a file or commits a transaction does so at the
    /// [end of its input](DrainReason::EndOfInput), and not when the flow was
    /// [stopped](DrainReason::Stopped) before its input ended.
    fn drain(
        &mut self,
        reason: DrainReason,
    ) -> impl Future<Output = Result<(), StageError>> + Send {
        let _ = reason;
        std::future::ready(Ok(()))
    }

    /// What the sink's effects are worth after a crash: what a resumed run
    /// does for it (see [`Delivery`]). At least once, unless it says.
    fn delivery(&self) -> Delivery {
        Delivery::AtLeastOnce
    }
}

/// What a sink's effects are worth when a run is interrupted and resumed.
/// A resumed run never delivers again an input whose receipt was journaled;
/// what differs is the window between a delivery and its receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Delivery {
    /// The inputs after the last receipt are delivered again, and may have
    /// been delivered before the crash: the report counts them as
    /// possible duplicates.
    AtLeastOnce,
    /// The inputs after the last receipt are delivered again with the same
    /// [`DeliveryKey`], and the sink keeps each key's effect once (a
    /// database with a key column): exactly once.
    Deduplicated,
    /// The sink's effect is made whole at the end (a file written beside
    /// its target and renamed over it when the input ends): a resumed run
    /// delivers it every input again, from the first, journaling receipts
    /// only for the new ones: exactly once.
    Rebuilt,
}

/// Why a stage drains: what its sink's [`drain`](Sink::drain) and its
/// stateful handler's [`emit_final`](Stateful::emit_final) are told.
///
/// A stop travels through the journals: a source that is stopped marks its
/// end as a stop, and every stage downstream of it drains as
/// [`Stopped`](DrainReason::Stopped), so a stage learns it from its inputs
/// whatever process or task it runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DrainReason {
    /// Every input ended: what the stage saw is all there is.
    EndOfInput,
    /// The flow was stopped gracefully before (some of) its input ended:
    /// what the stage saw is a prefix.
    Stopped,
    /// The flow replays an archived run; a sink's deliveries were skipped
    /// unless the replay repeats them.
    Replay,
}

/// When a stateful stage emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitPolicy {
    /// After every `n` inputs, and at the end for the rest.
    EveryN(u64),
    /// Once, after the last input.
    OnEof,
    /// Every time the window passes with new inputs in it, and at the end.
    Window(Duration),
    /// After every input, whatever the handler's `emit` says is ready (the
    /// event-time windows the watermark passed), and its `emit_final` at
    /// the end: what the [event-time windows](super::window) use.
    Watermark,
}

/// Accumulates inputs and emits on a policy.
pub trait Stateful<I, O>: Send + 'static {
    /// Takes one input into the state.
    fn accumulate(&mut self, input: I) -> Result<(), StageError>;
    /// What to emit now (the policy says when).
    fn emit(&mut self) -> Vec<O>;

    /// What to emit when the stage drains (after the last input), told why.
    /// By default what [`emit`](Self::emit) gives.
    fn emit_final(&mut self, reason: DrainReason) -> Vec<O> {
        let _ = reason;
        self.emit()
    }

    /// The state, encoded (with [`state::encode`](super::state::encode)),
    /// for a resumed run to [`restore`](Self::restore): journaled with
    /// every batch the stage emits in, and every so many inputs. `None`
    /// (the default) when the handler cannot: a resumed run then folds
    /// every input again, which it can only if the stage had emitted
    /// nothing, and refuses otherwise.
    fn snapshot(&self) -> Option<Result<Vec<u8>, StageError>> {
        None
    }

    /// Takes back a state [`snapshot`](Self::snapshot) gave.
    fn restore(&mut self, state: &[u8]) -> Result<(), StageError> {
        let _ = state;
        Err(StageError::fatal(
            "this stateful handler cannot restore a snapshot (it does not implement `Stateful::restore`)",
        ))
    }
}

/// Joins a stream against a reference table loaded first.
pub trait Join<R, S, O>: Send + 'static {
    checked_handler!();

    /// Takes one reference event (all of them arrive before any stream event).
    fn load(&mut self, reference: R) -> Result<(), StageError>;
    /// Joins one stream event.
    fn join(&mut self, input: S, out: &mut Emitter<O>) -> Result<(), StageError>;
}

/// Sees every entry of a stage's journal and cannot change it.
pub trait Observer<T>: Send + 'static {
    checked_handler!();

    /// Called for each entry: data, error-lane records and control markers.
    fn observe(&mut self, entry: &Envelope<T>);
}

/// A stateful handler with the policy it emits on: what
/// [`StatefulExt`]'s methods return.
#[derive(Clone, Debug)]
pub struct WithPolicy<X> {
    handler: X,
    policy: EmitPolicy,
}

impl<X> WithPolicy<X> {
    /// `handler` with `policy`: what a helper that decides its own policy
    /// (the event-time windows) returns.
    pub(crate) fn new(handler: X, policy: EmitPolicy) -> Self {
        WithPolicy { handler, policy }
    }

    /// The handler, to configure it further.
    pub(crate) fn handler_mut(&mut self) -> &mut X {
        &mut self.handler
    }
}

/// Gives a stateful handler its emit policy: `group_by(..).emit_on_eof()`.
/// Implemented for every [`Stateful`] handler (and only those, so that
/// these methods are not listed on unrelated types).
pub trait StatefulExt<I, O>: Stateful<I, O> + Sized {
    /// Emit once, after the last input.
    fn emit_on_eof(self) -> WithPolicy<Self> {
        WithPolicy {
            handler: self,
            policy: EmitPolicy::OnEof,
        }
    }

    /// Emit after every `n` inputs, and at the end for the rest.
    fn emit_every(self, n: u64) -> WithPolicy<Self> {
        WithPolicy {
            handler: self,
            policy: EmitPolicy::EveryN(n),
        }
    }

    /// Emit whenever `window` passes with new inputs, and at the end.
    fn emit_every_window(self, window: Duration) -> WithPolicy<Self> {
        WithPolicy {
            handler: self,
            policy: EmitPolicy::Window(window),
        }
    }
}

impl<I, O, X: Stateful<I, O>> StatefulExt<I, O> for X {}

/// A stateful handler together with its emit policy: what a stateful stage
/// of `flow!` (or [`FlowBuilder::stateful_with`](crate::flow::FlowBuilder::stateful_with)) takes.
#[diagnostic::on_unimplemented(
    message = "this stateful handler does not say when to emit",
    label = "add `.emit_on_eof()`, `.emit_every(n)` or `.emit_every_window(duration)`",
    note = "a stateful stage takes `handler.emit_on_eof()` (or another policy), and its handler must implement `Stateful<{I}, {O}>`"
)]
pub trait StatefulStage<I, O> {
    checked_handler!();

    /// The handler.
    type Handler: Stateful<I, O>;
    /// The handler and its policy.
    fn into_parts(self) -> (Self::Handler, EmitPolicy);
}

#[diagnostic::do_not_recommend]
impl<I, O, X: Stateful<I, O>> StatefulStage<I, O> for WithPolicy<X> {
    type Handler = X;
    fn into_parts(self) -> (X, EmitPolicy) {
        (self.handler, self.policy)
    }
}
