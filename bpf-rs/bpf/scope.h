/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Process scopes: user space puts a process (and its existing descendants)
 * in scope_tasks, tgid -> scope id; while any scope exists, the fork hook
 * adds every new process to its parent's scope and the exit hook removes a
 * dead process, so a reused pid is not traced. A task in a scope matches the
 * filter key (scope id, nr) before its pid namespace's key.
 */
#ifndef SYSHUB_SCOPE_H
#define SYSHUB_SCOPE_H

#include "kernel.h"
#include "state.h"

/* Number of live scopes (index 0), written by user space: 0 skips every
 * scope lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} scope_count SEC(".maps");

/* tgid (host) -> scope id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} scope_tasks SEC(".maps");

/* The scope id of process `tgid`, 0 when it is in none (or none exists). */
static __always_inline __u32 scope_of(__u32 tgid)
{
	__u32 zero = 0, *n, *id;

	/* intent: nothing but one inlined array load while no scope exists */
	n = bpf_map_lookup_elem(&scope_count, &zero);
	if (!n || !*n)
		return 0;
	id = bpf_map_lookup_elem(&scope_tasks, &tgid);
	return id ? *id : 0;
}

SEC("raw_tracepoint/sched_process_fork")
int syshub_scope_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptgid, ctgid, cpid, *id, scope;

	ctgid = BPF_CORE_READ(child, tgid);
	cpid = BPF_CORE_READ(child, pid);
	/* intent: a new thread belongs to its process already */
	if (cpid != ctgid)
		return 0;
	ptgid = BPF_CORE_READ(parent, tgid);
	id = bpf_map_lookup_elem(&scope_tasks, &ptgid);
	if (!id)
		return 0;
	scope = *id;
	if (bpf_map_update_elem(&scope_tasks, &ctgid, &scope, BPF_ANY) != 0)
		gc_inc(SYSHUB_GC_SCOPE_FULL);
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int syshub_scope_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	__u32 tgid;

	/* intent: forget a process once its last thread exits (signal->live is
	 * already decremented here), so its pid, when reused, is not in scope */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	bpf_map_delete_elem(&scope_tasks, &tgid);
	return 0;
}

#endif /* SYSHUB_SCOPE_H */
