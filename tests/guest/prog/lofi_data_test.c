// SPDX-License-Identifier: GPL-2.0
/*
 * lofi_data_test: data integrity through a lofi device.
 *
 *   lofi_data_test random  [--direct|--buffered] --seed S --iterations N DEV FILE
 *   lofi_data_test pattern [--direct|--buffered] --seed S [--fresh] DEV [FILE]
 *   lofi_data_test verify-pattern --seed S [--fresh] FILE
 *
 * random: N writes at random 512-byte-aligned offsets with random sizes
 *   from 512 B to 1 MiB, each read back through DEV at once; then fsync of
 *   DEV, the page cache of DEV dropped, every written sector read again
 *   through DEV and checked, and DEV compared byte for byte with its
 *   backing FILE (the whole device up to 256 MiB; beyond that, every
 *   written range plus the first and last MiB). On devices over 4 GiB,
 *   every second write lands above 4 GiB and the first one straddles the
 *   4 GiB boundary, so 64-bit offsets are exercised.
 *
 * pattern: stamps each 512-byte sector with a header (magic, sector number,
 *   seed, device size) and filler derived from them, fsyncs, drops the
 *   page cache, and verifies through DEV and then through FILE (if given).
 *   Devices up to 256 MiB are stamped whole. Larger (sparse) devices are
 *   sampled, since QEMU TCG runs some 50x slower than native and stamping
 *   gigabytes would take many minutes: the first and last 16 MiB, 1 MiB
 *   straddling the 2 GiB and 4 GiB boundaries, and 32 scattered 1 MiB
 *   chunks (positions derived from the size and the seed). With --fresh
 *   (the backing file was all zeros before), 256 KiB gaps between the
 *   chunks must still read as zeros, which catches misdirected writes.
 *
 * verify-pattern: checks FILE alone (e.g. after the unmap) for the
 *   pattern of the same seed and size.
 *
 * --direct opens DEV with O_DIRECT (4096-aligned buffers; the random writes'
 * offsets and sizes are then multiples of DEV's logical block size, which
 * lofi's direct I/O mode may raise to 4096); --buffered (the default) goes
 * through the page cache. Exit status 0 when everything
 * matched, 1 on the first mismatches (up to 10 reported) or an I/O error,
 * 2 on usage errors.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

#include <linux/fs.h>

#include "lofi_prog.h"

#define SECTOR 512u
#define WORDS (SECTOR / 8)
#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define CHUNK MiB		/* unit of I/O and the largest random write */
#define FULL_LIMIT (256 * MiB)	/* devices up to this size are done whole */
#define EDGE (16 * MiB)		/* sampled mode: first and last EDGE bytes */
#define NSCATTER 32		/* sampled mode: scattered 1 MiB chunks */
#define ZERO_LEN (256 * KiB)	/* sampled mode: gaps that must stay zero */
#define MAX_REPORTS 10
#define ALIGN 4096u		/* sampled regions: aligned for any logical block size */

#define MAGIC_PATTERN 0x4e5441504946 /* "FIPATN" */
#define MAGIC_RANDOM 0x444e41524946 /* "FIRAND" */

static int reports;
static int direct;
/* Sectors per logical block of DEV with --direct (O_DIRECT alignment), else 1. */
static uint64_t unit = 1;

__attribute__((noreturn))
static void usage(void)
{
	fprintf(stderr,
		"usage: lofi_data_test random [--direct|--buffered] --seed S --iterations N DEV FILE\n"
		"       lofi_data_test pattern [--direct|--buffered] --seed S [--fresh] DEV [FILE]\n"
		"       lofi_data_test verify-pattern --seed S [--fresh] FILE\n");
	exit(2);
}

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	exit(1);
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state += 0x9E3779B97F4A7C15ULL;
	return mix64(rng_state);
}

/* The content of SECTOR number S: a header, then cheap filler from a key. */
static void fill_sector(void *dst, uint64_t magic, uint64_t s, uint64_t seed, uint64_t tag)
{
	uint64_t w[WORDS], key = mix64(seed ^ mix64(s ^ mix64(tag ^ magic)));
	unsigned i;

	w[0] = magic;
	w[1] = s;
	w[2] = seed;
	w[3] = tag;
	for (i = 4; i < WORDS; i++)
		w[i] = key ^ (i * 0xD6E8FEB86659FD93ULL);
	memcpy(dst, w, SECTOR);
}

/* Describe what a sector that should have been something else contains. */
static void describe(const void *got, char *out, size_t len)
{
	uint64_t w[4];
	const unsigned char *b = got;
	unsigned i;

	memcpy(w, got, sizeof(w));
	for (i = 0; i < SECTOR && !b[i]; i++)
		;
	if (i == SECTOR)
		snprintf(out, len, "all zeros");
	else if (w[0] == MAGIC_PATTERN || w[0] == MAGIC_RANDOM)
		snprintf(out, len, "%s data of sector %" PRIu64 " (seed %" PRIu64 ", tag %" PRIu64 ")",
			 w[0] == MAGIC_PATTERN ? "pattern" : "random", w[1], w[2], w[3]);
	else
		snprintf(out, len, "unknown data (first bytes %02x %02x %02x %02x)", b[0], b[1], b[2], b[3]);
}

/* Report one bad sector; give up after MAX_REPORTS. */
static void bad_sector(const char *where, uint64_t s, const void *got, const char *want)
{
	char desc[160];

	describe(got, desc, sizeof(desc));
	printf("FAIL: %s: sector %" PRIu64 " (byte %" PRIu64 "): want %s, found %s\n", where, s, s * SECTOR,
	       want, desc);
	if (++reports >= MAX_REPORTS)
		die("%d bad sectors, giving up", reports);
}

static void full_pwrite(int fd, const char *what, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write %zu bytes at %" PRIu64 " of %s: %s", len - done, off + done, what,
			    w < 0 ? strerror(errno) : "wrote nothing");
		done += (size_t)w;
	}
}

static void full_pread(int fd, const char *what, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("read %zu bytes at %" PRIu64 " of %s: %s", len - done, off + done, what,
			    r < 0 ? strerror(errno) : "unexpected end of file");
		done += (size_t)r;
	}
}

static void *xalloc(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, len))
		die("out of memory (%zu bytes)", len);
	memset(p, 0, len);
	return p;
}

/* The size of a block device or a regular file. */
static uint64_t size_of(int fd, const char *path)
{
	struct stat st;
	uint64_t size;

	if (fstat(fd, &st) < 0)
		die("stat %s: %s", path, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0)
			die("BLKGETSIZE64 %s: %s", path, strerror(errno));
		return size;
	}
	return (uint64_t)st.st_size;
}

static int open_dev(const char *dev, int flags)
{
	int fd = open(dev, flags | (direct ? O_DIRECT : 0)), lbs;

	if (fd < 0)
		die("open %s%s: %s", dev, direct ? " (O_DIRECT)" : "", strerror(errno));
	if (direct) {
		if (ioctl(fd, BLKSSZGET, &lbs) < 0)
			die("BLKSSZGET %s: %s", dev, strerror(errno));
		if (lbs < (int)SECTOR || lbs > 4096 || lbs % SECTOR)
			die("%s: logical block size %d is not 512 .. 4096", dev, lbs);
		unit = (uint64_t)lbs / SECTOR;
	}
	return fd;
}

/* After fsync, drop DEV's clean page cache so reads reach the driver. */
static void sync_and_drop(int fd, const char *dev)
{
	int err;

	if (fsync(fd) < 0)
		die("fsync %s: %s", dev, strerror(errno));
	err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (err)
		die("posix_fadvise(DONTNEED) %s: %s", dev, strerror(err));
}

/* ---------------------------------------------------------------------- */
/* Pattern                                                                */

struct region {
	uint64_t off, len;
};

#define MAX_REGIONS (4 + NSCATTER)

/* The stamped regions and the must-be-zero gaps for SIZE and SEED. */
static void pattern_regions(uint64_t size, uint64_t seed, struct region *r, int *nr, struct region *z,
			    int *nz)
{
	uint64_t slot, base, jitter;
	int k, i, j, overlaps;

	*nr = *nz = 0;
	if (size <= FULL_LIMIT) {
		r[(*nr)++] = (struct region){ 0, size };
		return;
	}
	r[(*nr)++] = (struct region){ 0, EDGE };
	r[(*nr)++] = (struct region){ size - EDGE, EDGE };
	/* Offsets that a 32-bit truncation or sign bug would mangle. */
	if (size > 2 * GiB + MiB)
		r[(*nr)++] = (struct region){ 2 * GiB - MiB / 2, MiB };
	if (size > 4 * GiB + MiB)
		r[(*nr)++] = (struct region){ 4 * GiB - MiB / 2, MiB };
	/* One chunk in each of NSCATTER slots between the edges; the first
	 * ZERO_LEN bytes of each slot are left alone. */
	slot = (size - 2 * EDGE) / NSCATTER / ALIGN * ALIGN;
	for (k = 0; k < NSCATTER; k++) {
		base = EDGE + k * slot;
		jitter = (ZERO_LEN * 2 + mix64(seed ^ (uint64_t)k) % (slot - 2 * MiB)) / ALIGN * ALIGN;
		r[(*nr)++] = (struct region){ base + jitter, MiB };
		z[(*nz)++] = (struct region){ base, ZERO_LEN };
	}
	/* Keep only the gaps that no stamped region touches. */
	for (i = j = 0; i < *nz; i++) {
		overlaps = 0;
		for (k = 0; k < *nr; k++)
			if (z[i].off < r[k].off + r[k].len && r[k].off < z[i].off + z[i].len)
				overlaps = 1;
		if (!overlaps)
			z[j++] = z[i];
	}
	*nz = j;
}

static void stamp_region(int fd, const char *dev, char *buf, struct region rg, uint64_t seed, uint64_t size)
{
	uint64_t off, s;
	size_t len, i;

	for (off = rg.off; off < rg.off + rg.len; off += len) {
		len = (size_t)(rg.off + rg.len - off < CHUNK ? rg.off + rg.len - off : CHUNK);
		for (i = 0; i < len / SECTOR; i++) {
			s = off / SECTOR + i;
			fill_sector(buf + i * SECTOR, MAGIC_PATTERN, s, seed, size);
		}
		full_pwrite(fd, dev, buf, len, off);
	}
}

static void verify_region(int fd, const char *what, char *buf, struct region rg, uint64_t seed, uint64_t size,
			  int zero)
{
	char want[SECTOR], label[64];
	uint64_t off, s;
	size_t len, i;

	memset(want, 0, sizeof(want));
	snprintf(label, sizeof(label), "%s pattern", zero ? "no" : "the");
	for (off = rg.off; off < rg.off + rg.len; off += len) {
		len = (size_t)(rg.off + rg.len - off < CHUNK ? rg.off + rg.len - off : CHUNK);
		full_pread(fd, what, buf, len, off);
		for (i = 0; i < len / SECTOR; i++) {
			s = off / SECTOR + i;
			if (!zero)
				fill_sector(want, MAGIC_PATTERN, s, seed, size);
			if (memcmp(buf + i * SECTOR, want, SECTOR))
				bad_sector(what, s, buf + i * SECTOR, zero ? "zeros (never written)" : label);
		}
	}
}

static void verify_pattern(int fd, const char *what, char *buf, uint64_t size, uint64_t seed, int fresh)
{
	struct region r[MAX_REGIONS], z[NSCATTER];
	int nr, nz, i;

	pattern_regions(size, seed, r, &nr, z, &nz);
	for (i = 0; i < nr; i++)
		verify_region(fd, what, buf, r[i], seed, size, 0);
	if (fresh)
		for (i = 0; i < nz; i++)
			verify_region(fd, what, buf, z[i], seed, size, 1);
	if (reports)
		die("%s: %d bad sectors", what, reports);
}

static uint64_t stamped_bytes(uint64_t size, uint64_t seed, int *nr_out)
{
	struct region r[MAX_REGIONS], z[NSCATTER];
	uint64_t total = 0;
	int nr, nz, i;

	pattern_regions(size, seed, r, &nr, z, &nz);
	for (i = 0; i < nr; i++)
		total += r[i].len;
	*nr_out = nr;
	return total;
}

static int cmd_pattern(const char *dev, const char *file, uint64_t seed, int fresh)
{
	struct region r[MAX_REGIONS], z[NSCATTER];
	char *buf = xalloc(CHUNK);
	double t0 = now();
	uint64_t size, stamped;
	int fd, ffd, nr, nz, i;

	fd = open_dev(dev, O_RDWR);
	size = size_of(fd, dev);
	if (size == 0 || size % SECTOR)
		die("%s: size %" PRIu64 " is not a positive multiple of 512", dev, size);
	if (file) {
		ffd = open(file, O_RDONLY);
		if (ffd < 0)
			die("open %s: %s", file, strerror(errno));
		if (size_of(ffd, file) != size)
			die("%s is %" PRIu64 " bytes but its backing file %s is %" PRIu64, dev, size, file,
			    size_of(ffd, file));
		close(ffd);
	}
	pattern_regions(size, seed, r, &nr, z, &nz);
	for (i = 0; i < nr; i++)
		stamp_region(fd, dev, buf, r[i], seed, size);
	sync_and_drop(fd, dev);
	verify_pattern(fd, dev, buf, size, seed, fresh);
	close(fd);
	if (file) {
		ffd = open(file, O_RDONLY);
		if (ffd < 0)
			die("open %s: %s", file, strerror(errno));
		verify_pattern(ffd, file, buf, size, seed, fresh);
		close(ffd);
	}
	stamped = stamped_bytes(size, seed, &nr);
	printf("pattern (%s, seed %" PRIu64 "): %" PRIu64 " of %" PRIu64 " bytes stamped in %d region(s)%s; "
	       "verified through %s%s%s in %.1f s\n",
	       direct ? "O_DIRECT" : "buffered", seed, stamped, size, nr,
	       fresh && nz ? ", gaps checked for zeros" : "", dev, file ? " and " : "", file ? file : "",
	       now() - t0);
	free(buf);
	return 0;
}

static int cmd_verify_pattern(const char *file, uint64_t seed, int fresh)
{
	char *buf = xalloc(CHUNK);
	double t0 = now();
	uint64_t size, stamped;
	int fd, nr;

	fd = open(file, O_RDONLY);
	if (fd < 0)
		die("open %s: %s", file, strerror(errno));
	size = size_of(fd, file);
	if (size == 0 || size % SECTOR)
		die("%s: size %" PRIu64 " is not a positive multiple of 512", file, size);
	verify_pattern(fd, file, buf, size, seed, fresh);
	close(fd);
	stamped = stamped_bytes(size, seed, &nr);
	printf("verify-pattern (seed %" PRIu64 "): %" PRIu64 " of %" PRIu64 " bytes of %s in %d region(s) "
	       "as stamped, in %.1f s\n",
	       seed, stamped, size, file, nr, now() - t0);
	free(buf);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Random                                                                 */

/* Compare LEN bytes at OFF of the device and the backing file. */
static void compare_range(int dfd, const char *dev, int ffd, const char *file, char *a, char *b, uint64_t off,
			  uint64_t len)
{
	uint64_t pos;
	size_t n, i;

	for (pos = off; pos < off + len; pos += n) {
		n = (size_t)(off + len - pos < CHUNK ? off + len - pos : CHUNK);
		full_pread(dfd, dev, a, n, pos);
		full_pread(ffd, file, b, n, pos);
		if (memcmp(a, b, n) == 0)
			continue;
		for (i = 0; i < n && a[i] == b[i]; i++)
			;
		die("%s and %s differ at byte %" PRIu64 " (sector %" PRIu64 "): 0x%02x vs 0x%02x", dev, file,
		    pos + i, (pos + i) / SECTOR, (unsigned char)a[i], (unsigned char)b[i]);
	}
}

static int cmd_random(const char *dev, const char *file, uint64_t seed, long iterations)
{
	char *buf = xalloc(CHUNK), *back = xalloc(CHUNK), want[SECTOR];
	const uint64_t four_g = 4 * GiB / SECTOR;
	uint64_t size, sectors, start, nsec, s, written = 0, compared = 0, above4g = 0, run;
	uint32_t *gen;
	double t0 = now(), t1;
	long it;
	int fd, ffd;
	size_t i;

	fd = open_dev(dev, O_RDWR);
	size = size_of(fd, dev);
	if (size == 0 || size % SECTOR)
		die("%s: size %" PRIu64 " is not a positive multiple of 512", dev, size);
	ffd = open(file, O_RDONLY);
	if (ffd < 0)
		die("open %s: %s", file, strerror(errno));
	if (size_of(ffd, file) != size)
		die("%s is %" PRIu64 " bytes but its backing file %s is %" PRIu64, dev, size, file,
		    size_of(ffd, file));
	sectors = size / SECTOR;
	if (sectors > 64 * MiB)
		die("%s: too large for the random test (%" PRIu64 " sectors)", dev, sectors);
	/* Which iteration last wrote each sector (0: never). */
	gen = calloc((size_t)sectors, sizeof(*gen));
	if (!gen)
		die("out of memory for %" PRIu64 " sectors", sectors);
	rng_state = seed;

	if (sectors % unit)
		die("%s: size %" PRIu64 " is not a multiple of its logical block size %" PRIu64, dev, size,
		    unit * SECTOR);
	for (it = 1; it <= iterations; it++) {
		/* In units of unit sectors (1 unless O_DIRECT on a larger block size). */
		nsec = unit * (1 + rnd() % (CHUNK / SECTOR / unit));
		if (nsec > sectors)
			nsec = sectors;
		if (sectors > four_g + 2 * CHUNK / SECTOR && it == 1)
			start = (four_g - nsec / 2) / unit * unit; /* straddles 4 GiB */
		else if (sectors > four_g + 2 * CHUNK / SECTOR && it % 2 == 0)
			start = four_g + unit * (rnd() % ((sectors - four_g - nsec) / unit + 1));
		else
			start = unit * (rnd() % ((sectors - nsec) / unit + 1));
		for (i = 0; i < nsec; i++)
			fill_sector(buf + i * SECTOR, MAGIC_RANDOM, start + i, seed, (uint64_t)it);
		full_pwrite(fd, dev, buf, (size_t)(nsec * SECTOR), start * SECTOR);
		full_pread(fd, dev, back, (size_t)(nsec * SECTOR), start * SECTOR);
		for (i = 0; i < nsec; i++)
			if (memcmp(buf + i * SECTOR, back + i * SECTOR, SECTOR))
				bad_sector("read-back right after the write", start + i, back + i * SECTOR,
					   "the data just written");
		if (reports)
			die("write %ld (%" PRIu64 " sectors at sector %" PRIu64 ") did not read back", it, nsec,
			    start);
		for (i = 0; i < nsec; i++)
			gen[start + i] = (uint32_t)it;
		written += nsec * SECTOR;
		if ((start + nsec) * SECTOR > 4 * GiB)
			above4g++;
	}
	t1 = now();
	sync_and_drop(fd, dev);

	/* Every written sector, read again through the driver. */
	for (s = 0; s < sectors; s += run) {
		uint64_t n, k;

		if (!gen[s]) {
			run = 1;
			continue;
		}
		for (run = 0; s + run < sectors && gen[s + run] && run < CHUNK / SECTOR; run++)
			;
		full_pread(fd, dev, back, (size_t)(run * SECTOR), s * SECTOR);
		for (k = 0; k < run; k++) {
			n = s + k;
			fill_sector(want, MAGIC_RANDOM, n, seed, gen[n]);
			if (memcmp(back + k * SECTOR, want, SECTOR)) {
				char label[64];

				snprintf(label, sizeof(label), "the data of write %u", gen[n]);
				bad_sector(dev, n, back + k * SECTOR, label);
			}
		}
	}
	if (reports)
		die("%s: %d bad sectors after fsync", dev, reports);

	/* The device and its backing file agree byte for byte. */
	if (size <= FULL_LIMIT) {
		compare_range(fd, dev, ffd, file, buf, back, 0, size);
		compared = size;
	} else {
		uint64_t edge = size < 2 * MiB ? size : MiB;

		compare_range(fd, dev, ffd, file, buf, back, 0, edge);
		compare_range(fd, dev, ffd, file, buf, back, size - edge, edge);
		compared = 2 * edge;
		for (s = 0; s < sectors; s += run) {
			if (!gen[s]) {
				run = 1;
				continue;
			}
			for (run = 0; s + run < sectors && gen[s + run]; run++)
				;
			compare_range(fd, dev, ffd, file, buf, back, s * SECTOR, run * SECTOR);
			compared += run * SECTOR;
		}
	}
	printf("random (%s, seed %" PRIu64 "): %ld writes, %" PRIu64 " MiB written (%" PRIu64
	       " reaching above 4 GiB) in %.1f s; all written sectors verified and %" PRIu64
	       " MiB compared with %s, in %.1f s total\n",
	       direct ? "O_DIRECT" : "buffered", seed, iterations, written / MiB, above4g, t1 - t0,
	       compared / MiB, file, now() - t0);
	close(fd);
	close(ffd);
	free(gen);
	free(buf);
	free(back);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode, *pos[2] = { NULL, NULL };
	uint64_t seed = 0;
	long iterations = -1;
	int have_seed = 0, fresh = 0, npos = 0, i;
	char *end;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		usage();
	mode = argv[1];
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--direct") == 0) {
			direct = 1;
		} else if (strcmp(argv[i], "--buffered") == 0) {
			direct = 0;
		} else if (strcmp(argv[i], "--fresh") == 0) {
			fresh = 1;
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			seed = strtoull(argv[++i], &end, 0);
			if (*end)
				usage();
			have_seed = 1;
		} else if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
			iterations = strtol(argv[++i], &end, 0);
			if (*end || iterations <= 0)
				usage();
		} else if (argv[i][0] != '-' && npos < 2) {
			pos[npos++] = argv[i];
		} else {
			usage();
		}
	}
	if (!have_seed)
		usage();
	if (strcmp(mode, "random") == 0 && npos == 2 && iterations > 0 && !fresh)
		return cmd_random(pos[0], pos[1], seed, iterations);
	if (strcmp(mode, "pattern") == 0 && npos >= 1 && iterations < 0)
		return cmd_pattern(pos[0], pos[1], seed, fresh);
	if (strcmp(mode, "verify-pattern") == 0 && npos == 1 && iterations < 0 && !direct)
		return cmd_verify_pattern(pos[0], seed, fresh);
	usage();
}
