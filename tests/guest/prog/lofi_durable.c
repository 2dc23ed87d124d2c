// SPDX-License-Identifier: GPL-2.0
/*
 * lofi_durable: a writer that knows which of its writes were acknowledged,
 * for the forced-unmap rounds of the reliability suite.
 *
 *   lofi_durable DEV FILE BLOCKS MARKER SEED
 *
 * Writes 4 KiB blocks 0 .. BLOCKS-1 of DEV (a lofi device backed by FILE)
 * round and round with O_DIRECT, each block stamped with (SEED, block,
 * generation), and calls fdatasync(2) after every eighth write, until a
 * write or a flush fails. The failure must be EIO and must come after the
 * file MARKER exists (the test creates it just before it force-unmaps the
 * device): an error before that, or another errno, is a failure.
 *
 * Then it reads FILE directly and checks every block: it must hold the
 * last generation whose write was acknowledged, or, for the one block
 * whose write failed, possibly that write's generation (a request cut
 * short by the unmap may or may not have reached the file). A block that
 * holds anything else is an acknowledged write lost.
 *
 * Output: a line "started" once 50 writes were acknowledged, and at the
 * end one line "writes=W flushes=F lost=L errno=E after-marker=yes|no".
 * Exit status: 0 if all holds, 1 if not, 2 on a usage or setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lofi_prog.h"

#define BLOCK 4096
#define FLUSH_EVERY 8
/* Acknowledged writes after which it reports "started". */
#define STARTED_AFTER 50

/* The stamp at the start of every 64-byte slot of a block. */
struct stamp {
	uint64_t seed;
	uint64_t block;
	uint64_t generation;
	uint64_t check;
};

static uint64_t check_of(const struct stamp *s)
{
	return (s->seed * 0x9e3779b97f4a7c15ULL) ^ (s->block << 20) ^ s->generation ^ 0x6c6f6669ULL;
}

static void fill(unsigned char *buf, uint64_t seed, uint64_t block, uint64_t generation)
{
	struct stamp s = { seed, block, generation, 0 };
	size_t off;

	s.check = check_of(&s);
	for (off = 0; off < BLOCK; off += 64) {
		memcpy(buf + off, &s, sizeof(s));
		memset(buf + off + sizeof(s), (int)(generation & 0xff), 64 - sizeof(s));
	}
}

/* The generation a block holds, or -1 if it is not a whole, valid stamp. */
static int64_t generation_in(const unsigned char *buf, uint64_t seed, uint64_t block)
{
	unsigned char want[BLOCK] __attribute__((aligned(64)));
	struct stamp s;

	memcpy(&s, buf, sizeof(s));
	if (s.seed != seed || s.block != block || s.check != check_of(&s))
		return -1;
	fill(want, seed, block, s.generation);
	return memcmp(want, buf, BLOCK) == 0 ? (int64_t)s.generation : -1;
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

int main(int argc, char **argv)
{
	const char *dev, *file, *marker;
	unsigned char *buf, check[BLOCK];
	uint64_t blocks, seed, *acked, gen = 0, writes = 0, flushes = 0, lost = 0, b;
	int64_t failed_block = -1;
	int fd, err = 0, after_marker = 0, in_file;
	char *end;

	if (argc != 6) {
		fprintf(stderr, "usage: lofi_durable DEV FILE BLOCKS MARKER SEED\n");
		return 2;
	}
	dev = argv[1];
	file = argv[2];
	marker = argv[4];
	blocks = strtoull(argv[3], &end, 10);
	if (*end || blocks == 0)
		return 2;
	seed = strtoull(argv[5], &end, 10);
	if (*end)
		return 2;
	acked = calloc(blocks, sizeof(*acked));
	if (!acked || posix_memalign((void **)&buf, BLOCK, BLOCK)) {
		perror("lofi_durable: memory");
		return 2;
	}
	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0) {
		fprintf(stderr, "lofi_durable: open %s: %s\n", dev, strerror(errno));
		return 2;
	}
	/* Generation 0 means "never written": those blocks are not checked. */
	for (;;) {
		b = writes % blocks;
		gen++;
		fill(buf, seed, b, gen);
		if (pwrite(fd, buf, BLOCK, (off_t)(b * BLOCK)) != BLOCK) {
			err = errno;
			failed_block = (int64_t)b;
			break;
		}
		acked[b] = gen;
		writes++;
		if (writes == STARTED_AFTER) {
			printf("started\n");
			fflush(stdout);
		}
		if (writes % FLUSH_EVERY == 0) {
			if (fdatasync(fd) < 0) {
				err = errno;
				break;
			}
			flushes++;
		}
	}
	after_marker = exists(marker);
	close(fd);

	/* The device is gone; the backing file holds what was acknowledged. */
	fd = open(file, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "lofi_durable: open %s: %s\n", file, strerror(errno));
		return 2;
	}
	for (b = 0; b < blocks; b++) {
		int64_t g;

		if (acked[b] == 0 && (int64_t)b != failed_block)
			continue;
		if (pread(fd, check, BLOCK, (off_t)(b * BLOCK)) != BLOCK) {
			fprintf(stderr, "lofi_durable: read %s block %" PRIu64 ": %s\n", file, b, strerror(errno));
			return 2;
		}
		g = generation_in(check, seed, b);
		in_file = g >= 0 && (uint64_t)g == acked[b];
		if (!in_file && (int64_t)b == failed_block)
			in_file = (g >= 0 && (uint64_t)g == gen) || (acked[b] == 0 && g < 0);
		if (!in_file) {
			if (lost < 10)
				fprintf(stderr,
					"lofi_durable: block %" PRIu64 ": acknowledged generation %" PRIu64
					" is not in %s (it holds %" PRId64 ")\n",
					b, acked[b], file, g);
			lost++;
		}
	}
	close(fd);
	printf("writes=%" PRIu64 " flushes=%" PRIu64 " lost=%" PRIu64 " errno=%s after-marker=%s\n", writes,
	       flushes, lost, err == EIO ? "EIO" : strerror(err), after_marker ? "yes" : "no");
	if (err != EIO)
		fprintf(stderr, "lofi_durable: the I/O failed with %s, want EIO\n", strerror(err));
	if (!after_marker)
		fprintf(stderr, "lofi_durable: the I/O failed before the forced unmap began\n");
	return lost == 0 && err == EIO && after_marker ? 0 : 1;
}
