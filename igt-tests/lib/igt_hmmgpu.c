// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "igt_core.h"
#include "igt_hmmgpu.h"
#include "ioctl_wrappers.h"

/* Runs @request; returns 0 or -errno, and leaves errno clear for asserts. */
static int __hmmgpu_ioctl(int fd, unsigned long request, void *arg)
{
	int err = 0;

	if (igt_ioctl(fd, request, arg))
		err = -errno;
	errno = 0;

	return err;
}

/**
 * __hmmgpu_get_param - Reads the device parameter @param into @value.
 */
int __hmmgpu_get_param(int fd, uint32_t param, uint64_t *value)
{
	struct drm_hmmgpu_get_param arg = { .param = param };
	int err;

	err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_GET_PARAM, &arg);
	if (!err)
		*value = arg.value;

	return err;
}

uint64_t hmmgpu_get_param(int fd, uint32_t param)
{
	uint64_t value = 0;

	igt_assert_eq(__hmmgpu_get_param(fd, param, &value), 0);
	return value;
}

/**
 * __hmmgpu_gem_create - Creates a GEM object of @size bytes.
 */
int __hmmgpu_gem_create(int fd, uint64_t size, uint32_t flags, uint32_t *handle)
{
	struct drm_hmmgpu_gem_create arg = { .size = size, .flags = flags };
	int err;

	err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_GEM_CREATE, &arg);
	if (!err)
		*handle = arg.handle;

	return err;
}

uint32_t hmmgpu_gem_create(int fd, uint64_t size)
{
	uint32_t handle = 0;

	igt_assert_eq(__hmmgpu_gem_create(fd, size, 0, &handle), 0);
	igt_assert_neq_u32(handle, 0);
	return handle;
}

/**
 * __hmmgpu_gem_mmap_offset - Gets the fake offset that maps @handle.
 */
int __hmmgpu_gem_mmap_offset(int fd, uint32_t handle, uint32_t flags, uint64_t *offset)
{
	struct drm_hmmgpu_gem_mmap_offset arg = { .handle = handle, .flags = flags };
	int err;

	err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET, &arg);
	if (!err)
		*offset = arg.offset;

	return err;
}

uint64_t hmmgpu_gem_mmap_offset(int fd, uint32_t handle)
{
	uint64_t offset = 0;

	igt_assert_eq(__hmmgpu_gem_mmap_offset(fd, handle, 0, &offset), 0);
	return offset;
}

/**
 * __hmmgpu_gem_mmap - Maps the first @size bytes of @handle, shared.
 *
 * Returns: the mapping, or NULL with errno set.
 */
void *__hmmgpu_gem_mmap(int fd, uint32_t handle, uint64_t size, int prot)
{
	uint64_t offset;
	void *ptr;
	int err;

	err = __hmmgpu_gem_mmap_offset(fd, handle, 0, &offset);
	if (err) {
		errno = -err;
		return NULL;
	}

	ptr = mmap(NULL, size, prot, MAP_SHARED, fd, offset);
	return ptr == MAP_FAILED ? NULL : ptr;
}

void *hmmgpu_gem_mmap(int fd, uint32_t handle, uint64_t size, int prot)
{
	void *ptr = __hmmgpu_gem_mmap(fd, handle, size, prot);

	igt_assert_f(ptr, "mmap of handle %u, size %llu failed\n", handle,
		     (unsigned long long)size);
	errno = 0;
	return ptr;
}

/**
 * __hmmgpu_userptr_create - Creates a userptr object for [@addr, @addr + @size)
 * of this process; returns 0 and its handle, or -errno.
 */
int __hmmgpu_userptr_create(int fd, uint64_t addr, uint64_t size, uint32_t flags,
			    uint32_t *handle)
{
	struct drm_hmmgpu_userptr_create arg = {
		.addr = addr,
		.size = size,
		.flags = flags,
	};
	int err;

	err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_USERPTR_CREATE, &arg);
	if (!err)
		*handle = arg.handle;

	return err;
}

uint32_t hmmgpu_userptr_create(int fd, void *ptr, uint64_t size, uint32_t flags)
{
	uint32_t handle = 0;

	igt_assert_eq(__hmmgpu_userptr_create(fd, (uintptr_t)ptr, size, flags, &handle), 0);
	igt_assert_neq(handle, 0);
	return handle;
}
