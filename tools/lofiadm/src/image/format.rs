//! The layout of a compressed lofi image, byte for byte as illumos writes
//! it (all integers of the header and index big-endian):
//!
//! ```text
//! char     algorithm[36]       the algorithm's name, NUL-padded
//! uint32_t segment_size        uncompressed bytes per segment
//! uint32_t index_entries       segments + 1
//! uint32_t last_segment_size   uncompressed bytes of the last segment
//! uint64_t index[index_entries]
//! segments ...                 then zeros to a multiple of 512 bytes
//! ```
//!
//! `index[i]` is where segment i starts, counted from the end of the
//! index; the last entry is the end of the last segment. Each segment
//! starts with a byte that says whether the rest is stored as it is
//! ([`STORED`]) or compressed ([`COMPRESSED`]). This module only encodes
//! and checks that layout; it reads and writes no files.

use std::fmt;

/// Bytes of the algorithm name field.
pub const NAME_LEN: usize = 36;
/// Bytes of the fixed header before the index.
pub const HEADER_LEN: usize = NAME_LEN + 12;
/// Bytes of one index entry.
pub const INDEX_ENTRY_LEN: usize = 8;
/// The smallest segment size: lofi's block size.
pub const MIN_SEGMENT_SIZE: u32 = 512;
/// The largest segment size the lofi driver accepts (8 MiB).
pub const MAX_SEGMENT_SIZE: u32 = 8 << 20;
/// The segment size of `lofiadm -C` without `-s` (illumos' default).
pub const DEFAULT_SEGMENT_SIZE: u32 = 128 << 10;
/// The first byte of a segment whose data follows as it is.
pub const STORED: u8 = 0;
/// The first byte of a segment whose data follows compressed.
pub const COMPRESSED: u8 = 1;
/// A compressed image's size is padded to a multiple of this.
pub const PAD_TO: u64 = 512;

/// A compression algorithm, by the name written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `gzip`: a zlib stream, level 6.
    Gzip,
    /// `gzip-6`: the same as `gzip`.
    Gzip6,
    /// `gzip-9`: a zlib stream, level 9.
    Gzip9,
    /// `lzma`: LZMA1 with a 13-byte header of properties and size.
    Lzma,
    /// `zstd`: one zstd frame (not in illumos).
    Zstd,
    /// `lz4`: one LZ4 block (not in illumos).
    Lz4,
}

impl Algorithm {
    /// Every algorithm, in the order the usage lists them.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Gzip,
        Algorithm::Gzip6,
        Algorithm::Gzip9,
        Algorithm::Lzma,
        Algorithm::Zstd,
        Algorithm::Lz4,
    ];

    /// The name in the header and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Gzip => "gzip",
            Algorithm::Gzip6 => "gzip-6",
            Algorithm::Gzip9 => "gzip-9",
            Algorithm::Lzma => "lzma",
            Algorithm::Zstd => "zstd",
            Algorithm::Lz4 => "lz4",
        }
    }

    /// The algorithm called `name`, if any.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The algorithm named by an image's first bytes: the name field up
    /// to its first NUL. `None` for a file that is not a compressed image
    /// (or shorter than the name field).
    pub fn of_image(start: &[u8]) -> Option<Algorithm> {
        let field = start.get(..NAME_LEN)?;
        let end = field.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&field[..end])
            .ok()
            .and_then(Algorithm::from_name)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The fixed header of a compressed image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub algorithm: Algorithm,
    pub segment_size: u32,
    /// Segments + 1.
    pub index_entries: u32,
    pub last_segment_size: u32,
}

impl Header {
    /// The header of an image of `size` uncompressed bytes (not 0) in
    /// segments of `segment_size` bytes; `None` if it has too many
    /// segments for the header's counters.
    pub fn for_size(algorithm: Algorithm, segment_size: u32, size: u64) -> Option<Header> {
        let seg = u64::from(segment_size);
        let segments = size.div_ceil(seg);
        let last = size - (segments.checked_sub(1)?) * seg;
        Some(Header {
            algorithm,
            segment_size,
            index_entries: u32::try_from(segments.checked_add(1)?).ok()?,
            last_segment_size: u32::try_from(last).ok()?,
        })
    }

    /// The number of segments.
    pub fn segments(&self) -> u64 {
        u64::from(self.index_entries).saturating_sub(1)
    }

    /// Where the segment data starts in the file: after the header and
    /// the index.
    pub fn data_start(&self) -> u64 {
        HEADER_LEN as u64 + INDEX_ENTRY_LEN as u64 * u64::from(self.index_entries)
    }

    /// The uncompressed size of segment `i`.
    pub fn uncompressed_len(&self, i: u64) -> u32 {
        if i + 1 == self.segments() {
            self.last_segment_size
        } else {
            self.segment_size
        }
    }

    /// The size of the uncompressed file.
    pub fn uncompressed_size(&self) -> u64 {
        self.segments().saturating_sub(1) * u64::from(self.segment_size)
            + u64::from(self.last_segment_size)
    }

    /// The 48 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let name = self.algorithm.name().as_bytes();
        out[..name.len()].copy_from_slice(name);
        out[NAME_LEN..NAME_LEN + 4].copy_from_slice(&self.segment_size.to_be_bytes());
        out[NAME_LEN + 4..NAME_LEN + 8].copy_from_slice(&self.index_entries.to_be_bytes());
        out[NAME_LEN + 8..].copy_from_slice(&self.last_segment_size.to_be_bytes());
        out
    }

    /// Read and check a header: what makes an image corrupt is said in
    /// words. `file_size` is the size of the whole image.
    pub fn parse(bytes: &[u8], file_size: u64) -> Result<Header, String> {
        let Some(bytes) = bytes.get(..HEADER_LEN) else {
            return Err("it is too short for a header".into());
        };
        let algorithm = Algorithm::of_image(bytes)
            .ok_or_else(|| "its header names no known algorithm".to_string())?;
        let word = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[at..at + 4]);
            u32::from_be_bytes(w)
        };
        let header = Header {
            algorithm,
            segment_size: word(NAME_LEN),
            index_entries: word(NAME_LEN + 4),
            last_segment_size: word(NAME_LEN + 8),
        };
        let Header {
            segment_size: seg,
            index_entries: entries,
            last_segment_size: last,
            ..
        } = header;
        if !segment_size_is_valid(seg) {
            return Err(format!(
                "segment size {seg} is not a power of two from 512 to 8 MiB"
            ));
        }
        if entries < 2 {
            return Err(format!("its index has {entries} entries, fewer than 2"));
        }
        if last == 0 || last > seg || u64::from(last) % PAD_TO != 0 {
            return Err(format!(
                "last segment size {last} is not a multiple of 512 from 512 to the segment size {seg}"
            ));
        }
        if header.data_start() > file_size {
            return Err(format!(
                "its index of {entries} entries reaches past the end of the file"
            ));
        }
        Ok(header)
    }
}

/// The longest payload a segment of an image with segments of
/// `segment_size` bytes may have: lofiadm stores one that does not
/// compress, so its payloads are at most the segment size, but another
/// encoder may keep a compressed payload a little larger (incompressible
/// data), which the lofi driver accepts up to this bound too.
pub fn max_payload(segment_size: u32) -> u64 {
    let seg = u64::from(segment_size);
    seg + seg / 16 + 64
}

/// Whether `size` may be a segment size: a power of two from 512 bytes
/// to 8 MiB.
pub fn segment_size_is_valid(size: u32) -> bool {
    size.is_power_of_two() && (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&size)
}

/// The index as bytes.
pub fn encode_index(index: &[u64]) -> Vec<u8> {
    index.iter().flat_map(|e| e.to_be_bytes()).collect()
}

/// Read and check the index that follows `header` (`bytes` holds at least
/// its entries) of an image of `file_size` bytes: it starts at 0, every
/// segment has at least its header byte, none is longer than its header
/// byte and [`max_payload`], and the last ends inside the file.
pub fn parse_index(header: &Header, bytes: &[u8], file_size: u64) -> Result<Vec<u64>, String> {
    let entries = usize::try_from(header.index_entries).map_err(|_| "index too large")?;
    let Some(bytes) = bytes.get(..entries * INDEX_ENTRY_LEN) else {
        return Err("its index is truncated".into());
    };
    let index: Vec<u64> = bytes
        .chunks_exact(INDEX_ENTRY_LEN)
        .map(|c| {
            let mut e = [0u8; INDEX_ENTRY_LEN];
            e.copy_from_slice(c);
            u64::from_be_bytes(e)
        })
        .collect();
    if index[0] != 0 {
        return Err(format!("its index starts at {}, not 0", index[0]));
    }
    let max_len = 1 + max_payload(header.segment_size);
    for (i, pair) in index.windows(2).enumerate() {
        if pair[1] <= pair[0] {
            return Err(format!(
                "its index is not increasing at entry {} ({} after {})",
                i + 1,
                pair[1],
                pair[0]
            ));
        }
        if pair[1] - pair[0] > max_len {
            return Err(format!(
                "segment {i} is {} bytes long, more than a segment can be",
                pair[1] - pair[0]
            ));
        }
    }
    let end = index[entries - 1];
    let data = file_size.saturating_sub(header.data_start());
    if end > data {
        return Err(format!(
            "its segments end at byte {} of the data, past the end of the file ({data} bytes of data)",
            end
        ));
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
            assert!(a.name().len() < NAME_LEN);
        }
        assert_eq!(Algorithm::from_name("gzip-1"), None);
        assert_eq!(Algorithm::from_name("GZIP"), None);
        assert_eq!(Algorithm::from_name(""), None);
    }

    #[test]
    fn header_bytes_are_pinned() {
        // 1,000,448 bytes in segments of 131072: 7 full ones and a last
        // one of 1000448 - 7 * 131072 = 82944 bytes, so 9 entries.
        let h = Header::for_size(Algorithm::Gzip9, 131072, 1_000_448).unwrap();
        assert_eq!(
            h,
            Header {
                algorithm: Algorithm::Gzip9,
                segment_size: 131072,
                index_entries: 9,
                last_segment_size: 82944,
            }
        );
        let mut want = [0u8; HEADER_LEN];
        want[..6].copy_from_slice(b"gzip-9");
        // 131072 = 0x00020000, 9, 82944 = 0x00014400.
        want[36..48].copy_from_slice(&[0, 2, 0, 0, 0, 0, 0, 9, 0, 1, 0x44, 0]);
        assert_eq!(h.encode(), want);
        assert_eq!(h.data_start(), 48 + 9 * 8);
        assert_eq!(h.uncompressed_size(), 1_000_448);
        assert_eq!(h.uncompressed_len(0), 131072);
        assert_eq!(h.uncompressed_len(7), 82944);
        assert_eq!(
            encode_index(&[0, 0x0102]),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]
        );
    }

    #[test]
    fn last_segment_of_a_whole_multiple_is_full() {
        let h = Header::for_size(Algorithm::Lzma, 512, 4096).unwrap();
        assert_eq!((h.index_entries, h.last_segment_size), (9, 512));
        let h = Header::for_size(Algorithm::Lz4, 8 << 20, 512).unwrap();
        assert_eq!((h.index_entries, h.last_segment_size), (2, 512));
        assert_eq!(h.segments(), 1);
        assert_eq!(h.uncompressed_len(0), 512);
    }

    #[test]
    fn image_algorithm_from_the_name_field() {
        let mut b = [0u8; 512];
        assert_eq!(Algorithm::of_image(&b), None);
        b[..4].copy_from_slice(b"lzma");
        assert_eq!(Algorithm::of_image(&b), Some(Algorithm::Lzma));
        assert_eq!(Algorithm::of_image(&b[..20]), None);
        b[4] = b'x';
        assert_eq!(Algorithm::of_image(&b), None);
        // No NUL in the field at all.
        assert_eq!(Algorithm::of_image(&[b'a'; 64]), None);
    }

    fn header_bytes(name: &[u8], seg: u32, entries: u32, last: u32) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[..name.len()].copy_from_slice(name);
        b[36..40].copy_from_slice(&seg.to_be_bytes());
        b[40..44].copy_from_slice(&entries.to_be_bytes());
        b[44..48].copy_from_slice(&last.to_be_bytes());
        b
    }

    #[test]
    fn headers_parse() {
        let b = header_bytes(b"zstd", 4096, 3, 1024);
        let h = Header::parse(&b, 1 << 20).unwrap();
        assert_eq!(h.algorithm, Algorithm::Zstd);
        assert_eq!(h.uncompressed_size(), 4096 + 1024);
        assert_eq!(h.encode().to_vec(), b);
    }

    #[test]
    fn corrupt_headers_are_refused() {
        for (b, size, words) in [
            (
                header_bytes(b"gzip-7", 4096, 3, 512),
                4096,
                "no known algorithm",
            ),
            (
                header_bytes(b"gzip", 3000, 3, 512),
                4096,
                "segment size 3000",
            ),
            (header_bytes(b"gzip", 256, 3, 256), 4096, "segment size 256"),
            (
                header_bytes(b"gzip", 16 << 20, 3, 512),
                4096,
                "segment size 16777216",
            ),
            (header_bytes(b"gzip", 4096, 1, 512), 4096, "fewer than 2"),
            (
                header_bytes(b"gzip", 4096, 3, 0),
                4096,
                "last segment size 0",
            ),
            (
                header_bytes(b"gzip", 4096, 3, 8192),
                4096,
                "last segment size 8192",
            ),
            (
                header_bytes(b"gzip", 4096, 3, 1000),
                4096,
                "last segment size 1000",
            ),
            (
                header_bytes(b"gzip", 4096, 100, 512),
                512,
                "reaches past the end",
            ),
            (
                header_bytes(b"gzip", 4096, u32::MAX, 512),
                1 << 30,
                "reaches past the end",
            ),
        ] {
            let e = Header::parse(&b, size).unwrap_err();
            assert!(e.contains(words), "{e}");
        }
        assert!(Header::parse(&[0u8; 10], 512).is_err());
    }

    fn index_bytes(index: &[u64]) -> Vec<u8> {
        encode_index(index)
    }

    #[test]
    fn corrupt_indexes_are_refused() {
        let h = Header::parse(&header_bytes(b"gzip", 4096, 3, 4096), 8192).unwrap();
        let data = 8192 - h.data_start();
        assert_eq!(
            parse_index(&h, &index_bytes(&[0, 100, 200]), 8192),
            Ok(vec![0, 100, 200])
        );
        for (index, words) in [
            (vec![1, 100, 200], "starts at 1"),
            (vec![0, 100, 100], "not increasing at entry 2"),
            (vec![0, 100, 50], "not increasing"),
            (vec![0, 5000, 5100], "segment 0 is 5000 bytes long"),
            (vec![0, 4096, data + 1], "past the end of the file"),
        ] {
            let e = parse_index(&h, &index_bytes(&index), 8192).unwrap_err();
            assert!(e.contains(words), "{index:?}: {e}");
        }
        assert!(
            parse_index(&h, &index_bytes(&[0, 1]), 8192)
                .unwrap_err()
                .contains("truncated")
        );
    }

    #[test]
    fn segment_sizes() {
        for ok in [512, 1024, 4096, 131072, 8 << 20] {
            assert!(segment_size_is_valid(ok), "{ok}");
        }
        for bad in [0, 256, 511, 513, 3000, 16 << 20, u32::MAX] {
            assert!(!segment_size_is_valid(bad), "{bad}");
        }
    }
}
