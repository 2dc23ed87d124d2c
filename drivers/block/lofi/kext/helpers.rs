// SPDX-License-Identifier: GPL-2.0

//! The C wrappers of `lofi_helpers.c`: static inline kernel functions that
//! the generated bindings cannot call (see `lofi_helpers.h`, whose
//! prototypes these declarations repeat). Only `kext` uses them.

use kernel::{bindings, ffi::c_void};

// The kernel's structs carry zero-sized markers that the lint flags; they
// are passed by pointer only, as the generated bindings do (which allow the
// lint the same way in rust/bindings/lib.rs).
#[allow(improper_ctypes)]
extern "C" {
    /// `kiocb_start_write()`: takes the backing file system's freeze
    /// protection for a write.
    pub(crate) fn lofi_kiocb_start_write(iocb: *mut bindings::kiocb);
    /// `kiocb_end_write()`: releases it, in any context.
    pub(crate) fn lofi_kiocb_end_write(iocb: *mut bindings::kiocb);
    /// `queue_limits_start_update()`, the snapshot written to `lim`.
    pub(crate) fn lofi_queue_limits_start_update(
        q: *mut bindings::request_queue,
        lim: *mut bindings::queue_limits,
    );
    /// `bio_blkcg_css()`, or null without `CONFIG_BLK_CGROUP`.
    pub(crate) fn lofi_bio_blkcg_css(bio: *mut bindings::bio)
        -> *mut bindings::cgroup_subsys_state;
    /// The memory cgroup of a blkcg's cgroup, referenced (or null).
    pub(crate) fn lofi_memcg_css_get(
        blkcg_css: *mut bindings::cgroup_subsys_state,
    ) -> *mut bindings::cgroup_subsys_state;
    /// `css_put()`.
    pub(crate) fn lofi_css_put(css: *mut bindings::cgroup_subsys_state);
    /// `kthread_associate_blkcg()`.
    pub(crate) fn lofi_kthread_associate_blkcg(css: *mut bindings::cgroup_subsys_state);
    /// `set_active_memcg(mem_cgroup_from_css())`: returns the previous one.
    pub(crate) fn lofi_set_active_memcg_css(
        memcg_css: *mut bindings::cgroup_subsys_state,
    ) -> *mut c_void;
    /// `set_active_memcg()`.
    pub(crate) fn lofi_set_active_memcg(memcg: *mut c_void);
    /// `percpu_ref_get(&q->q_usage_counter)`: a usage reference of the
    /// queue, as a request in flight holds; no freeze completes meanwhile.
    pub(crate) fn lofi_queue_usage_get(q: *mut bindings::request_queue);
    /// `percpu_ref_put(&q->q_usage_counter)` (`blk_queue_exit()`), in any
    /// context.
    pub(crate) fn lofi_queue_usage_put(q: *mut bindings::request_queue);
}
