/* orbit_sched_reaper: lease-elected, fenced, rate-limited revocation of
 * placements from long-dead nodes. */
#include "orbit_sched_reaper.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_log.h"

#define DISRUPTION_LOG_MS 60000

struct orbit_sched_reaper {
    orbit_sched_reaper_cfg_t cfg;
    char holder[ORBIT_SCHED_ID_MAX];
    bool held;
    uint64_t epoch;
    uint64_t lease_index;
    int64_t renewed_ms;   /* local time the latest successful lease proposal was sent */
    int64_t attempt_ms;   /* local time of the latest lease proposal (0: none) */
    zhashx_t *down;       /* node -> int64_t first seen DOWN by this holding */
    int64_t milli_tokens; /* the bucket, in thousandths of a revocation */
    int64_t refill_ms;
    bool disruption_logged;
    int64_t disruption_log_ms; /* last "disruption" log line */
    uint32_t in_flight;        /* revocations proposed and not answered yet */
    orbit_sched_reaper_stats_t st;
};

void orbit_sched_reaper_cfg_default(orbit_sched_reaper_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->holder = "orbit-sched";
    c->ttl_ms = 5000;
    c->grace_ms = 30000;
    c->rate = 20;
    c->max_down_pct = 10;
}

static void free_box(void **p)
{
    free(*p);
    *p = NULL;
}

orbit_sched_reaper_t *orbit_sched_reaper_new(const orbit_sched_reaper_cfg_t *cfg)
{
    orbit_sched_reaper_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = *cfg;
    snprintf(r->holder, sizeof r->holder, "%s", cfg->holder ? cfg->holder : "orbit-sched");
    r->cfg.holder = r->holder;
    if (r->cfg.ttl_ms < 3)
        r->cfg.ttl_ms = 3;
    r->down = zhashx_new();
    if (!r->down) {
        free(r);
        return NULL;
    }
    zhashx_set_destructor(r->down, free_box);
    return r;
}

void orbit_sched_reaper_destroy(orbit_sched_reaper_t **pr)
{
    if (!pr || !*pr)
        return;
    zhashx_destroy(&(*pr)->down);
    free(*pr);
    *pr = NULL;
}

/* ------------------------------------------------------------ lease */

bool orbit_sched_reaper_lease_due(const orbit_sched_reaper_t *r, int64_t now_ms)
{
    int64_t every = r->cfg.ttl_ms / 3;
    if (!r->attempt_ms)
        return true;
    /* A renewal moves lease/reaper and so fails every revocation still in
     * flight under the previous index (stale): while some are, renew only
     * once the holding is two thirds of the ttl old. */
    if (r->held)
        return now_ms - r->renewed_ms >= (r->in_flight ? 2 * every : every) &&
               now_ms - r->attempt_ms >= every / 4;
    return now_ms - r->attempt_ms >= every;
}

void orbit_sched_reaper_lease_commitment(orbit_sched_reaper_t *r, int64_t now_ms,
                                         Orbit__Ledger__Lease *lease, Orbit__Ledger__Commitment *cm)
{
    orbit__ledger__lease__init(lease);
    lease->holder = r->holder;
    lease->resource = ORBIT_SCHED_REAPER_RESOURCE;
    lease->ttl_ms = r->cfg.ttl_ms;
    orbit__ledger__commitment__init(cm);
    cm->kind_case = ORBIT__LEDGER__COMMITMENT__KIND_LEASE;
    cm->lease = lease;
    r->attempt_ms = now_ms ? now_ms : 1;
    r->st.campaigns++;
}

static void lose(orbit_sched_reaper_t *r, const char *why)
{
    if (!r->held)
        return;
    r->held = false;
    r->st.lost++;
    orbit_info("orbit-sched: %s no longer holds the reaper lease (epoch %" PRIu64 "): %s",
               r->holder, r->epoch, why);
}

void orbit_sched_reaper_lease_result(orbit_sched_reaper_t *r, int64_t sent_ms, int rc,
                                     const Orbit__Ledger__Outcome *o)
{
    if (rc != ORBIT_OK || !o)
        return; /* unknown: the age check stops acting if it stays so */
    if (o->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED) {
        uint64_t epoch = 0;
        long long expires = 0;
        if (!o->observed ||
            sscanf(o->observed, "epoch=%" SCNu64 ",expires=%lld", &epoch, &expires) != 2) {
            orbit_warn("orbit-sched: lease outcome without a fencing token ('%s')",
                       o->observed ? o->observed : "");
            return;
        }
        if (!r->held || epoch != r->epoch) {
            if (epoch != r->epoch) {
                zhashx_purge(r->down); /* a new holding: timers afresh */
                r->milli_tokens = (int64_t)r->cfg.rate * 1000;
                r->refill_ms = sent_ms;
                r->st.acquired++;
                orbit_info("orbit-sched: %s holds the reaper lease (epoch %" PRIu64 ")", r->holder,
                           epoch);
            }
        } else {
            r->st.renewed++;
        }
        r->held = true;
        r->epoch = epoch;
        if (o->index > r->lease_index)
            r->lease_index = o->index;
        r->renewed_ms = sent_ms;
        return;
    }
    if (o->kind == ORBIT__LEDGER__OUTCOME_KIND__CONFLICT)
        lose(r, o->observed ? o->observed : "lease held by another");
    else
        orbit_warn("orbit-sched: lease proposal invalid: %s", o->reason ? o->reason : "");
}

bool orbit_sched_reaper_may_act(const orbit_sched_reaper_t *r, int64_t now_ms)
{
    return r->held && (r->cfg.trust_lease || now_ms - r->renewed_ms < r->cfg.ttl_ms);
}

/* ------------------------------------------------------------ decisions */

typedef struct {
    orbit_sched_reap_t *out;
    size_t max, n;
    orbit_sched_busy_fn busy;
    void *arg;
    orbit_sched_reaper_t *r;
    const char *node;
    bool dry; /* out of tokens */
} walk_t;

static int reap_placement(void *arg, const orbit_sched_placement_t *p)
{
    walk_t *w = arg;
    Orbit__Ledger__RefKind kind = p->gang && *p->gang ? ORBIT__LEDGER__REF_KIND__REF_GANG
                                                      : ORBIT__LEDGER__REF_KIND__REF_PLACEMENT;
    const char *key = kind == ORBIT__LEDGER__REF_KIND__REF_GANG ? p->gang : p->capsule;
    if (strlen(key) >= ORBIT_SCHED_ID_MAX)
        return 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->out[i].kind == kind && !strcmp(w->out[i].key, key))
            return 0;
    if (w->busy && w->busy(w->arg, kind, key))
        return 0;
    if (w->n == w->max)
        return 1;
    if (w->r->milli_tokens < 1000) {
        w->dry = true;
        return 1;
    }
    w->r->milli_tokens -= 1000;
    orbit_sched_reap_t *d = &w->out[w->n++];
    d->kind = kind;
    snprintf(d->key, sizeof d->key, "%s", key);
    snprintf(d->node, sizeof d->node, "%s", w->node);
    return 0;
}

size_t orbit_sched_reaper_decide(orbit_sched_reaper_t *r, const orbit_sched_view_t *v,
                                 int64_t now_ms, orbit_sched_busy_fn busy, void *arg,
                                 orbit_sched_reap_t *out, size_t max)
{
    if (!r->held)
        return 0;
    if (!orbit_sched_reaper_may_act(r, now_ms)) {
        r->st.expired_stops++;
        return 0;
    }
    /* A holding due for its forced renewal: new revocations would only be
     * overtaken by it (unless told to trust the lease regardless). */
    if (!r->cfg.trust_lease && now_ms - r->renewed_ms >= 2 * (r->cfg.ttl_ms / 3))
        return 0;
    /* Refill the bucket. */
    int64_t full = (int64_t)r->cfg.rate * 1000;
    if (now_ms > r->refill_ms) {
        int64_t dt = now_ms - r->refill_ms;
        r->milli_tokens = dt >= 1000 ? full : r->milli_tokens + dt * (int64_t)r->cfg.rate;
        if (r->milli_tokens > full)
            r->milli_tokens = full;
    }
    r->refill_ms = now_ms;
    /* Timers: kept for nodes still DOWN, started for new ones, dropped for
     * the others. */
    zhashx_t *down = zhashx_new();
    if (!down)
        return 0;
    zhashx_set_destructor(down, free_box);
    size_t n = orbit_sched_view_node_count(v);
    uint32_t ndown = 0, dark = 0;
    for (size_t i = 0; i < n; i++) {
        orbit_sched_node_t nd;
        if (orbit_sched_view_node_at(v, i, &nd) != ORBIT_OK)
            continue;
        bool is_down = nd.seen && nd.status == ORBIT__NODE_STATUS__DOWN;
        if (is_down || !nd.seen || nd.status == ORBIT__NODE_STATUS__UNREACHABLE)
            dark++;
        if (!is_down)
            continue;
        ndown++;
        int64_t *old = zhashx_lookup(r->down, nd.name);
        int64_t *t = malloc(sizeof *t);
        if (!t)
            continue;
        *t = old ? *old : now_ms;
        if (zhashx_insert(down, nd.name, t) != 0)
            free(t);
    }
    zhashx_destroy(&r->down);
    r->down = down;
    r->st.down = ndown;
    r->st.dark = dark;
    r->st.fleet = (uint32_t)n;
    if (n && (uint64_t)dark * 100 > (uint64_t)r->cfg.max_down_pct * n) {
        r->st.disruption_stops++;
        if (!r->disruption_logged || now_ms - r->disruption_log_ms >= DISRUPTION_LOG_MS) {
            r->disruption_logged = true;
            r->disruption_log_ms = now_ms;
            orbit_warn("orbit-sched: reaper stopped: %u of %zu nodes down or unreachable (more "
                       "than %u%%), revoking nothing",
                       dark, n, r->cfg.max_down_pct);
        }
        return 0;
    }
    walk_t w = {out, max, 0, busy, arg, r, NULL, false};
    for (int64_t *t = zhashx_first(r->down); t && w.n < max && !w.dry; t = zhashx_next(r->down)) {
        if (now_ms - *t <= r->cfg.grace_ms)
            continue;
        w.node = zhashx_cursor(r->down);
        orbit_sched_view_each_node_placement(v, w.node, reap_placement, &w);
    }
    if (w.dry)
        r->st.rate_limited++;
    r->st.proposed += w.n;
    return w.n;
}

orbit_sched_act_t *orbit_sched_reaper_act(orbit_sched_reaper_t *r, const char *proposer,
                                          const orbit_sched_reap_t *d)
{
    orbit_sched_act_t *a = orbit_sched_act_revoke(proposer, d->kind, d->key, ORBIT_SCHED_WHY_REAPED,
                                                  ORBIT_SCHED_REAPER_KEY, r->lease_index);
    if (a)
        r->in_flight++;
    return a;
}

void orbit_sched_reaper_done(orbit_sched_reaper_t *r, const orbit_sched_act_t *a)
{
    if (r->in_flight)
        r->in_flight--;
    if (a->rc != ORBIT_OK || !a->outcome)
        return;
    const Orbit__Ledger__Outcome *o = a->outcome;
    if (o->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED) {
        r->st.reaped++;
        return;
    }
    if (o->kind != ORBIT__LEDGER__OUTCOME_KIND__CONFLICT || !o->which ||
        strcmp(o->which, "unchanged_since") != 0)
        return;
    if (a->fence_index < r->lease_index && r->held) {
        r->st.stale++; /* our own renewal came between */
        return;
    }
    r->st.fenced++;
    lose(r, "a revocation was fenced (the lease changed hands)");
}

orbit_sched_act_t *orbit_sched_reaper_release(const orbit_sched_reaper_t *r, const char *proposer)
{
    if (!r->held)
        return NULL;
    return orbit_sched_act_revoke(proposer, ORBIT__LEDGER__REF_KIND__REF_LEASE,
                                  ORBIT_SCHED_REAPER_RESOURCE, ORBIT_SCHED_WHY_REAPED,
                                  ORBIT_SCHED_REAPER_KEY, r->lease_index);
}

void orbit_sched_reaper_stats(const orbit_sched_reaper_t *r, orbit_sched_reaper_stats_t *out)
{
    *out = r->st;
    out->held = r->held;
    out->epoch = r->epoch;
    out->lease_index = r->lease_index;
}
