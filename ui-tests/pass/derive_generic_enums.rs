// The derives on enums with generics, lifetimes and where clauses.
use obzenflow::fsm::{EventVariant, StateVariant};

#[derive(StateVariant)]
enum Holder<'a, T>
where
    T: Clone,
{
    Borrowed(&'a T),
    Owned { value: T },
    Nothing,
}

#[derive(EventVariant)]
enum Only {
    One,
}

fn main() {
    let value = 3u8;
    let holder = Holder::Borrowed(&value);
    assert_eq!(holder.variant_name(), "Borrowed");
    assert_eq!(Holder::<u8>::VARIANT_NAMES, ["Borrowed", "Owned", "Nothing"]);
    assert_eq!(Only::One.variant_index(), 0);
}
