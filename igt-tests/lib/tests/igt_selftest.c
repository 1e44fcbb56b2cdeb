// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Subtests that pass, skip and fail in every way the core supports, for
 * lib/selftest.sh to run and check what they print and return. Comments
 * "selftest: NAME" mark the lines the script expects in failure messages.
 *
 * SELFTEST_TOP=skip|fail makes the first fixture skip or fail;
 * SELFTEST_GROUP_FIXTURE=pass keeps the failing group fixture from failing.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "igt.h"

IGT_TEST_DESCRIPTION("Checks of the IGT-compatible core itself.");

static bool env_is(const char *name, const char *value)
{
	const char *env = getenv(name);

	return env && !strcmp(env, value);
}

static void fail_eq(void)
{
	int a = 3, b = 4;

	igt_debug("before failing\n");
	igt_assert_eq(a, b); /* selftest: fail-eq */
}

static void fail_errno(void)
{
	int x = 1;

	errno = EINVAL;
	igt_assert(x == 2); /* selftest: fail-errno */
}

static void fail_u32(void)
{
	uint32_t a = 0x10, b = 0x20;

	igt_assert_eq_u32(a, b);
}

static void fail_u64(void)
{
	uint64_t a = 1ull << 40, b = 1;

	igt_assert_eq_u64(a, b);
}

static void fail_lt(void)
{
	int a = 5, b = 5;

	igt_assert_lt(a, b);
}

static void fail_lte(void)
{
	int a = 6, b = 5;

	igt_assert_lte(a, b);
}

static void fail_neq(void)
{
	int a = 7, b = 7;

	igt_assert_neq(a, b);
}

static void fail_fd(void)
{
	int fd = -1;

	igt_assert_fd(fd);
}

static void fail_f(void)
{
	int x = 1;

	igt_assert_f(x == 2, "x is %d\n", x);
}

static void require_x(void)
{
	int x = 1;

	errno = 0;
	igt_require(x == 2); /* selftest: require */
}

static void pass_all_asserts(void)
{
	int fd = 0;

	igt_assert(1 + 1 == 2);
	igt_assert_f(true, "not printed\n");
	igt_assert_eq(3, 3);
	igt_assert_neq(3, 4);
	igt_assert_eq_u32(0xffffffffu, 0xffffffffu);
	igt_assert_eq_u64(1ull << 40, 1ull << 40);
	igt_assert_lt(1, 2);
	igt_assert_lte(2, 2);
	igt_assert_fd(fd);
	igt_require(true);
	igt_skip_on(false);
	igt_require_f(true, "not printed\n");
}

static int fixture_ran;

igt_main
{
	igt_fixture {
		if (env_is("SELFTEST_TOP", "skip"))
			igt_skip("top-level fixture skipped\n");
		if (env_is("SELFTEST_TOP", "fail"))
			igt_assert_f(0, "top-level fixture failed\n");
	}

	igt_describe("Passes, with every assertion holding.");
	igt_subtest("pass") {
		igt_debug("before passing\n");
		igt_info("info line\n");
		igt_warn("warn line\n");
		pass_all_asserts();
	}

	igt_subtest_f("formatted-%d", 7)
		igt_assert(true);

	igt_subtest("skip")
		igt_skip("deliberate skip\n");

	igt_subtest("require")
		require_x();

	igt_subtest("require-f") {
		int y = 3;

		igt_require_f(y > 10, "need more than %d\n", 10);
	}

	igt_subtest("skip-on") {
		int x = 1;

		igt_skip_on(x == 1);
	}

	igt_subtest("fail-eq")
		fail_eq();

	igt_subtest("fail-errno")
		fail_errno();

	igt_subtest("fail-u32")
		fail_u32();

	igt_subtest("fail-u64")
		fail_u64();

	igt_subtest("fail-lt")
		fail_lt();

	igt_subtest("fail-lte")
		fail_lte();

	igt_subtest("fail-neq")
		fail_neq();

	igt_subtest("fail-fd")
		fail_fd();

	igt_subtest("fail-f")
		fail_f();

	igt_subtest("fail-direct")
		igt_fail(IGT_EXIT_FAILURE);

	igt_subtest("fail-code")
		igt_fail(99);

	igt_subtest_with_dynamic("dynamic-mixed") {
		igt_dynamic("dyn-pass")
			igt_assert(true);
		igt_dynamic("dyn-fail")
			igt_assert_eq(1, 2);
		igt_dynamic("dyn-skip")
			igt_skip("dyn skip\n");
		igt_dynamic_f("dyn-f-%d", 3)
			igt_assert(true);
	}

	igt_subtest_with_dynamic("dynamic-pass") {
		igt_dynamic("a")
			igt_assert(true);
		igt_dynamic("b")
			igt_assert(true);
	}

	igt_subtest_with_dynamic("dynamic-none") {
	}

	igt_subtest_with_dynamic("dynamic-all-skip") {
		igt_dynamic("only")
			igt_skip("nothing to do\n");
	}

	igt_subtest_with_dynamic("dynamic-container-skip") {
		igt_require_f(false, "container requirement\n");
		igt_dynamic("never")
			igt_assert(true);
	}

	igt_subtest_with_dynamic_f("dynamic-f-%s", "x") {
		igt_dynamic("a")
			igt_assert(true);
	}

	igt_subtest("fork-pass") {
		igt_fork(child, 3)
			igt_assert(child >= 0 && child < 3);
		igt_waitchildren();
	}

	igt_subtest("fork-fail") {
		igt_fork(child, 3) {
			if (child == 1)
				igt_assert_eq(child, 0);
		}
		igt_waitchildren();
	}

	igt_subtest("fork-skip") {
		igt_fork(child, 1)
			igt_skip("children cannot skip\n");
		igt_waitchildren();
	}

	igt_subtest("fork-signal") {
		igt_fork(child, 1)
			raise(SIGKILL);
		igt_waitchildren();
	}

	igt_describe("A fixture that skips.");
	igt_subtest_group {
		igt_fixture
			igt_require_f(false, "fixture requirement\n");

		igt_subtest("fixture-skip-a")
			igt_assert(false);

		igt_subtest("fixture-skip-b")
			igt_assert(false);
	}

	igt_subtest_group {
		igt_fixture {
			if (!env_is("SELFTEST_GROUP_FIXTURE", "pass"))
				igt_assert_eq(1, 2);
		}

		igt_subtest("fixture-fail-a")
			igt_info("fixture-fail-a ran\n");
	}

	igt_subtest_group {
		igt_fixture
			fixture_ran = 42;

		igt_subtest("fixture-pass")
			igt_assert_eq(fixture_ran, 42);
	}

	igt_subtest("after-groups")
		igt_assert(true);
}
