/* topology_fetch: the topology as the ledger holds it, read through the
 * ledger client ("get topology": every shard, every rack, the epoch, in one
 * read) and turned into an orbit_topology_t.
 *
 * Who reads it: orbitctl (linearizable), shards and leaves for discovery
 * (stale: any replica answers from its own applied state, so a fleet that
 * refetches after an epoch bump spreads over every replica instead of
 * queueing at the Raft leader; a stale answer older than the epoch that
 * prompted the read is simply read again later). */
#ifndef ORBIT_TOPOLOGY_FETCH_H
#define ORBIT_TOPOLOGY_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "orbit_ledger_client.h"
#include "topology.h"

/* Parse the JSON text of "get topology" ({"epoch", "shards":[{"shard",
 * "tier", "parent", "endpoint", ...}], "racks":[{"rack", "shard"}]}) into a
 * new model. Shards are added parents first, whatever their order in the
 * text. Returns NULL with a one-line reason in err for text that is not
 * such an object or names an inconsistent tree. */
orbit_topology_t *orbit_topology_from_json(const char *json, char *err, size_t errlen);

/* Read the topology through c within timeout_ms (stale: from whichever
 * replica answers, no barrier). Returns NULL with a one-line reason in err
 * (no replica answered, an error reply, unparsable text). */
orbit_topology_t *orbit_topology_fetch(orbit_ledger_client_t *c, bool stale, int timeout_ms,
                                       char *err, size_t errlen);

/* The endpoints, comma-separated, of the tier-1 shards a leaf of rack
 * should try, in order: the rack's owner, then the other tier-1 shards by
 * rendezvous rank (orbit_topology_candidates; a rack nobody owns yet gets
 * the pure rendezvous order); shards without an endpoint are skipped.
 * Malloc'd; NULL with a reason in err when no candidate has an endpoint. */
char *orbit_topology_rack_endpoints(const orbit_topology_t *t, const char *rack, char *err,
                                    size_t errlen);

#endif
