// SPDX-License-Identifier: GPL-2.0-only
/*
 * syshub kernel probe: per-(pid namespace, syscall) filtered syscall records.
 *
 * One generic exit program, and one generic entry program where needed, are
 * attached on demand to the per-syscall tracepoints (syscalls/sys_exit_<name>,
 * sys_enter_<name>) of the syscalls some filter asks for, so other syscalls
 * stay cheap. Syscalls without such tracepoints, or past a few traced
 * syscalls (detaching many tracepoints is slow), go through the raw
 * sys_enter/sys_exit hooks, only while one of them is traced. Needs Linux
 * >= 5.17 (bpf_loop, task storage in tracing programs, ring buffer).
 *
 * Most calls are recorded at exit only: the arguments are still in the
 * task's saved registers, input strings and buffers still in its memory, and
 * one hook instead of two halves what tracing a call costs. The entry hook is
 * attached for the syscalls that need it (exit/exit_group never return;
 * exec replaces the memory and registers; a forked child returns too;
 * in/out structs change during the call) and for filters that want
 * durations. Then a call is built in per-task storage at entry (header,
 * arguments, entry-time captures) and emitted at exit, so one record carries
 * the whole call; exit/exit_group are emitted at entry.
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

#include "stage.h"

/* Drop a record of `key` that is over its share of the ring (syshub_abi.h):
 * counted in the key's dropped and over_share. */
static __always_inline int over_share(const struct syshub_filter_key *key, __u32 slot, __u64 avail,
				      __u32 len)
{
	struct syshub_key_counters *kc;
	__u64 *rd, read = 0, done, pending, free, room;

	kc = bpf_map_lookup_elem(&counters, &slot);
	if (!kc)
		return 0;
	rd = bpf_map_lookup_elem(&key_read, key);
	if (rd)
		read = *rd;
	/* intent: records of the key written (this one included) or still in a
	 * call, less those the reader took out of the ring */
	done = kc->sampled_out + kc->dropped + read;
	pending = kc->matched > done ? kc->matched - done : 0;
	free = ring_size > avail ? ring_size - avail : 0;
	room = (len + 8 + 7) & ~7ULL; /* ring record header, 8-byte aligned */
	if (pending * room <= free)
		return 0;
	__sync_fetch_and_add(&kc->dropped, 1);
	__sync_fetch_and_add(&kc->over_share, 1);
	gc_inc(SYSHUB_GC_DROPPED);
	gc_inc(SYSHUB_GC_OVER_SHARE);
	return 1;
}

/* A record could not be written (ring full): counted at its key's slot. */
static __always_inline void count_drop(__u32 slot)
{
	struct syshub_key_counters *kc;

	gc_inc(SYSHUB_GC_DROPPED);
	kc = bpf_map_lookup_elem(&counters, &slot);
	if (kc)
		__sync_fetch_and_add(&kc->dropped, 1);
}

/* Ring space check before writing `len` bytes of `key` with `avail` bytes
 * pending: the wake-up flag to write with, or -1 when the key is over its
 * fair share (counted). */
static __always_inline __s64 ring_admit(const struct syshub_filter_key *key, __u32 slot, __u32 len,
					__u64 avail)
{
	/* intent: below share_from nothing is limited (one compare per record) */
	if (avail + len > share_from && over_share(key, slot, avail, len))
		return -1;
	/* intent: wake the reader once, when this record crosses the threshold;
	 * past it the reader is awake or its poll timer fires, and waking it on
	 * every record would slow the traced task instead */
	if (avail < wakeup_bytes && avail + len >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* The fair share check of a record about to be staged, against the pending
 * bytes known at the last hand-over plus those staged since: 1 when dropped. */
static __always_inline int stage_over_share(const struct syshub_filter_key *key, __u32 slot,
					    const struct stage *sg)
{
	__u64 avail = sg->avail + sg->len;

	return avail + EV_BYTES > share_from && over_share(key, slot, avail, EV_BYTES);
}

/* Emit the record built in task storage: staged when it is one bare header,
 * else written to the ring after what this CPU staged. A drop is charged to
 * the key when the ring is full or the key is over its fair share. */
static __always_inline void emit(struct inflight *st)
{
	struct syshub_event *slot;
	struct stage *sg = this_stage();
	__u32 len = st->len;
	__s64 flags;

	st->pending = 0;
	if (len > SYSHUB_REC_MAX)
		len = SYSHUB_REC_MAX;
	if (len < sizeof(struct syshub_event))
		len = sizeof(struct syshub_event);
	st->rec.ev.size = len;
	if (sg && len == EV_BYTES) {
		if (stage_over_share(&st->key, st->slot, sg))
			return;
		slot = stage_begin(sg);
		if (slot) {
			*slot = st->rec.ev;
			stage_commit(sg);
			return;
		}
	} else if (sg && sg->len && !sg->busy) {
		/* intent: the records staged before this one go first */
		sg->busy = 1;
		stage_flush(sg);
		sg->busy = 0;
	}
	flags = ring_admit(&st->key, st->slot, len, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA));
	if (flags < 0)
		return;
	if (bpf_ringbuf_output(&events, st->rec.buf, len, flags) != 0) {
		count_drop(st->slot);
		return;
	}
	gc_inc(SYSHUB_GC_EMITTED);
}

/* The task's active pid namespace (not pid_ns_for_children): CO-RE reads,
 * each a helper call, so callers cache it per task. */
static __always_inline __u32 task_pidns(struct task_struct *task)
{
	struct pid *tpid = BPF_CORE_READ(task, thread_pid);
	__u32 level = BPF_CORE_READ(tpid, level);

	return BPF_CORE_READ(tpid, numbers[level & 31].ns, ns.inum);
}

/* Cache the task's ids as seen in its pid namespace (once per task, again
 * after an exec by a non-leader thread changes its host tid). */
static __always_inline void cache_identity(struct inflight *st, struct task_struct *task, __u32 tid,
					   __u32 pidns)
{
	struct pid *tpid;
	__u32 level;

	if (st->id_tid == tid && st->id_pidns == pidns)
		return;
	tpid = BPF_CORE_READ(task, thread_pid);
	level = BPF_CORE_READ(tpid, level);
	st->id_ns_tid = BPF_CORE_READ(tpid, numbers[level & 31].nr);
	st->id_ns_tgid = BPF_CORE_READ(task, group_leader, thread_pid, numbers[level & 31].nr);
	st->id_pidns = pidns;
	st->id_tid = tid;
}

/*
 * The filter a call of `nr` by this task matches: its process scope's key
 * first, then its pid namespace's, then the every-namespace key. Fills `key`,
 * the record flag saying which matched, and the task's scope.
 */
static __always_inline struct syshub_filter_cfg *match_key(__u32 nr, __u32 tgid, __u32 pidns,
							   struct syshub_filter_key *key,
							   __u16 *keyflag, __u32 *scope)
{
	struct syshub_filter_cfg *cfg = 0;

	*keyflag = 0;
	*scope = scope_of(tgid);
	key->nr = nr;
	if (*scope) {
		key->pid_ns = *scope;
		cfg = bpf_map_lookup_elem(&filters, key);
		if (cfg) {
			*keyflag = SYSHUB_EVF_SCOPE;
			return cfg;
		}
	}
	key->pid_ns = pidns;
	cfg = bpf_map_lookup_elem(&filters, key);
	if (cfg)
		return cfg;
	key->pid_ns = 0;
	cfg = bpf_map_lookup_elem(&filters, key);
	if (cfg)
		*keyflag = SYSHUB_EVF_ANY_NS;
	return cfg;
}

/*
 * match_key through the task's cache: the filter's settings copied to `cfg`;
 * 0 when no filter matches. `st` may be 0 (a task never matched yet).
 */
static __always_inline int match_cached(struct inflight *st, __u32 nr, __u32 tgid, __u32 pidns,
					struct syshub_filter_key *key,
					struct syshub_filter_cfg *cfg, __u16 *keyflag, __u32 *scope)
{
	struct syshub_filter_cfg *found;
	__u32 zero = 0;
	__u64 *gen = bpf_map_lookup_elem(&match_gen, &zero);
	__u64 g = gen ? *gen : 0;

	if (st && st->c_gen == g && st->c_nr == nr && st->c_tgid == tgid && st->c_pidns == pidns) {
		*key = st->c_key;
		*cfg = st->c_cfg;
		*keyflag = st->c_keyflag;
		*scope = st->c_scope;
		return 1;
	}
	found = match_key(nr, tgid, pidns, key, keyflag, scope);
	if (!found)
		return 0;
	*cfg = *found;
	if (st) {
		st->c_gen = g;
		st->c_nr = nr;
		st->c_tgid = tgid;
		st->c_pidns = pidns;
		st->c_key = *key;
		st->c_cfg = *cfg;
		st->c_keyflag = *keyflag;
		st->c_scope = *scope;
	}
	return 1;
}

/* Count a match and sample 1-in-N on the per-key sequence: the sequence
 * number of a call to record, or 0 (sampled out or no counters: counted). */
static __always_inline __u64 count_match(const struct syshub_filter_cfg *cfg)
{
	struct syshub_key_counters *kc;
	__u32 slot = cfg->slot;
	__u64 seq;

	gc_inc(SYSHUB_GC_MATCHED);
	/* intent: an array slot named by the filter, not a second hash lookup */
	kc = bpf_map_lookup_elem(&counters, &slot);
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
	return seq;
}

/* A matched call without per-task memory: counted as a drop. */
static __always_inline void drop_nomem(__u32 slot)
{
	struct syshub_key_counters *kc = bpf_map_lookup_elem(&counters, &slot);

	if (kc)
		__sync_fetch_and_add(&kc->dropped, 1);
	gc_inc(SYSHUB_GC_DROPPED);
	gc_inc(SYSHUB_GC_NOMEM);
}

/* Every header field but the timestamps, ret and the arguments. */
static __always_inline void fill_header(struct syshub_event *ev, struct task_struct *task,
					const struct inflight *st, __u32 nr, __u64 pid_tgid,
					__u32 pidns, __u32 scope, __u16 flags, __u64 seq)
{
	const struct cred *cred = task->cred;

	ev->kind = SYSHUB_REC_SYSCALL;
	ev->flags = flags;
	ev->size = sizeof(struct syshub_event);
	ev->nr = nr;
	ev->tgid = pid_tgid >> 32;
	ev->tid = (__u32)pid_tgid;
	ev->ns_tid = st->id_ns_tid;
	ev->ns_tgid = st->id_ns_tgid;
	/* intent: these may change (setuid, setsid, setns, a cgroup move, an
	 * exec): read them each call, as direct BTF loads rather than helper
	 * calls (bpf_get_current_uid_gid, _cgroup_id and _comm read the same) */
	ev->uid = cred->uid.val;
	ev->gid = cred->gid.val;
	ev->sid = task->signal->pids[PIDTYPE_SID]->numbers[0].nr;
	ev->pid_ns = pidns;
	ev->mnt_ns = task->nsproxy->mnt_ns->ns.inum;
	ev->uts_ns = task->nsproxy->uts_ns->ns.inum;
	ev->ncaptures = 0;
	ev->scope = (__u16)scope;
	ev->cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	ev->seq = seq;
	*(__u64 *)&ev->comm[0] = *(const __u64 *)&task->comm[0];
	*(__u64 *)&ev->comm[8] = *(const __u64 *)&task->comm[8];
}

/* Arguments from the task's saved registers, past the syscall's own count
 * read as 0. */
static __always_inline void args_from_regs(struct syshub_event *ev, struct task_struct *task,
					   __u32 nargs)
{
	struct pt_regs *regs;

	/* intent: no helper call for calls without arguments */
	if (!nargs) {
		__builtin_memset(ev->args, 0, sizeof(ev->args));
		return;
	}
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	ev->args[0] = regs->di;
	ev->args[1] = nargs > 1 ? regs->si : 0;
	ev->args[2] = nargs > 2 ? regs->dx : 0;
	ev->args[3] = nargs > 3 ? regs->r10 : 0;
	ev->args[4] = nargs > 4 ? regs->r8 : 0;
	ev->args[5] = nargs > 5 ? regs->r9 : 0;
}

static __always_inline __u32 spec_nargs(struct syshub_capture_spec *spec)
{
	return spec && spec->nargs < SYSHUB_NARGS ? spec->nargs : SYSHUB_NARGS;
}

/* With SIGKILL pending the task dies before user space sees the return. */
static __always_inline int sigkill_pending(struct task_struct *task)
{
	return (task->pending.signal.sig[0] & (1ULL << (9 - 1))) != 0; /* SIGKILL */
}

/* The call's settings in task storage, before its captures are taken. */
static __always_inline void begin_call(struct inflight *st, const struct syshub_filter_key *key,
				       __u32 nr, const struct syshub_filter_cfg *cfg)
{
	st->key = *key;
	st->slot = cfg->slot;
	st->nr = nr;
	st->skip = 0;
	st->len = sizeof(struct syshub_event);
	st->str_max = cfg->str_max ? cfg->str_max : SYSHUB_STR_DEFAULT;
	st->argv_max = cfg->argv_max;
	st->buf_max = cfg->buf_max;
	st->faulted = 0;
}

/* A whole record of a call seen at exit only: no entry time, the arguments
 * from the saved registers. */
static __always_inline void fill_exit_only(struct syshub_event *ev, struct task_struct *task,
					   const struct inflight *st, __u32 nr, __u64 pid_tgid,
					   __u32 pidns, __u32 scope, __u16 flags, __u64 seq,
					   __u64 now, __s64 ret, __u32 nargs)
{
	fill_header(ev, task, st, nr, pid_tgid, pidns, scope, flags, seq);
	ev->enter_ns = 0;
	ev->exit_ns = now;
	ev->ret = ret;
	args_from_regs(ev, task, nargs);
}

static __always_inline int handle_enter(__u32 nr, const void *args_src, int from_regs,
					__u16 evflags)
{
	struct syshub_filter_key key;
	struct syshub_filter_cfg cfg;
	struct syshub_capture_spec *spec;
	struct task_struct *task;
	struct syshub_event *ev;
	struct inflight *st;
	__u16 keyflag;
	__u64 pid_tgid, seq;
	__u32 pidns, scope, nargs;

	pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)(pid_tgid >> 32) == self_tgid)
		return 0;
	task = bpf_get_current_task_btf();
	st = bpf_task_storage_get(&inflight_calls, task, 0, 0);
	if (st && st->id_tid == (__u32)pid_tgid && st->id_pidns)
		pidns = st->id_pidns;
	else
		pidns = task_pidns(task);
	if (!match_cached(st, nr, (__u32)(pid_tgid >> 32), pidns, &key, &cfg, &keyflag, &scope))
		return 0;
	seq = count_match(&cfg);
	if (!st)
		st = bpf_task_storage_get(&inflight_calls, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!seq) {
		/* intent: the exit hook must not record a call sampled out here */
		if (st) {
			st->pending = 0;
			st->skip = nr + 1;
		}
		return 0;
	}
	if (!st) {
		drop_nomem(cfg.slot);
		return 0;
	}
	if (st->pending)
		gc_inc(SYSHUB_GC_ORPHANED);
	cache_identity(st, task, (__u32)pid_tgid, pidns);

	/* intent: write every header byte, so nothing stale survives */
	ev = &st->rec.ev;
	fill_header(ev, task, st, nr, pid_tgid, pidns, scope, evflags | keyflag, seq);
	ev->enter_ns = bpf_ktime_get_ns();
	ev->exit_ns = 0;
	ev->ret = 0;
	__builtin_memset(ev->args, 0, sizeof(ev->args));
	spec = bpf_map_lookup_elem(&capture_specs, &nr);
	nargs = spec_nargs(spec);
	st->capflags = spec ? spec->capflags : 0;
	if (from_regs)
		args_from_regs(ev, task, nargs);
	else if (nargs)
		/* intent: only the arguments the tracepoint record really has */
		bpf_probe_read_kernel(ev->args, (nargs & 7) * 8, args_src);

	begin_call(st, &key, nr, &cfg);
	st->pending = 1;

	/* intent: most calls capture nothing: skip the capture pass entirely */
	if (st->capflags & SYSHUB_CAPS_ENTRY)
		capture_args(nr, CAPTURE_ENTRY);

	/* intent: calls that never return are emitted now */
	if (nr == nr_exit || nr == nr_exit_group) {
		ev->flags |= SYSHUB_EVF_NO_EXIT;
		emit(st);
	}
	return 0;
}

/*
 * A call whose entry hook is not attached (user space attaches it only for
 * syscalls that need it, or for filters that want durations): the whole
 * record is made now, from the registers the task entered the call with.
 * A record without captures is written straight into the ring.
 */
static __always_inline int record_at_exit(struct task_struct *task, struct inflight *st, __u32 nr,
					  __s64 ret, __u16 evflags)
{
	struct syshub_filter_key key;
	struct syshub_filter_cfg cfg;
	struct syshub_capture_spec *spec;
	struct syshub_event *ev;
	struct stage *sg;
	__u64 pid_tgid, seq, now;
	__u32 pidns, scope, nargs;
	__u16 keyflag;
	__s64 wake;

	pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)(pid_tgid >> 32) == self_tgid)
		return 0;
	if (st && st->id_tid == (__u32)pid_tgid && st->id_pidns)
		pidns = st->id_pidns;
	else
		pidns = task_pidns(task);
	if (!match_cached(st, nr, (__u32)(pid_tgid >> 32), pidns, &key, &cfg, &keyflag, &scope))
		return 0;
	seq = count_match(&cfg);
	if (!seq)
		return 0;
	if (!st)
		st = bpf_task_storage_get(&inflight_calls, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		drop_nomem(cfg.slot);
		return 0;
	}
	cache_identity(st, task, (__u32)pid_tgid, pidns);
	evflags |= keyflag | SYSHUB_EVF_EXIT_ONLY;
	if (sigkill_pending(task))
		evflags |= SYSHUB_EVF_KILLED;
	now = bpf_ktime_get_ns();
	spec = bpf_map_lookup_elem(&capture_specs, &nr);
	nargs = spec_nargs(spec);

	if (!spec || !spec->capflags) {
		sg = this_stage();
		if (sg) {
			if (stage_over_share(&key, cfg.slot, sg))
				return 0;
			ev = stage_begin(sg);
			if (ev) {
				fill_exit_only(ev, task, st, nr, pid_tgid, pidns, scope, evflags,
					       seq, now, ret, nargs);
				stage_commit(sg);
				return 0;
			}
		}
		/* intent: staging busy (never from a syscall in practice): direct */
		wake = ring_admit(&key, cfg.slot, EV_BYTES,
				  bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA));
		if (wake < 0)
			return 0;
		ev = bpf_ringbuf_reserve(&events, sizeof(struct syshub_event), 0);
		if (!ev) {
			count_drop(cfg.slot);
			return 0;
		}
		fill_exit_only(ev, task, st, nr, pid_tgid, pidns, scope, evflags, seq, now, ret,
			       nargs);
		bpf_ringbuf_submit(ev, wake);
		gc_inc(SYSHUB_GC_EMITTED);
		return 0;
	}

	fill_exit_only(&st->rec.ev, task, st, nr, pid_tgid, pidns, scope, evflags, seq, now, ret,
		       nargs);
	st->capflags = spec->capflags;
	begin_call(st, &key, nr, &cfg);
	capture_args(nr, CAPTURE_BOTH);
	emit(st);
	return 0;
}

static __always_inline int handle_exit(__u32 nr, __s64 ret, __u32 mode, __u16 evflags)
{
	struct task_struct *task;
	struct inflight *st;

	task = bpf_get_current_task_btf();
	st = bpf_task_storage_get(&inflight_calls, task, 0, 0);
	if (!st || !st->pending) {
		/* intent: the entry hook saw this call and sampled it out */
		if (st && st->skip == nr + 1) {
			st->skip = 0;
			return 0;
		}
		/* intent: with its entry hook on, a call not pending here was not
		 * matched at entry (or entered before the hook was attached; a
		 * forked child returning from clone is one) */
		if (mode & SYSHUB_HOOK_ENTRY)
			return 0;
		return record_at_exit(task, st, nr, ret, evflags);
	}
	if (st->nr != nr) {
		/* intent: an entry whose exit hook went away is counted, not emitted */
		st->pending = 0;
		gc_inc(SYSHUB_GC_ORPHANED);
		return 0;
	}
	st->rec.ev.ret = ret;
	st->rec.ev.exit_ns = bpf_ktime_get_ns();
	st->rec.ev.flags |= evflags;
	if (sigkill_pending(task))
		st->rec.ev.flags |= SYSHUB_EVF_KILLED;
	if ((st->capflags & SYSHUB_CAPS_EXIT) || st->faulted)
		capture_args(nr, CAPTURE_EXIT);
	emit(st);
	return 0;
}

/* How `nr` is hooked (SYSHUB_HOOK_*). */
static __always_inline __u32 hook_mode(__u32 nr)
{
	__u32 *v = bpf_map_lookup_elem(&hook_modes, &nr);

	return v ? *v : 0;
}

SEC("tracepoint/syscalls/sys_enter")
int syshub_sys_enter(struct syscall_tp_enter *ctx)
{
	/* intent: a syscall moved to the raw hooks is seen there only */
	if (hook_mode((__u32)ctx->nr) & SYSHUB_HOOK_RAW)
		return 0;
	return handle_enter((__u32)ctx->nr, (const __u8 *)ctx + 16, 0, 0);
}

SEC("tracepoint/syscalls/sys_exit")
int syshub_sys_exit(struct syscall_tp_exit *ctx)
{
	__u32 mode = hook_mode((__u32)ctx->nr);

	if (mode & SYSHUB_HOOK_RAW)
		return 0;
	return handle_exit((__u32)ctx->nr, ctx->ret, mode, 0);
}

SEC("raw_tracepoint/sys_enter")
int syshub_raw_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 nr = (__u32)ctx->args[1];

	/* intent: only syscalls not hooked through their own tracepoint, and
	 * only those whose entry is needed */
	if (hook_mode(nr) != (SYSHUB_HOOK_RAW | SYSHUB_HOOK_ENTRY))
		return 0;
	return handle_enter(nr, (const void *)ctx->args[0], 1, SYSHUB_EVF_RAW_HOOK);
}

SEC("raw_tracepoint/sys_exit")
int syshub_raw_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__u32 nr = (__u32)BPF_CORE_READ(regs, orig_ax);
	__u32 mode = hook_mode(nr);

	if (!(mode & SYSHUB_HOOK_RAW))
		return 0;
	return handle_exit(nr, (__s64)ctx->args[1], mode, SYSHUB_EVF_RAW_HOOK);
}
