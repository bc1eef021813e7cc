use obzenflow::prelude::*;

#[derive(StateVariant)]
enum Nothing {}

#[derive(EventVariant)]
enum NoEvents {}

fn main() {}

// Two independent mistakes, one per derive (several mistakes on purpose).
