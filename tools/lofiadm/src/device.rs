//! lofi device names: `/dev/lofi/N`, its illumos raw alias `/dev/rlofi/N`
//! (Linux has no raw nodes; it names the same mapping) and the sysfs-style
//! `lofiN`.
//!
//! Like illumos `name_to_minor()`, this looks at the string only: a device
//! may be named before it exists. N is a plain decimal number with no
//! sign and no leading zero. N = 0 is still a device name (the driver
//! answers it with EINVAL or ENXIO); a number too big for `li_minor` is
//! not.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::uapi::BLOCK_DIR;

const BLOCK_PREFIX: &[u8] = b"/dev/lofi/";
const RAW_PREFIX: &[u8] = b"/dev/rlofi/";
const SYSFS_PREFIX: &[u8] = b"lofi";

/// The mapping number N a device name stands for, or `None` if `name` is
/// not a lofi device name.
pub fn parse(name: &OsStr) -> Option<u32> {
    let name = name.as_bytes();
    [BLOCK_PREFIX, RAW_PREFIX, SYSFS_PREFIX]
        .iter()
        .find_map(|prefix| name.strip_prefix(*prefix))
        .and_then(parse_number)
}

/// Whether `name` looks like an attempt at a device name (`/dev/lofi/...`,
/// `/dev/rlofi/...`, `lofi` and a digit), so that, when it is not a valid
/// one and not an existing file either, lofiadm says "malformed device
/// name" rather than "No such file or directory".
pub fn looks_like_device(name: &OsStr) -> bool {
    let name = name.as_bytes();
    name.starts_with(BLOCK_PREFIX)
        || name.starts_with(RAW_PREFIX)
        || name
            .strip_prefix(SYSFS_PREFIX)
            .is_some_and(|rest| rest.first().is_some_and(u8::is_ascii_digit))
}

/// The block device node of mapping `n`: `/dev/lofi/N`.
pub fn node_path(n: u32) -> String {
    format!("{BLOCK_DIR}/{n}")
}

/// The disk's name in sysfs and `/proc/diskstats`: `lofiN`.
pub fn disk_name(n: u32) -> String {
    format!("lofi{n}")
}

fn parse_number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    // All ASCII digits, so valid UTF-8; parse() rejects overflow.
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn p(s: &str) -> Option<u32> {
        parse(OsStr::new(s))
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(p("/dev/lofi/1"), Some(1));
        assert_eq!(p("/dev/rlofi/1"), Some(1));
        assert_eq!(p("lofi1"), Some(1));
        assert_eq!(p("/dev/lofi/128"), Some(128));
        assert_eq!(p("/dev/lofi/65536"), Some(65536));
        assert_eq!(p("lofi4294967295"), Some(u32::MAX));
        // Syntactically a device; the driver refuses it.
        assert_eq!(p("/dev/lofi/0"), Some(0));
        assert_eq!(p("lofi0"), Some(0));
    }

    #[test]
    fn rejected_forms() {
        for s in [
            "",
            "/dev/lofi/",
            "/dev/lofi",
            "/dev/lofi/x",
            "/dev/lofi/1x",
            "/dev/lofi/1/",
            "/dev/lofi/01",
            "/dev/lofi/-1",
            "/dev/lofi/+1",
            "/dev/lofi/ 1",
            "/dev/lofi/4294967296",
            "/dev/lofi//1",
            "/dev/rlofi/",
            "/dev/rlofi/a",
            "lofi",
            "lofi01",
            "lofi1.img",
            "lofix",
            "/dev/lofictl",
            "/dev/loop0",
            "dev/lofi/1",
            "/dev/lofi1",
            "./lofi1",
            "1",
            "LOFI1",
        ] {
            assert_eq!(p(s), None, "{s:?}");
        }
        assert_eq!(parse(OsStr::from_bytes(b"/dev/lofi/1\xff")), None);
    }

    #[test]
    fn device_like_names() {
        for s in [
            "/dev/lofi/x",
            "/dev/lofi/",
            "/dev/rlofi/01",
            "lofi1x",
            "lofi0",
        ] {
            assert!(looks_like_device(OsStr::new(s)), "{s:?}");
        }
        for s in [
            "lofi",
            "lofix",
            "lofi.img",
            "disk.img",
            "/dev/loop0",
            "/dev/lofictl",
            "./lofi1",
        ] {
            assert!(!looks_like_device(OsStr::new(s)), "{s:?}");
        }
    }

    #[test]
    fn names_of_mapping_n() {
        assert_eq!(node_path(3), "/dev/lofi/3");
        assert_eq!(disk_name(3), "lofi3");
        assert_eq!(p(&node_path(42)), Some(42));
        assert_eq!(p(&disk_name(42)), Some(42));
    }
}
