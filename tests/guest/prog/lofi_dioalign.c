// SPDX-License-Identifier: GPL-2.0
/*
 * lofi_dioalign: the direct-I/O alignment a file system reports for a file
 * (statx(2) STATX_DIOALIGN), for the guest tests of lofi's direct I/O mode
 * (coreutils' stat does not print it, xfs_io is not installed).
 *
 *   lofi_dioalign FILE
 *
 * Prints "offset=O memory=M": stx_dio_offset_align and stx_dio_mem_align,
 * both 0 when the file system does not report STATX_DIOALIGN, or reports
 * that the file cannot do direct I/O. Exit status 0, 1 if statx fails, 2 on
 * a usage error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#define LOFI_PROG_NAME "lofi_dioalign"
#include "lofi_prog.h"

int main(int argc, char **argv)
{
	struct statx stx;

	if (argc != 2) {
		fprintf(stderr, "usage: lofi_dioalign FILE\n");
		return 2;
	}
	if (statx(AT_FDCWD, argv[1], 0, STATX_DIOALIGN, &stx) < 0)
		die_errno(errno, "statx %s", argv[1]);
	if (!(stx.stx_mask & STATX_DIOALIGN))
		stx.stx_dio_offset_align = stx.stx_dio_mem_align = 0;
	printf("offset=%u memory=%u\n", stx.stx_dio_offset_align, stx.stx_dio_mem_align);
	return 0;
}
