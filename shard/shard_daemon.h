/* shard_daemon: wires one shard's sockets to its tables on a czmq zloop.
 * Tier 1 ingests leaf batches (shard_nodes); tier 2+ ingests child shard
 * reports (shard_subtree). Every interval it sends each upstream (parent
 * shard or root replica) a report of its summary and the rows that changed
 * since that upstream's last acknowledged report, and it forwards node-detail
 * requests down the tree.
 *
 * Thread rules: one thread runs the daemon from new to destroy. */
#ifndef ORBIT_SHARD_DAEMON_H
#define ORBIT_SHARD_DAEMON_H

#include <stdint.h>

#include "shard_nodes.h"
#include "shard_subtree.h"

#define ORBIT_SHARD_UPSTREAMS_MAX 8

typedef struct {
    char id[ORBIT_NAME_MAX];
    uint32_t tier;        /* 1: rack shard over leaves; 2+: over shards */
    const char *listen;   /* endpoint list (borrowed) */
    const char *upstream; /* comma-separated parent endpoints (borrowed) */
    uint32_t interval_ms; /* report interval */
    uint32_t warmup_ms;   /* after start, reports are full and "warming" */
    orbit_shard_nodes_cfg_t nodes;
    orbit_subtree_cfg_t subtree;
} orbit_shard_cfg_t;

typedef struct orbit_shard orbit_shard_t;

/* Create the shard, bind its listen socket and connect its upstreams.
 * Returns NULL with a one-line reason in err. */
orbit_shard_t *orbit_shard_new(const orbit_shard_cfg_t *cfg, char *err, size_t errlen);
/* Run until interrupted (SIGINT/SIGTERM). Returns 0. */
int orbit_shard_run(orbit_shard_t *s);
void orbit_shard_destroy(orbit_shard_t **ps);

#endif
