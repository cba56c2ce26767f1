/* leaf_agent: orbit-leaf's event loop: sample every interval, push deltas, read acks, fail over. */
#ifndef ORBIT_LEAF_AGENT_H
#define ORBIT_LEAF_AGENT_H

#include <czmq.h>
#include <stddef.h>

#include "leaf_config.h"
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
 *
 * Thread rules: an agent belongs to the thread that runs it. */
typedef struct orbit_leaf_agent orbit_leaf_agent_t;

#define ORBIT_LEAF_AGENT_RETURN_INTERVALS 10

/* New agent for cfg (copied; cfg may be closed afterwards): opens procfs
 * (and takes a first sample, so a wrong --proc-root fails here), loads NVML,
 * connects to the preferred shard. Returns NULL with a one-line reason in
 * err (size errlen) on failure. */
orbit_leaf_agent_t *orbit_leaf_agent_new(const orbit_leaf_config_t *cfg, char *err, size_t errlen);

/* Close the socket and free everything; NULL-safe, clears *pa. */
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

#endif
