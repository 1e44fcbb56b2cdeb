// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Kernel memory that a file of hmmgpu makes the kernel hold is charged to
 * the memory cgroup of the process that made it (include/uapi/drm/
 * hmmgpu_drm.h, "Memory"): queued jobs, mappings and their page tables, GEM
 * and userptr objects and sync objects. A process in a memory cgroup with a
 * small limit gets -ENOMEM when it reaches the limit, cleanly; the rest of
 * the guest goes on using the device meanwhile; and the memory comes back
 * when the objects go.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "igt.h"
#include "igt_hmmgpu.h"
#include "igt_syncobj.h"
#include "sw_sync.h"

IGT_TEST_DESCRIPTION("Jobs, mappings (bound by the call or by the bind queue), GEM objects "
		     "and sync objects are charged to the memory cgroup of the process that "
		     "made them: it gets -ENOMEM at its limit, others go on, and the memory "
		     "comes back.");

#define SZ_1G		(1ull << 30)
#define SZ_1M		(1ull << 20)
#define CGROOT		"/sys/fs/cgroup"
/* What may stay charged once everything is gone: slab and per-CPU leftovers. */
#define SLACK		(2 * SZ_1M)
/* Far more than any limit below allows: reaching it means nothing was charged. */
#define MAX_TRIES	(1 << 18)

struct memcg {
	char path[128];
};

static void cg_write(const struct memcg *cg, const char *file, const char *value)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", cg->path, file);
	fd = open(path, O_WRONLY);
	igt_assert_f(fd >= 0, "open %s: %s\n", path, strerror(errno));
	igt_assert_f(write(fd, value, strlen(value)) == (ssize_t)strlen(value),
		     "write %s to %s: %s\n", value, path, strerror(errno));
	close(fd);
}

static uint64_t cg_read(const struct memcg *cg, const char *file)
{
	char path[256], buf[64] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", cg->path, file);
	fd = open(path, O_RDONLY);
	igt_assert_f(fd >= 0, "open %s: %s\n", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	igt_assert(n > 0);
	return strtoull(buf, NULL, 10);
}

/* A memory cgroup of its own for the subtest, with @max bytes and no swap. */
static void cg_create(struct memcg *cg, const char *name, uint64_t max)
{
	char value[32];

	igt_require_f(access(CGROOT "/cgroup.subtree_control", F_OK) == 0,
		      "no cgroup2 at " CGROOT "\n");
	snprintf(cg->path, sizeof(cg->path), CGROOT "/hmmgpu-%s", name);
	rmdir(cg->path);
	igt_assert_f(mkdir(cg->path, 0755) == 0, "mkdir %s: %s\n", cg->path, strerror(errno));
	snprintf(value, sizeof(value), "%" PRIu64, max);
	cg_write(cg, "memory.max", value);
	cg_write(cg, "memory.swap.max", "0");
}

static void cg_destroy(struct memcg *cg)
{
	igt_assert_f(rmdir(cg->path) == 0, "rmdir %s: %s\n", cg->path, strerror(errno));
}

/*
 * Moves the calling process into @cg, and out of the OOM killer's reach: at
 * the limit a charge then fails with -ENOMEM instead of killing it.
 */
static void cg_enter(const struct memcg *cg)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY);

	igt_assert(fd >= 0);
	igt_assert(write(fd, "-1000", 5) == 5);
	close(fd);
	cg_write(cg, "cgroup.procs", "0");
}

/*
 * Tells the parent the limit is reached and waits until it lifted it. Until
 * then the child must not make the kernel allocate for it: only this write
 * and read.
 */
static void tell_parent(int to_parent, int from_parent)
{
	char c;

	igt_assert_eq(write(to_parent, "l", 1), 1);
	igt_assert_eq(read(from_parent, &c, 1), 1);
}

/*
 * Makes every page the child may write its own, now: after fork() its data
 * pages are shared with the parent, and the first write to one copies it, a
 * charge that at the limit would find no memory and retry forever. Locking
 * them copies them (and the stack touched first, and every later mapping).
 */
static void own_pages(void)
{
	volatile char stack[64 << 10];

	for (size_t i = 0; i < sizeof(stack); i += 4096)
		stack[i] = 0;
	igt_assert_f(mlockall(MCL_CURRENT | MCL_FUTURE) == 0, "mlockall: %s\n", strerror(errno));
}

/* The parent's side: a job on a VM of its own, outside the cgroup. */
static void others_go_on(int fd)
{
	uint64_t *buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct drm_hmmgpu_cmd cmd;
	uint32_t vm, obj;

	igt_assert(buf != MAP_FAILED);
	vm = hmmgpu_vm_create(fd, DRM_HMMGPU_VM_MODE_PREFAULT);
	obj = hmmgpu_userptr_create(fd, buf, 4096, 0);
	hmmgpu_vm_map(fd, vm, obj, 0, SZ_1G, 4096, 0);
	hmmgpu_cmd_write64(&cmd, SZ_1G + 8, 0x600d);
	igt_assert_eq(hmmgpu_exec_job(fd, vm, &cmd, 1, 0), 0);
	igt_assert_eq_u64(buf[1], 0x600d);
	hmmgpu_vm_destroy(fd, vm);
	gem_close(fd, obj);
	munmap(buf, 4096);
}

/*
 * Runs @fill in a child in @cg until it reports the limit reached; meanwhile
 * the parent runs a job of its own; then the child frees everything and
 * checks that the charge came back to where it started.
 */
static void at_limit(const char *name, uint64_t max,
		     void (*fill)(int fd, const struct memcg *cg, int to_parent, int from_parent))
{
	int up[2], down[2], fd;
	struct memcg cg;
	char c;

	cg_create(&cg, name, max);
	igt_assert(pipe(up) == 0 && pipe(down) == 0);
	igt_fork(child, 1) {
		int cfd;

		cg_enter(&cg);
		own_pages();
		/*
		 * A first byte through the pipe, read at once: the pipe keeps the
		 * page it used for the next write, so that telling the parent,
		 * at the limit, allocates nothing.
		 */
		igt_assert_eq(write(up[1], "s", 1), 1);
		cfd = drm_open_driver_render(DRIVER_HMMGPU);
		fill(cfd, &cg, up[1], down[0]);
	}
	igt_assert_eq(read(up[0], &c, 1), 1);
	/* The child is at its limit: the device still works for us. */
	igt_assert_eq(read(up[0], &c, 1), 1);
	fd = drm_open_driver_render(DRIVER_HMMGPU);
	others_go_on(fd);
	close(fd);
	/*
	 * Lift the limit before the child goes on: at the limit, its own next
	 * page fault would find no memory and no task the OOM killer may kill,
	 * and retry forever.
	 */
	cg_write(&cg, "memory.max", "max");
	igt_assert_eq(write(down[1], "g", 1), 1);
	igt_waitchildren();
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	cg_destroy(&cg);
}

/* Everything charged since @base is back, give or take SLACK. */
static void assert_returned(const struct memcg *cg, uint64_t base, const char *what)
{
	uint64_t now = cg_read(cg, "memory.current");

	igt_info("%s: %" PRIu64 " KiB charged at the start, %" PRIu64 " KiB after\n",
		 what, base >> 10, now >> 10);
	igt_assert_f(now <= base + SLACK, "%s: %" PRIu64 " KiB still charged\n", what,
		     (now - base) >> 10);
}

/* The VM mode the jobs and binds subtests run in. */
static uint32_t vm_mode;

static void fill_jobs(int fd, const struct memcg *cg, int to_parent, int from_parent)
{
	static struct drm_hmmgpu_cmd cmds[HMMGPU_CMD_MAX_COUNT];
	uint64_t base = cg_read(cg, "memory.current");
	struct drm_hmmgpu_exec exec = {
		.cmds = (uintptr_t)cmds,
		.cmd_count = HMMGPU_CMD_MAX_COUNT,
		.timeout_ms = HMMGPU_EXEC_MAX_TIMEOUT_MS,
	};
	struct drm_hmmgpu_sync syncs[2];
	struct hmmgpu_done *last;
	int timeline, err = 0;
	unsigned int jobs;
	int32_t error;
	uint32_t vm, hold;

	timeline = sw_sync_hold(fd, &hold);
	igt_require_f(timeline >= 0, "no sw_sync\n");
	/* A sync object, or in fault mode (no fences) a user fence. */
	last = hmmgpu_done_create(fd, vm_mode);

	vm = hmmgpu_vm_create(fd, vm_mode);
	for (unsigned int i = 0; i < HMMGPU_CMD_MAX_COUNT; i++)
		hmmgpu_cmd_write64(&cmds[i], SZ_1G + 8 * i, i);
	exec.vm_id = vm;
	exec.syncs = (uintptr_t)syncs;
	exec.num_syncs = 1;
	syncs[0] = hmmgpu_sync_wait(hold);
	/* Jobs of the longest time limit, all queued behind the unsignalled fence. */
	for (jobs = 0; jobs < MAX_TRIES; jobs++) {
		err = __hmmgpu_exec(fd, &exec);
		if (err)
			break;
	}
	/* Back from here, the limit is lifted. */
	tell_parent(to_parent, from_parent);
	igt_info("jobs (%s): -ENOMEM after %u jobs queued, %" PRIu64 " KiB charged at most\n",
		 hmmgpu_vm_mode_name(vm_mode), jobs, cg_read(cg, "memory.peak") >> 10);
	igt_assert_eq(err, -ENOMEM);
	igt_assert_lt(0, jobs);

	/*
	 * One more job, which a VM runs after those before it, tells when they
	 * all ended (their writes fault: nothing is mapped). Let them run.
	 */
	syncs[1] = hmmgpu_done_signal(last);
	exec.num_syncs = 2;
	igt_assert_eq(__hmmgpu_exec(fd, &exec), 0);
	sw_sync_release(timeline);
	igt_assert_eq(__hmmgpu_done_wait(last, 120ll * 1000000000, &error), 0);
	igt_assert_eq(error, -EFAULT);
	hmmgpu_done_destroy(last);
	hmmgpu_vm_destroy(fd, vm);
	close(timeline);
	close(fd);
	assert_returned(cg, base, "jobs");
}

static void fill_binds(int fd, const struct memcg *cg, int to_parent, int from_parent)
{
	uint64_t base = cg_read(cg, "memory.current"), after_one, size;
	unsigned int binds;
	uint32_t vm, obj;
	void *range;
	int err = 0;

	/*
	 * In fault mode, a userptr of 1 GiB of which nothing is mapped: its
	 * bindings cost page tables only. Prefault and pinned bindings fault in
	 * and pin what they map, so there one page of memory, mapped at the
	 * start of each GiB: each binding costs its own page-table pages.
	 */
	size = vm_mode == DRM_HMMGPU_VM_MODE_FAULT ? SZ_1G : 4096;
	range = mmap(NULL, size, vm_mode == DRM_HMMGPU_VM_MODE_FAULT ? PROT_NONE :
		     PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	igt_assert(range != MAP_FAILED);
	if (vm_mode != DRM_HMMGPU_VM_MODE_FAULT)
		memset(range, 1, size);
	obj = hmmgpu_userptr_create(fd, range, size, 0);
	vm = hmmgpu_vm_create(fd, vm_mode);
	for (binds = 0; binds < MAX_TRIES; binds++) {
		err = __hmmgpu_vm_bind(fd, vm, DRM_HMMGPU_VM_BIND_MAP, obj, 0,
				       (1ull + binds) * SZ_1G, size, 0);
		if (err)
			break;
	}
	tell_parent(to_parent, from_parent);
	igt_info("binds (%s): -ENOMEM after %u bindings of %" PRIu64 " KiB, %" PRIu64
		 " KiB charged at most\n", hmmgpu_vm_mode_name(vm_mode), binds, size >> 10,
		 cg_read(cg, "memory.peak") >> 10);
	igt_assert_eq(err, -ENOMEM);
	igt_assert_lt(0, binds);

	/* Unbinding returns the page tables. */
	hmmgpu_vm_unmap(fd, vm, SZ_1G, binds * SZ_1G);
	assert_returned(cg, base, "binds, unbound");

	/* Bind and unbind cycles keep nothing more than the first did. */
	hmmgpu_vm_map(fd, vm, obj, 0, SZ_1G, size, 0);
	hmmgpu_vm_unmap(fd, vm, SZ_1G, size);
	after_one = cg_read(cg, "memory.current");
	for (int i = 0; i < 16; i++) {
		hmmgpu_vm_map(fd, vm, obj, 0, (1ull + i) * SZ_1G, size, 0);
		hmmgpu_vm_unmap(fd, vm, (1ull + i) * SZ_1G, size);
	}
	assert_returned(cg, after_one, "16 bind and unbind cycles");
	hmmgpu_vm_destroy(fd, vm);
	close(fd);
	munmap(range, size);
	assert_returned(cg, base, "binds, closed");
}

/*
 * One asynchronous bind of @obj at @va, waited for through a user fence:
 * the call's error, or the bind's.
 */
static int async_bind(int fd, uint32_t vm, uint32_t obj, uint64_t va, uint64_t size)
{
	static volatile uint64_t fence;
	static volatile int64_t error;
	static uint64_t seq;
	struct drm_hmmgpu_sync sync = {
		.type = DRM_HMMGPU_SYNC_USER_FENCE,
		.flags = DRM_HMMGPU_SYNC_SIGNAL,
		.addr = (uintptr_t)&fence,
		.value = ++seq,
		.error_addr = (uintptr_t)&error,
	};
	struct drm_hmmgpu_vm_bind_op op = hmmgpu_bind_op_map(obj, va, size);
	int err;

	err = __hmmgpu_vm_bind_async(fd, vm, &op, 1, &sync, 1);
	if (err)
		return err;
	igt_assert_eq(__hmmgpu_wait_user_fence(fd, &fence, seq, ~0ull, DRM_HMMGPU_WAIT_EQ,
					       60ll * 1000000000), 0);
	return error;
}

/*
 * As fill_binds(), with asynchronous binds: the bind queue's worker, which
 * allocates the page tables, charges the cgroup of the process that queued
 * the bind, not its own.
 */
static void fill_async_binds(int fd, const struct memcg *cg, int to_parent, int from_parent)
{
	uint64_t base = cg_read(cg, "memory.current");
	unsigned int binds;
	uint32_t vm, obj;
	void *range;
	int err = 0;

	/* A userptr of 1 GiB of which nothing is mapped: its bindings cost page tables only. */
	range = mmap(NULL, SZ_1G, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	igt_assert(range != MAP_FAILED);
	obj = hmmgpu_userptr_create(fd, range, SZ_1G, 0);
	vm = hmmgpu_vm_create(fd, DRM_HMMGPU_VM_MODE_FAULT);
	/*
	 * Each binding costs 4 MiB of page tables: 64 are far more than the
	 * limit allows, and few enough not to exhaust the guest if they were
	 * charged to no cgroup.
	 */
	for (binds = 0; binds < 64; binds++) {
		err = async_bind(fd, vm, obj, (1ull + binds) * SZ_1G, SZ_1G);
		if (err)
			break;
	}
	tell_parent(to_parent, from_parent);
	igt_info("async binds: %d after %u bindings, %" PRIu64 " KiB charged at most\n", err,
		 binds, cg_read(cg, "memory.peak") >> 10);
	igt_assert_eq(err, -ENOMEM);
	igt_assert_lt(0, binds);
	hmmgpu_vm_destroy(fd, vm);
	close(fd);
	munmap(range, SZ_1G);
	assert_returned(cg, base, "async binds, closed");
}

/*
 * Makes objects with @make until it fails, which must be with -ENOMEM, then
 * closes the file: what they held must come back.
 */
static void fill_with(int fd, const struct memcg *cg, int to_parent, int from_parent,
		      const char *what, int (*make)(int fd))
{
	uint64_t base = cg_read(cg, "memory.current");
	unsigned int made;
	int err = 0;

	for (made = 0; made < MAX_TRIES; made++) {
		err = make(fd);
		if (err)
			break;
	}
	tell_parent(to_parent, from_parent);
	igt_info("%s: -ENOMEM after %u, %" PRIu64 " KiB charged at most\n", what, made,
		 cg_read(cg, "memory.peak") >> 10);
	igt_assert_eq(err, -ENOMEM);
	igt_assert_lt(0, made);
	close(fd);
	assert_returned(cg, base, what);
}

static int make_object(int fd)
{
	uint32_t handle;

	return __hmmgpu_gem_create(fd, 4096, 0, &handle);
}

static int make_syncobj(int fd)
{
	uint32_t handle;

	return __syncobj_create(fd, 0, &handle);
}

/* A userptr object of one page, which it names only: made without its pages. */
static int make_userptr(int fd)
{
	static void *page;
	uint32_t handle;

	if (!page) {
		page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
		igt_assert(page != MAP_FAILED);
	}
	return __hmmgpu_userptr_create(fd, (uintptr_t)page, 4096, 0, &handle);
}

static void fill_userptrs(int fd, const struct memcg *cg, int to_parent, int from_parent)
{
	fill_with(fd, cg, to_parent, from_parent, "userptr objects", make_userptr);
}

static void fill_objects(int fd, const struct memcg *cg, int to_parent, int from_parent)
{
	fill_with(fd, cg, to_parent, from_parent, "GEM objects", make_object);
}

static void fill_syncobjs(int fd, const struct memcg *cg, int to_parent, int from_parent)
{
	fill_with(fd, cg, to_parent, from_parent, "sync objects", make_syncobj);
}

/*
 * gem-unbind-reclaim: an unbind that leaves a piece of a GEM object's binding
 * keeps only the piece's pages resident, in every mode. The GPU fills 32 MiB of
 * an object bound whole, the binding is unbound but for its last page, and
 * reclaiming 24 MiB of the cgroup's memory (memory.reclaim, to swap) succeeds:
 * the unbound pages are the object's page cache alone. What the GPU wrote
 * comes back from swap, through the piece and through a CPU mapping.
 */
static void test_gem_unbind_reclaim(uint32_t mode)
{
	const uint64_t size = 32 * SZ_1M, va = SZ_1G, page = 4096;
	const uint32_t value = 0x5a17c0de;
	struct memcg cg;

	igt_require_f(hmmgpu_swap_active(), "no swap to reclaim shmem pages to\n");
	cg_create(&cg, "gem-unbind-reclaim", SZ_1G);
	cg_write(&cg, "memory.swap.max", "max");
	igt_fork(child, 1) {
		struct drm_hmmgpu_cmd cmds[2];
		uint32_t vm, bo, *map;
		int cfd, rfd;
		ssize_t ret;
		char path[256];

		cg_enter(&cg);
		cfd = drm_open_driver_render(DRIVER_HMMGPU);
		vm = hmmgpu_vm_create(cfd, mode);
		bo = hmmgpu_gem_create(cfd, size);
		hmmgpu_vm_map(cfd, vm, bo, 0, va, size, 0);
		hmmgpu_cmd_fill(cmds, va, size, value);
		igt_assert_eq(hmmgpu_exec_job(cfd, vm, cmds, 1, 0), 0);
		hmmgpu_vm_unmap(cfd, vm, va, size - page);

		snprintf(path, sizeof(path), "%s/memory.reclaim", cg.path);
		rfd = open(path, O_WRONLY);
		igt_assert(rfd >= 0);
		ret = write(rfd, "24M", 3);
		igt_assert_f(ret == 3, "reclaiming 24 MiB of %" PRIu64 " KiB charged: %s\n",
			     cg_read(&cg, "memory.current") >> 10,
			     ret < 0 ? strerror(errno) : "short write");
		close(rfd);

		hmmgpu_cmd_fill(cmds, va + size - 8, 8, ~value);
		igt_assert_eq(hmmgpu_exec_job(cfd, vm, cmds, 1, 0), 0);
		hmmgpu_vm_unmap(cfd, vm, va + size - page, page);
		map = hmmgpu_gem_mmap(cfd, bo, size, PROT_READ);
		for (uint64_t i = 0; i < size / 4; i++) {
			uint32_t want = i >= (size - 8) / 4 ? ~value : value;

			igt_assert_f(map[i] == want, "dword %" PRIu64 " reads %#x, expected %#x\n",
				     i, map[i], want);
		}
		munmap(map, size);
		gem_close(cfd, bo);
		hmmgpu_vm_destroy(cfd, vm);
		close(cfd);
	}
	igt_waitchildren();
	cg_destroy(&cg);
}

igt_main
{
	const struct hmmgpu_vm_mode *m;
	static int fd = -1;

	igt_fixture
		fd = drm_open_driver_render(DRIVER_HMMGPU);

	igt_describe("Jobs queued behind an unsignalled fence are charged: -ENOMEM at the "
		     "limit, and the memory comes back once they ran.");
	igt_subtest_with_dynamic("jobs")
		for_each_hmmgpu_vm_mode_dynamic(fd, m) {
			vm_mode = m->flags;
			at_limit("jobs", 32 * SZ_1M, fill_jobs);
		}

	igt_describe("Bindings' page tables are charged: -ENOMEM at the limit, returned "
		     "at unbind, and bind and unbind cycles keep nothing more.");
	igt_subtest_with_dynamic("binds")
		for_each_hmmgpu_vm_mode_dynamic(fd, m) {
			vm_mode = m->flags;
			at_limit("binds", 32 * SZ_1M, fill_binds);
		}

	igt_describe("What a queued asynchronous bind allocates when it runs is charged to "
		     "the cgroup of the process that queued it: -ENOMEM at its limit, back at "
		     "close.");
	igt_subtest("async-binds") {
		igt_require(hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_FAULT));
		at_limit("async-binds", 32 * SZ_1M, fill_async_binds);
	}

	igt_describe("GEM objects are charged: -ENOMEM at the limit, back at close.");
	igt_subtest("objects")
		at_limit("objects", 16 * SZ_1M, fill_objects);

	igt_describe("Userptr objects are charged: -ENOMEM at the limit, back at close.");
	igt_subtest("userptr-objects")
		at_limit("userptr-objects", 16 * SZ_1M, fill_userptrs);

	igt_describe("Sync objects are charged: -ENOMEM at the limit, back at close.");
	igt_subtest("syncobjs")
		at_limit("syncobjs", 8 * SZ_1M, fill_syncobjs);

	igt_describe("An unbind that leaves a piece of a GEM object's binding keeps only the "
		     "piece's pages resident: the others can be reclaimed to swap, and come "
		     "back with what the GPU wrote.");
	igt_subtest_with_dynamic("gem-unbind-reclaim")
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_gem_unbind_reclaim(m->flags);

	igt_fixture
		close(fd);
}
