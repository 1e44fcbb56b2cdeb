// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Jobs of hmmgpu (DRM_IOCTL_HMMGPU_EXEC) and their lifecycle, on GEM objects
 * only, so that what is tested is the jobs and not the memory: the job's end
 * reaching every sync it signals; jobs of a VM running in submission order;
 * wait syncs holding a job back until the fence of a job on another VM, of
 * the same file or (through an exported sync object) of another, has
 * signalled; jobs ending with -ETIMEDOUT when they run, or wait for their
 * in-fences, past their time limit; a GPU page fault ending one job and not
 * the next; destroying a VM, or closing its file, with jobs running and
 * queued (they end with -ECANCELED, and the ioctl or close() returns only
 * once they all have); and many small jobs back to back.
 *
 * Every subtest has one dynamic subtest per VM mode the device offers
 * ("fault", "prefault", "pinned"). Jobs of prefault and pinned VMs signal
 * sync objects; jobs of fault-mode VMs have no fence (their VMs are
 * long-running) and signal user fences instead, which is all the kernel lets
 * them signal (fault-fence). A fault-mode job that waits for another job
 * waits for one of a VM that has a fence. Long jobs bounce 1 MiB between the two
 * halves of a 2 MiB object; how many copies make a long job is measured
 * once, from a short job, so that a long job takes about LONG_TARGET_S.
 * Results land in a one-page object that the CPU maps.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/sync_file.h>
#include <xf86drm.h>

#include "igt.h"
#include "igt_hmmgpu.h"

IGT_TEST_DESCRIPTION("Jobs of hmmgpu and their lifecycle, in every VM mode: several "
		     "signal syncs (sync objects, or user fences in fault mode), submission "
		     "order, wait syncs on the same and another file, time limits of "
		     "running and waiting jobs, fault-mode jobs refusing sync objects to "
		     "signal, GPU page faults, VM destruction and file close with jobs in "
		     "flight, and many jobs back to back.");

#define DATA_VA		0x100000000ull
#define RES_VA		0x200000000ull
/* Nothing is ever mapped here. */
#define UNMAPPED_VA	0x7000000000ull

#define SZ_1M		(1ull << 20)
#define DATA_SIZE	(2 * SZ_1M)

/* A long job takes about this long; its time limit is never what ends it. */
#define LONG_TARGET_S	0.5
#define LONG_TIMEOUT_MS	HMMGPU_EXEC_MAX_TIMEOUT_MS

#define MARK_LONG	0x10e6a11d0b5c0de1ull
#define MARK_SHORT	0x5407d0b5c0de0002ull

static int fd = -1;
static long page;

/*
 * The files and CPU mappings of tests still running. A test that fails
 * leaves them behind, its jobs maybe still going; the next test (or the
 * last fixture) unmaps and closes them, which cancels those jobs.
 */
static int test_fds[8];
static unsigned int num_test_fds;
static struct {
	void *ptr;
	size_t size;
} test_maps[8];
static unsigned int num_test_maps;

static void close_leftovers(void)
{
	while (num_test_maps) {
		num_test_maps--;
		munmap(test_maps[num_test_maps].ptr, test_maps[num_test_maps].size);
	}
	while (num_test_fds)
		close(test_fds[--num_test_fds]);
}

static int open_fd(void)
{
	int test_fd;

	igt_assert(num_test_fds < ARRAY_SIZE(test_fds));
	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	test_fds[num_test_fds++] = test_fd;
	return test_fd;
}

/* Closes @test_fd with close() itself, which releases the file (no CPU mapping holds it). */
static void close_fd(int test_fd)
{
	for (unsigned int i = 0; i < num_test_fds; i++) {
		if (test_fds[i] == test_fd) {
			test_fds[i] = test_fds[--num_test_fds];
			break;
		}
	}
	igt_assert_eq(close(test_fd), 0);
}

static void *map_res(int test_fd, uint32_t handle)
{
	void *ptr;

	igt_assert(num_test_maps < ARRAY_SIZE(test_maps));
	ptr = hmmgpu_gem_mmap(test_fd, handle, page, PROT_READ | PROT_WRITE);
	test_maps[num_test_maps].ptr = ptr;
	test_maps[num_test_maps].size = page;
	num_test_maps++;
	return ptr;
}

static void unmap_res(volatile uint64_t *res)
{
	void *ptr = (void *)res;

	for (unsigned int i = 0; i < num_test_maps; i++) {
		if (test_maps[i].ptr == ptr) {
			test_maps[i] = test_maps[--num_test_maps];
			break;
		}
	}
	igt_assert_eq(munmap(ptr, page), 0);
}

/*
 * A VM in the mode under test, with a 2 MiB object at DATA_VA for long jobs
 * and a one-page result object at RES_VA, which the CPU sees at @res (unless
 * it is another VM's, then @res is NULL: use that VM's).
 */
struct ctx {
	int fd;
	uint32_t mode;
	uint32_t vm;
	uint32_t data;
	uint32_t res_bo;
	bool own_res;
	volatile uint64_t *res;
};

/* @res_bo: 0 for a result object of its own, else a handle (on @test_fd) to map. */
static void ctx_init(struct ctx *c, int test_fd, uint32_t mode, uint32_t res_bo)
{
	memset(c, 0, sizeof(*c));
	c->fd = test_fd;
	c->mode = mode;
	c->vm = hmmgpu_vm_create(test_fd, mode);

	c->data = hmmgpu_gem_create(test_fd, DATA_SIZE);
	hmmgpu_vm_map(test_fd, c->vm, c->data, 0, DATA_VA, DATA_SIZE, 0);

	c->own_res = !res_bo;
	if (c->own_res) {
		c->res_bo = hmmgpu_gem_create(test_fd, page);
		c->res = map_res(test_fd, c->res_bo);
		memset((void *)c->res, 0, page);
	} else {
		c->res_bo = res_bo;
	}
	hmmgpu_vm_map(test_fd, c->vm, c->res_bo, 0, RES_VA, page, 0);
	igt_debug("VM %u in %s mode on fd %d\n", c->vm, hmmgpu_vm_mode_name(mode), test_fd);
}

static void ctx_fini(struct ctx *c)
{
	if (c->vm)
		hmmgpu_vm_destroy(c->fd, c->vm);
	gem_close(c->fd, c->data);
	if (c->own_res) {
		if (c->res)
			unmap_res(c->res);
		gem_close(c->fd, c->res_bo);
	}
	c->vm = 0;
}

/* Where the end of a job of @c is seen: a sync object, or a user fence in fault mode. */
static struct hmmgpu_done *done_create(struct ctx *c)
{
	return hmmgpu_done_create(c->fd, c->mode);
}

/*
 * A mode whose jobs have fences, for a job that others wait for: @mode, or
 * for fault mode another mode the device offers (the test is skipped if
 * there is none).
 */
static uint32_t fence_mode(uint32_t mode)
{
	if (mode != DRM_HMMGPU_VM_MODE_FAULT)
		return mode;
	if (hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PREFAULT))
		return DRM_HMMGPU_VM_MODE_PREFAULT;
	igt_require_f(hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PINNED),
		      "fault-mode jobs have no fence, and no other mode is offered\n");
	return DRM_HMMGPU_VM_MODE_PINNED;
}

/*
 * Queues @n commands on @vm, waiting for the sync objects @in and signalling
 * @out; returns 0 or the exec's -errno.
 */
static int __submit(int test_fd, uint32_t vm, const struct drm_hmmgpu_cmd *cmds, unsigned int n,
		    uint32_t timeout_ms, const uint32_t *in, unsigned int in_count,
		    struct hmmgpu_done *const *out, unsigned int out_count)
{
	struct drm_hmmgpu_sync syncs[HMMGPU_MAX_SYNCS];
	struct drm_hmmgpu_exec exec = {
		.vm_id = vm,
		.cmds = to_user_pointer(cmds),
		.cmd_count = n,
		.timeout_ms = timeout_ms,
		.syncs = to_user_pointer(syncs),
		.num_syncs = in_count + out_count,
	};

	igt_assert_lte(in_count + out_count, HMMGPU_MAX_SYNCS);
	for (unsigned int i = 0; i < in_count; i++)
		syncs[i] = hmmgpu_sync_wait(in[i]);
	for (unsigned int i = 0; i < out_count; i++)
		syncs[in_count + i] = hmmgpu_done_signal(out[i]);
	return __hmmgpu_exec(test_fd, &exec);
}

static void submit(int test_fd, uint32_t vm, const struct drm_hmmgpu_cmd *cmds, unsigned int n,
		   uint32_t timeout_ms, const uint32_t *in, unsigned int in_count,
		   struct hmmgpu_done *const *out, unsigned int out_count)
{
	igt_assert_eq(__submit(test_fd, vm, cmds, n, timeout_ms, in, in_count, out, out_count), 0);
}

/* Waits for the job @done tells of, long enough for any job to end; returns its error. */
static int job_error(struct hmmgpu_done *done)
{
	return hmmgpu_done_wait(done, (LONG_TIMEOUT_MS + 10000ll) * NSEC_PER_MSEC);
}

static void vm_stats(struct ctx *c, struct drm_hmmgpu_vm_stats *s)
{
	hmmgpu_vm_stats(c->fd, c->vm, s);
	igt_debug("VM %u: jobs done %llu, failed %llu\n", c->vm,
		  (unsigned long long)s->jobs_done, (unsigned long long)s->jobs_failed);
}

static void check_job_stats(struct ctx *c, const struct drm_hmmgpu_vm_stats *before,
			    uint64_t done, uint64_t failed)
{
	struct drm_hmmgpu_vm_stats after;

	vm_stats(c, &after);
	igt_assert_eq_u64(after.jobs_done - before->jobs_done, done);
	igt_assert_eq_u64(after.jobs_failed - before->jobs_failed, failed);
}

/*
 * Long jobs: copies of 1 MiB back and forth between the halves of the data
 * object, and a last command of the caller's.
 */
static struct drm_hmmgpu_cmd long_buf[HMMGPU_CMD_MAX_COUNT];
static unsigned int long_copies;

static void bounce_cmds(struct drm_hmmgpu_cmd *cmds, unsigned int n)
{
	const uint64_t half = DATA_SIZE / 2;

	for (unsigned int i = 0; i < n; i++) {
		if (i % 2)
			hmmgpu_cmd_copy(&cmds[i], DATA_VA, DATA_VA + half, half);
		else
			hmmgpu_cmd_copy(&cmds[i], DATA_VA + half, DATA_VA, half);
	}
}

/* How many copies take about LONG_TARGET_S, measured once from a short job on @c. */
static unsigned int calibrate(struct ctx *c)
{
	const unsigned int n = 32;
	struct timespec start = {};
	double per_copy;
	unsigned int count;

	if (long_copies)
		return long_copies;

	bounce_cmds(long_buf, n);
	igt_assert_eq(hmmgpu_exec_job(c->fd, c->vm, long_buf, 8, 0), 0);
	igt_gettime(&start);
	igt_assert_eq(hmmgpu_exec_job(c->fd, c->vm, long_buf, n, 0), 0);
	per_copy = igt_nsec_elapsed(&start) / 1e9 / n;

	count = per_copy > 0 ? LONG_TARGET_S / per_copy : HMMGPU_CMD_MAX_COUNT;
	if (count < 64)
		count = 64;
	if (count > HMMGPU_CMD_MAX_COUNT - 1)
		count = HMMGPU_CMD_MAX_COUNT - 1;
	igt_info("a copy of 1 MiB takes %.3f ms: long jobs make %u copies (%.2f s)\n",
		 per_copy * 1e3, count, count * per_copy);
	long_copies = count;
	return count;
}

/* A long job whose last command writes @mark at @mark_va; returns its length. */
static unsigned int long_cmds(struct ctx *c, uint64_t mark_va, uint64_t mark)
{
	unsigned int n = calibrate(c);

	bounce_cmds(long_buf, n);
	hmmgpu_cmd_write64(&long_buf[n], mark_va, mark);
	return n + 1;
}

/* Tests. */

static void test_begin(void)
{
	close_leftovers();
}

/*
 * out-fence: the job's end reaches each of its signal syncs (its fence
 * replaces the fence of each sync object; in fault mode, it writes each user
 * fence), and no other.
 */
static void test_out_fence(uint32_t mode)
{
	struct hmmgpu_done *dones[HMMGPU_MAX_SYNCS];
	struct drm_hmmgpu_vm_stats before;
	struct drm_hmmgpu_cmd cmd;
	int32_t error;
	struct ctx c;
	int test_fd;

	test_begin();
	test_fd = open_fd();
	ctx_init(&c, test_fd, mode, 0);
	vm_stats(&c, &before);

	for (unsigned int i = 0; i < ARRAY_SIZE(dones); i++)
		dones[i] = done_create(&c);

	/* First a faulting job's end in all of them. */
	hmmgpu_cmd_write64(&cmd, UNMAPPED_VA, 1);
	submit(test_fd, c.vm, &cmd, 1, 0, NULL, 0, dones, ARRAY_SIZE(dones));
	for (unsigned int i = 0; i < ARRAY_SIZE(dones); i++)
		igt_assert_eq(job_error(dones[i]), -EFAULT);

	for (unsigned int n = 2; n <= HMMGPU_MAX_SYNCS; n++) {
		c.res[n] = 0;
		hmmgpu_cmd_write64(&cmd, RES_VA + 8 * n, MARK_SHORT + n);
		submit(test_fd, c.vm, &cmd, 1, 0, NULL, 0, dones, n);

		for (unsigned int i = 0; i < n; i++)
			igt_assert_f(job_error(dones[i]) == 0,
				     "job with %u signal syncs: error in sync %u\n", n, i);
		igt_assert_eq_u64(c.res[n], MARK_SHORT + n);

		/* The others still tell of the faulting job. */
		for (unsigned int i = n; i < ARRAY_SIZE(dones); i++) {
			igt_assert(hmmgpu_done_signalled(dones[i], &error));
			igt_assert_f(error == -EFAULT, "job with %u signal syncs: sync %u, not "
				     "one of them, reads %d\n", n, i, error);
		}
	}
	check_job_stats(&c, &before, HMMGPU_MAX_SYNCS - 1, 1);

	for (unsigned int i = 0; i < ARRAY_SIZE(dones); i++)
		hmmgpu_done_destroy(dones[i]);
	ctx_fini(&c);
	close_fd(test_fd);
}

/*
 * in-order: a short job queued behind a long one runs after it: when the
 * short job's fence has signalled, so has the long one's, and the short job
 * read what the long one's last command wrote.
 */
static void test_in_order(uint32_t mode)
{
	struct drm_hmmgpu_cmd short_cmds[2];
	struct hmmgpu_done *s_long, *s_short;
	struct timespec start = {};
	bool long_busy, short_done;
	int32_t error = 0;
	unsigned int n;
	struct ctx c;
	int test_fd;

	test_begin();
	test_fd = open_fd();
	ctx_init(&c, test_fd, mode, 0);
	s_long = done_create(&c);
	s_short = done_create(&c);
	n = long_cmds(&c, RES_VA, MARK_LONG);

	hmmgpu_cmd_copy(&short_cmds[0], RES_VA + 8, RES_VA, 8);
	hmmgpu_cmd_write64(&short_cmds[1], RES_VA + 16, MARK_SHORT);

	igt_gettime(&start);
	submit(test_fd, c.vm, long_buf, n, LONG_TIMEOUT_MS, NULL, 0, &s_long, 1);
	submit(test_fd, c.vm, short_cmds, 2, 0, NULL, 0, &s_short, 1);

	/* Polled short first: if it is not done, the long one could be. */
	short_done = hmmgpu_done_signalled(s_short, NULL);
	long_busy = !hmmgpu_done_signalled(s_long, NULL);
	igt_assert_f(!(short_done && long_busy), "the short job ended before the long one\n");
	igt_assert_f(long_busy, "the long job ended before it could be seen running\n");

	igt_assert_eq(job_error(s_short), 0);
	igt_assert_f(hmmgpu_done_signalled(s_long, &error),
		     "the short job ended, the long one queued before it has not\n");
	igt_assert_eq(error, 0);
	igt_info("both jobs took %.3f s\n", igt_nsec_elapsed(&start) / 1e9);

	igt_assert_eq_u64(c.res[0], MARK_LONG);
	igt_assert_f(c.res[1] == MARK_LONG, "the short job read %#" PRIx64 ", not what the "
		     "long job wrote last\n", (uint64_t)c.res[1]);
	igt_assert_eq_u64(c.res[2], MARK_SHORT);

	hmmgpu_done_destroy(s_long);
	hmmgpu_done_destroy(s_short);
	ctx_fini(&c);
	close_fd(test_fd);
}

/*
 * A long job on @a (whose VM has fences) writes MARK_LONG at RES_VA last; a
 * job on @b (whose RES_VA is the same object) waits for it through the sync
 * object @in_b (@b's handle for @a's sync object, of @out_a) and copies the
 * word to RES_VA + 8. @res is the CPU's view of the result object.
 */
static void check_in_fence(struct ctx *a, struct hmmgpu_done *out_a, struct ctx *b,
			   uint32_t in_b, volatile uint64_t *res)
{
	struct hmmgpu_done *out_b;
	struct drm_hmmgpu_cmd cmd;
	int32_t error = 0;
	unsigned int n;

	out_b = done_create(b);
	n = long_cmds(a, RES_VA, MARK_LONG);
	res[0] = 0;
	res[1] = 0;

	submit(a->fd, a->vm, long_buf, n, LONG_TIMEOUT_MS, NULL, 0, &out_a, 1);
	hmmgpu_cmd_copy(&cmd, RES_VA + 8, RES_VA, 8);
	submit(b->fd, b->vm, &cmd, 1, LONG_TIMEOUT_MS, &in_b, 1, &out_b, 1);
	igt_assert_f(!hmmgpu_done_signalled(out_a, NULL),
		     "the long job ended before it could be seen running\n");

	igt_assert_eq(job_error(out_b), 0);
	igt_assert_f(hmmgpu_done_signalled(out_a, &error),
		     "the waiting job ended before the job it waits for\n");
	igt_assert_eq(error, 0);
	igt_assert_eq_u64(res[0], MARK_LONG);
	igt_assert_f(res[1] == MARK_LONG, "the waiting job read %#" PRIx64 ", not what the "
		     "job it waits for wrote last\n", (uint64_t)res[1]);

	hmmgpu_done_destroy(out_b);
}

/*
 * in-fence: a job on VM B waits for the fence of a long job on VM A of the
 * same file (A is a prefault or pinned VM when B is a fault-mode one). A wait
 * sync without a fence is refused with -EINVAL: nothing runs.
 */
static void test_in_fence(uint32_t mode)
{
	struct hmmgpu_done *out, *s_a;
	struct drm_hmmgpu_cmd cmd;
	struct ctx a, b;
	uint32_t empty;
	int test_fd;

	test_begin();
	test_fd = open_fd();
	ctx_init(&a, test_fd, fence_mode(mode), 0);
	ctx_init(&b, test_fd, mode, a.res_bo);

	/* No fence to wait for: refused. */
	igt_assert_eq(drmSyncobjCreate(test_fd, 0, &empty), 0);
	out = done_create(&b);
	a.res[2] = 0;
	hmmgpu_cmd_write64(&cmd, RES_VA + 16, MARK_SHORT);
	igt_assert_eq(__submit(test_fd, b.vm, &cmd, 1, 0, &empty, 1, &out, 1), -EINVAL);
	hmmgpu_cmd_write64(&cmd, RES_VA + 24, MARK_SHORT);
	submit(test_fd, b.vm, &cmd, 1, 0, NULL, 0, &out, 1);
	igt_assert_eq(job_error(out), 0);
	igt_assert_eq_u64(a.res[3], MARK_SHORT);
	igt_assert_f(a.res[2] != MARK_SHORT, "the refused job ran\n");

	s_a = done_create(&a);
	check_in_fence(&a, s_a, &b, s_a->syncobj, a.res);

	igt_assert_eq(drmSyncobjDestroy(test_fd, empty), 0);
	hmmgpu_done_destroy(out);
	hmmgpu_done_destroy(s_a);
	ctx_fini(&b);
	ctx_fini(&a);
	close_fd(test_fd);
}

/*
 * in-fence-cross-fd: the same across files: the sync object A signals, exported from
 * the first file and imported into the second, is the one B waits for; the result
 * object is shared as a dma-buf.
 */
static void test_in_fence_cross_fd(uint32_t mode)
{
	int fd1, fd2, obj_fd = -1, dmabuf = -1;
	uint32_t s_b, res_b = 0;
	struct hmmgpu_done *s_a;
	int32_t error = 0;
	struct ctx a, b;

	test_begin();
	fd1 = open_fd();
	fd2 = open_fd();
	ctx_init(&a, fd1, fence_mode(mode), 0);

	igt_assert_eq(drmPrimeHandleToFD(fd1, a.res_bo, DRM_CLOEXEC, &dmabuf), 0);
	igt_assert_eq(drmPrimeFDToHandle(fd2, dmabuf, &res_b), 0);
	close(dmabuf);
	ctx_init(&b, fd2, mode, res_b);

	s_a = done_create(&a);
	igt_assert_eq(drmSyncobjHandleToFD(fd1, s_a->syncobj, &obj_fd), 0);
	igt_assert_eq(drmSyncobjFDToHandle(fd2, obj_fd, &s_b), 0);
	close(obj_fd);

	check_in_fence(&a, s_a, &b, s_b, a.res);
	/* One sync object, two handles. */
	igt_assert(hmmgpu_syncobj_signalled(fd2, s_b, &error));
	igt_assert_eq(error, 0);

	igt_assert_eq(drmSyncobjDestroy(fd2, s_b), 0);
	hmmgpu_done_destroy(s_a);
	ctx_fini(&b);
	gem_close(fd2, res_b);
	ctx_fini(&a);
	close_fd(fd2);
	close_fd(fd1);
}

/*
 * timeout: a long job with a time limit of 1 ms ends with -ETIMEDOUT before
 * its last command; the VM runs the next job; VM_STATS counts both.
 */
static void test_timeout(uint32_t mode)
{
	struct drm_hmmgpu_vm_stats before;
	struct drm_hmmgpu_cmd cmd;
	struct timespec start = {};
	struct hmmgpu_done *s;
	unsigned int n;
	struct ctx c;
	int test_fd;

	test_begin();
	test_fd = open_fd();
	ctx_init(&c, test_fd, mode, 0);
	s = done_create(&c);
	n = long_cmds(&c, RES_VA, MARK_LONG);
	vm_stats(&c, &before);

	igt_gettime(&start);
	submit(test_fd, c.vm, long_buf, n, 1, NULL, 0, &s, 1);
	igt_assert_eq(job_error(s), -ETIMEDOUT);
	igt_info("a job of %u copies, limited to 1 ms, ended after %.3f s\n", n - 1,
		 igt_nsec_elapsed(&start) / 1e9);
	igt_assert_f(c.res[0] != MARK_LONG, "the job ran its last command\n");

	hmmgpu_cmd_write64(&cmd, RES_VA + 8, MARK_SHORT);
	igt_assert_eq(hmmgpu_exec_job(test_fd, c.vm, &cmd, 1, 0), 0);
	igt_assert_eq_u64(c.res[1], MARK_SHORT);
	check_job_stats(&c, &before, 1, 1);

	hmmgpu_done_destroy(s);
	ctx_fini(&c);
	close_fd(test_fd);
}

/*
 * in-fence-timeout: a job limited to 50 ms that waits for a long job of
 * another VM ends with -ETIMEDOUT, without running; the long job is not
 * disturbed, and the waiting job's VM runs the next job.
 */
#define WAITER_TIMEOUT_MS 50

static void test_in_fence_timeout(uint32_t mode)
{
	struct drm_hmmgpu_vm_stats before;
	struct drm_hmmgpu_cmd cmd;
	struct hmmgpu_done *s_a, *s_b;
	struct timespec start = {};
	uint64_t waited_ns;
	unsigned int n;
	struct ctx a, b;
	int test_fd;

	test_begin();
	test_fd = open_fd();
	ctx_init(&a, test_fd, fence_mode(mode), 0);
	ctx_init(&b, test_fd, mode, a.res_bo);
	s_a = done_create(&a);
	s_b = done_create(&b);
	n = long_cmds(&a, RES_VA, MARK_LONG);
	vm_stats(&b, &before);

	submit(test_fd, a.vm, long_buf, n, LONG_TIMEOUT_MS, NULL, 0, &s_a, 1);
	igt_gettime(&start);
	hmmgpu_cmd_write64(&cmd, RES_VA + 8, MARK_SHORT);
	submit(test_fd, b.vm, &cmd, 1, WAITER_TIMEOUT_MS, &s_a->syncobj, 1, &s_b, 1);

	igt_assert_eq(job_error(s_b), -ETIMEDOUT);
	waited_ns = igt_nsec_elapsed(&start);
	igt_assert_f(!hmmgpu_done_signalled(s_a, NULL),
		     "the long job ended before the waiting job's time ran out\n");
	igt_info("a job limited to %d ms ended after %.3f ms of waiting\n", WAITER_TIMEOUT_MS,
		 waited_ns / 1e6);
	igt_assert_lte_u64((WAITER_TIMEOUT_MS - 10) * (uint64_t)NSEC_PER_MSEC, waited_ns);
	igt_assert_f(a.res[1] != MARK_SHORT, "the waiting job ran\n");

	igt_assert_eq(job_error(s_a), 0);
	igt_assert_eq_u64(a.res[0], MARK_LONG);
	igt_assert_f(a.res[1] != MARK_SHORT, "the waiting job ran\n");

	hmmgpu_cmd_write64(&cmd, RES_VA + 16, MARK_SHORT);
	igt_assert_eq(hmmgpu_exec_job(test_fd, b.vm, &cmd, 1, WAITER_TIMEOUT_MS), 0);
	igt_assert_eq_u64(a.res[2], MARK_SHORT);
	check_job_stats(&b, &before, 1, 1);

	hmmgpu_done_destroy(s_a);
	hmmgpu_done_destroy(s_b);
	ctx_fini(&b);
	ctx_fini(&a);
	close_fd(test_fd);
}

/*
 * queued-timeout: a job's time limit counts from its submission, so a short
 * job queued behind a long one on the same VM runs out of time waiting for
 * its turn, without running; the long one completes.
 */
static void test_queued_timeout(uint32_t mode)
{
	struct hmmgpu_done *s_long, *s_short;
	struct drm_hmmgpu_cmd cmd;
	unsigned int n;
	struct ctx c;
	int test_fd;

	test_begin();
	test_fd = open_fd();
	ctx_init(&c, test_fd, mode, 0);
	s_long = done_create(&c);
	s_short = done_create(&c);
	n = long_cmds(&c, RES_VA, MARK_LONG);

	submit(test_fd, c.vm, long_buf, n, LONG_TIMEOUT_MS, NULL, 0, &s_long, 1);
	hmmgpu_cmd_write64(&cmd, RES_VA + 8, MARK_SHORT);
	submit(test_fd, c.vm, &cmd, 1, WAITER_TIMEOUT_MS, NULL, 0, &s_short, 1);

	igt_assert_eq(job_error(s_short), -ETIMEDOUT);
	igt_assert_eq(job_error(s_long), 0);
	igt_assert_eq_u64(c.res[0], MARK_LONG);
	igt_assert_f(c.res[1] != MARK_SHORT, "the job that ran out of time ran\n");

	hmmgpu_done_destroy(s_long);
	hmmgpu_done_destroy(s_short);
	ctx_fini(&c);
	close_fd(test_fd);
}

/*
 * fault-fence: a job of a fault-mode VM has no fence, so it may not signal a
 * sync object, binary or timeline point, alone or beside a user fence:
 * -EOPNOTSUPP, nothing is queued, the sync objects keep what they held
 * (nothing, or the fence of a job of a VM that has fences) and the user fence
 * is not written; a job signalling only a user fence runs. A job of a
 * prefault or pinned VM signals a binary sync object, a timeline point and a
 * user fence at once.
 */
static void test_fault_fence(uint32_t mode)
{
	struct drm_hmmgpu_sync syncs[2];
	struct hmmgpu_done *uf, *earlier = NULL;
	struct drm_hmmgpu_cmd cmd, probe;
	struct drm_hmmgpu_exec exec;
	uint32_t bin, tl;
	uint64_t point;
	int32_t error;
	struct ctx c, p;
	int test_fd;

	test_begin();
	test_fd = open_fd();
	ctx_init(&c, test_fd, mode, 0);
	igt_assert_eq(drmSyncobjCreate(test_fd, 0, &bin), 0);
	igt_assert_eq(drmSyncobjCreate(test_fd, 0, &tl), 0);
	uf = hmmgpu_done_create(test_fd, DRM_HMMGPU_VM_MODE_FAULT);
	hmmgpu_cmd_write64(&probe, RES_VA + 8, MARK_SHORT);
	exec = (struct drm_hmmgpu_exec) {
		.vm_id = c.vm,
		.cmds = to_user_pointer(&probe),
		.cmd_count = 1,
		.syncs = to_user_pointer(syncs),
	};

	if (mode != DRM_HMMGPU_VM_MODE_FAULT) {
		struct drm_hmmgpu_sync all[3] = {
			hmmgpu_sync_signal(bin),
			hmmgpu_sync_timeline_signal(tl, 1),
			hmmgpu_done_signal(uf),
		};

		exec.syncs = to_user_pointer(all);
		exec.num_syncs = ARRAY_SIZE(all);
		hmmgpu_exec(test_fd, &exec);
		igt_assert_eq(hmmgpu_wait(test_fd, bin, 10ll * NSEC_PER_SEC), 0);
		point = 1;
		igt_assert_eq(drmSyncobjTimelineWait(test_fd, &tl, &point, 1, INT64_MAX, 0, NULL),
			      0);
		igt_assert_eq(hmmgpu_done_wait(uf, 10ll * NSEC_PER_SEC), 0);
		igt_assert_eq_u64(c.res[1], MARK_SHORT);
		goto out;
	}

	/* The binary sync object holds a fence of a VM that has them, if one is offered. */
	if (hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PREFAULT) ||
	    hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PINNED)) {
		ctx_init(&p, test_fd, fence_mode(mode), 0);
		earlier = done_create(&p);
		hmmgpu_cmd_write64(&cmd, RES_VA, MARK_LONG);
		submit(test_fd, p.vm, &cmd, 1, 0, NULL, 0, &earlier, 1);
		igt_assert_eq(job_error(earlier), 0);
		igt_assert_eq(drmSyncobjTransfer(test_fd, bin, 0, earlier->syncobj, 0, 0), 0);
	}

	for (unsigned int i = 0; i < 4; i++) {
		struct drm_hmmgpu_sync fence = i & 2 ? hmmgpu_sync_timeline_signal(tl, 1) :
						       hmmgpu_sync_signal(bin);

		/* Alone, then after a user fence. */
		exec.num_syncs = 1 + (i & 1);
		syncs[0] = i & 1 ? hmmgpu_done_signal(uf) : fence;
		syncs[1] = fence;
		igt_assert_f(__hmmgpu_exec(test_fd, &exec) == -EOPNOTSUPP,
			     "a fault-mode job signalling a %s sync object%s was not refused\n",
			     i & 2 ? "timeline" : "binary", i & 1 ? " and a user fence" : "");
	}

	/* What the sync objects held, they hold. */
	if (earlier) {
		igt_assert(hmmgpu_syncobj_signalled(test_fd, bin, &error));
		igt_assert_eq(error, 0);
	} else {
		int sync_file = -1;

		igt_assert(drmSyncobjExportSyncFile(test_fd, bin, &sync_file));
		igt_assert_eq(errno, EINVAL);
	}
	point = ~0ull;
	igt_assert_eq(drmSyncobjQuery(test_fd, &tl, &point, 1), 0);
	igt_assert_eq_u64(point, 0);
	igt_assert_f(uf->uf->value == 0, "a refused job's user fence was written\n");

	/* A user fence alone is fine; it ends after any refused job would have run. */
	exec.num_syncs = 1;
	hmmgpu_cmd_write64(&cmd, RES_VA + 16, MARK_SHORT);
	exec.cmds = to_user_pointer(&cmd);
	syncs[0] = hmmgpu_done_signal(uf);
	hmmgpu_exec(test_fd, &exec);
	igt_assert_eq(job_error(uf), 0);
	igt_assert_eq_u64(c.res[2], MARK_SHORT);
	igt_assert_f(c.res[1] != MARK_SHORT, "a refused job ran\n");

	if (earlier) {
		hmmgpu_done_destroy(earlier);
		ctx_fini(&p);
	}
out:
	hmmgpu_done_destroy(uf);
	igt_assert_eq(drmSyncobjDestroy(test_fd, bin), 0);
	igt_assert_eq(drmSyncobjDestroy(test_fd, tl), 0);
	ctx_fini(&c);
	close_fd(test_fd);
}

/*
 * fault-then-continue: jobs that touch an address no mapping allows (a
 * write, a read, a fill that runs past the end of a mapping) end with
 * -EFAULT, their commands after the fault do not run, and the next job on
 * the VM, waited for or already queued, runs.
 */
static void test_fault_then_continue(uint32_t mode)
{
	struct drm_hmmgpu_cmd bad[3], cmds[3], good;
	struct hmmgpu_done *s_bad, *s_good;
	struct drm_hmmgpu_vm_stats before;
	struct ctx c;
	int test_fd;

	test_begin();
	test_fd = open_fd();
	ctx_init(&c, test_fd, mode, 0);
	vm_stats(&c, &before);

	hmmgpu_cmd_write64(&bad[0], UNMAPPED_VA, 1);
	hmmgpu_cmd_copy(&bad[1], DATA_VA, UNMAPPED_VA, page);
	hmmgpu_cmd_fill(&bad[2], DATA_VA + DATA_SIZE - page, 2 * page, 0x12345678);

	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		c.res[0] = 0;
		c.res[1] = 0;
		c.res[2] = 0;
		hmmgpu_cmd_write64(&cmds[0], RES_VA, 1 + i);
		cmds[1] = bad[i];
		hmmgpu_cmd_write64(&cmds[2], RES_VA + 8, 1 + i);
		igt_assert_eq(hmmgpu_exec_job(test_fd, c.vm, cmds, 3, 0), -EFAULT);
		igt_assert_eq_u64(c.res[0], 1 + i);
		igt_assert_f(c.res[1] == 0, "a command after the fault ran\n");

		hmmgpu_cmd_write64(&good, RES_VA + 16, MARK_SHORT + i);
		igt_assert_eq(hmmgpu_exec_job(test_fd, c.vm, &good, 1, 0), 0);
		igt_assert_eq_u64(c.res[2], MARK_SHORT + i);
	}

	/* Both queued before either runs. */
	s_bad = done_create(&c);
	s_good = done_create(&c);
	c.res[3] = 0;
	submit(test_fd, c.vm, &bad[0], 1, 0, NULL, 0, &s_bad, 1);
	hmmgpu_cmd_write64(&good, RES_VA + 24, MARK_SHORT);
	submit(test_fd, c.vm, &good, 1, 0, NULL, 0, &s_good, 1);
	igt_assert_eq(job_error(s_good), 0);
	igt_assert_eq(job_error(s_bad), -EFAULT);
	igt_assert_eq_u64(c.res[3], MARK_SHORT);

	check_job_stats(&c, &before, ARRAY_SIZE(bad) + 1, ARRAY_SIZE(bad) + 1);

	hmmgpu_done_destroy(s_bad);
	hmmgpu_done_destroy(s_good);
	ctx_fini(&c);
	close_fd(test_fd);
}

/*
 * destroy-busy and close-busy: a long job and BUSY_SHORT short ones queued
 * behind it, then the VM goes. Jobs end in order, so their errors are some
 * 0s (jobs done before the cancellation) and then -ECANCELED; the last short
 * job, queued behind a long one, cannot have run. A cancelled job wrote
 * nothing.
 */
#define BUSY_SHORT 3

static void queue_busy(struct ctx *c, struct hmmgpu_done **dones)
{
	struct drm_hmmgpu_cmd cmd;
	unsigned int n = long_cmds(c, RES_VA, MARK_LONG);

	submit(c->fd, c->vm, long_buf, n, LONG_TIMEOUT_MS, NULL, 0, &dones[0], 1);
	for (unsigned int i = 1; i <= BUSY_SHORT; i++) {
		hmmgpu_cmd_write64(&cmd, RES_VA + 8 * i, MARK_SHORT + i);
		submit(c->fd, c->vm, &cmd, 1, 0, NULL, 0, &dones[i], 1);
	}
}

/* @errors: the jobs' errors, the long one first; @res: the results, or NULL. */
static void check_busy_errors(const int32_t *errors, volatile uint64_t *res)
{
	unsigned int cancelled = 0;

	for (unsigned int i = 0; i <= BUSY_SHORT; i++) {
		igt_debug("job %u: %d\n", i, errors[i]);
		igt_assert_f(errors[i] == 0 || errors[i] == -ECANCELED,
			     "job %u ended with %d\n", i, errors[i]);
		if (errors[i])
			cancelled++;
		else
			igt_assert_f(!cancelled, "job %u ran after job %u was cancelled\n", i,
				     i - 1);
		if (res && i == 0)
			igt_assert_eq(res[0] == MARK_LONG, errors[0] == 0);
		else if (res)
			igt_assert_eq(res[i] == MARK_SHORT + i, errors[i] == 0);
	}
	igt_assert_f(errors[BUSY_SHORT] == -ECANCELED,
		     "the last job queued ended with %d\n", errors[BUSY_SHORT]);
	igt_info("%u of %u jobs cancelled\n", cancelled, BUSY_SHORT + 1);
}

static void test_destroy_busy(uint32_t mode)
{
	struct hmmgpu_done *dones[BUSY_SHORT + 1];
	int32_t errors[BUSY_SHORT + 1];
	struct drm_hmmgpu_vm_stats stats;
	struct drm_hmmgpu_cmd cmd;
	struct timespec start = {};
	struct ctx c;
	int test_fd;
	uint32_t vm;

	test_begin();
	test_fd = open_fd();
	ctx_init(&c, test_fd, mode, 0);
	for (unsigned int i = 0; i <= BUSY_SHORT; i++)
		dones[i] = done_create(&c);

	queue_busy(&c, dones);
	igt_gettime(&start);
	hmmgpu_vm_destroy(test_fd, c.vm);
	igt_info("VM destroyed in %.3f s\n", igt_nsec_elapsed(&start) / 1e9);
	vm = c.vm;
	c.vm = 0;

	/* Every job ended before the ioctl returned. */
	for (unsigned int i = 0; i <= BUSY_SHORT; i++)
		igt_assert_f(hmmgpu_done_signalled(dones[i], &errors[i]),
			     "job %u has not ended when VM_DESTROY returned\n", i);
	check_busy_errors(errors, c.res);

	/* The VM is gone. */
	igt_assert_eq(__hmmgpu_vm_stats(test_fd, vm, &stats), -ENOENT);
	hmmgpu_cmd_write64(&cmd, RES_VA, 0);
	igt_assert_eq(__hmmgpu_exec_wait(test_fd, vm, &cmd, 1, 0, NULL), -ENOENT);

	for (unsigned int i = 0; i <= BUSY_SHORT; i++)
		hmmgpu_done_destroy(dones[i]);
	ctx_fini(&c);
	close_fd(test_fd);
}

static void test_close_busy(uint32_t mode)
{
	struct hmmgpu_done *dones[BUSY_SHORT + 1];
	int sync_files[BUSY_SHORT + 1];
	int32_t errors[BUSY_SHORT + 1];
	struct timespec start = {};
	struct pollfd pfd[BUSY_SHORT + 1];
	unsigned int immediate = 0;
	struct ctx c;
	int test_fd;

	test_begin();
	test_fd = open_fd();
	ctx_init(&c, test_fd, mode, 0);
	/* A CPU mapping would keep the file open past close(). */
	unmap_res(c.res);
	c.res = NULL;
	/* User fences are waited for through the fixture's file: this one goes. */
	for (unsigned int i = 0; i <= BUSY_SHORT; i++)
		dones[i] = hmmgpu_done_create(mode == DRM_HMMGPU_VM_MODE_FAULT ? fd : test_fd, mode);

	queue_busy(&c, dones);
	if (mode == DRM_HMMGPU_VM_MODE_FAULT) {
		igt_gettime(&start);
		close_fd(test_fd);
		igt_info("file closed in %.3f s\n", igt_nsec_elapsed(&start) / 1e9);

		for (unsigned int i = 0; i <= BUSY_SHORT; i++)
			immediate += hmmgpu_done_signalled(dones[i], NULL);
		igt_info("%u of %u user fences written when close() returned\n", immediate,
			 BUSY_SHORT + 1);
		for (unsigned int i = 0; i <= BUSY_SHORT; i++) {
			int err = __hmmgpu_done_wait(dones[i], 5ll * NSEC_PER_SEC, &errors[i]);

			igt_assert_f(err == 0, "user fence of job %u not written 5 s after close: "
				     "%d\n", i, err);
			hmmgpu_done_destroy(dones[i]);
		}
		check_busy_errors(errors, NULL);
		return;
	}

	for (unsigned int i = 0; i <= BUSY_SHORT; i++) {
		igt_assert_eq(drmSyncobjExportSyncFile(test_fd, dones[i]->syncobj, &sync_files[i]),
			      0);
		pfd[i] = (struct pollfd) { .fd = sync_files[i], .events = POLLIN };
		/* The sync objects go with the file. */
		free(dones[i]);
	}

	igt_gettime(&start);
	close_fd(test_fd);
	igt_info("file closed in %.3f s\n", igt_nsec_elapsed(&start) / 1e9);

	for (unsigned int i = 0; i <= BUSY_SHORT; i++)
		if (poll(&pfd[i], 1, 0) == 1)
			immediate++;
	igt_info("%u of %u sync files signalled when close() returned\n", immediate,
		 BUSY_SHORT + 1);

	for (unsigned int i = 0; i <= BUSY_SHORT; i++) {
		struct sync_file_info info = {};

		igt_assert_f(poll(&pfd[i], 1, 5000) == 1 && (pfd[i].revents & POLLIN),
			     "sync file of job %u not signalled 5 s after close\n", i);
		igt_assert_eq(ioctl(sync_files[i], SYNC_IOC_FILE_INFO, &info), 0);
		igt_assert_f(info.status == 1 || info.status == -ECANCELED,
			     "sync file of job %u: status %d\n", i, info.status);
		errors[i] = info.status == 1 ? 0 : info.status;
		close(sync_files[i]);
	}
	check_busy_errors(errors, NULL);
}

/*
 * many-jobs: MANY_JOBS small jobs back to back, each copying a shared counter
 * to its own slot then incrementing it: slot i reads i when they ran in
 * order. Fences signal in order too: polled from the last to the first, once
 * one has signalled, every earlier one has.
 */
#define MANY_JOBS 200

static void test_many_jobs(uint32_t mode)
{
	struct drm_hmmgpu_vm_stats before;
	struct hmmgpu_done *dones[MANY_JOBS];
	struct drm_hmmgpu_cmd cmds[2];
	bool seen = false;
	int32_t error;
	struct ctx c;
	int test_fd;

	igt_assert_lt((MANY_JOBS + 1) * 8, page);
	test_begin();
	test_fd = open_fd();
	ctx_init(&c, test_fd, mode, 0);
	vm_stats(&c, &before);
	c.res[0] = 0;
	for (unsigned int i = 0; i < MANY_JOBS; i++) {
		dones[i] = done_create(&c);
		c.res[1 + i] = ~0ull;
	}

	for (unsigned int i = 0; i < MANY_JOBS; i++) {
		hmmgpu_cmd_copy(&cmds[0], RES_VA + 8 * (1 + i), RES_VA, 8);
		hmmgpu_cmd_atomic_add(&cmds[1], RES_VA, 1);
		submit(test_fd, c.vm, cmds, 2, 0, NULL, 0, &dones[i], 1);
	}

	for (int i = MANY_JOBS - 1; i >= 0; i--) {
		bool done = hmmgpu_done_signalled(dones[i], NULL);

		igt_assert_f(done || !seen, "job %d has not ended, a later one has\n", i);
		seen |= done;
	}

	igt_assert_eq(job_error(dones[MANY_JOBS - 1]), 0);
	for (unsigned int i = 0; i < MANY_JOBS; i++) {
		igt_assert_f(hmmgpu_done_signalled(dones[i], &error),
			     "job %u has not ended, the last one has\n", i);
		igt_assert_f(error == 0, "job %u: error %d\n", i, error);
		igt_assert_f(c.res[1 + i] == i, "job %u ran %" PRIu64 "th\n", i,
			     (uint64_t)c.res[1 + i]);
	}
	igt_assert_eq_u64(c.res[0], MANY_JOBS);
	check_job_stats(&c, &before, MANY_JOBS, 0);

	for (unsigned int i = 0; i < MANY_JOBS; i++)
		hmmgpu_done_destroy(dones[i]);
	ctx_fini(&c);
	close_fd(test_fd);
}

igt_main
{
	/* Static: changed inside subtests, between sigsetjmp() and siglongjmp(). */
	static const struct hmmgpu_vm_mode *m;

	igt_fixture {
		page = sysconf(_SC_PAGESIZE);
		fd = hmmgpu_open_vm_device();
		igt_require(hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_GEM_MAX_SIZE) >= DATA_SIZE);
	}

	igt_describe("A job's end reaches each of its 2 to 16 signal syncs (sync objects, or "
		     "user fences in fault mode), and no other; all tell of no error and the "
		     "data is written.");
	igt_subtest_with_dynamic("out-fence") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_out_fence(m->flags);
	}

	igt_describe("A short job queued behind a long one on the same VM ends after it, and "
		     "reads what it wrote last.");
	igt_subtest_with_dynamic("in-order") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_in_order(m->flags);
	}

	igt_describe("A job whose wait sync holds the fence of a long job on another VM of the "
		     "same file (prefault or pinned) runs after it and reads what it wrote; a "
		     "wait sync without a fence is refused with -EINVAL.");
	igt_subtest_with_dynamic("in-fence") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_in_fence(m->flags);
	}

	igt_describe("The same across files: the wait sync is the long job's signal sync "
		     "object, exported as an fd from one file and imported into the other.");
	igt_subtest_with_dynamic("in-fence-cross-fd") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_in_fence_cross_fd(m->flags);
	}

	igt_describe("A long job limited to 1 ms ends with -ETIMEDOUT before its last command; "
		     "the VM runs the next job, and VM_STATS counts one failed, one done.");
	igt_subtest_with_dynamic("timeout") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_timeout(m->flags);
	}

	igt_describe("A job limited to 50 ms whose wait sync holds the fence of a long job on "
		     "another VM ends with -ETIMEDOUT without running; the long job completes.");
	igt_subtest_with_dynamic("in-fence-timeout") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_in_fence_timeout(m->flags);
	}

	igt_describe("A job's time limit counts from submission: a short job queued behind a "
		     "long one runs out of time waiting, without running.");
	igt_subtest_with_dynamic("queued-timeout") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_queued_timeout(m->flags);
	}

	igt_describe("A fault-mode job may not signal a sync object, binary or timeline "
		     "(-EOPNOTSUPP; nothing is queued, the sync objects keep what they held, "
		     "the user fence beside it is not written); prefault and pinned jobs "
		     "signal both and a user fence.");
	igt_subtest_with_dynamic("fault-fence") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_fault_fence(m->flags);
	}

	igt_describe("Jobs that write, read or fill where nothing is mapped end with -EFAULT "
		     "at the fault; the next job on the VM, queued before or after, runs.");
	igt_subtest_with_dynamic("fault-then-continue") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_fault_then_continue(m->flags);
	}

	igt_describe("Destroying a VM with a long job running and short ones queued: every "
		     "job has ended when the ioctl returns, in order, done or -ECANCELED (the "
		     "last one cancelled), and cancelled jobs wrote nothing.");
	igt_subtest_with_dynamic("destroy-busy") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_destroy_busy(m->flags);
	}

	igt_describe("The same by closing the file: the jobs' fences, exported as sync files, "
		     "signal, with status 1 or -ECANCELED (the last one cancelled); in fault "
		     "mode their user fences are written with 0 or -ECANCELED.");
	igt_subtest_with_dynamic("close-busy") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_close_busy(m->flags);
	}

	igt_describe("200 small jobs queued back to back all complete without error, in "
		     "order, and VM_STATS counts 200 more jobs done.");
	igt_subtest_with_dynamic("many-jobs") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_many_jobs(m->flags);
	}

	igt_fixture {
		close_leftovers();
		drm_close_driver(fd);
	}
}
