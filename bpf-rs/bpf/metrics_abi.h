/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The metrics program's kernel/user ABI (metrics.bpf.c), mirrored by
 * bpf-rs/src/metrics/abi.rs. Fixed-width types only, padding written out.
 */
#ifndef SYSHUB_METRICS_ABI_H
#define SYSHUB_METRICS_ABI_H

#ifndef __u8
#include <linux/types.h>
#endif

/*
 * Latency histogram: bucket b counts the calls whose duration in ns has b
 * significant bits (0 ns in bucket 0, else 2^(b-1) <= ns < 2^b); the last
 * bucket is open-ended (about 4.6 min and more).
 */
#define SYSHUB_MX_BUCKETS 40

/* Modes (the `mode` global, fixed at load). */
#define SYSHUB_MX_MODE_NODE	  0 /* every syscall of every pid namespace */
#define SYSHUB_MX_MODE_CONTAINERS 1 /* only pid namespaces in the namespace set */

/* Indexes of the per-CPU counters map. */
#define SYSHUB_MX_C_NOMEM    0 /* an entry without a task slot (not timed) */
#define SYSHUB_MX_C_OVERFLOW 1 /* calls that found the stats map full */
#define SYSHUB_MX_C_UNTIMED  2 /* calls counted without a duration (latency mode) */
#define SYSHUB_MX_C_COUNT    3

/* One series: a pid namespace, a syscall, its errno (0 = success). */
struct syshub_mx_key {
	__u32 pid_ns;
	__u16 nr;
	__u16 err;
};

struct syshub_mx_value {
	__u64 count;
	__u64 total_ns;
	__u64 hist[SYSHUB_MX_BUCKETS];
};

#endif /* SYSHUB_METRICS_ABI_H */
