// SPDX-License-Identifier: GPL-2.0

//! The control device, `/dev/lofictl`: the lofi ioctls.
//!
//! The node is mode 0644: anyone may open it for the queries; the commands
//! that change mappings need the file open for writing (EPERM otherwise).
//! See Documentation/userspace-api/lofi.rst for every command and error.

use crate::{
    device::{Device, DeviceConfig, LofiDisk, Phase, QUEUE_DEPTH},
    geometry,
    kext::{
        blk::{disk_is_ours, Disk, DiskConfig},
        file::{FileKind, KernelFile},
        misc::MiscHandler,
        module_ref::ModuleRef,
        workqueue::OwnedQueue,
    },
    registry::{self, Mapping, REGISTRY},
    uapi::{self, LofiIoctl},
};
use kernel::{fs::File, prelude::*, str::CString, sync::Arc};

/// The node's name under `/dev`.
pub(crate) const CONTROL_NAME: &CStr = c"lofictl";

/// The node's permission bits.
pub(crate) const CONTROL_MODE: u16 = 0o644;

/// Largest request, in sectors (1 MiB).
const MAX_REQUEST_SECTORS: u32 = 2048;

/// `O_RDONLY` and `O_ACCMODE` of include/uapi/asm-generic/fcntl.h.
const O_RDONLY: u32 = 0;
const O_ACCMODE: u32 = 3;

/// Serves the control device's ioctls.
pub(crate) struct Control {
    /// Where removals after a last close run; destroyed (and so drained) at
    /// module unload, after every mapping is gone.
    removals: Arc<OwnedQueue>,
}

impl Control {
    /// The control device's handler.
    pub(crate) fn new() -> Result<Self> {
        let removals =
            OwnedQueue::new(c"lofi_remove", 0, crate::kext::workqueue::flags::UNBOUND, 1)?;
        Ok(Self {
            removals: Arc::new(removals, GFP_KERNEL)?,
        })
    }
}

/// Whether a command changes mappings (and so needs a writable open).
fn changes_mappings(cmd: u32) -> bool {
    matches!(
        cmd,
        uapi::LOFI_MAP_FILE
            | uapi::LOFI_MAP_FILE_MINOR
            | uapi::LOFI_UNMAP_FILE
            | uapi::LOFI_UNMAP_FILE_MINOR
    )
}

impl MiscHandler for Control {
    type OwnerModule = crate::LofiModule;

    fn ioctl(&self, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            uapi::LOFI_MAP_FILE
            | uapi::LOFI_MAP_FILE_MINOR
            | uapi::LOFI_UNMAP_FILE
            | uapi::LOFI_UNMAP_FILE_MINOR
            | uapi::LOFI_GET_FILENAME
            | uapi::LOFI_GET_MINOR
            | uapi::LOFI_GET_MAXMINOR => {}
            // Reserved for compressed images, which are not supported yet.
            uapi::LOFI_CHECK_COMPRESSED => return Err(ENOTTY),
            _ => return Err(ENOTTY),
        }
        if changes_mappings(cmd) && file.flags() & O_ACCMODE == O_RDONLY {
            return Err(EPERM);
        }
        let mut li = LofiIoctl::read_from(arg)?;
        if li.li_reserved.iter().any(|&w| w != 0) {
            return Err(EINVAL);
        }
        match cmd {
            uapi::LOFI_MAP_FILE => self.map(&mut li, arg, None),
            uapi::LOFI_MAP_FILE_MINOR => {
                let n = li.li_minor;
                self.map(&mut li, arg, Some(n))
            }
            uapi::LOFI_UNMAP_FILE => unmap(&mut li, arg, true),
            uapi::LOFI_UNMAP_FILE_MINOR => unmap(&mut li, arg, false),
            uapi::LOFI_GET_FILENAME => get_filename(&mut li, arg),
            uapi::LOFI_GET_MINOR => get_minor(&mut li, arg),
            _ => {
                li.li_minor = REGISTRY.lock().max();
                li.write_to(arg)?;
                Ok(0)
            }
        }
    }
}

/// The validated backing file path of a request.
fn request_path(li: &LofiIoctl) -> Result<&CStr> {
    let path = uapi::c_string(&li.li_filename).ok_or(EINVAL)?;
    if path.to_bytes().first() != Some(&b'/') {
        return Err(EINVAL);
    }
    Ok(path)
}

/// Opens the backing file: read-write unless asked for read-only, falling
/// back to read-only when writing is not permitted. Only regular files and
/// block devices are opened at all (no device side effects, no FIFO waits).
fn open_backing(path: &CStr, read_only: bool) -> Result<KernelFile> {
    if KernelFile::open_path(path)?.kind() == FileKind::Other {
        return Err(EINVAL);
    }
    let mut file = match KernelFile::open_data(path, !read_only) {
        Err(e) if !read_only && (e == EACCES || e == EPERM || e == EROFS) => {
            KernelFile::open_data(path, false)?
        }
        other => other?,
    };
    // The path may have been replaced since the look: judge the open file.
    if file.kind() == FileKind::Other {
        return Err(EINVAL);
    }
    file.clear_nonblock();
    if let Some(disk) = file.block_disk() {
        // SAFETY: `block_disk` returns the valid disk of the open device.
        if unsafe { disk_is_ours::<LofiDisk>(disk) } {
            return Err(EINVAL);
        }
    }
    Ok(file)
}

/// Fills the output fields of a request for mapping `n`.
fn describe(li: &mut LofiIoctl, n: u32, read_only: bool) -> Result {
    li.li_minor = n;
    li.li_readonly = u32::from(read_only);
    let path = CString::try_from_fmt(fmt!("/dev/lofi/{n}"))?;
    uapi::set_c_string(&mut li.li_devpath, path.to_bytes());
    Ok(())
}

impl Control {
    fn map(&self, li: &mut LofiIoctl, arg: usize, requested: Option<u32>) -> Result<isize> {
        let path = request_path(li)?;
        if li.li_algorithm[0] != 0 {
            return Err(EINVAL);
        }
        match requested {
            Some(0) => return Err(EINVAL),
            Some(n) if n > REGISTRY.lock().max() => return Err(ERANGE),
            _ => {}
        }
        let file = open_backing(path, li.li_readonly != 0)?;
        let capacity = geometry::capacity_sectors(file.size())?;
        let read_only = !file.writable();
        let identity = file.identity();
        let mut filename = KVec::with_capacity(path.to_bytes().len(), GFP_KERNEL)?;
        filename.extend_from_slice(path.to_bytes(), GFP_KERNEL)?;

        let n = REGISTRY.lock().reserve(requested, identity, read_only)?;
        match self.build(n, file, capacity, read_only, identity, filename, li, arg) {
            Ok(mapping) => {
                REGISTRY.lock().install(n, mapping);
                Ok(n as isize)
            }
            Err(e) => {
                REGISTRY.lock().release(n);
                Err(e)
            }
        }
    }

    /// Builds and adds the disk of mapping `n`; copies the result out
    /// before the disk becomes visible, so that a bad pointer leaves
    /// nothing behind.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        n: u32,
        file: KernelFile,
        capacity: u64,
        read_only: bool,
        identity: usize,
        filename: KVec<u8>,
        li: &mut LofiIoctl,
        arg: usize,
    ) -> Result<KBox<Mapping>> {
        let device = Device::new(DeviceConfig {
            number: n,
            capacity,
            read_only,
            identity,
            filename,
            file,
            removals: self.removals.clone(),
            module_ref: ModuleRef::get::<crate::LofiModule>()?,
        })?;
        let name = CString::try_from_fmt(fmt!("lofi{n}"))?;
        let config = DiskConfig {
            name: &name,
            capacity_sectors: capacity,
            read_only,
            write_cache: !read_only,
            max_hw_sectors: MAX_REQUEST_SECTORS,
            queue_depth: QUEUE_DEPTH,
        };
        // SAFETY: The device is kept alive by the mapping, which owns the
        // disk and drops it first.
        let disk = unsafe { Disk::<LofiDisk>::new(&config, Arc::as_ptr(&device)) }?;
        let mut mapping = KBox::new(Mapping { disk, device }, GFP_KERNEL)?;
        describe(li, n, read_only)?;
        li.write_to(arg)?;
        mapping.disk.add()?;
        Ok(mapping)
    }
}

/// `LOFI_UNMAP_FILE` (by name) and `LOFI_UNMAP_FILE_MINOR` (by number).
fn unmap(li: &mut LofiIoctl, arg: usize, by_name: bool) -> Result<isize> {
    let identity = if by_name {
        Some(path_identity(request_path(li)?))
    } else {
        None
    };
    let (n, mapping) = {
        let mut reg = REGISTRY.lock();
        let n = if let Some(identity) = identity {
            find_by_name(&reg, request_path(li)?, identity).ok_or(ENOENT)?
        } else {
            li.li_minor
        };
        let dev = reg.mapped(n).map(|m| m.device.clone()).ok_or(ENXIO)?;
        let mut st = dev.state.lock();
        if st.opens == 0 {
            st.phase = Phase::Removing;
            drop(st);
            (n, reg.take(n))
        } else if li.li_force != 0 {
            st.phase = Phase::Closing;
            drop(st);
            drop(reg);
            // Drain and close outside every lock.
            dev.finish_forced_unmap();
            (n, None)
        } else if li.li_cleanup != 0 {
            st.phase = Phase::DetachAtClose;
            (n, None)
        } else {
            return Err(EBUSY);
        }
    };
    if let Some(mapping) = mapping {
        registry::destroy(n, mapping);
    }
    li.li_minor = n;
    li.write_to(arg)?;
    Ok(0)
}

/// The identity of the file `path` names now, if any (looked up before
/// taking the table lock: a lookup may sleep for long).
fn path_identity(path: &CStr) -> Option<usize> {
    KernelFile::open_path(path).ok().map(|f| f.identity())
}

/// The number of the live mapping whose file is `path`: by the name given
/// at map time, else by `identity`, that of the file `path` names now.
fn find_by_name(reg: &registry::Registry, path: &CStr, identity: Option<usize>) -> Option<u32> {
    if let Some(m) = reg
        .live()
        .find(|m| m.device.filename.as_slice() == path.to_bytes())
    {
        return Some(m.device.number);
    }
    let identity = identity?;
    reg.live()
        .find(|m| m.device.identity == identity)
        .map(|m| m.device.number)
}

fn get_filename(li: &mut LofiIoctl, arg: usize) -> Result<isize> {
    let n = li.li_minor;
    if n == 0 {
        return Err(EINVAL);
    }
    {
        let reg = REGISTRY.lock();
        let m = reg.mapped(n).ok_or(ENXIO)?;
        uapi::set_c_string(&mut li.li_filename, &m.device.filename);
        describe(li, n, m.device.read_only)?;
    }
    li.write_to(arg)?;
    Ok(0)
}

fn get_minor(li: &mut LofiIoctl, arg: usize) -> Result<isize> {
    {
        let path = uapi::c_string(&li.li_filename).ok_or(EINVAL)?;
        let identity = path_identity(path);
        let reg = REGISTRY.lock();
        let n = find_by_name(&reg, path, identity).ok_or(ENOENT)?;
        let read_only = reg.mapped(n).map(|m| m.device.read_only).unwrap_or(false);
        describe(li, n, read_only)?;
    }
    li.write_to(arg)?;
    Ok(0)
}
