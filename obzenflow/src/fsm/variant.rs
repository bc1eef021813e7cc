//! What `fsm!` needs to know about the state and event enums, implemented by
//! `#[derive(StateVariant)]` and `#[derive(EventVariant)]`.

/// An enum of states. Derive it: `#[derive(StateVariant)]`.
///
/// ```
/// use obzenflow::fsm::StateVariant;
///
/// #[derive(StateVariant)]
/// enum Door { Closed, Open, Broken { reason: String } }
///
/// assert_eq!(Door::VARIANT_NAMES, ["Closed", "Open", "Broken"]);
/// let broken = Door::Broken { reason: "hinge".into() };
/// assert_eq!(broken.variant_name(), "Broken");
/// assert_eq!(broken.variant_index(), 2);
/// ```
pub trait StateVariant {
    /// Every variant's name, in declaration order.
    const VARIANT_NAMES: &'static [&'static str];
    /// The name of this value's variant.
    fn variant_name(&self) -> &'static str;
    /// The position of this value's variant in [`Self::VARIANT_NAMES`].
    fn variant_index(&self) -> usize;
}

/// An enum of events. Derive it: `#[derive(EventVariant)]`.
///
/// ```
/// use obzenflow::fsm::EventVariant;
///
/// #[derive(EventVariant)]
/// enum DoorEvent { Open, Close, Kick(u8) }
///
/// assert_eq!(DoorEvent::Kick(3).variant_name(), "Kick");
/// assert_eq!(DoorEvent::VARIANT_NAMES.len(), 3);
/// ```
pub trait EventVariant {
    /// Every variant's name, in declaration order.
    const VARIANT_NAMES: &'static [&'static str];
    /// The name of this value's variant.
    fn variant_name(&self) -> &'static str;
    /// The position of this value's variant in [`Self::VARIANT_NAMES`].
    fn variant_index(&self) -> usize;
}
