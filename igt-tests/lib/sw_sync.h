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

#endif /* IGT_SW_SYNC_H */
