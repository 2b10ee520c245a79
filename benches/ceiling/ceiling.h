/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* Types shared by ceiling.bpf.c and ceiling.c. */
#ifndef SYSHUB_CEILING_H
#define SYSHUB_CEILING_H

#include <linux/types.h>

struct ceiling_key {
	__u32 pid_ns;
	__u32 nr;
};

struct ceiling_counters {
	__u64 matched;
	__u64 dropped;
};

/* One call: 96 bytes. */
struct ceiling_record {
	__u32 nr;
	__u32 tgid;
	__u32 tid;
	__u32 pid_ns;
	__u64 enter_ns;
	__u64 exit_ns;
	__s64 ret;
	__u64 seq;
	__u64 cgroup_id;
	__u64 args[3];
	char comm[16];
};

_Static_assert(sizeof(struct ceiling_record) == 96, "ceiling_record size");

#endif /* SYSHUB_CEILING_H */
