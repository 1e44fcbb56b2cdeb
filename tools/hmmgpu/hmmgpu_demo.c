// SPDX-License-Identifier: MIT
/*
 * What `make run` shows: open the hmmgpu render node by driver name, print the
 * device's parameters, and round-trip a GEM buffer through a CPU mapping.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xf86drm.h>

#include "drm/hmmgpu_drm.h"

static int open_by_name(const char *name)
{
	char path[64];
	int i;

	for (i = 128; i < 192; i++) {
		drmVersionPtr v;
		int fd;

		snprintf(path, sizeof(path), "/dev/dri/renderD%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		v = drmGetVersion(fd);
		if (v && !strcmp(v->name, name)) {
			printf("device     %s: %s %d.%d.%d, \"%s\"\n", path, v->name,
			       v->version_major, v->version_minor, v->version_patchlevel, v->desc);
			drmFreeVersion(v);
			return fd;
		}
		drmFreeVersion(v);
		close(fd);
	}
	return -1;
}

static uint64_t param(int fd, uint32_t p)
{
	struct drm_hmmgpu_get_param gp = { .param = p };

	if (drmIoctl(fd, DRM_IOCTL_HMMGPU_GET_PARAM, &gp)) {
		fprintf(stderr, "GET_PARAM %u: %s\n", p, strerror(errno));
		exit(1);
	}
	return gp.value;
}

static void *map(int fd, uint32_t handle, size_t size)
{
	struct drm_hmmgpu_gem_mmap_offset mo = { .handle = handle };
	void *ptr;

	if (drmIoctl(fd, DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET, &mo)) {
		perror("GEM_MMAP_OFFSET");
		exit(1);
	}
	ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, mo.offset);
	if (ptr == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return ptr;
}

int main(void)
{
	const size_t size = 2 << 20;
	struct drm_hmmgpu_gem_create create = { .size = size };
	uint64_t version, features, bad = 0;
	uint32_t *words;
	size_t i;
	int fd;

	fd = open_by_name("hmmgpu");
	if (fd < 0) {
		fprintf(stderr, "no hmmgpu render node\n");
		return 1;
	}

	version = param(fd, DRM_HMMGPU_PARAM_DRIVER_VERSION);
	features = param(fd, DRM_HMMGPU_PARAM_FEATURES);
	printf("version    %llu.%llu.%llu\n", (unsigned long long)(version >> 32),
	       (unsigned long long)(version >> 16 & 0xffff), (unsigned long long)(version & 0xffff));
	printf("features   0x%llx%s\n", (unsigned long long)features,
	       features & DRM_HMMGPU_FEATURE_GEM_SHMEM ? " (gem-shmem)" : "");
	printf("gem max    %llu MiB\n",
	       (unsigned long long)param(fd, DRM_HMMGPU_PARAM_GEM_MAX_SIZE) >> 20);
	printf("page size  %llu bytes\n", (unsigned long long)param(fd, DRM_HMMGPU_PARAM_PAGE_SIZE));

	if (drmIoctl(fd, DRM_IOCTL_HMMGPU_GEM_CREATE, &create)) {
		perror("GEM_CREATE");
		return 1;
	}
	words = map(fd, create.handle, size);
	for (i = 0; i < size / 4; i++)
		words[i] = 0xc0de0000u ^ i;
	munmap(words, size);

	/* A second mapping sees what the first one wrote: the pages are the object's. */
	words = map(fd, create.handle, size);
	for (i = 0; i < size / 4; i++)
		bad += words[i] != (0xc0de0000u ^ i);
	munmap(words, size);
	printf("gem        handle %u, %zu KiB written through one mapping, read back through another: %s\n",
	       create.handle, size >> 10, bad ? "MISMATCH" : "all words match");

	close(fd);
	return bad ? 1 : 0;
}
