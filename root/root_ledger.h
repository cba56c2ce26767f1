/* root_ledger: the Ephemeris service of one root replica. Joins the ledger
 * state machine (ledger.h, LMDB) to the consensus seam (consensus.h, Raft)
 * and answers the client API (ledger.proto Request/Reply) arriving on the
 * replica's ZeroMQ socket:
 *
 * - propose (one proposal, or a ProposeBatch answered once with every
 *   member's result in order): on the leader, proposals are batched — every proposal that
 *   arrived during one loop iteration (up to batch_max) becomes one Raft
 *   entry stamped with the leader's time, kept monotonic across leaders
 *   (never below the last applied entry's time) — and each client gets its
 *   own outcome when the entry is applied. Followers answer not_leader with
 *   a leader hint. A proposal whose entry is lost with a deposed leader is
 *   answered with an error; the client retries with the same (client_id,
 *   request_id) and the ledger's dedup table makes that safe.
 * - get: linearizable by default (a Raft barrier on the leader first);
 *   stale=true reads the local state on any replica.
 * - watch: ordered, gap-free history from any replica; an index below the
 *   compacted history answers compacted_index.
 * - status, and membership changes (on the leader).
 * The leader also proposes Expiry entries for leases and quota grants that
 * have expired, and every replica's apply compacts its local history
 * beyond history_keep commitments, a little with each transaction.
 *
 * Thread rules: everything runs on the root's libuv loop thread, except a
 * follower's batches of entries, which its applier applies on a thread of
 * its own (root/ledger_applier.h). */
#ifndef ORBIT_ROOT_LEDGER_H
#define ORBIT_ROOT_LEDGER_H

#include <czmq.h>
#include <stdint.h>
#include <uv.h>

#include "consensus.h"

#define ORBIT_ROOT_PEERS_MAX 16

typedef struct {
    unsigned id;          /* replica id 1..255 */
    const char *data_dir; /* DIR/raft and DIR/ledger live below it */
    const char *raft;     /* "host:port" this replica's Raft listens on */
    orbit_consensus_peer_t peers[ORBIT_ROOT_PEERS_MAX];
    size_t n_peers;
    const char *cluster; /* cluster name stored at first start */
    /* Raft entries and log bytes between snapshots (0: the defaults);
     * replica id i waits (4 + i % 3) / 4 of each, so replicas do not all
     * write a snapshot at once. */
    unsigned snapshot_threshold;
    uint64_t snapshot_bytes;
    uint64_t history_keep; /* commitments of history kept (0: 100,000) */
    /* How long a follower holds applied entries to apply them together
     * (0: the default, 100; see fsm_apply in root_ledger.c); replica id i
     * waits (2 + i % 3) / 3 of it, so replicas do not all apply at once. */
    uint32_t apply_batch_ms;
    /* Raft's election timeout (randomised between 1x and 2x) and heartbeat
     * period (0: ORBIT_CONSENSUS_ELECTION_MS_DEFAULT and
     * ORBIT_CONSENSUS_HEARTBEAT_MS_DEFAULT); heartbeat < election. */
    uint32_t election_ms;
    uint32_t heartbeat_ms;
    uint32_t batch_max; /* proposals per entry (0: 4096) */
    uint32_t queue_max; /* proposals waiting or in flight (0: 65,536) */
} orbit_root_ledger_cfg_t;

typedef struct orbit_root_ledger orbit_root_ledger_t;

/* Open the ledger in cfg->data_dir/ledger (refusing one of another cluster),
 * create and start the consensus replica on loop; replies are sent on router
 * (borrowed). NULL with a one-line reason in err. */
orbit_root_ledger_t *orbit_root_ledger_new(const orbit_root_ledger_cfg_t *cfg, uv_loop_t *loop,
                                           zsock_t *router, char *err, size_t errlen);

/* Handle one client frame (envelope + Request) from routing id rid. */
void orbit_root_ledger_request(orbit_root_ledger_t *rl, const uint8_t *rid, size_t rid_len,
                               const uint8_t *buf, size_t len);

/* Close asynchronously (consensus first, then the ledger); done(arg) runs
 * when the memory is released. */
void orbit_root_ledger_close(orbit_root_ledger_t *rl, void (*done)(void *arg), void *arg);

/* Counters for `orbitctl view shards` style reporting. */
typedef struct {
    uint64_t requests, proposals, batches, entries, bad_requests, not_leader, overloaded, lost;
} orbit_root_ledger_stats_t;
const orbit_root_ledger_stats_t *orbit_root_ledger_stats(const orbit_root_ledger_t *rl);

/* The topology epoch of this replica's applied ledger state (the ledger
 * index of the last topology change; 0: none yet, or rl NULL). Reads the
 * local state (stale on a follower), never blocks on consensus. */
uint64_t orbit_root_ledger_topology_epoch(orbit_root_ledger_t *rl);

/* The shards the local applied topology places directly under the root (a
 * new zlistx_t of ids, strings it owns) and its epoch. Read like the epoch
 * above: local, stale on a follower, never blocking on consensus.
 * Errors: ORBIT_EINVAL (no ledger), ORBIT_ENOMEM, ORBIT_EIO and the
 * ledger's read errors. */
int orbit_root_ledger_top_shards(orbit_root_ledger_t *rl, uint64_t *epoch, zlistx_t **ids);

/* Parse "1=host:port,2=host:port" into cfg->peers (strings point into a
 * copy kept in *storage: free it after the ledger is closed).
 * Errors: ORBIT_EINVAL with a reason in err. */
int orbit_root_ledger_parse_peers(const char *list, orbit_root_ledger_cfg_t *cfg, char **storage,
                                  char *err, size_t errlen);

#endif
