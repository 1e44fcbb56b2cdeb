// SPDX-License-Identifier: MIT
/*
 * Whether the device still works: a fresh file, and in a VM of each mode the
 * device offers a userptr bind of fresh memory and a job that copies half of
 * it onto the other half and writes a word, signalling a user fence; the
 * fence's value, the job's error and the data are checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <drm.h>

#include "drm/hmmgpu_drm.h"
#include "fuzz.h"

#define SIZE	(64 * 1024)
#define GPU_VA	(1ull << 32)

static int check_mode(int fd, uint32_t mode, char *why, size_t len)
{
	struct drm_hmmgpu_vm_create vc = { .flags = mode };
	struct drm_hmmgpu_userptr_create up = { .size = SIZE };
	struct drm_hmmgpu_vm_bind bind = { 0 };
	struct drm_hmmgpu_cmd cmds[2] = {
		{ .op = HMMGPU_CMD_COPY, .dst = GPU_VA + SIZE / 2, .src = GPU_VA, .size = SIZE / 2 },
		{ .op = HMMGPU_CMD_WRITE64, .dst = GPU_VA + SIZE - 8, .value = 0x600d },
	};
	struct drm_hmmgpu_sync sync = { .type = DRM_HMMGPU_SYNC_USER_FENCE,
					.flags = DRM_HMMGPU_SYNC_SIGNAL, .value = 1 };
	struct drm_hmmgpu_exec exec = { .cmds = (uintptr_t)cmds, .cmd_count = 2,
					.timeout_ms = 5000, .syncs = (uintptr_t)&sync,
					.num_syncs = 1 };
	struct drm_hmmgpu_wait_user_fence wait = { .value = 1, .mask = ~0ull,
						   .op = DRM_HMMGPU_WAIT_GTE,
						   .timeout_ns = 10000000000ll };
	uint8_t *buf;
	uint64_t *fence;
	int i, err = -1;

	buf = mmap(NULL, SIZE + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		snprintf(why, len, "mmap: %s", strerror(errno));
		return -1;
	}
	fence = (uint64_t *)(buf + SIZE);
	for (i = 0; i < SIZE; i++)
		buf[i] = i < SIZE / 2 ? (uint8_t)(i * 7 + mode) : 0;
	fence[0] = 0;
	fence[1] = 0xdead;
	if (ioctl(fd, DRM_IOCTL_HMMGPU_VM_CREATE, &vc)) {
		snprintf(why, len, "mode %u: VM_CREATE: %s", mode, strerror(errno));
		goto out;
	}
	up.addr = (uintptr_t)buf;
	if (ioctl(fd, DRM_IOCTL_HMMGPU_USERPTR_CREATE, &up)) {
		snprintf(why, len, "mode %u: USERPTR_CREATE: %s", mode, strerror(errno));
		goto out;
	}
	bind.vm_id = vc.vm_id;
	bind.bind = (struct drm_hmmgpu_vm_bind_op){ .op = DRM_HMMGPU_VM_BIND_MAP,
		.handle = up.handle, .va = GPU_VA, .size = SIZE };
	if (ioctl(fd, DRM_IOCTL_HMMGPU_VM_BIND, &bind)) {
		snprintf(why, len, "mode %u: VM_BIND: %s", mode, strerror(errno));
		goto out;
	}
	sync.addr = (uintptr_t)&fence[0];
	sync.error_addr = (uintptr_t)&fence[1];
	exec.vm_id = vc.vm_id;
	if (ioctl(fd, DRM_IOCTL_HMMGPU_EXEC, &exec)) {
		snprintf(why, len, "mode %u: EXEC: %s", mode, strerror(errno));
		goto out;
	}
	wait.addr = (uintptr_t)&fence[0];
	while (ioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &wait) && errno == EINTR)
		;
	if (__atomic_load_n(&fence[0], __ATOMIC_ACQUIRE) != 1) {
		snprintf(why, len, "mode %u: the job's user fence was not written in 10 s", mode);
		goto out;
	}
	if (fence[1] != 0) {
		snprintf(why, len, "mode %u: the job ended with error %lld", mode,
			 (long long)fence[1]);
		goto out;
	}
	if (memcmp(buf, buf + SIZE / 2, SIZE / 2 - 8) || *(uint64_t *)(buf + SIZE - 8) != 0x600d) {
		snprintf(why, len, "mode %u: the job's copy is wrong", mode);
		goto out;
	}
	err = 0;
out:
	if (vc.vm_id) {
		struct drm_hmmgpu_vm_destroy d = { .vm_id = vc.vm_id };

		ioctl(fd, DRM_IOCTL_HMMGPU_VM_DESTROY, &d);
	}
	if (up.handle) {
		struct drm_gem_close c = { .handle = up.handle };

		ioctl(fd, DRM_IOCTL_GEM_CLOSE, &c);
	}
	munmap(buf, SIZE + 4096);
	return err;
}

int fuzz_health(const char *node, char *why, size_t len)
{
	struct drm_hmmgpu_get_param gp = { .param = DRM_HMMGPU_PARAM_VM_MODES };
	uint32_t mode;
	int fd, err = 0;

	fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "open %s: %s", node, strerror(errno));
		return -1;
	}
	if (ioctl(fd, DRM_IOCTL_HMMGPU_GET_PARAM, &gp)) {
		snprintf(why, len, "GET_PARAM: %s", strerror(errno));
		close(fd);
		return -1;
	}
	for (mode = 1; mode <= DRM_HMMGPU_VM_MODE_PINNED && !err; mode <<= 1)
		if (gp.value & mode)
			err = check_mode(fd, mode, why, len);
	close(fd);
	return err;
}

const char *fuzz_find_node(void)
{
	static char path[64];
	int i;

	for (i = 128; i < 192; i++) {
		char name[32] = { 0 };
		struct drm_version v = { .name = name, .name_len = sizeof(name) - 1 };
		int fd;

		snprintf(path, sizeof(path), "/dev/dri/renderD%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!ioctl(fd, DRM_IOCTL_VERSION, &v) && !strcmp(name, "hmmgpu")) {
			close(fd);
			return path;
		}
		close(fd);
	}
	return NULL;
}
