/* shard_daemon: wires one shard's sockets to its tables on a czmq zloop.
 * Tier 1 ingests leaf batches (shard_nodes); tier 2+ ingests child shard
 * reports (shard_subtree). Every interval it sends each upstream (parent
 * shard or root replica) a report of its summary and the rows that changed
 * since that upstream's last acknowledged report, and it forwards node-detail
 * requests down the tree.
 *
 * Two ways to find its place:
 * - flag mode: cfg.listen, cfg.upstream and cfg.tier as given; acks carry
 *   topology epoch 0 and nothing is forgotten by rack.
 * - discovery mode (cfg.roots set, listen and upstream NULL): the topology
 *   is read from the ledger (stale read) until shard cfg.id is declared in
 *   it; the shard binds its declared endpoint, takes its tier, and reports
 *   to its parent's declared endpoint, or to every root replica when it has
 *   no parent. Acks it sends carry the epoch of the topology it holds; an
 *   ack from upstream with a higher epoch makes it read the topology again
 *   after a random delay in [0, interval), and it rereads every 10
 *   intervals anyway. A new topology re-points the upstream sockets when
 *   the parent's endpoint changed (a full report follows), and gives a rack
 *   shard its racks (shard_nodes forgets nodes of other racks once silent).
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
    const char *roots;    /* discovery mode: root replica endpoints (borrowed) */
    uint32_t interval_ms; /* report interval */
    uint32_t warmup_ms;   /* after start, reports are full and "warming" */
    orbit_shard_nodes_cfg_t nodes;
    orbit_subtree_cfg_t subtree;
} orbit_shard_cfg_t;

typedef struct orbit_shard orbit_shard_t;

/* Create the shard, bind its listen socket and connect its upstreams. In
 * discovery mode this first reads the topology, retrying every interval
 * (one rate-limited log line per failure kind) until the shard is declared;
 * SIGINT/SIGTERM meanwhile give up ("interrupted"). Returns NULL with a
 * one-line reason in err: bad flags (roots with listen or upstream), an
 * endpoint that cannot be bound or connected, out of memory. */
orbit_shard_t *orbit_shard_new(const orbit_shard_cfg_t *cfg, char *err, size_t errlen);
/* Run until interrupted (SIGINT/SIGTERM). Returns 0. */
int orbit_shard_run(orbit_shard_t *s);
void orbit_shard_destroy(orbit_shard_t **ps);

#endif
