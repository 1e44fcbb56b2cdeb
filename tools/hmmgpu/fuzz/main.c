// SPDX-License-Identifier: MIT
/*
 * hmmgpu_fuzz: a coverage-guided fuzzer of the hmmgpu ioctl surface (see
 * fuzz.h for what a program is).
 *
 * Each program runs in a forked executor, in a process group of its own, with
 * a time limit: a program that outlives it is killed and saved as a
 * reproducer; one that cannot be killed (a task stuck in the kernel) is a
 * hang, saved with the stuck tasks' kernel stacks, and ends the run. After
 * each program the kernel log is read for reports, and every -H programs
 * (default 8) and at the end a fresh file checks that the device still works
 * (health.c); either saves the program (for the health check, the last of the
 * -H programs it follows: replay them all with -H 1 to find the one). With KCOV, a program that reached new PCs joins the corpus, which
 * the next programs are mutated from; without KCOV, programs are generated
 * and mutated at random. Programs derive from the seed alone (printed first;
 * -s repeats it): a run without KCOV is repeated exactly by its seed, one with
 * KCOV up to where coverage, which timing changes, made the corpus differ.
 *
 * Before it runs, each program is written to DIR/current.prog (and synced),
 * so that one that panicked the guest can be read back from its disk.
 * Reproducers go to DIR/NNN-KIND.prog and, between HMMGPU-FUZZ-REPRO-BEGIN and
 * -END lines, to the output; hmmgpu_fuzz -r FILE replays one, printing each
 * call's result (-n N: N times, until it reproduces, for a race).
 *
 * -p prints the programs the seed makes (-n of them, generated and mutated
 * as without KCOV) instead of running them: no device needed.
 *
 * Usage: hmmgpu_fuzz [-t SECONDS] [-n PROGRAMS] [-s SEED] [-o DIR] [-H N]
 *                    [-T SECONDS] [-k] [-v] | -r FILE | -p
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

#define MAX_CORPUS	2048
#define LOG_LEN		16384

static struct fuzz_prog corpus[MAX_CORPUS];
static unsigned int ncorpus;
static const char *outdir = "/tmp/hmmgpu-fuzz";
static struct fuzz_stats *stats;
static unsigned int findings, executor_errors;
static unsigned long long seed;
static unsigned long long programs;
/* Seconds spent running programs, and in the health checks. */
static double t_programs, t_health;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void write_prog(const char *path, const struct fuzz_prog *p, const char *kind,
		       const char *log, bool sync)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		return;
	if (kind) {
		const char *line = log;

		dprintf(fd, "# hmmgpu_fuzz reproducer: %s\n# seed %llu, program %llu\n", kind,
			seed, programs);
		while (line && *line) {
			const char *end = strchr(line, '\n');
			int n = end ? end - line : (int)strlen(line);

			dprintf(fd, "# %.*s\n", n, line);
			line += n + (end ? 1 : 0);
		}
	}
	fuzz_prog_print(p, fd);
	if (sync)
		fdatasync(fd);
	close(fd);
}

/*
 * The program about to run, in DIR/current.prog: written over the start of the
 * same blocks each time, up to a NUL where parsing stops, and synced, so that
 * it survives a panic without a journal commit per program.
 */
static void write_current(const struct fuzz_prog *p)
{
	static char text[FUZZ_TEXT_MAX];
	static int fd = -1;
	size_t len;

	if (fd < 0) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/current.prog", outdir);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || ftruncate(fd, sizeof(text)) || fsync(fd))
			return;
	}
	len = fuzz_prog_format(p, text, sizeof(text)) + 1;
	if (pwrite(fd, text, len, 0) == (ssize_t)len)
		fdatasync(fd);
}

/* Saves a program that found something, and prints it for the host. */
static void save(const struct fuzz_prog *p, const char *kind, const char *log)
{
	char name[64], path[4096];
	FILE *f;
	int c;

	snprintf(name, sizeof(name), "%03u-%s.prog", findings + executor_errors, kind);
	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	write_prog(path, p, kind, log, true);
	printf("fuzz: %s after program %llu, saved as %s\n", kind, programs, path);
	printf("HMMGPU-FUZZ-REPRO-BEGIN: %s\n", name);
	fflush(stdout);
	f = fopen(path, "r");
	while (f && (c = fgetc(f)) != EOF)
		putchar(c);
	if (f)
		fclose(f);
	printf("HMMGPU-FUZZ-REPRO-END: %s\n", name);
	fflush(stdout);
}

/* The kernel stacks of the tasks of process group @pgid, for a hang's report. */
static void stacks(pid_t pgid, char *buf, size_t len)
{
	size_t used = strlen(buf);
	struct dirent *d;
	DIR *proc = opendir("/proc");

	while (proc && (d = readdir(proc))) {
		char path[300], text[4096];
		pid_t pid = atoi(d->d_name);
		ssize_t n;
		int fd;

		if (pid <= 0 || getpgid(pid) != pgid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stack", pid);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
		if (n < 0)
			n = 0;
		text[n] = 0;
		used += snprintf(buf + used, used < len ? len - used : 0, "task %d:\n%s", pid, text);
		if (used >= len)
			break;
	}
	if (proc)
		closedir(proc);
}

enum outcome { RAN, TIMED_OUT, HUNG, EXECUTOR_ERROR };

/* Waits for @pid up to @secs seconds: true when it was reaped. */
static bool wait_for(pid_t pid, double secs, int *status)
{
	double end = now() + secs;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return true;
		if (r < 0 && errno != EINTR)
			return true;
		if (now() > end)
			return false;
		usleep(r == 0 ? 2000 : 0);
	}
}

static enum outcome run(const struct fuzz_prog *p, const char *node, double limit, bool verbose,
			char *log, size_t len)
{
	struct fuzz_exec_opts o = { .node = node, .stats = stats, .verbose = verbose };
	enum outcome ret = RAN;
	double t0 = now();
	int status = 0;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return EXECUTOR_ERROR;
	if (pid == 0) {
		setpgid(0, 0);
		kcov_enable();
		fuzz_exec(p, &o);
		kcov_disable();
		_exit(0);
	}
	setpgid(pid, pid);
	if (!wait_for(pid, limit, &status)) {
		snprintf(log, len, "the program ran past its limit of %.0f s; kernel stacks:\n",
			 limit);
		stacks(pid, log, len);
		kill(-pid, SIGKILL);
		if (!wait_for(pid, 30, &status)) {
			size_t used = strlen(log);

			snprintf(log + used, len - used, "SIGKILL did not end it in 30 s; "
				 "kernel stacks now:\n");
			stacks(pid, log, len);
			return HUNG;
		}
		ret = TIMED_OUT;
	} else if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status))) {
		snprintf(log, len, "the executor ended with %s %d\n",
			 WIFSIGNALED(status) ? "signal" : "status",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		ret = EXECUTOR_ERROR;
	}
	/* Its forked children too (the executor reaps them, unless it was killed). */
	kill(-pid, SIGKILL);
	t_programs += now() - t0;
	return ret;
}

/* The health check, in a child of its own with a time limit. */
static int health(const char *node, char *why, size_t len)
{
	char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int status, err = -1;
	double t0 = now();
	pid_t pid;

	if (shared == MAP_FAILED)
		return fuzz_health(node, why, len);
	shared[0] = 0;
	pid = fork();
	if (pid == 0)
		_exit(fuzz_health(node, shared, 4096) ? 1 : 0);
	if (pid > 0 && wait_for(pid, 60, &status)) {
		err = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
		snprintf(why, len, "%s", shared[0] ? shared : "the health check crashed");
	} else {
		snprintf(why, len, "the health check did not end in 60 s");
		if (pid > 0)
			kill(pid, SIGKILL);
	}
	munmap(shared, 4096);
	t_health += now() - t0;
	return err;
}

/* Each operation's calls, how many succeeded, and its most frequent error. */
static void ops_summary(void)
{
	char line[160];
	int op, len = 0;

	for (op = 0; op < OP_COUNT; op++) {
		int e, top = 0;

		for (e = 1; e < FUZZ_ERRNOS; e++)
			if (stats->op_err[op][e] > stats->op_err[op][top])
				top = e;
		if (!len)
			len = snprintf(line, sizeof(line), "fuzz: calls (ok/all, top error):");
		len += snprintf(line + len, sizeof(line) - len, " %s %llu/%llu", fuzz_ops[op].name,
				(unsigned long long)stats->op_ok[op],
				(unsigned long long)stats->op_calls[op]);
		if (top)
			len += snprintf(line + len, sizeof(line) - len, " %s %llu",
					strerrorname_np(top),
					(unsigned long long)stats->op_err[op][top]);
		if (len > 90 || op == OP_COUNT - 1) {
			printf("%s\n", line);
			len = 0;
		}
	}
}

static void summary(double elapsed)
{
	size_t total, hmmgpu, hmmgpu_fw, fw, drm;

	printf("fuzz: seed %llu, %llu programs, %llu ioctls (%llu succeeded), %llu calls in %.0f s\n",
	       seed, programs, (unsigned long long)stats->ioctls,
	       (unsigned long long)stats->ioctls_ok, (unsigned long long)stats->calls, elapsed);
	printf("fuzz: %.0f s in programs, %.0f s in health checks\n", t_programs, t_health);
	ops_summary();
	if (kcov_available()) {
		kcov_describe(stdout);
		kcov_report(&total, &hmmgpu, &hmmgpu_fw, &fw, &drm);
		printf("fuzz: kcov: %zu blocks (distinct PCs), %zu in hmmgpu (%zu of them in framework "
		       "generics it instantiates), %zu in the framework in vmlinux, %zu in DRM/dma-buf "
		       "C\n", total, hmmgpu, hmmgpu_fw, fw, drm);
		printf("fuzz: corpus: %u programs\n", ncorpus);
	} else {
		printf("fuzz: kcov: no KCOV (no /sys/kernel/debug/kcov): random mode, no corpus\n");
	}
	printf("fuzz: findings: %u%s\n", findings,
	       executor_errors ? " (and executor errors, see above)" : "");
}

/*
 * The next program without KCOV (and for -p): a mutation of the last one half
 * the time, else a new one; it becomes the last.
 */
static void next_program(struct fuzz_rng *rng, struct fuzz_prog *p, struct fuzz_prog *last,
			 bool *have_last)
{
	if (*have_last && fuzz_one_in(rng, 2)) {
		*p = *last;
		fuzz_mutate(rng, p, NULL);
	} else {
		fuzz_generate(rng, p);
	}
	*last = *p;
	*have_last = true;
}

/* Runs the program in @path @times times (for a race), checking after each. */
static int replay(const char *path, const char *node, unsigned long long times)
{
	static char log[LOG_LEN];
	struct fuzz_prog p;
	int err = fuzz_prog_load(&p, path), bad = 0;

	if (err) {
		fprintf(stderr, "hmmgpu_fuzz: cannot load %s: %s\n", path, strerror(-err));
		return 2;
	}
	printf("fuzz: replaying %s (%u calls) %llu times\n", path, p.n, times);
	while (!bad && programs++ < times) {
		switch (run(&p, node, 60, times == 1, log, sizeof(log))) {
		case HUNG:
			printf("fuzz: hang: %s", log);
			return 1;
		case TIMED_OUT:
			printf("fuzz: timeout: %s", log);
			bad = 1;
			break;
		case EXECUTOR_ERROR:
			printf("fuzz: %s", log);
			break;
		default:
			break;
		}
		usleep(200000);
		if (kmsg_check(log, sizeof(log))) {
			printf("fuzz: kernel log:\n%s", log);
			bad = 1;
		}
		if (health(node, log, sizeof(log))) {
			printf("fuzz: the device no longer works: %s\n", log);
			bad = 1;
		}
	}
	printf("fuzz: %s after %llu runs, %llu ioctls\n", bad ? "reproduced" : "nothing found",
	       programs, (unsigned long long)stats->ioctls);
	return bad;
}

int main(int argc, char **argv)
{
	static char log[LOG_LEN];
	double seconds = 60, limit = 30, start;
	unsigned long long max_programs = ~0ull;
	unsigned int health_every = 8;
	const char *replay_path = NULL, *node;
	struct fuzz_prog p, last;
	bool use_kcov = true, verbose = false, have_last = false, stop = false, print = false;
	struct fuzz_rng rng;
	int opt;

	seed = time(NULL) ^ getpid();
	while ((opt = getopt(argc, argv, "t:n:s:o:H:T:kvr:p")) != -1) {
		switch (opt) {
		case 't':
			seconds = atof(optarg);
			break;
		case 'n':
			max_programs = strtoull(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'o':
			outdir = optarg;
			break;
		case 'H':
			health_every = atoi(optarg) > 0 ? atoi(optarg) : 1;
			break;
		case 'T':
			limit = atof(optarg);
			break;
		case 'k':
			use_kcov = false;
			break;
		case 'v':
			verbose = true;
			break;
		case 'r':
			replay_path = optarg;
			break;
		case 'p':
			print = true;
			break;
		default:
			fprintf(stderr, "usage: %s [-t S] [-n N] [-s SEED] [-o DIR] [-H N] [-T S] "
				"[-k] [-v] | -r FILE\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	rng.s = seed * 0x9e3779b97f4a7c15ull + 1;
	if (print) {
		if (max_programs == ~0ull)
			max_programs = 1;
		while (programs++ < max_programs) {
			next_program(&rng, &p, &last, &have_last);
			printf("# program %llu\n", programs);
			fuzz_prog_print(&p, STDOUT_FILENO);
		}
		return 0;
	}
	node = fuzz_find_node();
	if (!node) {
		printf("fuzz: no hmmgpu render node\n");
		return 2;
	}
	stats = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		     -1, 0);
	if (stats == MAP_FAILED)
		return 2;
	memset(stats, 0, sizeof(*stats));
	kmsg_open();
	if (replay_path)
		return replay(replay_path, node, max_programs == ~0ull ? 1 : max_programs);

	mkdir(outdir, 0755);
	if (use_kcov)
		kcov_open();
	printf("fuzz: %s, seed %llu, %.0f s, %s, findings to %s\n", node, seed, seconds,
	       kcov_available() ? "KCOV" : "no KCOV (random mode)", outdir);
	if (health(node, log, sizeof(log))) {
		printf("fuzz: the device does not work before fuzzing: %s\n", log);
		return 2;
	}
	start = now();
	while (!stop && now() - start < seconds && programs < max_programs) {
		size_t added;

		if (!kcov_available()) {
			next_program(&rng, &p, &last, &have_last);
		} else if (ncorpus && !fuzz_one_in(&rng, 8)) {
			p = corpus[fuzz_below(&rng, ncorpus)];
			fuzz_mutate(&rng, &p, &corpus[fuzz_below(&rng, ncorpus)]);
		} else {
			fuzz_generate(&rng, &p);
		}
		write_current(&p);
		programs++;
		switch (run(&p, node, limit, verbose, log, sizeof(log))) {
		case HUNG:
			findings++;
			save(&p, "hang", log);
			stop = true;
			continue;
		case TIMED_OUT:
			findings++;
			save(&p, "timeout", log);
			break;
		case EXECUTOR_ERROR:
			executor_errors++;
			save(&p, "executor", log);
			break;
		default:
			break;
		}
		added = kcov_collect();
		if (added && ncorpus < MAX_CORPUS)
			corpus[ncorpus++] = p;
		if (kmsg_check(log, sizeof(log))) {
			findings++;
			save(&p, "kernel-log", log);
		}
		if (programs % health_every == 0 && health(node, log, sizeof(log))) {
			findings++;
			save(&p, "device", log);
			stop = true;
		}
	}
	if (!stop && programs % health_every && health(node, log, sizeof(log))) {
		findings++;
		save(&p, "device", log);
	}
	summary(now() - start);
	return findings ? 1 : 0;
}
