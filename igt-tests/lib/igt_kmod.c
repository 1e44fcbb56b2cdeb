// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "igt_core.h"
#include "igt_kmod.h"

/* The kernel knows modules by their names with '_' for '-'. */
static void module_name(char *dst, size_t size, const char *name)
{
	snprintf(dst, size, "%s", name);
	for (char *p = dst; *p; p++)
		if (*p == '-')
			*p = '_';
}

/**
 * igt_kmod_is_loaded - Whether @mod_name is a loaded module. Built-in
 * drivers are not modules, and are not loaded ones.
 */
bool igt_kmod_is_loaded(const char *mod_name)
{
	char want[64], line[4096];
	bool found = false;
	FILE *f;

	module_name(want, sizeof(want), mod_name);

	f = fopen("/proc/modules", "re");
	if (!f)
		return false;

	while (!found && fgets(line, sizeof(line), f)) {
		char *space = strchr(line, ' ');

		if (space)
			*space = '\0';
		found = !strcmp(line, want);
	}

	fclose(f);
	return found;
}

/*
 * modprobe(8) reports failures as text: take the errno whose message it
 * printed (the longest one, as some messages start others), or -ENOENT for
 * its "not found", else -EIO.
 */
static int modprobe_errno(const char *output)
{
	size_t best_len = 0;
	int best = 0;

	for (int e = 1; e < 134; e++) {
		const char *msg = strerror(e);
		size_t len = strlen(msg);

		if (len > best_len && strstr(output, msg)) {
			best = e;
			best_len = len;
		}
	}
	if (best)
		return -best;

	if (strstr(output, "not found"))
		return -ENOENT;

	return -EIO;
}

static void log_output(char *output)
{
	char *save = NULL;

	for (char *l = strtok_r(output, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		igt_debug("[modprobe] %s\n", l);
}

/* Runs modprobe with @argv; returns its exit status, or -errno. */
static int run_modprobe(char *const argv[], char *output, size_t size)
{
	static const char *const fallbacks[] = { "/sbin/modprobe", "/usr/sbin/modprobe" };
	int out[2], status_pipe[2];
	size_t len = 0;
	int status, err = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(out, O_CLOEXEC))
		return -errno;
	if (pipe2(status_pipe, O_CLOEXEC)) {
		err = -errno;
		close(out[0]);
		close(out[1]);
		return err;
	}

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(out[0]);
		close(out[1]);
		close(status_pipe[0]);
		close(status_pipe[1]);
		return err;
	}

	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		dup2(out[1], STDERR_FILENO);
		execvp("modprobe", argv);
		/* PATH often lacks the sbin directories. */
		for (size_t i = 0; i < sizeof(fallbacks) / sizeof(*fallbacks); i++)
			if (errno == ENOENT)
				execv(fallbacks[i], argv);
		/* Only reached when modprobe could not run: tell the parent why. */
		err = errno;
		igt_ignore_warn(write(status_pipe[1], &err, sizeof(err)) == sizeof(err));
		_exit(127);
	}

	close(out[1]);
	close(status_pipe[1]);

	while ((n = read(out[0], output + len, size - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += n;
		if (len == size - 1) {
			/* Keep the start; drain the rest so modprobe can finish. */
			char sink[256];

			while ((n = read(out[0], sink, sizeof(sink))) > 0 ||
			       (n < 0 && errno == EINTR))
				;
			break;
		}
	}
	output[len] = '\0';
	close(out[0]);

	if (read(status_pipe[0], &err, sizeof(err)) != sizeof(err))
		err = 0;
	close(status_pipe[0]);

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;

	if (err)
		return -err;

	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/**
 * igt_kmod_load - Loads @mod_name and the modules it needs, with the
 * parameters @opts (space-separated name=value, or NULL). As in IGT, asking
 * for options asks for a fresh load: a loaded module then gives -EEXIST.
 *
 * Returns: 0, or -errno: that of the failed load when modprobe printed it,
 * -ENOENT when modprobe or the module is not found, else -EIO.
 */
int igt_kmod_load(const char *mod_name, const char *opts)
{
	char *argv[64], *opts_copy = NULL, *save = NULL, output[4096];
	int argc = 0, ret;

	if (opts && igt_kmod_is_loaded(mod_name)) {
		igt_debug("Module %s already inserted\n", mod_name);
		return -EEXIST;
	}

	argv[argc++] = "modprobe";
	argv[argc++] = (char *)mod_name;
	if (opts) {
		opts_copy = strdup(opts);
		if (!opts_copy)
			return -ENOMEM;
		for (char *o = strtok_r(opts_copy, " \t", &save);
		     o && argc < (int)(sizeof(argv) / sizeof(*argv)) - 1;
		     o = strtok_r(NULL, " \t", &save))
			argv[argc++] = o;
	}
	argv[argc] = NULL;

	ret = run_modprobe(argv, output, sizeof(output));
	if (ret > 0) {
		igt_debug("Could not insert %s (modprobe exit status %d)\n", mod_name, ret);
		ret = modprobe_errno(output);
	} else if (ret < 0) {
		igt_debug("Could not run modprobe for %s (%s)\n", mod_name, strerror(-ret));
	}
	log_output(output);

	free(opts_copy);
	return ret;
}

/* Waits up to 10 s for a module that is still initialising. */
static void wait_while_coming(const char *name)
{
	char path[PATH_MAX], state[32];

	snprintf(path, sizeof(path), "/sys/module/%s/initstate", name);
	for (int i = 0; i < 100; i++) {
		FILE *f = fopen(path, "re");
		bool coming;

		if (!f)
			return;
		coming = fgets(state, sizeof(state), f) && !strncmp(state, "coming", 6);
		fclose(f);
		if (!coming)
			return;
		if (!i)
			igt_debug("%s still initializing\n", name);
		usleep(100 * 1000);
	}
}

/**
 * igt_kmod_unload - Unloads @mod_name, after the modules that use it. A
 * module in use (-EBUSY or -EAGAIN) is tried again for about 2 s, in case
 * its last user is still going away.
 *
 * Returns: 0, or -errno of delete_module(2): -EAGAIN (EWOULDBLOCK) or
 * -EBUSY while the module is in use, -ENOENT for one that is not loaded
 * (built-in drivers included), -EPERM without CAP_SYS_MODULE.
 */
int igt_kmod_unload(const char *mod_name)
{
	const int max_tries = 20;
	char name[64], path[PATH_MAX];
	struct dirent *de;
	int err = 0, tries;
	DIR *dir;

	module_name(name, sizeof(name), mod_name);

	snprintf(path, sizeof(path), "/sys/module/%s/holders", name);
	dir = opendir(path);
	if (dir) {
		while (!err && (de = readdir(dir))) {
			if (de->d_name[0] == '.')
				continue;
			err = igt_kmod_unload(de->d_name);
		}
		closedir(dir);
		if (err)
			return err;
	}

	wait_while_coming(name);

	for (tries = 0; tries < max_tries; tries++) {
		/* O_NONBLOCK: fail at once while in use, do not wait for users. */
		err = syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
		if (err != -EBUSY && err != -EAGAIN)
			break;

		igt_debug("Module %s failed to unload with err: %d on attempt: %i\n",
			  name, err, tries + 1);
		if (tries < max_tries - 1)
			usleep(100 * 1000);
	}

	if (err)
		igt_debug("Could not remove module %s (%s)\n", name, strerror(-err));
	else
		igt_debug("Module %s unloaded after %d attempt(s)\n", name, tries + 1);

	return err;
}
