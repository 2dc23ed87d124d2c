// SPDX-License-Identifier: GPL-2.0

//! A mapped compressed image: its checked index, and the reads of its
//! disk, served by decompressing segments into a small cache.
//!
//! The cache holds the last few segments decompressed (least recently
//! used goes first), so that the requests a sequential reader sends, many
//! to a segment, decompress it once; illumos keeps such a cache too. One
//! lock covers the cache and the decompressor: a mapping decompresses one
//! segment at a time, in the I/O workers.

use super::format::{self, Algorithm, Header, ENTRY_LEN, HEADER_LEN};
use crate::kext::{
    decompress::Decompressor, file::KernelFile, file_io::ReadSink, ratelimit::printk_ratelimit,
};
use kernel::{alloc::KVVec, new_mutex, prelude::*, sync::Mutex};

/// What the segment cache may hold, in bytes (at least
/// [`MIN_CACHED_SEGMENTS`] segments, at most [`MAX_CACHED_SEGMENTS`]).
const CACHE_BYTES: u32 = 1 << 20;
/// Segments cached at least: a request may span two.
const MIN_CACHED_SEGMENTS: u32 = 2;
/// Segments cached at most.
const MAX_CACHED_SEGMENTS: u32 = 8;
/// Index entries read from the file at a time at map time.
const INDEX_CHUNK: usize = 512;

/// One cached segment.
struct Slot {
    /// The segment held, or `None`.
    segment: Option<u64>,
    /// When it was last used (the cache's clock).
    used: u64,
    /// Its uncompressed bytes (the segment size; the last segment uses a
    /// prefix).
    data: KVVec<u8>,
}

/// The decompressor, its input buffer and the cached segments.
struct SegmentCache {
    decompressor: Decompressor,
    /// One segment as stored: header byte and payload.
    stored: KVVec<u8>,
    slots: KVec<Slot>,
    clock: u64,
}

/// A compressed image, mapped.
///
/// # Invariants
///
/// `index` has `header.entries()` entries, absolute file offsets, each
/// segment's (`index[s] .. index[s + 1]`) at least 1 and at most
/// `1 + max_payload(segment_size)` bytes long, inside the file as it was
/// at map time. Every slot's `data` and `stored` are that large.
#[pin_data]
pub(crate) struct CompressedImage {
    /// The algorithm named by the header.
    pub(crate) algorithm: Algorithm,
    header: Header,
    index: KVVec<u64>,
    #[pin]
    cache: Mutex<SegmentCache>,
}

impl CompressedImage {
    /// Reads and checks the header and the whole index of `file`, a
    /// compressed image of `algorithm` (see [`format::detect`]), and sets
    /// up its cache: `EINVAL` for a header or index that is not sound
    /// (see [`Header::parse`] and [`format::check_entry`]), or an error
    /// reading the file.
    pub(crate) fn load(file: &KernelFile, algorithm: Algorithm) -> Result<Pin<KBox<Self>>> {
        let file_size = u64::try_from(file.size()?).map_err(|_| EINVAL)?;
        let mut head = [0u8; HEADER_LEN];
        file.read_exact_at(0, &mut head)?;
        let header = Header::parse(&head, file_size)?;
        let index = read_index(file, &header, file_size)?;

        let segment = header.segment_size as usize;
        // `checked_div`: the segment size is never 0 (`Header::parse`),
        // but without a panic path the compiler need not see that.
        let slots_wanted = CACHE_BYTES
            .checked_div(header.segment_size)
            .unwrap_or(MIN_CACHED_SEGMENTS)
            .clamp(MIN_CACHED_SEGMENTS, MAX_CACHED_SEGMENTS);
        let mut slots = KVec::with_capacity(slots_wanted as usize, GFP_KERNEL)?;
        for _ in 0..slots_wanted {
            slots.push(
                Slot {
                    segment: None,
                    used: 0,
                    data: KVVec::from_elem(0u8, segment, GFP_KERNEL)?,
                },
                GFP_KERNEL,
            )?;
        }
        let stored_len = usize::try_from(1 + format::max_payload(header.segment_size))?;
        let cache = SegmentCache {
            decompressor: Decompressor::new(algorithm.codec)?,
            stored: KVVec::from_elem(0u8, stored_len, GFP_KERNEL)?,
            slots,
            clock: 0,
        };
        // INVARIANT: `read_index` checked the index; the buffers have the
        // sizes said.
        KBox::pin_init(
            try_pin_init!(Self {
                algorithm,
                header,
                index,
                cache <- new_mutex!(cache, "lofi::CompressedImage::cache"),
            }),
            GFP_KERNEL,
        )
    }

    /// The uncompressed size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.header.size
    }

    /// Puts the `len` bytes at disk byte `pos` into `sink`, from the
    /// segments that hold them (read from `file` and decompressed if not
    /// cached). `EIO` for a corrupt segment or a read error (with a
    /// rate-limited message naming mapping `number`). Sleeps: in a worker.
    pub(crate) fn read(
        &self,
        number: u32,
        file: &KernelFile,
        pos: u64,
        len: u64,
        sink: &mut ReadSink<'_>,
    ) -> Result {
        let end = pos.checked_add(len).ok_or(EIO)?;
        if end > self.header.size {
            return Err(EIO);
        }
        let shift = self.header.segment_size.trailing_zeros();
        let mut cache = self.cache.lock();
        let mut at = pos;
        while at < end {
            let seg = at >> shift;
            let within = (at - (seg << shift)) as usize;
            let data = cache.segment(self, number, file, seg)?;
            let take = (data.len() - within.min(data.len())).min((end - at) as usize);
            if take == 0 {
                return Err(EIO);
            }
            sink.put(&data[within..within + take])?;
            at += take as u64;
        }
        Ok(())
    }

    /// Says, rate-limited, that segment `seg` could not be read.
    fn report(&self, number: u32, seg: u64, why: &str, err: Error) -> Error {
        if printk_ratelimit() {
            pr_err!(
                "lofi{}: compressed segment {} ({}): {}\n",
                number,
                seg,
                core::str::from_utf8(self.algorithm.name).unwrap_or("?"),
                why
            );
        }
        err
    }
}

/// Reads the index of the image `header` describes from `file` and
/// checks every entry (see [`format::check_entry`]); returns it as
/// absolute file offsets.
fn read_index(file: &KernelFile, header: &Header, file_size: u64) -> Result<KVVec<u64>> {
    let entries = usize::try_from(header.entries())?;
    let data_len = file_size - header.data_start;
    let mut index = KVVec::with_capacity(entries, GFP_KERNEL)?;
    let mut chunk = KVec::from_elem(0u8, INDEX_CHUNK * ENTRY_LEN as usize, GFP_KERNEL)?;
    let mut prev = None;
    let mut read = 0usize;
    while read < entries {
        let n = (entries - read).min(INDEX_CHUNK);
        let bytes = &mut chunk[..n * ENTRY_LEN as usize];
        file.read_exact_at(HEADER_LEN as u64 + read as u64 * ENTRY_LEN, bytes)?;
        for raw in bytes.chunks_exact(ENTRY_LEN as usize) {
            let offset = format::be64(raw).ok_or(EINVAL)?;
            format::check_entry(header, prev, offset, data_len)?;
            prev = Some(offset);
            // Cannot overflow: `offset` is at most `data_len`.
            index.push(header.data_start + offset, GFP_KERNEL)?;
        }
        read += n;
    }
    Ok(index)
}

impl SegmentCache {
    /// The uncompressed bytes of segment `seg` of `image`, from the cache
    /// or read from `file` into the least recently used slot.
    fn segment(
        &mut self,
        image: &CompressedImage,
        number: u32,
        file: &KernelFile,
        seg: u64,
    ) -> Result<&[u8]> {
        self.clock += 1;
        let clock = self.clock;
        let len = image.header.segment_len(seg) as usize;
        let hit = self.slots.iter().position(|s| s.segment == Some(seg));
        let at = match hit {
            Some(at) => at,
            None => {
                let victim = self
                    .slots
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| (s.segment.is_some(), s.used))
                    .map(|(i, _)| i)
                    .ok_or(EIO)?;
                self.fill(image, number, file, seg, victim)?;
                victim
            }
        };
        let slot = self.slots.get_mut(at).ok_or(EIO)?;
        slot.used = clock;
        slot.data.get(..len).ok_or(EIO)
    }

    /// Reads segment `seg` from `file` and decompresses it into slot
    /// `victim`. The slot is empty if that fails.
    fn fill(
        &mut self,
        image: &CompressedImage,
        number: u32,
        file: &KernelFile,
        seg: u64,
        victim: usize,
    ) -> Result {
        let idx = usize::try_from(seg)?;
        let (start, next) = match (image.index.get(idx), image.index.get(idx + 1)) {
            (Some(&s), Some(&n)) => (s, n),
            _ => return Err(EIO),
        };
        let len = image.header.segment_len(seg) as usize;
        let slot = self.slots.get_mut(victim).ok_or(EIO)?;
        slot.segment = None;
        let out = slot.data.get_mut(..len).ok_or(EIO)?;
        // Bounded by the index check at map time (type invariant).
        let stored_len = usize::try_from(next - start)?;
        let stored = self.stored.get_mut(..stored_len).ok_or(EIO)?;
        file.read_exact_at(start, stored)
            .map_err(|e| image.report(number, seg, "cannot be read", e))?;
        let (&mut kind, payload) = stored.split_first_mut().ok_or(EIO)?;
        match kind {
            format::SEGMENT_STORED if payload.len() == len => out.copy_from_slice(payload),
            format::SEGMENT_STORED => {
                return Err(image.report(number, seg, "stored segment of the wrong size", EIO));
            }
            format::SEGMENT_COMPRESSED => self
                .decompressor
                .run(payload, out)
                .map_err(|e| image.report(number, seg, "corrupt compressed data", e))?,
            _ => return Err(image.report(number, seg, "unknown segment type", EIO)),
        }
        slot.segment = Some(seg);
        Ok(())
    }
}
