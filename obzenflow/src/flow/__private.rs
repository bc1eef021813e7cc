//! Items that `flow!` expansions name. Not part of the public API.

use super::builder::{FeedbackPort, FlowBuilder, StageRef, Upstream};
use super::handle::FlowHandle;
use crate::event::Payload;

pub use crate::event::Receipt;
pub use crate::stage::StatefulExt;
use crate::stage::parallel::{Keyed, Partition, Replicable};
use crate::stage::{Join, Observer, Parallel, Sink, Source, StatefulStage, Transform};

/// The flow `flow!` checked at compile time, built. Its checks rule out
/// every refusal of the builder; should one slip through, the flow answers
/// it when started rather than panicking.
pub fn finish(builder: FlowBuilder) -> FlowHandle {
    builder.build().unwrap_or_else(FlowHandle::refused)
}

/// Stands in for a flow whose declaration has errors, which flow! has
/// already reported at compile time (so this never runs; were it to, the
/// flow would refuse to start rather than panic).
pub fn placeholder() -> FlowHandle {
    FlowHandle::refused(super::FlowError::Invalid {
        flow: "(not compiled)".to_owned(),
        problems: vec!["flow! reported this flow's errors at compile time".to_owned()],
    })
}

// The builder's methods take `impl Trait` arguments, which cannot be given
// explicit types. These take every type as a named parameter, so `flow!`
// passes the declared types and a handler that does not fit them fails its
// own bound: one error, in terms of the handler.

/// [`FlowBuilder::source`] with the payload type explicit.
pub fn source<T: Payload, X: Source<T>>(
    builder: &mut FlowBuilder,
    name: &str,
    handler: X,
) -> StageRef<T> {
    builder.source(name, handler)
}

/// [`FlowBuilder::transform`] with the types explicit.
pub fn transform<I: Payload, O: Payload, U: Upstream<I>, X: Transform<I, O>>(
    builder: &mut FlowBuilder,
    name: &str,
    inputs: U,
    handler: X,
) -> StageRef<O> {
    builder.transform(name, inputs, handler)
}

/// [`FlowBuilder::sink`] with the type explicit.
pub fn sink<T: Payload, U: Upstream<T>, X: Sink<T>>(
    builder: &mut FlowBuilder,
    name: &str,
    inputs: U,
    handler: X,
) -> StageRef<Receipt> {
    builder.sink(name, inputs, handler)
}

/// [`FlowBuilder::stateful_with`] with the types explicit.
pub fn stateful<I: Payload, O: Payload, U: Upstream<I>, X: StatefulStage<I, O>>(
    builder: &mut FlowBuilder,
    name: &str,
    inputs: U,
    handler: X,
) -> StageRef<O> {
    builder.stateful_with(name, inputs, handler)
}

/// [`FlowBuilder::join`] with the types explicit.
pub fn join<R: Payload, S: Payload, O: Payload, X: Join<R, S, O>>(
    builder: &mut FlowBuilder,
    name: &str,
    reference: &StageRef<R>,
    stream: &StageRef<S>,
    handler: X,
) -> StageRef<O> {
    builder.join(name, reference, stream, handler)
}

/// [`FlowBuilder::observer`] with the type explicit.
pub fn observer<T: Payload, X: Observer<T>>(
    builder: &mut FlowBuilder,
    name: &str,
    target: &StageRef<T>,
    handler: X,
) -> StageRef<()> {
    builder.observer(name, target, handler)
}

/// [`FlowBuilder::transform_parallel`] with the types explicit.
pub fn transform_parallel<I, O, U, X, P>(
    builder: &mut FlowBuilder,
    name: &str,
    inputs: U,
    handler: X,
    parallel: Parallel<P>,
) -> StageRef<O>
where
    I: Payload,
    O: Payload,
    U: Upstream<I>,
    X: Transform<I, O> + Replicable,
    P: Partition<I>,
{
    builder.transform_parallel(name, inputs, handler, parallel)
}

/// [`FlowBuilder::sink_parallel`] with the types explicit.
pub fn sink_parallel<T, U, X, P>(
    builder: &mut FlowBuilder,
    name: &str,
    inputs: U,
    handler: X,
    parallel: Parallel<P>,
) -> StageRef<Receipt>
where
    T: Payload,
    U: Upstream<T>,
    X: Sink<T> + Replicable,
    P: Partition<T>,
{
    builder.sink_parallel(name, inputs, handler, parallel)
}

/// [`FlowBuilder::observer_parallel`] with the types explicit.
pub fn observer_parallel<T, X, P>(
    builder: &mut FlowBuilder,
    name: &str,
    target: &StageRef<T>,
    handler: X,
    parallel: Parallel<P>,
) -> StageRef<()>
where
    T: Payload,
    X: Observer<T> + Replicable,
    P: Partition<T>,
{
    builder.observer_parallel(name, target, handler, parallel)
}

/// [`FlowBuilder::join_parallel`] with the types explicit.
pub fn join_parallel<R, S, O, X, P>(
    builder: &mut FlowBuilder,
    name: &str,
    reference: &StageRef<R>,
    stream: &StageRef<S>,
    handler: X,
    parallel: Parallel<P>,
) -> StageRef<O>
where
    R: Payload,
    S: Payload,
    O: Payload,
    X: Join<R, S, O> + Replicable,
    P: Partition<S>,
{
    builder.join_parallel(name, reference, stream, handler, parallel)
}

/// [`FlowBuilder::stateful_parallel`] with the types explicit.
pub fn stateful_parallel<I, O, U, X, K>(
    builder: &mut FlowBuilder,
    name: &str,
    inputs: U,
    handler: X,
    parallel: Parallel<K>,
) -> StageRef<O>
where
    I: Payload,
    O: Payload,
    U: Upstream<I>,
    X: StatefulStage<I, O>,
    X::Handler: Replicable,
    K: Keyed<I>,
{
    builder.stateful_parallel(name, inputs, handler, parallel)
}

/// How many probe rounds a feedback loop gets when `flow!` does not say.
pub const DEFAULT_MAX_ROUNDS: u32 = 1_000;

/// [`FlowBuilder::loop_head`] with the types explicit.
pub fn loop_head<I: Payload, O: Payload, U: Upstream<I>, X: Transform<I, O>>(
    builder: &mut FlowBuilder,
    name: &str,
    inputs: U,
    handler: X,
    max_rounds: u32,
) -> (StageRef<O>, FeedbackPort<I>) {
    builder.loop_head(name, inputs, handler, max_rounds)
}

/// Closes the loop `head <| end` (`end` already checked against what
/// `head` takes, by [`Accepts`](super::checks::Accepts)).
pub fn close_loop<In: Payload>(
    builder: &mut FlowBuilder,
    head: &Option<FeedbackPort<In>>,
    end: &StageRef<In>,
) {
    if let Some(port) = head {
        builder.feedback(port, end);
    }
}
