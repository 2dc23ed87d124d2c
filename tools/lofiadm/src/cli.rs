//! The command line: illumos lofiadm syntax, plus long options.
//!
//! ```text
//! lofiadm [-r] [--direct-io[=on|off]] [-o offset] [--sizelimit size]
//!         [-b sector-size] [-l] -a file [device]
//!                                  map; with no device, print the new device
//! lofiadm -d file | device [-f]    unmap (-f: even if the device is open)
//! lofiadm [--sizelimit size] --resize file | device
//!                                  measure the file again, resize the device
//! lofiadm -C [algorithm] [-s segment_size] file
//!                                  compress file in place
//! lofiadm -U file                  uncompress file in place
//! lofiadm [file | device]          the device of a file, the file of a device
//! lofiadm [--json]                 list all mappings
//! ```
//!
//! clap splits the arguments (getopt-like: `-ra file`, `-afile`, options
//! after operands); which combinations make sense is decided here, so
//! that every misuse is a usage error (exit status 2, usage on stderr).
//! The algorithm after `-C` is optional, as in illumos: it is the next
//! word when more than one word follows `-C` and the next one does not
//! start with '-' (see [`take_algorithm`]).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use clap::{ArgAction, Parser, error::ErrorKind};

use crate::control::Region;
use crate::size;

/// The usage text, printed on stderr after a usage error.
pub const USAGE: &str = "\
Usage: lofiadm [-r] [--direct-io[=on|off]] [-o offset] [--sizelimit size]
               [-b sector-size] [-l] -a file [device]
       lofiadm -d file | device [-f]
       lofiadm [--sizelimit size] --resize file | device
       lofiadm -C [gzip|gzip-6|gzip-9|lzma|zstd|lz4] [-s segment_size] file
       lofiadm -U file
       lofiadm [file | device]
       lofiadm [--json]
";

/// The `--help` text, printed on stdout.
pub const HELP: &str = "\
Usage: lofiadm [-r] [--direct-io[=on|off]] [-o offset] [--sizelimit size]
               [-b sector-size] [-l] -a file [device]
       lofiadm -d file | device [-f]
       lofiadm [--sizelimit size] --resize file | device
       lofiadm -C [gzip|gzip-6|gzip-9|lzma|zstd|lz4] [-s segment_size] file
       lofiadm -U file
       lofiadm [file | device]
       lofiadm [--json]

Map files to lofi block devices /dev/lofi/N (links to the nodes /dev/lofiN),
unmap them, and show the mappings; compress and uncompress image files in
the format of illumos lofi.

  -a, --add file [device]  map file, at device if one is given, else at the
                           lowest free number, and print the device
  -r, --readonly           with -a: make the mapping read-only
  -l, --labeled            with -a: map a partitioned image (MBR, GPT) as a
                           disk with partitions /dev/lofi/NpM
      --direct-io[=on|off] with -a: read and write the file with direct I/O,
                           bypassing its page cache (default: off); if the
                           file cannot, it is mapped buffered with a warning
  -o, --offset offset      with -a: map the file from this byte on (a
                           multiple of 512; default 0)
      --sizelimit size     with -a: map this many bytes (default: to the end
                           of the file); the region must lie inside the file;
                           with --resize: the new size limit (0: none)
  -b, --sector-size size   with -a: the device's sector size: 512, 1024,
                           2048 or 4096 (default 512); the region must be a
                           whole number of sectors
  -d, --delete file|device remove the mapping of a file or a device
  -f, --force              with -d: remove it even if the device is open
      --resize file|device measure the file of a mapping again and resize
                           its device, while it may be in use, to the same
                           region (or to --sizelimit); grow a file system
                           on it afterwards (resize2fs, xfs_growfs)
  -C, --compress[=algorithm] file
                           compress file in place, for a read-only mapping;
                           algorithm: gzip (the default, zlib level 6),
                           gzip-6, gzip-9, lzma, zstd or lz4 (zstd and lz4
                           are not in illumos); the file must be unmapped
  -s, --segment-size size  with -C: compress in segments of this many bytes
                           (suffix k, b (512), m, g): a power of two from 512
                           to 8m, lofi's maximum (default 128k)
  -U, --uncompress file    uncompress a compressed file in place (works
                           without the lofi driver); it must be unmapped
      --json               list all mappings as a JSON array
      --help               show this help
      --version            show the version

With a file or a device alone, print the device of the file or the file of
the device; with no arguments, list all mappings. Devices may be named
/dev/lofi/N, /dev/lofiN, /dev/rlofi/N or lofiN; a partition (/dev/lofi/NpM)
is not a mapping. Devices are printed as /dev/lofi/N where lofiadm (or
udev) could make that link, else as /dev/lofiN. Relative file names are
resolved to absolute paths. Sizes are bytes, or numbers with a suffix K, M,
G, T (or KiB, MiB, ...: powers of 1024) or KB, MB, GB, TB (powers of 1000).
As -a takes the file as its value, give the other options before it.
-C and -U replace the file by a new one through a temporary file
.<name>XXXXXX in its directory, with the same owner and mode; on failure
the file is left as it was.

Exit status: 0 success, 1 error, 2 usage error. See lofiadm(8).
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Help,
    Version,
    Run(Command),
}

/// A lofiadm command, with its operands as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-a file [device]`
    Map {
        file: OsString,
        device: Option<OsString>,
        readonly: bool,
        /// `-l`: a labeled mapping, whose partition table is read.
        labeled: bool,
        /// `--direct-io` (`=on`): ask the driver for direct I/O.
        direct_io: bool,
        /// `-o`, `--sizelimit`, `-b`: the part of the file, and the
        /// sector size.
        region: Region,
    },
    /// `-d file|device`
    Unmap { target: OsString, force: bool },
    /// `--resize file|device`; `--sizelimit`: a new limit (0: none),
    /// else the mapping's own.
    Resize {
        target: OsString,
        sizelimit: Option<u64>,
    },
    /// `-C [algorithm] [-s segment_size] file`: the algorithm and the
    /// segment size as given, judged when the command runs (an invalid
    /// one fails with exit status 1, as in illumos).
    Compress {
        file: OsString,
        algorithm: String,
        segment_size: Option<String>,
    },
    /// `-U file`
    Uncompress { file: OsString },
    /// `file|device`
    Query { target: OsString },
    /// no operands
    List { json: bool },
}

/// A command line that is not valid: the reason, shown before the usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

/// The options and operands as clap splits them.
#[derive(Parser, Debug)]
#[command(
    name = "lofiadm",
    disable_help_flag = true,
    disable_version_flag = true
)]
struct Args {
    // Like getopt, the word after -a or -d is its value even if it starts
    // with '-'. Giving either twice is an error; repeating a flag, as
    // getopt allows, is not (overrides_with itself).
    #[arg(
        short = 'a',
        long = "add",
        value_name = "file",
        allow_hyphen_values = true
    )]
    add: Option<OsString>,
    #[arg(
        short = 'd',
        long = "delete",
        value_name = "file|device",
        allow_hyphen_values = true
    )]
    delete: Option<OsString>,
    #[arg(
        long = "resize",
        value_name = "file|device",
        allow_hyphen_values = true
    )]
    resize: Option<OsString>,
    #[arg(short = 'f', long = "force", action = ArgAction::SetTrue, overrides_with = "force")]
    force: bool,
    #[arg(short = 'r', long = "readonly", action = ArgAction::SetTrue, overrides_with = "readonly")]
    readonly: bool,
    #[arg(short = 'l', long = "labeled", action = ArgAction::SetTrue, overrides_with = "labeled")]
    labeled: bool,
    // losetup's spelling: --direct-io, --direct-io=on or --direct-io=off
    // (the value only after '=', as getopt's optional arguments); the
    // last one given counts.
    #[arg(
        long = "direct-io",
        value_name = "on|off",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "on",
        value_parser = ["on", "off"],
        overrides_with = "direct_io"
    )]
    direct_io: Option<String>,
    #[arg(short = 'o', long = "offset", value_name = "offset", value_parser = parse_size)]
    offset: Option<u64>,
    #[arg(long = "sizelimit", value_name = "size", value_parser = parse_size)]
    sizelimit: Option<u64>,
    #[arg(short = 'b', long = "sector-size", value_name = "size", value_parser = parse_sector_size)]
    sector_size: Option<u32>,
    // -C's optional algorithm is a separate word, which clap cannot take
    // the illumos way: take_algorithm rewrites -C [algorithm] as
    // --compress[=algorithm] first.
    #[arg(
        long = "compress",
        value_name = "algorithm",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = DEFAULT_ALGORITHM,
        overrides_with = "compress"
    )]
    compress: Option<String>,
    #[arg(short = 'U', long = "uncompress", action = ArgAction::SetTrue, overrides_with = "uncompress")]
    uncompress: bool,
    #[arg(short = 's', long = "segment-size", value_name = "segment_size")]
    segment_size: Option<String>,
    #[arg(long = "json", action = ArgAction::SetTrue, overrides_with = "json")]
    json: bool,
    #[arg(long = "help", action = ArgAction::SetTrue, overrides_with = "help")]
    help: bool,
    #[arg(long = "version", action = ArgAction::SetTrue, overrides_with = "version")]
    version: bool,
    #[arg(value_name = "file|device")]
    operands: Vec<OsString>,
}

/// Parse `argv` (program name first).
pub fn parse<I, T>(argv: I) -> Result<Invocation, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv = take_algorithm(argv.into_iter().map(Into::into).collect());
    let args = Args::try_parse_from(argv).map_err(clap_reason)?;
    if args.help {
        return Ok(Invocation::Help);
    }
    if args.version {
        return Ok(Invocation::Version);
    }
    command(args).map(Invocation::Run)
}

/// The algorithm of `-C` without one.
pub const DEFAULT_ALGORITHM: &str = "gzip";

/// The options that take their value as the next word (when not joined
/// to it), so that a value is not read as an option.
const SHORT_WITH_VALUE: &[u8] = b"adobs";
const LONG_WITH_VALUE: &[&str] = &[
    "--add",
    "--delete",
    "--resize",
    "--offset",
    "--sizelimit",
    "--sector-size",
    "--segment-size",
];

/// Rewrite `-C [algorithm]` (or `--compress [algorithm]`) in `argv` as
/// `--compress[=algorithm]`, taking the algorithm as illumos getopt
/// handling does: the word after -C when more than one word follows -C
/// and that one does not start with '-'. -C may end a group of flags
/// (`-rC`). Values of options and operands after `--` are left alone.
fn take_algorithm(argv: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    let mut words = argv.into_iter().enumerate().peekable();
    let total = words.len();
    if let Some((_, program)) = words.next() {
        out.push(program);
    }
    while let Some((i, word)) = words.next() {
        let bytes = word.as_encoded_bytes();
        if bytes == b"--" {
            out.push(word);
            out.extend(words.by_ref().map(|(_, w)| w));
            break;
        }
        if word
            .to_str()
            .is_some_and(|long| LONG_WITH_VALUE.contains(&long))
        {
            out.push(word);
            out.extend(words.next().map(|(_, w)| w));
            continue;
        }
        let compress_at_end = if bytes == b"--compress" {
            Some(None)
        } else if bytes.len() >= 2 && bytes[0] == b'-' && bytes[1] != b'-' {
            // A group of short flags: up to the first that takes a value.
            let flags = &bytes[1..];
            let valued = flags.iter().position(|c| SHORT_WITH_VALUE.contains(c));
            match valued {
                Some(at) => {
                    out.push(word.clone());
                    if at == flags.len() - 1 {
                        out.extend(words.next().map(|(_, w)| w));
                    }
                    continue;
                }
                None if flags.last() == Some(&b'C') => {
                    let rest = &bytes[..bytes.len() - 1];
                    Some((rest.len() > 1).then(|| rest.to_vec()))
                }
                None => None,
            }
        } else {
            None
        };
        let Some(group) = compress_at_end else {
            out.push(word);
            continue;
        };
        if let Some(group) = group {
            // The flags before the C, as a group of their own.
            out.push(OsString::from_vec(group));
        }
        let remaining = total - (i + 1);
        let algorithm = match words.peek() {
            Some((_, next)) if remaining > 1 && !next.as_encoded_bytes().starts_with(b"-") => {
                words.next().map(|(_, w)| w)
            }
            _ => None,
        };
        let mut flag = OsString::from("--compress");
        if let Some(a) = algorithm {
            flag.push("=");
            flag.push(a);
        }
        out.push(flag);
    }
    out
}

fn command(args: Args) -> Result<Command, UsageError> {
    let usage = |reason: &str| Err(UsageError(reason.to_string()));
    let compress = args.compress.is_some();
    if compress && args.uncompress {
        return usage("-C and -U cannot be used together");
    }
    let image = compress || args.uncompress;
    if image && (args.add.is_some() || args.delete.is_some()) {
        return usage("-C and -U cannot be used with -a or -d");
    }
    if image && args.resize.is_some() {
        return usage("--resize cannot be used with -C or -U");
    }
    if args.segment_size.is_some() && !compress {
        return usage("-s is only valid with -C");
    }
    if args.add.is_some() && args.delete.is_some() {
        return usage("-a and -d cannot be used together");
    }
    if args.resize.is_some() && (args.add.is_some() || args.delete.is_some()) {
        return usage("--resize cannot be used with -a or -d");
    }
    if args.readonly && args.add.is_none() {
        return usage("-r is only valid with -a");
    }
    if args.labeled && args.add.is_none() {
        return usage("-l is only valid with -a");
    }
    if args.direct_io.is_some() && args.add.is_none() {
        return usage("--direct-io is only valid with -a");
    }
    if args.offset.is_some() && args.add.is_none() {
        return usage("-o is only valid with -a");
    }
    if args.sizelimit.is_some() && args.add.is_none() && args.resize.is_none() {
        return usage("--sizelimit is only valid with -a or --resize");
    }
    if args.sector_size.is_some() && args.add.is_none() {
        return usage("-b is only valid with -a");
    }
    if args.force && args.delete.is_none() {
        return usage("-f is only valid with -d");
    }
    if args.json
        && (args.add.is_some()
            || args.delete.is_some()
            || args.resize.is_some()
            || image
            || !args.operands.is_empty())
    {
        return usage("--json is only valid when listing all mappings");
    }
    let mut operands = args.operands.into_iter();
    let first = operands.next();
    if let Some(extra) = operands.next() {
        return usage(&format!("unexpected operand '{}'", extra.to_string_lossy()));
    }
    if image {
        let Some(file) = first else {
            let flag = if compress { "-C" } else { "-U" };
            return usage(&format!("{flag} needs a file operand"));
        };
        return Ok(match args.compress {
            Some(algorithm) => Command::Compress {
                file,
                algorithm,
                segment_size: args.segment_size,
            },
            None => Command::Uncompress { file },
        });
    }
    if let Some(file) = args.add {
        return Ok(Command::Map {
            file,
            device: first,
            readonly: args.readonly,
            labeled: args.labeled,
            direct_io: args.direct_io.as_deref() == Some("on"),
            region: Region {
                offset: args.offset.unwrap_or(0),
                sizelimit: args.sizelimit.unwrap_or(0),
                sector_size: args.sector_size,
            },
        });
    }
    if let Some(target) = args.resize {
        if let Some(extra) = first {
            return usage(&format!("unexpected operand '{}'", extra.to_string_lossy()));
        }
        return Ok(Command::Resize {
            target,
            sizelimit: args.sizelimit,
        });
    }
    if let Some(target) = args.delete {
        if let Some(extra) = first {
            return usage(&format!("unexpected operand '{}'", extra.to_string_lossy()));
        }
        return Ok(Command::Unmap {
            target,
            force: args.force,
        });
    }
    Ok(match first {
        Some(target) => Command::Query { target },
        None => Command::List { json: args.json },
    })
}

/// A byte count (see [`size::parse`]).
fn parse_size(text: &str) -> Result<u64, String> {
    size::parse(text)
}

/// A sector size: one of the logical block sizes lofi presents.
fn parse_sector_size(text: &str) -> Result<u32, String> {
    let bytes = size::parse(text)?;
    match u32::try_from(bytes) {
        Ok(b @ (512 | 1024 | 2048 | 4096)) => Ok(b),
        _ => Err(format!(
            "'{text}' is not a sector size: use 512, 1024, 2048 or 4096"
        )),
    }
}

/// The reason clap gives, on one line: the first line of its message
/// without the "error: " prefix (its own usage and tips are not shown;
/// lofiadm prints its usage instead).
fn clap_reason(err: clap::Error) -> UsageError {
    let text = match err.kind() {
        // Not reachable with this parser; kept total.
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => String::new(),
        _ => err.to_string(),
    };
    let line = text.lines().next().unwrap_or_default();
    UsageError(line.strip_prefix("error: ").unwrap_or(line).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Invocation, UsageError> {
        parse(std::iter::once("lofiadm").chain(args.iter().copied()))
    }

    fn cmd(args: &[&str]) -> Command {
        match run(args) {
            Ok(Invocation::Run(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn usage_error(args: &[&str]) -> String {
        match run(args) {
            Err(UsageError(reason)) => reason,
            other => panic!("{args:?} should be a usage error, got {other:?}"),
        }
    }

    fn map(file: &str, device: Option<&str>, readonly: bool) -> Command {
        Command::Map {
            file: file.into(),
            device: device.map(Into::into),
            readonly,
            labeled: false,
            direct_io: false,
            region: Region::default(),
        }
    }

    fn map_dio(file: &str, device: Option<&str>, readonly: bool) -> Command {
        Command::Map {
            file: file.into(),
            device: device.map(Into::into),
            readonly,
            labeled: false,
            direct_io: true,
            region: Region::default(),
        }
    }

    #[test]
    fn resize_takes_a_file_or_device_and_a_limit() {
        assert_eq!(
            cmd(&["--resize", "/dev/lofi/2"]),
            Command::Resize {
                target: "/dev/lofi/2".into(),
                sizelimit: None
            }
        );
        assert_eq!(
            cmd(&["--sizelimit", "2G", "--resize", "img"]),
            Command::Resize {
                target: "img".into(),
                sizelimit: Some(2 << 30)
            }
        );
        assert_eq!(
            cmd(&["--resize=img", "--sizelimit=0"]),
            Command::Resize {
                target: "img".into(),
                sizelimit: Some(0)
            }
        );
    }

    fn unmap(target: &str, force: bool) -> Command {
        Command::Unmap {
            target: target.into(),
            force,
        }
    }

    #[test]
    fn map_forms() {
        assert_eq!(cmd(&["-a", "img"]), map("img", None, false));
        assert_eq!(
            cmd(&["-a", "img", "/dev/lofi/3"]),
            map("img", Some("/dev/lofi/3"), false)
        );
        assert_eq!(cmd(&["-r", "-a", "img"]), map("img", None, true));
        assert_eq!(cmd(&["-a", "img", "-r"]), map("img", None, true));
        assert_eq!(cmd(&["-ra", "img"]), map("img", None, true));
        assert_eq!(cmd(&["-raimg"]), map("img", None, true));
        assert_eq!(cmd(&["-aimg", "lofi2"]), map("img", Some("lofi2"), false));
        assert_eq!(
            cmd(&["-r", "-a", "img", "/dev/rlofi/1"]),
            map("img", Some("/dev/rlofi/1"), true)
        );
        assert_eq!(cmd(&["--add", "img"]), map("img", None, false));
        assert_eq!(
            cmd(&["--add=img", "lofi1"]),
            map("img", Some("lofi1"), false)
        );
        assert_eq!(cmd(&["--readonly", "--add", "img"]), map("img", None, true));
        // getopt: the word after -a is the file, even with a leading '-'.
        assert_eq!(cmd(&["-a", "-img"]), map("-img", None, false));
        // An operand after "--" may start with '-'.
        assert_eq!(
            cmd(&["-a", "img", "--", "-dev"]),
            map("img", Some("-dev"), false)
        );
        // Repeated flags are harmless, as with getopt.
        assert_eq!(cmd(&["-r", "-r", "-a", "img"]), map("img", None, true));
    }

    fn map_region(file: &str, offset: u64, sizelimit: u64, sector_size: Option<u32>) -> Command {
        Command::Map {
            file: file.into(),
            device: None,
            readonly: false,
            labeled: false,
            direct_io: false,
            region: Region {
                offset,
                sizelimit,
                sector_size,
            },
        }
    }

    #[test]
    fn region_forms() {
        assert_eq!(
            cmd(&["-o", "1MiB", "--sizelimit", "16M", "-a", "img"]),
            map_region("img", 1 << 20, 16 << 20, None)
        );
        assert_eq!(
            cmd(&["--offset=512", "-a", "img"]),
            map_region("img", 512, 0, None)
        );
        assert_eq!(
            cmd(&["-o512", "--sizelimit=4KB", "-aimg"]),
            map_region("img", 512, 4000, None)
        );
        assert_eq!(
            cmd(&["-b", "4096", "-a", "img"]),
            map_region("img", 0, 0, Some(4096))
        );
        assert_eq!(
            cmd(&["--sector-size", "2K", "-a", "img"]),
            map_region("img", 0, 0, Some(2048))
        );
        assert_eq!(
            cmd(&["-a", "img", "-b", "1024", "-o", "0"]),
            map_region("img", 0, 0, Some(1024))
        );
        assert_eq!(
            cmd(&["-b512", "-a", "img"]),
            map_region("img", 0, 0, Some(512))
        );
    }

    #[test]
    fn bad_region_values() {
        for (args, words) in [
            (
                &["-o", "1000x", "-a", "img"][..],
                "'1000x' has an unknown suffix",
            ),
            (&["--sizelimit", "", "-a", "img"], "'' is not a number"),
            // A negative number looks like an option to clap.
            (&["-o", "-5", "-a", "img"], "'-5'"),
            (&["--sizelimit", "99999999E", "-a", "img"], "too large"),
            (
                &["-b", "3000", "-a", "img"],
                "'3000' is not a sector size: use 512, 1024, 2048 or 4096",
            ),
            (&["-b", "8K", "-a", "img"], "'8K' is not a sector size"),
            (&["-b", "0", "-a", "img"], "'0' is not a sector size"),
        ] {
            let reason = usage_error(args);
            assert!(reason.contains(words), "{args:?}: {reason:?}");
            assert!(!reason.contains('\n'), "{args:?}: {reason:?}");
        }
    }

    #[test]
    fn direct_io_forms() {
        assert_eq!(
            cmd(&["--direct-io", "-a", "img"]),
            map_dio("img", None, false)
        );
        assert_eq!(
            cmd(&["-a", "img", "--direct-io"]),
            map_dio("img", None, false)
        );
        assert_eq!(
            cmd(&["--direct-io=on", "-a", "img"]),
            map_dio("img", None, false)
        );
        assert_eq!(
            cmd(&["--direct-io=off", "-a", "img"]),
            map("img", None, false)
        );
        assert_eq!(
            cmd(&["-r", "--direct-io", "-a", "img", "/dev/lofi/2"]),
            map_dio("img", Some("/dev/lofi/2"), true)
        );
        assert_eq!(
            cmd(&["--direct-io", "-ra", "img", "lofi3"]),
            map_dio("img", Some("lofi3"), true)
        );
        // The value only after '=': a next word is an operand.
        assert_eq!(
            cmd(&["-a", "img", "--direct-io", "lofi4"]),
            map_dio("img", Some("lofi4"), false)
        );
        // The last one given counts.
        assert_eq!(
            cmd(&["--direct-io", "--direct-io=off", "-a", "img"]),
            map("img", None, false)
        );
        assert_eq!(
            cmd(&["--direct-io=off", "--direct-io", "-a", "img"]),
            map_dio("img", None, false)
        );
        // getopt: the word after -a is its file, even this one.
        assert_eq!(
            cmd(&["-a", "--direct-io", "img"]),
            map("--direct-io", Some("img"), false)
        );
    }

    fn map_labeled(file: &str, device: Option<&str>, readonly: bool, direct_io: bool) -> Command {
        Command::Map {
            file: file.into(),
            device: device.map(Into::into),
            readonly,
            labeled: true,
            direct_io,
            region: Region::default(),
        }
    }

    #[test]
    fn labeled_forms() {
        assert_eq!(
            cmd(&["-l", "-a", "disk.img"]),
            map_labeled("disk.img", None, false, false)
        );
        assert_eq!(
            cmd(&["--labeled", "--add", "disk.img", "/dev/lofi/3"]),
            map_labeled("disk.img", Some("/dev/lofi/3"), false, false)
        );
        assert_eq!(
            cmd(&["-a", "disk.img", "-l"]),
            map_labeled("disk.img", None, false, false)
        );
        // Combined with the other map options, as getopt allows.
        assert_eq!(
            cmd(&["-rl", "--direct-io", "-a", "disk.img", "lofi2"]),
            map_labeled("disk.img", Some("lofi2"), true, true)
        );
        assert_eq!(
            cmd(&["-lra", "disk.img"]),
            map_labeled("disk.img", None, true, false)
        );
        assert_eq!(
            cmd(&["-l", "-l", "-a", "disk.img"]),
            map_labeled("disk.img", None, false, false)
        );
        assert_eq!(
            cmd(&["-l", "-o", "1M", "-b", "4096", "-a", "disk.img"]),
            Command::Map {
                file: "disk.img".into(),
                device: None,
                readonly: false,
                labeled: true,
                direct_io: false,
                region: Region {
                    offset: 1 << 20,
                    sizelimit: 0,
                    sector_size: Some(4096),
                },
            }
        );
        // The word after -a is its file.
        assert_eq!(
            cmd(&["-a", "-l", "disk.img"]),
            map("-l", Some("disk.img"), false)
        );
    }

    #[test]
    fn unmap_forms() {
        assert_eq!(cmd(&["-d", "img"]), unmap("img", false));
        assert_eq!(cmd(&["-d", "/dev/lofi/1"]), unmap("/dev/lofi/1", false));
        assert_eq!(
            cmd(&["-d", "/dev/lofi/1", "-f"]),
            unmap("/dev/lofi/1", true)
        );
        assert_eq!(cmd(&["-f", "-d", "lofi1"]), unmap("lofi1", true));
        assert_eq!(cmd(&["-fd", "lofi1"]), unmap("lofi1", true));
        assert_eq!(cmd(&["--delete", "img", "--force"]), unmap("img", true));
        assert_eq!(cmd(&["--delete=img"]), unmap("img", false));
        assert_eq!(cmd(&["-d", "-img"]), unmap("-img", false));
    }

    #[test]
    fn query_and_list_forms() {
        assert_eq!(cmd(&[]), Command::List { json: false });
        assert_eq!(cmd(&["--json"]), Command::List { json: true });
        assert_eq!(
            cmd(&["img"]),
            Command::Query {
                target: "img".into()
            }
        );
        assert_eq!(
            cmd(&["/dev/lofi/1"]),
            Command::Query {
                target: "/dev/lofi/1".into()
            }
        );
        assert_eq!(
            cmd(&["--", "-img"]),
            Command::Query {
                target: "-img".into()
            }
        );
    }

    fn compress(file: &str, algorithm: &str, segment_size: Option<&str>) -> Command {
        Command::Compress {
            file: file.into(),
            algorithm: algorithm.into(),
            segment_size: segment_size.map(Into::into),
        }
    }

    #[test]
    fn compress_forms() {
        assert_eq!(cmd(&["-C", "img"]), compress("img", "gzip", None));
        assert_eq!(cmd(&["-C", "lzma", "img"]), compress("img", "lzma", None));
        // A single word after -C is the file, whatever it is called.
        assert_eq!(cmd(&["-C", "lzma"]), compress("lzma", "gzip", None));
        assert_eq!(
            cmd(&["-C", "gzip-9", "img"]),
            compress("img", "gzip-9", None)
        );
        // Any word is taken; the command judges it (exit status 1).
        assert_eq!(cmd(&["-C", "bogus", "img"]), compress("img", "bogus", None));
        assert_eq!(
            cmd(&["-C", "-s", "64k", "img"]),
            compress("img", "gzip", Some("64k"))
        );
        assert_eq!(
            cmd(&["-C", "zstd", "-s", "1m", "img"]),
            compress("img", "zstd", Some("1m"))
        );
        assert_eq!(
            cmd(&["-s", "8k", "-C", "lz4", "img"]),
            compress("img", "lz4", Some("8k"))
        );
        assert_eq!(
            cmd(&["-s", "8k", "-C", "img"]),
            compress("img", "gzip", Some("8k"))
        );
        assert_eq!(
            cmd(&["-s8k", "-C", "img"]),
            compress("img", "gzip", Some("8k"))
        );
        // The next word is not the algorithm if it starts with '-'.
        assert_eq!(cmd(&["-C", "--", "-img"]), compress("-img", "gzip", None));
        assert_eq!(
            cmd(&["-C", "lzma", "--", "-img"]),
            compress("-img", "lzma", None)
        );
        // The long forms.
        assert_eq!(cmd(&["--compress", "img"]), compress("img", "gzip", None));
        assert_eq!(
            cmd(&["--compress", "lz4", "img"]),
            compress("img", "lz4", None)
        );
        assert_eq!(
            cmd(&["--compress=lz4", "img", "--segment-size", "4k"]),
            compress("img", "lz4", Some("4k"))
        );
        // Unusual: the value of -s (or -a) is not an algorithm.
        assert_eq!(
            cmd(&["-C", "-s", "lzma", "img"]),
            compress("img", "gzip", Some("lzma"))
        );
        assert_eq!(cmd(&["-a", "-C"]), map("-C", None, false));
        assert_eq!(
            cmd(&["-a", "img", "--", "-C"]),
            map("img", Some("-C"), false)
        );
        assert_eq!(
            cmd(&["-U", "img"]),
            Command::Uncompress { file: "img".into() }
        );
        assert_eq!(
            cmd(&["--uncompress", "img"]),
            Command::Uncompress { file: "img".into() }
        );
        assert_eq!(
            cmd(&["-U", "--", "-img"]),
            Command::Uncompress {
                file: "-img".into()
            }
        );
    }

    #[test]
    fn compress_misuse() {
        let cases: &[(&[&str], &str)] = &[
            (&["-C", "-U", "img"], "-C and -U cannot be used together"),
            (&["-U", "-C", "img"], "-C and -U cannot be used together"),
            (
                &["-C", "-a", "img"],
                "-C and -U cannot be used with -a or -d",
            ),
            (
                &["-U", "-d", "img"],
                "-C and -U cannot be used with -a or -d",
            ),
            (
                &["-a", "img", "-U"],
                "-C and -U cannot be used with -a or -d",
            ),
            (&["-C"], "-C needs a file operand"),
            (&["-C", "-s", "8k"], "-C needs a file operand"),
            (&["-U"], "-U needs a file operand"),
            // illumos: the word after -C is the algorithm when two follow.
            (&["-C", "img", "-s", "8k"], "-C needs a file operand"),
            (&["-C", "a", "b", "c"], "unexpected operand 'c'"),
            (&["-U", "a", "b"], "unexpected operand 'b'"),
            (&["-s", "64k", "img"], "-s is only valid with -C"),
            (&["-s", "64k", "-U", "img"], "-s is only valid with -C"),
            (&["-s", "64k", "-a", "img"], "-s is only valid with -C"),
            (
                &["--json", "-C", "img"],
                "--json is only valid when listing all mappings",
            ),
            (
                &["-C", "img", "--resize", "x"],
                "--resize cannot be used with -C or -U",
            ),
            (&["-r", "-C", "img"], "-r is only valid with -a"),
            (&["-f", "-U", "img"], "-f is only valid with -d"),
            (&["-C", "-o", "512", "img"], "-o is only valid with -a"),
        ];
        for (args, want) in cases {
            assert_eq!(usage_error(args), *want, "{args:?}");
        }
    }

    #[test]
    fn help_and_version() {
        assert_eq!(run(&["--help"]), Ok(Invocation::Help));
        assert_eq!(run(&["--version"]), Ok(Invocation::Version));
        assert_eq!(run(&["-a", "img", "--help"]), Ok(Invocation::Help));
    }

    #[test]
    fn invalid_combinations() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["-a", "img", "-d", "img"],
                "-a and -d cannot be used together",
            ),
            (
                &["-d", "img", "-a", "img"],
                "-a and -d cannot be used together",
            ),
            (&["-r"], "-r is only valid with -a"),
            (&["-l"], "-l is only valid with -a"),
            (&["-l", "disk.img"], "-l is only valid with -a"),
            (&["--labeled", "-d", "lofi1"], "-l is only valid with -a"),
            (&["-l", "--resize", "lofi1"], "-l is only valid with -a"),
            (&["-l", "--json"], "-l is only valid with -a"),
            (&["-r", "img"], "-r is only valid with -a"),
            (&["-r", "-d", "img"], "-r is only valid with -a"),
            (&["-f"], "-f is only valid with -d"),
            (&["-f", "img"], "-f is only valid with -d"),
            (&["-f", "-a", "img"], "-f is only valid with -d"),
            (&["--direct-io"], "--direct-io is only valid with -a"),
            (&["--direct-io=off"], "--direct-io is only valid with -a"),
            (&["-o", "512"], "-o is only valid with -a"),
            (&["-o", "512", "-d", "img"], "-o is only valid with -a"),
            (
                &["--sizelimit", "1M", "img"],
                "--sizelimit is only valid with -a or --resize",
            ),
            (
                &["--resize", "img", "-a", "img"],
                "--resize cannot be used with -a or -d",
            ),
            (
                &["-d", "img", "--resize", "img"],
                "--resize cannot be used with -a or -d",
            ),
            (&["-r", "--resize", "img"], "-r is only valid with -a"),
            (&["-o", "0", "--resize", "img"], "-o is only valid with -a"),
            (&["-f", "--resize", "img"], "-f is only valid with -d"),
            (&["--resize", "img", "x"], "unexpected operand 'x'"),
            (
                &["--json", "--resize", "img"],
                "--json is only valid when listing all mappings",
            ),
            (&["-b", "4096", "--json"], "-b is only valid with -a"),
            (&["--direct-io", "img"], "--direct-io is only valid with -a"),
            (
                &["--direct-io", "-d", "img"],
                "--direct-io is only valid with -a",
            ),
            (
                &["--json", "--direct-io"],
                "--direct-io is only valid with -a",
            ),
            (
                &["--json", "img"],
                "--json is only valid when listing all mappings",
            ),
            (
                &["--json", "-a", "img"],
                "--json is only valid when listing all mappings",
            ),
            (
                &["--json", "-d", "img"],
                "--json is only valid when listing all mappings",
            ),
            (&["-a", "img", "/dev/lofi/1", "x"], "unexpected operand 'x'"),
            (&["-d", "img", "x"], "unexpected operand 'x'"),
            (
                &["-d", "img", "/dev/lofi/1"],
                "unexpected operand '/dev/lofi/1'",
            ),
            (&["img", "x"], "unexpected operand 'x'"),
        ];
        for (args, want) in cases {
            assert_eq!(usage_error(args), *want, "{args:?}");
        }
    }

    #[test]
    fn malformed_options() {
        // Which words clap uses does not matter; that they are usage
        // errors with a one-line reason naming the culprit does.
        for (args, culprit) in [
            (&["-x"][..], "-x"),
            (&["--bogus"], "--bogus"),
            (&["-a"], "--add"),
            (&["-d"], "--delete"),
            (&["--add"], "--add"),
            (&["-a", "a", "-a", "b"], "--add"),
            (&["-d", "a", "-d", "b"], "--delete"),
            (&["-Cr", "img"], "-C"),
            (&["-s"], "--segment-size"),
            (&["-C", "-s"], "--segment-size"),
            (&["--json=yes"], "--json"),
            (&["--direct-io=yes", "-a", "img"], "--direct-io"),
            (&["--direct-io=", "-a", "img"], "--direct-io"),
            (&["--direct-io=ON", "-a", "img"], "--direct-io"),
        ] {
            let reason = usage_error(args);
            assert!(reason.contains(culprit), "{args:?}: {reason:?}");
            assert!(
                !reason.contains('\n') && !reason.starts_with("error"),
                "{args:?}: {reason:?}"
            );
        }
    }

    #[test]
    fn usage_lists_every_form() {
        // The guest tests (tests/guest/lofiadm-lib.sh) match this line.
        assert_eq!(
            USAGE.lines().next(),
            Some("Usage: lofiadm [-r] [--direct-io[=on|off]] [-o offset] [--sizelimit size]")
        );
        for form in [
            "-a file [device]",
            "[-o offset]",
            "[--sizelimit size]",
            "[-b sector-size]",
            "[-l] -a file [device]",
            "-d file | device",
            "[file | device]",
            "[--json]",
            "-C [gzip|gzip-6|gzip-9|lzma|zstd|lz4] [-s segment_size] file",
            "-U file",
        ] {
            assert!(USAGE.contains(form), "{form}");
            assert!(HELP.contains(form), "{form}");
        }
        for opt in [
            "--add",
            "--readonly",
            "--labeled",
            "--direct-io[=on|off]",
            "--offset",
            "--sizelimit",
            "--sector-size",
            "--delete",
            "--force",
            "--json",
            "--compress[=algorithm]",
            "--segment-size",
            "--uncompress",
            "--help",
            "--version",
        ] {
            assert!(HELP.contains(opt), "{opt}");
        }
    }
}
