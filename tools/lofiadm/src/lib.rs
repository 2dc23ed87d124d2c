//! lofiadm: administer lofi, the loopback file driver. A port of illumos
//! lofiadm(8) to Linux; see lofiadm.8 for the user's view.
//!
//! Each module has one job: `cli` reads the command line, `commands`
//! carries out a command with `control` (the ioctls of /dev/lofictl, over
//! the ABI mirror in `uapi`), `device` and `resolve` interpret operands,
//! `checks` vets a file before it is mapped, `size` reads byte counts,
//! `image` compresses and uncompresses image files in place (`-C`, `-U`),
//! `wait` waits for a new device node, `links` makes the illumos-layout
//! links `/dev/lofi/N` to the nodes `/dev/lofiN` and chooses the names
//! printed, `listing` formats mappings, `error` words failures.

pub mod checks;
pub mod cli;
pub mod commands;
pub mod control;
pub mod device;
pub mod error;
pub mod image;
pub mod links;
pub mod listing;
pub mod resolve;
pub mod size;
pub mod uapi;
pub mod wait;

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use cli::{HELP, Invocation, USAGE, UsageError};
use error::{EXIT_ERROR, EXIT_USAGE};

/// Run lofiadm with `argv` (program name first); the process's exit status.
pub fn main<I, T>(argv: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cmd = match cli::parse(argv) {
        Ok(Invocation::Run(cmd)) => cmd,
        Ok(Invocation::Help) => return print_or_fail(HELP),
        Ok(Invocation::Version) => {
            return print_or_fail(&format!("lofiadm {}\n", env!("CARGO_PKG_VERSION")));
        }
        Err(UsageError(reason)) => {
            eprint!("lofiadm: {reason}\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut stdout = io::stdout().lock();
    let result = commands::run(&cmd, &mut stdout, &mut io::stderr()).and_then(|()| {
        stdout
            .flush()
            .map_err(|e| error::Error::io("write error", &e))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lofiadm: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn print_or_fail(text: &str) -> ExitCode {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lofiadm: {}", error::Error::io("write error", &e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
