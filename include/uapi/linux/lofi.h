/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * lofi: loopback file driver, user-space interface.
 *
 * The control device /dev/lofictl maps files (and block devices) to block
 * devices /dev/lofi/N, N = 1 .. the module parameter lofi_max_files. The
 * commands and struct lofi_ioctl follow the illumos lofi driver's ABI,
 * with Linux path sizes and ioctl encoding.
 *
 * Every structure here has the same layout for 32- and 64-bit callers:
 * only __u32 and char members, no pointers, no implicit padding.
 *
 * See Documentation/userspace-api/lofi.rst for every command and error.
 */
#ifndef _UAPI_LINUX_LOFI_H
#define _UAPI_LINUX_LOFI_H

#include <linux/ioctl.h>
#include <linux/limits.h>
#include <linux/types.h>

/* Node names: /dev/lofictl and /dev/lofi/N (sysfs and diskstats: lofiN). */
#define LOFI_CTL_NAME		"lofictl"
#define LOFI_BLOCK_DIR		"lofi"

/* Default of the lofi_max_files module parameter. */
#define LOFI_MAX_FILES_DEFAULT	128

/* Size of li_algorithm (reserved for compressed images). */
#define LOFI_ALGORITHM_LEN	36

struct lofi_ioctl {
	/* Mapping number N: in for the *_MINOR commands, out for the rest. */
	__u32	li_minor;
	/* LOFI_UNMAP_FILE*: detach even if the device is open. */
	__u32	li_force;
	/* LOFI_UNMAP_FILE*: if the device is open, detach at its last close. */
	__u32	li_cleanup;
	/* LOFI_MAP_FILE*: map read-only. Out (maps and queries): 1 if read-only. */
	__u32	li_readonly;
	/* Backing file: absolute path, NUL-terminated. In or out by command. */
	char	li_filename[PATH_MAX];
	/* Out: the mapping's device node, e.g. "/dev/lofi/1". */
	char	li_devpath[PATH_MAX];
	/* Reserved for compressed images: must be empty ("") on map. */
	char	li_algorithm[LOFI_ALGORITHM_LEN];
	/* Reserved for extensions: must be zero, else EINVAL. */
	__u32	li_reserved[15];
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
/* Reserved for compressed images: ENOTTY until they are supported. */
#define LOFI_CHECK_COMPRESSED	_IOWR(LOFI_IOC_MAGIC, 8, struct lofi_ioctl)

/*
 * Block device ioctl on /dev/lofi/N: pass the state the caller last saw;
 * the call blocks until the device's state differs from it (EINTR on a
 * signal) and returns the current state in the same integer.
 */
#define DKIOCSTATE		_IOWR(LOFI_IOC_MAGIC, 0x10, __u32)

/* States reported by DKIOCSTATE (illumos enum dkio_state values). */
#define DKIO_NONE		0	/* "tell me the state now" */
#define DKIO_EJECTED		1	/* unused by lofi */
#define DKIO_INSERTED		2	/* mapped and usable */
#define DKIO_DEV_GONE		3	/* force-unmapped: the file is closed */

#endif /* _UAPI_LINUX_LOFI_H */
