//! What lofiadm checks about a file before asking the driver to map it,
//! so that the common mistakes get a specific message rather than the
//! driver's EINVAL. The driver checks all of it again; these checks only
//! choose the words.

use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::control::Region;
use crate::device;
use crate::error::Error;

/// lofi's sector size: a file's size must be a multiple of it.
pub const SECTOR_SIZE: u64 = 512;

/// Check that `file` (an absolute, resolved path) can back a mapping of
/// `region`.
pub fn backing_file(file: &Path, region: Region) -> Result<(), Error> {
    let meta = fs::metadata(file).map_err(|e| Error::io(file.display().to_string(), &e))?;
    let kind = Kind::of(&meta);
    let disk = match kind {
        Kind::BlockDevice => block_device_name(meta.rdev()),
        _ => None,
    };
    judge_kind(file, kind, meta.len(), disk.as_deref(), region.is_default())?;
    // A block device's size is not in its metadata: the driver judges
    // the region against it.
    let size = (kind == Kind::Regular).then_some(meta.len());
    judge_region(file, size, region)
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
    /// The kind of file `meta` describes.
    pub fn of(meta: &Metadata) -> Self {
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
/// The size rule applies to a whole file; see [`judge_region`] for a part.
pub fn judge(file: &Path, kind: Kind, size: u64, disk: Option<&str>) -> Result<(), Error> {
    judge_kind(file, kind, size, disk, true)
}

/// [`judge`], with the size of a whole file checked only if `whole`.
fn judge_kind(
    file: &Path,
    kind: Kind,
    size: u64,
    disk: Option<&str>,
    whole: bool,
) -> Result<(), Error> {
    let name = file.display();
    match kind {
        Kind::Regular if size == 0 => Err(Error::msg(format!("size of {name} is 0"))),
        Kind::Regular if whole && !is_multiple(size, SECTOR_SIZE) => Err(Error::msg(format!(
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

/// The verdict on compressing or uncompressing a file of `kind` and
/// `size` bytes in place (`lofiadm -C`, `-U`): it must be a regular file
/// (it is replaced by a new one) whose size is a multiple of 512, as
/// illumos requires; an empty one is fine (there is nothing to do).
pub fn rewritable(file: &Path, kind: Kind, size: u64) -> Result<(), Error> {
    let name = file.display();
    match kind {
        Kind::Regular if !is_multiple(size, SECTOR_SIZE) => Err(Error::msg(format!(
            "size of {name} is not a multiple of {SECTOR_SIZE}"
        ))),
        Kind::Regular => Ok(()),
        _ => Err(Error::msg(format!("{name} is not a regular file"))),
    }
}

/// Whether `x` is a multiple of `of` (`u64::is_multiple_of`, stable only
/// since Rust 1.87: lofiadm builds with Debian trixie's 1.85).  Zero is
/// the only multiple of zero, so a zero divisor never panics.
fn is_multiple(x: u64, of: u64) -> bool {
    x.checked_rem(of).map_or(x == 0, |r| r == 0)
}

/// The verdict on mapping `region` of `file`, `size` bytes long if known
/// (a regular file): the offset a multiple of 512 inside the file, the
/// limit a multiple of the sector size, the region inside the file and a
/// whole number of sectors, as the driver requires.
pub fn judge_region(file: &Path, size: Option<u64>, region: Region) -> Result<(), Error> {
    let name = file.display();
    let Region {
        offset,
        sizelimit,
        sector_size,
    } = region;
    let sector = u64::from(sector_size.unwrap_or(512));
    let fail = |m: String| Err(Error::msg(m));
    if !is_multiple(offset, SECTOR_SIZE) {
        return fail(format!(
            "offset {offset} is not a multiple of {SECTOR_SIZE}"
        ));
    }
    if !is_multiple(sizelimit, sector) {
        return fail(format!(
            "size limit {sizelimit} is not a multiple of the sector size {sector}"
        ));
    }
    let Some(size) = size else {
        return Ok(());
    };
    if offset >= size {
        return fail(format!(
            "offset {offset} is not inside {name} ({size} bytes)"
        ));
    }
    let rest = size - offset;
    if sizelimit > rest {
        return fail(format!(
            "size limit {sizelimit} from offset {offset} reaches past the end of {name} ({size} bytes)"
        ));
    }
    let len = if sizelimit == 0 { rest } else { sizelimit };
    if !is_multiple(len, sector) {
        return fail(format!(
            "size of the region of {name} ({len} bytes from offset {offset}) is not a multiple of the sector size {sector}"
        ));
    }
    Ok(())
}

/// Whether a block device is a lofi disk or a partition of one: by its
/// kernel name, which holds however the node is named, or failing that by
/// its path (as illumos).
fn is_lofi(file: &Path, disk: Option<&str>) -> bool {
    let by_name = disk.and_then(|d| device::parse_name(d.as_ref())).is_some();
    by_name || device::parse_name(file.as_os_str()).is_some()
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
        assert_eq!(verdict("/dev/lofi2", Kind::BlockDevice, 0, None), itself);
        // A partition of a lofi disk is lofi too.
        assert_eq!(
            verdict("/dev/lofi2p1", Kind::BlockDevice, 0, Some("lofi2p1")),
            itself
        );
        assert_eq!(
            verdict("/tmp/node", Kind::BlockDevice, 0, Some("lofi2p1")),
            itself
        );
        assert_eq!(verdict("/dev/lofi/2p1", Kind::BlockDevice, 0, None), itself);
        assert_eq!(
            verdict("/dev/sda1", Kind::BlockDevice, 0, Some("sda1")),
            Ok(())
        );
    }

    fn region(offset: u64, sizelimit: u64, sector_size: Option<u32>) -> Region {
        Region {
            offset,
            sizelimit,
            sector_size,
        }
    }

    fn region_verdict(size: Option<u64>, r: Region) -> Result<(), String> {
        judge_region(Path::new("/a.img"), size, r).map_err(|e| e.to_string())
    }

    #[test]
    fn regions_inside_the_file() {
        let mib = 1 << 20;
        for (size, r) in [
            (Some(64 * mib), region(0, 0, None)),
            (Some(64 * mib), region(17 * mib, 0, None)),
            (Some(64 * mib), region(17 * mib, 47 * mib, None)),
            (Some(64 * mib), region(mib, 4096, Some(4096))),
            (Some(1000), region(0, 512, None)),
            (Some(mib), region(0, 0, Some(4096))),
            // A block device: the driver knows its size.
            (None, region(1 << 40, 1 << 20, Some(2048))),
        ] {
            assert_eq!(region_verdict(size, r), Ok(()), "{size:?} {r:?}");
        }
    }

    #[test]
    fn regions_refused() {
        let mib = 1 << 20;
        for (size, r, want) in [
            (
                Some(mib),
                region(1000, 0, None),
                "offset 1000 is not a multiple of 512",
            ),
            (
                None,
                region(100, 0, None),
                "offset 100 is not a multiple of 512",
            ),
            (
                Some(mib),
                region(0, 6144, Some(4096)),
                "size limit 6144 is not a multiple of the sector size 4096",
            ),
            (
                Some(mib),
                region(0, 100, None),
                "size limit 100 is not a multiple of the sector size 512",
            ),
            (
                Some(mib),
                region(mib, 0, None),
                "offset 1048576 is not inside /a.img (1048576 bytes)",
            ),
            (
                Some(mib),
                region(512 * 1024, mib, None),
                "size limit 1048576 from offset 524288 reaches past the end of /a.img (1048576 bytes)",
            ),
            (
                Some(mib),
                region(512, 0, Some(4096)),
                "size of the region of /a.img (1048064 bytes from offset 512) is not a multiple of the sector size 4096",
            ),
            (
                Some(1000),
                region(0, 0, Some(1024)),
                "size of the region of /a.img (1000 bytes from offset 0) is not a multiple of the sector size 1024",
            ),
        ] {
            assert_eq!(region_verdict(size, r), Err(want.to_string()), "{r:?}");
        }
    }

    #[test]
    fn rewritable_files() {
        let v = |kind, size| rewritable(Path::new("/a.img"), kind, size).map_err(|e| e.to_string());
        assert_eq!(v(Kind::Regular, 0), Ok(()));
        assert_eq!(v(Kind::Regular, 512), Ok(()));
        assert_eq!(v(Kind::Regular, 1 << 33), Ok(()));
        assert_eq!(
            v(Kind::Regular, 1000),
            Err("size of /a.img is not a multiple of 512".into())
        );
        for kind in [Kind::BlockDevice, Kind::CharDevice, Kind::Other] {
            assert_eq!(v(kind, 4096), Err("/a.img is not a regular file".into()));
        }
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
        let whole = Region::default();
        assert_eq!(backing_file(&img, whole), Ok(()));
        // A region of a file whose size is no multiple of 512.
        fs::write(&img, vec![0u8; 1000]).unwrap();
        let first = Region {
            sizelimit: 512,
            ..whole
        };
        assert_eq!(backing_file(&img, first), Ok(()));
        assert!(
            backing_file(&img, whole)
                .unwrap_err()
                .to_string()
                .contains("not a multiple of 512")
        );
        assert!(
            backing_file(&dir, whole)
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
        assert!(
            backing_file(Path::new("/dev/null"), whole)
                .unwrap_err()
                .to_string()
                .contains("character device")
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
