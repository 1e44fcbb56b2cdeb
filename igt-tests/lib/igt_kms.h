/* SPDX-License-Identifier: MIT */
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * KMS properties by name, for tests that drive a display (vkms) through
 * atomic commits.
 */
#ifndef IGT_KMS_H
#define IGT_KMS_H

#include <stdint.h>

#include <xf86drmMode.h>

uint32_t igt_kms_prop_id(int kms_fd, uint32_t obj, uint32_t type, const char *name,
			 uint64_t *value);
void igt_kms_add_prop(drmModeAtomicReqPtr req, int kms_fd, uint32_t obj, uint32_t type,
		      const char *name, uint64_t value);

#endif /* IGT_KMS_H */
