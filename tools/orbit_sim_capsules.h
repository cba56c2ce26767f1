/* orbit_sim_capsules: the simulator's execution plane. It learns every
 * placement on the simulator's nodes from the ledger and reports those
 * capsules RUNNING in the nodes' telemetry, as orbit-leaf does for real
 * processes — so schedulers, the reaper and `mission status` see the same
 * loop over thousands of simulated nodes.
 *
 * Delivery: unlike a real leaf (a watch filtered by its own node, see
 * leaf_exec.h) one simulator serves thousands of nodes, so it keeps one
 * scheduling view (orbit_sched_view.h: a snapshot, then the unfiltered
 * watch) on an actor thread and polls it every poll_ms. The actor keeps
 * which capsules it has announced and sends the simulator thread only the
 * changes (capsule placed on one of our nodes, capsule gone), so the
 * simulator's loop never blocks on the ledger. A capsule is RUNNING from the
 * moment its placement was seen until the placement is revoked, when it
 * disappears from the node's list; a simulated node has no processes that
 * could fail. The ledger being unreachable keeps every capsule as it is.
 *
 * Nodes are the model's: "<prefix>-<i>" with i < nodes; placements on any
 * other node are ignored.
 *
 * Thread rules: the object belongs to the simulator's thread; the actor has
 * its own. */
#ifndef ORBIT_SIM_CAPSULES_H
#define ORBIT_SIM_CAPSULES_H

#include <czmq.h>
#include <stdint.h>

#include "orbit_node.h"

typedef struct orbit_sim_capsules orbit_sim_capsules_t;

typedef struct {
    uint64_t updates;  /* change messages received from the actor */
    uint64_t placed;   /* capsules added to a node */
    uint64_t removed;  /* capsules removed */
    uint64_t dropped;  /* capsules beyond ORBIT_CAPSULES_MAX on one node, not reported */
    uint64_t bad;      /* malformed change messages (counted, ignored) */
    uint64_t capsules; /* capsules held now */
} orbit_sim_capsules_stats_t;

/* Start the actor reading the ledger at roots (comma-separated endpoints)
 * for nodes "<prefix>-<0..nodes-1>", polling every poll_ms (>= 50). roots
 * NULL: no actor (changes come only from orbit_sim_capsules_apply; tests).
 * NULL with a one-line reason in err. */
orbit_sim_capsules_t *orbit_sim_capsules_new(const char *roots, const char *prefix, uint32_t nodes,
                                             uint32_t poll_ms, char *err, size_t errlen);

/* Stop the actor and free everything; NULL-safe, clears *pc. */
void orbit_sim_capsules_destroy(orbit_sim_capsules_t **pc);

/* The socket to watch (zloop reader) for changes from the actor; NULL
 * without one. */
zsock_t *orbit_sim_capsules_sock(orbit_sim_capsules_t *c);

/* Receive and apply one change message (call when the socket is readable);
 * new capsules are RUNNING since wall_ms. Returns 0, or -1 when the actor
 * has gone (interrupted). */
int orbit_sim_capsules_recv(orbit_sim_capsules_t *c, int64_t wall_ms);

/* The capsules of node idx now: count, and *caps (valid until the next
 * recv). */
uint32_t orbit_sim_capsules_of(const orbit_sim_capsules_t *c, uint32_t idx,
                               const orbit_capsule_t **caps);

/* Apply one change directly (what recv does for each entry): add (true) or
 * remove capsule on node idx. For tests.
 * Errors: ORBIT_EINVAL (idx out of range, bad id), ORBIT_ENOMEM. */
int orbit_sim_capsules_apply(orbit_sim_capsules_t *c, bool add, uint32_t idx, const char *capsule,
                             int64_t wall_ms);

/* Node index of name for this prefix and node count; -1 if not ours. */
int64_t orbit_sim_capsules_node_index(const char *prefix, uint32_t nodes, const char *name);

void orbit_sim_capsules_stats(const orbit_sim_capsules_t *c, orbit_sim_capsules_stats_t *out);

#endif
