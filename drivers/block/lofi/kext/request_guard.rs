// SPDX-License-Identifier: GPL-2.0

//! A value that the requests of one disk use, and that its owner takes
//! back while the disk's queue is frozen: the backing file of a block
//! device that is served from a file, for instance.
//!
//! The requests themselves pay nothing for it but two reads of data that
//! does not change while they are in flight: no reference count, no shared
//! cache line written per request. The exclusion comes from blk-mq: a
//! frozen queue has no request in flight and starts none
//! ([`Disk::with_requests_stopped`]), and that is the only time the value
//! changes.

use super::blk::{Disk, DiskOps, RemovedDisk, RequestRef};
use core::cell::UnsafeCell;
use kernel::sync::atomic::{Acquire, Atomic, Full, Relaxed, Release};

/// A value behind the requests of one disk.
///
/// # Invariants
///
/// - `queue` is 0 or, once set by [`RequestGuarded::bind`], the queue
///   identity of the one disk whose requests may use `value`.
/// - `value` is changed only by [`RequestGuarded::revoke`] or
///   [`RequestGuarded::take_removed`], by the one caller that set `taken`,
///   while the bound disk's queue is frozen or after the disk was removed
///   (or before any disk was bound, when no request can reach it).
///   `revoke` holds the bound disk exclusively (`&mut`) meanwhile, and
///   `take_removed` runs only once the bound disk was consumed by its
///   removal.
///
/// So while a request of the bound disk is in flight, or while anyone
/// holds a shared borrow of the bound disk, `value` does not change.
pub(crate) struct RequestGuarded<T> {
    closed: Atomic<bool>,
    queue: Atomic<usize>,
    taken: Atomic<bool>,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: The value is shared (`&T`) by requests on any thread and moved
// out by the revoker, which may be another thread: `T: Send + Sync`.
unsafe impl<T: Send + Sync> Sync for RequestGuarded<T> {}
// SAFETY: As above.
unsafe impl<T: Send> Send for RequestGuarded<T> {}

impl<T> RequestGuarded<T> {
    /// `value`, for requests of the disk bound later.
    pub(crate) fn new(value: T) -> Self {
        Self {
            closed: Atomic::new(false),
            queue: Atomic::new(0),
            taken: Atomic::new(false),
            value: UnsafeCell::new(Some(value)),
        }
    }

    /// Binds the value to `disk`, before the disk is added (before any
    /// request). Only the first call binds.
    pub(crate) fn bind<D: DiskOps>(&self, disk: &Disk<D>) {
        let _ = self.queue.cmpxchg(0, disk.queue_id(), Release);
    }

    /// The value, for a request in flight of the bound disk, or `None`
    /// once it is closed (or for a request of another disk). The borrow
    /// lasts while the request does.
    pub(crate) fn get<'a, D: DiskOps>(&'a self, rq: &'a RequestRef<D>) -> Option<&'a T> {
        if self.closed.load(Acquire) || rq.queue_id() != self.queue.load(Relaxed) {
            return None;
        }
        // SAFETY: `rq` is a request in flight of the bound disk, for as
        // long as the borrow of it; while it is, `value` does not change
        // (type invariant).
        unsafe { (*self.value.get()).as_ref() }
    }

    /// The value, outside any request, for a caller that holds a shared
    /// borrow of the bound disk, or `None` once it is closed (or if `disk`
    /// is not the bound one). The borrow lasts while that of the disk does:
    /// the value cannot be revoked (that takes the disk exclusively) nor
    /// taken from the removed disk (that takes the disk by value) meanwhile.
    pub(crate) fn get_held<'a, D: DiskOps>(&'a self, disk: &'a Disk<D>) -> Option<&'a T> {
        let bound = self.queue.load(Acquire);
        if self.closed.load(Acquire) || bound == 0 || disk.queue_id() != bound {
            return None;
        }
        // SAFETY: `disk` is the bound disk and stays borrowed (shared) for
        // 'a, so no `revoke` (which needs it `&mut`) and no `take_removed`
        // (which needs it removed, by value) of the bound disk runs during
        // 'a, and no other caller can take the value (`claim` refuses other
        // disks once one is bound): `value` does not change (type
        // invariant).
        unsafe { (*self.value.get()).as_ref() }
    }

    /// Closes the value to new requests, at once, without waiting for
    /// those in flight. Idempotent; never sleeps.
    pub(crate) fn close(&self) {
        self.closed.store(true, Release);
    }

    /// Closes the value, and makes this caller the one that takes it out:
    /// true for the first caller whose disk (of queue identity `queue`) is
    /// the bound one (or when none was bound), false for every other.
    fn claim(&self, queue: usize) -> bool {
        self.close();
        let bound = self.queue.load(Acquire);
        if bound != 0 && bound != queue {
            return false;
        }
        self.taken.cmpxchg(false, true, Full).is_ok()
    }

    /// Closes the value and takes it out while no request of `disk` is in
    /// flight: freezes the queue, which waits for the requests in flight to
    /// end. The first caller gets the value; the others `None`. `disk` must
    /// be the bound disk (or no disk was bound); else nothing is taken.
    ///
    /// Process context, without locks that the requests' I/O may need.
    pub(crate) fn revoke<D: DiskOps>(&self, disk: &mut Disk<D>) -> Option<T> {
        if !self.claim(disk.queue_id()) {
            return None;
        }
        // SAFETY: This caller set `taken`, which no other does, and the
        // queue of the bound disk is frozen while `f` runs: no request is in
        // flight or can start, so the access is exclusive (type invariant).
        // With no disk bound, no request can reach the value at all.
        disk.with_requests_stopped(|| unsafe { (*self.value.get()).take() })
    }

    /// Closes the value and takes it out of a removed disk, which has no
    /// request in flight and never starts one again: no freeze needed. The
    /// first caller gets the value; the others `None`. `disk` must be the
    /// bound disk (or no disk was bound); else nothing is taken.
    pub(crate) fn take_removed<D: DiskOps>(&self, disk: &RemovedDisk<D>) -> Option<T> {
        if !self.claim(disk.queue_id()) {
            return None;
        }
        // SAFETY: This caller set `taken`, which no other does, and the
        // bound disk is removed: no request of it is in flight or can start
        // (`RemovedDisk` invariant), so the access is exclusive (type
        // invariant). With no disk bound, no request can reach the value.
        unsafe { (*self.value.get()).take() }
    }
}
