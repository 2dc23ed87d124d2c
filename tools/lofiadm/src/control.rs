//! The control device /dev/lofictl and its commands.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::device;
use crate::error::{Error, NO_PERMISSION};
use crate::uapi::{
    BLOCK_SIZE_DEFAULT, CTL_PATH, Cmd, FLAG_DIRECT_IO, FLAG_LABELED, LofiIoctl, ioctl,
};

/// One mapping as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The mapping number N.
    pub number: u32,
    /// Its block device node, `/dev/lofiN` (`li_devpath`). lofiadm shows
    /// the link `/dev/lofi/N` instead where it can (see
    /// [`crate::links::Layout::shown`]).
    pub node: String,
    /// The backing file, as it was given when it was mapped.
    pub file: PathBuf,
    pub readonly: bool,
    /// The compression algorithm of a compressed image (`li_algorithm`),
    /// `None` for a plain file. The driver maps a compressed image
    /// read-only, so `readonly` is then true as well.
    pub compressed: Option<String>,
    /// Whether it is labeled, a disk with partitions (`LOFI_FLAG_LABELED`
    /// in the returned `li_flags`).
    pub labeled: bool,
    /// Whether the driver serves the mapping with direct I/O on the
    /// backing file (`LOFI_FLAG_DIRECT_IO` in the returned `li_flags`).
    pub direct_io: bool,
    /// The device's logical block size in bytes: 512, the size asked
    /// for, or more when direct I/O needs the backing file's alignment.
    pub block_size: u32,
    /// Where the device's data starts in the backing file (`li_offset`).
    pub offset: u64,
    /// The size limit it was mapped with (`li_sizelimit`; 0: to the end).
    pub sizelimit: u64,
}

/// The part of a file a map command asks for, and its sector size: all
/// defaults (0, 0, `None`) for the whole file in 512-byte sectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Region {
    /// `li_offset`: the first byte mapped.
    pub offset: u64,
    /// `li_sizelimit`: how many bytes, 0 for all to the end.
    pub sizelimit: u64,
    /// `li_block_size`: the logical block size asked for.
    pub sector_size: Option<u32>,
}

impl Region {
    /// Whether this is the whole file with the default sector size.
    pub fn is_default(&self) -> bool {
        *self == Region::default()
    }
}

/// What a map command asks for besides the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapOptions {
    /// `li_readonly`.
    pub readonly: bool,
    /// `LOFI_FLAG_LABELED` in `li_flags`: read the partition table.
    pub labeled: bool,
    /// `LOFI_FLAG_DIRECT_IO` in `li_flags`.
    pub direct_io: bool,
    /// `li_offset`, `li_sizelimit` and `li_block_size`.
    pub region: Region,
}

impl MapOptions {
    fn apply(self, li: &mut LofiIoctl) {
        li.li_readonly = self.readonly.into();
        if self.labeled {
            li.li_flags |= FLAG_LABELED;
        }
        if self.direct_io {
            li.li_flags |= FLAG_DIRECT_IO;
        }
        li.li_offset = self.region.offset;
        li.li_sizelimit = self.region.sizelimit;
        li.li_block_size = self.region.sector_size.unwrap_or(0);
    }
}

impl Mapping {
    fn from_ioctl(number: u32, li: &LofiIoctl) -> Self {
        let node = match li.devpath() {
            [] => device::node_path(number),
            path => String::from_utf8_lossy(path).into_owned(),
        };
        let compressed = match li.algorithm() {
            [] => None,
            alg => Some(String::from_utf8_lossy(alg).into_owned()),
        };
        Mapping {
            number,
            node,
            file: PathBuf::from(OsString::from_vec(li.filename().to_vec())),
            readonly: li.li_readonly != 0,
            compressed,
            labeled: li.li_flags & FLAG_LABELED != 0,
            direct_io: li.li_flags & FLAG_DIRECT_IO != 0,
            // The driver always fills it in; 0 would be the default.
            block_size: match li.li_block_size {
                0 => BLOCK_SIZE_DEFAULT,
                size => size,
            },
            offset: li.li_offset,
            sizelimit: li.li_sizelimit,
        }
    }
}

/// The queries, which any user may make: what a listing needs. A trait so
/// that the listing can be tested without the driver.
pub trait Queries {
    /// `LOFI_GET_MAXMINOR`: the largest valid N.
    fn max_minor(&self) -> Result<u32, Errno>;
    /// `LOFI_GET_FILENAME`: mapping N (ENXIO if N is not mapped).
    fn get_filename(&self, n: u32) -> Result<Mapping, Errno>;
}

/// How to open the control device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// For queries: works for every user (the node is mode 0644).
    ReadOnly,
    /// For map and unmap: the driver refuses them (EPERM) on a file not
    /// open for writing.
    ReadWrite,
}

/// An open control device. Any number may be open at once, so
/// concurrent lofiadm runs do not get in each other's way.
pub struct Control {
    file: File,
}

impl Control {
    pub fn open(access: Access) -> Result<Self, Error> {
        let mut options = OpenOptions::new();
        options
            .read(true)
            .write(access == Access::ReadWrite)
            .custom_flags(nix::libc::O_CLOEXEC);
        options
            .open(CTL_PATH)
            .map(|file| Control { file })
            .map_err(|e| open_error(&e))
    }

    fn call(&self, cmd: Cmd, li: &mut LofiIoctl) -> Result<i32, Errno> {
        ioctl(self.file.as_fd(), cmd, li)
    }

    /// `LOFI_MAP_FILE`: map `file` at the lowest free N. The mapping
    /// returned is what the driver made, which may lack direct I/O even
    /// if it was asked for.
    pub fn map_file(&self, file: &Path, opts: MapOptions) -> Result<Mapping, Errno> {
        let mut li = LofiIoctl::with_filename(file)?;
        opts.apply(&mut li);
        let n = self.call(Cmd::MapFile, &mut li)?;
        // The driver returns N both as the value and in li_minor.
        let n = u32::try_from(n).unwrap_or(li.li_minor);
        Ok(Mapping::from_ioctl(n, &li))
    }

    /// `LOFI_MAP_FILE_MINOR`: map `file` at N (see [`Control::map_file`]).
    pub fn map_file_minor(&self, n: u32, file: &Path, opts: MapOptions) -> Result<Mapping, Errno> {
        let mut li = LofiIoctl::with_filename(file)?;
        li.li_minor = n;
        opts.apply(&mut li);
        self.call(Cmd::MapFileMinor, &mut li)?;
        Ok(Mapping::from_ioctl(n, &li))
    }

    /// `LOFI_UNMAP_FILE`: unmap the mapping of `file`; returns its N.
    pub fn unmap_file(&self, file: &Path, force: bool) -> Result<u32, Errno> {
        let mut li = LofiIoctl::with_filename(file)?;
        li.li_force = force.into();
        self.call(Cmd::UnmapFile, &mut li)?;
        Ok(li.li_minor)
    }

    /// `LOFI_UNMAP_FILE_MINOR`: unmap mapping N.
    pub fn unmap_minor(&self, n: u32, force: bool) -> Result<(), Errno> {
        let mut li = LofiIoctl {
            li_minor: n,
            li_force: force.into(),
            ..LofiIoctl::default()
        };
        self.call(Cmd::UnmapFileMinor, &mut li).map(drop)
    }

    /// `LOFI_SET_CAPACITY`: mapping N measures its file again and takes
    /// the size limit `sizelimit` (0: to the end of the file); returns the
    /// mapping as it is now.
    pub fn set_capacity(&self, n: u32, sizelimit: u64) -> Result<Mapping, Errno> {
        let mut li = LofiIoctl {
            li_minor: n,
            li_sizelimit: sizelimit,
            ..LofiIoctl::default()
        };
        self.call(Cmd::SetCapacity, &mut li)?;
        Ok(Mapping::from_ioctl(n, &li))
    }

    /// `LOFI_GET_MINOR`: the mapping of `file`.
    pub fn get_minor(&self, file: &Path) -> Result<Mapping, Errno> {
        let mut li = LofiIoctl::with_filename(file)?;
        self.call(Cmd::GetMinor, &mut li)?;
        Ok(Mapping::from_ioctl(li.li_minor, &li))
    }
}

impl Queries for Control {
    fn max_minor(&self) -> Result<u32, Errno> {
        let mut li = LofiIoctl::default();
        self.call(Cmd::GetMaxminor, &mut li)?;
        Ok(li.li_minor)
    }

    fn get_filename(&self, n: u32) -> Result<Mapping, Errno> {
        let mut li = LofiIoctl {
            li_minor: n,
            ..LofiIoctl::default()
        };
        self.call(Cmd::GetFilename, &mut li)?;
        Ok(Mapping::from_ioctl(n, &li))
    }
}

/// The error for a failed open of the control device.
fn open_error(err: &std::io::Error) -> Error {
    let errno = err.raw_os_error().map(Errno::from_raw);
    match errno {
        Some(Errno::EACCES | Errno::EPERM) => Error::msg(NO_PERMISSION),
        // No node, or a node without a driver behind it.
        Some(e @ (Errno::ENOENT | Errno::ENXIO | Errno::ENODEV)) => Error::errno(
            format!("cannot open {CTL_PATH} (is the lofi module loaded?)"),
            e,
        ),
        _ => Error::io(format!("open: {CTL_PATH}"), err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn open_errors() {
        let e = |code: Errno| open_error(&io::Error::from_raw_os_error(code as i32)).to_string();
        assert_eq!(
            e(Errno::EACCES),
            "you do not have permission to perform that operation."
        );
        assert_eq!(
            e(Errno::EPERM),
            "you do not have permission to perform that operation."
        );
        assert_eq!(
            e(Errno::ENOENT),
            "cannot open /dev/lofictl (is the lofi module loaded?): No such file or directory"
        );
        assert_eq!(e(Errno::EIO), "open: /dev/lofictl: Input/output error");
    }

    #[test]
    fn mapping_from_driver_output() {
        let mut li = LofiIoctl::with_filename(Path::new("/srv/a.img")).unwrap();
        li.li_readonly = 1;
        li.li_devpath[..10].copy_from_slice(b"/dev/lofi4");
        let m = Mapping::from_ioctl(4, &li);
        assert_eq!(
            m,
            Mapping {
                number: 4,
                node: "/dev/lofi4".into(),
                file: "/srv/a.img".into(),
                readonly: true,
                compressed: None,
                labeled: false,
                direct_io: false,
                block_size: 512,
                offset: 0,
                sizelimit: 0,
            }
        );
        // No devpath from the driver: the standard name.
        li.li_devpath = [0; crate::uapi::DEVPATH_LEN];
        li.li_algorithm[..4].copy_from_slice(b"gzip");
        let m = Mapping::from_ioctl(9, &li);
        assert_eq!(m.node, "/dev/lofi9");
        assert_eq!(m.compressed.as_deref(), Some("gzip"));
    }

    #[test]
    fn direct_io_and_block_size_from_driver_output() {
        let mut li = LofiIoctl::with_filename(Path::new("/srv/a.img")).unwrap();
        li.li_flags = FLAG_DIRECT_IO;
        li.li_block_size = 4096;
        let m = Mapping::from_ioctl(1, &li);
        assert!(m.direct_io);
        assert_eq!(m.block_size, 4096);
        assert!(!m.labeled);
        // Flags lofiadm does not know are neither.
        li.li_flags = !(FLAG_DIRECT_IO | FLAG_LABELED);
        li.li_block_size = 512;
        let m = Mapping::from_ioctl(1, &li);
        assert!(!m.direct_io);
        assert!(!m.labeled);
        li.li_flags = FLAG_LABELED;
        let m = Mapping::from_ioctl(1, &li);
        assert!(m.labeled && !m.direct_io);
        assert_eq!(m.block_size, 512);
        // 0 is the default size.
        li.li_block_size = 0;
        assert_eq!(Mapping::from_ioctl(1, &li).block_size, 512);
        // The region, as the driver returns it.
        li.li_offset = 17 << 20;
        li.li_sizelimit = 47 << 20;
        let m = Mapping::from_ioctl(1, &li);
        assert_eq!((m.offset, m.sizelimit), (17 << 20, 47 << 20));
    }

    #[test]
    fn map_options_fill_the_request() {
        let mut li = LofiIoctl::default();
        MapOptions::default().apply(&mut li);
        assert_eq!((li.li_readonly, li.li_flags), (0, 0));
        assert_eq!((li.li_offset, li.li_sizelimit, li.li_block_size), (0, 0, 0));
        MapOptions {
            readonly: true,
            labeled: false,
            direct_io: true,
            region: Region::default(),
        }
        .apply(&mut li);
        assert_eq!((li.li_readonly, li.li_flags), (1, FLAG_DIRECT_IO));
        let mut li = LofiIoctl::default();
        MapOptions {
            labeled: true,
            ..MapOptions::default()
        }
        .apply(&mut li);
        assert_eq!((li.li_readonly, li.li_flags), (0, FLAG_LABELED));
        let mut li = LofiIoctl::default();
        MapOptions {
            readonly: true,
            labeled: true,
            direct_io: true,
            region: Region::default(),
        }
        .apply(&mut li);
        assert_eq!(
            (li.li_readonly, li.li_flags),
            (1, FLAG_DIRECT_IO | FLAG_LABELED)
        );
        let mut li = LofiIoctl::default();
        MapOptions {
            readonly: false,
            labeled: false,
            direct_io: true,
            region: Region {
                offset: 1 << 20,
                sizelimit: 8 << 20,
                sector_size: Some(4096),
            },
        }
        .apply(&mut li);
        assert_eq!((li.li_readonly, li.li_flags), (0, FLAG_DIRECT_IO));
        assert_eq!(
            (li.li_offset, li.li_sizelimit, li.li_block_size),
            (1 << 20, 8 << 20, 4096)
        );
    }
}
