/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The one kernel/user ABI of syshub. bpf-rs/src/abi.rs mirrors every struct
 * and constant here; bpf-rs/tests/abi.rs checks sizes and offsets against the
 * BTF of the compiled object. Fixed-width types only, padding written out.
 */
#ifndef SYSHUB_ABI_H
#define SYSHUB_ABI_H

#ifndef __u8
#include <linux/types.h>
#endif

#define SYSHUB_ABI_VERSION 2

#define SYSHUB_COMM_LEN	    16
#define SYSHUB_NARGS	    6
/* Syscall numbers handled: the x86_64 table ends below 512. */
#define SYSHUB_MAX_SYSCALLS 512

/* Largest record in the ring (header + captures); a power of two. */
#define SYSHUB_REC_MAX	    8192
/* Largest single string or buffer capture. */
#define SYSHUB_CAP_MAX	    4096
/* Default per-string capture, overridable per filter key. */
#define SYSHUB_STR_DEFAULT  256
/* Default number of argv elements captured, overridable per filter key. */
#define SYSHUB_ARGV_DEFAULT 32
#define SYSHUB_ARGV_LIMIT   128
/* struct sockaddr_storage */
#define SYSHUB_SOCKADDR_MAX 128

/* Record kinds (syshub_event.kind). */
#define SYSHUB_REC_SYSCALL 1

/* Record flags (syshub_event.flags). */
#define SYSHUB_EVF_NO_EXIT   0x1  /* exit/exit_group: never returns, emitted at entry */
#define SYSHUB_EVF_TRUNCATED 0x2  /* captures omitted: record hit SYSHUB_REC_MAX */
#define SYSHUB_EVF_RAW_HOOK  0x4  /* seen through the raw sys_enter/sys_exit hooks */
#define SYSHUB_EVF_ANY_NS    0x8  /* matched the every-namespace key (pid_ns 0) */
#define SYSHUB_EVF_SCOPE     0x10 /* matched its process scope's key (scope, nr) */
#define SYSHUB_EVF_KILLED    0x20 /* SIGKILL pending at exit: never returned to user space */
/* Seen at exit only (the syscall's entry hook is not attached): enter_ns is 0
 * and the arguments were read from the task's registers when it returned. */
#define SYSHUB_EVF_EXIT_ONLY 0x40

/*
 * Values of the hook_modes map, per syscall number: traced through the raw
 * sys_enter/sys_exit hooks rather than its own tracepoints, and whether its
 * entry hook runs. Without SYSHUB_HOOK_ENTRY a call is recorded at exit only.
 */
#define SYSHUB_HOOK_RAW	  0x1
#define SYSHUB_HOOK_ENTRY 0x2

/*
 * Process scopes: a process tree (a root pid and its descendants) whose
 * calls are keyed by a small scope id instead of their pid namespace inode.
 * Namespace inodes are >= 0xF0000000, so ids 1..SYSHUB_SCOPE_MAX never
 * collide with one.
 */
#define SYSHUB_SCOPE_MAX 65535

/*
 * Fixed header of every record, followed by `ncaptures` captures. All ids are
 * as the host sees them unless prefixed ns_ (as seen inside the task's own pid
 * namespace). tgid is the process id, tid the thread id.
 */
struct syshub_event {
	__u16 kind;
	__u16 flags;
	__u32 size; /* bytes in this record, header and captures */
	__u32 nr;
	__u32 tgid;
	__u32 tid;
	__u32 ns_tgid;
	__u32 ns_tid;
	__u32 uid;
	__u32 gid;
	__u32 sid; /* session id (host) */
	__u32 pid_ns;
	__u32 mnt_ns;
	__u32 uts_ns;
	__u16 ncaptures;
	__u16 scope; /* the task's process scope id, 0 = none */
	__u64 cgroup_id;
	__u64 enter_ns; /* CLOCK_MONOTONIC */
	__u64 exit_ns;	/* 0 when SYSHUB_EVF_NO_EXIT */
	__s64 ret;
	__u64 seq; /* per filter key, 1-based; sampled records have seq % rate == 0 */
	__u64 args[SYSHUB_NARGS];
	char comm[SYSHUB_COMM_LEN];
};

/* Capture kinds (syshub_capture.kind). */
#define SYSHUB_CAP_STR	    1 /* NUL-terminated string, len excludes the NUL */
#define SYSHUB_CAP_BUF	    2 /* raw bytes */
#define SYSHUB_CAP_SOCKADDR 3 /* struct sockaddr bytes */
#define SYSHUB_CAP_STRV	    4 /* one element of a string array, index = position */
#define SYSHUB_CAP_STRV_END 5 /* end of a string array, index = elements seen */
#define SYSHUB_CAP_STRUCT   6 /* fixed-size struct bytes (timespec, rlimit, ...) */

/* Capture flags (syshub_capture.flags). */
#define SYSHUB_CAPF_TRUNCATED 0x1 /* more data existed than was captured */
#define SYSHUB_CAPF_FAULT     0x2 /* the user pointer could not be read */
#define SYSHUB_CAPF_EXIT      0x4 /* taken when the call returned */

/* One captured argument; `len` data bytes follow, zero-padded to 8 bytes. */
struct syshub_capture {
	__u8 slot; /* argument index 0..5 */
	__u8 kind;
	__u16 flags;
	__u32 len;
	__u32 orig_len; /* original length when known, else SYSHUB_LEN_UNKNOWN */
	__u32 index;
};
#define SYSHUB_LEN_UNKNOWN 0xffffffffu

/* What to capture for one argument slot (syshub_arg_spec.kind). */
#define SYSHUB_SPEC_NONE	    0
#define SYSHUB_SPEC_STR		    1  /* string at entry */
#define SYSHUB_SPEC_STRV	    2  /* NULL-terminated string array at entry */
#define SYSHUB_SPEC_BUF_IN	    3  /* bytes at entry, length = args[len_arg] */
#define SYSHUB_SPEC_SOCKADDR_IN	    4  /* sockaddr at entry, length = args[len_arg] */
#define SYSHUB_SPEC_STRUCT_IN	    5  /* `size` bytes at entry */
#define SYSHUB_SPEC_STRUCT_IN_LEN   6  /* bytes at entry, length = args[len_arg], max `size` */
#define SYSHUB_SPEC_MSGHDR_NAME_IN  7  /* msghdr->msg_name at entry (sendmsg) */
#define SYSHUB_SPEC_BUF_OUT	    16 /* bytes at exit, length = return value */
#define SYSHUB_SPEC_SOCKADDR_OUT    17 /* sockaddr at exit, length = *(u32 *)args[len_arg] */
#define SYSHUB_SPEC_STRUCT_OUT	    18 /* `size` bytes at exit when the call succeeded */
#define SYSHUB_SPEC_STR_OUT	    19 /* string at exit when the call succeeded */
#define SYSHUB_SPEC_MSGHDR_NAME_OUT 20 /* msghdr->msg_name at exit (recvmsg) */
#define SYSHUB_SPEC_STRUCT_OUT_LENPTR                                                              \
	21			  /* bytes at exit, length = *(u32 *)args[len_arg], max `size` */
#define SYSHUB_SPEC_ARRAY_OUT  22 /* at exit, ret x `size` bytes (an array of structs) */
#define SYSHUB_SPEC_FIRST_EXIT 16

struct syshub_arg_spec {
	__u8 kind;
	__u8 len_arg;
	__u16 size;
};

/* Per syscall number: what each argument slot captures. */
#define SYSHUB_CAPS_ENTRY 0x1 /* some slot captures at entry */
#define SYSHUB_CAPS_EXIT  0x2 /* some slot captures at exit */

struct syshub_capture_spec {
	struct syshub_arg_spec slots[SYSHUB_NARGS];
	__u8 nargs;    /* arguments the syscall takes; the rest read as 0 */
	__u8 capflags; /* SYSHUB_CAPS_*: which capture passes have work */
	__u8 _pad0[6];
};

/*
 * Filter map key: active pid namespace inode (0 = every namespace) or process
 * scope id (1..SYSHUB_SCOPE_MAX), and nr. A task in a scope matches the
 * scope's key first, then its namespace's, then the every-namespace key.
 */
struct syshub_filter_key {
	__u32 pid_ns;
	__u32 nr;
};

/* Filter map value: what user space asks of this key. */
struct syshub_filter_cfg {
	__u32 sample_rate; /* deliver 1 in N; 0 and 1 deliver all */
	__u16 str_max;	   /* per-string capture, 1..SYSHUB_CAP_MAX */
	__u16 argv_max;	   /* argv elements, 0..SYSHUB_ARGV_LIMIT */
	__u32 buf_max;	   /* per-buffer capture, 0..SYSHUB_CAP_MAX */
	__u32 slot;	   /* the key's entry in the counters array (user space picks it) */
};

/* Per-key counters (atomic; matched doubles as the sequence number). */
struct syshub_key_counters {
	__u64 matched;
	__u64 sampled_out;
	__u64 dropped;	  /* every loss: ring full, over its share, no per-task memory */
	__u64 emitted;	  /* reserved: the reader counts records per key */
	__u64 over_share; /* of dropped: the key held more than its fair share of the ring */
};

/* Global counters (per CPU array, index = SYSHUB_GC_*). */
#define SYSHUB_GC_MATCHED     0
#define SYSHUB_GC_SAMPLED_OUT 1
#define SYSHUB_GC_DROPPED     2
#define SYSHUB_GC_EMITTED     3
#define SYSHUB_GC_ORPHANED    4 /* entry seen, exit hook gone: never emitted */
#define SYSHUB_GC_NOMEM	      5 /* no per-task storage: counted in dropped too */
#define SYSHUB_GC_NOKEY	      6 /* counters entry missing for a matched key */
#define SYSHUB_GC_SCOPE_FULL  7 /* a forked child not added: scope map full */
#define SYSHUB_GC_OVER_SHARE  8 /* dropped: the key was over its fair share */
#define SYSHUB_GC_COUNT	      9

/*
 * Fair share of the ring. Once more than `share_from` bytes are pending in
 * the ring, a record is written only if its key's pending records (written,
 * not yet read out by the reader, whose counts user space keeps in the
 * key_read map), at this record's size, fit in the ring's free space; else it
 * is dropped and counted in dropped and over_share. One flooding key then
 * holds at most about half of the ring, N flooding keys 1/(N+1) each, and a
 * quiet key always finds room.
 */

_Static_assert(sizeof(struct syshub_event) == 160, "syshub_event size");
_Static_assert(sizeof(struct syshub_capture) == 16, "syshub_capture size");
_Static_assert(sizeof(struct syshub_capture_spec) == 32, "syshub_capture_spec size");
_Static_assert(sizeof(struct syshub_filter_key) == 8, "syshub_filter_key size");
_Static_assert(sizeof(struct syshub_filter_cfg) == 16, "syshub_filter_cfg size");
_Static_assert(sizeof(struct syshub_key_counters) == 40, "syshub_key_counters size");

#endif /* SYSHUB_ABI_H */
