//! Waiting for a new mapping's device node.
//!
//! The driver's map command returns once the disk is added; devtmpfs
//! makes the node then, but udev may replace it (or, without devtmpfs,
//! make it) a little later. Scripts such as `mkfs $(lofiadm -a img)` use
//! the node at once, so lofiadm returns only when it is there, like
//! illumos lofiadm waits for its /dev links.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::device;
use crate::error::Error;

/// How long to wait for a node before giving up (illumos: 120 s).
pub const NODE_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(10);

/// Wait until `node` is the block device of mapping `n`, for at most
/// `timeout`. Fails with the illumos message `<node> was not created`;
/// the mapping stays, as it does on illumos.
pub fn for_node(n: u32, node: &str, timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    let sysfs_dev = format!("/sys/block/{}/dev", device::disk_name(n));
    loop {
        if node_ready(node, &sysfs_dev) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::msg(format!("{node} was not created")));
        }
        sleep(POLL);
    }
}

/// `node` is a block device with the disk's device number (when sysfs
/// says which that is; a stale node of an earlier disk does not count).
fn node_ready(node: &str, sysfs_dev: &str) -> bool {
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

    #[test]
    fn device_numbers_are_written_as_sysfs_does() {
        let rdev = nix::sys::stat::makedev(259, 3);
        assert_eq!(dev_string(rdev), "259:3");
        let rdev = nix::sys::stat::makedev(8, 1_048_575);
        assert_eq!(dev_string(rdev), "8:1048575");
    }

    #[test]
    fn a_missing_or_wrong_node_times_out() {
        let t0 = Instant::now();
        let e = for_node(1, "/nonexistent/lofi/1", Duration::from_millis(50)).unwrap_err();
        assert_eq!(e.to_string(), "/nonexistent/lofi/1 was not created");
        assert!(t0.elapsed() >= Duration::from_millis(50));
        // A character device is not the node.
        assert!(for_node(1, "/dev/null", Duration::ZERO).is_err());
    }
}
