/* SPDX-License-Identifier: MIT */
/*
 * The ioctl wrappers the tools in tools/hmmgpu share (the demonstration and
 * the benchmark): opening the render node by driver name, and the uAPI of
 * include/uapi/drm/hmmgpu_drm.h as plain calls that return 0 or -errno.
 */
#ifndef HMMGPU_UTIL_H
#define HMMGPU_UTIL_H

#include <stdint.h>

#include "drm/hmmgpu_drm.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* "-EFAULT" and the like for a negative errno; the number for one it does not know. */
const char *hmmgpu_errname(int err);

/* Runs an ioctl (restarting it on EINTR and EAGAIN, as drmIoctl does): 0 or -errno. */
int hmmgpu_ioctl(int fd, unsigned long request, void *arg);

/*
 * Opens the first render node whose driver is @name and prints a "device"
 * line naming it; -1 when there is none.
 */
int hmmgpu_open(const char *name);

/* DRM_IOCTL_HMMGPU_GET_PARAM; on failure, says so and exits. */
uint64_t hmmgpu_param(int fd, uint32_t param);

int hmmgpu_gem_create(int fd, uint64_t size, uint32_t *handle);
/* Maps the first @size bytes of the GEM object @handle for the CPU, shared. */
int hmmgpu_gem_mmap(int fd, uint32_t handle, uint64_t size, void **ptr);
int hmmgpu_userptr_create(int fd, const void *addr, uint64_t size, uint32_t flags,
			  uint32_t *handle);
int hmmgpu_vm_create(int fd, uint32_t mode, uint32_t *vm_id);
int hmmgpu_vm_destroy(int fd, uint32_t vm_id);
int hmmgpu_vm_stats(int fd, uint32_t vm_id, struct drm_hmmgpu_vm_stats *stats);

/* DRM_HMMGPU_VM_BIND_MAP of [@offset, @offset + @size) of @handle at @va. */
int hmmgpu_vm_map(int fd, uint32_t vm_id, uint32_t handle, uint32_t flags, uint64_t va,
		  uint64_t size, uint64_t offset);
/* DRM_HMMGPU_VM_BIND_UNMAP of [@va, @va + @size). */
int hmmgpu_vm_unmap(int fd, uint32_t vm_id, uint64_t va, uint64_t size);

/* DRM_IOCTL_GEM_CLOSE, for a handle that is not zero; errors are not reported. */
void hmmgpu_gem_close(int fd, uint32_t handle);

/*
 * Runs @count commands on the VM as one job whose fence goes to @syncobj,
 * with a time limit of @timeout_ms (0: the default), and waits for it.
 * Returns 0, or the exec's or the wait's -errno, or the job's error; *@from
 * says which ("exec", "wait" or "job"). The exec is restarted on EINTR only:
 * its -EAGAIN (invalidations kept overtaking the submission) is returned.
 */
int hmmgpu_exec_wait(int fd, uint32_t vm_id, const struct drm_hmmgpu_cmd *cmds, uint32_t count,
		     uint32_t timeout_ms, uint32_t syncobj, const char **from);

#endif /* HMMGPU_UTIL_H */
