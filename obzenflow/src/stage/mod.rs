//! Stage kinds: the handler trait users implement for each, and typed helpers
//! for the common cases.
//!
//! | kind | trait | helpers |
//! |---|---|---|
//! | source | [`Source`] | [`from_iter`], [`from_receiver`] |
//! | transform | [`Transform`] (with middleware: [`TransformExt`]) | [`map`], [`filter`], [`flat_map`], [`try_map`] |
//! | sink | [`Sink`] | [`console`], [`collect`] |
//! | PostgreSQL (feature `postgres`) | | [`postgres::insert`] |
//! | files (feature `files`) | | [`csv::read`], [`csv::write`], [`jsonl::read`], [`jsonl::write`] |
//! | stateful | [`Stateful`] + [`EmitPolicy`] | [`reduce`], [`group_by`], [`top_n`]; by event time: [`window::tumbling`], [`window::sliding`], [`window::session`] |
//! | join | [`Join`] | [`inner_join`], [`left_join`], [`strict_join`] |
//! | observer | [`Observer`] | [`observe`] |
//!
//! Handlers return [`StageError`]: a transient or permanent failure sends the
//! input to the error lane and the stage goes on; a fatal one (or a panic)
//! fails the stage and the flow.

mod error;
#[cfg(feature = "files")]
mod file;
mod helpers;
mod middleware;
pub mod parallel;
pub mod partitioned;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod state;
mod traits;
pub mod window;

pub use crate::event::{DeliveryKey, Receipt, SourcePosition};
pub use error::{Severity, StageError};
#[cfg(feature = "files")]
pub use file::{MAX_LINE_BYTES, csv, jsonl};
pub use helpers::*;
#[cfg(feature = "metrics")]
pub(crate) use middleware::BREAKER_STATES;
pub use middleware::{
    BreakerPolicy, BreakerState, CircuitBreaker, Fallback, Instrument, MiddlewareReport,
    NoFallback, RateLimited, Retry, RetryPolicy, TransformExt,
};
pub use parallel::{Parallel, parallel};
pub use partitioned::{PartitionedSource, partitioned};
pub use traits::{
    Delivery, DrainReason, EmitPolicy, Emitter, Join, Observer, Poll, Sink, Source, Stateful,
    StatefulExt, StatefulStage, Transform, WithPolicy,
};
