// SPDX-License-Identifier: GPL-2.0
/*
 * lofi_hardening: helpers of the hardening guest tests (tests/guest/hardening-*.sh)
 * for what a shell cannot do quickly enough or at all.
 *
 *   lofi_hardening open DEV ro|wo|rw
 *       open DEV O_RDONLY, O_WRONLY or O_RDWR and close it; prints "ok"
 *   lofi_hardening unmap-once DEV|N [force|cleanup]
 *       one LOFI_UNMAP_FILE_MINOR, no retry on EBUSY (unlike lofi_map)
 *   lofi_hardening unmap-on-open DEV FILE SECS
 *       for SECS seconds, whenever DEV (a mapping of FILE) is opened
 *       (inotify IN_OPEN, printing "watching" once set up): a plain unmap
 *       of DEV at once, not retried on EBUSY (counted); FILE is mapped
 *       again after each successful unmap, which must give DEV back. Run
 *       at real-time priority on the opener's CPU, it runs as soon as the
 *       opener's open(2) has opened DEV, before the opener closes it.
 *   lofi_hardening close-umount DEV MNT force|cleanup
 *       open DEV read-write, unmap it (forced, or detach at last close)
 *       while open, close it, and at once umount(2) MNT; prints
 *       "umount ok" or "umount EBUSY"
 *   lofi_hardening gone-umount DEV MNT
 *       open DEV, wait in DKIOCSTATE ("waiting: STATE" once blocked) until
 *       DKIO_DEV_GONE, then at once umount(2) MNT, DEV still open; prints
 *       "DKIO_DEV_GONE umount ok" or "DKIO_DEV_GONE umount EBUSY"
 *   lofi_hardening map-loop PATH SECS [image=IMG] [watch=FILE]...
 *       LOFI_MAP_FILE of PATH again and again for SECS seconds; a map that
 *       succeeds is checked (with image=: the device has IMG's size and
 *       first sector) and unmapped. With watch=, counts the opens
 *       (IN_OPEN) and the closes of files opened for writing
 *       (IN_CLOSE_WRITE) of each FILE. Each attempt is bounded by
 *       alarm(10): a map that hangs kills the program (SIGALRM).
 *   lofi_hardening flip LINK SECS TARGET1 TARGET...
 *       make the symlink LINK name TARGET1 and each other TARGET in turn
 *       (TARGET1, T2, TARGET1, T3, ...), atomically (renameat2
 *       RENAME_EXCHANGE with LINK.flipI), as fast as possible for SECS
 *       seconds
 *   lofi_hardening flags-sample WQ SECS [MAX]
 *       sample the state and flags (fields 3 and 9 of /proc/PID/stat) of
 *       the kworkers running an item of workqueue WQ (comm
 *       "kworker/...+WQ") for SECS seconds or until MAX samples found the
 *       worker asleep (S or D: inside the work function); counts the
 *       samples by state and by PF_MEMALLOC_NOIO and PF_LOCAL_THROTTLE
 *
 * Exit status: 0 on success, 1 on an error (printed with the errno's name,
 * e.g. "lofi_hardening: open /dev/lofi1 (wo): EROFS (Read-only file
 * system)"), 2 on a usage error, 3 when a umount of close-umount or
 * gone-umount failed with EBUSY. map-loop, unmap-on-open, flip and
 * flags-sample end with a line "RESULT key=value ...".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <linux/lofi.h>

#define LOFI_PROG_NAME "lofi_hardening"
#include "lofi_prog.h"

#define CTL_PATH "/dev/lofictl"

/* include/linux/sched.h of the test kernel. */
#define PF_MEMALLOC_NOIO 0x00080000u
#define PF_LOCAL_THROTTLE 0x00100000u

__attribute__((noreturn))
static void usage(void)
{
	fprintf(stderr,
		"usage: lofi_hardening open DEV ro|wo|rw | unmap-once DEV|N [force|cleanup] |\n"
		"       unmap-on-open DEV FILE SECS |\n"
		"       close-umount DEV MNT force|cleanup | gone-umount DEV MNT |\n"
		"       map-loop PATH SECS [image=IMG] [watch=FILE]... |\n"
		"       flip LINK SECS TARGET1 TARGET... | flags-sample WQ SECS [MAX]\n");
	exit(2);
}

static int ctl(void)
{
	int fd = open(CTL_PATH, O_RDWR | O_CLOEXEC);

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

/* N from "N", "/dev/lofiN" or "/dev/lofi/N". */
static unsigned need_minor(const char *arg)
{
	unsigned n = lofi_dev_number(arg);

	if (!n)
		die("%s: not a lofi device path or number", arg);
	return n;
}

/* One UNMAP_FILE_MINOR; 0 or an errno. */
static int unmap_minor(int fd, unsigned n, int force, int cleanup)
{
	struct lofi_ioctl li;

	li_init(&li, NULL);
	li.li_minor = n;
	li.li_force = force;
	li.li_cleanup = cleanup;
	return ioctl(fd, LOFI_UNMAP_FILE_MINOR, &li) < 0 ? errno : 0;
}

/* A plain unmap, retrying EBUSY (udev may probe a new disk) for 5 s. */
static int unmap_retry(int fd, unsigned n)
{
	double end = now() + 5;
	int r;

	while ((r = unmap_minor(fd, n, 0, 0)) == EBUSY && now() < end)
		msleep(20);
	return r;
}

static void parse_mode(const char *mode, int *force, int *cleanup)
{
	*force = strcmp(mode, "force") == 0;
	*cleanup = strcmp(mode, "cleanup") == 0;
	if (!*force && !*cleanup)
		usage();
}

static int cmd_open(const char *dev, const char *mode)
{
	int flags, fd;

	if (strcmp(mode, "ro") == 0)
		flags = O_RDONLY;
	else if (strcmp(mode, "wo") == 0)
		flags = O_WRONLY;
	else if (strcmp(mode, "rw") == 0)
		flags = O_RDWR;
	else
		usage();
	fd = open(dev, flags | O_CLOEXEC);
	if (fd < 0)
		die_errno(errno, "open %s (%s)", dev, mode);
	close(fd);
	printf("ok\n");
	return 0;
}

/* umount MNT now: 0, 3 for EBUSY, else dies. */
static int umount_now(const char *what, const char *mnt)
{
	if (umount2(mnt, 0) == 0) {
		printf("%sumount ok\n", what);
		return 0;
	}
	if (errno == EBUSY) {
		printf("%sumount EBUSY\n", what);
		return 3;
	}
	die_errno(errno, "umount %s", mnt);
}

static int cmd_close_umount(const char *dev, const char *mnt, const char *mode)
{
	unsigned n = need_minor(dev);
	int force, cleanup, cfd, dfd, r;

	parse_mode(mode, &force, &cleanup);
	cfd = ctl();
	dfd = open(dev, O_RDWR | O_CLOEXEC);
	if (dfd < 0)
		die_errno(errno, "open %s", dev);
	r = unmap_minor(cfd, n, force, cleanup);
	if (r)
		die_errno(r, "unmap %u (%s) while open", n, mode);
	if (close(dfd) < 0)
		die_errno(errno, "close %s", dev);
	/* The last close is done: the backing file must be closed now. */
	return umount_now("", mnt);
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

static int cmd_gone_umount(const char *dev, const char *mnt)
{
	uint32_t state = LOFI_DKIO_NONE;
	int fd = open(dev, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die_errno(errno, "open %s", dev);
	if (ioctl(fd, LOFI_DKIOCSTATE, &state) < 0)
		die_errno(errno, "DKIOCSTATE(DKIO_NONE) on %s", dev);
	while (state != LOFI_DKIO_DEV_GONE) {
		printf("waiting: %s\n", state_name(state));
		fflush(stdout);
		if (ioctl(fd, LOFI_DKIOCSTATE, &state) < 0)
			die_errno(errno, "DKIOCSTATE(%s) on %s", state_name(state), dev);
	}
	/* DKIO_DEV_GONE promises the backing file is closed: umount at once. */
	return umount_now("DKIO_DEV_GONE ", mnt);
}

/* The sectors of mapping N, from sysfs; -1 if unreadable. */
static long long sysfs_sectors(unsigned n)
{
	char path[64];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/lofi%u/size", n);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

#define MAX_WATCH 8

struct watch {
	const char *path;
	int wd;
	long long opens, close_write;
};

static void drain_events(int ifd, struct watch *w, int nw)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;

	while ((len = read(ifd, buf, sizeof(buf))) > 0) {
		char *p = buf;

		while (p < buf + len) {
			struct inotify_event *ev = (struct inotify_event *)p;
			int i;

			for (i = 0; i < nw; i++) {
				if (ev->wd != w[i].wd)
					continue;
				if (ev->mask & IN_OPEN)
					w[i].opens++;
				if (ev->mask & IN_CLOSE_WRITE)
					w[i].close_write++;
			}
			p += sizeof(*ev) + ev->len;
		}
	}
}

static int cmd_map_loop(int argc, char **argv)
{
	const char *path = argv[0], *image = NULL;
	double secs = strtod(argv[1], NULL), end;
	struct watch w[MAX_WATCH];
	int nw = 0, ifd = -1, cfd, i, wrong = 0;
	long long attempts = 0, mapped = 0, einval = 0, enoent = 0, enxio = 0, other = 0;
	int first_other = 0;
	long long img_size = 0;
	char head[512], dhead[512];

	for (i = 2; i < argc; i++) {
		if (strncmp(argv[i], "image=", 6) == 0) {
			image = argv[i] + 6;
		} else if (strncmp(argv[i], "watch=", 6) == 0 && nw < MAX_WATCH) {
			w[nw].path = argv[i] + 6;
			w[nw].opens = w[nw].close_write = 0;
			nw++;
		} else {
			usage();
		}
	}
	if (secs <= 0)
		usage();
	if (image) {
		struct stat st;
		int fd = open(image, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || fstat(fd, &st) < 0 || pread(fd, head, sizeof(head), 0) != sizeof(head))
			die_errno(errno, "read %s", image);
		img_size = st.st_size;
		close(fd);
	}
	if (nw) {
		ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (ifd < 0)
			die_errno(errno, "inotify_init1");
		for (i = 0; i < nw; i++) {
			w[i].wd = inotify_add_watch(ifd, w[i].path, IN_OPEN | IN_CLOSE_WRITE);
			if (w[i].wd < 0)
				die_errno(errno, "inotify_add_watch %s", w[i].path);
		}
	}
	cfd = ctl();
	end = now() + secs;
	while (now() < end) {
		struct lofi_ioctl li;
		int r;

		li_init(&li, path);
		alarm(10);
		r = ioctl(cfd, LOFI_MAP_FILE, &li) < 0 ? errno : 0;
		alarm(0);
		attempts++;
		if (r == EINVAL) {
			einval++;
		} else if (r == ENOENT) {
			enoent++;
		} else if (r == ENXIO) {
			enxio++;
		} else if (r) {
			if (!other++)
				first_other = r;
		} else {
			unsigned n = li.li_minor;

			mapped++;
			if (image) {
				long long sectors = sysfs_sectors(n);
				int dfd = open(li.li_devpath, O_RDONLY | O_CLOEXEC);

				if (sectors * 512 != img_size) {
					fprintf(stderr, "FAIL: mapped %s as %s: %lld sectors, the image has %lld bytes\n",
						path, li.li_devpath, sectors, img_size);
					wrong++;
				} else if (dfd < 0 || pread(dfd, dhead, sizeof(dhead), 0) != sizeof(dhead) ||
					   memcmp(head, dhead, sizeof(head)) != 0) {
					fprintf(stderr, "FAIL: mapped %s as %s: its first sector is not the image's (%s)\n",
						path, li.li_devpath, dfd < 0 ? ename(errno) : "differs");
					wrong++;
				}
				if (dfd >= 0)
					close(dfd);
			}
			r = unmap_retry(cfd, n);
			if (r)
				die_errno(r, "unmap %u (a mapping of %s made by map-loop)", n, path);
		}
		if (nw && attempts % 64 == 0)
			drain_events(ifd, w, nw);
	}
	if (nw)
		drain_events(ifd, w, nw);
	printf("RESULT attempts=%lld mapped=%lld einval=%lld enoent=%lld enxio=%lld other=%lld wrong=%d",
	       attempts, mapped, einval, enoent, enxio, other, wrong);
	if (other)
		printf(" first_other=%s", ename(first_other));
	for (i = 0; i < nw; i++)
		printf(" opens%d=%lld close-write%d=%lld", i + 1, w[i].opens, i + 1, w[i].close_write);
	printf("\n");
	return 0;
}

/* Wait until PATH is a block device, up to SECS seconds. */
static int wait_node(const char *path, double secs)
{
	double end = now() + secs;
	struct stat st;

	while (stat(path, &st) < 0 || !S_ISBLK(st.st_mode)) {
		if (now() > end)
			return 0;
		msleep(5);
	}
	return 1;
}

static int cmd_unmap_on_open(const char *dev, const char *file, double secs)
{
	unsigned n = need_minor(dev);
	double end = now() + secs;
	long long opens = 0, attempts = 0, unmapped = 0, ebusy = 0;
	int cfd = ctl(), ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

	if (ifd < 0)
		die_errno(errno, "inotify_init1");
	if (inotify_add_watch(ifd, dev, IN_OPEN) < 0)
		die_errno(errno, "inotify_add_watch %s", dev);
	printf("watching\n");
	fflush(stdout);
	while (now() < end) {
		char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		struct pollfd pfd = { .fd = ifd, .events = POLLIN };
		struct lofi_ioctl li;
		int opened = 0, r;
		ssize_t len;
		char *p;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		while ((len = read(ifd, buf, sizeof(buf))) > 0)
			for (p = buf; p < buf + len; p += sizeof(struct inotify_event) + ((struct inotify_event *)p)->len)
				opened |= !!(((struct inotify_event *)p)->mask & IN_OPEN);
		if (!opened)
			continue;
		/* Somebody has DEV open right now (unless it closed it already). */
		opens++;
		attempts++;
		r = unmap_minor(cfd, n, 0, 0);
		if (r == EBUSY) {
			ebusy++;
			continue;
		}
		if (r)
			die_errno(r, "unmap %u", n);
		unmapped++;
		li_init(&li, file);
		if (ioctl(cfd, LOFI_MAP_FILE, &li) < 0)
			die_errno(errno, "map %s", file);
		if (li.li_minor != n)
			die("map %s got %s, not %s back", file, li.li_devpath, dev);
		/* A new node: watch it. */
		if (!wait_node(dev, 5))
			die("%s did not appear after mapping %s again", dev, file);
		if (inotify_add_watch(ifd, dev, IN_OPEN) < 0)
			die_errno(errno, "inotify_add_watch %s (mapped again)", dev);
	}
	printf("RESULT opens=%lld attempts=%lld unmapped=%lld ebusy=%lld\n", opens, attempts, unmapped, ebusy);
	return 0;
}

static int cmd_flip(const char *link, double secs, int nt, char **targets)
{
	char alt[MAX_WATCH][PATH_MAX];
	double end = now() + secs;
	long long flips = 0;
	int i;

	if (nt < 2 || nt > MAX_WATCH)
		usage();
	/* LINK -> TARGET1; LINK.flipI -> TARGETI for the others. */
	for (i = 0; i < nt; i++) {
		const char *name = link;

		if (i) {
			if (snprintf(alt[i], sizeof(alt[i]), "%s.flip%d", link, i) >= (int)sizeof(alt[i]))
				die("%s: path too long", link);
			name = alt[i];
		}
		unlink(name);
		if (symlink(targets[i], name) < 0)
			die_errno(errno, "symlink %s %s", targets[i], name);
	}
	/*
	 * Swap LINK with LINK.flipI and back, for I = 1, 2, ...: one
	 * renameat2(RENAME_EXCHANGE) per flip, LINK always present, naming
	 * TARGET1 half of the time.
	 */
	for (i = 1; now() < end; i = i % (nt - 1) + 1) {
		int k;

		for (k = 0; k < 2; k++) {
			if (renameat2(AT_FDCWD, link, AT_FDCWD, alt[i], RENAME_EXCHANGE) < 0)
				die_errno(errno, "renameat2 %s %s RENAME_EXCHANGE", link, alt[i]);
			flips++;
		}
	}
	for (i = 1; i < nt; i++)
		unlink(alt[i]);
	printf("RESULT flips=%lld\n", flips);
	return 0;
}

struct kworker {
	int pid, fd;
	int seen;	/* its comm named WQ (+WQ or -WQ) at some sample */
};

struct kworkers {
	struct kworker *k;
	int n, cap;
};

/* Reopens the stat files of every kworker, keeping what was seen of each. */
static void find_kworkers(struct kworkers *kw)
{
	struct kworker *old = kw->k;
	int n_old = kw->n, i;
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		die_errno(errno, "opendir /proc");
	kw->k = NULL;
	kw->n = kw->cap = 0;
	while ((de = readdir(d))) {
		char path[300], buf[256];
		ssize_t len;
		int fd, pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = pread(fd, buf, sizeof(buf) - 1, 0);
		if (len <= 0) {
			close(fd);
			continue;
		}
		buf[len] = 0;
		if (!strstr(buf, " (kworker/")) {
			close(fd);
			continue;
		}
		if (kw->n == kw->cap) {
			kw->cap = kw->cap ? 2 * kw->cap : 256;
			kw->k = realloc(kw->k, kw->cap * sizeof(*kw->k));
			if (!kw->k)
				die("out of memory");
		}
		pid = atoi(de->d_name);
		kw->k[kw->n].pid = pid;
		kw->k[kw->n].fd = fd;
		kw->k[kw->n].seen = 0;
		for (i = 0; i < n_old; i++)
			if (old[i].pid == pid)
				kw->k[kw->n].seen = old[i].seen;
		kw->n++;
	}
	closedir(d);
	for (i = 0; i < n_old; i++)
		close(old[i].fd);
	free(old);
}

/* What the samples of flags-sample saw, by flags. */
struct flag_counts {
	long long both, noio_only, throttle_only, neither;
};

static void count_flags(struct flag_counts *c, unsigned long flags)
{
	int noio = !!(flags & PF_MEMALLOC_NOIO), throttle = !!(flags & PF_LOCAL_THROTTLE);

	if (noio && throttle)
		c->both++;
	else if (noio)
		c->noio_only++;
	else if (throttle)
		c->throttle_only++;
	else
		c->neither++;
}

static int cmd_flags_sample(const char *wq, double secs, long long max)
{
	struct kworkers kw = { 0 };
	struct flag_counts asleep = { 0 }, running = { 0 };
	double end = now() + secs, rescan = 0;
	long long scans = 0, samples = 0, n_asleep = 0, torn = 0;
	int shown = 0, i, all = 1, max_kworkers = 0;

	while (now() < end && n_asleep < max) {
		/*
		 * Every kworker in one scan of 16 (and a fresh list every 0.5 s),
		 * else only those that have run an item of WQ: with many
		 * kworkers a full scan is slow.
		 */
		if (now() >= rescan) {
			find_kworkers(&kw);
			if (kw.n > max_kworkers)
				max_kworkers = kw.n;
			rescan = now() + 0.5;
		}
		all = scans % 16 == 0;
		for (i = 0; i < kw.n; i++) {
			struct kworker *k = &kw.k[i];
			char buf[512], *open_paren, *close_paren, *plus, *p, state = '?';
			unsigned long flags = 0;
			ssize_t len;
			int field, is_asleep;

			if (!all && !k->seen)
				continue;
			len = pread(k->fd, buf, sizeof(buf) - 1, 0);
			if (len <= 0)
				continue;
			buf[len] = 0;
			/*
			 * The kernel builds the line field by field, unlocked: a
			 * read can show the comm of one moment ("+WQ", an item
			 * current) and the state and flags of a later one (back
			 * in the worker loop, asleep). Count only a line that a
			 * second read, right after, repeats exactly.
			 */
			{
				char again[sizeof(buf)];
				ssize_t len2 = pread(k->fd, again, sizeof(again) - 1, 0);

				if (len2 != len || memcmp(again, buf, (size_t)len) != 0) {
					torn++;
					continue;
				}
			}
			open_paren = strchr(buf, '(');
			close_paren = strrchr(buf, ')');
			if (!open_paren || !close_paren || close_paren < open_paren)
				continue;
			*close_paren = 0;
			/* "+WQ": running an item of WQ now ("-WQ": ran one last). */
			plus = strrchr(open_paren, '+');
			if (!plus)
				plus = strrchr(open_paren, '-');
			if (!plus || strcmp(plus + 1, wq) != 0)
				continue;
			k->seen = 1;
			if (*plus != '+')
				continue;
			/* After the comm: state(3) ppid pgrp session tty_nr tpgid flags(9). */
			p = close_paren + 1;
			for (field = 3; field <= 9; field++) {
				char *tok;

				while (*p == ' ')
					p++;
				tok = p;
				while (*p && *p != ' ')
					p++;
				if (field == 3)
					state = *tok;
				if (field == 9)
					flags = strtoul(tok, NULL, 10);
			}
			samples++;
			/*
			 * Asleep with an item current: inside the work function (the
			 * workqueue's own bookkeeping around it does not sleep).
			 */
			is_asleep = state == 'S' || state == 'D';
			if (is_asleep) {
				n_asleep++;
				count_flags(&asleep, flags);
			} else {
				count_flags(&running, flags);
			}
			if (is_asleep && shown < 5 &&
			    (flags & (PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE)) != (PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE)) {
				printf("sample: pid %d comm %s state %c flags 0x%08lx: PF_MEMALLOC_NOIO %s, PF_LOCAL_THROTTLE %s\n",
				       k->pid, open_paren + 1, state, flags, flags & PF_MEMALLOC_NOIO ? "set" : "clear",
				       flags & PF_LOCAL_THROTTLE ? "set" : "clear");
				shown++;
			}
		}
		scans++;
	}
	printf("RESULT kworkers=%d scans=%lld samples=%lld asleep=%lld asleep-both=%lld asleep-noio-only=%lld "
	       "asleep-throttle-only=%lld asleep-neither=%lld running-both=%lld running-noio-only=%lld "
	       "running-throttle-only=%lld running-neither=%lld torn=%lld\n",
	       max_kworkers, scans, samples, n_asleep, asleep.both, asleep.noio_only, asleep.throttle_only, asleep.neither,
	       running.both, running.noio_only, running.throttle_only, running.neither, torn);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2)
		usage();
	cmd = argv[1];
	if (strcmp(cmd, "open") == 0 && argc == 4)
		return cmd_open(argv[2], argv[3]);
	if (strcmp(cmd, "unmap-once") == 0 && (argc == 3 || argc == 4)) {
		int force = 0, cleanup = 0, r;
		unsigned n = need_minor(argv[2]);

		if (argc == 4)
			parse_mode(argv[3], &force, &cleanup);
		r = unmap_minor(ctl(), n, force, cleanup);
		if (r)
			die_errno(r, "unmap %u", n);
		return 0;
	}
	if (strcmp(cmd, "unmap-on-open") == 0 && argc == 5) {
		double secs = strtod(argv[4], NULL);

		if (secs <= 0)
			usage();
		return cmd_unmap_on_open(argv[2], argv[3], secs);
	}
	if (strcmp(cmd, "close-umount") == 0 && argc == 5)
		return cmd_close_umount(argv[2], argv[3], argv[4]);
	if (strcmp(cmd, "gone-umount") == 0 && argc == 4)
		return cmd_gone_umount(argv[2], argv[3]);
	if (strcmp(cmd, "map-loop") == 0 && argc >= 4)
		return cmd_map_loop(argc - 2, argv + 2);
	if (strcmp(cmd, "flip") == 0 && argc >= 5) {
		double secs = strtod(argv[3], NULL);

		if (secs <= 0)
			usage();
		return cmd_flip(argv[2], secs, argc - 4, argv + 4);
	}
	if (strcmp(cmd, "flags-sample") == 0 && (argc == 4 || argc == 5)) {
		double secs = strtod(argv[3], NULL);
		long long max = argc == 5 ? atoll(argv[4]) : LLONG_MAX;

		if (secs <= 0 || max <= 0)
			usage();
		return cmd_flags_sample(argv[2], secs, max);
	}
	usage();
}
