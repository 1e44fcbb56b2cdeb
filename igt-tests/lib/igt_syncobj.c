// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 */
#include <errno.h>

#include <xf86drm.h>

#include "igt_core.h"
#include "igt_syncobj.h"
#include "ioctl_wrappers.h"

/**
 * __syncobj_create - Creates a sync object with DRM_SYNCOBJ_CREATE_* @flags;
 * returns 0 and its handle in *@handle, or -errno.
 */
int __syncobj_create(int fd, uint32_t flags, uint32_t *handle)
{
	struct drm_syncobj_create create = { .flags = flags };
	int err = igt_ioctl(fd, DRM_IOCTL_SYNCOBJ_CREATE, &create) ? -errno : 0;

	errno = 0;
	if (!err)
		*handle = create.handle;
	return err;
}

/** syncobj_create - As __syncobj_create(), failing the test on error. */
uint32_t syncobj_create(int fd, uint32_t flags)
{
	uint32_t handle = 0;

	igt_assert_eq(__syncobj_create(fd, flags, &handle), 0);
	return handle;
}

/** __syncobj_destroy - Destroys sync object @handle: 0 or -errno. */
int __syncobj_destroy(int fd, uint32_t handle)
{
	struct drm_syncobj_destroy destroy = { .handle = handle };
	int err = igt_ioctl(fd, DRM_IOCTL_SYNCOBJ_DESTROY, &destroy) ? -errno : 0;

	errno = 0;
	return err;
}

/** syncobj_destroy - As __syncobj_destroy(), failing the test on error. */
void syncobj_destroy(int fd, uint32_t handle)
{
	igt_assert_eq(__syncobj_destroy(fd, handle), 0);
}
