// SPDX-License-Identifier: MIT
/*
 * The executor: runs a program's calls in the calling process, keeping the
 * resources they made (files, VMs, objects, mappings, sync objects, GPU
 * mappings, exported fds) so that later calls name them. A resource index is
 * taken modulo the number of its kind; with none of that kind, the raw index
 * goes to the kernel as it is (an unknown handle or id). Structures are
 * derived from the call's seed and what exists at that moment.
 *
 * Forks and fd passing: OP_FORK runs the next calls in a child that inherited
 * everything; OP_SEND_FD passes a file over a unix socket (SCM_RIGHTS) to a
 * child that first closed every file it inherited, so that the file's last
 * reference may end in another process than the one that made its VMs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <drm.h>

#include "drm/hmmgpu_drm.h"
#include "fuzz.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif

#define MAX_FDS		8
#define MAX_VMS		32
#define MAX_BOS		64
#define MAX_MAPS	32
#define MAX_SOS		32
#define MAX_VAS		64
#define MAX_XFDS	16
#define MAX_KIDS	16
#define UFENCE_SLOTS	64
#define PAGE		4096ull
#define MIB		(1024 * 1024ull)
/* Objects larger than this are never mapped by the CPU nor bound whole: their pages would be. */
#define MAX_RESIDENT	(16 * MIB)
/*
 * The program's mappings live in an arena reserved at start, and the calls on
 * them are kept inside it, so that a range past a mapping's end never reaches
 * the executor's own memory (its counters, the KCOV buffer).
 */
#define ARENA_SIZE	(4096 * MIB)

struct vm {
	int fdi;
	uint32_t id;
	uint32_t mode;
};

struct bo {
	int fdi;
	uint32_t handle;
	uint64_t size;
	bool userptr;
};

struct map {
	uint8_t *addr;
	size_t size;
	bool shared;
};

struct so {
	int fdi;
	uint32_t handle;
	uint64_t point;		/* the last timeline point signalled */
	bool fenced;		/* it held a fence once */
};

struct va {
	int vmi;
	uint64_t va;
	uint64_t size;
};

struct xfd {
	int fd;
	bool dmabuf;		/* else a sync object fd or a sync_file */
	bool sync_file;
	uint64_t size;
};

struct state {
	int fds[MAX_FDS];
	int nfds;
	struct vm vms[MAX_VMS];
	int nvms;
	struct bo bos[MAX_BOS];
	int nbos;
	struct map maps[MAX_MAPS];
	int nmaps;
	struct so sos[MAX_SOS];
	int nsos;
	struct va vas[MAX_VAS];
	int nvas;
	struct xfd xfds[MAX_XFDS];
	int nxfds;
	pid_t kids[MAX_KIDS];
	int nkids;
	/* User fences: a shared page of 64-bit words, and the last value given each. */
	uint64_t *ufence;
	uint64_t ufence_val[UFENCE_SLOTS];
	uint64_t ufence_next;
	uint8_t *arena;
	size_t arena_next;
};

static const struct fuzz_exec_opts *opts;
static struct state st;
static sigjmp_buf touch_jmp;
static volatile sig_atomic_t touching;

/* Index @idx of @n resources; from 0x100 on, counted back from the newest. */
static int pick(uint64_t idx, int n)
{
	if (!n)
		return -1;
	if (idx >= FUZZ_NEWEST)
		return n - 1 - (int)((idx - FUZZ_NEWEST) % n);
	return (int)(idx % n);
}

static int fd_of(uint64_t idx)
{
	int i = pick(idx, st.nfds);

	return i < 0 ? -1 : st.fds[i];
}

static int xioctl(int fd, unsigned long req, void *arg)
{
	int ret;

	/* A file the program closed: no call reaches the kernel. */
	if (fd < 0)
		return -EBADF;
	__atomic_add_fetch(&opts->stats->ioctls, 1, __ATOMIC_RELAXED);
	ret = ioctl(fd, req, arg);
	if (ret == 0)
		__atomic_add_fetch(&opts->stats->ioctls_ok, 1, __ATOMIC_RELAXED);
	return ret ? -errno : 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* A seeded generator for the structures of one call. */
static uint64_t srand_next(uint64_t *s)
{
	struct fuzz_rng r = { .s = *s ? *s : 0x9e3779b97f4a7c15ull };
	uint64_t x = fuzz_rand(&r);

	*s = r.s;
	return x;
}

static uint64_t sbelow(uint64_t *s, uint64_t n)
{
	return n ? srand_next(s) % n : 0;
}

/* A place for a new mapping of @size bytes in the arena, 2 MiB aligned, with a gap after it. */
static uint8_t *arena_slot(size_t size)
{
	uint8_t *p;

	size = (size + 2 * MIB - 1) & ~(2 * MIB - 1);
	if (st.arena_next + size + 2 * MIB > ARENA_SIZE)
		st.arena_next = 0;	/* over the first ones again */
	p = st.arena + st.arena_next;
	st.arena_next += size + 2 * MIB;
	return p;
}

/* Clamps [*@addr, *@addr + *@len) to the arena. */
static void arena_clamp(uint8_t **addr, size_t *len)
{
	uint8_t *end = st.arena + ARENA_SIZE;

	if (*addr < st.arena || *addr >= end) {
		*addr = st.arena;
		*len = 0;
	}
	if (*len > (size_t)(end - *addr))
		*len = end - *addr;
}

/* The range [@off, @off + @size) of mapping @m, with 0 for the rest of it. */
static void map_range(const struct map *m, uint64_t off, uint64_t size, uint8_t **addr,
		      size_t *len)
{
	*addr = m->addr + off;
	*len = size ? size : (off < m->size ? m->size - off : PAGE);
	arena_clamp(addr, len);
}

static void add_bo(int fdi, uint32_t handle, uint64_t size, bool userptr)
{
	if (st.nbos < MAX_BOS)
		st.bos[st.nbos++] = (struct bo){ fdi, handle, size, userptr };
}

static void add_map(uint8_t *addr, size_t size, bool shared)
{
	if (st.nmaps < MAX_MAPS)
		st.maps[st.nmaps++] = (struct map){ addr, size, shared };
}

static void add_xfd(int fd, bool dmabuf, bool sync_file, uint64_t size)
{
	if (st.nxfds < MAX_XFDS)
		st.xfds[st.nxfds++] = (struct xfd){ fd, dmabuf, sync_file, size };
	else
		close(fd);
}

static const char *node_path(void)
{
	return opts->node;
}

static int op_open(void)
{
	int fd = open(node_path(), O_RDWR);

	if (fd < 0)
		return -errno;
	if (st.nfds == MAX_FDS) {
		close(fd);
		return -EMFILE;
	}
	st.fds[st.nfds++] = fd;
	return 0;
}

static int op_vm_create(const uint64_t *a)
{
	static const uint32_t modes[] = {
		DRM_HMMGPU_VM_MODE_FAULT, DRM_HMMGPU_VM_MODE_PREFAULT, DRM_HMMGPU_VM_MODE_PINNED,
	};
	struct drm_hmmgpu_vm_create c = { 0 };
	int fdi = pick(a[0], st.nfds), err;

	c.flags = (a[1] < 6 ? modes[a[1] % 3] : (uint32_t)a[1] - 6) ^ (uint32_t)a[2];
	err = xioctl(fdi < 0 ? -1 : st.fds[fdi], DRM_IOCTL_HMMGPU_VM_CREATE, &c);
	if (!err && st.nvms < MAX_VMS)
		st.vms[st.nvms++] = (struct vm){ fdi, c.vm_id, c.flags };
	return err;
}

static int op_gem_create(const uint64_t *a)
{
	struct drm_hmmgpu_gem_create c = { .size = a[1], .flags = (uint32_t)a[2] };
	int fdi = pick(a[0], st.nfds), err;

	err = xioctl(fdi < 0 ? -1 : st.fds[fdi], DRM_IOCTL_HMMGPU_GEM_CREATE, &c);
	if (!err)
		add_bo(fdi, c.handle, c.size, false);
	return err;
}

/* The @idx-th GEM object that is not a userptr, or any object one time in 16. */
static int pick_gem(uint64_t idx)
{
	int match[MAX_BOS], n = 0, i;

	if (idx % 16 == 15 && idx < FUZZ_NEWEST)
		return pick(idx / 16, st.nbos);
	for (i = 0; i < st.nbos; i++)
		if (!st.bos[i].userptr)
			match[n++] = i;
	i = pick(idx, n);
	return i < 0 ? -1 : match[i];
}

static int op_gem_mmap(const uint64_t *a)
{
	int i = pick_gem(a[0]);
	struct drm_hmmgpu_gem_mmap_offset mo = { 0 };
	uint64_t len;
	void *p;
	int err;

	if (i < 0)
		return -ENOENT;
	mo.handle = st.bos[i].handle;
	err = xioctl(st.fds[st.bos[i].fdi], DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET, &mo);
	if (err || st.bos[i].size > MAX_RESIDENT)
		return err;
	len = a[1] && a[1] <= st.bos[i].size ? a[1] : st.bos[i].size;
	p = mmap(arena_slot(len), len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 st.fds[st.bos[i].fdi], mo.offset);
	if (p == MAP_FAILED)
		return -errno;
	add_map(p, len, true);
	return 0;
}

static int op_userptr(const uint64_t *a)
{
	struct drm_hmmgpu_userptr_create c = { .flags = (uint32_t)a[4] };
	int fdi = pick(a[0], st.nfds), mi = pick(a[1], st.nmaps), err;

	if (mi >= 0) {
		uint8_t *addr;
		size_t len;

		map_range(&st.maps[mi], a[2], a[3], &addr, &len);
		c.addr = (uintptr_t)addr;
		c.size = len;
	} else {
		/* Nothing mapped yet: a range nobody mapped. */
		c.addr = 0x7f0000000000ull + a[2];
		c.size = a[3] ? a[3] : PAGE;
	}
	err = xioctl(fdi < 0 ? -1 : st.fds[fdi], DRM_IOCTL_HMMGPU_USERPTR_CREATE, &c);
	if (!err)
		add_bo(fdi, c.handle, c.size, true);
	return err;
}

static int op_gem_close(const uint64_t *a)
{
	int i = pick(a[0], st.nbos);
	struct drm_gem_close c = { .handle = i < 0 ? (uint32_t)a[0] : st.bos[i].handle };

	return xioctl(i < 0 ? fd_of(0) : st.fds[st.bos[i].fdi], DRM_IOCTL_GEM_CLOSE, &c);
}

/*
 * Whether the structure being made (a bind operation, a command, a sync) is
 * the one of its call that gets something invalid: at most one a call, so
 * that most calls are valid whatever their number of elements.
 */
static bool bad;

/* The element of @n that a call spoils, one call in 6; -1 for none. */
static int spoil(uint64_t *s, unsigned int n)
{
	return n && sbelow(s, 6) == 0 ? (int)sbelow(s, n) : -1;
}

/* A GPU virtual address in one of 16 slots of 2 MiB, on or beside their boundaries. */
static uint64_t gen_va(uint64_t *s)
{
	static const uint64_t delta[] = { 0, 0, 0, PAGE, 2 * MIB - PAGE, MIB };
	uint64_t va = (1ull << 32) + sbelow(s, 16) * 2 * MIB + delta[sbelow(s, ARRAY_SIZE(delta))];

	if (bad && sbelow(s, 5) == 0)
		va = (1ull << 48) - sbelow(s, 3) * PAGE;	/* the top of the space */
	if (bad && sbelow(s, 5) == 0)
		va += 1 + sbelow(s, PAGE - 1);			/* misaligned */
	return va;
}

/* Syncs of a job or bind on VM @vmi: user fences, sync objects to wait for or signal. */
static void gen_syncs(uint64_t *s, int vmi, unsigned int n, struct drm_hmmgpu_sync *syncs,
		      uint64_t *ufence_slot_val, int *nufences, int bad_one)
{
	int fdi = st.vms[vmi].fdi, mine[MAX_SOS], nk;
	unsigned int i;

	*nufences = 0;
	for (i = 0; i < n; i++) {
		struct drm_hmmgpu_sync *y = &syncs[i];
		int k;

		memset(y, 0, sizeof(*y));
		bad = (int)i == bad_one;
		/* A sync object of the VM's file, or a user fence when it has none (mostly). */
		for (k = 0, nk = 0; k < st.nsos; k++)
			if (st.sos[k].fdi == fdi || sbelow(s, 16) == 0)
				mine[nk++] = k;
		k = nk ? mine[sbelow(s, nk)] : -1;
		switch (k < 0 && sbelow(s, 8) ? 0 : sbelow(s, 5)) {
		case 0:
		case 1: {
			int slot = sbelow(s, UFENCE_SLOTS);

			y->type = DRM_HMMGPU_SYNC_USER_FENCE;
			y->flags = DRM_HMMGPU_SYNC_SIGNAL;
			y->addr = (uintptr_t)&st.ufence[slot];
			y->value = ++st.ufence_next;
			if (sbelow(s, 2))
				y->error_addr = (uintptr_t)&st.ufence[(slot + 1) % UFENCE_SLOTS];
			if (bad && sbelow(s, 3) == 0 && st.nmaps)
				/* In a mapping the program may unmap. */
				y->addr = (uintptr_t)st.maps[sbelow(s, st.nmaps)].addr;
			st.ufence_val[slot] = y->value;
			ufence_slot_val[(*nufences)++] = slot;
			break;
		}
		default:
			y->handle = k < 0 ? 1 + sbelow(s, 4) : st.sos[k].handle;
			y->type = sbelow(s, 2) ? DRM_HMMGPU_SYNC_SYNCOBJ :
				DRM_HMMGPU_SYNC_TIMELINE_SYNCOBJ;
			/*
			 * Wait for one that holds a fence (a point that was added, for a
			 * timeline) most of the time: waiting for none is -EINVAL.
			 */
			y->flags = DRM_HMMGPU_SYNC_SIGNAL;
			if (k >= 0 && sbelow(s, 2) &&
			    (y->type == DRM_HMMGPU_SYNC_SYNCOBJ ? st.sos[k].fenced :
			     st.sos[k].point > 0))
				y->flags = 0;
			if (sbelow(s, 16) == 0)
				y->flags = 0;
			if (k >= 0 && y->type == DRM_HMMGPU_SYNC_TIMELINE_SYNCOBJ) {
				if (y->flags)
					y->value = ++st.sos[k].point;
				else
					y->value = st.sos[k].point ? 1 + sbelow(s, st.sos[k].point) : 1;
			}
			if (k >= 0 && y->flags)
				st.sos[k].fenced = true;
			break;
		}
		if (bad && sbelow(s, 4) == 0)
			y->pad = 1;
		if (bad && sbelow(s, 4) == 0)
			y->flags ^= 1u << sbelow(s, 4);
		if (bad && sbelow(s, 6) == 0)
			y->type = 3 + sbelow(s, 3);
	}
}

/* An object of file @fdi (of another file one time in 16); -1 when there is none. */
static int pick_bo(uint64_t *s, int fdi)
{
	int match[MAX_BOS], n = 0, i;

	if (sbelow(s, 16) == 0)
		return st.nbos ? (int)sbelow(s, st.nbos) : -1;
	for (i = 0; i < st.nbos; i++)
		if (st.bos[i].fdi == fdi)
			match[n++] = i;
	return n ? match[sbelow(s, n)] : -1;
}

static int pick_va(uint64_t *s, int vmi)
{
	int k = -1, tries;

	for (tries = 0; tries < 6 && st.nvas; tries++) {
		k = sbelow(s, st.nvas);
		if (st.vas[k].vmi == vmi)
			return k;
	}
	return -1;
}

static void gen_bind_op(uint64_t *s, int vmi, uint64_t flags, struct drm_hmmgpu_vm_bind_op *op)
{
	int bo = pick_bo(s, st.vms[vmi].fdi), k;

	memset(op, 0, sizeof(*op));
	/* An unmap, or a map of an object of the VM's file (of none, when spoilt). */
	if (sbelow(s, 4) == 0 || (bo < 0 && !bad)) {
		op->op = DRM_HMMGPU_VM_BIND_UNMAP;
		k = pick_va(s, vmi);
		if (k >= 0 && sbelow(s, 4)) {
			op->va = st.vas[k].va;
			op->size = st.vas[k].size;
			if (sbelow(s, 3) == 0 && op->size > PAGE) {
				/* Split: a part of it. */
				op->va += sbelow(s, op->size / PAGE) * PAGE;
				op->size = PAGE * (1 + sbelow(s, 4));
			}
		} else {
			op->va = gen_va(s);
			op->size = (1 + sbelow(s, 8)) * 2 * MIB;
		}
	} else {
		uint64_t size, off = 0;

		op->op = DRM_HMMGPU_VM_BIND_MAP;
		k = bo;
		op->handle = k < 0 ? 1 + sbelow(s, 4) : st.bos[k].handle;
		size = k < 0 ? PAGE : st.bos[k].size;
		if (sbelow(s, 4) == 0 && size > PAGE) {
			off = sbelow(s, size / PAGE) * PAGE;
			size = size - off;
			if (sbelow(s, 2))
				size = PAGE * (1 + sbelow(s, size / PAGE));
		}
		/* A GEM object's bound pages are allocated: bind a window of a large one. */
		if (k >= 0 && !st.bos[k].userptr && size > MAX_RESIDENT)
			size = 2 * MIB;
		if (k >= 0 && st.bos[k].userptr && size > (1ull << 30))
			size = 1ull << 30;
		if (bad && sbelow(s, 4) == 0)
			size += PAGE;		/* past the object's end */
		op->va = gen_va(s);
		op->size = size;
		op->offset = off;
		op->flags = flags & 1 ? DRM_HMMGPU_VM_BIND_READ_ONLY : 0;
	}
	if (bad && sbelow(s, 5) == 0)
		op->pad = 1;
	if (bad && sbelow(s, 5) == 0)
		op->op = 2 + sbelow(s, 3);
	if (bad && sbelow(s, 5) == 0)
		op->flags ^= 1u << sbelow(s, 8);
}

static void note_bind(int vmi, const struct drm_hmmgpu_vm_bind_op *op)
{
	int i;

	if (op->op == DRM_HMMGPU_VM_BIND_MAP) {
		if (st.nvas < MAX_VAS)
			st.vas[st.nvas++] = (struct va){ vmi, op->va, op->size };
		return;
	}
	/* Forget mappings the unmap covered whole. */
	for (i = 0; i < st.nvas; i++)
		if (st.vas[i].vmi == vmi && st.vas[i].va >= op->va &&
		    st.vas[i].va + st.vas[i].size <= op->va + op->size)
			st.vas[i--] = st.vas[--st.nvas];
}

static int op_bind(const uint64_t *a)
{
	struct drm_hmmgpu_vm_bind_op ops[HMMGPU_VM_BIND_MAX_OPS + 1];
	struct drm_hmmgpu_sync syncs[HMMGPU_MAX_SYNCS + 1];
	uint64_t slots[HMMGPU_MAX_SYNCS + 1];
	struct drm_hmmgpu_vm_bind b = { 0 };
	unsigned int nops = a[1], nsyncs = a[3], i, done;
	struct so saved[MAX_SOS];
	int vmi = pick(a[0], st.nvms), nuf, err, spoilt;
	uint64_t s = a[2];

	if (vmi < 0)
		return -ENOENT;
	if (nops > HMMGPU_VM_BIND_MAX_OPS + 1)
		nops = HMMGPU_VM_BIND_MAX_OPS + 1;
	if (nsyncs > HMMGPU_MAX_SYNCS + 1)
		nsyncs = HMMGPU_MAX_SYNCS + 1;
	b.vm_id = st.vms[vmi].id;
	memcpy(saved, st.sos, sizeof(saved));
	spoilt = spoil(&s, (nops ? nops : 1) + nsyncs);
	for (i = 0; i < (nops ? nops : 1); i++) {
		bad = (int)i == spoilt;
		gen_bind_op(&s, vmi, a[4], &ops[i]);
	}
	if (nops <= 1 && !(a[4] & 2)) {
		b.num_ops = nops;
		b.bind = ops[0];
	} else {
		b.num_ops = nops;
		b.ops = (uintptr_t)ops;
		if (a[4] & 4)
			b.bind = ops[0];	/* both: invalid */
	}
	gen_syncs(&s, vmi, nsyncs, syncs, slots, &nuf, spoilt - (int)(nops ? nops : 1));
	b.syncs = (uintptr_t)syncs;
	b.num_syncs = nsyncs;
	if (a[4] & 8)
		b.syncs = 8;			/* unreadable */
	if (a[4] & 16)
		b.flags = DRM_HMMGPU_VM_BIND_ASYNC;	/* queued: done later, or not */
	if (a[4] & 32)
		b.flags |= 1u << (a[4] >> 8 & 31);	/* mostly unknown */
	err = xioctl(st.fds[st.vms[vmi].fdi], DRM_IOCTL_HMMGPU_VM_BIND, &b);
	/* Refused before it ran (bad syncs, an unknown VM): nothing was signalled. */
	if (err && !b.failed_op && err != -EBUSY)
		memcpy(st.sos, saved, sizeof(saved));
	done = err ? b.failed_op : (nops ? nops : 1);
	for (i = 0; i < done && i < (nops ? nops : 1); i++)
		note_bind(vmi, &ops[i]);
	return err;
}

/* An address in a GPU mapping of VM @vmi, aligned to @align; one that none maps at times. */
static uint64_t gen_gpu_addr(uint64_t *s, int vmi, uint64_t align, uint64_t *room)
{
	int k = pick_va(s, vmi);
	uint64_t off;

	if (k < 0 || sbelow(s, 25) == 0) {
		*room = 64 * 1024;
		return gen_va(s) & ~(align - 1);
	}
	off = sbelow(s, 3) ? 0 : sbelow(s, st.vas[k].size) & ~(align - 1);
	if (sbelow(s, 4) == 0 && st.vas[k].size >= PAGE)
		off = st.vas[k].size - PAGE;		/* the last page */
	*room = st.vas[k].size - off;
	return st.vas[k].va + off;
}

static void gen_cmd(uint64_t *s, int vmi, struct drm_hmmgpu_cmd *c)
{
	uint64_t room, room2;

	memset(c, 0, sizeof(*c));
	c->op = HMMGPU_CMD_COPY + sbelow(s, 5);
	switch (c->op) {
	case HMMGPU_CMD_COPY:
		c->dst = gen_gpu_addr(s, vmi, 1, &room);
		c->src = gen_gpu_addr(s, vmi, 1, &room2);
		c->size = 1 + sbelow(s, room < room2 ? room : room2);
		if (c->size > 256 * 1024)
			c->size = 256 * 1024;
		/* The ranges may not overlap: then the source follows the destination. */
		if (c->dst < c->src + c->size && c->src < c->dst + c->size) {
			c->size = c->size / 2 ? c->size / 2 : 1;
			c->src = c->dst + c->size;
		}
		break;
	case HMMGPU_CMD_FILL:
		c->dst = gen_gpu_addr(s, vmi, 4, &room);
		c->size = (1 + sbelow(s, room / 4)) * 4;
		if (c->size > 256 * 1024)
			c->size = 256 * 1024;
		c->value = srand_next(s) & 0xffffffff;
		break;
	case HMMGPU_CMD_WRITE64:
	case HMMGPU_CMD_ATOMIC_ADD64:
		c->dst = gen_gpu_addr(s, vmi, 8, &room);
		c->value = srand_next(s);
		break;
	default:
		c->dst = gen_gpu_addr(s, vmi, 8, &room);
		c->src = gen_gpu_addr(s, vmi, 4, &room2);
		c->size = (1 + sbelow(s, room2 / 4)) * 4;
		if (c->size > 256 * 1024)
			c->size = 256 * 1024;
		break;
	}
	/* The spoilt one does not decode. */
	switch (bad ? sbelow(s, 5) : 5) {
	case 0:
		c->op = sbelow(s, 2) ? 0 : 6 + sbelow(s, 10);
		break;
	case 1:
		c->flags = 1u << sbelow(s, 32);
		break;
	case 2:
		c->dst |= 1 + sbelow(s, 3);
		break;
	case 3:
		c->size = sbelow(s, 2) ? 0 : HMMGPU_CMD_MAX_SIZE + 4;
		break;
	case 4:
		c->dst = ~0ull - sbelow(s, 64);
		break;
	}
}

static int op_exec(const uint64_t *a)
{
	static const uint32_t timeouts[] = { 1, 5, 20, 50, 100, 200, 500, 1000 };
	static struct drm_hmmgpu_cmd cmds[HMMGPU_CMD_MAX_COUNT + 1];
	struct drm_hmmgpu_sync syncs[HMMGPU_MAX_SYNCS + 1];
	uint64_t slots[HMMGPU_MAX_SYNCS + 1];
	struct drm_hmmgpu_exec e = { 0 };
	unsigned int ncmds = a[1], nsyncs = a[3], i;
	int vmi = pick(a[0], st.nvms), nuf, spoilt, err;
	struct so saved[MAX_SOS];
	uint64_t s = a[2];

	if (vmi < 0)
		return -ENOENT;
	if (ncmds > HMMGPU_CMD_MAX_COUNT + 1)
		ncmds = HMMGPU_CMD_MAX_COUNT + 1;
	if (nsyncs > HMMGPU_MAX_SYNCS + 1)
		nsyncs = HMMGPU_MAX_SYNCS + 1;
	memcpy(saved, st.sos, sizeof(saved));
	spoilt = spoil(&s, ncmds + nsyncs);
	for (i = 0; i < ncmds; i++) {
		bad = (int)i == spoilt;
		gen_cmd(&s, vmi, &cmds[i]);
	}
	gen_syncs(&s, vmi, nsyncs, syncs, slots, &nuf, spoilt - (int)ncmds);
	e.vm_id = st.vms[vmi].id;
	e.cmds = (uintptr_t)cmds;
	e.cmd_count = ncmds;
	e.syncs = (uintptr_t)syncs;
	e.num_syncs = nsyncs;
	e.timeout_ms = timeouts[a[4] % ARRAY_SIZE(timeouts)];
	if (a[5] & 1)
		e.flags = 1u << sbelow(&s, 32);
	if (a[5] & 2)
		e.pad = 1;
	if (a[5] & 4)
		e.timeout_ms = HMMGPU_EXEC_MAX_TIMEOUT_MS + 1;
	if (a[5] & 8)
		e.cmds = 16;			/* unreadable */
	err = xioctl(st.fds[st.vms[vmi].fdi], DRM_IOCTL_HMMGPU_EXEC, &e);
	/* A refused job signals nothing: the sync objects hold what they held. */
	if (err)
		memcpy(st.sos, saved, sizeof(saved));
	return err;
}

static int op_wait_ufence(const uint64_t *a)
{
	static const int64_t timeouts[] = { 0, 1000, 100000, 1000000, 10000000, 50000000 };
	int slot = a[0] % UFENCE_SLOTS;
	struct drm_hmmgpu_wait_user_fence w = {
		.addr = (uintptr_t)&st.ufence[slot],
		.value = st.ufence_val[slot],
		.mask = ~0ull,
		.op = a[1] < 6 ? DRM_HMMGPU_WAIT_GTE : (uint32_t)a[1] - 3,
		.timeout_ns = timeouts[a[2] % ARRAY_SIZE(timeouts)],
	};
	int fd = fd_of(a[0] / UFENCE_SLOTS);

	if (a[3] & 1)
		w.addr += 1 + (a[3] >> 4) % 7;
	if (a[3] & 2)
		w.flags = 1;
	if (a[3] & 4)
		w.addr = 0x1000;		/* unmapped */
	if (a[3] & 8)
		w.mask = 0xffff;
	return xioctl(fd, DRM_IOCTL_HMMGPU_WAIT_USER_FENCE, &w);
}

static int op_syncobj_create(const uint64_t *a)
{
	struct drm_syncobj_create c = { .flags = (uint32_t)a[1] };
	int fdi = pick(a[0], st.nfds), err;

	err = xioctl(fdi < 0 ? -1 : st.fds[fdi], DRM_IOCTL_SYNCOBJ_CREATE, &c);
	if (!err && st.nsos < MAX_SOS)
		st.sos[st.nsos++] = (struct so){ fdi, c.handle, 0, c.flags & 1 };
	return err;
}

static int so_fd(int k)
{
	return k < 0 ? fd_of(0) : st.fds[st.sos[k].fdi];
}

static int op_syncobj(uint32_t op, const uint64_t *a)
{
	int k = pick(a[0], st.nsos), fd = so_fd(k);
	uint32_t handles[4], n = 1, i;
	uint64_t points[4];

	handles[0] = k < 0 ? (uint32_t)a[0] : st.sos[k].handle;
	points[0] = k < 0 ? 1 : st.sos[k].point;
	switch (op) {
	case OP_SYNCOBJ_DESTROY: {
		struct drm_syncobj_destroy d = { .handle = handles[0] };

		return xioctl(fd, DRM_IOCTL_SYNCOBJ_DESTROY, &d);
	}
	case OP_SYNCOBJ_WAIT: {
		n = 1 + a[1] % 4;
		for (i = 1; i < n; i++) {
			int j = pick(a[0] + i, st.nsos);

			handles[i] = j < 0 ? i : st.sos[j].handle;
			points[i] = j < 0 ? 1 : st.sos[j].point;
		}
		if (a[2] & 1) {
			struct drm_syncobj_timeline_wait w = {
				.handles = (uintptr_t)handles, .points = (uintptr_t)points,
				.count_handles = n, .flags = (uint32_t)a[3],
				.timeout_nsec = now_ns() + 1000000 * (a[2] >> 1),
			};

			return xioctl(fd, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &w);
		}
		struct drm_syncobj_wait w = {
			.handles = (uintptr_t)handles, .count_handles = n,
			.flags = (uint32_t)a[3] & ~4u,
			.timeout_nsec = now_ns() + 1000000 * (a[2] >> 1),
		};

		return xioctl(fd, DRM_IOCTL_SYNCOBJ_WAIT, &w);
	}
	case OP_SYNCOBJ_SIGNAL: {
		if (a[1] & 1) {
			struct drm_syncobj_timeline_array t = {
				.handles = (uintptr_t)handles, .points = (uintptr_t)points,
				.count_handles = 1, .flags = (uint32_t)a[2] & ~1u,
			};

			points[0] = k < 0 ? 1 : ++st.sos[k].point;
			if (k >= 0)
				st.sos[k].fenced = true;
			return xioctl(fd, DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &t);
		}
		struct drm_syncobj_array s = {
			.handles = (uintptr_t)handles, .count_handles = 1,
			.pad = (uint32_t)a[2] & ~1u,
		};

		if (k >= 0)
			st.sos[k].fenced = true;
		return xioctl(fd, DRM_IOCTL_SYNCOBJ_SIGNAL, &s);
	}
	case OP_SYNCOBJ_RESET: {
		struct drm_syncobj_array s = { .handles = (uintptr_t)handles, .count_handles = 1 };

		if (k >= 0)
			st.sos[k] = (struct so){ st.sos[k].fdi, st.sos[k].handle, 0, false };
		return xioctl(fd, DRM_IOCTL_SYNCOBJ_RESET, &s);
	}
	case OP_SYNCOBJ_QUERY: {
		struct drm_syncobj_timeline_array t = {
			.handles = (uintptr_t)handles, .points = (uintptr_t)points,
			.count_handles = 1, .flags = (uint32_t)a[1],
		};

		return xioctl(fd, DRM_IOCTL_SYNCOBJ_QUERY, &t);
	}
	case OP_SYNCOBJ_TRANSFER: {
		int d = pick(a[1], st.nsos);
		struct drm_syncobj_transfer t = {
			.src_handle = handles[0],
			.dst_handle = d < 0 ? (uint32_t)a[1] : st.sos[d].handle,
			.src_point = a[2] & 1 ? points[0] : 0,
			.dst_point = a[2] & 2 && d >= 0 ? st.sos[d].point + 1 : 0,
			.flags = (uint32_t)a[3] << 1,	/* WAIT_FOR_SUBMIT, or junk */
		};
		int err = xioctl(fd, DRM_IOCTL_SYNCOBJ_TRANSFER, &t);

		if (!err && d >= 0 && t.dst_point)
			st.sos[d].point = t.dst_point;
		return err;
	}
	case OP_SYNCOBJ_EXPORT: {
		struct drm_syncobj_handle h = { .handle = handles[0], .flags = (uint32_t)a[1] };
		int err = xioctl(fd, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &h);

		if (!err)
			add_xfd(h.fd, false, h.flags & 1, 0);
		return err;
	}
	}
	return -EINVAL;
}

/*
 * The @idx-th exported fd of the kind wanted (a dma-buf, a sync object fd, a
 * sync_file), or of any kind one time in 16.
 */
static int pick_xfd(uint64_t idx, bool dmabuf, bool sync_file)
{
	int match[MAX_XFDS], n = 0, i;

	if (idx % 16 == 15 && idx < FUZZ_NEWEST)
		return pick(idx / 16, st.nxfds);
	for (i = 0; i < st.nxfds; i++)
		if (st.xfds[i].dmabuf == dmabuf && st.xfds[i].sync_file == sync_file)
			match[n++] = i;
	i = pick(idx, n);
	return i < 0 ? -1 : match[i];
}

static int op_syncobj_import(const uint64_t *a)
{
	int x = pick_xfd(a[0], false, a[2] & 1), fdi = pick(a[1], st.nfds), err;
	struct drm_syncobj_handle h = { .fd = x < 0 ? -1 : st.xfds[x].fd, .flags = (uint32_t)a[2] };

	if (h.flags & 1) {
		/* A sync_file goes into an existing sync object of that file. */
		int k = pick(a[1], st.nsos);

		h.handle = k < 0 ? 1 : st.sos[k].handle;
		if (k >= 0)
			fdi = st.sos[k].fdi;
	}
	err = xioctl(fdi < 0 ? -1 : st.fds[fdi], DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &h);
	if (!err && !(h.flags & 1) && st.nsos < MAX_SOS)
		st.sos[st.nsos++] = (struct so){ fdi, h.handle, 0, true };
	return err;
}

static int op_prime_export(const uint64_t *a)
{
	int i = pick_gem(a[0]), err;
	struct drm_prime_handle h = {
		.handle = i < 0 ? (uint32_t)a[0] : st.bos[i].handle,
		.flags = ((a[1] & 1) ? DRM_CLOEXEC : 0) | ((a[1] & 2) ? DRM_RDWR : 0) |
			 (uint32_t)(a[1] & ~3ull) << 8,
	};

	err = xioctl(i < 0 ? fd_of(0) : st.fds[st.bos[i].fdi], DRM_IOCTL_PRIME_HANDLE_TO_FD, &h);
	if (!err)
		add_xfd(h.fd, true, false, i < 0 ? 0 : st.bos[i].size);
	return err;
}

static int op_prime_import(const uint64_t *a)
{
	int x = pick_xfd(a[0], true, false), fdi = pick(a[1], st.nfds), err;
	struct drm_prime_handle h = { .fd = x < 0 ? -1 : st.xfds[x].fd };

	err = xioctl(fdi < 0 ? -1 : st.fds[fdi], DRM_IOCTL_PRIME_FD_TO_HANDLE, &h);
	if (!err)
		add_bo(fdi, h.handle, st.xfds[x].size ? st.xfds[x].size : PAGE, false);
	return err;
}

static int op_mmap(const uint64_t *a)
{
	size_t size = a[0] && a[0] <= 64 * MIB ? (a[0] + PAGE - 1) & ~(PAGE - 1) : 2 * MIB;
	int prot = (int)a[2] & (PROT_READ | PROT_WRITE | PROT_EXEC);
	uint8_t *at = arena_slot(size), *p;
	int fd;

	/* Slots are 2 MiB aligned: kind 1 leaves it so (THP), kind 0 moves off by a page. */
	switch (a[1] % 4) {
	case 0:		/* private anonymous */
	case 1:
		if (a[1] % 4 == 0)
			at += PAGE;
		p = mmap(at, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		add_map(p, size, false);
		return 0;
	case 2:		/* shared anonymous */
		p = mmap(at, size, prot, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		add_map(p, size, true);
		return 0;
	default:	/* a file: shmem through memfd */
		fd = memfd_create("hmmgpu_fuzz", 0);
		if (fd < 0)
			return -errno;
		if (ftruncate(fd, size) < 0) {
			close(fd);
			return -errno;
		}
		p = mmap(at, size, prot, (a[1] & 4 ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED, fd, 0);
		close(fd);
		if (p == MAP_FAILED)
			return -errno;
		add_map(p, size, true);
		return 0;
	}
}

static int op_mm(uint32_t op, const uint64_t *a)
{
	static const int advice[] = {
		MADV_DONTNEED, MADV_FREE, MADV_DONTNEED, MADV_FREE, MADV_PAGEOUT, MADV_COLD,
		MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_WILLNEED, MADV_REMOVE, MADV_COLLAPSE,
	};
	int mi = pick(a[0], st.nmaps);
	uint8_t *addr;
	size_t len;

	if (mi < 0)
		return -ENOENT;
	map_range(&st.maps[mi], a[1] & ~(PAGE - 1), a[2], &addr, &len);
	len = (len + PAGE - 1) & ~(PAGE - 1);
	switch (op) {
	case OP_MUNMAP:
		return munmap(addr, len) ? -errno : 0;
	case OP_MPROTECT:
		return mprotect(addr, len, (int)a[3] & 3) ? -errno : 0;
	case OP_MADVISE:
		return madvise(addr, len, advice[a[3] % ARRAY_SIZE(advice)]) ? -errno : 0;
	}
	return -EINVAL;
}

static int op_mremap(const uint64_t *a)
{
	int mi = pick(a[0], st.nmaps), flags = 0;
	struct map *m;
	size_t size;
	void *p, *to;

	if (mi < 0)
		return -ENOENT;
	m = &st.maps[mi];
	size = a[1] && a[1] <= 64 * MIB ? (a[1] + PAGE - 1) & ~(PAGE - 1) : m->size;
	/* A move goes to a new slot of the arena, or over another mapping of the program. */
	to = (a[2] & 2) && st.nmaps > 1 ? st.maps[(mi + 1) % st.nmaps].addr : arena_slot(size);
	if (a[2] & 1)
		flags |= MREMAP_MAYMOVE | MREMAP_FIXED;
	if ((a[2] & 4) && (a[2] & 1) && !m->shared) {
		flags |= MREMAP_DONTUNMAP;
		size = m->size;
	}
	if (!(flags & MREMAP_FIXED) && size > m->size) {
		/* Growing in place: only into the gap after the slot. */
		size_t room = 2 * MIB - ((uintptr_t)(m->addr + m->size) & (2 * MIB - 1));

		if (size > m->size + room)
			size = m->size + room;
	}
	p = flags & MREMAP_FIXED ? mremap(m->addr, m->size, size, flags, to) :
		mremap(m->addr, m->size, size, flags);
	if (p == MAP_FAILED)
		return -errno;
	if (flags & MREMAP_DONTUNMAP)
		add_map(p, size, m->shared);
	else
		*m = (struct map){ p, size, m->shared };
	return 0;
}

static void on_fault(int sig)
{
	(void)sig;
	if (touching)
		siglongjmp(touch_jmp, 1);
	_exit(99);
}

/*
 * Writes (or reads) a byte every 64 bytes or every page; -EFAULT where nothing
 * is mapped. The arguments are volatile: they live across the sigsetjmp().
 */
static int touch_range(uint8_t *volatile addr, volatile size_t len, volatile uint64_t v)
{
	size_t i;

	touching = 1;
	if (sigsetjmp(touch_jmp, 1)) {
		touching = 0;
		return -EFAULT;
	}
	for (i = 0; i < len; i += v & 1 ? 64 : PAGE) {
		if (v & 2)
			(void)((volatile uint8_t *)addr)[i];
		else
			((volatile uint8_t *)addr)[i] = (uint8_t)(v >> 8) + i;
	}
	touching = 0;
	return 0;
}

static int op_touch(const uint64_t *a)
{
	int mi = pick(a[0], st.nmaps);
	uint8_t *start;
	size_t n;

	if (mi < 0)
		return -ENOENT;
	map_range(&st.maps[mi], a[1], a[2], &start, &n);
	return touch_range(start, n > 8 * MIB ? 8 * MIB : n, a[3]);
}

static void reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

static void run_calls(const struct fuzz_prog *p, unsigned int from, unsigned int to);

static unsigned int op_fork(const struct fuzz_prog *p, unsigned int i, const uint64_t *a)
{
	unsigned int end = i + 1 + (a[0] % 8);
	pid_t pid;

	if (end > p->n)
		end = p->n;
	pid = fork();
	if (pid == 0) {
		run_calls(p, i + 1, end);
		if (a[2] & 1) {
			int k;

			for (k = 0; k < st.nfds; k++)
				close(st.fds[k]);
		}
		_exit(0);
	}
	if (pid < 0)
		return i + 1;
	if (!(a[1] & 1) && st.nkids < MAX_KIDS)
		st.kids[st.nkids++] = pid;
	else
		reap(pid);
	return end;
}

static unsigned int op_send_fd(const struct fuzz_prog *p, unsigned int i, const uint64_t *a)
{
	unsigned int end = i + 1 + (a[1] % 8);
	int fdi = pick(a[0], st.nfds), sv[2];
	pid_t pid;

	if (end > p->n)
		end = p->n;
	if (fdi < 0 || st.fds[fdi] < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0)
		return i + 1;
	pid = fork();
	if (pid == 0) {
		char cbuf[CMSG_SPACE(sizeof(int))], byte;
		struct iovec iov = { &byte, 1 };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct cmsghdr *cm;
		int k, fd = -1;

		close(sv[0]);
		/* Only the file passed over the socket: close the copies fork gave. */
		for (k = 0; k < st.nfds; k++) {
			close(st.fds[k]);
			st.fds[k] = -1;
		}
		alarm(5);
		if (recvmsg(sv[1], &msg, 0) > 0) {
			cm = CMSG_FIRSTHDR(&msg);
			if (cm && cm->cmsg_type == SCM_RIGHTS)
				memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		}
		alarm(0);
		if (fd < 0)
			_exit(1);
		st.fds[fdi] = fd;
		run_calls(p, i + 1, end);
		_exit(0);
	}
	close(sv[1]);
	if (pid > 0) {
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, byte = 0;
		struct iovec iov = { &byte, 1 };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &st.fds[fdi], sizeof(int));
		sendmsg(sv[0], &msg, 0);
		if (a[2] & 1) {
			/* The receiver holds the last reference now. */
			close(st.fds[fdi]);
			st.fds[fdi] = -1;
		}
		if (!(a[3] & 1) && st.nkids < MAX_KIDS)
			st.kids[st.nkids++] = pid;
		else
			reap(pid);
	}
	close(sv[0]);
	return end;
}

static int op_get_param(const uint64_t *a)
{
	struct drm_hmmgpu_get_param g = { .param = (uint32_t)a[1], .pad = (uint32_t)a[2] };

	return xioctl(fd_of(a[0]), DRM_IOCTL_HMMGPU_GET_PARAM, &g);
}

static int op_vm_id(uint32_t op, const uint64_t *a)
{
	int vmi = pick(a[0], st.nvms);
	int fd = vmi < 0 ? fd_of(0) : st.fds[st.vms[vmi].fdi];
	uint32_t id = vmi < 0 ? (uint32_t)a[0] : st.vms[vmi].id;

	if (op == OP_VM_DESTROY) {
		struct drm_hmmgpu_vm_destroy d = { .vm_id = id };

		return xioctl(fd, DRM_IOCTL_HMMGPU_VM_DESTROY, &d);
	}
	struct drm_hmmgpu_vm_stats s = { .vm_id = id, .pad = (uint32_t)a[1] };

	return xioctl(fd, DRM_IOCTL_HMMGPU_VM_STATS, &s);
}

/* Runs one call; returns the index of the next one to run. */
static unsigned int run_call(const struct fuzz_prog *p, unsigned int i)
{
	const struct fuzz_call *c = &p->c[i];
	const uint64_t *a = c->a;
	unsigned int next = i + 1;
	int64_t t0 = now_ns();
	int err = 0;

	__atomic_add_fetch(&opts->stats->calls, 1, __ATOMIC_RELAXED);
	switch (c->op) {
	case OP_OPEN:
		err = op_open();
		break;
	case OP_CLOSE: {
		int k = pick(a[0], st.nfds);

		err = k < 0 || close(st.fds[k]) ? -EBADF : 0;
		if (k >= 0)
			st.fds[k] = -1;
		break;
	}
	case OP_DUP: {
		int fd = fd_of(a[0]);

		fd = fd < 0 ? -1 : dup(fd);
		err = fd < 0 ? -EBADF : 0;
		if (fd >= 0 && st.nfds < MAX_FDS) {
			/* Its VMs and objects are the file's: the copies name them too. */
			st.fds[st.nfds++] = fd;
		} else if (fd >= 0) {
			close(fd);
		}
		break;
	}
	case OP_GET_PARAM:
		err = op_get_param(a);
		break;
	case OP_VM_CREATE:
		err = op_vm_create(a);
		break;
	case OP_VM_DESTROY:
	case OP_VM_STATS:
		err = op_vm_id(c->op, a);
		break;
	case OP_GEM_CREATE:
		err = op_gem_create(a);
		break;
	case OP_GEM_MMAP:
		err = op_gem_mmap(a);
		break;
	case OP_USERPTR:
		err = op_userptr(a);
		break;
	case OP_GEM_CLOSE:
		err = op_gem_close(a);
		break;
	case OP_BIND:
		err = op_bind(a);
		break;
	case OP_EXEC:
		err = op_exec(a);
		break;
	case OP_WAIT_UFENCE:
		err = op_wait_ufence(a);
		break;
	case OP_SYNCOBJ_CREATE:
		err = op_syncobj_create(a);
		break;
	case OP_SYNCOBJ_IMPORT:
		err = op_syncobj_import(a);
		break;
	case OP_SYNCOBJ_DESTROY:
	case OP_SYNCOBJ_WAIT:
	case OP_SYNCOBJ_SIGNAL:
	case OP_SYNCOBJ_RESET:
	case OP_SYNCOBJ_QUERY:
	case OP_SYNCOBJ_TRANSFER:
	case OP_SYNCOBJ_EXPORT:
		err = op_syncobj(c->op, a);
		break;
	case OP_PRIME_EXPORT:
		err = op_prime_export(a);
		break;
	case OP_PRIME_IMPORT:
		err = op_prime_import(a);
		break;
	case OP_MMAP:
		err = op_mmap(a);
		break;
	case OP_MUNMAP:
	case OP_MPROTECT:
	case OP_MADVISE:
		err = op_mm(c->op, a);
		break;
	case OP_MREMAP:
		err = op_mremap(a);
		break;
	case OP_TOUCH:
		err = op_touch(a);
		break;
	case OP_FORK:
		next = op_fork(p, i, a);
		break;
	case OP_SEND_FD:
		next = op_send_fd(p, i, a);
		break;
	case OP_SLEEP:
		usleep(1000 * (a[0] % 8));
		break;
	}
	if (c->op < OP_COUNT) {
		__atomic_add_fetch(&opts->stats->op_calls[c->op], 1, __ATOMIC_RELAXED);
		if (!err)
			__atomic_add_fetch(&opts->stats->op_ok[c->op], 1, __ATOMIC_RELAXED);
		else if (-err < FUZZ_ERRNOS)
			__atomic_add_fetch(&opts->stats->op_err[c->op][-err], 1, __ATOMIC_RELAXED);
	}
	if (opts->verbose)
		fprintf(stderr, "[%d] %2u %-16s %d (%s) %.1f ms\n", getpid(), i,
			fuzz_ops[c->op].name, err, err ? strerror(-err) : "ok",
			(now_ns() - t0) / 1e6);
	return next;
}

static void run_calls(const struct fuzz_prog *p, unsigned int from, unsigned int to)
{
	unsigned int i = from;

	while (i < to)
		i = run_call(p, i);
}

void fuzz_exec(const struct fuzz_prog *p, const struct fuzz_exec_opts *o)
{
	struct sigaction sa = { .sa_handler = on_fault };
	int k;

	opts = o;
	memset(&st, 0, sizeof(st));
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	st.ufence = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	st.arena = mmap(NULL, ARENA_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			-1, 0);
	if (st.ufence == MAP_FAILED || st.arena == MAP_FAILED)
		_exit(98);
	run_calls(p, 0, p->n);
	for (k = 0; k < st.nkids; k++)
		reap(st.kids[k]);
}
