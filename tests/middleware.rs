//! Middleware under tokio's paused clock: the rate limiter delays and never
//! drops, retry retries only transient failures within its caps, and the
//! circuit breaker opens, refuses with its reason, probes after the cooldown
//! and closes when the dependency has recovered. In a parallel stage the
//! rate limit and the breaker are the stage's, shared by its instances, and
//! each instance's retries draw their own jitter.

use obzenflow::prelude::*;
use obzenflow::stage::{
    BreakerPolicy, BreakerState, Emitter, MiddlewareReport, RetryPolicy, StageError, collect,
    from_iter, map,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn the_rate_limiter_delays_to_its_rate_and_never_drops() {
    let mut limited = map(|n: u32| n).rate_limit(10.0, 5);
    let mut out = Emitter::new();
    let started = Instant::now();
    for n in 0..25 {
        limited.process(n, &mut out).await.unwrap();
    }
    // A burst of 5 at once, then one every 100 ms.
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(out.take(), (0..25).collect::<Vec<_>>());
}

/// Fails transiently `fails` times per input (after emitting a partial
/// output), then succeeds; or fails permanently when `permanent`.
struct Flaky {
    fails: u32,
    calls: Arc<AtomicU32>,
    permanent: bool,
}

impl Transform<u32, u32> for Flaky {
    async fn process(&mut self, input: u32, out: &mut Emitter<u32>) -> Result<(), StageError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        out.emit(999);
        if self.permanent {
            return Err(StageError::permanent("bad input"));
        }
        if call < self.fails {
            return Err(StageError::transient("timed out"));
        }
        out.take();
        out.emit(input * 10);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_rate_of_zero_lets_the_burst_through_then_waits_without_panicking() {
    let mut limited = map(|n: u32| n).rate_limit(0.0, 2);
    let mut out = Emitter::new();
    for n in 0..2 {
        limited.process(n, &mut out).await.unwrap();
    }
    let third = tokio::time::timeout(
        Duration::from_secs(365 * 24 * 3600),
        limited.process(2, &mut out),
    )
    .await;
    assert!(third.is_err(), "still waiting after a year");
    assert_eq!(out.take(), [0, 1]);
}

#[tokio::test(start_paused = true)]
async fn retry_retries_transient_failures_with_backoff_and_discards_failed_attempts_output() {
    let calls = Arc::new(AtomicU32::new(0));
    let mut retried = Flaky {
        fails: 2,
        calls: Arc::clone(&calls),
        permanent: false,
    }
    .retry(RetryPolicy::attempts(3));
    let mut out = Emitter::new();
    let started = Instant::now();
    retried.process(7, &mut out).await.unwrap();
    assert_eq!(out.take(), [70]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // 100 ms then 200 ms, each shortened by up to 20% of jitter.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(240) && waited <= Duration::from_millis(300),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_at_its_cap_and_never_retries_permanent_errors() {
    let calls = Arc::new(AtomicU32::new(0));
    let mut retried = Flaky {
        fails: 100,
        calls: Arc::clone(&calls),
        permanent: false,
    }
    .retry(RetryPolicy::attempts(3));
    let mut out = Emitter::new();
    let error = retried.process(1, &mut out).await.unwrap_err();
    assert!(error.is_transient());
    assert_eq!(error.message(), "timed out (gave up after 3 attempts)");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        out.take().is_empty(),
        "what failed attempts emitted is discarded"
    );

    let calls = Arc::new(AtomicU32::new(0));
    let mut retried = Flaky {
        fails: 0,
        calls: Arc::clone(&calls),
        permanent: true,
    }
    .retry(RetryPolicy::attempts(5));
    let started = Instant::now();
    let error = retried.process(1, &mut out).await.unwrap_err();
    assert_eq!(error.message(), "bad input");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

/// A dependency that fails (transiently) while `down` is set, counting calls.
struct Dependency {
    down: Arc<AtomicBool>,
    calls: Arc<AtomicU32>,
}

impl Transform<u32, u32> for Dependency {
    async fn process(&mut self, input: u32, out: &mut Emitter<u32>) -> Result<(), StageError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(StageError::transient("connection refused"));
        }
        out.emit(input);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_refuses_probes_after_the_cooldown_and_closes() {
    let down = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicU32::new(0));
    let mut breaker = Dependency {
        down: Arc::clone(&down),
        calls: Arc::clone(&calls),
    }
    .circuit_breaker(BreakerPolicy::new(3, Duration::from_secs(30)));
    let mut out = Emitter::new();
    for n in 0..3 {
        assert!(breaker.process(n, &mut out).await.is_err());
    }
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    // Open: refused with the breaker's reason, the dependency is not called.
    let refused = breaker.process(3, &mut out).await.unwrap_err();
    assert!(
        refused
            .message()
            .starts_with("circuit breaker open after 3 consecutive transient failures"),
        "{refused}"
    );
    assert!(refused.is_transient());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // After the cooldown one probe goes through; still down: open again.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(breaker.process(4, &mut out).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    // Recovered: the next probe succeeds and closes the breaker.
    down.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(30)).await;
    breaker.process(5, &mut out).await.unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
    breaker.process(6, &mut out).await.unwrap();
    assert_eq!(out.take(), [5, 6]);
    // Closed -> Open -> HalfOpen -> Open -> HalfOpen -> Closed.
    assert_eq!(breaker.transitions(), 5);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_with_a_fallback_sends_inputs_there() {
    let down = Arc::new(AtomicBool::new(true));
    let mut breaker = Dependency {
        down,
        calls: Arc::default(),
    }
    .circuit_breaker(BreakerPolicy::new(1, Duration::from_secs(5)))
    .with_fallback(|n: u32| n + 1_000);
    let mut out = Emitter::new();
    assert!(breaker.process(1, &mut out).await.is_err());
    breaker.process(2, &mut out).await.unwrap();
    assert_eq!(out.take(), [1_002]);
}

#[tokio::test(start_paused = true)]
async fn middleware_is_declared_on_the_stage_in_flow() {
    let (sink, out) = collect::<u32>();
    let mut flow = flow! {
        name: "guarded",
        stages: {
            numbers = source!(u32 => from_iter(0..20u32));
            guarded = transform!(u32 -> u32 => map(|n: u32| n * 2)
                .rate_limit(5.0, 10)
                .retry(RetryPolicy::attempts(3))
                .circuit_breaker(BreakerPolicy::new(5, Duration::from_secs(1))));
            out = sink!(u32 => sink);
        },
        topology: {
            numbers |> guarded |> out;
        }
    };
    let started = Instant::now();
    flow.run().await.unwrap();
    assert_eq!(out.snapshot(), (0..20).map(|n| n * 2).collect::<Vec<_>>());
    // A burst of 10, then 10 more at 5 a second.
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

/// One event every 100 ms, `n` in all.
struct Ticks {
    next: u32,
    n: u32,
}

impl obzenflow::stage::Source<u32> for Ticks {
    async fn next(&mut self) -> Result<obzenflow::stage::Poll<u32>, StageError> {
        if self.next == self.n {
            return Ok(obzenflow::stage::Poll::End);
        }
        // The source's pace, on the test's paused clock.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.next += 1;
        Ok(obzenflow::stage::Poll::Events(vec![self.next - 1]))
    }
}

/// A dependency that is down until `up_at`, then recovers.
struct Outage {
    up_at: Instant,
}

impl Transform<u32, u32> for Outage {
    async fn process(&mut self, input: u32, out: &mut Emitter<u32>) -> Result<(), StageError> {
        if Instant::now() < self.up_at {
            return Err(StageError::transient("connection refused"));
        }
        out.emit(input);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn through_flow_a_breaker_opens_on_an_outage_probes_and_closes_when_it_recovers() {
    let (sink, out) = collect::<u32>();
    let up_at = Instant::now() + Duration::from_millis(2_500);
    let once_more = RetryPolicy {
        max_attempts: 2,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
        max_total_delay: Duration::from_secs(1),
        jitter: 0.0,
    };
    let mut flow = flow! {
        name: "outage",
        stages: {
            ticks = source!(u32 => Ticks { next: 0, n: 60 });
            call = transform!(u32 -> u32 => Outage { up_at }
                .retry(once_more)
                .circuit_breaker(BreakerPolicy::new(3, Duration::from_secs(1))));
            out = sink!(u32 => sink);
        },
        topology: {
            ticks |> call |> out;
        }
    };
    let report = flow.run().await.unwrap();
    let delivered = out.snapshot();
    let errors = flow.errors();
    // Nothing lost: every tick was delivered or is in the error lane.
    assert_eq!(delivered.len() + errors.len(), 60);
    let refused = errors
        .iter()
        .filter(|e| e.message.starts_with("circuit breaker open"))
        .count() as u64;
    let gave_up = errors
        .iter()
        .filter(|e| e.message == "connection refused (gave up after 2 attempts)")
        .count() as u64;
    assert_eq!(refused + gave_up, errors.len() as u64, "{errors:?}");
    // Once the dependency is back, the breaker closes and every later tick
    // gets through.
    let first = *delivered.first().unwrap();
    assert_eq!(delivered, (first..60).collect::<Vec<_>>());
    // Three failures opened it; the first probe, during the outage, failed
    // and reopened it; a later probe succeeded and closed it.
    let call = report.stage("call").unwrap();
    let [retry, breaker] = call.middleware.as_slice() else {
        panic!("two layers: {:?}", call.middleware)
    };
    assert_eq!(
        retry,
        &MiddlewareReport::Retry {
            retries: gave_up,
            recovered: 0,
            gave_up
        }
    );
    let MiddlewareReport::CircuitBreaker {
        state,
        opened,
        half_opened,
        closed,
        refused: counted,
    } = breaker
    else {
        panic!("{breaker:?}")
    };
    assert_eq!(state, "closed");
    assert_eq!(*closed, 1);
    assert!(*opened >= 2, "{breaker:?}");
    assert_eq!(opened, half_opened);
    assert_eq!(*counted, refused);
    // The first three failures opened it, and each failed probe reopened it.
    assert_eq!(gave_up, 3 + (opened - 1));
    // The same figures in the summary and the metrics.
    let summary = report.to_string();
    assert!(
        summary.contains(&format!(
            "circuit breaker: closed; opened {opened}, half-open {opened}, closed 1 times; {refused} inputs refused"
        )),
        "{summary}"
    );
    let metrics = flow.render_metrics();
    for (line, value) in [
        (
            "obzenflow_circuit_breaker_state{flow=\"outage\",stage=\"call\",layer=\"1\",state=\"closed\"}",
            1,
        ),
        (
            "obzenflow_circuit_breaker_state{flow=\"outage\",stage=\"call\",layer=\"1\",state=\"open\"}",
            0,
        ),
        (
            "obzenflow_circuit_breaker_transitions_total{flow=\"outage\",stage=\"call\",layer=\"1\",to=\"open\"}",
            *opened,
        ),
        (
            "obzenflow_circuit_breaker_transitions_total{flow=\"outage\",stage=\"call\",layer=\"1\",to=\"closed\"}",
            1,
        ),
        (
            "obzenflow_circuit_breaker_refused_total{flow=\"outage\",stage=\"call\",layer=\"1\"}",
            refused,
        ),
        (
            "obzenflow_retry_retries_total{flow=\"outage\",stage=\"call\",layer=\"0\"}",
            gave_up,
        ),
    ] {
        assert!(
            metrics.contains(&format!("{line} {value}\n")),
            "{line} {value} in\n{metrics}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_rate_limiter_reports_what_it_delayed() {
    let (sink, _) = collect::<u32>();
    let mut flow = flow! {
        name: "limited",
        stages: {
            numbers = source!(u32 => from_iter(0..30u32));
            slow = transform!(u32 -> u32 => map(|n: u32| n).rate_limit(10.0, 10));
            out = sink!(u32 => sink);
        },
        topology: {
            numbers |> slow |> out;
        }
    };
    let report = flow.run().await.unwrap();
    // A burst of 10 goes at once; the other 20 wait 0.1 s, 0.2 s, ... 2 s
    // after the start, each 0.1 s after the one before it.
    let MiddlewareReport::RateLimit { delayed, delay } =
        &report.stage("slow").unwrap().middleware[0]
    else {
        panic!()
    };
    assert_eq!(*delayed, 20);
    assert_eq!(delay.as_millis(), 2_000);
    assert!(
        flow.render_metrics().contains(
            "obzenflow_rate_limit_delayed_events_total{flow=\"limited\",stage=\"slow\",layer=\"0\"} 20\n"
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_parallel_stage_s_instances_share_its_rate_limit_and_its_figures() {
    let (sink, out) = collect::<u32>();
    let mut flow = flow! {
        name: "limited",
        stages: {
            numbers = source!(u32 => from_iter(0..40u32));
            slow = transform!(u32 -> u32 => map(|n: u32| n).rate_limit(10.0, 10), parallel: 4);
            out = sink!(u32 => sink);
        },
        topology: {
            numbers |> slow |> out;
        }
    };
    let started = Instant::now();
    let report = flow.run().await.unwrap();
    // The stage's limit, not each instance's: a burst of 10, then the other
    // 30 at 10 a second in all (4 buckets of their own would take no time).
    let elapsed = started.elapsed();
    assert!(
        elapsed.abs_diff(Duration::from_secs(3)) < Duration::from_millis(1),
        "{elapsed:?}"
    );
    assert_eq!(out.snapshot(), (0..40).collect::<Vec<_>>());
    let stage = report.stage("slow").unwrap();
    assert_eq!(stage.instances.len(), 4);
    let MiddlewareReport::RateLimit { delayed, .. } = &stage.middleware[0] else {
        panic!("{:?}", stage.middleware)
    };
    assert_eq!(*delayed, 30, "the instances' figures, summed");
}

/// A dependency that is down for good; counts the calls it gets.
#[derive(Clone)]
struct Unreachable {
    calls: Arc<AtomicU32>,
}

impl Transform<u32, u32> for Unreachable {
    async fn process(&mut self, _input: u32, _out: &mut Emitter<u32>) -> Result<(), StageError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(StageError::transient("connection refused"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_parallel_stage_s_instances_share_its_circuit_breaker() {
    let calls = Arc::new(AtomicU32::new(0));
    let (sink, out) = collect::<u32>();
    let down = Unreachable {
        calls: Arc::clone(&calls),
    };
    let mut flow = flow! {
        name: "outage",
        stages: {
            numbers = source!(u32 => from_iter(0..200u32));
            call = transform!(u32 -> u32 => down
                .circuit_breaker(BreakerPolicy::new(5, Duration::from_secs(3600))), parallel: 4);
            out = sink!(u32 => sink);
        },
        topology: {
            numbers |> call |> out;
        }
    };
    let report = flow.run().await.unwrap();
    assert!(out.snapshot().is_empty());
    // Five failures in all open the one breaker, and it refuses every
    // instance's calls (a breaker each would let 4 x 5 calls through);
    // at most one call per other instance can be under way as it opens.
    let calls = u64::from(calls.load(Ordering::SeqCst));
    assert!((5..=8).contains(&calls), "{calls} calls");
    let MiddlewareReport::CircuitBreaker {
        opened, refused, ..
    } = &report.stage("call").unwrap().middleware[0]
    else {
        panic!()
    };
    assert_eq!(*opened, 1);
    assert_eq!(calls + refused, 200, "each input called or refused once");
}

#[tokio::test(start_paused = true)]
async fn each_clone_of_a_retry_draws_its_own_jitter() {
    let policy = RetryPolicy {
        max_attempts: 2,
        initial_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(1),
        max_total_delay: Duration::from_secs(10),
        jitter: 1.0,
    };
    let retried = Unreachable {
        calls: Arc::default(),
    }
    .retry(policy);
    let mut pauses = Vec::new();
    for mut instance in [retried.clone(), retried.clone(), retried] {
        let started = Instant::now();
        assert!(instance.process(1, &mut Emitter::new()).await.is_err());
        pauses.push(started.elapsed());
    }
    // Instances that failed together do not all retry at the same moment.
    assert!(
        pauses[0] != pauses[1] && pauses[1] != pauses[2] && pauses[0] != pauses[2],
        "{pauses:?}"
    );
    assert!(pauses.iter().all(|pause| *pause <= Duration::from_secs(1)));
    // A jitter that is not a number is none, not a panic.
    let mut unjittered = Unreachable {
        calls: Arc::default(),
    }
    .retry(RetryPolicy {
        jitter: f64::NAN,
        ..policy
    });
    let started = Instant::now();
    assert!(unjittered.process(1, &mut Emitter::new()).await.is_err());
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}
