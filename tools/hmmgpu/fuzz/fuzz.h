/* SPDX-License-Identifier: MIT */
/*
 * hmmgpu_fuzz: a coverage-guided fuzzer of the hmmgpu ioctl surface.
 *
 * A program is a list of calls, each an operation and a few integer
 * arguments. Arguments that name a resource (a file, a VM, a GEM object, a
 * mapping, a sync object) are indices into what the program created before,
 * resolved modulo their number when the call runs, so that any mutation of
 * them still names something real; structures (bind operations, command
 * buffers, sync arrays) are derived from a seed argument and the resources
 * of the moment. The text form (prog.c) is what reproducers are saved in.
 */
#ifndef HMMGPU_FUZZ_H
#define HMMGPU_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define FUZZ_MAX_ARGS	6
/* A resource index from this value on counts back from the newest resource. */
#define FUZZ_NEWEST	0x100
#define FUZZ_MAX_CALLS	64

enum fuzz_op {
	OP_OPEN, OP_CLOSE, OP_DUP, OP_GET_PARAM,
	OP_VM_CREATE, OP_VM_DESTROY, OP_VM_STATS,
	OP_GEM_CREATE, OP_GEM_MMAP, OP_USERPTR, OP_GEM_CLOSE,
	OP_BIND, OP_EXEC, OP_WAIT_UFENCE,
	OP_SYNCOBJ_CREATE, OP_SYNCOBJ_DESTROY, OP_SYNCOBJ_WAIT, OP_SYNCOBJ_SIGNAL,
	OP_SYNCOBJ_RESET, OP_SYNCOBJ_QUERY, OP_SYNCOBJ_TRANSFER, OP_SYNCOBJ_EXPORT,
	OP_SYNCOBJ_IMPORT, OP_PRIME_EXPORT, OP_PRIME_IMPORT,
	OP_MMAP, OP_MUNMAP, OP_MPROTECT, OP_MADVISE, OP_MREMAP, OP_TOUCH,
	OP_FORK, OP_SEND_FD, OP_SLEEP,
	OP_COUNT
};

/* What an argument means, which says how to generate and mutate it. */
enum fuzz_arg {
	ARG_NONE,
	ARG_IDX,	/* a resource index, modulo the count (FUZZ_NEWEST: from the end) */
	ARG_SIZE,	/* a size in bytes, near page and 2 MiB boundaries */
	ARG_OFF,	/* an offset in bytes, likewise */
	ARG_FLAGS,	/* the operation's flags, mostly valid */
	ARG_SEED,	/* seeds a structure the executor derives */
	ARG_COUNT,	/* a small count */
	ARG_CHOICE,	/* a small selector */
};

struct fuzz_op_desc {
	const char *name;
	enum fuzz_arg args[FUZZ_MAX_ARGS];
	/* Relative frequency in generated programs. */
	unsigned int weight;
};

extern const struct fuzz_op_desc fuzz_ops[OP_COUNT];

struct fuzz_call {
	uint32_t op;
	uint64_t a[FUZZ_MAX_ARGS];
};

struct fuzz_prog {
	unsigned int n;
	struct fuzz_call c[FUZZ_MAX_CALLS];
};

/* prog.c: the text form, one call a line: "name arg..." in hex; '#' starts a comment. */
#define FUZZ_TEXT_MAX	(64 * 1024)
int fuzz_op_nargs(uint32_t op);
/* Writes @p's text into @buf, NUL-terminated; its length. */
size_t fuzz_prog_format(const struct fuzz_prog *p, char *buf, size_t size);
void fuzz_prog_print(const struct fuzz_prog *p, int fd);
int fuzz_prog_parse(struct fuzz_prog *p, const char *text);
int fuzz_prog_load(struct fuzz_prog *p, const char *path);

/* gen.c: deterministic random numbers, generation and mutation. */
struct fuzz_rng {
	uint64_t s;
};

uint64_t fuzz_rand(struct fuzz_rng *r);
/* A number below @n (0 when @n is 0). */
uint64_t fuzz_below(struct fuzz_rng *r, uint64_t n);
/* True one time in @n. */
bool fuzz_one_in(struct fuzz_rng *r, uint64_t n);
uint64_t fuzz_gen_arg(struct fuzz_rng *r, uint32_t op, int i);
void fuzz_gen_call(struct fuzz_rng *r, struct fuzz_call *c, uint32_t op);
void fuzz_generate(struct fuzz_rng *r, struct fuzz_prog *p);
/* Mutates @p in place; @other, if not NULL, may be spliced in. */
void fuzz_mutate(struct fuzz_rng *r, struct fuzz_prog *p, const struct fuzz_prog *other);

/* Counters the executor's processes share with the fuzzer (a shared mapping). */
struct fuzz_stats {
	uint64_t ioctls;
	uint64_t ioctls_ok;
	uint64_t calls;
	/* Calls of each operation, and those that succeeded. */
	uint64_t op_calls[OP_COUNT];
	uint64_t op_ok[OP_COUNT];
	/* Their failures by errno. */
#define FUZZ_ERRNOS	128
	uint64_t op_err[OP_COUNT][FUZZ_ERRNOS];
};

/* exec.c: runs a program in the calling process; returns when it is done. */
struct fuzz_exec_opts {
	const char *node;		/* the render node */
	struct fuzz_stats *stats;	/* shared counters */
	bool verbose;			/* print each call's result */
};

void fuzz_exec(const struct fuzz_prog *p, const struct fuzz_exec_opts *o);

/* kcov.c: coverage of the executor, and the set of distinct PCs seen. */
bool kcov_open(void);
bool kcov_available(void);
/* In the executor, before the program. */
void kcov_enable(void);
/* In the executor, after it. */
void kcov_disable(void);
/* In the fuzzer, after the executor ended: how many PCs were new. */
size_t kcov_collect(void);
/*
 * Distinct PCs in all, in hmmgpu's text (and of those, in the framework's generic code it
 * instantiates), in the framework in vmlinux, in DRM, dma-buf and sync C code.
 */
void kcov_report(size_t *total, size_t *hmmgpu, size_t *hmmgpu_fw, size_t *framework,
		 size_t *drm);
/* How the ranges were found, for the closing lines. */
void kcov_describe(FILE *f);

/* health.c: a fresh file, VM, userptr bind and a job whose result is checked. */
int fuzz_health(const char *node, char *why, size_t len);

/* kmsg.c: new kernel log lines that report a problem. */
void kmsg_open(void);
/* Copies up to @len bytes of the reports since the last call into @buf; their number. */
int kmsg_check(char *buf, size_t len);

/* The render node of the hmmgpu device, or NULL. */
const char *fuzz_find_node(void);

#endif /* HMMGPU_FUZZ_H */
