/* orbit_bench_plan: what one scheduler costs per capsule placed, in process
 * ("orbit-bench plan").
 *
 * One planner (orbit_sched_plan) and its scheduling view, with `nodes` alive
 * nodes (64 cores, 256 GiB, no GPUs) and `capsules` capsules in modules of
 * 1,000 (250 mCPU, 256 MiB, principal "bench" with a grant that never runs
 * out). Rounds run back to back; every action a round emits is answered
 * COMMITTED at once, as the ledger would (its binds too), handed back with
 * orbit_sched_plan_done, and its commitments are then delivered to the view
 * as a watch does: packed, decoded in an arena and applied in index order.
 * `observers` more views receive the same watch, as the views of other
 * schedulers placing nothing would.
 *
 * Timed: this thread's CPU time (CLOCK_THREAD_CPUTIME_ID) in the rounds, in
 * plan_done, in the scheduler's own watch (decode and apply) and in each
 * observer's; building and packing the answers is not timed. There is no
 * network, no ledger and no other process: the figures are the planner's
 * and the view's own cost, steady enough to compare two builds.
 *
 * Thread rules: the caller's thread. */
#ifndef ORBIT_BENCH_PLAN_H
#define ORBIT_BENCH_PLAN_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint32_t nodes;     /* default 10,000 */
    uint32_t capsules;  /* default 40,000 */
    uint32_t observers; /* views that only watch (default 3: four schedulers in all) */
    uint32_t window;    /* the planner's actions in flight at most (default 512) */
    uint64_t seed;      /* the planner's seed (default 1) */
} orbit_bench_plan_cfg_t;

typedef struct {
    uint64_t placed, rounds, actions, commitments;
    /* CPU microseconds per capsule placed */
    double round_us, done_us, watch_us, observer_us; /* observer_us: per observer */
    double total_s;                                  /* all timed CPU seconds */
    char error[256];                                 /* empty on success */
} orbit_bench_plan_result_t;

void orbit_bench_plan_cfg_default(orbit_bench_plan_cfg_t *c);

/* Run with c into *r (zeroed first). Errors: ORBIT_EINVAL (a zero count),
 * ORBIT_ENOMEM, ORBIT_ECORRUPT (the view refused a commitment, or rounds
 * stopped placing before every capsule was placed); r->error says which. */
int orbit_bench_plan_run(const orbit_bench_plan_cfg_t *c, orbit_bench_plan_result_t *r);

/* Print r as a table, or as one JSON object when json. */
void orbit_bench_plan_print(const orbit_bench_plan_cfg_t *c, const orbit_bench_plan_result_t *r,
                            bool json);

#endif
