// SPDX-License-Identifier: GPL-2.0
/* Per-cgroup CPU, run-queue latency, reclaim stall, OOM kill and CFS throttling signals for the
 * cgroups user space puts in `tracked`. Only raw_tp and kprobes, and only CO-RE reads, so one
 * object loads on 5.15 through current kernels (no fentry/tp_btf, no sched_switch prev_state
 * argument, whose position changed in 5.18). */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bpf/probes_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u64 runq_event_threshold_ns = 5000000;
const volatile __u64 stall_event_threshold_ns = 5000000;
const volatile __u64 stall_window_ns = 1000000000;
const volatile __u64 event_interval_ns = 50000000;

/* The membership test and the counters in one lookup: sched_switch pays for a single hash
 * probe. No prealloc, so memory follows the number of tracked cgroups, not max_entries. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct ebb_cgroup_stats);
} tracked SEC(".maps");

/* The stint (time since the scheduler picked it) of the task on this CPU that a tick already
 * charged in part, so the next tick or the switch-out charges only the rest. */
struct cpu_state {
	__u64 task;
	__u64 stint_start; /* its se.prev_sum_exec_runtime: one value per stint */
	__u64 charged;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_state);
} cpu_states SEC(".maps");

struct wait_start {
	__u64 since_ns;
	__u64 cgroup_id; /* of the waiting task, taken when it started waiting */
};

/* Runnable tracked tasks not yet on a CPU, keyed by task_struct address: the raw_tp arguments
 * carry it, so no read is needed to look `next` up. Entries outlive their waits (see
 * start_waiting()); the LRU evicts those of tasks that are gone. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct wait_start);
} runq_waits SEC(".maps");

enum stall_kind { STALL_MEMCG_RECLAIM = 0, STALL_DIRECT_RECLAIM = 1 };

struct stall_key {
	__u32 tid;
	__u32 kind; /* enum stall_kind: the two can nest */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct stall_key);
	__type(value, struct wait_start);
} reclaim_starts SEC(".maps");

struct event_key {
	__u64 cgroup_id;
	__u32 kind;
	__u32 reserved;
};

/* Last event sent per cgroup and kind; an unsynchronised read-modify-write, so two CPUs may
 * both send one in the same interval, which is harmless. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct event_key);
	__type(value, __u64);
} last_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline __u64 task_cgroup_id(struct task_struct *task)
{
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

static __always_inline __u32 latency_bucket(__u64 ns)
{
	__u32 bucket = 0, shift;

	shift = (ns > 0xffffffffULL) << 5;
	ns >>= shift;
	bucket |= shift;
	shift = (ns > 0xffff) << 4;
	ns >>= shift;
	bucket |= shift;
	shift = (ns > 0xff) << 3;
	ns >>= shift;
	bucket |= shift;
	shift = (ns > 0xf) << 2;
	ns >>= shift;
	bucket |= shift;
	shift = (ns > 0x3) << 1;
	ns >>= shift;
	bucket |= shift;
	bucket |= ns >> 1;
	if (bucket >= EBB_LATENCY_BUCKETS)
		bucket = EBB_LATENCY_BUCKETS - 1;
	return bucket;
}

static __always_inline void send_event(__u32 kind, __u64 cgroup_id, __u64 value_ns, __u64 now)
{
	struct event_key key = { .cgroup_id = cgroup_id, .kind = kind };
	__u64 *last = bpf_map_lookup_elem(&last_events, &key);
	struct ebb_event *event;

	if (last) {
		if (now - *last < event_interval_ns)
			return;
		*last = now;
	} else {
		bpf_map_update_elem(&last_events, &key, &now, BPF_ANY);
	}
	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event)
		return;
	event->timestamp_ns = now;
	event->cgroup_id = cgroup_id;
	event->value_ns = value_ns;
	event->kind = kind;
	event->reserved = 0;
	bpf_ringbuf_submit(event, 0);
}

/* Entries stay in the map when the wait ends (since_ns = 0) and are rewritten in place: an LRU
 * update or delete costs an allocation or a list operation, a lookup does not. */
static __always_inline void start_waiting(struct task_struct *task, __u64 cgroup_id, __u64 now)
{
	__u64 key = (__u64)task;
	struct wait_start *wait = bpf_map_lookup_elem(&runq_waits, &key);
	struct wait_start start = { .since_ns = now, .cgroup_id = cgroup_id };

	if (wait) {
		wait->since_ns = now;
		wait->cgroup_id = cgroup_id;
	} else {
		bpf_map_update_elem(&runq_waits, &key, &start, BPF_ANY);
	}
}

static __always_inline int on_wakeup(struct task_struct *task)
{
	__u64 cgroup_id = task_cgroup_id(task);

	if (!bpf_map_lookup_elem(&tracked, &cgroup_id))
		return 0;
	start_waiting(task, cgroup_id, bpf_ktime_get_ns());
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(ebb_sched_wakeup, struct task_struct *task)
{
	return on_wakeup(task);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(ebb_sched_wakeup_new, struct task_struct *task)
{
	return on_wakeup(task);
}

#define MAX_RT_PRIO 100

/* What the switch path needs of a task. */
struct task_sample {
	__u32 state;
	int prio;
	__u64 sum_exec_runtime;
	__u64 prev_sum_exec_runtime;
};

/* `current` as a BTF pointer: its fields are plain loads (relocated by CO-RE, fault-safe),
 * where an untyped pointer would cost a bpf_probe_read_kernel() call. On sched_switch current
 * is still prev; in the hrtimer it is the interrupted task. */
static __always_inline void sample_current(struct task_sample *out)
{
	struct task_struct *task = bpf_get_current_task_btf();

	out->state = task->__state;
	out->prio = task->prio;
	out->sum_exec_runtime = task->se.sum_exec_runtime;
	out->prev_sum_exec_runtime = task->se.prev_sum_exec_runtime;
}

/* Charges what the task ran in its current stint and no tick charged yet, from the scheduler's
 * own clock: sum_exec_runtime - prev_sum_exec_runtime is the time since it was picked, built
 * from the same deltas as cpu.stat's usage_usec (so IRQ time is left out alike). RT tasks
 * keep no prev_sum_exec_runtime and are not counted. */
static __always_inline void charge_stint(__u64 task, const struct task_sample *sample,
					 struct ebb_cgroup_stats *stats)
{
	__u32 zero = 0;
	struct cpu_state *cpu = bpf_map_lookup_elem(&cpu_states, &zero);
	__u64 start = sample->prev_sum_exec_runtime;
	__u64 ran = sample->sum_exec_runtime - start;

	if (!cpu || sample->prio < MAX_RT_PRIO)
		return;
	if (cpu->task == task && cpu->stint_start == start) {
		if (ran <= cpu->charged)
			return;
		stats->cpu_ns += ran - cpu->charged;
	} else {
		stats->cpu_ns += ran;
	}
	cpu->task = task;
	cpu->stint_start = start;
	cpu->charged = ran;
}

/* `stats` are those of `known_cgroup_id`, reused when the waiting task is of the same cgroup. */
static __always_inline void record_wait(struct wait_start *wait, __u64 now, __u64 known_cgroup_id,
					struct ebb_cgroup_stats *stats)
{
	__u64 cgroup_id = wait->cgroup_id;
	__u64 waited = now - wait->since_ns;

	wait->since_ns = 0;
	if (cgroup_id != known_cgroup_id || !stats)
		stats = bpf_map_lookup_elem(&tracked, &cgroup_id);
	if (!stats)
		return;
	stats->runq_count++;
	stats->runq_sum_ns += waited;
	stats->runq_buckets[latency_bucket(waited) & (EBB_LATENCY_BUCKETS - 1)]++;
	if (waited > runq_event_threshold_ns)
		send_event(EBB_EVENT_RUNQ_LATENCY, cgroup_id, waited, now);
}

/* The hot path: runs on every context switch of every CPU. For tasks of untracked cgroups it
 * costs two map lookups and no memory read or clock: `current` is still prev here, so its
 * cgroup is one helper call, and next is looked up by its address, an argument. */
SEC("raw_tp/sched_switch")
int BPF_PROG(ebb_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 prev_cgroup_id = bpf_get_current_cgroup_id();
	struct ebb_cgroup_stats *stats = bpf_map_lookup_elem(&tracked, &prev_cgroup_id);
	__u64 next_key = (__u64)next;
	struct wait_start *wait;
	__u64 now = 0;

	if (stats) {
		struct task_sample sample;

		sample_current(&sample);
		charge_stint((__u64)prev, &sample, stats);
		/* Still runnable after a switch: the kernel counts it in nivcsw, and the task
		 * starts waiting for a CPU again. */
		if (preempt || sample.state == 0) {
			stats->involuntary_switches++;
			now = bpf_ktime_get_ns();
			start_waiting(prev, prev_cgroup_id, now);
		}
	}
	wait = bpf_map_lookup_elem(&runq_waits, &next_key);
	if (wait && wait->since_ns)
		record_wait(wait, now ? now : bpf_ktime_get_ns(), prev_cgroup_id, stats);
	return 0;
}

/* A task alone on its CPU may not be switched out for seconds; the scheduler tick (an hrtimer)
 * charges its stint so far, so a read lags by about a tick. Runs in hardirq context, where
 * `current` is the interrupted task. */
SEC("raw_tp/hrtimer_expire_entry")
int BPF_PROG(ebb_hrtimer_expire_entry)
{
	__u64 cgroup_id = bpf_get_current_cgroup_id();
	struct ebb_cgroup_stats *stats = bpf_map_lookup_elem(&tracked, &cgroup_id);
	struct task_sample sample;

	if (!stats)
		return 0;
	sample_current(&sample);
	charge_stint(bpf_get_current_task(), &sample, stats);
	return 0;
}

static __always_inline int stall_begin(__u32 kind)
{
	__u64 cgroup_id = bpf_get_current_cgroup_id();
	struct stall_key key = { .tid = (__u32)bpf_get_current_pid_tgid(), .kind = kind };
	struct wait_start start = { .cgroup_id = cgroup_id };

	if (!bpf_map_lookup_elem(&tracked, &cgroup_id))
		return 0;
	start.since_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&reclaim_starts, &key, &start, BPF_ANY);
	return 0;
}

static __always_inline int stall_end(__u32 kind)
{
	struct stall_key key = { .tid = (__u32)bpf_get_current_pid_tgid(), .kind = kind };
	struct wait_start *start = bpf_map_lookup_elem(&reclaim_starts, &key);
	struct ebb_cgroup_stats *stats;
	__u64 cgroup_id, now, stalled;

	if (!start)
		return 0;
	now = bpf_ktime_get_ns();
	cgroup_id = start->cgroup_id;
	stalled = now - start->since_ns;
	bpf_map_delete_elem(&reclaim_starts, &key);
	stats = bpf_map_lookup_elem(&tracked, &cgroup_id);
	if (!stats)
		return 0;
	stats->reclaim_stall_ns += stalled;
	/* Reclaim often stalls a task in many short passes, none of them long; what starves it is
	 * their sum, so the event is on the stall within a window, one pass or many. */
	if (now - stats->stall_window_start_ns > stall_window_ns) {
		stats->stall_window_start_ns = now - stalled;
		stats->stall_window_ns = 0;
	}
	stats->stall_window_ns += stalled;
	if (stats->stall_window_ns > stall_event_threshold_ns) {
		send_event(EBB_EVENT_RECLAIM_STALL, cgroup_id, stats->stall_window_ns, now);
		stats->stall_window_start_ns = now;
		stats->stall_window_ns = 0;
	}
	return 0;
}

SEC("raw_tp/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(ebb_memcg_reclaim_begin)
{
	return stall_begin(STALL_MEMCG_RECLAIM);
}

SEC("raw_tp/mm_vmscan_memcg_reclaim_end")
int BPF_PROG(ebb_memcg_reclaim_end)
{
	return stall_end(STALL_MEMCG_RECLAIM);
}

SEC("raw_tp/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(ebb_direct_reclaim_begin)
{
	return stall_begin(STALL_DIRECT_RECLAIM);
}

SEC("raw_tp/mm_vmscan_direct_reclaim_end")
int BPF_PROG(ebb_direct_reclaim_end)
{
	return stall_end(STALL_DIRECT_RECLAIM);
}

static __always_inline void count_episode(__u64 cgroup_id, __u32 kind)
{
	struct ebb_cgroup_stats *stats = bpf_map_lookup_elem(&tracked, &cgroup_id);

	if (!stats)
		return;
	if (kind == EBB_EVENT_OOM_KILL)
		stats->oom_kills++;
	else
		stats->throttle_episodes++;
	send_event(kind, cgroup_id, 0, bpf_ktime_get_ns());
}

/* The victim, not the task that ran out of memory: oc->chosen is set by then. */
SEC("kprobe/oom_kill_process")
int BPF_KPROBE(ebb_oom_kill_process, struct oom_control *oc)
{
	count_episode(task_cgroup_id(BPF_CORE_READ(oc, chosen)), EBB_EVENT_OOM_KILL);
	return 0;
}

/* One call per CPU run queue of the group that ran out of quota in this period. */
SEC("kprobe/throttle_cfs_rq")
int BPF_KPROBE(ebb_throttle_cfs_rq, struct cfs_rq *cfs_rq)
{
	count_episode(BPF_CORE_READ(cfs_rq, tg, css.cgroup, kn, id), EBB_EVENT_THROTTLED);
	return 0;
}
