// SPDX-License-Identifier: GPL-2.0
/*
 * Wrappers of static inline kernel functions for lofi's Rust code: see
 * lofi_helpers.h. The configuration conditionals are those of the wrapped
 * functions' own headers, so that the Rust side needs none.
 */

#include <linux/bio.h>
#include <linux/blk-cgroup.h>
#include <linux/blkdev.h>
#include <linux/cgroup.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/sched/mm.h>

#include "lofi_helpers.h"

/* Freeze protection of the backing file system around a write. */
void lofi_kiocb_start_write(struct kiocb *iocb)
{
	kiocb_start_write(iocb);
}

/* Ends what lofi_kiocb_start_write() started, in any context. */
void lofi_kiocb_end_write(struct kiocb *iocb)
{
	kiocb_end_write(iocb);
}

/*
 * queue_limits_start_update(), with the snapshot copied to @lim (struct
 * queue_limits is large for a return by value across languages). Takes
 * q->limits_lock; queue_limits_commit_update() releases it.
 */
void lofi_queue_limits_start_update(struct request_queue *q, struct queue_limits *lim)
	__acquires(&q->limits_lock)
{
	*lim = queue_limits_start_update(q);
}

/* The blkcg of a bio (NULL without CONFIG_BLK_CGROUP). */
struct cgroup_subsys_state *lofi_bio_blkcg_css(struct bio *bio)
{
#ifdef CONFIG_BLK_CGROUP
	return bio_blkcg_css(bio);
#else
	return NULL;
#endif
}

/*
 * The memory cgroup of a blkcg's cgroup, with a reference the caller puts
 * with lofi_css_put() (NULL without CONFIG_MEMCG), as loop does.
 */
struct cgroup_subsys_state *lofi_memcg_css_get(struct cgroup_subsys_state *blkcg_css)
{
#ifdef CONFIG_MEMCG
	return cgroup_get_e_css(blkcg_css->cgroup, &memory_cgrp_subsys);
#else
	return NULL;
#endif
}

void lofi_css_put(struct cgroup_subsys_state *css)
{
	css_put(css);
}

/* Charges the current kthread's I/O to @css (NULL: back to its own). */
void lofi_kthread_associate_blkcg(struct cgroup_subsys_state *css)
{
#ifdef CONFIG_BLK_CGROUP
	kthread_associate_blkcg(css);
#endif
}

/* Charges the current task's allocations to @memcg_css; returns the old. */
struct mem_cgroup *lofi_set_active_memcg_css(struct cgroup_subsys_state *memcg_css)
{
	return set_active_memcg(mem_cgroup_from_css(memcg_css));
}

void lofi_set_active_memcg(struct mem_cgroup *memcg)
{
	set_active_memcg(memcg);
}

/*
 * A usage reference of @q, as every request in flight holds one (what
 * blk_queue_enter() takes and blk_queue_exit() drops): while it is held,
 * no freeze of @q completes, so del_gendisk() cannot finish.
 */
void lofi_queue_usage_get(struct request_queue *q)
{
	percpu_ref_get(&q->q_usage_counter);
}

void lofi_queue_usage_put(struct request_queue *q)
{
	percpu_ref_put(&q->q_usage_counter);
}
