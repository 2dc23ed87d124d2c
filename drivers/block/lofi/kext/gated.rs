// SPDX-License-Identifier: GPL-2.0

//! A value behind an admission gate: users enter, use it and leave; the
//! owner can close the gate, wait for everybody inside to leave and then
//! take the value out, for example to close a file that requests in flight
//! are reading.
//!
//! `kernel::revocable::Revocable` does the same with RCU, so its users may
//! not sleep while they hold the value; a block driver's workers sleep in
//! file I/O. [`Gated`] counts its users instead. The count and the closed
//! flag live in one atomic word ([`GateWord`]), so admission never races
//! with closing: a user is either admitted before the close (and waited
//! for) or refused.

use super::event::Event;
use core::{cell::UnsafeCell, ops::Deref};
use kernel::{
    prelude::*,
    sync::atomic::{Acquire, Atomic, Full, Relaxed, Release},
};

/// The closed flag, above every possible count.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The pure state machine of a gate, on one word.
///
/// Kept apart from the waiting so that KUnit can drive it.
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

    /// Enters the gate; `false` if it is closed (or, in theory, full).
    pub(crate) fn try_enter(&self) -> bool {
        let mut cur = self.0.load(Relaxed);
        loop {
            if cur & CLOSED != 0 || cur + 1 >= CLOSED {
                return false;
            }
            match self.0.cmpxchg(cur, cur + 1, Acquire) {
                Ok(_) => return true,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Leaves the gate (after a successful [`GateWord::try_enter`]).
    pub(crate) fn leave(&self) -> Left {
        let before = self.0.fetch_sub(1, Release);
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
            match self.0.cmpxchg(cur, cur | CLOSED, Full) {
                Ok(_) => return Some(cur == 0),
                Err(seen) => cur = seen,
            }
        }
    }
}

/// A value that users reach through a gate, and that its owner can take
/// back once the gate is closed and empty.
///
/// # Invariants
///
/// - `value` is changed only by [`Gated::revoke`], by the one caller that
///   set `taken`, after `drained` happened.
/// - `drained` happens once the gate is closed and nobody is inside: it is
///   signalled by the closer if the gate was empty, else by the last user
///   out.
/// - A [`GatedRef`] exists only for a successful `try_enter`, and leaves
///   the gate when dropped.
///
/// So while any `GatedRef` exists, `value` does not change.
#[pin_data]
pub(crate) struct Gated<T> {
    word: GateWord,
    taken: Atomic<bool>,
    value: UnsafeCell<Option<T>>,
    #[pin]
    drained: Event,
}

// SAFETY: The value is shared (`&T`) by users on any thread, and moved out
// by the revoker, which may be another thread: `T: Send + Sync` suffices.
unsafe impl<T: Send + Sync> Sync for Gated<T> {}
// SAFETY: As above.
unsafe impl<T: Send> Send for Gated<T> {}

/// A user inside the gate, with access to the value.
pub(crate) struct GatedRef<'a, T> {
    gate: &'a Gated<T>,
    value: &'a T,
}

impl<T> Deref for GatedRef<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> Drop for GatedRef<'_, T> {
    fn drop(&mut self) {
        if self.gate.word.leave() == Left::LastOut {
            self.gate.drained.signal();
        }
    }
}

impl<T> Gated<T> {
    /// An open gate in front of `value`.
    pub(crate) fn new(value: T) -> impl PinInit<Self> {
        pin_init!(Self {
            word: GateWord::new(),
            taken: Atomic::new(false),
            value: UnsafeCell::new(Some(value)),
            drained <- Event::new(),
        })
    }

    /// Enters the gate: the value, or `None` once the gate is closed.
    /// Never sleeps.
    pub(crate) fn enter(&self) -> Option<GatedRef<'_, T>> {
        if !self.word.try_enter() {
            return None;
        }
        // SAFETY: We are inside the gate: `value` does not change until we
        // leave (type invariant), which the `GatedRef` does on drop.
        let value = unsafe { (*self.value.get()).as_ref() };
        match value {
            Some(value) => Some(GatedRef { gate: self, value }),
            None => {
                // Not reachable while the gate is open (the value is taken
                // only after closing), but leave cleanly all the same.
                self.leave();
                None
            }
        }
    }

    fn leave(&self) {
        if self.word.leave() == Left::LastOut {
            self.drained.signal();
        }
    }

    /// Closes the gate, so that nobody enters any more, without waiting
    /// for those inside. Idempotent; never sleeps.
    pub(crate) fn close(&self) {
        if self.word.close() == Some(true) {
            // Closed empty: nobody will be the last out.
            self.drained.signal();
        }
    }

    /// Closes the gate and waits until everybody inside has left.
    /// Uninterruptible; every caller waits for the drain. The first caller
    /// gets the value; the others get `None`.
    pub(crate) fn revoke(&self) -> Option<T> {
        self.close();
        self.drained.wait();
        if self.taken.cmpxchg(false, true, Full).is_err() {
            return None;
        }
        // SAFETY: The gate is closed and drained, so nobody is inside or
        // can enter, and this caller set `taken`, which no other does: the
        // access is exclusive (type invariant).
        unsafe { (*self.value.get()).take() }
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
        assert_eq!(g.close(), Some(true));
    }

    #[test]
    fn closing_an_empty_gate_needs_no_wait() {
        let g = GateWord::new();
        assert_eq!(g.close(), Some(true));
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
    fn revoke_takes_the_value_once_users_have_left() {
        let gated = KBox::pin_init(Gated::new(7u32), GFP_KERNEL);
        assert!(gated.is_ok());
        if let Ok(gated) = gated {
            {
                let user = gated.enter();
                assert_eq!(user.as_deref(), Some(&7));
            }
            assert_eq!(gated.revoke(), Some(7));
            assert!(gated.enter().is_none());
            // A second revoker waits for the same drain and gets nothing.
            assert_eq!(gated.revoke(), None);
        }
    }

    #[test]
    fn a_closed_gate_still_yields_its_value_to_the_first_revoker() {
        let gated = KBox::pin_init(Gated::new(5u32), GFP_KERNEL);
        assert!(gated.is_ok());
        if let Ok(gated) = gated {
            gated.close();
            gated.close();
            assert!(gated.enter().is_none());
            assert_eq!(gated.revoke(), Some(5));
            assert_eq!(gated.revoke(), None);
        }
    }
}
