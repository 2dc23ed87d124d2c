// SPDX-License-Identifier: GPL-2.0

//! An owned workqueue, work items embedded in C-allocated memory, and the
//! no-I/O allocation scope.
//!
//! `kernel::workqueue` offers the system queues and work items owned by
//! `Arc`/`KBox`. A block driver needs its own queue (`WQ_MEM_RECLAIM`, so
//! that I/O makes progress under memory pressure) and work items inside
//! blk-mq's per-request data, whose memory blk-mq owns.

use core::ptr::NonNull;
use kernel::{bindings, prelude::*, sync::LockClassKey, workqueue::Queue};

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

    /// Queues a raw work item.
    ///
    /// # Safety
    ///
    /// `work` must have been set up with [`RawWork::init`], must stay valid
    /// until its function has run, and its function must be safe to run on
    /// this queue.
    pub(crate) unsafe fn queue_raw(&self, work: &RawWork) {
        // SAFETY: The queue is valid; the caller vouches for `work`.
        unsafe {
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as i32,
                self.wq.as_ptr(),
                work.0.get(),
            )
        };
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the queue is ours; destroying it
        // waits for every queued item to finish.
        unsafe { bindings::destroy_workqueue(self.wq.as_ptr()) };
    }
}

/// A `struct work_struct` embedded in memory the driver does not own as a
/// Rust value (blk-mq's per-request data), run by a plain C function.
#[repr(transparent)]
pub(crate) struct RawWork(kernel::types::Opaque<bindings::work_struct>);

/// The function a [`RawWork`] runs.
pub(crate) trait RawWorkFn {
    /// Runs the work item.
    ///
    /// # Safety
    ///
    /// `work` is the item that was queued; what it may be used for is the
    /// contract of the code that queued it.
    unsafe fn run(work: *mut RawWork);
}

impl RawWork {
    /// Initialises the work item at `this` to run `F`.
    ///
    /// # Safety
    ///
    /// `this` must be valid for writes and stay at that address while the
    /// item can be queued.
    pub(crate) unsafe fn init<F: RawWorkFn>(this: *mut RawWork, key: Pin<&'static LockClassKey>) {
        // SAFETY: `RawWork` is `repr(transparent)` over `work_struct`; the
        // caller guarantees the memory; `key` and the name are static.
        unsafe {
            bindings::init_work_with_key(
                this.cast(),
                Some(Self::trampoline::<F>),
                false,
                c"lofi_request".as_char_ptr(),
                key.as_ptr(),
            )
        };
    }

    /// # Safety
    ///
    /// Called by the workqueue for an item set up by [`RawWork::init`].
    unsafe extern "C" fn trampoline<F: RawWorkFn>(work: *mut bindings::work_struct) {
        // SAFETY: `work` is the `work_struct` inside a `RawWork`
        // (`repr(transparent)`), queued by code that upholds `F`'s contract.
        unsafe { F::run(work.cast()) };
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
