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
//!   the looked-up path, with the checks `open(2)` makes), read and written
//!   with `vfs_iter_read()`/`vfs_iter_write()` over a bio_vec, synced with
//!   `vfs_fsync()`, and closed either lazily (`fput()`, on drop) or at once
//!   ([`KernelFile::close_sync`]).

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
        let flags = bindings::O_LARGEFILE
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
        Ok(KernelFile(FileRef {
            file: NonNull::new(file).ok_or(ENOENT)?,
        }))
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

    /// Whether the file was opened for writing.
    pub(crate) fn writable(&self) -> bool {
        // SAFETY: The file is valid; `f_mode` is set at open.
        let mode = unsafe { (*self.raw()).f_mode };
        mode & FMODE_WRITE != 0
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

    /// Reads into `seg` from byte `pos`. Returns the bytes read: fewer than
    /// the segment's length only at the end of the file (the rest of the
    /// segment is zeroed).
    pub(crate) fn read_segment(&self, seg: &bindings::bio_vec, pos: u64) -> Result<usize> {
        self.rw_segment(seg, pos, bindings::ITER_DEST)
    }

    /// Writes `seg` at byte `pos`. Returns the bytes written.
    pub(crate) fn write_segment(&self, seg: &bindings::bio_vec, pos: u64) -> Result<usize> {
        self.rw_segment(seg, pos, bindings::ITER_SOURCE)
    }

    fn rw_segment(&self, seg: &bindings::bio_vec, pos: u64, dir: u32) -> Result<usize> {
        let len = seg.bv_len as usize;
        let mut pos = i64::try_from(pos).map_err(|_| EINVAL)?;
        // SAFETY: All-zeroes is a valid (empty) `iov_iter`, set up next.
        let mut iter: bindings::iov_iter = unsafe { core::mem::zeroed() };
        // SAFETY: `seg` describes pages of a started request, valid for the
        // duration of this call; one segment of `len` bytes.
        unsafe { bindings::iov_iter_bvec(&mut iter, dir, seg, 1, len) };
        let mut done = 0;
        while done < len {
            // SAFETY: The file is valid; `iter` and `pos` are valid and
            // advanced by the call.
            let n = unsafe {
                if dir == bindings::ITER_DEST {
                    bindings::vfs_iter_read(self.raw(), &mut iter, &mut pos, 0)
                } else {
                    bindings::vfs_iter_write(self.raw(), &mut iter, &mut pos, 0)
                }
            };
            if n < 0 {
                return Err(Error::from_errno(n as i32));
            }
            if n == 0 {
                break;
            }
            done += n as usize;
        }
        if dir == bindings::ITER_DEST && done < len {
            // Past the end of the file: the rest of the segment reads as
            // zeros.
            // SAFETY: `iter` still covers the unread rest of the segment.
            unsafe { bindings::iov_iter_zero(len - done, &mut iter) };
        }
        Ok(done)
    }

    /// Writes the file's dirty data and metadata to stable storage.
    pub(crate) fn sync(&self) -> Result {
        // SAFETY: The file is valid.
        kernel::error::to_result(unsafe { bindings::vfs_fsync(self.raw(), 0) })
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
