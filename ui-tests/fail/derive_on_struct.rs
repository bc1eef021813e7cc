use obzenflow::prelude::*;

#[derive(StateVariant)]
struct Door {
    open: bool,
}

fn main() {}
