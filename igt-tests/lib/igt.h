/* SPDX-License-Identifier: MIT */
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * The one header a test includes, as in IGT.
 */
#ifndef IGT_H
#define IGT_H

#include "drmtest.h"
#include "igt_core.h"
#include "igt_kmod.h"
#include "ioctl_wrappers.h"

#endif /* IGT_H */
