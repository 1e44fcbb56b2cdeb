// SPDX-License-Identifier: MIT
/*
 * The ioctl wrappers the tools in tools/hmmgpu share: see hmmgpu_util.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

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

int hmmgpu_vm_create(int fd, uint32_t mode, uint32_t *vm_id)
{
	struct drm_hmmgpu_vm_create vm = { .flags = mode };
	int err = hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_CREATE, &vm);

	if (!err)
		*vm_id = vm.vm_id;
	return err;
}

int hmmgpu_vm_destroy(int fd, uint32_t vm_id)
{
	struct drm_hmmgpu_vm_destroy destroy = { .vm_id = vm_id };

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
		.vm_id = vm_id, .op = DRM_HMMGPU_VM_BIND_MAP, .handle = handle, .flags = flags,
		.va = va, .size = size, .offset = offset,
	};

	return hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &bind);
}

int hmmgpu_vm_unmap(int fd, uint32_t vm_id, uint64_t va, uint64_t size)
{
	struct drm_hmmgpu_vm_bind bind = {
		.vm_id = vm_id, .op = DRM_HMMGPU_VM_BIND_UNMAP, .va = va, .size = size,
	};

	return hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &bind);
}

void hmmgpu_gem_close(int fd, uint32_t handle)
{
	struct drm_gem_close close = { .handle = handle };

	if (handle)
		drmIoctl(fd, DRM_IOCTL_GEM_CLOSE, &close);
}

int hmmgpu_exec_wait(int fd, uint32_t vm_id, const struct drm_hmmgpu_cmd *cmds, uint32_t count,
		     uint32_t timeout_ms, uint32_t syncobj, const char **from)
{
	struct drm_hmmgpu_exec exec = {
		.vm_id = vm_id, .cmds = (uintptr_t)cmds, .cmd_count = count,
		.timeout_ms = timeout_ms, .out_syncobjs = (uintptr_t)&syncobj, .out_count = 1,
	};
	struct drm_hmmgpu_wait wait = {
		.syncobj = syncobj,
		.timeout_ns = ((int64_t)(timeout_ms ?: HMMGPU_EXEC_DEFAULT_TIMEOUT_MS) +
			       WAIT_SLACK_MS) * 1000000,
	};
	int err;

	*from = "exec";
	do
		err = ioctl(fd, DRM_IOCTL_HMMGPU_EXEC, &exec) ? -errno : 0;
	while (err == -EINTR);
	if (err)
		return err;
	*from = "wait";
	err = hmmgpu_ioctl(fd, DRM_IOCTL_HMMGPU_WAIT, &wait);
	if (err)
		return err;
	*from = "job";
	return wait.error;
}
