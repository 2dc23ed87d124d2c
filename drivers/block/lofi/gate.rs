// SPDX-License-Identifier: GPL-2.0

//! The in-flight gate: admits I/O until it is closed, counts admitted I/O,
//! and tells when the last of it has finished after closing.
//!
//! A forced unmap closes the gate (new requests fail with EIO), waits on a
//! completion until every admitted request has left, and only then closes
//! the backing file. The count and the closed flag live in one atomic word,
//! so admission never races with closing: a request is either admitted
//! before the close (and waited for) or refused.

use kernel::{
    prelude::*,
    sync::{atomic::Atomic, atomic::Relaxed, Completion},
};

/// The closed flag, above every possible count.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The pure state machine of the gate, on one word.
///
/// Kept apart from the completion so that KUnit can drive it.
pub(crate) struct GateWord(Atomic<usize>);

/// What leaving the gate did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Left {
    /// Others are still inside, or the gate is open.
    Busy,
    /// This was the last one out of a closed gate.
    LastOut,
}

impl GateWord {
    /// An open gate with nobody inside.
    pub(crate) const fn new() -> Self {
        Self(Atomic::new(0))
    }

    /// Enters the gate; `false` if it is closed.
    pub(crate) fn try_enter(&self) -> bool {
        let mut cur = self.0.load(Relaxed);
        loop {
            // The count cannot reach the flag bit: requests are bounded by
            // the tag set's depth.
            if cur & CLOSED != 0 || cur + 1 >= CLOSED {
                return false;
            }
            match self.0.cmpxchg(cur, cur + 1, kernel::sync::atomic::Acquire) {
                Ok(_) => return true,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Leaves the gate (after a successful [`GateWord::try_enter`]).
    pub(crate) fn leave(&self) -> Left {
        let before = self.0.fetch_sub(1, kernel::sync::atomic::Release);
        if before == CLOSED | 1 {
            Left::LastOut
        } else {
            Left::Busy
        }
    }

    /// Closes the gate. Returns `None` if it was already closed, else
    /// whether it was empty (then nobody will be the last out).
    pub(crate) fn close(&self) -> Option<bool> {
        let mut cur = self.0.load(Relaxed);
        loop {
            if cur & CLOSED != 0 {
                return None;
            }
            match self
                .0
                .cmpxchg(cur, cur | CLOSED, kernel::sync::atomic::Full)
            {
                Ok(_) => return Some(cur == 0),
                Err(seen) => cur = seen,
            }
        }
    }

    /// Whether the gate is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.load(Relaxed) & CLOSED != 0
    }
}

/// A gate whose closing waits for everybody inside to leave.
#[pin_data]
pub(crate) struct InflightGate {
    word: GateWord,
    #[pin]
    drained: Completion,
}

impl InflightGate {
    /// An open gate.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            word: GateWord::new(),
            drained <- Completion::new(),
        })
    }

    /// Admits one request; `false` once the gate is closed.
    pub(crate) fn try_enter(&self) -> bool {
        self.word.try_enter()
    }

    /// A request admitted by [`InflightGate::try_enter`] has finished.
    /// Never sleeps.
    pub(crate) fn leave(&self) {
        if self.word.leave() == Left::LastOut {
            self.drained.complete_all();
        }
    }

    /// Closes the gate and waits until every admitted request has left.
    /// Returns `false` if the gate was already closed (someone else drains).
    pub(crate) fn close_and_drain(&self) -> bool {
        match self.word.close() {
            None => false,
            Some(true) => true,
            Some(false) => {
                self.drained.wait_for_completion();
                true
            }
        }
    }
}

#[kunit_tests(lofi_gate)]
mod tests {
    use super::*;

    #[test]
    fn open_gate_admits_and_counts() {
        let g = GateWord::new();
        assert!(g.try_enter());
        assert!(g.try_enter());
        assert_eq!(g.leave(), Left::Busy);
        assert_eq!(g.leave(), Left::Busy);
        assert!(!g.is_closed());
    }

    #[test]
    fn closing_an_empty_gate_needs_no_wait() {
        let g = GateWord::new();
        assert_eq!(g.close(), Some(true));
        assert!(g.is_closed());
        assert!(!g.try_enter());
        assert_eq!(g.close(), None);
    }

    #[test]
    fn last_one_out_of_a_closed_gate_is_told() {
        let g = GateWord::new();
        assert!(g.try_enter());
        assert!(g.try_enter());
        assert_eq!(g.close(), Some(false));
        assert!(!g.try_enter());
        assert_eq!(g.leave(), Left::Busy);
        assert_eq!(g.leave(), Left::LastOut);
        assert!(!g.try_enter());
    }

    #[test]
    fn drained_gate_does_not_block() {
        let gate = KBox::pin_init(InflightGate::new(), GFP_KERNEL);
        assert!(gate.is_ok());
        if let Ok(gate) = gate {
            assert!(gate.try_enter());
            gate.leave();
            assert!(gate.close_and_drain());
            assert!(!gate.try_enter());
            assert!(!gate.close_and_drain());
        }
    }
}
