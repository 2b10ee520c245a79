// SPDX-License-Identifier: GPL-2.0-only
/*
 * syshub syscall metrics: per (pid namespace, syscall, errno) call count,
 * and in latency mode total time and a log2 latency histogram, in a bounded
 * per-CPU hash that user space reads and sums. A program of its own, apart
 * from the trace probe (syshub.bpf.c): attached only while metrics are on.
 *
 * Counting needs one hook: the syscall exit (tp_btf/sys_exit) has the
 * number (regs->orig_ax), the return value and the task, so a call costs
 * one program run and one map lookup (a bare raw enter+exit pair costs two
 * runs). Latency mode adds the entry hook, which stamps the time into a
 * per-task slot (task storage: a call can sleep, migrate, be preempted
 * between entry and exit), and two clock reads; its extra cost is the price
 * of the histogram. Counts never depend on the entry: a call whose entry
 * was not seen (in flight at attach, no slot) is counted and added to the
 * untimed counter. Calls that find the map full are added to one overflow
 * value, so every call is counted somewhere. exit/exit_group never return:
 * counted when the thread exits (sched_process_exit), with a duration of 0.
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
const volatile __u32 latency = 1; /* 0: count-only (no entry hook, no clock) */
/* Calls whose new child returns through sys_exit too (with 0). */
const volatile __u32 nr_clone = 56;
const volatile __u32 nr_fork = 57;
const volatile __u32 nr_vfork = 58;
const volatile __u32 nr_clone3 = 435;
const volatile __u32 nr_rt_sigreturn = 15;

/* Keep the ABI structs in the object's BTF, for the layout test. */
const volatile struct syshub_mx_key abi_mx_key_type = {};
const volatile struct syshub_mx_value abi_mx_value_type = {};

/* A task's call in flight (latency mode). */
struct mx_slot {
	__u64 enter_ns; /* 0: no call measured */
	__u64 nr;
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

/* The series' value (inserted when new), or the overflow value when the
 * map is full; NULL only if the overflow lookup fails (never). */
static __noinline struct syshub_mx_value *mx_value(struct syshub_mx_key *key)
{
	struct syshub_mx_value *v;
	__u32 zero = 0;

	v = bpf_map_lookup_elem(&mx_stats, key);
	if (v)
		return v;
	{
		struct syshub_mx_value init = {};

		/* intent: another CPU may insert the same key first (EEXIST):
		 * look up again either way; only a full map sends the call to
		 * the overflow value */
		bpf_map_update_elem(&mx_stats, key, &init, BPF_NOEXIST);
	}
	v = bpf_map_lookup_elem(&mx_stats, key);
	if (v)
		return v;
	mx_count(SYSHUB_MX_C_OVERFLOW);
	return bpf_map_lookup_elem(&mx_overflow, &zero);
}

/* The kernel's struct pid with room to name numbers[1] and [2] (a flexible
 * array there): the common levels are read without a helper call. */
struct pid___mx {
	unsigned int level;
	struct upid numbers[3];
} __pai;

/* The task's active pid namespace (the level its pid lives at). */
static __always_inline __u32 pid_ns_of(struct task_struct *task)
{
	struct pid___mx *tpid = (void *)task->thread_pid;
	__u32 level = tpid->level;
	struct pid_namespace *ns;

	if (level == 0)
		ns = tpid->numbers[0].ns;
	else if (level == 1)
		ns = tpid->numbers[1].ns;
	else if (level == 2)
		ns = tpid->numbers[2].ns;
	else
		return BPF_CORE_READ((struct pid *)tpid, numbers[level & 31].ns, ns.inum);
	return ns->ns.inum;
}

/* Whether `task`'s calls are counted; its pid namespace in *pid_ns. */
static __always_inline int mx_counted(struct task_struct *task, __u32 *pid_ns)
{
	if ((__u32)task->tgid == self_tgid)
		return 0;
	*pid_ns = pid_ns_of(task);
	if (mode == SYSHUB_MX_MODE_CONTAINERS && !bpf_map_lookup_elem(&mx_namespaces, pid_ns))
		return 0;
	return 1;
}

SEC("tp_btf/sys_exit")
int syshub_mx_exit(__u64 *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	__s64 ret = (__s64)ctx[1];
	struct syshub_mx_value *v;
	struct syshub_mx_key key;
	__u64 nr = regs->orig_ax;

	/* intent: rt_sigreturn restores the registers of the interrupted code
	 * and sets orig_ax to -1 (no syscall restart): its exit shows -1. So
	 * does a call a ptrace tracer skipped (rare; named rt_sigreturn too) */
	if (nr == (__u64)-1)
		nr = nr_rt_sigreturn;
	/* intent: a new task's first return is its parent's clone/fork
	 * returning 0 in the child: one call, counted once (in the parent) */
	if (ret == 0 && (nr == nr_clone || nr == nr_clone3 || nr == nr_fork || nr == nr_vfork))
		return 0;
	if (!mx_counted(task, &key.pid_ns))
		return 0;
	key.nr = (__u16)nr;
	/* intent: -4095..-1 is an errno for every syscall (IS_ERR_VALUE);
	 * addresses returned by mmap/brk never fall there */
	key.err = (ret < 0 && ret >= -4095) ? (__u16)-ret : 0;
	v = mx_value(&key);
	if (!v)
		return 0;
	v->count += 1;
	if (latency) {
		struct mx_slot *st = bpf_task_storage_get(&mx_slots, task, 0, 0);
		__u64 ns;
		__u32 b;

		/* intent: an exit without its entry's stamp (in flight when the
		 * hooks were attached, no slot) is counted, not timed */
		if (!st || !st->enter_ns || st->nr != nr) {
			mx_count(SYSHUB_MX_C_UNTIMED);
			return 0;
		}
		ns = bpf_ktime_get_ns() - st->enter_ns;
		st->enter_ns = 0;
		b = bits_of(ns);
		if (b >= SYSHUB_MX_BUCKETS)
			b = SYSHUB_MX_BUCKETS - 1;
		v->total_ns += ns;
		v->hist[b] += 1;
	}
	return 0;
}

/* Latency mode only: stamp the call's start. */
SEC("tp_btf/sys_enter")
int syshub_mx_enter(__u64 *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	struct mx_slot *st;
	__u32 pid_ns;

	/* intent: node mode needs no namespace here (the exit finds it) */
	if (mode == SYSHUB_MX_MODE_NODE ? (__u32)task->tgid == self_tgid
					: !mx_counted(task, &pid_ns))
		return 0;
	st = bpf_task_storage_get(&mx_slots, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		mx_count(SYSHUB_MX_C_NOMEM);
		return 0;
	}
	st->nr = regs->orig_ax;
	st->enter_ns = bpf_ktime_get_ns();
	return 0;
}

/*
 * exit and exit_group never reach sys_exit: a thread that dies in one of
 * them is counted as it exits (its saved registers still hold the call's
 * number; a thread killed in any other call or in user space holds another
 * number and is not counted). Runs once per thread exit, not per syscall.
 */
SEC("tp_btf/sched_process_exit")
int syshub_mx_task_exit(__u64 *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct syshub_mx_value *v;
	struct syshub_mx_key key;
	__u64 nr;

	if (!regs)
		return 0;
	nr = regs->orig_ax;
	if (nr != nr_exit && nr != nr_exit_group)
		return 0;
	if (!mx_counted(task, &key.pid_ns))
		return 0;
	key.nr = (__u16)nr;
	key.err = 0;
	v = mx_value(&key);
	if (!v)
		return 0;
	v->count += 1;
	if (latency)
		v->hist[0] += 1;
	return 0;
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
