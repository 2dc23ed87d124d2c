// SPDX-License-Identifier: GPL-2.0

//! The kernel's decompressors (zlib, the xz decoder's MicroLZMA mode,
//! zstd and LZ4), one segment at a time, through the C glue of
//! `lofi_decompress.c` (their headers are not in the Rust bindings).

use core::ptr::NonNull;
use kernel::{ffi::c_long, prelude::*};

/// The C glue's opaque context.
#[repr(C)]
struct LofiDecomp {
    _private: [u8; 0],
}

extern "C" {
    fn lofi_decomp_alloc(codec: i32) -> *mut LofiDecomp;
    fn lofi_decomp_free(d: *mut LofiDecomp);
    fn lofi_decomp_run(
        d: *mut LofiDecomp,
        src: *mut u8,
        src_len: usize,
        dst: *mut u8,
        dst_len: usize,
    ) -> c_long;
}

/// A decompression algorithm of the kernel (`enum lofi_codec` of
/// `lofi_decompress.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    /// A zlib stream (RFC 1950).
    Zlib = 1,
    /// LZMA properties, the 8-byte size, then a raw LZMA1 stream, with or
    /// without an end-of-payload marker (the properties must have
    /// `lc + lp <= 4`, as LZMA2 requires).
    Lzma = 2,
    /// A zstd frame.
    Zstd = 3,
    /// An LZ4 block (the block format, not the frame format).
    Lz4 = 4,
}

/// A decompression context for one codec, used by one caller at a time.
///
/// # Invariants
///
/// `ctx` came from `lofi_decomp_alloc()` and is freed only on drop.
pub(crate) struct Decompressor {
    ctx: NonNull<LofiDecomp>,
}

// SAFETY: The context is plain memory, not tied to a thread; `&mut self`
// serializes its use.
unsafe impl Send for Decompressor {}
// SAFETY: Nothing is reachable through `&self`.
unsafe impl Sync for Decompressor {}

impl Decompressor {
    /// A context for `codec` (sleeps).
    pub(crate) fn new(codec: Codec) -> Result<Self> {
        // SAFETY: Any codec value is accepted (unknown ones give null).
        let ctx = unsafe { lofi_decomp_alloc(codec as i32) };
        // INVARIANT: From `lofi_decomp_alloc()`.
        NonNull::new(ctx).map(|ctx| Self { ctx }).ok_or(ENOMEM)
    }

    /// Decompresses `src` into `dst`, which it must fill exactly: `EIO`
    /// if the data is corrupt, truncated, or decompresses to any other
    /// size. `src` may be changed. Sleeps (long runs of work).
    pub(crate) fn run(&mut self, src: &mut [u8], dst: &mut [u8]) -> Result {
        // SAFETY: `ctx` is live (type invariant) and ours alone (`&mut
        // self`); `src` and `dst` are valid for their lengths, and the C
        // side reads and writes only within them.
        let n = unsafe {
            lofi_decomp_run(
                self.ctx.as_ptr(),
                src.as_mut_ptr(),
                src.len(),
                dst.as_mut_ptr(),
                dst.len(),
            )
        };
        if usize::try_from(n).ok() != Some(dst.len()) {
            return Err(EIO);
        }
        Ok(())
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from `lofi_decomp_alloc()` (type invariant)
        // and is not used again.
        unsafe { lofi_decomp_free(self.ctx.as_ptr()) };
    }
}
