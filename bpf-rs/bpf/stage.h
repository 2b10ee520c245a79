/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Per-CPU staging: whole records of one CPU are gathered in a per-CPU buffer
 * and handed to the ring several at a time, as one ring record. Each ring
 * reservation and commit touches cache lines the reader on another CPU reads
 * too; per record that was most of what a traced call cost (see
 * docs/benchmarks.md, issue 15). The reader splits a ring record into its
 * records by their `size` fields.
 *
 * A CPU's buffer is handed over when it is full, when the CPU switches tasks
 * (the sched_switch hook, attached while any filter exists: a task's records
 * are in the ring before it can run anywhere else, so one thread's records
 * stay in order), and when user space asks (it runs the same program on every
 * CPU through BPF_PROG_TEST_RUN when its reader is idle and before a sync).
 * Records bigger than one event header (with captures) are not staged: the
 * buffer is handed over first, then the record, so order holds.
 */
#ifndef SYSHUB_STAGE_H
#define SYSHUB_STAGE_H

#include "state.h"

#define STAGE_BYTES 8192
#define EV_BYTES    ((__u32)sizeof(struct syshub_event))

struct stage {
	__u32 len;   /* bytes staged */
	__u32 count; /* records staged */
	__u32 busy;  /* a program is writing it now: a hand-over from elsewhere waits */
	__u32 _pad;
	__u64 avail; /* ring bytes pending after the last hand-over (no query per record) */
	__u8 buf[STAGE_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stage);
} stages SEC(".maps");

/* Bytes past which a buffer is handed over: set by the loader below a
 * sixteenth of the ring, so a small ring still takes whole buffers. */
const volatile __u32 stage_limit = STAGE_BYTES;

static __always_inline struct stage *this_stage(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stages, &zero);
}

static __always_inline void gc_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&global_counters, &idx);

	if (v)
		*v += n;
}

/* The filter key a record charges, from its header. */
static __always_inline void record_key(const struct syshub_event *ev, struct syshub_filter_key *key)
{
	key->nr = ev->nr;
	if (ev->flags & SYSHUB_EVF_SCOPE)
		key->pid_ns = ev->scope;
	else if (ev->flags & SYSHUB_EVF_ANY_NS)
		key->pid_ns = 0;
	else
		key->pid_ns = ev->pid_ns;
}

struct drop_ctx {
	struct stage *sg;
	__u32 off;
};

static long drop_step(__u32 i, void *vctx)
{
	struct drop_ctx *ctx = vctx;
	struct syshub_key_counters *kc = 0;
	struct syshub_filter_cfg *cfg;
	struct syshub_filter_key key;
	struct syshub_event *ev;
	__u32 off = ctx->off;

	if (off > STAGE_BYTES - EV_BYTES)
		return 1;
	ev = (struct syshub_event *)&ctx->sg->buf[off];
	record_key(ev, &key);
	/* intent: the rare full ring: the key's slot from its filter (a key
	 * removed since the record was staged is counted globally only) */
	cfg = bpf_map_lookup_elem(&filters, &key);
	if (cfg)
		kc = bpf_map_lookup_elem(&counters, &cfg->slot);
	if (kc)
		__sync_fetch_and_add(&kc->dropped, 1);
	ctx->off = off + ((ev->size + 7) & ~7u);
	return 0;
}

/* Hand the staged records to the ring; when it has no room, each is counted
 * as a drop of its key. */
static __always_inline void stage_flush(struct stage *sg)
{
	__u32 len = sg->len, count = sg->count;
	__u64 flags = BPF_RB_NO_WAKEUP, avail;

	if (!len)
		return;
	if (len > STAGE_BYTES)
		len = STAGE_BYTES;
	avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	/* intent: wake the reader once, when this hand-over crosses the
	 * threshold; past it the reader is awake or its poll timer fires */
	if (avail < wakeup_bytes && avail + len >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&events, sg->buf, len, flags) == 0) {
		gc_add(SYSHUB_GC_EMITTED, count);
		sg->avail = avail + len;
	} else {
		struct drop_ctx ctx = {.sg = sg, .off = 0};

		bpf_loop(count, drop_step, &ctx, 0);
		gc_add(SYSHUB_GC_DROPPED, count);
		sg->avail = avail;
	}
	sg->len = 0;
	sg->count = 0;
}

/* Room for one event header in this CPU's buffer (handing it over first when
 * full), or 0 when another program on this CPU is writing it. The caller
 * fills the header, then calls stage_commit. */
static __always_inline struct syshub_event *stage_begin(struct stage *sg)
{
	__u32 off;

	if (sg->busy)
		return 0;
	sg->busy = 1;
	if (sg->len + EV_BYTES > stage_limit)
		stage_flush(sg);
	off = sg->len;
	if (off > STAGE_BYTES - EV_BYTES) {
		sg->busy = 0;
		return 0;
	}
	return (struct syshub_event *)&sg->buf[off];
}

static __always_inline void stage_commit(struct stage *sg)
{
	sg->len += EV_BYTES;
	sg->count += 1;
	/* intent: a full buffer goes now rather than waiting for the next record */
	if (sg->len + EV_BYTES > stage_limit)
		stage_flush(sg);
	sg->busy = 0;
}

/* Hands over this CPU's buffer unless a program is writing it: 1 when it is
 * empty now, 0 when it was busy (user space runs it again). */
SEC("raw_tracepoint/sched_switch")
int syshub_stage_flush(void *ctx)
{
	struct stage *sg = this_stage();

	if (!sg || !sg->len)
		return 1;
	if (sg->busy)
		return 0;
	sg->busy = 1;
	stage_flush(sg);
	sg->busy = 0;
	return 1;
}

#endif /* SYSHUB_STAGE_H */
