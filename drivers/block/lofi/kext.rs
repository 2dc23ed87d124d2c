// SPDX-License-Identifier: GPL-2.0

//! Safe abstractions over C kernel interfaces that `kernel` does not (yet)
//! provide in the form lofi needs.
//!
//! Every use of raw `kernel::bindings` in lofi lives below this module, so
//! the rest of the driver is safe Rust. Static inline C functions that the
//! bindings cannot reach are wrapped in `lofi_helpers.c` (declared in
//! `helpers`), as `rust/helpers` does for the kernel crate. Each file is written so that it
//! could move into `rust/kernel` on its own.

pub(crate) mod blk;
pub(crate) mod decompress;
pub(crate) mod disk_attrs;
pub(crate) mod event;
pub(crate) mod file;
pub(crate) mod file_io;
pub(crate) mod helpers;
pub(crate) mod misc;
pub(crate) mod module_ref;
pub(crate) mod ratelimit;
pub(crate) mod request_guard;
pub(crate) mod workqueue;
