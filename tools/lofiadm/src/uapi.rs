//! The lofi control ABI, mirrored by hand from `include/uapi/linux/lofi.h`.
//!
//! The header is the single source of truth. `tests/uapi_header.rs`
//! compiles a C program against it and checks the size, every field's
//! offset and size, and every constant here against what the C compiler
//! sees, so a change on either side fails `cargo test`.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

/// The control device (`"/dev/" LOFI_CTL_NAME`).
pub const CTL_PATH: &str = "/dev/lofictl";
/// The directory of the illumos-layout links `/dev/lofi/N` and
/// `/dev/lofi/NpM` (`"/dev/" LOFI_BLOCK_DIR`); the nodes they lead to are
/// `/dev/lofiN` and `/dev/lofiNpM`, named as the kernel names the disks.
pub const BLOCK_DIR: &str = "/dev/lofi";
/// `LOFI_PATH_LEN` (`PATH_MAX` of `<linux/limits.h>`): the size of `li_filename`.
pub const PATH_LEN: usize = 4096;
/// `LOFI_DEVPATH_LEN`: the size of `li_devpath`.
pub const DEVPATH_LEN: usize = 64;
/// `LOFI_ALGORITHM_LEN`: the size of `li_algorithm`.
pub const ALGORITHM_LEN: usize = 36;
/// `LOFI_RESERVED_WORDS`: the number of `__u32` words in `li_reserved`.
pub const RESERVED_WORDS: usize = 13;
/// `LOFI_FLAG_DIRECT_IO`: serve the mapping with direct I/O (cleared on
/// return when the backing file cannot do it).
pub const FLAG_DIRECT_IO: u32 = 0x1;
/// `LOFI_FLAG_LABELED`: a labeled mapping (illumos `lofiadm -l`), whose
/// partition table is read, so that its partitions `lofiNpM` appear.
pub const FLAG_LABELED: u32 = 0x2;
/// `LOFI_FLAGS_KNOWN`: the `li_flags` bits the driver accepts.
pub const FLAGS_KNOWN: u32 = FLAG_DIRECT_IO | FLAG_LABELED;
/// `LOFI_BLOCK_SIZE_DEFAULT`: a mapping's logical block size when
/// `li_block_size` is 0.
pub const BLOCK_SIZE_DEFAULT: u32 = 512;
/// `LOFI_IOC_MAGIC`.
pub const IOC_MAGIC: u8 = 0xDF;
/// `LOFI_MAX_FILES_DEFAULT`.
pub const MAX_FILES_DEFAULT: u32 = 128;

/// The command numbers (`_IOWR(LOFI_IOC_MAGIC, nr, struct lofi_ioctl)`).
pub mod nr {
    pub const MAP_FILE: u8 = 1;
    pub const MAP_FILE_MINOR: u8 = 2;
    pub const UNMAP_FILE: u8 = 3;
    pub const UNMAP_FILE_MINOR: u8 = 4;
    pub const GET_FILENAME: u8 = 5;
    pub const GET_MINOR: u8 = 6;
    pub const GET_MAXMINOR: u8 = 7;
    pub const CHECK_COMPRESSED: u8 = 8;
    pub const SET_CAPACITY: u8 = 9;
    /// `LOFI_DKIOCSTATE`, on /dev/lofiN (`_IOWR(LOFI_IOC_MAGIC, 0x10, __u32)`).
    pub const DKIOCSTATE: u8 = 0x10;
}

/// The states `LOFI_DKIOCSTATE` reports (`LOFI_DKIO_*`, the values of the
/// illumos `enum dkio_state`).
pub mod dkio {
    pub const NONE: u32 = 0;
    pub const EJECTED: u32 = 1;
    pub const INSERTED: u32 = 2;
    pub const DEV_GONE: u32 = 3;
}

/// `struct lofi_ioctl`: fixed-size members, the 64-bit ones 8-byte
/// aligned, no padding, the same layout for 32- and 64-bit callers (4288
/// bytes). `align(8)`: `__aligned_u64` aligns the C structure to 8 bytes
/// on every architecture, where a Rust `u64` may have 4 (32-bit x86).
#[repr(C, align(8))]
#[derive(Clone)]
pub struct LofiIoctl {
    pub li_minor: u32,
    pub li_force: u32,
    pub li_cleanup: u32,
    pub li_readonly: u32,
    pub li_flags: u32,
    pub li_block_size: u32,
    pub li_offset: u64,
    pub li_sizelimit: u64,
    pub li_filename: [u8; PATH_LEN],
    pub li_devpath: [u8; DEVPATH_LEN],
    pub li_algorithm: [u8; ALGORITHM_LEN],
    pub li_reserved: [u32; RESERVED_WORDS],
}

impl Default for LofiIoctl {
    /// All zero, as the ABI asks callers to start from: for the map
    /// commands, zero `li_flags`, `li_block_size`, `li_offset` and
    /// `li_sizelimit` ask for the defaults.
    fn default() -> Self {
        LofiIoctl {
            li_minor: 0,
            li_force: 0,
            li_cleanup: 0,
            li_readonly: 0,
            li_flags: 0,
            li_block_size: 0,
            li_offset: 0,
            li_sizelimit: 0,
            li_filename: [0; PATH_LEN],
            li_devpath: [0; DEVPATH_LEN],
            li_algorithm: [0; ALGORITHM_LEN],
            li_reserved: [0; RESERVED_WORDS],
        }
    }
}

impl LofiIoctl {
    /// A zeroed structure naming `path` in `li_filename`. The path must
    /// fit with its terminating NUL, else `ENAMETOOLONG`, which is what
    /// the kernel would say about such a path too.
    pub fn with_filename(path: &Path) -> Result<Self, Errno> {
        let mut li = LofiIoctl::default();
        let bytes = path.as_os_str().as_bytes();
        if bytes.len() >= PATH_LEN {
            return Err(Errno::ENAMETOOLONG);
        }
        // Command-line arguments cannot contain NUL; a path from
        // elsewhere could, and would silently name another file.
        if bytes.contains(&0) {
            return Err(Errno::EINVAL);
        }
        li.li_filename[..bytes.len()].copy_from_slice(bytes);
        Ok(li)
    }

    /// `li_filename` up to its NUL (the whole array if there is none).
    pub fn filename(&self) -> &[u8] {
        until_nul(&self.li_filename)
    }

    /// `li_devpath` up to its NUL.
    pub fn devpath(&self) -> &[u8] {
        until_nul(&self.li_devpath)
    }

    /// `li_algorithm` up to its NUL.
    pub fn algorithm(&self) -> &[u8] {
        until_nul(&self.li_algorithm)
    }
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// The request values, as `_IOWR()` computes them in C. The ioctl
/// functions below compute the same values from the same inputs; these
/// constants exist so that tests can compare them with the C header.
pub mod request {
    use super::{IOC_MAGIC, LofiIoctl, nr};

    const fn iowr(nr: u8) -> u32 {
        nix::request_code_readwrite!(IOC_MAGIC, nr, std::mem::size_of::<LofiIoctl>()) as u32
    }

    pub const MAP_FILE: u32 = iowr(nr::MAP_FILE);
    pub const MAP_FILE_MINOR: u32 = iowr(nr::MAP_FILE_MINOR);
    pub const UNMAP_FILE: u32 = iowr(nr::UNMAP_FILE);
    pub const UNMAP_FILE_MINOR: u32 = iowr(nr::UNMAP_FILE_MINOR);
    pub const GET_FILENAME: u32 = iowr(nr::GET_FILENAME);
    pub const GET_MINOR: u32 = iowr(nr::GET_MINOR);
    pub const GET_MAXMINOR: u32 = iowr(nr::GET_MAXMINOR);
    pub const CHECK_COMPRESSED: u32 = iowr(nr::CHECK_COMPRESSED);
    pub const SET_CAPACITY: u32 = iowr(nr::SET_CAPACITY);
    pub const DKIOCSTATE: u32 =
        nix::request_code_readwrite!(IOC_MAGIC, nr::DKIOCSTATE, std::mem::size_of::<u32>()) as u32;
}

mod raw {
    use super::{IOC_MAGIC, LofiIoctl, nr};

    nix::ioctl_readwrite!(map_file, IOC_MAGIC, nr::MAP_FILE, LofiIoctl);
    nix::ioctl_readwrite!(map_file_minor, IOC_MAGIC, nr::MAP_FILE_MINOR, LofiIoctl);
    nix::ioctl_readwrite!(unmap_file, IOC_MAGIC, nr::UNMAP_FILE, LofiIoctl);
    nix::ioctl_readwrite!(unmap_file_minor, IOC_MAGIC, nr::UNMAP_FILE_MINOR, LofiIoctl);
    nix::ioctl_readwrite!(get_filename, IOC_MAGIC, nr::GET_FILENAME, LofiIoctl);
    nix::ioctl_readwrite!(get_minor, IOC_MAGIC, nr::GET_MINOR, LofiIoctl);
    nix::ioctl_readwrite!(get_maxminor, IOC_MAGIC, nr::GET_MAXMINOR, LofiIoctl);
    nix::ioctl_readwrite!(set_capacity, IOC_MAGIC, nr::SET_CAPACITY, LofiIoctl);
}

/// A lofi control command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    MapFile,
    MapFileMinor,
    UnmapFile,
    UnmapFileMinor,
    GetFilename,
    GetMinor,
    GetMaxminor,
    SetCapacity,
}

/// Issue `cmd` on the control device `fd` with `li`, which the kernel
/// reads and updates in place. Returns the ioctl's value (N for the map
/// commands, 0 for the others).
pub fn ioctl(fd: BorrowedFd<'_>, cmd: Cmd, li: &mut LofiIoctl) -> Result<i32, Errno> {
    let fd = fd.as_raw_fd();
    let li: *mut LofiIoctl = li;
    // SAFETY: `fd` is borrowed, so it stays open for the call; `li`
    // points to a live, exclusively borrowed `struct lofi_ioctl` of the
    // size encoded in the request, which the kernel reads and writes
    // within its bounds.
    unsafe {
        match cmd {
            Cmd::MapFile => raw::map_file(fd, li),
            Cmd::MapFileMinor => raw::map_file_minor(fd, li),
            Cmd::UnmapFile => raw::unmap_file(fd, li),
            Cmd::UnmapFileMinor => raw::unmap_file_minor(fd, li),
            Cmd::GetFilename => raw::get_filename(fd, li),
            Cmd::GetMinor => raw::get_minor(fd, li),
            Cmd::GetMaxminor => raw::get_maxminor(fd, li),
            Cmd::SetCapacity => raw::set_capacity(fd, li),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    // The values Documentation/userspace-api/lofi.rst publishes; the C
    // header itself is compared in tests/uapi_header.rs.
    #[test]
    fn layout_matches_the_documented_table() {
        assert_eq!(size_of::<LofiIoctl>(), 4288);
        assert_eq!(align_of::<LofiIoctl>(), 8);
        assert_eq!(offset_of!(LofiIoctl, li_minor), 0);
        assert_eq!(offset_of!(LofiIoctl, li_force), 4);
        assert_eq!(offset_of!(LofiIoctl, li_cleanup), 8);
        assert_eq!(offset_of!(LofiIoctl, li_readonly), 12);
        assert_eq!(offset_of!(LofiIoctl, li_flags), 16);
        assert_eq!(offset_of!(LofiIoctl, li_block_size), 20);
        assert_eq!(offset_of!(LofiIoctl, li_offset), 24);
        assert_eq!(offset_of!(LofiIoctl, li_sizelimit), 32);
        assert_eq!(offset_of!(LofiIoctl, li_filename), 40);
        assert_eq!(offset_of!(LofiIoctl, li_devpath), 4136);
        assert_eq!(offset_of!(LofiIoctl, li_algorithm), 4200);
        assert_eq!(offset_of!(LofiIoctl, li_reserved), 4236);
    }

    #[test]
    fn the_size_fits_every_ioctl_size_field() {
        // _IOC_SIZEBITS is 13 on alpha, mips, powerpc and sparc.
        assert!(size_of::<LofiIoctl>() < 1 << 13);
    }

    #[test]
    fn request_values_match_the_documented_table() {
        assert_eq!(request::MAP_FILE, 0xD0C0_DF01);
        assert_eq!(request::MAP_FILE_MINOR, 0xD0C0_DF02);
        assert_eq!(request::UNMAP_FILE, 0xD0C0_DF03);
        assert_eq!(request::UNMAP_FILE_MINOR, 0xD0C0_DF04);
        assert_eq!(request::GET_FILENAME, 0xD0C0_DF05);
        assert_eq!(request::GET_MINOR, 0xD0C0_DF06);
        assert_eq!(request::GET_MAXMINOR, 0xD0C0_DF07);
        assert_eq!(request::CHECK_COMPRESSED, 0xD0C0_DF08);
        assert_eq!(request::SET_CAPACITY, 0xD0C0_DF09);
        assert_eq!(request::DKIOCSTATE, 0xC004_DF10);
    }

    #[test]
    fn a_new_structure_asks_for_the_defaults() {
        let li = LofiIoctl::with_filename(Path::new("/var/tmp/a.img")).unwrap();
        assert_eq!(li.li_flags, 0);
        assert_eq!(li.li_block_size, 0);
        assert_eq!(li.li_offset, 0);
        assert_eq!(li.li_sizelimit, 0);
        assert_eq!(li.li_flags & !FLAGS_KNOWN, 0);
        assert!(li.li_reserved.iter().all(|&w| w == 0));
        assert!(li.li_devpath.iter().all(|&b| b == 0));
        assert!(li.li_algorithm.iter().all(|&b| b == 0));
    }

    #[test]
    fn filename_is_nul_terminated_within_the_array() {
        let li = LofiIoctl::with_filename(Path::new("/var/tmp/a.img")).unwrap();
        assert_eq!(li.filename(), b"/var/tmp/a.img");
        assert_eq!(li.li_filename[14], 0);
        assert_eq!(li.li_minor, 0);
        assert!(li.li_reserved.iter().all(|&w| w == 0));

        let longest = format!("/{}", "x".repeat(PATH_LEN - 2));
        let li = LofiIoctl::with_filename(Path::new(&longest)).unwrap();
        assert_eq!(li.filename().len(), PATH_LEN - 1);
        assert_eq!(li.li_filename[PATH_LEN - 1], 0);

        let too_long = format!("/{}", "x".repeat(PATH_LEN - 1));
        assert_eq!(
            LofiIoctl::with_filename(Path::new(&too_long)).err(),
            Some(Errno::ENAMETOOLONG)
        );
    }

    #[test]
    fn out_strings_stop_at_nul_or_the_array_end() {
        let mut li = LofiIoctl::default();
        li.li_devpath[..10].copy_from_slice(b"/dev/lofi7");
        assert_eq!(li.devpath(), b"/dev/lofi7");
        li.li_devpath = [b'd'; DEVPATH_LEN];
        assert_eq!(li.devpath().len(), DEVPATH_LEN);
        assert_eq!(li.algorithm(), b"");
        li.li_algorithm = [b'z'; ALGORITHM_LEN];
        assert_eq!(li.algorithm().len(), ALGORITHM_LEN);
    }
}
