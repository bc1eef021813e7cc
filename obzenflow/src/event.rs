//! What flows between stages: payloads wrapped in envelopes that say who wrote
//! them, where they sit in their journal, what caused them and when.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a stage may emit: any cloneable, thread-safe, serializable type. This
/// is implemented for every such type; nothing needs to be written by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the payload of a stage: payloads are journaled, so they are `Clone`, `Serialize`, `Deserialize`, `Send` and `Sync`, and own their data",
    label = "`{Self}` is not a payload",
    note = "derive the traits on your type: `#[derive(Clone, serde::Serialize, serde::Deserialize)]`; and use owned types in it (`String`, not `&str`; `Vec<T>`, not `&[T]`)"
)]
pub trait Payload: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}

// Blanket: not listed on every type of the documentation (the trait
// says what implements it).
#[doc(hidden)]
#[diagnostic::do_not_recommend]
impl<T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static> Payload for T {}

/// The position of a stage in its flow, in the order stages were added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StageId(pub u32);

/// The identity of an event within a run: the stage that wrote it and its
/// sequence number in that stage's journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventId {
    /// The writing stage.
    pub stage: StageId,
    /// Its position (from 0) in that stage's journal.
    pub seq: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.stage.0, self.seq)
    }
}

/// The input events an event was made from.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Parents {
    /// A source's event, or an aggregate emitted at end of input.
    #[default]
    None,
    /// The usual case: one input event.
    One(EventId),
    /// Several inputs (a join's reference and stream events).
    Many(Arc<[EventId]>),
    /// The inputs of one upstream journal from the first to the last of
    /// these two (inclusive): what a stateful stage's result was folded
    /// from lies between them (its key's or its window's inputs among
    /// them), recorded compactly however many there were.
    Range([EventId; 2]),
}

impl Parents {
    /// The parent ids as a slice.
    pub fn ids(&self) -> &[EventId] {
        match self {
            Parents::None => &[],
            Parents::One(id) => std::slice::from_ref(id),
            Parents::Many(ids) => ids,
            Parents::Range(ends) => ends,
        }
    }
}

/// One entry of a journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: DeserializeOwned"))]
pub struct Envelope<T> {
    /// Who wrote it and where it sits in the writer's journal.
    pub id: EventId,
    /// The events it was made from.
    pub parents: Parents,
    /// When it was appended, in microseconds since the Unix epoch (one stamp per batch).
    pub timestamp_micros: u64,
    /// What it carries.
    pub body: Body<T>,
}

impl<T> Envelope<T> {
    /// The writing stage.
    pub fn stage(&self) -> StageId {
        self.id.stage
    }

    /// The position in the writer's journal.
    pub fn seq(&self) -> u64 {
        self.id.seq
    }

    /// The payload, if this is a data entry.
    pub fn data(&self) -> Option<&T> {
        match &self.body {
            Body::Data(data) => Some(data),
            _ => None,
        }
    }
}

/// The body of an envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Body<T> {
    /// A payload.
    Data(T),
    /// An input the stage failed on: the error lane. Boxed, so that data
    /// envelopes stay as small as their payload allows.
    Error(Box<ErrorRecord>),
    /// A control marker.
    Control(Control),
    /// A stateful stage's state, written into its journal so that a
    /// resumed run restores it rather than folding every input again.
    /// Readers downstream skip it; verification does not compare it.
    Snapshot(Box<StateSnapshot>),
}

/// What a stateful stage journals to be resumed from: its handler's state
/// (as [`Stateful::snapshot`](crate::stage::Stateful::snapshot) encoded
/// it) after the inputs before `consumed`, and what the stage itself kept
/// about them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// For each input the state has folded: the first event not folded
    /// (its upstream stage, and the sequence number after the last one taken).
    pub consumed: Vec<EventId>,
    /// Inputs taken since the stage last emitted.
    pub pending: u64,
    /// The first input taken and the last (what the next emit's parents span).
    pub inputs: Option<[EventId; 2]>,
    /// The handler's state.
    pub state: Vec<u8>,
}

/// Control markers that travel in journals with the data, so that their order
/// relative to the data is never ambiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// The writer will write nothing more: every reader of this journal has
    /// seen all of it once it reads this.
    Eof,
    /// The writer was asked to stop and drained what it had; an EOF follows.
    Drain,
    /// A feedback loop's probe, sent round the loop by its head once the
    /// head's forward inputs have ended. Transforms pass it on in order; when
    /// it comes back and the head has emitted nothing since sending it, the
    /// loop is empty.
    Probe(u32),
    /// Where a source had read up to when it wrote the entries before this
    /// one: what a resumed run continues from.
    Position(SourcePosition),
    /// The writing stage has taken every event of stage `.stage` before
    /// sequence number `.seq` (for inputs that produced nothing, which no
    /// record's parents name): what a resumed run continues reading from.
    Consumed(EventId),
}

/// How far a source has read its input: written into its journal after each
/// batch it hands over (see [`Source::position`](crate::stage::Source::position)).
/// A file source fills in all three; a queue its `offset`; an iterator its
/// `records`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourcePosition {
    /// Records taken from the input so far, including any that went to the
    /// error lane.
    pub records: u64,
    /// Lines read so far (for line-oriented input; 0 otherwise).
    pub line: u64,
    /// Bytes read so far (of the decompressed input), or a queue's offset.
    pub offset: u64,
}

/// Whether a failure may go away if the same input is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// A flaky dependency, a timeout: worth retrying.
    Transient,
    /// Bad input: retrying gives the same answer.
    Permanent,
}

/// What failed, where, and on which input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// The stage whose handler failed.
    pub stage: Arc<str>,
    /// Transient or permanent.
    pub kind: ErrorKind,
    /// The handler's error message.
    pub message: String,
    /// The input event it failed on, if it failed on one.
    pub input_id: Option<EventId>,
    /// That input, as JSON text, when the failing stage could keep a copy
    /// (the input itself is in the upstream journal under `input_id`).
    pub input: Option<String>,
}

impl fmt::Display for ErrorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stage `{}` failed", self.stage)?;
        if let Some(id) = self.input_id {
            write!(f, " on event {id}")?;
        }
        write!(f, " ({:?}): {}", self.kind, self.message)
    }
}

/// Microseconds since the Unix epoch, now.
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// What a sink can deduplicate its deliveries by: the run and the input
/// event being delivered. The same input of the same run (a delivery
/// repeated after a crash, by a resumed run) has the same key; another run
/// has other keys. Printed as `run/stage#seq`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeliveryKey {
    /// The run's id (its directory's name, for disk journals).
    pub run: Arc<str>,
    /// The input event.
    pub event: EventId,
}

impl fmt::Display for DeliveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.run, self.event)
    }
}

/// Proof that a sink delivered an event: the record a sink journals for
/// each input it consumed (re-exported as `obzenflow::stage::Receipt`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Where or how it was delivered, if the sink says.
    pub detail: Option<String>,
}

impl Receipt {
    /// Delivered, nothing more to say.
    pub fn delivered() -> Self {
        Receipt { detail: None }
    }

    /// Delivered, with a note (a file offset, a remote id).
    pub fn with_detail(detail: impl Into<String>) -> Self {
        Receipt {
            detail: Some(detail.into()),
        }
    }
}
