// SPDX-License-Identifier: GPL-2.0
/*
 * lofi_abi_test: the user-space contract of /dev/lofictl and /dev/lofiN,
 * case by case: every errno of the driver contract, the success paths,
 * li_cleanup, the map fields (li_flags: LOFI_FLAG_DIRECT_IO and
 * LOFI_FLAG_LABELED with its partitions, the rest
 * reserved for extensions like li_block_size, li_offset, li_sizelimit),
 * forced unmap with LOFI_DKIOCSTATE, EINTR and HDIO_GETGEO, the query
 * LOFI_CHECK_COMPRESSED and compressed images (the illumos lofiadm -C
 * format, written here with stored segments: read-only mappings with
 * li_algorithm, EINVAL for unsound headers, EIO for corrupt segments).
 *
 * usage: lofi_abi_test [--max N] SCRATCH_DIR [CASE...]
 *
 *   --max N      the lofi_max_files the module was loaded with (default
 *                128); GET_MAXMINOR must report it.
 *   SCRATCH_DIR  a writable directory for backing files (made if missing).
 *   CASE...      run only these cases (default: all; "list" lists them).
 *
 * Prints "ok CASE" or "not ok CASE: what: got X want Y" (possibly several
 * per case) and exits 1 if any case failed. Runs as root; cases that need
 * an unprivileged caller fork a child that drops to uid/gid 65534.
 *
 * Each case cleans up its own mappings; after every case a sweep checks
 * that no mapping and no lofi disk is left behind (and removes leftovers,
 * reporting them as a failure of that case), so cases stay independent.
 *
 * Built 64-bit and 32-bit (-32): the struct has the same layout for both,
 * which the static assertions below pin down, and a 32-bit run proves the
 * driver's compat_ioctl paths.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/blkpg.h>
#include <linux/fs.h>
#include <linux/hdreg.h>
#include <linux/lofi.h>

#include "lofi_prog.h"

/* The ABI promise: one layout for 32- and 64-bit callers. */
#define LI_FIXED (6 * 4 + 2 * 8)	/* the __u32 and __aligned_u64 members */
_Static_assert(sizeof(struct lofi_ioctl) == 4288, "struct lofi_ioctl changed size");
_Static_assert(sizeof(struct lofi_ioctl) ==
		       LI_FIXED + LOFI_PATH_LEN + LOFI_DEVPATH_LEN + LOFI_ALGORITHM_LEN + LOFI_RESERVED_WORDS * 4,
	       "struct lofi_ioctl has padding");
_Static_assert(sizeof(struct lofi_ioctl) < (1 << 13), "too large for a 13-bit ioctl size field");
_Static_assert(_Alignof(struct lofi_ioctl) == 8, "struct lofi_ioctl is not 8-byte aligned");
_Static_assert(offsetof(struct lofi_ioctl, li_readonly) == 12, "li_readonly offset");
_Static_assert(offsetof(struct lofi_ioctl, li_flags) == 16, "li_flags offset");
_Static_assert(offsetof(struct lofi_ioctl, li_block_size) == 20, "li_block_size offset");
_Static_assert(offsetof(struct lofi_ioctl, li_offset) == 24, "li_offset offset");
_Static_assert(offsetof(struct lofi_ioctl, li_sizelimit) == 32, "li_sizelimit offset");
_Static_assert(offsetof(struct lofi_ioctl, li_filename) == LI_FIXED, "li_filename offset");
_Static_assert(offsetof(struct lofi_ioctl, li_devpath) == LI_FIXED + LOFI_PATH_LEN, "li_devpath offset");
_Static_assert(offsetof(struct lofi_ioctl, li_algorithm) == LI_FIXED + LOFI_PATH_LEN + LOFI_DEVPATH_LEN,
	       "li_algorithm offset");
_Static_assert(offsetof(struct lofi_ioctl, li_reserved) ==
		       LI_FIXED + LOFI_PATH_LEN + LOFI_DEVPATH_LEN + LOFI_ALGORITHM_LEN,
	       "li_reserved offset");
_Static_assert(sizeof(((struct lofi_ioctl *)0)->li_devpath) == LOFI_DEVPATH_LEN, "li_devpath size");
_Static_assert(LOFI_PATH_LEN == PATH_MAX, "li_filename holds a path of PATH_MAX - 1 bytes");

/* The size of struct lofi_ioctl before li_flags .. li_sizelimit were added. */
#define LI_OLD_SIZE 8304

#define KiB 1024LL
#define MiB (1024LL * KiB)
#define GiB (1024LL * MiB)

#define CTL_PATH "/dev/lofictl"
#define NOBODY 65534

/* ---------------------------------------------------------------------- */
/* Reporting                                                              */

static const char *scratch;
static int want_max = LOFI_MAX_FILES_DEFAULT;
static int max_minor;		/* what GET_MAXMINOR reported */
static int ctlfd = -1;		/* /dev/lofictl, O_RDWR */
static int ctlro = -1;		/* /dev/lofictl, O_RDONLY */
static const char *cur_case = "setup";
static int cur_failed;

static const char *ename(int e)
{
	static char buf[4][32];
	static int i;
	const char *n = e ? strerrorname_np(e) : "success";

	if (n)
		return n;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "errno %d", e);
	return buf[i];
}

__attribute__((format(printf, 1, 2)))
static void failf(const char *fmt, ...)
{
	va_list ap;

	printf("not ok %s: ", cur_case);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	cur_failed = 1;
}

#define CHECK(cond, ...)                  \
	do {                              \
		if (!(cond))              \
			failf(__VA_ARGS__); \
	} while (0)

/*
 * expect_errno(WHAT, RET, ERR, WANT): the call WHAT returned RET with errno
 * ERR; WANT is the errno it must fail with, or 0 for "must succeed"
 * (RET >= 0). Returns 1 if as expected.
 */
static int expect_errno(const char *what, long ret, int err, int want)
{
	if (want == 0) {
		if (ret >= 0)
			return 1;
		failf("%s: got %s want success", what, ename(err));
		return 0;
	}
	if (ret >= 0) {
		failf("%s: got success (%ld) want %s", what, ret, ename(want));
		return 0;
	}
	if (err != want) {
		failf("%s: got %s want %s", what, ename(err), ename(want));
		return 0;
	}
	return 1;
}

/* Do the ioctl and check its outcome; returns the ioctl's result. */
static long xioctl(const char *what, int fd, unsigned long cmd, void *arg, int want)
{
	long r;

	errno = 0;
	r = ioctl(fd, cmd, arg);
	expect_errno(what, r, r < 0 ? errno : 0, want);
	return r;
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

typedef struct {
	char p[PATH_MAX];
} path_t;

/* A path in the scratch directory. */
static path_t sp(const char *name)
{
	path_t r;

	snprintf(r.p, sizeof(r.p), "%s/%s", scratch, name);
	return r;
}

static path_t devpath_of(int n)
{
	path_t r;

	snprintf(r.p, sizeof(r.p), LOFI_DEV_FMT, (unsigned)n);
	return r;
}

static void li_init(struct lofi_ioctl *li, const char *path)
{
	size_t len = path ? strlen(path) : 0;

	memset(li, 0, sizeof(*li));
	if (len >= sizeof(li->li_filename)) {
		failf("setup: path of %zu bytes does not fit li_filename", len);
		len = sizeof(li->li_filename) - 1;
	}
	if (path)
		memcpy(li->li_filename, path, len);
}

/* Create (or replace) a file of SIZE bytes (sparse), filled with BYTE over
 * its first FILL bytes. Returns 0, or -1 after reporting the failure. */
static int make_file_filled(const char *path, long long size, int byte, long long fill)
{
	char buf[64 * 1024];
	long long done = 0;
	int fd;

	unlink(path);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	if (fd < 0) {
		failf("setup: create %s: %s", path, ename(errno));
		return -1;
	}
	memset(buf, byte, sizeof(buf));
	while (done < fill) {
		size_t len = fill - done < (long long)sizeof(buf) ? (size_t)(fill - done) : sizeof(buf);
		ssize_t w = pwrite(fd, buf, len, done);

		if (w <= 0) {
			failf("setup: write %s: %s", path, ename(errno));
			close(fd);
			return -1;
		}
		done += w;
	}
	if (ftruncate(fd, size) < 0) {
		failf("setup: truncate %s to %lld: %s", path, size, ename(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int make_file(const char *path, long long size)
{
	return make_file_filled(path, size, 0, 0);
}

/* Wait up to SECS for PATH to be a block device (present) or absent. */
static int wait_node(const char *path, int present, int secs)
{
	double end = now() + secs;
	struct stat st;

	for (;;) {
		int is = stat(path, &st) == 0 && S_ISBLK(st.st_mode);
		int gone = !is && errno == ENOENT;

		if (present ? is : gone)
			return 1;
		if (now() > end)
			return 0;
		msleep(20);
	}
}

static int disk_in_sysfs(int n)
{
	char p[64];

	snprintf(p, sizeof(p), "/sys/block/lofi%d", n);
	return access(p, F_OK) == 0;
}

/* Wait up to SECS for /sys/block/lofiN to be present or absent. */
static int wait_disk(int n, int present, int secs)
{
	double end = now() + secs;

	while (disk_in_sysfs(n) != present) {
		if (now() > end)
			return 0;
		msleep(20);
	}
	return 1;
}

static int read_sysfs_ll(const char *path, long long *v)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%lld", v) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

/*
 * The fields a map or a query returns for every mapping so far: no flags,
 * the default block size, the whole file.
 */
static void check_mapping_fields(const char *what, const struct lofi_ioctl *li)
{
	CHECK(li->li_flags == 0, "%s: li_flags: got %#x want 0", what, li->li_flags);
	CHECK(li->li_block_size == LOFI_BLOCK_SIZE_DEFAULT, "%s: li_block_size: got %u want %d", what,
	      li->li_block_size, LOFI_BLOCK_SIZE_DEFAULT);
	CHECK(li->li_offset == 0, "%s: li_offset: got %llu want 0", what, (unsigned long long)li->li_offset);
	CHECK(li->li_sizelimit == 0, "%s: li_sizelimit: got %llu want 0", what,
	      (unsigned long long)li->li_sizelimit);
}

/*
 * Map PATH with LOFI_MAP_FILE (read-only if RO), expecting success: checks
 * that the ioctl returned N == li_minor, li_devpath "/dev/lofi/N",
 * li_readonly as asked, the defaults in li_flags, li_block_size, li_offset
 * and li_sizelimit, and that the node is a block device. Returns N
 * (even if a check failed, so that it gets unmapped), or 0 if the map
 * failed. OUT, if not NULL, gets the copied-back struct.
 */
static int map_ok(const char *what, const char *path, int ro, struct lofi_ioctl *out)
{
	struct lofi_ioctl li;
	path_t dev;
	long r;

	li_init(&li, path);
	li.li_readonly = ro;
	errno = 0;
	r = ioctl(ctlfd, LOFI_MAP_FILE, &li);
	if (!expect_errno(what, r, r < 0 ? errno : 0, 0))
		return 0;
	if (r == 0) {
		failf("%s: MAP_FILE returned 0, want N > 0", what);
		return 0;
	}
	dev = devpath_of((int)r);
	CHECK(li.li_minor == (uint32_t)r, "%s: li_minor: got %u want %ld (the return value)", what,
	      li.li_minor, r);
	CHECK(strcmp(li.li_devpath, dev.p) == 0, "%s: li_devpath: got '%.64s' want '%s'", what,
	      li.li_devpath, dev.p);
	if (ro)
		CHECK(li.li_readonly == 1, "%s: li_readonly: got %u want 1", what, li.li_readonly);
	check_mapping_fields(what, &li);
	CHECK(wait_node(dev.p, 1, 10), "%s: %s is not a block device after MAP_FILE", what, dev.p);
	if (out)
		*out = li;
	return (int)r;
}

/* MAP_FILE_MINOR of PATH at N, expecting WANT; returns the ioctl result. */
static long map_minor(const char *what, const char *path, int n, int want)
{
	struct lofi_ioctl li;

	li_init(&li, path);
	li.li_minor = n;
	return xioctl(what, ctlfd, LOFI_MAP_FILE_MINOR, &li, want);
}

/*
 * MAP_FILE_MINOR of PATH at N, expecting success within SECS seconds: after
 * the last close of an unmapped-while-open device its N is freed once the
 * disk is removed, which may happen asynchronously (EEXIST until then).
 */
static long map_minor_when_free(const char *what, const char *path, int n, int secs)
{
	struct lofi_ioctl li;
	double end = now() + secs;
	long r;

	for (;;) {
		li_init(&li, path);
		li.li_minor = n;
		errno = 0;
		r = ioctl(ctlfd, LOFI_MAP_FILE_MINOR, &li);
		if (r >= 0 || errno != EEXIST || now() > end)
			break;
		msleep(20);
	}
	expect_errno(what, r, r < 0 ? errno : 0, 0);
	return r;
}

/* UNMAP_FILE_MINOR of N with the given flags; returns 0 or the errno. */
static int unmap_raw(int fd, int n, int force, int cleanup, struct lofi_ioctl *out)
{
	struct lofi_ioctl li;
	int r;

	li_init(&li, NULL);
	li.li_minor = n;
	li.li_force = force;
	li.li_cleanup = cleanup;
	errno = 0;
	r = ioctl(fd, LOFI_UNMAP_FILE_MINOR, &li);
	if (out)
		*out = li;
	return r < 0 ? errno : 0;
}

/* UNMAP_FILE_MINOR of N with the given flags must fail with WANT (or succeed if 0). */
static void expect_unmap(const char *what, int fd, int n, int force, int cleanup, int want)
{
	int err = unmap_raw(fd, n, force, cleanup, NULL);

	expect_errno(what, err ? -1 : 0, err, want);
}

/*
 * Plain unmap (no force, no cleanup) of a device the test does not hold
 * open: by N, or by NAME if N is 0. Returns 0 or the errno. EBUSY is
 * retried for a few seconds: udev may briefly open a new disk to probe it.
 */
static int unmap_retry(int fd, int n, const char *name, struct lofi_ioctl *out)
{
	struct lofi_ioctl li;
	double end = now() + 5;
	int r;

	for (;;) {
		li_init(&li, n ? NULL : name);
		li.li_minor = n;
		errno = 0;
		r = ioctl(fd, n ? LOFI_UNMAP_FILE_MINOR : LOFI_UNMAP_FILE, &li);
		if (r == 0 || errno != EBUSY || now() > end)
			break;
		msleep(50);
	}
	if (out)
		*out = li;
	return r < 0 ? errno : 0;
}

/*
 * Unmap N (not open by us) and expect success, li_minor == N copied back,
 * and the node and the sysfs disk gone. EBUSY is retried for a few
 * seconds: udev may briefly open a new disk to probe it.
 */
static void unmap_ok(const char *what, int n)
{
	struct lofi_ioctl li;
	path_t dev = devpath_of(n);
	int err = unmap_retry(ctlfd, n, NULL, &li);

	if (!expect_errno(what, err ? -1 : 0, err, 0))
		return;
	CHECK(li.li_minor == (uint32_t)n, "%s: li_minor copied back: got %u want %d", what,
	      li.li_minor, n);
	CHECK(wait_node(dev.p, 0, 10), "%s: %s still exists after the unmap", what, dev.p);
	CHECK(wait_disk(n, 0, 10), "%s: /sys/block/lofi%d still exists after the unmap", what, n);
}

/*
 * Map PATH and open its device O_RDWR | O_DIRECT. Returns the descriptor
 * and sets *N and *DEV, or, having reported the failure and undone the
 * mapping, returns -1.
 */
static int map_open(const char *path, int *n, path_t *dev)
{
	int fd;

	*n = map_ok("MAP_FILE", path, 0, NULL);
	if (!*n)
		return -1;
	*dev = devpath_of(*n);
	fd = open(dev->p, O_RDWR | O_DIRECT);
	if (!expect_errno("open /dev/lofi/N", fd, errno, 0)) {
		unmap_ok("unmap", *n);
		return -1;
	}
	return fd;
}

/* GET_FILENAME of N must fail with ENXIO (N is not a mapping). */
static void expect_unmapped(const char *what, int n)
{
	struct lofi_ioctl li;

	li_init(&li, NULL);
	li.li_minor = n;
	xioctl(what, ctlfd, LOFI_GET_FILENAME, &li, ENXIO);
}

/* GET_MINOR of PATH must fail with ENOENT (PATH is not mapped). */
static void expect_not_mapped(const char *what, const char *path)
{
	struct lofi_ioctl li;

	li_init(&li, path);
	xioctl(what, ctlfd, LOFI_GET_MINOR, &li, ENOENT);
}

static void *alloc_aligned(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, len)) {
		failf("setup: posix_memalign %zu failed", len);
		return NULL;
	}
	memset(p, 0, len);
	return p;
}

/* Read LEN bytes at OFF of PATH into BUF; returns 0 or -1 (reported). */
static int read_file_at(const char *path, void *buf, size_t len, off_t off)
{
	int fd = open(path, O_RDONLY);
	ssize_t r;

	if (fd < 0) {
		failf("open %s: %s", path, ename(errno));
		return -1;
	}
	r = pread(fd, buf, len, off);
	close(fd);
	if (r != (ssize_t)len) {
		failf("read %zu bytes at %lld of %s: got %zd (%s)", len, (long long)off, path, r,
		      ename(errno));
		return -1;
	}
	return 0;
}

/* Child processes report their struct result through a pipe. */
struct child_result {
	int ret;
	int err;
	uint32_t state;
};

/* Read exactly LEN bytes from FD within SECS seconds. */
static int read_timeout(int fd, void *buf, size_t len, int secs)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	double end = now() + secs;

	while (got < len) {
		int left = (int)((end - now()) * 1000);
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			return -1;
		r = read(fd, (char *)buf + got, len - got);
		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

/* Whether FD has something to read right now. */
static int readable_now(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) > 0;
}

/* Wait until process PID sleeps (state S or D), up to SECS. */
static int wait_sleeping(pid_t pid, int secs)
{
	char p[64], buf[256], *rp;
	double end = now() + secs;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	while (now() < end) {
		FILE *f = fopen(p, "r");

		if (f) {
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);

			fclose(f);
			buf[n] = 0;
			rp = strrchr(buf, ')');
			if (rp && rp[1] == ' ' && (rp[2] == 'S' || rp[2] == 'D'))
				return 1;
		}
		msleep(20);
	}
	return 0;
}

static void reap(pid_t pid)
{
	int status;

	if (pid <= 0)
		return;
	if (waitpid(pid, &status, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
}

/* Drop to uid/gid 65534 with no supplementary groups (in a child). */
static int drop_privileges(void)
{
	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0) {
		failf("setup: drop to uid %d: %s", NOBODY, ename(errno));
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* ENOTTY                                                                 */

static void c_enotty_unknown(void)
{
	struct lofi_ioctl li;
	/* Numbers lofictl does not define, with lofi's magic and others. */
	static const struct {
		const char *name;
		unsigned long cmd;
	} cmds[] = {
		{ "nr 0", _IOWR(LOFI_IOC_MAGIC, 0, struct lofi_ioctl) },
		{ "nr 10", _IOWR(LOFI_IOC_MAGIC, 10, struct lofi_ioctl) },
		{ "nr 0xff", _IOWR(LOFI_IOC_MAGIC, 0xff, struct lofi_ioctl) },
		{ "LOFI_DKIOCSTATE (a disk ioctl)", LOFI_DKIOCSTATE },
		{ "magic 'L' nr 1", _IOWR('L', 1, struct lofi_ioctl) },
		{ "0x4C00 (LOOP_SET_FD)", 0x4C00 },
		{ "0", 0 },
	};
	char what[128];
	size_t i;

	li_init(&li, sp("unused").p);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		snprintf(what, sizeof(what), "%s on an O_RDWR fd", cmds[i].name);
		xioctl(what, ctlfd, cmds[i].cmd, &li, ENOTTY);
		snprintf(what, sizeof(what), "%s on an O_RDONLY fd", cmds[i].name);
		xioctl(what, ctlro, cmds[i].cmd, &li, ENOTTY);
	}
}

static void c_enotty_bad_encoding(void)
{
	const struct lofi_command *known = lofi_commands;
	const unsigned long sz = sizeof(struct lofi_ioctl);
	/* Room for the largest wrong size, so only the encoding is wrong. */
	struct lofi_ioctl *li = calloc(LI_OLD_SIZE / sizeof(*li) + 1, sizeof(*li));
	path_t a = sp("a");
	char what[160];
	size_t i, v;

	if (!li || make_file(a.p, MiB))
		goto out;
	for (i = 0; i < LOFI_NR_COMMANDS; i++) {
		unsigned long nr = _IOC_NR(known[i].cmd);
		const struct {
			const char *how;
			unsigned long cmd;
		} bad[] = {
			{ "size - 4", _IOC(_IOC_READ | _IOC_WRITE, LOFI_IOC_MAGIC, nr, sz - 4) },
			{ "size + 4", _IOC(_IOC_READ | _IOC_WRITE, LOFI_IOC_MAGIC, nr, sz + 4) },
			{ "size 0", _IOC(_IOC_READ | _IOC_WRITE, LOFI_IOC_MAGIC, nr, 0) },
			/* A caller built against the header before li_flags. */
			{ "the old size (8304)", _IOC(_IOC_READ | _IOC_WRITE, LOFI_IOC_MAGIC, nr, LI_OLD_SIZE) },
			{ "_IOW", _IOC(_IOC_WRITE, LOFI_IOC_MAGIC, nr, sz) },
			{ "_IOR", _IOC(_IOC_READ, LOFI_IOC_MAGIC, nr, sz) },
			{ "_IO", _IOC(_IOC_NONE, LOFI_IOC_MAGIC, nr, 0) },
		};

		for (v = 0; v < sizeof(bad) / sizeof(bad[0]); v++) {
			li_init(li, a.p);
			li->li_minor = 1;
			snprintf(what, sizeof(what), "%s encoded with %s", known[i].name, bad[v].how);
			xioctl(what, ctlfd, bad[v].cmd, li, ENOTTY);
			/* ENOTTY comes before EPERM (read-only fd)... */
			snprintf(what, sizeof(what), "%s encoded with %s, O_RDONLY fd", known[i].name,
				 bad[v].how);
			xioctl(what, ctlro, bad[v].cmd, li, ENOTTY);
			/* ...and before EFAULT (bad pointer). */
			snprintf(what, sizeof(what), "%s encoded with %s, NULL arg", known[i].name,
				 bad[v].how);
			xioctl(what, ctlfd, bad[v].cmd, NULL, ENOTTY);
		}
	}
	/* A MAP_FILE with a wrong encoding must not have mapped anything. */
	expect_not_mapped("GET_MINOR after badly encoded MAP_FILEs", a.p);
	expect_unmapped("GET_FILENAME 1 after badly encoded MAP_FILEs", 1);
out:
	free(li);
}

/*
 * LOFI_CHECK_COMPRESSED: the query LOFI_GET_MINOR is (the mapping of
 * li_filename, with the same errnos), allowed on a read-only control
 * file, that also says in li_algorithm whether and how the image is
 * compressed ("" for an ordinary one: the compressed case has the rest).
 */
static void c_check_compressed(void)
{
	static const char *const odd[] = { "", "a", "./a", "/" };
	struct lofi_ioctl li, g;
	path_t a = sp("a");
	char what[128];
	size_t k;
	long rg, rc;
	int n, eg, ec;

	if (make_file(a.p, MiB))
		return;
	li_init(&li, a.p);
	xioctl("CHECK_COMPRESSED of an unmapped file, O_RDWR fd", ctlfd, LOFI_CHECK_COMPRESSED, &li, ENOENT);
	li_init(&li, a.p);
	xioctl("CHECK_COMPRESSED of an unmapped file, O_RDONLY fd", ctlro, LOFI_CHECK_COMPRESSED, &li, ENOENT);
	li_init(&li, sp("missing").p);
	xioctl("CHECK_COMPRESSED of a missing file", ctlro, LOFI_CHECK_COMPRESSED, &li, ENOENT);
	xioctl("CHECK_COMPRESSED, NULL arg", ctlfd, LOFI_CHECK_COMPRESSED, NULL, EFAULT);
	xioctl("CHECK_COMPRESSED, NULL arg, O_RDONLY fd", ctlro, LOFI_CHECK_COMPRESSED, NULL, EFAULT);
	li_init(&li, NULL);
	memset(li.li_filename, 'x', sizeof(li.li_filename));
	li.li_filename[0] = '/';
	xioctl("CHECK_COMPRESSED with li_filename not NUL-terminated", ctlfd, LOFI_CHECK_COMPRESSED, &li, EINVAL);

	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		return;
	for (k = 0; k < 2; k++) {
		snprintf(what, sizeof(what), "CHECK_COMPRESSED of an ordinary mapping, %s fd", k ? "O_RDONLY" : "O_RDWR");
		li_init(&li, a.p);
		memset(li.li_algorithm, 'j', sizeof(li.li_algorithm));	/* an output: overwritten */
		li.li_algorithm[0] = 0;
		li.li_minor = 77;
		if (xioctl(what, k ? ctlro : ctlfd, LOFI_CHECK_COMPRESSED, &li, 0) != 0)
			continue;
		CHECK(li.li_minor == (uint32_t)n, "%s: li_minor: got %u want %d", what, li.li_minor, n);
		CHECK(strcmp(li.li_devpath, devpath_of(n).p) == 0, "%s: li_devpath: got '%.64s' want '%s'", what,
		      li.li_devpath, devpath_of(n).p);
		CHECK(li.li_readonly == 0, "%s: li_readonly: got %u want 0", what, li.li_readonly);
		CHECK(memchr(li.li_algorithm, 0, sizeof(li.li_algorithm)) && li.li_algorithm[0] == 0,
		      "%s: li_algorithm: got '%.36s' want ''", what, li.li_algorithm);
		check_mapping_fields(what, &li);
	}
	li_init(&li, a.p);
	li.li_reserved[LOFI_RESERVED_WORDS - 1] = 1;
	xioctl("CHECK_COMPRESSED with the last word of li_reserved set", ctlro, LOFI_CHECK_COMPRESSED, &li, EINVAL);
	li_init(&li, NULL);
	li.li_minor = (uint32_t)n;
	li.li_reserved[0] = 1;
	xioctl("CHECK_COMPRESSED by li_minor only, li_reserved[0] set", ctlfd, LOFI_CHECK_COMPRESSED, &li, EINVAL);

	/*
	 * Names that are not absolute, or name no file: CHECK_COMPRESSED
	 * answers exactly as GET_MINOR does (from the scratch directory,
	 * where "a" is the mapped file).
	 */
	if (chdir(scratch) < 0)
		failf("setup: chdir %s: %s", scratch, ename(errno));
	for (k = 0; k < sizeof(odd) / sizeof(odd[0]); k++) {
		li_init(&g, odd[k]);
		errno = 0;
		rg = ioctl(ctlro, LOFI_GET_MINOR, &g);
		eg = rg < 0 ? errno : 0;
		li_init(&li, odd[k]);
		errno = 0;
		rc = ioctl(ctlro, LOFI_CHECK_COMPRESSED, &li);
		ec = rc < 0 ? errno : 0;
		CHECK(rg == rc && eg == ec && (rc < 0 || li.li_minor == g.li_minor),
		      "CHECK_COMPRESSED of the name '%s': got %s (N %u) want %s (N %u), as GET_MINOR", odd[k],
		      ename(ec), rc < 0 ? 0 : li.li_minor, ename(eg), rg < 0 ? 0 : g.li_minor);
	}
	if (chdir("/") < 0)
		failf("chdir /: %s", ename(errno));
	unmap_ok("unmap", n);
	li_init(&li, a.p);
	xioctl("CHECK_COMPRESSED after the unmap", ctlfd, LOFI_CHECK_COMPRESSED, &li, ENOENT);
}

/* ---------------------------------------------------------------------- */
/* EPERM                                                                  */

static void c_eperm_readonly_fd(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a");
	int n, wo;

	if (make_file(a.p, MiB))
		return;
	li_init(&li, a.p);
	xioctl("MAP_FILE on O_RDONLY fd", ctlro, LOFI_MAP_FILE, &li, EPERM);
	li_init(&li, a.p);
	li.li_minor = 1;
	xioctl("MAP_FILE_MINOR on O_RDONLY fd", ctlro, LOFI_MAP_FILE_MINOR, &li, EPERM);
	li_init(&li, a.p);
	xioctl("UNMAP_FILE on O_RDONLY fd", ctlro, LOFI_UNMAP_FILE, &li, EPERM);
	li_init(&li, NULL);
	li.li_minor = 1;
	xioctl("UNMAP_FILE_MINOR on O_RDONLY fd", ctlro, LOFI_UNMAP_FILE_MINOR, &li, EPERM);
	/* EPERM comes before EFAULT and EINVAL. */
	xioctl("MAP_FILE on O_RDONLY fd, NULL arg", ctlro, LOFI_MAP_FILE, NULL, EPERM);
	li_init(&li, a.p);
	li.li_reserved[0] = 1;
	xioctl("MAP_FILE on O_RDONLY fd, li_reserved set", ctlro, LOFI_MAP_FILE, &li, EPERM);
	li_init(&li, a.p);
	li.li_flags = ~LOFI_FLAGS_KNOWN;
	xioctl("MAP_FILE on O_RDONLY fd, unknown li_flags", ctlro, LOFI_MAP_FILE, &li, EPERM);
	li_init(&li, a.p);
	li.li_block_size = 4096;
	xioctl("MAP_FILE on O_RDONLY fd, li_block_size 4096", ctlro, LOFI_MAP_FILE, &li, EPERM);
	li_init(&li, a.p);
	li.li_minor = 1;
	li.li_offset = 512;
	xioctl("MAP_FILE_MINOR on O_RDONLY fd, li_offset set", ctlro, LOFI_MAP_FILE_MINOR, &li, EPERM);
	li_init(&li, a.p);
	li.li_minor = 1;
	li.li_sizelimit = 512;
	xioctl("MAP_FILE_MINOR on O_RDONLY fd, li_sizelimit set", ctlro, LOFI_MAP_FILE_MINOR, &li, EPERM);
	expect_not_mapped("GET_MINOR after MAP_FILE on O_RDONLY fd", a.p);

	/* The queries work on the read-only fd. */
	li_init(&li, NULL);
	if (xioctl("GET_MAXMINOR on O_RDONLY fd", ctlro, LOFI_GET_MAXMINOR, &li, 0) == 0)
		CHECK(li.li_minor == (uint32_t)want_max, "GET_MAXMINOR on O_RDONLY fd: got %u want %d",
		      li.li_minor, want_max);
	li_init(&li, NULL);
	li.li_minor = 1;
	xioctl("GET_FILENAME 1 (unmapped) on O_RDONLY fd", ctlro, LOFI_GET_FILENAME, &li, ENXIO);

	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		return;
	li_init(&li, NULL);
	li.li_minor = n;
	if (xioctl("GET_FILENAME on O_RDONLY fd", ctlro, LOFI_GET_FILENAME, &li, 0) == 0)
		CHECK(strcmp(li.li_filename, a.p) == 0, "GET_FILENAME on O_RDONLY fd: got '%.64s' want '%s'",
		      li.li_filename, a.p);
	li_init(&li, a.p);
	if (xioctl("GET_MINOR on O_RDONLY fd", ctlro, LOFI_GET_MINOR, &li, 0) == 0)
		CHECK(li.li_minor == (uint32_t)n, "GET_MINOR on O_RDONLY fd: got %u want %d", li.li_minor, n);
	expect_unmap("UNMAP_FILE_MINOR of a mapping on O_RDONLY fd", ctlro, n, 0, 0, EPERM);
	expect_unmap("forced UNMAP_FILE_MINOR on O_RDONLY fd", ctlro, n, 1, 0, EPERM);
	li_init(&li, NULL);
	li.li_minor = n;
	xioctl("GET_FILENAME after refused unmaps", ctlfd, LOFI_GET_FILENAME, &li, 0);
	unmap_ok("UNMAP_FILE_MINOR on O_RDWR fd", n);

	/* "Opened for writing" includes O_WRONLY. */
	wo = open(CTL_PATH, O_WRONLY | O_CLOEXEC);
	if (!expect_errno("open " CTL_PATH " O_WRONLY", wo, errno, 0))
		return;
	li_init(&li, a.p);
	n = (int)xioctl("MAP_FILE on O_WRONLY fd", wo, LOFI_MAP_FILE, &li, 0);
	if (n > 0)
		CHECK(unmap_retry(wo, n, NULL, NULL) == 0, "UNMAP_FILE_MINOR on O_WRONLY fd failed");
	close(wo);
}

/* ---------------------------------------------------------------------- */
/* EFAULT                                                                 */

static void c_efault(void)
{
	const struct lofi_command *cmds = lofi_commands;
	const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	const size_t sz = sizeof(struct lofi_ioctl);
	const size_t len = ((sz + pg - 1) / pg + 1) * pg;
	path_t a = sp("a");
	char what[128];
	char *area;
	struct lofi_ioctl *tail, *ro;
	size_t i;
	int n;

	if (make_file(a.p, MiB))
		return;
	/* A struct whose last byte lies in an inaccessible page. */
	area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		failf("setup: mmap: %s", ename(errno));
		return;
	}
	tail = (struct lofi_ioctl *)(area + len - pg - sz + 1);
	for (i = 0; i < LOFI_NR_COMMANDS; i++) {
		snprintf(what, sizeof(what), "%s with a NULL arg", cmds[i].name);
		xioctl(what, ctlfd, cmds[i].cmd, NULL, EFAULT);
		snprintf(what, sizeof(what), "%s with an inaccessible arg", cmds[i].name);
		mprotect(area, len, PROT_NONE);
		xioctl(what, ctlfd, cmds[i].cmd, area, EFAULT);
		mprotect(area, len, PROT_READ | PROT_WRITE);
		memset(area, 0, len);
		memcpy(tail->li_filename, a.p, strlen(a.p) + 1);
		tail->li_minor = 1;
		mprotect(area + len - pg, pg, PROT_NONE);
		snprintf(what, sizeof(what), "%s with an arg whose last byte is inaccessible", cmds[i].name);
		xioctl(what, ctlfd, cmds[i].cmd, tail, EFAULT);
		mprotect(area, len, PROT_READ | PROT_WRITE);
	}
	expect_not_mapped("GET_MINOR after faulting MAP_FILEs", a.p);

	/*
	 * A struct that can be read but not written: the map succeeds up to
	 * the copy-back, which faults; the mapping must be undone.
	 */
	memset(area, 0, len);
	ro = (struct lofi_ioctl *)area;
	li_init(ro, a.p);
	mprotect(area, len, PROT_READ);
	xioctl("MAP_FILE with a read-only arg (copy-back faults)", ctlfd, LOFI_MAP_FILE, ro, EFAULT);
	xioctl("GET_MAXMINOR with a read-only arg", ctlfd, LOFI_GET_MAXMINOR, ro, EFAULT);
	mprotect(area, len, PROT_READ | PROT_WRITE);
	ro->li_minor = 1;
	mprotect(area, len, PROT_READ);
	xioctl("MAP_FILE_MINOR 1 with a read-only arg", ctlfd, LOFI_MAP_FILE_MINOR, ro, EFAULT);
	munmap(area, len);
	expect_not_mapped("GET_MINOR after a MAP_FILE whose copy-back faulted", a.p);
	expect_unmapped("GET_FILENAME 1 after a MAP_FILE whose copy-back faulted", 1);
	CHECK(wait_disk(1, 0, 10), "/sys/block/lofi1 exists after a MAP_FILE whose copy-back faulted");
	/* Nothing was reserved: the lowest N is still free. */
	n = map_ok("MAP_FILE after the faults", a.p, 0, NULL);
	if (n) {
		CHECK(n == 1, "MAP_FILE after the faults: got N=%d want 1", n);
		unmap_ok("unmap", n);
	}
}

/* ---------------------------------------------------------------------- */
/* EINVAL                                                                 */

static void c_einval_reserved(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a");
	char what[96];
	int k, n;

	if (make_file(a.p, MiB))
		return;
	for (k = 0; k < LOFI_RESERVED_WORDS; k++) {
		li_init(&li, a.p);
		li.li_reserved[k] = k == LOFI_RESERVED_WORDS - 1 ? 0x80000000u : 1;
		snprintf(what, sizeof(what), "MAP_FILE with li_reserved[%d] set", k);
		xioctl(what, ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	}
	expect_not_mapped("GET_MINOR after MAP_FILE with li_reserved", a.p);
	li_init(&li, a.p);
	li.li_minor = 1;
	li.li_reserved[7] = 1;
	xioctl("MAP_FILE_MINOR with li_reserved[7] set", ctlfd, LOFI_MAP_FILE_MINOR, &li, EINVAL);
	li_init(&li, NULL);
	li.li_reserved[3] = 1;
	xioctl("GET_MAXMINOR with li_reserved[3] set", ctlfd, LOFI_GET_MAXMINOR, &li, EINVAL);

	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		return;
	li_init(&li, NULL);
	li.li_minor = n;
	li.li_reserved[0] = 1;
	xioctl("UNMAP_FILE_MINOR with li_reserved[0] set", ctlfd, LOFI_UNMAP_FILE_MINOR, &li, EINVAL);
	li_init(&li, a.p);
	li.li_reserved[LOFI_RESERVED_WORDS - 1] = 1;
	xioctl("UNMAP_FILE with the last word of li_reserved set", ctlfd, LOFI_UNMAP_FILE, &li, EINVAL);
	li_init(&li, NULL);
	li.li_minor = n;
	li.li_reserved[1] = 1;
	xioctl("GET_FILENAME with li_reserved[1] set", ctlfd, LOFI_GET_FILENAME, &li, EINVAL);
	li_init(&li, a.p);
	li.li_reserved[2] = 1;
	xioctl("GET_MINOR with li_reserved[2] set", ctlfd, LOFI_GET_MINOR, &li, EINVAL);
	li_init(&li, NULL);
	li.li_minor = n;
	li.li_reserved[4] = 1;
	xioctl("SET_CAPACITY of a mapping with li_reserved[4] set", ctlfd, LOFI_SET_CAPACITY, &li, EINVAL);
	li_init(&li, a.p);
	li.li_reserved[4] = 1;
	xioctl("CHECK_COMPRESSED with li_reserved[4] set", ctlfd, LOFI_CHECK_COMPRESSED, &li, EINVAL);
	/* The refused unmaps left the mapping in place. */
	li_init(&li, NULL);
	li.li_minor = n;
	xioctl("GET_FILENAME after refused unmaps", ctlfd, LOFI_GET_FILENAME, &li, 0);
	unmap_ok("unmap", n);
}

/*
 * The map commands' fields: a flag bit outside LOFI_FLAGS_KNOWN (also next
 * to LOFI_FLAG_DIRECT_IO, which is known), a block size other than 0, 512,
 * 1024, 2048 and 4096, an li_offset that is no multiple of 512 or an
 * li_sizelimit that is no multiple of the block size (512 for 0) is
 * EINVAL, checked after li_reserved and before the path is looked at (so
 * before ERANGE, lookup errors, EBUSY and EEXIST). A region that is not
 * inside the file, or no multiple of the block size, is EINVAL once the
 * file is open: after ERANGE and lookup errors, before EBUSY and EEXIST.
 */
static void check_disk(const char *what, int n, long long size);

struct map_field_case {
	const char *what;
	uint32_t flags, block_size;
	uint64_t offset, sizelimit;
};

static const struct map_field_case bad_map_fields[] = {
	{ "li_flags bit 2", 1u << 2, 0, 0, 0 },
	{ "li_flags LOFI_FLAG_DIRECT_IO and bit 2", LOFI_FLAG_DIRECT_IO | 1u << 2, 0, 0, 0 },
	{ "li_flags LOFI_FLAG_LABELED and bit 31", LOFI_FLAG_LABELED | 1u << 31, 0, 0, 0 },
	{ "li_flags LOFI_FLAG_DIRECT_IO and bit 31", LOFI_FLAG_DIRECT_IO | 1u << 31, 0, 0, 0 },
	{ "li_flags bit 31", 1u << 31, 0, 0, 0 },
	{ "li_flags all bits", 0xffffffffu, 0, 0, 0 },
	{ "li_block_size 1", 0, 1, 0, 0 },
	{ "li_block_size 256", 0, 256, 0, 0 },
	{ "li_block_size 511", 0, 511, 0, 0 },
	{ "li_block_size 513", 0, 513, 0, 0 },
	{ "li_block_size 3000", 0, 3000, 0, 0 },
	{ "li_block_size 8192", 0, 8192, 0, 0 },
	{ "li_block_size 65536", 0, 65536, 0, 0 },
	{ "li_block_size 0x80000200", 0, 0x80000200u, 0, 0 },
	{ "li_block_size 0xffffffff", 0, 0xffffffffu, 0, 0 },
	{ "li_offset 1", 0, 0, 1, 0 },
	{ "li_offset 511", 0, 0, 511, 0 },
	{ "li_offset 2^32+1", 0, 0, (1ULL << 32) + 1, 0 },
	{ "li_offset 2^64-1", 0, 0, ~0ULL, 0 },
	{ "li_sizelimit 1", 0, 0, 0, 1 },
	{ "li_sizelimit 513", 0, 0, 0, 513 },
	{ "li_sizelimit 2^64-1", 0, 0, 0, ~0ULL },
	{ "li_block_size 4096 and li_sizelimit 512", 0, 4096, 0, 512 },
	{ "li_block_size 2048 and li_sizelimit 3072", 0, 2048, 0, 3072 },
	{ "li_block_size 1024 and li_offset 100", 0, 1024, 100, 0 },
	{ "li_block_size 4000 and a fitting region", 0, 4000, 4096, 4096 },
	{ "LOFI_FLAG_DIRECT_IO and li_block_size 3000", LOFI_FLAG_DIRECT_IO, 3000, 0, 0 },
	{ "LOFI_FLAG_DIRECT_IO and li_offset 256", LOFI_FLAG_DIRECT_IO, 0, 256, 0 },
};
#define NBAD_MAP_FIELDS (sizeof(bad_map_fields) / sizeof(bad_map_fields[0]))

/* Valid map fields naming a region that a 1 MiB file does not have. */
static const struct map_field_case bad_regions[] = {
	{ "li_offset 1 MiB (the size)", 0, 0, 1 << 20, 0 },
	{ "li_offset 2^32", 0, 0, 1ULL << 32, 0 },
	{ "li_offset 2^63", 0, 0, 1ULL << 63, 0 },
	{ "li_offset 2^64-512", 0, 0, ~0ULL - 511, 512 },
	{ "li_sizelimit 1 MiB + 512", 0, 0, 0, (1 << 20) + 512 },
	{ "li_sizelimit 2^32", 0, 0, 0, 1ULL << 32 },
	{ "li_sizelimit 2^64-512", 0, 0, 0, ~0ULL - 511 },
	{ "li_offset 512, li_sizelimit 1 MiB", 0, 0, 512, 1 << 20 },
	{ "li_offset 1 MiB - 512, li_sizelimit 1024", 0, 0, (1 << 20) - 512, 1024 },
	{ "li_offset 2^63, li_sizelimit 2^63 (overflows)", 0, 0, 1ULL << 63, 1ULL << 63 },
	{ "li_block_size 4096 and li_offset 512 (a partial last block)", 0, 4096, 512, 0 },
	{ "li_block_size 2048 and li_offset 1024", 0, 2048, 1024, 0 },
	{ "LOFI_FLAG_DIRECT_IO, li_block_size 4096, li_offset 1 MiB", LOFI_FLAG_DIRECT_IO, 4096, 1 << 20, 0 },
};
#define NBAD_REGIONS (sizeof(bad_regions) / sizeof(bad_regions[0]))

static void set_map_fields(struct lofi_ioctl *li, const struct map_field_case *c)
{
	li->li_flags = c->flags;
	li->li_block_size = c->block_size;
	li->li_offset = c->offset;
	li->li_sizelimit = c->sizelimit;
}

/*
 * One map that must end with WANT: MAP_FILE of PATH (MAP_FILE_MINOR of
 * MINOR if it is not 0), read-only if RO, with the map fields of C;
 * LABEL says which map it is.
 */
static void map_case(const char *path, int ro, uint32_t minor, const struct map_field_case *c,
		     const char *label, int want)
{
	struct lofi_ioctl li;
	char what[160];

	li_init(&li, path);
	li.li_readonly = (uint32_t)ro;
	li.li_minor = minor;
	set_map_fields(&li, c);
	snprintf(what, sizeof(what), "%s with %s", label, c->what);
	xioctl(what, ctlfd, minor ? LOFI_MAP_FILE_MINOR : LOFI_MAP_FILE, &li, want);
}

static void c_einval_map_fields(void)
{
	const struct {
		const struct map_field_case *cases;
		size_t count;
	} tables[] = { { bad_map_fields, NBAD_MAP_FIELDS }, { bad_regions, NBAD_REGIONS } };
	const struct map_field_case *c;
	struct lofi_ioctl li;
	path_t a = sp("a"), b = sp("b"), missing = sp("missing");
	char what[160];
	size_t i, t;
	long m;
	int n;

	if (make_file(a.p, MiB) || make_file(b.p, MiB))
		return;
	unlink(missing.p);
	for (i = 0; i < NBAD_MAP_FIELDS; i++) {
		c = &bad_map_fields[i];
		map_case(a.p, 0, 0, c, "MAP_FILE", EINVAL);
		map_case(a.p, 1, 0, c, "read-only MAP_FILE", EINVAL);
		map_case(a.p, 0, 1, c, "MAP_FILE_MINOR 1", EINVAL);
		/* Before the range of li_minor and the path lookup. */
		map_case(a.p, 0, (uint32_t)max_minor + 1, c, "MAP_FILE_MINOR max+1", EINVAL);
		map_case(missing.p, 0, 0, c, "MAP_FILE of a missing file", EINVAL);
		map_case("/dev/null", 0, 0, c, "MAP_FILE of /dev/null", EINVAL);
	}
	/* Regions: refused once the file is open, so after ERANGE and lookup errors. */
	for (i = 0; i < NBAD_REGIONS; i++) {
		c = &bad_regions[i];
		map_case(a.p, 0, 0, c, "MAP_FILE", EINVAL);
		map_case(a.p, 1, 1, c, "read-only MAP_FILE_MINOR 1", EINVAL);
		map_case(a.p, 0, (uint32_t)max_minor + 1, c, "MAP_FILE_MINOR max+1", ERANGE);
		map_case(missing.p, 0, 0, c, "MAP_FILE of a missing file", ENOENT);
	}
	/* Every unknown flag bit, one at a time. */
	for (i = 0; i < 32; i++) {
		if (LOFI_FLAGS_KNOWN & (1u << i))
			continue;
		li_init(&li, a.p);
		li.li_flags = 1u << i;
		snprintf(what, sizeof(what), "MAP_FILE with li_flags bit %zu (unknown)", i);
		xioctl(what, ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	}
	expect_not_mapped("GET_MINOR after the refused maps", a.p);
	expect_unmapped("GET_FILENAME 1 after the refused maps", 1);

	/* Before EBUSY (a is mapped) and EEXIST (N is taken): every third case. */
	n = map_ok("MAP_FILE a", a.p, 0, NULL);
	if (!n)
		return;
	for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (i = 0; i < tables[t].count; i += 3) {
			c = &tables[t].cases[i];
			map_case(a.p, 0, 0, c, "MAP_FILE of a mapped file", EINVAL);
			map_case(b.p, 0, (uint32_t)n, c, "MAP_FILE_MINOR N (in use)", EINVAL);
		}
	expect_not_mapped("GET_MINOR b after the refused maps", b.p);

	/* li_block_size 512, the default, is accepted too. */
	li_init(&li, b.p);
	li.li_block_size = LOFI_BLOCK_SIZE_DEFAULT;
	m = xioctl("MAP_FILE with li_block_size 512", ctlfd, LOFI_MAP_FILE, &li, 0);
	if (m > 0) {
		check_mapping_fields("MAP_FILE with li_block_size 512", &li);
		check_disk("li_block_size 512", (int)m, MiB);
		unmap_ok("unmap", (int)m);
	}
	if (n + 1 <= max_minor) {
		li_init(&li, b.p);
		li.li_minor = n + 1;
		li.li_block_size = 512;
		li.li_readonly = 1;
		m = xioctl("read-only MAP_FILE_MINOR N+1 with li_block_size 512", ctlfd, LOFI_MAP_FILE_MINOR,
			   &li, 0);
		if (m > 0) {
			CHECK(m == n + 1, "MAP_FILE_MINOR N+1 returned %ld", m);
			check_mapping_fields("MAP_FILE_MINOR with li_block_size 512", &li);
			unmap_ok("unmap", (int)m);
		}
	}
	unmap_ok("unmap a", n);
}

/*
 * The other commands ignore li_flags, li_block_size, li_offset and
 * li_sizelimit; the queries return the mapping's values in them.
 */
static void c_map_fields_ignored(void)
{
	static const struct map_field_case junk = { "junk", 0xffffffffu, 4096, ~0ULL, 1 };
	struct lofi_ioctl li;
	path_t a = sp("a"), dev;
	double end;
	int n, fd, r;

	if (make_file(a.p, MiB))
		return;
	li_init(&li, NULL);
	set_map_fields(&li, &junk);
	if (xioctl("GET_MAXMINOR with junk in the map fields", ctlfd, LOFI_GET_MAXMINOR, &li, 0) == 0)
		CHECK(li.li_minor == (uint32_t)max_minor, "GET_MAXMINOR: got %u want %d", li.li_minor,
		      max_minor);
	li_init(&li, NULL);
	li.li_minor = 1;
	set_map_fields(&li, &junk);
	xioctl("GET_FILENAME 1 (unmapped) with junk in the map fields", ctlfd, LOFI_GET_FILENAME, &li, ENXIO);
	li_init(&li, a.p);
	set_map_fields(&li, &junk);
	xioctl("GET_MINOR (unmapped) with junk in the map fields", ctlfd, LOFI_GET_MINOR, &li, ENOENT);
	li_init(&li, a.p);
	set_map_fields(&li, &junk);
	xioctl("UNMAP_FILE (unmapped) with junk in the map fields", ctlfd, LOFI_UNMAP_FILE, &li, ENOENT);
	li_init(&li, NULL);
	li.li_minor = 1;
	set_map_fields(&li, &junk);
	xioctl("UNMAP_FILE_MINOR 1 (unmapped) with junk in the map fields", ctlfd, LOFI_UNMAP_FILE_MINOR, &li,
	       ENXIO);

	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		return;
	li_init(&li, NULL);
	li.li_minor = n;
	set_map_fields(&li, &junk);
	if (xioctl("GET_FILENAME with junk in the map fields", ctlfd, LOFI_GET_FILENAME, &li, 0) == 0) {
		CHECK(strcmp(li.li_filename, a.p) == 0, "GET_FILENAME: got '%.64s' want '%s'", li.li_filename,
		      a.p);
		check_mapping_fields("GET_FILENAME with junk in the map fields", &li);
	}
	li_init(&li, a.p);
	set_map_fields(&li, &junk);
	if (xioctl("GET_MINOR with junk in the map fields", ctlfd, LOFI_GET_MINOR, &li, 0) == 0) {
		CHECK(li.li_minor == (uint32_t)n, "GET_MINOR: got %u want %d", li.li_minor, n);
		check_mapping_fields("GET_MINOR with junk in the map fields", &li);
	}
	/* Queries from the read-only control fd too. */
	li_init(&li, NULL);
	li.li_minor = n;
	li.li_block_size = 1;
	if (xioctl("GET_FILENAME on O_RDONLY fd with li_block_size 1", ctlro, LOFI_GET_FILENAME, &li, 0) == 0)
		check_mapping_fields("GET_FILENAME on O_RDONLY fd", &li);
	/* An unmap by N (EBUSY retried: udev may probe the new disk). */
	end = now() + 5;
	for (;;) {
		li_init(&li, NULL);
		li.li_minor = n;
		set_map_fields(&li, &junk);
		errno = 0;
		r = ioctl(ctlfd, LOFI_UNMAP_FILE_MINOR, &li);
		if (r == 0 || errno != EBUSY || now() > end)
			break;
		msleep(50);
	}
	if (!expect_errno("UNMAP_FILE_MINOR with junk in the map fields", r, r < 0 ? errno : 0, 0)) {
		unmap_ok("unmap", n);
		return;
	}
	CHECK(li.li_minor == (uint32_t)n, "UNMAP_FILE_MINOR: li_minor got %u want %d", li.li_minor, n);
	dev = devpath_of(n);
	CHECK(wait_node(dev.p, 0, 10), "%s still exists after the unmap", dev.p);
	CHECK(wait_disk(n, 0, 10), "/sys/block/lofi%d still exists after the unmap", n);
	/* By name, with the device open and li_cleanup: detached at the close. */
	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		return;
	dev = devpath_of(n);
	fd = open(dev.p, O_RDONLY);
	if (!expect_errno("open /dev/lofi/N", fd, errno, 0)) {
		unmap_ok("unmap", n);
		return;
	}
	li_init(&li, a.p);
	li.li_cleanup = 1;
	set_map_fields(&li, &junk);
	if (xioctl("UNMAP_FILE with li_cleanup and junk in the map fields", ctlfd, LOFI_UNMAP_FILE, &li, 0) ==
	    0)
		CHECK(li.li_minor == (uint32_t)n, "UNMAP_FILE: li_minor got %u want %d", li.li_minor, n);
	close(fd);
	CHECK(wait_disk(n, 0, 10), "/sys/block/lofi%d still exists 10 s after its last close", n);
	expect_unmapped("GET_FILENAME after the last close", n);
}

/*
 * LOFI_FLAG_DIRECT_IO (a known flag): a map asking for it succeeds, also
 * read-only, and by N with li_block_size 4096, and returns li_flags
 * LOFI_FLAG_DIRECT_IO (granted) or 0 (the backing file cannot do direct
 * I/O: the mapping is buffered), never another bit; li_block_size is then
 * the disk's logical block size (BLKSSZGET): the one asked for, else 512
 * when buffered and a power of two from 512 to 4096 with direct I/O (no
 * alignment is larger, so an explicit 4096 is granted where the default
 * is). GET_FILENAME and GET_MINOR return the same. A block written with
 * O_DIRECT in units of it reads back, and a plain map next to a direct
 * one still returns the defaults.
 */
static void check_direct_fields(const char *what, const struct lofi_ioctl *li, uint32_t asked)
{
	uint32_t bs = li->li_block_size;

	CHECK(li->li_flags == 0 || li->li_flags == LOFI_FLAG_DIRECT_IO,
	      "%s: li_flags: got %#x want 0 or LOFI_FLAG_DIRECT_IO (%#x)", what, li->li_flags,
	      LOFI_FLAG_DIRECT_IO);
	if (asked)
		CHECK(bs == asked, "%s: li_block_size: got %u want %u (asked for)", what, bs, asked);
	else if (li->li_flags & LOFI_FLAG_DIRECT_IO)
		CHECK(bs == 512 || bs == 1024 || bs == 2048 || bs == 4096,
		      "%s: li_block_size with direct I/O: got %u want 512, 1024, 2048 or 4096", what, bs);
	else
		CHECK(bs == LOFI_BLOCK_SIZE_DEFAULT, "%s: li_block_size of a buffered mapping: got %u want %d",
		      what, bs, LOFI_BLOCK_SIZE_DEFAULT);
	CHECK(li->li_offset == 0, "%s: li_offset: got %llu want 0", what, (unsigned long long)li->li_offset);
	CHECK(li->li_sizelimit == 0, "%s: li_sizelimit: got %llu want 0", what,
	      (unsigned long long)li->li_sizelimit);
}

static void c_direct_io(void)
{
	static const struct {
		const char *what;
		int ro, by_minor;
		uint32_t block_size;
	} modes[] = {
		{ "MAP_FILE with LOFI_FLAG_DIRECT_IO", 0, 0, 0 },
		{ "read-only MAP_FILE with LOFI_FLAG_DIRECT_IO", 1, 0, 0 },
		{ "MAP_FILE_MINOR with LOFI_FLAG_DIRECT_IO and li_block_size 4096", 0, 1, 4096 },
	};
	struct lofi_ioctl li, q;
	path_t a = sp("a"), b = sp("b"), dev;
	char *buf = alloc_aligned(8192), *back = alloc_aligned(8192), what[160];
	int granted = -1, gbs = 0, fd, ssz, nb;
	size_t i;
	long r;

	if (!buf || !back || make_file(a.p, MiB) || make_file(b.p, MiB))
		goto out;
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		li_init(&li, a.p);
		li.li_flags = LOFI_FLAG_DIRECT_IO;
		li.li_readonly = modes[i].ro;
		li.li_block_size = modes[i].block_size;
		li.li_minor = modes[i].by_minor ? (uint32_t)max_minor : 0;
		r = xioctl(modes[i].what, ctlfd, modes[i].by_minor ? LOFI_MAP_FILE_MINOR : LOFI_MAP_FILE, &li, 0);
		if (r <= 0)
			continue;
		CHECK(li.li_minor == (uint32_t)r, "%s: li_minor: got %u want %ld", modes[i].what, li.li_minor, r);
		CHECK(li.li_readonly == (uint32_t)modes[i].ro, "%s: li_readonly: got %u want %d", modes[i].what,
		      li.li_readonly, modes[i].ro);
		check_direct_fields(modes[i].what, &li, modes[i].block_size);
		/* The backing file is the same each time: so is the outcome. */
		if (granted < 0) {
			granted = !!(li.li_flags & LOFI_FLAG_DIRECT_IO);
			gbs = (int)li.li_block_size;
		} else {
			CHECK(granted == !!(li.li_flags & LOFI_FLAG_DIRECT_IO) &&
				      (modes[i].block_size || gbs == (int)li.li_block_size),
			      "%s: li_flags %#x, li_block_size %u; the first map of the same file got %#x, %d",
			      modes[i].what, li.li_flags, li.li_block_size, granted ? LOFI_FLAG_DIRECT_IO : 0, gbs);
		}
		dev = devpath_of((int)r);
		CHECK(wait_node(dev.p, 1, 10), "%s: %s is not a block device", modes[i].what, dev.p);

		/* The queries report what the map returned. */
		li_init(&q, NULL);
		q.li_minor = (uint32_t)r;
		snprintf(what, sizeof(what), "GET_FILENAME after %s", modes[i].what);
		if (xioctl(what, ctlro, LOFI_GET_FILENAME, &q, 0) == 0) {
			check_direct_fields(what, &q, modes[i].block_size);
			CHECK(q.li_flags == li.li_flags && q.li_block_size == li.li_block_size,
			      "%s: li_flags %#x, li_block_size %u; the map returned %#x, %u", what, q.li_flags,
			      q.li_block_size, li.li_flags, li.li_block_size);
		}
		li_init(&q, a.p);
		snprintf(what, sizeof(what), "GET_MINOR after %s", modes[i].what);
		if (xioctl(what, ctlro, LOFI_GET_MINOR, &q, 0) == 0)
			CHECK(q.li_minor == (uint32_t)r && q.li_flags == li.li_flags &&
				      q.li_block_size == li.li_block_size,
			      "%s: N %u, li_flags %#x, li_block_size %u; the map returned %ld, %#x, %u", what,
			      q.li_minor, q.li_flags, q.li_block_size, r, li.li_flags, li.li_block_size);

		/* The disk has that logical block size, and O_DIRECT in its units works. */
		fd = open(dev.p, (modes[i].ro ? O_RDONLY : O_RDWR) | O_DIRECT);
		if (expect_errno("open the direct mapping's disk with O_DIRECT", fd, errno, 0)) {
			size_t bs = li.li_block_size;

			ssz = 0;
			if (xioctl("BLKSSZGET", fd, BLKSSZGET, &ssz, 0) == 0)
				CHECK(ssz == (int)li.li_block_size, "%s: BLKSSZGET: got %d, li_block_size %u",
				      modes[i].what, ssz, li.li_block_size);
			if (!modes[i].ro && bs >= 512 && bs <= 4096) {
				memset(buf, 0x5a + (int)i, 2 * bs);
				memset(back, 0, 2 * bs);
				if (pwrite(fd, buf, 2 * bs, (off_t)bs) != (ssize_t)(2 * bs))
					failf("%s: O_DIRECT write of 2 blocks of %zu: %s", modes[i].what, bs,
					      ename(errno));
				else if (fsync(fd) < 0)
					failf("%s: fsync: %s", modes[i].what, ename(errno));
				else if (pread(fd, back, 2 * bs, (off_t)bs) != (ssize_t)(2 * bs))
					failf("%s: O_DIRECT read of 2 blocks of %zu: %s", modes[i].what, bs,
					      ename(errno));
				else
					CHECK(memcmp(buf, back, 2 * bs) == 0, "%s: the blocks written did not read back",
					      modes[i].what);
			} else if (bs >= 512 && bs <= 4096) {
				if (pread(fd, back, bs, 0) != (ssize_t)bs)
					failf("%s: O_DIRECT read of a block of %zu: %s", modes[i].what, bs,
					      ename(errno));
			}
			close(fd);
		}
		/* A plain map beside it has the defaults. */
		if (i == 0) {
			nb = map_ok("plain MAP_FILE beside a direct mapping", b.p, 0, NULL);
			if (nb)
				unmap_ok("unmap the plain mapping", nb);
		}
		unmap_ok("unmap the direct mapping", (int)r);
	}
	if (granted >= 0)
		printf("# direct_io: %s for %s\n",
		       granted ? "granted" : "refused (mapped with buffered I/O)", scratch);
	if (granted > 0)
		printf("# direct_io: logical block size %d\n", gbs);
out:
	free(buf);
	free(back);
}

/*
 * Mapped regions and block sizes: a map of li_sizelimit bytes from
 * li_offset (or all to the end) presents exactly those bytes of the file:
 * the disk's size, BLKSSZGET, the fields the map and the queries return,
 * the data read through it, writes landing there and nowhere else, and
 * nothing past its end. Each 8-byte word of the file holds its own offset,
 * so a read shows where in the file it came from.
 */
static int make_numbered_file(const char *path, long long size)
{
	uint64_t words[8192];
	long long pos;
	int fd;

	unlink(path);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	if (fd < 0) {
		failf("setup: create %s: %s", path, ename(errno));
		return -1;
	}
	for (pos = 0; pos < size; pos += (long long)sizeof(words)) {
		size_t k, len = size - pos < (long long)sizeof(words) ? (size_t)(size - pos) : sizeof(words);

		for (k = 0; k < sizeof(words) / 8; k++)
			words[k] = (uint64_t)pos + 8 * k;
		if (pwrite(fd, words, len, pos) != (ssize_t)len) {
			failf("setup: write %s: %s", path, ename(errno));
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

/* Whether LEN bytes of BUF are the numbered file's bytes from FILE_POS. */
static int numbered_at(const char *buf, size_t len, uint64_t file_pos)
{
	size_t k;

	for (k = 0; k + 8 <= len; k += 8) {
		uint64_t w;

		memcpy(&w, buf + k, 8);
		if (w != file_pos + k)
			return 0;
	}
	return 1;
}

static void c_map_regions(void)
{
	static const struct {
		const char *what;
		uint32_t block_size;
		uint64_t offset, sizelimit, want_size;
		uint32_t want_bs;
	} regions[] = {
		{ "the second MiB", 0, 1 << 20, 1 << 20, 1 << 20, 512 },
		{ "everything after 1 MiB + 512", 0, (1 << 20) + 512, 0, 2 * MiB - 512, 512 },
		{ "the whole file in 4096-byte blocks", 4096, 0, 0, 3 * MiB, 4096 },
		{ "1 MiB from 4 KiB in 2048-byte blocks", 2048, 4096, 1 << 20, 1 << 20, 2048 },
		{ "the last 1024 bytes in 1024-byte blocks", 1024, 3 * MiB - 1024, 0, 1024, 1024 },
		{ "512 bytes at 512 with li_block_size 512", 512, 512, 512, 512, 512 },
	};
	struct lofi_ioctl li, q;
	path_t a = sp("a"), dev;
	char *buf = alloc_aligned(8192), what[200];
	uint64_t bytes;
	size_t i;
	int fd, ssz;
	long r;

	if (!buf || make_numbered_file(a.p, 3 * MiB))
		goto out;
	for (i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
		uint64_t end = regions[i].want_size;

		li_init(&li, a.p);
		li.li_block_size = regions[i].block_size;
		li.li_offset = regions[i].offset;
		li.li_sizelimit = regions[i].sizelimit;
		snprintf(what, sizeof(what), "MAP_FILE of %s", regions[i].what);
		r = xioctl(what, ctlfd, LOFI_MAP_FILE, &li, 0);
		if (r <= 0)
			continue;
		CHECK(li.li_flags == 0 && li.li_block_size == regions[i].want_bs &&
			      li.li_offset == regions[i].offset && li.li_sizelimit == regions[i].sizelimit,
		      "%s: returned li_flags %#x li_block_size %u li_offset %" PRIu64 " li_sizelimit %" PRIu64
		      ", want 0 %u %" PRIu64 " %" PRIu64,
		      what, li.li_flags, li.li_block_size, (uint64_t)li.li_offset, (uint64_t)li.li_sizelimit,
		      regions[i].want_bs, (uint64_t)regions[i].offset, (uint64_t)regions[i].sizelimit);
		/* The queries report the same. */
		li_init(&q, NULL);
		q.li_minor = (uint32_t)r;
		if (xioctl("GET_FILENAME of the region's mapping", ctlro, LOFI_GET_FILENAME, &q, 0) == 0)
			CHECK(q.li_block_size == li.li_block_size && q.li_offset == li.li_offset &&
				      q.li_sizelimit == li.li_sizelimit && strcmp(q.li_filename, a.p) == 0,
			      "%s: GET_FILENAME: li_block_size %u li_offset %" PRIu64 " li_sizelimit %" PRIu64
			      " li_filename %.60s; the map returned %u %" PRIu64 " %" PRIu64,
			      what, q.li_block_size, (uint64_t)q.li_offset, (uint64_t)q.li_sizelimit, q.li_filename,
			      li.li_block_size, (uint64_t)li.li_offset, (uint64_t)li.li_sizelimit);
		li_init(&q, a.p);
		if (xioctl("GET_MINOR of the region's file", ctlro, LOFI_GET_MINOR, &q, 0) == 0)
			CHECK(q.li_minor == (uint32_t)r && q.li_offset == li.li_offset &&
				      q.li_sizelimit == li.li_sizelimit,
			      "%s: GET_MINOR: N %u li_offset %" PRIu64 " li_sizelimit %" PRIu64, what, q.li_minor,
			      (uint64_t)q.li_offset, (uint64_t)q.li_sizelimit);
		dev = devpath_of((int)r);
		CHECK(wait_node(dev.p, 1, 10), "%s: %s is not a block device", what, dev.p);
		fd = open(dev.p, O_RDWR | O_DIRECT);
		if (expect_errno("open the region's disk with O_DIRECT", fd, errno, 0)) {
			size_t bs = regions[i].want_bs;
			uint64_t word = 0xdeadbeefcafef00dULL;

			if (xioctl("BLKGETSIZE64", fd, BLKGETSIZE64, &bytes, 0) == 0)
				CHECK(bytes == end, "%s: BLKGETSIZE64: got %" PRIu64 " want %" PRIu64, what, bytes, end);
			ssz = 0;
			if (xioctl("BLKSSZGET", fd, BLKSSZGET, &ssz, 0) == 0)
				CHECK(ssz == (int)bs, "%s: BLKSSZGET: got %d want %zu", what, ssz, bs);
			/* The first and the last block are the region's. */
			if (pread(fd, buf, bs, 0) != (ssize_t)bs)
				failf("%s: read of block 0: %s", what, ename(errno));
			else
				CHECK(numbered_at(buf, bs, regions[i].offset), "%s: block 0 is not the file's bytes at %" PRIu64,
				      what, (uint64_t)regions[i].offset);
			if (pread(fd, buf, bs, (off_t)(end - bs)) != (ssize_t)bs)
				failf("%s: read of the last block: %s", what, ename(errno));
			else
				CHECK(numbered_at(buf, bs, regions[i].offset + end - bs),
				      "%s: the last block is not the file's bytes at %" PRIu64, what,
				      (uint64_t)(regions[i].offset + end - bs));
			/* Nothing past the end; less than a block is refused. */
			CHECK(pread(fd, buf, bs, (off_t)end) == 0, "%s: a read at the end did not return 0", what);
			if (bs > 512) {
				errno = 0;
				CHECK(pread(fd, buf, 512, 0) < 0 && errno == EINVAL,
				      "%s: an O_DIRECT read of 512 bytes from %zu-byte blocks: %s, want EINVAL", what, bs,
				      ename(errno));
			}
			/* A write to block 0 lands at the offset, and only there. */
			memcpy(buf, &word, 8);
			memset(buf + 8, 0, bs - 8);
			if (pwrite(fd, buf, bs, 0) != (ssize_t)bs || fsync(fd) < 0)
				failf("%s: write of block 0: %s", what, ename(errno));
			close(fd);
		}
		unmap_ok("unmap the region's mapping", (int)r);
		fd = open(a.p, O_RDWR);
		if (expect_errno("open the backing file", fd, errno, 0)) {
			uint64_t got = 0, off = regions[i].offset;
			size_t bs = regions[i].want_bs;

			if (pread(fd, &got, 8, (off_t)off) != 8 || got != 0xdeadbeefcafef00dULL)
				failf("%s: the write to block 0 is not at byte %" PRIu64 " of the file", what, off);
			if (off >= 8 && (pread(fd, &got, 8, (off_t)(off - 8)) != 8 || got != off - 8))
				failf("%s: the word before the region changed", what);
			if (end > bs && (pread(fd, &got, 8, (off_t)(off + bs)) != 8 || got != off + bs))
				failf("%s: the word after block 0 changed", what);
			/* Put the numbers back for the next region. */
			for (size_t k = 0; k < bs; k += 8) {
				uint64_t w = off + k;

				memcpy(buf + k, &w, 8);
			}
			if (pwrite(fd, buf, bs, (off_t)off) != (ssize_t)bs)
				failf("setup: restore %s: %s", a.p, ename(errno));
			close(fd);
		}
	}
out:
	free(buf);
}

static void c_einval_filename(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a");
	char rel[PATH_MAX];

	if (make_file(a.p, MiB))
		return;
	/* Relative paths, even ones that resolve from the current directory. */
	if (chdir(scratch) < 0) {
		failf("setup: chdir %s: %s", scratch, ename(errno));
		return;
	}
	li_init(&li, "a");
	xioctl("MAP_FILE of relative path 'a'", ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	li_init(&li, "./a");
	xioctl("MAP_FILE of relative path './a'", ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	snprintf(rel, sizeof(rel), "%s", a.p + 1);
	li_init(&li, rel);
	xioctl("MAP_FILE of the absolute path without its leading '/'", ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	li_init(&li, "a");
	li.li_minor = 1;
	xioctl("MAP_FILE_MINOR of relative path 'a'", ctlfd, LOFI_MAP_FILE_MINOR, &li, EINVAL);
	if (chdir("/") < 0)
		failf("chdir /: %s", ename(errno));

	li_init(&li, "");
	xioctl("MAP_FILE of empty path", ctlfd, LOFI_MAP_FILE, &li, EINVAL);

	/*
	 * No NUL anywhere in li_filename: '/' and 4095 'x'. Truncating it
	 * instead of refusing would give ENAMETOOLONG, not EINVAL.
	 */
	li_init(&li, NULL);
	memset(li.li_filename, 'x', sizeof(li.li_filename));
	li.li_filename[0] = '/';
	xioctl("MAP_FILE with li_filename not NUL-terminated", ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	li.li_minor = 1;
	xioctl("MAP_FILE_MINOR with li_filename not NUL-terminated", ctlfd, LOFI_MAP_FILE_MINOR, &li,
	       EINVAL);

	li_init(&li, a.p);
	snprintf(li.li_algorithm, sizeof(li.li_algorithm), "lzma");
	xioctl("MAP_FILE with li_algorithm \"lzma\"", ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	li_init(&li, a.p);
	li.li_algorithm[0] = 'x';
	li.li_minor = 1;
	xioctl("MAP_FILE_MINOR with li_algorithm set", ctlfd, LOFI_MAP_FILE_MINOR, &li, EINVAL);
	expect_not_mapped("GET_MINOR after the refused maps", a.p);
}

/* Map PATH (a non-regular file) in a child, guarded against blocking. */
static void einval_nonblocking(const char *what, const char *path)
{
	struct lofi_ioctl li;
	pid_t pid;
	int p[2], status;
	struct child_result res = { 0, 0, 0 };

	if (pipe(p) < 0) {
		failf("setup: pipe: %s", ename(errno));
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		li_init(&li, path);
		res.ret = ioctl(ctlfd, LOFI_MAP_FILE, &li);
		res.err = res.ret < 0 ? errno : 0;
		if (write(p[1], &res, sizeof(res)) != sizeof(res))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	if (pid < 0) {
		failf("setup: fork: %s", ename(errno));
	} else if (read_timeout(p[0], &res, sizeof(res), 20) < 0) {
		failf("%s: MAP_FILE blocked (no answer in 20 s)", what);
	} else {
		expect_errno(what, res.ret, res.err, EINVAL);
	}
	close(p[0]);
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
}

static void c_einval_file_types(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	path_t fifo = sp("fifo"), sock = sp("sock"), lnk = sp("devnull-link");
	int s;

	einval_nonblocking("MAP_FILE of a directory", scratch);
	einval_nonblocking("MAP_FILE of /dev/null (char device)", "/dev/null");
	einval_nonblocking("MAP_FILE of /dev/zero (char device)", "/dev/zero");
	unlink(lnk.p);
	if (symlink("/dev/null", lnk.p) == 0)
		einval_nonblocking("MAP_FILE of a symlink to /dev/null", lnk.p);
	else
		failf("setup: symlink: %s", ename(errno));

	/* A FIFO with no reader or writer: opening it could block forever. */
	unlink(fifo.p);
	if (mkfifo(fifo.p, 0600) == 0)
		einval_nonblocking("MAP_FILE of a FIFO", fifo.p);
	else
		failf("setup: mkfifo: %s", ename(errno));

	unlink(sock.p);
	if (strlen(sock.p) >= sizeof(sun.sun_path)) {
		failf("setup: socket path %s too long", sock.p);
		return;
	}
	memcpy(sun.sun_path, sock.p, strlen(sock.p) + 1);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		failf("setup: bind %s: %s", sock.p, ename(errno));
	} else {
		listen(s, 1);
		einval_nonblocking("MAP_FILE of a UNIX socket", sock.p);
	}
	if (s >= 0)
		close(s);
	unlink(sock.p);
}

static void c_einval_size(void)
{
	static const long long bad[] = { 0, 1, 511, 513, 1000, MiB + 1, MiB - 1 };
	struct lofi_ioctl li;
	path_t a = sp("a");
	char what[96];
	size_t i;
	int n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (make_file(a.p, bad[i]))
			return;
		li_init(&li, a.p);
		snprintf(what, sizeof(what), "MAP_FILE of a %lld-byte file", bad[i]);
		xioctl(what, ctlfd, LOFI_MAP_FILE, &li, EINVAL);
		li_init(&li, a.p);
		li.li_readonly = 1;
		snprintf(what, sizeof(what), "read-only MAP_FILE of a %lld-byte file", bad[i]);
		xioctl(what, ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	}
	expect_not_mapped("GET_MINOR after the refused maps", a.p);
	/* The smallest good size. */
	if (make_file(a.p, 512))
		return;
	n = map_ok("MAP_FILE of a 512-byte file", a.p, 0, NULL);
	if (n)
		unmap_ok("unmap", n);
}

static void c_einval_lofi_on_lofi(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a"), lnk = sp("lofi-link"), dev;
	int n;

	if (make_file(a.p, MiB))
		return;
	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		return;
	dev = devpath_of(n);
	li_init(&li, dev.p);
	xioctl("MAP_FILE of /dev/lofi/N", ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	li_init(&li, dev.p);
	li.li_readonly = 1;
	xioctl("read-only MAP_FILE of /dev/lofi/N", ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	li_init(&li, dev.p);
	li.li_minor = n + 1 <= max_minor ? n + 1 : 1;
	if (li.li_minor != (uint32_t)n)
		xioctl("MAP_FILE_MINOR of /dev/lofi/N", ctlfd, LOFI_MAP_FILE_MINOR, &li, EINVAL);
	unlink(lnk.p);
	if (symlink(dev.p, lnk.p) < 0) {
		failf("setup: symlink: %s", ename(errno));
	} else {
		li_init(&li, lnk.p);
		xioctl("MAP_FILE of a symlink to /dev/lofi/N", ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	}
	unlink(lnk.p);
	expect_not_mapped("GET_MINOR of /dev/lofi/N", dev.p);
	unmap_ok("unmap", n);
}

static void c_einval_minor_zero(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a");

	if (make_file(a.p, MiB))
		return;
	map_minor("MAP_FILE_MINOR 0", a.p, 0, EINVAL);
	li_init(&li, NULL);
	li.li_minor = 0;
	xioctl("GET_FILENAME 0", ctlfd, LOFI_GET_FILENAME, &li, EINVAL);
	expect_not_mapped("GET_MINOR after MAP_FILE_MINOR 0", a.p);
}

/* ---------------------------------------------------------------------- */
/* ERANGE, ENOENT, lookup errors                                          */

static void c_erange(void)
{
	path_t a = sp("a"), dev;
	char what[96];
	long n;

	if (make_file(a.p, MiB))
		return;
	snprintf(what, sizeof(what), "MAP_FILE_MINOR max+1 (%d)", max_minor + 1);
	map_minor(what, a.p, max_minor + 1, ERANGE);
	map_minor("MAP_FILE_MINOR 65537", a.p, 65537, ERANGE);
	map_minor("MAP_FILE_MINOR 0xffffffff", a.p, -1, ERANGE);
	expect_not_mapped("GET_MINOR after the refused maps", a.p);
	/* The largest N is usable. */
	snprintf(what, sizeof(what), "MAP_FILE_MINOR max (%d)", max_minor);
	n = map_minor(what, a.p, max_minor, 0);
	if (n <= 0)
		return;
	CHECK(n == max_minor, "%s: returned %ld", what, n);
	dev = devpath_of(max_minor);
	CHECK(wait_node(dev.p, 1, 10), "%s: %s is not a block device", what, dev.p);
	unmap_ok("unmap max", (int)n);
}

static void c_enoent(void)
{
	struct lofi_ioctl li;
	path_t missing = sp("missing"), a = sp("a");

	unlink(missing.p);
	if (make_file(a.p, MiB))
		return;
	li_init(&li, missing.p);
	xioctl("MAP_FILE of a missing file", ctlfd, LOFI_MAP_FILE, &li, ENOENT);
	map_minor("MAP_FILE_MINOR 1 of a missing file", missing.p, 1, ENOENT);
	li_init(&li, "/nonexistent-dir/file");
	xioctl("MAP_FILE in a missing directory", ctlfd, LOFI_MAP_FILE, &li, ENOENT);
	li_init(&li, missing.p);
	xioctl("GET_MINOR of a missing file", ctlfd, LOFI_GET_MINOR, &li, ENOENT);
	li_init(&li, a.p);
	xioctl("GET_MINOR of an unmapped file", ctlfd, LOFI_GET_MINOR, &li, ENOENT);
	li_init(&li, missing.p);
	xioctl("UNMAP_FILE of a missing file", ctlfd, LOFI_UNMAP_FILE, &li, ENOENT);
	li_init(&li, a.p);
	xioctl("UNMAP_FILE of an unmapped file", ctlfd, LOFI_UNMAP_FILE, &li, ENOENT);
	expect_unmapped("GET_FILENAME 1", 1);
}

static void c_lookup_errors(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a"), l1 = sp("loop1"), l2 = sp("loop2");
	char p[PATH_MAX + 320], name[300];

	if (make_file(a.p, MiB))
		return;
	snprintf(p, sizeof(p), "%s/x", a.p);
	li_init(&li, p);
	xioctl("MAP_FILE of FILE/x", ctlfd, LOFI_MAP_FILE, &li, ENOTDIR);
	unlink(l1.p);
	unlink(l2.p);
	if (symlink(l2.p, l1.p) < 0 || symlink(l1.p, l2.p) < 0) {
		failf("setup: symlink: %s", ename(errno));
	} else {
		li_init(&li, l1.p);
		xioctl("MAP_FILE of a symlink loop", ctlfd, LOFI_MAP_FILE, &li, ELOOP);
	}
	unlink(l1.p);
	unlink(l2.p);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	snprintf(p, sizeof(p), "%s/%s", scratch, name);
	li_init(&li, p);
	xioctl("MAP_FILE with a 299-byte path component", ctlfd, LOFI_MAP_FILE, &li, ENAMETOOLONG);
}

/* ---------------------------------------------------------------------- */
/* Credentials: EACCES and the read-only fallback                         */

/*
 * Runs in a child that dropped to uid 65534. It keeps FD_RW, the control
 * fd root opened for writing, so the map commands pass the EPERM check and
 * reach the path lookup and open, which use the caller's credentials.
 */
static void nobody_checks(int fd_rw, const char *secret, const char *public_file,
			  const char *mine, const char *hidden)
{
	struct lofi_ioctl li;
	int fd;
	long n;

	if (access(mine, R_OK | W_OK) < 0) {
		failf("setup: uid %d cannot reach %s (%s): its parent directories must be searchable",
		      NOBODY, mine, ename(errno));
		return;
	}
	fd = open(CTL_PATH, O_RDWR);
	expect_errno("non-root open " CTL_PATH " O_RDWR", fd, errno, EACCES);
	if (fd >= 0)
		close(fd);
	fd = open(CTL_PATH, O_RDONLY);
	if (!expect_errno("non-root open " CTL_PATH " O_RDONLY", fd, errno, 0))
		return;
	li_init(&li, NULL);
	if (xioctl("non-root GET_MAXMINOR", fd, LOFI_GET_MAXMINOR, &li, 0) == 0)
		CHECK(li.li_minor == (uint32_t)want_max, "non-root GET_MAXMINOR: got %u want %d",
		      li.li_minor, want_max);
	li_init(&li, mine);
	xioctl("non-root MAP_FILE of its own file on O_RDONLY fd", fd, LOFI_MAP_FILE, &li, EPERM);
	close(fd);

	li_init(&li, hidden);
	xioctl("non-root MAP_FILE of a file in a 0700 root directory", fd_rw, LOFI_MAP_FILE, &li, EACCES);
	/* The map fields are checked before the path is looked at. */
	li_init(&li, hidden);
	li.li_offset = 100;
	xioctl("non-root MAP_FILE of a file in a 0700 root directory, li_offset 100", fd_rw, LOFI_MAP_FILE,
	       &li, EINVAL);
	/* A region is checked against the file, once it is open: after the lookup. */
	li_init(&li, hidden);
	li.li_offset = 1ULL << 40;
	xioctl("non-root MAP_FILE of a file in a 0700 root directory, li_offset 2^40", fd_rw, LOFI_MAP_FILE,
	       &li, EACCES);
	li_init(&li, secret);
	xioctl("non-root MAP_FILE of a root-owned 0600 file", fd_rw, LOFI_MAP_FILE, &li, EACCES);
	li_init(&li, secret);
	li.li_readonly = 1;
	xioctl("non-root read-only MAP_FILE of a root-owned 0600 file", fd_rw, LOFI_MAP_FILE, &li, EACCES);

	/* Readable but not writable: the read-write open fails, read-only is used. */
	li_init(&li, public_file);
	n = xioctl("non-root MAP_FILE of a root-owned 0644 file", fd_rw, LOFI_MAP_FILE, &li, 0);
	if (n > 0) {
		CHECK(li.li_readonly == 1, "read-only fallback: li_readonly got %u want 1", li.li_readonly);
		CHECK(unmap_retry(fd_rw, (int)n, NULL, NULL) == 0, "non-root unmap of the fallback mapping failed");
	}
	/* Its own file maps read-write. */
	li_init(&li, mine);
	n = xioctl("non-root MAP_FILE of its own 0600 file", fd_rw, LOFI_MAP_FILE, &li, 0);
	if (n > 0) {
		CHECK(li.li_readonly == 0, "non-root map of its own file: li_readonly got %u want 0",
		      li.li_readonly);
		CHECK(unmap_retry(fd_rw, (int)n, NULL, NULL) == 0, "non-root unmap of its own mapping failed");
	}
}

static void c_credentials(void)
{
	path_t pub = sp("pub"), priv = sp("priv");
	path_t secret = sp("pub/secret"), public_file = sp("pub/public"), mine = sp("pub/mine"),
	       hidden = sp("priv/file");
	pid_t pid;
	int status;

	mkdir(pub.p, 0755);
	mkdir(priv.p, 0700);
	if (chmod(pub.p, 0755) || chmod(priv.p, 0700) || make_file(secret.p, MiB) ||
	    make_file(public_file.p, MiB) || make_file(mine.p, MiB) || make_file(hidden.p, MiB))
		return;
	if (chmod(public_file.p, 0644) || chown(mine.p, NOBODY, NOBODY)) {
		failf("setup: chmod/chown: %s", ename(errno));
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		alarm(60);
		if (drop_privileges() == 0)
			nobody_checks(ctlfd, secret.p, public_file.p, mine.p, hidden.p);
		fflush(stdout);
		_exit(cur_failed);
	}
	if (pid < 0) {
		failf("setup: fork: %s", ename(errno));
		return;
	}
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		cur_failed = 1;
		if (!WIFEXITED(status))
			failf("the uid-%d child died (status 0x%x)", NOBODY, status);
	}
	expect_not_mapped("GET_MINOR of the root-owned 0600 file", secret.p);
}

/* ---------------------------------------------------------------------- */
/* Read-only mappings, EBUSY, EEXIST, ENXIO                               */

/* The disk behind N is read-only: BLKROGET, sysfs ro, and writes fail. */
static void check_disk_readonly(const char *what, int n, int want_ro)
{
	path_t dev = devpath_of(n);
	char p[64];
	long long ro_sysfs = -1;
	int ro = -1, fd;
	char *buf = alloc_aligned(4096);

	if (!buf)
		return;
	fd = open(dev.p, O_RDONLY);
	if (expect_errno("open the disk O_RDONLY", fd, errno, 0)) {
		if (xioctl("BLKROGET", fd, BLKROGET, &ro, 0) == 0)
			CHECK(ro == want_ro, "%s: BLKROGET: got %d want %d", what, ro, want_ro);
		close(fd);
	}
	snprintf(p, sizeof(p), "/sys/block/lofi%d/ro", n);
	if (read_sysfs_ll(p, &ro_sysfs) < 0)
		failf("%s: cannot read %s", what, p);
	else
		CHECK(ro_sysfs == want_ro, "%s: %s: got %lld want %d", what, p, ro_sysfs, want_ro);

	if (!want_ro) {
		free(buf);
		return;
	}
	/* Either the open for writing or the write itself is refused. */
	fd = open(dev.p, O_RDWR | O_DIRECT);
	if (fd < 0) {
		CHECK(errno == EROFS || errno == EACCES || errno == EPERM,
		      "%s: open O_RDWR: got %s want success, EROFS, EACCES or EPERM", what, ename(errno));
	} else {
		ssize_t w;

		memset(buf, 0xEE, 4096);
		errno = 0;
		w = pwrite(fd, buf, 4096, 0);
		CHECK(w < 0 && (errno == EPERM || errno == EROFS),
		      "%s: write to a read-only disk: got %zd (%s) want EPERM or EROFS", what, w,
		      ename(errno));
		close(fd);
	}
	free(buf);
}

static void c_readonly_flag(void)
{
	struct lofi_ioctl li, q;
	path_t a = sp("a");
	char *buf = malloc(4096);
	int n, i;

	if (!buf || make_file_filled(a.p, MiB, 0x11, MiB))
		goto out;
	n = map_ok("MAP_FILE with li_readonly=1", a.p, 1, &li);
	if (!n)
		goto out;
	li_init(&q, NULL);
	q.li_minor = n;
	if (xioctl("GET_FILENAME of a read-only mapping", ctlfd, LOFI_GET_FILENAME, &q, 0) == 0) {
		CHECK(q.li_readonly == 1, "GET_FILENAME: li_readonly got %u want 1", q.li_readonly);
		check_mapping_fields("GET_FILENAME of a read-only mapping", &q);
	}
	li_init(&q, a.p);
	if (xioctl("GET_MINOR of a read-only mapping", ctlfd, LOFI_GET_MINOR, &q, 0) == 0) {
		CHECK(q.li_readonly == 1, "GET_MINOR: li_readonly got %u want 1", q.li_readonly);
		check_mapping_fields("GET_MINOR of a read-only mapping", &q);
	}
	check_disk_readonly("read-only mapping", n, 1);
	unmap_ok("unmap", n);
	/* The backing file is untouched. */
	if (read_file_at(a.p, buf, 4096, 0) == 0) {
		for (i = 0; i < 4096 && buf[i] == 0x11; i++)
			;
		CHECK(i == 4096, "the backing file of a read-only mapping changed at byte %d", i);
	}

	/* And a read-write mapping is not read-only. */
	n = map_ok("MAP_FILE with li_readonly=0", a.p, 0, &li);
	if (!n)
		goto out;
	CHECK(li.li_readonly == 0, "read-write MAP_FILE: li_readonly got %u want 0", li.li_readonly);
	check_disk_readonly("read-write mapping", n, 0);
	unmap_ok("unmap", n);
out:
	free(buf);
}

static void c_readonly_twice(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a");
	int n1, n2;

	if (make_file(a.p, MiB))
		return;
	n1 = map_ok("first read-only MAP_FILE", a.p, 1, NULL);
	n2 = map_ok("second read-only MAP_FILE of the same file", a.p, 1, NULL);
	CHECK(!n1 || !n2 || n1 != n2, "both read-only mappings got N=%d", n1);
	li_init(&li, a.p);
	xioctl("read-write MAP_FILE while mapped read-only", ctlfd, LOFI_MAP_FILE, &li, EBUSY);
	if (n1)
		unmap_ok("unmap first", n1);
	if (n2)
		unmap_ok("unmap second", n2);
	n1 = map_ok("read-write MAP_FILE", a.p, 0, NULL);
	if (!n1)
		return;
	li_init(&li, a.p);
	li.li_readonly = 1;
	xioctl("read-only MAP_FILE while mapped read-write", ctlfd, LOFI_MAP_FILE, &li, EBUSY);
	unmap_ok("unmap", n1);
}

static void c_ebusy_same_file(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a"), hard = sp("a-hardlink"), soft = sp("a-symlink");
	char alias[PATH_MAX];
	int n;

	if (make_file(a.p, MiB))
		return;
	unlink(hard.p);
	unlink(soft.p);
	if (link(a.p, hard.p) < 0 || symlink(a.p, soft.p) < 0) {
		failf("setup: link: %s", ename(errno));
		return;
	}
	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		return;
	li_init(&li, a.p);
	xioctl("MAP_FILE of the same path again", ctlfd, LOFI_MAP_FILE, &li, EBUSY);
	li_init(&li, hard.p);
	xioctl("MAP_FILE of a hard link to it", ctlfd, LOFI_MAP_FILE, &li, EBUSY);
	li_init(&li, soft.p);
	xioctl("MAP_FILE of a symlink to it", ctlfd, LOFI_MAP_FILE, &li, EBUSY);
	snprintf(alias, sizeof(alias), "%s/./a", scratch);
	li_init(&li, alias);
	xioctl("MAP_FILE of DIR/./a", ctlfd, LOFI_MAP_FILE, &li, EBUSY);
	if (n + 1 <= max_minor)
		map_minor("MAP_FILE_MINOR N+1 of the same file", a.p, n + 1, EBUSY);
	expect_unmapped("GET_FILENAME N+1 after the refused maps", n + 1 <= max_minor ? n + 1 : n - 1);
	unmap_ok("unmap", n);
	unlink(hard.p);
	unlink(soft.p);
}

static void c_ebusy_unmap_open(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a"), dev;
	char *buf = alloc_aligned(4096), *back = alloc_aligned(4096);
	int n, fd;

	if (!buf || !back || make_file(a.p, MiB))
		goto out;
	fd = map_open(a.p, &n, &dev);
	if (fd < 0)
		goto out;
	expect_unmap("UNMAP_FILE_MINOR of an open device", ctlfd, n, 0, 0, EBUSY);
	li_init(&li, a.p);
	xioctl("UNMAP_FILE of an open device", ctlfd, LOFI_UNMAP_FILE, &li, EBUSY);
	li_init(&li, NULL);
	li.li_minor = n;
	xioctl("GET_FILENAME after the refused unmaps", ctlfd, LOFI_GET_FILENAME, &li, 0);
	/* Still fully working. */
	memset(buf, 0x42, 4096);
	CHECK(pwrite(fd, buf, 4096, 8192) == 4096, "write after the refused unmaps: %s", ename(errno));
	CHECK(pread(fd, back, 4096, 8192) == 4096 && memcmp(buf, back, 4096) == 0,
	      "read-back after the refused unmaps differs");
	close(fd);
	unmap_ok("unmap after close", n);
out:
	free(buf);
	free(back);
}

static void c_eexist(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a"), b = sp("b");
	long m;
	int n;

	if (make_file(a.p, MiB) || make_file(b.p, MiB))
		return;
	n = map_ok("MAP_FILE a", a.p, 0, NULL);
	if (!n)
		return;
	/* (Not with a itself: the contract checks for a mapped file, EBUSY,
	 * before it checks N.) */
	map_minor("MAP_FILE_MINOR N (in use) of another file", b.p, n, EEXIST);
	li_init(&li, b.p);
	li.li_minor = n;
	li.li_readonly = 1;
	xioctl("read-only MAP_FILE_MINOR N (in use) of another file", ctlfd, LOFI_MAP_FILE_MINOR, &li, EEXIST);
	expect_not_mapped("GET_MINOR b after EEXIST", b.p);
	/* b maps fine elsewhere. */
	if (n + 1 <= max_minor) {
		m = map_minor("MAP_FILE_MINOR N+1 of b", b.p, n + 1, 0);
		if (m > 0)
			unmap_ok("unmap b", (int)m);
	}
	unmap_ok("unmap a", n);
}

static void c_enxio(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a");
	int n;

	expect_unmap("UNMAP_FILE_MINOR 1 (unmapped)", ctlfd, 1, 0, 0, ENXIO);
	expect_unmap("forced UNMAP_FILE_MINOR 1 (unmapped)", ctlfd, 1, 1, 0, ENXIO);
	expect_unmap("UNMAP_FILE_MINOR 0", ctlfd, 0, 0, 0, ENXIO);
	expect_unmap("UNMAP_FILE_MINOR max+1", ctlfd, max_minor + 1, 0, 0, ENXIO);
	expect_unmap("UNMAP_FILE_MINOR 0xffffffff", ctlfd, -1, 0, 0, ENXIO);
	expect_unmapped("GET_FILENAME 1 (unmapped)", 1);
	expect_unmapped("GET_FILENAME max (unmapped)", max_minor);
	expect_unmapped("GET_FILENAME max+1", max_minor + 1);
	expect_unmapped("GET_FILENAME 0xffffffff", -1);
	/* And N that was mapped a moment ago. */
	if (make_file(a.p, MiB))
		return;
	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		return;
	unmap_ok("unmap", n);
	expect_unmap("second UNMAP_FILE_MINOR of N", ctlfd, n, 0, 0, ENXIO);
	expect_unmapped("GET_FILENAME of an unmapped N", n);
	li_init(&li, a.p);
	xioctl("UNMAP_FILE of an unmapped file", ctlfd, LOFI_UNMAP_FILE, &li, ENOENT);
}

/* ---------------------------------------------------------------------- */
/* Success paths                                                          */

/* The disk of a writable mapping N of SIZE bytes, as sysfs and ioctls see it. */
static void check_disk(const char *what, int n, long long size)
{
	path_t dev = devpath_of(n);
	char p[96], line[256];
	long long v, major_s = -1, minor_s = -1;
	uint64_t bytes = 0;
	struct stat st;
	int ssz = 0, fd, found = 0;
	FILE *f;

	if (stat(dev.p, &st) < 0 || !S_ISBLK(st.st_mode)) {
		failf("%s: %s is not a block device", what, dev.p);
		return;
	}
	snprintf(p, sizeof(p), "/sys/block/lofi%d/dev", n);
	f = fopen(p, "r");
	if (!f || fscanf(f, "%lld:%lld", &major_s, &minor_s) != 2)
		failf("%s: cannot read %s", what, p);
	else
		CHECK(major(st.st_rdev) == major_s && minor(st.st_rdev) == minor_s,
		      "%s: %s is %u:%u but %s says %lld:%lld", what, dev.p, major(st.st_rdev),
		      minor(st.st_rdev), p, major_s, minor_s);
	if (f)
		fclose(f);
	snprintf(p, sizeof(p), "/sys/block/lofi%d/size", n);
	if (read_sysfs_ll(p, &v) < 0)
		failf("%s: cannot read %s", what, p);
	else
		CHECK(v == size / 512, "%s: %s: got %lld want %lld", what, p, v, size / 512);
	fd = open(dev.p, O_RDONLY);
	if (!expect_errno("open the disk", fd, errno, 0))
		return;
	if (xioctl("BLKGETSIZE64", fd, BLKGETSIZE64, &bytes, 0) == 0)
		CHECK(bytes == (uint64_t)size, "%s: BLKGETSIZE64: got %" PRIu64 " want %lld", what, bytes,
		      size);
	if (xioctl("BLKSSZGET", fd, BLKSSZGET, &ssz, 0) == 0)
		CHECK(ssz == 512, "%s: BLKSSZGET: got %d want 512", what, ssz);
	close(fd);
	/* A writable mapping advertises a write cache (so flushes reach it). */
	snprintf(p, sizeof(p), "/sys/block/lofi%d/queue/write_cache", n);
	f = fopen(p, "r");
	if (!f || !fgets(line, sizeof(line), f))
		failf("%s: cannot read %s", what, p);
	else
		CHECK(strncmp(line, "write back", 10) == 0, "%s: %s: got '%.20s' want 'write back'", what, p, line);
	if (f)
		fclose(f);
	f = fopen("/proc/diskstats", "r");
	snprintf(p, sizeof(p), " lofi%d ", n);
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, p))
			found = 1;
	if (f)
		fclose(f);
	CHECK(found, "%s: lofi%d is not in /proc/diskstats", what, n);
}

static void c_map_success(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a"), b = sp("b"), c = sp("c"), soft = sp("a-symlink");
	char alias[PATH_MAX];
	int na, nb, nc, err;
	long m;

	if (make_file(a.p, MiB) || make_file(b.p, 2 * MiB) || make_file(c.p, 3 * MiB))
		return;
	li_init(&li, NULL);
	if (xioctl("GET_MAXMINOR", ctlfd, LOFI_GET_MAXMINOR, &li, 0) == 0)
		CHECK(li.li_minor == (uint32_t)want_max, "GET_MAXMINOR: got %u want %d", li.li_minor, want_max);

	/* With nothing mapped, MAP_FILE takes the lowest N: 1, then 2. */
	na = map_ok("MAP_FILE a", a.p, 0, &li);
	if (!na)
		return;
	CHECK(na == 1, "MAP_FILE a: got N=%d want 1 (the lowest free)", na);
	CHECK(li.li_readonly == 0, "MAP_FILE a: li_readonly got %u want 0", li.li_readonly);
	check_disk("a", na, MiB);
	nb = map_ok("MAP_FILE b", b.p, 0, NULL);
	if (nb) {
		CHECK(nb == 2, "MAP_FILE b: got N=%d want 2", nb);
		check_disk("b", nb, 2 * MiB);
	}

	li_init(&li, NULL);
	li.li_minor = na;
	if (xioctl("GET_FILENAME a", ctlfd, LOFI_GET_FILENAME, &li, 0) == 0) {
		CHECK(strcmp(li.li_filename, a.p) == 0, "GET_FILENAME: got '%.64s' want '%s'", li.li_filename,
		      a.p);
		CHECK(strcmp(li.li_devpath, devpath_of(na).p) == 0, "GET_FILENAME: li_devpath got '%.64s'",
		      li.li_devpath);
		CHECK(li.li_readonly == 0, "GET_FILENAME: li_readonly got %u want 0", li.li_readonly);
		check_mapping_fields("GET_FILENAME a", &li);
	}
	li_init(&li, a.p);
	if (xioctl("GET_MINOR a", ctlfd, LOFI_GET_MINOR, &li, 0) == 0) {
		CHECK(li.li_minor == (uint32_t)na, "GET_MINOR a: got %u want %d", li.li_minor, na);
		CHECK(strcmp(li.li_devpath, devpath_of(na).p) == 0, "GET_MINOR: li_devpath got '%.64s'",
		      li.li_devpath);
		check_mapping_fields("GET_MINOR a", &li);
	}
	/* Another path to the same file also finds the mapping. */
	unlink(soft.p);
	if (symlink(a.p, soft.p) == 0) {
		li_init(&li, soft.p);
		if (xioctl("GET_MINOR via a symlink to a", ctlfd, LOFI_GET_MINOR, &li, 0) == 0)
			CHECK(li.li_minor == (uint32_t)na, "GET_MINOR via symlink: got %u want %d", li.li_minor,
			      na);
	}
	if (nb) {
		li_init(&li, b.p);
		if (xioctl("GET_MINOR b", ctlfd, LOFI_GET_MINOR, &li, 0) == 0)
			CHECK(li.li_minor == (uint32_t)nb, "GET_MINOR b: got %u want %d", li.li_minor, nb);
	}

	/* Unmap by name: returns 0 and N. */
	err = unmap_retry(ctlfd, 0, a.p, &li);
	if (expect_errno("UNMAP_FILE a", err ? -1 : 0, err, 0)) {
		CHECK(li.li_minor == (uint32_t)na, "UNMAP_FILE: li_minor got %u want %d", li.li_minor, na);
		CHECK(wait_node(devpath_of(na).p, 0, 10), "/dev/lofi/%d still exists after UNMAP_FILE", na);
		CHECK(wait_disk(na, 0, 10), "/sys/block/lofi%d still exists after UNMAP_FILE", na);
		expect_unmapped("GET_FILENAME after UNMAP_FILE", na);
	}
	/* The freed lowest N is reused. */
	nc = map_ok("MAP_FILE c", c.p, 0, NULL);
	if (nc) {
		CHECK(nc == na, "MAP_FILE c: got N=%d want %d (the lowest free)", nc, na);
		check_disk("c", nc, 3 * MiB);
		unmap_ok("unmap c by N", nc);
	}
	if (nb)
		unmap_ok("unmap b by N", nb);

	/* MAP_FILE_MINOR; the name is stored as given. */
	snprintf(alias, sizeof(alias), "%s/./a", scratch);
	m = map_minor("MAP_FILE_MINOR 3 of DIR/./a", alias, 3 <= max_minor ? 3 : max_minor, 0);
	if (m > 0) {
		CHECK(m == (3 <= max_minor ? 3 : max_minor), "MAP_FILE_MINOR returned %ld", m);
		li_init(&li, NULL);
		li.li_minor = (uint32_t)m;
		if (xioctl("GET_FILENAME", ctlfd, LOFI_GET_FILENAME, &li, 0) == 0)
			CHECK(strcmp(li.li_filename, alias) == 0,
			      "GET_FILENAME: got '%.64s' want '%s' (the name as given)", li.li_filename, alias);
		li_init(&li, a.p);
		if (xioctl("GET_MINOR by the plain path", ctlfd, LOFI_GET_MINOR, &li, 0) == 0)
			CHECK(li.li_minor == (uint32_t)m, "GET_MINOR: got %u want %ld", li.li_minor, m);
		err = unmap_retry(ctlfd, 0, alias, &li);
		if (expect_errno("UNMAP_FILE by the name as given", err ? -1 : 0, err, 0))
			CHECK(li.li_minor == (uint32_t)m, "UNMAP_FILE: li_minor got %u want %ld", li.li_minor, m);
	}
	unlink(soft.p);
}

static void c_rename_after_map(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a"), moved = sp("a-moved"), dev;
	char *buf = alloc_aligned(4096), *back = alloc_aligned(4096);
	int n, fd = -1;

	if (!buf || !back || make_file(a.p, MiB))
		goto out;
	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		goto out;
	dev = devpath_of(n);
	unlink(moved.p);
	if (rename(a.p, moved.p) < 0 || make_file_filled(a.p, MiB, 0x77, MiB)) {
		failf("setup: rename/replace: %s", ename(errno));
		goto unmap;
	}
	/* The mapping keeps the name it was given and the file it opened. */
	li_init(&li, NULL);
	li.li_minor = n;
	if (xioctl("GET_FILENAME after rename", ctlfd, LOFI_GET_FILENAME, &li, 0) == 0)
		CHECK(strcmp(li.li_filename, a.p) == 0, "GET_FILENAME after rename: got '%.64s' want '%s'",
		      li.li_filename, a.p);
	fd = open(dev.p, O_RDWR | O_DIRECT);
	if (!expect_errno("open /dev/lofi/N", fd, errno, 0))
		goto unmap;
	memset(buf, 0x5C, 4096);
	CHECK(pwrite(fd, buf, 4096, 4096) == 4096, "write: %s", ename(errno));
	CHECK(fsync(fd) == 0, "fsync: %s", ename(errno));
	CHECK(pread(fd, back, 4096, 0) == 4096, "read: %s", ename(errno));
	CHECK(back[0] == 0 && back[4095] == 0, "the device reads the replacement file, not the mapped one");
	close(fd);
	if (read_file_at(moved.p, back, 4096, 4096) == 0)
		CHECK(memcmp(buf, back, 4096) == 0, "the write did not reach the renamed backing file");
	if (read_file_at(a.p, back, 4096, 4096) == 0)
		CHECK(back[0] == 0x77, "the write went to the file now at the old path");
unmap:
	unmap_ok("unmap", n);
out:
	free(buf);
	free(back);
}

static void c_shrink(void)
{
	path_t a = sp("a"), dev;
	char *buf = alloc_aligned(4096);
	struct stat st;
	int n, fd, i;

	if (!buf || make_file_filled(a.p, MiB, 0xAB, MiB))
		goto out;
	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		goto out;
	dev = devpath_of(n);
	fd = open(dev.p, O_RDWR | O_DIRECT);
	if (!expect_errno("open /dev/lofi/N", fd, errno, 0))
		goto unmap;
	if (truncate(a.p, MiB / 2) < 0) {
		failf("setup: truncate: %s", ename(errno));
		goto close;
	}
	/* Past the new end: zeros. */
	if (pread(fd, buf, 4096, MiB - 4096) == 4096) {
		for (i = 0; i < 4096 && buf[i] == 0; i++)
			;
		CHECK(i == 4096, "read past the shrunk end: byte %d is 0x%02x, want 0", i, (unsigned char)buf[i]);
	} else {
		failf("read past the shrunk end: %s", ename(errno));
	}
	/* Before it: the data. */
	if (pread(fd, buf, 4096, 0) == 4096)
		CHECK((unsigned char)buf[0] == 0xAB && (unsigned char)buf[4095] == 0xAB,
		      "read before the shrunk end lost the data");
	else
		failf("read before the shrunk end: %s", ename(errno));
	/* Writing the last sector extends the file again. */
	memset(buf, 0xCD, 512);
	CHECK(pwrite(fd, buf, 512, MiB - 512) == 512, "write of the last sector: %s", ename(errno));
	CHECK(fsync(fd) == 0, "fsync: %s", ename(errno));
	if (stat(a.p, &st) == 0)
		CHECK(st.st_size == MiB, "backing file size after writing its last sector: %lld want %lld",
		      (long long)st.st_size, MiB);
	if (read_file_at(a.p, buf, 512, MiB - 512) == 0)
		CHECK((unsigned char)buf[0] == 0xCD && (unsigned char)buf[511] == 0xCD,
		      "the last sector of the backing file is not what was written");
close:
	close(fd);
unmap:
	unmap_ok("unmap", n);
out:
	free(buf);
}

/* ---------------------------------------------------------------------- */
/* li_cleanup                                                             */

static void c_cleanup(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a"), dev;
	char *buf = alloc_aligned(4096), *back = alloc_aligned(4096);
	int n, fd, err;
	long m;

	if (!buf || !back || make_file(a.p, MiB))
		goto out;
	fd = map_open(a.p, &n, &dev);
	if (fd < 0)
		goto out;
	err = unmap_raw(ctlfd, n, 0, 1, &li);
	expect_errno("UNMAP_FILE_MINOR with li_cleanup of an open device", err ? -1 : 0, err, 0);
	CHECK(li.li_minor == (uint32_t)n, "li_cleanup unmap: li_minor got %u want %d", li.li_minor, n);
	/* Still working until the last close. */
	memset(buf, 0x3C, 4096);
	CHECK(pwrite(fd, buf, 4096, 3 * 512) == 4096, "write after the li_cleanup unmap: %s", ename(errno));
	CHECK(pread(fd, back, 4096, 3 * 512) == 4096 && memcmp(buf, back, 4096) == 0,
	      "read-back after the li_cleanup unmap differs (%s)", ename(errno));
	CHECK(fsync(fd) == 0, "fsync after the li_cleanup unmap: %s", ename(errno));
	CHECK(wait_node(dev.p, 1, 0), "%s vanished before its last close", dev.p);
	close(fd);
	/* Detached at the last close. */
	CHECK(wait_node(dev.p, 0, 10), "%s still exists 10 s after its last close", dev.p);
	CHECK(wait_disk(n, 0, 10), "/sys/block/lofi%d still exists 10 s after its last close", n);
	expect_unmapped("GET_FILENAME after the last close", n);
	if (read_file_at(a.p, back, 4096, 3 * 512) == 0)
		CHECK(memcmp(buf, back, 4096) == 0, "the write before the last close is not in the backing file");
	m = map_minor_when_free("MAP_FILE_MINOR N (free again after the last close)", a.p, n, 10);
	if (m > 0)
		unmap_ok("unmap", (int)m);

	/* By name too. */
	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		goto out;
	fd = open(dev.p, O_RDONLY);
	if (expect_errno("open /dev/lofi/N", fd, errno, 0)) {
		li_init(&li, a.p);
		li.li_cleanup = 1;
		if (xioctl("UNMAP_FILE with li_cleanup of an open device", ctlfd, LOFI_UNMAP_FILE, &li, 0) == 0)
			CHECK(li.li_minor == (uint32_t)n, "UNMAP_FILE: li_minor got %u want %d", li.li_minor, n);
		close(fd);
		CHECK(wait_disk(n, 0, 10), "/sys/block/lofi%d still exists 10 s after its last close", n);
	} else {
		unmap_ok("unmap", n);
	}
	/* li_cleanup on a device nobody has open: removed (at once, or at
	 * the close of a transient opener such as udev). */
	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (n) {
		expect_unmap("UNMAP_FILE_MINOR with li_cleanup of a closed device", ctlfd, n, 0, 1, 0);
		CHECK(wait_disk(n, 0, 10), "/sys/block/lofi%d still exists after the unmap", n);
	}
out:
	free(buf);
	free(back);
}

/* ---------------------------------------------------------------------- */
/* LOFI_DKIOCSTATE and forced unmap                                       */

static void c_dkiocstate(void)
{
	path_t a = sp("a"), dev;
	uint32_t state;
	int n, fd;

	if (make_file(a.p, MiB))
		return;
	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		return;
	dev = devpath_of(n);
	fd = open(dev.p, O_RDONLY);
	if (!expect_errno("open /dev/lofi/N", fd, errno, 0))
		goto unmap;
	state = LOFI_DKIO_NONE;
	if (xioctl("LOFI_DKIOCSTATE(LOFI_DKIO_NONE)", fd, LOFI_DKIOCSTATE, &state, 0) == 0)
		CHECK(state == LOFI_DKIO_INSERTED,
		      "LOFI_DKIOCSTATE(LOFI_DKIO_NONE): state %u want LOFI_DKIO_INSERTED", state);
	state = LOFI_DKIO_EJECTED;
	if (xioctl("LOFI_DKIOCSTATE(LOFI_DKIO_EJECTED)", fd, LOFI_DKIOCSTATE, &state, 0) == 0)
		CHECK(state == LOFI_DKIO_INSERTED,
		      "LOFI_DKIOCSTATE(LOFI_DKIO_EJECTED): state %u want LOFI_DKIO_INSERTED", state);
	xioctl("LOFI_DKIOCSTATE with a NULL arg", fd, LOFI_DKIOCSTATE, NULL, EFAULT);
	state = LOFI_DKIO_NONE;
	xioctl("LOFI_DKIOCSTATE encoded with a 64-bit arg", fd, _IOWR(LOFI_IOC_MAGIC, 0x10, uint64_t), &state,
	       ENOTTY);
	xioctl("an unknown lofi ioctl on the disk", fd, _IOWR(LOFI_IOC_MAGIC, 0x11, uint32_t), &state, ENOTTY);
	xioctl("LOFI_MAP_FILE on the disk", fd, LOFI_MAP_FILE, &state, ENOTTY);
	close(fd);
unmap:
	unmap_ok("unmap", n);
}

static void c_forced_unmap(void)
{
	struct lofi_ioctl li;
	struct child_result res;
	path_t a = sp("a"), b = sp("b"), dev;
	char *buf = alloc_aligned(4096), *back = alloc_aligned(4096);
	uint32_t state;
	pid_t pid = -1;
	int n, fd = -1, p[2] = { -1, -1 }, fd2, err;
	char ready;
	long m;

	if (!buf || !back || make_file(a.p, MiB) || make_file(b.p, MiB))
		goto out;
	fd = map_open(a.p, &n, &dev);
	if (fd < 0)
		goto out;
	/* Data written and flushed before the forced unmap must survive it. */
	memset(buf, 0x5A, 4096);
	CHECK(pwrite(fd, buf, 4096, 0) == 4096, "write before the forced unmap: %s", ename(errno));
	CHECK(fsync(fd) == 0, "fsync before the forced unmap: %s", ename(errno));

	/* A child blocks in LOFI_DKIOCSTATE(LOFI_DKIO_INSERTED) on its own fd. */
	if (pipe(p) < 0) {
		failf("setup: pipe: %s", ename(errno));
		goto force;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int cfd = open(dev.p, O_RDONLY);

		alarm(60);
		res.state = LOFI_DKIO_INSERTED;
		if (cfd < 0) {
			res.ret = -1;
			res.err = errno;
			res.state = 0xffffffff;
		} else {
			if (write(p[1], "R", 1) != 1)
				_exit(2);
			res.ret = ioctl(cfd, LOFI_DKIOCSTATE, &res.state);
			res.err = res.ret < 0 ? errno : 0;
		}
		if (write(p[1], &res, sizeof(res)) != sizeof(res))
			_exit(2);
		_exit(0);
	}
	if (pid < 0) {
		failf("setup: fork: %s", ename(errno));
		goto force;
	}
	close(p[1]);
	p[1] = -1;
	if (read_timeout(p[0], &ready, 1, 20) < 0) {
		if (read_timeout(p[0], &res, sizeof(res), 1) == 0)
			failf("the LOFI_DKIOCSTATE child could not open %s: %s", dev.p, ename(res.err));
		else
			failf("the LOFI_DKIOCSTATE child did not start");
		goto force;
	}
	CHECK(wait_sleeping(pid, 10), "the LOFI_DKIOCSTATE child never went to sleep");
	msleep(300);
	CHECK(!readable_now(p[0]), "LOFI_DKIOCSTATE(LOFI_DKIO_INSERTED) returned while the device is mapped");

force:
	err = unmap_raw(ctlfd, n, 1, 0, &li);
	expect_errno("forced UNMAP_FILE_MINOR of an open device", err ? -1 : 0, err, 0);
	CHECK(li.li_minor == (uint32_t)n, "forced unmap: li_minor got %u want %d", li.li_minor, n);
	if (pid > 0) {
		if (read_timeout(p[0], &res, sizeof(res), 20) < 0) {
			failf("the LOFI_DKIOCSTATE waiter did not wake within 20 s of the forced unmap");
		} else if (expect_errno("the waiter's LOFI_DKIOCSTATE(LOFI_DKIO_INSERTED)", res.ret, res.err, 0)) {
			CHECK(res.state == LOFI_DKIO_DEV_GONE,
			      "the waiter's LOFI_DKIOCSTATE: state %u want LOFI_DKIO_DEV_GONE (%d)", res.state,
			      LOFI_DKIO_DEV_GONE);
		}
		reap(pid);
		pid = -1;
	}
	if (fd < 0)
		goto out;

	/* Everything on the old fd now fails with EIO. */
	errno = 0;
	CHECK(pread(fd, back, 4096, 0) < 0 && errno == EIO, "read after the forced unmap: got %s want EIO",
	      ename(errno));
	errno = 0;
	CHECK(pwrite(fd, buf, 4096, 8192) < 0 && errno == EIO, "write after the forced unmap: got %s want EIO",
	      ename(errno));
	state = LOFI_DKIO_NONE;
	if (xioctl("LOFI_DKIOCSTATE(LOFI_DKIO_NONE) after the forced unmap", fd, LOFI_DKIOCSTATE, &state,
		   0) == 0)
		CHECK(state == LOFI_DKIO_DEV_GONE,
		      "LOFI_DKIOCSTATE(LOFI_DKIO_NONE) after the forced unmap: %u want LOFI_DKIO_DEV_GONE", state);
	state = LOFI_DKIO_INSERTED;
	if (xioctl("LOFI_DKIOCSTATE(LOFI_DKIO_INSERTED) after the forced unmap", fd, LOFI_DKIOCSTATE,
		   &state, 0) == 0)
		CHECK(state == LOFI_DKIO_DEV_GONE, "LOFI_DKIOCSTATE(LOFI_DKIO_INSERTED) after the forced unmap: %u",
		      state);

	/* New opens fail; the device is no longer a mapping but N is taken. */
	fd2 = open(dev.p, O_RDONLY);
	expect_errno("open of a force-unmapped device", fd2, errno, ENXIO);
	if (fd2 >= 0)
		close(fd2);
	expect_unmapped("GET_FILENAME of a force-unmapped N", n);
	expect_unmap("UNMAP_FILE_MINOR of a force-unmapped N", ctlfd, n, 0, 0, ENXIO);
	expect_unmap("forced UNMAP_FILE_MINOR again", ctlfd, n, 1, 0, ENXIO);
	li_init(&li, a.p);
	xioctl("UNMAP_FILE of the force-unmapped file", ctlfd, LOFI_UNMAP_FILE, &li, ENOENT);
	expect_not_mapped("GET_MINOR of the force-unmapped file", a.p);
	map_minor("MAP_FILE_MINOR of a force-unmapped N still open", b.p, n, EEXIST);
	/* The file itself is free: it maps again, at another N. */
	m = map_ok("MAP_FILE of the force-unmapped file", a.p, 0, NULL);
	if (m) {
		CHECK(m != n, "MAP_FILE got the force-unmapped N=%d while it is still open", n);
		unmap_ok("unmap the new mapping", (int)m);
	}
	/* The flushed data is in the backing file. */
	if (read_file_at(a.p, back, 4096, 0) == 0)
		CHECK(memcmp(buf, back, 4096) == 0, "data flushed before the forced unmap is not in the file");

	/* The last close removes the disk and frees N. */
	CHECK(wait_node(dev.p, 1, 0), "%s vanished before its last close", dev.p);
	close(fd);
	fd = -1;
	CHECK(wait_node(dev.p, 0, 10), "%s still exists 10 s after its last close", dev.p);
	CHECK(wait_disk(n, 0, 10), "/sys/block/lofi%d still exists 10 s after its last close", n);
	m = map_minor_when_free("MAP_FILE_MINOR N after the last close", a.p, n, 10);
	if (m > 0) {
		CHECK(wait_node(dev.p, 1, 10), "%s missing after remapping", dev.p);
		fd2 = open(dev.p, O_RDONLY | O_DIRECT);
		if (expect_errno("open the remapped N", fd2, errno, 0)) {
			CHECK(pread(fd2, back, 4096, 0) == 4096 && memcmp(buf, back, 4096) == 0,
			      "the remapped device does not read the data written before the forced unmap");
			close(fd2);
		}
		unmap_ok("unmap", (int)m);
	}
out:
	if (pid > 0)
		reap(pid);
	if (fd >= 0)
		close(fd);
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	free(buf);
	free(back);
}

static void on_sigusr1(int sig)
{
	(void)sig;
}

static void c_dkiocstate_eintr(void)
{
	struct sigaction sa;
	struct child_result res;
	path_t a = sp("a"), dev;
	uint32_t state;
	double end;
	pid_t pid;
	int n, p[2], got = 0, fd;
	char ready;

	if (make_file(a.p, MiB))
		return;
	n = map_ok("MAP_FILE", a.p, 0, NULL);
	if (!n)
		return;
	dev = devpath_of(n);
	if (pipe(p) < 0) {
		failf("setup: pipe: %s", ename(errno));
		goto unmap;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int cfd;

		alarm(60);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_sigusr1; /* no SA_RESTART */
		sigaction(SIGUSR1, &sa, NULL);
		cfd = open(dev.p, O_RDONLY);
		res.ret = -1;
		res.err = errno;
		res.state = LOFI_DKIO_INSERTED;
		if (cfd >= 0) {
			if (write(p[1], "R", 1) != 1)
				_exit(2);
			res.ret = ioctl(cfd, LOFI_DKIOCSTATE, &res.state);
			res.err = res.ret < 0 ? errno : 0;
			close(cfd);
		}
		if (write(p[1], &res, sizeof(res)) != sizeof(res))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	if (pid < 0) {
		failf("setup: fork: %s", ename(errno));
		close(p[0]);
		goto unmap;
	}
	if (read_timeout(p[0], &ready, 1, 20) < 0) {
		failf("the LOFI_DKIOCSTATE child did not start (cannot open %s?)", dev.p);
		goto done;
	}
	CHECK(wait_sleeping(pid, 10), "the LOFI_DKIOCSTATE child never went to sleep");
	msleep(200);
	CHECK(!readable_now(p[0]), "LOFI_DKIOCSTATE(LOFI_DKIO_INSERTED) returned while the device is mapped");
	/* Signal until the child answers (a signal before the ioctl is lost). */
	end = now() + 20;
	while (now() < end) {
		kill(pid, SIGUSR1);
		if (read_timeout(p[0], &res, sizeof(res), 1) == 0) {
			got = 1;
			break;
		}
	}
	if (!got)
		failf("LOFI_DKIOCSTATE did not return within 20 s of SIGUSR1");
	else
		expect_errno("LOFI_DKIOCSTATE interrupted by a signal", res.ret, res.err, EINTR);
	/* The device is unaffected. */
	fd = open(dev.p, O_RDONLY);
	if (expect_errno("open after EINTR", fd, errno, 0)) {
		state = LOFI_DKIO_NONE;
		if (xioctl("LOFI_DKIOCSTATE(LOFI_DKIO_NONE) after EINTR", fd, LOFI_DKIOCSTATE, &state, 0) == 0)
			CHECK(state == LOFI_DKIO_INSERTED, "state after EINTR: %u want LOFI_DKIO_INSERTED", state);
		close(fd);
	}
done:
	reap(pid);
	close(p[0]);
unmap:
	unmap_ok("unmap", n);
}

/* ---------------------------------------------------------------------- */
/* HDIO_GETGEO                                                            */

static void c_hdio_getgeo(void)
{
	/* Expected values worked out from the driver contract by hand. */
	static const struct {
		long long size;
		unsigned heads, sectors, cylinders;
	} cases[] = {
		{ 512, 1, 1, 1 },		/* smaller than a cylinder */
		{ 64 * KiB, 1, 128, 1 },	/* 128 sectors < 200 */
		{ 100 * KiB, 8, 25, 1 },	/* exactly one 100 KiB cylinder */
		{ MiB, 8, 25, 10 },		/* 2048 / 200 */
		{ 2 * MiB - 512, 8, 25, 20 },	/* 4095 / 200 */
		{ 2 * MiB, 20, 30, 6 },		/* 4096 / 600 */
		{ GiB, 20, 30, 3495 },		/* 2097152 / 600 */
		{ 32 * GiB, 20, 30, 65535 },	/* 111848 capped */
	};
	path_t a = sp("geo");
	struct hd_geometry geo;
	char what[96];
	size_t i;
	int n, fd;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (make_file(a.p, cases[i].size))
			return;
		snprintf(what, sizeof(what), "HDIO_GETGEO of a %lld-byte device", cases[i].size);
		n = map_ok("MAP_FILE", a.p, 0, NULL);
		if (!n)
			continue;
		fd = open(devpath_of(n).p, O_RDONLY);
		if (expect_errno("open /dev/lofi/N", fd, errno, 0)) {
			memset(&geo, 0xff, sizeof(geo));
			if (xioctl(what, fd, HDIO_GETGEO, &geo, 0) == 0)
				CHECK(geo.heads == cases[i].heads && geo.sectors == cases[i].sectors &&
					      geo.cylinders == cases[i].cylinders && geo.start == 0,
				      "%s: got heads %u sectors %u cylinders %u start %lu, want %u/%u/%u start 0",
				      what, geo.heads, geo.sectors, geo.cylinders, geo.start, cases[i].heads,
				      cases[i].sectors, cases[i].cylinders);
			close(fd);
		}
		unmap_ok("unmap", n);
	}
	unlink(a.p);
}

/* ---------------------------------------------------------------------- */
/* EAGAIN (needs a small lofi_max_files)                                  */

static void c_eagain(void)
{
	struct lofi_ioctl li;
	path_t extra = sp("extra"), f;
	char name[32], what[96];
	char *buf = alloc_aligned(4096), *back = alloc_aligned(4096);
	int *got = calloc(max_minor + 1, sizeof(int));
	int i, fd, m;

	if (!buf || !back || !got || make_file(extra.p, MiB))
		goto out;
	/* Every N from 1 to max is handed out in order and works. */
	for (i = 1; i <= max_minor; i++) {
		snprintf(name, sizeof(name), "fill%d", i);
		f = sp(name);
		if (make_file(f.p, 64 * KiB))
			goto unmap;
		snprintf(what, sizeof(what), "MAP_FILE #%d", i);
		got[i] = map_ok(what, f.p, 0, NULL);
		if (!got[i])
			goto unmap;
		CHECK(got[i] == i, "%s: got N=%d want %d", what, got[i], i);
		fd = open(devpath_of(got[i]).p, O_RDWR | O_DIRECT);
		if (expect_errno("open /dev/lofi/N", fd, errno, 0)) {
			memset(buf, i, 4096);
			CHECK(pwrite(fd, buf, 4096, 0) == 4096 && pread(fd, back, 4096, 0) == 4096 &&
				      memcmp(buf, back, 4096) == 0,
			      "I/O on /dev/lofi/%d failed (%s)", got[i], ename(errno));
			close(fd);
		}
	}
	li_init(&li, extra.p);
	xioctl("MAP_FILE with every N in use", ctlfd, LOFI_MAP_FILE, &li, EAGAIN);
	li_init(&li, extra.p);
	li.li_readonly = 1;
	xioctl("read-only MAP_FILE with every N in use", ctlfd, LOFI_MAP_FILE, &li, EAGAIN);
	map_minor("MAP_FILE_MINOR max+1 with every N in use", extra.p, max_minor + 1, ERANGE);
	map_minor("MAP_FILE_MINOR 1 with every N in use", extra.p, 1, EEXIST);
	expect_not_mapped("GET_MINOR after EAGAIN", extra.p);
	/* Free one in the middle: MAP_FILE takes it. */
	if (max_minor >= 2) {
		unmap_ok("unmap N=2", 2);
		got[2] = 0;
		m = map_ok("MAP_FILE after freeing N=2", extra.p, 0, NULL);
		if (m) {
			CHECK(m == 2, "MAP_FILE after freeing N=2: got N=%d", m);
			got[2] = m;
		}
	}
unmap:
	for (i = 1; i <= max_minor; i++)
		if (got && got[i])
			unmap_ok("unmap", got[i]);
out:
	free(got);
	free(buf);
	free(back);
}

/* sysfs size of mapping N in sectors, or -1. */
static long long disk_sectors(int n)
{
	char p[64];
	long long size = -1;

	snprintf(p, sizeof(p), "/sys/block/lofi%d/size", n);
	if (read_sysfs_ll(p, &size) < 0)
		return -1;
	return size;
}

/* SET_CAPACITY of N with size limit LIMIT, expecting WANT. */
static long set_capacity(const char *what, int fd, int n, uint64_t limit, int want)
{
	struct lofi_ioctl li;

	li_init(&li, NULL);
	li.li_minor = (uint32_t)n;
	li.li_sizelimit = limit;
	return xioctl(what, fd, LOFI_SET_CAPACITY, &li, want);
}

/*
 * LOFI_SET_CAPACITY: the mapping measures its file again and takes the
 * size limit given, from the same offset, while it is open; what the new
 * blocks read is the file's bytes there; the queries report the new limit;
 * every refusal leaves the size as it was.
 */
static void c_set_capacity(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a"), dev;
	uint64_t got = 0, off;
	long long before;
	int n, fd = -1;

	li_init(&li, NULL);
	li.li_minor = 1;
	xioctl("SET_CAPACITY on an O_RDONLY fd", ctlro, LOFI_SET_CAPACITY, &li, EPERM);
	xioctl("SET_CAPACITY, NULL arg", ctlfd, LOFI_SET_CAPACITY, NULL, EFAULT);
	li_init(&li, NULL);
	li.li_minor = 1;
	li.li_reserved[0] = 1;
	xioctl("SET_CAPACITY with li_reserved set", ctlfd, LOFI_SET_CAPACITY, &li, EINVAL);
	set_capacity("SET_CAPACITY of N=0", ctlfd, 0, 0, EINVAL);
	set_capacity("SET_CAPACITY of an unmapped N", ctlfd, max_minor, 0, ENXIO);
	set_capacity("SET_CAPACITY of N=max+1", ctlfd, max_minor + 1, 0, ENXIO);
	if (make_numbered_file(a.p, 3 * MiB))
		return;
	/* 1 MiB from 64 KiB on, then the file grows under the open device. */
	li_init(&li, a.p);
	li.li_offset = 65536;
	li.li_sizelimit = MiB;
	n = (int)xioctl("MAP_FILE of 1 MiB at 64 KiB", ctlfd, LOFI_MAP_FILE, &li, 0);
	if (n <= 0)
		return;
	dev = devpath_of(n);
	if (!wait_node(dev.p, 1, 10) || (fd = open(dev.p, O_RDONLY)) < 0) {
		failf("%s: %s", dev.p, ename(errno));
		goto out;
	}
	CHECK(disk_sectors(n) == MiB / 512, "size before: %lld sectors", disk_sectors(n));
	/* Refusals, each leaving the size alone. */
	set_capacity("SET_CAPACITY with a limit of no whole sector", ctlfd, n, 1000, EINVAL);
	set_capacity("SET_CAPACITY with a limit past the end", ctlfd, n, 3 * MiB, EINVAL);
	CHECK(disk_sectors(n) == MiB / 512, "size after refusals: %lld sectors", disk_sectors(n));
	/* The same limit: nothing changes. */
	set_capacity("SET_CAPACITY with the same limit", ctlfd, n, MiB, 0);
	CHECK(disk_sectors(n) == MiB / 512, "size after the same limit: %lld", disk_sectors(n));
	/* No limit: to the end of the file, 3 MiB - 64 KiB. */
	if (set_capacity("SET_CAPACITY to the end of the file", ctlfd, n, 0, 0) == 0) {
		CHECK(disk_sectors(n) == (3 * MiB - 65536) / 512, "size to the end: %lld sectors",
		      disk_sectors(n));
		off = 3 * MiB - 65536 - 8;
		CHECK(pread(fd, &got, 8, (off_t)off) == 8 && got == off + 65536,
		      "the last word of the grown device: %#" PRIx64 ", want %#" PRIx64, got, off + 65536);
	}
	li_init(&li, NULL);
	li.li_minor = (uint32_t)n;
	if (xioctl("GET_FILENAME after SET_CAPACITY", ctlro, LOFI_GET_FILENAME, &li, 0) == 0)
		CHECK(li.li_sizelimit == 0 && li.li_offset == 65536, "GET_FILENAME: li_sizelimit %" PRIu64
		      " li_offset %" PRIu64 ", want 0 65536", (uint64_t)li.li_sizelimit, (uint64_t)li.li_offset);
	/* The file grows by 1 MiB + 100 bytes: the region is no whole block. */
	if (truncate(a.p, 4 * MiB + 100) < 0)
		failf("setup: truncate %s: %s", a.p, ename(errno));
	set_capacity("SET_CAPACITY of a region of no whole sectors", ctlfd, n, 0, EINVAL);
	/* With a limit, the region may end anywhere inside the file. */
	if (set_capacity("SET_CAPACITY to 4 MiB - 64 KiB", ctlfd, n, 4 * MiB - 65536, 0) == 0)
		CHECK(disk_sectors(n) == (4 * MiB - 65536) / 512, "size grown: %lld", disk_sectors(n));
	/* Shrinking: the block layer refuses reads past the new end. */
	before = disk_sectors(n);
	if (set_capacity("SET_CAPACITY down to 512 KiB", ctlfd, n, MiB / 2, 0) == 0) {
		CHECK(disk_sectors(n) == MiB / 1024, "size shrunk: %lld (was %lld)", disk_sectors(n), before);
		CHECK(pread(fd, &got, 8, MiB / 2) == 0, "a read at the new end did not return 0");
		CHECK(pread(fd, &got, 8, MiB / 2 - 8) == 8 && got == MiB / 2 - 8 + 65536,
		      "the last word of the shrunk device: %#" PRIx64, got);
	}
	/* The file shrinks below the offset. */
	if (truncate(a.p, 65536) < 0)
		failf("setup: truncate %s: %s", a.p, ename(errno));
	set_capacity("SET_CAPACITY of a file that ends at the offset", ctlfd, n, 0, EINVAL);
	CHECK(disk_sectors(n) == MiB / 1024, "size after the refusal: %lld", disk_sectors(n));
	/* A forced unmap: the device is gone, no mapping. */
	close(fd);
	fd = open(dev.p, O_RDONLY);
	li_init(&li, NULL);
	li.li_minor = (uint32_t)n;
	li.li_force = 1;
	if (xioctl("forced UNMAP_FILE_MINOR", ctlfd, LOFI_UNMAP_FILE_MINOR, &li, 0) == 0) {
		set_capacity("SET_CAPACITY of a force-unmapped device", ctlfd, n, 0, ENXIO);
		if (fd >= 0)
			close(fd);
		fd = -1;
		CHECK(wait_disk(n, 0, 10), "/sys/block/lofi%d still exists 10 s after its last close", n);
		n = 0;
	}
out:
	if (fd >= 0)
		close(fd);
	if (n > 0)
		unmap_ok("unmap", n);
}

/*
 * SET_CAPACITY of a mapping in 4096-byte blocks: whole blocks; of a
 * read-only mapping: EROFS (before the limit is looked at), size kept.
 */
static void c_set_capacity_blocks(void)
{
	struct lofi_ioctl li;
	path_t a = sp("a"), b = sp("b");
	int n;

	if (make_numbered_file(a.p, MiB) || make_numbered_file(b.p, MiB))
		return;
	li_init(&li, a.p);
	li.li_block_size = 4096;
	n = (int)xioctl("MAP_FILE, 4096-byte blocks", ctlfd, LOFI_MAP_FILE, &li, 0);
	if (n <= 0)
		return;
	if (truncate(a.p, 2 * MiB + 512) < 0)
		failf("setup: truncate %s: %s", a.p, ename(errno));
	set_capacity("SET_CAPACITY of a region of no whole blocks", ctlfd, n, 0, EINVAL);
	set_capacity("SET_CAPACITY with a limit of no whole block", ctlfd, n, MiB + 512, EINVAL);
	if (set_capacity("SET_CAPACITY in 4096-byte blocks to 2 MiB", ctlfd, n, 2 * MiB, 0) == 0)
		CHECK(disk_sectors(n) == 2 * MiB / 512, "size: %lld sectors", disk_sectors(n));
	unmap_ok("unmap", n);
	li_init(&li, b.p);
	li.li_readonly = 1;
	n = (int)xioctl("MAP_FILE ro", ctlfd, LOFI_MAP_FILE, &li, 0);
	if (n <= 0)
		return;
	if (truncate(b.p, 2 * MiB) < 0)
		failf("setup: truncate %s: %s", b.p, ename(errno));
	set_capacity("SET_CAPACITY of a read-only mapping", ctlfd, n, 0, EROFS);
	set_capacity("SET_CAPACITY of a read-only mapping, a bad limit", ctlfd, n, 1000, EROFS);
	CHECK(disk_sectors(n) == MiB / 512, "size of the read-only mapping: %lld sectors", disk_sectors(n));
	unmap_ok("unmap", n);
}


/* ---------------------------------------------------------------------- */
/* Compressed images                                                      */

/*
 * An image in the illumos lofiadm -C format (include/uapi/linux/lofi.h),
 * with big-endian integers: the algorithm name (36 bytes, NUL-padded),
 * the segment size, the index entries (segments + 1), the last segment's
 * size, the index (offsets from its end, the last one the end of the
 * data), then the segments: a header byte (0 stored: the data as it is, 1
 * compressed) and the bytes. Built here with stored segments (no
 * compression library needed), and "compressed" ones of garbage.
 */
#define CZ_HDR 48
#define CZ_MAX (64 * 1024)

struct cz {
	unsigned char buf[CZ_MAX];
	size_t len;		/* of the file */
	size_t data_start;	/* the end of the index */
	uint32_t nseg;
};

static void be32_put(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static void be64_put(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

/* The byte at disk offset OFF of the test images. */
static unsigned char cz_pattern(uint64_t off)
{
	return (unsigned char)(off * 13 + (off >> 9) * 7 + 1);
}

/* Set index entry I of C to OFF (from the end of the index). */
static void cz_index(struct cz *c, uint32_t i, uint64_t off)
{
	be64_put(c->buf + CZ_HDR + 8 * i, off);
}

/*
 * A sound image of algorithm ALG: NSEG segments of SEG bytes, the last of
 * LAST, holding cz_pattern(); the segments whose bit is set in GARBAGE are
 * "compressed": header byte 1 and 16 bytes 0xFF (no zlib stream: CM is
 * not 8; no raw deflate block: BTYPE 3; nor valid for the others).
 */
static void cz_make(struct cz *c, const char *alg, uint32_t seg, uint32_t nseg, uint32_t last,
		    unsigned garbage)
{
	size_t at;
	uint64_t disk = 0;

	memset(c, 0, sizeof(*c));
	memcpy(c->buf, alg, strlen(alg));
	be32_put(c->buf + 36, seg);
	be32_put(c->buf + 40, nseg + 1);
	be32_put(c->buf + 44, last);
	c->nseg = nseg;
	c->data_start = at = CZ_HDR + 8 * (size_t)(nseg + 1);
	for (uint32_t i = 0; i < nseg; i++) {
		uint32_t ulen = i + 1 == nseg ? last : seg;

		cz_index(c, i, at - c->data_start);
		if (garbage & (1u << i)) {
			c->buf[at++] = 1;
			memset(c->buf + at, 0xff, 16);
			at += 16;
		} else {
			c->buf[at++] = 0;
			for (uint32_t k = 0; k < ulen; k++)
				c->buf[at++] = cz_pattern(disk + k);
		}
		disk += ulen;
	}
	cz_index(c, nseg, at - c->data_start);
	c->len = at;
}

/* Write C to PATH (replacing it); 0, or -1 after reporting. */
static int cz_write(const char *path, const struct cz *c)
{
	int fd;

	unlink(path);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	if (fd < 0 || write(fd, c->buf, c->len) != (ssize_t)c->len) {
		failf("setup: write %s: %s", path, ename(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Write C to PATH and map it (li_readonly 0), expecting WANT; a mapping
 * made is unmapped. */
static void cz_expect(const char *what, const char *path, const struct cz *c, int want)
{
	struct lofi_ioctl li;
	long n;

	if (cz_write(path, c))
		return;
	li_init(&li, path);
	n = xioctl(what, ctlfd, LOFI_MAP_FILE, &li, want);
	if (n > 0)
		unmap_ok("unmap", (int)n);
}

/* LEN bytes at disk offset OFF of N, read with O_DIRECT: 0, or the errno
 * (a short read: EMSGSIZE); BUF gets them. */
static int cz_pread(int fd, unsigned char *buf, size_t len, off_t off)
{
	ssize_t r;

	errno = 0;
	r = pread(fd, buf, len, off);
	if (r < 0)
		return errno;
	return (size_t)r == len ? 0 : EMSGSIZE;
}

static int cz_is_pattern(const unsigned char *buf, size_t len, uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != cz_pattern(off + i))
			return 0;
	return 1;
}

/*
 * Compressed images: mapped read-only (li_readonly 1 although 0 was asked
 * for), without direct I/O (asked for: clear on return), the algorithm in
 * li_algorithm of the map and of every query and in sysfs, the
 * uncompressed size as the disk's, the data decompressed (here: copied
 * from stored segments); no open for writing (EROFS), no capacity change
 * (EROFS); no region (li_offset, li_sizelimit: EINVAL) and no block size
 * the size is no multiple of (EINVAL); headers and indexes that are not
 * sound: EINVAL; an unknown name: an ordinary image; a corrupt segment
 * fails the reads of it with EIO, the others still work.
 */
static void c_compressed(void)
{
	static const struct {
		const char *what;
		uint32_t at, value;	/* a header field (36, 40, 44) */
	} bad_headers[] = {
		{ "segment size 3000 (no power of two)", 36, 3000 },
		{ "segment size 256 (below 512)", 36, 256 },
		{ "segment size 16 MiB (above 8 MiB)", 36, 16u << 20 },
		{ "segment size 0", 36, 0 },
		{ "1 index entry (no segment)", 40, 1 },
		{ "0 index entries", 40, 0 },
		{ "2^28 index entries (the index does not fit in the file)", 40, 1u << 28 },
		{ "last segment size 0", 44, 0 },
		{ "last segment size 5000 (above the segment size)", 44, 5000 },
		{ "last segment size 8192 (above the segment size)", 44, 8192 },
		{ "last segment size 1000 (no multiple of 512)", 44, 1000 },
	};
	const uint64_t size = 2 * 4096 + 2048;
	struct lofi_ioctl li, q;
	path_t z = sp("z.img"), dev;
	struct cz *c = calloc(1, sizeof(*c));
	unsigned char *buf = alloc_aligned(16384);
	char what[160], p[96], line[64];
	uint64_t bytes = 0;
	size_t k;
	long n;
	int fd, ro = 0;
	FILE *f;

	if (!c || !buf)
		goto out;
	cz_make(c, "gzip", 4096, 3, 2048, 0);
	if (cz_write(z.p, c))
		goto out;

	/* Mapped read-only, buffered, with its algorithm. */
	li_init(&li, z.p);
	li.li_readonly = 0;
	li.li_flags = LOFI_FLAG_DIRECT_IO;
	n = xioctl("MAP_FILE of a gzip image, li_readonly 0, LOFI_FLAG_DIRECT_IO", ctlfd, LOFI_MAP_FILE, &li, 0);
	if (n <= 0)
		goto refused;
	dev = devpath_of((int)n);
	CHECK(li.li_minor == (uint32_t)n, "MAP_FILE: li_minor: got %u want %ld", li.li_minor, n);
	CHECK(strcmp(li.li_devpath, dev.p) == 0, "MAP_FILE: li_devpath: got '%.64s' want '%s'", li.li_devpath,
	      dev.p);
	CHECK(li.li_readonly == 1, "MAP_FILE: li_readonly: got %u want 1 (a compressed image)", li.li_readonly);
	CHECK(li.li_flags == 0, "MAP_FILE: li_flags: got %#x want 0 (no direct I/O for a compressed image)",
	      li.li_flags);
	CHECK(li.li_block_size == LOFI_BLOCK_SIZE_DEFAULT, "MAP_FILE: li_block_size: got %u want %d",
	      li.li_block_size, LOFI_BLOCK_SIZE_DEFAULT);
	CHECK(li.li_offset == 0 && li.li_sizelimit == 0, "MAP_FILE: li_offset %" PRIu64 " li_sizelimit %" PRIu64
	      ", want 0 0", (uint64_t)li.li_offset, (uint64_t)li.li_sizelimit);
	CHECK(strcmp(li.li_algorithm, "gzip") == 0, "MAP_FILE: li_algorithm: got '%.36s' want 'gzip'",
	      li.li_algorithm);
	CHECK(wait_node(dev.p, 1, 10), "%s is not a block device after MAP_FILE", dev.p);
	CHECK(disk_sectors((int)n) == (long long)(size / 512), "/sys/block/lofi%ld/size: got %lld want %" PRIu64,
	      n, disk_sectors((int)n), size / 512);
	snprintf(p, sizeof(p), "/sys/block/lofi%ld/lofi/algorithm", n);
	f = fopen(p, "r");
	if (!f) {
		failf("open %s: %s", p, ename(errno));
	} else {
		if (!fgets(line, sizeof(line), f))
			line[0] = 0;
		fclose(f);
		CHECK(strcmp(line, "gzip\n") == 0, "%s: got '%s' want 'gzip'", p, line);
	}

	fd = open(dev.p, O_RDONLY);
	if (expect_errno("open the compressed disk O_RDONLY", fd, errno, 0)) {
		if (xioctl("BLKGETSIZE64", fd, BLKGETSIZE64, &bytes, 0) == 0)
			CHECK(bytes == size, "BLKGETSIZE64: got %" PRIu64 " want %" PRIu64, bytes, size);
		if (xioctl("BLKROGET", fd, BLKROGET, &ro, 0) == 0)
			CHECK(ro == 1, "BLKROGET: got %d want 1", ro);
		memset(buf, 0, 16384);
		errno = 0;
		CHECK(read(fd, buf, 16384) == (ssize_t)size && cz_is_pattern(buf, size, 0),
		      "read of the whole disk (%" PRIu64 " bytes): %s, or not the image's data", size,
		      ename(errno));
		close(fd);
	}
	fd = open(dev.p, O_RDWR);
	expect_errno("open the compressed disk O_RDWR", fd, errno, EROFS);
	if (fd >= 0)
		close(fd);

	li_init(&q, z.p);
	if (xioctl("CHECK_COMPRESSED of the gzip image", ctlro, LOFI_CHECK_COMPRESSED, &q, 0) == 0) {
		CHECK(q.li_minor == (uint32_t)n, "CHECK_COMPRESSED: li_minor: got %u want %ld", q.li_minor, n);
		CHECK(strcmp(q.li_algorithm, "gzip") == 0, "CHECK_COMPRESSED: li_algorithm: got '%.36s' want 'gzip'",
		      q.li_algorithm);
		CHECK(q.li_readonly == 1, "CHECK_COMPRESSED: li_readonly: got %u want 1", q.li_readonly);
	}
	li_init(&q, z.p);
	if (xioctl("GET_MINOR of the gzip image", ctlro, LOFI_GET_MINOR, &q, 0) == 0)
		CHECK(q.li_minor == (uint32_t)n && strcmp(q.li_algorithm, "gzip") == 0,
		      "GET_MINOR: li_minor %u li_algorithm '%.36s', want %ld 'gzip'", q.li_minor, q.li_algorithm, n);
	li_init(&q, NULL);
	q.li_minor = (uint32_t)n;
	if (xioctl("GET_FILENAME of the gzip image", ctlro, LOFI_GET_FILENAME, &q, 0) == 0) {
		CHECK(strcmp(q.li_filename, z.p) == 0, "GET_FILENAME: li_filename: got '%.64s' want '%s'",
		      q.li_filename, z.p);
		CHECK(strcmp(q.li_algorithm, "gzip") == 0, "GET_FILENAME: li_algorithm: got '%.36s' want 'gzip'",
		      q.li_algorithm);
		CHECK(q.li_readonly == 1 && q.li_flags == 0, "GET_FILENAME: li_readonly %u li_flags %#x, want 1 0",
		      q.li_readonly, q.li_flags);
	}
	set_capacity("SET_CAPACITY of a compressed mapping", ctlfd, (int)n, 0, EROFS);
	CHECK(disk_sectors((int)n) == (long long)(size / 512), "size after the refused SET_CAPACITY: %lld sectors",
	      disk_sectors((int)n));
	unmap_ok("unmap the gzip image", (int)n);

	/* li_readonly 1 asked for, and a block size the size is a multiple of. */
	li_init(&li, z.p);
	li.li_readonly = 1;
	li.li_block_size = 2048;
	n = xioctl("MAP_FILE of the gzip image, li_readonly 1, li_block_size 2048", ctlfd, LOFI_MAP_FILE, &li, 0);
	if (n > 0) {
		CHECK(li.li_readonly == 1 && li.li_block_size == 2048 && strcmp(li.li_algorithm, "gzip") == 0,
		      "MAP_FILE: li_readonly %u li_block_size %u li_algorithm '%.36s', want 1 2048 'gzip'",
		      li.li_readonly, li.li_block_size, li.li_algorithm);
		unmap_ok("unmap", (int)n);
	}

refused:
	/* The whole image, in a block size it is a multiple of. */
	li_init(&li, z.p);
	li.li_offset = 512;
	xioctl("MAP_FILE of a compressed image with li_offset 512", ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	li_init(&li, z.p);
	li.li_sizelimit = 4096;
	xioctl("MAP_FILE of a compressed image with li_sizelimit 4096", ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	li_init(&li, z.p);
	li.li_minor = 1;
	li.li_readonly = 1;
	li.li_offset = 4096;
	li.li_sizelimit = 4096;
	xioctl("MAP_FILE_MINOR of a compressed image with a region", ctlfd, LOFI_MAP_FILE_MINOR, &li, EINVAL);
	li_init(&li, z.p);
	li.li_block_size = 4096;
	xioctl("MAP_FILE of a compressed image of 10240 bytes, li_block_size 4096", ctlfd, LOFI_MAP_FILE, &li,
	       EINVAL);
	li_init(&li, z.p);
	snprintf(li.li_algorithm, sizeof(li.li_algorithm), "gzip");
	xioctl("MAP_FILE of a compressed image with li_algorithm \"gzip\"", ctlfd, LOFI_MAP_FILE, &li, EINVAL);
	expect_not_mapped("GET_MINOR after the refused maps", z.p);

	/* Headers and indexes that are not sound. */
	for (k = 0; k < sizeof(bad_headers) / sizeof(bad_headers[0]); k++) {
		cz_make(c, "gzip", 4096, 3, 2048, 0);
		be32_put(c->buf + bad_headers[k].at, bad_headers[k].value);
		snprintf(what, sizeof(what), "MAP_FILE of a gzip image with %s", bad_headers[k].what);
		cz_expect(what, z.p, c, EINVAL);
	}
	cz_make(c, "lzma", 4096, 3, 2048, 0);
	cz_index(c, 0, 1);
	cz_expect("MAP_FILE of an image with index[0] 1", z.p, c, EINVAL);
	cz_make(c, "lzma", 4096, 3, 2048, 0);
	cz_index(c, 2, 4097 - 1);	/* below index[1] (4097) */
	cz_expect("MAP_FILE of an image with a decreasing index", z.p, c, EINVAL);
	cz_make(c, "lzma", 4096, 3, 2048, 0);
	cz_index(c, 2, 4097);		/* equal to index[1]: an empty segment */
	cz_expect("MAP_FILE of an image with an empty segment (two equal entries)", z.p, c, EINVAL);
	cz_make(c, "zstd", 4096, 3, 2048, 0);
	cz_index(c, 3, c->len - c->data_start + 1);
	cz_expect("MAP_FILE of an image whose last index entry is past the end of the file", z.p, c, EINVAL);
	cz_make(c, "zstd", 4096, 3, 2048, 0);
	c->len--;
	cz_expect("MAP_FILE of an image cut short by a byte", z.p, c, EINVAL);
	cz_make(c, "gzip", 4096, 3, 2048, 0);
	c->len = CZ_HDR + 8;	/* the header and half the index */
	cz_expect("MAP_FILE of an image whose index does not fit in the file", z.p, c, EINVAL);
	/*
	 * A segment of at most 1 + 4096 + 4096/16 + 64 = 4417 bytes (the
	 * header byte and the longest payload): one stored segment of 4416
	 * bytes after its header byte is accepted (reading it is EIO: a stored
	 * segment of the wrong size), one byte more is EINVAL.
	 */
	for (k = 0; k < 2; k++) {
		size_t seglen = 4417 + k;

		memset(c, 0, sizeof(*c));
		memcpy(c->buf, "gzip", 4);
		be32_put(c->buf + 36, 4096);
		be32_put(c->buf + 40, 2);
		be32_put(c->buf + 44, 4096);
		c->data_start = CZ_HDR + 16;
		cz_index(c, 0, 0);
		cz_index(c, 1, seglen);
		c->buf[c->data_start] = 0;
		memset(c->buf + c->data_start + 1, 0x5a, seglen - 1);
		c->len = c->data_start + seglen;
		if (k) {
			cz_expect("MAP_FILE of an image with a segment of 4418 bytes (above the limit)", z.p, c,
				  EINVAL);
			continue;
		}
		if (cz_write(z.p, c))
			continue;
		li_init(&li, z.p);
		n = xioctl("MAP_FILE of an image with a segment of 4417 bytes (the limit)", ctlfd, LOFI_MAP_FILE, &li,
			   0);
		if (n <= 0)
			continue;
		dev = devpath_of((int)n);
		CHECK(wait_node(dev.p, 1, 10), "%s is not a block device after MAP_FILE", dev.p);
		fd = open(dev.p, O_RDONLY | O_DIRECT);
		if (expect_errno("open the disk O_RDONLY | O_DIRECT", fd, errno, 0)) {
			int err = cz_pread(fd, buf, 4096, 0);

			CHECK(err == EIO, "read of a stored segment of the wrong size: got %s want EIO", ename(err));
			close(fd);
		}
		unmap_ok("unmap", (int)n);
	}

	/* An unknown name: an ordinary image, mapped read-write. */
	cz_make(c, "gzip-7", 4096, 3, 2048, 0);
	c->len = (c->len + 511) / 512 * 512;	/* whole blocks (zeros after the data) */
	if (cz_write(z.p, c) == 0) {
		n = map_ok("MAP_FILE of an image named gzip-7 (an ordinary image)", z.p, 0, &li);
		if (n > 0) {
			CHECK(li.li_readonly == 0 && li.li_algorithm[0] == 0,
			      "MAP_FILE of gzip-7: li_readonly %u li_algorithm '%.36s', want 0 ''", li.li_readonly,
			      li.li_algorithm);
			li_init(&q, z.p);
			if (xioctl("CHECK_COMPRESSED of the gzip-7 image", ctlro, LOFI_CHECK_COMPRESSED, &q, 0) == 0)
				CHECK(q.li_minor == (uint32_t)n && q.li_algorithm[0] == 0,
				      "CHECK_COMPRESSED of gzip-7: li_minor %u li_algorithm '%.36s', want %ld ''",
				      q.li_minor, q.li_algorithm, n);
			CHECK(disk_sectors((int)n) == (long long)(c->len / 512), "size of the gzip-7 image: %lld sectors",
			      disk_sectors((int)n));
			unmap_ok("unmap", (int)n);
		}
	}

	/*
	 * Corrupt segments: segment 1 "compressed" garbage, segment 2 of an
	 * unknown type (header byte 2). The map succeeds; reading segment 0
	 * works, segments 1 and 2 fail with EIO, and segment 0 still reads.
	 */
	cz_make(c, "gzip", 4096, 3, 2048, 1u << 1);
	c->buf[c->data_start + 4097 + 17] = 2;
	if (cz_write(z.p, c))
		goto out;
	li_init(&li, z.p);
	n = xioctl("MAP_FILE of an image with corrupt segments", ctlfd, LOFI_MAP_FILE, &li, 0);
	if (n <= 0)
		goto out;
	CHECK(li.li_readonly == 1 && strcmp(li.li_algorithm, "gzip") == 0,
	      "MAP_FILE: li_readonly %u li_algorithm '%.36s', want 1 'gzip'", li.li_readonly, li.li_algorithm);
	dev = devpath_of((int)n);
	CHECK(wait_node(dev.p, 1, 10), "%s is not a block device after MAP_FILE", dev.p);
	fd = open(dev.p, O_RDONLY | O_DIRECT);
	if (expect_errno("open the disk O_RDONLY | O_DIRECT", fd, errno, 0)) {
		int err;

		memset(buf, 0, 4096);
		err = cz_pread(fd, buf, 4096, 0);
		CHECK(err == 0 && cz_is_pattern(buf, 4096, 0), "read of stored segment 0: %s, or not its data",
		      ename(err));
		err = cz_pread(fd, buf, 4096, 4096);
		CHECK(err == EIO, "read of garbage segment 1: got %s want EIO", ename(err));
		err = cz_pread(fd, buf, 2048, 8192);
		CHECK(err == EIO, "read of segment 2 of an unknown type: got %s want EIO", ename(err));
		err = cz_pread(fd, buf, 512, 4096 + 1024);
		CHECK(err == EIO, "read of a sector of garbage segment 1: got %s want EIO", ename(err));
		memset(buf, 0, 4096);
		err = cz_pread(fd, buf, 4096, 0);
		CHECK(err == 0 && cz_is_pattern(buf, 4096, 0),
		      "read of stored segment 0 after the failed reads: %s, or not its data", ename(err));
		err = cz_pread(fd, buf, 8192, 0);
		CHECK(err == EIO, "read of segments 0 and 1 at once: got %s want EIO", ename(err));
		close(fd);
	}
	unmap_ok("unmap", (int)n);
out:
	unlink(z.p);
	free(buf);
	free(c);
}

/* ---------------------------------------------------------------------- */
/* Driver                                                                 */

struct test_case {
	const char *name;
	void (*fn)(void);
	int small_max; /* run by default only when lofi_max_files <= 16 */
};

/* Partition M of N: /dev/lofiNpM. */
static path_t partpath_of(int n, int m)
{
	path_t r;

	snprintf(r.p, sizeof(r.p), LOFI_PART_FMT, (unsigned)n, (unsigned)m);
	return r;
}

/* Whether /sys/block/lofiN/lofiNpM has START and SIZE (sectors). */
static int part_is(int n, int m, long long start, long long size)
{
	char p[96];
	long long v1 = -1, v2 = -1;

	snprintf(p, sizeof(p), "/sys/block/lofi%d/lofi%dp%d/start", n, n, m);
	read_sysfs_ll(p, &v1);
	snprintf(p, sizeof(p), "/sys/block/lofi%d/lofi%dp%d/size", n, n, m);
	read_sysfs_ll(p, &v2);
	return v1 == start && v2 == size;
}

/* Whether the disk lofiN has a partition M in sysfs. */
static int part_in_sysfs(int n, int m)
{
	char p[96];

	snprintf(p, sizeof(p), "/sys/block/lofi%d/lofi%dp%d", n, n, m);
	return access(p, F_OK) == 0;
}

/*
 * BLKPG OP (BLKPG_ADD_PARTITION, BLKPG_DEL_PARTITION) of partition PNO;
 * 0 or an errno. EBUSY is retried for a few seconds: udev may have the
 * partition open, probing it.
 */
static int blkpg(int fd, int op, int pno, long long start, long long length)
{
	struct blkpg_partition part = { .start = start, .length = length, .pno = pno };
	struct blkpg_ioctl_arg arg = { .op = op, .datalen = sizeof(part), .data = &part };
	double end = now() + 5;

	while (ioctl(fd, BLKPG, &arg) < 0) {
		if (errno != EBUSY || now() > end)
			return errno;
		msleep(50);
	}
	return 0;
}

/*
 * LOFI_FLAG_LABELED: a file with an MBR of two partitions (1 MiB at 1 MiB,
 * 1 MiB at 2 MiB), mapped labeled, has lofiNp1 and lofiNp2 with the
 * table's start and size; the flag comes back from the map and
 * GET_FILENAME and sysfs says labeled 1; a partition reads the file's
 * bytes at its offset and cannot itself be mapped (EINVAL, a lofi device).
 * BLKRRPART is EBUSY while a partition is open and re-reads a table
 * rewritten through the disk (a third partition); BLKPG deletes and adds
 * partitions (as partx does). A plain unmap while p1 is open is EBUSY; a
 * forced one fails p1's I/O with EIO, and the disk and its partitions go
 * with the last close. Unlabeled, the same file has no partitions, and
 * BLKRRPART and BLKPG are EINVAL.
 */
static void c_labeled(void)
{
	static const struct lofi_mbr_part two[] = { { 2048, 2048 }, { 4096, 2048 } };
	static const struct lofi_mbr_part three[] = { { 2048, 2048 }, { 4096, 2048 }, { 6144, 1024 } };
	unsigned char mbr[512];
	struct lofi_ioctl li;
	path_t a = sp("a"), dev, p1, p2, p3;
	uint64_t got = 0;
	long long lab = -1;
	int n, dfd = -1, pfd = -1, fd, err;
	char sys[96];

	if (make_numbered_file(a.p, 4 * MiB))
		return;
	lofi_mbr(mbr, two, 2);
	fd = open(a.p, O_WRONLY);
	if (fd < 0 || pwrite(fd, mbr, sizeof(mbr), 0) != (ssize_t)sizeof(mbr)) {
		failf("setup: write the MBR of %s: %s", a.p, ename(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);

	li_init(&li, a.p);
	li.li_flags = LOFI_FLAG_LABELED;
	n = (int)xioctl("labeled MAP_FILE", ctlfd, LOFI_MAP_FILE, &li, 0);
	if (n <= 0)
		return;
	CHECK(li.li_flags == LOFI_FLAG_LABELED, "labeled MAP_FILE: li_flags %#x, want LOFI_FLAG_LABELED",
	      li.li_flags);
	dev = devpath_of(n);
	p1 = partpath_of(n, 1);
	p2 = partpath_of(n, 2);
	p3 = partpath_of(n, 3);
	CHECK(strcmp(li.li_devpath, dev.p) == 0, "labeled MAP_FILE: li_devpath '%.64s', want '%s'",
	      li.li_devpath, dev.p);
	CHECK(wait_node(p1.p, 1, 10) && wait_node(p2.p, 1, 10), "%s or %s did not appear", p1.p, p2.p);
	CHECK(part_is(n, 1, 2048, 2048) && part_is(n, 2, 4096, 2048),
	      "the partitions in sysfs are not the table's (1 MiB at 1 MiB, 1 MiB at 2 MiB)");
	CHECK(!part_in_sysfs(n, 3), "a third partition that the table does not have");
	li_init(&li, NULL);
	li.li_minor = (uint32_t)n;
	if (xioctl("GET_FILENAME of the labeled mapping", ctlro, LOFI_GET_FILENAME, &li, 0) == 0)
		CHECK(li.li_flags == LOFI_FLAG_LABELED, "GET_FILENAME: li_flags %#x, want LOFI_FLAG_LABELED",
		      li.li_flags);
	snprintf(sys, sizeof(sys), "/sys/block/lofi%d/lofi/labeled", n);
	CHECK(read_sysfs_ll(sys, &lab) == 0 && lab == 1, "%s: %lld, want 1", sys, lab);

	/* A partition is a lofi device: not mapped. */
	li_init(&li, p1.p);
	xioctl("MAP_FILE of /dev/lofiNp1", ctlfd, LOFI_MAP_FILE, &li, EINVAL);

	pfd = open(p1.p, O_RDONLY);
	if (!expect_errno("open /dev/lofiNp1", pfd, errno, 0))
		goto out;
	CHECK(pread(pfd, &got, 8, 4096) == 8 && got == MiB + 4096,
	      "word 4096 of p1: %#" PRIx64 ", want %#llx (the file's at 1 MiB + 4096)", got, MiB + 4096);
	dfd = open(dev.p, O_RDWR);
	if (!expect_errno("open /dev/lofiN", dfd, errno, 0))
		goto out;
	xioctl("BLKRRPART with p1 open", dfd, BLKRRPART, NULL, EBUSY);
	err = unmap_raw(ctlfd, n, 0, 0, NULL);
	expect_errno("plain UNMAP_FILE_MINOR with p1 open", err ? -1 : 0, err, EBUSY);
	close(pfd);
	pfd = -1;

	/* A third partition, written through the disk, re-read. */
	lofi_mbr(mbr, three, 3);
	if (pwrite(dfd, mbr, sizeof(mbr), 0) != (ssize_t)sizeof(mbr) || fsync(dfd) < 0)
		failf("write the new MBR through %s: %s", dev.p, ename(errno));
	/* udev may have a partition open for a moment (probing, or its own
	 * re-read after the write): EBUSY, retried. */
	{
		double end = now() + 10;
		int r;

		while ((r = ioctl(dfd, BLKRRPART, 0)) < 0 && errno == EBUSY && now() < end)
			msleep(50);
		expect_errno("BLKRRPART of the new table", r, r < 0 ? errno : 0, 0);
	}
	CHECK(wait_node(p3.p, 1, 10), "%s did not appear after the re-read", p3.p);
	CHECK(part_is(n, 3, 6144, 1024), "p3 in sysfs is not the new table's (512 KiB at 3 MiB)");
	/* BLKPG, as partx uses it: p3 deleted and added again. */
	err = blkpg(dfd, BLKPG_DEL_PARTITION, 3, 0, 0);
	if (expect_errno("BLKPG_DEL_PARTITION 3", err ? -1 : 0, err, 0))
		CHECK(wait_node(p3.p, 0, 10), "%s still exists after BLKPG_DEL_PARTITION", p3.p);
	err = blkpg(dfd, BLKPG_ADD_PARTITION, 3, 6144LL * 512, 1024LL * 512);
	if (expect_errno("BLKPG_ADD_PARTITION 3", err ? -1 : 0, err, 0))
		CHECK(wait_node(p3.p, 1, 10) && part_is(n, 3, 6144, 1024),
		      "%s is not back after BLKPG_ADD_PARTITION", p3.p);

	/* Forced unmap with p1 open: its I/O fails, everything goes at the
	 * last close. */
	close(dfd);
	dfd = -1;
	pfd = open(p1.p, O_RDONLY | O_DIRECT);
	if (!expect_errno("open /dev/lofiNp1 O_DIRECT", pfd, errno, 0))
		goto out;
	li_init(&li, NULL);
	li.li_minor = (uint32_t)n;
	li.li_force = 1;
	if (xioctl("forced UNMAP_FILE_MINOR with p1 open", ctlfd, LOFI_UNMAP_FILE_MINOR, &li, 0) == 0) {
		void *buf = NULL;

		if (posix_memalign(&buf, 4096, 4096) == 0) {
			ssize_t r = pread(pfd, buf, 4096, 0);

			CHECK(r < 0 && errno == EIO, "read of p1 after the forced unmap: %zd (%s), want EIO", r,
			      r < 0 ? ename(errno) : "data");
			free(buf);
		}
		fd = open(p2.p, O_RDONLY);
		CHECK(fd < 0 && (errno == ENXIO || errno == ENOENT),
		      "open of p2 after the forced unmap: %s, want ENXIO or ENOENT", fd < 0 ? ename(errno) : "success");
		if (fd >= 0)
			close(fd);
		close(pfd);
		pfd = -1;
		CHECK(wait_disk(n, 0, 10), "/sys/block/lofi%d still exists 10 s after the last close", n);
		CHECK(wait_node(dev.p, 0, 10) && wait_node(p1.p, 0, 10) && wait_node(p3.p, 0, 10),
		      "a node of N=%d is left after the last close", n);
		n = 0;
	}

	/* Unlabeled: no partitions, no re-read, no BLKPG. */
	if (n == 0) {
		n = map_ok("unlabeled MAP_FILE", a.p, 0, &li);
		if (!n)
			goto out;
		dev = devpath_of(n);
		p1 = partpath_of(n, 1);
		CHECK(!part_in_sysfs(n, 1) && access(p1.p, F_OK) < 0, "an unlabeled mapping has %s", p1.p);
		snprintf(sys, sizeof(sys), "/sys/block/lofi%d/lofi/labeled", n);
		CHECK(read_sysfs_ll(sys, &lab) == 0 && lab == 0, "%s: %lld, want 0", sys, lab);
		dfd = open(dev.p, O_RDONLY);
		if (expect_errno("open the unlabeled /dev/lofiN", dfd, errno, 0)) {
			xioctl("BLKRRPART of an unlabeled mapping", dfd, BLKRRPART, NULL, EINVAL);
			err = blkpg(dfd, BLKPG_ADD_PARTITION, 1, MiB, MiB);
			expect_errno("BLKPG_ADD_PARTITION on an unlabeled mapping", err ? -1 : 0, err, EINVAL);
			CHECK(!part_in_sysfs(n, 1), "an unlabeled mapping got a partition");
		}
	}
out:
	if (pfd >= 0)
		close(pfd);
	if (dfd >= 0)
		close(dfd);
	if (n > 0)
		unmap_ok("unmap", n);
}

static const struct test_case cases[] = {
	{ "enotty_unknown", c_enotty_unknown, 0 },
	{ "enotty_bad_encoding", c_enotty_bad_encoding, 0 },
	{ "check_compressed", c_check_compressed, 0 },
	{ "eperm_readonly_fd", c_eperm_readonly_fd, 0 },
	{ "efault", c_efault, 0 },
	{ "einval_reserved", c_einval_reserved, 0 },
	{ "einval_map_fields", c_einval_map_fields, 0 },
	{ "map_fields_ignored", c_map_fields_ignored, 0 },
	{ "direct_io", c_direct_io, 0 },
	{ "map_regions", c_map_regions, 0 },
	{ "labeled", c_labeled, 0 },
	{ "set_capacity", c_set_capacity, 0 },
	{ "set_capacity_blocks", c_set_capacity_blocks, 0 },
	{ "compressed", c_compressed, 0 },
	{ "einval_filename", c_einval_filename, 0 },
	{ "einval_file_types", c_einval_file_types, 0 },
	{ "einval_size", c_einval_size, 0 },
	{ "einval_lofi_on_lofi", c_einval_lofi_on_lofi, 0 },
	{ "einval_minor_zero", c_einval_minor_zero, 0 },
	{ "erange", c_erange, 0 },
	{ "enoent", c_enoent, 0 },
	{ "lookup_errors", c_lookup_errors, 0 },
	{ "credentials", c_credentials, 0 },
	{ "readonly_flag", c_readonly_flag, 0 },
	{ "readonly_twice", c_readonly_twice, 0 },
	{ "ebusy_same_file", c_ebusy_same_file, 0 },
	{ "ebusy_unmap_open", c_ebusy_unmap_open, 0 },
	{ "eexist", c_eexist, 0 },
	{ "enxio", c_enxio, 0 },
	{ "map_success", c_map_success, 0 },
	{ "rename_after_map", c_rename_after_map, 0 },
	{ "shrink", c_shrink, 0 },
	{ "cleanup", c_cleanup, 0 },
	{ "dkiocstate", c_dkiocstate, 0 },
	{ "forced_unmap", c_forced_unmap, 0 },
	{ "dkiocstate_eintr", c_dkiocstate_eintr, 0 },
	{ "hdio_getgeo", c_hdio_getgeo, 0 },
	{ "eagain", c_eagain, 1 },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/*
 * After each case: no mapping may be left (GET_FILENAME of every N gives
 * ENXIO) and no lofi disk may remain in /sys/block. Leftovers are
 * reported against the case and force-unmapped.
 */
static void sweep(void)
{
	struct lofi_ioctl li;
	int limit = max_minor < 256 ? max_minor : 256, n;
	double end;

	for (n = 1; n <= limit; n++) {
		li_init(&li, NULL);
		li.li_minor = n;
		if (ioctl(ctlfd, LOFI_GET_FILENAME, &li) == 0) {
			failf("left mapping %d ('%.64s') behind", n, li.li_filename);
			unmap_raw(ctlfd, n, 1, 0, NULL);
		} else if (errno != ENXIO) {
			failf("sweep: GET_FILENAME %d: got %s want ENXIO", n, ename(errno));
		}
	}
	end = now() + 10;
	for (n = 1; n <= limit; n++) {
		while (disk_in_sysfs(n) && now() < end)
			msleep(50);
		if (disk_in_sysfs(n))
			failf("left disk lofi%d behind (no mapping, but the disk is still there)", n);
	}
}

static void on_alarm(int sig)
{
	static const char msg[] = ": timed out (no progress for 180 s)\n";
	ssize_t r;

	(void)sig;
	r = write(1, "not ok ", 7);
	r = write(1, cur_case, strlen(cur_case));
	r = write(1, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

static void run_case(const struct test_case *c, int named)
{
	double t0 = now();

	cur_case = c->name;
	cur_failed = 0;
	if (c->small_max && !named && max_minor > 16) {
		printf("ok %s # SKIP needs lofi_max_files <= 16 (have %d)\n", c->name, max_minor);
		return;
	}
	alarm(180);
	c->fn();
	sweep();
	alarm(0);
	if (!cur_failed)
		printf("ok %s (%.1f s)\n", c->name, now() - t0);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr, "usage: lofi_abi_test [--max N] SCRATCH_DIR [CASE...|list]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct lofi_ioctl li;
	struct sigaction sa;
	int i, failed = 0, argi = 1;
	size_t k;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argi + 1 < argc && strcmp(argv[argi], "--max") == 0) {
		want_max = atoi(argv[argi + 1]);
		argi += 2;
	}
	if (argi >= argc)
		usage();
	if (strcmp(argv[argi], "list") == 0 || (argi + 1 < argc && strcmp(argv[argi + 1], "list") == 0)) {
		for (k = 0; k < NCASES; k++)
			printf("%s\n", cases[k].name);
		return 0;
	}
	scratch = argv[argi++];
	if (scratch[0] != '/') {
		fprintf(stderr, "lofi_abi_test: SCRATCH_DIR must be absolute\n");
		return 2;
	}
	mkdir(scratch, 0755);
	/* The credentials case needs others to be able to search it. */
	if (chmod(scratch, 0711) < 0) {
		fprintf(stderr, "lofi_abi_test: chmod %s: %s\n", scratch, strerror(errno));
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	printf("# lofi_abi_test: %zu-bit caller, sizeof(struct lofi_ioctl) = %zu, LOFI_MAP_FILE = 0x%08lx\n",
	       sizeof(void *) * 8, sizeof(struct lofi_ioctl), (unsigned long)LOFI_MAP_FILE);
	ctlfd = open(CTL_PATH, O_RDWR | O_CLOEXEC);
	ctlro = open(CTL_PATH, O_RDONLY | O_CLOEXEC);
	if (ctlfd < 0 || ctlro < 0) {
		printf("not ok setup: open %s: %s\n", CTL_PATH, strerror(errno));
		return 1;
	}
	/* Every case relies on GET_MAXMINOR. */
	li_init(&li, NULL);
	if (ioctl(ctlfd, LOFI_GET_MAXMINOR, &li) != 0) {
		printf("not ok setup: GET_MAXMINOR: %s\n", ename(errno));
		return 1;
	}
	max_minor = (int)li.li_minor;
	if (max_minor != want_max) {
		printf("not ok setup: GET_MAXMINOR: got %d want %d (lofi_max_files)\n", max_minor, want_max);
		return 1;
	}
	/* Cases assume they start with nothing mapped. */
	cur_case = "setup";
	sweep();
	if (cur_failed)
		return 1;

	if (argi < argc) {
		for (i = argi; i < argc; i++) {
			for (k = 0; k < NCASES && strcmp(cases[k].name, argv[i]) != 0; k++)
				;
			if (k == NCASES) {
				printf("not ok %s: no such case\n", argv[i]);
				failed = 1;
				continue;
			}
			run_case(&cases[k], 1);
			failed |= cur_failed;
		}
	} else {
		for (k = 0; k < NCASES; k++) {
			run_case(&cases[k], 0);
			failed |= cur_failed;
		}
	}
	printf("# lofi_abi_test: %s\n", failed ? "FAILED" : "all cases passed");
	return failed;
}
