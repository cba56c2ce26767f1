/* shard_fetch: reads the topology from the ledger (a stale read, any
 * replica answers) on its own thread, a czmq actor, so that a slow or
 * unreachable root never stalls the shard's event loop. One fetch at a
 * time.
 *
 * Thread rules: the fetcher is created, used and destroyed by one thread
 * (the shard's); the ledger client lives on the actor's thread. */
#ifndef ORBIT_SHARD_FETCH_H
#define ORBIT_SHARD_FETCH_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#include "topology.h"

typedef struct orbit_shard_fetch orbit_shard_fetch_t;

/* A fetcher reading from the comma-separated root endpoints (copied), each
 * fetch bounded by timeout_ms. NULL with a one-line reason in err (bad
 * endpoint list, out of memory). */
orbit_shard_fetch_t *orbit_shard_fetch_new(const char *roots, int timeout_ms, char *err,
                                           size_t errlen);
/* Stop the actor (waiting for a fetch in flight, whose result is freed).
 * NULL-safe, clears *pf. */
void orbit_shard_fetch_destroy(orbit_shard_fetch_t **pf);

/* Start a fetch. Errors: ORBIT_EAGAIN (one is in flight), ORBIT_EIO. */
int orbit_shard_fetch_start(orbit_shard_fetch_t *f);
bool orbit_shard_fetch_busy(const orbit_shard_fetch_t *f);
/* Readable when the fetch in flight has finished (for zloop_reader). */
zsock_t *orbit_shard_fetch_sock(orbit_shard_fetch_t *f);
/* The result of the fetch in flight, waiting for it: a new model (the
 * caller owns it) or NULL with a one-line reason in err (no replica
 * answered, an error reply, a malformed topology, or no fetch in flight). */
orbit_topology_t *orbit_shard_fetch_take(orbit_shard_fetch_t *f, char *err, size_t errlen);

#endif
