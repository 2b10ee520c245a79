// SPDX-License-Identifier: Apache-2.0
/*
 * Ceiling consumer: loads ceiling.bpf.o with libbpf, traces getppid in one pid
 * namespace and reads the ring buffer with ring_buffer__new/poll, counting
 * records (what a consumer that does nothing but receive can take).
 *
 * Usage: ceiling OBJ --pid-ns N [--ring-bytes B] [--wakeup-bytes W] [--cpu C]
 * Prints "ready" once attached; on SIGINT/SIGTERM drains the ring and prints
 * one JSON line: records, matched, dropped, seq errors, timings.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ceiling.h"

#define NR_GETPPID 110

static volatile sig_atomic_t stop;

struct tally {
	unsigned long long records;
	unsigned long long seq_errors;
	unsigned long long last_seq;
	double first_s;
	double last_s;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int on_record(void *vctx, void *data, size_t size)
{
	struct tally *t = vctx;
	const struct ceiling_record *r = data;

	if (size < sizeof(*r))
		return 0;
	/* a consumer that looks at each record: the sequence must only grow */
	if (r->seq <= t->last_seq)
		t->seq_errors++;
	t->last_seq = r->seq;
	if (!t->records)
		t->first_s = now_s();
	t->records++;
	return 0;
}

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long long ring_bytes = 16ULL << 20, wakeup = 256ULL << 10;
	struct ceiling_counters kc = {0};
	struct ceiling_key key = {0, NR_GETPPID};
	struct bpf_link *l_enter = NULL, *l_exit = NULL;
	struct ring_buffer *rb = NULL;
	struct bpf_object *obj;
	struct bpf_map *m;
	struct tally t = {0};
	struct sigaction sa;
	unsigned long long polls = 0;
	__u32 zero = 0;
	int cpu = -1, err;
	double t_stop;

	if (argc < 2) {
		fprintf(stderr, "usage: ceiling OBJ --pid-ns N [--ring-bytes B] "
				"[--wakeup-bytes W] [--cpu C]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--pid-ns"))
			key.pid_ns = (__u32)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--ring-bytes"))
			ring_bytes = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--wakeup-bytes"))
			wakeup = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--cpu"))
			cpu = atoi(argv[i + 1]);
	}
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	libbpf_set_print(silent);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "ceiling: cannot open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	m = bpf_object__find_map_by_name(obj, "ring");
	if (!m || bpf_map__set_max_entries(m, (__u32)ring_bytes) != 0) {
		fprintf(stderr, "ceiling: cannot size the ring\n");
		return 1;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "ceiling: load failed: %s\n", strerror(-err));
		return 1;
	}
	if (bpf_map__update_elem(bpf_object__find_map_by_name(obj, "config"), &zero, sizeof(zero),
				 &wakeup, sizeof(wakeup), BPF_ANY) ||
	    bpf_map__update_elem(bpf_object__find_map_by_name(obj, "keys"), &key, sizeof(key), &kc,
				 sizeof(kc), BPF_ANY)) {
		fprintf(stderr, "ceiling: cannot configure maps: %s\n", strerror(errno));
		return 1;
	}
	l_exit = bpf_program__attach(bpf_object__find_program_by_name(obj, "ceiling_exit"));
	l_enter = bpf_program__attach(bpf_object__find_program_by_name(obj, "ceiling_enter"));
	if (!l_exit || !l_enter) {
		fprintf(stderr, "ceiling: attach failed: %s\n", strerror(errno));
		return 1;
	}
	rb = ring_buffer__new(bpf_map__fd(m), on_record, &t, NULL);
	if (!rb) {
		fprintf(stderr, "ceiling: ring_buffer__new failed: %s\n", strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		err = ring_buffer__poll(rb, 10);
		polls++;
		if (err < 0 && err != -EINTR)
			break;
		if (err > 0)
			t.last_s = now_s();
	}
	t_stop = now_s();
	/* detach first, then drain what is left */
	bpf_link__destroy(l_enter);
	bpf_link__destroy(l_exit);
	while ((err = ring_buffer__consume(rb)) > 0)
		t.last_s = now_s();
	bpf_map__lookup_elem(bpf_object__find_map_by_name(obj, "keys"), &key, sizeof(key), &kc,
			     sizeof(kc), 0);
	printf("{\"records\":%llu,\"matched\":%llu,\"dropped\":%llu,\"seq_errors\":%llu,"
	       "\"active_s\":%.6f,\"drain_s\":%.6f,\"polls\":%llu,\"ring_bytes\":%llu,"
	       "\"wakeup_bytes\":%llu}\n",
	       t.records, (unsigned long long)kc.matched, (unsigned long long)kc.dropped,
	       t.seq_errors, t.records ? t.last_s - t.first_s : 0.0,
	       t.last_s > t_stop ? t.last_s - t_stop : 0.0, polls, ring_bytes, wakeup);
	fflush(stdout);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
