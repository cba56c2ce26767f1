/* orbit_sim_model: a seeded model of a fleet of simulated nodes — fixed
 * shapes (cores, memory, GPUs with UUIDs), usage as bounded random walks,
 * pressure, GPU temperature/utilisation walks, GPU health events that clear
 * later, and reboots. Shared by orbit-sim (which sends the states) and
 * orbit-bench (which pre-encodes them).
 *
 * Determinism: a node's shape depends only on (seed, index), so the capacity
 * totals of a fleet are known without running it (orbit_sim_model_totals).
 * Each node has its own PRNG stream, so the sequence of states a node goes
 * through depends only on (seed, index, number of steps, the times passed),
 * never on the order in which nodes are stepped.
 *
 * Memory: 40 bytes per node plus 12 per GPU (a GPU node has 8), so 100,000
 * nodes with 12.5 % GPU nodes take about 5.2 MB.
 *
 * Thread rules: a model belongs to one thread. */
#ifndef ORBIT_SIM_MODEL_H
#define ORBIT_SIM_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "orbit_node.h"

#define ORBIT_SIM_PREFIX_MAX     40 /* bytes of --prefix, so every name fits */
#define ORBIT_SIM_GPUS_PER_NODE  8
#define ORBIT_SIM_NODES_MAX      10000000u
#define ORBIT_SIM_DEFAULT_PREFIX "sim"
#define ORBIT_SIM_DEFAULT_ZONE   "zone-1"

typedef struct {
    uint32_t nodes;             /* 1..ORBIT_SIM_NODES_MAX */
    uint32_t racks;             /* 1..nodes; node i is in rack i * racks / nodes */
    const char *prefix;         /* node names <prefix>-<i>, racks <prefix>-r<k>; copied */
    const char *zone;           /* label zone=<zone>; copied */
    double gpu_fraction;        /* 0..1: share of nodes with 8 GPUs */
    uint64_t seed;              /* any value; equal seeds give equal fleets */
    uint32_t interval_ms;       /* time a step stands for (event rates, load averages) */
    double reboots_per_hour;    /* per node-hour; 0 disables reboots */
    double gpu_events_per_hour; /* per GPU-hour; 0 disables XID/ECC events */
} orbit_sim_model_cfg_t;

/* Capacity totals of a fleet (what a view summary must add up to). */
typedef struct {
    uint64_t nodes, gpu_nodes;
    uint64_t cpu_capacity_m, mem_capacity, gpu_capacity;
} orbit_sim_totals_t;

/* What one step did, for the caller's counters. */
typedef struct {
    bool rebooted;          /* new incarnation: the state is a fresh boot */
    uint32_t gpu_events;    /* GPU health events that started in this step */
    uint32_t gpu_recovered; /* events that cleared in this step */
} orbit_sim_step_t;

typedef struct orbit_sim_model orbit_sim_model_t;

/* Fill c with defaults: 1 node, 1 rack, prefix "sim", zone "zone-1", GPU
 * fraction 0.125, seed 1, 1000 ms, 2 reboots per node-hour, 0.2 GPU events
 * per GPU-hour. */
void orbit_sim_model_cfg_default(orbit_sim_model_cfg_t *c);

/* Check a configuration; on failure writes a one-line reason into err.
 * Errors: ORBIT_EINVAL (nodes or racks out of range, prefix not 1..40 bytes
 * of [A-Za-z0-9._-], zone not a valid label value, fraction or rates out
 * of range, interval 0). */
int orbit_sim_model_cfg_check(const orbit_sim_model_cfg_t *c, char *err, size_t errlen);

/* New model of c->nodes nodes in their initial state (not yet booted: the
 * first step boots them). cfg is copied.
 * Returns NULL on ENOMEM or an invalid configuration. */
orbit_sim_model_t *orbit_sim_model_new(const orbit_sim_model_cfg_t *cfg);
/* Free the model; NULL-safe, clears *pm. */
void orbit_sim_model_destroy(orbit_sim_model_t **pm);

uint32_t orbit_sim_model_nodes(const orbit_sim_model_t *m);
/* Rack index of node idx (idx < nodes). */
uint32_t orbit_sim_model_rack(const orbit_sim_model_t *m, uint32_t idx);
/* Write node idx's name into out (at least ORBIT_NAME_MAX bytes). */
void orbit_sim_model_name(const orbit_sim_model_t *m, uint32_t idx, char *out);

/* Capacity totals of the configured fleet, without building it. cfg must
 * pass orbit_sim_model_cfg_check. */
void orbit_sim_model_totals(const orbit_sim_model_cfg_t *cfg, orbit_sim_totals_t *t);

/* Advance node idx by one interval, sampled at wall-clock now_wall_ms, and
 * return its complete state. The first step of a node boots it: its
 * incarnation is now_wall_ms (so incarnations grow across simulator
 * restarts too); a reboot takes max(incarnation + 1, now_wall_ms).
 * The returned state is the model's scratch: valid until the next call on
 * this model, never to be freed or kept (copy it). *what (may be NULL)
 * tells what happened. idx must be < nodes. */
const orbit_node_state_t *orbit_sim_model_step(orbit_sim_model_t *m, uint32_t idx,
                                               int64_t now_wall_ms, orbit_sim_step_t *what);

/* Bytes of heap the model holds (for memory reports). */
size_t orbit_sim_model_heap_bytes(const orbit_sim_model_t *m);

#endif
