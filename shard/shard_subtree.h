/* shard_subtree: the table of child shards and the node rows they report,
 * as kept by a zone shard (tier >= 2) and by the root view. Applies child
 * reports (summary + materially changed rows, full or incremental), decides
 * child reachability from report silence, and presents the merged summary
 * and rows with effective status: a row of a silent child is unreachable,
 * never down (the observer failed, not the node).
 *
 * Thread rules: one owner thread; no I/O. Times are monotonic milliseconds. */
#ifndef ORBIT_SHARD_SUBTREE_H
#define ORBIT_SHARD_SUBTREE_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "orbit.pb-c.h"
#include "orbit_node.h"
#include "orbit_wire.h"
#include "shard_agg.h"

typedef struct orbit_subtree_child orbit_subtree_child_t;

/* One node as seen above the rack tier. */
typedef struct {
    char name[ORBIT_NAME_MAX];
    char shard[ORBIT_NAME_MAX]; /* owning rack shard */
    char *labels;               /* packed "k=v\n", heap, never NULL */
    uint8_t status;             /* as reported by the child */
    bool unseen;                /* not yet re-reported by a restarted child */
    int64_t cpu_capacity_m, cpu_free_m, mem_capacity, mem_free;
    uint32_t gpu_capacity, gpu_healthy, mem_pressure;
    uint32_t ncapsules;
    orbit_capsule_t *capsules; /* heap, sorted by id; NULL when none */
    int64_t sampled_ms;        /* leaf clock of the sample the row describes */
    int64_t updated_ms;        /* when this level applied the row (monotonic) */
    uint64_t gen;
    orbit_subtree_child_t *owner;
} orbit_row_t;

typedef struct {
    uint32_t silent_pct; /* a child silent for silent_pct % of its interval is
                            unreachable (default 150) */
} orbit_subtree_cfg_t;

typedef struct {
    uint64_t reports, full_reports, rows_applied, rows_removed;
    uint64_t bad_envelope, bad_version, bad_type, bad_decode;
    uint64_t invalid_reports, invalid_rows, resyncs_requested, stale_reports;
    uint64_t children_dropped; /* left the tree (orbit_subtree_set_topology) */
} orbit_subtree_stats_t;

typedef struct orbit_subtree orbit_subtree_t;

/* New table for the shard (or root) named self at tier (root: 0 means "any
 * child tier"). NULL on ENOMEM or invalid name. */
orbit_subtree_t *orbit_subtree_new(const char *self, uint32_t tier, const orbit_subtree_cfg_t *c);
void orbit_subtree_destroy(orbit_subtree_t **pt);

/* Apply one decoded report received from routing id rid and fill *ack.
 * A row failing validation (names, bounds, labels, capsules: see
 * orbit_capsules_validate) is skipped and counted in invalid_rows; the rest
 * of the report still applies. A row replaces the stored one whole, capsules
 * included. Returns 0 when *ack should be sent back.
 * Errors: ORBIT_EINVAL (report rejected and counted; no ack). */
int orbit_subtree_report(orbit_subtree_t *t, const Orbit__ShardReport *r, const uint8_t *rid,
                         size_t rid_len, int64_t now_ms, Orbit__ReportAck *ack);

/* Decode a frame as a ShardReport (counting envelope errors) with arena a,
 * then orbit_subtree_report. *decoded (may be NULL) receives the decoded
 * report, valid until a is reset. */
int orbit_subtree_report_frame(orbit_subtree_t *t, const uint8_t *buf, size_t len,
                               const uint8_t *rid, size_t rid_len, int64_t now_ms, orbit_arena_t *a,
                               Orbit__ReportAck *ack, ProtobufCMessage **decoded);

/* The topology this level holds (discovery mode): its epoch, and the ids of
 * the shards it places here (a zlistx_t of strings, as from
 * orbit_topology_children; taken, *declared cleared). From then on a child
 * that has left the tree is dropped by orbit_subtree_tick, with its rows
 * (named in the next incremental reports upstream) and its shard listing:
 * one that is silent, whose reports carried a topology epoch no newer than
 * this one, and that this topology does not place here (a drained shard
 * after its ShardLeave, or one that rejoined under another parent). A child
 * in flag mode (no epoch in its reports), one placed by a newer topology
 * than ours, or a silent one still declared here is kept: its rows show
 * unreachable, as the observer failed, not the nodes. */
void orbit_subtree_set_topology(orbit_subtree_t *t, uint64_t epoch, zlistx_t **declared);

/* Re-derive child reachability and drop the children that left the tree
 * (see orbit_subtree_set_topology); returns the number of children whose
 * reachability changed. */
uint32_t orbit_subtree_tick(orbit_subtree_t *t, int64_t now_ms);

uint64_t orbit_subtree_gen(const orbit_subtree_t *t);

/* True (once) after a change the parent should hear without waiting for the
 * next interval: a child became silent or came back, or sent a full report. */
bool orbit_subtree_take_urgent(orbit_subtree_t *t);

/* Effective status of a row (unreachable when its child is silent). */
orbit_status_t orbit_subtree_row_status(const orbit_row_t *row);

/* Merged summary of every child (silent children as unreachable). */
void orbit_subtree_summary(const orbit_subtree_t *t, orbit_agg_t *agg);

/* Rows changed since since_gen (0: all) as wire rows in arena a. */
int orbit_subtree_rows(const orbit_subtree_t *t, uint64_t since_gen, orbit_arena_t *a,
                       Orbit__NodeRow ***rows, size_t *nrows);

/* Names of the rows removed after since_gen (an arena array in a), for
 * ShardReport.removed (none at tier 0). Errors: ORBIT_ENOMEM. */
int orbit_subtree_removed(const orbit_subtree_t *t, uint64_t since_gen, orbit_arena_t *a,
                          char ***names, size_t *count);
/* Every upstream has acknowledged generation acked: drop older tombstones. */
void orbit_subtree_prune_removed(orbit_subtree_t *t, uint64_t acked);
/* An upstream acknowledged below this generation may have missed a removal
 * (too many tombstones): send it a full report. */
uint64_t orbit_subtree_removed_floor(const orbit_subtree_t *t);

/* Fill a wire row (storage in a; strings point into row) from a stored row,
 * with its effective status and its capsules. Errors: ORBIT_ENOMEM. */
int orbit_subtree_row_to_pb(const orbit_row_t *row, orbit_arena_t *a, Orbit__NodeRow *out);

/* Every child's ShardInfo list (the child first, then its descendants), as
 * seen from here, appended to *out (arena array of capacity cap).
 * Errors: ORBIT_ENOMEM. */
int orbit_subtree_shards(const orbit_subtree_t *t, int64_t now_ms, orbit_arena_t *a,
                         Orbit__ShardInfo ***out, size_t *n);

/* Row of node name, or NULL. */
const orbit_row_t *orbit_subtree_row(const orbit_subtree_t *t, const char *name);

/* Routing id of the child that reported row (valid until the next report). */
void orbit_subtree_route(const orbit_row_t *row, const uint8_t **rid, size_t *rid_len);

/* Call fn for every row; stops early when fn returns false. */
typedef bool (*orbit_row_fn)(const orbit_row_t *row, void *ctx);
void orbit_subtree_foreach(const orbit_subtree_t *t, orbit_row_fn fn, void *ctx);

size_t orbit_subtree_rows_count(const orbit_subtree_t *t);
size_t orbit_subtree_children(const orbit_subtree_t *t);
const orbit_subtree_stats_t *orbit_subtree_stats(const orbit_subtree_t *t);

#endif
