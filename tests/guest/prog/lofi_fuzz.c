// SPDX-License-Identifier: GPL-2.0
/*
 * lofi_fuzz: hostile ioctl input for /dev/lofictl and /dev/lofiN, the
 * program of the guest test ioctl-fuzz.sh (reliability scenario "Hostile
 * ioctl input").
 *
 *   lofi_fuzz DIR CALLS SEED
 *
 * DIR is a scratch directory (created if missing) where the fixture files
 * are made and which becomes the working directory (relative names resolve
 * there). CALLS ioctls at least are made, chosen by a pseudo-random
 * generator seeded with SEED, so that a failure can be replayed with the
 * same arguments (up to the timing of udev, which may hold a new disk open
 * for a moment: see below).
 *
 * Every call is predicted by a model of the driver built from
 * Documentation/userspace-api/lofi.rst (the checks of each command, in
 * their order) and of the mappings made so far; the result must be exactly
 * the predicted one: the errno, or success with the documented outputs.
 * Anything else is "unexpected" and printed (the first 20) as
 *   FAIL: call #I seed S: cmd=... -> got ..., want ... (why)
 * on standard error. An errno that the documentation does not list for the
 * command at all is flagged "undocumented" in that line as well. After an
 * unexpected result the model is reloaded from the driver (GET_FILENAME
 * of every N), so that one fault is not reported a thousand times.
 *
 * The calls (see fuzz_one() for the mix):
 *  - the nine commands with plausible contents: li_minor from {0, 1, max,
 *    max+1, 2^32-1, random, mapped ones}, li_force / li_cleanup /
 *    li_readonly 0, 1 or any other non-zero value (the driver and the
 *    documentation take any non-zero as true), names of every kind of
 *    fixture (below), on an O_RDWR, O_WRONLY or O_RDONLY control file
 *    (O_RDONLY: the commands that change mappings fail with EPERM, first);
 *  - the same with a non-zero li_reserved word (EINVAL) or a non-empty
 *    li_algorithm for a map (EINVAL), and with entirely random contents;
 *  - the map fields li_flags, li_block_size, li_offset and li_sizelimit:
 *    zero mostly, sometimes a random or a boundary value, sometimes a
 *    region that fits the file; for the map commands a flag bit outside
 *    LOFI_FLAGS_KNOWN, a block size other than 0, 512, 1024, 2048 and
 *    4096, an offset that is no multiple of 512 or a size limit that is
 *    no multiple of the block size is EINVAL (after the li_reserved
 *    check, before the path is looked at), and so, once the file is open,
 *    is a region that is not inside it or no multiple of the block size;
 *    the other commands ignore them; the maps and the mapping queries
 *    return li_offset and li_sizelimit as asked for, and li_flags 0 with
 *    the block size asked for (512 for 0), except for a map that asked
 *    for LOFI_FLAG_DIRECT_IO (every plausible map until one that asked
 *    succeeds, then one in seven): it returns li_flags 0 (refused:
 *    buffered, as above) or LOFI_FLAG_DIRECT_IO (granted: the block size
 *    asked for, or for 0 one of 512 .. 4096, a power of two); the
 *    queries, BLKSSZGET and BLKGETSIZE64 of its disk then report the same
 *    (the region, in whole blocks); a map that asked for LOFI_FLAG_LABELED
 *    (one in five) gets it, and it is in the flags the queries return;
 *  - LOFI_SET_CAPACITY of a read-write mapping (EROFS for a read-only
 *    one): the file measured again, the region
 *    from the map's offset with the new li_sizelimit (a multiple of the
 *    block size the map asked for, else EINVAL), in whole blocks of the
 *    disk (none: EINVAL); li_sizelimit is then what the queries report, and
 *    the disk's size, BLKGETSIZE64 and HDIO_GETGEO follow (resizes=);
 *  - bad arguments: NULL, (void *)1, a PROT_NONE page, a kernel address, a
 *    structure straddling into a PROT_NONE page (all EFAULT when the
 *    structure is read), and a readable but read-only structure or one
 *    whose tail is read-only (the command is done, then the copy-back
 *    faults: EFAULT; a map is undone, an unmap stays done);
 *  - random command numbers on the control device: random bits, lofi's
 *    magic with random nr / size / direction, a right nr with the wrong
 *    size (the size of the structure before the map fields, 8304, too) or
 *    direction, LOFI_DKIOCSTATE: all ENOTTY (LOFI_CHECK_COMPRESSED is one
 *    of the nine commands: a query, as LOFI_GET_MINOR, that also returns
 *    li_algorithm; every map and query returns li_algorithm "" for the
 *    fixtures, which are ordinary images);
 *  - on /dev/lofiN, held open O_RDONLY by the fuzzer: LOFI_DKIOCSTATE with
 *    a state other than the current one (returns the current one at once),
 *    with the current one under an interval timer (EINTR), with bad
 *    pointers (EFAULT); HDIO_GETGEO (the documented fake geometry; NULL
 *    EINVAL, bad pointers EFAULT); BLKGETSIZE64, BLKSSZGET, BLKPBSZGET,
 *    BLKROGET (values; bad pointers EFAULT); BLKRRPART (labeled: 0, or
 *    EBUSY while udev has a partition open; unlabeled: EINVAL; gone:
 *    ENXIO or EIO); the control commands and
 *    random command numbers (ENOTTY; see blk_random_cmd() for which
 *    numbers are never sent and why);
 *  - BLKDISCARD, BLKZEROOUT and BLKSECDISCARD through a write open of a
 *    held device (ENXIO when gone, EROFS when read-only): valid, misaligned,
 *    empty, past-the-end and wrapping ranges, and bad pointers, each given
 *    block/ioctl.c's answer in its order (discard: EOPNOTSUPP once
 *    discard_max_bytes is 0; secure erase: always EOPNOTSUPP); a range
 *    discarded or zeroed reads back as zeros (counted, zeroed=);
 *  - forced unmaps and detach-at-last-close unmaps of devices the fuzzer
 *    holds open: the device is "gone" (LOFI_DKIOCSTATE: LOFI_DKIO_DEV_GONE,
 *    opens ENXIO, no longer a mapping, its N still in use: EEXIST) or still
 *    listed until the fuzzer closes it; from that last close on a
 *    force-unmapped one is no mapping (GET_FILENAME, UNMAP_FILE_MINOR:
 *    ENXIO; GET_MINOR does not find it) while its N stays in use until the
 *    removal work has run (probe_removing(); a detached one too, unless
 *    udev still holds it); every 10000 calls two such devices are closed one
 *    right after the other, so that the second one's removal waits behind
 *    the first's and that time is long enough to be seen, and the file of
 *    the first is mapped again meanwhile (gone_pair_episode());
 *  - twice a run, the table filled with read-only mappings of one file
 *    until MAP_FILE fails with EAGAIN;
 *  - three times a run (at the start, half-way, at the end), a few
 *    compressed images (the lofiadm -C format), sound and damaged, mapped,
 *    queried, read whole and unmapped (compressed_episode()).
 *
 * The fixtures in DIR: images of 512 B, 64 KiB, 100 KiB, 1 MiB and 3 MiB,
 * one of 1000 bytes and an empty one (EINVAL), an immutable image (mapped
 * read-only by the driver's fallback), a hard link, a symbolic link, a
 * name with "//" and one with "/./", a valid name of PATH_MAX-1 bytes,
 * names with a component too long or PATH_MAX-1 bytes of it
 * (ENAMETOOLONG), li_filename filled without a NUL (EINVAL), relative
 * names and the empty name (EINVAL for the map and unmap commands;
 * LOFI_GET_MINOR resolves them from DIR), a directory with and without a
 * trailing slash, an image with a trailing slash or below it (ENOTDIR),
 * a FIFO, a socket, a character device node (/dev/null's numbers),
 * /dev/null and /dev/lofictl (EINVAL), a lofi device: /dev/lofiMAX, a
 * symbolic link to it, a block device node with its numbers made in DIR
 * and its partition /dev/lofiMAXp1 (MAX is the labeled mapping of
 * anchor.img, whose MBR has two partitions) (EINVAL: lofi refuses to map
 * its own devices; ENXIO once gone, the partition opened first; ENOENT
 * for the partition when a re-read of the disk removed its node just
 * before the call),
 * nonexistent names, a dangling and a looping symbolic link.
 *
 * Mappings: the model holds, for every N, free / mapped (name, read-only,
 * file identity, size) / gone (force-unmapped while the fuzzer holds it
 * open). It is compared with LOFI_GET_FILENAME for every N every 2000
 * calls and at the end. The number of live mappings is kept at most 8
 * (beyond, one is unmapped) so that the run stays fast; N = MAX is mapped
 * again (read-only) whenever it is free, so that the lofi device fixtures
 * usually name a device.
 *
 * udev: a new disk, or one closed after being written (lofi opens
 * /dev/lofiN read-write to check it when asked to map it), is opened by
 * udev for a moment. A plain unmap of a device the fuzzer does not hold
 * may therefore fail with EBUSY: allowed, counted (ebusy=) and retried by
 * later calls. A forced or detach-at-last-close unmap of such a device
 * succeeds but leaves the disk until udev closes it: when /sys/block/lofiN
 * is still there after the call returned, the fuzzer waits until it is
 * gone (counted, udev-waits=) before going on. The same wait follows the
 * fuzzer's own last close of a gone or detached device (removal after the
 * last close runs from a work item). The wait ends when the number is
 * free again, which number_free() tells without leaving a trace; under
 * TCG that is up to about half a second after /sys/block/lofiN went.
 *
 * At the end the fuzzer closes everything it holds, checks the model once
 * more, writes it to DIR/model.list in the format of `lofi_map list`
 * ("N /dev/lofiN ro|rw FILENAME" for every mapping), clears the immutable
 * flag of its fixture and prints a last line
 *   RESULT calls=N unexpected=N maps=N unmaps=N ebusy=N udev-waits=N
 *          udev-held=N gone-pairs=N mappings=N direct-asked=N
 *          direct-granted=N zeroed=N resizes=N labeled=N rereads=N
 *          reread-ebusy=N vanished=N compressed=N compressed_einval=N
 *          compressed_eio=N compressed_plain=N seed=S errnos=EINVAL:n,...
 * (maps, unmaps and resizes: successful ones; mappings: those left, in model.list;
 * direct-asked: successful maps that asked for LOFI_FLAG_DIRECT_IO,
 * direct-granted: those that got it; labeled: successful maps that asked
 * for LOFI_FLAG_LABELED; rereads and reread-ebusy: BLKRRPART on held
 * labeled mappings that re-read the table or were refused while a
 * partition was open; vanished: maps of a partition node that a re-read
 * removed before the call looked it up; compressed...: see
 * compressed_episode(), and no compressed image mapped is unexpected).
 * Exit status 0 iff nothing unexpected happened and the model matched; 1
 * otherwise; 2 on a usage or setup error.
 *
 * LOFI_FUZZ_TRACE=1 in the environment prints every call on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
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
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/hdreg.h>
#include <linux/lofi.h>

#include "lofi_prog.h"

#define CTL_PATH "/dev/lofictl"
#define LI_SIZE sizeof(struct lofi_ioctl)
#define LI_OLD_SIZE 8304	/* struct lofi_ioctl before the map fields */
#define MAX_PRINTED 20
#define MAX_LIVE 8		/* live mappings kept at most (then unmap one) */
#define MAX_HELD 3		/* /dev/lofiN descriptors held at once */
#define CHECK_EVERY 2000	/* calls between two full model checks */
#define PAIR_EVERY 10000	/* calls between two gone pair episodes */

/* Command indexes: those of lofi_commands[] (lofi_prog.h). */
enum { C_MAP, C_MAP_MINOR, C_UNMAP, C_UNMAP_MINOR, C_GET_FILENAME, C_GET_MINOR, C_GET_MAXMINOR,
       C_SET_CAPACITY, C_CHECK_COMPRESSED };

/* ---------------------------------------------------------------------- */
/* Bookkeeping                                                            */

static unsigned long long seed;
static long long calls, unexpected, maps, unmaps, ebusy, udev_waits, skipped, opens;
static long long direct_asked, direct_granted, resizes;
/* Successful maps that asked for LOFI_FLAG_LABELED; BLKRRPART calls that
 * re-read a table (0), were refused for an open partition (EBUSY); maps
 * of a partition node that a re-read had just removed. */
static long long labeled_maps, rereads, reread_busy, vanished;
static long long ok_calls, errcounts[256];
static int printed, trace;
static int no_resync;		/* probe_removing(): the device goes meanwhile */
/* Where the time goes: successful map/unmap calls, other control calls,
 * waits for removals, block device calls. */
static double t_mutate, t_ctl, t_settle, t_blk;
static const char *cur_what = "";	/* what the current call is, for FAIL lines */

static const char *ename(int e)
{
	const char *n = e ? strerrorname_np(e) : "OK";

	return n ? n : "E?";
}

__attribute__((format(printf, 1, 2)))
static void unexp(const char *fmt, ...)
{
	va_list ap;

	unexpected++;
	if (++printed > MAX_PRINTED)
		return;
	fprintf(stderr, "FAIL: call #%lld seed %llu: ", calls, seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "lofi_fuzz: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void count_result(int err)
{
	if (!err)
		ok_calls++;
	else if (err > 0 && err < 256)
		errcounts[err]++;
}

/* ---------------------------------------------------------------------- */
/* Random numbers (splitmix64: deterministic from the seed)               */

static uint64_t rng;

static uint64_t rnd64(void)
{
	uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint32_t rnd32(void)
{
	return (uint32_t)(rnd64() >> 16);
}

/* 0 .. n-1 */
static unsigned rndn(unsigned n)
{
	return n ? (unsigned)(rnd64() % n) : 0;
}

/* true with probability permille/1000 */
static int chance(unsigned permille)
{
	return rndn(1000) < permille;
}

/*
 * Random bytes: a slice of a pool made at start (from the seed), at a
 * random offset, its first words fresh. Filling 8 KiB from the generator
 * for every call costs too much under TCG.
 */
#define POOL_SIZE (64 << 10)
static unsigned char *pool;

static void rnd_fill(void *p, size_t len)
{
	unsigned char *c = p;
	size_t i;

	if (!pool) {
		pool = malloc(POOL_SIZE);
		if (!pool)
			abort();
		for (i = 0; i < POOL_SIZE; i += 8) {
			uint64_t v = rnd64();

			memcpy(pool + i, &v, 8);
		}
	}
	while (len) {
		size_t off = rndn(POOL_SIZE), n = POOL_SIZE - off < len ? POOL_SIZE - off : len;

		memcpy(c, pool + off, n);
		for (i = 0; i + 8 <= n && i < 64; i += 8) {
			uint64_t v = rnd64();

			memcpy(c + i, &v, 8);
		}
		c += n;
		len -= n;
	}
}

/* A flag value: 0 half the time, else 1 or another non-zero value. */
static uint32_t rnd_flag(void)
{
	static const uint32_t v[] = { 1, 1, 2, 0x80000000u, 0xffffffffu, 0x100 };

	if (chance(500))
		return 0;
	return chance(900) ? v[rndn(6)] : (rnd32() | 1);
}

/* A 64-bit value for li_offset or li_sizelimit: boundaries or random. */
static uint64_t rnd_u64_field(void)
{
	static const uint64_t v[] = { 0, 1, 511, 512, 4096, 1ULL << 20, 1ULL << 32, 1ULL << 63, ~0ULL };

	switch (rndn(4)) {
	case 0: return rnd64();
	case 1: return 512ULL * rndn(1u << 16);
	default: return v[rndn(9)];
	}
}

/*
 * Set one or more of the map fields (li_flags, li_block_size, li_offset,
 * li_sizelimit): mostly to something a map refuses, now and then to a
 * value it accepts (a valid block size, a region that may fit a fixture:
 * they are 512 bytes to 3 MiB long).
 */
static void rnd_map_fields(struct lofi_ioctl *li)
{
	static const uint32_t bs[] = { 0, 512, 512, 1, 256, 511, 513, 1024, 2048, 4096, 65536, 0xffffffffu };
	unsigned which = 1 + rndn(15);	/* a non-empty subset of the four */

	if (which & 1)
		li->li_flags = chance(500) ? 1u << rndn(32) : chance(500) ? rnd32() : 0xffffffffu;
	if (which & 2)
		li->li_block_size = chance(800) ? bs[rndn(12)] : rnd32();
	if (chance(500)) {
		/* A small region in units of the block size (or 512). */
		uint32_t unit = li->li_block_size && li->li_block_size <= 4096 ? li->li_block_size : 512;

		if (which & 4)
			li->li_offset = (uint64_t)512 * rndn(8 << 10);
		if (which & 8)
			li->li_sizelimit = (uint64_t)unit * rndn(512);
		return;
	}
	if (which & 4)
		li->li_offset = rnd_u64_field();
	if (which & 8)
		li->li_sizelimit = rnd_u64_field();
}

/* ---------------------------------------------------------------------- */
/* The errnos the documentation lists for each command (any input)        */

/*
 * Documentation/userspace-api/lofi.rst, per command ("Any command can also
 * fail with ENOMEM"). The map commands return lookup and open errors
 * unchanged: those that the fixtures can produce are listed (ENXIO: the
 * open of a block device node without a disk). A result outside its command's list is
 * "undocumented"; a result inside it can still be unexpected (the model
 * predicts one result for every call).
 */
static const int doc_errnos[][16] = {
	[C_MAP] = { EPERM, EFAULT, EINVAL, ENOENT, EACCES, ENOTDIR, ELOOP, ENAMETOOLONG,
		    ENXIO, EBUSY, EAGAIN, ENOMEM, EROFS },
	[C_MAP_MINOR] = { EPERM, EFAULT, EINVAL, ERANGE, ENOENT, EACCES, ENOTDIR, ELOOP,
			  ENAMETOOLONG, ENXIO, EBUSY, EEXIST, ENOMEM, EROFS },
	[C_UNMAP] = { EPERM, EFAULT, EINVAL, ENOENT, EBUSY, ENOMEM },
	[C_UNMAP_MINOR] = { EPERM, EFAULT, EINVAL, ENXIO, EBUSY, ENOMEM },
	[C_GET_FILENAME] = { EFAULT, EINVAL, ENXIO, ENOMEM },
	[C_GET_MINOR] = { EFAULT, EINVAL, ENOENT, ENOMEM },
	[C_GET_MAXMINOR] = { EFAULT, EINVAL, ENOMEM },
	[C_SET_CAPACITY] = { EPERM, EFAULT, EINVAL, ENXIO, EROFS, ENOMEM },
	[C_CHECK_COMPRESSED] = { EFAULT, EINVAL, ENOENT, ENOMEM },
};

static int documented(int ci, int err)
{
	unsigned i;

	if (!err)
		return 1;
	for (i = 0; i < 16 && doc_errnos[ci][i]; i++)
		if (doc_errnos[ci][i] == err)
			return 1;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* The model of the mappings                                              */

enum { S_FREE, S_MAPPED, S_GONE };

struct slot {
	int state;
	int detach;		/* unmapped with li_cleanup while open: goes at last close */
	int ro;
	char *name;		/* as given to the map command */
	dev_t fdev;		/* identity of the backing file */
	ino_t fino;
	dev_t devt;		/* the disk's dev_t */
	uint32_t flags;		/* li_flags and li_block_size the map returned */
	uint32_t bs;
	uint64_t offset;	/* li_offset and li_sizelimit of the map */
	uint64_t sizelimit;
	uint64_t sectors;	/* the disk's capacity */
	uint32_t rblock;	/* the block size the region is measured in (0: unknown) */
	int held;		/* descriptors of /dev/lofiN the fuzzer holds */
};

static struct slot *slots;	/* 1 .. maxn */
static unsigned maxn;

struct held { int fd; unsigned n; };
static struct held held[MAX_HELD];
static int nheld;

static int ctl_fd[3];		/* O_RDWR, O_WRONLY, O_RDONLY */
static const char *const ctl_fd_name[3] = { "rdwr", "wronly", "rdonly" };

/*
 * Sleep MS milliseconds with poll(), whose timeout is an int: msleep()
 * (nanosleep) does not sleep at all in a 32-bit program on the test kernel
 * (no CONFIG_COMPAT_32BIT_TIME), and the waits below would spin.
 */
static volatile sig_atomic_t report_asked;	/* SIGUSR1: the watchdog asks */
static const char *waiting_for = "";	/* what a sleep_ms() loop waits for */
static unsigned waiting_n;

static void on_usr1(int sig)
{
	(void)sig;
	report_asked = 1;
}

/*
 * Says what the fuzzer waits for, once the watchdog of ioctl-fuzz.sh has
 * asked (SIGUSR1) before it kills a run that outlasts its limit: the
 * waits below are the only places where the fuzzer sleeps.
 */
static void report_wait(void)
{
	if (!report_asked)
		return;
	report_asked = 0;
	fprintf(stderr, "lofi_fuzz: asked where it is: call #%lld, waiting for %s of N=%u (%s)\n", calls,
		waiting_for, waiting_n, cur_what[0] ? cur_what : "-");
	fflush(stderr);
}

static void sleep_ms(int ms)
{
	double end = now() + ms / 1000.0;

	report_wait();
	while (now() < end)
		poll(NULL, 0, (int)((end - now()) * 1000) + 1);
}

static int sysfs_present(unsigned n)
{
	char p[64];

	snprintf(p, sizeof(p), "/sys/block/lofi%u", n);
	return access(p, F_OK) == 0;
}

static void slot_free(unsigned n)
{
	free(slots[n].name);
	memset(&slots[n], 0, sizeof(slots[n]));
}

static uint64_t sysfs_sectors(unsigned n)
{
	char p[64];
	unsigned long long v = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/sys/block/lofi%u/size", n);
	f = fopen(p, "r");
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static dev_t node_devt(unsigned n)
{
	char p[64];
	struct stat st;

	snprintf(p, sizeof(p), LOFI_DEV_FMT, n);
	if (stat(p, &st) == 0 && S_ISBLK(st.st_mode))
		return st.st_rdev;
	return 0;
}

static void slot_set(unsigned n, const char *name, int ro, uint64_t sectors)
{
	struct stat st;

	slot_free(n);
	slots[n].state = S_MAPPED;
	slots[n].ro = ro;
	slots[n].name = strdup(name);
	if (!slots[n].name)
		die("out of memory");
	if (stat(name, &st) == 0) {
		slots[n].fdev = st.st_dev;
		slots[n].fino = st.st_ino;
	}
	slots[n].sectors = sectors;
	slots[n].devt = node_devt(n);
	slots[n].flags = 0;
	slots[n].bs = LOFI_BLOCK_SIZE_DEFAULT;
	slots[n].offset = 0;
	slots[n].sizelimit = 0;
}

static int live_count(void)
{
	unsigned n;
	int c = 0;

	for (n = 1; n <= maxn; n++)
		c += slots[n].state != S_FREE;
	return c;
}

static char probe_name[PATH_MAX];

/* Argument areas (see place()). */
static size_t pg;
static char *good_buf;		/* 4 pages RW */
static char *none_area;		/* 3 pages RW + 1 PROT_NONE */
static char *ro_area;		/* 4 pages, read-only */
static char *rotail_area;	/* 3 pages RW + 3 pages read-only */

static double settle_max;	/* longest wait for an N to be free again */
static long long settles, free_probes;

/*
 * Whether number N is free: MAP_FILE_MINOR N of an image nobody maps
 * writable, read-only, from a structure that can be read but not written.
 * Free: the map is made up to the copy-back, which faults, and is undone
 * (EFAULT, no trace left); in use: EEXIST.
 */
static int number_free(unsigned n)
{
	struct lofi_ioctl *li;
	int r;

	if (mprotect(ro_area, 4 * pg, PROT_READ | PROT_WRITE))
		die("mprotect: %s", strerror(errno));
	li = (struct lofi_ioctl *)ro_area;
	memset(li, 0, sizeof(*li));
	strcpy(li->li_filename, probe_name);
	li->li_minor = n;
	li->li_readonly = 1;
	if (mprotect(ro_area, 4 * pg, PROT_READ))
		die("mprotect: %s", strerror(errno));
	calls++;
	free_probes++;
	r = ioctl(ctl_fd[0], LOFI_MAP_FILE_MINOR, li);
	count_result(r < 0 ? errno : 0);
	if (r >= 0 || (errno != EFAULT && errno != EEXIST)) {
		unexp("MAP_FILE_MINOR %u of %s with a read-only structure (is N free?) -> %s, want EFAULT or EEXIST",
		      n, probe_name, r >= 0 ? "success" : ename(errno));
		return 1;
	}
	return errno == EFAULT;
}

/*
 * Wait until N is free again after an unmap of an open device or its last
 * close: removal runs from a work item, which deletes the disk
 * (/sys/block/lofiN goes) and then frees the number.
 */
static void settle(unsigned n)
{
	double t0 = now(), end = t0 + 30;

	settles++;
	if (trace)
		fprintf(stderr, "settle %u\n", n);
	waiting_n = n;
	waiting_for = "/sys/block/lofiN to go";
	while (sysfs_present(n)) {
		if (now() > end) {
			unexp("/sys/block/lofi%u still present 30 s after its unmap and last close", n);
			break;
		}
		sleep_ms(2);
	}
	waiting_for = "the number to be free";
	while (!number_free(n)) {
		if (now() > end) {
			unexp("N=%u still in use 30 s after its unmap and last close", n);
			break;
		}
		sleep_ms(20);
	}
	waiting_for = "";
	slot_free(n);
	/* Slow removals are worth a note: udev holding a disk, usually. */
	if (now() - t0 > 5)
		fprintf(stderr, "lofi_fuzz: N=%u took %.1f s to be removed\n", n, now() - t0);
	if (now() - t0 > settle_max)
		settle_max = now() - t0;
	t_settle += now() - t0;
}

/* ---------------------------------------------------------------------- */
/* Argument placement: good and bad user pointers                         */

enum {
	P_GOOD,		/* a writable buffer (at a random small offset) */
	P_NULL,
	P_ONE,		/* (void *)1 */
	P_NONE,		/* a PROT_NONE page */
	P_KERNEL,	/* the last page of the address space */
	P_STRADDLE,	/* starts readable, ends in a PROT_NONE page */
	P_RO,		/* readable, not writable */
	P_RO_TAIL,	/* readable; its tail is not writable */
	P_COUNT
};

static const char *const ptr_name[P_COUNT] = {
	"good", "NULL", "(void*)1", "PROT_NONE", "kernel", "straddle", "read-only", "read-only-tail",
};

static int ptr_read_fails(int p)
{
	return p == P_NULL || p == P_ONE || p == P_NONE || p == P_KERNEL || p == P_STRADDLE;
}

static int ptr_write_fails(int p)
{
	return p != P_GOOD;
}


static void setup_areas(void)
{
	pg = (size_t)sysconf(_SC_PAGESIZE);
	good_buf = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	none_area = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro_area = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rotail_area = mmap(NULL, 6 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (good_buf == MAP_FAILED || none_area == MAP_FAILED || ro_area == MAP_FAILED ||
	    rotail_area == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	if (mprotect(none_area + 3 * pg, pg, PROT_NONE) || mprotect(ro_area, 4 * pg, PROT_READ) ||
	    mprotect(rotail_area + 3 * pg, 3 * pg, PROT_READ))
		die("mprotect: %s", strerror(errno));
}

/* The argument to pass for pointer class P, holding SRC (LEN bytes) where
 * it can be read. */
static void *place(int p, const void *src, size_t len)
{
	size_t off, k;
	char *a;

	switch (p) {
	case P_GOOD:
		off = rndn(16);
		memcpy(good_buf + off, src, len);
		return good_buf + off;
	case P_NULL:
		return NULL;
	case P_ONE:
		return (void *)1;
	case P_NONE:
		return none_area + 3 * pg;
	case P_KERNEL:
		return (void *)(uintptr_t)-(intptr_t)pg;
	case P_STRADDLE:
		k = 1 + rndn((unsigned)(len - 1));	/* 1 .. len-1 bytes readable */
		a = none_area + 3 * pg - k;
		memcpy(a, src, k);
		return a;
	case P_RO:
		off = rndn((unsigned)(4 * pg - len + 1));
		if (mprotect(ro_area, 4 * pg, PROT_READ | PROT_WRITE))
			die("mprotect: %s", strerror(errno));
		memcpy(ro_area + off, src, len);
		if (mprotect(ro_area, 4 * pg, PROT_READ))
			die("mprotect: %s", strerror(errno));
		return ro_area + off;
	default: /* P_RO_TAIL */
		k = 1 + rndn((unsigned)(len - 1));	/* 1 .. len-1 bytes writable */
		a = rotail_area + 3 * pg - k;
		if (mprotect(rotail_area + 3 * pg, 3 * pg, PROT_READ | PROT_WRITE))
			die("mprotect: %s", strerror(errno));
		memcpy(a, src, len);
		if (mprotect(rotail_area + 3 * pg, 3 * pg, PROT_READ))
			die("mprotect: %s", strerror(errno));
		return a;
	}
}

/* A bad pointer class for a call whose argument must not be read. */
static int rnd_bad_read_ptr(void)
{
	static const int v[] = { P_NULL, P_ONE, P_NONE, P_KERNEL, P_STRADDLE };

	return v[rndn(5)];
}

/* ---------------------------------------------------------------------- */
/* Fixtures                                                               */

struct name {
	const char *label;
	char *buf;		/* li_filename contents */
	size_t len;		/* bytes to copy; PATH_MAX: no NUL */
	int good;		/* names a mappable image (directly or not) */
	int special;		/* only used by episodes (fill image) */
};

#define MAX_NAMES 64
static struct name names[MAX_NAMES];
static unsigned nnames;
static char dir[1024];		/* the scratch directory, absolute */
static ino_t imm_ino;		/* the immutable image (0: none) */
static dev_t imm_dev;
static int fill_idx = -1, anchor_idx = -1;

static int add_name_raw(const char *label, const void *bytes, size_t len, int good)
{
	struct name *nm;

	if (nnames >= MAX_NAMES)
		die("too many fixture names");
	nm = &names[nnames];
	nm->label = label;
	nm->buf = calloc(1, PATH_MAX + 1);
	if (!nm->buf)
		die("out of memory");
	memcpy(nm->buf, bytes, len);
	nm->len = len;
	nm->good = good;
	return (int)nnames++;
}

/* A NUL-terminated name. */
static int add_name(const char *label, const char *s, int good)
{
	return add_name_raw(label, s, strlen(s) + 1, good);
}

static char *dpath(const char *base)
{
	static char p[8][PATH_MAX];
	static int i;
	char *r = p[i++ & 7];

	snprintf(r, PATH_MAX, "%s/%.200s", dir, base);
	return r;
}

static void make_image(const char *base, off_t size)
{
	const char *p = dpath(base);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || ftruncate(fd, size))
		die("create %s: %s", p, strerror(errno));
	close(fd);
}

/*
 * An MBR of two partitions in the image BASE (64 KiB at least): p1 is
 * sectors 8 to 63, p2 64 to 127. Mapped labeled, the image has the
 * partitions lofiNp1 and lofiNp2.
 */
static void write_mbr(const char *base)
{
	static const struct lofi_mbr_part parts[] = { { 8, 56 }, { 64, 64 } };
	const char *p = dpath(base);
	unsigned char mbr[512];
	int fd = open(p, O_WRONLY | O_CLOEXEC);

	lofi_mbr(mbr, parts, 2);
	if (fd < 0 || pwrite(fd, mbr, sizeof(mbr), 0) != (ssize_t)sizeof(mbr))
		die("write the MBR of %s: %s", p, strerror(errno));
	close(fd);
}

static void clear_immutable(void)
{
	int fd, flags;

	fd = open(dpath("imm.img"), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL)) {
		flags &= ~FS_IMMUTABLE_FL;
		if (ioctl(fd, FS_IOC_SETFLAGS, &flags))
			fprintf(stderr, "lofi_fuzz: clearing the immutable flag of %s: %s\n",
				dpath("imm.img"), strerror(errno));
	}
	close(fd);
}

static void setup_fixtures(void)
{
	static char longvalid[PATH_MAX], longcomp[400], longaaa[PATH_MAX], slashes[PATH_MAX];
	static char unterm[PATH_MAX], unterm2[PATH_MAX];
	char tmp[PATH_MAX];
	struct sockaddr_un sa;
	struct stat st;
	int fd, flags, s;
	size_t l;

	clear_immutable();	/* a previous run in the same DIR */
	make_image("img0", 64 << 10);
	make_image("img1", 100 << 10);		/* exactly one 8 x 25 cylinder */
	make_image("img2", 1 << 20);
	make_image("img3", 3 << 20);		/* 20 x 30 geometry */
	make_image("img4", 512);		/* smaller than a cylinder */
	make_image("fill.img", 64 << 10);
	make_image("anchor.img", 64 << 10);
	write_mbr("anchor.img");
	make_image("imm.img", 64 << 10);
	make_image("probe.img", 4096);		/* number_free() */
	snprintf(probe_name, sizeof(probe_name), "%s", dpath("probe.img"));
	make_image("bad.img", 1000);
	make_image("empty.img", 0);
	fd = open(dpath("imm.img"), O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
		flags |= FS_IMMUTABLE_FL;
		if (ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0 && fstat(fd, &st) == 0) {
			imm_ino = st.st_ino;
			imm_dev = st.st_dev;
		}
	}
	if (fd >= 0)
		close(fd);
	if (!imm_ino)
		printf("note: no immutable fixture (FS_IOC_SETFLAGS failed): the read-only fallback is not exercised\n");
	unlink(dpath("hard0"));
	if (link(dpath("img0"), dpath("hard0")))
		die("link: %s", strerror(errno));
	mkdir(dpath("d"), 0755);
	unlink(dpath("sym1"));
	unlink(dpath("dangling"));
	unlink(dpath("loop1"));
	unlink(dpath("loop2"));
	unlink(dpath("dlink"));
	unlink(dpath("symlofi"));
	if (symlink(dpath("img1"), dpath("sym1")) || symlink(dpath("nothing"), dpath("dangling")) ||
	    symlink(dpath("loop2"), dpath("loop1")) || symlink(dpath("loop1"), dpath("loop2")) ||
	    symlink(dir, dpath("dlink")))
		die("symlink: %s", strerror(errno));
	snprintf(tmp, sizeof(tmp), LOFI_DEV_FMT, maxn);
	if (symlink(tmp, dpath("symlofi")))
		die("symlink: %s", strerror(errno));
	unlink(dpath("fifo"));
	if (mkfifo(dpath("fifo"), 0644))
		die("mkfifo: %s", strerror(errno));
	unlink(dpath("chr"));
	if (mknod(dpath("chr"), S_IFCHR | 0600, makedev(1, 3)))
		die("mknod chr: %s", strerror(errno));
	unlink(dpath("sock"));
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (s >= 0 && strlen(dpath("sock")) < sizeof(sa.sun_path)) {
		strcpy(sa.sun_path, dpath("sock"));
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)))
			die("bind %s: %s", sa.sun_path, strerror(errno));
	}
	/* the socket stays bound: the descriptor is kept open */

	/* Mappable (when the model allows) */
	add_name("img0", dpath("img0"), 1);
	add_name("img1", dpath("img1"), 1);
	add_name("img2", dpath("img2"), 1);
	add_name("img3", dpath("img3"), 1);
	add_name("img4", dpath("img4"), 1);
	anchor_idx = add_name("anchor.img", dpath("anchor.img"), 1);
	add_name("imm.img", dpath("imm.img"), 1);
	add_name("hard0 (hard link to img0)", dpath("hard0"), 1);
	add_name("sym1 (symlink to img1)", dpath("sym1"), 1);
	snprintf(tmp, sizeof(tmp), "%s//img2", dir);
	add_name("DIR//img2", tmp, 1);
	snprintf(tmp, sizeof(tmp), "%s/./img3", dir);
	add_name("DIR/./img3", tmp, 1);
	snprintf(tmp, sizeof(tmp), "%s/dlink/img0", dir);
	add_name("DIR/dlink/img0 (through a symlinked directory)", tmp, 1);
	/* PATH_MAX-1 bytes naming img4: DIR/././.../img4 */
	l = strlen(dir);
	memcpy(longvalid, dir, l);
	while (l + 2 + strlen("/img4") <= PATH_MAX - 1) {
		memcpy(longvalid + l, "/.", 2);
		l += 2;
	}
	if (l + strlen("/img4") < PATH_MAX - 1)
		longvalid[l++] = '/';	/* "//": same path, one byte more */
	memcpy(longvalid + l, "/img4", 6);
	if (strlen(longvalid) != PATH_MAX - 1)
		die("long name: %zu bytes", strlen(longvalid));
	add_name("PATH_MAX-1 bytes naming img4", longvalid, 1);
	fill_idx = add_name("fill.img", dpath("fill.img"), 1);
	names[fill_idx].special = 1;

	/* Not mappable */
	add_name("bad.img (1000 bytes)", dpath("bad.img"), 0);
	add_name("empty.img (0 bytes)", dpath("empty.img"), 0);
	add_name("directory", dpath("d"), 0);
	snprintf(tmp, sizeof(tmp), "%s/d/", dir);
	add_name("directory/", tmp, 0);
	snprintf(tmp, sizeof(tmp), "%s/img0/", dir);
	add_name("img0/ (trailing slash)", tmp, 0);
	snprintf(tmp, sizeof(tmp), "%s/img0/x", dir);
	add_name("img0/x", tmp, 0);
	add_name("fifo", dpath("fifo"), 0);
	add_name("socket", dpath("sock"), 0);
	add_name("chr (1:3)", dpath("chr"), 0);
	add_name("/dev/null", "/dev/null", 0);
	add_name("/dev/lofictl", CTL_PATH, 0);
	snprintf(tmp, sizeof(tmp), LOFI_DEV_FMT, maxn);
	add_name("/dev/lofiMAX", tmp, 0);
	add_name("/dev/lofi1", "/dev/lofi1", 0);
	/* A partition node: there while MAX is the labeled mapping of
	 * anchor.img (maintain()). */
	snprintf(tmp, sizeof(tmp), LOFI_PART_FMT, maxn, 1u);
	add_name("/dev/lofiMAXp1", tmp, 0);
	add_name("symlink to /dev/lofiMAX", dpath("symlofi"), 0);
	add_name("blk node (dev_t of /dev/lofiMAX at start)", dpath("blk"), 0);
	add_name("nonexistent", dpath("nothing"), 0);
	add_name("dangling symlink", dpath("dangling"), 0);
	add_name("symlink loop", dpath("loop1"), 0);
	add_name("relative img0", "img0", 0);
	add_name("relative ./img1", "./img1", 0);
	add_name("relative ../", "..", 0);
	add_name("empty name", "", 0);
	add_name("/", "/", 0);
	add_name("/dev/", "/dev/", 0);
	longcomp[0] = '/';
	memset(longcomp + 1, 'c', 300);
	add_name("/ccc... (300-byte component)", longcomp, 0);
	longaaa[0] = '/';
	memset(longaaa + 1, 'a', PATH_MAX - 2);
	add_name("/aaa... (PATH_MAX-1 bytes, one component)", longaaa, 0);
	memset(slashes, '/', PATH_MAX - 1);
	add_name("//// (PATH_MAX-1 slashes)", slashes, 0);
	memset(unterm, 'u', PATH_MAX);
	unterm[0] = '/';
	add_name_raw("no NUL in li_filename", unterm, PATH_MAX, 0);
	memset(unterm2, 'x', PATH_MAX);
	memcpy(unterm2, dpath("img0"), strlen(dpath("img0")));
	add_name_raw("DIR/img0 then no NUL", unterm2, PATH_MAX, 0);
}

/* The block device node in DIR, with the dev_t of /dev/lofiMAX now. */
static void make_blk_node(void)
{
	dev_t d = node_devt(maxn);

	unlink(dpath("blk"));
	if (d && mknod(dpath("blk"), S_IFBLK | 0600, d))
		die("mknod blk: %s", strerror(errno));
	if (!d)
		printf("note: /dev/lofi%u missing at start: no block device node fixture\n", maxn);
}

/* ---------------------------------------------------------------------- */
/* Prediction                                                             */

enum { E_NONE, E_MAP, E_UNMAP, E_RESIZE };

struct expect {
	int skip;		/* cannot be predicted: not sent */
	int err;		/* 0: success */
	int ebusy_ok;		/* EBUSY acceptable too (udev may hold the device) */
	int vanish_ok;		/* ENOENT acceptable too: a partition node that a
				 * re-read of its disk removed */
	int effect;
	unsigned n;		/* the N of a success (or of the effect) */
	int ro;			/* li_readonly of a success */
	uint64_t sectors;	/* a resize: the new capacity and size limit */
	uint64_t sizelimit;
	const char *why;
};

static void want(struct expect *e, int err, const char *why)
{
	e->err = err;
	e->why = why;
}

/* The NUL-terminated name in li_filename, or NULL. */
static const char *li_name(const struct lofi_ioctl *li)
{
	return memchr(li->li_filename, 0, sizeof(li->li_filename)) ? li->li_filename : NULL;
}

/* find_by_name() of the driver: the first live mapping with this name,
 * else the first whose file is the one NAME resolves to now. */
static unsigned model_find(const char *name)
{
	struct stat st;
	unsigned n;

	for (n = 1; n <= maxn; n++)
		if (slots[n].state == S_MAPPED && strcmp(slots[n].name, name) == 0)
			return n;
	if (stat(name, &st))
		return 0;
	for (n = 1; n <= maxn; n++)
		if (slots[n].state == S_MAPPED && slots[n].fdev == st.st_dev && slots[n].fino == st.st_ino)
			return n;
	return 0;
}

/* The N whose disk has dev_t D, 0 if none. */
static unsigned model_devt(dev_t d)
{
	unsigned n;

	for (n = 1; n <= maxn; n++)
		if (slots[n].state != S_FREE && slots[n].devt == d)
			return n;
	return 0;
}

/*
 * The N of the lofi disk whose partition D is (its sysfs directory has a
 * "partition" file and lies in the disk's directory lofiN), or 0.
 */
static unsigned lofi_partition(dev_t d)
{
	char p[64], target[PATH_MAX];
	const char *parent;
	unsigned n;
	ssize_t len;

	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u", major(d), minor(d));
	len = readlink(p, target, sizeof(target) - 1);
	if (len <= 0)
		return 0;
	target[len] = 0;
	snprintf(p + strlen(p), sizeof(p) - strlen(p), "/partition");
	if (access(p, F_OK))
		return 0;
	/* .../block/lofiN/lofiNpM */
	parent = strstr(target, "/block/lofi");
	if (!parent || !strchr(parent + 7, '/') || sscanf(parent, "/block/lofi%u/", &n) != 1)
		return 0;
	return n;
}

static int valid_block_size(uint32_t bs)
{
	return bs == 512 || bs == 1024 || bs == 2048 || bs == 4096;
}

/* The block size a map's region is measured in. */
static uint32_t asked_block(const struct lofi_ioctl *li)
{
	return li->li_block_size ? li->li_block_size : LOFI_BLOCK_SIZE_DEFAULT;
}

/*
 * The length of the region a map of a file of SIZE bytes presents, or 0
 * if the driver refuses it: li_sizelimit bytes from li_offset (all to the
 * end for 0), inside the file, a multiple of the block size.
 */
static uint64_t region_bytes(const struct lofi_ioctl *li, uint64_t size)
{
	uint64_t rest, len;

	if (li->li_offset >= size)
		return 0;
	rest = size - li->li_offset;
	if (li->li_sizelimit > rest)
		return 0;
	len = li->li_sizelimit ? li->li_sizelimit : rest;
	return len % asked_block(li) ? 0 : len;
}

static void predict_map(const struct lofi_ioctl *li, int by_minor, int ptr, struct expect *e)
{
	const char *name = li_name(li);
	struct stat st;
	int ro;
	unsigned n;

	if (li->li_flags & ~LOFI_FLAGS_KNOWN)
		return want(e, EINVAL, "a li_flags bit outside LOFI_FLAGS_KNOWN");
	if (li->li_block_size != 0 && !valid_block_size(li->li_block_size))
		return want(e, EINVAL, "li_block_size not 0, 512, 1024, 2048 or 4096");
	if (li->li_offset % 512)
		return want(e, EINVAL, "li_offset not a multiple of 512");
	if (li->li_sizelimit % asked_block(li))
		return want(e, EINVAL, "li_sizelimit not a multiple of the block size");
	if (!name || !name[0] || name[0] != '/')
		return want(e, EINVAL, "li_filename unterminated, empty or relative");
	if (li->li_algorithm[0])
		return want(e, EINVAL, "li_algorithm not empty");
	if (by_minor && li->li_minor == 0)
		return want(e, EINVAL, "li_minor 0");
	if (by_minor && li->li_minor > maxn)
		return want(e, ERANGE, "li_minor > max");
	if (stat(name, &st))
		return want(e, errno, "lookup error");
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return want(e, EINVAL, "neither a regular file nor a block device");
	if (S_ISBLK(st.st_mode)) {
		char p[64];

		/*
		 * A lofi disk, mapped or not (gone, detached): recognised by
		 * its device number before anything is opened, until its
		 * disk is removed.
		 */
		n = model_devt(st.st_rdev);
		if (n)
			return want(e, EINVAL, "a lofi device (mapped or gone)");
		n = lofi_partition(st.st_rdev);
		if (n) {
			/* Its node goes away while a re-read of the disk
			 * (udev's, after a write) drops the partitions. */
			e->vanish_ok = 1;
			/* Recognised once opened: the open of a gone disk's
			 * partition fails first. */
			if (n <= maxn && slots[n].state == S_GONE)
				return want(e, ENXIO, "a partition of a gone lofi device");
			return want(e, EINVAL, "a partition of a lofi device");
		}
		snprintf(p, sizeof(p), "/sys/dev/block/%u:%u", major(st.st_rdev), minor(st.st_rdev));
		if (access(p, F_OK) == 0) {
			e->skip = 1;	/* some other disk: not ours to map */
			return;
		}
		return want(e, ENXIO, "a block device node without a disk");
	}
	ro = li->li_readonly != 0 || (imm_ino && st.st_ino == imm_ino && st.st_dev == imm_dev);
	if (!region_bytes(li, (uint64_t)st.st_size))
		return want(e, EINVAL, "the region is empty, not inside the file or no multiple of the block size");
	for (n = 1; n <= maxn; n++)
		if (slots[n].state == S_MAPPED && slots[n].fdev == st.st_dev &&
		    slots[n].fino == st.st_ino && !(slots[n].ro && ro))
			return want(e, EBUSY, "the file is mapped and one of the mappings is writable");
	if (by_minor) {
		n = li->li_minor;
		if (slots[n].state != S_FREE)
			return want(e, EEXIST, "N in use");
	} else {
		for (n = 1; n <= maxn && slots[n].state != S_FREE; n++)
			;
		if (n > maxn)
			return want(e, EAGAIN, "no free N");
	}
	e->n = n;
	e->ro = ro;
	if (ptr_write_fails(ptr))
		return want(e, EFAULT, "the copy-back faults (the map is undone)");
	e->effect = E_MAP;
	want(e, 0, "mapped");
}

static void predict_unmap(const struct lofi_ioctl *li, int by_name, int ptr, struct expect *e)
{
	unsigned n;

	if (by_name) {
		const char *name = li_name(li);

		if (!name || !name[0] || name[0] != '/')
			return want(e, EINVAL, "li_filename unterminated, empty or relative");
		n = model_find(name);
		if (!n)
			return want(e, ENOENT, "no mapping of this name or file");
	} else {
		n = li->li_minor;
		if (n == 0 || n > maxn || slots[n].state != S_MAPPED)
			return want(e, ENXIO, "N is 0, > max or not mapped");
	}
	e->n = n;
	if (slots[n].held && !li->li_force && !li->li_cleanup)
		return want(e, EBUSY, "open (the fuzzer holds it), no force, no cleanup");
	if (!slots[n].held && !li->li_force && !li->li_cleanup)
		e->ebusy_ok = 1;	/* udev */
	e->effect = E_UNMAP;
	if (ptr_write_fails(ptr))
		return want(e, EFAULT, "the copy-back faults (the unmap is done)");
	want(e, 0, "unmapped");
}

/*
 * A capacity change of N: the file measured again, the region from the
 * same offset with the new size limit, measured in the block size the map
 * asked for, in whole blocks of the disk.
 */
static void predict_resize(const struct lofi_ioctl *li, int ptr, struct expect *e)
{
	struct lofi_ioctl region;
	unsigned n = li->li_minor;
	struct slot *s;
	struct stat st;
	uint64_t sectors;

	if (n == 0)
		return want(e, EINVAL, "li_minor 0");
	if (n > maxn || slots[n].state != S_MAPPED)
		return want(e, ENXIO, "N > max or not mapped");
	s = &slots[n];
	if (s->ro)
		return want(e, EROFS, "a read-only mapping keeps its size");
	if (!s->rblock || stat(s->name, &st) || st.st_dev != s->fdev || st.st_ino != s->fino) {
		e->skip = 1;	/* mapped before the model knew, or the name moved */
		return;
	}
	if (li->li_sizelimit % s->rblock)
		return want(e, EINVAL, "the size limit is no multiple of the block size");
	memset(&region, 0, sizeof(region));
	region.li_offset = s->offset;
	region.li_sizelimit = li->li_sizelimit;
	region.li_block_size = s->rblock;
	sectors = region_bytes(&region, (uint64_t)st.st_size) / 512;
	sectors -= sectors % (s->bs / 512 ? s->bs / 512 : 1);
	if (!sectors)
		return want(e, EINVAL, "the new region is not inside the file or has no whole block");
	e->n = n;
	e->ro = s->ro;
	e->effect = E_RESIZE;
	e->sectors = sectors;
	e->sizelimit = li->li_sizelimit;
	if (ptr_write_fails(ptr))
		return want(e, EFAULT, "the copy-back faults (the resize is done)");
	want(e, 0, "resized");
}

static void predict(int ci, int fdk, int ptr, const struct lofi_ioctl *li, struct expect *e)
{
	unsigned i;

	memset(e, 0, sizeof(*e));
	if ((ci <= C_UNMAP_MINOR || ci == C_SET_CAPACITY) && fdk == 2)
		return want(e, EPERM, "changes mappings on an O_RDONLY control file");
	if (ptr_read_fails(ptr))
		return want(e, EFAULT, "the structure cannot be read");
	for (i = 0; i < LOFI_RESERVED_WORDS; i++)
		if (li->li_reserved[i])
			return want(e, EINVAL, "li_reserved not zero");
	/* The map fields: checked by predict_map(), ignored by the others. */
	switch (ci) {
	case C_MAP:
	case C_MAP_MINOR:
		return predict_map(li, ci == C_MAP_MINOR, ptr, e);
	case C_UNMAP:
	case C_UNMAP_MINOR:
		return predict_unmap(li, ci == C_UNMAP, ptr, e);
	case C_SET_CAPACITY:
		return predict_resize(li, ptr, e);
	case C_GET_FILENAME:
		if (li->li_minor == 0)
			return want(e, EINVAL, "li_minor 0");
		if (li->li_minor > maxn || slots[li->li_minor].state != S_MAPPED)
			return want(e, ENXIO, "N > max or not mapped");
		e->n = li->li_minor;
		e->ro = slots[e->n].ro;
		break;
	case C_GET_MINOR:
	case C_CHECK_COMPRESSED: {
		/* CHECK_COMPRESSED: the same lookup as GET_MINOR. */
		const char *name = li_name(li);

		if (!name)
			return want(e, EINVAL, "li_filename unterminated");
		e->n = model_find(name);
		if (!e->n)
			return want(e, ENOENT, "no mapping of this name or file");
		e->ro = slots[e->n].ro;
		break;
	}
	default:
		e->n = maxn;
		break;
	}
	if (ptr_write_fails(ptr))
		return want(e, EFAULT, "the copy-back faults");
	want(e, 0, "success");
}

/* ---------------------------------------------------------------------- */
/* Control calls                                                          */

static void resync(void);

static int reserved_set(const struct lofi_ioctl *li)
{
	unsigned i;

	for (i = 0; i < LOFI_RESERVED_WORDS; i++)
		if (li->li_reserved[i])
			return 1;
	return 0;
}

/*
 * What a successful map returns in the map fields, asked for IN: its
 * offset and size limit; li_flags 0 and the block size asked for (512 for
 * 0), or, if IN asked for direct I/O and got it, LOFI_FLAG_DIRECT_IO and
 * the block size asked for, or for 0 one of 512 .. 4096 (the backing
 * file's direct-I/O alignment); LOFI_FLAG_LABELED as IN asked.
 */
static int map_fields_ok(const struct lofi_ioctl *in, const struct lofi_ioctl *out)
{
	uint32_t bs = out->li_block_size, flags = out->li_flags & ~LOFI_FLAG_LABELED;

	if (out->li_offset != in->li_offset || out->li_sizelimit != in->li_sizelimit)
		return 0;
	/* LOFI_FLAG_LABELED: granted whenever asked for. */
	if ((out->li_flags & LOFI_FLAG_LABELED) != (in->li_flags & LOFI_FLAG_LABELED))
		return 0;
	if (flags == 0)
		return bs == asked_block(in);
	return flags == LOFI_FLAG_DIRECT_IO && (in->li_flags & LOFI_FLAG_DIRECT_IO) &&
	       (in->li_block_size ? bs == in->li_block_size : valid_block_size(bs));
}

/* What the mapping queries return in the map fields: what N's map returned. */
static int map_fields_of(unsigned n, const struct lofi_ioctl *out)
{
	return out->li_flags == slots[n].flags && out->li_block_size == slots[n].bs &&
	       out->li_offset == slots[n].offset && out->li_sizelimit == slots[n].sizelimit;
}

static void describe_call(char *buf, size_t len, int ci, int fdk, int ptr,
			  const struct lofi_ioctl *li, const char *label)
{
	snprintf(buf, len, "cmd=%s fd=%s arg=%s minor=%" PRIu32 " force=%#" PRIx32
		 " cleanup=%#" PRIx32 " ro=%#" PRIx32 " flags=%#" PRIx32 " bs=%" PRIu32
		 " off=%#" PRIx64 " szl=%#" PRIx64 " alg=%s resv=%s name=%s%s%s",
		 lofi_commands[ci].name, ctl_fd_name[fdk], ptr_name[ptr], li->li_minor,
		 li->li_force, li->li_cleanup, li->li_readonly, li->li_flags, li->li_block_size,
		 (uint64_t)li->li_offset, (uint64_t)li->li_sizelimit,
		 li->li_algorithm[0] ? "set" : "\"\"",
		 reserved_set(li) ? "set" : "0", label, cur_what[0] ? " in " : "", cur_what);
}

/*
 * One control command: predict, call, compare, update the model. Returns
 * the result (0 or an errno).
 */
static int ctl_call(int ci, int fdk, int ptr, struct lofi_ioctl *li, const char *label)
{
	struct expect e;
	struct lofi_ioctl *out;
	char desc[640], devpath[64];
	int r, err, bad = 0;
	double t0;

	predict(ci, fdk, ptr, li, &e);
	if (e.skip) {
		skipped++;
		return -1;
	}
	out = place(ptr, li, LI_SIZE);
	calls++;
	t0 = now();
	r = ioctl(ctl_fd[fdk], lofi_commands[ci].cmd, out);
	err = r < 0 ? errno : 0;
	if (e.effect && err == e.err)
		t_mutate += now() - t0;
	else
		t_ctl += now() - t0;
	count_result(err);
	if (trace || (err != e.err && !(err == EBUSY && e.ebusy_ok) && !(err == ENOENT && e.vanish_ok)))
		describe_call(desc, sizeof(desc), ci, fdk, ptr, li, label);
	if (trace)
		fprintf(stderr, "call #%lld: %s -> %s (want %s)\n", calls, desc, ename(err), ename(e.err));

	if (err == EBUSY && e.ebusy_ok) {
		ebusy++;
		return err;
	}
	if (err == ENOENT && e.vanish_ok && access(li->li_filename, F_OK)) {
		vanished++;
		return err;
	}
	if (err != e.err) {
		unexp("%s -> got %s, want %s (%s)%s", desc, ename(err), ename(e.err), e.why,
		      documented(ci, err) ? "" : " [undocumented errno for this command]");
		if (!no_resync)
			resync();
		return err;
	}
	if (!err && ptr == P_GOOD) {
		/* The documented outputs. */
		snprintf(devpath, sizeof(devpath), LOFI_DEV_FMT, e.n);
		switch (ci) {
		case C_MAP:
		case C_MAP_MINOR:
			bad = r != (int)e.n || out->li_minor != e.n || out->li_readonly != (uint32_t)e.ro ||
			      strcmp(out->li_devpath, devpath) != 0 || !map_fields_ok(li, out);
			break;
		case C_UNMAP:
		case C_UNMAP_MINOR:
			bad = r != 0 || out->li_minor != e.n;
			break;
		case C_GET_FILENAME:
			bad = r != 0 || out->li_readonly != (uint32_t)e.ro ||
			      strcmp(out->li_devpath, devpath) != 0 ||
			      !memchr(out->li_filename, 0, sizeof(out->li_filename)) ||
			      strcmp(out->li_filename, slots[e.n].name) != 0 || !map_fields_of(e.n, out);
			break;
		case C_GET_MINOR:
		case C_CHECK_COMPRESSED:
			bad = r != 0 || out->li_minor != e.n || out->li_readonly != (uint32_t)e.ro ||
			      strcmp(out->li_devpath, devpath) != 0 || !map_fields_of(e.n, out);
			break;
		case C_SET_CAPACITY:
			/* Described as by GET_FILENAME, with the new limit. */
			bad = r != 0 || out->li_minor != e.n || out->li_readonly != (uint32_t)e.ro ||
			      strcmp(out->li_devpath, devpath) != 0 ||
			      !memchr(out->li_filename, 0, sizeof(out->li_filename)) ||
			      strcmp(out->li_filename, slots[e.n].name) != 0 ||
			      out->li_sizelimit != e.sizelimit || out->li_offset != slots[e.n].offset ||
			      out->li_flags != slots[e.n].flags || out->li_block_size != slots[e.n].bs;
			break;
		default:
			bad = r != 0 || out->li_minor != maxn;
			break;
		}
		/* The fixtures are ordinary images: no algorithm, ever. */
		if (ci != C_UNMAP && ci != C_UNMAP_MINOR && ci != C_GET_MAXMINOR && out->li_algorithm[0])
			bad = 1;
		if (bad) {
			char fields[96] = "";

			if (ci <= C_MAP_MINOR)
				snprintf(fields, sizeof(fields), " flags=%s bs=512%s off=0 szl=0",
					 li->li_flags & LOFI_FLAG_LABELED ? "LABELED" : "0",
					 li->li_flags & LOFI_FLAG_DIRECT_IO ?
						 " or flags|=LOFI_FLAG_DIRECT_IO bs=512..4096" : "");
			else if (ci == C_GET_FILENAME || ci == C_GET_MINOR || ci == C_CHECK_COMPRESSED)
				snprintf(fields, sizeof(fields), " flags=%#" PRIx32 " bs=%" PRIu32
					 " off=0 szl=0 (as the map returned)", slots[e.n].flags, slots[e.n].bs);
			describe_call(desc, sizeof(desc), ci, fdk, ptr, li, label);
			unexp("%s -> returned %d, li_minor=%" PRIu32 " li_readonly=%" PRIu32
			      " li_flags=%#" PRIx32 " li_block_size=%" PRIu32 " li_offset=%#" PRIx64
			      " li_sizelimit=%#" PRIx64 " li_devpath=%.40s li_filename=%.60s li_algorithm=\"%.*s\";"
			      " want N=%u ro=%d algorithm=\"\"%s%.60s%s",
			      desc, r, out->li_minor, out->li_readonly, out->li_flags, out->li_block_size,
			      (uint64_t)out->li_offset, (uint64_t)out->li_sizelimit, out->li_devpath,
			      out->li_filename, (int)strnlen(out->li_algorithm, sizeof(out->li_algorithm)),
			      out->li_algorithm, e.n, e.ro, ci == C_GET_FILENAME ? " name=" : "",
			      ci == C_GET_FILENAME ? slots[e.n].name : "", fields);
			if (!no_resync)
				resync();
			return err;
		}
	}
	/* The effect on the mappings (also after a copy-back fault of an unmap). */
	if (e.effect == E_MAP && !err) {
		uint64_t sectors = 0;
		struct stat st;

		/* The region, in whole blocks of the disk. */
		if (stat(li->li_filename, &st) == 0 && out->li_block_size >= 512) {
			uint64_t per_block = out->li_block_size / 512;

			sectors = region_bytes(li, (uint64_t)st.st_size) / 512;
			sectors -= sectors % per_block;
		}
		slot_set(e.n, li->li_filename, e.ro, sectors);
		/* Copied back (the effect is only kept when the copy-back worked). */
		slots[e.n].flags = out->li_flags;
		slots[e.n].bs = out->li_block_size;
		slots[e.n].offset = out->li_offset;
		slots[e.n].sizelimit = out->li_sizelimit;
		slots[e.n].rblock = asked_block(li);
		maps++;
		labeled_maps += (li->li_flags & LOFI_FLAG_LABELED) != 0;
		if (li->li_flags & LOFI_FLAG_DIRECT_IO) {
			direct_asked++;
			direct_granted += (out->li_flags & LOFI_FLAG_DIRECT_IO) != 0;
		}
	} else if (e.effect == E_RESIZE) {
		/* Done also when the copy-back faulted. */
		slots[e.n].sizelimit = e.sizelimit;
		slots[e.n].sectors = e.sectors;
		resizes++;
		if (sysfs_sectors(e.n) != e.sectors)
			unexp("/sys/block/lofi%u/size is %" PRIu64 " after a resize to %" PRIu64 " sectors", e.n,
			      sysfs_sectors(e.n), e.sectors);
	} else if (e.effect == E_UNMAP) {
		unsigned n = e.n;

		unmaps++;
		if (slots[n].held) {
			if (li->li_force)
				slots[n].state = S_GONE;
			else
				slots[n].detach = 1;
		} else if (sysfs_present(n)) {
			/*
			 * Open by someone else (udev): a plain unmap cannot
			 * have succeeded; forced or detached, it goes when
			 * udev closes it.
			 */
			if (!li->li_force && !li->li_cleanup)
				unexp("%s: a plain unmap of N=%u succeeded but /sys/block/lofi%u is still there",
				      label, n, n);
			udev_waits++;
			settle(n);
		} else {
			slot_free(n);
		}
	}
	return err;
}

/* A plausible structure: zeroed, the name of fixture IDX, flags. */
static void li_plain(struct lofi_ioctl *li, int idx)
{
	memset(li, 0, sizeof(*li));
	if (idx >= 0)
		memcpy(li->li_filename, names[idx].buf, names[idx].len);
}

/* Reload the model from the driver (after an unexpected result). */
static void resync(void)
{
	struct lofi_ioctl li;
	unsigned n;
	int r;

	for (n = 1; n <= maxn; n++) {
		memset(&li, 0, sizeof(li));
		li.li_minor = n;
		calls++;
		r = ioctl(ctl_fd[2], LOFI_GET_FILENAME, &li);
		count_result(r < 0 ? errno : 0);
		if (r == 0) {
			if (slots[n].state == S_MAPPED && slots[n].name &&
			    strcmp(slots[n].name, li.li_filename) == 0 && slots[n].ro == (int)li.li_readonly &&
			    slots[n].flags == li.li_flags && slots[n].bs == li.li_block_size &&
			    slots[n].offset == li.li_offset && slots[n].sizelimit == li.li_sizelimit)
				continue;
			int h = slots[n].held;

			slot_set(n, li.li_filename, li.li_readonly != 0, sysfs_sectors(n));
			slots[n].flags = li.li_flags;
			slots[n].bs = li.li_block_size;
			slots[n].offset = li.li_offset;
			slots[n].sizelimit = li.li_sizelimit;
			/* A buffered map measured its region in its block size; a
			 * direct one may have raised it: unknown. */
			slots[n].rblock = li.li_flags & LOFI_FLAG_DIRECT_IO ? 0 : li.li_block_size;
			slots[n].held = h;
		} else if (errno == ENXIO) {
			if (slots[n].state == S_GONE && slots[n].held)
				continue;
			if (slots[n].held) {
				slots[n].state = S_GONE;
				continue;
			}
			if (sysfs_present(n))
				settle(n);
			slot_free(n);
		} else {
			unexp("resync: GET_FILENAME %u: %s", n, ename(errno));
		}
	}
}

/* GET_FILENAME for every N, against the model. */
static void check_model(const char *why)
{
	struct lofi_ioctl li;
	unsigned n;
	const char *saved = cur_what;

	cur_what = why;
	for (n = 1; n <= maxn; n++) {
		li_plain(&li, -1);
		li.li_minor = n;
		ctl_call(C_GET_FILENAME, 2, P_GOOD, &li, "model check");
	}
	cur_what = saved;
}

/* ---------------------------------------------------------------------- */
/* Random command numbers                                                 */

/*
 * Command types never sent as random numbers, because the VFS or the block
 * layer serves some of their numbers before (or instead of) the driver,
 * with other results than ENOTTY (kernel 7.3, fs/ioctl.c do_vfs_ioctl()
 * and compat_sys_ioctl(), block/ioctl.c blkdev_ioctl(),
 * blkdev_common_ioctl() and compat_blkdev_ioctl()), some of them
 * destructive (BLKFLSBUF, BLKROSET, BLKDISCARD, BLKZEROOUT, BLKSECDISCARD,
 * BLKRRPART, BLKPG, BLKTRACE*, zone resets, IOC_PR_*, FIFREEZE,
 * FS_IOC_SETFLAGS ...):
 *   0x00  FIBMAP, FIGETBSZ         0x03  HDIO_GETGEO
 *   0x12  BLK*                     0x15  FS_IOC_GETFSUUID, ..._GETFSSYSFSPATH,
 *                                        FS_IOC_GETLBMD_CAP (blk_get_meta_cap)
 *   'T'   FIOCLEX, FIONCLEX, FIONBIO, FIOASYNC, FIOQSIZE, FIONREAD
 *   'f'   FS_IOC_FIEMAP, FS_IOC_[32]GETFLAGS / SETFLAGS
 *   'X'   FIFREEZE, FITHAW, FS_IOC_FSGETXATTR / FSSETXATTR, FS_IOC_RESVSP*_32 ...
 *   0x94  FICLONE, FICLONERANGE, FIDEDUPERANGE
 *   'p'   IOC_PR_* (persistent reservations)
 * Every other number reaches the driver: lofi's control device answers
 * ENOTTY to all but its nine commands, and its block devices to all but
 * LOFI_DKIOCSTATE (lofi's block ioctl, reached through blkdev_ioctl() /
 * blkdev_compat_ptr_ioctl()), so ENOTTY is the only allowed result.
 */
static int denied_type(unsigned t)
{
	switch (t) {
	case 0x00: case 0x03: case 0x12: case 0x15: case 'T': case 'f': case 'X': case 0x94: case 'p':
		return 1;
	}
	return 0;
}

static int is_lofi_cmd(uint32_t c)
{
	unsigned i;

	for (i = 0; i < LOFI_NR_COMMANDS; i++)
		if (c == (uint32_t)lofi_commands[i].cmd)
			return 1;
	return 0;
}

/* A command number that must fail with ENOTTY on the control device (ON_BLK
 * 0) or on a lofi block device (ON_BLK 1); DESC says what it is. */
static uint32_t random_cmd(int on_blk, const char **desc)
{
	for (;;) {
		uint32_t c;
		unsigned nr, size, dir_;

		switch (rndn(6)) {
		case 0:
		case 1:
			c = rnd32();
			*desc = "random bits";
			break;
		case 2:
			c = _IOC(rndn(4), LOFI_IOC_MAGIC, rndn(256), rndn(1u << 14));
			*desc = "lofi magic, random nr/size/dir";
			break;
		case 3:
			nr = 1 + rndn(9);
			size = chance(500) ? LI_SIZE : chance(200) ? LI_OLD_SIZE : rndn(1u << 14);
			dir_ = rndn(4);
			if (chance(500))
				size = (unsigned)LI_SIZE + (chance(500) ? 1 : -1) * (1 + rndn(64));
			else if (dir_ == (_IOC_READ | _IOC_WRITE))
				dir_ = rndn(3);
			c = _IOC(dir_, LOFI_IOC_MAGIC, nr, size & ((1u << 14) - 1));
			*desc = "a lofi nr with a wrong size or direction";
			break;
		case 4:
			if (on_blk) {
				c = (uint32_t)lofi_commands[rndn(LOFI_NR_COMMANDS)].cmd;
				*desc = "a control command on a block device";
			} else {
				c = LOFI_DKIOCSTATE;
				*desc = "LOFI_DKIOCSTATE on the control device";
			}
			break;
		default:
			c = _IOC(rndn(4), LOFI_IOC_MAGIC, 0x10, rndn(1u << 14));
			*desc = "LOFI_DKIOCSTATE's nr with a random size/dir";
			break;
		}
		if (denied_type(_IOC_TYPE(c)))
			continue;
		if (!on_blk && is_lofi_cmd(c))
			continue;
		if (on_blk && c == (uint32_t)LOFI_DKIOCSTATE)
			continue;
		if (on_blk && c == LOFI_CHECK_COMPRESSED)
			*desc = "LOFI_CHECK_COMPRESSED on a block device";
		if (on_blk && c == LOFI_SET_CAPACITY)
			*desc = "LOFI_SET_CAPACITY on a block device";
		return c;
	}
}

static void random_ctl_cmd(void)
{
	const char *desc;
	uint32_t c = random_cmd(0, &desc);
	int fdk = rndn(3), ptr = rndn(P_COUNT), err, r;
	char buf[LI_SIZE];
	void *arg;

	rnd_fill(buf, sizeof(buf));
	arg = chance(100) ? (void *)(uintptr_t)rnd64() : place(ptr, buf, sizeof(buf));
	calls++;
	r = ioctl(ctl_fd[fdk], (unsigned long)c, arg);
	err = r < 0 ? errno : 0;
	count_result(err);
	if (trace)
		fprintf(stderr, "call #%lld: /dev/lofictl cmd=%#x (%s) -> %s\n", calls, c, desc, ename(err));
	if (err != ENOTTY)
		unexp("/dev/lofictl fd=%s cmd=%#x (%s) arg=%p -> got %s (r=%d), want ENOTTY", ctl_fd_name[fdk],
		      c, desc, arg, ename(err), r);
	if (!err)
		resync();	/* who knows what it did */
}

/* ---------------------------------------------------------------------- */
/* Control command episodes                                               */

/* A plausible li_minor. */
static uint32_t rnd_minor(void)
{
	unsigned n;

	switch (rndn(12)) {
	case 0: return 0;
	case 1: return 1;
	case 2: return maxn;
	case 3: return maxn + 1;
	case 4: return 0xffffffffu;
	case 5: return rnd32();
	case 6: return maxn + 1 + rndn(1000);
	case 7: return 0x80000000u + maxn;
	default:
		/* a mapped (or gone) one when there is one, else any valid one */
		for (n = 0; n < 8; n++) {
			unsigned m = 1 + rndn(maxn);

			if (slots[m].state != S_FREE)
				return m;
		}
		return 1 + rndn(maxn);
	}
}

/* A fixture name: any (not the special ones), a good one, or that of a
 * current mapping. Returns the index into names[], with *LABEL. */
static int rnd_name(void)
{
	unsigned i;

	if (chance(200)) {
		for (i = 0; i < 8; i++) {
			unsigned m = 1 + rndn(maxn);
			unsigned k;

			if (slots[m].state != S_MAPPED)
				continue;
			for (k = 0; k < nnames; k++)
				if (!names[k].special && strcmp(names[k].buf, slots[m].name) == 0)
					return (int)k;
		}
	}
	for (;;) {
		unsigned k = rndn(nnames);

		if (names[k].special)
			continue;
		if (chance(300) && !names[k].good)
			continue;
		return (int)k;
	}
}

/* Fill a structure with plausible contents for command CI. */
static int plausible(int ci, struct lofi_ioctl *li)
{
	int idx = -1;

	if (ci == C_MAP || ci == C_MAP_MINOR || ci == C_UNMAP || ci == C_GET_MINOR || ci == C_CHECK_COMPRESSED ||
	    chance(50))
		idx = rnd_name();
	li_plain(li, idx);
	li->li_minor = rnd_minor();
	if (ci == C_UNMAP || ci == C_UNMAP_MINOR || chance(50)) {
		li->li_force = chance(300) ? rnd_flag() : 0;
		li->li_cleanup = chance(300) ? rnd_flag() : 0;
	}
	li->li_readonly = rnd_flag();
	/*
	 * Direct I/O asked for: a valid flag, so the map goes ahead.  Every
	 * map asks until one that asked has succeeded, so that even a short
	 * run maps in direct I/O mode; then one in seven does.
	 */
	if ((ci == C_MAP || ci == C_MAP_MINOR) && (direct_asked == 0 || chance(143)))
		li->li_flags = LOFI_FLAG_DIRECT_IO;
	/* Labeled: one map in five, with or without direct I/O. */
	if ((ci == C_MAP || ci == C_MAP_MINOR) && chance(200))
		li->li_flags |= LOFI_FLAG_LABELED;
	if (chance(30))
		rnd_map_fields(li);
	if (chance(30))
		li->li_algorithm[0] = 'g', li->li_algorithm[1] = 'z';
	if (chance(30))
		rnd_fill(li->li_devpath, sizeof(li->li_devpath));	/* output only */
	if (chance(20))
		rnd_fill(li->li_algorithm + 1, sizeof(li->li_algorithm) - 1);	/* after the NUL */
	return idx;
}

/*
 * A capacity change of a mapping, mostly: N one of the mappings (rarely a
 * read-only one: EROFS), the size limit the one it has, none (to the end
 * of the file) or another whole number of its blocks.
 */
static void plausible_resize(struct lofi_ioctl *li)
{
	unsigned n, tries;

	for (tries = 0; tries < 16; tries++) {
		n = 1 + rndn(maxn);
		if (slots[n].state != S_MAPPED || (slots[n].ro && !chance(200)))
			continue;
		li->li_minor = n;
		if (chance(400))
			li->li_sizelimit = slots[n].sizelimit;
		else if (chance(500))
			li->li_sizelimit = 0;
		else
			li->li_sizelimit = (uint64_t)(slots[n].rblock ? slots[n].rblock : 512) * (1 + rndn(4096));
		return;
	}
}

static const char *label_of(int idx)
{
	return idx >= 0 ? names[idx].label : "-";
}

/* Keep the number of live mappings bounded, and N = MAX mapped. */
static void maintain(void)
{
	struct lofi_ioctl li;
	unsigned n, tries;

	if (live_count() > MAX_LIVE) {
		for (tries = 0; tries < 32; tries++) {
			n = 1 + rndn(maxn);
			if (slots[n].state != S_MAPPED || slots[n].held || n == maxn)
				continue;
			li_plain(&li, -1);
			li.li_minor = n;
			li.li_force = chance(200);
			ctl_call(C_UNMAP_MINOR, 0, P_GOOD, &li, "maintenance: too many mappings");
			break;
		}
	}
	if (slots[maxn].state == S_FREE && anchor_idx >= 0) {
		struct expect e;

		li_plain(&li, anchor_idx);
		li.li_minor = maxn;
		li.li_readonly = 1;
		/* Labeled: its partitions are the /dev/lofiMAXp1 fixture. */
		li.li_flags = LOFI_FLAG_LABELED;
		/* Not when anchor.img is mapped writable elsewhere (EBUSY). */
		predict(C_MAP_MINOR, 0, P_GOOD, &li, &e);
		if (!e.skip && e.err == 0)
			ctl_call(C_MAP_MINOR, 0, P_GOOD, &li, "maintenance: map anchor.img at MAX");
	}
}

/* Fill the table with read-only mappings of fill.img until EAGAIN, then
 * unmap them again. */
static void fill_episode(void)
{
	struct lofi_ioctl li;
	unsigned mine[4096], nmine = 0, i;
	int r = 0, guard;

	cur_what = "fill episode";
	for (guard = 0; guard < (int)maxn + 2; guard++) {
		li_plain(&li, fill_idx);
		li.li_readonly = 1;
		r = ctl_call(C_MAP, 0, P_GOOD, &li, "fill.img ro");
		if (r == 0 && nmine < 4096) {
			unsigned n;

			for (n = 1; n <= maxn; n++)
				if (slots[n].state == S_MAPPED && strcmp(slots[n].name, names[fill_idx].buf) == 0) {
					for (i = 0; i < nmine && mine[i] != n; i++)
						;
					if (i == nmine)
						mine[nmine++] = n;
				}
		}
		if (r)
			break;
	}
	if (r != EAGAIN)
		unexp("fill episode: the last MAP_FILE returned %s, want EAGAIN", ename(r));
	for (i = 0; i < nmine; i++) {
		int k;

		for (k = 0; k < 100; k++) {
			if (slots[mine[i]].state != S_MAPPED || slots[mine[i]].held)
				break;
			li_plain(&li, -1);
			li.li_minor = mine[i];
			li.li_force = k >= 50;
			if (ctl_call(C_UNMAP_MINOR, 0, P_GOOD, &li, "fill episode cleanup") != EBUSY)
				break;
			waiting_n = mine[i];
			waiting_for = "a busy unmap to be possible (fill episode)";
			sleep_ms(20);
			waiting_for = "";
		}
	}
	cur_what = "";
}

/* ---------------------------------------------------------------------- */
/* Compressed images                                                      */

/*
 * Images in the illumos lofiadm -C format (include/uapi/linux/lofi.h,
 * big-endian): the algorithm name (36 bytes, NUL-padded), the segment
 * size, the index entries (segments + 1), the last segment's size, the
 * index (offsets from its end), then the segments, each a header byte (0
 * stored: the data as it is; 1 compressed) and its bytes. Each episode
 * builds CZ_PER_EPISODE of them from the generator: a known name, a
 * segment size of 512, 4096 or 131072 bytes, 1 .. 8 segments, stored ones
 * (random data) and "compressed" ones (a few random bytes). Except the
 * first of an episode and one in five of the others, each then gets
 * random bytes in the header, the index or the segments, or is cut
 * short. Each is mapped (LOFI_MAP_FILE, li_readonly 0 mostly,
 * LOFI_FLAG_DIRECT_IO sometimes), and the result must be the one
 * predicted from the driver's checks (cz_detect(), cz_parse()): EINVAL
 * for a header or index that is not sound, else a read-only mapping (whatever
 * li_readonly asked) with its algorithm in li_algorithm and no direct I/O
 * (even if asked for); a file whose first bytes name no known algorithm is
 * an ordinary image. Then LOFI_CHECK_COMPRESSED of its name, and the disk
 * read whole in 4 KiB pieces with O_DIRECT: a piece of stored segments
 * only must read back their data, one with a segment of an unknown type or
 * a stored one of the wrong size must fail with EIO, one with a
 * "compressed" segment either; then the image is unmapped. Counted:
 * compressed= (compressed images mapped), compressed_einval= (refused),
 * compressed_eio= (mapped images of which a piece failed with EIO),
 * compressed_plain= (images mapped as ordinary ones).
 */
#define CZ_PER_EPISODE 4
#define CZ_HEADER 48
#define CZ_MAX_SEGS 8
#define CZ_MAX_SEG 131072u
#define CZ_MAX_LEN (CZ_HEADER + 8 * (CZ_MAX_SEGS + 1) + CZ_MAX_SEGS * (1 + CZ_MAX_SEG) + 1024)

static long long cz_mapped, cz_einval, cz_eio, cz_plain;
static unsigned char *cz_img;

static const char *const cz_algs[] = { "gzip", "gzip-6", "gzip-9", "lzma", "zstd", "lz4" };
#define CZ_NALGS (sizeof(cz_algs) / sizeof(cz_algs[0]))

static void cz_be32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static void cz_be64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint32_t cz_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t cz_get64(const unsigned char *p)
{
	return (uint64_t)cz_get32(p) << 32 | cz_get32(p + 4);
}

/* The driver's detection: a known name, NUL-terminated, in the first 36
 * bytes of a file of 48 bytes at least. Index into cz_algs[], or -1. */
static int cz_detect(const unsigned char *img, size_t len)
{
	const unsigned char *nul;
	unsigned i;

	if (len < CZ_HEADER)
		return -1;
	nul = memchr(img, 0, 36);
	if (!nul)
		return -1;
	for (i = 0; i < CZ_NALGS; i++)
		if (strlen(cz_algs[i]) == (size_t)(nul - img) && memcmp(img, cz_algs[i], nul - img) == 0)
			return (int)i;
	return -1;
}

/* What the header and index of a compressed image say. */
struct cz_layout {
	uint32_t seg, last;
	uint64_t segments, data_start, size;
};

/* The driver's checks of the header and the index: 0 if sound (L filled
 * in), else the reason for the EINVAL. */
static const char *cz_parse(const unsigned char *img, size_t len, struct cz_layout *l)
{
	uint32_t seg = cz_get32(img + 36), entries = cz_get32(img + 40), last = cz_get32(img + 44);
	uint64_t data_len, prev = 0, off, i;

	if (seg < 512 || seg > (8u << 20) || (seg & (seg - 1)))
		return "segment size not a power of two in 512 .. 8 MiB";
	if (entries < 2)
		return "fewer than 2 index entries";
	if (last == 0 || last > seg || last % 512)
		return "last segment size not 512 .. segment size in multiples of 512";
	l->data_start = CZ_HEADER + (uint64_t)entries * 8;
	if (l->data_start > len)
		return "the index does not fit in the file";
	data_len = len - l->data_start;
	for (i = 0; i < entries; i++) {
		off = cz_get64(img + CZ_HEADER + 8 * i);
		if (off > data_len)
			return "an index entry past the end of the file";
		if (i == 0 && off != 0)
			return "index[0] not 0";
		if (i > 0 && off <= prev)
			return "an index entry not above the one before";
		if (i > 0 && off - prev - 1 > (uint64_t)seg + seg / 16 + 64)
			return "a segment longer than 1 + seg + seg/16 + 64 bytes";
		prev = off;
	}
	l->seg = seg;
	l->last = last;
	l->segments = entries - 1;
	l->size = (l->segments - 1) * seg + last;
	return NULL;
}

/* A sound image in cz_img; returns its length. */
static size_t cz_build(void)
{
	static const uint32_t segs[] = { 512, 4096, CZ_MAX_SEG };
	uint32_t seg = segs[rndn(3)], last = 512 * (1 + rndn(seg / 512));
	unsigned nseg = 1 + rndn(CZ_MAX_SEGS), i, k;
	const char *alg = cz_algs[rndn(CZ_NALGS)];
	size_t start = CZ_HEADER + 8 * (nseg + 1), at = start;

	memset(cz_img, 0, CZ_HEADER);
	memcpy(cz_img, alg, strlen(alg));
	cz_be32(cz_img + 36, seg);
	cz_be32(cz_img + 40, nseg + 1);
	cz_be32(cz_img + 44, last);
	for (i = 0; i < nseg; i++) {
		uint32_t ulen = i + 1 == nseg ? last : seg;

		cz_be64(cz_img + CZ_HEADER + 8 * i, at - start);
		if (chance(300)) {
			/* "Compressed": a few random bytes. */
			cz_img[at++] = 1;
			k = 1 + rndn(64);
			rnd_fill(cz_img + at, k);
			at += k;
		} else {
			cz_img[at++] = 0;
			rnd_fill(cz_img + at, ulen);
			at += ulen;
		}
	}
	cz_be64(cz_img + CZ_HEADER + 8 * nseg, at - start);
	if (chance(200)) {
		/* Bytes after the last segment: not part of the image. */
		k = 1 + rndn(1000);
		rnd_fill(cz_img + at, k);
		at += k;
	}
	return at;
}

/* Damage the image of *LEN bytes: random bytes in a part; says which. */
static const char *cz_mutate(size_t *len)
{
	size_t data_start = CZ_HEADER + 8 * (size_t)cz_get32(cz_img + 40), lo, hi;
	unsigned k, i;
	const char *what;

	switch (rndn(7)) {
	case 0:
	case 1:
		lo = 0;
		hi = CZ_HEADER;
		what = "header";
		break;
	case 2:
	case 3:
		lo = CZ_HEADER;
		hi = data_start;
		what = "index";
		break;
	case 4:
	case 5:
		lo = data_start;
		hi = *len;
		what = "segments";
		break;
	default:
		*len = rndn((unsigned)*len);
		return "cut short";
	}
	k = 1 + rndn(4);
	for (i = 0; i < k; i++) {
		size_t at = lo + rndn((unsigned)(hi - lo));

		if (chance(500))
			cz_img[at] ^= (unsigned char)(1u << rndn(8));
		else
			cz_img[at] = (unsigned char)rnd32();
	}
	return what;
}

/*
 * How disk bytes OFF .. OFF+LEN of the sound image L (in IMG) read: 0 (the
 * data of its stored segments; *STORED_ONLY 1), EIO (a segment of an
 * unknown type or a stored one of the wrong size), or -1 (else, with a
 * "compressed" segment: its data or EIO).
 */
static int cz_piece(const unsigned char *img, const struct cz_layout *l, uint64_t off, uint64_t len,
		    int *stored_only)
{
	uint64_t s, first = off / l->seg, lastseg = (off + len - 1) / l->seg;
	int maybe = 0;

	*stored_only = 1;
	for (s = first; s <= lastseg; s++) {
		uint64_t a = l->data_start + cz_get64(img + CZ_HEADER + 8 * s);
		uint64_t b = l->data_start + cz_get64(img + CZ_HEADER + 8 * (s + 1));
		uint64_t ulen = s + 1 == l->segments ? l->last : l->seg;

		if (img[a] == 0 && b - a - 1 == ulen)
			continue;
		*stored_only = 0;
		if (img[a] == 1)
			maybe = 1;
		else
			return EIO;
	}
	return maybe ? -1 : 0;
}

/* The byte of the disk of sound image L at OFF, its segments stored. */
static unsigned char cz_byte(const unsigned char *img, const struct cz_layout *l, uint64_t off)
{
	uint64_t s = off / l->seg;

	return img[l->data_start + cz_get64(img + CZ_HEADER + 8 * s) + 1 + off % l->seg];
}

/* Unmap N that nobody holds (udev may, for a moment). */
static void cz_unmap(unsigned n, const char *what)
{
	struct lofi_ioctl li;
	int k, r = -1, err = 0;

	if (n == 0 || n > maxn) {
		unexp("%s: the map returned N=%u, not in 1 .. %u", what, n, maxn);
		resync();
		return;
	}
	for (k = 0; k < 250; k++) {
		memset(&li, 0, sizeof(li));
		li.li_minor = n;
		li.li_force = k >= 200;
		calls++;
		r = ioctl(ctl_fd[0], LOFI_UNMAP_FILE_MINOR, &li);
		err = r < 0 ? errno : 0;
		count_result(err);
		if (err != EBUSY)
			break;
		ebusy++;
		waiting_n = n;
		waiting_for = "a busy unmap of a compressed image to be possible";
		sleep_ms(20);
		waiting_for = "";
	}
	if (err) {
		unexp("%s: UNMAP_FILE_MINOR %u -> %s, want success", what, n, ename(err));
		resync();
		return;
	}
	if (sysfs_present(n)) {
		udev_waits++;
		settle(n);
	}
}

/* Read the whole disk N of the image of LEN bytes in cz_img (ALG: its
 * algorithm, or -1: an ordinary image of LEN bytes). */
static void cz_read(unsigned n, int alg, const struct cz_layout *l, size_t len, const char *what)
{
	static unsigned char *buf;
	uint64_t size = alg >= 0 ? l->size : len, bytes = 0, off;
	char p[64];
	double end = now() + 10;
	struct stat st;
	int fd, eio = 0;

	if (!buf && posix_memalign((void **)&buf, 4096, 4096))
		die("out of memory");
	snprintf(p, sizeof(p), LOFI_DEV_FMT, n);
	while (stat(p, &st) || !S_ISBLK(st.st_mode)) {
		if (now() > end) {
			unexp("%s: %s did not appear", what, p);
			return;
		}
		sleep_ms(2);
	}
	if (alg >= 0) {
		fd = open(p, O_RDWR | O_CLOEXEC);
		opens++;
		if (fd >= 0 || errno != EROFS)
			unexp("%s: open(%s, O_RDWR) of a compressed image -> %s, want EROFS", what, p,
			      fd >= 0 ? "success" : ename(errno));
		if (fd >= 0)
			close(fd);
	}
	fd = open(p, O_RDONLY | O_DIRECT | O_CLOEXEC);
	opens++;
	if (fd < 0) {
		unexp("%s: open(%s, O_RDONLY | O_DIRECT) -> %s", what, p, ename(errno));
		return;
	}
	calls++;
	if (ioctl(fd, BLKGETSIZE64, &bytes) || bytes != size)
		unexp("%s: BLKGETSIZE64 of %s: %" PRIu64 " (%s), want %" PRIu64, what, p, bytes,
		      ename(errno), size);
	for (off = 0; off < size; off += 4096) {
		uint64_t want_len = size - off < 4096 ? size - off : 4096, i;
		int want_err = 0, stored_only = 1, err;
		ssize_t r;

		if (alg >= 0)
			want_err = cz_piece(cz_img, l, off, want_len, &stored_only);
		r = pread(fd, buf, 4096, (off_t)off);
		err = r < 0 ? errno : 0;
		if (err == EIO)
			eio = 1;
		if (r < 0 && err != EIO) {
			unexp("%s: pread of %s at %" PRIu64 " -> %s, want %" PRIu64 " bytes or EIO", what, p,
			      off, ename(err), want_len);
			break;
		}
		if (r >= 0 && (uint64_t)r != want_len) {
			unexp("%s: pread of %s at %" PRIu64 " -> %zd bytes, want %" PRIu64 " or EIO", what, p,
			      off, r, want_len);
			break;
		}
		if (want_err == EIO && r >= 0) {
			unexp("%s: pread of %s at %" PRIu64 " -> %zd bytes, want EIO (a segment of an unknown "
			      "type or a stored one of the wrong size)", what, p, off, r);
			break;
		}
		if (want_err == 0 && r < 0) {
			unexp("%s: pread of %s at %" PRIu64 " -> EIO, want the %s", what, p, off,
			      alg >= 0 ? "data of its stored segments" : "file's data");
			break;
		}
		if (r < 0 || !stored_only)
			continue;
		for (i = 0; i < want_len; i++)
			if (buf[i] != (alg >= 0 ? cz_byte(cz_img, l, off + i) : cz_img[off + i]))
				break;
		if (i < want_len) {
			unexp("%s: %s at %" PRIu64 ": wrong data at byte %" PRIu64 " of the piece", what, p, off, i);
			break;
		}
	}
	close(fd);
	cz_eio += eio;
}

static void compressed_episode(void)
{
	char what[160], name[32];
	struct lofi_ioctl li, q;
	struct cz_layout l;
	unsigned i, n, free_n;
	int alg, want_err, fd, err, ro_asked;
	size_t len;
	const char *why, *damage;
	long r;

	if (!cz_img) {
		cz_img = malloc(CZ_MAX_LEN);
		if (!cz_img)
			die("out of memory");
	}
	cur_what = "compressed episode";
	for (i = 0; i < CZ_PER_EPISODE; i++) {
		for (free_n = 1; free_n <= maxn && slots[free_n].state != S_FREE; free_n++)
			;
		if (free_n > maxn)
			break;	/* no free N: nothing to map */
		len = cz_build();
		damage = i == 0 || chance(200) ? "none" : cz_mutate(&len);
		snprintf(name, sizeof(name), "cz%u.img", i);
		fd = open(dpath(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, cz_img, len) != (ssize_t)len)
			die("write %s: %s", dpath(name), strerror(errno));
		close(fd);

		alg = cz_detect(cz_img, len);
		memset(&l, 0, sizeof(l));
		if (alg >= 0) {
			why = cz_parse(cz_img, len, &l);
			want_err = why ? EINVAL : 0;
		} else {
			why = len == 0 || len % 512 ? "an ordinary image of no whole 512-byte blocks" : NULL;
			want_err = why ? EINVAL : 0;
		}
		snprintf(what, sizeof(what), "compressed image %u (%.36s, %zu bytes, damage: %s)", i,
			 alg >= 0 ? cz_algs[alg] : "no known name", len, damage);

		memset(&li, 0, sizeof(li));
		snprintf(li.li_filename, sizeof(li.li_filename), "%s", dpath(name));
		ro_asked = chance(300);
		li.li_readonly = ro_asked;
		/* Direct I/O: refused for a compressed image (an ordinary one
		 * might get it and a larger block size: not asked). */
		if (alg >= 0 && chance(300))
			li.li_flags = LOFI_FLAG_DIRECT_IO;
		calls++;
		r = ioctl(ctl_fd[0], LOFI_MAP_FILE, &li);
		err = r < 0 ? errno : 0;
		count_result(err);
		if (err == EINVAL)
			cz_einval++;
		if (err != want_err) {
			unexp("%s: MAP_FILE -> %s, want %s (%s)%s", what, ename(err), ename(want_err),
			      why ? why : alg >= 0 ? "a sound compressed image" : "an ordinary image",
			      err && err != EINVAL ? " [neither success nor EINVAL]" : "");
			if (r > 0)
				cz_unmap((unsigned)r, what);
			continue;
		}
		if (err)
			continue;
		n = (unsigned)r;
		if (alg >= 0)
			cz_mapped++;
		else
			cz_plain++;
		if (n != free_n || li.li_minor != n || slots[n].state != S_FREE ||
		    li.li_readonly != (alg >= 0 ? 1u : (uint32_t)ro_asked) || li.li_flags != 0 ||
		    li.li_block_size != LOFI_BLOCK_SIZE_DEFAULT || li.li_offset || li.li_sizelimit ||
		    strncmp(li.li_algorithm, alg >= 0 ? cz_algs[alg] : "", sizeof(li.li_algorithm)))
			unexp("%s: MAP_FILE returned %ld, li_minor=%u li_readonly=%u li_flags=%#x li_block_size=%u "
			      "li_offset=%" PRIu64 " li_sizelimit=%" PRIu64 " li_algorithm=\"%.*s\"; want N=%u ro=%d "
			      "flags=0 bs=512 off=0 szl=0 algorithm=\"%s\"", what, r, li.li_minor, li.li_readonly,
			      li.li_flags, li.li_block_size, (uint64_t)li.li_offset, (uint64_t)li.li_sizelimit,
			      (int)strnlen(li.li_algorithm, sizeof(li.li_algorithm)), li.li_algorithm, free_n,
			      alg >= 0 ? 1 : ro_asked, alg >= 0 ? cz_algs[alg] : "");
		/* The query by name, on the read-only control file. */
		memset(&q, 0, sizeof(q));
		snprintf(q.li_filename, sizeof(q.li_filename), "%s", dpath(name));
		calls++;
		r = ioctl(ctl_fd[2], LOFI_CHECK_COMPRESSED, &q);
		count_result(r < 0 ? errno : 0);
		if (r < 0 || q.li_minor != n ||
		    strncmp(q.li_algorithm, alg >= 0 ? cz_algs[alg] : "", sizeof(q.li_algorithm)))
			unexp("%s: CHECK_COMPRESSED -> %s, li_minor=%u li_algorithm=\"%.*s\"; want N=%u algorithm=\"%s\"",
			      what, r < 0 ? ename(errno) : "success", q.li_minor,
			      (int)strnlen(q.li_algorithm, sizeof(q.li_algorithm)), q.li_algorithm, n,
			      alg >= 0 ? cz_algs[alg] : "");
		cz_read(n, alg, &l, len, what);
		cz_unmap(n, what);
	}
	cur_what = "";
}

/* ---------------------------------------------------------------------- */
/* Block device calls                                                     */

static void on_alarm(int sig)
{
	(void)sig;
}

/* Open a mapped (or gone) device. */
static void open_one(void)
{
	char p[64];
	unsigned n = 0, tries;
	int fd, err, want_err;

	for (tries = 0; tries < 16; tries++) {
		unsigned m = 1 + rndn(maxn);

		if (slots[m].state != S_FREE) {
			n = m;
			break;
		}
	}
	if (!n)
		return;
	snprintf(p, sizeof(p), LOFI_DEV_FMT, n);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	err = fd < 0 ? errno : 0;
	opens++;
	if (trace)
		fprintf(stderr, "open %s -> %s\n", p, ename(err));
	want_err = slots[n].state == S_GONE ? ENXIO : 0;
	if (err != want_err) {
		unexp("open(%s, O_RDONLY) of a %s device -> %s, want %s", p,
		      slots[n].state == S_GONE ? "gone" : "mapped", ename(err), ename(want_err));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fd < 0)
		return;
	if (nheld >= MAX_HELD) {
		close(fd);
		return;
	}
	held[nheld].fd = fd;
	held[nheld].n = n;
	nheld++;
	slots[n].held++;
}

/*
 * Right after the fuzzer's last close of a device that was force-unmapped
 * or detached (li_cleanup) while open. Force-unmapped: it is no mapping
 * (GET_FILENAME and UNMAP_FILE_MINOR: ENXIO, GET_MINOR does not find it)
 * and its number stays in use until the removal work has run
 * (Documentation/userspace-api/lofi.rst, "Forced unmap"); the model says
 * just that with S_GONE. Detached: the same from its last close on, but
 * udev may hold it open still (a new disk, or one that lofi opened for
 * writing when asked to map /dev/lofiN, is probed), and then it is still
 * a mapping: GET_FILENAME may succeed (counted, udev-held=).
 */
static long long udev_held, pairs;

static void probe_removing(unsigned n)
{
	struct lofi_ioctl li;
	char label[96];
	const char *saved = cur_what;
	char *name = slots[n].name ? strdup(slots[n].name) : NULL;
	int gone = slots[n].state == S_GONE;

	snprintf(label, sizeof(label), "right after the last close of %s device %u",
		 gone ? "force-unmapped" : "detached", n);
	cur_what = label;
	no_resync = 1;	/* settle() follows; a resync would race the removal */
	li_plain(&li, -1);
	li.li_minor = n;
	if (!gone) {
		calls++;
		if (ioctl(ctl_fd[2], LOFI_GET_FILENAME, &li) == 0) {
			count_result(0);
			udev_held++;
			if (strcmp(li.li_filename, slots[n].name) != 0)
				unexp("GET_FILENAME %u %s: %s, want %s or ENXIO", n, label, li.li_filename,
				      slots[n].name);
		} else {
			count_result(errno);
			if (errno != ENXIO)
				unexp("GET_FILENAME %u %s -> %s, want ENXIO (or success while udev holds it)",
				      n, label, ename(errno));
		}
		goto out;
	}
	ctl_call(C_GET_FILENAME, 2, P_GOOD, &li, "-");
	if (chance(500)) {
		li_plain(&li, -1);
		li.li_minor = n;
		li.li_force = rnd_flag();
		li.li_cleanup = rnd_flag();
		ctl_call(C_UNMAP_MINOR, 0, P_GOOD, &li, "-");
	}
	if (name && strlen(name) < PATH_MAX) {
		li_plain(&li, -1);
		memcpy(li.li_filename, name, strlen(name) + 1);
		ctl_call(C_GET_MINOR, 2, P_GOOD, &li, "its file");
	}
out:
	free(name);
	cur_what = saved;
	no_resync = 0;
}

/* Close held descriptor I; the last close of a gone or detached device
 * removes it. */
static void close_held(int i)
{
	unsigned n = held[i].n;
	int last;

	if (trace)
		fprintf(stderr, "close /dev/lofi%u\n", n);
	close(held[i].fd);
	held[i] = held[--nheld];
	slots[n].held--;
	last = slots[n].held == 0;
	if (!last || (slots[n].state != S_GONE && !slots[n].detach))
		return;
	probe_removing(n);
	settle(n);
}

/* The fake geometry of Documentation/userspace-api/lofi.rst. */
static void fake_geo(uint64_t c, unsigned *h, unsigned *s, unsigned *cyl)
{
	*h = c < 4096 ? 8 : 20;
	*s = c < 4096 ? 25 : 30;
	*cyl = c / (*h * *s) > 65535 ? 65535 : (unsigned)(c / (*h * *s));
	if (c < (uint64_t)*h * *s) {
		*h = 1;
		*s = (unsigned)c;
		*cyl = 1;
	}
}

static void blk_result(unsigned n, const char *what, int ptr, int err, int want_err)
{
	if (trace)
		fprintf(stderr, "call #%lld: /dev/lofi%u %s arg=%s -> %s (want %s)\n", calls, n, what,
			ptr_name[ptr], ename(err), ename(want_err));
	if (err != want_err)
		unexp("/dev/lofi%u (%s): %s arg=%s -> got %s, want %s", n,
		      slots[n].state == S_GONE ? "gone" : slots[n].detach ? "detached" : "mapped", what,
		      ptr_name[ptr], ename(err), ename(want_err));
}

static void blk_call(void)
{
	int i = rndn(nheld), fd = held[i].fd, ptr, err, r;
	unsigned n = held[i].n;
	struct slot *s = &slots[n];
	uint32_t cur = s->state == S_GONE ? LOFI_DKIO_DEV_GONE : LOFI_DKIO_INSERTED;
	unsigned kind = rndn(100);
	char buf[64];
	void *arg;

	if (kind < 30) {
		/* LOFI_DKIOCSTATE with a state other than the current one: at once. */
		static const uint32_t states[] = { LOFI_DKIO_NONE, LOFI_DKIO_EJECTED, LOFI_DKIO_INSERTED,
						   LOFI_DKIO_DEV_GONE, 4, 0xffffffffu };
		uint32_t st;

		do
			st = chance(900) ? states[rndn(6)] : rnd32();
		while (st == cur);
		struct itimerval guard = { { 0, 0 }, { 2, 0 } }, off = { { 0, 0 }, { 0, 0 } };

		ptr = chance(600) ? P_GOOD : 1 + rndn(P_COUNT - 1);
		arg = place(ptr, &st, sizeof(st));
		calls++;
		/* Must not block; if it does, a timer ends it (EINTR: unexpected). */
		setitimer(ITIMER_REAL, &guard, NULL);
		r = ioctl(fd, LOFI_DKIOCSTATE, arg);
		err = r < 0 ? errno : 0;
		setitimer(ITIMER_REAL, &off, NULL);
		count_result(err);
		snprintf(buf, sizeof(buf), "LOFI_DKIOCSTATE(%#x)", st);
		blk_result(n, buf, ptr, err, ptr == P_GOOD ? 0 : EFAULT);
		if (!err && ptr == P_GOOD && *(uint32_t *)arg != cur)
			unexp("/dev/lofi%u: LOFI_DKIOCSTATE(%#x) returned state %u, want %u", n, st,
			      *(uint32_t *)arg, cur);
	} else if (kind < 31) {
		/* LOFI_DKIOCSTATE with the current state: blocks; a timer interrupts it. */
		struct itimerval it = { { 0, 5000 }, { 0, 5000 } }, off = { { 0, 0 }, { 0, 0 } };
		uint32_t st = cur;

		setitimer(ITIMER_REAL, &it, NULL);
		calls++;
		r = ioctl(fd, LOFI_DKIOCSTATE, &st);
		err = r < 0 ? errno : 0;
		setitimer(ITIMER_REAL, &off, NULL);
		count_result(err);
		blk_result(n, "LOFI_DKIOCSTATE(current state) interrupted by SIGALRM", P_GOOD, err, EINTR);
	} else if (kind < 45) {
		/* HDIO_GETGEO */
		struct hd_geometry g;
		unsigned h, sec, cyl;

		memset(&g, 0xa5, sizeof(g));
		ptr = chance(500) ? P_GOOD : 1 + rndn(P_COUNT - 1);
		arg = place(ptr, &g, sizeof(g));
		calls++;
		r = ioctl(fd, HDIO_GETGEO, arg);
		err = r < 0 ? errno : 0;
		count_result(err);
		/* block/ioctl.c blkdev_getgeo(): NULL is EINVAL, else the copy-out faults. */
		blk_result(n, "HDIO_GETGEO", ptr, err, ptr == P_GOOD ? 0 : ptr == P_NULL ? EINVAL : EFAULT);
		if (!err && ptr == P_GOOD && s->sectors) {
			memcpy(&g, arg, sizeof(g));
			fake_geo(s->sectors, &h, &sec, &cyl);
			if (g.heads != h || g.sectors != sec || g.cylinders != cyl || g.start != 0)
				unexp("/dev/lofi%u: HDIO_GETGEO of %" PRIu64 " sectors: %u/%u/%u start %lu, want %u/%u/%u start 0",
				      n, s->sectors, g.heads, g.sectors, g.cylinders, (unsigned long)g.start, h, sec, cyl);
		}
	} else if (kind < 60) {
		/* Block layer queries; bad pointers fault. */
		static const struct { unsigned long cmd; const char *name; size_t size; } q[] = {
			{ BLKGETSIZE64, "BLKGETSIZE64", 8 },
			{ BLKSSZGET, "BLKSSZGET", 4 },
			{ BLKPBSZGET, "BLKPBSZGET", 4 },
			{ BLKROGET, "BLKROGET", 4 },
		};
		unsigned qi = rndn(4);
		uint64_t v = 0;

		ptr = chance(500) ? P_GOOD : 1 + rndn(P_COUNT - 1);
		arg = place(ptr, &v, q[qi].size);
		calls++;
		r = ioctl(fd, q[qi].cmd, arg);
		err = r < 0 ? errno : 0;
		count_result(err);
		blk_result(n, q[qi].name, ptr, err, ptr == P_GOOD ? 0 : EFAULT);
		if (!err && ptr == P_GOOD && s->state == S_MAPPED) {
			uint64_t got = 0, want = 0;

			memcpy(&got, arg, q[qi].size);
			switch (qi) {
			case 0: want = s->sectors * 512; break;
			case 1: want = s->bs; break;	/* the logical block size */
			case 2: want = got; break;	/* the physical one: not documented */
			default: want = (uint64_t)s->ro; break;
			}
			if (s->sectors && got != want)
				unexp("/dev/lofi%u: %s = %" PRIu64 ", want %" PRIu64, n, q[qi].name, got, want);
		}
	} else if (kind < 64) {
		/*
		 * BLKRRPART: a labeled mapping re-reads its table (EBUSY while
		 * udev has a partition open, probing it); an unlabeled one
		 * has no partitions to read (EINVAL); a gone one cannot be
		 * opened for the scan (ENXIO; EIO if the table could not be
		 * read). Detached, the mapping stands until the last close.
		 */
		int labeled = (s->flags & LOFI_FLAG_LABELED) != 0;

		calls++;
		r = ioctl(fd, BLKRRPART, 0);
		err = r < 0 ? errno : 0;
		count_result(err);
		if (trace)
			fprintf(stderr, "call #%lld: /dev/lofi%u BLKRRPART -> %s\n", calls, n, ename(err));
		if (!labeled) {
			blk_result(n, "BLKRRPART (unlabeled)", P_GOOD, err, EINVAL);
		} else if (err == 0 && s->state != S_GONE) {
			rereads++;
		} else if (err == EBUSY) {
			reread_busy++;
		} else if (!(s->state == S_GONE && (err == ENXIO || err == EIO))) {
			unexp("/dev/lofi%u (%s, labeled): BLKRRPART -> %s, want 0 or EBUSY%s", n,
			      s->state == S_GONE ? "gone" : s->detach ? "detached" : "mapped", ename(err),
			      s->state == S_GONE ? " (ENXIO or EIO: gone)" : "");
		}
	} else {
		/* Random numbers, control commands, LOFI_DKIOCSTATE with the wrong size. */
		const char *desc;
		uint32_t c = random_cmd(1, &desc);
		char junk[LI_SIZE];

		rnd_fill(junk, sizeof(junk));
		ptr = rndn(P_COUNT);
		arg = place(ptr, junk, sizeof(junk));
		calls++;
		r = ioctl(fd, (unsigned long)c, arg);
		err = r < 0 ? errno : 0;
		count_result(err);
		snprintf(buf, sizeof(buf), "cmd %#x (%.40s)", c, desc);
		blk_result(n, buf, ptr, err, ENOTTY);
	}
}

/*
 * Two devices force-unmapped while the fuzzer holds them, then closed one
 * right after the other: the removal of the second waits behind that of
 * the first (the removals run one at a time), so the time between its
 * last close and its removal is long enough to look at it. The
 * documentation: a force-unmapped device is no longer a mapping
 * (GET_FILENAME and UNMAP_FILE_MINOR fail with ENXIO) until the last close
 * removes it; it must not come back as a mapping after the last close.
 */
static void gone_pair_episode(void)
{
	static const char *const imgs[] = { "img0", "img1", "img2", "img3", "img4" };
	struct lofi_ioctl li;
	unsigned ns[2], k, found = 0, n;
	int fds[2], i;
	char p[64];

	cur_what = "gone pair episode";
	for (k = 0; k < 5 && found < 2; k++) {
		struct expect e;

		for (n = 1; n < maxn && slots[n].state != S_FREE; n++)
			;
		if (n >= maxn)
			break;
		li_plain(&li, -1);
		snprintf(li.li_filename, sizeof(li.li_filename), "%s", dpath(imgs[k]));
		li.li_minor = n;
		predict(C_MAP_MINOR, 0, P_GOOD, &li, &e);
		if (e.skip || e.err)
			continue;
		if (ctl_call(C_MAP_MINOR, 0, P_GOOD, &li, imgs[k]) == 0)
			ns[found++] = n;
	}
	if (found == 2)
		pairs++;
	for (i = 0; i < (int)found; i++) {
		snprintf(p, sizeof(p), LOFI_DEV_FMT, ns[i]);
		fds[i] = open(p, O_RDONLY | O_CLOEXEC);
		opens++;
		if (fds[i] < 0) {
			unexp("gone pair episode: open %s: %s", p, ename(errno));
			found = i;
			break;
		}
		slots[ns[i]].held++;
		li_plain(&li, -1);
		li.li_minor = ns[i];
		if (chance(700))
			li.li_force = rnd_flag() | 1;
		else
			li.li_cleanup = rnd_flag() | 1;
		ctl_call(C_UNMAP_MINOR, 0, P_GOOD, &li, "forced or detached, held open");
	}
	for (i = 0; i < (int)found; i++) {
		close(fds[i]);
		slots[ns[i]].held--;
	}
	/* The second one first: its removal waits behind the first's. */
	for (i = (int)found - 1; i >= 0; i--)
		if (slots[ns[i]].state == S_GONE || slots[ns[i]].detach)
			probe_removing(ns[i]);
	/* The file of a device being removed can be mapped again at once. */
	if (found && slots[ns[0]].state == S_GONE && slots[ns[0]].name) {
		for (n = 1; n < maxn && slots[n].state != S_FREE; n++)
			;
		if (n < maxn) {
			li_plain(&li, -1);
			snprintf(li.li_filename, sizeof(li.li_filename), "%s", slots[ns[0]].name);
			li.li_minor = n;
			ctl_call(C_MAP_MINOR, 0, P_GOOD, &li, "the file of a device being removed");
		}
	}
	for (i = 0; i < (int)found; i++)
		if (slots[ns[i]].state == S_GONE || slots[ns[i]].detach)
			settle(ns[i]);
	cur_what = "";
}

/* An unmap of a held device: forced (gone) or detach at last close. */
static void held_unmap(void)
{
	struct lofi_ioctl li;
	int i = rndn(nheld);
	unsigned n = held[i].n;
	int by_name = chance(300);

	if (slots[n].state != S_MAPPED)
		return;
	li_plain(&li, -1);
	if (by_name && slots[n].name && strlen(slots[n].name) < PATH_MAX)
		memcpy(li.li_filename, slots[n].name, strlen(slots[n].name) + 1);
	else
		by_name = 0;
	li.li_minor = n;
	switch (rndn(3)) {
	case 0: li.li_force = rnd_flag() | 1; break;
	case 1: li.li_cleanup = rnd_flag() | 1; break;
	default: break;	/* EBUSY */
	}
	ctl_call(by_name ? C_UNMAP : C_UNMAP_MINOR, rndn(2), P_GOOD, &li, "unmap of a held device");
}

/* discard_max_bytes of lofiN's queue (0 if it cannot be read). */
static uint64_t discard_max(unsigned n)
{
	char p[96], buf[32];
	uint64_t v = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/sys/block/lofi%u/queue/discard_max_bytes", n);
	f = fopen(p, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f))
		v = strtoull(buf, NULL, 10);
	fclose(f);
	return v;
}

/* A byte range of a device of BYTES bytes and block size BS: valid mostly,
 * else misaligned, empty, past the end or wrapping around. */
static void rnd_range(uint64_t bytes, uint32_t bs, uint64_t range[2])
{
	uint64_t blocks = bytes / bs, start, len;

	start = blocks ? (uint64_t)rndn((unsigned)(blocks > 1u << 30 ? 1u << 30 : blocks)) * bs : 0;
	len = (uint64_t)(1 + rndn(32)) * bs;
	if (start + len > bytes)
		len = bytes - start;
	switch (rndn(10)) {
	case 0: start += 1 + rndn(511); break;		/* misaligned start */
	case 1: len += 1 + rndn(511); break;		/* misaligned length */
	case 2: len = 0; break;
	case 3: start = bytes; len = bs; break;		/* past the end */
	case 4: len = bytes - start + bs; break;	/* runs past the end */
	case 5: start = UINT64_MAX - (bs - 1); len = 2 * (uint64_t)bs; break;	/* wraps */
	default: break;
	}
	range[0] = start;
	range[1] = len;
}

/* What block/ioctl.c answers BLKDISCARD, BLKSECDISCARD or BLKZEROOUT with
 * on a write open of a writable device, in the order it checks. */
static int predict_zeroing(unsigned long cmd, int ptr, const uint64_t range[2], uint64_t bytes,
			   uint32_t bs, uint64_t disc)
{
	uint64_t start = range[0], len = range[1], end;

	if (cmd == BLKSECDISCARD)
		return EOPNOTSUPP;	/* lofi advertises no secure erase */
	if (ptr_read_fails(ptr))
		return EFAULT;
	if (cmd == BLKDISCARD) {
		if (!disc)
			return EOPNOTSUPP;
		if (((start | len) & (bs - 1)) || !len)
			return EINVAL;
		if (__builtin_add_overflow(start, len, &end) || end > bytes)
			return EINVAL;
		return 0;
	}
	end = start + len - 1;
	if ((start & 511) || (len & 511) || end >= bytes || end < start)
		return EINVAL;
	return 0;
}

/*
 * Discard, secure erase and zero-out through a write open of a held
 * device (the held descriptors are read-only, which would only give
 * EBADF): a gone device refuses the open (ENXIO), a read-only one too
 * (EROFS); on a writable one each range gets block/ioctl.c's answer
 * exactly, and a range discarded or zeroed reads back as zeros (lofi
 * punches or zeroes it in the backing file), unless the discard switched
 * discard off (the backing file cannot punch holes: discard_max_bytes is
 * 0 after it, and the block layer reports such a discard as done).
 */
static long long zeroings;

static void blk_zeroing(void)
{
	static const struct { unsigned long cmd; const char *name; } z[] = {
		{ BLKDISCARD, "BLKDISCARD" }, { BLKZEROOUT, "BLKZEROOUT" }, { BLKSECDISCARD, "BLKSECDISCARD" },
	};
	unsigned n = held[rndn(nheld)].n, zi = chance(100) ? 2 : rndn(2);
	struct slot *s = &slots[n];
	uint64_t range[2], bytes = s->sectors * 512, disc;
	int fd, err, want_err, ptr, r;
	char p[64], what[96];
	static char buf[65536];
	void *arg;

	snprintf(p, sizeof(p), LOFI_DEV_FMT, n);
	fd = open(p, O_RDWR | O_CLOEXEC);
	err = fd < 0 ? errno : 0;
	opens++;
	want_err = s->state == S_GONE ? ENXIO : s->ro ? EROFS : 0;
	if (err != want_err) {
		unexp("open(%s, O_RDWR) of a %s %s device -> %s, want %s", p, s->ro ? "read-only" : "writable",
		      s->state == S_GONE ? "gone" : "mapped", ename(err), ename(want_err));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fd < 0 || !bytes || !s->bs) {
		if (fd >= 0)
			close(fd);
		return;
	}
	disc = discard_max(n);
	rnd_range(bytes, s->bs, range);
	ptr = chance(900) ? P_GOOD : rnd_bad_read_ptr();
	arg = place(ptr, range, sizeof(range));
	want_err = predict_zeroing(z[zi].cmd, ptr, range, bytes, s->bs, disc);
	calls++;
	r = ioctl(fd, z[zi].cmd, arg);
	err = r < 0 ? errno : 0;
	count_result(err);
	snprintf(what, sizeof(what), "%s [%" PRIu64 ", +%" PRIu64 ")", z[zi].name, range[0], range[1]);
	/* A zero-out of 512-byte units inside a larger block: the block
	 * layer may refuse the misaligned bios it makes (EINVAL or EIO). */
	if (z[zi].cmd == BLKZEROOUT && !want_err && ((range[0] | range[1]) & (s->bs - 1)) &&
	    (err == EINVAL || err == EIO))
		want_err = err;
	blk_result(n, what, ptr, err, want_err);
	if (!err && !want_err && ptr == P_GOOD && (z[zi].cmd == BLKZEROOUT || discard_max(n))) {
		size_t len = range[1] < sizeof(buf) ? (size_t)range[1] : sizeof(buf);
		ssize_t got = pread(fd, buf, len, (off_t)range[0]);
		size_t i;

		zeroings++;
		if (got != (ssize_t)len) {
			unexp("/dev/lofi%u: reading back %zu bytes at %" PRIu64 " after %s -> %zd (%s)", n, len,
			      range[0], z[zi].name, got, got < 0 ? ename(errno) : "short");
		} else {
			for (i = 0; i < len && !buf[i]; i++)
				;
			if (i < len)
				unexp("/dev/lofi%u: byte %" PRIu64 " is %#x after %s of [%" PRIu64 ", +%" PRIu64
				      "), want 0", n, range[0] + i, (unsigned char)buf[i], z[zi].name, range[0],
				      range[1]);
		}
	}
	close(fd);
}

static void blk_op(void)
{
	unsigned k = rndn(1000);

	if (nheld == 0 || (k < 40 && nheld < MAX_HELD)) {
		open_one();
		return;
	}
	if (k < 60) {
		close_held(rndn(nheld));
		return;
	}
	if (k < 65) {
		held_unmap();
		return;
	}
	if (k < 100) {
		blk_zeroing();
		return;
	}
	blk_call();
}

/* ---------------------------------------------------------------------- */
/* The mix                                                                */

static void fuzz_one(void)
{
	struct lofi_ioctl li;
	unsigned k = rndn(1000);
	int ci, idx, fdk;

	if (k < 250) {
		/* Well-formed queries. */
		static const int q[] = { C_GET_FILENAME, C_GET_FILENAME, C_GET_MINOR, C_GET_MINOR, C_GET_MAXMINOR,
					 C_CHECK_COMPRESSED };

		ci = q[rndn(6)];
		idx = plausible(ci, &li);
		li.li_force = rnd_flag();
		ctl_call(ci, rndn(3), P_GOOD, &li, label_of(idx));
	} else if (k < 370) {
		/* Any command, the structure cannot be read. */
		ci = rndn(LOFI_NR_COMMANDS);
		idx = plausible(ci, &li);
		ctl_call(ci, rndn(3), rnd_bad_read_ptr(), &li, label_of(idx));
	} else if (k < 410) {
		/* Readable, not writable: mostly queries. */
		ci = chance(800) ? (chance(200) ? C_CHECK_COMPRESSED : C_GET_FILENAME + (int)rndn(3)) : (int)rndn(4);
		idx = plausible(ci, &li);
		ctl_call(ci, rndn(3), chance(500) ? P_RO : P_RO_TAIL, &li, label_of(idx));
	} else if (k < 540) {
		random_ctl_cmd();
	} else if (k < 560) {
		/* Plausible, with map fields set (refused by a map, else ignored). */
		ci = rndn(LOFI_NR_COMMANDS);
		idx = plausible(ci, &li);
		rnd_map_fields(&li);
		ctl_call(ci, rndn(3), P_GOOD, &li, label_of(idx));
	} else if (k < 660) {
		/* Random contents (the reserved words and the map fields too, mostly). */
		ci = rndn(LOFI_NR_COMMANDS);
		rnd_fill(&li, sizeof(li));
		if (chance(300))
			memset(li.li_reserved, 0, sizeof(li.li_reserved));
		if (chance(300)) {
			li.li_flags = 0;
			li.li_block_size = chance(500) ? 0 : LOFI_BLOCK_SIZE_DEFAULT;
			li.li_offset = 0;
			li.li_sizelimit = 0;
		}
		if (chance(300))
			li.li_minor = rnd_minor();
		ctl_call(ci, rndn(3), P_GOOD, &li, "random contents");
	} else if (k < 710) {
		/* Plausible, with a reserved word set. */
		ci = rndn(LOFI_NR_COMMANDS);
		idx = plausible(ci, &li);
		li.li_reserved[rndn(LOFI_RESERVED_WORDS)] = chance(500) ? 1 : rnd32() | 0x80;
		ctl_call(ci, rndn(3), P_GOOD, &li, label_of(idx));
	} else if (k < 725) {
		/* Plausible commands that change mappings. */
		ci = chance(200) ? C_SET_CAPACITY : rndn(4);
		idx = plausible(ci, &li);
		if (ci == C_SET_CAPACITY)
			plausible_resize(&li);
		fdk = chance(850) ? rndn(2) : 2;
		ctl_call(ci, fdk, P_GOOD, &li, label_of(idx));
	} else {
		double t0 = now();

		blk_op();
		t_blk += now() - t0;
	}
}

/* ---------------------------------------------------------------------- */

static void write_model(void)
{
	char p[PATH_MAX];
	unsigned n;
	FILE *f;

	snprintf(p, sizeof(p), "%s/model.list", dir);
	f = fopen(p, "w");
	if (!f)
		die("%s: %s", p, strerror(errno));
	for (n = 1; n <= maxn; n++)
		if (slots[n].state == S_MAPPED)
			fprintf(f, "%u " LOFI_DEV_FMT " %s %s\n", n, n, slots[n].ro ? "ro" : "rw", slots[n].name);
	if (fclose(f))
		die("%s: %s", p, strerror(errno));
}

int main(int argc, char **argv)
{
	struct lofi_ioctl li;
	struct sigaction sa;
	long long target, next_check = CHECK_EVERY, next_pair = PAIR_EVERY / 2, next_progress = 10000;
	long long fill1, fill2, czmid;
	double t0 = now();
	char *end;
	unsigned i;
	int first;

	if (argc != 4)
		goto usage;
	target = strtoll(argv[2], &end, 10);
	if (*end || target <= 0)
		goto usage;
	seed = strtoull(argv[3], &end, 10);
	if (*end)
		goto usage;
	rng = seed;
	trace = getenv("LOFI_FUZZ_TRACE") && strcmp(getenv("LOFI_FUZZ_TRACE"), "1") == 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("lofi_fuzz: seed %llu, %lld calls, %zu-bit, struct lofi_ioctl %zu bytes\n", seed, target,
	       sizeof(void *) * 8, LI_SIZE);

	mkdir(argv[1], 0755);
	{
		char real[PATH_MAX];

		if (!realpath(argv[1], real))
			die("%s: %s", argv[1], strerror(errno));
		if (strlen(real) >= 200)
			die("%s: the scratch directory's path is too long", real);
		strcpy(dir, real);
	}
	if (chdir(dir))
		die("chdir %s: %s", dir, strerror(errno));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: LOFI_DKIOCSTATE returns EINTR */
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	ctl_fd[0] = open(CTL_PATH, O_RDWR | O_CLOEXEC);
	ctl_fd[1] = open(CTL_PATH, O_WRONLY | O_CLOEXEC);
	ctl_fd[2] = open(CTL_PATH, O_RDONLY | O_CLOEXEC);
	if (ctl_fd[0] < 0 || ctl_fd[1] < 0 || ctl_fd[2] < 0)
		die("open %s: %s", CTL_PATH, strerror(errno));
	memset(&li, 0, sizeof(li));
	if (ioctl(ctl_fd[2], LOFI_GET_MAXMINOR, &li))
		die("LOFI_GET_MAXMINOR: %s", strerror(errno));
	maxn = li.li_minor;
	if (maxn < 2 || maxn > 65536)
		die("lofi_max_files %u: the fuzzer wants 2 .. 65536", maxn);
	slots = calloc(maxn + 2, sizeof(*slots));
	if (!slots)
		die("out of memory");
	setup_areas();
	setup_fixtures();
	resync();	/* mappings that exist already (an earlier run) */
	first = printed;
	maintain();	/* N = MAX mapped */
	make_blk_node();
	if (printed != first)
		die("setup failed");
	fill1 = target / 3;
	fill2 = 2 * target / 3;
	czmid = target / 2;
	compressed_episode();
	{
		struct timespec ts = { 0, 20000000 };
		double t = now();
		int r = nanosleep(&ts, NULL), e = errno;

		printf("lofi_fuzz: max %u, %u fixture names, DIR %s; nanosleep(20 ms): %s, %.1f ms\n",
		       maxn, nnames, dir, r ? ename(e) : "0", (now() - t) * 1000);
	}

	while (calls < target) {
		if (calls >= next_progress) {
			printf("lofi_fuzz: %lld calls, %lld unexpected, %.0f s\n", calls, unexpected, now() - t0);
			next_progress = calls + 10000;
		}
		fuzz_one();
		maintain();
		if (calls >= next_check) {
			check_model("periodic model check");
			next_check = calls + CHECK_EVERY;
		}
		if (calls >= next_pair) {
			gone_pair_episode();
			next_pair = calls + PAIR_EVERY;
		}
		if (czmid >= 0 && calls >= czmid) {
			compressed_episode();
			czmid = -1;
		}
		if (fill1 >= 0 && calls >= fill1) {
			fill_episode();
			fill1 = -1;
		} else if (fill2 >= 0 && calls >= fill2) {
			fill_episode();
			fill2 = -1;
		}
	}

	compressed_episode();
	if (!cz_mapped)
		unexp("no compressed image was mapped (%lld refused, %lld mapped as ordinary images): the "
		      "compressed path was not exercised", cz_einval, cz_plain);
	/* Close what is held (removing gone and detached devices), check. */
	while (nheld)
		close_held(nheld - 1);
	maintain();	/* at least N = MAX mapped: the list to compare is not empty */
	check_model("final model check");
	write_model();
	clear_immutable();

	printf("lofi_fuzz: %.1f s, %lld calls (%.0f/s), %lld ok, %lld skipped as unpredictable, "
	       "%lld opens, %d mappings at the end\n", now() - t0, calls, calls / (now() - t0 + 1e-9),
	       ok_calls, skipped, opens, live_count());
	printf("lofi_fuzz: time in successful maps and unmaps %.1f s, other control calls %.1f s, "
	       "waits for removals %.1f s, block device operations %.1f s\n",
	       t_mutate, t_ctl, t_settle, t_blk);
	printf("lofi_fuzz: %lld waits for a number to be free again after an unmap of an open device "
	       "(%lld probes), longest %.2f s\n", settles, free_probes, settle_max);
	printf("RESULT calls=%lld unexpected=%lld maps=%lld unmaps=%lld ebusy=%lld udev-waits=%lld "
	       "udev-held=%lld gone-pairs=%lld mappings=%d direct-asked=%lld direct-granted=%lld "
	       "zeroed=%lld resizes=%lld labeled=%lld rereads=%lld reread-ebusy=%lld vanished=%lld "
	       "compressed=%lld compressed_einval=%lld compressed_eio=%lld compressed_plain=%lld seed=%llu "
	       "errnos=", calls, unexpected, maps, unmaps, ebusy, udev_waits, udev_held, pairs, live_count(),
	       direct_asked, direct_granted, zeroings, resizes, labeled_maps, rereads, reread_busy, vanished,
	       cz_mapped, cz_einval, cz_eio, cz_plain, seed);
	first = 1;
	for (i = 1; i < 256; i++)
		if (errcounts[i]) {
			printf("%s%s:%lld", first ? "" : ",", ename((int)i), errcounts[i]);
			first = 0;
		}
	printf("%s\n", first ? "none" : "");
	return unexpected ? 1 : 0;
usage:
	fprintf(stderr, "usage: lofi_fuzz DIR CALLS SEED\n");
	return 2;
}
