//! The commands: map, unmap, resize, compress or uncompress a file,
//! query one, list all.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::checks;
use crate::cli::Command;
use crate::control::{Access, Control, MapOptions, Mapping, Queries, Region};
use crate::device::{self, Name};
use crate::error::{Error, NO_PERMISSION};
use crate::image::format::{
    Algorithm, DEFAULT_SEGMENT_SIZE, MIN_SEGMENT_SIZE, segment_size_is_valid,
};
use crate::image::rewrite::{self, Operation};
use crate::links::Layout;
use crate::listing::{self, Listed};
use crate::resolve;
use crate::size;
use crate::uapi::CTL_PATH;
use crate::wait;

/// How long an unmap without -f retries while the device is busy. udev
/// opens a new or just-written disk briefly to probe it (blkid), so an
/// unmap right after a map, a mkfs or an umount can meet EBUSY from a
/// user that is about to go away; a device that stays open (mounted,
/// say) still fails, after this long.
pub const BUSY_RETRY: Duration = Duration::from_secs(5);
const BUSY_POLL: Duration = Duration::from_millis(50);

/// Run `cmd`, writing its normal output to `out` and its warnings (of a
/// command that succeeds nonetheless) to `warn`.
pub fn run(cmd: &Command, out: &mut impl Write, warn: &mut impl Write) -> Result<(), Error> {
    let layout = Layout::system();
    match cmd {
        Command::Map {
            file,
            device,
            readonly,
            labeled,
            direct_io,
            region,
        } => {
            let opts = MapOptions {
                readonly: *readonly,
                labeled: *labeled,
                direct_io: *direct_io,
                region: *region,
            };
            map(&layout, file, device.as_deref(), opts, out, warn)
        }
        Command::Unmap { target, force } => unmap(target, *force),
        Command::Resize { target, sizelimit } => resize(target, *sizelimit),
        Command::Compress {
            file,
            algorithm,
            segment_size,
        } => {
            let op = compress_operation(algorithm, segment_size.as_deref())?;
            rewrite(file, op, warn)
        }
        Command::Uncompress { file } => rewrite(file, Operation::Uncompress, warn),
        Command::Query { target } => query(&layout, target, out),
        Command::List { json } => list(&layout, *json, out),
    }
}

/// What a `file | device` operand names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Mapping N, named as the user wrote it.
    Device { n: u32, name: String },
    /// A backing file, resolved to an absolute path.
    File(PathBuf),
}

/// Decide whether `arg` is a device or a file. Device names win (as on
/// illumos); a partition's name is refused, as it is not a mapping; a
/// name that looks like a device but is neither a valid one nor an
/// existing file (other than a directory) is "malformed"; anything else
/// is a file, which need not exist any more (see [`resolve::lenient`]).
pub fn classify(arg: &OsStr) -> Result<Target, Error> {
    match device::parse_name(arg) {
        Some(Name::Disk(n)) => {
            return Ok(Target::Device {
                n,
                name: arg.to_string_lossy().into_owned(),
            });
        }
        Some(Name::Partition(n, _)) => return Err(Error::msg(device::not_a_mapping(arg, n))),
        None => {}
    }
    // A directory cannot be mapped: "/dev/lofi/" is a bad device name.
    let is_file = fs::metadata(arg).is_ok_and(|m| !m.is_dir());
    if device::looks_like_device(arg) && !is_file {
        return Err(malformed(arg));
    }
    resolve::lenient(arg).map(Target::File)
}

fn malformed(name: &OsStr) -> Error {
    Error::msg(format!("malformed device name {}", name.to_string_lossy()))
}

/// The error for a failed map or unmap command. EPERM from these means
/// the control device is not open for writing.
fn change_error(message: String, errno: Errno) -> Error {
    match errno {
        Errno::EPERM => Error::msg(NO_PERMISSION),
        e => Error::errno(message, e),
    }
}

/// The warning for a mapping of `file` made with `opts` that lacks what
/// was asked for: the driver maps a file that cannot do direct I/O with
/// buffered I/O rather than failing, and the map command succeeds.
pub fn map_warning(file: &Path, opts: MapOptions, mapping: &Mapping) -> Option<String> {
    (opts.direct_io && !mapping.direct_io).then(|| {
        format!(
            "{}: direct I/O is not available; mapped with buffered I/O",
            file.display()
        )
    })
}

// With --direct-io, a driver that predates direct I/O answers EINVAL (an
// unknown li_flags bit): that is reported like any refusal, not retried
// without the flag. The user asked for direct I/O, EINVAL has other
// causes too, and the ABI refuses unknown flags precisely so that a
// caller never gets a different mapping than it asked for unawares.
fn map(
    layout: &Layout,
    file: &OsStr,
    device: Option<&OsStr>,
    opts: MapOptions,
    out: &mut impl Write,
    warn: &mut impl Write,
) -> Result<(), Error> {
    let n = match device {
        Some(d) => Some(match device::parse_name(d) {
            Some(Name::Disk(n)) => n,
            Some(Name::Partition(n, _)) => return Err(Error::msg(device::not_a_mapping(d, n))),
            None => return Err(malformed(d)),
        }),
        None => None,
    };
    let path = resolve::existing(file)?;
    checks::backing_file(&path, opts.region)?;
    let ctl = Control::open(Access::ReadWrite)?;
    let name = path.display();
    let mapping = match (n, device) {
        (Some(n), Some(d)) => ctl.map_file_minor(n, &path, opts).map_err(|e| {
            change_error(
                format!("could not map file {name} to {}", d.to_string_lossy()),
                e,
            )
        }),
        _ => ctl
            .map_file(&path, opts)
            .map_err(|e| change_error(format!("could not map file {name}"), e)),
    }?;
    if let Some(warning) = map_warning(&path, opts, &mapping) {
        // A warning that cannot be written does not undo the mapping.
        let _ = writeln!(warn, "lofiadm: {warning}");
    }
    let n = mapping.number;
    wait::for_node(layout, n, &mapping.node, wait::NODE_TIMEOUT)?;
    if mapping.labeled {
        // Those still missing get their links all the same: a link that
        // leads nowhere yet is right once udev has made the node.
        wait::for_partitions(layout, n, wait::PARTITION_TIMEOUT);
    }
    let listed = named(layout, mapping);
    if device.is_none() {
        writeln!(out, "{}", listed.device).map_err(|e| Error::io("write error", &e))?;
    }
    Ok(())
}

/// `mapping` with the names to print: its links are made first if they
/// are missing or wrong (see [`Layout::ensure`]). A user who may not make
/// them (not root, and no udev rule) gets the nodes' names instead, so
/// the failure is no error.
pub fn named(layout: &Layout, mapping: Mapping) -> Listed {
    let n = mapping.number;
    let _ = layout.ensure(n, mapping.labeled);
    let partitions = if mapping.labeled {
        layout
            .partitions(n)
            .into_iter()
            .map(|m| layout.shown(Name::Partition(n, m)))
            .collect()
    } else {
        Vec::new()
    };
    Listed {
        device: layout.shown(Name::Disk(n)),
        partitions,
        mapping,
    }
}

fn unmap(target: &OsStr, force: bool) -> Result<(), Error> {
    let target = classify(target)?;
    let ctl = Control::open(Access::ReadWrite)?;
    let deadline = Instant::now() + BUSY_RETRY;
    loop {
        let result = match &target {
            Target::Device { n, .. } => ctl.unmap_minor(*n, force),
            Target::File(path) => ctl.unmap_file(path, force).map(drop),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(Errno::EBUSY) if !force && Instant::now() < deadline => sleep(BUSY_POLL),
            Err(e) => {
                let message = match &target {
                    Target::Device { name, .. } => format!("could not unmap device {name}"),
                    Target::File(path) => format!("could not unmap file {}", path.display()),
                };
                return Err(change_error(message, e));
            }
        }
    }
}

/// `--resize`: the mapping of `target` measures its file again, keeping
/// its size limit unless `sizelimit` gives a new one. The driver measures
/// the file itself, under its lock; its EINVAL is explained with the map
/// rules against the file as it is now (see [`resize_refused`]).
fn resize(target: &OsStr, sizelimit: Option<u64>) -> Result<(), Error> {
    let target = classify(target)?;
    let ctl = Control::open(Access::ReadWrite)?;
    let (mapping, name) = match &target {
        Target::Device { n, name } => (
            ctl.get_filename(*n)
                .map_err(|e| Error::errno(format!("could not find filename for {name}"), e))?,
            name.clone(),
        ),
        Target::File(path) => (
            ctl.get_minor(path).map_err(|e| {
                Error::errno(format!("could not find device for {}", path.display()), e)
            })?,
            path.display().to_string(),
        ),
    };
    let limit = sizelimit.unwrap_or(mapping.sizelimit);
    ctl.set_capacity(mapping.number, limit)
        .map(drop)
        .map_err(|e| match e {
            Errno::EINVAL => resize_refused(&name, &mapping, limit),
            Errno::EROFS => Error::errno(
                format!("could not resize {name}: the mapping is read-only"),
                e,
            ),
            e => change_error(format!("could not resize {name}"), e),
        })
}

/// Why the driver refused to resize `mapping` to the size limit `limit`:
/// the map rules, judged against its file as it is now (a block device's
/// size is not in its metadata: then the rules alone).
fn resize_refused(name: &str, mapping: &Mapping, limit: u64) -> Error {
    let size = fs::metadata(&mapping.file)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let region = Region {
        offset: mapping.offset,
        sizelimit: limit,
        sector_size: Some(mapping.block_size),
    };
    let why = match checks::judge_region(&mapping.file, size, region) {
        Err(e) => e.to_string(),
        Ok(()) => format!(
            "{} holds no such region in whole sectors",
            mapping.file.display()
        ),
    };
    Error::errno(format!("could not resize {name}: {why}"), Errno::EINVAL)
}

/// The `-C` operation for the algorithm and segment size as given, or
/// the illumos message for an invalid one.
pub fn compress_operation(algorithm: &str, segment_size: Option<&str>) -> Result<Operation, Error> {
    let algorithm = Algorithm::from_name(algorithm)
        .ok_or_else(|| Error::msg(format!("invalid algorithm name: {algorithm}")))?;
    let segment_size = match segment_size {
        None => DEFAULT_SEGMENT_SIZE,
        Some(text) => size::parse_illumos(text)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| segment_size_is_valid(n))
            .ok_or_else(|| {
                Error::msg(format!(
                    "segment size {text} is invalid or not a multiple of minimum block size {MIN_SEGMENT_SIZE}"
                ))
            })?,
    };
    Ok(Operation::Compress {
        algorithm,
        segment_size,
    })
}

/// `-C` and `-U`: replace `file` by its other form, unless it is mapped.
fn rewrite(file: &OsStr, op: Operation, warn: &mut impl Write) -> Result<(), Error> {
    let path = resolve::existing(file)?;
    ensure_unmapped(&path, op)?;
    rewrite::in_place(&path, op, warn)
}

/// Refuse a file that lofi has mapped: lofi would read it while it is
/// replaced. Without the control device (no lofi here) nothing can be
/// mapped; a file the driver does not find (any error, as illumos
/// `name_to_minor` takes it) is not mapped.
fn ensure_unmapped(path: &Path, op: Operation) -> Result<(), Error> {
    if !Path::new(CTL_PATH).exists() {
        return Ok(());
    }
    let ctl = Control::open(Access::ReadOnly)?;
    match ctl.get_minor(path) {
        Ok(_) => Err(Error::msg(format!(
            "{} must be unmapped before {}",
            path.display(),
            op.verb()
        ))),
        Err(_) => Ok(()),
    }
}

fn query(layout: &Layout, target: &OsStr, out: &mut impl Write) -> Result<(), Error> {
    let target = classify(target)?;
    let ctl = Control::open(Access::ReadOnly)?;
    let line = match &target {
        Target::Device { n, name } => {
            let m = ctl
                .get_filename(*n)
                .map_err(|e| Error::errno(format!("could not find filename for {name}"), e))?;
            m.file.into_os_string().into_vec()
        }
        Target::File(path) => {
            let m = ctl.get_minor(path).map_err(|e| {
                Error::errno(format!("could not find device for {}", path.display()), e)
            })?;
            named(layout, m).device.into_bytes()
        }
    };
    write_line(out, &line)
}

fn list(layout: &Layout, json: bool, out: &mut impl Write) -> Result<(), Error> {
    let ctl = Control::open(Access::ReadOnly)?;
    let mappings: Vec<Listed> = listing::collect(&ctl)?
        .into_iter()
        .map(|m| named(layout, m))
        .collect();
    let text = if json {
        listing::json(&mappings).into_bytes()
    } else {
        listing::table(&mappings)
    };
    out.write_all(&text)
        .map_err(|e| Error::io("write error", &e))
}

fn write_line(out: &mut impl Write, bytes: &[u8]) -> Result<(), Error> {
    out.write_all(bytes)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| Error::io("write error", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Result<Target, String> {
        classify(OsStr::new(s)).map_err(|e| e.to_string())
    }

    fn mapping(direct_io: bool) -> Mapping {
        Mapping {
            number: 1,
            node: "/dev/lofi1".into(),
            file: "/srv/a.img".into(),
            readonly: false,
            compressed: None,
            labeled: false,
            direct_io,
            block_size: 512,
            offset: 0,
            sizelimit: 0,
        }
    }

    #[test]
    fn compress_operations() {
        let op = |a: &str, s: Option<&str>| compress_operation(a, s).map_err(|e| e.to_string());
        assert_eq!(
            op("gzip", None),
            Ok(Operation::Compress {
                algorithm: Algorithm::Gzip,
                segment_size: 131072
            })
        );
        for (text, n) in [
            ("512", 512),
            ("1b", 512),
            ("64k", 65536),
            ("8m", 8 << 20),
            ("16B", 8192),
        ] {
            assert_eq!(
                op("lz4", Some(text)),
                Ok(Operation::Compress {
                    algorithm: Algorithm::Lz4,
                    segment_size: n
                }),
                "{text}"
            );
        }
        for a in Algorithm::ALL {
            assert!(op(a.name(), None).is_ok());
        }
        assert_eq!(
            op("bzip2", None),
            Err("invalid algorithm name: bzip2".into())
        );
        assert_eq!(op("", Some("512")), Err("invalid algorithm name: ".into()));
        for bad in [
            "3000",
            "256",
            "16m",
            "1g",
            "0",
            "x",
            "",
            "4096x",
            "99999999999g",
        ] {
            assert_eq!(
                op("gzip", Some(bad)),
                Err(format!(
                    "segment size {bad} is invalid or not a multiple of minimum block size 512"
                )),
                "{bad}"
            );
        }
    }

    #[test]
    fn direct_io_refused_is_a_warning() {
        let file = Path::new("/srv/a.img");
        let dio = MapOptions {
            direct_io: true,
            ..MapOptions::default()
        };
        assert_eq!(
            map_warning(file, dio, &mapping(false)).as_deref(),
            Some("/srv/a.img: direct I/O is not available; mapped with buffered I/O")
        );
        assert_eq!(map_warning(file, dio, &mapping(true)), None);
        let buffered = MapOptions::default();
        assert_eq!(map_warning(file, buffered, &mapping(false)), None);
        // Not asked for, yet given (no driver does): nothing to warn about.
        assert_eq!(map_warning(file, buffered, &mapping(true)), None);
    }

    #[test]
    fn device_names_are_devices() {
        for (s, n) in [
            ("/dev/lofi/1", 1),
            ("/dev/rlofi/1", 1),
            ("lofi7", 7),
            ("/dev/lofi/0", 0),
        ] {
            assert_eq!(c(s), Ok(Target::Device { n, name: s.into() }), "{s}");
        }
    }

    #[test]
    fn partitions_are_not_mappings() {
        for (s, disk) in [
            ("/dev/lofi/1p1", "/dev/lofi/1"),
            ("/dev/lofi2p3", "/dev/lofi/2"),
            ("lofi12p1", "/dev/lofi/12"),
            ("/dev/rlofi/4p2", "/dev/lofi/4"),
        ] {
            assert_eq!(
                c(s),
                Err(format!("{s} is a partition of {disk}, not a mapping")),
                "{s}"
            );
        }
        assert_eq!(
            c("/dev/lofi7"),
            Ok(Target::Device {
                n: 7,
                name: "/dev/lofi7".into()
            })
        );
    }

    /// A scratch `/dev` with the nodes of mapping 1 and partitions 2 and
    /// 1, and a `/sys` that lists them.
    fn scratch_layout(name: &str) -> Layout {
        let root =
            std::env::temp_dir().join(format!("lofiadm-commands-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let layout = Layout {
            dev: root.join("dev"),
            sys: root.join("sys"),
        };
        fs::create_dir_all(&layout.dev).unwrap();
        fs::write(layout.node(Name::Disk(1)), b"").unwrap();
        for m in [2, 1] {
            let part = Name::Partition(1, m);
            fs::write(layout.node(part), b"").unwrap();
            fs::create_dir_all(layout.sysfs_dir(part)).unwrap();
            fs::write(layout.sysfs_dir(part).join("partition"), b"").unwrap();
        }
        layout
    }

    #[test]
    fn named_mappings_get_their_links() {
        let layout = scratch_layout("named");
        let dev = layout.dev.display().to_string();
        let mut m = mapping(false);
        m.labeled = true;
        let listed = named(&layout, m.clone());
        assert_eq!(listed.device, format!("{dev}/lofi/1"));
        assert_eq!(
            listed.partitions,
            [format!("{dev}/lofi/1p1"), format!("{dev}/lofi/1p2")]
        );
        assert_eq!(listed.mapping, m);
        assert_eq!(
            fs::read_link(layout.link(Name::Partition(1, 2))).unwrap(),
            Path::new("../lofi1p2")
        );
        // Unlabeled: no partitions, whatever sysfs says.
        m.labeled = false;
        assert_eq!(named(&layout, m.clone()).partitions, [] as [String; 0]);
        // Where no link can be made, the nodes.
        fs::remove_dir_all(layout.link_dir()).unwrap();
        fs::write(layout.link_dir(), b"").unwrap();
        m.labeled = true;
        let listed = named(&layout, m);
        assert_eq!(listed.device, format!("{dev}/lofi1"));
        assert_eq!(
            listed.partitions,
            [format!("{dev}/lofi1p1"), format!("{dev}/lofi1p2")]
        );
        fs::remove_dir_all(layout.dev.parent().unwrap()).unwrap();
    }

    #[test]
    fn malformed_device_names() {
        for s in [
            "/dev/lofi/x",
            "/dev/lofi/01",
            "/dev/rlofi/",
            "/dev/lofi/1/",
            "/dev/lofi1x",
            "/dev/lofi/1p",
            "/dev/lofi/1p01",
            "lofi1x",
        ] {
            assert_eq!(c(s), Err(format!("malformed device name {s}")), "{s}");
        }
    }

    #[test]
    fn everything_else_is_a_file() {
        assert_eq!(c("/etc/passwd"), Ok(Target::File("/etc/passwd".into())));
        assert_eq!(
            c("/etc/deleted.img"),
            Ok(Target::File("/etc/deleted.img".into()))
        );
        assert_eq!(
            c("/nodir/x.img"),
            Err("/nodir/x.img: No such file or directory".into())
        );
        // An existing file with a device-like name is a file.
        let dir = std::env::temp_dir().join(format!("lofiadm-classify-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let odd = dir.join("lofi1x");
        fs::write(&odd, b"").unwrap();
        let canon = odd.canonicalize().unwrap();
        assert_eq!(classify(odd.as_os_str()), Ok(Target::File(canon)));
        fs::remove_dir_all(&dir).unwrap();
    }
}
