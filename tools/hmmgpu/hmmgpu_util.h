/* SPDX-License-Identifier: MIT */
/*
 * The ioctl wrappers the tools in tools/hmmgpu share (the demonstration and
 * the benchmark): opening the render node by driver name, and the uAPI of
 * include/uapi/drm/hmmgpu_drm.h as plain calls that return 0 or -errno.
 */
#ifndef HMMGPU_UTIL_H
#define HMMGPU_UTIL_H

#include <stdbool.h>
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
 * How a tool waits for its jobs: through the fence of a sync object, or, on a
 * fault-mode VM (whose jobs have no fence), through a user fence: the kernel
 * writes the job's error in @error, then @seq in @fence.
 */
struct hmmgpu_waiter {
	uint32_t syncobj;
	uint64_t seq;
	uint64_t fence;
	int64_t error;
};

/* Creates the waiter's sync object on @fd: 0 or -errno. */
int hmmgpu_waiter_init(int fd, struct hmmgpu_waiter *w);
void hmmgpu_waiter_fini(int fd, struct hmmgpu_waiter *w);

/*
 * Runs @count commands on the VM as one job, with a time limit of
 * @timeout_ms (0: the default), and waits for it through @w: its sync object
 * (the job's error read through a sync_file's status), or a user fence if the
 * VM was created by hmmgpu_vm_create() in fault mode. Returns 0, or the exec's
 * or the wait's -errno, or the job's error; *@from says which ("exec", "wait"
 * or "job"). The exec is restarted on EINTR only: its -EAGAIN (invalidations
 * kept overtaking the submission) is returned.
 */
int hmmgpu_exec_wait(int fd, uint32_t vm_id, const struct drm_hmmgpu_cmd *cmds, uint32_t count,
		     uint32_t timeout_ms, struct hmmgpu_waiter *w, const char **from);

/*
 * Queues the @num_ops operations at @ops as one fenced asynchronous VM_BIND
 * (DRM_HMMGPU_VM_BIND_ASYNC, signalling @w's sync object, which has the bind's
 * fence from the call on), and waits for that fence. Returns 0, the call's
 * -errno (that of the operation that failed, done by the call), the wait's,
 * or the fence's error; *@from says which ("bind", "wait" or "ops").
 */
int hmmgpu_vm_bind_async_wait(int fd, uint32_t vm_id, const struct drm_hmmgpu_vm_bind_op *ops,
			      uint32_t num_ops, struct hmmgpu_waiter *w, const char **from);

#endif /* HMMGPU_UTIL_H */
