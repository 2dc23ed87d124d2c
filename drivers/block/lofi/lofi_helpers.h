/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Wrappers of static inline kernel functions that lofi's Rust code calls
 * (declared again on the Rust side, in kext/helpers.rs). Each wraps one
 * function and adds nothing; upstream they belong in rust/helpers/, next to
 * the kernel crate's own, with the kext code that uses them.
 */
#ifndef LOFI_HELPERS_H
#define LOFI_HELPERS_H

#include <linux/types.h>

struct bio;
struct cgroup_subsys_state;
struct kiocb;
struct mem_cgroup;
struct queue_limits;
struct request_queue;

void lofi_kiocb_start_write(struct kiocb *iocb);
void lofi_kiocb_end_write(struct kiocb *iocb);
void lofi_queue_limits_start_update(struct request_queue *q, struct queue_limits *lim);
struct cgroup_subsys_state *lofi_bio_blkcg_css(struct bio *bio);
struct cgroup_subsys_state *lofi_memcg_css_get(struct cgroup_subsys_state *blkcg_css);
void lofi_css_put(struct cgroup_subsys_state *css);
void lofi_kthread_associate_blkcg(struct cgroup_subsys_state *css);
struct mem_cgroup *lofi_set_active_memcg_css(struct cgroup_subsys_state *memcg_css);
void lofi_set_active_memcg(struct mem_cgroup *memcg);
void lofi_queue_usage_get(struct request_queue *q);
void lofi_queue_usage_put(struct request_queue *q);

#endif /* LOFI_HELPERS_H */
