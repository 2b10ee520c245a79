// SPDX-License-Identifier: Apache-2.0
// Workload for the syshub metrics tests and the scrape benchmark.
// Usage: metrics_calls MODE [ARGS]
//   mix N M K        N openat (M of them fail with ENOENT), K getppid, exit_group(0)
//   sleep MS...      one nanosleep of each length (ms, fractions allowed)
//   loop SECONDS     getppid flat out for SECONDS
//   spread NS        NS children, each in a new pid namespace, each making the
//                    calls of spread_calls() (about 30 series), then blocking
//                    until stdin closes; prints "ready" once all have made them
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void mix(long n, long m, long k)
{
	for (long i = 0; i < n; i++) {
		const char *path = i < m ? "/nonexistent/syshub-metrics" : "/";
		long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			syscall(SYS_close, fd);
	}
	for (long i = 0; i < k; i++)
		syscall(SYS_getppid);
}

static void sleeps(int argc, char **argv)
{
	for (int i = 2; i < argc; i++) {
		double ms = atof(argv[i]);
		struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
				       .tv_nsec = (long)((ms - (double)(long)(ms / 1000) * 1000) * 1e6) };
		syscall(SYS_nanosleep, &ts, NULL);
	}
}

static void loop(double secs)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (;;) {
		for (int i = 0; i < 4096; i++)
			syscall(SYS_getppid);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9 >= secs)
			break;
	}
}

/* Harmless calls with distinct (syscall, result) pairs: one series each. */
static void spread_calls(void)
{
	struct utsname u;
	struct rusage ru;
	struct stat st;
	struct timespec ts = { 0, 0 };
	char buf[64];

	syscall(SYS_getppid);
	syscall(SYS_getpid);
	syscall(SYS_gettid);
	syscall(SYS_getuid);
	syscall(SYS_geteuid);
	syscall(SYS_getgid);
	syscall(SYS_getegid);
	syscall(SYS_getpgrp);
	syscall(SYS_getsid, 0);
	syscall(SYS_sched_yield);
	syscall(SYS_umask, 022);
	syscall(SYS_uname, &u);
	syscall(SYS_getrusage, RUSAGE_SELF, &ru);
	syscall(SYS_getcwd, buf, sizeof(buf));
	syscall(SYS_getpriority, PRIO_PROCESS, 0);
	syscall(SYS_nanosleep, &ts, NULL);
	syscall(SYS_openat, AT_FDCWD, "/nonexistent/syshub-metrics", O_RDONLY);
	syscall(SYS_close, -1);
	syscall(SYS_read, -1, buf, 1);
	syscall(SYS_write, -1, buf, 1);
	syscall(SYS_dup, -1);
	syscall(SYS_fcntl, -1, F_GETFD);
	syscall(SYS_fstat, -1, &st);
	syscall(SYS_lseek, -1, 0, SEEK_SET);
	syscall(SYS_fsync, -1);
	syscall(SYS_fdatasync, -1);
	syscall(SYS_ftruncate, -1, 0);
	syscall(SYS_fchmod, -1, 0);
	syscall(SYS_fchdir, -1);
	syscall(SYS_flock, -1, 0);
	syscall(SYS_getdents64, -1, buf, sizeof(buf));
	syscall(SYS_newfstatat, AT_FDCWD, "/nonexistent/syshub-metrics", &st, 0);
}

static void spread(long ns)
{
	int go[2], ready[2];
	if (pipe(go) || pipe(ready))
		exit(2);
	for (long i = 0; i < ns; i++) {
		pid_t p = fork();
		if (p < 0)
			exit(3);
		if (p == 0) {
			close(go[1]);
			close(ready[0]);
			if (unshare(CLONE_NEWPID))
				_exit(4);
			pid_t c = fork();
			if (c == 0) {
				char b;
				spread_calls();
				if (write(ready[1], "r", 1) != 1)
					_exit(5);
				while (read(go[0], &b, 1) > 0)
					;
				_exit(0);
			}
			waitpid(c, NULL, 0);
			_exit(0);
		}
	}
	close(go[0]);
	close(ready[1]);
	for (long i = 0; i < ns; i++) {
		char b;
		if (read(ready[0], &b, 1) != 1)
			exit(6);
	}
	printf("ready\n");
	fflush(stdout);
	char b;
	while (read(0, &b, 1) > 0)
		;
	close(go[1]);
	while (wait(NULL) > 0)
		;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "mix";
	if (!strcmp(mode, "mix") && argc == 5)
		mix(atol(argv[2]), atol(argv[3]), atol(argv[4]));
	else if (!strcmp(mode, "sleep"))
		sleeps(argc, argv);
	else if (!strcmp(mode, "loop") && argc == 3)
		loop(atof(argv[2]));
	else if (!strcmp(mode, "spread") && argc == 3)
		spread(atol(argv[2]));
	else {
		fprintf(stderr, "usage: metrics_calls mix N M K | sleep MS... | loop S | spread NS\n");
		return 2;
	}
	syscall(SYS_exit_group, 0);
	return 0;
}
