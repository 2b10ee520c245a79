/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The probe's state: the per-task call being built, every map shared by the
 * programs, and the global counters.
 */
#ifndef SYSHUB_STATE_H
#define SYSHUB_STATE_H

/* Room after SYSHUB_REC_MAX so a capture that starts below it stays in bounds. */
#define REC_BUF_SIZE (SYSHUB_REC_MAX + SYSHUB_CAP_MAX + 64)
#define CAP_HDR	     ((__u32)sizeof(struct syshub_capture))

struct inflight {
	__u32 pending; /* an entry waits for its exit */
	__u32 nr;
	struct syshub_filter_key key; /* the filter this call charges */
	__u32 slot;		      /* its counters' slot */
	__u32 len;		      /* bytes of rec in use */
	__u32 str_max;
	__u32 argv_max;
	__u32 buf_max;
	__u32 faulted; /* slots whose entry string was not resident: retried at exit */
	__u32 capflags;
	__u32 skip; /* nr + 1 of a call its entry sampled out: its exit records nothing */
	/* The filter this task's last call matched, valid while match_gen is
	 * unchanged and the call's nr, tgid and pid namespace are the same: a
	 * task repeating a call skips the filter and scope lookups. */
	__u64 c_gen;
	__u32 c_nr;
	__u32 c_tgid;
	__u32 c_pidns;
	__u32 c_scope;
	struct syshub_filter_key c_key;
	struct syshub_filter_cfg c_cfg;
	__u16 c_keyflag;
	__u16 _pad0;
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

/* Per-key counters, at the slot the key's filter names: an array, so a
 * matched call counts without a hash lookup (user space zeroes a slot when it
 * gives it to a key and reads it when the key is removed). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct syshub_key_counters);
} counters SEC(".maps");

/* Records of each live key the reader has taken out of the ring: written by
 * user space only (created with the key's counters, at 0), read by the fair
 * share check. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct syshub_filter_key);
	__type(value, __u64);
} key_read SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYSHUB_MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, struct syshub_capture_spec);
} capture_specs SEC(".maps");

/* Bumped by user space after every change of the filters or scopes: the
 * per-task match caches are stale from then on. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} match_gen SEC(".maps");

/* How each syscall number is hooked: SYSHUB_HOOK_* bits (syshub_abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYSHUB_MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, __u32);
} hook_modes SEC(".maps");

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

#endif /* SYSHUB_STATE_H */
