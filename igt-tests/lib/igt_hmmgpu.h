/* SPDX-License-Identifier: MIT */
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Helpers for hmmgpu's uAPI (include/uapi/drm/hmmgpu_drm.h), in the style
 * of IGT's per-driver helpers: __name() returns 0 or -errno, name()
 * asserts success.
 */
#ifndef IGT_HMMGPU_H
#define IGT_HMMGPU_H

#include <stdbool.h>
#include <stdint.h>

#include "drm/hmmgpu_drm.h"

int __hmmgpu_get_param(int fd, uint32_t param, uint64_t *value);
uint64_t hmmgpu_get_param(int fd, uint32_t param);

int __hmmgpu_gem_create(int fd, uint64_t size, uint32_t flags, uint32_t *handle);
uint32_t hmmgpu_gem_create(int fd, uint64_t size);

int __hmmgpu_gem_mmap_offset(int fd, uint32_t handle, uint32_t flags, uint64_t *offset);
uint64_t hmmgpu_gem_mmap_offset(int fd, uint32_t handle);

int __hmmgpu_userptr_create(int fd, uint64_t addr, uint64_t size, uint32_t flags,
			    uint32_t *handle);
uint32_t hmmgpu_userptr_create(int fd, void *ptr, uint64_t size, uint32_t flags);

void *__hmmgpu_gem_mmap(int fd, uint32_t handle, uint64_t size, int prot);
void *hmmgpu_gem_mmap(int fd, uint32_t handle, uint64_t size, int prot);

/* GPU VMs (DRM_HMMGPU_FEATURE_VM). */

/**
 * struct hmmgpu_vm_mode - A VM mode and its name in subtest names.
 * @flags: its DRM_HMMGPU_VM_MODE_* bit, as DRM_IOCTL_HMMGPU_VM_CREATE takes it.
 * @name: "fault", "prefault" or "pinned".
 */
struct hmmgpu_vm_mode {
	uint32_t flags;
	const char *name;
};

/* Every mode the uAPI defines, in bit order; ends with { 0, NULL }. */
extern const struct hmmgpu_vm_mode hmmgpu_vm_modes[];

uint32_t hmmgpu_vm_modes_offered(int fd);
int hmmgpu_open_vm_device(void);
bool hmmgpu_has_vm_mode(int fd, uint32_t mode);
const char *hmmgpu_vm_mode_name(uint32_t mode);

#ifndef for_each_if
#define for_each_if(condition) if (!(condition)) {} else
#endif

/**
 * for_each_hmmgpu_vm_mode - Iterates @mode (a const struct hmmgpu_vm_mode *)
 * over the modes the device behind @fd offers (DRM_HMMGPU_PARAM_VM_MODES).
 */
#define for_each_hmmgpu_vm_mode(fd, mode) \
	for ((mode) = hmmgpu_vm_modes; (mode)->name; (mode)++) \
		for_each_if(hmmgpu_has_vm_mode((fd), (mode)->flags))

/**
 * for_each_hmmgpu_vm_mode_dynamic - One igt_dynamic per mode the device behind
 * @fd offers, named after the mode, with @mode the mode it runs for.
 */
#define for_each_hmmgpu_vm_mode_dynamic(fd, mode) \
	for_each_hmmgpu_vm_mode(fd, mode) \
		igt_dynamic_f("%s", (mode)->name)

int __hmmgpu_vm_create(int fd, uint32_t flags, uint32_t *vm_id);
uint32_t hmmgpu_vm_create(int fd, uint32_t flags);

int __hmmgpu_vm_destroy(int fd, uint32_t vm_id);
void hmmgpu_vm_destroy(int fd, uint32_t vm_id);

int __hmmgpu_vm_bind(int fd, uint32_t vm_id, uint32_t op, uint32_t handle, uint32_t flags,
		     uint64_t va, uint64_t size, uint64_t offset);
void hmmgpu_vm_map(int fd, uint32_t vm_id, uint32_t handle, uint32_t flags, uint64_t va,
		   uint64_t size, uint64_t offset);
void hmmgpu_vm_unmap(int fd, uint32_t vm_id, uint64_t va, uint64_t size);

struct drm_hmmgpu_vm_bind_op hmmgpu_bind_op_map(uint32_t handle, uint64_t va, uint64_t size);
struct drm_hmmgpu_vm_bind_op hmmgpu_bind_op_unmap(uint64_t va, uint64_t size);
int __hmmgpu_vm_bind_ops(int fd, uint32_t vm_id, const struct drm_hmmgpu_vm_bind_op *ops,
			 uint32_t num_ops, const struct drm_hmmgpu_sync *syncs,
			 uint32_t num_syncs, uint32_t *failed_op);

/* Asynchronous binds (DRM_HMMGPU_VM_BIND_ASYNC): they report through user fences. */
int __hmmgpu_vm_bind_async(int fd, uint32_t vm_id, const struct drm_hmmgpu_vm_bind_op *ops,
			   uint32_t num_ops, const struct drm_hmmgpu_sync *syncs,
			   uint32_t num_syncs);
int __hmmgpu_vm_bind_fenced(int fd, uint32_t vm_id, const struct drm_hmmgpu_vm_bind_op *ops,
			    uint32_t num_ops, const struct drm_hmmgpu_sync *syncs,
			    uint32_t num_syncs, uint32_t *failed_op);
void hmmgpu_vm_bind_async(int fd, uint32_t vm_id, const struct drm_hmmgpu_vm_bind_op *ops,
			  uint32_t num_ops, const struct drm_hmmgpu_sync *syncs,
			  uint32_t num_syncs);

int __hmmgpu_vm_stats(int fd, uint32_t vm_id, struct drm_hmmgpu_vm_stats *stats);
void hmmgpu_vm_stats(int fd, uint32_t vm_id, struct drm_hmmgpu_vm_stats *stats);

int __hmmgpu_exec(int fd, struct drm_hmmgpu_exec *exec);
void hmmgpu_exec(int fd, struct drm_hmmgpu_exec *exec);

/* Sync objects are waited for with the core's ioctls, their errors read through sync_files. */
int __hmmgpu_wait(int fd, uint32_t syncobj, int64_t timeout_ns, int32_t *error);
int hmmgpu_wait(int fd, uint32_t syncobj, int64_t timeout_ns);
int __hmmgpu_fence_error(int fd, uint32_t syncobj, int *status);
int hmmgpu_fence_error(int fd, uint32_t syncobj);
int hmmgpu_point_error(int fd, uint32_t syncobj, uint64_t point);

int __hmmgpu_wait_user_fence(int fd, const volatile uint64_t *addr, uint64_t value,
			     uint64_t mask, uint32_t op, int64_t timeout_ns);

/*
 * User fences of a test: a value and an error word, in a page of their own
 * that the test unmaps at its end (a fence whose memory is gone is not
 * written).
 */
struct hmmgpu_ufence {
	uint64_t value;
	int64_t error;
};

struct hmmgpu_ufence *hmmgpu_ufences_new(int flags);
void hmmgpu_ufences_free(struct hmmgpu_ufence *uf);
struct drm_hmmgpu_sync hmmgpu_ufence_sync(struct hmmgpu_ufence *uf, uint64_t value);
uint64_t hmmgpu_ufence_value(const struct hmmgpu_ufence *uf);
int64_t hmmgpu_ufence_error(const struct hmmgpu_ufence *uf);
int64_t hmmgpu_ufence_wait(int fd, struct hmmgpu_ufence *uf, uint64_t value, int64_t timeout_ns);

void hmmgpu_drop_cap_ipc_lock(void);

/* Syncs for DRM_IOCTL_HMMGPU_EXEC and DRM_IOCTL_HMMGPU_VM_BIND. */
struct drm_hmmgpu_sync hmmgpu_sync_wait(uint32_t syncobj);
struct drm_hmmgpu_sync hmmgpu_sync_signal(uint32_t syncobj);
struct drm_hmmgpu_sync hmmgpu_sync_timeline_wait(uint32_t syncobj, uint64_t point);
struct drm_hmmgpu_sync hmmgpu_sync_timeline_signal(uint32_t syncobj, uint64_t point);
struct drm_hmmgpu_sync hmmgpu_sync_user_fence(volatile uint64_t *addr, uint64_t value,
					      volatile int64_t *error);

int __hmmgpu_exec_wait(int fd, uint32_t vm_id, const struct drm_hmmgpu_cmd *cmds,
		       uint32_t count, uint32_t timeout_ms, int32_t *error);
int hmmgpu_exec_wait(int fd, uint32_t vm_id, const struct drm_hmmgpu_cmd *cmds,
		     uint32_t count, uint32_t timeout_ms);
int hmmgpu_exec_job(int fd, uint32_t vm_id, const struct drm_hmmgpu_cmd *cmds,
		    uint32_t count, uint32_t timeout_ms);

/**
 * struct hmmgpu_user_fence - A user fence and its error word.
 * @value: the fence, written last.
 * @error: the job's error (a __s64), written before @value.
 * @next: the next free fence (library-internal).
 */
struct hmmgpu_user_fence {
	uint64_t value;
	int64_t error;
	struct hmmgpu_user_fence *next;
};

/**
 * struct hmmgpu_done - How the end of a job is seen, the way its VM's mode
 * allows: the fence of a binary sync object (prefault and pinned modes), or a
 * user fence (fault mode, whose jobs have no fence). Arm it for each job with
 * hmmgpu_done_signal(), which gives the signal sync to pass to the exec.
 * @fd: the file of the sync object, through which user fences are waited for.
 * @syncobj: the sync object, or 0 for a user fence.
 * @uf: the user fence, or NULL.
 * @seq: the value the job @done was last armed for writes in @uf.
 */
struct hmmgpu_done {
	int fd;
	uint32_t syncobj;
	struct hmmgpu_user_fence *uf;
	uint64_t seq;
};

struct hmmgpu_done *hmmgpu_done_create(int fd, uint32_t vm_mode);
void hmmgpu_done_destroy(struct hmmgpu_done *done);
struct drm_hmmgpu_sync hmmgpu_done_signal(struct hmmgpu_done *done);
bool hmmgpu_done_signalled(struct hmmgpu_done *done, int32_t *error);
int __hmmgpu_done_wait(struct hmmgpu_done *done, int64_t timeout_ns, int32_t *error);
int hmmgpu_done_wait(struct hmmgpu_done *done, int64_t timeout_ns);

/*
 * Command builders: each fills *@cmd and returns @cmd + 1, so that a buffer
 * is written with c = hmmgpu_cmd_fill(c, ...); c = hmmgpu_cmd_copy(c, ...);
 */
struct drm_hmmgpu_cmd *hmmgpu_cmd_copy(struct drm_hmmgpu_cmd *cmd, uint64_t dst,
				       uint64_t src, uint64_t size);
struct drm_hmmgpu_cmd *hmmgpu_cmd_fill(struct drm_hmmgpu_cmd *cmd, uint64_t dst,
				       uint64_t size, uint32_t value);
struct drm_hmmgpu_cmd *hmmgpu_cmd_write64(struct drm_hmmgpu_cmd *cmd, uint64_t dst,
					  uint64_t value);
struct drm_hmmgpu_cmd *hmmgpu_cmd_atomic_add(struct drm_hmmgpu_cmd *cmd, uint64_t dst,
					     uint64_t value);
struct drm_hmmgpu_cmd *hmmgpu_cmd_checksum(struct drm_hmmgpu_cmd *cmd, uint64_t dst,
					   uint64_t src, uint64_t size);

/*
 * Test data: a pattern of 32-bit words that differs with @seed and with the
 * word's index.
 */
uint32_t hmmgpu_pattern(uint32_t seed, uint64_t i);
void hmmgpu_fill_pattern(void *ptr, uint64_t size, uint32_t seed);
/* Asserts that [@off, @off + @size) of a buffer filled whole with @seed holds it. */
void hmmgpu_check_pattern_at(const void *base, uint64_t off, uint64_t size, uint32_t seed);
void hmmgpu_check_pattern(const void *ptr, uint64_t size, uint32_t seed);

/* Pinned mode charges RLIMIT_MEMLOCK: raises it to unlimited, where allowed. */
void hmmgpu_raise_memlock(void);

/* Whether the fence of @syncobj has signalled, right now; if so, its error in *@error. */
bool hmmgpu_syncobj_signalled(int fd, uint32_t syncobj, int32_t *error);

/*
 * Anonymous memory of @size bytes registered with a new userfaultfd (at
 * *@uffd) for missing pages, which the kernel's own faults reach too (not
 * UFFD_USER_MODE_ONLY); skips the test where there is no such userfaultfd.
 */
void *hmmgpu_uffd_area(size_t size, int *uffd);
/* Whether a fault waits for the handler of @uffd: a message is there to read. */
bool hmmgpu_uffd_pending(int uffd);

/* AnonHugePages of the VMA holding @ptr, in KiB, from /proc/self/smaps; 0 if unreadable. */
uint64_t hmmgpu_anon_huge_kb(const void *ptr);

/*
 * nr_foll_pin_acquired and nr_foll_pin_released from /proc/vmstat, made
 * exact first (vm/stat_refresh folds the per-CPU deltas). False if either
 * file or either counter is missing.
 */
bool hmmgpu_read_pin_counters(uint64_t *acquired, uint64_t *released);

/*
 * Asserts that as many page pins were released as acquired since @acquired0
 * and @released0 were read, and says how many, as @what. Unpinning may trail
 * an unbind or an invalidation (a worker releases the pins an invalidation
 * drops): polls for at most 5 s. Returns the pins acquired since.
 */
uint64_t hmmgpu_assert_pins_balanced(uint64_t acquired0, uint64_t released0, const char *what);

/* Whether transparent huge pages are enabled ("always" or "madvise"). */
bool hmmgpu_thp_enabled(void);

/*
 * A 2 MiB-aligned buffer of @size bytes of private anonymous memory, with
 * MADV_HUGEPAGE, filled with hmmgpu_fill_pattern(@seed) (so touched whole: the
 * CPU backs it with huge pages where it can). *@map is the mapping to munmap,
 * of *@map_size bytes.
 */
char *hmmgpu_thp_alloc(uint64_t size, uint32_t seed, void **map, uint64_t *map_size);

/*
 * Skips the test, unmapping @map (@map_size bytes, from hmmgpu_thp_alloc())
 * first, unless the CPU backs the buffer at @ptr with at least @kb kB of
 * huge pages (AnonHugePages of its VMA); logs how many it does.
 */
void hmmgpu_require_thp(void *map, uint64_t map_size, const void *ptr, uint64_t kb);

/* Logs the counters of *@stats, from hmmgpu_vm_stats(), with igt_debug(). */
void hmmgpu_vm_stats_debug(const struct drm_hmmgpu_vm_stats *stats);

/*
 * VM_STATS pinned_pages of @vm_id once it reads @expected, or what it reads
 * after 5 s; polls every 20 ms, logging each read with hmmgpu_vm_stats_debug().
 */
uint64_t hmmgpu_vm_pinned_pages_settled(int fd, uint32_t vm_id, uint64_t expected);

/* The number in file @path (a sysctl, say), or -1 if it cannot be read. */
long hmmgpu_read_long(const char *path);

/* Writes @value to file @path; whether the write took. */
bool hmmgpu_write_long(const char *path, long value);

/* Whether the system has swap: a line in /proc/swaps past its header. */
bool hmmgpu_swap_active(void);

#endif /* IGT_HMMGPU_H */
