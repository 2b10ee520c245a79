/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The few kernel types the probe reads, declared for CO-RE: field offsets are
 * relocated against the running kernel's BTF at load time, so only the names
 * and types used here must exist there (include/linux/sched.h, pid.h,
 * pid_namespace.h, nsproxy.h, ns_common.h, cred.h, cgroup-defs.h, kernfs.h;
 * arch/x86/include/asm/ptrace.h).
 */
#ifndef SYSHUB_KERNEL_H
#define SYSHUB_KERNEL_H

#define __pai __attribute__((preserve_access_index))

struct ns_common {
	unsigned int inum;
} __pai;

struct pid_namespace {
	struct ns_common ns;
} __pai;

struct mnt_namespace {
	struct ns_common ns;
} __pai;

struct uts_namespace {
	struct ns_common ns;
} __pai;

struct upid {
	int nr;
	struct pid_namespace *ns;
} __pai;

struct pid {
	unsigned int level;
	struct upid numbers[1];
} __pai;

struct nsproxy {
	struct uts_namespace *uts_ns;
	struct mnt_namespace *mnt_ns;
} __pai;

enum pid_type {
	PIDTYPE_PID,
	PIDTYPE_TGID,
	PIDTYPE_PGID,
	PIDTYPE_SID,
	PIDTYPE_MAX,
};

typedef struct {
	int counter;
} atomic_t;

struct signal_struct {
	atomic_t live; /* threads not yet exiting; 0 once the group is dead */
	struct pid *pids[PIDTYPE_MAX];
} __pai;

/* sigset_t: 64 signal bits on x86_64. */
struct syshub_sigset {
	unsigned long sig[1];
};

struct sigpending {
	struct syshub_sigset signal;
} __pai;

typedef struct {
	unsigned int val;
} kuid_t;

typedef struct {
	unsigned int val;
} kgid_t;

struct cred {
	kuid_t uid;
	kgid_t gid;
} __pai;

struct kernfs_node {
	__u64 id;
} __pai;

struct cgroup {
	struct kernfs_node *kn;
} __pai;

struct css_set {
	struct cgroup *dfl_cgrp;
} __pai;

struct task_struct {
	int pid;
	int tgid;
	struct pid *thread_pid;
	struct task_struct *group_leader;
	struct nsproxy *nsproxy;
	struct signal_struct *signal;
	struct sigpending pending; /* signals sent to this thread */
	const struct cred *cred;   /* subjective credentials, as bpf_get_current_uid_gid reads */
	struct css_set *cgroups;
	char comm[16];
} __pai;

/* x86_64 syscall argument registers: di, si, dx, r10, r8, r9. */
struct pt_regs {
	unsigned long r10;
	unsigned long r9;
	unsigned long r8;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
} __pai;

/* include/trace/events/syscalls.h records, a stable tracefs layout. */
struct syscall_tp_enter {
	__u64 common;
	int nr;
	int _pad;
	/* arguments follow; only as many as the syscall has */
};

struct syscall_tp_exit {
	__u64 common;
	int nr;
	int _pad;
	long ret;
};

#endif /* SYSHUB_KERNEL_H */
