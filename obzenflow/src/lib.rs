//! ObzenFlow: event pipelines declared in one `flow!` block, driven by
//! supervisors that are finite state machines declared with [`fsm!`].
//!
//! The layers, bottom up: [`fsm`](mod@fsm) (state machines: `fsm!` and its
//! derives), [`event`] (envelopes, ids, error records), [`journal`] (memory
//! journals between stages, durable segment journals on disk), [`stage`]
//! (the handler trait of each stage kind, helpers, middleware), [`supervise`]
//! (each stage as a task driven by an `fsm!` lifecycle), [`flow`](mod@flow) (the
//! builder `flow!` expands to, the handle, reports, metrics, runs, replay);
//! and `app` (feature `app`), the command-line runner. The
//! README has a first pipeline; here, a first machine:
//!
//! ```
//! use obzenflow::prelude::*;
//!
//! #[derive(Clone, Debug, PartialEq, StateVariant)]
//! enum Light { Red, Green }
//!
//! #[derive(Clone, Debug, EventVariant)]
//! enum Tick { Next }
//!
//! let mut light = fsm! {
//!     state: Light; event: Tick;
//!     initial: Light::Red;
//!     state Light::Red { on Tick::Next => |_, _, _| Transition::to(Light::Green); }
//!     state Light::Green { on Tick::Next => |_, _, _| Transition::to(Light::Red); }
//! };
//! light.handle(&Tick::Next, &()).unwrap();
//! assert_eq!(light.state(), &Light::Green);
//! ```

// Lets the macros' expansions name `::obzenflow` inside this crate too.
#[allow(unused_extern_crates)]
extern crate self as obzenflow;

#[cfg(feature = "app")]
pub mod app;
pub mod event;
pub mod flow;
pub mod fsm;
pub mod journal;
pub mod prelude;
pub mod stage;
pub mod supervise;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[doc = include_str!("flow_macro.md")]
pub use obzenflow_macros::flow;
#[doc = include_str!("fsm/fsm_macro.md")]
pub use obzenflow_macros::fsm;
