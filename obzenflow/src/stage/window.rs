//! Windows by event time: stateful helpers that group inputs by a key and
//! by the time each input says it happened (not when it arrived), and emit
//! a window's result once the data shows that no more input can fall in it.
//!
//! - [`tumbling`]: fixed, back-to-back windows (a day, an hour).
//! - [`sliding`]: windows of a size that start every `slide` (a day, every
//!   hour), so that an input falls in several.
//! - [`session`]: keyed state that expires: a key's window stays open while
//!   its inputs keep coming, and closes `gap` of event time after its last.
//!
//! The **watermark** is the latest event time seen minus the allowed
//! lateness ([`allowed_lateness`](WithPolicy::allowed_lateness), none by
//! default): a window is emitted once the watermark passes its end, and at
//! the end of the input every window still open is. An input whose every
//! window has already been emitted is **late**: it goes to the error lane
//! with its time and the watermark, and changes nothing. Everything follows
//! from the inputs and their order, never from the clock, so the same input
//! gives the same output and a replay verifies.
//!
//! ```
//! use obzenflow::prelude::*;
//! use obzenflow::stage::window::{Timestamp, Window, tumbling};
//! use std::time::Duration;
//!
//! #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
//! struct Departure { origin: String, time_hour: String, delay: f64 }
//!
//! // The largest delay per origin and day.
//! let worst = tumbling(
//!     Duration::from_secs(24 * 3600),
//!     |d: &Departure| d.origin.clone(),
//!     |d: &Departure| Timestamp::parse(&d.time_hour),
//!     |worst: &mut f64, d: Departure| *worst = worst.max(d.delay),
//! );
//! # let _ = worst;
//! ```

use super::StageError;
use super::traits::{DrainReason, EmitPolicy, Stateful, WithPolicy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in event time: milliseconds since the Unix epoch (negative
/// before it). Printed in RFC 3339, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// `millis` milliseconds after the Unix epoch.
    pub fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// `secs` seconds after the Unix epoch.
    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 time in UTC (`2013-01-01T06:00:00Z`, with or
    /// without fractions of a second).
    ///
    /// ```
    /// # use obzenflow::stage::window::Timestamp;
    /// assert_eq!(Timestamp::parse("1970-01-01T00:00:01.5Z").unwrap(), Timestamp(1500));
    /// assert!(Timestamp::parse("yesterday").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, StageError> {
        let time = humantime::parse_rfc3339_weak(text).map_err(|error| {
            StageError::permanent(format!("`{text}` is not an RFC 3339 time: {error}"))
        })?;
        Ok(Timestamp::from(time))
    }

    fn plus(self, duration: i64) -> Self {
        Timestamp(self.0.saturating_add(duration))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp(millis(after)),
            Err(before) => Timestamp(-millis(before.duration())),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let magnitude = Duration::from_millis(self.0.unsigned_abs());
        let time = if self.0 >= 0 {
            UNIX_EPOCH.checked_add(magnitude)
        } else {
            UNIX_EPOCH.checked_sub(magnitude)
        };
        match time {
            Some(time) if (0..253_402_300_800_000).contains(&self.0) => {
                write!(f, "{}", humantime::format_rfc3339_millis(time))
            }
            _ => write!(f, "{} ms from the Unix epoch", self.0),
        }
    }
}

/// What a window emits: its key, its span in event time (`start`
/// inclusive, `end` exclusive) and what was folded into it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window<K, A> {
    /// The key the inputs were grouped by.
    pub key: K,
    /// The window's first instant.
    pub start: Timestamp,
    /// The instant after its last.
    pub end: Timestamp,
    /// How many inputs it holds.
    pub count: u64,
    /// The fold of its inputs.
    pub value: A,
}

/// How windows are laid out in event time.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Tumbling { size: i64 },
    Sliding { size: i64, slide: i64 },
    Session { gap: i64 },
}

/// An open window's state.
#[derive(Debug, Serialize, Deserialize)]
struct Open<A> {
    start: Timestamp,
    count: u64,
    value: A,
}

/// A stateful handler that folds inputs into windows by key and event time.
/// See [`tumbling`], [`sliding`] and [`session`].
pub struct Windows<K, A, KF, TF, F> {
    shape: Shape,
    lateness: i64,
    key: KF,
    time: TF,
    fold: F,
    /// Open windows by (end, key), so that the ones to close come first.
    /// (A session's end moves: it is re-keyed when its key's input arrives.)
    open: BTreeMap<(Timestamp, K), Open<A>>,
    /// For sessions: each key's open window's end.
    session_ends: BTreeMap<K, Timestamp>,
    /// The latest event time seen.
    latest: Option<Timestamp>,
}

impl<K: fmt::Debug, A, KF, TF, F> fmt::Debug for Windows<K, A, KF, TF, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Windows")
            .field("shape", &self.shape)
            .field("open", &self.open.len())
            .field("watermark", &self.watermark())
            .finish_non_exhaustive()
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis())
        .unwrap_or(i64::MAX)
        .max(1)
}

/// Windows emit as the data moves the watermark: a stateful stage takes
/// them with their policy, [`EmitPolicy::Watermark`], already given.
fn windows<K, A, KF, TF, F>(
    shape: Shape,
    key: KF,
    time: TF,
    fold: F,
) -> WithPolicy<Windows<K, A, KF, TF, F>> {
    WithPolicy::new(
        Windows {
            shape,
            lateness: 0,
            key,
            time,
            fold,
            open: BTreeMap::new(),
            session_ends: BTreeMap::new(),
            latest: None,
        },
        EmitPolicy::Watermark,
    )
}

/// Back-to-back windows of `size` (aligned on the Unix epoch: a day's
/// window runs from midnight UTC), per key: each input is folded (from
/// `A::default()`) into the window its event time falls in, and each
/// window is emitted once, when the watermark passes its end.
///
/// `time` may fail (a time that does not parse): the input then goes to the
/// error lane.
pub fn tumbling<I, K, A, KF, TF, F>(
    size: Duration,
    key: KF,
    time: TF,
    fold: F,
) -> WithPolicy<Windows<K, A, KF, TF, F>>
where
    K: Ord + Clone + Send + 'static,
    A: Default + Clone + Send + 'static,
    KF: FnMut(&I) -> K + Send + 'static,
    TF: FnMut(&I) -> Result<Timestamp, StageError> + Send + 'static,
    F: FnMut(&mut A, I) + Send + 'static,
{
    windows(Shape::Tumbling { size: millis(size) }, key, time, fold)
}

/// Windows of `size` that start every `slide` (aligned on the Unix epoch),
/// per key: an input falls in `size / slide` windows and is folded into
/// each (so `I` is cloned for all but the last).
pub fn sliding<I, K, A, KF, TF, F>(
    size: Duration,
    slide: Duration,
    key: KF,
    time: TF,
    fold: F,
) -> WithPolicy<Windows<K, A, KF, TF, F>>
where
    I: Clone,
    K: Ord + Clone + Send + 'static,
    A: Default + Clone + Send + 'static,
    KF: FnMut(&I) -> K + Send + 'static,
    TF: FnMut(&I) -> Result<Timestamp, StageError> + Send + 'static,
    F: FnMut(&mut A, I) + Send + 'static,
{
    windows(
        Shape::Sliding {
            size: millis(size),
            slide: millis(slide),
        },
        key,
        time,
        fold,
    )
}

/// Keyed state that expires: a key's inputs are folded together while they
/// keep coming, and the key's window is emitted (and its state dropped)
/// once the watermark is `gap` past its last input. An input later than
/// that starts a new window for the key. (A session window, in the usual
/// words.)
pub fn session<I, K, A, KF, TF, F>(
    gap: Duration,
    key: KF,
    time: TF,
    fold: F,
) -> WithPolicy<Windows<K, A, KF, TF, F>>
where
    K: Ord + Clone + Send + 'static,
    A: Default + Clone + Send + 'static,
    KF: FnMut(&I) -> K + Send + 'static,
    TF: FnMut(&I) -> Result<Timestamp, StageError> + Send + 'static,
    F: FnMut(&mut A, I) + Send + 'static,
{
    windows(Shape::Session { gap: millis(gap) }, key, time, fold)
}

impl<K, A, KF, TF, F> WithPolicy<Windows<K, A, KF, TF, F>> {
    /// How far behind the latest event time an input may be and still be
    /// folded in: windows close that much later (none by default).
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.handler_mut().lateness = i64::try_from(lateness.as_millis()).unwrap_or(i64::MAX);
        self
    }
}

impl<K, A, KF, TF, F> Windows<K, A, KF, TF, F> {
    /// The latest event time seen minus the allowed lateness: no window
    /// ending at or before it will take more input.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.latest.map(|latest| latest.plus(-self.lateness))
    }
}

/// The start of the window of `size` (aligned on the epoch) holding `t`.
fn floor(t: i64, size: i64) -> i64 {
    t - t.rem_euclid(size)
}

impl<K: Ord + Clone, A: Default, KF, TF, F> Windows<K, A, KF, TF, F> {
    /// Folds `input` into the window `(start, end)` of `key`.
    fn fold_into<I>(&mut self, key: K, start: Timestamp, end: Timestamp, input: I)
    where
        F: FnMut(&mut A, I),
    {
        let open = self.open.entry((end, key)).or_insert_with(|| Open {
            start,
            count: 0,
            value: A::default(),
        });
        open.count += 1;
        (self.fold)(&mut open.value, input);
    }

    fn late(&self, time: Timestamp) -> StageError {
        let watermark = self.watermark().unwrap_or(time);
        StageError::permanent(format!(
            "late: its event time {time} is behind the watermark {watermark}, and its window has been emitted"
        ))
    }

    /// Whether a window ending at `end` is still open to input.
    fn open_at(&self, end: Timestamp) -> bool {
        self.watermark().is_none_or(|watermark| end > watermark)
    }

    fn take<I: Clone>(&mut self, input: I) -> Result<(), StageError>
    where
        KF: FnMut(&I) -> K,
        TF: FnMut(&I) -> Result<Timestamp, StageError>,
        F: FnMut(&mut A, I),
    {
        let time = (self.time)(&input)?;
        let key = (self.key)(&input);
        match self.shape {
            Shape::Tumbling { size } => {
                let start = floor(time.0, size);
                let end = Timestamp(start.saturating_add(size));
                if !self.open_at(end) {
                    return Err(self.late(time));
                }
                self.fold_into(key, Timestamp(start), end, input);
            }
            Shape::Sliding { size, slide } => {
                // The windows holding `time` start from the last start at or
                // before it back to the first whose end is after it.
                let last = floor(time.0, slide);
                let mut starts = Vec::new();
                let mut start = last;
                while start.saturating_add(size) > time.0 {
                    if self.open_at(Timestamp(start.saturating_add(size))) {
                        starts.push(start);
                    }
                    // Times near the end of `i64` stop here rather than wrap.
                    match start.checked_sub(slide) {
                        Some(earlier) => start = earlier,
                        None => break,
                    }
                }
                let Some((&first, rest)) = starts.split_last() else {
                    return Err(self.late(time));
                };
                for &start in rest.iter().rev() {
                    let end = Timestamp(start.saturating_add(size));
                    self.fold_into(key.clone(), Timestamp(start), end, input.clone());
                }
                let end = Timestamp(first.saturating_add(size));
                self.fold_into(key, Timestamp(first), end, input);
            }
            Shape::Session { gap } => {
                let end = time.plus(gap);
                if !self.open_at(end) {
                    return Err(self.late(time));
                }
                // The key's open window takes the input if the input comes
                // before it expires (and moves to its new end); otherwise
                // the input starts a new window, and the old one closes
                // when the watermark passes its end.
                let current = self
                    .session_ends
                    .get(&key)
                    .copied()
                    .filter(|&old_end| time < old_end);
                let moved = current.and_then(|old_end| self.open.remove(&(old_end, key.clone())));
                let mut open = moved.unwrap_or(Open {
                    start: time,
                    count: 0,
                    value: A::default(),
                });
                let end = current.map_or(end, |old| old.max(end));
                open.start = open.start.min(time);
                open.count += 1;
                (self.fold)(&mut open.value, input);
                self.session_ends.insert(key.clone(), end);
                self.open.insert((end, key), open);
            }
        }
        self.latest = Some(self.latest.map_or(time, |latest| latest.max(time)));
        Ok(())
    }

    /// Removes and returns the windows that end at or before `until` (all
    /// of them with `None`), in order of end, then key.
    fn close(&mut self, until: Option<Timestamp>) -> Vec<Window<K, A>> {
        let mut closed = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            let (end, _) = entry.key();
            if until.is_some_and(|until| *end > until) {
                break;
            }
            let ((end, key), open) = entry.remove_entry();
            if let Shape::Session { .. } = self.shape
                && self.session_ends.get(&key) == Some(&end)
            {
                self.session_ends.remove(&key);
            }
            closed.push(Window {
                key,
                start: open.start,
                end,
                count: open.count,
                value: open.value,
            });
        }
        closed
    }
}

impl<I, K, A, KF, TF, F> Stateful<I, Window<K, A>> for Windows<K, A, KF, TF, F>
where
    I: Clone,
    K: Ord + Clone + Send + Serialize + serde::de::DeserializeOwned + 'static,
    A: Default + Clone + Send + Serialize + serde::de::DeserializeOwned + 'static,
    KF: FnMut(&I) -> K + Send + 'static,
    TF: FnMut(&I) -> Result<Timestamp, StageError> + Send + 'static,
    F: FnMut(&mut A, I) + Send + 'static,
{
    fn accumulate(&mut self, input: I) -> Result<(), StageError> {
        self.take(input)
    }

    /// The open windows, each key's session end and the latest time seen.
    fn snapshot(&self) -> Option<Result<Vec<u8>, StageError>> {
        Some(super::state::encode(&(
            self.open.iter().collect::<Vec<_>>(),
            self.session_ends.iter().collect::<Vec<_>>(),
            self.latest,
        )))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), StageError> {
        type Saved<K, A> = (
            Vec<((Timestamp, K), Open<A>)>,
            Vec<(K, Timestamp)>,
            Option<Timestamp>,
        );
        let (open, session_ends, latest): Saved<K, A> = super::state::decode(state)?;
        self.open = open.into_iter().collect();
        self.session_ends = session_ends.into_iter().collect();
        self.latest = latest;
        Ok(())
    }

    /// The windows the watermark has passed.
    fn emit(&mut self) -> Vec<Window<K, A>> {
        match self.watermark() {
            Some(watermark) => self.close(Some(watermark)),
            None => Vec::new(),
        }
    }

    /// Every window still open: the input ended (or was stopped), so no
    /// more can fall in them.
    fn emit_final(&mut self, reason: DrainReason) -> Vec<Window<K, A>> {
        let _ = reason;
        self.close(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::StatefulStage;

    type Reading = (&'static str, i64, u32);
    /// A window as the tests compare it: key, start, end, count, value.
    type Shown = (String, i64, i64, u64, u32);

    fn feed<W: Stateful<Reading, Window<String, u32>>>(
        windows: &mut W,
        inputs: &[Reading],
    ) -> (Vec<Shown>, Vec<String>) {
        let mut out = Vec::new();
        let mut late = Vec::new();
        let show = |w: Window<String, u32>| (w.key, w.start.0, w.end.0, w.count, w.value);
        for input in inputs {
            if let Err(error) = windows.accumulate(*input) {
                late.push(error.to_string());
            }
            out.extend(windows.emit().into_iter().map(show));
        }
        out.extend(
            windows
                .emit_final(DrainReason::EndOfInput)
                .into_iter()
                .map(show),
        );
        (out, late)
    }

    fn key(r: &Reading) -> String {
        r.0.to_owned()
    }

    fn time(r: &Reading) -> Result<Timestamp, StageError> {
        Ok(Timestamp(r.1))
    }

    fn sum(total: &mut u32, r: Reading) {
        *total += r.2;
    }

    #[test]
    fn tumbling_windows_close_when_the_watermark_passes_their_end() {
        let mut w = tumbling(Duration::from_millis(10), key, time, sum)
            .into_parts()
            .0;
        let (out, late) = feed(
            &mut w,
            &[
                ("a", 0, 1),
                ("b", 9, 2),
                ("a", 10, 4),
                ("a", 3, 8),
                ("b", 25, 16),
                ("a", -1, 32),
            ],
        );
        // [0,10) closes when 10 arrives; the input at 3 is then late; the
        // window [-10,0) was never open before the watermark passed it.
        assert_eq!(
            out,
            [
                ("a".into(), 0, 10, 1, 1),
                ("b".into(), 0, 10, 1, 2),
                ("a".into(), 10, 20, 1, 4),
                ("b".into(), 20, 30, 1, 16),
            ]
        );
        assert_eq!(late.len(), 2);
        assert!(
            late[0].starts_with("late: its event time 1970-01-01T00:00:00.003Z is behind the watermark 1970-01-01T00:00:00.010Z"),
            "{}",
            late[0]
        );
    }

    #[test]
    fn allowed_lateness_keeps_windows_open_longer() {
        let mut w = tumbling(Duration::from_millis(10), key, time, sum)
            .allowed_lateness(Duration::from_millis(5))
            .into_parts()
            .0;
        let (out, late) = feed(
            &mut w,
            &[
                ("a", 0, 1),
                ("a", 12, 2),
                ("a", 3, 4),
                ("a", 15, 8),
                ("a", 4, 16),
            ],
        );
        // 3 arrives while the watermark is 7: taken. 15 moves it to 10: [0,10)
        // closes, and 4 is late.
        assert_eq!(
            out,
            [("a".into(), 0, 10, 2, 5), ("a".into(), 10, 20, 2, 10)]
        );
        assert_eq!(late.len(), 1);
    }

    #[test]
    fn sliding_windows_take_an_input_in_each_window_that_holds_it() {
        let mut w = sliding(
            Duration::from_millis(10),
            Duration::from_millis(5),
            key,
            time,
            sum,
        )
        .into_parts()
        .0;
        let (out, late) = feed(
            &mut w,
            &[("a", 4, 1), ("a", 5, 2), ("a", 9, 4), ("a", 10, 8)],
        );
        assert!(late.is_empty());
        assert_eq!(
            out,
            [
                ("a".into(), -5, 5, 1, 1),
                ("a".into(), 0, 10, 3, 7),
                ("a".into(), 5, 15, 3, 14),
                ("a".into(), 10, 20, 1, 8),
            ]
        );
    }

    #[test]
    fn a_session_expires_gap_after_its_keys_last_input() {
        let mut w = session(Duration::from_millis(10), key, time, sum)
            .into_parts()
            .0;
        let (out, late) = feed(
            &mut w,
            &[
                ("a", 0, 1),
                ("b", 2, 2),
                ("a", 8, 4),
                ("a", 17, 8),
                ("b", 30, 16),
                ("a", 40, 32),
            ],
        );
        assert!(late.is_empty());
        // a: 0, 8, 17 chain (each within 10 of the last); b's first state
        // expires at 12, before its next input at 30.
        assert_eq!(
            out,
            [
                ("b".into(), 2, 12, 1, 2),
                ("a".into(), 0, 27, 3, 13),
                ("b".into(), 30, 40, 1, 16),
                ("a".into(), 40, 50, 1, 32),
            ]
        );
    }

    #[test]
    fn a_window_closes_as_soon_as_the_watermark_reaches_its_end() {
        let mut w = tumbling(Duration::from_millis(10), key, time, sum)
            .into_parts()
            .0;
        assert_eq!(w.watermark(), None);
        w.accumulate(("a", 3, 1)).unwrap();
        assert!(
            w.emit().is_empty(),
            "[0, 10) is open while the watermark is 3"
        );
        w.accumulate(("a", 10, 2)).unwrap();
        assert_eq!(w.watermark(), Some(Timestamp(10)));
        let closed = w.emit();
        assert_eq!(
            closed.len(),
            1,
            "the watermark is at its end: it closes now"
        );
        assert_eq!(
            (closed[0].start, closed[0].end, closed[0].value),
            (Timestamp(0), Timestamp(10), 1)
        );
        assert!(format!("{w:?}").starts_with("Windows { shape: Tumbling { size: 10 }, open: 1"));
        let policy = tumbling(Duration::from_millis(10), key, time, sum)
            .allowed_lateness(Duration::from_millis(4));
        let (mut w, policy) = policy.into_parts();
        assert_eq!(policy, EmitPolicy::Watermark);
        w.accumulate(("a", 12, 1)).unwrap();
        assert_eq!(w.watermark(), Some(Timestamp(8)));
    }

    #[test]
    fn a_session_ends_at_exactly_gap_and_a_keys_next_session_survives_the_last_closing() {
        let mut w = session(Duration::from_millis(10), key, time, sum)
            .into_parts()
            .0;
        // An input exactly `gap` after the last starts a new session.
        let (out, late) = feed(&mut w, &[("a", 0, 1), ("a", 10, 2)]);
        assert!(late.is_empty());
        assert_eq!(out, [("a".into(), 0, 10, 1, 1), ("a".into(), 10, 20, 1, 2)]);
        // a's first session closes while its second is open; the second
        // still takes a's next input.
        let (out, _) = feed(
            &mut w,
            &[("a", 100, 1), ("a", 115, 2), ("b", 121, 4), ("a", 122, 8)],
        );
        assert_eq!(
            out,
            [
                ("a".into(), 100, 110, 1, 1),
                ("b".into(), 121, 131, 1, 4),
                ("a".into(), 115, 132, 2, 10),
            ]
        );
    }

    #[test]
    fn times_at_the_ends_of_the_range_do_not_overflow() {
        let mut w = sliding(
            Duration::from_millis(10),
            Duration::from_millis(5),
            key,
            time,
            sum,
        )
        .into_parts()
        .0;
        let (out, late) = feed(&mut w, &[("a", i64::MIN + 3, 1), ("a", i64::MAX - 1, 2)]);
        assert!(late.is_empty());
        // Each in the windows that hold it: the first has no window before
        // its own at the bottom of the range, the second has both.
        assert_eq!(out.iter().map(|w| w.3).sum::<u64>(), 3);
        let mut w = session(Duration::from_millis(10), key, time, sum)
            .into_parts()
            .0;
        let (out, _) = feed(&mut w, &[("a", i64::MAX - 1, 1), ("a", i64::MIN, 2)]);
        assert_eq!(out.len(), 1);
        assert_eq!(
            Timestamp(i64::MIN).to_string(),
            format!("{} ms from the Unix epoch", i64::MIN)
        );
    }

    #[test]
    fn timestamps_count_milliseconds_either_side_of_the_epoch() {
        assert_eq!(Timestamp::from_secs(2).millis(), 2000);
        assert_eq!(Timestamp::from_millis(-5).millis(), -5);
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(Timestamp::from(before), Timestamp(-1500));
        assert_eq!(
            Timestamp::from(UNIX_EPOCH + Duration::from_millis(7)),
            Timestamp(7)
        );
    }

    #[test]
    fn a_time_that_does_not_parse_is_the_inputs_error() {
        let mut w = tumbling(
            Duration::from_secs(60),
            |r: &(String, String)| r.0.clone(),
            |r: &(String, String)| Timestamp::parse(&r.1),
            |n: &mut u32, _| *n += 1,
        )
        .into_parts()
        .0;
        let error = w.accumulate(("a".into(), "soon".into())).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`soon` is not an RFC 3339 time")
        );
        w.accumulate(("a".into(), "2013-01-01T06:00:00Z".into()))
            .unwrap();
        assert_eq!(
            Timestamp::parse("2013-01-01T06:00:00Z")
                .unwrap()
                .to_string(),
            "2013-01-01T06:00:00.000Z"
        );
        assert_eq!(Timestamp(-1).to_string(), "-1 ms from the Unix epoch");
    }
}
