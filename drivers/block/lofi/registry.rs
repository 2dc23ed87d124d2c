// SPDX-License-Identifier: GPL-2.0

//! The table of mappings: numbers N (1 ..= max) and the devices behind
//! them, with indexes by backing object, by file name and by device number.
//!
//! Only used numbers take memory (a red-black tree of slots, so a table of
//! 65,536 numbers costs nothing until they are used), and every lookup is
//! logarithmic in the number of mappings: by number in the slot tree, by
//! file in the identity and name indexes. A lookup checks only the devices
//! it finds there, never every device.
//!
//! The table is generic over what it maps to (an [`Entry`]), so that it
//! does not depend on the device type that refers back to it.
//!
//! # Locking
//!
//! One mutex, the [`Table`], protects the table. A device's state
//! mutex may be taken inside it, never the other way round. The block layer
//! takes a disk's `open_mutex` around the open and release callbacks, which
//! take only the device's state mutex; nothing here holds the table lock
//! while adding or deleting a disk or closing a backing file.

use crate::kext::file::Identity;
use kernel::{
    new_mutex,
    prelude::*,
    rbtree::{RBTree, RBTreeNode, RBTreeNodeReservation},
    sync::{Arc, Mutex},
};

/// What the table maps numbers to: a mapping's device.
pub(crate) trait Entry: Send + Sync {
    /// Whether it still counts as a mapping (queries find it, its object
    /// cannot be mapped again unless both are read-only).
    fn is_mapping(&self) -> bool;
    /// Whether it is read-only.
    fn read_only(&self) -> bool;
    /// The backing file's name as it was mapped.
    fn filename(&self) -> &[u8];
}

/// One used number.
enum Slot<E> {
    /// A mapping of the object `identity` is being set up under this
    /// number. It counts as a mapping of that object for the same-file
    /// check, so that two concurrent maps of one file cannot both win.
    Building { read_only: bool },
    /// A device, in any phase, until its teardown has removed its disk: a
    /// force-unmapped or detached device keeps its number until then.
    /// `devt` is its disk's device number.
    Device { dev: Arc<E>, devt: u32 },
}

/// Memory for the index entries of a mapping being installed, allocated
/// before it is built so that installing it cannot fail.
pub(crate) struct InstallNodes {
    name: RBTreeNodeReservation<(u64, u32), ()>,
    devt: RBTreeNodeReservation<u32, u32>,
}

impl InstallNodes {
    /// Allocates them.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            name: RBTreeNodeReservation::new(GFP_KERNEL)?,
            devt: RBTreeNodeReservation::new(GFP_KERNEL)?,
        })
    }
}

/// The table of mappings.
pub(crate) struct Registry<E> {
    max: u32,
    slots: RBTree<u32, Slot<E>>,
    /// Every used number by the identity of its backing object.
    by_identity: RBTree<(Identity, u32), ()>,
    /// Every device by a hash of its file name (see [`name_hash`]).
    by_name: RBTree<(u64, u32), ()>,
    /// Every added disk by its device number, to refuse lofi on lofi
    /// without opening the disk.
    by_devt: RBTree<u32, u32>,
}

/// The locked table.
pub(crate) type Table<E> = Mutex<Registry<E>>;

/// A new, empty table for numbers 1 ..= `max`.
pub(crate) fn new_table<E: Entry>(max: u32) -> Result<Arc<Table<E>>> {
    Arc::pin_init(
        new_mutex!(
            Registry {
                max,
                slots: RBTree::new(),
                by_identity: RBTree::new(),
                by_name: RBTree::new(),
                by_devt: RBTree::new(),
            },
            "lofi::registry::Table"
        ),
        GFP_KERNEL,
    )
}

/// Why a number cannot be had.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// N == 0.
    Zero,
    /// N > max.
    OutOfRange,
    /// N is in use.
    InUse,
    /// No number is free.
    NoneFree,
}

impl NumberError {
    /// The errno the ABI gives for it.
    pub(crate) fn to_error(&self) -> Error {
        match self {
            NumberError::Zero => EINVAL,
            NumberError::OutOfRange => ERANGE,
            NumberError::InUse => EEXIST,
            NumberError::NoneFree => EAGAIN,
        }
    }
}

/// Picks a number among 1 ..= `max`, given the used ones in increasing
/// order: `requested`, or the lowest free one when `None`.
pub(crate) fn pick_number(
    used: impl Iterator<Item = u32>,
    max: u32,
    requested: Option<u32>,
) -> Result<u32, NumberError> {
    match requested {
        Some(0) => Err(NumberError::Zero),
        Some(n) if n > max => Err(NumberError::OutOfRange),
        Some(n) => {
            let mut used = used;
            if used.any(|u| u == n) {
                Err(NumberError::InUse)
            } else {
                Ok(n)
            }
        }
        None => {
            // The first gap in 1, 2, 3, ...
            let mut next = 1u32;
            for u in used {
                if u != next {
                    break;
                }
                next = next.checked_add(1).ok_or(NumberError::NoneFree)?;
            }
            if next <= max {
                Ok(next)
            } else {
                Err(NumberError::NoneFree)
            }
        }
    }
}

/// A hash of a file name (FNV-1a), the key of the name index.
pub(crate) fn name_hash(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The numbers stored under `key` in a multi-map `tree` (keys `(key, N)`),
/// in increasing order, for which `accept` holds; the first of them.
fn first_with<K: Ord + Copy>(
    tree: &mut RBTree<(K, u32), ()>,
    key: K,
    mut accept: impl FnMut(u32) -> bool,
) -> Option<u32> {
    let mut cursor = tree.cursor_lower_bound_mut(&(key, 0))?;
    loop {
        let (&(k, n), ()) = cursor.current();
        if k != key {
            return None;
        }
        if accept(n) {
            return Some(n);
        }
        cursor = cursor.move_next()?;
    }
}

impl<E: Entry> Registry<E> {
    /// The highest mapping number.
    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    fn device(slots: &RBTree<u32, Slot<E>>, n: u32) -> Option<&Arc<E>> {
        match slots.get(&n)? {
            Slot::Device { dev, .. } => Some(dev),
            Slot::Building { .. } => None,
        }
    }

    /// The device of mapping `n`, if it is a mapping.
    pub(crate) fn mapped(&self, n: u32) -> Option<&Arc<E>> {
        Self::device(&self.slots, n).filter(|dev| dev.is_mapping())
    }

    /// Whether `devt` is the disk of a lofi device.
    pub(crate) fn is_lofi_devt(&self, devt: u32) -> bool {
        self.by_devt.get(&devt).is_some()
    }

    /// The number of the mapping whose file is `name`: by the name given
    /// at map time, else by `identity`, that of the object `name` names
    /// now.
    pub(crate) fn find_by_name(&mut self, name: &[u8], identity: Option<Identity>) -> Option<u32> {
        let slots = &self.slots;
        let found = first_with(&mut self.by_name, name_hash(name), |n| {
            Self::device(slots, n).is_some_and(|dev| dev.is_mapping() && dev.filename() == name)
        });
        if found.is_some() {
            return found;
        }
        first_with(&mut self.by_identity, identity?, |n| {
            Self::device(slots, n).is_some_and(|dev| dev.is_mapping())
        })
    }

    /// Whether a mapping of the object `identity`, live or being set up,
    /// conflicts with a new one: unless both are read-only, an object is
    /// mapped once.
    fn in_use(&mut self, identity: Identity, read_only: bool) -> bool {
        let slots = &self.slots;
        first_with(&mut self.by_identity, identity, |n| match slots.get(&n) {
            Some(Slot::Building { read_only: other }) => !(*other && read_only),
            Some(Slot::Device { dev, .. }) => dev.is_mapping() && !(dev.read_only() && read_only),
            None => false,
        })
        .is_some()
    }

    /// Reserves a number (see [`pick_number`]) for a new mapping of the
    /// object `identity`, and marks it as being built. `EBUSY` if the
    /// object is in use (see [`Registry::in_use`]).
    pub(crate) fn reserve(
        &mut self,
        requested: Option<u32>,
        identity: Identity,
        read_only: bool,
    ) -> Result<u32> {
        if self.in_use(identity, read_only) {
            return Err(EBUSY);
        }
        let n = pick_number(self.slots.keys().copied(), self.max, requested)
            .map_err(|e| e.to_error())?;
        let slot = RBTreeNode::new(n, Slot::Building { read_only }, GFP_KERNEL)?;
        let index = RBTreeNode::new((identity, n), (), GFP_KERNEL)?;
        self.slots.insert(slot);
        self.by_identity.insert(index);
        Ok(n)
    }

    /// Fills the reserved number `n` with its device, whose disk (device
    /// number `devt`) is added. Cannot fail: the index entries' memory is
    /// allocated beforehand, in `nodes`.
    pub(crate) fn install(&mut self, n: u32, dev: Arc<E>, devt: u32, nodes: InstallNodes) {
        self.by_name
            .insert(nodes.name.into_node((name_hash(dev.filename()), n), ()));
        self.by_devt.insert(nodes.devt.into_node(devt, n));
        if let Some(slot) = self.slots.get_mut(&n) {
            *slot = Slot::Device { dev, devt };
        }
    }

    /// Frees the number `n`, reserved or used by a device whose disk is
    /// removed, and its index entries. `identity` is that of its object.
    fn free(&mut self, n: u32, identity: Identity) {
        if let Some(Slot::Device { dev, devt }) = self.slots.remove(&n) {
            self.by_name.remove(&(name_hash(dev.filename()), n));
            self.by_devt.remove(&devt);
        }
        self.by_identity.remove(&(identity, n));
    }

    /// Frees the number `n` of the device `dev` (of the object `identity`)
    /// once its disk is removed, if the number is still this device's.
    pub(crate) fn release(&mut self, n: u32, dev: &Arc<E>, identity: Identity) {
        let ours = matches!(
            self.slots.get(&n),
            Some(Slot::Device { dev: d, .. }) if Arc::ptr_eq(d, dev)
        );
        if ours {
            self.free(n, identity);
        }
    }

    /// Gives up a number reserved by [`Registry::reserve`] whose mapping
    /// could not be built.
    pub(crate) fn cancel(&mut self, n: u32, identity: Identity) {
        if matches!(self.slots.get(&n), Some(Slot::Building { .. })) {
            self.free(n, identity);
        }
    }
}

#[kunit_tests(lofi_numbers)]
mod tests {
    use super::*;

    fn used(numbers: &[u32]) -> impl Iterator<Item = u32> + '_ {
        numbers.iter().copied()
    }

    #[test]
    fn lowest_free_number_is_picked() {
        assert_eq!(pick_number(used(&[]), 2, None), Ok(1));
        assert_eq!(pick_number(used(&[1]), 3, None), Ok(2));
        assert_eq!(pick_number(used(&[2, 3]), 3, None), Ok(1));
        assert_eq!(pick_number(used(&[1, 3]), 3, None), Ok(2));
        // The last number is usable (the illumos 2007 driver's off-by-one).
        assert_eq!(pick_number(used(&[1, 2]), 3, None), Ok(3));
        assert_eq!(
            pick_number(used(&[1, 2, 3]), 3, None),
            Err(NumberError::NoneFree)
        );
        assert_eq!(
            pick_number(used(&[1, 2, 3, 4]), 3, None),
            Err(NumberError::NoneFree)
        );
    }

    #[test]
    fn requested_numbers_are_checked() {
        let taken = [2];
        assert_eq!(
            pick_number(used(&taken), 3, Some(0)),
            Err(NumberError::Zero)
        );
        assert_eq!(pick_number(used(&taken), 3, Some(1)), Ok(1));
        assert_eq!(
            pick_number(used(&taken), 3, Some(2)),
            Err(NumberError::InUse)
        );
        assert_eq!(pick_number(used(&taken), 3, Some(3)), Ok(3));
        assert_eq!(
            pick_number(used(&taken), 3, Some(4)),
            Err(NumberError::OutOfRange)
        );
        assert_eq!(
            pick_number(used(&taken), 3, Some(u32::MAX)),
            Err(NumberError::OutOfRange)
        );
        assert_eq!(pick_number(used(&[]), 65536, Some(65536)), Ok(65536));
    }

    #[test]
    fn errnos_follow_the_abi() {
        assert_eq!(NumberError::Zero.to_error(), EINVAL);
        assert_eq!(NumberError::OutOfRange.to_error(), ERANGE);
        assert_eq!(NumberError::InUse.to_error(), EEXIST);
        assert_eq!(NumberError::NoneFree.to_error(), EAGAIN);
    }

    #[test]
    fn name_hashes_differ_for_different_names() {
        assert_eq!(name_hash(b"/a"), name_hash(b"/a"));
        assert_ne!(name_hash(b"/a"), name_hash(b"/b"));
        assert_ne!(name_hash(b""), name_hash(b"/"));
    }
}
