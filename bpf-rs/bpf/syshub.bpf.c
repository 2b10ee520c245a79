// SPDX-License-Identifier: GPL-2.0-only
/*
 * syshub kernel probe: per-(pid namespace, syscall) filtered syscall records.
 *
 * One generic entry and one generic exit program are attached on demand to
 * the per-syscall tracepoints (syscalls/sys_enter_<name>, sys_exit_<name>) of
 * the syscalls some filter asks for, so other syscalls stay cheap. Syscalls
 * without such tracepoints, or past a few traced syscalls (detaching many
 * tracepoints is slow), go through the raw sys_enter/sys_exit hooks, only
 * while one of them is traced. Needs Linux >= 5.17 (bpf_loop, task storage
 * in tracing programs, ring buffer).
 *
 * A call is built in per-task storage at entry (header, arguments, entry-time
 * captures) and emitted at exit into the one ring buffer, so one record
 * carries the whole call. exit/exit_group never return: emitted at entry.
 *
 * Files: state.h (per-task call, maps), capture.h (argument captures),
 * scope.h (process scopes: a process tree keyed by a small scope id).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "kernel.h"
#include "syshub_abi.h"
#include "state.h"
#include "capture.h"
#include "scope.h"

char LICENSE[] SEC("license") = "GPL";

/* Runtime knobs, set by the loader before load. */
const volatile __u32 self_tgid = 0;	    /* the tracer: never traced */
const volatile __u64 wakeup_bytes = 262144; /* wake the reader past this much */
const volatile __u64 ring_size = 16777216;  /* bytes of the events ring */
const volatile __u64 share_from = 8388608;  /* pending bytes past which keys get a fair share */
const volatile __u32 nr_exit = 60;
const volatile __u32 nr_exit_group = 231;

/* Keep every ABI struct in the object's BTF, for the layout test. */
const volatile struct syshub_event abi_event_type = {};
const volatile struct syshub_capture abi_capture_type = {};

/* Drop a record whose key is over its share of the ring (syshub_abi.h):
 * counted in the key's dropped and over_share. */
static __always_inline int over_share(struct inflight *st, __u64 avail, __u32 len)
{
	struct syshub_key_counters *kc;
	__u64 *rd, read = 0, done, pending, free, slot;

	kc = bpf_map_lookup_elem(&counters, &st->key);
	if (!kc)
		return 0;
	rd = bpf_map_lookup_elem(&key_read, &st->key);
	if (rd)
		read = *rd;
	/* intent: records of the key written (this one included) or still in a
	 * call, less those the reader took out of the ring */
	done = kc->sampled_out + kc->dropped + read;
	pending = kc->matched > done ? kc->matched - done : 0;
	free = ring_size > avail ? ring_size - avail : 0;
	slot = (len + 8 + 7) & ~7ULL; /* ring record header, 8-byte aligned */
	if (pending * slot <= free)
		return 0;
	__sync_fetch_and_add(&kc->dropped, 1);
	__sync_fetch_and_add(&kc->over_share, 1);
	gc_inc(SYSHUB_GC_DROPPED);
	gc_inc(SYSHUB_GC_OVER_SHARE);
	return 1;
}

/* Emit the finished record; charge a drop to the key when the ring is full
 * or the key is over its fair share. */
static __always_inline void emit(struct inflight *st)
{
	struct syshub_key_counters *kc;
	__u64 flags = BPF_RB_NO_WAKEUP;
	__u64 avail;
	__u32 len = st->len;

	st->pending = 0;
	if (len > SYSHUB_REC_MAX)
		len = SYSHUB_REC_MAX;
	if (len < sizeof(struct syshub_event))
		len = sizeof(struct syshub_event);
	st->rec.ev.size = len;
	avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	/* intent: below share_from nothing is limited (one compare per record) */
	if (avail + len > share_from && over_share(st, avail, len))
		return;
	/* intent: wake the reader once, when this record crosses the threshold;
	 * past it the reader is awake or its poll timer fires, and waking it on
	 * every record would slow the traced task instead */
	if (avail < wakeup_bytes && avail + len >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&events, st->rec.buf, len, flags) != 0) {
		/* intent: the per-key counters are only touched on the rare drop */
		gc_inc(SYSHUB_GC_DROPPED);
		kc = bpf_map_lookup_elem(&counters, &st->key);
		if (kc)
			__sync_fetch_and_add(&kc->dropped, 1);
		return;
	}
	gc_inc(SYSHUB_GC_EMITTED);
}

static __always_inline int handle_enter(void *ctx, __u32 nr, const void *args_src, int from_regs,
					__u16 evflags)
{
	struct syshub_filter_key key, any;
	struct syshub_filter_cfg *cfg;
	struct syshub_capture_spec *spec;
	struct syshub_key_counters *kc;
	struct task_struct *task;
	struct syshub_event *ev;
	struct inflight *st;
	struct pid *tpid;
	__u16 keyflag = 0;
	__u64 pid_tgid, seq, uid_gid;
	__u32 level, pidns, scope, nargs = SYSHUB_NARGS;

	pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)(pid_tgid >> 32) == self_tgid)
		return 0;

	/* intent: key on the task's active pid namespace, not pid_ns_for_children;
	 * read it once per task (CO-RE reads cost a helper call each) */
	task = bpf_get_current_task_btf();
	st = bpf_task_storage_get(&inflight_calls, task, 0, 0);
	if (st && st->id_tid == (__u32)pid_tgid && st->id_pidns) {
		pidns = st->id_pidns;
	} else {
		tpid = BPF_CORE_READ(task, thread_pid);
		level = BPF_CORE_READ(tpid, level);
		pidns = BPF_CORE_READ(tpid, numbers[level & 31].ns, ns.inum);
	}
	/* intent: a process in a scope matches the scope's key first */
	scope = scope_of((__u32)(pid_tgid >> 32));
	key.nr = nr;
	cfg = 0;
	if (scope) {
		key.pid_ns = scope;
		cfg = bpf_map_lookup_elem(&filters, &key);
		if (cfg)
			keyflag = SYSHUB_EVF_SCOPE;
	}
	if (!cfg) {
		key.pid_ns = pidns;
		cfg = bpf_map_lookup_elem(&filters, &key);
	}
	if (!cfg) {
		any.pid_ns = 0;
		any.nr = nr;
		cfg = bpf_map_lookup_elem(&filters, &any);
		if (!cfg)
			return 0;
		key = any;
		keyflag = SYSHUB_EVF_ANY_NS;
	}

	/* intent: count the match and sample 1-in-N on the per-key sequence */
	gc_inc(SYSHUB_GC_MATCHED);
	kc = bpf_map_lookup_elem(&counters, &key);
	if (!kc) {
		gc_inc(SYSHUB_GC_NOKEY);
		return 0;
	}
	seq = __sync_fetch_and_add(&kc->matched, 1) + 1;
	if (cfg->sample_rate > 1 && (seq % cfg->sample_rate) != 0) {
		__sync_fetch_and_add(&kc->sampled_out, 1);
		gc_inc(SYSHUB_GC_SAMPLED_OUT);
		return 0;
	}

	if (!st)
		st = bpf_task_storage_get(&inflight_calls, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		__sync_fetch_and_add(&kc->dropped, 1);
		gc_inc(SYSHUB_GC_DROPPED);
		gc_inc(SYSHUB_GC_NOMEM);
		return 0;
	}
	if (st->pending)
		gc_inc(SYSHUB_GC_ORPHANED);

	/* intent: write every header byte, so nothing stale survives */
	ev = &st->rec.ev;
	ev->kind = SYSHUB_REC_SYSCALL;
	ev->flags = evflags | keyflag;
	ev->size = 0;
	ev->nr = nr;
	ev->tgid = pid_tgid >> 32;
	ev->tid = (__u32)pid_tgid;
	if (st->id_tid != (__u32)pid_tgid || st->id_pidns != pidns) {
		tpid = BPF_CORE_READ(task, thread_pid);
		level = BPF_CORE_READ(tpid, level);
		st->id_ns_tid = BPF_CORE_READ(tpid, numbers[level & 31].nr);
		st->id_ns_tgid =
		    BPF_CORE_READ(task, group_leader, thread_pid, numbers[level & 31].nr);
		st->id_pidns = pidns;
		st->id_tid = (__u32)pid_tgid;
	}
	ev->ns_tid = st->id_ns_tid;
	ev->ns_tgid = st->id_ns_tgid;
	uid_gid = bpf_get_current_uid_gid();
	ev->uid = (__u32)uid_gid;
	ev->gid = uid_gid >> 32;
	/* intent: these may change (setsid, setns): read them each call, as
	 * direct BTF loads rather than helper calls */
	ev->sid = task->signal->pids[PIDTYPE_SID]->numbers[0].nr;
	ev->pid_ns = pidns;
	ev->mnt_ns = task->nsproxy->mnt_ns->ns.inum;
	ev->uts_ns = task->nsproxy->uts_ns->ns.inum;
	ev->ncaptures = 0;
	ev->scope = (__u16)scope;
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->enter_ns = bpf_ktime_get_ns();
	ev->exit_ns = 0;
	ev->ret = 0;
	ev->seq = seq;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	__builtin_memset(ev->args, 0, sizeof(ev->args));
	spec = bpf_map_lookup_elem(&capture_specs, &nr);
	if (spec && spec->nargs < SYSHUB_NARGS)
		nargs = spec->nargs;
	st->capflags = spec ? spec->capflags : 0;
	if (from_regs) {
		struct pt_regs *regs = (struct pt_regs *)args_src;

		ev->args[0] = BPF_CORE_READ(regs, di);
		ev->args[1] = BPF_CORE_READ(regs, si);
		ev->args[2] = BPF_CORE_READ(regs, dx);
		ev->args[3] = BPF_CORE_READ(regs, r10);
		ev->args[4] = BPF_CORE_READ(regs, r8);
		ev->args[5] = BPF_CORE_READ(regs, r9);
		/* intent: arguments past the syscall's own count read as 0 */
		if (nargs < 6)
			ev->args[5] = 0;
		if (nargs < 5)
			ev->args[4] = 0;
		if (nargs < 4)
			ev->args[3] = 0;
		if (nargs < 3)
			ev->args[2] = 0;
		if (nargs < 2)
			ev->args[1] = 0;
		if (nargs < 1)
			ev->args[0] = 0;
	} else if (nargs) {
		/* intent: only the arguments the tracepoint record really has */
		bpf_probe_read_kernel(ev->args, (nargs & 7) * 8, args_src);
	}

	st->key = key;
	st->nr = nr;
	st->len = sizeof(struct syshub_event);
	st->str_max = cfg->str_max ? cfg->str_max : SYSHUB_STR_DEFAULT;
	st->argv_max = cfg->argv_max;
	st->buf_max = cfg->buf_max;
	st->faulted = 0;
	st->pending = 1;

	/* intent: most calls capture nothing: skip the capture pass entirely */
	if (st->capflags & SYSHUB_CAPS_ENTRY)
		capture_args(nr, 0);

	/* intent: calls that never return are emitted now */
	if (nr == nr_exit || nr == nr_exit_group) {
		ev->flags |= SYSHUB_EVF_NO_EXIT;
		emit(st);
	}
	return 0;
}

static __always_inline int handle_exit(__u32 nr, __s64 ret, __u16 evflags)
{
	struct task_struct *task;
	struct inflight *st;

	task = bpf_get_current_task_btf();
	st = bpf_task_storage_get(&inflight_calls, task, 0, 0);
	if (!st || !st->pending)
		return 0;
	if (st->nr != nr) {
		/* intent: an entry whose exit hook went away is counted, not emitted */
		st->pending = 0;
		gc_inc(SYSHUB_GC_ORPHANED);
		return 0;
	}
	st->rec.ev.ret = ret;
	st->rec.ev.exit_ns = bpf_ktime_get_ns();
	st->rec.ev.flags |= evflags;
	/* intent: with SIGKILL pending the task dies before user space sees ret */
	if (task->pending.signal.sig[0] & (1ULL << (9 - 1))) /* SIGKILL */
		st->rec.ev.flags |= SYSHUB_EVF_KILLED;
	if ((st->capflags & SYSHUB_CAPS_EXIT) || st->faulted)
		capture_args(nr, 1);
	emit(st);
	return 0;
}

/* Is `nr` traced through the raw hooks (then its tracepoint hooks, being
 * detached in the background, stay silent)? */
static __always_inline int raw_hooked(__u32 nr)
{
	__u32 *on = bpf_map_lookup_elem(&raw_syscalls, &nr);

	return on && *on;
}

SEC("tracepoint/syscalls/sys_enter")
int syshub_sys_enter(struct syscall_tp_enter *ctx)
{
	if (raw_hooked((__u32)ctx->nr))
		return 0;
	return handle_enter(ctx, (__u32)ctx->nr, (const __u8 *)ctx + 16, 0, 0);
}

SEC("tracepoint/syscalls/sys_exit")
int syshub_sys_exit(struct syscall_tp_exit *ctx)
{
	if (raw_hooked((__u32)ctx->nr))
		return 0;
	return handle_exit((__u32)ctx->nr, ctx->ret, 0);
}

SEC("raw_tracepoint/sys_enter")
int syshub_raw_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 nr = (__u32)ctx->args[1];

	/* intent: only syscalls not hooked through their own tracepoint */
	if (!raw_hooked(nr))
		return 0;
	return handle_enter(ctx, nr, (const void *)ctx->args[0], 1, SYSHUB_EVF_RAW_HOOK);
}

SEC("raw_tracepoint/sys_exit")
int syshub_raw_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__u32 nr = (__u32)BPF_CORE_READ(regs, orig_ax);

	if (!raw_hooked(nr))
		return 0;
	return handle_exit(nr, (__s64)ctx->args[1], SYSHUB_EVF_RAW_HOOK);
}
