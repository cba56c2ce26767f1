/* orbit_bench_apply: the state machine apply benchmark ("orbit-bench apply").
 *
 * Opens a fresh ledger (orbit_ledger_open) in a new /tmp directory and
 * applies entries in process, on the calling thread, exactly as a replica
 * does: each entry (Orbit__Ledger__Entry) carries `batch` proposals, each a
 * Placement of a distinct capsule on one of `nodes` nodes with a node_fits
 * precondition and a client_id / request_id (as the proposers of
 * "orbit-bench ledger" make them: no principal, 250 mCPU and 512 MiB,
 * capacity at the ledger's bounds), from 256 clients in turn. Entry time
 * advances by time_step_ms per entry (default 5 ms).
 *
 * Timed: the CPU time of this thread (CLOCK_THREAD_CPUTIME_ID: user and
 * system, page faults included) in orbit_ledger_apply and
 * orbit_ledger_outcomes_free of each entry (the entry is packed before,
 * untimed), so that other processes on the machine do not disturb the
 * figure; proposals/s is the rate one core would sustain. The run ends after `proposals`
 * proposals or `seconds` of timed apply, whichever comes first (seconds 0:
 * no time bound). Reported: proposals/s and microseconds per proposal for
 * the whole run, for the "steady state" after the first `warmup` proposals
 * (by then the dedup table is at its bound, ORBIT_LEDGER_DEDUP_MAX, and
 * every entry prunes), and for each window of `window` proposals, so that
 * the growth of the cost with the ledger's size shows. Every proposal must
 * commit: a conflict or an invalid outcome is an error.
 *
 * Thread rules: the caller's thread. */
#ifndef ORBIT_BENCH_APPLY_H
#define ORBIT_BENCH_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORBIT_BENCH_APPLY_WINDOWS_MAX 64

typedef struct {
    uint32_t nodes;           /* default 10,000 */
    uint32_t batch;           /* proposals per entry (default 64) */
    uint32_t proposals;       /* proposals in all (default 500,000) */
    uint32_t seconds;         /* bound on timed apply, 0 = none (default 0) */
    uint32_t warmup;          /* proposals before the steady state (default 200,000) */
    uint32_t window;          /* proposals per reported window (default 100,000) */
    uint32_t time_step_ms;    /* entry time step (default 5) */
    volatile const int *stop; /* when set and *stop becomes true, end early (may be NULL) */
} orbit_bench_apply_cfg_t;

typedef struct {
    uint64_t from, to; /* proposals [from, to) */
    double us_per_proposal;
} orbit_bench_apply_window_t;

typedef struct {
    uint64_t proposals; /* applied */
    uint64_t entries;
    uint64_t committed, conflicts, invalid;
    double apply_s;   /* timed CPU seconds in all */
    double wall_s;    /* wall time of the whole run, entry building included */
    double per_s, us; /* whole run: proposals/s, µs per proposal */
    uint64_t steady_proposals;
    double steady_per_s, steady_us; /* after warmup; 0 when the run did not get there */
    orbit_bench_apply_window_t windows[ORBIT_BENCH_APPLY_WINDOWS_MAX];
    size_t nwindows;
    uint64_t ledger_index;   /* at the end */
    uint64_t dedup_entries;  /* at the end */
    uint64_t data_bytes;     /* size of data.mdb at the end */
    double entry_bytes;      /* mean packed entry size */
    uint64_t snapshot_bytes; /* a Raft snapshot's copy of the final state */
    double snapshot_ms;      /* wall time to make it */
    char error[256];         /* empty on success */
} orbit_bench_apply_result_t;

/* Fill c with the defaults above. */
void orbit_bench_apply_cfg_default(orbit_bench_apply_cfg_t *c);

/* Run the benchmark with c into *r (zeroed first). The ledger directory is
 * removed at the end. Returns ORBIT_OK, or an error with r->error set
 * (r then holds what was measured before it).
 * Errors: ORBIT_EINVAL (a zero count in c), ORBIT_EIO, ORBIT_ENOMEM, the
 * ledger's errors, ORBIT_ECORRUPT (an outcome that is not COMMITTED). */
int orbit_bench_apply_run(const orbit_bench_apply_cfg_t *c, orbit_bench_apply_result_t *r);

/* Print r as a table, or as one JSON object when json. */
void orbit_bench_apply_print(const orbit_bench_apply_cfg_t *c, const orbit_bench_apply_result_t *r,
                             bool json);

#endif
