// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Userptr objects of hmmgpu: creation and its argument checks, probing of
 * the range, and what a userptr object is not (mappable, a BO).
 *
 * Then the GPU's view of them: userptrs and GEM objects bound into GPU VMs
 * (DRM_IOCTL_HMMGPU_VM_*), and jobs (DRM_IOCTL_HMMGPU_EXEC, _WAIT) that read
 * and write them, in each VM mode the device offers (one dynamic subtest per
 * mode: "fault", "prefault", "pinned"). The CPU checks what the GPU read and
 * wrote of malloc'd, mmap'd and THP-backed memory; munmap, MAP_FIXED remaps,
 * MADV_DONTNEED, fork and copy-on-write change the memory under the GPU, and
 * the next job must see the change (or fault with -EFAULT where the memory is
 * gone); read-only userptrs, bindings and VMAs refuse GPU writes; partial
 * unbinds split mappings; huge pages give 2 MiB GPU entries; the ioctls
 * refuse bad arguments; and pinned mode returns every page pin it takes.
 *
 * Beyond anonymous memory: memfd and tmpfs files mapped shared (the GPU and
 * read()/write() agree) and private (GPU writes stay in the process's
 * copies), and hugetlb pages. More ways the CPU changes the memory: mremap
 * (moved, and MREMAP_DONTUNMAP), MADV_DONTNEED of a part, munmap of one page
 * (prefault and pinned modes mirror a mapping whole or not at all), mprotect
 * and MADV_DONTFORK; and pinned mode's charge to RLIMIT_MEMLOCK. Userptrs and
 * GEM objects of 5 GiB, read and written past 4 GiB, and arguments past 4 GiB;
 * a 5 GiB object cannot be made resident whole where memory is short.
 *
 * A job that touches an address no GPU mapping allows ends with -EFAULT,
 * which its fence reports (through a sync_file's status), or in fault mode
 * its user fence's error word; the exec itself succeeds. Jobs run
 * asynchronously: every check from the CPU comes after waiting for the job.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/magic.h>

#include <xf86drm.h>

#include "igt.h"
#include "igt_hmmgpu.h"
#include "sw_sync.h"

IGT_TEST_DESCRIPTION("Userptr objects of hmmgpu: creation, argument checks and probing; "
		     "GPU VMs, binding and jobs reading and writing malloc'd, mmap'd and "
		     "THP memory in every VM mode (fault, prefault, pinned), coherency "
		     "with munmap, remap, fork and invalidation under a running job, "
		     "read-only memory, split unbinds, 2 MiB entries, bad arguments and "
		     "the balance of page pins; memfd, tmpfs file and hugetlb memory, "
		     "mremap, MADV_DONTNEED, partial munmap, mprotect, MADV_DONTFORK and "
		     "RLIMIT_MEMLOCK.");

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

/*
 * GPU VMs, bind and exec.
 *
 * Each test runs on a struct ctx: its own DRM file (so that closing it tears
 * down whatever a failed test left behind), one VM in the mode under test
 * and a scratch GEM object mapped at BO_VA and in the CPU, whose last page
 * takes the results of checksums. Userptrs are mapped from USERPTR_VA on,
 * VA_STRIDE apart (2 MiB-aligned addresses).
 */
#define USERPTR_VA	0x100000000ull
#define BO_VA		0x200000000ull
#define VA_STRIDE	0x10000000ull
#define VA_LIMIT	(1ull << 48)
#define SZ_1M		(1ull << 20)
#define SZ_2M		(2ull << 20)
#define SZ_4M		(4ull << 20)

static uint32_t vm_modes;

struct ctx {
	int fd;
	uint32_t mode;
	uint32_t vm;
	/* The scratch object: @bo_size bytes of data, then a page of results. */
	uint32_t bo;
	uint64_t bo_size;
	char *bo_ptr;
	uint64_t res_va;
	volatile uint64_t *res;
	/* Jobs run through job(), and those that failed. */
	uint64_t jobs, jobs_failed;
};

/*
 * The files of tests still running, with the CPU mapping of their scratch
 * object. A test that fails leaves them behind; the next ctx_init() unmaps
 * and closes them, which destroys their VMs and objects.
 */
static struct {
	int fd;
	void *map;
	uint64_t map_size;
} test_files[8];
static unsigned int num_test_files;

static void close_leftovers(void)
{
	while (num_test_files) {
		num_test_files--;
		if (test_files[num_test_files].map)
			munmap(test_files[num_test_files].map, test_files[num_test_files].map_size);
		close(test_files[num_test_files].fd);
	}
}

static void forget_fd(int test_fd)
{
	for (unsigned int i = 0; i < num_test_files; i++) {
		if (test_files[i].fd == test_fd) {
			test_files[i] = test_files[--num_test_files];
			return;
		}
	}
}

static void require_vm(void)
{
	igt_require_f(vm_modes, "the device has no GPU VMs\n");
}

/* At most one ctx lives at a time: a new one reaps the leftovers of failed tests. */
static void ctx_init(struct ctx *c, uint32_t mode, uint64_t bo_size)
{
	close_leftovers();

	memset(c, 0, sizeof(*c));
	c->fd = drm_open_driver_render(DRIVER_HMMGPU);
	test_files[num_test_files].fd = c->fd;
	test_files[num_test_files].map = NULL;
	num_test_files++;
	c->mode = mode;
	c->vm = hmmgpu_vm_create(c->fd, mode);
	igt_debug("VM %u in %s mode\n", c->vm, hmmgpu_vm_mode_name(mode));

	if (!bo_size)
		return;

	c->bo_size = bo_size;
	c->bo = hmmgpu_gem_create(c->fd, bo_size + page);
	c->bo_ptr = hmmgpu_gem_mmap(c->fd, c->bo, bo_size + page, PROT_READ | PROT_WRITE);
	test_files[num_test_files - 1].map = c->bo_ptr;
	test_files[num_test_files - 1].map_size = bo_size + page;
	hmmgpu_vm_map(c->fd, c->vm, c->bo, 0, BO_VA, bo_size + page, 0);
	c->res_va = BO_VA + bo_size;
	c->res = (volatile uint64_t *)(c->bo_ptr + bo_size);
}

static void ctx_fini(struct ctx *c)
{
	hmmgpu_vm_destroy(c->fd, c->vm);
	if (c->bo) {
		igt_assert_eq(munmap(c->bo_ptr, c->bo_size + page), 0);
		gem_close(c->fd, c->bo);
	}
	forget_fd(c->fd);
	drm_close_driver(c->fd);
	c->fd = -1;
}

/* Runs @n commands as one job and waits; returns the job's error. */
static int job(struct ctx *c, const struct drm_hmmgpu_cmd *cmds, unsigned int n)
{
	int err = hmmgpu_exec_job(c->fd, c->vm, cmds, n, 0);

	c->jobs++;
	if (err)
		c->jobs_failed++;
	return err;
}

static int gpu_copy(struct ctx *c, uint64_t dst, uint64_t src, uint64_t size)
{
	struct drm_hmmgpu_cmd cmd;

	hmmgpu_cmd_copy(&cmd, dst, src, size);
	return job(c, &cmd, 1);
}

static int gpu_fill(struct ctx *c, uint64_t dst, uint64_t size, uint32_t value)
{
	struct drm_hmmgpu_cmd cmd;

	hmmgpu_cmd_fill(&cmd, dst, size, value);
	return job(c, &cmd, 1);
}

static int gpu_write64(struct ctx *c, uint64_t dst, uint64_t value)
{
	struct drm_hmmgpu_cmd cmd;

	hmmgpu_cmd_write64(&cmd, dst, value);
	return job(c, &cmd, 1);
}

static int gpu_atomic_add(struct ctx *c, uint64_t dst, uint64_t value)
{
	struct drm_hmmgpu_cmd cmd;

	hmmgpu_cmd_atomic_add(&cmd, dst, value);
	return job(c, &cmd, 1);
}

/* The GPU's checksum of [@src, @src + @size), through the result page. */
static int gpu_checksum(struct ctx *c, uint64_t src, uint64_t size, uint64_t *sum)
{
	struct drm_hmmgpu_cmd cmd;
	int err;

	igt_assert(c->res);
	c->res[0] = 0xdeadbeefdeadbeefull;
	hmmgpu_cmd_checksum(&cmd, c->res_va, src, size);
	err = job(c, &cmd, 1);
	if (!err)
		*sum = c->res[0];
	return err;
}

static void vm_stats(struct ctx *c, struct drm_hmmgpu_vm_stats *s)
{
	hmmgpu_vm_stats(c->fd, c->vm, s);
	hmmgpu_vm_stats_debug(s);
}

/* What HMMGPU_CMD_CHECKSUM computes. */
static uint64_t cpu_checksum(const void *ptr, uint64_t size)
{
	const uint32_t *p = ptr;
	uint64_t sum = 0;

	for (uint64_t i = 0; i < size / sizeof(*p); i++)
		sum += p[i];
	return sum;
}

static void check_same(const void *a, const void *b, uint64_t size, const char *what)
{
	const uint32_t *p = a, *q = b;

	for (uint64_t i = 0; i < size / sizeof(*p); i++)
		igt_assert_f(p[i] == q[i], "%s: dword %" PRIu64 " (byte %#" PRIx64
			     ") reads %#x, expected %#x\n", what, i, i * 4, p[i], q[i]);
}

static void check_value(const void *ptr, uint64_t size, uint32_t value)
{
	const uint32_t *p = ptr;

	for (uint64_t i = 0; i < size / sizeof(*p); i++)
		igt_assert_f(p[i] == value, "dword %" PRIu64 " reads %#x, expected %#x\n",
			     i, p[i], value);
}

static char *map_anon(uint64_t size, int flags)
{
	char *ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);

	igt_assert_f(ptr != MAP_FAILED, "mmap of %" PRIu64 " bytes failed\n", size);
	return ptr;
}

static void *snapshot(const void *ptr, uint64_t size)
{
	void *copy = malloc(size);

	igt_assert(copy);
	memcpy(copy, ptr, size);
	return copy;
}

static void write_byte(int pipe_fd)
{
	igt_assert_eq(write(pipe_fd, "x", 1), 1);
}

static bool read_byte(int pipe_fd)
{
	char b;

	return read(pipe_fd, &b, 1) == 1;
}

/*
 * GPU reads and writes of the @size bytes at @ptr (page-aligned, at least 4
 * pages, at most the scratch object), through a userptr mapped at
 * USERPTR_VA, each checked from the CPU.
 */
static void check_rw(struct ctx *c, char *ptr, uint64_t size)
{
	struct drm_hmmgpu_vm_stats before, after;
	struct drm_hmmgpu_cmd cmds[64], *cmd = cmds;
	const uint64_t stride = size / 8;
	uint64_t jobs = c->jobs, sum = 0;
	uint64_t *q = (uint64_t *)ptr;
	uint32_t uptr;

	igt_assert(size >= 4 * (uint64_t)page && size <= c->bo_size);
	vm_stats(c, &before);

	uptr = hmmgpu_userptr_create(c->fd, ptr, size, 0);
	hmmgpu_vm_map(c->fd, c->vm, uptr, 0, USERPTR_VA, size, 0);

	/* CPU to GPU: a copy into the object, and a checksum. */
	hmmgpu_fill_pattern(ptr, size, 1);
	memset(c->bo_ptr, 0, size);
	igt_assert_eq(gpu_copy(c, BO_VA, USERPTR_VA, size), 0);
	hmmgpu_check_pattern(c->bo_ptr, size, 1);
	igt_assert_eq(gpu_checksum(c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));

	/* GPU to CPU: a copy from the object. */
	hmmgpu_fill_pattern(c->bo_ptr, size, 2);
	igt_assert_eq(gpu_copy(c, USERPTR_VA, BO_VA, size), 0);
	hmmgpu_check_pattern(ptr, size, 2);

	/*
	 * One job of 64-bit writes, atomic adds and fills at eight points spread
	 * over the range, each 64 bytes: [off, off + 8) written, [off + 8,
	 * off + 16) added to three times, [off + 16, off + 64) filled.
	 */
	for (uint64_t i = 0; i < 8; i++) {
		uint64_t off = i * stride + ((i * 520) % 1024 & ~7ull);

		q[off / 8 + 1] = 1000 + i;
		cmd = hmmgpu_cmd_write64(cmd, USERPTR_VA + off, 0xfeed000000000000ull | i);
		for (int n = 0; n < 3; n++)
			cmd = hmmgpu_cmd_atomic_add(cmd, USERPTR_VA + off + 8, 5);
		cmd = hmmgpu_cmd_fill(cmd, USERPTR_VA + off + 16, 48, 0xa5a50000u | (uint32_t)i);
	}
	igt_assert_eq(job(c, cmds, cmd - cmds), 0);
	for (uint64_t i = 0; i < 8; i++) {
		uint64_t off = i * stride + ((i * 520) % 1024 & ~7ull);
		uint32_t *d = (uint32_t *)(ptr + off);

		igt_assert_eq_u64(q[off / 8], 0xfeed000000000000ull | i);
		igt_assert_eq_u64(q[off / 8 + 1], 1000 + i + 15);
		check_value(ptr + off + 16, 48, 0xa5a50000u | (uint32_t)i);
		/* The words just outside are the copy's. */
		igt_assert_eq_u32(d[16], hmmgpu_pattern(2, off / 4 + 16));
		if (off)
			igt_assert_eq_u32(d[-1], hmmgpu_pattern(2, off / 4 - 1));
	}

	/* CPU writes to pages the GPU has mirrored: the next job sees them. */
	hmmgpu_fill_pattern(ptr, size, 3);
	igt_assert_eq(gpu_checksum(c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));
	memset(c->bo_ptr, 0, size);
	igt_assert_eq(gpu_copy(c, BO_VA, USERPTR_VA, size), 0);
	hmmgpu_check_pattern(c->bo_ptr, size, 3);

	/* A second GPU mapping of the last page, at an offset into the object. */
	hmmgpu_vm_map(c->fd, c->vm, uptr, 0, USERPTR_VA + VA_STRIDE, page, size - page);
	igt_assert_eq(gpu_write64(c, USERPTR_VA + VA_STRIDE + 8, 0x0123456789abcdefull), 0);
	igt_assert_eq_u64(q[(size - page) / 8 + 1], 0x0123456789abcdefull);
	igt_assert_eq_u64(q[(size - page) / 8], (uint64_t)hmmgpu_pattern(3, (size - page) / 4 + 1) << 32 |
			  hmmgpu_pattern(3, (size - page) / 4));
	igt_assert_eq(gpu_checksum(c, USERPTR_VA + size - page, page, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr + size - page, page));

	hmmgpu_vm_unmap(c->fd, c->vm, USERPTR_VA + VA_STRIDE, page);
	hmmgpu_vm_unmap(c->fd, c->vm, USERPTR_VA, size);
	gem_close(c->fd, uptr);

	/* Every job succeeded; only fault mode takes GPU page faults. */
	vm_stats(c, &after);
	igt_assert_eq_u64(after.jobs_done - before.jobs_done, c->jobs - jobs);
	igt_assert_eq_u64(after.jobs_failed, before.jobs_failed);
	if (c->mode == DRM_HMMGPU_VM_MODE_FAULT)
		igt_assert_lt_u64(before.faults, after.faults);
	else
		igt_assert_eq_u64(after.faults, 0);
}

/*
 * Memory never touched by the CPU: the GPU reads zeros, and its writes land
 * in pages of the process (not in the shared zero page).
 */
static void check_untouched(struct ctx *c, char *ptr, uint64_t size)
{
	uint64_t *q = (uint64_t *)ptr;
	uint64_t sum = 0, expected = 0;
	uint32_t uptr;

	uptr = hmmgpu_userptr_create(c->fd, ptr, size, 0);
	hmmgpu_vm_map(c->fd, c->vm, uptr, 0, USERPTR_VA, size, 0);

	igt_assert_eq(gpu_checksum(c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, 0);

	for (uint64_t i = 0; i < size / page; i += 3) {
		uint64_t value = 0x1000000100000001ull * (i + 1);

		igt_assert_eq(gpu_write64(c, USERPTR_VA + i * page + 8 * i, value), 0);
		expected += (uint32_t)value + (value >> 32);
	}
	for (uint64_t i = 0; i < size / page; i++) {
		uint64_t w = i * page / 8 + i;

		igt_assert_eq_u64(q[w], i % 3 ? 0 : 0x1000000100000001ull * (i + 1));
	}
	igt_assert_eq_u64(cpu_checksum(ptr, size), expected);
	igt_assert_eq(gpu_checksum(c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, expected);

	hmmgpu_vm_unmap(c->fd, c->vm, USERPTR_VA, size);
	gem_close(c->fd, uptr);
}

static void test_malloc_rw(uint32_t mode)
{
	/* From the heap (below malloc's mmap threshold), and mmapped by malloc. */
	const uint64_t sizes[] = { 4 * page, SZ_1M };
	struct ctx c;

	ctx_init(&c, mode, SZ_1M);
	for (unsigned int i = 0; i < ARRAY_SIZE(sizes); i++) {
		char *buf = malloc(sizes[i] + page - 1);

		igt_assert(buf);
		check_rw(&c, (char *)ALIGN((uintptr_t)buf, (uintptr_t)page), sizes[i]);
		free(buf);
	}
	ctx_fini(&c);
}

static void test_mmap_rw(uint32_t mode)
{
	const int flags[] = { MAP_PRIVATE, MAP_SHARED };
	struct ctx c;

	ctx_init(&c, mode, SZ_1M);
	for (unsigned int i = 0; i < ARRAY_SIZE(flags); i++) {
		char *ptr = map_anon(SZ_1M, flags[i]);

		igt_debug("%s\n", flags[i] == MAP_SHARED ? "shared" : "private");
		check_untouched(&c, ptr, SZ_1M);
		check_rw(&c, ptr, SZ_1M);
		igt_assert_eq(munmap(ptr, SZ_1M), 0);
	}
	ctx_fini(&c);
}

static void test_thp_rw(uint32_t mode)
{
	uint64_t map_size;
	struct ctx c;
	void *map;
	char *ptr;

	igt_require_f(hmmgpu_thp_enabled(), "transparent huge pages are disabled\n");

	ptr = hmmgpu_thp_alloc(SZ_4M, 1, &map, &map_size);
	igt_info("AnonHugePages of the buffer: %" PRIu64 " kB\n", hmmgpu_anon_huge_kb(ptr));

	ctx_init(&c, mode, SZ_4M);
	check_rw(&c, ptr, SZ_4M);

	/* Writes at offsets inside a huge page land exactly there. */
	{
		const uint64_t offs[] = { 8, 0x1238, SZ_1M + 0x4560, SZ_2M - 8, SZ_2M + 0x1ff8,
					  SZ_4M - 0x1000 + 0x7f8 };
		uint64_t *q = (uint64_t *)ptr;
		uint32_t uptr;

		hmmgpu_fill_pattern(ptr, SZ_4M, 4);
		uptr = hmmgpu_userptr_create(c.fd, ptr, SZ_4M, 0);
		hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, SZ_4M, 0);
		for (unsigned int i = 0; i < ARRAY_SIZE(offs); i++)
			igt_assert_eq(gpu_write64(&c, USERPTR_VA + offs[i], ~offs[i]), 0);
		for (unsigned int i = 0; i < ARRAY_SIZE(offs); i++) {
			igt_assert_eq_u64(q[offs[i] / 8], ~offs[i]);
			q[offs[i] / 8] = (uint64_t)hmmgpu_pattern(4, offs[i] / 4 + 1) << 32 |
					 hmmgpu_pattern(4, offs[i] / 4);
		}
		hmmgpu_check_pattern(ptr, SZ_4M, 4);
		hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, SZ_4M);
		gem_close(c.fd, uptr);
	}

	ctx_fini(&c);
	igt_assert_eq(munmap(map, map_size), 0);
}

/*
 * After munmap, jobs that touch the memory fault, in every mode; jobs that do
 * not, run. Memory unmapped in part: the unmapped part faults.
 */
/*
 * One page bound at 8192 GPU addresses (HMMGPU_MUNMAP_MANY sets another
 * number), then unmapped by the CPU: a job that touches it faults (-EFAULT),
 * its submission finding every mirror not mapped and leaving it cleared
 * (checked against those found so far at a cost that does not grow with their
 * number, and yielding the CPU now and then), the VM still runs jobs on its
 * other mappings, and it goes with all its mappings. In the modes that mirror
 * at submission (fault mode mirrors what a job touches). With 131072, a
 * quadratic check took minutes in one submission, soft lockups in the kernel
 * log; each binding costs about 2 ms of the test under TCG with make check's
 * debugging options, so 8192 it is there.
 */
static void test_munmap_many(uint32_t mode)
{
	const char *env = getenv("HMMGPU_MUNMAP_MANY");
	const uint32_t n = env ? ALIGN(strtoul(env, NULL, 0), HMMGPU_VM_BIND_MAX_OPS) : 1u << 13;
	struct drm_hmmgpu_vm_bind_op ops[HMMGPU_VM_BIND_MAX_OPS];
	uint32_t uptr, failed;
	struct ctx c;
	char *ptr;

	igt_require_f(n && n <= (BO_VA - USERPTR_VA) / page, "HMMGPU_MUNMAP_MANY=%s\n", env);
	ctx_init(&c, mode, page);
	ptr = map_anon(page, MAP_PRIVATE);
	memset(ptr, 1, page);
	uptr = hmmgpu_userptr_create(c.fd, ptr, page, 0);
	for (uint32_t i = 0; i < n; i += HMMGPU_VM_BIND_MAX_OPS) {
		for (uint32_t k = 0; k < HMMGPU_VM_BIND_MAX_OPS; k++)
			ops[k] = hmmgpu_bind_op_map(uptr, USERPTR_VA + (uint64_t)(i + k) * page,
						    page);
		igt_assert_eq(__hmmgpu_vm_bind_ops(c.fd, c.vm, ops, HMMGPU_VM_BIND_MAX_OPS,
						   NULL, 0, &failed), 0);
	}
	igt_assert_eq(munmap(ptr, page), 0);
	igt_assert_eq(gpu_write64(&c, USERPTR_VA + (uint64_t)(n - 1) * page, 1), -EFAULT);
	igt_assert_eq(gpu_write64(&c, BO_VA + 16, 0x600d), 0);
	igt_assert_eq_u64(*(uint64_t *)(c.bo_ptr + 16), 0x600d);
	gem_close(c.fd, uptr);
	ctx_fini(&c);
}

/*
 * A range is mirrored in steps of at most 1 GiB of CPU addresses, aligned:
 * 16 pages on either side of a 1 GiB boundary, each with its own pattern, are
 * read and written by the GPU as the CPU has them.
 */
static void test_walk_steps(uint32_t mode)
{
	const uint64_t size = 32 * page, boundary = 0x7f4000000000ull;
	uint64_t sum = 0;
	struct ctx c;
	uint32_t uptr;
	char *ptr;

	ctx_init(&c, mode, page);
	ptr = mmap((void *)(boundary - size / 2), size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	igt_require_f(ptr == (void *)(boundary - size / 2), "%#llx is taken\n",
		      (unsigned long long)(boundary - size / 2));
	hmmgpu_fill_pattern(ptr, size, 31);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	igt_assert_eq(gpu_checksum(&c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));
	igt_assert_eq(gpu_write64(&c, USERPTR_VA + size / 2 - 8, 0x1111), 0);
	igt_assert_eq(gpu_write64(&c, USERPTR_VA + size / 2, 0x2222), 0);
	igt_assert_eq_u64(*(volatile uint64_t *)(ptr + size / 2 - 8), 0x1111);
	igt_assert_eq_u64(*(volatile uint64_t *)(ptr + size / 2), 0x2222);
	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, size), 0);
	ctx_fini(&c);
}

static void test_munmap(uint32_t mode)
{
	const uint64_t size = 16 * page, half = size / 2;
	const uint64_t va2 = USERPTR_VA + VA_STRIDE;
	struct drm_hmmgpu_vm_stats before, after;
	uint32_t uptr, uptr2;
	uint64_t sum = 0, failed;
	struct ctx c;
	char *ptr;
	int err;

	ctx_init(&c, mode, page);

	ptr = map_anon(size, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, size, 1);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	igt_assert_eq(gpu_checksum(&c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));

	vm_stats(&c, &before);
	failed = c.jobs_failed;
	igt_assert_eq(munmap(ptr, size), 0);

	/* Reads and writes, at the start and the end of the range. */
	igt_assert_eq(gpu_checksum(&c, USERPTR_VA, size, &sum), -EFAULT);
	igt_assert_eq(gpu_write64(&c, USERPTR_VA + 8, 1), -EFAULT);
	igt_assert_eq(gpu_copy(&c, BO_VA, USERPTR_VA + size - page, page), -EFAULT);
	igt_assert_eq(gpu_fill(&c, USERPTR_VA + size - page, page, 0), -EFAULT);

	/* The VM runs jobs that keep to its other mappings. */
	igt_assert_eq(gpu_write64(&c, BO_VA + 16, 0x5555aaaa5555aaaaull), 0);
	igt_assert_eq_u64(*(uint64_t *)(c.bo_ptr + 16), 0x5555aaaa5555aaaaull);

	vm_stats(&c, &after);
	igt_assert_lt_u64(before.invalidations, after.invalidations);
	igt_assert_eq_u64(after.jobs_failed - before.jobs_failed, c.jobs_failed - failed);
	igt_assert_eq_u64(c.jobs_failed - failed, 4);
	/* Nothing raced: memory found not mapped is no retry, nor a fault resolved. */
	igt_assert_eq_u64(after.retries, before.retries);
	igt_assert_eq_u64(after.faults, before.faults);
	igt_assert_eq_u64(after.faults, after.faults_4k + after.faults_2m);

	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);

	/* Half of the memory unmapped. */
	ptr = map_anon(size, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, size, 2);
	uptr2 = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr2, 0, va2, size, 0);
	igt_assert_eq(gpu_checksum(&c, va2, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));

	igt_assert_eq(munmap(ptr + half, half), 0);
	igt_assert_eq(gpu_checksum(&c, va2 + half, half, &sum), -EFAULT);
	igt_assert_eq(gpu_write64(&c, va2 + size - 8, 1), -EFAULT);
	igt_assert_eq(gpu_checksum(&c, va2, size, &sum), -EFAULT);

	/*
	 * The uAPI leaves open whether the pages still mapped stay usable
	 * through the mapping; whatever the GPU does there must be right.
	 */
	err = gpu_checksum(&c, va2, half, &sum);
	igt_info("checksum of the half still mapped: %d\n", err);
	igt_assert_f(err == 0 || err == -EFAULT, "job error %d\n", err);
	if (!err)
		igt_assert_eq_u64(sum, cpu_checksum(ptr, half));
	err = gpu_fill(&c, va2 + page, page, 0x77777777);
	igt_assert_f(err == 0 || err == -EFAULT, "job error %d\n", err);
	if (!err)
		check_value(ptr + page, page, 0x77777777);
	else
		hmmgpu_check_pattern_at(ptr, page, page, 2);
	hmmgpu_check_pattern_at(ptr, 0, page, 2);
	hmmgpu_check_pattern_at(ptr, 2 * page, half - 2 * page, 2);

	hmmgpu_vm_unmap(c.fd, c.vm, va2, size);
	gem_close(c.fd, uptr2);
	igt_assert_eq(munmap(ptr, half), 0);
	ctx_fini(&c);
}

/* Copies @va to the scratch object and checks that it reads as @expected. */
static void check_gpu_view(struct ctx *c, uint64_t va, const void *expected, uint64_t size,
			   const char *what)
{
	memset(c->bo_ptr, 0, size);
	igt_assert_eq(gpu_copy(c, BO_VA, va, size), 0);
	check_same(c->bo_ptr, expected, size, what);
}

/* A MAP_FIXED mapping over the memory: the next job sees its pages, never the old. */
static void test_remap(uint32_t mode)
{
	const uint64_t size = 16 * page;
	uint64_t sum = 0;
	uint32_t uptr;
	struct ctx c;
	char *ptr;

	ctx_init(&c, mode, size);

	ptr = map_anon(size, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, size, 1);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	check_gpu_view(&c, USERPTR_VA, ptr, size, "before remapping");

	/* New private memory over the whole range. */
	igt_assert(mmap(ptr, size, PROT_READ | PROT_WRITE,
			MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == ptr);
	hmmgpu_fill_pattern(ptr, size, 2);
	check_gpu_view(&c, USERPTR_VA, ptr, size, "after a private remap");
	hmmgpu_check_pattern(c.bo_ptr, size, 2);
	igt_assert_eq(gpu_checksum(&c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));
	/* And GPU writes reach the new pages. */
	igt_assert_eq(gpu_fill(&c, USERPTR_VA + page, page, 0x12345678), 0);
	check_value(ptr + page, page, 0x12345678);

	/* Shared memory over the middle: new pages there, the same around. */
	hmmgpu_fill_pattern(ptr, size, 2);
	igt_assert(mmap(ptr + 4 * page, 4 * page, PROT_READ | PROT_WRITE,
			MAP_FIXED | MAP_SHARED | MAP_ANONYMOUS, -1, 0) == ptr + 4 * page);
	hmmgpu_fill_pattern(ptr + 4 * page, 4 * page, 3);
	check_gpu_view(&c, USERPTR_VA, ptr, size, "after a shared remap of the middle");
	hmmgpu_check_pattern(c.bo_ptr + 4 * page, 4 * page, 3);
	hmmgpu_check_pattern(c.bo_ptr, 4 * page, 2);

	/* Untouched memory over the end: the GPU reads zeros, not the old data. */
	igt_assert(mmap(ptr + 12 * page, 4 * page, PROT_READ | PROT_WRITE,
			MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == ptr + 12 * page);
	igt_assert_eq(gpu_checksum(&c, USERPTR_VA + 12 * page, 4 * page, &sum), 0);
	igt_assert_eq_u64(sum, 0);
	check_gpu_view(&c, USERPTR_VA, ptr, size, "after a remap of the end");

	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, size), 0);
	ctx_fini(&c);
}

/*
 * @va maps @size bytes at @ptr read-only: the GPU reads them, and its writes
 * fault and change nothing.
 */
static void check_read_only(struct ctx *c, uint64_t va, char *ptr, uint64_t size)
{
	void *before = snapshot(ptr, size);
	uint64_t sum = 0;

	check_gpu_view(c, va, ptr, size, "read-only");
	igt_assert_eq(gpu_checksum(c, va, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));

	igt_assert_eq(gpu_write64(c, va + 8, 1), -EFAULT);
	igt_assert_eq(gpu_atomic_add(c, va + size - 8, 1), -EFAULT);
	igt_assert_eq(gpu_fill(c, va + page, page, 0), -EFAULT);
	hmmgpu_fill_pattern(c->bo_ptr, size, 9);
	igt_assert_eq(gpu_copy(c, va, BO_VA, size), -EFAULT);
	check_same(ptr, before, size, "memory after refused GPU writes");

	/* The faults leave reading alone. */
	igt_assert_eq(gpu_checksum(c, va, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));
	free(before);
}

static void test_read_only(uint32_t mode)
{
	const uint64_t size = 8 * page;
	const uint64_t va_ro = USERPTR_VA, va_rw = USERPTR_VA + VA_STRIDE;
	uint32_t uptr;
	struct ctx c;
	char *ptr;
	int err;

	ctx_init(&c, mode, size);

	igt_debug("a read-only userptr\n");
	ptr = map_anon(size, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, size, 1);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, DRM_HMMGPU_USERPTR_READ_ONLY);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, va_ro, size, 0);
	check_read_only(&c, va_ro, ptr, size);
	hmmgpu_vm_unmap(c.fd, c.vm, va_ro, size);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, size), 0);

	igt_debug("a read-only binding of a read-write userptr\n");
	ptr = map_anon(size, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, size, 2);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, DRM_HMMGPU_VM_BIND_READ_ONLY, va_ro, size, 0);
	check_read_only(&c, va_ro, ptr, size);
	/* Another binding of the same memory stays writable, and both see its writes. */
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, va_rw, size, 0);
	igt_assert_eq(gpu_fill(&c, va_rw + 2 * page, page, 0xc0ffee00), 0);
	check_value(ptr + 2 * page, page, 0xc0ffee00);
	check_gpu_view(&c, va_ro, ptr, size, "read-only binding after a write through another");
	check_read_only(&c, va_ro, ptr, size);
	hmmgpu_vm_unmap(c.fd, c.vm, va_rw, size);
	hmmgpu_vm_unmap(c.fd, c.vm, va_ro, size);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, size), 0);

	igt_debug("a read-only binding of a GEM object\n");
	{
		uint32_t bo = hmmgpu_gem_create(c.fd, size);
		char *bo_ptr = hmmgpu_gem_mmap(c.fd, bo, size, PROT_READ | PROT_WRITE);

		hmmgpu_fill_pattern(bo_ptr, size, 3);
		hmmgpu_vm_map(c.fd, c.vm, bo, DRM_HMMGPU_VM_BIND_READ_ONLY, BO_VA + VA_STRIDE,
			      size, 0);
		check_read_only(&c, BO_VA + VA_STRIDE, bo_ptr, size);
		hmmgpu_vm_unmap(c.fd, c.vm, BO_VA + VA_STRIDE, size);
		igt_assert_eq(munmap(bo_ptr, size), 0);
		gem_close(c.fd, bo);
	}

	igt_debug("a read-write binding of a PROT_READ VMA\n");
	ptr = map_anon(size, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, size, 4);
	igt_assert_eq(mprotect(ptr, size, PROT_READ), 0);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	err = __hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, uptr, 0, va_ro, size, 0);
	if (mode == DRM_HMMGPU_VM_MODE_PINNED) {
		/* A writable binding pins for writing, which the VMA refuses. */
		igt_assert_eq(err, -EFAULT);
		hmmgpu_vm_map(c.fd, c.vm, uptr, DRM_HMMGPU_VM_BIND_READ_ONLY, va_ro, size, 0);
		check_read_only(&c, va_ro, ptr, size);
	} else {
		igt_assert_eq(err, 0);
		check_read_only(&c, va_ro, ptr, size);
		/* Once the CPU may write, so may the GPU. */
		igt_assert_eq(mprotect(ptr, size, PROT_READ | PROT_WRITE), 0);
		igt_assert_eq(gpu_fill(&c, va_ro + page, page, 0x0badf00d), 0);
		check_value(ptr + page, page, 0x0badf00d);
	}
	hmmgpu_vm_unmap(c.fd, c.vm, va_ro, size);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, size), 0);

	ctx_fini(&c);
}

/*
 * fork(): the child shares the file, the VM and the userptrs, but its jobs
 * fault on the parent's memory and leave it alone, and it can bind no
 * userptr into the parent's VM, of its memory or of the parent's (-EFAULT). The parent's CPU writes to
 * copy-on-write pages reach its next job, its GPU writes stay out of the
 * child's copy, and MAP_SHARED memory stays shared both ways.
 */
static void test_fork(uint32_t mode)
{
	const uint64_t size = 4 * page;
	const uint64_t va_priv = USERPTR_VA, va_shared = USERPTR_VA + VA_STRIDE;
	const uint64_t child_mark = 0xc41dc41dc41dc41dull;
	int to_child[2], to_parent[2];
	char *priv, *shared;
	uint32_t upriv, ushared;
	uint64_t sum = 0;
	struct ctx c;

	ctx_init(&c, mode, size);

	priv = map_anon(size, MAP_PRIVATE);
	shared = map_anon(size, MAP_SHARED);
	hmmgpu_fill_pattern(priv, size, 1);
	hmmgpu_fill_pattern(shared, size, 2);
	upriv = hmmgpu_userptr_create(c.fd, priv, size, 0);
	ushared = hmmgpu_userptr_create(c.fd, shared, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, upriv, 0, va_priv, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, ushared, 0, va_shared, size, 0);
	/* Mirror both first. */
	igt_assert_eq(gpu_checksum(&c, va_priv, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(priv, size));
	igt_assert_eq(gpu_checksum(&c, va_shared, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(shared, size));
	c.res[1] = 0;

	igt_assert_eq(pipe(to_child), 0);
	igt_assert_eq(pipe(to_parent), 0);

	igt_fork(child, 1) {
		uint32_t mine;

		close(to_child[1]);
		close(to_parent[0]);

		/* The child's jobs run: those on the GEM object succeed. */
		igt_assert_eq(gpu_write64(&c, c.res_va + 8, child_mark), 0);
		/* Those on the parent's memory fault, reading or writing. */
		igt_assert_eq(gpu_fill(&c, va_priv, page, 0xdddddddd), -EFAULT);
		igt_assert_eq(gpu_fill(&c, va_shared, page, 0xdddddddd), -EFAULT);
		igt_assert_eq(gpu_write64(&c, va_priv + size - 8, 1), -EFAULT);
		igt_assert_eq(gpu_checksum(&c, va_priv, size, &sum), -EFAULT);
		igt_assert_eq(gpu_checksum(&c, va_shared, size, &sum), -EFAULT);
		hmmgpu_check_pattern(priv, size, 1);
		hmmgpu_check_pattern(shared, size, 2);

		/* A userptr of the child's memory cannot join the parent's VM. */
		mine = hmmgpu_userptr_create(c.fd, priv, size, 0);
		igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, mine, 0,
					       USERPTR_VA + 2 * VA_STRIDE, size, 0), -EFAULT);
		gem_close(c.fd, mine);
		/* Nor can the parent's userptrs, bound by the child. */
		igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, upriv, 0,
					       USERPTR_VA + 2 * VA_STRIDE, size, 0), -EFAULT);
		igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, ushared, 0,
					       USERPTR_VA + 2 * VA_STRIDE, size, 0), -EFAULT);

		/* A CPU write to shared memory, for the parent's GPU to see. */
		hmmgpu_fill_pattern(shared + page, page, 3);

		write_byte(to_parent[1]);
		igt_assert(read_byte(to_child[0]));

		/* The parent's GPU wrote the shared memory, and not the child's copy. */
		check_value(shared + 2 * page, page, 0x5a5a5a5a);
		hmmgpu_check_pattern(priv, size, 1);
	}
	close(to_child[0]);
	close(to_parent[1]);

	if (!read_byte(to_parent[0]))
		igt_waitchildren(); /* The child failed: report how. */
	igt_assert_eq_u64(c.res[1], child_mark);
	hmmgpu_check_pattern(priv, size, 1);
	hmmgpu_check_pattern_at(shared, 0, page, 2);
	hmmgpu_check_pattern_at(shared, 2 * page, 2 * page, 2);

	/* The child's CPU write to shared memory reaches the parent's GPU. */
	igt_assert_eq(gpu_checksum(&c, va_shared + page, page, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(shared + page, page));
	hmmgpu_check_pattern(shared + page, page, 3);

	/* Copy-on-write: the parent's next job sees the CPU's write. */
	check_gpu_view(&c, va_priv, priv, size, "private memory after fork");
	hmmgpu_fill_pattern(priv, size, 4);
	check_gpu_view(&c, va_priv, priv, size, "private memory written after fork");
	hmmgpu_check_pattern(c.bo_ptr, size, 4);
	igt_assert_eq(gpu_fill(&c, va_priv + page, page, 0x600d600d), 0);
	check_value(priv + page, page, 0x600d600d);

	igt_assert_eq(gpu_fill(&c, va_shared + 2 * page, page, 0x5a5a5a5a), 0);
	write_byte(to_child[1]);
	igt_waitchildren();
	close(to_child[1]);
	close(to_parent[0]);

	hmmgpu_vm_unmap(c.fd, c.vm, va_priv, size);
	hmmgpu_vm_unmap(c.fd, c.vm, va_shared, size);
	gem_close(c.fd, upriv);
	gem_close(c.fd, ushared);
	igt_assert_eq(munmap(priv, size), 0);
	igt_assert_eq(munmap(shared, size), 0);
	ctx_fini(&c);
}

/*
 * invalidate-busy: a job that bounces BUSY_SIZE / 2 bytes between the two
 * halves of a userptr, and the CPU taking the memory away while it runs.
 */
#define BUSY_SIZE	SZ_2M
#define BUSY_TARGET_S	0.4
#define BUSY_TIMEOUT_MS	60000

static void bounce_cmds(struct drm_hmmgpu_cmd *cmds, unsigned int n, uint64_t va)
{
	const uint64_t half = BUSY_SIZE / 2;

	for (unsigned int i = 0; i < n; i++) {
		if (i % 2)
			hmmgpu_cmd_copy(&cmds[i], va, va + half, half);
		else
			hmmgpu_cmd_copy(&cmds[i], va + half, va, half);
	}
}

/* How many bounces take about BUSY_TARGET_S seconds, from a short job's time. */
static unsigned int calibrate_bounces(struct ctx *c, struct drm_hmmgpu_cmd *cmds, uint64_t va)
{
	const unsigned int n = 8;
	struct timespec start;
	double per_cmd;
	unsigned int count;

	bounce_cmds(cmds, n, va);
	igt_assert_eq(job(c, cmds, n), 0); /* mirrors the memory */
	igt_gettime(&start);
	igt_assert_eq(job(c, cmds, n), 0);
	per_cmd = igt_nsec_elapsed(&start) / 1e9 / n;

	count = per_cmd > 0 ? BUSY_TARGET_S / per_cmd : HMMGPU_CMD_MAX_COUNT;
	count = count < 16 ? 16 : count > HMMGPU_CMD_MAX_COUNT ? HMMGPU_CMD_MAX_COUNT : count;
	igt_info("a copy of %llu KiB takes %.3f ms: %u copies per job\n",
		 (unsigned long long)BUSY_SIZE / 2048, per_cmd * 1e3, count);
	return count;
}

enum busy_invalidation { BUSY_MUNMAP, BUSY_DONTNEED };

/*
 * Queues a long job on @va and, once it is seen running, invalidates @ptr
 * from the CPU. Returns the job's error; asserts that it ends.
 */
static int invalidate_busy(struct ctx *c, struct drm_hmmgpu_cmd *cmds, unsigned int *count,
			   uint64_t va, char *ptr, enum busy_invalidation how)
{
	for (int attempt = 0; attempt < 4; attempt++) {
		struct hmmgpu_done *done = hmmgpu_done_create(c->fd, c->mode);
		struct drm_hmmgpu_sync sync = hmmgpu_done_signal(done);
		struct drm_hmmgpu_exec exec = {
			.vm_id = c->vm,
			.cmds = to_user_pointer(cmds),
			.cmd_count = *count,
			.timeout_ms = BUSY_TIMEOUT_MS,
			.syncs = to_user_pointer(&sync),
			.num_syncs = 1,
		};
		struct timespec start;
		int32_t error = 0;
		bool busy;
		int err;

		bounce_cmds(cmds, *count, va);
		hmmgpu_exec(c->fd, &exec);
		c->jobs++;

		usleep(20 * 1000);
		busy = !hmmgpu_done_signalled(done, NULL);

		if (busy) {
			igt_gettime(&start);
			if (how == BUSY_MUNMAP)
				igt_assert_eq(munmap(ptr, BUSY_SIZE), 0);
			else
				igt_assert_eq(madvise(ptr, BUSY_SIZE, MADV_DONTNEED), 0);
			igt_info("%s under a running job of %u copies took %.3f s\n",
				 how == BUSY_MUNMAP ? "munmap" : "MADV_DONTNEED", *count,
				 igt_nsec_elapsed(&start) / 1e9);
		}

		/* However the job ended, it ends: the wait returns. */
		igt_gettime(&start);
		err = __hmmgpu_done_wait(done, (BUSY_TIMEOUT_MS + 10000) * 1000000ll, &error);
		igt_assert_eq(err, 0);
		igt_debug("the job ended %.3f s later, with %d\n",
			  igt_nsec_elapsed(&start) / 1e9, error);
		hmmgpu_done_destroy(done);
		if (error)
			c->jobs_failed++;

		if (busy)
			return error;

		/* It was done before the CPU got to it: a longer one. */
		igt_assert_eq(error, 0);
		*count = *count * 4 > HMMGPU_CMD_MAX_COUNT ? HMMGPU_CMD_MAX_COUNT : *count * 4;
	}

	igt_skip("jobs end before the CPU can invalidate their memory\n");
}

static void test_invalidate_busy(uint32_t mode)
{
	const uint64_t va = USERPTR_VA, va2 = USERPTR_VA + VA_STRIDE;
	struct drm_hmmgpu_cmd *cmds;
	unsigned int count;
	uint32_t uptr;
	uint64_t sum = 0;
	struct ctx c;
	char *ptr;
	int err;

	cmds = calloc(HMMGPU_CMD_MAX_COUNT, sizeof(*cmds));
	igt_assert(cmds);
	ctx_init(&c, mode, page);

	/* munmap: the job ends, with or without a fault, and later ones fault. */
	ptr = map_anon(BUSY_SIZE, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, BUSY_SIZE, 1);
	uptr = hmmgpu_userptr_create(c.fd, ptr, BUSY_SIZE, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, va, BUSY_SIZE, 0);
	count = calibrate_bounces(&c, cmds, va);

	err = invalidate_busy(&c, cmds, &count, va, ptr, BUSY_MUNMAP);
	igt_assert_f(err == 0 || err == -EFAULT, "job error %d\n", err);
	igt_assert_eq(gpu_checksum(&c, va, BUSY_SIZE, &sum), -EFAULT);
	hmmgpu_vm_unmap(c.fd, c.vm, va, BUSY_SIZE);
	gem_close(c.fd, uptr);

	/* A fresh mapping at the same GPU address works. */
	ptr = map_anon(BUSY_SIZE, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, BUSY_SIZE, 2);
	uptr = hmmgpu_userptr_create(c.fd, ptr, BUSY_SIZE, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, va, BUSY_SIZE, 0);
	igt_assert_eq(gpu_checksum(&c, va, BUSY_SIZE, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, BUSY_SIZE));
	igt_assert_eq(gpu_fill(&c, va + page, page, 0x13572468), 0);
	check_value(ptr + page, page, 0x13572468);
	hmmgpu_vm_unmap(c.fd, c.vm, va, BUSY_SIZE);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, BUSY_SIZE), 0);

	/*
	 * MADV_DONTNEED: the memory stays mapped, so the job completes, and
	 * afterwards GPU and CPU agree on the new pages.
	 */
	ptr = map_anon(BUSY_SIZE, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, BUSY_SIZE, 3);
	uptr = hmmgpu_userptr_create(c.fd, ptr, BUSY_SIZE, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, va2, BUSY_SIZE, 0);
	igt_assert_eq(gpu_checksum(&c, va2, BUSY_SIZE, &sum), 0);
	err = invalidate_busy(&c, cmds, &count, va2, ptr, BUSY_DONTNEED);
	igt_assert_eq(err, 0);
	hmmgpu_fill_pattern(ptr, BUSY_SIZE, 4);
	igt_assert_eq(gpu_checksum(&c, va2, BUSY_SIZE, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, BUSY_SIZE));
	igt_assert_eq(gpu_fill(&c, va2 + BUSY_SIZE - page, page, 0x24681357), 0);
	check_value(ptr + BUSY_SIZE - page, page, 0x24681357);
	hmmgpu_check_pattern(ptr, BUSY_SIZE - page, 4);
	hmmgpu_vm_unmap(c.fd, c.vm, va2, BUSY_SIZE);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, BUSY_SIZE), 0);

	ctx_fini(&c);
	free(cmds);
}

/*
 * A huge page of the CPU, at a 2 MiB-aligned GPU address, gets a 2 MiB GPU
 * entry; at an address 4 KiB off that alignment it cannot.
 */
static void test_thp_2m(uint32_t mode)
{
	const uint64_t va = USERPTR_VA, va_off = USERPTR_VA + VA_STRIDE + 0x1000;
	struct drm_hmmgpu_vm_stats s0, s1, s2;
	uint64_t map_size, sum = 0;
	uint32_t uptr;
	struct ctx c;
	void *map;
	char *ptr;

	igt_require_f(hmmgpu_thp_enabled(), "transparent huge pages are disabled\n");
	ptr = hmmgpu_thp_alloc(SZ_4M, 1, &map, &map_size);
	hmmgpu_require_thp(map, map_size, ptr, 2048);

	ctx_init(&c, mode, page);
	uptr = hmmgpu_userptr_create(c.fd, ptr, SZ_4M, 0);

	vm_stats(&c, &s0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, va, SZ_4M, 0);
	igt_assert_eq(gpu_checksum(&c, va, SZ_4M, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, SZ_4M));
	igt_assert_eq(gpu_write64(&c, va + SZ_2M + 0x2468, 0x2222222222222222ull), 0);
	igt_assert_eq_u64(*(uint64_t *)(ptr + SZ_2M + 0x2468), 0x2222222222222222ull);
	vm_stats(&c, &s1);
	igt_assert_lt_u64(s0.entries_2m, s1.entries_2m);
	if (mode == DRM_HMMGPU_VM_MODE_FAULT) {
		igt_assert_lt_u64(s0.faults_2m, s1.faults_2m);
		igt_assert_lte_u64(s1.faults_2m, s1.faults);
	}
	hmmgpu_vm_unmap(c.fd, c.vm, va, SZ_4M);

	/* Misaligned by 4 KiB: 4 KiB entries only, and the same data. */
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, va_off, SZ_4M, 0);
	igt_assert_eq(gpu_checksum(&c, va_off, SZ_4M, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, SZ_4M));
	igt_assert_eq(gpu_write64(&c, va_off + SZ_2M + 0x1230, 0x3333333333333333ull), 0);
	igt_assert_eq_u64(*(uint64_t *)(ptr + SZ_2M + 0x1230), 0x3333333333333333ull);
	vm_stats(&c, &s2);
	igt_assert_eq_u64(s2.entries_2m, s1.entries_2m);
	igt_assert_eq_u64(s2.faults_2m, s1.faults_2m);
	igt_assert_lt_u64(s1.entries_4k, s2.entries_4k);
	hmmgpu_vm_unmap(c.fd, c.vm, va_off, SZ_4M);

	gem_close(c.fd, uptr);
	ctx_fini(&c);
	igt_assert_eq(munmap(map, map_size), 0);
}

/* @pages pages of @va, each written at byte 16: those in [@hole, @hole + 2) fault. */
static void check_split(struct ctx *c, uint64_t va, char *ptr, int pages, int hole,
			uint64_t tag)
{
	uint64_t sum = 0;

	for (int i = 0; i < pages; i++) {
		bool in_hole = i >= hole && i < hole + 2;

		igt_assert_eq(gpu_write64(c, va + i * page + 16, tag + i), in_hole ? -EFAULT : 0);
		igt_assert_eq(gpu_checksum(c, va + i * page, page, &sum), in_hole ? -EFAULT : 0);
		if (!in_hole)
			igt_assert_eq_u64(sum, cpu_checksum(ptr + i * page, page));
		if (in_hole)
			igt_assert_neq_u64(*(uint64_t *)(ptr + i * page + 16), tag + i);
		else
			igt_assert_eq_u64(*(uint64_t *)(ptr + i * page + 16), tag + i);
	}
	/* Ranges across the hole fault too; those beside it do not. */
	igt_assert_eq(gpu_checksum(c, va, pages * page, &sum), -EFAULT);
	igt_assert_eq(gpu_fill(c, va + (hole - 1) * page, 2 * page, 0), -EFAULT);
	igt_assert_eq(gpu_checksum(c, va, hole * page, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, hole * page));
	igt_assert_eq(gpu_checksum(c, va + (hole + 2) * page, (pages - hole - 2) * page, &sum),
		      0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr + (hole + 2) * page,
					    (pages - hole - 2) * page));
}

/* Unbinding the middle of a mapping splits it: the middle faults, both sides work. */
static void test_unmap_split(uint32_t mode)
{
	const int pages = 8, hole = 3;
	const uint64_t size = pages * page;
	const uint64_t va_bo = BO_VA + VA_STRIDE;
	uint32_t uptr, bo;
	char *ptr, *bo_ptr;
	uint64_t sum = 0;
	struct ctx c;

	ctx_init(&c, mode, page);

	ptr = map_anon(size, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, size, 1);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	igt_assert_eq(gpu_checksum(&c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));

	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA + hole * page, 2 * page);
	check_split(&c, USERPTR_VA, ptr, pages, hole, 0x1100);

	/* The pieces are mappings of their own: the hole takes a new one, no more. */
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, uptr, 0,
				       USERPTR_VA + (hole - 1) * page, 2 * page,
				       (hole - 1) * page), -EBUSY);
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, uptr, 0,
				       USERPTR_VA + (hole + 1) * page, 2 * page,
				       (hole + 1) * page), -EBUSY);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA + hole * page, 2 * page, hole * page);
	igt_assert_eq(gpu_fill(&c, USERPTR_VA + hole * page, 2 * page, 0x44444444), 0);
	check_value(ptr + hole * page, 2 * page, 0x44444444);
	igt_assert_eq(gpu_checksum(&c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));

	/* One unbind over the three pieces removes them all. */
	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	for (int i = 0; i < pages; i++)
		igt_assert_eq(gpu_write64(&c, USERPTR_VA + i * page, 0), -EFAULT);
	/* Unbinding nothing is fine. */
	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, size), 0);

	/* The same with a GEM object. */
	bo = hmmgpu_gem_create(c.fd, size);
	bo_ptr = hmmgpu_gem_mmap(c.fd, bo, size, PROT_READ | PROT_WRITE);
	hmmgpu_fill_pattern(bo_ptr, size, 2);
	hmmgpu_vm_map(c.fd, c.vm, bo, 0, va_bo, size, 0);
	igt_assert_eq(gpu_checksum(&c, va_bo, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(bo_ptr, size));
	hmmgpu_vm_unmap(c.fd, c.vm, va_bo + hole * page, 2 * page);
	check_split(&c, va_bo, bo_ptr, pages, hole, 0x2200);
	hmmgpu_vm_unmap(c.fd, c.vm, va_bo, size);
	igt_assert_eq(munmap(bo_ptr, size), 0);
	gem_close(c.fd, bo);

	ctx_fini(&c);
}

/*
 * A job queued before an unbind of part of a mapping, held back by a fence,
 * reads the rest of the mapping once the fence signals: unbinding the middle
 * must leave what stays mapped usable by a job submitted before it, as by one
 * submitted after. In prefault and pinned modes a GPU fault is fatal, so the
 * pieces' entries must survive the split: 4 KiB ones, and 2 MiB ones of huge
 * pages when the hole's edges are 2 MiB-aligned.
 */
enum split_kind { SPLIT_USERPTR, SPLIT_GEM, SPLIT_THP };

static void test_unmap_split_queued(uint32_t mode, enum split_kind kind)
{
	const bool thp = kind == SPLIT_THP;
	const uint64_t size = thp ? 3 * SZ_2M : 8 * (uint64_t)page;
	const uint64_t hole = thp ? SZ_2M : 3 * (uint64_t)page;
	const uint64_t hole_size = thp ? SZ_2M : 2 * (uint64_t)page;
	const uint64_t va = kind == SPLIT_GEM ? BO_VA + VA_STRIDE : USERPTR_VA;
	struct drm_hmmgpu_cmd cmds[2];
	struct drm_hmmgpu_sync syncs[2];
	struct drm_hmmgpu_exec exec = {
		.cmds = (uintptr_t)cmds,
		.cmd_count = 2,
		.syncs = (uintptr_t)syncs,
		.num_syncs = 2,
	};
	struct drm_hmmgpu_vm_stats st;
	struct hmmgpu_done *done;
	uint64_t map_size = 0;
	void *map = NULL;
	uint32_t obj, hold;
	int timeline;
	int32_t error;
	char *ptr;
	struct ctx c;

	if (thp)
		igt_require_f(hmmgpu_thp_enabled(), "transparent huge pages are disabled\n");
	ctx_init(&c, mode, page);
	timeline = sw_sync_hold(c.fd, &hold);
	igt_require_f(timeline >= 0, "no sw_sync\n");
	done = hmmgpu_done_create(c.fd, mode);

	if (kind == SPLIT_GEM) {
		obj = hmmgpu_gem_create(c.fd, size);
		ptr = hmmgpu_gem_mmap(c.fd, obj, size, PROT_READ | PROT_WRITE);
	} else {
		if (thp)
			ptr = hmmgpu_thp_alloc(size, 3, &map, &map_size);
		else
			ptr = map_anon(size, MAP_PRIVATE);
		obj = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	}
	hmmgpu_fill_pattern(ptr, size, 3);
	hmmgpu_vm_map(c.fd, c.vm, obj, 0, va, size, 0);

	/* Checksums of both sides of the hole-to-be, behind the held fence. */
	c.res[0] = c.res[1] = 0xdeadbeefdeadbeefull;
	hmmgpu_cmd_checksum(&cmds[0], c.res_va, va, hole);
	hmmgpu_cmd_checksum(&cmds[1], c.res_va + 8, va + hole + hole_size,
			    size - hole - hole_size);
	syncs[0] = hmmgpu_sync_wait(hold);
	syncs[1] = hmmgpu_done_signal(done);
	exec.vm_id = c.vm;
	igt_assert_eq(__hmmgpu_exec(c.fd, &exec), 0);
	vm_stats(&c, &st);
	igt_info("before the split: %llu 4 KiB and %llu 2 MiB entries\n",
		 (unsigned long long)st.entries_4k, (unsigned long long)st.entries_2m);

	hmmgpu_vm_unmap(c.fd, c.vm, va + hole, hole_size);
	sw_sync_release(timeline);
	igt_assert_eq(__hmmgpu_done_wait(done, 30ll * 1000000000, &error), 0);
	igt_assert_f(error == 0, "the job queued before the split failed: %d\n", error);
	igt_assert_eq_u64(c.res[0], cpu_checksum(ptr, hole));
	igt_assert_eq_u64(c.res[1], cpu_checksum(ptr + hole + hole_size, size - hole - hole_size));

	if (thp) {
		uint64_t sum = 0;

		/*
		 * A hole whose edges cut 2 MiB entries: they are split, the hole's
		 * side cleared and the pieces' sides kept, each page translating
		 * as it did, for the jobs that come after.
		 */
		hmmgpu_vm_unmap(c.fd, c.vm, va, size);
		hmmgpu_vm_map(c.fd, c.vm, obj, 0, va, size, 0);
		igt_assert_eq(gpu_checksum(&c, va, size, &sum), 0);
		hmmgpu_vm_unmap(c.fd, c.vm, va + SZ_1M, SZ_2M);
		igt_assert_eq(gpu_checksum(&c, va, SZ_1M, &sum), 0);
		igt_assert_eq_u64(sum, cpu_checksum(ptr, SZ_1M));
		igt_assert_eq(gpu_checksum(&c, va + SZ_1M + SZ_2M, size - SZ_1M - SZ_2M, &sum), 0);
		igt_assert_eq_u64(sum, cpu_checksum(ptr + SZ_1M + SZ_2M, size - SZ_1M - SZ_2M));
	}

	hmmgpu_vm_unmap(c.fd, c.vm, va, size);
	hmmgpu_done_destroy(done);
	igt_assert_eq(munmap(map ? map : ptr, map ? map_size : size), 0);
	gem_close(c.fd, obj);
	close(timeline);
	ctx_fini(&c);
}

static int ioctl_raw(int test_fd, unsigned long request, void *arg)
{
	int err = 0;

	if (igt_ioctl(test_fd, request, arg))
		err = -errno;
	errno = 0;
	return err;
}

static void bad_vm_create(struct ctx *c)
{
	uint32_t vm = 0;

	igt_assert_eq(__hmmgpu_vm_create(c->fd, 0, &vm), -EINVAL);
	igt_assert_eq(__hmmgpu_vm_create(c->fd, 1u << 3, &vm), -EINVAL);
	igt_assert_eq(__hmmgpu_vm_create(c->fd, c->mode | 1u << 31, &vm), -EINVAL);
	igt_assert_eq(__hmmgpu_vm_create(c->fd, DRM_HMMGPU_VM_MODE_FAULT |
					 DRM_HMMGPU_VM_MODE_PREFAULT |
					 DRM_HMMGPU_VM_MODE_PINNED, &vm), -EINVAL);
	for (const struct hmmgpu_vm_mode *m = hmmgpu_vm_modes; m->name; m++) {
		if (m->flags != c->mode)
			igt_assert_eq(__hmmgpu_vm_create(c->fd, c->mode | m->flags, &vm),
				      -EINVAL);
		if (!(vm_modes & m->flags))
			igt_assert_eq(__hmmgpu_vm_create(c->fd, m->flags, &vm), -EINVAL);
	}

	/* 64 VMs a file: this one and 63 more. */
	{
		uint32_t vms[64];

		for (int i = 0; i < 63; i++) {
			vms[i] = hmmgpu_vm_create(c->fd, c->mode);
			igt_assert_neq_u32(vms[i], c->vm);
			for (int j = 0; j < i; j++)
				igt_assert_neq_u32(vms[i], vms[j]);
		}
		igt_assert_eq(__hmmgpu_vm_create(c->fd, c->mode, &vm), -ENOSPC);
		for (int i = 0; i < 63; i++)
			hmmgpu_vm_destroy(c->fd, vms[i]);
	}
}

static void bad_vm_ids(struct ctx *c)
{
	const uint32_t unknown[] = { 0, c->vm + 1000, 0xffffffff };
	struct drm_hmmgpu_vm_stats stats;
	struct drm_hmmgpu_exec exec = { .cmd_count = 1 };
	struct drm_hmmgpu_cmd cmd;
	uint32_t vm;

	hmmgpu_cmd_write64(&cmd, c->res_va, 1);
	exec.cmds = to_user_pointer(&cmd);
	for (unsigned int i = 0; i < ARRAY_SIZE(unknown); i++) {
		igt_assert_eq(__hmmgpu_vm_destroy(c->fd, unknown[i]), -ENOENT);
		igt_assert_eq(__hmmgpu_vm_bind(c->fd, unknown[i], DRM_HMMGPU_VM_BIND_MAP, c->bo,
					       0, BO_VA + VA_STRIDE, page, 0), -ENOENT);
		igt_assert_eq(__hmmgpu_vm_bind(c->fd, unknown[i], DRM_HMMGPU_VM_BIND_UNMAP, 0,
					       0, BO_VA, page, 0), -ENOENT);
		exec.vm_id = unknown[i];
		igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -ENOENT);
		igt_assert_eq(__hmmgpu_vm_stats(c->fd, unknown[i], &stats), -ENOENT);
	}

	/* A destroyed VM is unknown, and VMs are per file. */
	vm = hmmgpu_vm_create(c->fd, c->mode);
	hmmgpu_vm_destroy(c->fd, vm);
	igt_assert_eq(__hmmgpu_vm_destroy(c->fd, vm), -ENOENT);
	igt_assert_eq(__hmmgpu_vm_stats(c->fd, vm, &stats), -ENOENT);
	exec.vm_id = vm;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -ENOENT);
	{
		int other = drm_open_driver_render(DRIVER_HMMGPU);

		igt_assert_eq(__hmmgpu_vm_stats(other, c->vm, &stats), -ENOENT);
		exec.vm_id = c->vm;
		igt_assert_eq(__hmmgpu_exec(other, &exec), -ENOENT);
		drm_close_driver(other);
	}

	/* Reserved fields. */
	{
		struct drm_hmmgpu_vm_destroy destroy = { .vm_id = c->vm, .pad = 1 };

		igt_assert_eq(ioctl_raw(c->fd, DRM_IOCTL_HMMGPU_VM_DESTROY, &destroy), -EINVAL);
		memset(&stats, 0, sizeof(stats));
		stats.vm_id = c->vm;
		stats.pad = 1;
		igt_assert_eq(ioctl_raw(c->fd, DRM_IOCTL_HMMGPU_VM_STATS, &stats), -EINVAL);
		hmmgpu_vm_stats(c->fd, c->vm, &stats);
	}
}

/*
 * Sets the max_mappings module parameter to @n, or back to what it was for 0.
 * The test needs the parameter (the driver's own since the limit became a
 * million).
 */
static void set_max_mappings(unsigned long n)
{
	static const char path[] = "/sys/module/hmmgpu/parameters/max_mappings";
	static unsigned long saved;
	FILE *f;

	if (!saved) {
		f = fopen(path, "r");
		igt_assert_f(f, "%s: %s\n", path, strerror(errno));
		igt_assert_eq(fscanf(f, "%lu", &saved), 1);
		fclose(f);
	}
	f = fopen(path, "w");
	igt_assert_f(f, "%s: %s\n", path, strerror(errno));
	igt_assert(fprintf(f, "%lu\n", n ? n : saved) > 0);
	igt_assert_eq(fclose(f), 0);
}

static void bad_bind(struct ctx *c)
{
	const uint64_t size = PAGES * page, half = size / 2, va = USERPTR_VA;
	const uint64_t bo_total = c->bo_size + page;
	char *ptr = map_pages(PAGES);
	uint32_t uptr, closed;
	uint64_t sum = 0;

	uptr = hmmgpu_userptr_create(c->fd, ptr, size, 0);

#define BIND(op, handle, flags, va_, size_, offset) \
	__hmmgpu_vm_bind(c->fd, c->vm, op, handle, flags, va_, size_, offset)
#define MAP(handle, flags, va_, size_, offset) \
	BIND(DRM_HMMGPU_VM_BIND_MAP, handle, flags, va_, size_, offset)

	/* Alignment, emptiness. */
	igt_assert_eq(MAP(uptr, 0, va + 1, size, 0), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, va + page / 2, size - page, 0), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, va, size - 1, 0), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, va, page + 8, 0), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, va, page, 8), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, va, page, page / 2), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, va, 0, 0), -EINVAL);
	igt_assert_eq(MAP(c->bo, 0, va, 0, 0), -EINVAL);

	/* The 48-bit address space. */
	igt_assert_eq(MAP(uptr, 0, VA_LIMIT - page, 2 * page, 0), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, VA_LIMIT, page, 0), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, 1ull << 63, page, 0), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, -(uint64_t)page, 2 * page, 0), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, va, -(uint64_t)page, 0), -EINVAL);
	/* Its last page is fine. */
	igt_assert_eq(MAP(uptr, 0, VA_LIMIT - page, page, 0), 0);
	igt_assert_eq(gpu_write64(c, VA_LIMIT - 8, 0x4848484848484848ull), 0);
	igt_assert_eq_u64(*(uint64_t *)(ptr + page - 8), 0x4848484848484848ull);
	hmmgpu_vm_unmap(c->fd, c->vm, VA_LIMIT - page, page);

	/* The object. */
	igt_assert_eq(MAP(uptr, 0, va, page, size), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, va, size + page, 0), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, va, 2 * page, size - page), -EINVAL);
	igt_assert_eq(MAP(uptr, 0, va, page, -(uint64_t)page), -EINVAL);
	igt_assert_eq(MAP(c->bo, 0, va, bo_total + page, 0), -EINVAL);
	igt_assert_eq(MAP(c->bo, 0, va, page, bo_total), -EINVAL);

	/* Flags and ops. */
	igt_assert_eq(MAP(uptr, 1u << 1, va, size, 0), -EINVAL);
	igt_assert_eq(MAP(uptr, 1u << 31, va, size, 0), -EINVAL);
	igt_assert_eq(BIND(2, uptr, 0, va, size, 0), -EINVAL);
	igt_assert_eq(BIND(0xffffffff, uptr, 0, va, size, 0), -EINVAL);
	igt_assert_eq(BIND(DRM_HMMGPU_VM_BIND_UNMAP, uptr, 0, va, size, 0), -EINVAL);
	igt_assert_eq(BIND(DRM_HMMGPU_VM_BIND_UNMAP, 0, DRM_HMMGPU_VM_BIND_READ_ONLY, va,
			   size, 0), -EINVAL);
	igt_assert_eq(BIND(DRM_HMMGPU_VM_BIND_UNMAP, 0, 0, va, size, page), -EINVAL);

	/* Handles. */
	igt_assert_eq(MAP(0, 0, va, page, 0), -ENOENT);
	closed = hmmgpu_gem_create(c->fd, page);
	gem_close(c->fd, closed);
	igt_assert_eq(MAP(closed, 0, va, page, 0), -ENOENT);
	igt_assert_eq(MAP(0xfffffff0, 0, va, page, 0), -ENOENT);

	/* Overlaps, with the scratch object's mapping and with a new one. */
	igt_assert_eq(MAP(uptr, 0, BO_VA, page, 0), -EBUSY);
	igt_assert_eq(MAP(uptr, 0, BO_VA - page, 2 * page, 0), -EBUSY);
	igt_assert_eq(MAP(uptr, 0, BO_VA + bo_total - page, 2 * page, 0), -EBUSY);
	hmmgpu_vm_map(c->fd, c->vm, uptr, 0, va, half, 0);
	igt_assert_eq(MAP(uptr, 0, va, half, 0), -EBUSY);
	igt_assert_eq(MAP(c->bo, 0, va, page, 0), -EBUSY);
	igt_assert_eq(MAP(uptr, 0, va - page, 2 * page, 0), -EBUSY);
	igt_assert_eq(MAP(uptr, 0, va + half - page, 2 * page, 0), -EBUSY);
	igt_assert_eq(MAP(uptr, 0, va + page, page, 0), -EBUSY);
	igt_assert_eq(MAP(uptr, 0, va - page, half + 2 * page, 0), -EBUSY);
	/* Next to it is free; the refused binds left nothing behind. */
	igt_assert_eq(MAP(uptr, 0, va - page, page, 0), 0);
	igt_assert_eq(MAP(uptr, 0, va + half, page, 0), 0);
	igt_assert_eq(gpu_checksum(c, va - page, half + 2 * page, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, half) + 2 * cpu_checksum(ptr, page));
	hmmgpu_vm_unmap(c->fd, c->vm, va - page, half + 2 * page);
	igt_assert_eq(gpu_write64(c, va, 0), -EFAULT);

	/*
	 * At most max_mappings mappings a VM (a million by default; 4096 here, so
	 * that the test is quick); the scratch object's is one.
	 */
	set_max_mappings(4096);
	for (int i = 1; i < 4096; i++)
		igt_assert_eq(MAP(c->bo, DRM_HMMGPU_VM_BIND_READ_ONLY,
				  0x400000000ull + 2ull * i * page, page, 0), 0);
	igt_assert_eq(MAP(c->bo, 0, 0x400000000ull, page, 0), -ENOSPC);
	hmmgpu_vm_unmap(c->fd, c->vm, 0x400000000ull, 2ull * 4096 * page);
	set_max_mappings(0);
	igt_assert_eq(MAP(uptr, 0, va, size, 0), 0);
	hmmgpu_vm_unmap(c->fd, c->vm, va, size);

#undef MAP
#undef BIND

	gem_close(c->fd, uptr);
	munmap(ptr, size);
}

/* Binding memory that is not there: lazy, except in pinned mode, which pins at bind. */
static void bind_unmapped(struct ctx *c)
{
	const uint64_t size = PAGES * page;
	struct drm_hmmgpu_vm_stats before, after;
	char *ptr = map_pages(PAGES);
	uint32_t hole, part;
	uint64_t sum = 0;
	int err;

	vm_stats(c, &before);

	/* A range with one page unmapped. */
	igt_assert_eq(munmap(ptr + page, page), 0);
	part = hmmgpu_userptr_create(c->fd, ptr, size, 0);
	err = __hmmgpu_vm_bind(c->fd, c->vm, DRM_HMMGPU_VM_BIND_MAP, part, 0, USERPTR_VA,
			       size, 0);
	if (c->mode == DRM_HMMGPU_VM_MODE_PINNED) {
		igt_assert_eq(err, -EFAULT);
	} else {
		igt_assert_eq(err, 0);
		igt_assert_eq(gpu_write64(c, USERPTR_VA + page, 0), -EFAULT);
		hmmgpu_vm_unmap(c->fd, c->vm, USERPTR_VA, size);
	}

	/* A range with nothing mapped. */
	igt_assert_eq(munmap(ptr, size), 0);
	hole = hmmgpu_userptr_create(c->fd, ptr, size, 0);
	err = __hmmgpu_vm_bind(c->fd, c->vm, DRM_HMMGPU_VM_BIND_MAP, hole, 0, USERPTR_VA,
			       size, 0);
	if (c->mode == DRM_HMMGPU_VM_MODE_PINNED) {
		igt_assert_eq(err, -EFAULT);
		igt_assert_eq(__hmmgpu_vm_bind(c->fd, c->vm, DRM_HMMGPU_VM_BIND_MAP, hole,
					       DRM_HMMGPU_VM_BIND_READ_ONLY, USERPTR_VA, size,
					       0), -EFAULT);
		/* A failed bind leaves nothing behind, nothing pinned. */
		igt_assert_eq(gpu_write64(c, USERPTR_VA, 0), -EFAULT);
		vm_stats(c, &after);
		igt_assert_eq_u64(after.pinned_pages, before.pinned_pages);
	} else {
		igt_assert_eq(err, 0);
		igt_assert_eq(gpu_write64(c, USERPTR_VA, 0), -EFAULT);
		igt_assert_eq(gpu_checksum(c, USERPTR_VA + size - page, page, &sum), -EFAULT);
		hmmgpu_vm_unmap(c->fd, c->vm, USERPTR_VA, size);
	}

	/* Either way, the VM can bind there. */
	hmmgpu_vm_map(c->fd, c->vm, c->bo, 0, USERPTR_VA, page, 0);
	hmmgpu_vm_unmap(c->fd, c->vm, USERPTR_VA, page);

	gem_close(c->fd, hole);
	gem_close(c->fd, part);
}

static void bad_exec(struct ctx *c)
{
	struct drm_hmmgpu_sync syncs[HMMGPU_MAX_SYNCS + 1], dead_sync;
	struct drm_hmmgpu_cmd good, probe, bad[26], mixed[2], fault, big, *many;
	volatile uint64_t *res1 = &c->res[1], *res2 = &c->res[2];
	struct hmmgpu_done *dones[HMMGPU_MAX_SYNCS];
	uint32_t signalled[HMMGPU_MAX_SYNCS], dead = 0;
	struct drm_hmmgpu_exec exec;

	/* Execs meant to be refused carry @probe: had one run, res2 would say so. */
	hmmgpu_cmd_write64(&good, c->res_va + 8, 1);
	hmmgpu_cmd_write64(&probe, c->res_va + 16, 0xbad);
	*res2 = 0;
#define EXEC_INIT(cmd) (struct drm_hmmgpu_exec) { \
		.vm_id = c->vm, .cmds = to_user_pointer(cmd), .cmd_count = 1 }

	/* Without sync objects, a job still runs (in order, before the next one). */
	*res1 = 0;
	exec = EXEC_INIT(&good);
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), 0);
	igt_assert_eq(gpu_atomic_add(c, c->res_va + 8, 10), 0);
	igt_assert_eq_u64(*res1, 11);

	exec = EXEC_INIT(&probe);
	exec.flags = 1;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -EINVAL);
	exec.flags = 1u << 31;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -EINVAL);

	exec = EXEC_INIT(&probe);
	exec.cmd_count = 0;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -EINVAL);

	/* At most HMMGPU_CMD_MAX_COUNT commands. */
	many = calloc(HMMGPU_CMD_MAX_COUNT + 1, sizeof(*many));
	igt_assert(many);
	for (int i = 0; i <= HMMGPU_CMD_MAX_COUNT; i++)
		hmmgpu_cmd_atomic_add(&many[i], c->res_va + 16, 1);
	exec = EXEC_INIT(many);
	exec.cmd_count = HMMGPU_CMD_MAX_COUNT + 1;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -EINVAL);
	for (int i = 0; i <= HMMGPU_CMD_MAX_COUNT; i++)
		hmmgpu_cmd_atomic_add(&many[i], c->res_va + 8, 1);
	*res1 = 0;
	igt_assert_eq(job(c, many, HMMGPU_CMD_MAX_COUNT), 0);
	igt_assert_eq_u64(*res1, HMMGPU_CMD_MAX_COUNT);
	free(many);

	/* A command that does not decode refuses the whole buffer. */
	bad[0] = good;
	bad[0].op = 0;
	bad[1] = good;
	bad[1].op = 99;
	bad[2] = good;
	bad[2].flags = 1;
	hmmgpu_cmd_fill(&bad[3], c->res_va, 6, 0);
	hmmgpu_cmd_write64(&bad[4], c->res_va + 4, 0);
	hmmgpu_cmd_copy(&bad[5], c->res_va, c->res_va + 8, 16);
	/* A field the op does not use, non-zero. */
	hmmgpu_cmd_write64(&bad[6], c->res_va, 0);
	bad[6].src = 8;
	hmmgpu_cmd_write64(&bad[7], c->res_va, 0);
	bad[7].size = 8;
	hmmgpu_cmd_atomic_add(&bad[8], c->res_va, 1);
	bad[8].src = 8;
	hmmgpu_cmd_atomic_add(&bad[9], c->res_va, 1);
	bad[9].size = 8;
	hmmgpu_cmd_fill(&bad[10], c->res_va, 8, 0);
	bad[10].src = c->res_va;
	hmmgpu_cmd_copy(&bad[11], c->res_va, c->res_va + 64, 16);
	bad[11].value = 1;
	hmmgpu_cmd_checksum(&bad[12], c->res_va, c->res_va + 64, 16);
	bad[12].value = 1;
	/* A FILL value of more than 32 bits. */
	hmmgpu_cmd_fill(&bad[13], c->res_va, 8, 0);
	bad[13].value = 1ull << 32;
	/* Misaligned. */
	hmmgpu_cmd_fill(&bad[14], c->res_va + 2, 8, 0);
	hmmgpu_cmd_atomic_add(&bad[15], c->res_va + 4, 1);
	hmmgpu_cmd_checksum(&bad[16], c->res_va, c->res_va + 66, 16);
	hmmgpu_cmd_checksum(&bad[17], c->res_va, c->res_va + 64, 6);
	hmmgpu_cmd_checksum(&bad[18], c->res_va + 4, c->res_va + 64, 16);
	/* Empty, larger than HMMGPU_CMD_MAX_SIZE, wrapping, past 2^48. */
	hmmgpu_cmd_copy(&bad[19], c->res_va, c->res_va + 64, 0);
	hmmgpu_cmd_fill(&bad[20], c->res_va, 0, 0);
	hmmgpu_cmd_fill(&bad[21], c->res_va, HMMGPU_CMD_MAX_SIZE + 4, 0);
	hmmgpu_cmd_copy(&bad[22], c->res_va, ~0ull - 7, 16);
	hmmgpu_cmd_write64(&bad[23], 1ull << 48, 0);
	hmmgpu_cmd_checksum(&bad[24], c->res_va, (1ull << 48) - 8, 16);
	hmmgpu_cmd_copy(&bad[25], (1ull << 48) - 8, c->res_va, 16);
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		exec = EXEC_INIT(&bad[i]);
		igt_assert_f(__hmmgpu_exec(c->fd, &exec) == -EINVAL,
			     "command %u (op %u, dst %#llx, src %#llx, size %#llx, value %#llx) "
			     "was not refused with -EINVAL\n", i, bad[i].op,
			     (unsigned long long)bad[i].dst, (unsigned long long)bad[i].src,
			     (unsigned long long)bad[i].size, (unsigned long long)bad[i].value);
	}
	igt_assert_eq_u64(*res2, 0);

	/*
	 * The limits themselves decode: a FILL of HMMGPU_CMD_MAX_SIZE bytes with
	 * the largest 32-bit value, at an address nothing maps, ending at 2^48,
	 * runs and faults.
	 */
	hmmgpu_cmd_fill(&big, (1ull << 48) - HMMGPU_CMD_MAX_SIZE, HMMGPU_CMD_MAX_SIZE, 0);
	big.value = 0xffffffffull;
	igt_assert_eq(job(c, &big, 1), -EFAULT);
	mixed[0] = probe;
	mixed[1] = bad[1];
	exec = EXEC_INIT(mixed);
	exec.cmd_count = 2;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -EINVAL);

	/* Arrays that cannot be read. */
	exec = EXEC_INIT(NULL);
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -EFAULT);
	exec = EXEC_INIT(&probe);
	exec.num_syncs = 1;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -EFAULT);
	exec = EXEC_INIT(&probe);
	exec.pad = 1;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -EINVAL);

	/* Unknown sync objects (to signal: fault-mode VMs refuse any, see hmmgpu_sync). */
	igt_assert_eq(drmSyncobjCreate(c->fd, 0, &dead), 0);
	igt_assert_eq(drmSyncobjDestroy(c->fd, dead), 0);
	exec = EXEC_INIT(&probe);
	exec.syncs = to_user_pointer(&dead_sync);
	exec.num_syncs = 1;
	dead_sync = hmmgpu_sync_wait(dead);
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -ENOENT);
	dead_sync = hmmgpu_sync_timeline_wait(dead, 1);
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -ENOENT);
	if (c->mode != DRM_HMMGPU_VM_MODE_FAULT) {
		dead_sync = hmmgpu_sync_signal(dead);
		igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -ENOENT);
		dead_sync = hmmgpu_sync_timeline_signal(dead, 1);
		igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -ENOENT);
	}

	/*
	 * At most HMMGPU_MAX_SYNCS syncs: as many to signal are fine, and as
	 * many minus one to wait for (signalled sync objects) and one to signal.
	 */
	for (unsigned int i = 0; i < HMMGPU_MAX_SYNCS; i++) {
		dones[i] = hmmgpu_done_create(c->fd, c->mode);
		igt_assert_eq(drmSyncobjCreate(c->fd, DRM_SYNCOBJ_CREATE_SIGNALED, &signalled[i]),
			      0);
	}
	for (unsigned int i = 0; i < HMMGPU_MAX_SYNCS; i++)
		syncs[i] = hmmgpu_done_signal(dones[i]);
	syncs[HMMGPU_MAX_SYNCS] = hmmgpu_sync_wait(signalled[0]);
	exec = EXEC_INIT(&probe);
	exec.syncs = to_user_pointer(syncs);
	exec.num_syncs = HMMGPU_MAX_SYNCS + 1;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -EINVAL);
	exec = EXEC_INIT(&good);
	exec.syncs = to_user_pointer(syncs);
	exec.num_syncs = HMMGPU_MAX_SYNCS;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), 0);
	for (unsigned int i = 0; i < HMMGPU_MAX_SYNCS; i++)
		igt_assert_eq(hmmgpu_done_wait(dones[i], 10ll * NSEC_PER_SEC), 0);
	for (unsigned int i = 0; i < HMMGPU_MAX_SYNCS - 1; i++)
		syncs[i] = hmmgpu_sync_wait(signalled[i]);
	syncs[HMMGPU_MAX_SYNCS - 1] = hmmgpu_done_signal(dones[0]);
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), 0);
	igt_assert_eq(hmmgpu_done_wait(dones[0], 10ll * NSEC_PER_SEC), 0);

	/* Time limits. */
	exec = EXEC_INIT(&probe);
	exec.timeout_ms = HMMGPU_EXEC_MAX_TIMEOUT_MS + 1;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -EINVAL);
	exec.timeout_ms = ~0u;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), -EINVAL);
	igt_assert_eq(hmmgpu_exec_job(c->fd, c->vm, &good, 1, HMMGPU_EXEC_MAX_TIMEOUT_MS), 0);

	/* None of the refused execs ran anything (this job waits for all before it). */
	igt_assert_eq(gpu_atomic_add(c, c->res_va + 16, 0), 0);
	igt_assert_eq_u64(*res2, 0);

	/* A faulting job's error reaches every sync it signals. */
	hmmgpu_cmd_write64(&fault, 0x7000000000ull, 1);
	syncs[0] = hmmgpu_done_signal(dones[0]);
	syncs[1] = hmmgpu_done_signal(dones[1]);
	exec = EXEC_INIT(&fault);
	exec.syncs = to_user_pointer(syncs);
	exec.num_syncs = 2;
	igt_assert_eq(__hmmgpu_exec(c->fd, &exec), 0);
	igt_assert_eq(hmmgpu_done_wait(dones[0], 10ll * NSEC_PER_SEC), -EFAULT);
	igt_assert_eq(hmmgpu_done_wait(dones[1], 10ll * NSEC_PER_SEC), -EFAULT);

	for (unsigned int i = 0; i < HMMGPU_MAX_SYNCS; i++) {
		hmmgpu_done_destroy(dones[i]);
		igt_assert_eq(drmSyncobjDestroy(c->fd, signalled[i]), 0);
	}
#undef EXEC_INIT
}

static void test_bad_args(uint32_t mode)
{
	struct ctx c;

	ctx_init(&c, mode, page);
	bad_vm_create(&c);
	bad_vm_ids(&c);
	bad_bind(&c);
	bind_unmapped(&c);
	bad_exec(&c);
	ctx_fini(&c);
}

/*
 * Pinned mode: while bound, the VM pins the userptr's pages; whatever it
 * pins, it unpins, whether the memory goes away, the VM is destroyed or the
 * file closed without destroying anything.
 */
/* The unreclaimable slab memory of the system, in KiB. */
/* The value, in KiB, of line @key of /proc/meminfo. */
static long meminfo_kb(const char *key)
{
	size_t len = strlen(key);
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	igt_assert(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ':' &&
		    sscanf(line + len + 1, "%ld kB", &kb) == 1)
			break;
	fclose(f);
	igt_assert_f(kb >= 0, "no %s in /proc/meminfo\n", key);
	return kb;
}

static long slab_unreclaimable_kb(void)
{
	return meminfo_kb("SUnreclaim");
}

/*
 * Binding and unbinding a range at ever new addresses leaves nothing behind:
 * the page-table tables a bind reserves are freed when no mapping needs them
 * any more. 64 cycles of 1 GiB reserve 256 MiB of tables in all; if they
 * stayed, the unreclaimable slab memory would grow by that much.
 */
static void test_table_memory(uint32_t mode)
{
	const uint64_t size = 1ull << 30, base = 1ull << 40;
	const int cycles = 64;
	long before, after;
	uint32_t uptr;
	struct ctx c;
	char *ptr;

	ctx_init(&c, mode, 0);
	ptr = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	igt_assert(ptr != MAP_FAILED);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	/* Once, so that what the first bind allocates for good is counted before. */
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, base, size, 0);
	hmmgpu_vm_unmap(c.fd, c.vm, base, size);
	before = slab_unreclaimable_kb();
	for (int i = 1; i <= cycles; i++) {
		/* Each at another address, 512 GiB apart: new tables at every level. */
		uint64_t va = base + (uint64_t)i * (1ull << 39) + (1ull << 29);

		hmmgpu_vm_map(c.fd, c.vm, uptr, 0, va, size, 0);
		hmmgpu_vm_unmap(c.fd, c.vm, va, size);
	}
	after = slab_unreclaimable_kb();
	igt_info("unreclaimable slab: %ld KiB before, %ld KiB after %d cycles of 1 GiB\n",
		 before, after, cycles);
	/* A leak of the tables would be 256 MiB; allow a sixteenth of it for noise. */
	igt_assert_f(after - before < 16 * 1024, "%ld KiB more unreclaimable slab\n",
		     after - before);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, size), 0);
	ctx_fini(&c);
}

/*
 * Objects larger than 4 GiB. Sizes, offsets and page indices are 64-bit in
 * the driver; a 32-bit truncation anywhere on the way (the object's page of a
 * GPU address, the CPU address of a userptr's offset, a window's first page)
 * would send what is written at object offset 4 GiB + x to offset x. The tests
 * write at offsets just below and above 4 GiB and at the end, check them from
 * the other side (CPU or GPU), and check that their truncations, never written,
 * still read zero.
 */
#define SZ_1G		(1ull << 30)
#define SZ_4G		(4ull << 30)
#define HUGE_SIZE	(SZ_4G + SZ_1G)
/* Object offset x is bound at GPU address HUGE_VA + x. */
#define HUGE_VA		(1ull << 40)
/* A second binding of object offset 4 GiB. */
#define HUGE_VA2	(1ull << 41)

static const uint64_t huge_offs[] = { SZ_4G - 8, SZ_4G, SZ_4G + SZ_1M + 8, HUGE_SIZE - 8 };

static void require_huge(void)
{
	igt_require_f(hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_GEM_MAX_SIZE) >= HUGE_SIZE,
		      "objects of 5 GiB are refused\n");
}

/* What is written at object offset @off; never zero, different at each offset. */
static uint64_t huge_value(uint64_t off, uint64_t seed)
{
	return (0x5a5a000000000000ull | off) ^ (seed << 40);
}

/* What HMMGPU_CMD_CHECKSUM computes of the 64-bit word @v. */
static uint64_t word_sum(uint64_t v)
{
	return (uint64_t)(uint32_t)v + (v >> 32);
}

/* The GPU's checksum of the 64-bit word at @va, which must be readable. */
static uint64_t gpu_word_sum(struct ctx *c, uint64_t va)
{
	uint64_t sum = 0;

	igt_assert_eq(gpu_checksum(c, va, 8, &sum), 0);
	return sum;
}

/* The offsets of an object where 32-bit truncations of huge_offs[] land. */
static uint64_t huge_alias(uint64_t off)
{
	return off & 0xffffffffull;
}

static void huge_bind(struct ctx *c, uint32_t handle, uint64_t off, uint64_t size)
{
	hmmgpu_vm_map(c->fd, c->vm, handle, 0, HUGE_VA + off, size, off);
}

/*
 * A 5 GiB userptr of memory mapped with MAP_NORESERVE, never populated whole.
 * In fault mode it is bound whole (the GPU faults in only what it touches);
 * prefault and pinned modes would make all of it resident at bind or
 * submission, more than the guest has, so there windows of it are bound: its
 * first 2 MiB, the 2 MiB below 1 GiB, the 4 MiB around 4 GiB and its last
 * 2 MiB, each at HUGE_VA plus its offset.
 */
static void test_huge_userptr(uint32_t mode)
{
	const unsigned int n = ARRAY_SIZE(huge_offs);
	uint32_t uptr;
	struct ctx c;
	char *ptr;

	require_huge();
	ctx_init(&c, mode, page);
	ptr = mmap(NULL, HUGE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	igt_assert(ptr != MAP_FAILED);
	uptr = hmmgpu_userptr_create(c.fd, ptr, HUGE_SIZE, 0);
	if (mode == DRM_HMMGPU_VM_MODE_FAULT) {
		huge_bind(&c, uptr, 0, HUGE_SIZE);
	} else {
		huge_bind(&c, uptr, 0, SZ_2M);
		huge_bind(&c, uptr, SZ_1G - SZ_2M, SZ_2M);
		huge_bind(&c, uptr, SZ_4G - SZ_2M, SZ_4M);
		huge_bind(&c, uptr, HUGE_SIZE - SZ_2M, SZ_2M);
	}

	/* The GPU writes, the CPU reads. */
	for (unsigned int i = 0; i < n; i++)
		igt_assert_eq(gpu_write64(&c, HUGE_VA + huge_offs[i], huge_value(huge_offs[i], 1)),
			      0);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t off = huge_offs[i];

		igt_assert_eq_u64(*(volatile uint64_t *)(ptr + off), huge_value(off, 1));
		if (off >= SZ_4G)
			igt_assert_eq_u64(*(volatile uint64_t *)(ptr + huge_alias(off)), 0);
	}

	/* The CPU writes, the GPU reads. */
	for (unsigned int i = 0; i < n; i++)
		*(volatile uint64_t *)(ptr + huge_offs[i]) = huge_value(huge_offs[i], 2);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t off = huge_offs[i];

		igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA + off), word_sum(huge_value(off, 2)));
		if (off >= SZ_4G)
			igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA + huge_alias(off)), 0);
	}
	/* Each went where it was meant to, and nowhere else. */
	for (unsigned int i = 0; i < n; i++)
		if (huge_offs[i] >= SZ_4G)
			igt_assert_eq_u64(*(volatile uint64_t *)(ptr + huge_alias(huge_offs[i])), 0);

	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, HUGE_SIZE), 0);
	ctx_fini(&c);
}

/*
 * A 5 GiB GEM object, more than the guest's memory: it is created, has an mmap
 * offset, and windows of it are bound, which make only their own pages
 * resident (its shmem pages grow by the windows' 10 MiB, not 5 GiB). The GPU
 * writes past 4 GiB and reads it back through another binding of the same
 * offset; a split of the window past 4 GiB keeps each side on its pages.
 */
static void test_huge_gem(uint32_t mode)
{
	const unsigned int n = ARRAY_SIZE(huge_offs);
	const uint64_t split = SZ_4G - SZ_1M;
	long shmem_before, shmem_bound;
	uint64_t offset;
	struct ctx c;
	uint32_t bo;

	require_huge();
	ctx_init(&c, mode, page);
	shmem_before = meminfo_kb("Shmem");
	bo = hmmgpu_gem_create(c.fd, HUGE_SIZE);
	offset = hmmgpu_gem_mmap_offset(c.fd, bo);
	igt_assert_eq_u64(offset % page, 0);

	huge_bind(&c, bo, 0, SZ_2M);
	huge_bind(&c, bo, SZ_1G - SZ_2M, SZ_2M);
	huge_bind(&c, bo, SZ_4G - SZ_2M, SZ_4M);
	huge_bind(&c, bo, HUGE_SIZE - SZ_2M, SZ_2M);
	hmmgpu_vm_map(c.fd, c.vm, bo, 0, HUGE_VA2, SZ_2M, SZ_4G);
	shmem_bound = meminfo_kb("Shmem");
	igt_info("shmem: %ld KiB before, %ld KiB with 12 MiB of a 5 GiB object bound\n",
		 shmem_before, shmem_bound);
	igt_assert_f(shmem_bound - shmem_before < 64 * 1024,
		     "binding 12 MiB of the object made %ld KiB resident\n",
		     shmem_bound - shmem_before);

	for (unsigned int i = 0; i < n; i++)
		igt_assert_eq(gpu_write64(&c, HUGE_VA + huge_offs[i], huge_value(huge_offs[i], 3)),
			      0);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t off = huge_offs[i];

		igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA + off), word_sum(huge_value(off, 3)));
		if (off >= SZ_4G)
			igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA + huge_alias(off)), 0);
	}
	/* The other binding of offset 4 GiB reaches the same pages. */
	igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA2), word_sum(huge_value(SZ_4G, 3)));
	igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA2 + SZ_1M + 8),
			  word_sum(huge_value(SZ_4G + SZ_1M + 8, 3)));
	igt_assert_eq(gpu_write64(&c, HUGE_VA2 + 16, huge_value(16, 4)), 0);
	igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA + SZ_4G + 16), word_sum(huge_value(16, 4)));

	/* Unbinding [4 GiB - 1 MiB, 4 GiB) splits the window there. */
	hmmgpu_vm_unmap(c.fd, c.vm, HUGE_VA + split, SZ_1M);
	igt_assert_eq(gpu_write64(&c, HUGE_VA + SZ_4G - 8, 1), -EFAULT);
	igt_assert_eq(gpu_write64(&c, HUGE_VA + SZ_4G + 24, huge_value(24, 5)), 0);
	igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA2 + 24), word_sum(huge_value(24, 5)));
	igt_assert_eq(gpu_write64(&c, HUGE_VA + split - 8, huge_value(split - 8, 5)), 0);
	igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA + split - 8), word_sum(huge_value(split - 8, 5)));
	igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA + huge_alias(SZ_4G) + 24), 0);

	/* Windows that wrap, or end past the object, by 4 GiB or by a page. */
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, bo, 0, HUGE_VA2 + SZ_4M,
				       SZ_2M, HUGE_SIZE - SZ_1M), -EINVAL);
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, bo, 0, HUGE_VA2 + SZ_4M,
				       page, HUGE_SIZE + SZ_4G), -EINVAL);
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, bo, 0, HUGE_VA2 + SZ_4M,
				       HUGE_SIZE + page, 0), -EINVAL);
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, bo, 0, HUGE_VA2 + SZ_4M,
				       2 * page, ~0ull & ~(uint64_t)(page - 1)), -EINVAL);
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, bo, 0, HUGE_VA2 + SZ_4M,
				       page, 1ull << 44), -EINVAL);

	gem_close(c.fd, bo);
	ctx_fini(&c);
}

/*
 * Where less than 5 GiB of memory is available, a CPU mapping of a 5 GiB GEM
 * object (of its offset, or of a dma-buf exported from it) and a binding of
 * all of it would make more pages resident than there is memory for: each
 * fails with -ENOMEM at once, having allocated nothing (shmem does not grow),
 * rather than take the guest's memory and call the OOM killer on bystanders.
 * A window of it still binds, and the GPU writes it.
 */
static void test_huge_gem_no_room(void)
{
	const struct hmmgpu_vm_mode *m;
	long shmem_before, shmem_after;
	struct ctx c;
	uint32_t bo;
	int dmabuf;
	void *ptr;

	require_huge();
	igt_require_f(meminfo_kb("MemAvailable") < (long)(HUGE_SIZE >> 10),
		      "5 GiB fits in the available memory\n");
	ctx_init(&c, vm_modes & DRM_HMMGPU_VM_MODE_FAULT ? DRM_HMMGPU_VM_MODE_FAULT :
		 DRM_HMMGPU_VM_MODE_PREFAULT, page);
	shmem_before = meminfo_kb("Shmem");
	bo = hmmgpu_gem_create(c.fd, HUGE_SIZE);

	ptr = mmap(NULL, page, PROT_READ, MAP_SHARED, c.fd, hmmgpu_gem_mmap_offset(c.fd, bo));
	igt_assert_f(ptr == MAP_FAILED && errno == ENOMEM,
		     "mmap of the object: %s\n", ptr == MAP_FAILED ? strerror(errno) : "mapped");
	igt_assert_eq(drmPrimeHandleToFD(c.fd, bo, DRM_CLOEXEC, &dmabuf), 0);
	ptr = mmap(NULL, page, PROT_READ, MAP_SHARED, dmabuf, 0);
	igt_assert_f(ptr == MAP_FAILED && errno == ENOMEM,
		     "mmap of its dma-buf: %s\n", ptr == MAP_FAILED ? strerror(errno) : "mapped");
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, bo, 0, HUGE_VA,
				       HUGE_SIZE, 0), -ENOMEM);
	/* Binding a GEM object is the same in every mode: so is the refusal. */
	for_each_hmmgpu_vm_mode(c.fd, m) {
		uint32_t vm = hmmgpu_vm_create(c.fd, m->flags);

		igt_assert_eq(__hmmgpu_vm_bind(c.fd, vm, DRM_HMMGPU_VM_BIND_MAP, bo, 0, HUGE_VA,
					       HUGE_SIZE, 0), -ENOMEM);
		hmmgpu_vm_destroy(c.fd, vm);
	}
	shmem_after = meminfo_kb("Shmem");
	igt_info("shmem: %ld KiB before, %ld KiB after\n", shmem_before, shmem_after);
	igt_assert_f(shmem_after - shmem_before < 64 * 1024,
		     "the refused calls made %ld KiB resident\n", shmem_after - shmem_before);

	huge_bind(&c, bo, HUGE_SIZE - SZ_2M, SZ_2M);
	igt_assert_eq(gpu_write64(&c, HUGE_VA + HUGE_SIZE - 8, huge_value(HUGE_SIZE - 8, 8)), 0);
	igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA + HUGE_SIZE - 8),
			  word_sum(huge_value(HUGE_SIZE - 8, 8)));

	close(dmabuf);
	gem_close(c.fd, bo);
	ctx_fini(&c);
}

/*
 * The room a binding needs is counted in its own window: pages of the object
 * resident in another window do not make room for it. With 256 MiB of a 5 GiB
 * object bound, a second window, disjoint and 128 MiB larger than the memory
 * then available, fails with -ENOMEM at once, having allocated nothing, in
 * every mode; the first window still works.
 */
static void test_huge_gem_no_room_window(void)
{
	const uint64_t first = 256 * SZ_1M;
	const struct hmmgpu_vm_mode *m;
	long shmem_before, shmem_after;
	uint64_t second;
	struct ctx c;
	uint32_t bo;

	require_huge();
	ctx_init(&c, vm_modes & DRM_HMMGPU_VM_MODE_FAULT ? DRM_HMMGPU_VM_MODE_FAULT :
		 DRM_HMMGPU_VM_MODE_PREFAULT, page);
	bo = hmmgpu_gem_create(c.fd, HUGE_SIZE);
	huge_bind(&c, bo, 0, first);
	igt_assert_eq(gpu_write64(&c, HUGE_VA + first - 8, huge_value(first - 8, 9)), 0);

	second = ((((uint64_t)meminfo_kb("MemAvailable") << 10) + 128 * SZ_1M) + SZ_2M - 1) &
		 ~(SZ_2M - 1);
	igt_require_f(first + second <= HUGE_SIZE, "%" PRIu64 " MiB available\n",
		      (second >> 20) - 128);
	shmem_before = meminfo_kb("Shmem");
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, bo, 0,
				       HUGE_VA + first, second, first), -ENOMEM);
	/* Binding a GEM object is the same in every mode: so is the refusal. */
	for_each_hmmgpu_vm_mode(c.fd, m) {
		uint32_t vm = hmmgpu_vm_create(c.fd, m->flags);

		igt_assert_eq(__hmmgpu_vm_bind(c.fd, vm, DRM_HMMGPU_VM_BIND_MAP, bo, 0,
					       HUGE_VA + first, second, first), -ENOMEM);
		hmmgpu_vm_destroy(c.fd, vm);
	}
	shmem_after = meminfo_kb("Shmem");
	igt_info("shmem: %ld KiB before, %ld KiB after\n", shmem_before, shmem_after);
	igt_assert_f(shmem_after - shmem_before < 64 * 1024,
		     "the refused bind made %ld KiB resident\n", shmem_after - shmem_before);

	igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA + first - 8),
			  word_sum(huge_value(first - 8, 9)));
	gem_close(c.fd, bo);
	ctx_fini(&c);
}

/*
 * The CPU maps a 5 GiB GEM object, writes past 4 GiB and reads it back, and
 * the GPU, through a window bound at offset 4 GiB, reads what it wrote. A CPU
 * mapping makes the whole object resident: only where memory allows.
 */
static void test_huge_gem_mmap(void)
{
	const unsigned int n = ARRAY_SIZE(huge_offs);
	struct ctx c;
	uint32_t bo;
	char *ptr;

	require_huge();
	igt_require_f(meminfo_kb("MemAvailable") > (long)((HUGE_SIZE + SZ_1G) >> 10),
		      "mapping 5 GiB needs 6 GiB of available memory\n");
	ctx_init(&c, vm_modes & DRM_HMMGPU_VM_MODE_FAULT ? DRM_HMMGPU_VM_MODE_FAULT :
		 DRM_HMMGPU_VM_MODE_PREFAULT, page);
	bo = hmmgpu_gem_create(c.fd, HUGE_SIZE);
	ptr = hmmgpu_gem_mmap(c.fd, bo, HUGE_SIZE, PROT_READ | PROT_WRITE);
	for (unsigned int i = 0; i < n; i++)
		*(volatile uint64_t *)(ptr + huge_offs[i]) = huge_value(huge_offs[i], 6);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t off = huge_offs[i];

		igt_assert_eq_u64(*(volatile uint64_t *)(ptr + off), huge_value(off, 6));
		if (off >= SZ_4G)
			igt_assert_eq_u64(*(volatile uint64_t *)(ptr + huge_alias(off)), 0);
	}
	huge_bind(&c, bo, SZ_4G - SZ_2M, SZ_4M);
	huge_bind(&c, bo, HUGE_SIZE - SZ_2M, SZ_2M);
	for (unsigned int i = 0; i < n; i++)
		igt_assert_eq_u64(gpu_word_sum(&c, HUGE_VA + huge_offs[i]),
				  word_sum(huge_value(huge_offs[i], 6)));
	igt_assert_eq(gpu_write64(&c, HUGE_VA + SZ_4G + 32, huge_value(32, 7)), 0);
	igt_assert_eq_u64(*(volatile uint64_t *)(ptr + SZ_4G + 32), huge_value(32, 7));
	igt_assert_eq_u64(*(volatile uint64_t *)(ptr + 32), 0);

	igt_assert_eq(munmap(ptr, HUGE_SIZE), 0);
	gem_close(c.fd, bo);
	ctx_fini(&c);
}

/*
 * Sizes and offsets that a 32-bit truncation would turn into valid ones, or
 * that wrap 64 bits, are refused with -EINVAL; sizes past 4 GiB up to the
 * limit are accepted.
 */
static void test_huge_args(void)
{
	uint64_t max = hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_GEM_MAX_SIZE);
	struct drm_hmmgpu_cmd cmd;
	uint32_t handle, uptr;
	struct ctx c;
	char *ptr;

	require_huge();
	ctx_init(&c, vm_modes & DRM_HMMGPU_VM_MODE_FAULT ? DRM_HMMGPU_VM_MODE_FAULT :
		 DRM_HMMGPU_VM_MODE_PREFAULT, page);

	/* GEM objects of 4 GiB and a page, and of the limit; not past it. */
	igt_assert_eq(__hmmgpu_gem_create(c.fd, SZ_4G + page, 0, &handle), 0);
	gem_close(c.fd, handle);
	igt_assert_eq(__hmmgpu_gem_create(c.fd, max, 0, &handle), 0);
	gem_close(c.fd, handle);
	igt_assert_eq(__hmmgpu_gem_create(c.fd, max + page, 0, &handle), -EINVAL);
	igt_assert_eq(__hmmgpu_gem_create(c.fd, (1ull << 63) + page, 0, &handle), -EINVAL);

	/* A userptr of one page: 4 GiB more, and offsets past it by 4 GiB, do not fit. */
	ptr = map_pages(PAGES);
	igt_assert_eq(userptr((uintptr_t)ptr, max + page, 0), -EINVAL);
	uptr = hmmgpu_userptr_create(c.fd, ptr, page, 0);
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, uptr, 0, HUGE_VA,
				       SZ_4G + page, 0), -EINVAL);
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, uptr, 0, HUGE_VA,
				       page, SZ_4G), -EINVAL);
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, uptr, 0, HUGE_VA,
				       page, ~0ull & ~(uint64_t)(page - 1)), -EINVAL);
	/* A GPU range that wraps 64 bits, or ends past the 48-bit address space. */
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, uptr, 0,
				       ~0ull & ~(uint64_t)(page - 1), page, 0), -EINVAL);
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, uptr, 0,
				       VA_LIMIT + SZ_4G, page, 0), -EINVAL);
	igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_UNMAP, 0, 0,
				       ~0ull & ~(uint64_t)(page - 1), 2 * page, 0), -EINVAL);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, PAGES * page), 0);

	/* Commands 4 GiB and 4 bytes long: 4 bytes once truncated. */
	hmmgpu_cmd_fill(&cmd, c.res_va, SZ_4G + 4, 1);
	igt_assert_eq(__hmmgpu_exec_wait(c.fd, c.vm, &cmd, 1, 0, NULL), -EINVAL);
	hmmgpu_cmd_checksum(&cmd, c.res_va, c.res_va, SZ_4G + 8);
	igt_assert_eq(__hmmgpu_exec_wait(c.fd, c.vm, &cmd, 1, 0, NULL), -EINVAL);
	hmmgpu_cmd_copy(&cmd, ~0ull & ~7ull, c.res_va, 16);
	igt_assert_eq(__hmmgpu_exec_wait(c.fd, c.vm, &cmd, 1, 0, NULL), -EINVAL);
	ctx_fini(&c);
}

static void test_pinned_balance(void)
{
	const uint64_t size = SZ_4M, pages = size / page, gone = SZ_1M;
	uint64_t acquired0 = 0, released0 = 0, acquired = 0, released = 0;
	struct drm_hmmgpu_vm_stats stats;
	struct drm_hmmgpu_cmd cmd;
	char what[32];
	uint32_t uptr;
	struct ctx c;
	char *ptr;
	int err;

	require_vm();
	igt_require_f(vm_modes & DRM_HMMGPU_VM_MODE_PINNED, "no pinned mode\n");
	igt_require_f(hmmgpu_read_pin_counters(&acquired0, &released0),
		      "no exact nr_foll_pin_* counters in /proc/vmstat\n");

	for (int round = 0; round < 2; round++) {
		igt_assert(hmmgpu_read_pin_counters(&acquired0, &released0));

		ctx_init(&c, DRM_HMMGPU_VM_MODE_PINNED, 0);
		ptr = map_anon(size, MAP_PRIVATE);
		igt_assert_eq(madvise(ptr, size, MADV_NOHUGEPAGE), 0);
		hmmgpu_fill_pattern(ptr, size, 1);
		uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);

		vm_stats(&c, &stats);
		igt_assert_eq_u64(stats.pinned_pages, 0);
		hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
		vm_stats(&c, &stats);
		igt_assert_eq_u64(stats.pinned_pages, pages);

		/* The checksum goes to the first word of the memory itself. */
		hmmgpu_cmd_checksum(&cmd, USERPTR_VA, USERPTR_VA + page, size - 2 * page);
		igt_assert_eq(hmmgpu_exec_job(c.fd, c.vm, &cmd, 1, 0), 0);
		igt_assert_eq_u64(*(uint64_t *)ptr, cpu_checksum(ptr + page, size - 2 * page));
		vm_stats(&c, &stats);
		igt_assert_eq_u64(stats.pinned_pages, pages);

		igt_assert(hmmgpu_read_pin_counters(&acquired, &released));
		igt_assert_lte_u64(acquired0 + pages, acquired);

		/*
		 * The end of the memory goes: its pins go with it, released by a
		 * worker shortly after the invalidation (not inside it).
		 */
		igt_assert_eq(munmap(ptr + size - gone, gone), 0);
		for (int tries = 0; tries < 100; tries++) {
			vm_stats(&c, &stats);
			if (stats.pinned_pages <= (size - gone) / page)
				break;
			usleep(10000);
		}
		igt_assert_lte_u64(stats.pinned_pages, (size - gone) / page);
		hmmgpu_cmd_checksum(&cmd, USERPTR_VA, USERPTR_VA + page, size - gone - page);
		err = hmmgpu_exec_job(c.fd, c.vm, &cmd, 1, 0);
		igt_info("a job on the memory still mapped: %d, %llu pages pinned\n",
			 err, (unsigned long long)stats.pinned_pages);
		igt_assert_f(err == 0 || err == -EFAULT, "job error %d\n", err);
		if (!err)
			igt_assert_eq_u64(*(uint64_t *)ptr,
					  cpu_checksum(ptr + page, size - gone - page));
		vm_stats(&c, &stats);
		igt_assert_lte_u64(stats.pinned_pages, (size - gone) / page);

		if (round == 0) {
			/* Destroy everything, one by one. */
			hmmgpu_vm_destroy(c.fd, c.vm);
			gem_close(c.fd, uptr);
			forget_fd(c.fd);
			drm_close_driver(c.fd);
		} else {
			/* Just close the file, with the VM and its mappings in place. */
			forget_fd(c.fd);
			drm_close_driver(c.fd);
		}
		igt_assert_eq(munmap(ptr, size - gone), 0);

		/* Unpinning may trail the close a little. */
		snprintf(what, sizeof(what), "round %d", round);
		acquired = hmmgpu_assert_pins_balanced(acquired0, released0, what);
		igt_assert_lte_u64(pages, acquired);
	}
}

/* VM_STATS pinned_pages once it reads @expected, or what it reads after 5 s. */
static uint64_t pinned_pages_settled(struct ctx *c, uint64_t expected)
{
	/* Pins an invalidation drops are released a little later, by a worker. */
	return hmmgpu_vm_pinned_pages_settled(c->fd, c->vm, expected);
}

/* Reads @size bytes at @off of file @file_fd into @buf, asserting they all came. */
static void read_at(int file_fd, void *buf, uint64_t size, uint64_t off)
{
	igt_assert_eq(pread(file_fd, buf, size, off), (ssize_t)size);
}

static void write_at(int file_fd, const void *buf, uint64_t size, uint64_t off)
{
	igt_assert_eq(pwrite(file_fd, buf, size, off), (ssize_t)size);
}

static char *map_file(int file_fd, uint64_t size, int flags)
{
	char *ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, file_fd, 0);

	igt_assert_f(ptr != MAP_FAILED, "mmap of %" PRIu64 " bytes of fd %d failed: %s\n",
		     size, file_fd, strerror(errno));
	return ptr;
}

/*
 * A memfd mapped twice, MAP_SHARED, with a userptr of each mapping: what the
 * CPU writes through either mapping or with pwrite reaches the GPU through
 * both, and what the GPU writes through either is seen by the other mapping,
 * the other GPU mapping and pread. A hole punched in the file reads as zeros
 * (never the pages that were there); truncating the file takes its pages away
 * (-EFAULT) until it grows again, with new zero pages.
 */
static void test_memfd_rw(uint32_t mode)
{
	const uint64_t size = 16 * page, half = size / 2;
	const uint64_t va_a = USERPTR_VA, va_b = USERPTR_VA + VA_STRIDE;
	uint32_t ua, ub;
	char *a, *b, *buf;
	uint64_t sum = 0;
	struct ctx c;
	int mfd;

	mfd = memfd_create("hmmgpu_userptr", MFD_CLOEXEC);
	igt_assert_f(mfd >= 0, "memfd_create: %s\n", strerror(errno));
	igt_assert_eq(ftruncate(mfd, size), 0);
	a = map_file(mfd, size, MAP_SHARED);
	b = map_file(mfd, size, MAP_SHARED);
	igt_assert(a != b);
	buf = calloc(1, size);
	igt_assert(buf);

	ctx_init(&c, mode, size);
	hmmgpu_fill_pattern(a, size, 1);
	ua = hmmgpu_userptr_create(c.fd, a, size, 0);
	ub = hmmgpu_userptr_create(c.fd, b, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, ua, 0, va_a, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, ub, 0, va_b, size, 0);

	/* CPU writes through one mapping: the GPU reads them through both. */
	check_gpu_view(&c, va_a, b, size, "memfd through the first mapping");
	hmmgpu_check_pattern(c.bo_ptr, size, 1);
	check_gpu_view(&c, va_b, a, size, "memfd through the second mapping");
	hmmgpu_check_pattern(c.bo_ptr, size, 1);

	/* pwrite() to pages the GPU has mirrored: the next job sees it. */
	hmmgpu_fill_pattern(buf, size, 2);
	write_at(mfd, buf, size, 0);
	check_gpu_view(&c, va_a, buf, size, "memfd after pwrite");
	igt_assert_eq(gpu_checksum(&c, va_b, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(buf, size));

	/* GPU writes through one mapping: the other mappings and pread() see them. */
	igt_assert_eq(gpu_fill(&c, va_a + 3 * page, page, 0x3e3e3e3e), 0);
	check_value(b + 3 * page, page, 0x3e3e3e3e);
	memset(buf, 0, size);
	read_at(mfd, buf, page, 3 * page);
	check_value(buf, page, 0x3e3e3e3e);
	hmmgpu_fill_pattern(c.bo_ptr, size, 3);
	igt_assert_eq(gpu_copy(&c, va_b, BO_VA, size), 0);
	hmmgpu_check_pattern(a, size, 3);
	memset(buf, 0, size);
	read_at(mfd, buf, size, 0);
	hmmgpu_check_pattern(buf, size, 3);
	check_gpu_view(&c, va_a, buf, size, "memfd after a GPU write through the other mapping");

	/* A hole punched in the middle: zeros there, through both GPU mappings. */
	igt_assert_eq(fallocate(mfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4 * page,
				4 * page), 0);
	memset(buf + 4 * page, 0, 4 * page);
	igt_assert_eq(gpu_checksum(&c, va_b + 4 * page, 4 * page, &sum), 0);
	igt_assert_eq_u64(sum, 0);
	check_gpu_view(&c, va_a, buf, size, "memfd after punching a hole");
	/* And GPU writes into the hole reach the file. */
	igt_assert_eq(gpu_write64(&c, va_a + 5 * page + 8, 0x1badcafe2badcafeull), 0);
	*(uint64_t *)(buf + 5 * page + 8) = 0x1badcafe2badcafeull;
	check_same(b, buf, size, "memfd after a GPU write into the hole");
	memset(buf, 0, size);
	read_at(mfd, buf, size, 0);
	check_same(buf, a, size, "pread after a GPU write into the hole");

	/* Truncated to half: the half gone faults, in every mode. */
	igt_assert_eq(ftruncate(mfd, half), 0);
	igt_assert_eq(gpu_checksum(&c, va_a + half, half, &sum), -EFAULT);
	igt_assert_eq(gpu_write64(&c, va_b + size - 8, 1), -EFAULT);
	igt_assert_eq(gpu_copy(&c, BO_VA, va_a + half, page), -EFAULT);
	/*
	 * The half still in the file: fault mode mirrors page by page; prefault
	 * and pinned modes mirror a mapping whole or not at all.
	 */
	if (mode == DRM_HMMGPU_VM_MODE_FAULT) {
		igt_assert_eq(gpu_checksum(&c, va_a, half, &sum), 0);
		igt_assert_eq_u64(sum, cpu_checksum(buf, half));
		igt_assert_eq(gpu_fill(&c, va_b + page, page, 0x44444444), 0);
		memset(buf + page, 0x44, page);
		check_same(a, buf, half, "the memfd's half left after a GPU write");
	} else {
		igt_assert_eq(gpu_checksum(&c, va_a, half, &sum), -EFAULT);
		igt_assert_eq(gpu_fill(&c, va_b + page, page, 0x44444444), -EFAULT);
		check_same(a, buf, half, "the memfd's half left after a refused GPU write");
	}

	/* Grown back: the end is new zero pages, the front kept its data. */
	igt_assert_eq(ftruncate(mfd, size), 0);
	igt_assert_eq(gpu_checksum(&c, va_a + half, half, &sum), 0);
	igt_assert_eq_u64(sum, 0);
	memset(buf + half, 0, half);
	check_gpu_view(&c, va_b, buf, size, "memfd grown back");
	check_same(a, buf, size, "the memfd grown back");
	igt_assert_eq(gpu_fill(&c, va_a + size - page, page, 0x66666666), 0);
	check_value(b + size - page, page, 0x66666666);

	hmmgpu_vm_unmap(c.fd, c.vm, va_a, size);
	hmmgpu_vm_unmap(c.fd, c.vm, va_b, size);
	gem_close(c.fd, ua);
	gem_close(c.fd, ub);
	ctx_fini(&c);
	igt_assert_eq(munmap(a, size), 0);
	igt_assert_eq(munmap(b, size), 0);
	close(mfd);
	free(buf);
}

/* Whether /tmp keeps its files in memory (tmpfs or ramfs). */
static bool tmp_in_memory(void)
{
	struct statfs st;

	if (statfs("/tmp", &st))
		return false;
	igt_debug("/tmp: f_type %#lx\n", (unsigned long)st.f_type);
	return st.f_type == TMPFS_MAGIC || st.f_type == RAMFS_MAGIC;
}

/* A new, unlinked file of @size bytes in /tmp. */
static int tmp_file(uint64_t size)
{
	char name[] = "/tmp/hmmgpu_userptr.XXXXXX";
	int file_fd = mkstemp(name);

	igt_assert_f(file_fd >= 0, "mkstemp: %s\n", strerror(errno));
	igt_assert_eq(unlink(name), 0);
	igt_assert_eq(ftruncate(file_fd, size), 0);
	return file_fd;
}

/*
 * A regular file of /tmp (tmpfs or ramfs) mapped MAP_SHARED: the GPU reads
 * what write() put there, and read() sees what the GPU wrote. Mapped
 * MAP_PRIVATE: the GPU reads the file's data, and its writes go to the
 * process's private copies, which the CPU sees, while the file stays as it
 * was.
 */
static void test_file_rw(uint32_t mode)
{
	const uint64_t size = 16 * page;
	const uint64_t va_shared = USERPTR_VA, va_priv = USERPTR_VA + VA_STRIDE;
	uint32_t ushared, upriv;
	char *shared, *priv, *buf;
	uint64_t sum = 0;
	struct ctx c;
	int file_fd;

	igt_require_f(tmp_in_memory(), "/tmp is neither tmpfs nor ramfs\n");

	file_fd = tmp_file(size);
	buf = calloc(1, size);
	igt_assert(buf);
	hmmgpu_fill_pattern(buf, size, 1);
	write_at(file_fd, buf, size, 0);

	ctx_init(&c, mode, size);

	igt_debug("MAP_SHARED\n");
	shared = map_file(file_fd, size, MAP_SHARED);
	ushared = hmmgpu_userptr_create(c.fd, shared, size, 0);
	/*
	 * Pinned mode pins the file's pages with FOLL_LONGTERM | FOLL_WRITE at
	 * bind: the core MM allows that on shmem/tmpfs (and ramfs), whose pages
	 * are never written back.
	 */
	hmmgpu_vm_map(c.fd, c.vm, ushared, 0, va_shared, size, 0);
	check_gpu_view(&c, va_shared, buf, size, "a shared file mapping");
	hmmgpu_check_pattern(c.bo_ptr, size, 1);

	/* GPU writes reach the file: read() sees them. */
	hmmgpu_fill_pattern(c.bo_ptr, size, 2);
	igt_assert_eq(gpu_copy(&c, va_shared, BO_VA, size), 0);
	memset(buf, 0, size);
	read_at(file_fd, buf, size, 0);
	hmmgpu_check_pattern(buf, size, 2);
	igt_assert_eq(gpu_fill(&c, va_shared + 2 * page, page, 0x2f2f2f2f), 0);
	read_at(file_fd, buf, size, 0);
	check_value(buf + 2 * page, page, 0x2f2f2f2f);
	hmmgpu_check_pattern_at(buf, 0, 2 * page, 2);
	hmmgpu_check_pattern_at(buf, 3 * page, size - 3 * page, 2);
	check_same(shared, buf, size, "the shared mapping after GPU writes");

	/* write() to pages the GPU has mirrored: the next job sees it. */
	hmmgpu_fill_pattern(buf, size, 3);
	write_at(file_fd, buf + 4 * page, 4 * page, 4 * page);
	igt_assert_eq(gpu_checksum(&c, va_shared + 4 * page, 4 * page, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(buf + 4 * page, 4 * page));
	check_gpu_view(&c, va_shared, shared, size, "a shared file mapping after write()");
	hmmgpu_check_pattern_at(c.bo_ptr, 4 * page, 4 * page, 3);

	igt_debug("MAP_PRIVATE\n");
	hmmgpu_fill_pattern(buf, size, 4);
	write_at(file_fd, buf, size, 0);
	priv = map_file(file_fd, size, MAP_PRIVATE);
	upriv = hmmgpu_userptr_create(c.fd, priv, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, upriv, 0, va_priv, size, 0);
	check_gpu_view(&c, va_priv, buf, size, "a private file mapping");
	hmmgpu_check_pattern(c.bo_ptr, size, 4);

	/* GPU writes land in the private copy: the CPU sees them, the file does not. */
	igt_assert_eq(gpu_fill(&c, va_priv + page, page, 0x4c4c4c4c), 0);
	check_value(priv + page, page, 0x4c4c4c4c);
	hmmgpu_check_pattern_at(priv, 0, page, 4);
	hmmgpu_check_pattern_at(priv, 2 * page, size - 2 * page, 4);
	hmmgpu_fill_pattern(c.bo_ptr, size, 5);
	igt_assert_eq(gpu_copy(&c, va_priv, BO_VA, size), 0);
	hmmgpu_check_pattern(priv, size, 5);
	memset(buf, 0, size);
	read_at(file_fd, buf, size, 0);
	hmmgpu_check_pattern(buf, size, 4);
	hmmgpu_check_pattern(shared, size, 4);
	check_gpu_view(&c, va_shared, shared, size, "the shared mapping beside a private one");

	/*
	 * The file written again: the private mapping's pages are copies by
	 * now, and the GPU reads what the CPU reads there.
	 */
	hmmgpu_fill_pattern(buf, size, 6);
	write_at(file_fd, buf, size, 0);
	hmmgpu_check_pattern(priv, size, 5);
	check_gpu_view(&c, va_priv, priv, size, "a private file mapping after write()");
	check_gpu_view(&c, va_shared, buf, size, "a shared file mapping after write()");

	hmmgpu_vm_unmap(c.fd, c.vm, va_shared, size);
	hmmgpu_vm_unmap(c.fd, c.vm, va_priv, size);
	gem_close(c.fd, ushared);
	gem_close(c.fd, upriv);
	ctx_fini(&c);
	igt_assert_eq(munmap(shared, size), 0);
	igt_assert_eq(munmap(priv, size), 0);
	close(file_fd);
	free(buf);
}

#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"
#define NR_OVERCOMMIT_HUGEPAGES "/proc/sys/vm/nr_overcommit_hugepages"

static long read_nr_hugepages(void)
{
	return hmmgpu_read_long(NR_HUGEPAGES);
}

static bool write_nr_hugepages(long nr)
{
	return hmmgpu_write_long(NR_HUGEPAGES, nr);
}

static char *mmap_hugetlb(uint64_t size)
{
	char *ptr = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT), -1, 0);

	errno = 0;
	return ptr == MAP_FAILED ? NULL : ptr;
}

/*
 * @size bytes of 2 MiB hugetlb pages, private and anonymous; skips without
 * them. The guest reserves huge pages before the tests; where it did not,
 * this asks for 4, and *@restore_nr is the count to put back (else -1).
 */
static char *hugetlb_alloc(uint64_t size, long *restore_nr)
{
	char *ptr = mmap_hugetlb(size);
	long nr;

	*restore_nr = -1;
	if (!ptr) {
		nr = read_nr_hugepages();
		igt_info("no free huge page (nr_hugepages %ld): asking for 4\n", nr);
		if (nr >= 0 && nr < 4 && write_nr_hugepages(4)) {
			*restore_nr = nr;
			ptr = mmap_hugetlb(size);
			if (!ptr) {
				write_nr_hugepages(nr);
				*restore_nr = -1;
			}
		}
	}
	igt_require_f(ptr, "no 2 MiB hugetlb pages (nr_hugepages %ld)\n", read_nr_hugepages());
	return ptr;
}

/*
 * hugetlb memory (MAP_HUGETLB, 2 MiB pages) at a 2 MiB-aligned GPU address:
 * GPU reads and writes are right, at every offset inside the huge page, and
 * the VM maps it with 2 MiB entries (2 MiB faults in fault mode).
 */
static void test_hugetlb_rw(uint32_t mode)
{
	const uint64_t offs[] = { 8, 0x1238, SZ_1M + 0x4560, SZ_2M - 8 };
	struct drm_hmmgpu_vm_stats s0, s1;
	long restore_nr, overcommit;
	uint64_t *q, sum = 0;
	uint32_t uptr;
	struct ctx c;
	char *ptr;

	/*
	 * A long-term pin migrates a huge page out of the movable zone or a
	 * CMA area first, to a huge page the pool may not have free: let it
	 * allocate one beyond the pool.
	 */
	ptr = hugetlb_alloc(SZ_2M, &restore_nr);
	overcommit = hmmgpu_read_long(NR_OVERCOMMIT_HUGEPAGES);
	if (mode == DRM_HMMGPU_VM_MODE_PINNED && overcommit >= 0 && overcommit < 2)
		hmmgpu_write_long(NR_OVERCOMMIT_HUGEPAGES, 2);
	igt_assert_eq((uintptr_t)ptr % SZ_2M, 0);
	q = (uint64_t *)ptr;

	ctx_init(&c, mode, SZ_2M);
	vm_stats(&c, &s0);
	check_rw(&c, ptr, SZ_2M);
	vm_stats(&c, &s1);
	igt_assert_lt_u64(s0.entries_2m, s1.entries_2m);
	if (mode == DRM_HMMGPU_VM_MODE_FAULT) {
		igt_assert_lt_u64(s0.faults_2m, s1.faults_2m);
		igt_assert_lte_u64(s1.faults_2m, s1.faults);
	}

	/* Writes at offsets inside the huge page land exactly there. */
	hmmgpu_fill_pattern(ptr, SZ_2M, 7);
	uptr = hmmgpu_userptr_create(c.fd, ptr, SZ_2M, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, SZ_2M, 0);
	for (unsigned int i = 0; i < ARRAY_SIZE(offs); i++)
		igt_assert_eq(gpu_write64(&c, USERPTR_VA + offs[i], ~offs[i]), 0);
	for (unsigned int i = 0; i < ARRAY_SIZE(offs); i++) {
		igt_assert_eq_u64(q[offs[i] / 8], ~offs[i]);
		q[offs[i] / 8] = (uint64_t)hmmgpu_pattern(7, offs[i] / 4 + 1) << 32 |
				 hmmgpu_pattern(7, offs[i] / 4);
	}
	hmmgpu_check_pattern(ptr, SZ_2M, 7);
	igt_assert_eq(gpu_checksum(&c, USERPTR_VA, SZ_2M, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, SZ_2M));
	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, SZ_2M);
	gem_close(c.fd, uptr);

	ctx_fini(&c);
	igt_assert_eq(munmap(ptr, SZ_2M), 0);
	if (restore_nr >= 0)
		write_nr_hugepages(restore_nr);
	if (overcommit >= 0)
		hmmgpu_write_long(NR_OVERCOMMIT_HUGEPAGES, overcommit);
}

/*
 * mremap() moving a userptr's memory: the old range faults, a userptr of the
 * new address sees the data, and memory mapped again at the old address is
 * what the old userptr sees. With MREMAP_DONTUNMAP the old range stays
 * mapped, empty: the GPU reads zeros there and never the moved pages, which
 * the CPU then changes.
 */
static void test_mremap(uint32_t mode)
{
	const uint64_t size = 16 * page, va_new = USERPTR_VA + VA_STRIDE;
	uint32_t uptr, unew;
	char *ptr, *dst, *moved, *zeros;
	uint64_t sum = 0;
	struct ctx c;

	zeros = calloc(1, size);
	igt_assert(zeros);
	ctx_init(&c, mode, size);

	igt_debug("MREMAP_MAYMOVE | MREMAP_FIXED\n");
	ptr = map_anon(size, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, size, 1);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	check_gpu_view(&c, USERPTR_VA, ptr, size, "before mremap");

	dst = map_anon(size, MAP_PRIVATE);
	moved = mremap(ptr, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	igt_assert_f(moved == dst, "mremap: %s\n", strerror(errno));
	hmmgpu_check_pattern(dst, size, 1);

	/* The old range is gone: reads and writes fault and change nothing. */
	igt_assert_eq(gpu_checksum(&c, USERPTR_VA, size, &sum), -EFAULT);
	igt_assert_eq(gpu_write64(&c, USERPTR_VA + 8, 1), -EFAULT);
	igt_assert_eq(gpu_copy(&c, BO_VA, USERPTR_VA + size - page, page), -EFAULT);
	igt_assert_eq(gpu_fill(&c, USERPTR_VA + page, page, 0), -EFAULT);
	hmmgpu_check_pattern(dst, size, 1);

	/* A userptr of the new address sees the data, and writes reach it. */
	unew = hmmgpu_userptr_create(c.fd, dst, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, unew, 0, va_new, size, 0);
	check_gpu_view(&c, va_new, dst, size, "at the new address");
	hmmgpu_check_pattern(c.bo_ptr, size, 1);
	igt_assert_eq(gpu_fill(&c, va_new + page, page, 0x6e6e6e6e), 0);
	check_value(dst + page, page, 0x6e6e6e6e);

	/* New memory at the old address: the old userptr sees it, not the moved pages. */
	igt_assert(mmap(ptr, size, PROT_READ | PROT_WRITE,
			MAP_FIXED_NOREPLACE | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == ptr);
	igt_assert_eq(gpu_checksum(&c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, 0);
	hmmgpu_fill_pattern(ptr, size, 2);
	check_gpu_view(&c, USERPTR_VA, ptr, size, "the old address mapped again");
	hmmgpu_check_pattern(c.bo_ptr, size, 2);
	hmmgpu_check_pattern_at(dst, 0, page, 1);
	hmmgpu_check_pattern_at(dst, 2 * page, size - 2 * page, 1);

	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	hmmgpu_vm_unmap(c.fd, c.vm, va_new, size);
	gem_close(c.fd, uptr);
	gem_close(c.fd, unew);
	igt_assert_eq(munmap(ptr, size), 0);
	igt_assert_eq(munmap(dst, size), 0);

	igt_debug("MREMAP_DONTUNMAP\n");
	ptr = map_anon(size, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, size, 3);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	check_gpu_view(&c, USERPTR_VA, ptr, size, "before mremap");

	moved = mremap(ptr, size, size, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
	if (moved == MAP_FAILED) {
		int err = errno;

		errno = 0;
		hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
		gem_close(c.fd, uptr);
		ctx_fini(&c);
		igt_assert_eq(munmap(ptr, size), 0);
		free(zeros);
		igt_require_f(err != EINVAL, "no MREMAP_DONTUNMAP\n");
		igt_assert_f(0, "mremap(MREMAP_DONTUNMAP): %s\n", strerror(err));
	}
	hmmgpu_check_pattern(moved, size, 3);
	/* The CPU changes the moved pages: nothing of them may show at the old range. */
	hmmgpu_fill_pattern(moved, size, 4);

	/*
	 * The old range is empty anonymous memory: zeros. In pinned mode the
	 * pins of the moved pages were dropped, and the next job pins the new
	 * (zero) pages.
	 */
	igt_assert_eq(gpu_checksum(&c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, 0);
	check_gpu_view(&c, USERPTR_VA, zeros, size, "the old range after MREMAP_DONTUNMAP");
	if (mode == DRM_HMMGPU_VM_MODE_PINNED)
		igt_assert_eq_u64(pinned_pages_settled(&c, size / page), size / page);

	/* GPU writes land in the old range's new pages, not in the moved ones. */
	igt_assert_eq(gpu_fill(&c, USERPTR_VA + 2 * page, page, 0x7d7d7d7d), 0);
	check_value(ptr + 2 * page, page, 0x7d7d7d7d);
	check_value(ptr, 2 * page, 0);
	check_value(ptr + 3 * page, size - 3 * page, 0);
	hmmgpu_check_pattern(moved, size, 4);

	/* A userptr of the new address sees what the CPU wrote there. */
	unew = hmmgpu_userptr_create(c.fd, moved, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, unew, 0, va_new, size, 0);
	check_gpu_view(&c, va_new, moved, size, "after MREMAP_DONTUNMAP, at the new address");
	hmmgpu_check_pattern(c.bo_ptr, size, 4);

	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	hmmgpu_vm_unmap(c.fd, c.vm, va_new, size);
	gem_close(c.fd, uptr);
	gem_close(c.fd, unew);
	igt_assert_eq(munmap(ptr, size), 0);
	igt_assert_eq(munmap(moved, size), 0);
	ctx_fini(&c);
	free(zeros);
}

/*
 * MADV_DONTNEED on @pages pages from page @first of the @size bytes at @ptr,
 * mapped at @va and mirrored: the next job reads zeros there (the process's
 * fresh zero page), the rest as it was; GPU writes land in new pages the CPU
 * sees, and the CPU's writes to them reach the GPU.
 */
static void check_dontneed(struct ctx *c, uint64_t va, char *ptr, uint64_t size,
			   uint64_t first, uint64_t pages)
{
	const uint64_t off = first * page, len = pages * page;
	struct drm_hmmgpu_vm_stats before, after;
	uint64_t sum = 0;
	char *expected;

	check_gpu_view(c, va, ptr, size, "before MADV_DONTNEED");
	expected = snapshot(ptr, size);
	memset(expected + off, 0, len);

	vm_stats(c, &before);
	igt_assert_eq(madvise(ptr + off, len, MADV_DONTNEED), 0);
	/* The GPU first, before the CPU touches the range again. */
	igt_assert_eq(gpu_checksum(c, va + off, len, &sum), 0);
	igt_assert_eq_u64(sum, 0);
	check_gpu_view(c, va, expected, size, "after MADV_DONTNEED");
	vm_stats(c, &after);
	igt_assert_lt_u64(before.invalidations, after.invalidations);

	/* GPU writes to the dropped pages land in pages the CPU sees. */
	igt_assert_eq(gpu_fill(c, va + off + len - page, page, 0x0d0d0d0d), 0);
	igt_assert_eq(gpu_write64(c, va + off + 16, 0xd0d0d0d0d0d0d0d0ull), 0);
	memset(expected + off + len - page, 0x0d, page);
	*(uint64_t *)(expected + off + 16) = 0xd0d0d0d0d0d0d0d0ull;
	check_same(ptr, expected, size, "the CPU's view of GPU writes after MADV_DONTNEED");

	/* CPU writes to them reach the GPU. */
	hmmgpu_fill_pattern(ptr + off, len, 8);
	check_gpu_view(c, va, ptr, size, "CPU writes after MADV_DONTNEED");

	/* Dropped again: zeros again, not what the GPU and CPU wrote. */
	igt_assert_eq(madvise(ptr + off, len, MADV_DONTNEED), 0);
	igt_assert_eq(gpu_checksum(c, va + off, len, &sum), 0);
	igt_assert_eq_u64(sum, 0);
	check_value(ptr + off, len, 0);
	free(expected);
}

static void test_dontneed(uint32_t mode)
{
	const uint64_t size = 16 * page, va_thp = USERPTR_VA + 2 * VA_STRIDE;
	uint64_t map_size, sum = 0, value = 0x0123456789abcdefull;
	uint32_t uptr;
	struct ctx c;
	void *map;
	char *ptr;

	ctx_init(&c, mode, SZ_2M);

	igt_debug("small pages\n");
	ptr = map_anon(size, MAP_PRIVATE);
	igt_assert_eq(madvise(ptr, size, MADV_NOHUGEPAGE), 0);
	hmmgpu_fill_pattern(ptr, size, 1);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	check_dontneed(&c, USERPTR_VA, ptr, size, 4, 4);
	check_dontneed(&c, USERPTR_VA, ptr, size, 0, 1);
	check_dontneed(&c, USERPTR_VA, ptr, size, 15, 1);

	/* All of it: a GPU write first, then the CPU reads it and zeros around it. */
	igt_assert_eq(madvise(ptr, size, MADV_DONTNEED), 0);
	igt_assert_eq(gpu_write64(&c, USERPTR_VA + size - 8, value), 0);
	igt_assert_eq_u64(*(uint64_t *)(ptr + size - 8), value);
	igt_assert_eq_u64(cpu_checksum(ptr, size), (uint32_t)value + (value >> 32));
	igt_assert_eq(gpu_checksum(&c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, (uint32_t)value + (value >> 32));

	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, size), 0);

	/* A page inside a huge page the GPU maps with one 2 MiB entry. */
	if (hmmgpu_thp_enabled()) {
		struct drm_hmmgpu_vm_stats s0, s1;
		uint64_t kb;

		ptr = hmmgpu_thp_alloc(SZ_2M, 2, &map, &map_size);
		kb = hmmgpu_anon_huge_kb(ptr);
		uptr = hmmgpu_userptr_create(c.fd, ptr, SZ_2M, 0);
		/* Before the bind: pinned mode maps at bind. */
		vm_stats(&c, &s0);
		hmmgpu_vm_map(c.fd, c.vm, uptr, 0, va_thp, SZ_2M, 0);
		igt_assert_eq(gpu_checksum(&c, va_thp, SZ_2M, &sum), 0);
		igt_assert_eq_u64(sum, cpu_checksum(ptr, SZ_2M));
		vm_stats(&c, &s1);
		igt_info("a huge page: AnonHugePages %" PRIu64 " kB, %llu 2 MiB GPU entries\n",
			 kb, (unsigned long long)(s1.entries_2m - s0.entries_2m));
		if (kb >= 2048)
			igt_assert_lt_u64(s0.entries_2m, s1.entries_2m);
		check_dontneed(&c, va_thp, ptr, SZ_2M, 300, 1);
		hmmgpu_vm_unmap(c.fd, c.vm, va_thp, SZ_2M);
		gem_close(c.fd, uptr);
		igt_assert_eq(munmap(map, map_size), 0);
	}

	ctx_fini(&c);
}

/*
 * One page of a mirrored userptr's memory unmapped, page @hole of @pages:
 * jobs that touch it fault in every mode. The pages still mapped work in
 * fault mode (mirrored page by page); in prefault and pinned modes the
 * mapping is mirrored whole or not at all, so jobs fault on all of it, until
 * the page is mapped again.
 */
static void check_partial_munmap(struct ctx *c, int pages, int hole)
{
	const uint64_t size = pages * page, hole_off = hole * page;
	const bool by_page = c->mode == DRM_HMMGPU_VM_MODE_FAULT;
	const uint64_t tag = 0x7a6e000000000000ull | (uint64_t)hole << 16;
	uint64_t sum = 0;
	uint32_t uptr;
	char *ptr;

	ptr = map_anon(size, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, size, hole + 1);
	uptr = hmmgpu_userptr_create(c->fd, ptr, size, 0);
	hmmgpu_vm_map(c->fd, c->vm, uptr, 0, USERPTR_VA, size, 0);
	igt_assert_eq(gpu_checksum(c, USERPTR_VA, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));
	if (c->mode == DRM_HMMGPU_VM_MODE_PINNED)
		igt_assert_eq_u64(pinned_pages_settled(c, pages), pages);

	igt_assert_eq(munmap(ptr + hole_off, page), 0);

	/* The page gone: reads and writes fault, alone or in a larger range. */
	igt_assert_eq(gpu_checksum(c, USERPTR_VA + hole_off, page, &sum), -EFAULT);
	igt_assert_eq(gpu_write64(c, USERPTR_VA + hole_off + 8, 1), -EFAULT);
	igt_assert_eq(gpu_fill(c, USERPTR_VA + hole_off, page, 0), -EFAULT);
	igt_assert_eq(gpu_checksum(c, USERPTR_VA, size, &sum), -EFAULT);

	/* The pages still mapped, each alone. */
	for (int i = 0; i < pages; i++) {
		if (i == hole)
			continue;
		igt_assert_eq(gpu_checksum(c, USERPTR_VA + i * page, page, &sum),
			      by_page ? 0 : -EFAULT);
		if (by_page)
			igt_assert_eq_u64(sum, cpu_checksum(ptr + i * page, page));
		igt_assert_eq(gpu_write64(c, USERPTR_VA + i * page + 16, tag + i),
			      by_page ? 0 : -EFAULT);
		if (by_page)
			igt_assert_eq_u64(*(uint64_t *)(ptr + i * page + 16), tag + i);
		else
			hmmgpu_check_pattern_at(ptr, i * page, page, hole + 1);
	}
	/* The runs beside the hole. */
	if (hole > 0) {
		igt_assert_eq(gpu_checksum(c, USERPTR_VA, hole_off, &sum), by_page ? 0 : -EFAULT);
		if (by_page)
			igt_assert_eq_u64(sum, cpu_checksum(ptr, hole_off));
	}
	if (hole < pages - 1) {
		const uint64_t after = hole_off + page;

		igt_assert_eq(gpu_checksum(c, USERPTR_VA + after, size - after, &sum),
			      by_page ? 0 : -EFAULT);
		if (by_page)
			igt_assert_eq_u64(sum, cpu_checksum(ptr + after, size - after));
	}
	/* A mapping not mirrored holds no pins. */
	if (c->mode == DRM_HMMGPU_VM_MODE_PINNED)
		igt_assert_eq_u64(pinned_pages_settled(c, 0), 0);

	/* The page mapped again, untouched: every page works in every mode. */
	igt_assert(mmap(ptr + hole_off, page, PROT_READ | PROT_WRITE,
			MAP_FIXED_NOREPLACE | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
		   ptr + hole_off);
	igt_assert_eq(gpu_checksum(c, USERPTR_VA + hole_off, page, &sum), 0);
	igt_assert_eq_u64(sum, 0);
	check_gpu_view(c, USERPTR_VA, ptr, size, "the hole mapped again");
	igt_assert_eq(gpu_fill(c, USERPTR_VA + hole_off, page, 0x0f0f0f0f), 0);
	check_value(ptr + hole_off, page, 0x0f0f0f0f);
	if (c->mode == DRM_HMMGPU_VM_MODE_PINNED)
		igt_assert_eq_u64(pinned_pages_settled(c, pages), pages);

	hmmgpu_vm_unmap(c->fd, c->vm, USERPTR_VA, size);
	gem_close(c->fd, uptr);
	igt_assert_eq(munmap(ptr, size), 0);
}

static void test_partial_munmap(uint32_t mode)
{
	const int pages = 8;
	const struct {
		const char *name;
		int hole;
	} holes[] = {
		{ "front", 0 },
		{ "middle", pages / 2 - 1 },
		{ "end", pages - 1 },
	};
	struct ctx c;

	ctx_init(&c, mode, pages * page);
	for (unsigned int i = 0; i < ARRAY_SIZE(holes); i++) {
		igt_debug("the %s page unmapped\n", holes[i].name);
		check_partial_munmap(&c, pages, holes[i].hole);
	}
	ctx_fini(&c);
}

/*
 * mprotect() on a userptr's memory. PROT_NONE: jobs fault, reading or
 * writing; back to PROT_READ | PROT_WRITE: the next job sees the data and
 * writes again. PROT_READ: a read-only binding reads it in every mode; through
 * the writable binding GPU writes fault and change nothing, and reads work in
 * fault and prefault modes, while pinned mode, which needs write pins for a
 * writable binding, cannot mirror it at all.
 */
static void test_mprotect(uint32_t mode)
{
	const uint64_t size = 8 * page, va = USERPTR_VA, va_ro = USERPTR_VA + VA_STRIDE;
	void *before;
	uint64_t sum = 0;
	uint32_t uptr;
	struct ctx c;
	char *ptr;

	ctx_init(&c, mode, size);
	ptr = map_anon(size, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, size, 1);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, va, size, 0);
	check_gpu_view(&c, va, ptr, size, "before mprotect");

	igt_debug("PROT_NONE\n");
	igt_assert_eq(mprotect(ptr, size, PROT_NONE), 0);
	igt_assert_eq(gpu_checksum(&c, va, size, &sum), -EFAULT);
	igt_assert_eq(gpu_checksum(&c, va + page, page, &sum), -EFAULT);
	igt_assert_eq(gpu_copy(&c, BO_VA, va + size - page, page), -EFAULT);
	igt_assert_eq(gpu_write64(&c, va + 8, 1), -EFAULT);
	igt_assert_eq(gpu_fill(&c, va + 2 * page, page, 0), -EFAULT);

	igt_debug("PROT_READ | PROT_WRITE again\n");
	igt_assert_eq(mprotect(ptr, size, PROT_READ | PROT_WRITE), 0);
	hmmgpu_check_pattern(ptr, size, 1);
	check_gpu_view(&c, va, ptr, size, "PROT_NONE, then read-write again");
	hmmgpu_check_pattern(c.bo_ptr, size, 1);
	igt_assert_eq(gpu_fill(&c, va + 2 * page, page, 0x2a2a2a2a), 0);
	check_value(ptr + 2 * page, page, 0x2a2a2a2a);
	hmmgpu_fill_pattern(ptr, size, 2);
	igt_assert_eq(gpu_checksum(&c, va, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));

	igt_debug("PROT_READ\n");
	igt_assert_eq(mprotect(ptr, size, PROT_READ), 0);
	if (mode == DRM_HMMGPU_VM_MODE_PINNED) {
		/* Write pins of the whole mapping are refused: nothing is mirrored. */
		before = snapshot(ptr, size);
		igt_assert_eq(gpu_checksum(&c, va, size, &sum), -EFAULT);
		igt_assert_eq(gpu_write64(&c, va + 8, 1), -EFAULT);
		igt_assert_eq(gpu_fill(&c, va + page, page, 0), -EFAULT);
		check_same(ptr, before, size, "memory after refused GPU writes");
		free(before);
	} else {
		check_read_only(&c, va, ptr, size);
	}
	hmmgpu_vm_map(c.fd, c.vm, uptr, DRM_HMMGPU_VM_BIND_READ_ONLY, va_ro, size, 0);
	check_read_only(&c, va_ro, ptr, size);

	igt_debug("PROT_READ | PROT_WRITE again\n");
	igt_assert_eq(mprotect(ptr, size, PROT_READ | PROT_WRITE), 0);
	igt_assert_eq(gpu_fill(&c, va + 3 * page, page, 0x3b3b3b3b), 0);
	check_value(ptr + 3 * page, page, 0x3b3b3b3b);
	hmmgpu_check_pattern_at(ptr, 0, 3 * page, 2);
	hmmgpu_check_pattern_at(ptr, 4 * page, size - 4 * page, 2);
	check_gpu_view(&c, va_ro, ptr, size, "the read-only binding after a GPU write");
	check_gpu_view(&c, va, ptr, size, "PROT_READ, then read-write again");

	hmmgpu_vm_unmap(c.fd, c.vm, va, size);
	hmmgpu_vm_unmap(c.fd, c.vm, va_ro, size);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, size), 0);
	ctx_fini(&c);
}

/*
 * MADV_DONTFORK: the child of fork() does not get the range at all (touching
 * it would kill the child, so it never does). Its jobs on the parent's
 * userptr fault; the parent's jobs work before, while and after.
 */
static void test_dontfork(uint32_t mode)
{
	const uint64_t size = 8 * page, va = USERPTR_VA;
	const uint64_t child_mark = 0xd0f0d0f0d0f0d0f0ull;
	struct drm_hmmgpu_vm_stats before, after;
	uint64_t sum = 0;
	uint32_t uptr;
	struct ctx c;
	char *ptr;

	ctx_init(&c, mode, size);
	ptr = map_anon(size, MAP_PRIVATE);
	hmmgpu_fill_pattern(ptr, size, 1);
	igt_assert_eq(madvise(ptr, size, MADV_DONTFORK), 0);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, va, size, 0);
	check_gpu_view(&c, va, ptr, size, "before fork");
	c.res[1] = 0;
	vm_stats(&c, &before);

	igt_fork(child, 1) {
		uint32_t mine = 0;

		/* Nothing is mapped there in the child. */
		igt_assert_eq(msync(ptr, size, MS_ASYNC), -1);
		igt_assert_eq(errno, ENOMEM);
		errno = 0;
		igt_assert_eq(__hmmgpu_userptr_create(c.fd, (uintptr_t)ptr, size,
						      DRM_HMMGPU_USERPTR_PROBE, &mine), -EFAULT);

		/* The child's jobs run; those on the parent's userptr fault. */
		igt_assert_eq(gpu_write64(&c, c.res_va + 8, child_mark), 0);
		igt_assert_eq(gpu_checksum(&c, va, size, &sum), -EFAULT);
		igt_assert_eq(gpu_copy(&c, BO_VA, va + page, page), -EFAULT);
		igt_assert_eq(gpu_fill(&c, va, page, 0xdddddddd), -EFAULT);
		igt_assert_eq(gpu_write64(&c, va + size - 8, 1), -EFAULT);
	}
	igt_waitchildren();
	igt_assert_eq_u64(c.res[1], child_mark);

	/* The child's writes changed nothing; the parent's jobs still work. */
	hmmgpu_check_pattern(ptr, size, 1);
	check_gpu_view(&c, va, ptr, size, "after the child exited");
	igt_assert_eq(gpu_fill(&c, va + 2 * page, page, 0x2c2c2c2c), 0);
	check_value(ptr + 2 * page, page, 0x2c2c2c2c);
	hmmgpu_fill_pattern(ptr, size, 2);
	igt_assert_eq(gpu_checksum(&c, va, size, &sum), 0);
	igt_assert_eq_u64(sum, cpu_checksum(ptr, size));
	check_gpu_view(&c, va, ptr, size, "CPU writes after fork");

	vm_stats(&c, &after);
	igt_info("across fork: %llu invalidations, pinned pages %llu -> %llu\n",
		 (unsigned long long)(after.invalidations - before.invalidations),
		 (unsigned long long)before.pinned_pages,
		 (unsigned long long)after.pinned_pages);

	hmmgpu_vm_unmap(c.fd, c.vm, va, size);
	gem_close(c.fd, uptr);
	igt_assert_eq(munmap(ptr, size), 0);
	ctx_fini(&c);
}

/*
 * Pinned mode charges pinned pages to RLIMIT_MEMLOCK of the process. In a
 * child without CAP_IPC_LOCK and a 64 KiB limit, on a file and VM of its own:
 * a 1 MiB userptr fails to bind with -ENOMEM, pinning nothing; 16 KiB binds;
 * the charge adds up to the limit exactly and not a page past it, and
 * unbinding gives it back. Pins an invalidation dropped that no longer fit
 * under the limit are not taken again: the GPU does not reach the memory
 * until they fit.
 */
static void test_rlimit(void)
{
	const uint64_t limit = 64 << 10, small = 16 << 10, big = SZ_1M;
	const uint64_t va_big = USERPTR_VA, va_small = USERPTR_VA + VA_STRIDE;
	const uint64_t va_rest = USERPTR_VA + 2 * VA_STRIDE, va_one = USERPTR_VA + 3 * VA_STRIDE;

	require_vm();
	igt_require_f(vm_modes & DRM_HMMGPU_VM_MODE_PINNED, "no pinned mode\n");

	igt_fork(child, 1) {
		struct rlimit rl = { limit, limit };
		struct drm_hmmgpu_vm_stats s;
		struct drm_hmmgpu_cmd cmd;
		uint32_t ubig, usmall, urest, uone;
		int32_t error = 0;
		char *ptr;
		struct ctx c;
		int err;

		ptr = map_anon(big + limit, MAP_PRIVATE);
		memset(ptr, 0x11, big + limit);

		hmmgpu_drop_cap_ipc_lock();
		igt_assert_eq(setrlimit(RLIMIT_MEMLOCK, &rl), 0);
		ctx_init(&c, DRM_HMMGPU_VM_MODE_PINNED, page);

		/* Past the limit: -ENOMEM, nothing pinned, nothing mapped. */
		ubig = hmmgpu_userptr_create(c.fd, ptr, big, 0);
		igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, ubig, 0,
					       va_big, big, 0), -ENOMEM);
		vm_stats(&c, &s);
		igt_assert_eq_u64(s.pinned_pages, 0);
		igt_assert_eq(gpu_write64(&c, va_big, 1), -EFAULT);

		/* Within it: bound, pinned, and jobs run. */
		usmall = hmmgpu_userptr_create(c.fd, ptr + big, small, 0);
		hmmgpu_vm_map(c.fd, c.vm, usmall, 0, va_small, small, 0);
		vm_stats(&c, &s);
		igt_assert_eq_u64(s.pinned_pages, small / page);
		igt_assert_eq(gpu_fill(&c, va_small, small, 0x5e5e5e5e), 0);
		check_value(ptr + big, small, 0x5e5e5e5e);

		/* The rest of the limit binds; one page more does not. */
		urest = hmmgpu_userptr_create(c.fd, ptr + big + small, limit - small, 0);
		hmmgpu_vm_map(c.fd, c.vm, urest, 0, va_rest, limit - small, 0);
		vm_stats(&c, &s);
		igt_assert_eq_u64(s.pinned_pages, limit / page);
		uone = hmmgpu_userptr_create(c.fd, ptr, page, 0);
		igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, uone, 0,
					       va_one, page, 0), -ENOMEM);
		igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, uone,
					       DRM_HMMGPU_VM_BIND_READ_ONLY, va_one, page, 0),
			      -ENOMEM);
		vm_stats(&c, &s);
		igt_assert_eq_u64(s.pinned_pages, limit / page);
		igt_assert_eq(gpu_write64(&c, va_rest + 8, 0x1111222233334444ull), 0);
		igt_assert_eq_u64(*(uint64_t *)(ptr + big + small + 8), 0x1111222233334444ull);

		/* Unbinding returns the charge: the page binds now. */
		hmmgpu_vm_unmap(c.fd, c.vm, va_rest, limit - small);
		igt_assert_eq_u64(pinned_pages_settled(&c, small / page), small / page);
		hmmgpu_vm_map(c.fd, c.vm, uone, 0, va_one, page, 0);
		vm_stats(&c, &s);
		igt_assert_eq_u64(s.pinned_pages, small / page + 1);
		igt_assert_eq(gpu_write64(&c, va_one + 16, 0x5555666677778888ull), 0);
		igt_assert_eq_u64(*(uint64_t *)(ptr + 16), 0x5555666677778888ull);

		/*
		 * mlock() shares the charge (small + one page pinned, the rest of
		 * the limit locked): with it at the limit, the pins an
		 * invalidation dropped do not fit again. Whether the exec fails
		 * or the job faults, the GPU writes nothing; once the charge is
		 * back, the job runs.
		 */
		igt_assert_eq(mlock(ptr + 4 * page, limit - small - page), 0);
		igt_assert_eq(madvise(ptr + big, small, MADV_DONTNEED), 0);
		igt_assert_eq_u64(pinned_pages_settled(&c, 1), 1);
		igt_assert_eq(mlock(ptr + 16 * page, small), 0);
		hmmgpu_cmd_write64(&cmd, va_small + 8, 0x9999aaaabbbbccccull);
		err = __hmmgpu_exec_wait(c.fd, c.vm, &cmd, 1, 0, &error);
		igt_info("a job on memory that cannot be pinned again: exec %d, job %d\n",
			 err, error);
		igt_assert_f(err == -ENOMEM || (!err && error == -EFAULT),
			     "exec %d, job %d\n", err, error);
		check_value(ptr + big, small, 0);
		igt_assert_eq(munlock(ptr + 16 * page, small), 0);
		igt_assert_eq(gpu_write64(&c, va_small + 8, 0x9999aaaabbbbccccull), 0);
		igt_assert_eq_u64(*(uint64_t *)(ptr + big + 8), 0x9999aaaabbbbccccull);
		igt_assert_eq_u64(pinned_pages_settled(&c, small / page + 1), small / page + 1);
		igt_assert_eq(munlock(ptr + 4 * page, limit - small - page), 0);

		hmmgpu_vm_unmap(c.fd, c.vm, va_one, page);
		hmmgpu_vm_unmap(c.fd, c.vm, va_small, small);
		igt_assert_eq_u64(pinned_pages_settled(&c, 0), 0);
		gem_close(c.fd, ubig);
		gem_close(c.fd, usmall);
		gem_close(c.fd, urest);
		gem_close(c.fd, uone);
		ctx_fini(&c);
		igt_assert_eq(munmap(ptr, big + limit), 0);
	}
	igt_waitchildren();
}

igt_main
{
	/* Static: changed inside subtests, between sigsetjmp() and siglongjmp(). */
	static const struct hmmgpu_vm_mode *m;

	igt_fixture {
		page = sysconf(_SC_PAGESIZE);
		fd = drm_open_driver_render(DRIVER_HMMGPU);
		igt_require(hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_FEATURES) &
			    DRM_HMMGPU_FEATURE_USERPTR);
		vm_modes = hmmgpu_vm_modes_offered(fd);
		if (vm_modes)
			igt_assert_eq_u64(hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_PAGE_SIZE), page);
		hmmgpu_raise_memlock();
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

	igt_describe("GPU jobs read and write malloc'd memory, from the heap and mmapped by "
		     "malloc, through a userptr: copies, fills, 64-bit writes, atomic adds "
		     "and checksums, checked from the CPU.");
	igt_subtest_with_dynamic("malloc-rw") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_malloc_rw(m->flags);
	}

	igt_describe("GPU jobs read and write anonymous private and shared mmap'd memory, "
		     "untouched first (the GPU reads zeros, its writes land in the process's "
		     "pages), then written by the CPU.");
	igt_subtest_with_dynamic("mmap-rw") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_mmap_rw(m->flags);
	}

	igt_describe("GPU jobs read and write memory backed by transparent huge pages, "
		     "at every offset inside a huge page.");
	igt_subtest_with_dynamic("thp-rw") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_thp_rw(m->flags);
	}

	igt_describe("After munmap, a job that touches the memory ends with -EFAULT (the exec "
		     "succeeds), in whole or in part; the VM keeps running other jobs.");
	igt_subtest_with_dynamic("munmap") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_munmap(m->flags);
	}

	igt_describe("A userptr across a 1 GiB boundary of CPU addresses, where its mirror is "
		     "walked in two steps, reads and writes as the CPU has it.");
	igt_subtest_with_dynamic("walk-steps") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_walk_steps(m->flags);
	}

	igt_describe("One page bound at 8192 GPU addresses and unmapped: a job on it faults, "
		     "jobs on the VM's other mappings run, and the VM goes (in the modes that "
		     "mirror at submission).");
	igt_subtest_with_dynamic("munmap-many") {
		require_vm();
		for_each_hmmgpu_vm_mode(fd, m) {
			if (m->flags == DRM_HMMGPU_VM_MODE_FAULT)
				continue;
			igt_dynamic_f("%s", m->name)
				test_munmap_many(m->flags);
		}
	}

	igt_describe("After a MAP_FIXED remap (private, shared, untouched) over a userptr, the "
		     "next job sees the new pages, never the old.");
	igt_subtest_with_dynamic("remap") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_remap(m->flags);
	}

	igt_describe("Read-only userptrs, read-only bindings (of userptrs and GEM objects) and "
		     "PROT_READ memory: GPU reads work, GPU writes end with -EFAULT and change "
		     "nothing.");
	igt_subtest_with_dynamic("read-only") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_read_only(m->flags);
	}

	igt_describe("After fork, the child's jobs fault on the parent's userptrs and leave "
		     "them alone; the parent's next job sees its CPU writes to copy-on-write "
		     "pages, its GPU writes stay out of the child, and shared memory stays "
		     "shared.");
	igt_subtest_with_dynamic("fork") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_fork(m->flags);
	}

	igt_describe("munmap and MADV_DONTNEED of a userptr's memory while a long job runs on "
		     "it: the job ends (without error, or -EFAULT after munmap) and fresh "
		     "memory works.");
	igt_subtest_with_dynamic("invalidate-busy") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_invalidate_busy(m->flags);
	}

	igt_describe("Huge pages of the CPU at a 2 MiB-aligned GPU address give 2 MiB GPU "
		     "entries (and 2 MiB faults in fault mode); 4 KiB off that alignment, "
		     "none.");
	igt_subtest_with_dynamic("thp-2m") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_thp_2m(m->flags);
	}

	igt_describe("Unbinding the middle of a userptr or GEM mapping splits it: jobs on the "
		     "middle fault, both sides still work, and the hole can be bound again.");
	igt_subtest_with_dynamic("unmap-split") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_unmap_split(m->flags);
	}

	igt_describe("A job queued behind a fence before the middle of its userptr, GEM or "
		     "huge-page mapping is unbound still reads both sides once it runs.");
	igt_subtest_with_dynamic("unmap-split-queued") {
		require_vm();
		for_each_hmmgpu_vm_mode(fd, m) {
			igt_dynamic_f("%s-userptr", m->name)
				test_unmap_split_queued(m->flags, SPLIT_USERPTR);
			igt_dynamic_f("%s-gem", m->name)
				test_unmap_split_queued(m->flags, SPLIT_GEM);
			igt_dynamic_f("%s-thp", m->name)
				test_unmap_split_queued(m->flags, SPLIT_THP);
		}
	}

	igt_describe("VM create, destroy, bind, exec, wait and stats refuse bad arguments "
		     "with the documented errors; pinned mode refuses to bind memory that is "
		     "not there.");
	igt_subtest_with_dynamic("bad-args") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_bad_args(m->flags);
	}

	igt_describe("Binding and unbinding 1 GiB at 64 new addresses leaves no page-table "
		     "memory behind.");
	igt_subtest("table-memory") {
		require_vm();
		test_table_memory(vm_modes & DRM_HMMGPU_VM_MODE_FAULT ? DRM_HMMGPU_VM_MODE_FAULT :
				  DRM_HMMGPU_VM_MODE_PREFAULT);
	}

	igt_describe("A 5 GiB userptr of MAP_NORESERVE memory, bound whole (fault mode) or in "
		     "windows: what the GPU writes just below and above 4 GiB and at the end "
		     "the CPU reads there, and the reverse; their offsets modulo 4 GiB stay "
		     "zero.");
	igt_subtest_with_dynamic("huge-userptr") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_huge_userptr(m->flags);
	}

	igt_describe("A 5 GiB GEM object, more than memory: bound in windows that make only "
		     "their pages resident, the GPU writes and reads past 4 GiB through two "
		     "bindings and a split one; windows that wrap or end past it are refused.");
	igt_subtest_with_dynamic("huge-gem") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_huge_gem(m->flags);
	}

	igt_describe("Where less than 5 GiB is available, mapping a 5 GiB GEM object (or its "
		     "dma-buf) and binding all of it fail with -ENOMEM at once, allocating "
		     "nothing; a window of it still binds and works.");
	igt_subtest("huge-gem-no-room") {
		require_vm();
		test_huge_gem_no_room();
	}

	igt_describe("With a window of a 5 GiB GEM object bound, binding another window "
		     "larger than the memory available fails with -ENOMEM at once: the first "
		     "window's pages make no room for it.");
	igt_subtest("huge-gem-no-room-window") {
		require_vm();
		test_huge_gem_no_room_window();
	}

	igt_describe("The CPU maps a 5 GiB GEM object and writes past 4 GiB; it reads it back "
		     "and so does the GPU (where memory allows mapping it whole).");
	igt_subtest("huge-gem-mmap") {
		require_vm();
		test_huge_gem_mmap();
	}

	igt_describe("Sizes and offsets past 4 GiB that wrap, or that a 32-bit truncation would "
		     "make valid, are refused with -EINVAL; objects past 4 GiB up to the limit "
		     "are created.");
	igt_subtest("huge-args") {
		require_vm();
		test_huge_args();
	}

	igt_describe("Pinned mode pins the bound pages (VM_STATS pinned_pages), and unpins "
		     "every page it pinned (nr_foll_pin_* in /proc/vmstat) after munmap, VM "
		     "destruction or closing the file.");
	igt_subtest("pinned-balance")
		test_pinned_balance();

	igt_describe("GPU jobs read and write a memfd through userptrs of two MAP_SHARED "
		     "mappings of it: each sees the other's writes, pwrite() and pread() "
		     "agree with the GPU; a punched hole reads as zeros; truncated pages "
		     "fault until the file grows back with zeros.");
	igt_subtest_with_dynamic("memfd-rw") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_memfd_rw(m->flags);
	}

	igt_describe("A file of /tmp (tmpfs or ramfs): mapped MAP_SHARED, the GPU reads what "
		     "write() wrote and read() sees what the GPU wrote (pinned mode pins "
		     "it long-term); mapped MAP_PRIVATE, GPU writes go to the private copies "
		     "and the file stays unchanged.");
	igt_subtest_with_dynamic("file-rw") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_file_rw(m->flags);
	}

	igt_describe("GPU jobs read and write 2 MiB hugetlb memory at a 2 MiB-aligned GPU "
		     "address, at every offset, through 2 MiB GPU entries (2 MiB faults in "
		     "fault mode).");
	igt_subtest_with_dynamic("hugetlb-rw") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_hugetlb_rw(m->flags);
	}

	igt_describe("mremap() moving a userptr's memory: the old range faults, a userptr of "
		     "the new address sees the data; with MREMAP_DONTUNMAP the old range "
		     "reads as zeros, never the moved pages.");
	igt_subtest_with_dynamic("mremap") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_mremap(m->flags);
	}

	igt_describe("MADV_DONTNEED on part of private anonymous memory (small pages, and a "
		     "page inside a huge page): the next job reads zeros there, and GPU "
		     "writes land in new pages the CPU sees.");
	igt_subtest_with_dynamic("dontneed") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_dontneed(m->flags);
	}

	igt_describe("munmap of the front, a middle or the end page of a userptr's memory: "
		     "jobs on that page fault; the other pages work in fault mode and fault "
		     "in prefault and pinned modes (mirrored whole or not at all) until the "
		     "page is mapped again.");
	igt_subtest_with_dynamic("partial-munmap") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_partial_munmap(m->flags);
	}

	igt_describe("mprotect(): PROT_NONE memory faults, reading or writing, and works "
		     "again with its data once read-write; PROT_READ memory is read through "
		     "a read-only binding, and refuses GPU writes.");
	igt_subtest_with_dynamic("mprotect") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_mprotect(m->flags);
	}

	igt_describe("MADV_DONTFORK memory is not mapped in a child of fork(): the child's "
		     "jobs on the parent's userptr fault, and the parent's jobs still work "
		     "after the child exits.");
	igt_subtest_with_dynamic("dontfork") {
		require_vm();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_dontfork(m->flags);
	}

	igt_describe("Pinned mode charges RLIMIT_MEMLOCK: without CAP_IPC_LOCK and with a "
		     "64 KiB limit, binding a 1 MiB userptr fails with -ENOMEM and pins "
		     "nothing, 16 KiB binds, the limit is exact, unbinding gives the "
		     "charge back, and pins that no longer fit after an invalidation are "
		     "not used.");
	igt_subtest("rlimit")
		test_rlimit();

	igt_fixture {
		close_leftovers();
		drm_close_driver(fd);
	}
}
