//! Parallel stages: one stage run as several instances, each its own task
//! with its own copy of the handler, so that a stage's work spreads over
//! the machine's cores.
//!
//! In `flow!`, `parallel: n` after a stage's handler runs it as `n`
//! instances; a stateful stage also takes `key: |event| ...`, so that every
//! event of a key goes to the same instance (and its state):
//!
//! ```
//! use obzenflow::prelude::*;
//! use obzenflow::stage::{StatefulExt, collect, from_iter, group_by, map};
//!
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
//! let (sink, totals) = collect();
//! let mut flow = flow! {
//!     name: "parallel",
//!     stages: {
//!         numbers = source!(u64 => from_iter(0..10_000u64));
//!         squared = transform!(u64 -> u64 => map(|n: u64| n * n), parallel: 2);
//!         by_digit = stateful!(u64 -> (u64, u64) =>
//!             group_by(|n: &u64| n % 10, |sum: &mut u64, n: u64| *sum += n).emit_on_eof(),
//!             parallel: 2, key: |n: &u64| n % 10);
//!         out = sink!((u64, u64) => sink);
//!     },
//!     topology: { numbers |> squared |> by_digit |> out; }
//! };
//! flow.run().await.unwrap();
//! let mut totals = totals.snapshot();
//! totals.sort();
//! assert_eq!(totals.len(), 6); // the last digits a square ends in: 0, 1, 4, 5, 6, 9
//! assert_eq!(totals.iter().map(|(_, sum)| sum).sum::<u64>(), (0..10_000u64).map(|n| n * n).sum::<u64>());
//! # });
//! ```
//!
//! Sinks, joins and observers take `parallel: n` too: each instance of a
//! sink delivers its share (with its own clone of the handler: a
//! connection of its own), a join loads its whole reference first, then
//! clones the loaded handler into each instance, and each instance of an
//! observer sees its share of the data and error records, in journal
//! order, and every control marker.
//!
//! A source runs as one instance; one that reads several inputs (several
//! files) reads them at once when given as
//! [`partitioned`](crate::stage::partitioned())`(sources)`.
//!
//! Middleware runs in parallel too, and keeps the stage's meaning: the
//! instances share one rate limit and one circuit breaker, and each retries
//! on its own (see [`TransformExt`](crate::stage::TransformExt)).
//!
//! With [`FlowBuilder`](crate::flow::FlowBuilder):
//! [`transform_parallel`](crate::flow::FlowBuilder::transform_parallel),
//! [`stateful_parallel`](crate::flow::FlowBuilder::stateful_parallel),
//! [`sink_parallel`](crate::flow::FlowBuilder::sink_parallel),
//! [`join_parallel`](crate::flow::FlowBuilder::join_parallel) and
//! [`observer_parallel`](crate::flow::FlowBuilder::observer_parallel) take
//! [`parallel(n)`](parallel), keyed with [`Parallel::key_by`].
//!
//! What the instances write is merged in input order, whatever the
//! scheduling: a parallel transform's, join's or sink's journal is the one
//! the stage would write run as one instance, and a keyed stateful stage's
//! emits come instance by instance in a fixed order. So replay verifies and a killed
//! run resumes as with any stage (a keyed stateful stage resumes with the
//! same number of instances it ran with).

use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

/// How many instances a stage runs as, and how its inputs are split among
/// them: in contiguous shares of each batch ([`Spread`]), or by a key
/// ([`KeyBy`]).
#[derive(Clone, Copy, Debug)]
pub struct Parallel<K = Spread> {
    pub(crate) instances: usize,
    pub(crate) partition: K,
}

/// A stage run as `instances` instances (at least one); its inputs are
/// spread over them unless [keyed](Parallel::key_by).
pub fn parallel(instances: usize) -> Parallel<Spread> {
    Parallel {
        instances,
        partition: Spread,
    }
}

impl Parallel<Spread> {
    /// Every event with the same `key` goes to the same instance, in its
    /// input order: what a stateful stage needs, so that each key's state
    /// lives in one instance.
    pub fn key_by<I, K, F>(self, key: F) -> Parallel<KeyBy<I>>
    where
        F: Fn(&I) -> K + Send + Sync + 'static,
        K: PartitionKey,
    {
        Parallel {
            instances: self.instances,
            partition: KeyBy(Arc::new(move |item: &I| key(item).partition_hash())),
        }
    }
}

impl<K> Parallel<K> {
    /// How many instances.
    pub fn instances(&self) -> usize {
        self.instances
    }
}

/// A `key:` as `flow!` holds it: boxed, so that its argument's type is
/// inferred from the stage's input and one of the wrong type is reported
/// as such at the key. [`KeyBy`] erases the key to a function anyway.
#[doc(hidden)]
pub type BoxedKey<I, K> = Box<dyn Fn(&I) -> K + Send + Sync + 'static>;

/// What `key:` is (and [`Parallel::key_by`] takes): a function from a
/// reference to the event `I` to its key `K`. Implemented for every such
/// function; `flow!` names the key's type through it.
pub trait KeyOf<I, K>: Fn(&I) -> K {
    /// The key's type, as a value `flow!` can check.
    #[doc(hidden)]
    fn key_type(&self) -> PhantomData<K> {
        PhantomData
    }
}

impl<I, K, F: Fn(&I) -> K> KeyOf<I, K> for F {}

/// Inputs spread over the instances: each takes a contiguous share of each
/// batch of input.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spread;

/// Inputs of type `I` split by a key: see [`Parallel::key_by`].
pub struct KeyBy<I>(Arc<dyn Fn(&I) -> u64 + Send + Sync>);

impl<I> Clone for KeyBy<I> {
    fn clone(&self) -> Self {
        KeyBy(Arc::clone(&self.0))
    }
}

impl<I> std::fmt::Debug for KeyBy<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBy(..)")
    }
}

/// What a key of a parallel stage must be: `Hash`, so that every event
/// with the same key goes to the same instance (the instance is the key's
/// hash modulo the instance count; the key is not kept). Implemented for
/// every `Hash` type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot key a parallel stage: it is not `Hash`",
    label = "the key is `{Self}`",
    note = "derive it on the key's type (`#[derive(Hash, PartialEq, Eq)]`), or key by a field that has it (a `String`, an integer; not a float)"
)]
pub trait PartitionKey {
    /// The key's hash, the same in every run and process (FNV-1a).
    #[doc(hidden)]
    fn partition_hash(&self) -> u64;

    /// Nothing: `flow!` names the key's type through this, so that a key
    /// that is not `Hash` is reported against this trait, at the key.
    #[doc(hidden)]
    fn checked(_key: PhantomData<Self>) {}
}

// Blanket: not listed on every type of the documentation (the trait
// says what implements it); not recommended, so that a key that is not
// `Hash` is reported with this trait's note.
#[doc(hidden)]
#[diagnostic::do_not_recommend]
impl<T: Hash + ?Sized> PartitionKey for T {
    #[inline]
    fn partition_hash(&self) -> u64 {
        let mut hasher = Fnv::default();
        self.hash(&mut hasher);
        hasher.finish()
    }
}

/// What the handler of a parallel stage must be: each instance runs its
/// own copy, so it is cloned (before the flow starts, with whatever state
/// it holds then). Implemented for every `Clone` type.
#[diagnostic::on_unimplemented(
    message = "the handler of a parallel stage must be `Clone`: each instance runs its own copy",
    label = "this handler is not `Clone`",
    note = "derive `Clone` on your handler type, or run the stage as one instance (remove `parallel`)"
)]
pub trait Replicable: Sized {
    /// A copy for another instance.
    fn replicate(&self) -> Self;

    /// The handler itself. `flow!` passes each handler through this, so
    /// that one that does not fit its stage is reported against this trait,
    /// at the handler.
    #[doc(hidden)]
    fn checked(self) -> Self {
        self
    }
}

// Blanket: not listed on every type of the documentation (the trait
// says what implements it). Not recommended by rustc either: a handler
// that is not `Clone` is reported as not `Replicable`, with its note.
#[doc(hidden)]
#[diagnostic::do_not_recommend]
impl<T: Clone> Replicable for T {
    fn replicate(&self) -> Self {
        self.clone()
    }
}

/// `n` copies of `handler`, one per instance: the last is `handler` itself.
pub(crate) fn replicas<X: Replicable>(handler: X, n: usize) -> Vec<X> {
    let mut copies: Vec<X> = (1..n).map(|_| handler.replicate()).collect();
    copies.push(handler);
    copies
}

/// How a stage's inputs are split among its instances: [`Spread`] or
/// [`KeyBy`]. Sealed.
pub trait Partition<I>: Send + Sync + 'static + sealed::Sealed {
    /// The instance of `item`, the `index`th of `len` inputs of a batch,
    /// among `instances`.
    #[doc(hidden)]
    fn route(&self, item: &I, index: usize, len: usize, instances: usize) -> usize;
}

/// A split by key: what a parallel stateful stage takes.
#[diagnostic::on_unimplemented(
    message = "a parallel stateful stage needs a key",
    label = "add `.key_by(|event| ...)` (in `flow!`, `key: |event| ...`)",
    note = "every event of a key must reach the same instance, where that key's state is"
)]
pub trait Keyed<I>: Partition<I> {}

impl<I: 'static> Keyed<I> for KeyBy<I> {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Spread {}
    impl<I> Sealed for super::KeyBy<I> {}
}

impl<I> Partition<I> for Spread {
    #[inline]
    fn route(&self, _: &I, index: usize, len: usize, instances: usize) -> usize {
        index * instances / len.max(1)
    }
}

impl<I: 'static> Partition<I> for KeyBy<I> {
    #[inline]
    fn route(&self, item: &I, _: usize, _: usize, instances: usize) -> usize {
        // Lossless: the remainder is below `instances`.
        ((self.0)(item) % instances.max(1) as u64) as usize
    }
}

/// FNV-1a: the same key goes to the same instance in every run and every
/// process, which a resumed run (whose instances restore their state) and a
/// replay depend on; std's hasher is seeded at random.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_contiguous_and_cover_every_instance() {
        let routes: Vec<usize> = (0..10).map(|i| Spread.route(&(), i, 10, 3)).collect();
        assert_eq!(routes, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
        assert_eq!(Spread.route(&(), 0, 1, 4), 0);
    }

    #[test]
    fn a_key_goes_to_the_same_instance_every_time_and_keys_spread() {
        let router = parallel(4).key_by(|name: &String| name.clone()).partition;
        let first = router.route(&"UA".to_owned(), 0, 1, 4);
        assert_eq!(router.route(&"UA".to_owned(), 7, 9, 4), first);
        assert_eq!(first as u64, "UA".partition_hash() % 4);
        let used: std::collections::BTreeSet<usize> = (0..100)
            .map(|n| router.route(&format!("key{n}"), 0, 1, 4))
            .collect();
        assert_eq!(used.len(), 4);
    }

    #[test]
    fn fnv_matches_its_reference_values() {
        // The published FNV-1a 64 test vectors: the routing of a key is
        // fixed for all time.
        for (input, hash) in [
            (&b""[..], 0xcbf2_9ce4_8422_2325u64),
            (b"a", 0xaf63_dc4c_8601_ec8c),
            (b"foobar", 0x8594_4171_f739_67e8),
        ] {
            let mut hasher = Fnv::default();
            hasher.write(input);
            assert_eq!(hasher.finish(), hash);
        }
    }
}
