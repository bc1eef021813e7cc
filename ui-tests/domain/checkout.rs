//! The domain of the realistic compile-fail and compile-pass cases: a
//! checkout (orders, customers, payments), as a user's crate would have it.
//! Each case includes it with `#[path]`.
#![allow(dead_code, unused_imports)]

pub use obzenflow::prelude::*;
pub use obzenflow::stage::{collect, console, filter, flat_map, from_iter, group_by, inner_join, map, reduce, try_map};
pub use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order { pub id: u64, pub customer: u32, pub cents: u64, pub country: String }

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Customer { pub id: u32, pub name: String, pub vip: bool }

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payment { pub order: u64, pub cents: u64, pub method: String }

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Charged { pub order: u64, pub cents: u64, pub fee: u64 }

pub fn orders() -> Vec<Order> { Vec::new() }
pub fn customers() -> Vec<Customer> { Vec::new() }
pub fn is_valid(o: &Order) -> bool { o.cents > 0 && !o.country.is_empty() }
pub fn to_payment(o: Order) -> Payment { Payment { order: o.id, cents: o.cents, method: "card".to_owned() } }
pub fn charge(p: Payment) -> Charged { Charged { order: p.order, cents: p.cents, fee: p.cents / 50 } }
