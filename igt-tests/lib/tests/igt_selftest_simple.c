// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * A test without subtests, for lib/selftest.sh: SELFTEST_MODE picks
 * whether it passes (default), skips, fails, or fails in a child.
 */
#include <stdlib.h>
#include <string.h>

#include "igt.h"

igt_simple_main
{
	const char *mode = getenv("SELFTEST_MODE") ?: "pass";

	if (!strcmp(mode, "skip"))
		igt_require_f(false, "simple skip\n");

	if (!strcmp(mode, "fail"))
		igt_assert_eq(1, 2);

	if (!strcmp(mode, "fork-fail")) {
		igt_fork(child, 2)
			igt_assert_eq(child, 0);
		igt_waitchildren();
	}

	igt_info("simple pass\n");
}
