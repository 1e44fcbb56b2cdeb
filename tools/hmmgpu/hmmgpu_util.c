// SPDX-License-Identifier: MIT
/*
 * The ioctl wrappers the tools in tools/hmmgpu share: see hmmgpu_util.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/sync_file.h>
#include <xf86drm.h>

#include "hmmgpu_util.h"

/* How much longer than a job's own limit a wait for it may take. */
#define WAIT_SLACK_MS	10000

static const struct {
	int err;
	const char *name;
} errnames[] = {
	{ EFAULT, "-EFAULT" }, { EINVAL, "-EINVAL" }, { ENOENT, "-ENOENT" },
	{ ENOMEM, "-ENOMEM" }, { ENOSPC, "-ENOSPC" }, { EBUSY, "-EBUSY" },
	{ ENODEV, "-ENODEV" }, { ETIME, "-ETIME" }, { ETIMEDOUT, "-ETIMEDOUT" },
	{ ECANCELED, "-ECANCELED" }, { EINTR, "-EINTR" }, { ENOTTY, "-ENOTTY" },
	{ EAGAIN, "-EAGAIN" }, { EPERM, "-EPERM" }, { EACCES, "-EACCES" },
};

const char *hmmgpu_errname(int err)
{
	static char other[16];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(errnames); i++)
		if (err == -errnames[i].err)
			return errnames[i].name;
	snprintf(other, sizeof(other), "%d", err);
	return other;
}

int hmmgpu_ioctl(int fd, unsigned long request, void *arg)
{
	return drmIoctl(fd, request, arg) ? -errno : 0;
}

int hmmgpu_open(const char *name)
{
	char path[64];
	int i;

	for (i = 128; i < 192; i++) {
		drmVersionPtr v;
		int fd;

		snprintf(path, sizeof(path), "/dev/dri/renderD%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		v = drmGetVersion(fd);
		if (v && !strcmp(v->name, name)) {
			printf("device    %s: %s %d.%d.%d, \"%s\"\n", path, v->name,
			       v->version_major, v->version_minor, v->version_patchlevel, v->desc);
			drmFreeVersion(v);
			return fd;
		}
		drmFreeVersion(v);
		close(fd);
	}
	return -1;
}

uint64_t hmmgpu_param(int fd, uint32_t param)
{
	struct drm_hmmgpu_get_param gp = { .param = param };
	int err = hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_GET_PARAM, &gp);

	if (err) {
		printf("GET_PARAM %u: %s\n", param, hmmgpu_errname(err));
		exit(1);
	}
	return gp.value;
}

int hmmgpu_gem_create(int fd, uint64_t size, uint32_t *handle)
{
	struct drm_hmmgpu_gem_create create = { .size = size };
	int err = hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_GEM_CREATE, &create);

	if (!err)
		*handle = create.handle;
	return err;
}

int hmmgpu_gem_mmap(int fd, uint32_t handle, uint64_t size, void **ptr)
{
	struct drm_hmmgpu_gem_mmap_offset mo = { .handle = handle };
	void *p;
	int err;

	err = hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET, &mo);
	if (err)
		return err;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, mo.offset);
	if (p == MAP_FAILED)
		return -errno;
	*ptr = p;
	return 0;
}

int hmmgpu_userptr_create(int fd, const void *addr, uint64_t size, uint32_t flags,
			  uint32_t *handle)
{
	struct drm_hmmgpu_userptr_create up = {
		.addr = (uintptr_t)addr, .size = size, .flags = flags,
	};
	int err = hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_USERPTR_CREATE, &up);

	if (!err)
		*handle = up.handle;
	return err;
}

/*
 * The modes of the VMs the tool created and has not destroyed, so that
 * hmmgpu_exec_wait() knows how their jobs complete (a file has at most 64).
 */
static struct {
	int fd;
	uint32_t vm_id, mode;
} vm_modes[64];

/* The slot of VM @vm_id of @fd (0: a free slot), or -1. */
static int vm_mode_slot(int fd, uint32_t vm_id)
{
	for (size_t i = 0; i < ARRAY_SIZE(vm_modes); i++)
		if (vm_modes[i].vm_id == vm_id && (!vm_id || vm_modes[i].fd == fd))
			return i;
	return -1;
}

int hmmgpu_vm_create(int fd, uint32_t mode, uint32_t *vm_id)
{
	struct drm_hmmgpu_vm_create vm = { .flags = mode };
	int err = hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_CREATE, &vm);
	int slot;

	if (err)
		return err;
	*vm_id = vm.vm_id;
	slot = vm_mode_slot(fd, 0);
	if (slot >= 0) {
		vm_modes[slot].fd = fd;
		vm_modes[slot].vm_id = vm.vm_id;
		vm_modes[slot].mode = mode;
	}
	return 0;
}

int hmmgpu_vm_destroy(int fd, uint32_t vm_id)
{
	struct drm_hmmgpu_vm_destroy destroy = { .vm_id = vm_id };
	int slot = vm_mode_slot(fd, vm_id);

	if (vm_id && slot >= 0)
		vm_modes[slot].vm_id = 0;
	return hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_DESTROY, &destroy);
}

int hmmgpu_vm_stats(int fd, uint32_t vm_id, struct drm_hmmgpu_vm_stats *stats)
{
	*stats = (struct drm_hmmgpu_vm_stats){ .vm_id = vm_id };
	return hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_STATS, stats);
}

int hmmgpu_vm_map(int fd, uint32_t vm_id, uint32_t handle, uint32_t flags, uint64_t va,
		  uint64_t size, uint64_t offset)
{
	struct drm_hmmgpu_vm_bind bind = {
		.vm_id = vm_id,
		.bind = {
			.op = DRM_HMMGPU_VM_BIND_MAP, .handle = handle, .flags = flags,
			.va = va, .size = size, .offset = offset,
		},
	};

	return hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &bind);
}

int hmmgpu_vm_unmap(int fd, uint32_t vm_id, uint64_t va, uint64_t size)
{
	struct drm_hmmgpu_vm_bind bind = {
		.vm_id = vm_id,
		.bind = { .op = DRM_HMMGPU_VM_BIND_UNMAP, .va = va, .size = size },
	};

	return hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &bind);
}

void hmmgpu_gem_close(int fd, uint32_t handle)
{
	struct drm_gem_close close = { .handle = handle };

	if (handle)
		drmIoctl(fd, DRM_IOCTL_GEM_CLOSE, &close);
}

int hmmgpu_waiter_init(int fd, struct hmmgpu_waiter *w)
{
	memset(w, 0, sizeof(*w));
	return drmSyncobjCreate(fd, 0, &w->syncobj) ? -errno : 0;
}

void hmmgpu_waiter_fini(int fd, struct hmmgpu_waiter *w)
{
	drmSyncobjDestroy(fd, w->syncobj);
	w->syncobj = 0;
}

/* The error of the signalled fence in @syncobj, through a sync_file's status. */
static int fence_error(int fd, uint32_t syncobj, int *error)
{
	struct sync_file_info info = { 0 };
	int sync_file = -1, err = 0;

	if (drmSyncobjExportSyncFile(fd, syncobj, &sync_file))
		return -errno;
	if (ioctl(sync_file, SYNC_IOC_FILE_INFO, &info))
		err = -errno;
	close(sync_file);
	if (!err)
		*error = info.status < 0 ? info.status : 0;
	return err;
}

int hmmgpu_exec_wait(int fd, uint32_t vm_id, const struct drm_hmmgpu_cmd *cmds, uint32_t count,
		     uint32_t timeout_ms, struct hmmgpu_waiter *w, const char **from)
{
	int64_t wait_ns = ((int64_t)(timeout_ms ?: HMMGPU_EXEC_DEFAULT_TIMEOUT_MS) +
			   WAIT_SLACK_MS) * 1000000;
	int slot = vm_mode_slot(fd, vm_id);
	bool user_fence = slot >= 0 && vm_modes[slot].mode == DRM_HMMGPU_VM_MODE_FAULT;
	struct drm_hmmgpu_sync sync = {
		.type = DRM_HMMGPU_SYNC_SYNCOBJ,
		.flags = DRM_HMMGPU_SYNC_SIGNAL,
		.handle = w->syncobj,
	};
	struct drm_hmmgpu_exec exec = {
		.vm_id = vm_id, .cmds = (uintptr_t)cmds, .cmd_count = count,
		.timeout_ms = timeout_ms, .syncs = (uintptr_t)&sync, .num_syncs = 1,
	};
	int err, error = 0;

	/* Jobs of fault-mode VMs have no fence: they complete through a user fence. */
	if (user_fence) {
		sync = (struct drm_hmmgpu_sync) {
			.type = DRM_HMMGPU_SYNC_USER_FENCE,
			.flags = DRM_HMMGPU_SYNC_SIGNAL,
			.addr = (uintptr_t)&w->fence,
			.value = ++w->seq,
			.error_addr = (uintptr_t)&w->error,
		};
	}

	*from = "exec";
	do
		err = ioctl(fd, DRM_IOCTL_HMMGPU_EXEC, &exec) ? -errno : 0;
	while (err == -EINTR);
	if (err)
		return err;

	*from = "wait";
	if (user_fence) {
		struct drm_hmmgpu_wait_user_fence wait = {
			.addr = (uintptr_t)&w->fence,
			.value = w->seq,
			.mask = ~0ull,
			.op = DRM_HMMGPU_WAIT_EQ,
			.timeout_ns = wait_ns,
		};

		err = hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &wait);
		if (err)
			return err;
		error = (int)__atomic_load_n(&w->error, __ATOMIC_RELAXED);
	} else {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (drmSyncobjWait(fd, &w->syncobj, 1,
				   now.tv_sec * 1000000000ll + now.tv_nsec + wait_ns, 0, NULL))
			return -errno;
		err = fence_error(fd, w->syncobj, &error);
		if (err)
			return err;
	}
	*from = "job";
	return error;
}

int hmmgpu_vm_bind_async_wait(int fd, uint32_t vm_id, const struct drm_hmmgpu_vm_bind_op *ops,
			      uint32_t num_ops, struct hmmgpu_waiter *w, const char **from)
{
	struct drm_hmmgpu_sync sync = {
		.type = DRM_HMMGPU_SYNC_SYNCOBJ,
		.flags = DRM_HMMGPU_SYNC_SIGNAL,
		.handle = w->syncobj,
	};
	struct drm_hmmgpu_vm_bind bind = {
		.vm_id = vm_id,
		.num_ops = num_ops,
		.syncs = (uintptr_t)&sync,
		.num_syncs = 1,
		.flags = DRM_HMMGPU_VM_BIND_ASYNC,
	};
	struct timespec now;
	int err, error = 0;

	if (num_ops == 1)
		bind.bind = ops[0];
	else
		bind.ops = (uintptr_t)ops;
	*from = "bind";
	err = hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &bind);
	if (err)
		return err;
	/* Fenced: the sync object has the bind's fence from the call on, no need to wait for it. */
	*from = "wait";
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (drmSyncobjWait(fd, &w->syncobj, 1,
			   now.tv_sec * 1000000000ll + now.tv_nsec + WAIT_SLACK_MS * 1000000ll, 0,
			   NULL))
		return -errno;
	err = fence_error(fd, w->syncobj, &error);
	if (err)
		return err;
	*from = "ops";
	return error;
}
