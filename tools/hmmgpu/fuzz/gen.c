// SPDX-License-Identifier: MIT
/*
 * Generation and mutation of programs, from a seeded generator so that a run
 * is repeated by its seed. Values are chosen to stay plausible: resource
 * indices are small, sizes and offsets sit on and next to page and 2 MiB
 * boundaries, flags are mostly valid with a bit flipped now and then.
 */
#include <string.h>
#include <sys/mman.h>

#include "fuzz.h"

#define KIB	1024ull
#define MIB	(1024 * KIB)
#define GIB	(1024 * MIB)

uint64_t fuzz_rand(struct fuzz_rng *r)
{
	/* xorshift64* */
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

uint64_t fuzz_below(struct fuzz_rng *r, uint64_t n)
{
	return n ? fuzz_rand(r) % n : 0;
}

bool fuzz_one_in(struct fuzz_rng *r, uint64_t n)
{
	return fuzz_below(r, n) == 0;
}

static const uint64_t sizes[] = {
	4 * KIB, 8 * KIB, 12 * KIB, 16 * KIB, 64 * KIB, 1 * MIB,
	2 * MIB - 4 * KIB, 2 * MIB, 2 * MIB + 4 * KIB, 4 * MIB, 4 * MIB + 8 * KIB, 8 * MIB,
};

/* Sizes past what a call accepts, or that it must handle without allocating them. */
static const uint64_t odd_sizes[] = {
	0, 1, 4095, 4097, 1ull << 32, (1ull << 32) + 4 * KIB, 1ull << 36,
	(1ull << 36) + 4 * KIB, ~0ull - 4095, 1 * GIB,
};

static const uint64_t offsets[] = {
	0, 0, 0, 4 * KIB, 8 * KIB, 1 * MIB, 2 * MIB - 4 * KIB, 2 * MIB, 2 * MIB + 4 * KIB,
	4 * MIB - 4 * KIB,
};

static uint64_t gen_size(struct fuzz_rng *r, uint32_t op)
{
	if (fuzz_one_in(r, op == OP_GEM_CREATE ? 12 : 40))
		return odd_sizes[fuzz_below(r, ARRAY_SIZE(odd_sizes))];
	/* 0 means the rest of the mapping for the calls on mappings. */
	if (op != OP_GEM_CREATE && op != OP_MMAP && op != OP_GEM_MMAP && fuzz_one_in(r, 3))
		return 0;
	if (fuzz_one_in(r, 8))
		return (1 + fuzz_below(r, 2048)) * 4 * KIB;
	return sizes[fuzz_below(r, ARRAY_SIZE(sizes))];
}

static uint64_t gen_offset(struct fuzz_rng *r)
{
	if (fuzz_one_in(r, 24))
		return fuzz_below(r, 8 * MIB);
	if (fuzz_one_in(r, 6))
		return fuzz_below(r, 2048) * 4 * KIB;
	return offsets[fuzz_below(r, ARRAY_SIZE(offsets))];
}

/* The valid flags of each operation's flag argument, and their usual value. */
static uint64_t gen_valid_flags(struct fuzz_rng *r, uint32_t op)
{
	switch (op) {
	case OP_USERPTR:
		return fuzz_below(r, 4);	/* READ_ONLY, PROBE */
	case OP_SYNCOBJ_CREATE:
		return fuzz_one_in(r, 3);	/* CREATE_SIGNALED */
	case OP_SYNCOBJ_WAIT:
		return fuzz_below(r, 8);	/* WAIT_ALL, FOR_SUBMIT, AVAILABLE */
	case OP_SYNCOBJ_QUERY:
	case OP_SYNCOBJ_EXPORT:
	case OP_SYNCOBJ_IMPORT:
		return fuzz_one_in(r, 2);
	case OP_SYNCOBJ_TRANSFER:
		/* WAIT_FOR_SUBMIT waits up to DRM's own limit of seconds for a fence. */
		return fuzz_one_in(r, 16);
	case OP_PRIME_EXPORT:
		return fuzz_below(r, 4);	/* CLOEXEC, RDWR */
	case OP_MMAP:
		return fuzz_one_in(r, 8) ? PROT_READ : PROT_READ | PROT_WRITE;
	case OP_MPROTECT:
		return fuzz_below(r, 4);	/* NONE, READ, WRITE, both */
	case OP_MREMAP:
		return fuzz_below(r, 8);	/* MAYMOVE, FIXED, DONTUNMAP */
	case OP_BIND:
		/* READ_ONLY maps, or (rarely) the invalid encodings the executor knows. */
		return fuzz_one_in(r, 4);
	default:
		return 0;
	}
}

static uint64_t gen_flags(struct fuzz_rng *r, uint32_t op)
{
	uint64_t f = gen_valid_flags(r, op);

	if (fuzz_one_in(r, 20))
		f ^= 1ull << fuzz_below(r, 8);
	if (fuzz_one_in(r, 200))
		f ^= 1ull << fuzz_below(r, 32);
	return f;
}

static uint64_t gen_count(struct fuzz_rng *r)
{
	if (fuzz_one_in(r, 50))
		return fuzz_one_in(r, 2) ? 17 : 513;	/* past HMMGPU_MAX_SYNCS, _MAX_OPS */
	if (fuzz_one_in(r, 10))
		return fuzz_below(r, 16);
	return fuzz_below(r, 4) + (fuzz_one_in(r, 6) ? 0 : 1);
}

uint64_t fuzz_gen_arg(struct fuzz_rng *r, uint32_t op, int i)
{
	switch (fuzz_ops[op].args[i]) {
	case ARG_IDX:
		/* The first resources most often, so that calls meet on the same file. */
		if (fuzz_one_in(r, 16))
			return fuzz_below(r, 64);
		if (fuzz_one_in(r, 4))
			return FUZZ_NEWEST + fuzz_below(r, 2);
		if (fuzz_one_in(r, 3))
			return fuzz_below(r, 8);
		return fuzz_below(r, 2);
	case ARG_SIZE:
		return gen_size(r, op);
	case ARG_OFF:
		return gen_offset(r);
	case ARG_FLAGS:
		return gen_flags(r, op);
	case ARG_SEED:
		return fuzz_rand(r) & 0xffffffff;
	case ARG_COUNT:
		return gen_count(r);
	case ARG_CHOICE:
		return fuzz_below(r, 8);
	default:
		return 0;
	}
}

void fuzz_gen_call(struct fuzz_rng *r, struct fuzz_call *c, uint32_t op)
{
	int i;

	memset(c, 0, sizeof(*c));
	c->op = op;
	for (i = 0; i < FUZZ_MAX_ARGS && fuzz_ops[op].args[i] != ARG_NONE; i++)
		c->a[i] = fuzz_gen_arg(r, op, i);
}

static uint32_t pick_op(struct fuzz_rng *r)
{
	unsigned int total = 0, op;
	uint64_t x;

	for (op = 0; op < OP_COUNT; op++)
		total += fuzz_ops[op].weight;
	x = fuzz_below(r, total);
	for (op = 0; op < OP_COUNT; op++) {
		if (x < fuzz_ops[op].weight)
			return op;
		x -= fuzz_ops[op].weight;
	}
	return OP_OPEN;
}

static void add(struct fuzz_rng *r, struct fuzz_prog *p, uint32_t op)
{
	if (p->n < FUZZ_MAX_CALLS)
		fuzz_gen_call(r, &p->c[p->n++], op);
}

/* Adds @op with argument @i set to @v. */
static void add_with(struct fuzz_rng *r, struct fuzz_prog *p, uint32_t op, int i, uint64_t v)
{
	if (p->n < FUZZ_MAX_CALLS) {
		fuzz_gen_call(r, &p->c[p->n], op);
		p->c[p->n++].a[i] = v;
	}
}

/*
 * Sequences that hand a resource from one call to the next (the newest of its
 * kind), which separate random calls rarely line up.
 */
static void add_snippet(struct fuzz_rng *r, struct fuzz_prog *p)
{
	switch (fuzz_below(r, 5)) {
	case 0:		/* a GEM object shared with another file through PRIME, bound there */
		add_with(r, p, OP_GEM_CREATE, 1, 2 * MIB);
		add_with(r, p, OP_PRIME_EXPORT, 0, FUZZ_NEWEST);
		add(r, p, OP_OPEN);
		add_with(r, p, OP_PRIME_IMPORT, 0, FUZZ_NEWEST);
		p->c[p->n - 1].a[1] = FUZZ_NEWEST;
		add_with(r, p, OP_VM_CREATE, 0, FUZZ_NEWEST);
		add_with(r, p, OP_BIND, 0, FUZZ_NEWEST);
		add_with(r, p, OP_EXEC, 0, FUZZ_NEWEST);
		break;
	case 1:		/* a job's fence out as a sync_file, into another file's sync object */
		add_with(r, p, OP_SYNCOBJ_CREATE, 0, 0);
		add_with(r, p, OP_EXEC, 3, 2);
		add_with(r, p, OP_SYNCOBJ_EXPORT, 0, FUZZ_NEWEST);
		p->c[p->n - 1].a[1] = fuzz_below(r, 2);
		add_with(r, p, OP_SYNCOBJ_CREATE, 0, 1);
		add_with(r, p, OP_SYNCOBJ_IMPORT, 0, FUZZ_NEWEST);
		p->c[p->n - 1].a[1] = 1;
		p->c[p->n - 1].a[2] = p->c[p->n - 3].a[1];
		break;
	case 2:		/* memory bound, then changed under the GPU */
		add_with(r, p, OP_MMAP, 1, 1);
		add_with(r, p, OP_USERPTR, 1, FUZZ_NEWEST);
		p->c[p->n - 1].a[3] = 0;
		add_with(r, p, OP_BIND, 0, FUZZ_NEWEST);
		add_with(r, p, OP_EXEC, 0, FUZZ_NEWEST);
		add_with(r, p, fuzz_below(r, 2) ? OP_MADVISE : OP_MUNMAP, 0, FUZZ_NEWEST);
		add_with(r, p, OP_EXEC, 0, FUZZ_NEWEST);
		add(r, p, OP_WAIT_UFENCE);
		break;
	case 3:		/* a file passed on, its VMs used by the receiver */
		add_with(r, p, OP_SEND_FD, 1, 3);
		add_with(r, p, OP_EXEC, 0, FUZZ_NEWEST);
		add_with(r, p, OP_BIND, 0, FUZZ_NEWEST);
		add_with(r, p, OP_VM_DESTROY, 0, FUZZ_NEWEST);
		break;
	default:	/* a child with the parent's files, memory and VMs */
		add_with(r, p, OP_FORK, 0, 3);
		add_with(r, p, OP_EXEC, 0, FUZZ_NEWEST);
		add_with(r, p, OP_MUNMAP, 0, 0);
		add(r, p, OP_BIND);
		break;
	}
}

void fuzz_generate(struct fuzz_rng *r, struct fuzz_prog *p)
{
	unsigned int len = 8 + fuzz_below(r, 32), i;

	p->n = 0;
	/* A prologue that makes something to work on: files, memory, VMs, objects. */
	for (i = 0; i <= fuzz_below(r, 2); i++)
		add(r, p, OP_OPEN);
	for (i = 0; i <= fuzz_below(r, 2); i++)
		add(r, p, OP_MMAP);
	for (i = 0; i <= fuzz_below(r, 2); i++)
		add(r, p, OP_VM_CREATE);
	for (i = 0; i <= fuzz_below(r, 3); i++)
		add(r, p, fuzz_one_in(r, 3) ? OP_GEM_CREATE : OP_USERPTR);
	if (fuzz_one_in(r, 2))
		add(r, p, OP_SYNCOBJ_CREATE);
	for (i = 0; i <= fuzz_below(r, 2); i++)
		add(r, p, OP_BIND);
	/* The prologue works on the first file, mostly. */
	for (i = 0; i < p->n; i++)
		if (p->c[i].op != OP_MMAP && p->c[i].op != OP_BIND && !fuzz_one_in(r, 8))
			p->c[i].a[0] = 0;
	while (p->n < len) {
		if (fuzz_one_in(r, 8))
			add_snippet(r, p);
		else
			add(r, p, pick_op(r));
	}
}

static void mutate_arg(struct fuzz_rng *r, struct fuzz_call *c)
{
	int n = fuzz_op_nargs(c->op), i;
	uint64_t *a;

	if (!n)
		return;
	i = fuzz_below(r, n);
	a = &c->a[i];
	switch (fuzz_ops[c->op].args[i]) {
	case ARG_IDX:
	case ARG_COUNT:
		*a = fuzz_one_in(r, 2) ? *a + 1 : (*a ? *a - 1 : 0);
		break;
	case ARG_SIZE:
	case ARG_OFF:
		if (fuzz_one_in(r, 2))
			*a += fuzz_one_in(r, 2) ? 4096 : -4096ull;
		else if (fuzz_one_in(r, 4))
			*a *= 2;
		else
			*a = fuzz_gen_arg(r, c->op, i);
		break;
	case ARG_FLAGS:
		if (fuzz_one_in(r, 2))
			*a ^= 1ull << fuzz_below(r, 8);
		else
			*a = fuzz_gen_arg(r, c->op, i);
		break;
	default:
		*a = fuzz_gen_arg(r, c->op, i);
		break;
	}
}

void fuzz_mutate(struct fuzz_rng *r, struct fuzz_prog *p, const struct fuzz_prog *other)
{
	unsigned int rounds = 1 + fuzz_below(r, 4), k;

	for (k = 0; k < rounds; k++) {
		unsigned int i = fuzz_below(r, p->n ? p->n : 1), j;

		switch (fuzz_below(r, 9)) {
		case 0:		/* insert a new call */
		case 1:
			if (p->n == FUZZ_MAX_CALLS)
				break;
			memmove(&p->c[i + 1], &p->c[i], (p->n - i) * sizeof(p->c[0]));
			fuzz_gen_call(r, &p->c[i], pick_op(r));
			p->n++;
			break;
		case 7:		/* a snippet at the end */
			add_snippet(r, p);
			break;
		case 2:		/* remove one */
			if (p->n <= 1)
				break;
			memmove(&p->c[i], &p->c[i + 1], (p->n - i - 1) * sizeof(p->c[0]));
			p->n--;
			break;
		case 3:		/* repeat one further on */
			if (!p->n || p->n == FUZZ_MAX_CALLS)
				break;
			j = i + fuzz_below(r, p->n - i + 1);
			memmove(&p->c[j + 1], &p->c[j], (p->n - j) * sizeof(p->c[0]));
			p->c[j] = p->c[i < j ? i : i + 1];
			p->n++;
			break;
		case 4:		/* splice: this program's head, the other's tail */
			if (!other || !other->n)
				break;
			j = fuzz_below(r, other->n);
			while (i < FUZZ_MAX_CALLS && j < other->n)
				p->c[i++] = other->c[j++];
			p->n = i;
			break;
		default:	/* change an argument */
			if (p->n)
				mutate_arg(r, &p->c[i]);
			break;
		}
	}
	if (!p->n)
		fuzz_generate(r, p);
}
