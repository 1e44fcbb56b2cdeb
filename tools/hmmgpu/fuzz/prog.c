// SPDX-License-Identifier: MIT
/*
 * The operations a program is made of, and its text form: one call a line,
 * the operation's name and its arguments in hexadecimal. Reproducers are saved
 * in it and replayed from it (hmmgpu_fuzz -r FILE). '#' starts a comment.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

#define I ARG_IDX
#define S ARG_SIZE
#define O ARG_OFF
#define F ARG_FLAGS
#define SEED ARG_SEED
#define N ARG_COUNT
#define C ARG_CHOICE

const struct fuzz_op_desc fuzz_ops[OP_COUNT] = {
	[OP_OPEN]		= { "open",		{ },			3 },
	[OP_CLOSE]		= { "close",		{ I },			1 },
	[OP_DUP]		= { "dup",		{ I },			1 },
	[OP_GET_PARAM]		= { "get_param",	{ I, C, F },		1 },
	/* file, mode, flags */
	[OP_VM_CREATE]		= { "vm_create",	{ I, C, F },		4 },
	[OP_VM_DESTROY]		= { "vm_destroy",	{ I },			1 },
	[OP_VM_STATS]		= { "vm_stats",		{ I, F },		1 },
	/* file, size, flags */
	[OP_GEM_CREATE]		= { "gem_create",	{ I, S, F },		3 },
	/* object, length */
	[OP_GEM_MMAP]		= { "gem_mmap",		{ I, S },		2 },
	/* file, mapping, offset, size, flags */
	[OP_USERPTR]		= { "userptr",		{ I, I, O, S, F },	6 },
	[OP_GEM_CLOSE]		= { "gem_close",	{ I },			1 },
	/* VM, operations, seed, syncs, flags */
	[OP_BIND]		= { "bind",		{ I, N, SEED, N, F },	10 },
	/* VM, commands, seed, syncs, timeout, flags */
	[OP_EXEC]		= { "exec",		{ I, N, SEED, N, C, F },	12 },
	/* fence slot, compare, timeout, flags */
	[OP_WAIT_UFENCE]	= { "wait_ufence",	{ I, C, C, F },		4 },
	/* file, flags */
	[OP_SYNCOBJ_CREATE]	= { "syncobj_create",	{ I, F },		3 },
	[OP_SYNCOBJ_DESTROY]	= { "syncobj_destroy",	{ I },			1 },
	/* sync object, count, timeline, flags */
	[OP_SYNCOBJ_WAIT]	= { "syncobj_wait",	{ I, N, C, F },		3 },
	[OP_SYNCOBJ_SIGNAL]	= { "syncobj_signal",	{ I, C, F },		2 },
	[OP_SYNCOBJ_RESET]	= { "syncobj_reset",	{ I },			1 },
	[OP_SYNCOBJ_QUERY]	= { "syncobj_query",	{ I, F },		1 },
	/* source, destination, points, flags */
	[OP_SYNCOBJ_TRANSFER]	= { "syncobj_transfer",	{ I, I, C, F },		2 },
	/* sync object, flags (sync_file or not) */
	[OP_SYNCOBJ_EXPORT]	= { "syncobj_export",	{ I, F },		2 },
	/* exported fd, file, flags */
	[OP_SYNCOBJ_IMPORT]	= { "syncobj_import",	{ I, I, F },		2 },
	/* object, flags */
	[OP_PRIME_EXPORT]	= { "prime_export",	{ I, F },		2 },
	/* exported fd, file */
	[OP_PRIME_IMPORT]	= { "prime_import",	{ I, I },		2 },
	/* size, kind, prot */
	[OP_MMAP]		= { "mmap",		{ S, C, F },		4 },
	/* mapping, offset, size */
	[OP_MUNMAP]		= { "munmap",		{ I, O, S },		2 },
	[OP_MPROTECT]		= { "mprotect",		{ I, O, S, F },		2 },
	[OP_MADVISE]		= { "madvise",		{ I, O, S, C },		3 },
	/* mapping, new size, flags */
	[OP_MREMAP]		= { "mremap",		{ I, S, F },		1 },
	/* mapping, offset, size, value */
	[OP_TOUCH]		= { "touch",		{ I, O, S, SEED },	3 },
	/* calls the child runs, whether the parent waits, how the child ends */
	[OP_FORK]		= { "fork",		{ N, C, C },		2 },
	/* file, calls the receiver runs, whether the sender closes its fd, waits */
	[OP_SEND_FD]		= { "send_fd",		{ I, N, C, C },		1 },
	/* microseconds */
	[OP_SLEEP]		= { "sleep",		{ C },			1 },
};

int fuzz_op_nargs(uint32_t op)
{
	int n = 0;

	while (n < FUZZ_MAX_ARGS && fuzz_ops[op].args[n] != ARG_NONE)
		n++;
	return n;
}

size_t fuzz_prog_format(const struct fuzz_prog *p, char *buf, size_t size)
{
	size_t len = 0;
	unsigned int i;
	int j;

	if (size)
		buf[0] = 0;
	for (i = 0; i < p->n && len + 1 < size; i++) {
		const struct fuzz_call *c = &p->c[i];

		len += snprintf(buf + len, size - len, "%s", fuzz_ops[c->op].name);
		for (j = 0; j < fuzz_op_nargs(c->op) && len < size; j++)
			len += snprintf(buf + len, size - len, " %#llx",
					(unsigned long long)c->a[j]);
		if (len < size)
			len += snprintf(buf + len, size - len, "\n");
	}
	return len < size ? len : size - 1;
}

void fuzz_prog_print(const struct fuzz_prog *p, int fd)
{
	static char text[FUZZ_TEXT_MAX];
	size_t len = fuzz_prog_format(p, text, sizeof(text));

	if (write(fd, text, len) != (ssize_t)len)
		return;
}

static int op_by_name(const char *name, size_t len)
{
	int op;

	for (op = 0; op < OP_COUNT; op++)
		if (strlen(fuzz_ops[op].name) == len && !strncmp(fuzz_ops[op].name, name, len))
			return op;
	return -1;
}

int fuzz_prog_parse(struct fuzz_prog *p, const char *text)
{
	const char *line = text;
	int lineno = 0;

	p->n = 0;
	while (*line) {
		const char *end = strchr(line, '\n');
		const char *s = line;
		size_t len;
		int op, j;

		lineno++;
		if (!end)
			end = line + strlen(line);
		line = *end ? end + 1 : end;
		while (s < end && (*s == ' ' || *s == '\t'))
			s++;
		if (s == end || *s == '#')
			continue;
		for (len = 0; s + len < end && s[len] != ' ' && s[len] != '\t'; len++)
			;
		op = op_by_name(s, len);
		if (op < 0) {
			fprintf(stderr, "line %d: unknown call %.*s\n", lineno, (int)len, s);
			return -EINVAL;
		}
		if (p->n == FUZZ_MAX_CALLS) {
			fprintf(stderr, "line %d: more than %d calls\n", lineno, FUZZ_MAX_CALLS);
			return -EINVAL;
		}
		memset(&p->c[p->n], 0, sizeof(p->c[p->n]));
		p->c[p->n].op = op;
		s += len;
		for (j = 0; j < fuzz_op_nargs(op); j++) {
			char *next;

			p->c[p->n].a[j] = strtoull(s, &next, 0);
			if (next == s || next > end) {
				fprintf(stderr, "line %d: %s takes %d arguments\n", lineno,
					fuzz_ops[op].name, fuzz_op_nargs(op));
				return -EINVAL;
			}
			s = next;
		}
		p->n++;
	}
	return 0;
}

int fuzz_prog_load(struct fuzz_prog *p, const char *path)
{
	static char text[FUZZ_TEXT_MAX];
	ssize_t len;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	len = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (len < 0)
		return -errno;
	text[len] = 0;
	return fuzz_prog_parse(p, text);
}
