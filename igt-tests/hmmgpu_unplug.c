// SPDX-License-Identifier: MIT
/*
 * The device going away under its users: hmmgpu's platform driver unbound
 * through sysfs while a file is open and jobs are queued on it, and the
 * module unloaded while a fence of one of its jobs lives on in a sync_file.
 *
 * unbind-with-jobs-in-flight: jobs wait for a sw_sync gate; the driver is
 * unbound (the DRM device is unplugged), ioctls on the open file fail with
 * -ENODEV, closing the file cancels the jobs and frees the device (its file
 * operations must not live in it: __fput reads them after the release that
 * drops the device's last reference), the gate opens with nothing left to
 * run, and the driver is bound again for the tests that follow.
 *
 * sync-file-outlives-module: a finished job's fence is exported as a
 * sync_file, the device closed and the module unloaded; SYNC_IOC_FILE_INFO
 * then reads the fence's driver and timeline names, which must not be the
 * unloaded module's memory. The module is loaded again.
 *
 * Whether the kernel log stays clean through both is checked by the harness
 * (scripts/check-log.py).
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/sync_file.h>
#include <xf86drm.h>

#include "igt.h"
#include "igt_hmmgpu.h"
#include "sw_sync.h"
#include "igt_kmod.h"

IGT_TEST_DESCRIPTION("Unbinding hmmgpu with files open and jobs queued, and unloading it with "
		     "its fences alive in sync_files.");

/* The platform device hmmgpu registers for itself, and its driver (drivers/gpu/drm/hmmgpu). */
#define PDEV_NAME	"hmmgpu"
#define DRIVER_DIR	"/sys/bus/platform/drivers/hmmgpu"

#define BO_VA		0x100000000ull
#define NUM_JOBS	4

/* The longest any step may take: a hang guard, not a measure (a job ends within 60 s). */
#define HANG_GUARD_MS	(HMMGPU_EXEC_MAX_TIMEOUT_MS + 30000)

static int write_file(const char *path, const char *value)
{
	ssize_t len = strlen(value), ret;
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	ret = write(fd, value, len);
	ret = ret == len ? 0 : ret < 0 ? -errno : -EIO;
	close(fd);
	return ret;
}

static bool driver_bound(void)
{
	return access(DRIVER_DIR "/" PDEV_NAME, F_OK) == 0;
}

static bool hmmgpu_node_present(void)
{
	bool found = false;
	struct dirent *de;
	DIR *dir = opendir("/dev/dri");

	if (!dir)
		return false;
	while (!found && (de = readdir(dir))) {
		char path[300], name[32] = "";
		int fd;

		if (strncmp(de->d_name, "card", 4) && strncmp(de->d_name, "renderD", 7))
			continue;
		snprintf(path, sizeof(path), "/dev/dri/%s", de->d_name);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		found = __get_drm_device_name(fd, name, sizeof(name) - 1) == 0 &&
			!strcmp(name, "hmmgpu");
		close(fd);
	}
	closedir(dir);
	errno = 0;
	return found;
}

static bool wait_for_hmmgpu_node(void)
{
	/* Probing may complete after the bind or modprobe returns. */
	for (int i = 0; i < 50; i++) {
		if (hmmgpu_node_present())
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/* A VM of a mode whose jobs signal dma-fences (not fault mode), or 0 if none is offered. */
static uint32_t fence_vm_mode(int fd)
{
	if (hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PREFAULT))
		return DRM_HMMGPU_VM_MODE_PREFAULT;
	if (hmmgpu_has_vm_mode(fd, DRM_HMMGPU_VM_MODE_PINNED))
		return DRM_HMMGPU_VM_MODE_PINNED;
	return 0;
}

/* The status of the single fence of @sync_file: 1 signalled, 0 not yet, < 0 its error. */
static int sync_file_status(int sync_file, struct sync_fence_info *fence)
{
	struct sync_file_info info = {
		.num_fences = 1,
		.sync_fence_info = to_user_pointer(fence),
	};

	memset(fence, 0, sizeof(*fence));
	if (ioctl(sync_file, SYNC_IOC_FILE_INFO, &info))
		return -errno;
	igt_assert_eq(info.num_fences, 1);
	return fence->status;
}

static void submit(int fd, uint32_t vm, const struct drm_hmmgpu_cmd *cmd, uint32_t in,
		   uint32_t out)
{
	struct drm_hmmgpu_sync syncs[2];
	struct drm_hmmgpu_exec exec = {
		.vm_id = vm,
		.cmds = to_user_pointer(cmd),
		.cmd_count = 1,
		.syncs = to_user_pointer(syncs),
	};

	if (in)
		syncs[exec.num_syncs++] = hmmgpu_sync_wait(in);
	syncs[exec.num_syncs++] = hmmgpu_sync_signal(out);
	hmmgpu_exec(fd, &exec);
}

/* Fills the device's first page with @value through a job, and checks it from the CPU. */
static void check_device_works(uint32_t value)
{
	int fd = drm_open_driver_render(DRIVER_HMMGPU);
	uint64_t page = hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_PAGE_SIZE);
	uint32_t mode = fence_vm_mode(fd), vm, bo;
	struct drm_hmmgpu_cmd cmd;
	uint32_t *ptr;

	igt_require(mode);
	vm = hmmgpu_vm_create(fd, mode);
	bo = hmmgpu_gem_create(fd, page);
	hmmgpu_vm_map(fd, vm, bo, 0, BO_VA, page, 0);
	hmmgpu_cmd_fill(&cmd, BO_VA, page, value);
	igt_assert_eq(hmmgpu_exec_job(fd, vm, &cmd, 1, 0), 0);
	ptr = hmmgpu_gem_mmap(fd, bo, page, PROT_READ);
	for (uint64_t i = 0; i < page / 4; i++)
		igt_assert_eq_u32(ptr[i], value);
	munmap(ptr, page);
	hmmgpu_vm_destroy(fd, vm);
	gem_close(fd, bo);
	drm_close_driver(fd);
}

static void test_unbind_in_flight(void)
{
	int sync_files[NUM_JOBS], status[NUM_JOBS], err_param, err_exec, err_version;
	struct sw_sync_create_fence_data gate = { .value = 1, .name = "hmmgpu-unplug" };
	uint32_t mode, vm, bo, in, out[NUM_JOBS];
	int fd, tl, unbind_err, bind_err;
	struct sync_fence_info info;
	struct drm_hmmgpu_cmd cmd;
	bool bound_after_unbind, node;
	uint64_t page, value = 0;
	struct drm_version version = {};
	__u32 one = 1;

	igt_require_f(driver_bound(), "no %s bound at %s\n", PDEV_NAME, DRIVER_DIR);
	tl = open(SW_SYNC_PATH, O_RDWR | O_CLOEXEC);
	igt_require_f(tl >= 0, "no sw_sync timeline: %s\n", strerror(errno));

	fd = drm_open_driver_render(DRIVER_HMMGPU);
	mode = fence_vm_mode(fd);
	igt_require(mode);
	page = hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_PAGE_SIZE);
	vm = hmmgpu_vm_create(fd, mode);
	bo = hmmgpu_gem_create(fd, page);
	hmmgpu_vm_map(fd, vm, bo, 0, BO_VA, page, 0);

	/* Every job waits for the gate, which only the test opens. */
	igt_assert_eq(ioctl(tl, SW_SYNC_IOC_CREATE_FENCE, &gate), 0);
	igt_assert_eq(drmSyncobjCreate(fd, 0, &in), 0);
	igt_assert_eq(drmSyncobjImportSyncFile(fd, in, gate.fence), 0);
	close(gate.fence);
	for (int i = 0; i < NUM_JOBS; i++) {
		igt_assert_eq(drmSyncobjCreate(fd, 0, &out[i]), 0);
		hmmgpu_cmd_fill(&cmd, BO_VA, page, 0x1000 + i);
		submit(fd, vm, &cmd, in, out[i]);
		igt_assert_eq(drmSyncobjExportSyncFile(fd, out[i], &sync_files[i]), 0);
		igt_assert_eq(sync_file_status(sync_files[i], &info), 0);
	}

	unbind_err = write_file(DRIVER_DIR "/unbind", PDEV_NAME);
	bound_after_unbind = driver_bound();

	/* The file stays open, on a device that is gone. */
	err_param = __hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_VM_MODES, &value);
	hmmgpu_cmd_fill(&cmd, BO_VA, page, 0x2000);
	{
		struct drm_hmmgpu_exec exec = {
			.vm_id = vm,
			.cmds = to_user_pointer(&cmd),
			.cmd_count = 1,
		};

		err_exec = __hmmgpu_exec(fd, &exec);
	}
	/* A core ioctl as well: every ioctl of an unplugged device fails. */
	err_version = ioctl(fd, DRM_IOCTL_VERSION, &version) ? -errno : 0;

	/* Closing the file cancels its jobs, and drops the device's last reference. */
	close(fd);
	for (int i = 0; i < NUM_JOBS; i++) {
		struct pollfd pfd = { .fd = sync_files[i], .events = POLLIN };

		igt_assert_eq(poll(&pfd, 1, HANG_GUARD_MS), 1);
		status[i] = sync_file_status(sync_files[i], &info);
		close(sync_files[i]);
	}
	/* The gate opens on nothing: no job of the freed device may still wait for it. */
	igt_assert_eq(ioctl(tl, SW_SYNC_IOC_INC, &one), 0);
	close(tl);

	/* Bound again before asserting, so that a failure leaves the device. */
	bind_err = write_file(DRIVER_DIR "/bind", PDEV_NAME);
	node = wait_for_hmmgpu_node();

	igt_assert_eq(unbind_err, 0);
	igt_assert(!bound_after_unbind);
	igt_assert_eq(err_param, -ENODEV);
	igt_assert_eq(err_exec, -ENODEV);
	igt_assert_eq(err_version, -ENODEV);
	for (int i = 0; i < NUM_JOBS; i++)
		igt_assert_f(status[i] < 0, "job %d: fence status %d, expected an error\n",
			     i, status[i]);
	igt_assert_eq(bind_err, 0);
	igt_assert(driver_bound());
	igt_assert_f(node, "no hmmgpu node in /dev/dri after binding again\n");
	check_device_works(0x5eed);
}

static void test_sync_file_outlives_module(void)
{
	int fd, sync_file, unload_err, load_err, status;
	struct sync_fence_info info;
	struct drm_hmmgpu_cmd cmd;
	uint32_t mode, vm, bo, out;
	bool module_gone, node;
	uint64_t page;

	igt_require_f(igt_kmod_is_loaded("hmmgpu"),
		      "hmmgpu is not a loaded module (built in?)\n");

	fd = drm_open_driver_render(DRIVER_HMMGPU);
	mode = fence_vm_mode(fd);
	igt_require(mode);
	page = hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_PAGE_SIZE);
	vm = hmmgpu_vm_create(fd, mode);
	bo = hmmgpu_gem_create(fd, page);
	hmmgpu_vm_map(fd, vm, bo, 0, BO_VA, page, 0);
	igt_assert_eq(drmSyncobjCreate(fd, 0, &out), 0);
	hmmgpu_cmd_fill(&cmd, BO_VA, page, 0x51);
	submit(fd, vm, &cmd, 0, out);
	igt_assert_eq(hmmgpu_wait(fd, out, (int64_t)HANG_GUARD_MS * 1000000), 0);
	igt_assert_eq(drmSyncobjExportSyncFile(fd, out, &sync_file), 0);
	igt_assert_eq(drmSyncobjDestroy(fd, out), 0);
	hmmgpu_vm_destroy(fd, vm);
	gem_close(fd, bo);
	drm_close_driver(fd);

	/* Nothing holds the module but the fence, which does not. */
	unload_err = igt_kmod_unload("hmmgpu");
	module_gone = !igt_kmod_is_loaded("hmmgpu");

	status = sync_file_status(sync_file, &info);
	close(sync_file);

	/* Loaded again before asserting, so that a failure leaves the device. */
	load_err = igt_kmod_load("hmmgpu", NULL);
	node = wait_for_hmmgpu_node();

	if (unload_err == -EPERM)
		igt_skip("Not allowed to unload modules\n");
	igt_assert_eq(unload_err, 0);
	igt_assert(module_gone);
	igt_assert_eq(status, 1);
	igt_assert_f(!strcmp(info.driver_name, "hmmgpu"),
		     "driver name \"%.32s\", expected \"hmmgpu\"\n", info.driver_name);
	igt_assert_f(info.obj_name[0] != '\0', "empty timeline name\n");
	igt_info("fence of timeline \"%.32s\" read after the module was unloaded\n",
		 info.obj_name);
	igt_assert_eq(load_err, 0);
	igt_assert_f(node, "no hmmgpu node in /dev/dri after reload\n");
	check_device_works(0xf00d);
}

igt_main
{
	igt_subtest("unbind-with-jobs-in-flight")
		test_unbind_in_flight();

	igt_subtest("sync-file-outlives-module")
		test_sync_file_outlives_module();
}
