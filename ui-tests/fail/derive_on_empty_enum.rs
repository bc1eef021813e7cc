use obzenflow::prelude::*;

#[derive(StateVariant)]
enum Nothing {}

#[derive(EventVariant)]
enum NoEvents {}

fn main() {}
