// SPDX-License-Identifier: GPL-2.0

//! A blk-mq disk with the parts `kernel::block::mq` does not offer yet.
//!
//! `kernel::block::mq` (7.3) has no per-request driver data, fixes the tag
//! set flags, installs a `block_device_operations` table without `owner`,
//! `open`, `release`, `ioctl`, `getgeo` or `devnode`, sets no queue features
//! (so no write cache and no flushes), cannot make a disk read-only and has
//! no accessors for a request's position, size, operation or segments.
//! This module provides those as a small layer over the C API:
//!
//! - [`Disk`]: a tag set plus a gendisk built from it, owned together, with
//!   the driver's [`DiskOps`] as both `blk_mq_ops` and
//!   `block_device_operations`;
//! - [`RequestRef`]: a started request, its geometry and segments; requests
//!   are served in process context on a workqueue of the driver's
//!   ([`DiskOps::io_queue`], [`DiskOps::serve`]) by a work item that lives
//!   in each request's driver data, and ended with the status returned.
//!
//! The driver's per-disk data is an `Arc` that the gendisk owns, as C
//! drivers tie their device to the gendisk with `free_disk` (`loop` does
//! with `lo_free_disk`): the disk's `private_data` holds one reference,
//! released by `free_disk` when the last reference to the gendisk goes
//! (after every opener has closed it), so every callback of the disk finds
//! the data alive without any promise from its caller.
//!
//! It is written to be independent of lofi so that it could move into
//! `rust/kernel/block`.

use super::{
    file::OpenDisk,
    workqueue::{OwnedQueue, RawWork, RawWorkFn},
};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    ffi::{c_char, c_int, c_uint, c_ulong},
    module::{this_module, ModuleMetadata},
    prelude::*,
    sync::{Arc, ArcBorrow, LockClassKey},
    types::Opaque,
};

/// Bytes in a sector (`SECTOR_SHIFT` in C).
pub(crate) const SECTOR_SHIFT: u32 = 9;

/// A block request's completion status (`blk_status_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlkStatus(bindings::blk_status_t);

impl BlkStatus {
    /// Success (`BLK_STS_OK`).
    pub(crate) const OK: Self = Self(0);
    /// Operation not supported (`BLK_STS_NOTSUPP`, include/linux/blk_types.h).
    pub(crate) const NOT_SUPPORTED: Self = Self(1);
    /// I/O error (`BLK_STS_IOERR`, include/linux/blk_types.h).
    pub(crate) const IO_ERROR: Self = Self(10);
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReqOp {
    /// `REQ_OP_READ`.
    Read,
    /// `REQ_OP_WRITE`.
    Write,
    /// `REQ_OP_FLUSH`.
    Flush,
    /// Anything else (discard, write zeroes, zoned operations, ...).
    Other(u32),
}

/// `REQ_OP_MASK` of include/linux/blk_types.h.
const REQ_OP_MASK: u32 = (1 << bindings::REQ_OP_BITS) - 1;

/// The operations a disk's driver provides.
///
/// `Data` is what every callback receives: the driver's per-disk state,
/// owned by the disk (see the module documentation).
pub(crate) trait DiskOps: Sized + 'static {
    /// The module that an open disk pins.
    type OwnerModule: ModuleMetadata;

    /// The callback tables, kept in a `static` of the driver so that they
    /// have one address (see [`disk_is_ours`]):
    /// `static VTABLE: DiskVTable<MyOps> = DiskVTable::new();`
    fn vtable() -> &'static DiskVTable<Self>;
    /// Per-disk driver state.
    type Data: Send + Sync;

    /// The workqueue that serves the disk's requests: each request is
    /// queued there (by a work item in the request's own driver data) and
    /// handed to [`DiskOps::serve`]. It must outlive every request of the
    /// disk, which it does as part of `Data`.
    fn io_queue(data: &Self::Data) -> &OwnedQueue;

    /// Serves a started request, in a worker of [`DiskOps::io_queue`]
    /// (process context: it may sleep). The request is ended with the
    /// status returned.
    fn serve(data: &Self::Data, rq: &RequestRef<Self>) -> BlkStatus;

    /// The disk is being opened (`writable`: for writing). An error
    /// refuses the open. Called under the disk's `open_mutex`.
    fn open(data: ArcBorrow<'_, Self::Data>, writable: bool) -> Result;
    /// An opener of the disk closed it. Called under the disk's
    /// `open_mutex`.
    fn release(data: ArcBorrow<'_, Self::Data>);
    /// A block device ioctl the block layer does not handle itself.
    fn ioctl(data: ArcBorrow<'_, Self::Data>, cmd: u32, arg: usize) -> Result<i32>;
    /// `HDIO_GETGEO`: the fake geometry.
    fn geometry(data: &Self::Data) -> Geometry;
    /// The node's path below `/dev` is `lofi/N` for `Some(N)`; `None` for
    /// the default (the disk's name).
    fn devnode(data: &Self::Data) -> Option<u32>;
    /// The gendisk is being released: its reference to the data comes
    /// back. Called once, in process context, for a disk that was added;
    /// the default drops it.
    fn free(data: Arc<Self::Data>) {
        drop(data);
    }
}

/// A disk's CHS geometry, as `HDIO_GETGEO` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Heads per cylinder.
    pub(crate) heads: u8,
    /// Sectors per track.
    pub(crate) sectors: u8,
    /// Cylinders.
    pub(crate) cylinders: u16,
}

/// `struct hd_geometry` of include/uapi/linux/hdreg.h, which the generated
/// bindings only declare.
#[repr(C)]
struct HdGeometry {
    heads: u8,
    sectors: u8,
    cylinders: u16,
    start: c_ulong,
}

/// How to build a [`Disk`].
pub(crate) struct DiskConfig<'a> {
    /// The disk's name (`lofi3`); sysfs, diskstats and the default node.
    pub(crate) name: &'a CStr,
    /// Size in 512-byte sectors.
    pub(crate) capacity_sectors: u64,
    /// The disk refuses writes.
    pub(crate) read_only: bool,
    /// Advertise a volatile write cache, so that flushes are sent.
    pub(crate) write_cache: bool,
    /// Largest request in sectors.
    pub(crate) max_hw_sectors: u32,
    /// Tags (requests in flight) of the single hardware queue.
    pub(crate) queue_depth: u32,
}

/// `BLK_OPEN_WRITE` of include/linux/blkdev.h (a cast macro).
const BLK_OPEN_WRITE: bindings::blk_mode_t = 1 << 1;

/// `BLK_FEAT_WRITE_CACHE` of include/linux/blkdev.h (a cast macro that the
/// bindings lack).
const BLK_FEAT_WRITE_CACHE: bindings::blk_features_t = 1 << 0;

/// A tag set and the gendisk made from it.
///
/// # Invariants
///
/// - `tag_set` was allocated with `blk_mq_alloc_tag_set()`; `disk` is a
///   gendisk allocated from it on which this value holds the reference
///   from its allocation; `added` says whether `device_add_disk()`
///   succeeded on it.
/// - The disk's `private_data` and its queue's `queuedata` are `data`,
///   which came from `Arc::into_raw()`: the reference it carries belongs to
///   the gendisk, and is given back by `free_disk` (called by the block
///   layer for a disk that was added) or by this value's drop (for one that
///   was not).
/// - Drop removes the disk if it was added, puts it and then frees the tag
///   set: the order that is valid whether or not the disk was added
///   (genhd.c's `disk_release()` still uses the tag set of a disk never
///   added; `del_gendisk()` is done with it for one that was).
pub(crate) struct Disk<T: DiskOps> {
    tag_set: Pin<KBox<Opaque<bindings::blk_mq_tag_set>>>,
    disk: NonNull<bindings::gendisk>,
    data: *const T::Data,
    added: bool,
    _ops: PhantomData<T>,
}

// SAFETY: A gendisk and tag set may be used and torn down from any thread;
// the data pointer is that of an `Arc<T::Data>` with `T::Data: Send + Sync`.
unsafe impl<T: DiskOps> Send for Disk<T> {}
// SAFETY: `&Disk` gives no access that is not thread-safe in C.
unsafe impl<T: DiskOps> Sync for Disk<T> {}

impl<T: DiskOps> Disk<T> {
    /// Allocates a tag set and a disk that owns `data`, sized and
    /// configured by `config`. The disk is not visible until [`Disk::add`].
    pub(crate) fn new(config: &DiskConfig<'_>, data: Arc<T::Data>) -> Result<Self> {
        let tag_set = KBox::pin_init(
            // SAFETY: All-zeroes is a valid (empty) `blk_mq_tag_set`.
            Opaque::new(unsafe { core::mem::zeroed::<bindings::blk_mq_tag_set>() }),
            GFP_KERNEL,
        )?;
        let set = tag_set.get();
        // SAFETY: `set` points to our zeroed tag set, not yet shared.
        unsafe {
            (*set).ops = &T::vtable().blk_mq_ops;
            (*set).nr_hw_queues = 1;
            (*set).nr_maps = 1;
            (*set).queue_depth = config.queue_depth;
            (*set).numa_node = bindings::NUMA_NO_NODE;
            (*set).cmd_size = core::mem::size_of::<RequestWork>() as c_uint;
        }
        // SAFETY: `set` is a fully set-up tag set.
        to_result(unsafe { bindings::blk_mq_alloc_tag_set(set) })?;

        // SAFETY: All-zeroes `queue_limits` means "defaults" to the block layer.
        let mut lim: bindings::queue_limits = unsafe { core::mem::zeroed() };
        lim.logical_block_size = 1 << SECTOR_SHIFT;
        lim.physical_block_size = 1 << SECTOR_SHIFT;
        lim.max_hw_sectors = config.max_hw_sectors;
        if config.write_cache {
            lim.features |= BLK_FEAT_WRITE_CACHE;
        }
        let data = Arc::into_raw(data);
        let key: Pin<&'static LockClassKey> = kernel::static_lock_class!();
        // SAFETY: `set` is allocated; `lim` is valid for the call; `data`
        // is valid (we hold the reference it carries); `key` is static.
        let disk = from_err_ptr(unsafe {
            bindings::__blk_mq_alloc_disk(set, &mut lim, data.cast_mut().cast(), key.as_ptr())
        })
        .and_then(|disk| NonNull::new(disk).ok_or(ENOMEM));
        let disk = match disk {
            Ok(disk) => disk,
            Err(e) => {
                // SAFETY: Allocated above and used by nothing else; `data`
                // came from `Arc::into_raw` above and nothing else has it.
                unsafe {
                    bindings::blk_mq_free_tag_set(set);
                    drop(Arc::from_raw(data));
                }
                return Err(e);
            }
        };
        let raw = disk.as_ptr();
        let name = config.name.to_bytes_with_nul();
        // SAFETY: `raw` is our new, unshared gendisk. A major of 0 with no
        // minors makes device_add_disk() allocate a dynamic dev_t.
        unsafe {
            (*raw).major = 0;
            (*raw).first_minor = 0;
            (*raw).minors = 0;
            (*raw).flags |= bindings::GENHD_FL_NO_PART as c_int;
            (*raw).fops = &T::vtable().block_device_operations;
            (*raw).private_data = data.cast_mut().cast();
            let len = name.len().min((*raw).disk_name.len());
            for (dst, src) in (*raw).disk_name.iter_mut().zip(&name[..len]) {
                *dst = *src as c_char;
            }
            if let Some(last) = (*raw).disk_name.last_mut() {
                *last = 0;
            }
            bindings::set_capacity(raw, config.capacity_sectors);
            bindings::set_disk_ro(raw, config.read_only);
        }
        // INVARIANT: `tag_set` is allocated, `disk` comes from it and both
        // data pointers are `data`, whose reference the gendisk now owns.
        Ok(Self {
            tag_set,
            disk,
            data,
            added: false,
            _ops: PhantomData,
        })
    }

    /// Makes the disk visible (`/dev`, sysfs). Called once.
    pub(crate) fn add(&mut self) -> Result {
        if self.added {
            return Err(EBUSY);
        }
        // SAFETY: `disk` is a valid gendisk not yet added; no parent device
        // and no extra attribute groups.
        to_result(unsafe {
            bindings::device_add_disk(
                core::ptr::null_mut(),
                self.disk.as_ptr(),
                core::ptr::null_mut(),
            )
        })?;
        self.added = true;
        Ok(())
    }

    /// The disk's device number (`disk_devt()`).
    pub(crate) fn devt(&self) -> u32 {
        // SAFETY: `disk` is valid (type invariant); `part0` is set at
        // allocation and `bd_dev` when the disk is added.
        unsafe { (*(*self.disk.as_ptr()).part0).bd_dev }
    }

    /// Tells the holder of the disk's block device, a file system mounted
    /// from it for instance, that the device is gone, as for a surprise
    /// removal (`bdev_mark_dead()`): a file system shuts down at once.
    /// Unlike `blk_mark_disk_dead()` this leaves the disk's size and queue
    /// alone, so the driver decides how its I/O fails. Must be called
    /// without the disk's `open_mutex`, and with new I/O already failing
    /// (the call syncs the device when it has no holder).
    pub(crate) fn report_dead(&self) {
        if self.added {
            // SAFETY: `disk` is a valid, added gendisk; `part0`, its whole
            // block device, lives as long as it. lofi disks have no
            // partitions, so the whole device is all there is to tell.
            unsafe { bindings::bdev_mark_dead((*self.disk.as_ptr()).part0, true) };
        }
    }

    /// Sends a `change` uevent for the disk (and its partitions), for
    /// `udevadm monitor` and udev rules to see a change of state.
    pub(crate) fn notify_change(&self) {
        if self.added {
            // SAFETY: `disk` is a valid, added gendisk.
            unsafe {
                bindings::disk_uevent(self.disk.as_ptr(), bindings::kobject_action_KOBJ_CHANGE)
            };
        }
    }
}

impl<T: DiskOps> Drop for Disk<T> {
    fn drop(&mut self) {
        let disk = self.disk.as_ptr();
        // SAFETY: By the type invariants `disk` is valid and ours to tear
        // down: removed if it was added, then put once; the tag set is
        // freed last, when no queue uses it any more. A disk never added
        // gets no `free_disk` call: the data's reference is released here.
        unsafe {
            if self.added {
                bindings::del_gendisk(disk);
            }
            bindings::put_disk(disk);
            bindings::blk_mq_free_tag_set(self.tag_set.get());
            if !self.added {
                drop(Arc::from_raw(self.data));
            }
        }
    }
}

/// A started request that has not been ended yet.
///
/// # Invariants
///
/// `rq` is a request of a [`Disk<T>`] that was started with
/// `blk_mq_start_request()` and is not ended; this value owns the duty to
/// end it, which [`RequestRef::end`] fulfils (consuming it).
pub(crate) struct RequestRef<T: DiskOps> {
    rq: NonNull<bindings::request>,
    _ops: PhantomData<T>,
}

// SAFETY: A started request may be processed and ended on any thread.
unsafe impl<T: DiskOps> Send for RequestRef<T> {}

impl<T: DiskOps> RequestRef<T> {
    /// Takes over a started request from its driver data.
    ///
    /// # Safety
    ///
    /// `pdu` must be the driver data of a request of a `Disk<T>` that
    /// `queue_rq` started and queued, and that nobody else will end.
    unsafe fn from_pdu(pdu: *mut RequestWork) -> Self {
        // SAFETY: The caller guarantees `pdu` is a request's driver data;
        // the request header precedes it.
        let rq = unsafe { bindings::blk_mq_rq_from_pdu(pdu.cast()) };
        // INVARIANT: Started and not ended, as the caller guarantees.
        Self {
            // SAFETY: `blk_mq_rq_from_pdu` of a valid pdu is never null.
            rq: unsafe { NonNull::new_unchecked(rq) },
            _ops: PhantomData,
        }
    }

    /// The request's driver data.
    fn pdu(&self) -> *mut RequestWork {
        // SAFETY: `rq` is a valid request of a tag set with a `cmd_size`
        // of `size_of::<RequestWork>()`.
        unsafe { bindings::blk_mq_rq_to_pdu(self.rq.as_ptr()) }.cast()
    }

    /// The driver data of the request's disk.
    pub(crate) fn data(&self) -> ArcBorrow<'_, T::Data> {
        // A started request that is not ended keeps the gendisk from being
        // released: `del_gendisk()` waits for every request to end (it
        // freezes the queue) before the disk can be put for the last time,
        // and a disk never added has no requests.
        //
        // SAFETY: `rq` is valid; its queue's `queuedata` is the data pointer
        // of its `Disk<T>`, from `Arc::into_raw`, whose reference the gendisk
        // holds until `free_disk`, so (see above) the `Arc` is alive for as
        // long as `self`, which `end` consumes.
        unsafe { ArcBorrow::from_raw((*(*self.rq.as_ptr()).q).queuedata.cast::<T::Data>()) }
    }

    /// The operation.
    pub(crate) fn op(&self) -> ReqOp {
        // SAFETY: `rq` is valid.
        let flags = unsafe { (*self.rq.as_ptr()).cmd_flags };
        match flags & REQ_OP_MASK {
            bindings::req_op_REQ_OP_READ => ReqOp::Read,
            bindings::req_op_REQ_OP_WRITE => ReqOp::Write,
            bindings::req_op_REQ_OP_FLUSH => ReqOp::Flush,
            other => ReqOp::Other(other),
        }
    }

    /// The byte offset on the disk where the request starts.
    pub(crate) fn byte_offset(&self) -> u64 {
        // SAFETY: `rq` is valid; `__sector` is what `blk_rq_pos()` reads.
        let sector = unsafe { (*self.rq.as_ptr()).__sector };
        sector << SECTOR_SHIFT
    }

    /// Calls `f` with each data segment of the request, in order, until it
    /// returns an error. Segments may span several pages.
    pub(crate) fn for_each_segment(
        &self,
        mut f: impl FnMut(&bindings::bio_vec) -> Result,
    ) -> Result {
        // SAFETY: `rq` is valid and started: its bio chain is stable.
        let mut bio = unsafe { (*self.rq.as_ptr()).bio };
        while !bio.is_null() {
            // SAFETY: `bio` is a bio of the request. `bvec_iter` is packed,
            // so it is copied, never referenced.
            let (vecs, iter) = unsafe { ((*bio).bi_io_vec, (*bio).bi_iter) };
            let mut cursor = SegmentCursor {
                idx: iter.bi_idx,
                done: iter.bi_offset,
                remaining: iter.bi_size,
            };
            loop {
                let idx = cursor.idx;
                if cursor.remaining == 0 {
                    break;
                }
                // SAFETY: `idx` indexes the bio's vector while bytes remain
                // (the bvec iterator invariant).
                let vec = unsafe { *vecs.add(idx as usize) };
                // Bytes remain but the entry has none: a corrupt bio.
                let (offset, len) = cursor.step(vec.bv_len).ok_or(EIO)?;
                f(&bindings::bio_vec {
                    bv_page: vec.bv_page,
                    bv_len: len,
                    bv_offset: vec.bv_offset + offset,
                })?;
            }
            // SAFETY: As above; `bi_next` links the request's bios.
            bio = unsafe { (*bio).bi_next };
        }
        Ok(())
    }

    /// Ends the request with `status`.
    fn end(self, status: BlkStatus) {
        // SAFETY: By the type invariant the request is started and ours to
        // end, once: `self` is consumed.
        unsafe { bindings::blk_mq_end_request(self.rq.as_ptr(), status.0) };
    }
}

/// The driver data of every request: the work item that serves it.
#[repr(C)]
struct RequestWork {
    work: RawWork,
}

/// The driver data of a request.
fn blk_mq_pdu(rq: *mut bindings::request) -> *mut RequestWork {
    // SAFETY: `blk_mq_rq_to_pdu` only computes the address after the
    // request header, which is where blk-mq puts the driver data.
    unsafe { bindings::blk_mq_rq_to_pdu(rq) }.cast()
}

/// The work function of a request's [`RequestWork`]: serves the request
/// with [`DiskOps::serve`] and ends it.
struct ServeRequest<T>(PhantomData<T>);

impl<T: DiskOps> RawWorkFn for ServeRequest<T> {
    /// # Safety
    ///
    /// `work` is the `work` of the [`RequestWork`] of a request of a
    /// `Disk<T>`, queued by `queue_rq`.
    unsafe fn run(work: *mut RawWork) {
        // SAFETY: `work` is the first member of a `repr(C)` `RequestWork`,
        // the driver data of a request that `queue_rq` started and queued,
        // and that only this function ends.
        let rq = unsafe { RequestRef::<T>::from_pdu(work.cast::<RequestWork>()) };
        let status = T::serve(&rq.data(), &rq);
        rq.end(status);
    }
}

/// Walks a bio's vector as `bio_for_each_bvec()` does (multi-page
/// segments): the arithmetic of `struct bvec_iter`, kept pure for KUnit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentCursor {
    /// Index of the current vector entry (`bi_idx`).
    pub(crate) idx: u32,
    /// Bytes of the current entry already consumed (`bi_offset`).
    pub(crate) done: u32,
    /// Bytes left in the bio (`bi_size`).
    pub(crate) remaining: u32,
}

impl SegmentCursor {
    /// Consumes the next segment from the current entry, `entry_len` bytes
    /// long. Returns the segment's offset into the entry and its length, or
    /// `None` when nothing is left or the entry is inconsistent (already
    /// consumed), which ends the walk instead of looping.
    pub(crate) fn step(&mut self, entry_len: u32) -> Option<(u32, u32)> {
        if self.remaining == 0 || self.done >= entry_len {
            return None;
        }
        let offset = self.done;
        let len = self.remaining.min(entry_len - offset);
        self.remaining -= len;
        self.done += len;
        if self.done == entry_len {
            self.idx += 1;
            self.done = 0;
        }
        Some((offset, len))
    }
}

#[kunit_tests(lofi_segments)]
mod tests {
    use super::SegmentCursor;

    fn walk(mut c: SegmentCursor, entries: &[u32], out: &mut [(u32, u32, u32)]) -> usize {
        let mut n = 0;
        while let Some(&len) = entries.get(c.idx as usize) {
            let idx = c.idx;
            match c.step(len) {
                Some((off, seg)) if n < out.len() => {
                    out[n] = (idx, off, seg);
                    n += 1;
                }
                _ => break,
            }
        }
        n
    }

    #[test]
    fn whole_entries_are_one_segment_each() {
        let mut out = [(0, 0, 0); 4];
        let c = SegmentCursor {
            idx: 0,
            done: 0,
            remaining: 4096 + 8192,
        };
        assert_eq!(walk(c, &[4096, 8192], &mut out), 2);
        assert_eq!(out[0], (0, 0, 4096));
        // A multi-page entry stays one segment.
        assert_eq!(out[1], (1, 0, 8192));
    }

    #[test]
    fn a_split_bio_starts_inside_an_entry_and_ends_early() {
        let mut out = [(0, 0, 0); 4];
        // Cloned/split bio: starts 512 bytes into entry 1, 5120 bytes long.
        let c = SegmentCursor {
            idx: 1,
            done: 512,
            remaining: 5120,
        };
        assert_eq!(walk(c, &[4096, 4096, 4096], &mut out), 2);
        assert_eq!(out[0], (1, 512, 3584));
        assert_eq!(out[1], (2, 0, 1536));
    }

    #[test]
    fn inconsistent_entries_end_the_walk() {
        let mut c = SegmentCursor {
            idx: 0,
            done: 4096,
            remaining: 512,
        };
        assert_eq!(c.step(4096), None);
        let mut c = SegmentCursor {
            idx: 0,
            done: 0,
            remaining: 0,
        };
        assert_eq!(c.step(4096), None);
    }
}

/// The C callback tables of a [`DiskOps`] implementation.
struct OpsTable<T: DiskOps>(PhantomData<T>);

impl<T: DiskOps> OpsTable<T> {
    /// # Safety
    ///
    /// Called by blk-mq for a queue of a `Disk<T>`.
    unsafe extern "C" fn queue_rq(
        _hctx: *mut bindings::blk_mq_hw_ctx,
        bd: *const bindings::blk_mq_queue_data,
    ) -> bindings::blk_status_t {
        // SAFETY: blk-mq passes a valid `bd` whose request is ours.
        let rq = unsafe { (*bd).rq };
        // SAFETY: As above.
        unsafe { bindings::blk_mq_start_request(rq) };
        // INVARIANT: Started just now and handed to us by blk-mq.
        let rq = RequestRef::<T> {
            // SAFETY: blk-mq never passes a null request.
            rq: unsafe { NonNull::new_unchecked(rq) },
            _ops: PhantomData,
        };
        let pdu = rq.pdu();
        let data = rq.data();
        // SAFETY: The work item in the request's driver data was set up by
        // `init_request` to run `serve_request::<T>`, stays valid until the
        // request is ended (by that function: the tag set is not freed
        // while a request is in flight), and the queue outlives it (it is
        // part of `T::Data`, alive while the request is not ended).
        unsafe { T::io_queue(&data).queue_raw(&(*pdu).work) };
        // The request is now the worker's: `rq` is dropped without ending
        // it (it owns no resource).
        BlkStatus::OK.0
    }

    /// # Safety
    ///
    /// Called by blk-mq once per tag of a `Disk<T>`'s tag set.
    unsafe extern "C" fn init_request(
        _set: *mut bindings::blk_mq_tag_set,
        rq: *mut bindings::request,
        _hctx_idx: c_uint,
        _numa_node: c_int,
    ) -> c_int {
        let pdu = blk_mq_pdu(rq);
        // SAFETY: The tag set's `cmd_size` reserves room for a
        // `RequestWork` after the request, aligned as blk-mq aligns driver
        // data, and it stays there until the tag set is freed; `work` is
        // its first member.
        unsafe {
            RawWork::init::<ServeRequest<T>>(&raw mut (*pdu).work, kernel::static_lock_class!())
        };
        0
    }

    /// # Safety
    ///
    /// `disk` is a gendisk of a `Disk<T>`.
    unsafe fn data<'b>(disk: *mut bindings::gendisk) -> ArcBorrow<'b, T::Data> {
        // SAFETY: `private_data` of a `Disk<T>`'s gendisk came from
        // `Arc::into_raw` and its reference is released only by
        // `free_disk`, when the gendisk is released; the block layer calls
        // the disk's callbacks only while it holds a reference to the disk
        // (an open block device, or the caller's own), so the `Arc` is
        // alive for the duration of the callback, which `'b` is.
        unsafe { ArcBorrow::from_raw((*disk).private_data.cast::<T::Data>()) }
    }

    /// # Safety
    ///
    /// Called by the block layer with a gendisk of a `Disk<T>`.
    unsafe extern "C" fn open(disk: *mut bindings::gendisk, mode: bindings::blk_mode_t) -> c_int {
        let writable = mode & BLK_OPEN_WRITE != 0;
        // SAFETY: `disk` is ours.
        match T::open(unsafe { Self::data(disk) }, writable) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the block layer with a gendisk of a `Disk<T>`.
    unsafe extern "C" fn release(disk: *mut bindings::gendisk) {
        // SAFETY: `disk` is ours.
        T::release(unsafe { Self::data(disk) });
    }

    /// # Safety
    ///
    /// Called by the block layer with a block device of a `Disk<T>`.
    unsafe extern "C" fn ioctl(
        bdev: *mut bindings::block_device,
        _mode: bindings::blk_mode_t,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_int {
        // SAFETY: `bdev` is a valid block device of our disk.
        let data = unsafe { Self::data((*bdev).bd_disk) };
        match T::ioctl(data, cmd, arg) {
            Ok(ret) => ret,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the block layer with a gendisk of a `Disk<T>` and a valid
    /// `struct hd_geometry` to fill.
    unsafe extern "C" fn getgeo(
        disk: *mut bindings::gendisk,
        geo: *mut bindings::hd_geometry,
    ) -> c_int {
        // SAFETY: `disk` is ours.
        let data = unsafe { Self::data(disk) };
        let g = T::geometry(&*data);
        let geo = geo.cast::<HdGeometry>();
        // SAFETY: The caller passes a writable `struct hd_geometry`, whose
        // layout `HdGeometry` mirrors. `start` was already set (partition
        // start) by the block layer and is kept.
        unsafe {
            (*geo).heads = g.heads;
            (*geo).sectors = g.sectors;
            (*geo).cylinders = g.cylinders;
        }
        0
    }

    /// # Safety
    ///
    /// Called by the block layer once, when a gendisk of a `Disk<T>` that
    /// was added is released.
    unsafe extern "C" fn free_disk(disk: *mut bindings::gendisk) {
        // SAFETY: `private_data` came from `Arc::into_raw` (type invariant
        // of `Disk<T>`), and the reference it carries belongs to the
        // gendisk, which is being released: it is taken back once.
        let data = unsafe { Arc::from_raw((*disk).private_data.cast::<T::Data>()) };
        T::free(data);
    }

    /// # Safety
    ///
    /// Called by devtmpfs/udev helpers with a gendisk of a `Disk<T>`.
    unsafe extern "C" fn devnode(
        disk: *mut bindings::gendisk,
        _mode: *mut bindings::umode_t,
    ) -> *mut c_char {
        // SAFETY: `disk` is ours.
        let data = unsafe { Self::data(disk) };
        match T::devnode(&*data) {
            // SAFETY: The format takes one unsigned int; the result is
            // freed by the caller with kfree(), or is NULL on failure, in
            // which case the default name is used.
            Some(n) => unsafe {
                bindings::kasprintf(bindings::GFP_KERNEL, c"lofi/%u".as_char_ptr(), n as c_uint)
            },
            None => core::ptr::null_mut(),
        }
    }
}

/// The C callback tables of a [`DiskOps`] implementation. Each driver keeps
/// one in a `static` and returns it from [`DiskOps::vtable`].
pub(crate) struct DiskVTable<T: DiskOps> {
    blk_mq_ops: bindings::blk_mq_ops,
    block_device_operations: bindings::block_device_operations,
    _ops: PhantomData<T>,
}

// SAFETY: The tables are immutable function pointers and a module pointer.
unsafe impl<T: DiskOps> Sync for DiskVTable<T> {}

impl<T: DiskOps> DiskVTable<T> {
    /// The tables for `T`.
    pub(crate) const fn new() -> Self {
        Self {
            blk_mq_ops: bindings::blk_mq_ops {
                queue_rq: Some(OpsTable::<T>::queue_rq),
                init_request: Some(OpsTable::<T>::init_request),
                ..pin_init::zeroed()
            },
            block_device_operations: bindings::block_device_operations {
                owner: this_module::<T::OwnerModule>().as_ptr(),
                open: Some(OpsTable::<T>::open),
                release: Some(OpsTable::<T>::release),
                ioctl: Some(OpsTable::<T>::ioctl),
                // lofi's ioctls have one layout for 32- and 64-bit callers;
                // the helper exists only with CONFIG_COMPAT.
                #[cfg(CONFIG_COMPAT)]
                compat_ioctl: Some(bindings::blkdev_compat_ptr_ioctl),
                getgeo: Some(OpsTable::<T>::getgeo),
                free_disk: Some(OpsTable::<T>::free_disk),
                devnode: Some(OpsTable::<T>::devnode),
                ..pin_init::zeroed()
            },
            _ops: PhantomData,
        }
    }
}

/// Whether `disk` is driven by `T` (its operations are `T`'s table).
pub(crate) fn disk_is_ours<T: DiskOps>(disk: &OpenDisk<'_>) -> bool {
    core::ptr::eq(disk.fops(), &T::vtable().block_device_operations)
}
