// SPDX-License-Identifier: Apache-2.0
// Decoder conformance workload: a fixed sequence of direct syscalls with known
// arguments and known results (successes and failures with a known errno), to
// compare syshub's decoding with strace's (tests/conformance_compare.py).
//
// Usage: conformance DIR    (DIR: an empty directory; everything happens in it)
//
// Every call goes through syscall(2) so that libc never substitutes another
// one; the order is fixed and single-threaded. The first call of main is
// chdir(DIR): the comparison starts there (libc start-up calls are skipped).
// Nothing is printed; the exit status is 0 when every call had its expected
// result, else the 1-based index of the first unexpected one (for debugging).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int step;
static int first_bad;

/* Checks one call's result: want >= 0 is an exact return value, want == OK
 * any non-negative one, want == -E an error with errno E. */
#define OK (-100000)
static long chk(long r, long want)
{
	step++;
	int good;
	if (want == OK)
		good = r >= 0;
	else if (want < 0)
		good = r == -1 && errno == -want;
	else
		good = r == want;
	if (!good && !first_bad)
		first_bad = step;
	return r;
}

#define S(want, ...) chk(syscall(__VA_ARGS__), (want))

static struct sockaddr_un unix_addr(const char *path, int abstract, socklen_t *len)
{
	struct sockaddr_un a;
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	size_t n = strlen(path);
	memcpy(a.sun_path + (abstract ? 1 : 0), path, n);
	/* a path includes its NUL; an abstract name is the leading NUL plus the name */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return a;
}

int main(int argc, char **argv)
{
	static char buf[4096];
	static char st[256], stx[512], sfs[256];
	if (argc < 2)
		return 100;

	/* --- directories and files ------------------------------------------ */
	S(0, SYS_chdir, argv[1]);                                /* marker */
	S(OK, SYS_getcwd, buf, sizeof(buf));
	long um = S(OK, SYS_umask, 022);
	S(0, SYS_mkdir, "d", 0755);
	S(-EEXIST, SYS_mkdir, "d", 0755);
	S(0, SYS_mkdirat, AT_FDCWD, "d2", 0700);
	S(3, SYS_open, "f1", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	S(12, SYS_write, 3, "hello world\n", 12);
	S(5, SYS_pwrite64, 3, "HELLO", 5, 0);
	S(0, SYS_fsync, 3);
	S(0, SYS_fdatasync, 3);
	S(0, SYS_close, 3);
	S(-EBADF, SYS_close, 3);
	S(3, SYS_openat, AT_FDCWD, "f1", O_RDONLY | O_CLOEXEC);
	S(12, SYS_read, 3, buf, 64);
	S(5, SYS_pread64, 3, buf, 5, 6);
	S(12, SYS_lseek, 3, 0, SEEK_END);
	S(0, SYS_fstat, 3, st);
	S(0, SYS_fstatfs, 3, sfs);
	S(-ENOENT, SYS_openat, AT_FDCWD, "missing/x", O_RDONLY);
	S(-ENOTDIR, SYS_open, "f1/x", O_RDONLY);
	S(-EISDIR, SYS_openat, AT_FDCWD, "d", O_WRONLY | O_APPEND);
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS };
	S(4, SYS_openat2, AT_FDCWD, "f1", &how, sizeof(how));
	S(5, SYS_creat, "f2", 0600);
	S(6, SYS_dup, 3);
	S(10, SYS_dup2, 3, 10);
	S(11, SYS_dup3, 3, 11, O_CLOEXEC);
	S(-EINVAL, SYS_dup3, 3, 3, 0);
	S(0, SYS_ftruncate, 5, 100);
	S(0, SYS_truncate, "f2", 10);
	S(-ENOENT, SYS_truncate, "nope", 0);
	S(0, SYS_fallocate, 5, 0, 0, 4096);
	S(0, SYS_stat, "f1", st);
	S(0, SYS_lstat, "f1", st);
	S(0, SYS_newfstatat, AT_FDCWD, "f1", st, AT_SYMLINK_NOFOLLOW);
	S(0, SYS_newfstatat, 3, "", st, AT_EMPTY_PATH);
	S(0, SYS_statx, AT_FDCWD, "f1", AT_SYMLINK_NOFOLLOW,
	  STATX_TYPE | STATX_MODE | STATX_SIZE, stx);
	S(0, SYS_statfs, ".", sfs);
	S(0, SYS_access, "f1", R_OK | W_OK);
	S(-EACCES, SYS_access, "f1", X_OK);            /* even root needs an x bit */
	S(-ENOENT, SYS_faccessat, AT_FDCWD, "nope", F_OK);
	S(0, SYS_faccessat2, AT_FDCWD, "f1", R_OK, AT_EACCESS);
	S(0, SYS_symlink, "f1", "s1");
	S(0, SYS_symlinkat, "f1", AT_FDCWD, "s2");
	S(-ELOOP, SYS_openat2, AT_FDCWD, "s1", &how, sizeof(how));
	S(2, SYS_readlink, "s1", buf, 64);
	S(2, SYS_readlinkat, AT_FDCWD, "s2", buf, 64);
	S(-EINVAL, SYS_readlink, "f1", buf, 64);
	S(0, SYS_link, "f1", "h1");
	S(0, SYS_linkat, AT_FDCWD, "f1", AT_FDCWD, "h2", 0);
	S(0, SYS_rename, "h1", "h3");
	S(0, SYS_renameat, AT_FDCWD, "h2", AT_FDCWD, "h4");
	S(-EEXIST, SYS_renameat2, AT_FDCWD, "h3", AT_FDCWD, "h4", RENAME_NOREPLACE);
	S(0, SYS_chmod, "f1", 0640);
	S(0, SYS_fchmod, 3, 0644);
	S(0, SYS_fchmodat, AT_FDCWD, "f2", 0600);
	S(0, SYS_chown, "f1", -1, -1);
	S(0, SYS_fchownat, AT_FDCWD, "s1", -1, -1, AT_SYMLINK_NOFOLLOW);
	S(0, SYS_lchown, "s1", -1, -1);
	S(0, SYS_utimensat, AT_FDCWD, "f1", NULL, 0);
	S(0, SYS_unlink, "s2");
	S(-ENOENT, SYS_unlink, "s2");
	S(0, SYS_unlinkat, AT_FDCWD, "d2", AT_REMOVEDIR);
	S(0, SYS_mkdir, "d/sub", 0755);
	S(-ENOTEMPTY, SYS_rmdir, "d");
	S(0, SYS_rmdir, "d/sub");
	S(0, SYS_rmdir, "d");
	S(7, SYS_open, ".", O_RDONLY | O_DIRECTORY);
	S(OK, SYS_getdents64, 7, buf, sizeof(buf));
	S(0, SYS_fchdir, 7);
	S(-ENOTDIR, SYS_fchdir, 3);
	S(0, SYS_fcntl, 6, F_GETFD, 0);                     /* dup drops FD_CLOEXEC */
	S(1, SYS_fcntl, 11, F_GETFD, 0);
	S(0, SYS_fcntl, 6, F_SETFL, O_NONBLOCK);
	S(-EBADF, SYS_fcntl, 99, F_GETFL, 0);
	S(0, SYS_flock, 3, LOCK_SH | LOCK_NB);
	S(0, SYS_flock, 3, LOCK_UN);
	S(0, SYS_fadvise64, 3, 0, 0, POSIX_FADV_SEQUENTIAL);

	/* --- pipes and sockets ---------------------------------------------- */
	int p[2];
	S(0, SYS_pipe2, p, O_CLOEXEC);                         /* 8, 9 */
	S(-ESPIPE, SYS_lseek, p[0], 0, SEEK_CUR);
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_port = htons(1) };
	lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	S(12, SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	S(-ECONNREFUSED, SYS_connect, 12, &lo, sizeof(lo));
	int one = 1;
	S(0, SYS_setsockopt, 12, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	int v = 0;
	socklen_t vl = sizeof(v);
	S(0, SYS_getsockopt, 12, SOL_SOCKET, SO_TYPE, &v, &vl);
	S(-EBADF, SYS_listen, 99, 1);
	socklen_t al;
	struct sockaddr_un sa = unix_addr("sock", 0, &al);
	S(13, SYS_socket, AF_UNIX, SOCK_STREAM, 0);
	S(0, SYS_bind, 13, &sa, al);
	S(-EADDRINUSE, SYS_bind, 13, &sa, al);              /* path exists */
	S(0, SYS_listen, 13, 4);
	S(14, SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	S(-ENOTCONN, SYS_getpeername, 14, buf, (socklen_t[]){ 128 });
	S(0, SYS_connect, 14, &sa, al);
	S(15, SYS_accept4, 13, buf, (socklen_t[]){ 128 }, SOCK_CLOEXEC);
	S(0, SYS_getsockname, 13, buf, (socklen_t[]){ 128 });
	S(0, SYS_getpeername, 14, buf, (socklen_t[]){ 128 });
	S(0, SYS_shutdown, 14, SHUT_WR);
	socklen_t abl;
	struct sockaddr_un ab = unix_addr("syshub-conformance-none", 1, &abl);
	S(16, SYS_socket, AF_UNIX, SOCK_STREAM, 0);
	S(-ECONNREFUSED, SYS_connect, 16, &ab, abl);
	socklen_t dl;
	struct sockaddr_un da = unix_addr("dgram", 0, &dl);
	S(17, SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	S(0, SYS_bind, 17, &da, dl);
	S(18, SYS_socket, AF_UNIX, SOCK_DGRAM, 0);
	S(4, SYS_sendto, 18, "ping", 4, MSG_DONTWAIT, &da, dl);
	struct sockaddr_un from;
	socklen_t fl = sizeof(from);
	S(4, SYS_recvfrom, 17, buf, 64, MSG_DONTWAIT, &from, &fl);
	S(-EAGAIN, SYS_recvfrom, 17, buf, 64, MSG_DONTWAIT, NULL, NULL);
	int sv[2];
	S(0, SYS_socketpair, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv); /* 19, 20 */
	S(-ENOENT, SYS_connect, 18, &(struct sockaddr_un){ .sun_family = AF_UNIX,
		.sun_path = "nope.sock" }, (socklen_t)sizeof(struct sockaddr_un));

	/* --- process, identity, limits -------------------------------------- */
	long pid = S(OK, SYS_getpid);
	S(OK, SYS_getppid);
	long tid = S(OK, SYS_gettid);
	S(0, SYS_kill, pid, 0);
	S(0, SYS_tgkill, pid, tid, 0);
	S(0, SYS_tgkill, pid, tid, SIGWINCH);                 /* ignored by default */
	S(-EINVAL, SYS_kill, pid, 1000);
	S(OK, SYS_getuid);
	S(OK, SYS_getgid);
	S(OK, SYS_geteuid);
	S(OK, SYS_getegid);
	struct utsname uts;
	S(0, SYS_uname, &uts);
	struct rlimit rl;
	S(0, SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl);
	S(0, SYS_getrlimit, RLIMIT_STACK, &rl);
	struct rusage ru;
	S(0, SYS_getrusage, RUSAGE_SELF, &ru);
	struct sysinfo si;
	S(0, SYS_sysinfo, &si);
	S(OK, SYS_getpriority, PRIO_PROCESS, 0);
	S(0, SYS_prctl, PR_GET_NAME, buf, 0, 0, 0);
	S(-EINVAL, SYS_prctl, 0x7fff1234, 0, 0, 0, 0);
	S(0, SYS_sched_yield);
	S(16, SYS_getrandom, buf, 16, GRND_NONBLOCK);
	S(022, SYS_umask, um);                               /* restore */

	/* --- time ------------------------------------------------------------ */
	struct timespec ts = { 0, 1000 };
	S(0, SYS_nanosleep, &ts, NULL);
	S(0, SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, NULL);
	S(0, SYS_clock_gettime, CLOCK_REALTIME, &ts);
	S(-EINVAL, SYS_clock_gettime, 1234, &ts);
	S(21, SYS_timerfd_create, CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = { .it_value = { 100, 0 } };
	S(0, SYS_timerfd_settime, 21, 0, &its, NULL);
	S(22, SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
	S(8, SYS_write, 22, &(uint64_t){ 1 }, 8);

	/* --- notification, memory ------------------------------------------- */
	S(23, SYS_inotify_init1, IN_CLOEXEC | IN_NONBLOCK);
	S(1, SYS_inotify_add_watch, 23, ".", IN_CREATE | IN_DELETE);
	S(-ENOENT, SYS_inotify_add_watch, 23, "nope", IN_MODIFY);
	S(24, SYS_memfd_create, "syshub-memfd", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	S(25, SYS_epoll_create1, EPOLL_CLOEXEC);
	struct epoll_event ee = { .events = EPOLLIN, .data.u64 = 7 };
	S(0, SYS_epoll_ctl, 25, EPOLL_CTL_ADD, p[0], &ee);
	struct pollfd pf = { .fd = p[0], .events = POLLIN };
	S(0, SYS_poll, &pf, 1, 0);
	void *m = (void *)S(OK, SYS_mmap, NULL, 8192, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	S(0, SYS_mprotect, m, 4096, PROT_READ);
	S(0, SYS_madvise, m, 8192, MADV_DONTNEED);
	S(0, SYS_munmap, m, 8192);
	S(-EINVAL, SYS_munmap, (char *)m + 1, 4096);
	S(-EBADF, SYS_mmap, NULL, 4096, PROT_READ, MAP_SHARED, 99, 0);
	S(OK, SYS_brk, 0);

	/* --- exec failures, exit -------------------------------------------- */
	char *av[] = { "syshub-none", "a1", NULL };
	char *ev[] = { NULL };
	S(-ENOENT, SYS_execve, "/nonexistent/syshub-prog", av, ev);
	S(-EACCES, SYS_execve, "f1", av, ev);
	syscall(SYS_exit_group, first_bad);
	return 101;
}
