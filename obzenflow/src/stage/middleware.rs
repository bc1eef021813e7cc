//! Middleware for transforms, declared on the handler they wrap:
//!
//! ```
//! use obzenflow::stage::{BreakerPolicy, RetryPolicy, TransformExt, try_map};
//! use std::time::Duration;
//!
//! let guarded = try_map(|n: u32| if n > 0 { Ok(n) } else { Err("zero") })
//!     .rate_limit(100.0, 10)
//!     .retry(RetryPolicy::attempts(3))
//!     .circuit_breaker(BreakerPolicy::new(5, Duration::from_secs(30)));
//! # let _ = guarded;
//! ```
//!
//! - [`rate_limit`](TransformExt::rate_limit): a token bucket with a burst;
//!   it delays events, it never drops them.
//! - [`retry`](TransformExt::retry): exponential backoff with jitter, only for
//!   errors the handler marks transient, with caps on attempts and on the
//!   total delay; what an attempt emitted before failing is discarded.
//! - [`circuit_breaker`](TransformExt::circuit_breaker): closed, open and
//!   half-open (an `fsm!` machine whose open state's timeout is the
//!   cooldown). While open, inputs go to the error lane with the breaker's
//!   reason, or to a fallback; never dropped silently.
//!
//! Every wait uses tokio's clock, so paused time drives them in tests.

use super::StageError;
use super::traits::{Emitter, Transform};
use crate::fsm::{EventVariant, StateMachine, StateVariant, Transition};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::{Instant, sleep};

// ---- figures ----

/// A middleware layer's live figures, shared between the layer and its
/// flow's report and metrics. Transforms hand theirs over through
/// [`Transform::instruments`].
#[derive(Clone, Debug)]
pub struct Instrument(Figures);

#[derive(Clone, Debug)]
enum Figures {
    RateLimit(Arc<RateLimitFigures>),
    Retry(Arc<RetryFigures>),
    Breaker(Arc<BreakerFigures>),
}

#[derive(Debug, Default)]
struct RateLimitFigures {
    delayed: AtomicU64,
    delay_nanos: AtomicU64,
}

#[derive(Debug, Default)]
struct RetryFigures {
    retries: AtomicU64,
    recovered: AtomicU64,
    gave_up: AtomicU64,
}

#[derive(Debug, Default)]
struct BreakerFigures {
    /// The state's index in [`BreakerState::VARIANT_NAMES`].
    state: AtomicU64,
    opened: AtomicU64,
    half_opened: AtomicU64,
    closed: AtomicU64,
    refused: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Instrument {
    /// The layer's figures now.
    pub fn report(&self) -> MiddlewareReport {
        match &self.0 {
            Figures::RateLimit(f) => MiddlewareReport::RateLimit {
                delayed: read(&f.delayed),
                delay: Duration::from_nanos(read(&f.delay_nanos)),
            },
            Figures::Retry(f) => MiddlewareReport::Retry {
                retries: read(&f.retries),
                recovered: read(&f.recovered),
                gave_up: read(&f.gave_up),
            },
            Figures::Breaker(f) => MiddlewareReport::CircuitBreaker {
                state: breaker_state_name(read(&f.state) as usize).to_owned(),
                opened: read(&f.opened),
                half_opened: read(&f.half_opened),
                closed: read(&f.closed),
                refused: read(&f.refused),
            },
        }
    }
}

/// The names a breaker's states have in reports and metrics, in
/// [`BreakerState::VARIANT_NAMES`] order.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) const BREAKER_STATES: [&str; 3] = ["closed", "open", "half_open"];

fn breaker_state_name(index: usize) -> &'static str {
    BREAKER_STATES.get(index).copied().unwrap_or("unknown")
}

/// What a middleware layer did, in a stage's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "middleware", rename_all = "snake_case")]
pub enum MiddlewareReport {
    /// A [`rate_limit`](TransformExt::rate_limit) layer.
    RateLimit {
        /// Events that waited for a token.
        delayed: u64,
        /// How long they waited, in all.
        delay: Duration,
    },
    /// A [`retry`](TransformExt::retry) layer.
    Retry {
        /// Calls repeated after a transient failure.
        retries: u64,
        /// Inputs that succeeded after one or more retries.
        recovered: u64,
        /// Inputs that went to the error lane with retries exhausted.
        gave_up: u64,
    },
    /// A [`circuit_breaker`](TransformExt::circuit_breaker) layer.
    CircuitBreaker {
        /// `closed`, `open` or `half_open`.
        state: String,
        /// Times it opened.
        opened: u64,
        /// Times its cooldown ended and it let a probe call through.
        half_opened: u64,
        /// Times a probe succeeded and it closed again.
        closed: u64,
        /// Inputs refused while it was open (to the error lane or the fallback).
        refused: u64,
    },
}

impl fmt::Display for MiddlewareReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MiddlewareReport::RateLimit { delayed, delay } => write!(
                f,
                "rate limit: {delayed} events delayed, {:.3} s in all",
                delay.as_secs_f64()
            ),
            MiddlewareReport::Retry {
                retries,
                recovered,
                gave_up,
            } => write!(
                f,
                "retry: {retries} retries, {recovered} inputs recovered, {gave_up} gave up"
            ),
            MiddlewareReport::CircuitBreaker {
                state,
                opened,
                half_opened,
                closed,
                refused,
            } => write!(
                f,
                "circuit breaker: {state}; opened {opened}, half-open {half_opened}, closed {closed} times; {refused} inputs refused"
            ),
        }
    }
}

/// Adds middleware to a transform handler.
///
/// **In a parallel stage** (`parallel: n`) each instance gets a clone of the
/// handler, and each layer is `Clone` when what it wraps is. A clone keeps
/// the stage's meaning of each layer:
/// - a rate limit is the stage's: every clone takes its tokens from one
///   bucket, so `rate_limit(100.0, 10)` on 4 instances is 100 events a
///   second in all, not 400;
/// - a circuit breaker is the stage's: the instances' failures count
///   together and an open breaker refuses every instance's calls (when its
///   cooldown ends, each instance's next call is a probe, so up to `n`
///   probes go out at once);
/// - retries are each instance's own, with the same policy, and each clone
///   draws its own jitter, so that instances that failed together do not
///   retry together.
///
/// The figures in the stage's report and metrics are the stage's: the
/// clones share them.
pub trait TransformExt<I, O>: Transform<I, O> + Sized {
    /// At most `per_second` events a second on average, `burst` at once.
    fn rate_limit(self, per_second: f64, burst: u32) -> RateLimited<Self> {
        RateLimited {
            inner: self,
            per_second: per_second.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: f64::from(burst.max(1)),
                last: None,
            })),
            figures: Arc::default(),
        }
    }

    /// Retries transient failures as `policy` says.
    fn retry(self, policy: RetryPolicy) -> Retry<Self> {
        Retry {
            inner: self,
            policy,
            seed: 0x9e37_79b9_7f4a_7c15,
            figures: Arc::default(),
        }
    }

    /// Stops calling the handler while it keeps failing, as `policy` says.
    fn circuit_breaker(self, policy: BreakerPolicy) -> CircuitBreaker<Self, NoFallback> {
        CircuitBreaker::new(self, policy, NoFallback)
    }
}

impl<I, O, X: Transform<I, O>> TransformExt<I, O> for X {}

// ---- rate limit ----

/// A transform behind a token bucket. See [`TransformExt::rate_limit`].
/// Its clones (the instances of a parallel stage) share the bucket.
#[derive(Debug)]
pub struct RateLimited<X> {
    inner: X,
    per_second: f64,
    burst: f64,
    bucket: Arc<Mutex<Bucket>>,
    figures: Arc<RateLimitFigures>,
}

/// The tokens of a rate limit as of `last`: below zero, they are owed to
/// calls already waiting for them.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    /// Takes a token: how long to wait for it (zero if there was one).
    fn take(&mut self, now: Instant, per_second: f64, burst: f64) -> Duration {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * per_second;
            self.tokens = (self.tokens + refill).min(burst);
        }
        self.last = Some(now);
        self.tokens -= 1.0;
        if self.tokens < 0.0 {
            // A rate so low that the wait overflows waits for ever.
            Duration::try_from_secs_f64(-self.tokens / per_second).unwrap_or(Duration::MAX)
        } else {
            Duration::ZERO
        }
    }
}

impl<X: Clone> Clone for RateLimited<X> {
    /// Another handler taking its tokens from the same bucket.
    fn clone(&self) -> Self {
        RateLimited {
            inner: self.inner.clone(),
            per_second: self.per_second,
            burst: self.burst,
            bucket: Arc::clone(&self.bucket),
            figures: Arc::clone(&self.figures),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static, X: Transform<I, O>> Transform<I, O> for RateLimited<X> {
    async fn process(&mut self, input: I, out: &mut Emitter<O>) -> Result<(), StageError> {
        let wait = self
            .bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(Instant::now(), self.per_second, self.burst);
        if !wait.is_zero() {
            bump(&self.figures.delayed, 1);
            bump(
                &self.figures.delay_nanos,
                u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX),
            );
            sleep(wait).await;
        }
        self.inner.process(input, out).await
    }

    fn instruments(&self, found: &mut Vec<Instrument>) {
        self.inner.instruments(found);
        found.push(Instrument(Figures::RateLimit(Arc::clone(&self.figures))));
    }
}

// ---- retry ----

/// When and how often to retry. See [`TransformExt::retry`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The delay before the first retry; it doubles at each retry.
    pub initial_delay: Duration,
    /// No single delay is longer.
    pub max_delay: Duration,
    /// The delays of one input add up to at most this.
    pub max_total_delay: Duration,
    /// Each delay is drawn from `delay * (1 - jitter) ..= delay`.
    pub jitter: f64,
}

impl RetryPolicy {
    /// `attempts` in all, from 100 ms doubling up to 10 s each and 60 s in all, 20% jitter.
    pub fn attempts(attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: attempts.max(1),
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_total_delay: Duration::from_secs(60),
            jitter: 0.2,
        }
    }
}

/// A transform whose transient failures are retried. See [`TransformExt::retry`].
/// Each clone (an instance of a parallel stage) retries on its own, with
/// jitter of its own.
#[derive(Debug)]
pub struct Retry<X> {
    inner: X,
    policy: RetryPolicy,
    seed: u64,
    figures: Arc<RetryFigures>,
}

impl<X: Clone> Clone for Retry<X> {
    fn clone(&self) -> Self {
        // The clones of one handler are made one after another, so how many
        // hold the figures tells them apart, the same way in every run.
        let salt = Arc::strong_count(&self.figures) as u64;
        Retry {
            inner: self.inner.clone(),
            policy: self.policy,
            seed: spread(self.seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            figures: Arc::clone(&self.figures),
        }
    }
}

/// A seed's bits mixed (splitmix64's finalizer); never zero, which the
/// xorshift in [`Retry::jittered`] would keep forever.
fn spread(seed: u64) -> u64 {
    let mut z = seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).max(1)
}

impl<X> Retry<X> {
    fn jittered(&mut self, delay: Duration) -> Duration {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let fraction = (self.seed >> 11) as f64 / (1u64 << 53) as f64;
        // A jitter that is not a number is none.
        let jitter = if self.policy.jitter.is_nan() {
            0.0
        } else {
            self.policy.jitter.clamp(0.0, 1.0)
        };
        delay.mul_f64(1.0 - jitter * fraction)
    }
}

impl<I: Clone + Send + 'static, O: Send + 'static, X: Transform<I, O>> Transform<I, O>
    for Retry<X>
{
    async fn process(&mut self, input: I, out: &mut Emitter<O>) -> Result<(), StageError> {
        let emitted = out.items.len();
        let mut delay = self.policy.initial_delay;
        let mut waited = Duration::ZERO;
        let mut attempt = 1;
        loop {
            match self.inner.process(input.clone(), out).await {
                Ok(()) => {
                    if attempt > 1 {
                        bump(&self.figures.recovered, 1);
                    }
                    return Ok(());
                }
                Err(error) => {
                    out.items.truncate(emitted);
                    let pause = self.jittered(delay.min(self.policy.max_delay));
                    let exhausted = attempt >= self.policy.max_attempts
                        || waited + pause > self.policy.max_total_delay;
                    if !error.is_transient() || exhausted {
                        if error.is_transient() {
                            bump(&self.figures.gave_up, 1);
                        }
                        return Err(if error.is_transient() {
                            StageError::transient(format!(
                                "{error} (gave up after {attempt} attempts)"
                            ))
                        } else {
                            error
                        });
                    }
                    bump(&self.figures.retries, 1);
                    sleep(pause).await;
                    waited += pause;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
    }

    fn instruments(&self, found: &mut Vec<Instrument>) {
        self.inner.instruments(found);
        found.push(Instrument(Figures::Retry(Arc::clone(&self.figures))));
    }
}

// ---- circuit breaker ----

/// When a breaker opens and how long it stays open. See [`TransformExt::circuit_breaker`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// How long it stays open before letting a probe call through.
    pub cooldown: Duration,
}

impl BreakerPolicy {
    /// Opens after `failures` consecutive failures, for `cooldown`.
    pub fn new(failures: u32, cooldown: Duration) -> Self {
        BreakerPolicy {
            failures: failures.max(1),
            cooldown,
        }
    }
}

/// A breaker's state.
#[derive(Clone, Debug, PartialEq, Eq, StateVariant)]
pub enum BreakerState {
    /// Calls go through; this many have failed in a row.
    Closed {
        /// Consecutive failures so far.
        failures: u32,
    },
    /// Calls are refused until the cooldown ends.
    Open {
        /// How long it stays open.
        cooldown: Duration,
    },
    /// One probe call goes through; its outcome closes or reopens the breaker.
    HalfOpen,
}

#[derive(Clone, Debug, EventVariant)]
enum BreakerEvent {
    Succeeded,
    Failed,
}

/// No fallback: while open, inputs go to the error lane.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFallback;

/// A transform behind a circuit breaker. See [`TransformExt::circuit_breaker`].
/// Its clones (the instances of a parallel stage) share the breaker.
pub struct CircuitBreaker<X, F> {
    inner: X,
    fallback: F,
    machine: Arc<Mutex<Machine>>,
    policy: BreakerPolicy,
    figures: Arc<BreakerFigures>,
}

type Machine = StateMachine<BreakerState, BreakerEvent, BreakerPolicy>;

impl<X, F> std::fmt::Debug for CircuitBreaker<X, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &self.state())
            .field("transitions", &self.transitions())
            .finish_non_exhaustive()
    }
}

impl<X: Clone, F: Clone> Clone for CircuitBreaker<X, F> {
    /// Another handler behind the same breaker.
    fn clone(&self) -> Self {
        CircuitBreaker {
            inner: self.inner.clone(),
            fallback: self.fallback.clone(),
            machine: Arc::clone(&self.machine),
            policy: self.policy,
            figures: Arc::clone(&self.figures),
        }
    }
}

fn breaker_machine() -> Machine {
    crate::fsm! {
        state: BreakerState; event: BreakerEvent; context: BreakerPolicy;
        initial: BreakerState::Closed { failures: 0 };
        exhaustive;

        state BreakerState::Closed { failures } {
            on BreakerEvent::Succeeded => |_, _, _| if *failures == 0 {
                Transition::stay()
            } else {
                Transition::to(BreakerState::Closed { failures: 0 })
            };
            on BreakerEvent::Failed => |_, _, policy| if failures + 1 >= policy.failures {
                Transition::to(BreakerState::Open { cooldown: policy.cooldown })
            } else {
                Transition::to(BreakerState::Closed { failures: failures + 1 })
            };
        }
        state BreakerState::Open { cooldown } {
            ignore BreakerEvent::Succeeded | BreakerEvent::Failed;
            timeout *cooldown => |_, _| Transition::to(BreakerState::HalfOpen);
        }
        state BreakerState::HalfOpen {
            on BreakerEvent::Succeeded => |_, _, _| Transition::to(BreakerState::Closed { failures: 0 });
            on BreakerEvent::Failed => |_, _, policy| Transition::to(BreakerState::Open { cooldown: policy.cooldown });
        }
    }
}

impl<X, F> CircuitBreaker<X, F> {
    fn new(inner: X, policy: BreakerPolicy, fallback: F) -> Self {
        CircuitBreaker {
            inner,
            fallback,
            machine: Arc::new(Mutex::new(breaker_machine())),
            policy,
            figures: Arc::default(),
        }
    }

    /// Sends inputs refused while the breaker is open to `fallback` instead
    /// of the error lane.
    pub fn with_fallback<G>(self, fallback: G) -> CircuitBreaker<X, G> {
        CircuitBreaker {
            inner: self.inner,
            fallback,
            machine: self.machine,
            policy: self.policy,
            figures: self.figures,
        }
    }

    /// The breaker's state now.
    pub fn state(&self) -> BreakerState {
        self.machine().state().clone()
    }

    fn machine(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, event: BreakerEvent) {
        let mut machine = self.machine();
        let before = machine.state().variant_index();
        // Every (state, event) pair is handled or ignored (`exhaustive`).
        let _ = machine.handle(&event, &self.policy);
        if machine.state().variant_index() != before {
            self.changed(machine.state());
        }
    }

    /// Counts a change of state, for the report and the metrics.
    fn changed(&self, state: &BreakerState) {
        let figures = &self.figures;
        figures
            .state
            .store(state.variant_index() as u64, Ordering::Relaxed);
        bump(
            match state {
                BreakerState::Closed { .. } => &figures.closed,
                BreakerState::Open { .. } => &figures.opened,
                BreakerState::HalfOpen => &figures.half_opened,
            },
            1,
        );
        tracing::info!(state = ?state, "circuit breaker");
    }

    /// How many times the breaker changed state.
    pub fn transitions(&self) -> u64 {
        let figures = &self.figures;
        read(&figures.opened) + read(&figures.half_opened) + read(&figures.closed)
    }
}

/// Where a breaker sends the inputs it refuses while open.
pub trait Fallback<I, O>: Send + 'static {
    /// Handles a refused input; `reason` says why it was refused.
    fn refused(&mut self, input: I, out: &mut Emitter<O>, reason: &str) -> Result<(), StageError>;
}

impl<I, O> Fallback<I, O> for NoFallback {
    fn refused(
        &mut self,
        _input: I,
        _out: &mut Emitter<O>,
        reason: &str,
    ) -> Result<(), StageError> {
        Err(StageError::transient(reason))
    }
}

impl<I, O, G: FnMut(I) -> O + Send + 'static> Fallback<I, O> for G {
    fn refused(&mut self, input: I, out: &mut Emitter<O>, _reason: &str) -> Result<(), StageError> {
        out.emit(self(input));
        Ok(())
    }
}

impl<I, O, X, F> Transform<I, O> for CircuitBreaker<X, F>
where
    I: Send + 'static,
    O: Send + 'static,
    X: Transform<I, O>,
    F: Fallback<I, O>,
{
    async fn process(&mut self, input: I, out: &mut Emitter<O>) -> Result<(), StageError> {
        let open = {
            let mut machine = self.machine();
            // An open breaker whose cooldown has passed lets a probe through.
            if machine.check_timeout(&self.policy).is_some() {
                self.changed(machine.state());
            }
            match machine.state() {
                BreakerState::Open { cooldown } => Some(*cooldown),
                _ => None,
            }
        };
        if let Some(cooldown) = open {
            bump(&self.figures.refused, 1);
            let reason = format!(
                "circuit breaker open after {} consecutive transient failures; refusing calls for {cooldown:?}",
                self.policy.failures
            );
            return self.fallback.refused(input, out, &reason);
        }
        let result = self.inner.process(input, out).await;
        // A permanent error is bad input, not a failing dependency.
        let failed = matches!(&result, Err(error) if error.is_transient());
        self.record(if failed {
            BreakerEvent::Failed
        } else {
            BreakerEvent::Succeeded
        });
        result
    }

    fn instruments(&self, found: &mut Vec<Instrument>) {
        self.inner.instruments(found);
        found.push(Instrument(Figures::Breaker(Arc::clone(&self.figures))));
    }
}
