// SPDX-License-Identifier: GPL-2.0

//! Misc character devices whose node mode the driver chooses.
//!
//! `kernel::miscdevice` registers nodes with the default mode (0600) and
//! gives no way to set `struct miscdevice::mode`. lofi's control device must
//! be 0644 so that unprivileged users can run queries, so this is a small
//! variant of that abstraction with a `mode` option. It is shaped so that
//! the option could move into `kernel::miscdevice` as it is.
//!
//! The handler is embedded in the registration. `misc_open()` points each
//! file's `private_data` at the registered `struct miscdevice`; the file
//! operations find the handler from there with `container_of!`.

use core::marker::PhantomData;
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_long, c_uint, c_ulong},
    fs::File,
    module::{this_module, ModuleMetadata},
    prelude::*,
    types::Opaque,
};

/// How to register a misc device.
#[derive(Clone, Copy)]
pub(crate) struct MiscOptions {
    /// The node's name under `/dev`.
    pub(crate) name: &'static CStr,
    /// The node's permission bits (for example `0o644`).
    pub(crate) mode: u16,
}

/// What a misc device does with the calls made on its open files.
pub(crate) trait MiscHandler: Send + Sync + Sized {
    /// The module whose reference an open file holds.
    type OwnerModule: ModuleMetadata;

    /// Handles `ioctl(2)` on an open file of the device. Returns the call's
    /// non-negative result or an errno.
    fn ioctl(&self, file: &File, cmd: u32, arg: usize) -> Result<isize>;
}

/// A registered misc device with its handler.
///
/// # Invariants
///
/// `inner` is registered with `misc_register()` from the moment
/// initialisation succeeds until `drop`, and its `fops` are those of
/// [`MiscVTable<T>`]; `handler` is initialised before `inner` is registered
/// and dropped only after it is deregistered.
#[pin_data(PinnedDrop)]
pub(crate) struct MiscRegistration<T: MiscHandler> {
    handler: T,
    #[pin]
    inner: Opaque<bindings::miscdevice>,
}

// SAFETY: The registration only hands out `&T` (which is `Sync`) and the C
// side of `struct miscdevice` is safe to use from any thread once registered.
unsafe impl<T: MiscHandler> Sync for MiscRegistration<T> {}
// SAFETY: Deregistration may happen on any thread; `T` is `Send`.
unsafe impl<T: MiscHandler> Send for MiscRegistration<T> {}

impl<T: MiscHandler> MiscRegistration<T> {
    /// Registers a misc device served by `handler`.
    pub(crate) fn register(opts: MiscOptions, handler: T) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // Initialised first: the device may be opened as soon as it is
            // registered.
            handler,
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut raw: bindings::miscdevice = pin_init::zeroed();
                raw.minor = bindings::MISC_DYNAMIC_MINOR as i32;
                raw.name = opts.name.as_char_ptr();
                raw.mode = opts.mode;
                raw.fops = MiscVTable::<T>::build();
                // SAFETY: `slot` is valid for writes and pinned: it is the
                // memory of `inner`, which never moves once initialised.
                unsafe { slot.write(raw) };
                // SAFETY: `slot` holds a fully initialised `struct
                // miscdevice` whose name and fops are `'static`.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl<T: MiscHandler> PinnedDrop for MiscRegistration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant `inner` is registered.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

/// The `file_operations` of a [`MiscRegistration<T>`].
struct MiscVTable<T: MiscHandler>(PhantomData<T>);

impl<T: MiscHandler> MiscVTable<T> {
    /// Finds the registration of the misc device `file` was opened on.
    ///
    /// # Safety
    ///
    /// `file` must be an open file of a registered [`MiscRegistration<T>`].
    unsafe fn registration<'a>(file: *mut bindings::file) -> &'a MiscRegistration<T> {
        // SAFETY: The caller guarantees `file` is valid; `misc_open()` set
        // its `private_data` to the `struct miscdevice` it was opened on,
        // and no open of ours replaces it.
        let misc = unsafe { (*file).private_data }.cast::<bindings::miscdevice>();
        // SAFETY: That `struct miscdevice` is the `inner` field of a
        // `MiscRegistration<T>` (`Opaque<T>` is `repr(transparent)`), which
        // stays registered while the file is open: an open file holds a
        // reference on the owner module, which owns the registration.
        unsafe {
            &*kernel::container_of!(
                misc.cast::<Opaque<bindings::miscdevice>>(),
                MiscRegistration<T>,
                inner
            )
        }
    }

    /// # Safety
    ///
    /// Called by the VFS on an open file of a [`MiscRegistration<T>`].
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: The VFS passes an open file of our device.
        let reg = unsafe { Self::registration(file) };
        // SAFETY: `file` is valid for the duration of this call and there is
        // no active fdget_pos region on it on this thread.
        let file = unsafe { File::from_raw_file(file) };
        match reg.handler.ioctl(file, cmd, arg) {
            Ok(ret) => ret as c_long,
            Err(err) => err.to_errno() as c_long,
        }
    }

    const VTABLE: bindings::file_operations = bindings::file_operations {
        owner: this_module::<T::OwnerModule>().as_ptr(),
        unlocked_ioctl: Some(Self::ioctl),
        // The ioctl structures are the same for 32- and 64-bit callers, so
        // only the argument pointer needs converting.
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: bindings::compat_ptr_ioctl,
        llseek: Some(bindings::noop_llseek),
        ..pin_init::zeroed()
    };

    const fn build() -> &'static bindings::file_operations {
        &Self::VTABLE
    }
}
