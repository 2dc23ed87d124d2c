// SPDX-License-Identifier: GPL-2.0

//! An owned workqueue, and the allocation scopes of I/O paths.
//!
//! `kernel::workqueue` offers the system queues and work items owned by
//! `Arc`/`KBox`. A block driver needs its own queue (`WQ_MEM_RECLAIM`, so
//! that I/O makes progress under memory pressure).

use core::ptr::NonNull;
use kernel::{bindings, prelude::*, workqueue::Queue};

/// Flags of `alloc_workqueue()` (`enum wq_flags`, include/linux/workqueue.h).
pub(crate) mod flags {
    /// Not bound to a CPU.
    pub(crate) const UNBOUND: u32 = kernel::bindings::wq_flags_WQ_UNBOUND;
    /// May be used for memory reclaim: has a rescuer thread.
    pub(crate) const MEM_RECLAIM: u32 = kernel::bindings::wq_flags_WQ_MEM_RECLAIM;
    /// Frozen with user space during suspend and hibernation, so that no
    /// I/O reaches a backing file while its file system is frozen.
    pub(crate) const FREEZABLE: u32 = kernel::bindings::wq_flags_WQ_FREEZABLE;
}

/// A workqueue that this value created and destroys.
///
/// # Invariants
///
/// `wq` was returned by `alloc_workqueue()` and is destroyed only by drop.
pub(crate) struct OwnedQueue {
    wq: NonNull<bindings::workqueue_struct>,
}

// SAFETY: Workqueues may be used from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: As above.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// Creates a workqueue named `name` (with one `%u` filled from `n`),
    /// with `flags` and at most `max_active` items running at once.
    pub(crate) fn new(name: &CStr, n: u32, flags: u32, max_active: i32) -> Result<Self> {
        // SAFETY: `name` is a valid format with at most one `%u`, matched
        // by `n`.
        let wq =
            unsafe { bindings::alloc_workqueue_noprof(name.as_char_ptr(), flags, max_active, n) };
        // INVARIANT: Just allocated.
        Ok(Self {
            wq: NonNull::new(wq).ok_or(ENOMEM)?,
        })
    }

    /// The queue, for `kernel::workqueue` work items.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: `wq` is valid until drop, which outlives the borrow.
        unsafe { Queue::from_raw(self.wq.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the queue is ours; destroying it
        // waits for every queued item to finish.
        unsafe { bindings::destroy_workqueue(self.wq.as_ptr()) };
    }
}

/// While alive, the current task is an I/O flusher for a block device
/// backed by a file, as `loop`'s workers are:
///
/// - `PF_MEMALLOC_NOIO`: its allocations do no I/O (they act as
///   `GFP_NOIO`), like C's `memalloc_noio_save()`; it must not recurse into
///   the block layer through reclaim, where it could wait on its own device;
/// - `PF_LOCAL_THROTTLE`: its buffered writes to the backing file are
///   throttled only against that file's own device, not against the dirty
///   pages of the device it serves, which only it can clean.
///
/// The flags the task had before are restored when the scope ends.
pub(crate) struct IoFlusherScope {
    /// The bits this scope set (those that were clear before).
    set: u32,
    /// The scope belongs to one task: not `Send`.
    _task: core::marker::PhantomData<*mut ()>,
}

/// The flags an [`IoFlusherScope`] sets.
const IO_FLUSHER_FLAGS: u32 = bindings::PF_MEMALLOC_NOIO | bindings::PF_LOCAL_THROTTLE;

impl IoFlusherScope {
    /// Enters the scope for the current task.
    pub(crate) fn enter() -> Self {
        // SAFETY: `current` is always valid in task context, and only the
        // task itself changes these bits of its own `flags` (as
        // include/linux/sched/mm.h does).
        let set = unsafe {
            let task = bindings::get_current();
            let set = !(*task).flags & IO_FLUSHER_FLAGS;
            (*task).flags |= IO_FLUSHER_FLAGS;
            set
        };
        Self {
            set,
            _task: core::marker::PhantomData,
        }
    }
}

impl Drop for IoFlusherScope {
    fn drop(&mut self) {
        // SAFETY: As in `enter`; clears only the bits `enter` set.
        unsafe { (*bindings::get_current()).flags &= !self.set };
    }
}

/// While alive, the current task's allocations do no I/O
/// (`PF_MEMALLOC_NOIO`, C's `memalloc_noio_save()`/`_restore()`): for code
/// that runs while a queue it could recurse into is frozen or in the
/// submission path of a device.
pub(crate) struct NoIoScope {
    /// Whether this scope set the flag (it was clear before).
    set: bool,
    /// The scope belongs to one task: not `Send`.
    _task: core::marker::PhantomData<*mut ()>,
}

impl NoIoScope {
    /// Enters the scope for the current task.
    pub(crate) fn enter() -> Self {
        // SAFETY: `current` is always valid in task context, and only the
        // task itself changes this bit of its own `flags`.
        let set = unsafe {
            let task = bindings::get_current();
            let set = (*task).flags & bindings::PF_MEMALLOC_NOIO == 0;
            (*task).flags |= bindings::PF_MEMALLOC_NOIO;
            set
        };
        Self {
            set,
            _task: core::marker::PhantomData,
        }
    }
}

impl Drop for NoIoScope {
    fn drop(&mut self) {
        if self.set {
            // SAFETY: As in `enter`; clears only the bit `enter` set.
            unsafe { (*bindings::get_current()).flags &= !bindings::PF_MEMALLOC_NOIO };
        }
    }
}
