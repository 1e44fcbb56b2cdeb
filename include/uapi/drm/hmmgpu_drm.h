/* SPDX-License-Identifier: MIT */
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * hmmgpu: a virtual GPU whose engine reaches memory only through its own
 * page table, which the driver keeps coherent with the CPU's.
 */
#ifndef _UAPI_HMMGPU_DRM_H_
#define _UAPI_HMMGPU_DRM_H_

#include "drm.h"

#if defined(__cplusplus)
extern "C" {
#endif

/*
 * Memory. The kernel memory a file makes the kernel hold, for as long as the
 * objects it made exist, is charged to the memory cgroup of the process whose
 * call allocated it: GEM objects and userptr objects, VMs, mappings and their
 * GPU page tables, mirrors of userptr mappings, queued jobs (their command
 * buffers, syncs and fences), queued asynchronous binds (their operations
 * and syncs) and sync objects (DRM_IOCTL_SYNCOBJ_CREATE). At
 * the cgroup's limit such a call fails with -ENOMEM (the OOM killer may run
 * first, as for any charge). A call that would make more of a GEM object's
 * pages resident than the memory available fails with -ENOMEM at once (see
 * struct drm_hmmgpu_gem_create). Page tables go when the mappings that needed
 * them go, but for a few spare tables per VM (at most 64, 16 KiB each) kept for
 * the next bind. Besides, these limits hold, each with its own error: 64 VMs
 * per file (-ENOSPC), DRM_HMMGPU_PARAM_GEM_MAX_SIZE per object (-EINVAL),
 * max_mappings mappings per VM (-ENOSPC), HMMGPU_CMD_MAX_COUNT commands per
 * job, HMMGPU_MAX_SYNCS syncs per job or bind and HMMGPU_VM_BIND_MAX_OPS
 * operations per bind (-EINVAL), and RLIMIT_MEMLOCK for pinned pages
 * (-ENOMEM).
 */

/*
 * Driver-specific ioctl numbers, offsets from DRM_COMMAND_BASE. They are
 * dense: the kernel's ioctl table is indexed by them.
 */
#define DRM_HMMGPU_GET_PARAM		0x00
#define DRM_HMMGPU_GEM_CREATE		0x01
#define DRM_HMMGPU_GEM_MMAP_OFFSET	0x02
#define DRM_HMMGPU_USERPTR_CREATE	0x03
#define DRM_HMMGPU_VM_CREATE		0x04
#define DRM_HMMGPU_VM_DESTROY		0x05
#define DRM_HMMGPU_VM_BIND		0x06
#define DRM_HMMGPU_EXEC			0x07
#define DRM_HMMGPU_WAIT_USER_FENCE	0x08
#define DRM_HMMGPU_VM_STATS		0x09

#define DRM_IOCTL_HMMGPU_GET_PARAM \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_GET_PARAM, struct drm_hmmgpu_get_param)
#define DRM_IOCTL_HMMGPU_GEM_CREATE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_GEM_CREATE, struct drm_hmmgpu_gem_create)
#define DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_GEM_MMAP_OFFSET, struct drm_hmmgpu_gem_mmap_offset)
#define DRM_IOCTL_HMMGPU_USERPTR_CREATE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_USERPTR_CREATE, struct drm_hmmgpu_userptr_create)
#define DRM_IOCTL_HMMGPU_VM_CREATE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_VM_CREATE, struct drm_hmmgpu_vm_create)
#define DRM_IOCTL_HMMGPU_VM_DESTROY \
	DRM_IOW(DRM_COMMAND_BASE + DRM_HMMGPU_VM_DESTROY, struct drm_hmmgpu_vm_destroy)
#define DRM_IOCTL_HMMGPU_VM_BIND \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_VM_BIND, struct drm_hmmgpu_vm_bind)
#define DRM_IOCTL_HMMGPU_EXEC \
	DRM_IOW(DRM_COMMAND_BASE + DRM_HMMGPU_EXEC, struct drm_hmmgpu_exec)
#define DRM_IOCTL_HMMGPU_WAIT_USER_FENCE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_WAIT_USER_FENCE, struct drm_hmmgpu_wait_user_fence)
#define DRM_IOCTL_HMMGPU_VM_STATS \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_VM_STATS, struct drm_hmmgpu_vm_stats)

/**
 * enum drm_hmmgpu_param - Parameters that DRM_IOCTL_HMMGPU_GET_PARAM reads.
 *
 * An unknown parameter fails with -EINVAL.
 */
enum drm_hmmgpu_param {
	/**
	 * @DRM_HMMGPU_PARAM_DRIVER_VERSION: The driver's version, as
	 * drmGetVersion() reports it: major << 32 | minor << 16 | patchlevel.
	 */
	DRM_HMMGPU_PARAM_DRIVER_VERSION = 0,

	/**
	 * @DRM_HMMGPU_PARAM_FEATURES: Bit mask of the DRM_HMMGPU_FEATURE_*
	 * the device offers.
	 */
	DRM_HMMGPU_PARAM_FEATURES = 1,

	/**
	 * @DRM_HMMGPU_PARAM_GEM_MAX_SIZE: The largest size, in bytes, that
	 * DRM_IOCTL_HMMGPU_GEM_CREATE and DRM_IOCTL_HMMGPU_USERPTR_CREATE
	 * accept: 64 GiB (1 << 36) for this driver, which may raise it but
	 * never below 4 GiB + DRM_HMMGPU_PARAM_PAGE_SIZE. Sizes, offsets and
	 * page indices are 64-bit throughout: objects and bindings larger than
	 * 4 GiB work as smaller ones do.
	 */
	DRM_HMMGPU_PARAM_GEM_MAX_SIZE = 2,

	/**
	 * @DRM_HMMGPU_PARAM_PAGE_SIZE: The granule, in bytes, of GEM object
	 * sizes and of GPU mappings.
	 */
	DRM_HMMGPU_PARAM_PAGE_SIZE = 3,

	/**
	 * @DRM_HMMGPU_PARAM_VM_MODES: Bit mask of the DRM_HMMGPU_VM_MODE_*
	 * the device offers: all three, unless the module was loaded with
	 * vm_modes=<mask>. Loaded with vm_modes=6, the device emulates
	 * hardware that cannot take GPU page faults.
	 */
	DRM_HMMGPU_PARAM_VM_MODES = 4,
};

/** DRM_HMMGPU_FEATURE_GEM_SHMEM - GEM objects backed by shmem, CPU mmap. */
#define DRM_HMMGPU_FEATURE_GEM_SHMEM	(1ull << 0)
/** DRM_HMMGPU_FEATURE_USERPTR - GEM objects naming a range of the process's memory. */
#define DRM_HMMGPU_FEATURE_USERPTR	(1ull << 1)
/** DRM_HMMGPU_FEATURE_VM - GPU VMs, VM bind and exec. */
#define DRM_HMMGPU_FEATURE_VM		(1ull << 2)

/**
 * struct drm_hmmgpu_get_param - Argument of DRM_IOCTL_HMMGPU_GET_PARAM.
 */
struct drm_hmmgpu_get_param {
	/** @param: In, one of enum drm_hmmgpu_param. */
	__u32 param;

	/** @pad: Must be zero. */
	__u32 pad;

	/** @value: Out, the parameter's value. */
	__u64 value;
};

/**
 * struct drm_hmmgpu_gem_create - Argument of DRM_IOCTL_HMMGPU_GEM_CREATE.
 *
 * Creates a GEM object backed by shmem and returns a handle to it.
 * @size must be a non-zero multiple of DRM_HMMGPU_PARAM_PAGE_SIZE and at most
 * DRM_HMMGPU_PARAM_GEM_MAX_SIZE, else the call fails with -EINVAL.
 *
 * Creation allocates none of the object's pages. A CPU mapping of the object
 * (mmap() of its offset, or of a dma-buf exported from it) makes all of its
 * pages resident, whatever the size of the mapping, until the object's last CPU
 * mapping goes; a binding (DRM_IOCTL_HMMGPU_VM_BIND) only the pages it binds,
 * while it is bound. An object larger than memory can be bound in windows, not
 * mapped by the CPU: a CPU mapping, a binding, or a device's pin of an export,
 * that would make more pages resident than the memory available (MemAvailable
 * in /proc/meminfo; of the pages it needs, those already resident aside, but
 * not the object's other pages) fails with -ENOMEM before it allocates any, in
 * every VM mode. Unbinding part of a binding releases the pages of that part:
 * the rest of the binding keeps only its own.
 */
struct drm_hmmgpu_gem_create {
	/** @size: In, the object's size in bytes. */
	__u64 size;

	/** @flags: In, must be zero. */
	__u32 flags;

	/** @handle: Out, the new object's handle. */
	__u32 handle;
};

/**
 * struct drm_hmmgpu_gem_mmap_offset - Argument of DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET.
 *
 * Returns the fake offset to pass to mmap() on the DRM file descriptor to map
 * the object into the CPU's address space. An unknown handle fails with
 * -ENOENT. An object made by DRM_IOCTL_HMMGPU_GEM_CREATE gets its offset at
 * the first call, not at creation, from a space of 1 TiB that all files of the
 * device share: the call fails with -ENOSPC when that is full, while objects
 * are still made.
 */
struct drm_hmmgpu_gem_mmap_offset {
	/** @handle: In, the object's handle. */
	__u32 handle;

	/** @flags: In, must be zero. */
	__u32 flags;

	/** @offset: Out, the offset to mmap(). */
	__u64 offset;
};

/** DRM_HMMGPU_USERPTR_READ_ONLY - The GPU may only read the range. */
#define DRM_HMMGPU_USERPTR_READ_ONLY	(1 << 0)
/**
 * DRM_HMMGPU_USERPTR_PROBE - Check at creation that every page of the range is
 * mapped in a mapping the GPU may read (not PROT_NONE, VM_PFNMAP or VM_IO), and
 * fail with -EFAULT otherwise. Without it, creation is lazy: an unmapped range
 * is only found out when the GPU uses it. Probing is interrupted by a signal
 * (-EINTR, or restarted under SA_RESTART) and gives up with -EAGAIN (or
 * -ETIMEDOUT) when the range keeps changing under it.
 */
#define DRM_HMMGPU_USERPTR_PROBE	(1 << 1)

/**
 * struct drm_hmmgpu_userptr_create - Argument of DRM_IOCTL_HMMGPU_USERPTR_CREATE.
 *
 * Creates a GEM object that names [@addr, @addr + @size) of the calling
 * process's address space and returns a handle to it. The range must be
 * page-aligned, non-empty, at most DRM_HMMGPU_PARAM_GEM_MAX_SIZE bytes and
 * inside the user address space, and @flags a combination of
 * DRM_HMMGPU_USERPTR_*; else -EINVAL. A userptr object has no mmap offset
 * (DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET fails with -EINVAL) and cannot be exported
 * as a dma-buf (-ENODEV).
 */
struct drm_hmmgpu_userptr_create {
	/** @addr: In, the first address of the range. */
	__u64 addr;

	/** @size: In, the size of the range in bytes. */
	__u64 size;

	/** @flags: In, DRM_HMMGPU_USERPTR_*. */
	__u32 flags;

	/** @handle: Out, the new object's handle. */
	__u32 handle;
};

/*
 * Engine commands. A command buffer is an array of struct drm_hmmgpu_cmd. The
 * engine reaches memory only through the GPU page table of the VM the buffer
 * runs on: every address below is a GPU virtual address, and an access that
 * no entry allows is a GPU page fault. A buffer that does not decode (an
 * unknown op, a non-zero flags field or a non-zero field the op does not
 * use, a misaligned range, an empty one, one of more than
 * HMMGPU_CMD_MAX_SIZE bytes, or one that wraps or ends past the 48-bit GPU
 * address space; a FILL @value of more than 32 bits) is refused whole with
 * -EINVAL before anything runs.
 */

/** @HMMGPU_CMD_COPY: copy @size bytes from @src to @dst; the ranges may not overlap. */
#define HMMGPU_CMD_COPY		1
/**
 * @HMMGPU_CMD_FILL: fill @size bytes (a multiple of 4) at @dst (4-byte
 * aligned) with the 32-bit little-endian word @value (at most 0xffffffff).
 */
#define HMMGPU_CMD_FILL		2
/** @HMMGPU_CMD_WRITE64: write the 64-bit @value at @dst (8-byte aligned). */
#define HMMGPU_CMD_WRITE64	3
/** @HMMGPU_CMD_ATOMIC_ADD64: add @value to the 64-bit word at @dst (8-byte aligned), atomically. */
#define HMMGPU_CMD_ATOMIC_ADD64	4
/**
 * @HMMGPU_CMD_CHECKSUM: write at @dst (8-byte aligned) the 64-bit sum of the
 * 32-bit little-endian words of the @size bytes (a multiple of 4) at @src
 * (4-byte aligned).
 */
#define HMMGPU_CMD_CHECKSUM	5

/** The largest @size of one command, and of a command buffer in commands. */
#define HMMGPU_CMD_MAX_SIZE	(1ull << 30)
#define HMMGPU_CMD_MAX_COUNT	4096

/**
 * struct drm_hmmgpu_cmd - One engine command.
 */
struct drm_hmmgpu_cmd {
	/** @op: One of HMMGPU_CMD_*. */
	__u32 op;
	/** @flags: Must be zero. */
	__u32 flags;
	/** @dst: Destination GPU virtual address. */
	__u64 dst;
	/** @src: Source GPU virtual address (COPY, CHECKSUM), else zero. */
	__u64 src;
	/** @size: Bytes (COPY, FILL, CHECKSUM), else zero. */
	__u64 size;
	/** @value: Pattern (FILL), value (WRITE64, ATOMIC_ADD64), else zero. */
	__u64 value;
};

/*
 * GPU VMs. Each open file has its own VMs, named by small integers. A VM is a
 * 48-bit GPU virtual address space with its own page table, and a queue whose
 * jobs run in submission order. How userptr mappings are kept coherent with
 * the CPU is chosen when the VM is created:
 *
 * - DRM_HMMGPU_VM_MODE_FAULT: userptr mappings start empty. A GPU page fault
 *   stops the job; the kernel mirrors a window around the address (a 2 MiB
 *   entry where the CPU maps a huge page and both addresses are 2 MiB
 *   aligned) and the job resumes. Invalidations clear the entries. Such a VM
 *   is long-running: resolving a fault faults CPU pages in, which may wait
 *   for memory, so its jobs have no dma-fence (which must signal without
 *   waiting for memory, Documentation/driver-api/dma-buf.rst) and complete
 *   through user fences only (struct drm_hmmgpu_sync).
 * - DRM_HMMGPU_VM_MODE_PREFAULT: the GPU cannot fault. Every submission first
 *   mirrors the userptr mappings invalidated since the last one; an
 *   invalidation waits for the VM's jobs before it clears the entries.
 * - DRM_HMMGPU_VM_MODE_PINNED: the GPU cannot fault. Userptr pages are pinned
 *   long-term at bind (write pins unless the mapping is read-only), charged
 *   to RLIMIT_MEMLOCK of the process; an invalidation waits for the VM's jobs,
 *   clears the entries and drops the pins, and the next submission pins again.
 *
 * In every mode a job that touches an address no entry allows (no mapping, a
 * write to a read-only mapping, memory the CPU no longer maps) ends with
 * -EFAULT. In prefault and pinned modes a userptr mapping is mirrored whole
 * or not at all: once any of its pages is no longer mapped, jobs fault on
 * all of it until it is mapped again (fault mode mirrors page by page). Pins
 * an invalidation drops are released shortly after, by a worker, without
 * waiting for another submission.
 *
 * Pages the GPU may have written through a writable userptr mapping are
 * marked dirty when their entries are cleared (by an invalidation, or when
 * the mapping goes), so the core MM never discards or skips writing back what
 * the GPU wrote: data survives reclaim (also of MADV_FREE memory), swap,
 * writeback and migration in every mode.
 *
 * A VM belongs to the process that created it: userptr mappings must
 * name that process's memory, and jobs submitted by another process (a child
 * that inherited the file) fault on them. In prefault and pinned modes, whose
 * invalidations wait for the VM's jobs, when that process exits (its address
 * space goes) while the VM has userptr mappings, the jobs submitted to the VM
 * until then that are not done yet end with -ECANCELED, so that exit does not
 * wait for their time limits; jobs submitted later (through a file the
 * process passed on) run as usual.
 */
#define DRM_HMMGPU_VM_MODE_FAULT	(1 << 0)
#define DRM_HMMGPU_VM_MODE_PREFAULT	(1 << 1)
#define DRM_HMMGPU_VM_MODE_PINNED	(1 << 2)

/**
 * struct drm_hmmgpu_vm_create - Argument of DRM_IOCTL_HMMGPU_VM_CREATE.
 *
 * @flags must be exactly one DRM_HMMGPU_VM_MODE_* the device offers, else
 * -EINVAL. A file has at most 64 VMs (-ENOSPC).
 */
struct drm_hmmgpu_vm_create {
	/** @flags: In, the VM's mode. */
	__u32 flags;

	/** @vm_id: Out, the new VM's id, never zero. */
	__u32 vm_id;
};

/**
 * struct drm_hmmgpu_vm_destroy - Argument of DRM_IOCTL_HMMGPU_VM_DESTROY.
 *
 * Cancels the VM's jobs not yet done (their fences signal -ECANCELED), waits
 * for the one running, and removes its mappings; the user fences of its jobs
 * and binds are written when it returns. -ENOENT for an unknown id.
 */
struct drm_hmmgpu_vm_destroy {
	/** @vm_id: In, the VM. */
	__u32 vm_id;

	/** @pad: Must be zero. */
	__u32 pad;
};

/*
 * Synchronization. Jobs and binds wait for and signal fences through sync
 * objects (DRM_IOCTL_SYNCOBJ_*, binary or timeline), and signal user fences:
 * a 64-bit word of the process's memory that the kernel writes when the work
 * is done, waited for with DRM_IOCTL_HMMGPU_WAIT_USER_FENCE. A sync_file
 * enters or leaves through a sync object (DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE with
 * DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE, and
 * DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD with
 * DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE).
 *
 * How a job's error is read: a job of a prefault or pinned VM signals its
 * fence with the error (0 when it succeeded; else -EFAULT for a GPU page
 * fault no mapping allows, -ETIMEDOUT when it ran out of time, -ECANCELED
 * when its VM was destroyed or the VM's process exited before it was done,
 * or the error of an input fence that signalled with one, for a timeline
 * point the error of the point's own fence, in which case the job does not
 * run). Export the sync object's fence as a sync_file and read
 * struct sync_file_info.status with SYNC_IOC_FILE_INFO (1: signalled without
 * error, 0: not yet, < 0: the error). A timeline point is a dma_fence_chain
 * node, which does not carry its fence's error: export the point (transfer it
 * to a binary sync object first, DRM_IOCTL_SYNCOBJ_TRANSFER) and read the
 * status of the first struct sync_fence_info that SYNC_IOC_FILE_INFO returns
 * with @num_fences non-zero: the point's own fence. This works while the point
 * is the timeline's last or not yet signalled: once a later point signalled,
 * the core hands out a signalled stub for it, without the error. A user fence's job writes
 * its error, as a __s64, at @error_addr, if given, before it writes @value at
 * @addr.
 */

/** DRM_HMMGPU_SYNC_SYNCOBJ - A binary sync object: @handle. */
#define DRM_HMMGPU_SYNC_SYNCOBJ			0
/** DRM_HMMGPU_SYNC_TIMELINE_SYNCOBJ - Point @value of timeline sync object @handle. */
#define DRM_HMMGPU_SYNC_TIMELINE_SYNCOBJ	1
/**
 * DRM_HMMGPU_SYNC_USER_FENCE - A user fence, signal only: when the work is
 * done (whether it succeeded or not), the kernel writes @value, as one 64-bit
 * store, at @addr in the address space of the process that made the call.
 */
#define DRM_HMMGPU_SYNC_USER_FENCE		2

/** DRM_HMMGPU_SYNC_SIGNAL - Signal the sync when the work is done; else wait for it first. */
#define DRM_HMMGPU_SYNC_SIGNAL			(1 << 0)

/** The most syncs a job or a bind takes. */
#define HMMGPU_MAX_SYNCS		16

/**
 * struct drm_hmmgpu_sync - A fence to wait for, or to signal.
 *
 * Waiting for a sync object (binary, or a timeline point) waits for the fence
 * it holds when the ioctl runs; one that holds none fails with -EINVAL (submit
 * the work that signals it first). Signalling a binary sync object replaces
 * its fence with the work's; signalling a timeline point adds the work's fence
 * at point @value (non-zero). An unknown handle fails with -ENOENT.
 *
 * Jobs of fault-mode VMs have no fence: signalling a sync object from one
 * fails with -EOPNOTSUPP; they may wait for sync objects, and signal user
 * fences. User fences can be signalled in every mode and for binds: the kernel
 * writes them after the work's fence, if any, signalled. Those of a VM's
 * jobs are written in the order the jobs end, which is their submission
 * order, so a value that grows from job to job at one address never goes
 * back; a bind writes its own before it returns. @addr (and
 * @error_addr, if non-zero) must be 8-byte aligned (-EINVAL) and in the user
 * address space (-EFAULT); if the kernel cannot write them when the work is
 * done (the memory was unmapped, or the process exited), they are not
 * written, and if it cannot write the error word, it does not write the
 * value either: whoever sees the value finds the error beside it. Waiting
 * for a user fence, as an input, fails with -EINVAL.
 *
 * A sync of an unknown type, with an unknown flag, a non-zero @pad or a
 * non-zero field its type does not use, or signalling timeline point 0, fails
 * with -EINVAL.
 */
struct drm_hmmgpu_sync {
	/** @type: In, DRM_HMMGPU_SYNC_SYNCOBJ, _TIMELINE_SYNCOBJ or _USER_FENCE. */
	__u32 type;

	/** @flags: In, DRM_HMMGPU_SYNC_SIGNAL or 0. */
	__u32 flags;

	/** @handle: In, the sync object (sync object types), else 0. */
	__u32 handle;

	/** @pad: Must be zero. */
	__u32 pad;

	/** @addr: In, the user fence's address (USER_FENCE), else 0. */
	__u64 addr;

	/**
	 * @value: In, the timeline point (TIMELINE_SYNCOBJ), or the value the
	 * kernel writes (USER_FENCE); else 0.
	 */
	__u64 value;

	/**
	 * @error_addr: In, for a USER_FENCE, where the kernel writes the
	 * work's error (0 or -errno, a __s64) before it writes the fence; 0
	 * for none. Else 0.
	 */
	__u64 error_addr;
};

#define DRM_HMMGPU_VM_BIND_MAP		0
#define DRM_HMMGPU_VM_BIND_UNMAP	1

/** DRM_HMMGPU_VM_BIND_READ_ONLY - The GPU may only read the mapping. */
#define DRM_HMMGPU_VM_BIND_READ_ONLY	(1 << 0)

/**
 * DRM_HMMGPU_VM_BIND_ASYNC - In struct drm_hmmgpu_vm_bind's @flags: queue the
 * bind and return at once (see struct drm_hmmgpu_vm_bind).
 */
#define DRM_HMMGPU_VM_BIND_ASYNC	(1 << 0)

/** The most operations one DRM_IOCTL_HMMGPU_VM_BIND takes. */
#define HMMGPU_VM_BIND_MAX_OPS		512

/**
 * struct drm_hmmgpu_vm_bind_op - One operation of DRM_IOCTL_HMMGPU_VM_BIND.
 *
 * DRM_HMMGPU_VM_BIND_MAP maps [@offset, @offset + @size) of the object
 * @handle (a GEM object or a userptr) at GPU virtual address @va. @va, @size
 * and @offset must be page-aligned, @size non-zero, the range inside both the
 * object and the 48-bit address space (-EINVAL), and free of other mappings
 * (-EBUSY). A userptr of another process, or a userptr bound by another
 * process than the VM's (a child holding the file), gives -EFAULT; in pinned
 * mode, the errors of pinning (-EFAULT for a page not mapped, -ENOMEM past
 * RLIMIT_MEMLOCK). A window of a GEM object whose pages would not fit in
 * the memory available gives -ENOMEM (see struct drm_hmmgpu_gem_create). A
 * mapping of a read-only userptr is read-only.
 *
 * DRM_HMMGPU_VM_BIND_UNMAP removes whatever is mapped in [@va, @va + @size),
 * splitting mappings that lie partly outside; @handle, @flags and @offset
 * must be zero. Jobs that touch an unmapped address fault. What a split
 * leaves mapped on either side stays usable by jobs submitted before the
 * unbind, even in prefault and pinned modes, where a job cannot fault pages
 * in (pinned mode pins the pieces' pages anew, and if it cannot, the next
 * submission does). A 2 MiB entry cut by the unbind is split into the 4 KiB
 * entries that translate as it did. The exceptions are, in prefault mode, a
 * userptr piece made while an invalidation of the process's address space
 * is in progress, of the piece's range or of any other (an munmap,
 * mprotect, madvise, reclaim or migration in the process, those of the
 * piece's range waiting for the VM's jobs: until every running one ends,
 * the piece's range counts as being invalidated), and in pinned mode one
 * whose pages cannot be pinned anew: such a piece starts unmapped, as a new
 * mapping does, and a job submitted before the unbind that has not run yet
 * faults on it.
 *
 * A GEM object imported from another driver's dma-buf maps only if its
 * memory is system RAM (-EOPNOTSUPP for device memory), listed in whole
 * pages (entries of its scatter list may start at a page offset into a
 * folio, as udmabuf's do). Its pages are the exporter's: binding them
 * allocates none and is not limited by the memory available.
 *
 * A VM holds at most 1048576 mappings (-ENOSPC; the module parameter
 * max_mappings may set fewer), found, bound and unbound in O(log n).
 */
struct drm_hmmgpu_vm_bind_op {
	/** @op: In, DRM_HMMGPU_VM_BIND_MAP or DRM_HMMGPU_VM_BIND_UNMAP. */
	__u32 op;

	/** @handle: In, the object to map. */
	__u32 handle;

	/** @flags: In, DRM_HMMGPU_VM_BIND_*. */
	__u32 flags;

	/** @pad: Must be zero. */
	__u32 pad;

	/** @va: In, the GPU virtual address. */
	__u64 va;

	/** @size: In, the size in bytes. */
	__u64 size;

	/** @offset: In, the offset into the object. */
	__u64 offset;
};

/**
 * struct drm_hmmgpu_vm_bind - Argument of DRM_IOCTL_HMMGPU_VM_BIND.
 *
 * Runs @num_ops operations on the VM, in order: the one in @bind when
 * @num_ops is 0 or 1 (the simple case: fill @bind, leave the rest zero),
 * else the array at @ops (at most HMMGPU_VM_BIND_MAX_OPS, -EINVAL).
 *
 * The operations run in order, each on the VM as the ones before it left it.
 * If one fails, the call fails with its error and sets @failed_op to its
 * index: the operations before it are done, it and those after it are not.
 * On success @failed_op is 0.
 *
 * A bind without DRM_HMMGPU_VM_BIND_ASYNC is synchronous: the call first
 * waits for the asynchronous binds of the VM queued before it to be done,
 * then for its wait syncs (among the @num_syncs, at most HMMGPU_MAX_SYNCS, at
 * @syncs; -ERESTARTSYS if a signal interrupts either wait, before any
 * operation ran), runs the operations, and signals its signal syncs before it
 * returns, even when an operation failed (a sync object gets a fence
 * signalled with that error). A wait sync that signalled with an error fails
 * the call with that error, before any operation ran (@failed_op 0). Sync
 * objects signalled by a bind can be waited for by jobs, on any VM and
 * device.
 *
 * With DRM_HMMGPU_VM_BIND_ASYNC in @flags the call queues the bind on the
 * VM's bind queue. Queued binds take their turn one at a time, in the order
 * they were queued, each once its wait syncs have signalled. There are two
 * kinds, told apart by the syncs.
 *
 * A bind that signals a sync object is fenced, as xe's binds are: its sync
 * objects get its fence, not signalled yet, from the call on (a binary one
 * has it in place of its fence, a timeline's point is there), so that a
 * job's or bind's wait sync, a wait without
 * DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT and an export as a sync_file find
 * it. The fence signals in the bind's turn, which neither allocates memory
 * nor waits for what does; so the call does the operations, with the errors
 * of a synchronous bind, on the VM as the binds queued before it leave it. A
 * map is done by the call: jobs may use the mapping at once. An unmap takes
 * its mappings away in the call (the range is free for the next map, which
 * waits as below) and leaves their pieces mapped, but the entries of what it
 * unmapped stay until the bind's turn, when they are cleared and the fence
 * signals. Until then a job still reaches the memory there through those
 * entries: a GEM object's and a pinned userptr's, and a userptr's that a job
 * mirrored (prefault mode) or faulted in (fault mode) since its last
 * invalidation; what is not there is not mirrored or faulted in again (jobs
 * fault on it), nor is what an invalidation clears. In pinned mode a userptr
 * mapping that an unmap leaves pieces of keeps its pins, and their
 * RLIMIT_MEMLOCK charge, until the turn, even once an invalidation cleared
 * its entries (the pieces' entries may map the same pages until then). The
 * call first waits for the unfenced binds queued before it to have run, and
 * a map waits for the queued binds that are to clear entries in its range
 * (those around it included) to have done so; both waits are interruptible
 * (-ERESTARTSYS, nothing done). A map over a range an unmap of the same bind
 * unmapped fails with -EBUSY. If an operation fails the call fails with its
 * error and sets
 * @failed_op: the operations before it are done and the bind is queued all the
 * same, its fence signalling with that error. In its turn the fence signals
 * with error 0, or else the error of a wait sync that signalled with one, or
 * -ECANCELED when the VM was destroyed or its file closed first: the entries
 * are cleared all the same. User fences of a fenced bind are written soon after
 * its fence signals.
 *
 * A bind that signals no sync object is unfenced: the call checks it and
 * returns 0; the bind's operations run in its turn, as a synchronous bind's
 * do, with the same errors, as the caller: in the address space of the VM's
 * process if the caller is that process (a call that maps a userptr from
 * another process fails with -EFAULT), charged to the memory cgroup of the
 * caller's process and to its RLIMIT_MEMLOCK. When it is done, its user
 * fences are written with its error at @error_addr: 0 when every operation
 * succeeded; the error of the first operation that failed (the operations
 * after it do not run: bind one operation per call to know which failed);
 * the error of a wait sync that signalled with one (no operation runs);
 * -ECANCELED when the VM was destroyed, or its file closed, before the bind
 * ran. Its operations fault, pin and allocate memory when they run, which no
 * dma-fence may wait for: that is why it signals no sync object. They run on
 * a kernel worker, which never waits for a userfaultfd handler: pinning
 * memory that only the handler could bring in fails with -EFAULT.
 *
 * Jobs do not wait for queued binds of themselves: give a job the fenced
 * bind's sync object as a wait sync, or wait for an unfenced bind's user
 * fence (DRM_IOCTL_HMMGPU_WAIT_USER_FENCE) before submitting jobs that use
 * its mappings. Either kind of call fails, with nothing queued and its sync
 * objects untouched, with the errors of checking: -ENOENT for an unknown VM,
 * sync object or object @handle (the objects are looked up by the call and
 * kept until the bind ran), -EINVAL for an operation or sync that is not
 * valid in itself (an unknown @op or flag, a non-zero @pad, an unaligned,
 * empty or out-of-range address, size or offset; see struct
 * drm_hmmgpu_vm_bind_op and struct drm_hmmgpu_sync), -EFAULT when the arrays
 * cannot be read, -ENOMEM. For an unfenced bind, whether a range is free,
 * and whether an object is large enough, is found when the operation runs.
 */
struct drm_hmmgpu_vm_bind {
	/** @vm_id: In, the VM. */
	__u32 vm_id;

	/** @num_ops: In, the number of operations (0 or 1: @bind). */
	__u32 num_ops;

	/** @bind: In, the operation when @num_ops is 0 or 1; else zero. */
	struct drm_hmmgpu_vm_bind_op bind;

	/** @ops: In, pointer to an array of struct drm_hmmgpu_vm_bind_op. */
	__u64 ops;

	/** @syncs: In, pointer to an array of struct drm_hmmgpu_sync. */
	__u64 syncs;

	/** @num_syncs: In, the number of syncs at @syncs. */
	__u32 num_syncs;

	/**
	 * @failed_op: Out, the index of the operation that failed (synchronous
	 * and fenced binds); 0 otherwise.
	 */
	__u32 failed_op;

	/** @flags: In, DRM_HMMGPU_VM_BIND_ASYNC or 0. */
	__u32 flags;

	/** @pad: Must be zero. */
	__u32 pad;
};

/** The longest a job may run, and its default, in milliseconds. */
#define HMMGPU_EXEC_MAX_TIMEOUT_MS	60000
#define HMMGPU_EXEC_DEFAULT_TIMEOUT_MS	10000

/**
 * struct drm_hmmgpu_exec - Argument of DRM_IOCTL_HMMGPU_EXEC.
 *
 * Queues a job that runs the @cmd_count commands at @cmds on the VM, after
 * the wait syncs among the @num_syncs at @syncs have signalled, and signals
 * its signal syncs when done (see struct drm_hmmgpu_sync); when the call
 * fails, none is signalled. Jobs of a VM run
 * one at a time, in submission order. A job not done @timeout_ms
 * milliseconds after the call queued it (waiting for its input fences and
 * for the jobs before it included; the call's own work, such as mirroring
 * invalidated mappings again, not) ends with -ETIMEDOUT. A job whose input fence
 * signalled with an error ends with that error, unrun.
 *
 * -ENOENT for an unknown VM or sync object; -EINVAL for unknown flags, a
 * command buffer that does not decode, more than HMMGPU_MAX_SYNCS syncs, a sync
 * that is not valid (see struct drm_hmmgpu_sync), too long a timeout, or a
 * @cmd_count of 0 or more than HMMGPU_CMD_MAX_COUNT; -EOPNOTSUPP for a sync
 * object to signal from a fault-mode VM; in pinned mode, -ENOMEM when pages an
 * invalidation unpinned cannot be pinned again within RLIMIT_MEMLOCK (nothing
 * is queued); -EFAULT when the arrays cannot be read. In prefault and pinned
 * modes a submission mirrors again the userptr mappings invalidated since the
 * last one, and publishes its job only once none is being invalidated: it may
 * wait for an invalidation that waits for the VM's last job (-EINTR or
 * -ERESTARTSYS if a signal interrupts that), and fails with -EAGAIN when
 * invalidations keep overtaking it.
 */
struct drm_hmmgpu_exec {
	/** @vm_id: In, the VM. */
	__u32 vm_id;

	/** @flags: In, must be zero. */
	__u32 flags;

	/** @cmds: In, pointer to an array of struct drm_hmmgpu_cmd. */
	__u64 cmds;

	/** @cmd_count: In, the number of commands. */
	__u32 cmd_count;

	/** @timeout_ms: In, the job's time limit; 0 for the default. */
	__u32 timeout_ms;

	/** @syncs: In, pointer to an array of struct drm_hmmgpu_sync. */
	__u64 syncs;

	/** @num_syncs: In, the number of syncs at @syncs. */
	__u32 num_syncs;

	/** @pad: Must be zero. */
	__u32 pad;
};

/* How DRM_IOCTL_HMMGPU_WAIT_USER_FENCE compares the fence with @value. */
#define DRM_HMMGPU_WAIT_EQ	0
#define DRM_HMMGPU_WAIT_NEQ	1
#define DRM_HMMGPU_WAIT_GT	2
#define DRM_HMMGPU_WAIT_GTE	3
#define DRM_HMMGPU_WAIT_LT	4
#define DRM_HMMGPU_WAIT_LTE	5

/**
 * struct drm_hmmgpu_wait_user_fence - Argument of DRM_IOCTL_HMMGPU_WAIT_USER_FENCE.
 *
 * Waits until the 64-bit word at @addr (8-byte aligned) of the calling
 * process, masked with @mask, compares with @value & @mask as @op says
 * (unsigned), or @timeout_ns nanoseconds pass (-ETIME). A negative
 * @timeout_ns waits without a limit. The word is read when the call starts and
 * whenever this device writes a user fence. -EINVAL for an unknown @op,
 * non-zero @flags, or a misaligned @addr; -EFAULT when the word cannot
 * be read; -EINTR when a signal interrupts the wait (or the call restarts,
 * under SA_RESTART), with @timeout_ns set to what is left of it, so that a
 * call made again waits no longer than the first would have.
 */
struct drm_hmmgpu_wait_user_fence {
	/** @addr: In, the user fence's address. */
	__u64 addr;

	/** @value: In, the value to compare with. */
	__u64 value;

	/** @mask: In, the bits compared. */
	__u64 mask;

	/** @timeout_ns: In/out, how long to wait at most; what is left of it. */
	__s64 timeout_ns;

	/** @op: In, DRM_HMMGPU_WAIT_*. */
	__u32 op;

	/** @flags: In, must be zero. */
	__u32 flags;
};

/**
 * struct drm_hmmgpu_vm_stats - Argument of DRM_IOCTL_HMMGPU_VM_STATS.
 *
 * Counters of a VM since it was created (@pinned_pages: now).
 */
struct drm_hmmgpu_vm_stats {
	/** @vm_id: In, the VM. */
	__u32 vm_id;

	/** @pad: Must be zero. */
	__u32 pad;

	/** @faults: GPU page faults resolved by mirroring (fault mode). */
	__u64 faults;

	/** @faults_4k: Of @faults, those mapped with a 4 KiB entry. */
	__u64 faults_4k;

	/** @faults_2m: Of @faults, those mapped with a 2 MiB entry. */
	__u64 faults_2m;

	/** @entries_4k: 4 KiB page-table entries written. */
	__u64 entries_4k;

	/** @entries_2m: 2 MiB page-table entries written. */
	__u64 entries_2m;

	/** @invalidations: Invalidations of the VM's userptr mappings. */
	__u64 invalidations;

	/**
	 * @retries: Mirrorings started again because an invalidation raced
	 * with them.
	 */
	__u64 retries;

	/** @pinned_pages: Pages pinned by the VM now (pinned mode). */
	__u64 pinned_pages;

	/** @jobs_done: Jobs that completed without error. */
	__u64 jobs_done;

	/** @jobs_failed: Jobs that ended with an error. */
	__u64 jobs_failed;
};

#if defined(__cplusplus)
}
#endif

#endif /* _UAPI_HMMGPU_DRM_H_ */
