/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the lofi guest test programs share: the control commands by name,
 * a monotonic clock and a sleep that survives signals.
 */
#ifndef LOFI_PROG_H
#define LOFI_PROG_H

#include <errno.h>
#include <poll.h>
#include <time.h>

#include <linux/lofi.h>

/*
 * The commands of /dev/lofictl that lofi implements, with their names (not
 * the reserved LOFI_CHECK_COMPRESSED: ENOTTY).
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
};

#define LOFI_NR_COMMANDS (sizeof(lofi_commands) / sizeof(lofi_commands[0]))

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
