/* leaf_agent: orbit-leaf's event loop: sample every interval, push deltas, read acks, fail over. */
#ifndef ORBIT_LEAF_AGENT_H
#define ORBIT_LEAF_AGENT_H

#include <czmq.h>
#include <stddef.h>

#include "leaf_config.h"
#include "leaf_home.h"
#include "leaf_link.h"

/* One node's agent on a single zloop thread:
 * - a timer every interval samples procfs and NVML, hands the state to a
 *   one-node leaf_link and flushes it;
 * - a reader on the DEALER socket drains acks (and flushes at once when the
 *   shard asked for a resync);
 * - failover: the shard list is an order of preference. When the link
 *   reports the shard silent (or "wrong shard"), the socket is replaced by
 *   one to the next endpoint and a full state is sent; after
 *   ORBIT_LEAF_AGENT_RETURN_INTERVALS intervals on a non-preferred shard the
 *   preferred one is tried again. With a single endpoint the socket is kept
 *   (libzmq reconnects with its own back-off) and the link starts over with
 *   a full state. Failover lines are logged at info at most once a minute.
 * - discovery (cfg->roots, no shard list): the shard list is the rack's
 *   candidates (orbit_topology_rack_endpoints: owner first, then rendezvous
 *   order) in the topology read from the roots (stale read, timeout
 *   interval / 2 within 100..2000 ms). Until a read names a shard for the
 *   rack nothing is sent and a read is tried every interval (one warning
 *   per 10 s). Every LeafAck carries the shard's topology epoch; one above
 *   the epoch held schedules a read after a random delay in [0, interval)
 *   (leaf_home.h); a read still below the epoch seen is repeated an interval
 *   later. When the rack's preferred shard changed, the socket is replaced
 *   by one to the new preferred shard (a re-home: the node keeps its
 *   incarnation and seq, and sends a full state); a new list with the same
 *   preferred shard leaves the socket alone. Counters:
 *   orbit_leaf_agent_home_stats, and a debug line every interval.
 * - capsules (cfg->roots with cfg->capsules): a watcher actor (leaf_watch.h)
 *   follows this node's placements in the ledger and sends the desired set
 *   on its pipe, read by the loop; every interval the executor (leaf_exec.h)
 *   polls the capsule runner, reconciles, and writes the capsules' health
 *   into the node state, which the link sends like any other field. The
 *   design is at the top of leaf_exec.h. Capsules do not outlive the agent:
 *   destroying it stops them (SIGTERM, SIGKILL after the grace) and reaps
 *   them.
 *
 * Thread rules: an agent belongs to the thread that runs it. */
typedef struct orbit_leaf_agent orbit_leaf_agent_t;

#define ORBIT_LEAF_AGENT_RETURN_INTERVALS 10

/* New agent for cfg (copied; cfg may be closed afterwards): opens procfs
 * (and takes a first sample, so a wrong --proc-root fails here), loads NVML,
 * connects to the preferred shard (or, with roots, starts the capsule
 * runner and its watcher when cfg->capsules). Returns NULL with a one-line
 * reason in err (size errlen) on failure. */
orbit_leaf_agent_t *orbit_leaf_agent_new(const orbit_leaf_config_t *cfg, char *err, size_t errlen);

/* Stop the watcher and every capsule (waiting up to the stop grace), close
 * the socket and free everything; NULL-safe, clears *pa. */
void orbit_leaf_agent_destroy(orbit_leaf_agent_t **pa);

/* Run the loop until SIGINT/SIGTERM (czmq's handler sets zsys_interrupted)
 * or, when pipe is not NULL (a zactor pipe), until a "$TERM" message on it.
 * Sends the first state at once.
 * Errors: ORBIT_ENOMEM (loop could not be set up). */
int orbit_leaf_agent_run(orbit_leaf_agent_t *a, zsock_t *pipe);

/* The link's counters (valid while the agent lives; read them from the
 * agent's thread or after run returned). */
const orbit_leaf_link_stats_t *orbit_leaf_agent_stats(const orbit_leaf_agent_t *a);

/* Index in the shard list of the endpoint currently in use. */
size_t orbit_leaf_agent_shard_index(const orbit_leaf_agent_t *a);

/* The endpoint in use (valid until the agent runs again); NULL while a
 * discovering agent has no shard yet. */
const char *orbit_leaf_agent_endpoint(const orbit_leaf_agent_t *a);

/* Discovery counters; NULL when the agent was given shard endpoints. */
const orbit_leaf_home_stats_t *orbit_leaf_agent_home_stats(const orbit_leaf_agent_t *a);

/* Epoch of the topology in use (0: none, or not discovering). */
uint64_t orbit_leaf_agent_topology_epoch(const orbit_leaf_agent_t *a);

#endif
