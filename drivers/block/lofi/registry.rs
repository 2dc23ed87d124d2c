// SPDX-License-Identifier: GPL-2.0

//! The table of mappings, indexed by mapping number N (1 ..= max).
//!
//! # Locking
//!
//! One global mutex, [`REGISTRY`], serialises map, unmap and lookups. A
//! device's state mutex is taken inside it, never the other way round. The
//! block layer takes a disk's `open_mutex` around the open and release
//! callbacks, which take only the device's state mutex. Nothing here holds
//! the table lock (or a state lock) while adding or deleting a disk or
//! closing a backing file: those run unlocked, with the slot marked
//! [`Slot::Building`] or [`Slot::Busy`] so that its number is neither
//! reused nor looked up meanwhile.

use crate::{
    device::{Device, LofiDisk},
    kext::blk::Disk,
};
use kernel::{prelude::*, sync::Arc};

/// A mapping: its disk and the device state the disk serves.
pub(crate) struct Mapping {
    /// Dropped first (field order): the disk goes away while the device
    /// its callbacks use is still alive.
    pub(crate) disk: Disk<LofiDisk>,
    pub(crate) device: Arc<Device>,
}

/// One number's entry.
pub(crate) enum Slot {
    /// The number is free.
    Free,
    /// A mapping of the file `identity` is being set up under this
    /// number. It counts as a mapping of that file for the same-file
    /// check, so that two concurrent maps of one file cannot both win.
    Building { identity: usize, read_only: bool },
    /// A mapping is being torn down under this number.
    Busy,
    /// A mapping, in any phase: one force-unmapped or detached at its
    /// last close stays here, its number in use, until it is removed.
    Mapped(KBox<Mapping>),
}

/// The table of mappings.
pub(crate) struct Registry {
    slots: KVec<Slot>,
}

kernel::sync::global_lock! {
    // SAFETY: Initialised by `init()` in the module's init, before the
    // control device is registered, and never used before that.
    pub(crate) unsafe(uninit) static REGISTRY: Mutex<Registry> = Registry::new();
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

/// Picks a number among `free` (index i is number i + 1): `requested`, or
/// the lowest free one when `None`.
pub(crate) fn pick_number(
    free: impl Iterator<Item = bool>,
    max: u32,
    requested: Option<u32>,
) -> Result<u32, NumberError> {
    match requested {
        Some(0) => Err(NumberError::Zero),
        Some(n) if n > max => Err(NumberError::OutOfRange),
        Some(n) => match free.into_iter().nth(n as usize - 1) {
            Some(true) => Ok(n),
            _ => Err(NumberError::InUse),
        },
        None => free
            .take(max as usize)
            .position(|f| f)
            .and_then(|i| u32::try_from(i + 1).ok())
            .ok_or(NumberError::NoneFree),
    }
}

impl Registry {
    const fn new() -> Self {
        Self { slots: KVec::new() }
    }

    /// The highest mapping number.
    pub(crate) fn max(&self) -> u32 {
        // `init` sized the table from a u32.
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    fn slot_mut(&mut self, n: u32) -> Option<&mut Slot> {
        self.slots.get_mut((n as usize).checked_sub(1)?)
    }

    /// The mapping with number `n`, if mapped and not gone.
    pub(crate) fn mapped(&self, n: u32) -> Option<&Mapping> {
        match self.slots.get((n as usize).checked_sub(1)?)? {
            Slot::Mapped(m) if m.device.is_mapped() => Some(m),
            _ => None,
        }
    }

    /// Live mappings (not gone), with their numbers.
    pub(crate) fn live(&self) -> impl Iterator<Item = &Mapping> {
        self.slots.iter().filter_map(|s| match s {
            Slot::Mapped(m) if m.device.is_mapped() => Some(&**m),
            _ => None,
        })
    }

    /// Whether a mapping of the file `identity`, live or being set up,
    /// conflicts with a new one: unless both are read-only, a file is
    /// mapped once.
    fn file_in_use(&self, identity: usize, read_only: bool) -> bool {
        self.slots.iter().any(|s| match s {
            Slot::Mapped(m) if m.device.is_mapped() => {
                m.device.identity == identity && !(m.device.read_only && read_only)
            }
            Slot::Building {
                identity: other,
                read_only: other_ro,
            } => *other == identity && !(*other_ro && read_only),
            _ => false,
        })
    }

    /// Reserves a number (see [`pick_number`]) for a new mapping of the
    /// file `identity`, and marks it as being built. `EBUSY` if the file
    /// is in use (see [`Registry::file_in_use`]).
    pub(crate) fn reserve(
        &mut self,
        requested: Option<u32>,
        identity: usize,
        read_only: bool,
    ) -> Result<u32> {
        if self.file_in_use(identity, read_only) {
            return Err(EBUSY);
        }
        let n = pick_number(
            self.slots.iter().map(|s| matches!(s, Slot::Free)),
            self.max(),
            requested,
        )
        .map_err(|e| e.to_error())?;
        if let Some(slot) = self.slot_mut(n) {
            *slot = Slot::Building {
                identity,
                read_only,
            };
        }
        Ok(n)
    }

    /// Fills a reserved number with its mapping.
    pub(crate) fn install(&mut self, n: u32, mapping: KBox<Mapping>) {
        if let Some(slot) = self.slot_mut(n) {
            *slot = Slot::Mapped(mapping);
        }
    }

    /// Frees a number being built or torn down.
    pub(crate) fn release(&mut self, n: u32) {
        if let Some(slot) = self.slot_mut(n) {
            *slot = Slot::Free;
        }
    }

    /// Takes the mapping out of number `n`, leaving it busy.
    pub(crate) fn take(&mut self, n: u32) -> Option<KBox<Mapping>> {
        let slot = self.slot_mut(n)?;
        match core::mem::replace(slot, Slot::Busy) {
            Slot::Mapped(m) => Some(m),
            other => {
                *slot = other;
                None
            }
        }
    }
}

/// The table's storage, owned by the module: dropping it (at unload)
/// frees the table. A static is never dropped, so without this the table
/// would leak at every unload.
///
/// # Invariants
///
/// At most one exists, created by [`init`]; when it is dropped no mapping
/// exists (each holds a module reference) and the control device is gone.
pub(crate) struct Table(());

impl Drop for Table {
    fn drop(&mut self) {
        let slots = core::mem::take(&mut REGISTRY.lock().slots);
        drop(slots);
    }
}

/// Sizes the table for numbers 1 ..= `max`.
pub(crate) fn init(max: u32) -> Result<Table> {
    // SAFETY: Called once, from the module's init, before any other use.
    unsafe { REGISTRY.init() };
    let mut slots = KVec::with_capacity(max as usize, GFP_KERNEL)?;
    for _ in 0..max {
        slots.push(Slot::Free, GFP_KERNEL)?;
    }
    REGISTRY.lock().slots = slots;
    Ok(Table(()))
}

/// Tears down a mapping taken out of the table: stops its I/O, removes its
/// disk and closes its file, then frees its number. Called with no lock
/// held.
pub(crate) fn destroy(n: u32, mapping: KBox<Mapping>) {
    mapping.device.shut_down_io();
    drop(mapping);
    REGISTRY.lock().release(n);
}

/// Removal of a device unmapped while open, after its last close (from the
/// removal work item).
pub(crate) fn remove_after_last_close(dev: &Arc<Device>) {
    let mapping = {
        let mut reg = REGISTRY.lock();
        match reg.take(dev.number) {
            Some(m) if Arc::ptr_eq(&m.device, dev) => Some(m),
            Some(other) => {
                // Not ours (cannot happen: a number is reused only after
                // removal); put it back untouched.
                reg.install(dev.number, other);
                None
            }
            None => None,
        }
    };
    if let Some(mapping) = mapping {
        destroy(dev.number, mapping);
    }
}

#[kunit_tests(lofi_numbers)]
mod tests {
    use super::*;

    fn free(pattern: &[bool]) -> impl Iterator<Item = bool> + '_ {
        pattern.iter().copied()
    }

    #[test]
    fn lowest_free_number_is_picked() {
        assert_eq!(pick_number(free(&[true, true]), 2, None), Ok(1));
        assert_eq!(pick_number(free(&[false, true, true]), 3, None), Ok(2));
        // The last number is usable (the illumos 2007 driver's off-by-one).
        assert_eq!(pick_number(free(&[false, false, true]), 3, None), Ok(3));
        assert_eq!(
            pick_number(free(&[false, false, false]), 3, None),
            Err(NumberError::NoneFree)
        );
    }

    #[test]
    fn requested_numbers_are_checked() {
        let slots = [true, false, true];
        assert_eq!(
            pick_number(free(&slots), 3, Some(0)),
            Err(NumberError::Zero)
        );
        assert_eq!(pick_number(free(&slots), 3, Some(1)), Ok(1));
        assert_eq!(
            pick_number(free(&slots), 3, Some(2)),
            Err(NumberError::InUse)
        );
        assert_eq!(pick_number(free(&slots), 3, Some(3)), Ok(3));
        assert_eq!(
            pick_number(free(&slots), 3, Some(4)),
            Err(NumberError::OutOfRange)
        );
        assert_eq!(
            pick_number(free(&slots), 3, Some(u32::MAX)),
            Err(NumberError::OutOfRange)
        );
    }

    #[test]
    fn errnos_follow_the_abi() {
        assert_eq!(NumberError::Zero.to_error(), EINVAL);
        assert_eq!(NumberError::OutOfRange.to_error(), ERANGE);
        assert_eq!(NumberError::InUse.to_error(), EEXIST);
        assert_eq!(NumberError::NoneFree.to_error(), EAGAIN);
    }
}
