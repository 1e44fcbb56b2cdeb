// SPDX-License-Identifier: MIT
/*
 * The kernel log, read from /dev/kmsg after each program: the reports that
 * scripts/check-log.py fails a run on (oops, BUG, WARNING, lockdep, KASAN,
 * UBSAN, hung task, lockup, RCU stall, Rust panic), with the records that
 * follow the first of them as its context.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static int kmsg_fd = -1;
static regex_t report, benign;

void kmsg_open(void)
{
	regcomp(&report,
		"BUG: |BUG at|Oops|general protection fault|Kernel panic|rust_panic|panicked at|"
		"^WARNING: |possible (circular|recursive) locking|inconsistent lock state|"
		"DEBUG_LOCKS_WARN_ON|suspicious RCU usage|lock held when returning|"
		"bad unlock balance|KASAN: |UBSAN: |INFO: task .* blocked for more than|"
		"soft lockup|hard LOCKUP|rcu: INFO: .* detected stalls",
		REG_EXTENDED | REG_NOSUB);
	regcomp(&benign, "lockdep: fixing up alternatives|Lock dependency validator",
		REG_EXTENDED | REG_NOSUB);
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (kmsg_fd >= 0)
		lseek(kmsg_fd, 0, SEEK_END);
}

/* /dev/kmsg writes a newline inside a record as "\x0a": back to lines. */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (!strncmp(s, "\\x0a", 4)) {
			*out++ = '\n';
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = 0;
}

int kmsg_check(char *buf, size_t len)
{
	char rec[8192];
	size_t used = 0;
	int found = 0;

	if (len)
		buf[0] = 0;
	if (kmsg_fd < 0)
		return 0;
	for (;;) {
		ssize_t n = read(kmsg_fd, rec, sizeof(rec) - 1);
		char *msg;

		if (n < 0 && errno == EPIPE)
			continue;	/* records overwritten: go on with the next */
		if (n <= 0)
			break;
		rec[n] = 0;
		/* "prio,seq,time,flags;message\n" and continuation lines. */
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		unescape(msg);
		if (!regexec(&report, msg, 0, NULL, 0) && regexec(&benign, msg, 0, NULL, 0))
			found++;
		if (found && used + 1 < len) {
			int w = snprintf(buf + used, len - used, "%s", msg);

			used += w > 0 ? (size_t)w : 0;
			if (used >= len)
				used = len - 1;
		}
	}
	return found;
}
