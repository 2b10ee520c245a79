// SPDX-License-Identifier: GPL-2.0-only
/*
 * Ceiling probe for the syshub benchmarks: the same kernel design as syshub
 * (per-syscall tracepoints on enter and exit, a (pid namespace, nr) filter
 * key, per-key matched/dropped counters, the call held in task storage
 * between enter and exit, one record per call into one ring buffer, no
 * wake-up unless more than `wakeup_bytes` is pending) with nothing else: no
 * argument captures, a fixed 96-byte record. What a C + libbpf consumer gets
 * out of this design is the practical ceiling for syshub on the same machine.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "ceiling.h"

char LICENSE[] SEC("license") = "GPL";

/* Kernel types read through CO-RE; only the fields used are declared. */
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct pid_namespace {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct upid {
	int nr;
	struct pid_namespace *ns;
} __attribute__((preserve_access_index));

struct pid {
	unsigned int level;
	struct upid numbers[1];
} __attribute__((preserve_access_index));

struct task_struct {
	struct pid *thread_pid;
} __attribute__((preserve_access_index));

/* tracefs layout of syscalls/sys_enter_* and sys_exit_* */
struct tp_sys_enter {
	__u64 common;
	int nr;
	int pad;
};

struct tp_sys_exit {
	__u64 common;
	int nr;
	int pad;
	long ret;
};

struct held_call {
	__u32 pending;
	__u32 nr;
	struct ceiling_key key;
	__u64 enter_ns;
	__u64 seq;
	__u32 pid_ns;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024); /* set by the loader */
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ceiling_key);
	__type(value, struct ceiling_counters);
} keys SEC(".maps");

/* index 0: wake-up threshold in bytes */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct held_call);
} held SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int ceiling_enter(struct tp_sys_enter *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ceiling_counters *kc;
	struct ceiling_key key;
	struct held_call *hc;
	struct pid *tpid;
	unsigned int level;

	tpid = BPF_CORE_READ(task, thread_pid);
	level = BPF_CORE_READ(tpid, level);
	key.pid_ns = BPF_CORE_READ(tpid, numbers[level & 31].ns, ns.inum);
	key.nr = (__u32)ctx->nr;
	kc = bpf_map_lookup_elem(&keys, &key);
	if (!kc)
		return 0;
	hc = bpf_task_storage_get(&held, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!hc) {
		__sync_fetch_and_add(&kc->matched, 1);
		__sync_fetch_and_add(&kc->dropped, 1);
		return 0;
	}
	hc->seq = __sync_fetch_and_add(&kc->matched, 1) + 1;
	hc->key = key;
	hc->nr = key.nr;
	hc->pid_ns = key.pid_ns;
	hc->enter_ns = bpf_ktime_get_ns();
	hc->pending = 1;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_getppid")
int ceiling_exit(struct tp_sys_exit *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ceiling_counters *kc;
	struct ceiling_record *r;
	struct held_call *hc;
	__u64 flags = BPF_RB_NO_WAKEUP, *wake;
	__u32 zero = 0;
	__u64 id;

	hc = bpf_task_storage_get(&held, task, 0, 0);
	if (!hc || !hc->pending)
		return 0;
	hc->pending = 0;
	kc = bpf_map_lookup_elem(&keys, &hc->key);
	r = bpf_ringbuf_reserve(&ring, sizeof(*r), 0);
	if (!r) {
		if (kc)
			__sync_fetch_and_add(&kc->dropped, 1);
		return 0;
	}
	id = bpf_get_current_pid_tgid();
	r->nr = hc->nr;
	r->tgid = id >> 32;
	r->tid = (__u32)id;
	r->pid_ns = hc->pid_ns;
	r->enter_ns = hc->enter_ns;
	r->exit_ns = bpf_ktime_get_ns();
	r->ret = ctx->ret;
	r->seq = hc->seq;
	r->cgroup_id = bpf_get_current_cgroup_id();
	r->args[0] = 0;
	r->args[1] = 0;
	r->args[2] = 0;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	wake = bpf_map_lookup_elem(&config, &zero);
	if (wake && bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA) > *wake)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(r, flags);
	return 0;
}
