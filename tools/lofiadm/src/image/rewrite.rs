//! Replacing a file by its compressed or uncompressed form in place, as
//! illumos lofiadm does, and safely: the new form is written to a
//! temporary file `.<name>XXXXXX` in the same directory, with the
//! original's owner and mode, synced, and renamed over the original at
//! the end. Until then the original is untouched, and on any failure the
//! temporary file is removed. The original is write-locked (an advisory
//! `fcntl` lock, as illumos takes) while it is read.

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, Permissions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};

use super::Failure;
use super::compress::compress;
use super::format::{Algorithm, NAME_LEN};
use super::pipeline;
use super::progress::Progress;
use super::uncompress::uncompress;
use crate::checks::{self, Kind};
use crate::error::Error;

/// What to turn a file into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `-C`: compress with `algorithm` in segments of `segment_size`.
    Compress {
        algorithm: Algorithm,
        segment_size: u32,
    },
    /// `-U`: uncompress.
    Uncompress,
}

impl Operation {
    /// The word for messages: "compressing" or "uncompressing".
    pub fn verb(self) -> &'static str {
        match self {
            Operation::Compress { .. } => "compressing",
            Operation::Uncompress => "uncompressing",
        }
    }
}

/// Turn the file `path` (absolute, resolved) into the form `op` asks for.
/// An empty file needs nothing done.
pub fn in_place(path: &Path, op: Operation, warn: &mut impl Write) -> Result<(), Error> {
    let name = path.display().to_string();
    let meta = fs::metadata(path).map_err(|e| Error::io(&name, &e))?;
    checks::rewritable(path, Kind::of(&meta), meta.len())?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(&name, &e))?;
    lock(&file).map_err(|e| Error::errno(format!("could not lock {name}"), e))?;
    // Measured again under the lock.
    let meta = file.metadata().map_err(|e| Error::io(&name, &e))?;
    let size = meta.len();
    checks::rewritable(path, Kind::of(&meta), size)?;
    if size == 0 {
        return Ok(());
    }
    let mut start = [0u8; NAME_LEN];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut start, 0)
        .map_err(|e| Error::io(format!("could not read {name}"), &e))?;
    let compressed = Algorithm::of_image(&start).is_some();
    match op {
        Operation::Compress { .. } if compressed => {
            return Err(Error::msg(format!("{name} is already compressed")));
        }
        Operation::Uncompress if !compressed => {
            return Err(Error::msg(format!("{name} is not compressed")));
        }
        _ => {}
    }
    let mut temp = Temp::create(path)?;
    let temp_name = temp.path.display().to_string();
    std::os::unix::fs::fchown(&temp.file, Some(meta.uid()), Some(meta.gid())).map_err(|e| {
        Error::io(
            format!("could not give {temp_name} the owner of {name}"),
            &e,
        )
    })?;
    temp.file
        .set_permissions(Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| Error::io(format!("could not give {temp_name} the mode of {name}"), &e))?;
    let mut progress = Progress::stderr(&format!("{} {name}", op.verb()), size);
    let workers = pipeline::workers();
    let result = match op {
        Operation::Compress {
            algorithm,
            segment_size,
        } => compress(
            &file,
            size,
            algorithm,
            segment_size,
            &mut temp.file,
            workers,
            &mut progress,
        ),
        Operation::Uncompress => uncompress(&file, size, &mut temp.file, workers, &mut progress),
    };
    progress.finish();
    result.map_err(|f| match f {
        Failure::Read(e) => Error::io(format!("could not read {name}"), &e),
        Failure::Write(e) => Error::io(format!("could not write {temp_name}"), &e),
        Failure::Corrupt(why) => {
            Error::msg(format!("{name} is not a valid compressed image: {why}"))
        }
        Failure::TooLarge => Error::msg(format!(
            "{name} is too large to compress in segments of this size"
        )),
    })?;
    temp.file
        .sync_all()
        .map_err(|e| Error::io(format!("could not write {temp_name}"), &e))?;
    fs::rename(&temp.path, path)
        .map_err(|e| Error::io(format!("could not rename {temp_name} to {name}"), &e))?;
    temp.keep = true;
    // The data is in place; only its name may not be on disk yet.
    if let Err(e) = sync_dir(path) {
        let _ = writeln!(
            warn,
            "lofiadm: {}",
            Error::io(format!("could not sync the directory of {name}"), &e)
        );
    }
    Ok(())
}

/// Wait for a write lock on the whole of `file`.
fn lock(file: &File) -> Result<(), Errno> {
    // l_len 0: to the end of the file, however long it grows.
    let fl = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as i16,
        l_whence: nix::libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    loop {
        match fcntl(file.as_fd(), FcntlArg::F_SETLKW(&fl)) {
            Err(Errno::EINTR) => continue,
            other => return other.map(drop),
        }
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    File::open(dir)?.sync_all()
}

/// The temporary file, removed when dropped unless kept.
struct Temp {
    path: PathBuf,
    file: File,
    keep: bool,
}

impl Temp {
    /// A new file `.<name>XXXXXX` beside `path`, mode 0600.
    fn create(path: &Path) -> Result<Temp, Error> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        let base = path.file_name().unwrap_or_default();
        let random = RandomState::new();
        let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
        for attempt in 0u64..100 {
            let mut h = random.build_hasher();
            h.write_u64(attempt);
            h.write_u32(std::process::id());
            let temp = dir.join(temp_name(base.as_encoded_bytes(), h.finish()));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)
            {
                Ok(file) => {
                    return Ok(Temp {
                        path: temp,
                        file,
                        keep: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => {
                    return Err(Error::io(
                        format!("could not create a temporary file in {}", dir.display()),
                        &e,
                    ));
                }
            }
        }
        Err(Error::io(
            format!("could not create a temporary file in {}", dir.display()),
            &last,
        ))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// `.<base>XXXXXX`, the six X letters and digits taken from `bits`.
fn temp_name(base: &[u8], mut bits: u64) -> OsString {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut name = Vec::with_capacity(base.len() + 7);
    name.push(b'.');
    name.extend_from_slice(base);
    for _ in 0..6 {
        name.push(CHARS[(bits % CHARS.len() as u64) as usize]);
        bits /= CHARS.len() as u64;
    }
    OsString::from_vec(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        let n = temp_name(b"disk.img", 0);
        assert_eq!(n, ".disk.imgAAAAAA");
        let n = temp_name(b"x", 61 + 62 * 26);
        assert_eq!(n, ".x9aAAAA");
    }
}
