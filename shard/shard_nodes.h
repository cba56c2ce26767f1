/* shard_nodes: a rack shard's table of its leaf nodes — ingest of delta
 * batches (decode, dedup by (incarnation, seq), gap detection, validation,
 * apply), the ingest budget, liveness (alive -> suspect -> down by missed
 * intervals), material-change tracking for upstream reports, and summaries.
 *
 * Re-homing away (discovery mode only, after orbit_shard_nodes_set_topology):
 * a node whose `rack` label names a rack this shard does not own, and that
 * has been silent for more than one of its intervals (two, against jitter:
 * see shard_nodes.c), is forgotten — removed
 * from the table and named in the next reports' `removed` list — never
 * marked suspect or down: it has moved to its rack's owner. Deltas are still
 * accepted from any leaf (a leaf whose owner is down fails over here); such
 * a node goes only once it is silent. Nodes without a rack label, and every
 * node in flag mode (no topology set), are never forgotten this way.
 *
 * Thread rules: one owner thread; nothing here blocks or does I/O. Times are
 * the caller's monotonic milliseconds. */
#ifndef ORBIT_SHARD_NODES_H
#define ORBIT_SHARD_NODES_H

#include <stdbool.h>
#include <stdint.h>

#include "orbit.pb-c.h"
#include "orbit_node.h"
#include "orbit_wire.h"
#include "shard_agg.h"

typedef struct {
    uint32_t suspect_missed;      /* intervals of silence before suspect (default 3) */
    uint32_t down_missed;         /* ... before down (default 10) */
    uint32_t default_interval_ms; /* for nodes that never said theirs */
    uint32_t ingest_limit;        /* deltas accepted per second; 0 = unlimited */
    uint64_t topology_epoch;      /* carried in every ack */
} orbit_shard_nodes_cfg_t;

/* Every reason a frame or delta was not applied, plus the happy counts. */
typedef struct {
    uint64_t frames, deltas, applied, full_states, reboots;
    uint64_t duplicates, gaps, unknown_nodes, stale_incarnations, invalid;
    uint64_t bad_envelope, bad_version, bad_type, bad_decode;
    uint64_t shed, nomem;
    uint64_t rehomed_away; /* nodes forgotten: rack not ours, and silent */
} orbit_shard_nodes_stats_t;

typedef struct orbit_shard_nodes orbit_shard_nodes_t;

/* New empty table for shard `id` (copied). NULL on ENOMEM or invalid id. */
orbit_shard_nodes_t *orbit_shard_nodes_new(const char *id, const orbit_shard_nodes_cfg_t *cfg);
/* Free the table; NULL-safe, clears *pn. */
void orbit_shard_nodes_destroy(orbit_shard_nodes_t **pn);

/* Decode one leaf frame (envelope + LeafBatch) with arena a, apply what is
 * valid and fill *ack (storage in a; reset the arena after sending). Every
 * rejected delta or frame is counted. Returns 0 when *ack should be sent, or
 * a negative code when the frame was unusable (nothing to answer: the batch
 * id is unknown).
 * Errors: ORBIT_ETRUNC, ORBIT_EMAGIC, ORBIT_EVERSION, ORBIT_ETYPE, ORBIT_EDECODE. */
int orbit_shard_nodes_ingest_frame(orbit_shard_nodes_t *n, const uint8_t *buf, size_t len,
                                   int64_t now_ms, orbit_arena_t *a, Orbit__LeafAck *ack);

/* Apply a decoded batch (the part of ingest_frame after decoding). */
int orbit_shard_nodes_ingest(orbit_shard_nodes_t *n, const Orbit__LeafBatch *b, int64_t now_ms,
                             orbit_arena_t *a, Orbit__LeafAck *ack);

/* Discovery mode: the topology epoch carried in acks from now on, and the
 * racks this shard owns (a set of rack names as keys; taken over: *racks is
 * cleared, and the table destroys it). racks NULL or *racks NULL: the racks
 * held are kept and only the epoch changes (before the first set: flag
 * mode, nothing is forgotten). */
void orbit_shard_nodes_set_topology(orbit_shard_nodes_t *n, uint64_t epoch, zhashx_t **racks);

/* Re-derive liveness at now_ms and forget nodes re-homed away (see above);
 * returns how many nodes changed status or were forgotten. */
uint32_t orbit_shard_nodes_tick(orbit_shard_nodes_t *n, int64_t now_ms);

/* Generation counter: bumped on every material change (status, free-capacity
 * bucket, GPU health, pressure bucket, capacity, labels, a capsule added,
 * gone, or changed in state or exit code). */
uint64_t orbit_shard_nodes_gen(const orbit_shard_nodes_t *n);

/* Fill rows (an arena array) with every node whose last material change is
 * newer than since_gen (0: all nodes), capsules included. *rows and its
 * contents live in a, but strings point into the table: pack before the next
 * ingest or tick.
 * Errors: ORBIT_ENOMEM. */
int orbit_shard_nodes_rows(const orbit_shard_nodes_t *n, uint64_t since_gen, orbit_arena_t *a,
                           Orbit__NodeRow ***rows, size_t *nrows);

/* Names of the nodes forgotten after since_gen (an arena array in a), for
 * ShardReport.removed. Errors: ORBIT_ENOMEM. */
int orbit_shard_nodes_removed(const orbit_shard_nodes_t *n, uint64_t since_gen, orbit_arena_t *a,
                              char ***names, size_t *count);
/* Every upstream has acknowledged generation acked: drop older tombstones. */
void orbit_shard_nodes_prune_removed(orbit_shard_nodes_t *n, uint64_t acked);
/* An upstream acknowledged below this generation may have missed a removal
 * whose tombstone was dropped (too many): send it a full report. */
uint64_t orbit_shard_nodes_removed_floor(const orbit_shard_nodes_t *n);

/* Summary of all nodes. */
void orbit_shard_nodes_summary(const orbit_shard_nodes_t *n, orbit_agg_t *agg);

size_t orbit_shard_nodes_count(const orbit_shard_nodes_t *n);
const orbit_shard_nodes_stats_t *orbit_shard_nodes_stats(const orbit_shard_nodes_t *n);

/* Status and state of one node; NULL if unknown. */
const orbit_node_state_t *orbit_shard_nodes_get(const orbit_shard_nodes_t *n, const char *name,
                                                orbit_status_t *status, int64_t *heard_ms);

/* Fill *detail (storage in a) for node name.
 * Errors: ORBIT_ENOTFOUND, ORBIT_ENOMEM. */
int orbit_shard_nodes_detail(const orbit_shard_nodes_t *n, const char *name, int64_t now_ms,
                             orbit_arena_t *a, Orbit__NodeDetail **detail);

/* Bytes of heap the whole table holds in its entries and GPU arrays (not
 * counting the hash table's own overhead), for the memory benchmark. */
size_t orbit_shard_nodes_heap_bytes(const orbit_shard_nodes_t *n);

#endif
