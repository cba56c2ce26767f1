/* orbit_bench_ingest: the shard ingest benchmark ("orbit-bench ingest").
 *
 * In process (default): pre-encoded LeafBatch frames (orbit_bench_frames)
 * for `nodes` nodes are fed to orbit_shard_nodes_ingest_frame — decode,
 * dedup, validate, apply — on the calling thread. A run loads round 0 (a
 * full state per node) into a fresh table untimed, then times rounds
 * 1..rounds-1 (deltas, and a full state every full_every rounds); runs
 * repeat until `seconds` of timed work, at least 3, and the median rate is
 * reported. Memory: a fresh table is filled with `mem_nodes` nodes (a full
 * state then two delta rounds each) and the growth is reported three ways:
 * orbit_shard_nodes_heap_bytes, malloc'd bytes (mallinfo2) and RSS.
 *
 * Over the socket (`socket`): a real shard daemon (orbit_shard_new/run in a
 * forked child) on tcp loopback, fed by a DEALER in this process that keeps
 * up to `window` frames in flight; the frames are replayed under a new
 * incarnation each pass (so the shard sees a reboot and fresh deltas, not
 * duplicates). Reports acknowledged deltas per second end to end.
 *
 * Thread rules: the caller's thread; the socket variant forks before it
 * creates any ZeroMQ context in this process. */
#ifndef ORBIT_BENCH_INGEST_H
#define ORBIT_BENCH_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t nodes;           /* fleet of the throughput runs (default 10,000) */
    uint32_t seconds;         /* timed seconds (default 5) */
    uint32_t batch;           /* node messages per frame (default 64) */
    uint32_t rounds;          /* rounds per run, the full one included (default 31) */
    uint32_t full_every;      /* default 30, as orbit-sim */
    uint32_t mem_nodes;       /* fleet of the memory figure (default 100,000; 0 = skip) */
    uint32_t window;          /* socket variant: frames in flight (default 256) */
    double gpu_fraction;      /* default 0.125 */
    uint64_t seed;            /* default 1 */
    bool socket;              /* run the socket variant instead */
    volatile const int *stop; /* when set and *stop becomes true, end early (may be NULL) */
} orbit_bench_ingest_cfg_t;

typedef struct {
    /* throughput */
    uint32_t runs;
    uint64_t deltas_per_run;                /* node messages timed per run (or in all, socket) */
    double rate_median, rate_min, rate_max; /* node messages per second */
    double full_share;                      /* share of timed messages that were full states */
    double bytes_per_message; /* mean encoded size, envelope and batch framing included */
    uint64_t not_applied;     /* timed messages not applied (must be 0) */
    double seconds;           /* socket: wall time from first send to last ack */
    /* memory (in process only; 0 when skipped or unavailable) */
    uint32_t mem_nodes;
    double heap_per_node;   /* orbit_shard_nodes_heap_bytes / nodes */
    double malloc_per_node; /* mallinfo2 growth / nodes */
    double rss_per_node;    /* VmRSS growth / nodes */
} orbit_bench_ingest_result_t;

/* Fill c with the defaults above. */
void orbit_bench_ingest_cfg_default(orbit_bench_ingest_cfg_t *c);

/* Run the benchmark and fill *r.
 * Errors (with a one-line reason in err): ORBIT_EINVAL (bad configuration),
 * ORBIT_ENOMEM, ORBIT_EIO (socket variant: no port, fork failed, the shard
 * never answered), ORBIT_ETIMEDOUT (acks stopped arriving). */
int orbit_bench_ingest_run(const orbit_bench_ingest_cfg_t *c, orbit_bench_ingest_result_t *r,
                           char *err, size_t errlen);

/* Print *r as text or as one JSON object on stdout. */
void orbit_bench_ingest_print(const orbit_bench_ingest_cfg_t *c,
                              const orbit_bench_ingest_result_t *r, bool json);

#endif
