// SPDX-License-Identifier: GPL-2.0

//! Opening a mapping's backing file.

use crate::{
    device::{Device, LofiDisk},
    kext::{
        blk::disk_is_ours,
        file::{FileKind, Identity, KernelFile, PathFile},
    },
    registry::Table,
};
use kernel::prelude::*;

/// Opens the backing file `path`: read-write unless `read_only`, falling
/// back to read-only when writing is not permitted (illumos does the same).
///
/// The path is resolved once, with `O_PATH`, which opens nothing; the
/// object found is judged, and then exactly that object is opened. So only
/// regular files and block devices are ever opened (a path swapped for a
/// FIFO or a character device meanwhile is not), and a lofi disk is
/// refused (`EINVAL`) before it is opened, so that the refusal does not
/// count as an open of it (which would make its own unmap fail with
/// `EBUSY`).
pub(crate) fn open_backing(
    table: &Table<Device>,
    path: &CStr,
    read_only: bool,
) -> Result<KernelFile> {
    let found = PathFile::lookup(path)?;
    match (found.kind(), found.identity()) {
        (FileKind::Other, _) => return Err(EINVAL),
        (FileKind::Block, Identity::Device(devt)) => {
            if table.lock().is_lofi_devt(devt) {
                return Err(EINVAL);
            }
        }
        _ => {}
    }
    let file = match found.open(!read_only) {
        Err(e) if !read_only && (e == EACCES || e == EPERM || e == EROFS) => found.open(false)?,
        other => other?,
    };
    // A lofi disk added after the check above (or a partition of one, which
    // has a device number of its own): refused all the same.
    if file
        .block_disk()
        .is_some_and(|disk| disk_is_ours::<LofiDisk>(&disk))
    {
        return Err(EINVAL);
    }
    Ok(file)
}

/// The identity of the object `path` names now, if any (to find a mapping
/// by a path that is not the one it was made with).
pub(crate) fn path_identity(path: &CStr) -> Option<Identity> {
    PathFile::lookup(path).ok().map(|f| f.identity())
}
