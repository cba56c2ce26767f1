/* orbit_sched_reaper: the singleton that revokes placements from nodes that
 * have been DOWN too long, so that the schedulers place them elsewhere.
 *
 * ---------------------------------------------------------------- election
 * Every scheduler campaigns for the Lease on resource "reaper" (holder: its
 * name, ttl_ms) every ttl/3 while it does not hold it, and the holder renews
 * it every ttl/3. A COMMITTED lease outcome says "epoch=N,expires=T" in
 * observed; the holder keeps the ledger index of its latest successful
 * acquisition or renewal and the local time it sent that proposal. A new
 * epoch (a new holding) starts every down timer afresh and refills the
 * token bucket. CONFLICT lease_held: another holds it; this one stops.
 *
 * ---------------------------------------------------------------- fencing
 * Every revocation the holder proposes carries unchanged_since{"lease/
 * reaper", that index}: if anyone acquired the lease since (or it lapsed
 * and expired), the key changed and the ledger answers CONFLICT
 * unchanged_since — the holder was fenced: it stops acting (counted in
 * fenced) and campaigns again. A conflict on an index older than the
 * holder's latest renewal is its own renewal overtaking the revocation:
 * not fenced, the revocation is decided again later. To keep that rare the
 * holder renews while revocations are in flight only once its holding is
 * 2 ttl/3 old, and proposes none past that age until it renewed. It also stops
 * on its own when its renewal is ttl_ms old by its local clock (unless
 * trust_lease, which exists to test the fencing alone).
 *
 * ---------------------------------------------------------------- decisions
 * Nodes whose status is DOWN (never UNREACHABLE: that means the observers
 * failed, not the node) continuously for longer than grace_ms, timed from
 * when this holder first saw them down, get every placement revoked (a gang
 * member: its gang), at most rate per second (a token bucket, burst = rate).
 * When more than max_down_pct percent of the nodes in the view are DOWN or
 * UNREACHABLE at once, nothing at all is revoked (logged once a minute):
 * a large fraction of the fleet going dark together is a partition or an
 * outage of the observers, not dead machines.
 *
 * Thread rules: a reaper belongs to the thread that owns the view. */
#ifndef ORBIT_SCHED_REAPER_H
#define ORBIT_SCHED_REAPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.pb-c.h"
#include "orbit_sched_plan.h"
#include "orbit_sched_view.h"

#define ORBIT_SCHED_REAPER_RESOURCE "reaper"
#define ORBIT_SCHED_REAPER_KEY      "lease/reaper"

typedef struct {
    const char *holder;    /* lease holder: the scheduler's name (copied) */
    int64_t ttl_ms;        /* default 5000 */
    int64_t grace_ms;      /* default 30000 */
    uint32_t rate;         /* revocations per second, burst the same (default 20) */
    uint32_t max_down_pct; /* default 10 */
    bool trust_lease;      /* UNSAFE (tests): skip the local check of the lease's age */
} orbit_sched_reaper_cfg_t;

void orbit_sched_reaper_cfg_default(orbit_sched_reaper_cfg_t *c);

typedef struct {
    bool held;
    uint64_t epoch;       /* of the holding (0: never held) */
    uint64_t lease_index; /* ledger index of the latest acquisition or renewal */
    uint64_t campaigns;   /* lease proposals sent */
    uint64_t acquired;    /* new holdings */
    uint64_t renewed;
    uint64_t lost;              /* holdings ended by a conflict or fencing */
    uint64_t fenced;            /* revocations the ledger refused on the fence */
    uint64_t reaped;            /* revocations committed */
    uint64_t proposed;          /* revocations decided */
    uint64_t stale;             /* revocations overtaken by the holder's own renewal */
    uint64_t disruption_stops;  /* decisions that revoked nothing for too many dark nodes */
    uint64_t rate_limited;      /* decisions cut short by the token bucket */
    uint64_t expired_stops;     /* decisions skipped: the lease may have expired */
    uint32_t down, dark, fleet; /* at the last decision */
} orbit_sched_reaper_stats_t;

typedef struct orbit_sched_reaper orbit_sched_reaper_t;

/* NULL when out of memory. cfg is copied. */
orbit_sched_reaper_t *orbit_sched_reaper_new(const orbit_sched_reaper_cfg_t *cfg);
void orbit_sched_reaper_destroy(orbit_sched_reaper_t **pr);

/* True when a lease proposal is due at now_ms (campaign or renewal). */
bool orbit_sched_reaper_lease_due(const orbit_sched_reaper_t *r, int64_t now_ms);

/* Fill *lease and *cm (caller's storage; strings borrowed from r) with
 * the lease proposal, and remember that one was sent at now_ms. */
void orbit_sched_reaper_lease_commitment(orbit_sched_reaper_t *r, int64_t now_ms,
                                         Orbit__Ledger__Lease *lease,
                                         Orbit__Ledger__Commitment *cm);

/* The outcome of the lease proposal sent at sent_ms: rc (ORBIT_OK with o,
 * or a transport error: nothing learnt). */
void orbit_sched_reaper_lease_result(orbit_sched_reaper_t *r, int64_t sent_ms, int rc,
                                     const Orbit__Ledger__Outcome *o);

/* True when the holder may act at now_ms: it holds the lease and (unless
 * trust_lease) its latest renewal is younger than ttl_ms. */
bool orbit_sched_reaper_may_act(const orbit_sched_reaper_t *r, int64_t now_ms);

/* Whether a placement (REF_PLACEMENT, capsule) or gang is already being
 * revoked or placed: skipped. */
typedef bool (*orbit_sched_busy_fn)(void *arg, Orbit__Ledger__RefKind kind, const char *key);

typedef struct {
    Orbit__Ledger__RefKind kind; /* REF_PLACEMENT or REF_GANG */
    char key[ORBIT_SCHED_ID_MAX];
    char node[ORBIT_SCHED_ID_MAX];
} orbit_sched_reap_t;

/* Decide at now_ms (pure but for r's timers, bucket and counters): up to
 * max revocations into out; returns how many. Nothing when r may not act.
 * busy may be NULL. */
size_t orbit_sched_reaper_decide(orbit_sched_reaper_t *r, const orbit_sched_view_t *v,
                                 int64_t now_ms, orbit_sched_busy_fn busy, void *arg,
                                 orbit_sched_reap_t *out, size_t max);

/* The revocation action for d, fenced with the current lease index
 * (proposer: the client_id in the proposal), counted in flight until
 * orbit_sched_reaper_done. NULL when out of memory. */
orbit_sched_act_t *orbit_sched_reaper_act(orbit_sched_reaper_t *r, const char *proposer,
                                          const orbit_sched_reap_t *d);

/* A reaper revocation came back (before orbit_sched_plan_done frees it). */
void orbit_sched_reaper_done(orbit_sched_reaper_t *r, const orbit_sched_act_t *a);

/* The release of the lease on a clean stop: a Revocation of the lease
 * fenced like every action, or NULL when not held (or out of memory). */
orbit_sched_act_t *orbit_sched_reaper_release(const orbit_sched_reaper_t *r, const char *proposer);

void orbit_sched_reaper_stats(const orbit_sched_reaper_t *r, orbit_sched_reaper_stats_t *out);

#endif
