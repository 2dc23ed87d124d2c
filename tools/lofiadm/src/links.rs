//! The illumos layout `/dev/lofi/N` and `/dev/lofi/NpM`, as links to the
//! nodes the kernel names after its disks, `/dev/lofiN` and `/dev/lofiNpM`.
//!
//! devtmpfs makes the nodes; the links are made by udev's rule
//! `60-lofi.rules` and, so that the illumos names work without udev too,
//! by lofiadm for the mappings it makes or lists. lofiadm never removes a
//! link: another lofiadm may just have mapped the same N again, and a link
//! left behind by an unmap leads nowhere (opening it fails with ENOENT, as
//! a missing node does) until N is mapped again, when it is right again.
//! A user who may not write `/dev` gets no links; lofiadm then names the
//! devices by their nodes (see [`Layout::shown`]).

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::device::{self, Name};
use crate::uapi::BLOCK_DIR;

/// Where the nodes, the links and sysfs are: `/dev` and `/sys`, or a
/// scratch tree in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The directory of the nodes, `/dev`.
    pub dev: PathBuf,
    /// The sysfs mount, `/sys`.
    pub sys: PathBuf,
}

impl Layout {
    /// The system's: `/dev` and `/sys`.
    pub fn system() -> Self {
        Layout {
            dev: PathBuf::from("/dev"),
            sys: PathBuf::from("/sys"),
        }
    }

    /// The directory of the links, `/dev/lofi`.
    pub fn link_dir(&self) -> PathBuf {
        // BLOCK_DIR is "/dev/lofi": its last component under `dev`.
        let dir = Path::new(BLOCK_DIR).file_name().unwrap_or_default();
        self.dev.join(dir)
    }

    /// The node of a disk or partition: `/dev/lofiN`, `/dev/lofiNpM`.
    pub fn node(&self, name: Name) -> PathBuf {
        self.dev.join(kernel_name(name))
    }

    /// Its illumos name: `/dev/lofi/N`, `/dev/lofi/NpM`.
    pub fn link(&self, name: Name) -> PathBuf {
        self.link_dir().join(link_name(name))
    }

    /// Its sysfs directory: `/sys/block/lofiN`, `/sys/block/lofiN/lofiNpM`.
    pub fn sysfs_dir(&self, name: Name) -> PathBuf {
        let disk = self.sys.join("block");
        match name {
            Name::Disk(n) => disk.join(device::disk_name(n)),
            Name::Partition(n, m) => disk
                .join(device::disk_name(n))
                .join(device::partition_name(n, m)),
        }
    }

    /// The partitions of mapping `n` the kernel has, by number: the
    /// `lofiNpM` directories of `/sys/block/lofiN` that have a `partition`
    /// file (the others are attribute directories). None if sysfs cannot
    /// be read.
    pub fn partitions(&self, n: u32) -> Vec<u32> {
        let Ok(entries) = fs::read_dir(self.sysfs_dir(Name::Disk(n))) else {
            return Vec::new();
        };
        let mut found: Vec<u32> = entries
            .filter_map(Result::ok)
            .filter_map(|e| match device::parse_name(&e.file_name()) {
                Some(Name::Partition(pn, m)) if pn == n => Some((e.path(), m)),
                _ => None,
            })
            .filter(|(path, _)| path.join("partition").exists())
            .map(|(_, m)| m)
            .collect();
        found.sort_unstable();
        found
    }

    /// Make sure that the links of mapping `n` exist and lead to its
    /// nodes: `/dev/lofi/N` and, if it is `labeled`, `/dev/lofi/NpM` for
    /// each partition it has. Every link is tried; the first failure is
    /// returned, for the callers to ignore: without a link, the device is
    /// shown by its node.
    pub fn ensure(&self, n: u32, labeled: bool) -> io::Result<()> {
        self.ensure_dir()?;
        let mut names = vec![Name::Disk(n)];
        if labeled {
            names.extend(
                self.partitions(n)
                    .into_iter()
                    .map(|m| Name::Partition(n, m)),
            );
        }
        let mut result = Ok(());
        for name in names {
            let linked = self.ensure_link(name);
            if result.is_ok() {
                result = linked;
            }
        }
        result
    }

    /// The name lofiadm prints for a disk or partition: its link if that
    /// resolves to its node, else the node itself (when there is no link,
    /// or a wrong one this user could not replace).
    pub fn shown(&self, name: Name) -> String {
        let node = self.node(name);
        let link = self.link(name);
        let leads_to_node = match (link.canonicalize(), node.canonicalize()) {
            (Ok(l), Ok(n)) => l == n,
            _ => false,
        };
        let shown = if leads_to_node { link } else { node };
        shown.display().to_string()
    }

    /// `/dev/lofi`, mode 0755 like the rest of `/dev`, if it is missing.
    fn ensure_dir(&self) -> io::Result<()> {
        let dir = self.link_dir();
        match DirBuilder::new().mode(0o755).create(&dir) {
            // The umask may have taken bits away.
            Ok(()) => fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One link, `../<kernel name>`, as udev makes it. A link that leads
    /// to the node already (whatever its text) is kept; another link (to
    /// another node, or leading nowhere) is replaced atomically, by a
    /// rename of a new link over it, so that no one ever finds the name
    /// missing. Something other than a link (a node an older lofi made in
    /// `/dev/lofi`, say) is not lofiadm's to destroy: it stays, and the
    /// device is shown by its node.
    fn ensure_link(&self, name: Name) -> io::Result<()> {
        let link = self.link(name);
        let target = Path::new("..").join(kernel_name(name));
        match fs::symlink_metadata(&link) {
            Ok(meta) if !meta.file_type().is_symlink() => {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            Ok(_) => {
                if fs::read_link(&link).is_ok_and(|now| now == target) {
                    return Ok(());
                }
                let same = match (link.canonicalize(), self.node(name).canonicalize()) {
                    (Ok(l), Ok(n)) => l == n,
                    _ => false,
                };
                if same {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // A name of this process's own, so that lofiadm runs in parallel
        // do not meet; one left by a killed run with the same PID is ours.
        let temp = self.link_dir().join(format!(
            ".lofiadm-{}-{}",
            std::process::id(),
            link_name(name)
        ));
        match fs::remove_file(&temp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        symlink(&target, &temp)?;
        fs::rename(&temp, &link).inspect_err(|_| {
            let _ = fs::remove_file(&temp);
        })
    }
}

/// The kernel's name of a disk or partition: `lofiN`, `lofiNpM`.
fn kernel_name(name: Name) -> String {
    match name {
        Name::Disk(n) => device::disk_name(n),
        Name::Partition(n, m) => device::partition_name(n, m),
    }
}

/// Its name in `/dev/lofi`: `N`, `NpM`.
fn link_name(name: Name) -> String {
    match name {
        Name::Disk(n) => n.to_string(),
        Name::Partition(n, m) => format!("{n}p{m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A scratch `/dev` and `/sys` with the nodes (regular files here)
    /// and sysfs directories of `disks`, each with its partitions.
    fn scratch(name: &str, disks: &[(u32, &[u32])]) -> Layout {
        let root =
            std::env::temp_dir().join(format!("lofiadm-links-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let layout = Layout {
            dev: root.join("dev"),
            sys: root.join("sys"),
        };
        fs::create_dir_all(&layout.dev).unwrap();
        for &(n, parts) in disks {
            fs::write(layout.node(Name::Disk(n)), b"").unwrap();
            let dir = layout.sysfs_dir(Name::Disk(n));
            fs::create_dir_all(dir.join("lofi")).unwrap();
            fs::create_dir_all(dir.join("queue")).unwrap();
            for &m in parts {
                let part = Name::Partition(n, m);
                fs::write(layout.node(part), b"").unwrap();
                let pdir = layout.sysfs_dir(part);
                fs::create_dir_all(&pdir).unwrap();
                fs::write(pdir.join("partition"), format!("{m}\n")).unwrap();
            }
        }
        layout
    }

    fn cleanup(layout: &Layout) {
        if let Some(root) = layout.dev.parent() {
            let _ = fs::remove_dir_all(root);
        }
    }

    fn target(layout: &Layout, name: Name) -> PathBuf {
        fs::read_link(layout.link(name)).unwrap()
    }

    #[test]
    fn paths_of_the_system_layout() {
        let l = Layout::system();
        assert_eq!(l.link_dir(), Path::new("/dev/lofi"));
        assert_eq!(l.node(Name::Disk(3)), Path::new("/dev/lofi3"));
        assert_eq!(l.node(Name::Partition(3, 2)), Path::new("/dev/lofi3p2"));
        assert_eq!(l.link(Name::Disk(3)), Path::new("/dev/lofi/3"));
        assert_eq!(l.link(Name::Partition(3, 2)), Path::new("/dev/lofi/3p2"));
        assert_eq!(l.sysfs_dir(Name::Disk(3)), Path::new("/sys/block/lofi3"));
        assert_eq!(
            l.sysfs_dir(Name::Partition(3, 2)),
            Path::new("/sys/block/lofi3/lofi3p2")
        );
        assert_eq!(
            l.node(Name::Disk(3)).to_str(),
            Some(device::node_path(3).as_str())
        );
        assert_eq!(
            l.link(Name::Disk(3)).to_str(),
            Some(device::link_path(3).as_str())
        );
    }

    #[test]
    fn partitions_come_from_sysfs_in_numeric_order() {
        let l = scratch("partitions", &[(1, &[10, 2, 1]), (2, &[])]);
        // Not partitions: another disk's name, a directory without a
        // `partition` file.
        fs::create_dir_all(l.sysfs_dir(Name::Disk(1)).join("lofi2p1")).unwrap();
        fs::create_dir_all(l.sysfs_dir(Name::Disk(1)).join("lofi1p9")).unwrap();
        assert_eq!(l.partitions(1), [1, 2, 10]);
        assert_eq!(l.partitions(2), [] as [u32; 0]);
        assert_eq!(l.partitions(3), [] as [u32; 0]);
        cleanup(&l);
    }

    #[test]
    fn links_are_made_with_their_directory() {
        let l = scratch("create", &[(1, &[1, 2])]);
        l.ensure(1, true).unwrap();
        let dir = fs::metadata(l.link_dir()).unwrap();
        assert!(dir.is_dir());
        assert_eq!(dir.mode() & 0o7777, 0o755);
        assert_eq!(target(&l, Name::Disk(1)), Path::new("../lofi1"));
        assert_eq!(target(&l, Name::Partition(1, 1)), Path::new("../lofi1p1"));
        assert_eq!(target(&l, Name::Partition(1, 2)), Path::new("../lofi1p2"));
        assert_eq!(
            l.shown(Name::Disk(1)),
            l.link(Name::Disk(1)).display().to_string()
        );
        assert_eq!(
            l.shown(Name::Partition(1, 2)),
            l.link(Name::Partition(1, 2)).display().to_string()
        );
        // No temporary names are left.
        let mut names: Vec<_> = fs::read_dir(l.link_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["1", "1p1", "1p2"]);
        cleanup(&l);
    }

    #[test]
    fn an_unlabeled_mapping_gets_no_partition_links() {
        let l = scratch("unlabeled", &[(1, &[1])]);
        l.ensure(1, false).unwrap();
        assert!(fs::symlink_metadata(l.link(Name::Partition(1, 1))).is_err());
        assert_eq!(target(&l, Name::Disk(1)), Path::new("../lofi1"));
        cleanup(&l);
    }

    #[test]
    fn right_links_are_kept() {
        let l = scratch("keep", &[(1, &[]), (2, &[])]);
        fs::create_dir(l.link_dir()).unwrap();
        symlink("../lofi1", l.link(Name::Disk(1))).unwrap();
        // Another text for the same node is right too.
        symlink(l.node(Name::Disk(2)), l.link(Name::Disk(2))).unwrap();
        let ino = |name| fs::symlink_metadata(l.link(name)).unwrap().ino();
        let (ino1, ino2) = (ino(Name::Disk(1)), ino(Name::Disk(2)));
        l.ensure(1, false).unwrap();
        l.ensure(2, false).unwrap();
        assert_eq!(ino(Name::Disk(1)), ino1);
        assert_eq!(ino(Name::Disk(2)), ino2);
        assert_eq!(target(&l, Name::Disk(2)), l.node(Name::Disk(2)));
        // A right link of a mapping that is gone is kept as well.
        fs::remove_file(l.node(Name::Disk(1))).unwrap();
        l.ensure(1, false).unwrap();
        assert_eq!(ino(Name::Disk(1)), ino1);
        cleanup(&l);
    }

    #[test]
    fn wrong_and_dangling_links_are_replaced() {
        let l = scratch("replace", &[(1, &[]), (2, &[1])]);
        fs::create_dir(l.link_dir()).unwrap();
        // Leads to another node.
        symlink("../lofi2", l.link(Name::Disk(1))).unwrap();
        // Leads nowhere, to another name.
        symlink("../gone", l.link(Name::Disk(2))).unwrap();
        // Leads to the node of another partition.
        symlink("../lofi2p2", l.link(Name::Partition(2, 1))).unwrap();
        assert_eq!(
            l.shown(Name::Disk(1)),
            l.node(Name::Disk(1)).display().to_string()
        );
        l.ensure(1, false).unwrap();
        l.ensure(2, true).unwrap();
        assert_eq!(target(&l, Name::Disk(1)), Path::new("../lofi1"));
        assert_eq!(target(&l, Name::Disk(2)), Path::new("../lofi2"));
        assert_eq!(target(&l, Name::Partition(2, 1)), Path::new("../lofi2p1"));
        assert_eq!(
            l.shown(Name::Disk(1)),
            l.link(Name::Disk(1)).display().to_string()
        );
        cleanup(&l);
    }

    #[test]
    fn what_is_not_a_link_is_left_alone() {
        let l = scratch("not-a-link", &[(1, &[])]);
        fs::create_dir(l.link_dir()).unwrap();
        // A node an older lofi made, say: a regular file here.
        fs::write(l.link(Name::Disk(1)), b"old").unwrap();
        let e = l.ensure(1, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(l.link(Name::Disk(1))).unwrap(), b"old");
        assert_eq!(
            l.shown(Name::Disk(1)),
            l.node(Name::Disk(1)).display().to_string()
        );
        cleanup(&l);
    }

    #[test]
    fn without_a_link_the_node_is_shown() {
        let l = scratch("fallback", &[(1, &[1])]);
        let node = |name| l.node(name).display().to_string();
        assert_eq!(l.shown(Name::Disk(1)), node(Name::Disk(1)));
        assert_eq!(l.shown(Name::Partition(1, 1)), node(Name::Partition(1, 1)));
        // A link whose node is missing leads nowhere: the node's name.
        l.ensure(1, false).unwrap();
        fs::remove_file(l.node(Name::Disk(1))).unwrap();
        assert_eq!(l.shown(Name::Disk(1)), node(Name::Disk(1)));
        cleanup(&l);
    }

    #[test]
    fn failures_leave_the_node_shown() {
        // `/dev/lofi` is no directory: nothing can be made in it.
        let l = scratch("blocked", &[(1, &[])]);
        fs::write(l.link_dir(), b"").unwrap();
        assert!(l.ensure(1, false).is_err());
        assert_eq!(
            l.shown(Name::Disk(1)),
            l.node(Name::Disk(1)).display().to_string()
        );
        cleanup(&l);

        // A user who may not write `/dev` (the test cannot tell when it
        // runs with the privilege to write there anyway).
        let l = scratch("denied", &[(1, &[])]);
        fs::set_permissions(&l.dev, fs::Permissions::from_mode(0o555)).unwrap();
        let privileged = fs::write(l.dev.join("probe"), b"").is_ok();
        if !privileged {
            let e = l.ensure(1, false).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
            assert!(fs::symlink_metadata(l.link_dir()).is_err());
            assert_eq!(
                l.shown(Name::Disk(1)),
                l.node(Name::Disk(1)).display().to_string()
            );
            // Nor in an existing `/dev/lofi`.
            fs::set_permissions(&l.dev, fs::Permissions::from_mode(0o755)).unwrap();
            fs::create_dir(l.link_dir()).unwrap();
            fs::set_permissions(l.link_dir(), fs::Permissions::from_mode(0o555)).unwrap();
            let e = l.ensure(1, false).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
            assert_eq!(
                l.shown(Name::Disk(1)),
                l.node(Name::Disk(1)).display().to_string()
            );
            fs::set_permissions(l.link_dir(), fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(&l.dev, fs::Permissions::from_mode(0o755)).unwrap();
        cleanup(&l);
    }
}
