// SPDX-License-Identifier: Apache-2.0
/*
 * Floor loader: loads floor.bpf.o with libbpf and attaches the count-only
 * programs of one syscall's tracepoints, nothing else: the enter + exit pair
 * (--hooks pair, the default) or the exit hook alone (--hooks exit; for
 * openat the program that reads the path at exit).
 *
 * Usage: floor OBJ --syscall getppid|openat [--hooks pair|exit]
 * Prints "ready" once attached; on SIGINT/SIGTERM detaches, sums the per-CPU
 * counters and prints one JSON line: syscall, enter, exit, path_faults, and
 * cpu_s, the loader's own CPU time (loading, attaching: the benchmark takes it
 * out of its children's CPU time to leave the traced loop's).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "floor.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

/* The sum over CPUs of one per-CPU counter slot. */
static unsigned long long slot_sum(struct bpf_map *m, __u32 slot, int ncpu)
{
	unsigned long long sum = 0;
	__u64 *vals = calloc((size_t)ncpu, sizeof(*vals));

	if (!vals)
		return 0;
	if (!bpf_map__lookup_elem(m, &slot, sizeof(slot), vals, sizeof(*vals) * (size_t)ncpu, 0))
		for (int i = 0; i < ncpu; i++)
			sum += vals[i];
	free(vals);
	return sum;
}

int main(int argc, char **argv)
{
	const char *syscall = NULL, *hooks = "pair", *enter_name, *exit_name;
	struct bpf_link *l_enter = NULL, *l_exit;
	__u32 enter_slot, exit_slot;
	struct bpf_object *obj;
	sigset_t block, wait_mask;
	struct sigaction sa;
	struct rusage ru;
	struct bpf_map *m;
	int ncpu, err;

	for (int i = 2; i + 1 < argc; i += 2)
		if (!strcmp(argv[i], "--syscall"))
			syscall = argv[i + 1];
		else if (!strcmp(argv[i], "--hooks"))
			hooks = argv[i + 1];
	if (argc < 2 || !syscall || (strcmp(hooks, "pair") && strcmp(hooks, "exit"))) {
		fprintf(stderr, "usage: floor OBJ --syscall getppid|openat [--hooks pair|exit]\n");
		return 2;
	}
	if (!strcmp(syscall, "getppid")) {
		enter_name = "floor_getppid_enter";
		exit_name = "floor_getppid_exit";
		enter_slot = FLOOR_GETPPID_ENTER;
		exit_slot = FLOOR_GETPPID_EXIT;
	} else if (!strcmp(syscall, "openat")) {
		enter_name = "floor_openat_enter";
		exit_name = strcmp(hooks, "exit") ? "floor_openat_exit" : "floor_openat_exit_path";
		enter_slot = FLOOR_OPENAT_ENTER;
		exit_slot = FLOOR_OPENAT_EXIT;
	} else {
		fprintf(stderr, "floor: unknown syscall %s (getppid or openat)\n", syscall);
		return 2;
	}
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0) {
		fprintf(stderr, "floor: cannot count the possible CPUs\n");
		return 1;
	}
	libbpf_set_print(silent);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* blocked until sigsuspend: a signal cannot slip in between test and wait */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGTERM);

	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "floor: cannot open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "floor: load failed: %s\n", strerror(-err));
		return 1;
	}
	m = bpf_object__find_map_by_name(obj, "counts");
	l_exit = bpf_program__attach(bpf_object__find_program_by_name(obj, exit_name));
	if (strcmp(hooks, "exit"))
		l_enter = bpf_program__attach(bpf_object__find_program_by_name(obj, enter_name));
	if (!m || !l_exit || (strcmp(hooks, "exit") && !l_enter)) {
		fprintf(stderr, "floor: attach failed: %s\n", strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		sigsuspend(&wait_mask);
	bpf_link__destroy(l_enter); /* NULL-safe */
	bpf_link__destroy(l_exit);
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"syscall\":\"%s\",\"enter\":%llu,\"exit\":%llu,\"path_faults\":%llu,"
	       "\"cpu_s\":%.6f}\n",
	       syscall, slot_sum(m, enter_slot, ncpu), slot_sum(m, exit_slot, ncpu),
	       slot_sum(m, FLOOR_PATH_FAULTS, ncpu),
	       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	fflush(stdout);
	bpf_object__close(obj);
	return 0;
}
