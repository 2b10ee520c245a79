// SPDX-License-Identifier: GPL-2.0-only
/*
 * syshub syscall metrics: per (pid namespace, syscall, errno) call count,
 * total time and a log2 latency histogram, in a bounded per-CPU hash that
 * user space reads and sums. A program of its own, apart from the trace
 * probe (syshub.bpf.c): attached to the raw sys_enter/sys_exit hooks only
 * while metrics are on.
 *
 * The entry does as little as it can: it stamps the time and the syscall
 * number into a per-task slot (the task's pid namespace is read once per
 * task and kept there); the exit computes the key and updates the map.
 * Calls that find the map full are added to one overflow value, so every
 * call is counted somewhere. exit/exit_group never return: counted at entry
 * with a duration of 0.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "kernel.h"
#include "metrics_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* Runtime knobs, set by the loader before load. */
const volatile __u32 self_tgid = 0; /* the tracer: never counted */
const volatile __u32 mode = SYSHUB_MX_MODE_NODE;
const volatile __u32 nr_exit = 60;
const volatile __u32 nr_exit_group = 231;

/* Keep the ABI structs in the object's BTF, for the layout test. */
const volatile struct syshub_mx_key abi_mx_key_type = {};
const volatile struct syshub_mx_value abi_mx_value_type = {};

/* A task's call in flight. */
struct mx_slot {
	__u64 enter_ns; /* 0: no call measured */
	__u32 nr;
	__u32 pid_ns; /* the task's active pid namespace (never changes) */
};

/* intent: preallocated, so an insert fails only when the map is full (a
 * no-prealloc map's allocator can run dry in a burst of new series); memory:
 * max_entries x possible CPUs x sizeof(struct syshub_mx_value) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384); /* overridden at load */
	__type(key, struct syshub_mx_key);
	__type(value, struct syshub_mx_value);
} mx_stats SEC(".maps");

/* Calls that found mx_stats full, all keys together. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syshub_mx_value);
} mx_overflow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SYSHUB_MX_C_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} mx_counters SEC(".maps");

/* Containers mode: the pid namespaces counted (value unused). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} mx_namespaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mx_slot);
} mx_slots SEC(".maps");

static __always_inline void mx_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&mx_counters, &idx);

	if (v)
		*v += 1;
}

/* Significant bits of v: 0 for 0, else floor(log2(v)) + 1 (no clz in BPF). */
static __always_inline __u32 bits_of(__u64 v)
{
	__u32 n = 0;

	if (v >> 32) {
		v >>= 32;
		n += 32;
	}
	if (v >> 16) {
		v >>= 16;
		n += 16;
	}
	if (v >> 8) {
		v >>= 8;
		n += 8;
	}
	if (v >> 4) {
		v >>= 4;
		n += 4;
	}
	if (v >> 2) {
		v >>= 2;
		n += 2;
	}
	if (v >> 1) {
		v >>= 1;
		n += 1;
	}
	return n + (__u32)v;
}

/* Add one call of `ns` nanoseconds to its series (or to the overflow). */
static __noinline int mx_account(struct syshub_mx_key *key, __u64 ns)
{
	struct syshub_mx_value *v;
	__u32 b = bits_of(ns), zero = 0;

	if (b >= SYSHUB_MX_BUCKETS)
		b = SYSHUB_MX_BUCKETS - 1;
	v = bpf_map_lookup_elem(&mx_stats, key);
	if (!v) {
		struct syshub_mx_value init = {};

		/* intent: another CPU may insert the same key first (EEXIST):
		 * look up again either way; only a full map sends the call to
		 * the overflow value */
		bpf_map_update_elem(&mx_stats, key, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&mx_stats, key);
		if (!v) {
			mx_count(SYSHUB_MX_C_OVERFLOW);
			v = bpf_map_lookup_elem(&mx_overflow, &zero);
			if (!v)
				return 0;
		}
	}
	v->count += 1;
	v->total_ns += ns;
	v->hist[b] += 1;
	return 0;
}

static __always_inline __u32 pid_ns_of(struct task_struct *task)
{
	struct pid *tpid = BPF_CORE_READ(task, thread_pid);
	__u32 level = BPF_CORE_READ(tpid, level);

	return BPF_CORE_READ(tpid, numbers[level & 31].ns, ns.inum);
}

SEC("raw_tracepoint/sys_enter")
int syshub_mx_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct syshub_mx_key key;
	struct mx_slot *st;
	__u32 nr;

	if ((__u32)task->tgid == self_tgid)
		return 0;
	st = bpf_task_storage_get(&mx_slots, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		mx_count(SYSHUB_MX_C_NOMEM);
		return 0;
	}
	if (!st->pid_ns)
		st->pid_ns = pid_ns_of(task);
	if (mode == SYSHUB_MX_MODE_CONTAINERS && !bpf_map_lookup_elem(&mx_namespaces, &st->pid_ns))
		return 0;
	nr = (__u32)ctx->args[1];
	/* intent: calls that never return are counted now, with no duration */
	if (nr == nr_exit || nr == nr_exit_group) {
		key.pid_ns = st->pid_ns;
		key.nr = (__u16)nr;
		key.err = 0;
		return mx_account(&key, 0);
	}
	st->nr = nr;
	st->enter_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int syshub_mx_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct syshub_mx_key key;
	struct mx_slot *st;
	__s64 ret = (__s64)ctx->args[1];
	__u64 ns;

	st = bpf_task_storage_get(&mx_slots, task, 0, 0);
	if (!st || !st->enter_ns)
		return 0;
	ns = bpf_ktime_get_ns() - st->enter_ns;
	st->enter_ns = 0;
	key.pid_ns = st->pid_ns;
	key.nr = (__u16)st->nr;
	/* intent: -4095..-1 is an errno for every syscall (IS_ERR_VALUE);
	 * addresses returned by mmap/brk never fall there */
	key.err = (ret < 0 && ret >= -4095) ? (__u16)-ret : 0;
	return mx_account(&key, ns);
}

/* The baseline of the benchmarks: an empty raw enter+exit pair. */
SEC("raw_tracepoint/sys_enter")
int syshub_mx_bare_enter(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int syshub_mx_bare_exit(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}
