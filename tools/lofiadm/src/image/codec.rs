//! Compressing and decompressing one segment with each algorithm, and the
//! rule that decides whether a segment is stored or compressed.

use std::io::Read;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use lzma_rust2::{LzmaOptions, LzmaReader, LzmaWriter};

use super::format::{Algorithm, COMPRESSED, STORED};

/// Segments of this size or smaller are always stored; a larger one is
/// stored when compressing it saves less than this (illumos'
/// `COMPRESS_THRESHOLD`).
pub const STORE_THRESHOLD: u32 = 2048;

/// The LZMA properties illumos writes: lc = 3, lp = 0, pb = 2.
pub const LZMA_LC: u32 = 3;
pub const LZMA_LP: u32 = 0;
pub const LZMA_PB: u32 = 2;
/// The properties byte, `(pb * 5 + lp) * 9 + lc`.
pub const LZMA_PROPS: u8 = ((LZMA_PB * 5 + LZMA_LP) * 9 + LZMA_LC) as u8;
/// The dictionary size illumos writes in an LZMA payload's header (8 MiB).
pub const LZMA_DICT_SIZE: u32 = 1 << 23;
/// The bytes before the LZMA stream: properties, dictionary size (u32
/// little-endian) and uncompressed size (u64 little-endian).
pub const LZMA_HEADER_LEN: usize = 13;

/// The zstd level of `lofiadm -C zstd`.
pub const ZSTD_LEVEL: i32 = 9;

/// One segment as stored in an image, its header byte first, for the
/// uncompressed `data` in segments of `segment_size` bytes: compressed
/// into at most `segment_size - 1` bytes, and kept only if that saves at
/// least [`STORE_THRESHOLD`] bytes, else stored.
pub fn encode_segment(algorithm: Algorithm, data: &[u8], segment_size: u32) -> Vec<u8> {
    if segment_size > STORE_THRESHOLD {
        let capacity = segment_size as usize - 1;
        let payload = compress(algorithm, data, capacity)
            .filter(|payload| worth_keeping(payload.len(), segment_size));
        if let Some(payload) = payload {
            let mut out = Vec::with_capacity(payload.len() + 1);
            out.push(COMPRESSED);
            out.extend_from_slice(&payload);
            return out;
        }
    }
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(STORED);
    out.extend_from_slice(data);
    out
}

/// Whether a compressed payload of `len` bytes is kept for a segment of
/// an image with segments of `segment_size` bytes: the segment size is
/// over [`STORE_THRESHOLD`] and the payload at most that much smaller.
/// (illumos judges the last, shorter segment by the segment size too.)
pub fn worth_keeping(len: usize, segment_size: u32) -> bool {
    segment_size > STORE_THRESHOLD && len <= (segment_size - STORE_THRESHOLD) as usize
}

/// The `len` uncompressed bytes of a segment as stored in an image
/// (`segment`, its header byte first), or why it is corrupt.
pub fn decode_segment(algorithm: Algorithm, segment: &[u8], len: usize) -> Result<Vec<u8>, String> {
    match segment.split_first() {
        None => Err("it is empty".into()),
        Some((&STORED, data)) if data.len() == len => Ok(data.to_vec()),
        Some((&STORED, data)) => Err(format!(
            "it is stored with {} bytes instead of {len}",
            data.len()
        )),
        Some((&COMPRESSED, payload)) => decompress(algorithm, payload, len),
        Some((other, _)) => Err(format!("its header byte is {other}, neither 0 nor 1")),
    }
}

/// `data` compressed with `algorithm` in at most `capacity` bytes; `None`
/// if it does not fit or the compressor fails.
pub fn compress(algorithm: Algorithm, data: &[u8], capacity: usize) -> Option<Vec<u8>> {
    let out = match algorithm {
        Algorithm::Gzip | Algorithm::Gzip6 => zlib_compress(data, 6, capacity)?,
        Algorithm::Gzip9 => zlib_compress(data, 9, capacity)?,
        Algorithm::Lzma => lzma_compress(data)?,
        Algorithm::Zstd => zstd_compress(data, capacity)?,
        Algorithm::Lz4 => lz4_compress(data)?,
    };
    (out.len() <= capacity).then_some(out)
}

/// The `len` bytes that `payload` decompresses to with `algorithm`, or
/// why it does not decompress to exactly `len` bytes.
pub fn decompress(algorithm: Algorithm, payload: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let out = match algorithm {
        Algorithm::Gzip | Algorithm::Gzip6 | Algorithm::Gzip9 => zlib_decompress(payload, len),
        Algorithm::Lzma => lzma_decompress(payload, len),
        Algorithm::Zstd => zstd_decompress(payload, len),
        Algorithm::Lz4 => lz4_decompress(payload, len),
    }?;
    if out.len() == len {
        Ok(out)
    } else {
        Err(format!(
            "it decompresses to {} bytes instead of {len}",
            out.len()
        ))
    }
}

/// A zlib stream (RFC 1950), as zlib's `compress2()` at `level` makes.
fn zlib_compress(data: &[u8], level: u32, capacity: usize) -> Option<Vec<u8>> {
    let mut z = Compress::new(Compression::new(level), true);
    let mut out = Vec::with_capacity(capacity);
    match z.compress_vec(data, &mut out, FlushCompress::Finish) {
        Ok(Status::StreamEnd) if z.total_in() == data.len() as u64 => Some(out),
        _ => None,
    }
}

fn zlib_decompress(payload: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let mut z = Decompress::new(true);
    // One byte more than expected, to see a stream that is too long.
    let mut out = Vec::with_capacity(len + 1);
    match z.decompress_vec(payload, &mut out, FlushDecompress::Finish) {
        Ok(Status::StreamEnd) => Ok(out),
        Ok(_) if out.len() > len => Err(format!("it decompresses to more than {len} bytes")),
        Ok(_) => Err("its zlib stream is truncated".into()),
        Err(e) => Err(format!("its zlib stream is corrupt: {e}")),
    }
}

/// The LZMA payload illumos writes: 13 header bytes, then the raw LZMA1
/// stream without an end marker. The stream is encoded with a dictionary
/// no larger than the data (a larger one would only cost memory); the
/// header names 8 MiB as illumos' does, which decodes it all the same.
fn lzma_compress(data: &[u8]) -> Option<Vec<u8>> {
    let mut options = LzmaOptions::with_preset(6);
    options.lc = LZMA_LC;
    options.lp = LZMA_LP;
    options.pb = LZMA_PB;
    options.dict_size = u32::try_from(data.len())
        .ok()?
        .clamp(lzma_rust2::DICT_SIZE_MIN, LZMA_DICT_SIZE);
    let mut out = Vec::with_capacity(data.len() / 2 + LZMA_HEADER_LEN);
    out.push(LZMA_PROPS);
    out.extend_from_slice(&LZMA_DICT_SIZE.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let mut w = LzmaWriter::new(out, &options, false, false, Some(data.len() as u64)).ok()?;
    std::io::Write::write_all(&mut w, data).ok()?;
    w.finish().ok()
}

fn lzma_decompress(payload: &[u8], len: usize) -> Result<Vec<u8>, String> {
    if payload.len() < LZMA_HEADER_LEN {
        return Err("its LZMA header is truncated".into());
    }
    let (header, stream) = payload.split_at(LZMA_HEADER_LEN);
    let props = header[0];
    let mut dict = [0u8; 4];
    dict.copy_from_slice(&header[1..5]);
    let mut size = [0u8; 8];
    size.copy_from_slice(&header[5..13]);
    let size = u64::from_le_bytes(size);
    if size != len as u64 {
        return Err(format!(
            "its LZMA header gives {size} bytes instead of {len}"
        ));
    }
    let mut reader =
        LzmaReader::new_with_props(stream, size, props, u32::from_le_bytes(dict), None)
            .map_err(|e| format!("its LZMA header is not valid: {e}"))?;
    // Check the range coder's final state: accepts a stream with or
    // without an end marker.
    reader.set_relaxed_end_condition(false);
    let mut out = vec![0u8; len];
    reader
        .read_exact(&mut out)
        .map_err(|e| format!("its LZMA stream is corrupt: {e}"))?;
    let mut extra = [0u8; 1];
    match reader.read(&mut extra) {
        Ok(0) => Ok(out),
        Ok(_) => Err(format!("it decompresses to more than {len} bytes")),
        Err(e) => Err(format!("its LZMA stream is corrupt: {e}")),
    }
}

/// One zstd frame, with the content size in its header.
fn zstd_compress(data: &[u8], capacity: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; capacity];
    let n = zstd::bulk::compress_to_buffer(data, &mut out[..], ZSTD_LEVEL).ok()?;
    out.truncate(n);
    Some(out)
}

fn zstd_decompress(payload: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; len];
    let n = zstd::bulk::decompress_to_buffer(payload, &mut out[..])
        .map_err(|e| format!("its zstd frame is corrupt: {e}"))?;
    out.truncate(n);
    Ok(out)
}

/// One raw LZ4 block (the block format, not the frame format).
/// (lz4_flex wants room for the worst case; [`compress`] checks the
/// capacity.)
fn lz4_compress(data: &[u8]) -> Option<Vec<u8>> {
    Some(lz4_flex::block::compress(data))
}

fn lz4_decompress(payload: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; len];
    let n = lz4_flex::block::decompress_into(payload, &mut out)
        .map_err(|e| format!("its LZ4 block is corrupt: {e}"))?;
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Compressible bytes: text-like, repeating with variations.
    pub fn text(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b"lofi compresses segments of images "[i % 35] ^ ((i / 1000) as u8 & 1))
            .collect()
    }

    /// Incompressible bytes (xorshift).
    pub fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn every_algorithm_round_trips_a_segment() {
        for a in Algorithm::ALL {
            for len in [512, 4096, 131072, 130560] {
                let data = text(len);
                let seg = encode_segment(a, &data, 131072);
                assert_eq!(seg[0], COMPRESSED, "{a} {len}");
                assert!(seg.len() < len / 4, "{a} {len}: {}", seg.len());
                assert_eq!(decode_segment(a, &seg, len), Ok(data), "{a} {len}");
            }
        }
    }

    #[test]
    fn payload_formats() {
        let data = text(8192);
        let z = compress(Algorithm::Gzip, &data, 8191).unwrap();
        // A zlib header: CM 8, CINFO 7, FCHECK valid; level 6 is FLEVEL 2.
        assert_eq!(z[0], 0x78);
        assert_eq!(u16::from_be_bytes([z[0], z[1]]) % 31, 0);
        let l = compress(Algorithm::Lzma, &data, 8191).unwrap();
        assert_eq!(&l[..5], &[0x5d, 0, 0, 0x80, 0]);
        assert_eq!(&l[5..13], &8192u64.to_le_bytes());
        let s = compress(Algorithm::Zstd, &data, 8191).unwrap();
        assert_eq!(&s[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&s).ok(),
            Some(Some(8192))
        );
        let b = compress(Algorithm::Lz4, &data, 8191).unwrap();
        assert_eq!(lz4_flex::block::decompress(&b, 8192).unwrap(), data);
    }

    #[test]
    fn lzma_with_an_end_marker_is_accepted() {
        let data = text(20000);
        let mut options = LzmaOptions::with_preset(6);
        options.dict_size = 1 << 16;
        let mut payload = vec![LZMA_PROPS];
        payload.extend_from_slice(&LZMA_DICT_SIZE.to_le_bytes());
        payload.extend_from_slice(&20000u64.to_le_bytes());
        let mut w = LzmaWriter::new(payload, &options, false, true, None).unwrap();
        std::io::Write::write_all(&mut w, &data).unwrap();
        let payload = w.finish().unwrap();
        let without = compress(Algorithm::Lzma, &data, 20000).unwrap();
        assert!(payload.len() > without.len());
        assert_eq!(
            decompress(Algorithm::Lzma, &payload, 20000),
            Ok(data.clone())
        );
        assert_eq!(decompress(Algorithm::Lzma, &without, 20000), Ok(data));
    }

    #[test]
    fn small_segments_are_always_stored() {
        for a in Algorithm::ALL {
            for seg_size in [512, 1024, 2048] {
                let data = vec![0u8; seg_size as usize];
                let seg = encode_segment(a, &data, seg_size);
                assert_eq!(seg[0], STORED, "{a} {seg_size}");
                assert_eq!(&seg[1..], &data[..]);
                assert_eq!(decode_segment(a, &seg, data.len()), Ok(data));
            }
            // 4096 compresses zeros.
            assert_eq!(encode_segment(a, &[0u8; 4096], 4096)[0], COMPRESSED);
        }
    }

    #[test]
    fn incompressible_segments_are_stored() {
        for a in Algorithm::ALL {
            let data = noise(131072, 7);
            let seg = encode_segment(a, &data, 131072);
            assert_eq!(seg[0], STORED, "{a}");
            assert_eq!(seg.len(), 131073);
            assert_eq!(decode_segment(a, &seg, 131072), Ok(data));
        }
    }

    #[test]
    fn stored_threshold_rule() {
        assert!(worth_keeping(6144, 8192));
        assert!(!worth_keeping(6145, 8192));
        assert!(worth_keeping(2048, 4096));
        assert!(!worth_keeping(2049, 4096));
        assert!(!worth_keeping(1, 2048));
        assert!(!worth_keeping(0, 512));
        // A real segment on each side of the limit: 8192 bytes of which
        // 4096 are noise compress to a little over 4096 bytes, which is
        // kept in segments of 8192 (limit 6144) and stored in segments
        // of 4096 once cut to that size (limit 2048).
        let mut data = noise(4096, 3);
        data.resize(8192, 0);
        for a in Algorithm::ALL {
            let n = compress(a, &data, 8191).map(|p| p.len()).unwrap_or(0);
            assert!(n > 4096 && n <= 6144, "{a}: {n}");
            assert_eq!(encode_segment(a, &data, 8192)[0], COMPRESSED, "{a}");
            let mut half = noise(3000, 3);
            half.resize(4096, 0);
            // 3000 bytes of noise: over the limit 2048 for 4096.
            assert_eq!(encode_segment(a, &half, 4096)[0], STORED, "{a}");
        }
    }

    #[test]
    fn capacity_is_respected() {
        let data = noise(4096, 9);
        for a in Algorithm::ALL {
            assert_eq!(compress(a, &data, 4095), None, "{a}");
        }
    }

    #[test]
    fn corrupt_segments_are_refused() {
        let data = text(4096);
        for a in Algorithm::ALL {
            let seg = encode_segment(a, &data, 131072);
            // Wrong size expected.
            let e = decode_segment(a, &seg, 8192).unwrap_err();
            assert!(!e.is_empty(), "{a}");
            assert!(decode_segment(a, &seg, 2048).is_err(), "{a}");
            // Truncated.
            assert!(
                decode_segment(a, &seg[..seg.len() / 2], 4096).is_err(),
                "{a}"
            );
            // Garbage.
            let mut bad = seg.clone();
            for b in &mut bad[1..] {
                *b ^= 0x5a;
            }
            assert!(decode_segment(a, &bad, 4096).is_err(), "{a}");
        }
        assert_eq!(
            decode_segment(Algorithm::Gzip, &[], 512),
            Err("it is empty".into())
        );
        assert!(
            decode_segment(Algorithm::Gzip, &[2, 0], 1)
                .unwrap_err()
                .contains("header byte is 2")
        );
        assert!(
            decode_segment(Algorithm::Gzip, &[0; 512], 512)
                .unwrap_err()
                .contains("511 bytes instead of 512")
        );
    }
}
