// SPDX-License-Identifier: GPL-2.0

//! One mapping's device: the backing file served as a disk.
//!
//! [`Device`] is what the disk's callbacks and the I/O workers share. Its
//! life cycle:
//!
//! ```text
//!            unmap, not open                   last close
//!  Active ───────────────────────▶ Removing ◀────────────── Gone / DetachAtClose
//!    │  unmap -f, open ─▶ Closing ─▶ Gone ───────────────────────┘      ▲
//!    └─ unmap (cleanup), open ─▶ DetachAtClose ─────────────────────────┘
//! ```
//!
//! Requests pass the [`InflightGate`]; a forced unmap closes it, waits for
//! the requests inside, and only then closes the backing file.

use crate::{
    gate::InflightGate,
    geometry,
    kext::{
        blk::{BlkStatus, DiskOps, DiskVTable, Geometry, ReqOp, RequestRef},
        file::KernelFile,
        module_ref::ModuleRef,
        workqueue::{NoIoScope, OwnedQueue, RawWork, RawWorkFn},
    },
    registry,
    uapi::{DKIOCSTATE, DKIO_DEV_GONE, DKIO_INSERTED},
};
use core::cell::UnsafeCell;
use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, CondVar, Mutex},
    uaccess::{UserPtr, UserSlice},
    workqueue::{impl_has_work, new_work, Work, WorkItem},
};

/// Where a device is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Mapped and usable.
    Active,
    /// Unmapped with `li_cleanup` while open: removed at the last close.
    DetachAtClose,
    /// Being force-unmapped: I/O and opens are refused while the requests
    /// in flight drain and the backing file is closed; then `Gone`.
    Closing,
    /// Force-unmapped while open: the backing file is closed, I/O fails,
    /// opens fail; removed at the last close.
    Gone,
    /// Being removed: no new opens.
    Removing,
}

/// The mutable state of a device, under [`Device::state`].
pub(crate) struct DevState {
    /// Current opens of the disk.
    pub(crate) opens: u32,
    /// The life-cycle phase.
    pub(crate) phase: Phase,
}

/// The backing file, closed once after the gate has drained.
///
/// # Invariants
///
/// The slot is emptied only by [`BackingSlot::take`], whose caller has
/// closed the device's gate and waited for it to drain; readers hold a gate
/// entry. So no reader ever sees the slot change under it.
struct BackingSlot(UnsafeCell<Option<KernelFile>>);

// SAFETY: Access is serialised by the gate protocol (see the invariant);
// `KernelFile` is `Send + Sync`.
unsafe impl Sync for BackingSlot {}

impl BackingSlot {
    /// The file.
    ///
    /// # Safety
    ///
    /// The caller holds an entry of the device's gate.
    unsafe fn get(&self) -> Option<&KernelFile> {
        // SAFETY: With a gate entry held the slot cannot be taken (type
        // invariant), so a shared reference is sound.
        unsafe { (*self.0.get()).as_ref() }
    }

    /// Takes the file out, to close it.
    ///
    /// # Safety
    ///
    /// The caller closed the device's gate and waited for it to drain
    /// (`close_and_drain()` returned `true` to it, which happens once).
    unsafe fn take(&self) -> Option<KernelFile> {
        // SAFETY: Nobody holds a gate entry any more, and only the one
        // drainer calls this: access is exclusive.
        unsafe { (*self.0.get()).take() }
    }
}

/// What a mapping is made from.
pub(crate) struct DeviceConfig {
    pub(crate) number: u32,
    pub(crate) capacity: u64,
    pub(crate) read_only: bool,
    pub(crate) identity: usize,
    pub(crate) filename: KVec<u8>,
    pub(crate) file: KernelFile,
    pub(crate) removals: Arc<OwnedQueue>,
    pub(crate) module_ref: ModuleRef,
}

/// Requests in flight per device, and the concurrency of its I/O workers
/// (the illumos driver ran four threads per device).
pub(crate) const QUEUE_DEPTH: u32 = 128;
const IO_WORKERS: i32 = 8;

/// A mapping's device state, shared by the disk callbacks and I/O workers.
#[pin_data]
pub(crate) struct Device {
    /// The mapping number N.
    pub(crate) number: u32,
    /// Size in sectors.
    pub(crate) capacity: u64,
    /// The disk refuses writes.
    pub(crate) read_only: bool,
    /// Identity of the backing data (see `KernelFile::identity`).
    pub(crate) identity: usize,
    /// The backing file's path as the caller gave it (no NUL).
    pub(crate) filename: KVec<u8>,
    #[pin]
    gate: InflightGate,
    backing: BackingSlot,
    io_queue: OwnedQueue,
    removals: Arc<OwnedQueue>,
    #[pin]
    pub(crate) state: Mutex<DevState>,
    #[pin]
    state_changed: CondVar,
    #[pin]
    removal: Work<Device>,
    /// Held while the mapping exists: the module stays loaded.
    _module_ref: ModuleRef,
}

impl_has_work! {
    impl HasWork<Self> for Device { self.removal }
}

impl Device {
    /// Creates the device of a new mapping.
    pub(crate) fn new(config: DeviceConfig) -> Result<Arc<Self>> {
        let io_queue = OwnedQueue::new(
            c"lofi%u",
            config.number,
            crate::kext::workqueue::flags::UNBOUND | crate::kext::workqueue::flags::MEM_RECLAIM,
            IO_WORKERS,
        )?;
        Arc::pin_init(
            try_pin_init!(Self {
                number: config.number,
                capacity: config.capacity,
                read_only: config.read_only,
                identity: config.identity,
                filename: config.filename,
                gate <- InflightGate::new(),
                backing: BackingSlot(UnsafeCell::new(Some(config.file))),
                io_queue,
                removals: config.removals,
                state <- new_mutex!(DevState {
                    opens: 0,
                    phase: Phase::Active,
                }),
                state_changed <- new_condvar!("lofi::Device::state_changed"),
                removal <- new_work!("lofi::Device::removal"),
                _module_ref: config.module_ref,
            }),
            GFP_KERNEL,
        )
    }

    /// Stops I/O and closes the backing file: closes the gate, waits for
    /// the requests inside, then drops the file. Idempotent.
    pub(crate) fn shut_down_io(&self) {
        if self.gate.close_and_drain() {
            // SAFETY: `close_and_drain` returned `true`: we closed the gate
            // and it has drained.
            drop(unsafe { self.backing.take() });
        }
    }

    /// Second half of a forced unmap of an open device, after the caller
    /// moved it to `Closing` under the table and state locks (which made it
    /// refuse opens and stop counting as a mapping): drains the requests in
    /// flight, closes the backing file, and only then reports the device
    /// gone, so that a `DKIOCSTATE` waiter told `DKIO_DEV_GONE` knows the
    /// file is closed. Called with no lock held.
    pub(crate) fn finish_forced_unmap(&self) {
        self.shut_down_io();
        let mut st = self.state.lock();
        // The last close may already have moved it on to `Removing`.
        if st.phase == Phase::Closing {
            st.phase = Phase::Gone;
        }
        drop(st);
        self.state_changed.notify_all();
    }

    /// Whether the device still counts as a mapping: neither
    /// force-unmapped nor being removed after its last close. A device
    /// being removed keeps its number until its removal work has run, but
    /// queries no longer find it and its file may be mapped again.
    pub(crate) fn is_mapped(&self) -> bool {
        matches!(
            self.state.lock().phase,
            Phase::Active | Phase::DetachAtClose
        )
    }

    /// The `DKIO_*` state of a phase.
    fn dkio_state(phase: Phase) -> u32 {
        match phase {
            Phase::Active | Phase::DetachAtClose | Phase::Closing => DKIO_INSERTED,
            Phase::Gone | Phase::Removing => DKIO_DEV_GONE,
        }
    }

    /// Serves one request on the backing file.
    fn serve(&self, rq: &RequestRef<'_, LofiDisk>) -> Result {
        // SAFETY: The worker calling this holds a gate entry.
        let file = unsafe { self.backing.get() }.ok_or(EIO)?;
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

    /// Schedules removal after the last close.
    fn schedule_removal(&self) {
        // SAFETY: `self` is the `Device` of a live mapping, which holds an
        // `Arc<Device>` to it until removal: the pointer comes from that
        // `Arc` and it is alive.
        let this: Arc<Device> = unsafe { ArcBorrow::from_raw(self) }.into();
        let removals = self.removals.clone();
        // The work item is enqueued once: the phase moved to `Removing`
        // under the state lock just before, and never leaves it.
        let _ = removals.queue().enqueue(this);
    }
}

impl WorkItem for Device {
    type Pointer = Arc<Device>;

    fn run(this: Arc<Device>) {
        // Last close of a device unmapped while open.
        this.shut_down_io();
        registry::remove_after_last_close(&this);
    }
}

/// The per-request data: the work item that serves the request.
#[repr(C)]
pub(crate) struct RequestPdu {
    work: RawWork,
}

/// lofi's disk operations.
pub(crate) struct LofiDisk;

static VTABLE: DiskVTable<LofiDisk> = DiskVTable::new();

/// The I/O worker: serves one request on its device's queue.
struct ServeRequest;

impl RawWorkFn for ServeRequest {
    /// # Safety
    ///
    /// `work` is the `work` of a [`RequestPdu`] queued by
    /// `LofiDisk::queue_rq`.
    unsafe fn run(work: *mut RawWork) {
        // SAFETY: `work` is the first member of a `repr(C)` `RequestPdu`,
        // of a request started by `queue_rq` and ended only here.
        let rq = unsafe { RequestRef::<LofiDisk>::from_pdu(work.cast::<RequestPdu>()) };
        serve_request(rq);
    }
}

/// Serves a request and ends it.
fn serve_request(rq: RequestRef<'_, LofiDisk>) {
    let dev = rq.data();
    let status = {
        let _noio = NoIoScope::enter();
        match dev.serve(&rq) {
            Ok(()) => BlkStatus::OK,
            Err(e) if e == EOPNOTSUPP => BlkStatus::NOT_SUPPORTED,
            Err(_) => BlkStatus::IO_ERROR,
        }
    };
    // Leave the gate before ending the request: once it is ended, removal
    // may free the device. The backing file is no longer used here.
    dev.gate.leave();
    rq.end(status);
}

impl DiskOps for LofiDisk {
    type OwnerModule = crate::LofiModule;
    type Data = Device;
    type Pdu = RequestPdu;

    fn vtable() -> &'static DiskVTable<Self> {
        &VTABLE
    }

    fn queue_rq(dev: &Device, rq: RequestRef<'_, Self>) -> Result<(), BlkStatus> {
        if !dev.gate.try_enter() {
            return Err(BlkStatus::IO_ERROR);
        }
        let pdu = rq.into_pdu();
        // SAFETY: The work item was initialised by `init_pdu`, lives in the
        // request's driver data until the request is ended (by the worker),
        // and `serve_request` expects exactly this.
        unsafe { dev.io_queue.queue_raw(&(*pdu).work) };
        Ok(())
    }

    unsafe fn init_pdu(pdu: *mut RequestPdu) {
        // SAFETY: The caller provides memory for a `RequestPdu` that stays
        // in place; `work` is its first member.
        unsafe {
            RawWork::init::<ServeRequest>(&raw mut (*pdu).work, kernel::static_lock_class!())
        };
    }

    fn open(dev: &Device, _writable: bool) -> Result {
        let mut st = dev.state.lock();
        match st.phase {
            Phase::Active | Phase::DetachAtClose => {
                st.opens += 1;
                Ok(())
            }
            Phase::Closing | Phase::Gone | Phase::Removing => Err(ENXIO),
        }
    }

    fn release(dev: &Device) {
        let mut st = dev.state.lock();
        st.opens = st.opens.saturating_sub(1);
        if st.opens == 0
            && matches!(
                st.phase,
                Phase::Closing | Phase::Gone | Phase::DetachAtClose
            )
        {
            st.phase = Phase::Removing;
            drop(st);
            dev.schedule_removal();
        }
    }

    fn ioctl(dev: &Device, cmd: u32, arg: usize) -> Result<i32> {
        if cmd != DKIOCSTATE {
            return Err(ENOTTY);
        }
        let size = core::mem::size_of::<u32>();
        let seen: u32 = UserSlice::new(UserPtr::from_addr(arg), size)
            .reader()
            .read()?;
        let now = {
            let mut st = dev.state.lock();
            loop {
                let now = Device::dkio_state(st.phase);
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
}
