/* orbit_sched_plan: the reference scheduler's decisions, one round at a
 * time, over a scheduling view (root/orbit_sched_view.h) — what to place,
 * where, and what to revoke — as proposals ("actions") that worker threads
 * send to the ledger and hand back with their outcomes.
 *
 * ---------------------------------------------------------------- a round
 * Modules in order: revoked ones (no spec) first, then by ModuleSpec
 * priority, highest first (then by name). For each module:
 *   surplus   a placement of a module without spec, with an index >= count
 *             or an id that is not mission/module/index -> Revocation
 *             (a gang member: the gang as a whole, REF_GANG); for a gang
 *             module, a gang "mission/module" whose member count is not
 *             count, and any placement of the module outside that gang.
 *   failed    a capsule its node reports FAILED, OOM_KILLED or EXITED with
 *             a nonzero code is backed off (per capsule, or per gang: 1 s
 *             doubling to 60 s, reset after 60 s RUNNING, kept in memory):
 *             the failed placement stays for the delay, so its state and
 *             reason stay visible, and is then revoked (Revocation; a gang
 *             as a whole) and placed again. The same report (node, state,
 *             since) is acted on once. EXITED 0 is done and left alone.
 *   missing   index < count and not placed -> Placement on a node chosen by
 *             orbit_sched_pick (a module whose capsule finds no node, or
 *             whose principal lacks quota room, is left for a later round);
 *             each scheduler walks a module's indexes from its own offset
 *             so that several of them start on different capsules. A gang
 *             module is placed as one GangPlacement "mission/module" with
 *             all count members, chosen accounting for each other (at most
 *             64 distinct nodes, the ledger's precondition limit): all or
 *             nothing.
 *   unbound   a placement of a module with a spec that has had no identity
 *             for bind_repair_ms (its placer died between the two
 *             proposals) -> IdentityBind.
 * What the round plans is reserved (node usage, principal quota) until its
 * action comes back, so the next round does not plan it twice; at most
 * window actions are in flight, and capsules that met a conflict are
 * retried at most retry_budget per round (after 5 conflicts in a row a
 * capsule waits as a failed one does).
 *
 * ---------------------------------------------------------------- proposals
 * Placement{capsule, node, envelope = module resources, epoch = module's
 * ledger index, principal} under node_fits{node, the capacity seen, in the
 * dimensions the envelope asks for} AND quota_available{principal,
 * envelope} (with a principal) AND identity_free{"<index>.<module>.<mission>"}
 * — left out once the ledger said the identity is bound to this very
 * capsule (revoking a placement keeps its identity); after COMMITTED the
 * worker proposes IdentityBind{capsule, identity}. A gang: one node_fits per
 * node, quota for all members, identity_free for each (up to 64), then one
 * bind per member. Revocations carry no precondition, except the reaper's
 * (unchanged_since lease/reaper, see orbit_sched_reaper.h).
 *
 * ---------------------------------------------------------------- outcomes
 * COMMITTED: noted in the view at once (orbit_sched_view_note_own), binds
 * too. CONFLICT: counted by `which`; node_fits makes the node doubtful
 * (skipped) until the next view poll; capsule_placed / gang_placed mean
 * another scheduler won. INVALID and transport errors: counted, logged,
 * retried next round.
 *
 * Thread rules: a plan belongs to the thread that owns its view. Actions
 * handed out are owned by the receiver until given back to
 * orbit_sched_plan_done (a worker may run one in another thread meanwhile).
 * Errors are project codes (orbit_err.h). */
#ifndef ORBIT_SCHED_PLAN_H
#define ORBIT_SCHED_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.pb-c.h"
#include "orbit_sched_score.h"
#include "orbit_wire.h"
#include "orbit_sched_view.h"

#define ORBIT_SCHED_KEY_MAX 72 /* "x:" + an id of up to 63 bytes + NUL, rounded */
/* Where orbit-sched's FNV-1a hashes start (its seed from the prefix, a
 * module's offset): FNV's offset basis with its last digit lost long ago,
 * kept on purpose, since changing it would move every scheduler's seed. */
#define ORBIT_SCHED_HASH_START 1469598103934665603ULL
#define ORBIT_SCHED_ID_MAX     64 /* an id (capsule, gang, identity) + NUL */

typedef enum {
    ORBIT_SCHED_ACT_PLACE,  /* Placement, then IdentityBind */
    ORBIT_SCHED_ACT_GANG,   /* GangPlacement, then one IdentityBind per member */
    ORBIT_SCHED_ACT_REVOKE, /* Revocation of a placement or a gang */
    ORBIT_SCHED_ACT_BIND,   /* IdentityBind alone (repair) */
} orbit_sched_act_kind_t;

typedef enum {
    ORBIT_SCHED_WHY_SURPLUS,
    ORBIT_SCHED_WHY_FAILED,
    ORBIT_SCHED_WHY_REAPED,
    ORBIT_SCHED_WHY_COUNT
} orbit_sched_why_t;

/* "surplus", "failed", "reaped". */
const char *orbit_sched_why_name(orbit_sched_why_t w);

/* One unit of work for a worker: a proposal and the binds that follow its
 * COMMITTED outcome. */
typedef struct orbit_sched_act {
    orbit_sched_act_kind_t kind;
    orbit_sched_why_t why;         /* REVOKE */
    char key[ORBIT_SCHED_ID_MAX];  /* capsule (PLACE, BIND, REVOKE of a placement) or gang */
    uint64_t fence_index;          /* reaper's revocations: lease/reaper index carried */
    Orbit__Ledger__Proposal *prop; /* in mem */
    size_t nbinds;
    Orbit__Ledger__Proposal **binds; /* in mem; proposed in order after prop commits */
    orbit_arena_t *mem;              /* owned: prop and binds, freed at once */
    /* Filled by whoever runs it (orbit_sched_work_run). */
    int rc; /* ORBIT_OK: outcome set */
    char err[160];
    Orbit__Ledger__Outcome *outcome;        /* owned */
    Orbit__Ledger__Outcome **bind_outcomes; /* nbinds entries, NULL when not proposed */
} orbit_sched_act_t;

/* NULL-safe; clears *pa. */
void orbit_sched_act_destroy(orbit_sched_act_t **pa);

/* A revocation action (ref kind REF_PLACEMENT or REF_GANG, key the capsule
 * or gang) by proposer name (copied into the proposal's client_id); with
 * fence_key non-NULL it carries unchanged_since{fence_key, fence_index}.
 * NULL when out of memory or a name is too long. */
orbit_sched_act_t *orbit_sched_act_revoke(const char *proposer, Orbit__Ledger__RefKind kind,
                                          const char *key, orbit_sched_why_t why,
                                          const char *fence_key, uint64_t fence_index);

/* Identity of capsule index i of mission/module: "<i>.<module>.<mission>".
 * Errors: ORBIT_EINVAL (too long for out). */
int orbit_sched_identity(const char *mission, const char *module, uint32_t i, char *out,
                         size_t outlen);

/* Split "mission/module/index" of the given mission and module: the index
 * (decimal, no leading zeros, < 2^32). Errors: ORBIT_EINVAL. */
int orbit_sched_capsule_index(const char *capsule, const char *mission, const char *module,
                              uint32_t *index);

typedef struct {
    orbit_sched_score_cfg_t score;
    uint64_t seed;            /* PRNG seed (sampling, module offsets) */
    const char *proposer;     /* client_id put into built proposals (copied) */
    uint32_t window;          /* actions in flight at most (default 512) */
    uint32_t retry_budget;    /* conflicted capsules retried per round (default 256) */
    int64_t backoff_min_ms;   /* 1000 */
    int64_t backoff_max_ms;   /* 60000 */
    int64_t backoff_reset_ms; /* 60000: RUNNING this long forgets the failures */
    int64_t bind_repair_ms;   /* 5000 */
    int64_t claim_ms;         /* 1000: a module another client placed in within this long (ledger
                                 time, orbit_sched_view_set_self) comes after the others of its
                                 priority: two schedulers filling one module race for the same
                                 capsules. 0: no such ordering */
    int64_t sweep_ms;         /* 10000: how often per-capsule memory of capsules, gangs
                                 and placements that are gone is dropped */
} orbit_sched_plan_cfg_t;

void orbit_sched_plan_cfg_default(orbit_sched_plan_cfg_t *c);

/* Conflict kinds counted by name; anything else is "other". */
#define ORBIT_SCHED_CONFLICT_KINDS 11
extern const char *const orbit_sched_conflict_names[ORBIT_SCHED_CONFLICT_KINDS];

typedef struct {
    uint64_t rounds;
    uint64_t proposals; /* proposals sent (binds included) with an answer or an error */
    uint64_t placed;    /* capsules placed (each gang member counted) */
    uint64_t gangs_placed;
    uint64_t binds; /* identity binds committed */
    uint64_t conflicts[ORBIT_SCHED_CONFLICT_KINDS];
    uint64_t retries;                        /* capsules proposed again after a conflict */
    uint64_t revoked[ORBIT_SCHED_WHY_COUNT]; /* committed revocations */
    uint64_t backoffs;                       /* capsules (or gangs) put into backoff */
    uint64_t held_back;                      /* placements skipped in a round for a backoff */
    uint64_t quota_blocked;                  /* modules skipped in a round for lack of quota */
    uint64_t unplaceable; /* capsules (or gangs) without an eligible node in a round */
    uint64_t invalid;     /* INVALID outcomes */
    uint64_t errors;      /* proposals without an outcome (timeout, transport) */
    uint64_t max_index;   /* highest ledger index of this scheduler's commits */
    uint64_t remembered;  /* capsules and gangs with a backoff, conflict count, own identity
                             or missing bind on record */
    uint64_t forgotten;   /* such records dropped: their capsule or gang is gone */
    uint64_t in_flight;
    uint64_t walks;   /* modules whose placements a round went through */
    uint64_t settled; /* modules a round passed over: settled, and unchanged since */
    orbit_sched_pick_stats_t pick;
} orbit_sched_plan_stats_t;

typedef struct orbit_sched_plan orbit_sched_plan_t;

/* NULL when out of memory. cfg is copied. */
orbit_sched_plan_t *orbit_sched_plan_new(const orbit_sched_plan_cfg_t *cfg);
/* NULL-safe, clears *pp. Actions still out are not touched. */
void orbit_sched_plan_destroy(orbit_sched_plan_t **pp);

/* Receives each action of a round; ownership passes to the callee. */
typedef void (*orbit_sched_emit_fn)(void *arg, orbit_sched_act_t *a);

/* One round at now_ms (the caller's monotonic clock). Returns the number
 * of actions emitted, or ORBIT_ENOMEM (actions emitted before stay valid
 * and in flight). */
int orbit_sched_plan_round(orbit_sched_plan_t *p, const orbit_sched_view_t *v, int64_t now_ms,
                           orbit_sched_emit_fn emit, void *arg);

/* True when the last round left work for later (window full, retry budget
 * spent): run the next one as soon as actions come back. */
bool orbit_sched_plan_more(const orbit_sched_plan_t *p);

/* Count an action made elsewhere (the reaper's revocations) as in flight,
 * so rounds do not plan the same key. */
void orbit_sched_plan_track(orbit_sched_plan_t *p, const orbit_sched_act_t *a);

/* True when a placement (REF_PLACEMENT, capsule) or gang (REF_GANG) has an
 * action in flight. */
bool orbit_sched_plan_busy(const orbit_sched_plan_t *p, Orbit__Ledger__RefKind kind,
                           const char *key);

/* An action came back with its outcome (or rc): release what it reserved,
 * note what committed in v, count, and free it (*pa cleared). */
void orbit_sched_plan_done(orbit_sched_plan_t *p, orbit_sched_view_t *v, orbit_sched_act_t **pa,
                           int64_t now_ms);

/* Call after every view poll: nodes doubted before it are trusted again. */
void orbit_sched_plan_polled(orbit_sched_plan_t *p);

/* Current backoff of key ("c:<capsule>" or "g:<gang>"): the delay its last
 * failure got (the next one doubles it) and the earliest time it may be
 * placed again.
 * Errors: ORBIT_ENOTFOUND (no backoff). */
int orbit_sched_plan_backoff(const orbit_sched_plan_t *p, const char *key, int64_t *delay_ms,
                             int64_t *not_before_ms);

void orbit_sched_plan_stats(const orbit_sched_plan_t *p, orbit_sched_plan_stats_t *out);

#endif
