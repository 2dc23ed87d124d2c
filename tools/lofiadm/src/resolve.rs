//! Resolving file names to the absolute paths the driver needs.
//!
//! As illumos lofiadm does with realpath(3), a file name is made absolute
//! and its symbolic links, `.` and `..` are resolved, so that listings
//! show one canonical name per file.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The canonical absolute path of the existing file `arg`, relative names
/// taken from the current directory. Fails as illumos does:
/// `<arg>: <strerror>`.
pub fn existing(arg: &OsStr) -> Result<PathBuf, Error> {
    let cwd = current_dir(arg)?;
    existing_from(&cwd, arg)
}

/// As [`existing`], but a file that no longer exists still gets a name:
/// its directory's canonical path and its own last component. The driver
/// keeps the name a file was mapped with, so a mapping whose file has been
/// deleted can still be found and removed by that name.
pub fn lenient(arg: &OsStr) -> Result<PathBuf, Error> {
    let cwd = current_dir(arg)?;
    lenient_from(&cwd, arg)
}

/// [`existing`] with `cwd` as the current directory.
pub fn existing_from(cwd: &Path, arg: &OsStr) -> Result<PathBuf, Error> {
    cwd.join(arg)
        .canonicalize()
        .map_err(|e| Error::io(Path::new(arg).display().to_string(), &e))
}

/// [`lenient`] with `cwd` as the current directory.
pub fn lenient_from(cwd: &Path, arg: &OsStr) -> Result<PathBuf, Error> {
    let path = cwd.join(arg);
    let err = match path.canonicalize() {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    if err.kind() == io::ErrorKind::NotFound {
        // `file_name()` is None for names ending in `..` or `/`: those
        // name directories, which cannot be mapped anyway.
        let parent = path.parent().map(Path::canonicalize);
        if let (Some(Ok(dir)), Some(name)) = (parent, path.file_name()) {
            return Ok(dir.join(name));
        }
    }
    Err(Error::io(Path::new(arg).display().to_string(), &err))
}

fn current_dir(arg: &OsStr) -> Result<PathBuf, Error> {
    std::env::current_dir().map_err(|e| {
        Error::io(
            format!(
                "{}: cannot get the current directory",
                Path::new(arg).display()
            ),
            &e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// A fresh directory under the target's temporary directory, with
    /// its canonical name (the temporary directory may be a symlink).
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lofiadm-resolve-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("sub/img"), b"").unwrap();
        dir.canonicalize().unwrap()
    }

    #[test]
    fn relative_names_become_absolute() {
        let d = scratch("relative");
        let img = d.join("sub/img");
        assert_eq!(existing_from(&d, OsStr::new("sub/img")).unwrap(), img);
        assert_eq!(
            existing_from(&d.join("sub"), OsStr::new("img")).unwrap(),
            img
        );
        assert_eq!(
            existing_from(&d.join("sub"), OsStr::new("./img")).unwrap(),
            img
        );
        assert_eq!(
            existing_from(&d, OsStr::new("sub/../sub/./img")).unwrap(),
            img
        );
        // An absolute name ignores the current directory.
        assert_eq!(existing_from(Path::new("/"), img.as_os_str()).unwrap(), img);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symbolic_links_are_resolved() {
        let d = scratch("symlink");
        symlink("sub/img", d.join("link")).unwrap();
        assert_eq!(
            existing_from(&d, OsStr::new("link")).unwrap(),
            d.join("sub/img")
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_files_fail_with_the_name_given() {
        let d = scratch("missing");
        let e = existing_from(&d, OsStr::new("nope.img")).unwrap_err();
        assert_eq!(e.errno_value(), Some(Errno::ENOENT));
        assert_eq!(e.to_string(), "nope.img: No such file or directory");
        let e = existing_from(&d, OsStr::new("sub/img/x")).unwrap_err();
        assert_eq!(e.errno_value(), Some(Errno::ENOTDIR));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lenient_names_deleted_files_by_their_directory() {
        let d = scratch("lenient");
        assert_eq!(
            lenient_from(&d, OsStr::new("sub/img")).unwrap(),
            d.join("sub/img")
        );
        assert_eq!(
            lenient_from(&d, OsStr::new("sub/gone.img")).unwrap(),
            d.join("sub/gone.img")
        );
        assert_eq!(
            lenient_from(&d.join("sub"), OsStr::new("../sub/gone")).unwrap(),
            d.join("sub/gone")
        );
        // The directory must exist.
        let e = lenient_from(&d, OsStr::new("nodir/gone.img")).unwrap_err();
        assert_eq!(e.to_string(), "nodir/gone.img: No such file or directory");
        // Other errors are not papered over.
        let e = lenient_from(&d, OsStr::new("sub/img/x")).unwrap_err();
        assert_eq!(e.errno_value(), Some(Errno::ENOTDIR));
        fs::remove_dir_all(&d).unwrap();
    }
}
