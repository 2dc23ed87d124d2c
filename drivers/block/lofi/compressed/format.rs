// SPDX-License-Identifier: GPL-2.0

//! The illumos compressed image format (`lofiadm -C`), read-only: the
//! header, the index and the segment headers, checked without trusting a
//! byte of the file. Pure arithmetic, so that KUnit can test it.
//!
//! ```text
//! char algorithm[36]        NUL-padded name ("gzip", "lzma", ...)
//! u32  segment size         uncompressed bytes per segment (big-endian)
//! u32  index entries        segments + 1
//! u32  last segment size    uncompressed bytes of the last segment
//! u64  index[entries]       segment offsets from the end of the index;
//!                           the last one is the end of the data
//! segments                  each: one header byte (0 stored, 1
//!                           compressed), then the data or its payload
//! ```

use crate::kext::decompress::Codec;
use kernel::prelude::*;

/// Bytes of the fixed header before the index.
pub(crate) const HEADER_LEN: usize = 48;
/// Bytes of the algorithm name field.
const NAME_LEN: usize = 36;
/// Bytes of one index entry.
pub(crate) const ENTRY_LEN: u64 = 8;
/// The smallest segment size (illumos: `DEV_BSIZE`).
const MIN_SEGMENT: u32 = 512;
/// The largest segment size lofi maps: the LZMA dictionary illumos uses,
/// and a bound on the memory a mapping's segment cache takes.
pub(crate) const MAX_SEGMENT: u32 = 8 << 20;
/// A segment's header byte: the data follows as it is.
pub(crate) const SEGMENT_STORED: u8 = 0;
/// A segment's header byte: a compressed payload follows.
pub(crate) const SEGMENT_COMPRESSED: u8 = 1;

/// The algorithms lofi reads, by the names the header carries: the
/// illumos ones, and zstd and lz4.
const ALGORITHMS: &[(&[u8], Codec)] = &[
    (b"gzip", Codec::Zlib),
    (b"gzip-6", Codec::Zlib),
    (b"gzip-9", Codec::Zlib),
    (b"lzma", Codec::Lzma),
    (b"zstd", Codec::Zstd),
    (b"lz4", Codec::Lz4),
];

/// A compressed image's algorithm, as its header names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Algorithm {
    /// The name, as in the header and in `li_algorithm`.
    pub(crate) name: &'static [u8],
    /// The decompressor of its segments.
    pub(crate) codec: Codec,
}

/// The algorithm a file's first bytes name, if they are the header of a
/// compressed image: a known name, NUL-terminated (what follows the NUL
/// is not looked at, as illumos compares with `strcmp()`). Anything else
/// is an ordinary image.
pub(crate) fn detect(head: &[u8]) -> Option<Algorithm> {
    let field = head.get(..NAME_LEN)?;
    let end = field.iter().position(|&b| b == 0)?;
    let name = &field[..end];
    ALGORITHMS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(name, codec)| Algorithm { name, codec })
}

/// The largest stored length of a segment's payload: a compressed one
/// may exceed the segment size a little (incompressible data) where its
/// encoder did not store it instead.
pub(crate) fn max_payload(segment_size: u32) -> u64 {
    let seg = u64::from(segment_size);
    seg + seg / 16 + 64
}

/// The fixed header of a compressed image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Uncompressed bytes per segment: a power of two, 512 .. 8 MiB.
    pub(crate) segment_size: u32,
    /// Segments (index entries - 1), at least one.
    pub(crate) segments: u64,
    /// Uncompressed bytes of the last segment: 1 .. `segment_size`, a
    /// multiple of 512.
    pub(crate) last_size: u32,
    /// Where the first segment starts in the file: the end of the index.
    pub(crate) data_start: u64,
    /// The uncompressed size: what the disk presents.
    pub(crate) size: u64,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// A big-endian index entry.
pub(crate) fn be64(b: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

impl Header {
    /// Checks the header `head` (at least [`HEADER_LEN`] bytes) of a file
    /// of `file_size` bytes: `EINVAL` for a segment size that is no power
    /// of two in 512 .. 8 MiB, no segment, a last segment size out of
    /// range, or an index that does not fit in the file.
    pub(crate) fn parse(head: &[u8], file_size: u64) -> Result<Self> {
        let segment_size = be32(head, NAME_LEN).ok_or(EINVAL)?;
        let entries = be32(head, NAME_LEN + 4).ok_or(EINVAL)?;
        let last_size = be32(head, NAME_LEN + 8).ok_or(EINVAL)?;
        if !segment_size.is_power_of_two() || !(MIN_SEGMENT..=MAX_SEGMENT).contains(&segment_size) {
            return Err(EINVAL);
        }
        if entries < 2 || last_size == 0 || last_size > segment_size || last_size % MIN_SEGMENT != 0
        {
            return Err(EINVAL);
        }
        let segments = u64::from(entries) - 1;
        let data_start = HEADER_LEN as u64 + u64::from(entries) * ENTRY_LEN;
        if data_start > file_size {
            return Err(EINVAL);
        }
        // Cannot overflow: fewer than 2^32 segments of at most 2^23 bytes.
        let size = (segments - 1) * u64::from(segment_size) + u64::from(last_size);
        Ok(Self {
            segment_size,
            segments,
            last_size,
            data_start,
            size,
        })
    }

    /// Index entries.
    pub(crate) fn entries(&self) -> u64 {
        self.segments + 1
    }

    /// The uncompressed size of segment `seg`.
    pub(crate) fn segment_len(&self, seg: u64) -> u32 {
        if seg + 1 == self.segments {
            self.last_size
        } else {
            self.segment_size
        }
    }
}

/// Checks index entry `i` (`offset`, from the end of the index) after
/// entry `i - 1` (`prev`, `None` for the first), for an image whose data
/// ends at most at `data_len` bytes past the index: the first entry is 0,
/// each segment holds at least its header byte and at most
/// [`max_payload`] bytes after it. `EINVAL` otherwise.
pub(crate) fn check_entry(
    header: &Header,
    prev: Option<u64>,
    offset: u64,
    data_len: u64,
) -> Result {
    if offset > data_len {
        return Err(EINVAL);
    }
    match prev {
        None if offset != 0 => Err(EINVAL),
        None => Ok(()),
        Some(prev) => {
            let len = offset.checked_sub(prev).ok_or(EINVAL)?;
            if len < 1 || len - 1 > max_payload(header.segment_size) {
                return Err(EINVAL);
            }
            Ok(())
        }
    }
}

#[kunit_tests(lofi_compressed_format)]
mod tests {
    use super::*;

    fn head(name: &[u8], seg: u32, entries: u32, last: u32) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..name.len()].copy_from_slice(name);
        h[36..40].copy_from_slice(&seg.to_be_bytes());
        h[40..44].copy_from_slice(&entries.to_be_bytes());
        h[44..48].copy_from_slice(&last.to_be_bytes());
        h
    }

    #[test]
    fn known_names_are_detected_and_others_are_plain_images() {
        let h = head(b"gzip-9", 131072, 2, 512);
        assert_eq!(detect(&h).map(|a| a.codec), Some(Codec::Zlib));
        assert_eq!(
            detect(&head(b"lzma", 512, 2, 512)).map(|a| a.name),
            Some(&b"lzma"[..])
        );
        assert_eq!(
            detect(&head(b"lz4", 512, 2, 512)).map(|a| a.codec),
            Some(Codec::Lz4)
        );
        assert!(detect(&head(b"gzip-7", 512, 2, 512)).is_none());
        assert!(detect(&head(b"gzipx", 512, 2, 512)).is_none());
        // No NUL in the name field: no header.
        assert!(detect(&[b'g'; HEADER_LEN]).is_none());
        assert!(detect(&[0u8; 10]).is_none());
        // A file of zeros (a blank image) is not compressed.
        assert!(detect(&[0u8; HEADER_LEN]).is_none());
    }

    #[test]
    fn the_header_gives_the_uncompressed_size() {
        let three = Header {
            segment_size: 131072,
            segments: 3,
            last_size: 4096,
            data_start: 48 + 4 * 8,
            size: 2 * 131072 + 4096,
        };
        assert_eq!(
            Header::parse(&head(b"gzip", 131072, 4, 4096), 1 << 20),
            Ok(three)
        );
        assert_eq!(three.segment_len(0), 131072);
        assert_eq!(three.segment_len(2), 4096);
        let one = Header {
            segment_size: 512,
            segments: 1,
            last_size: 512,
            data_start: 48 + 2 * 8,
            size: 512,
        };
        assert_eq!(Header::parse(&head(b"gzip", 512, 2, 512), 4096), Ok(one));
    }

    #[test]
    fn bad_headers_are_einval() {
        let bad = [
            head(b"gzip", 3000, 4, 512),
            head(b"gzip", 256, 4, 256),
            head(b"gzip", 16 << 20, 4, 512),
            head(b"gzip", 0, 4, 512),
            head(b"gzip", 4096, 1, 512),
            head(b"gzip", 4096, 0, 512),
            head(b"gzip", 4096, 4, 0),
            head(b"gzip", 4096, 4, 8192),
            head(b"gzip", 4096, 4, 1000),
            // The index cannot fit in a file of 4 KiB.
            head(b"gzip", 4096, u32::MAX, 4096),
        ];
        for h in bad.iter() {
            assert_eq!(Header::parse(h, 4096), Err(EINVAL));
        }
        assert_eq!(Header::parse(&[0u8; 20], 4096), Err(EINVAL));
    }

    #[test]
    fn index_entries_must_increase_inside_the_data() {
        let h = Header {
            segment_size: 4096,
            segments: 2,
            last_size: 4096,
            data_start: 48 + 3 * 8,
            size: 8192,
        };
        assert_eq!(Header::parse(&head(b"gzip", 4096, 3, 4096), 1 << 20), Ok(h));
        assert_eq!(check_entry(&h, None, 0, 100), Ok(()));
        assert_eq!(check_entry(&h, None, 1, 100), Err(EINVAL));
        assert_eq!(check_entry(&h, Some(0), 40, 100), Ok(()));
        // Empty, decreasing, past the end, longer than any payload.
        assert_eq!(check_entry(&h, Some(40), 40, 100), Err(EINVAL));
        assert_eq!(check_entry(&h, Some(40), 39, 100), Err(EINVAL));
        assert_eq!(check_entry(&h, Some(40), 101, 100), Err(EINVAL));
        let max = max_payload(4096);
        assert_eq!(check_entry(&h, Some(0), max + 1, 1 << 20), Ok(()));
        assert_eq!(check_entry(&h, Some(0), max + 2, 1 << 20), Err(EINVAL));
    }
}
