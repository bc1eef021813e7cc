//! The domain of the realistic `fsm!` cases: an order's life, as a user's
//! crate would have it. Each case includes it with `#[path]`.
#![allow(dead_code, unused_imports)]

pub use obzenflow::prelude::*;
pub use std::time::Duration;

#[derive(Clone, Debug, PartialEq, StateVariant)]
pub enum OrderState { Placed, Paid { cents: u64 }, Shipped(String), Delivered, Cancelled { reason: String } }

#[derive(Clone, Debug, EventVariant)]
pub enum OrderEvent { Pay(u64), Ship { carrier: String }, Deliver, Cancel(String), Refund }

#[derive(Clone, Debug, PartialEq)]
pub enum OrderAction { Charge(u64), Notify(String), Restock }

pub struct Shop { pub max_cents: u64 }

#[derive(Clone, Debug, PartialEq, StateVariant)]
pub enum Parcel { Packed, InTransit }
