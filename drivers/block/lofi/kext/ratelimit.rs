// SPDX-License-Identifier: GPL-2.0

//! `printk_ratelimit()`: the kernel's shared limit on messages that a
//! caller can trigger at will (say, by reading a corrupt image).

use kernel::{bindings, prelude::*};

/// Whether a rate-limited message may be printed now (the kernel's
/// default: a burst of 10 every 5 seconds, shared by all such callers).
pub(crate) fn printk_ratelimit() -> bool {
    // SAFETY: `__printk_ratelimit()` only reads the name, a static C
    // string, to report suppressed messages.
    unsafe { bindings::__printk_ratelimit(c"lofi".as_char_ptr()) != 0 }
}
