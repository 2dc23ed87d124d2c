// SPDX-License-Identifier: GPL-2.0

//! Unmapping and teardown: what happens to a device after an unmap
//! request, and the teardown work that closes its backing file and removes
//! its disk.
//!
//! Every teardown runs in the device's teardown work item, on the module's
//! teardown queue, which runs any number of items at once (so one device
//! stuck on a hung backing file holds up no other device). Callers that
//! need a step done wait for it killably:
//!
//! - a plain unmap of a device nobody has open waits until the disk is
//!   removed and the number free ([`Device::removed`]);
//! - a forced unmap of an open device fails its I/O, tells a file system
//!   on it that it is gone, and waits until the backing file is closed ([`Device::file_closed`]); the number stays
//!   taken until the last close;
//! - the last close of a device unmapped while open waits until the backing
//!   file is closed (see `LofiDisk::release`); the disk is removed after.

use crate::device::{Device, Phase, Unmap};
use kernel::{prelude::*, sync::Arc, workqueue::WorkItem};

impl WorkItem for Device {
    type Pointer = Arc<Device>;

    fn run(dev: Arc<Device>) {
        teardown(&dev);
    }
}

/// Does whatever teardown is due for `dev`, in order: closes the backing
/// file once the device is no mapping, then removes the disk and frees the
/// number once it is retired. A device retired while nobody had it open
/// has its disk removed before the file is closed (one drain instead of
/// two; nobody waits for the file under the disk's `open_mutex`). Each
/// step is done once; a later run (queued again by a later state change,
/// or by the release of the gendisk) finds it done.
fn teardown(dev: &Arc<Device>) {
    let phase = dev.phase();
    if phase.is_mapping() {
        return;
    }
    if phase == Phase::Retired && dev.removes_first() {
        dev.remove_and_close();
    } else {
        dev.close_backing();
    }
    if phase == Phase::Retired {
        // `del_gendisk` needs no lock of ours, and waits for nothing of
        // ours but the requests in flight, which have drained.
        drop(dev.take_disk());
        dev.table.lock().release(dev.number, dev, dev.identity);
        dev.removed.signal();
    }
}

/// Carries out an unmap request on `dev` (found as a mapping by the
/// caller): see the module documentation. `EINTR` if a fatal signal ends
/// the wait; the teardown then goes on without the caller.
pub(crate) fn unmap(dev: Arc<Device>, force: bool, cleanup: bool) -> Result {
    match dev.begin_unmap(force, cleanup)? {
        Unmap::AtLastClose => Ok(()),
        Unmap::Retire => {
            Device::queue_teardown(dev.clone());
            dev.removed.wait_killable()
        }
        Unmap::Force => {
            dev.take_away();
            Device::queue_teardown(dev.clone());
            dev.file_closed.wait_killable()
        }
    }
}
