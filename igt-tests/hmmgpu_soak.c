// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * A data-integrity soak of hmmgpu's userptr mirroring, in the spirit of fsx:
 * in each VM mode the device offers (one dynamic subtest per mode: "fault",
 * "prefault", "pinned"), random GPU and CPU reads and writes of a 6 MiB
 * region (4 MiB of it backed by transparent huge pages, 2 MiB by small
 * pages) are checked against a shadow copy of what it must hold, while
 * random events change the memory under the GPU: MADV_FREE and reclaim,
 * MADV_PAGEOUT and MADV_COLD (swap-out and -in where the guest has swap),
 * MADV_DONTNEED, munmap holes and fresh mappings (private, shared, and
 * MAP_SHARED files of /mnt/ext4 with writeback and drop_caches), mremap
 * round trips, mprotect, fork with a child that checks and writes, THP
 * splits and MADV_COLLAPSE, compaction, KSM merges and NUMA migration
 * (each where the guest has it), and memcg reclaim; some of them, and CPU
 * writes to the same pages, while a GPU job is in flight. In prefault and
 * pinned modes the userptrs are bound again whenever holes come and go,
 * half the time by fenced asynchronous binds (the next job waiting for
 * their fence); in every mode, holes are punched in the GPU bindings and
 * bound again.
 *
 * The operations come from a pseudo-random generator: the same seed (with
 * the same binary and the same events available) gives the same sequence
 * of operations, in every mode. Each mode prints its seed; a mismatch
 * prints the region offset, expected and found values, the mode, the seed
 * and the last operations. The length of a run: --seconds N (or
 * HMMGPU_SOAK_SECONDS) per mode, default 4; --ops N (HMMGPU_SOAK_OPS)
 * stops after N operations; --seed N (HMMGPU_SOAK_SEED). --without A,B
 * (HMMGPU_SOAK_WITHOUT) leaves operations out; --verify 1 or 2
 * (HMMGPU_SOAK_VERIFY) checks the whole region after every operation, from
 * the CPU or from both, which finds the operation that went wrong.
 *
 * What a page may hold (the shadow is exact, up to what the kernel may
 * choose): MADV_DONTNEED of private anonymous memory and fresh mappings give
 * zeros; a page after MADV_FREE holds its data or zeros (the kernel may
 * drop it until it is written), and once written, by the CPU or the GPU,
 * its data or zeros, plus every write since: a write is never lost. Pins
 * must balance (nr_foll_pin_acquired and _released in /proc/vmstat) once a
 * mode's file is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/magic.h>

#include <xf86drm.h>

#include "igt.h"
#include "igt_hmmgpu.h"
#include "sw_sync.h"
#include "igt_syncobj.h"

IGT_TEST_DESCRIPTION("A data-integrity soak in every VM mode: random GPU and CPU reads and "
		     "writes checked against a shadow copy, interleaved with MADV_FREE, "
		     "reclaim, MADV_DONTNEED, munmap, mmap, mremap, mprotect, fork, THP split "
		     "and collapse, compaction, KSM and NUMA migration; the seed is printed "
		     "so that a failure can be replayed.");

#ifndef MADV_COLD
#define MADV_COLD		20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT		21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE	0x100000
#endif
#define SOAK_MPOL_MF_MOVE	(1 << 1)

#define SZ_1M		(1ull << 20)
#define SZ_2M		(2ull << 20)

/* The region: [0, THP_SIZE) wants huge pages, the rest small ones. */
#define REGION_SIZE	(6 * SZ_1M)
#define THP_SIZE	(4 * SZ_1M)

/* GPU addresses: region offset X is at REGION_VA + X. */
#define REGION_VA	0x100000000ull
#define BO_VA		0x200000000ull
#define SCRATCH_VA	0x300000000ull

/* The scratch object: read-backs, then data to upload, then results. */
#define UPLOAD_OFF	REGION_SIZE
#define UPLOAD_SIZE	SZ_1M
#define RESULT_OFF	(UPLOAD_OFF + UPLOAD_SIZE)

/* Seconds per mode by default: the three modes stay under 20 s of make check. */
#define DEFAULT_SECONDS	4

#define MAX_HOLES	3
#define MAX_BINDS	(MAX_HOLES + 2)
#define LOG_LINES	32
#define LOG_TAIL	20
#define LOG_LEN		160

/* What backs a page of the region. */
enum backing {
	BK_NONE,	/* unmapped: a hole */
	BK_ANON,	/* private anonymous */
	BK_SHARED,	/* shared anonymous */
	BK_FILE,	/* MAP_SHARED of the file on /mnt/ext4 */
};

#define MASK(bk)	(1u << (bk))
#define MAPPED		(MASK(BK_ANON) | MASK(BK_SHARED) | MASK(BK_FILE))

/* What the shadow knows of a page's contents. */
enum page_state {
	/* It holds the shadow. */
	PG_DEFINED,
	/* MADV_FREE'd, not written since: the shadow, or zeros at any time. */
	PG_LAZY,
	/* Written after MADV_FREE: the shadow, or the alternative (zeros plus the writes). */
	PG_SPLIT,
};

static const char *const state_names[] = { "defined", "lazy-free", "written after MADV_FREE" };
static const char *const backing_names[] = { "hole", "private", "shared", "file" };

enum op {
	OP_CPU_WRITE,
	OP_CPU_CHECK,
	OP_GPU_FILL,
	OP_GPU_WRITE64,
	OP_GPU_UPLOAD,
	OP_GPU_COPY,
	OP_GPU_CHECK,
	OP_GPU_CHECKSUM,
	OP_MADV_FREE,
	OP_PAGEOUT,
	OP_COLD,
	OP_FREE_WRITE_RECLAIM,
	OP_DONTNEED,
	OP_HOLE,
	OP_FILL_HOLE,
	OP_REMAP,
	OP_MREMAP,
	OP_MPROTECT,
	OP_FORK,
	OP_THP_SPLIT,
	OP_THP_REFRESH,
	OP_COLLAPSE,
	OP_COMPACT,
	OP_KSM,
	OP_NUMA,
	OP_WRITEBACK,
	OP_MEMCG_RECLAIM,
	OP_GPU_RACE,
	OP_REBIND,
	OP_PUNCH_BIND,
	NUM_OPS,
};

struct run {
	uint64_t off, len;
};

struct binding {
	uint64_t off, len;
	uint32_t handle;
};

struct soak {
	uint32_t mode;
	const char *mode_name;
	uint64_t seed, rng;

	int fd;
	uint32_t vm;
	uint32_t bo;
	uint8_t *bo_ptr;
	uint64_t bo_size;

	/* The region at @base (2 MiB-aligned) inside a reservation; the scratch area likewise. */
	void *res, *sres;
	uint64_t res_size, sres_size;
	uint8_t *base, *scratch;
	int file_fd;

	uint64_t npages;
	uint8_t *shadow, *alt, *tmp;
	uint8_t *state, *backing;
	/*
	 * Pages whose contents depend on what the kernel chose (MADV_FREE'd,
	 * until a write covers them whole): known from the operations alone,
	 * so that the choice of operations never depends on the kernel's.
	 */
	uint8_t *uncertain;
	struct run *runs;

	struct binding binds[MAX_BINDS];
	unsigned int nbinds;
	/*
	 * Whether the last rebind was fenced (asynchronous binds that signal
	 * @bind_sync, unmaps clearing their entries in their turn), and whether
	 * the next job is still to take @bind_sync as a wait sync.
	 */
	bool fenced;
	bool bind_pending;
	uint32_t bind_sync;

	uint64_t nops, counts[NUM_OPS], ns[NUM_OPS];
	char log[LOG_LINES][LOG_LEN];
	int numa_node;
	bool in_child;
	/* The operation had nothing to work on, and does not count. */
	bool skipped;
	/* Set up and not torn down: a failure left it behind. */
	bool live;
};

static int fd = -1;
static uint64_t page;

/* Run length, from the options or the environment. */
static double opt_seconds = -1;
static uint64_t opt_ops;
static uint64_t opt_seed;
static bool opt_seed_given;
static const char *opt_without;
/* After every operation, check the whole region: 1 from the CPU, 2 from the GPU too. */
static int opt_verify;

/* The guest's features, found once. */
static struct {
	bool thp, free, pageout, collapse, compact, ksm, numa, swap, ext4, drop_caches, pins;
	bool memcg;
	int numa_nodes;
} feat;

/* The memory cgroup the test runs in, when the guest has them. */
#define CGROUP_ROOT	"/sys/fs/cgroup"
#define CGROUP		CGROUP_ROOT "/hmmgpu-soak"

/* Random numbers: splitmix64. */
static uint64_t rnd(struct soak *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(struct soak *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

static uint32_t rnd32(struct soak *s)
{
	return (uint32_t)rnd(s);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

__attribute__((format(printf, 2, 3)))
static void oplog(struct soak *s, const char *fmt, ...)
{
	char *line = s->log[s->nops % LOG_LINES];
	va_list args;
	int n;

	n = snprintf(line, LOG_LEN, "op %" PRIu64 ": ", s->nops);
	va_start(args, fmt);
	vsnprintf(line + n, LOG_LEN - n, fmt, args);
	va_end(args);
	igt_debug("%s\n", line);
}

static void skip_op(struct soak *s)
{
	s->skipped = true;
}

static void print_log_tail(struct soak *s)
{
	uint64_t first = s->nops > LOG_TAIL ? s->nops + 1 - LOG_TAIL : 1;

	igt_critical("the last %" PRIu64 " operations:\n", s->nops + 1 - first);
	for (uint64_t i = first; i <= s->nops; i++)
		igt_critical("  %s\n", s->log[i % LOG_LINES]);
}

__attribute__((format(printf, 2, 3))) __noreturn
static void soak_fail(struct soak *s, const char *fmt, ...)
{
	struct drm_hmmgpu_vm_stats st;
	va_list args;

	igt_critical("soak: %s mode, seed %" PRIu64 ", op %" PRIu64 "%s:\n", s->mode_name,
		     s->seed, s->nops, s->in_child ? " (in the child of fork)" : "");
	va_start(args, fmt);
	igt_vlog(IGT_LOG_DOMAIN, IGT_LOG_CRITICAL, fmt, args);
	va_end(args);
	print_log_tail(s);
	if (!s->in_child && !__hmmgpu_vm_stats(s->fd, s->vm, &st))
		igt_critical("VM statistics: GPU faults %llu, invalidations %llu, retries %llu, "
			     "pinned pages %llu, jobs done %llu, failed %llu\n",
			     (unsigned long long)st.faults, (unsigned long long)st.invalidations,
			     (unsigned long long)st.retries, (unsigned long long)st.pinned_pages,
			     (unsigned long long)st.jobs_done, (unsigned long long)st.jobs_failed);
	igt_critical("replay: HMMGPU_SOAK_SEED=%" PRIu64 " hmmgpu_soak --run-subtest soak "
		     "--dynamic-subtest %s\n", s->seed, s->mode_name);
	igt_fail(IGT_EXIT_FAILURE);
}

/* Fails unless @err, the return of a system call, is 0. */
static void sys_ok(struct soak *s, int err, const char *what)
{
	if (err)
		soak_fail(s, "%s failed: %s\n", what, strerror(errno));
}

static double elapsed_s(const struct timespec *start)
{
	return igt_nsec_elapsed((struct timespec *)start) / 1e9;
}

/* Guest features. */

static bool write_file(const char *path, const char *value)
{
	int f = open(path, O_WRONLY);
	bool ok;

	if (f < 0)
		return false;
	ok = write(f, value, strlen(value)) == (ssize_t)strlen(value);
	close(f);
	errno = 0;
	return ok;
}

static uint64_t read_u64_file(const char *path)
{
	unsigned long long v = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	errno = 0;
	return v;
}

static bool file_has_word(const char *path, const char *word)
{
	char buf[512] = "";
	bool found = false;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (!found && fscanf(f, "%511s", buf) == 1)
		found = !strcmp(buf, word);
	fclose(f);
	errno = 0;
	return found;
}

/*
 * Moves the test into a memory cgroup of its own, so that memory.reclaim
 * reclaims its memory: where the kernel has cgroup v2 and its memory
 * controller (mounted here if nobody did).
 */
static bool enter_memcg(void)
{
	char pid[32];

	if (access(CGROUP_ROOT "/cgroup.controllers", F_OK) &&
	    mount("none", CGROUP_ROOT, "cgroup2", 0, NULL))
		return false;
	if (!file_has_word(CGROUP_ROOT "/cgroup.controllers", "memory"))
		return false;
	if (!file_has_word(CGROUP_ROOT "/cgroup.subtree_control", "memory") &&
	    !write_file(CGROUP_ROOT "/cgroup.subtree_control", "+memory"))
		return false;
	if (mkdir(CGROUP, 0755) && errno != EEXIST)
		return false;
	snprintf(pid, sizeof(pid), "%d", getpid());
	return write_file(CGROUP "/cgroup.procs", pid) && !access(CGROUP "/memory.reclaim", W_OK);
}

static void leave_memcg(void)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%d", getpid());
	igt_ignore_warn(write_file(CGROUP_ROOT "/cgroup.procs", pid));
	rmdir(CGROUP);
	errno = 0;
}

static bool madvise_works(int advice, uint64_t size)
{
	void *map = mmap(NULL, size * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	char *ptr;
	bool ok;

	if (map == MAP_FAILED)
		return false;
	ptr = (char *)ALIGN((uintptr_t)map, (uintptr_t)size);
	memset(ptr, 1, size);
	/* Unknown advice is -EINVAL; anything else means the kernel knows it. */
	ok = !madvise(ptr, size, advice) || errno != EINVAL;
	munmap(map, size * 2);
	errno = 0;
	return ok;
}

static void detect_features(void)
{
	struct statfs st;
	uint64_t a, r;
	char path[64];

	feat.thp = hmmgpu_thp_enabled();
	feat.free = madvise_works(MADV_FREE, page);
	feat.pageout = madvise_works(MADV_PAGEOUT, page);
	feat.collapse = feat.thp && madvise_works(MADV_COLLAPSE, SZ_2M);
	feat.compact = !access("/proc/sys/vm/compact_memory", W_OK);
	feat.ksm = !access("/sys/kernel/mm/ksm/run", W_OK);
	feat.swap = hmmgpu_swap_active();
	feat.ext4 = !statfs("/mnt/ext4", &st) && st.f_type == EXT4_SUPER_MAGIC &&
		    !access("/mnt/ext4", W_OK);
	feat.drop_caches = !access("/proc/sys/vm/drop_caches", W_OK);
	feat.pins = hmmgpu_read_pin_counters(&a, &r);
	for (feat.numa_nodes = 0; feat.numa_nodes < 64; feat.numa_nodes++) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", feat.numa_nodes);
		if (access(path, F_OK))
			break;
	}
	feat.numa = feat.numa_nodes > 1;
	feat.memcg = enter_memcg();
	errno = 0;

	igt_info("events: MADV_FREE %s, MADV_PAGEOUT/COLD %s (swap %s), THP %s, MADV_COLLAPSE %s, "
		 "compaction %s, KSM %s, NUMA %s (%d nodes), /mnt/ext4 %s, drop_caches %s, "
		 "memcg reclaim %s, pin counters %s; always: MADV_DONTNEED, munmap, mmap, "
		 "mremap, mprotect, fork, rebind\n",
		 feat.free ? "on" : "off", feat.pageout ? "on" : "off",
		 feat.swap ? "on" : "off", feat.thp ? "on" : "off", feat.collapse ? "on" : "off",
		 feat.compact ? "on" : "off", feat.ksm ? "on" : "off", feat.numa ? "on" : "off",
		 feat.numa_nodes, feat.ext4 ? "on" : "off", feat.drop_caches ? "on" : "off",
		 feat.memcg ? "on" : "off", feat.pins ? "on" : "off");
}

/* The shadow. */

static uint64_t page_of(uint64_t off)
{
	return off / page;
}

static bool is_zero(const uint8_t *p, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Any page of [@off, @off + @len) uncertain? */
static bool any_uncertain(struct soak *s, uint64_t off, uint64_t len)
{
	for (uint64_t p = page_of(off); p <= page_of(off + len - 1); p++)
		if (s->uncertain[p])
			return true;
	return false;
}

/* @len bytes of @data written at @off, by the CPU or the GPU. */
static void model_write(struct soak *s, uint64_t off, const void *data, uint64_t len)
{
	uint64_t first = page_of(off), last = page_of(off + len - 1);

	for (uint64_t p = first; p <= last; p++) {
		if (s->state[p] == PG_LAZY) {
			memset(s->alt + p * page, 0, page);
			s->state[p] = PG_SPLIT;
		}
	}
	memcpy(s->shadow + off, data, len);
	for (uint64_t p = first; p <= last; p++) {
		uint64_t start = p * page, end = start + page;
		uint64_t from = off > start ? off : start;
		uint64_t to = off + len < end ? off + len : end;

		if (from == start && to == end) {
			s->state[p] = PG_DEFINED;
			s->uncertain[p] = 0;
		} else if (s->state[p] == PG_SPLIT) {
			memcpy(s->alt + from, s->shadow + from, to - from);
		}
	}
}

static void model_fill32(struct soak *s, uint64_t off, uint64_t len, uint32_t value)
{
	uint32_t *t = (uint32_t *)s->tmp;

	for (uint64_t i = 0; i < len / 4; i++)
		t[i] = value;
	model_write(s, off, s->tmp, len);
}

/* Whole pages that read as zeros from now on. */
static void model_zero(struct soak *s, uint64_t off, uint64_t len)
{
	memset(s->shadow + off, 0, len);
	for (uint64_t p = page_of(off); p < page_of(off + len); p++) {
		s->state[p] = PG_DEFINED;
		s->uncertain[p] = 0;
	}
}

__noreturn
static void mismatch(struct soak *s, const char *how, uint64_t p, const uint8_t *got,
		     const char *why)
{
	const uint32_t *g = (const uint32_t *)got;
	const uint32_t *e = (const uint32_t *)(s->shadow + p * page);
	const uint32_t *a = (const uint32_t *)(s->alt + p * page);
	uint64_t first = page / 4, bad = 0;

	for (uint64_t i = 0; i < page / 4; i++) {
		if (g[i] != e[i]) {
			if (first == page / 4)
				first = i;
			bad++;
		}
	}
	if (first == page / 4)
		first = 0;

	if (s->state[p] == PG_SPLIT) {
		uint64_t afirst = 0, abad = 0;

		/* Either way: where it differs from its data, and from zeros plus the writes. */
		for (uint64_t i = page / 4; i--; ) {
			if (g[i] != a[i]) {
				afirst = i;
				abad++;
			}
		}
		soak_fail(s, "%s: mismatch in page %" PRIu64 " (%s, %s)%s: against its data, "
			  "offset %#" PRIx64 " expected %#x, got %#x (%" PRIu64 " dwords differ); "
			  "against zeros plus the writes, offset %#" PRIx64 " expected %#x, got "
			  "%#x (%" PRIu64 " dwords differ)\n", how, p, backing_names[s->backing[p]],
			  state_names[s->state[p]], why, p * page + first * 4, e[first], g[first],
			  bad, p * page + afirst * 4, a[afirst], g[afirst], abad);
	}
	soak_fail(s, "%s: mismatch at region offset %#" PRIx64 " (page %" PRIu64 ", %s, %s): "
		  "expected %#x, got %#x; %" PRIu64 " of %" PRIu64 " dwords of the page differ%s\n",
		  how, p * page + first * 4, p, backing_names[s->backing[p]],
		  state_names[s->state[p]], e[first], g[first], bad, page / 4, why);
}

/*
 * Checks what was read of whole pages [@off, @off + @len) of the region,
 * into @got, against the shadow; learns what the kernel chose for pages
 * that could hold one thing or another.
 */
static void check_pages(struct soak *s, uint64_t off, uint64_t len, const uint8_t *got,
			const char *how)
{
	for (uint64_t p = page_of(off); p < page_of(off + len); p++) {
		const uint8_t *g = got + (p * page - off);
		uint8_t *e = s->shadow + p * page;

		switch (s->state[p]) {
		case PG_DEFINED:
			if (memcmp(g, e, page))
				mismatch(s, how, p, g, "");
			break;
		case PG_LAZY:
			if (memcmp(g, e, page)) {
				if (!is_zero(g, page))
					mismatch(s, how, p, g, " (neither its data nor zeros)");
				/* Dropped: zeros until written. */
				memset(e, 0, page);
				s->state[p] = PG_DEFINED;
			}
			break;
		case PG_SPLIT:
			if (!memcmp(g, e, page)) {
				s->state[p] = PG_DEFINED;
			} else if (!memcmp(g, s->alt + p * page, page)) {
				memcpy(e, g, page);
				s->state[p] = PG_DEFINED;
			} else {
				mismatch(s, how, p, g, " (a write since MADV_FREE lost?)");
			}
			break;
		}
	}
}

/* Runs of pages whose backing is in @mask. */
static unsigned int find_runs(struct soak *s, unsigned int mask)
{
	unsigned int n = 0;

	for (uint64_t p = 0; p < s->npages; p++) {
		if (!(MASK(s->backing[p]) & mask))
			continue;
		if (n && s->runs[n - 1].off + s->runs[n - 1].len == p * page) {
			s->runs[n - 1].len += page;
		} else {
			s->runs[n].off = p * page;
			s->runs[n].len = page;
			n++;
		}
	}
	return n;
}

static unsigned int count_holes(struct soak *s)
{
	return find_runs(s, MASK(BK_NONE));
}

/* How many of @limit units: mostly few, sometimes many. */
static uint64_t pick_count(struct soak *s, uint64_t limit, uint64_t small, uint64_t medium)
{
	uint64_t r = rnd_below(s, 100), max;

	if (r < 55)
		max = small;
	else if (r < 92)
		max = medium;
	else
		max = limit;
	max = min_u64(max, limit);
	return 1 + rnd_below(s, max);
}

/* Whole pages, at most @max_pages, inside one run of pages backed as @mask. */
static bool pick_pages(struct soak *s, unsigned int mask, uint64_t max_pages, uint64_t *off,
		       uint64_t *len)
{
	unsigned int n = find_runs(s, mask);
	struct run *r;
	uint64_t pages, count;

	if (!n)
		return false;
	r = &s->runs[rnd_below(s, n)];
	pages = r->len / page;
	count = pick_count(s, min_u64(pages, max_pages), 4, 64);
	*off = r->off + rnd_below(s, pages - count + 1) * page;
	*len = count * page;
	return true;
}

/* Dwords, at most @max bytes, inside one run of mapped pages. */
static bool pick_words(struct soak *s, uint64_t max, uint64_t *off, uint64_t *len)
{
	unsigned int n = find_runs(s, MAPPED);
	struct run *r;
	uint64_t words, count;

	if (!n)
		return false;
	r = &s->runs[rnd_below(s, n)];
	words = min_u64(r->len, max) / 4;
	count = pick_count(s, words, 64, 4 * page / 4);
	*off = r->off + rnd_below(s, r->len / 4 - count + 1) * 4;
	*len = count * 4;
	return true;
}

/* Data for writes: a pattern, or one value. */
static void gen_data(struct soak *s, uint8_t *buf, uint64_t len)
{
	uint32_t seed = rnd32(s), *w = (uint32_t *)buf;
	bool pattern = rnd(s) & 1;

	for (uint64_t i = 0; i < len / 4; i++)
		w[i] = pattern ? hmmgpu_pattern(seed, i) : seed;
}

/* GPU. */

static struct hmmgpu_done *gpu_submit(struct soak *s, const struct drm_hmmgpu_cmd *cmds,
				      unsigned int n);
static int gpu_wait_job(struct hmmgpu_done *done);

/*
 * Runs a job and waits for it: its error. One that ran out of time says
 * where the time went, its submission (mirroring invalidated mappings) or
 * after it (the job's queue and run).
 */
static int gpu_job(struct soak *s, const struct drm_hmmgpu_cmd *cmds, unsigned int n)
{
	struct timespec start;
	struct hmmgpu_done *done;
	double submitted;
	int err;

	igt_gettime(&start);
	done = gpu_submit(s, cmds, n);
	submitted = elapsed_s(&start);
	err = gpu_wait_job(done);
	if (err == -ETIMEDOUT)
		igt_info("the job ran out of time: %.3f s in its submission, %.3f s in all\n",
			 submitted, elapsed_s(&start));
	return err;
}

static void gpu_job_ok(struct soak *s, const struct drm_hmmgpu_cmd *cmds, unsigned int n,
		       const char *what)
{
	int err = gpu_job(s, cmds, n);

	if (err)
		soak_fail(s, "%s: the GPU job failed: %d (%s)\n", what, err, strerror(-err));
}

/* The GPU reads [@off, @off + @len) (whole pages) at @va into the scratch object. */
static void gpu_read_at(struct soak *s, uint64_t va, uint64_t off, uint64_t len,
			const char *how)
{
	struct drm_hmmgpu_cmd cmd;

	memset(s->bo_ptr, 0xdb, len);
	hmmgpu_cmd_copy(&cmd, BO_VA, va, len);
	gpu_job_ok(s, &cmd, 1, how);
	check_pages(s, off, len, s->bo_ptr, how);
}

static void gpu_check(struct soak *s, uint64_t off, uint64_t len)
{
	gpu_read_at(s, REGION_VA + off, off, len, "GPU read");
}

/* The sync of a fenced bind: it signals @s's bind sync object. */
static struct drm_hmmgpu_sync fenced_sync(struct soak *s)
{
	return hmmgpu_sync_signal(s->bind_sync);
}

static void unbind_all(struct soak *s)
{
	struct drm_hmmgpu_vm_bind_op ops[MAX_BINDS];
	struct drm_hmmgpu_sync sync = fenced_sync(s);
	int err;

	for (unsigned int i = 0; i < s->nbinds; i++) {
		ops[i] = hmmgpu_bind_op_unmap(REGION_VA + s->binds[i].off, s->binds[i].len);
		if (!s->fenced)
			hmmgpu_vm_unmap(s->fd, s->vm, REGION_VA + s->binds[i].off,
					s->binds[i].len);
	}
	if (s->fenced && s->nbinds) {
		/* One bind: the unmaps take the ranges away now, clear them in its turn. */
		err = __hmmgpu_vm_bind_async(s->fd, s->vm, ops, s->nbinds, &sync, 1);
		if (err)
			soak_fail(s, "a fenced unbind of %u userptrs failed: %d\n", s->nbinds, err);
	}
	/* The calls hold the objects they bound. */
	for (unsigned int i = 0; i < s->nbinds; i++)
		gem_close(s->fd, s->binds[i].handle);
	s->nbinds = 0;
}

static void bind(struct soak *s, uint64_t off, uint64_t len)
{
	struct binding *b = &s->binds[s->nbinds];
	int err;

	igt_assert(s->nbinds < MAX_BINDS);
	b->off = off;
	b->len = len;
	b->handle = hmmgpu_userptr_create(s->fd, s->base + off, len, 0);
	if (s->fenced) {
		/* Done by the call, after the unbinds' turn cleared the range. */
		struct drm_hmmgpu_vm_bind_op op = hmmgpu_bind_op_map(b->handle, REGION_VA + off,
								     len);
		struct drm_hmmgpu_sync sync = fenced_sync(s);

		err = __hmmgpu_vm_bind_async(s->fd, s->vm, &op, 1, &sync, 1);
	} else {
		err = __hmmgpu_vm_bind(s->fd, s->vm, DRM_HMMGPU_VM_BIND_MAP, b->handle, 0,
				       REGION_VA + off, len, 0);
	}
	if (err)
		soak_fail(s, "binding a userptr of [%#" PRIx64 ", +%#" PRIx64 ") failed: %d\n",
			  off, len, err);
	s->nbinds++;
}

/*
 * Binds the region again: in fault mode, one userptr over all of it (holes
 * fault page by page); in prefault and pinned modes, which mirror a mapping
 * whole or not at all, one userptr per run of mapped pages.
 */
static void rebind(struct soak *s)
{
	unsigned int n;

	unbind_all(s);
	/* Half the time fenced, the next job waiting for the last bind's fence. */
	s->fenced = rnd_below(s, 2) == 0;
	s->bind_pending = s->fenced;
	if (s->mode == DRM_HMMGPU_VM_MODE_FAULT) {
		bind(s, 0, REGION_SIZE);
		return;
	}
	n = find_runs(s, MAPPED);
	for (unsigned int i = 0; i < n; i++)
		bind(s, s->runs[i].off, s->runs[i].len);
}

/* CPU mappings. */

/* madvise() of what the region's part wants: huge pages or not, KSM. */
static void apply_advice(struct soak *s, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;

	if (feat.thp && off < THP_SIZE)
		sys_ok(s, madvise(s->base + off, min_u64(end, THP_SIZE) - off, MADV_HUGEPAGE),
		       "madvise(MADV_HUGEPAGE)");
	if (feat.thp && end > THP_SIZE) {
		uint64_t from = off > THP_SIZE ? off : THP_SIZE;

		sys_ok(s, madvise(s->base + from, end - from, MADV_NOHUGEPAGE),
		       "madvise(MADV_NOHUGEPAGE)");
	}
	if (feat.ksm && madvise(s->base + off, len, MADV_MERGEABLE))
		igt_debug("MADV_MERGEABLE: %s\n", strerror(errno));
	errno = 0;
}

/* Fresh memory of backing @bk at [@off, @off + @len): zeros. */
static void map_part(struct soak *s, uint64_t off, uint64_t len, enum backing bk,
		     int fixed)
{
	int flags = fixed, map_fd = -1;
	void *ptr;

	switch (bk) {
	case BK_ANON:
		flags |= MAP_PRIVATE | MAP_ANONYMOUS;
		break;
	case BK_SHARED:
		flags |= MAP_SHARED | MAP_ANONYMOUS;
		break;
	case BK_FILE:
		flags |= MAP_SHARED;
		map_fd = s->file_fd;
		sys_ok(s, fallocate(s->file_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				    off, len), "fallocate(PUNCH_HOLE)");
		break;
	case BK_NONE:
		igt_assert(0);
	}
	ptr = mmap(s->base + off, len, PROT_READ | PROT_WRITE, flags,
		   map_fd, bk == BK_FILE ? (off_t)off : 0);
	if (ptr != s->base + off)
		soak_fail(s, "mmap of [%#" PRIx64 ", +%#" PRIx64 ") as %s memory failed: %s\n",
			  off, len, backing_names[bk], ptr == MAP_FAILED ? strerror(errno) :
			  "elsewhere");
	apply_advice(s, off, len);
	model_zero(s, off, len);
	memset(s->backing + page_of(off), bk, len / page);
}

static enum backing pick_backing(struct soak *s)
{
	uint64_t r = rnd_below(s, 10);

	if (r < 2)
		return BK_SHARED;
	/*
	 * Long-term write pins of file mappings that track dirty pages (ext4)
	 * are refused (mm/gup.c, writable_file_mapping_allowed()): pinned mode
	 * gets shared memory instead.
	 */
	if (r < 4 && feat.ext4)
		return s->mode == DRM_HMMGPU_VM_MODE_PINNED ? BK_SHARED : BK_FILE;
	return BK_ANON;
}

/* Operations. */

static void op_cpu_write(struct soak *s)
{
	uint64_t off, len;

	igt_assert(pick_words(s, SZ_1M, &off, &len));
	gen_data(s, s->tmp, len);
	oplog(s, "cpu-write [%#" PRIx64 ", +%#" PRIx64 ") first %#x", off, len,
	      *(uint32_t *)s->tmp);
	memcpy(s->base + off, s->tmp, len);
	model_write(s, off, s->tmp, len);
}

static void op_cpu_check(struct soak *s)
{
	uint64_t off, len;

	igt_assert(pick_pages(s, MAPPED, s->npages, &off, &len));
	oplog(s, "cpu-check [%#" PRIx64 ", +%#" PRIx64 ")", off, len);
	check_pages(s, off, len, s->base + off, "CPU read");
}

static void op_gpu_fill(struct soak *s)
{
	struct drm_hmmgpu_cmd cmd;
	uint64_t off, len;
	uint32_t value;

	igt_assert(pick_words(s, REGION_SIZE, &off, &len));
	value = rnd32(s);
	oplog(s, "gpu-fill [%#" PRIx64 ", +%#" PRIx64 ") %#x", off, len, value);
	hmmgpu_cmd_fill(&cmd, REGION_VA + off, len, value);
	gpu_job_ok(s, &cmd, 1, "GPU fill");
	model_fill32(s, off, len, value);
}

static void op_gpu_write64(struct soak *s)
{
	struct drm_hmmgpu_cmd cmds[16], *cmd = cmds;
	uint64_t offs[16], values[16];
	bool adds[16];
	unsigned int n, runs = find_runs(s, MAPPED);
	struct run r = s->runs[rnd_below(s, runs)];

	n = 1 + rnd_below(s, 16);
	for (unsigned int i = 0; i < n; i++) {
		offs[i] = r.off + rnd_below(s, r.len / 8) * 8;
		values[i] = rnd(s);
		/* An add needs to know what it adds to. */
		adds[i] = !rnd_below(s, 3) && !any_uncertain(s, offs[i], 8);
		if (adds[i])
			cmd = hmmgpu_cmd_atomic_add(cmd, REGION_VA + offs[i], values[i]);
		else
			cmd = hmmgpu_cmd_write64(cmd, REGION_VA + offs[i], values[i]);
	}
	oplog(s, "gpu-write64 x%u, first %s %#" PRIx64 " at %#" PRIx64, n,
	      adds[0] ? "add" : "write", values[0], offs[0]);
	gpu_job_ok(s, cmds, n, "GPU 64-bit writes");
	for (unsigned int i = 0; i < n; i++) {
		uint64_t v = values[i];

		if (adds[i]) {
			uint64_t old;

			memcpy(&old, s->shadow + offs[i], 8);
			v += old;
		}
		model_write(s, offs[i], &v, 8);
	}
}

static void op_gpu_upload(struct soak *s)
{
	struct drm_hmmgpu_cmd cmd;
	uint64_t off, len;

	igt_assert(pick_words(s, UPLOAD_SIZE, &off, &len));
	gen_data(s, s->tmp, len);
	oplog(s, "gpu-upload [%#" PRIx64 ", +%#" PRIx64 ") first %#x", off, len,
	      *(uint32_t *)s->tmp);
	memcpy(s->bo_ptr + UPLOAD_OFF, s->tmp, len);
	hmmgpu_cmd_copy(&cmd, REGION_VA + off, BO_VA + UPLOAD_OFF, len);
	gpu_job_ok(s, &cmd, 1, "GPU copy from the object");
	model_write(s, off, s->tmp, len);
}

static void op_gpu_check(struct soak *s)
{
	uint64_t off, len;

	igt_assert(pick_pages(s, MAPPED, s->npages, &off, &len));
	oplog(s, "gpu-check [%#" PRIx64 ", +%#" PRIx64 ")", off, len);
	gpu_check(s, off, len);
}

/* Whole pages around [@off, @off + @len). */
static void page_span(uint64_t off, uint64_t len, uint64_t *poff, uint64_t *plen)
{
	*poff = ALIGN_DOWN(off, page);
	*plen = ALIGN(off + len, page) - *poff;
}

static void op_gpu_copy(struct soak *s)
{
	struct drm_hmmgpu_cmd cmd;
	uint64_t src, dst, len, poff, plen;
	unsigned int n;
	struct run r;

	igt_assert(pick_words(s, SZ_1M, &src, &len));
	n = find_runs(s, MAPPED);
	r = s->runs[rnd_below(s, n)];
	dst = r.len >= len ? r.off + rnd_below(s, (r.len - len) / 4 + 1) * 4 : 0;
	if (any_uncertain(s, src, len) || r.len < len || (dst < src + len && src < dst + len)) {
		/* Not a copy the shadow can follow: check the source instead. */
		page_span(src, len, &poff, &plen);
		oplog(s, "gpu-copy of [%#" PRIx64 ", +%#" PRIx64 ") not possible: gpu-check "
		      "[%#" PRIx64 ", +%#" PRIx64 ")", src, len, poff, plen);
		gpu_check(s, poff, plen);
		return;
	}
	oplog(s, "gpu-copy [%#" PRIx64 ", +%#" PRIx64 ") to %#" PRIx64, src, len, dst);
	hmmgpu_cmd_copy(&cmd, REGION_VA + dst, REGION_VA + src, len);
	gpu_job_ok(s, &cmd, 1, "GPU copy inside the region");
	memcpy(s->tmp, s->shadow + src, len);
	model_write(s, dst, s->tmp, len);
}

static uint64_t cpu_checksum(const uint8_t *ptr, uint64_t len)
{
	const uint32_t *p = (const uint32_t *)ptr;
	uint64_t sum = 0;

	for (uint64_t i = 0; i < len / 4; i++)
		sum += p[i];
	return sum;
}

static void op_gpu_checksum(struct soak *s)
{
	volatile uint64_t *res = (volatile uint64_t *)(s->bo_ptr + RESULT_OFF);
	struct drm_hmmgpu_cmd cmd;
	uint64_t off, len, poff, plen, sum;

	igt_assert(pick_words(s, REGION_SIZE, &off, &len));
	page_span(off, len, &poff, &plen);
	if (any_uncertain(s, off, len)) {
		oplog(s, "gpu-checksum of [%#" PRIx64 ", +%#" PRIx64 ") uncertain: gpu-check "
		      "[%#" PRIx64 ", +%#" PRIx64 ")", off, len, poff, plen);
		gpu_check(s, poff, plen);
		return;
	}
	oplog(s, "gpu-checksum [%#" PRIx64 ", +%#" PRIx64 ")", off, len);
	*res = 0xdeadbeefdeadbeefull;
	hmmgpu_cmd_checksum(&cmd, BO_VA + RESULT_OFF, REGION_VA + off, len);
	gpu_job_ok(s, &cmd, 1, "GPU checksum");
	sum = *res;
	if (sum != cpu_checksum(s->shadow + off, len)) {
		/* Find where, from a copy. */
		gpu_check(s, poff, plen);
		soak_fail(s, "GPU checksum of [%#" PRIx64 ", +%#" PRIx64 "): expected %#" PRIx64
			  ", got %#" PRIx64 " (a copy of it matches)\n", off, len,
			  cpu_checksum(s->shadow + off, len), sum);
	}
}

/* Pages after MADV_FREE: resolve those written since first, they could be three things. */
static void madv_free(struct soak *s, uint64_t off, uint64_t len)
{
	for (uint64_t p = page_of(off); p < page_of(off + len); p++)
		if (s->state[p] == PG_SPLIT)
			check_pages(s, p * page, page, s->base + p * page, "CPU read before MADV_FREE");
	sys_ok(s, madvise(s->base + off, len, MADV_FREE), "madvise(MADV_FREE)");
	for (uint64_t p = page_of(off); p < page_of(off + len); p++) {
		s->state[p] = PG_LAZY;
		s->uncertain[p] = 1;
	}
}

static void op_madv_free(struct soak *s)
{
	uint64_t off, len;

	if (!pick_pages(s, MASK(BK_ANON), s->npages, &off, &len))
		return skip_op(s);
	oplog(s, "madv-free [%#" PRIx64 ", +%#" PRIx64 ")", off, len);
	madv_free(s, off, len);
}

static void advise(struct soak *s, uint64_t off, uint64_t len, int advice, const char *what)
{
	if (madvise(s->base + off, len, advice))
		soak_fail(s, "madvise(%s) of [%#" PRIx64 ", +%#" PRIx64 ") failed: %s\n", what, off,
			  len, strerror(errno));
}

static void op_pageout(struct soak *s)
{
	uint64_t off, len;

	igt_assert(pick_pages(s, MAPPED, s->npages, &off, &len));
	oplog(s, "pageout [%#" PRIx64 ", +%#" PRIx64 ")", off, len);
	advise(s, off, len, MADV_PAGEOUT, "MADV_PAGEOUT");
}

static void op_cold(struct soak *s)
{
	uint64_t off, len;

	igt_assert(pick_pages(s, MAPPED, s->npages, &off, &len));
	oplog(s, "cold [%#" PRIx64 ", +%#" PRIx64 ")", off, len);
	advise(s, off, len, MADV_COLD, "MADV_COLD");
}

/*
 * The GPU writes memory after MADV_FREE, then reclaim: the writes must stay
 * (the kernel may drop only pages nobody wrote since).
 */
static void op_free_write_reclaim(struct soak *s)
{
	struct drm_hmmgpu_cmd cmds[8], *cmd = cmds;
	uint64_t off, len, offs[8], lens[8];
	uint32_t values[8];
	unsigned int n;

	if (!pick_pages(s, MASK(BK_ANON), 64, &off, &len))
		return skip_op(s);
	n = 1 + rnd_below(s, 8);
	for (unsigned int i = 0; i < n; i++) {
		lens[i] = 4 * (1 + rnd_below(s, min_u64(len, 2 * page) / 4));
		offs[i] = off + 4 * rnd_below(s, (len - lens[i]) / 4 + 1);
		values[i] = rnd32(s);
		cmd = hmmgpu_cmd_fill(cmd, REGION_VA + offs[i], lens[i], values[i]);
	}
	oplog(s, "free-write-reclaim [%#" PRIx64 ", +%#" PRIx64 "), %u GPU fills, first "
	      "[%#" PRIx64 ", +%#" PRIx64 ") %#x", off, len, n, offs[0], lens[0], values[0]);
	madv_free(s, off, len);
	gpu_job_ok(s, cmds, n, "GPU fills after MADV_FREE");
	for (unsigned int i = 0; i < n; i++)
		model_fill32(s, offs[i], lens[i], values[i]);
	advise(s, off, len, MADV_PAGEOUT, "MADV_PAGEOUT");
	if (rnd(s) & 1)
		check_pages(s, off, len, s->base + off, "CPU read after MADV_FREE, GPU writes "
			    "and reclaim");
	else
		gpu_read_at(s, REGION_VA + off, off, len, "GPU read after MADV_FREE, GPU writes "
			    "and reclaim");
}

static void dontneed(struct soak *s, uint64_t off, uint64_t len)
{
	advise(s, off, len, MADV_DONTNEED, "MADV_DONTNEED");
	/* Private anonymous pages go; shared ones keep their data. */
	for (uint64_t p = page_of(off); p < page_of(off + len); p++)
		if (s->backing[p] == BK_ANON)
			model_zero(s, p * page, page);
}

static void op_dontneed(struct soak *s)
{
	uint64_t off, len;

	igt_assert(pick_pages(s, MAPPED, s->npages, &off, &len));
	oplog(s, "dontneed [%#" PRIx64 ", +%#" PRIx64 ")", off, len);
	dontneed(s, off, len);
}

/* A job on a hole of the region faults, in every mode. */
static void probe_hole(struct soak *s, uint64_t off)
{
	struct drm_hmmgpu_cmd cmd;
	int err;

	hmmgpu_cmd_write64(&cmd, REGION_VA + off, 0xdeaddeaddeaddeadull);
	err = gpu_job(s, &cmd, 1);
	if (err != -EFAULT)
		soak_fail(s, "a GPU write to the hole at %#" PRIx64 " returned %d, not -EFAULT\n",
			  off, err);
}

static void op_hole(struct soak *s)
{
	uint64_t off, len;

	if (count_holes(s) >= MAX_HOLES)
		return skip_op(s);
	igt_assert(pick_pages(s, MAPPED, 64, &off, &len));
	oplog(s, "hole [%#" PRIx64 ", +%#" PRIx64 ")", off, len);
	sys_ok(s, munmap(s->base + off, len), "munmap");
	memset(s->backing + page_of(off), BK_NONE, len / page);
	model_zero(s, off, len);
	rebind(s);
	probe_hole(s, off + rnd_below(s, len / 8) * 8);
}

static void op_fill_hole(struct soak *s)
{
	unsigned int n = count_holes(s);
	enum backing bk;
	struct run r;

	if (!n)
		return skip_op(s);
	r = s->runs[rnd_below(s, n)];
	bk = pick_backing(s);
	oplog(s, "fill-hole [%#" PRIx64 ", +%#" PRIx64 ") %s", r.off, r.len, backing_names[bk]);
	/* Nothing else may have taken the hole. */
	map_part(s, r.off, r.len, bk, MAP_FIXED_NOREPLACE);
	rebind(s);
}

static void op_remap(struct soak *s)
{
	enum backing bk;
	uint64_t off, len;

	igt_assert(pick_pages(s, MAPPED, 64, &off, &len));
	bk = pick_backing(s);
	oplog(s, "remap [%#" PRIx64 ", +%#" PRIx64 ") %s", off, len, backing_names[bk]);
	map_part(s, off, len, bk, MAP_FIXED);
}

static bool all_backed(struct soak *s, uint64_t off, uint64_t len, enum backing bk)
{
	for (uint64_t p = page_of(off); p < page_of(off + len); p++)
		if (s->backing[p] != bk)
			return false;
	return true;
}

/*
 * mremap() of part of the region to the scratch area (with MREMAP_DONTUNMAP
 * for private memory, sometimes), the CPU and the GPU (through a userptr of
 * the new place) check and write it there, and it moves back.
 */
static void op_mremap(struct soak *s)
{
	bool dontunmap, gpu;
	uint64_t off, len, shift, foff, flen;
	uint32_t handle, value;
	struct drm_hmmgpu_cmd cmd;
	uint8_t *dst;
	void *ptr;
	int err;

	igt_assert(pick_pages(s, MAPPED, 256, &off, &len));
	shift = rnd(s) & 1 ? 0 : rnd_below(s, SZ_2M / page) * page;
	dontunmap = all_backed(s, off, len, BK_ANON) && !rnd_below(s, 3);
	gpu = rnd(s) & 1;
	flen = 4 * (1 + rnd_below(s, len / 4));
	foff = off + 4 * rnd_below(s, (len - flen) / 4 + 1);
	value = rnd32(s);
	dst = s->scratch + off + shift;
	oplog(s, "mremap [%#" PRIx64 ", +%#" PRIx64 ") to scratch + %#" PRIx64 "%s%s, and back",
	      off, len, off + shift, dontunmap ? ", MREMAP_DONTUNMAP" : "",
	      gpu ? ", GPU fill there" : "");

	ptr = mremap(s->base + off, len, len,
		     MREMAP_MAYMOVE | MREMAP_FIXED | (dontunmap ? MREMAP_DONTUNMAP : 0), dst);
	if (ptr == MAP_FAILED) {
		err = errno;
		/* The scratch reservation there is gone either way. */
		igt_assert(mmap(dst, len, PROT_NONE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS |
				MAP_NORESERVE, -1, 0) == dst);
		/* A range over more than one mapping does not move: that is all. */
		if (err == EFAULT) {
			oplog(s, "mremap [%#" PRIx64 ", +%#" PRIx64 ") spans mappings: not moved",
			      off, len);
			errno = 0;
			return;
		}
		soak_fail(s, "mremap of [%#" PRIx64 ", +%#" PRIx64 ") failed: %s\n", off, len,
			  strerror(err));
	}
	igt_assert(ptr == dst);

	if (dontunmap) {
		/* The old place is empty: the GPU must not see the moved pages there. */
		memset(s->bo_ptr, 0xdb, len);
		hmmgpu_cmd_copy(&cmd, BO_VA, REGION_VA + off, len);
		gpu_job_ok(s, &cmd, 1, "GPU read of the old place after MREMAP_DONTUNMAP");
		if (!is_zero(s->bo_ptr, len)) {
			uint64_t i = 0;

			while (!s->bo_ptr[i])
				i++;
			soak_fail(s, "GPU read of the old place after MREMAP_DONTUNMAP: byte %#"
				  PRIx64 " reads %#x, not 0\n", off + i, s->bo_ptr[i]);
		}
	}

	check_pages(s, off, len, dst, "CPU read at the new place after mremap");
	if (gpu) {
		handle = hmmgpu_userptr_create(s->fd, dst, len, 0);
		err = __hmmgpu_vm_bind(s->fd, s->vm, DRM_HMMGPU_VM_BIND_MAP, handle, 0,
				       SCRATCH_VA, len, 0);
		if (err)
			soak_fail(s, "binding a userptr of the moved pages failed: %d\n", err);
		gpu_read_at(s, SCRATCH_VA, off, len, "GPU read at the new place after mremap");
		hmmgpu_cmd_fill(&cmd, SCRATCH_VA + (foff - off), flen, value);
		gpu_job_ok(s, &cmd, 1, "GPU fill at the new place after mremap");
		model_fill32(s, foff, flen, value);
		hmmgpu_vm_unmap(s->fd, s->vm, SCRATCH_VA, len);
		gem_close(s->fd, handle);
	}

	ptr = mremap(dst, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, s->base + off);
	if (ptr != s->base + off)
		soak_fail(s, "mremap back to [%#" PRIx64 ", +%#" PRIx64 ") failed: %s\n", off, len,
			  strerror(errno));
	igt_assert(mmap(dst, len, PROT_NONE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS |
			MAP_NORESERVE, -1, 0) == dst);
}

/*
 * mprotect() read-only or PROT_NONE, and back: GPU writes there fail and
 * change nothing, GPU reads of read-only memory work (except in pinned mode,
 * where a writable binding cannot pin it), of PROT_NONE memory fail.
 */
static void mprotect_part(struct soak *s, uint64_t off, uint64_t len, bool none)
{
	struct drm_hmmgpu_cmd cmd;
	uint64_t w = off + rnd_below(s, len / 8) * 8;
	int err;

	sys_ok(s, mprotect(s->base + off, len, none ? PROT_NONE : PROT_READ), "mprotect");

	hmmgpu_cmd_write64(&cmd, REGION_VA + w, 0xbadbadbadbadbad0ull);
	err = gpu_job(s, &cmd, 1);
	if (err != -EFAULT &&
	    !(s->mode == DRM_HMMGPU_VM_MODE_PINNED && err == -ENOMEM))
		soak_fail(s, "a GPU write to %s memory at %#" PRIx64 " returned %d, not -EFAULT\n",
			  none ? "PROT_NONE" : "read-only", w, err);

	if (none) {
		memset(s->bo_ptr, 0xdb, len);
		hmmgpu_cmd_copy(&cmd, BO_VA, REGION_VA + off, len);
		err = gpu_job(s, &cmd, 1);
		if (err != -EFAULT &&
		    !(s->mode == DRM_HMMGPU_VM_MODE_PINNED && err == -ENOMEM))
			soak_fail(s, "a GPU read of PROT_NONE memory at %#" PRIx64 " returned %d, "
				  "not -EFAULT\n", off, err);
	} else {
		check_pages(s, off, len, s->base + off, "CPU read of read-only memory");
		memset(s->bo_ptr, 0xdb, len);
		hmmgpu_cmd_copy(&cmd, BO_VA, REGION_VA + off, len);
		err = gpu_job(s, &cmd, 1);
		if (!err)
			check_pages(s, off, len, s->bo_ptr, "GPU read of read-only memory");
		else if (s->mode != DRM_HMMGPU_VM_MODE_PINNED || (err != -EFAULT && err != -ENOMEM))
			soak_fail(s, "a GPU read of read-only memory at %#" PRIx64 " returned %d\n",
				  off, err);
	}

	sys_ok(s, mprotect(s->base + off, len, PROT_READ | PROT_WRITE), "mprotect");
}

static void op_mprotect(struct soak *s)
{
	uint64_t off, len;
	bool none;

	igt_assert(pick_pages(s, MAPPED, 64, &off, &len));
	none = rnd(s) & 1;
	oplog(s, "mprotect [%#" PRIx64 ", +%#" PRIx64 ") %s and back", off, len,
	      none ? "PROT_NONE" : "PROT_READ");
	mprotect_part(s, off, len, none);
}

static void write_byte(int pipe_fd)
{
	igt_assert_eq(write(pipe_fd, "x", 1), 1);
}

static bool read_byte(int pipe_fd)
{
	char b;

	return read(pipe_fd, &b, 1) == 1;
}

/*
 * fork(): the child's GPU jobs fault on the parent's memory; the child sees
 * the parent's data and writes some of it; then the parent's GPU writes
 * some, which must not reach the child's copies of private pages. The
 * child's writes to shared memory are the parent's too, those to private
 * memory are not.
 */
static void op_fork(struct soak *s)
{
	uint64_t woff[4], wlen[4], coff, clen, goff, glen, foff, flen;
	uint32_t wval[4], fval;
	int to_child[2], to_parent[2];
	struct drm_hmmgpu_cmd cmd;
	unsigned int n;
	int err;

	n = 1 + rnd_below(s, 4);
	for (unsigned int i = 0; i < n; i++) {
		igt_assert(pick_words(s, 4 * page, &woff[i], &wlen[i]));
		wval[i] = rnd32(s);
	}
	igt_assert(pick_pages(s, MAPPED, 1, &goff, &glen));
	goff += rnd_below(s, page / 8) * 8;
	igt_assert(pick_pages(s, MAPPED, s->npages, &coff, &clen));
	igt_assert(pick_words(s, 16 * page, &foff, &flen));
	fval = rnd32(s);
	oplog(s, "fork: the child checks [%#" PRIx64 ", +%#" PRIx64 "), makes %u writes, "
	      "first [%#" PRIx64 ", +%#" PRIx64 ") %#x; the parent GPU-fills [%#" PRIx64
	      ", +%#" PRIx64 ")", coff, clen, n, woff[0], wlen[0], wval[0], foff, flen);

	igt_assert_eq(pipe(to_child), 0);
	igt_assert_eq(pipe(to_parent), 0);
	igt_fork(child, 1) {
		uint64_t pfirst = page_of(foff), plast = page_of(foff + flen - 1);

		s->in_child = true;
		close(to_child[1]);
		close(to_parent[0]);
		hmmgpu_cmd_write64(&cmd, REGION_VA + goff, 0xc41dc41dc41dc41dull);
		err = gpu_job(s, &cmd, 1);
		if (err != -EFAULT)
			soak_fail(s, "the child's GPU write to the parent's memory at %#" PRIx64
				  " returned %d, not -EFAULT\n", goff, err);
		check_pages(s, coff, clen, s->base + coff, "CPU read in the child");
		for (unsigned int i = 0; i < n; i++) {
			for (uint64_t j = 0; j < wlen[i] / 4; j++)
				((uint32_t *)(s->base + woff[i]))[j] = wval[i];
			model_fill32(s, woff[i], wlen[i], wval[i]);
		}

		write_byte(to_parent[1]);
		igt_assert(read_byte(to_child[0]));
		/* The parent's GPU wrote its own private pages, not the child's. */
		for (uint64_t p = pfirst; p <= plast; p++)
			if (s->backing[p] == BK_ANON)
				check_pages(s, p * page, page, s->base + p * page,
					    "CPU read in the child after the parent's GPU write");
	}
	close(to_child[0]);
	close(to_parent[1]);

	if (!read_byte(to_parent[0]))
		igt_waitchildren(); /* The child failed: report how. */
	for (unsigned int i = 0; i < n; i++) {
		for (uint64_t p = page_of(woff[i]); p <= page_of(woff[i] + wlen[i] - 1); p++) {
			uint64_t from = woff[i] > p * page ? woff[i] : p * page;
			uint64_t to = min_u64(woff[i] + wlen[i], (p + 1) * page);

			if (s->backing[p] == BK_SHARED || s->backing[p] == BK_FILE)
				model_fill32(s, from, to - from, wval[i]);
		}
	}
	hmmgpu_cmd_fill(&cmd, REGION_VA + foff, flen, fval);
	err = gpu_job(s, &cmd, 1);
	if (!err)
		model_fill32(s, foff, flen, fval);

	/* Let the child check even when the fill failed, so that it ends. */
	write_byte(to_child[1]);
	close(to_child[1]);
	close(to_parent[0]);
	igt_waitchildren();
	if (err)
		soak_fail(s, "GPU fill while a child of fork lives: the GPU job failed: %d (%s)\n",
			  err, strerror(-err));
}

/* Splits a huge page: one page of it goes, changes protection, or is mapped afresh. */
static void op_thp_split(struct soak *s)
{
	uint64_t off = rnd_below(s, THP_SIZE / page) * page;
	uint64_t how = rnd_below(s, 3);

	if (s->backing[page_of(off)] == BK_NONE)
		return skip_op(s);
	switch (how) {
	case 0:
		oplog(s, "thp-split: dontneed page %#" PRIx64, off);
		dontneed(s, off, page);
		break;
	case 1:
		oplog(s, "thp-split: mprotect PROT_READ page %#" PRIx64 " and back", off);
		mprotect_part(s, off, page, false);
		break;
	default:
		oplog(s, "thp-split: remap page %#" PRIx64, off);
		map_part(s, off, page, BK_ANON, MAP_FIXED);
		break;
	}
}

/*
 * A fresh huge page: 2 MiB of the huge-page part mapped again, private, and
 * written whole by the CPU (the events split huge pages and leave shared
 * memory and holes behind; this brings them back).
 */
static void op_thp_refresh(struct soak *s)
{
	uint64_t off = rnd_below(s, THP_SIZE / SZ_2M) * SZ_2M;
	bool holes = false;

	for (uint64_t p = page_of(off); p < page_of(off + SZ_2M); p++)
		holes |= s->backing[p] == BK_NONE;
	oplog(s, "thp-refresh [%#" PRIx64 ", +2M)%s", off, holes ? ", filling holes" : "");
	map_part(s, off, SZ_2M, BK_ANON, MAP_FIXED);
	gen_data(s, s->tmp, SZ_2M);
	memcpy(s->base + off, s->tmp, SZ_2M);
	model_write(s, off, s->tmp, SZ_2M);
	if (holes)
		rebind(s);
}

static void op_collapse(struct soak *s)
{
	uint64_t off = rnd_below(s, THP_SIZE / SZ_2M) * SZ_2M;
	int ret;

	if (!all_backed(s, off, SZ_2M, BK_ANON))
		return skip_op(s);
	ret = madvise(s->base + off, SZ_2M, MADV_COLLAPSE);
	/* It may not succeed (EAGAIN, ENOMEM, EINVAL over several mappings): the data stays. */
	oplog(s, "collapse [%#" PRIx64 ", +2M): %s", off, ret ? strerror(errno) : "done");
	errno = 0;
}

static void op_compact(struct soak *s)
{
	oplog(s, "compact");
	if (!write_file("/proc/sys/vm/compact_memory", "1"))
		soak_fail(s, "writing /proc/sys/vm/compact_memory failed\n");
}

#define KSM_RUN		"/sys/kernel/mm/ksm/run"

/*
 * KSM: identical pages with ksmd started, which then merges them while the
 * operations that follow run (and the GPU writes merged pages); or ksmd
 * stopped, merged pages staying merged; or every merged page unmerged.
 */
static void op_ksm(struct soak *s)
{
	uint64_t off, len, how = rnd_below(s, 4);
	uint32_t value;

	if (how >= 2) {
		oplog(s, "ksm: %s", how == 2 ? "stop ksmd" : "unmerge all");
		if (!write_file(KSM_RUN, how == 2 ? "0" : "2"))
			soak_fail(s, "writing %s to %s failed\n", how == 2 ? "0" : "2", KSM_RUN);
		return;
	}
	if (!pick_pages(s, MASK(BK_ANON), 32, &off, &len))
		return skip_op(s);
	value = rnd32(s) & 0xff;
	oplog(s, "ksm: [%#" PRIx64 ", +%#" PRIx64 ") all %#x, ksmd runs (%" PRIu64 " pages "
	      "sharing)", off, len, value, read_u64_file("/sys/kernel/mm/ksm/pages_sharing"));
	for (uint64_t i = 0; i < len / 4; i++)
		((uint32_t *)(s->base + off))[i] = value;
	model_fill32(s, off, len, value);
	igt_ignore_warn(write_file("/sys/kernel/mm/ksm/pages_to_scan", "256"));
	igt_ignore_warn(write_file("/sys/kernel/mm/ksm/sleep_millisecs", "20"));
	if (!write_file(KSM_RUN, "1"))
		soak_fail(s, "starting ksmd failed\n");
}

/*
 * Moves the pages of [@off, @off + @len), at most 64, to the next NUMA node;
 * returns what move_pages() returned, and the status of the first page.
 */
static long numa_move(struct soak *s, uint64_t off, uint64_t len, int *first)
{
	void *pages[64];
	int nodes[64], status[64];
	uint64_t n = min_u64(len / page, 64);
	long ret;

	s->numa_node = (s->numa_node + 1) % feat.numa_nodes;
	for (uint64_t i = 0; i < n; i++) {
		pages[i] = s->base + off + i * page;
		nodes[i] = s->numa_node;
		status[i] = -1;
	}
	ret = syscall(SYS_move_pages, 0, (unsigned long)n, pages, nodes, status,
		      SOAK_MPOL_MF_MOVE);
	*first = status[0];
	errno = 0;
	return ret;
}

static void op_numa(struct soak *s)
{
	uint64_t off, len;
	int first;
	long ret;

	igt_assert(pick_pages(s, MAPPED, 64, &off, &len));
	ret = numa_move(s, off, len, &first);
	/* Pages that cannot move (pinned, shared) stay: the data must be the same either way. */
	oplog(s, "numa: move [%#" PRIx64 ", +%#" PRIx64 ") to node %d: %ld, first %d", off, len,
	      s->numa_node, ret, first);
}

static void op_writeback(struct soak *s)
{
	unsigned int n = find_runs(s, MASK(BK_FILE));

	if (!n)
		return skip_op(s);
	oplog(s, "writeback: fsync, drop_caches, pageout of %u file runs", n);
	sys_ok(s, fsync(s->file_fd), "fsync");
	if (feat.drop_caches && !write_file("/proc/sys/vm/drop_caches", "1"))
		soak_fail(s, "writing /proc/sys/vm/drop_caches failed\n");
	if (feat.pageout)
		for (unsigned int i = 0; i < n; i++)
			advise(s, s->runs[i].off, s->runs[i].len, MADV_PAGEOUT, "MADV_PAGEOUT");
}

/* Reclaim of the test's memory cgroup: what it frees must be what may go. */
static void op_memcg_reclaim(struct soak *s)
{
	uint64_t kb = 64 << rnd_below(s, 7);
	char amount[32];
	bool ok;

	snprintf(amount, sizeof(amount), "%" PRIu64 "K", kb);
	ok = write_file(CGROUP "/memory.reclaim", amount);
	/* -EAGAIN when less than asked could go, which is fine. */
	oplog(s, "memcg-reclaim %s: %s", amount, ok ? "done" : "less");
}

/*
 * Submits @n commands as one job; returns where its end is seen (its fence's
 * sync object, or its user fence in fault mode).
 */
static struct hmmgpu_done *gpu_submit(struct soak *s, const struct drm_hmmgpu_cmd *cmds,
				      unsigned int n)
{
	struct hmmgpu_done *done = hmmgpu_done_create(s->fd, s->mode);
	struct drm_hmmgpu_sync syncs[2] = {
		hmmgpu_done_signal(done),
		hmmgpu_sync_wait(s->bind_sync),
	};
	struct drm_hmmgpu_exec exec = {
		.vm_id = s->vm,
		.cmds = (uintptr_t)cmds,
		.cmd_count = n,
		.syncs = (uintptr_t)syncs,
		.num_syncs = s->bind_pending ? 2 : 1,
	};
	int err;

	s->bind_pending = false;

	err = __hmmgpu_exec(s->fd, &exec);
	if (err)
		soak_fail(s, "submitting a GPU job failed: %d\n", err);
	return done;
}

/* Waits for the job of @done (longer than any job may run); returns its error. */
static int gpu_wait_job(struct hmmgpu_done *done)
{
	int64_t timeout = (HMMGPU_EXEC_DEFAULT_TIMEOUT_MS + 10000ll) * 1000000;
	int32_t error = 0;
	int err;

	err = __hmmgpu_done_wait(done, timeout, &error);
	hmmgpu_done_destroy(done);
	errno = 0;
	return err ?: error;
}

enum race {
	RACE_CPU_WRITE,
	RACE_PAGEOUT,
	RACE_COLD,
	RACE_NUMA,
	RACE_MEMCG,
	RACE_COMPACT,
	NUM_RACES,
};

static const char *const race_names[] = {
	"CPU writes to the same pages", "pageout", "cold", "NUMA migration", "memcg reclaim",
	"compaction",
};

/*
 * An event while a GPU job writes: the job fills part of the region and,
 * before it is waited for, the CPU writes the other bytes of the pages it
 * fills, or reclaim, migration or compaction takes those pages. The job
 * must succeed, and every write, the GPU's and the CPU's, must land.
 */
static void op_gpu_race(struct soak *s)
{
	uint32_t data[1024], value;
	struct hmmgpu_done *done;
	uint64_t off, len, poff, plen, woff, wlen;
	struct drm_hmmgpu_cmd cmd;
	enum race race;
	bool cpu_check;
	int err, first, event_err = 0;

	igt_assert(pick_words(s, SZ_1M, &off, &len));
	page_span(off, len, &poff, &plen);
	value = rnd32(s);
	race = rnd_below(s, NUM_RACES);
	cpu_check = rnd(s) & 1;
	/* What the guest cannot do becomes CPU writes. */
	if (((race == RACE_PAGEOUT || race == RACE_COLD) && !feat.pageout) ||
	    (race == RACE_NUMA && !feat.numa) || (race == RACE_MEMCG && !feat.memcg) ||
	    (race == RACE_COMPACT && !feat.compact))
		race = RACE_CPU_WRITE;
	/* The CPU writes the bytes of the first or the last page that the GPU does not. */
	if (off > poff) {
		woff = poff;
		wlen = off - poff;
	} else {
		woff = off + len;
		wlen = poff + plen - woff;
	}
	wlen = min_u64(wlen, sizeof(data));
	for (uint64_t i = 0; i < wlen / 4; i++)
		data[i] = hmmgpu_pattern(value, i);
	oplog(s, "gpu-race: GPU fill [%#" PRIx64 ", +%#" PRIx64 ") %#x during %s", off, len,
	      value, race_names[race]);

	hmmgpu_cmd_fill(&cmd, REGION_VA + off, len, value);
	done = gpu_submit(s, &cmd, 1);
	switch (race) {
	case RACE_CPU_WRITE:
		if (wlen)
			memcpy(s->base + woff, data, wlen);
		break;
	case RACE_PAGEOUT:
	case RACE_COLD:
		if (madvise(s->base + poff, plen, race == RACE_PAGEOUT ? MADV_PAGEOUT : MADV_COLD))
			event_err = errno;
		break;
	case RACE_NUMA:
		numa_move(s, poff, plen, &first);
		break;
	case RACE_MEMCG:
		igt_ignore_warn(write_file(CGROUP "/memory.reclaim", "1M"));
		break;
	case RACE_COMPACT:
		igt_ignore_warn(write_file("/proc/sys/vm/compact_memory", "1"));
		break;
	case NUM_RACES:
		break;
	}
	err = gpu_wait_job(done);
	if (err)
		soak_fail(s, "a GPU fill during %s failed: %d (%s)\n", race_names[race], err,
			  strerror(-err));
	if (event_err)
		soak_fail(s, "madvise() during a GPU fill failed: %s\n", strerror(event_err));
	model_fill32(s, off, len, value);
	if (race == RACE_CPU_WRITE && wlen)
		model_write(s, woff, data, wlen);

	if (cpu_check)
		check_pages(s, poff, plen, s->base + poff, "CPU read after a GPU fill during an event");
	else
		gpu_read_at(s, REGION_VA + poff, poff, plen, "GPU read after a GPU fill during an event");
}

static void op_rebind(struct soak *s)
{
	oplog(s, "rebind");
	rebind(s);
}

/* Whether every page of [@off, @off + @len) is mapped. */
static bool all_mapped(struct soak *s, uint64_t off, uint64_t len)
{
	for (uint64_t p = page_of(off); p < page_of(off + len); p++)
		if (s->backing[p] == BK_NONE)
			return false;
	return true;
}

/*
 * A hole punched in a binding and bound again: an unmap of part of one
 * userptr's mapping (in the huge pages, mostly cutting 2 MiB entries)
 * leaves pieces that must go on reading what the CPU has, then the hole is
 * bound with a userptr of its own. Half the time both binds are fenced: then
 * the unmap waits for a sw_sync fence (where the guest has sw_sync) while a
 * job reads a piece, its entries not cleared yet, and another job, submitted
 * then but waiting for the unmap's fence, reads it after the turn; the map
 * waits in its call for the entries to be cleared.
 */
static void op_punch_bind(struct soak *s)
{
	uint64_t pages, off, len, piece, piece_len;
	struct hmmgpu_done *queued = NULL;
	struct drm_hmmgpu_cmd cmd;
	struct binding *b;
	int err, tl = -1;

	if (!s->nbinds || s->nbinds >= MAX_BINDS)
		return skip_op(s);
	b = &s->binds[rnd_below(s, s->nbinds)];
	pages = b->len / page;
	if (pages < 2)
		return skip_op(s);
	len = (1 + rnd_below(s, min_u64(pages - 1, 256))) * page;
	off = b->off + rnd_below(s, pages - len / page + 1) * page;
	/* The piece before the hole, or after it if there is none before. */
	piece = off > b->off ? b->off : off + len;
	piece_len = off > b->off ? off - b->off : b->off + b->len - piece;
	piece_len = min_u64(piece_len, 64 * page);
	s->fenced = rnd_below(s, 2) == 0;
	oplog(s, "punch-bind [%#" PRIx64 ", +%#" PRIx64 ") of [%#" PRIx64 ", +%#" PRIx64 ")%s",
	      off, len, b->off, b->len, s->fenced ? ", fenced" : "");
	if (s->fenced) {
		struct drm_hmmgpu_vm_bind_op op = hmmgpu_bind_op_unmap(REGION_VA + off, len);
		struct drm_hmmgpu_sync syncs[2] = { fenced_sync(s) };
		uint32_t hold = 0;

		/* The next job would wait for the held unmap: let it wait for the bind before. */
		if (s->bind_pending)
			igt_assert_eq(hmmgpu_wait(s->fd, s->bind_sync, 60ll * NSEC_PER_SEC), 0);
		s->bind_pending = false;
		tl = sw_sync_hold(s->fd, &hold);
		syncs[1] = hmmgpu_sync_wait(hold);
		err = __hmmgpu_vm_bind_async(s->fd, s->vm, &op, 1, syncs, tl < 0 ? 1 : 2);
		if (err)
			soak_fail(s, "a fenced unmap of [%#" PRIx64 ", +%#" PRIx64 ") failed: %d\n",
				  off, len, err);
		/* Pieces are mapped from the call on: no need to wait for the unmap. */
		if (piece_len && all_mapped(s, piece, piece_len))
			gpu_read_at(s, REGION_VA + piece, piece, piece_len,
				    "GPU read of a piece left by a held fenced unmap");
		/* A job queued behind the held unmap reads the piece once the turn came. */
		if (tl >= 0 && piece_len && all_mapped(s, piece, piece_len)) {
			hmmgpu_cmd_copy(&cmd, BO_VA, REGION_VA + piece, piece_len);
			memset(s->bo_ptr, 0xdb, piece_len);
			s->bind_pending = true;
			queued = gpu_submit(s, &cmd, 1);
		}
		if (tl >= 0) {
			sw_sync_release(tl);
			close(tl);
			syncobj_destroy(s->fd, hold);
		}
		if (queued) {
			const char *how = "GPU read of a piece by a job queued behind a fenced unmap";

			err = gpu_wait_job(queued);
			if (err)
				soak_fail(s, "%s: the GPU job failed: %d (%s)\n", how, err,
					  strerror(-err));
			check_pages(s, piece, piece_len, s->bo_ptr, how);
		}
	} else {
		hmmgpu_vm_unmap(s->fd, s->vm, REGION_VA + off, len);
	}
	bind(s, off, len);
	s->bind_pending = s->fenced;
}

static const struct {
	const char *name;
	void (*fn)(struct soak *s);
	unsigned int weight;
} ops[NUM_OPS] = {
	[OP_CPU_WRITE] = { "cpu-write", op_cpu_write, 10 },
	[OP_CPU_CHECK] = { "cpu-check", op_cpu_check, 8 },
	[OP_GPU_FILL] = { "gpu-fill", op_gpu_fill, 8 },
	[OP_GPU_WRITE64] = { "gpu-write64", op_gpu_write64, 8 },
	[OP_GPU_UPLOAD] = { "gpu-upload", op_gpu_upload, 8 },
	[OP_GPU_COPY] = { "gpu-copy", op_gpu_copy, 6 },
	[OP_GPU_CHECK] = { "gpu-check", op_gpu_check, 10 },
	[OP_GPU_CHECKSUM] = { "gpu-checksum", op_gpu_checksum, 4 },
	[OP_MADV_FREE] = { "madv-free", op_madv_free, 5 },
	[OP_PAGEOUT] = { "pageout", op_pageout, 5 },
	[OP_COLD] = { "cold", op_cold, 2 },
	[OP_FREE_WRITE_RECLAIM] = { "free-write-reclaim", op_free_write_reclaim, 4 },
	[OP_DONTNEED] = { "dontneed", op_dontneed, 3 },
	[OP_HOLE] = { "hole", op_hole, 2 },
	[OP_FILL_HOLE] = { "fill-hole", op_fill_hole, 3 },
	[OP_REMAP] = { "remap", op_remap, 2 },
	[OP_MREMAP] = { "mremap", op_mremap, 2 },
	[OP_MPROTECT] = { "mprotect", op_mprotect, 2 },
	[OP_FORK] = { "fork", op_fork, 1 },
	[OP_THP_SPLIT] = { "thp-split", op_thp_split, 2 },
	[OP_THP_REFRESH] = { "thp-refresh", op_thp_refresh, 1 },
	[OP_COLLAPSE] = { "collapse", op_collapse, 1 },
	[OP_COMPACT] = { "compact", op_compact, 1 },
	[OP_KSM] = { "ksm", op_ksm, 1 },
	[OP_NUMA] = { "numa", op_numa, 2 },
	[OP_WRITEBACK] = { "writeback", op_writeback, 2 },
	[OP_MEMCG_RECLAIM] = { "memcg-reclaim", op_memcg_reclaim, 1 },
	[OP_GPU_RACE] = { "gpu-race", op_gpu_race, 4 },
	[OP_REBIND] = { "rebind", op_rebind, 1 },
	[OP_PUNCH_BIND] = { "punch-bind", op_punch_bind, 2 },
};

/* Whether @name is in the comma-separated @list. */
static bool in_list(const char *list, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = list; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		if (!strncmp(p, name, len) && (p[len] == ',' || !p[len]))
			return true;
	return false;
}

/* Whether the guest can do @op at all, and it was not turned off (the same for the whole run). */
static bool op_available(enum op op)
{
	if (in_list(opt_without, ops[op].name))
		return false;

	switch (op) {
	case OP_MADV_FREE:
		return feat.free;
	case OP_PAGEOUT:
	case OP_COLD:
		return feat.pageout;
	case OP_FREE_WRITE_RECLAIM:
		return feat.free && feat.pageout;
	case OP_THP_SPLIT:
	case OP_THP_REFRESH:
		return feat.thp;
	case OP_COLLAPSE:
		return feat.collapse;
	case OP_COMPACT:
		return feat.compact;
	case OP_KSM:
		return feat.ksm;
	case OP_NUMA:
		return feat.numa;
	case OP_WRITEBACK:
		return feat.ext4;
	case OP_MEMCG_RECLAIM:
		return feat.memcg;
	default:
		return true;
	}
}

static enum op pick_op(struct soak *s)
{
	unsigned int total = 0, r;

	for (int i = 0; i < NUM_OPS; i++)
		if (op_available(i))
			total += ops[i].weight;
	r = rnd_below(s, total);
	for (int i = 0; i < NUM_OPS; i++) {
		if (!op_available(i))
			continue;
		if (r < ops[i].weight)
			return i;
		r -= ops[i].weight;
	}
	igt_assert(0);
}

/* Setup and the run of one mode. */

static void *reserve(uint64_t size)
{
	void *ptr = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			 -1, 0);

	igt_assert(ptr != MAP_FAILED);
	return ptr;
}

static void soak_init(struct soak *s, const struct hmmgpu_vm_mode *m, uint64_t seed)
{
	char path[64];

	memset(s, 0, sizeof(*s));
	s->mode = m->flags;
	s->mode_name = m->name;
	s->seed = seed;
	s->rng = seed;
	s->file_fd = -1;
	s->npages = REGION_SIZE / page;

	s->shadow = malloc(REGION_SIZE);
	s->alt = malloc(REGION_SIZE);
	s->tmp = malloc(REGION_SIZE);
	s->state = calloc(s->npages, 1);
	s->backing = calloc(s->npages, 1);
	s->uncertain = calloc(s->npages, 1);
	s->runs = calloc(s->npages, sizeof(*s->runs));
	igt_assert(s->shadow && s->alt && s->tmp && s->state && s->backing && s->uncertain &&
		   s->runs);

	s->fd = drm_open_driver_render(DRIVER_HMMGPU);
	s->vm = hmmgpu_vm_create(s->fd, s->mode);
	s->bind_sync = syncobj_create(s->fd, 0);
	s->bo_size = RESULT_OFF + page;
	s->bo = hmmgpu_gem_create(s->fd, s->bo_size);
	s->bo_ptr = hmmgpu_gem_mmap(s->fd, s->bo, s->bo_size, PROT_READ | PROT_WRITE);
	hmmgpu_vm_map(s->fd, s->vm, s->bo, 0, BO_VA, s->bo_size, 0);

	s->res_size = REGION_SIZE + SZ_2M;
	s->res = reserve(s->res_size);
	s->base = (uint8_t *)ALIGN((uintptr_t)s->res, (uintptr_t)SZ_2M);
	s->sres_size = REGION_SIZE + 2 * SZ_2M;
	s->sres = reserve(s->sres_size);
	s->scratch = (uint8_t *)ALIGN((uintptr_t)s->sres, (uintptr_t)SZ_2M);
	/* From here on, a failure leaves what soak_reap() cleans up. */
	s->live = true;

	if (feat.ext4) {
		snprintf(path, sizeof(path), "/mnt/ext4/hmmgpu-soak.%d", getpid());
		s->file_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		igt_assert_f(s->file_fd >= 0, "creating %s failed\n", path);
		unlink(path);
		igt_assert_eq(ftruncate(s->file_fd, REGION_SIZE), 0);
	}

	/* All of it private memory, with data. */
	map_part(s, 0, REGION_SIZE, BK_ANON, MAP_FIXED);
	gen_data(s, s->tmp, REGION_SIZE);
	memcpy(s->base, s->tmp, REGION_SIZE);
	model_write(s, 0, s->tmp, REGION_SIZE);
	rebind(s);
}

static void soak_free(struct soak *s)
{
	s->live = false;
	if (s->file_fd >= 0)
		close(s->file_fd);
	free(s->shadow);
	free(s->alt);
	free(s->tmp);
	free(s->state);
	free(s->backing);
	free(s->uncertain);
	free(s->runs);
}

static void soak_fini(struct soak *s)
{
	unbind_all(s);
	hmmgpu_vm_destroy(s->fd, s->vm);
	syncobj_destroy(s->fd, s->bind_sync);
	igt_assert_eq(munmap(s->bo_ptr, s->bo_size), 0);
	gem_close(s->fd, s->bo);
	drm_close_driver(s->fd);
	igt_assert_eq(munmap(s->res, s->res_size), 0);
	igt_assert_eq(munmap(s->sres, s->sres_size), 0);
	soak_free(s);
}

/* What a failed mode left: closing the file destroys its VM and objects. */
static void soak_reap(struct soak *s)
{
	munmap(s->bo_ptr, s->bo_size);
	close(s->fd);
	munmap(s->res, s->res_size);
	munmap(s->sres, s->sres_size);
	soak_free(s);
	errno = 0;
}

/* Every mapped page, by the CPU, and by the GPU when @gpu. */
static void check_all(struct soak *s, bool gpu, const char *cpu_how, const char *gpu_how)
{
	unsigned int n = find_runs(s, MAPPED);
	struct run runs[MAX_HOLES + 1];

	igt_assert(n <= ARRAY_SIZE(runs));
	memcpy(runs, s->runs, n * sizeof(*runs));
	for (unsigned int i = 0; i < n; i++) {
		check_pages(s, runs[i].off, runs[i].len, s->base + runs[i].off, cpu_how);
		if (gpu)
			gpu_read_at(s, REGION_VA + runs[i].off, runs[i].off, runs[i].len, gpu_how);
	}
}

static void check_pins(uint64_t acquired0, uint64_t released0, const struct soak *s)
{
	char what[64];
	uint64_t acquired;

	snprintf(what, sizeof(what), "%s mode, seed %" PRIu64, s->mode_name, s->seed);
	acquired = hmmgpu_assert_pins_balanced(acquired0, released0, what);
	if (s->mode == DRM_HMMGPU_VM_MODE_PINNED)
		igt_assert_lt_u64(0, acquired);
}

static struct soak soak_state;

static void soak(const struct hmmgpu_vm_mode *m, uint64_t seed)
{
	struct soak *sp = &soak_state;
	struct drm_hmmgpu_vm_stats st;
	uint64_t acquired0 = 0, released0 = 0;
	double seconds = opt_seconds;
	struct timespec start;
	char counts[1024];
	int n = 0;

	if (sp->live)
		soak_reap(sp);
	/* ksmd runs from a KSM event to the end of the mode (or a failure). */
	if (feat.ksm)
		igt_ignore_warn(write_file(KSM_RUN, "0"));
	if (seconds < 0)
		seconds = opt_ops ? 0 : DEFAULT_SECONDS;
	igt_info("seed: %" PRIu64 " (%s mode)\n", seed, m->name);
	if (seconds && opt_ops)
		igt_info("%s: %" PRIu64 " operations, or %.1f s\n", m->name, opt_ops, seconds);
	else if (opt_ops)
		igt_info("%s: %" PRIu64 " operations\n", m->name, opt_ops);
	else
		igt_info("%s: %.1f s\n", m->name, seconds);

	if (feat.pins)
		igt_assert(hmmgpu_read_pin_counters(&acquired0, &released0));

	soak_init(sp, m, seed);
	igt_gettime(&start);
	while ((!opt_ops || sp->nops < opt_ops) && (!seconds || elapsed_s(&start) < seconds)) {
		struct timespec op_start;
		enum op op;

		sp->nops++;
		op = pick_op(sp);
		snprintf(sp->log[sp->nops % LOG_LINES], LOG_LEN, "op %" PRIu64 ": %s", sp->nops,
			 ops[op].name);
		sp->skipped = false;
		igt_gettime(&op_start);
		ops[op].fn(sp);
		sp->ns[op] += igt_nsec_elapsed(&op_start);
		if (sp->skipped) {
			sp->nops--;
			continue;
		}
		sp->counts[op]++;
		if (opt_verify)
			check_all(sp, opt_verify > 1, "CPU read verifying the last operation",
				  "GPU read verifying the last operation");
	}
	sp->nops++;
	oplog(sp, "final check, CPU and GPU");
	check_all(sp, true, "final CPU read", "final GPU read");
	if (feat.ksm)
		igt_ignore_warn(write_file(KSM_RUN, "0"));

	hmmgpu_vm_stats(sp->fd, sp->vm, &st);
	for (int i = 0; i < NUM_OPS; i++)
		if (sp->counts[i])
			n += snprintf(counts + n, sizeof(counts) - n, "%s%s %" PRIu64,
				      n ? ", " : "", ops[i].name, sp->counts[i]);
	igt_info("%s: %" PRIu64 " operations in %.1f s, seed %" PRIu64 ": %s\n", m->name,
		 sp->nops, elapsed_s(&start), seed, counts);
	n = 0;
	for (int i = 0; i < NUM_OPS; i++)
		if (sp->counts[i])
			n += snprintf(counts + n, sizeof(counts) - n, "%s%s %.2f", n ? ", " : "",
				      ops[i].name, sp->ns[i] / 1e9);
	igt_info("%s: seconds per kind of operation: %s\n", m->name, counts);
	igt_info("%s: GPU faults %llu (2 MiB %llu), entries written %llu (2 MiB %llu), "
		 "invalidations %llu, retries %llu, jobs done %llu, failed %llu\n", m->name,
		 (unsigned long long)st.faults, (unsigned long long)st.faults_2m,
		 (unsigned long long)(st.entries_4k + st.entries_2m),
		 (unsigned long long)st.entries_2m, (unsigned long long)st.invalidations,
		 (unsigned long long)st.retries, (unsigned long long)st.jobs_done,
		 (unsigned long long)st.jobs_failed);
	soak_fini(sp);

	if (feat.pins)
		check_pins(acquired0, released0, sp);
}

static int opt_handler(int opt, int opt_index, void *data)
{
	(void)opt_index;
	(void)data;

	switch (opt) {
	case 's':
		opt_seconds = strtod(optarg, NULL);
		break;
	case 'S':
		opt_seed = strtoull(optarg, NULL, 0);
		opt_seed_given = true;
		break;
	case 'n':
		opt_ops = strtoull(optarg, NULL, 0);
		break;
	case 'w':
		opt_without = optarg;
		break;
	case 'v':
		opt_verify = atoi(optarg);
		break;
	default:
		return IGT_OPT_HANDLER_ERROR;
	}
	return IGT_OPT_HANDLER_SUCCESS;
}

static const struct option long_opts[] = {
	{ "seconds", required_argument, NULL, 's' },
	{ "seed", required_argument, NULL, 'S' },
	{ "ops", required_argument, NULL, 'n' },
	{ "without", required_argument, NULL, 'w' },
	{ "verify", required_argument, NULL, 'v' },
	{ NULL, 0, NULL, 0 },
};

static const char help_str[] =
	"  --seconds N  run each mode for N seconds (HMMGPU_SOAK_SECONDS; default 4,\n"
	"               0 for no limit with --ops)\n"
	"  --ops N      stop each mode after N operations (HMMGPU_SOAK_OPS)\n"
	"  --seed N     seed of the operations (HMMGPU_SOAK_SEED; default: from the clock)\n"
	"  --without A,B  leave out these operations (HMMGPU_SOAK_WITHOUT), e.g. madv-free\n"
	"  --verify N   after every operation check the whole region from the CPU (1),\n"
	"               and from the GPU too (2): finds the operation that went wrong\n"
	"               (HMMGPU_SOAK_VERIFY)\n";

/* An environment variable, NULL when unset or empty. */
static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* What the options did not set, from the environment; a seed from the clock. */
static void read_env(void)
{
	if (opt_seconds < 0 && env("HMMGPU_SOAK_SECONDS"))
		opt_seconds = strtod(env("HMMGPU_SOAK_SECONDS"), NULL);
	if (!opt_ops && env("HMMGPU_SOAK_OPS"))
		opt_ops = strtoull(env("HMMGPU_SOAK_OPS"), NULL, 0);
	if (!opt_without)
		opt_without = env("HMMGPU_SOAK_WITHOUT");
	if (!opt_verify && env("HMMGPU_SOAK_VERIFY"))
		opt_verify = atoi(env("HMMGPU_SOAK_VERIFY"));
	if (!opt_seed_given && env("HMMGPU_SOAK_SEED")) {
		opt_seed = strtoull(env("HMMGPU_SOAK_SEED"), NULL, 0);
		opt_seed_given = true;
	}
	if (!opt_seed_given) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		opt_seed = ((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec ^
			   ((uint64_t)getpid() << 20);
		opt_seed %= 1000000000000ull;
	}
}

igt_main_args("", long_opts, help_str, opt_handler, NULL)
{
	/* Static: changed inside subtests, between sigsetjmp() and siglongjmp(). */
	static const struct hmmgpu_vm_mode *m;

	igt_fixture {
		page = sysconf(_SC_PAGESIZE);
		fd = hmmgpu_open_vm_device();
		hmmgpu_raise_memlock();
		read_env();
		detect_features();
	}

	igt_describe("Random GPU and CPU reads and writes of a region checked against a "
		     "shadow copy, interleaved with random memory-management events, in "
		     "each VM mode; prints its seed, and the last operations on a mismatch.");
	igt_subtest_with_dynamic("soak") {
		for_each_hmmgpu_vm_mode_dynamic(fd, m)
			soak(m, opt_seed);
	}

	igt_fixture {
		/* A failure leaves ksmd running: the tests after this one want it stopped. */
		if (feat.ksm)
			igt_ignore_warn(write_file(KSM_RUN, "0"));
		if (feat.memcg)
			leave_memcg();
		drm_close_driver(fd);
	}
}
