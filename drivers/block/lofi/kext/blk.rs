// SPDX-License-Identifier: GPL-2.0

//! A blk-mq disk with the parts `kernel::block::mq` does not offer yet.
//!
//! `kernel::block::mq` (7.3) has no per-request driver data, fixes the tag
//! set flags, installs a `block_device_operations` table without `owner`,
//! `open`, `release`, `ioctl` or `getgeo`, has no choice of partition
//! scanning, sets no queue features or limits (no write cache, FUA,
//! discard or write zeroes), cannot make a disk read-only or freeze its
//! queue, and has no accessors for a request's position, size, operation,
//! flags or segments. This module
//! provides those as a small layer over the C API:
//!
//! - [`Disk`]: a tag set (one hardware queue per CPU, up to a limit;
//!   blocking, so that `queue_rq` may sleep; no I/O scheduler by default)
//!   plus a gendisk built from it, owned together, with the driver's
//!   [`DiskOps`] as both `blk_mq_ops` and `block_device_operations`;
//! - [`RequestRef`]: a started request, its geometry, flags and segments,
//!   and the driver's per-request data ([`DiskOps::Cmd`]).
//!
//! A request is first offered to the driver in `queue_rq`, in the
//! submitter's context ([`Submit::Inline`]): the driver may serve it there
//! (a page-cache hit, with no context switch), start asynchronous I/O for
//! it, or punt it to its hardware queue's [`Lane`] ([`DiskOps::lanes`]),
//! whose work item offers the punted requests again, in order
//! ([`Submit::Worker`]).
//! Asynchronous I/O completes with [`RequestRef::complete`], which ends the
//! request through [`DiskOps::complete`] on the CPU that submitted it.
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
    disk_attrs::{DiskAttributes, SysfsText},
    file::OpenDisk,
    helpers,
    workqueue::{flags, OwnedQueue},
};
use core::{cell::UnsafeCell, fmt, marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    ffi::{c_char, c_int, c_uint, c_ulong},
    module::{this_module, ModuleMetadata},
    new_spinlock_irq,
    prelude::*,
    sync::{Arc, ArcBorrow, LockClassKey, SpinLockIrq},
    types::Opaque,
    workqueue::{impl_has_work, new_work, Work, WorkItem},
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
    /// `REQ_OP_DISCARD`.
    Discard,
    /// `REQ_OP_WRITE_ZEROES`.
    WriteZeroes,
    /// Anything else (zoned operations, ...).
    Other(u32),
}

/// `REQ_OP_MASK` of include/linux/blk_types.h.
const REQ_OP_MASK: u32 = (1 << bindings::REQ_OP_BITS) - 1;
/// `REQ_FUA` of include/linux/blk_types.h (a cast macro).
const REQ_FUA: u32 = 1 << bindings::req_flag_bits___REQ_FUA;
/// `REQ_NOUNMAP` of include/linux/blk_types.h (a cast macro).
const REQ_NOUNMAP: u32 = 1 << bindings::req_flag_bits___REQ_NOUNMAP;

/// Where a request is offered to [`DiskOps::submit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Submit {
    /// In `queue_rq`, in the submitter's context: the driver must not
    /// block here (it may sleep briefly: the tag set is blocking), and
    /// should punt what could wait.
    Inline,
    /// In the work item of a [`Lane`]: anything goes.
    Worker,
}

/// What [`DiskOps::submit`] did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Served: end the request with this status.
    Done(BlkStatus),
    /// Not served here: offer it again in a worker. Only for
    /// [`Submit::Inline`] (a worker that punts ends the request with an
    /// error).
    Punt,
    /// Asynchronous I/O is in flight for it: the driver ends it with
    /// [`RequestRef::complete`]. The request must not be touched after
    /// this is returned, except by that completion.
    InFlight,
}

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
    /// Per-request driver state, in blk-mq's per-request data: made once
    /// per tag with [`DiskOps::new_cmd`] and dropped with the tag set.
    /// Shared between the submitter, a worker and an I/O completion, one
    /// at a time, so it is `Sync`; it uses interior mutability.
    type Cmd: Send + Sync;

    /// A request's driver state, before its first request.
    fn new_cmd() -> Self::Cmd;

    /// The lanes that serve the requests that [`DiskOps::submit`] punts.
    /// They must outlive every request of the disk, which they do as part
    /// of `Data`.
    fn lanes(data: &Self::Data) -> &Lanes<Self>;

    /// Offers a started request to the driver (see [`Submit`] and
    /// [`Disposition`]).
    fn submit(data: &Self::Data, rq: &RequestRef<Self>, at: Submit) -> Disposition;

    /// A request whose asynchronous I/O completed ([`RequestRef::complete`])
    /// is being ended, on the CPU that submitted it, in soft interrupt
    /// context (no sleeping): returns its status.
    fn complete(data: &Self::Data, rq: &RequestRef<Self>) -> BlkStatus;

    /// A request is about to be ended, however it was served: releases
    /// what its `Cmd` holds for it. May run in soft interrupt context.
    fn finish(rq: &RequestRef<Self>);

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
    /// Writes the value of sysfs attribute `index` (of the names given to
    /// the [`DiskAttributes`] the disk was added with) of the disk of
    /// `data`, in process context (it may sleep). The default writes
    /// nothing.
    fn show_attribute(data: &Self::Data, index: usize, out: &mut SysfsText<'_>) -> fmt::Result {
        let _ = (data, index, out);
        Ok(())
    }
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

/// Discard and write-zeroes limits of a disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ZeroingLimits {
    /// Largest discard in sectors; 0: no discard.
    pub(crate) max_discard_sectors: u32,
    /// Largest write zeroes in sectors; 0: no write zeroes.
    pub(crate) max_write_zeroes_sectors: u32,
    /// Discard granularity in bytes (0: the logical block size).
    pub(crate) discard_granularity: u32,
}

/// How to build a [`Disk`].
pub(crate) struct DiskConfig<'a> {
    /// The disk's name (`lofi3`); sysfs, diskstats and the default node.
    pub(crate) name: &'a CStr,
    /// Size in 512-byte sectors.
    pub(crate) capacity_sectors: u64,
    /// The disk refuses writes.
    pub(crate) read_only: bool,
    /// The disk may have partitions: its partition table is read when it
    /// is added and on `BLKRRPART`, and `BLKPG` may add partitions. If
    /// not, the block layer never scans it.
    pub(crate) partitions: bool,
    /// Advertise a volatile write cache, so that flushes are sent, and
    /// forced unit access.
    pub(crate) write_cache: bool,
    /// Logical (and physical) block size in bytes: 512 .. 4096, a power
    /// of two.
    pub(crate) logical_block_size: u32,
    /// Memory alignment mask of a request's buffers (511: sector aligned).
    pub(crate) dma_alignment: u32,
    /// Discard and write zeroes.
    pub(crate) zeroing: ZeroingLimits,
    /// Largest request in sectors.
    pub(crate) max_hw_sectors: u32,
    /// Hardware queues (at least 1).
    pub(crate) hw_queues: u32,
    /// Tags (requests in flight) per hardware queue.
    pub(crate) queue_depth: u32,
}

/// `BLK_OPEN_WRITE` of include/linux/blkdev.h (a cast macro).
const BLK_OPEN_WRITE: bindings::blk_mode_t = 1 << 1;

/// `BLK_FEAT_WRITE_CACHE` of include/linux/blkdev.h (a cast macro that the
/// bindings lack).
const BLK_FEAT_WRITE_CACHE: bindings::blk_features_t = 1 << 0;
/// `BLK_FEAT_FUA` of include/linux/blkdev.h.
const BLK_FEAT_FUA: bindings::blk_features_t = 1 << 1;
// The one feature the bindings have pins the numbering of the others.
const _: () = assert!(bindings::BLK_FEAT_ROTATIONAL == 1 << 2);

/// The driver data of every request: its link in a [`Lane`] while it is
/// punted, the status a worker served it with (for the completion on the
/// submitting CPU), and the driver's own state.
#[repr(C)]
struct Pdu<C> {
    next: UnsafeCell<*mut bindings::request>,
    served: UnsafeCell<Option<BlkStatus>>,
    cmd: C,
}

/// Which zeroing operation [`RequestRef::disable`] switches off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Zeroing {
    /// `REQ_OP_DISCARD`.
    Discard,
    /// `REQ_OP_WRITE_ZEROES`.
    WriteZeroes,
}

/// A tag set and the gendisk made from it.
///
/// # Invariants
///
/// - `tag_set` was allocated with `blk_mq_alloc_tag_set()`; `disk` is a
///   gendisk allocated from it on which this value holds the reference
///   from its allocation; `added` says whether `device_add_disk()`
///   succeeded on it.
/// - The tag set's requests carry a `Pdu<T::Cmd>`, made by `init_request`
///   and dropped by `exit_request`.
/// - The disk's `private_data` and its queue's `queuedata` are `data`,
///   which came from `Arc::into_raw()`: the reference it carries belongs to
///   the gendisk, and is given back by `free_disk` (called by the block
///   layer for a disk that was added) or by this value's drop (for one that
///   was not).
/// - `removed` says whether `del_gendisk()` was done on it (by
///   [`Disk::remove`]); it is set only for a disk that was added.
/// - Drop removes the disk if it was added (and not removed yet), puts it
///   and then frees the tag set: the order that is valid whether or not the
///   disk was added (genhd.c's `disk_release()` still uses the tag set of a
///   disk never added; `del_gendisk()` is done with it for one that was).
pub(crate) struct Disk<T: DiskOps> {
    tag_set: Pin<KBox<Opaque<bindings::blk_mq_tag_set>>>,
    disk: NonNull<bindings::gendisk>,
    data: *const T::Data,
    added: bool,
    removed: bool,
    /// The sysfs attributes the disk was added with: they outlive its
    /// sysfs files, which go in `del_gendisk()` (dropped after `drop()`).
    attributes: Option<Arc<DiskAttributes<T>>>,
    _ops: PhantomData<T>,
}

/// A disk that is no longer visible and serves no request: removed with
/// `del_gendisk()`, or never added. Dropping it puts the disk and frees its
/// tag set.
///
/// # Invariants
///
/// No request of the disk is in flight, and none can start: `del_gendisk()`
/// waited for the requests in flight and leaves the queue of a disk that
/// owns it (one from `blk_mq_alloc_disk()`, as every `Disk` is) frozen for
/// good, so that all later I/O fails before it reaches the driver; a disk
/// never added had no block device to send I/O through.
pub(crate) struct RemovedDisk<T: DiskOps> {
    disk: Disk<T>,
}

impl<T: DiskOps> RemovedDisk<T> {
    /// The queue identity the disk had (see [`Disk::queue_id`]).
    pub(crate) fn queue_id(&self) -> usize {
        self.disk.queue_id()
    }
}

// SAFETY: A gendisk and tag set may be used and torn down from any thread;
// the data pointer is that of an `Arc<T::Data>` with `T::Data: Send + Sync`.
unsafe impl<T: DiskOps> Send for Disk<T> {}
// SAFETY: `&Disk` gives no access that is not thread-safe in C.
unsafe impl<T: DiskOps> Sync for Disk<T> {}

/// The most hardware queues a disk gets, whatever the number of CPUs.
pub(crate) const MAX_HW_QUEUES: u32 = 16;

/// Hardware queues for a disk: one per online CPU, at most
/// [`MAX_HW_QUEUES`].
pub(crate) fn hw_queues_for_cpus() -> u32 {
    // SAFETY: `__num_online_cpus` is the atomic counter behind
    // `num_online_cpus()`; reading it is what that inline function does.
    let online = unsafe { bindings::atomic_read(&raw const bindings::__num_online_cpus) };
    u32::try_from(online).unwrap_or(1).clamp(1, MAX_HW_QUEUES)
}

impl<T: DiskOps> Disk<T> {
    /// Allocates a tag set and a disk that owns `data`, sized and
    /// configured by `config`. The disk is not visible until [`Disk::add`].
    pub(crate) fn new(config: &DiskConfig<'_>, data: Arc<T::Data>) -> Result<Self> {
        const { assert!(core::mem::align_of::<Pdu<T::Cmd>>() <= core::mem::align_of::<u64>()) };
        let lbs = config.logical_block_size;
        if !lbs.is_power_of_two() || !(1 << SECTOR_SHIFT..=4096).contains(&lbs) {
            return Err(EINVAL);
        }
        let tag_set = KBox::pin_init(
            // SAFETY: All-zeroes is a valid (empty) `blk_mq_tag_set`.
            Opaque::new(unsafe { core::mem::zeroed::<bindings::blk_mq_tag_set>() }),
            GFP_KERNEL,
        )?;
        let set = tag_set.get();
        // SAFETY: `set` points to our zeroed tag set, not yet shared.
        unsafe {
            (*set).ops = &T::vtable().blk_mq_ops;
            (*set).nr_hw_queues = config.hw_queues.max(1);
            (*set).nr_maps = 1;
            (*set).queue_depth = config.queue_depth;
            (*set).numa_node = bindings::NUMA_NO_NODE;
            (*set).cmd_size = core::mem::size_of::<Pdu<T::Cmd>>() as c_uint;
            // Blocking: `queue_rq` may sleep (the inline attempt takes
            // sleeping locks of the backing file system). No scheduler by
            // default: the backing file's own I/O is scheduled below.
            (*set).flags = bindings::BLK_MQ_F_BLOCKING | bindings::BLK_MQ_F_NO_SCHED_BY_DEFAULT;
        }
        // SAFETY: `set` is a fully set-up tag set.
        to_result(unsafe { bindings::blk_mq_alloc_tag_set(set) })?;

        // SAFETY: All-zeroes `queue_limits` means "defaults" to the block layer.
        let mut lim: bindings::queue_limits = unsafe { core::mem::zeroed() };
        lim.logical_block_size = lbs;
        lim.physical_block_size = lbs;
        lim.io_min = lbs;
        lim.dma_alignment = config.dma_alignment.max((1 << SECTOR_SHIFT) - 1);
        lim.max_hw_sectors = config.max_hw_sectors;
        if config.write_cache {
            lim.features |= BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA;
        }
        lim.max_hw_discard_sectors = config.zeroing.max_discard_sectors;
        lim.max_write_zeroes_sectors = config.zeroing.max_write_zeroes_sectors;
        if config.zeroing.max_discard_sectors != 0 {
            lim.discard_granularity = config.zeroing.discard_granularity.max(lbs);
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
        // minors makes device_add_disk() allocate a dynamic dev_t, for the
        // disk and for each of its partitions (named after the disk:
        // `lofi3p1`).
        unsafe {
            (*raw).major = 0;
            (*raw).first_minor = 0;
            (*raw).minors = 0;
            if !config.partitions {
                (*raw).flags |= bindings::GENHD_FL_NO_PART as c_int;
            }
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
            removed: false,
            attributes: None,
            _ops: PhantomData,
        })
    }

    /// Removes the disk (`del_gendisk()`): it disappears from `/dev` and
    /// sysfs, fails every new I/O, and waits for the requests in flight.
    /// Takes a while (a queue freeze and the sysfs teardown): process
    /// context, without the disk's `open_mutex`.
    pub(crate) fn remove(mut self) -> RemovedDisk<T> {
        if self.added {
            // SAFETY: `disk` is a valid gendisk that was added and not
            // removed yet (type invariant: `removed` is still false).
            unsafe { bindings::del_gendisk(self.disk.as_ptr()) };
            // INVARIANT: Removed just now.
            self.removed = true;
        }
        // INVARIANT: Removed, or never added (see `RemovedDisk`).
        RemovedDisk { disk: self }
    }

    /// Makes the disk visible (`/dev`, sysfs), with the sysfs attributes
    /// `attributes` if given. Called once.
    pub(crate) fn add(&mut self, attributes: Option<Arc<DiskAttributes<T>>>) -> Result {
        if self.added {
            return Err(EBUSY);
        }
        let groups = attributes
            .as_ref()
            .map_or(core::ptr::null(), |a| a.groups());
        // SAFETY: `disk` is a valid gendisk not yet added; no parent device.
        // `groups` is null or a null-terminated list of groups of `T`'s
        // attributes, which the disk keeps (below) until it is released,
        // after `del_gendisk()` removed the files. sysfs only reads the
        // groups (the C prototype lacks the `const`).
        to_result(unsafe {
            bindings::device_add_disk(core::ptr::null_mut(), self.disk.as_ptr(), groups.cast_mut())
        })?;
        self.attributes = attributes;
        self.added = true;
        Ok(())
    }

    /// The disk's device number (`disk_devt()`).
    pub(crate) fn devt(&self) -> u32 {
        // SAFETY: `disk` is valid (type invariant); `part0` is set at
        // allocation and `bd_dev` when the disk is added.
        unsafe { (*(*self.disk.as_ptr()).part0).bd_dev }
    }

    /// The disk's request queue, as an identity for [`RequestRef::queue_id`].
    pub(crate) fn queue_id(&self) -> usize {
        // SAFETY: `disk` is valid; its queue is set at allocation and lives
        // as long as the disk.
        unsafe { (*self.disk.as_ptr()).queue as usize }
    }

    /// Runs `f` while no request of the disk is in flight and none can
    /// start: the queue is frozen (`blk_mq_freeze_queue()`), which waits
    /// for every request in flight to end, and unfrozen after `f`, after
    /// which requests go on (those that waited to start included). This is
    /// how block drivers change what their requests use.
    ///
    /// Must be called in process context, without locks that a request's
    /// I/O may need.
    pub(crate) fn with_requests_stopped<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: `disk` is valid; so is its queue while the disk is.
        let q = unsafe { (*self.disk.as_ptr()).queue };
        // Allocations while frozen must not recurse into I/O on the queue
        // (what `blk_mq_freeze_queue()` arranges with memalloc_noio).
        let _noio = super::workqueue::NoIoScope::enter();
        // SAFETY: `q` is a valid queue; freeze and unfreeze are paired.
        unsafe { bindings::blk_mq_freeze_queue_nomemsave(q) };
        let r = f();
        // SAFETY: As above: the freeze above is released.
        unsafe { bindings::blk_mq_unfreeze_queue_nomemrestore(q) };
        r
    }

    /// Tells the holder of the disk's block device, a file system mounted
    /// from it for instance, that the device is gone, as for a surprise
    /// removal (`bdev_mark_dead()`): a file system shuts down at once.
    /// Unlike `blk_mark_disk_dead()` this leaves the disk's size and queue
    /// alone, so the driver decides how its I/O fails. Must be called
    /// without the disk's `open_mutex`, and with new I/O already failing
    /// (the call syncs the device when it has no holder). Tells the whole
    /// disk and each of its partitions.
    pub(crate) fn report_dead(&self) {
        if !self.added {
            return;
        }
        // SAFETY: `disk` is a valid gendisk (type invariant); its
        // partition table lives as long as it.
        let table = unsafe { core::ptr::addr_of_mut!((*self.disk.as_ptr()).part_tbl) };
        // As the block layer does for a disk marked dead: the whole device
        // (index 0) and every partition, each held by a reference taken
        // under RCU, which keeps the entry's block device from being freed
        // until then.
        let mut index: c_ulong = 0;
        let mut first = true;
        loop {
            let guard = kernel::sync::rcu::read_lock();
            // SAFETY: `table` is a valid xarray; `index` is ours. Under RCU
            // a block device found in it stays allocated.
            let entry = unsafe {
                if first {
                    bindings::xa_find(table, &mut index, c_ulong::MAX, bindings::XA_PRESENT)
                } else {
                    bindings::xa_find_after(table, &mut index, c_ulong::MAX, bindings::XA_PRESENT)
                }
            };
            first = false;
            let Some(bdev) = NonNull::new(entry.cast::<bindings::block_device>()) else {
                break;
            };
            // SAFETY: `bdev` is allocated (RCU, above); a reference on its
            // device is taken only while it is still alive.
            let held = !unsafe {
                bindings::kobject_get_unless_zero(core::ptr::addr_of_mut!(
                    (*bdev.as_ptr()).bd_device.kobj
                ))
            }
            .is_null();
            drop(guard);
            if !held {
                continue;
            }
            // SAFETY: `bdev` is a block device of this disk, alive while we
            // hold the reference taken above, which is put after the call.
            // Called without `open_mutex` (the caller's contract).
            unsafe {
                bindings::bdev_mark_dead(bdev.as_ptr(), true);
                bindings::put_device(core::ptr::addr_of_mut!((*bdev.as_ptr()).bd_device));
            }
        }
    }

    /// Changes the disk's size to `sectors` while it may be open and in
    /// use (`set_capacity_and_notify()`): the block layer keeps new
    /// requests inside the new size, and if the size changed (from and to
    /// a non-zero size) a `change` uevent with `RESIZE=1` is sent, so that
    /// udev rules and tools like `lsblk` see the new size.
    pub(crate) fn set_capacity_and_notify(&self, sectors: u64) {
        // SAFETY: `disk` is a valid gendisk (type invariant); the call
        // checks itself whether it is added and alive before it notifies.
        unsafe { bindings::set_capacity_and_notify(self.disk.as_ptr(), sectors) };
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
        // down: removed if it was added (unless that is done), then put
        // once; the tag set is freed last, when no queue uses it any more.
        // A disk never added gets no `free_disk` call: the data's reference
        // is released here.
        unsafe {
            if self.added && !self.removed {
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
/// end it, which [`RequestRef::end`] and [`RequestRef::complete`] fulfil
/// (consuming it). Dropping it without either leaves the duty to whoever
/// the request was handed to (a worker, or asynchronous I/O).
pub(crate) struct RequestRef<T: DiskOps> {
    rq: NonNull<bindings::request>,
    _ops: PhantomData<T>,
}

// SAFETY: A started request may be processed and ended on any thread.
unsafe impl<T: DiskOps> Send for RequestRef<T> {}

/// How a request's data is laid out in its bios' vectors, for an
/// `iov_iter` over them.
pub(crate) enum DataVectors {
    /// One bio: its vector can be used in place, `count` entries from
    /// `first`, the data starting `offset` bytes into the first.
    InPlace {
        /// The first entry.
        first: *const bindings::bio_vec,
        /// Entries that hold the request's data.
        count: u32,
        /// Bytes of the first entry before the data.
        offset: u32,
    },
    /// Several bios: the data must be gathered into one vector of
    /// `count` entries ([`RequestRef::gather_vectors`]).
    Gather {
        /// Entries needed.
        count: u32,
    },
}

impl<T: DiskOps> RequestRef<T> {
    /// Takes over a started request from its driver data.
    ///
    /// # Safety
    ///
    /// `pdu` must be the driver data of a request of a `Disk<T>` that was
    /// started and is not ended, whose duty to end it the caller holds.
    unsafe fn from_pdu(pdu: *mut Pdu<T::Cmd>) -> Self {
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

    /// Takes over a started request from its [`DiskOps::Cmd`], for the
    /// completion of asynchronous I/O.
    ///
    /// # Safety
    ///
    /// `cmd` must be the `Cmd` of a request of a `Disk<T>` that was started
    /// and is not ended, whose duty to end it the caller holds (the
    /// driver returned [`Disposition::InFlight`] for it and this is its
    /// one completion).
    pub(crate) unsafe fn from_cmd(cmd: *const T::Cmd) -> Self {
        let offset = core::mem::offset_of!(Pdu<T::Cmd>, cmd);
        // SAFETY: `cmd` is the `cmd` field of a `Pdu<T::Cmd>` (type
        // invariant of `Disk<T>`), `offset` bytes into it.
        let pdu = unsafe { cmd.cast::<u8>().sub(offset) }.cast::<Pdu<T::Cmd>>();
        // SAFETY: As the caller guarantees.
        unsafe { Self::from_pdu(pdu.cast_mut()) }
    }

    /// The request's driver data.
    fn pdu(&self) -> *mut Pdu<T::Cmd> {
        // SAFETY: `rq` is a valid request of a tag set with a `cmd_size`
        // of `size_of::<Pdu<T::Cmd>>()`.
        unsafe { bindings::blk_mq_rq_to_pdu(self.rq.as_ptr()) }.cast()
    }

    /// The request's link in a [`Lane`].
    fn next_link(&self) -> *mut *mut bindings::request {
        // SAFETY: The driver data holds a `Pdu<T::Cmd>` (type invariant of
        // `Disk<T>`); only the field's address is formed.
        unsafe { (*self.pdu()).next.get() }
    }

    /// The driver's state for this request.
    pub(crate) fn cmd(&self) -> &T::Cmd {
        // SAFETY: The driver data holds a `Pdu<T::Cmd>` made by
        // `init_request` (type invariant of `Disk<T>`), alive until the tag
        // set is freed, which waits for this request to end.
        unsafe { &(*self.pdu()).cmd }
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

    /// The request's queue, as an identity: equal to [`Disk::queue_id`] of
    /// its disk.
    pub(crate) fn queue_id(&self) -> usize {
        // SAFETY: `rq` is valid; `q` is set at allocation.
        unsafe { (*self.rq.as_ptr()).q as usize }
    }

    /// The index of the request's hardware queue.
    pub(crate) fn hw_queue(&self) -> u32 {
        // SAFETY: `rq` is valid and started: `mq_hctx` is its hardware
        // queue, set when the request was allocated.
        unsafe { (*(*self.rq.as_ptr()).mq_hctx).queue_num }
    }

    fn cmd_flags(&self) -> u32 {
        // SAFETY: `rq` is valid; `cmd_flags` is stable once started.
        unsafe { (*self.rq.as_ptr()).cmd_flags }
    }

    /// The operation.
    pub(crate) fn op(&self) -> ReqOp {
        match self.cmd_flags() & REQ_OP_MASK {
            bindings::req_op_REQ_OP_READ => ReqOp::Read,
            bindings::req_op_REQ_OP_WRITE => ReqOp::Write,
            bindings::req_op_REQ_OP_FLUSH => ReqOp::Flush,
            bindings::req_op_REQ_OP_DISCARD => ReqOp::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => ReqOp::WriteZeroes,
            other => ReqOp::Other(other),
        }
    }

    /// A write that must be on stable storage when it completes (`REQ_FUA`).
    pub(crate) fn is_fua(&self) -> bool {
        self.cmd_flags() & REQ_FUA != 0
    }

    /// Write zeroes that must not deallocate (`REQ_NOUNMAP`).
    pub(crate) fn is_nounmap(&self) -> bool {
        self.cmd_flags() & REQ_NOUNMAP != 0
    }

    /// The I/O priority (`req_get_ioprio()`: that of the first bio).
    pub(crate) fn ioprio(&self) -> u16 {
        // SAFETY: `rq` is valid and started: its bio chain is stable.
        let bio = unsafe { (*self.rq.as_ptr()).bio };
        if bio.is_null() {
            return 0;
        }
        // SAFETY: `bio` is a valid bio of the request.
        unsafe { (*bio).bi_ioprio }
    }

    /// The byte offset on the disk where the request starts.
    pub(crate) fn byte_offset(&self) -> u64 {
        // SAFETY: `rq` is valid; `__sector` is what `blk_rq_pos()` reads.
        let sector = unsafe { (*self.rq.as_ptr()).__sector };
        sector << SECTOR_SHIFT
    }

    /// The request's size in bytes (`blk_rq_bytes()`).
    pub(crate) fn bytes(&self) -> u32 {
        // SAFETY: `rq` is valid; `__data_len` is what `blk_rq_bytes()` reads.
        unsafe { (*self.rq.as_ptr()).__data_len }
    }

    /// The blkcg of the request's first bio (what `loop` charges a
    /// request to), or null.
    pub(crate) fn blkcg_css(&self) -> *mut bindings::cgroup_subsys_state {
        // SAFETY: `rq` is valid and started: its bio chain is stable.
        let bio = unsafe { (*self.rq.as_ptr()).bio };
        if bio.is_null() {
            return core::ptr::null_mut();
        }
        // SAFETY: `bio` is a valid bio of the request; the css it returns
        // is pinned by the bio's blkg while the request is not ended.
        unsafe { helpers::lofi_bio_blkcg_css(bio) }
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

    /// How the request's data vectors are laid out (`blk_rq_nr_bvec()`,
    /// and whether the request has one bio).
    pub(crate) fn data_vectors(&self) -> Result<DataVectors> {
        let mut count = 0u32;
        self.for_each_segment(|_| {
            count += 1;
            Ok(())
        })?;
        // SAFETY: `rq` is valid and started: its bio chain is stable.
        let (bio, tail) = unsafe { ((*self.rq.as_ptr()).bio, (*self.rq.as_ptr()).biotail) };
        if bio.is_null() || bio != tail {
            return Ok(DataVectors::Gather { count });
        }
        // SAFETY: `bio` is the request's one bio; `bvec_iter` is copied.
        let (vecs, iter) = unsafe { ((*bio).bi_io_vec, (*bio).bi_iter) };
        Ok(DataVectors::InPlace {
            // SAFETY: `bi_idx` indexes the bio's vector (bvec iterator
            // invariant); the pointer is only formed here.
            first: unsafe { vecs.add(iter.bi_idx as usize) },
            count,
            offset: iter.bi_offset,
        })
    }

    /// Copies the request's segments into `out`, which must have room for
    /// the `count` of [`DataVectors::Gather`].
    pub(crate) fn gather_vectors(&self, out: &mut KVec<bindings::bio_vec>) -> Result {
        out.clear();
        self.for_each_segment(|seg| out.push(*seg, GFP_NOWAIT).map_err(|_| ENOMEM))
    }

    /// Switches the disk's discard or write zeroes off (their limits to
    /// 0), for a backing file that turned out not to support them. From
    /// a worker (process context).
    pub(crate) fn disable(&self, what: Zeroing) -> Result {
        // SAFETY: `rq` is valid; its queue lives while it is in flight.
        let q = unsafe { (*self.rq.as_ptr()).q };
        // SAFETY: All-zeroes is a valid `queue_limits`; overwritten next.
        let mut lim: bindings::queue_limits = unsafe { core::mem::zeroed() };
        // SAFETY: `q` is valid; this takes `limits_lock`, released by the
        // commit below, and fills `lim` with the current limits.
        unsafe { helpers::lofi_queue_limits_start_update(q, &mut lim) };
        match what {
            Zeroing::Discard => lim.max_hw_discard_sectors = 0,
            Zeroing::WriteZeroes => lim.max_write_zeroes_sectors = 0,
        }
        // SAFETY: `q` is valid, its `limits_lock` is held (above) and is
        // released by this call.
        to_result(unsafe { bindings::queue_limits_commit_update(q, &mut lim) })
    }

    /// Ends the request with `status`.
    fn end(self, status: BlkStatus) {
        T::finish(&self);
        // SAFETY: By the type invariant the request is started and ours to
        // end, once: `self` is consumed.
        unsafe { bindings::blk_mq_end_request(self.rq.as_ptr(), status.0) };
    }

    /// Completes a request that a worker served with `status`: blk-mq ends
    /// it on the submitting CPU.
    fn complete_served(self, status: BlkStatus) {
        // SAFETY: The request's one user (its worker) records the status
        // for the completion, which reads it after `complete` hands the
        // request over.
        unsafe { *(*self.pdu()).served.get() = Some(status) };
        self.complete();
    }

    /// Hands the request to a worker, the lane of its hardware queue
    /// ([`DiskOps::lanes`]), which serves it with [`Submit::Worker`].
    /// Callable in any context: from `queue_rq`, and from the completion of
    /// asynchronous I/O that must be done again in a worker.
    pub(crate) fn punt(self) {
        // A worker may end the request before the lane's work is queued,
        // and with it the request's own hold on the disk and its data.
        let usage = QueueUsage::of(&self);
        T::lanes(usage.data()).punt(self);
    }

    /// Completes a request whose asynchronous I/O is done: blk-mq ends it
    /// with the status [`DiskOps::complete`] returns, on the submitting
    /// CPU. Callable in any context (an I/O completion interrupt).
    pub(crate) fn complete(self) {
        // SAFETY: By the type invariant the request is started and ours to
        // end; `blk_mq_complete_request()` hands it to the `complete`
        // callback, which ends it. `self` is consumed.
        unsafe { bindings::blk_mq_complete_request(self.rq.as_ptr()) };
    }
}

/// A usage reference of a disk's queue, as each request in flight holds
/// (`q_usage_counter`, per CPU: taking it writes no shared word). While it
/// is held no freeze of the queue completes, so `del_gendisk()` cannot
/// finish and the disk and its data stay alive, even once the request it
/// was taken from has ended: for code that may see its request end under
/// it (a punt, a submission whose asynchronous I/O completes at once).
///
/// # Invariants
///
/// `q` is the queue of a `Disk<T>`, on which this value holds one usage
/// reference.
struct QueueUsage<T: DiskOps> {
    q: NonNull<bindings::request_queue>,
    _ops: PhantomData<T>,
}

impl<T: DiskOps> QueueUsage<T> {
    /// A reference of `rq`'s queue.
    fn of(rq: &RequestRef<T>) -> Self {
        // SAFETY: `rq` is valid; `q` is set at allocation and never null.
        let q = unsafe { NonNull::new_unchecked((*rq.rq.as_ptr()).q) };
        // SAFETY: `q` is the queue of a request in flight, which holds a
        // usage reference itself: the queue is alive and its count above 0.
        unsafe { helpers::lofi_queue_usage_get(q.as_ptr()) };
        // INVARIANT: Taken just now, on the queue of a request of a `Disk<T>`.
        Self {
            q,
            _ops: PhantomData,
        }
    }

    /// The data of the queue's disk, alive while the reference is held.
    fn data(&self) -> &T::Data {
        // SAFETY: The disk's data (`queuedata`, see `RequestRef::data`) is
        // released only after `del_gendisk()`, whose freeze waits for the
        // queue's usage count to reach 0, which this reference (type
        // invariant) prevents for as long as the borrow of `self`.
        unsafe { &*self.q.as_ref().queuedata.cast::<T::Data>() }
    }
}

impl<T: DiskOps> Drop for QueueUsage<T> {
    fn drop(&mut self) {
        // SAFETY: Drops the reference this value holds (type invariant);
        // nothing of the queue is used after it.
        unsafe { helpers::lofi_queue_usage_put(self.q.as_ptr()) };
    }
}

/// The requests of one hardware queue that were punted to a worker, in
/// the order they were punted, and the work item that serves them.
///
/// # Invariants
///
/// Every request in `pending` is a started request of a `Disk<T>`, linked
/// through its [`Pdu`]'s `next`, whose duty to end it the list holds.
#[pin_data]
pub(crate) struct Lane<T: DiskOps> {
    /// Taken with interrupts off: a request is punted from the completion
    /// of asynchronous I/O too (see [`RequestRef::punt`]).
    #[pin]
    pending: SpinLockIrq<Pending>,
    #[pin]
    work: Work<Lane<T>>,
    _ops: PhantomData<fn() -> T>,
}

/// A FIFO of requests, linked through their [`Pdu`]s.
struct Pending {
    head: *mut bindings::request,
    tail: *mut bindings::request,
}

// SAFETY: The requests may be ended from any thread.
unsafe impl Send for Pending {}

impl_has_work! {
    impl{T: DiskOps} HasWork<Self> for Lane<T> { self.work }
}

impl<T: DiskOps> WorkItem for Lane<T> {
    type Pointer = Arc<Lane<T>>;

    fn run(lane: Arc<Lane<T>>) {
        // Everything punted until the lane is empty: one wakeup serves a
        // batch, in order. A request punted after the last look queues the
        // work again (it is no longer pending once it runs).
        while let Some(rq) = lane.pop() {
            // The request may end (asynchronous I/O) before `submit`
            // returns: the data is held by a queue reference meanwhile.
            let usage = QueueUsage::of(&rq);
            let disposition = T::submit(usage.data(), &rq, Submit::Worker);
            drop(usage);
            match disposition {
                // Ended on the CPU that submitted it, as the requests of
                // asynchronous I/O are: its caches are the waiter's.
                Disposition::Done(status) => rq.complete_served(status),
                Disposition::InFlight => {}
                // A worker has nowhere to punt to.
                Disposition::Punt => rq.end(BlkStatus::IO_ERROR),
            }
        }
    }
}

impl<T: DiskOps> Lane<T> {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            pending <- new_spinlock_irq!(Pending {
                head: core::ptr::null_mut(),
                tail: core::ptr::null_mut(),
            }, "lofi::Lane::pending"),
            work <- new_work!("lofi::Lane::work"),
            _ops: PhantomData,
        })
    }

    fn push(&self, rq: RequestRef<T>) {
        let next = rq.next_link();
        // The duty to end the request goes to the list with the pointer.
        let RequestRef { rq: raw, _ops } = rq;
        let raw = raw.as_ptr();
        let mut p = self.pending.lock();
        // SAFETY: `next` is the request's own link, used only under this
        // lock while it is listed; `tail` is a listed request (invariant).
        unsafe {
            *next = core::ptr::null_mut();
            if p.tail.is_null() {
                p.head = raw;
            } else {
                *Self::link_of(p.tail) = raw;
            }
        }
        // INVARIANT: `raw` is a started request whose duty was given up
        // above, now linked at the tail.
        p.tail = raw;
    }

    fn pop(&self) -> Option<RequestRef<T>> {
        let mut p = self.pending.lock();
        let raw = NonNull::new(p.head)?;
        // SAFETY: `raw` is a listed request (invariant); its link is read
        // under the lock.
        p.head = unsafe { *Self::link_of(raw.as_ptr()) };
        if p.head.is_null() {
            p.tail = core::ptr::null_mut();
        }
        // INVARIANT: Unlisted: the duty to end it comes back with it.
        Some(RequestRef {
            rq: raw,
            _ops: PhantomData,
        })
    }

    /// The `next` link in the driver data of a request of a `Disk<T>`.
    ///
    /// # Safety
    ///
    /// `rq` must be a request of a `Disk<T>`.
    unsafe fn link_of(rq: *mut bindings::request) -> *mut *mut bindings::request {
        // SAFETY: The driver data of such a request is a `Pdu<T::Cmd>`.
        let pdu = unsafe { bindings::blk_mq_rq_to_pdu(rq) }.cast::<Pdu<T::Cmd>>();
        // SAFETY: As above; only the field's address is formed.
        unsafe { (*pdu).next.get() }
    }
}

/// A disk's lanes: one per hardware queue, on one workqueue of their own
/// (`WQ_MEM_RECLAIM`, so that I/O makes progress under memory pressure,
/// and `WQ_FREEZABLE`, so that none reaches a frozen file system during
/// suspend), which runs the lanes side by side and each lane's requests
/// one after the other.
pub(crate) struct Lanes<T: DiskOps> {
    lanes: KVec<Arc<Lane<T>>>,
    queue: OwnedQueue,
}

impl<T: DiskOps> Lanes<T> {
    /// `count` lanes on a workqueue named `name` (one `%u`, from `n`).
    pub(crate) fn new(name: &CStr, n: u32, count: u32) -> Result<Self> {
        let count = count.max(1);
        let queue = OwnedQueue::new(
            name,
            n,
            flags::UNBOUND | flags::MEM_RECLAIM | flags::FREEZABLE,
            i32::try_from(count).unwrap_or(1),
        )?;
        let mut lanes = KVec::with_capacity(count as usize, GFP_KERNEL)?;
        for _ in 0..count {
            lanes.push(Arc::pin_init(Lane::<T>::new(), GFP_KERNEL)?, GFP_KERNEL)?;
        }
        Ok(Self { lanes, queue })
    }

    /// Hands `rq` to the lane of its hardware queue, and makes sure the
    /// lane's work runs.
    fn punt(&self, rq: RequestRef<T>) {
        let lane = (rq.hw_queue() as usize).checked_rem(self.lanes.len());
        let Some(lane) = lane.and_then(|lane| self.lanes.get(lane)) else {
            // No lanes at all (not made by `new`): fail the request.
            rq.end(BlkStatus::IO_ERROR);
            return;
        };
        lane.push(rq);
        // An `Err` gives the reference back: already pending, and the
        // pending run will find the request.
        let _ = self.queue.queue().enqueue(lane.clone());
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
        // The request may end (asynchronous I/O) before `submit` returns:
        // the data is held by a queue reference meanwhile.
        let usage = QueueUsage::of(&rq);
        let disposition = T::submit(usage.data(), &rq, Submit::Inline);
        drop(usage);
        match disposition {
            Disposition::Done(status) => rq.end(status),
            // The request belongs to its I/O now.
            Disposition::InFlight => {}
            Disposition::Punt => rq.punt(),
        }
        BlkStatus::OK.0
    }

    /// # Safety
    ///
    /// Called by blk-mq for a request of a `Disk<T>` handed to
    /// `blk_mq_complete_request()` by [`RequestRef::complete`].
    unsafe extern "C" fn complete(rq: *mut bindings::request) {
        // INVARIANT: `RequestRef::complete` gave up the duty to end the
        // request to this callback.
        let rq = RequestRef::<T> {
            // SAFETY: blk-mq never passes a null request.
            rq: unsafe { NonNull::new_unchecked(rq) },
            _ops: PhantomData,
        };
        // SAFETY: The completion is the request's one user; `served` was
        // written by the worker that completed it, if one did.
        let served = unsafe { (*(*rq.pdu()).served.get()).take() };
        let status = match served {
            Some(status) => status,
            None => T::complete(&rq.data(), &rq),
        };
        rq.end(status);
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
        // SAFETY: `blk_mq_rq_to_pdu` only computes the address after the
        // request header, which is where blk-mq puts the driver data.
        let pdu = unsafe { bindings::blk_mq_rq_to_pdu(rq) }.cast::<Pdu<T::Cmd>>();
        // SAFETY: The tag set's `cmd_size` reserves room for a `Pdu<T::Cmd>`
        // after the request, aligned as blk-mq aligns driver data (checked
        // in `Disk::new`), and it stays there until `exit_request`.
        unsafe {
            core::ptr::write(&raw mut (*pdu).cmd, T::new_cmd());
            core::ptr::write(&raw mut (*pdu).next, UnsafeCell::new(core::ptr::null_mut()));
            core::ptr::write(&raw mut (*pdu).served, UnsafeCell::new(None));
        };
        0
    }

    /// # Safety
    ///
    /// Called by blk-mq once per tag of a `Disk<T>`'s tag set, for a
    /// request that `init_request` set up, when the tag set is freed.
    unsafe extern "C" fn exit_request(
        _set: *mut bindings::blk_mq_tag_set,
        rq: *mut bindings::request,
        _hctx_idx: c_uint,
    ) {
        // SAFETY: As in `init_request`.
        let pdu = unsafe { bindings::blk_mq_rq_to_pdu(rq) }.cast::<Pdu<T::Cmd>>();
        // SAFETY: `init_request` wrote the `Cmd`; no request is in flight
        // when the tag set is freed, so nothing uses it any more.
        unsafe { core::ptr::drop_in_place(&raw mut (*pdu).cmd) };
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
                complete: Some(OpsTable::<T>::complete),
                init_request: Some(OpsTable::<T>::init_request),
                exit_request: Some(OpsTable::<T>::exit_request),
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
