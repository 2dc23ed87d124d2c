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
                    format!("could not get the mapping of {}", device::node_path(n)),
                    e,
                ));
            }
        }
    }
    Ok(mappings)
}

/// The Options column: `-`, or a comma-separated list without spaces, as
/// illumos writes it. The order is fixed: first the illumos options in the
/// illumos order, `Compressed(alg)`, `Readonly` (and `Labeled` once the
/// driver has labeled mappings), then the options of lofi on Linux in the
/// order they were added: `DirectIO`, `Offset=N` and `Sizelimit=N` (in
/// bytes, each only when not 0). A new option goes at the end, so that a
/// column read by a script keeps its known prefixes. The sector size is
/// not an option (direct I/O may choose it): `--json` has it.
pub fn options(m: &Mapping) -> String {
    let mut opts = Vec::new();
    if let Some(alg) = &m.compressed {
        opts.push(format!("Compressed({alg})"));
    }
    if m.readonly {
        opts.push("Readonly".to_string());
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
pub fn table(mappings: &[Mapping]) -> Vec<u8> {
    let mut out = Vec::new();
    row(&mut out, b"Block Device", b"File", b"Options");
    for m in mappings {
        row(
            &mut out,
            m.device.as_bytes(),
            m.file.as_os_str().as_bytes(),
            options(m).as_bytes(),
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
/// of N. The field names are stable (documented in lofiadm(8)):
///
/// - `device` (string): the block device, `/dev/lofi/N`
/// - `number` (integer): N
/// - `file` (string): the backing file as mapped (bytes that are not
///   UTF-8 are replaced by U+FFFD)
/// - `readonly` (boolean)
/// - `compressed` (string or null): the compression algorithm
/// - `labeled` (boolean): always false until lofi supports labels
/// - `direct_io` (boolean): the driver serves it with direct I/O
/// - `block_size` (integer): the device's logical block size in bytes
/// - `offset` (integer): where the device starts in the file, in bytes
/// - `sizelimit` (integer): the size limit it was mapped with, in bytes
///   (0: to the end of the file)
pub fn json(mappings: &[Mapping]) -> String {
    let items: Vec<_> = mappings
        .iter()
        .map(|m| {
            json!({
                "device": m.device,
                "number": m.number,
                "file": m.file.to_string_lossy(),
                "readonly": m.readonly,
                "compressed": m.compressed,
                "labeled": false,
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
            device: device::node_path(n),
            file: PathBuf::from(file),
            readonly,
            compressed: None,
            direct_io: false,
            block_size: 512,
            offset: 0,
            sizelimit: 0,
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
            if let Some((bad, e)) = self.broken
                && bad == n
            {
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
        m.compressed = Some("gzip".into());
        assert_eq!(options(&m), "Compressed(gzip),Readonly");
        m.readonly = false;
        assert_eq!(options(&m), "Compressed(gzip)");
        // DirectIO comes after the illumos options.
        m.direct_io = true;
        assert_eq!(options(&m), "Compressed(gzip),DirectIO");
        m.readonly = true;
        assert_eq!(options(&m), "Compressed(gzip),Readonly,DirectIO");
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
    }

    #[test]
    fn table_has_the_illumos_format() {
        let mut dio = mapping(3, "/srv/db.img", false);
        dio.direct_io = true;
        let mut ro_dio = mapping(4, "/srv/ro.img", true);
        ro_dio.direct_io = true;
        let ms = [
            mapping(1, "/var/tmp/disk.img", false),
            mapping(2, "/srv/iso/install.iso", true),
            dio,
            ro_dio,
            mapping(12, "/a/file/name/longer/than/thirty/bytes.img", false),
        ];
        let want = "\
Block Device             File                          \tOptions
/dev/lofi/1              /var/tmp/disk.img             \t-
/dev/lofi/2              /srv/iso/install.iso          \tReadonly
/dev/lofi/3              /srv/db.img                   \tDirectIO
/dev/lofi/4              /srv/ro.img                   \tReadonly,DirectIO
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
        let t = table(&[m]);
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
        let text = json(&[mapping(1, "/var/tmp/disk.img", false), ro, dio]);
        assert!(text.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"device": "/dev/lofi/1", "number": 1, "file": "/var/tmp/disk.img",
                 "readonly": false, "compressed": null, "labeled": false,
                 "direct_io": false, "block_size": 512, "offset": 0, "sizelimit": 0},
                {"device": "/dev/lofi/2", "number": 2, "file": "/srv/iso/\"quoted\"\\.iso",
                 "readonly": true, "compressed": "lzma", "labeled": false,
                 "direct_io": false, "block_size": 512, "offset": 0, "sizelimit": 0},
                {"device": "/dev/lofi/3", "number": 3, "file": "/srv/db.img",
                 "readonly": false, "compressed": null, "labeled": false,
                 "direct_io": true, "block_size": 4096, "offset": 1048576,
                 "sizelimit": 8388608},
            ])
        );
        assert_eq!(json(&[]), "[]\n");
    }

    #[test]
    fn json_replaces_bytes_that_are_not_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let mut m = mapping(1, "", false);
        m.file = PathBuf::from(OsStr::from_bytes(b"/x\xff"));
        let v: serde_json::Value = serde_json::from_str(&json(&[m])).unwrap();
        assert_eq!(v[0]["file"], "/x\u{fffd}");
    }
}
