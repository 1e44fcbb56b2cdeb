// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * hmmgpu under the events of the core memory manager. In every VM mode the
 * device offers (one dynamic subtest per mode: "fault", "prefault",
 * "pinned"), memory bound as a userptr is written by the GPU, then the core
 * MM does something to it: reclaims lazy-free pages (MADV_FREE, small and
 * huge), swaps it out and in (also pages swapped in clean and still in the
 * swap cache), deactivates or pages it out (MADV_COLD, MADV_PAGEOUT), writes
 * a file back and drops the page cache, migrates it between NUMA nodes,
 * compacts it, merges it with KSM, splits or collapses its huge pages
 * (MADV_COLLAPSE, khugepaged), migrates it out of ZONE_MOVABLE to pin it
 * long-term, or reclaims it under a memory cgroup's limit. After each event:
 *
 * 1. the CPU reads every word the GPU wrote (no write may be lost; the first
 *    wrong word and the counts are printed),
 * 2. the CPU writes new data and the GPU reads it (no stale word),
 * 3. once everything is closed, every page pin taken was released
 *    (nr_foll_pin_acquired == nr_foll_pin_released in /proc/vmstat).
 *
 * Rounds alternate which side reads first after the event, since the CPU
 * and the GPU fault memory back in differently.
 *
 * Guest features the events need (swap, a disk filesystem at /mnt/ext4, two
 * NUMA nodes, KSM, ZONE_MOVABLE, compaction, cgroup2's memory controller)
 * are checked for: a subtest whose feature is missing skips and says which.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/magic.h>
#include <linux/mempolicy.h>

#include <xf86drm.h>

#include "igt.h"
#include "igt_hmmgpu.h"

IGT_TEST_DESCRIPTION("GPU data and userptr mirrors of hmmgpu through the core MM's events, "
		     "in every VM mode: MADV_FREE and reclaim, swap-out and swap-in, "
		     "MADV_COLD and MADV_PAGEOUT, file writeback and drop_caches, NUMA "
		     "migration, compaction, KSM merging, THP split and collapse, long-term "
		     "pins of ZONE_MOVABLE pages and memory cgroup pressure; page pins "
		     "balance after each.");

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif

#define USERPTR_VA	0x100000000ull
#define BO_VA		0x200000000ull
#define VA_STRIDE	0x10000000ull
#define SZ_1M		(1ull << 20)
#define SZ_2M		(2ull << 20)
#define SZ_4M		(4ull << 20)

/* The size of most buffers: 512 small pages. */
#define BUF_SIZE	SZ_2M

#define PM_PFN_MASK	((1ull << 55) - 1)
#define PM_SWAP		(1ull << 62)
#define PM_PRESENT	(1ull << 63)

static int fd = -1;
static uint64_t page;

/*
 * A test's file: a VM of one mode, and a scratch GEM object mapped at BO_VA
 * (and by the CPU) that GPU copies go through. ctx_init() also notes the
 * page-pin counters, and ctx_fini() checks that they balance again.
 */
struct ctx {
	int fd;
	uint32_t mode;
	uint32_t vm;
	uint32_t bo;
	uint64_t bo_size;
	char *bo_ptr;
	uint64_t pins_acquired, pins_released;
	/* The userptr of run_anon_event(), bound at USERPTR_VA. */
	uint32_t uptr;
};

/* The file of a test that failed, closed by the next ctx_init(). */
static int leftover_fd = -1;

static const char *mode_name(struct ctx *c)
{
	return hmmgpu_vm_mode_name(c->mode);
}

static bool read_file(const char *path, char *buf, size_t len)
{
	int f = open(path, O_RDONLY);
	ssize_t n;

	if (f < 0) {
		errno = 0;
		return false;
	}
	n = read(f, buf, len - 1);
	close(f);
	errno = 0;
	if (n < 0)
		return false;
	buf[n] = 0;
	return true;
}

static bool write_file(const char *path, const char *value)
{
	int f = open(path, O_WRONLY);
	bool ok;

	if (f < 0) {
		errno = 0;
		return false;
	}
	ok = write(f, value, strlen(value)) == (ssize_t)strlen(value);
	close(f);
	errno = 0;
	return ok;
}

static long read_long(const char *path, long dflt)
{
	char buf[64];

	if (!read_file(path, buf, sizeof(buf)))
		return dflt;
	return strtol(buf, NULL, 0);
}

static bool write_long(const char *path, long value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", value);
	return write_file(path, buf);
}

/* A field of /proc/vmstat, or -1. */
static int64_t vmstat(const char *field)
{
	unsigned long long value;
	int64_t ret = -1;
	char name[64];
	FILE *f;

	f = fopen("/proc/vmstat", "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %llu", name, &value) == 2) {
		if (!strcmp(name, field)) {
			ret = value;
			break;
		}
	}
	fclose(f);
	return ret;
}

static void ctx_init(struct ctx *c, uint32_t mode, uint64_t bo_size)
{
	if (leftover_fd >= 0) {
		uint64_t a = 0, r = 0;
		struct timespec start;

		/* Let the pins of a failed test go before counting ours. */
		drm_close_driver(leftover_fd);
		leftover_fd = -1;
		igt_gettime(&start);
		while (hmmgpu_read_pin_counters(&a, &r) && a != r && igt_seconds_elapsed(&start) < 5)
			usleep(20 * 1000);
	}

	memset(c, 0, sizeof(*c));
	igt_require_f(hmmgpu_read_pin_counters(&c->pins_acquired, &c->pins_released),
		      "no nr_foll_pin_* counters in /proc/vmstat\n");
	c->fd = drm_open_driver_render(DRIVER_HMMGPU);
	leftover_fd = c->fd;
	c->mode = mode;
	c->vm = hmmgpu_vm_create(c->fd, mode);

	c->bo_size = bo_size;
	c->bo = hmmgpu_gem_create(c->fd, bo_size);
	c->bo_ptr = hmmgpu_gem_mmap(c->fd, c->bo, bo_size, PROT_READ | PROT_WRITE);
	memset(c->bo_ptr, 0, bo_size);
	hmmgpu_vm_map(c->fd, c->vm, c->bo, 0, BO_VA, bo_size, 0);
}

/* Closes everything, then checks that every page pin was given back. */
static void ctx_fini(struct ctx *c)
{
	hmmgpu_vm_destroy(c->fd, c->vm);
	igt_assert_eq(munmap(c->bo_ptr, c->bo_size), 0);
	gem_close(c->fd, c->bo);
	drm_close_driver(c->fd);
	leftover_fd = -1;
	c->fd = -1;

	hmmgpu_assert_pins_balanced(c->pins_acquired, c->pins_released, "after closing the VM");
}

static void vm_stats(struct ctx *c, struct drm_hmmgpu_vm_stats *s)
{
	hmmgpu_vm_stats(c->fd, c->vm, s);
	hmmgpu_vm_stats_debug(s);
}

/* VM_STATS pinned_pages once it reads @expected, or what it reads after 5 s. */
static uint64_t pinned_pages_settled(struct ctx *c, uint64_t expected)
{
	return hmmgpu_vm_pinned_pages_settled(c->fd, c->vm, expected);
}

static int gpu_copy(struct ctx *c, uint64_t dst, uint64_t src, uint64_t size)
{
	struct drm_hmmgpu_cmd cmd;

	hmmgpu_cmd_copy(&cmd, dst, src, size);
	return hmmgpu_exec_job(c->fd, c->vm, &cmd, 1, 0);
}

/*
 * Checks that the @size bytes at @ptr hold pattern @seed (word i of the
 * buffer: hmmgpu_pattern(@seed, i)); on a mismatch, says where the first
 * wrong word is, how many words and pages are wrong, and how many of the
 * wrong words read zero (a page lost and replaced by a new one), then fails.
 */
static void check_data(const void *ptr, uint64_t size, uint32_t seed, const char *what)
{
	const uint32_t *p = ptr;
	uint64_t words = size / 4, wrong = 0, zeros = 0, pages = 0, first = 0;
	uint64_t last_page = ~0ull;

	for (uint64_t i = 0; i < words; i++) {
		if (p[i] == hmmgpu_pattern(seed, i))
			continue;
		if (!wrong)
			first = i;
		wrong++;
		if (!p[i])
			zeros++;
		if (i * 4 / page != last_page) {
			last_page = i * 4 / page;
			pages++;
		}
	}
	if (!wrong)
		return;

	igt_info("%s: first wrong word at byte %#" PRIx64 " reads %#x, expected %#x\n", what,
		 first * 4, p[first], hmmgpu_pattern(seed, first));
	igt_fail_on_f(wrong, "%s: %" PRIu64 " of %" PRIu64 " words wrong (%" PRIu64
		      " of them zero), in %" PRIu64 " of %" PRIu64 " pages\n", what, wrong,
		      words, zeros, pages, size / page);
}

/* The GPU writes pattern @seed over [@va, @va + @size) (through the scratch object). */
static void gpu_write_pattern(struct ctx *c, uint64_t va, uint64_t size, uint32_t seed)
{
	igt_assert(size <= c->bo_size);
	hmmgpu_fill_pattern(c->bo_ptr, size, seed);
	igt_assert_eq(gpu_copy(c, va, BO_VA, size), 0);
}

/* The GPU reads [@va, @va + @size) into the scratch object: it must be pattern @seed. */
static void gpu_check_pattern(struct ctx *c, uint64_t va, uint64_t size, uint32_t seed,
			      const char *what)
{
	igt_assert(size <= c->bo_size);
	memset(c->bo_ptr, 0xa5, size);
	igt_assert_eq(gpu_copy(c, BO_VA, va, size), 0);
	check_data(c->bo_ptr, size, seed, what);
}

static char *map_anon(uint64_t size, int flags)
{
	char *ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);

	igt_assert_f(ptr != MAP_FAILED, "mmap of %" PRIu64 " bytes failed\n", size);
	return ptr;
}

/*
 * Private anonymous memory in small pages, filled with pattern @seed. Its
 * pages are touched alternately with those of a second mapping that is then
 * unmapped, so that they are scattered through memory (compaction has
 * something to move).
 */
static char *alloc_small_pages(uint64_t size, uint32_t seed)
{
	char *ptr = map_anon(size, MAP_PRIVATE);
	char *filler = map_anon(size, MAP_PRIVATE);

	igt_assert_eq(madvise(ptr, size, MADV_NOHUGEPAGE), 0);
	igt_assert_eq(madvise(filler, size, MADV_NOHUGEPAGE), 0);
	for (uint64_t off = 0; off < size; off += page) {
		ptr[off] = 1;
		filler[off] = 1;
	}
	igt_assert_eq(munmap(filler, size), 0);
	hmmgpu_fill_pattern(ptr, size, seed);
	return ptr;
}

/* /proc/self/pagemap entries of the @size bytes at @ptr. */
static uint64_t *pagemap(const void *ptr, uint64_t size)
{
	uint64_t n = size / page, *pm = calloc(n, sizeof(*pm));
	int f = open("/proc/self/pagemap", O_RDONLY);

	igt_assert(pm);
	igt_assert_f(f >= 0, "cannot open /proc/self/pagemap\n");
	igt_assert_eq(pread(f, pm, n * sizeof(*pm), (uintptr_t)ptr / page * sizeof(*pm)),
		      (ssize_t)(n * sizeof(*pm)));
	close(f);
	return pm;
}

/* How many pages of the @size bytes at @ptr are swapped out. */
static uint64_t count_swapped(const void *ptr, uint64_t size)
{
	uint64_t *pm = pagemap(ptr, size), n = 0;

	for (uint64_t i = 0; i < size / page; i++)
		n += !!(pm[i] & PM_SWAP);
	free(pm);
	return n;
}

/* How many pages of the @size bytes at @ptr are not resident (mincore()). */
static uint64_t count_not_resident(void *ptr, uint64_t size)
{
	unsigned char *vec = calloc(size / page, 1);
	uint64_t n = 0;

	igt_assert(vec);
	igt_assert_eq(mincore(ptr, size, vec), 0);
	for (uint64_t i = 0; i < size / page; i++)
		n += !(vec[i] & 1);
	free(vec);
	return n;
}

/* Whether pagemap shows page frame numbers (it does to CAP_SYS_ADMIN). */
static bool pagemap_has_pfns(void)
{
	char *p = map_anon(page, MAP_PRIVATE);
	uint64_t *pm;
	bool ret;

	p[0] = 1;
	pm = pagemap(p, page);
	ret = (pm[0] & PM_PRESENT) && (pm[0] & PM_PFN_MASK);
	free(pm);
	munmap(p, page);
	return ret;
}

/* The page frame numbers of the @size bytes at @ptr (0 where not present). */
static uint64_t *pfns(const void *ptr, uint64_t size)
{
	uint64_t *pm = pagemap(ptr, size);

	for (uint64_t i = 0; i < size / page; i++)
		pm[i] = pm[i] & PM_PRESENT ? pm[i] & PM_PFN_MASK : 0;
	return pm;
}

static bool swap_active(void)
{
	char buf[4096];
	char *nl;

	if (!read_file("/proc/swaps", buf, sizeof(buf)))
		return false;
	/* A header line, then one line per swap area. */
	nl = strchr(buf, '\n');
	return nl && nl[1];
}

static void require_swap(void)
{
	igt_require_f(swap_active(), "no active swap area in /proc/swaps\n");
}

static bool thp_enabled(void)
{
	char buf[128];

	return read_file("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf)) &&
	       !strstr(buf, "[never]");
}

/*
 * Runs the generic flow of an event on anonymous memory: in each of @rounds
 * rounds, the GPU writes a pattern over a userptr of the buffer, @event runs,
 * one side reads the GPU's data and then the other (the CPU first in even
 * rounds), the CPU writes a new pattern and the GPU must read it.
 * @before_gpu_write, when given, runs before each GPU write (MADV_FREE).
 */
struct anon_event {
	const char *name;
	int rounds;
	void (*before_gpu_write)(struct ctx *c, char *ptr, uint64_t size);
	void (*event)(struct ctx *c, char *ptr, uint64_t size, int round);
};

static void run_anon_event(uint32_t mode, const struct anon_event *ev)
{
	const uint64_t size = BUF_SIZE;
	char what[128];
	uint32_t uptr;
	struct ctx c;
	char *ptr;

	ptr = alloc_small_pages(size, 1);
	ctx_init(&c, mode, size);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	c.uptr = uptr;

	for (int round = 0; round < ev->rounds; round++) {
		const uint32_t gpu_seed = 10 + 2 * round, cpu_seed = 11 + 2 * round;

		/* Bound after the first MADV_FREE; later ones find it bound. */
		if (ev->before_gpu_write)
			ev->before_gpu_write(&c, ptr, size);
		if (!round)
			hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
		gpu_write_pattern(&c, USERPTR_VA, size, gpu_seed);

		ev->event(&c, ptr, size, round);

		if (round % 2 == 0) {
			snprintf(what, sizeof(what), "%s, round %d: CPU read of the GPU's writes",
				 ev->name, round);
			check_data(ptr, size, gpu_seed, what);
			snprintf(what, sizeof(what), "%s, round %d: GPU read of its own writes",
				 ev->name, round);
			gpu_check_pattern(&c, USERPTR_VA, size, gpu_seed, what);
		} else {
			snprintf(what, sizeof(what), "%s, round %d: GPU read of its own writes",
				 ev->name, round);
			gpu_check_pattern(&c, USERPTR_VA, size, gpu_seed, what);
			snprintf(what, sizeof(what), "%s, round %d: CPU read of the GPU's writes",
				 ev->name, round);
			check_data(ptr, size, gpu_seed, what);
		}

		hmmgpu_fill_pattern(ptr, size, cpu_seed);
		snprintf(what, sizeof(what), "%s, round %d: GPU read of the CPU's new writes",
			 ev->name, round);
		gpu_check_pattern(&c, USERPTR_VA, size, cpu_seed, what);
	}

	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);
	ctx_fini(&c);
	igt_assert_eq(munmap(ptr, size), 0);
}

/* MADV_FREE and reclaim. */

#define CONTROL_PAGES 64

static void madv_free(struct ctx *c, char *ptr, uint64_t size)
{
	(void)c;
	igt_assert_eq(madvise(ptr, size, MADV_FREE), 0);
}

/*
 * MADV_PAGEOUT of lazy-free memory discards the pages that are still clean:
 * those the GPU wrote must be dirty by then. Lazy-free control pages that
 * nobody wrote since MADV_FREE show that the reclaim really ran.
 */
static void reclaim_lazyfree(struct ctx *c, char *ptr, uint64_t size, int round)
{
	const uint64_t ctl_size = CONTROL_PAGES * page;
	int64_t freed0 = vmstat("pglazyfreed");
	uint64_t gone, lost;
	char *ctl;

	(void)round;
	ctl = map_anon(ctl_size, MAP_PRIVATE);
	igt_assert_eq(madvise(ctl, ctl_size, MADV_NOHUGEPAGE), 0);
	memset(ctl, 0x77, ctl_size);
	igt_assert_eq(madvise(ctl, ctl_size, MADV_FREE), 0);

	igt_assert_eq(madvise(ptr, size, MADV_PAGEOUT), 0);
	igt_assert_eq(madvise(ctl, ctl_size, MADV_PAGEOUT), 0);

	gone = count_not_resident(ctl, ctl_size);
	lost = count_not_resident(ptr, size);
	igt_info("%s: after reclaim, %" PRIu64 " of %d control pages and %" PRIu64
		 " of %" PRIu64 " GPU-written pages are not resident\n", mode_name(c), gone,
		 CONTROL_PAGES, lost, size / page);
	if (freed0 >= 0)
		igt_info("pglazyfreed +%" PRId64 "\n", vmstat("pglazyfreed") - freed0);
	igt_assert_f(gone > 0, "MADV_PAGEOUT discarded none of the clean lazy-free control "
		     "pages: no reclaim happened, the test would prove nothing\n");
	igt_assert_eq(munmap(ctl, ctl_size), 0);
}

static const struct anon_event ev_madv_free = {
	.name = "MADV_FREE and reclaim",
	.rounds = 2,
	.before_gpu_write = madv_free,
	.event = reclaim_lazyfree,
};

/* Swap-out and swap-in. */

/*
 * MADV_PAGEOUT with swap: pages must go out. The core MM does not reclaim
 * pinned anonymous pages (nor does it invalidate their mirror), unless they
 * are in the swap cache already: in pinned mode few or none go out while
 * bound; unbound, they do, and binding again pins them again (swapping them
 * in) unless @rebind is false.
 */
static void __swap_out(struct ctx *c, char *ptr, uint64_t size, bool rebind)
{
	uint64_t swapped;

	igt_assert_eq(madvise(ptr, size, MADV_PAGEOUT), 0);
	if (c->mode == DRM_HMMGPU_VM_MODE_PINNED) {
		swapped = count_swapped(ptr, size);
		igt_info("%s: %" PRIu64 " of %" PRIu64 " pinned pages swapped out\n",
			 mode_name(c), swapped, size / page);
		hmmgpu_vm_unmap(c->fd, c->vm, USERPTR_VA, size);
		igt_assert_eq_u64(pinned_pages_settled(c, 0), 0);
		igt_assert_eq(madvise(ptr, size, MADV_PAGEOUT), 0);
	}
	swapped = count_swapped(ptr, size);
	igt_info("%s: %" PRIu64 " of %" PRIu64 " pages swapped out\n", mode_name(c), swapped,
		 size / page);
	igt_assert_f(swapped > 0, "MADV_PAGEOUT swapped nothing out\n");
	if (c->mode == DRM_HMMGPU_VM_MODE_PINNED && rebind)
		hmmgpu_vm_map(c->fd, c->vm, c->uptr, 0, USERPTR_VA, size, 0);
}

static void swap_out(struct ctx *c, char *ptr, uint64_t size, int round)
{
	(void)round;
	__swap_out(c, ptr, size, true);
}

/* Rounds 0 and 2 have the CPU swap the GPU's data in first, round 1 the GPU. */
static const struct anon_event ev_swap = {
	.name = "swap-out and swap-in",
	.rounds = 3,
	.event = swap_out,
};

/* How many pages of the @size bytes at @ptr are in the swap cache, not mapped. */
static uint64_t count_swap_cached(void *ptr, uint64_t size)
{
	unsigned char *vec = calloc(size / page, 1);
	uint64_t *pm = pagemap(ptr, size), n = 0;

	igt_assert(vec);
	igt_assert_eq(mincore(ptr, size, vec), 0);
	for (uint64_t i = 0; i < size / page; i++)
		n += (pm[i] & PM_SWAP) && (vec[i] & 1);
	free(vec);
	free(pm);
	return n;
}

/*
 * Pages swapped in by a CPU read, and still in the swap cache, are clean
 * but mapped writable (the swap slot still holds their data). The GPU
 * writes them: unless that dirties them, the next swap-out frees them
 * without writing, and the old data comes back from swap. MADV_WILLNEED
 * reads them into the swap cache first (zram is read around it otherwise).
 * In pinned mode the userptr is bound again only after the CPU read (a pin
 * would swap the pages in itself).
 */
static void test_swapcache_write(uint32_t mode)
{
	const uint64_t size = BUF_SIZE;
	uint64_t cached;
	uint32_t uptr;
	struct ctx c;
	char *ptr;

	ptr = alloc_small_pages(size, 1);
	ctx_init(&c, mode, size);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	c.uptr = uptr;
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	gpu_write_pattern(&c, USERPTR_VA, size, 10);
	__swap_out(&c, ptr, size, false);

	igt_assert_eq(madvise(ptr, size, MADV_WILLNEED), 0);
	cached = count_swap_cached(ptr, size);
	igt_info("%s: MADV_WILLNEED read %" PRIu64 " of %" PRIu64 " pages into the swap cache\n",
		 mode_name(&c), cached, size / page);
	/* Read faults map them from the swap cache, clean. */
	check_data(ptr, size, 10, "CPU read of the GPU's writes swapped out and in");

	if (mode == DRM_HMMGPU_VM_MODE_PINNED)
		hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	gpu_write_pattern(&c, USERPTR_VA, size, 11);
	__swap_out(&c, ptr, size, false);
	check_data(ptr, size, 11, "CPU read of GPU writes to pages swapped in clean");
	if (mode == DRM_HMMGPU_VM_MODE_PINNED)
		hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	gpu_check_pattern(&c, USERPTR_VA, size, 11,
			  "GPU read of its writes to pages swapped in clean");
	hmmgpu_fill_pattern(ptr, size, 12);
	gpu_check_pattern(&c, USERPTR_VA, size, 12, "GPU read of the CPU's new writes");
	igt_assert_f(cached > 0, "MADV_WILLNEED read nothing into the swap cache: the "
		     "GPU's writes went to pages that were not in it\n");

	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);
	ctx_fini(&c);
	igt_assert_eq(munmap(ptr, size), 0);
}

static void pageout(struct ctx *c, char *ptr, uint64_t size, int round)
{
	(void)round;
	igt_assert_eq(madvise(ptr, size, MADV_PAGEOUT), 0);
	igt_info("%s: MADV_PAGEOUT left %" PRIu64 " of %" PRIu64 " pages swapped out\n",
		 mode_name(c), count_swapped(ptr, size), size / page);
}

static const struct anon_event ev_pageout = {
	.name = "MADV_PAGEOUT",
	.rounds = 2,
	.event = pageout,
};

static void cold(struct ctx *c, char *ptr, uint64_t size, int round)
{
	(void)c;
	(void)round;
	igt_assert_eq(madvise(ptr, size, MADV_COLD), 0);
}

static const struct anon_event ev_cold = {
	.name = "MADV_COLD",
	.rounds = 2,
	.event = cold,
};

/* Compaction. */

static bool can_compact(void)
{
	return access("/proc/sys/vm/compact_memory", W_OK) == 0;
}

/* Pages of the buffer compaction moved, in the rounds so far. */
static uint64_t compaction_moved;

/*
 * Compaction of all memory. Whether it moves the buffer's pages depends on
 * where they and the free memory are; pinned pages it never moves.
 */
static void compact(struct ctx *c, char *ptr, uint64_t size, int round)
{
	uint64_t *before, *after, moved = 0;

	if (!round)
		compaction_moved = 0;
	before = pfns(ptr, size);
	igt_assert(write_file("/proc/sys/vm/compact_memory", "1"));
	after = pfns(ptr, size);
	for (uint64_t i = 0; i < size / page; i++)
		moved += before[i] != after[i];
	igt_info("%s: compaction moved %" PRIu64 " of %" PRIu64 " pages\n", mode_name(c),
		 moved, size / page);
	free(before);
	free(after);
	compaction_moved += moved;
}

static const struct anon_event ev_compact = {
	.name = "compaction",
	.rounds = 2,
	.event = compact,
};

/* NUMA migration. */

static int numa_nodes[2] = { -1, -1 };

/* The first two nodes with memory, from /sys/devices/system/node/has_memory. */
static bool two_memory_nodes(void)
{
	char buf[256], *p = buf;
	int n = 0;

	if (!read_file("/sys/devices/system/node/has_memory", buf, sizeof(buf)))
		return false;
	while (*p && n < 2) {
		char *end;
		long a = strtol(p, &end, 10), b = a;

		if (end == p)
			break;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		for (long i = a; i <= b && n < 2; i++)
			numa_nodes[n++] = i;
		p = *end == ',' ? end + 1 : end;
	}
	return n == 2;
}

static long sys_move_pages(unsigned long count, void **pages, const int *nodes, int *status,
			   int flags)
{
	return syscall(SYS_move_pages, 0, count, pages, nodes, status, flags);
}

/* The node of each page of the @size bytes at @ptr (or -errno) into @status. */
static void query_nodes(char *ptr, uint64_t size, int *status)
{
	uint64_t n = size / page;
	void **pages = calloc(n, sizeof(*pages));

	igt_assert(pages);
	for (uint64_t i = 0; i < n; i++)
		pages[i] = ptr + i * page;
	igt_assert_eq(sys_move_pages(n, pages, NULL, status, 0), 0);
	free(pages);
}

static uint64_t count_on_node(char *ptr, uint64_t size, int node)
{
	uint64_t n = size / page, on = 0;
	int *status = calloc(n, sizeof(*status));

	igt_assert(status);
	query_nodes(ptr, size, status);
	for (uint64_t i = 0; i < n; i++)
		on += status[i] == node;
	free(status);
	return on;
}

static bool numa_usable(void)
{
	int status = 0;
	char *p;
	void *pg;

	if (!two_memory_nodes())
		return false;
	p = map_anon(page, MAP_PRIVATE);
	p[0] = 1;
	pg = p;
	errno = 0;
	if (sys_move_pages(1, &pg, NULL, &status, 0)) {
		igt_debug("move_pages: %s\n", strerror(errno));
		munmap(p, page);
		errno = 0;
		return false;
	}
	munmap(p, page);
	return true;
}

/*
 * Moves every page to the node where the first is not, a different way each
 * round: move_pages(), mbind(MPOL_MF_MOVE), migrate_pages(). Pages the GPU
 * mirrors must move (their mirror is invalidated); pinned pages may stay
 * where they are (the core MM does not migrate pinned pages; the
 * invalidation drops the pins, so a retry may find them free).
 */
static void numa_migrate(struct ctx *c, char *ptr, uint64_t size, int round)
{
	const uint64_t n = size / page;
	int status0 = -1, from, to;
	void *first = ptr;
	uint64_t on;
	long ret;

	igt_assert_eq(sys_move_pages(1, &first, NULL, &status0, 0), 0);
	igt_assert_f(status0 >= 0, "the buffer's first page is on no node: %d\n", status0);
	from = status0;
	to = from == numa_nodes[0] ? numa_nodes[1] : numa_nodes[0];

	if (round % 3 == 0) {
		void **pages = calloc(n, sizeof(*pages));
		int *nodes = calloc(n, sizeof(*nodes)), *status = calloc(n, sizeof(*status));

		igt_assert(pages && nodes && status);
		for (uint64_t i = 0; i < n; i++) {
			pages[i] = ptr + i * page;
			nodes[i] = to;
		}
		ret = sys_move_pages(n, pages, nodes, status, MPOL_MF_MOVE);
		igt_info("%s: move_pages() to node %d: %ld\n", mode_name(c), to, ret);
		free(pages);
		free(nodes);
		free(status);
	} else if (round % 3 == 1) {
		unsigned long mask = 1ul << to;

		ret = syscall(SYS_mbind, ptr, size, MPOL_BIND, &mask, 8 * sizeof(mask),
			      MPOL_MF_MOVE);
		igt_info("%s: mbind(MPOL_BIND, MPOL_MF_MOVE) to node %d: %ld\n", mode_name(c),
			 to, ret);
		igt_assert_eq(syscall(SYS_mbind, ptr, size, MPOL_DEFAULT, NULL, 0, 0), 0);
	} else {
		unsigned long old_nodes = 1ul << from, new_nodes = 1ul << to;

		ret = syscall(SYS_migrate_pages, 0, 8 * sizeof(old_nodes), &old_nodes,
			      &new_nodes);
		igt_info("%s: migrate_pages() from node %d to %d: %ld\n", mode_name(c), from,
			 to, ret);
	}
	errno = 0;

	on = count_on_node(ptr, size, to);
	igt_info("%s: %" PRIu64 " of %" PRIu64 " pages on node %d, %" PRIu64 " on node %d\n",
		 mode_name(c), on, n, to, count_on_node(ptr, size, from), from);
	if (c->mode != DRM_HMMGPU_VM_MODE_PINNED)
		igt_assert_f(on == n, "only %" PRIu64 " of %" PRIu64 " pages moved to node %d\n",
			     on, n, to);
}

static const struct anon_event ev_numa = {
	.name = "NUMA migration",
	.rounds = 3,
	.event = numa_migrate,
};

/* Files: writeback of a disk filesystem, shmem. */

#define EXT4_DIR "/mnt/ext4"

static bool ext4_mounted(void)
{
	struct statfs st;

	if (statfs(EXT4_DIR, &st)) {
		errno = 0;
		return false;
	}
	return st.f_type == EXT4_SUPER_MAGIC && access(EXT4_DIR, W_OK) == 0;
}

static void drop_caches(void)
{
	sync();
	igt_assert_f(write_file("/proc/sys/vm/drop_caches", "3"),
		     "cannot write /proc/sys/vm/drop_caches\n");
}

static int ext4_file(uint64_t size)
{
	char name[] = EXT4_DIR "/hmmgpu_mm_events.XXXXXX";
	int file_fd = mkstemp(name);

	igt_assert_f(file_fd >= 0, "mkstemp in " EXT4_DIR ": %s\n", strerror(errno));
	igt_assert_eq(unlink(name), 0);
	igt_assert_eq(ftruncate(file_fd, size), 0);
	return file_fd;
}

static char *map_file(int file_fd, uint64_t size, int prot)
{
	char *ptr = mmap(NULL, size, prot, MAP_SHARED, file_fd, 0);

	igt_assert_f(ptr != MAP_FAILED, "mmap of fd %d: %s\n", file_fd, strerror(errno));
	return ptr;
}

/* The file's @size bytes through read(2) must be pattern @seed. */
static void check_file(int file_fd, uint64_t size, uint32_t seed, const char *what)
{
	char *buf = malloc(size);

	igt_assert(buf);
	igt_assert_eq(pread(file_fd, buf, size, 0), (ssize_t)size);
	check_data(buf, size, seed, what);
	free(buf);
}

static void write_file_pattern(int file_fd, uint64_t size, uint32_t seed)
{
	char *buf = malloc(size);

	igt_assert(buf);
	hmmgpu_fill_pattern(buf, size, seed);
	igt_assert_eq(pwrite(file_fd, buf, size, 0), (ssize_t)size);
	free(buf);
}

/*
 * After the file's pages were written back and dropped from the page cache,
 * with nothing mapping them: read(2) reads them from the disk. A fresh
 * mapping's mincore() says how many were dropped.
 */
static void check_file_from_disk(int file_fd, uint64_t size, uint32_t seed, const char *what)
{
	uint64_t dropped;
	char *probe;

	igt_assert_eq(fsync(file_fd), 0);
	drop_caches();
	probe = map_file(file_fd, size, PROT_READ);
	dropped = count_not_resident(probe, size);
	igt_assert_eq(munmap(probe, size), 0);
	igt_info("%s: %" PRIu64 " of %" PRIu64 " pages dropped from the page cache\n", what,
		 dropped, size / page);
	igt_assert_f(dropped > 0, "drop_caches dropped none of the file's pages\n");
	check_file(file_fd, size, seed, what);
}

/*
 * A MAP_SHARED mapping of a file on ext4. Fault and prefault modes: the GPU
 * writes the file through a userptr, msync() writes it back (and write-
 * protects the pages), the GPU writes again; once unmapped, written back and
 * dropped from the page cache, read(2) must find the GPU's second writes on
 * the disk. Then the CPU writes the file with write(2), and the GPU reads
 * that through a new mapping.
 *
 * Pinned mode: the core MM refuses long-term write pins of a writable shared
 * mapping of a file that is written back (-EFAULT, nothing stays pinned);
 * read-only pins are allowed, through a read-only binding or a read-only
 * userptr, and the GPU reads what the CPU writes through the mapping and
 * with write(2), writeback and drop_caches notwithstanding.
 */
static void test_file_writeback(uint32_t mode)
{
	const uint64_t size = SZ_2M;
	uint32_t uptr, uro;
	struct ctx c;
	char *ptr;
	int file_fd;

	file_fd = ext4_file(size);
	write_file_pattern(file_fd, size, 1);
	igt_assert_eq(fsync(file_fd), 0);
	ptr = map_file(file_fd, size, PROT_READ | PROT_WRITE);

	ctx_init(&c, mode, size);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);

	if (mode == DRM_HMMGPU_VM_MODE_PINNED) {
		struct drm_hmmgpu_vm_stats s;

		igt_assert_eq(__hmmgpu_vm_bind(c.fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, uptr, 0,
					       USERPTR_VA, size, 0), -EFAULT);
		vm_stats(&c, &s);
		igt_assert_eq_u64(s.pinned_pages, 0);

		/* Read-only: pinned, and the GPU reads the file. */
		hmmgpu_vm_map(c.fd, c.vm, uptr, DRM_HMMGPU_VM_BIND_READ_ONLY, USERPTR_VA, size,
			      0);
		vm_stats(&c, &s);
		igt_assert_eq_u64(s.pinned_pages, size / page);
		gpu_check_pattern(&c, USERPTR_VA, size, 1, "GPU read of the file");
		igt_assert_eq(gpu_copy(&c, USERPTR_VA, BO_VA, size), -EFAULT);
		check_file(file_fd, size, 1, "the file after a refused GPU write");

		/* The CPU writes through the mapping: the GPU reads that. */
		hmmgpu_fill_pattern(ptr, size, 2);
		gpu_check_pattern(&c, USERPTR_VA, size, 2,
				  "GPU read of the CPU's writes through the mapping");

		/* Writeback and drop_caches: the GPU still reads the file's data. */
		igt_assert_eq(msync(ptr, size, MS_SYNC), 0);
		drop_caches();
		gpu_check_pattern(&c, USERPTR_VA, size, 2, "GPU read after writeback");
		check_file(file_fd, size, 2, "read(2) after writeback");

		/* write(2): the GPU reads it. */
		write_file_pattern(file_fd, size, 3);
		gpu_check_pattern(&c, USERPTR_VA, size, 3, "GPU read of write(2)'s data");
		hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);

		/* A read-only userptr binds as well. */
		uro = hmmgpu_userptr_create(c.fd, ptr, size, DRM_HMMGPU_USERPTR_READ_ONLY);
		hmmgpu_vm_map(c.fd, c.vm, uro, 0, USERPTR_VA, size, 0);
		gpu_check_pattern(&c, USERPTR_VA, size, 3, "GPU read through a read-only userptr");
		hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
		gem_close(c.fd, uro);
		gem_close(c.fd, uptr);
		igt_assert_eq(munmap(ptr, size), 0);
	} else {
		hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
		gpu_write_pattern(&c, USERPTR_VA, size, 10);
		igt_assert_eq(msync(ptr, size, MS_SYNC), 0);
		check_file(file_fd, size, 10, "read(2) after msync of the GPU's writes");
		/* Written back and clean again: the GPU must dirty them again. */
		gpu_write_pattern(&c, USERPTR_VA, size, 11);
		check_data(ptr, size, 11, "CPU read of the GPU's writes after writeback");
		hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
		gem_close(c.fd, uptr);
		igt_assert_eq(munmap(ptr, size), 0);
		check_file_from_disk(file_fd, size, 11,
				     "read(2) from the disk of the GPU's writes after writeback");

		/* write(2), then a new mapping: the GPU reads the new data. */
		write_file_pattern(file_fd, size, 12);
		ptr = map_file(file_fd, size, PROT_READ | PROT_WRITE);
		uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
		hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
		gpu_check_pattern(&c, USERPTR_VA, size, 12, "GPU read of write(2)'s data");
		/* Dropped while mapped (clean pages can be): the GPU reads them back. */
		igt_assert_eq(fsync(file_fd), 0);
		drop_caches();
		gpu_check_pattern(&c, USERPTR_VA, size, 12, "GPU read after drop_caches");
		gpu_write_pattern(&c, USERPTR_VA, size, 13);
		hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
		gem_close(c.fd, uptr);
		igt_assert_eq(munmap(ptr, size), 0);
		check_file_from_disk(file_fd, size, 13, "read(2) from the disk of the GPU's writes");
	}

	ctx_fini(&c);
	close(file_fd);
}

/*
 * A memfd (shmem) mapped MAP_SHARED, in every mode (pinned mode may pin
 * shmem for writing): GPU writes survive msync, drop_caches and, with swap,
 * MADV_PAGEOUT (shmem swap-out), read back with read(2); what write(2) puts
 * there, the GPU reads next.
 */
static void test_shmem_writeback(uint32_t mode)
{
	const uint64_t size = BUF_SIZE;
	char what[128];
	uint32_t uptr;
	struct ctx c;
	int file_fd;
	char *ptr;

	file_fd = memfd_create("hmmgpu_mm_events", MFD_CLOEXEC);
	igt_assert_f(file_fd >= 0, "memfd_create: %s\n", strerror(errno));
	igt_assert_eq(ftruncate(file_fd, size), 0);
	write_file_pattern(file_fd, size, 1);
	ptr = map_file(file_fd, size, PROT_READ | PROT_WRITE);

	ctx_init(&c, mode, size);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);

	for (int round = 0; round < 2; round++) {
		const uint32_t gpu_seed = 10 + 2 * round, cpu_seed = 11 + 2 * round;

		gpu_write_pattern(&c, USERPTR_VA, size, gpu_seed);
		igt_assert_eq(msync(ptr, size, MS_SYNC), 0);
		drop_caches();
		if (swap_active()) {
			igt_assert_eq(madvise(ptr, size, MADV_PAGEOUT), 0);
			if (mode == DRM_HMMGPU_VM_MODE_PINNED) {
				pinned_pages_settled(&c, 0);
				igt_assert_eq(madvise(ptr, size, MADV_PAGEOUT), 0);
			}
			igt_info("%s: %" PRIu64 " of %" PRIu64 " shmem pages paged out\n",
				 mode_name(&c), count_not_resident(ptr, size), size / page);
		}
		snprintf(what, sizeof(what), "round %d: read(2) of the GPU's writes", round);
		check_file(file_fd, size, gpu_seed, what);
		snprintf(what, sizeof(what), "round %d: GPU read of its own writes", round);
		gpu_check_pattern(&c, USERPTR_VA, size, gpu_seed, what);

		write_file_pattern(file_fd, size, cpu_seed);
		snprintf(what, sizeof(what), "round %d: GPU read of write(2)'s data", round);
		gpu_check_pattern(&c, USERPTR_VA, size, cpu_seed, what);
	}

	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);
	ctx_fini(&c);
	igt_assert_eq(munmap(ptr, size), 0);
	close(file_fd);
}

/* KSM. */

#define KSM "/sys/kernel/mm/ksm/"

static long ksm_saved[3] = { -1, -1, -1 };
static const char *const ksm_knobs[3] = {
	KSM "run", KSM "pages_to_scan", KSM "sleep_millisecs",
};

static void ksm_restore(void)
{
	if (ksm_saved[0] < 0)
		return;
	/* Unmerge what is left, then put the knobs back. */
	write_long(ksm_knobs[0], 2);
	for (int i = 2; i >= 0; i--)
		write_long(ksm_knobs[i], ksm_saved[i]);
	ksm_saved[0] = -1;
}

static bool ksm_usable(void)
{
	return access(KSM "run", W_OK) == 0;
}

/* How many pages of @a share their frame with the same page of @b. */
static uint64_t count_merged(const char *a, const char *b, uint64_t size)
{
	uint64_t *pa = pfns(a, size), *pb = pfns(b, size), n = 0;

	for (uint64_t i = 0; i < size / page; i++)
		n += pa[i] && pa[i] == pb[i];
	free(pa);
	free(pb);
	return n;
}

/*
 * Two buffers of the same data, both bound and read by the GPU, are merged
 * by KSM (the pages of one share frames with the other). Then the GPU
 * writes one: its writes must go to new pages of that buffer (copy-on-write
 * broken), never to the merged page the other buffer still maps.
 */
static void test_ksm(uint32_t mode)
{
	const uint64_t size = 128 * page;
	const uint64_t va_a = USERPTR_VA, va_b = USERPTR_VA + VA_STRIDE;
	uint64_t merged = 0;
	struct timespec start;
	uint32_t ua, ub;
	char *a, *b;
	struct ctx c;

	a = alloc_small_pages(size, 1);
	b = alloc_small_pages(size, 1);

	ctx_init(&c, mode, size);
	ua = hmmgpu_userptr_create(c.fd, a, size, 0);
	ub = hmmgpu_userptr_create(c.fd, b, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, ua, 0, va_a, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, ub, 0, va_b, size, 0);
	gpu_check_pattern(&c, va_a, size, 1, "GPU read of the first buffer");
	gpu_check_pattern(&c, va_b, size, 1, "GPU read of the second buffer");

	for (int i = 0; i < 3; i++)
		ksm_saved[i] = read_long(ksm_knobs[i], -1);
	igt_assert(write_long(ksm_knobs[1], 1000));
	igt_assert(write_long(ksm_knobs[2], 10));
	igt_assert_eq(madvise(a, size, MADV_MERGEABLE), 0);
	igt_assert_eq(madvise(b, size, MADV_MERGEABLE), 0);
	igt_assert(write_long(ksm_knobs[0], 1));

	/* KSM needs two scans at least; pinned pages merge once unpinned. */
	igt_gettime(&start);
	do {
		usleep(100 * 1000);
		merged = count_merged(a, b, size);
	} while (merged < size / page && igt_seconds_elapsed(&start) < 60);
	igt_assert(write_long(ksm_knobs[0], 0));
	igt_info("%s: KSM merged %" PRIu64 " of %" PRIu64 " pages (pages_shared %ld)\n",
		 mode_name(&c), merged, size / page, read_long(KSM "pages_shared", -1));
	igt_assert_f(merged > 0, "KSM merged none of the buffers' pages\n");

	/* The GPU reads merged pages fine, then writes one buffer. */
	gpu_check_pattern(&c, va_a, size, 1, "GPU read of the merged first buffer");
	gpu_write_pattern(&c, va_a, size, 2);
	check_data(a, size, 2, "CPU read of the GPU's writes to the merged buffer");
	check_data(b, size, 1, "the other buffer after GPU writes to its merged twin");
	gpu_check_pattern(&c, va_b, size, 1, "GPU read of the other buffer");
	igt_assert_eq_u64(count_merged(a, b, size), 0);

	/* The CPU writes the other buffer: the GPU reads that, and the first is intact. */
	hmmgpu_fill_pattern(b, size, 3);
	gpu_check_pattern(&c, va_b, size, 3, "GPU read of the CPU's writes to the other buffer");
	gpu_check_pattern(&c, va_a, size, 2, "GPU read of the first buffer again");

	ksm_restore();
	hmmgpu_vm_unmap(c.fd, c.vm, va_a, size);
	hmmgpu_vm_unmap(c.fd, c.vm, va_b, size);
	gem_close(c.fd, ua);
	gem_close(c.fd, ub);
	ctx_fini(&c);
	igt_assert_eq(munmap(a, size), 0);
	igt_assert_eq(munmap(b, size), 0);
}

/* Transparent huge pages. */

/*
 * MADV_FREE of whole huge pages (lazy-free THPs), then GPU writes through
 * 2 MiB entries and reclaim: the huge pages the GPU wrote must not be
 * discarded.
 */
static void test_madv_free_thp(uint32_t mode)
{
	const uint64_t size = SZ_4M;
	struct drm_hmmgpu_vm_stats s0, s1;
	uint64_t map_size;
	uint32_t uptr;
	struct ctx c;
	void *map;
	char *ptr;

	ptr = hmmgpu_thp_alloc(size, 1, &map, &map_size);
	hmmgpu_require_thp(map, map_size, ptr, size / 1024);

	ctx_init(&c, mode, size);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	igt_assert_eq(madvise(ptr, size, MADV_FREE), 0);
	vm_stats(&c, &s0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	gpu_write_pattern(&c, USERPTR_VA, size, 10);
	vm_stats(&c, &s1);
	igt_info("%s: AnonHugePages %" PRIu64 " kB, %llu 2 MiB entries written\n",
		 mode_name(&c), hmmgpu_anon_huge_kb(ptr),
		 (unsigned long long)(s1.entries_2m - s0.entries_2m));

	reclaim_lazyfree(&c, ptr, size, 0);
	check_data(ptr, size, 10, "CPU read of GPU writes to lazy-free huge pages after reclaim");
	gpu_check_pattern(&c, USERPTR_VA, size, 10,
			  "GPU read of its writes to lazy-free huge pages after reclaim");
	hmmgpu_fill_pattern(ptr, size, 11);
	gpu_check_pattern(&c, USERPTR_VA, size, 11, "GPU read of the CPU's new writes");

	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);
	ctx_fini(&c);
	igt_assert_eq(munmap(map, map_size), 0);
}

/* Splits the huge pages of [@ptr, @ptr + @size) with debugfs, if it can. */
static bool split_huge_pages(const char *ptr, uint64_t size)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "%d,%#lx,%#lx", getpid(), (unsigned long)(uintptr_t)ptr,
		 (unsigned long)((uintptr_t)ptr + size));
	return write_file("/sys/kernel/debug/split_huge_pages", buf);
}

/*
 * A userptr of two huge pages at a 2 MiB-aligned GPU address: the GPU
 * writes it through 2 MiB entries. The PMD of the first huge page is split
 * (mprotect of one small page there, and back), the huge pages themselves
 * are split (debugfs, where there), and a small page inside each is dropped
 * (MADV_DONTNEED): each time, the CPU reads the GPU's data, the GPU reads
 * the CPU's, and no 2 MiB entry keeps mapping a page the CPU no longer
 * maps there (the GPU reads zeros where the small page was dropped).
 */
static void test_thp_split(uint32_t mode)
{
	const uint64_t size = SZ_4M, hole1 = 5 * page, hole2 = SZ_2M + 77 * page;
	struct drm_hmmgpu_vm_stats s0, s1, s2;
	uint64_t map_size;
	uint32_t uptr;
	struct ctx c;
	void *map;
	char *ptr;

	ptr = hmmgpu_thp_alloc(size, 1, &map, &map_size);
	hmmgpu_require_thp(map, map_size, ptr, size / 1024);

	ctx_init(&c, mode, size);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	vm_stats(&c, &s0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	gpu_write_pattern(&c, USERPTR_VA, size, 10);
	vm_stats(&c, &s1);
	igt_assert_lt_u64(s0.entries_2m, s1.entries_2m);
	check_data(ptr, size, 10, "CPU read of the GPU's writes to huge pages");

	/* The PMD of the first huge page split. */
	igt_assert_eq(mprotect(ptr + hole1, page, PROT_READ), 0);
	igt_assert_eq(mprotect(ptr + hole1, page, PROT_READ | PROT_WRITE), 0);
	igt_info("%s: after the PMD split, AnonHugePages %" PRIu64 " kB\n", mode_name(&c),
		 hmmgpu_anon_huge_kb(ptr));
	gpu_check_pattern(&c, USERPTR_VA, size, 10, "GPU read after a PMD split");
	hmmgpu_fill_pattern(ptr, size, 11);
	gpu_check_pattern(&c, USERPTR_VA, size, 11, "GPU read of CPU writes after a PMD split");
	vm_stats(&c, &s2);
	/* Snapshots of a split PMD report small pages: 4 KiB entries now. */
	if (mode != DRM_HMMGPU_VM_MODE_PINNED)
		igt_assert_lt_u64(s1.entries_4k, s2.entries_4k);
	gpu_write_pattern(&c, USERPTR_VA, size, 12);
	check_data(ptr, size, 12, "CPU read of GPU writes after a PMD split");

	/* The huge pages themselves split. */
	if (split_huge_pages(ptr, size)) {
		igt_info("%s: after splitting the huge pages, AnonHugePages %" PRIu64 " kB\n",
			 mode_name(&c), hmmgpu_anon_huge_kb(ptr));
		gpu_check_pattern(&c, USERPTR_VA, size, 12, "GPU read after a THP split");
		hmmgpu_fill_pattern(ptr, size, 13);
		gpu_check_pattern(&c, USERPTR_VA, size, 13,
				  "GPU read of CPU writes after a THP split");
		gpu_write_pattern(&c, USERPTR_VA, size, 12);
		check_data(ptr, size, 12, "CPU read of GPU writes after a THP split");
	} else {
		igt_info("no /sys/kernel/debug/split_huge_pages: huge pages not split\n");
	}

	/* A small page dropped in each 2 MiB: those read zeros, to both. */
	igt_assert_eq(madvise(ptr + hole1, page, MADV_DONTNEED), 0);
	igt_assert_eq(madvise(ptr + hole2, page, MADV_DONTNEED), 0);
	memset(c.bo_ptr, 0xa5, size);
	igt_assert_eq(gpu_copy(&c, BO_VA, USERPTR_VA, size), 0);
	for (int h = 0; h < 2; h++) {
		const uint64_t off = h ? hole2 : hole1;
		uint32_t *q = (uint32_t *)(c.bo_ptr + off);

		for (uint64_t i = 0; i < page / 4; i++) {
			igt_assert_f(!q[i], "GPU read %#x at byte %#" PRIx64 " of a dropped "
				     "page\n", q[i], off + i * 4);
			/* The rest is compared below, with the pattern put in the holes. */
			q[i] = hmmgpu_pattern(12, off / 4 + i);
		}
	}
	check_data(c.bo_ptr, size, 12, "GPU read after MADV_DONTNEED of two small pages");
	gpu_write_pattern(&c, USERPTR_VA, size, 14);
	check_data(ptr, size, 14, "CPU read of GPU writes after MADV_DONTNEED");

	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);
	ctx_fini(&c);
	igt_assert_eq(munmap(map, map_size), 0);
}

/*
 * Userptrs that cover a huge page only in part, at GPU addresses where a
 * 2 MiB entry would be aligned: the GPU fills the whole userptr, and the
 * rest of the huge page (outside the userptr) keeps its guard pattern; GPU
 * writes just outside the binding fault. No 2 MiB entry is written.
 */
static void test_thp_partial(uint32_t mode)
{
	const uint64_t size = SZ_4M;
	/* [0, 2M - 4K) at an aligned GPU address: the end is outside. */
	const uint64_t va_a = USERPTR_VA;
	/* [2M + 4K, 4M) at an aligned GPU address + 4K: the start is outside. */
	const uint64_t va_b = USERPTR_VA + VA_STRIDE;
	struct drm_hmmgpu_vm_stats s0, s1;
	uint64_t map_size;
	uint32_t ua, ub;
	struct ctx c;
	char *expect;
	void *map;
	char *ptr;

	ptr = hmmgpu_thp_alloc(size, 1, &map, &map_size);
	hmmgpu_require_thp(map, map_size, ptr, size / 1024);
	expect = malloc(size);
	igt_assert(expect);
	hmmgpu_fill_pattern(expect, size, 1);

	ctx_init(&c, mode, size);
	ua = hmmgpu_userptr_create(c.fd, ptr, SZ_2M - page, 0);
	ub = hmmgpu_userptr_create(c.fd, ptr + SZ_2M + page, SZ_2M - page, 0);
	vm_stats(&c, &s0);
	hmmgpu_vm_map(c.fd, c.vm, ua, 0, va_a, SZ_2M - page, 0);
	hmmgpu_vm_map(c.fd, c.vm, ub, 0, va_b + page, SZ_2M - page, 0);

	/* GPU fills of each whole userptr, and a checksum through each. */
	{
		struct drm_hmmgpu_cmd cmds[2], *cmd = cmds;

		cmd = hmmgpu_cmd_fill(cmd, va_a, SZ_2M - page, 0x61616161);
		cmd = hmmgpu_cmd_fill(cmd, va_b + page, SZ_2M - page, 0x62626262);
		igt_assert_eq(hmmgpu_exec_job(c.fd, c.vm, cmds, cmd - cmds, 0), 0);
	}
	memset(expect, 0x61, SZ_2M - page);
	memset(expect + SZ_2M + page, 0x62, SZ_2M - page);
	for (uint64_t i = 0; i < size / 4; i++)
		igt_assert_f(((uint32_t *)ptr)[i] == ((uint32_t *)expect)[i],
			     "byte %#" PRIx64 " reads %#x, expected %#x (%s)\n", i * 4,
			     ((uint32_t *)ptr)[i], ((uint32_t *)expect)[i],
			     i * 4 >= SZ_2M - page && i * 4 < SZ_2M + page ?
			     "outside both userptrs" : "inside a userptr");

	/* Just outside each binding: nothing is mapped, the GPU faults. */
	igt_assert_eq(gpu_copy(&c, va_a + SZ_2M - page, BO_VA, page), -EFAULT);
	igt_assert_eq(gpu_copy(&c, va_b, BO_VA, page), -EFAULT);
	igt_assert_eq(gpu_copy(&c, BO_VA, va_a + SZ_2M - page, page), -EFAULT);
	igt_assert_eq(gpu_copy(&c, BO_VA, va_b, page), -EFAULT);
	hmmgpu_check_pattern_at(ptr, SZ_2M - page, 2 * page, 1);

	vm_stats(&c, &s1);
	igt_assert_eq_u64(s1.entries_2m, s0.entries_2m);

	hmmgpu_vm_unmap(c.fd, c.vm, va_a, SZ_2M - page);
	hmmgpu_vm_unmap(c.fd, c.vm, va_b + page, SZ_2M - page);
	gem_close(c.fd, ua);
	gem_close(c.fd, ub);
	ctx_fini(&c);
	igt_assert_eq(munmap(map, map_size), 0);
	free(expect);
}

/*
 * After small pages the GPU wrote (seed 10) were collapsed into huge pages by
 * @event: the CPU reads the GPU's data, the GPU reads the CPU's new writes
 * and the CPU the GPU's, and the VM mapped the huge pages with more 2 MiB
 * entries than it had in @s0.
 */
static void check_collapsed(struct ctx *c, char *ptr, uint64_t size,
			    const struct drm_hmmgpu_vm_stats *s0, const char *event)
{
	struct drm_hmmgpu_vm_stats s1;
	char what[96];

	snprintf(what, sizeof(what), "CPU read of the GPU's writes after %s", event);
	check_data(ptr, size, 10, what);
	hmmgpu_fill_pattern(ptr, size, 11);
	snprintf(what, sizeof(what), "GPU read of CPU writes after %s", event);
	gpu_check_pattern(c, USERPTR_VA, size, 11, what);
	gpu_write_pattern(c, USERPTR_VA, size, 12);
	snprintf(what, sizeof(what), "CPU read of GPU writes after %s", event);
	check_data(ptr, size, 12, what);
	vm_stats(c, &s1);
	igt_assert_lt_u64(s0->entries_2m, s1.entries_2m);
}

/*
 * Small pages the GPU wrote through 4 KiB entries, collapsed into huge pages
 * by MADV_COLLAPSE: the CPU reads the GPU's data in the huge pages, the GPU
 * reads the CPU's new writes there (not the old small pages) and maps them
 * with 2 MiB entries.
 */
static void test_thp_collapse(uint32_t mode)
{
	const uint64_t size = SZ_4M;
	struct drm_hmmgpu_vm_stats s0;
	uint64_t map_size;
	uint32_t uptr;
	struct ctx c;
	void *map;
	char *ptr;
	int ret = -1;


	map_size = size + SZ_2M;
	map = map_anon(map_size, MAP_PRIVATE);
	ptr = (char *)ALIGN((uintptr_t)map, (uintptr_t)SZ_2M);
	igt_assert_eq(madvise(map, map_size, MADV_NOHUGEPAGE), 0);
	hmmgpu_fill_pattern(ptr, size, 1);
	igt_assert_eq_u64(hmmgpu_anon_huge_kb(ptr), 0);

	ctx_init(&c, mode, size);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	gpu_write_pattern(&c, USERPTR_VA, size, 10);
	vm_stats(&c, &s0);

	igt_assert_eq(madvise(ptr, size, MADV_HUGEPAGE), 0);
	if (mode == DRM_HMMGPU_VM_MODE_PINNED) {
		/*
		 * The core MM does not collapse pinned pages: the data stays in
		 * them. Unbound, they are unpinned and collapse; bound again,
		 * they are pinned again.
		 */
		ret = madvise(ptr, size, MADV_COLLAPSE);
		igt_info("%s: MADV_COLLAPSE of pinned pages: %d (%s)\n", mode_name(&c), ret,
			 ret ? strerror(errno) : "collapsed");
		igt_assert_f(ret, "MADV_COLLAPSE collapsed pinned pages\n");
		errno = 0;
		check_data(ptr, size, 10, "CPU read of pinned pages MADV_COLLAPSE left");
		gpu_check_pattern(&c, USERPTR_VA, size, 10,
				  "GPU read of pinned pages MADV_COLLAPSE left");
		hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
		igt_assert_eq_u64(pinned_pages_settled(&c, 0), 0);
	}
	/* Pages on their way to the LRU may fail the first time. */
	for (int tries = 0; tries < 3 && ret; tries++) {
		ret = madvise(ptr, size, MADV_COLLAPSE);
		if (ret)
			igt_info("%s: MADV_COLLAPSE: %s\n", mode_name(&c), strerror(errno));
		if (ret && errno == EINVAL)
			break;
	}
	errno = 0;
	if (ret) {
		hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
		gem_close(c.fd, uptr);
		ctx_fini(&c);
		munmap(map, map_size);
	}
	igt_require_f(ret == 0, "MADV_COLLAPSE did not collapse the buffer\n");
	if (mode == DRM_HMMGPU_VM_MODE_PINNED)
		hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	igt_info("%s: after MADV_COLLAPSE, AnonHugePages %" PRIu64 " kB\n", mode_name(&c),
		 hmmgpu_anon_huge_kb(ptr));
	igt_assert_lte_u64(size / 1024, hmmgpu_anon_huge_kb(ptr));

	check_collapsed(&c, ptr, size, &s0, "the collapse");
	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);
	ctx_fini(&c);
	igt_assert_eq(munmap(map, map_size), 0);
}

#define KHUGEPAGED "/sys/kernel/mm/transparent_hugepage/khugepaged/"

static long khugepaged_saved[3] = { -1, -1, -1 };
static const char *const khugepaged_knobs[3] = {
	KHUGEPAGED "scan_sleep_millisecs", KHUGEPAGED "alloc_sleep_millisecs",
	KHUGEPAGED "pages_to_scan",
};

static void khugepaged_restore(void)
{
	for (int i = 0; i < 3; i++) {
		if (khugepaged_saved[i] >= 0)
			write_long(khugepaged_knobs[i], khugepaged_saved[i]);
		khugepaged_saved[i] = -1;
	}
}

/*
 * As thp-collapse, but khugepaged collapses the small pages, in its own
 * time: the test waits for it (at most 30 s, else it skips). Pinned pages
 * do not collapse: in pinned mode the userptr is unbound meanwhile.
 */
static void test_thp_khugepaged(uint32_t mode)
{
	const uint64_t size = SZ_4M;
	struct drm_hmmgpu_vm_stats s0;
	struct timespec start;
	uint64_t map_size, kb;
	uint32_t uptr;
	struct ctx c;
	void *map;
	char *ptr;

	map_size = size + SZ_2M;
	map = map_anon(map_size, MAP_PRIVATE);
	ptr = (char *)ALIGN((uintptr_t)map, (uintptr_t)SZ_2M);
	igt_assert_eq(madvise(map, map_size, MADV_NOHUGEPAGE), 0);
	hmmgpu_fill_pattern(ptr, size, 1);

	ctx_init(&c, mode, size);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	gpu_write_pattern(&c, USERPTR_VA, size, 10);
	vm_stats(&c, &s0);
	if (mode == DRM_HMMGPU_VM_MODE_PINNED) {
		hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
		igt_assert_eq_u64(pinned_pages_settled(&c, 0), 0);
	}

	for (int i = 0; i < 3; i++)
		khugepaged_saved[i] = read_long(khugepaged_knobs[i], -1);
	write_long(khugepaged_knobs[0], 10);
	write_long(khugepaged_knobs[1], 10);
	write_long(khugepaged_knobs[2], 4096);
	igt_assert_eq(madvise(ptr, size, MADV_HUGEPAGE), 0);
	igt_gettime(&start);
	do {
		usleep(100 * 1000);
		kb = hmmgpu_anon_huge_kb(ptr);
	} while (kb < size / 1024 && igt_seconds_elapsed(&start) < 30);
	khugepaged_restore();
	igt_info("%s: khugepaged collapsed %" PRIu64 " kB\n", mode_name(&c), kb);
	if (!kb) {
		if (mode != DRM_HMMGPU_VM_MODE_PINNED)
			hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
		gem_close(c.fd, uptr);
		ctx_fini(&c);
		munmap(map, map_size);
	}
	igt_require_f(kb, "khugepaged collapsed nothing in 30 s\n");
	if (mode == DRM_HMMGPU_VM_MODE_PINNED)
		hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);

	check_collapsed(&c, ptr, size, &s0, "khugepaged");
	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);
	ctx_fini(&c);
	igt_assert_eq(munmap(map, map_size), 0);
}

/* Long-term pins of ZONE_MOVABLE pages. */

struct pfn_range {
	uint64_t start, end;
};

/* The PFN ranges of the Movable zones with present pages, from /proc/zoneinfo. */
static int movable_zones(struct pfn_range *r, int max)
{
	unsigned long long v;
	bool movable = false;
	uint64_t spanned = 0, present = 0;
	char line[256];
	int n = 0;
	FILE *f;

	f = fopen("/proc/zoneinfo", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Node ", 5)) {
			movable = strstr(line, "zone  Movable") || strstr(line, "zone Movable");
			spanned = present = 0;
		} else if (movable && sscanf(line, " spanned %llu", &v) == 1) {
			spanned = v;
		} else if (movable && sscanf(line, " present %llu", &v) == 1) {
			present = v;
		} else if (movable && sscanf(line, " start_pfn: %llu", &v) == 1) {
			if (present && n < max) {
				r[n].start = v;
				r[n].end = v + spanned;
				n++;
			}
			movable = false;
		}
	}
	fclose(f);
	return n;
}

static uint64_t count_in_zones(const uint64_t *pfn, uint64_t n, const struct pfn_range *r,
			       int nr)
{
	uint64_t in = 0;

	for (uint64_t i = 0; i < n; i++)
		for (int z = 0; z < nr; z++)
			if (pfn[i] >= r[z].start && pfn[i] < r[z].end) {
				in++;
				break;
			}
	return in;
}

/*
 * Pinned mode: FOLL_LONGTERM pins of pages in ZONE_MOVABLE migrate them out
 * first (the core MM's rule), with their data; the pinned pages the GPU
 * uses are those the CPU maps.
 */
static void test_pin_movable(void)
{
	const uint64_t size = BUF_SIZE, n = size / page;
	struct drm_hmmgpu_vm_stats s;
	struct pfn_range zones[8];
	uint64_t *before, *after;
	uint64_t in_before, in_after;
	uint32_t uptr;
	struct ctx c;
	int nr;
	char *ptr;

	igt_require_f(hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PINNED), "no pinned mode\n");
	nr = movable_zones(zones, 8);
	igt_require_f(nr > 0, "no populated ZONE_MOVABLE in /proc/zoneinfo\n");
	igt_require_f(pagemap_has_pfns(), "/proc/self/pagemap shows no page frame numbers\n");

	ptr = alloc_small_pages(size, 1);
	before = pfns(ptr, size);
	in_before = count_in_zones(before, n, zones, nr);
	igt_info("%" PRIu64 " of %" PRIu64 " pages in ZONE_MOVABLE before pinning\n",
		 in_before, n);
	if (!in_before)
		munmap(ptr, size);
	igt_require_f(in_before > 0, "none of the buffer's pages is in ZONE_MOVABLE\n");

	ctx_init(&c, DRM_HMMGPU_VM_MODE_PINNED, size);
	uptr = hmmgpu_userptr_create(c.fd, ptr, size, 0);
	hmmgpu_vm_map(c.fd, c.vm, uptr, 0, USERPTR_VA, size, 0);
	vm_stats(&c, &s);
	igt_assert_eq_u64(s.pinned_pages, n);
	after = pfns(ptr, size);
	in_after = count_in_zones(after, n, zones, nr);
	igt_info("%" PRIu64 " of %" PRIu64 " pages in ZONE_MOVABLE once pinned\n", in_after, n);
	igt_assert_eq_u64(in_after, 0);

	check_data(ptr, size, 1, "CPU read of pages migrated for pinning");
	gpu_check_pattern(&c, USERPTR_VA, size, 1, "GPU read of pages migrated for pinning");
	gpu_write_pattern(&c, USERPTR_VA, size, 2);
	check_data(ptr, size, 2, "CPU read of GPU writes to pinned pages");
	hmmgpu_fill_pattern(ptr, size, 3);
	gpu_check_pattern(&c, USERPTR_VA, size, 3, "GPU read of CPU writes to pinned pages");

	free(before);
	free(after);
	hmmgpu_vm_unmap(c.fd, c.vm, USERPTR_VA, size);
	gem_close(c.fd, uptr);
	ctx_fini(&c);
	igt_assert_eq(munmap(ptr, size), 0);
}

/* Memory cgroup pressure. */

#define CGROUP "/sys/fs/cgroup"
#define MEMCG_PIECES 6
#define MEMCG_PIECE (SZ_2M)
#define MEMCG_MAX (4 * SZ_2M)

static bool memcg_usable(void)
{
	char buf[256];

	return read_file(CGROUP "/cgroup.controllers", buf, sizeof(buf)) &&
	       strstr(buf, "memory");
}

/* In the child, already in the cgroup: bind, write and check every piece. */
static void memcg_child(uint32_t mode, int test_fd, uint32_t vm, char *bo_ptr)
{
	const bool keep_bound = mode == DRM_HMMGPU_VM_MODE_FAULT;
	char *piece[MEMCG_PIECES];
	uint32_t uptr[MEMCG_PIECES];
	struct ctx c = {
		.fd = test_fd, .mode = mode, .vm = vm, .bo_size = MEMCG_PIECE, .bo_ptr = bo_ptr,
	};
	uint64_t swapped = 0;
	char what[128];

	/*
	 * A pinned bind that must swap pages of its piece in (pin_user_pages()
	 * with FOLL_LONGTERM) gets the child OOM-killed under this memory.max
	 * more often than not, although every other piece is unpinned and
	 * MADV_PAGEOUT frees them: at the OOM, all the cgroup's memory is
	 * active anon that reclaim does not take (pages the pins touched look
	 * recently used). So each piece is marked cold once written and once
	 * read back, and the CPU reads each piece back before it is bound
	 * again.
	 *
	 * Only fault mode mirrors page by page. A prefault job needs every
	 * piece bound to the VM resident at once, and pinned pages cannot be
	 * reclaimed at all: in those modes only one piece is bound at a time,
	 * and the others are bound again to be read.
	 */
	for (int i = 0; i < MEMCG_PIECES; i++) {
		const uint64_t va = USERPTR_VA + i * SZ_2M;

		/* Not alloc_small_pages(): its second mapping would double the pressure. */
		piece[i] = map_anon(MEMCG_PIECE, MAP_PRIVATE);
		igt_assert_eq(madvise(piece[i], MEMCG_PIECE, MADV_NOHUGEPAGE), 0);
		hmmgpu_fill_pattern(piece[i], MEMCG_PIECE, 1);
		uptr[i] = hmmgpu_userptr_create(test_fd, piece[i], MEMCG_PIECE, 0);
		hmmgpu_vm_map(test_fd, vm, uptr[i], 0, va, MEMCG_PIECE, 0);
		gpu_write_pattern(&c, va, MEMCG_PIECE, 100 + i);
		if (!keep_bound) {
			hmmgpu_vm_unmap(test_fd, vm, va, MEMCG_PIECE);
			igt_assert_eq_u64(pinned_pages_settled(&c, 0), 0);
		}
		/* Done with for now: reclaim may take it first (see above). */
		igt_assert_eq(madvise(piece[i], MEMCG_PIECE, MADV_COLD), 0);
	}
	for (int i = 0; i < MEMCG_PIECES; i++)
		swapped += count_swapped(piece[i], MEMCG_PIECE);
	igt_info("%s: %" PRIu64 " of %" PRIu64 " pages swapped out under the limit\n",
		 hmmgpu_vm_mode_name(mode), swapped, (uint64_t)(MEMCG_PIECES * MEMCG_PIECE / page));
	igt_assert_f(swapped > 0, "nothing was reclaimed under memory.max\n");

	for (int i = 0; i < MEMCG_PIECES; i++) {
		const uint64_t va = USERPTR_VA + i * SZ_2M;

		snprintf(what, sizeof(what), "piece %d: CPU read of the GPU's writes", i);
		check_data(piece[i], MEMCG_PIECE, 100 + i, what);
		hmmgpu_fill_pattern(piece[i], MEMCG_PIECE, 200 + i);
		if (!keep_bound)
			hmmgpu_vm_map(test_fd, vm, uptr[i], 0, va, MEMCG_PIECE, 0);
		snprintf(what, sizeof(what), "piece %d: GPU read of the CPU's writes", i);
		gpu_check_pattern(&c, va, MEMCG_PIECE, 200 + i, what);
		hmmgpu_vm_unmap(test_fd, vm, va, MEMCG_PIECE);
		igt_assert_eq_u64(pinned_pages_settled(&c, 0), 0);
		gem_close(test_fd, uptr[i]);
		igt_assert_eq(madvise(piece[i], MEMCG_PIECE, MADV_COLD), 0);
	}
}

/*
 * A child in a memory cgroup whose memory.max is two thirds of what it binds and
 * has the GPU write, piece by piece: reclaim swaps the pieces out under the
 * GPU's mirrors; every word the GPU wrote is read back, and the GPU reads
 * the CPU's new writes.
 */
static void test_memcg(uint32_t mode)
{
	uint64_t acquired0 = 0, released0 = 0;
	char dir[128], path[192];
	struct ctx c;

	igt_assert(hmmgpu_read_pin_counters(&acquired0, &released0));
	snprintf(dir, sizeof(dir), CGROUP "/hmmgpu_mm_events.%d.%s", getpid(),
		 hmmgpu_vm_mode_name(mode));
	rmdir(dir);
	/* The memory controller for the root's children; it may be on already. */
	write_file(CGROUP "/cgroup.subtree_control", "+memory");
	igt_assert_f(mkdir(dir, 0755) == 0, "mkdir %s: %s\n", dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/memory.max", dir);
	igt_assert(write_long(path, MEMCG_MAX));

	igt_fork(child, 1) {
		/* The scratch object's pages are charged outside the cgroup. */
		ctx_init(&c, mode, MEMCG_PIECE);
		snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
		igt_assert(write_file(path, "0"));
		memcg_child(mode, c.fd, c.vm, c.bo_ptr);
		ctx_fini(&c);
	}
	igt_waitchildren();

	snprintf(path, sizeof(path), "%s/memory.events", dir);
	{
		char buf[512];

		if (read_file(path, buf, sizeof(buf)))
			igt_debug("memory.events:\n%s", buf);
	}
	igt_assert_eq(rmdir(dir), 0);
	hmmgpu_assert_pins_balanced(acquired0, released0, "after the child exited");
}

igt_main
{
	/* Static: changed inside subtests, between sigsetjmp() and siglongjmp(). */
	static const struct hmmgpu_vm_mode *m;

	igt_fixture {
		page = sysconf(_SC_PAGESIZE);
		fd = hmmgpu_open_vm_device();
		igt_require(hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_FEATURES) &
			    DRM_HMMGPU_FEATURE_USERPTR);
		hmmgpu_raise_memlock();
	}

	igt_describe("Lazy-free memory (MADV_FREE) the GPU writes, then reclaimed "
		     "(MADV_PAGEOUT): the GPU's writes dirty the pages, so none is "
		     "discarded; the GPU then reads the CPU's new writes.");
	igt_subtest_with_dynamic("madv-free-reclaim") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_anon_event(m->flags, &ev_madv_free);
	}

	igt_describe("Huge pages made lazy-free (MADV_FREE), written by the GPU through "
		     "2 MiB entries, then reclaimed: none of the GPU's writes is discarded.");
	igt_subtest_with_dynamic("madv-free-reclaim-thp") {
		igt_require_f(thp_enabled(), "transparent huge pages are disabled\n");
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_madv_free_thp(m->flags);
	}

	igt_describe("Anonymous memory the GPU wrote is swapped out (MADV_PAGEOUT, checked "
		     "in pagemap) and in, by the CPU or by the GPU first: no GPU write is "
		     "lost; pinned pages go out once unbound.");
	igt_subtest_with_dynamic("swap-out-in") {
		require_swap();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_anon_event(m->flags, &ev_swap);
	}

	igt_describe("GPU writes to pages swapped in by a CPU read and still in the swap "
		     "cache (clean, mapped writable) must dirty them: they survive the next "
		     "swap-out.");
	igt_subtest_with_dynamic("swapcache-write") {
		require_swap();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_swapcache_write(m->flags);
	}

	igt_describe("MADV_PAGEOUT of anonymous memory the GPU wrote (swapped out where "
		     "there is swap): the data stays, both ways.");
	igt_subtest_with_dynamic("pageout") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_anon_event(m->flags, &ev_pageout);
	}

	igt_describe("MADV_COLD of anonymous memory the GPU wrote: the data stays, both ways.");
	igt_subtest_with_dynamic("cold") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_anon_event(m->flags, &ev_cold);
	}

	igt_describe("A MAP_SHARED file on ext4: GPU writes survive msync, writeback and "
		     "drop_caches (read back from the disk); pinned mode refuses writable "
		     "long-term pins (-EFAULT) and reads through read-only pins.");
	igt_subtest_with_dynamic("file-writeback") {
		igt_require_f(ext4_mounted(), "no writable ext4 at " EXT4_DIR "\n");
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_file_writeback(m->flags);
	}

	igt_describe("A memfd mapped MAP_SHARED: GPU writes survive msync, drop_caches and "
		     "(with swap) shmem swap-out; read(2) and write(2) agree with the GPU.");
	igt_subtest_with_dynamic("shmem-writeback") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_shmem_writeback(m->flags);
	}

	igt_describe("Pages the GPU wrote migrate to the other NUMA node (move_pages, "
		     "mbind, migrate_pages): the CPU reads the GPU's data and the GPU the "
		     "CPU's new writes in the new pages; pinned pages may stay, intact.");
	igt_subtest_with_dynamic("numa-migrate") {
		igt_require_f(numa_usable(), "fewer than two NUMA nodes with memory, or no "
			      "move_pages()\n");
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_anon_event(m->flags, &ev_numa);
	}

	igt_describe("Compaction (compact_memory) between GPU writes and CPU reads, and "
		     "between CPU writes and GPU reads: no word lost or stale.");
	igt_subtest_with_dynamic("compaction") {
		igt_require_f(can_compact(), "no /proc/sys/vm/compact_memory\n");
		igt_require_f(pagemap_has_pfns(), "/proc/self/pagemap shows no page frames\n");
		for_each_hmmgpu_vm_mode_dynamic(fd, m) {
			run_anon_event(m->flags, &ev_compact);
			/* The data was checked; but unmoved pages prove little. */
			igt_skip_on_f(m->flags != DRM_HMMGPU_VM_MODE_PINNED && !compaction_moved,
				      "compaction moved none of the buffer's pages\n");
		}
	}

	igt_describe("KSM merges two buffers the GPU mirrors; GPU writes to one go to new "
		     "pages, never into the merged page the other still maps.");
	igt_subtest_with_dynamic("ksm") {
		igt_require_f(ksm_usable(), "no KSM (" KSM "run)\n");
		igt_require_f(pagemap_has_pfns(), "/proc/self/pagemap shows no page frames\n");
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_ksm(m->flags);
		ksm_restore();
	}

	igt_describe("Huge pages the GPU maps with 2 MiB entries are split (PMD split, THP "
		     "split, MADV_DONTNEED of a small page): data stays both ways, and no "
		     "2 MiB entry maps a page the CPU dropped.");
	igt_subtest_with_dynamic("thp-split") {
		igt_require_f(thp_enabled(), "transparent huge pages are disabled\n");
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_thp_split(m->flags);
	}

	igt_describe("Userptrs covering a huge page in part, at 2 MiB-aligned GPU "
		     "addresses: the GPU writes only inside them, and no 2 MiB entry maps "
		     "memory outside.");
	igt_subtest_with_dynamic("thp-partial") {
		igt_require_f(thp_enabled(), "transparent huge pages are disabled\n");
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_thp_partial(m->flags);
	}

	igt_describe("Small pages the GPU wrote are collapsed (MADV_COLLAPSE): data stays "
		     "both ways and the GPU maps the huge pages with 2 MiB entries.");
	igt_subtest_with_dynamic("thp-collapse") {
		igt_require_f(thp_enabled(), "transparent huge pages are disabled\n");
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_thp_collapse(m->flags);
	}

	igt_describe("Small pages the GPU wrote are collapsed by khugepaged (waited for, "
		     "skipped if it does not): data stays both ways, 2 MiB entries after.");
	igt_subtest_with_dynamic("thp-khugepaged") {
		igt_require_f(thp_enabled(), "transparent huge pages are disabled\n");
		igt_require_f(access(KHUGEPAGED "pages_to_scan", W_OK) == 0, "no khugepaged\n");
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_thp_khugepaged(m->flags);
		khugepaged_restore();
	}

	igt_describe("Pinned mode: long-term pins of ZONE_MOVABLE pages migrate them out "
		     "first, data intact both ways.");
	igt_subtest("pin-movable")
		test_pin_movable();

	igt_describe("A child in a memory cgroup limited to two thirds of what the GPU writes, "
		     "piece by piece: reclaim swaps pieces out under the mirrors, and no "
		     "word is lost or stale.");
	igt_subtest_with_dynamic("memcg-pressure") {
		igt_require_f(memcg_usable(), "no cgroup2 memory controller at " CGROUP "\n");
		require_swap();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_memcg(m->flags);
	}

	igt_fixture {
		ksm_restore();
		khugepaged_restore();
		if (leftover_fd >= 0)
			drm_close_driver(leftover_fd);
		drm_close_driver(fd);
	}
}
