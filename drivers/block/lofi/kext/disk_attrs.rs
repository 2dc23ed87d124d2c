// SPDX-License-Identifier: GPL-2.0

//! Read-only sysfs attributes of a disk, in a directory of their own
//! below `/sys/block/<disk>/` (as `loop` has `/sys/block/loopN/loop/`).
//!
//! A driver names its attributes once ([`DiskAttributes::new`]) and gives
//! the set to each disk it adds ([`super::blk::Disk::add`]); reading a file
//! calls [`DiskOps::show_attribute`] with the disk's data and the index of
//! the name, which writes the value into a [`SysfsText`].

use super::blk::DiskOps;
use core::{fmt, marker::PhantomData, ptr};
use kernel::{bindings, ffi::c_char, page::PAGE_SIZE, prelude::*};

/// The text of a sysfs attribute being read: at most one page minus one
/// byte (what sysfs accepts); what does not fit is cut off.
pub(crate) struct SysfsText<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SysfsText<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }
}

impl fmt::Write for SysfsText<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

impl SysfsText<'_> {
    /// Appends `bytes` (not necessarily UTF-8: a file name), as far as
    /// they fit.
    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) {
        let room = self.buf.len() - self.len;
        let n = bytes.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }
}

/// One attribute, and its index among the driver's names.
#[repr(C)]
struct Attr {
    dev_attr: bindings::device_attribute,
    index: usize,
}

/// The attribute directory of the disks of a [`DiskOps`] driver.
///
/// # Invariants
///
/// `_attrs`, `_ptrs`, `_group` and `groups` are never resized or moved out
/// of their heap blocks after [`DiskAttributes::new`]: `_ptrs` holds the
/// addresses of the `attr` of every element of `_attrs` and a null,
/// `_group` points to `_ptrs` and `groups` to `_group` and a null. Each attribute's
/// show callback is [`show::<T>`], and the set is given only to disks of
/// `T`, whose `private_data` is a `T::Data`.
pub(crate) struct DiskAttributes<T: DiskOps> {
    // Kept for the pointers into them.
    _attrs: KVec<Attr>,
    _ptrs: KVec<*mut bindings::attribute>,
    _group: KBox<bindings::attribute_group>,
    groups: KBox<[*const bindings::attribute_group; 2]>,
    _ops: PhantomData<T>,
}

// SAFETY: After construction nothing is written; the raw pointers point
// into the value's own heap blocks and to `'static` names.
unsafe impl<T: DiskOps> Send for DiskAttributes<T> {}
// SAFETY: As above: shared use only reads.
unsafe impl<T: DiskOps> Sync for DiskAttributes<T> {}

impl<T: DiskOps> DiskAttributes<T> {
    /// The directory `dir` with one file per name (mode 0444).
    pub(crate) fn new(dir: &'static CStr, names: &[&'static CStr]) -> Result<Self> {
        let mut attrs = KVec::with_capacity(names.len(), GFP_KERNEL)?;
        for (index, name) in names.iter().enumerate() {
            // SAFETY: All-zeroes is a valid `device_attribute` (no callbacks,
            // no lockdep key yet).
            let mut dev_attr: bindings::device_attribute = unsafe { core::mem::zeroed() };
            dev_attr.attr.name = name.as_char_ptr();
            dev_attr.attr.mode = 0o444;
            dev_attr.__bindgen_anon_1.show = Some(show::<T>);
            // What `sysfs_attr_init()` does for an attribute that is not
            // static: lockdep needs a static key for the file's lock.
            #[cfg(CONFIG_DEBUG_LOCK_ALLOC)]
            {
                dev_attr.attr.key = kernel::static_lock_class!().as_ptr();
            }
            attrs.push(Attr { dev_attr, index }, GFP_KERNEL)?;
        }
        let mut ptrs = KVec::with_capacity(names.len() + 1, GFP_KERNEL)?;
        for attr in attrs.iter_mut() {
            ptrs.push(&raw mut attr.dev_attr.attr, GFP_KERNEL)?;
        }
        ptrs.push(ptr::null_mut(), GFP_KERNEL)?;
        // SAFETY: All-zeroes is a valid, empty `attribute_group`.
        let mut group: KBox<bindings::attribute_group> =
            KBox::new(unsafe { core::mem::zeroed() }, GFP_KERNEL)?;
        group.name = dir.as_char_ptr();
        group.__bindgen_anon_2.attrs = ptrs.as_mut_ptr();
        let groups = KBox::new([&raw const *group, ptr::null()], GFP_KERNEL)?;
        // INVARIANT: Set up as stated; nothing is resized or moved later.
        Ok(Self {
            _attrs: attrs,
            _ptrs: ptrs,
            _group: group,
            groups,
            _ops: PhantomData,
        })
    }

    /// The null-terminated list of groups for `device_add_disk()`, valid
    /// as long as `self`.
    pub(crate) fn groups(&self) -> *const *const bindings::attribute_group {
        self.groups.as_ptr()
    }
}

/// Reads attribute `attr` of the disk whose device is `dev` into `buf`.
///
/// # Safety
///
/// Called by sysfs for a file of a [`DiskAttributes<T>`] of a disk of `T`
/// that has not been removed: `dev` is that disk's device, `attr` one of
/// the set's attributes and `buf` a page.
unsafe extern "C" fn show<T: DiskOps>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: `dev` is the `bd_device` of the disk's whole-disk
    // `block_device` (`disk_to_dev()`), whose `bd_disk` is the disk; its
    // `private_data` is a `T::Data` the disk holds a reference to until it
    // is released, after its sysfs files are gone (type invariant of
    // `DiskAttributes`: given only to disks of `T`).
    let data = unsafe {
        let bdev = kernel::container_of!(dev, bindings::block_device, bd_device);
        &*(*(*bdev).bd_disk).private_data.cast::<T::Data>()
    };
    // SAFETY: `attr` is the `dev_attr` of an `Attr` of the set.
    let index = unsafe { (*kernel::container_of!(attr, Attr, dev_attr)).index };
    // SAFETY: sysfs hands a page to fill, not used by anyone else during
    // the call.
    let page = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), PAGE_SIZE - 1) };
    let mut text = SysfsText::new(page);
    // A value that does not fit is cut off: nothing to report.
    let _ = T::show_attribute(data, index, &mut text);
    // A page is far below `isize::MAX`.
    text.len as isize
}
