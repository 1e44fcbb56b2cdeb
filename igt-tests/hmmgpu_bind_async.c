// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Asynchronous VM_BIND of hmmgpu (DRM_HMMGPU_VM_BIND_ASYNC in struct
 * drm_hmmgpu_vm_bind's @flags), in the manner of xe's IGT tests of async
 * binds (xe_vm, xe_exec_fault_mode). Queued binds take their turn one at a
 * time, in the order they were queued, each once its wait syncs signalled.
 *
 * - Unfenced binds (user fences only): the call checks the bind, queues it
 *   and returns 0; the bind runs its operations in its turn and writes its
 *   user fences, the error word first: 0, the error of the first operation
 *   that failed (the ones after it do not run), the error of a wait sync
 *   that signalled with one (no operation runs), or -ECANCELED when the VM
 *   was destroyed, or its file closed, before the bind ran.
 * - Fenced binds (a sync object to signal): the sync objects have the
 *   bind's fence, unsignalled, from the call on, so that waits, exports and
 *   jobs take it; the call does the operations (errors come back from it, the
 *   fence signalling them too), a map at once, an unmap taking its range
 *   away but leaving its entries until the bind's turn, which clears them and
 *   signals; a map over a range a queued unmap still has to clear waits for
 *   it.
 * - What the call refuses, with nothing queued (its sync objects untouched):
 *   fields, operations and syncs that are not valid in themselves (-EINVAL),
 *   unknown VMs, objects and sync objects (-ENOENT), arrays it cannot read
 *   (-EFAULT), and a userptr mapped by a process that is not the VM's
 *   (-EFAULT). For an unfenced bind, whether a range is free and an
 *   object large enough is found when the bind runs, in its error word.
 * - Jobs do not wait for queued binds of themselves: a job touching the range
 *   before an unfenced bind ran faults; a job given a fenced bind's sync
 *   object waits for its fence. A synchronous bind waits (interruptibly) for the binds
 *   queued on its VM before it, and only for those.
 * - Pinned mode charges the pages an async bind pins to the caller's
 *   RLIMIT_MEMLOCK.
 *
 * Binds are held back by sw_sync fences (CONFIG_SW_SYNC, debugfs): without a
 * sw_sync timeline the subtests skip. A gate (a sw_sync fence in a sync
 * object) that stays closed longer than GATE_WATCHDOG_MS is opened by a
 * watchdog thread, and the test fails: a call that waits for it, which none
 * should (but a fenced map that waits for a queued unmap, whose gate another
 * thread opens), ends a failure, not a hang. Every other wait is bounded, and
 * generously: nothing here measures how fast anything is.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <xf86drm.h>

#include "igt.h"
#include "igt_hmmgpu.h"
#include "igt_syncobj.h"
#include "sw_sync.h"

IGT_TEST_DESCRIPTION("Asynchronous VM_BIND of hmmgpu: binds queued on the VM's bind queue "
		     "take their turn in order once their wait syncs signalled; unfenced ones "
		     "report through user fences (errors found when they run, a wait sync's "
		     "error, -ECANCELED on VM destroy or close), fenced ones through a fence "
		     "in their sync objects from the call on; what the call refuses with "
		     "nothing queued; synchronous binds wait for the queue; other processes; "
		     "RLIMIT_MEMLOCK.");

#define RES_VA		0x200000000ull
#define DATA_VA		0x300000000ull
#define VA_STRIDE	0x10000000ull
/* The first address past the GPU's 48-bit address space. */
#define VA_END		(1ull << 48)

/* Longer than any job may take (its time limit is 10 s), or any bind. */
#define JOB_WAIT_NS	(30ll * NSEC_PER_SEC)
#define POLL_WAIT_S	30
/* How long a gate may stay closed before its watchdog opens it. */
#define GATE_WATCHDOG_MS	30000

/* One-page GEM objects, each filled with its own word. */
#define BIND_OBJS	4
/* The GEM object that probes whether a range is free, in pages. */
#define SCRATCH_PAGES	16

#define FILL_WORD	0xc0ffee11u

static int fd = -1;
static long page;

/*
 * A VM in a mode, with a one-page result object at RES_VA that the CPU sees
 * at @res, BIND_OBJS one-page objects (@bo[i] filled with obj_word(i)) and
 * a scratch object of SCRATCH_PAGES pages.
 */
struct ctx {
	int fd;
	uint32_t mode;
	uint32_t vm;
	uint32_t res_bo;
	volatile uint64_t *res;
	uint32_t bo[BIND_OBJS];
	uint32_t scratch;
};

static uint32_t obj_word(unsigned int i)
{
	return 0xb0000000u + i;
}

static void ctx_init(struct ctx *c, int test_fd, uint32_t mode)
{
	memset(c, 0, sizeof(*c));
	c->fd = test_fd;
	c->mode = mode;
	c->vm = hmmgpu_vm_create(test_fd, mode);
	c->res_bo = hmmgpu_gem_create(test_fd, page);
	c->res = hmmgpu_gem_mmap(test_fd, c->res_bo, page, PROT_READ | PROT_WRITE);
	memset((void *)c->res, 0, page);
	hmmgpu_vm_map(test_fd, c->vm, c->res_bo, 0, RES_VA, page, 0);
	for (unsigned int i = 0; i < BIND_OBJS; i++) {
		uint32_t *map;

		c->bo[i] = hmmgpu_gem_create(test_fd, page);
		map = hmmgpu_gem_mmap(test_fd, c->bo[i], page, PROT_READ | PROT_WRITE);
		for (long w = 0; w < page / 4; w++)
			map[w] = obj_word(i);
		igt_assert_eq(munmap(map, page), 0);
	}
	c->scratch = hmmgpu_gem_create(test_fd, SCRATCH_PAGES * page);
}

static void ctx_fini(struct ctx *c)
{
	hmmgpu_vm_destroy(c->fd, c->vm);
	for (unsigned int i = 0; i < BIND_OBJS; i++)
		gem_close(c->fd, c->bo[i]);
	gem_close(c->fd, c->scratch);
	igt_assert_eq(munmap((void *)c->res, page), 0);
	gem_close(c->fd, c->res_bo);
}

static void bind_async(struct ctx *c, const struct drm_hmmgpu_vm_bind_op *ops, unsigned int n,
		       const struct drm_hmmgpu_sync *syncs, unsigned int num_syncs)
{
	hmmgpu_vm_bind_async(c->fd, c->vm, ops, n, syncs, num_syncs);
}

/* DRM_IOCTL_HMMGPU_VM_BIND as given: 0 or -errno. */
static int __vm_bind(int test_fd, struct drm_hmmgpu_vm_bind *arg)
{
	int err = igt_ioctl(test_fd, DRM_IOCTL_HMMGPU_VM_BIND, arg) ? -errno : 0;

	errno = 0;
	return err;
}

/*
 * Asserts, with synchronous binds, that [@va, @va + @size) is free: the
 * scratch object maps there, and is unmapped again. A synchronous bind waits
 * for the VM's queued binds: call it once they are done.
 */
static void check_free(struct ctx *c, uint64_t va, uint64_t size)
{
	int err;

	igt_assert_lte_u64(size, SCRATCH_PAGES * page);
	err = __hmmgpu_vm_bind(c->fd, c->vm, DRM_HMMGPU_VM_BIND_MAP, c->scratch, 0, va, size, 0);
	igt_assert_f(err == 0, "[%#" PRIx64 ", +%#" PRIx64 ") is not free: a map there gave %d\n",
		     va, size, err);
	hmmgpu_vm_unmap(c->fd, c->vm, va, size);
}

/* Asserts, with a synchronous bind, that the page at @va is mapped (-EBUSY). */
static void check_busy(struct ctx *c, uint64_t va)
{
	int err;

	err = __hmmgpu_vm_bind(c->fd, c->vm, DRM_HMMGPU_VM_BIND_MAP, c->scratch, 0, va, page, 0);
	igt_assert_f(err == -EBUSY, "a map over %#" PRIx64 " gave %d, expected -EBUSY\n", va, err);
}

/* What a job reads at @va: the word there (0: it faulted, its error in *@error). */
static uint32_t gpu_read(struct ctx *c, uint64_t va, int *error)
{
	struct drm_hmmgpu_cmd cmd;

	c->res[0] = 0;
	hmmgpu_cmd_copy(&cmd, RES_VA, va, 4);
	*error = hmmgpu_exec_job(c->fd, c->vm, &cmd, 1, 0);
	return (uint32_t)c->res[0];
}

/* Asserts, with a job, that @va holds object @obj's word, or (@obj < 0) faults. */
static void check_va(struct ctx *c, uint64_t va, int obj)
{
	int error;
	uint32_t word = gpu_read(c, va, &error);

	if (obj < 0) {
		igt_assert_f(error == -EFAULT, "a job reading %#" PRIx64 " ended with %d, "
			     "expected -EFAULT\n", va, error);
		return;
	}
	igt_assert_f(error == 0, "a job reading %#" PRIx64 " ended with %d\n", va, error);
	igt_assert_f(word == obj_word(obj), "%#" PRIx64 " reads %#x, expected object %d\n",
		     va, word, obj);
}

/* Anonymous private memory of @size bytes, populated with pattern @seed. */
static char *map_pattern(uint64_t size, uint32_t seed)
{
	char *ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);

	igt_assert(ptr != MAP_FAILED);
	hmmgpu_fill_pattern(ptr, size, seed);
	return ptr;
}

/* The sum of the 32-bit words of @size bytes at @ptr, as HMMGPU_CMD_CHECKSUM takes it. */
static uint64_t cpu_checksum(const void *ptr, uint64_t size)
{
	const uint32_t *p = ptr;
	uint64_t sum = 0;

	for (uint64_t i = 0; i < size / 4; i++)
		sum += p[i];
	return sum;
}

/*
 * As hmmgpu_ufence_wait(), by reading the word (bounded): for a fence that no file
 * of the device may be left to wait through, or written in another process.
 */
static int64_t ufence_poll(struct hmmgpu_ufence *uf, uint64_t value)
{
	struct timespec start;

	igt_gettime(&start);
	while (hmmgpu_ufence_value(uf) != value) {
		igt_assert_f(igt_seconds_elapsed(&start) < POLL_WAIT_S,
			     "the user fence reads %" PRIu64 " after %d s, expected %" PRIu64 "\n",
			     hmmgpu_ufence_value(uf), POLL_WAIT_S, value);
		usleep(1000);
	}
	return hmmgpu_ufence_error(uf);
}

/* Asserts that the fence at @uf is not written: a short wait for it runs out of time. */
static void ufence_unwritten(int test_fd, struct hmmgpu_ufence *uf, const char *what)
{
	int err = __hmmgpu_wait_user_fence(test_fd, &uf->value, 0, ~0ull, DRM_HMMGPU_WAIT_NEQ,
					   10 * NSEC_PER_MSEC);

	igt_assert_f(err == -ETIME && hmmgpu_ufence_value(uf) == 0 && hmmgpu_ufence_error(uf) == 1,
		     "%s: the user fence reads %" PRIu64 ", error %" PRId64 " (wait: %d)\n", what,
		     hmmgpu_ufence_value(uf), hmmgpu_ufence_error(uf), err);
}

/*
 * A gate: a sync object of @fd holding a sw_sync fence that the test opens
 * (gate_open()), or signals with an error (gate_break(): its timeline goes,
 * which signals it with -ENOENT). A watchdog thread opens it if it is still
 * closed after GATE_WATCHDOG_MS, and gate_fini() then fails the test. It is
 * allocated, so that the watchdog outlives a test that failed early (the
 * gate is leaked then, its timeline with it).
 */
struct gate {
	int fd;
	int tl;
	uint32_t syncobj;
	int stop[2];
	pthread_t watchdog;
	bool watching;
	atomic_bool rescued;
};

/* Skips when there is no sw_sync timeline: called before a test makes anything. */
static void require_sw_sync(void)
{
	int tl = open(SW_SYNC_PATH, O_RDWR | O_CLOEXEC);

	igt_require_f(tl >= 0, "no sw_sync timeline (CONFIG_SW_SYNC, debugfs mounted): %s\n",
		      strerror(errno));
	close(tl);
}

static void *gate_watchdog(void *arg)
{
	struct gate *g = arg;
	struct pollfd pfd = { .fd = g->stop[0], .events = POLLIN };
	__u32 one = 1;

	if (poll(&pfd, 1, GATE_WATCHDOG_MS) == 0) {
		atomic_store(&g->rescued, true);
		igt_warn("a gate stayed closed for %d ms: the watchdog opens it\n",
			 GATE_WATCHDOG_MS);
		ioctl(g->tl, SW_SYNC_IOC_INC, &one);
	}
	return NULL;
}

static struct gate *gate_new(int test_fd)
{
	struct sw_sync_create_fence_data data = { .value = 1, .name = "hmmgpu-bind-async" };
	sigset_t all, old;
	struct gate *g;
	int tl, err;

	tl = open(SW_SYNC_PATH, O_RDWR | O_CLOEXEC);
	igt_require_f(tl >= 0, "no sw_sync timeline (CONFIG_SW_SYNC, debugfs mounted): %s\n",
		      strerror(errno));
	g = calloc(1, sizeof(*g));
	igt_assert(g);
	g->fd = test_fd;
	g->tl = tl;
	igt_assert_eq(ioctl(tl, SW_SYNC_IOC_CREATE_FENCE, &data), 0);
	g->syncobj = syncobj_create(test_fd, 0);
	igt_assert_eq(drmSyncobjImportSyncFile(test_fd, g->syncobj, data.fence), 0);
	close(data.fence);

	igt_assert_eq(pipe2(g->stop, O_CLOEXEC), 0);
	/* The watchdog takes no signal: those the test sends are for the test's thread. */
	sigfillset(&all);
	igt_assert_eq(pthread_sigmask(SIG_BLOCK, &all, &old), 0);
	err = pthread_create(&g->watchdog, NULL, gate_watchdog, g);
	igt_assert_eq(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
	igt_assert_eq(err, 0);
	g->watching = true;
	return g;
}

static struct drm_hmmgpu_sync gate_sync(struct gate *g)
{
	return hmmgpu_sync_wait(g->syncobj);
}

static void gate_open(struct gate *g)
{
	__u32 one = 1;

	igt_assert_eq(ioctl(g->tl, SW_SYNC_IOC_INC, &one), 0);
}

/* Stops the watchdog; fails if it had to open the gate. */
static void gate_stop_watchdog(struct gate *g)
{
	if (!g->watching)
		return;
	g->watching = false;
	igt_assert_eq(write(g->stop[1], "", 1), 1);
	igt_assert_eq(pthread_join(g->watchdog, NULL), 0);
	close(g->stop[0]);
	close(g->stop[1]);
	igt_assert_f(!atomic_load(&g->rescued),
		     "the test was stuck with its gate closed until the watchdog opened it\n");
}

/* Signals the gate's fence with an error: its timeline goes (-ENOENT). */
static void gate_break(struct gate *g)
{
	gate_stop_watchdog(g);
	close(g->tl);
	g->tl = -1;
}

static void gate_fini(struct gate *g)
{
	gate_stop_watchdog(g);
	if (g->syncobj)
		syncobj_destroy(g->fd, g->syncobj);
	if (g->tl >= 0)
		close(g->tl);
	free(g);
}

/*
 * async-bind: an async MAP of a userptr whose wait sync is an unsignalled
 * sw_sync fence is queued and the call returns; its user fence stays
 * unwritten and a job touching the range faults (jobs do not wait for
 * queued binds). Once the fence signals, the bind runs and writes its user
 * fence with error 0, and a job reads and writes the memory through it.
 */
static void test_async_bind(uint32_t mode)
{
	const uint64_t size = 4 * page;
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync syncs[2];
	struct drm_hmmgpu_cmd cmds[3];
	struct hmmgpu_ufence *uf;
	struct gate *g;
	struct ctx c;
	uint32_t uptr;
	uint32_t *w;
	char *buf;

	require_sw_sync();
	ctx_init(&c, fd, mode);
	g = gate_new(fd);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	buf = map_pattern(size, 1);
	uptr = hmmgpu_userptr_create(fd, buf, size, 0);

	op = hmmgpu_bind_op_map(uptr, DATA_VA, size);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_ufence_sync(uf, 1);
	bind_async(&c, &op, 1, syncs, 2);
	ufence_unwritten(fd, uf, "the bind's wait sync has not signalled");

	/* Not bound yet: a job on the range faults. */
	hmmgpu_cmd_checksum(&cmds[0], RES_VA, DATA_VA, size);
	igt_assert_eq(hmmgpu_exec_job(fd, c.vm, cmds, 1, 0), -EFAULT);
	ufence_unwritten(fd, uf, "the bind's wait sync has not signalled");

	gate_open(g);
	igt_assert_eq(hmmgpu_ufence_wait(fd, uf, 1, JOB_WAIT_NS), 0);

	/* Bound: a job reads page 3, copies page 0 to page 2 and fills page 1. */
	hmmgpu_cmd_checksum(&cmds[0], RES_VA, DATA_VA + 3 * page, page);
	hmmgpu_cmd_copy(&cmds[1], DATA_VA + 2 * page, DATA_VA, page);
	hmmgpu_cmd_fill(&cmds[2], DATA_VA + page, page, FILL_WORD);
	igt_assert_eq(hmmgpu_exec_job(fd, c.vm, cmds, 3, 0), 0);
	igt_assert_eq_u64(c.res[0], cpu_checksum(buf + 3 * page, page));
	hmmgpu_check_pattern_at(buf, 0, page, 1);
	igt_assert(memcmp(buf + 2 * page, buf, page) == 0);
	w = (uint32_t *)(buf + page);
	for (long i = 0; i < page / 4; i++)
		igt_assert_f(w[i] == FILL_WORD, "word %ld of the filled page reads %#x\n", i,
			     w[i]);
	hmmgpu_check_pattern_at(buf, 3 * page, page, 1);

	hmmgpu_vm_unmap(fd, c.vm, DATA_VA, size);
	gem_close(fd, uptr);
	igt_assert_eq(munmap(buf, size), 0);
	hmmgpu_ufences_free(uf);
	gate_fini(g);
	ctx_fini(&c);
}

/*
 * async-order: binds queued behind one held back (only the first waits for
 * the gate) run in queue order: MAP userptr A, UNMAP, MAP userptr B at the
 * same address. Each writes a fence of its own, then a shared word (1, 2,
 * 3): once the last one's fence is written, the earlier ones' are, all with
 * error 0, and the shared word comes to read 3. A job sees B's data.
 */
static void test_async_order(uint32_t mode)
{
	const uint64_t size = 2 * page;
	struct drm_hmmgpu_vm_bind_op ops[3];
	struct drm_hmmgpu_sync syncs[3];
	struct drm_hmmgpu_cmd cmd;
	uint32_t ua, ub;
	struct hmmgpu_ufence *uf, *seq;
	struct gate *g;
	char *a, *b;
	struct ctx c;

	require_sw_sync();
	ctx_init(&c, fd, mode);
	g = gate_new(fd);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	seq = &uf[3];
	a = map_pattern(size, 1);
	b = map_pattern(size, 2);
	ua = hmmgpu_userptr_create(fd, a, size, 0);
	ub = hmmgpu_userptr_create(fd, b, size, 0);

	ops[0] = hmmgpu_bind_op_map(ua, DATA_VA, size);
	ops[1] = hmmgpu_bind_op_unmap(DATA_VA, size);
	ops[2] = hmmgpu_bind_op_map(ub, DATA_VA, size);
	for (unsigned int i = 0; i < 3; i++) {
		unsigned int n = 0;

		if (!i)
			syncs[n++] = gate_sync(g);
		syncs[n++] = hmmgpu_ufence_sync(&uf[i], 1);
		syncs[n++] = hmmgpu_sync_user_fence(&seq->value, i + 1, NULL);
		bind_async(&c, &ops[i], 1, syncs, n);
	}
	for (unsigned int i = 0; i < 4; i++)
		igt_assert_f(hmmgpu_ufence_value(&uf[i]) == 0,
			     "user fence %u written before the first bind's wait sync signalled\n",
			     i);

	gate_open(g);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[2], 1, JOB_WAIT_NS), 0);
	for (unsigned int i = 0; i < 2; i++) {
		igt_assert_f(hmmgpu_ufence_value(&uf[i]) == 1,
			     "bind %u's user fence is not written after bind 2's\n", i);
		igt_assert_eq_s64(hmmgpu_ufence_error(&uf[i]), 0);
	}
	/* The last bind writes its own fence, then the shared word: wait for that too. */
	igt_assert_f(__hmmgpu_wait_user_fence(fd, &seq->value, 3, ~0ull, DRM_HMMGPU_WAIT_EQ,
					      JOB_WAIT_NS) == 0,
		     "the shared user fence reads %" PRIu64 " after the last bind's, expected 3\n",
		     hmmgpu_ufence_value(seq));

	/* The last map is B's. */
	hmmgpu_cmd_checksum(&cmd, RES_VA, DATA_VA, size);
	igt_assert_eq(hmmgpu_exec_job(fd, c.vm, &cmd, 1, 0), 0);
	igt_assert_eq_u64(c.res[0], cpu_checksum(b, size));
	igt_assert_neq_u64(c.res[0], cpu_checksum(a, size));

	hmmgpu_vm_unmap(fd, c.vm, DATA_VA, size);
	gem_close(fd, ua);
	gem_close(fd, ub);
	igt_assert_eq(munmap(a, size), 0);
	igt_assert_eq(munmap(b, size), 0);
	hmmgpu_ufences_free(uf);
	gate_fini(g);
	ctx_fini(&c);
}

/*
 * async-error: what can only be found when a bind runs is reported in its
 * error word, with the value written all the same: a map onto a mapped
 * range (-EBUSY), a window past the object's end (-EINVAL); the binds
 * queued after a failed one run. In one bind of three operations where the
 * second fails, the first is done and the third is not.
 */
static void test_async_error(uint32_t mode)
{
	struct drm_hmmgpu_vm_bind_op ops[3];
	struct drm_hmmgpu_sync syncs[2];
	struct hmmgpu_ufence *uf;
	struct gate *g;
	struct ctx c;

	require_sw_sync();
	ctx_init(&c, fd, mode);
	g = gate_new(fd);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	hmmgpu_vm_map(fd, c.vm, c.bo[0], 0, DATA_VA, page, 0);

	/* Over bo[0]'s mapping; the checks at the call pass. */
	ops[0] = hmmgpu_bind_op_map(c.bo[1], DATA_VA, page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_ufence_sync(&uf[0], 1);
	bind_async(&c, ops, 1, syncs, 2);
	/* Past the end of a one-page object. */
	ops[0] = hmmgpu_bind_op_map(c.bo[3], DATA_VA + 2 * page, page);
	ops[0].offset = page;
	syncs[0] = hmmgpu_ufence_sync(&uf[1], 1);
	bind_async(&c, ops, 1, syncs, 1);
	/* After both failed ones: runs. */
	ops[0] = hmmgpu_bind_op_map(c.bo[2], DATA_VA + page, page);
	syncs[0] = hmmgpu_ufence_sync(&uf[2], 1);
	bind_async(&c, ops, 1, syncs, 1);

	gate_open(g);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[0], 1, JOB_WAIT_NS), -EBUSY);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[1], 1, JOB_WAIT_NS), -EINVAL);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[2], 1, JOB_WAIT_NS), 0);
	check_va(&c, DATA_VA, 0);
	check_va(&c, DATA_VA + page, 2);
	check_va(&c, DATA_VA + 2 * page, -1);
	check_free(&c, DATA_VA + 2 * page, page);
	hmmgpu_vm_unmap(fd, c.vm, DATA_VA, 2 * page);

	/* Three operations, the second onto a mapped range. */
	hmmgpu_vm_map(fd, c.vm, c.bo[0], 0, DATA_VA + 4 * page, page, 0);
	ops[0] = hmmgpu_bind_op_map(c.bo[1], DATA_VA, page);
	ops[1] = hmmgpu_bind_op_map(c.bo[2], DATA_VA + 4 * page, page);
	ops[2] = hmmgpu_bind_op_map(c.bo[3], DATA_VA + 8 * page, page);
	syncs[0] = hmmgpu_ufence_sync(&uf[3], 1);
	bind_async(&c, ops, 3, syncs, 1);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[3], 1, JOB_WAIT_NS), -EBUSY);
	check_va(&c, DATA_VA, 1);
	check_va(&c, DATA_VA + 4 * page, 0);
	check_va(&c, DATA_VA + 8 * page, -1);
	/* The first operation's range is taken, the third's free. */
	check_busy(&c, DATA_VA);
	hmmgpu_vm_map(fd, c.vm, c.bo[3], 0, DATA_VA + 8 * page, page, 0);
	check_va(&c, DATA_VA + 8 * page, 3);

	hmmgpu_ufences_free(uf);
	gate_fini(g);
	ctx_fini(&c);
}

/* A mode whose jobs have fences, for a fence that signals with an error. */
static uint32_t fence_mode(uint32_t mode)
{
	if (mode != DRM_HMMGPU_VM_MODE_FAULT)
		return mode;
	if (hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PREFAULT))
		return DRM_HMMGPU_VM_MODE_PREFAULT;
	return DRM_HMMGPU_VM_MODE_PINNED;
}

/*
 * async-wait-error: a queued bind whose wait sync signalled with an error
 * runs no operation and writes that error: the fence of a job that faulted
 * (-EFAULT; on a prefault or pinned VM, whose jobs have fences), as a binary
 * sync object and as a timeline point, and a sw_sync fence that signals
 * -ENOENT while the bind waits for it (its timeline goes). The binds queued
 * after them run.
 */
static void test_async_wait_error(uint32_t mode)
{
	uint32_t fmode = fence_mode(mode), bad, bad_tl;
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync syncs[2];
	struct drm_hmmgpu_exec exec;
	struct drm_hmmgpu_cmd cmd;
	struct hmmgpu_ufence *uf;
	struct ctx c, f;
	struct gate *g;

	igt_require_f(hmmgpu_has_vm_mode(fd, fmode), "no mode whose jobs have fences\n");
	require_sw_sync();
	ctx_init(&c, fd, mode);
	ctx_init(&f, fd, fmode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);

	/* A job that faults, signalling a binary sync object and a timeline point. */
	bad = syncobj_create(fd, 0);
	bad_tl = syncobj_create(fd, 0);
	hmmgpu_cmd_write64(&cmd, DATA_VA, 1);
	syncs[0] = hmmgpu_sync_signal(bad);
	syncs[1] = hmmgpu_sync_timeline_signal(bad_tl, 5);
	exec = (struct drm_hmmgpu_exec) {
		.vm_id = f.vm,
		.cmds = to_user_pointer(&cmd),
		.cmd_count = 1,
		.syncs = to_user_pointer(syncs),
		.num_syncs = 2,
	};
	hmmgpu_exec(fd, &exec);
	igt_assert_eq(hmmgpu_wait(fd, bad, JOB_WAIT_NS), -EFAULT);

	op = hmmgpu_bind_op_map(c.bo[0], DATA_VA, page);
	syncs[0] = hmmgpu_sync_wait(bad);
	syncs[1] = hmmgpu_ufence_sync(&uf[0], 1);
	bind_async(&c, &op, 1, syncs, 2);
	syncs[0] = hmmgpu_sync_timeline_wait(bad_tl, 5);
	syncs[1] = hmmgpu_ufence_sync(&uf[1], 1);
	bind_async(&c, &op, 1, syncs, 2);
	op = hmmgpu_bind_op_map(c.bo[1], DATA_VA + page, page);
	syncs[0] = hmmgpu_ufence_sync(&uf[2], 1);
	bind_async(&c, &op, 1, syncs, 1);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[0], 1, JOB_WAIT_NS), -EFAULT);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[1], 1, JOB_WAIT_NS), -EFAULT);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[2], 1, JOB_WAIT_NS), 0);
	check_va(&c, DATA_VA, -1);
	check_va(&c, DATA_VA + page, 1);
	check_free(&c, DATA_VA, page);

	/* A fence that signals with an error while the bind waits for it. */
	g = gate_new(fd);
	op = hmmgpu_bind_op_map(c.bo[2], DATA_VA + 2 * page, page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_ufence_sync(&uf[3], 1);
	bind_async(&c, &op, 1, syncs, 2);
	op = hmmgpu_bind_op_map(c.bo[3], DATA_VA + 3 * page, page);
	syncs[0] = hmmgpu_ufence_sync(&uf[4], 1);
	bind_async(&c, &op, 1, syncs, 1);
	igt_assert(hmmgpu_ufence_value(&uf[3]) == 0 && hmmgpu_ufence_value(&uf[4]) == 0);
	gate_break(g);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[3], 1, JOB_WAIT_NS), -ENOENT);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[4], 1, JOB_WAIT_NS), 0);
	check_va(&c, DATA_VA + 2 * page, -1);
	check_va(&c, DATA_VA + 3 * page, 3);
	check_free(&c, DATA_VA + 2 * page, page);

	gate_fini(g);
	syncobj_destroy(fd, bad);
	syncobj_destroy(fd, bad_tl);
	hmmgpu_ufences_free(uf);
	ctx_fini(&f);
	ctx_fini(&c);
}

/* An asynchronous bind of @op with @num_syncs syncs at @syncs on @c's VM, to change. */
static struct drm_hmmgpu_vm_bind async_arg(struct ctx *c, const struct drm_hmmgpu_vm_bind_op *op,
					   const struct drm_hmmgpu_sync *syncs,
					   uint32_t num_syncs)
{
	return (struct drm_hmmgpu_vm_bind) {
		.vm_id = c->vm,
		.num_ops = 1,
		.bind = *op,
		.syncs = to_user_pointer(syncs),
		.num_syncs = num_syncs,
		.flags = DRM_HMMGPU_VM_BIND_ASYNC,
	};
}

static void refused(struct ctx *c, struct drm_hmmgpu_vm_bind *arg, int err, const char *what)
{
	int ret = __vm_bind(c->fd, arg);

	igt_assert_f(ret == err, "%s: the call gave %d (%s), expected %d (%s)\n", what, ret,
		     strerror(-ret), err, strerror(-err));
}

/* Refuses @op, with a user fence @uf beside, changed no further. */
static void refused_op(struct ctx *c, const struct drm_hmmgpu_vm_bind_op *op,
		       struct hmmgpu_ufence *uf, int err, const char *what)
{
	struct drm_hmmgpu_sync sync = hmmgpu_ufence_sync(uf, 1);
	struct drm_hmmgpu_vm_bind arg = async_arg(c, op, &sync, 1);

	refused(c, &arg, err, what);
}

/* Refuses the valid @op with @sync (and the user fence @uf after it). */
static void refused_sync(struct ctx *c, const struct drm_hmmgpu_vm_bind_op *op,
			 struct drm_hmmgpu_sync sync, struct hmmgpu_ufence *uf, int err,
			 const char *what)
{
	struct drm_hmmgpu_sync syncs[2] = { sync, hmmgpu_ufence_sync(uf, 1) };
	struct drm_hmmgpu_vm_bind arg = async_arg(c, op, syncs, 2);

	refused(c, &arg, err, what);
}

/* 0 or -errno of a wait for @handle's @point (0: binary), until @deadline (absolute ns). */
static int syncobj_wait_point(uint32_t handle, uint64_t point, int64_t deadline, uint32_t flags)
{
	int err = drmSyncobjTimelineWait(fd, &handle, &point, 1, deadline, flags, NULL) ?
		  -errno : 0;

	errno = 0;
	return err;
}

/* The absolute CLOCK_MONOTONIC time @ns from now. */
static int64_t deadline_in(int64_t ns)
{
	struct timespec now;

	igt_assert_eq(clock_gettime(CLOCK_MONOTONIC, &now), 0);
	return (int64_t)now.tv_sec * NSEC_PER_SEC + now.tv_nsec + ns;
}

/* Waits (bounded) for @handle's @point (0: binary) to be there and signal. */
static void wait_submitted(uint32_t handle, uint64_t point)
{
	igt_assert_eq(syncobj_wait_point(handle, point, deadline_in(JOB_WAIT_NS),
					 DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT), 0);
}

/*
 * Asserts that sync object @handle holds a fence (at @point, if a timeline's)
 * that has not signalled: a plain wait, without waiting for submission, runs
 * out of time at once.
 */
static void unsignalled(uint32_t handle, uint64_t point, const char *what)
{
	int err = syncobj_wait_point(handle, point, 0, 0);

	igt_assert_f(err == -ETIME,
		     "%s: a wait gave %d, expected -ETIME (a fence not signalled yet)\n",
		     what, err);
}

/* Whether sync_file @sync_file has signalled, without waiting. */
static bool sync_file_signalled(int sync_file)
{
	struct pollfd pfd = { .fd = sync_file, .events = POLLIN };
	int n = poll(&pfd, 1, 0);

	igt_assert_lte(0, n);
	return n == 1;
}

/*
 * async-syncobj: an async bind that signals sync objects is fenced: they
 * have its fence from the call on, unsignalled while the bind is held back
 * by a gate (a plain wait runs out of time, an export gives a sync_file not
 * signalled yet), and a job given it as a wait sync is queued and waits.
 * The map is done by the call: a job that does not wait reads through it at
 * once. When the gate opens the fence, the timeline's point and the
 * sync_file signal with error 0, and the waiting job ends. A map over a
 * mapped range fails in the call with -EBUSY (@failed_op 0), its sync
 * objects getting a fence that signals -EBUSY; a held-back unmap of a VM
 * destroyed meanwhile signals -ECANCELED.
 */
static void test_async_syncobj(uint32_t mode)
{
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync syncs[3];
	struct drm_hmmgpu_cmd cmd;
	struct drm_hmmgpu_exec exec;
	struct hmmgpu_ufence *uf;
	uint32_t bin, tl, vm, failed;
	int sync_file = -1;
	struct gate *g;
	struct ctx c;

	require_sw_sync();
	ctx_init(&c, fd, mode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	g = gate_new(fd);
	bin = syncobj_create(fd, DRM_SYNCOBJ_CREATE_SIGNALED);
	tl = syncobj_create(fd, 0);

	op = hmmgpu_bind_op_map(c.bo[1], DATA_VA, page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_sync_signal(bin);
	syncs[2] = hmmgpu_sync_timeline_signal(tl, 5);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, &op, 1, syncs, 3, &failed), 0);

	unsignalled(bin, 0, "the binary sync object of a held-back bind");
	unsignalled(tl, 5, "the timeline point of a held-back bind");
	igt_assert_eq(drmSyncobjExportSyncFile(fd, bin, &sync_file), 0);
	igt_assert(!sync_file_signalled(sync_file));
	/* Mapped by the call. */
	check_va(&c, DATA_VA, 1);

	/* A job that waits for the bind: queued, and held back with it. */
	syncs[0] = hmmgpu_sync_wait(bin);
	syncs[1] = hmmgpu_ufence_sync(&uf[0], 1);
	hmmgpu_cmd_copy(&cmd, RES_VA + 8, DATA_VA, 4);
	exec = (struct drm_hmmgpu_exec) {
		.vm_id = c.vm,
		.cmds = to_user_pointer(&cmd),
		.cmd_count = 1,
		.syncs = to_user_pointer(syncs),
		.num_syncs = 2,
	};
	c.res[1] = 0;
	hmmgpu_exec(fd, &exec);
	ufence_unwritten(fd, &uf[0], "a job waiting for a held-back bind");

	gate_open(g);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[0], 1, JOB_WAIT_NS), 0);
	igt_assert_eq((uint32_t)c.res[1], obj_word(1));
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), 0);
	wait_submitted(tl, 5);
	igt_assert_eq(hmmgpu_point_error(fd, tl, 5), 0);
	igt_assert(sync_file_signalled(sync_file));
	close(sync_file);
	gate_fini(g);

	/* Fails in the call: the range is mapped. */
	op = hmmgpu_bind_op_map(c.bo[2], DATA_VA, page);
	syncs[0] = hmmgpu_sync_signal(bin);
	syncs[1] = hmmgpu_sync_timeline_signal(tl, 6);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, &op, 1, syncs, 2, &failed), -EBUSY);
	igt_assert_eq_u32(failed, 0);
	wait_submitted(tl, 6);
	igt_assert_eq(hmmgpu_point_error(fd, tl, 6), -EBUSY);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), -EBUSY);
	check_va(&c, DATA_VA, 1);

	/* Cancelled: the VM goes with an unmap held back. */
	g = gate_new(fd);
	vm = hmmgpu_vm_create(fd, mode);
	hmmgpu_vm_map(fd, vm, c.bo[0], 0, DATA_VA, page, 0);
	op = hmmgpu_bind_op_unmap(DATA_VA, page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_sync_signal(bin);
	syncs[2] = hmmgpu_sync_timeline_signal(tl, 7);
	hmmgpu_vm_bind_async(fd, vm, &op, 1, syncs, 3);
	unsignalled(bin, 0, "the binary sync object of an unmap held back");
	hmmgpu_vm_destroy(fd, vm);
	wait_submitted(tl, 7);
	igt_assert_eq(hmmgpu_point_error(fd, tl, 7), -ECANCELED);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), -ECANCELED);
	gate_fini(g);

	syncobj_destroy(fd, bin);
	syncobj_destroy(fd, tl);
	hmmgpu_ufences_free(uf);
	ctx_fini(&c);
}

/* What a job reads at @va, which must not fault. */
static uint32_t gpu_word(struct ctx *c, uint64_t va)
{
	int error;
	uint32_t word = gpu_read(c, va, &error);

	igt_assert_f(error == 0, "a job reading %#" PRIx64 " ended with %d\n", va, error);
	return word;
}

/*
 * A userptr of @size bytes of anonymous memory filled with pattern @seed (at
 * *@buf), mapped at DATA_VA in @c's VM and read there by jobs, page by page,
 * so that it has entries in every mode (faulted in, in fault mode). Returns
 * its handle.
 */
static uint32_t map_userptr_read(struct ctx *c, uint64_t size, uint32_t seed, char **buf)
{
	const uint32_t *words;
	uint32_t uptr;

	*buf = map_pattern(size, seed);
	words = (const uint32_t *)*buf;
	uptr = hmmgpu_userptr_create(c->fd, *buf, size, 0);
	hmmgpu_vm_map(c->fd, c->vm, uptr, 0, DATA_VA, size, 0);
	for (uint64_t off = 0; off < size; off += page)
		igt_assert_eq(gpu_word(c, DATA_VA + off), words[off / 4]);
	return uptr;
}

/*
 * async-fenced-unmap: a fenced unmap takes its range away in the call, but
 * its entries stay until its turn. Held back by a gate, an unmap of the two
 * middle pages of a four-page userptr mapping (which jobs have read, so that
 * it has entries) and of a GEM mapping: jobs still read every page of both. Once the gate opened and its fence
 * signalled, jobs fault on what it unmapped and read the pieces on either
 * side, and the ranges are free. An unmap whose gate signals with an error
 * is applied all the same, its fence signalling that error.
 */
static void test_async_fenced_unmap(uint32_t mode)
{
	const uint64_t size = 4 * page;
	struct drm_hmmgpu_vm_bind_op ops[2];
	struct drm_hmmgpu_sync syncs[2];
	uint32_t bin, uptr, failed;
	const uint32_t *words;
	struct gate *g;
	struct ctx c;
	char *buf;

	require_sw_sync();
	ctx_init(&c, fd, mode);
	bin = syncobj_create(fd, 0);
	/* With entries: those the unmap leaves until its turn. */
	uptr = map_userptr_read(&c, size, 7, &buf);
	words = (const uint32_t *)buf;
	hmmgpu_vm_map(fd, c.vm, c.bo[1], 0, DATA_VA + VA_STRIDE, page, 0);

	g = gate_new(fd);
	ops[0] = hmmgpu_bind_op_unmap(DATA_VA + page, 2 * page);
	ops[1] = hmmgpu_bind_op_unmap(DATA_VA + VA_STRIDE, page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_sync_signal(bin);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, ops, 2, syncs, 2, &failed), 0);
	unsignalled(bin, 0, "a held-back unmap");
	for (int i = 0; i < 4; i++)
		igt_assert_f(gpu_word(&c, DATA_VA + i * page) == words[i * page / 4],
			     "page %d of the userptr reads wrong before the unmap's turn\n", i);
	check_va(&c, DATA_VA + VA_STRIDE, 1);

	gate_open(g);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), 0);
	igt_assert_eq(gpu_word(&c, DATA_VA), words[0]);
	igt_assert_eq(gpu_word(&c, DATA_VA + 3 * page), words[3 * page / 4]);
	check_va(&c, DATA_VA + page, -1);
	check_va(&c, DATA_VA + 2 * page, -1);
	check_va(&c, DATA_VA + VA_STRIDE, -1);
	check_free(&c, DATA_VA + page, 2 * page);
	check_free(&c, DATA_VA + VA_STRIDE, page);
	gate_fini(g);

	/* Applied, though its wait sync signals -ENOENT. */
	g = gate_new(fd);
	ops[0] = hmmgpu_bind_op_unmap(DATA_VA, page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_sync_signal(bin);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, ops, 1, syncs, 2, &failed), 0);
	igt_assert_eq(gpu_word(&c, DATA_VA), words[0]);
	gate_break(g);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), -ENOENT);
	check_va(&c, DATA_VA, -1);
	check_free(&c, DATA_VA, page);
	igt_assert_eq(gpu_word(&c, DATA_VA + 3 * page), words[3 * page / 4]);
	gate_fini(g);

	hmmgpu_vm_unmap(fd, c.vm, DATA_VA, size);
	gem_close(fd, uptr);
	igt_assert_eq(munmap(buf, size), 0);
	syncobj_destroy(fd, bin);
	ctx_fini(&c);
}

/*
 * async-fenced-invalidate: what the CPU changes while a fenced unmap is held
 * back reaches the GPU, never the pages it replaced. A four-page userptr
 * mapping that jobs have read; a fenced unmap of its two middle pages, held
 * back; then MADV_DONTNEED of the first and last pages (the pieces the unmap
 * leaves) and new words written there: jobs read the new words before the
 * unmap's turn and after it. Then, with another unmap held back, the whole
 * CPU range goes (munmap): the turn comes, nothing reads freed memory (jobs
 * fault), and the sync object signals 0. A fenced unmap held back when its
 * file is closed signals -ECANCELED, seen through a sync_file exported
 * before.
 */
static void test_async_fenced_invalidate(uint32_t mode)
{
	const uint64_t size = 4 * page;
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync syncs[2];
	uint32_t bin, uptr, failed, vm2, bo2, bin2, imported;
	int fd2, sync_file = -1;
	struct timespec start;
	uint32_t *words;
	struct gate *g;
	struct ctx c;
	char *buf;

	require_sw_sync();
	ctx_init(&c, fd, mode);
	bin = syncobj_create(fd, 0);
	uptr = map_userptr_read(&c, size, 11, &buf);
	words = (uint32_t *)buf;

	g = gate_new(fd);
	op = hmmgpu_bind_op_unmap(DATA_VA + page, 2 * page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_sync_signal(bin);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, &op, 1, syncs, 2, &failed), 0);
	igt_assert_eq(madvise(buf, page, MADV_DONTNEED), 0);
	igt_assert_eq(madvise(buf + 3 * page, page, MADV_DONTNEED), 0);
	words[0] = 0x5eed0001;
	words[3 * page / 4] = 0x5eed0003;
	igt_assert_eq(gpu_word(&c, DATA_VA), 0x5eed0001);
	igt_assert_eq(gpu_word(&c, DATA_VA + 3 * page), 0x5eed0003);
	gate_open(g);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), 0);
	igt_assert_eq(gpu_word(&c, DATA_VA), 0x5eed0001);
	igt_assert_eq(gpu_word(&c, DATA_VA + 3 * page), 0x5eed0003);
	check_va(&c, DATA_VA + page, -1);
	gate_fini(g);

	/* The CPU range goes while an unmap of a piece is held back. */
	g = gate_new(fd);
	op = hmmgpu_bind_op_unmap(DATA_VA, page);
	syncs[0] = gate_sync(g);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, &op, 1, syncs, 2, &failed), 0);
	igt_assert_eq(munmap(buf, size), 0);
	check_va(&c, DATA_VA + 3 * page, -1);
	gate_open(g);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), 0);
	check_va(&c, DATA_VA, -1);
	check_va(&c, DATA_VA + 3 * page, -1);
	gate_fini(g);
	hmmgpu_vm_unmap(fd, c.vm, DATA_VA, size);
	gem_close(fd, uptr);

	/* The file goes with an unmap held back. */
	fd2 = drm_open_driver_render(DRIVER_HMMGPU);
	g = gate_new(fd2);
	vm2 = hmmgpu_vm_create(fd2, mode);
	bo2 = hmmgpu_gem_create(fd2, page);
	hmmgpu_vm_map(fd2, vm2, bo2, 0, DATA_VA, page, 0);
	bin2 = syncobj_create(fd2, 0);
	op = hmmgpu_bind_op_unmap(DATA_VA, page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_sync_signal(bin2);
	hmmgpu_vm_bind_async(fd2, vm2, &op, 1, syncs, 2);
	igt_assert_eq(drmSyncobjExportSyncFile(fd2, bin2, &sync_file), 0);
	igt_assert(!sync_file_signalled(sync_file));
	drm_close_driver(fd2);
	/* The gate's sync object went with its file. */
	g->syncobj = 0;
	igt_gettime(&start);
	while (!sync_file_signalled(sync_file)) {
		igt_assert_f(igt_seconds_elapsed(&start) < POLL_WAIT_S,
			     "the unmap of a closed file did not signal in %d s\n", POLL_WAIT_S);
		usleep(1000);
	}
	imported = syncobj_create(fd, 0);
	igt_assert_eq(drmSyncobjImportSyncFile(fd, imported, sync_file), 0);
	igt_assert_eq(hmmgpu_fence_error(fd, imported), -ECANCELED);
	close(sync_file);
	syncobj_destroy(fd, imported);
	gate_fini(g);

	syncobj_destroy(fd, bin);
	ctx_fini(&c);
}

/*
 * Jobs read the first word of each of the eight pages from DATA_VA: those
 * of @read (bit i for page i) must read @expected[i], those of @fault must
 * fault.
 */
static void check_pages(struct ctx *c, const uint32_t *expected, unsigned int read,
			unsigned int fault)
{
	for (unsigned int i = 0; i < 8; i++) {
		if (read & (1u << i))
			igt_assert_eq(gpu_word(c, DATA_VA + i * page), expected[i]);
		if (fault & (1u << i))
			check_va(c, DATA_VA + i * page, -1);
	}
}

/*
 * async-fenced-invalidate-hole: an invalidation of what a held-back fenced
 * unmap unmapped takes nothing from the pieces it leaves. A four-page
 * userptr mapping that jobs have read; a fenced unmap of its two middle
 * pages, held back; jobs read the pieces (which mirrors them again in
 * prefault mode: entries of their own; pinned mode pinned them in the
 * call); then MADV_DONTNEED of the middle pages and new words written
 * there. Jobs still read the pieces, before the unmap's turn and after it,
 * and the middle pages fault, never reading the pages they had. Then the
 * same with two unmaps held back, the second inside a piece the first left
 * (pages 1-2, then 5 of eight): an invalidation of the second's page takes
 * nothing from the pieces of either, nor does the first's turn.
 */
static void test_async_fenced_invalidate_hole(uint32_t mode)
{
	const uint64_t size = 4 * page;
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync syncs[2];
	uint32_t bin, bin2, uptr, failed;
	uint32_t *words, first, last, expected[8];
	struct gate *g, *g2;
	struct ctx c;
	char *buf;

	require_sw_sync();
	ctx_init(&c, fd, mode);
	bin = syncobj_create(fd, 0);
	uptr = map_userptr_read(&c, size, 17, &buf);
	words = (uint32_t *)buf;
	first = words[0];
	last = words[3 * page / 4];

	g = gate_new(fd);
	op = hmmgpu_bind_op_unmap(DATA_VA + page, 2 * page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_sync_signal(bin);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, &op, 1, syncs, 2, &failed), 0);
	igt_assert_eq(gpu_word(&c, DATA_VA), first);
	igt_assert_eq(gpu_word(&c, DATA_VA + 3 * page), last);
	igt_assert_eq(madvise(buf + page, 2 * page, MADV_DONTNEED), 0);
	words[page / 4] = 0x5eed0001;
	words[2 * page / 4] = 0x5eed0002;
	igt_assert_eq(gpu_word(&c, DATA_VA), first);
	igt_assert_eq(gpu_word(&c, DATA_VA + 3 * page), last);
	check_va(&c, DATA_VA + page, -1);
	check_va(&c, DATA_VA + 2 * page, -1);
	unsignalled(bin, 0, "a held-back unmap whose range was invalidated");

	gate_open(g);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), 0);
	igt_assert_eq(gpu_word(&c, DATA_VA), first);
	igt_assert_eq(gpu_word(&c, DATA_VA + 3 * page), last);
	check_va(&c, DATA_VA + page, -1);
	gate_fini(g);
	hmmgpu_vm_unmap(fd, c.vm, DATA_VA, size);
	gem_close(fd, uptr);
	igt_assert_eq(munmap(buf, size), 0);

	/* Nested: pages 1-2 of eight, then page 5, both held back. */
	uptr = map_userptr_read(&c, 2 * size, 19, &buf);
	words = (uint32_t *)buf;
	for (unsigned int i = 0; i < 8; i++)
		expected[i] = words[i * page / 4];
	bin2 = syncobj_create(fd, 0);
	g = gate_new(fd);
	g2 = gate_new(fd);
	op = hmmgpu_bind_op_unmap(DATA_VA + page, 2 * page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_sync_signal(bin);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, &op, 1, syncs, 2, &failed), 0);
	check_pages(&c, expected, 0xf9, 0);
	op = hmmgpu_bind_op_unmap(DATA_VA + 5 * page, page);
	syncs[0] = gate_sync(g2);
	syncs[1] = hmmgpu_sync_signal(bin2);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, &op, 1, syncs, 2, &failed), 0);
	check_pages(&c, expected, 0xd9, 0);
	igt_assert_eq(madvise(buf + 5 * page, page, MADV_DONTNEED), 0);
	words[5 * page / 4] = 0x5eed0005;
	check_pages(&c, expected, 0xd9, 0x20);
	gate_open(g);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), 0);
	unsignalled(bin2, 0, "an unmap held back behind one that took its turn");
	check_pages(&c, expected, 0xd9, 0x26);
	gate_open(g2);
	wait_submitted(bin2, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin2), 0);
	check_pages(&c, expected, 0xd9, 0x26);
	gate_fini(g2);
	gate_fini(g);
	syncobj_destroy(fd, bin2);

	hmmgpu_vm_unmap(fd, c.vm, DATA_VA, 2 * size);
	gem_close(fd, uptr);
	igt_assert_eq(munmap(buf, 2 * size), 0);
	syncobj_destroy(fd, bin);
	ctx_fini(&c);
}

/*
 * Queues a job that waits for @bin's fence and copies the first words of
 * pages 0 and 3 from DATA_VA to the result object, its user fence @uf
 * written with 1 when it is done.
 */
static void queue_read_edges(struct ctx *c, uint32_t bin, struct hmmgpu_ufence *uf)
{
	struct drm_hmmgpu_cmd cmds[2];
	struct drm_hmmgpu_sync syncs[2];
	struct drm_hmmgpu_exec exec;

	hmmgpu_cmd_copy(&cmds[0], RES_VA + 8, DATA_VA, 4);
	hmmgpu_cmd_copy(&cmds[1], RES_VA + 16, DATA_VA + 3 * page, 4);
	syncs[0] = hmmgpu_sync_wait(bin);
	syncs[1] = hmmgpu_ufence_sync(uf, 1);
	exec = (struct drm_hmmgpu_exec) {
		.vm_id = c->vm,
		.cmds = to_user_pointer(cmds),
		.cmd_count = 2,
		.syncs = to_user_pointer(syncs),
		.num_syncs = 2,
	};
	c->res[1] = 0;
	c->res[2] = 0;
	hmmgpu_exec(c->fd, &exec);
}

/*
 * Opens @g, and asserts that the job queue_read_edges() queued behind the
 * unmap it holds back read @first and @last, and that the unmap's fence
 * (@bin's) signalled 0.
 */
static void check_queued_read(struct ctx *c, struct gate *g, uint32_t bin,
			      struct hmmgpu_ufence *uf, uint32_t first, uint32_t last)
{
	int64_t err;

	ufence_unwritten(c->fd, uf, "a job waiting for a held-back unmap");
	gate_open(g);
	err = hmmgpu_ufence_wait(c->fd, uf, 1, JOB_WAIT_NS);
	igt_assert_f(err == 0, "a job queued behind a fenced unmap ended with %" PRId64 "\n", err);
	igt_assert_eq_u32((uint32_t)c->res[1], first);
	igt_assert_eq_u32((uint32_t)c->res[2], last);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(c->fd, bin), 0);
}

/*
 * async-fenced-unmap-queued-job: a job queued behind a held-back fenced
 * unmap (it waits for the unmap's sync object, as the uAPI asks) reads the
 * pieces the unmap leaves once the turn came, also when they have entries
 * of their own by then: in prefault mode the job's submission mirrors them,
 * in pinned mode the call pinned them. First on a four-page userptr mapping
 * whose entries an invalidation cleared before the call (MADV_DONTNEED of
 * page 1); then on one that jobs have read, whose first page the CPU
 * discards and writes again after the call. The unmap takes pages 1-2.
 */
static void test_async_fenced_unmap_queued_job(uint32_t mode)
{
	const uint64_t size = 4 * page;
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync syncs[2];
	struct hmmgpu_ufence *uf;
	uint32_t bin, uptr, failed;
	uint32_t *words;
	struct gate *g;
	struct ctx c;
	char *buf;

	require_sw_sync();
	ctx_init(&c, fd, mode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	bin = syncobj_create(fd, 0);
	op = hmmgpu_bind_op_unmap(DATA_VA + page, 2 * page);

	/* No current entries: cleared before the call. */
	buf = map_pattern(size, 23);
	words = (uint32_t *)buf;
	uptr = hmmgpu_userptr_create(fd, buf, size, 0);
	hmmgpu_vm_map(fd, c.vm, uptr, 0, DATA_VA, size, 0);
	igt_assert_eq(madvise(buf + page, page, MADV_DONTNEED), 0);
	g = gate_new(fd);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_sync_signal(bin);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, &op, 1, syncs, 2, &failed), 0);
	queue_read_edges(&c, bin, &uf[0]);
	check_queued_read(&c, g, bin, &uf[0], words[0], words[3 * page / 4]);
	gate_fini(g);
	igt_assert_eq(gpu_word(&c, DATA_VA), words[0]);
	igt_assert_eq(gpu_word(&c, DATA_VA + 3 * page), words[3 * page / 4]);
	check_va(&c, DATA_VA + page, -1);
	hmmgpu_vm_unmap(fd, c.vm, DATA_VA, size);
	gem_close(fd, uptr);
	igt_assert_eq(munmap(buf, size), 0);

	/* A piece invalidated after the call. */
	uptr = map_userptr_read(&c, size, 29, &buf);
	words = (uint32_t *)buf;
	g = gate_new(fd);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_sync_signal(bin);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, &op, 1, syncs, 2, &failed), 0);
	igt_assert_eq(madvise(buf, page, MADV_DONTNEED), 0);
	words[0] = 0x5eed0000;
	queue_read_edges(&c, bin, &uf[1]);
	check_queued_read(&c, g, bin, &uf[1], 0x5eed0000, words[3 * page / 4]);
	gate_fini(g);
	check_va(&c, DATA_VA + 2 * page, -1);
	hmmgpu_vm_unmap(fd, c.vm, DATA_VA, size);
	gem_close(fd, uptr);
	igt_assert_eq(munmap(buf, size), 0);

	syncobj_destroy(fd, bin);
	hmmgpu_ufences_free(uf);
	ctx_fini(&c);
}

/*
 * async-fenced-unmap-nested-queued-job: a job that waits for a gate, queued
 * before two fenced unmaps, the second inside a piece the first left (pages
 * 5, then 1-2 of eight, each held back by a gate of its own), reads pages 0
 * and 3 once both turns came: the first turn leaves the piece's entries to
 * the piece, cut again, and the second leaves them to its pieces.
 */
static void test_async_fenced_unmap_nested_queued_job(uint32_t mode)
{
	const uint64_t size = 8 * page;
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync syncs[2];
	struct hmmgpu_ufence *uf;
	uint32_t bin, bin2, uptr, failed;
	struct gate *g0, *g1, *g2;
	const uint32_t *words;
	struct ctx c;
	int64_t err;
	char *buf;

	require_sw_sync();
	ctx_init(&c, fd, mode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	bin = syncobj_create(fd, 0);
	bin2 = syncobj_create(fd, 0);
	uptr = map_userptr_read(&c, size, 31, &buf);
	words = (const uint32_t *)buf;

	g0 = gate_new(fd);
	queue_read_edges(&c, g0->syncobj, &uf[0]);
	g1 = gate_new(fd);
	op = hmmgpu_bind_op_unmap(DATA_VA + 5 * page, page);
	syncs[0] = gate_sync(g1);
	syncs[1] = hmmgpu_sync_signal(bin);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, &op, 1, syncs, 2, &failed), 0);
	g2 = gate_new(fd);
	op = hmmgpu_bind_op_unmap(DATA_VA + page, 2 * page);
	syncs[0] = gate_sync(g2);
	syncs[1] = hmmgpu_sync_signal(bin2);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, &op, 1, syncs, 2, &failed), 0);

	gate_open(g1);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), 0);
	gate_open(g2);
	wait_submitted(bin2, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin2), 0);
	ufence_unwritten(fd, &uf[0], "a job waiting for its gate");
	gate_open(g0);
	err = hmmgpu_ufence_wait(fd, &uf[0], 1, JOB_WAIT_NS);
	igt_assert_f(err == 0, "a job queued before two nested fenced unmaps ended with %"
		     PRId64 "\n", err);
	igt_assert_eq_u32((uint32_t)c.res[1], words[0]);
	igt_assert_eq_u32((uint32_t)c.res[2], words[3 * page / 4]);
	check_va(&c, DATA_VA + page, -1);
	check_va(&c, DATA_VA + 5 * page, -1);
	gate_fini(g2);
	gate_fini(g1);
	gate_fini(g0);

	hmmgpu_vm_unmap(fd, c.vm, DATA_VA, size);
	gem_close(fd, uptr);
	igt_assert_eq(munmap(buf, size), 0);
	syncobj_destroy(fd, bin2);
	syncobj_destroy(fd, bin);
	hmmgpu_ufences_free(uf);
	ctx_fini(&c);
}

/* The sum of the 32-bit words of [@va, @va + @size), by a job, which must not fault. */
static uint64_t gpu_sum(struct ctx *c, uint64_t va, uint64_t size)
{
	struct drm_hmmgpu_cmd cmd;
	int error;

	c->res[0] = 0;
	hmmgpu_cmd_checksum(&cmd, RES_VA, va, size);
	error = hmmgpu_exec_job(c->fd, c->vm, &cmd, 1, 0);
	igt_assert_f(error == 0, "a checksum of [%#" PRIx64 ", +%#" PRIx64 ") ended with %d\n",
		     va, size, error);
	return c->res[0];
}

/*
 * async-fenced-unmap-thp: async-fenced-unmap on transparent huge pages. A
 * 4 MiB userptr of a 2 MiB-aligned buffer the CPU backs with huge pages, at a
 * 2 MiB-aligned address, summed whole by a job (so that it has 2 MiB
 * entries), and a fenced unmap, held back, of one page inside the first huge
 * page, whose 2 MiB entry both its edges cut: until its turn a job's sum of
 * the whole range is the CPU's, and a job writes the page before the hole
 * (mapped by the piece beside it); then MADV_DONTNEED of the hole's page:
 * it faults, the pieces' sums are still the CPU's; after the turn too, and
 * in a job queued behind the unmap.
 */
static void test_async_fenced_unmap_thp(uint32_t mode)
{
	const uint64_t size = 4ull << 20, hole = 1ull << 20;
	struct drm_hmmgpu_vm_stats st;
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync syncs[2];
	struct drm_hmmgpu_cmd cmd;
	struct hmmgpu_ufence *uf;
	uint32_t bin, uptr, failed;
	uint64_t map_size;
	struct gate *g;
	struct ctx c;
	void *map;
	char *buf;

	igt_require_f(hmmgpu_thp_enabled(), "transparent huge pages are not enabled\n");
	require_sw_sync();
	buf = hmmgpu_thp_alloc(size, 13, &map, &map_size);
	hmmgpu_require_thp(map, map_size, buf, size / 1024);
	ctx_init(&c, fd, mode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	bin = syncobj_create(fd, 0);
	uptr = hmmgpu_userptr_create(fd, buf, size, 0);
	hmmgpu_vm_map(fd, c.vm, uptr, 0, DATA_VA, size, 0);
	igt_assert_eq_u64(gpu_sum(&c, DATA_VA, size), cpu_checksum(buf, size));
	hmmgpu_vm_stats(fd, c.vm, &st);
	igt_assert_f(st.entries_2m >= 1, "no 2 MiB entry for the huge pages\n");

	g = gate_new(fd);
	op = hmmgpu_bind_op_unmap(DATA_VA + hole, page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_sync_signal(bin);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, &op, 1, syncs, 2, &failed), 0);
	unsignalled(bin, 0, "a held-back unmap inside a huge page");
	igt_assert_eq_u64(gpu_sum(&c, DATA_VA, size), cpu_checksum(buf, size));
	hmmgpu_cmd_fill(&cmd, DATA_VA + hole - page, page, FILL_WORD);
	igt_assert_eq(hmmgpu_exec_job(fd, c.vm, &cmd, 1, 0), 0);
	for (unsigned int i = 0; i < page / 4; i++)
		igt_assert_eq_u32(((uint32_t *)(buf + hole - page))[i], FILL_WORD);
	igt_assert_eq_u64(gpu_sum(&c, DATA_VA, size), cpu_checksum(buf, size));
	/* The hole's page goes from the CPU (splitting its huge page): pieces still read. */
	igt_assert_eq(madvise(buf + hole, page, MADV_DONTNEED), 0);
	check_va(&c, DATA_VA + hole, -1);
	igt_assert_eq_u64(gpu_sum(&c, DATA_VA, hole), cpu_checksum(buf, hole));
	igt_assert_eq_u64(gpu_sum(&c, DATA_VA + hole + page, size - hole - page),
			  cpu_checksum(buf + hole + page, size - hole - page));
	/* A job queued behind the unmap sums the first piece once the turn came. */
	hmmgpu_cmd_checksum(&cmd, RES_VA + 8, DATA_VA, hole);
	syncs[0] = hmmgpu_sync_wait(bin);
	syncs[1] = hmmgpu_ufence_sync(&uf[0], 1);
	c.res[1] = 0;
	hmmgpu_exec(fd, &(struct drm_hmmgpu_exec){ .vm_id = c.vm,
			.cmds = to_user_pointer(&cmd), .cmd_count = 1,
			.syncs = to_user_pointer(syncs), .num_syncs = 2 });

	gate_open(g);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[0], 1, JOB_WAIT_NS), 0);
	igt_assert_eq_u64(c.res[1], cpu_checksum(buf, hole));
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), 0);
	check_va(&c, DATA_VA + hole, -1);
	igt_assert_eq_u64(gpu_sum(&c, DATA_VA, hole), cpu_checksum(buf, hole));
	igt_assert_eq_u64(gpu_sum(&c, DATA_VA + hole + page, size - hole - page),
			  cpu_checksum(buf + hole + page, size - hole - page));
	check_free(&c, DATA_VA + hole, page);
	gate_fini(g);

	hmmgpu_vm_unmap(fd, c.vm, DATA_VA, size);
	gem_close(fd, uptr);
	igt_assert_eq(munmap(map, map_size), 0);
	syncobj_destroy(fd, bin);
	hmmgpu_ufences_free(uf);
	ctx_fini(&c);
}

/*
 * async-fenced-reuse: a fenced map over a range that a held-back fenced
 * unmap took away waits in its call until the unmap's turn has cleared it
 * (another thread opens the gate), then maps it. In one bind, an unmap and
 * then a map of the same range: the map fails with -EBUSY (@failed_op 1),
 * the unmap is done, and the bind's fence signals -EBUSY. A fenced bind's
 * call waits for an unfenced bind queued before it (held back by a gate
 * another thread opens) to have run, and its user fence is written with
 * its error once its fence signalled.
 */
static void test_async_fenced_reuse(uint32_t mode)
{
	struct drm_hmmgpu_vm_bind_op ops[2];
	struct drm_hmmgpu_sync syncs[2];
	struct sw_sync_opener o;
	struct hmmgpu_ufence *uf;
	uint32_t bin, failed;
	struct gate *g;
	struct ctx c;

	require_sw_sync();
	ctx_init(&c, fd, mode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	bin = syncobj_create(fd, 0);
	hmmgpu_vm_map(fd, c.vm, c.bo[0], 0, DATA_VA, page, 0);

	g = gate_new(fd);
	ops[0] = hmmgpu_bind_op_unmap(DATA_VA, page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_sync_signal(bin);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, ops, 1, syncs, 2, &failed), 0);
	sw_sync_open_later(&o, g->tl);
	ops[0] = hmmgpu_bind_op_map(c.bo[1], DATA_VA, page);
	syncs[0] = hmmgpu_sync_signal(bin);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, ops, 1, syncs, 1, &failed), 0);
	igt_assert_f(sw_sync_opened(&o),
		     "a map returned before the unmap it follows had its turn\n");
	sw_sync_opener_join(&o);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), 0);
	check_va(&c, DATA_VA, 1);
	gate_fini(g);

	ops[0] = hmmgpu_bind_op_unmap(DATA_VA, page);
	ops[1] = hmmgpu_bind_op_map(c.bo[2], DATA_VA, page);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, ops, 2, syncs, 1, &failed), -EBUSY);
	igt_assert_eq_u32(failed, 1);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), -EBUSY);
	check_va(&c, DATA_VA, -1);
	check_free(&c, DATA_VA, page);

	/* Behind an unfenced bind, which its call waits for. */
	g = gate_new(fd);
	ops[0] = hmmgpu_bind_op_map(c.bo[3], DATA_VA + VA_STRIDE, page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_ufence_sync(&uf[0], 1);
	bind_async(&c, ops, 1, syncs, 2);
	sw_sync_open_later(&o, g->tl);
	ops[0] = hmmgpu_bind_op_map(c.bo[2], DATA_VA, page);
	syncs[0] = hmmgpu_sync_signal(bin);
	syncs[1] = hmmgpu_ufence_sync(&uf[1], 1);
	igt_assert_eq(__hmmgpu_vm_bind_fenced(fd, c.vm, ops, 1, syncs, 2, &failed), 0);
	igt_assert_f(sw_sync_opened(&o) && hmmgpu_ufence_value(&uf[0]) == 1,
		     "a fenced bind returned before the unfenced bind queued before it ran\n");
	sw_sync_opener_join(&o);
	igt_assert_eq_s64(hmmgpu_ufence_error(&uf[0]), 0);
	wait_submitted(bin, 0);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), 0);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[1], 1, JOB_WAIT_NS), 0);
	check_va(&c, DATA_VA, 2);
	check_va(&c, DATA_VA + VA_STRIDE, 3);
	gate_fini(g);

	syncobj_destroy(fd, bin);
	hmmgpu_ufences_free(uf);
	ctx_fini(&c);
}

/*
 * async-invalid: the call refuses, with nothing queued and the sync objects
 * to signal untouched, a timeline point 0 to signal, a binary sync object to
 * signal beside an operation not valid (-EINVAL), an unknown one to signal
 * (-ENOENT); unknown flags and a non-zero pad of the bind; an unknown op,
 * op flag, a non-zero op pad, an UNMAP with a handle or an offset, an
 * unaligned address, size or offset, an empty range, one past the 48-bit
 * address space or wrapping; a user fence to wait for, a misaligned one, an
 * unknown sync type, a sync object without a fence, too many syncs or
 * operations (-EINVAL); an unknown object, VM or sync object (-ENOENT);
 * arrays it cannot read, a user fence outside the user address space
 * (-EFAULT). Every refused call carries a user fence, and none is written:
 * a bind queued after them runs and writes its own, and the refused ranges
 * are free.
 */
static void test_async_invalid(uint32_t mode)
{
	struct drm_hmmgpu_sync syncs[HMMGPU_MAX_SYNCS + 1], sync;
	struct drm_hmmgpu_vm_bind_op op, base, *many;
	struct drm_hmmgpu_vm_bind arg;
	uint32_t bin, tl, empty, signalled;
	struct hmmgpu_ufence *uf, *nope;
	int sync_file = -1;
	uint64_t point;
	struct ctx c;

	ctx_init(&c, fd, mode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	/* The fence of every refused call. */
	nope = &uf[1];
	bin = syncobj_create(fd, 0);
	tl = syncobj_create(fd, 0);
	empty = syncobj_create(fd, 0);
	signalled = syncobj_create(fd, DRM_SYNCOBJ_CREATE_SIGNALED);
	base = hmmgpu_bind_op_map(c.bo[0], DATA_VA, page);

	/* Sync objects to signal: a refused call leaves them as they were. */
	refused_sync(&c, &base, hmmgpu_sync_timeline_signal(tl, 0), nope, -EINVAL,
		     "a timeline point 0 to signal");
	refused_sync(&c, &base, hmmgpu_sync_signal(bin + 1000), nope, -ENOENT,
		     "an unknown sync object to signal");
	op = base;
	op.pad = 1;
	refused_sync(&c, &op, hmmgpu_sync_signal(signalled), nope, -EINVAL,
		     "a binary sync object to signal, beside an operation not valid");
	refused_sync(&c, &op, hmmgpu_sync_timeline_signal(tl, 1), nope, -EINVAL,
		     "a timeline point to signal, beside an operation not valid");
	igt_assert_eq(hmmgpu_fence_error(fd, signalled), 0);
	igt_assert_eq(drmSyncobjExportSyncFile(fd, bin, &sync_file) ? -errno : 0, -EINVAL);
	errno = 0;
	point = ~0ull;
	igt_assert_eq(drmSyncobjQuery(fd, &tl, &point, 1), 0);
	igt_assert_eq_u64(point, 0);

	/* The bind's flags and pad. */
	sync = hmmgpu_ufence_sync(nope, 1);
	arg = async_arg(&c, &base, &sync, 1);
	arg.flags |= 1u << 1;
	refused(&c, &arg, -EINVAL, "an unknown flag beside DRM_HMMGPU_VM_BIND_ASYNC");
	arg.flags = 1u << 31;
	refused(&c, &arg, -EINVAL, "an unknown flag, synchronous");
	arg.flags = ~0u;
	refused(&c, &arg, -EINVAL, "every flag");
	arg.flags = DRM_HMMGPU_VM_BIND_ASYNC;
	arg.pad = 1;
	refused(&c, &arg, -EINVAL, "a non-zero pad");

	/* Operations. */
	op = base;
	op.op = DRM_HMMGPU_VM_BIND_UNMAP + 1;
	refused_op(&c, &op, nope, -EINVAL, "an unknown op");
	op = base;
	op.pad = 1;
	refused_op(&c, &op, nope, -EINVAL, "a non-zero op pad");
	op = base;
	op.flags = DRM_HMMGPU_VM_BIND_READ_ONLY << 1;
	refused_op(&c, &op, nope, -EINVAL, "an unknown op flag");
	op = hmmgpu_bind_op_unmap(DATA_VA, page);
	op.handle = c.bo[0];
	refused_op(&c, &op, nope, -EINVAL, "an UNMAP with a handle");
	op = hmmgpu_bind_op_unmap(DATA_VA, page);
	op.offset = page;
	refused_op(&c, &op, nope, -EINVAL, "an UNMAP with an offset");
	op = hmmgpu_bind_op_unmap(DATA_VA, page);
	op.flags = DRM_HMMGPU_VM_BIND_READ_ONLY;
	refused_op(&c, &op, nope, -EINVAL, "an UNMAP with a flag");
	op = base;
	op.va += page / 2;
	refused_op(&c, &op, nope, -EINVAL, "an unaligned address");
	op = hmmgpu_bind_op_map(c.scratch, DATA_VA, page + page / 2);
	refused_op(&c, &op, nope, -EINVAL, "an unaligned size");
	op = base;
	op.offset = 8;
	refused_op(&c, &op, nope, -EINVAL, "an unaligned offset");
	op = base;
	op.size = 0;
	refused_op(&c, &op, nope, -EINVAL, "an empty range");
	op = hmmgpu_bind_op_unmap(DATA_VA, 0);
	refused_op(&c, &op, nope, -EINVAL, "an empty UNMAP");
	op = hmmgpu_bind_op_map(c.scratch, VA_END - page, 2 * page);
	refused_op(&c, &op, nope, -EINVAL, "a range past 48 bits");
	op = hmmgpu_bind_op_map(c.scratch, VA_END, page);
	refused_op(&c, &op, nope, -EINVAL, "a range at 2^48");
	op = hmmgpu_bind_op_map(c.scratch, ~0ull & ~(uint64_t)(page - 1), 2 * page);
	refused_op(&c, &op, nope, -EINVAL, "a range that wraps");

	/* Syncs. */
	sync = hmmgpu_ufence_sync(&uf[2], 1);
	sync.flags = 0;
	refused_sync(&c, &base, sync, nope, -EINVAL, "a user fence to wait for");
	sync = hmmgpu_ufence_sync(&uf[2], 1);
	sync.addr += 4;
	refused_sync(&c, &base, sync, nope, -EINVAL, "a misaligned user fence");
	sync = hmmgpu_ufence_sync(&uf[2], 1);
	sync.type = DRM_HMMGPU_SYNC_USER_FENCE + 1;
	refused_sync(&c, &base, sync, nope, -EINVAL, "an unknown sync type");
	refused_sync(&c, &base, hmmgpu_sync_wait(empty), nope, -EINVAL,
		     "a sync object without a fence to wait for");
	for (unsigned int i = 0; i < HMMGPU_MAX_SYNCS; i++)
		syncs[i] = hmmgpu_sync_wait(signalled);
	syncs[HMMGPU_MAX_SYNCS] = hmmgpu_ufence_sync(nope, 1);
	arg = async_arg(&c, &base, syncs, HMMGPU_MAX_SYNCS + 1);
	refused(&c, &arg, -EINVAL, "17 syncs");
	many = calloc(HMMGPU_VM_BIND_MAX_OPS + 1, sizeof(*many));
	igt_assert(many);
	for (unsigned int i = 0; i <= HMMGPU_VM_BIND_MAX_OPS; i++)
		many[i] = hmmgpu_bind_op_map(c.bo[i % BIND_OBJS], DATA_VA + (uint64_t)i * page,
					     page);
	sync = hmmgpu_ufence_sync(nope, 1);
	arg = async_arg(&c, &base, &sync, 1);
	arg.bind = (struct drm_hmmgpu_vm_bind_op) {};
	arg.num_ops = HMMGPU_VM_BIND_MAX_OPS + 1;
	arg.ops = to_user_pointer(many);
	refused(&c, &arg, -EINVAL, "513 operations");
	free(many);

	/* Unknown handles. */
	op = base;
	op.handle = 0xdeadbeef;
	refused_op(&c, &op, nope, -ENOENT, "an unknown object");
	refused_sync(&c, &base, hmmgpu_sync_wait(0xdeadbeef), nope, -ENOENT,
		     "an unknown sync object");
	sync = hmmgpu_ufence_sync(nope, 1);
	arg = async_arg(&c, &base, &sync, 1);
	arg.vm_id = 0;
	refused(&c, &arg, -ENOENT, "VM 0");
	arg.vm_id = 0xdeadbeef;
	refused(&c, &arg, -ENOENT, "an unknown VM");

	/* What the call cannot read, or write. */
	arg = async_arg(&c, &base, &sync, 1);
	arg.bind = (struct drm_hmmgpu_vm_bind_op) {};
	arg.num_ops = 2;
	refused(&c, &arg, -EFAULT, "an operation array at NULL");
	arg = async_arg(&c, &base, NULL, 1);
	refused(&c, &arg, -EFAULT, "a sync array at NULL");
	sync = hmmgpu_ufence_sync(&uf[2], 1);
	sync.addr = 0xffff800000000000ull;
	refused_sync(&c, &base, sync, nope, -EFAULT, "a user fence in the kernel's half");
	sync = hmmgpu_ufence_sync(&uf[2], 1);
	sync.error_addr = 0xffffffffff600000ull;
	refused_sync(&c, &base, sync, nope, -EFAULT, "an error word in the kernel's half");

	/* Nothing was queued: the bind after them writes its fence, theirs are not. */
	op = hmmgpu_bind_op_map(c.bo[1], DATA_VA + VA_STRIDE, page);
	sync = hmmgpu_ufence_sync(&uf[0], 1);
	bind_async(&c, &op, 1, &sync, 1);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[0], 1, JOB_WAIT_NS), 0);
	igt_assert_f(hmmgpu_ufence_value(nope) == 0, "a refused bind wrote its user fence\n");
	igt_assert_eq_u64(hmmgpu_ufence_value(&uf[2]), 0);
	check_va(&c, DATA_VA + VA_STRIDE, 1);
	check_va(&c, DATA_VA, -1);
	check_free(&c, DATA_VA, SCRATCH_PAGES * page);
	check_free(&c, VA_END - page, page);

	syncobj_destroy(fd, bin);
	syncobj_destroy(fd, tl);
	syncobj_destroy(fd, empty);
	syncobj_destroy(fd, signalled);
	hmmgpu_ufences_free(uf);
	ctx_fini(&c);
}

/*
 * async-cancel: binds queued behind a fence that never signals end with
 * -ECANCELED when their VM is destroyed (the call does not wait for the
 * fence, and returns with their user fences written), and when their file
 * is closed: the kernel then writes the user
 * fences from a worker, in the memory of this process, which the test reads.
 */
static void test_async_cancel(uint32_t mode)
{
	const uint64_t size = 2 * page;
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync syncs[2];
	uint32_t vm, uptr, vm2, uptr2, bo2;
	struct hmmgpu_ufence *uf;
	struct gate *g;
	struct ctx c;
	char *buf;
	int fd2;

	require_sw_sync();
	ctx_init(&c, fd, mode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	buf = map_pattern(size, 1);

	/* VM_DESTROY. */
	g = gate_new(fd);
	vm = hmmgpu_vm_create(fd, mode);
	uptr = hmmgpu_userptr_create(fd, buf, size, 0);
	op = hmmgpu_bind_op_map(uptr, DATA_VA, size);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_ufence_sync(&uf[0], 1);
	hmmgpu_vm_bind_async(fd, vm, &op, 1, syncs, 2);
	op = hmmgpu_bind_op_map(c.bo[0], DATA_VA + VA_STRIDE, page);
	syncs[0] = hmmgpu_ufence_sync(&uf[1], 1);
	hmmgpu_vm_bind_async(fd, vm, &op, 1, syncs, 1);
	igt_assert(hmmgpu_ufence_value(&uf[0]) == 0 && hmmgpu_ufence_value(&uf[1]) == 0);

	hmmgpu_vm_destroy(fd, vm);
	/* VM_DESTROY returns with the user fences of its binds written. */
	igt_assert_f(hmmgpu_ufence_value(&uf[0]) == 1 && hmmgpu_ufence_value(&uf[1]) == 1,
		     "VM_DESTROY returned before its binds' user fences were written\n");
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[0], 1, JOB_WAIT_NS), -ECANCELED);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[1], 1, JOB_WAIT_NS), -ECANCELED);
	igt_assert_eq(__hmmgpu_vm_bind_async(fd, vm, &op, 1, NULL, 0), -ENOENT);
	gate_fini(g);
	gem_close(fd, uptr);

	/* close() of the file: no GEM object of it mapped by the CPU, to keep it open. */
	fd2 = drm_open_driver_render(DRIVER_HMMGPU);
	g = gate_new(fd2);
	vm2 = hmmgpu_vm_create(fd2, mode);
	uptr2 = hmmgpu_userptr_create(fd2, buf, size, 0);
	bo2 = hmmgpu_gem_create(fd2, page);
	op = hmmgpu_bind_op_map(uptr2, DATA_VA, size);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_ufence_sync(&uf[2], 1);
	hmmgpu_vm_bind_async(fd2, vm2, &op, 1, syncs, 2);
	op = hmmgpu_bind_op_map(bo2, DATA_VA + VA_STRIDE, page);
	syncs[0] = hmmgpu_ufence_sync(&uf[3], 1);
	hmmgpu_vm_bind_async(fd2, vm2, &op, 1, syncs, 1);
	igt_assert(hmmgpu_ufence_value(&uf[2]) == 0 && hmmgpu_ufence_value(&uf[3]) == 0);

	drm_close_driver(fd2);
	/* The gate's sync object went with its file. */
	g->syncobj = 0;
	igt_assert_eq(ufence_poll(&uf[2], 1), -ECANCELED);
	igt_assert_eq(ufence_poll(&uf[3], 1), -ECANCELED);
	gate_fini(g);

	igt_assert_eq(munmap(buf, size), 0);
	hmmgpu_ufences_free(uf);
	ctx_fini(&c);
}

/*
 * async-uffd: an unfenced bind runs on a worker, which never waits for a
 * userfaultfd handler (only a fatal signal, which a worker never gets, would
 * end the wait): in pinned mode a map of a userptr whose pages only the
 * handler could bring in ends with -EFAULT in its user fence, and the handler
 * hears of no fault; in the other modes the map does not touch the pages, and
 * succeeds. Destroying the VM then returns.
 */
static void test_async_uffd(uint32_t mode)
{
	const uint64_t size = 4 * page;
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync sync;
	struct hmmgpu_ufence *uf;
	uint32_t uptr;
	struct ctx c;
	void *area;
	int uffd;

	ctx_init(&c, fd, mode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	area = hmmgpu_uffd_area(size, &uffd);
	uptr = hmmgpu_userptr_create(fd, area, size, 0);
	op = hmmgpu_bind_op_map(uptr, DATA_VA, size);
	sync = hmmgpu_ufence_sync(&uf[0], 1);
	bind_async(&c, &op, 1, &sync, 1);
	igt_assert_eq(ufence_poll(&uf[0], 1), mode == DRM_HMMGPU_VM_MODE_PINNED ? -EFAULT : 0);
	igt_assert_f(!hmmgpu_uffd_pending(uffd),
		     "a bind's worker waited for a userfaultfd handler\n");
	ctx_fini(&c);
	gem_close(fd, uptr);
	hmmgpu_ufences_free(uf);
	igt_assert_eq(munmap(area, size), 0);
	close(uffd);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/*
 * async-then-sync: a synchronous bind waits for the binds queued on its VM
 * before it: with one held back by a gate that another thread opens later,
 * it returns after the gate opened and the queued bind's user fence was
 * written. A synchronous bind on another VM does not wait for this VM's
 * queue. Interrupted by a signal (a handler without SA_RESTART) while it
 * waits, a synchronous bind returns -EINTR and does nothing.
 */
static void test_async_then_sync(uint32_t mode)
{
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	/* Repeating: however late the ioctl starts, a signal comes while it waits. */
	struct itimerval timer = {
		.it_value = { .tv_usec = 200000 },
		.it_interval = { .tv_usec = 200000 },
	}, stop = {};
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync syncs[2];
	struct drm_hmmgpu_vm_bind arg;
	struct sw_sync_opener o;
	struct hmmgpu_ufence *uf;
	struct ctx c, other;
	struct gate *g;
	int err;

	require_sw_sync();
	ctx_init(&c, fd, mode);
	ctx_init(&other, fd, mode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);

	/* Waits for the queue. */
	g = gate_new(fd);
	op = hmmgpu_bind_op_map(c.bo[0], DATA_VA, page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_ufence_sync(&uf[0], 1);
	bind_async(&c, &op, 1, syncs, 2);
	sw_sync_open_later(&o, g->tl);
	igt_assert_eq(__hmmgpu_vm_bind(fd, c.vm, DRM_HMMGPU_VM_BIND_MAP, c.bo[1], 0,
				       DATA_VA + page, page, 0), 0);
	igt_assert_f(sw_sync_opened(&o),
		     "the synchronous bind returned before the queued bind's wait sync "
		     "signalled\n");
	igt_assert_f(hmmgpu_ufence_value(&uf[0]) == 1,
		     "the synchronous bind returned before the queued bind was done\n");
	igt_assert_eq_s64(hmmgpu_ufence_error(&uf[0]), 0);
	sw_sync_opener_join(&o);
	gate_fini(g);
	check_va(&c, DATA_VA, 0);
	check_va(&c, DATA_VA + page, 1);

	/* Only for those of its VM. */
	g = gate_new(fd);
	op = hmmgpu_bind_op_map(c.bo[2], DATA_VA + 2 * page, page);
	syncs[0] = gate_sync(g);
	syncs[1] = hmmgpu_ufence_sync(&uf[1], 1);
	bind_async(&c, &op, 1, syncs, 2);
	hmmgpu_vm_map(fd, other.vm, other.bo[2], 0, DATA_VA, page, 0);
	igt_assert_f(!atomic_load(&g->rescued) && hmmgpu_ufence_value(&uf[1]) == 0,
		     "a synchronous bind waited for another VM's queued bind\n");
	check_va(&other, DATA_VA, 2);

	/* Interrupted: raw ioctl(), which does not restart on EINTR as drmIoctl() does. */
	arg = (struct drm_hmmgpu_vm_bind) {
		.vm_id = c.vm,
		.bind = hmmgpu_bind_op_map(c.bo[3], DATA_VA + 3 * page, page),
	};
	igt_assert_eq(sigaction(SIGALRM, &sa, &old), 0);
	alarms = 0;
	igt_assert_eq(setitimer(ITIMER_REAL, &timer, NULL), 0);
	err = ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &arg) ? -errno : 0;
	igt_assert_eq(setitimer(ITIMER_REAL, &stop, NULL), 0);
	igt_assert_eq(sigaction(SIGALRM, &old, NULL), 0);
	errno = 0;
	igt_assert_f(err == -EINTR, "the interrupted synchronous bind gave %d, expected -EINTR\n",
		     err);
	igt_assert_lte(1, alarms);
	igt_assert_f(hmmgpu_ufence_value(&uf[1]) == 0,
		     "the queued bind ran with its gate closed\n");

	gate_open(g);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[1], 1, JOB_WAIT_NS), 0);
	gate_fini(g);
	check_va(&c, DATA_VA + 2 * page, 2);
	check_va(&c, DATA_VA + 3 * page, -1);
	check_free(&c, DATA_VA + 3 * page, page);

	hmmgpu_ufences_free(uf);
	ctx_fini(&other);
	ctx_fini(&c);
}

/*
 * async-other-process: a child of fork() holding the file may not queue a
 * map of a userptr into the parent's VM, of the parent's memory or of its
 * own (-EFAULT at the call, nothing queued), but may queue a map of a GEM
 * object: its user fence is written in the child's address space, here
 * memory shared with the parent, and the parent's jobs see the mapping.
 */
static void test_async_other_process(uint32_t mode)
{
	const uint64_t size = 2 * page;
	struct hmmgpu_ufence *shared;
	uint32_t uptr;
	struct ctx c;
	char *buf;

	ctx_init(&c, fd, mode);
	shared = hmmgpu_ufences_new(MAP_SHARED);
	buf = map_pattern(size, 1);
	uptr = hmmgpu_userptr_create(fd, buf, size, 0);

	igt_fork(child, 1) {
		struct drm_hmmgpu_vm_bind_op op;
		struct drm_hmmgpu_sync sync;
		uint32_t mine;

		op = hmmgpu_bind_op_map(uptr, DATA_VA, size);
		sync = hmmgpu_ufence_sync(&shared[0], 1);
		igt_assert_eq(__hmmgpu_vm_bind_async(fd, c.vm, &op, 1, &sync, 1), -EFAULT);
		mine = hmmgpu_userptr_create(fd, buf, size, 0);
		op.handle = mine;
		igt_assert_eq(__hmmgpu_vm_bind_async(fd, c.vm, &op, 1, &sync, 1), -EFAULT);
		gem_close(fd, mine);

		op = hmmgpu_bind_op_map(c.bo[1], DATA_VA + VA_STRIDE, page);
		sync = hmmgpu_ufence_sync(&shared[1], 1);
		igt_assert_eq(__hmmgpu_vm_bind_async(fd, c.vm, &op, 1, &sync, 1), 0);
		igt_assert_eq(hmmgpu_ufence_wait(fd, &shared[1], 1, JOB_WAIT_NS), 0);
	}
	igt_waitchildren();

	/* Written in the child's memory, which is the parent's too. */
	igt_assert_eq(ufence_poll(&shared[1], 1), 0);
	igt_assert_f(hmmgpu_ufence_value(&shared[0]) == 0, "a refused bind wrote its user fence\n");
	check_va(&c, DATA_VA + VA_STRIDE, 1);
	check_va(&c, DATA_VA, -1);
	check_free(&c, DATA_VA, size);

	gem_close(fd, uptr);
	igt_assert_eq(munmap(buf, size), 0);
	hmmgpu_ufences_free(shared);
	ctx_fini(&c);
}

/*
 * async-memlock: pinned mode charges the pages an async bind pins to the
 * caller's RLIMIT_MEMLOCK. In a child without CAP_IPC_LOCK and with a 64 KiB
 * limit, on a file and a VM of its own: a queued map of a 1 MiB userptr ends
 * with -ENOMEM in its error word, pinning and mapping nothing; one of
 * 16 KiB is done, pinned, and a job writes through it.
 */
static void test_async_memlock(void)
{
	const uint64_t limit = 64 << 10, small = 16 << 10, big = 1 << 20;

	igt_require_f(hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PINNED), "no pinned mode\n");

	igt_fork(child, 1) {
		struct rlimit rl = { limit, limit };
		struct drm_hmmgpu_vm_bind_op op;
		struct drm_hmmgpu_vm_stats s;
		struct drm_hmmgpu_sync sync;
		struct drm_hmmgpu_cmd cmd;
		uint32_t ubig, usmall;
		struct hmmgpu_ufence *uf;
		struct ctx c;
		uint32_t *w;
		char *ptr;
		int cfd;

		ptr = map_pattern(big + small, 1);
		hmmgpu_drop_cap_ipc_lock();
		igt_assert_eq(setrlimit(RLIMIT_MEMLOCK, &rl), 0);
		cfd = drm_open_driver_render(DRIVER_HMMGPU);
		ctx_init(&c, cfd, DRM_HMMGPU_VM_MODE_PINNED);
		uf = hmmgpu_ufences_new(MAP_PRIVATE);

		/* Past the limit. */
		ubig = hmmgpu_userptr_create(cfd, ptr, big, 0);
		op = hmmgpu_bind_op_map(ubig, DATA_VA, big);
		sync = hmmgpu_ufence_sync(&uf[0], 1);
		bind_async(&c, &op, 1, &sync, 1);
		igt_assert_eq(hmmgpu_ufence_wait(cfd, &uf[0], 1, JOB_WAIT_NS), -ENOMEM);
		hmmgpu_vm_stats(cfd, c.vm, &s);
		igt_assert_eq_u64(s.pinned_pages, 0);
		hmmgpu_cmd_write64(&cmd, DATA_VA, 1);
		igt_assert_eq(hmmgpu_exec_job(cfd, c.vm, &cmd, 1, 0), -EFAULT);
		check_free(&c, DATA_VA, page);

		/* Within it. */
		usmall = hmmgpu_userptr_create(cfd, ptr + big, small, 0);
		op = hmmgpu_bind_op_map(usmall, DATA_VA + VA_STRIDE, small);
		sync = hmmgpu_ufence_sync(&uf[1], 1);
		bind_async(&c, &op, 1, &sync, 1);
		igt_assert_eq(hmmgpu_ufence_wait(cfd, &uf[1], 1, JOB_WAIT_NS), 0);
		hmmgpu_vm_stats(cfd, c.vm, &s);
		igt_assert_eq_u64(s.pinned_pages, small / page);
		hmmgpu_cmd_fill(&cmd, DATA_VA + VA_STRIDE, small, FILL_WORD);
		igt_assert_eq(hmmgpu_exec_job(cfd, c.vm, &cmd, 1, 0), 0);
		w = (uint32_t *)(ptr + big);
		for (uint64_t i = 0; i < small / 4; i++)
			igt_assert_f(w[i] == FILL_WORD, "word %" PRIu64 " reads %#x\n", i, w[i]);

		hmmgpu_vm_unmap(cfd, c.vm, DATA_VA + VA_STRIDE, small);
		gem_close(cfd, ubig);
		gem_close(cfd, usmall);
		hmmgpu_ufences_free(uf);
		ctx_fini(&c);
		drm_close_driver(cfd);
	}
	igt_waitchildren();
}

igt_main
{
	/* Static: changed inside subtests, between sigsetjmp() and siglongjmp(). */
	static const struct hmmgpu_vm_mode *m;

	igt_fixture {
		page = sysconf(_SC_PAGESIZE);
		fd = hmmgpu_open_vm_device();
	}

	igt_describe("An async map of a userptr held back by a sw_sync fence is queued and "
		     "the call returns; jobs fault on the range until the fence signals, then "
		     "the bind's user fence reads 0 and jobs read and write through it.");
	igt_subtest_with_dynamic("async-bind") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_bind(m->flags);
	}

	igt_describe("Binds queued behind a held-back one (map A, unmap, map B at one "
		     "address) run in queue order and write their user fences in order; jobs "
		     "see B.");
	igt_subtest_with_dynamic("async-order") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_order(m->flags);
	}

	igt_describe("A queued map onto a mapped range writes -EBUSY, one past its object's "
		     "end -EINVAL, and later binds run; of three operations where the second "
		     "fails, the first is done and the third is not.");
	igt_subtest_with_dynamic("async-error") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_error(m->flags);
	}

	igt_describe("A queued bind whose wait sync signalled with an error (a faulted job's "
		     "fence or timeline point, a sw_sync fence whose timeline went) writes "
		     "that error and maps nothing.");
	igt_subtest_with_dynamic("async-wait-error") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_wait_error(m->flags);
	}

	igt_describe("An async bind that signals sync objects is fenced: they have its "
		     "fence, unsignalled, from the call on (waits, exports and jobs take it); "
		     "it signals in the bind's turn with its error (0, -EBUSY from the call, "
		     "-ECANCELED).");
	igt_subtest_with_dynamic("async-syncobj") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_syncobj(m->flags);
	}

	igt_describe("A fenced unmap takes its range away in the call but clears its entries "
		     "in its turn: jobs read through it until then, fault after; applied even "
		     "when its wait sync signals an error.");
	igt_subtest_with_dynamic("async-fenced-unmap") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_fenced_unmap(m->flags);
	}

	igt_describe("A fenced unmap inside a huge page: the pieces keep their split entries.");
	igt_subtest_with_dynamic("async-fenced-unmap-thp") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_fenced_unmap_thp(m->flags);
	}

	igt_describe("A job queued behind a held-back fenced unmap reads the pieces it "
		     "leaves, also when they were mirrored or pinned again since the call.");
	igt_subtest_with_dynamic("async-fenced-unmap-queued-job") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_fenced_unmap_queued_job(m->flags);
	}

	igt_describe("A job queued before two nested held-back fenced unmaps reads the "
		     "pieces they leave once both turns came.");
	igt_subtest_with_dynamic("async-fenced-unmap-nested-queued-job") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_fenced_unmap_nested_queued_job(m->flags);
	}

	igt_describe("A fenced map over a range a held-back fenced unmap took away waits "
		     "for the unmap's turn; in one bind, a map after an unmap of its range "
		     "fails with -EBUSY; a fenced call waits for the unfenced binds queued "
		     "before it; its user fences are written too.");
	igt_subtest_with_dynamic("async-fenced-reuse") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_fenced_reuse(m->flags);
	}

	igt_describe("While a fenced unmap is held back, the CPU's changes to the pieces it "
		     "leaves reach jobs, before and after its turn; the CPU range going "
		     "leaves nothing mapped; closing the file signals -ECANCELED.");
	igt_subtest_with_dynamic("async-fenced-invalidate") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_fenced_invalidate(m->flags);
	}

	igt_describe("While a fenced unmap is held back, an invalidation of what it unmapped "
		     "leaves the pieces' entries: jobs read them, before and after its turn.");
	igt_subtest_with_dynamic("async-fenced-invalidate-hole") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_fenced_invalidate_hole(m->flags);
	}

	igt_describe("The call refuses bad flags, operations and syncs (-EINVAL), unknown "
		     "handles (-ENOENT) and unreadable arrays (-EFAULT), with nothing queued and "
		     "its sync objects untouched.");
	igt_subtest_with_dynamic("async-invalid") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_invalid(m->flags);
	}

	igt_describe("Binds held back by a fence that never signals write -ECANCELED when "
		     "their VM is destroyed or their file closed.");
	igt_subtest_with_dynamic("async-cancel") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_cancel(m->flags);
	}

	igt_describe("A synchronous bind waits for the binds queued on its VM (not another "
		     "VM's); a signal interrupts the wait with -EINTR, nothing done.");
	igt_subtest_with_dynamic("async-then-sync") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_then_sync(m->flags);
	}

	igt_describe("A forked child holding the file cannot queue a userptr map into the "
		     "parent's VM (-EFAULT), but can a GEM map, whose user fence it gets.");
	igt_subtest_with_dynamic("async-other-process") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_other_process(m->flags);
	}

	igt_describe("An unfenced bind's worker never waits for a userfaultfd handler: a "
		     "pinned map of memory only the handler could bring in fails with -EFAULT.");
	igt_subtest_with_dynamic("async-uffd") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_async_uffd(m->flags);
	}

	igt_describe("Pinned mode charges async binds to the caller's RLIMIT_MEMLOCK: past "
		     "it the error word reads -ENOMEM and nothing is pinned; within it the "
		     "bind is done.");
	igt_subtest("async-memlock")
		test_async_memlock();

	igt_fixture {
		drm_close_driver(fd);
	}
}
