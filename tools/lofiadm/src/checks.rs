//! What lofiadm checks about a file before asking the driver to map it,
//! so that the common mistakes get a specific message rather than the
//! driver's EINVAL. The driver checks all of it again; these checks only
//! choose the words.

use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::device;
use crate::error::Error;

/// lofi's sector size: a file's size must be a multiple of it.
pub const SECTOR_SIZE: u64 = 512;

/// Check that `file` (an absolute, resolved path) can back a mapping.
pub fn backing_file(file: &Path) -> Result<(), Error> {
    let meta = fs::metadata(file).map_err(|e| Error::io(file.display().to_string(), &e))?;
    let kind = Kind::of(&meta);
    let disk = match kind {
        Kind::BlockDevice => block_device_name(meta.rdev()),
        _ => None,
    };
    judge(file, kind, meta.len(), disk.as_deref())
}

/// What a path names, as far as lofi is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Regular,
    BlockDevice,
    CharDevice,
    Other,
}

impl Kind {
    fn of(meta: &Metadata) -> Self {
        let t = meta.file_type();
        if t.is_file() {
            Kind::Regular
        } else if t.is_block_device() {
            Kind::BlockDevice
        } else if t.is_char_device() {
            Kind::CharDevice
        } else {
            Kind::Other
        }
    }
}

/// The verdict on a file of `kind` and `size` bytes; `disk` is the kernel
/// name of a block device (e.g. `lofi3`, `sda`) when known.
pub fn judge(file: &Path, kind: Kind, size: u64, disk: Option<&str>) -> Result<(), Error> {
    let name = file.display();
    match kind {
        Kind::Regular if size == 0 => Err(Error::msg(format!("size of {name} is 0"))),
        Kind::Regular if !size.is_multiple_of(SECTOR_SIZE) => Err(Error::msg(format!(
            "size of {name} is not a multiple of {SECTOR_SIZE}"
        ))),
        Kind::Regular => Ok(()),
        Kind::BlockDevice if is_lofi(file, disk) => Err(Error::msg("cannot use lofi on itself")),
        Kind::BlockDevice => Ok(()),
        // illumos maps character devices; Linux lofi does not.
        Kind::CharDevice => Err(Error::msg(format!(
            "{name} is a character device: lofi maps regular files and block devices only"
        ))),
        Kind::Other => Err(Error::msg(format!(
            "{name} is not a regular file, block, or character device"
        ))),
    }
}

/// Whether a block device is a lofi disk: by its kernel name, which holds
/// however the node is named, or failing that by its path (as illumos).
fn is_lofi(file: &Path, disk: Option<&str>) -> bool {
    let by_name = disk.and_then(|d| device::parse(d.as_ref())).is_some();
    by_name || device::parse(file.as_os_str()).is_some()
}

/// The kernel name of the block device `rdev` (`/sys/dev/block/M:m` links
/// to its sysfs directory, named after the disk or partition).
fn block_device_name(rdev: u64) -> Option<String> {
    let link = format!(
        "/sys/dev/block/{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    let target = fs::read_link(link).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(path: &str, kind: Kind, size: u64, disk: Option<&str>) -> Result<(), String> {
        judge(Path::new(path), kind, size, disk).map_err(|e| e.to_string())
    }

    #[test]
    fn regular_files() {
        assert_eq!(verdict("/a.img", Kind::Regular, 512, None), Ok(()));
        assert_eq!(verdict("/a.img", Kind::Regular, 1 << 30, None), Ok(()));
        assert_eq!(
            verdict("/a.img", Kind::Regular, 1000, None),
            Err("size of /a.img is not a multiple of 512".into())
        );
        assert_eq!(
            verdict("/a.img", Kind::Regular, 511, None),
            Err("size of /a.img is not a multiple of 512".into())
        );
        assert_eq!(
            verdict("/a.img", Kind::Regular, 0, None),
            Err("size of /a.img is 0".into())
        );
    }

    #[test]
    fn block_devices() {
        assert_eq!(
            verdict("/dev/sda", Kind::BlockDevice, 0, Some("sda")),
            Ok(())
        );
        assert_eq!(verdict("/dev/loop0", Kind::BlockDevice, 0, None), Ok(()));
        let itself = Err("cannot use lofi on itself".to_string());
        assert_eq!(
            verdict("/dev/lofi/2", Kind::BlockDevice, 0, Some("lofi2")),
            itself
        );
        // Another node for the same disk is found by its kernel name.
        assert_eq!(
            verdict("/tmp/node", Kind::BlockDevice, 0, Some("lofi2")),
            itself
        );
        // Without sysfs, by the path as illumos does.
        assert_eq!(verdict("/dev/lofi/2", Kind::BlockDevice, 0, None), itself);
    }

    #[test]
    fn other_kinds() {
        assert_eq!(
            verdict("/dev/null", Kind::CharDevice, 0, None),
            Err(
                "/dev/null is a character device: lofi maps regular files and block devices only"
                    .into()
            )
        );
        assert_eq!(
            verdict("/tmp", Kind::Other, 4096, None),
            Err("/tmp is not a regular file, block, or character device".into())
        );
    }

    #[test]
    fn real_files() {
        let dir = std::env::temp_dir().join(format!("lofiadm-checks-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let img = dir.join("img");
        fs::write(&img, vec![0u8; 1024]).unwrap();
        assert_eq!(backing_file(&img), Ok(()));
        fs::write(&img, vec![0u8; 1000]).unwrap();
        assert!(
            backing_file(&img)
                .unwrap_err()
                .to_string()
                .contains("not a multiple of 512")
        );
        assert!(
            backing_file(&dir)
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
        assert!(
            backing_file(Path::new("/dev/null"))
                .unwrap_err()
                .to_string()
                .contains("character device")
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
