//! Waiting for a new mapping's device nodes.
//!
//! The driver's map command returns once the disk (and, for a labeled
//! mapping, its partitions) is added; devtmpfs makes the nodes then, but
//! udev may replace them (or, without devtmpfs, make them) a little
//! later. Scripts such as `mkfs $(lofiadm -a img)` use the node at once,
//! so lofiadm returns only when it is there, like illumos lofiadm waits
//! for its /dev links.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::device::Name;
use crate::error::Error;
use crate::links::Layout;

/// How long to wait for a node before giving up (illumos: 120 s).
pub const NODE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the partitions' nodes, once the disk's is there.
/// devtmpfs makes them before the map command returns, so this is only
/// for udev; a partition still missing then is no error (the mapping and
/// its disk are fine), it just has no link yet.
pub const PARTITION_TIMEOUT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(10);

/// Wait until `node` (the driver's `li_devpath`) is the block device of
/// mapping `n`, for at most `timeout`. Fails with the illumos message
/// `<node> was not created`; the mapping stays, as it does on illumos.
pub fn for_node(layout: &Layout, n: u32, node: &str, timeout: Duration) -> Result<(), Error> {
    let sysfs_dev = layout.sysfs_dir(Name::Disk(n)).join("dev");
    if until(Path::new(node), &sysfs_dev, Instant::now() + timeout) {
        Ok(())
    } else {
        let why = match in_the_way(Path::new(node), &sysfs_dev) {
            Some(what) => format!(": {what} is in its place"),
            None => String::new(),
        };
        Err(Error::msg(format!("{node} was not created{why}")))
    }
}

/// What stands at `node` instead of the disk's node, if anything: the
/// kernel (devtmpfs) does not replace what it did not make, so a file
/// left there (by `dd of=/dev/lofiN` after an earlier lofiN went, say)
/// keeps the node from ever appearing, and the user must remove it.
fn in_the_way(node: &Path, sysfs_dev: &Path) -> Option<String> {
    let meta = fs::symlink_metadata(node).ok()?;
    let kind = meta.file_type();
    // The right node, turned up just now, is not in the way.
    if kind.is_block_device() && node_ready(node, sysfs_dev) {
        return None;
    }
    let what = if kind.is_file() {
        "a regular file".to_string()
    } else if kind.is_dir() {
        "a directory".to_string()
    } else if kind.is_symlink() {
        "a symbolic link".to_string()
    } else if kind.is_block_device() {
        format!("the node of block device {}", dev_string(meta.rdev()))
    } else if kind.is_char_device() {
        format!("the node of character device {}", dev_string(meta.rdev()))
    } else {
        "a file".to_string()
    };
    Some(what)
}

/// Wait, for at most `timeout` in all, until the node of each partition
/// of mapping `n` that sysfs lists is its block device; the partitions
/// whose nodes are there.
pub fn for_partitions(layout: &Layout, n: u32, timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    layout
        .partitions(n)
        .into_iter()
        .filter(|&m| {
            let name = Name::Partition(n, m);
            until(
                &layout.node(name),
                &layout.sysfs_dir(name).join("dev"),
                deadline,
            )
        })
        .collect()
}

/// Poll until `node` is ready (see [`node_ready`]) or `deadline` passes;
/// whether it is.
fn until(node: &Path, sysfs_dev: &Path, deadline: Instant) -> bool {
    loop {
        if node_ready(node, sysfs_dev) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(POLL);
    }
}

/// `node` is a block device with the device number sysfs gives in
/// `sysfs_dev` (when sysfs says; a stale node of an earlier disk does not
/// count).
fn node_ready(node: &Path, sysfs_dev: &Path) -> bool {
    let Ok(meta) = fs::metadata(node) else {
        return false;
    };
    if !meta.file_type().is_block_device() {
        return false;
    }
    match fs::read_to_string(sysfs_dev) {
        Ok(want) => want.trim() == dev_string(meta.rdev()),
        Err(_) => true,
    }
}

/// `MAJOR:MINOR`, as sysfs writes a device number.
fn dev_string(rdev: u64) -> String {
    format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn nowhere() -> Layout {
        Layout {
            dev: PathBuf::from("/nonexistent/dev"),
            sys: PathBuf::from("/nonexistent/sys"),
        }
    }

    #[test]
    fn device_numbers_are_written_as_sysfs_does() {
        let rdev = nix::sys::stat::makedev(259, 3);
        assert_eq!(dev_string(rdev), "259:3");
        let rdev = nix::sys::stat::makedev(8, 1_048_575);
        assert_eq!(dev_string(rdev), "8:1048575");
    }

    #[test]
    fn a_missing_or_wrong_node_times_out() {
        let l = nowhere();
        let t0 = Instant::now();
        let e = for_node(&l, 1, "/nonexistent/lofi1", Duration::from_millis(50)).unwrap_err();
        assert_eq!(e.to_string(), "/nonexistent/lofi1 was not created");
        assert!(t0.elapsed() >= Duration::from_millis(50));
        // A character device is not the node, and the message says so.
        let e = for_node(&l, 1, "/dev/null", Duration::ZERO).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/null was not created: the node of character device 1:3 is in its place"
        );
    }

    #[test]
    fn what_stands_in_the_nodes_place_is_named() {
        let root = std::env::temp_dir().join(format!("lofiadm-in-the-way-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("dir")).unwrap();
        let l = nowhere();
        let file = root.join("file");
        fs::write(&file, "x").unwrap();
        let link = root.join("link");
        std::os::unix::fs::symlink("file", &link).unwrap();
        for (path, what) in [
            (&file, "a regular file"),
            (&root.join("dir"), "a directory"),
            (&link, "a symbolic link"),
        ] {
            let node = path.display().to_string();
            let e = for_node(&l, 1, &node, Duration::ZERO).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("{node} was not created: {what} is in its place")
            );
        }
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn partitions_whose_nodes_are_missing_are_left_out() {
        let root = std::env::temp_dir().join(format!("lofiadm-wait-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let l = Layout {
            dev: root.join("dev"),
            sys: root.join("sys"),
        };
        let part = l.sysfs_dir(Name::Partition(1, 1));
        fs::create_dir_all(&part).unwrap();
        fs::write(part.join("partition"), "1\n").unwrap();
        let t0 = Instant::now();
        assert_eq!(
            for_partitions(&l, 1, Duration::from_millis(30)),
            [] as [u32; 0]
        );
        assert!(t0.elapsed() >= Duration::from_millis(30));
        // No partitions: nothing to wait for.
        assert_eq!(
            for_partitions(&nowhere(), 1, Duration::from_secs(10)),
            [] as [u32; 0]
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
