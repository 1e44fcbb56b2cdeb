/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ioctl command numbers of DRM drivers with Rust uAPI users, as constants
 * bindgen can see: their macros expand to expressions it does not evaluate.
 * `declare_drm_ioctls!` checks each driver's table against them.
 *
 * Sorted alphabetically.
 */

#include <uapi/drm/drm.h>
#include <uapi/drm/hmmgpu_drm.h>

const __u32 RUST_CONST_HELPER_DRM_IOCTL_HMMGPU_GEM_CREATE = DRM_IOCTL_HMMGPU_GEM_CREATE;
const __u32 RUST_CONST_HELPER_DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET = DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET;
const __u32 RUST_CONST_HELPER_DRM_IOCTL_HMMGPU_GET_PARAM = DRM_IOCTL_HMMGPU_GET_PARAM;
const __u32 RUST_CONST_HELPER_DRM_IOCTL_HMMGPU_USERPTR_CREATE = DRM_IOCTL_HMMGPU_USERPTR_CREATE;
