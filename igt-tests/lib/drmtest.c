// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Finding and opening the DRM device of a driver, as IGT's lib/drmtest.c
 * does without device filters: the first card (or render node) whose driver
 * is among the chipset bits asked for, loading the drivers' modules once if
 * none is there yet.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xf86drm.h>

#include "drmtest.h"
#include "igt_core.h"
#include "igt_kmod.h"

/* Kernel driver names of the chipset bits, as IGT's modules[] maps them. */
static const struct module {
	unsigned int bit;
	const char *module;
} modules[] = {
	{ DRIVER_AMDGPU, "amdgpu" },
	{ DRIVER_HMMGPU, "hmmgpu" },
	{ DRIVER_INTEL, "i915" },
	{ DRIVER_MSM, "msm" },
	{ DRIVER_PANFROST, "panfrost" },
	{ DRIVER_V3D, "v3d" },
	{ DRIVER_VC4, "vc4" },
	{ DRIVER_VGEM, "vgem" },
	{ DRIVER_VIRTIO, "virtio_gpu" },
	{ DRIVER_VKMS, "vkms" },
	{ DRIVER_VMWGFX, "vmwgfx" },
	{ DRIVER_XE, "xe" },
	{}
};

/* Card minors run from 0, render minors from 128, 64 of each at most. */
#define MAX_NODES 64

/**
 * __get_drm_device_name - Copies the driver name of @fd into @name.
 *
 * Returns: 0, or -1 when @fd is no DRM device.
 */
int __get_drm_device_name(int fd, char *name, int name_size)
{
	drmVersionPtr version;

	if (name_size <= 0)
		return -1;

	version = drmGetVersion(fd);
	if (!version)
		return -1;

	snprintf(name, name_size, "%s", version->name ?: "");
	drmFreeVersion(version);
	return 0;
}

static void modulename_to_chipset(const char *name, unsigned int *chip)
{
	for (const struct module *m = modules; m->module; m++) {
		if (!strcmp(m->module, name)) {
			*chip = m->bit;
			return;
		}
	}
}

/**
 * drm_get_chipset - The chipset bit of @fd's driver, or DRIVER_ANY for a
 * driver that has none.
 */
unsigned int drm_get_chipset(int fd)
{
	unsigned int chip = DRIVER_ANY;
	char name[32];

	if (__get_drm_device_name(fd, name, sizeof(name)))
		return chip;

	modulename_to_chipset(name, &chip);
	return chip;
}

static const char *chipset_to_str(int chipset)
{
	if (chipset == DRIVER_INTEL)
		return "intel";

	for (const struct module *m = modules; m->module; m++)
		if ((int)m->bit == chipset)
			return m->module;

	return chipset == DRIVER_ANY ? "any" : "other";
}

/* The first open of a node is worth an info line; later ones are not. */
static void log_opened_device_path(const char *path)
{
	static char *opened[2 * MAX_NODES];
	static unsigned int count;

	for (unsigned int i = 0; i < count; i++) {
		if (!strcmp(opened[i], path)) {
			igt_debug("Opened previously opened device: %s\n", path);
			return;
		}
	}

	if (count < ARRAY_SIZE(opened)) {
		opened[count] = strdup(path);
		if (opened[count])
			count++;
	}
	igt_info("Opened device: %s\n", path);
}

/**
 * __drm_open_device - Opens the DRM node @name if its driver is one of
 * @chipset.
 *
 * Returns: the file descriptor, or -1.
 */
int __drm_open_device(const char *name, unsigned int chipset)
{
	unsigned int chip = DRIVER_ANY;
	char dev_name[32];
	int fd;

	fd = open(name, O_RDWR | O_CLOEXEC);
	if (fd == -1)
		return -1;

	if (__get_drm_device_name(fd, dev_name, sizeof(dev_name)))
		goto err;

	modulename_to_chipset(dev_name, &chip);
	if ((chipset & chip) == chip) {
		log_opened_device_path(name);
		return fd;
	}

err:
	close(fd);
	return -1;
}

static int __search_and_open(const char *base, int offset, unsigned int chipset)
{
	for (int i = 0; i < MAX_NODES; i++) {
		char name[80];
		int fd;

		snprintf(name, sizeof(name), "%s%u", base, i + offset);
		fd = __drm_open_device(name, chipset);
		if (fd != -1)
			return fd;
	}

	return -1;
}

/**
 * drm_load_module - Loads the module of every driver in @chipset.
 */
void drm_load_module(unsigned int chipset)
{
	for (const struct module *m = modules; m->module; m++)
		if (chipset & m->bit)
			igt_kmod_load(m->module, NULL);
}

static int __open_driver(const char *base, int offset, unsigned int chipset)
{
	int fd;

	fd = __search_and_open(base, offset, chipset);
	if (fd != -1)
		return fd;

	drm_load_module(chipset);

	return __search_and_open(base, offset, chipset);
}

/**
 * __drm_open_driver - Opens the first /dev/dri/card* of a driver in
 * @chipset.
 *
 * Returns: the file descriptor, or -1 when there is no such device.
 */
int __drm_open_driver(int chipset)
{
	return __open_driver("/dev/dri/card", 0, chipset);
}

/**
 * __drm_open_driver_render - Opens the first /dev/dri/renderD* of a driver
 * in @chipset.
 *
 * Returns: the file descriptor, or -1 when there is no such device.
 */
int __drm_open_driver_render(int chipset)
{
	return __open_driver("/dev/dri/renderD", 128, chipset);
}

/**
 * drm_open_driver - Like __drm_open_driver(), but skips the subtest when
 * there is no such device.
 */
int drm_open_driver(int chipset)
{
	int fd = __drm_open_driver(chipset);

	igt_skip_on_f(fd < 0, "No known gpu found for chipset flags 0x%x (%s)\n",
		      chipset, chipset_to_str(chipset));

	return fd;
}

/**
 * drm_open_driver_render - Opens the render node of a driver in @chipset,
 * or as IGT does, its card when it has no render node; skips when there is
 * neither.
 */
int drm_open_driver_render(int chipset)
{
	int fd = __drm_open_driver_render(chipset);

	if (fd == -1)
		return drm_open_driver(chipset);

	return fd;
}

/**
 * drm_reopen_driver - Opens the node of @fd again, for a new DRM file.
 */
int drm_reopen_driver(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd = open(path, O_RDWR | O_CLOEXEC);
	igt_assert_fd(fd);

	return fd;
}

static bool is_valid_fd(int fd)
{
	char path[64], buf[PATH_MAX];
	ssize_t len;

	if (fd < 0)
		return false;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	len = readlink(path, buf, sizeof(buf) - 1);
	if (len <= 0)
		return false;
	buf[len] = '\0';

	return !strncmp(buf, "/dev/dri/card", strlen("/dev/dri/card")) ||
	       !strncmp(buf, "/dev/dri/renderD", strlen("/dev/dri/renderD"));
}

/**
 * __drm_close_driver - Closes @fd if it is a DRM node.
 *
 * Returns: 0, or -1 when @fd is not an open DRM node.
 */
int __drm_close_driver(int fd)
{
	if (!is_valid_fd(fd))
		return -1;

	return close(fd);
}

/**
 * drm_close_driver - Like __drm_close_driver(), with a warning for an fd
 * that is not a DRM node.
 */
int drm_close_driver(int fd)
{
	if (!is_valid_fd(fd)) {
		igt_warn("Don't attempt to close standard/invalid file descriptor: %d\n", fd);
		return -1;
	}

	return __drm_close_driver(fd);
}
