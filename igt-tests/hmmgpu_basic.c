// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Basic checks of hmmgpu's uAPI (include/uapi/drm/hmmgpu_drm.h): opening
 * the device, its parameters, GEM objects and their CPU mappings, malformed
 * ioctls, handle lifetime, and unloading and reloading the module.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "igt.h"
#include "igt_hmmgpu.h"
#include "igt_kmod.h"

IGT_TEST_DESCRIPTION("Basic checks of the hmmgpu uAPI: device, parameters, GEM objects, "
		     "mmap, malformed ioctls, handle lifetime and module reload.");

#define SZ_2M		(2ull << 20)
#define SENTINEL32	0xdeadbeefu
#define SENTINEL64	0xdeadbeefcafef00dull

/*
 * The fixture's fd, static rather than local to igt_main because
 * module-reload replaces it inside a subtest, that is between sigsetjmp()
 * and siglongjmp().
 */
static int drm_fd = -1;

static uint64_t page_size(int fd)
{
	return hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_PAGE_SIZE);
}

static uint64_t max_size(int fd)
{
	return hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_GEM_MAX_SIZE);
}

static void check_zero(const void *ptr, uint64_t size)
{
	const uint64_t *p = ptr;

	for (uint64_t i = 0; i < size / sizeof(*p); i++)
		igt_assert_f(p[i] == 0, "qword %llu of a new object reads %#llx\n",
			     (unsigned long long)i, (unsigned long long)p[i]);
}

static void *mmap_offset(int fd, uint64_t offset, uint64_t size)
{
	void *ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);

	igt_assert_f(ptr != MAP_FAILED, "mmap of %llu bytes at offset %#llx failed\n",
		     (unsigned long long)size, (unsigned long long)offset);
	return ptr;
}

/* A new object reads as zeros, and keeps what is written through a mapping. */
static void gem_roundtrip(int fd, uint64_t size, uint32_t seed)
{
	uint32_t handle = hmmgpu_gem_create(fd, size);
	void *ptr;

	ptr = hmmgpu_gem_mmap(fd, handle, size, PROT_READ | PROT_WRITE);
	check_zero(ptr, size);
	hmmgpu_fill_pattern(ptr, size, seed);
	igt_assert_eq(munmap(ptr, size), 0);

	ptr = hmmgpu_gem_mmap(fd, handle, size, PROT_READ);
	hmmgpu_check_pattern(ptr, size, seed);
	igt_assert_eq(munmap(ptr, size), 0);

	gem_close(fd, handle);
}

static void check_driver_name(int fd)
{
	drmVersionPtr version = drmGetVersion(fd);

	igt_assert(version);
	igt_assert_f(!strcmp(version->name, "hmmgpu"), "driver name is \"%s\"\n",
		     version->name);
	drmFreeVersion(version);
}

/* drmGetVersion() and DRM_HMMGPU_PARAM_DRIVER_VERSION tell the same. */
static void check_version(int fd)
{
	drmVersionPtr version = drmGetVersion(fd);
	uint64_t value, expected;

	igt_assert(version);
	igt_assert_f(!strcmp(version->name, "hmmgpu"), "driver name is \"%s\"\n",
		     version->name);
	igt_info("%s %d.%d.%d (%s): %s\n", version->name, version->version_major,
		 version->version_minor, version->version_patchlevel, version->date,
		 version->desc);

	/* The packing leaves 16 bits to minor and patchlevel. */
	igt_assert_lte(0, version->version_major);
	igt_assert_lte(0, version->version_minor);
	igt_assert_lt(version->version_minor, 1 << 16);
	igt_assert_lte(0, version->version_patchlevel);
	igt_assert_lt(version->version_patchlevel, 1 << 16);

	value = hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_DRIVER_VERSION);
	expected = (uint64_t)version->version_major << 32 |
		   (uint64_t)version->version_minor << 16 |
		   (uint64_t)version->version_patchlevel;
	igt_assert_eq_u64(value, expected);

	drmFreeVersion(version);
}

/* Whether any DRM node in /dev/dri belongs to hmmgpu. */
static bool hmmgpu_node_present(void)
{
	bool found = false;
	struct dirent *de;
	DIR *dir;

	dir = opendir("/dev/dri");
	if (!dir)
		return false;

	while (!found && (de = readdir(dir))) {
		char path[300], name[32];
		int fd;

		if (strncmp(de->d_name, "card", 4) && strncmp(de->d_name, "renderD", 7))
			continue;

		snprintf(path, sizeof(path), "/dev/dri/%s", de->d_name);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		found = !__get_drm_device_name(fd, name, sizeof(name)) &&
			!strcmp(name, "hmmgpu");
		close(fd);
	}

	closedir(dir);
	return found;
}

static bool wait_for_hmmgpu_node(void)
{
	/* Probing may complete after modprobe returns. */
	for (int i = 0; i < 50; i++) {
		if (hmmgpu_node_present())
			return true;
		usleep(100 * 1000);
	}

	return false;
}

static void test_open(void)
{
	int card, render;

	card = drm_open_driver(DRIVER_HMMGPU);
	igt_assert_eq(drmGetNodeTypeFromFd(card), DRM_NODE_PRIMARY);
	check_driver_name(card);

	render = drm_open_driver_render(DRIVER_HMMGPU);
	igt_assert_eq(drmGetNodeTypeFromFd(render), DRM_NODE_RENDER);
	check_driver_name(render);

	/* A render client gets the driver's ioctls, as a GPU user would. */
	gem_roundtrip(render, page_size(render), 1);
	gem_roundtrip(card, page_size(card), 2);

	drm_close_driver(render);
	drm_close_driver(card);
}

static void test_version(void)
{
	int render = drm_open_driver_render(DRIVER_HMMGPU);

	check_version(drm_fd);
	check_version(render);
	drm_close_driver(render);
}

static void test_get_param_unknown(int fd)
{
	static const uint32_t params[] = {
		DRM_HMMGPU_PARAM_VM_MODES + 1, 0x80000000u, 0xffffffffu,
	};
	uint64_t value;

	for (unsigned int i = 0; i < ARRAY_SIZE(params); i++) {
		igt_debug("param %#x\n", params[i]);
		igt_assert_eq(__hmmgpu_get_param(fd, params[i], &value), -EINVAL);
	}
}

static void test_get_param_pad(int fd)
{
	static const uint32_t pads[] = { 1, 0x80000000u, 0xffffffffu };

	for (unsigned int i = 0; i < ARRAY_SIZE(pads); i++) {
		struct drm_hmmgpu_get_param arg = {
			.param = DRM_HMMGPU_PARAM_PAGE_SIZE,
			.pad = pads[i],
		};

		igt_debug("pad %#x\n", pads[i]);
		do_ioctl_err(fd, DRM_IOCTL_HMMGPU_GET_PARAM, &arg, EINVAL);
	}
}

static void test_gem_create(int fd)
{
	const uint64_t sizes[] = { page_size(fd), SZ_2M, max_size(fd) };
	uint32_t handles[ARRAY_SIZE(sizes)];

	for (unsigned int i = 0; i < ARRAY_SIZE(sizes); i++) {
		igt_debug("size %#llx\n", (unsigned long long)sizes[i]);
		handles[i] = hmmgpu_gem_create(fd, sizes[i]);
		for (unsigned int j = 0; j < i; j++)
			igt_assert_neq_u32(handles[i], handles[j]);
	}

	for (unsigned int i = 0; i < ARRAY_SIZE(sizes); i++)
		gem_close(fd, handles[i]);
}

/* Maps @handle of @fd2, writes and reads it back, then closes it and @fd2. */
static void map_and_close(int fd2, uint32_t handle, uint64_t page)
{
	volatile uint32_t *ptr = hmmgpu_gem_mmap(fd2, handle, page, PROT_READ | PROT_WRITE);

	ptr[1] = 0x600d;
	igt_assert_eq_u32(ptr[1], 0x600d);
	munmap((void *)ptr, page);
	gem_close(fd2, handle);
	drm_close_driver(fd2);
}

/*
 * Objects cost no memory for their pages until used, and the uAPI sets no
 * limit on how many a file makes: 32 objects of the largest size (more than
 * the device's space of mmap offsets, 1 TiB, would hold if each took its
 * offset at creation) can be made on one file, and meanwhile another file
 * makes an object and maps it.
 */
static void test_gem_create_max_many(int fd)
{
	const uint64_t page = page_size(fd), max = max_size(fd);
	uint32_t handles[32], other;
	int fd2, err;

	for (unsigned int i = 0; i < ARRAY_SIZE(handles); i++) {
		err = __hmmgpu_gem_create(fd, max, 0, &handles[i]);
		igt_assert_f(err == 0, "object %u of %#llx bytes: %s\n", i,
			     (unsigned long long)max, strerror(-err));
	}
	fd2 = drm_open_driver_render(DRIVER_HMMGPU);
	other = hmmgpu_gem_create(fd2, page);
	map_and_close(fd2, other, page);
	for (unsigned int i = 0; i < ARRAY_SIZE(handles); i++)
		gem_close(fd, handles[i]);
}

/*
 * The device's mmap offsets (1 TiB for all its files) taken, by objects of the
 * largest size and then of every smaller power of two, each asked for its
 * offset: GEM_MMAP_OFFSET fails with -ENOSPC, but another file still makes
 * objects, and maps one once the offsets are given back.
 */
static void test_mmap_offset_space_full(int fd)
{
	const uint64_t page = page_size(fd);
	struct drm_hmmgpu_gem_mmap_offset arg = {};
	unsigned int held = 0;
	uint32_t handle, other;
	int fd1, fd2;

	fd1 = drm_open_driver_render(DRIVER_HMMGPU);
	for (uint64_t size = max_size(fd); size >= page; size /= 2) {
		while (__hmmgpu_gem_create(fd1, size, 0, &handle) == 0) {
			arg.handle = handle;
			if (igt_ioctl(fd1, DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET, &arg)) {
				igt_assert_eq(errno, ENOSPC);
				gem_close(fd1, handle);
				break;
			}
			held++;
		}
	}
	igt_info("%u objects hold the offsets\n", held);
	errno = 0;

	fd2 = drm_open_driver_render(DRIVER_HMMGPU);
	other = hmmgpu_gem_create(fd2, page);
	arg.handle = other;
	igt_assert_eq(igt_ioctl(fd2, DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET, &arg), -1);
	igt_assert_eq(errno, ENOSPC);
	errno = 0;
	drm_close_driver(fd1);

	map_and_close(fd2, other, page);
}

static void test_gem_create_invalid(int fd)
{
	const uint64_t page = page_size(fd), max = max_size(fd);
	const uint64_t sizes[] = {
		0, page - 1, page + 1, max + page, ~0ull, ~0ull & ~(page - 1),
	};
	const uint32_t flags[] = { 1, 0x80000000u, 0xffffffffu };
	uint32_t handle;

	for (unsigned int i = 0; i < ARRAY_SIZE(sizes); i++) {
		igt_debug("size %#llx\n", (unsigned long long)sizes[i]);
		igt_assert_eq(__hmmgpu_gem_create(fd, sizes[i], 0, &handle), -EINVAL);
	}

	for (unsigned int i = 0; i < ARRAY_SIZE(flags); i++) {
		igt_debug("flags %#x\n", flags[i]);
		igt_assert_eq(__hmmgpu_gem_create(fd, page, flags[i], &handle), -EINVAL);
	}
}

static void test_gem_close(int fd)
{
	struct drm_gem_close arg = {};
	uint32_t handle;

	handle = hmmgpu_gem_create(fd, page_size(fd));
	gem_close(fd, handle);

	arg.handle = handle;
	do_ioctl_err(fd, DRM_IOCTL_GEM_CLOSE, &arg, EINVAL);

	arg.handle = 0;
	do_ioctl_err(fd, DRM_IOCTL_GEM_CLOSE, &arg, EINVAL);

	arg.handle = 0x7fffffff;
	do_ioctl_err(fd, DRM_IOCTL_GEM_CLOSE, &arg, EINVAL);
}

static void test_gem_mmap(int fd)
{
	const uint64_t sizes[] = { page_size(fd), 16 * page_size(fd), SZ_2M };

	for (unsigned int i = 0; i < ARRAY_SIZE(sizes); i++) {
		uint64_t size = sizes[i], offset;
		uint32_t handle;
		void *ptr;

		igt_debug("size %#llx\n", (unsigned long long)size);
		handle = hmmgpu_gem_create(fd, size);
		offset = hmmgpu_gem_mmap_offset(fd, handle);

		ptr = mmap_offset(fd, offset, size);
		hmmgpu_fill_pattern(ptr, size, i + 1);
		igt_assert_eq(munmap(ptr, size), 0);

		/* Mapped again at the same offset... */
		ptr = mmap_offset(fd, offset, size);
		hmmgpu_check_pattern(ptr, size, i + 1);
		igt_assert_eq(munmap(ptr, size), 0);

		/* ... and at the offset a second query gives. */
		offset = hmmgpu_gem_mmap_offset(fd, handle);
		ptr = mmap_offset(fd, offset, size);
		hmmgpu_check_pattern(ptr, size, i + 1);
		igt_assert_eq(munmap(ptr, size), 0);

		gem_close(fd, handle);
	}
}

static void test_gem_mmap_zeroed(int fd)
{
	/* Later objects may get the pages of earlier ones: none may show. */
	for (uint32_t round = 0; round < 4; round++) {
		uint32_t handle = hmmgpu_gem_create(fd, SZ_2M);
		void *ptr = hmmgpu_gem_mmap(fd, handle, SZ_2M, PROT_READ | PROT_WRITE);

		check_zero(ptr, SZ_2M);
		hmmgpu_fill_pattern(ptr, SZ_2M, round + 1);
		igt_assert_eq(munmap(ptr, SZ_2M), 0);
		gem_close(fd, handle);
	}
}

static void test_gem_mmap_offset_invalid(int fd)
{
	uint64_t offset;
	uint32_t handle;

	igt_assert_eq(__hmmgpu_gem_mmap_offset(fd, 0, 0, &offset), -ENOENT);
	igt_assert_eq(__hmmgpu_gem_mmap_offset(fd, 0xffffffffu, 0, &offset), -ENOENT);

	handle = hmmgpu_gem_create(fd, page_size(fd));
	gem_close(fd, handle);
	igt_assert_eq(__hmmgpu_gem_mmap_offset(fd, handle, 0, &offset), -ENOENT);

	handle = hmmgpu_gem_create(fd, page_size(fd));
	igt_assert_eq(__hmmgpu_gem_mmap_offset(fd, handle, 1, &offset), -EINVAL);
	igt_assert_eq(__hmmgpu_gem_mmap_offset(fd, handle, 0x80000000u, &offset), -EINVAL);
	gem_close(fd, handle);
}

static void test_gem_mmap_beyond(int fd)
{
	const uint64_t page = page_size(fd), size = 4 * page;
	uint32_t handle = hmmgpu_gem_create(fd, size);
	uint64_t offset = hmmgpu_gem_mmap_offset(fd, handle);
	void *ptr;

	/* Longer than the object. */
	ptr = mmap(NULL, size + page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
	igt_assert(ptr == MAP_FAILED);
	igt_assert_eq(errno, EINVAL);

	/* Within the object, but not from its start. */
	ptr = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset + page);
	igt_assert(ptr == MAP_FAILED);
	igt_assert_eq(errno, EINVAL);
	errno = 0;

	/* From its start, the whole object or less of it maps. */
	ptr = mmap_offset(fd, offset, page);
	igt_assert_eq(munmap(ptr, page), 0);
	ptr = mmap_offset(fd, offset, size);
	igt_assert_eq(munmap(ptr, size), 0);

	gem_close(fd, handle);
}

/* Past the last driver ioctl, there is no ioctl. */
static void test_bad_ioctl_number(int fd)
{
	struct drm_hmmgpu_get_param arg = {};

	do_ioctl_err(fd, DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_VM_STATS + 1,
				  struct drm_hmmgpu_get_param), &arg, EINVAL);
	do_ioctl_err(fd, DRM_IOWR(DRM_COMMAND_BASE + 0x3f, struct drm_hmmgpu_get_param),
		     &arg, EINVAL);
}

/*
 * drm_ioctl() copies in only the size the command encodes, zeroes the rest
 * of the driver's struct, and copies back only that size: fields past it
 * read as zero whatever the memory beyond holds, and outputs past it are
 * not written.
 */
static void test_short_struct(int fd)
{
	struct drm_hmmgpu_get_param gp = {
		.param = DRM_HMMGPU_PARAM_PAGE_SIZE,
		.pad = 0xffffffffu,
		.value = SENTINEL64,
	};
	struct drm_hmmgpu_gem_mmap_offset mo = {
		.flags = 0xffffffffu,
		.offset = SENTINEL64,
	};
	struct drm_hmmgpu_gem_create gc = {
		.flags = 0xffffffffu,
		.handle = SENTINEL32,
	};
	uint32_t handle;
	int fd2;

	/* param alone: the non-zero pad beyond it is not seen. */
	do_ioctl(fd, DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_GET_PARAM, __u32), &gp);
	igt_assert_eq_u64(gp.value, SENTINEL64);
	igt_assert_eq_u32(gp.pad, 0xffffffffu);

	/* param and pad: a zero pad passes, and value is not written. */
	gp.pad = 0;
	do_ioctl(fd, DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_GET_PARAM, __u64), &gp);
	igt_assert_eq_u64(gp.value, SENTINEL64);

	/* handle alone: the non-zero flags beyond it are not seen... */
	handle = hmmgpu_gem_create(fd, page_size(fd));
	mo.handle = handle;
	do_ioctl(fd, DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_GEM_MMAP_OFFSET, __u32), &mo);
	igt_assert_eq_u64(mo.offset, SENTINEL64);
	/* ... while at full size they are refused. */
	do_ioctl_err(fd, DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET, &mo, EINVAL);
	gem_close(fd, handle);

	/*
	 * size alone: flags read as zero and the object is made, but its
	 * handle cannot come back. A file of its own takes the object away.
	 */
	fd2 = drm_open_driver(DRIVER_HMMGPU);
	gc.size = page_size(fd2);
	do_ioctl(fd2, DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_GEM_CREATE, __u64), &gc);
	igt_assert_eq_u32(gc.handle, SENTINEL32);
	igt_assert_eq_u32(gc.flags, 0xffffffffu);
	drm_close_driver(fd2);
}

/* A longer struct works, and its tail comes back as it went in. */
static void test_long_struct(int fd)
{
	struct {
		struct drm_hmmgpu_gem_create create;
		uint64_t tail[2];
	} arg = {
		.create = { .size = page_size(fd) },
		.tail = { SENTINEL64, ~SENTINEL64 },
	};
	void *ptr;

	do_ioctl(fd, DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_GEM_CREATE, typeof(arg)), &arg);
	igt_assert_neq_u32(arg.create.handle, 0);
	igt_assert_eq_u64(arg.tail[0], SENTINEL64);
	igt_assert_eq_u64(arg.tail[1], ~SENTINEL64);

	ptr = hmmgpu_gem_mmap(fd, arg.create.handle, arg.create.size, PROT_READ);
	check_zero(ptr, arg.create.size);
	igt_assert_eq(munmap(ptr, arg.create.size), 0);
	gem_close(fd, arg.create.handle);
}

static void test_null_argument(int fd)
{
	do_ioctl_err(fd, DRM_IOCTL_HMMGPU_GET_PARAM, NULL, EFAULT);
	do_ioctl_err(fd, DRM_IOCTL_HMMGPU_GEM_CREATE, NULL, EFAULT);
	do_ioctl_err(fd, DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET, NULL, EFAULT);
}

static void test_close_fd_with_handles(void)
{
	uint32_t handles[16];
	const unsigned int count = ARRAY_SIZE(handles);
	uint64_t size, offset;
	void *ptr;
	int fd;

	fd = drm_open_driver(DRIVER_HMMGPU);
	size = 16 * page_size(fd);
	for (unsigned int i = 0; i < count; i++)
		handles[i] = hmmgpu_gem_create(fd, size);
	ptr = hmmgpu_gem_mmap(fd, handles[0], size, PROT_READ | PROT_WRITE);
	hmmgpu_fill_pattern(ptr, size, 7);

	/* No GEM_CLOSE: closing the file drops its handles. */
	drm_close_driver(fd);

	/* A mapping keeps its object, and its file, alive. */
	hmmgpu_check_pattern(ptr, size, 7);
	hmmgpu_fill_pattern(ptr, size, 8);
	hmmgpu_check_pattern(ptr, size, 8);
	igt_assert_eq(munmap(ptr, size), 0);

	/* A new file starts with no handles, and works. */
	fd = drm_open_driver(DRIVER_HMMGPU);
	for (unsigned int i = 0; i < count; i++)
		igt_assert_eq(__hmmgpu_gem_mmap_offset(fd, handles[i], 0, &offset), -ENOENT);
	gem_roundtrip(fd, size, 9);
	drm_close_driver(fd);
}

static void test_handle_per_fd(void)
{
	struct drm_gem_close close_arg = {};
	uint64_t size, offset;
	uint32_t handle;
	void *ptr;
	int a, b;

	a = drm_open_driver(DRIVER_HMMGPU);
	b = drm_open_driver(DRIVER_HMMGPU);
	size = 4 * page_size(a);

	handle = hmmgpu_gem_create(a, size);
	ptr = hmmgpu_gem_mmap(a, handle, size, PROT_READ | PROT_WRITE);
	hmmgpu_fill_pattern(ptr, size, 11);

	/* Handles are per file. */
	igt_assert_eq(__hmmgpu_gem_mmap_offset(b, handle, 0, &offset), -ENOENT);
	close_arg.handle = handle;
	do_ioctl_err(b, DRM_IOCTL_GEM_CLOSE, &close_arg, EINVAL);

	/* So is the right to map an offset. */
	offset = hmmgpu_gem_mmap_offset(a, handle);
	igt_assert(mmap(NULL, size, PROT_READ, MAP_SHARED, b, offset) == MAP_FAILED);
	igt_assert_eq(errno, EACCES);
	errno = 0;

	/* None of that touched the object. */
	hmmgpu_check_pattern(ptr, size, 11);
	igt_assert_eq(munmap(ptr, size), 0);
	gem_close(a, handle);

	drm_close_driver(b);
	drm_close_driver(a);
}

/*
 * A subtest that failed may have left a DRM fd or mapping of ours behind,
 * holding the module: release them, so that only the fd opened on purpose
 * does.
 */
static void release_drm_leftovers(void)
{
	struct { unsigned long start, end; } maps[64];
	unsigned int num_maps = 0, num_fds = 0;
	char line[512], link[64], target[256];
	struct dirent *de;
	FILE *f;
	DIR *dir;

	f = fopen("/proc/self/maps", "re");
	if (f) {
		while (num_maps < ARRAY_SIZE(maps) && fgets(line, sizeof(line), f)) {
			unsigned long start, end;
			int path = 0;

			if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &start, &end, &path) >= 2 &&
			    path && !strncmp(line + path, "/dev/dri/", 9)) {
				maps[num_maps].start = start;
				maps[num_maps++].end = end;
			}
		}
		fclose(f);
	}
	for (unsigned int i = 0; i < num_maps; i++)
		munmap((void *)maps[i].start, maps[i].end - maps[i].start);

	dir = opendir("/proc/self/fd");
	if (dir) {
		while ((de = readdir(dir))) {
			int fd = atoi(de->d_name);
			ssize_t len;

			if (de->d_name[0] == '.' || fd == dirfd(dir))
				continue;
			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			len = readlink(link, target, sizeof(target) - 1);
			if (len <= 0)
				continue;
			target[len] = '\0';
			if (!strncmp(target, "/dev/dri/", 9)) {
				close(fd);
				num_fds++;
			}
		}
		closedir(dir);
	}

	if (num_maps || num_fds)
		igt_info("Released %u DRM mapping(s) and %u fd(s) left by earlier subtests\n",
			 num_maps, num_fds);
	errno = 0;
}

static void test_module_reload(void)
{
	int fd, err, load_err;
	bool node_gone, module_gone;

	igt_require_f(igt_kmod_is_loaded("hmmgpu"),
		      "hmmgpu is not a loaded module (built in?)\n");

	/* No fd of ours may hold the module but the one meant to. */
	drm_close_driver(drm_fd);
	drm_fd = -1;
	release_drm_leftovers();

	fd = drm_open_driver(DRIVER_HMMGPU);
	err = igt_kmod_unload("hmmgpu");
	if (err == 0)
		/* Bring it back for the subtests that follow, then fail. */
		igt_kmod_load("hmmgpu", NULL);
	if (err == -EPERM) {
		drm_close_driver(fd);
		igt_skip("Not allowed to unload modules\n");
	}
	igt_assert_f(err == -EAGAIN || err == -EBUSY,
		     "unloading hmmgpu with an fd open gave %d (%s), expected it busy\n",
		     err, strerror(-err));
	errno = 0;

	/* Refused, and no harm done: the device still works. */
	igt_assert(igt_kmod_is_loaded("hmmgpu"));
	gem_roundtrip(fd, page_size(fd), 21);
	drm_close_driver(fd);

	err = igt_kmod_unload("hmmgpu");
	module_gone = !igt_kmod_is_loaded("hmmgpu");
	node_gone = !hmmgpu_node_present();
	/* Reload before asserting, so that a failure leaves the device. */
	load_err = igt_kmod_load("hmmgpu", NULL);

	igt_assert_eq(err, 0);
	igt_assert(module_gone);
	igt_assert_f(node_gone, "/dev/dri still has an hmmgpu node after unload\n");
	igt_assert_eq(load_err, 0);
	igt_assert_f(wait_for_hmmgpu_node(), "no hmmgpu node in /dev/dri after reload\n");

	drm_fd = drm_open_driver(DRIVER_HMMGPU);
	check_version(drm_fd);
	gem_roundtrip(drm_fd, SZ_2M, 22);
}

/*
 * The vm_modes module parameter restricts the VM modes the device offers: with
 * 6 (prefault and pinned), the device emulates a GPU that cannot fault.
 */
static void test_vm_modes_param(void)
{
	const uint32_t no_fault = DRM_HMMGPU_VM_MODE_PREFAULT | DRM_HMMGPU_VM_MODE_PINNED;
	uint32_t id = 0;
	int err, load_err, create_err;
	uint64_t modes = 0;
	int fd;

	igt_require_f(igt_kmod_is_loaded("hmmgpu"),
		      "hmmgpu is not a loaded module (built in?)\n");
	drm_close_driver(drm_fd);
	drm_fd = -1;
	release_drm_leftovers();

	err = igt_kmod_unload("hmmgpu");
	if (err == -EPERM)
		igt_skip("Not allowed to unload modules\n");
	igt_assert_eq(err, 0);
	load_err = igt_kmod_load("hmmgpu", "vm_modes=6");
	if (!load_err && wait_for_hmmgpu_node()) {
		fd = drm_open_driver(DRIVER_HMMGPU);
		err = __hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_VM_MODES, &modes);
		create_err = __hmmgpu_vm_create(fd, DRM_HMMGPU_VM_MODE_FAULT, &id);
		if (!err && modes)
			hmmgpu_vm_destroy(fd, hmmgpu_vm_create(fd, DRM_HMMGPU_VM_MODE_PINNED));
		drm_close_driver(fd);
	} else {
		err = create_err = -ENODEV;
	}
	/* Back as it was, before asserting, so that a failure leaves the device. */
	igt_kmod_unload("hmmgpu");
	igt_assert_eq(igt_kmod_load("hmmgpu", NULL), 0);
	igt_assert(wait_for_hmmgpu_node());
	drm_fd = drm_open_driver(DRIVER_HMMGPU);

	igt_assert_eq(load_err, 0);
	igt_assert_eq(err, 0);
	igt_assert_eq_u64(modes, no_fault);
	igt_assert_eq(create_err, -EINVAL);
	igt_assert_eq_u64(hmmgpu_get_param(drm_fd, DRM_HMMGPU_PARAM_VM_MODES),
			  no_fault | DRM_HMMGPU_VM_MODE_FAULT);
}

static void test_fork(void)
{
	const int num_children = 4;
	const uint64_t page = page_size(drm_fd);
	const uint64_t size = num_children * page;
	uint32_t handle = hmmgpu_gem_create(drm_fd, size);
	char *shared = hmmgpu_gem_mmap(drm_fd, handle, size, PROT_READ | PROT_WRITE);

	igt_fork(child, num_children) {
		/* Each child is a client of its own. */
		int fd = __drm_open_driver(DRIVER_HMMGPU);

		igt_assert_fd(fd);
		for (uint32_t round = 0; round < 8; round++)
			gem_roundtrip(fd, 16 * page, child << 8 | round);
		close(fd);

		/* And writes its page of the parent's shared mapping. */
		hmmgpu_fill_pattern(shared + child * page, page, 100 + child);
	}
	igt_waitchildren();

	for (int child = 0; child < num_children; child++)
		hmmgpu_check_pattern(shared + child * page, page, 100 + child);

	igt_assert_eq(munmap(shared, size), 0);
	gem_close(drm_fd, handle);
}

igt_main
{
	igt_fixture
		drm_fd = drm_open_driver(DRIVER_HMMGPU);

	igt_describe("Open hmmgpu by driver name through its card and its render node, "
		     "and use it through both.");
	igt_subtest("basic-open")
		test_open();

	igt_describe("drmGetVersion() names hmmgpu, and its version is the one the "
		     "DRIVER_VERSION parameter reports.");
	igt_subtest("basic-version")
		test_version();

	igt_describe("Each parameter of GET_PARAM holds what the uAPI promises; unknown "
		     "parameters and a non-zero pad are refused.");
	igt_subtest_with_dynamic("get-param") {
		igt_dynamic("driver-version")
			check_version(drm_fd);

		igt_dynamic("features")
			igt_assert(hmmgpu_get_param(drm_fd, DRM_HMMGPU_PARAM_FEATURES) &
				   DRM_HMMGPU_FEATURE_GEM_SHMEM);

		igt_dynamic("gem-max-size") {
			uint64_t max = max_size(drm_fd);

			/* Objects past 4 GiB, as the uAPI promises. */
			igt_assert_lte_u64((4ull << 30) + page_size(drm_fd), max);
			igt_assert_eq_u64(max % page_size(drm_fd), 0);
		}

		igt_dynamic("page-size")
			igt_assert_eq_u64(page_size(drm_fd), 4096);

		igt_dynamic("vm-modes") {
			uint64_t modes = hmmgpu_get_param(drm_fd, DRM_HMMGPU_PARAM_VM_MODES);

			/* At least one mode, and only modes the uAPI names. */
			igt_assert_neq_u64(modes, 0);
			igt_assert_eq_u64(modes & ~(uint64_t)(DRM_HMMGPU_VM_MODE_FAULT |
							      DRM_HMMGPU_VM_MODE_PREFAULT |
							      DRM_HMMGPU_VM_MODE_PINNED), 0);
			igt_assert(hmmgpu_get_param(drm_fd, DRM_HMMGPU_PARAM_FEATURES) &
				   DRM_HMMGPU_FEATURE_VM);
		}

		igt_dynamic("unknown-param")
			test_get_param_unknown(drm_fd);

		igt_dynamic("nonzero-pad")
			test_get_param_pad(drm_fd);
	}

	igt_describe("GEM objects of the smallest, a huge-page and the largest size "
		     "can be made, each with its own handle.");
	igt_subtest("gem-create")
		test_gem_create(drm_fd);

	igt_describe("32 objects of the largest size can be made on one file, and another "
		     "file still makes and maps one.");
	igt_subtest("gem-create-max-many")
		test_gem_create_max_many(drm_fd);

	igt_describe("With the device's mmap offsets all taken, GEM_MMAP_OFFSET fails with "
		     "-ENOSPC but other files still make objects, and map them once the "
		     "offsets are given back.");
	igt_subtest("gem-mmap-offset-space-full")
		test_mmap_offset_space_full(drm_fd);

	igt_describe("GEM_CREATE refuses sizes that are zero, unaligned or too large, "
		     "and unknown flags.");
	igt_subtest("gem-create-invalid")
		test_gem_create_invalid(drm_fd);

	igt_describe("A closed handle, and one never made, cannot be closed.");
	igt_subtest("gem-close-invalid")
		test_gem_close(drm_fd);

	igt_describe("What is written through a CPU mapping of an object reads back "
		     "through later mappings of it.");
	igt_subtest("gem-mmap")
		test_gem_mmap(drm_fd);

	igt_describe("New objects read as zeros, even when they reuse freed memory.");
	igt_subtest("gem-mmap-zeroed")
		test_gem_mmap_zeroed(drm_fd);

	igt_describe("GEM_MMAP_OFFSET refuses unknown handles and unknown flags.");
	igt_subtest("gem-mmap-offset-invalid")
		test_gem_mmap_offset_invalid(drm_fd);

	igt_describe("A mapping may not reach past an object, nor start inside it.");
	igt_subtest("gem-mmap-beyond-size")
		test_gem_mmap_beyond(drm_fd);

	igt_describe("Malformed ioctls are refused or handled as the DRM core defines: "
		     "unknown numbers, short and long argument structs, no argument.");
	igt_subtest_with_dynamic("bad-ioctl") {
		igt_dynamic("past-last-ioctl")
			test_bad_ioctl_number(drm_fd);

		igt_dynamic("short-struct")
			test_short_struct(drm_fd);

		igt_dynamic("long-struct")
			test_long_struct(drm_fd);

		igt_dynamic("null-argument")
			test_null_argument(drm_fd);
	}

	igt_describe("Closing a file with open handles frees them, mappings keep their "
		     "object, and a new file works.");
	igt_subtest("gem-close-on-fd-close")
		test_close_fd_with_handles();

	igt_describe("A handle of one file means nothing in another, nor does its mmap "
		     "offset.");
	igt_subtest("gem-handle-per-fd")
		test_handle_per_fd();

	igt_describe("The module cannot go while in use; unused, it unloads, its device "
		     "goes, and once reloaded the device works again.");
	igt_subtest("module-reload")
		test_module_reload();

	igt_describe("The vm_modes module parameter restricts the VM modes offered: "
		     "loaded with 6, the device offers no fault mode and refuses it.");
	igt_subtest("vm-modes-param")
		test_vm_modes_param();

	/* module-reload may have failed before it could reopen the device. */
	igt_fixture {
		if (drm_fd < 0)
			drm_fd = drm_open_driver(DRIVER_HMMGPU);
	}

	igt_describe("Processes create, map and check objects concurrently, and share "
		     "a mapping inherited through fork.");
	igt_subtest("gem-mmap-fork")
		test_fork();

	igt_fixture {
		if (drm_fd >= 0)
			drm_close_driver(drm_fd);
	}
}
