//! How the head of a feedback loop learns that its loop is empty.
//!
//! Once the head's forward inputs have ended, it sends a probe (a control
//! mark with a round number) round the loop, behind whatever data is in it.
//! The stages of the loop pass a probe on in order between their outputs,
//! so when it comes back every output the loop made before it has come back
//! too. If nothing was emitted into the loop since the probe went out, the
//! loop is empty and the head closes it (writes its EOF); otherwise it sends
//! the next round. After `max_rounds` rounds it closes the loop anyway, and
//! what still circulates goes to the error lane.
//!
//! Invariants: at most one probe is out at a time; a probe of an old round
//! (or one that arrives when none is out) is ignored; once closed, the loop
//! stays closed and sends no more probes.

/// The probe rounds of one loop head.
#[derive(Debug)]
pub(crate) struct ProbeRounds {
    max_rounds: u32,
    round: u32,
    out: bool,
    emitted_since_probe: bool,
    closed: bool,
}

/// What the head does when a probe comes back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ProbeReturn {
    /// Not the probe that is out: nothing to do.
    Ignored,
    /// The loop had work in it: another round will be sent.
    Busy,
    /// The loop is empty (or out of rounds): write the EOF, it is closed.
    Close,
}

impl ProbeRounds {
    pub(crate) fn new(max_rounds: u32) -> Self {
        ProbeRounds {
            max_rounds: max_rounds.max(1),
            round: 0,
            out: false,
            emitted_since_probe: false,
            closed: false,
        }
    }

    /// The most rounds this loop gets.
    pub(crate) fn max_rounds(&self) -> u32 {
        self.max_rounds
    }

    /// Whether the loop is closed (the head has written its EOF).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// The head emitted into the loop.
    pub(crate) fn emitted(&mut self) {
        self.emitted_since_probe = true;
    }

    /// The round to send now, if one is due: none is out and the loop is
    /// open. Call only once the head's forward inputs have ended.
    pub(crate) fn next_round(&mut self) -> Option<u32> {
        if self.out || self.closed {
            return None;
        }
        self.round += 1;
        self.out = true;
        self.emitted_since_probe = false;
        Some(self.round)
    }

    /// Probe `round` came back; `produced` says whether the head emitted
    /// for the data that came back just before it.
    pub(crate) fn returned(&mut self, round: u32, produced: bool) -> ProbeReturn {
        if !self.out || round != self.round || self.closed {
            return ProbeReturn::Ignored;
        }
        self.out = false;
        if produced {
            self.emitted_since_probe = true;
        }
        if !self.emitted_since_probe || self.round >= self.max_rounds {
            self.closed = true;
            ProbeReturn::Close
        } else {
            ProbeReturn::Busy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_loop_closes_after_one_round() {
        let mut rounds = ProbeRounds::new(10);
        assert_eq!(rounds.next_round(), Some(1));
        assert_eq!(rounds.next_round(), None, "one probe out at a time");
        assert_eq!(rounds.returned(1, false), ProbeReturn::Close);
        assert!(rounds.is_closed());
        assert_eq!(rounds.next_round(), None, "a closed loop sends no probes");
    }

    #[test]
    fn a_loop_with_work_in_it_gets_another_round() {
        let mut rounds = ProbeRounds::new(10);
        assert_eq!(rounds.next_round(), Some(1));
        rounds.emitted();
        assert_eq!(rounds.returned(1, false), ProbeReturn::Busy);
        assert!(!rounds.is_closed());
        assert_eq!(rounds.next_round(), Some(2));
        assert_eq!(rounds.returned(2, true), ProbeReturn::Busy);
        assert_eq!(rounds.next_round(), Some(3));
        assert_eq!(rounds.returned(3, false), ProbeReturn::Close);
    }

    #[test]
    fn emitting_before_a_round_goes_out_does_not_count_against_it() {
        let mut rounds = ProbeRounds::new(10);
        rounds.emitted();
        assert_eq!(rounds.next_round(), Some(1));
        assert_eq!(rounds.returned(1, false), ProbeReturn::Close);
    }

    #[test]
    fn stale_and_unexpected_probes_are_ignored() {
        let mut rounds = ProbeRounds::new(10);
        assert_eq!(rounds.returned(1, false), ProbeReturn::Ignored, "none out");
        assert_eq!(rounds.next_round(), Some(1));
        rounds.emitted();
        assert_eq!(rounds.returned(1, false), ProbeReturn::Busy);
        assert_eq!(rounds.next_round(), Some(2));
        assert_eq!(rounds.returned(1, false), ProbeReturn::Ignored, "old round");
        assert_eq!(rounds.returned(2, false), ProbeReturn::Close);
        assert_eq!(rounds.returned(2, false), ProbeReturn::Ignored, "closed");
    }

    #[test]
    fn the_loop_closes_after_max_rounds_even_if_busy() {
        let mut rounds = ProbeRounds::new(2);
        assert_eq!(rounds.max_rounds(), 2);
        assert_eq!(rounds.next_round(), Some(1));
        assert_eq!(rounds.returned(1, true), ProbeReturn::Busy);
        assert_eq!(rounds.next_round(), Some(2));
        assert_eq!(rounds.returned(2, true), ProbeReturn::Close);
        assert!(rounds.is_closed());
    }

    #[test]
    fn zero_rounds_means_one() {
        let mut rounds = ProbeRounds::new(0);
        assert_eq!(rounds.max_rounds(), 1);
        assert_eq!(rounds.next_round(), Some(1));
        assert_eq!(rounds.returned(1, true), ProbeReturn::Close);
    }
}
