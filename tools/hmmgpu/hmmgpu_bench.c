// SPDX-License-Identifier: MIT
/*
 * What `make bench` measures: what mirroring process memory into hmmgpu's GPU
 * page table costs, side by side with the kernel's own ways of doing the same
 * work on the same memory. The guest runs under TCG, where absolute times say
 * little about hardware; the ratio of each figure to its reference says how
 * the driver's code compares with the kernel's for the same job:
 *
 *  a. read      populate a CPU-filled buffer and read every byte: VM_BIND of a
 *               userptr plus one checksum job ("first"; the bind populates in
 *               prefault and pinned modes, the job faults in fault mode), and
 *               the same job again ("second"), against test_hmm's
 *               HMM_DMIRROR_READ on a fresh /dev/hmm_dmirror0 and again, and
 *               against the CPU summing the same 32-bit words;
 *  b. pin       a pinned-mode bind and unbind of populated pages against
 *               gup_test's PIN_LONGTERM_BENCHMARK (512 pages a call, FOLL_WRITE),
 *               which times itself in the kernel: the round trip of a
 *               VM_STATS ioctl says what a bind pays for the syscall besides;
 *  c. copy/fill the engine's Copy and Fill in steady state against the
 *               kernel's copy (process_vm_readv() of our own pages, or a read
 *               of /proc/self/mem where the kernel has no process_vm_readv()),
 *               memcpy() and a loop storing the same 32-bit pattern. Each
 *               copy runs with its destination a page away from the source's
 *               offset in 2 MiB, and at the same offset: under TCG the latter
 *               (always so between huge pages) thrashes QEMU's software TLB,
 *               which is indexed by the low bits of the address, for code
 *               that alternates loads and stores: memcpy() ran 3 times
 *               slower, the kernel's byte-wise rep movsb 10 times. The
 *               engine's copy must not care;
 *  d. munmap    munmap of a range mirrored in each mode against one mirrored
 *               by test_hmm and one not mirrored at all;
 *  e. mappings  bind, unbind and jobs with 1 to 2048 mappings in a VM, against
 *               the same with one;
 *  f. storm     jobs on a 16 MiB buffer while another thread keeps
 *               invalidating one of its pages, against the same jobs without:
 *               time per job, retries and invalidations. Three storms, which
 *               reach the driver's invalidation from different paths:
 *               discarding the page (MADV_DONTNEED; "storm"), write-protecting
 *               it and back ("storm mprotect") and mapping a new zero page
 *               over it ("storm map_fixed": mmap() with MAP_FIXED);
 *  g. ranges    GPU faults on one 16 MiB buffer (A, discarded whole with
 *               MADV_DONTNEED before each job, so that the job faults all of
 *               it again) while another buffer mapped in the same fault-mode
 *               VM (B) is quiet, and while the MADV_DONTNEED storm hits one
 *               of B's pages from the other CPU: faults per second and jobs
 *               per second on A, the stormed case against the quiet one.
 *               Skipped when the device offers no fault mode;
 *  h. scale     bind, unbind and a job with N = 1000, 10000, 100000 and
 *               1000000 mappings in a fault-mode VM, each figure against the
 *               same at N = 1000: a ratio near 1 says that the cost does not
 *               grow with N, as it should not where the driver keeps the
 *               mappings in a red-black tree (an O(log n) bind and unbind, up
 *               to max_mappings a VM). Each mapping is the one page of one
 *               GEM object, read-only, at consecutive GPU pages; a VM of its
 *               own for each N, destroyed after it, so that each N starts
 *               from the same empty VM. "bind": every bind is timed, and the
 *               last 1000 (those that bring the VM from N - 1000 to N
 *               mappings; at N = 1000, all) make the figure: 10 samples, each
 *               the mean of a block of 100 consecutive binds, so that the
 *               page-table page a bind allocates every 512 pages is counted
 *               in its share (the note and the JSON give the longest single
 *               bind, and the mean of all N). "steady exec": a checksum job
 *               on the middle mapping, after an untimed one, REPS times,
 *               checked against the CPU's. "unbind": 1000 mappings spread
 *               evenly over the range, each unbound (timed) and bound again
 *               (untimed), so that the VM keeps its N mappings: samples as
 *               for bind. "unbind all": one unbind of the whole range, one
 *               sample, with its time per mapping (linear in N, not
 *               quadratic, gives a time per mapping near N = 1000's); a job
 *               on the middle mapping must then fault. N stops at -n
 *               MAPPINGS, and at the module parameter max_mappings less the
 *               result object's mapping (each skipped N is said); without the
 *               parameter, the first bind refused with -ENOSPC ends the
 *               section (a driver with a fixed limit); where the parameter
 *               allows N, such a refusal is a failure. Skipped when the
 *               device offers no fault mode. At 1000000 it binds 1.1 million
 *               times in all: about a minute under TCG, with a progress line
 *               every 5 s.
 *
 * Where hmmgpu has the writable module parameter range_locks, which chooses
 * the design of the VMs created after it is written (1: per-range locks, the
 * default; 0: the VM's sequence count alone), sections f and g take each
 * figure with both, those with 0 named "... seqonly", and compare each
 * figure with its seqonly twin (the ratio of the medians, and in the note
 * and the JSON that of the mean job times). The parameter gets its value
 * back after each section, and when the bench dies or is interrupted.
 * Without the parameter, the sections take the kernel's design only, and
 * their notes say so.
 *
 * Sections a to d run on 4 KiB pages (MADV_NOHUGEPAGE) and on THP (2 MiB
 * aligned, MADV_HUGEPAGE) at each size given on the command line, sections e
 * to g once on each, section h once (a GEM page, not THP; its size column is
 * the GPU range its N mappings cover); how much was really THP is read from
 * /proc/self/smaps.
 * Each figure is taken once untimed (a warm-up: long-term pins migrate pages
 * out of the movable zone the first time, for instance; not in section d,
 * where every run maps fresh memory), then REPS times (in sections f and g,
 * each of 20 jobs is a sample; section h samples as said above); the table
 * gives the median, the spread (min-max) and the ratio of the median to the
 * reference's. Where the VM's counters apply, the table also says what it did
 * in one timed run (GPU faults, page-table entries written): a steady figure
 * writes none.
 *
 * Time is read with rdtsc, calibrated against CLOCK_MONOTONIC at start: under
 * TCG the guest's clock may fall back to 4 ms jiffies, the TSC does not. The
 * bench runs on CPU 0, and the storm thread on CPU 1: under TCG a wakeup
 * across vCPUs may wait for the sleeping one's next tick (0 to 4 ms), so
 * scripts/guest/bench.sh puts the unbound workqueues, which run hmmgpu's
 * jobs and GPU faults, on CPU 0 as well.
 * Nothing is judged on time. The bench fails (exit status 1) only when
 * something does not work or data is wrong: every checksum is checked
 * against the CPU's, every copy and fill against what it should have
 * written, and test_hmm's reads against the buffer.
 *
 * Output: progress lines, then the table; and one line "HMMGPU-BENCH: "
 * followed by a JSON object for the run (calibration, settings) and for each
 * figure (with its raw repetitions), which scripts/bench.sh collects into
 * results.json.
 *
 * Usage: hmmgpu_bench [-r REPS] [-s SECTIONS] [-n MAPPINGS] SIZE_MIB...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <linux/types.h>
#include <xf86drm.h>

#include "hmmgpu_util.h"

/*
 * The references' uAPIs, which the kernel does not export as headers: from
 * lib/test_hmm_uapi.h and mm/gup_test.h of the guest's kernel.
 */
struct hmm_dmirror_cmd {
	__u64 addr;
	__u64 ptr;
	__u64 npages;
	__u64 cpages;
	__u64 faults;
};

#define HMM_DMIRROR_READ	_IOWR('H', 0x00, struct hmm_dmirror_cmd)
#define DMIRROR_DEV		"/dev/hmm_dmirror0"

struct gup_test {
	__u64 get_delta_usec;
	__u64 put_delta_usec;
	__u64 addr;
	__u64 size;
	__u32 nr_pages_per_call;
	__u32 gup_flags;
	__u32 test_flags;
	__u32 which_pages[8];
};

#define PIN_LONGTERM_BENCHMARK	_IOWR('g', 3, struct gup_test)
#define GUP_TEST_DEV		"/sys/kernel/debug/gup_test"
/* include/linux/mm_types.h */
#define FOLL_WRITE		0x01
#define GUP_PAGES_PER_CALL	512

#define KIB		1024ul
#define MIB		(1024ul * KIB)
#define PAGE		(4 * KIB)
#define HUGE		(2 * MIB)

/*
 * GPU addresses: 2 MiB aligned like the CPU buffers, so that 2 MiB entries
 * can map their huge pages.
 */
#define BUF_VA		0x0100000000ull
#define DST_VA		0x4000000000ull
#define RESULT_VA	0x8000000000ull

/* Section e: mappings of 64 KiB, each at its own GPU address. */
#define MAP_SIZE	(64 * KIB)
#define MAP_STRIDE	(128 * KIB)
static const unsigned int map_counts[] = { 1, 16, 256, 2048 };

/* Where the bench runs, and where its storm thread runs when the guest has that CPU. */
#define BENCH_CPU	0
#define STORM_CPU	1

/* Sections f and g. */
#define STORM_SIZE	(16 * MIB)
#define STORM_JOBS	20
#define STORM_PAUSE_US	200
#define STORM_TIMEOUT_MS 5000

/*
 * Section h: mappings of one page each, of one GEM object, at consecutive GPU pages from
 * SCALE_VA: a million of them span 4 GiB, far above RESULT_VA and the other sections' buffers.
 * At each N, SCALE_TIMED binds and as many unbinds make the figures, each sample the mean of a
 * block of SCALE_BLOCK of them.
 */
#define SCALE_VA	0x10000000000ull
#define SCALE_MOST	1000000u
#define SCALE_TIMED	1000u
#define SCALE_BLOCK	100u
#define SCALE_BLOCKS	(SCALE_TIMED / SCALE_BLOCK)
#define SCALE_PROGRESS_US 5e6
#define MAX_MAPPINGS_PARAM "/sys/module/hmmgpu/parameters/max_mappings"
static const unsigned int scale_counts[] = { SCALE_TIMED, 10000, 100000, SCALE_MOST };

/* The time limit of every other job: a checksum of 256 MiB under TCG takes seconds. */
#define JOB_TIMEOUT_MS	60000

#define MAX_SAMPLES	128
#define MAX_FIGURES	512

struct mode {
	uint32_t flag;
	const char *name;
};

static const struct mode modes[] = {
	{ DRM_HMMGPU_VM_MODE_FAULT, "fault" },
	{ DRM_HMMGPU_VM_MODE_PREFAULT, "prefault" },
	{ DRM_HMMGPU_VM_MODE_PINNED, "pinned" },
};

#define NMODES		ARRAY_SIZE(modes)

/* What failed (data, or a job under the storm) without stopping the run. */
static int failures;

static void say_failed(const char *fmt, va_list ap)
{
	printf("bench: FAILED: ");
	vprintf(fmt, ap);
	printf("\n");
}

/* Something does not work: the bench cannot go on. */
static void __attribute__((format(printf, 1, 2), noreturn)) die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say_failed(fmt, ap);
	va_end(ap);
	exit(1);
}

/* Data is wrong, or a job failed: the bench goes on, and fails at the end. */
static void __attribute__((format(printf, 1, 2))) failed(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say_failed(fmt, ap);
	va_end(ap);
	failures++;
}

/* Dies when @err (0 or -errno) is an error, naming @what. */
static void must(int err, const char *what)
{
	if (err)
		die("%s: %s", what, hmmgpu_errname(err));
}

static int sys(int ret)
{
	return ret < 0 ? -errno : 0;
}

/* Time. */

static double ticks_per_us;

static inline uint64_t ticks(void)
{
	uint64_t t;

	_mm_lfence();
	t = __rdtsc();
	_mm_lfence();
	return t;
}

static double us_since(uint64_t start)
{
	return (double)(ticks() - start) / ticks_per_us;
}

static void spin_us(double us)
{
	uint64_t start = ticks();

	while (us_since(start) < us)
		_mm_pause();
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	must(sys(clock_gettime(CLOCK_MONOTONIC, &ts)), "clock_gettime");
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

struct calibration {
	double ticks_per_us;
	double window_ms;
	long res_ns;			/* what clock_getres() says */
	long step_ns;			/* the smallest step seen of CLOCK_MONOTONIC */
	char clocksource[32];
};

/*
 * Counts TSC ticks over about 300 ms of CLOCK_MONOTONIC, from one of its
 * steps to another, so that a coarse clock costs no more than its
 * resolution over the whole window.
 */
static void calibrate(struct calibration *c)
{
	struct timespec res;
	uint64_t m0, m1, t0, t1, m;
	FILE *f;

	must(sys(clock_getres(CLOCK_MONOTONIC, &res)), "clock_getres");
	c->res_ns = res.tv_sec * 1000000000l + res.tv_nsec;
	f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
	if (!f || !fgets(c->clocksource, sizeof(c->clocksource), f))
		die("cannot read the current clocksource: %s", strerror(errno));
	fclose(f);
	c->clocksource[strcspn(c->clocksource, "\n")] = 0;

	c->step_ns = -1;
	for (int i = 0; i < 10; i++) {
		m = mono_ns();
		while ((m0 = mono_ns()) == m)
			;
		if (c->step_ns < 0 || (long)(m0 - m) < c->step_ns)
			c->step_ns = m0 - m;
	}
	t0 = ticks();
	do
		m1 = mono_ns();
	while (m1 < m0 + 300000000ull);
	t1 = ticks();
	c->window_ms = (m1 - m0) / 1e6;
	c->ticks_per_us = (double)(t1 - t0) / ((m1 - m0) / 1e3);
	ticks_per_us = c->ticks_per_us;
}

/* Figures. */

struct figure {
	char section;
	char name[40];
	const char *pages;		/* "4k", "thp", or "" */
	uint64_t size;			/* bytes of memory the figure is about */
	long thp_kb;			/* AnonHugePages of that memory (the least seen), or -1 */
	unsigned int n;
	double us[MAX_SAMPLES];
	const struct figure *refs[2];
	bool has_stats;			/* VM_STATS counters over the timed runs, in @vm */
	struct drm_hmmgpu_vm_stats vm;
	char note[160];			/* for the table */
	char extra[512];		/* more JSON members, each starting with ", " */
};

static struct figure figures[MAX_FIGURES];
static unsigned int nfigures, emitted;

static struct figure *__attribute__((format(printf, 4, 5)))
figure(char section, const char *pages, uint64_t size, const char *fmt, ...)
{
	struct figure *f;
	va_list ap;

	if (nfigures == MAX_FIGURES)
		die("more than %d figures", MAX_FIGURES);
	f = &figures[nfigures++];
	*f = (struct figure){ .section = section, .pages = pages, .size = size, .thp_kb = -1 };
	va_start(ap, fmt);
	vsnprintf(f->name, sizeof(f->name), fmt, ap);
	va_end(ap);
	return f;
}

static void compare(struct figure *f, const struct figure *ref0, const struct figure *ref1)
{
	f->refs[0] = ref0;
	f->refs[1] = ref1;
}

/* Records a sample, unless @rep is the warm-up (-1). */
static void sample(struct figure *f, int rep, double us)
{
	if (rep < 0)
		return;
	if (f->n == MAX_SAMPLES)
		die("%s: more than %d samples", f->name, MAX_SAMPLES);
	f->us[f->n++] = us;
}

static void note_thp(struct figure *f, long kb)
{
	if (f->thp_kb < 0 || kb < f->thp_kb)
		f->thp_kb = kb;
}

/* Adds what the VM counted from @before to @after to the figure, unless @rep is the warm-up. */
static void count_stats(struct figure *f, int rep, const struct drm_hmmgpu_vm_stats *before,
			const struct drm_hmmgpu_vm_stats *after)
{
	if (rep < 0)
		return;
	f->has_stats = true;
	f->vm.faults += after->faults - before->faults;
	f->vm.entries_4k += after->entries_4k - before->entries_4k;
	f->vm.entries_2m += after->entries_2m - before->entries_2m;
	f->vm.invalidations += after->invalidations - before->invalidations;
	f->vm.retries += after->retries - before->retries;
}

static void __attribute__((format(printf, 2, 3))) extra(struct figure *f, const char *fmt, ...)
{
	size_t len = strlen(f->extra);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->extra + len, sizeof(f->extra) - len, fmt, ap);
	va_end(ap);
}

/* Appends to the figure's note for the table. */
static void __attribute__((format(printf, 2, 3))) note(struct figure *f, const char *fmt, ...)
{
	size_t len = strlen(f->note);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->note + len, sizeof(f->note) - len, fmt, ap);
	va_end(ap);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const struct figure *f)
{
	double s[MAX_SAMPLES];

	if (!f->n)
		return 0;
	memcpy(s, f->us, f->n * sizeof(s[0]));
	qsort(s, f->n, sizeof(s[0]), cmp_double);
	return f->n % 2 ? s[f->n / 2] : (s[f->n / 2 - 1] + s[f->n / 2]) / 2;
}

static double minimum(const struct figure *f)
{
	double m = f->n ? f->us[0] : 0;

	for (unsigned int i = 1; i < f->n; i++)
		m = f->us[i] < m ? f->us[i] : m;
	return m;
}

static double maximum(const struct figure *f)
{
	double m = f->n ? f->us[0] : 0;

	for (unsigned int i = 1; i < f->n; i++)
		m = f->us[i] > m ? f->us[i] : m;
	return m;
}

static double mean(const struct figure *f)
{
	double sum = 0;

	for (unsigned int i = 0; i < f->n; i++)
		sum += f->us[i];
	return f->n ? sum / f->n : 0;
}

static double ratio(const struct figure *f, const struct figure *ref)
{
	double r = median(ref);

	return r > 0 ? median(f) / r : 0;
}

/* Memory. */

/*
 * A buffer 2 MiB aligned, between two PROT_NONE guards that keep it a VMA of
 * its own (so that its AnonHugePages can be read, and so that it merges with
 * nothing).
 */
struct buf {
	char *base;
	size_t span;
	uint32_t *ptr;
	size_t size;
	bool thp;
};

static void buf_alloc(struct buf *b, size_t size, bool thp)
{
	uintptr_t p;

	b->size = size;
	b->thp = thp;
	b->span = size + 2 * HUGE;
	b->base = mmap(NULL, b->span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (b->base == MAP_FAILED)
		die("mmap of %zu MiB: %s", b->span / MIB, strerror(errno));
	p = ((uintptr_t)b->base + PAGE + HUGE - 1) & ~(HUGE - 1);
	b->ptr = (uint32_t *)p;
	must(sys(mprotect(b->ptr, size, PROT_READ | PROT_WRITE)), "mprotect");
	must(sys(madvise(b->ptr, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)), "madvise");
}

static void buf_free(struct buf *b)
{
	must(sys(munmap(b->base, b->span)), "munmap");
	b->base = NULL;
}

static uint32_t pattern(uint32_t seed, size_t i)
{
	return (uint32_t)(i * 2654435761u) ^ (seed * 0x01000193u) ^ 0x5a5a5a5au;
}

static void buf_fill(struct buf *b, uint32_t seed)
{
	for (size_t i = 0; i < b->size / 4; i++)
		b->ptr[i] = pattern(seed, i);
}

/* AnonHugePages of the buffer's VMA, in KiB. */
static long buf_thp_kb(const struct buf *b)
{
	uintptr_t start = (uintptr_t)b->ptr;
	bool inside = false;
	char line[256];
	long kb = -1;
	FILE *f;

	f = fopen("/proc/self/smaps", "r");
	if (!f)
		die("/proc/self/smaps: %s", strerror(errno));
	while (kb < 0 && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, v;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			inside = lo == start && hi == start + b->size;
		else if (inside && sscanf(line, "AnonHugePages: %lu kB", &v) == 1)
			kb = v;
	}
	fclose(f);
	if (kb < 0)
		die("no VMA of the buffer at %p in /proc/self/smaps", (void *)b->ptr);
	return kb;
}

/* What the engine's checksum computes: the sum of the little-endian 32-bit words. */
static uint64_t cpu_checksum(const uint32_t *p, size_t size)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < size / 4; i++)
		sum += le32toh(p[i]);
	return sum;
}

static void cpu_fill(uint32_t *p, size_t size, uint32_t value)
{
	for (size_t i = 0; i < size / 4; i++)
		p[i] = value;
}

/* Writes one word in each page, so that a copy that skips a page is seen. */
static void poison(uint32_t *p, size_t size)
{
	for (size_t i = 0; i < size / 4; i += PAGE / 4)
		p[i] = ~p[i];
}

static void check_same(const uint32_t *got, const uint32_t *want, size_t size, const char *what)
{
	size_t i;

	if (!memcmp(got, want, size))
		return;
	for (i = 0; got[i] == want[i]; i++)
		;
	failed("%s: word %zu (byte 0x%zx) is 0x%08x, expected 0x%08x", what, i, i * 4, got[i],
	       want[i]);
}

static void check_filled(const uint32_t *p, size_t size, uint32_t value, const char *what)
{
	for (size_t i = 0; i < size / 4; i++)
		if (p[i] != value) {
			failed("%s: word %zu (byte 0x%zx) is 0x%08x, expected 0x%08x", what, i,
			       i * 4, p[i], value);
			return;
		}
}

static void check_sum(uint64_t got, uint64_t want, const char *what)
{
	if (got != want)
		failed("%s: checksum 0x%llx, the CPU's 0x%llx", what, (unsigned long long)got,
		       (unsigned long long)want);
}

/* The device. */

struct bench {
	int fd;
	struct hmmgpu_waiter waiter;	/* how jobs are waited for */
	uint32_t result_bo;		/* where checksums land, at RESULT_VA in every VM */
	volatile uint64_t *result;
	int reps;
	uint32_t modes;			/* the DRM_HMMGPU_VM_MODE_* the device offers */
	unsigned int scale_max;		/* the largest N of section h */
};

static uint32_t vm_new(struct bench *b, const struct mode *m)
{
	uint32_t vm = 0;

	must(hmmgpu_vm_create(b->fd, m->flag, &vm), "VM_CREATE");
	must(hmmgpu_vm_map(b->fd, vm, b->result_bo, 0, RESULT_VA, PAGE, 0),
	     "VM_BIND of the result object");
	return vm;
}

static void vm_free(struct bench *b, uint32_t vm)
{
	must(hmmgpu_vm_destroy(b->fd, vm), "VM_DESTROY");
}

static uint32_t userptr(struct bench *b, const void *ptr, size_t size, uint32_t flags)
{
	uint32_t handle = 0;

	must(hmmgpu_userptr_create(b->fd, ptr, size, flags, &handle), "USERPTR_CREATE");
	return handle;
}

static void map(struct bench *b, uint32_t vm, uint32_t handle, uint64_t va, size_t size,
		size_t offset)
{
	must(hmmgpu_vm_map(b->fd, vm, handle, 0, va, size, offset), "VM_BIND map");
}

static void unmap(struct bench *b, uint32_t vm, uint64_t va, size_t size)
{
	must(hmmgpu_vm_unmap(b->fd, vm, va, size), "VM_BIND unmap");
}

static void stats(struct bench *b, uint32_t vm, struct drm_hmmgpu_vm_stats *s)
{
	must(hmmgpu_vm_stats(b->fd, vm, s), "VM_STATS");
}

/* Runs one job and waits for it: 0 or an error, said with where it came from in @what. */
static int try_job(struct bench *b, uint32_t vm, const struct drm_hmmgpu_cmd *cmd,
		   uint32_t timeout_ms, const char **from)
{
	return hmmgpu_exec_wait(b->fd, vm, cmd, 1, timeout_ms, &b->waiter, from);
}

static void job(struct bench *b, uint32_t vm, const struct drm_hmmgpu_cmd *cmd)
{
	const char *from;
	int err = try_job(b, vm, cmd, JOB_TIMEOUT_MS, &from);

	if (err)
		die("%s: %s", from, hmmgpu_errname(err));
}

static struct drm_hmmgpu_cmd checksum_cmd(uint64_t va, size_t size)
{
	return (struct drm_hmmgpu_cmd){
		.op = HMMGPU_CMD_CHECKSUM, .dst = RESULT_VA, .src = va, .size = size,
	};
}

/* A checksum job on [@va, @va + @size); its time in *@us. */
static uint64_t gpu_checksum(struct bench *b, uint32_t vm, uint64_t va, size_t size, double *us)
{
	struct drm_hmmgpu_cmd cmd = checksum_cmd(va, size);
	uint64_t start;

	*b->result = ~0ull;
	start = ticks();
	job(b, vm, &cmd);
	*us = us_since(start);
	return *b->result;
}

static void pinned_pages_are(struct bench *b, uint32_t vm, uint64_t want, const char *when)
{
	struct drm_hmmgpu_vm_stats s;

	stats(b, vm, &s);
	if (s.pinned_pages != want)
		failed("%s: %llu pages pinned, expected %llu", when,
		       (unsigned long long)s.pinned_pages, (unsigned long long)want);
}

/*
 * The designs: hmmgpu's writable module parameter range_locks chooses the
 * one of the VMs created after it is written, per-range locks (1, the
 * default) or the VM's sequence count alone (0: "seqonly"). Sections f and g
 * take their figures with each when the parameter is there and writable, and
 * give it back the value it had (also when the bench dies, or on SIGINT,
 * SIGTERM or SIGHUP); otherwise they take them with the kernel's own design
 * only, and say so.
 */
#define RANGE_LOCKS_PARAM	"/sys/module/hmmgpu/parameters/range_locks"

static const struct design {
	int range_locks;
	const char *suffix;		/* of the figures' names */
} designs[] = { { 1, "" }, { 0, " seqonly" } };

static int range_locks_found = -1;	/* the value at start; -1: the parameter cannot be set */
static int range_locks_now = -1;	/* the value new VMs get; -1: not known */
static const char *range_locks_why;	/* why it cannot be set */
static char range_locks_orig[4];	/* range_locks_found, to write back */

/* How many of the designs the bench can set side by side. */
static size_t ndesigns(void)
{
	return range_locks_found < 0 ? 1 : ARRAY_SIZE(designs);
}

/* Writes @value to the parameter: 0 or -errno. Async-signal-safe. */
static int range_locks_write(const char *value)
{
	int fd = open(RANGE_LOCKS_PARAM, O_WRONLY | O_CLOEXEC);
	ssize_t len = strlen(value), n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, value, len);
	err = n < 0 ? -errno : n < len ? -EIO : 0;
	close(fd);
	return err;
}

/* Reads the parameter (a uint, or a bool's Y or N) into *@value: 0 or -errno. */
static int range_locks_read(int *value)
{
	char text[16];
	ssize_t n;
	int fd;

	fd = open(RANGE_LOCKS_PARAM, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	text[n] = 0;
	text[strcspn(text, "\n")] = 0;
	if (!strcmp(text, "1") || !strcmp(text, "Y"))
		*value = 1;
	else if (!strcmp(text, "0") || !strcmp(text, "N"))
		*value = 0;
	else
		return -EINVAL;
	return 0;
}

/* Gives the parameter its value back, at exit. */
static void range_locks_restore(void)
{
	int err;

	if (range_locks_found < 0 || range_locks_now == range_locks_found)
		return;
	err = range_locks_write(range_locks_orig);
	if (err)
		printf("bench: could not write range_locks=%d back: %s\n", range_locks_found,
		       strerror(-err));
	else
		range_locks_now = range_locks_found;
}

static void range_locks_on_signal(int sig)
{
	range_locks_write(range_locks_orig);
	/* SA_RESETHAND: the default action, when the handler returns. */
	raise(sig);
}

/* Finds out whether the bench can set range_locks, and what it is. */
static void range_locks_probe(void)
{
	static const int signals[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = range_locks_on_signal, .sa_flags = SA_RESETHAND };
	int fd, err, value;

	/* Root may write any file it can open: whether it may, only the open says. */
	fd = open(RANGE_LOCKS_PARAM, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		range_locks_why = errno == ENOENT ? "no range_locks parameter" :
			"range_locks not writable";
		return;
	}
	close(fd);
	err = range_locks_read(&value);
	if (err) {
		range_locks_why = "range_locks unreadable, or neither 0 nor 1";
		return;
	}
	range_locks_found = value;
	range_locks_now = value;
	snprintf(range_locks_orig, sizeof(range_locks_orig), "%d\n", value);
	if (atexit(range_locks_restore))
		die("atexit failed");
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		must(sys(sigaction(signals[i], &sa, NULL)), "sigaction");
}

/* Sets range_locks for the VMs created from now on, when the bench can. */
static void range_locks_set(int value)
{
	int err, now;

	if (range_locks_found < 0 || value == range_locks_now)
		return;
	err = range_locks_write(value ? "1\n" : "0\n");
	if (err)
		die("writing %d to %s: %s", value, RANGE_LOCKS_PARAM, strerror(-err));
	/* Whatever happens next, range_locks_restore() writes the old value back. */
	range_locks_now = -1;
	err = range_locks_read(&now);
	if (err)
		die("reading %s: %s", RANGE_LOCKS_PARAM, strerror(-err));
	if (now != value)
		die("%s reads %d after %d was written", RANGE_LOCKS_PARAM, now, value);
	range_locks_now = value;
}

/* Adds "range_locks" to the figure's JSON: the value its VM was created with, or null. */
static void extra_range_locks(struct figure *f)
{
	if (range_locks_now < 0)
		extra(f, ", \"range_locks\": null");
	else
		extra(f, ", \"range_locks\": %d", range_locks_now);
}

/*
 * Compares @f, taken with range locks, with @seqonly, the same taken with
 * the sequence count alone: the ratio of the medians, as for every
 * reference, and of the means, which count the slow jobs a storm causes.
 */
static void against_seqonly(struct figure *f, const struct figure *seqonly)
{
	double r = mean(seqonly) > 0 ? mean(f) / mean(seqonly) : 0;

	compare(f, f->refs[0] ? f->refs[0] : seqonly, f->refs[0] ? seqonly : NULL);
	extra(f, ", \"mean_ratio_seqonly\": %.4f", r);
	note(f, ", mean %.2f of seqonly's", r);
}

/* Says in the note of @f that it ran with the kernel's own design only, and why. */
static void note_one_design(struct figure *f)
{
	if (ndesigns() < ARRAY_SIZE(designs))
		note(f, "; %s: this design only", range_locks_why);
}

/* The references' devices. */

static int dmirror_open(void)
{
	int fd = open(DMIRROR_DEV, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("%s: %s (is test_hmm loaded?)", DMIRROR_DEV, strerror(errno));
	return fd;
}

/* HMM_DMIRROR_READ of the whole buffer into @out; its time. */
static double dmirror_read(int fd, const struct buf *b, uint32_t *out)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)b->ptr, .ptr = (uintptr_t)out, .npages = b->size / PAGE,
	};
	uint64_t start = ticks();
	double us;
	int ret;

	do
		ret = ioctl(fd, HMM_DMIRROR_READ, &cmd);
	while (ret && errno == EINTR);
	us = us_since(start);
	if (ret)
		die("HMM_DMIRROR_READ: %s", strerror(errno));
	if (cmd.cpages != cmd.npages)
		failed("HMM_DMIRROR_READ read %llu pages of %llu", (unsigned long long)cmd.cpages,
		       (unsigned long long)cmd.npages);
	return us;
}

/*
 * One run of section a in a new VM of mode @m: bind and checksum ("first"),
 * then checksum again ("second").
 */
static void read_mode(struct bench *b, const struct mode *m, struct figure *first,
		      struct figure *second, int rep, const struct buf *buf, uint64_t want)
{
	struct drm_hmmgpu_cmd cmd = checksum_cmd(BUF_VA, buf->size);
	struct drm_hmmgpu_vm_stats s0, s1, s2;
	uint32_t vm = vm_new(b, m);
	uint32_t handle = userptr(b, buf->ptr, buf->size, 0);
	uint64_t start;
	double us;

	*b->result = ~0ull;
	stats(b, vm, &s0);
	start = ticks();
	map(b, vm, handle, BUF_VA, buf->size, 0);
	job(b, vm, &cmd);
	sample(first, rep, us_since(start));
	stats(b, vm, &s1);
	count_stats(first, rep, &s0, &s1);
	check_sum(*b->result, want, first->name);

	check_sum(gpu_checksum(b, vm, BUF_VA, buf->size, &us), want, second->name);
	sample(second, rep, us);
	stats(b, vm, &s2);
	count_stats(second, rep, &s1, &s2);

	vm_free(b, vm);
	hmmgpu_gem_close(b->fd, handle);
}

/* Section a: populate and read every byte, first and second time. */
static void bench_read(struct bench *b, size_t size, bool thp)
{
	const char *pages = thp ? "thp" : "4k";
	struct figure *cpu, *dm_first, *dm_second, *first[NMODES], *second[NMODES];
	struct buf buf, out;
	uint64_t want;
	long kb;

	buf_alloc(&buf, size, thp);
	buf_fill(&buf, 1);
	buf_alloc(&out, size, thp);
	memset(out.ptr, 0, size);
	want = cpu_checksum(buf.ptr, size);
	kb = buf_thp_kb(&buf);

	cpu = figure('a', pages, size, "cpu read");
	dm_first = figure('a', pages, size, "dmirror first");
	dm_second = figure('a', pages, size, "dmirror second");
	for (size_t m = 0; m < NMODES; m++) {
		first[m] = figure('a', pages, size, "%s first", modes[m].name);
		compare(first[m], dm_first, NULL);
		second[m] = figure('a', pages, size, "%s second", modes[m].name);
		compare(second[m], dm_second, cpu);
	}
	for (struct figure *f = cpu; f <= second[NMODES - 1]; f++)
		note_thp(f, kb);

	for (int rep = -1; rep < b->reps; rep++) {
		uint64_t start = ticks();
		int fd;

		check_sum(cpu_checksum(buf.ptr, size), want, "cpu read");
		sample(cpu, rep, us_since(start));

		fd = dmirror_open();
		sample(dm_first, rep, dmirror_read(fd, &buf, out.ptr));
		check_same(out.ptr, buf.ptr, size, "dmirror first read");
		memset(out.ptr, 0, PAGE);
		sample(dm_second, rep, dmirror_read(fd, &buf, out.ptr));
		check_same(out.ptr, buf.ptr, size, "dmirror second read");
		close(fd);

		for (size_t m = 0; m < NMODES; m++)
			read_mode(b, &modes[m], first[m], second[m], rep, &buf, want);
	}
	buf_free(&out);
	buf_free(&buf);
}

/* One PIN_LONGTERM_BENCHMARK of the whole buffer: pin and unpin times, as gup_test took them. */
static void gup_pin(int fd, const struct buf *buf, double *pin_us, double *unpin_us)
{
	struct gup_test gup = {
		.addr = (uintptr_t)buf->ptr, .size = buf->size,
		.nr_pages_per_call = GUP_PAGES_PER_CALL, .gup_flags = FOLL_WRITE,
	};

	must(sys(ioctl(fd, PIN_LONGTERM_BENCHMARK, &gup)), "PIN_LONGTERM_BENCHMARK");
	if (gup.size != buf->size)
		failed("PIN_LONGTERM_BENCHMARK pinned %llu bytes of %zu",
		       (unsigned long long)gup.size, buf->size);
	*pin_us = gup.get_delta_usec;
	*unpin_us = gup.put_delta_usec;
}

/* Section b: a pinned-mode bind and unbind against gup_test's long-term pins. */
static void bench_pin(struct bench *b, size_t size, bool thp)
{
	const char *pages = thp ? "thp" : "4k";
	struct figure *gup_get, *gup_put, *bind, *unbind, *ioctl;
	uint32_t vm, handle;
	struct buf buf;
	int gup_fd;

	gup_fd = open(GUP_TEST_DEV, O_RDWR | O_CLOEXEC);
	if (gup_fd < 0)
		die("%s: %s (is debugfs mounted?)", GUP_TEST_DEV, strerror(errno));
	buf_alloc(&buf, size, thp);
	buf_fill(&buf, 2);
	vm = vm_new(b, &modes[2]);
	handle = userptr(b, buf.ptr, size, 0);

	gup_get = figure('b', pages, size, "gup_test pin");
	gup_put = figure('b', pages, size, "gup_test unpin");
	bind = figure('b', pages, size, "pinned bind");
	compare(bind, gup_get, NULL);
	unbind = figure('b', pages, size, "pinned unbind");
	compare(unbind, gup_put, NULL);
	/*
	 * What entering the kernel for an ioctl costs: the bind's time includes
	 * it, gup_test's in-kernel timing does not.
	 */
	ioctl = figure('b', pages, size, "VM_STATS ioctl");
	for (struct figure *f = gup_get; f <= ioctl; f++)
		note_thp(f, buf_thp_kb(&buf));

	for (int rep = -1; rep < b->reps; rep++) {
		struct drm_hmmgpu_vm_stats s0, s1;
		double get_us, put_us;
		uint64_t start;

		gup_pin(gup_fd, &buf, &get_us, &put_us);
		sample(gup_get, rep, get_us);
		sample(gup_put, rep, put_us);

		start = ticks();
		stats(b, vm, &s0);
		sample(ioctl, rep, us_since(start));
		start = ticks();
		map(b, vm, handle, BUF_VA, size, 0);
		sample(bind, rep, us_since(start));
		stats(b, vm, &s1);
		count_stats(bind, rep, &s0, &s1);
		pinned_pages_are(b, vm, size / PAGE, "after the bind");
		start = ticks();
		unmap(b, vm, BUF_VA, size);
		sample(unbind, rep, us_since(start));
		pinned_pages_are(b, vm, 0, "after the unbind");
	}
	hmmgpu_gem_close(b->fd, handle);
	vm_free(b, vm);
	buf_free(&buf);
	close(gup_fd);
}

/*
 * The kernel's copy of our own pages: process_vm_readv(), or, in a kernel
 * built without it (CONFIG_CROSS_MEMORY_ATTACH=n), a read of /proc/self/mem,
 * which copies through a bounce page.
 */
static const char *kernel_copy_name = "process_vm_readv";
static int self_mem = -1;

static void kernel_copy_probe(void)
{
	uint32_t word = 0, copy;
	struct iovec local = { .iov_base = &copy, .iov_len = sizeof(copy) };
	struct iovec remote = { .iov_base = &word, .iov_len = sizeof(word) };

	if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == sizeof(copy))
		return;
	if (errno != ENOSYS)
		die("process_vm_readv: %s", strerror(errno));
	self_mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	if (self_mem < 0)
		die("/proc/self/mem: %s", strerror(errno));
	kernel_copy_name = "/proc/self/mem read";
	printf("copy      no process_vm_readv() in this kernel: the kernel's copy is a read of "
	       "/proc/self/mem\n");
}

static ssize_t kernel_copy_once(char *dst, const char *src, size_t size)
{
	struct iovec local = { .iov_base = dst, .iov_len = size };
	struct iovec remote = { .iov_base = (void *)src, .iov_len = size };

	if (self_mem >= 0)
		return pread(self_mem, dst, size, (off_t)(uintptr_t)src);
	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
}

/* The kernel's copy of @size bytes of our own @src to @dst. */
static void kernel_copy(uint32_t *dst, const uint32_t *src, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = kernel_copy_once((char *)dst + done, (const char *)src + done,
					     size - done);

		if (n < 0)
			die("%s: %s", kernel_copy_name, strerror(errno));
		if (!n)
			die("%s: nothing copied at byte %zu of %zu", kernel_copy_name, done, size);
		done += n;
	}
}

/*
 * Where copies go, in bytes from the start of the destination buffer: at the
 * source's offset in 2 MiB ("same offset"), or a page away from it. Under TCG
 * the first thrashes QEMU's software TLB for whatever copies a byte or a word
 * per load and store; what the engine runs on must not depend on it.
 */
#define NPLACES		2
static const struct {
	size_t shift;
	const char *name;
} places[NPLACES] = { { PAGE, "" }, { 0, " same offset" } };

struct copy_figures {
	struct figure *memcpy[NPLACES], *kernel[NPLACES], *fill;
	struct figure *copy[NPLACES][NMODES], *gpu_fill[NMODES];
};

/* The CPU's copies and fill, each timed and checked. */
static void copy_refs(struct copy_figures *f, int rep, struct buf *src, struct buf *dst,
		      uint32_t value)
{
	size_t size = src->size;
	uint64_t start;

	for (size_t p = 0; p < NPLACES; p++) {
		size_t len = size - places[p].shift;
		uint32_t *to = dst->ptr + places[p].shift / 4;

		poison(dst->ptr, size);
		start = ticks();
		memcpy(to, src->ptr, len);
		sample(f->memcpy[p], rep, us_since(start));
		check_same(to, src->ptr, len, "memcpy");

		poison(dst->ptr, size);
		start = ticks();
		kernel_copy(to, src->ptr, len);
		sample(f->kernel[p], rep, us_since(start));
		check_same(to, src->ptr, len, kernel_copy_name);
	}

	start = ticks();
	cpu_fill(dst->ptr, size, value);
	sample(f->fill, rep, us_since(start));
	check_filled(dst->ptr, size, value, "cpu fill");
}

/* The engine's copies and fill in a VM where both buffers are bound and were used once. */
static void copy_gpu(struct bench *b, struct copy_figures *f, size_t m, int rep, uint32_t vm,
		     struct buf *src, struct buf *dst, uint32_t value)
{
	size_t size = src->size;
	struct drm_hmmgpu_cmd fill = {
		.op = HMMGPU_CMD_FILL, .dst = DST_VA, .size = size, .value = value,
	};
	struct drm_hmmgpu_vm_stats s0, s1;
	uint64_t start;

	for (size_t p = 0; p < NPLACES; p++) {
		size_t shift = places[p].shift, len = size - shift;
		struct drm_hmmgpu_cmd copy = {
			.op = HMMGPU_CMD_COPY, .dst = DST_VA + shift, .src = BUF_VA, .size = len,
		};

		poison(dst->ptr, size);
		stats(b, vm, &s0);
		start = ticks();
		job(b, vm, &copy);
		sample(f->copy[p][m], rep, us_since(start));
		stats(b, vm, &s1);
		count_stats(f->copy[p][m], rep, &s0, &s1);
		check_same(dst->ptr + shift / 4, src->ptr, len, f->copy[p][m]->name);
	}

	stats(b, vm, &s0);
	start = ticks();
	job(b, vm, &fill);
	sample(f->gpu_fill[m], rep, us_since(start));
	stats(b, vm, &s1);
	count_stats(f->gpu_fill[m], rep, &s0, &s1);
	check_filled(dst->ptr, size, value, f->gpu_fill[m]->name);
}

/*
 * Section c: the engine's Copy and Fill in steady state against the CPU's and
 * the kernel's, with the destination a page away from the source's offset in
 * 2 MiB and at the same offset; each copy at the same offset is also compared
 * with its own copy a page away.
 */
static void bench_copy(struct bench *b, size_t size, bool thp)
{
	const char *pages = thp ? "thp" : "4k";
	uint32_t vm[NMODES], src_handle[NMODES], dst_handle[NMODES];
	struct figure *first, *last;
	struct copy_figures f;
	struct buf src, dst;
	long kb;

	buf_alloc(&src, size, thp);
	buf_fill(&src, 3);
	buf_alloc(&dst, size, thp);
	memset(dst.ptr, 0, size);
	/* Of the two buffers, the one with fewer huge pages. */
	kb = buf_thp_kb(&src);
	if (buf_thp_kb(&dst) < kb)
		kb = buf_thp_kb(&dst);

	for (size_t p = 0; p < NPLACES; p++) {
		f.memcpy[p] = figure('c', pages, size, "memcpy%s", places[p].name);
		f.kernel[p] = figure('c', pages, size, "%s%s", kernel_copy_name, places[p].name);
		if (p)
			compare(f.memcpy[p], f.memcpy[0], NULL);
		if (p)
			compare(f.kernel[p], f.kernel[0], NULL);
	}
	first = f.memcpy[0];
	f.fill = figure('c', pages, size, "cpu fill");
	for (size_t m = 0; m < NMODES; m++) {
		for (size_t p = 0; p < NPLACES; p++) {
			f.copy[p][m] = figure('c', pages, size, "%s copy%s", modes[m].name,
					      places[p].name);
			if (p)
				compare(f.copy[p][m], f.copy[0][m], f.memcpy[p]);
			else
				compare(f.copy[p][m], f.kernel[p], f.memcpy[p]);
		}
		f.gpu_fill[m] = figure('c', pages, size, "%s fill", modes[m].name);
		compare(f.gpu_fill[m], f.fill, NULL);
	}
	last = f.gpu_fill[NMODES - 1];
	for (struct figure *p = first; p <= last; p++)
		note_thp(p, kb);

	/* The warm-up is the first use of each VM: the copies after it are steady. */
	for (size_t m = 0; m < NMODES; m++) {
		vm[m] = vm_new(b, &modes[m]);
		src_handle[m] = userptr(b, src.ptr, size, DRM_HMMGPU_USERPTR_READ_ONLY);
		dst_handle[m] = userptr(b, dst.ptr, size, 0);
		map(b, vm[m], src_handle[m], BUF_VA, size, 0);
		map(b, vm[m], dst_handle[m], DST_VA, size, 0);
	}
	for (int rep = -1; rep < b->reps; rep++) {
		uint32_t value = 0xf0000000u | (rep + 1);

		copy_refs(&f, rep, &src, &dst, value);
		for (size_t m = 0; m < NMODES; m++)
			copy_gpu(b, &f, m, rep, vm[m], &src, &dst, value + 0x100 * (m + 1));
	}
	for (size_t m = 0; m < NMODES; m++) {
		vm_free(b, vm[m]);
		hmmgpu_gem_close(b->fd, src_handle[m]);
		hmmgpu_gem_close(b->fd, dst_handle[m]);
	}
	buf_free(&dst);
	buf_free(&src);
}

/* Times the munmap of the buffer (its guards go after, untimed). */
static double timed_munmap(struct buf *buf)
{
	uint64_t start = ticks();

	must(sys(munmap(buf->ptr, buf->size)), "munmap");
	return us_since(start);
}

static void munmap_plain(struct figure *f, int rep, size_t size, bool thp)
{
	struct buf buf;

	buf_alloc(&buf, size, thp);
	buf_fill(&buf, 4);
	note_thp(f, buf_thp_kb(&buf));
	sample(f, rep, timed_munmap(&buf));
	buf_free(&buf);
}

static void munmap_dmirror(struct figure *f, int rep, size_t size, bool thp, uint32_t *out)
{
	struct buf buf;
	int fd;

	buf_alloc(&buf, size, thp);
	buf_fill(&buf, 4);
	note_thp(f, buf_thp_kb(&buf));
	fd = dmirror_open();
	dmirror_read(fd, &buf, out);
	check_same(out, buf.ptr, size, "dmirror read before munmap");
	sample(f, rep, timed_munmap(&buf));
	close(fd);
	buf_free(&buf);
}

static void munmap_mode(struct bench *b, struct figure *f, int rep, size_t m, size_t size,
			bool thp)
{
	uint32_t vm, handle;
	struct buf buf;
	uint64_t want;
	double us;

	buf_alloc(&buf, size, thp);
	buf_fill(&buf, 4);
	note_thp(f, buf_thp_kb(&buf));
	want = cpu_checksum(buf.ptr, size);
	vm = vm_new(b, &modes[m]);
	handle = userptr(b, buf.ptr, size, 0);
	map(b, vm, handle, BUF_VA, size, 0);
	check_sum(gpu_checksum(b, vm, BUF_VA, size, &us), want, "checksum before munmap");
	sample(f, rep, timed_munmap(&buf));
	unmap(b, vm, BUF_VA, size);
	vm_free(b, vm);
	hmmgpu_gem_close(b->fd, handle);
	buf_free(&buf);
}

/* Section d: munmap of a mirrored range. */
static void bench_munmap(struct bench *b, size_t size, bool thp)
{
	const char *pages = thp ? "thp" : "4k";
	struct figure *plain, *dmirror, *mode[NMODES];
	struct buf out;

	buf_alloc(&out, size, false);
	memset(out.ptr, 0, size);
	plain = figure('d', pages, size, "munmap unmirrored");
	dmirror = figure('d', pages, size, "munmap dmirror");
	for (size_t m = 0; m < NMODES; m++) {
		mode[m] = figure('d', pages, size, "munmap %s", modes[m].name);
		compare(mode[m], dmirror, plain);
	}
	/* Every run maps memory of its own: there is nothing to warm up. */
	for (int rep = 0; rep < b->reps; rep++) {
		munmap_plain(plain, rep, size, thp);
		munmap_dmirror(dmirror, rep, size, thp, out.ptr);
		for (size_t m = 0; m < NMODES; m++)
			munmap_mode(b, mode[m], rep, m, size, thp);
	}
	buf_free(&out);
}

struct map_figures {
	struct figure *bind, *first, *steady, *unbind;
};

/*
 * One round of section e: binds @n mappings of 64 KiB of the userptr, runs a
 * checksum of 4 KiB of the last twice, and unbinds them all.
 */
static void mappings_round(struct bench *b, struct map_figures *f, int rep, uint32_t vm,
			   uint32_t handle, unsigned int n, uint64_t want)
{
	uint64_t last = BUF_VA + (uint64_t)(n - 1) * MAP_STRIDE;
	double bind_us = 0, unbind_us = 0, us;
	struct drm_hmmgpu_vm_stats s0, s1, s2, s3;
	uint64_t start;

	stats(b, vm, &s0);
	for (unsigned int i = 0; i < n; i++) {
		start = ticks();
		map(b, vm, handle, BUF_VA + (uint64_t)i * MAP_STRIDE, MAP_SIZE, i * MAP_SIZE);
		bind_us += us_since(start);
	}
	sample(f->bind, rep, bind_us / n);
	stats(b, vm, &s1);
	count_stats(f->bind, rep, &s0, &s1);
	check_sum(gpu_checksum(b, vm, last, PAGE, &us), want, f->first->name);
	sample(f->first, rep, us);
	stats(b, vm, &s2);
	count_stats(f->first, rep, &s1, &s2);
	check_sum(gpu_checksum(b, vm, last, PAGE, &us), want, f->steady->name);
	sample(f->steady, rep, us);
	stats(b, vm, &s3);
	count_stats(f->steady, rep, &s2, &s3);
	for (unsigned int i = 0; i < n; i++) {
		start = ticks();
		unmap(b, vm, BUF_VA + (uint64_t)i * MAP_STRIDE, MAP_SIZE);
		unbind_us += us_since(start);
	}
	sample(f->unbind, rep, unbind_us / n);
}

/* Section e: the cost of many mappings in a VM, against one. */
static void bench_mappings(struct bench *b, bool thp)
{
	const unsigned int most = map_counts[ARRAY_SIZE(map_counts) - 1];
	const char *pages = thp ? "thp" : "4k";
	struct buf buf;
	long kb;

	buf_alloc(&buf, most * MAP_SIZE, thp);
	buf_fill(&buf, 5);
	kb = buf_thp_kb(&buf);
	for (size_t m = 0; m < NMODES; m++) {
		struct map_figures one = { 0 };

		for (size_t c = 0; c < ARRAY_SIZE(map_counts); c++) {
			unsigned int n = map_counts[c];
			size_t size = n * MAP_SIZE;
			const uint32_t *last = buf.ptr + (size - MAP_SIZE) / 4;
			uint64_t want = cpu_checksum(last, PAGE);
			uint32_t vm = vm_new(b, &modes[m]);
			uint32_t handle = userptr(b, buf.ptr, size, 0);
			const char *mn = modes[m].name;
			struct map_figures f = {
				figure('e', pages, size, "%s bind N=%u", mn, n),
				figure('e', pages, size, "%s first exec N=%u", mn, n),
				figure('e', pages, size, "%s steady exec N=%u", mn, n),
				figure('e', pages, size, "%s unbind N=%u", mn, n),
			};

			if (!c)
				one = f;
			compare(f.bind, c ? one.bind : NULL, NULL);
			compare(f.first, c ? one.first : NULL, NULL);
			compare(f.steady, c ? one.steady : NULL, NULL);
			compare(f.unbind, c ? one.unbind : NULL, NULL);
			/* The share of the first n mappings, taken as that of the whole buffer. */
			for (struct figure *p = f.bind; p <= f.unbind; p++)
				note_thp(p, kb * n / most);
			for (int rep = -1; rep < b->reps; rep++)
				mappings_round(b, &f, rep, vm, handle, n, want);
			vm_free(b, vm);
			hmmgpu_gem_close(b->fd, handle);
		}
	}
	buf_free(&buf);
}

/*
 * The storms: another thread invalidates one page over and over, pausing in
 * between, by discarding it (MADV_DONTNEED), by write-protecting it and
 * making it writable again (each mprotect() invalidates), or by mapping a new
 * zero page over it (mmap() with MAP_FIXED, which splits a huge page). The
 * page reads zeros throughout, and ends writable.
 */
enum storm_kind { STORM_MADVISE, STORM_MPROTECT, STORM_MAP_FIXED, NSTORMS };

static const struct {
	const char *name;		/* in the JSON output */
	const char *suffix;		/* of the figures' names: none for the first storm */
	const char *call;		/* for errors */
} storm_kinds[NSTORMS] = {
	[STORM_MADVISE] = { "madvise", "", "madvise(MADV_DONTNEED)" },
	[STORM_MPROTECT] = { "mprotect", " mprotect", "mprotect" },
	[STORM_MAP_FIXED] = { "map_fixed", " map_fixed", "mmap(MAP_FIXED)" },
};

struct storm {
	pthread_t thread;
	void *page;
	enum storm_kind kind;
	atomic_bool stop;
	atomic_ulong calls;
	int err;
};

/* One call of the storm's kind: 0 or an errno. @writable says what mprotect() leaves. */
static int storm_call(struct storm *s, bool *writable)
{
	void *p;

	switch (s->kind) {
	case STORM_MPROTECT:
		*writable = !*writable;
		if (mprotect(s->page, PAGE, *writable ? PROT_READ | PROT_WRITE : PROT_READ))
			return errno;
		return 0;
	case STORM_MAP_FIXED:
		p = mmap(s->page, PAGE, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return errno;
		return p == s->page ? 0 : EFAULT;
	default:
		return madvise(s->page, PAGE, MADV_DONTNEED) ? errno : 0;
	}
}

static void *storm_thread(void *arg)
{
	struct storm *s = arg;
	bool writable = true;

	/* An mprotect() storm stops with the page writable. */
	while (!atomic_load(&s->stop) || !writable) {
		s->err = storm_call(s, &writable);
		if (s->err)
			break;
		atomic_fetch_add(&s->calls, 1);
		/* The guest has no high-resolution timers: a sleep would last a 4 ms tick. */
		spin_us(STORM_PAUSE_US);
	}
	return NULL;
}

static void storm_start(struct storm *s, void *page, enum storm_kind kind)
{
	pthread_attr_t attr;
	cpu_set_t cpus;
	int err;

	s->page = page;
	s->kind = kind;
	s->err = 0;
	atomic_store(&s->stop, false);
	atomic_store(&s->calls, 0);
	CPU_ZERO(&cpus);
	CPU_SET(sysconf(_SC_NPROCESSORS_ONLN) > STORM_CPU ? STORM_CPU : BENCH_CPU, &cpus);
	err = pthread_attr_init(&attr);
	if (!err)
		err = pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus);
	if (!err)
		err = pthread_create(&s->thread, &attr, storm_thread, s);
	if (err)
		die("storm thread: %s", strerror(err));
	pthread_attr_destroy(&attr);
}

static void storm_stop(struct storm *s)
{
	int err;

	atomic_store(&s->stop, true);
	err = pthread_join(s->thread, NULL);
	if (err)
		die("pthread_join: %s", strerror(err));
	if (s->err)
		die("%s of the storm page: %s", storm_kinds[s->kind].call, strerror(s->err));
}

/*
 * STORM_JOBS checksum jobs of the buffer at BUF_VA, each timed into @f; those
 * that fail are counted by error, and their figures noted with the VM's
 * retries and invalidations. With @discard (section g), each job follows a
 * MADV_DONTNEED of the @size bytes there, the buffer's CPU pages, so that it
 * faults all of them again: the time of each job is the job's, the rates are
 * over the whole loop.
 */
static void storm_jobs(struct bench *b, struct figure *f, uint32_t vm, size_t size,
		       uint64_t want, struct storm *s, void *discard, bool refused_ok)
{
	struct drm_hmmgpu_cmd cmd = checksum_cmd(BUF_VA, size);
	struct drm_hmmgpu_vm_stats before, after;
	unsigned int timedout = 0, again = 0, refused = 0, other = 0, done;
	uint64_t start = ticks();
	double total_s;

	stats(b, vm, &before);
	for (unsigned int i = 0; i < STORM_JOBS; i++) {
		uint64_t job_start;
		const char *from;
		int err;

		if (discard)
			must(sys(madvise(discard, size, MADV_DONTNEED)), "madvise(MADV_DONTNEED)");
		*b->result = ~0ull;
		job_start = ticks();
		err = try_job(b, vm, &cmd, STORM_TIMEOUT_MS, &from);
		sample(f, 0, us_since(job_start));
		if (err == -ETIMEDOUT && !strcmp(from, "job")) {
			timedout++;
		} else if (err == -EAGAIN && !strcmp(from, "exec")) {
			again++;
		} else if (err == -EFAULT && !strcmp(from, "job") && refused_ok) {
			/*
			 * Pinned mode pins a writable binding for writing, which a
			 * PROT_READ range refuses: nothing is mirrored, as the uAPI says.
			 */
			refused++;
		} else if (err) {
			other++;
			failed("%s: job %u: %s %s", f->name, i, from, hmmgpu_errname(err));
		} else {
			check_sum(*b->result, want, f->name);
		}
	}
	total_s = us_since(start) / 1e6;
	stats(b, vm, &after);
	count_stats(f, 0, &before, &after);
	done = STORM_JOBS - timedout - again - refused - other;
	extra(f, ", \"jobs\": %u, \"jobs_per_s\": %.3f, \"faults_per_s\": %.1f, \"timedout\": %u, "
	      "\"eagain\": %u, \"refused\": %u, \"failed\": %u, \"retries_per_job\": %.3f, "
	      "\"storm\": ",
	      STORM_JOBS, done / total_s, f->vm.faults / total_s, timedout, again, refused, other,
	      (double)f->vm.retries / STORM_JOBS);
	if (s)
		extra(f, "\"%s\", \"storm_calls\": %lu", storm_kinds[s->kind].name,
		      atomic_load(&s->calls));
	else
		extra(f, "null, \"storm_calls\": 0");
	extra(f, ", \"mean_us\": %.3f", mean(f));
	extra_range_locks(f);
	if (discard)
		note(f, "%.0f faults/s, %.1f jobs/s, %.1f retries/job", f->vm.faults / total_s,
		     done / total_s, (double)f->vm.retries / STORM_JOBS);
	else
		note(f, "%.1f jobs/s, %.1f retries/job, %llu invalidations", done / total_s,
		     (double)f->vm.retries / STORM_JOBS, (unsigned long long)f->vm.invalidations);
	if (timedout || again)
		note(f, " (%u timed out, %u -EAGAIN)", timedout, again);
	if (refused)
		note(f, " (%u -EFAULT: pinned while PROT_READ)", refused);
}

struct storm_figures {
	struct figure *quiet, *storm[NSTORMS];
};

/*
 * Section f in mode @m and design @d: the quiet jobs, then the jobs under
 * each storm. The storms take turns on the same page of one buffer in one
 * VM, each after an untimed job that mirrors the page again; the mmap()
 * storm goes last, as it leaves the page a VMA of its own.
 */
static void storm_mode(struct bench *b, struct storm_figures *f, size_t m,
		       const struct design *d, bool thp)
{
	const char *pages = thp ? "thp" : "4k";
	const size_t size = STORM_SIZE;
	uint32_t *page, vm, handle;
	struct storm s = { 0 };
	struct buf buf;
	uint64_t want;
	double us;

	/* The page the storms hit reads zeros before and after: the sum stays. */
	buf_alloc(&buf, size, thp);
	buf_fill(&buf, 6);
	page = buf.ptr + size / 2 / 4;
	memset(page, 0, PAGE);
	want = cpu_checksum(buf.ptr, size);
	f->quiet = figure('f', pages, size, "%s quiet%s", modes[m].name, d->suffix);
	note_thp(f->quiet, buf_thp_kb(&buf));
	for (int k = 0; k < NSTORMS; k++) {
		f->storm[k] = figure('f', pages, size, "%s storm%s%s", modes[m].name,
				     storm_kinds[k].suffix, d->suffix);
		compare(f->storm[k], f->quiet, NULL);
		note_thp(f->storm[k], f->quiet->thp_kb);
	}

	range_locks_set(d->range_locks);
	vm = vm_new(b, &modes[m]);
	handle = userptr(b, buf.ptr, size, 0);
	map(b, vm, handle, BUF_VA, size, 0);
	check_sum(gpu_checksum(b, vm, BUF_VA, size, &us), want, "first storm job");
	storm_jobs(b, f->quiet, vm, size, want, NULL, NULL, false);
	for (int k = 0; k < NSTORMS; k++) {
		memset(page, 0, PAGE);
		check_sum(gpu_checksum(b, vm, BUF_VA, size, &us), want, f->storm[k]->name);
		storm_start(&s, page, k);
		storm_jobs(b, f->storm[k], vm, size, want, &s, NULL,
			   k == STORM_MPROTECT && modes[m].flag == DRM_HMMGPU_VM_MODE_PINNED);
		storm_stop(&s);
		note_one_design(f->storm[k]);
	}

	vm_free(b, vm);
	hmmgpu_gem_close(b->fd, handle);
	buf_free(&buf);
}

/*
 * Section f: jobs under invalidation storms on the buffer they read, in each
 * mode, with range locks and with the sequence count alone when the bench
 * can set range_locks; each figure with range locks is compared with its
 * seqonly twin.
 */
static void bench_storm(struct bench *b, bool thp)
{
	for (size_t m = 0; m < NMODES; m++) {
		struct storm_figures f[ARRAY_SIZE(designs)];

		for (size_t d = 0; d < ndesigns(); d++)
			storm_mode(b, &f[d], m, &designs[d], thp);
		if (ndesigns() < 2)
			continue;
		against_seqonly(f[0].quiet, f[1].quiet);
		for (int k = 0; k < NSTORMS; k++)
			against_seqonly(f[0].storm[k], f[1].storm[k]);
	}
	range_locks_set(range_locks_found);
}

struct ranges_figures {
	struct figure *quiet, *storm;
};

/*
 * Section g in design @d: GPU faults on A, all of it again before each job,
 * while B, mapped in the same VM, is quiet, then under the MADV_DONTNEED
 * storm on one page.
 */
static void ranges_design(struct bench *b, struct ranges_figures *f, const struct mode *fault,
			  const struct design *d, struct buf *a, struct buf *bb)
{
	const char *pages = a->thp ? "thp" : "4k";
	const size_t size = a->size;
	uint32_t *page = bb->ptr + size / 2 / 4;
	uint32_t vm, handle_a, handle_b;
	struct storm s = { 0 };
	uint64_t want_a, want_b;
	double us;

	/* A anew for each design: its first job reads data, the others zeros. */
	buf_fill(a, 7);
	want_a = cpu_checksum(a->ptr, size);
	want_b = cpu_checksum(bb->ptr, size);
	f->quiet = figure('g', pages, size, "%s A, B quiet%s", fault->name, d->suffix);
	f->storm = figure('g', pages, size, "%s A, B storm%s", fault->name, d->suffix);
	compare(f->storm, f->quiet, NULL);
	note_thp(f->quiet, buf_thp_kb(a));
	note_thp(f->storm, f->quiet->thp_kb);

	range_locks_set(d->range_locks);
	vm = vm_new(b, fault);
	handle_a = userptr(b, a->ptr, size, 0);
	handle_b = userptr(b, bb->ptr, size, 0);
	map(b, vm, handle_a, BUF_VA, size, 0);
	map(b, vm, handle_b, DST_VA, size, 0);
	check_sum(gpu_checksum(b, vm, BUF_VA, size, &us), want_a, "first job of A");
	check_sum(gpu_checksum(b, vm, DST_VA, size, &us), want_b, "first job of B");

	/* A discarded reads zeros: the sum of each job is 0. */
	storm_jobs(b, f->quiet, vm, size, 0, NULL, a->ptr, false);
	storm_start(&s, page, STORM_MADVISE);
	storm_jobs(b, f->storm, vm, size, 0, &s, a->ptr, false);
	storm_stop(&s);
	note_one_design(f->storm);
	check_sum(gpu_checksum(b, vm, DST_VA, size, &us), want_b, "last job of B");

	vm_free(b, vm);
	hmmgpu_gem_close(b->fd, handle_a);
	hmmgpu_gem_close(b->fd, handle_b);
}

/*
 * Section g: what invalidations of one range (B) cost the GPU faults on
 * another range of the same VM (A), in fault mode, with range locks and with
 * the sequence count alone when the bench can set range_locks; the storm
 * thread keeps the second CPU busy.
 */
static void bench_ranges(struct bench *b, bool thp)
{
	struct ranges_figures f[ARRAY_SIZE(designs)];
	const struct mode *fault = NULL;
	struct buf a, bb;

	for (size_t m = 0; m < NMODES; m++)
		if (modes[m].flag == DRM_HMMGPU_VM_MODE_FAULT && (b->modes & modes[m].flag))
			fault = &modes[m];
	if (!fault) {
		printf("g  ranges: skipped, the device does not offer fault mode\n");
		return;
	}

	/* The page of B the storm discards reads zeros before and after. */
	buf_alloc(&a, STORM_SIZE, thp);
	buf_alloc(&bb, STORM_SIZE, thp);
	buf_fill(&bb, 8);
	memset(bb.ptr + STORM_SIZE / 2 / 4, 0, PAGE);
	for (size_t d = 0; d < ndesigns(); d++)
		ranges_design(b, &f[d], fault, &designs[d], &a, &bb);
	if (ndesigns() == ARRAY_SIZE(designs)) {
		against_seqonly(f[0].quiet, f[1].quiet);
		against_seqonly(f[0].storm, f[1].storm);
	}
	range_locks_set(range_locks_found);
	buf_free(&bb);
	buf_free(&a);
}

/* hmmgpu's module parameter max_mappings, the most mappings a VM holds; 0 when it has none. */
static unsigned long long max_mappings(void)
{
	unsigned long long most = 0;
	FILE *f = fopen(MAX_MAPPINGS_PARAM, "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu", &most) != 1)
		die("%s does not read as a number", MAX_MAPPINGS_PARAM);
	fclose(f);
	return most;
}

/* The times of SCALE_TIMED calls, summed by blocks of SCALE_BLOCK, and the longest. */
struct scale_times {
	double block_us[SCALE_BLOCKS];
	double worst_us;
};

static void scale_time(struct scale_times *t, unsigned int i, double us)
{
	t->block_us[i / SCALE_BLOCK] += us;
	if (us > t->worst_us)
		t->worst_us = us;
}

/* The figure's samples: the mean time of one call in each block. */
static void scale_samples(struct figure *f, const struct scale_times *t, const char *calls)
{
	for (unsigned int i = 0; i < SCALE_BLOCKS; i++)
		sample(f, 0, t->block_us[i] / SCALE_BLOCK);
	extra(f, ", \"timed\": %u, \"block\": %u, \"worst_us\": %.3f", SCALE_TIMED, SCALE_BLOCK,
	      t->worst_us);
	note(f, "means of %u %s; the longest %.1f us", SCALE_BLOCK, calls, t->worst_us);
}

struct scale_figures {
	struct figure *bind, *steady, *unbind, *unbind_all;
};

/*
 * Binds @n mappings of the page @handle read-only in @vm, timing each: the last SCALE_TIMED
 * into @t, all of them into *@total_us. Returns how many it bound: fewer than @n when a bind
 * was refused with -ENOSPC.
 */
static unsigned int scale_bind(struct bench *b, uint32_t vm, uint32_t handle, unsigned int n,
			       struct scale_times *t, double *total_us)
{
	const uint64_t start = ticks();
	uint64_t shown = start;
	unsigned int i;

	*total_us = 0;
	for (i = 0; i < n; i++) {
		uint64_t t0 = ticks();
		int err = hmmgpu_vm_map(b->fd, vm, handle, DRM_HMMGPU_VM_BIND_READ_ONLY,
					SCALE_VA + (uint64_t)i * PAGE, PAGE, 0);
		double us = us_since(t0);

		if (err == -ENOSPC)
			break;
		must(err, "VM_BIND map");
		*total_us += us;
		if (i >= n - SCALE_TIMED)
			scale_time(t, i - (n - SCALE_TIMED), us);
		if (i % SCALE_BLOCK == 0 && us_since(shown) >= SCALE_PROGRESS_US) {
			printf("h  scale     N=%u: %u bound in %.1f s\n", n, i,
			       us_since(start) / 1e6);
			shown = ticks();
		}
	}
	return i;
}

/*
 * Section h at @n mappings, in a VM of its own. Returns false when the driver refused a bind
 * with -ENOSPC before the n-th: the larger counts cannot be taken either.
 */
static bool scale_round(struct bench *b, const struct mode *fault, uint32_t handle,
			unsigned int n, uint64_t want, unsigned long long most,
			struct scale_figures *one)
{
	const uint64_t mid = SCALE_VA + (uint64_t)(n / 2) * PAGE;
	const unsigned int stride = n / SCALE_TIMED;
	const struct drm_hmmgpu_cmd cmd = checksum_cmd(mid, PAGE);
	struct scale_times bind = { 0 }, unbind = { 0 };
	struct drm_hmmgpu_vm_stats s0, s1;
	const uint64_t size = (uint64_t)n * PAGE;
	double bind_us, bind_s, all_us, us;
	struct scale_figures f;
	uint64_t start;
	const char *from;
	unsigned int bound;
	uint32_t vm;
	int err;

	printf("h  scale     N=%u: binding\n", n);
	vm = vm_new(b, fault);
	start = ticks();
	bound = scale_bind(b, vm, handle, n, &bind, &bind_us);
	bind_s = us_since(start) / 1e6;
	if (bound < n) {
		/* The VM's mappings: the result object's and those bound. */
		if (most)
			failed("N=%u: -ENOSPC at %u mappings, max_mappings=%llu", n, bound + 1,
			       most);
		else
			printf("h  scale     N=%u and up: skipped, -ENOSPC at %u mappings\n", n,
			       bound + 1);
		vm_free(b, vm);
		return false;
	}

	f = (struct scale_figures){
		figure('h', "4k", size, "%s bind N=%u", fault->name, n),
		figure('h', "4k", size, "%s steady exec N=%u", fault->name, n),
		figure('h', "4k", size, "%s unbind N=%u", fault->name, n),
		figure('h', "4k", size, "%s unbind all N=%u", fault->name, n),
	};
	if (!one->bind)
		*one = f;
	compare(f.bind, one->bind != f.bind ? one->bind : NULL, NULL);
	compare(f.steady, one->steady != f.steady ? one->steady : NULL, NULL);
	compare(f.unbind, one->unbind != f.unbind ? one->unbind : NULL, NULL);
	compare(f.unbind_all, one->unbind_all != f.unbind_all ? one->unbind_all : NULL, NULL);
	for (struct figure *p = f.bind; p <= f.unbind_all; p++)
		extra(p, ", \"mappings\": %u", n);

	/* The binds: the last SCALE_TIMED, at N - SCALE_TIMED to N mappings. */
	scale_samples(f.bind, &bind, "binds");
	extra(f.bind, ", \"mean_all_us\": %.3f", bind_us / n);
	note(f.bind, "; all %u: %.1f us each", n, bind_us / n);

	/* A checksum of the page through the middle mapping, after one untimed. */
	check_sum(gpu_checksum(b, vm, mid, PAGE, &us), want, f.steady->name);
	stats(b, vm, &s0);
	for (int rep = 0; rep < b->reps; rep++) {
		check_sum(gpu_checksum(b, vm, mid, PAGE, &us), want, f.steady->name);
		sample(f.steady, rep, us);
	}
	stats(b, vm, &s1);
	count_stats(f.steady, 0, &s0, &s1);

	/*
	 * SCALE_TIMED unbinds spread over the range, each mapping bound again (untimed) right
	 * after, so that the VM holds N mappings throughout and the middle one is among them.
	 */
	for (unsigned int i = 0; i < SCALE_TIMED; i++) {
		uint64_t va = SCALE_VA + (uint64_t)i * stride * PAGE;

		start = ticks();
		unmap(b, vm, va, PAGE);
		scale_time(&unbind, i, us_since(start));
		must(hmmgpu_vm_map(b->fd, vm, handle, DRM_HMMGPU_VM_BIND_READ_ONLY, va, PAGE, 0),
		     "VM_BIND map again");
	}
	scale_samples(f.unbind, &unbind, "unbinds");
	check_sum(gpu_checksum(b, vm, mid, PAGE, &us), want, "the middle mapping bound again");

	/* All N in one call, which must leave nothing for a job to read. */
	start = ticks();
	unmap(b, vm, SCALE_VA, size);
	all_us = us_since(start);
	sample(f.unbind_all, 0, all_us);
	extra(f.unbind_all, ", \"per_mapping_us\": %.4f", all_us / n);
	note(f.unbind_all, "%.3g us a mapping", all_us / n);
	if (one->unbind_all != f.unbind_all)
		note(f.unbind_all, ", %.2f times N=%u's", all_us / n / (median(one->unbind_all) /
		     SCALE_TIMED), SCALE_TIMED);
	*b->result = ~0ull;
	err = try_job(b, vm, &cmd, JOB_TIMEOUT_MS, &from);
	if (err != -EFAULT || strcmp(from, "job"))
		failed("%s: a job on the middle mapping after it: %s %s, expected the job to fault",
		       f.unbind_all->name, from, err ? hmmgpu_errname(err) : "done");

	vm_free(b, vm);
	printf("h  scale     N=%u: bound in %.1f s, all unbound in %.1f s\n", n, bind_s,
	       all_us / 1e6);
	return true;
}

/*
 * Section h: what bind, unbind and a job cost with 1000 to a million mappings in a fault-mode
 * VM, each against the same with 1000; on one GEM page, so THP does not apply.
 */
static void bench_scale(struct bench *b)
{
	const unsigned long long most = max_mappings();
	struct scale_figures one = { 0 };
	const struct mode *fault = NULL;
	uint32_t *page, handle;
	uint64_t want;
	void *ptr;

	for (size_t m = 0; m < NMODES; m++)
		if (modes[m].flag == DRM_HMMGPU_VM_MODE_FAULT && (b->modes & modes[m].flag))
			fault = &modes[m];
	if (!fault) {
		printf("h  scale: skipped, the device does not offer fault mode\n");
		return;
	}
	if (most)
		printf("h  scale     max_mappings=%llu (a VM's result object takes one)\n", most);
	else
		printf("h  scale     no max_mappings: the first -ENOSPC ends the section\n");

	must(hmmgpu_gem_create(b->fd, PAGE, &handle), "GEM_CREATE");
	must(hmmgpu_gem_mmap(b->fd, handle, PAGE, &ptr), "mmap of the GEM object");
	page = ptr;
	for (size_t i = 0; i < PAGE / 4; i++)
		page[i] = pattern(9, i);
	want = cpu_checksum(page, PAGE);

	for (size_t c = 0; c < ARRAY_SIZE(scale_counts); c++) {
		unsigned int n = scale_counts[c];

		if (n > b->scale_max) {
			printf("h  scale     N=%u and up: skipped, over -n %u\n", n, b->scale_max);
			break;
		}
		if (most && n + 1ull > most) {
			/* The result object's mapping is one of the VM's. */
			printf("h  scale     N=%u and up: skipped, over max_mappings=%llu\n", n,
			       most);
			break;
		}
		if (!scale_round(b, fault, handle, n, want, most, &one))
			break;
	}
	must(sys(munmap(ptr, PAGE)), "munmap of the GEM object");
	hmmgpu_gem_close(b->fd, handle);
}

/* Output. */

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static void json_figure(const struct figure *f)
{
	printf("HMMGPU-BENCH: {\"section\": \"%c\", \"case\": ", f->section);
	json_string(f->name);
	printf(", \"pages\": \"%s\", \"size\": %llu, \"thp_kb\": %ld, \"unit\": \"us\", "
	       "\"median\": %.3f, \"min\": %.3f, \"max\": %.3f, \"reps\": [",
	       f->pages, (unsigned long long)f->size, f->thp_kb, median(f), minimum(f),
	       maximum(f));
	for (unsigned int i = 0; i < f->n; i++)
		printf("%s%.3f", i ? ", " : "", f->us[i]);
	printf("], \"refs\": [");
	for (size_t r = 0; r < ARRAY_SIZE(f->refs) && f->refs[r]; r++) {
		printf("%s{\"case\": ", r ? ", " : "");
		json_string(f->refs[r]->name);
		printf(", \"median\": %.3f, \"ratio\": %.4f}", median(f->refs[r]),
		       ratio(f, f->refs[r]));
	}
	printf("]");
	if (f->has_stats)
		printf(", \"vm_stats\": {\"faults\": %llu, \"entries_4k\": %llu, "
		       "\"entries_2m\": %llu, \"invalidations\": %llu, \"retries\": %llu}",
		       (unsigned long long)f->vm.faults, (unsigned long long)f->vm.entries_4k,
		       (unsigned long long)f->vm.entries_2m, (unsigned long long)f->vm.invalidations,
		       (unsigned long long)f->vm.retries);
	printf("%s}\n", f->extra);
}

/* The figures taken since the last call, as JSON lines. */
static void emit(void)
{
	for (; emitted < nfigures; emitted++)
		json_figure(&figures[emitted]);
}

/* The unit that suits a time of @us, and its size in microseconds. */
static const char *unit_of(double us, double *div)
{
	*div = us >= 1e6 ? 1e6 : us >= 1e3 ? 1e3 : 1;
	return us >= 1e6 ? "s" : us >= 1e3 ? "ms" : "us";
}

/* @v with three significant digits (more before the point), without an exponent. */
static const char *num(char *out, size_t len, double v)
{
	snprintf(out, len, "%.*f", v >= 100 ? 0 : v >= 10 ? 1 : 2, v);
	return out;
}

static void fmt_time(char *out, size_t len, double us)
{
	char n[16];
	double div;
	const char *unit = unit_of(us, &div);

	snprintf(out, len, "%s %s", num(n, sizeof(n), us / div), unit);
}

/* Min-max, in the unit of the median. */
static void fmt_spread(char *out, size_t len, const struct figure *f)
{
	char lo[16], hi[16];
	double div;
	const char *unit = unit_of(median(f), &div);

	snprintf(out, len, "%s-%s %s", num(lo, sizeof(lo), minimum(f) / div),
		 num(hi, sizeof(hi), maximum(f) / div), unit);
}

static void fmt_size(char *out, size_t len, uint64_t size)
{
	if (size >= MIB)
		snprintf(out, len, "%llu MiB", (unsigned long long)(size / MIB));
	else
		snprintf(out, len, "%llu KiB", (unsigned long long)(size / KIB));
}

/* "4k", or "thp" with the share that really was THP. */
static void fmt_pages(char *out, size_t len, const struct figure *f)
{
	uint64_t kb = f->size / KIB;

	if (!strcmp(f->pages, "thp"))
		snprintf(out, len, "thp %ld%%", f->thp_kb < 0 ? 0 : (long)(f->thp_kb * 100 / kb));
	else if (f->thp_kb > 0)
		snprintf(out, len, "%s (thp %ld%%)", f->pages, (long)(f->thp_kb * 100 / kb));
	else
		snprintf(out, len, "%s", f->pages);
}

/* What the VM counted in one timed run, on average: faults and entries written. */
static void stats_note(struct figure *f)
{
	double n = f->n ? f->n : 1;

	if (!f->has_stats || f->note[0])
		return;
	snprintf(f->note, sizeof(f->note), "%.0f faults, %.0f+%.0f entries%s", f->vm.faults / n,
		 f->vm.entries_4k / n, f->vm.entries_2m / n,
		 f->vm.invalidations ? ", invalidated" : "");
}

static void table_line(const struct figure *f, const struct figure *ref)
{
	char pages[48], size[32], med[48], spread[64], refmed[48] = "-", r[32] = "-";

	fmt_pages(pages, sizeof(pages), f);
	fmt_size(size, sizeof(size), f->size);
	fmt_time(med, sizeof(med), median(f));
	fmt_spread(spread, sizeof(spread), f);
	if (ref) {
		fmt_time(refmed, sizeof(refmed), median(ref));
		snprintf(r, sizeof(r), "%.2f", ratio(f, ref));
	}
	printf("%c  %-32s %-9s %8s %10s %-20s %-32s %10s %7s%s%s\n", f->section, f->name, pages,
	       size, med, spread, ref ? ref->name : "-", refmed, r, f->note[0] ? "  " : "",
	       f->note);
}

static void table(void)
{
	printf("\n== results\n");
	printf("%-2s %-32s %-9s %8s %10s %-20s %-32s %10s %7s  %s\n", "", "case", "pages", "size",
	       "median", "spread", "reference", "ref median", "ratio",
	       "per run: GPU faults, 4k+2m entries written");
	for (unsigned int i = 0; i < nfigures; i++) {
		struct figure *f = &figures[i];

		stats_note(f);
		if (!f->refs[0])
			table_line(f, NULL);
		for (size_t r = 0; r < ARRAY_SIZE(f->refs) && f->refs[r]; r++)
			table_line(f, f->refs[r]);
	}
	printf("== end\n");
}

static void describe_run(const struct calibration *c, int reps, const char *sections,
			 const unsigned long *sizes, int nsizes, unsigned int scale_max)
{
	char thp[128] = "";
	struct utsname u;
	FILE *f;

	must(sys(uname(&u)), "uname");
	f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f || !fgets(thp, sizeof(thp), f))
		die("cannot read the THP setting: %s", strerror(errno));
	fclose(f);
	thp[strcspn(thp, "\n")] = 0;

	printf("kernel    %s, %ld CPUs online (the bench on CPU %d, its storm thread on CPU %d); "
	       "THP: %s\n", u.release, sysconf(_SC_NPROCESSORS_ONLN), BENCH_CPU,
	       sysconf(_SC_NPROCESSORS_ONLN) > STORM_CPU ? STORM_CPU : BENCH_CPU, thp);
	printf("clock     rdtsc, %.3f ticks/us over %.1f ms of CLOCK_MONOTONIC (clocksource %s, "
	       "clock_getres %ld ns, steps of %ld ns seen)\n", c->ticks_per_us, c->window_ms,
	       c->clocksource, c->res_ns, c->step_ns);
	printf("settings  %d reps after a warm-up; sections %s; sizes", reps, sections);
	for (int i = 0; i < nsizes; i++)
		printf(" %lu", sizes[i]);
	printf(" MiB; section h up to N=%u\n", scale_max);
	if (range_locks_found < 0)
		printf("design    %s: sections f and g take the kernel's design only\n",
		       range_locks_why);
	else
		printf("design    range_locks=%d: sections f and g take range_locks=1 and 0 "
		       "side by side, and set %d back\n", range_locks_found, range_locks_found);

	printf("HMMGPU-BENCH: {\"run\": {\"kernel\": ");
	json_string(u.release);
	printf(", \"cpus\": %ld, \"thp\": ", sysconf(_SC_NPROCESSORS_ONLN));
	json_string(thp);
	printf(", \"reps\": %d, \"warmup\": 1, \"sections\": ", reps);
	json_string(sections);
	printf(", \"sizes_mib\": [");
	for (int i = 0; i < nsizes; i++)
		printf("%s%lu", i ? ", " : "", sizes[i]);
	printf("], \"scale_max\": %u, \"range_locks\": ", scale_max);
	if (range_locks_found < 0)
		printf("null");
	else
		printf("%d", range_locks_found);
	printf(", \"calibration\": {\"clock\": \"rdtsc\", \"ticks_per_us\": %.4f, "
	       "\"window_ms\": %.3f, \"monotonic_res_ns\": %ld, \"monotonic_step_ns\": %ld, "
	       "\"clocksource\": ", c->ticks_per_us, c->window_ms, c->res_ns, c->step_ns);
	json_string(c->clocksource);
	printf("}}}\n");
}

/* Setup. */

/* Opens the device; sections a-f need all three modes, g fault mode (or it is skipped). */
static void open_device(struct bench *b, bool all_modes)
{
	void *ptr;

	b->fd = hmmgpu_open("hmmgpu");
	if (b->fd < 0)
		die("no hmmgpu render node (is hmmgpu loaded?)");
	b->modes = hmmgpu_param(b->fd, DRM_HMMGPU_PARAM_VM_MODES);
	for (size_t m = 0; all_modes && m < NMODES; m++)
		if (!(b->modes & modes[m].flag))
			die("the device does not offer %s mode (loaded with vm_modes=?)",
			    modes[m].name);
	must(hmmgpu_waiter_init(b->fd, &b->waiter), "drmSyncobjCreate");
	must(hmmgpu_gem_create(b->fd, PAGE, &b->result_bo), "GEM_CREATE of the result object");
	must(hmmgpu_gem_mmap(b->fd, b->result_bo, PAGE, &ptr), "mmap of the result object");
	b->result = ptr;
}

/* Runs the bench on BENCH_CPU (see the top of the file). */
static void pin_cpu(void)
{
	cpu_set_t cpus;

	CPU_ZERO(&cpus);
	CPU_SET(BENCH_CPU, &cpus);
	must(sys(sched_setaffinity(0, sizeof(cpus), &cpus)), "sched_setaffinity");
}

/* Pinned mode charges RLIMIT_MEMLOCK: a pinned VM of 256 MiB needs it raised. */
static void raise_memlock(void)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	must(sys(setrlimit(RLIMIT_MEMLOCK, &rl)), "setrlimit(RLIMIT_MEMLOCK)");
}

static void usage(void)
{
	printf("usage: hmmgpu_bench [-r REPS] [-s SECTIONS] [-n MAPPINGS] SIZE_MIB...\n"
	       "  -r REPS      repetitions of each figure after a warm-up (default 5)\n"
	       "  -s SECTIONS  which of the sections abcdefgh to run (default all)\n"
	       "  -n MAPPINGS  the largest N of section h, at least 1000 (default %u)\n"
	       "  SIZE_MIB     buffer sizes for sections a-d, multiples of 2\n", SCALE_MOST);
	exit(2);
}

static const char *const kinds[] = { "4k", "thp" };
static const char *const section_names[] = {
	"read", "pin", "copy/fill", "munmap", "mappings", "storm", "ranges", "scale",
};

/*
 * Runs @section at each size (sections a-d) or once (e-g), on 4 KiB pages, then THP; section h
 * once, on 4 KiB pages.
 */
static void run_section(struct bench *b, char section, const unsigned long *sizes, int nsizes)
{
	static void (*const sized[])(struct bench *, size_t, bool) = {
		bench_read, bench_pin, bench_copy, bench_munmap,
	};
	static void (*const once[])(struct bench *, bool) = {
		bench_mappings, bench_storm, bench_ranges,
	};
	bool per_size = section <= 'd';
	size_t nkinds = section == 'h' ? 1 : ARRAY_SIZE(kinds);

	for (size_t k = 0; k < nkinds; k++) {
		for (int i = 0; i < (per_size ? nsizes : 1); i++) {
			uint64_t start = ticks();
			char size[32] = "";

			if (per_size) {
				sized[section - 'a'](b, sizes[i] * MIB, k);
				fmt_size(size, sizeof(size), sizes[i] * MIB);
			} else if (section == 'h') {
				bench_scale(b);
			} else {
				once[section - 'e'](b, k);
			}
			printf("%c  %-9s %-3s %7s  done in %.1f s\n", section,
			       section_names[section - 'a'], kinds[k], size, us_since(start) / 1e6);
			emit();
		}
	}
}

int main(int argc, char **argv)
{
	unsigned long sizes[16];
	const char *sections = "abcdefgh";
	struct calibration cal;
	struct bench b = { .reps = 5, .scale_max = SCALE_MOST };
	uint64_t start;
	int opt, nsizes = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "r:s:n:")) != -1) {
		switch (opt) {
		case 'r':
			b.reps = atoi(optarg);
			break;
		case 's':
			sections = optarg;
			break;
		case 'n': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);

			if (*end || n < SCALE_TIMED || n > UINT_MAX)
				usage();
			b.scale_max = n;
			break;
		}
		default:
			usage();
		}
	}
	if (b.reps < 1 || b.reps >= MAX_SAMPLES || strspn(sections, "abcdefgh") != strlen(sections))
		usage();
	for (; optind < argc && nsizes < (int)ARRAY_SIZE(sizes); optind++) {
		char *end;

		sizes[nsizes] = strtoul(argv[optind], &end, 10);
		if (*end || !sizes[nsizes] || sizes[nsizes] % 2 || sizes[nsizes] > 1024)
			usage();
		nsizes++;
	}
	if (optind < argc || (!nsizes && strpbrk(sections, "abcd")))
		usage();

	pin_cpu();
	calibrate(&cal);
	range_locks_probe();
	describe_run(&cal, b.reps, sections, sizes, nsizes, b.scale_max);
	raise_memlock();
	kernel_copy_probe();
	open_device(&b, strpbrk(sections, "abcdef"));

	start = ticks();
	for (const char *s = "abcdefgh"; *s; s++)
		if (strchr(sections, *s))
			run_section(&b, *s, sizes, nsizes);
	table();
	printf("HMMGPU-BENCH: {\"done\": {\"figures\": %u, \"seconds\": %.1f, \"failures\": %d}}\n",
	       nfigures, us_since(start) / 1e6, failures);
	printf("bench: %u figures in %.0f s; %s\n", nfigures, us_since(start) / 1e6,
	       failures ? "FAILED (see above)" : "all data as expected");
	return failures ? 1 : 0;
}
