// SPDX-License-Identifier: GPL-2.0

//! lofi: loopback file driver.
//!
//! Exposes regular files (and block devices) as block devices, after the
//! illumos lofi driver. `/dev/lofictl` takes mapping commands; each mapping
//! becomes a disk `/dev/lofi/N`.
//!
//! See Documentation/admin-guide/blockdev/lofi.rst.

mod control;
mod geometry;
mod kext;

use control::{Control, CONTROL_MODE, CONTROL_NAME};
use kernel::prelude::*;
use kext::misc::{MiscOptions, MiscRegistration};

module! {
    type: LofiModule,
    name: "lofi",
    authors: ["The lofi authors"],
    description: "Loopback file driver: files as block devices",
    license: "GPL",
}

/// The module's state: everything it registers.
///
/// Registered last in `init`, so that nothing can fail after the control
/// device has become visible to user space.
#[pin_data]
struct LofiModule {
    #[pin]
    control: MiscRegistration<Control>,
}

impl kernel::InPlaceModule for LofiModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            control <- MiscRegistration::register(
                MiscOptions {
                    name: CONTROL_NAME,
                    mode: CONTROL_MODE,
                },
                Control,
            ),
        })
    }
}
