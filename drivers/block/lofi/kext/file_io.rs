// SPDX-License-Identifier: GPL-2.0

//! A block request served by I/O on a file: one `iov_iter` over the
//! request's data vectors and one `kiocb`, both kept in the request's
//! driver data ([`FileIo`], a disk's [`DiskOps::Cmd`]).
//!
//! The file's `read_iter`/`write_iter` are called directly, as `loop` does
//! (no per-request permission hook or fsnotify event: the file was checked
//! when it was opened), with the freeze protection of its file system held
//! around writes. Three ways to issue:
//!
//! - **non-blocking** (`IOCB_NOWAIT`, in the submitter's context): what
//!   would block, such as a page-cache miss, returns `-EAGAIN` and the
//!   request goes to a worker; a hit completes with no context switch;
//! - **blocking**, in a worker: the call returns when the I/O is done;
//! - **direct and asynchronous** (`IOCB_DIRECT` with `ki_complete`): the
//!   call returns once the I/O is submitted, and its completion ends the
//!   request (through [`RequestRef::complete`]).
//!
//! A file that is used by requests in flight must stay open until they
//! end, asynchronous I/O included: `kext::request_guard` sees to that.

use super::{
    blk::{BlkStatus, DataVectors, DiskOps, Disposition, RequestRef},
    file::KernelFile,
    helpers,
};
use core::cell::UnsafeCell;
use kernel::{
    alloc::Flags,
    bindings,
    ffi::c_long,
    prelude::*,
    sync::atomic::{Acquire, Atomic, Full, Relaxed, Release},
    types::Opaque,
};

/// `IOCB_DSYNC` of include/linux/fs.h (`RWF_DSYNC`, a cast macro).
const IOCB_DSYNC: i32 = 0x2;
/// `IOCB_NOWAIT` of include/linux/fs.h (`RWF_NOWAIT`, a cast macro).
const IOCB_NOWAIT: i32 = 0x8;
/// `EIOCBQUEUED` of include/linux/errno.h (kernel-internal).
const EIOCBQUEUED: isize = 529;

/// How a request's file I/O is issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Issue {
    /// A write (else a read).
    pub(crate) write: bool,
    /// Direct, asynchronous I/O (else buffered, synchronous).
    pub(crate) direct: bool,
    /// Must not block: in the submitter's context.
    pub(crate) nowait: bool,
    /// A write that must be stable when it completes (`REQ_FUA`).
    pub(crate) fua: bool,
}

/// A request's file I/O state.
///
/// # Invariants
///
/// Used by one party at a time: the submitter, then (if punted) one
/// worker, then (if asynchronous I/O was started) its completion, which
/// may hand it to a worker once more (I/O issued without blocking that
/// would have blocked); each handoff (queueing a work item, submitting
/// I/O) orders the accesses.
/// `prepared` says whether `iocb` and `iter` describe the current request;
/// `iter` may point into `vectors`, which is not changed while it does.
#[repr(C)]
pub(crate) struct FileIo {
    iocb: Opaque<bindings::kiocb>,
    iter: Opaque<bindings::iov_iter>,
    vectors: UnsafeCell<KVec<bindings::bio_vec>>,
    prepared: UnsafeCell<bool>,
    writing: UnsafeCell<bool>,
    /// Bytes asked of the asynchronous I/O in flight.
    expected: UnsafeCell<usize>,
    /// References of the submitter and of the completion to the request
    /// while asynchronous I/O is being started: the last one completes it.
    refs: Atomic<i32>,
    /// What the asynchronous I/O returned.
    result: Atomic<isize>,
}

// SAFETY: See the type invariant: the state moves between threads with the
// request, one user at a time.
unsafe impl Sync for FileIo {}
// SAFETY: As above; the vector is plain memory.
unsafe impl Send for FileIo {}

impl FileIo {
    /// Unprepared state, for a new tag.
    pub(crate) fn new() -> Self {
        Self {
            iocb: Opaque::zeroed(),
            iter: Opaque::zeroed(),
            vectors: UnsafeCell::new(KVec::new()),
            prepared: UnsafeCell::new(false),
            writing: UnsafeCell::new(false),
            expected: UnsafeCell::new(0),
            refs: Atomic::new(0),
            result: Atomic::new(0),
        }
    }

    /// The request is being ended: the state no longer describes it. The
    /// vector's memory is kept for the next request of the tag.
    pub(crate) fn finish(&self) {
        // SAFETY: The request's one user is ending it (type invariant).
        unsafe {
            *self.prepared.get() = false;
            (*self.vectors.get()).clear();
        }
    }

    /// Bytes not yet transferred.
    fn remaining(&self) -> usize {
        // SAFETY: `iter` is ours (type invariant); a bvec iterator's
        // `count` is the anonymous union's member in use.
        unsafe {
            (*self.iter.get())
                .__bindgen_anon_1
                .__bindgen_anon_1
                .as_ref()
                .count
        }
    }

    /// Makes the iterator say what a call that moved `done` bytes left:
    /// `before - done` bytes (`before` being what was left before it).
    /// File systems do not all move the caller's iterator as they report:
    /// netfs (9p, AFS, CIFS), for one, leaves a kernel iterator where it
    /// was after an unbuffered write, and advances it by all of a read
    /// that came back short. The count returned is what happened.
    fn settle_iter(&self, before: usize, done: usize) {
        let want = before - done.min(before);
        let now = self.remaining();
        let iter = self.iter.get();
        // SAFETY: `iter` is ours and prepared over the request's data
        // (type invariant); moving it within that data (`want` is at most
        // `before`, which it covered) keeps it valid.
        unsafe {
            if now > want {
                bindings::iov_iter_advance(iter, now - want);
            } else if now < want {
                bindings::iov_iter_revert(iter, want - now);
            }
        }
    }

    /// Points `iocb` and `iter` at the request's data and `file`.
    fn prepare<T: DiskOps>(
        &self,
        rq: &RequestRef<T>,
        file: &KernelFile,
        pos: u64,
        write: bool,
        gfp: Flags,
    ) -> Result {
        let dir = if write {
            bindings::ITER_SOURCE
        } else {
            bindings::ITER_DEST
        };
        let bytes = rq.bytes() as usize;
        let iter = self.iter.get();
        match rq.data_vectors()? {
            DataVectors::InPlace {
                first,
                count,
                offset,
            } => {
                // SAFETY: `first` and the `count` entries after it are the
                // request's one bio's vector, which lives (unchanged) until
                // the request ends; the data starts `offset` bytes in.
                unsafe {
                    bindings::iov_iter_bvec(iter, dir, first, count as usize, bytes);
                    (*iter).iov_offset = offset as usize;
                }
            }
            DataVectors::Gather { count } => {
                // SAFETY: Ours (type invariant); no iterator points into
                // the vector while the state is unprepared.
                let vectors = unsafe { &mut *self.vectors.get() };
                vectors.clear();
                vectors.reserve(count as usize, gfp)?;
                rq.gather_vectors(vectors)?;
                // SAFETY: `vectors` holds the request's segments and is not
                // changed until the request ends (`finish`).
                unsafe {
                    bindings::iov_iter_bvec(iter, dir, vectors.as_ptr(), vectors.len(), bytes)
                };
            }
        }
        let iocb = self.iocb.get();
        // SAFETY: `iocb` is ours; the file is valid while the request is in
        // flight (see the module documentation).
        unsafe {
            core::ptr::write(iocb, core::mem::zeroed());
            (*iocb).ki_filp = file.as_raw();
            (*iocb).ki_pos = i64::try_from(pos).map_err(|_| EINVAL)?;
            (*iocb).ki_ioprio = rq.ioprio();
            *self.writing.get() = write;
            *self.prepared.get() = true;
        }
        Ok(())
    }

    /// One call of the file's `read_iter`/`write_iter`.
    fn call(&self, file: &KernelFile) -> isize {
        let iocb = self.iocb.get();
        let iter = self.iter.get();
        // SAFETY: `iocb` and `iter` are prepared for the file (whose
        // `f_op` has both methods: checked when it was opened for lofi);
        // a write holds the file system's freeze protection around the
        // call, released here unless asynchronous I/O took it over.
        unsafe {
            let fops = file.fops();
            if *self.writing.get() {
                helpers::lofi_kiocb_start_write(iocb);
                let ret = match (*fops).write_iter {
                    Some(write_iter) => write_iter(iocb, iter),
                    None => EINVAL.to_errno() as isize,
                };
                if ret != -EIOCBQUEUED {
                    helpers::lofi_kiocb_end_write(iocb);
                }
                ret
            } else {
                match (*fops).read_iter {
                    Some(read_iter) => read_iter(iocb, iter),
                    None => EINVAL.to_errno() as isize,
                }
            }
        }
    }

    /// What the request's asynchronous I/O came to, for
    /// [`DiskOps::complete`]. A short transfer is an error: the mapping
    /// never reaches past the end of the file, unless the file shrank.
    pub(crate) fn async_status(&self) -> BlkStatus {
        let ret = self.result.load(Acquire);
        // SAFETY: The completion is the request's one user now.
        let expected = unsafe { *self.expected.get() };
        if ret < 0 || ret as usize != expected {
            BlkStatus::IO_ERROR
        } else {
            BlkStatus::OK
        }
    }

    /// Drops one reference of the asynchronous start; the last completes
    /// the request, or hands it to a worker when I/O issued without
    /// blocking came back with "would block" (see [`FileIo::must_retry`]).
    fn put_ref<T: DiskOps<Cmd = FileIo>>(&self) {
        if self.refs.fetch_sub(1, Full) == 1 {
            // SAFETY: `self` is the `Cmd` of a request whose asynchronous
            // I/O was started, and this is the last of its two references:
            // the duty to end it is ours.
            let rq = unsafe { RequestRef::<T>::from_cmd(self) };
            if self.must_retry() {
                self.finish();
                rq.punt();
            } else {
                rq.complete();
            }
        }
    }

    /// Whether the asynchronous I/O just completed was issued without
    /// blocking (`IOCB_NOWAIT`, from the submitter's context) and failed
    /// only because it would have blocked: a bio sent down with
    /// `REQ_NOWAIT` that the backing device could not take without
    /// waiting, say, after other parts of the I/O had been sent.
    /// The whole request is then done again by a worker, which may block
    /// (redoing the part that was done writes the same data again).
    fn must_retry(&self) -> bool {
        let ret = self.result.load(Acquire);
        // SAFETY: The completion is the request's one user now; the iocb
        // is ours (type invariant).
        let nowait = unsafe { (*self.iocb.get()).ki_flags } & IOCB_NOWAIT != 0;
        nowait && (ret == EAGAIN.to_errno() as c_long || ret == EOPNOTSUPP.to_errno() as c_long)
    }

    /// `ki_complete` of asynchronous I/O.
    ///
    /// # Safety
    ///
    /// `iocb` is the `iocb` of the `FileIo` of a request of a `Disk<T>`
    /// whose asynchronous I/O this completes.
    unsafe extern "C" fn aio_complete<T: DiskOps<Cmd = FileIo>>(
        iocb: *mut bindings::kiocb,
        ret: c_long,
    ) {
        // SAFETY: `iocb` is the first field of a `repr(C)` `FileIo`
        // (`Opaque` is transparent), as the caller guarantees.
        let io = unsafe { &*iocb.cast::<FileIo>() };
        io.result.store(ret, Release);
        // SAFETY: A write's freeze protection was handed to the I/O by
        // `call` (it returned `-EIOCBQUEUED` or will).
        if unsafe { *io.writing.get() } {
            // SAFETY: As above.
            unsafe { helpers::lofi_kiocb_end_write(iocb) };
        }
        io.put_ref::<T>();
    }
}

/// The status of a failed read or write: `EOPNOTSUPP` stays "not
/// supported"; anything else is an I/O error to the disk's user.
pub(crate) fn error_status(errno: isize) -> BlkStatus {
    if errno == EOPNOTSUPP.to_errno() as isize {
        BlkStatus::NOT_SUPPORTED
    } else {
        BlkStatus::IO_ERROR
    }
}

/// Serves a read or write request of a disk whose `Cmd` is [`FileIo`] on
/// `file`, at byte `pos` of the file, as `how` says.
pub(crate) fn serve_rw<T: DiskOps<Cmd = FileIo>>(
    rq: &RequestRef<T>,
    file: &KernelFile,
    pos: u64,
    how: Issue,
) -> Disposition {
    let io = rq.cmd();
    // SAFETY: Ours (type invariant of `FileIo`).
    if !unsafe { *io.prepared.get() } {
        // A worker runs with PF_MEMALLOC_NOIO: GFP_KERNEL does no I/O there.
        let gfp = if how.nowait { GFP_NOWAIT } else { GFP_KERNEL };
        if io.prepare(rq, file, pos, how.write, gfp).is_err() {
            return if how.nowait {
                Disposition::Punt
            } else {
                Disposition::Done(BlkStatus::IO_ERROR)
            };
        }
    }
    let mut flags = 0;
    if how.direct {
        flags |= bindings::IOCB_DIRECT as i32;
    }
    if how.fua && how.write {
        flags |= IOCB_DSYNC;
    }
    if how.nowait {
        flags |= IOCB_NOWAIT;
        if !how.direct && !how.write {
            // Only what is cached: a miss goes to a worker, which starts
            // the readahead there.
            flags |= bindings::IOCB_NOIO as i32;
        }
    }
    let iocb = io.iocb.get();
    // SAFETY: Ours and prepared.
    unsafe {
        (*iocb).ki_flags = flags;
        (*iocb).ki_complete = if how.direct {
            Some(FileIo::aio_complete::<T>)
        } else {
            None
        };
    }
    loop {
        if how.direct {
            io.refs.store(2, Relaxed);
            // SAFETY: Ours.
            unsafe { *io.expected.get() = io.remaining() };
        }
        let before = io.remaining();
        let ret = io.call(file);
        if ret == -EIOCBQUEUED {
            // The completion holds the other reference.
            io.put_ref::<T>();
            return Disposition::InFlight;
        }
        // Done synchronously: the completion was not called.
        io.refs.store(0, Relaxed);
        if ret < 0 {
            let again = ret == EAGAIN.to_errno() as isize || ret == EOPNOTSUPP.to_errno() as isize;
            if how.nowait && again {
                return Disposition::Punt;
            }
            return Disposition::Done(error_status(ret));
        }
        io.settle_iter(before, ret as usize);
        let left = io.remaining();
        if left == 0 {
            return Disposition::Done(BlkStatus::OK);
        }
        if ret == 0 {
            if how.write {
                return Disposition::Done(BlkStatus::IO_ERROR);
            }
            // Past the end of the file: the rest reads as zeros.
            // SAFETY: `iter` covers the unread rest of the request.
            unsafe { bindings::iov_iter_zero(left, io.iter.get()) };
            return Disposition::Done(BlkStatus::OK);
        }
        if how.nowait {
            // Partly done without blocking: a worker does the rest, from
            // where the iterator and the position are now.
            return Disposition::Punt;
        }
    }
}

/// While alive, the current kernel thread's I/O is charged to a request's
/// blkcg and its allocations to the matching memory cgroup, as `loop`'s
/// workers do, so that the limits of the cgroup that submitted the request
/// apply to the backing file's I/O and page cache.
pub(crate) struct ChargeScope {
    blkcg: *mut bindings::cgroup_subsys_state,
    memcg: *mut bindings::cgroup_subsys_state,
    old_memcg: *mut core::ffi::c_void,
    /// The scope belongs to one task: not `Send`.
    _task: core::marker::PhantomData<*mut ()>,
}

impl ChargeScope {
    /// Charges to `rq`'s cgroups, in a worker (a kernel thread).
    pub(crate) fn enter<T: DiskOps>(rq: &RequestRef<T>) -> Self {
        let blkcg = rq.blkcg_css();
        let mut scope = Self {
            blkcg,
            memcg: core::ptr::null_mut(),
            old_memcg: core::ptr::null_mut(),
            _task: core::marker::PhantomData,
        };
        if !blkcg.is_null() {
            // SAFETY: `blkcg` is pinned by the request's bio while the
            // request is in flight, which outlives this scope (it borrows
            // nothing but is dropped within the worker's serve); the calls
            // act on the current kernel thread.
            unsafe {
                helpers::lofi_kthread_associate_blkcg(blkcg);
                scope.memcg = helpers::lofi_memcg_css_get(blkcg);
                if !scope.memcg.is_null() {
                    scope.old_memcg = helpers::lofi_set_active_memcg_css(scope.memcg);
                }
            }
        }
        scope
    }
}

impl Drop for ChargeScope {
    fn drop(&mut self) {
        if self.blkcg.is_null() {
            return;
        }
        // SAFETY: Undoes `enter` on the same task: restores the memory
        // cgroup, drops the reference `lofi_memcg_css_get` took, and ends
        // the association.
        unsafe {
            if !self.memcg.is_null() {
                helpers::lofi_set_active_memcg(self.old_memcg);
                helpers::lofi_css_put(self.memcg);
            }
            helpers::lofi_kthread_associate_blkcg(core::ptr::null_mut());
        }
    }
}

/// Where a read request served from memory puts its data, in order:
/// the request's own pages, through the iterator of its [`FileIo`].
pub(crate) struct ReadSink<'a> {
    io: &'a FileIo,
}

impl ReadSink<'_> {
    /// Bytes of the request not yet filled.
    pub(crate) fn remaining(&self) -> usize {
        self.io.remaining()
    }

    /// Appends `data` to what the request has been given; `EINVAL` if it
    /// does not fit.
    pub(crate) fn put(&mut self, data: &[u8]) -> Result {
        if data.len() > self.remaining() {
            return Err(EINVAL);
        }
        // SAFETY: The iterator is prepared over the request's data (a
        // destination) and has room for `data` (checked above); `data` is
        // valid for its length.
        let copied = unsafe {
            bindings::_copy_to_iter(data.as_ptr().cast(), data.len(), self.io.iter.get())
        };
        if copied != data.len() {
            return Err(EIO);
        }
        Ok(())
    }
}

/// Serves a read request of a disk whose `Cmd` is [`FileIo`] from memory,
/// in a worker: `fill` must put all of the request's bytes, in order, into
/// the sink it is given. `file` is the disk's backing file (which the
/// request's I/O state names, though it is not read here).
pub(crate) fn serve_from_memory<T: DiskOps<Cmd = FileIo>>(
    rq: &RequestRef<T>,
    file: &KernelFile,
    fill: impl FnOnce(&mut ReadSink<'_>) -> Result,
) -> BlkStatus {
    let io = rq.cmd();
    // SAFETY: Ours (type invariant of `FileIo`).
    if !unsafe { *io.prepared.get() } && io.prepare(rq, file, 0, false, GFP_KERNEL).is_err() {
        return BlkStatus::IO_ERROR;
    }
    let mut sink = ReadSink { io };
    match fill(&mut sink) {
        Ok(()) if sink.remaining() == 0 => BlkStatus::OK,
        _ => BlkStatus::IO_ERROR,
    }
}
