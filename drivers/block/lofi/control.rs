// SPDX-License-Identifier: GPL-2.0

//! The control device, `/dev/lofictl`: the lofi ioctls.
//!
//! The node is mode 0644: anyone may open it for the queries; the commands
//! that change mappings need the file open for writing (EPERM otherwise).
//! See Documentation/userspace-api/lofi.rst for every command and error.

use crate::{
    backing::{open_backing, path_identity},
    compressed::{
        self,
        format::{Algorithm, HEADER_LEN},
        CompressedImage,
    },
    device::{Device, DeviceConfig, LofiDisk, QUEUE_DEPTH, SYSFS_ATTRIBUTES, SYSFS_DIR},
    geometry,
    kext::{
        blk::{hw_queues_for_cpus, Disk, DiskConfig, ZeroingLimits},
        disk_attrs::DiskAttributes,
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
    /// The sysfs attributes of every disk (`/sys/block/lofiN/lofi/`); each
    /// disk holds a reference while its files exist.
    attributes: Arc<DiskAttributes<LofiDisk>>,
}

impl Control {
    /// The control device's handler, for numbers 1 ..= `max`.
    pub(crate) fn new(max: u32) -> Result<Self> {
        // max_active 0: the workqueue default (many at once).
        let teardown_queue = OwnedQueue::new(c"lofi_teardown", 0, flags::UNBOUND, 0)?;
        Ok(Self {
            teardown_queue: Arc::new(teardown_queue, GFP_KERNEL)?,
            table: new_table(max)?,
            attributes: Arc::new(
                DiskAttributes::new(SYSFS_DIR, SYSFS_ATTRIBUTES)?,
                GFP_KERNEL,
            )?,
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
            | uapi::LOFI_SET_CAPACITY
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
            | uapi::LOFI_GET_MAXMINOR
            | uapi::LOFI_CHECK_COMPRESSED
            | uapi::LOFI_SET_CAPACITY => {}
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
            // illumos: the mapping of li_filename, with its algorithm in
            // li_algorithm; every query fills that in here.
            uapi::LOFI_GET_MINOR | uapi::LOFI_CHECK_COMPRESSED => self.get_minor(&mut li, arg),
            uapi::LOFI_SET_CAPACITY => self.set_capacity(&mut li, arg),
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

/// The map options of a request, as far as they can be checked without
/// the backing file.
struct MapOptions {
    /// The logical block size asked for, if any.
    block_size: Option<u32>,
    /// The mapped region: where it starts in the file, and its length
    /// (0: to the end).
    offset: u64,
    sizelimit: u64,
}

impl MapOptions {
    /// The block size the region is measured in: the one asked for, or
    /// the default.
    fn region_block(&self) -> u32 {
        self.block_size.unwrap_or(uapi::LOFI_BLOCK_SIZE_DEFAULT)
    }
}

/// Checks the map fields against what this driver implements, in the
/// order of the documentation's tables: unknown flags (any but
/// `LOFI_FLAG_DIRECT_IO` and `LOFI_FLAG_LABELED`), a block size lofi cannot present, an offset that
/// is no multiple of 512 or a size limit that is no multiple of the block
/// size are `EINVAL` (see the extension rules in
/// include/uapi/linux/lofi.h). The region is checked against the file once
/// it is open ([`geometry::region_sectors`]).
fn check_map_options(li: &LofiIoctl) -> Result<MapOptions> {
    if li.li_flags & !uapi::LOFI_FLAGS_KNOWN != 0 {
        return Err(EINVAL);
    }
    let block_size = match li.li_block_size {
        0 => None,
        size if geometry::valid_block_size(size) => Some(size),
        _ => return Err(EINVAL),
    };
    let options = MapOptions {
        block_size,
        offset: li.li_offset,
        sizelimit: li.li_sizelimit,
    };
    // `checked_rem`: the block size is never 0, but without a panic path
    // the compiler need not see that.
    if options.offset % geometry::SECTOR_SIZE != 0
        || options
            .sizelimit
            .checked_rem(u64::from(options.region_block()))
            != Some(0)
    {
        return Err(EINVAL);
    }
    Ok(options)
}

/// Fills the output fields of a request for the device `dev`.
fn describe(li: &mut LofiIoctl, dev: &Device) -> Result {
    li.li_minor = dev.number;
    li.li_readonly = u32::from(dev.read_only);
    li.li_flags = 0;
    if dev.direct {
        li.li_flags |= uapi::LOFI_FLAG_DIRECT_IO;
    }
    if dev.labeled {
        li.li_flags |= uapi::LOFI_FLAG_LABELED;
    }
    li.li_block_size = dev.logical_block_size;
    li.li_offset = dev.offset;
    li.li_sizelimit = dev.sizelimit();
    uapi::set_c_string(&mut li.li_algorithm, dev.algorithm());
    // The node devtmpfs makes for the disk, named as the disk is.
    let path = CString::try_from_fmt(fmt!("/dev/lofi{}", dev.number))?;
    uapi::set_c_string(&mut li.li_devpath, path.to_bytes());
    Ok(())
}

/// The backing object of a new mapping, as opened.
struct Backing {
    file: KernelFile,
    /// Its compressed image, if it is one.
    compressed: Option<Pin<KBox<CompressedImage>>>,
    identity: Identity,
    /// The path it was mapped by (no NUL).
    filename: KVec<u8>,
}

/// The algorithm of `file` if it is a compressed image (its header names
/// one lofi reads: see [`compressed::detect`]). A file too short for the
/// header is none.
fn compressed_algorithm(file: &KernelFile) -> Result<Option<Algorithm>> {
    let mut head = [0u8; HEADER_LEN];
    if file.size()? < HEADER_LEN as i64 {
        return Ok(None);
    }
    file.read_exact_at(0, &mut head)?;
    Ok(compressed::detect(&head))
}

/// The mapped image of the compressed file `file`: the whole file, so
/// an offset or a size limit is `EINVAL`, as is an image whose size is
/// no multiple of the block size asked for, or a header or index that is
/// not sound (see [`CompressedImage::load`]).
fn compressed_image(
    file: &KernelFile,
    algorithm: Algorithm,
    options: &MapOptions,
) -> Result<Pin<KBox<CompressedImage>>> {
    if options.offset != 0 || options.sizelimit != 0 {
        return Err(EINVAL);
    }
    let image = CompressedImage::load(file, algorithm)?;
    if image.size().checked_rem(u64::from(options.region_block())) != Some(0) {
        return Err(EINVAL);
    }
    Ok(image)
}

/// The part of the backing file a new mapping presents.
#[derive(Clone, Copy, Debug)]
struct Region {
    /// Where it starts in the file, in bytes.
    offset: u64,
    /// The size limit asked for (0: to the end of the file).
    sizelimit: u64,
    /// The block size the region is measured in.
    block: u32,
    /// The disk's capacity, in sectors.
    sectors: u64,
    /// The region is a partitioned disk (illumos "labeled").
    labeled: bool,
}

/// How a mapping's I/O reaches its backing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IoMode {
    /// Direct, asynchronous I/O.
    direct: bool,
    /// The disk's logical block size.
    logical_block_size: u32,
    /// Memory alignment mask of the disk's buffers.
    dma_alignment: u32,
}

impl IoMode {
    /// Buffered I/O, with `logical_block_size` bytes per block.
    fn buffered(logical_block_size: u32) -> Self {
        Self {
            direct: false,
            logical_block_size,
            dma_alignment: 511,
        }
    }

    /// The capacity in 512-byte sectors of a mapping of `sectors`: whole
    /// logical blocks only.
    fn capacity(&self, sectors: u64) -> u64 {
        geometry::whole_blocks(sectors, self.logical_block_size)
    }
}

/// The direct I/O mode for the region of `file` that `options` name,
/// `sectors` long, or why it cannot have one: the file must support
/// `O_DIRECT`, with an offset alignment lofi can present as a logical block
/// size (512 .. 4096 bytes) no larger than the one asked for, the region
/// must start on that alignment, and hold at least one block.
fn direct_io_mode(
    file: &KernelFile,
    options: &MapOptions,
    sectors: u64,
) -> core::result::Result<IoMode, &'static str> {
    let align = file
        .dio_align()
        .ok_or("the file system does not support it")?;
    let needed = align.offset.max(uapi::LOFI_BLOCK_SIZE_DEFAULT);
    if !geometry::valid_block_size(needed) {
        return Err("its alignment is not a block size lofi can present");
    }
    let lbs = match options.block_size {
        Some(asked) if asked < needed => {
            return Err("its alignment is larger than the block size asked for");
        }
        Some(asked) => asked,
        None => needed,
    };
    if options.offset.checked_rem(u64::from(needed)) != Some(0) {
        return Err("the offset is not a multiple of its alignment");
    }
    let mode = IoMode {
        direct: true,
        logical_block_size: lbs,
        // Buffers stay sector aligned at least; page alignment at most.
        dma_alignment: align.memory.clamp(512, 4096) - 1,
    };
    if mode.capacity(sectors) == 0 {
        return Err("the region is smaller than one block");
    }
    Ok(mode)
}

impl Control {
    fn map(&self, li: &mut LofiIoctl, arg: usize, requested: Option<u32>) -> Result<isize> {
        let options = check_map_options(li)?;
        let path = request_path(li)?;
        // An output field: the header names the algorithm.
        if li.li_algorithm[0] != 0 {
            return Err(EINVAL);
        }
        let max = self.table.lock().max();
        match requested {
            Some(0) => return Err(EINVAL),
            Some(n) if n > max => return Err(ERANGE),
            _ => {}
        }
        let file = open_backing(&self.table, path, li.li_readonly != 0)?;
        let compressed = match compressed_algorithm(&file)? {
            Some(algorithm) => Some(compressed_image(&file, algorithm, &options)?),
            None => None,
        };
        let capacity = match &compressed {
            Some(image) => image.size() / geometry::SECTOR_SIZE,
            None => geometry::region_sectors(
                file.size()?,
                options.offset,
                options.sizelimit,
                options.region_block(),
            )?,
        };
        let buffered = IoMode::buffered(options.region_block());
        let io = if li.li_flags & uapi::LOFI_FLAG_DIRECT_IO != 0 && compressed.is_some() {
            pr_info!(
                "{}: a compressed image is read through the page cache; no direct I/O\n",
                path.to_str().unwrap_or("backing file")
            );
            buffered
        } else if li.li_flags & uapi::LOFI_FLAG_DIRECT_IO != 0 {
            direct_io_mode(&file, &options, capacity).unwrap_or_else(|why| {
                pr_info!(
                    "{}: no direct I/O ({why}); using buffered I/O\n",
                    path.to_str().unwrap_or("backing file")
                );
                buffered
            })
        } else {
            buffered
        };
        let capacity = io.capacity(capacity);
        // A compressed image is never written.
        let read_only = !file.writable() || compressed.is_some();
        let identity = file.identity();
        let labeled = li.li_flags & uapi::LOFI_FLAG_LABELED != 0;
        let mut filename = KVec::with_capacity(path.to_bytes().len(), GFP_KERNEL)?;
        filename.extend_from_slice(path.to_bytes(), GFP_KERNEL)?;

        let nodes = InstallNodes::new()?;
        let n = self.table.lock().reserve(requested, identity, read_only)?;
        let region = Region {
            offset: options.offset,
            sizelimit: options.sizelimit,
            block: options.region_block(),
            sectors: capacity,
            labeled,
        };
        let backing = Backing {
            file,
            compressed,
            identity,
            filename,
        };
        match self.build(n, backing, region, io, read_only, li, arg) {
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
        backing: Backing,
        region: Region,
        io: IoMode,
        read_only: bool,
        li: &mut LofiIoctl,
        arg: usize,
    ) -> Result<(Arc<Device>, u32)> {
        let Backing {
            file,
            compressed,
            identity,
            filename,
        } = backing;
        // Flushes are sent only where they can work (as `loop` does): a
        // read-only mapping has nothing to flush, and a file without
        // `fsync` could only fail them.
        let write_cache = !read_only && file.can_sync();
        // Discard and write zeroes where the file can deallocate or zero
        // ranges (switched off by the device if it turns out it cannot),
        // and every range of the disk, whole blocks from the region's
        // start, is one it takes.
        let zeroing = match file.zeroing() {
            Some(z)
                if !read_only
                    && region.offset.checked_rem(u64::from(z.alignment.max(1))) == Some(0)
                    && io.logical_block_size.checked_rem(z.alignment.max(1)) == Some(0) =>
            {
                ZeroingLimits {
                    max_discard_sectors: z.max_sectors,
                    max_write_zeroes_sectors: z.max_sectors,
                    discard_granularity: z.granularity,
                }
            }
            _ => ZeroingLimits::default(),
        };
        let hw_queues = hw_queues_for_cpus();
        let dev = Device::new(DeviceConfig {
            number: n,
            capacity: region.sectors,
            offset: region.offset,
            sizelimit: region.sizelimit,
            region_block: region.block,
            labeled: region.labeled,
            read_only,
            identity,
            filename,
            file,
            direct: io.direct,
            compressed,
            logical_block_size: io.logical_block_size,
            hw_queues,
            teardown_queue: self.teardown_queue.clone(),
            table: self.table.clone(),
            module_ref: ModuleRef::get::<crate::LofiModule>()?,
        })?;
        let name = CString::try_from_fmt(fmt!("lofi{n}"))?;
        let config = DiskConfig {
            name: &name,
            capacity_sectors: region.sectors,
            read_only,
            partitions: region.labeled,
            write_cache,
            logical_block_size: io.logical_block_size,
            dma_alignment: io.dma_alignment,
            zeroing,
            max_hw_sectors: MAX_REQUEST_SECTORS,
            hw_queues,
            queue_depth: QUEUE_DEPTH,
        };
        let disk = Disk::<LofiDisk>::new(&config, dev.clone())?;
        describe(li, &dev)?;
        li.write_to(arg)?;
        let devt = dev.add_disk(disk, self.attributes.clone())?;
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

    /// `LOFI_SET_CAPACITY`: mapping `li_minor` measures its backing file
    /// again and takes the size limit `li_sizelimit` (see
    /// [`Device::resize`]); the result is described as by
    /// `LOFI_GET_FILENAME`. A read-only mapping is `EROFS`.
    fn set_capacity(&self, li: &mut LofiIoctl, arg: usize) -> Result<isize> {
        let n = li.li_minor;
        if n == 0 {
            return Err(EINVAL);
        }
        let dev = self.table.lock().mapped(n).cloned().ok_or(ENXIO)?;
        // A read-only mapping presents a fixed image, its size included:
        // to see a file that changed, it is mapped again.
        if dev.read_only {
            return Err(EROFS);
        }
        let sizelimit = li.li_sizelimit;
        if sizelimit.checked_rem(u64::from(dev.region_block())) != Some(0) {
            return Err(EINVAL);
        }
        dev.resize(sizelimit)?;
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

#[kunit_tests(lofi_io_mode)]
mod tests {
    use super::IoMode;

    #[test]
    fn buffered_mappings_keep_every_sector() {
        assert_eq!(IoMode::buffered(512).capacity(1), 1);
        assert_eq!(IoMode::buffered(512).capacity(12345), 12345);
        // Regions are whole blocks already (checked at map time).
        assert_eq!(IoMode::buffered(4096).capacity(8 * 3), 8 * 3);
    }

    #[test]
    fn direct_mappings_keep_whole_blocks_only() {
        let mode = IoMode {
            direct: true,
            logical_block_size: 4096,
            dma_alignment: 511,
        };
        assert_eq!(mode.capacity(7), 0);
        assert_eq!(mode.capacity(8), 8);
        assert_eq!(mode.capacity(8 * 1000 + 7), 8 * 1000);
        let mode = IoMode {
            logical_block_size: 1024,
            ..mode
        };
        assert_eq!(mode.capacity(5), 4);
    }
}
