// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Userptr objects of hmmgpu: creation and its argument checks, probing of
 * the range, and what a userptr object is not (mappable, a BO).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xf86drm.h>

#include "igt.h"
#include "igt_hmmgpu.h"

IGT_TEST_DESCRIPTION("Userptr objects of hmmgpu: creation, argument checks and probing.");

#define PAGES 8

static int fd = -1;
static long page;

/* An anonymous private mapping of @pages pages, touched so it is populated. */
static char *map_pages(int pages)
{
	char *ptr = mmap(NULL, pages * page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	igt_assert(ptr != MAP_FAILED);
	memset(ptr, 0x5a, pages * page);
	return ptr;
}

static int userptr(uint64_t addr, uint64_t size, uint32_t flags)
{
	uint32_t handle = 0;
	int err = __hmmgpu_userptr_create(fd, addr, size, flags, &handle);

	if (!err) {
		igt_assert_neq(handle, 0);
		gem_close(fd, handle);
	}
	return err;
}

static void test_create(uint32_t flags)
{
	void *buf = NULL;
	uint32_t a, b;

	igt_assert_eq(posix_memalign(&buf, page, PAGES * page), 0);
	memset(buf, 1, PAGES * page);

	a = hmmgpu_userptr_create(fd, buf, PAGES * page, flags);
	/* Two objects may name the same memory. */
	b = hmmgpu_userptr_create(fd, buf, page, flags);
	igt_assert_neq(a, b);
	gem_close(fd, a);
	gem_close(fd, b);
	free(buf);
}

static void test_invalid(void)
{
	char *ptr = map_pages(PAGES);
	uint64_t addr = (uintptr_t)ptr;
	uint64_t max = hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_GEM_MAX_SIZE);

	igt_assert_eq(userptr(addr, 0, 0), -EINVAL);
	igt_assert_eq(userptr(addr + 1, page, 0), -EINVAL);
	igt_assert_eq(userptr(addr, page + 1, 0), -EINVAL);
	igt_assert_eq(userptr(addr, max + page, 0), -EINVAL);
	igt_assert_eq(userptr(~0ull & ~(uint64_t)(page - 1), 2 * page, 0), -EINVAL);
	/*
	 * The kernel half of the address space, and a range that runs into it
	 * (the user half ends below 2^47, or 2^56 with 5-level paging).
	 */
	igt_assert_eq(userptr(0xffff800000000000ull, page, 0), -EINVAL);
	igt_assert_eq(userptr((1ull << 63) - page, 2 * page, 0), -EINVAL);
	igt_assert_eq(userptr(addr, page, 1u << 2), -EINVAL);
	igt_assert_eq(userptr(addr, page, 1u << 31), -EINVAL);

	munmap(ptr, PAGES * page);
}

/* Probing fails exactly when a page of the range is unmapped. */
static void test_probe_hole(int hole)
{
	char *ptr = map_pages(PAGES);
	uint64_t addr = (uintptr_t)ptr;

	igt_assert_eq(userptr(addr, PAGES * page, DRM_HMMGPU_USERPTR_PROBE), 0);
	igt_assert_eq(munmap(ptr + hole * page, page), 0);
	igt_assert_eq(userptr(addr, PAGES * page, DRM_HMMGPU_USERPTR_PROBE), -EFAULT);
	/* Without probing, creation is lazy. */
	igt_assert_eq(userptr(addr, PAGES * page, 0), 0);
	/* The pages around the hole still probe fine. */
	if (hole > 0)
		igt_assert_eq(userptr(addr, hole * page, DRM_HMMGPU_USERPTR_PROBE), 0);

	munmap(ptr, PAGES * page);
}

static void test_probe_untouched(void)
{
	/* Mapped but never touched: nothing to fault in, still a valid range. */
	char *ptr = mmap(NULL, PAGES * page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	igt_assert(ptr != MAP_FAILED);
	igt_assert_eq(userptr((uintptr_t)ptr, PAGES * page, DRM_HMMGPU_USERPTR_PROBE), 0);
	igt_assert_eq(userptr(0, PAGES * page, DRM_HMMGPU_USERPTR_PROBE), -EFAULT);
	igt_assert_eq(userptr(0, PAGES * page, 0), 0);
	munmap(ptr, PAGES * page);
}

static void test_probe_prot_none(void)
{
	char *ptr = map_pages(PAGES);

	igt_assert_eq(mprotect(ptr + page, page, PROT_NONE), 0);
	igt_assert_eq(userptr((uintptr_t)ptr, PAGES * page, DRM_HMMGPU_USERPTR_PROBE), -EFAULT);
	munmap(ptr, PAGES * page);
}

static void test_probe_pfnmap(void)
{
	/* A CPU mapping of one of our own BOs is VM_PFNMAP: no pages to mirror. */
	uint32_t bo = hmmgpu_gem_create(fd, PAGES * page);
	void *ptr = hmmgpu_gem_mmap(fd, bo, PAGES * page, PROT_READ | PROT_WRITE);

	igt_assert_eq(userptr((uintptr_t)ptr, PAGES * page, DRM_HMMGPU_USERPTR_PROBE), -EFAULT);
	munmap(ptr, PAGES * page);
	gem_close(fd, bo);
}

static void test_no_mmap_offset(void)
{
	char *ptr = map_pages(PAGES);
	uint32_t handle = hmmgpu_userptr_create(fd, ptr, PAGES * page, 0);
	uint64_t offset;

	igt_assert_eq(__hmmgpu_gem_mmap_offset(fd, handle, 0, &offset), -EINVAL);
	gem_close(fd, handle);
	munmap(ptr, PAGES * page);
}

static void test_no_dmabuf_export(void)
{
	char *ptr = map_pages(PAGES);
	uint32_t handle = hmmgpu_userptr_create(fd, ptr, PAGES * page, 0);
	int dmabuf = -1;

	igt_assert_eq(drmPrimeHandleToFD(fd, handle, DRM_CLOEXEC, &dmabuf), -1);
	igt_assert_eq(errno, ENODEV);
	errno = 0;
	gem_close(fd, handle);
	munmap(ptr, PAGES * page);
}

static void test_per_fd(void)
{
	char *ptr = map_pages(PAGES);
	uint32_t handle = hmmgpu_userptr_create(fd, ptr, PAGES * page, 0);
	int other = drm_open_driver_render(DRIVER_HMMGPU);
	uint64_t offset;

	igt_assert_eq(__hmmgpu_gem_mmap_offset(other, handle, 0, &offset), -ENOENT);
	drm_close_driver(other);
	gem_close(fd, handle);
	munmap(ptr, PAGES * page);
}

igt_main
{
	igt_fixture {
		page = sysconf(_SC_PAGESIZE);
		fd = drm_open_driver_render(DRIVER_HMMGPU);
		igt_require(hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_FEATURES) &
			    DRM_HMMGPU_FEATURE_USERPTR);
	}

	igt_describe("Userptr objects name malloc'd memory, read-write or read-only, probed or not.");
	igt_subtest_with_dynamic("create") {
		igt_dynamic("read-write")
			test_create(0);
		igt_dynamic("read-only")
			test_create(DRM_HMMGPU_USERPTR_READ_ONLY);
		igt_dynamic("probe")
			test_create(DRM_HMMGPU_USERPTR_PROBE);
	}

	igt_describe("Empty, unaligned, wrapping, too large or kernel ranges, and unknown flags, "
		     "are refused with -EINVAL.");
	igt_subtest("invalid-args")
		test_invalid();

	igt_describe("With PROBE, creation fails with -EFAULT exactly when a page of the range "
		     "is unmapped: at its start, middle or end.");
	igt_subtest_with_dynamic("probe-hole") {
		igt_dynamic("start")
			test_probe_hole(0);
		igt_dynamic("middle")
			test_probe_hole(PAGES / 2);
		igt_dynamic("end")
			test_probe_hole(PAGES - 1);
	}

	igt_describe("Memory mapped but never touched probes fine; address 0 does not.");
	igt_subtest("probe-untouched")
		test_probe_untouched();

	igt_describe("A PROT_NONE page fails the probe.");
	igt_subtest("probe-prot-none")
		test_probe_prot_none();

	igt_describe("A VM_PFNMAP range (a CPU mapping of a GEM object) fails the probe.");
	igt_subtest("probe-pfnmap")
		test_probe_pfnmap();

	igt_describe("A userptr object has no mmap offset.");
	igt_subtest("no-mmap-offset")
		test_no_mmap_offset();

	igt_describe("A userptr object cannot be exported as a dma-buf.");
	igt_subtest("no-dmabuf-export")
		test_no_dmabuf_export();

	igt_describe("A userptr handle means nothing on another fd.");
	igt_subtest("per-fd")
		test_per_fd();

	igt_fixture
		drm_close_driver(fd);
}
