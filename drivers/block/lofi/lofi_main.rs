// SPDX-License-Identifier: GPL-2.0

//! lofi: loopback file driver.
//!
//! Exposes regular files (and block devices) as block devices, after the
//! illumos lofi driver. `/dev/lofictl` takes mapping commands; each mapping
//! becomes a disk `lofiN` (`/dev/lofiN`; labeled ones have partitions).
//!
//! See Documentation/admin-guide/blockdev/lofi.rst and
//! Documentation/userspace-api/lofi.rst.

mod backing;
mod compressed;
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

/// The module's state: the control device, whose handler owns the
/// mapping table and the teardown workqueue.
///
/// Every device holds a reference on the module, so none exists when the
/// module is dropped; dropping the handler destroys the teardown queue,
/// which waits for any teardown item still finishing.
#[pin_data]
struct LofiModule {
    #[pin]
    control: MiscRegistration<Control>,
}

impl kernel::InPlaceModule for LofiModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let max = module_parameters::lofi_max_files.value();
        try_pin_init!(Self {
            control <- MiscRegistration::register(
                MiscOptions {
                    name: CONTROL_NAME,
                    mode: CONTROL_MODE,
                },
                Control::new(checked_max_files(max)?)?,
            ),
        })
    }
}

/// `lofi_max_files`, if it is acceptable.
fn checked_max_files(max: u32) -> Result<u32> {
    if !(1..=MAX_FILES_LIMIT).contains(&max) {
        pr_err!("lofi_max_files={max} is outside 1..={MAX_FILES_LIMIT}\n");
        return Err(EINVAL);
    }
    Ok(max)
}
