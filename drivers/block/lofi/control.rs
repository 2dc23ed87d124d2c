// SPDX-License-Identifier: GPL-2.0

//! The control device, `/dev/lofictl`: the lofi ioctls.
//!
//! The node is mode 0644: anyone may open it for the queries; the commands
//! that change mappings need the file open for writing (EPERM otherwise).
//! See Documentation/userspace-api/lofi.rst for every command and error.

use crate::{
    backing::{open_backing, path_identity},
    device::{Device, DeviceConfig, LofiDisk, QUEUE_DEPTH},
    geometry,
    kext::{
        blk::{Disk, DiskConfig},
        file::{Identity, KernelFile},
        misc::MiscHandler,
        module_ref::ModuleRef,
        workqueue::{flags, OwnedQueue},
    },
    lifecycle,
    registry::{new_table, InstallNodes, Table},
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
    /// Where devices' teardown work runs: any number of items at once, so
    /// that one stuck device holds up no other. Destroyed (and so drained)
    /// at module unload, after every device is gone.
    teardown_queue: Arc<OwnedQueue>,
    /// The mapping table, for numbers 1 ..= `lofi_max_files`. Every device
    /// holds a reference too, so it goes when the module and the last
    /// device are gone.
    table: Arc<Table<Device>>,
}

impl Control {
    /// The control device's handler, for numbers 1 ..= `max`.
    pub(crate) fn new(max: u32) -> Result<Self> {
        // max_active 0: the workqueue default (many at once).
        let teardown_queue = OwnedQueue::new(c"lofi_teardown", 0, flags::UNBOUND, 0)?;
        Ok(Self {
            teardown_queue: Arc::new(teardown_queue, GFP_KERNEL)?,
            table: new_table(max)?,
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
            // Reserved (compressed images, capacity changes): not yet.
            uapi::LOFI_CHECK_COMPRESSED | uapi::LOFI_SET_CAPACITY => return Err(ENOTTY),
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
            uapi::LOFI_UNMAP_FILE => self.unmap(&mut li, arg, true),
            uapi::LOFI_UNMAP_FILE_MINOR => self.unmap(&mut li, arg, false),
            uapi::LOFI_GET_FILENAME => self.get_filename(&mut li, arg),
            uapi::LOFI_GET_MINOR => self.get_minor(&mut li, arg),
            _ => {
                li.li_minor = self.table.lock().max();
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

/// Checks the map options against what this driver implements: unknown
/// flags, a block size other than the default, an offset or a size limit
/// are `EINVAL` (see the extension rules in include/uapi/linux/lofi.h),
/// and so is an algorithm name (compressed images are not supported yet).
fn check_map_options(li: &LofiIoctl) -> Result {
    if li.li_flags & !uapi::LOFI_FLAGS_KNOWN != 0
        || !matches!(li.li_block_size, 0 | uapi::LOFI_BLOCK_SIZE_DEFAULT)
        || li.li_offset != 0
        || li.li_sizelimit != 0
        || li.li_algorithm[0] != 0
    {
        return Err(EINVAL);
    }
    Ok(())
}

/// Fills the output fields of a request for the device `dev`.
fn describe(li: &mut LofiIoctl, dev: &Device) -> Result {
    li.li_minor = dev.number;
    li.li_readonly = u32::from(dev.read_only);
    li.li_flags = 0;
    li.li_block_size = uapi::LOFI_BLOCK_SIZE_DEFAULT;
    li.li_offset = 0;
    li.li_sizelimit = 0;
    let path = CString::try_from_fmt(fmt!("/dev/lofi/{}", dev.number))?;
    uapi::set_c_string(&mut li.li_devpath, path.to_bytes());
    Ok(())
}

impl Control {
    fn map(&self, li: &mut LofiIoctl, arg: usize, requested: Option<u32>) -> Result<isize> {
        check_map_options(li)?;
        let path = request_path(li)?;
        let max = self.table.lock().max();
        match requested {
            Some(0) => return Err(EINVAL),
            Some(n) if n > max => return Err(ERANGE),
            _ => {}
        }
        let file = open_backing(&self.table, path, li.li_readonly != 0)?;
        let capacity = geometry::capacity_sectors(file.size()?)?;
        let read_only = !file.writable();
        let identity = file.identity();
        let mut filename = KVec::with_capacity(path.to_bytes().len(), GFP_KERNEL)?;
        filename.extend_from_slice(path.to_bytes(), GFP_KERNEL)?;

        let nodes = InstallNodes::new()?;
        let n = self.table.lock().reserve(requested, identity, read_only)?;
        match self.build(n, file, capacity, read_only, identity, filename, li, arg) {
            Ok((dev, devt)) => {
                self.table.lock().install(n, dev, devt, nodes);
                Ok(n as isize)
            }
            Err(e) => {
                self.table.lock().cancel(n, identity);
                Err(e)
            }
        }
    }

    /// Builds the device of mapping `n` and adds its disk; copies the
    /// result out before the disk becomes visible, so that a bad pointer
    /// leaves nothing behind. Returns the device and its disk's number.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        n: u32,
        file: KernelFile,
        capacity: u64,
        read_only: bool,
        identity: Identity,
        filename: KVec<u8>,
        li: &mut LofiIoctl,
        arg: usize,
    ) -> Result<(Arc<Device>, u32)> {
        // Flushes are sent only where they can work (as `loop` does): a
        // read-only mapping has nothing to flush, and a file without
        // `fsync` could only fail them.
        let write_cache = !read_only && file.can_sync();
        let dev = Device::new(DeviceConfig {
            number: n,
            capacity,
            read_only,
            identity,
            filename,
            file,
            teardown_queue: self.teardown_queue.clone(),
            table: self.table.clone(),
            module_ref: ModuleRef::get::<crate::LofiModule>()?,
        })?;
        let name = CString::try_from_fmt(fmt!("lofi{n}"))?;
        let config = DiskConfig {
            name: &name,
            capacity_sectors: capacity,
            read_only,
            write_cache,
            max_hw_sectors: MAX_REQUEST_SECTORS,
            queue_depth: QUEUE_DEPTH,
        };
        let disk = Disk::<LofiDisk>::new(&config, dev.clone())?;
        describe(li, &dev)?;
        li.write_to(arg)?;
        let devt = dev.add_disk(disk)?;
        Ok((dev, devt))
    }
}

impl Control {
    /// `LOFI_UNMAP_FILE` (by name) and `LOFI_UNMAP_FILE_MINOR` (by number).
    fn unmap(&self, li: &mut LofiIoctl, arg: usize, by_name: bool) -> Result<isize> {
        let dev = if by_name {
            let path = request_path(li)?;
            let identity = path_identity(path);
            let mut table = self.table.lock();
            let n = table
                .find_by_name(path.to_bytes(), identity)
                .ok_or(ENOENT)?;
            table.mapped(n).cloned().ok_or(ENOENT)?
        } else {
            self.table
                .lock()
                .mapped(li.li_minor)
                .cloned()
                .ok_or(ENXIO)?
        };
        let n = dev.number;
        lifecycle::unmap(dev, li.li_force != 0, li.li_cleanup != 0).map_err(|e| {
            // A racing unmap got there first, after our lookup: by name,
            // that is "the file is not mapped", as if we had come second.
            if by_name && e == ENXIO {
                ENOENT
            } else {
                e
            }
        })?;
        li.li_minor = n;
        li.write_to(arg)?;
        Ok(0)
    }

    fn get_filename(&self, li: &mut LofiIoctl, arg: usize) -> Result<isize> {
        let n = li.li_minor;
        if n == 0 {
            return Err(EINVAL);
        }
        let dev = self.table.lock().mapped(n).cloned().ok_or(ENXIO)?;
        uapi::set_c_string(&mut li.li_filename, &dev.filename);
        describe(li, &dev)?;
        li.write_to(arg)?;
        Ok(0)
    }

    fn get_minor(&self, li: &mut LofiIoctl, arg: usize) -> Result<isize> {
        let path = uapi::c_string(&li.li_filename).ok_or(EINVAL)?;
        let identity = path_identity(path);
        let dev = {
            let mut table = self.table.lock();
            let n = table
                .find_by_name(path.to_bytes(), identity)
                .ok_or(ENOENT)?;
            table.mapped(n).cloned().ok_or(ENOENT)?
        };
        describe(li, &dev)?;
        li.write_to(arg)?;
        Ok(0)
    }
}
