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
 * Driver-specific ioctl numbers, offsets from DRM_COMMAND_BASE. They are
 * dense: the kernel's ioctl table is indexed by them.
 */
#define DRM_HMMGPU_GET_PARAM		0x00
#define DRM_HMMGPU_GEM_CREATE		0x01
#define DRM_HMMGPU_GEM_MMAP_OFFSET	0x02
#define DRM_HMMGPU_USERPTR_CREATE	0x03

#define DRM_IOCTL_HMMGPU_GET_PARAM \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_GET_PARAM, struct drm_hmmgpu_get_param)
#define DRM_IOCTL_HMMGPU_GEM_CREATE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_GEM_CREATE, struct drm_hmmgpu_gem_create)
#define DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_GEM_MMAP_OFFSET, struct drm_hmmgpu_gem_mmap_offset)
#define DRM_IOCTL_HMMGPU_USERPTR_CREATE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMMGPU_USERPTR_CREATE, struct drm_hmmgpu_userptr_create)

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
	 * DRM_IOCTL_HMMGPU_GEM_CREATE accepts.
	 */
	DRM_HMMGPU_PARAM_GEM_MAX_SIZE = 2,

	/**
	 * @DRM_HMMGPU_PARAM_PAGE_SIZE: The granule, in bytes, of GEM object
	 * sizes and of GPU mappings.
	 */
	DRM_HMMGPU_PARAM_PAGE_SIZE = 3,
};

/** DRM_HMMGPU_FEATURE_GEM_SHMEM - GEM objects backed by shmem, CPU mmap. */
#define DRM_HMMGPU_FEATURE_GEM_SHMEM	(1ull << 0)
/** DRM_HMMGPU_FEATURE_USERPTR - GEM objects naming a range of the process's memory. */
#define DRM_HMMGPU_FEATURE_USERPTR	(1ull << 1)

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
 * -ENOENT.
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
 * is only found out when the GPU uses it.
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
 * unknown op, a non-zero reserved field, a misaligned or wrapping range) is
 * refused whole with -EINVAL before anything runs.
 */

/** @HMMGPU_CMD_COPY: copy @size bytes from @src to @dst; the ranges may not overlap. */
#define HMMGPU_CMD_COPY		1
/**
 * @HMMGPU_CMD_FILL: fill @size bytes (a multiple of 4) at @dst (4-byte
 * aligned) with the low 32 bits of @value.
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

#if defined(__cplusplus)
}
#endif

#endif /* _UAPI_HMMGPU_DRM_H_ */
