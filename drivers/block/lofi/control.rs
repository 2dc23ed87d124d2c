// SPDX-License-Identifier: GPL-2.0

//! The control device, `/dev/lofictl`.
//!
//! Mapping commands arrive here as ioctls. The node is mode 0644: anyone may
//! open it for the queries, and the commands that change mappings check that
//! the file was opened for writing.

use crate::kext::misc::MiscHandler;
use kernel::{fs::File, prelude::*};

/// The node's name under `/dev`.
pub(crate) const CONTROL_NAME: &CStr = c"lofictl";

/// The node's permission bits.
pub(crate) const CONTROL_MODE: u16 = 0o644;

/// Serves the control device's ioctls.
pub(crate) struct Control;

impl MiscHandler for Control {
    type OwnerModule = crate::LofiModule;

    fn ioctl(&self, _file: &File, _cmd: u32, _arg: usize) -> Result<isize> {
        // No command is defined yet: unknown commands are ENOTTY.
        Err(ENOTTY)
    }
}
