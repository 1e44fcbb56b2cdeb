// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * sw_sync helpers: a thread that signals a timeline later, a fence in a sync
 * object to hold things back with.
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <xf86drm.h>

#include "igt_core.h"
#include "igt_syncobj.h"
#include "sw_sync.h"

static void *open_later(void *arg)
{
	struct sw_sync_opener *o = arg;
	__u32 one = 1;

	usleep(200 * 1000);
	atomic_store(&o->opened, true);
	ioctl(o->tl, SW_SYNC_IOC_INC, &one);
	return NULL;
}

void sw_sync_open_later(struct sw_sync_opener *o, int tl)
{
	o->tl = tl;
	atomic_store(&o->opened, false);
	igt_assert_eq(pthread_create(&o->thread, NULL, open_later, o), 0);
}

bool sw_sync_opened(struct sw_sync_opener *o)
{
	return atomic_load(&o->opened);
}

void sw_sync_opener_join(struct sw_sync_opener *o)
{
	igt_assert_eq(pthread_join(o->thread, NULL), 0);
}

int sw_sync_hold(int fd, uint32_t *syncobj)
{
	struct sw_sync_create_fence_data data = { .value = 1, .name = "hold" };
	int tl = open(SW_SYNC_PATH, O_RDWR | O_CLOEXEC);

	if (tl < 0)
		return -1;
	igt_assert_eq(ioctl(tl, SW_SYNC_IOC_CREATE_FENCE, &data), 0);
	*syncobj = syncobj_create(fd, 0);
	igt_assert_eq(drmSyncobjImportSyncFile(fd, *syncobj, data.fence), 0);
	close(data.fence);
	return tl;
}

void sw_sync_release(int tl)
{
	__u32 one = 1;

	igt_assert_eq(ioctl(tl, SW_SYNC_IOC_INC, &one), 0);
}
