// SPDX-License-Identifier: GPL-2.0

//! Sizes, the mapped region and the fake disk geometry of a mapping.
//!
//! Pure arithmetic, kept apart from the driver so that KUnit covers it.

use kernel::prelude::*;

/// Bytes in a sector, the unit of a disk's capacity (and of `li_offset`).
pub(crate) const SECTOR_SIZE: u64 = 512;

/// Whether `size` is a logical block size a mapping can have.
pub(crate) fn valid_block_size(size: u32) -> bool {
    matches!(size, 512 | 1024 | 2048 | 4096)
}

/// The capacity in sectors of the region of a backing file of `size`
/// bytes that a mapping presents: `sizelimit` bytes from byte `offset`, or
/// (`sizelimit` 0) everything from `offset` to the end.
///
/// The offset must be a multiple of [`SECTOR_SIZE`] below the size; the
/// region must lie inside the file and be a non-zero multiple of `block`
/// (a valid block size). Anything else is `EINVAL`: for a whole file
/// (offset and limit 0, 512-byte blocks) that is the illumos rule of a
/// non-zero size that is a multiple of 512.
pub(crate) fn region_sectors(size: i64, offset: u64, sizelimit: u64, block: u32) -> Result<u64> {
    let size = u64::try_from(size).map_err(|_| EINVAL)?;
    if !valid_block_size(block) || offset % SECTOR_SIZE != 0 || offset >= size {
        return Err(EINVAL);
    }
    let rest = size - offset;
    let len = match sizelimit {
        0 => rest,
        limit if limit <= rest => limit,
        _ => return Err(EINVAL),
    };
    // `checked_rem`: `block` is valid (so not zero), but said without a
    // panic path all the same.
    if len.checked_rem(u64::from(block)) != Some(0) {
        return Err(EINVAL);
    }
    Ok(len / SECTOR_SIZE)
}

/// The whole blocks of `block` bytes (a valid block size) in `sectors`,
/// in sectors: what a disk with that logical block size can present.
pub(crate) fn whole_blocks(sectors: u64, block: u32) -> u64 {
    let per_block = u64::from(block) / SECTOR_SIZE;
    // `checked_rem`: a block below a sector (not valid) keeps every
    // sector, and no toolchain has to prove the divisor non-zero.
    sectors - sectors.checked_rem(per_block).unwrap_or(0)
}

/// The capacity in sectors of a mapping whose file is now `size` bytes,
/// after a capacity change (`LOFI_SET_CAPACITY`): the region of
/// [`region_sectors`] (measured in `region_block`, the block size the
/// mapping was made with, 512 by default), cut to whole logical blocks of
/// `block` as when it was mapped. A region without a whole block is
/// `EINVAL`.
pub(crate) fn resized_sectors(
    size: i64,
    offset: u64,
    sizelimit: u64,
    region_block: u32,
    block: u32,
) -> Result<u64> {
    let region = region_sectors(size, offset, sizelimit, region_block)?;
    match whole_blocks(region, block) {
        0 => Err(EINVAL),
        sectors => Ok(sectors),
    }
}

/// A CHS geometry in the ranges of Linux's `struct hd_geometry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Heads per cylinder.
    pub(crate) heads: u8,
    /// Sectors per track.
    pub(crate) sectors: u8,
    /// Cylinders, capped at `u16::MAX` for devices too large to describe.
    pub(crate) cylinders: u16,
}

/// Devices smaller than this many sectors (2 MiB) get small cylinders.
const SMALL_DEVICE_SECTORS: u64 = 2 * 1024 * 1024 / SECTOR_SIZE;

/// The geometry `HDIO_GETGEO` reports for a device of `capacity` sectors.
///
/// The illumos driver gives one head and cylinders of 100 KiB below 2 MiB
/// and 300 KiB above, with as many sectors per track as that takes (200 or
/// 600). `struct hd_geometry` holds at most 255 sectors per track, so the
/// same cylinder sizes are laid out as 8 heads x 25 sectors (100 KiB) and
/// 20 heads x 30 sectors (300 KiB). A device smaller than one cylinder is,
/// as in illumos, one cylinder of one head holding every sector. Cylinders
/// never exceed what `u16` holds: past about 19 GiB the count saturates, as
/// with other Linux block drivers; tools take the size from `BLKGETSIZE64`.
pub(crate) fn fake_geometry(capacity: u64) -> Geometry {
    let (heads, sectors): (u8, u8) = if capacity < SMALL_DEVICE_SECTORS {
        (8, 25)
    } else {
        (20, 30)
    };
    let per_cylinder = u64::from(heads) * u64::from(sectors);
    if capacity < per_cylinder {
        return Geometry {
            heads: 1,
            // `capacity < per_cylinder <= 600`; below 2 MiB it is < 200.
            sectors: u8::try_from(capacity).unwrap_or(u8::MAX),
            cylinders: if capacity == 0 { 0 } else { 1 },
        };
    }
    Geometry {
        heads,
        sectors,
        cylinders: capacity
            .checked_div(per_cylinder)
            .and_then(|cylinders| u16::try_from(cylinders).ok())
            .unwrap_or(u16::MAX),
    }
}

#[kunit_tests(lofi_geometry)]
mod tests {
    use super::*;

    fn chs(heads: u8, sectors: u8, cylinders: u16) -> Geometry {
        Geometry {
            heads,
            sectors,
            cylinders,
        }
    }

    fn whole(size: i64) -> Result<u64> {
        region_sectors(size, 0, 0, 512)
    }

    #[test]
    fn whole_files_of_sector_multiples_are_mapped() {
        assert_eq!(whole(512), Ok(1));
        assert_eq!(whole(1 << 20), Ok(2048));
        assert_eq!(whole(5 << 30), Ok(5 << 21));
        assert_eq!(whole(i64::MAX - 511), Ok((i64::MAX as u64 - 511) / 512));
    }

    #[test]
    fn whole_files_of_bad_sizes_are_refused() {
        assert_eq!(whole(0), Err(EINVAL));
        assert_eq!(whole(511), Err(EINVAL));
        assert_eq!(whole(513), Err(EINVAL));
        assert_eq!(whole(-512), Err(EINVAL));
        assert_eq!(whole(i64::MIN), Err(EINVAL));
    }

    #[test]
    fn regions_are_what_lies_inside_the_file() {
        let mib: i64 = 1 << 20;
        // The second MiB of a 3 MiB file, and everything after it.
        assert_eq!(region_sectors(3 * mib, 1 << 20, 1 << 20, 512), Ok(2048));
        assert_eq!(region_sectors(3 * mib, 1 << 20, 0, 512), Ok(4096));
        // Up to the very end, in 4096-byte blocks.
        assert_eq!(
            region_sectors(3 * mib, 4096, 3 * (1 << 20) - 4096, 4096),
            Ok(6136)
        );
        // The file's size need not be a multiple of 512 if the region is.
        assert_eq!(region_sectors(1000, 0, 512, 512), Ok(1));
        assert_eq!(region_sectors(1536 + 7, 512, 1024, 1024), Ok(2));
    }

    #[test]
    fn regions_outside_the_file_or_misaligned_are_refused() {
        let mib: i64 = 1 << 20;
        // Offsets: not a sector multiple, at or past the end.
        assert_eq!(region_sectors(mib, 1, 0, 512), Err(EINVAL));
        assert_eq!(region_sectors(mib, 1 << 20, 0, 512), Err(EINVAL));
        assert_eq!(region_sectors(mib, u64::MAX - 511, 512, 512), Err(EINVAL));
        // Limits past the end (also where offset + limit overflows).
        assert_eq!(region_sectors(mib, 512, 1 << 20, 512), Err(EINVAL));
        assert_eq!(region_sectors(mib, 512, u64::MAX, 512), Err(EINVAL));
        // Regions that are no multiple of the block size.
        assert_eq!(region_sectors(mib, 512, 0, 4096), Err(EINVAL));
        assert_eq!(region_sectors(mib, 0, 1536, 1024), Err(EINVAL));
        assert_eq!(region_sectors(mib + 512, 0, 0, 2048), Err(EINVAL));
        // Block sizes lofi does not present.
        assert_eq!(region_sectors(mib, 0, 0, 0), Err(EINVAL));
        assert_eq!(region_sectors(mib, 0, 0, 8192), Err(EINVAL));
        assert_eq!(region_sectors(mib, 0, 0, 3000), Err(EINVAL));
    }

    #[test]
    fn resized_regions_keep_whole_blocks() {
        let mib: i64 = 1 << 20;
        // A whole file that grew from 1 to 3 MiB, and a limit set anew.
        assert_eq!(resized_sectors(3 * mib, 0, 0, 512, 512), Ok(6144));
        assert_eq!(resized_sectors(3 * mib, 0, 1 << 20, 512, 512), Ok(2048));
        // The offset stays where it was.
        assert_eq!(resized_sectors(3 * mib, 1 << 20, 0, 512, 512), Ok(4096));
        // A direct mapping with 4096-byte blocks of a region measured in
        // 512-byte sectors: whole 4096-byte blocks, as at map time.
        assert_eq!(resized_sectors(mib + 512, 0, 0, 512, 4096), Ok(2048));
        assert_eq!(resized_sectors(3584, 0, 0, 512, 4096), Err(EINVAL));
        // The file shrank below the offset, or below the limit.
        assert_eq!(resized_sectors(mib, 1 << 20, 0, 512, 512), Err(EINVAL));
        assert_eq!(resized_sectors(mib, 0, 2 << 20, 512, 512), Err(EINVAL));
        assert_eq!(whole_blocks(15, 4096), 8);
        assert_eq!(whole_blocks(15, 512), 15);
    }

    #[test]
    fn block_sizes_are_the_four_powers_of_two() {
        for size in [512, 1024, 2048, 4096] {
            assert!(valid_block_size(size));
        }
        for size in [0, 1, 256, 511, 513, 3000, 8192, u32::MAX] {
            assert!(!valid_block_size(size));
        }
    }

    #[test]
    fn geometry_of_tiny_devices_is_one_cylinder() {
        assert_eq!(fake_geometry(1), chs(1, 1, 1));
        assert_eq!(fake_geometry(199), chs(1, 199, 1));
        assert_eq!(fake_geometry(0), chs(1, 0, 0));
    }

    #[test]
    fn geometry_uses_illumos_cylinder_sizes() {
        // 1 MiB: 100 KiB cylinders, as illumos; 10 whole cylinders.
        assert_eq!(fake_geometry(2048), chs(8, 25, 10));
        // 2 MiB: 300 KiB cylinders.
        assert_eq!(fake_geometry(4096), chs(20, 30, 6));
        // 1 GiB.
        assert_eq!(fake_geometry(1 << 21), chs(20, 30, 3495));
    }

    #[test]
    fn geometry_never_exceeds_capacity_until_it_saturates() {
        let mut capacity = 1u64;
        while capacity < (1 << 40) {
            let g = fake_geometry(capacity);
            let chs = u64::from(g.heads) * u64::from(g.sectors) * u64::from(g.cylinders);
            assert!(chs <= capacity);
            assert!(g.sectors >= 1 && g.heads >= 1 && g.cylinders >= 1);
            if g.cylinders < u16::MAX {
                // Less than one cylinder is left over.
                assert!(capacity - chs < u64::from(g.heads) * u64::from(g.sectors));
            }
            capacity = capacity * 3 + 1;
        }
        assert_eq!(fake_geometry(u64::MAX).cylinders, u16::MAX);
    }
}
