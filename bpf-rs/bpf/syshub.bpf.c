// SPDX-License-Identifier: GPL-2.0-only
/*
 * syshub kernel probe: per-(pid namespace, syscall) filtered syscall records.
 *
 * One generic entry and one generic exit program are attached on demand to
 * the per-syscall tracepoints (syscalls/sys_enter_<name>, sys_exit_<name>) of
 * the syscalls some filter asks for, so other syscalls stay cheap. Syscalls
 * without such tracepoints go through the raw sys_enter/sys_exit hooks, only
 * while one of them is traced. Needs Linux >= 5.17 (bpf_loop, task storage
 * in tracing programs, ring buffer).
 *
 * A call is built in per-task storage at entry (header, arguments, entry-time
 * captures) and emitted at exit into the one ring buffer, so one record
 * carries the whole call. exit/exit_group never return: emitted at entry.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "kernel.h"
#include "syshub_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* Runtime knobs, set by the loader before load. */
const volatile __u32 self_tgid = 0;	    /* the tracer: never traced */
const volatile __u64 wakeup_bytes = 262144; /* wake the reader past this much */
const volatile __u32 nr_exit = 60;
const volatile __u32 nr_exit_group = 231;

/* Keep every ABI struct in the object's BTF, for the layout test. */
const volatile struct syshub_event abi_event_type = {};
const volatile struct syshub_capture abi_capture_type = {};

/* Room after SYSHUB_REC_MAX so a capture that starts below it stays in bounds. */
#define REC_BUF_SIZE (SYSHUB_REC_MAX + SYSHUB_CAP_MAX + 64)
#define CAP_HDR	     ((__u32)sizeof(struct syshub_capture))

struct inflight {
	__u32 pending; /* an entry waits for its exit */
	__u32 nr;
	struct syshub_filter_key key; /* counters this call charges */
	__u32 len;		      /* bytes of rec in use */
	__u32 str_max;
	__u32 argv_max;
	__u32 buf_max;
	__u32 faulted; /* slots whose entry string was not resident: retried at exit */
	__u32 capflags;
	/* Identity cached per task: the active pid namespace of a task never
	 * changes; host_tid detects the rare exec by a non-leader thread. */
	__u32 id_tid;
	__u32 id_pidns;
	__u32 id_ns_tid;
	__u32 id_ns_tgid;
	union {
		struct syshub_event ev;
		__u8 buf[REC_BUF_SIZE];
	} rec;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024); /* overridden at load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct syshub_filter_key);
	__type(value, struct syshub_filter_cfg);
} filters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct syshub_filter_key);
	__type(value, struct syshub_key_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYSHUB_MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, struct syshub_capture_spec);
} capture_specs SEC(".maps");

/* Syscalls traced through the raw hooks (no per-syscall tracepoint): 1 = on. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYSHUB_MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, __u32);
} raw_syscalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SYSHUB_GC_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} global_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} inflight_calls SEC(".maps");

static __always_inline void gc_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&global_counters, &idx);

	if (v)
		*v += 1;
}

/* Zero the pad bytes after `len` data bytes at `data` up to the next 8 bytes. */
static __always_inline void zero_pad(__u8 *data, __u32 len)
{
	__u32 pad = (8 - (len & 7)) & 7;

	/* intent: never leak stale bytes of an earlier record through padding */
	if (pad) {
		__u64 *w = (__u64 *)(data + (len & ~7u));

		*w &= ~0ULL >> (pad * 8);
	}
}

static __always_inline __u32 pad8(__u32 n)
{
	return (n + 7) & ~7u;
}

/*
 * Reserve a capture header at st->len. Returns the data offset, or 0 when the
 * record is full (and marks it truncated).
 */
static __always_inline __u32 cap_begin(struct inflight *st, __u32 need)
{
	__u32 off = st->len;

	if (off + CAP_HDR + need > SYSHUB_REC_MAX || off > SYSHUB_REC_MAX - CAP_HDR) {
		st->rec.ev.flags |= SYSHUB_EVF_TRUNCATED;
		return 0;
	}
	return off;
}

static __always_inline void cap_commit(struct inflight *st, __u32 off, __u8 slot, __u8 kind,
				       __u16 flags, __u32 len, __u32 orig_len, __u32 index)
{
	struct syshub_capture *c;

	off &= SYSHUB_REC_MAX - 1;
	c = (struct syshub_capture *)&st->rec.buf[off];
	c->slot = slot;
	c->kind = kind;
	c->flags = flags;
	c->len = len;
	c->orig_len = orig_len;
	c->index = index;
	st->len = off + CAP_HDR + pad8(len);
	st->rec.ev.ncaptures += 1;
}

/* Capture a NUL-terminated user string of at most `max` bytes (without NUL). */
static __always_inline void put_str(struct inflight *st, __u8 slot, __u8 kind, __u32 index,
				    const void *uptr, __u32 max, __u16 flags)
{
	__u32 off, data, len = 0;
	long n;

	if (max > SYSHUB_CAP_MAX)
		max = SYSHUB_CAP_MAX;
	/* intent: fit in the record, leaving the string shorter if needed */
	off = st->len;
	if (off > SYSHUB_REC_MAX - CAP_HDR - 8) {
		st->rec.ev.flags |= SYSHUB_EVF_TRUNCATED;
		return;
	}
	if (max > SYSHUB_REC_MAX - off - CAP_HDR - 8)
		max = SYSHUB_REC_MAX - off - CAP_HDR - 8;
	off &= SYSHUB_REC_MAX - 1;
	data = off + CAP_HDR;
	if (!uptr) {
		flags |= SYSHUB_CAPF_FAULT;
		cap_commit(st, off, slot, kind, flags, 0, SYSHUB_LEN_UNKNOWN, index);
		return;
	}
	n = bpf_probe_read_user_str(&st->rec.buf[data], (max & (SYSHUB_CAP_MAX * 2 - 1)) + 1, uptr);
	if (n < 0) {
		flags |= SYSHUB_CAPF_FAULT;
		if (!(flags & SYSHUB_CAPF_EXIT) && kind == SYSHUB_CAP_STR)
			st->faulted |= 1u << (slot & 7);
	} else if (n > 0) {
		len = n - 1;
		/* intent: a string that filled the buffer may go on: mark it */
		if (len >= max) {
			char next = 0;

			if (bpf_probe_read_user(&next, 1, (const char *)uptr + len) == 0 && next)
				flags |= SYSHUB_CAPF_TRUNCATED;
		}
	}
	len &= SYSHUB_CAP_MAX * 2 - 1;
	zero_pad(&st->rec.buf[data], len);
	cap_commit(st, off, slot, kind, flags, len,
		   (flags & (SYSHUB_CAPF_TRUNCATED | SYSHUB_CAPF_FAULT)) ? SYSHUB_LEN_UNKNOWN : len,
		   index);
}

/* Capture `want` user bytes (original length `orig`) at `uptr`. */
static __always_inline void put_bytes(struct inflight *st, __u8 slot, __u8 kind, const void *uptr,
				      __u64 want, __u64 orig, __u16 flags)
{
	__u32 off, data, len;

	if (want > SYSHUB_CAP_MAX)
		want = SYSHUB_CAP_MAX;
	off = st->len;
	if (off > SYSHUB_REC_MAX - CAP_HDR - 8) {
		st->rec.ev.flags |= SYSHUB_EVF_TRUNCATED;
		return;
	}
	if (want > SYSHUB_REC_MAX - off - CAP_HDR - 8)
		want = SYSHUB_REC_MAX - off - CAP_HDR - 8;
	off &= SYSHUB_REC_MAX - 1;
	data = off + CAP_HDR;
	len = want & (SYSHUB_CAP_MAX * 2 - 1);
	if (orig > len)
		flags |= SYSHUB_CAPF_TRUNCATED;
	if (!uptr) {
		flags |= SYSHUB_CAPF_FAULT;
		len = 0;
	} else if (len && bpf_probe_read_user(&st->rec.buf[data], len, uptr) != 0) {
		flags |= SYSHUB_CAPF_FAULT;
		len = 0;
	}
	zero_pad(&st->rec.buf[data], len);
	cap_commit(st, off, slot, kind, flags, len,
		   orig > 0xfffffffeULL ? 0xfffffffeU : (__u32)orig, 0);
}

struct strv_ctx {
	const char *const *argv;
	__u32 str_max;
	__u8 slot;
	__u8 done;
	__u32 seen;
};

static long strv_step(__u32 i, void *vctx)
{
	struct strv_ctx *ctx = vctx;
	struct inflight *st;
	const char *elem = 0;

	st = bpf_task_storage_get(&inflight_calls, bpf_get_current_task_btf(), 0, 0);
	if (!st)
		return 1;
	if (bpf_probe_read_user(&elem, sizeof(elem), &ctx->argv[i]) != 0 || !elem) {
		ctx->done = 1;
		return 1;
	}
	put_str(st, ctx->slot, SYSHUB_CAP_STRV, i, elem, ctx->str_max, 0);
	ctx->seen = i + 1;
	return 0;
}

/* Capture a NULL-terminated array of strings (execve argv/envp). */
static __always_inline void put_strv(struct inflight *st, __u8 slot, const void *uptr)
{
	struct strv_ctx ctx = {
	    .argv = uptr,
	    .str_max = st->str_max,
	    .slot = slot,
	};
	__u32 max = st->argv_max;
	__u16 flags = 0;
	const char *more = 0;
	__u32 off;

	if (max > SYSHUB_ARGV_LIMIT)
		max = SYSHUB_ARGV_LIMIT;
	if (uptr)
		bpf_loop(max, strv_step, &ctx, 0);
	/* intent: tell a complete array from a cut one */
	if (!uptr) {
		flags |= SYSHUB_CAPF_FAULT;
	} else if (!ctx.done) {
		if (bpf_probe_read_user(&more, sizeof(more), &ctx.argv[ctx.seen & 0xffff]) == 0 &&
		    more)
			flags |= SYSHUB_CAPF_TRUNCATED;
	}
	off = cap_begin(st, 0);
	if (!off)
		return;
	cap_commit(st, off, slot, SYSHUB_CAP_STRV_END, flags, 0,
		   (flags & SYSHUB_CAPF_TRUNCATED) ? SYSHUB_LEN_UNKNOWN : ctx.seen, ctx.seen);
}

struct slots_ctx {
	__u32 nr;
	__u8 at_exit;
};

static long slot_step(__u32 i, void *vctx)
{
	struct slots_ctx *ctx = vctx;
	struct syshub_capture_spec *spec;
	struct syshub_arg_spec a;
	struct inflight *st;
	__u64 arg, lenv = 0;
	__u32 nr = ctx->nr;
	__s64 ret;

	if (i >= SYSHUB_NARGS)
		return 1;
	/* for the verifier: a bound it can see (slots[7] would lie inside the value) */
	barrier_var(i);
	i &= 7;
	spec = bpf_map_lookup_elem(&capture_specs, &nr);
	if (!spec)
		return 1;
	a = spec->slots[i];
	if (a.kind == SYSHUB_SPEC_NONE)
		return 0;
	st = bpf_task_storage_get(&inflight_calls, bpf_get_current_task_btf(), 0, 0);
	if (!st)
		return 1;
	/* intent: a path not yet paged in at entry is read again once the call ran */
	if (ctx->at_exit && a.kind == SYSHUB_SPEC_STR && (st->faulted & (1u << i))) {
		put_str(st, i, SYSHUB_CAP_STR, 0, (const void *)st->rec.ev.args[i], st->str_max,
			SYSHUB_CAPF_EXIT);
		return 0;
	}
	if (ctx->at_exit != (a.kind >= SYSHUB_SPEC_FIRST_EXIT))
		return 0;
	arg = st->rec.ev.args[i];
	if (a.len_arg < SYSHUB_NARGS)
		lenv = st->rec.ev.args[a.len_arg & 7];
	ret = st->rec.ev.ret;

	switch (a.kind) {
	case SYSHUB_SPEC_STR:
		put_str(st, i, SYSHUB_CAP_STR, 0, (const void *)arg, st->str_max, 0);
		break;
	case SYSHUB_SPEC_STRV:
		put_strv(st, i, (const void *)arg);
		break;
	case SYSHUB_SPEC_BUF_IN:
		put_bytes(st, i, SYSHUB_CAP_BUF, (const void *)arg,
			  lenv < st->buf_max ? lenv : st->buf_max, lenv, 0);
		break;
	case SYSHUB_SPEC_SOCKADDR_IN:
		put_bytes(st, i, SYSHUB_CAP_SOCKADDR, (const void *)arg,
			  lenv < SYSHUB_SOCKADDR_MAX ? lenv : SYSHUB_SOCKADDR_MAX, lenv, 0);
		break;
	case SYSHUB_SPEC_STRUCT_IN:
		put_bytes(st, i, SYSHUB_CAP_STRUCT, (const void *)arg, a.size, a.size, 0);
		break;
	case SYSHUB_SPEC_STRUCT_IN_LEN:
		put_bytes(st, i, SYSHUB_CAP_STRUCT, (const void *)arg,
			  lenv < a.size ? lenv : a.size, lenv, 0);
		break;
	case SYSHUB_SPEC_BUF_OUT:
		if (ret > 0)
			put_bytes(st, i, SYSHUB_CAP_BUF, (const void *)arg,
				  (__u64)ret < st->buf_max ? (__u64)ret : st->buf_max, (__u64)ret,
				  SYSHUB_CAPF_EXIT);
		break;
	case SYSHUB_SPEC_SOCKADDR_OUT:
		if (ret >= 0 && arg && lenv) {
			__u32 alen = 0;

			bpf_probe_read_user(&alen, sizeof(alen), (const void *)lenv);
			put_bytes(st, i, SYSHUB_CAP_SOCKADDR, (const void *)arg,
				  alen < SYSHUB_SOCKADDR_MAX ? alen : SYSHUB_SOCKADDR_MAX, alen,
				  SYSHUB_CAPF_EXIT);
		}
		break;
	case SYSHUB_SPEC_STRUCT_OUT_LENPTR:
		/* intent: an out-value whose length the kernel wrote back (getsockopt) */
		if (ret >= 0 && arg && lenv) {
			__u32 olen = 0;

			bpf_probe_read_user(&olen, sizeof(olen), (const void *)lenv);
			put_bytes(st, i, SYSHUB_CAP_STRUCT, (const void *)arg,
				  olen < a.size ? olen : a.size, olen, SYSHUB_CAPF_EXIT);
		}
		break;
	case SYSHUB_SPEC_STRUCT_OUT:
		if (ret >= 0)
			put_bytes(st, i, SYSHUB_CAP_STRUCT, (const void *)arg, a.size, a.size,
				  SYSHUB_CAPF_EXIT);
		break;
	case SYSHUB_SPEC_MSGHDR_NAME_IN:
	case SYSHUB_SPEC_MSGHDR_NAME_OUT:
		/* intent: the socket address inside a struct msghdr (name, namelen) */
		if (arg && (a.kind == SYSHUB_SPEC_MSGHDR_NAME_IN || ret >= 0)) {
			__u64 name = 0;
			__u32 nlen = 0;

			bpf_probe_read_user(&name, sizeof(name), (const void *)arg);
			bpf_probe_read_user(&nlen, sizeof(nlen), (const __u8 *)arg + 8);
			if (name && nlen)
				put_bytes(
				    st, i, SYSHUB_CAP_SOCKADDR, (const void *)name,
				    nlen < SYSHUB_SOCKADDR_MAX ? nlen : SYSHUB_SOCKADDR_MAX, nlen,
				    a.kind == SYSHUB_SPEC_MSGHDR_NAME_OUT ? SYSHUB_CAPF_EXIT : 0);
		}
		break;
	case SYSHUB_SPEC_STR_OUT:
		if (ret >= 0)
			put_str(st, i, SYSHUB_CAP_STR, 0, (const void *)arg, st->str_max,
				SYSHUB_CAPF_EXIT);
		break;
	default:
		break;
	}
	return 0;
}

static __always_inline void capture_args(__u32 nr, __u8 at_exit)
{
	struct slots_ctx ctx = {.nr = nr, .at_exit = at_exit};

	bpf_loop(SYSHUB_NARGS, slot_step, &ctx, 0);
}

/* Emit the finished record; charge a drop to the key when the ring is full. */
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
	/* intent: wake the reader once, when this record crosses the threshold;
	 * past it the reader is awake or its poll timer fires, and waking it on
	 * every record would slow the traced task instead */
	avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
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
	__u16 anyns = 0;
	__u64 pid_tgid, seq, uid_gid;
	__u32 level, pidns, nargs = SYSHUB_NARGS;

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
	key.pid_ns = pidns;
	key.nr = nr;
	cfg = bpf_map_lookup_elem(&filters, &key);
	if (!cfg) {
		any.pid_ns = 0;
		any.nr = nr;
		cfg = bpf_map_lookup_elem(&filters, &any);
		if (!cfg)
			return 0;
		key = any;
		anyns = SYSHUB_EVF_ANY_NS;
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
	ev->flags = evflags | anyns;
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
	ev->_pad0 = 0;
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
	if ((st->capflags & SYSHUB_CAPS_EXIT) || st->faulted)
		capture_args(nr, 1);
	emit(st);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter")
int syshub_sys_enter(struct syscall_tp_enter *ctx)
{
	return handle_enter(ctx, (__u32)ctx->nr, (const __u8 *)ctx + 16, 0, 0);
}

SEC("tracepoint/syscalls/sys_exit")
int syshub_sys_exit(struct syscall_tp_exit *ctx)
{
	return handle_exit((__u32)ctx->nr, ctx->ret, 0);
}

SEC("raw_tracepoint/sys_enter")
int syshub_raw_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 nr = (__u32)ctx->args[1];
	__u32 *on;

	/* intent: only syscalls that have no per-syscall tracepoint */
	on = bpf_map_lookup_elem(&raw_syscalls, &nr);
	if (!on || !*on)
		return 0;
	return handle_enter(ctx, nr, (const void *)ctx->args[0], 1, SYSHUB_EVF_RAW_HOOK);
}

SEC("raw_tracepoint/sys_exit")
int syshub_raw_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__u32 nr = (__u32)BPF_CORE_READ(regs, orig_ax);
	__u32 *on;

	on = bpf_map_lookup_elem(&raw_syscalls, &nr);
	if (!on || !*on)
		return 0;
	return handle_exit(nr, (__s64)ctx->args[1], SYSHUB_EVF_RAW_HOOK);
}
