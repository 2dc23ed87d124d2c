// SPDX-License-Identifier: GPL-2.0

//! Test-only module that makes the guest kernel misbehave on request, so that
//! the VM runner's self-test can show that it catches a kernel warning and a
//! hung guest. It is built only by the self-test and never installed.

use kernel::{prelude::*, sync::Completion};

module! {
    type: LofiFault,
    name: "lofi_fault",
    authors: ["The lofi authors"],
    description: "Fault injection for lofi's VM runner self-test",
    license: "GPL",
    params: {
        warn: bool {
            default: false,
            description: "Emit a kernel warning (WARN_ON) while loading",
        },
        hang: bool {
            default: false,
            description: "Never finish loading (uninterruptible wait)",
        },
    },
}

struct LofiFault;

impl kernel::Module for LofiFault {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if module_parameters::warn.value() {
            kernel::warn_on!(true);
        }
        if module_parameters::hang.value() {
            pr_info!("lofi_fault: hanging as asked\n");
            let never = KBox::pin_init(Completion::new(), GFP_KERNEL)?;
            never.wait_for_completion();
        }
        Ok(LofiFault)
    }
}
