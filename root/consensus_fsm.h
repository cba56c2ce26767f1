/* consensus_fsm: adapts an abstract orbit_consensus_fsm_t to raft 0.15's
 * struct raft_fsm. Engine-specific: only consensus.c and the engine's
 * deterministic tests (raft/fixture.h) include this header; the ledger
 * never does.
 *
 * What the adapter adds to the state machine:
 * - the entry index. raft 0.15's fsm->apply receives no index. raft applies
 *   entries in a loop `for (i = last_applied + 1; i <= commit_index; i++)`
 *   and advances r->last_applied after each entry (barrier and
 *   configuration entries included) before the next one, so during apply the
 *   entry's index is r->last_applied + 1. The adapter therefore needs the
 *   struct raft it serves (orbit_consensus_fsm_bind). A later raft that
 *   applied asynchronously or advanced last_applied first would break this;
 *   test_consensus_fixture checks it against the indexes raft_apply assigns.
 * - skip-if-applied: entries with index <= the state's applied index are
 *   acknowledged without calling apply (a restarted replica replays its log).
 * - a versioned snapshot envelope carrying the raft index the snapshot was
 *   taken at, so restore can keep a durable state that is already newer.
 *   Layout (little endian): "ORBCSNAP" (8 bytes), u32 version (1), u32 header
 *   length (24), u64 index, then the state machine's bytes.
 * - result routing: a result goes to whoever claims it (consensus.c's
 *   waiting proposal) or to result_free.
 * - a snapshot policy by bytes as well as entries (see consensus.h): raft
 *   counts entries only, and ours carry from one to thousands of proposals.
 * - entry framing (below): raft 0.15's log store overflows its buffers on
 *   entries whose length is not a multiple of 8, so entries are framed and
 *   padded on the way in and unframed before apply.
 *
 * Thread rules: the raft instance's thread only. */
#ifndef ORBIT_ROOT_CONSENSUS_FSM_H
#define ORBIT_ROOT_CONSENSUS_FSM_H

#include <raft.h>

#include "consensus.h"

#define ORBIT_CONSENSUS_SNAP_MAGIC   "ORBCSNAP"
#define ORBIT_CONSENSUS_SNAP_VERSION 1u
#define ORBIT_CONSENSUS_SNAP_HDR     24u

/* Offered every result apply produced; return true to take ownership of it
 * (a proposal waiting for that index), false to let it be released. */
typedef bool (*orbit_consensus_claim_fn)(void *arg, uint64_t index, void *result);

typedef struct {
    struct raft_fsm fsm; /* hand &fsm to raft_init() or raft_fixture_grow() */
    struct raft *raft;   /* set by orbit_consensus_fsm_bind before start */
    orbit_consensus_fsm_t ops;
    void *ctx;
    orbit_consensus_claim_fn claim; /* optional */
    void *claim_arg;
    /* Applied index of the state as the adapter knows it: read from
     * ops.applied_index when unknown (start, after restore), then advanced
     * by every successful apply. */
    uint64_t applied;
    bool applied_known;
    uint64_t last_index; /* last index given to apply, to check ordering */
    /* Snapshot policy (orbit_consensus_fsm_set_snapshot_policy). */
    unsigned snap_threshold, snap_trailing; /* entries (raft's own knobs) */
    uint64_t snap_bytes;                    /* log bytes that bring one forward */
    uint64_t snap_index;                    /* raft index of the last snapshot taken or loaded */
    uint64_t log_bytes;                     /* bytes of the entries applied since then */
    uint64_t log_bytes_taken;               /* log_bytes when the last snapshot began */
    uint64_t state_bytes;                   /* size of the last snapshot's state */
    bool snap_forced;                       /* raft's threshold lowered to take one now */
    /* Counters. */
    uint64_t n_applied, n_skipped, n_restored, n_restore_skipped;
    uint64_t n_out_of_order, n_bad_snapshots, n_apply_errors;
    uint64_t n_snapshots_by_bytes;
    uint64_t n_flush_errors;
} orbit_consensus_fsm_adapter_t;

/* Initialise a for the state machine ops (copied) with context ctx
 * (borrowed). Errors: ORBIT_EINVAL (a required operation is missing). */
int orbit_consensus_fsm_init(orbit_consensus_fsm_adapter_t *a, const orbit_consensus_fsm_t *ops,
                             void *ctx);

/* Tell a which raft instance drives it (borrowed; must outlive a). Call
 * after raft_init / raft_fixture_grow and before the instance starts. */
void orbit_consensus_fsm_bind(orbit_consensus_fsm_adapter_t *a, struct raft *r);

/* Route results to claim(arg, index, result) (NULL: none claimed). */
void orbit_consensus_fsm_set_claim(orbit_consensus_fsm_adapter_t *a, orbit_consensus_claim_fn claim,
                                   void *arg);

/* Snapshots: raft takes one every `threshold` entries (0: the seam's
 * default) and keeps up to `trailing` entries behind it. The adapter brings a
 * snapshot forward once the entries applied since the last one hold
 * max(`bytes`, half the last snapshot's state) bytes (0: the default), and
 * trims the entries kept behind it to about a quarter of `bytes`. So the log
 * raft keeps on disk and in memory, and replays on a restart, stays bounded in
 * bytes whatever the entries carry, while the cost of copying the state stays
 * at most about twice the bytes logged. Call after bind, before start. */
void orbit_consensus_fsm_set_snapshot_policy(orbit_consensus_fsm_adapter_t *a, unsigned threshold,
                                             unsigned trailing, uint64_t bytes);

/* Set raft's timing and snapshot knobs from a cfg-like set of values (0:
 * the seam's defaults) and turn pre-vote on (a server cut off by a
 * partition cannot depose a healthy leader when it comes back). Shared by
 * consensus.c and the fixture tests so both run the same engine settings. */
void orbit_consensus_raft_tune(struct raft *r, unsigned election_ms, unsigned heartbeat_ms,
                               unsigned snapshot_threshold, unsigned snapshot_trailing);

/* An election timer between min and max ms from the generator *rng
 * (xorshift64*, never 0), raft's io->random policy. A follower's timer
 * spans [min, max). A candidate's (raft redraws it when it starts an
 * election and each time one fails) spans only the lower half, [min,
 * (min + max) / 2): after a leader dies, the first survivor to time out
 * is refused by the other, which still has a leader until its own timer
 * runs out (Raft 4.2.3), and when that other one cannot win either (its
 * log is behind) the first one's retry is what ends the election; a retry
 * after up to 2x would have let a failover take 4x the election timeout. */
int orbit_consensus_election_draw(uint64_t *rng, bool candidate, int min, int max);

/* Entry framing for raft's libuv log store, which requires entry lengths
 * to be multiples of 8: a header ("OBE1" + u32 LE payload length), the
 * payload, zero padding. The adapter's apply unwraps it. */
#define ORBIT_CONSENSUS_ENTRY_MAGIC "OBE1"
#define ORBIT_CONSENSUS_ENTRY_HDR   8
/* Wrapped size of a payload of len bytes (a multiple of 8). */
size_t orbit_consensus_entry_size(size_t len);
/* Write the wrapped entry (orbit_consensus_entry_size(len) bytes) to dst. */
void orbit_consensus_entry_wrap(void *dst, const void *payload, size_t len);

#endif
