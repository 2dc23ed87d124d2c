//! Decompressing a compressed image into the file it was made from,
//! checking every part of it on the way.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;

use super::Failure;
use super::codec;
use super::format::{HEADER_LEN, Header, parse_index};
use super::pipeline;
use super::progress::Progress;

/// Write what the compressed image `src` of `size` bytes holds to `dst`,
/// an empty file, on `workers` threads; a corrupt image is
/// [`Failure::Corrupt`].
pub fn uncompress<W: Write>(
    src: &File,
    size: u64,
    dst: &mut File,
    workers: usize,
    progress: &mut Progress<W>,
) -> Result<(), Failure> {
    let mut head = [0u8; HEADER_LEN];
    if size < HEADER_LEN as u64 {
        return Err(Failure::Corrupt("it is too short for a header".into()));
    }
    src.read_exact_at(&mut head, 0).map_err(Failure::Read)?;
    let header = Header::parse(&head, size).map_err(Failure::Corrupt)?;
    // Header::parse checked that the index lies inside the file.
    let index_len = (header.data_start() - HEADER_LEN as u64) as usize;
    let mut index_bytes = vec![0u8; index_len];
    src.read_exact_at(&mut index_bytes, HEADER_LEN as u64)
        .map_err(Failure::Read)?;
    let index = parse_index(&header, &index_bytes, size).map_err(Failure::Corrupt)?;
    drop(index_bytes);
    let data_start = header.data_start();
    let segments = header.segments();
    let algorithm = header.algorithm;
    let mut out = BufWriter::with_capacity(1 << 20, dst);
    progress.update(0);
    pipeline::ordered(
        segments,
        pipeline::capped(workers, header.segment_size),
        |i| {
            let i_us = i as usize;
            let (from, to) = (index[i_us], index[i_us + 1]);
            let mut segment = vec![0u8; (to - from) as usize];
            src.read_exact_at(&mut segment, data_start + from)
                .map_err(Failure::Read)?;
            let len = header.uncompressed_len(i) as usize;
            codec::decode_segment(algorithm, &segment, len)
                .map_err(|why| Failure::Corrupt(format!("segment {i} is corrupt: {why}")))
        },
        |i, data| {
            out.write_all(&data).map_err(Failure::Write)?;
            progress.update(data_start + index[i as usize + 1]);
            Ok(())
        },
    )?;
    out.flush().map_err(Failure::Write)?;
    progress.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::image::codec::tests::text;
    use crate::image::compress::tests::{image_of, unpack};
    use crate::image::format::{Algorithm, HEADER_LEN, Header};

    fn image(a: Algorithm) -> (Vec<u8>, Header) {
        let data = text(3 * 8192 + 1024);
        let image = image_of("corrupt", &data, a, 8192, 2);
        let h = Header::parse(&image, image.len() as u64).unwrap();
        (image, h)
    }

    fn set_index(image: &mut [u8], entry: usize, value: u64) {
        let at = HEADER_LEN + 8 * entry;
        image[at..at + 8].copy_from_slice(&value.to_be_bytes());
    }

    fn refused(image: &[u8], words: &str) {
        match unpack("corrupt", image) {
            Err(why) => assert!(why.contains(words), "{why:?} lacks {words:?}"),
            Ok(_) => panic!("accepted, expected {words:?}"),
        }
    }

    #[test]
    fn corrupt_images_are_refused() {
        let (good, h) = image(Algorithm::Gzip);
        assert!(unpack("corrupt", &good).is_ok());
        let mut bad = good.clone();
        bad[..4].copy_from_slice(b"gzap");
        refused(&bad, "no known algorithm");
        let mut bad = good.clone();
        bad[36..40].copy_from_slice(&3000u32.to_be_bytes());
        refused(&bad, "segment size 3000");
        let mut bad = good.clone();
        set_index(&mut bad, 2, 10);
        refused(&bad, "not increasing");
        let mut bad = good.clone();
        set_index(&mut bad, 4, 1 << 40);
        refused(&bad, "more than a segment can be");
        let mut bad = good.clone();
        let end = u64::from_be_bytes(bad[HEADER_LEN + 32..HEADER_LEN + 40].try_into().unwrap());
        set_index(&mut bad, 4, end + 600);
        refused(&bad, "past the end of the file");
        // A truncated segment: its end moved into it.
        let mut bad = good.clone();
        let third = u64::from_be_bytes(bad[HEADER_LEN + 16..HEADER_LEN + 24].try_into().unwrap());
        let second = u64::from_be_bytes(bad[HEADER_LEN + 8..HEADER_LEN + 16].try_into().unwrap());
        set_index(&mut bad, 2, (second + third) / 2);
        refused(&bad, "segment 1 is corrupt");
        // A wrong uncompressed size: the last segment said to be longer.
        let mut bad = good.clone();
        bad[44..48].copy_from_slice(&2048u32.to_be_bytes());
        refused(&bad, "segment 3 is corrupt");
        // A file cut short.
        let cut = (h.data_start() as usize + 8) / 512 * 512;
        refused(&good[..cut.max(512)], "past the end of the file");
    }

    #[test]
    fn wrong_decompressed_sizes_are_refused_for_every_algorithm() {
        for a in Algorithm::ALL {
            let (good, _) = image(a);
            assert!(unpack("sizes", &good).is_ok(), "{a}");
            let mut bad = good.clone();
            bad[44..48].copy_from_slice(&512u32.to_be_bytes());
            refused(&bad, "segment 3 is corrupt");
        }
    }
}
