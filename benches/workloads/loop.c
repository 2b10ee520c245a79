// SPDX-License-Identifier: Apache-2.0
// syshub benchmark workload: one syscall pattern in a tight loop, for a fixed
// time or count, timed with clock_gettime(CLOCK_MONOTONIC) inside the program.
// Prints one JSON line on stdout when done.
//
// Usage: loop MODE [--secs S] [--count N] [--cpu C] [--path P] [--port P]
//                  [--interval-us U]
//   getppid    getppid()                                   1 syscall per iteration
//   openclose  openat(P, O_RDONLY) + close()               2 syscalls per iteration
//   openat     openat(P, O_RDONLY) of a missing P (ENOENT)  1 syscall per iteration
//              (no descriptor, so no close; a call that opens P is a failure)
//   connect    socket() + connect(127.0.0.1:P) + close()  3 syscalls per iteration
//              (P should be a port nobody listens on: the connect is refused)
//   forkexec   fork() + execve("/bin/true") + wait4()      1 process per iteration
//   tick       getppid() then sleep U microseconds          (churn: a live, slow caller)
// --secs stops after S seconds (default 1), --count after N iterations.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct opts {
	const char *mode;
	double secs;
	long count;
	int cpu;
	const char *path;
	int port;
	long interval_us;
};

static void usage(void)
{
	fprintf(stderr, "usage: loop getppid|openclose|openat|connect|forkexec|tick [--secs S] "
			"[--count N] [--cpu C] [--path P] [--port P] [--interval-us U]\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	if (argc < 2)
		usage();
	o->mode = argv[1];
	o->secs = 1.0;
	o->count = -1;
	o->cpu = -1;
	o->path = "/dev/shm/syshub-bench-file";
	o->port = 1;
	o->interval_us = 1000;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (!strcmp(a, "--secs"))
			o->secs = atof(v);
		else if (!strcmp(a, "--count"))
			o->count = atol(v);
		else if (!strcmp(a, "--cpu"))
			o->cpu = atoi(v);
		else if (!strcmp(a, "--path"))
			o->path = v;
		else if (!strcmp(a, "--port"))
			o->port = atoi(v);
		else if (!strcmp(a, "--interval-us"))
			o->interval_us = atol(v);
		else
			usage();
		i++;
	}
}

/* One iteration of the mode; returns the number of failures it saw. */
typedef long (*step_fn)(const struct opts *o);

static long step_getppid(const struct opts *o)
{
	(void)o;
	syscall(SYS_getppid);
	return 0;
}

static long step_openclose(const struct opts *o)
{
	long fd = syscall(SYS_openat, AT_FDCWD, o->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 1;
	syscall(SYS_close, fd);
	return 0;
}

static long step_openat(const struct opts *o)
{
	long fd = syscall(SYS_openat, AT_FDCWD, o->path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		syscall(SYS_close, fd);
		return 1;
	}
	return errno == ENOENT ? 0 : 1;
}

static struct sockaddr_in target;

static long step_connect(const struct opts *o)
{
	long s = syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	long r;

	(void)o;
	if (s < 0)
		return 1;
	r = syscall(SYS_connect, s, (struct sockaddr *)&target, sizeof(target));
	syscall(SYS_close, s);
	/* refused is the expected outcome; anything else is counted */
	return (r == 0 || errno == ECONNREFUSED) ? 0 : 1;
}

static long step_forkexec(const struct opts *o)
{
	pid_t pid = fork();
	int status = 0;

	(void)o;
	if (pid < 0)
		return 1;
	if (pid == 0) {
		char *av[] = { "true", NULL };
		char *ev[] = { NULL };

		execve("/bin/true", av, ev);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return 1;
	return 0;
}

static long step_tick(const struct opts *o)
{
	struct timespec ts = { .tv_sec = o->interval_us / 1000000,
			       .tv_nsec = (o->interval_us % 1000000) * 1000 };

	syscall(SYS_getppid);
	nanosleep(&ts, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	step_fn step;
	long calls_per_iter = 1, check_every = 1, n = 0, failures = 0;
	double t0, t1, deadline;

	parse(argc, argv, &o);
	if (!strcmp(o.mode, "getppid")) {
		step = step_getppid;
		check_every = 4096;
	} else if (!strcmp(o.mode, "openclose")) {
		step = step_openclose;
		calls_per_iter = 2;
		check_every = 256;
	} else if (!strcmp(o.mode, "openat")) {
		step = step_openat;
		check_every = 1024;
	} else if (!strcmp(o.mode, "connect")) {
		step = step_connect;
		calls_per_iter = 3;
		check_every = 64;
		target.sin_family = AF_INET;
		target.sin_port = htons((unsigned short)o.port);
		inet_pton(AF_INET, "127.0.0.1", &target.sin_addr);
	} else if (!strcmp(o.mode, "forkexec")) {
		step = step_forkexec;
	} else if (!strcmp(o.mode, "tick")) {
		step = step_tick;
	} else {
		usage();
		return 2;
	}
	if (o.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(o.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			o.cpu = -1; /* reported as unpinned */
	}
	t0 = now_s();
	deadline = t0 + o.secs;
	if (o.count >= 0) {
		for (n = 0; n < o.count; n++)
			failures += step(&o);
	} else {
		for (;;) {
			for (long i = 0; i < check_every; i++)
				failures += step(&o);
			n += check_every;
			if (now_s() >= deadline)
				break;
		}
	}
	t1 = now_s();
	printf("{\"mode\":\"%s\",\"iterations\":%ld,\"calls\":%ld,\"secs\":%.9f,"
	       "\"iterations_per_s\":%.1f,\"calls_per_s\":%.1f,\"ns_per_iteration\":%.3f,"
	       "\"failures\":%ld,\"cpu\":%d}\n",
	       o.mode, n, n * calls_per_iter, t1 - t0, n / (t1 - t0),
	       n * calls_per_iter / (t1 - t0), (t1 - t0) * 1e9 / (n ? n : 1), failures, o.cpu);
	fflush(stdout);
	return 0;
}
