// SPDX-License-Identifier: MIT
/*
 * Coverage from the guest kernel's KCOV (CONFIG_KCOV, /sys/kernel/debug/kcov):
 * the executor enables KCOV_TRACE_PC on itself for the program; the fuzzer
 * then adds the PCs to the set of distinct PCs seen, and a program that added
 * any is kept in the corpus.
 *
 * Where a PC is: /proc/kallsyms gives every text symbol (types t, T, w, W);
 * a symbol's range runs from its address to the next symbol's. A PC in a
 * symbol tagged [hmmgpu] at or past /sys/module/hmmgpu/sections/.text is
 * hmmgpu's (the module's text); a PC in a vmlinux symbol whose mangled name
 * holds the path of one of the framework's modules of the `kernel` crate (v0
 * mangling: the crate root `_6kernel` followed by the module's name,
 * "_6kernel2mm", "_6kernel3drm", "_6kernel9dma_fence", ...) is the
 * framework's. The framework's generic code is compiled into the module that
 * instantiates it: hmmgpu's PCs in symbols whose own path is the framework's
 * (it comes before any "_6hmmgpu" of a generic argument or of the impl) are
 * counted apart as well; one in the C code of DRM, dma-buf, dma-fence and sync_file
 * (drm_*, dma_buf*, dma_fence*, dma_resv*, sync_file*) is counted on its own.
 *
 * The Rust code is instrumented only if the kernel passes the KCOV flags to
 * rustc, which Linux 6.12 does not do by itself: without that, Rust PCs never
 * appear and the hmmgpu and framework counts stay at zero.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

#define KCOV_INIT_TRACE	_IOR('c', 1, unsigned long)
#define KCOV_ENABLE	_IO('c', 100)
#define KCOV_DISABLE	_IO('c', 101)
#define KCOV_TRACE_PC	0
#define COVER_SIZE	(1 << 20)

static int kcov_fd = -1;
static unsigned long *cover;

/* The set of distinct PCs: open addressing, 0 for an empty slot. */
static uint64_t *set;
static size_t set_cap, set_len;

bool kcov_open(void)
{
	kcov_fd = open("/sys/kernel/debug/kcov", O_RDWR);
	if (kcov_fd < 0)
		return false;
	if (ioctl(kcov_fd, KCOV_INIT_TRACE, COVER_SIZE))
		goto fail;
	cover = mmap(NULL, COVER_SIZE * sizeof(unsigned long), PROT_READ | PROT_WRITE, MAP_SHARED,
		     kcov_fd, 0);
	if (cover == MAP_FAILED)
		goto fail;
	return true;
fail:
	close(kcov_fd);
	kcov_fd = -1;
	return false;
}

bool kcov_available(void)
{
	return kcov_fd >= 0;
}

void kcov_enable(void)
{
	if (kcov_fd < 0)
		return;
	if (ioctl(kcov_fd, KCOV_ENABLE, KCOV_TRACE_PC))
		return;
	__atomic_store_n(&cover[0], 0, __ATOMIC_RELAXED);
}

void kcov_disable(void)
{
	if (kcov_fd >= 0)
		ioctl(kcov_fd, KCOV_DISABLE, 0);
}

static uint64_t hash(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static bool set_add(uint64_t pc)
{
	size_t i;

	if ((set_len + 1) * 2 > set_cap) {
		uint64_t *old = set;
		size_t old_cap = set_cap, j;

		set_cap = set_cap ? set_cap * 2 : 1 << 16;
		set = calloc(set_cap, sizeof(*set));
		set_len = 0;
		for (j = 0; j < old_cap; j++)
			if (old[j])
				set_add(old[j]);
		free(old);
	}
	for (i = hash(pc) & (set_cap - 1); set[i]; i = (i + 1) & (set_cap - 1))
		if (set[i] == pc)
			return false;
	set[i] = pc;
	set_len++;
	return true;
}

size_t kcov_collect(void)
{
	size_t n, i, added = 0;

	if (kcov_fd < 0)
		return 0;
	n = __atomic_load_n(&cover[0], __ATOMIC_RELAXED);
	if (n > COVER_SIZE - 1)
		n = COVER_SIZE - 1;
	for (i = 0; i < n; i++)
		added += set_add(cover[i + 1]);
	__atomic_store_n(&cover[0], 0, __ATOMIC_RELAXED);
	return added;
}

/* W_HMMGPU_FW: in hmmgpu's text, in framework code it instantiates (generics). */
enum where { W_OTHER, W_HMMGPU, W_HMMGPU_FW, W_FRAMEWORK, W_DRM };

struct sym {
	uint64_t addr;
	enum where where;
};

static struct sym *syms;
static size_t nsyms;
static uint64_t mod_text, mod_end;

/* The framework's modules of the kernel crate, as their paths start in v0 mangled names. */
static const char *const framework[] = {
	"_6kernel2mm", "_6kernel3drm", "_6kernel9dma_fence", "_6kernel12module_param",
	"_6kernel8platform", "_6kernel4sync10wait_queue",
};

static const char *const drm_c[] = {
	"drm_", "dma_buf", "dma_fence", "dma_resv", "sync_file",
};

static enum where classify(const char *name, const char *mod)
{
	const char *own;
	size_t i;

	if (mod && strcmp(mod, "[hmmgpu]"))
		return W_OTHER;
	/*
	 * The item's own path comes first in a v0 name ("_RNvMNtNtCs<hash>_6kernel2mm3hmm..."
	 * for a method of kernel::mm::hmm::Range<hmmgpu::mirror::Mirror>), generic arguments
	 * and the trait of an impl after it.
	 */
	own = strstr(name, "_6hmmgpu");
	for (i = 0; i < ARRAY_SIZE(framework); i++) {
		const char *at = strstr(name, framework[i]);

		if (at && (!own || at < own))
			return mod ? W_HMMGPU_FW : W_FRAMEWORK;
	}
	if (mod)
		return W_HMMGPU;
	for (i = 0; i < ARRAY_SIZE(drm_c); i++)
		if (!strncmp(name, drm_c[i], strlen(drm_c[i])))
			return W_DRM;
	return W_OTHER;
}

static int by_addr(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void load_symbols(void)
{
	char line[4096];
	size_t cap = 0;
	FILE *f;

	f = fopen("/sys/module/hmmgpu/sections/.text", "r");
	if (f) {
		if (fscanf(f, "%llx", (unsigned long long *)&mod_text) != 1)
			mod_text = 0;
		fclose(f);
	}
	f = fopen("/proc/kallsyms", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char type, name[4000], mod[64];
		unsigned long long addr;
		int n = sscanf(line, "%llx %c %3999s %63s", &addr, &type, name, mod);
		enum where w;

		if (n < 3 || !strchr("tTwW", type) || !addr)
			continue;
		w = classify(name, n == 4 ? mod : NULL);
		if ((w == W_HMMGPU || w == W_HMMGPU_FW) && (!mod_text || addr < mod_text))
			w = W_OTHER;
		if ((w == W_HMMGPU || w == W_HMMGPU_FW) && addr > mod_end)
			mod_end = addr;
		if (nsyms == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			syms = realloc(syms, cap * sizeof(*syms));
		}
		syms[nsyms++] = (struct sym){ addr, w };
	}
	fclose(f);
	qsort(syms, nsyms, sizeof(*syms), by_addr);
}

static enum where where_is(uint64_t pc)
{
	size_t lo = 0, hi = nsyms;

	/* The last symbol at or below the PC. */
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (syms[mid].addr <= pc)
			lo = mid;
		else
			hi = mid;
	}
	return nsyms && syms[lo].addr <= pc ? syms[lo].where : W_OTHER;
}

void kcov_report(size_t *total, size_t *hmmgpu, size_t *hmmgpu_fw, size_t *fw, size_t *drm)
{
	size_t i;

	*total = set_len;
	*hmmgpu = *hmmgpu_fw = *fw = *drm = 0;
	if (!syms)
		load_symbols();
	for (i = 0; i < set_cap; i++) {
		if (!set[i])
			continue;
		switch (where_is(set[i])) {
		case W_HMMGPU_FW:
			(*hmmgpu_fw)++;
			(*hmmgpu)++;
			break;
		case W_HMMGPU:
			(*hmmgpu)++;
			break;
		case W_FRAMEWORK:
			(*fw)++;
			break;
		case W_DRM:
			(*drm)++;
			break;
		default:
			break;
		}
	}
}

void kcov_describe(FILE *f)
{
	if (!syms)
		load_symbols();
	if (!nsyms)
		fprintf(f, "fuzz: kcov: no symbols in /proc/kallsyms: PCs not placed\n");
	else if (!mod_text)
		fprintf(f, "fuzz: kcov: hmmgpu's .text not found (module not loaded?)\n");
	else
		fprintf(f, "fuzz: kcov: hmmgpu text %#llx..%#llx (.text to its last symbol)\n",
			(unsigned long long)mod_text, (unsigned long long)mod_end);
}
