/* orbit_bench_ledger: the Ephemeris benchmark ("orbit-bench ledger").
 *
 * Starts 3 orbit-root replicas (fsync on: raft's libuv backend always
 * fsyncs) as child processes with data directories in a fresh /tmp
 * directory and free 127.0.0.1 ports, waits (bounded) for a leader, then:
 * 1. throughput: for each proposer count P, P threads (each its own
 *    synchronous orbit_ledger_client) — or, with conns C > 0, P proposers
 *    pipelined over C orbit_ledger_pipe connections, each proposer with one
 *    proposal in flight — propose placements of distinct
 *    capsules on one of 10,000 nodes with a node_fits precondition for
 *    `seconds`; commitments/s counts COMMITTED outcomes only; latency
 *    p50/p99 over those; conflicts, invalid outcomes and errors (no outcome
 *    within the call timeout) are reported;
 * 2. failover: 16 proposers run, the leader is killed with SIGKILL, and
 *    the time from the kill to the first commitment acknowledged after the
 *    old leader was reaped (necessarily by the new leader) is reported;
 *    the killed replica is then restarted and caught up;
 * 3. restart: proposers fill the ledger until it holds restart_entries
 *    commitments (or fill_timeout_s passes: the count reached is
 *    reported), one follower is stopped with SIGTERM and restarted, and the
 *    time from its start until it answers status with the leader's applied
 *    index is reported.
 * Every wait is bounded; every child is stopped at the end (SIGTERM, then
 * SIGKILL after 5 s).
 *
 * Thread rules: orbit_bench_ledger_run is called from one thread; it starts
 * and joins its own proposer threads (zsys_init is called first). */
#ifndef ORBIT_BENCH_LEDGER_H
#define ORBIT_BENCH_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORBIT_BENCH_LEDGER_COUNTS_MAX    8
#define ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX 8

typedef struct {
    uint32_t proposers[ORBIT_BENCH_LEDGER_COUNTS_MAX]; /* default 1, 16, 256 */
    size_t nproposers;
    uint32_t seconds;            /* per throughput run (default 10) */
    uint32_t failover_proposers; /* default 16; 0 = skip the failover phase */
    uint32_t restart_entries;    /* commitments before the restart (default 1000000; 0 = skip) */
    uint32_t fill_proposers;     /* proposers filling the ledger (default 256) */
    uint32_t fill_timeout_s;     /* bound on filling (default 600) */
    uint32_t nodes;              /* nodes the placements go to (default 10000) */
    uint32_t conns;              /* 0: a thread and synchronous client per proposer;
                                    C: the proposers pipelined over C connections
                                    (orbit_ledger_pipe, one thread each) */
    const char *bindir;          /* NULL: next to this executable */
    const char *root_args;       /* extra orbit-root flags, space-separated (NULL: none) */
    bool keep_logs;              /* keep the data and logs (path printed) */
    volatile const int *stop;    /* when *stop becomes true, end early (may be NULL) */
} orbit_bench_ledger_cfg_t;

typedef struct {
    uint32_t proposers;
    double window_s;
    uint64_t committed, conflicts, invalid, errors;
    double per_s;          /* committed / window */
    double p50_ms, p99_ms; /* of committed proposals; -1 when none */
} orbit_bench_ledger_run_t;

typedef struct {
    double leader_s;      /* from the start of the replicas to a known leader */
    double request_bytes; /* mean packed size of a propose request */
    orbit_bench_ledger_run_t runs[ORBIT_BENCH_LEDGER_COUNTS_MAX];
    size_t nruns;
    /* failover (-1: not measured) */
    double failover_ms; /* kill to first commitment acknowledged by the new leader */
    double election_ms; /* kill to a new leader reported by a survivor's status */
    unsigned old_leader, new_leader;
    /* restart (-1: not measured) */
    uint64_t filled; /* commitments in the ledger at the restart */
    double fill_s, fill_per_s;
    uint64_t target_index;  /* the leader's applied index the restarted replica reached */
    double restart_ms;      /* replica start to status with the leader's applied index */
    double first_answer_ms; /* replica start to its first status answer */
    char error[256];        /* empty on success */
    char dir[256];          /* data and logs (kept on error or with keep_logs) */
} orbit_bench_ledger_result_t;

/* Fill c with the defaults above. */
/* Split args (space-separated words, at most ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX)
 * into out[] (NULL-terminated), pointing into buf. -1 with a reason in err
 * when there are too many words or args does not fit buf. */
int orbit_bench_ledger_split_args(const char *args, char *buf, size_t buflen,
                                  char *out[ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX + 1], char *err,
                                  size_t errlen);

void orbit_bench_ledger_cfg_default(orbit_bench_ledger_cfg_t *c);

/* Parse "N[,N...]" (each in 1..4096, at most ORBIT_BENCH_LEDGER_COUNTS_MAX)
 * into c->proposers.
 * Errors: ORBIT_EINVAL (err says why). */
int orbit_bench_ledger_parse_counts(const char *s, orbit_bench_ledger_cfg_t *c, char *err,
                                    size_t errlen);

/* Run the whole benchmark and fill *r (r->error says what went wrong when
 * the result is partial).
 * Errors: ORBIT_ENOTFOUND (orbit-root missing), ORBIT_EIO (ports, fork,
 * directories, a child died), ORBIT_ETIMEDOUT (no leader, no catch-up). */
int orbit_bench_ledger_run(const orbit_bench_ledger_cfg_t *c, orbit_bench_ledger_result_t *r);

/* Print the result as a table, or as one JSON object, on stdout. */
void orbit_bench_ledger_print(const orbit_bench_ledger_cfg_t *c,
                              const orbit_bench_ledger_result_t *r, bool json);

#endif
