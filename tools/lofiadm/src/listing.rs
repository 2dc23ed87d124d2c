//! Listing all mappings: as the illumos table, or as JSON.

use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use serde_json::json;

use crate::control::{Mapping, Queries};
use crate::device;
use crate::error::Error;

/// Every mapping, in order of N: `LOFI_GET_MAXMINOR`, then
/// `LOFI_GET_FILENAME` for N = 1 .. max, skipping the unmapped (ENXIO).
pub fn collect(ctl: &impl Queries) -> Result<Vec<Mapping>, Error> {
    let max = ctl
        .max_minor()
        .map_err(|e| Error::errno("could not get the number of lofi devices", e))?;
    let mut mappings = Vec::new();
    for n in 1..=max {
        match ctl.get_filename(n) {
            Ok(m) => mappings.push(m),
            Err(Errno::ENXIO) => {}
            Err(e) => {
                return Err(Error::errno(
                    format!("could not get the mapping of {}", device::link_path(n)),
                    e,
                ));
            }
        }
    }
    Ok(mappings)
}

/// A mapping with the names lofiadm prints for it: its device and, if
/// it is labeled, its partitions, each as its link `/dev/lofi/N[pM]` where
/// that leads to the node, else the node (see
/// [`crate::links::Layout::shown`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub mapping: Mapping,
    /// The device as printed, e.g. `/dev/lofi/1`.
    pub device: String,
    /// The partitions as printed, by partition number.
    pub partitions: Vec<String>,
}

/// The Options column: `-`, or a comma-separated list without spaces, as
/// illumos writes it. The order is fixed: first the illumos options in the
/// illumos order, `Compressed(alg)`, `Readonly`, `Labeled`, then the
/// options of lofi on Linux in the order they were added: `DirectIO`, `Offset=N` and `Sizelimit=N` (in
/// bytes, each only when not 0). A new option goes at the end, so that a
/// column read by a script keeps its known prefixes. The sector size is
/// not an option (direct I/O may choose it): `--json` has it.
pub fn options(m: &Mapping) -> String {
    let mut opts = Vec::new();
    if let Some(alg) = &m.compressed {
        opts.push(format!("Compressed({alg})"));
    }
    // The driver makes every compressed mapping read-only; illumos shows
    // it as Compressed(alg) alone.
    if m.readonly && m.compressed.is_none() {
        opts.push("Readonly".to_string());
    }
    if m.labeled {
        opts.push("Labeled".to_string());
    }
    if m.direct_io {
        opts.push("DirectIO".to_string());
    }
    if m.offset != 0 {
        opts.push(format!("Offset={}", m.offset));
    }
    if m.sizelimit != 0 {
        opts.push(format!("Sizelimit={}", m.sizelimit));
    }
    if opts.is_empty() {
        "-".to_string()
    } else {
        opts.join(",")
    }
}

/// The table illumos lofiadm prints, row format `%-20s     %-30s\t%s\n`,
/// with a header row. File names are written as their bytes, as C would,
/// and padded by bytes.
pub fn table(listed: &[Listed]) -> Vec<u8> {
    let mut out = Vec::new();
    row(&mut out, b"Block Device", b"File", b"Options");
    for l in listed {
        row(
            &mut out,
            l.device.as_bytes(),
            l.mapping.file.as_os_str().as_bytes(),
            options(&l.mapping).as_bytes(),
        );
    }
    out
}

fn row(out: &mut Vec<u8>, device: &[u8], file: &[u8], options: &[u8]) {
    padded(out, device, 20);
    out.extend_from_slice(b"     ");
    padded(out, file, 30);
    out.push(b'\t');
    out.extend_from_slice(options);
    out.push(b'\n');
}

/// `%-Ns`: left-aligned in a field of at least `width` bytes.
fn padded(out: &mut Vec<u8>, s: &[u8], width: usize) {
    out.extend_from_slice(s);
    out.resize(out.len() + width.saturating_sub(s.len()), b' ');
}

/// The `--json` listing: an array with one object per mapping, in order
/// of N. The field names are stable (documented in lofiadm(8)); serde_json
/// writes them in sorted order:
///
/// - `device` (string): the block device as printed, `/dev/lofi/N` (or
///   `/dev/lofiN` where that link cannot be made)
/// - `node` (string): its node, `/dev/lofiN`
/// - `number` (integer): N
/// - `file` (string): the backing file as mapped (bytes that are not
///   UTF-8 are replaced by U+FFFD)
/// - `readonly` (boolean)
/// - `compressed` (boolean): whether the file is a compressed image
///   (such a mapping is always read-only)
/// - `algorithm` (string or null): its compression algorithm
/// - `labeled` (boolean): whether it is labeled (has a partition table
///   read)
/// - `partitions` (array of strings): the partitions of a labeled
///   mapping as printed, `/dev/lofi/NpM`, by M; empty for an unlabeled one
/// - `direct_io` (boolean): the driver serves it with direct I/O
/// - `block_size` (integer): the device's logical block size in bytes
/// - `offset` (integer): where the device starts in the file, in bytes
/// - `sizelimit` (integer): the size limit it was mapped with, in bytes
///   (0: to the end of the file)
pub fn json(listed: &[Listed]) -> String {
    let items: Vec<_> = listed
        .iter()
        .map(|l| {
            let m = &l.mapping;
            json!({
                "device": l.device,
                "node": m.node,
                "number": m.number,
                "file": m.file.to_string_lossy(),
                "readonly": m.readonly,
                "compressed": m.compressed.is_some(),
                "algorithm": m.compressed,
                "labeled": m.labeled,
                "partitions": l.partitions,
                "direct_io": m.direct_io,
                "block_size": m.block_size,
                "offset": m.offset,
                "sizelimit": m.sizelimit,
            })
        })
        .collect();
    let mut text = serde_json::Value::Array(items).to_string();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::ffi::OsStr;
    use std::path::PathBuf;

    fn mapping(n: u32, file: &str, readonly: bool) -> Mapping {
        Mapping {
            number: n,
            node: device::node_path(n),
            file: PathBuf::from(file),
            readonly,
            compressed: None,
            labeled: false,
            direct_io: false,
            block_size: 512,
            offset: 0,
            sizelimit: 0,
        }
    }

    /// `m` as listed with its links, `/dev/lofi/N` and, if labeled,
    /// `/dev/lofi/NpM` for each M of `parts`.
    fn listed(m: Mapping, parts: &[u32]) -> Listed {
        let n = m.number;
        Listed {
            device: device::link_path(n),
            partitions: parts.iter().map(|p| format!("/dev/lofi/{n}p{p}")).collect(),
            mapping: m,
        }
    }

    /// A driver with some mappings, and optionally a failing N.
    struct Fake {
        max: Result<u32, Errno>,
        mapped: BTreeMap<u32, Mapping>,
        broken: Option<(u32, Errno)>,
    }

    impl Queries for Fake {
        fn max_minor(&self) -> Result<u32, Errno> {
            self.max
        }
        fn get_filename(&self, n: u32) -> Result<Mapping, Errno> {
            assert!(n >= 1, "asked for N = 0");
            assert!(n <= self.max.unwrap(), "asked beyond the maximum");
            if let Some((_, e)) = self.broken.filter(|&(bad, _)| bad == n) {
                return Err(e);
            }
            self.mapped.get(&n).cloned().ok_or(Errno::ENXIO)
        }
    }

    fn fake(max: u32, mapped: &[Mapping]) -> Fake {
        Fake {
            max: Ok(max),
            mapped: mapped.iter().map(|m| (m.number, m.clone())).collect(),
            broken: None,
        }
    }

    #[test]
    fn collect_walks_every_number_and_skips_unmapped() {
        let ms = [
            mapping(1, "/a", false),
            mapping(5, "/b", true),
            mapping(128, "/c", false),
        ];
        assert_eq!(collect(&fake(128, &ms)).unwrap(), ms);
        assert_eq!(collect(&fake(128, &[])).unwrap(), []);
        assert_eq!(collect(&fake(0, &[])).unwrap(), []);
    }

    #[test]
    fn collect_reports_errors() {
        let mut f = fake(4, &[]);
        f.max = Err(Errno::EINVAL);
        assert_eq!(
            collect(&f).unwrap_err().to_string(),
            "could not get the number of lofi devices: Invalid argument"
        );
        let mut f = fake(4, &[mapping(1, "/a", false)]);
        f.broken = Some((3, Errno::EFAULT));
        assert_eq!(
            collect(&f).unwrap_err().to_string(),
            "could not get the mapping of /dev/lofi/3: Bad address"
        );
    }

    #[test]
    fn options_column() {
        let mut m = mapping(1, "/a", false);
        assert_eq!(options(&m), "-");
        m.readonly = true;
        assert_eq!(options(&m), "Readonly");
        // A compressed mapping is read-only, which is not repeated.
        m.compressed = Some("gzip".into());
        assert_eq!(options(&m), "Compressed(gzip)");
        m.readonly = false;
        assert_eq!(options(&m), "Compressed(gzip)");
        // DirectIO comes after the illumos options.
        m.direct_io = true;
        assert_eq!(options(&m), "Compressed(gzip),DirectIO");
        m.readonly = true;
        assert_eq!(options(&m), "Compressed(gzip),DirectIO");
        m.compressed = None;
        assert_eq!(options(&m), "Readonly,DirectIO");
        m.readonly = false;
        assert_eq!(options(&m), "DirectIO");
        // The block size is not an option.
        m.direct_io = false;
        m.block_size = 4096;
        assert_eq!(options(&m), "-");
        // The region comes last, each part only when set.
        m.offset = 17 << 20;
        assert_eq!(options(&m), "Offset=17825792");
        m.sizelimit = 1 << 20;
        m.readonly = true;
        assert_eq!(options(&m), "Readonly,Offset=17825792,Sizelimit=1048576");
        m.offset = 0;
        m.direct_io = true;
        assert_eq!(options(&m), "Readonly,DirectIO,Sizelimit=1048576");
        // Labeled is an illumos option, after Readonly.
        m.labeled = true;
        assert_eq!(options(&m), "Readonly,Labeled,DirectIO,Sizelimit=1048576");
        m.offset = 512;
        assert_eq!(
            options(&m),
            "Readonly,Labeled,DirectIO,Offset=512,Sizelimit=1048576"
        );
        m.readonly = false;
        m.direct_io = false;
        m.offset = 0;
        m.sizelimit = 0;
        assert_eq!(options(&m), "Labeled");
        m.compressed = Some("gzip".into());
        assert_eq!(options(&m), "Compressed(gzip),Labeled");
    }

    #[test]
    fn table_has_the_illumos_format() {
        let mut dio = mapping(3, "/srv/db.img", false);
        dio.direct_io = true;
        let mut ro_dio = mapping(4, "/srv/ro.img", true);
        ro_dio.direct_io = true;
        let mut labeled = mapping(5, "/srv/disk.img", false);
        labeled.labeled = true;
        let mut no_link = listed(mapping(6, "/srv/user.img", false), &[]);
        no_link.device = device::node_path(6);
        let ms = [
            listed(mapping(1, "/var/tmp/disk.img", false), &[]),
            listed(mapping(2, "/srv/iso/install.iso", true), &[]),
            listed(dio, &[]),
            listed(ro_dio, &[]),
            listed(labeled, &[1, 2]),
            no_link,
            listed(
                mapping(12, "/a/file/name/longer/than/thirty/bytes.img", false),
                &[],
            ),
        ];
        let want = "\
Block Device             File                          \tOptions
/dev/lofi/1              /var/tmp/disk.img             \t-
/dev/lofi/2              /srv/iso/install.iso          \tReadonly
/dev/lofi/3              /srv/db.img                   \tDirectIO
/dev/lofi/4              /srv/ro.img                   \tReadonly,DirectIO
/dev/lofi/5              /srv/disk.img                 \tLabeled
/dev/lofi6               /srv/user.img                 \t-
/dev/lofi/12             /a/file/name/longer/than/thirty/bytes.img\t-
";
        assert_eq!(String::from_utf8(table(&ms)).unwrap(), want);
        assert_eq!(
            String::from_utf8(table(&[])).unwrap(),
            "Block Device             File                          \tOptions\n"
        );
    }

    #[test]
    fn table_keeps_file_name_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let mut m = mapping(1, "", false);
        m.file = PathBuf::from(OsStr::from_bytes(b"/x\xff"));
        let t = table(&[listed(m, &[])]);
        let row = &t[t.iter().position(|&b| b == b'\n').unwrap() + 1..];
        // 20 + 5 bytes, then the 3-byte name padded to 30 bytes.
        assert_eq!(&row[25..29], b"/x\xff ");
        assert_eq!(row[55], b'\t');
    }

    #[test]
    fn json_fields() {
        let mut ro = mapping(2, "/srv/iso/\"quoted\"\\.iso", true);
        ro.compressed = Some("lzma".into());
        let mut dio = mapping(3, "/srv/db.img", false);
        dio.direct_io = true;
        dio.block_size = 4096;
        dio.offset = 1 << 20;
        dio.sizelimit = 8 << 20;
        let mut labeled = mapping(4, "/srv/disk.img", false);
        labeled.labeled = true;
        let mut no_link = listed(mapping(5, "/srv/user.img", false), &[]);
        no_link.device = device::node_path(5);
        let text = json(&[
            listed(mapping(1, "/var/tmp/disk.img", false), &[]),
            listed(ro, &[]),
            listed(dio, &[]),
            listed(labeled, &[1, 2, 10]),
            no_link,
        ]);
        assert!(text.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"device": "/dev/lofi/1", "node": "/dev/lofi1", "number": 1,
                 "file": "/var/tmp/disk.img", "readonly": false, "compressed": false, "algorithm": null,
                 "labeled": false, "partitions": [], "direct_io": false,
                 "block_size": 512, "offset": 0, "sizelimit": 0},
                {"device": "/dev/lofi/2", "node": "/dev/lofi2", "number": 2,
                 "file": "/srv/iso/\"quoted\"\\.iso", "readonly": true, "compressed": true, "algorithm": "lzma",
                 "labeled": false, "partitions": [], "direct_io": false,
                 "block_size": 512, "offset": 0, "sizelimit": 0},
                {"device": "/dev/lofi/3", "node": "/dev/lofi3", "number": 3,
                 "file": "/srv/db.img", "readonly": false, "compressed": false, "algorithm": null,
                 "labeled": false, "partitions": [], "direct_io": true,
                 "block_size": 4096, "offset": 1048576, "sizelimit": 8388608},
                {"device": "/dev/lofi/4", "node": "/dev/lofi4", "number": 4,
                 "file": "/srv/disk.img", "readonly": false, "compressed": false, "algorithm": null,
                 "labeled": true,
                 "partitions": ["/dev/lofi/4p1", "/dev/lofi/4p2", "/dev/lofi/4p10"],
                 "direct_io": false, "block_size": 512, "offset": 0, "sizelimit": 0},
                {"device": "/dev/lofi5", "node": "/dev/lofi5", "number": 5,
                 "file": "/srv/user.img", "readonly": false, "compressed": false, "algorithm": null,
                 "labeled": false, "partitions": [], "direct_io": false,
                 "block_size": 512, "offset": 0, "sizelimit": 0},
            ])
        );
        // The keys in sorted order, as documented.
        let first = text.split('}').next().unwrap();
        assert_eq!(
            first,
            "[{\"algorithm\":null,\"block_size\":512,\"compressed\":false,\"device\":\"/dev/lofi/1\",\
             \"direct_io\":false,\"file\":\"/var/tmp/disk.img\",\"labeled\":false,\
             \"node\":\"/dev/lofi1\",\"number\":1,\"offset\":0,\"partitions\":[],\
             \"readonly\":false,\"sizelimit\":0"
        );
        assert_eq!(json(&[]), "[]\n");
    }

    #[test]
    fn json_replaces_bytes_that_are_not_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let mut m = mapping(1, "", false);
        m.file = PathBuf::from(OsStr::from_bytes(b"/x\xff"));
        let v: serde_json::Value = serde_json::from_str(&json(&[listed(m, &[])])).unwrap();
        assert_eq!(v[0]["file"], "/x\u{fffd}");
    }
}
