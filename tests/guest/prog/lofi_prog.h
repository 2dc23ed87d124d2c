/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the lofi guest test programs share: the control commands by name,
 * the device node names, a monotonic clock and a sleep that survives
 * signals.
 */
#ifndef LOFI_PROG_H
#define LOFI_PROG_H

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/lofi.h>

/*
 * The commands of /dev/lofictl that lofi implements, with their names
 * (LOFI_CHECK_COMPRESSED last: a query like LOFI_GET_MINOR).
 */
struct lofi_command {
	const char *name;
	unsigned long cmd;
};

static const struct lofi_command lofi_commands[] __attribute__((unused)) = {
	{ "MAP_FILE", LOFI_MAP_FILE },
	{ "MAP_FILE_MINOR", LOFI_MAP_FILE_MINOR },
	{ "UNMAP_FILE", LOFI_UNMAP_FILE },
	{ "UNMAP_FILE_MINOR", LOFI_UNMAP_FILE_MINOR },
	{ "GET_FILENAME", LOFI_GET_FILENAME },
	{ "GET_MINOR", LOFI_GET_MINOR },
	{ "GET_MAXMINOR", LOFI_GET_MAXMINOR },
	{ "SET_CAPACITY", LOFI_SET_CAPACITY },
	{ "CHECK_COMPRESSED", LOFI_CHECK_COMPRESSED },
};

#define LOFI_NR_COMMANDS (sizeof(lofi_commands) / sizeof(lofi_commands[0]))

/*
 * The node of mapping N is the disk's devtmpfs node /dev/lofiN (printf
 * format LOFI_DEV_FMT, N unsigned), partition M of a labeled one
 * /dev/lofiNpM (LOFI_PART_FMT); /dev/lofi/N is only a link that udev or
 * lofiadm may make.
 */
#define LOFI_DEV_FMT	"/dev/lofi%u"
#define LOFI_PART_FMT	"/dev/lofi%up%u"

/*
 * N from "N", "/dev/lofiN" or the link "/dev/lofi/N"; 0 if ARG is none of
 * them (also for "/dev/lofictl" and a partition "/dev/lofiNpM").
 */
static inline unsigned lofi_dev_number(const char *arg)
{
	const char *p = arg;
	char *end;
	unsigned long n;

	if (strncmp(p, "/dev/lofi/", 10) == 0)
		p += 10;
	else if (strncmp(p, "/dev/lofi", 9) == 0)
		p += 9;
	if (!isdigit((unsigned char)*p))
		return 0;
	errno = 0;
	n = strtoul(p, &end, 10);
	if (*end || errno || n == 0 || n > UINT32_MAX)
		return 0;
	return (unsigned)n;
}

/* A primary partition of an MBR: first sector and length, in 512-byte sectors. */
struct lofi_mbr_part {
	uint32_t start, sectors;
};

/*
 * Fill SECTOR (512 bytes) with an MBR (a DOS partition table) of the N
 * (at most 4) primary partitions P, each of type 0x83 (Linux), and the
 * boot signature 0x55 0xAA. The CHS fields are 0xFE/0xFF/0xFF ("use the
 * LBA fields"), as tools write them for disks past CHS limits.
 */
static inline void lofi_mbr(unsigned char *sector, const struct lofi_mbr_part *p, unsigned n)
{
	memset(sector, 0, 512);
	/* A disk signature, so that the table is not mistaken for empty. */
	sector[440] = 0x4c;
	sector[441] = 0x4f;
	sector[442] = 0x46;
	sector[443] = 0x49;
	for (unsigned i = 0; i < n && i < 4; i++) {
		unsigned char *e = sector + 446 + 16 * i;

		e[0] = 0x00;			/* not bootable */
		e[1] = 0xfe;			/* CHS of the first sector */
		e[2] = 0xff;
		e[3] = 0xff;
		e[4] = 0x83;			/* Linux */
		e[5] = 0xfe;			/* CHS of the last sector */
		e[6] = 0xff;
		e[7] = 0xff;
		for (int b = 0; b < 4; b++) {
			e[8 + b] = (unsigned char)(p[i].start >> (8 * b));
			e[12 + b] = (unsigned char)(p[i].sectors >> (8 * b));
		}
	}
	sector[510] = 0x55;
	sector[511] = 0xaa;
}

/* Seconds on the monotonic clock. */
static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Sleep for MS milliseconds, resuming after a signal handler. poll(), not
 * nanosleep(): a 32-bit program's nanosleep fails with ENOSYS on the test
 * kernel (no COMPAT_32BIT_TIME), poll's timeout is a plain int.
 */
static inline void msleep(int ms)
{
	double end = now() + ms / 1000.0;
	double left;

	while ((left = end - now()) > 0)
		poll(NULL, 0, (int)(left * 1000) + 1);
}

#ifdef LOFI_PROG_NAME
/*
 * Error exits of the command-line programs (define LOFI_PROG_NAME to the
 * program's name before including this file): "NAME: message: ENAME
 * (strerror)", exit status 1.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline const char *ename(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

__attribute__((format(printf, 2, 3), noreturn, unused))
static void die_errno(int err, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", LOFI_PROG_NAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s (%s)\n", ename(err), strerror(err));
	exit(1);
}

__attribute__((format(printf, 1, 2), noreturn, unused))
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", LOFI_PROG_NAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}
#endif /* LOFI_PROG_NAME */

#endif /* LOFI_PROG_H */
