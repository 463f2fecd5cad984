/* Layouts shared by probes.bpf.c and daemon/probes: map values and ring-buffer records.
 * Plain C with fixed-width fields so both compilers agree on every offset. */
#ifndef EBB_BPF_PROBES_ABI_H
#define EBB_BPF_PROBES_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define EBB_LATENCY_BUCKETS 32 /* bucket i holds [2^i, 2^(i+1)) ns; the last one is open */

/* Value of the "tracked" per-CPU hash, keyed by cgroup v2 id. User space inserts a zeroed
 * entry to start measuring a cgroup and sums the per-CPU copies to read it. */
struct ebb_cgroup_stats {
	__u64 cpu_ns;
	__u64 runq_count;
	__u64 runq_sum_ns;
	__u64 runq_buckets[EBB_LATENCY_BUCKETS];
	__u64 involuntary_switches;
	__u64 reclaim_stall_ns;
	__u64 oom_kills;
	__u64 throttle_episodes;
	/* Kernel side only (user space does not sum them): this CPU's reclaim stall since
	 * stall_window_start_ns, which becomes a reclaim_stall event once it passes the threshold. */
	__u64 stall_window_start_ns;
	__u64 stall_window_ns;
};

enum ebb_event_kind {
	EBB_EVENT_OOM_KILL = 0,
	EBB_EVENT_RUNQ_LATENCY = 1,
	EBB_EVENT_RECLAIM_STALL = 2,
	EBB_EVENT_THROTTLED = 3,
	EBB_EVENT_KINDS = 4,
};

/* One ring-buffer record. */
struct ebb_event {
	__u64 timestamp_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 cgroup_id;
	__u64 value_ns; /* latency or stall length; 0 for OOM kills and throttling */
	__u32 kind;     /* enum ebb_event_kind */
	__u32 reserved;
};

#endif
