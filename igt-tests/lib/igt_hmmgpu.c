// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/sync_file.h>
#include <linux/userfaultfd.h>

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

/**
 * hmmgpu_open_vm_device - Opens a render node of the hmmgpu device, skipping
 * the test when it has no GPU VMs; asserts that its page is the CPU's.
 */
int hmmgpu_open_vm_device(void)
{
	int fd = drm_open_driver_render(DRIVER_HMMGPU);

	igt_require_f(hmmgpu_vm_modes_offered(fd), "the device has no GPU VMs\n");
	igt_assert_eq_u64(hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_PAGE_SIZE),
			  (uint64_t)sysconf(_SC_PAGESIZE));
	return fd;
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
/*
 * The modes of the VMs this process created, so that hmmgpu_exec_wait() knows
 * how a VM's jobs complete. A slot is reused by a later VM of the same file
 * and id; past the table's size a VM is looked up by trying.
 */
static struct {
	int fd;
	uint32_t vm_id;
	uint32_t flags;
} vm_modes[256];

static void remember_vm_mode(int fd, uint32_t vm_id, uint32_t flags)
{
	unsigned int i, free_slot = ARRAY_SIZE(vm_modes);

	for (i = 0; i < ARRAY_SIZE(vm_modes); i++) {
		if (vm_modes[i].vm_id == vm_id && vm_modes[i].fd == fd) {
			vm_modes[i].flags = flags;
			return;
		}
		if (!vm_modes[i].vm_id && free_slot == ARRAY_SIZE(vm_modes))
			free_slot = i;
	}
	if (free_slot < ARRAY_SIZE(vm_modes))
		vm_modes[free_slot] = (typeof(vm_modes[0])) { fd, vm_id, flags };
}

/* Forgets the mode of a VM that is gone. */
static void forget_vm_mode(int fd, uint32_t vm_id)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(vm_modes); i++)
		if (vm_modes[i].vm_id == vm_id && vm_modes[i].fd == fd)
			vm_modes[i].vm_id = 0;
}

/* The mode @vm_id of @fd was created with, or 0 if this process does not know. */
static uint32_t vm_mode_of(int fd, uint32_t vm_id)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(vm_modes); i++)
		if (vm_modes[i].vm_id == vm_id && vm_modes[i].fd == fd)
			return vm_modes[i].flags;
	return 0;
}

int __hmmgpu_vm_create(int fd, uint32_t flags, uint32_t *vm_id)
{
	struct drm_hmmgpu_vm_create arg = { .flags = flags };
	int err;

	err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_CREATE, &arg);
	if (!err) {
		*vm_id = arg.vm_id;
		remember_vm_mode(fd, arg.vm_id, flags);
	}

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
	int err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_DESTROY, &arg);

	if (!err)
		forget_vm_mode(fd, vm_id);
	return err;
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
		.bind = {
			.op = op,
			.handle = handle,
			.flags = flags,
			.va = va,
			.size = size,
			.offset = offset,
		},
	};

	return __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &arg);
}

/*
 * DRM_IOCTL_HMMGPU_VM_BIND of @num_ops operations at @ops (the one inline
 * when there is one), with @num_syncs syncs at @syncs and @flags.
 */
static int vm_bind_ops(int fd, uint32_t vm_id, const struct drm_hmmgpu_vm_bind_op *ops,
		       uint32_t num_ops, const struct drm_hmmgpu_sync *syncs,
		       uint32_t num_syncs, uint32_t flags, uint32_t *failed_op)
{
	struct drm_hmmgpu_vm_bind arg = {
		.vm_id = vm_id,
		.num_ops = num_ops,
		.syncs = (uintptr_t)syncs,
		.num_syncs = num_syncs,
		.flags = flags,
	};
	int err;

	if (num_ops == 1)
		arg.bind = ops[0];
	else
		arg.ops = (uintptr_t)ops;
	err = __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &arg);
	if (failed_op)
		*failed_op = arg.failed_op;

	return err;
}

/**
 * hmmgpu_bind_op_map - The operation that maps @size bytes of object @handle,
 * from its start, at GPU address @va, writable.
 */
struct drm_hmmgpu_vm_bind_op hmmgpu_bind_op_map(uint32_t handle, uint64_t va, uint64_t size)
{
	return (struct drm_hmmgpu_vm_bind_op) {
		.op = DRM_HMMGPU_VM_BIND_MAP,
		.handle = handle,
		.va = va,
		.size = size,
	};
}

/** hmmgpu_bind_op_unmap - The operation that unmaps [@va, @va + @size). */
struct drm_hmmgpu_vm_bind_op hmmgpu_bind_op_unmap(uint64_t va, uint64_t size)
{
	return (struct drm_hmmgpu_vm_bind_op) {
		.op = DRM_HMMGPU_VM_BIND_UNMAP,
		.va = va,
		.size = size,
	};
}

/**
 * __hmmgpu_vm_bind_ops - DRM_IOCTL_HMMGPU_VM_BIND of @num_ops operations at
 * @ops, with @num_syncs syncs at @syncs, synchronous. Returns 0 or -errno, and
 * the index of the operation that failed in @failed_op (if not NULL).
 */
int __hmmgpu_vm_bind_ops(int fd, uint32_t vm_id, const struct drm_hmmgpu_vm_bind_op *ops,
			 uint32_t num_ops, const struct drm_hmmgpu_sync *syncs,
			 uint32_t num_syncs, uint32_t *failed_op)
{
	return vm_bind_ops(fd, vm_id, ops, num_ops, syncs, num_syncs, 0, failed_op);
}

/**
 * __hmmgpu_vm_bind_async - Queues @num_ops operations at @ops on the bind
 * queue of @vm_id (DRM_HMMGPU_VM_BIND_ASYNC), with @num_syncs syncs at
 * @syncs. Returns 0 when the bind was queued, or the -errno of checking it
 * (nothing queued); how the bind went, its user fences tell.
 */
int __hmmgpu_vm_bind_async(int fd, uint32_t vm_id, const struct drm_hmmgpu_vm_bind_op *ops,
			   uint32_t num_ops, const struct drm_hmmgpu_sync *syncs,
			   uint32_t num_syncs)
{
	return vm_bind_ops(fd, vm_id, ops, num_ops, syncs, num_syncs, DRM_HMMGPU_VM_BIND_ASYNC,
			   NULL);
}

/**
 * __hmmgpu_vm_bind_fenced - As __hmmgpu_vm_bind_async(), for a fenced bind
 * (one whose @syncs signal a sync object): the call does the operations, so
 * its -errno is that of the operation that failed, whose index it puts in
 * @failed_op; the bind is queued even then, its fence signalling that error.
 */
int __hmmgpu_vm_bind_fenced(int fd, uint32_t vm_id, const struct drm_hmmgpu_vm_bind_op *ops,
			    uint32_t num_ops, const struct drm_hmmgpu_sync *syncs,
			    uint32_t num_syncs, uint32_t *failed_op)
{
	return vm_bind_ops(fd, vm_id, ops, num_ops, syncs, num_syncs, DRM_HMMGPU_VM_BIND_ASYNC,
			   failed_op);
}

/** hmmgpu_vm_bind_async - Asserts that the bind was queued. */
void hmmgpu_vm_bind_async(int fd, uint32_t vm_id, const struct drm_hmmgpu_vm_bind_op *ops,
			  uint32_t num_ops, const struct drm_hmmgpu_sync *syncs,
			  uint32_t num_syncs)
{
	igt_assert_eq(__hmmgpu_vm_bind_async(fd, vm_id, ops, num_ops, syncs, num_syncs), 0);
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

/* The absolute CLOCK_MONOTONIC time @timeout_ns from now, as syncobj waits take it. */
static int64_t deadline_ns(int64_t timeout_ns)
{
	struct timespec now;

	if (timeout_ns < 0 || timeout_ns > INT64_MAX / 2)
		return INT64_MAX;
	/* CLOCK_MONOTONIC is always there: nothing to assert, so that any thread may wait. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000000000ll + now.tv_nsec + timeout_ns;
}

/**
 * hmmgpu_fence_error - The error the fence in @syncobj signalled with, read
 * the way the uAPI says: through a sync_file's status. Returns 0 when it
 * signalled without one, 1 when it has not signalled, -errno for its error.
 * __hmmgpu_fence_error() puts that in *@status and returns 0, or the -errno
 * of the step that failed, asserting nothing: any thread may call it.
 */
int __hmmgpu_fence_error(int fd, uint32_t syncobj, int *status)
{
	struct sync_file_info info = {};
	int sync_file = -1, err = 0;

	if (drmSyncobjExportSyncFile(fd, syncobj, &sync_file))
		err = -errno;
	else if (ioctl(sync_file, SYNC_IOC_FILE_INFO, &info))
		err = -errno;
	if (sync_file >= 0)
		close(sync_file);
	errno = 0;
	if (!err)
		*status = info.status < 0 ? info.status : !info.status;

	return err;
}

int hmmgpu_fence_error(int fd, uint32_t syncobj)
{
	int status = 0;

	igt_assert_eq(__hmmgpu_fence_error(fd, syncobj, &status), 0);
	return status;
}

/**
 * hmmgpu_point_error - As hmmgpu_fence_error(), for point @point of timeline
 * sync object @syncobj, read the way the uAPI says: the point transferred to
 * a binary sync object, exported, and the status of the first fence of the
 * sync_file (a dma_fence_chain node does not carry its fence's error).
 */
int hmmgpu_point_error(int fd, uint32_t syncobj, uint64_t point)
{
	struct sync_fence_info fences[4] = {};
	struct sync_file_info info = {
		.num_fences = ARRAY_SIZE(fences),
		.sync_fence_info = to_user_pointer(fences),
	};
	uint32_t binary = 0;
	int sync_file = -1;

	igt_assert_eq(drmSyncobjCreate(fd, 0, &binary), 0);
	igt_assert_eq(drmSyncobjTransfer(fd, binary, 0, syncobj, point, 0), 0);
	igt_assert_eq(drmSyncobjExportSyncFile(fd, binary, &sync_file), 0);
	igt_assert_eq(ioctl(sync_file, SYNC_IOC_FILE_INFO, &info), 0);
	close(sync_file);
	igt_assert_eq(drmSyncobjDestroy(fd, binary), 0);
	igt_assert_lt(0, info.num_fences);

	return fences[0].status < 0 ? fences[0].status : !fences[0].status;
}

/**
 * __hmmgpu_wait - Waits up to @timeout_ns for the fence of @syncobj, with the
 * core's DRM_IOCTL_SYNCOBJ_WAIT.
 *
 * Returns: 0 and the fence's error in @error (0, -EFAULT, -ETIMEDOUT,
 * -ECANCELED), or the wait's -errno (-ETIME when the time ran out, -EINVAL
 * when the sync object holds no fence).
 */
int __hmmgpu_wait(int fd, uint32_t syncobj, int64_t timeout_ns, int32_t *error)
{
	int err = 0;

	if (drmSyncobjWait(fd, &syncobj, 1, deadline_ns(timeout_ns), 0, NULL))
		err = -errno;
	errno = 0;
	if (!err && error)
		err = __hmmgpu_fence_error(fd, syncobj, error);

	return err;
}

/** hmmgpu_wait - Asserts the wait succeeded; returns the fence's error. */
int hmmgpu_wait(int fd, uint32_t syncobj, int64_t timeout_ns)
{
	int32_t error = 0;

	igt_assert_eq(__hmmgpu_wait(fd, syncobj, timeout_ns, &error), 0);
	return error;
}

/**
 * __hmmgpu_wait_user_fence - Waits up to @timeout_ns (negative: without a
 * limit) until (*@addr & @mask) compares with (@value & @mask) as @op
 * (DRM_HMMGPU_WAIT_*) says. Returns 0 or -errno (-ETIME when the time ran out).
 */
int __hmmgpu_wait_user_fence(int fd, const volatile uint64_t *addr, uint64_t value,
			     uint64_t mask, uint32_t op, int64_t timeout_ns)
{
	struct drm_hmmgpu_wait_user_fence arg = {
		.addr = (uintptr_t)addr,
		.value = value,
		.mask = mask,
		.op = op,
		.timeout_ns = timeout_ns,
	};

	return __hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &arg);
}

/**
 * hmmgpu_ufences_new - A page of user fences, mapped with @flags
 * (MAP_PRIVATE, or MAP_SHARED for fences a child writes too).
 */
struct hmmgpu_ufence *hmmgpu_ufences_new(int flags)
{
	long size = sysconf(_SC_PAGESIZE);
	struct hmmgpu_ufence *uf = mmap(NULL, size, PROT_READ | PROT_WRITE,
					flags | MAP_ANONYMOUS, -1, 0);

	igt_assert(uf != MAP_FAILED);
	return uf;
}

void hmmgpu_ufences_free(struct hmmgpu_ufence *uf)
{
	igt_assert_eq(munmap(uf, sysconf(_SC_PAGESIZE)), 0);
}

/**
 * hmmgpu_ufence_sync - The sync that writes @value in @uf, and the work's
 * error beside it; the error word reads 1 until it is written.
 */
struct drm_hmmgpu_sync hmmgpu_ufence_sync(struct hmmgpu_ufence *uf, uint64_t value)
{
	uf->error = 1;
	return hmmgpu_sync_user_fence(&uf->value, value, &uf->error);
}

uint64_t hmmgpu_ufence_value(const struct hmmgpu_ufence *uf)
{
	return __atomic_load_n(&uf->value, __ATOMIC_ACQUIRE);
}

int64_t hmmgpu_ufence_error(const struct hmmgpu_ufence *uf)
{
	return __atomic_load_n(&uf->error, __ATOMIC_RELAXED);
}

/**
 * hmmgpu_ufence_wait - Waits, up to @timeout_ns, until @uf reads @value
 * (asserting that it does); returns the error word.
 */
int64_t hmmgpu_ufence_wait(int fd, struct hmmgpu_ufence *uf, uint64_t value, int64_t timeout_ns)
{
	int err = __hmmgpu_wait_user_fence(fd, &uf->value, value, ~0ull, DRM_HMMGPU_WAIT_EQ,
					   timeout_ns);

	igt_assert_f(err == 0, "waiting for the user fence to read %" PRIu64 ": %d, it reads %"
		     PRIu64 "\n", value, err, hmmgpu_ufence_value(uf));
	igt_assert_eq_u64(hmmgpu_ufence_value(uf), value);
	return hmmgpu_ufence_error(uf);
}

struct drm_hmmgpu_sync hmmgpu_sync_wait(uint32_t syncobj)
{
	return (struct drm_hmmgpu_sync) { .type = DRM_HMMGPU_SYNC_SYNCOBJ, .handle = syncobj };
}

struct drm_hmmgpu_sync hmmgpu_sync_signal(uint32_t syncobj)
{
	return (struct drm_hmmgpu_sync) {
		.type = DRM_HMMGPU_SYNC_SYNCOBJ,
		.flags = DRM_HMMGPU_SYNC_SIGNAL,
		.handle = syncobj,
	};
}

struct drm_hmmgpu_sync hmmgpu_sync_timeline_wait(uint32_t syncobj, uint64_t point)
{
	return (struct drm_hmmgpu_sync) {
		.type = DRM_HMMGPU_SYNC_TIMELINE_SYNCOBJ,
		.handle = syncobj,
		.value = point,
	};
}

struct drm_hmmgpu_sync hmmgpu_sync_timeline_signal(uint32_t syncobj, uint64_t point)
{
	return (struct drm_hmmgpu_sync) {
		.type = DRM_HMMGPU_SYNC_TIMELINE_SYNCOBJ,
		.flags = DRM_HMMGPU_SYNC_SIGNAL,
		.handle = syncobj,
		.value = point,
	};
}

struct drm_hmmgpu_sync hmmgpu_sync_user_fence(volatile uint64_t *addr, uint64_t value,
					      volatile int64_t *error)
{
	return (struct drm_hmmgpu_sync) {
		.type = DRM_HMMGPU_SYNC_USER_FENCE,
		.flags = DRM_HMMGPU_SYNC_SIGNAL,
		.addr = (uintptr_t)addr,
		.value = value,
		.error_addr = (uintptr_t)error,
	};
}

/* Long enough for a job to reach its own time limit, and then some. */
static int64_t job_wait_ns(uint32_t timeout_ms)
{
	if (!timeout_ms)
		timeout_ms = HMMGPU_EXEC_DEFAULT_TIMEOUT_MS;

	return ((int64_t)timeout_ms + 10000) * 1000000;
}

/*
 * Runs a job signalling a user fence, the way jobs of fault-mode VMs
 * complete, and waits for it. The fence is on the stack: the wait returns
 * only once it is written, or its time ran out, in which case the job may
 * still write it, so the fence is leaked instead.
 */
static int exec_wait_user_fence(int fd, struct drm_hmmgpu_exec *exec, uint32_t timeout_ms,
				int32_t *error)
{
	struct hmmgpu_user_fence {
		uint64_t value;
		int64_t error;
	} *fence = calloc(1, sizeof(*fence));
	struct drm_hmmgpu_sync sync;
	int err;

	igt_assert(fence);
	sync = hmmgpu_sync_user_fence(&fence->value, 1, &fence->error);
	exec->syncs = (uintptr_t)&sync;
	exec->num_syncs = 1;
	err = __hmmgpu_exec(fd, exec);
	if (!err)
		err = __hmmgpu_wait_user_fence(fd, &fence->value, 1, ~0ull, DRM_HMMGPU_WAIT_EQ,
					       job_wait_ns(timeout_ms));
	if (!err && error)
		*error = (int32_t)__atomic_load_n(&fence->error, __ATOMIC_ACQUIRE);
	if (err != -ETIME)
		free(fence);

	return err;
}

/**
 * __hmmgpu_exec_wait - Runs @count commands on @vm_id as one job and waits for
 * it: through a new sync object and its fence, or, on a fault-mode VM (whose
 * jobs have no fence), through a user fence.
 *
 * Returns: the exec's or the wait's -errno, or 0 with the job's error
 * (0, -EFAULT, -ETIMEDOUT, -ECANCELED) in @error.
 */
int __hmmgpu_exec_wait(int fd, uint32_t vm_id, const struct drm_hmmgpu_cmd *cmds,
		       uint32_t count, uint32_t timeout_ms, int32_t *error)
{
	uint32_t syncobj = 0, mode = vm_mode_of(fd, vm_id);
	struct drm_hmmgpu_exec exec = {
		.vm_id = vm_id,
		.cmds = (uintptr_t)cmds,
		.cmd_count = count,
		.timeout_ms = timeout_ms,
		.num_syncs = 1,
	};
	struct drm_hmmgpu_sync sync;
	int err;

	if (mode == DRM_HMMGPU_VM_MODE_FAULT)
		return exec_wait_user_fence(fd, &exec, timeout_ms, error);

	igt_assert_eq(drmSyncobjCreate(fd, 0, &syncobj), 0);
	sync = hmmgpu_sync_signal(syncobj);
	exec.syncs = (uintptr_t)&sync;

	err = __hmmgpu_exec(fd, &exec);
	/* A VM this process did not create: its mode tells by refusing. */
	if (err == -EOPNOTSUPP && !mode)
		err = exec_wait_user_fence(fd, &exec, timeout_ms, error);
	else if (!err)
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

/*
 * User fences of struct hmmgpu_done, in pages that are never unmapped: a job
 * still pending when its test gave up may write its fence later. A fence is
 * reused only once its last job has written it.
 */
static struct hmmgpu_user_fence *free_user_fences;

static struct hmmgpu_user_fence *user_fence_alloc(void)
{
	struct hmmgpu_user_fence *uf;

	if (!free_user_fences) {
		long size = sysconf(_SC_PAGESIZE);
		struct hmmgpu_user_fence *page;

		page = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
		igt_assert(page != MAP_FAILED);
		for (long i = 0; i < size / (long)sizeof(*page); i++) {
			page[i].next = free_user_fences;
			free_user_fences = &page[i];
		}
	}
	uf = free_user_fences;
	free_user_fences = uf->next;
	uf->value = 0;
	uf->error = 0;
	uf->next = NULL;

	return uf;
}

/**
 * hmmgpu_done_create - Something to see the end of jobs of a VM in @vm_mode
 * by: a binary sync object of @fd, or a user fence in fault mode. User fences
 * are waited for through @fd too (any file of the device does).
 */
struct hmmgpu_done *hmmgpu_done_create(int fd, uint32_t vm_mode)
{
	struct hmmgpu_done *done = calloc(1, sizeof(*done));

	igt_assert(done);
	done->fd = fd;
	if (vm_mode == DRM_HMMGPU_VM_MODE_FAULT)
		done->uf = user_fence_alloc();
	else
		igt_assert_eq(drmSyncobjCreate(fd, 0, &done->syncobj), 0);

	return done;
}

/* Whether the user fence of @done was written for the job it was last armed for. */
static bool user_fence_written(const struct hmmgpu_done *done)
{
	return __atomic_load_n(&done->uf->value, __ATOMIC_ACQUIRE) == done->seq;
}

/**
 * hmmgpu_done_destroy - Frees @done (NULL is fine). A user fence whose job
 * has not written it yet is left where it is.
 */
void hmmgpu_done_destroy(struct hmmgpu_done *done)
{
	if (!done)
		return;
	if (done->syncobj)
		igt_assert_eq(drmSyncobjDestroy(done->fd, done->syncobj), 0);
	if (done->uf && (!done->seq || user_fence_written(done))) {
		done->uf->next = free_user_fences;
		free_user_fences = done->uf;
	}
	free(done);
}

/**
 * hmmgpu_done_signal - The sync that a job signals @done with, for the job
 * about to be submitted: @done then tells that job's end, not an earlier one's.
 */
struct drm_hmmgpu_sync hmmgpu_done_signal(struct hmmgpu_done *done)
{
	if (!done->uf)
		return hmmgpu_sync_signal(done->syncobj);

	/* An earlier job may still write the fence: values only grow. */
	done->seq++;
	__atomic_store_n(&done->uf->error, 1, __ATOMIC_RELAXED);
	return hmmgpu_sync_user_fence(&done->uf->value, done->seq, &done->uf->error);
}

/**
 * hmmgpu_done_signalled - Whether the job @done was last armed for has ended,
 * right now; if so, its error (0, -EFAULT, ...) in *@error (if not NULL).
 */
bool hmmgpu_done_signalled(struct hmmgpu_done *done, int32_t *error)
{
	if (!done->uf)
		return hmmgpu_syncobj_signalled(done->fd, done->syncobj, error);

	if (!user_fence_written(done))
		return false;
	if (error)
		*error = (int32_t)__atomic_load_n(&done->uf->error, __ATOMIC_RELAXED);
	return true;
}

/**
 * __hmmgpu_done_wait - Waits up to @timeout_ns for the job @done was last
 * armed for. Returns 0 and the job's error in *@error (if not NULL), or the
 * wait's -errno (-ETIME when the time ran out).
 */
int __hmmgpu_done_wait(struct hmmgpu_done *done, int64_t timeout_ns, int32_t *error)
{
	int err;

	if (!done->uf)
		return __hmmgpu_wait(done->fd, done->syncobj, timeout_ns, error);

	err = __hmmgpu_wait_user_fence(done->fd, &done->uf->value, done->seq, ~0ull,
				       DRM_HMMGPU_WAIT_EQ, timeout_ns);
	if (!err)
		igt_assert_f(hmmgpu_done_signalled(done, error),
			     "the user fence reads %#" PRIx64 " after its wait for %#" PRIx64 "\n",
			     (uint64_t)done->uf->value, done->seq);
	return err;
}

/** hmmgpu_done_wait - Asserts the wait succeeded; returns the job's error. */
int hmmgpu_done_wait(struct hmmgpu_done *done, int64_t timeout_ns)
{
	int32_t error = 0;

	igt_assert_eq(__hmmgpu_done_wait(done, timeout_ns, &error), 0);
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
	int e = hmmgpu_fence_error(fd, syncobj);

	if (e != 1 && error)
		*error = e;
	return e != 1;
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

char *hmmgpu_thp_alloc(uint64_t size, uint32_t seed, void **map, uint64_t *map_size)
{
	const uint64_t huge = 2ull << 20;
	char *ptr;

	*map_size = size + huge;
	*map = mmap(NULL, *map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	igt_assert_f(*map != MAP_FAILED, "mmap of %" PRIu64 " bytes failed\n", *map_size);
	ptr = (char *)ALIGN((uintptr_t)*map, (uintptr_t)huge);
	igt_assert_eq(madvise(ptr, size, MADV_HUGEPAGE), 0);
	hmmgpu_fill_pattern(ptr, size, seed);
	return ptr;
}

void hmmgpu_require_thp(void *map, uint64_t map_size, const void *ptr, uint64_t kb)
{
	uint64_t have = hmmgpu_anon_huge_kb(ptr);

	igt_info("AnonHugePages of the buffer: %" PRIu64 " kB\n", have);
	if (have < kb)
		munmap(map, map_size);
	igt_require_f(have >= kb, "%" PRIu64 " kB of huge pages, not %" PRIu64 "\n", have, kb);
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

/**
 * hmmgpu_drop_cap_ipc_lock - Drops CAP_IPC_LOCK from the effective set, which
 * lets a task pass RLIMIT_MEMLOCK.
 */
void hmmgpu_drop_cap_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	const int i = CAP_TO_INDEX(CAP_IPC_LOCK);
	const uint32_t bit = CAP_TO_MASK(CAP_IPC_LOCK);

	memset(data, 0, sizeof(data));
	igt_assert_eq(syscall(SYS_capget, &hdr, data), 0);
	igt_debug("effective capabilities: %#x %#x\n", data[0].effective, data[1].effective);
	data[i].effective &= ~bit;
	igt_assert_eq(syscall(SYS_capset, &hdr, data), 0);

	memset(data, 0, sizeof(data));
	igt_assert_eq(syscall(SYS_capget, &hdr, data), 0);
	igt_assert(!(data[i].effective & bit));
}

void *hmmgpu_uffd_area(size_t size, int *uffd)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	void *area;

	/* Not UFFD_USER_MODE_ONLY: the kernel's own faults must reach the handler. */
	*uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	igt_require_f(*uffd >= 0, "no userfaultfd for kernel faults: %s\n", strerror(errno));
	igt_assert_eq(ioctl(*uffd, UFFDIO_API, &api), 0);
	area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	igt_assert(area != MAP_FAILED);
	reg.range.start = (uintptr_t)area;
	reg.range.len = size;
	igt_assert_eq(ioctl(*uffd, UFFDIO_REGISTER, &reg), 0);
	return area;
}

bool hmmgpu_uffd_pending(int uffd)
{
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1;
}

long hmmgpu_read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long value = -1;

	if (f) {
		if (fscanf(f, "%ld", &value) != 1)
			value = -1;
		fclose(f);
	}
	errno = 0;
	return value;
}

bool hmmgpu_write_long(const char *path, long value)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (!f)
		return false;
	ok = fprintf(f, "%ld\n", value) > 0;
	ok &= fclose(f) == 0;
	errno = 0;
	return ok;
}

bool hmmgpu_swap_active(void)
{
	char line[256];
	int lines = 0;
	FILE *f = fopen("/proc/swaps", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		lines++;
	fclose(f);
	return lines > 1;
}
