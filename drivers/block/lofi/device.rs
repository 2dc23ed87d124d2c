// SPDX-License-Identifier: GPL-2.0

//! One mapping's device: the backing file served as a disk.
//!
//! A [`Device`] is owned by its gendisk (see `kext::blk`): the disk's
//! callbacks and the I/O workers reach it through the disk, and it lives
//! until the last reference to the disk is gone. The mapping table and the
//! teardown work hold further references while they need it.
//!
//! Its life cycle (Documentation/admin-guide/blockdev/lofi.rst draws it):
//!
//! ```text
//!                 unmap -c, open              last close
//!   Mapped ─────────────────────▶ DetachAtClose ───────────┐
//!     │  unmap, not open                                    ▼
//!     ├────────────────────────────────────────────────▶ Retired ──▶ (removed)
//!     │  unmap -f, open              last close             ▲
//!     └─────────────────────▶ Gone ─────────────────────────┘
//! ```
//!
//! `Mapped` and `DetachAtClose` count as mappings; `Gone` and `Retired` do
//! not (queries do not find them, their file may be mapped again), but
//! keep their number until the disk is removed. Leaving `Mapped` or
//! `DetachAtClose` for `Gone` or `Retired` starts the teardown work
//! (`lifecycle.rs`), which closes the backing file once the requests using
//! it have drained, and for a retired device removes the disk.

use crate::{
    compressed::CompressedImage,
    geometry,
    kext::{
        blk::{
            BlkStatus, Disk, DiskOps, DiskVTable, Disposition, Geometry, Lanes, ReqOp, RequestRef,
            Submit, Zeroing,
        },
        disk_attrs::{DiskAttributes, SysfsText},
        event::Event,
        file::{
            Identity, KernelFile, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE,
        },
        file_io::{serve_from_memory, serve_rw, ChargeScope, FileIo, Issue},
        module_ref::ModuleRef,
        request_guard::RequestGuarded,
        workqueue::{IoFlusherScope, NoIoScope, OwnedQueue},
    },
    registry::{Entry, Table},
    uapi::{LOFI_DKIOCSTATE, LOFI_DKIO_DEV_GONE, LOFI_DKIO_INSERTED},
};
use core::fmt::{self, Write};
use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, ArcBorrow, CondVar, Mutex,
    },
    uaccess::{UserPtr, UserSlice},
    workqueue::{impl_has_work, new_work, Work},
};

/// Where a device is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Mapped and usable.
    Mapped,
    /// Unmapped with `li_cleanup` while open: usable, and still a mapping,
    /// until its last close.
    DetachAtClose,
    /// Force-unmapped while open: I/O fails, opens fail, not a mapping.
    /// `LOFI_DKIO_DEV_GONE` once the backing file is closed.
    Gone,
    /// Unmapped and closed by everyone: the backing file is closed and the
    /// disk removed by the teardown work.
    Retired,
}

impl Phase {
    /// Whether a device in this phase counts as a mapping.
    pub(crate) fn is_mapping(self) -> bool {
        matches!(self, Phase::Mapped | Phase::DetachAtClose)
    }
}

/// The mutable state of a device, under [`Device::state`].
pub(crate) struct DevState {
    /// Current opens of the disk.
    pub(crate) opens: u32,
    /// The life-cycle phase.
    pub(crate) phase: Phase,
}

/// What an unmap request does to a device (see [`Device::begin_unmap`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unmap {
    /// Nobody has it open: it is retired now.
    Retire,
    /// Forced while open: it is gone now.
    Force,
    /// Open, with `li_cleanup`: retired at its last close.
    AtLastClose,
}

/// What a mapping is made from.
pub(crate) struct DeviceConfig {
    pub(crate) number: u32,
    pub(crate) capacity: u64,
    pub(crate) offset: u64,
    pub(crate) sizelimit: u64,
    pub(crate) region_block: u32,
    pub(crate) labeled: bool,
    pub(crate) read_only: bool,
    pub(crate) identity: Identity,
    pub(crate) filename: KVec<u8>,
    pub(crate) file: KernelFile,
    pub(crate) direct: bool,
    pub(crate) compressed: Option<Pin<KBox<CompressedImage>>>,
    pub(crate) logical_block_size: u32,
    pub(crate) hw_queues: u32,
    pub(crate) teardown_queue: Arc<OwnedQueue>,
    pub(crate) table: Arc<Table<Device>>,
    pub(crate) module_ref: ModuleRef,
}

/// The directory of a mapping's sysfs attributes: `/sys/block/lofiN/lofi/`
/// (Documentation/ABI/testing/sysfs-block-lofi).
pub(crate) const SYSFS_DIR: &CStr = c"lofi";

/// The files in [`SYSFS_DIR`], each one line of text.
pub(crate) const SYSFS_ATTRIBUTES: &[&CStr] = &[
    c"backing_file",
    c"offset",
    c"sizelimit",
    c"readonly",
    c"labeled",
    c"dio",
    c"sector_size",
    c"state",
    c"algorithm",
];

/// Requests in flight per hardware queue.
pub(crate) const QUEUE_DEPTH: u32 = 128;

/// A mapping's device.
///
/// # Invariants
///
/// `disk`, once set, is the disk whose data this device is; it is taken
/// out only by the teardown work of a retired device, to remove it.
#[pin_data]
pub(crate) struct Device {
    /// The mapping number N.
    pub(crate) number: u32,
    /// Size in sectors (changed by [`Device::resize`]).
    capacity: Atomic<u64>,
    /// Where the disk's first byte is in the backing file.
    pub(crate) offset: u64,
    /// The size limit (0: to the end of the file), as reported by the
    /// queries: the one the mapping was made with, or the last resize's.
    sizelimit: Atomic<u64>,
    /// The block size the region is measured in: the one asked for at map
    /// time, or 512 (the logical block size may be larger, for direct I/O).
    region_block: u32,
    /// The disk may have partitions (illumos "labeled"): its partition
    /// table is read at map time and on `BLKRRPART`.
    pub(crate) labeled: bool,
    /// The disk refuses writes.
    pub(crate) read_only: bool,
    /// Served with direct, asynchronous I/O on the backing file.
    pub(crate) direct: bool,
    /// The backing file is a compressed image, whose reads decompress its
    /// segments (the mapping is read-only).
    pub(crate) compressed: Option<Pin<KBox<CompressedImage>>>,
    /// The disk's logical block size in bytes.
    pub(crate) logical_block_size: u32,
    /// Discard was found unsupported by the backing file and switched off.
    discard_off: Atomic<bool>,
    /// The same for write zeroes.
    write_zeroes_off: Atomic<bool>,
    /// Retired by an unmap while nobody had it open: no close waits for
    /// the backing file under the disk's `open_mutex`, so the teardown
    /// removes the disk first and then closes the file, with no queue
    /// freeze of its own (`del_gendisk()` already drains the requests).
    remove_first: Atomic<bool>,
    /// The backing file cannot zero a range in place (`ZERO_RANGE`): write
    /// zeroes that must stay allocated punch the range and allocate it
    /// again instead.
    zero_range_off: Atomic<bool>,
    /// Identity of the backing object.
    pub(crate) identity: Identity,
    /// The backing file's path as the caller gave it (no NUL).
    pub(crate) filename: KVec<u8>,
    /// The backing file, used by the disk's requests (and taken out only
    /// while none is in flight).
    backing: RequestGuarded<KernelFile>,
    /// The backing file has been closed.
    #[pin]
    pub(crate) file_closed: Event,
    /// The disk has been removed and the number freed.
    #[pin]
    pub(crate) removed: Event,
    /// The disk (set once it is added).
    #[pin]
    disk: Mutex<Option<Disk<LofiDisk>>>,
    /// One lane per hardware queue, for the requests that cannot be served
    /// in the submitter's context, each served in order, so that a
    /// sequential stream reaches the backing file sequentially.
    lanes: Lanes<LofiDisk>,
    teardown_queue: Arc<OwnedQueue>,
    /// The mapping table the device is in, to leave it when removed.
    pub(crate) table: Arc<Table<Device>>,
    #[pin]
    state: Mutex<DevState>,
    #[pin]
    state_changed: CondVar,
    #[pin]
    teardown: Work<Device>,
    /// Held while the device exists, so that the module stays loaded while
    /// any of its code can still run for it. Declared last: dropped last.
    _module_ref: ModuleRef,
}

impl_has_work! {
    impl HasWork<Self> for Device { self.teardown }
}

impl Device {
    /// Creates the device of a new mapping.
    pub(crate) fn new(config: DeviceConfig) -> Result<Arc<Self>> {
        let lanes = Lanes::<LofiDisk>::new(c"lofi%u", config.number, config.hw_queues)?;
        Arc::pin_init(
            try_pin_init!(Self {
                number: config.number,
                capacity: Atomic::new(config.capacity),
                offset: config.offset,
                sizelimit: Atomic::new(config.sizelimit),
                region_block: config.region_block,
                labeled: config.labeled,
                read_only: config.read_only,
                direct: config.direct,
                compressed: config.compressed,
                logical_block_size: config.logical_block_size,
                discard_off: Atomic::new(false),
                write_zeroes_off: Atomic::new(false),
                remove_first: Atomic::new(false),
                zero_range_off: Atomic::new(false),
                identity: config.identity,
                filename: config.filename,
                backing: RequestGuarded::new(config.file),
                file_closed <- Event::new(),
                removed <- Event::new(),
                disk <- new_mutex!(None, "lofi::Device::disk"),
                lanes,
                teardown_queue: config.teardown_queue,
                table: config.table,
                state <- new_mutex!(DevState {
                    opens: 0,
                    phase: Phase::Mapped,
                }),
                state_changed <- new_condvar!("lofi::Device::state_changed"),
                teardown <- new_work!("lofi::Device::teardown"),
                _module_ref: config.module_ref,
            }),
            GFP_KERNEL,
        )
    }

    /// Adds the device's disk and keeps it. Returns its device number.
    pub(crate) fn add_disk(
        &self,
        mut disk: Disk<LofiDisk>,
        attributes: Arc<DiskAttributes<LofiDisk>>,
    ) -> Result<u32> {
        self.backing.bind(&disk);
        disk.add(Some(attributes))?;
        let devt = disk.devt();
        *self.disk.lock() = Some(disk);
        Ok(devt)
    }

    /// The block size the region is measured in (see `region_block`).
    pub(crate) fn region_block(&self) -> u32 {
        self.region_block
    }

    /// The disk's size in sectors.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity.load(Relaxed)
    }

    /// The size limit (0: to the end of the file).
    pub(crate) fn sizelimit(&self) -> u64 {
        self.sizelimit.load(Relaxed)
    }

    /// A capacity change (`LOFI_SET_CAPACITY`): measures the backing file
    /// again and presents the region from the same offset with the size
    /// limit `sizelimit` (0: to the end of the file), in whole blocks as at
    /// map time, while the disk may be open and in use. `ENXIO` if the
    /// device is no mapping any more, `EINVAL` if the file no longer holds
    /// such a region (see [`geometry::resized_sectors`]). Returns the new
    /// size in sectors.
    ///
    /// Resizes are serialized by the disk's lock, which also keeps the
    /// backing file from being taken away meanwhile.
    pub(crate) fn resize(&self, sizelimit: u64) -> Result<u64> {
        let disk = self.disk.lock();
        let disk = disk.as_ref().ok_or(ENXIO)?;
        if !self.is_mapping() {
            return Err(ENXIO);
        }
        let file = self.backing.get_held(disk).ok_or(ENXIO)?;
        let sectors = geometry::resized_sectors(
            file.size()?,
            self.offset,
            sizelimit,
            self.region_block,
            self.logical_block_size,
        )?;
        self.sizelimit.store(sizelimit, Relaxed);
        self.capacity.store(sectors, Relaxed);
        disk.set_capacity_and_notify(sectors);
        Ok(sectors)
    }

    /// The phase.
    pub(crate) fn phase(&self) -> Phase {
        self.state.lock().phase
    }

    /// Whether the device counts as a mapping (see [`Phase::is_mapping`]).
    pub(crate) fn is_mapping(&self) -> bool {
        self.phase().is_mapping()
    }

    /// The state change an unmap request makes, decided under the state
    /// lock so that it cannot race with an open or the last close:
    /// `ENXIO` if the device is no mapping (any more), `EBUSY` if it is
    /// open and neither `force` nor `cleanup` is asked for.
    pub(crate) fn begin_unmap(&self, force: bool, cleanup: bool) -> Result<Unmap> {
        let mut st = self.state.lock();
        if !st.phase.is_mapping() {
            return Err(ENXIO);
        }
        let action = if st.opens == 0 {
            st.phase = Phase::Retired;
            self.remove_first.store(true, Relaxed);
            Unmap::Retire
        } else if force {
            st.phase = Phase::Gone;
            Unmap::Force
        } else if cleanup {
            st.phase = Phase::DetachAtClose;
            Unmap::AtLastClose
        } else {
            return Err(EBUSY);
        };
        drop(st);
        self.state_changed.notify_all();
        Ok(action)
    }

    /// Takes the device away from its users at once (a forced unmap):
    /// closes the backing file to new requests, so that every new request
    /// fails with `EIO` (those in flight finish; the teardown work waits
    /// for them),
    /// tells a file system mounted from the disk that it is gone (it shuts
    /// down at once), and sends a change uevent.
    ///
    /// The disk is not marked dead with `blk_mark_disk_dead()`: that also
    /// sets its size to 0, after which reads end early without an error (a
    /// copy of the device would end short, silently) and writes fail with
    /// `ENOSPC`. lofi keeps the illumos rule that every access to a
    /// force-unmapped device fails with `EIO`.
    pub(crate) fn take_away(&self) {
        self.backing.close();
        if let Some(disk) = self.disk.lock().as_ref() {
            disk.report_dead();
            disk.notify_change();
        }
    }

    /// Queues the teardown work of `dev` (once while it is pending: the
    /// pending run sees the state that made us queue it).
    pub(crate) fn queue_teardown(dev: Arc<Device>) {
        let queue = dev.teardown_queue.clone();
        // An `Err` gives the reference back (already pending): dropped.
        let _ = queue.queue().enqueue(dev);
    }

    /// Closes the backing file: closes it to new requests, waits for the
    /// requests in flight to end (a queue freeze), closes the file
    /// synchronously, and then reports the file closed (waking
    /// `LOFI_DKIOCSTATE` waiters). Only the teardown work calls this, before
    /// it removes the disk; a second call does nothing.
    pub(crate) fn close_backing(&self) {
        let mut disk = self.disk.lock();
        let file = match &mut *disk {
            // Exclusive: no resize measures the file meanwhile.
            Some(disk) => self.backing.revoke(disk),
            // No disk (yet, or any more): no request can use the file. The
            // disk is removed only after this has run once.
            None => None,
        };
        drop(disk);
        self.finish_close(file);
    }

    /// Whether the teardown removes the disk before it closes the backing
    /// file (see [`Device::remove_and_close`]).
    pub(crate) fn removes_first(&self) -> bool {
        self.remove_first.load(Relaxed)
    }

    /// Removes the disk, then closes the backing file, which no request can
    /// use any more, and reports it closed. For a device retired while
    /// nobody had it open (see `remove_first`): one drain, by
    /// `del_gendisk()`, instead of a freeze before it. Only the teardown
    /// work calls this; a second call does nothing but report the file
    /// closed again.
    pub(crate) fn remove_and_close(&self) {
        let disk = self.take_disk();
        let removed = disk.map(Disk::remove);
        let file = removed.as_ref().and_then(|r| self.backing.take_removed(r));
        self.finish_close(file);
        // The last put of the disk may drop the last reference of the
        // device but ours: after the file is closed.
        drop(removed);
    }

    /// Closes `file` (if this call took it) synchronously and reports the
    /// backing file closed, waking `LOFI_DKIOCSTATE` waiters.
    fn finish_close(&self, file: Option<KernelFile>) {
        if let Some(file) = file {
            file.close_sync();
        }
        self.file_closed.signal();
        // A waiter checks the event under the state lock: taking it here
        // orders the signal before any waiter's next check.
        drop(self.state.lock());
        self.state_changed.notify_all();
    }

    /// Takes the disk out, to remove it (teardown of a retired device).
    pub(crate) fn take_disk(&self) -> Option<Disk<LofiDisk>> {
        self.disk.lock().take()
    }

    /// The `LOFI_DKIO_*` state reported for a phase.
    fn dkio_state(&self, phase: Phase) -> u32 {
        if phase.is_mapping() || !self.file_closed.happened() {
            LOFI_DKIO_INSERTED
        } else {
            LOFI_DKIO_DEV_GONE
        }
    }

    /// Offers a request to the backing file (see [`DiskOps::submit`]).
    fn submit(&self, rq: &RequestRef<LofiDisk>, at: Submit) -> Disposition {
        let Some(file) = self.backing.get(rq) else {
            return Disposition::Done(BlkStatus::IO_ERROR);
        };
        let op = rq.op();
        if let Some(image) = &self.compressed {
            return self.submit_compressed(rq, file, image, op, at);
        }
        let write = match op {
            ReqOp::Read => false,
            ReqOp::Write => true,
            ReqOp::Flush | ReqOp::Discard | ReqOp::WriteZeroes if at == Submit::Inline => {
                // They sleep: in a worker.
                return Disposition::Punt;
            }
            ReqOp::Flush | ReqOp::Discard | ReqOp::WriteZeroes => {
                return Disposition::Done(self.serve_sync_op(rq, file, op));
            }
            ReqOp::Other(_) => return Disposition::Done(BlkStatus::NOT_SUPPORTED),
        };
        if write && self.read_only {
            return Disposition::Done(BlkStatus::IO_ERROR);
        }
        // The block layer keeps requests inside the capacity, and so
        // inside the mapped region of the file.
        let pos = self.file_pos(rq);
        let how = Issue {
            write,
            direct: self.direct,
            nowait: at == Submit::Inline,
            fua: rq.is_fua(),
        };
        match at {
            Submit::Inline => {
                let can = if write {
                    // Direct writes in whole blocks of the file system
                    // only: a partial block may need a synchronous look
                    // at the file's block map first (ext4 does that).
                    let block = u64::from(file.fs_block_size());
                    let aligned = (pos | u64::from(rq.bytes())).checked_rem(block) == Some(0);
                    file.nowait_writes(self.direct) && (!self.direct || aligned)
                } else {
                    file.nowait_reads()
                };
                if !can {
                    return Disposition::Punt;
                }
                // The submitter's allocations here must not recurse into
                // the block layer through reclaim.
                let _noio = NoIoScope::enter();
                serve_rw(rq, file, pos, how)
            }
            Submit::Worker => {
                let _flusher = IoFlusherScope::enter();
                let _charge = ChargeScope::enter(rq);
                serve_rw(rq, file, pos, how)
            }
        }
    }

    /// Offers a request to a compressed image: reads decompress in a
    /// worker (they sleep), anything that would change the disk fails, as
    /// on any read-only mapping.
    fn submit_compressed(
        &self,
        rq: &RequestRef<LofiDisk>,
        file: &KernelFile,
        image: &CompressedImage,
        op: ReqOp,
        at: Submit,
    ) -> Disposition {
        match (op, at) {
            (ReqOp::Read, Submit::Inline) => Disposition::Punt,
            (ReqOp::Read, Submit::Worker) => {
                let _flusher = IoFlusherScope::enter();
                let _charge = ChargeScope::enter(rq);
                let (pos, len) = (rq.byte_offset(), u64::from(rq.bytes()));
                Disposition::Done(serve_from_memory(rq, file, |sink| {
                    image.read(self.number, file, pos, len, sink)
                }))
            }
            // Nothing is cached for writing: a flush has nothing to do.
            (ReqOp::Flush, _) => Disposition::Done(BlkStatus::OK),
            (ReqOp::Other(_), _) => Disposition::Done(BlkStatus::NOT_SUPPORTED),
            _ => Disposition::Done(BlkStatus::IO_ERROR),
        }
    }

    /// The algorithm name of a compressed image's mapping (empty for
    /// others), as in its header.
    pub(crate) fn algorithm(&self) -> &'static [u8] {
        self.compressed
            .as_ref()
            .map_or(b"", |image| image.algorithm.name)
    }

    /// Where the data of `rq` is in the backing file.
    fn file_pos(&self, rq: &RequestRef<LofiDisk>) -> u64 {
        // Never saturates: the region ends inside the file, whose size
        // is an `i64`.
        self.offset.saturating_add(rq.byte_offset())
    }

    /// Zeroes `len` bytes at `pos` of the backing file, keeping them
    /// allocated: `ZERO_RANGE` where the file system has it (ext4, XFS),
    /// else a hole punched and allocated again (tmpfs has no `ZERO_RANGE`),
    /// which reads back as zeros just the same.
    fn zero_in_place(&self, file: &KernelFile, pos: u64, len: u64) -> Result {
        if !self.zero_range_off.load(Relaxed) {
            match file.fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, pos, len) {
                Err(e) if e == EOPNOTSUPP => self.zero_range_off.store(true, Relaxed),
                other => return other,
            }
        }
        file.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, len)?;
        file.fallocate(FALLOC_FL_KEEP_SIZE, pos, len)
    }

    /// Serves a flush, discard or write zeroes, in a worker.
    fn serve_sync_op(&self, rq: &RequestRef<LofiDisk>, file: &KernelFile, op: ReqOp) -> BlkStatus {
        let _flusher = IoFlusherScope::enter();
        let _charge = ChargeScope::enter(rq);
        let (mode, what, off) = match op {
            ReqOp::Flush => {
                return match file.datasync() {
                    Ok(()) => BlkStatus::OK,
                    Err(_) => BlkStatus::IO_ERROR,
                };
            }
            ReqOp::Discard => (
                FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                Zeroing::Discard,
                &self.discard_off,
            ),
            // As `loop` does: zeroes that must stay allocated are written
            // with ZERO_RANGE, the others punched out.
            _ if rq.is_nounmap() => (
                FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                Zeroing::WriteZeroes,
                &self.write_zeroes_off,
            ),
            _ => (
                FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                Zeroing::WriteZeroes,
                &self.write_zeroes_off,
            ),
        };
        if self.read_only {
            return BlkStatus::IO_ERROR;
        }
        let (pos, len) = (self.file_pos(rq), u64::from(rq.bytes()));
        let result = if mode & FALLOC_FL_ZERO_RANGE != 0 {
            self.zero_in_place(file, pos, len)
        } else {
            file.fallocate(mode, pos, len)
        };
        match result {
            Ok(()) => BlkStatus::OK,
            Err(e) if e == EOPNOTSUPP => {
                // The backing file system cannot: stop advertising it, and
                // say so once.
                if !off.xchg(true, Relaxed) {
                    let name = match what {
                        Zeroing::Discard => "discard",
                        Zeroing::WriteZeroes => "write zeroes",
                    };
                    pr_info!(
                        "lofi{}: the backing file cannot {}; switched off\n",
                        self.number,
                        name
                    );
                    let _ = rq.disable(what);
                }
                BlkStatus::NOT_SUPPORTED
            }
            Err(e) if e == EINVAL => BlkStatus::NOT_SUPPORTED,
            Err(_) => BlkStatus::IO_ERROR,
        }
    }
}

impl Entry for Device {
    fn is_mapping(&self) -> bool {
        Device::is_mapping(self)
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn filename(&self) -> &[u8] {
        &self.filename
    }
}

/// lofi's disk operations.
pub(crate) struct LofiDisk;

static VTABLE: DiskVTable<LofiDisk> = DiskVTable::new();

impl DiskOps for LofiDisk {
    type OwnerModule = crate::LofiModule;
    type Data = Device;
    type Cmd = FileIo;

    fn vtable() -> &'static DiskVTable<Self> {
        &VTABLE
    }

    fn new_cmd() -> FileIo {
        FileIo::new()
    }

    fn lanes(dev: &Device) -> &Lanes<Self> {
        &dev.lanes
    }

    fn submit(dev: &Device, rq: &RequestRef<Self>, at: Submit) -> Disposition {
        dev.submit(rq, at)
    }

    fn complete(_dev: &Device, rq: &RequestRef<Self>) -> BlkStatus {
        rq.cmd().async_status()
    }

    fn finish(rq: &RequestRef<Self>) {
        rq.cmd().finish();
    }

    fn open(dev: ArcBorrow<'_, Device>, writable: bool) -> Result {
        let mut st = dev.state.lock();
        if !st.phase.is_mapping() {
            return Err(ENXIO);
        }
        // As illumos (and Linux's CD-ROM drivers) do: `mount` then falls
        // back to read-only by itself.
        if writable && dev.read_only {
            return Err(EROFS);
        }
        st.opens += 1;
        Ok(())
    }

    fn release(dev: ArcBorrow<'_, Device>) {
        let mut st = dev.state.lock();
        st.opens = st.opens.saturating_sub(1);
        if st.opens > 0 || !matches!(st.phase, Phase::DetachAtClose | Phase::Gone) {
            return;
        }
        st.phase = Phase::Retired;
        drop(st);
        dev.state_changed.notify_all();
        Device::queue_teardown(dev.into());
        // Close the backing file before this close returns, so that its
        // file system can be unmounted right after. The teardown work
        // closes it: this runs under the disk's `open_mutex`, where the
        // final close of a backing block device (which takes its own
        // disk's `open_mutex`) cannot be made. The work removes the disk
        // only after the file is closed, and that waits for `open_mutex`,
        // so it cannot wait for us. A fatal signal ends the wait early.
        let _ = dev.file_closed.wait_killable();
    }

    fn ioctl(dev: ArcBorrow<'_, Device>, cmd: u32, arg: usize) -> Result<i32> {
        if cmd != LOFI_DKIOCSTATE {
            return Err(ENOTTY);
        }
        let size = core::mem::size_of::<u32>();
        let seen: u32 = UserSlice::new(UserPtr::from_addr(arg), size)
            .reader()
            .read()?;
        let now = {
            let mut st = dev.state.lock();
            loop {
                let now = dev.dkio_state(st.phase);
                if now != seen {
                    break now;
                }
                if dev.state_changed.wait_interruptible(&mut st) {
                    return Err(EINTR);
                }
            }
        };
        UserSlice::new(UserPtr::from_addr(arg), size)
            .writer()
            .write(&now)?;
        Ok(0)
    }

    fn geometry(dev: &Device) -> Geometry {
        let g = geometry::fake_geometry(dev.capacity());
        Geometry {
            heads: g.heads,
            sectors: g.sectors,
            cylinders: g.cylinders,
        }
    }

    fn show_attribute(dev: &Device, index: usize, out: &mut SysfsText<'_>) -> fmt::Result {
        let Some(&name) = SYSFS_ATTRIBUTES.get(index) else {
            return Ok(());
        };
        match name.to_bytes() {
            b"backing_file" => {
                out.write_bytes(&dev.filename);
                out.write_str("\n")
            }
            b"offset" => writeln!(out, "{}", dev.offset),
            b"sizelimit" => writeln!(out, "{}", dev.sizelimit()),
            b"readonly" => writeln!(out, "{}", u8::from(dev.read_only)),
            b"labeled" => writeln!(out, "{}", u8::from(dev.labeled)),
            b"dio" => writeln!(out, "{}", u8::from(dev.direct)),
            b"sector_size" => writeln!(out, "{}", dev.logical_block_size),
            b"algorithm" => {
                out.write_bytes(dev.algorithm());
                out.write_str("\n")
            }
            b"state" => {
                let state = match dev.phase() {
                    Phase::Mapped => "mapped",
                    Phase::DetachAtClose => "detach-at-close",
                    // No mapping any more; the disk is going away.
                    Phase::Gone | Phase::Retired => "gone",
                };
                writeln!(out, "{state}")
            }
            _ => Ok(()),
        }
    }

    fn free(dev: Arc<Device>) {
        // The last reference may go here, and with it the module
        // reference: hand it to the teardown work, whose queue the module
        // drains before it is unloaded, so that no code of the module runs
        // after its last reference is dropped. (Its run finds nothing left
        // to do.)
        Device::queue_teardown(dev);
    }
}
