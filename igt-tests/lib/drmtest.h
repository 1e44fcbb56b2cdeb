/* SPDX-License-Identifier: MIT */
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Opening DRM devices by driver, as IGT's lib/drmtest.h does.
 */
#ifndef DRMTEST_H
#define DRMTEST_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xf86drm.h>

#include "igt_core.h"

/*
 * Chipset bits for drm_open_driver(). The first ones are IGT's own values;
 * DRIVER_VIRTIO and DRIVER_HMMGPU are ours, placed well clear of the bits
 * IGT hands out so that adding them to IGT's list needs no renumbering.
 */
#define DRIVER_INTEL	(1 << 0)
#define DRIVER_VC4	(1 << 1)
#define DRIVER_VGEM	(1 << 2)
#define DRIVER_AMDGPU	(1 << 3)
#define DRIVER_V3D	(1 << 4)
#define DRIVER_PANFROST	(1 << 5)
#define DRIVER_MSM	(1 << 6)
#define DRIVER_XE	(1 << 7)
#define DRIVER_VMWGFX	(1 << 8)
#define DRIVER_VKMS	(1 << 9)
#define DRIVER_VIRTIO	(1 << 24)
#define DRIVER_HMMGPU	(1 << 25)

/*
 * As in IGT, DRIVER_ANY leaves out the virtual vgem and vkms, which would
 * otherwise win over the device under test depending on probe order.
 */
#define DRIVER_ANY	~(DRIVER_VGEM | DRIVER_VKMS)

#define ARRAY_SIZE(arr) (sizeof(arr) / sizeof(arr[0]))
#define ALIGN(v, a) ALIGN_MASK(v, (typeof(v))(a) - 1)
#define ALIGN_MASK(v, mask) (((v) + (mask)) & ~(mask))
#define ALIGN_DOWN(x, a) ALIGN((x) - ((a) - 1), (a))
#define IS_ALIGNED(v, a) (((v) & ((typeof(v))(a) - 1)) == 0)

int __get_drm_device_name(int fd, char *name, int name_size);
unsigned int drm_get_chipset(int fd);

int __drm_open_device(const char *name, unsigned int chipset);
void drm_load_module(unsigned int chipset);
int __drm_open_driver(int chipset);
int __drm_open_driver_render(int chipset);
int drm_open_driver(int chipset);
int drm_open_driver_render(int chipset);
int drm_reopen_driver(int fd);
int __drm_close_driver(int fd);
int drm_close_driver(int fd);

/* The entry point of do_ioctl(); ioctl_wrappers.h documents it. */
extern __thread int (*igt_ioctl)(int fd, unsigned long request, void *arg);

/**
 * do_or_die - Asserts that @x evaluates to 0.
 */
#define do_or_die(x) igt_assert((x) == 0)

/**
 * do_ioctl - Runs an ioctl through igt_ioctl() and asserts it succeeded.
 */
#define do_ioctl(fd, ioc, ioc_data) do { \
	igt_assert_eq(igt_ioctl((fd), (ioc), (ioc_data)), 0); \
	errno = 0; \
} while (0)

/**
 * do_ioctl_err - Runs an ioctl through igt_ioctl() and asserts it failed
 * with errno @err.
 */
#define do_ioctl_err(fd, ioc, ioc_data, err) do { \
	igt_assert_eq(igt_ioctl((fd), (ioc), (ioc_data)), -1); \
	igt_assert_eq(errno, err); \
	errno = 0; \
} while (0)

#endif /* DRMTEST_H */
