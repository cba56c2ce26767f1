/* topology: the federation tree as the ledger holds it — shards (id, tier,
 * parent, endpoint), rack → shard ownership and the topology epoch — with
 * the ledger's own rules for changing it, whole-model validation, the
 * rendezvous failover order of a rack's candidate shards, and the lists the
 * CLI draws the tree from. A pure in-memory model: no I/O, no clock.
 *
 * ---------------------------------------------------------------- the tree
 *   root ← shards of tier ≥ 2 (zone shards) ← tier-1 shards (rack shards)
 *        ← racks
 * A shard with an empty parent reports to the root, whatever its tier (a
 * small fleet has only tier-1 shards under the root). A shard with a parent
 * sits exactly one tier below it. Racks are owned by tier-1 shards only.
 * Racks come into being when first moved to a shard and are never removed
 * (the ledger has no rack removal either).
 *
 * ---------------------------------------------------------------- the rules
 * The mutators (add_shard, remove_shard, move_rack, apply) judge a change
 * exactly as the ledger's apply does (root/ledger.h, "TopologyChange"), in
 * the same order: first the form of the change (the ledger's INVALID), then
 * the state (its CONFLICT). Every refusal changes nothing and writes one
 * line to err that starts with the ledger's word for it:
 *   "shard_join: …" / "shard_leave: …" / "rack_move: …"  malformed change
 *   "shard_exists: …"   add of an id that exists
 *   "parent: …"         parent missing, or not exactly one tier above
 *   "cycle: …"          add that would close a loop (only possible in a
 *                       model loaded inconsistent with put_*: the tier rule
 *                       alone rules loops out)
 *   "no such shard …"   remove of an unknown shard
 *   "shard_busy: …"     remove of a shard that owns racks or has children
 *                       (drain first: orbit_topology_drain)
 *   "shard: …"          move to a missing shard or one not of tier 1
 *   "stale_epoch: …"    orbit_topology_check_epoch
 * Codes: ORBIT_ENOTFOUND when the change names a shard that does not exist
 * (parent, remove, move target), ORBIT_EAGAIN for a stale epoch (refetch and
 * plan again), ORBIT_EINVAL for every other refusal.
 *
 * ---------------------------------------------------------------- epoch
 * The epoch is the ledger index of the last topology change (the
 * last-changed index of the ledger key "topology"). The model never moves it
 * itself: whoever mirrors the ledger sets it after applying a committed
 * change. Fencing a change against concurrent operators is the ledger's
 * unchanged_since("topology", epoch); check_epoch is the local early test.
 *
 * ---------------------------------------------------------------- candidates
 * A rack's candidate shards, in failover order: its owner first, then every
 * other tier-1 shard in rendezvous order for the rack (topology_hrw.h). The
 * ranking spans all tier-1 shards, not only those of the owner's zone.
 *
 * Names follow the ledger's plain-name rule: 1..ORBIT_TOPOLOGY_NAME_MAX bytes
 * of [A-Za-z0-9._-]; endpoints 1..ORBIT_TOPOLOGY_ENDPOINT_MAX printable
 * non-space ASCII bytes. Every string argument is copied; no reference is
 * kept. err may be NULL; otherwise at most errlen bytes are written, and only
 * on failure.
 *
 * Thread rules: a model belongs to one thread. Reads iterate the model's
 * hash tables with their internal cursors, so even two readers of one model
 * must not run at once. */
#ifndef ORBIT_TOPOLOGY_H
#define ORBIT_TOPOLOGY_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.pb-c.h"

/* The same bounds as the ledger's (ORBIT_LEDGER_NAME_MAX, …_ENDPOINT_MAX,
 * …_TIER_MAX); the unit test holds them equal. */
#define ORBIT_TOPOLOGY_NAME_MAX     63
#define ORBIT_TOPOLOGY_ENDPOINT_MAX 255
#define ORBIT_TOPOLOGY_TIER_MAX     16

typedef struct orbit_topology orbit_topology_t;

typedef struct {
    char id[ORBIT_TOPOLOGY_NAME_MAX + 1];
    uint32_t tier;                                  /* 1..ORBIT_TOPOLOGY_TIER_MAX */
    char parent[ORBIT_TOPOLOGY_NAME_MAX + 1];       /* "": reports to the root */
    char endpoint[ORBIT_TOPOLOGY_ENDPOINT_MAX + 1]; /* "": none declared */
    uint64_t children; /* derived on read: shards whose parent is this one */
    uint64_t racks;    /* derived on read: racks this shard owns */
} orbit_topology_shard_t;

typedef enum {
    ORBIT_TOPOLOGY_JOIN = 1, /* ShardJoin{shard, tier, parent, endpoint} */
    ORBIT_TOPOLOGY_LEAVE,    /* ShardLeave{shard} */
    ORBIT_TOPOLOGY_MOVE,     /* RackMove{rack, shard} */
} orbit_topology_op_t;

/* One topology change, the C form of Orbit__Ledger__TopologyChange. The
 * strings are borrowed for the duration of the call that takes the change. */
typedef struct {
    orbit_topology_op_t op;
    const char *shard;    /* JOIN, LEAVE: the shard; MOVE: the new owner */
    uint32_t tier;        /* JOIN */
    const char *parent;   /* JOIN: NULL or "" = reports to the root */
    const char *endpoint; /* JOIN: NULL or "" = none */
    const char *rack;     /* MOVE */
} orbit_topology_change_t;

/* ------------------------------------------------------------ lifecycle */

/* New empty model at epoch 0. NULL on ENOMEM. */
orbit_topology_t *orbit_topology_new(void);
/* Free the model; NULL-safe, clears *pt. */
void orbit_topology_destroy(orbit_topology_t **pt);
/* A deep copy of t (epoch included). NULL on ENOMEM or NULL t. */
orbit_topology_t *orbit_topology_dup(const orbit_topology_t *t);

/* ------------------------------------------------------------ epoch */

uint64_t orbit_topology_epoch(const orbit_topology_t *t);
void orbit_topology_set_epoch(orbit_topology_t *t, uint64_t epoch);
/* Refuse when the model is not at epoch expected (the caller planned against
 * another version of the tree).
 * Errors: ORBIT_EAGAIN ("stale_epoch: expected E, topology at M"). */
int orbit_topology_check_epoch(const orbit_topology_t *t, uint64_t expected, char *err,
                               size_t errlen);

/* ------------------------------------------------------------ changes */

/* ShardJoin: add shard id of tier (1..ORBIT_TOPOLOGY_TIER_MAX) under parent
 * (NULL or "": the root; else an existing shard of tier + 1) with endpoint
 * (NULL or "": none). Nothing changes on failure.
 * Errors: ORBIT_EINVAL (bad name, tier, parent name, endpoint; parent ==
 * id; shard_exists; parent of the wrong tier; cycle), ORBIT_ENOTFOUND
 * (parent missing), ORBIT_ENOMEM. */
int orbit_topology_add_shard(orbit_topology_t *t, const char *id, uint32_t tier, const char *parent,
                             const char *endpoint, char *err, size_t errlen);

/* ShardLeave: remove shard id, which must own no rack and have no child
 * shard. Nothing changes on failure.
 * Errors: ORBIT_EINVAL (bad name; shard_busy), ORBIT_ENOTFOUND. */
int orbit_topology_remove_shard(orbit_topology_t *t, const char *id, char *err, size_t errlen);

/* RackMove: make tier-1 shard `shard` the owner of rack (creating the rack
 * if new; already owned by it: success, no change). Nothing changes on
 * failure.
 * Errors: ORBIT_EINVAL (bad rack or shard name; shard not tier 1),
 * ORBIT_ENOTFOUND (shard missing), ORBIT_ENOMEM. */
int orbit_topology_move_rack(orbit_topology_t *t, const char *rack, const char *shard, char *err,
                             size_t errlen);

/* One change by its op, with the rules of the three functions above.
 * Errors: theirs; ORBIT_EINVAL for a NULL change or an unknown op. */
int orbit_topology_apply(orbit_topology_t *t, const orbit_topology_change_t *c, char *err,
                         size_t errlen);

/* Fill *c from the ledger message pb; c's strings point into pb (valid while
 * pb lives). Errors: ORBIT_EINVAL (NULL, or no change set: *c unchanged). */
int orbit_topology_change_from_pb(const Orbit__Ledger__TopologyChange *pb,
                                  orbit_topology_change_t *c);

/* Move every rack of shard id to its next candidate (the first candidate
 * that is not id: the highest-ranked other tier-1 shard), the drain that
 * must precede remove_shard. Racks only: child shards stay. All or nothing.
 * Errors: ORBIT_EINVAL (bad name; "shard_busy" when id owns racks and no
 * other tier-1 shard exists), ORBIT_ENOTFOUND, ORBIT_ENOMEM. */
int orbit_topology_drain(orbit_topology_t *t, const char *id, char *err, size_t errlen);

/* ------------------------------------------------------------ loading */

/* Insert or replace shard s->id as given (s->children and s->racks are
 * ignored), checking its fields but not its place in the tree: for
 * rebuilding a model from ledger reads that arrive in any order. Follow with
 * orbit_topology_validate.
 * Errors: ORBIT_EINVAL (bad id, tier, parent name, endpoint; parent == id),
 * ORBIT_ENOMEM; nothing changes on failure. */
int orbit_topology_put_shard(orbit_topology_t *t, const orbit_topology_shard_t *s, char *err,
                             size_t errlen);
/* Insert or replace rack's owner without checking that the owner exists.
 * Errors: ORBIT_EINVAL (bad name), ORBIT_ENOMEM; nothing changes on failure. */
int orbit_topology_put_rack(orbit_topology_t *t, const char *rack, const char *owner, char *err,
                            size_t errlen);

/* Check the whole model; the first failure is reported, checks in this
 * order, each over names in strcmp order:
 *   "cycle: a -> b -> a"                       a parent chain that loops
 *   "parent: a under b, missing"               a parent that does not exist
 *   "tier: a tier=1 under b tier=3, want 2"    a parent not one tier above
 *   "orphan_rack: r owner s missing"           a rack whose owner is gone
 *   "orphan_rack: r owner s tier=2, want 1"    a rack owned by a zone shard
 * A model built only with the mutators always validates.
 * Errors: ORBIT_EINVAL (the model is inconsistent), ORBIT_ENOMEM. */
int orbit_topology_validate(const orbit_topology_t *t, char *err, size_t errlen);

/* ------------------------------------------------------------ reads */

size_t orbit_topology_shard_count(const orbit_topology_t *t);
size_t orbit_topology_rack_count(const orbit_topology_t *t);

/* Copy of shard id, with its derived children and racks counts.
 * Errors: ORBIT_EINVAL (NULL argument), ORBIT_ENOTFOUND. */
int orbit_topology_get_shard(const orbit_topology_t *t, const char *id,
                             orbit_topology_shard_t *out);

/* Owner of rack. Errors: ORBIT_EINVAL (NULL argument), ORBIT_ENOTFOUND. */
int orbit_topology_rack_owner(const orbit_topology_t *t, const char *rack,
                              char owner[ORBIT_TOPOLOGY_NAME_MAX + 1]);

/* The lists below are new zlistx_t of strings the list owns (copies),
 * destroyed with zlistx_destroy(); *out is NULL on failure. An unknown name
 * gives an empty list. Errors: ORBIT_EINVAL (NULL t or out), ORBIT_ENOMEM. */

/* Ids of the shards under parent (NULL or "": those reporting to the root),
 * in strcmp order: walk it from the root to draw the tree. */
int orbit_topology_children(const orbit_topology_t *t, const char *parent, zlistx_t **out);
/* Ids of the shards of tier (0: every shard), in strcmp order. */
int orbit_topology_shards_of_tier(const orbit_topology_t *t, uint32_t tier, zlistx_t **out);
/* Racks owned by shard (NULL: every rack), in strcmp order. */
int orbit_topology_racks_of(const orbit_topology_t *t, const char *shard, zlistx_t **out);

/* Candidate shards of rack in failover order: the owner (if the rack has
 * one and it is a tier-1 shard), then every other tier-1 shard in
 * rendezvous order. An unknown rack gets the pure rendezvous order (where
 * it would be placed); no tier-1 shard gives an empty list. The same model
 * gives the same list on every call and in every copy, however it was
 * built. Errors: ORBIT_EINVAL (NULL or bad rack name), ORBIT_ENOMEM. */
int orbit_topology_candidates(const orbit_topology_t *t, const char *rack, zlistx_t **out);

/* The rendezvous winner for rack among the model's tier-1 shards: where the
 * rack would go if placement followed rendezvous alone (the owner may be
 * another shard). Errors: ORBIT_EINVAL (NULL argument), ORBIT_ENOTFOUND (no
 * tier-1 shard), ORBIT_ENOMEM. */
int orbit_topology_natural_owner(const orbit_topology_t *t, const char *rack,
                                 char owner[ORBIT_TOPOLOGY_NAME_MAX + 1]);

#endif
