// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * dma-buf sharing (PRIME) of hmmgpu's GEM objects.
 *
 * Between files of hmmgpu: an exported object imported on the same file is
 * the same handle, and on another file a handle whose GPU mapping reaches
 * the exporter's pages; a CPU mapping of the dma-buf itself shows them too,
 * with DMA_BUF_IOCTL_SYNC around CPU access; the importer (a second file, or
 * the dma-buf fd alone) keeps the object, its contents and its GPU mapping
 * after the exporting file and handle are gone.
 *
 * With other drivers: vgem imports an hmmgpu dma-buf (a real attachment: it
 * maps the object's scatter-gather table) and keeps it after the hmmgpu side
 * is closed; an hmmgpu VM binds a vgem object imported as a dma-buf and the
 * GPU writes it, also one of 128 MiB, more than the kernel's bounce buffers
 * hold; it binds a udmabuf of a memfd's huge page, whose scatter list gives
 * pages as offsets into their folio; vkms imports an hmmgpu dma-buf and
 * makes a framebuffer of it, whose size check sees the object's size, and
 * which outlives the exporter; and vkms scans that framebuffer out (reading
 * the object through the dma-buf's vmap), its writeback connector giving back
 * the GPU's pixels.
 *
 * Userptr objects refuse export (-ENODEV): hmmgpu_userptr's no-dmabuf-export
 * tests that.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/udmabuf.h>

#include <drm_fourcc.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

#include "igt.h"
#include "igt_hmmgpu.h"
#include "igt_kms.h"

IGT_TEST_DESCRIPTION("dma-buf sharing of hmmgpu GEM objects: self-import and import on "
		     "another file with GPU access, CPU mmap of the dma-buf with "
		     "DMA_BUF_IOCTL_SYNC, importers that outlive the exporter, and import "
		     "into and from vgem, and into vkms as a framebuffer it scans out.");

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB	(21u << 26)
#endif

/* Where the GPU sees the shared object. */
#define BO_VA		0x100000000ull
#define FILL_VALUE	0xc0ffee11u

/* A framebuffer of 64x64 XRGB8888 pixels: 16 KiB, 256 bytes a line. */
#define FB_WIDTH	64
#define FB_HEIGHT	64
#define FB_PITCH	(FB_WIDTH * 4)
#define FB_SIZE		(FB_PITCH * FB_HEIGHT)

static int fd = -1;
static uint64_t page;
static uint32_t vm_mode;

/* Export @handle of @dev_fd as a dma-buf that may be mapped for writing. */
static int prime_export(int dev_fd, uint32_t handle)
{
	int dmabuf = -1;

	igt_assert_f(drmPrimeHandleToFD(dev_fd, handle, DRM_CLOEXEC | DRM_RDWR, &dmabuf) == 0,
		     "export of handle %u failed: %s\n", handle, strerror(errno));
	igt_assert_fd(dmabuf);
	errno = 0;
	return dmabuf;
}

static uint32_t prime_import(int dev_fd, int dmabuf)
{
	uint32_t handle = 0;

	igt_assert_f(drmPrimeFDToHandle(dev_fd, dmabuf, &handle) == 0,
		     "import of dma-buf %d failed: %s\n", dmabuf, strerror(errno));
	igt_assert_neq_u32(handle, 0);
	errno = 0;
	return handle;
}

/* The inode of @f: two dma-buf fds with the same one are the same dma-buf. */
static ino_t inode_of(int f)
{
	struct stat st;

	igt_assert_eq(fstat(f, &st), 0);
	return st.st_ino;
}

static void dmabuf_sync(int dmabuf, uint64_t flags)
{
	struct dma_buf_sync sync = { .flags = flags };

	igt_assert_f(igt_ioctl(dmabuf, DMA_BUF_IOCTL_SYNC, &sync) == 0,
		     "DMA_BUF_IOCTL_SYNC %#" PRIx64 " failed: %s\n", flags, strerror(errno));
	errno = 0;
}

static void *dmabuf_mmap(int dmabuf, uint64_t size, int prot)
{
	void *ptr = mmap(NULL, size, prot, MAP_SHARED, dmabuf, 0);

	igt_assert_f(ptr != MAP_FAILED, "mmap of dma-buf %d, %" PRIu64 " bytes, failed: %s\n",
		     dmabuf, size, strerror(errno));
	errno = 0;
	return ptr;
}

static void check_value(const void *base, uint64_t off, uint64_t size, uint32_t value)
{
	const uint32_t *p = base;

	for (uint64_t i = off / 4; i < (off + size) / 4; i++)
		igt_assert_f(p[i] == value, "dword %" PRIu64 " (byte %#" PRIx64
			     ") reads %#x, expected %#x\n", i, i * 4, p[i], value);
}

/* A VM of @dev_fd with [0, @size) of @handle at BO_VA. */
static uint32_t vm_with(int dev_fd, uint32_t handle, uint64_t size)
{
	uint32_t vm = hmmgpu_vm_create(dev_fd, vm_mode);

	hmmgpu_vm_map(dev_fd, vm, handle, 0, BO_VA, size, 0);
	return vm;
}

/*
 * One job on @vm: copy the first half of the object to its second half,
 * then fill the first half with @value. The CPU then finds the old first
 * half in the second, and @value in the first.
 */
static void gpu_copy_fill(int dev_fd, uint32_t vm, uint64_t size, uint32_t value)
{
	struct drm_hmmgpu_cmd cmds[2], *c = cmds;

	c = hmmgpu_cmd_copy(c, BO_VA + size / 2, BO_VA, size / 2);
	c = hmmgpu_cmd_fill(c, BO_VA, size / 2, value);
	igt_assert_eq(hmmgpu_exec_job(dev_fd, vm, cmds, c - cmds, 0), 0);
}

/* What gpu_copy_fill() leaves of an object filled with @seed. */
static void check_copy_fill(const void *ptr, uint64_t size, uint32_t seed, uint32_t value)
{
	const uint32_t *p = ptr;

	check_value(ptr, 0, size / 2, value);
	for (uint64_t i = 0; i < size / 2 / 4; i++)
		igt_assert_f(p[size / 2 / 4 + i] == hmmgpu_pattern(seed, i),
			     "dword %" PRIu64 " of the copy reads %#x, expected %#x\n",
			     size / 2 / 4 + i, p[size / 2 / 4 + i], hmmgpu_pattern(seed, i));
}

static void *gem_map(int dev_fd, uint32_t handle, uint64_t size)
{
	return hmmgpu_gem_mmap(dev_fd, handle, size, PROT_READ | PROT_WRITE);
}

/*
 * self-import: the dma-buf of an object, imported on its own file, is the
 * object's own handle, and exporting again gives the same dma-buf. Imported
 * on a second file it is one handle however often it is imported, and the
 * second file's GPU and CPU mappings reach the exporter's pages: what the
 * exporter's CPU wrote, the importer's GPU reads, and what that GPU writes,
 * the exporter's CPU reads.
 */
static void test_self_import(void)
{
	uint64_t size = 4 * page;
	uint32_t bo, h2, vm;
	uint32_t *map1, *map2;
	int dmabuf, again, fd2;

	bo = hmmgpu_gem_create(fd, size);
	map1 = gem_map(fd, bo, size);
	hmmgpu_fill_pattern(map1, size, 1);

	dmabuf = prime_export(fd, bo);
	igt_assert_eq_u32(prime_import(fd, dmabuf), bo);
	again = prime_export(fd, bo);
	igt_assert_f(inode_of(again) == inode_of(dmabuf),
		     "exporting the object again made another dma-buf\n");
	close(again);

	fd2 = drm_open_driver_render(DRIVER_HMMGPU);
	h2 = prime_import(fd2, dmabuf);
	igt_assert_eq_u32(prime_import(fd2, dmabuf), h2);
	/* The importer exports the same dma-buf again. */
	again = prime_export(fd2, h2);
	igt_assert(inode_of(again) == inode_of(dmabuf));
	close(again);
	close(dmabuf);

	/* The GPU of the second file reads and writes the exporter's pages. */
	vm = vm_with(fd2, h2, size);
	gpu_copy_fill(fd2, vm, size, FILL_VALUE);
	check_copy_fill(map1, size, 1, FILL_VALUE);

	/* The second file's CPU mapping is of the same pages. */
	map2 = gem_map(fd2, h2, size);
	check_copy_fill(map2, size, 1, FILL_VALUE);
	hmmgpu_fill_pattern(map2, size, 2);
	hmmgpu_check_pattern(map1, size, 2);
	gpu_copy_fill(fd2, vm, size, ~FILL_VALUE);
	check_copy_fill(map1, size, 2, ~FILL_VALUE);

	hmmgpu_vm_destroy(fd2, vm);
	munmap(map2, size);
	gem_close(fd2, h2);
	drm_close_driver(fd2);
	munmap(map1, size);
	gem_close(fd, bo);
}

/*
 * mmap-dmabuf: a CPU mapping of the dma-buf fd shows the object's contents,
 * and writes through it reach the object, with DMA_BUF_IOCTL_SYNC start and
 * end around each access; the dma-buf is the object's size, and a mapping
 * past its end is refused. The mapping keeps working once the handle and
 * the fd are closed.
 */
static void test_mmap_dmabuf(void)
{
	uint64_t size = 4 * page;
	uint32_t *map, *p, bo, vm;
	int dmabuf;

	bo = hmmgpu_gem_create(fd, size);
	map = gem_map(fd, bo, size);
	hmmgpu_fill_pattern(map, size, 3);

	dmabuf = prime_export(fd, bo);
	igt_assert_eq_s64(lseek(dmabuf, 0, SEEK_END), size);
	igt_assert(mmap(NULL, size + page, PROT_READ, MAP_SHARED, dmabuf, 0) == MAP_FAILED);
	igt_assert_eq(errno, EINVAL);
	errno = 0;

	p = dmabuf_mmap(dmabuf, size, PROT_READ | PROT_WRITE);
	dmabuf_sync(dmabuf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	hmmgpu_check_pattern(p, size, 3);
	dmabuf_sync(dmabuf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);

	dmabuf_sync(dmabuf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	hmmgpu_fill_pattern(p, size, 4);
	dmabuf_sync(dmabuf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	hmmgpu_check_pattern(map, size, 4);

	/* The GPU sees the CPU's writes through the dma-buf, and the other way round. */
	vm = vm_with(fd, bo, size);
	gpu_copy_fill(fd, vm, size, FILL_VALUE);
	hmmgpu_vm_destroy(fd, vm);
	dmabuf_sync(dmabuf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
	check_copy_fill(p, size, 4, FILL_VALUE);
	dmabuf_sync(dmabuf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);

	/* Nothing but the dma-buf mapping is left: it still maps the pages. */
	munmap(map, size);
	gem_close(fd, bo);
	close(dmabuf);
	check_copy_fill(p, size, 4, FILL_VALUE);
	hmmgpu_fill_pattern(p, size, 5);
	hmmgpu_check_pattern(p, size, 5);
	munmap(p, size);
}

/*
 * importer-outlives-exporter: a second file imports the object and binds it
 * in a VM; the exporter then unmaps it, closes its handle, the dma-buf fd and
 * its file. The importer's GPU mapping and CPU mapping still reach the
 * object and what the exporter wrote, and the importer can export it again.
 */
static void test_importer_outlives_exporter(void)
{
	uint64_t size = 4 * page;
	uint32_t *map, bo, h2, vm;
	int fd1, fd2, dmabuf;

	fd1 = drm_open_driver_render(DRIVER_HMMGPU);
	fd2 = drm_open_driver_render(DRIVER_HMMGPU);

	bo = hmmgpu_gem_create(fd1, size);
	map = gem_map(fd1, bo, size);
	hmmgpu_fill_pattern(map, size, 6);
	munmap(map, size);

	dmabuf = prime_export(fd1, bo);
	h2 = prime_import(fd2, dmabuf);
	vm = vm_with(fd2, h2, size);

	close(dmabuf);
	gem_close(fd1, bo);
	igt_assert_eq(close(fd1), 0);

	gpu_copy_fill(fd2, vm, size, FILL_VALUE);
	map = gem_map(fd2, h2, size);
	check_copy_fill(map, size, 6, FILL_VALUE);

	/* A new VM binds it too, and the CPU's writes reach the GPU. */
	hmmgpu_vm_destroy(fd2, vm);
	hmmgpu_fill_pattern(map, size, 7);
	vm = vm_with(fd2, h2, size);
	gpu_copy_fill(fd2, vm, size, ~FILL_VALUE);
	check_copy_fill(map, size, 7, ~FILL_VALUE);
	hmmgpu_vm_destroy(fd2, vm);

	/* The importer exports it again, and that dma-buf maps the same pages. */
	dmabuf = prime_export(fd2, h2);
	{
		uint32_t *p = dmabuf_mmap(dmabuf, size, PROT_READ);

		check_copy_fill(p, size, 7, ~FILL_VALUE);
		munmap(p, size);
	}
	close(dmabuf);

	munmap(map, size);
	gem_close(fd2, h2);
	igt_assert_eq(close(fd2), 0);
}

/*
 * dmabuf-outlives-exporter: with the exporting file closed, the dma-buf fd
 * alone holds the object; a file opened afterwards imports it, its GPU
 * writes it, and the dma-buf's CPU mapping shows what both wrote.
 */
static void test_dmabuf_outlives_exporter(void)
{
	uint64_t size = 4 * page;
	uint32_t *map, bo, h2, vm;
	int fd1, fd2, dmabuf;

	fd1 = drm_open_driver_render(DRIVER_HMMGPU);
	bo = hmmgpu_gem_create(fd1, size);
	map = gem_map(fd1, bo, size);
	hmmgpu_fill_pattern(map, size, 8);
	munmap(map, size);
	dmabuf = prime_export(fd1, bo);
	gem_close(fd1, bo);
	igt_assert_eq(close(fd1), 0);

	fd2 = drm_open_driver_render(DRIVER_HMMGPU);
	h2 = prime_import(fd2, dmabuf);
	vm = vm_with(fd2, h2, size);
	gpu_copy_fill(fd2, vm, size, FILL_VALUE);
	hmmgpu_vm_destroy(fd2, vm);

	map = dmabuf_mmap(dmabuf, size, PROT_READ);
	dmabuf_sync(dmabuf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	check_copy_fill(map, size, 8, FILL_VALUE);
	dmabuf_sync(dmabuf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	munmap(map, size);

	close(dmabuf);
	gem_close(fd2, h2);
	igt_assert_eq(close(fd2), 0);
}

/* vgem, the virtual GEM driver, by its card node (dumb buffers need it). */
static int open_vgem(void)
{
	int vgem = __drm_open_driver(DRIVER_VGEM);

	igt_require_f(vgem >= 0, "no vgem device (CONFIG_DRM_VGEM)\n");
	return vgem;
}

/*
 * The CPU's view of @handle as vgem has it. vgem maps its own objects
 * through DRM_IOCTL_MODE_MAP_DUMB; for an imported one the DRM core refuses
 * that (-EINVAL, drm_gem_dumb_map_offset()), and what vgem offers instead
 * is the dma-buf it holds, which it exports again.
 */
static void *vgem_view(int vgem, uint32_t handle, uint64_t size, bool imported)
{
	struct drm_mode_map_dumb arg = { .handle = handle };
	void *ptr;
	int dmabuf;

	if (igt_ioctl(vgem, DRM_IOCTL_MODE_MAP_DUMB, &arg) == 0) {
		ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vgem, arg.offset);
		igt_assert(ptr != MAP_FAILED);
		return ptr;
	}
	igt_assert_f(imported, "MAP_DUMB of vgem's own object failed: %s\n", strerror(errno));
	igt_assert_eq(errno, EINVAL);
	errno = 0;

	dmabuf = prime_export(vgem, handle);
	ptr = dmabuf_mmap(dmabuf, size, PROT_READ | PROT_WRITE);
	close(dmabuf);
	return ptr;
}

/*
 * vgem-import: vgem imports an hmmgpu dma-buf, attaching to it and mapping
 * its pages; what the GPU writes is in the buffer vgem holds. Once the
 * hmmgpu file, handle, mapping and dma-buf fd are all closed, vgem's
 * buffer still holds the contents, and is the same dma-buf.
 */
static void test_vgem_import(void)
{
	uint64_t size = 4 * page;
	uint32_t *map, *view, bo, vh, vm;
	int fd1, vgem, dmabuf, again;
	ino_t ino;

	vgem = open_vgem();
	fd1 = drm_open_driver_render(DRIVER_HMMGPU);

	bo = hmmgpu_gem_create(fd1, size);
	map = gem_map(fd1, bo, size);
	hmmgpu_fill_pattern(map, size, 9);

	dmabuf = prime_export(fd1, bo);
	ino = inode_of(dmabuf);
	vh = prime_import(vgem, dmabuf);
	igt_assert_eq_u32(prime_import(vgem, dmabuf), vh);
	again = prime_export(vgem, vh);
	igt_assert_f(inode_of(again) == ino, "vgem holds another dma-buf than it imported\n");
	close(again);

	view = vgem_view(vgem, vh, size, true);
	hmmgpu_check_pattern(view, size, 9);

	vm = vm_with(fd1, bo, size);
	gpu_copy_fill(fd1, vm, size, FILL_VALUE);
	hmmgpu_vm_destroy(fd1, vm);
	check_copy_fill(view, size, 9, FILL_VALUE);
	munmap(view, size);

	/* Only vgem holds the object now. */
	munmap(map, size);
	gem_close(fd1, bo);
	close(dmabuf);
	igt_assert_eq(close(fd1), 0);

	again = prime_export(vgem, vh);
	igt_assert(inode_of(again) == ino);
	view = dmabuf_mmap(again, size, PROT_READ | PROT_WRITE);
	close(again);
	check_copy_fill(view, size, 9, FILL_VALUE);
	munmap(view, size);

	/* And hmmgpu imports it back from vgem: its own object, still whole. */
	fd1 = drm_open_driver_render(DRIVER_HMMGPU);
	again = prime_export(vgem, vh);
	bo = prime_import(fd1, again);
	close(again);
	gem_close(vgem, vh);
	vm = vm_with(fd1, bo, size);
	gpu_copy_fill(fd1, vm, size, ~FILL_VALUE);
	hmmgpu_vm_destroy(fd1, vm);
	map = gem_map(fd1, bo, size);
	check_value(map, 0, size / 2, ~FILL_VALUE);
	check_value(map, size / 2, size / 2, FILL_VALUE);
	munmap(map, size);
	gem_close(fd1, bo);
	igt_assert_eq(close(fd1), 0);
	drm_close_driver(vgem);
}

/*
 * vgem-export: a vgem object, exported as a dma-buf, is imported into
 * hmmgpu (the DRM core says every GEM driver imports: DRM_CAP_PRIME), bound
 * in a VM, and the GPU reads and writes it; vgem's CPU mapping sees the
 * result, also after vgem's handle and the dma-buf fd are closed.
 */
static void test_vgem_export(void)
{
	struct drm_mode_create_dumb create = {
		.width = FB_WIDTH,
		.height = FB_HEIGHT,
		.bpp = 32,
	};
	uint32_t *view, hh, vm;
	uint64_t size;
	int vgem, dmabuf;

	igt_require(igt_has_drm_cap(fd, DRM_CAP_PRIME) & DRM_PRIME_CAP_IMPORT);
	vgem = open_vgem();
	do_ioctl(vgem, DRM_IOCTL_MODE_CREATE_DUMB, &create);
	size = create.size;
	igt_assert_lte_u64(FB_SIZE, size);
	igt_require_f(size % page == 0 && size >= 2 * page,
		      "vgem's object of %" PRIu64 " bytes is not whole pages of hmmgpu's\n", size);

	view = vgem_view(vgem, create.handle, size, false);
	hmmgpu_fill_pattern(view, size, 10);

	dmabuf = prime_export(vgem, create.handle);
	hh = 0;
	igt_assert_f(drmPrimeFDToHandle(fd, dmabuf, &hh) == 0,
		     "hmmgpu cannot import vgem's dma-buf: %s (errno %d)\n",
		     strerror(errno), errno);
	igt_assert_neq_u32(hh, 0);
	igt_assert_eq_u32(prime_import(fd, dmabuf), hh);

	vm = vm_with(fd, hh, size);
	gpu_copy_fill(fd, vm, size, FILL_VALUE);
	check_copy_fill(view, size, 10, FILL_VALUE);

	/* hmmgpu's handle and the VM's mapping outlive vgem's handle and the fd. */
	close(dmabuf);
	gem_close(vgem, create.handle);
	hmmgpu_fill_pattern(view, size, 11);
	gpu_copy_fill(fd, vm, size, ~FILL_VALUE);
	check_copy_fill(view, size, 11, ~FILL_VALUE);

	hmmgpu_vm_destroy(fd, vm);
	gem_close(fd, hh);
	munmap(view, size);
	drm_close_driver(vgem);
}

/*
 * vgem-export-large: a vgem object of 128 MiB, more than the kernel's bounce
 * buffers (swiotlb) hold, imports into hmmgpu: mapping the attachment for
 * hmmgpu's device, which reaches all of memory, bounces nothing. The GPU
 * copies and fills it, and vgem's CPU mapping sees the result.
 */
static void test_vgem_export_large(void)
{
	struct drm_mode_create_dumb create = {
		.width = 4096,
		.height = 8192,
		.bpp = 32,
	};
	uint32_t *view, hh = 0, vm;
	int vgem, dmabuf;

	igt_require(igt_has_drm_cap(fd, DRM_CAP_PRIME) & DRM_PRIME_CAP_IMPORT);
	vgem = open_vgem();
	do_ioctl(vgem, DRM_IOCTL_MODE_CREATE_DUMB, &create);
	igt_assert_eq_u64(create.size, 128ull << 20);
	view = vgem_view(vgem, create.handle, create.size, false);
	hmmgpu_fill_pattern(view, create.size, 20);

	dmabuf = prime_export(vgem, create.handle);
	igt_assert_f(drmPrimeFDToHandle(fd, dmabuf, &hh) == 0,
		     "hmmgpu cannot import vgem's dma-buf of %llu bytes: %s (errno %d)\n",
		     (unsigned long long)create.size, strerror(errno), errno);
	close(dmabuf);
	vm = vm_with(fd, hh, create.size);
	gpu_copy_fill(fd, vm, create.size, FILL_VALUE);
	check_copy_fill(view, create.size, 20, FILL_VALUE);

	hmmgpu_vm_destroy(fd, vm);
	gem_close(fd, hh);
	gem_close(vgem, create.handle);
	munmap(view, create.size);
	drm_close_driver(vgem);
}

#define NR_HUGEPAGES	"/proc/sys/vm/nr_hugepages"

/*
 * udmabuf-import: a dma-buf that udmabuf makes of a memfd's 2 MiB huge page,
 * system RAM whose scatter list gives each page as an offset into its folio,
 * is imported and bound whole; the GPU reads what the CPU wrote through the
 * memfd, and the CPU reads what the GPU wrote.
 */
static void test_udmabuf_import(void)
{
	const uint64_t size = 2ull << 20;
	struct udmabuf_create create = {
		.flags = UDMABUF_FLAGS_CLOEXEC,
		.size = size,
	};
	int dev, memfd, dmabuf;
	uint32_t *map, hh, vm;
	bool grown = false;
	long hugepages;

	dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	igt_require_f(dev >= 0, "no /dev/udmabuf (CONFIG_UDMABUF): %s\n", strerror(errno));
	memfd = memfd_create("hmmgpu-udmabuf", MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_HUGE_2MB);
	igt_require_f(memfd >= 0, "no hugetlb memfd: %s\n", strerror(errno));
	igt_assert_eq(ftruncate(memfd, size), 0);
	/* A huge page of the pool, grown by one for the test if none is free. */
	hugepages = hmmgpu_read_long(NR_HUGEPAGES);
	if (fallocate(memfd, 0, 0, size)) {
		igt_require(hugepages >= 0 && hmmgpu_write_long(NR_HUGEPAGES, hugepages + 1));
		igt_require_f(fallocate(memfd, 0, 0, size) == 0,
			      "no 2 MiB huge page: %s\n", strerror(errno));
		grown = true;
	}
	igt_assert_eq(fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	igt_assert(map != MAP_FAILED);
	hmmgpu_fill_pattern(map, size, 21);

	create.memfd = memfd;
	dmabuf = ioctl(dev, UDMABUF_CREATE, &create);
	igt_assert_f(dmabuf >= 0, "UDMABUF_CREATE: %s\n", strerror(errno));
	hh = prime_import(fd, dmabuf);
	close(dmabuf);
	vm = vm_with(fd, hh, size);
	gpu_copy_fill(fd, vm, size, FILL_VALUE);
	check_copy_fill(map, size, 21, FILL_VALUE);

	hmmgpu_vm_destroy(fd, vm);
	gem_close(fd, hh);
	munmap(map, size);
	close(memfd);
	close(dev);
	/* The page is free again once udmabuf let go of it (with the dma-buf). */
	if (grown)
		igt_assert(hmmgpu_write_long(NR_HUGEPAGES, hugepages));
}

/*
 * vkms-import: vkms imports an hmmgpu dma-buf of 16 KiB and makes a 64x64
 * XRGB8888 framebuffer of it; a framebuffer one line taller does not fit,
 * so vkms sees the object's size. The framebuffer outlives the hmmgpu
 * file, handle and dma-buf fd.
 */
static void test_vkms_import(void)
{
	uint32_t handles[4] = {}, pitches[4] = { FB_PITCH }, offsets[4] = {};
	uint64_t size = ALIGN((uint64_t)FB_SIZE, page);
	uint32_t *map, bo, vh, fb = 0, fb2 = 0;
	drmModeFBPtr info;
	int fd1, vkms, dmabuf;

	vkms = __drm_open_driver(DRIVER_VKMS);
	igt_require_f(vkms >= 0, "no vkms device (CONFIG_DRM_VKMS)\n");

	fd1 = drm_open_driver_render(DRIVER_HMMGPU);
	bo = hmmgpu_gem_create(fd1, size);
	map = gem_map(fd1, bo, size);
	hmmgpu_fill_pattern(map, size, 12);
	munmap(map, size);

	dmabuf = prime_export(fd1, bo);
	vh = prime_import(vkms, dmabuf);

	handles[0] = vh;
	igt_assert_f(drmModeAddFB2(vkms, FB_WIDTH, FB_HEIGHT, DRM_FORMAT_XRGB8888, handles,
				   pitches, offsets, &fb, 0) == 0,
		     "AddFB2 of the imported object failed: %s\n", strerror(errno));
	igt_assert_neq_u32(fb, 0);
	if (size == FB_SIZE) {
		igt_assert_eq(drmModeAddFB2(vkms, FB_WIDTH, FB_HEIGHT + 1, DRM_FORMAT_XRGB8888,
					    handles, pitches, offsets, &fb2, 0), -EINVAL);
	}
	errno = 0;

	gem_close(fd1, bo);
	close(dmabuf);
	igt_assert_eq(close(fd1), 0);

	info = drmModeGetFB(vkms, fb);
	igt_assert(info);
	igt_assert_eq_u32(info->width, FB_WIDTH);
	igt_assert_eq_u32(info->height, FB_HEIGHT);
	igt_assert_eq_u32(info->pitch, FB_PITCH);
	drmModeFreeFB(info);

	/* vkms' handle still names the object: it exports it again whole. */
	dmabuf = prime_export(vkms, vh);
	igt_assert_eq_s64(lseek(dmabuf, 0, SEEK_END), size);
	map = dmabuf_mmap(dmabuf, size, PROT_READ);
	hmmgpu_check_pattern(map, size, 12);
	munmap(map, size);
	close(dmabuf);

	igt_assert_eq(drmModeRmFB(vkms, fb), 0);
	gem_close(vkms, vh);
	drm_close_driver(vkms);
}

/* Whether the sync file @fence signals within @ms milliseconds. */
static bool fence_wait(int fence, int ms)
{
	struct pollfd pfd = { .fd = fence, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1 && (pfd.revents & POLLIN);
}

/* A vkms dumb buffer of FB_WIDTH x FB_HEIGHT XRGB8888 pixels, as a framebuffer. */
static uint32_t vkms_dumb_fb(int vkms, uint32_t *handle, uint32_t **map)
{
	struct drm_mode_create_dumb create = {
		.width = FB_WIDTH,
		.height = FB_HEIGHT,
		.bpp = 32,
	};
	uint32_t handles[4] = {}, pitches[4] = {}, offsets[4] = {}, fb = 0;
	struct drm_mode_map_dumb map_arg = {};

	do_ioctl(vkms, DRM_IOCTL_MODE_CREATE_DUMB, &create);
	map_arg.handle = create.handle;
	do_ioctl(vkms, DRM_IOCTL_MODE_MAP_DUMB, &map_arg);
	*map = mmap(NULL, create.size, PROT_READ | PROT_WRITE, MAP_SHARED, vkms, map_arg.offset);
	igt_assert(*map != MAP_FAILED);
	igt_assert_eq_u32(create.pitch, FB_PITCH);

	handles[0] = create.handle;
	pitches[0] = create.pitch;
	igt_assert_eq(drmModeAddFB2(vkms, FB_WIDTH, FB_HEIGHT, DRM_FORMAT_XRGB8888, handles,
				    pitches, offsets, &fb, 0), 0);
	*handle = create.handle;
	return fb;
}

/*
 * vkms-scanout: vkms scans out a framebuffer made of an imported hmmgpu
 * object, after the hmmgpu side is closed: its composer reads the object
 * through the dma-buf's vmap, and its writeback connector writes what it
 * composed into a vkms buffer, which holds the GPU's pixels.
 */
static void test_vkms_scanout(void)
{
	uint32_t handles[4] = {}, pitches[4] = { FB_PITCH }, offsets[4] = {};
	uint64_t size = ALIGN((uint64_t)FB_SIZE, page);
	drmModeModeInfo mode = {
		.clock = 384,
		.hdisplay = FB_WIDTH,
		.hsync_start = FB_WIDTH + 2,
		.hsync_end = FB_WIDTH + 6,
		.htotal = FB_WIDTH + 16,
		.vdisplay = FB_HEIGHT,
		.vsync_start = FB_HEIGHT + 2,
		.vsync_end = FB_HEIGHT + 6,
		.vtotal = FB_HEIGHT + 16,
		.vrefresh = 60,
		.type = DRM_MODE_TYPE_USERDEF,
		.name = "64x64",
	};
	uint32_t crtc = 0, plane = 0, wb = 0, blob = 0, crtc_index = 0;
	uint32_t *map, *wb_map, bo, vh, vm, fb, wb_fb, wb_handle;
	drmModePlaneResPtr planes;
	drmModeAtomicReqPtr req;
	drmModeResPtr res;
	int fd1, vkms, dmabuf;
	int32_t out_fence = -1;

	vkms = __drm_open_driver(DRIVER_VKMS);
	igt_require_f(vkms >= 0, "no vkms device (CONFIG_DRM_VKMS)\n");
	igt_require_f(drmIsMaster(vkms), "vkms has another DRM master\n");
	igt_require(drmSetClientCap(vkms, DRM_CLIENT_CAP_ATOMIC, 1) == 0);
	igt_require(drmSetClientCap(vkms, DRM_CLIENT_CAP_WRITEBACK_CONNECTORS, 1) == 0);

	res = drmModeGetResources(vkms);
	igt_assert(res);
	igt_require(res->count_crtcs > 0);
	crtc = res->crtcs[crtc_index];
	for (int i = 0; i < res->count_connectors && !wb; i++) {
		drmModeConnectorPtr c = drmModeGetConnector(vkms, res->connectors[i]);

		if (c && c->connector_type == DRM_MODE_CONNECTOR_WRITEBACK)
			wb = c->connector_id;
		drmModeFreeConnector(c);
	}
	drmModeFreeResources(res);
	igt_require_f(wb, "vkms has no writeback connector (enable_writeback=0)\n");

	planes = drmModeGetPlaneResources(vkms);
	igt_assert(planes);
	for (uint32_t i = 0; i < planes->count_planes && !plane; i++) {
		drmModePlanePtr p = drmModeGetPlane(vkms, planes->planes[i]);
		uint64_t type = 0;

		if (p && (p->possible_crtcs & (1u << crtc_index)) &&
		    igt_kms_prop_id(vkms, p->plane_id, DRM_MODE_OBJECT_PLANE, "type", &type) &&
		    type == DRM_PLANE_TYPE_PRIMARY)
			plane = p->plane_id;
		drmModeFreePlane(p);
	}
	drmModeFreePlaneResources(planes);
	igt_require(plane);

	/* The GPU writes the picture into an hmmgpu object, which vkms imports. */
	fd1 = drm_open_driver_render(DRIVER_HMMGPU);
	bo = hmmgpu_gem_create(fd1, size);
	map = gem_map(fd1, bo, size);
	hmmgpu_fill_pattern(map, size, 13);
	vm = vm_with(fd1, bo, size);
	gpu_copy_fill(fd1, vm, size, FILL_VALUE);
	hmmgpu_vm_destroy(fd1, vm);
	munmap(map, size);

	dmabuf = prime_export(fd1, bo);
	vh = prime_import(vkms, dmabuf);
	handles[0] = vh;
	fb = 0;
	igt_assert_eq(drmModeAddFB2(vkms, FB_WIDTH, FB_HEIGHT, DRM_FORMAT_XRGB8888, handles,
				    pitches, offsets, &fb, 0), 0);
	close(dmabuf);
	gem_close(fd1, bo);
	igt_assert_eq(close(fd1), 0);

	wb_fb = vkms_dumb_fb(vkms, &wb_handle, &wb_map);
	memset(wb_map, 0x5a, FB_SIZE);

	igt_assert_eq(drmModeCreatePropertyBlob(vkms, &mode, sizeof(mode), &blob), 0);
	req = drmModeAtomicAlloc();
	igt_assert(req);
	igt_kms_add_prop(req, vkms, crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE", 1);
	igt_kms_add_prop(req, vkms, crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID", blob);
	igt_kms_add_prop(req, vkms, plane, DRM_MODE_OBJECT_PLANE, "FB_ID", fb);
	igt_kms_add_prop(req, vkms, plane, DRM_MODE_OBJECT_PLANE, "CRTC_ID", crtc);
	igt_kms_add_prop(req, vkms, plane, DRM_MODE_OBJECT_PLANE, "SRC_X", 0);
	igt_kms_add_prop(req, vkms, plane, DRM_MODE_OBJECT_PLANE, "SRC_Y", 0);
	igt_kms_add_prop(req, vkms, plane, DRM_MODE_OBJECT_PLANE, "SRC_W", (uint64_t)FB_WIDTH << 16);
	igt_kms_add_prop(req, vkms, plane, DRM_MODE_OBJECT_PLANE, "SRC_H", (uint64_t)FB_HEIGHT << 16);
	igt_kms_add_prop(req, vkms, plane, DRM_MODE_OBJECT_PLANE, "CRTC_X", 0);
	igt_kms_add_prop(req, vkms, plane, DRM_MODE_OBJECT_PLANE, "CRTC_Y", 0);
	igt_kms_add_prop(req, vkms, plane, DRM_MODE_OBJECT_PLANE, "CRTC_W", FB_WIDTH);
	igt_kms_add_prop(req, vkms, plane, DRM_MODE_OBJECT_PLANE, "CRTC_H", FB_HEIGHT);
	igt_kms_add_prop(req, vkms, wb, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", crtc);
	igt_kms_add_prop(req, vkms, wb, DRM_MODE_OBJECT_CONNECTOR, "WRITEBACK_FB_ID", wb_fb);
	igt_kms_add_prop(req, vkms, wb, DRM_MODE_OBJECT_CONNECTOR, "WRITEBACK_OUT_FENCE_PTR",
		 to_user_pointer(&out_fence));
	igt_assert_f(drmModeAtomicCommit(vkms, req, DRM_MODE_ATOMIC_ALLOW_MODESET, NULL) == 0,
		     "the commit scanning out the imported framebuffer failed: %s\n",
		     strerror(errno));
	drmModeAtomicFree(req);
	igt_assert_fd(out_fence);
	igt_assert_f(fence_wait(out_fence, 5000), "the writeback fence did not signal in 5 s\n");
	close(out_fence);

	/* What vkms composed is the GPU's picture (XRGB8888: X is not kept). */
	for (uint32_t i = 0; i < FB_SIZE / 4; i++) {
		uint32_t want = i < size / 8 ? FILL_VALUE : hmmgpu_pattern(13, i - size / 8);

		igt_assert_f((wb_map[i] & 0xffffff) == (want & 0xffffff),
			     "pixel %u (%u, %u) written back as %#x, expected %#x\n", i,
			     i % FB_WIDTH, i / FB_WIDTH, wb_map[i] & 0xffffff, want & 0xffffff);
	}

	req = drmModeAtomicAlloc();
	igt_assert(req);
	igt_kms_add_prop(req, vkms, crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE", 0);
	igt_kms_add_prop(req, vkms, crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID", 0);
	igt_kms_add_prop(req, vkms, plane, DRM_MODE_OBJECT_PLANE, "FB_ID", 0);
	igt_kms_add_prop(req, vkms, plane, DRM_MODE_OBJECT_PLANE, "CRTC_ID", 0);
	igt_kms_add_prop(req, vkms, wb, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", 0);
	igt_assert_eq(drmModeAtomicCommit(vkms, req, DRM_MODE_ATOMIC_ALLOW_MODESET, NULL), 0);
	drmModeAtomicFree(req);

	drmModeDestroyPropertyBlob(vkms, blob);
	igt_assert_eq(drmModeRmFB(vkms, wb_fb), 0);
	igt_assert_eq(drmModeRmFB(vkms, fb), 0);
	munmap(wb_map, FB_SIZE);
	gem_close(vkms, wb_handle);
	gem_close(vkms, vh);
	drm_close_driver(vkms);
}

igt_main
{
	igt_fixture {
		uint64_t features;

		fd = drm_open_driver_render(DRIVER_HMMGPU);
		features = hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_FEATURES);
		igt_require(features & DRM_HMMGPU_FEATURE_GEM_SHMEM);
		igt_require(features & DRM_HMMGPU_FEATURE_VM);
		igt_require(igt_has_drm_cap(fd, DRM_CAP_PRIME) & DRM_PRIME_CAP_EXPORT);
		page = hmmgpu_get_param(fd, DRM_HMMGPU_PARAM_PAGE_SIZE);
		igt_assert_eq_u64(page, sysconf(_SC_PAGESIZE));
		/* GEM objects bind alike in every mode: any one will do. */
		for (const struct hmmgpu_vm_mode *m = hmmgpu_vm_modes; m->name; m++) {
			if (hmmgpu_has_vm_mode(fd, m->flags)) {
				vm_mode = m->flags;
				break;
			}
		}
		igt_require(vm_mode);
	}

	igt_describe("An exported object imported on its own file is its own handle; on "
		     "another file, one handle whose GPU and CPU mappings reach the "
		     "exporter's pages.");
	igt_subtest("self-import")
		test_self_import();

	igt_describe("A CPU mapping of the dma-buf fd shows the object, and writes through it "
		     "reach the object and the GPU, with DMA_BUF_IOCTL_SYNC around CPU access; "
		     "it outlives the handle and the fd.");
	igt_subtest("mmap-dmabuf")
		test_mmap_dmabuf();

	igt_describe("A second file's import, and its GPU mapping, keep working once the "
		     "exporting handle, dma-buf fd and file are closed.");
	igt_subtest("importer-outlives-exporter")
		test_importer_outlives_exporter();

	igt_describe("A dma-buf fd alone keeps the object of a closed file; a new file imports "
		     "it and its GPU writes it.");
	igt_subtest("dmabuf-outlives-exporter")
		test_dmabuf_outlives_exporter();

	igt_describe("vgem imports an hmmgpu dma-buf and keeps it, with what the GPU wrote, "
		     "after the hmmgpu side is closed; hmmgpu imports it back.");
	igt_subtest("vgem-import")
		test_vgem_import();

	igt_describe("hmmgpu imports a vgem object's dma-buf, binds it, and the GPU's writes "
		     "show in vgem's CPU mapping, also after vgem's handle is closed.");
	igt_subtest("vgem-export")
		test_vgem_export();

	igt_describe("hmmgpu imports a vgem object of 128 MiB, more than the kernel's bounce "
		     "buffers hold, binds it whole, and the GPU copies and fills it.");
	igt_subtest("vgem-export-large")
		test_vgem_export_large();

	igt_describe("hmmgpu imports a udmabuf of a memfd's huge page, whose scatter list "
		     "gives pages as offsets into their folio, binds it, and the GPU reads "
		     "and writes it.");
	igt_subtest("udmabuf-import")
		test_udmabuf_import();

	igt_describe("vkms imports an hmmgpu dma-buf as a 64x64 XRGB8888 framebuffer, sized "
		     "by the object, that outlives the hmmgpu side.");
	igt_subtest("vkms-import")
		test_vkms_import();

	igt_describe("vkms scans out a framebuffer of an imported hmmgpu object after the "
		     "hmmgpu side is closed, and its writeback connector reads back the "
		     "pixels the GPU wrote.");
	igt_subtest("vkms-scanout")
		test_vkms_scanout();

	igt_fixture
		drm_close_driver(fd);
}
