/* orbit_bench_tree: the telemetry-tree benchmark ("orbit-bench tree").
 *
 * For one leaf count it starts, as child processes of the built binaries,
 * one orbit-root, rack shards (one per leaves_per_rack_shard leaves, at
 * least 2), zone shards (one per racks_per_zone rack shards, at least 1)
 * and one orbit-sim per zone feeding that zone's rack shards, all on free
 * 127.0.0.1 ports. It waits (bounded) until the root's summary counts every
 * leaf alive, lets the tree settle for two intervals, then measures over
 * `seconds`:
 * - root-view freshness: p50/p99 of the row ages (leaf sample to root
 *   apply) from the difference of two row_age_hist snapshots;
 * - root messages/s: the difference of root_reports over the root's uptime
 *   difference, expected to be zone shards / report interval whatever the
 *   leaf count;
 * - the lowest alive count seen during the window;
 * - CPU (% of one core) and RSS of each role.
 * Ledger entries caused by telemetry are not measured: there is no ledger
 * yet, and the result says so. Every process is stopped at the end
 * (SIGTERM, SIGKILL after 5 s), whatever happened.
 *
 * Thread rules: the caller's thread. */
#ifndef ORBIT_BENCH_TREE_H
#define ORBIT_BENCH_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORBIT_BENCH_TREE_COUNTS_MAX 16

typedef struct {
    uint32_t leaves[ORBIT_BENCH_TREE_COUNTS_MAX]; /* leaf counts, one run each */
    size_t nleaves;
    uint32_t leaf_interval_ms;      /* default 1000 */
    uint32_t report_interval_ms;    /* default 1000 */
    uint32_t seconds;               /* measurement window (default 10) */
    uint32_t leaves_per_rack_shard; /* default 5000 */
    uint32_t racks_per_zone;        /* default 10 */
    uint32_t converge_timeout_s;    /* 0: 30 s + 1 s per 2,000 leaves */
    const char *bindir;             /* NULL: next to this executable */
    bool keep_logs;                 /* keep the children's logs (path printed) */
    volatile const int *stop;       /* when *stop becomes true, end early (may be NULL) */
} orbit_bench_tree_cfg_t;

typedef struct {
    char name[8]; /* "sims", "racks", "zones", "root" */
    uint32_t procs;
    double cpu_pct;     /* % of one core over the window, all processes of the role */
    uint64_t rss_bytes; /* sum at the end of the window */
} orbit_bench_role_t;

typedef struct {
    uint32_t leaves, rack_shards, zone_shards, sims;
    bool converged;
    double converge_s;
    uint64_t alive_min; /* lowest alive count during the window */
    double window_s;
    uint64_t rows;         /* rows applied at the root during the window */
    double p50_ms, p99_ms; /* -1: no row applied */
    double root_msgs_per_s, expected_msgs_per_s;
    orbit_bench_role_t roles[4];
    char error[256]; /* empty on success */
    char logdir[256];
} orbit_bench_tree_result_t;

/* Fill c with the defaults above (and leaves = 1000, 10000, 100000). */
void orbit_bench_tree_cfg_default(orbit_bench_tree_cfg_t *c);

/* Run the benchmark for c->leaves[i] and fill *r (r->error says what went
 * wrong when the result is partial).
 * Errors: ORBIT_ENOTFOUND (a binary is missing), ORBIT_EIO (ports, fork,
 * log directory, a child died), ORBIT_ETIMEDOUT (the root never counted
 * every leaf alive, or stopped answering). */
int orbit_bench_tree_run(const orbit_bench_tree_cfg_t *c, size_t i, orbit_bench_tree_result_t *r);

/* Print the results as a table, or as one JSON object, on stdout. */
void orbit_bench_tree_print(const orbit_bench_tree_cfg_t *c, const orbit_bench_tree_result_t *r,
                            size_t n, bool json);

#endif
