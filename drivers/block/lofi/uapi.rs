// SPDX-License-Identifier: GPL-2.0

//! The user-space ABI of include/uapi/linux/lofi.h, mirrored in Rust.
//!
//! The header is the source of truth. Every number below is a literal, and
//! `tests/host-checks.sh` (check `uapi-mirror`) compiles
//! `tests/host/uapi_mirror.c` against the header, 64- and 32-bit, and
//! verifies that each layout assertion and constant line it prints stands
//! here verbatim. The compile-time assertions then tie the Rust struct to
//! the C layout.

use kernel::{
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

/// `LOFI_PATH_LEN`: the size of `li_filename`.
pub(crate) const LOFI_PATH_LEN: usize = 4096;
/// `LOFI_DEVPATH_LEN`: the size of `li_devpath`.
pub(crate) const LOFI_DEVPATH_LEN: usize = 64;
/// `LOFI_ALGORITHM_LEN`.
pub(crate) const LOFI_ALGORITHM_LEN: usize = 36;
/// `LOFI_RESERVED_WORDS`.
pub(crate) const LOFI_RESERVED_WORDS: usize = 13;

/// `struct lofi_ioctl`.
///
/// The derives check, at compile time, that it has no padding and that
/// any bytes are a valid value (only integers), so that it can be copied
/// from and to user space as bytes without unsafe code.
#[repr(C)]
#[derive(FromBytes, IntoBytes, zerocopy_derive::Immutable, Zeroable)]
pub(crate) struct LofiIoctl {
    pub(crate) li_minor: u32,
    pub(crate) li_force: u32,
    pub(crate) li_cleanup: u32,
    pub(crate) li_readonly: u32,
    pub(crate) li_flags: u32,
    pub(crate) li_block_size: u32,
    pub(crate) li_offset: u64,
    pub(crate) li_sizelimit: u64,
    pub(crate) li_filename: [u8; LOFI_PATH_LEN],
    pub(crate) li_devpath: [u8; LOFI_DEVPATH_LEN],
    pub(crate) li_algorithm: [u8; LOFI_ALGORITHM_LEN],
    pub(crate) li_reserved: [u32; LOFI_RESERVED_WORDS],
}

// Layout of struct lofi_ioctl, as the C header has it.
const _: () = assert!(core::mem::size_of::<LofiIoctl>() == 4288);
const _: () = assert!(core::mem::offset_of!(LofiIoctl, li_minor) == 0);
const _: () = assert!(core::mem::offset_of!(LofiIoctl, li_force) == 4);
const _: () = assert!(core::mem::offset_of!(LofiIoctl, li_cleanup) == 8);
const _: () = assert!(core::mem::offset_of!(LofiIoctl, li_readonly) == 12);
const _: () = assert!(core::mem::offset_of!(LofiIoctl, li_flags) == 16);
const _: () = assert!(core::mem::offset_of!(LofiIoctl, li_block_size) == 20);
const _: () = assert!(core::mem::offset_of!(LofiIoctl, li_offset) == 24);
const _: () = assert!(core::mem::offset_of!(LofiIoctl, li_sizelimit) == 32);
const _: () = assert!(core::mem::offset_of!(LofiIoctl, li_filename) == 40);
const _: () = assert!(core::mem::offset_of!(LofiIoctl, li_devpath) == 4136);
const _: () = assert!(core::mem::offset_of!(LofiIoctl, li_algorithm) == 4200);
const _: () = assert!(core::mem::offset_of!(LofiIoctl, li_reserved) == 4236);

/// `LOFI_MAP_FILE`.
pub(crate) const LOFI_MAP_FILE: u32 = 0xd0c0df01;
/// `LOFI_MAP_FILE_MINOR`.
pub(crate) const LOFI_MAP_FILE_MINOR: u32 = 0xd0c0df02;
/// `LOFI_UNMAP_FILE`.
pub(crate) const LOFI_UNMAP_FILE: u32 = 0xd0c0df03;
/// `LOFI_UNMAP_FILE_MINOR`.
pub(crate) const LOFI_UNMAP_FILE_MINOR: u32 = 0xd0c0df04;
/// `LOFI_GET_FILENAME`.
pub(crate) const LOFI_GET_FILENAME: u32 = 0xd0c0df05;
/// `LOFI_GET_MINOR`.
pub(crate) const LOFI_GET_MINOR: u32 = 0xd0c0df06;
/// `LOFI_GET_MAXMINOR`.
pub(crate) const LOFI_GET_MAXMINOR: u32 = 0xd0c0df07;
/// `LOFI_CHECK_COMPRESSED`.
pub(crate) const LOFI_CHECK_COMPRESSED: u32 = 0xd0c0df08;
/// `LOFI_SET_CAPACITY`.
pub(crate) const LOFI_SET_CAPACITY: u32 = 0xd0c0df09;
/// `LOFI_DKIOCSTATE`.
pub(crate) const LOFI_DKIOCSTATE: u32 = 0xc004df10;

/// `LOFI_DKIO_INSERTED`.
pub(crate) const LOFI_DKIO_INSERTED: u32 = 0x2;
/// `LOFI_DKIO_DEV_GONE`.
pub(crate) const LOFI_DKIO_DEV_GONE: u32 = 0x3;

/// `LOFI_FLAG_DIRECT_IO`: serve the mapping with direct I/O.
pub(crate) const LOFI_FLAG_DIRECT_IO: u32 = 0x1;
/// `LOFI_FLAG_LABELED`: the disk may have partitions (illumos "labeled").
pub(crate) const LOFI_FLAG_LABELED: u32 = 0x2;
/// `LOFI_FLAGS_KNOWN`: the `li_flags` bits this driver implements.
pub(crate) const LOFI_FLAGS_KNOWN: u32 = 0x3;
/// `LOFI_BLOCK_SIZE_DEFAULT`.
pub(crate) const LOFI_BLOCK_SIZE_DEFAULT: u32 = 512;

impl LofiIoctl {
    /// Copies a `struct lofi_ioctl` in from user space, onto the heap (it is
    /// too large for the kernel stack).
    pub(crate) fn read_from(arg: usize) -> Result<KBox<Self>> {
        let mut obj = KBox::init(pin_init::zeroed::<Self>(), GFP_KERNEL)?;
        UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<Self>())
            .reader()
            .read_slice(obj.as_mut_bytes())?;
        Ok(obj)
    }

    /// Copies the structure back out to user space.
    pub(crate) fn write_to(&self, arg: usize) -> Result {
        UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<Self>())
            .writer()
            .write_slice(self.as_bytes())
    }
}

/// The NUL-terminated string in `buf`, or `None` without a NUL.
pub(crate) fn c_string(buf: &[u8]) -> Option<&CStr> {
    let nul = buf.iter().position(|&b| b == 0)?;
    CStr::from_bytes_with_nul(&buf[..=nul]).ok()
}

/// Stores `s` NUL-terminated in `buf` (which is larger than any name lofi
/// writes), truncating if it ever is not.
pub(crate) fn set_c_string(buf: &mut [u8], s: &[u8]) {
    let len = s.len().min(buf.len().saturating_sub(1));
    buf[..len].copy_from_slice(&s[..len]);
    buf[len..].fill(0);
}
