// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Races between hmmgpu's userptr mirroring and whatever the CPU side does at
 * the same time, in each VM mode the device offers (one dynamic subtest per
 * mode: "fault", "prefault", "pinned"):
 *
 * - invalidation-storm-*: a thread invalidates a 2 MiB userptr range in a
 *   loop (MADV_DONTNEED, mprotect read-only and back, munmap and a fresh
 *   mmap of the same range) while jobs read and write it. Every job ends,
 *   with exactly the data the CPU semantics allow, and enough of them
 *   succeed; once the storm is over a job sees exactly the CPU's data.
 * - threads, threads-shared-vm, processes: several threads (one VM each, or
 *   one VM for all) or processes (one file each) create, bind, run jobs on,
 *   unbind and close userptrs in a loop, with unrelated mmap/munmap around;
 *   every job succeeds with the right data.
 * - exit-with-job, exit-idle: a child hands its DRM file to its parent over
 *   a unix socket (SCM_RIGHTS) and exits, with jobs in flight or idle. The
 *   jobs end (done, -EFAULT, or -ECANCELED if still in flight when the
 *   child exited); afterwards jobs on the dead child's memory
 *   fault and jobs on GEM objects run.
 * - userfaultfd: memory whose pages a userfaultfd handler thread supplies;
 *   the GPU's page fault (fault mode), the submission (prefault) or the
 *   bind (pinned) has the handler serve them, and the job sees its data.
 * - close-during-fault: the file is closed while a submission waits for a
 *   userfaultfd handler that takes its time.
 * - publish-during-invalidation (prefault and pinned modes only): a job
 *   held back by a sw_sync gate keeps an invalidation waiting in its
 *   callback while a submission goes on: the job submitted meanwhile does
 *   not fault on entries the invalidation clears when it goes on.
 * - publish-after-many-rounds (prefault mode): a submission overtaken for
 *   16 rounds in a row does not then publish its job on entries cleared
 *   after it took its list.
 * - rebind-during-invalidation (prefault and pinned modes only): the same
 *   wait, while the mapping is unbound and a GEM object bound in its place:
 *   the invalidation leaves the object's entries alone.
 * - invalidation-race-dontneed, invalidation-race-fork (prefault and pinned
 *   modes only): the race of publish-during-invalidation left to happen by
 *   itself (MADV_DONTNEED at a random moment, fork in a loop), over a
 *   bounded number of jobs.
 * - exit-with-blocked-job: a process that exits with a job held back by a
 *   gate does not wait for it: the job is cancelled.
 * - user-fence-write-during-invalidation (prefault and pinned modes only):
 *   an mprotect that waits for a job, with the mmap lock held, while the
 *   kernel's write of the user fence of the job before it waits for the mmap
 *   lock: the writes do not hold up the next job.
 * - user-fence-order: the user fences of a VM's jobs are written in the
 *   order the jobs end, even when a write waits and others queue behind it.
 * - exit-during-user-fence: a process exits while its job's worker is held
 *   writing the job's user fence; the worker drops the address space last,
 *   and the job queued behind it still ends.
 * - pins-released-without-submit: pins an invalidation drops are released
 *   with nothing submitted after it.
 * - pins-released-second-invalidation: so are those of a second
 *   invalidation that comes while the first one's wait for the worker.
 * - probe-storm, probe-storm-signal: USERPTR_CREATE with PROBE returns under
 *   an endless invalidation storm, and when a signal comes.
 *
 * Every subtest runs in child processes that SIGALRM kills past
 * TEST_LIMIT_S: a hang fails the subtest instead of stalling the run. Waits
 * for jobs are bounded by JOB_WAIT_NS, the userfaultfd handler polls with a
 * timeout. Threads other than the main one never use igt_assert (it would
 * jump across threads): they report what went wrong in a string that the
 * main thread asserts empty.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/sync_file.h>
#include <linux/userfaultfd.h>
#include <xf86drm.h>

#include "igt.h"
#include "igt_hmmgpu.h"
#include "sw_sync.h"

IGT_TEST_DESCRIPTION("Races of hmmgpu's userptr mirroring with the CPU, in every VM mode: "
		     "invalidation storms (MADV_DONTNEED, mprotect, munmap and remap) under "
		     "running jobs, threads and processes binding and running jobs side by "
		     "side, a process that exits with jobs in flight or leaves its VM to "
		     "another, userfaultfd memory served while the GPU faults it in, "
		     "closing the file while a submission waits for userfaultfd, and the "
		     "protocol of modes that cannot fault: submissions and rebinds while an "
		     "invalidation waits for a job, exit with a job held back, release of "
		     "pins, and probing under an endless storm.");

#define SZ_64K		(64ull << 10)
#define SZ_1M		(1ull << 20)
#define SZ_2M		(2ull << 20)

#define USERPTR_VA	0x100000000ull
#define BO_VA		0x200000000ull
#define VA_STRIDE	0x10000000ull

/* The longest any wait for a job may take: past it, the job counts as hung. */
#define JOB_WAIT_NS	(20ll * NSEC_PER_SEC)
/* The longest a subtest's process may live: SIGALRM kills it past that. */
#define TEST_LIMIT_S	40

/* A long job takes about this long. */
#define LONG_TARGET_S	0.4

static int fd = -1;
static long page;
/* 1 MiB copies that make a long job, measured once by the first fixture. */
static unsigned int long_copies;
static struct drm_hmmgpu_cmd long_buf[HMMGPU_CMD_MAX_COUNT];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
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

static uint64_t pattern_checksum(uint32_t seed, uint64_t first_dword, uint64_t size)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < size / 4; i++)
		sum += hmmgpu_pattern(seed, first_dword + i);
	return sum;
}

static char *map_anon(uint64_t size)
{
	char *ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	igt_assert_f(ptr != MAP_FAILED, "mmap of %" PRIu64 " bytes failed\n", size);
	return ptr;
}

static void check_value(const void *ptr, uint64_t size, uint32_t value)
{
	const uint32_t *p = ptr;

	for (uint64_t i = 0; i < size / sizeof(*p); i++)
		igt_assert_f(p[i] == value, "dword %" PRIu64 " reads %#x, expected %#x\n",
			     i, p[i], value);
}

static void vm_stats_info(int test_fd, uint32_t vm, const char *what)
{
	struct drm_hmmgpu_vm_stats s;

	hmmgpu_vm_stats(test_fd, vm, &s);
	igt_info("%s: faults %llu (4k %llu, 2m %llu), invalidations %llu, retries %llu, "
		 "pinned %llu, jobs done %llu, failed %llu\n", what,
		 (unsigned long long)s.faults, (unsigned long long)s.faults_4k,
		 (unsigned long long)s.faults_2m, (unsigned long long)s.invalidations,
		 (unsigned long long)s.retries, (unsigned long long)s.pinned_pages,
		 (unsigned long long)s.jobs_done, (unsigned long long)s.jobs_failed);
}

/*
 * Helpers that any thread may call: they return errors instead of asserting.
 */

static int t_gem_close(int test_fd, uint32_t handle)
{
	struct drm_gem_close arg = { .handle = handle };

	return drmIoctl(test_fd, DRM_IOCTL_GEM_CLOSE, &arg) ? -errno : 0;
}

/*
 * Waits, as any thread may (__hmmgpu_wait() asserts nothing), up to
 * JOB_WAIT_NS for the fence of @sync; returns 0 with its error in *@error
 * (read through a sync_file's status), or the -errno of the step that failed.
 */
static int t_wait(int test_fd, uint32_t sync, int32_t *error)
{
	return __hmmgpu_wait(test_fd, sync, JOB_WAIT_NS, error);
}

/*
 * Queues @n commands on @vm, a VM in @mode, as one job and waits for it,
 * through a sync object, or in fault mode a user fence. An exec refused
 * with -EAGAIN (its mirroring kept racing with invalidations) is tried
 * again until @deadline (of now_s()), and counted in *@eagain. Returns 0
 * with the job's error in *@error, or the -errno of the step that failed.
 * Any thread may call it.
 */
static int t_exec_wait(int test_fd, uint32_t vm, uint32_t mode, const struct drm_hmmgpu_cmd *cmds,
		       unsigned int n, int32_t *error, unsigned int *eagain, double deadline)
{
	struct drm_hmmgpu_sync sync_arg;
	struct drm_hmmgpu_exec exec = {
		.vm_id = vm,
		.cmds = to_user_pointer(cmds),
		.cmd_count = n,
		.syncs = to_user_pointer(&sync_arg),
		.num_syncs = 1,
	};
	/* Off the stack: a job that outlives its wait may write it later. */
	struct hmmgpu_user_fence *uf = NULL;
	uint32_t sync = 0;
	int err;

	if (mode == DRM_HMMGPU_VM_MODE_FAULT) {
		uf = calloc(1, sizeof(*uf));
		if (!uf)
			return -ENOMEM;
		sync_arg = hmmgpu_sync_user_fence(&uf->value, 1, &uf->error);
	} else {
		if (drmSyncobjCreate(test_fd, 0, &sync))
			return -errno;
		sync_arg = hmmgpu_sync_signal(sync);
	}

	/* Not drmIoctl(): it would retry -EAGAIN without telling. */
	for (;;) {
		err = ioctl(test_fd, DRM_IOCTL_HMMGPU_EXEC, &exec) ? -errno : 0;
		if (err == -EINTR)
			continue;
		if (err != -EAGAIN || now_s() > deadline)
			break;
		if (eagain)
			(*eagain)++;
	}
	if (err) {
		free(uf);
	} else if (uf) {
		err = __hmmgpu_wait_user_fence(test_fd, &uf->value, 1, ~0ull, DRM_HMMGPU_WAIT_EQ,
					       JOB_WAIT_NS);
		if (!err)
			*error = (int32_t)__atomic_load_n(&uf->error, __ATOMIC_RELAXED);
		if (err != -ETIME)
			free(uf);
	} else {
		err = t_wait(test_fd, sync, error);
	}

	if (sync)
		drmSyncobjDestroy(test_fd, sync);
	return err;
}

/* Waits for the fence of @sync, bounded; returns its error. */
static int job_error(int test_fd, uint32_t sync)
{
	int32_t error = 0;
	int err = __hmmgpu_wait(test_fd, sync, JOB_WAIT_NS, &error);

	igt_assert_f(err == 0, "wait for sync object %u: %d%s\n", sync, err,
		     err == -ETIME ? " (the job did not end in time)" : "");
	return error;
}

/* Queues @n commands on @vm, signalling the sync object @out (0: nothing). */
static void submit(int test_fd, uint32_t vm, const struct drm_hmmgpu_cmd *cmds, unsigned int n,
		   uint32_t timeout_ms, uint32_t out)
{
	struct drm_hmmgpu_sync sync = hmmgpu_sync_signal(out);
	struct drm_hmmgpu_exec exec = {
		.vm_id = vm,
		.cmds = to_user_pointer(cmds),
		.cmd_count = n,
		.timeout_ms = timeout_ms,
		.syncs = to_user_pointer(&sync),
		.num_syncs = out ? 1 : 0,
	};

	hmmgpu_exec(test_fd, &exec);
}

static uint32_t syncobj_create(int test_fd)
{
	uint32_t handle = 0;

	igt_assert_eq(drmSyncobjCreate(test_fd, 0, &handle), 0);
	return handle;
}

/*
 * Long jobs: copies of 1 MiB back and forth between the halves of the 2 MiB
 * at @va.
 */
static void bounce_cmds(struct drm_hmmgpu_cmd *cmds, unsigned int n, uint64_t va)
{
	for (unsigned int i = 0; i < n; i++) {
		if (i % 2)
			hmmgpu_cmd_copy(&cmds[i], va, va + SZ_1M, SZ_1M);
		else
			hmmgpu_cmd_copy(&cmds[i], va + SZ_1M, va, SZ_1M);
	}
}

/* A long job on the 2 MiB at @va whose last command writes @mark at @mark_va. */
static unsigned int long_cmds(uint64_t va, uint64_t mark_va, uint64_t mark)
{
	bounce_cmds(long_buf, long_copies, va);
	hmmgpu_cmd_write64(&long_buf[long_copies], mark_va, mark);
	return long_copies + 1;
}

/* How many 1 MiB copies take about LONG_TARGET_S, from a short job's time. */
static void calibrate(void)
{
	const unsigned int n = 32;
	uint32_t vm, bo, mode = 0;
	double start, per_copy;
	unsigned int count;

	for (const struct hmmgpu_vm_mode *m = hmmgpu_vm_modes; m->name && !mode; m++)
		if (hmmgpu_has_vm_mode(fd, m->flags))
			mode = m->flags;

	vm = hmmgpu_vm_create(fd, mode);
	bo = hmmgpu_gem_create(fd, SZ_2M);
	hmmgpu_vm_map(fd, vm, bo, 0, BO_VA, SZ_2M, 0);
	bounce_cmds(long_buf, n, BO_VA);
	igt_assert_eq(hmmgpu_exec_job(fd, vm, long_buf, 8, 0), 0);
	start = now_s();
	igt_assert_eq(hmmgpu_exec_job(fd, vm, long_buf, n, 0), 0);
	per_copy = (now_s() - start) / n;
	hmmgpu_vm_destroy(fd, vm);
	gem_close(fd, bo);

	count = per_copy > 0 ? LONG_TARGET_S / per_copy : HMMGPU_CMD_MAX_COUNT;
	if (count < 64)
		count = 64;
	if (count > HMMGPU_CMD_MAX_COUNT - 1)
		count = HMMGPU_CMD_MAX_COUNT - 1;
	igt_info("a copy of 1 MiB takes %.3f ms: long jobs make %u copies (%.2f s)\n",
		 per_copy * 1e3, count, count * per_copy);
	long_copies = count;
}

/*
 * Runs @fn(@mode) in a child process that SIGALRM (whose default action
 * ends it even in a killable sleep in the kernel) kills after @seconds.
 */
static void run_bounded(void (*fn)(uint32_t), uint32_t mode, unsigned int seconds)
{
	int err;

	igt_fork(child, 1) {
		alarm(seconds);
		fn(mode);
	}
	err = __igt_waitchildren();
	igt_assert_f(err != 128 + SIGALRM, "the test did not end within %u s: a hang\n", seconds);
	if (err)
		igt_fail(err);
}

/*
 * invalidation-storm-*: a 2 MiB userptr at USERPTR_VA, invalidated in a loop
 * by a thread while the main thread runs jobs on it. The scratch object at
 * BO_VA holds two source patterns (A and B), a destination (C) and a page of
 * results.
 */
#define STORM_SIZE	SZ_2M
/*
 * A storm lasts STORM_S, or longer until STORM_MIN_JOBS jobs have succeeded
 * during it, but never past STORM_MAX_S, when the thread stops by itself: so
 * a slow guest does not make too few jobs fit, and a storm that starves jobs
 * still ends.
 */
#define STORM_S		1.0
#define STORM_MAX_S	20.0
#define STORM_MIN_JOBS	10
/* Invalidations the thread must have made. */
#define STORM_MIN_OPS	10

#define A_VA		(BO_VA)
#define B_VA		(BO_VA + SZ_2M)
#define C_VA		(BO_VA + 2 * SZ_2M)
#define RES_VA		(BO_VA + 3 * SZ_2M)

enum storm_kind { STORM_DONTNEED, STORM_MPROTECT, STORM_REMAP };

static const char *const storm_names[] = {
	[STORM_DONTNEED] = "MADV_DONTNEED",
	[STORM_MPROTECT] = "mprotect",
	[STORM_REMAP] = "munmap+mmap",
};

/*
 * Remapped memory: dword i of the mapping of generation g reads g << 19 | i
 * (2 MiB is 2^19 dwords), so that what the GPU read tells which mapping it
 * came from.
 */
#define GEN_SHIFT	19
#define GEN_INDEX	((1u << GEN_SHIFT) - 1)
#define GEN_MAX		((1u << (32 - GEN_SHIFT)) - 1)

struct storm {
	enum storm_kind kind;
	char *ptr;
	/* The thread stops when told, or at @deadline (of now_s()); then it sets @ended. */
	double deadline;
	atomic_bool stop, ended;
	/* Remap: the generation mapped last, and the last one completely written. */
	atomic_uint mapped_gen, filled_gen;
	unsigned long ops;
	char err[256];
};

static void fill_gen(char *ptr, unsigned int gen)
{
	uint32_t *p = (uint32_t *)ptr;

	for (uint32_t i = 0; i < STORM_SIZE / 4; i++)
		p[i] = gen << GEN_SHIFT | i;
}

static void storm_loop(struct storm *s)
{
	const int rw = PROT_READ | PROT_WRITE;

	while (!atomic_load(&s->stop) && now_s() < s->deadline) {
		switch (s->kind) {
		case STORM_DONTNEED:
			if (madvise(s->ptr, STORM_SIZE, MADV_DONTNEED)) {
				snprintf(s->err, sizeof(s->err), "madvise: %s", strerror(errno));
				return;
			}
			/*
			 * Thousands a second, not back to back: on a CPU of
			 * its own, a thread zapping the whole range without a
			 * pause overtakes every snapshot, and jobs then get
			 * through only by mirroring under the mmap lock held
			 * for writing, at a fraction of a second each (per-range
			 * locks are to serialize snapshots with invalidations).
			 */
			usleep(200);
			break;
		case STORM_MPROTECT:
			/* Always back to read-write before stopping. */
			if (mprotect(s->ptr, STORM_SIZE, PROT_READ) ||
			    mprotect(s->ptr, STORM_SIZE, rw)) {
				snprintf(s->err, sizeof(s->err), "mprotect: %s", strerror(errno));
				return;
			}
			break;
		case STORM_REMAP: {
			unsigned int gen = atomic_load(&s->mapped_gen) + 1;
			void *p;

			if (gen > GEN_MAX)
				return;
			if (munmap(s->ptr, STORM_SIZE)) {
				snprintf(s->err, sizeof(s->err), "munmap: %s", strerror(errno));
				return;
			}
			atomic_store(&s->mapped_gen, gen);
			/* No MAP_FIXED: were the range taken meanwhile, it would be clobbered. */
			p = mmap(s->ptr, STORM_SIZE, rw,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (p != s->ptr) {
				snprintf(s->err, sizeof(s->err), "mmap of the range again: %s",
					 p == MAP_FAILED ? strerror(errno) : "another address");
				if (p != MAP_FAILED)
					munmap(p, STORM_SIZE);
				return;
			}
			fill_gen(s->ptr, gen);
			atomic_store(&s->filled_gen, gen);
			break;
		}
		}
		s->ops++;
	}
}

static void *storm_thread(void *arg)
{
	struct storm *s = arg;

	storm_loop(s);
	atomic_store(&s->ended, true);
	return NULL;
}

/*
 * A copy that MADV_DONTNEED raced with: each dword is the source's, or 0
 * (the page was discarded after the GPU wrote it, and read back fresh).
 * Returns how many dwords read 0 where the source is not 0.
 */
static unsigned int check_src_or_zero(const uint32_t *got, const uint32_t *src, unsigned int job)
{
	unsigned int zero = 0;

	if (!memcmp(got, src, STORM_SIZE))
		return 0;
	for (uint32_t i = 0; i < STORM_SIZE / 4; i++) {
		if (got[i] == src[i])
			continue;
		igt_assert_f(got[i] == 0, "job %u: dword %u (byte %#x) reads %#x, neither the "
			     "source's %#x nor 0\n", job, i, i * 4, got[i], src[i]);
		zero++;
	}
	return zero;
}

/*
 * Whether @v is @want as the CPU was writing it over a zero page: each byte
 * either @want's or still 0. The engine copies bytes (memmove), and with the
 * storm on another CPU it may read a dword the CPU is halfway through
 * writing.
 */
static bool partly_written(uint32_t v, uint32_t want)
{
	for (int shift = 0; shift < 32; shift += 8) {
		uint32_t b = v >> shift & 0xff;

		if (b && b != (want >> shift & 0xff))
			return false;
	}
	return true;
}

/*
 * A copy of remapped memory: each dword is 0 (a fresh page) or dword i of a
 * mapping of generation @lo (mapped when the job was submitted) to @hi
 * (mapped last when it ended), possibly only partly written yet; never of
 * one unmapped before the job. Returns how many dwords were partly written.
 */
static unsigned int check_gen(const uint32_t *got, unsigned int lo, unsigned int hi,
			      unsigned int job)
{
	unsigned int partial = 0;

	for (uint32_t i = 0; i < STORM_SIZE / 4; i++) {
		uint32_t v = got[i], gen = v >> GEN_SHIFT;
		bool whole = (v & GEN_INDEX) == i && gen >= lo && gen <= hi, part = false;

		if (!v || whole)
			continue;
		for (uint32_t g = lo; g <= hi && !part; g++)
			part = partly_written(v, g << GEN_SHIFT | i);
		igt_assert_f(part,
			     "job %u: dword %u (byte %#x) reads %#x: dword %u of mapping %u, "
			     "expected dword %u of mapping %u to %u (or part of it), or 0\n", job,
			     i, i * 4, v, v & GEN_INDEX, gen, i, lo, hi);
		partial++;
	}
	return partial;
}

static void test_storm(uint32_t mode, enum storm_kind kind)
{
	const uint64_t bo_size = 3 * SZ_2M + page;
	const char *name = storm_names[kind];
	unsigned int jobs = 0, done = 0, late = 0, faulted = 0, eagain = 0, torn = 0, zeros = 0;
	struct drm_hmmgpu_vm_stats before, after;
	struct storm s = { .kind = kind };
	struct drm_hmmgpu_cmd cmds[3];
	uint64_t sum_ro = 0;
	volatile uint64_t *res;
	uint32_t vm, bo, uptr;
	uint32_t *expect_ro = NULL;
	pthread_t thread;
	double start, elapsed;
	int test_fd, err;
	int32_t error;
	char *bo_ptr;

	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	vm = hmmgpu_vm_create(test_fd, mode);
	bo = hmmgpu_gem_create(test_fd, bo_size);
	bo_ptr = hmmgpu_gem_mmap(test_fd, bo, bo_size, PROT_READ | PROT_WRITE);
	hmmgpu_vm_map(test_fd, vm, bo, 0, BO_VA, bo_size, 0);
	hmmgpu_fill_pattern(bo_ptr, SZ_2M, 1);
	hmmgpu_fill_pattern(bo_ptr + SZ_2M, SZ_2M, 2);
	res = (volatile uint64_t *)(bo_ptr + 3 * SZ_2M);

	s.ptr = map_anon(STORM_SIZE);
	switch (kind) {
	case STORM_DONTNEED:
		memset(s.ptr, 0, STORM_SIZE);
		uptr = hmmgpu_userptr_create(test_fd, s.ptr, STORM_SIZE, 0);
		break;
	case STORM_MPROTECT:
		/* The GPU only reads: a read-only userptr, which pinned mode can pin under PROT_READ. */
		hmmgpu_fill_pattern(s.ptr, STORM_SIZE, 7);
		expect_ro = malloc(STORM_SIZE);
		igt_assert(expect_ro);
		memcpy(expect_ro, s.ptr, STORM_SIZE);
		sum_ro = cpu_checksum(expect_ro, STORM_SIZE);
		uptr = hmmgpu_userptr_create(test_fd, s.ptr, STORM_SIZE,
					     DRM_HMMGPU_USERPTR_READ_ONLY);
		break;
	case STORM_REMAP:
	default:
		fill_gen(s.ptr, 1);
		atomic_store(&s.mapped_gen, 1);
		atomic_store(&s.filled_gen, 1);
		uptr = hmmgpu_userptr_create(test_fd, s.ptr, STORM_SIZE, 0);
		break;
	}
	hmmgpu_vm_map(test_fd, vm, uptr, 0, USERPTR_VA, STORM_SIZE, 0);

	hmmgpu_vm_stats(test_fd, vm, &before);
	start = now_s();
	s.deadline = start + STORM_MAX_S;
	igt_assert_eq(pthread_create(&thread, NULL, storm_thread, &s), 0);
	while (!atomic_load(&s.ended) &&
	       (now_s() - start < STORM_S || done < STORM_MIN_JOBS)) {
		unsigned int lo = atomic_load(&s.filled_gen), hi, n = 0;
		const uint32_t *c = (const uint32_t *)(bo_ptr + 2 * SZ_2M);
		bool use_b = jobs % 2, during;

		res[0] = 0xdeadbeefdeadbeefull;
		switch (kind) {
		case STORM_DONTNEED:
			/* Write A or B into it, and copy it back to C. */
			hmmgpu_cmd_copy(&cmds[n++], USERPTR_VA, use_b ? B_VA : A_VA, STORM_SIZE);
			hmmgpu_cmd_copy(&cmds[n++], C_VA, USERPTR_VA, STORM_SIZE);
			break;
		case STORM_MPROTECT:
			hmmgpu_cmd_copy(&cmds[n++], C_VA, USERPTR_VA, STORM_SIZE);
			hmmgpu_cmd_checksum(&cmds[n++], RES_VA, USERPTR_VA, STORM_SIZE);
			break;
		case STORM_REMAP:
			hmmgpu_cmd_copy(&cmds[n++], C_VA, USERPTR_VA, STORM_SIZE);
			break;
		}

		/* Once the storm is over, -EAGAIN has no reason to last. */
		error = 0;
		err = t_exec_wait(test_fd, vm, mode, cmds, n, &error, &eagain, s.deadline + 5);
		hi = atomic_load(&s.mapped_gen);
		during = !atomic_load(&s.ended);
		jobs++;
		igt_assert_f(err == 0, "job %u during the %s storm: exec or wait failed with %d\n",
			     jobs, name, err);
		if (error == -EFAULT && kind == STORM_REMAP) {
			/* It ran into the moment the range was unmapped. */
			faulted++;
			continue;
		}
		igt_assert_f(error == 0, "job %u during the %s storm ended with %d\n", jobs, name,
			     error);
		/* Only jobs done while the storm still ran count as its progress. */
		if (during)
			done++;
		else
			late++;

		switch (kind) {
		case STORM_DONTNEED: {
			const uint32_t *src = (const uint32_t *)(bo_ptr + (use_b ? SZ_2M : 0));
			unsigned int z;

			if (mode != DRM_HMMGPU_VM_MODE_FAULT) {
				/* Invalidations wait for the job: it saw none of them. */
				igt_assert_f(!memcmp(c, src, STORM_SIZE),
					     "job %u: the copy back differs from the source, in "
					     "%s mode where invalidations wait for jobs\n", jobs,
					     hmmgpu_vm_mode_name(mode));
				break;
			}
			z = check_src_or_zero(c, src, jobs);
			torn += z != 0;
			zeros += z;
			break;
		}
		case STORM_MPROTECT:
			igt_assert_f(!memcmp(c, expect_ro, STORM_SIZE),
				     "job %u: the copy of memory mprotect only changes the "
				     "protection of differs from it\n", jobs);
			igt_assert_eq_u64(res[0], sum_ro);
			break;
		case STORM_REMAP:
			check_gen(c, lo, hi, jobs);
			break;
		}
	}
	elapsed = now_s() - start;
	atomic_store(&s.stop, true);
	igt_assert_eq(pthread_join(thread, NULL), 0);
	hmmgpu_vm_stats(test_fd, vm, &after);

	igt_info("%s storm of %.2f s: %lu %s; %u jobs: %u done during the storm, %u after it, "
		 "%u -EFAULT; %u execs retried after -EAGAIN; VM: %llu invalidations, %llu "
		 "retries, %llu faults\n", name, elapsed, s.ops,
		 kind == STORM_MPROTECT ? "RO/RW round trips" :
		 kind == STORM_REMAP ? "remaps" : "calls", jobs, done, late, faulted, eagain,
		 (unsigned long long)(after.invalidations - before.invalidations),
		 (unsigned long long)(after.retries - before.retries),
		 (unsigned long long)(after.faults - before.faults));
	if (kind == STORM_DONTNEED && mode == DRM_HMMGPU_VM_MODE_FAULT)
		igt_info("%u jobs read back pages discarded under them (%u dwords of 0)\n",
			 torn, zeros);

	igt_assert_f(!s.err[0], "the %s thread failed: %s\n", name, s.err);
	igt_assert_f(s.ops >= STORM_MIN_OPS, "the %s thread made only %lu invalidations\n",
		     name, s.ops);

	/*
	 * The storm is over: a job sees exactly what the CPU wrote, and the CPU
	 * what the GPU wrote.
	 */
	hmmgpu_fill_pattern(s.ptr, STORM_SIZE, 9);
	memset(bo_ptr + 2 * SZ_2M, 0, STORM_SIZE);
	res[0] = 0;
	hmmgpu_cmd_copy(&cmds[0], C_VA, USERPTR_VA, STORM_SIZE);
	hmmgpu_cmd_checksum(&cmds[1], RES_VA, USERPTR_VA, STORM_SIZE);
	igt_assert_eq(hmmgpu_exec_job(test_fd, vm, cmds, 2, 0), 0);
	hmmgpu_check_pattern(bo_ptr + 2 * SZ_2M, STORM_SIZE, 9);
	igt_assert_eq_u64(res[0], cpu_checksum(s.ptr, STORM_SIZE));
	if (kind != STORM_MPROTECT) {
		hmmgpu_cmd_fill(&cmds[0], USERPTR_VA + 3 * page, page, 0x600df00d);
		igt_assert_eq(hmmgpu_exec_job(test_fd, vm, cmds, 1, 0), 0);
		check_value(s.ptr + 3 * page, page, 0x600df00d);
		hmmgpu_check_pattern_at(s.ptr, 0, 3 * page, 9);
		hmmgpu_check_pattern_at(s.ptr, 4 * page, STORM_SIZE - 4 * page, 9);
	}

	/* Forward progress: the storm did not starve the jobs. */
	igt_assert_f(done >= STORM_MIN_JOBS, "only %u jobs completed during %.2f s of %s "
		     "storm (at least %u must); %u execs were refused with -EAGAIN\n", done,
		     elapsed, name, STORM_MIN_JOBS, eagain);
	igt_assert_eq_u64(after.jobs_done - before.jobs_done, done + late);
	igt_assert_eq_u64(after.jobs_failed - before.jobs_failed, faulted);

	hmmgpu_vm_unmap(test_fd, vm, USERPTR_VA, STORM_SIZE);
	gem_close(test_fd, uptr);
	hmmgpu_vm_destroy(test_fd, vm);
	igt_assert_eq(munmap(bo_ptr, bo_size), 0);
	gem_close(test_fd, bo);
	drm_close_driver(test_fd);
	igt_assert_eq(munmap(s.ptr, STORM_SIZE), 0);
	free(expect_ro);
}

/*
 * unmap-split-race: unbinds split a userptr mapping in the middle while a
 * thread discards its pages (MADV_DONTNEED) in a loop, so that invalidations
 * land before, during and after the split. The pieces may keep the entries
 * of the mapping only if no invalidation cleared them meanwhile; a piece that
 * kept entries to pages the CPU let go would read them later. So after each
 * split, with the thread stopped, the CPU writes new data and a job reads
 * both pieces: it must see exactly that data.
 */
#define SPLIT_PAGES	16
#define SPLIT_HOLE	6
#define SPLIT_HOLE_PAGES 4
#define SPLIT_ROUNDS	48

struct split_storm {
	char *ptr;
	uint64_t size;
	atomic_bool stop;
	unsigned long ops;
	char err[128];
};

static void *split_storm_thread(void *arg)
{
	struct split_storm *s = arg;

	while (!atomic_load(&s->stop)) {
		if (madvise(s->ptr, s->size, MADV_DONTNEED)) {
			snprintf(s->err, sizeof(s->err), "madvise: %s", strerror(errno));
			break;
		}
		s->ops++;
		sched_yield();
	}
	return NULL;
}

static void fill_round(uint32_t *p, uint64_t size, uint32_t round)
{
	for (uint64_t i = 0; i < size / sizeof(*p); i++)
		p[i] = round << 20 | (uint32_t)i;
}

static void test_unmap_split_race(uint32_t mode)
{
	const uint64_t size = SPLIT_PAGES * page;
	const uint64_t head = SPLIT_HOLE * page;
	const uint64_t tail_off = (SPLIT_HOLE + SPLIT_HOLE_PAGES) * page;
	const uint64_t tail = size - tail_off;
	struct split_storm s = { .size = size };
	struct drm_hmmgpu_cmd cmds[2];
	volatile uint64_t *res;
	unsigned long splits = 0;
	uint32_t vm, uptr, bo;
	pthread_t thread;
	int32_t error;
	char *bo_ptr;

	vm = hmmgpu_vm_create(fd, mode);
	bo = hmmgpu_gem_create(fd, page);
	bo_ptr = hmmgpu_gem_mmap(fd, bo, page, PROT_READ | PROT_WRITE);
	res = (volatile uint64_t *)bo_ptr;
	hmmgpu_vm_map(fd, vm, bo, 0, RES_VA, page, 0);
	s.ptr = map_anon(size);
	uptr = hmmgpu_userptr_create(fd, s.ptr, size, 0);
	hmmgpu_cmd_checksum(&cmds[0], RES_VA, USERPTR_VA, head);
	hmmgpu_cmd_checksum(&cmds[1], RES_VA + 8, USERPTR_VA + tail_off, tail);

	for (uint32_t round = 1; round <= SPLIT_ROUNDS; round++) {
		fill_round((uint32_t *)s.ptr, size, round);
		hmmgpu_vm_map(fd, vm, uptr, 0, USERPTR_VA, size, 0);
		/* Mirrored (mapped, in modes that cannot fault) before the split. */
		igt_assert_eq(t_exec_wait(fd, vm, mode, cmds, 2, &error, NULL, now_s() + 10), 0);
		igt_assert_eq(error, 0);

		atomic_store(&s.stop, false);
		igt_assert_eq(pthread_create(&thread, NULL, split_storm_thread, &s), 0);
		/* Let the storm start, on some rounds, before the split. */
		for (uint32_t i = 0; i < round % 4; i++)
			sched_yield();
		hmmgpu_vm_unmap(fd, vm, USERPTR_VA + head, SPLIT_HOLE_PAGES * page);
		atomic_store(&s.stop, true);
		igt_assert_eq(pthread_join(thread, NULL), 0);
		igt_assert_f(!s.err[0], "%s\n", s.err);

		/* New pages, written without an invalidation: only a fresh mirror sees them. */
		fill_round((uint32_t *)s.ptr, size, round + SPLIT_ROUNDS);
		res[0] = res[1] = 0xdeadbeefdeadbeefull;
		igt_assert_eq(t_exec_wait(fd, vm, mode, cmds, 2, &error, NULL, now_s() + 10), 0);
		igt_assert_f(error == 0, "round %u: the job on the pieces failed: %d\n", round,
			     error);
		igt_assert_f(res[0] == cpu_checksum(s.ptr, head),
			     "round %u: the head piece read stale pages\n", round);
		igt_assert_f(res[1] == cpu_checksum(s.ptr + tail_off, tail),
			     "round %u: the tail piece read stale pages\n", round);
		splits++;
		hmmgpu_vm_unmap(fd, vm, USERPTR_VA, size);
	}
	igt_info("%lu splits, %lu discards of the pages meanwhile\n", splits, s.ops);
	vm_stats_info(fd, vm, "unmap-split-race");
	gem_close(fd, uptr);
	igt_assert_eq(munmap(s.ptr, size), 0);
	hmmgpu_vm_destroy(fd, vm);
	igt_assert_eq(munmap(bo_ptr, page), 0);
	gem_close(fd, bo);
}

static void test_storm_dontneed(uint32_t mode)
{
	test_storm(mode, STORM_DONTNEED);
}

static void test_storm_mprotect(uint32_t mode)
{
	test_storm(mode, STORM_MPROTECT);
}

static void test_storm_remap(uint32_t mode)
{
	test_storm(mode, STORM_REMAP);
}

/*
 * threads, threads-shared-vm, processes: workers that each loop over
 * create userptr / bind / exec / wait / unbind / close on memory of their
 * own, for WORK_S, or longer until it has made WORK_MIN_ITER iterations,
 * but never past WORK_MAX_S (a bound, so that a starved worker still ends
 * and fails). A worker's GEM object is at its bva: WORK_SIZE bytes the
 * job copies the userptr into, then a page whose first word takes its
 * checksum.
 */
#define WORK_SIZE	SZ_64K
#define WORK_S		1.0
#define WORK_MAX_S	20.0
#define NUM_WORKERS	4
#define NUM_PROCS	3
#define WORK_MIN_ITER	3

struct worker {
	pthread_t thread;
	unsigned int id;
	int fd;
	uint32_t mode, vm;
	uint64_t uva, bva;
	uint32_t bo;
	char *bo_ptr;
	char *mem;
	unsigned int iterations, eagain;
	char err[256];
};

__attribute__((format(printf, 2, 3)))
static bool worker_fail(struct worker *w, const char *f, ...)
{
	va_list args;

	va_start(args, f);
	vsnprintf(w->err, sizeof(w->err), f, args);
	va_end(args);
	return false;
}

/* One round; false, with w->err set, when something went wrong. */
static bool work_once(struct worker *w, unsigned int iter)
{
	const uint32_t seed = w->id << 16 | (iter & 0xffff);
	const uint64_t fill_off = WORK_SIZE / 2;
	const uint32_t value = 0xf1000000u | w->id << 16 | (iter & 0xffff);
	volatile uint64_t *res = (volatile uint64_t *)(w->bo_ptr + WORK_SIZE);
	const uint32_t *copy = (const uint32_t *)w->bo_ptr;
	const uint32_t *mem = (const uint32_t *)w->mem;
	struct drm_hmmgpu_cmd cmds[3];
	uint32_t handle = 0;
	int32_t error = 0;
	uint64_t sum;
	int err;

	hmmgpu_fill_pattern(w->mem, WORK_SIZE, seed);
	sum = cpu_checksum(w->mem, WORK_SIZE);
	res[0] = ~0ull;

	err = __hmmgpu_userptr_create(w->fd, to_user_pointer(w->mem), WORK_SIZE, 0, &handle);
	if (err)
		return worker_fail(w, "userptr create: %d", err);
	err = __hmmgpu_vm_bind(w->fd, w->vm, DRM_HMMGPU_VM_BIND_MAP, handle, 0, w->uva,
			       WORK_SIZE, 0);
	if (err) {
		t_gem_close(w->fd, handle);
		return worker_fail(w, "bind: %d", err);
	}

	hmmgpu_cmd_copy(&cmds[0], w->bva, w->uva, WORK_SIZE);
	hmmgpu_cmd_checksum(&cmds[1], w->bva + WORK_SIZE, w->uva, WORK_SIZE);
	hmmgpu_cmd_fill(&cmds[2], w->uva + fill_off, page, value);
	err = t_exec_wait(w->fd, w->vm, w->mode, cmds, 3, &error, &w->eagain, now_s() + 5);
	if (err || error)
		return worker_fail(w, "job: exec or wait %d, job error %d", err, error);

	err = __hmmgpu_vm_bind(w->fd, w->vm, DRM_HMMGPU_VM_BIND_UNMAP, 0, 0, w->uva, WORK_SIZE, 0);
	if (err)
		return worker_fail(w, "unbind: %d", err);
	err = t_gem_close(w->fd, handle);
	if (err)
		return worker_fail(w, "close of the userptr: %d", err);

	if (res[0] != sum)
		return worker_fail(w, "the GPU's checksum is %#" PRIx64 ", expected %#" PRIx64,
				   (uint64_t)res[0], sum);
	for (uint32_t i = 0; i < WORK_SIZE / 4; i++) {
		uint32_t p = hmmgpu_pattern(seed, i);
		bool filled = i >= fill_off / 4 && i < (fill_off + page) / 4;

		if (copy[i] != p)
			return worker_fail(w, "the GPU's copy: dword %u reads %#x, expected %#x",
					   i, copy[i], p);
		if (mem[i] != (filled ? value : p))
			return worker_fail(w, "the memory after the GPU's fill: dword %u reads "
					   "%#x, expected %#x", i, mem[i], filled ? value : p);
	}
	return true;
}

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	double start = now_s();

	while ((now_s() - start < WORK_S || w->iterations < WORK_MIN_ITER) &&
	       now_s() - start < WORK_MAX_S && work_once(w, w->iterations))
		w->iterations++;
	return NULL;
}

/* @vm: 0 for a VM of its own. */
static void worker_init(struct worker *w, unsigned int id, int test_fd, uint32_t mode,
			uint32_t vm)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->fd = test_fd;
	w->mode = mode;
	w->vm = vm ?: hmmgpu_vm_create(test_fd, mode);
	w->uva = USERPTR_VA + id * VA_STRIDE;
	w->bva = BO_VA + id * VA_STRIDE;
	w->bo = hmmgpu_gem_create(test_fd, WORK_SIZE + page);
	w->bo_ptr = hmmgpu_gem_mmap(test_fd, w->bo, WORK_SIZE + page, PROT_READ | PROT_WRITE);
	hmmgpu_vm_map(test_fd, w->vm, w->bo, 0, w->bva, WORK_SIZE + page, 0);
	w->mem = map_anon(WORK_SIZE);
}

/* @own_vm: destroy the worker's VM too. */
static void worker_fini(struct worker *w, bool own_vm)
{
	hmmgpu_vm_unmap(w->fd, w->vm, w->bva, WORK_SIZE + page);
	if (own_vm)
		hmmgpu_vm_destroy(w->fd, w->vm);
	igt_assert_eq(munmap(w->bo_ptr, WORK_SIZE + page), 0);
	gem_close(w->fd, w->bo);
	igt_assert_eq(munmap(w->mem, WORK_SIZE), 0);
}

/* Unrelated mmap/munmap, for invalidations of ranges no VM mirrors. */
struct churn {
	atomic_bool stop;
	unsigned long ops;
	char err[128];
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(&c->stop)) {
		char *p = mmap(NULL, SZ_64K, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);

		if (p == MAP_FAILED) {
			snprintf(c->err, sizeof(c->err), "mmap: %s", strerror(errno));
			break;
		}
		memset(p, (int)c->ops, SZ_64K);
		munmap(p, SZ_64K);
		c->ops++;
	}
	return NULL;
}

static void check_worker(struct worker *w, const char *who)
{
	igt_assert_f(!w->err[0], "%s %u, iteration %u: %s\n", who, w->id, w->iterations, w->err);
	igt_assert_f(w->iterations >= WORK_MIN_ITER, "%s %u made only %u iterations in %.1f s\n",
		     who, w->id, w->iterations, WORK_MAX_S);
}

static void test_threads(uint32_t mode, bool shared)
{
	struct worker w[NUM_WORKERS];
	struct churn churn = {};
	struct drm_hmmgpu_vm_stats stats;
	uint64_t done = 0, failed = 0, iterations = 0;
	uint32_t shared_vm = 0;
	pthread_t churn_tid;
	int test_fd;

	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	if (shared)
		shared_vm = hmmgpu_vm_create(test_fd, mode);
	for (unsigned int i = 0; i < NUM_WORKERS; i++)
		worker_init(&w[i], i, test_fd, mode, shared_vm);

	igt_assert_eq(pthread_create(&churn_tid, NULL, churn_thread, &churn), 0);
	for (unsigned int i = 0; i < NUM_WORKERS; i++)
		igt_assert_eq(pthread_create(&w[i].thread, NULL, worker_thread, &w[i]), 0);
	for (unsigned int i = 0; i < NUM_WORKERS; i++)
		igt_assert_eq(pthread_join(w[i].thread, NULL), 0);
	atomic_store(&churn.stop, true);
	igt_assert_eq(pthread_join(churn_tid, NULL), 0);

	igt_info("%u threads on %s: %u, %u, %u and %u iterations (%u, %u, %u, %u execs "
		 "retried after -EAGAIN); %lu unrelated mmap/munmap\n", NUM_WORKERS,
		 shared ? "one VM" : "a VM each", w[0].iterations, w[1].iterations,
		 w[2].iterations, w[3].iterations, w[0].eagain, w[1].eagain, w[2].eagain,
		 w[3].eagain, churn.ops);
	igt_assert_f(!churn.err[0], "the mmap/munmap thread failed: %s\n", churn.err);
	for (unsigned int i = 0; i < NUM_WORKERS; i++)
		check_worker(&w[i], "thread");

	/* Every job counted once, as done. */
	for (unsigned int i = 0; i < NUM_WORKERS; i++) {
		iterations += w[i].iterations;
		if (shared && i)
			continue;
		hmmgpu_vm_stats(test_fd, w[i].vm, &stats);
		done += stats.jobs_done;
		failed += stats.jobs_failed;
	}
	if (shared)
		vm_stats_info(test_fd, shared_vm, "the shared VM");
	igt_assert_eq_u64(failed, 0);
	igt_assert_eq_u64(done, iterations);

	for (unsigned int i = 0; i < NUM_WORKERS; i++)
		worker_fini(&w[i], !shared);
	if (shared)
		hmmgpu_vm_destroy(test_fd, shared_vm);
	drm_close_driver(test_fd);
}

static void test_threads_own_vm(uint32_t mode)
{
	test_threads(mode, false);
}

static void test_threads_shared_vm(uint32_t mode)
{
	test_threads(mode, true);
}

static void test_processes(uint32_t mode)
{
	int err;

	igt_fork(child, NUM_PROCS) {
		struct drm_hmmgpu_vm_stats stats;
		struct worker w;
		int test_fd;

		alarm(TEST_LIMIT_S);
		test_fd = drm_open_driver_render(DRIVER_HMMGPU);
		worker_init(&w, child, test_fd, mode, 0);
		worker_thread(&w);
		igt_info("process %d: %u iterations (%u execs retried after -EAGAIN)\n", child,
			 w.iterations, w.eagain);
		check_worker(&w, "process");
		hmmgpu_vm_stats(test_fd, w.vm, &stats);
		igt_assert_eq_u64(stats.jobs_failed, 0);
		igt_assert_eq_u64(stats.jobs_done, w.iterations);
		worker_fini(&w, true);
		drm_close_driver(test_fd);
	}
	err = __igt_waitchildren();
	igt_assert_f(err != 128 + SIGALRM, "a process did not end within %u s: a hang\n",
		     TEST_LIMIT_S);
	if (err)
		igt_fail(err);
}

/*
 * exit-with-job, exit-idle: a child makes a VM of its own memory in a file
 * of its own, passes the file to the test over a unix socket and exits. Its
 * 2 MiB userptr is at USERPTR_VA, its GEM object at BO_VA: 2 MiB of data and
 * a page of results (RES_OFF).
 */
#define RES_OFF		SZ_2M
#define EXIT_BO_SIZE	(SZ_2M + page)
#define MARK_UPTR	0x0e417a5c0000d001ull
#define MARK_BO		0x0e417a5c0000d002ull
#define MARK_CHILD	0x0e417a5c0000d003ull

struct handoff {
	uint32_t vm, bo, uptr, sync_uptr, sync_bo, pad;
};

static void send_fd(int sock, int fd_to_send, const void *data, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cmsg;

	memset(&u, 0, sizeof(u));
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd_to_send, sizeof(int));
	igt_assert_eq(sendmsg(sock, &msg, 0), (ssize_t)len);
}

/* Receives a file descriptor and @len bytes, within 10 s; -1 when none came. */
static int recv_fd(int sock, void *data, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = data, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	struct cmsghdr *cmsg;
	int received = -1;

	if (poll(&pfd, 1, 10000) != 1)
		return -1;
	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != (ssize_t)len)
		return -1;
	cmsg = CMSG_FIRSTHDR(&msg);
	if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
	    cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&received, CMSG_DATA(cmsg), sizeof(int));
	return received;
}

/* The child: sets up, runs a job so that its memory is mirrored, hands over, exits. */
static void __noreturn exit_child(int sock, uint32_t mode, bool with_job)
{
	struct handoff h = {};
	struct drm_hmmgpu_cmd cmds[3];
	unsigned int n;
	int cfd;
	char *mem;

	cfd = drm_open_driver_render(DRIVER_HMMGPU);
	mem = map_anon(SZ_2M);
	hmmgpu_fill_pattern(mem, SZ_2M, 1);
	h.vm = hmmgpu_vm_create(cfd, mode);
	h.uptr = hmmgpu_userptr_create(cfd, mem, SZ_2M, 0);
	hmmgpu_vm_map(cfd, h.vm, h.uptr, 0, USERPTR_VA, SZ_2M, 0);
	h.bo = hmmgpu_gem_create(cfd, EXIT_BO_SIZE);
	hmmgpu_vm_map(cfd, h.vm, h.bo, 0, BO_VA, EXIT_BO_SIZE, 0);
	/*
	 * Fault-mode jobs have no fence, and their user fences would be written
	 * in this process's memory, gone by then: the test counts their ends in
	 * VM_STATS instead.
	 */
	if (mode != DRM_HMMGPU_VM_MODE_FAULT) {
		h.sync_uptr = syncobj_create(cfd);
		h.sync_bo = syncobj_create(cfd);
	}

	/* The GPU reads and writes the memory: mirrored, or pinned, when the child goes. */
	hmmgpu_cmd_checksum(&cmds[0], BO_VA + RES_OFF, USERPTR_VA, SZ_2M);
	hmmgpu_cmd_fill(&cmds[1], USERPTR_VA + page, page, 0x600d600d);
	hmmgpu_cmd_write64(&cmds[2], BO_VA + RES_OFF + 24, MARK_CHILD);
	igt_assert_eq(hmmgpu_exec_job(cfd, h.vm, cmds, 3, 0), 0);
	check_value(mem + page, page, 0x600d600d);

	send_fd(sock, cfd, &h, sizeof(h));

	if (with_job) {
		/* A long job on the memory, then one on the object alone, in flight at exit. */
		n = long_cmds(USERPTR_VA, BO_VA + RES_OFF + 8, MARK_UPTR);
		submit(cfd, h.vm, long_buf, n, HMMGPU_EXEC_MAX_TIMEOUT_MS, h.sync_uptr);
		n = long_cmds(BO_VA, BO_VA + RES_OFF + 16, MARK_BO);
		submit(cfd, h.vm, long_buf, n, HMMGPU_EXEC_MAX_TIMEOUT_MS, h.sync_bo);
	}
	_exit(0);
}

/* The results page of the child's object, mapped whole: unmap_results() it. */
static volatile uint64_t *map_results(int test_fd, uint32_t bo)
{
	char *ptr = hmmgpu_gem_mmap(test_fd, bo, EXIT_BO_SIZE, PROT_READ | PROT_WRITE);

	return (volatile uint64_t *)(ptr + RES_OFF);
}

static void unmap_results(volatile uint64_t *res)
{
	igt_assert_eq(munmap((char *)res - RES_OFF, EXIT_BO_SIZE), 0);
}

/*
 * Waits, bounded, until VM_STATS of @vm counts @jobs jobs ended (done or
 * failed), and returns the counters in *@stats: how the end of a job that a
 * process which exited submitted to a fault-mode VM is seen (it has no
 * fence, and no memory of that process is left to write a user fence in).
 */
static void wait_jobs_ended(int test_fd, uint32_t vm, uint64_t jobs,
			    struct drm_hmmgpu_vm_stats *stats)
{
	double start = now_s();

	for (;;) {
		hmmgpu_vm_stats(test_fd, vm, stats);
		if (stats->jobs_done + stats->jobs_failed >= jobs)
			return;
		igt_assert_f(now_s() - start < JOB_WAIT_NS / 1e9,
			     "VM %u: %llu of %llu jobs ended after %.0f s\n", vm,
			     (unsigned long long)(stats->jobs_done + stats->jobs_failed),
			     (unsigned long long)jobs, JOB_WAIT_NS / 1e9);
		usleep(10 * 1000);
	}
}

/*
 * The VM of a process that is gone: jobs that touch its memory fault, in
 * every mode; jobs on its GEM object run; nothing binds its memory, or ours.
 */
static void check_orphan_vm(int pfd, const struct handoff *h, uint32_t mode)
{
	struct drm_hmmgpu_vm_stats stats;
	struct drm_hmmgpu_cmd cmds[2];
	volatile uint64_t *res;
	double start;
	uint32_t mine;
	char *ptr;

	res = map_results(pfd, h->bo);
	igt_assert_eq_u64(res[3], MARK_CHILD);

	res[0] = 0;
	hmmgpu_cmd_fill(&cmds[0], BO_VA, SZ_64K, 0xb0b0b0b0);
	hmmgpu_cmd_checksum(&cmds[1], BO_VA + RES_OFF, BO_VA, SZ_64K);
	igt_assert_eq(hmmgpu_exec_job(pfd, h->vm, cmds, 2, 0), 0);
	igt_assert_eq_u64(res[0], (uint64_t)0xb0b0b0b0 * (SZ_64K / 4));

	hmmgpu_cmd_checksum(&cmds[0], BO_VA + RES_OFF, USERPTR_VA, SZ_2M);
	igt_assert_eq(hmmgpu_exec_job(pfd, h->vm, cmds, 1, 0), -EFAULT);
	hmmgpu_cmd_write64(&cmds[0], USERPTR_VA + 8, 1);
	igt_assert_eq(hmmgpu_exec_job(pfd, h->vm, cmds, 1, 0), -EFAULT);
	hmmgpu_cmd_copy(&cmds[0], BO_VA, USERPTR_VA + SZ_1M, SZ_64K);
	igt_assert_eq(hmmgpu_exec_job(pfd, h->vm, cmds, 1, 0), -EFAULT);
	igt_assert_eq_u64(res[0], (uint64_t)0xb0b0b0b0 * (SZ_64K / 4));

	/* The dead child's userptr at another address, and one of ours. */
	igt_assert_eq(__hmmgpu_vm_bind(pfd, h->vm, DRM_HMMGPU_VM_BIND_MAP, h->uptr, 0,
				       USERPTR_VA + VA_STRIDE, SZ_2M, 0), -EFAULT);
	ptr = map_anon(SZ_64K);
	mine = hmmgpu_userptr_create(pfd, ptr, SZ_64K, 0);
	igt_assert_eq(__hmmgpu_vm_bind(pfd, h->vm, DRM_HMMGPU_VM_BIND_MAP, mine, 0,
				       USERPTR_VA + 2 * VA_STRIDE, SZ_64K, 0), -EFAULT);
	gem_close(pfd, mine);
	igt_assert_eq(munmap(ptr, SZ_64K), 0);

	/* The pins of a process that is gone are released (by a worker, soon). */
	start = now_s();
	do {
		hmmgpu_vm_stats(pfd, h->vm, &stats);
		if (!stats.pinned_pages)
			break;
		usleep(20 * 1000);
	} while (now_s() - start < 3);
	igt_assert_f(stats.pinned_pages == 0, "%llu pages of the dead child still pinned\n",
		     (unsigned long long)stats.pinned_pages);
	vm_stats_info(pfd, h->vm, hmmgpu_vm_mode_name(mode));

	/* Unbinding the dead child's memory, and destroying its VM, work. */
	hmmgpu_vm_unmap(pfd, h->vm, USERPTR_VA, SZ_2M);
	unmap_results(res);
	hmmgpu_vm_destroy(pfd, h->vm);
}

static void test_exit(uint32_t mode, bool with_job)
{
	struct handoff h = {};
	int sv[2], pfd, status = 0;
	volatile uint64_t *res;
	pid_t pid;

	igt_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	fflush(NULL);
	pid = fork();
	igt_assert(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		exit_child(sv[1], mode, with_job);
	}
	close(sv[1]);

	pfd = recv_fd(sv[0], &h, sizeof(h));
	igt_assert_eq(waitpid(pid, &status, 0), pid);
	igt_assert_f(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "the child ended with status %#x\n", status);
	igt_assert_f(pfd >= 0, "the child passed no file\n");
	close(sv[0]);

	if (with_job && mode == DRM_HMMGPU_VM_MODE_FAULT) {
		struct drm_hmmgpu_vm_stats stats;
		uint64_t failed;

		/*
		 * One job before the handover, two after. Fault-mode jobs are not
		 * cancelled when the process exits: the job on the object is done,
		 * the one on the memory done or -EFAULT, as its result tells.
		 */
		wait_jobs_ended(pfd, h.vm, 3, &stats);
		failed = stats.jobs_failed;
		res = map_results(pfd, h.bo);
		igt_info("the child's jobs: %llu done, %llu failed\n",
			 (unsigned long long)stats.jobs_done, (unsigned long long)failed);
		igt_assert_eq_u64(res[2], MARK_BO);
		igt_assert_eq_u64(failed, res[1] != MARK_UPTR);
		unmap_results(res);
	} else if (with_job) {
		bool busy_uptr, busy_bo;
		int32_t err_uptr, err_bo;

		/* The child has exited: both jobs were queued. */
		busy_uptr = !hmmgpu_syncobj_signalled(pfd, h.sync_uptr, NULL);
		busy_bo = !hmmgpu_syncobj_signalled(pfd, h.sync_bo, NULL);
		err_uptr = job_error(pfd, h.sync_uptr);
		err_bo = job_error(pfd, h.sync_bo);
		igt_info("when the child had exited, its job on its memory was %s, its job on "
			 "the object %s; they ended with %d and %d\n",
			 busy_uptr ? "in flight" : "done", busy_bo ? "in flight" : "done",
			 err_uptr, err_bo);
		/*
		 * Jobs still in flight when the child's address space went were
		 * cancelled, so that its exit did not wait for them.
		 */
		igt_assert_f(err_uptr == 0 || err_uptr == -EFAULT || err_uptr == -ECANCELED,
			     "the job on the dead child's memory ended with %d\n", err_uptr);
		igt_assert_f(err_bo == 0 || err_bo == -ECANCELED,
			     "the job on the dead child's object ended with %d\n", err_bo);

		res = map_results(pfd, h.bo);
		igt_assert_eq(res[1] == MARK_UPTR, err_uptr == 0);
		igt_assert_eq(res[2] == MARK_BO, err_bo == 0);
		unmap_results(res);
	}

	check_orphan_vm(pfd, &h, mode);
	igt_assert_eq(close(pfd), 0);
}

static void test_exit_with_job(uint32_t mode)
{
	test_exit(mode, true);
}

static void test_exit_idle(uint32_t mode)
{
	test_exit(mode, false);
}

/*
 * userfaultfd, close-during-fault: UFFD_PAGES pages registered for missing
 * faults, which a handler thread serves with UFFDIO_COPY of a pattern (dword
 * i of the range reads hmmgpu_pattern(seed, i)).
 */
#define UFFD_PAGES	64

struct uffd_server {
	int uffd;
	char *base;
	uint64_t size;
	uint32_t seed;
	/* How long the handler holds the first fault before serving it. */
	unsigned int delay_first_ms;
	atomic_bool stop;
	/* Fault messages read, and pages copied in. */
	atomic_uint seen, served;
	pthread_t thread;
	char err[256];
};

/*
 * Not UFFD_USER_MODE_ONLY: faults the kernel takes on the process's behalf
 * (hmm_range_fault(), pin_user_pages()) must reach the handler too. That
 * takes privilege (root, or vm.unprivileged_userfaultfd).
 */
static int uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd < 0)
		return -errno;
	if (ioctl(uffd, UFFDIO_API, &api)) {
		int err = -errno;

		close(uffd);
		return err;
	}
	return uffd;
}

static void require_uffd(void)
{
	int uffd = uffd_open();

	igt_require_f(uffd >= 0, "no userfaultfd for kernel faults: %s\n", strerror(-uffd));
	close(uffd);
}

static void *uffd_thread(void *arg)
{
	struct uffd_server *u = arg;
	uint32_t *src;

	src = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED) {
		snprintf(u->err, sizeof(u->err), "mmap: %s", strerror(errno));
		return NULL;
	}

	while (!atomic_load(&u->stop)) {
		struct pollfd pfd = { .fd = u->uffd, .events = POLLIN };
		struct uffdio_copy copy = {};
		struct uffd_msg msg;
		uint64_t addr;
		ssize_t got;
		int ret;

		ret = poll(&pfd, 1, 50);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0) {
			snprintf(u->err, sizeof(u->err), "poll: %s", strerror(errno));
			break;
		}
		if (ret == 0)
			continue;
		if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) {
			snprintf(u->err, sizeof(u->err), "poll: revents %#x", pfd.revents);
			break;
		}
		got = read(u->uffd, &msg, sizeof(msg));
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got != sizeof(msg)) {
			snprintf(u->err, sizeof(u->err), "read: %zd, %s", got, strerror(errno));
			break;
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT) {
			snprintf(u->err, sizeof(u->err), "unexpected event %#x", msg.event);
			break;
		}
		addr = msg.arg.pagefault.address & ~(uint64_t)(page - 1);
		if (addr < to_user_pointer(u->base) || addr >= to_user_pointer(u->base) + u->size) {
			snprintf(u->err, sizeof(u->err), "fault at %#" PRIx64 ", outside the range",
				 addr);
			break;
		}
		if (atomic_fetch_add(&u->seen, 1) == 0 && u->delay_first_ms)
			usleep(u->delay_first_ms * 1000);

		for (uint64_t i = 0; i < (uint64_t)page / 4; i++)
			src[i] = hmmgpu_pattern(u->seed, (addr - to_user_pointer(u->base)) / 4 + i);
		copy.dst = addr;
		copy.src = to_user_pointer(src);
		copy.len = page;
		for (int tries = 0; ioctl(u->uffd, UFFDIO_COPY, &copy); tries++) {
			if (errno == EEXIST) {
				/* Copied in for an earlier message: wake whoever waits. */
				struct uffdio_range wake = { .start = addr, .len = page };

				ioctl(u->uffd, UFFDIO_WAKE, &wake);
				break;
			}
			if (errno != EAGAIN || tries > 100) {
				snprintf(u->err, sizeof(u->err), "UFFDIO_COPY at %#" PRIx64 ": %s",
					 addr, strerror(errno));
				goto out;
			}
			copy.copy = 0;
			usleep(1000);
		}
		if (copy.copy == (int64_t)page)
			atomic_fetch_add(&u->served, 1);
	}
out:
	munmap(src, page);
	return NULL;
}

/* Maps @pages pages, registered with a new userfaultfd whose handler thread starts. */
static char *uffd_start(struct uffd_server *u, unsigned int pages, uint32_t seed,
			unsigned int delay_first_ms)
{
	struct uffdio_register reg = {};

	memset(u, 0, sizeof(*u));
	u->size = pages * page;
	u->seed = seed;
	u->delay_first_ms = delay_first_ms;
	u->base = map_anon(u->size);
	/* One fault, one page: no huge page to fill in at once. */
	igt_assert_eq(madvise(u->base, u->size, MADV_NOHUGEPAGE), 0);
	u->uffd = uffd_open();
	igt_assert_f(u->uffd >= 0, "userfaultfd: %s\n", strerror(-u->uffd));
	reg.range.start = to_user_pointer(u->base);
	reg.range.len = u->size;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	igt_assert_eq(ioctl(u->uffd, UFFDIO_REGISTER, &reg), 0);
	igt_assert_eq(pthread_create(&u->thread, NULL, uffd_thread, u), 0);
	return u->base;
}

/*
 * The pages copied in, once they reach @n or @timeout_s passed: the handler
 * counts a page after UFFDIO_COPY returns, which is after it woke the fault.
 */
static unsigned int uffd_served(struct uffd_server *u, unsigned int n, double timeout_s)
{
	double start = now_s();

	while (atomic_load(&u->served) < n && now_s() - start < timeout_s)
		usleep(1000);
	return atomic_load(&u->served);
}

/* Stops the handler; closing the userfaultfd lets any fault still waiting go on without it. */
static void uffd_stop(struct uffd_server *u)
{
	atomic_store(&u->stop, true);
	igt_assert_eq(pthread_join(u->thread, NULL), 0);
	close(u->uffd);
	igt_assert_f(!u->err[0], "the userfaultfd handler failed: %s\n", u->err);
}

static void test_userfaultfd(uint32_t mode)
{
	const uint64_t size = UFFD_PAGES * page, half = size / 2;
	const uint32_t value = 0x0ff1ce00;
	unsigned int at_bind, after_job;
	struct drm_hmmgpu_cmd cmds[3];
	struct uffd_server u;
	volatile uint64_t *res;
	uint32_t vm, bo, uptr;
	double t_bind, t_job;
	int test_fd, err;
	int32_t error = 0;
	char *bo_ptr, *mem;

	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	vm = hmmgpu_vm_create(test_fd, mode);
	bo = hmmgpu_gem_create(test_fd, size + page);
	bo_ptr = hmmgpu_gem_mmap(test_fd, bo, size + page, PROT_READ | PROT_WRITE);
	hmmgpu_vm_map(test_fd, vm, bo, 0, BO_VA, size + page, 0);
	res = (volatile uint64_t *)(bo_ptr + size);
	res[0] = 0;

	mem = uffd_start(&u, UFFD_PAGES, 5, 0);
	uptr = hmmgpu_userptr_create(test_fd, mem, size, 0);

	/* Pinned mode pins here: the handler serves the pins' faults. */
	t_bind = now_s();
	err = __hmmgpu_vm_bind(test_fd, vm, DRM_HMMGPU_VM_BIND_MAP, uptr, 0, USERPTR_VA, size, 0);
	t_bind = now_s() - t_bind;
	at_bind = atomic_load(&u.seen);
	igt_assert_f(err == 0, "bind of userfaultfd memory: %d (%u faults reached the handler)\n",
		     err, atomic_load(&u.seen));

	/*
	 * Fault mode: GPU faults are served by a kernel worker, which may not
	 * wait for a userfaultfd handler (only a fatal signal ends that wait,
	 * and a worker gets none): the job ends with -EFAULT and no fault
	 * reaches the handler. Once the CPU has faulted the pages in, through
	 * the handler, the GPU reaches them.
	 */
	if (mode == DRM_HMMGPU_VM_MODE_FAULT) {
		hmmgpu_cmd_copy(&cmds[0], BO_VA, USERPTR_VA, half);
		err = __hmmgpu_exec_wait(test_fd, vm, cmds, 1, 0, &error);
		igt_assert_eq(err, 0);
		igt_assert_eq(error, -EFAULT);
		igt_assert_eq(atomic_load(&u.seen), 0);
		for (uint64_t off = 0; off < size; off += page)
			(void)*(volatile char *)(mem + off);
		igt_assert_eq(uffd_served(&u, UFFD_PAGES, 5), UFFD_PAGES);
		at_bind = atomic_load(&u.seen);
	}

	/* A read of the first half, and a write of the second: both missing pages. */
	hmmgpu_cmd_copy(&cmds[0], BO_VA, USERPTR_VA, half);
	hmmgpu_cmd_checksum(&cmds[1], BO_VA + size, USERPTR_VA, half);
	hmmgpu_cmd_fill(&cmds[2], USERPTR_VA + half, half, value);
	t_job = now_s();
	err = __hmmgpu_exec_wait(test_fd, vm, cmds, 3, 0, &error);
	t_job = now_s() - t_job;
	after_job = uffd_served(&u, UFFD_PAGES, error ? 0 : 1);
	igt_info("bind took %.3f s, exec and wait %.3f s: %u faults reached the handler (%u "
		 "during the bind), which copied in %u pages; the job ended with %d\n", t_bind,
		 t_job, atomic_load(&u.seen), at_bind, after_job, error);
	vm_stats_info(test_fd, vm, hmmgpu_vm_mode_name(mode));

	igt_assert_f(err == 0, "exec or wait: %d\n", err);
	igt_assert_f(error == 0, "the job on userfaultfd memory ended with %d: its faults were "
		     "not served (%u reached the handler)\n", error, atomic_load(&u.seen));
	/* Every page came from the handler, before the CPU touched any. */
	igt_assert_eq(after_job, UFFD_PAGES);
	if (mode == DRM_HMMGPU_VM_MODE_PINNED)
		igt_assert_lte(UFFD_PAGES, at_bind);
	hmmgpu_check_pattern(bo_ptr, half, u.seed);
	igt_assert_eq_u64(res[0], pattern_checksum(u.seed, 0, half));
	hmmgpu_check_pattern_at(mem, 0, half, u.seed);
	check_value(mem + half, half, value);
	igt_assert_eq(atomic_load(&u.served), UFFD_PAGES);

	uffd_stop(&u);
	hmmgpu_vm_unmap(test_fd, vm, USERPTR_VA, size);
	gem_close(test_fd, uptr);
	hmmgpu_vm_destroy(test_fd, vm);
	igt_assert_eq(munmap(bo_ptr, size + page), 0);
	gem_close(test_fd, bo);
	drm_close_driver(test_fd);
	igt_assert_eq(munmap(mem, size), 0);
}

#define HOLD_MS		200

struct exec_in_thread {
	int fd;
	uint32_t vm;
	struct drm_hmmgpu_cmd cmd;
	int err;
	atomic_bool done;
};

static void *exec_thread(void *arg)
{
	struct exec_in_thread *e = arg;
	struct drm_hmmgpu_exec exec = {
		.vm_id = e->vm,
		.cmds = to_user_pointer(&e->cmd),
		.cmd_count = 1,
	};

	e->err = ioctl(e->fd, DRM_IOCTL_HMMGPU_EXEC, &exec) ? -errno : 0;
	atomic_store(&e->done, true);
	return NULL;
}

/*
 * close-during-fault, prefault mode: a submission faults userfaultfd memory in,
 * in the submitting thread, and waits for a handler that holds the fault
 * 200 ms; meanwhile another thread closes the file. The submission keeps the
 * file until it returns, the handler serves the fault, and everything ends.
 */
static void test_close_during_fault(uint32_t mode)
{
	const uint64_t size = UFFD_PAGES * page;
	struct exec_in_thread e = {};
	struct uffd_server u;
	pthread_t thread;
	uint32_t bo, uptr;
	double start, t_close, t_exec;
	bool held;
	char *mem;

	mem = uffd_start(&u, UFFD_PAGES, 6, HOLD_MS);

	/* No CPU mapping of any object: it would keep the file open past close(). */
	e.fd = drm_open_driver_render(DRIVER_HMMGPU);
	e.vm = hmmgpu_vm_create(e.fd, mode);
	bo = hmmgpu_gem_create(e.fd, size);
	hmmgpu_vm_map(e.fd, e.vm, bo, 0, BO_VA, size, 0);
	uptr = hmmgpu_userptr_create(e.fd, mem, size, 0);
	hmmgpu_vm_map(e.fd, e.vm, uptr, 0, USERPTR_VA, size, 0);
	hmmgpu_cmd_copy(&e.cmd, BO_VA, USERPTR_VA, size);

	start = now_s();
	igt_assert_eq(pthread_create(&thread, NULL, exec_thread, &e), 0);
	/* Until the handler holds the submission's fault. */
	while (!atomic_load(&u.seen) && !atomic_load(&e.done) && now_s() - start < 3)
		usleep(1000);
	held = atomic_load(&u.seen) && !atomic_load(&u.served);

	start = now_s();
	igt_assert_eq(close(e.fd), 0);
	t_close = now_s() - start;
	igt_assert_eq(pthread_join(thread, NULL), 0);
	t_exec = now_s() - start;

	igt_info("close() took %.3f s %s; the submission returned %d %.3f s after; %u faults "
		 "reached the handler, %u pages copied in\n", t_close,
		 held ? "with the handler holding the fault" : "with no fault held", e.err,
		 t_exec, atomic_load(&u.seen), atomic_load(&u.served));
	uffd_stop(&u);
	igt_assert_eq(munmap(mem, size), 0);

	igt_assert_f(t_close < 1, "close() took %.3f s\n", t_close);
	igt_assert_f(t_exec < 5, "the submission took %.3f s after close()\n", t_exec);
	igt_assert_f(held, "the submission's fault never reached the userfaultfd handler\n");
	igt_assert_f(atomic_load(&u.served), "the handler could not serve the fault it held\n");
	/* The file stayed open for the submission, which went through. */
	igt_assert_eq(e.err, 0);
}

/*
 * Protocol races of prefault and pinned modes, made to happen in a chosen
 * order rather than hoped for: a job held back by a sync object whose fence
 * the test signals (sw_sync) keeps an invalidation waiting in its callback,
 * and a userfaultfd page the test serves by hand holds a submission in the
 * middle of its mirroring. Each step waits for the state it needs (a thread
 * asleep in the kernel, a fault message) with a bound on the wait only; a
 * driver that orders things differently (a submission that waits for the
 * invalidation, an invalidation that waits for the new job too) only makes a
 * bounded wait run out, never the test fail.
 *
 * While an invalidation by MADV_DONTNEED waits in its callback, it holds the
 * mmap lock for reading: nothing that takes it for writing (mmap, munmap,
 * brk, so thread creation and large mallocs) may run in the test meanwhile,
 * or it would wait for the job the test holds back. Threads are created
 * before, and told to go through a pipe. Should the test fail while a gate
 * is shut, an exit handler opens every gate so that the process can exit.
 */

/* One igt_dynamic per mode the device offers that cannot fault (prefault, pinned). */
#define for_each_nofault_mode_dynamic(fd, m) \
	for_each_hmmgpu_vm_mode(fd, m) \
		for_each_if((m)->flags != DRM_HMMGPU_VM_MODE_FAULT) \
			igt_dynamic_f("%s", (m)->name)

/* The longest the test waits for a step another thread or the kernel takes. */
#define STEP_WAIT_S	10.0
/*
 * How long the test lets a thread that may legitimately stay blocked (see
 * above) get through before it goes on without it.
 */
#define LINGER_S	1.0

#define X_VA		(USERPTR_VA + VA_STRIDE)
#define MARK_GATED	0x9a7ed0000000001ull

static int sw_sync_timeline(void)
{
	int tl = open(SW_SYNC_PATH, O_RDWR | O_CLOEXEC);

	return tl < 0 ? -errno : tl;
}

/* The timeline of the gates of the running test, opened all at once at exit. */
static int gate_tl = -1;

static void gates_open_all(void)
{
	__u32 many = 1000;

	if (gate_tl >= 0)
		igt_ignore_warn(ioctl(gate_tl, SW_SYNC_IOC_INC, &many) == 0);
}

static int gate_timeline(void)
{
	static bool registered;

	if (!registered) {
		igt_assert_eq(atexit(gates_open_all), 0);
		registered = true;
	}
	gate_tl = sw_sync_timeline();
	igt_assert_f(gate_tl >= 0, "sw_sync timeline: %s\n", strerror(-gate_tl));
	return gate_tl;
}

static void gate_timeline_close(int tl)
{
	igt_assert_eq(tl, gate_tl);
	gate_tl = -1;
	close(tl);
}

static void require_sw_sync(void)
{
	int tl = sw_sync_timeline();

	igt_require_f(tl >= 0, "no sw_sync timeline (CONFIG_SW_SYNC, debugfs mounted): %s\n",
		      strerror(-tl));
	close(tl);
}

/* Sets *@handle to a new sync object whose fence signals once timeline @tl reaches @value. */
static int __gate_syncobj(int test_fd, int tl, uint32_t value, uint32_t *handle)
{
	struct sw_sync_create_fence_data data = { .value = value };
	int err;

	snprintf(data.name, sizeof(data.name), "hmmgpu-gate-%u", value);
	if (ioctl(tl, SW_SYNC_IOC_CREATE_FENCE, &data))
		return -errno;
	err = drmSyncobjCreate(test_fd, 0, handle) ? -errno : 0;
	if (!err && drmSyncobjImportSyncFile(test_fd, *handle, data.fence)) {
		err = -errno;
		drmSyncobjDestroy(test_fd, *handle);
	}
	close(data.fence);
	return err;
}

static uint32_t gate_syncobj(int test_fd, int tl, uint32_t value)
{
	uint32_t handle = 0;

	igt_assert_eq(__gate_syncobj(test_fd, tl, value, &handle), 0);
	return handle;
}

/* Advances @tl by one: the gate of the next value opens. */
static void gate_open(int tl)
{
	__u32 one = 1;

	igt_assert_eq(ioctl(tl, SW_SYNC_IOC_INC, &one), 0);
}

/* An exec of @n commands after @in (0: none) signalling @out, as any thread may: -errno. */
static int exec_gated(int test_fd, uint32_t vm, const struct drm_hmmgpu_cmd *cmds,
		      unsigned int n, uint32_t in, uint32_t out)
{
	struct drm_hmmgpu_sync syncs[2] = { hmmgpu_sync_signal(out), hmmgpu_sync_wait(in) };
	struct drm_hmmgpu_exec exec = {
		.vm_id = vm,
		.cmds = to_user_pointer(cmds),
		.cmd_count = n,
		.timeout_ms = HMMGPU_EXEC_MAX_TIMEOUT_MS,
		.syncs = to_user_pointer(syncs),
		.num_syncs = in ? 2 : 1,
	};
	double deadline = now_s() + STEP_WAIT_S;
	int err;

	/* Not drmIoctl(): -EAGAIN is retried within a bound, and counted by no one. */
	do
		err = ioctl(test_fd, DRM_IOCTL_HMMGPU_EXEC, &exec) ? -errno : 0;
	while (err == -EINTR || (err == -EAGAIN && now_s() < deadline));
	return err;
}

/* The state letter of thread @tid of this process (R, S, D, ...), or 0. */
static char task_state(pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t len;
	int f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return 0;
	len = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/*
 * A blocking call made in a thread of its own, so that the test can watch it
 * block and go on meanwhile.
 */
enum op_kind { OP_MADVISE, OP_MPROTECT, OP_MUNMAP, OP_EXEC, OP_MAP, OP_UNMAP, OP_FENCED_UNMAP };

struct op_thread {
	pthread_t thread;
	enum op_kind kind;
	/* OP_MADVISE, OP_MPROTECT, OP_MUNMAP */
	void *ptr;
	size_t len;
	int advice, prot;
	/* OP_EXEC, OP_MAP, OP_UNMAP, OP_FENCED_UNMAP (waits for @in, signals @out) */
	int fd;
	uint32_t vm, handle;
	struct drm_hmmgpu_cmd cmd;
	uint32_t in, out;
	uint64_t va, size;
	int go[2];
	atomic_int tid;
	atomic_bool done;
	int err;
};

static void *op_run(void *arg)
{
	struct op_thread *o = arg;
	char c;

	atomic_store(&o->tid, (int)syscall(SYS_gettid));
	while (read(o->go[0], &c, 1) != 1) {
		if (errno != EINTR) {
			o->err = -errno;
			atomic_store(&o->done, true);
			return NULL;
		}
	}
	switch (o->kind) {
	case OP_MADVISE:
		o->err = madvise(o->ptr, o->len, o->advice) ? -errno : 0;
		break;
	case OP_MPROTECT:
		o->err = mprotect(o->ptr, o->len, o->prot) ? -errno : 0;
		break;
	case OP_MUNMAP:
		o->err = munmap(o->ptr, o->len) ? -errno : 0;
		break;
	case OP_EXEC:
		o->err = exec_gated(o->fd, o->vm, &o->cmd, 1, o->in, o->out);
		break;
	case OP_MAP:
		o->err = __hmmgpu_vm_bind(o->fd, o->vm, DRM_HMMGPU_VM_BIND_MAP, o->handle, 0,
					  o->va, o->size, 0);
		break;
	case OP_UNMAP:
		o->err = __hmmgpu_vm_bind(o->fd, o->vm, DRM_HMMGPU_VM_BIND_UNMAP, 0, 0, o->va,
					  o->size, 0);
		break;
	case OP_FENCED_UNMAP: {
		struct drm_hmmgpu_vm_bind_op op = hmmgpu_bind_op_unmap(o->va, o->size);
		struct drm_hmmgpu_sync syncs[2] = {
			hmmgpu_sync_wait(o->in), hmmgpu_sync_signal(o->out),
		};
		uint32_t failed;

		o->err = __hmmgpu_vm_bind_fenced(o->fd, o->vm, &op, 1, syncs, 2, &failed);
		break;
	}
	}
	atomic_store(&o->done, true);
	return NULL;
}

/* Creates the thread of @o, which waits for op_go() to make its call. */
static void op_prepare(struct op_thread *o)
{
	atomic_store(&o->tid, 0);
	atomic_store(&o->done, false);
	igt_assert_eq(pipe2(o->go, O_CLOEXEC), 0);
	igt_assert_eq(pthread_create(&o->thread, NULL, op_run, o), 0);
}

static void op_go(struct op_thread *o)
{
	igt_assert_eq(write(o->go[1], "g", 1), 1);
}

/* Whether the call returned within @timeout_s. */
static bool op_wait_done(struct op_thread *o, double timeout_s)
{
	double end = now_s() + timeout_s;

	while (!atomic_load(&o->done) && now_s() < end)
		usleep(1000);
	return atomic_load(&o->done);
}

/*
 * Whether the call went to sleep in the kernel (and stayed asleep for a
 * few looks) within @timeout_s, rather than return.
 */
static bool op_wait_asleep(struct op_thread *o, double timeout_s)
{
	double end = now_s() + timeout_s;
	unsigned int asleep = 0;

	while (!atomic_load(&o->done) && now_s() < end) {
		int tid = atomic_load(&o->tid);
		char s = tid ? task_state(tid) : 0;

		asleep = (s == 'D' || s == 'S') ? asleep + 1 : 0;
		if (asleep >= 5)
			return true;
		usleep(1000);
	}
	return false;
}

static void op_join(struct op_thread *o)
{
	igt_assert_eq(pthread_join(o->thread, NULL), 0);
	close(o->go[0]);
	close(o->go[1]);
}

/* A userfaultfd on @len bytes at @ptr for missing pages, which the test serves itself. */
static int uffd_register_missing(void *ptr, uint64_t len)
{
	struct uffdio_register reg = {
		.range = { .start = to_user_pointer(ptr), .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int uffd = uffd_open();

	igt_assert_f(uffd >= 0, "userfaultfd: %s\n", strerror(-uffd));
	igt_assert_eq(ioctl(uffd, UFFDIO_REGISTER, &reg), 0);
	return uffd;
}

/*
 * Waits, bounded, for a fault message of @uffd, or for @o (if any) to be
 * done; returns the page the message is for, or 0.
 */
static uint64_t __uffd_next_fault(int uffd, struct op_thread *o)
{
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };
	double end = now_s() + STEP_WAIT_S;
	struct uffd_msg msg;

	while (now_s() < end && !(o && atomic_load(&o->done))) {
		int ret = poll(&pfd, 1, 100);

		if (ret <= 0)
			continue;
		if (read(uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event == UFFD_EVENT_PAGEFAULT)
			return msg.arg.pagefault.address & ~(uint64_t)(page - 1);
	}
	return 0;
}

static uint64_t uffd_next_fault(int uffd)
{
	return __uffd_next_fault(uffd, NULL);
}

/* Copies the page at @src in at @addr, which wakes whoever waits for it. */
static void uffd_serve(int uffd, uint64_t addr, const void *src)
{
	struct uffdio_copy copy = {
		.dst = addr,
		.src = to_user_pointer(src),
		.len = page,
	};

	igt_assert_f(ioctl(uffd, UFFDIO_COPY, &copy) == 0, "UFFDIO_COPY: %s\n", strerror(errno));
	igt_assert_eq_u64(copy.copy, page);
}

static uint64_t vm_invalidations(int test_fd, uint32_t vm)
{
	struct drm_hmmgpu_vm_stats s;

	hmmgpu_vm_stats(test_fd, vm, &s);
	return s.invalidations;
}

/* Prepares @o to call madvise(@ptr, @len, @advice). */
static void advise_prepare(struct op_thread *o, void *ptr, size_t len, int advice)
{
	memset(o, 0, sizeof(*o));
	o->kind = OP_MADVISE;
	o->ptr = ptr;
	o->len = len;
	o->advice = advice;
	op_prepare(o);
}

/* Prepares @o to discard @len bytes at @ptr with MADV_DONTNEED. */
static void dontneed_prepare(struct op_thread *o, void *ptr, size_t len)
{
	advise_prepare(o, ptr, len, MADV_DONTNEED);
}

/*
 * Lets @o go, and waits until its invalidation of @vm is asleep in the
 * callback, waiting for the job the test holds back.
 */
static void dontneed_until_waiting(struct op_thread *o, int test_fd, uint32_t vm)
{
	uint64_t before = vm_invalidations(test_fd, vm);
	bool asleep;

	op_go(o);
	asleep = op_wait_asleep(o, STEP_WAIT_S);
	igt_assert_f(asleep, "madvise of a mirrored range %s instead of waiting for the VM's "
		     "unsignalled job\n", atomic_load(&o->done) ? "returned" : "kept running");
	igt_assert_f(vm_invalidations(test_fd, vm) > before,
		     "madvise went to sleep before the VM saw its invalidation\n");
}

/*
 * fenced-unmap-during-invalidation (prefault, pinned): a fenced unmap cuts a
 * userptr mapping while an munmap of all of it waits, in its invalidation,
 * for the VM's last job (held back by a gate). The pieces the unmap leaves
 * are made during that invalidation, so their notifiers are not told of it:
 * the mapping's own invalidation must still clear the entries in their
 * ranges. Once the job ran and the munmap returned, a job reading a piece
 * must fault (-EFAULT), not read the pages the CPU freed. (In pinned mode the
 * call waits for the mmap lock in it, to pin the pieces: it runs in a thread.)
 */
static void test_fenced_unmap_during_invalidation(uint32_t mode)
{
	const uint64_t size = 4 * page;
	struct op_thread inval = { .kind = OP_MUNMAP, .len = 4 * page };
	struct op_thread unbind = { .kind = OP_FENCED_UNMAP };
	struct drm_hmmgpu_cmd cmd;
	uint32_t vm, bo, uptr, gate1, gate2, s1, s2;
	int test_fd, tl, err;
	char *mem;

	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	tl = gate_timeline();
	vm = hmmgpu_vm_create(test_fd, mode);
	bo = hmmgpu_gem_create(test_fd, page);
	hmmgpu_vm_map(test_fd, vm, bo, 0, BO_VA, page, 0);
	mem = map_anon(size);
	memset(mem, 0x5a, size);
	uptr = hmmgpu_userptr_create(test_fd, mem, size, 0);
	hmmgpu_vm_map(test_fd, vm, uptr, 0, USERPTR_VA, size, 0);
	/* Mirrored: entries for all of it. */
	hmmgpu_cmd_checksum(&cmd, BO_VA, USERPTR_VA, size);
	igt_assert_eq(hmmgpu_exec_job(test_fd, vm, &cmd, 1, 0), 0);

	/* The VM's last job, held back. */
	gate1 = gate_syncobj(test_fd, tl, 1);
	gate2 = gate_syncobj(test_fd, tl, 2);
	s1 = syncobj_create(test_fd);
	s2 = syncobj_create(test_fd);
	hmmgpu_cmd_copy(&cmd, BO_VA, USERPTR_VA, 8);
	igt_assert_eq(exec_gated(test_fd, vm, &cmd, 1, gate1, s1), 0);

	/*
	 * Both threads made first: making one takes the mmap lock, which the
	 * munmap holds while it waits.
	 */
	inval.ptr = mem;
	op_prepare(&inval);
	unbind.fd = test_fd;
	unbind.vm = vm;
	unbind.va = USERPTR_VA + page;
	unbind.size = 2 * page;
	unbind.in = gate2;
	unbind.out = s2;
	op_prepare(&unbind);

	/* The munmap's invalidation waits for the job. */
	dontneed_until_waiting(&inval, test_fd, vm);

	/* The fenced unmap of the middle pages, held back until the second gate. */
	op_go(&unbind);
	if (!op_wait_done(&unbind, LINGER_S))
		igt_assert_f(op_wait_asleep(&unbind, STEP_WAIT_S),
			     "the fenced unmap neither returned nor waited\n");

	/* The job runs, the invalidation ends, the munmap returns. */
	gate_open(tl);
	igt_assert_eq(job_error(test_fd, s1), 0);
	igt_assert_f(op_wait_done(&inval, JOB_WAIT_NS / 1e9), "munmap did not return\n");
	igt_assert_f(op_wait_done(&unbind, JOB_WAIT_NS / 1e9), "the fenced unmap did not return\n");
	op_join(&inval);
	op_join(&unbind);
	igt_assert_eq(inval.err, 0);
	igt_assert_eq(unbind.err, 0);

	/* Before the unmap's turn: the pieces' memory is gone from the CPU. */
	hmmgpu_cmd_copy(&cmd, BO_VA, USERPTR_VA, 8);
	err = hmmgpu_exec_job(test_fd, vm, &cmd, 1, 0);
	igt_assert_f(err == -EFAULT, "a job reading a piece of a mapping the CPU unmapped "
		     "ended with %d, not -EFAULT\n", err);
	hmmgpu_cmd_copy(&cmd, BO_VA, USERPTR_VA + 3 * page, 8);
	err = hmmgpu_exec_job(test_fd, vm, &cmd, 1, 0);
	igt_assert_f(err == -EFAULT, "a job reading the other piece ended with %d\n", err);

	gate_open(tl);
	igt_assert_eq(job_error(test_fd, s2), 0);
	drmSyncobjDestroy(test_fd, s1);
	drmSyncobjDestroy(test_fd, s2);
	drmSyncobjDestroy(test_fd, gate1);
	drmSyncobjDestroy(test_fd, gate2);
	gate_timeline_close(tl);
	hmmgpu_vm_destroy(test_fd, vm);
	gem_close(test_fd, uptr);
	gem_close(test_fd, bo);
	drm_close_driver(test_fd);
}

/*
 * user-fence-write-during-invalidation (prefault, pinned): job A writes a
 * GEM object and has a user fence in a page registered with userfaultfd;
 * job B, queued behind it, reads a userptr, so that its invalidations wait
 * for B. The kernel's write of A's fence faults and waits for the test,
 * which meanwhile mprotects the userptr from another thread: mprotect holds
 * the mmap lock for writing while its invalidation waits for B. Then the
 * test serves the fault, and the write, retried, needs the mmap lock.
 *
 * Had A's worker been writing the fence itself, B (behind it on the same
 * queue) could not run, the invalidation would wait for B forever, and the
 * write for the mmap lock: mprotect never returns. The fuzzer met this with
 * the fence's page merely being mprotected. The fences are written off the
 * jobs' queue: B runs, mprotect returns, and A's fence is written.
 */
#define MARK_FENCE_JOB	0x0e417a5c0000d021ull

static void test_user_fence_write_during_invalidation(uint32_t mode)
{
	struct op_thread o = { .kind = OP_MPROTECT, .prot = PROT_READ, .len = SZ_64K };
	struct drm_hmmgpu_sync sync;
	struct drm_hmmgpu_cmd cmd[2];
	struct hmmgpu_user_fence *uf;
	volatile uint64_t *res;
	uint32_t vm, bo, uptr, out;
	int test_fd, uffd;
	uint64_t addr;
	char *mem, *zeroes;
	bool asleep;

	require_uffd();
	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	mem = map_anon(SZ_64K);
	memset(mem, 1, SZ_64K);
	/* The fence, in a page of its own the kernel's write faults on. */
	uf = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	igt_assert(uf != MAP_FAILED);
	uffd = uffd_register_missing(uf, page);

	vm = hmmgpu_vm_create(test_fd, mode);
	bo = hmmgpu_gem_create(test_fd, page);
	hmmgpu_vm_map(test_fd, vm, bo, 0, BO_VA, page, 0);
	uptr = hmmgpu_userptr_create(test_fd, mem, SZ_64K, 0);
	hmmgpu_vm_map(test_fd, vm, uptr, 0, USERPTR_VA, SZ_64K, 0);
	out = syncobj_create(test_fd);

	hmmgpu_cmd_write64(&cmd[0], BO_VA, MARK_FENCE_JOB);
	sync = hmmgpu_sync_user_fence(&uf->value, 1, NULL);
	hmmgpu_exec(test_fd, &(struct drm_hmmgpu_exec){ .vm_id = vm,
			.cmds = to_user_pointer(cmd), .cmd_count = 1,
			.syncs = to_user_pointer(&sync), .num_syncs = 1 });
	hmmgpu_cmd_checksum(&cmd[0], BO_VA + 8, USERPTR_VA, SZ_64K);
	submit(test_fd, vm, cmd, 1, 0, out);

	/* A's fence is being written: the write waits for the test. */
	addr = uffd_next_fault(uffd);
	igt_assert_f(addr == to_user_pointer(uf), "no fault on the user fence's page\n");

	/* mprotect of the userptr: its invalidation waits for B (unless B is done). */
	o.ptr = mem;
	op_prepare(&o);
	op_go(&o);
	asleep = op_wait_asleep(&o, STEP_WAIT_S);
	igt_info("%s: mprotect %s\n", hmmgpu_vm_mode_name(mode),
		 asleep ? "waited for the job behind the fence's write" : "returned at once");

	/* Served (with zeroes), the write is retried, and needs the mmap lock. */
	zeroes = calloc(1, page);
	igt_assert(zeroes);
	uffd_serve(uffd, addr, zeroes);
	free(zeroes);
	igt_assert_f(op_wait_done(&o, JOB_WAIT_NS / 1e9),
		     "mprotect did not return: its invalidation waits for the job queued "
		     "behind the one whose user fence is being written\n");
	op_join(&o);
	igt_assert_eq(o.err, 0);
	igt_assert_eq(job_error(test_fd, out), 0);
	igt_assert_eq(__hmmgpu_wait_user_fence(test_fd, &uf->value, 1, ~0ull,
					       DRM_HMMGPU_WAIT_EQ, JOB_WAIT_NS), 0);

	res = hmmgpu_gem_mmap(test_fd, bo, page, PROT_READ);
	igt_assert_eq_u64(res[0], MARK_FENCE_JOB);
	igt_assert_eq_u64(res[1], cpu_checksum(mem, SZ_64K));
	igt_assert_eq(munmap((void *)res, page), 0);

	drmSyncobjDestroy(test_fd, out);
	hmmgpu_vm_destroy(test_fd, vm);
	gem_close(test_fd, uptr);
	gem_close(test_fd, bo);
	close(uffd);
	igt_assert_eq(munmap(uf, page), 0);
	igt_assert_eq(munmap(mem, SZ_64K), 0);
	drm_close_driver(test_fd);
}

/*
 * user-fence-order (every mode): the user fences of a VM's jobs are written in
 * the order the jobs end, so a value that grows from job to job at one
 * address never goes back. Job 1's write waits for the test (userfaultfd),
 * jobs 2..ORDER_JOBS, with the values 2..ORDER_JOBS at the same address, end
 * meanwhile, and a last one writes a mark at a second address. Served, the
 * writes queued behind job 1's go in one batch: job 1's, 2, ..., ORDER_JOBS,
 * then the mark. Once the mark is seen, one more job's fence is written by a
 * later batch, so every write of the first batch is done: the value must
 * read ORDER_JOBS. Written newest first, it would read 2.
 */
#define ORDER_JOBS	16

static void test_user_fence_order(uint32_t mode)
{
	struct drm_hmmgpu_vm_stats stats;
	struct drm_hmmgpu_sync sync;
	struct drm_hmmgpu_cmd cmd;
	struct hmmgpu_user_fence *uf;
	volatile uint64_t *mark;
	uint32_t vm, bo;
	int test_fd, uffd;
	uint64_t addr;
	char *zeroes;

	require_uffd();
	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	uf = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	igt_assert(uf != MAP_FAILED);
	uffd = uffd_register_missing(uf, page);
	mark = (volatile uint64_t *)map_anon(page);
	mark[0] = mark[1] = 0;

	vm = hmmgpu_vm_create(test_fd, mode);
	bo = hmmgpu_gem_create(test_fd, page);
	hmmgpu_vm_map(test_fd, vm, bo, 0, BO_VA, page, 0);

	/* Job 1: its fence's write faults and waits for the test. */
	hmmgpu_cmd_write64(&cmd, BO_VA, 1);
	sync = hmmgpu_sync_user_fence(&uf->value, 1, NULL);
	hmmgpu_exec(test_fd, &(struct drm_hmmgpu_exec){ .vm_id = vm,
			.cmds = to_user_pointer(&cmd), .cmd_count = 1,
			.syncs = to_user_pointer(&sync), .num_syncs = 1 });
	addr = uffd_next_fault(uffd);
	igt_assert_f(addr == to_user_pointer(uf), "no fault on the user fence's page\n");

	/* Jobs 2..ORDER_JOBS at the same address, then the mark, then one without fences. */
	for (uint64_t i = 2; i <= ORDER_JOBS + 2; i++) {
		struct drm_hmmgpu_exec exec = { .vm_id = vm, .cmds = to_user_pointer(&cmd),
						.cmd_count = 1 };

		hmmgpu_cmd_write64(&cmd, BO_VA, i);
		if (i <= ORDER_JOBS)
			sync = hmmgpu_sync_user_fence(&uf->value, i, NULL);
		else
			sync = hmmgpu_sync_user_fence(&mark[0], 1, NULL);
		if (i <= ORDER_JOBS + 1) {
			exec.syncs = to_user_pointer(&sync);
			exec.num_syncs = 1;
		}
		hmmgpu_exec(test_fd, &exec);
	}
	/*
	 * Jobs run one at a time: once the last has ended, every earlier one has
	 * queued its writes (bounded by the subtest's limit).
	 */
	for (;;) {
		hmmgpu_vm_stats(test_fd, vm, &stats);
		igt_assert_eq_u64(stats.jobs_failed, 0);
		if (stats.jobs_done == ORDER_JOBS + 2)
			break;
		usleep(1000);
	}
	igt_assert_eq_u64(mark[0], 0);

	zeroes = calloc(1, page);
	igt_assert(zeroes);
	uffd_serve(uffd, addr, zeroes);
	free(zeroes);
	igt_assert_eq(__hmmgpu_wait_user_fence(test_fd, &mark[0], 1, ~0ull,
					       DRM_HMMGPU_WAIT_EQ, JOB_WAIT_NS), 0);

	/* A write queued now is written after the whole batch the mark was in. */
	hmmgpu_cmd_write64(&cmd, BO_VA, 0);
	sync = hmmgpu_sync_user_fence(&mark[1], 1, NULL);
	hmmgpu_exec(test_fd, &(struct drm_hmmgpu_exec){ .vm_id = vm,
			.cmds = to_user_pointer(&cmd), .cmd_count = 1,
			.syncs = to_user_pointer(&sync), .num_syncs = 1 });
	igt_assert_eq(__hmmgpu_wait_user_fence(test_fd, &mark[1], 1, ~0ull,
					       DRM_HMMGPU_WAIT_EQ, JOB_WAIT_NS), 0);
	igt_assert_f(uf->value == ORDER_JOBS,
		     "the user fence reads %" PRIu64 " after jobs wrote 1..%d in turn\n",
		     (uint64_t)uf->value, ORDER_JOBS);

	hmmgpu_vm_destroy(test_fd, vm);
	gem_close(test_fd, bo);
	close(uffd);
	igt_assert_eq(munmap((void *)mark, page), 0);
	igt_assert_eq(munmap(uf, page), 0);
	drm_close_driver(test_fd);
}

/*
 * publish-during-invalidation (prefault, pinned): mapping Y is mirrored;
 * mapping X is invalid (its memory was unmapped, then mapped again from a
 * userfaultfd). A job J1 on a GEM object waits for gate 1. Then:
 *
 * 1. a submission of J2, which writes Y only, mirrors X and waits in X's
 *    fault for the test's userfaultfd handling;
 * 2. MADV_DONTNEED of Y: its invalidation marks Y and, J1 being the VM's last
 *    job and unsignalled, sleeps in the callback until J1 is done;
 * 3. the test serves X's fault: the submission can go on (or wait for the
 *    invalidation, if the driver makes it);
 * 4. gate 1 opens: J1 runs, the invalidation clears Y and returns;
 * 5. gate 2 opens: J2 runs.
 *
 * J2 was submitted while Y was being invalidated: it may not be published on
 * Y's entries, which the invalidation clears under it, unless the
 * invalidation waits for J2 as well. Today's driver publishes J2 in step 3,
 * the invalidation clears Y in step 4, and J2 ends with -EFAULT in step 5.
 */
static void test_publish_during_invalidation(uint32_t mode)
{
	const uint64_t ysize = SZ_64K;
	struct drm_hmmgpu_cmd cmds[2];
	struct op_thread sub = {}, inval;
	uint32_t vm, bo, uy, ux, gate1, gate2, s1, s2;
	volatile uint64_t *res;
	uint64_t fault_at;
	uint32_t *src;
	int test_fd, tl, uffd;
	int32_t err1, err2;
	bool sub_done;
	char *y, *x;

	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	tl = gate_timeline();
	vm = hmmgpu_vm_create(test_fd, mode);
	bo = hmmgpu_gem_create(test_fd, page);
	res = (volatile uint64_t *)hmmgpu_gem_mmap(test_fd, bo, page, PROT_READ | PROT_WRITE);
	hmmgpu_vm_map(test_fd, vm, bo, 0, BO_VA, page, 0);
	src = (uint32_t *)map_anon(page);
	for (long i = 0; i < page / 4; i++)
		src[i] = 0x33333333;

	y = map_anon(ysize);
	memset(y, 0x11, ysize);
	x = map_anon(page);
	memset(x, 0x22, page);
	uy = hmmgpu_userptr_create(test_fd, y, ysize, 0);
	ux = hmmgpu_userptr_create(test_fd, x, page, 0);
	hmmgpu_vm_map(test_fd, vm, uy, 0, USERPTR_VA, ysize, 0);
	hmmgpu_vm_map(test_fd, vm, ux, 0, X_VA, page, 0);

	/* Both mirrored and used once. */
	hmmgpu_cmd_write64(&cmds[0], USERPTR_VA, 1);
	hmmgpu_cmd_copy(&cmds[1], BO_VA, X_VA, 64);
	igt_assert_eq(hmmgpu_exec_job(test_fd, vm, cmds, 2, 0), 0);
	igt_assert_eq_u64(*(volatile uint64_t *)y, 1);

	/* X goes: submissions cannot mirror it and leave it to mirror again. */
	igt_assert_eq(munmap(x, page), 0);

	/* J1, the VM's last job, held back. */
	gate1 = gate_syncobj(test_fd, tl, 1);
	gate2 = gate_syncobj(test_fd, tl, 2);
	s1 = syncobj_create(test_fd);
	s2 = syncobj_create(test_fd);
	hmmgpu_cmd_write64(&cmds[0], BO_VA + 8, MARK_GATED);
	igt_assert_eq(exec_gated(test_fd, vm, cmds, 1, gate1, s1), 0);

	/* X back, its page left to the test's userfaultfd. */
	igt_assert(mmap(x, page, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == x);
	uffd = uffd_register_missing(x, page);

	/* 1. */
	sub.kind = OP_EXEC;
	sub.fd = test_fd;
	sub.vm = vm;
	hmmgpu_cmd_write64(&sub.cmd, USERPTR_VA + 8, MARK_GATED);
	sub.in = gate2;
	sub.out = s2;
	op_prepare(&sub);
	dontneed_prepare(&inval, y, ysize);
	op_go(&sub);
	fault_at = uffd_next_fault(uffd);
	igt_assert_f(fault_at == to_user_pointer(x), "the submission did not fault X in "
		     "(fault message for %#" PRIx64 ", X at %p; it returned: %s, %d)\n", fault_at,
		     x, atomic_load(&sub.done) ? "yes" : "no", sub.err);

	/* 2. */
	dontneed_until_waiting(&inval, test_fd, vm);

	/* 3. */
	uffd_serve(uffd, fault_at, src);
	sub_done = op_wait_done(&sub, LINGER_S);

	/* 4. */
	gate_open(tl);
	err1 = job_error(test_fd, s1);
	igt_assert_eq(err1, 0);
	igt_assert_eq_u64(res[1], MARK_GATED);
	op_wait_done(&inval, LINGER_S);

	/* 5. */
	gate_open(tl);
	op_join(&sub);
	op_join(&inval);
	igt_assert_eq(inval.err, 0);
	igt_assert_f(sub.err == 0, "the submission of the job on Y failed: %d\n", sub.err);
	err2 = job_error(test_fd, s2);
	igt_info("%s: the submission %s while Y's invalidation waited; the job on Y ended "
		 "with %d\n", hmmgpu_vm_mode_name(mode),
		 sub_done ? "returned" : "waited", err2);
	vm_stats_info(test_fd, vm, hmmgpu_vm_mode_name(mode));
	igt_assert_f(err2 == 0, "the job that writes Y only, submitted while an invalidation "
		     "of Y waited for the job before it, ended with %d: it was published on "
		     "entries the invalidation then cleared\n", err2);

	/* Everything works afterwards. */
	hmmgpu_cmd_write64(&cmds[0], USERPTR_VA + 16, 2);
	hmmgpu_cmd_copy(&cmds[1], BO_VA, X_VA, 64);
	igt_assert_eq(hmmgpu_exec_job(test_fd, vm, cmds, 2, 0), 0);
	igt_assert_eq_u64(((volatile uint64_t *)y)[2], 2);
	igt_assert_eq_u64(res[0], 0x3333333333333333ull);

	close(uffd);
	drmSyncobjDestroy(test_fd, gate1);
	drmSyncobjDestroy(test_fd, gate2);
	drmSyncobjDestroy(test_fd, s1);
	drmSyncobjDestroy(test_fd, s2);
	gate_timeline_close(tl);
	igt_assert_eq(munmap(src, page), 0);
	hmmgpu_vm_destroy(test_fd, vm);
	gem_close(test_fd, uy);
	gem_close(test_fd, ux);
	igt_assert_eq(munmap((void *)res, page), 0);
	gem_close(test_fd, bo);
	drm_close_driver(test_fd);
	igt_assert_eq(munmap(y, ysize), 0);
	igt_assert_eq(munmap(x, page), 0);
}

/*
 * publish-after-many-rounds (prefault): a submission that invalidations
 * overtake round after round still does not publish a job on entries an
 * invalidation cleared after it took its list. The order is forced with a
 * userfaultfd:
 *
 * - the test's VM mirrors W_0 (invalid, to be mirrored again), W_1 to W_16
 *   and Y2 (mirrored); the W are userfaultfd pages the test serves;
 * - a submission S of a job that writes Y2 mirrors W_0 and waits in its
 *   fault; meanwhile the test discards W_1, which has entries (MADV_DONTNEED:
 *   its page is missing again), then serves W_0's fault: S's snapshot goes
 *   through, but a mirror was invalidated since S took its list, so S tries
 *   again, mirrors W_1, and waits in its fault; and so on up to W_16;
 * - while S waits in W_16's fault, the test discards Y2 instead.
 *
 * However many rounds it took, S must not publish its job on Y2's cleared
 * entries: it must mirror Y2 again first, and the job succeed. A driver
 * that stops looking at other mirrors after a number of rounds, and
 * publishes, ends the job with -EFAULT, on memory that never stopped being
 * mapped.
 */
#define MR_ROUNDS	17
#define MR_VA(r)	(USERPTR_VA + SZ_2M * ((r) + 2))

static void test_publish_after_many_rounds(uint32_t mode)
{
	uint32_t uw[MR_ROUNDS], vm, uy2, s_sub;
	struct op_thread sub = {};
	struct drm_hmmgpu_cmd cmd;
	unsigned int served = 0;
	int test_fd, uffd;
	uint32_t *src;
	int32_t error;
	char *w, *y2;

	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	src = (uint32_t *)map_anon(page);
	memset(src, 0x55, page);
	w = map_anon(MR_ROUNDS * page);
	igt_assert_eq(madvise(w, MR_ROUNDS * page, MADV_NOHUGEPAGE), 0);
	memset(w, 0x11, MR_ROUNDS * page);
	y2 = map_anon(page);
	memset(y2, 0x22, page);

	vm = hmmgpu_vm_create(test_fd, mode);
	for (unsigned int r = 0; r < MR_ROUNDS; r++) {
		uw[r] = hmmgpu_userptr_create(test_fd, w + r * page, page, 0);
		hmmgpu_vm_map(test_fd, vm, uw[r], 0, MR_VA(r), page, 0);
	}
	uy2 = hmmgpu_userptr_create(test_fd, y2, page, 0);
	hmmgpu_vm_map(test_fd, vm, uy2, 0, X_VA, page, 0);
	/* Everything mirrored; then W_0 to mirror again, its page left to the test. */
	hmmgpu_cmd_write64(&cmd, X_VA, 1);
	igt_assert_eq(hmmgpu_exec_job(test_fd, vm, &cmd, 1, 0), 0);
	igt_assert_eq(madvise(w, MR_ROUNDS * page, MADV_DONTNEED), 0);
	/* Only W_0 was discarded while mirrored... */
	for (unsigned int r = 1; r < MR_ROUNDS; r++)
		w[r * page] = 0x11;
	hmmgpu_cmd_write64(&cmd, X_VA, 2);
	igt_assert_eq(hmmgpu_exec_job(test_fd, vm, &cmd, 1, 0), 0);
	igt_assert_eq(madvise(w, page, MADV_DONTNEED), 0);
	/* ...and now none of the W has a page but the test's userfaultfd serves it. */
	uffd = uffd_register_missing(w, MR_ROUNDS * page);
	s_sub = syncobj_create(test_fd);

	sub.kind = OP_EXEC;
	sub.fd = test_fd;
	sub.vm = vm;
	hmmgpu_cmd_write64(&sub.cmd, X_VA + 8, 0x5eed);
	sub.out = s_sub;
	op_prepare(&sub);
	op_go(&sub);

	for (unsigned int r = 0; r < MR_ROUNDS; r++) {
		/* Once S published, no fault comes. */
		uint64_t fault_at = __uffd_next_fault(uffd, &sub);

		if (fault_at != to_user_pointer(w + r * page))
			break;
		/* Another mirror with entries invalidated while S mirrors W_r. */
		if (r + 1 < MR_ROUNDS)
			igt_assert_eq(madvise(w + (r + 1) * page, page, MADV_DONTNEED), 0);
		else
			igt_assert_eq(madvise(y2, page, MADV_DONTNEED), 0);
		uffd_serve(uffd, fault_at, src);
		served++;
	}
	igt_assert_f(op_wait_done(&sub, STEP_WAIT_S), "the submission did not end\n");
	op_join(&sub);
	igt_assert_f(sub.err == 0, "the submission failed: %d\n", sub.err);
	error = job_error(test_fd, s_sub);
	igt_info("the submission was overtaken in %u rounds in a row; its job on Y2 ended with "
		 "%d\n", served, error);
	vm_stats_info(test_fd, vm, hmmgpu_vm_mode_name(mode));
	igt_assert_f(error == 0, "the job on Y2, which stayed mapped, ended with %d: it was "
		     "published on entries an invalidation cleared after the submission took "
		     "its list, in its round %u\n", error, served);
	igt_assert_eq_u64(((volatile uint64_t *)y2)[1], 0x5eed);

	close(uffd);
	drmSyncobjDestroy(test_fd, s_sub);
	hmmgpu_vm_destroy(test_fd, vm);
	for (unsigned int r = 0; r < MR_ROUNDS; r++)
		gem_close(test_fd, uw[r]);
	gem_close(test_fd, uy2);
	drm_close_driver(test_fd);
	igt_assert_eq(munmap(w, MR_ROUNDS * page), 0);
	igt_assert_eq(munmap(y2, page), 0);
	igt_assert_eq(munmap(src, page), 0);
}

/*
 * rebind-during-invalidation (prefault, pinned): userptr mapping Y at
 * USERPTR_VA is mirrored; a job J1 on a GEM object waits for gate 1.
 *
 * 1. MADV_DONTNEED of Y: its invalidation sleeps in the callback until J1 is
 *    done;
 * 2. another thread unbinds Y (removing its notifier waits for the
 *    invalidation to end);
 * 3. the test binds a GEM object at USERPTR_VA, as soon as the address is
 *    free, and submits J3, which writes it, after gate 2;
 * 4. gate 1 opens: J1 runs and the invalidation ends;
 * 5. gate 2 opens: J3 runs.
 *
 * The invalidation belongs to the removed mapping Y: when it goes on, it may
 * not clear what is mapped at the address now. Today's driver does not look
 * again whether Y was removed, clears the object's entries, and J3 (and
 * every later job on the object) ends with -EFAULT.
 */
static void test_rebind_during_invalidation(uint32_t mode)
{
	const uint64_t ysize = SZ_64K;
	struct op_thread inval, unbind = {}, sub = {};
	uint32_t vm, bo, bo2, uy, gate1, gate2, s1, s3;
	volatile uint64_t *res, *obj;
	struct drm_hmmgpu_cmd cmd;
	int test_fd, tl, err;
	int32_t err3;
	double end;
	char *y;

	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	tl = gate_timeline();
	vm = hmmgpu_vm_create(test_fd, mode);
	bo = hmmgpu_gem_create(test_fd, page);
	res = (volatile uint64_t *)hmmgpu_gem_mmap(test_fd, bo, page, PROT_READ | PROT_WRITE);
	hmmgpu_vm_map(test_fd, vm, bo, 0, BO_VA, page, 0);
	bo2 = hmmgpu_gem_create(test_fd, ysize);
	obj = (volatile uint64_t *)hmmgpu_gem_mmap(test_fd, bo2, ysize, PROT_READ | PROT_WRITE);

	y = map_anon(ysize);
	memset(y, 0x11, ysize);
	uy = hmmgpu_userptr_create(test_fd, y, ysize, 0);
	hmmgpu_vm_map(test_fd, vm, uy, 0, USERPTR_VA, ysize, 0);
	hmmgpu_cmd_write64(&cmd, USERPTR_VA, 1);
	igt_assert_eq(hmmgpu_exec_job(test_fd, vm, &cmd, 1, 0), 0);

	gate1 = gate_syncobj(test_fd, tl, 1);
	gate2 = gate_syncobj(test_fd, tl, 2);
	s1 = syncobj_create(test_fd);
	s3 = syncobj_create(test_fd);
	hmmgpu_cmd_write64(&cmd, BO_VA + 8, MARK_GATED);
	igt_assert_eq(exec_gated(test_fd, vm, &cmd, 1, gate1, s1), 0);

	dontneed_prepare(&inval, y, ysize);
	unbind.kind = OP_UNMAP;
	unbind.fd = test_fd;
	unbind.vm = vm;
	unbind.va = USERPTR_VA;
	unbind.size = ysize;
	op_prepare(&unbind);
	sub.kind = OP_EXEC;
	sub.fd = test_fd;
	sub.vm = vm;
	hmmgpu_cmd_write64(&sub.cmd, USERPTR_VA + 8, MARK_GATED);
	sub.in = gate2;
	sub.out = s3;
	op_prepare(&sub);

	/* 1. */
	dontneed_until_waiting(&inval, test_fd, vm);

	/* 2. */
	op_go(&unbind);

	/* 3. */
	end = now_s() + STEP_WAIT_S;
	do {
		err = __hmmgpu_vm_bind(test_fd, vm, DRM_HMMGPU_VM_BIND_MAP, bo2, 0, USERPTR_VA,
				       ysize, 0);
		if (err == -EBUSY)
			usleep(1000);
	} while (err == -EBUSY && now_s() < end);
	igt_assert_f(err == 0, "bind of an object where Y was: %d\n", err);
	op_go(&sub);
	op_wait_done(&sub, LINGER_S);

	/* 4. */
	gate_open(tl);
	igt_assert_eq(job_error(test_fd, s1), 0);
	op_wait_done(&inval, LINGER_S);
	op_wait_done(&unbind, LINGER_S);

	/* 5. */
	gate_open(tl);
	op_join(&sub);
	op_join(&inval);
	op_join(&unbind);
	igt_assert_eq(inval.err, 0);
	igt_assert_eq(unbind.err, 0);
	igt_assert_f(sub.err == 0, "the submission of the job on the object failed: %d\n",
		     sub.err);
	err3 = job_error(test_fd, s3);
	igt_info("%s: the job on the object bound where Y was, while Y's invalidation waited, "
		 "ended with %d\n", hmmgpu_vm_mode_name(mode), err3);
	igt_assert_f(err3 == 0, "the job on an object bound where userptr Y was ended with %d: "
		     "Y's invalidation, which waited while Y was unbound, cleared the object's "
		     "entries\n", err3);
	igt_assert_eq_u64(obj[1], MARK_GATED);

	/* The object stays mapped. */
	hmmgpu_cmd_write64(&cmd, USERPTR_VA + 16, 2);
	err = hmmgpu_exec_job(test_fd, vm, &cmd, 1, 0);
	igt_assert_f(err == 0, "a later job on the object ended with %d\n", err);
	igt_assert_eq_u64(obj[2], 2);

	drmSyncobjDestroy(test_fd, gate1);
	drmSyncobjDestroy(test_fd, gate2);
	drmSyncobjDestroy(test_fd, s1);
	drmSyncobjDestroy(test_fd, s3);
	gate_timeline_close(tl);
	hmmgpu_vm_destroy(test_fd, vm);
	gem_close(test_fd, uy);
	igt_assert_eq(munmap((void *)res, page), 0);
	igt_assert_eq(munmap((void *)obj, ysize), 0);
	gem_close(test_fd, bo);
	gem_close(test_fd, bo2);
	drm_close_driver(test_fd);
	igt_assert_eq(munmap(y, ysize), 0);
}

/*
 * exit-with-blocked-job (prefault, pinned): a child of the test, sharing its
 * file, makes a VM of its own memory and submits a job that waits for a gate
 * that never opens, with the longest time limit, then exits. Tearing its
 * address space down invalidates the job's memory, which must not wait for
 * the job's time limit: the VM's jobs are cancelled when the address space
 * goes (-ECANCELED). Today's driver makes the child's exit wait for the job
 * to time out (60 s).
 *
 * A child that has not exited after EXIT_WAIT_S counts as stuck in exit:
 * the test then opens the gate, which lets the job and the exit end, and
 * fails.
 */
#define EXIT_WAIT_S	5.0

static void __noreturn blocked_job_child(int test_fd, uint32_t mode, uint32_t gate, int pipe_w)
{
	struct drm_hmmgpu_cmd cmd;
	uint32_t vm = 0, uptr = 0, out = 0;
	char *mem;
	int err;

	mem = mmap(NULL, SZ_64K, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		_exit(10);
	memset(mem, 1, SZ_64K);
	if (__hmmgpu_vm_create(test_fd, mode, &vm))
		_exit(11);
	if (__hmmgpu_userptr_create(test_fd, to_user_pointer(mem), SZ_64K, 0, &uptr))
		_exit(12);
	if (__hmmgpu_vm_bind(test_fd, vm, DRM_HMMGPU_VM_BIND_MAP, uptr, 0, USERPTR_VA, SZ_64K, 0))
		_exit(13);
	if (drmSyncobjCreate(test_fd, 0, &out))
		_exit(14);
	hmmgpu_cmd_write64(&cmd, USERPTR_VA, MARK_GATED);
	err = exec_gated(test_fd, vm, &cmd, 1, gate, out);
	if (err)
		_exit(15);
	if (write(pipe_w, &out, sizeof(out)) != sizeof(out))
		_exit(16);
	_exit(0);
}

static void test_exit_with_blocked_job(uint32_t mode)
{
	int test_fd, tl, p[2], status = 0;
	struct pollfd pfd;
	uint32_t gate, out = 0;
	bool exited = false;
	double start, end;
	int32_t error;
	pid_t pid;

	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	tl = gate_timeline();
	gate = gate_syncobj(test_fd, tl, 1);
	igt_assert_eq(pipe2(p, O_CLOEXEC), 0);

	fflush(NULL);
	pid = fork();
	igt_assert(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		blocked_job_child(test_fd, mode, gate, p[1]);
	}
	close(p[1]);

	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	igt_assert_f(poll(&pfd, 1, STEP_WAIT_S * 1000) == 1, "the child sent nothing\n");
	igt_assert_eq(read(p[0], &out, sizeof(out)), (ssize_t)sizeof(out));
	close(p[0]);

	/* The job cannot have run: the gate is shut. */
	start = now_s();
	end = start + EXIT_WAIT_S;
	while (!exited && now_s() < end) {
		pid_t ret = waitpid(pid, &status, WNOHANG);

		igt_assert(ret >= 0);
		exited = ret == pid;
		if (!exited)
			usleep(10 * 1000);
	}
	if (!exited) {
		/* Let the job run, so that the exit ends. */
		gate_open(tl);
		igt_assert_eq(waitpid(pid, &status, 0), pid);
	}
	igt_assert_f(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "the child ended with status %#x\n", status);

	error = job_error(test_fd, out);
	igt_info("%s: the child's exit %s its job (%.3f s); the job ended with %d\n",
		 hmmgpu_vm_mode_name(mode), exited ? "did not wait for" : "still waited for",
		 now_s() - start, error);
	igt_assert_f(exited, "the child's exit waited for its job, held back by a gate that "
		     "never opens, instead of cancelling it\n");
	igt_assert_f(error == -ECANCELED, "the job of a VM whose process exited ended with %d, "
		     "not -ECANCELED\n", error);

	if (exited)
		gate_open(tl);
	drmSyncobjDestroy(test_fd, gate);
	drmSyncobjDestroy(test_fd, out);
	gate_timeline_close(tl);
	drm_close_driver(test_fd);
}

/*
 * exit-during-user-fence: a job's user fence is written by the job's worker,
 * which borrows the address space of the process that submitted the job. If
 * that process exits meanwhile, the worker holds the address space's last
 * user, and dropping it tears the address space down: the release of the
 * VM's mirrors, which in prefault and pinned modes waits for the VM's jobs,
 * among them the next one, queued behind the worker. The teardown must not
 * run in the worker.
 *
 * A child of the test, sharing its file, makes a VM with a GEM object and a
 * userptr of its memory, and submits two jobs: the first writes the object,
 * with a user fence in a page registered with userfaultfd, whose handler
 * (the test, which received the userfaultfd) holds the kernel's write; the
 * second reads the userptr, so that in prefault and pinned modes the
 * release of its mirror waits for it. With the write held, the child exits;
 * once it is reaped, the test serves the fault. Both jobs must end (the
 * second done, or -ECANCELED or -EFAULT as the address space went), and the
 * device must still run jobs.
 */
#define MARK_UF_FIRST	0x0e417a5c0000d011ull
#define MARK_UF_SECOND	0x0e417a5c0000d012ull

struct uf_handoff {
	uint32_t vm, bo, second;
	char page_addr[24];
};

static void __noreturn user_fence_exit_child(int test_fd, uint32_t mode, int sock)
{
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct drm_hmmgpu_sync sync;
	struct drm_hmmgpu_cmd cmd;
	struct drm_hmmgpu_cmd cmds[2];
	struct uf_handoff h = {};
	char *fence_page, *mem, go;
	uint32_t uptr;
	int uffd;

	/* The fence's page: never touched here, so that the kernel's write faults. */
	fence_page = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uffd = uffd_open();
	if (fence_page == MAP_FAILED || uffd < 0)
		_exit(10);
	reg.range.start = to_user_pointer(fence_page);
	reg.range.len = page;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		_exit(11);
	mem = mmap(NULL, SZ_64K, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		_exit(12);
	memset(mem, 1, SZ_64K);
	if (__hmmgpu_userptr_create(test_fd, to_user_pointer(mem), SZ_64K, 0, &uptr) ||
	    __hmmgpu_vm_create(test_fd, mode, &h.vm) ||
	    __hmmgpu_vm_bind(test_fd, h.vm, DRM_HMMGPU_VM_BIND_MAP, uptr, 0, USERPTR_VA, SZ_64K,
			     0) ||
	    __hmmgpu_gem_create(test_fd, page, 0, &h.bo) ||
	    __hmmgpu_vm_bind(test_fd, h.vm, DRM_HMMGPU_VM_BIND_MAP, h.bo, 0, BO_VA, page, 0))
		_exit(13);
	if (mode != DRM_HMMGPU_VM_MODE_FAULT && drmSyncobjCreate(test_fd, 0, &h.second))
		_exit(14);

	hmmgpu_cmd_write64(&cmd, BO_VA, MARK_UF_FIRST);
	sync = hmmgpu_sync_user_fence((volatile uint64_t *)fence_page, 1, NULL);
	if (__hmmgpu_exec(test_fd, &(struct drm_hmmgpu_exec){
				  .vm_id = h.vm, .cmds = to_user_pointer(&cmd), .cmd_count = 1,
				  .syncs = to_user_pointer(&sync), .num_syncs = 1 }))
		_exit(15);
	hmmgpu_cmd_checksum(&cmds[0], BO_VA + 16, USERPTR_VA, SZ_64K);
	hmmgpu_cmd_write64(&cmds[1], BO_VA + 8, MARK_UF_SECOND);
	sync = hmmgpu_sync_signal(h.second);
	if (__hmmgpu_exec(test_fd, &(struct drm_hmmgpu_exec){
				  .vm_id = h.vm, .cmds = to_user_pointer(cmds), .cmd_count = 2,
				  .syncs = to_user_pointer(&sync), .num_syncs = h.second ? 1 : 0 }))
		_exit(16);

	snprintf(h.page_addr, sizeof(h.page_addr), "%p", fence_page);
	send_fd(sock, uffd, &h, sizeof(h));
	/* The test says when: once the kernel is held writing the fence. */
	if (read(sock, &go, 1) != 1)
		_exit(17);
	_exit(0);
}

static void test_exit_during_user_fence(uint32_t mode)
{
	struct drm_hmmgpu_vm_stats stats;
	struct uffdio_zeropage zero = {};
	struct drm_hmmgpu_cmd cmd;
	int test_fd, uffd, sv[2], status = 0;
	struct uf_handoff h = {};
	struct uffd_msg msg;
	struct pollfd pfd;
	volatile uint64_t *res;
	uint32_t vm, bo;
	int32_t error;
	pid_t pid;

	require_uffd();
	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	igt_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	fflush(NULL);
	pid = fork();
	igt_assert(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		user_fence_exit_child(test_fd, mode, sv[1]);
	}
	close(sv[1]);

	uffd = recv_fd(sv[0], &h, sizeof(h));
	if (uffd < 0) {
		waitpid(pid, &status, 0);
		igt_assert_f(false, "the child passed no userfaultfd (status %#x)\n", status);
	}

	/* The first job's worker, writing its user fence, faults on the page. */
	pfd = (struct pollfd){ .fd = uffd, .events = POLLIN };
	igt_assert_f(poll(&pfd, 1, STEP_WAIT_S * 1000) == 1,
		     "no fault on the user fence's page at %s\n", h.page_addr);
	igt_assert_eq(read(uffd, &msg, sizeof(msg)), (ssize_t)sizeof(msg));
	igt_assert_eq(msg.event, UFFD_EVENT_PAGEFAULT);

	/* With the write held, the child exits: the worker keeps its address space. */
	igt_assert_eq(write(sv[0], "g", 1), 1);
	igt_assert_eq(waitpid(pid, &status, 0), pid);
	igt_assert_f(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "the child ended with status %#x\n", status);
	close(sv[0]);

	/* Served: the worker writes the fence and lets the address space go. */
	zero.range.start = msg.arg.pagefault.address & ~((uint64_t)page - 1);
	zero.range.len = page;
	igt_assert_f(ioctl(uffd, UFFDIO_ZEROPAGE, &zero) == 0, "UFFDIO_ZEROPAGE: %s\n",
		     strerror(errno));

	/* The second job ends: nothing waits for it on the worker it is queued behind. */
	if (mode == DRM_HMMGPU_VM_MODE_FAULT) {
		wait_jobs_ended(test_fd, h.vm, 2, &stats);
		error = stats.jobs_failed ? -EFAULT : 0;
	} else {
		error = job_error(test_fd, h.second);
		igt_assert_f(error == 0 || error == -ECANCELED || error == -EFAULT,
			     "the job after the user fence ended with %d\n", error);
		drmSyncobjDestroy(test_fd, h.second);
	}
	res = (volatile uint64_t *)hmmgpu_gem_mmap(test_fd, h.bo, page, PROT_READ);
	igt_info("%s: the first job wrote %#" PRIx64 ", the second %#" PRIx64 " (%d)\n",
		 hmmgpu_vm_mode_name(mode), res[0], res[1], error);
	igt_assert_eq_u64(res[0], MARK_UF_FIRST);
	igt_assert_eq(res[1] == MARK_UF_SECOND, error == 0);
	igt_assert_eq(munmap((void *)res, page), 0);
	close(uffd);

	/* The device still runs jobs, on a VM of the test's own. */
	vm = hmmgpu_vm_create(test_fd, mode);
	bo = hmmgpu_gem_create(test_fd, page);
	hmmgpu_vm_map(test_fd, vm, bo, 0, BO_VA, page, 0);
	hmmgpu_cmd_write64(&cmd, BO_VA, MARK_UF_SECOND);
	igt_assert_eq(hmmgpu_exec_job(test_fd, vm, &cmd, 1, 0), 0);
	hmmgpu_vm_destroy(test_fd, vm);
	gem_close(test_fd, bo);
	hmmgpu_vm_destroy(test_fd, h.vm);
	gem_close(test_fd, h.bo);
	drm_close_driver(test_fd);
}

/*
 * pins-released-without-submit (pinned): the pins an invalidation drops are
 * released by a worker soon after, whether or not anything is submitted
 * later. The userptr is invalidated a few times (MADV_DONTNEED, mprotect
 * read-only and back) with a job in between, which pins it again, and once
 * more with nothing after: while the mapping stays bound, the pins the test
 * made come back to balance (nr_foll_pin_acquired and nr_foll_pin_released of
 * /proc/vmstat) and the VM reports no page pinned. PIN_WAIT_S bounds the
 * wait for the worker.
 */
#define PIN_WAIT_S	10.0
#define PIN_ROUNDS	4

static void invalidate_pinned(char *ptr, uint64_t size, unsigned int round)
{
	if (round % 2) {
		igt_assert_eq(mprotect(ptr, size, PROT_READ), 0);
		igt_assert_eq(mprotect(ptr, size, PROT_READ | PROT_WRITE), 0);
	} else {
		igt_assert_eq(madvise(ptr, size, MADV_DONTNEED), 0);
	}
}

static void test_pins_released_without_submit(uint32_t mode)
{
	const uint64_t size = SZ_1M, pages = size / page;
	uint64_t acquired0 = 0, released0 = 0, acquired = 0, released = 0;
	struct drm_hmmgpu_vm_stats stats;
	struct drm_hmmgpu_cmd cmds[2];
	volatile uint64_t *res;
	uint32_t vm, bo, uptr;
	bool balanced = false;
	int test_fd;
	double start;
	char *mem;

	igt_assert(hmmgpu_read_pin_counters(&acquired0, &released0));
	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	vm = hmmgpu_vm_create(test_fd, mode);
	bo = hmmgpu_gem_create(test_fd, page);
	res = (volatile uint64_t *)hmmgpu_gem_mmap(test_fd, bo, page, PROT_READ | PROT_WRITE);
	hmmgpu_vm_map(test_fd, vm, bo, 0, BO_VA, page, 0);
	mem = map_anon(size);
	igt_assert_eq(madvise(mem, size, MADV_NOHUGEPAGE), 0);
	hmmgpu_fill_pattern(mem, size, 3);
	uptr = hmmgpu_userptr_create(test_fd, mem, size, 0);
	hmmgpu_vm_map(test_fd, vm, uptr, 0, USERPTR_VA, size, 0);

	for (unsigned int round = 0; round <= PIN_ROUNDS; round++) {
		if (round)
			invalidate_pinned(mem, size, round);
		hmmgpu_cmd_fill(&cmds[0], USERPTR_VA + round * page, page, 0x600d0000 + round);
		hmmgpu_cmd_checksum(&cmds[1], BO_VA, USERPTR_VA, size);
		igt_assert_eq(hmmgpu_exec_job(test_fd, vm, cmds, 2, 0), 0);
		igt_assert_eq_u64(res[0], cpu_checksum(mem, size));
		hmmgpu_vm_stats(test_fd, vm, &stats);
		igt_assert_eq_u64(stats.pinned_pages, pages);
	}
	/* The last invalidation, with nothing submitted after it. */
	invalidate_pinned(mem, size, 0);

	start = now_s();
	do {
		igt_assert(hmmgpu_read_pin_counters(&acquired, &released));
		hmmgpu_vm_stats(test_fd, vm, &stats);
		balanced = acquired - acquired0 == released - released0 && !stats.pinned_pages;
		if (!balanced)
			usleep(20 * 1000);
	} while (!balanced && now_s() - start < PIN_WAIT_S);
	igt_info("after the last invalidation: %" PRIu64 " pins acquired, %" PRIu64 " released, "
		 "%llu pages pinned by the VM (%.3f s)\n", acquired - acquired0,
		 released - released0, (unsigned long long)stats.pinned_pages, now_s() - start);
	igt_assert_lte_u64((PIN_ROUNDS + 1) * pages, acquired - acquired0);
	igt_assert_f(stats.pinned_pages == 0, "%llu pages still pinned %.0f s after the "
		     "invalidation that dropped them, with the mapping idle\n",
		     (unsigned long long)stats.pinned_pages, PIN_WAIT_S);
	igt_assert_f(acquired - acquired0 == released - released0, "%" PRIu64 " pins acquired, "
		     "%" PRIu64 " released, %.0f s after the last invalidation, with the mapping "
		     "idle\n", acquired - acquired0, released - released0, PIN_WAIT_S);

	/* Still bound: a job pins and runs again. */
	hmmgpu_cmd_checksum(&cmds[0], BO_VA, USERPTR_VA, size);
	igt_assert_eq(hmmgpu_exec_job(test_fd, vm, cmds, 1, 0), 0);
	igt_assert_eq_u64(res[0], cpu_checksum(mem, size));

	hmmgpu_vm_destroy(test_fd, vm);
	gem_close(test_fd, uptr);
	igt_assert_eq(munmap((void *)res, page), 0);
	gem_close(test_fd, bo);
	drm_close_driver(test_fd);
	igt_assert_eq(munmap(mem, size), 0);
}

/*
 * pins-released-second-invalidation (pinned): the pins of a second
 * invalidation that comes while the first one's are still waiting for the
 * worker are released too. The order is forced, with a gate and a
 * userfaultfd page:
 *
 * 1. MADV_FREE of Y (its pages stay) waits in the callback for job J1,
 *    held back by a gate, with Y marked and its pins P1 still in place;
 * 2. a submission finds Y to mirror again, pins it (P2, the same pages) and
 *    waits for the invalidation to end, holding the VM's bindings;
 * 3. a bind of userptr Z, whose page a userfaultfd holds, waits behind it;
 * 4. the gate opens: the invalidation takes P1 away for the worker and ends,
 *    the submission installs P2 and returns, the bind takes the bindings and
 *    waits in Z's fault, so the worker, which wants them too, waits;
 * 5. MADV_DONTNEED of Y, with nothing in flight: its pins P2 go too;
 * 6. the test serves Z's fault: the bind ends, the worker runs; then Z is
 *    unbound.
 *
 * With Y still bound and idle, every pin must come back (PIN_WAIT_S bounds
 * the wait). Today's driver keeps a single slot of pins to release per
 * mirror, and leaves P2 pinned when the slot is taken, until a later
 * submission.
 */
static void test_pins_released_second_invalidation(uint32_t mode)
{
	const uint64_t ysize = SZ_64K, pages = ysize / page;
	uint64_t acquired0 = 0, released0 = 0, acquired = 0, released = 0;
	struct op_thread inval, sub = {}, bind = {};
	struct drm_hmmgpu_vm_stats stats;
	uint32_t vm, bo, uy, uz, gate1, s1, s2;
	uint64_t fault_at, pinned_before_second;
	struct drm_hmmgpu_cmd cmd;
	int test_fd, tl, uffd;
	bool balanced = false;
	uint32_t *src;
	double start;
	char *y, *z;

	igt_assert(hmmgpu_read_pin_counters(&acquired0, &released0));
	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	tl = gate_timeline();
	vm = hmmgpu_vm_create(test_fd, mode);
	bo = hmmgpu_gem_create(test_fd, page);
	hmmgpu_vm_map(test_fd, vm, bo, 0, BO_VA, page, 0);
	src = (uint32_t *)map_anon(page);
	memset(src, 0x44, page);

	y = map_anon(ysize);
	igt_assert_eq(madvise(y, ysize, MADV_NOHUGEPAGE), 0);
	memset(y, 0x11, ysize);
	uy = hmmgpu_userptr_create(test_fd, y, ysize, 0);
	hmmgpu_vm_map(test_fd, vm, uy, 0, USERPTR_VA, ysize, 0);
	z = map_anon(page);
	uffd = uffd_register_missing(z, page);
	uz = hmmgpu_userptr_create(test_fd, z, page, 0);

	gate1 = gate_syncobj(test_fd, tl, 1);
	s1 = syncobj_create(test_fd);
	s2 = syncobj_create(test_fd);
	hmmgpu_cmd_write64(&cmd, BO_VA, MARK_GATED);
	igt_assert_eq(exec_gated(test_fd, vm, &cmd, 1, gate1, s1), 0);

	advise_prepare(&inval, y, ysize, MADV_FREE);
	sub.kind = OP_EXEC;
	sub.fd = test_fd;
	sub.vm = vm;
	hmmgpu_cmd_write64(&sub.cmd, BO_VA + 8, MARK_GATED);
	sub.out = s2;
	op_prepare(&sub);
	bind.kind = OP_MAP;
	bind.fd = test_fd;
	bind.vm = vm;
	bind.handle = uz;
	bind.va = X_VA;
	bind.size = page;
	op_prepare(&bind);

	/* 1. */
	dontneed_until_waiting(&inval, test_fd, vm);
	/* 2. */
	op_go(&sub);
	op_wait_asleep(&sub, LINGER_S);
	/* 3. */
	op_go(&bind);
	op_wait_asleep(&bind, LINGER_S);
	/* 4. */
	gate_open(tl);
	igt_assert_eq(job_error(test_fd, s1), 0);
	fault_at = uffd_next_fault(uffd);
	igt_assert_f(fault_at == to_user_pointer(z), "the bind did not fault Z in (fault message "
		     "for %#" PRIx64 ", Z at %p)\n", fault_at, z);
	igt_assert_f(op_wait_done(&inval, STEP_WAIT_S), "MADV_FREE did not end\n");
	igt_assert_f(op_wait_done(&sub, STEP_WAIT_S), "the submission did not end\n");
	igt_assert_eq(inval.err, 0);
	igt_assert_eq(sub.err, 0);
	igt_assert_eq(job_error(test_fd, s2), 0);
	hmmgpu_vm_stats(test_fd, vm, &stats);
	pinned_before_second = stats.pinned_pages;
	/* 5. */
	igt_assert_eq(madvise(y, ysize, MADV_DONTNEED), 0);
	/* 6. */
	uffd_serve(uffd, fault_at, src);
	op_join(&bind);
	igt_assert_f(bind.err == 0, "bind of Z: %d\n", bind.err);
	op_join(&inval);
	op_join(&sub);
	hmmgpu_vm_unmap(test_fd, vm, X_VA, page);

	start = now_s();
	do {
		igt_assert(hmmgpu_read_pin_counters(&acquired, &released));
		hmmgpu_vm_stats(test_fd, vm, &stats);
		balanced = acquired - acquired0 == released - released0 && !stats.pinned_pages;
		if (!balanced)
			usleep(20 * 1000);
	} while (!balanced && now_s() - start < PIN_WAIT_S);
	igt_info("%llu pages pinned before the second invalidation (%" PRIu64 " would be the "
		 "first one's and the submission's); at the end %" PRIu64 " pins acquired, "
		 "%" PRIu64 " released, %llu pages pinned by the VM\n",
		 (unsigned long long)pinned_before_second, 2 * pages, acquired - acquired0,
		 released - released0, (unsigned long long)stats.pinned_pages);
	igt_assert_f(stats.pinned_pages == 0, "%llu pages still pinned %.0f s after a second "
		     "invalidation that came while the first one's pins waited to be released, "
		     "with the mapping idle\n", (unsigned long long)stats.pinned_pages,
		     PIN_WAIT_S);
	igt_assert_f(acquired - acquired0 == released - released0, "%" PRIu64 " pins acquired, "
		     "%" PRIu64 " released, with the mapping idle\n", acquired - acquired0,
		     released - released0);

	/* Still bound: a job pins and runs again. */
	hmmgpu_cmd_write64(&cmd, USERPTR_VA, 5);
	igt_assert_eq(hmmgpu_exec_job(test_fd, vm, &cmd, 1, 0), 0);
	igt_assert_eq_u64(*(volatile uint64_t *)y, 5);

	close(uffd);
	drmSyncobjDestroy(test_fd, gate1);
	drmSyncobjDestroy(test_fd, s1);
	drmSyncobjDestroy(test_fd, s2);
	gate_timeline_close(tl);
	hmmgpu_vm_destroy(test_fd, vm);
	gem_close(test_fd, uy);
	gem_close(test_fd, uz);
	gem_close(test_fd, bo);
	drm_close_driver(test_fd);
	igt_assert_eq(munmap(y, ysize), 0);
	igt_assert_eq(munmap(z, page), 0);
	igt_assert_eq(munmap(src, page), 0);
}

/*
 * probe-storm, probe-storm-signal: USERPTR_CREATE with PROBE of a range that
 * a thread invalidates without end (MADV_DONTNEED, then touching every page
 * again) returns: 0, or -EAGAIN (or -ETIMEDOUT) when the storm keeps
 * overtaking it, or -EINTR when a signal came; it never loops for as long as
 * the storm lasts.
 * The storm is endless as far as the probes can tell: it only stops after
 * PROBE_STORM_MAX_S, as a bound: probes start in its first half only, and
 * one that returns only once the storm has stopped fails the test. The
 * -signal variant has a timer send the probing thread SIGUSR1 every
 * millisecond, with a handler installed without SA_RESTART.
 */
#define PROBE_STORM_MAX_S	10.0
#define PROBE_CALLS		200
#define PROBE_SIZE		SZ_2M

struct probe_storm {
	char *ptr;
	double deadline;
	atomic_bool stop, ended;
	unsigned long ops;
	char err[128];
};

static void *probe_storm_thread(void *arg)
{
	struct probe_storm *s = arg;
	sigset_t set;

	/* The timer's signals are for the probing thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	while (!atomic_load(&s->stop) && now_s() < s->deadline) {
		if (madvise(s->ptr, PROBE_SIZE, MADV_DONTNEED)) {
			snprintf(s->err, sizeof(s->err), "madvise: %s", strerror(errno));
			break;
		}
		for (uint64_t off = 0; off < PROBE_SIZE; off += page)
			s->ptr[off] = 1;
		s->ops++;
	}
	atomic_store(&s->ended, true);
	return NULL;
}

static atomic_uint usr1_count;

static void usr1_handler(int sig)
{
	(void)sig;
	atomic_fetch_add(&usr1_count, 1);
}

static void test_probe_storm(bool with_signals)
{
	unsigned int calls = 0, ok = 0, eagain = 0, etimedout = 0, eintr = 0;
	struct probe_storm s = {};
	struct sigaction sa = { .sa_handler = usr1_handler };
	struct sigevent sev = {
		.sigev_notify = SIGEV_SIGNAL,
		.sigev_signo = SIGUSR1,
	};
	struct itimerspec its = {
		.it_value = { .tv_nsec = 1000 * 1000 },
		.it_interval = { .tv_nsec = 1000 * 1000 },
	};
	timer_t timer = 0;
	pthread_t thread;
	double start;
	int test_fd;

	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	s.ptr = map_anon(PROBE_SIZE);
	memset(s.ptr, 1, PROBE_SIZE);
	atomic_store(&usr1_count, 0);
	start = now_s();
	s.deadline = start + PROBE_STORM_MAX_S;
	igt_assert_eq(pthread_create(&thread, NULL, probe_storm_thread, &s), 0);

	if (with_signals) {
		/* No SA_RESTART: an interrupted probe returns -EINTR. */
		igt_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
		igt_assert_eq(timer_create(CLOCK_MONOTONIC, &sev, &timer), 0);
		igt_assert_eq(timer_settime(timer, 0, &its, NULL), 0);
	}

	/* Probes start in the first half of the storm only: one that outlasts it loops. */
	while (calls < PROBE_CALLS && now_s() - start < PROBE_STORM_MAX_S / 2) {
		struct drm_hmmgpu_userptr_create arg = {
			.addr = to_user_pointer(s.ptr),
			.size = PROBE_SIZE,
			.flags = DRM_HMMGPU_USERPTR_PROBE,
		};
		int err;

		/* Not drmIoctl(): it would retry -EINTR and -EAGAIN. */
		err = ioctl(test_fd, DRM_IOCTL_HMMGPU_USERPTR_CREATE, &arg) ? -errno : 0;
		calls++;
		igt_assert_f(!atomic_load(&s.ended), "probe %u returned (%d) only when the storm "
			     "stopped, after %.0f s: it kept looping\n", calls, err,
			     PROBE_STORM_MAX_S);
		switch (err) {
		case 0:
			ok++;
			igt_assert_eq(t_gem_close(test_fd, arg.handle), 0);
			break;
		case -EAGAIN:
			eagain++;
			break;
		case -ETIMEDOUT:
			etimedout++;
			break;
		case -EINTR:
			eintr++;
			break;
		default:
			igt_assert_f(false, "probe %u under an invalidation storm: %d\n", calls,
				     err);
		}
	}

	if (with_signals)
		igt_assert_eq(timer_delete(timer), 0);
	atomic_store(&s.stop, true);
	igt_assert_eq(pthread_join(thread, NULL), 0);
	igt_info("%u probes in %.2f s of storm (%lu rounds of MADV_DONTNEED): %u returned 0, "
		 "%u -EAGAIN, %u -ETIMEDOUT, %u -EINTR; %u signals\n", calls, now_s() - start,
		 s.ops, ok, eagain, etimedout, eintr, atomic_load(&usr1_count));
	igt_assert_f(!s.err[0], "the storm failed: %s\n", s.err);
	igt_assert_lte(1, calls);

	drm_close_driver(test_fd);
	igt_assert_eq(munmap(s.ptr, PROBE_SIZE), 0);
}

static void test_probe_storm_plain(uint32_t mode)
{
	(void)mode;
	test_probe_storm(false);
}

static void test_probe_storm_signal(uint32_t mode)
{
	(void)mode;
	test_probe_storm(true);
}

/*
 * invalidation-race-dontneed, invalidation-race-fork (prefault, pinned): the
 * race of publish-during-invalidation as it happens by itself, counted over a
 * bounded number of rounds, with no order forced. Jobs that only touch
 * memory that stays mapped the whole time must all succeed: a -EFAULT means
 * a job was published while an invalidation of its memory was under way.
 *
 * Both use two userptr mappings of one range of memory: X, its first part,
 * and Y, the rest. An invalidation of the whole range calls X's callback
 * first, which waits for the VM's last job while Y is still untouched; a
 * submission that comes then finds X to mirror again and Y valid, and waits
 * for X's invalidation to end, meanwhile Y's runs. Only the jobs' writes to
 * Y are checked.
 *
 * -dontneed: each round, a job on a GEM object is queued (invalidations wait
 * for it), and a thread discards X and Y with one MADV_DONTNEED after a
 * random number of sched_yield(), while the test, after a random number of
 * its own, submits a job that writes Y only.
 *
 * -fork: a thread forks children that exit at once, in a loop: every fork
 * write-protects the test's private memory, an invalidation of it. Meanwhile
 * the test keeps two jobs that write Y (and copy 1 MiB of a GEM object, to
 * last) in flight, submitting each after a random number of sched_yield().
 */
#define RACE_ROUNDS	60
#define RACE_JOBS	100
#define RACE_X_SIZE	SZ_64K
#define RACE_Y_SIZE	SZ_64K

struct yield_dontneed {
	char *ptr;
	size_t len;
	unsigned int yields;
	int err;
};

static void *yield_dontneed_thread(void *arg)
{
	struct yield_dontneed *d = arg;

	for (unsigned int i = 0; i < d->yields; i++)
		sched_yield();
	d->err = madvise(d->ptr, d->len, MADV_DONTNEED) ? -errno : 0;
	return NULL;
}

/* X and Y, one range of memory, bound at X_VA and USERPTR_VA; returns the range. */
static char *race_map(int test_fd, uint32_t vm, uint32_t *ux, uint32_t *uy)
{
	char *mem = map_anon(RACE_X_SIZE + RACE_Y_SIZE);

	igt_assert_eq(madvise(mem, RACE_X_SIZE + RACE_Y_SIZE, MADV_NOHUGEPAGE), 0);
	memset(mem, 1, RACE_X_SIZE + RACE_Y_SIZE);
	*ux = hmmgpu_userptr_create(test_fd, mem, RACE_X_SIZE, 0);
	*uy = hmmgpu_userptr_create(test_fd, mem + RACE_X_SIZE, RACE_Y_SIZE, 0);
	hmmgpu_vm_map(test_fd, vm, *ux, 0, X_VA, RACE_X_SIZE, 0);
	hmmgpu_vm_map(test_fd, vm, *uy, 0, USERPTR_VA, RACE_Y_SIZE, 0);
	return mem;
}

static void test_race_dontneed(uint32_t mode)
{
	unsigned int efault = 0, done = 0;
	struct drm_hmmgpu_cmd cmds[2], ycmd;
	uint32_t vm, bo, ux, uy, s_bo, s_y;
	int test_fd, err;
	char *mem;

	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	vm = hmmgpu_vm_create(test_fd, mode);
	bo = hmmgpu_gem_create(test_fd, SZ_2M);
	hmmgpu_vm_map(test_fd, vm, bo, 0, BO_VA, SZ_2M, 0);
	mem = race_map(test_fd, vm, &ux, &uy);
	s_bo = syncobj_create(test_fd);
	s_y = syncobj_create(test_fd);
	for (unsigned int i = 0; i < ARRAY_SIZE(cmds); i++)
		hmmgpu_cmd_copy(&cmds[i], BO_VA + (i % 2 ? 0 : SZ_1M), BO_VA + (i % 2 ? SZ_1M : 0),
				SZ_1M);
	srand(1234);

	for (unsigned int round = 0; round < RACE_ROUNDS; round++) {
		struct yield_dontneed d = {
			.ptr = mem,
			.len = RACE_X_SIZE + RACE_Y_SIZE,
			.yields = rand() % 4,
		};
		unsigned int yields = rand() % 4;
		pthread_t thread;
		int32_t error;

		/* A job on the object: the invalidations will wait for it. */
		igt_assert_eq(exec_gated(test_fd, vm, cmds, ARRAY_SIZE(cmds), 0, s_bo), 0);

		igt_assert_eq(pthread_create(&thread, NULL, yield_dontneed_thread, &d), 0);
		for (unsigned int i = 0; i < yields; i++)
			sched_yield();
		hmmgpu_cmd_write64(&ycmd, USERPTR_VA + 8 * (round % 64), round);
		err = exec_gated(test_fd, vm, &ycmd, 1, 0, s_y);
		igt_assert_f(err == 0, "round %u: exec: %d\n", round, err);
		error = job_error(test_fd, s_y);
		igt_assert_eq(pthread_join(thread, NULL), 0);
		igt_assert_eq(d.err, 0);
		igt_assert_eq(job_error(test_fd, s_bo), 0);
		igt_assert_f(error == 0 || error == -EFAULT, "round %u: the job on Y ended with "
			     "%d\n", round, error);
		if (error)
			efault++;
		else
			done++;
	}
	igt_info("%s: %u rounds: %u jobs on Y done, %u -EFAULT\n", hmmgpu_vm_mode_name(mode),
		 RACE_ROUNDS, done, efault);
	vm_stats_info(test_fd, vm, hmmgpu_vm_mode_name(mode));
	igt_assert_f(efault == 0, "%u of %u jobs that write only Y, which stays mapped, ended "
		     "with -EFAULT: they were published while an invalidation of Y was under "
		     "way\n", efault, RACE_ROUNDS);

	drmSyncobjDestroy(test_fd, s_bo);
	drmSyncobjDestroy(test_fd, s_y);
	hmmgpu_vm_destroy(test_fd, vm);
	gem_close(test_fd, ux);
	gem_close(test_fd, uy);
	gem_close(test_fd, bo);
	drm_close_driver(test_fd);
	igt_assert_eq(munmap(mem, RACE_X_SIZE + RACE_Y_SIZE), 0);
}

struct forker {
	atomic_bool stop;
	unsigned long forks;
	char err[128];
};

/* SIGCHLD is ignored meanwhile: children are reaped as they exit. */
static void *forker_thread(void *arg)
{
	struct forker *f = arg;

	while (!atomic_load(&f->stop)) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		if (pid < 0 && errno != EAGAIN) {
			snprintf(f->err, sizeof(f->err), "fork: %s", strerror(errno));
			break;
		}
		if (pid > 0)
			f->forks++;
		sched_yield();
	}
	return NULL;
}

static void test_race_fork(uint32_t mode)
{
	unsigned int efault = 0, done = 0, submitted = 0;
	struct drm_hmmgpu_cmd cmds[3];
	struct forker f = {};
	uint32_t vm, bo, ux, uy, sync[2];
	pthread_t thread;
	int test_fd;
	char *mem;

	test_fd = drm_open_driver_render(DRIVER_HMMGPU);
	vm = hmmgpu_vm_create(test_fd, mode);
	bo = hmmgpu_gem_create(test_fd, SZ_2M);
	hmmgpu_vm_map(test_fd, vm, bo, 0, BO_VA, SZ_2M, 0);
	mem = race_map(test_fd, vm, &ux, &uy);
	sync[0] = syncobj_create(test_fd);
	sync[1] = syncobj_create(test_fd);

	srand(5678);
	igt_assert(signal(SIGCHLD, SIG_IGN) != SIG_ERR);
	igt_assert_eq(pthread_create(&thread, NULL, forker_thread, &f), 0);
	/* Two jobs in flight: each submission finds the one before it unsignalled. */
	for (unsigned int k = 0; k <= RACE_JOBS; k++) {
		if (k < RACE_JOBS) {
			unsigned int yields = rand() % 4;
			int err;

			/* A moment for the thread to fork, or not. */
			for (unsigned int i = 0; i < yields; i++)
				sched_yield();
			hmmgpu_cmd_write64(&cmds[0], USERPTR_VA + 8 * (k % 512), k);
			hmmgpu_cmd_copy(&cmds[1], USERPTR_VA + RACE_Y_SIZE / 2,
					USERPTR_VA + RACE_Y_SIZE / 4, page);
			/* Long enough to be in flight when the thread forks. */
			hmmgpu_cmd_copy(&cmds[2], BO_VA, BO_VA + SZ_1M, SZ_1M);
			err = exec_gated(test_fd, vm, cmds, 3, 0, sync[k % 2]);
			igt_assert_f(err == 0, "job %u: exec: %d\n", k, err);
			submitted++;
		}
		if (k) {
			int32_t error = job_error(test_fd, sync[(k - 1) % 2]);

			igt_assert_f(error == 0 || error == -EFAULT, "job %u ended with %d\n",
				     k - 1, error);
			if (error)
				efault++;
			else
				done++;
		}
	}
	atomic_store(&f.stop, true);
	igt_assert_eq(pthread_join(thread, NULL), 0);
	igt_assert(signal(SIGCHLD, SIG_DFL) != SIG_ERR);
	igt_info("%s: %u jobs beside %lu forks: %u done, %u -EFAULT\n",
		 hmmgpu_vm_mode_name(mode), submitted, f.forks, done, efault);
	vm_stats_info(test_fd, vm, hmmgpu_vm_mode_name(mode));
	igt_assert_f(!f.err[0], "the fork thread failed: %s\n", f.err);
	igt_assert_f(efault == 0, "%u of %u jobs on memory that stays mapped ended with -EFAULT "
		     "while a thread forked: they were published while a fork's invalidation "
		     "was under way\n", efault, submitted);

	drmSyncobjDestroy(test_fd, sync[0]);
	drmSyncobjDestroy(test_fd, sync[1]);
	hmmgpu_vm_destroy(test_fd, vm);
	gem_close(test_fd, ux);
	gem_close(test_fd, uy);
	gem_close(test_fd, bo);
	drm_close_driver(test_fd);
	igt_assert_eq(munmap(mem, RACE_X_SIZE + RACE_Y_SIZE), 0);
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
		igt_require(hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_GEM_MAX_SIZE) >=
			    3 * SZ_2M + page);
		hmmgpu_raise_memlock();
		calibrate();
	}

	igt_describe("A thread discards a 2 MiB userptr's pages with MADV_DONTNEED in a loop "
		     "for 1 s while jobs write a pattern into it and copy it back: every job "
		     "succeeds, reading back the pattern or (fault mode only) zeros of pages "
		     "discarded under it, never stale data; at least 10 complete; afterwards "
		     "a job sees exactly the CPU's data.");
	igt_subtest_with_dynamic("invalidation-storm-dontneed") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_bounded(test_storm_dontneed, m->flags, TEST_LIMIT_S);
	}

	igt_describe("A thread flips a 2 MiB read-only userptr's memory between PROT_READ and "
		     "PROT_READ | PROT_WRITE in a loop for 1 s while jobs copy and checksum "
		     "it: every job succeeds with exactly the memory's data.");
	igt_subtest_with_dynamic("invalidation-storm-mprotect") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_bounded(test_storm_mprotect, m->flags, TEST_LIMIT_S);
	}

	igt_describe("A thread unmaps a 2 MiB userptr's memory and maps fresh memory with new "
		     "contents at the same address, in a loop for 1 s, while jobs copy it: "
		     "every job succeeds, or faults in the moment it was unmapped, and reads "
		     "only data of mappings live while it ran; at least 10 complete; "
		     "afterwards a job sees exactly the CPU's data.");
	igt_subtest_with_dynamic("invalidation-storm-remap") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_bounded(test_storm_remap, m->flags, TEST_LIMIT_S);
	}

	igt_describe("Unbinds split a userptr mapping while a thread discards its pages: "
		     "afterwards jobs on the pieces read exactly what the CPU wrote last.");
	igt_subtest_with_dynamic("unmap-split-race") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_bounded(test_unmap_split_race, m->flags, TEST_LIMIT_S);
	}

	igt_describe("Four threads, each with a VM of its own on one file, create, bind, run "
		     "a job on, unbind and close userptrs of their own memory in a loop for "
		     "1 s, beside a thread that maps and unmaps other memory: every job "
		     "succeeds with the right data.");
	igt_subtest_with_dynamic("threads") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_bounded(test_threads_own_vm, m->flags, TEST_LIMIT_S);
	}

	igt_describe("The same with one VM for the four threads, at different GPU addresses.");
	igt_subtest_with_dynamic("threads-shared-vm") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_bounded(test_threads_shared_vm, m->flags, TEST_LIMIT_S);
	}

	igt_describe("Three processes, each with a file of its own, run the same loop for 1 s: "
		     "every job succeeds with the right data and every process exits 0.");
	igt_subtest_with_dynamic("processes") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_processes(m->flags);
	}

	igt_describe("A child passes its DRM file over a unix socket, queues a long job on "
		     "its memory and one on a GEM object, and exits: the jobs end, the first "
		     "done or -EFAULT, the second done; then the VM faults on the dead "
		     "child's memory and runs jobs on the object.");
	igt_subtest_with_dynamic("exit-with-job") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_bounded(test_exit_with_job, m->flags, TEST_LIMIT_S);
	}

	igt_describe("A child passes its DRM file, with its memory mirrored, and exits idle: "
		     "jobs on its memory end with -EFAULT, jobs on its GEM object succeed, "
		     "binding its memory or ours fails, and no page stays pinned.");
	igt_subtest_with_dynamic("exit-idle") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_bounded(test_exit_idle, m->flags, TEST_LIMIT_S);
	}

	igt_describe("Memory registered with userfaultfd, whose pages a handler thread copies "
		     "in: the submission (prefault) or the bind (pinned) has the handler serve "
		     "every page, and the job reads the handler's data and writes its own. In "
		     "fault mode a GPU fault does not wait for the handler (-EFAULT) until the "
		     "CPU has faulted the pages in.");
	igt_subtest_with_dynamic("userfaultfd") {
		require_uffd();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_bounded(test_userfaultfd, m->flags, TEST_LIMIT_S);
	}

	igt_describe("Prefault mode: the file is closed while a submission waits for a "
		     "userfaultfd handler that holds its fault 200 ms: close() returns at once, "
		     "the submission keeps the file until the handler has served it, and goes "
		     "through.");
	igt_subtest("close-during-fault") {
		igt_require_f(hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PREFAULT),
			      "no prefault mode\n");
		require_uffd();
		run_bounded(test_close_during_fault, DRM_HMMGPU_VM_MODE_PREFAULT, TEST_LIMIT_S);
	}

	igt_describe("Prefault and pinned modes: a submission that mirrors another mapping "
		     "while an invalidation of mapping Y waits for the VM's last job (both held "
		     "in place, by a userfaultfd and a sw_sync gate) does not publish a job "
		     "that writes Y on entries the invalidation then clears: the job succeeds.");
	igt_subtest_with_dynamic("publish-during-invalidation") {
		require_uffd();
		require_sw_sync();
		for_each_nofault_mode_dynamic(fd, m)
			run_bounded(test_publish_during_invalidation, m->flags, TEST_LIMIT_S);
	}

	igt_describe("Prefault mode: a submission that invalidations of other mirrors overtake "
		     "for 16 rounds in a row (forced with a userfaultfd) does not then publish "
		     "its job on the entries of a mirror an invalidation cleared meanwhile: "
		     "the job succeeds.");
	igt_subtest("publish-after-many-rounds") {
		igt_require_f(hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PREFAULT),
			      "no prefault mode\n");
		require_uffd();
		run_bounded(test_publish_after_many_rounds, DRM_HMMGPU_VM_MODE_PREFAULT,
			    TEST_LIMIT_S);
	}

	igt_describe("Prefault and pinned modes: while an invalidation of userptr mapping Y "
		     "waits for the VM's last job, Y is unbound and a GEM object bound at its "
		     "address: the invalidation, when it goes on, leaves the object's entries "
		     "alone, and jobs on the object succeed.");
	igt_subtest_with_dynamic("rebind-during-invalidation") {
		require_sw_sync();
		for_each_nofault_mode_dynamic(fd, m)
			run_bounded(test_rebind_during_invalidation, m->flags, TEST_LIMIT_S);
	}

	igt_describe("Prefault and pinned modes: a child sharing the file submits a job on "
		     "its memory that waits for a gate that never opens, and exits: its exit "
		     "does not wait for the job, which ends with -ECANCELED.");
	igt_subtest_with_dynamic("exit-with-blocked-job") {
		require_sw_sync();
		for_each_nofault_mode_dynamic(fd, m)
			run_bounded(test_exit_with_blocked_job, m->flags, TEST_LIMIT_S);
	}

	igt_describe("A fenced unmap that cuts a mapping while an munmap of it waits for the "
		     "VM's job: the pieces' entries go with the munmap, jobs fault on them.");
	igt_subtest_with_dynamic("fenced-unmap-during-invalidation") {
		require_sw_sync();
		for_each_nofault_mode_dynamic(fd, m)
			run_bounded(test_fenced_unmap_during_invalidation, m->flags, TEST_LIMIT_S);
	}

	igt_describe("Prefault and pinned modes: while the kernel's write of a job's user "
		     "fence waits (userfaultfd), an mprotect of a userptr the next job reads "
		     "waits for that job with the mmap lock held: the next job still runs, "
		     "mprotect returns, and the fence is written.");
	igt_subtest_with_dynamic("user-fence-write-during-invalidation") {
		require_uffd();
		for_each_nofault_mode_dynamic(fd, m)
			run_bounded(test_user_fence_write_during_invalidation, m->flags,
				    TEST_LIMIT_S);
	}

	igt_describe("The user fences of a VM's jobs are written in the order the jobs end: "
		     "values 1..N at one address, the first write held (userfaultfd) while "
		     "the rest queue, read N once every write is done.");
	igt_subtest_with_dynamic("user-fence-order") {
		require_uffd();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_bounded(test_user_fence_order, m->flags, TEST_LIMIT_S);
	}

	igt_describe("A child sharing the file exits while the worker of its job is held "
		     "writing the job's user fence (userfaultfd): the worker then drops the "
		     "child's address space last, and the job queued behind it still ends.");
	igt_subtest_with_dynamic("exit-during-user-fence") {
		require_uffd();
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			run_bounded(test_exit_during_user_fence, m->flags, TEST_LIMIT_S);
	}

	igt_describe("Pinned mode: after invalidations with jobs in between and a last one "
		     "with nothing submitted after it, the pins are released (nr_foll_pin_* "
		     "balance, the VM reports no page pinned) while the mapping stays bound.");
	igt_subtest("pins-released-without-submit") {
		uint64_t a, r;

		igt_require_f(hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PINNED),
			      "no pinned mode\n");
		igt_require_f(hmmgpu_read_pin_counters(&a, &r),
			      "no exact nr_foll_pin_* counters in /proc/vmstat\n");
		run_bounded(test_pins_released_without_submit, DRM_HMMGPU_VM_MODE_PINNED,
			    TEST_LIMIT_S);
	}

	igt_describe("Pinned mode: a second invalidation that comes while the first one's pins "
		     "wait for the worker (held there by a bind that waits for userfaultfd) "
		     "has its pins released too, with the mapping idle.");
	igt_subtest("pins-released-second-invalidation") {
		uint64_t a, r;

		igt_require_f(hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PINNED),
			      "no pinned mode\n");
		igt_require_f(hmmgpu_read_pin_counters(&a, &r),
			      "no exact nr_foll_pin_* counters in /proc/vmstat\n");
		require_uffd();
		require_sw_sync();
		run_bounded(test_pins_released_second_invalidation, DRM_HMMGPU_VM_MODE_PINNED,
			    TEST_LIMIT_S);
	}

	igt_describe("USERPTR_CREATE with PROBE of a range a thread invalidates without end "
		     "returns 0, -EAGAIN, -ETIMEDOUT or -EINTR, while the storm lasts.");
	igt_subtest("probe-storm")
		run_bounded(test_probe_storm_plain, 0, TEST_LIMIT_S);

	igt_describe("The same with a timer signal every millisecond, whose handler is "
		     "installed without SA_RESTART.");
	igt_subtest("probe-storm-signal")
		run_bounded(test_probe_storm_signal, 0, TEST_LIMIT_S);

	igt_describe("Prefault and pinned modes: 60 rounds of a job that writes mapping Y only, "
		     "submitted while a thread discards Y and mapping X just below it with "
		     "MADV_DONTNEED: no job ends with -EFAULT.");
	igt_subtest_with_dynamic("invalidation-race-dontneed") {
		for_each_nofault_mode_dynamic(fd, m)
			run_bounded(test_race_dontneed, m->flags, TEST_LIMIT_S);
	}

	igt_describe("Prefault and pinned modes: 100 jobs on memory that stays mapped, two in "
		     "flight at a time, while a thread forks children in a loop: no job ends "
		     "with -EFAULT.");
	igt_subtest_with_dynamic("invalidation-race-fork") {
		for_each_nofault_mode_dynamic(fd, m)
			run_bounded(test_race_fork, m->flags, TEST_LIMIT_S);
	}

	igt_fixture {
		drm_close_driver(fd);
	}
}
