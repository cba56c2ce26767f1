/* orbit_sim: the simulator engine behind orbit-sim — the nodes of an
 * orbit_sim_model sent to rack shards over a few DEALER sockets, one
 * leaf_link per socket, on a czmq zloop in the calling thread.
 *
 * Routing with shard endpoints (cfg.shards): node i belongs to rack k (see
 * orbit_sim_model); rack k goes to shard endpoint k mod n, so each rack's
 * nodes reach one shard. Socket j connects to endpoint j mod n; an
 * endpoint's nodes are dealt round-robin over its sockets. No failover.
 *
 * Routing by discovery (cfg.roots): every rack <prefix>-r<k> is homed like
 * an orbit-leaf with --root (leaf_agent.h, leaf_home.h), one DEALER socket
 * and one leaf_link per rack: one topology read (stale) serves every rack;
 * each rack's link goes to its first candidate
 * (orbit_topology_rack_endpoints), fails over to the next when silent or
 * told "wrong shard", returns to the first after
 * ORBIT_LEAF_AGENT_RETURN_INTERVALS, and re-homes when a read (prompted by
 * an ack epoch above the held one, after a random delay in [0, interval))
 * changes its first candidate. A rack whose first candidate did not change
 * keeps its socket. Nodes keep their seq and incarnation across all of it.
 * Until the first read names shards nothing is sent; reads are retried
 * every interval with one warning per 10 s.
 *
 * Cadence: every node is stepped and queued once per interval, node i at
 * offset i x interval / N within it, so the load is spread evenly; queued
 * nodes are flushed every pacing tick (interval / 100, 1..20 ms). Acks are
 * drained as they arrive, and a RESYNC verdict is answered at once with a
 * full state. When the loop falls more than an interval behind (the machine
 * is saturated), whole intervals are skipped and counted in `lagged` rather
 * than sent in a burst.
 *
 * Memory: the model's 40 bytes per node, 6 bytes of routing per node, and
 * each link's per-node state (see leaf_link.h: about 1 KiB per node, plus
 * 1.7 KiB per GPU node for its two GPU arrays).
 *
 * Thread rules: one thread from new to destroy; it owns the sockets. */
#ifndef ORBIT_SIM_H
#define ORBIT_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "orbit_sim_model.h"

#define ORBIT_SIM_SOCKETS_MAX    256
#define ORBIT_SIM_ENDPOINTS_MAX  256
#define ORBIT_SIM_ROOT_RACKS_MAX 1000 /* --root: one socket per rack */

typedef struct {
    orbit_sim_model_cfg_t model; /* the fleet; model.interval_ms is the send interval */
    const char *shards;          /* comma-separated shard endpoints; copied */
    const char *roots;           /* or: comma-separated root endpoints (discovery); copied */
    uint32_t sockets;            /* DEALER sockets; 0: orbit_sim_default_sockets; raised to the
                                    number of endpoints (each endpoint needs one of its own);
                                    ignored with roots (one per rack) */
    uint32_t full_every;         /* every K-th send of a node is full; 0: leaf_link's default */
    uint32_t duration_ms;        /* stop after this long; 0: until SIGINT/SIGTERM */
    uint32_t stats_ms;           /* period of the info-level stats line; 0: none */
    const char *ledger;          /* root endpoints to learn placements from (the capsules the
                                    nodes report RUNNING, orbit_sim_capsules.h); NULL: no
                                    capsules. Copied. */
} orbit_sim_cfg_t;

/* Counters, never reset: the simulator's own and the sum over its links. */
typedef struct {
    uint64_t steps, reboots, gpu_events, gpu_recovered;
    uint64_t lagged;  /* intervals skipped because the loop fell behind */
    uint64_t batches; /* LeafBatch messages sent */
    uint64_t sent;    /* node messages sent (fulls + deltas) */
    uint64_t fulls;   /* of which full states */
    uint64_t acked;   /* node verdicts OK or DUPLICATE */
    uint64_t overloaded, resync, rejected, wrong_shard;
    uint64_t send_dropped; /* node messages not sent because a socket would block */
    uint64_t silent;       /* node sends never acknowledged */
    uint64_t link_errors;  /* flush or receive errors other than would-block */
    /* Discovery (roots) only. */
    uint64_t topology_epoch; /* epoch of the topology in use */
    uint64_t fetches, fetch_failures, refetches, stale_fetches;
    uint64_t rehomes;   /* rack links moved to a new preferred shard by a topology change */
    uint64_t failovers; /* rack links moved to the next candidate (silent, wrong shard) */
    uint64_t returns;   /* rack links moved back to their preferred shard */
    /* Capsules (cfg.ledger) only. */
    uint64_t capsules;        /* capsules reported RUNNING now */
    uint64_t capsule_updates; /* change messages from the placement reader */
} orbit_sim_stats_t;

typedef struct orbit_sim orbit_sim_t;

/* One socket per 1000 leaves, at least 1, at most 16. */
uint32_t orbit_sim_default_sockets(uint32_t leaves);

/* Build the model, open and connect the sockets (connections complete in
 * the background) and register every node with its link. Nothing is sent
 * before orbit_sim_run.
 * With roots nothing is connected before the first topology read (in
 * orbit_sim_run).
 * Returns NULL with a one-line reason in err: invalid model configuration,
 * no or malformed endpoint, more than ORBIT_SIM_ENDPOINTS_MAX endpoints,
 * both or neither of shards and roots, more than ORBIT_SIM_ROOT_RACKS_MAX
 * racks with roots, sockets out of range, out of memory. */
orbit_sim_t *orbit_sim_new(const orbit_sim_cfg_t *cfg, char *err, size_t errlen);

/* Run the loop until SIGINT/SIGTERM or duration_ms. Logs the stats line
 * every stats_ms and once at the end. Returns 0. */
int orbit_sim_run(orbit_sim_t *s);

/* Current counters. */
void orbit_sim_stats(const orbit_sim_t *s, orbit_sim_stats_t *out);

/* With roots: the endpoint rack k's link uses now (NULL: none yet, or no
 * such rack, or shard mode). Valid until the loop runs again. */
const char *orbit_sim_rack_endpoint(const orbit_sim_t *s, uint32_t rack);

/* Close the sockets and free everything; NULL-safe, clears *ps. */
void orbit_sim_destroy(orbit_sim_t **ps);

#endif
