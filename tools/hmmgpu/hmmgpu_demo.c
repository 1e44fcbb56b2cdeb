// SPDX-License-Identifier: MIT
/*
 * What `make run` shows: a malloc'd buffer bound to the GPU in each VM mode
 * the device offers (fault, prefault, pinned), GPU copies through it while
 * the CPU writes, remaps and unmaps parts of it, what the GPU saw, and each
 * VM's statistics side by side.
 *
 * It doubles as a smoke test: every step says "ok" or "FAILED", and the exit
 * status is non-zero when a step did not behave as expected.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xf86drm.h>

#include "hmmgpu_util.h"

/* The buffer, and the GEM object the GPU copies it to, both 4 MiB. */
#define BUF_SIZE	(4ul << 20)
#define HUGE_SIZE	(2ul << 20)
#define PAGE		4096ul
#define WORDS		(BUF_SIZE / 4)
#define BUF_VA		0x100000000ull
#define BO_VA		0x200000000ull

/* Where the steps act, in bytes from the start of the buffer. */
#define FILL_OFF	0x100000ul
#define FILL_SIZE	0x10000ul
#define FILL_VALUE	0xf111f111u
#define HOLE_OFF	0x180000ul
#define REMAP_OFF	0x300000ul
#define REMAP_SIZE	0x10000ul

/* What the words hold: a tag in the top nibble, the word's index below. */
#define ORIG(i)		(0xa0000000u | (uint32_t)(i))
#define CPU(i)		(0xb0000000u | (uint32_t)(i))
#define NEW(i)		(0xd0000000u | (uint32_t)(i))

/* The words the CPU changes in step 2: at both ends of both halves. */
static const size_t cpu_writes[] = { 0x000040, 0x1ffffc, 0x200000, 0x3ffffc };

#define DETAIL		160

struct mode {
	uint32_t flag;
	const char *name;
	const char *what;
	const char *sync;	/* how its jobs are waited for */
};

static const struct mode modes[] = {
	{ DRM_HMMGPU_VM_MODE_FAULT, "fault",
	  "the GPU faults, the kernel mirrors what it touches",
	  "jobs have no fence: each signals a user fence, waited for with WAIT_USER_FENCE" },
	{ DRM_HMMGPU_VM_MODE_PREFAULT, "prefault",
	  "each submission first mirrors what was invalidated",
	  "each job signals a sync object, waited for with SYNCOBJ_WAIT" },
	{ DRM_HMMGPU_VM_MODE_PINNED, "pinned",
	  "pages pinned at bind, and again after an invalidation",
	  "each job signals a sync object, waited for with SYNCOBJ_WAIT" },
};

struct demo {
	const struct mode *mode;
	int fd;
	uint32_t vm;
	uint32_t userptr;
	uint32_t bo_handle;
	uint32_t *buf;		/* the malloc'd buffer */
	uint32_t *bo;		/* the GEM object, as the CPU maps it */
	uint32_t *want;		/* what the buffer, then the object, should hold */
	bool hole;		/* a page of the buffer is unmapped */
	const char *from;	/* what the last error came from */
	struct drm_hmmgpu_vm_stats stats;
};

static int failures;

/* Prints the device's parameters; returns its modes, or 0 if it cannot run the demo. */
static uint32_t describe(int fd)
{
	uint64_t features = hmmgpu_param(fd, DRM_HMMGPU_PARAM_FEATURES);
	uint64_t max = hmmgpu_param(fd, DRM_HMMGPU_PARAM_GEM_MAX_SIZE);
	uint32_t vm_modes = hmmgpu_param(fd, DRM_HMMGPU_PARAM_VM_MODES);
	size_t i;

	printf("features  %s%s%s; GEM objects up to %llu MiB; GPU pages of %llu bytes\n",
	       features & DRM_HMMGPU_FEATURE_GEM_SHMEM ? "gem-shmem " : "",
	       features & DRM_HMMGPU_FEATURE_USERPTR ? "userptr " : "",
	       features & DRM_HMMGPU_FEATURE_VM ? "vm" : "", (unsigned long long)max >> 20,
	       (unsigned long long)hmmgpu_param(fd, DRM_HMMGPU_PARAM_PAGE_SIZE));
	printf("modes    ");
	for (i = 0; i < ARRAY_SIZE(modes); i++)
		if (vm_modes & modes[i].flag)
			printf(" %s", modes[i].name);
	for (i = 0; i < ARRAY_SIZE(modes); i++)
		if (~vm_modes & modes[i].flag)
			printf(" (%s not offered)", modes[i].name);
	printf("\n");
	if ((~features & (DRM_HMMGPU_FEATURE_USERPTR | DRM_HMMGPU_FEATURE_VM)) ||
	    max < BUF_SIZE || !vm_modes) {
		printf("demo: the device needs userptr, VMs, a VM mode and 4 MiB objects\n");
		return 0;
	}
	printf("buffer    4 MiB, posix_memalign'd 2 MiB aligned, MADV_HUGEPAGE; a userptr\n");
	printf("          bound at GPU VA 0x%llx as two mappings of 2 MiB\n", BUF_VA);
	printf("bo        4 MiB GEM object, mmap'd by the CPU; at GPU VA 0x%llx\n", BO_VA);
	return vm_modes;
}

static void report(int step, const char *what, bool ok, const char *detail)
{
	if (step)
		printf("  %d %-32s %-6s  %s\n", step, what, ok ? "ok" : "FAILED", detail);
	else
		printf("  %-34s %-6s  %s\n", what, ok ? "ok" : "FAILED", detail);
	failures += !ok;
}

static bool fail(char *detail, const char *what, int err)
{
	snprintf(detail, DETAIL, "%s: %s", what, hmmgpu_errname(err));
	return false;
}

/* Runs @count commands on the VM and waits: 0, or the error of d->from. */
static int run(struct demo *d, const struct drm_hmmgpu_cmd *cmds, uint32_t count)
{
	struct hmmgpu_waiter w;
	int err;

	d->from = "syncobj";
	err = hmmgpu_waiter_init(d->fd, &w);
	if (err)
		return err;
	err = hmmgpu_exec_wait(d->fd, d->vm, cmds, count, 0, &w, &d->from);
	hmmgpu_waiter_fini(d->fd, &w);
	return err;
}

static bool job_failed(struct demo *d, int err, char *detail)
{
	snprintf(detail, DETAIL, "%s error %s, expected success", d->from, hmmgpu_errname(err));
	return false;
}

static struct drm_hmmgpu_cmd copy_cmd(size_t offset, size_t size)
{
	return (struct drm_hmmgpu_cmd){
		.op = HMMGPU_CMD_COPY, .dst = BO_VA + offset, .src = BUF_VA + offset, .size = size,
	};
}

/* Compares @got with d->want; describes the word at @show, or the first that differs. */
static bool check(struct demo *d, const uint32_t *got, const char *name, size_t show,
		  char *detail)
{
	size_t i, bad = 0;
	int n;

	for (i = 0; i < WORDS; i++)
		if (got[i] != d->want[i] && !bad++)
			show = i * 4;
	n = snprintf(detail, DETAIL, "%s[0x%06zx] = 0x%08x, expected 0x%08x", name, show,
		     got[show / 4], d->want[show / 4]);
	if (bad)
		snprintf(detail + n, DETAIL - n, " (%zu of %lu words differ)", bad, WORDS);
	return !bad;
}

/* Clears the object, runs the copies, and checks what arrived. */
static bool gpu_copy(struct demo *d, const struct drm_hmmgpu_cmd *cmds, uint32_t count,
		     size_t show, char *detail)
{
	int err;

	memset(d->bo, 0, BUF_SIZE);
	err = run(d, cmds, count);
	if (err)
		return job_failed(d, err, detail);
	return check(d, d->bo, "bo", show, detail);
}

static bool copy_all(struct demo *d, size_t show, char *detail)
{
	struct drm_hmmgpu_cmd cmd = copy_cmd(0, BUF_SIZE);

	return gpu_copy(d, &cmd, 1, show, detail);
}

/* Step 1: the GPU copies the buffer to the object; the object holds what the CPU wrote. */
static bool step_copy(struct demo *d, char *detail)
{
	return copy_all(d, 0, detail);
}

/* Step 2: the CPU changes a few words; a new copy carries them. */
static bool step_cpu_write(struct demo *d, char *detail)
{
	size_t i, w;

	for (i = 0; i < ARRAY_SIZE(cpu_writes); i++) {
		w = cpu_writes[i] / 4;
		d->buf[w] = CPU(w);
		d->want[w] = CPU(w);
	}
	return copy_all(d, cpu_writes[2], detail);
}

/* Step 3: the GPU fills part of the buffer; the CPU reads the fill. */
static bool step_fill(struct demo *d, char *detail)
{
	struct drm_hmmgpu_cmd cmd = {
		.op = HMMGPU_CMD_FILL, .dst = BUF_VA + FILL_OFF, .size = FILL_SIZE,
		.value = FILL_VALUE,
	};
	size_t i;
	int err;

	for (i = FILL_OFF / 4; i < (FILL_OFF + FILL_SIZE) / 4; i++)
		d->want[i] = FILL_VALUE;
	err = run(d, &cmd, 1);
	if (err)
		return job_failed(d, err, detail);
	return check(d, d->buf, "buf", FILL_OFF, detail);
}

/* Step 4: the CPU maps new pages over part of the buffer; the GPU copies them. */
static bool step_remap(struct demo *d, char *detail)
{
	char *at = (char *)d->buf + REMAP_OFF;
	size_t i;

	if (mmap(at, REMAP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0) == MAP_FAILED)
		return fail(detail, "mmap", -errno);
	for (i = REMAP_OFF / 4; i < (REMAP_OFF + REMAP_SIZE) / 4; i++) {
		d->buf[i] = NEW(i);
		d->want[i] = NEW(i);
	}
	return copy_all(d, REMAP_OFF, detail);
}

/* Step 5: the CPU unmaps a page of the first half; a copy of the whole buffer faults on it. */
static bool step_unmap(struct demo *d, char *detail)
{
	struct drm_hmmgpu_cmd cmd = copy_cmd(0, BUF_SIZE);
	int err;

	if (munmap((char *)d->buf + HOLE_OFF, PAGE))
		return fail(detail, "munmap", -errno);
	d->hole = true;
	err = run(d, &cmd, 1);
	if (strcmp(d->from, "job"))
		snprintf(detail, DETAIL, "%s error %s, expected job error -EFAULT", d->from,
			 hmmgpu_errname(err));
	else
		snprintf(detail, DETAIL, "job error %s, expected -EFAULT",
			 err ? hmmgpu_errname(err) : "none");
	return !strcmp(d->from, "job") && err == -EFAULT;
}

/*
 * Step 6: a copy of the other half, a mapping of its own, still works. (How
 * much of the mapping with the hole the GPU may still reach is up to the mode:
 * fault mode mirrors around the hole, the others may leave the whole mapping
 * unmirrored.)
 */
static bool step_other_half(struct demo *d, char *detail)
{
	struct drm_hmmgpu_cmd cmd = copy_cmd(HUGE_SIZE, BUF_SIZE - HUGE_SIZE);

	/* Nothing is copied to the first half of the object: it keeps its zeros. */
	memset(d->want, 0, HUGE_SIZE);
	return gpu_copy(d, &cmd, 1, REMAP_OFF, detail);
}

/* Whether @min <= @got <= @max; if not, says so in @detail. */
static bool stat_in(char *detail, const char *name, uint64_t got, uint64_t min, uint64_t max)
{
	int n;

	if (got >= min && got <= max)
		return true;
	n = snprintf(detail, DETAIL, "%s = %llu, expected ", name, (unsigned long long)got);
	if (min == max)
		snprintf(detail + n, DETAIL - n, "%llu", (unsigned long long)min);
	else
		snprintf(detail + n, DETAIL - n, "at least %llu", (unsigned long long)min);
	return false;
}

/* Step 7: the VM's counters agree with what happened. */
static bool step_stats(struct demo *d, char *detail)
{
	struct drm_hmmgpu_vm_stats *s = &d->stats;
	bool fault = d->mode->flag == DRM_HMMGPU_VM_MODE_FAULT;
	bool pinned = d->mode->flag == DRM_HMMGPU_VM_MODE_PINNED;
	int err;

	err = hmmgpu_vm_stats(d->fd, d->vm, s);
	if (err) {
		s->vm_id = 0;
		return fail(detail, "VM_STATS", err);
	}
	snprintf(detail, DETAIL, "%llu jobs done, %llu failed; %llu faults; %llu invalidations",
		 (unsigned long long)s->jobs_done, (unsigned long long)s->jobs_failed,
		 (unsigned long long)s->faults, (unsigned long long)s->invalidations);
	return stat_in(detail, "jobs_done", s->jobs_done, 5, 5) &&
	       stat_in(detail, "jobs_failed", s->jobs_failed, 1, 1) &&
	       stat_in(detail, "faults", s->faults, fault, fault ? UINT64_MAX : 0) &&
	       stat_in(detail, "pinned_pages", s->pinned_pages, pinned, pinned ? UINT64_MAX : 0) &&
	       stat_in(detail, "invalidations", s->invalidations, 2, UINT64_MAX);
}

static const struct {
	const char *what;
	bool (*run)(struct demo *d, char *detail);
} steps[] = {
	{ "gpu copies buffer to bo", step_copy },
	{ "cpu writes 4 words, gpu copies", step_cpu_write },
	{ "gpu fills 64 KiB, cpu reads", step_fill },
	{ "cpu remaps 64 KiB, gpu copies", step_remap },
	{ "cpu unmaps 4 KiB, gpu copies it", step_unmap },
	{ "gpu copies the other 2 MiB", step_other_half },
	{ "vm statistics add up", step_stats },
};

/* The buffer: 2 MiB aligned so that huge pages may back it, filled with ORIG(). */
static bool make_buffer(struct demo *d, char *detail)
{
	void *buf;
	size_t i;
	int err;

	err = posix_memalign(&buf, HUGE_SIZE, BUF_SIZE);
	if (err)
		return fail(detail, "posix_memalign", -err);
	d->buf = buf;
	madvise(buf, BUF_SIZE, MADV_HUGEPAGE);
	for (i = 0; i < WORDS; i++) {
		d->buf[i] = ORIG(i);
		d->want[i] = ORIG(i);
	}
	return true;
}

/* The object, mapped by the CPU. */
static bool make_bo(struct demo *d, char *detail)
{
	void *ptr;
	int err;

	err = hmmgpu_gem_create(d->fd, BUF_SIZE, &d->bo_handle);
	if (err)
		return fail(detail, "GEM_CREATE", err);
	err = hmmgpu_gem_mmap(d->fd, d->bo_handle, BUF_SIZE, &ptr);
	if (err)
		return fail(detail, "mmap of the bo", err);
	d->bo = ptr;
	return true;
}

/*
 * A VM of @mode with the buffer (a userptr) bound in it as two mappings, one
 * per 2 MiB half, and the object after it: one fenced asynchronous bind of
 * three operations, waited for through the fence its sync object has from the
 * call on.
 */
static bool setup(struct demo *d, uint32_t mode, char *detail)
{
	struct drm_hmmgpu_vm_bind_op ops[3];
	struct hmmgpu_waiter w;
	int err;

	err = hmmgpu_vm_create(d->fd, mode, &d->vm);
	if (err)
		return fail(detail, "VM_CREATE", err);
	if (!make_buffer(d, detail) || !make_bo(d, detail))
		return false;
	err = hmmgpu_userptr_create(d->fd, d->buf, BUF_SIZE, 0, &d->userptr);
	if (err)
		return fail(detail, "USERPTR_CREATE", err);
	memset(ops, 0, sizeof(ops));
	for (int i = 0; i < 2; i++)
		ops[i] = (struct drm_hmmgpu_vm_bind_op){
			.op = DRM_HMMGPU_VM_BIND_MAP, .handle = d->userptr,
			.va = BUF_VA + i * HUGE_SIZE, .size = HUGE_SIZE, .offset = i * HUGE_SIZE,
		};
	ops[2] = (struct drm_hmmgpu_vm_bind_op){
		.op = DRM_HMMGPU_VM_BIND_MAP, .handle = d->bo_handle, .va = BO_VA, .size = BUF_SIZE,
	};
	err = hmmgpu_waiter_init(d->fd, &w);
	if (err)
		return fail(detail, "SYNCOBJ_CREATE", err);
	err = hmmgpu_vm_bind_async_wait(d->fd, d->vm, ops, 3, &w, &d->from);
	hmmgpu_waiter_fini(d->fd, &w);
	if (err)
		return fail(detail, "asynchronous VM_BIND of the buffer and the bo", err);
	return true;
}

static void teardown(struct demo *d)
{
	if (d->vm)
		hmmgpu_vm_destroy(d->fd, d->vm);
	hmmgpu_gem_close(d->fd, d->userptr);
	hmmgpu_gem_close(d->fd, d->bo_handle);
	if (d->bo)
		munmap(d->bo, BUF_SIZE);
	/* Give free() back a whole buffer. */
	if (d->hole)
		mmap((char *)d->buf + HOLE_OFF, PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	free(d->buf);
}

/* Runs every step in a VM of @m; keeps the VM's statistics in @stats. */
static void demo_mode(int fd, const struct mode *m, uint32_t *want,
		      struct drm_hmmgpu_vm_stats *stats)
{
	struct demo d = { .mode = m, .fd = fd, .want = want };
	char detail[DETAIL];
	size_t i;
	bool ok;

	ok = setup(&d, m->flag, detail);
	printf("\n%s mode, vm %u: %s\n  (%s)\n", m->name, d.vm, m->what, m->sync);
	if (!ok)
		report(0, "set up buffer, bo and vm", false, detail);
	for (i = 0; ok && i < ARRAY_SIZE(steps); i++)
		report(i + 1, steps[i].what, steps[i].run(&d, detail), detail);
	*stats = d.stats;
	teardown(&d);
}

#define STAT(field)	{ #field, offsetof(struct drm_hmmgpu_vm_stats, field) }

static const struct {
	const char *name;
	size_t offset;
} stat_rows[] = {
	STAT(faults), STAT(faults_4k), STAT(faults_2m), STAT(entries_4k), STAT(entries_2m),
	STAT(invalidations), STAT(retries), STAT(pinned_pages), STAT(jobs_done),
	STAT(jobs_failed),
};

static void print_stats(const struct drm_hmmgpu_vm_stats *stats)
{
	size_t i, r;

	printf("\n%-14s", "statistics");
	for (i = 0; i < ARRAY_SIZE(modes); i++)
		if (stats[i].vm_id)
			printf("%10s", modes[i].name);
	printf("\n");
	for (r = 0; r < ARRAY_SIZE(stat_rows); r++) {
		printf("%-14s", stat_rows[r].name);
		for (i = 0; i < ARRAY_SIZE(modes); i++)
			if (stats[i].vm_id)
				printf("%10llu", (unsigned long long)*(const __u64 *)
				       ((const char *)&stats[i] + stat_rows[r].offset));
		printf("\n");
	}
}

int main(void)
{
	struct drm_hmmgpu_vm_stats stats[ARRAY_SIZE(modes)] = { 0 };
	uint32_t vm_modes, *want;
	size_t i;
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = hmmgpu_open("hmmgpu");
	if (fd < 0) {
		printf("demo: no hmmgpu render node\n");
		return 1;
	}
	vm_modes = describe(fd);
	want = malloc(BUF_SIZE);
	if (!vm_modes || !want)
		return 1;

	for (i = 0; i < ARRAY_SIZE(modes); i++)
		if (vm_modes & modes[i].flag)
			demo_mode(fd, &modes[i], want, &stats[i]);
	print_stats(stats);

	free(want);
	close(fd);
	if (failures)
		printf("\ndemo: %d step%s not as expected\n", failures, failures > 1 ? "s" : "");
	else
		printf("\ndemo: all steps as expected\n");
	return failures ? 1 : 0;
}
