// SPDX-License-Identifier: GPL-2.0

//! lofi: loopback file driver.
//!
//! Exposes regular files (and block devices) as block devices, after the
//! illumos lofi driver. `/dev/lofictl` takes mapping commands; each mapping
//! becomes a disk `/dev/lofi/N`.
//!
//! See Documentation/admin-guide/blockdev/lofi.rst and
//! Documentation/userspace-api/lofi.rst.

mod backing;
mod control;
mod device;
mod geometry;
mod kext;
mod lifecycle;
mod registry;
mod uapi;

use control::{Control, CONTROL_MODE, CONTROL_NAME};
use kernel::prelude::*;
use kext::misc::{MiscOptions, MiscRegistration};

module! {
    type: LofiModule,
    name: "lofi",
    authors: ["The lofi authors"],
    description: "Loopback file driver: files as block devices",
    license: "GPL",
    params: {
        lofi_max_files: u32 {
            default: 128,
            description: "Highest mapping number (1..65536; default 128)",
        },
    },
}

/// The largest `lofi_max_files` accepted.
const MAX_FILES_LIMIT: u32 = 65536;

/// The module's state: everything it registers.
///
/// The control device is registered last in `init`, so that nothing can
/// fail after it has become visible to user space. Every mapping holds a
/// reference on the module, so none exists when the module is dropped.
/// Fields drop in order: the control device goes before the table.
#[pin_data]
struct LofiModule {
    #[pin]
    control: MiscRegistration<Control>,
    table: registry::Table,
}

impl kernel::InPlaceModule for LofiModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let max = module_parameters::lofi_max_files.value();
        try_pin_init!(Self {
            // First: the control device's commands use the table.
            table: new_table(max)?,
            control <- MiscRegistration::register(
                MiscOptions {
                    name: CONTROL_NAME,
                    mode: CONTROL_MODE,
                },
                Control::new()?,
            ),
        })
    }
}

/// The mapping table for numbers 1 ..= `max`, if `max` is acceptable.
fn new_table(max: u32) -> Result<registry::Table> {
    if !(1..=MAX_FILES_LIMIT).contains(&max) {
        pr_err!("lofi_max_files={max} is outside 1..={MAX_FILES_LIMIT}\n");
        return Err(EINVAL);
    }
    Ok(registry::init(max))
}
