// SPDX-License-Identifier: GPL-2.0

//! Compressed images (illumos `lofiadm -C`): mapped read-only, their
//! segments decompressed as they are read. `format` reads the on-disk
//! format; `image` serves a mapped image's reads.

pub(crate) mod format;
pub(crate) mod image;

pub(crate) use format::detect;
pub(crate) use image::CompressedImage;
