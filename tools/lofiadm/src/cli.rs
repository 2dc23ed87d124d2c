//! The command line: illumos lofiadm syntax, plus long options.
//!
//! ```text
//! lofiadm [-r] [--direct-io[=on|off]] -a file [device]
//!                                  map; with no device, print the new device
//! lofiadm -d file | device [-f]    unmap (-f: even if the device is open)
//! lofiadm [file | device]          the device of a file, the file of a device
//! lofiadm [--json]                 list all mappings
//! ```
//!
//! clap splits the arguments (getopt-like: `-ra file`, `-afile`, options
//! after operands); which combinations make sense is decided here, so
//! that every misuse is a usage error (exit status 2, usage on stderr).

use std::ffi::OsString;

use clap::{ArgAction, Parser, error::ErrorKind};

/// The usage text, printed on stderr after a usage error.
pub const USAGE: &str = "\
Usage: lofiadm [-r] [--direct-io[=on|off]] -a file [device]
       lofiadm -d file | device [-f]
       lofiadm [file | device]
       lofiadm [--json]
";

/// The `--help` text, printed on stdout.
pub const HELP: &str = "\
Usage: lofiadm [-r] [--direct-io[=on|off]] -a file [device]
       lofiadm -d file | device [-f]
       lofiadm [file | device]
       lofiadm [--json]

Map files to lofi block devices /dev/lofi/N, unmap them, and show the
mappings.

  -a, --add file [device]  map file, at device if one is given, else at the
                           lowest free number, and print the device
  -r, --readonly           with -a: make the mapping read-only
      --direct-io[=on|off] with -a: read and write the file with direct I/O,
                           bypassing its page cache (default: off); if the
                           file cannot, it is mapped buffered with a warning
  -d, --delete file|device remove the mapping of a file or a device
  -f, --force              with -d: remove it even if the device is open
      --json               list all mappings as a JSON array
      --help               show this help
      --version            show the version

With a file or a device alone, print the device of the file or the file of
the device; with no arguments, list all mappings. Devices may be named
/dev/lofi/N, /dev/rlofi/N or lofiN. Relative file names are resolved to
absolute paths.

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
        /// `--direct-io` (`=on`): ask the driver for direct I/O.
        direct_io: bool,
    },
    /// `-d file|device`
    Unmap { target: OsString, force: bool },
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
    #[arg(short = 'f', long = "force", action = ArgAction::SetTrue, overrides_with = "force")]
    force: bool,
    #[arg(short = 'r', long = "readonly", action = ArgAction::SetTrue, overrides_with = "readonly")]
    readonly: bool,
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
    let args = Args::try_parse_from(argv).map_err(clap_reason)?;
    if args.help {
        return Ok(Invocation::Help);
    }
    if args.version {
        return Ok(Invocation::Version);
    }
    command(args).map(Invocation::Run)
}

fn command(args: Args) -> Result<Command, UsageError> {
    let usage = |reason: &str| Err(UsageError(reason.to_string()));
    if args.add.is_some() && args.delete.is_some() {
        return usage("-a and -d cannot be used together");
    }
    if args.readonly && args.add.is_none() {
        return usage("-r is only valid with -a");
    }
    if args.direct_io.is_some() && args.add.is_none() {
        return usage("--direct-io is only valid with -a");
    }
    if args.force && args.delete.is_none() {
        return usage("-f is only valid with -d");
    }
    if args.json && (args.add.is_some() || args.delete.is_some() || !args.operands.is_empty()) {
        return usage("--json is only valid when listing all mappings");
    }
    let mut operands = args.operands.into_iter();
    let first = operands.next();
    if let Some(extra) = operands.next() {
        return usage(&format!("unexpected operand '{}'", extra.to_string_lossy()));
    }
    if let Some(file) = args.add {
        return Ok(Command::Map {
            file,
            device: first,
            readonly: args.readonly,
            direct_io: args.direct_io.as_deref() == Some("on"),
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
            direct_io: false,
        }
    }

    fn map_dio(file: &str, device: Option<&str>, readonly: bool) -> Command {
        Command::Map {
            file: file.into(),
            device: device.map(Into::into),
            readonly,
            direct_io: true,
        }
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
            (&["-r", "img"], "-r is only valid with -a"),
            (&["-r", "-d", "img"], "-r is only valid with -a"),
            (&["-f"], "-f is only valid with -d"),
            (&["-f", "img"], "-f is only valid with -d"),
            (&["-f", "-a", "img"], "-f is only valid with -d"),
            (&["--direct-io"], "--direct-io is only valid with -a"),
            (&["--direct-io=off"], "--direct-io is only valid with -a"),
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
            (&["-C", "img"], "-C"),
            (&["-U", "img"], "-U"),
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
        for form in [
            "-a file [device]",
            "-d file | device",
            "[file | device]",
            "[--json]",
        ] {
            assert!(USAGE.contains(form), "{form}");
            assert!(HELP.contains(form), "{form}");
        }
        for opt in [
            "--add",
            "--readonly",
            "--direct-io[=on|off]",
            "--delete",
            "--force",
            "--json",
            "--help",
            "--version",
        ] {
            assert!(HELP.contains(opt), "{opt}");
        }
    }
}
