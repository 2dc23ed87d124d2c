//! The lofiadm binary on the host, where no lofi driver is loaded: exit
//! statuses, usage text, help and version, and every error that lofiadm
//! finds before it opens /dev/lofictl, with its exact wording. (The
//! commands themselves run against the driver in the VM tests,
//! tests/guest/lofiadm-*.sh.)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lofiadm::cli::{HELP, USAGE};

fn lofiadm(args: &[&str]) -> Output {
    lofiadm_in(Path::new("/"), args)
}

fn lofiadm_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lofiadm"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run lofiadm")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit status 1, nothing on stdout, and exactly `message` on stderr.
fn assert_error(out: &Output, message: &str) {
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), format!("lofiadm: {message}\n"));
    assert!(out.stdout.is_empty());
}

/// A scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

#[test]
fn usage_errors_exit_2_with_the_usage_on_stderr() {
    for args in [
        &["-r"][..],
        &["-f", "img"],
        &["-a", "img", "-d", "img"],
        &["-d", "img", "extra"],
        &["a", "b"],
        &["--json", "img"],
        &["-x"],
        &["-a"],
        &["--bogus"],
        &["--direct-io"],
        &["--direct-io", "img"],
        &["--direct-io=yes", "-a", "img"],
        &["-l"],
        &["-l", "img"],
        &["-l", "-d", "img"],
        &["--labeled", "--resize", "img"],
        &["-C"],
        &["-U"],
        &["-C", "-U", "img"],
        &["-C", "-a", "img"],
        &["-U", "a", "b"],
        &["-s", "64k", "img"],
    ] {
        let out = lofiadm(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = text(&out.stderr);
        let (reason, usage) = err.split_once('\n').unwrap();
        assert!(
            reason.starts_with("lofiadm: ") && reason.len() > 9,
            "{args:?}: {reason}"
        );
        assert_eq!(usage, USAGE, "{args:?}");
    }
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    let out = lofiadm(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), HELP);
    assert!(out.stderr.is_empty());
    let out = lofiadm(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("lofiadm {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn map_checks_the_file_before_the_driver() {
    let d = scratch("map-checks");
    fs::write(d.join("odd.img"), vec![0u8; 1000]).unwrap();
    fs::write(d.join("empty.img"), b"").unwrap();
    fs::write(d.join("ok.img"), vec![0u8; 4096]).unwrap();
    fs::create_dir(d.join("dir")).unwrap();
    let name = |f: &str| d.join(f).display().to_string();

    assert_error(
        &lofiadm_in(&d, &["-a", "nope.img"]),
        "nope.img: No such file or directory",
    );
    // Relative names are resolved before they are reported.
    assert_error(
        &lofiadm_in(&d, &["-a", "odd.img"]),
        &format!("size of {} is not a multiple of 512", name("odd.img")),
    );
    assert_error(
        &lofiadm_in(&d, &["-a", "./empty.img"]),
        &format!("size of {} is 0", name("empty.img")),
    );
    assert_error(
        &lofiadm_in(&d, &["-a", "dir"]),
        &format!(
            "{} is not a regular file, block, or character device",
            name("dir")
        ),
    );
    // The same checks with --direct-io.
    assert_error(
        &lofiadm_in(&d, &["--direct-io", "-a", "odd.img"]),
        &format!("size of {} is not a multiple of 512", name("odd.img")),
    );
    assert_error(
        &lofiadm(&["-a", "/dev/null"]),
        "/dev/null is a character device: lofi maps regular files and block devices only",
    );
    // The device operand of -a must be a device name.
    for bad in ["/dev/lofi/x", "disk2", "/dev/loop0", "lofi", "/dev/lofi1x"] {
        assert_error(
            &lofiadm_in(&d, &["-a", "ok.img", bad]),
            &format!("malformed device name {bad}"),
        );
        assert_error(
            &lofiadm_in(&d, &["-l", "-a", "ok.img", bad]),
            &format!("malformed device name {bad}"),
        );
    }
    // ... and not a partition's.
    for part in ["/dev/lofi/1p1", "/dev/lofi1p2", "lofi1p3"] {
        assert_error(
            &lofiadm_in(&d, &["-a", "ok.img", part]),
            &format!("{part} is a partition of /dev/lofi/1, not a mapping"),
        );
    }
}

#[test]
fn partitions_are_not_mappings() {
    for part in ["/dev/lofi/2p1", "/dev/lofi2p1", "lofi2p1", "/dev/rlofi/2p1"] {
        let message = format!("{part} is a partition of /dev/lofi/2, not a mapping");
        for args in [
            &[part][..],
            &["-d", part],
            &["-d", part, "-f"],
            &["--resize", part],
        ] {
            assert_error(&lofiadm(args), &message);
        }
    }
}

#[test]
fn operands_that_look_like_devices_but_are_not() {
    for args in [
        &["/dev/lofi/abc"][..],
        &["-d", "/dev/rlofi/01"],
        &["lofi2x"],
        &["-d", "/dev/lofi/"],
    ] {
        let bad = args.last().unwrap();
        assert_error(&lofiadm(args), &format!("malformed device name {bad}"));
    }
    // Neither a device nor a file in an existing directory.
    assert_error(
        &lofiadm(&["/nonexistent/dir/x.img"]),
        "/nonexistent/dir/x.img: No such file or directory",
    );
}

#[test]
fn without_the_driver_the_control_device_is_missing() {
    if Path::new(lofiadm::uapi::CTL_PATH).exists() {
        eprintln!("skipped: lofi is loaded on this machine");
        return;
    }
    let missing =
        "cannot open /dev/lofictl (is the lofi module loaded?): No such file or directory";
    assert_error(&lofiadm(&[]), missing);
    assert_error(&lofiadm(&["/dev/lofi/1"]), missing);
    assert_error(&lofiadm(&["-d", "lofi1"]), missing);
    let d = scratch("no-driver");
    fs::write(d.join("ok.img"), vec![0u8; 4096]).unwrap();
    assert_error(&lofiadm_in(&d, &["-a", "ok.img"]), missing);
    assert_error(&lofiadm_in(&d, &["--direct-io", "-a", "ok.img"]), missing);
}

/// The listing's row format is C's `printf("%-20s     %-30s\t%s\n", ...)`:
/// compare with printf(1), which implements the same format.
#[test]
fn listing_rows_match_printf() {
    use lofiadm::control::Mapping;
    use lofiadm::listing::Listed;
    let mappings: Vec<Listed> = [
        (1, "/var/tmp/disk.img", false, false, false),
        (23, "/srv/iso/install.iso", true, true, false),
        (7, "/srv/disk.img", true, false, true),
        (
            4567,
            "/a/file/name/that/is/much/longer/than/thirty/bytes.img",
            false,
            true,
            true,
        ),
    ]
    .into_iter()
    .map(|(n, f, ro, dio, labeled)| Listed {
        device: format!("/dev/lofi/{n}"),
        partitions: Vec::new(),
        mapping: Mapping {
            number: n,
            node: format!("/dev/lofi{n}"),
            file: f.into(),
            readonly: ro,
            compressed: None,
            labeled,
            direct_io: dio,
            block_size: 512,
            offset: 0,
            sizelimit: 0,
        },
    })
    .collect();
    let mut args = vec!["%-20s     %-30s\\t%s\\n".to_string()];
    args.extend(["Block Device", "File", "Options"].map(String::from));
    for l in &mappings {
        args.extend([
            l.device.clone(),
            l.mapping.file.display().to_string(),
            lofiadm::listing::options(&l.mapping),
        ]);
    }
    let out = Command::new("printf")
        .args(&args)
        .output()
        .expect("run printf");
    assert!(out.status.success());
    assert_eq!(text(&lofiadm::listing::table(&mappings)), text(&out.stdout));
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Some bytes of a disk image: text, noise and zeros, 1 MiB + 1536.
fn disk_bytes() -> Vec<u8> {
    let mut x: u32 = 12345;
    let mut v: Vec<u8> = (0..300_000)
        .map(|i| b"some text on a disk "[i % 20])
        .collect();
    v.extend((0..200_000).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    v.resize((1 << 20) + 1536, 0);
    v
}

#[test]
fn compress_and_uncompress_in_place() {
    use std::os::unix::fs::PermissionsExt;
    let d = scratch("compress");
    let data = disk_bytes();
    for (args, name) in [
        (&["-C"][..], "gzip"),
        (&["-C", "gzip-6"], "gzip-6"),
        (&["-C", "gzip-9", "-s", "64k"], "gzip-9"),
        (&["-C", "lzma"], "lzma"),
        (&["-C", "zstd", "-s", "1m"], "zstd"),
        (&["-C", "lz4", "-s", "4k"], "lz4"),
        (&["-s", "512", "-C"], "gzip"),
    ] {
        let img = d.join("disk.img");
        fs::write(&img, &data).unwrap();
        fs::set_permissions(&img, fs::Permissions::from_mode(0o640)).unwrap();
        let mut c = args.to_vec();
        c.push("disk.img");
        let out = lofiadm_in(&d, &c);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{args:?}");
        let packed = fs::read(&img).unwrap();
        assert_eq!(&packed[..name.len() + 1], format!("{name}\0").as_bytes());
        assert_eq!(packed.len() % 512, 0);
        if args.contains(&"512") {
            assert!(packed.len() > data.len(), "{args:?}: all stored");
        } else {
            assert!(packed.len() < data.len(), "{args:?}");
        }
        let meta = fs::metadata(&img).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640, "{args:?}");
        assert_eq!(names(&d), ["disk.img"], "{args:?}: no temporary file left");
        let out = lofiadm_in(&d, &["-U", "disk.img"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "{args:?}");
        assert!(
            fs::read(&img).unwrap() == data,
            "{args:?}: not the original"
        );
        let meta = fs::metadata(&img).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640, "{args:?}");
        assert_eq!(names(&d), ["disk.img"], "{args:?}");
    }
}

#[test]
fn compress_and_uncompress_refusals_leave_the_file_alone() {
    let d = scratch("compress-refused");
    let data = disk_bytes();
    fs::write(d.join("plain.img"), &data).unwrap();
    fs::write(d.join("odd.img"), vec![7u8; 1000]).unwrap();
    fs::write(d.join("empty.img"), b"").unwrap();
    fs::create_dir(d.join("dir")).unwrap();
    fs::write(d.join("packed.img"), &data).unwrap();
    let out = lofiadm_in(&d, &["-C", "lzma", "packed.img"]);
    assert_eq!(out.status.code(), Some(0));
    let packed = fs::read(d.join("packed.img")).unwrap();
    let name = |f: &str| d.join(f).display().to_string();

    for (args, message) in [
        (
            &["-C", "packed.img"][..],
            format!("{} is already compressed", name("packed.img")),
        ),
        (
            &["-C", "zstd", "packed.img"],
            format!("{} is already compressed", name("packed.img")),
        ),
        (
            &["-U", "plain.img"],
            format!("{} is not compressed", name("plain.img")),
        ),
        (
            &["-C", "bzip2", "plain.img"],
            "invalid algorithm name: bzip2".to_string(),
        ),
        (
            &["-C", "-s", "3000", "plain.img"],
            "segment size 3000 is invalid or not a multiple of minimum block size 512".into(),
        ),
        (
            &["-C", "-s", "16m", "plain.img"],
            "segment size 16m is invalid or not a multiple of minimum block size 512".into(),
        ),
        (
            &["-C", "odd.img"],
            format!("size of {} is not a multiple of 512", name("odd.img")),
        ),
        (
            &["-U", "odd.img"],
            format!("size of {} is not a multiple of 512", name("odd.img")),
        ),
        (
            &["-C", "dir"],
            format!("{} is not a regular file", name("dir")),
        ),
        (
            &["-U", "nope.img"],
            "nope.img: No such file or directory".into(),
        ),
    ] {
        assert_error(&lofiadm_in(&d, args), &message);
    }
    assert!(fs::read(d.join("plain.img")).unwrap() == data);
    assert!(fs::read(d.join("packed.img")).unwrap() == packed);
    assert_eq!(fs::read(d.join("odd.img")).unwrap(), vec![7u8; 1000]);
    // An empty file: nothing to do.
    for flag in ["-C", "-U"] {
        let out = lofiadm_in(&d, &[flag, "empty.img"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(out.stderr.is_empty());
        assert_eq!(fs::read(d.join("empty.img")).unwrap(), b"");
    }
    // A corrupt image fails part way: the file stays, and no temporary
    // file is left behind.
    let mut corrupt = packed.clone();
    let at = corrupt.len() - 4096;
    for b in &mut corrupt[at - 40_000..at] {
        *b ^= 0xa5;
    }
    fs::write(d.join("corrupt.img"), &corrupt).unwrap();
    let out = lofiadm_in(&d, &["-U", "corrupt.img"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "lofiadm: {} is not a valid compressed image: segment ",
            name("corrupt.img")
        )),
        "{err}"
    );
    assert!(fs::read(d.join("corrupt.img")).unwrap() == corrupt);
    assert_eq!(
        names(&d),
        [
            "corrupt.img",
            "dir",
            "empty.img",
            "odd.img",
            "packed.img",
            "plain.img"
        ]
    );
}

#[test]
fn no_progress_when_stderr_is_not_a_terminal() {
    let d = scratch("compress-quiet");
    fs::write(d.join("big.img"), vec![0u8; 64 << 20]).unwrap();
    let out = lofiadm_in(&d, &["-C", "lz4", "big.img"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty() && out.stdout.is_empty());
    let out = lofiadm_in(&d, &["-U", "big.img"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty());
    assert!(fs::read(d.join("big.img")).unwrap().iter().all(|&b| b == 0));
}
