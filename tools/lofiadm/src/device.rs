//! lofi device names: the illumos `/dev/lofi/N` (a link, see
//! [`crate::links`]), the node itself `/dev/lofiN`, the illumos raw alias
//! `/dev/rlofi/N` (Linux has no raw nodes; it names the same mapping) and
//! the sysfs-style `lofiN`. Partition M of a labeled mapping has the same
//! forms with `pM` appended (`/dev/lofi/NpM`, `/dev/lofiNpM`, `lofiNpM`):
//! those are recognised so that lofiadm can say that a partition is not a
//! mapping, rather than take the name for a file.
//!
//! Like illumos `name_to_minor()`, this looks at the string only: a device
//! may be named before it exists. N (and M) is a plain decimal number with
//! no sign and no leading zero. N = 0 is still a device name (the driver
//! answers it with EINVAL or ENXIO); a number too big for `li_minor` is
//! not.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::uapi::BLOCK_DIR;

/// The prefixes of a device name, longest first where one is the start
/// of another (`/dev/lofi/` before `/dev/lofi`).
const PREFIXES: [&[u8]; 4] = [b"/dev/lofi/", b"/dev/rlofi/", b"/dev/lofi", b"lofi"];

/// What a lofi name stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    /// Mapping N (its disk).
    Disk(u32),
    /// Partition M of mapping N: `(N, M)`.
    Partition(u32, u32),
}

/// What `name` stands for, or `None` if it is not a lofi name.
pub fn parse_name(name: &OsStr) -> Option<Name> {
    let name = name.as_bytes();
    let rest = PREFIXES
        .iter()
        .find_map(|prefix| name.strip_prefix(*prefix))?;
    if let Some(n) = parse_number(rest) {
        return Some(Name::Disk(n));
    }
    // "NpM": N has no 'p' in it, so the first one splits.
    let p = rest.iter().position(|&b| b == b'p')?;
    let n = parse_number(&rest[..p])?;
    let m = parse_number(&rest[p + 1..])?;
    Some(Name::Partition(n, m))
}

/// The mapping number N a device name stands for, or `None` if `name` is
/// not the name of a mapping (a partition's name is not).
pub fn parse(name: &OsStr) -> Option<u32> {
    match parse_name(name)? {
        Name::Disk(n) => Some(n),
        Name::Partition(..) => None,
    }
}

/// Whether `name` looks like an attempt at a device name (`/dev/lofi/...`,
/// `/dev/rlofi/...`, `/dev/lofi` or `lofi` and a digit), so that, when it
/// is not a valid one and not an existing file either, lofiadm says
/// "malformed device name" rather than "No such file or directory".
pub fn looks_like_device(name: &OsStr) -> bool {
    let name = name.as_bytes();
    let digit_after = |prefix: &[u8]| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| rest.first().is_some_and(u8::is_ascii_digit))
    };
    name.starts_with(b"/dev/lofi/")
        || name.starts_with(b"/dev/rlofi/")
        || digit_after(b"/dev/lofi")
        || digit_after(b"lofi")
}

/// The error text for a partition named where a mapping must be: it is
/// named after its disk in the illumos layout, the mapping to use instead.
pub fn not_a_mapping(name: &OsStr, n: u32) -> String {
    format!(
        "{} is a partition of {}, not a mapping",
        name.to_string_lossy(),
        link_path(n)
    )
}

/// The illumos name of mapping `n`, a link to its node: `/dev/lofi/N`.
pub fn link_path(n: u32) -> String {
    format!("{BLOCK_DIR}/{n}")
}

/// The node of mapping `n`, as the driver names it in `li_devpath`:
/// `/dev/lofiN`.
pub fn node_path(n: u32) -> String {
    format!("/dev/{}", disk_name(n))
}

/// The kernel's name of the disk of mapping `n`, in sysfs,
/// `/proc/diskstats` and `/dev`: `lofiN`.
pub fn disk_name(n: u32) -> String {
    format!("lofi{n}")
}

/// The kernel's name of partition `m` of mapping `n`: `lofiNpM`.
pub fn partition_name(n: u32, m: u32) -> String {
    format!("lofi{n}p{m}")
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

    fn name(s: &str) -> Option<Name> {
        parse_name(OsStr::new(s))
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(p("/dev/lofi/1"), Some(1));
        assert_eq!(p("/dev/lofi1"), Some(1));
        assert_eq!(p("/dev/rlofi/1"), Some(1));
        assert_eq!(p("lofi1"), Some(1));
        assert_eq!(p("/dev/lofi/128"), Some(128));
        assert_eq!(p("/dev/lofi128"), Some(128));
        assert_eq!(p("/dev/lofi/65536"), Some(65536));
        assert_eq!(p("lofi4294967295"), Some(u32::MAX));
        // Syntactically a device; the driver refuses it.
        assert_eq!(p("/dev/lofi/0"), Some(0));
        assert_eq!(p("/dev/lofi0"), Some(0));
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
            "/dev/lofi01",
            "/dev/lofi/-1",
            "/dev/lofi/+1",
            "/dev/lofi/ 1",
            "/dev/lofi/4294967296",
            "/dev/lofi4294967296",
            "/dev/lofi//1",
            "/dev/rlofi/",
            "/dev/rlofi/a",
            "/dev/rlofi1",
            "lofi",
            "lofi01",
            "lofi1.img",
            "lofix",
            "/dev/lofictl",
            "/dev/loop0",
            "dev/lofi/1",
            "./lofi1",
            "1",
            "LOFI1",
        ] {
            assert_eq!(name(s), None, "{s:?}");
        }
        assert_eq!(parse(OsStr::from_bytes(b"/dev/lofi/1\xff")), None);
    }

    #[test]
    fn partitions_are_not_mappings() {
        for (s, n, m) in [
            ("/dev/lofi/1p1", 1, 1),
            ("/dev/lofi1p2", 1, 2),
            ("lofi12p3", 12, 3),
            ("/dev/rlofi/4p15", 4, 15),
            ("/dev/lofi/7p0", 7, 0),
        ] {
            assert_eq!(name(s), Some(Name::Partition(n, m)), "{s:?}");
            assert_eq!(p(s), None, "{s:?}");
        }
        for s in [
            "/dev/lofi/1p",
            "/dev/lofi/p1",
            "/dev/lofi/1p01",
            "/dev/lofi01p1",
            "/dev/lofi/1p1p1",
            "/dev/lofi/1q1",
            "lofi1p1x",
            "/dev/lofi/1P1",
        ] {
            assert_eq!(name(s), None, "{s:?}");
        }
        assert_eq!(
            not_a_mapping(OsStr::new("/dev/lofi1p2"), 1),
            "/dev/lofi1p2 is a partition of /dev/lofi/1, not a mapping"
        );
    }

    #[test]
    fn device_like_names() {
        for s in [
            "/dev/lofi/x",
            "/dev/lofi/",
            "/dev/rlofi/01",
            "/dev/lofi1x",
            "/dev/lofi01",
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
            "/dev/lofi",
            "./lofi1",
        ] {
            assert!(!looks_like_device(OsStr::new(s)), "{s:?}");
        }
    }

    #[test]
    fn names_of_mapping_n() {
        assert_eq!(link_path(3), "/dev/lofi/3");
        assert_eq!(node_path(3), "/dev/lofi3");
        assert_eq!(disk_name(3), "lofi3");
        assert_eq!(partition_name(3, 2), "lofi3p2");
        assert_eq!(p(&link_path(42)), Some(42));
        assert_eq!(p(&disk_name(42)), Some(42));
        assert_eq!(p(&node_path(42)), Some(42));
        assert_eq!(name(&partition_name(42, 7)), Some(Name::Partition(42, 7)));
    }
}
