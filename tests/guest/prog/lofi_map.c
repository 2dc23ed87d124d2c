// SPDX-License-Identifier: GPL-2.0
/*
 * lofi_map: a minimal lofiadm stand-in for the guest tests' shell scripts.
 *
 *   lofi_map map FILE [ro] [direct] [labeled]
 *                                     map FILE (LOFI_MAP_FILE); print li_devpath
 *                                     (/dev/lofiN)
 *   lofi_map map-minor N FILE [ro] [direct] [labeled]
 *                                     map FILE as N (LOFI_MAP_FILE_MINOR); print the path
 *                                     (direct: ask for LOFI_FLAG_DIRECT_IO; "direct I/O
 *                                     refused" on stderr if the mapping came back without;
 *                                     labeled: LOFI_FLAG_LABELED, partitions lofiNpM)
 *   lofi_map unmap DEV|N|FILE [force|cleanup]
 *                                     unmap by device path (/dev/lofiN or the link
 *                                     /dev/lofi/N) or N (UNMAP_FILE_MINOR)
 *                                     or by backing file name (UNMAP_FILE)
 *   lofi_map minor FILE               print N (LOFI_GET_MINOR)
 *   lofi_map check FILE               print the algorithm of FILE's mapping, as
 *                                     LOFI_CHECK_COMPRESSED gives it in li_algorithm
 *                                     (an empty line for an ordinary image)
 *   lofi_map filename DEV|N           print the backing file (LOFI_GET_FILENAME)
 *   lofi_map status DEV|N             print "N DEVPATH ro|rw FILENAME"
 *   lofi_map fields DEV|N             print the mapping's map fields (GET_FILENAME):
 *                                     "flags=0xF block_size=B offset=O sizelimit=L
 *                                     algorithm=NAME" ("algorithm=" for an ordinary
 *                                     image)
 *   lofi_map list                     a status line for every mapping
 *   lofi_map maxminor                 print lofi_max_files (LOFI_GET_MAXMINOR)
 *   lofi_map unmap-all [force]        unmap every mapping (test cleanup)
 *   lofi_map wait-gone DEV            open DEV and wait in LOFI_DKIOCSTATE until
 *                                     the device is gone: prints "waiting: STATE"
 *                                     once blocked, then "DKIO_DEV_GONE" (states
 *                                     by their illumos names, without LOFI_)
 *   lofi_map open DEV [rw]            open DEV and close it again
 *   lofi_map cycle FILE COUNT [SECS]  map and unmap FILE COUNT times, checking
 *                                     each round (a fast loop: no fork per round);
 *                                     with SECS > 0, stop early once SECS have passed
 *                                     (saying so), after at least 100 cycles
 *
 * Exit status: 0 on success, 1 on an error (printed with the errno's name
 * and text, e.g. "lofi_map: map /x: EAGAIN (Resource temporarily
 * unavailable)"), 2 on a usage error.
 *
 * A plain unmap (no force, no cleanup) retries EBUSY for up to 5 seconds:
 * udev may open a new disk briefly to probe it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <linux/lofi.h>

#define LOFI_PROG_NAME "lofi_map"
#include "lofi_prog.h"

#define CTL_PATH "/dev/lofictl"

__attribute__((noreturn))
static void usage(void)
{
	fprintf(stderr,
		"usage: lofi_map map FILE [ro] [direct] [labeled] |\n"
		"       map-minor N FILE [ro] [direct] [labeled] |\n"
		"       unmap DEV|N|FILE [force|cleanup] | unmap-all [force] |\n"
		"       minor FILE | check FILE | filename DEV|N | status DEV|N | fields DEV|N |\n"
		"       list | maxminor | wait-gone DEV | open DEV [rw] | cycle FILE COUNT [SECS]\n");
	exit(2);
}

static int ctl(int writable)
{
	int fd = open(CTL_PATH, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);

	if (fd < 0)
		die_errno(errno, "open %s", CTL_PATH);
	return fd;
}

static void li_init(struct lofi_ioctl *li, const char *path)
{
	memset(li, 0, sizeof(*li));
	if (path) {
		if (strlen(path) >= sizeof(li->li_filename))
			die("%s: path too long", path);
		memcpy(li->li_filename, path, strlen(path) + 1);
	}
}

/* N from "N", "/dev/lofiN" or "/dev/lofi/N"; 0 if ARG is none of them. */
static unsigned parse_minor(const char *arg)
{
	return lofi_dev_number(arg);
}

static unsigned need_minor(const char *arg)
{
	unsigned n = parse_minor(arg);

	if (!n)
		die("%s: not a lofi device path or number", arg);
	return n;
}

/*
 * Map options after FILE: "ro", "direct" (LOFI_FLAG_DIRECT_IO) and
 * "labeled" (LOFI_FLAG_LABELED).
 */
struct map_opts {
	int ro;
	int direct;
	int labeled;
};

static struct map_opts parse_map_opts(int argc, char **argv, int first)
{
	struct map_opts o = { 0, 0, 0 };

	for (int i = first; i < argc; i++) {
		if (strcmp(argv[i], "ro") == 0)
			o.ro = 1;
		else if (strcmp(argv[i], "direct") == 0)
			o.direct = 1;
		else if (strcmp(argv[i], "labeled") == 0)
			o.labeled = 1;
		else
			usage();
	}
	return o;
}

static int map(int fd, unsigned minor, const char *path, struct map_opts o, struct lofi_ioctl *li)
{
	int r;

	li_init(li, path);
	li->li_minor = minor;
	li->li_readonly = o.ro;
	li->li_flags = (o.direct ? LOFI_FLAG_DIRECT_IO : 0) | (o.labeled ? LOFI_FLAG_LABELED : 0);
	r = ioctl(fd, minor ? LOFI_MAP_FILE_MINOR : LOFI_MAP_FILE, li);
	/* The driver falls back to buffered I/O where the file refuses
	 * direct I/O: say so, the mapping stands. */
	if (r >= 0 && o.direct && !(li->li_flags & LOFI_FLAG_DIRECT_IO))
		fprintf(stderr, "lofi_map: %s: direct I/O refused, mapped with buffered I/O\n", path);
	return r;
}

/* Unmap by N, or by name if N is 0. Returns 0 or an errno. */
static int unmap(int fd, unsigned minor, const char *path, int force, int cleanup, int retry)
{
	struct lofi_ioctl li;
	double end = now() + 5;
	int r;

	for (;;) {
		li_init(&li, minor ? NULL : path);
		li.li_minor = minor;
		li.li_force = force;
		li.li_cleanup = cleanup;
		r = ioctl(fd, minor ? LOFI_UNMAP_FILE_MINOR : LOFI_UNMAP_FILE, &li);
		if (r == 0)
			return 0;
		if (errno != EBUSY || !retry || now() > end)
			return errno;
		msleep(50);
	}
}

static int get_filename(int fd, unsigned minor, struct lofi_ioctl *li)
{
	li_init(li, NULL);
	li->li_minor = minor;
	return ioctl(fd, LOFI_GET_FILENAME, li);
}

static unsigned maxminor(int fd)
{
	struct lofi_ioctl li;

	li_init(&li, NULL);
	if (ioctl(fd, LOFI_GET_MAXMINOR, &li) < 0)
		die_errno(errno, "GET_MAXMINOR");
	return li.li_minor;
}

static void print_status(unsigned n, const struct lofi_ioctl *li)
{
	printf("%u %s %s %s\n", n, li->li_devpath, li->li_readonly ? "ro" : "rw", li->li_filename);
}

static const char *state_name(uint32_t s)
{
	switch (s) {
	case LOFI_DKIO_NONE:
		return "DKIO_NONE";
	case LOFI_DKIO_EJECTED:
		return "DKIO_EJECTED";
	case LOFI_DKIO_INSERTED:
		return "DKIO_INSERTED";
	case LOFI_DKIO_DEV_GONE:
		return "DKIO_DEV_GONE";
	}
	return "DKIO_?";
}

/* Wait until PATH is (or is not) a block device, up to SECS seconds. */
static int wait_node(const char *path, int present, double secs)
{
	double end = now() + secs;
	struct stat st;

	for (;;) {
		int is = stat(path, &st) == 0 && S_ISBLK(st.st_mode);

		if (is == present)
			return 1;
		if (now() > end)
			return 0;
		msleep(10);
	}
}

static int cmd_cycle(const char *path, long count, double budget)
{
	struct lofi_ioctl li;
	char *buf = NULL;
	double t0 = now(), t, t_map = 0, t_unmap = 0;
	unsigned first = 0;
	long i, ebusy = 0;
	int fd = ctl(1);

	if (posix_memalign((void **)&buf, 4096, 4096))
		die("out of memory");
	for (i = 0; i < count; i++) {
		unsigned n;
		int r, dfd;

		t = now();
		if (map(fd, 0, path, (struct map_opts){ 0, 0, 0 }, &li) < 0)
			die_errno(errno, "cycle %ld: map %s", i, path);
		t_map += now() - t;
		n = li.li_minor;
		if (!first)
			first = n;
		if (n != first)
			die("cycle %ld: map got N=%u, the first cycle got %u (the lowest free N must be reused)",
			    i, n, first);
		if (!wait_node(li.li_devpath, 1, 5))
			die("cycle %ld: %s did not appear", i, li.li_devpath);
		/* Every tenth round, use the device: a sector written and read back. */
		if (i % 10 == 0) {
			dfd = open(li.li_devpath, O_RDWR | O_DIRECT);
			if (dfd < 0)
				die_errno(errno, "cycle %ld: open %s", i, li.li_devpath);
			memset(buf, (int)(i & 0xff), 4096);
			if (pwrite(dfd, buf, 4096, 0) != 4096)
				die_errno(errno, "cycle %ld: write %s", i, li.li_devpath);
			memset(buf, 0, 4096);
			if (pread(dfd, buf, 4096, 0) != 4096)
				die_errno(errno, "cycle %ld: read %s", i, li.li_devpath);
			if ((unsigned char)buf[0] != (i & 0xff) || (unsigned char)buf[4095] != (i & 0xff))
				die("cycle %ld: %s read back the wrong data", i, li.li_devpath);
			close(dfd);
		}
		/* Alternate unmapping by N and by name. */
		t = now();
		for (;;) {
			r = unmap(fd, i % 2 ? 0 : n, path, 0, 0, 0);
			if (r != EBUSY || ebusy > count)
				break;
			ebusy++;
			msleep(20);
		}
		if (r)
			die_errno(r, "cycle %ld: unmap %s (%s)", i, i % 2 ? path : li.li_devpath,
				  i % 2 ? "by name" : "by N");
		t_unmap += now() - t;
		if (!wait_node(li.li_devpath, 0, 5))
			die("cycle %ld: %s still exists after the unmap", i, li.li_devpath);
		if (get_filename(fd, n, &li) == 0)
			die("cycle %ld: GET_FILENAME %u after the unmap succeeded, want ENXIO", i, n);
		if (errno != ENXIO)
			die_errno(errno, "cycle %ld: GET_FILENAME %u after the unmap (want ENXIO)", i, n);
		if ((i + 1) % 100 == 0) {
			printf("%ld/%ld cycles, %.1f s\n", i + 1, count, now() - t0);
			fflush(stdout);
		}
		if (budget > 0 && i + 1 >= 100 && i + 1 < count && now() - t0 > budget) {
			printf("time budget of %.0f s used up: stopping after %ld of %ld cycles\n", budget, i + 1,
			       count);
			count = i + 1;
		}
	}
	printf("%ld map/unmap cycles of /dev/lofi%u in %.1f s (%ld EBUSY retries; per cycle: map %.1f ms, "
	       "unmap %.1f ms, the rest %.1f ms)\n", count, first, now() - t0, ebusy, 1000 * t_map / count,
	       1000 * t_unmap / count, 1000 * (now() - t0 - t_map - t_unmap) / count);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct lofi_ioctl li;
	const char *cmd;
	unsigned n;
	int fd;

	if (argc < 2)
		usage();
	cmd = argv[1];

	if (strcmp(cmd, "map") == 0 && argc >= 3 && argc <= 6) {
		struct map_opts o = parse_map_opts(argc, argv, 3);

		if (map(ctl(1), 0, argv[2], o, &li) < 0)
			die_errno(errno, "map %s", argv[2]);
		printf("%s\n", li.li_devpath);
		return 0;
	}
	if (strcmp(cmd, "map-minor") == 0 && argc >= 4 && argc <= 7) {
		struct map_opts o = parse_map_opts(argc, argv, 4);

		n = need_minor(argv[2]);
		if (map(ctl(1), n, argv[3], o, &li) < 0)
			die_errno(errno, "map-minor %u %s", n, argv[3]);
		printf("%s\n", li.li_devpath);
		return 0;
	}
	if (strcmp(cmd, "unmap") == 0 && (argc == 3 || argc == 4)) {
		int force = argc == 4 && strcmp(argv[3], "force") == 0;
		int cleanup = argc == 4 && strcmp(argv[3], "cleanup") == 0;
		int r;

		if (argc == 4 && !force && !cleanup)
			usage();
		n = parse_minor(argv[2]);
		r = unmap(ctl(1), n, argv[2], force, cleanup, !force && !cleanup);
		if (r)
			die_errno(r, "unmap %s", argv[2]);
		return 0;
	}
	if (strcmp(cmd, "unmap-all") == 0 && (argc == 2 || (argc == 3 && strcmp(argv[2], "force") == 0))) {
		unsigned max, i;
		int err = 0, r;

		fd = ctl(1);
		max = maxminor(fd);
		for (i = 1; i <= max; i++) {
			if (get_filename(fd, i, &li) < 0)
				continue;
			r = unmap(fd, i, NULL, argc == 3, 0, argc == 2);
			if (r) {
				fprintf(stderr, "%s: unmap %u: %s (%s)\n", LOFI_PROG_NAME, i, ename(r), strerror(r));
				err = 1;
			}
		}
		return err;
	}
	if (strcmp(cmd, "minor") == 0 && argc == 3) {
		li_init(&li, argv[2]);
		if (ioctl(ctl(0), LOFI_GET_MINOR, &li) < 0)
			die_errno(errno, "minor %s", argv[2]);
		printf("%u\n", li.li_minor);
		return 0;
	}
	if (strcmp(cmd, "check") == 0 && argc == 3) {
		li_init(&li, argv[2]);
		if (ioctl(ctl(0), LOFI_CHECK_COMPRESSED, &li) < 0)
			die_errno(errno, "check %s", argv[2]);
		printf("%.*s\n", (int)strnlen(li.li_algorithm, sizeof(li.li_algorithm)), li.li_algorithm);
		return 0;
	}
	if ((strcmp(cmd, "filename") == 0 || strcmp(cmd, "status") == 0 || strcmp(cmd, "fields") == 0) &&
	    argc == 3) {
		n = need_minor(argv[2]);
		if (get_filename(ctl(0), n, &li) < 0)
			die_errno(errno, "%s %s", cmd, argv[2]);
		if (strcmp(cmd, "filename") == 0)
			printf("%s\n", li.li_filename);
		else if (strcmp(cmd, "fields") == 0)
			printf("flags=0x%x block_size=%u offset=%llu sizelimit=%llu algorithm=%.*s\n",
			       li.li_flags, li.li_block_size, (unsigned long long)li.li_offset,
			       (unsigned long long)li.li_sizelimit,
			       (int)strnlen(li.li_algorithm, sizeof(li.li_algorithm)), li.li_algorithm);
		else
			print_status(n, &li);
		return 0;
	}
	if (strcmp(cmd, "list") == 0 && argc == 2) {
		unsigned max, i;

		fd = ctl(0);
		max = maxminor(fd);
		for (i = 1; i <= max; i++) {
			if (get_filename(fd, i, &li) == 0)
				print_status(i, &li);
			else if (errno != ENXIO)
				die_errno(errno, "GET_FILENAME %u", i);
		}
		return 0;
	}
	if (strcmp(cmd, "maxminor") == 0 && argc == 2) {
		printf("%u\n", maxminor(ctl(0)));
		return 0;
	}
	if (strcmp(cmd, "wait-gone") == 0 && argc == 3) {
		uint32_t state = LOFI_DKIO_NONE;

		fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die_errno(errno, "open %s", argv[2]);
		if (ioctl(fd, LOFI_DKIOCSTATE, &state) < 0)
			die_errno(errno, "LOFI_DKIOCSTATE(DKIO_NONE) on %s", argv[2]);
		while (state != LOFI_DKIO_DEV_GONE) {
			printf("waiting: %s\n", state_name(state));
			fflush(stdout);
			/* Blocks until the state differs from the one passed. */
			if (ioctl(fd, LOFI_DKIOCSTATE, &state) < 0)
				die_errno(errno, "LOFI_DKIOCSTATE(%s) on %s", state_name(state), argv[2]);
		}
		printf("%s\n", state_name(state));
		return 0;
	}
	if (strcmp(cmd, "open") == 0 && (argc == 3 || (argc == 4 && strcmp(argv[3], "rw") == 0))) {
		fd = open(argv[2], argc == 4 ? O_RDWR : O_RDONLY);
		if (fd < 0)
			die_errno(errno, "open %s", argv[2]);
		close(fd);
		return 0;
	}
	if (strcmp(cmd, "cycle") == 0 && (argc == 4 || argc == 5)) {
		char *end;
		long count = strtol(argv[3], &end, 10);
		double budget = 0;

		if (*end || count <= 0)
			usage();
		if (argc == 5) {
			budget = strtod(argv[4], &end);
			if (*end || budget < 0)
				usage();
		}
		return cmd_cycle(argv[2], count, budget);
	}
	usage();
}
