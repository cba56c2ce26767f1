/* ledger: the Ephemeris state machine — applies committed Raft entries to an
 * LMDB environment, deterministically, and answers reads of the result.
 *
 * The consensus layer calls orbit_ledger_apply() once for every committed
 * command entry, in log order, on every replica. Apply reads no clock and no
 * randomness: time is the leader's stamp in the entry (Entry.time_ms). Each
 * entry is applied in ONE LMDB write transaction together with the applied
 * Raft index, so after a crash at any instant the environment holds exactly
 * the state of some prefix of the log and says which (never half an entry,
 * never state without its index, never an index without its state).
 *
 * On disk: one LMDB environment in a directory (data.mdb + lock.mdb), map
 * size ORBIT_LEDGER_MAP_SIZE, not synced on commit: the Raft log is the
 * durable record and is replayed on start. A process crash loses nothing;
 * after an OS crash the environment is discarded on open and rebuilt from
 * Raft (see "durability" in ledger.c, and orbit_ledger_discarded). Every
 * record carries a format version; an environment of another version is
 * refused.
 *
 * ---------------------------------------------------------------- outcomes
 * Each proposal of an entry gets one Outcome, in order:
 *   COMMITTED{index}        the commitment holds; index is the next ledger
 *                           index (a counter starting at 1, one per committed
 *                           proposal): the log index returned to clients, the
 *                           index of watch and of unchanged_since. A lease's
 *                           outcome also says "epoch=N,expires=T" in observed
 *                           (the fencing token).
 *   CONFLICT{which,observed} a precondition or an invariant does not hold;
 *                           nothing of the proposal is applied.
 *   INVALID{reason}         the proposal is malformed or names something that
 *                           does not exist; nothing at all is changed (not
 *                           even the dedup table), so the state hash is as
 *                           before.
 * Order of judgement: dedup table, validation (INVALID), preconditions in the
 * order node_fits, unchanged_since, identity_free, quota_available, each list
 * in its order (first failure reported), then the commitment's own
 * invariants (CONFLICT), then the writes.
 *
 * ---------------------------------------------------------------- names
 * Every name is 1..ORBIT_LEDGER_NAME_MAX (63) bytes.
 *   plain names  [A-Za-z0-9._-]       node, rack, shard, principal, mission,
 *                                     module
 *   ids          [A-Za-z0-9._:/-]     capsule, gang, identity, lease holder
 *                                     and resource, cluster id
 *   client_id    id characters, 1..ORBIT_LEDGER_CLIENT_MAX (127) bytes
 * Missions carry no '/', so a module key "mission/module" splits at its
 * first '/'.
 * Resources: 0 <= cpu_m <= ORBIT_LEDGER_CPU_MAX_M (100,000 cores),
 * 0 <= mem <= ORBIT_LEDGER_MEM_MAX (1 PiB), gpus <= ORBIT_LEDGER_GPUS_MAX (64);
 * an absent field is 0. In a node_fits capacity an absent field is not
 * checked. Quota grants and quota_available amounts are fleet-wide: each
 * field 0..ORBIT_LEDGER_SUM_MAX (GPUs up to 2^32 - 1).
 *
 * ---------------------------------------------------------------- semantics
 * Keys (the ones unchanged_since names and watch filters on) and what
 * touches them — every key a committed proposal touches records the
 * proposal's ledger index as its last-changed index:
 *   node/<node>            placements and revocations on the node
 *   principal/<p>          quota grants, expiries, charged placements
 *   placement/<capsule>    the capsule's placement (single or gang member)
 *   gang/<gang>            the gang
 *   lease/<resource>       acquisitions, renewals, expiry, revocation
 *   identity/<id>          binding and unbinding
 *   mission/<m>, module/<m>/<module>   module adjustments and revocations
 *   topology, shard/<s>, rack/<r>      every topology change (the topology
 *                          epoch is the last-changed index of "topology")
 * Placement: capsule not placed yet (else CONFLICT "capsule_placed",
 *   observed "node=N"); adds the envelope to the node's usage and, with a
 *   principal, to the principal's quota usage (tracked with or without a
 *   grant; only quota_available enforces it). Every placement (gang members
 *   too) is also listed under its node (an index in memory that takes the
 *   entry's changes when its transaction commits), and leaves the list when
 *   it is revoked (the "capsules" of get_json "node/<n>").
 * GangPlacement: 1..ORBIT_LEDGER_GANG_MAX members, no capsule twice
 *   (INVALID); gang not placed ("gang_placed") and no member placed
 *   ("capsule_placed"), else nothing is applied. node_fits counts every
 *   member on the node as new.
 * QuotaGrant: sets or replaces the grant (resources, priority, until_ms);
 *   usage is kept. until_ms = 0: no end; else it must be after the entry
 *   time (INVALID otherwise) and the grant expires at it.
 * Lease: acquire or renew for ttl_ms (1 ms .. 1 day) from entry time. Held by
 *   another holder and not expired (expires > time) → CONFLICT "lease_held",
 *   observed "holder=H,expires=T". The epoch (fencing token) increments on
 *   every acquisition that does not continue an unexpired holding by the
 *   same holder: a new holder, or the same holder after its lease lapsed.
 *   A renewal (same holder, not expired) keeps the epoch and sets expires =
 *   time + ttl. The epoch survives release, expiry and revocation.
 * IdentityBind: an identity names one capsule ("identity_bound", observed
 *   "capsule=C"), a capsule has one identity ("capsule_identity", observed
 *   "identity=I"); binding the same pair again commits without change.
 * ModuleAdjustment: merges into the stored ModuleSpec: each field present in
 *   the adjustment replaces the stored one (resources as a whole).
 * Revocation: placement (not of a gang member: revoke the gang), gang (all
 *   members), quota grant (usage kept), lease (holder cleared), identity
 *   binding (key: the identity), module (key "mission/module"); releasing
 *   node and quota usage. Something that does not exist → INVALID "no such
 *   …".
 * TopologyChange: ShardJoin — tier 1..ORBIT_LEDGER_TIER_MAX, shard new
 *   ("shard_exists"), parent empty (reports to the root) or an existing
 *   shard of tier+1 ("parent", observed "missing" / "tier=N"); ShardLeave —
 *   the shard exists (INVALID otherwise) and owns no rack and no child
 *   ("shard_busy", observed "racks=R,children=C"); RackMove — the target
 *   exists with tier 1 ("shard", observed "missing" / "tier=N").
 * Expiry (proposed by the leader): a lease or quota grant that has expired at
 *   this entry's time is removed; not expired → INVALID "not expired", gone →
 *   INVALID "no such …", so a late or duplicate expiry changes nothing.
 * Usage sums are bounded by ORBIT_LEDGER_SUM_MAX per resource ("overflow").
 * Last-changed indexes are kept for every key ever touched, so that
 * unchanged_since stays exact after an object is removed (no ABA); they grow
 * with the number of distinct names, not with traffic.
 *
 * ---------------------------------------------------------------- dedup
 * (client_id, request_id) → the outcome of a COMMITTED or CONFLICT proposal
 * is stored in the entry's transaction (replicated state); a later proposal
 * with a known pair returns the stored outcome and applies nothing. INVALID
 * outcomes are not stored (a retry is judged again). Bounds, applied at the
 * end of every entry: pairs whose entry time is more than
 * ORBIT_LEDGER_DEDUP_AGE_MS (10 minutes) before the entry's time are
 * dropped, then the oldest beyond ORBIT_LEDGER_DEDUP_MAX (100,000) — so an
 * entry whose proposals are all INVALID may still drop old pairs by its
 * time. A retry later than that is applied again. The records are kept in
 * the order they were made (pruning takes the front) and found by pair
 * through an index in memory (ledger_hmap.h).
 *
 * ---------------------------------------------------------------- entries
 * Entry time: the ledger time is the entry's time_ms (the leader keeps it
 * monotonic; apply does not reorder time). An entry that does not decode,
 * has time_ms < 0 or above 2^62, or more than ORBIT_LEDGER_ENTRY_MAX
 * proposals is applied as a no-op that advances the applied index and is
 * counted (stats.undecodable), so replicas never diverge on it. Raft indexes
 * passed to apply increase but may skip (entries that are not the ledger's).
 *
 * ---------------------------------------------------------------- hash
 * orbit_ledger_hash is SHA-256 over every record of every table (one LMDB
 * sub-database each, see ledger_store.h), as (tag + key, value), tables in
 * tag order and each in key order, except the
 * position bookkeeping (applied Raft index, last entry time), the cluster id,
 * the compacted-history mark and the history records themselves. History is
 * covered instead by a chained digest (SHA-256 of the previous digest, the
 * index, the time and the proposal bytes of each commitment) that apply keeps
 * in the state, so compaction — a local decision — never changes the hash.
 * Two replicas that applied the same log have equal (applied index, hash).
 *
 * Thread rules: a ledger belongs to one thread at a time (LMDB's single
 * writer): every function is called from the thread that holds it. A
 * follower's applier (root/ledger_applier.h) hands it between the loop and
 * its own thread; reads of the committed state in a read transaction of
 * their own (orbit_ledger_topology_epoch, a snapshot copy without its
 * applied index) may run beside that thread's apply. No function blocks on
 * anything but disk.
 * Errors are project codes (orbit_err.h); functions without side effects on
 * failure unless said otherwise. */
#ifndef ORBIT_LEDGER_H
#define ORBIT_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.pb-c.h"

#define ORBIT_LEDGER_MAP_SIZE     (4ULL << 30)
#define ORBIT_LEDGER_NAME_MAX     63
#define ORBIT_LEDGER_CLIENT_MAX   127
#define ORBIT_LEDGER_KEY_MAX      160 /* an unchanged_since key */
#define ORBIT_LEDGER_ENDPOINT_MAX 255
#define ORBIT_LEDGER_COMMAND_MAX  4096
#define ORBIT_LEDGER_CPU_MAX_M    100000000LL /* 100,000 cores */
#define ORBIT_LEDGER_MEM_MAX      (1LL << 50) /* 1 PiB */
#define ORBIT_LEDGER_GPUS_MAX     64
#define ORBIT_LEDGER_SUM_MAX      (1LL << 62) /* node / quota usage sums */
#define ORBIT_LEDGER_GANG_MAX     1024
#define ORBIT_LEDGER_TTL_MAX_MS   (86400LL * 1000) /* one day */
#define ORBIT_LEDGER_COUNT_MAX    1000000          /* ModuleSpec.count */
#define ORBIT_LEDGER_TIER_MAX     16
#define ORBIT_LEDGER_COND_MAX     64    /* entries per precondition list */
#define ORBIT_LEDGER_ENTRY_MAX    65536 /* proposals per entry */
/* Field numbers of Entry (proto/ledger.proto), which the leader frames by
 * hand from its proposals' bytes (test_ledger checks them against the
 * descriptor). */
#define ORBIT_LEDGER_ENTRY_TIME      1
#define ORBIT_LEDGER_ENTRY_PROPOSALS 2
#define ORBIT_LEDGER_DEDUP_AGE_MS    (10LL * 60 * 1000)
#define ORBIT_LEDGER_DEDUP_MAX       100000
#define ORBIT_LEDGER_HASH_LEN        32

typedef struct orbit_ledger orbit_ledger_t;

/* ------------------------------------------------------------ lifecycle */

/* Open (creating if needed) the ledger environment in directory dir (created
 * with mode 0700 if missing). A new environment starts empty: applied index
 * 0, ledger index 0, no cluster id. On failure *lp is NULL and err holds a
 * one-line reason (when err is not NULL).
 * Errors: ORBIT_EINVAL (NULL argument), ORBIT_EIO (directory or LMDB error),
 * ORBIT_ECORRUPT (not a ledger of this format version), ORBIT_ENOMEM. */
int orbit_ledger_open(const char *dir, orbit_ledger_t **lp, char *err, size_t errlen);

/* Close the environment and free the ledger; NULL-safe, clears *lp. Syncs
 * the environment to disk first (commits are not synced one by one). */
void orbit_ledger_close(orbit_ledger_t **lp);

/* True when open found the environment of a boot that ended while it was
 * open (an OS crash or power loss: unsynced commits may be torn) and threw
 * it away; the ledger starts empty and Raft restores it. */
bool orbit_ledger_discarded(const orbit_ledger_t *l);

/* The cluster id stored in the environment ("" if none yet). Valid until the
 * next call on l. */
const char *orbit_ledger_cluster_id(const orbit_ledger_t *l);

/* Store id as the environment's cluster id if it has none; accept it if it
 * is the same. A different stored id is refused: the data directory belongs
 * to another cluster (reason in err). id follows the id rule.
 * Errors: ORBIT_EINVAL (bad id or mismatch; nothing written), ORBIT_EIO. */
int orbit_ledger_set_cluster_id(orbit_ledger_t *l, const char *id, char *err, size_t errlen);

/* ------------------------------------------------------------ apply */

/* Apply the committed entry (a packed Orbit__Ledger__Entry) at Raft index
 * raft_index, as described at the top of this file.
 *
 * On ORBIT_OK, *outcomes is a malloc'd array of *n outcomes (one per
 * proposal, in order; NULL when *n is 0), each its own unpacked message:
 * free all with orbit_ledger_outcomes_free(). raft_index <= the applied
 * index is a no-op (already applied) with *n = 0. An undecodable entry is
 * ORBIT_OK with *n = 0 and advances the applied index.
 *
 * On failure nothing is applied (the transaction is aborted), the applied
 * index is unchanged, *outcomes is NULL and *n is 0. Failures are
 * environmental, not caused by the entry, and the same entry must be applied
 * again before any later one (a replica that cannot must stop).
 * Errors: ORBIT_EINVAL (NULL argument), ORBIT_ENOMEM, ORBIT_EIO (LMDB,
 * including a full map), ORBIT_ECORRUPT (a stored record fails to decode). */
int orbit_ledger_apply(orbit_ledger_t *l, const uint8_t *entry, size_t len, uint64_t raft_index,
                       Orbit__Ledger__Outcome ***outcomes, size_t *n);

/* A committed entry to apply: its bytes and Raft index. */
typedef struct {
    const uint8_t *entry;
    size_t len;
    uint64_t raft_index;
} orbit_ledger_entry_t;

/* Apply entries[0..n) (raft indexes increasing) in one LMDB transaction,
 * with the same result as orbit_ledger_apply on each in turn but no
 * outcomes: what a replica that answers nobody needs. One transaction for
 * thousands of proposals instead of ~100 costs ~25 % less per proposal
 * (each transaction copies every page it changes). All or nothing: on
 * failure none is applied. Errors: those of orbit_ledger_apply;
 * ORBIT_EINVAL also for indexes that do not increase. */
int orbit_ledger_apply_many(orbit_ledger_t *l, const orbit_ledger_entry_t *entries, size_t n);

/* Free an outcome array from orbit_ledger_apply (NULL-safe). */
void orbit_ledger_outcomes_free(Orbit__Ledger__Outcome **outcomes, size_t n);

/* ------------------------------------------------------------ position */

/* Last applied Raft index (0: none). */
uint64_t orbit_ledger_applied_index(const orbit_ledger_t *l);
/* Last ledger index given to a commitment (0: none). */
uint64_t orbit_ledger_index(const orbit_ledger_t *l);
/* Time of the last applied entry (0: none). */
int64_t orbit_ledger_time(const orbit_ledger_t *l);

typedef struct {
    uint64_t applied_index;
    uint64_t ledger_index;
    int64_t time_ms;
    uint64_t undecodable;     /* entries applied as no-ops */
    uint64_t dedup_entries;   /* pairs in the dedup table */
    uint64_t compacted_index; /* history <= this is gone (0: none) */
    uint64_t topology_epoch;
} orbit_ledger_stats_t;

/* Fill *st from the last committed state. Errors: ORBIT_EINVAL, ORBIT_EIO. */
int orbit_ledger_stats(orbit_ledger_t *l, orbit_ledger_stats_t *st);

/* ------------------------------------------------------------ reads
 * Every read sees the state after the last applied entry. Names are copied
 * out; *_NOTFOUND means the object does not exist. Every read fails with
 * ORBIT_EINVAL on a NULL argument and ORBIT_EIO / ORBIT_ECORRUPT on a storage
 * error. */

typedef struct {
    int64_t cpu_m;
    int64_t mem;
    int64_t gpus;
} orbit_ledger_res_t;

typedef struct {
    char capsule[ORBIT_LEDGER_NAME_MAX + 1];
    char node[ORBIT_LEDGER_NAME_MAX + 1];
    char principal[ORBIT_LEDGER_NAME_MAX + 1]; /* "" if not charged */
    char gang[ORBIT_LEDGER_NAME_MAX + 1];      /* "" if not a gang member */
    orbit_ledger_res_t envelope;
    uint64_t epoch;
    uint64_t index; /* ledger index that placed it */
} orbit_ledger_placement_t;

typedef struct {
    orbit_ledger_res_t used; /* sum of active envelopes */
    uint64_t placements;
    uint64_t changed; /* ledger index of its last change (0 when it holds nothing) */
} orbit_ledger_node_t;

typedef struct {
    bool granted; /* false: usage only (charged placements, no grant) */
    orbit_ledger_res_t grant;
    orbit_ledger_res_t used;
    int32_t priority;
    int64_t until_ms; /* 0: no end */
} orbit_ledger_quota_t;

typedef struct {
    char holder[ORBIT_LEDGER_NAME_MAX + 1]; /* "" if released or expired */
    int64_t expires_ms;
    uint64_t epoch; /* fencing token; survives release */
} orbit_ledger_lease_t;

typedef struct {
    char gang[ORBIT_LEDGER_NAME_MAX + 1];
    char principal[ORBIT_LEDGER_NAME_MAX + 1];
    uint64_t epoch;
    uint64_t index;
    size_t members; /* member placements: orbit_ledger_get_placement */
} orbit_ledger_gang_t;

typedef struct {
    char shard[ORBIT_LEDGER_NAME_MAX + 1];
    uint32_t tier;
    char parent[ORBIT_LEDGER_NAME_MAX + 1]; /* "" : reports to the root */
    char endpoint[ORBIT_LEDGER_ENDPOINT_MAX + 1];
    uint64_t children;
    uint64_t racks;
} orbit_ledger_shard_t;

/* Placement of capsule. Errors: ORBIT_ENOTFOUND. */
int orbit_ledger_get_placement(orbit_ledger_t *l, const char *capsule,
                               orbit_ledger_placement_t *out);
/* Gang; members counts its placements. Errors: ORBIT_ENOTFOUND. */
int orbit_ledger_get_gang(orbit_ledger_t *l, const char *gang, orbit_ledger_gang_t *out);
/* Usage on node (zeros if nothing is placed there; never ENOTFOUND). */
int orbit_ledger_get_node(orbit_ledger_t *l, const char *node, orbit_ledger_node_t *out);
/* Quota of principal (grant and usage). Errors: ORBIT_ENOTFOUND (neither a
 * grant nor usage). */
int orbit_ledger_get_quota(orbit_ledger_t *l, const char *principal, orbit_ledger_quota_t *out);
/* Lease on resource, including a released one (holder ""; its epoch is
 * kept). Errors: ORBIT_ENOTFOUND (never acquired). */
int orbit_ledger_get_lease(orbit_ledger_t *l, const char *resource, orbit_ledger_lease_t *out);
/* Capsule bound to identity (capsule has room for a name).
 * Errors: ORBIT_ENOTFOUND. */
int orbit_ledger_get_identity(orbit_ledger_t *l, const char *identity,
                              char capsule[ORBIT_LEDGER_NAME_MAX + 1]);
/* Identity bound to capsule. Errors: ORBIT_ENOTFOUND. */
int orbit_ledger_get_capsule_identity(orbit_ledger_t *l, const char *capsule,
                                      char identity[ORBIT_LEDGER_NAME_MAX + 1]);
/* Desired state of mission/module: *spec is malloc'd (free with
 * orbit__ledger__module_spec__free_unpacked(*spec, NULL)); epoch (may be
 * NULL) is the last adjustment's epoch. Errors: ORBIT_ENOTFOUND,
 * ORBIT_ENOMEM. */
int orbit_ledger_get_module(orbit_ledger_t *l, const char *mission, const char *module,
                            Orbit__Ledger__ModuleSpec **spec, uint64_t *epoch);
/* Shard. Errors: ORBIT_ENOTFOUND. */
int orbit_ledger_get_shard(orbit_ledger_t *l, const char *shard, orbit_ledger_shard_t *out);
/* Owner shard of rack. Errors: ORBIT_ENOTFOUND. */
int orbit_ledger_get_rack(orbit_ledger_t *l, const char *rack,
                          char shard[ORBIT_LEDGER_NAME_MAX + 1]);
/* Last-changed ledger index of key (see "Keys" above); 0 if never touched. */
int orbit_ledger_key_index(orbit_ledger_t *l, const char *key, uint64_t *index);
/* The topology epoch: last-changed index of "topology" (0: none yet). */
uint64_t orbit_ledger_topology_epoch(orbit_ledger_t *l);

/* The object named by key ("placement/<capsule>", "gang/<g>", "node/<n>",
 * "principal/<p>", "lease/<r>", "identity/<id>", "module/<m>/<module>",
 * "shard/<s>", "rack/<r>", "topology") as a JSON object text (malloc'd, free
 * with free()), and the key's last-changed index (may be NULL). "topology"
 * is the whole tree: {"epoch", "shards":[{"shard","tier","parent",
 * "endpoint","children","racks"}], "racks":[{"rack","shard"}]}, in name
 * order. "node/<n>" lists the node's active placements (single and gang
 * members, from the in-memory index apply keeps with every placement): {"node",
 * "used":{res}, "placements", "capsules":[{"capsule", "envelope":{"cpu_m",
 * "mem","gpus"}, "principal" (if charged), "gang" (if a member), "index"}]}
 * in capsule order; a node with nothing placed has zero usage and
 * "capsules":[] (never ENOTFOUND).
 * Errors: ORBIT_EINVAL (unknown key form), ORBIT_ENOTFOUND, ORBIT_ENOMEM. */
int orbit_ledger_get_json(orbit_ledger_t *l, const char *key, char **json, uint64_t *index);

/* ------------------------------------------------------------ walks
 * Every object of a kind, in name order, from one read transaction (a
 * consistent state), each borrowed for the duration of its callback. The
 * callback returns 0 to go on, > 0 to stop (the walk then returns ORBIT_OK),
 * < 0 to stop with that error; it must not call into l.
 * Errors: ORBIT_EINVAL (NULL l or fn), ORBIT_EIO, ORBIT_ECORRUPT,
 * ORBIT_ENOMEM, or the callback's error. */

/* Every active placement (single and gang member), in capsule order. */
typedef int (*orbit_ledger_placement_fn)(void *ctx, const orbit_ledger_placement_t *p);
int orbit_ledger_each_placement(orbit_ledger_t *l, orbit_ledger_placement_fn fn, void *ctx);

/* Every module with a spec, in "mission/module" order: its spec, the last
 * adjustment's epoch and the last-changed index of module/<m>/<module>. */
typedef int (*orbit_ledger_module_fn)(void *ctx, const char *mission, const char *module,
                                      const Orbit__Ledger__ModuleSpec *spec, uint64_t epoch,
                                      uint64_t index);
int orbit_ledger_each_module(orbit_ledger_t *l, orbit_ledger_module_fn fn, void *ctx);

/* Every principal with a grant or usage, in principal order. */
typedef int (*orbit_ledger_quota_fn)(void *ctx, const char *principal,
                                     const orbit_ledger_quota_t *q);
int orbit_ledger_each_quota(orbit_ledger_t *l, orbit_ledger_quota_fn fn, void *ctx);

/* Every identity binding, in identity order. */
typedef int (*orbit_ledger_identity_fn)(void *ctx, const char *identity, const char *capsule);
int orbit_ledger_each_identity(orbit_ledger_t *l, orbit_ledger_identity_fn fn, void *ctx);

/* The ModuleAdjustment merge (see "semantics"): the stored spec o (may be
 * NULL) with adjustment a into *s, each field of a that is present
 * replacing o's, resources as a whole (copied into *res, which *s then
 * points to). Strings in *s are borrowed from o and a. Shared with the
 * scheduling view, which must merge exactly as apply does. */
void orbit_ledger_module_merge(const Orbit__Ledger__ModuleSpec *o,
                               const Orbit__Ledger__ModuleSpec *a, Orbit__Ledger__ModuleSpec *s,
                               Orbit__Ledger__Resources *res);

/* ------------------------------------------------------------ history */

/* One committed commitment, borrowed for the duration of a callback. */
typedef struct {
    uint64_t index;
    int64_t time_ms;
    const uint8_t *proposal; /* packed Orbit__Ledger__Proposal as applied */
    size_t proposal_len;
    const char *keys; /* nkeys NUL-terminated keys it touched, back to back, sorted */
    size_t nkeys;
} orbit_ledger_commit_t;

/* Return 0 to go on, > 0 to stop (history_from then returns ORBIT_OK), < 0 to
 * stop with that error. */
typedef int (*orbit_ledger_commit_fn)(void *ctx, const orbit_ledger_commit_t *c);

/* Call fn for every committed commitment with index >= from_index, in index
 * order (from_index 0 means 1). The callback must not call into l.
 * Errors: ORBIT_ECOMPACTED (from_index <= the compacted index; *compacted, if
 * not NULL, is set to it: load a snapshot and resume from compacted + 1),
 * ORBIT_EINVAL, ORBIT_EIO, ORBIT_ECORRUPT, or the callback's error. */
int orbit_ledger_history_from(orbit_ledger_t *l, uint64_t from_index, orbit_ledger_commit_fn fn,
                              void *ctx, uint64_t *compacted);

/* True if commitment c touched a key starting with prefix ("" matches all). */
bool orbit_ledger_commit_touches(const orbit_ledger_commit_t *c, const char *prefix);

/* Delete history up to upto_index (capped at the ledger index) and record it
 * as the compacted index (never lowered). A local decision: not replicated,
 * not in the hash. A write transaction: from the thread that applies.
 * Errors: ORBIT_EINVAL, ORBIT_EIO. */
int orbit_ledger_compact_history(orbit_ledger_t *l, uint64_t upto_index);

/* From now on apply keeps the history to `keep` commitments (0, the
 * default: all): each apply transaction drops the oldest, a bounded number
 * that follows the transaction's own size (up to 256 more than twice the
 * commitments it adds), so the compaction is spread over the applies
 * instead of one long delete (~25-50 ms per 100,000 records on the
 * replica's loop, measured at 256 proposers). Call it before anything
 * applies (after open), or from the thread that applies. */
void orbit_ledger_set_history_keep(orbit_ledger_t *l, uint64_t keep);

/* ------------------------------------------------------------ leader helpers */

typedef struct {
    Orbit__Ledger__RefKind kind; /* REF_LEASE or REF_QUOTA */
    char key[ORBIT_LEDGER_NAME_MAX + 1];
    int64_t expires_ms;
} orbit_ledger_due_t;

/* Leases and quota grants expired at now_ms (expiry <= now_ms), earliest
 * first, at most max of them into out; *n is how many were written. Pure
 * read: the leader turns them into Expiry proposals.
 * Errors: ORBIT_EINVAL, ORBIT_EIO, ORBIT_ECORRUPT. */
int orbit_ledger_due_expiries(orbit_ledger_t *l, int64_t now_ms, orbit_ledger_due_t *out,
                              size_t max, size_t *n);

/* ------------------------------------------------------------ hash, snapshots */

/* SHA-256 of the replicated state (see "hash" above) into out. Walks the
 * state (not the history) once per change: the result is kept until the
 * next apply or restore. Errors: ORBIT_EINVAL, ORBIT_EIO. */
int orbit_ledger_hash(orbit_ledger_t *l, uint8_t out[ORBIT_LEDGER_HASH_LEN]);

/* Write a compact copy of the environment (an LMDB data file) to fd, from
 * its current position; *applied_index (may be NULL) is the applied index
 * the copy holds. fd is not closed nor synced.
 * Errors: ORBIT_EINVAL, ORBIT_EIO. */
int orbit_ledger_snapshot(orbit_ledger_t *l, int fd, uint64_t *applied_index);

/* Build the in-memory node -> capsules index now (from the placements) rather
 * than at the first "node/..." get, which would otherwise pay for it; apply
 * keeps it current afterwards. *capsules (may be NULL): placements indexed.
 * Errors: ORBIT_EINVAL, ORBIT_EIO, ORBIT_ENOMEM. */
int orbit_ledger_index_nodes(orbit_ledger_t *l, size_t *capsules);

/* A copy of the environment in memory (*buf, *len: a read-only mapping of
 * an anonymous memory file; release with orbit_ledger_snapshot_free).
 * compact: a compact copy (free pages left out, pages renumbered: smaller,
 * about twice the CPU); otherwise the data file as it is, up to its last
 * used page. Both are valid LMDB files for restore.
 * With applied_index NULL this may run on another thread than the one
 * applying (a read transaction: the copy holds whatever was committed when
 * it began), but not concurrently with restore or close.
 * Errors: ORBIT_EINVAL, ORBIT_EIO, ORBIT_ENOMEM. */
int orbit_ledger_snapshot_buf(orbit_ledger_t *l, bool compact, uint8_t **buf, size_t *len,
                              uint64_t *applied_index);
void orbit_ledger_snapshot_free(uint8_t *buf, size_t len);

/* Replace the whole state with the snapshot read from fd (to its end): the
 * snapshot is written next to the environment, checked (an LMDB file of
 * this format whose cluster id, when both have one, equals ours), synced,
 * then renamed over the data file while the environment is closed, and
 * reopened. Applied index, history and the compacted mark come with it.
 * On a failure before the rename the old state is untouched; if reopening
 * fails after it the ledger is left closed and every later call but another
 * restore (or close) fails with ORBIT_EIO.
 * Errors: ORBIT_EINVAL (not a ledger snapshot, or of another cluster; reason
 * in err), ORBIT_EIO, ORBIT_ENOMEM. */
int orbit_ledger_restore(orbit_ledger_t *l, int fd, char *err, size_t errlen);

/* The same from a buffer (copied). Errors: those of orbit_ledger_restore. */
int orbit_ledger_restore_buf(orbit_ledger_t *l, const uint8_t *buf, size_t len, char *err,
                             size_t errlen);

#endif
