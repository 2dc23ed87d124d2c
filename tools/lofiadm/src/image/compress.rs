//! Compressing a file into a compressed image, segments in parallel.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use super::Failure;
use super::codec;
use super::format::{Algorithm, Header, PAD_TO, encode_index};
use super::pipeline;
use super::progress::Progress;

/// Write the compressed image of the first `size` bytes (not 0) of `src`
/// to `dst`, an empty file, in segments of `segment_size` bytes (a valid
/// segment size) with `algorithm`, on `workers` threads.
pub fn compress<W: Write>(
    src: &File,
    size: u64,
    algorithm: Algorithm,
    segment_size: u32,
    dst: &mut File,
    workers: usize,
    progress: &mut Progress<W>,
) -> Result<(), Failure> {
    let header = Header::for_size(algorithm, segment_size, size).ok_or(Failure::TooLarge)?;
    let data_start = header.data_start();
    let segments = header.segments();
    let mut index = Vec::with_capacity(usize::try_from(header.index_entries).unwrap_or(0));
    index.push(0u64);
    dst.seek(SeekFrom::Start(data_start))
        .map_err(Failure::Write)?;
    let mut out = BufWriter::with_capacity(1 << 20, &mut *dst);
    let mut end = 0u64;
    progress.update(0);
    pipeline::ordered(
        segments,
        pipeline::capped(workers, segment_size),
        |i| {
            let len = header.uncompressed_len(i) as usize;
            let mut data = vec![0u8; len];
            src.read_exact_at(&mut data, i * u64::from(segment_size))
                .map_err(Failure::Read)?;
            Ok(codec::encode_segment(algorithm, &data, segment_size))
        },
        |i, segment| {
            out.write_all(&segment).map_err(Failure::Write)?;
            end += segment.len() as u64;
            index.push(end);
            progress.update((i + 1) * u64::from(segment_size));
            Ok(())
        },
    )?;
    out.flush().map_err(Failure::Write)?;
    drop(out);
    let mut head = header.encode().to_vec();
    head.extend_from_slice(&encode_index(&index));
    dst.write_all_at(&head, 0).map_err(Failure::Write)?;
    let len = data_start + end;
    let padded = len.div_ceil(PAD_TO) * PAD_TO;
    if padded > len {
        let zeros = vec![0u8; (padded - len) as usize];
        dst.write_all_at(&zeros, len).map_err(Failure::Write)?;
    }
    progress.finish();
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::image::codec::tests::{noise, text};
    use crate::image::format::{COMPRESSED, HEADER_LEN, STORED};
    use crate::image::uncompress::uncompress;
    use std::io::Read;
    use std::path::PathBuf;

    /// A scratch file for one test, removed when dropped.
    pub struct Scratch(pub PathBuf, pub File);

    impl Scratch {
        pub fn new(name: &str, bytes: &[u8]) -> Scratch {
            // Unique, as tests run in parallel.
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("lofiadm-image-{}-{n}-{name}", std::process::id()));
            std::fs::write(&path, bytes).unwrap();
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            Scratch(path, file)
        }

        pub fn bytes(&mut self) -> Vec<u8> {
            let mut v = Vec::new();
            let mut f = File::open(&self.0).unwrap();
            f.read_to_end(&mut v).unwrap();
            v
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn quiet() -> Progress<Vec<u8>> {
        Progress::new(None, "", 0)
    }

    /// The image of `data`.
    pub fn image_of(name: &str, data: &[u8], a: Algorithm, seg: u32, workers: usize) -> Vec<u8> {
        let src = Scratch::new(&format!("{name}-src"), data);
        let mut dst = Scratch::new(&format!("{name}-dst"), b"");
        compress(
            &src.1,
            data.len() as u64,
            a,
            seg,
            &mut dst.1,
            workers,
            &mut quiet(),
        )
        .unwrap();
        dst.bytes()
    }

    /// What `image` uncompresses to, or the failure.
    pub fn unpack(name: &str, image: &[u8]) -> Result<Vec<u8>, String> {
        let src = Scratch::new(&format!("{name}-img"), image);
        let mut dst = Scratch::new(&format!("{name}-out"), b"");
        uncompress(&src.1, image.len() as u64, &mut dst.1, 2, &mut quiet()).map_err(
            |f| match f {
                Failure::Corrupt(why) => why,
                other => format!("{other:?}"),
            },
        )?;
        Ok(dst.bytes())
    }

    fn round_trip(name: &str, data: &[u8], seg: u32) {
        for a in Algorithm::ALL {
            for workers in [1, 3] {
                let image = image_of(name, data, a, seg, workers);
                assert_eq!(image.len() % 512, 0, "{a} {seg}");
                assert_eq!(&image[..a.name().len()], a.name().as_bytes());
                assert_eq!(unpack(name, &image).as_deref(), Ok(data), "{a} {seg}");
                // The same image whatever the number of threads.
                assert_eq!(image, image_of(name, data, a, seg, 2), "{a} {seg}");
            }
        }
    }

    #[test]
    fn a_small_image_byte_for_byte() {
        // 1024 bytes in segments of 512: both stored.
        let data: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
        let image = image_of("pinned", &data, Algorithm::Gzip, 512, 2);
        let mut want = Vec::new();
        want.extend_from_slice(b"gzip");
        want.resize(36, 0);
        want.extend_from_slice(&[0, 0, 2, 0]); // segment size 512
        want.extend_from_slice(&[0, 0, 0, 3]); // 3 index entries
        want.extend_from_slice(&[0, 0, 2, 0]); // last segment 512
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // 0
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 2, 1]); // 513
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 4, 2]); // 1026
        want.push(0);
        want.extend_from_slice(&data[..512]);
        want.push(0);
        want.extend_from_slice(&data[512..]);
        // 72 + 1026 = 1098 bytes, padded to 1536.
        want.resize(1536, 0);
        assert_eq!(image, want);
    }

    #[test]
    fn round_trips_with_a_last_partial_segment() {
        let mut data = text(300 * 1024);
        data.extend(noise(100 * 1024, 5));
        data.extend(vec![0u8; 12 * 1024 + 512]);
        round_trip("partial", &data, 131072);
        let image = image_of("partial", &data, Algorithm::Gzip, 131072, 2);
        let h = Header::parse(&image, image.len() as u64).unwrap();
        assert_eq!(h.index_entries, 5);
        assert_eq!(h.last_segment_size, (data.len() - 3 * 131072) as u32);
    }

    #[test]
    fn round_trips_smaller_than_one_segment() {
        round_trip("small", &text(1536), 131072);
        round_trip("one-block", &text(512), 8 << 20);
    }

    #[test]
    fn round_trips_in_512_byte_segments_all_stored() {
        let data = text(64 * 512);
        round_trip("tiny", &data, 512);
        let image = image_of("tiny", &data, Algorithm::Lzma, 512, 2);
        let h = Header::parse(&image, image.len() as u64).unwrap();
        let start = h.data_start() as usize;
        for i in 0..64 {
            assert_eq!(image[start + i * 513], STORED);
        }
        // 48 + 65 * 8 + 64 * 513 = 33400, padded to 33792.
        assert_eq!(image.len(), 33792);
    }

    #[test]
    fn incompressible_data_is_stored() {
        let data = noise(4 * 131072, 11);
        round_trip("noise", &data, 131072);
        let image = image_of("noise", &data, Algorithm::Zstd, 131072, 2);
        let h = Header::parse(&image, image.len() as u64).unwrap();
        let start = h.data_start() as usize;
        for i in 0..4 {
            assert_eq!(image[start + i * 131073], STORED);
        }
    }

    #[test]
    fn compressible_segments_are_compressed() {
        let data = text(2 * 131072);
        let image = image_of("text", &data, Algorithm::Gzip, 131072, 2);
        let h = Header::parse(&image, image.len() as u64).unwrap();
        assert_eq!(image[h.data_start() as usize], COMPRESSED);
        assert!(image.len() < data.len() / 10);
        // The index: offsets from the end of the index, from 0.
        let index = crate::image::format::parse_index(&h, &image[HEADER_LEN..], image.len() as u64)
            .unwrap();
        assert_eq!(index[0], 0);
        assert_eq!(
            image[h.data_start() as usize + index[1] as usize],
            COMPRESSED
        );
    }
}
