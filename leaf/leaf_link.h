/* leaf_link: the sending side of the leaf -> shard delta protocol, for N nodes over one DEALER. */
#ifndef ORBIT_LEAF_LINK_H
#define ORBIT_LEAF_LINK_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "orbit.pb-c.h"
#include "orbit_node.h"

/* Protocol, per node:
 * - Every message carries (incarnation, seq). Sequence numbers start at
 *   CLOCK_MONOTONIC in microseconds when the link is created, so a leaf that
 *   restarts within the same boot never reuses one, and grow by one per
 *   message that left the socket.
 * - A message is a full state when the node needs one (first send, RESYNC,
 *   REJECTED, WRONG_SHARD, silence, a new incarnation, a new socket) and on
 *   every K-th send; otherwise it is a real delta: the fields that differ
 *   from the state last sent, plus the fields carried by sends the shard has
 *   not acknowledged yet. When nothing is outstanding (the normal case) that
 *   is exactly "the fields changed since the acknowledged baseline"; with
 *   sends in flight it stays correct whichever of them the shard applied.
 * - An OK (or DUPLICATE) for the node's latest send makes that state the
 *   baseline. OVERLOADED (batch-wide, nothing applied) rewinds the node's
 *   next seq to the unapplied one, so the shard sees no gap, and backs the
 *   node off for min(cap, base x 2^n) x [0.5, 1.5) with n consecutive
 *   overloads (n resets on OK). RESYNC queues an immediate full state
 *   (orbit_leaf_link_needs_send). REJECTED logs the reason (through an
 *   orbit_ratelimit_t: at most one line a second, with the number of lines
 *   suppressed since the last) and sends a full state next time.
 * - A batch without an ack within silence_intervals x interval marks its
 *   nodes as needing a full state (the shard may have restarted). When the
 *   link sent or tried to send for that long without hearing any ack,
 *   orbit_leaf_link_tick reports ORBIT_LEAF_LINK_SILENT so the caller can
 *   fail over.
 *
 * Cadence belongs to the caller: orbit_leaf_link_update queues a node, and
 * orbit_leaf_link_flush sends every queued node that is not backing off, in
 * batches of at most max_batch. Every operation is O(1) per node touched;
 * only orbit_leaf_link_set_socket walks all nodes.
 *
 * Memory: about 2 x sizeof(orbit_node_state_t) + 64 bytes per node (current
 * and last-sent state, sequence numbers, queue links) plus its GPU arrays,
 * 8-16 bytes per node of name index, and 48 bytes per remembered in-flight
 * node send (default ring: 4 x nodes, at least 64).
 *
 * Thread rules: a link and its socket belong to one thread. */
typedef struct orbit_leaf_link orbit_leaf_link_t;

typedef struct {
    uint32_t interval_ms;       /* the caller's update cadence (default 1000) */
    uint32_t full_every;        /* K: every K-th send is full; 1 = always (default 30) */
    uint32_t silence_intervals; /* intervals without an ack before silence (default 3) */
    uint32_t backoff_base_ms;   /* first overload back-off before x2^n (0: interval_ms) */
    uint32_t backoff_cap_ms;    /* back-off ceiling (default 30000) */
    uint32_t max_batch;         /* node messages per LeafBatch (default 256) */
    uint32_t inflight_max;      /* remembered node sends (0: 4 x nodes, at least 64) */
    uint64_t first_seq;         /* 0: CLOCK_MONOTONIC in microseconds now */
    uint64_t seed;              /* back-off jitter seed (0: from the clock and pid) */
} orbit_leaf_link_config_t;

/* Counters, never reset. Node-message counts are per NodeDelta. */
typedef struct {
    uint64_t batches_sent;
    uint64_t fulls_sent;     /* node messages that were full states */
    uint64_t deltas_sent;    /* node messages that were deltas */
    uint64_t acks;           /* LeafAck messages handled */
    uint64_t acked;          /* node verdicts OK */
    uint64_t duplicate;      /* node verdicts DUPLICATE (treated as OK) */
    uint64_t overloaded;     /* node verdicts OVERLOADED */
    uint64_t resync;         /* node verdicts RESYNC */
    uint64_t rejected;       /* node verdicts REJECTED */
    uint64_t wrong_shard;    /* node verdicts WRONG_SHARD */
    uint64_t send_dropped;   /* batches not sent because the socket would block */
    uint64_t dropped_nodes;  /* node messages in those batches (sent again later) */
    uint64_t send_errors;    /* batches that failed otherwise (EIO, ENOMEM) */
    uint64_t silent_nodes;   /* node sends not acknowledged in time */
    uint64_t shard_silent;   /* times ORBIT_LEAF_LINK_SILENT was reported */
    uint64_t ack_unknown;    /* acks for forgotten batches, unknown nodes or seqs */
    uint64_t ack_bad;        /* frames that are not a decodable LeafAck, bad verdicts */
    uint64_t forgotten;      /* unacknowledged node sends pushed out of the ring */
    uint64_t topology_epoch; /* highest LeafAck.topology_epoch seen (0: none) */
} orbit_leaf_link_stats_t;

/* A snapshot of one node's protocol state (for tests and diagnostics). */
typedef struct {
    uint64_t next_seq;      /* the seq of the next message */
    uint64_t last_sent_seq; /* 0: never sent */
    uint64_t acked_seq;     /* highest seq acknowledged OK/DUPLICATE; 0: none */
    uint32_t sends_since_full;
    uint32_t overloads;      /* consecutive OVERLOADED verdicts */
    uint32_t unacked_fields; /* bit mask of fields carried by unacknowledged sends */
    int64_t backoff_until_ms;
    bool needs_full;
    bool queued;
    bool has_state; /* orbit_leaf_link_update was called */
} orbit_leaf_link_node_info_t;

/* Events reported (and then cleared) by orbit_leaf_link_tick. */
#define ORBIT_LEAF_LINK_SILENT      0x1u /* no ack for silence_intervals while sending */
#define ORBIT_LEAF_LINK_WRONG_SHARD 0x2u /* a WRONG_SHARD verdict arrived */

/* Fill c with the defaults above. */
void orbit_leaf_link_config_default(orbit_leaf_link_config_t *c);

/* New link sending on sock (borrowed: the caller keeps ownership and must
 * keep it alive, or replace it with orbit_leaf_link_set_socket; may be NULL
 * until then). cfg is copied; NULL means the defaults.
 * Returns NULL when out of memory or when cfg has a zero interval_ms,
 * full_every, silence_intervals or max_batch. */
orbit_leaf_link_t *orbit_leaf_link_new(zsock_t *sock, const orbit_leaf_link_config_t *cfg);

/* Free the link and every node; NULL-safe, clears *pl. Does not touch the
 * socket. */
void orbit_leaf_link_destroy(orbit_leaf_link_t **pl);

/* Add a node named name (copied) and return its index in *idx (indices are
 * dense, from 0, in order of addition). Its first message will be full.
 * Errors: ORBIT_EINVAL (invalid or duplicate name), ORBIT_ENOMEM (link
 * unchanged). */
int orbit_leaf_link_add_node(orbit_leaf_link_t *l, const char *name, uint32_t *idx);

/* Index of the node called name.
 * Errors: ORBIT_ENOTFOUND. */
int orbit_leaf_link_find(const orbit_leaf_link_t *l, const char *name, uint32_t *idx);

/* Number of nodes. */
uint32_t orbit_leaf_link_nodes(const orbit_leaf_link_t *l);

/* Copy state as the node's current state (its name is ignored: the node
 * keeps its own; its GPU and capsule lists are copied, no reference kept)
 * and queue the node for the next flush. A changed incarnation makes the
 * next message full. The capsule list is sent whole when it changed, and
 * again until a send carrying it is acknowledged.
 * Errors: ORBIT_EINVAL (no such index, more than ORBIT_GPUS_MAX GPUs or
 * ORBIT_CAPSULES_MAX capsules, a count without its array), ORBIT_ENOMEM
 * (node unchanged). */
int orbit_leaf_link_update(orbit_leaf_link_t *l, uint32_t idx, const orbit_node_state_t *state);

/* Send every queued node that is not backing off, in LeafBatch messages of
 * at most max_batch deltas. Never blocks: when the socket would block the
 * batch is dropped (counted) and its nodes stay queued with their sequence
 * numbers unused. Returns the number of node messages sent (>= 0).
 * Errors: ORBIT_EINVAL (no socket), ORBIT_ENOMEM, ORBIT_EIO (the unsent
 * nodes stay queued). */
int orbit_leaf_link_flush(orbit_leaf_link_t *l, int64_t now_ms);

/* True when an ack asked for an immediate send (RESYNC): call flush now
 * rather than at the next interval. Cleared by flush. */
bool orbit_leaf_link_needs_send(const orbit_leaf_link_t *l);

/* Apply one decoded LeafAck (not kept). now_ms is the caller's monotonic
 * clock, used for back-off. Its topology_epoch, when set, raises
 * stats.topology_epoch whatever the rest of the ack holds.
 * Errors: ORBIT_ENOTFOUND (batch unknown or forgotten; counted, ignored),
 * ORBIT_EINVAL (unknown batch verdict; counted, ignored). */
int orbit_leaf_link_handle_ack(orbit_leaf_link_t *l, const Orbit__LeafAck *ack, int64_t now_ms);

/* Drain the socket without blocking: decode every LeafAck and apply it;
 * anything else is counted in ack_bad and dropped. Returns the number of
 * acks applied (>= 0).
 * Errors: ORBIT_EINVAL (no socket), ORBIT_EIO. */
int orbit_leaf_link_recv(orbit_leaf_link_t *l, int64_t now_ms);

/* Housekeeping, at least once per interval: expire batches not acknowledged
 * within the silence window (their nodes need a full state) and report
 * events. Returns a mask of ORBIT_LEAF_LINK_* events since the last tick. */
unsigned orbit_leaf_link_tick(orbit_leaf_link_t *l, int64_t now_ms);

/* Switch to another socket (borrowed; NULL allowed), e.g. after failover:
 * forget every in-flight batch, clear back-off, and queue every node that
 * has a state for a full send. O(nodes). */
void orbit_leaf_link_set_socket(orbit_leaf_link_t *l, zsock_t *sock);

/* The counters (valid while the link lives). */
const orbit_leaf_link_stats_t *orbit_leaf_link_stats(const orbit_leaf_link_t *l);

/* Snapshot of node idx.
 * Errors: ORBIT_EINVAL (no such index). */
int orbit_leaf_link_node_info(const orbit_leaf_link_t *l, uint32_t idx,
                              orbit_leaf_link_node_info_t *info);

#endif
