// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <xf86drm.h>

#include "igt_core.h"
#include "igt_hmmgpu.h"
#include "ioctl_wrappers.h"

/* Runs @request; returns 0 or -errno, and leaves errno clear for asserts. */
static int __hmmgpu_ioctl(int fd, unsigned long request, void *arg)
{
	int err = 0;

	if (igt_ioctl(fd, request, arg))
		err = -errno;
	errno = 0;

	return err;
}

/**
 * __hmmgpu_get_param - Reads the device parameter @param into @value.
 */
int __hmmgpu_get_param(int fd, uint32_t param, uint64_t *value)
{
	struct drm_hmmgpu_get_param arg = { .param = param };
	int err;

	err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_GET_PARAM, &arg);
	if (!err)
		*value = arg.value;

	return err;
}

uint64_t hmmgpu_get_param(int fd, uint32_t param)
{
	uint64_t value = 0;

	igt_assert_eq(__hmmgpu_get_param(fd, param, &value), 0);
	return value;
}

/**
 * __hmmgpu_gem_create - Creates a GEM object of @size bytes.
 */
int __hmmgpu_gem_create(int fd, uint64_t size, uint32_t flags, uint32_t *handle)
{
	struct drm_hmmgpu_gem_create arg = { .size = size, .flags = flags };
	int err;

	err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_GEM_CREATE, &arg);
	if (!err)
		*handle = arg.handle;

	return err;
}

uint32_t hmmgpu_gem_create(int fd, uint64_t size)
{
	uint32_t handle = 0;

	igt_assert_eq(__hmmgpu_gem_create(fd, size, 0, &handle), 0);
	igt_assert_neq_u32(handle, 0);
	return handle;
}

/**
 * __hmmgpu_gem_mmap_offset - Gets the fake offset that maps @handle.
 */
int __hmmgpu_gem_mmap_offset(int fd, uint32_t handle, uint32_t flags, uint64_t *offset)
{
	struct drm_hmmgpu_gem_mmap_offset arg = { .handle = handle, .flags = flags };
	int err;

	err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET, &arg);
	if (!err)
		*offset = arg.offset;

	return err;
}

uint64_t hmmgpu_gem_mmap_offset(int fd, uint32_t handle)
{
	uint64_t offset = 0;

	igt_assert_eq(__hmmgpu_gem_mmap_offset(fd, handle, 0, &offset), 0);
	return offset;
}

/**
 * __hmmgpu_gem_mmap - Maps the first @size bytes of @handle, shared.
 *
 * Returns: the mapping, or NULL with errno set.
 */
void *__hmmgpu_gem_mmap(int fd, uint32_t handle, uint64_t size, int prot)
{
	uint64_t offset;
	void *ptr;
	int err;

	err = __hmmgpu_gem_mmap_offset(fd, handle, 0, &offset);
	if (err) {
		errno = -err;
		return NULL;
	}

	ptr = mmap(NULL, size, prot, MAP_SHARED, fd, offset);
	return ptr == MAP_FAILED ? NULL : ptr;
}

void *hmmgpu_gem_mmap(int fd, uint32_t handle, uint64_t size, int prot)
{
	void *ptr = __hmmgpu_gem_mmap(fd, handle, size, prot);

	igt_assert_f(ptr, "mmap of handle %u, size %llu failed\n", handle,
		     (unsigned long long)size);
	errno = 0;
	return ptr;
}

/**
 * __hmmgpu_userptr_create - Creates a userptr object for [@addr, @addr + @size)
 * of this process; returns 0 and its handle, or -errno.
 */
int __hmmgpu_userptr_create(int fd, uint64_t addr, uint64_t size, uint32_t flags,
			    uint32_t *handle)
{
	struct drm_hmmgpu_userptr_create arg = {
		.addr = addr,
		.size = size,
		.flags = flags,
	};
	int err;

	err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_USERPTR_CREATE, &arg);
	if (!err)
		*handle = arg.handle;

	return err;
}

uint32_t hmmgpu_userptr_create(int fd, void *ptr, uint64_t size, uint32_t flags)
{
	uint32_t handle = 0;

	igt_assert_eq(__hmmgpu_userptr_create(fd, (uintptr_t)ptr, size, flags, &handle), 0);
	igt_assert_neq(handle, 0);
	return handle;
}

/* GPU VMs. */

const struct hmmgpu_vm_mode hmmgpu_vm_modes[] = {
	{ DRM_HMMGPU_VM_MODE_FAULT, "fault" },
	{ DRM_HMMGPU_VM_MODE_PREFAULT, "prefault" },
	{ DRM_HMMGPU_VM_MODE_PINNED, "pinned" },
	{ 0, NULL },
};

/**
 * hmmgpu_vm_modes_offered - The DRM_HMMGPU_VM_MODE_* bits the device offers;
 * 0 when it has no GPU VMs (or predates DRM_HMMGPU_PARAM_VM_MODES).
 */
uint32_t hmmgpu_vm_modes_offered(int fd)
{
	uint64_t features = 0, modes = 0;

	if (__hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_FEATURES, &features) ||
	    !(features & DRM_HMMGPU_FEATURE_VM))
		return 0;
	if (__hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_VM_MODES, &modes))
		return 0;

	return modes;
}

bool hmmgpu_has_vm_mode(int fd, uint32_t mode)
{
	return mode && (hmmgpu_vm_modes_offered(fd) & mode) == mode;
}

/**
 * hmmgpu_vm_mode_name - "fault", "prefault" or "pinned" for one mode bit;
 * "unknown" for anything else.
 */
const char *hmmgpu_vm_mode_name(uint32_t mode)
{
	for (const struct hmmgpu_vm_mode *m = hmmgpu_vm_modes; m->name; m++)
		if (m->flags == mode)
			return m->name;

	return "unknown";
}

/**
 * __hmmgpu_vm_create - Creates a VM whose mode is @flags; returns 0 and its
 * id, or -errno.
 */
int __hmmgpu_vm_create(int fd, uint32_t flags, uint32_t *vm_id)
{
	struct drm_hmmgpu_vm_create arg = { .flags = flags };
	int err;

	err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_CREATE, &arg);
	if (!err)
		*vm_id = arg.vm_id;

	return err;
}

uint32_t hmmgpu_vm_create(int fd, uint32_t flags)
{
	uint32_t vm_id = 0;

	igt_assert_eq(__hmmgpu_vm_create(fd, flags, &vm_id), 0);
	igt_assert_neq_u32(vm_id, 0);
	return vm_id;
}

int __hmmgpu_vm_destroy(int fd, uint32_t vm_id)
{
	struct drm_hmmgpu_vm_destroy arg = { .vm_id = vm_id };

	return __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_DESTROY, &arg);
}

void hmmgpu_vm_destroy(int fd, uint32_t vm_id)
{
	igt_assert_eq(__hmmgpu_vm_destroy(fd, vm_id), 0);
}

/**
 * __hmmgpu_vm_bind - DRM_IOCTL_HMMGPU_VM_BIND with every field given.
 */
int __hmmgpu_vm_bind(int fd, uint32_t vm_id, uint32_t op, uint32_t handle, uint32_t flags,
		     uint64_t va, uint64_t size, uint64_t offset)
{
	struct drm_hmmgpu_vm_bind arg = {
		.vm_id = vm_id,
		.op = op,
		.handle = handle,
		.flags = flags,
		.va = va,
		.size = size,
		.offset = offset,
	};

	return __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &arg);
}

/**
 * hmmgpu_vm_map - Maps [@offset, @offset + @size) of @handle at @va, with
 * DRM_HMMGPU_VM_BIND_* @flags.
 */
void hmmgpu_vm_map(int fd, uint32_t vm_id, uint32_t handle, uint32_t flags, uint64_t va,
		   uint64_t size, uint64_t offset)
{
	igt_assert_eq(__hmmgpu_vm_bind(fd, vm_id, DRM_HMMGPU_VM_BIND_MAP, handle, flags,
				       va, size, offset), 0);
}

/** hmmgpu_vm_unmap - Removes whatever is mapped in [@va, @va + @size). */
void hmmgpu_vm_unmap(int fd, uint32_t vm_id, uint64_t va, uint64_t size)
{
	igt_assert_eq(__hmmgpu_vm_bind(fd, vm_id, DRM_HMMGPU_VM_BIND_UNMAP, 0, 0, va, size, 0),
		      0);
}

/** __hmmgpu_vm_stats - Reads the counters of @vm_id into @stats. */
int __hmmgpu_vm_stats(int fd, uint32_t vm_id, struct drm_hmmgpu_vm_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	stats->vm_id = vm_id;

	return __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_STATS, stats);
}

void hmmgpu_vm_stats(int fd, uint32_t vm_id, struct drm_hmmgpu_vm_stats *stats)
{
	igt_assert_eq(__hmmgpu_vm_stats(fd, vm_id, stats), 0);
}

/** __hmmgpu_exec - DRM_IOCTL_HMMGPU_EXEC as given; 0 when the job was queued. */
int __hmmgpu_exec(int fd, struct drm_hmmgpu_exec *exec)
{
	return __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_EXEC, exec);
}

void hmmgpu_exec(int fd, struct drm_hmmgpu_exec *exec)
{
	igt_assert_eq(__hmmgpu_exec(fd, exec), 0);
}

/**
 * __hmmgpu_wait - Waits up to @timeout_ns for the fence of @syncobj.
 *
 * Returns: 0 and the fence's error in @error (0, -EFAULT, -ETIMEDOUT,
 * -ECANCELED), or the ioctl's -errno (-ETIME when the time ran out).
 */
int __hmmgpu_wait(int fd, uint32_t syncobj, int64_t timeout_ns, int32_t *error)
{
	struct drm_hmmgpu_wait arg = { .syncobj = syncobj, .timeout_ns = timeout_ns };
	int err;

	err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_WAIT, &arg);
	if (!err && error)
		*error = arg.error;

	return err;
}

/** hmmgpu_wait - Asserts the wait succeeded; returns the fence's error. */
int hmmgpu_wait(int fd, uint32_t syncobj, int64_t timeout_ns)
{
	int32_t error = 0;

	igt_assert_eq(__hmmgpu_wait(fd, syncobj, timeout_ns, &error), 0);
	return error;
}

/* Long enough for a job to reach its own time limit, and then some. */
static int64_t job_wait_ns(uint32_t timeout_ms)
{
	if (!timeout_ms)
		timeout_ms = HMMGPU_EXEC_DEFAULT_TIMEOUT_MS;

	return ((int64_t)timeout_ms + 10000) * 1000000;
}

/**
 * __hmmgpu_exec_wait - Runs @count commands on @vm_id as one job, signalling a
 * new sync object, and waits for it.
 *
 * Returns: the exec's or the wait's -errno, or 0 with the job's error
 * (0, -EFAULT, -ETIMEDOUT, -ECANCELED) in @error.
 */
int __hmmgpu_exec_wait(int fd, uint32_t vm_id, const struct drm_hmmgpu_cmd *cmds,
		       uint32_t count, uint32_t timeout_ms, int32_t *error)
{
	uint32_t syncobj = 0;
	struct drm_hmmgpu_exec exec = {
		.vm_id = vm_id,
		.cmds = (uintptr_t)cmds,
		.cmd_count = count,
		.timeout_ms = timeout_ms,
		.out_count = 1,
	};
	int err;

	igt_assert_eq(drmSyncobjCreate(fd, 0, &syncobj), 0);
	exec.out_syncobjs = (uintptr_t)&syncobj;

	err = __hmmgpu_exec(fd, &exec);
	if (!err)
		err = __hmmgpu_wait(fd, syncobj, job_wait_ns(timeout_ms), error);

	igt_assert_eq(drmSyncobjDestroy(fd, syncobj), 0);
	errno = 0;
	return err;
}

/**
 * hmmgpu_exec_wait - Runs @count commands on @vm_id as one job and waits.
 *
 * Returns: the job's error (0, -EFAULT, ...), or the exec's (or wait's)
 * -errno when there was no job to wait for.
 */
int hmmgpu_exec_wait(int fd, uint32_t vm_id, const struct drm_hmmgpu_cmd *cmds,
		     uint32_t count, uint32_t timeout_ms)
{
	int32_t error = 0;
	int err;

	err = __hmmgpu_exec_wait(fd, vm_id, cmds, count, timeout_ms, &error);

	return err ?: error;
}

/**
 * hmmgpu_exec_job - As hmmgpu_exec_wait(), but asserts that the exec and the
 * wait succeeded: what it returns is always the job's own error.
 */
int hmmgpu_exec_job(int fd, uint32_t vm_id, const struct drm_hmmgpu_cmd *cmds,
		    uint32_t count, uint32_t timeout_ms)
{
	int32_t error = 0;

	igt_assert_eq(__hmmgpu_exec_wait(fd, vm_id, cmds, count, timeout_ms, &error), 0);
	return error;
}

/* Command builders. */

static struct drm_hmmgpu_cmd *cmd_set(struct drm_hmmgpu_cmd *cmd, uint32_t op, uint64_t dst,
				      uint64_t src, uint64_t size, uint64_t value)
{
	*cmd = (struct drm_hmmgpu_cmd) {
		.op = op,
		.dst = dst,
		.src = src,
		.size = size,
		.value = value,
	};

	return cmd + 1;
}

/** hmmgpu_cmd_copy - Copy @size bytes from @src to @dst (not overlapping). */
struct drm_hmmgpu_cmd *hmmgpu_cmd_copy(struct drm_hmmgpu_cmd *cmd, uint64_t dst,
				       uint64_t src, uint64_t size)
{
	return cmd_set(cmd, HMMGPU_CMD_COPY, dst, src, size, 0);
}

/** hmmgpu_cmd_fill - Fill @size bytes at @dst with the 32-bit @value. */
struct drm_hmmgpu_cmd *hmmgpu_cmd_fill(struct drm_hmmgpu_cmd *cmd, uint64_t dst,
				       uint64_t size, uint32_t value)
{
	return cmd_set(cmd, HMMGPU_CMD_FILL, dst, 0, size, value);
}

/** hmmgpu_cmd_write64 - Write the 64-bit @value at @dst. */
struct drm_hmmgpu_cmd *hmmgpu_cmd_write64(struct drm_hmmgpu_cmd *cmd, uint64_t dst,
					  uint64_t value)
{
	return cmd_set(cmd, HMMGPU_CMD_WRITE64, dst, 0, 0, value);
}

/** hmmgpu_cmd_atomic_add - Add @value to the 64-bit word at @dst. */
struct drm_hmmgpu_cmd *hmmgpu_cmd_atomic_add(struct drm_hmmgpu_cmd *cmd, uint64_t dst,
					     uint64_t value)
{
	return cmd_set(cmd, HMMGPU_CMD_ATOMIC_ADD64, dst, 0, 0, value);
}

/**
 * hmmgpu_cmd_checksum - Write at @dst the 64-bit sum of the 32-bit words of
 * the @size bytes at @src.
 */
struct drm_hmmgpu_cmd *hmmgpu_cmd_checksum(struct drm_hmmgpu_cmd *cmd, uint64_t dst,
					   uint64_t src, uint64_t size)
{
	return cmd_set(cmd, HMMGPU_CMD_CHECKSUM, dst, src, size, 0);
}

uint32_t hmmgpu_pattern(uint32_t seed, uint64_t i)
{
	return (seed * 0x9e3779b1u) ^ (uint32_t)(i * 0x85ebca6bu) ^ (uint32_t)(i >> 32) ^ 1;
}

void hmmgpu_fill_pattern(void *ptr, uint64_t size, uint32_t seed)
{
	uint32_t *p = ptr;

	for (uint64_t i = 0; i < size / sizeof(*p); i++)
		p[i] = hmmgpu_pattern(seed, i);
}

void hmmgpu_check_pattern_at(const void *base, uint64_t off, uint64_t size, uint32_t seed)
{
	const uint32_t *p = base;

	for (uint64_t i = off / sizeof(*p); i < (off + size) / sizeof(*p); i++)
		igt_assert_f(p[i] == hmmgpu_pattern(seed, i),
			     "dword %" PRIu64 " (byte %#" PRIx64 ") reads %#x, expected %#x\n",
			     i, i * 4, p[i], hmmgpu_pattern(seed, i));
}

void hmmgpu_check_pattern(const void *ptr, uint64_t size, uint32_t seed)
{
	hmmgpu_check_pattern_at(ptr, 0, size, seed);
}

void hmmgpu_raise_memlock(void)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		igt_debug("RLIMIT_MEMLOCK stays as it is: %s\n", strerror(errno));
	errno = 0;
}

bool hmmgpu_syncobj_signalled(int fd, uint32_t syncobj, int32_t *error)
{
	int32_t e = 0;
	int err = __hmmgpu_wait(fd, syncobj, 0, &e);

	igt_assert_f(err == 0 || err == -ETIME, "poll of sync object %u: %d\n", syncobj, err);
	if (!err && error)
		*error = e;
	return err == 0;
}

uint64_t hmmgpu_anon_huge_kb(const void *ptr)
{
	uintptr_t addr = (uintptr_t)ptr;
	bool inside = false;
	uint64_t kb = 0;
	char line[512];
	FILE *f;

	f = fopen("/proc/self/smaps", "r");
	if (!f)
		return 0;

	while (fgets(line, sizeof(line), f)) {
		size_t hex = strspn(line, "0123456789abcdef");
		unsigned long long value;
		unsigned long start, end;

		if (hex && line[hex] == '-' && sscanf(line, "%lx-%lx", &start, &end) == 2) {
			inside = start <= addr && addr < end;
		} else if (inside && sscanf(line, "AnonHugePages: %llu kB", &value) == 1) {
			kb = value;
			break;
		}
	}
	fclose(f);

	return kb;
}

bool hmmgpu_read_pin_counters(uint64_t *acquired, uint64_t *released)
{
	unsigned long long value;
	char name[64];
	int found = 0, refresh;
	FILE *f;

	refresh = open("/proc/sys/vm/stat_refresh", O_WRONLY | O_CLOEXEC);
	if (refresh < 0)
		return false;
	/* It may fail on counters gone negative in between; they were still folded. */
	igt_ignore_warn(write(refresh, "1", 1) == 1);
	close(refresh);
	errno = 0;

	f = fopen("/proc/vmstat", "re");
	if (!f)
		return false;
	while (fscanf(f, "%63s %llu", name, &value) == 2) {
		if (!strcmp(name, "nr_foll_pin_acquired")) {
			*acquired = value;
			found++;
		} else if (!strcmp(name, "nr_foll_pin_released")) {
			*released = value;
			found++;
		}
	}
	fclose(f);

	return found == 2;
}

uint64_t hmmgpu_assert_pins_balanced(uint64_t acquired0, uint64_t released0, const char *what)
{
	uint64_t acquired = 0, released = 0;
	struct timespec start;

	igt_gettime(&start);
	do {
		igt_assert(hmmgpu_read_pin_counters(&acquired, &released));
		if (acquired - acquired0 == released - released0)
			break;
		usleep(20 * 1000);
	} while (igt_seconds_elapsed(&start) < 5);

	igt_info("%s: %" PRIu64 " page pins acquired, %" PRIu64 " released\n", what,
		 acquired - acquired0, released - released0);
	igt_assert_f(acquired - acquired0 == released - released0,
		     "%s: %" PRIu64 " page pins acquired but %" PRIu64 " released\n", what,
		     acquired - acquired0, released - released0);
	return acquired - acquired0;
}

bool hmmgpu_thp_enabled(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);

	return buf[0] && !strstr(buf, "[never]");
}

void hmmgpu_vm_stats_debug(const struct drm_hmmgpu_vm_stats *s)
{
	igt_debug("stats: faults %llu (4k %llu, 2m %llu), entries 4k %llu 2m %llu, "
		  "invalidations %llu, retries %llu, pinned %llu, jobs done %llu failed %llu\n",
		  (unsigned long long)s->faults, (unsigned long long)s->faults_4k,
		  (unsigned long long)s->faults_2m, (unsigned long long)s->entries_4k,
		  (unsigned long long)s->entries_2m, (unsigned long long)s->invalidations,
		  (unsigned long long)s->retries, (unsigned long long)s->pinned_pages,
		  (unsigned long long)s->jobs_done, (unsigned long long)s->jobs_failed);
}

uint64_t hmmgpu_vm_pinned_pages_settled(int fd, uint32_t vm_id, uint64_t expected)
{
	struct drm_hmmgpu_vm_stats s;
	struct timespec start;

	igt_gettime(&start);
	for (;;) {
		hmmgpu_vm_stats(fd, vm_id, &s);
		hmmgpu_vm_stats_debug(&s);
		if (s.pinned_pages == expected || igt_seconds_elapsed(&start) >= 5)
			return s.pinned_pages;
		usleep(20 * 1000);
	}
}
