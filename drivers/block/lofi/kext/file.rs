// SPDX-License-Identifier: GPL-2.0

//! Files opened by the kernel on behalf of a caller, for block I/O on them.
//!
//! `kernel::fs::File` wraps files that user space handed in; it cannot look
//! up a path, open what was looked up, read or write at an offset into
//! pages, or sync. This module does that:
//!
//! - [`PathFile`]: a path resolved once with `O_PATH`, which opens nothing
//!   (no device side effects, no FIFO waits), so that its object can be
//!   judged before anything is opened;
//! - [`KernelFile`]: that very object opened for data (`dentry_open()` on
//!   the looked-up path, with the checks `open(2)` makes), with what its
//!   I/O needs to know (direct-I/O alignment, non-blocking support,
//!   `fallocate`), synced with `vfs_fsync()`, and closed either lazily
//!   (`fput()`, on drop) or at once ([`KernelFile::close_sync`]). Its reads
//!   and writes are `kext::file_io`'s.

use core::{marker::PhantomData, ptr::NonNull};
use kernel::{bindings, error::from_err_ptr, ffi::c_ulong, prelude::*};

/// What kind of object a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A regular file.
    Regular,
    /// A block device node.
    Block,
    /// Anything else: directory, FIFO, socket, char device, ...
    Other,
}

/// The identity of a backing object: equal for every path to it.
///
/// A regular file is its inode (two links or two bind mounts of one file
/// are one file); a block device is its device number, because every node
/// of a device, and an `O_PATH` lookup of one, has an inode of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Identity {
    /// The address of a regular file's inode: valid as a key while a file
    /// of that inode is open (the inode cannot be freed and reused).
    Inode(usize),
    /// A block device's `dev_t`.
    Device(u32),
}

/// `FMODE_WRITE` of include/linux/fs.h (a cast macro the bindings lack).
const FMODE_WRITE: u32 = 1 << 1;
/// `FMODE_CAN_ODIRECT` of include/linux/fs.h: the file can do `O_DIRECT`.
const FMODE_CAN_ODIRECT: u32 = 1 << 22;
/// `FMODE_NOWAIT` of include/linux/fs.h: `IOCB_NOWAIT` is honoured.
const FMODE_NOWAIT: u32 = 1 << 27;
/// `FOP_BUFFER_WASYNC` of include/linux/fs.h: buffered writes honour
/// `IOCB_NOWAIT`.
const FOP_BUFFER_WASYNC: u32 = 1 << 1;
/// `FALLOC_FL_KEEP_SIZE`, `FALLOC_FL_PUNCH_HOLE` and `FALLOC_FL_ZERO_RANGE`
/// of include/uapi/linux/falloc.h.
pub(crate) const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
/// See [`FALLOC_FL_KEEP_SIZE`].
pub(crate) const FALLOC_FL_PUNCH_HOLE: i32 = 0x02;
/// See [`FALLOC_FL_KEEP_SIZE`].
pub(crate) const FALLOC_FL_ZERO_RANGE: i32 = 0x10;

/// The direct-I/O alignment of a file (`STATX_DIOALIGN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DioAlign {
    /// Alignment of file offsets and lengths, in bytes.
    pub(crate) offset: u32,
    /// Alignment of memory buffers, in bytes.
    pub(crate) memory: u32,
}

/// How a file deallocates or zeroes ranges with `fallocate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileZeroing {
    /// The unit that is actually freed, in bytes: the file system's block
    /// size, or a block device's physical block size.
    pub(crate) granularity: u32,
    /// The largest range, in sectors: a block device's write zeroes limit.
    pub(crate) max_sectors: u32,
    /// What the start and length of a range must be multiples of, in
    /// bytes: 1 for a regular file, a block device's logical block size
    /// (`blkdev_fallocate()` refuses anything else with `EINVAL`).
    pub(crate) alignment: u32,
}

/// `SEEK_END` of include/uapi/linux/fs.h.
const SEEK_END: i32 = 2;

/// One reference to a `struct file`.
///
/// # Invariants
///
/// `file` is a valid file on which this value holds one reference.
struct FileRef {
    file: NonNull<bindings::file>,
}

// SAFETY: A file reference may be used and dropped from any thread.
unsafe impl Send for FileRef {}
// SAFETY: The operations used through `&FileRef` are thread-safe in C.
unsafe impl Sync for FileRef {}

impl FileRef {
    /// Opens `path` with the current task's credentials; `flags` are
    /// `open(2)` flags, `O_LARGEFILE` is always added.
    fn open(path: &CStr, flags: u32) -> Result<Self> {
        // SAFETY: `path` is a valid NUL-terminated string; no mode (no
        // O_CREAT).
        let file = from_err_ptr(unsafe {
            bindings::filp_open(
                path.as_char_ptr(),
                (flags | bindings::O_LARGEFILE) as i32,
                0,
            )
        })?;
        // INVARIANT: `filp_open` returned a new reference.
        Ok(Self {
            file: NonNull::new(file).ok_or(ENOENT)?,
        })
    }

    fn raw(&self) -> *mut bindings::file {
        self.file.as_ptr()
    }

    /// The file's inode.
    fn inode(&self) -> *mut bindings::inode {
        // SAFETY: The file is valid; `f_inode` is set at open and constant.
        unsafe { (*self.raw()).f_inode }
    }

    fn kind(&self) -> FileKind {
        // SAFETY: The inode of an open file is valid while it is open.
        let mode = u32::from(unsafe { (*self.inode()).i_mode });
        match mode & bindings::S_IFMT {
            bindings::S_IFREG => FileKind::Regular,
            bindings::S_IFBLK => FileKind::Block,
            _ => FileKind::Other,
        }
    }

    fn identity(&self) -> Identity {
        match self.kind() {
            // SAFETY: As in `kind`; `i_rdev` of a device node is constant.
            FileKind::Block => Identity::Device(unsafe { (*self.inode()).i_rdev }),
            _ => Identity::Inode(self.inode() as usize),
        }
    }

    /// Gives up the reference without dropping it.
    fn into_raw(self) -> *mut bindings::file {
        let raw = self.raw();
        core::mem::forget(self);
        raw
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold one reference. `fput()`
        // defers the final close to the task's return to user space (or to
        // a kworker for kernel threads), so it may be called under locks.
        unsafe { bindings::fput(self.raw()) };
    }
}

/// A path resolved with `O_PATH`: the object is found but not opened.
pub(crate) struct PathFile(FileRef);

impl PathFile {
    /// Resolves `path` (following symbolic links) with the current task's
    /// credentials.
    pub(crate) fn lookup(path: &CStr) -> Result<Self> {
        FileRef::open(path, bindings::O_PATH).map(Self)
    }

    /// The kind of the object found.
    pub(crate) fn kind(&self) -> FileKind {
        self.0.kind()
    }

    /// The identity of the object found.
    pub(crate) fn identity(&self) -> Identity {
        self.0.identity()
    }

    /// Opens exactly the object that was looked up, read-write or
    /// read-only, making the checks `open(2)` makes on it (`may_open()` in
    /// fs/namei.c): permission with the credentials of the lookup, `nodev`
    /// mounts for devices, append-only files for writing; the read-only
    /// mount check, the LSM hook and the device's own open are part of
    /// `dentry_open()`. No second lookup is made, so the path cannot be
    /// swapped for another object in between.
    ///
    /// Only regular files and block devices are opened: `EINVAL` for
    /// anything else.
    pub(crate) fn open(&self, writable: bool) -> Result<KernelFile> {
        let kind = self.kind();
        if kind == FileKind::Other {
            return Err(EINVAL);
        }
        let raw = self.0.raw();
        let inode = self.0.inode();
        let access = bindings::MAY_READ | if writable { bindings::MAY_WRITE } else { 0 };
        // SAFETY: The O_PATH file is valid, and so are its path (mount and
        // dentry, pinned by the file), the mount's superblock and the
        // inode while it is open.
        unsafe {
            let mnt = (*raw).__bindgen_anon_1.f_path.mnt;
            if kind == FileKind::Block {
                let nodev_sb = (*(*mnt).mnt_sb).s_iflags & (bindings::SB_I_NODEV as c_ulong) != 0;
                let nodev_mnt = (*mnt).mnt_flags & bindings::mount_flags_MNT_NODEV as i32 != 0;
                if nodev_sb || nodev_mnt {
                    return Err(EACCES);
                }
            }
            kernel::error::to_result(bindings::inode_permission(
                (*mnt).mnt_idmap,
                inode,
                (bindings::MAY_OPEN | access) as i32,
            ))?;
            if writable && (*inode).i_flags & bindings::S_APPEND != 0 {
                return Err(EPERM);
            }
        }
        // Reads of the file for the disk do not touch its access time
        // where the caller may ask for that (`O_NOATIME`, as for backup
        // tools: the owner, or `CAP_FOWNER`). Besides sparing a metadata
        // write per read, this is what lets reads be tried in the
        // submitter's context: an access-time update may read the file
        // system's metadata synchronously, which must not happen there.
        // SAFETY: As above: the mount's idmap and the inode are valid.
        let noatime = unsafe {
            bindings::inode_owner_or_capable((*(*raw).__bindgen_anon_1.f_path.mnt).mnt_idmap, inode)
        };
        let flags = bindings::O_LARGEFILE
            | if noatime { bindings::O_NOATIME } else { 0 }
            | if writable {
                bindings::O_RDWR
            } else {
                bindings::O_RDONLY
            };
        // SAFETY: `f_path` of the valid O_PATH file is a valid path, and
        // its `f_cred` the valid credentials of the task that looked it up
        // (this one); `dentry_open` takes its own references.
        let file = from_err_ptr(unsafe {
            bindings::dentry_open(
                &raw const (*raw).__bindgen_anon_1.f_path,
                flags as i32,
                (*raw).f_cred,
            )
        })?;
        // INVARIANT: `dentry_open` returned a new reference.
        let file = KernelFile(FileRef {
            file: NonNull::new(file).ok_or(ENOENT)?,
        });
        // lofi calls the file's own methods for its I/O.
        // SAFETY: The file is valid; `f_op` is set at open and static.
        let (read_iter, write_iter) = unsafe {
            let fops = (*file.raw()).f_op;
            ((*fops).read_iter.is_some(), (*fops).write_iter.is_some())
        };
        if !read_iter || (writable && !write_iter) {
            return Err(EINVAL);
        }
        Ok(file)
    }
}

/// The disk of a block device that a [`KernelFile`] holds open.
///
/// # Invariants
///
/// `disk` is valid for `'a`: the file, borrowed for `'a`, holds the disk's
/// block device open.
pub(crate) struct OpenDisk<'a> {
    disk: NonNull<bindings::gendisk>,
    _file: PhantomData<&'a KernelFile>,
}

impl OpenDisk<'_> {
    /// The disk's operations table, to tell which driver drives it.
    pub(crate) fn fops(&self) -> *const bindings::block_device_operations {
        // SAFETY: `disk` is valid (type invariant); `fops` is set before a
        // disk is added and never changes.
        unsafe { (*self.disk.as_ptr()).fops }
    }
}

/// An open regular file or block device, for data access.
pub(crate) struct KernelFile(FileRef);

impl KernelFile {
    fn raw(&self) -> *mut bindings::file {
        self.0.raw()
    }

    /// The kind of the opened object.
    pub(crate) fn kind(&self) -> FileKind {
        self.0.kind()
    }

    /// The identity of the opened object (see [`Identity`]).
    pub(crate) fn identity(&self) -> Identity {
        self.0.identity()
    }

    /// The size of the data in bytes (a block device's capacity), as the
    /// file itself reports it: `llseek(SEEK_END)`, which reads `i_size`
    /// through `i_size_read()` (no torn reads on 32-bit) and lets network
    /// file systems revalidate. The file position it moves is never used:
    /// I/O passes explicit positions.
    pub(crate) fn size(&self) -> Result<i64> {
        // SAFETY: The file is valid and open.
        let size = unsafe { bindings::vfs_llseek(self.raw(), 0, SEEK_END) };
        if size < 0 {
            return Err(Error::from_errno(size as i32));
        }
        Ok(size)
    }

    /// Reads exactly `buf.len()` bytes at byte `pos` of the file, with
    /// `kernel_read()` (a short read is retried; the end of the file
    /// before the buffer is full is `EIO`). Sleeps.
    pub(crate) fn read_exact_at(&self, pos: u64, buf: &mut [u8]) -> Result {
        let mut pos = i64::try_from(pos).map_err(|_| EINVAL)?;
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            // SAFETY: The file is valid and open; `rest` is writable for
            // its length; `pos` is ours and advanced by the call.
            let n = unsafe {
                bindings::kernel_read(self.raw(), rest.as_mut_ptr().cast(), rest.len(), &mut pos)
            };
            match usize::try_from(n) {
                Ok(0) => return Err(EIO),
                Ok(n) => done += n.min(rest.len()),
                Err(_) => return Err(Error::from_errno(n as i32)),
            }
        }
        Ok(())
    }

    /// Whether the file was opened for writing.
    pub(crate) fn writable(&self) -> bool {
        // SAFETY: The file is valid; `f_mode` is set at open.
        let mode = unsafe { (*self.raw()).f_mode };
        mode & FMODE_WRITE != 0
    }

    /// The raw file, for I/O control blocks (`kext::file_io`).
    pub(crate) fn as_raw(&self) -> *mut bindings::file {
        self.raw()
    }

    /// The file's operations.
    pub(crate) fn fops(&self) -> *const bindings::file_operations {
        // SAFETY: The file is valid; `f_op` is set at open and static.
        unsafe { (*self.raw()).f_op }
    }

    fn f_mode(&self) -> u32 {
        // SAFETY: The file is valid; `f_mode` is set at open.
        unsafe { (*self.raw()).f_mode }
    }

    fn f_flags(&self) -> u32 {
        // SAFETY: The file is valid; `f_flags` is set at open.
        unsafe { (*self.raw()).f_flags }
    }

    /// Whether reads may be tried with `IOCB_NOWAIT`: the file honours it
    /// (`FMODE_NOWAIT`), and was opened with `O_NOATIME`, without which a
    /// read may update the access time, synchronously (see
    /// [`PathFile::open`]).
    ///
    /// Never for a block device: the submitter may hold the lofi disk's
    /// own inode lock (a buffered read of it does, in `blkdev_read_iter()`),
    /// and the backing device's read takes its inode lock of the same
    /// class, which lockdep reports as recursive locking; a worker holds
    /// neither.
    pub(crate) fn nowait_reads(&self) -> bool {
        self.kind() != FileKind::Block
            && self.f_mode() & FMODE_NOWAIT != 0
            && self.f_flags() & bindings::O_NOATIME != 0
    }

    /// Whether writes may be tried with `IOCB_NOWAIT`: where the file
    /// honours it (`FMODE_NOWAIT`; its time stamps are then updated with
    /// `kiocb_modified()`, which honours it too), direct ones, buffered ones
    /// only where its file system says so as well (`FOP_BUFFER_WASYNC`).
    /// Never for a block device, as [`KernelFile::nowait_reads`].
    pub(crate) fn nowait_writes(&self, direct: bool) -> bool {
        // SAFETY: `f_op` of a valid file is valid and static.
        let fop_flags = unsafe { (*self.fops()).fop_flags };
        self.kind() != FileKind::Block
            && self.f_mode() & FMODE_NOWAIT != 0
            && (direct || fop_flags & FOP_BUFFER_WASYNC != 0)
    }

    /// The block size of the file's file system (`i_blkbits`): direct
    /// writes not aligned to it may need metadata that a non-blocking
    /// attempt must not wait for.
    pub(crate) fn fs_block_size(&self) -> u32 {
        // SAFETY: The inode of an open file is valid; `i_blkbits` is set
        // when it is read in.
        let bits = unsafe { (*self.0.inode()).i_blkbits };
        1u32.checked_shl(u32::from(bits)).unwrap_or(u32::MAX)
    }

    /// The file's direct-I/O alignment, or `None` if it cannot do direct
    /// I/O. Taken, as `loop` does, from `STATX_DIOALIGN` where the file
    /// system reports it, else from the block device under the file system
    /// (or the file's own, for a block device), else 512 bytes.
    pub(crate) fn dio_align(&self) -> Option<DioAlign> {
        if self.f_mode() & FMODE_CAN_ODIRECT == 0 {
            return None;
        }
        // SAFETY: All-zeroes is a valid `kstat`, filled in by the call.
        let mut st: bindings::kstat = unsafe { core::mem::zeroed() };
        // SAFETY: The file and its path are valid; `st` is writable.
        let ret = unsafe {
            bindings::vfs_getattr(
                &raw const (*self.raw()).__bindgen_anon_1.f_path,
                &mut st,
                bindings::STATX_DIOALIGN,
                0,
            )
        };
        if ret == 0 && st.result_mask & bindings::STATX_DIOALIGN != 0 {
            if st.dio_mem_align == 0 {
                // The file system says: no direct I/O for this file.
                return None;
            }
            return Some(DioAlign {
                offset: st.dio_offset_align,
                memory: st.dio_mem_align,
            });
        }
        let bdev = match self.kind() {
            // SAFETY: The file is an opened block device.
            FileKind::Block => unsafe { bindings::file_bdev(self.raw()) },
            // SAFETY: The inode of an open file is valid, and so is its
            // superblock; `s_bdev` is set at mount (or null).
            _ => unsafe { (*(*self.0.inode()).i_sb).s_bdev },
        };
        if bdev.is_null() {
            return Some(DioAlign {
                offset: 512,
                memory: 512,
            });
        }
        // SAFETY: `bdev` is valid while the file (on it, or of it) is open;
        // its queue's limits are what `bdev_logical_block_size()` and
        // `bdev_dma_alignment()` read.
        let (lbs, dma) = unsafe {
            let lim = &(*(*bdev).bd_queue).limits;
            (lim.logical_block_size, lim.dma_alignment)
        };
        Some(DioAlign {
            offset: lbs,
            memory: dma + 1,
        })
    }

    /// Whether the file can have ranges deallocated or zeroed
    /// (`fallocate`), and how: see [`FileZeroing`].
    pub(crate) fn zeroing(&self) -> Option<FileZeroing> {
        // SAFETY: `f_op` of a valid file is valid and static.
        if unsafe { (*self.fops()).fallocate.is_none() } {
            return None;
        }
        match self.kind() {
            FileKind::Block => {
                // SAFETY: The file is an opened block device: its bdev and
                // queue are valid while it is open.
                let (max, pbs, lbs) = unsafe {
                    let lim = &(*(*bindings::file_bdev(self.raw())).bd_queue).limits;
                    (
                        lim.max_write_zeroes_sectors,
                        lim.physical_block_size,
                        lim.logical_block_size,
                    )
                };
                (max != 0).then_some(FileZeroing {
                    granularity: pbs,
                    max_sectors: max,
                    alignment: lbs,
                })
            }
            _ => {
                // SAFETY: The inode of an open file and its superblock are
                // valid; `s_blocksize` is set at mount.
                let bs = unsafe { (*(*self.0.inode()).i_sb).s_blocksize };
                Some(FileZeroing {
                    granularity: u32::try_from(bs).unwrap_or(4096),
                    max_sectors: u32::MAX >> 9,
                    alignment: 1,
                })
            }
        }
    }

    /// `fallocate(mode, pos, len)` on the file.
    pub(crate) fn fallocate(&self, mode: i32, pos: u64, len: u64) -> Result {
        let pos = i64::try_from(pos).map_err(|_| EINVAL)?;
        let len = i64::try_from(len).map_err(|_| EINVAL)?;
        // SAFETY: The file is valid and open; `vfs_fallocate` checks the
        // mode, range, permissions and freeze protection itself.
        kernel::error::to_result(unsafe { bindings::vfs_fallocate(self.raw(), mode, pos, len) })
    }

    /// Writes the file's dirty data (and the metadata needed to read it
    /// back) to stable storage: `fdatasync()`, which is what a block
    /// device's cache flush asks for.
    pub(crate) fn datasync(&self) -> Result {
        // SAFETY: The file is valid.
        kernel::error::to_result(unsafe { bindings::vfs_fsync(self.raw(), 1) })
    }

    /// Whether the file can be synced: its file operations have `fsync`.
    pub(crate) fn can_sync(&self) -> bool {
        // SAFETY: The file is valid; `f_op` is set at open and static.
        unsafe { (*(*self.raw()).f_op).fsync.is_some() }
    }

    /// For a block device file, the disk it opens.
    pub(crate) fn block_disk(&self) -> Option<OpenDisk<'_>> {
        if self.kind() != FileKind::Block {
            return None;
        }
        // SAFETY: The file is an opened block device: `file_bdev` is valid
        // for it, and so is the bdev's disk while the file is open.
        let bdev = unsafe { bindings::file_bdev(self.raw()) };
        if bdev.is_null() {
            return None;
        }
        // SAFETY: As above.
        let disk = NonNull::new(unsafe { (*bdev).bd_disk })?;
        // INVARIANT: The disk of a block device that `self` holds open.
        Some(OpenDisk {
            disk,
            _file: PhantomData,
        })
    }

    /// Closes the file now: when this returns, the file's release has run
    /// and its mount and inode references are dropped, so that its file
    /// system can be unmounted at once (a plain drop defers that to the
    /// task's return to user space, or to a kworker in a kernel thread).
    ///
    /// Must be called with no lock held that closing may need: the final
    /// close of a block device takes its disk's `open_mutex`, that of a
    /// file may end a lazily unmounted file system.
    pub(crate) fn close_sync(self) {
        let raw = self.0.into_raw();
        // SAFETY: `raw` carries the reference this value held (given up by
        // `into_raw`); `__fput_sync` drops it and, if it was the last,
        // runs the final close in this context.
        unsafe { bindings::__fput_sync(raw) };
    }
}
