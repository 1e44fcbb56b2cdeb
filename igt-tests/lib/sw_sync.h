/* SPDX-License-Identifier: MIT */
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * sw_sync (CONFIG_SW_SYNC, drivers/dma-buf/sw_sync.c, in debugfs): fences a
 * test signals itself. The kernel does not export these definitions to
 * userspace; IGT's lib/sw_sync.c carries them too.
 */
#ifndef IGT_SW_SYNC_H
#define IGT_SW_SYNC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/ioctl.h>
#include <linux/types.h>

/* Where a sw_sync timeline is opened. */
#define SW_SYNC_PATH	"/sys/kernel/debug/sync/sw_sync"

struct sw_sync_create_fence_data {
	__u32 value;
	char name[32];
	__s32 fence;
};

#define SW_SYNC_IOC_MAGIC		'W'
#define SW_SYNC_IOC_CREATE_FENCE \
	_IOWR(SW_SYNC_IOC_MAGIC, 0, struct sw_sync_create_fence_data)
#define SW_SYNC_IOC_INC			_IOW(SW_SYNC_IOC_MAGIC, 1, __u32)

/*
 * A thread that advances sw_sync timeline @tl by one a while (200 ms) after
 * it starts: for a test whose call must wait for a fence that another thread
 * signals. @opened is set just before the timeline advances, so that a call
 * that returns with it unset did not wait.
 */
struct sw_sync_opener {
	pthread_t thread;
	int tl;
	atomic_bool opened;
};

/* Starts @o's thread on timeline @tl. */
void sw_sync_open_later(struct sw_sync_opener *o, int tl);
/* Whether @o's thread has advanced the timeline (or is about to). */
bool sw_sync_opened(struct sw_sync_opener *o);
/* Waits for @o's thread to end. */
void sw_sync_opener_join(struct sw_sync_opener *o);

/*
 * A new timeline, and its fence of value 1 in a new binary sync object of
 * DRM device @fd at *@syncobj: something to hold jobs and binds back with
 * until sw_sync_release(). Returns the timeline, or -1 without sw_sync (the
 * caller skips or does without).
 */
int sw_sync_hold(int fd, uint32_t *syncobj);
/* Signals the fence of sw_sync_hold()'s timeline @tl. */
void sw_sync_release(int tl);

#endif /* IGT_SW_SYNC_H */
