// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * sw_sync helpers: a thread that signals a timeline later.
 */
#include <sys/ioctl.h>
#include <unistd.h>

#include "igt_core.h"
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
