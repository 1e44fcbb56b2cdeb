/* SPDX-License-Identifier: MIT */
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Helpers for hmmgpu's uAPI (include/uapi/drm/hmmgpu_drm.h), in the style
 * of IGT's per-driver helpers: __name() returns 0 or -errno, name()
 * asserts success.
 */
#ifndef IGT_HMMGPU_H
#define IGT_HMMGPU_H

#include <stdint.h>

#include "drm/hmmgpu_drm.h"

int __hmmgpu_get_param(int fd, uint32_t param, uint64_t *value);
uint64_t hmmgpu_get_param(int fd, uint32_t param);

int __hmmgpu_gem_create(int fd, uint64_t size, uint32_t flags, uint32_t *handle);
uint32_t hmmgpu_gem_create(int fd, uint64_t size);

int __hmmgpu_gem_mmap_offset(int fd, uint32_t handle, uint32_t flags, uint64_t *offset);
uint64_t hmmgpu_gem_mmap_offset(int fd, uint32_t handle);

int __hmmgpu_userptr_create(int fd, uint64_t addr, uint64_t size, uint32_t flags,
			    uint32_t *handle);
uint32_t hmmgpu_userptr_create(int fd, void *ptr, uint64_t size, uint32_t flags);

void *__hmmgpu_gem_mmap(int fd, uint32_t handle, uint64_t size, int prot);
void *hmmgpu_gem_mmap(int fd, uint32_t handle, uint64_t size, int prot);

#endif /* IGT_HMMGPU_H */
