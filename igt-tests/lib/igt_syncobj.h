/* SPDX-License-Identifier: MIT */
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * DRM sync object helpers, named as IGT's lib/igt_syncobj.h names them.
 */
#ifndef IGT_SYNCOBJ_H
#define IGT_SYNCOBJ_H

#include <stdint.h>

int __syncobj_create(int fd, uint32_t flags, uint32_t *handle);
uint32_t syncobj_create(int fd, uint32_t flags);
int __syncobj_destroy(int fd, uint32_t handle);
void syncobj_destroy(int fd, uint32_t handle);

#endif /* IGT_SYNCOBJ_H */
