/* orbit_bench_sched: the scheduling benchmark ("orbit-bench sched") and the
 * ledger invariant check ("orbit-bench check").
 *
 * One run per scheduler count S (default 1 and 4), each on a fresh cluster
 * of child processes in a new /tmp directory on free 127.0.0.1 ports: 3
 * orbit-root replicas, 2 rack shards reporting to them, and one orbit-sim
 * with `nodes` simulated leaves (no reboots, no GPU events: capacity stays
 * put). Once every leaf is alive in the root view, the principal "bench"
 * gets a quota grant covering everything, S orbit-sched processes start
 * (reaper off) and sync their views, and then the missions are submitted:
 * `capsules` capsules of 250 millicores and 256 MiB in modules of at most
 * 1,000, of which `gangs` gang modules of 8 capsules with one GPU each.
 * Measured from the first submission: the time until every capsule is
 * placed (polled every 20 ms as the principal's charged CPU in the ledger),
 * placements/s = capsules / that time, and from the schedulers' stats files
 * their conflicts and retries. Then the invariant check below.
 *
 * The check (also alone, against any cluster): a linearizable snapshot of
 * the ledger loaded into a scheduling view (orbit_sched_view.h) joined with
 * every row of the root view: nodes whose committed envelopes exceed the
 * capacity the view reports (CPU, memory, healthy GPUs), identities bound
 * to two capsules or capsules with two identities, gangs whose placed
 * members differ from their module's count, and modules not at their
 * count. It also counts placements by the status of their node (alive,
 * suspect, down, unreachable or never seen), for tests of the reaper.
 *
 * Thread rules: called from one thread. */
#ifndef ORBIT_BENCH_SCHED_H
#define ORBIT_BENCH_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORBIT_BENCH_SCHED_COUNTS_MAX 8

typedef struct {
    uint32_t schedulers[ORBIT_BENCH_SCHED_COUNTS_MAX]; /* default 1, 4 */
    size_t nschedulers;
    uint32_t nodes;           /* simulated leaves (default 10000) */
    uint32_t capsules;        /* capsules to place (default 40000) */
    uint32_t gangs;           /* gang modules of 8 one-GPU capsules (default 10) */
    uint32_t workers;         /* proposals in flight per scheduler (default 512) */
    uint32_t refresh_ms;      /* the schedulers' telemetry refresh period (default 1000) */
    uint32_t place_timeout_s; /* bound on waiting for all placed (default 300) */
    const char *bindir;
    bool keep_logs;
    volatile const int *stop;
} orbit_bench_sched_cfg_t;

typedef struct {
    uint64_t placements, identities, modules, modules_at_count;
    uint64_t nodes, nodes_seen;
    uint64_t over_capacity;  /* nodes over their capacity */
    uint64_t identity_twice; /* identities bound twice or capsules with two */
    uint64_t gangs, gangs_broken;
    /* Where placements are, by their node's status in the view (not
     * invariants: what a test of the reaper looks at). */
    uint64_t on_alive, on_suspect, on_down, on_unreachable; /* unreachable includes unseen */
    uint64_t ledger_index;
    char error[256];
} orbit_bench_sched_check_t;

typedef struct {
    uint32_t schedulers;
    uint64_t placed; /* capsules placed when the wait ended */
    double first_ms; /* submission to the first placement (-1: none) */
    double all_ms;   /* submission to all placed (-1: not reached) */
    double per_s;    /* placements/s over all_ms (or over the wait when not reached) */
    uint64_t conflicts, retries, proposals; /* summed over the schedulers' stats */
    /* CPU time (user + system) spent from submission to all placed, per
     * capsule placed, in microseconds: all schedulers together, all root
     * replicas together, the simulator and shards (-1: not measured) */
    double sched_cpu_us, root_cpu_us, rest_cpu_us;
    orbit_bench_sched_check_t check;
    char error[256];
    char dir[256];
} orbit_bench_sched_run_t;

void orbit_bench_sched_cfg_default(orbit_bench_sched_cfg_t *c);

/* Parse "N[,N...]" (1..64 each) into c->schedulers.
 * Errors: ORBIT_EINVAL (reason in err). */
int orbit_bench_sched_parse_counts(const char *s, orbit_bench_sched_cfg_t *c, char *err,
                                   size_t errlen);

/* One run with c->schedulers[i] schedulers. Errors: ORBIT_EIO, ORBIT_ETIMEDOUT,
 * ORBIT_ENOTFOUND (a binary), ORBIT_ENOMEM; r->error says which. */
int orbit_bench_sched_run(const orbit_bench_sched_cfg_t *c, size_t i, orbit_bench_sched_run_t *r);

/* The invariant check against the root replicas at roots. ORBIT_OK when
 * the check ran (its findings are in *k); errors: ORBIT_ETIMEDOUT,
 * ORBIT_EIO, ORBIT_ENOMEM (k->error says why). */
int orbit_bench_sched_check(const char *roots, int timeout_ms, orbit_bench_sched_check_t *k);

/* True when a check found nothing wrong. */
bool orbit_bench_sched_check_ok(const orbit_bench_sched_check_t *k);

void orbit_bench_sched_print(const orbit_bench_sched_cfg_t *c, const orbit_bench_sched_run_t *r,
                             size_t n, bool json);
void orbit_bench_sched_check_print(const orbit_bench_sched_check_t *k, bool json);

#endif
