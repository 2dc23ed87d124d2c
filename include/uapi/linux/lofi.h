/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * lofi: loopback file driver, user-space interface.
 *
 * The control device /dev/lofictl maps files (and block devices) to block
 * devices lofiN, N = 1 .. the module parameter lofi_max_files. The
 * commands and struct lofi_ioctl follow the illumos lofi driver's ABI,
 * with Linux path sizes and ioctl encoding.
 *
 * Every structure here has the same layout for 32- and 64-bit callers:
 * fixed-size members, 64-bit members 8-byte aligned, no implicit padding,
 * no pointers. struct lofi_ioctl is small enough for the ioctl size field
 * of every architecture (13 bits on alpha, mips, powerpc and sparc).
 *
 * Extension rules: an input field a command does not use is ignored; for
 * the map commands a zero field means "the default"; a flag bit the driver
 * does not know, a reserved field that is not zero, or a value the driver
 * does not support is EINVAL, so that a new field is never silently
 * ignored by an old driver.
 *
 * See Documentation/userspace-api/lofi.rst for every command and error.
 */
#ifndef _UAPI_LINUX_LOFI_H
#define _UAPI_LINUX_LOFI_H

#include <linux/ioctl.h>
#include <linux/limits.h>
#include <linux/types.h>

/*
 * Node names: /dev/lofictl, and the disk of mapping N is lofiN (sysfs,
 * diskstats and its devtmpfs node /dev/lofiN), partition M of a labeled
 * one lofiNpM (/dev/lofiNpM). The illumos layout /dev/lofi/N and
 * /dev/lofi/NpM is a set of links to those nodes, made by udev's rule
 * 60-lofi.rules or by lofiadm (the kernel's one node per device number
 * cannot carry both names).
 */
#define LOFI_CTL_NAME		"lofictl"
#define LOFI_BLOCK_DIR		"lofi"

/* Default of the lofi_max_files module parameter. */
#define LOFI_MAX_FILES_DEFAULT	128

/* Size of li_filename: a path of up to PATH_MAX - 1 bytes and its NUL. */
#define LOFI_PATH_LEN		PATH_MAX
/* Size of li_devpath: "/dev/lofi65536" and room for partition suffixes. */
#define LOFI_DEVPATH_LEN	64
/* Size of li_algorithm: the algorithm name of a compressed image. */
#define LOFI_ALGORITHM_LEN	36
/* Words of li_reserved. */
#define LOFI_RESERVED_WORDS	13

/*
 * li_flags. In (LOFI_MAP_FILE*): what the caller asks for; a bit not in
 * LOFI_FLAGS_KNOWN is EINVAL. Out (maps and queries): what the mapping
 * has, which may be less than was asked for (see each flag).
 *
 * LOFI_FLAG_DIRECT_IO: serve the mapping with direct, asynchronous I/O on
 * the backing file, bypassing its page cache (no double caching). With
 * li_block_size 0 the logical block size is raised to the file's
 * direct-I/O alignment. If the backing file cannot do direct I/O, or
 * li_offset or a li_block_size asked for does not fit its alignment, the
 * mapping is made with buffered I/O and the flag is clear on return (the
 * kernel log says why).
 *
 * LOFI_FLAG_LABELED: a labeled mapping (illumos lofiadm -l), a disk with
 * partitions: its partition table (MBR, GPT, ...) is read when it is
 * mapped and again on BLKRRPART, and BLKPG may add or remove partitions.
 * Without it the disk is never scanned (BLKRRPART and BLKPG are EINVAL).
 */
#define LOFI_FLAG_DIRECT_IO	(1u << 0)
#define LOFI_FLAG_LABELED	(1u << 1)
#define LOFI_FLAGS_KNOWN	(LOFI_FLAG_DIRECT_IO | LOFI_FLAG_LABELED)

/* The logical block size a mapping has when li_block_size is 0. */
#define LOFI_BLOCK_SIZE_DEFAULT	512

struct lofi_ioctl {
	/* Mapping number N: in for the *_MINOR commands, out for the rest. */
	__u32	li_minor;
	/* LOFI_UNMAP_FILE*: detach even if the device is open. */
	__u32	li_force;
	/* LOFI_UNMAP_FILE*: if the device is open, detach at its last close. */
	__u32	li_cleanup;
	/* LOFI_MAP_FILE*: map read-only. Out (maps and queries): 1 if read-only. */
	__u32	li_readonly;
	/* LOFI_MAP_FILE*: LOFI_FLAG_* bits asked for. Out: the mapping's. */
	__u32	li_flags;
	/*
	 * LOFI_MAP_FILE*: logical block size: 512, 1024, 2048 or 4096, or 0
	 * for the default (512, which direct I/O raises to the backing
	 * file's alignment, up to 4096); anything else is EINVAL. Out: the
	 * mapping's.
	 */
	__u32	li_block_size;
	/*
	 * LOFI_MAP_FILE*: the mapped region of the file: li_sizelimit bytes
	 * from byte li_offset, or (li_sizelimit 0) all from li_offset to the
	 * end. li_offset must be a multiple of 512 and below the file's size,
	 * li_sizelimit a multiple of the block size asked for (512 for 0),
	 * the region inside the file and a multiple of that block size;
	 * anything else is EINVAL. (Where direct I/O raises the default block
	 * size, a tail shorter than a block is left out.) LOFI_SET_CAPACITY:
	 * li_sizelimit is the new size limit, li_offset is ignored. Out: the
	 * mapping's, li_sizelimit as asked for (0: to the end).
	 */
	__aligned_u64	li_offset;
	__aligned_u64	li_sizelimit;
	/* Backing file: absolute path, NUL-terminated. In or out by command. */
	char	li_filename[LOFI_PATH_LEN];
	/* Out: the mapping's device node, e.g. "/dev/lofi1". */
	char	li_devpath[LOFI_DEVPATH_LEN];
	/*
	 * Out (maps and queries): the algorithm of a compressed image, as
	 * its header names it ("gzip", "gzip-6", "gzip-9", "lzma", "zstd",
	 * "lz4"), or "" for an ordinary one. Must be "" on map: lofi finds a
	 * compressed image by its header (the illumos lofiadm -C format),
	 * maps the whole of it read-only (li_readonly 1 on return, whatever
	 * was asked for) with buffered I/O (LOFI_FLAG_DIRECT_IO clear on
	 * return), and refuses an li_offset or li_sizelimit for it, an
	 * uncompressed size that is no multiple of the block size asked for,
	 * and a header or index that is not sound, with EINVAL.
	 */
	char	li_algorithm[LOFI_ALGORITHM_LEN];
	/* Reserved for extensions: must be zero for every command, else EINVAL. */
	__u32	li_reserved[LOFI_RESERVED_WORDS];
};

/* ioctl magic of lofi (not loop's 'L'). */
#define LOFI_IOC_MAGIC		0xDF

/* Control device commands, in the illumos order. */
#define LOFI_MAP_FILE		_IOWR(LOFI_IOC_MAGIC, 1, struct lofi_ioctl)
#define LOFI_MAP_FILE_MINOR	_IOWR(LOFI_IOC_MAGIC, 2, struct lofi_ioctl)
#define LOFI_UNMAP_FILE		_IOWR(LOFI_IOC_MAGIC, 3, struct lofi_ioctl)
#define LOFI_UNMAP_FILE_MINOR	_IOWR(LOFI_IOC_MAGIC, 4, struct lofi_ioctl)
#define LOFI_GET_FILENAME	_IOWR(LOFI_IOC_MAGIC, 5, struct lofi_ioctl)
#define LOFI_GET_MINOR		_IOWR(LOFI_IOC_MAGIC, 6, struct lofi_ioctl)
#define LOFI_GET_MAXMINOR	_IOWR(LOFI_IOC_MAGIC, 7, struct lofi_ioctl)
/*
 * As LOFI_GET_MINOR (the mapping of li_filename), for lofiadm -U on
 * illumos: li_algorithm says whether, and how, its image is compressed.
 */
#define LOFI_CHECK_COMPRESSED	_IOWR(LOFI_IOC_MAGIC, 8, struct lofi_ioctl)
/*
 * Capacity change of read-write mapping li_minor (a read-only one is
 * EROFS), while it may be open and in use:
 * the backing file is measured again and the region from the same
 * li_offset with the size limit li_sizelimit (0: to the end of the file;
 * the rules of the map commands, in the block size the map was made
 * with) becomes the disk's size, in whole logical blocks. The disk sends
 * a change uevent with RESIZE=1. Out: as LOFI_GET_FILENAME.
 */
#define LOFI_SET_CAPACITY	_IOWR(LOFI_IOC_MAGIC, 9, struct lofi_ioctl)

/*
 * Block device ioctl on /dev/lofiN: pass the state the caller last saw;
 * the call blocks until the device's state differs from it (EINTR on a
 * signal) and returns the current state in the same integer.
 */
#define LOFI_DKIOCSTATE		_IOWR(LOFI_IOC_MAGIC, 0x10, __u32)

/* States reported by LOFI_DKIOCSTATE (illumos enum dkio_state values). */
#define LOFI_DKIO_NONE		0	/* "tell me the state now" */
#define LOFI_DKIO_EJECTED	1	/* unused by lofi */
#define LOFI_DKIO_INSERTED	2	/* mapped and usable */
#define LOFI_DKIO_DEV_GONE	3	/* force-unmapped: the file is closed */

#endif /* _UAPI_LINUX_LOFI_H */
