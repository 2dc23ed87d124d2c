//! Errors as lofiadm reports them, in the illumos form
//! `lofiadm: <message>` followed by `: <strerror>` when an errno caused it.

use std::fmt;
use std::io;

use nix::errno::Errno;

/// The exit status of a command that failed.
pub const EXIT_ERROR: u8 = 1;
/// The exit status of a command line that is not valid.
pub const EXIT_USAGE: u8 = 2;

/// The message printed when the control device cannot be opened for
/// writing (illumos wording).
pub const NO_PERMISSION: &str = "you do not have permission to perform that operation.";

/// A failure, reported on stderr with exit status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    errno: Option<Errno>,
}

impl Error {
    /// An error with no errno behind it: printed as the message alone.
    pub fn msg(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            errno: None,
        }
    }

    /// An error caused by `errno`: printed as `message: strerror(errno)`.
    pub fn errno(message: impl Into<String>, errno: Errno) -> Self {
        Error {
            message: message.into(),
            errno: Some(errno),
        }
    }

    /// An error from a std I/O call; its errno when it has one.
    pub fn io(message: impl Into<String>, err: &io::Error) -> Self {
        match err.raw_os_error() {
            Some(code) => Error::errno(message, Errno::from_raw(code)),
            None => Error::msg(format!("{}: {err}", message.into())),
        }
    }

    pub fn errno_value(&self) -> Option<Errno> {
        self.errno
    }
}

impl fmt::Display for Error {
    /// The line after `lofiadm: `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errno {
            Some(e) => write!(f, "{}: {}", self.message, strerror(e)),
            None => f.write_str(&self.message),
        }
    }
}

/// The C library's text for `errno`, as `strerror(3)` gives it (nix's own
/// table words some errors differently, e.g. "I/O error" for EIO). std
/// formats an OS error as `<strerror> (os error N)`; the suffix is removed.
pub fn strerror(errno: Errno) -> String {
    let code = errno as i32;
    let text = io::Error::from_raw_os_error(code).to_string();
    match text.strip_suffix(&format!(" (os error {code})")) {
        Some(s) => s.to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strerror_is_the_c_library_text() {
        assert_eq!(strerror(Errno::EBUSY), "Device or resource busy");
        assert_eq!(strerror(Errno::ENOENT), "No such file or directory");
        assert_eq!(strerror(Errno::ENXIO), "No such device or address");
        assert_eq!(strerror(Errno::EIO), "Input/output error");
        assert_eq!(strerror(Errno::EACCES), "Permission denied");
    }

    #[test]
    fn message_with_and_without_errno() {
        assert_eq!(
            Error::errno("could not unmap device /dev/lofi/1", Errno::EBUSY).to_string(),
            "could not unmap device /dev/lofi/1: Device or resource busy"
        );
        assert_eq!(
            Error::msg("malformed device name /dev/lofi/x").to_string(),
            "malformed device name /dev/lofi/x"
        );
        assert_eq!(
            Error::msg(NO_PERMISSION).to_string(),
            "you do not have permission to perform that operation."
        );
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let e = Error::io("/x", &io::Error::from_raw_os_error(libc_enoent()));
        assert_eq!(e.errno_value(), Some(Errno::ENOENT));
        assert_eq!(e.to_string(), "/x: No such file or directory");
        let e = Error::io("/x", &io::Error::other("odd"));
        assert_eq!(e.errno_value(), None);
        assert_eq!(e.to_string(), "/x: odd");
    }

    fn libc_enoent() -> i32 {
        Errno::ENOENT as i32
    }
}
