// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Our own implementation of IGT's core test flow: option parsing, subtest
 * selection and listing, fixtures, dynamic subtests, skips and failures,
 * forked children, logging, and the exit code. Names, output lines and exit
 * codes follow IGT's so that its runner and its users read ours the same.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "igt_core.h"

#define IGT_CORE_VERSION "1.0-hmmgpu"

sigjmp_buf igt_subtest_jmpbuf;
sigjmp_buf igt_dynamic_jmpbuf;

bool __igt_plain_output;
enum igt_log_level igt_log_level = IGT_LOG_INFO;

static const char *command_str = "igt";
static bool test_with_subtests;
static bool list_subtests;
static bool describe_subtests;
static char *run_single_subtest;
static char *run_single_dynamic_subtest;
static bool run_single_subtest_found;
static char *log_domain_filter;

static const char *in_subtest;
static const char *in_dynamic_subtest;
static struct timespec subtest_time;
static struct timespec dynamic_subtest_time;
static bool in_fixture;

/* What a skip or failure in a fixture does to the subtests that follow. */
static enum { CONT = 0, SKIP, FAIL } skip_subtests_henceforth = CONT;

static bool skipped_one;
static bool succeeded_one;
static bool failed_one;
static bool dynamic_failed_one;
/* -1 outside a dynamic container, else how many igt_dynamic blocks ran. */
static int dynamic_tests_executed = -1;

static int igt_exitcode = IGT_EXIT_SUCCESS;

static pid_t *test_children;
static int num_test_children;
static int test_children_sz;
static bool test_child;

static char current_description[512];
#define MAX_GROUP_DEPTH 16
static char group_descriptions[MAX_GROUP_DEPTH][sizeof(current_description)];
static int num_group_descriptions;

enum {
	/* Above any short option's character, as IGT numbers them. */
	OPT_LIST_SUBTESTS = 500,
	OPT_DESCRIBE_SUBTESTS,
	OPT_RUN_SUBTEST,
	OPT_RUN_DYNAMIC_SUBTEST,
	OPT_DESCRIPTION,
	OPT_DEBUG,
	OPT_VERSION,
	OPT_HELP = 'h',
};

__attribute__((format(printf, 2, 3)))
static void internal_assert(bool cond, const char *format, ...)
{
	va_list ap;

	if (cond)
		return;

	/* Misuse of the API is a bug in the test, not a test result. */
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fprintf(stderr, "please refer to lib/igt_core documentation\n");
	abort();
}

const char *igt_test_name(void)
{
	return command_str;
}

const char *igt_subtest_name(void)
{
	return in_subtest;
}

const char *igt_dynamic_subtest_name(void)
{
	return in_dynamic_subtest;
}

bool igt_only_list_subtests(void)
{
	return list_subtests;
}

bool igt_can_fail(void)
{
	return !test_with_subtests || in_fixture || in_subtest;
}

/* time */

int igt_gettime(struct timespec *ts)
{
	memset(ts, 0, sizeof(*ts));
	errno = 0;

	if (!clock_gettime(CLOCK_MONOTONIC_RAW, ts))
		return 0;
	if (!clock_gettime(CLOCK_MONOTONIC, ts))
		return 0;

	igt_warn("Could not read monotonic time: %s\n", strerror(errno));
	return -errno;
}

double igt_time_elapsed(struct timespec *then, struct timespec *now)
{
	if (!(then->tv_sec || then->tv_nsec) || !(now->tv_sec || now->tv_nsec))
		return -1.0;

	return (now->tv_sec - then->tv_sec) + (now->tv_nsec - then->tv_nsec) * 1e-9;
}

uint64_t igt_nsec_elapsed(struct timespec *start)
{
	struct timespec now;

	igt_gettime(&now);
	if (!start->tv_sec && !start->tv_nsec) {
		*start = now;
		return 0;
	}

	return (uint64_t)(now.tv_sec - start->tv_sec) * NSEC_PER_SEC +
	       (now.tv_nsec - start->tv_nsec);
}

/*
 * The last lines logged at any level, debug included, so that a failure can
 * show what led to it even when debug output was off.
 */
#define LOG_BUFFER_SIZE 256
static struct {
	char *entries[LOG_BUFFER_SIZE];
	unsigned int start, end;
} log_buffer;

static void log_buffer_append(char *line)
{
	unsigned int slot = log_buffer.end % LOG_BUFFER_SIZE;

	free(log_buffer.entries[slot]);
	log_buffer.entries[slot] = line;
	log_buffer.end++;
	if (log_buffer.end - log_buffer.start > LOG_BUFFER_SIZE)
		log_buffer.start++;
}

static void log_buffer_reset(void)
{
	log_buffer.start = log_buffer.end;
}

static void log_buffer_dump(void)
{
	if (in_subtest && !in_dynamic_subtest && dynamic_tests_executed >= 0) {
		/*
		 * A dynamic subtest failed and has already shown its log; the
		 * container failing because of it has nothing to add.
		 */
		log_buffer_reset();
		return;
	}

	fflush(stdout);
	if (in_dynamic_subtest)
		fprintf(stderr, "Dynamic subtest %s failed.\n", in_dynamic_subtest);
	else if (in_subtest)
		fprintf(stderr, "Subtest %s failed.\n", in_subtest);
	else
		fprintf(stderr, "Test %s failed.\n", command_str);

	if (log_buffer.start == log_buffer.end) {
		fprintf(stderr, "No log.\n");
		return;
	}

	fprintf(stderr, "**** DEBUG ****\n");
	for (unsigned int i = log_buffer.start; i != log_buffer.end; i++)
		fprintf(stderr, "%s", log_buffer.entries[i % LOG_BUFFER_SIZE]);
	fprintf(stderr, "****  END  ****\n");
	log_buffer_reset();
}

/* logging */

static __thread bool log_line_continues;

void igt_vlog(const char *domain, enum igt_log_level level, const char *format,
	      va_list args)
{
	static const char *const level_str[] = {
		[IGT_LOG_DEBUG] = "DEBUG",
		[IGT_LOG_INFO] = "INFO",
		[IGT_LOG_WARN] = "WARNING",
		[IGT_LOG_CRITICAL] = "CRITICAL",
		[IGT_LOG_NONE] = "NONE",
	};
	char *line, *formatted;
	size_t len;
	FILE *file;

	/* Listing must print nothing but the names. */
	if (list_subtests && level <= IGT_LOG_WARN)
		return;
	if (level > IGT_LOG_NONE)
		level = IGT_LOG_NONE;

	if (vasprintf(&line, format, args) < 0)
		return;

	if (log_line_continues)
		formatted = strdup(line);
	else if (asprintf(&formatted, "(%s:%d) %s%s%s: %s", command_str, getpid(),
			  domain ? domain : "", domain ? "-" : "",
			  level_str[level], line) < 0)
		formatted = NULL;
	if (!formatted) {
		free(line);
		return;
	}

	len = strlen(line);
	log_line_continues = len && line[len - 1] != '\n';

	if (igt_log_level > level)
		goto out;

	if (log_domain_filter) {
		/* "application" selects the messages of the test itself. */
		if (!domain && strcmp(log_domain_filter, "application"))
			goto out;
		if (domain && strcmp(log_domain_filter, domain))
			goto out;
	}

	if (level >= IGT_LOG_WARN) {
		/* Keep the order of the two streams where they are merged. */
		fflush(stdout);
		file = stderr;
	} else {
		file = stdout;
	}

	/* Information goes out plain, anything else with its origin. */
	fputs(level == IGT_LOG_INFO ? line : formatted, file);

out:
	log_buffer_append(formatted);
	free(line);
}

void igt_log(const char *domain, enum igt_log_level level, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	igt_vlog(domain, level, format, args);
	va_end(args);
}

/* subtest selection */

/*
 * One pattern of uwildmat(3) (RFC 3977 section 4), which IGT uses for
 * --run-subtest: '*', '?', and [set] with ranges and a leading '^' to
 * negate; a backslash quotes the next character.
 */
static bool glob_match(const char *p, const char *end, const char *t)
{
	while (p < end) {
		switch (*p) {
		case '*':
			while (p < end && *p == '*')
				p++;
			if (p == end)
				return true;
			for (; *t; t++)
				if (glob_match(p, end, t))
					return true;
			return false;
		case '?':
			if (!*t)
				return false;
			p++;
			t++;
			break;
		case '[': {
			const char *q = p + 1;
			bool negate = false, found = false;

			if (!*t)
				return false;
			if (q < end && *q == '^') {
				negate = true;
				q++;
			}
			/* A ']' first in the set is part of it. */
			if (q < end && *q == ']') {
				found |= *t == ']';
				q++;
			}
			for (; q < end && *q != ']'; q++) {
				if (q + 2 < end && q[1] == '-' && q[2] != ']') {
					found |= *t >= q[0] && *t <= q[2];
					q += 2;
				} else {
					found |= *t == *q;
				}
			}
			if (q == end)	/* unterminated: take '[' literally */
				goto literal;
			if (found == negate)
				return false;
			p = q + 1;
			t++;
			break;
		}
		case '\\':
			if (p + 1 < end)
				p++;
			/* fallthrough */
		default:
literal:
			if (*p != *t)
				return false;
			p++;
			t++;
			break;
		}
	}

	return !*t;
}

/*
 * A comma-separated list of patterns, each negated by a leading '!': the
 * last pattern that matches decides, and no match means no.
 */
static bool pattern_list_match(const char *text, const char *list)
{
	bool matched = false;
	const char *p = list;

	for (;;) {
		const char *end = strchr(p, ',');
		bool negate = *p == '!';

		if (!end)
			end = p + strlen(p);
		if (glob_match(p + negate, end, text))
			matched = !negate;
		if (!*end)
			break;
		p = end + 1;
	}

	return matched;
}

static bool valid_name_for_subtest(const char *name)
{
	if (!*name)
		return false;

	for (; *name; name++)
		if (*name != '_' && *name != '-' && !isalnum((unsigned char)*name))
			return false;

	return true;
}

/* output of results */

enum subtest_type { SUBTEST_NORMAL, SUBTEST_DYNAMIC };

static void subtest_result_message(enum subtest_type type, const char *name,
				   const char *result, double elapsed)
{
	printf("%s%s %s: %s (%.3fs)%s\n",
	       __igt_plain_output ? "" : "\x1b[1m",
	       type == SUBTEST_NORMAL ? "Subtest" : "Dynamic subtest",
	       name, result, elapsed,
	       __igt_plain_output ? "" : "\x1b[0m");
	fflush(stdout);
}

static void subtest_starting_message(enum subtest_type type, const char *name)
{
	igt_info("Starting %s: %s\n",
		 type == SUBTEST_NORMAL ? "subtest" : "dynamic subtest", name);
	fflush(stdout);
}

/* Prints @text indented and wrapped at 80 columns, as --describe does. */
static void print_line_wrapping(const char *indent, const char *text)
{
	const int width = 80 - (int)strlen(indent);
	int col = 0;

	fputs(indent, stdout);
	while (*text) {
		int len = strcspn(text, " ");

		if (col && col + 1 + len > width) {
			printf("\n%s", indent);
			col = 0;
		}
		printf("%s%.*s", col ? " " : "", len, text);
		col += (col ? 1 : 0) + len;
		text += len;
		while (*text == ' ')
			text++;
	}
	putchar('\n');
}

static void print_subtest_description(const char *name, const char *file, int line)
{
	bool has_doc = false;

	printf("SUB %s %s:%d:\n", name, file, line);
	for (int i = 0; i < num_group_descriptions; i++) {
		if (!group_descriptions[i][0])
			continue;
		print_line_wrapping("  ", group_descriptions[i]);
		putchar('\n');
		has_doc = true;
	}
	if (current_description[0]) {
		print_line_wrapping("  ", current_description);
		putchar('\n');
		has_doc = true;
	}
	if (!has_doc)
		printf("  NO DOCUMENTATION!\n\n");
}

void igt_describe_f(const char *fmt, ...)
{
	va_list args;

	internal_assert(!in_subtest || dynamic_tests_executed < 0,
			"documenting dynamic subsubtests is impossible, document the subtest instead.\n");

	if (!describe_subtests)
		return;

	va_start(args, fmt);
	vsnprintf(current_description, sizeof(current_description), fmt, args);
	va_end(args);
}

void __igt_subtest_group_save(volatile int *save, volatile int *desc)
{
	internal_assert(test_with_subtests,
			"igt_subtest_group is not allowed in igt_simple_main\n");

	*desc = false;
	if (current_description[0]) {
		internal_assert(num_group_descriptions < MAX_GROUP_DEPTH,
				"too deeply nested igt_subtest_group\n");
		memcpy(group_descriptions[num_group_descriptions++],
		       current_description, sizeof(current_description));
		current_description[0] = '\0';
		*desc = true;
	}

	*save = skip_subtests_henceforth;
}

void __igt_subtest_group_restore(int save, int desc)
{
	if (desc)
		num_group_descriptions--;

	skip_subtests_henceforth = save;
}

/* fixtures and subtests */

bool __igt_fixture(void)
{
	internal_assert(!in_fixture, "nesting multiple igt_fixtures is invalid\n");
	internal_assert(!in_subtest, "nesting igt_fixture in igt_subtest is invalid\n");
	internal_assert(test_with_subtests, "igt_fixture in igt_simple_main is invalid\n");

	if (igt_only_list_subtests())
		return false;

	if (skip_subtests_henceforth)
		return false;

	in_fixture = true;
	return true;
}

void __igt_fixture_complete(void)
{
	in_fixture = false;
}

void __igt_fixture_end(void)
{
	in_fixture = false;
	siglongjmp(igt_subtest_jmpbuf, 1);
}

bool __igt_run_subtest(const char *subtest_name, const char *file, const int line)
{
	internal_assert(!igt_can_fail(),
			"igt_subtest can be nested only in igt_main or igt_subtest_group\n");

	if (!valid_name_for_subtest(subtest_name)) {
		igt_critical("Invalid subtest name \"%s\".\n", subtest_name);
		exit(IGT_EXIT_INVALID);
	}

	if (run_single_subtest) {
		if (!pattern_list_match(subtest_name, run_single_subtest)) {
			current_description[0] = '\0';
			return false;
		}
		run_single_subtest_found = true;
	}

	if (describe_subtests) {
		print_subtest_description(subtest_name, file, line);
		current_description[0] = '\0';
		return false;
	}

	if (list_subtests) {
		printf("%s\n", subtest_name);
		return false;
	}

	current_description[0] = '\0';

	if (skip_subtests_henceforth) {
		subtest_result_message(SUBTEST_NORMAL, subtest_name,
				       skip_subtests_henceforth == SKIP ? "SKIP" : "FAIL",
				       0.0);
		return false;
	}

	subtest_starting_message(SUBTEST_NORMAL, subtest_name);
	log_buffer_reset();
	igt_gettime(&subtest_time);

	in_subtest = subtest_name;
	return true;
}

bool __igt_enter_dynamic_container(void)
{
	dynamic_tests_executed = 0;
	dynamic_failed_one = false;

	return true;
}

bool __igt_run_dynamic_subtest(const char *dynamic_subtest_name)
{
	internal_assert(in_subtest && dynamic_tests_executed >= 0,
			"igt_dynamic is allowed only inside igt_subtest_with_dynamic\n");
	internal_assert(!in_dynamic_subtest,
			"igt_dynamic is not allowed to be nested in another igt_dynamic\n");

	if (!valid_name_for_subtest(dynamic_subtest_name)) {
		igt_critical("Invalid dynamic subtest name \"%s\".\n", dynamic_subtest_name);
		exit(IGT_EXIT_INVALID);
	}

	if (run_single_dynamic_subtest &&
	    !pattern_list_match(dynamic_subtest_name, run_single_dynamic_subtest))
		return false;

	subtest_starting_message(SUBTEST_DYNAMIC, dynamic_subtest_name);
	log_buffer_reset();
	dynamic_tests_executed++;
	igt_gettime(&dynamic_subtest_time);

	in_dynamic_subtest = dynamic_subtest_name;
	return true;
}

static void kill_and_reap_children(void)
{
	for (int c = 0; c < num_test_children; c++) {
		if (test_children[c] > 0) {
			kill(test_children[c], SIGKILL);
			waitpid(test_children[c], NULL, 0);
		}
	}
	num_test_children = 0;
}

__noreturn static void exit_subtest(const char *result)
{
	bool dynamic = in_dynamic_subtest;
	struct timespec now;

	igt_gettime(&now);
	subtest_result_message(dynamic ? SUBTEST_DYNAMIC : SUBTEST_NORMAL,
			       dynamic ? in_dynamic_subtest : in_subtest, result,
			       igt_time_elapsed(dynamic ? &dynamic_subtest_time :
							  &subtest_time, &now));

	/* A subtest that bailed out may have left children behind. */
	kill_and_reap_children();

	if (dynamic) {
		/* The container would print this log again. */
		log_buffer_reset();
		in_dynamic_subtest = NULL;
		siglongjmp(igt_dynamic_jmpbuf, 1);
	}

	dynamic_tests_executed = -1;
	in_subtest = NULL;
	siglongjmp(igt_subtest_jmpbuf, 1);
}

void igt_skip(const char *f, ...)
{
	va_list args;

	if (test_child) {
		/* The parent cannot report a skip from a child: fail it. */
		igt_critical("skips are not allowed in forks\n");
		exit(IGT_EXIT_FAILURE);
	}

	skipped_one = true;

	if (!igt_only_list_subtests()) {
		va_start(args, f);
		vprintf(f, args);
		va_end(args);
	}

	if (in_subtest) {
		/* A skipped dynamic subtest does not count for its container. */
		if (in_dynamic_subtest)
			dynamic_tests_executed--;
		exit_subtest("SKIP");
	} else if (test_with_subtests) {
		skip_subtests_henceforth = SKIP;
		internal_assert(in_fixture,
				"skipping is allowed only in fixtures, subtests or igt_simple_main\n");
		__igt_fixture_end();
	} else {
		igt_exitcode = IGT_EXIT_SKIP;
		igt_exit();
	}
}

void __igt_skip_check(const char *file, const int line, const char *func,
		      const char *check, const char *f, ...)
{
	char *err_str = NULL, *buf = NULL;
	int err = errno;
	va_list args;

	if (err && asprintf(&err_str, "Last errno: %i, %s\n", err, strerror(err)) < 0)
		err_str = NULL;

	if (f) {
		va_start(args, f);
		if (vasprintf(&buf, f, args) < 0)
			buf = NULL;
		va_end(args);
	}

	/* igt_skip() does not return: these two strings are not freed. */
	igt_skip("Test requirement not met in function %s, file %s:%i:\n"
		 "Test requirement: %s\n%s%s",
		 func, file, line, check, buf ?: "", err_str ?: "");
}

void igt_success(void)
{
	if (in_subtest && !in_dynamic_subtest && dynamic_tests_executed >= 0) {
		/* Leaving a dynamic container: its result is its children's. */
		if (dynamic_failed_one)
			igt_fail(IGT_EXIT_FAILURE);
		if (dynamic_tests_executed == 0)
			igt_skip("No dynamic tests executed.\n");
	}

	if (!in_dynamic_subtest)
		succeeded_one = true;

	if (in_subtest)
		exit_subtest("SUCCESS");
}

void igt_fail(int exitcode)
{
	/* These two would read as a pass or a skip. */
	if (exitcode == IGT_EXIT_SUCCESS || exitcode == IGT_EXIT_SKIP)
		exitcode = IGT_EXIT_FAILURE;

	if (in_dynamic_subtest) {
		dynamic_failed_one = true;
	} else {
		if (dynamic_tests_executed >= 0 && !dynamic_failed_one)
			igt_critical("Failure in igt_subtest_with_dynamic outside of igt_dynamic\n");

		if (!failed_one)
			igt_exitcode = exitcode;
		failed_one = true;
	}

	log_buffer_dump();

	if (test_child)
		exit(exitcode);

	if (in_subtest)
		exit_subtest("FAIL");

	internal_assert(igt_can_fail(),
			"failing test is only allowed in fixtures, subtests and igt_simple_main\n");

	if (in_fixture) {
		skip_subtests_henceforth = FAIL;
		__igt_fixture_end();
	}

	igt_exit();
}

void __igt_fail_assert(const char *domain, const char *file, const int line,
		       const char *func, const char *assertion, const char *f, ...)
{
	int err = errno;
	va_list args;

	igt_log(domain, IGT_LOG_CRITICAL,
		"Test assertion failure function %s, file %s:%i:\n", func, file, line);
	igt_log(domain, IGT_LOG_CRITICAL, "Failed assertion: %s\n", assertion);
	if (err)
		igt_log(domain, IGT_LOG_CRITICAL, "Last errno: %i, %s\n", err,
			strerror(err));

	if (f) {
		va_start(args, f);
		igt_vlog(domain, IGT_LOG_CRITICAL, f, args);
		va_end(args);
	}

	igt_fail(IGT_EXIT_FAILURE);
}

void igt_exit(void)
{
	if (run_single_subtest && !run_single_subtest_found) {
		igt_critical("Unknown subtest: %s\n", run_single_subtest);
		exit(IGT_EXIT_INVALID);
	}

	if (igt_only_list_subtests())
		exit(IGT_EXIT_SUCCESS);

	if (test_with_subtests && !failed_one)
		igt_exitcode = succeeded_one ? IGT_EXIT_SUCCESS : IGT_EXIT_SKIP;

	igt_debug("Exiting with status code %d\n", igt_exitcode);

	kill_and_reap_children();

	if (!test_with_subtests) {
		struct timespec now;
		const char *result;

		switch (igt_exitcode) {
		case IGT_EXIT_SUCCESS:
			result = "SUCCESS";
			break;
		case IGT_EXIT_SKIP:
			result = "SKIP";
			break;
		default:
			result = "FAIL";
		}

		igt_gettime(&now);
		printf("%s (%.3fs)\n", result, igt_time_elapsed(&subtest_time, &now));
	}

	fflush(NULL);
	exit(igt_exitcode);
}

/* fork support */

bool __igt_fork(void)
{
	pid_t pid;

	internal_assert(!test_with_subtests || in_subtest,
			"forking is only allowed in subtests or igt_simple_main\n");
	internal_assert(!test_child,
			"forking is not allowed from already forked children\n");

	if (num_test_children >= test_children_sz) {
		pid_t *bigger;

		test_children_sz = test_children_sz ? 2 * test_children_sz : 4;
		bigger = realloc(test_children, sizeof(*test_children) * test_children_sz);
		igt_assert(bigger);
		test_children = bigger;
	}

	/* Or the child would print what the parent has buffered, again. */
	fflush(NULL);

	pid = fork();
	if (pid < 0)
		igt_assert_f(0, "fork() failed: %s\n", strerror(errno));

	if (pid == 0) {
		test_child = true;
		/* The parent's other children are not this child's to reap. */
		num_test_children = 0;
		log_line_continues = false;
		return true;
	}

	test_children[num_test_children++] = pid;
	return false;
}

int __igt_waitchildren(void)
{
	int err = 0;
	int count = 0;

	internal_assert(!test_child, "igt_waitchildren is not allowed in children\n");

	while (count < num_test_children) {
		int status = -1;
		pid_t pid;
		int c;

		pid = wait(&status);
		if (pid == -1) {
			if (errno == EINTR)
				continue;

			printf("wait(num_children:%d) failed with %m\n",
			       num_test_children - count);
			return IGT_EXIT_FAILURE;
		}

		for (c = 0; c < num_test_children; c++)
			if (pid == test_children[c])
				break;
		if (c == num_test_children)
			continue;

		if (err == 0 && status != 0) {
			if (WIFEXITED(status)) {
				printf("child %i failed with exit status %i\n",
				       c, WEXITSTATUS(status));
				err = WEXITSTATUS(status);
			} else if (WIFSIGNALED(status)) {
				printf("child %i died with signal %i, %s\n",
				       c, WTERMSIG(status), strsignal(WTERMSIG(status)));
				err = 128 + WTERMSIG(status);
			} else {
				printf("Unhandled failure [%d] in child %i\n", status, c);
				err = 256;
			}

			igt_kill_children(SIGKILL);
		}

		count++;
	}

	num_test_children = 0;
	return err;
}

void igt_waitchildren(void)
{
	int err = __igt_waitchildren();

	if (err)
		igt_fail(err);
}

void igt_kill_children(int signal)
{
	for (int c = 0; c < num_test_children; c++)
		if (test_children[c] > 0)
			kill(test_children[c], signal);
}

/* command line */

static void print_version(void)
{
	struct utsname uts;

	if (igt_only_list_subtests())
		return;

	uname(&uts);
	igt_info("IGT-Version: %s (%s) (%s: %s %s)\n", IGT_CORE_VERSION, uts.machine,
		 uts.sysname, uts.release, uts.machine);
}

static void print_test_description(void)
{
	if (!&__igt_test_description || !__igt_test_description)
		return;

	print_line_wrapping("", __igt_test_description);
	if (describe_subtests)
		putchar('\n');
}

static void print_usage(const char *help_str, bool output_on_stderr)
{
	FILE *f = output_on_stderr ? stderr : stdout;

	fprintf(f, "Usage: %s [OPTIONS]\n", command_str);
	fprintf(f, "  --list-subtests\n"
		   "  --run-subtest <pattern>\n"
		   "  --dynamic-subtest <pattern>\n"
		   "  --debug[=log-domain]\n"
		   "  --help-description\n"
		   "  --describe\n"
		   "  --version\n"
		   "  --help|-h\n");
	if (help_str)
		fprintf(f, "%s\n", help_str);
}

static void common_init_env(void)
{
	const char *env;

	if (!isatty(STDOUT_FILENO) || getenv("IGT_PLAIN_OUTPUT"))
		__igt_plain_output = true;
	/* isatty() leaves ENOTTY behind, which assertions would report. */
	errno = 0;

	env = getenv("IGT_LOG_LEVEL");
	if (env) {
		if (!strcmp(env, "debug"))
			igt_log_level = IGT_LOG_DEBUG;
		else if (!strcmp(env, "info"))
			igt_log_level = IGT_LOG_INFO;
		else if (!strcmp(env, "warn"))
			igt_log_level = IGT_LOG_WARN;
		else if (!strcmp(env, "none"))
			igt_log_level = IGT_LOG_NONE;
	}
}

static int common_init(int *argc, char **argv, const char *extra_short_opts,
		       const struct option *extra_long_opts, const char *help_str,
		       igt_opt_handler_t extra_opt_handler, void *handler_data)
{
	static const struct option long_options[] = {
		{ "list-subtests", no_argument, NULL, OPT_LIST_SUBTESTS },
		{ "describe", optional_argument, NULL, OPT_DESCRIBE_SUBTESTS },
		{ "run-subtest", required_argument, NULL, OPT_RUN_SUBTEST },
		{ "dynamic-subtest", required_argument, NULL, OPT_RUN_DYNAMIC_SUBTEST },
		{ "help-description", no_argument, NULL, OPT_DESCRIPTION },
		{ "debug", optional_argument, NULL, OPT_DEBUG },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0, 0, 0, 0 }
	};
	const size_t num_std = sizeof(long_options) / sizeof(long_options[0]);
	struct option *combined_opts;
	size_t num_extra = 0;
	int c, option_index = 0, ret = 0;
	char *short_opts;

	common_init_env();

	command_str = argv[0];
	if (strrchr(command_str, '/'))
		command_str = strrchr(command_str, '/') + 1;

	while (extra_long_opts && extra_long_opts[num_extra].name)
		num_extra++;

	combined_opts = calloc(num_extra + num_std, sizeof(*combined_opts));
	internal_assert(combined_opts, "out of memory\n");
	if (num_extra)
		memcpy(combined_opts, extra_long_opts, num_extra * sizeof(*combined_opts));
	memcpy(combined_opts + num_extra, long_options, sizeof(long_options));

	if (asprintf(&short_opts, "%sh", extra_short_opts ?: "") < 0)
		internal_assert(false, "out of memory\n");

	while ((c = getopt_long(*argc, argv, short_opts, combined_opts,
				&option_index)) != -1) {
		switch (c) {
		case OPT_DEBUG:
			igt_log_level = IGT_LOG_DEBUG;
			if (optarg && *optarg)
				log_domain_filter = strdup(optarg);
			break;
		case OPT_LIST_SUBTESTS:
			if (!run_single_subtest)
				list_subtests = true;
			break;
		case OPT_DESCRIBE_SUBTESTS:
			if (optarg)
				run_single_subtest = strdup(optarg);
			list_subtests = true;
			describe_subtests = true;
			print_test_description();
			break;
		case OPT_RUN_SUBTEST:
			if (!igt_only_list_subtests())
				run_single_subtest = strdup(optarg);
			break;
		case OPT_RUN_DYNAMIC_SUBTEST:
			if (!igt_only_list_subtests())
				run_single_dynamic_subtest = strdup(optarg);
			break;
		case OPT_DESCRIPTION:
			print_test_description();
			ret = -1;
			goto out;
		case OPT_VERSION:
			print_version();
			ret = -1;
			goto out;
		case OPT_HELP:
			print_usage(help_str, false);
			ret = -1;
			goto out;
		case '?':
			print_usage(help_str, true);
			ret = -2;
			goto out;
		default:
			if (!extra_opt_handler) {
				print_usage(help_str, true);
				ret = -2;
				goto out;
			}
			ret = extra_opt_handler(c, option_index, handler_data);
			if (ret)
				goto out;
		}
	}

out:
	free(short_opts);
	free(combined_opts);

	/* A test without subtests can neither list nor run one. */
	if (!test_with_subtests) {
		if (run_single_subtest) {
			igt_warn("Unknown subtest: %s\n", run_single_subtest);
			exit(IGT_EXIT_INVALID);
		}
		if (list_subtests)
			exit(IGT_EXIT_INVALID);
	}

	if (ret < 0)
		exit(ret == -1 ? IGT_EXIT_SUCCESS : IGT_EXIT_INVALID);

	print_version();

	if (!test_with_subtests)
		igt_gettime(&subtest_time);

	/* Leave the test its own arguments, after argv[0]. */
	for (int i = 0; optind + i < *argc; i++)
		argv[i + 1] = argv[optind + i];
	*argc = *argc - optind + 1;

	return ret;
}

int igt_subtest_init_parse_opts(int *argc, char **argv, const char *extra_short_opts,
				const struct option *extra_long_opts,
				const char *help_str, igt_opt_handler_t extra_opt_handler,
				void *handler_data)
{
	test_with_subtests = true;
	return common_init(argc, argv, extra_short_opts, extra_long_opts, help_str,
			   extra_opt_handler, handler_data);
}

void igt_simple_init_parse_opts(int *argc, char **argv, const char *extra_short_opts,
				const struct option *extra_long_opts,
				const char *help_str, igt_opt_handler_t extra_opt_handler,
				void *handler_data)
{
	common_init(argc, argv, extra_short_opts, extra_long_opts, help_str,
		    extra_opt_handler, handler_data);
}
