// SPDX-License-Identifier: GPL-2.0

//! A file opened by the kernel on behalf of a caller, for block I/O on it.
//!
//! `kernel::fs::File` wraps files that user space handed in; it cannot open
//! a path, read or write at an offset into pages, or sync. [`KernelFile`]
//! does that with `filp_open()`, `vfs_iter_read()`/`vfs_iter_write()` over a
//! bio_vec and `vfs_fsync()`, and drops its reference with `fput()`.

use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, prelude::*};

/// What kind of file a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A regular file.
    Regular,
    /// A block device node.
    Block,
    /// Anything else: directory, FIFO, socket, char device, ...
    Other,
}

/// A reference to an open `struct file`.
///
/// # Invariants
///
/// `file` is a valid file on which this value holds one reference.
pub(crate) struct KernelFile {
    file: NonNull<bindings::file>,
}

// SAFETY: A file reference may be used and dropped from any thread.
unsafe impl Send for KernelFile {}
// SAFETY: The operations used through `&KernelFile` are thread-safe in C.
unsafe impl Sync for KernelFile {}

impl KernelFile {
    /// Opens `path` with the current task's credentials.
    ///
    /// `flags` are `open(2)` flags; `O_LARGEFILE` is always added.
    pub(crate) fn open(path: &CStr, flags: u32) -> Result<Self> {
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

    /// Opens `path` for data access, read-write or read-only, without
    /// blocking in the open itself (`O_NONBLOCK`: a FIFO put in place of a
    /// checked path must not hang the caller). Clear it with
    /// [`KernelFile::clear_nonblock`] once the file's kind is checked.
    pub(crate) fn open_data(path: &CStr, writable: bool) -> Result<Self> {
        let access = if writable {
            bindings::O_RDWR
        } else {
            bindings::O_RDONLY
        };
        Self::open(path, access | bindings::O_NONBLOCK)
    }

    /// Opens `path` with `O_PATH`: resolves it without opening the object
    /// (no device open, no FIFO wait), to look at what it is.
    pub(crate) fn open_path(path: &CStr) -> Result<Self> {
        Self::open(path, bindings::O_PATH)
    }

    fn raw(&self) -> *mut bindings::file {
        self.file.as_ptr()
    }

    /// The kind of the opened object (by its inode's mode).
    pub(crate) fn kind(&self) -> FileKind {
        // SAFETY: The file is valid, so is its inode while it is open.
        let mode = u32::from(unsafe { (*(*self.raw()).f_inode).i_mode });
        match mode & bindings::S_IFMT {
            bindings::S_IFREG => FileKind::Regular,
            bindings::S_IFBLK => FileKind::Block,
            _ => FileKind::Other,
        }
    }

    /// The inode that holds the data: for a block device node, the block
    /// device's inode, not the node's. Identifies the backing object.
    fn host(&self) -> *mut bindings::inode {
        // SAFETY: The file is valid; every opened file has a mapping whose
        // host is the data's inode (the bdev inode for block devices).
        unsafe { (*(*self.raw()).f_mapping).host }
    }

    /// An identity of the data behind the file, equal for two opens of the
    /// same file or block device (the data inode's address). Valid as a key
    /// while this file is open.
    pub(crate) fn identity(&self) -> usize {
        self.host() as usize
    }

    /// The size of the data in bytes (a block device's capacity).
    pub(crate) fn size(&self) -> i64 {
        // SAFETY: The host inode is valid while the file is open. A plain
        // read of `i_size` is what `i_size_read()` does on 64-bit kernels;
        // a torn read cannot happen there.
        unsafe { core::ptr::read_volatile(&raw const (*self.host()).i_size) }
    }

    /// Whether the file was opened for writing.
    pub(crate) fn writable(&self) -> bool {
        // SAFETY: The file is valid. `FMODE_WRITE` is bit 1 of f_mode
        // (include/linux/fs.h).
        let mode = unsafe { (*self.raw()).f_mode };
        mode & (1 << 1) != 0
    }

    /// Clears `O_NONBLOCK` from the open file's flags. Only for a file that
    /// has not been shared with anybody yet.
    pub(crate) fn clear_nonblock(&mut self) {
        // SAFETY: `&mut self` and the caller's promise: no other user of the
        // file can race with this update of `f_flags`.
        unsafe { (*self.raw()).f_flags &= !bindings::O_NONBLOCK };
    }

    /// For a block device file, the disk it opens.
    pub(crate) fn block_disk(&self) -> Option<*const bindings::gendisk> {
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
        Some(unsafe { (*bdev).bd_disk }.cast_const())
    }

    /// Reads into `seg` from byte `pos`. Returns the bytes read: fewer than
    /// the segment's length only at the end of the file.
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
}

impl Drop for KernelFile {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold one reference.
        unsafe { bindings::fput(self.raw()) };
    }
}
