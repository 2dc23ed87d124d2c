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
    geometry,
    kext::{
        blk::{BlkStatus, Disk, DiskOps, DiskVTable, Geometry, ReqOp, RequestRef},
        event::Event,
        file::{Identity, KernelFile},
        gated::Gated,
        module_ref::ModuleRef,
        workqueue::{flags, IoFlusherScope, OwnedQueue},
    },
    registry::{Entry, Table},
    uapi::{LOFI_DKIOCSTATE, LOFI_DKIO_DEV_GONE, LOFI_DKIO_INSERTED},
};
use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, CondVar, Mutex},
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
    pub(crate) read_only: bool,
    pub(crate) identity: Identity,
    pub(crate) filename: KVec<u8>,
    pub(crate) file: KernelFile,
    pub(crate) teardown_queue: Arc<OwnedQueue>,
    pub(crate) table: Arc<Table<Device>>,
    pub(crate) module_ref: ModuleRef,
}

/// Requests in flight per device, and the concurrency of its I/O workers
/// (the illumos driver ran four threads per device).
pub(crate) const QUEUE_DEPTH: u32 = 128;
const IO_WORKERS: i32 = 8;

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
    /// Size in sectors.
    pub(crate) capacity: u64,
    /// The disk refuses writes.
    pub(crate) read_only: bool,
    /// Identity of the backing object.
    pub(crate) identity: Identity,
    /// The backing file's path as the caller gave it (no NUL).
    pub(crate) filename: KVec<u8>,
    /// The backing file, behind the gate that the I/O workers pass.
    #[pin]
    backing: Gated<KernelFile>,
    /// The backing file has been closed.
    #[pin]
    pub(crate) file_closed: Event,
    /// The disk has been removed and the number freed.
    #[pin]
    pub(crate) removed: Event,
    /// The disk (set once it is added).
    #[pin]
    disk: Mutex<Option<Disk<LofiDisk>>>,
    io_queue: OwnedQueue,
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
        let io_queue = OwnedQueue::new(
            c"lofi%u",
            config.number,
            flags::UNBOUND | flags::MEM_RECLAIM | flags::FREEZABLE,
            IO_WORKERS,
        )?;
        Arc::pin_init(
            try_pin_init!(Self {
                number: config.number,
                capacity: config.capacity,
                read_only: config.read_only,
                identity: config.identity,
                filename: config.filename,
                backing <- Gated::new(config.file),
                file_closed <- Event::new(),
                removed <- Event::new(),
                disk <- new_mutex!(None, "lofi::Device::disk"),
                io_queue,
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
    pub(crate) fn add_disk(&self, mut disk: Disk<LofiDisk>) -> Result<u32> {
        disk.add()?;
        let devt = disk.devt();
        *self.disk.lock() = Some(disk);
        Ok(devt)
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
    /// closes the backing file's gate, so that every new request fails
    /// with `EIO` (those inside finish; the teardown work waits for them),
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

    /// Closes the backing file: closes the gate, waits for the requests
    /// using the file to leave it, closes the file synchronously, and then
    /// reports the file closed (waking `LOFI_DKIOCSTATE` waiters). Only the
    /// teardown work calls this; a second call does nothing.
    pub(crate) fn close_backing(&self) {
        if let Some(file) = self.backing.revoke() {
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

    /// Serves one request on the backing file.
    fn serve(&self, rq: &RequestRef<LofiDisk>) -> Result {
        let file = self.backing.enter().ok_or(EIO)?;
        let mut pos = rq.byte_offset();
        match rq.op() {
            ReqOp::Read => rq.for_each_segment(|seg| {
                file.read_segment(seg, pos)?;
                pos += u64::from(seg.bv_len);
                Ok(())
            }),
            ReqOp::Write if !self.read_only => rq.for_each_segment(|seg| {
                if file.write_segment(seg, pos)? != seg.bv_len as usize {
                    return Err(EIO);
                }
                pos += u64::from(seg.bv_len);
                Ok(())
            }),
            ReqOp::Write => Err(EROFS),
            ReqOp::Flush => file.sync(),
            ReqOp::Other(_) => Err(EOPNOTSUPP),
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

    fn vtable() -> &'static DiskVTable<Self> {
        &VTABLE
    }

    fn io_queue(dev: &Device) -> &OwnedQueue {
        &dev.io_queue
    }

    fn serve(dev: &Device, rq: &RequestRef<Self>) -> BlkStatus {
        let _flusher = IoFlusherScope::enter();
        match dev.serve(rq) {
            Ok(()) => BlkStatus::OK,
            Err(e) if e == EOPNOTSUPP => BlkStatus::NOT_SUPPORTED,
            Err(_) => BlkStatus::IO_ERROR,
        }
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
        let g = geometry::fake_geometry(dev.capacity);
        Geometry {
            heads: g.heads,
            sectors: g.sectors,
            cylinders: g.cylinders,
        }
    }

    fn devnode(dev: &Device) -> Option<u32> {
        Some(dev.number)
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
