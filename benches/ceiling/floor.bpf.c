// SPDX-License-Identifier: GPL-2.0-only
/*
 * The hook floor for the syshub benchmarks (issue 15): count-only programs on
 * the same per-syscall tracepoints syshub attaches to, and nothing else. Each
 * program adds one to a per-CPU counter; the openat program that sees the
 * call first also reads the path into a per-CPU scratch buffer of
 * FLOOR_PATH_MAX bytes, as syshub's default string capture does, so the
 * openat floor includes reading the path. Two shapes, chosen by the loader:
 * the enter + exit pair (the path read at entry from the tracepoint's
 * arguments), and the exit hook alone (the path read at exit, its pointer
 * taken from the task's saved registers, as a tracer that records calls at
 * exit does). No filter: every call of the host on these tracepoints counts.
 * What a traced call costs here is the least any tracer on these hooks pays.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "floor.h"

char LICENSE[] SEC("license") = "GPL";

/* tracefs layout of syscalls/sys_enter_* and sys_exit_* */
struct tp_sys_enter {
	__u64 common;
	int nr;
	int pad;
	__u64 args[6];
};

struct tp_sys_exit {
	__u64 common;
	int nr;
	int pad;
	long ret;
};

/* Kernel types read through CO-RE; only the fields used are declared. */
struct task_struct {
	int pid;
} __attribute__((preserve_access_index));

/* x86_64: the second syscall argument is in si. */
struct pt_regs {
	unsigned long si;
} __attribute__((preserve_access_index));

struct path_buf {
	char data[FLOOR_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOOR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} scratch SEC(".maps");

/*
 * A plain increment, as a count-only tracer does: the programs of one CPU do
 * not run at the same time except when a task is preempted inside one, which
 * may lose a count and is not worth a locked add here.
 */
static __always_inline void bump(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);

	if (c)
		*c += 1;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int floor_getppid_enter(struct tp_sys_enter *ctx)
{
	bump(FLOOR_GETPPID_ENTER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_getppid")
int floor_getppid_exit(struct tp_sys_exit *ctx)
{
	bump(FLOOR_GETPPID_EXIT);
	return 0;
}

static __always_inline void read_path(const void *uptr)
{
	struct path_buf *buf;
	__u32 zero = 0;

	buf = bpf_map_lookup_elem(&scratch, &zero);
	if (buf && bpf_probe_read_user_str(buf->data, sizeof(buf->data), uptr) < 0)
		bump(FLOOR_PATH_FAULTS);
}

/* The pair: the path read at entry, from the tracepoint's arguments. */
SEC("tracepoint/syscalls/sys_enter_openat")
int floor_openat_enter(struct tp_sys_enter *ctx)
{
	bump(FLOOR_OPENAT_ENTER);
	read_path((const void *)ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int floor_openat_exit(struct tp_sys_exit *ctx)
{
	bump(FLOOR_OPENAT_EXIT);
	return 0;
}

/* The exit hook alone: the path read at exit, from the saved registers. */
SEC("tracepoint/syscalls/sys_exit_openat")
int floor_openat_exit_path(struct tp_sys_exit *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	bump(FLOOR_OPENAT_EXIT);
	read_path((const void *)regs->si);
	return 0;
}
