/* SPDX-License-Identifier: MIT */
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * ioctl helpers, as IGT's lib/ioctl_wrappers.h has them. do_ioctl() and
 * do_ioctl_err() live in drmtest.h, where IGT keeps them; this header pulls
 * it in so that either include gives both.
 */
#ifndef IOCTL_WRAPPERS_H
#define IOCTL_WRAPPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include "drmtest.h"

/**
 * igt_ioctl - The ioctl entry point of all helpers: drmIoctl() unless a
 * test swaps it (per thread, as in IGT).
 */
extern __thread int (*igt_ioctl)(int fd, unsigned long request, void *arg);

void gem_close(int fd, uint32_t handle);
int igt_has_drm_cap(int fd, uint64_t capability);

static inline uint64_t to_user_pointer(const void *ptr)
{
	return (uintptr_t)ptr;
}

static inline void *from_user_pointer(uint64_t u64p)
{
	return (void *)(uintptr_t)u64p;
}

static inline uint32_t lower_32_bits(uint64_t x)
{
	return x & 0xffffffff;
}

static inline uint32_t upper_32_bits(uint64_t x)
{
	return x >> 32;
}

#endif /* IOCTL_WRAPPERS_H */
