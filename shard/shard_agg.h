/* shard_agg: the associative summary of a set of nodes (counts by status,
 * resource sums, GPUs by health, memory-pressure histogram), how one node
 * contributes to it, how summaries merge, and their wire form.
 *
 * Only alive and suspect nodes contribute resources, GPUs and pressure; down
 * and unreachable nodes are counted and nothing else. Merging is field-wise
 * addition, so rack -> zone -> root equals aggregating every node flat. */
#ifndef ORBIT_SHARD_AGG_H
#define ORBIT_SHARD_AGG_H

#include <stdbool.h>
#include <stdint.h>

#include "orbit.pb-c.h"
#include "orbit_node.h"

typedef enum {
    ORBIT_ALIVE = 0,
    ORBIT_SUSPECT = 1,
    ORBIT_DOWN = 2,
    ORBIT_UNREACHABLE = 3,
    ORBIT_STATUS_COUNT
} orbit_status_t;

/* Memory-pressure (PSI some avg10) histogram buckets, upper bounds in
 * hundredths of a percent: 0, <=1 %, <=5 %, <=10 %, <=25 %, <=50 %, more. */
#define ORBIT_PRESSURE_BUCKETS 7

typedef struct {
    uint64_t nodes[ORBIT_STATUS_COUNT];
    uint64_t cpu_capacity_m, cpu_used_m;
    uint64_t mem_capacity, mem_used;
    uint64_t gpu_capacity;
    uint64_t gpus[ORBIT_GPU_HEALTH_COUNT];
    uint64_t pressure_hist[ORBIT_PRESSURE_BUCKETS];
    uint64_t pressure_unavailable;
} orbit_agg_t;

/* Storage for the packed arrays of one Orbit__Summary built by orbit_agg_to_pb. */
typedef struct {
    uint64_t nodes[ORBIT_STATUS_COUNT];
    uint64_t gpus[ORBIT_GPU_HEALTH_COUNT];
    uint64_t hist[ORBIT_PRESSURE_BUCKETS];
} orbit_agg_pb_store_t;

const char *orbit_status_name(int status);
/* Parse "alive" ... "unreachable"; -1 if unknown. */
int orbit_status_parse(const char *s);

/* Bucket index of a pressure value (hundredths of a percent). */
int orbit_pressure_bucket(uint32_t mem_some);

/* Add one node in the given status to agg. */
void orbit_agg_add_node(orbit_agg_t *agg, orbit_status_t status, const orbit_node_state_t *s);
/* dst += src. */
void orbit_agg_merge(orbit_agg_t *dst, const orbit_agg_t *src);
/* dst += src as seen when src's whole subtree is unreachable: every node
 * counted unreachable, nothing else. */
void orbit_agg_merge_unreachable(orbit_agg_t *dst, const orbit_agg_t *src);
/* Number of nodes in agg. */
uint64_t orbit_agg_total(const orbit_agg_t *agg);
bool orbit_agg_equal(const orbit_agg_t *a, const orbit_agg_t *b);

/* Point pb (initialised by the caller) at agg's values; arrays live in st,
 * which must outlive pb. */
void orbit_agg_to_pb(const orbit_agg_t *agg, Orbit__Summary *pb, orbit_agg_pb_store_t *st);
/* Read a decoded summary; arrays longer than ours (a newer minor version)
 * are rejected, shorter ones read as zeros.
 * Errors: ORBIT_EINVAL (agg untouched). */
int orbit_agg_from_pb(orbit_agg_t *agg, const Orbit__Summary *pb);

#endif
