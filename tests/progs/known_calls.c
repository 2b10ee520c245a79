// SPDX-License-Identifier: Apache-2.0
// Workload for the syshub tests: makes known syscalls with known results.
// Usage: known_calls MODE [N]
//   known      openat ok/ENOENT, open, connect (refused), execve (ENOENT), exit_group(7)
//   getppid N  N getppid() calls, then exit_group(0)
//   strings    openat with a long then a short path (stale-byte check)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "known";
	if (!strcmp(mode, "known")) {
		long fd = syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY | O_CLOEXEC);
		long bad = syscall(SYS_openat, AT_FDCWD, "/nonexistent/syshub", O_RDONLY);
		long o = syscall(SYS_open, "/etc/hostname", O_RDONLY);
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9) };
		inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
		long c = syscall(SYS_connect, s, (struct sockaddr *)&sin, sizeof(sin));
		char *av[] = { "syshub-none", "a1", "a2", NULL };
		char *ev[] = { NULL };
		long e = syscall(SYS_execve, "/nonexistent/prog", av, ev);
		(void)fd; (void)bad; (void)o; (void)c; (void)e;
		syscall(SYS_exit_group, 7);
	} else if (!strcmp(mode, "getppid")) {
		long n = argc > 2 ? atol(argv[2]) : 1000;
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
		syscall(SYS_exit_group, 0);
	} else if (!strcmp(mode, "strings")) {
		char longp[200];
		memset(longp, 'x', sizeof(longp) - 1);
		longp[0] = '/';
		longp[sizeof(longp) - 1] = 0;
		syscall(SYS_openat, AT_FDCWD, longp, O_RDONLY);
		syscall(SYS_openat, AT_FDCWD, "/a", O_RDONLY);
		syscall(SYS_exit_group, 0);
	} else if (!strcmp(mode, "wait")) {
		/* block until stdin closes, then make one getppid: for namespace tests */
		char b;
		while (read(0, &b, 1) > 0)
			syscall(SYS_getppid);
		syscall(SYS_exit_group, 0);
	}
	return 1;
}
