// SPDX-License-Identifier: GPL-2.0

//! A one-shot event that tasks can wait for, killably: a `struct
//! completion` that is only ever completed with `complete_all()`.
//!
//! `kernel::sync::Completion` has no killable wait and no way to ask
//! whether it has happened; lofi needs both (a forced unmap that cannot
//! drain must be killable, and `DKIOCSTATE` reports whether the backing
//! file is closed yet).

use kernel::{bindings, prelude::*, types::Opaque};

/// Something that happens once.
///
/// # Invariants
///
/// `inner` was initialised with `init_completion()` and is only ever
/// completed with `complete_all()`.
#[pin_data]
pub(crate) struct Event {
    #[pin]
    inner: Opaque<bindings::completion>,
}

// SAFETY: A completion may be signalled and waited for from any thread.
unsafe impl Send for Event {}
// SAFETY: As above: every operation is thread-safe in C.
unsafe impl Sync for Event {}

impl Event {
    /// An event that has not happened.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes and pinned;
            // `init_completion` initialises all of it.
            inner <- Opaque::ffi_init(|slot: *mut bindings::completion| unsafe {
                bindings::init_completion(slot)
            }),
        })
    }

    fn raw(&self) -> *mut bindings::completion {
        self.inner.get()
    }

    /// Records that the event happened and wakes every waiter, now and
    /// later. Idempotent; never sleeps (callable in any context).
    pub(crate) fn signal(&self) {
        // SAFETY: `inner` is an initialised completion (type invariant).
        unsafe { bindings::complete_all(self.raw()) };
    }

    /// Whether the event has happened.
    pub(crate) fn happened(&self) -> bool {
        // SAFETY: As in `signal`.
        unsafe { bindings::completion_done(self.raw()) }
    }

    /// Waits until the event happens or the task gets a fatal signal
    /// (`EINTR`).
    pub(crate) fn wait_killable(&self) -> Result {
        // SAFETY: As in `signal`.
        match unsafe { bindings::wait_for_completion_killable(self.raw()) } {
            0 => Ok(()),
            _ => Err(EINTR),
        }
    }
}
