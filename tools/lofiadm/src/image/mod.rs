//! Compressed images, as illumos lofiadm -C makes them and lofi reads
//! them: `format` is their layout, `codec` compresses one segment,
//! `pipeline` runs segments on several threads in order, `compress` and
//! `uncompress` turn a whole file into the other form, `rewrite` replaces
//! a file by that form safely, and `progress` shows how far it got.

pub mod codec;
pub mod compress;
pub mod format;
pub mod pipeline;
pub mod progress;
pub mod rewrite;
pub mod uncompress;

use std::io;

/// Why turning a file into the other form failed; the caller, who knows
/// the files' names, words it.
#[derive(Debug)]
pub enum Failure {
    /// Reading the source failed.
    Read(io::Error),
    /// Writing the result failed.
    Write(io::Error),
    /// The source is not a valid compressed image: why.
    Corrupt(String),
    /// The file has more segments than the header can count.
    TooLarge,
}
