// SPDX-License-Identifier: GPL-2.0
/*
 * lofi_storm: the concurrency and teardown race scenarios of the guest
 * tests concurrency-storm.sh and teardown-races.sh.
 *
 *   lofi_storm storm DIR WORKERS SECONDS
 *       WORKERS processes each map, use and unmap their own two images in
 *       DIR for SECONDS, checking every block they wrote through
 *       /dev/lofiN reads back, and is in the backing file after the
 *       unmap; two more processes list and query all the while. Odd
 *       workers map a 1 MiB slice at 64 KiB of a larger image in
 *       4096-byte blocks (li_offset, li_sizelimit, li_block_size): their
 *       blocks must land in the slice, the bytes around it stay zero.
 *   lofi_storm races DIR ROUNDS
 *       ROUNDS rounds of each two-process race: unmap by N vs by N
 *       (one 0, one ENXIO), by name vs by name (0, ENOENT), by name vs by
 *       N, MAP_FILE of one file rw vs rw and rw vs ro (one N, one EBUSY),
 *       MAP_FILE_MINOR of one N with two files (N, EEXIST), and
 *       LOFI_SET_CAPACITY vs an unmap (plain, forced, forced while held
 *       open) of one N: the unmap succeeds, the resize succeeds or gets
 *       ENXIO, and a resize that succeeded left the size it asked for;
 *       and "partscan/unmap": BLKRRPART on a labeled mapping (an MBR of
 *       two partitions) and opens of its /dev/lofiNp1, in a loop, vs an
 *       unmap (plain, forced, forced while p1 is held open): the unmap
 *       succeeds, BLKRRPART is 0 or EBUSY (ENXIO or EIO only once
 *       force-unmapped), the disk and partition nodes are gone after it,
 *       and N can be mapped again.
 *   lofi_storm signals DIR ROUNDS
 *       LOFI_DKIOCSTATE waiters: one interrupted by a caught signal (EINTR, the
 *       device still fine), one killed by SIGKILL, one killed by SIGTERM or
 *       woken by a forced unmap (LOFI_DKIO_DEV_GONE); then the device unmaps
 *       without force (no open leaked) or is removed at the last close.
 *   lofi_storm rmmod-race FILE ROUND
 *       One round of rmmod (delete_module) racing open + MAP_FILE: prints
 *       "map-won" (the map succeeded, rmmod got EAGAIN) or "rmmod-won"
 *       (the module is gone, the map failed to open /dev/lofictl).
 *   lofi_storm close-race DIR ROUNDS
 *       The last close of /dev/lofiN racing its unmap (forced, detach at
 *       last close, plain): the disk goes away, N is free again, the data
 *       written and flushed before is in the backing file.
 *   lofi_storm open-detach DIR ROUNDS
 *       A process opening /dev/lofiN in a loop while N is unmapped
 *       (forced, detach at last close, plain): opens succeed or fail with
 *       ENXIO (ENOENT once the node is gone), none succeeds after one
 *       failed or after a forced or plain unmap returned, every open reads
 *       this round's data; N is then mapped again to the next file.
 *
 * Each prints what went wrong as "FAIL: ..." lines on standard error and a
 * last line "RESULT key=value ..." on standard output; the exit status is
 * 0 if nothing went wrong, 1 otherwise, 2 on a usage error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/lofi.h>

#include "lofi_prog.h"

#define CTL_PATH "/dev/lofictl"
#define BLK 4096
#define MAX_WORKERS 64
#define IMG_SIZE (1024 * 1024)
#define IMG_BLOCKS (IMG_SIZE / BLK)

/* What every process of a run shares. */
struct shared {
	int failures;		/* wrong outcomes, data mismatches */
	int undocumented;	/* errnos the documentation does not give here */
	int printed;		/* FAIL lines printed so far */
	int stop;		/* storm: time is up */
	long long ops;		/* operations completed */
	long long maps, unmaps, queries, ios, ebusy;
	/* races: a generation per round, and the racers' rendezvous */
	int gen, arrived, done;
	int quit;
	struct race_op {
		int cmd, force, ro, retry_ebusy, delay_us;
		unsigned minor;
		uint64_t sizelimit;	/* OP_RESIZE */
		char path[PATH_MAX];
	} op[2];
	struct race_res {
		int ret, err, ebusy;
		unsigned minor;
		/* OP_PARTSCAN: BLKRRPART 0, EBUSY, refused as gone; opens of p1 */
		long scans, scan_busy, scan_gone, part_opens;
	} res[2];
	/* open-detach: the opener's round */
	int od_gen, od_stop, od_mode, od_ready;
	unsigned od_minor;
	uint32_t od_tag;
	double od_unmapped;	/* when the unmap returned, 0 before */
	long od_ok, od_enxio, od_enoent, od_gone_state, od_eio;
};

static struct shared *sh;
static const char *sub = "lofi_storm";

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

static void vreport(int *counter, const char *fmt, va_list ap)
{
	__atomic_add_fetch(counter, 1, __ATOMIC_SEQ_CST);
	if (__atomic_add_fetch(&sh->printed, 1, __ATOMIC_SEQ_CST) > 60)
		return;
	fprintf(stderr, "FAIL: %s: ", sub);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* A wrong outcome. */
__attribute__((format(printf, 1, 2)))
static void bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(&sh->failures, fmt, ap);
	va_end(ap);
}

/* An errno that the documentation does not give for this case. */
__attribute__((format(printf, 1, 2)))
static void undoc(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(&sh->undocumented, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL: %s: ", sub);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void add(long long *c, long long n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

static void op_done(long long *kind)
{
	add(kind, 1);
	add(&sh->ops, 1);
}

/* A small PRNG per process. */
static uint64_t rng_state = 88172645463325252ULL;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

static void seed_rng(uint64_t s)
{
	rng_state = s * 0x9E3779B97F4A7C15ULL + 1;
	rnd();
}

static int futex(int *addr, int op, int val)
{
	return (int)syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

static void spin_us(int us)
{
	double end = now() + us / 1e6;

	while (now() < end)
		;
}

static int ctl(int writable)
{
	int fd;
	double end = now() + 5;

	/* The node may trail insmod a little. */
	while ((fd = open(CTL_PATH, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)) < 0) {
		if (errno != ENOENT || now() > end)
			die("open %s: %s", CTL_PATH, ename(errno));
		msleep(20);
	}
	return fd;
}

static void li_init(struct lofi_ioctl *li, const char *path, unsigned minor)
{
	memset(li, 0, sizeof(*li));
	if (path)
		snprintf(li->li_filename, sizeof(li->li_filename), "%s", path);
	li->li_minor = minor;
}

/* MAP_FILE (minor 0) or MAP_FILE_MINOR with li_flags FLAGS. Returns N, or
 * -1 with errno. */
static int map_file_flags(int fd, const char *path, unsigned minor, int ro, uint32_t flags,
			  struct lofi_ioctl *li)
{
	li_init(li, path, minor);
	li->li_readonly = ro;
	li->li_flags = flags;
	return ioctl(fd, minor ? LOFI_MAP_FILE_MINOR : LOFI_MAP_FILE, li);
}

static int map_file(int fd, const char *path, unsigned minor, int ro, struct lofi_ioctl *li)
{
	return map_file_flags(fd, path, minor, ro, 0, li);
}

/* Unmap N, or PATH if N is 0: 0 or an errno. With RETRY, EBUSY (udev
 * probing a new disk) is retried for up to 10 s, counted in *EBUSY. */
static int unmap_file(int fd, unsigned minor, const char *path, int force, int cleanup, int retry,
		      int *ebusy, unsigned *got)
{
	struct lofi_ioctl li;
	double end = now() + 10;

	for (;;) {
		li_init(&li, minor ? NULL : path, minor);
		li.li_force = force;
		li.li_cleanup = cleanup;
		if (ioctl(fd, minor ? LOFI_UNMAP_FILE_MINOR : LOFI_UNMAP_FILE, &li) == 0) {
			if (got)
				*got = li.li_minor;
			return 0;
		}
		if (errno != EBUSY || !retry || now() > end)
			return errno;
		if (ebusy)
			(*ebusy)++;
		msleep(2);
	}
}

static int get_filename(int fd, unsigned minor, struct lofi_ioctl *li)
{
	li_init(li, NULL, minor);
	return ioctl(fd, LOFI_GET_FILENAME, li) < 0 ? errno : 0;
}

static int get_minor(int fd, const char *path, struct lofi_ioctl *li)
{
	li_init(li, path, 0);
	return ioctl(fd, LOFI_GET_MINOR, li) < 0 ? errno : 0;
}

static unsigned get_maxminor(int fd)
{
	struct lofi_ioctl li;

	li_init(&li, NULL, 0);
	if (ioctl(fd, LOFI_GET_MAXMINOR, &li) < 0)
		die("GET_MAXMINOR: %s", ename(errno));
	return li.li_minor;
}

static int is_blk(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISBLK(st.st_mode);
}

static int wait_node(const char *path, int present, double secs)
{
	double end = now() + secs;

	for (;;) {
		if (is_blk(path) == present)
			return 1;
		if (now() > end)
			return 0;
		msleep(5);
	}
}

static int sys_block_exists(unsigned n)
{
	char p[64];
	struct stat st;

	snprintf(p, sizeof(p), "/sys/block/lofi%u", n);
	return stat(p, &st) == 0;
}

/* Wait until /sys/block/lofiN is gone. */
static int wait_disk_gone(unsigned n, double secs)
{
	double end = now() + secs;

	while (sys_block_exists(n)) {
		if (now() > end)
			return 0;
		msleep(5);
	}
	return 1;
}

static void devpath(char *buf, size_t len, unsigned n)
{
	snprintf(buf, len, LOFI_DEV_FMT, n);
}

/* /dev/lofiNpM, partition M of a labeled mapping N. */
static void partpath(char *buf, size_t len, unsigned n, unsigned m)
{
	snprintf(buf, len, LOFI_PART_FMT, n, m);
}

static void *xalloc_aligned(size_t size)
{
	void *p;

	if (posix_memalign(&p, BLK, size))
		die("out of memory");
	return p;
}

/* An image of IMG_SIZE bytes (SIZE if larger), its first block TAG. */
static void make_image_sized(const char *path, uint32_t tag, off_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	uint32_t block[BLK / 4];
	unsigned i;

	if (fd < 0)
		die("create %s: %s", path, ename(errno));
	if (ftruncate(fd, size > IMG_SIZE ? size : IMG_SIZE) < 0)
		die("truncate %s: %s", path, ename(errno));
	for (i = 0; i < BLK / 4; i++)
		block[i] = tag;
	if (tag && pwrite(fd, block, BLK, 0) != BLK)
		die("write %s: %s", path, ename(errno));
	if (fsync(fd) < 0)
		die("fsync %s: %s", path, ename(errno));
	close(fd);
}

static void make_image(const char *path, uint32_t tag)
{
	make_image_sized(path, tag, IMG_SIZE);
}

/* The first word of a file (the tag written by make_image). */
static uint32_t file_tag(const char *path)
{
	uint32_t t = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || pread(fd, &t, sizeof(t), 0) != (ssize_t)sizeof(t))
		die("read %s: %s", path, ename(errno));
	close(fd);
	return t;
}

/* Fill a block from SEED, or check it: the number of wrong words. */
static void fill_block(uint32_t *b, uint32_t seed)
{
	unsigned i;

	for (i = 0; i < BLK / 4; i++)
		b[i] = seed ? seed * 2654435761u + i : 0;
}

static int check_block(const uint32_t *b, uint32_t seed)
{
	unsigned i;

	for (i = 0; i < BLK / 4; i++)
		if (b[i] != (seed ? seed * 2654435761u + i : 0))
			return 1;
	return 0;
}

static pid_t xfork(void)
{
	pid_t p;

	fflush(NULL);
	p = fork();
	if (p < 0)
		die("fork: %s", ename(errno));
	return p;
}

/* waitpid with a deadline: 1 and *STATUS if PID ended, 0 on timeout. */
static int wait_child(pid_t pid, int *status, double secs)
{
	double end = now() + secs;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			die("waitpid %d: %s", (int)pid, ename(errno));
		if (now() > end)
			return 0;
		msleep(5);
	}
}

static void reap(pid_t pid, const char *what)
{
	int status;

	if (!wait_child(pid, &status, 30)) {
		bad("%s (pid %d) did not end within 30 s: killed", what, (int)pid);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		bad("%s (pid %d) ended with status 0x%x", what, (int)pid, status);
}

static void print_totals(void)
{
	printf("RESULT failures=%d undocumented=%d ops=%lld maps=%lld unmaps=%lld queries=%lld ios=%lld ebusy-retries=%lld",
	       sh->failures, sh->undocumented, sh->ops, sh->maps, sh->unmaps, sh->queries, sh->ios, sh->ebusy);
}

static int finish(const char *extra)
{
	print_totals();
	printf("%s\n", extra ? extra : "");
	return sh->failures || sh->undocumented ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* storm                                                              */

static void img_name(char *buf, size_t len, const char *dir, int w, int k)
{
	snprintf(buf, len, "%s/storm-w%d-%d.img", dir, w, k);
}

/* Where a slice worker's device is in its image, and the image's size. */
#define SLICE_OFFSET (64 * 1024)
#define SLICE_IMAGE_SIZE (SLICE_OFFSET + IMG_SIZE + 64 * 1024)

/* Whether LEN bytes at P are all zero. */
static int all_zero(const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (c[i])
			return 0;
	return 1;
}

static void storm_worker(const char *dir, int w)
{
	static uint32_t expect[2][IMG_BLOCKS];
	char path[2][PATH_MAX], dev[64];
	uint32_t *buf = xalloc_aligned(SLICE_IMAGE_SIZE);
	struct lofi_ioctl li;
	int fd = ctl(1), k, iter = 0, slice = w % 2;
	off_t off = slice ? SLICE_OFFSET : 0;

	seed_rng((uint64_t)getpid() * 7 + (uint64_t)w);
	for (k = 0; k < 2; k++) {
		img_name(path[k], sizeof(path[k]), dir, w, k);
		make_image_sized(path[k], 0, slice ? SLICE_IMAGE_SIZE : IMG_SIZE);
		memset(expect[k], 0, sizeof(expect[k]));
	}
	while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) {
		unsigned blocks[4], n;
		int r, dfd, j, by_name, ebusy = 0, ffd;
		double end;

		k = iter % 2;
		by_name = (iter / 2) % 2;
		iter++;
		li_init(&li, path[k], 0);
		if (slice) {
			li.li_offset = SLICE_OFFSET;
			li.li_sizelimit = IMG_SIZE;
			li.li_block_size = BLK;
		}
		if (ioctl(fd, LOFI_MAP_FILE, &li) < 0) {
			undoc("worker %d: MAP_FILE %s: %s", w, path[k], ename(errno));
			msleep(100);
			continue;
		}
		op_done(&sh->maps);
		n = li.li_minor;
		devpath(dev, sizeof(dev), n);
		if (strcmp(li.li_devpath, dev) != 0)
			bad("worker %d: MAP_FILE returned N=%u with li_devpath '%s'", w, n, li.li_devpath);
		if (!wait_node(dev, 1, 10))
			bad("worker %d: %s did not appear within 10 s", w, dev);
		end = now() + 5;
		while ((dfd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC)) < 0 && errno == ENOENT && now() < end)
			msleep(10);
		if (dfd < 0) {
			undoc("worker %d: open %s: %s", w, dev, ename(errno));
		} else {
			for (j = 0; j < 4; j++) {
				uint32_t seed = rnd() | 1;

				blocks[j] = rnd() % IMG_BLOCKS;
				fill_block(buf, seed);
				if (pwrite(dfd, buf, BLK, (off_t)blocks[j] * BLK) != BLK)
					undoc("worker %d: write %s block %u: %s", w, dev, blocks[j], ename(errno));
				else
					expect[k][blocks[j]] = seed;
				op_done(&sh->ios);
			}
			if (fdatasync(dfd) < 0)
				undoc("worker %d: fdatasync %s: %s", w, dev, ename(errno));
			op_done(&sh->ios);
			for (j = 0; j < 4; j++) {
				if (pread(dfd, buf, BLK, (off_t)blocks[j] * BLK) != BLK)
					undoc("worker %d: read %s block %u: %s", w, dev, blocks[j], ename(errno));
				else if (check_block(buf, expect[k][blocks[j]]))
					bad("worker %d: %s block %u does not read back what was written", w, dev,
					    blocks[j]);
				op_done(&sh->ios);
			}
			close(dfd);
		}
		/* Our own mapping, seen by the queries. */
		r = get_minor(fd, path[k], &li);
		if (r)
			undoc("worker %d: GET_MINOR %s while mapped: %s", w, path[k], ename(r));
		else if (li.li_minor != n || strcmp(li.li_devpath, dev) != 0 || li.li_offset != (uint64_t)off ||
			 li.li_sizelimit != (slice ? IMG_SIZE : 0) || li.li_block_size != (slice ? BLK : 512))
			bad("worker %d: GET_MINOR %s: N=%u %s offset %llu sizelimit %llu block size %u, want %u", w,
			    path[k], li.li_minor, li.li_devpath, (unsigned long long)li.li_offset,
			    (unsigned long long)li.li_sizelimit, li.li_block_size, n);
		op_done(&sh->queries);
		r = get_filename(fd, n, &li);
		if (r)
			undoc("worker %d: GET_FILENAME %u while mapped: %s", w, n, ename(r));
		else if (strcmp(li.li_filename, path[k]) != 0 || li.li_readonly)
			bad("worker %d: GET_FILENAME %u: '%s' ro=%u, want '%s' rw", w, n, li.li_filename,
			    li.li_readonly, path[k]);
		op_done(&sh->queries);
		/* Plain unmap, by name or by N; EBUSY while udev probes. */
		r = unmap_file(fd, by_name ? 0 : n, path[k], 0, 0, 1, &ebusy, NULL);
		add(&sh->ebusy, ebusy);
		if (r)
			undoc("worker %d: unmap %s (%s): %s%s", w, by_name ? path[k] : dev,
			      by_name ? "by name" : "by N", ename(r), r == EBUSY ? " for 10 s" : "");
		else
			op_done(&sh->unmaps);
		r = get_minor(fd, path[k], &li);
		if (r == 0)
			bad("worker %d: GET_MINOR %s after its unmap found N=%u", w, path[k], li.li_minor);
		else if (r != ENOENT)
			undoc("worker %d: GET_MINOR %s after its unmap: %s, want ENOENT", w, path[k], ename(r));
		op_done(&sh->queries);
		/* Everything written so far is in the backing file, in the slice. */
		ffd = open(path[k], O_RDONLY | O_CLOEXEC);
		if (ffd < 0 || pread(ffd, buf, slice ? SLICE_IMAGE_SIZE : IMG_SIZE, 0) !=
				       (slice ? SLICE_IMAGE_SIZE : IMG_SIZE)) {
			bad("worker %d: reading back %s: %s", w, path[k], ename(errno));
		} else {
			uint32_t *data = buf + off / 4;

			for (j = 0; j < IMG_BLOCKS; j++)
				if (check_block(data + j * (BLK / 4), expect[k][j]))
					bad("worker %d: block %d of %s is not what was written through %s", w, j,
					    path[k], dev);
			if (slice && (!all_zero(buf, SLICE_OFFSET) ||
				      !all_zero(data + IMG_SIZE / 4, SLICE_IMAGE_SIZE - SLICE_OFFSET - IMG_SIZE)))
				bad("worker %d: %s changed outside the slice mapped at %d", w, path[k], SLICE_OFFSET);
		}
		if (ffd >= 0)
			close(ffd);
	}
	exit(0);
}

static void storm_querier(const char *dir, int workers, int q)
{
	struct lofi_ioctl li;
	char prefix[PATH_MAX], path[PATH_MAX], dev[64];
	int fd = ctl(0);
	unsigned max = get_maxminor(fd), n;

	seed_rng((uint64_t)getpid() + 1000u * (unsigned)q);
	snprintf(prefix, sizeof(prefix), "%s/storm-w", dir);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) {
		int r;

		/* A listing, as lofiadm makes it. */
		if (get_maxminor(fd) != max)
			bad("querier %d: GET_MAXMINOR changed", q);
		op_done(&sh->queries);
		for (n = 1; n <= max; n++) {
			r = get_filename(fd, n, &li);
			op_done(&sh->queries);
			if (r == ENXIO)
				continue;
			if (r) {
				undoc("querier %d: GET_FILENAME %u: %s", q, n, ename(r));
				continue;
			}
			devpath(dev, sizeof(dev), n);
			if (strcmp(li.li_devpath, dev) != 0 ||
			    strncmp(li.li_filename, prefix, strlen(prefix)) != 0 || li.li_readonly)
				bad("querier %d: GET_FILENAME %u: '%s' '%s' ro=%u", q, n, li.li_filename,
				    li.li_devpath, li.li_readonly);
		}
		/* Lookups of the workers' files, mapped or not. */
		for (n = 0; n < 8; n++) {
			img_name(path, sizeof(path), dir, (int)(rnd() % (unsigned)workers), (int)(rnd() % 2));
			r = get_minor(fd, path, &li);
			op_done(&sh->queries);
			if (r == ENOENT)
				continue;
			if (r) {
				undoc("querier %d: GET_MINOR %s: %s", q, path, ename(r));
				continue;
			}
			devpath(dev, sizeof(dev), li.li_minor);
			if (li.li_minor < 1 || li.li_minor > max || strcmp(li.li_devpath, dev) != 0)
				bad("querier %d: GET_MINOR %s: N=%u '%s'", q, path, li.li_minor, li.li_devpath);
		}
		/* A write command on a read-only control file: EPERM. */
		if (map_file(fd, path, 0, 0, &li) >= 0)
			bad("querier %d: MAP_FILE on a read-only /dev/lofictl succeeded", q);
		else if (errno != EPERM)
			undoc("querier %d: MAP_FILE on a read-only /dev/lofictl: %s, want EPERM", q, ename(errno));
		op_done(&sh->queries);
	}
	exit(0);
}

static int cmd_storm(const char *dir, int workers, double secs)
{
	pid_t pids[MAX_WORKERS + 2];
	int i, nq = 2;
	double t0 = now();
	char extra[128];

	for (i = 0; i < workers; i++) {
		pids[i] = xfork();
		if (pids[i] == 0)
			storm_worker(dir, i);
	}
	for (i = 0; i < nq; i++) {
		pids[workers + i] = xfork();
		if (pids[workers + i] == 0)
			storm_querier(dir, workers, i);
	}
	while (now() - t0 < secs)
		msleep(200);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < workers + nq; i++)
		reap(pids[i], i < workers ? "a storm worker" : "a storm querier");
	snprintf(extra, sizeof(extra), " workers=%d queriers=%d seconds=%.0f", workers, nq, now() - t0);
	return finish(extra);
}

/* ------------------------------------------------------------------ */
/* races                                                              */

enum { OP_MAP, OP_UNMAP_N, OP_UNMAP_NAME, OP_RESIZE, OP_PARTSCAN };

/* How long the partition scanner of "partscan/unmap" goes on at most: the
 * plain unmap it races waits for it (EBUSY, retried). */
#define PARTSCAN_SECS 0.1

/*
 * The partition scanner of "partscan/unmap", on the labeled mapping
 * op->minor (op->path is /dev/lofiN, op->force says whether the unmap it
 * races is forced): until an open of /dev/lofiN fails or PARTSCAN_SECS
 * have passed, open /dev/lofiN, BLKRRPART on it, open and close
 * /dev/lofiNp1 while the disk is still open, close the disk.
 *
 * While the mapping stands, BLKRRPART is 0 or EBUSY (a partition is open:
 * udev probing the partitions a scan made, or the round holding p1), and
 * p1 opens: its node is made again before BLKRRPART returns. A plain
 * unmap cannot win while the disk is open (EBUSY), so only a forced one
 * is seen with the disk open: BLKRRPART is then EBUSY (a partition open),
 * ENXIO (the scan's own open of the disk is refused) or EIO (the unmap
 * came during the scan, which could not read the table; the partitions
 * are dropped), and p1 fails to open with ENXIO, or ENOENT after such a
 * failed scan. An open of /dev/lofiN that fails ends the loop: ENXIO (no
 * mapping any more) or ENOENT (the node is gone).
 */
static void partscan_loop(const struct race_op *op, struct race_res *res)
{
	const char *mode = op->force ? "forced" : "plain";
	double end = now() + PARTSCAN_SECS;
	char p1[64];

	partpath(p1, sizeof(p1), op->minor, 1);
	while (now() < end) {
		int dfd = open(op->path, O_RDONLY | O_CLOEXEC), pfd, r, e;

		if (dfd < 0) {
			if (errno != ENXIO && errno != ENOENT)
				undoc("partscan/unmap (%s): open %s: %s, want success, or ENXIO or ENOENT once unmapped",
				      mode, op->path, ename(errno));
			break;
		}
		r = ioctl(dfd, BLKRRPART, 0);
		e = errno;
		if (r == 0)
			res->scans++;
		else if (e == EBUSY)
			res->scan_busy++;
		else if (op->force && (e == ENXIO || e == EIO))
			res->scan_gone++;
		else
			undoc("partscan/unmap (%s): BLKRRPART on the open %s: %s, want 0 or EBUSY%s", mode,
			      op->path, ename(e), op->force ? " (ENXIO or EIO once force-unmapped)" : "");
		pfd = open(p1, O_RDONLY | O_CLOEXEC);
		if (pfd >= 0) {
			res->part_opens++;
			close(pfd);
		} else if (!op->force || (errno != ENXIO && errno != ENOENT)) {
			undoc("partscan/unmap (%s): open %s with the disk open: %s, want success%s", mode, p1,
			      ename(errno), op->force ? " (ENXIO or ENOENT once force-unmapped)" : "");
		}
		close(dfd);
	}
}

static void racer(int me)
{
	int fd = ctl(1), seen = 0;

	for (;;) {
		struct race_op *op = &sh->op[me];
		struct race_res *res = &sh->res[me];
		struct lofi_ioctl li;
		int g;

		while ((g = __atomic_load_n(&sh->gen, __ATOMIC_SEQ_CST)) == seen)
			futex(&sh->gen, FUTEX_WAIT, seen);
		seen = g;
		if (__atomic_load_n(&sh->quit, __ATOMIC_SEQ_CST))
			exit(0);
		/* Both start together. */
		__atomic_add_fetch(&sh->arrived, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&sh->arrived, __ATOMIC_SEQ_CST) < 2)
			;
		if (op->delay_us)
			spin_us(op->delay_us);
		memset(res, 0, sizeof(*res));
		switch (op->cmd) {
		case OP_MAP:
			res->ret = map_file(fd, op->path, op->minor, op->ro, &li);
			res->err = res->ret < 0 ? errno : 0;
			res->minor = li.li_minor;
			break;
		case OP_RESIZE:
			li_init(&li, NULL, op->minor);
			li.li_sizelimit = op->sizelimit;
			res->ret = ioctl(fd, LOFI_SET_CAPACITY, &li);
			res->err = res->ret < 0 ? errno : 0;
			res->minor = li.li_minor;
			break;
		case OP_PARTSCAN:
			partscan_loop(op, res);
			break;
		default:
			res->err = unmap_file(fd, op->cmd == OP_UNMAP_N ? op->minor : 0, op->path, op->force, 0,
					      op->retry_ebusy, &res->ebusy, &res->minor);
			res->ret = res->err ? -1 : 0;
			break;
		}
		__atomic_add_fetch(&sh->done, 1, __ATOMIC_SEQ_CST);
		futex(&sh->done, FUTEX_WAKE, 1);
	}
}

/* Run the two racers' ops once. */
static void race_once(void)
{
	int d;

	sh->arrived = 0;
	sh->done = 0;
	/* Random jitter on one side in half the rounds. */
	sh->op[0].delay_us = 0;
	sh->op[1].delay_us = 0;
	if (rnd() % 2)
		sh->op[rnd() % 2].delay_us = (int)(rnd() % 1500);
	__atomic_add_fetch(&sh->gen, 1, __ATOMIC_SEQ_CST);
	futex(&sh->gen, FUTEX_WAKE, 2);
	while ((d = __atomic_load_n(&sh->done, __ATOMIC_SEQ_CST)) < 2)
		futex(&sh->done, FUTEX_WAIT, d);
	add(&sh->ebusy, sh->res[0].ebusy + sh->res[1].ebusy);
	add(&sh->ops, 2);
}

static const char *race_names[] = {
	"unmap-N/unmap-N", "unmap-name/unmap-name", "unmap-name/unmap-N",
	"map-rw/map-rw", "map-rw/map-ro", "map-minor/map-minor", "resize/unmap-N",
	"partscan/unmap",
};

#define NR_RACES (sizeof(race_names) / sizeof(race_names[0]))

static void set_op(int i, int cmd, unsigned minor, const char *path, int force, int ro)
{
	struct race_op *op = &sh->op[i];

	op->cmd = cmd;
	op->minor = minor;
	op->force = force;
	op->ro = ro;
	op->retry_ebusy = !force;
	snprintf(op->path, sizeof(op->path), "%s", path);
}

/*
 * The variant of round I of the unmap races: plain (EBUSY retried),
 * forced, or forced while NODE (the device, or a partition of it) is held
 * open. Sets *FORCE; returns the descriptor held open, or -1.
 */
static int race_variant(int i, const char *node, int *force)
{
	int hold;

	*force = i % 3 != 0;
	if (i % 3 != 2)
		return -1;
	if (!wait_node(node, 1, 10))
		die("%s did not appear", node);
	hold = open(node, O_RDONLY | O_CLOEXEC);
	if (hold < 0)
		die("open %s: %s", node, ename(errno));
	return hold;
}

/* Map PATH as N with li_flags FLAGS, waiting (EEXIST) up to 10 s for an
 * earlier N to go. */
static void map_as_flags(int fd, const char *path, unsigned n, uint32_t flags, const char *what)
{
	struct lofi_ioctl li;
	double end = now() + 10;

	while (map_file_flags(fd, path, n, 0, flags, &li) < 0) {
		if (errno != EEXIST)
			die("%s: MAP_FILE_MINOR %u %s: %s", what, n, path, ename(errno));
		if (now() > end)
			die("%s: N=%u is still in use 10 s after its unmap and last close (EEXIST)", what, n);
		msleep(5);
	}
	op_done(&sh->maps);
}

/* Remove every mapping of PATH (after a map race). */
static void unmap_all_of(int fd, const char *path)
{
	struct lofi_ioctl li;
	int r, ebusy = 0;

	while ((r = get_minor(fd, path, &li)) == 0) {
		r = unmap_file(fd, li.li_minor, NULL, 0, 0, 1, &ebusy, NULL);
		if (r)
			die("cleanup: unmap %u: %s", li.li_minor, ename(r));
		op_done(&sh->unmaps);
	}
	add(&sh->ebusy, ebusy);
	if (r != ENOENT)
		undoc("GET_MINOR %s: %s", path, ename(r));
}

/* Mappings of PATH in the listing. */
static int count_mappings(int fd, const char *path)
{
	struct lofi_ioctl li;
	unsigned max = get_maxminor(fd), n;
	int c = 0;

	for (n = 1; n <= max; n++)
		if (get_filename(fd, n, &li) == 0 && strcmp(li.li_filename, path) == 0)
			c++;
	return c;
}

/*
 * An image of IMG_SIZE bytes with an MBR of two partitions: p1 from 32 KiB
 * to 512 KiB, p2 from there to the end.
 */
static void make_labeled_image(const char *path)
{
	static const struct lofi_mbr_part parts[] = {
		{ 64, 1024 - 64 },
		{ 1024, IMG_SIZE / 512 - 1024 },
	};
	unsigned char mbr[512];
	int fd;

	make_image(path, 0);
	lofi_mbr(mbr, parts, 2);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || pwrite(fd, mbr, sizeof(mbr), 0) != (ssize_t)sizeof(mbr) || fsync(fd) < 0)
		die("write the MBR of %s: %s", path, ename(errno));
	close(fd);
}

static int cmd_races(const char *dir, int rounds)
{
	char a[PATH_MAX], b[PATH_MAX], lab[PATH_MAX], dev[64], p1[64], extra[768];
	int fd, i, wins[2] = { 0, 0 };
	long counts[NR_RACES] = { 0 }, scans = 0, scan_busy = 0, scan_gone = 0, part_opens = 0;
	pid_t pids[2];
	unsigned t, minor_target;

	snprintf(a, sizeof(a), "%s/race-a.img", dir);
	snprintf(b, sizeof(b), "%s/race-b.img", dir);
	snprintf(lab, sizeof(lab), "%s/race-labeled.img", dir);
	make_image(a, 0);
	make_image(b, 0);
	make_labeled_image(lab);
	seed_rng((uint64_t)getpid());
	for (i = 0; i < 2; i++) {
		pids[i] = xfork();
		if (pids[i] == 0)
			racer(i);
	}
	fd = ctl(1);
	minor_target = get_maxminor(fd);
	for (t = 0; t < NR_RACES; t++) {
		double t0 = now();

		for (i = 0; i < rounds; i++) {
			struct race_res *r = sh->res;
			struct lofi_ioctl li;
			int hold = -1, force = 0, win, lose, rr, nmap;
			uint64_t dsize = 0;
			unsigned n = 0;

			if (t == 7) {
				/* BLKRRPART and opens of a partition (partscan_loop)
				 * racing an unmap of a labeled mapping: plain (EBUSY
				 * retried), forced, forced while p1 is held open. */
				int ebusy = 0;

				if (map_file_flags(fd, lab, 0, 0, LOFI_FLAG_LABELED, &li) < 0)
					die("%s round %d: labeled MAP_FILE %s: %s", race_names[t], i, lab, ename(errno));
				op_done(&sh->maps);
				n = li.li_minor;
				devpath(dev, sizeof(dev), n);
				partpath(p1, sizeof(p1), n, 1);
				if (!(li.li_flags & LOFI_FLAG_LABELED))
					bad("%s round %d: the labeled MAP_FILE returned li_flags %#x", race_names[t], i,
					    li.li_flags);
				if (!wait_node(p1, 1, 10))
					die("%s round %d: %s did not appear", race_names[t], i, p1);
				hold = race_variant(i, p1, &force);
				set_op(0, OP_PARTSCAN, n, dev, force, 0);
				set_op(1, OP_UNMAP_N, n, lab, force, 0);
				race_once();
				scans += r[0].scans;
				scan_busy += r[0].scan_busy;
				scan_gone += r[0].scan_gone;
				part_opens += r[0].part_opens;
				add(&sh->ops, r[0].scans + r[0].scan_busy + r[0].scan_gone + r[0].part_opens);
				if (r[1].err) {
					bad("%s round %d (%s): the unmap of N=%u failed: %s", race_names[t], i,
					    force ? "forced" : "plain", n, ename(r[1].err));
				} else {
					op_done(&sh->unmaps);
					wins[1]++;
				}
				if (hold >= 0)
					close(hold);
				if (r[1].err)
					unmap_all_of(fd, lab);
				/* Gone, with every node; N can be mapped again. */
				if (!wait_disk_gone(n, 10))
					bad("%s round %d: /sys/block/lofi%u still exists 10 s after the unmap",
					    race_names[t], i, n);
				if (!wait_node(dev, 0, 10) || !wait_node(p1, 0, 10))
					bad("%s round %d: %s or %s still exists 10 s after the unmap", race_names[t], i,
					    dev, p1);
				rr = get_filename(fd, n, &li);
				if (rr != ENXIO)
					bad("%s round %d: GET_FILENAME %u after the unmap: %s, want ENXIO",
					    race_names[t], i, n, rr ? ename(rr) : "success");
				map_as_flags(fd, lab, n, LOFI_FLAG_LABELED, race_names[t]);
				if (!wait_node(p1, 1, 10))
					bad("%s round %d: %s did not appear when N=%u was mapped again", race_names[t],
					    i, p1, n);
				rr = unmap_file(fd, n, NULL, 0, 0, 1, &ebusy, NULL);
				add(&sh->ebusy, ebusy);
				if (rr)
					bad("%s round %d: plain unmap of N=%u mapped again: %s", race_names[t], i, n,
					    ename(rr));
				else
					op_done(&sh->unmaps);
				if (!wait_disk_gone(n, 10) || !wait_node(p1, 0, 10))
					bad("%s round %d: N=%u mapped again is still there 10 s after its unmap",
					    race_names[t], i, n);
			} else if (t == 6) {
				/* A resize of N racing its unmap: plain (EBUSY
				 * retried), forced, forced while held open. */
				uint64_t limit = i % 2 ? IMG_SIZE / 2 : 0;

				if (map_file(fd, a, 0, 0, &li) < 0)
					die("%s round %d: MAP_FILE %s: %s", race_names[t], i, a, ename(errno));
				op_done(&sh->maps);
				n = li.li_minor;
				devpath(dev, sizeof(dev), n);
				hold = race_variant(i, dev, &force);
				set_op(0, OP_RESIZE, n, a, 0, 0);
				sh->op[0].sizelimit = limit;
				set_op(1, OP_UNMAP_N, n, a, force, 0);
				race_once();
				if (r[1].err)
					bad("%s round %d (%s): the unmap of N=%u failed: %s", race_names[t], i,
					    force ? "forced" : "plain", n, ename(r[1].err));
				else
					op_done(&sh->unmaps);
				if (r[0].err == 0) {
					wins[0]++;
					if (hold >= 0 && ioctl(hold, BLKGETSIZE64, &dsize) == 0 &&
					    dsize != (limit ? limit : (uint64_t)IMG_SIZE))
						bad("%s round %d: the resized N=%u has %llu bytes, want %llu",
						    race_names[t], i, n, (unsigned long long)dsize,
						    (unsigned long long)(limit ? limit : (uint64_t)IMG_SIZE));
				} else if (r[0].err == ENXIO) {
					wins[1]++;
				} else {
					undoc("%s round %d: SET_CAPACITY of N=%u racing its unmap got %s, want 0 or ENXIO",
					      race_names[t], i, n, ename(r[0].err));
				}
				rr = get_filename(fd, n, &li);
				if (rr != ENXIO)
					bad("%s round %d: GET_FILENAME %u after the unmap: %s, want ENXIO",
					    race_names[t], i, n, rr ? ename(rr) : "success");
				li_init(&li, NULL, n);
				if (ioctl(fd, LOFI_SET_CAPACITY, &li) == 0 || errno != ENXIO)
					bad("%s round %d: SET_CAPACITY %u after the unmap: %s, want ENXIO",
					    race_names[t], i, n, ename(errno));
				if (hold >= 0)
					close(hold);
				if (r[1].err)
					unmap_all_of(fd, a);
			} else if (t <= 2) {
				/* Map a, then race two unmaps of it. Variants: plain
				 * (EBUSY retried), forced, forced while held open. */
				rr = map_file(fd, a, 0, 0, &li);
				if (rr < 0 && errno == EBUSY) {
					/* Not mapped any more (checked before): EBUSY is
					 * wrong. Wait for it to pass, to go on. */
					double end = now() + 10;

					undoc("%s round %d: MAP_FILE of the unmapped %s: EBUSY", race_names[t], i, a);
					while ((rr = map_file(fd, a, 0, 0, &li)) < 0 && errno == EBUSY && now() < end)
						msleep(5);
				}
				if (rr < 0)
					die("%s round %d: MAP_FILE %s: %s", race_names[t], i, a, ename(errno));
				op_done(&sh->maps);
				n = li.li_minor;
				devpath(dev, sizeof(dev), n);
				hold = race_variant(i, dev, &force);
				set_op(0, t == 0 ? OP_UNMAP_N : OP_UNMAP_NAME, n, a, force, 0);
				set_op(1, t == 1 ? OP_UNMAP_NAME : OP_UNMAP_N, n, a, force, 0);
				race_once();
				win = r[0].err == 0 ? 0 : 1;
				lose = 1 - win;
				if (r[0].err == 0 && r[1].err == 0) {
					bad("%s round %d (%s): both unmaps of N=%u succeeded", race_names[t], i,
					    force ? "forced" : "plain", n);
				} else if (r[win].err != 0) {
					bad("%s round %d (%s): neither unmap of N=%u succeeded: %s, %s", race_names[t],
					    i, force ? "forced" : "plain", n, ename(r[0].err), ename(r[1].err));
				} else {
					int want = sh->op[lose].cmd == OP_UNMAP_N ? ENXIO : ENOENT;

					op_done(&sh->unmaps);
					wins[win]++;
					if (r[lose].err != want)
						undoc("%s round %d (%s): the losing unmap (%s) of N=%u got %s, want %s",
						      race_names[t], i, force ? "forced" : "plain",
						      sh->op[lose].cmd == OP_UNMAP_N ? "by N" : "by name", n,
						      ename(r[lose].err), ename(want));
					if (r[win].minor != n)
						bad("%s round %d: the winning unmap returned li_minor=%u, want %u",
						    race_names[t], i, r[win].minor, n);
				}
				rr = get_filename(fd, n, &li);
				if (rr != ENXIO)
					bad("%s round %d: GET_FILENAME %u after the unmap: %s, want ENXIO",
					    race_names[t], i, n, rr ? ename(rr) : "success");
				rr = get_minor(fd, a, &li);
				if (rr != ENOENT)
					bad("%s round %d: GET_MINOR of the unmapped file: %s, want ENOENT",
					    race_names[t], i, rr ? ename(rr) : "success");
				if (hold >= 0) {
					/* Closed: gone for good, not listed again while it
					 * is being removed. */
					close(hold);
					rr = get_filename(fd, n, &li);
					if (rr != ENXIO)
						bad("%s round %d: GET_FILENAME %u right after the last close of the force-unmapped device: %s, want ENXIO",
						    race_names[t], i, n, rr ? ename(rr) : "success");
				}
				if (r[0].err && r[1].err)
					unmap_all_of(fd, a);
			} else {
				int want = t == 5 ? EEXIST : EBUSY, ok = 0;

				if (t == 5) {
					set_op(0, OP_MAP, minor_target, a, 0, 0);
					set_op(1, OP_MAP, minor_target, b, 0, 0);
				} else {
					set_op(0, OP_MAP, 0, a, 0, t == 4 && i % 2);
					set_op(1, OP_MAP, 0, a, 0, t == 4 && !(i % 2));
				}
				race_once();
				ok = (r[0].ret > 0) + (r[1].ret > 0);
				add(&sh->maps, ok);
				if (ok == 2) {
					bad("%s round %d: both maps succeeded: N=%d and N=%d", race_names[t], i,
					    r[0].ret, r[1].ret);
				} else if (ok == 0) {
					bad("%s round %d: neither map succeeded: %s, %s", race_names[t], i,
					    ename(r[0].err), ename(r[1].err));
				} else {
					win = r[0].ret > 0 ? 0 : 1;
					lose = 1 - win;
					wins[win]++;
					if (r[lose].err != want)
						undoc("%s round %d: the losing map got %s, want %s", race_names[t], i,
						      ename(r[lose].err), ename(want));
					if (t == 5 && r[win].ret != (int)minor_target)
						bad("%s round %d: MAP_FILE_MINOR %u returned %d", race_names[t], i,
						    minor_target, r[win].ret);
				}
				nmap = count_mappings(fd, a) + (t == 5 ? count_mappings(fd, b) : 0);
				if (nmap != ok)
					bad("%s round %d: %d mappings listed after %d successful maps", race_names[t],
					    i, nmap, ok);
				unmap_all_of(fd, a);
				if (t == 5)
					unmap_all_of(fd, b);
			}
			counts[t]++;
		}
		printf("%s: %d rounds in %.1f s\n", race_names[t], rounds, now() - t0);
		fflush(stdout);
	}
	__atomic_store_n(&sh->quit, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&sh->gen, 1, __ATOMIC_SEQ_CST);
	futex(&sh->gen, FUTEX_WAKE, 2);
	for (i = 0; i < 2; i++)
		reap(pids[i], "a racer");
	snprintf(extra, sizeof(extra),
		 " races=%ld rounds-per-race=%d first-racer-won=%d second-racer-won=%d partscans=%ld partscan-ebusy=%ld partscan-gone=%ld partition-opens=%ld",
		 (long)(rounds * (int)NR_RACES), rounds, wins[0], wins[1], scans, scan_busy, scan_gone, part_opens);
	return finish(extra);
}

/* ------------------------------------------------------------------ */
/* signals                                                            */

static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
	caught = sig;
}

/* Is PID asleep in ioctl()? */
static int in_ioctl(pid_t pid)
{
	char p[64], buf[256], *s;
	long nr;
	int fd;
	ssize_t len;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return 0;
	buf[len] = 0;
	s = strrchr(buf, ')');
	if (!s || s[1] != ' ' || s[2] != 'S')
		return 0;
	snprintf(p, sizeof(p), "/proc/%d/syscall", (int)pid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return 0;
	buf[len] = 0;
	nr = strtol(buf, NULL, 10);
	return nr == SYS_ioctl;
}

struct waiter_report {
	int ret, err, state, caught, fine;
};

enum { W_CAUGHT, W_SIGKILL, W_SIGTERM, W_GONE };

/* A LOFI_DKIOCSTATE waiter: reports on fd OUT. */
static void waiter(const char *dev, int role, uint32_t tag, int out)
{
	struct waiter_report rep = { 0 };
	uint32_t state = LOFI_DKIO_NONE;
	uint32_t *buf = xalloc_aligned(BLK);
	int fd;

	if (role == W_CAUGHT) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;	/* no SA_RESTART */
		sigaction(SIGUSR1, &sa, NULL);
	}
	fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		die("waiter: open %s: %s", dev, ename(errno));
	if (ioctl(fd, LOFI_DKIOCSTATE, &state) < 0 || state != LOFI_DKIO_INSERTED)
		die("waiter: LOFI_DKIOCSTATE(LOFI_DKIO_NONE) on %s: %s, state %u", dev, ename(errno), state);
	if (write(out, "R", 1) != 1)
		die("waiter: write: %s", ename(errno));
	/* Blocks until the state differs from LOFI_DKIO_INSERTED. */
	rep.ret = ioctl(fd, LOFI_DKIOCSTATE, &state);
	rep.err = rep.ret < 0 ? errno : 0;
	rep.state = (int)state;
	rep.caught = caught;
	if (role == W_CAUGHT) {
		/* The device is still fine. */
		state = LOFI_DKIO_NONE;
		rep.fine = ioctl(fd, LOFI_DKIOCSTATE, &state) == 0 && state == LOFI_DKIO_INSERTED &&
			   pread(fd, buf, BLK, 0) == BLK && buf[0] == tag && buf[BLK / 4 - 1] == tag;
	}
	if (write(out, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
		die("waiter: write: %s", ename(errno));
	close(fd);
	exit(0);
}

/* Read exactly LEN bytes from FD within SECS: 1, or 0 on EOF or timeout. */
static int read_within(int fd, void *buf, size_t len, double secs)
{
	double end = now() + secs;
	size_t got = 0;

	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		int left = (int)((end - now()) * 1000);
		ssize_t r;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return 0;
		r = read(fd, (char *)buf + got, len - got);
		if (r <= 0)
			return 0;
		got += (size_t)r;
	}
	return 1;
}

static int cmd_signals(const char *dir, int rounds)
{
	char img[PATH_MAX], dev[64], extra[256];
	uint32_t *buf = xalloc_aligned(BLK);
	int fd = ctl(1), i, eintr = 0, killed = 0, gone = 0;

	snprintf(img, sizeof(img), "%s/signals.img", dir);
	for (i = 0; i < rounds; i++) {
		int roles[3] = { W_CAUGHT, W_SIGKILL, i % 2 ? W_GONE : W_SIGTERM };
		int pipes[3][2], j, status, r, ebusy = 0;
		uint32_t tag = 0x51600000u + (uint32_t)i;
		struct waiter_report rep;
		struct lofi_ioctl li;
		pid_t pids[3];
		unsigned n;
		double end;
		char c;

		make_image(img, tag);
		if (map_file(fd, img, 0, 0, &li) < 0)
			die("round %d: MAP_FILE %s: %s", i, img, ename(errno));
		op_done(&sh->maps);
		n = li.li_minor;
		devpath(dev, sizeof(dev), n);
		if (!wait_node(dev, 1, 10))
			die("round %d: %s did not appear", i, dev);
		for (j = 0; j < 3; j++) {
			if (pipe2(pipes[j], O_CLOEXEC) < 0)
				die("pipe: %s", ename(errno));
			pids[j] = xfork();
			if (pids[j] == 0) {
				close(pipes[j][0]);
				waiter(dev, roles[j], tag, pipes[j][1]);
			}
			close(pipes[j][1]);
		}
		for (j = 0; j < 3; j++) {
			if (!read_within(pipes[j][0], &c, 1, 20))
				die("round %d: waiter %d did not start", i, j);
		}
		/* All three asleep in LOFI_DKIOCSTATE before any signal. */
		end = now() + 20;
		for (j = 0; j < 3; j++)
			while (!in_ioctl(pids[j])) {
				if (now() > end)
					die("round %d: waiter %d is not asleep in LOFI_DKIOCSTATE after 20 s", i, j);
				msleep(5);
			}
		add(&sh->ops, 3);

		/* A caught signal: EINTR, and the device still works. */
		kill(pids[0], SIGUSR1);
		if (!read_within(pipes[0][0], &rep, sizeof(rep), 10)) {
			bad("round %d: the waiter sent SIGUSR1 (with a handler) did not return from LOFI_DKIOCSTATE within 10 s",
			    i);
			kill(pids[0], SIGKILL);
		} else {
			if (rep.ret != -1 || rep.err != EINTR)
				undoc("round %d: LOFI_DKIOCSTATE interrupted by a caught SIGUSR1 returned %d %s (state %d), want EINTR",
				      i, rep.ret, ename(rep.err), rep.state);
			else
				eintr++;
			if (rep.caught != SIGUSR1)
				bad("round %d: the SIGUSR1 handler did not run", i);
			if (!rep.fine)
				bad("round %d: after EINTR, LOFI_DKIOCSTATE or reading %s did not work", i, dev);
		}
		reap(pids[0], "the interrupted waiter");

		/* SIGKILL: the process dies at once. */
		kill(pids[1], SIGKILL);
		if (!wait_child(pids[1], &status, 10))
			bad("round %d: a waiter killed with SIGKILL did not die within 10 s", i);
		else if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			bad("round %d: a waiter killed with SIGKILL ended with status 0x%x", i, status);
		else
			killed++;

		if (roles[2] == W_SIGTERM) {
			kill(pids[2], SIGTERM);
			if (!wait_child(pids[2], &status, 10))
				bad("round %d: a waiter sent SIGTERM did not die within 10 s", i);
			else if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGTERM)
				bad("round %d: a waiter sent SIGTERM ended with status 0x%x", i, status);
			else
				killed++;
			/* The device still works, and no open leaked: a plain
			 * unmap succeeds (EBUSY only while udev probes). */
			{
				int dfd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
				uint32_t st = LOFI_DKIO_NONE;

				if (dfd < 0)
					bad("round %d: open %s after the killed waiters: %s", i, dev, ename(errno));
				else if (ioctl(dfd, LOFI_DKIOCSTATE, &st) < 0 || st != LOFI_DKIO_INSERTED ||
					 pread(dfd, buf, BLK, 0) != BLK || buf[0] != tag)
					bad("round %d: %s is not fine after the killed waiters", i, dev);
				if (dfd >= 0)
					close(dfd);
				op_done(&sh->ios);
			}
			r = unmap_file(fd, n, NULL, 0, 0, 1, &ebusy, NULL);
			add(&sh->ebusy, ebusy);
			if (r)
				bad("round %d: plain unmap of %s after its waiters were killed: %s (an open leaked?)",
				    i, dev, ename(r));
			else
				op_done(&sh->unmaps);
		} else {
			/* A forced unmap wakes the last waiter with LOFI_DKIO_DEV_GONE. */
			r = unmap_file(fd, n, NULL, 1, 0, 0, NULL, NULL);
			if (r)
				bad("round %d: forced unmap of %s: %s", i, dev, ename(r));
			else
				op_done(&sh->unmaps);
			r = get_filename(fd, n, &li);
			if (r != ENXIO)
				bad("round %d: GET_FILENAME %u right after the forced unmap: %s, want ENXIO", i, n,
				    r ? ename(r) : "success");
			if (!read_within(pipes[2][0], &rep, sizeof(rep), 10))
				bad("round %d: the waiter was not woken by the forced unmap within 10 s", i);
			else if (rep.ret != 0 || rep.state != LOFI_DKIO_DEV_GONE)
				bad("round %d: the waiter woken by the forced unmap got %d %s state %d, want LOFI_DKIO_DEV_GONE",
				    i, rep.ret, ename(rep.err), rep.state);
			else
				gone++;
			reap(pids[2], "the waiter woken by the forced unmap");
		}
		for (j = 0; j < 3; j++)
			close(pipes[j][0]);
		if (!wait_disk_gone(n, 10))
			bad("round %d: /sys/block/lofi%u still exists 10 s after the unmap and the waiters' end", i, n);
		r = get_filename(fd, n, &li);
		if (r != ENXIO)
			bad("round %d: GET_FILENAME %u after the unmap: %s, want ENXIO", i, n, r ? ename(r) : "success");
		if (file_tag(img) != tag)
			bad("round %d: the backing file lost its data", i);
	}
	snprintf(extra, sizeof(extra), " races=%d eintr=%d killed=%d dev-gone=%d", rounds, eintr, killed, gone);
	return finish(extra);
}

/* ------------------------------------------------------------------ */
/* rmmod-race                                                         */

static int cmd_rmmod_race(const char *img, int round)
{
	pid_t m, r;
	int map_err, map_stage, rm_err;
	struct race_res *res = sh->res;

	res[0].ret = -1;	/* the mapper did not report */
	res[1].err = -1;	/* the rmmod did not report */

	seed_rng((uint64_t)round * 31 + 7);
	/* Vary who starts first and by how much. */
	sh->op[0].delay_us = round % 2 ? (int)(rnd() % 4000) : 0;
	sh->op[1].delay_us = round % 2 ? 0 : (int)(rnd() % 4000);
	sh->arrived = 0;
	m = xfork();
	if (m == 0) {
		struct lofi_ioctl li;
		int fd;

		__atomic_add_fetch(&sh->arrived, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&sh->arrived, __ATOMIC_SEQ_CST) < 2)
			;
		spin_us(sh->op[0].delay_us);
		fd = open(CTL_PATH, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			res[0].err = errno;
			res[0].ret = 1;	/* failed at open */
			exit(0);
		}
		if (map_file(fd, img, 0, 0, &li) < 0) {
			res[0].err = errno;
			res[0].ret = 2;	/* failed at MAP_FILE */
		} else {
			res[0].minor = li.li_minor;
			res[0].ret = 0;
		}
		close(fd);
		exit(0);
	}
	r = xfork();
	if (r == 0) {
		__atomic_add_fetch(&sh->arrived, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&sh->arrived, __ATOMIC_SEQ_CST) < 2)
			;
		spin_us(sh->op[1].delay_us);
		res[1].err = syscall(SYS_delete_module, "lofi", O_NONBLOCK) < 0 ? errno : 0;
		exit(0);
	}
	reap(m, "the mapper");
	reap(r, "the rmmod");
	if (sh->failures)
		return finish("");
	map_stage = res[0].ret;
	map_err = res[0].err;
	rm_err = res[1].err;
	add(&sh->ops, 2);
	if (map_stage == 0 && rm_err == EAGAIN) {
		printf("map-won N=%u rmmod=%s\n", res[0].minor, ename(rm_err));
		return 0;
	}
	if (map_stage == 1 && rm_err == 0 && (map_err == ENOENT || map_err == ENODEV || map_err == ENXIO)) {
		printf("rmmod-won map-open=%s\n", ename(map_err));
		return 0;
	}
	printf("inconsistent: map %s%s%s, rmmod %s\n",
	       map_stage == 0 ? "succeeded" : map_stage == 1 ? "failed to open " CTL_PATH : "failed in MAP_FILE",
	       map_stage ? ": " : "", map_stage ? ename(map_err) : "", rm_err ? ename(rm_err) : "succeeded");
	return 1;
}

/* ------------------------------------------------------------------ */
/* close-race                                                         */

/* Map PATH as N, waiting (EEXIST) up to 10 s for an earlier N to go. */
static void map_as(int fd, const char *path, unsigned n, const char *what)
{
	map_as_flags(fd, path, n, 0, what);
}

static const char *mode_names[] = { "forced", "detach-at-close", "plain" };

static int cmd_close_race(const char *dir, int rounds)
{
	char img[2][PATH_MAX], dev[64], extra[256];
	int fd = ctl(1), i, busy = 0;
	unsigned n = 3;

	seed_rng((uint64_t)getpid());
	snprintf(img[0], sizeof(img[0]), "%s/close-a.img", dir);
	snprintf(img[1], sizeof(img[1]), "%s/close-b.img", dir);
	devpath(dev, sizeof(dev), n);
	for (i = 0; i < rounds; i++) {
		const char *path = img[i % 2];
		int mode = i % 3, r, ebusy = 0;
		uint32_t tag = 0xC105E000u + (uint32_t)i;
		struct lofi_ioctl li;
		pid_t c;
		char what[64];

		snprintf(what, sizeof(what), "round %d (%s)", i, mode_names[mode]);
		make_image(path, 0);
		map_as(fd, path, n, what);
		if (!wait_node(dev, 1, 10))
			die("%s: %s did not appear", what, dev);
		sh->arrived = 0;
		sh->op[0].delay_us = (int)(rnd() % 2000);
		sh->op[1].delay_us = (int)(rnd() % 2000);
		sh->gen = 0;
		c = xfork();
		if (c == 0) {
			uint32_t *buf = xalloc_aligned(BLK);
			int fds[2], k, nfd = 1 + (int)(rnd() % 2);

			for (k = 0; k < nfd; k++) {
				fds[k] = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
				if (fds[k] < 0)
					die("%s: open %s: %s", what, dev, ename(errno));
			}
			for (k = 0; k < BLK / 4; k++)
				buf[k] = tag;
			if (pwrite(fds[0], buf, BLK, 0) != BLK || fdatasync(fds[0]) < 0)
				die("%s: writing %s: %s", what, dev, ename(errno));
			__atomic_store_n(&sh->gen, 1, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&sh->arrived, 1, __ATOMIC_SEQ_CST);
			while (__atomic_load_n(&sh->arrived, __ATOMIC_SEQ_CST) < 2)
				;
			spin_us(sh->op[0].delay_us);
			for (k = 0; k < nfd; k++)
				close(fds[k]);
			exit(0);
		}
		while (!__atomic_load_n(&sh->gen, __ATOMIC_SEQ_CST)) {
			int st;

			if (waitpid(c, &st, WNOHANG) == c)
				die("%s: the closer ended early (status 0x%x)", what, st);
			msleep(1);
		}
		__atomic_add_fetch(&sh->arrived, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&sh->arrived, __ATOMIC_SEQ_CST) < 2)
			;
		spin_us(sh->op[1].delay_us);
		r = unmap_file(fd, n, NULL, mode == 0, mode == 1, 0, NULL, NULL);
		add(&sh->ops, 2);
		if (r == 0) {
			op_done(&sh->unmaps);
			/* Forced, or plain: no longer a mapping, at once. */
			if (mode != 1 && get_filename(fd, n, &li) != ENXIO)
				bad("%s: GET_FILENAME %u right after the unmap: %s, want ENXIO", what, n,
				    ename(errno));
		} else if (r == EBUSY && mode == 2) {
			busy++;
		} else {
			undoc("%s: unmap %u racing the last close: %s", what, n, ename(r));
		}
		reap(c, "the closer");
		if (r == EBUSY && mode == 2) {
			/* Closed now: a plain unmap succeeds (udev aside). */
			r = unmap_file(fd, n, NULL, 0, 0, 1, &ebusy, NULL);
			add(&sh->ebusy, ebusy);
			if (r)
				bad("%s: plain unmap %u after the last close: %s", what, n, ename(r));
			else
				op_done(&sh->unmaps);
		}
		/* The disk goes away after the last close; N is free again. */
		if (!wait_disk_gone(n, 10))
			bad("%s: /sys/block/lofi%u still exists 10 s after the unmap and last close", what, n);
		if (!wait_node(dev, 0, 10))
			bad("%s: %s still exists 10 s after the unmap and last close", what, dev);
		r = get_filename(fd, n, &li);
		if (r != ENXIO)
			bad("%s: GET_FILENAME %u once removed: %s, want ENXIO", what, n, r ? ename(r) : "success");
		if (file_tag(path) != tag)
			bad("%s: the block written and flushed before the unmap is not in the backing file", what);
	}
	/* N is free: it can be mapped again, and unmapped. */
	map_as(fd, img[0], n, "the final map");
	if (unmap_file(fd, n, NULL, 0, 0, 1, NULL, NULL) != 0)
		bad("the final unmap of N=%u failed", n);
	snprintf(extra, sizeof(extra), " races=%d plain-unmap-ebusy=%d", rounds, busy);
	return finish(extra);
}

/* ------------------------------------------------------------------ */
/* open-detach                                                        */

static void opener(const char *dev)
{
	uint32_t *buf = xalloc_aligned(BLK);
	int seen = 0;

	for (;;) {
		int g, failed = 0;

		while ((g = __atomic_load_n(&sh->od_gen, __ATOMIC_SEQ_CST)) == seen)
			futex(&sh->od_gen, FUTEX_WAIT, seen);
		seen = g;
		if (__atomic_load_n(&sh->quit, __ATOMIC_SEQ_CST))
			exit(0);
		while (!__atomic_load_n(&sh->od_stop, __ATOMIC_SEQ_CST)) {
			double t0 = now(), unmapped;
			int fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC), mode = sh->od_mode;
			uint32_t st = LOFI_DKIO_NONE;

			__atomic_load(&sh->od_unmapped, &unmapped, __ATOMIC_SEQ_CST);
			add(&sh->ops, 1);
			if (fd < 0) {
				if (errno == ENXIO)
					sh->od_enxio++;
				else if (errno == ENOENT)
					sh->od_enoent++;
				else
					undoc("open-detach (%s): open %s during the unmap: %s, want ENXIO",
					      mode_names[mode], dev, ename(errno));
				failed = 1;
				continue;
			}
			sh->od_ok++;
			__atomic_store_n(&sh->od_ready, 1, __ATOMIC_SEQ_CST);
			if (failed)
				bad("open-detach (%s): an open of %s succeeded after one had failed", mode_names[mode],
				    dev);
			if (mode != 1 && unmapped > 0 && t0 > unmapped)
				bad("open-detach (%s): an open of %s begun %.1f ms after the unmap returned succeeded",
				    mode_names[mode], dev, (t0 - unmapped) * 1000);
			if (ioctl(fd, LOFI_DKIOCSTATE, &st) < 0)
				undoc("open-detach (%s): LOFI_DKIOCSTATE(LOFI_DKIO_NONE): %s", mode_names[mode], ename(errno));
			else if (st == LOFI_DKIO_DEV_GONE && mode == 0)
				sh->od_gone_state++;
			else if (st != LOFI_DKIO_INSERTED)
				bad("open-detach (%s): LOFI_DKIOCSTATE of an open device: %u", mode_names[mode], st);
			if (pread(fd, buf, BLK, 0) != BLK) {
				if (errno == EIO && mode == 0)
					sh->od_eio++;
				else
					undoc("open-detach (%s): reading %s: %s", mode_names[mode], dev, ename(errno));
			} else if (buf[0] != sh->od_tag || buf[BLK / 4 - 1] != sh->od_tag) {
				bad("open-detach (%s): %s reads tag %#x, this round's file has %#x",
				    mode_names[mode], dev, buf[0], sh->od_tag);
			}
			close(fd);
		}
		__atomic_store_n(&sh->od_stop, 2, __ATOMIC_SEQ_CST);
		futex(&sh->od_stop, FUTEX_WAKE, 1);
	}
}

static int cmd_open_detach(const char *dir, int rounds)
{
	char img[2][PATH_MAX], dev[64], extra[512];
	int fd = ctl(1), i, busy_total = 0;
	unsigned n = 2;
	pid_t op;

	snprintf(img[0], sizeof(img[0]), "%s/detach-a.img", dir);
	snprintf(img[1], sizeof(img[1]), "%s/detach-b.img", dir);
	devpath(dev, sizeof(dev), n);
	op = xfork();
	if (op == 0)
		opener(dev);
	for (i = 0; i < rounds; i++) {
		const char *path = img[i % 2];
		int mode = i % 3, r, ebusy = 0, s;
		uint32_t tag = 0xDE7AC000u + (uint32_t)i;
		struct lofi_ioctl li;
		double end, t_ret;
		char what[64];

		snprintf(what, sizeof(what), "round %d (%s)", i, mode_names[mode]);
		make_image(path, tag);
		/* The number is reused: the same N, now serving this file. */
		map_as(fd, path, n, what);
		if (!wait_node(dev, 1, 10))
			die("%s: %s did not appear", what, dev);
		sh->od_tag = tag;
		sh->od_mode = mode;
		sh->od_unmapped = 0;
		sh->od_ready = 0;
		sh->od_stop = 0;
		__atomic_add_fetch(&sh->od_gen, 1, __ATOMIC_SEQ_CST);
		futex(&sh->od_gen, FUTEX_WAKE, 1);
		end = now() + 10;
		while (!__atomic_load_n(&sh->od_ready, __ATOMIC_SEQ_CST)) {
			if (now() > end)
				die("%s: the opener could not open %s within 10 s", what, dev);
			msleep(1);
		}
		msleep((int)(i % 7) * 3);
		r = unmap_file(fd, n, NULL, mode == 0, mode == 1, mode == 2, &ebusy, NULL);
		t_ret = now();
		__atomic_store(&sh->od_unmapped, &t_ret, __ATOMIC_SEQ_CST);
		busy_total += ebusy;
		add(&sh->ebusy, ebusy);
		if (r)
			bad("%s: unmap %u with an opener running: %s", what, n, ename(r));
		else
			op_done(&sh->unmaps);
		/* Let the opener run on through the removal. */
		if (!wait_disk_gone(n, 15))
			bad("%s: /sys/block/lofi%u still exists 15 s after the unmap", what, n);
		msleep(20);
		__atomic_store_n(&sh->od_stop, 1, __ATOMIC_SEQ_CST);
		while ((s = __atomic_load_n(&sh->od_stop, __ATOMIC_SEQ_CST)) != 2)
			futex(&sh->od_stop, FUTEX_WAIT, s);
		r = get_filename(fd, n, &li);
		if (r != ENXIO)
			bad("%s: GET_FILENAME %u after the removal: %s, want ENXIO", what, n, r ? ename(r) : "success");
	}
	__atomic_store_n(&sh->quit, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&sh->od_gen, 1, __ATOMIC_SEQ_CST);
	futex(&sh->od_gen, FUTEX_WAKE, 1);
	reap(op, "the opener");
	map_as(fd, img[0], n, "the final map");
	if (unmap_file(fd, n, NULL, 0, 0, 1, NULL, NULL) != 0)
		bad("the final unmap of N=%u failed", n);
	snprintf(extra, sizeof(extra),
		 " races=%d opens-ok=%ld opens-enxio=%ld opens-enoent=%ld dev-gone-seen=%ld eio-reads=%ld unmap-ebusy-retries=%d",
		 rounds, sh->od_ok, sh->od_enxio, sh->od_enoent, sh->od_gone_state, sh->od_eio, busy_total);
	return finish(extra);
}

/* ------------------------------------------------------------------ */

__attribute__((noreturn))
static void usage(void)
{
	fprintf(stderr, "usage: lofi_storm storm DIR WORKERS SECONDS | races DIR ROUNDS |\n"
			"       signals DIR ROUNDS | rmmod-race FILE ROUND |\n"
			"       close-race DIR ROUNDS | open-detach DIR ROUNDS\n");
	exit(2);
}

static int num(const char *s, int min, int max)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v < min || v > max)
		usage();
	return (int)v;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		usage();
	sub = argv[1];
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap: %s", ename(errno));
	memset(sh, 0, sizeof(*sh));
	if (strcmp(sub, "storm") == 0 && argc == 5)
		return cmd_storm(argv[2], num(argv[3], 1, MAX_WORKERS), num(argv[4], 1, 100000));
	if (strcmp(sub, "races") == 0 && argc == 4)
		return cmd_races(argv[2], num(argv[3], 1, 1000000));
	if (strcmp(sub, "signals") == 0 && argc == 4)
		return cmd_signals(argv[2], num(argv[3], 1, 1000000));
	if (strcmp(sub, "rmmod-race") == 0 && argc == 4)
		return cmd_rmmod_race(argv[2], num(argv[3], 0, INT_MAX));
	if (strcmp(sub, "close-race") == 0 && argc == 4)
		return cmd_close_race(argv[2], num(argv[3], 1, 1000000));
	if (strcmp(sub, "open-detach") == 0 && argc == 4)
		return cmd_open_detach(argv[2], num(argv[3], 1, 1000000));
	usage();
}
