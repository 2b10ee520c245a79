/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Argument captures: strings, string arrays, buffers, socket addresses and
 * structs, appended to the record being built in task storage. Each capture
 * carries its captured length and flags; padding is zeroed.
 */
#ifndef SYSHUB_CAPTURE_H
#define SYSHUB_CAPTURE_H

#include "state.h"

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

/* Which slots a capture pass takes (capture_args). */
#define CAPTURE_ENTRY 0 /* entry kinds, at entry */
#define CAPTURE_EXIT  1 /* exit kinds (and entry strings that faulted), at exit */
#define CAPTURE_BOTH  2 /* every kind, at exit: the call had no entry hook */

struct slots_ctx {
	__u32 nr;
	__u8 mode;
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
	if (ctx->mode == CAPTURE_EXIT && a.kind == SYSHUB_SPEC_STR && (st->faulted & (1u << i))) {
		put_str(st, i, SYSHUB_CAP_STR, 0, (const void *)st->rec.ev.args[i], st->str_max,
			SYSHUB_CAPF_EXIT);
		return 0;
	}
	if (ctx->mode != CAPTURE_BOTH &&
	    (ctx->mode == CAPTURE_EXIT) != (a.kind >= SYSHUB_SPEC_FIRST_EXIT))
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
	case SYSHUB_SPEC_ARRAY_OUT:
		/* intent: `ret` structs of `size` bytes (epoll_wait's events) */
		if (ret > 0 && arg)
			put_bytes(st, i, SYSHUB_CAP_STRUCT, (const void *)arg, (__u64)ret * a.size,
				  (__u64)ret * a.size, SYSHUB_CAPF_EXIT);
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

static __always_inline void capture_args(__u32 nr, __u8 mode)
{
	struct slots_ctx ctx = {.nr = nr, .mode = mode};

	bpf_loop(SYSHUB_NARGS, slot_step, &ctx, 0);
}

#endif /* SYSHUB_CAPTURE_H */
