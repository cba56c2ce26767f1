/* root_daemon: one orbit-root replica's event loop for the telemetry plane:
 * ingests shard reports into the root view, answers view queries from
 * clients, and proxies node-detail queries to the owning shard. Every shard
 * reports to every root replica, so each replica's view is warm. Report
 * acks carry the topology epoch of the replica's ledger (none without one),
 * from which shards in discovery mode learn that the tree changed.
 *
 * Thread rules: one thread runs the daemon from new to destroy. */
#ifndef ORBIT_ROOT_DAEMON_H
#define ORBIT_ROOT_DAEMON_H

#include <stdint.h>

#include "root_ledger.h"
#include "shard_subtree.h"

typedef struct {
    uint32_t id;        /* replica id (1..) */
    const char *listen; /* endpoint list (borrowed) */
    orbit_subtree_cfg_t view;
    uint32_t detail_timeout_ms;
    /* The Ephemeris replica; NULL runs the root view alone (no ledger). */
    const orbit_root_ledger_cfg_t *ledger;
} orbit_root_cfg_t;

typedef struct orbit_root orbit_root_t;

/* Bind the listen socket; NULL with a one-line reason in err. */
orbit_root_t *orbit_root_new(const orbit_root_cfg_t *cfg, char *err, size_t errlen);
/* Run until interrupted. Returns 0. */
int orbit_root_run(orbit_root_t *r);
void orbit_root_destroy(orbit_root_t **pr);

#endif
