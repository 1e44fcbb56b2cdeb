// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Synchronization of hmmgpu (struct drm_hmmgpu_sync): what jobs and binds
 * wait for and signal, in the manner of xe's IGT tests (xe_exec_basic,
 * xe_exec_fault_mode, syncobj_timeline, xe_vm's bind arrays).
 *
 * - Fault-mode VMs are long-running: their jobs have no dma-fence. Every
 *   route for such a job's completion to reach one is tried and found
 *   closed: signalling a binary sync object or a timeline point is refused
 *   (-EOPNOTSUPP), so the sync object stays empty and there is no sync_file
 *   to export, merge (SYNC_IOC_MERGE) or import into a dma-buf
 *   (DMA_BUF_IOCTL_IMPORT_SYNC_FILE); nor does the job leave a fence in the
 *   reservation object of a buffer it writes. They complete through user
 *   fences, whose value and error word the kernel writes, and which
 *   DRM_IOCTL_HMMGPU_WAIT_USER_FENCE waits for.
 * - Jobs of prefault and pinned VMs signal dma-fences: their error reads in
 *   a sync_file's status, and an input fence's error ends a job unrun;
 *   timeline points chain jobs across VMs; fences travel as sync_files
 *   between files, through SYNC_IOC_MERGE and through a dma-buf.
 * - Fences of other drivers hold jobs back in every mode: sw_sync (and its
 *   error when the timeline goes), vgem's fences through a dma-buf, and
 *   vkms' out-fence of an atomic commit.
 * - DRM_IOCTL_HMMGPU_VM_BIND with an array of operations: done in order up
 *   to the first that fails, whose index is reported; its wait syncs are
 *   waited for and its signal syncs signalled (with the error of a failed
 *   operation) before the call returns.
 *
 * Waits are bounded: a job ends within its time limit (10 s by default).
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
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <linux/dma-buf.h>
#include <linux/sync_file.h>
#include <linux/userfaultfd.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

#include "igt.h"
#include "igt_hmmgpu.h"
#include "igt_kms.h"
#include "igt_syncobj.h"
#include "sw_sync.h"

IGT_TEST_DESCRIPTION("Synchronization of hmmgpu: fault-mode jobs never reach a dma-fence and "
		     "complete through user fences; prefault and pinned jobs signal "
		     "dma-fences, timeline points and sync_files; fences of sw_sync, vgem "
		     "and vkms hold jobs back; VM_BIND arrays with wait and signal syncs.");

#define RES_VA		0x200000000ull
#define DATA_VA		0x300000000ull
/* Nothing is ever mapped here. */
#define UNMAPPED_VA	0x7000000000ull

#define MARK		0x5e7c0de000000000ull

/* Longer than any job may take: its time limit is 10 s. */
#define JOB_WAIT_NS	(30ll * NSEC_PER_SEC)

static int fd = -1;
static long page;
/* vkms' card, opened by the first vkms subtest. */
static int kms = -1;

/* A VM in a mode, with a one-page result object at RES_VA that the CPU sees at @res. */
struct ctx {
	int fd;
	uint32_t mode;
	uint32_t vm;
	uint32_t res_bo;
	volatile uint64_t *res;
};

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
}

static void ctx_fini(struct ctx *c)
{
	hmmgpu_vm_destroy(c->fd, c->vm);
	igt_assert_eq(munmap((void *)c->res, page), 0);
	gem_close(c->fd, c->res_bo);
}

static int __exec(struct ctx *c, const struct drm_hmmgpu_cmd *cmds, unsigned int n,
		  const struct drm_hmmgpu_sync *syncs, unsigned int num_syncs)
{
	struct drm_hmmgpu_exec exec = {
		.vm_id = c->vm,
		.cmds = to_user_pointer(cmds),
		.cmd_count = n,
		.syncs = to_user_pointer(syncs),
		.num_syncs = num_syncs,
	};

	return __hmmgpu_exec(c->fd, &exec);
}

static void exec_job(struct ctx *c, const struct drm_hmmgpu_cmd *cmds, unsigned int n,
		     const struct drm_hmmgpu_sync *syncs, unsigned int num_syncs)
{
	igt_assert_eq(__exec(c, cmds, n, syncs, num_syncs), 0);
}

/* A job writing @value at RES_VA + 8 * @slot. */
static struct drm_hmmgpu_cmd mark_cmd(unsigned int slot, uint64_t value)
{
	struct drm_hmmgpu_cmd cmd;

	hmmgpu_cmd_write64(&cmd, RES_VA + 8 * slot, value);
	return cmd;
}

/* Waits for the fence of @syncobj (bounded); returns its error, from the sync_file status. */
static int syncobj_error(int test_fd, uint32_t syncobj)
{
	return hmmgpu_wait(test_fd, syncobj, JOB_WAIT_NS);
}

/* The status of sync_file @sync_file: 1 signalled, 0 not yet, < 0 its error. */
static int sync_file_status(int sync_file)
{
	struct sync_file_info info = {};

	igt_assert_eq(ioctl(sync_file, SYNC_IOC_FILE_INFO, &info), 0);
	return info.status;
}

/* The status of the first fence in sync_file @sync_file (1 signalled, 0 not yet, < 0 error). */
static int first_fence_status(int sync_file)
{
	struct sync_fence_info fences[4] = {};
	struct sync_file_info info = { .num_fences = ARRAY_SIZE(fences) };

	info.sync_fence_info = to_user_pointer(fences);
	igt_assert_eq(ioctl(sync_file, SYNC_IOC_FILE_INFO, &info), 0);
	igt_assert_lt(0, info.num_fences);
	return fences[0].status;
}

static int sync_file_wait(int sync_file, int timeout_ms)
{
	struct pollfd pfd = { .fd = sync_file, .events = POLLIN };

	return poll(&pfd, 1, timeout_ms);
}

/* -errno of exporting the fence of @syncobj as a sync_file, 0 (and *@sync_file) if it worked. */
static int __export_sync_file(int test_fd, uint32_t syncobj, int *sync_file)
{
	int err = drmSyncobjExportSyncFile(test_fd, syncobj, sync_file) ? -errno : 0;

	errno = 0;
	return err;
}

static int export_sync_file(int test_fd, uint32_t syncobj)
{
	int sync_file = -1;

	igt_assert_eq(__export_sync_file(test_fd, syncobj, &sync_file), 0);
	igt_assert_fd(sync_file);
	return sync_file;
}

/* A new sync object of @test_fd holding the fence of @sync_file. */
static uint32_t import_sync_file(int test_fd, int sync_file)
{
	uint32_t handle = syncobj_create(test_fd, 0);

	igt_assert_eq(drmSyncobjImportSyncFile(test_fd, handle, sync_file), 0);
	return handle;
}

/* A sw_sync timeline; skips the test when there is none. */
static int sw_sync_timeline(void)
{
	int tl = open(SW_SYNC_PATH, O_RDWR | O_CLOEXEC);

	igt_require_f(tl >= 0, "no sw_sync timeline (CONFIG_SW_SYNC, debugfs mounted): %s\n",
		      strerror(errno));
	return tl;
}

/* A sync object holding a fence of @tl that signals once @tl reaches @value. */
static uint32_t sw_sync_syncobj(int test_fd, int tl, uint32_t value)
{
	struct sw_sync_create_fence_data data = { .value = value };
	uint32_t handle;

	snprintf(data.name, sizeof(data.name), "hmmgpu-sync-%u", value);
	igt_assert_eq(ioctl(tl, SW_SYNC_IOC_CREATE_FENCE, &data), 0);
	handle = import_sync_file(test_fd, data.fence);
	close(data.fence);
	return handle;
}

static void sw_sync_inc(int tl, uint32_t by)
{
	igt_assert_eq(ioctl(tl, SW_SYNC_IOC_INC, &by), 0);
}

/*
 * A sync object to wait for that the test opens: a sw_sync fence if there is
 * a timeline, else nothing (the callers skip).
 */
struct gate {
	int tl;
	uint32_t syncobj;
};

static void gate_init(struct gate *g, int test_fd)
{
	g->tl = sw_sync_timeline();
	g->syncobj = sw_sync_syncobj(test_fd, g->tl, 1);
}

static void gate_open(struct gate *g)
{
	sw_sync_inc(g->tl, 1);
}

static void gate_fini(struct gate *g, int test_fd)
{
	syncobj_destroy(test_fd, g->syncobj);
	close(g->tl);
}

static bool has_fault_mode(void)
{
	return hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_FAULT);
}

/* One igt_dynamic per mode the device offers whose jobs have fences (prefault, pinned). */
#define for_each_fence_mode_dynamic(fd, m) \
	for_each_hmmgpu_vm_mode(fd, m) \
		for_each_if((m)->flags != DRM_HMMGPU_VM_MODE_FAULT) \
			igt_dynamic_f("%s", (m)->name)

/*
 * fault-signal-refused: a fault-mode job may signal no sync object, binary
 * or timeline, alone or beside a user fence (-EOPNOTSUPP, nothing queued);
 * the binary sync object stays empty, so there is no sync_file to export,
 * merge or import into a dma-buf; the timeline point never appears (not to
 * wait for, nor to transfer). A job signalling only a user fence runs.
 */
static void test_fault_signal_refused(void)
{
	uint32_t bin, tl, tmp;
	struct drm_hmmgpu_sync syncs[2];
	struct drm_hmmgpu_cmd cmd;
	struct hmmgpu_ufence *uf;
	uint64_t point;
	int sync_file = -1;
	struct ctx c;

	ctx_init(&c, fd, DRM_HMMGPU_VM_MODE_FAULT);
	bin = syncobj_create(fd, 0);
	tl = syncobj_create(fd, 0);
	tmp = syncobj_create(fd, 0);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);

	for (unsigned int i = 0; i < 6; i++) {
		struct drm_hmmgpu_sync fence;

		switch (i / 2) {
		case 0:
			fence = hmmgpu_sync_signal(bin);
			break;
		case 1:
			fence = hmmgpu_sync_timeline_signal(tl, 1);
			break;
		default:
			fence = hmmgpu_sync_timeline_signal(tl, 1000);
			break;
		}
		/* Alone, then after a user fence. */
		syncs[0] = i % 2 ? hmmgpu_ufence_sync(uf, 1) : fence;
		syncs[1] = fence;
		cmd = mark_cmd(i, MARK + i);
		igt_assert_f(__exec(&c, &cmd, 1, syncs, 1 + i % 2) == -EOPNOTSUPP,
			     "a fault-mode job signalling %s%s was not refused\n",
			     fence.type == DRM_HMMGPU_SYNC_SYNCOBJ ? "a sync object" :
			     "a timeline point", i % 2 ? " and a user fence" : "");
	}

	/* Nothing reached the sync objects. */
	igt_assert_eq(__export_sync_file(fd, bin, &sync_file), -EINVAL);
	point = ~0ull;
	igt_assert_eq(drmSyncobjQuery(fd, &tl, &point, 1), 0);
	igt_assert_eq_u64(point, 0);
	point = 1;
	igt_assert(drmSyncobjTimelineWait(fd, &tl, &point, 1, 0, 0, NULL));
	igt_assert_eq(errno, EINVAL);
	igt_assert(drmSyncobjTransfer(fd, tmp, 0, tl, 1, 0));
	igt_assert_eq(errno, EINVAL);
	igt_assert_eq(__export_sync_file(fd, tmp, &sync_file), -EINVAL);
	errno = 0;
	igt_assert_eq_u64(hmmgpu_ufence_value(uf), 0);

	/* A user fence alone: the job runs, after where the refused ones would have. */
	syncs[0] = hmmgpu_ufence_sync(uf, 7);
	cmd = mark_cmd(8, MARK);
	exec_job(&c, &cmd, 1, syncs, 1);
	igt_assert_eq(hmmgpu_ufence_wait(fd, uf, 7, JOB_WAIT_NS), 0);
	igt_assert_eq_u64(c.res[8], MARK);
	for (unsigned int i = 0; i < 6; i++)
		igt_assert_f(c.res[i] == 0, "refused job %u ran\n", i);

	hmmgpu_ufences_free(uf);
	syncobj_destroy(fd, bin);
	syncobj_destroy(fd, tl);
	syncobj_destroy(fd, tmp);
	ctx_fini(&c);
}

/*
 * fault-no-implicit-fence: a fault-mode job held back (by a sw_sync fence)
 * that will write an object leaves no fence in the object's reservation:
 * the dma-buf's sync_file (DMA_BUF_IOCTL_EXPORT_SYNC_FILE) has signalled
 * while the job is still pending. Importing a signalled fence into the
 * dma-buf does not make the job's completion reach it either.
 */
static void test_fault_no_implicit_fence(void)
{
	struct dma_buf_export_sync_file export = { .flags = DMA_BUF_SYNC_RW, .fd = -1 };
	struct drm_hmmgpu_sync syncs[2];
	struct drm_hmmgpu_cmd cmd;
	struct hmmgpu_ufence *uf;
	struct gate g;
	struct ctx c;
	int dmabuf = -1;

	ctx_init(&c, fd, DRM_HMMGPU_VM_MODE_FAULT);
	gate_init(&g, fd);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	igt_assert_eq(drmPrimeHandleToFD(fd, c.res_bo, DRM_CLOEXEC | DRM_RDWR, &dmabuf), 0);

	syncs[0] = hmmgpu_sync_wait(g.syncobj);
	syncs[1] = hmmgpu_ufence_sync(uf, 1);
	cmd = mark_cmd(0, MARK);
	exec_job(&c, &cmd, 1, syncs, 2);

	igt_assert_eq(ioctl(dmabuf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &export), 0);
	igt_assert_f(hmmgpu_ufence_value(uf) == 0, "the gated job ran\n");
	igt_assert_f(sync_file_status(export.fd) == 1,
		     "the reservation of an object a pending fault-mode job writes holds an "
		     "unsignalled fence\n");
	close(export.fd);

	gate_open(&g);
	igt_assert_eq(hmmgpu_ufence_wait(fd, uf, 1, JOB_WAIT_NS), 0);
	igt_assert_eq_u64(c.res[0], MARK);

	close(dmabuf);
	hmmgpu_ufences_free(uf);
	gate_fini(&g, fd);
	ctx_fini(&c);
}

/*
 * user-fence: a job signals up to HMMGPU_MAX_SYNCS user fences, each with
 * its value and its error word (0), after the job's work is visible; a
 * fence without an error word writes only its value; a job that touches an
 * unmapped address writes -EFAULT; jobs writing one fence with growing
 * values write them in order, and a wait for the last one sees them all done.
 */
static void test_user_fence(uint32_t mode)
{
	struct drm_hmmgpu_sync syncs[HMMGPU_MAX_SYNCS];
	struct drm_hmmgpu_cmd cmd;
	struct hmmgpu_ufence *uf;
	struct ctx c;

	ctx_init(&c, fd, mode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);

	for (unsigned int i = 0; i < HMMGPU_MAX_SYNCS; i++)
		syncs[i] = hmmgpu_ufence_sync(&uf[i], 100 + i);
	cmd = mark_cmd(0, MARK);
	exec_job(&c, &cmd, 1, syncs, HMMGPU_MAX_SYNCS);
	for (unsigned int i = 0; i < HMMGPU_MAX_SYNCS; i++)
		igt_assert_f(hmmgpu_ufence_wait(fd, &uf[i], 100 + i, JOB_WAIT_NS) == 0,
			     "user fence %u: error word %" PRId64 "\n", i, uf[i].error);
	igt_assert_eq_u64(c.res[0], MARK);

	/* No error word: the word after the fence is left alone. */
	uf[0].error = 0x5a5a;
	syncs[0] = hmmgpu_sync_user_fence(&uf[0].value, 200, NULL);
	cmd = mark_cmd(1, MARK);
	exec_job(&c, &cmd, 1, syncs, 1);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[0], 200, JOB_WAIT_NS), 0x5a5a);
	igt_assert_eq_u64(c.res[1], MARK);

	/* A GPU page fault. */
	hmmgpu_cmd_write64(&cmd, UNMAPPED_VA, 1);
	syncs[0] = hmmgpu_ufence_sync(&uf[1], 300);
	exec_job(&c, &cmd, 1, syncs, 1);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[1], 300, JOB_WAIT_NS), -EFAULT);

	/* Jobs in order: the fence grows; the last value means every job is done. */
	for (unsigned int i = 0; i < 8; i++) {
		syncs[0] = hmmgpu_ufence_sync(&uf[2], 400 + i);
		cmd = mark_cmd(2 + i, MARK + i);
		exec_job(&c, &cmd, 1, syncs, 1);
	}
	igt_assert_eq(__hmmgpu_wait_user_fence(fd, &uf[2].value, 407, ~0ull, DRM_HMMGPU_WAIT_GTE,
					       JOB_WAIT_NS), 0);
	igt_assert_eq_u64(hmmgpu_ufence_value(&uf[2]), 407);
	for (unsigned int i = 0; i < 8; i++)
		igt_assert_eq_u64(c.res[2 + i], MARK + i);

	hmmgpu_ufences_free(uf);
	ctx_fini(&c);
}

/*
 * user-fence-error-first: the uAPI promises that a user fence's error word is
 * written before its value, so that whoever sees the value reads the error.
 * The test puts the error word in a page registered with userfaultfd and
 * holds the kernel's write of it in the handler: by then the value must not
 * be written (with the order reversed it would be: it would have gone first,
 * without a fault). Served, the kernel writes the error word, then the value.
 */
struct error_page {
	int uffd;
	char *page;
	atomic_bool faulted, go;
	pthread_t thread;
	char err[128];
};

static void *error_page_handler(void *arg)
{
	struct error_page *e = arg;
	struct pollfd pfd = { .fd = e->uffd, .events = POLLIN };
	struct uffdio_zeropage zero = {};
	struct uffd_msg msg;

	/* Bounded: the test fails rather than hangs if the kernel never faults. */
	if (poll(&pfd, 1, 30000) != 1 || read(e->uffd, &msg, sizeof(msg)) != sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT) {
		snprintf(e->err, sizeof(e->err), "no fault on the error word's page");
		return NULL;
	}
	atomic_store(&e->faulted, true);
	while (!atomic_load(&e->go))
		usleep(1000);
	zero.range.start = (uintptr_t)e->page;
	zero.range.len = page;
	if (ioctl(e->uffd, UFFDIO_ZEROPAGE, &zero))
		snprintf(e->err, sizeof(e->err), "UFFDIO_ZEROPAGE: %s", strerror(errno));
	return NULL;
}

static void test_user_fence_error_first(uint32_t mode)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct drm_hmmgpu_sync sync;
	struct drm_hmmgpu_cmd cmd;
	struct error_page e = {};
	struct hmmgpu_ufence *uf;
	struct ctx c;

	/* Not UFFD_USER_MODE_ONLY: the kernel's own write must reach the handler. */
	e.uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	igt_require_f(e.uffd >= 0, "no userfaultfd for kernel faults: %s\n", strerror(errno));
	igt_assert_eq(ioctl(e.uffd, UFFDIO_API, &api), 0);
	e.page = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	igt_assert(e.page != MAP_FAILED);
	reg.range.start = (uintptr_t)e.page;
	reg.range.len = page;
	igt_assert_eq(ioctl(e.uffd, UFFDIO_REGISTER, &reg), 0);
	igt_assert_eq(pthread_create(&e.thread, NULL, error_page_handler, &e), 0);

	ctx_init(&c, fd, mode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	/* A job that faults: its error word is -EFAULT, not the zero a page starts with. */
	hmmgpu_cmd_write64(&cmd, UNMAPPED_VA, 1);
	sync = hmmgpu_sync_user_fence(&uf->value, 1, (volatile int64_t *)e.page);
	exec_job(&c, &cmd, 1, &sync, 1);

	while (!atomic_load(&e.faulted) && !e.err[0])
		usleep(1000);
	igt_assert_f(!e.err[0], "%s\n", e.err);
	/* The kernel is held writing the error word: the value is not written yet. */
	igt_assert_f(hmmgpu_ufence_value(uf) == 0,
		     "the user fence's value was written before its error word\n");
	atomic_store(&e.go, true);
	igt_assert_eq(pthread_join(e.thread, NULL), 0);
	igt_assert_f(!e.err[0], "%s\n", e.err);
	igt_assert_eq(__hmmgpu_wait_user_fence(fd, &uf->value, 1, ~0ull, DRM_HMMGPU_WAIT_EQ,
					       JOB_WAIT_NS), 0);
	igt_assert_eq(*(volatile int64_t *)e.page, -EFAULT);

	hmmgpu_ufences_free(uf);
	ctx_fini(&c);
	igt_assert_eq(munmap(e.page, page), 0);
	close(e.uffd);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/*
 * user-fence-wait: DRM_IOCTL_HMMGPU_WAIT_USER_FENCE compares the masked word
 * with the masked value, unsigned, as each op says: a true comparison returns
 * at once (also without a time limit), a false one runs out of time (-ETIME).
 * A signal interrupts the wait with what is left of the time written back,
 * and a call restarted with it returns once the comparison holds.
 */
static void test_user_fence_wait(void)
{
	static const struct {
		uint32_t op;
		uint64_t value, mask;
		bool holds;
	} cases[] = {
		{ DRM_HMMGPU_WAIT_EQ, 5, 0xffff, true },
		{ DRM_HMMGPU_WAIT_EQ, 0xabcd000000000005ull, 0xffff, true },
		{ DRM_HMMGPU_WAIT_EQ, 6, 0xffff, false },
		{ DRM_HMMGPU_WAIT_EQ, 5, ~0ull, false },
		{ DRM_HMMGPU_WAIT_NEQ, 5, 0xffff, false },
		{ DRM_HMMGPU_WAIT_NEQ, 5, ~0ull, true },
		{ DRM_HMMGPU_WAIT_GT, 4, 0xffff, true },
		{ DRM_HMMGPU_WAIT_GT, 5, 0xffff, false },
		{ DRM_HMMGPU_WAIT_GTE, 5, 0xffff, true },
		{ DRM_HMMGPU_WAIT_GTE, 6, 0xffff, false },
		{ DRM_HMMGPU_WAIT_LT, 6, 0xffff, true },
		{ DRM_HMMGPU_WAIT_LT, 5, 0xffff, false },
		{ DRM_HMMGPU_WAIT_LTE, 5, 0xffff, true },
		{ DRM_HMMGPU_WAIT_LTE, 4, 0xffff, false },
		/* Unsigned: the word is huge, not negative. */
		{ DRM_HMMGPU_WAIT_GT, 1, ~0ull, true },
		{ DRM_HMMGPU_WAIT_LT, 1, ~0ull, false },
	};
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	struct drm_hmmgpu_wait_user_fence arg;
	/* Repeating: however late the ioctl starts, a signal comes while it waits. */
	struct itimerval timer = {
		.it_value = { .tv_usec = 200000 },
		.it_interval = { .tv_usec = 200000 },
	}, stop = {};
	struct hmmgpu_ufence *uf = hmmgpu_ufences_new(MAP_PRIVATE);
	const int64_t long_ns = 60ll * NSEC_PER_SEC;
	int err;

	uf->value = 0x1234567800000005ull;
	for (unsigned int i = 0; i < ARRAY_SIZE(cases); i++) {
		/* When it holds the limit does not matter: the first case has none. */
		int64_t timeout_ns = i ? 10ll * NSEC_PER_SEC : -1;
		int want = 0;

		if (!cases[i].holds) {
			timeout_ns = NSEC_PER_MSEC;
			want = -ETIME;
		}
		err = __hmmgpu_wait_user_fence(fd, &uf->value, cases[i].value, cases[i].mask,
					       cases[i].op, timeout_ns);
		igt_assert_f(err == want,
			     "case %u: op %u, value %#" PRIx64 ", mask %#" PRIx64 ": %d\n", i,
			     cases[i].op, cases[i].value, cases[i].mask, err);
	}
	uf->value = ~0ull;
	igt_assert_eq(__hmmgpu_wait_user_fence(fd, &uf->value, 1, ~0ull, DRM_HMMGPU_WAIT_GT, 0), 0);
	igt_assert_eq(__hmmgpu_wait_user_fence(fd, &uf->value, 1, ~0ull, DRM_HMMGPU_WAIT_LT, 0),
		      -ETIME);

	/* Interrupted: no SA_RESTART, so the ioctl returns -EINTR with the time left. */
	uf->value = 1;
	igt_assert_eq(sigaction(SIGALRM, &sa, &old), 0);
	alarms = 0;
	arg = (struct drm_hmmgpu_wait_user_fence) {
		.addr = to_user_pointer(&uf->value),
		.value = 2,
		.mask = ~0ull,
		.op = DRM_HMMGPU_WAIT_EQ,
		.timeout_ns = long_ns,
	};
	igt_assert_eq(setitimer(ITIMER_REAL, &timer, NULL), 0);
	err = ioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &arg) ? -errno : 0;
	igt_assert_eq(setitimer(ITIMER_REAL, &stop, NULL), 0);
	igt_assert_eq(sigaction(SIGALRM, &old, NULL), 0);
	igt_assert_eq(err, -EINTR);
	igt_assert_lte(1, alarms);
	igt_info("interrupted, %.3f s of %.0f s left\n", arg.timeout_ns / 1e9, long_ns / 1e9);
	igt_assert_f(arg.timeout_ns > 0 && arg.timeout_ns < long_ns,
		     "timeout_ns after the interruption: %" PRId64 "\n", (int64_t)arg.timeout_ns);
	/* Restarted with what is left: the word now compares. */
	uf->value = 2;
	igt_assert_eq(igt_ioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &arg), 0);
	errno = 0;

	hmmgpu_ufences_free(uf);
}

/*
 * user-fence-invalid: the wait refuses an unknown op, flags and a misaligned
 * address (-EINVAL), and a word it cannot read (-EFAULT); an exec refuses a
 * user fence to wait for, a misaligned fence or error word, an unknown sync
 * type or flag, a non-zero pad or handle (-EINVAL), and a fence or error word
 * outside the user address space (-EFAULT), and runs nothing.
 */
static void test_user_fence_invalid(uint32_t mode)
{
	struct drm_hmmgpu_wait_user_fence arg;
	struct drm_hmmgpu_sync sync;
	struct drm_hmmgpu_cmd cmd;
	struct hmmgpu_ufence *uf = hmmgpu_ufences_new(MAP_PRIVATE);
	char *none;
	struct ctx c;

	arg = (struct drm_hmmgpu_wait_user_fence) {
		.addr = to_user_pointer(&uf->value),
		.mask = ~0ull,
		.op = DRM_HMMGPU_WAIT_EQ,
	};
	igt_assert_eq(igt_ioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &arg), 0);
	arg.op = DRM_HMMGPU_WAIT_LTE + 1;
	igt_assert_eq(ioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &arg) ? -errno : 0, -EINVAL);
	arg.op = ~0u;
	igt_assert_eq(ioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &arg) ? -errno : 0, -EINVAL);
	arg.op = DRM_HMMGPU_WAIT_EQ;
	arg.flags = 1;
	igt_assert_eq(ioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &arg) ? -errno : 0, -EINVAL);
	arg.flags = 0;
	for (unsigned int off = 1; off < 8; off++) {
		arg.addr = to_user_pointer(uf) + off;
		igt_assert_eq(ioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &arg) ? -errno : 0,
			      -EINVAL);
	}
	none = mmap(NULL, 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	igt_assert(none != MAP_FAILED);
	arg.addr = to_user_pointer(none);
	igt_assert_eq(ioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &arg) ? -errno : 0, -EFAULT);
	igt_assert_eq(munmap(none + page, page), 0);
	arg.addr = to_user_pointer(none + page);
	igt_assert_eq(ioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &arg) ? -errno : 0, -EFAULT);
	igt_assert_eq(munmap(none, page), 0);
	errno = 0;

	ctx_init(&c, fd, mode);
	cmd = mark_cmd(0, MARK);

	/* As an input. */
	sync = hmmgpu_ufence_sync(uf, 1);
	sync.flags = 0;
	igt_assert_eq(__exec(&c, &cmd, 1, &sync, 1), -EINVAL);
	/* Misaligned fence, or error word. */
	sync = hmmgpu_ufence_sync(uf, 1);
	sync.addr += 4;
	igt_assert_eq(__exec(&c, &cmd, 1, &sync, 1), -EINVAL);
	sync = hmmgpu_ufence_sync(uf, 1);
	sync.error_addr += 2;
	igt_assert_eq(__exec(&c, &cmd, 1, &sync, 1), -EINVAL);
	/* Unknown type, flags; pad. */
	sync = hmmgpu_ufence_sync(uf, 1);
	sync.type = DRM_HMMGPU_SYNC_USER_FENCE + 1;
	igt_assert_eq(__exec(&c, &cmd, 1, &sync, 1), -EINVAL);
	sync = hmmgpu_ufence_sync(uf, 1);
	sync.flags |= DRM_HMMGPU_SYNC_SIGNAL << 1;
	igt_assert_eq(__exec(&c, &cmd, 1, &sync, 1), -EINVAL);
	sync = hmmgpu_ufence_sync(uf, 1);
	sync.pad = 1;
	igt_assert_eq(__exec(&c, &cmd, 1, &sync, 1), -EINVAL);
	/* A handle; a fence or error word outside the user address space. */
	sync = hmmgpu_ufence_sync(uf, 1);
	sync.handle = 1;
	igt_assert_eq(__exec(&c, &cmd, 1, &sync, 1), -EINVAL);
	sync = hmmgpu_ufence_sync(uf, 1);
	sync.addr = 0xffff800000000000ull;
	igt_assert_eq(__exec(&c, &cmd, 1, &sync, 1), -EFAULT);
	sync = hmmgpu_ufence_sync(uf, 1);
	sync.error_addr = 0xffffffffff600000ull;
	igt_assert_eq(__exec(&c, &cmd, 1, &sync, 1), -EFAULT);
	igt_assert_eq_u64(hmmgpu_ufence_value(uf), 0);

	/* None of them ran, nor wrote its fence. */
	cmd = mark_cmd(1, MARK);
	sync = hmmgpu_ufence_sync(&uf[1], 1);
	exec_job(&c, &cmd, 1, &sync, 1);
	igt_assert_eq(hmmgpu_ufence_wait(fd, &uf[1], 1, JOB_WAIT_NS), 0);
	igt_assert_eq_u64(c.res[1], MARK);
	igt_assert_f(c.res[0] == 0, "a refused job ran\n");
	igt_assert_eq_u64(hmmgpu_ufence_value(uf), 0);

	ctx_fini(&c);
	hmmgpu_ufences_free(uf);
}

/*
 * fence-error: a prefault or pinned job that faults signals its fence with
 * -EFAULT, read in the sync_file's status (and a good one with 1); a job of
 * any mode waiting for that fence ends with -EFAULT without running. A
 * timeline point is a dma_fence_chain node, which does not carry the error
 * of its fence: the error is read as the uAPI says, from the first fence of
 * the point's sync_file (transferred to a binary sync object), and a job
 * waiting for the point ends with it, unrun, as for a binary sync object.
 */
static void test_fence_error(uint32_t mode)
{
	struct drm_hmmgpu_sync syncs[3];
	struct drm_hmmgpu_cmd cmd;
	uint32_t bad, good, out, tl;
	struct hmmgpu_ufence *uf;
	struct ctx c, f;
	int sync_file;

	ctx_init(&c, fd, mode);
	bad = syncobj_create(fd, 0);
	good = syncobj_create(fd, 0);
	out = syncobj_create(fd, 0);
	tl = syncobj_create(fd, 0);

	hmmgpu_cmd_write64(&cmd, UNMAPPED_VA, 1);
	syncs[0] = hmmgpu_sync_signal(bad);
	syncs[1] = hmmgpu_sync_timeline_signal(tl, 3);
	exec_job(&c, &cmd, 1, syncs, 2);
	cmd = mark_cmd(0, MARK);
	syncs[0] = hmmgpu_sync_signal(good);
	exec_job(&c, &cmd, 1, syncs, 1);

	igt_assert_eq(syncobj_error(fd, good), 0);
	igt_assert_eq(syncobj_error(fd, bad), -EFAULT);
	sync_file = export_sync_file(fd, bad);
	igt_assert_eq(sync_file_status(sync_file), -EFAULT);
	close(sync_file);
	sync_file = export_sync_file(fd, good);
	igt_assert_eq(sync_file_status(sync_file), 1);
	close(sync_file);

	/* The error goes on to the jobs that wait for it, which do not run. */
	syncs[0] = hmmgpu_sync_wait(bad);
	syncs[1] = hmmgpu_sync_signal(out);
	cmd = mark_cmd(1, MARK);
	exec_job(&c, &cmd, 1, syncs, 2);
	igt_assert_eq(syncobj_error(fd, out), -EFAULT);
	igt_assert_f(c.res[1] == 0, "a job whose input fence failed ran\n");

	/* The point's own fence, first in its sync_file, has the error; the chain node not. */
	igt_assert_eq(drmSyncobjTransfer(fd, out, 0, tl, 3, 0), 0);
	sync_file = export_sync_file(fd, out);
	igt_assert_eq(sync_file_status(sync_file), 1);
	igt_assert_eq(first_fence_status(sync_file), -EFAULT);
	close(sync_file);
	syncs[0] = hmmgpu_sync_timeline_wait(tl, 3);
	cmd = mark_cmd(2, MARK);
	exec_job(&c, &cmd, 1, syncs, 2);
	igt_assert_eq(syncobj_error(fd, out), -EFAULT);
	igt_assert_f(c.res[2] == 0, "a job whose input point failed ran\n");

	if (has_fault_mode()) {
		ctx_init(&f, fd, DRM_HMMGPU_VM_MODE_FAULT);
		uf = hmmgpu_ufences_new(MAP_PRIVATE);
		syncs[0] = hmmgpu_sync_wait(bad);
		syncs[1] = hmmgpu_ufence_sync(uf, 1);
		cmd = mark_cmd(0, MARK);
		exec_job(&f, &cmd, 1, syncs, 2);
		igt_assert_eq(hmmgpu_ufence_wait(fd, uf, 1, JOB_WAIT_NS), -EFAULT);
		igt_assert_f(f.res[0] == 0, "a fault-mode job whose input fence failed ran\n");
		hmmgpu_ufences_free(uf);
		ctx_fini(&f);
	}

	syncobj_destroy(fd, bad);
	syncobj_destroy(fd, good);
	syncobj_destroy(fd, out);
	syncobj_destroy(fd, tl);
	ctx_fini(&c);
}

/*
 * timeline: TIMELINE_JOBS jobs alternating between two VMs, job i waiting
 * for point i of a timeline and signalling point i + 1, the first held back
 * by a sw_sync fence: while it is, no point has signalled (drmSyncobjQuery
 * reads 0) and no job ran; once it opens, a wait for the last point returns,
 * the query reads it, and the jobs ran in timeline order (each copies a
 * counter to its slot and increments it). Waiting for a point not submitted
 * is refused (-EINVAL), and so is signalling point 0.
 */
#define TIMELINE_JOBS	16

static void test_timeline(uint32_t mode)
{
	struct drm_hmmgpu_sync syncs[2];
	struct drm_hmmgpu_cmd cmds[2];
	struct ctx a, b;
	uint64_t point;
	uint32_t tl, out;
	struct gate g;

	ctx_init(&a, fd, mode);
	ctx_init(&b, fd, mode);
	/* B's RES_VA is A's result object. */
	hmmgpu_vm_unmap(fd, b.vm, RES_VA, page);
	hmmgpu_vm_map(fd, b.vm, a.res_bo, 0, RES_VA, page, 0);
	gate_init(&g, fd);
	tl = syncobj_create(fd, 0);
	out = syncobj_create(fd, 0);

	for (unsigned int i = 0; i < TIMELINE_JOBS; i++) {
		a.res[1 + i] = ~0ull;
		hmmgpu_cmd_copy(&cmds[0], RES_VA + 8 * (1 + i), RES_VA, 8);
		hmmgpu_cmd_atomic_add(&cmds[1], RES_VA, 1);
		syncs[0] = i ? hmmgpu_sync_timeline_wait(tl, i) : hmmgpu_sync_wait(g.syncobj);
		syncs[1] = hmmgpu_sync_timeline_signal(tl, i + 1);
		exec_job(i % 2 ? &b : &a, cmds, 2, syncs, 2);
	}

	point = ~0ull;
	igt_assert_eq(drmSyncobjQuery(fd, &tl, &point, 1), 0);
	igt_assert_f(point == 0, "point %" PRIu64 " signalled, the first job is held back\n",
		     point);
	for (unsigned int i = 0; i < TIMELINE_JOBS; i++)
		igt_assert_f(a.res[1 + i] == ~0ull, "job %u ran before the first\n", i);

	/* A point not submitted yet, and point 0 to signal. */
	cmds[0] = mark_cmd(TIMELINE_JOBS + 2, MARK);
	syncs[0] = hmmgpu_sync_timeline_wait(tl, TIMELINE_JOBS + 1);
	igt_assert_eq(__exec(&a, cmds, 1, syncs, 1), -EINVAL);
	syncs[0] = hmmgpu_sync_timeline_signal(tl, 0);
	igt_assert_eq(__exec(&a, cmds, 1, syncs, 1), -EINVAL);
	point = TIMELINE_JOBS + 1;
	igt_assert(drmSyncobjTimelineWait(fd, &tl, &point, 1, 0, 0, NULL));
	igt_assert_eq(errno, EINVAL);
	errno = 0;

	gate_open(&g);
	point = TIMELINE_JOBS;
	igt_assert_eq(drmSyncobjTimelineWait(fd, &tl, &point, 1, INT64_MAX, 0, NULL), 0);
	point = 0;
	igt_assert_eq(drmSyncobjQuery(fd, &tl, &point, 1), 0);
	igt_assert_eq_u64(point, TIMELINE_JOBS);
	for (unsigned int i = 0; i < TIMELINE_JOBS; i++)
		igt_assert_f(a.res[1 + i] == i, "job %u ran %" PRIu64 "th\n", i,
			     (uint64_t)a.res[1 + i]);
	igt_assert_eq_u64(a.res[0], TIMELINE_JOBS);

	/* A point transferred to a binary sync object carries its fence, without error. */
	igt_assert_eq(drmSyncobjTransfer(fd, out, 0, tl, TIMELINE_JOBS / 2, 0), 0);
	igt_assert_eq(syncobj_error(fd, out), 0);
	igt_assert_f(a.res[TIMELINE_JOBS + 2] == 0, "a refused job ran\n");

	syncobj_destroy(fd, tl);
	syncobj_destroy(fd, out);
	gate_fini(&g, fd);
	ctx_fini(&b);
	ctx_fini(&a);
}

/*
 * sync-file: a job's fence leaves as a sync_file and comes back in: into a
 * sync object of another file, whose job waits for it; merged with another
 * job's (SYNC_IOC_MERGE), into a job's wait; and into the reservation of a
 * dma-buf (DMA_BUF_IOCTL_IMPORT_SYNC_FILE), whose exported sync_file then
 * signals with the job. The first job is held back by a sw_sync fence, so
 * that every one of them is seen pending first.
 */
static void test_sync_file(uint32_t mode)
{
	struct dma_buf_import_sync_file import = { .flags = DMA_BUF_SYNC_WRITE };
	struct dma_buf_export_sync_file export = { .flags = DMA_BUF_SYNC_RW, .fd = -1 };
	struct sync_merge_data merge = { .name = "hmmgpu-merge" };
	uint32_t s_a, s_b, s_m, out_b, out_m, other;
	struct drm_hmmgpu_sync syncs[2];
	struct drm_hmmgpu_cmd cmd;
	int fd2, sf_a, sf_other, dmabuf;
	struct ctx a, b, m;
	uint32_t handle_b;
	struct gate g;

	fd2 = drm_open_driver_render(DRIVER_HMMGPU);
	ctx_init(&a, fd, mode);
	ctx_init(&b, fd2, mode);
	ctx_init(&m, fd, mode);
	gate_init(&g, fd);
	s_a = syncobj_create(fd, 0);
	other = syncobj_create(fd, 0);
	out_b = syncobj_create(fd2, 0);
	out_m = syncobj_create(fd, 0);

	/* A: held back, then writes its mark. */
	syncs[0] = hmmgpu_sync_wait(g.syncobj);
	syncs[1] = hmmgpu_sync_signal(s_a);
	cmd = mark_cmd(0, MARK);
	exec_job(&a, &cmd, 1, syncs, 2);
	cmd = mark_cmd(0, MARK + 1);
	syncs[0] = hmmgpu_sync_signal(other);
	exec_job(&m, &cmd, 1, syncs, 1);
	igt_assert_eq(syncobj_error(fd, other), 0);

	/* Out as a sync_file, into a sync object of another file; B waits for it. */
	sf_a = export_sync_file(fd, s_a);
	igt_assert_eq(sync_file_status(sf_a), 0);
	s_b = import_sync_file(fd2, sf_a);
	syncs[0] = hmmgpu_sync_wait(s_b);
	syncs[1] = hmmgpu_sync_signal(out_b);
	cmd = mark_cmd(1, MARK + 2);
	exec_job(&b, &cmd, 1, syncs, 2);

	/* Merged with the other job's (signalled) fence; M waits for the merge. */
	sf_other = export_sync_file(fd, other);
	merge.fd2 = sf_other;
	igt_assert_eq(ioctl(sf_a, SYNC_IOC_MERGE, &merge), 0);
	igt_assert_eq(sync_file_status(merge.fence), 0);
	s_m = import_sync_file(fd, merge.fence);
	syncs[0] = hmmgpu_sync_wait(s_m);
	syncs[1] = hmmgpu_sync_signal(out_m);
	cmd = mark_cmd(1, MARK + 3);
	exec_job(&m, &cmd, 1, syncs, 2);

	/* Into the reservation of a dma-buf of B's file. */
	handle_b = hmmgpu_gem_create(fd2, page);
	igt_assert_eq(drmPrimeHandleToFD(fd2, handle_b, DRM_CLOEXEC | DRM_RDWR, &dmabuf), 0);
	import.fd = sf_a;
	igt_assert_eq(ioctl(dmabuf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &import), 0);
	igt_assert_eq(ioctl(dmabuf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &export), 0);
	igt_assert_eq(sync_file_status(export.fd), 0);

	/* Everything waits for A. */
	igt_assert(!hmmgpu_syncobj_signalled(fd2, out_b, NULL));
	igt_assert(!hmmgpu_syncobj_signalled(fd, out_m, NULL));
	igt_assert_f(!a.res[0] && !b.res[1] && !m.res[1], "a job ran before the gate opened\n");

	gate_open(&g);
	igt_assert_eq(syncobj_error(fd2, out_b), 0);
	igt_assert_eq(syncobj_error(fd, out_m), 0);
	igt_assert_eq(sync_file_wait(export.fd, 10000), 1);
	igt_assert_eq(sync_file_status(export.fd), 1);
	igt_assert_eq(sync_file_status(sf_a), 1);
	igt_assert_eq(sync_file_status(merge.fence), 1);
	igt_assert_eq_u64(a.res[0], MARK);
	igt_assert_eq_u64(b.res[1], MARK + 2);
	igt_assert_eq_u64(m.res[1], MARK + 3);

	close(export.fd);
	close(dmabuf);
	gem_close(fd2, handle_b);
	close(merge.fence);
	close(sf_other);
	close(sf_a);
	syncobj_destroy(fd, s_a);
	syncobj_destroy(fd, other);
	syncobj_destroy(fd, s_m);
	syncobj_destroy(fd, out_m);
	syncobj_destroy(fd2, s_b);
	syncobj_destroy(fd2, out_b);
	gate_fini(&g, fd);
	ctx_fini(&m);
	ctx_fini(&b);
	ctx_fini(&a);
	drm_close_driver(fd2);
}

/*
 * Submits a job of @c writing MARK at slot 0, waiting for @in; checks that
 * it is held back (also after @hold_ms), calls @release(@arg), and returns
 * the job's error, with the mark checked against it.
 */
static int held_job(struct ctx *c, uint32_t in, int hold_ms, void (*release)(void *), void *arg)
{
	struct hmmgpu_done *done = hmmgpu_done_create(c->fd, c->mode);
	struct drm_hmmgpu_sync syncs[2];
	struct drm_hmmgpu_cmd cmd;
	int error;

	c->res[0] = 0;
	syncs[0] = hmmgpu_sync_wait(in);
	syncs[1] = hmmgpu_done_signal(done);
	cmd = mark_cmd(0, MARK);
	exec_job(c, &cmd, 1, syncs, 2);
	igt_assert_f(!hmmgpu_done_signalled(done, NULL),
		     "the job ran before its input fence signalled\n");
	usleep(hold_ms * 1000);
	igt_assert_f(!hmmgpu_done_signalled(done, NULL) && c->res[0] == 0,
		     "the job ran before its input fence signalled\n");

	release(arg);
	error = hmmgpu_done_wait(done, JOB_WAIT_NS);
	igt_assert_eq(c->res[0] == MARK, error == 0);
	hmmgpu_done_destroy(done);
	return error;
}

static void release_sw_sync(void *arg)
{
	sw_sync_inc(*(int *)arg, 1);
}

static void release_sw_sync_close(void *arg)
{
	close(*(int *)arg);
}

/*
 * sw-sync: a job waiting for an unsignalled sw_sync fence does not run
 * until the timeline reaches the fence's value, in every mode; a fence that
 * signals with an error (-ENOENT, when its timeline is closed first) ends
 * the job with that error, unrun.
 */
static void test_sw_sync(uint32_t mode)
{
	uint32_t s1, s2;
	struct ctx c;
	int tl;

	ctx_init(&c, fd, mode);
	tl = sw_sync_timeline();
	s1 = sw_sync_syncobj(fd, tl, 2);
	sw_sync_inc(tl, 1);
	igt_assert_eq(held_job(&c, s1, 50, release_sw_sync, &tl), 0);

	s2 = sw_sync_syncobj(fd, tl, 5);
	igt_assert_eq(held_job(&c, s2, 50, release_sw_sync_close, &tl), -ENOENT);

	syncobj_destroy(fd, s1);
	syncobj_destroy(fd, s2);
	ctx_fini(&c);
}

/* vgem (CONFIG_DRM_VGEM): its uAPI header is not among libdrm's. */
struct drm_vgem_fence_attach {
	__u32 handle;
	__u32 flags;
	__u32 out_fence;
	__u32 pad;
};

struct drm_vgem_fence_signal {
	__u32 fence;
	__u32 flags;
};

#define VGEM_FENCE_WRITE		0x1
#define DRM_IOCTL_VGEM_FENCE_ATTACH \
	DRM_IOWR(DRM_COMMAND_BASE + 0x1, struct drm_vgem_fence_attach)
#define DRM_IOCTL_VGEM_FENCE_SIGNAL \
	DRM_IOW(DRM_COMMAND_BASE + 0x2, struct drm_vgem_fence_signal)

struct vgem_release {
	int vgem;
	uint32_t fence;
};

static void release_vgem(void *arg)
{
	struct vgem_release *r = arg;
	struct drm_vgem_fence_signal sig = { .fence = r->fence };

	igt_assert_eq(igt_ioctl(r->vgem, DRM_IOCTL_VGEM_FENCE_SIGNAL, &sig), 0);
}

/*
 * vgem: vgem attaches a write fence to a buffer of its own, exported as a
 * dma-buf; DMA_BUF_IOCTL_EXPORT_SYNC_FILE takes it out as a sync_file, into
 * a sync object; a job waiting for it runs once vgem signals the fence.
 */
static void test_vgem(uint32_t mode)
{
	struct dma_buf_export_sync_file export = { .flags = DMA_BUF_SYNC_READ, .fd = -1 };
	struct drm_mode_create_dumb create = { .width = 64, .height = 64, .bpp = 32 };
	struct drm_vgem_fence_attach attach = { .flags = VGEM_FENCE_WRITE };
	struct vgem_release r;
	uint32_t in;
	struct ctx c;
	int dmabuf = -1;

	r.vgem = __drm_open_driver(DRIVER_VGEM);
	igt_require_f(r.vgem >= 0, "no vgem device (CONFIG_DRM_VGEM)\n");
	do_ioctl(r.vgem, DRM_IOCTL_MODE_CREATE_DUMB, &create);
	attach.handle = create.handle;
	do_ioctl(r.vgem, DRM_IOCTL_VGEM_FENCE_ATTACH, &attach);
	r.fence = attach.out_fence;
	igt_assert_eq(drmPrimeHandleToFD(r.vgem, create.handle, DRM_CLOEXEC, &dmabuf), 0);
	igt_assert_eq(ioctl(dmabuf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &export), 0);
	igt_assert_eq(sync_file_status(export.fd), 0);

	ctx_init(&c, fd, mode);
	in = import_sync_file(fd, export.fd);
	igt_assert_eq(held_job(&c, in, 50, release_vgem, &r), 0);
	igt_assert_eq(sync_file_status(export.fd), 1);

	syncobj_destroy(fd, in);
	ctx_fini(&c);
	close(export.fd);
	close(dmabuf);
	gem_close(r.vgem, create.handle);
	drm_close_driver(r.vgem);
}

/*
 * vkms: an atomic commit of vkms lighting a CRTC with a dumb framebuffer
 * gives an out-fence (OUT_FENCE_PTR) that signals at the next (emulated)
 * vblank; a job waiting for it, imported into a sync object, ends after it
 * signalled. The job cannot be seen held back here: the vblank is vkms' to
 * time.
 */
static void test_vkms(uint32_t mode)
{
	drmModeModeInfo kmode = {
		.clock = 384,
		.hdisplay = 64, .hsync_start = 66, .hsync_end = 70, .htotal = 80,
		.vdisplay = 64, .vsync_start = 66, .vsync_end = 70, .vtotal = 80,
		.vrefresh = 60,
		.type = DRM_MODE_TYPE_USERDEF,
		.name = "64x64",
	};
	struct drm_mode_create_dumb create = { .width = 64, .height = 64, .bpp = 32 };
	uint32_t handles[4] = {}, pitches[4] = {}, offsets[4] = {};
	uint32_t crtc, connector = 0, plane = 0, fb = 0, blob = 0, in;
	struct drm_hmmgpu_sync syncs[2];
	int32_t out_fence = -1;
	drmModePlaneResPtr planes;
	drmModeAtomicReqPtr req;
	struct drm_hmmgpu_cmd cmd;
	struct hmmgpu_done *done;
	drmModeResPtr res;
	struct ctx c;

	/* Opened once: a test that failed leaves it open, and master. */
	if (kms < 0)
		kms = __drm_open_driver(DRIVER_VKMS);
	igt_require_f(kms >= 0, "no vkms device (CONFIG_DRM_VKMS)\n");
	igt_require_f(drmIsMaster(kms), "vkms has another DRM master\n");
	igt_require(drmSetClientCap(kms, DRM_CLIENT_CAP_ATOMIC, 1) == 0);

	res = drmModeGetResources(kms);
	igt_assert(res);
	igt_require(res->count_crtcs > 0);
	crtc = res->crtcs[0];
	/* An active CRTC needs a connector: vkms' virtual one. */
	for (int i = 0; i < res->count_connectors && !connector; i++) {
		drmModeConnectorPtr conn = drmModeGetConnector(kms, res->connectors[i]);

		if (conn && conn->connector_type != DRM_MODE_CONNECTOR_WRITEBACK)
			connector = conn->connector_id;
		drmModeFreeConnector(conn);
	}
	drmModeFreeResources(res);
	igt_require(connector);
	planes = drmModeGetPlaneResources(kms);
	igt_assert(planes);
	for (uint32_t i = 0; i < planes->count_planes && !plane; i++) {
		drmModePlanePtr p = drmModeGetPlane(kms, planes->planes[i]);
		uint64_t type = 0;

		if (p && (p->possible_crtcs & 1) &&
		    igt_kms_prop_id(kms, p->plane_id, DRM_MODE_OBJECT_PLANE, "type", &type) &&
		    type == DRM_PLANE_TYPE_PRIMARY)
			plane = p->plane_id;
		drmModeFreePlane(p);
	}
	drmModeFreePlaneResources(planes);
	igt_require(plane);

	do_ioctl(kms, DRM_IOCTL_MODE_CREATE_DUMB, &create);
	handles[0] = create.handle;
	pitches[0] = create.pitch;
	igt_assert_eq(drmModeAddFB2(kms, 64, 64, DRM_FORMAT_XRGB8888, handles, pitches, offsets,
				    &fb, 0), 0);
	igt_assert_eq(drmModeCreatePropertyBlob(kms, &kmode, sizeof(kmode), &blob), 0);

	req = drmModeAtomicAlloc();
	igt_assert(req);
	igt_kms_add_prop(req, kms, crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE", 1);
	igt_kms_add_prop(req, kms, crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID", blob);
	igt_kms_add_prop(req, kms, crtc, DRM_MODE_OBJECT_CRTC, "OUT_FENCE_PTR",
		 to_user_pointer(&out_fence));
	igt_kms_add_prop(req, kms, connector, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", crtc);
	igt_kms_add_prop(req, kms, plane, DRM_MODE_OBJECT_PLANE, "FB_ID", fb);
	igt_kms_add_prop(req, kms, plane, DRM_MODE_OBJECT_PLANE, "CRTC_ID", crtc);
	igt_kms_add_prop(req, kms, plane, DRM_MODE_OBJECT_PLANE, "SRC_X", 0);
	igt_kms_add_prop(req, kms, plane, DRM_MODE_OBJECT_PLANE, "SRC_Y", 0);
	igt_kms_add_prop(req, kms, plane, DRM_MODE_OBJECT_PLANE, "SRC_W", 64ull << 16);
	igt_kms_add_prop(req, kms, plane, DRM_MODE_OBJECT_PLANE, "SRC_H", 64ull << 16);
	igt_kms_add_prop(req, kms, plane, DRM_MODE_OBJECT_PLANE, "CRTC_X", 0);
	igt_kms_add_prop(req, kms, plane, DRM_MODE_OBJECT_PLANE, "CRTC_Y", 0);
	igt_kms_add_prop(req, kms, plane, DRM_MODE_OBJECT_PLANE, "CRTC_W", 64);
	igt_kms_add_prop(req, kms, plane, DRM_MODE_OBJECT_PLANE, "CRTC_H", 64);
	igt_assert_f(drmModeAtomicCommit(kms, req, DRM_MODE_ATOMIC_ALLOW_MODESET |
					 DRM_MODE_ATOMIC_NONBLOCK, NULL) == 0,
		     "the atomic commit failed: %s\n", strerror(errno));
	drmModeAtomicFree(req);
	igt_assert_fd(out_fence);

	ctx_init(&c, fd, mode);
	in = import_sync_file(fd, out_fence);
	done = hmmgpu_done_create(fd, mode);
	syncs[0] = hmmgpu_sync_wait(in);
	syncs[1] = hmmgpu_done_signal(done);
	cmd = mark_cmd(0, MARK);
	exec_job(&c, &cmd, 1, syncs, 2);
	igt_assert_eq(hmmgpu_done_wait(done, JOB_WAIT_NS), 0);
	igt_assert_f(sync_file_status(out_fence) == 1,
		     "the job ended before the vkms fence it waits for signalled\n");
	igt_assert_eq_u64(c.res[0], MARK);
	hmmgpu_done_destroy(done);
	syncobj_destroy(fd, in);
	ctx_fini(&c);
	close(out_fence);

	req = drmModeAtomicAlloc();
	igt_assert(req);
	igt_kms_add_prop(req, kms, crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE", 0);
	igt_kms_add_prop(req, kms, crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID", 0);
	igt_kms_add_prop(req, kms, plane, DRM_MODE_OBJECT_PLANE, "FB_ID", 0);
	igt_kms_add_prop(req, kms, plane, DRM_MODE_OBJECT_PLANE, "CRTC_ID", 0);
	igt_kms_add_prop(req, kms, connector, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", 0);
	igt_assert_eq(drmModeAtomicCommit(kms, req, DRM_MODE_ATOMIC_ALLOW_MODESET, NULL), 0);
	drmModeAtomicFree(req);
	drmModeDestroyPropertyBlob(kms, blob);
	igt_assert_eq(drmModeRmFB(kms, fb), 0);
	gem_close(kms, create.handle);
}

/* VM_BIND arrays: objects of one page, each filled with its own word. */
#define BIND_OBJS	4

struct bind_ctx {
	struct ctx c;
	uint32_t bo[BIND_OBJS];
};

static void bind_init(struct bind_ctx *b, uint32_t mode)
{
	ctx_init(&b->c, fd, mode);
	for (unsigned int i = 0; i < BIND_OBJS; i++) {
		uint32_t *map;

		b->bo[i] = hmmgpu_gem_create(fd, page);
		map = hmmgpu_gem_mmap(fd, b->bo[i], page, PROT_READ | PROT_WRITE);
		for (long w = 0; w < page / 4; w++)
			map[w] = 0xb0000000u + i;
		igt_assert_eq(munmap(map, page), 0);
	}
}

static void bind_fini(struct bind_ctx *b)
{
	for (unsigned int i = 0; i < BIND_OBJS; i++)
		gem_close(fd, b->bo[i]);
	ctx_fini(&b->c);
}

/* What a job reads at @va: the word there (0: it faulted, its error in *@error). */
static uint32_t gpu_read(struct bind_ctx *b, uint64_t va, int *error)
{
	struct drm_hmmgpu_cmd cmd;

	b->c.res[0] = 0;
	hmmgpu_cmd_copy(&cmd, RES_VA, va, 4);
	*error = hmmgpu_exec_job(fd, b->c.vm, &cmd, 1, 0);
	return (uint32_t)b->c.res[0];
}

/* Asserts that @va holds object @obj's word, or (@obj < 0) faults. */
static void check_va(struct bind_ctx *b, uint64_t va, int obj)
{
	int error;
	uint32_t word = gpu_read(b, va, &error);

	if (obj < 0) {
		igt_assert_f(error == -EFAULT, "a job reading %#" PRIx64 " ended with %d, "
			     "expected -EFAULT\n", va, error);
		return;
	}
	igt_assert_f(error == 0, "a job reading %#" PRIx64 " ended with %d\n", va, error);
	igt_assert_f(word == 0xb0000000u + obj, "%#" PRIx64 " reads %#x, expected object %d\n",
		     va, word, obj);
}

/*
 * bind-array: several operations in one call, in order, each on the VM as
 * the ones before left it: three maps, a map over an address an earlier
 * operation of the call unmapped, and an unmap; a single operation in the
 * array works as the inline one does.
 */
static void test_bind_array(uint32_t mode)
{
	struct drm_hmmgpu_vm_bind_op ops[6];
	struct bind_ctx b;
	uint32_t failed = ~0u;

	bind_init(&b, mode);
	ops[0] = hmmgpu_bind_op_map(b.bo[0], DATA_VA, page);
	ops[1] = hmmgpu_bind_op_map(b.bo[1], DATA_VA + page, page);
	ops[2] = hmmgpu_bind_op_map(b.bo[2], DATA_VA + 2 * page, page);
	ops[3] = hmmgpu_bind_op_unmap(DATA_VA + page, page);
	ops[4] = hmmgpu_bind_op_map(b.bo[3], DATA_VA + page, page);
	ops[5] = hmmgpu_bind_op_unmap(DATA_VA + 2 * page, page);
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, ARRAY_SIZE(ops), NULL, 0, &failed), 0);
	igt_assert_eq_u32(failed, 0);
	check_va(&b, DATA_VA, 0);
	check_va(&b, DATA_VA + page, 3);
	check_va(&b, DATA_VA + 2 * page, -1);

	ops[0] = hmmgpu_bind_op_unmap(DATA_VA, 2 * page);
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, 1, NULL, 0, &failed), 0);
	check_va(&b, DATA_VA, -1);
	check_va(&b, DATA_VA + page, -1);
	bind_fini(&b);
}

/*
 * bind-array-error: an operation in the middle that fails (a map over a
 * mapping: -EBUSY; one outside its object: -EINVAL) fails the call with its
 * error and index: the operations before it are done, it and those after
 * it are not.
 */
static void test_bind_array_error(uint32_t mode)
{
	struct drm_hmmgpu_vm_bind_op ops[5];
	struct bind_ctx b;
	uint32_t failed = 0;

	bind_init(&b, mode);
	ops[0] = hmmgpu_bind_op_map(b.bo[0], DATA_VA, page);
	ops[1] = hmmgpu_bind_op_map(b.bo[1], DATA_VA + page, page);
	ops[2] = hmmgpu_bind_op_map(b.bo[2], DATA_VA, page);	/* over ops[0]'s */
	ops[3] = hmmgpu_bind_op_map(b.bo[3], DATA_VA + 2 * page, page);
	ops[4] = hmmgpu_bind_op_unmap(DATA_VA, page);
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, ARRAY_SIZE(ops), NULL, 0, &failed),
		      -EBUSY);
	igt_assert_eq_u32(failed, 2);
	check_va(&b, DATA_VA, 0);
	check_va(&b, DATA_VA + page, 1);
	check_va(&b, DATA_VA + 2 * page, -1);

	/* Failing at the first: nothing done. */
	ops[0] = hmmgpu_bind_op_map(b.bo[3], DATA_VA + page, page);
	ops[1] = hmmgpu_bind_op_map(b.bo[3], DATA_VA + 3 * page, page);
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, 2, NULL, 0, &failed), -EBUSY);
	igt_assert_eq_u32(failed, 0);
	check_va(&b, DATA_VA + 3 * page, -1);

	/* The last: the others done. */
	ops[0] = hmmgpu_bind_op_unmap(DATA_VA, 2 * page);
	ops[1] = hmmgpu_bind_op_map(b.bo[2], DATA_VA + 3 * page, page);
	ops[2] = hmmgpu_bind_op_map(b.bo[2], DATA_VA + 4 * page, page);
	ops[2].offset = page;	/* past the object's end */
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, 3, NULL, 0, &failed), -EINVAL);
	igt_assert_eq_u32(failed, 2);
	check_va(&b, DATA_VA, -1);
	check_va(&b, DATA_VA + 3 * page, 2);
	check_va(&b, DATA_VA + 4 * page, -1);

	/* Success clears @failed_op. */
	failed = 7;
	ops[0] = hmmgpu_bind_op_unmap(DATA_VA, 8 * page);
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, 1, NULL, 0, &failed), 0);
	igt_assert_eq_u32(failed, 0);
	bind_fini(&b);
}

/*
 * bind-array-max: HMMGPU_VM_BIND_MAX_OPS operations in one call are done;
 * one more is refused (-EINVAL) and none is done; an array that cannot be
 * read gives -EFAULT; more than HMMGPU_MAX_SYNCS syncs -EINVAL.
 */
static void test_bind_array_max(uint32_t mode)
{
	struct drm_hmmgpu_vm_bind_op *ops;
	struct drm_hmmgpu_sync syncs[HMMGPU_MAX_SYNCS + 1];
	struct drm_hmmgpu_vm_bind arg;
	struct bind_ctx b;
	uint32_t failed;

	bind_init(&b, mode);
	ops = calloc(HMMGPU_VM_BIND_MAX_OPS + 1, sizeof(*ops));
	igt_assert(ops);
	for (unsigned int i = 0; i <= HMMGPU_VM_BIND_MAX_OPS; i++)
		ops[i] = hmmgpu_bind_op_map(b.bo[i % BIND_OBJS], DATA_VA + (uint64_t)i * page,
					    page);

	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, HMMGPU_VM_BIND_MAX_OPS + 1, NULL, 0,
					   &failed), -EINVAL);
	check_va(&b, DATA_VA, -1);
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, HMMGPU_VM_BIND_MAX_OPS, NULL, 0,
					   &failed), 0);
	check_va(&b, DATA_VA, 0);
	check_va(&b, DATA_VA + (HMMGPU_VM_BIND_MAX_OPS - 1ull) * page,
		 (HMMGPU_VM_BIND_MAX_OPS - 1) % BIND_OBJS);
	check_va(&b, DATA_VA + (uint64_t)HMMGPU_VM_BIND_MAX_OPS * page, -1);

	arg = (struct drm_hmmgpu_vm_bind) { .vm_id = b.c.vm, .num_ops = 2 };
	igt_assert_eq(igt_ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &arg) ? -errno : 0, -EFAULT);
	ops[0] = hmmgpu_bind_op_unmap(DATA_VA, page);
	ops[1] = hmmgpu_bind_op_unmap(DATA_VA + page, page);
	arg.ops = to_user_pointer(ops);
	arg.num_syncs = 1;
	igt_assert_eq(igt_ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &arg) ? -errno : 0, -EFAULT);
	errno = 0;
	for (unsigned int i = 0; i < ARRAY_SIZE(syncs); i++)
		syncs[i] = hmmgpu_sync_wait(syncobj_create(fd, DRM_SYNCOBJ_CREATE_SIGNALED));
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, 2, syncs, HMMGPU_MAX_SYNCS + 1,
					   NULL), -EINVAL);
	check_va(&b, DATA_VA, 0);
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, 2, syncs, HMMGPU_MAX_SYNCS, NULL), 0);
	check_va(&b, DATA_VA, -1);
	for (unsigned int i = 0; i < ARRAY_SIZE(syncs); i++)
		syncobj_destroy(fd, syncs[i].handle);

	free(ops);
	bind_fini(&b);
}

/*
 * bind-invalid: @bind filled beside an array, or @ops given with one
 * operation or none; a non-zero pad in an operation (@failed_op names it, the
 * one before it is done); a binary sync object with a value, an address or an
 * error word; a timeline point 0 to signal; a user fence with a handle: each
 * is refused with -EINVAL, and nothing else is bound.
 */
static void test_bind_invalid(uint32_t mode)
{
	struct drm_hmmgpu_vm_bind_op ops[2];
	struct drm_hmmgpu_sync sync, bad[6];
	struct drm_hmmgpu_vm_bind arg;
	struct hmmgpu_ufence *uf = hmmgpu_ufences_new(MAP_PRIVATE);
	struct bind_ctx b;
	uint32_t so, failed;

	bind_init(&b, mode);
	ops[0] = hmmgpu_bind_op_map(b.bo[0], DATA_VA, page);
	ops[1] = hmmgpu_bind_op_map(b.bo[1], DATA_VA + page, page);

	arg = (struct drm_hmmgpu_vm_bind) { .vm_id = b.c.vm, .num_ops = 2, .bind = ops[0],
					    .ops = to_user_pointer(ops) };
	igt_assert_eq(igt_ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &arg) ? -errno : 0, -EINVAL);
	for (uint32_t n = 0; n <= 1; n++) {
		arg = (struct drm_hmmgpu_vm_bind) { .vm_id = b.c.vm, .num_ops = n, .bind = ops[0],
						    .ops = to_user_pointer(ops) };
		igt_assert_eq(igt_ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &arg) ? -errno : 0, -EINVAL);
	}
	errno = 0;
	check_va(&b, DATA_VA, -1);

	ops[1].pad = 1;
	failed = 7;
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, 2, NULL, 0, &failed), -EINVAL);
	igt_assert_eq_u32(failed, 1);
	check_va(&b, DATA_VA, 0);
	check_va(&b, DATA_VA + page, -1);
	hmmgpu_vm_unmap(fd, b.c.vm, DATA_VA, page);
	ops[1].pad = 0;

	so = syncobj_create(fd, DRM_SYNCOBJ_CREATE_SIGNALED);
	bad[0] = hmmgpu_sync_signal(so);
	bad[0].value = 1;
	bad[1] = hmmgpu_sync_signal(so);
	bad[1].addr = to_user_pointer(&uf->value);
	bad[2] = hmmgpu_sync_signal(so);
	bad[2].error_addr = to_user_pointer(&uf->error);
	bad[3] = hmmgpu_sync_wait(so);
	bad[3].value = 1;
	bad[4] = hmmgpu_sync_timeline_signal(so, 0);
	bad[5] = hmmgpu_ufence_sync(uf, 1);
	bad[5].handle = so;
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		sync = bad[i];
		igt_assert_f(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, 2, &sync, 1, NULL) == -EINVAL,
			     "sync %u was not refused with -EINVAL\n", i);
		check_va(&b, DATA_VA, -1);
	}
	igt_assert_eq_u64(hmmgpu_ufence_value(uf), 0);

	syncobj_destroy(fd, so);
	hmmgpu_ufences_free(uf);
	bind_fini(&b);
}

/*
 * bind-syncs: a bind waits for an (already signalled) sync object, and
 * signals, before it returns, a binary sync object, a timeline point and a
 * user fence, in every mode (binds are synchronous: their fence does not
 * wait for memory); a job waiting for the bind's timeline point sees the
 * mapping. A bind whose operation fails signals them all the same, with its
 * error.
 */
static void test_bind_syncs(uint32_t mode)
{
	struct drm_hmmgpu_sync syncs[4], job_syncs[2];
	struct drm_hmmgpu_vm_bind_op ops[2];
	uint32_t signalled, bin, tl, failed;
	struct hmmgpu_done *done;
	struct drm_hmmgpu_cmd cmd;
	struct hmmgpu_ufence *uf;
	struct bind_ctx b;
	uint64_t point;

	bind_init(&b, mode);
	uf = hmmgpu_ufences_new(MAP_PRIVATE);
	signalled = syncobj_create(fd, DRM_SYNCOBJ_CREATE_SIGNALED);
	bin = syncobj_create(fd, 0);
	tl = syncobj_create(fd, 0);

	syncs[0] = hmmgpu_sync_wait(signalled);
	syncs[1] = hmmgpu_ufence_sync(uf, 1);
	syncs[2] = hmmgpu_sync_signal(bin);
	syncs[3] = hmmgpu_sync_timeline_signal(tl, 2);
	ops[0] = hmmgpu_bind_op_map(b.bo[1], DATA_VA, page);
	ops[1] = hmmgpu_bind_op_map(b.bo[2], DATA_VA + page, page);
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, 2, syncs, 4, NULL), 0);
	igt_assert_f(hmmgpu_ufence_value(uf) == 1, "the user fence was not written when the bind "
		     "returned\n");
	igt_assert_eq(uf->error, 0);
	igt_assert(hmmgpu_syncobj_signalled(fd, bin, NULL));
	igt_assert_eq(hmmgpu_fence_error(fd, bin), 0);
	point = 0;
	igt_assert_eq(drmSyncobjQuery(fd, &tl, &point, 1), 0);
	igt_assert_eq_u64(point, 2);

	/* A job waiting for the bind's point. */
	done = hmmgpu_done_create(fd, mode);
	hmmgpu_cmd_copy(&cmd, RES_VA + 8, DATA_VA + page, 4);
	job_syncs[0] = hmmgpu_sync_timeline_wait(tl, 2);
	job_syncs[1] = hmmgpu_done_signal(done);
	exec_job(&b.c, &cmd, 1, job_syncs, 2);
	igt_assert_eq(hmmgpu_done_wait(done, JOB_WAIT_NS), 0);
	igt_assert_eq_u32((uint32_t)b.c.res[1], 0xb0000002u);
	hmmgpu_done_destroy(done);
	check_va(&b, DATA_VA, 1);

	/* A failing operation: the syncs are signalled, with its error. */
	ops[0] = hmmgpu_bind_op_map(b.bo[3], DATA_VA + 2 * page, page);
	ops[1] = hmmgpu_bind_op_map(b.bo[3], DATA_VA, page);
	syncs[1] = hmmgpu_ufence_sync(uf, 2);
	syncs[3] = hmmgpu_sync_timeline_signal(tl, 3);
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, ops, 2, syncs, 4, &failed), -EBUSY);
	igt_assert_eq_u32(failed, 1);
	igt_assert_eq_u64(hmmgpu_ufence_value(uf), 2);
	igt_assert_eq(uf->error, -EBUSY);
	igt_assert_eq(hmmgpu_fence_error(fd, bin), -EBUSY);
	point = 0;
	igt_assert_eq(drmSyncobjQuery(fd, &tl, &point, 1), 0);
	igt_assert_eq_u64(point, 3);
	check_va(&b, DATA_VA + 2 * page, 3);

	syncobj_destroy(fd, signalled);
	syncobj_destroy(fd, bin);
	syncobj_destroy(fd, tl);
	hmmgpu_ufences_free(uf);
	bind_fini(&b);
}

/*
 * bind-wait-error: a bind whose wait sync signalled with an error (the fence
 * of a job that faulted, on a VM that has fences) fails with that error
 * before any operation: @failed_op is 0 and nothing is mapped. So does one
 * that waits for a timeline point whose job faulted, although the point
 * itself (a dma_fence_chain node) signals without the error: the uAPI gives
 * a point the error of its own fence. A wait sync that holds no fence is
 * refused (-EINVAL).
 */
static void test_bind_wait_error(uint32_t mode)
{
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync sync;
	struct drm_hmmgpu_cmd cmd;
	uint32_t bad, bad_tl, empty, failed = 7;
	struct bind_ctx b;
	struct ctx f;
	uint32_t fmode = mode;

	if (mode == DRM_HMMGPU_VM_MODE_FAULT) {
		fmode = hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PREFAULT) ?
			DRM_HMMGPU_VM_MODE_PREFAULT : DRM_HMMGPU_VM_MODE_PINNED;
		igt_require_f(hmmgpu_has_vm_mode(fd, fmode), "no mode whose jobs have fences\n");
	}
	bind_init(&b, mode);
	ctx_init(&f, fd, fmode);
	bad = syncobj_create(fd, 0);
	empty = syncobj_create(fd, 0);
	hmmgpu_cmd_write64(&cmd, UNMAPPED_VA, 1);
	sync = hmmgpu_sync_signal(bad);
	exec_job(&f, &cmd, 1, &sync, 1);
	igt_assert_eq(syncobj_error(fd, bad), -EFAULT);

	op = hmmgpu_bind_op_map(b.bo[0], DATA_VA, page);
	sync = hmmgpu_sync_wait(bad);
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, &op, 1, &sync, 1, &failed), -EFAULT);
	igt_assert_eq_u32(failed, 0);
	check_va(&b, DATA_VA, -1);

	bad_tl = syncobj_create(fd, 0);
	sync = hmmgpu_sync_timeline_signal(bad_tl, 5);
	exec_job(&f, &cmd, 1, &sync, 1);
	sync = hmmgpu_sync_timeline_wait(bad_tl, 5);
	failed = 7;
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, &op, 1, &sync, 1, &failed), -EFAULT);
	igt_assert_eq_u32(failed, 0);
	check_va(&b, DATA_VA, -1);

	sync = hmmgpu_sync_wait(empty);
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, &op, 1, &sync, 1, &failed), -EINVAL);
	check_va(&b, DATA_VA, -1);

	syncobj_destroy(fd, bad);
	syncobj_destroy(fd, bad_tl);
	syncobj_destroy(fd, empty);
	ctx_fini(&f);
	bind_fini(&b);
}

/*
 * bind-wait: binds are synchronous: a bind whose wait sync is an
 * unsignalled sw_sync fence returns only after another thread has signalled
 * it, with its operation done.
 */
static void test_bind_wait(uint32_t mode)
{
	struct drm_hmmgpu_vm_bind_op op;
	struct drm_hmmgpu_sync sync;
	struct sw_sync_opener o;
	struct bind_ctx b;
	uint32_t gate;
	int tl;

	bind_init(&b, mode);
	tl = sw_sync_timeline();
	gate = sw_sync_syncobj(fd, tl, 1);
	op = hmmgpu_bind_op_map(b.bo[2], DATA_VA, page);
	sync = hmmgpu_sync_wait(gate);
	sw_sync_open_later(&o, tl);
	igt_assert_eq(__hmmgpu_vm_bind_ops(fd, b.c.vm, &op, 1, &sync, 1, NULL), 0);
	igt_assert_f(sw_sync_opened(&o), "the bind returned before its wait sync signalled\n");
	sw_sync_opener_join(&o);
	check_va(&b, DATA_VA, 2);

	syncobj_destroy(fd, gate);
	close(tl);
	bind_fini(&b);
}

igt_main
{
	/* Static: changed inside subtests, between sigsetjmp() and siglongjmp(). */
	static const struct hmmgpu_vm_mode *m;

	igt_fixture {
		page = sysconf(_SC_PAGESIZE);
		fd = hmmgpu_open_vm_device();
	}

	igt_describe("A fault-mode job signalling a binary or timeline sync object is refused "
		     "(-EOPNOTSUPP): the sync object stays empty (no sync_file to export, "
		     "merge or import), the point never appears, nothing runs.");
	igt_subtest("fault-signal-refused") {
		igt_require(has_fault_mode());
		test_fault_signal_refused();
	}

	igt_describe("A pending fault-mode job leaves no fence in the reservation of the "
		     "object it writes: the dma-buf's exported sync_file has signalled.");
	igt_subtest("fault-no-implicit-fence") {
		igt_require(has_fault_mode());
		test_fault_no_implicit_fence();
	}

	igt_describe("Up to 16 user fences per job, each written with its value after the "
		     "job's work and its error word (0, -EFAULT on a fault); jobs writing one "
		     "fence write it in order.");
	igt_subtest_with_dynamic("user-fence") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_user_fence(m->flags);
	}

	igt_describe("A user fence's error word is written before its value: with the "
		     "kernel held on a userfaultfd fault writing the error word, the value "
		     "is not written yet.");
	igt_subtest_with_dynamic("user-fence-error-first") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_user_fence_error_first(m->flags);
	}

	igt_describe("WAIT_USER_FENCE compares masked, unsigned, as EQ, NEQ, GT, GTE, LT and "
		     "LTE say, -ETIME when false; a signal returns the time left.");
	igt_subtest("user-fence-wait")
		test_user_fence_wait();

	igt_describe("Bad user fence waits (op, flags, alignment: -EINVAL; unreadable: "
		     "-EFAULT) and bad syncs of an exec (-EINVAL) are refused, nothing runs.");
	igt_subtest_with_dynamic("user-fence-invalid") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_user_fence_invalid(m->flags);
	}

	igt_describe("A faulting prefault or pinned job's fence reads -EFAULT in its "
		     "sync_file's status; jobs waiting for it end with -EFAULT, unrun.");
	igt_subtest_with_dynamic("fence-error") {
		for_each_fence_mode_dynamic(fd, m)
			test_fence_error(m->flags);
	}

	igt_describe("A chain of jobs on two VMs, each waiting for a timeline point and "
		     "signalling the next, runs in order once its gate opens; a point not "
		     "submitted, or point 0 to signal, is refused.");
	igt_subtest_with_dynamic("timeline") {
		for_each_fence_mode_dynamic(fd, m)
			test_timeline(m->flags);
	}

	igt_describe("A job's fence as a sync_file into another file's sync object, merged, "
		     "and into a dma-buf's reservation: all wait for the job.");
	igt_subtest_with_dynamic("sync-file") {
		for_each_fence_mode_dynamic(fd, m)
			test_sync_file(m->flags);
	}

	igt_describe("A job waiting for a sw_sync fence runs once the timeline reaches it; "
		     "one whose fence signals -ENOENT ends with it, unrun.");
	igt_subtest_with_dynamic("sw-sync") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_sw_sync(m->flags);
	}

	igt_describe("A job waiting for a vgem fence, exported from vgem's dma-buf as a "
		     "sync_file, runs once vgem signals it.");
	igt_subtest_with_dynamic("vgem") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_vgem(m->flags);
	}

	igt_describe("A job waiting for the out-fence of a vkms atomic commit ends after it "
		     "signalled.");
	igt_subtest_with_dynamic("vkms") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_vkms(m->flags);
	}

	igt_describe("Several VM_BIND operations in one call run in order, each on what the "
		     "ones before left.");
	igt_subtest_with_dynamic("bind-array") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_bind_array(m->flags);
	}

	igt_describe("A failing operation of a VM_BIND array returns its error and index; the "
		     "operations before it are done, those after it not.");
	igt_subtest_with_dynamic("bind-array-error") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_bind_array_error(m->flags);
	}

	igt_describe("512 operations in one VM_BIND are done, 513 refused with none done; "
		     "unreadable arrays -EFAULT, 17 syncs -EINVAL.");
	igt_subtest_with_dynamic("bind-array-max") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_bind_array_max(m->flags);
	}

	igt_describe("A bind signals its binary, timeline and user fence syncs before it "
		     "returns, with the error of a failed operation.");
	igt_subtest_with_dynamic("bind-syncs") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_bind_syncs(m->flags);
	}

	igt_describe("VM_BIND refuses @bind beside an array, @ops with one operation or "
		     "none, a non-zero pad in an operation and syncs with fields their type "
		     "does not use, with -EINVAL.");
	igt_subtest_with_dynamic("bind-invalid") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_bind_invalid(m->flags);
	}

	igt_describe("A bind whose wait sync signalled with an error, a binary sync object's "
		     "fence or a timeline point's, fails with it, nothing done; one without a "
		     "fence is refused.");
	igt_subtest_with_dynamic("bind-wait-error") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_bind_wait_error(m->flags);
	}

	igt_describe("A bind waits for its wait sync: it returns after another thread "
		     "signalled it.");
	igt_subtest_with_dynamic("bind-wait") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			test_bind_wait(m->flags);
	}

	igt_fixture {
		if (kms >= 0)
			drm_close_driver(kms);
		drm_close_driver(fd);
	}
}
