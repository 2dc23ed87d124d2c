// SPDX-License-Identifier: GPL-2.0

//! Sizes and the fake disk geometry of a mapping.
//!
//! Pure arithmetic, kept apart from the driver so that KUnit covers it.

use kernel::prelude::*;

/// Bytes in a sector: lofi devices always have 512-byte logical blocks.
pub(crate) const SECTOR_SIZE: u64 = 512;

/// The capacity in sectors of a backing file of `size` bytes.
///
/// A mapping needs a non-zero size that is a multiple of [`SECTOR_SIZE`]:
/// anything else is `EINVAL`, as in the illumos driver.
pub(crate) fn capacity_sectors(size: i64) -> Result<u64> {
    let size = u64::try_from(size).map_err(|_| EINVAL)?;
    if size == 0 || size % SECTOR_SIZE != 0 {
        return Err(EINVAL);
    }
    Ok(size / SECTOR_SIZE)
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
        cylinders: u16::try_from(capacity / per_cylinder).unwrap_or(u16::MAX),
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

    #[test]
    fn capacity_accepts_sector_multiples() {
        assert_eq!(capacity_sectors(512), Ok(1));
        assert_eq!(capacity_sectors(1 << 20), Ok(2048));
        assert_eq!(capacity_sectors(5 << 30), Ok(5 << 21));
        assert_eq!(
            capacity_sectors(i64::MAX - 511),
            Ok((i64::MAX as u64 - 511) / 512)
        );
    }

    #[test]
    fn capacity_rejects_bad_sizes() {
        assert_eq!(capacity_sectors(0), Err(EINVAL));
        assert_eq!(capacity_sectors(511), Err(EINVAL));
        assert_eq!(capacity_sectors(513), Err(EINVAL));
        assert_eq!(capacity_sectors(-512), Err(EINVAL));
        assert_eq!(capacity_sectors(i64::MIN), Err(EINVAL));
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
