/* topology_plan: the dry run behind `orbitctl topology plan` — which racks
 * (and how many nodes) a proposed topology change or batch of changes would
 * move from which shard to which, whether the ledger would refuse it and
 * why, and which racks a new rack shard should take over by rendezvous.
 *
 * A plan is judged on a copy of the model; the model itself is never
 * changed. Changes apply in order, each with the model's rules
 * (topology.h), with one difference: a leave is planned the way
 * `orbitctl topology remove-shard` runs it — first drain (each rack of the
 * shard to its next candidate, orbit_topology_drain), then the leave — so a
 * leave is refused only when the shard is unknown, has child shards, or owns
 * racks with no other tier-1 shard to take them. To commit a planned leave,
 * propose a RackMove{rack, to} for each move of the shard's racks, then the
 * ShardLeave.
 *
 * Thread rules: those of the model (topology.h). */
#ifndef ORBIT_TOPOLOGY_PLAN_H
#define ORBIT_TOPOLOGY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topology.h"

/* Node count of rack (the caller's live view): called once for each entry
 * of a plan's moves and suggestions, never kept. */
typedef uint64_t (*orbit_topology_nodes_fn)(void *ctx, const char *rack);

typedef struct {
    char rack[ORBIT_TOPOLOGY_NAME_MAX + 1];
    char from[ORBIT_TOPOLOGY_NAME_MAX + 1]; /* "": the rack had no owner yet */
    char to[ORBIT_TOPOLOGY_NAME_MAX + 1];
    uint64_t nodes; /* from the nodes callback; 0 without one */
} orbit_topology_move_t;

typedef struct {
    bool refused;      /* the batch cannot be applied as a whole */
    size_t refused_at; /* index of the first refused change */
    int code;          /* its error code (topology.h) */
    char reason[256];  /* its reason, in the model's words */
    /* Net moves of the whole batch (a rack moved twice is listed once, from
     * its owner before to its owner after; one moved back is not listed), in
     * strcmp order of rack. Empty when refused. */
    orbit_topology_move_t *moves;
    size_t nmoves;
    uint64_t nodes_moved; /* sum of moves[].nodes */
    /* Rendezvous suggestions for every tier-1 shard the batch joins (and
     * keeps): the racks it would win among the tier-1 shards after the
     * batch but does not own after it, from their owner after the batch. Not
     * part of the change: propose them as RackMoves to rebalance. Empty
     * when refused. */
    orbit_topology_move_t *suggested;
    size_t nsuggested;
    uint64_t nodes_suggested; /* sum of suggested[].nodes */
} orbit_topology_plan_t;

/* An empty plan (nothing to close yet). */
void orbit_topology_plan_init(orbit_topology_plan_t *p);
/* Free what p holds and leave it empty (as after init); NULL-safe. */
void orbit_topology_plan_close(orbit_topology_plan_t *p);

/* Plan the n changes (in order) against t, counting nodes with nodes(ctx,
 * rack) when nodes is not NULL. out must have been initialized; what it
 * held is released first. A refused batch is a success of the plan: out->
 * refused says so. t is read, never changed; the changes are not kept.
 * Errors: ORBIT_EINVAL (NULL t or out, or changes NULL with n > 0),
 * ORBIT_ENOMEM; out is empty on failure. */
int orbit_topology_plan(const orbit_topology_t *t, const orbit_topology_change_t *changes, size_t n,
                        orbit_topology_nodes_fn nodes, void *ctx, orbit_topology_plan_t *out);

#endif
