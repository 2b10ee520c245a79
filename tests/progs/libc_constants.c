/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The constants the decoder names that the kernel's UAPI headers do not
 * define for user space (socket families and flags, timerfd/eventfd/signalfd
 * flags, umount flags, file type bits, access modes): as glibc's headers
 * define them. See uapi_constants.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <stdio.h>

/* NAME VALUE lines; "NAME ?" for a name these headers do not define. */
#define P(x) printf("%s %lld\n", #x, (long long)(x))
#define Q(name, x) printf("%s %lld\n", name, (long long)(x))
#define U(x) printf("%s ?\n", #x)

int main(void)
{
	P(SFD_NONBLOCK); P(SFD_CLOEXEC); P(TFD_TIMER_ABSTIME); P(TFD_TIMER_CANCEL_ON_SET);
	P(TFD_NONBLOCK); P(TFD_CLOEXEC); P(EFD_SEMAPHORE); P(EFD_NONBLOCK); P(EFD_CLOEXEC);
	P(MNT_FORCE); P(MNT_DETACH); P(MNT_EXPIRE); P(UMOUNT_NOFOLLOW); P(R_OK); P(W_OK); P(X_OK);
	P(O_ASYNC); P(S_IFMT);
	Q("SIGRTMAX", __SIGRTMAX); /* glibc's SIGRTMAX is a function */
	P(AF_UNIX); P(AF_INET); P(AF_INET6); P(AF_NETLINK); P(F_OK); P(S_IFIFO); P(S_IFCHR);
	P(S_IFDIR); P(S_IFBLK); P(S_IFREG); P(S_IFLNK); P(S_IFSOCK); P(S_ISUID); P(S_ISGID);
	P(S_ISVTX); P(AF_UNSPEC); P(AF_IPX); P(AF_APPLETALK); P(AF_X25); P(AF_PACKET); P(AF_CAN);
	P(AF_BLUETOOTH); P(AF_ALG); P(AF_VSOCK); P(AF_XDP); P(SOCK_STREAM); P(SOCK_DGRAM);
	P(SOCK_RAW); P(SOCK_RDM); P(SOCK_SEQPACKET); P(SOCK_DCCP); P(SOCK_PACKET);
	P(SOCK_NONBLOCK); P(SOCK_CLOEXEC); P(MSG_OOB); P(MSG_PEEK); P(MSG_DONTROUTE);
	P(MSG_CTRUNC); P(MSG_PROXY); P(MSG_TRUNC); P(MSG_DONTWAIT); P(MSG_EOR); P(MSG_WAITALL);
	P(MSG_FIN); P(MSG_SYN); P(MSG_CONFIRM); P(MSG_RST); P(MSG_ERRQUEUE); P(MSG_NOSIGNAL);
	P(MSG_MORE); P(MSG_WAITFORONE); P(MSG_BATCH); P(MSG_ZEROCOPY); P(MSG_FASTOPEN);
	P(MSG_CMSG_CLOEXEC); P(SOL_IP); P(SOL_TCP); P(SOL_UDP); P(SOL_IPV6); P(SOL_RAW);
	P(SOL_PACKET); P(SOL_NETLINK); P(SHUT_RD); P(SHUT_WR); P(SHUT_RDWR); P(PTRACE_PEEKUSER);
	P(PTRACE_POKEUSER); P(ENOTSUP);
	return 0;
}
