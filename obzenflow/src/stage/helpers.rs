//! Typed helpers for the common stages, so that they need no trait impl:
//! `map`, `filter`, `flat_map`, `try_map`; `reduce`, `group_by`, `top_n`;
//! `from_iter`, `from_receiver`; `console`, `collect`; the three joins;
//! `observe`.

use super::traits::{Emitter, Join, Observer, Poll, Sink, Stateful, Transform};
use super::{Source, StageError};
use crate::event::{Envelope, Payload};
use crate::event::{Receipt, SourcePosition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc;

/// How many events a helper source hands over per poll.
const SOURCE_BATCH: usize = 1024;

// ---- transforms ----

/// One output per input. See [`map`].
#[derive(Clone, Debug)]
pub struct Map<F>(F);

/// A transform that turns each input into one output.
///
/// ```
/// # use obzenflow::stage::map;
/// let double = map(|x: u32| x * 2);
/// # let _ = double;
/// ```
pub fn map<I, O, F: FnMut(I) -> O + Send + 'static>(f: F) -> Map<F> {
    Map(f)
}

impl<I, O: Send, F: FnMut(I) -> O + Send + 'static> Transform<I, O> for Map<F> {
    #[inline]
    fn process(
        &mut self,
        input: I,
        out: &mut Emitter<O>,
    ) -> impl Future<Output = Result<(), StageError>> + Send {
        out.emit((self.0)(input));
        std::future::ready(Ok(()))
    }
}

/// Keeps the inputs a predicate accepts. See [`filter`].
#[derive(Clone, Debug)]
pub struct Filter<F>(F);

/// A transform that passes on the inputs for which `keep` is true.
pub fn filter<F>(keep: F) -> Filter<F> {
    Filter(keep)
}

impl<T: Send, F: FnMut(&T) -> bool + Send + 'static> Transform<T, T> for Filter<F> {
    #[inline]
    fn process(
        &mut self,
        input: T,
        out: &mut Emitter<T>,
    ) -> impl Future<Output = Result<(), StageError>> + Send {
        if (self.0)(&input) {
            out.emit(input);
        }
        std::future::ready(Ok(()))
    }
}

/// Zero or more outputs per input. See [`flat_map`].
#[derive(Clone, Debug)]
pub struct FlatMap<F>(F);

/// A transform that turns each input into any number of outputs.
pub fn flat_map<I, O, It, F>(f: F) -> FlatMap<F>
where
    It: IntoIterator<Item = O>,
    F: FnMut(I) -> It + Send + 'static,
{
    FlatMap(f)
}

impl<I, O: Send, It, F> Transform<I, O> for FlatMap<F>
where
    It: IntoIterator<Item = O>,
    F: FnMut(I) -> It + Send + 'static,
{
    fn process(
        &mut self,
        input: I,
        out: &mut Emitter<O>,
    ) -> impl Future<Output = Result<(), StageError>> + Send {
        out.emit_all((self.0)(input));
        std::future::ready(Ok(()))
    }
}

/// What the error of a [`try_map`] handler must be: something the error
/// lane can show, which every `Display` type is.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of a `try_map` handler cannot be shown in the error lane",
    label = "`{Self}` is not `Display`",
    note = "implement `std::fmt::Display` for `{Self}`, or return `Result<_, String>`"
)]
pub trait ErrorMessage {
    /// The error, as the error lane records it.
    fn message(&self) -> String;
}

// Blanket: not listed on every type of the documentation (the trait
// says what implements it).
#[doc(hidden)]
#[diagnostic::do_not_recommend]
impl<E: fmt::Display + ?Sized> ErrorMessage for E {
    fn message(&self) -> String {
        self.to_string()
    }
}

/// One output per input, or the input in the error lane. See [`try_map`].
#[derive(Clone, Debug)]
pub struct TryMap<F>(F);

/// A transform whose failures go to the error lane (as permanent errors,
/// with the input they failed on); the stage goes on.
pub fn try_map<I, O, E, F>(f: F) -> TryMap<F>
where
    F: FnMut(I) -> Result<O, E> + Send + 'static,
{
    TryMap(f)
}

impl<I, O: Send, E, F> Transform<I, O> for TryMap<F>
where
    E: ErrorMessage,
    F: FnMut(I) -> Result<O, E> + Send + 'static,
{
    fn process(
        &mut self,
        input: I,
        out: &mut Emitter<O>,
    ) -> impl Future<Output = Result<(), StageError>> + Send {
        std::future::ready(
            (self.0)(input)
                .map_err(|error| StageError::permanent(error.message()))
                .map(|output| out.emit(output)),
        )
    }
}

// ---- stateful ----

/// Folds every input into one value. See [`reduce`].
#[derive(Clone, Debug)]
pub struct Reduce<A, F> {
    value: A,
    fold: F,
}

/// A stateful stage that folds its inputs into one value and emits (a copy
/// of) it on its policy. The value keeps accumulating across emits.
pub fn reduce<I, A, F>(initial: A, fold: F) -> Reduce<A, F>
where
    A: Clone + Send + 'static,
    F: FnMut(&mut A, I) + Send + 'static,
{
    Reduce {
        value: initial,
        fold,
    }
}

impl<I, A, F> Stateful<I, A> for Reduce<A, F>
where
    A: Clone + Send + Serialize + DeserializeOwned + 'static,
    F: FnMut(&mut A, I) + Send + 'static,
{
    fn snapshot(&self) -> Option<Result<Vec<u8>, StageError>> {
        Some(super::state::encode(&self.value))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), StageError> {
        self.value = super::state::decode(state)?;
        Ok(())
    }

    fn accumulate(&mut self, input: I) -> Result<(), StageError> {
        (self.fold)(&mut self.value, input);
        Ok(())
    }

    fn emit(&mut self) -> Vec<A> {
        vec![self.value.clone()]
    }
}

/// Folds inputs per key. See [`group_by`].
#[derive(Clone, Debug)]
pub struct GroupBy<K, A, KF, F> {
    groups: BTreeMap<K, A>,
    key: KF,
    fold: F,
}

/// A stateful stage that folds inputs per key (starting from `A::default()`)
/// and emits one `(key, value)` per key, in key order. Values keep
/// accumulating across emits.
///
/// ```
/// # use obzenflow::stage::group_by;
/// let totals = group_by(|sale: &(String, f64)| sale.0.clone(), |sum: &mut f64, sale: (String, f64)| *sum += sale.1);
/// # let _ = totals;
/// ```
pub fn group_by<I, K, A, KF, F>(key: KF, fold: F) -> GroupBy<K, A, KF, F>
where
    K: Ord + Clone + Send + 'static,
    A: Default + Clone + Send + 'static,
    KF: FnMut(&I) -> K + Send + 'static,
    F: FnMut(&mut A, I) + Send + 'static,
{
    GroupBy {
        groups: BTreeMap::new(),
        key,
        fold,
    }
}

impl<I, K, A, KF, F> Stateful<I, (K, A)> for GroupBy<K, A, KF, F>
where
    K: Ord + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Default + Clone + Send + Serialize + DeserializeOwned + 'static,
    KF: FnMut(&I) -> K + Send + 'static,
    F: FnMut(&mut A, I) + Send + 'static,
{
    fn snapshot(&self) -> Option<Result<Vec<u8>, StageError>> {
        Some(super::state::encode(&self.groups))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), StageError> {
        self.groups = super::state::decode(state)?;
        Ok(())
    }

    fn accumulate(&mut self, input: I) -> Result<(), StageError> {
        let key = (self.key)(&input);
        (self.fold)(self.groups.entry(key).or_default(), input);
        Ok(())
    }

    fn emit(&mut self) -> Vec<(K, A)> {
        self.groups
            .iter()
            .map(|(k, a)| (k.clone(), a.clone()))
            .collect()
    }
}

/// Keeps the `n` highest-scored inputs. See [`top_n`].
#[derive(Clone, Debug)]
pub struct TopN<T, K, F> {
    n: usize,
    score: F,
    /// Kept sorted by score, highest first; ties keep arrival order.
    best: Vec<(K, T)>,
}

/// A stateful stage that keeps the `n` inputs with the highest score and
/// emits them, highest first.
pub fn top_n<T, K, F>(n: usize, score: F) -> TopN<T, K, F>
where
    T: Clone + Send + 'static,
    K: Ord + Send + 'static,
    F: FnMut(&T) -> K + Send + 'static,
{
    TopN {
        n,
        score,
        best: Vec::with_capacity(n + 1),
    }
}

impl<T, K, F> Stateful<T, T> for TopN<T, K, F>
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
    K: Ord + Send + 'static,
    F: FnMut(&T) -> K + Send + 'static,
{
    /// The items kept, best first (their scores are computed again).
    fn snapshot(&self) -> Option<Result<Vec<u8>, StageError>> {
        let items: Vec<&T> = self.best.iter().map(|(_, item)| item).collect();
        Some(super::state::encode(&items))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), StageError> {
        let items: Vec<T> = super::state::decode(state)?;
        self.best = items
            .into_iter()
            .map(|item| ((self.score)(&item), item))
            .collect();
        Ok(())
    }

    fn accumulate(&mut self, input: T) -> Result<(), StageError> {
        let score = (self.score)(&input);
        let at = self.best.partition_point(|(kept, _)| *kept >= score);
        if at < self.n {
            self.best.insert(at, (score, input));
            self.best.truncate(self.n);
        }
        Ok(())
    }

    fn emit(&mut self) -> Vec<T> {
        self.best.iter().map(|(_, item)| item.clone()).collect()
    }
}

// ---- sources ----

/// A finite source over an iterator. See [`from_iter`].
#[derive(Debug)]
pub struct IterSource<It> {
    items: It,
    /// How many it has handed out.
    taken: u64,
}

/// A finite source that emits what `items` yields, then ends.
pub fn from_iter<It: IntoIterator>(items: It) -> IterSource<It::IntoIter>
where
    It::IntoIter: Send + 'static,
{
    IterSource {
        items: items.into_iter(),
        taken: 0,
    }
}

impl<T: Send, It: Iterator<Item = T> + Send + 'static> Source<T> for IterSource<It> {
    fn expected_count(&self) -> Option<u64> {
        match self.items.size_hint() {
            (lower, Some(upper)) if lower == upper => {
                u64::try_from(lower).ok().map(|left| left + self.taken)
            }
            _ => None,
        }
    }

    /// The number of items handed out: an iterator is re-read and skipped
    /// to continue from it.
    fn position(&self) -> Option<SourcePosition> {
        Some(SourcePosition {
            records: self.taken,
            ..SourcePosition::default()
        })
    }

    /// Takes the items handed out before again, and drops them.
    fn seek(&mut self, position: SourcePosition) -> Result<(), StageError> {
        while self.taken < position.records {
            if self.items.next().is_none() {
                return Err(StageError::fatal(format!(
                    "the iterator ends after {} items, and the interrupted run had taken {}",
                    self.taken, position.records
                )));
            }
            self.taken += 1;
        }
        Ok(())
    }

    fn next(&mut self) -> impl Future<Output = Result<Poll<T>, StageError>> + Send {
        let batch: Vec<T> = self.items.by_ref().take(SOURCE_BATCH).collect();
        self.taken += batch.len() as u64;
        std::future::ready(Ok(if batch.is_empty() {
            Poll::End
        } else {
            Poll::Events(batch)
        }))
    }
}

/// A source fed through a channel. See [`from_receiver`].
#[derive(Debug)]
pub struct ChannelSource<T>(mpsc::Receiver<T>);

/// A source that emits what arrives on `receiver` and ends when every sender
/// is dropped. While nothing arrives it waits without using the CPU.
pub fn from_receiver<T: Send + 'static>(receiver: mpsc::Receiver<T>) -> ChannelSource<T> {
    ChannelSource(receiver)
}

impl<T: Send + 'static> Source<T> for ChannelSource<T> {
    async fn next(&mut self) -> Result<Poll<T>, StageError> {
        let mut batch = Vec::new();
        if self.0.recv_many(&mut batch, SOURCE_BATCH).await == 0 {
            return Ok(Poll::End);
        }
        Ok(Poll::Events(batch))
    }
}

// ---- sinks ----

/// Prints each event as a JSON line. See [`console`].
#[derive(Clone, Debug, Default)]
pub struct ConsoleSink;

/// A sink that prints each event to standard output as one JSON line. If
/// the flow is stopped before the sink's input ends, it says so on standard
/// error, so that partial output is not taken for the whole.
pub fn console() -> ConsoleSink {
    ConsoleSink
}

impl<T> Sink<T> for ConsoleSink {
    fn consume(&mut self, input: T) -> impl Future<Output = Result<Receipt, StageError>> + Send
    where
        T: Payload,
    {
        std::future::ready(
            serde_json::to_string(&input)
                .map(|line| {
                    println!("{line}");
                    Receipt::delivered()
                })
                .map_err(StageError::permanent),
        )
    }

    fn drain(
        &mut self,
        reason: super::DrainReason,
    ) -> impl Future<Output = Result<(), StageError>> + Send {
        if reason == super::DrainReason::Stopped {
            eprintln!("(stopped before the end of the input: the lines above are partial)");
        }
        std::future::ready(Ok(()))
    }
}

/// The events a [`collect`] sink has received, shared with the test that made it.
#[derive(Debug)]
pub struct Collected<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Collected<T> {
    fn clone(&self) -> Self {
        Collected(Arc::clone(&self.0))
    }
}

impl<T: Clone> Collected<T> {
    /// A copy of everything received so far, in order.
    pub fn snapshot(&self) -> Vec<T> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many events were received.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Appends every event to a shared `Vec`. See [`collect`].
#[derive(Clone, Debug)]
pub struct CollectSink<T>(Collected<T>);

/// A sink that keeps every event in a shared `Vec`, and the handle to read it.
///
/// ```
/// # use obzenflow::stage::collect;
/// let (sink, collected) = collect::<u32>();
/// # let _ = sink;
/// assert!(collected.is_empty());
/// ```
pub fn collect<T: Send + 'static>() -> (CollectSink<T>, Collected<T>) {
    let collected = Collected(Arc::new(Mutex::new(Vec::new())));
    (CollectSink(collected.clone()), collected)
}

impl<T: Send + 'static> Sink<T> for CollectSink<T> {
    fn consume(&mut self, input: T) -> impl Future<Output = Result<Receipt, StageError>> + Send {
        (self.0)
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(input);
        std::future::ready(Ok(Receipt::delivered()))
    }
}

// ---- joins ----

/// What a join does with a stream event whose key has no reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Missing {
    /// Drop it (inner join).
    Skip,
    /// Join it with `None` (left join).
    Keep,
    /// Send it to the error lane (strict join).
    Fail,
}

/// A join on a key, holding the reference table in a hash map (the last
/// reference event for a key wins). See [`inner_join`], [`left_join`], [`strict_join`].
#[derive(Clone, Debug)]
pub struct KeyJoin<K, R, RK, SK, C> {
    table: HashMap<K, R>,
    reference_key: RK,
    stream_key: SK,
    combine: C,
    missing: Missing,
}

/// Joins each stream event with the reference of the same key; stream events
/// with no reference are dropped.
pub fn inner_join<K, R, S, O, RK, SK, C>(
    reference_key: RK,
    stream_key: SK,
    combine: C,
) -> KeyJoin<K, R, RK, SK, C>
where
    K: Eq + Hash + Send + 'static,
    RK: FnMut(&R) -> K + Send + 'static,
    SK: FnMut(&S) -> K + Send + 'static,
    C: FnMut(&R, S) -> O + Send + 'static,
{
    key_join(reference_key, stream_key, combine, Missing::Skip)
}

fn key_join<K, R, RK, SK, C>(
    reference_key: RK,
    stream_key: SK,
    combine: C,
    missing: Missing,
) -> KeyJoin<K, R, RK, SK, C> {
    KeyJoin {
        table: HashMap::new(),
        reference_key,
        stream_key,
        combine,
        missing,
    }
}

/// Joins each stream event with the reference of the same key, or `None`.
pub fn left_join<K, R, S, O, RK, SK, C>(
    reference_key: RK,
    stream_key: SK,
    combine: C,
) -> LeftJoin<K, R, RK, SK, C>
where
    K: Eq + Hash + Send + 'static,
    RK: FnMut(&R) -> K + Send + 'static,
    SK: FnMut(&S) -> K + Send + 'static,
    C: FnMut(Option<&R>, S) -> O + Send + 'static,
{
    LeftJoin(key_join(reference_key, stream_key, combine, Missing::Keep))
}

/// Joins each stream event with the reference of the same key; a stream event
/// with no reference goes to the error lane.
pub fn strict_join<K, R, S, O, RK, SK, C>(
    reference_key: RK,
    stream_key: SK,
    combine: C,
) -> KeyJoin<K, R, RK, SK, C>
where
    K: Eq + Hash + fmt::Debug + Send + 'static,
    RK: FnMut(&R) -> K + Send + 'static,
    SK: FnMut(&S) -> K + Send + 'static,
    C: FnMut(&R, S) -> O + Send + 'static,
{
    key_join(reference_key, stream_key, combine, Missing::Fail)
}

impl<K, R, S, O, RK, SK, C> Join<R, S, O> for KeyJoin<K, R, RK, SK, C>
where
    K: Eq + Hash + fmt::Debug + Send + 'static,
    R: Send + 'static,
    RK: FnMut(&R) -> K + Send + 'static,
    SK: FnMut(&S) -> K + Send + 'static,
    C: FnMut(&R, S) -> O + Send + 'static,
{
    fn load(&mut self, reference: R) -> Result<(), StageError> {
        self.table
            .insert((self.reference_key)(&reference), reference);
        Ok(())
    }

    fn join(&mut self, input: S, out: &mut Emitter<O>) -> Result<(), StageError> {
        let key = (self.stream_key)(&input);
        match self.table.get(&key) {
            Some(reference) => out.emit((self.combine)(reference, input)),
            None if self.missing == Missing::Fail => {
                return Err(StageError::permanent(format!(
                    "no reference for key {key:?}"
                )));
            }
            None => {}
        }
        Ok(())
    }
}

/// A left join. See [`left_join`].
#[derive(Clone, Debug)]
pub struct LeftJoin<K, R, RK, SK, C>(KeyJoin<K, R, RK, SK, C>);

impl<K, R, S, O, RK, SK, C> Join<R, S, O> for LeftJoin<K, R, RK, SK, C>
where
    K: Eq + Hash + Send + 'static,
    R: Send + 'static,
    RK: FnMut(&R) -> K + Send + 'static,
    SK: FnMut(&S) -> K + Send + 'static,
    C: FnMut(Option<&R>, S) -> O + Send + 'static,
{
    fn load(&mut self, reference: R) -> Result<(), StageError> {
        let join = &mut self.0;
        join.table
            .insert((join.reference_key)(&reference), reference);
        Ok(())
    }

    fn join(&mut self, input: S, out: &mut Emitter<O>) -> Result<(), StageError> {
        let join = &mut self.0;
        let key = (join.stream_key)(&input);
        out.emit((join.combine)(join.table.get(&key), input));
        Ok(())
    }
}

// ---- observers ----

/// Calls a function on every data event. See [`observe`].
#[derive(Clone, Debug)]
pub struct ObserveFn<F>(F);

/// An observer that calls `f` with each data event (not error-lane records or
/// control markers; implement [`Observer`] to see those).
pub fn observe<T, F: FnMut(&T) + Send + 'static>(f: F) -> ObserveFn<F> {
    ObserveFn(f)
}

impl<T, F: FnMut(&T) + Send + 'static> Observer<T> for ObserveFn<F> {
    fn observe(&mut self, entry: &Envelope<T>) {
        if let Some(data) = entry.data() {
            (self.0)(data);
        }
    }
}

/// An optional sink, for a sink that the command line or the configuration
/// turns on: `Some(sink)` delivers through it; `None` delivers nothing and
/// says so in each receipt (the stage stays in the flow, so that the
/// topology, and a replay of the run, are the same either way).
impl<T, S: Sink<T>> Sink<T> for Option<S> {
    async fn consume(&mut self, input: T) -> Result<Receipt, StageError>
    where
        T: Payload,
    {
        match self {
            Some(sink) => sink.consume(input).await,
            None => Ok(Receipt::with_detail("not delivered: no sink configured")),
        }
    }

    async fn deliver(
        &mut self,
        key: &crate::event::DeliveryKey,
        input: T,
    ) -> Result<Receipt, StageError>
    where
        T: Payload,
    {
        match self {
            Some(sink) => sink.deliver(key, input).await,
            None => Ok(Receipt::with_detail("not delivered: no sink configured")),
        }
    }

    async fn flush(&mut self) -> Result<(), StageError> {
        match self {
            Some(sink) => sink.flush().await,
            None => Ok(()),
        }
    }

    async fn drain(&mut self, reason: super::DrainReason) -> Result<(), StageError> {
        match self {
            Some(sink) => sink.drain(reason).await,
            None => Ok(()),
        }
    }
}
