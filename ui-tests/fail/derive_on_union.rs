use obzenflow::prelude::*;

#[derive(EventVariant)]
union Signal {
    code: u32,
    raw: f32,
}

fn main() {}
