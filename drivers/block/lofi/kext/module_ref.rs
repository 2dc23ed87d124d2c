// SPDX-License-Identifier: GPL-2.0

//! A counted reference on a module (`try_module_get()`/`module_put()`).

use kernel::{bindings, module::ModuleMetadata, prelude::*};

/// Keeps a module loaded while it exists.
///
/// # Invariants
///
/// `module` is a module on which this value holds one reference (taken
/// with `try_module_get()`).
pub(crate) struct ModuleRef {
    module: *mut bindings::module,
}

// SAFETY: Module references may be taken and dropped on any thread.
unsafe impl Send for ModuleRef {}
// SAFETY: `&ModuleRef` allows nothing.
unsafe impl Sync for ModuleRef {}

impl ModuleRef {
    /// Takes a reference on `M`'s module; `ENODEV` if it is going away.
    pub(crate) fn get<M: ModuleMetadata>() -> Result<Self> {
        let module = kernel::module::this_module::<M>().as_ptr();
        // SAFETY: `module` is this module (or NULL when built in, which
        // `try_module_get` accepts).
        if unsafe { bindings::try_module_get(module) } {
            // INVARIANT: The reference was just taken.
            Ok(Self { module })
        } else {
            Err(ENODEV)
        }
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold one reference.
        unsafe { bindings::module_put(self.module) };
    }
}
