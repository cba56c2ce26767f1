/* orbit_sched_plan: the scheduler's rounds — missing, surplus and failed
 * capsules into proposals, and their outcomes back into the view. */
#include "orbit_sched_plan.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_hash.h"
#include "orbit_wire.h"
#include "orbit_log.h"

#define CONFLICTS_BEFORE_BACKOFF 5
#define GANG_NODES_MAX           64 /* ORBIT_LEDGER_COND_MAX: node_fits entries */
#define GANG_MEMBERS_MAX         1024

const char *const orbit_sched_conflict_names[ORBIT_SCHED_CONFLICT_KINDS] = {
    "node_fits",   "quota_available", "identity_free",  "capsule_placed",
    "gang_placed", "unchanged_since", "identity_bound", "capsule_identity",
    "lease_held",  "overflow",        "other"};

const char *orbit_sched_why_name(orbit_sched_why_t w)
{
    switch (w) {
    case ORBIT_SCHED_WHY_SURPLUS: return "surplus";
    case ORBIT_SCHED_WHY_FAILED: return "failed";
    case ORBIT_SCHED_WHY_REAPED: return "reaped";
    default: return "?";
    }
}

void orbit_sched_plan_cfg_default(orbit_sched_plan_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    orbit_sched_score_cfg_default(&c->score);
    c->seed = 1;
    c->proposer = "orbit-sched";
    c->window = 512;
    c->retry_budget = 256;
    c->backoff_min_ms = 1000;
    c->backoff_max_ms = 60000;
    c->backoff_reset_ms = 60000;
    c->bind_repair_ms = 5000;
    c->claim_ms = 1000;
    c->sweep_ms = 10000;
}

typedef struct {
    int64_t delay_ms;   /* what the last failure got */
    int64_t not_before; /* no placement before */
    bool has_fail;      /* the report acted on last */
    char fail_node[ORBIT_SCHED_ID_MAX];
    int64_t fail_since;
    int fail_state;
    uint64_t fail_placement; /* ledger index of the placement that failed */
    int64_t running_since;   /* our clock; 0: not seen running */
} backoff_t;

#define MARK_BITS 65536

struct orbit_sched_plan {
    orbit_sched_plan_cfg_t cfg;
    char proposer[128];
    orbit_sched_rng_t rng;
    zhashx_t *inflight;  /* "c:"/"g:"/"b:" key -> the action (borrowed, opaque) */
    zhashx_t *reserved;  /* node -> orbit_sched_res_t */
    zhashx_t *quota;     /* principal -> orbit_sched_res_t */
    zhashx_t *doubtful;  /* node -> uint64_t generation */
    zhashx_t *backoff;   /* "c:"/"g:" key -> backoff_t */
    zhashx_t *conflicts; /* "c:"/"g:" key -> uint32_t conflicts in a row */
    zhashx_t *selfbound; /* "c:"/"g:" key -> 1: identity bound to itself already */
    zhashx_t *unbound;   /* capsule -> int64_t first seen without identity */
    /* "mission/module" -> uint64_t: the version a walk of the module found
     * every index placed and bound, nothing failed, backed off or in flight.
     * Nothing to do, and nothing the clock alone can change: until the view
     * gives the module another version, a round passes it over. */
    zhashx_t *settled;
    /* Nodes that may be in reserved or doubtful, by a bit of their
     * orbit_sched_node_key: a clear bit spares a pick both lookups (and the
     * read of the name) for a sampled node. Set as entries come; rebuilt
     * from the maps every round, so bits of entries gone do not pile up. */
    uint64_t marks[MARK_BITS / 64];
    uint64_t gen;
    int64_t last_sweep;
    bool more;
    orbit_sched_plan_stats_t st;
    orbit_ratelimit_t rl;
};

/* ------------------------------------------------------------ small maps */

static void *box_new(size_t n)
{
    return calloc(1, n);
}

static void box_free(void **p)
{
    free(*p);
    *p = NULL;
}

static zhashx_t *map_new(void)
{
    zhashx_t *h = zhashx_new();
    if (h)
        zhashx_set_destructor(h, box_free);
    return h;
}

static void *map_get_or_add(zhashx_t *h, const char *key, size_t size)
{
    void *x = zhashx_lookup(h, key);
    if (x)
        return x;
    x = box_new(size);
    if (!x)
        return NULL;
    if (zhashx_insert(h, key, x) != 0) {
        free(x);
        return NULL;
    }
    return x;
}

static void key_of(char *out, char kind, const char *id)
{
    snprintf(out, ORBIT_SCHED_KEY_MAX, "%c:%s", kind, id);
}

/* ------------------------------------------------------------ lifecycle */

orbit_sched_plan_t *orbit_sched_plan_new(const orbit_sched_plan_cfg_t *cfg)
{
    orbit_sched_plan_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cfg = *cfg;
    snprintf(p->proposer, sizeof p->proposer, "%s", cfg->proposer ? cfg->proposer : "orbit-sched");
    p->cfg.proposer = p->proposer;
    if (!p->cfg.window)
        p->cfg.window = 1;
    orbit_sched_rng_seed(&p->rng, cfg->seed);
    p->inflight = zhashx_new();
    p->reserved = map_new();
    p->quota = map_new();
    p->doubtful = map_new();
    p->backoff = map_new();
    p->conflicts = map_new();
    p->selfbound = map_new();
    p->unbound = map_new();
    p->settled = map_new();
    p->rl.burst = 5;
    if (!p->inflight || !p->reserved || !p->quota || !p->doubtful || !p->backoff || !p->conflicts ||
        !p->selfbound || !p->unbound || !p->settled)
        orbit_sched_plan_destroy(&p);
    return p;
}

void orbit_sched_plan_destroy(orbit_sched_plan_t **pp)
{
    if (!pp || !*pp)
        return;
    orbit_sched_plan_t *p = *pp;
    zhashx_destroy(&p->inflight);
    zhashx_destroy(&p->reserved);
    zhashx_destroy(&p->quota);
    zhashx_destroy(&p->doubtful);
    zhashx_destroy(&p->backoff);
    zhashx_destroy(&p->conflicts);
    zhashx_destroy(&p->selfbound);
    zhashx_destroy(&p->settled);
    zhashx_destroy(&p->unbound);
    free(p);
    *pp = NULL;
}

void orbit_sched_act_destroy(orbit_sched_act_t **pa)
{
    if (!pa || !*pa)
        return;
    orbit_sched_act_t *a = *pa;
    if (a->outcome)
        orbit__ledger__outcome__free_unpacked(a->outcome, NULL);
    for (size_t i = 0; i < a->nbinds; i++) {
        if (a->bind_outcomes && a->bind_outcomes[i])
            orbit__ledger__outcome__free_unpacked(a->bind_outcomes[i], NULL);
    }
    orbit_arena_destroy(&a->mem); /* prop and binds */
    free(a->binds);
    free(a->bind_outcomes);
    free(a);
    *pa = NULL;
}

/* ------------------------------------------------------------ names */

int orbit_sched_identity(const char *mission, const char *module, uint32_t i, char *out,
                         size_t outlen)
{
    int n = snprintf(out, outlen, "%" PRIu32 ".%s.%s", i, module, mission);
    return n < 0 || (size_t)n >= outlen || n > 63 ? ORBIT_EINVAL : ORBIT_OK;
}

int orbit_sched_capsule_index(const char *capsule, const char *mission, const char *module,
                              uint32_t *index)
{
    size_t ml = strlen(mission), dl = strlen(module);
    if (strncmp(capsule, mission, ml) != 0 || capsule[ml] != '/')
        return ORBIT_EINVAL;
    const char *s = capsule + ml + 1;
    if (strncmp(s, module, dl) != 0 || s[dl] != '/')
        return ORBIT_EINVAL;
    s += dl + 1;
    if (!*s || (s[0] == '0' && s[1]) || strlen(s) > 10)
        return ORBIT_EINVAL;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return ORBIT_EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v > UINT32_MAX)
        return ORBIT_EINVAL;
    *index = (uint32_t)v;
    return ORBIT_OK;
}

/* ------------------------------------------------------------ proposals */

/* p (built on the caller's stack) copied into a's memory, every part owned
 * by the copy: a few bump allocations in one arena instead of a malloc per
 * field, and one free for them all. */
static Orbit__Ledger__Proposal *own_copy(orbit_sched_act_t *a, const Orbit__Ledger__Proposal *p)
{
    return (Orbit__Ledger__Proposal *)orbit_wire_copy_in(&p->base, orbit_arena_allocator(a->mem));
}

static void res_pb(Orbit__Ledger__Resources *r, const orbit_sched_res_t *x)
{
    orbit__ledger__resources__init(r);
    r->has_cpu_m = true;
    r->cpu_m = x->cpu_m;
    r->has_mem = true;
    r->mem = x->mem;
    r->has_gpus = true;
    r->gpus = (uint32_t)x->gpus;
}

/* node_fits capacity: only the dimensions the envelope asks for, so that a
 * dimension the job does not use (e.g. GPUs gone unhealthy under older
 * placements) cannot refuse it. */
static void cap_pb(Orbit__Ledger__Resources *r, const orbit_sched_res_t *cap,
                   const orbit_sched_res_t *env)
{
    orbit__ledger__resources__init(r);
    if (env->cpu_m > 0) {
        r->has_cpu_m = true;
        r->cpu_m = cap->cpu_m < 0 ? 0 : cap->cpu_m;
    }
    if (env->mem > 0) {
        r->has_mem = true;
        r->mem = cap->mem < 0 ? 0 : cap->mem;
    }
    if (env->gpus > 0) {
        r->has_gpus = true;
        r->gpus = (uint32_t)(cap->gpus < 0 ? 0 : cap->gpus);
    }
}

static orbit_sched_act_t *act_new(orbit_sched_act_kind_t kind, const char *key, size_t nbinds)
{
    orbit_sched_act_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->kind = kind;
    snprintf(a->key, sizeof a->key, "%s", key);
    /* a placement and its bind take ~600 bytes decoded; a gang more */
    a->mem = orbit_arena_new(nbinds > 1 ? 4096 : 1024);
    if (nbinds) {
        a->binds = calloc(nbinds, sizeof *a->binds);
        a->bind_outcomes = calloc(nbinds, sizeof *a->bind_outcomes);
    }
    if (!a->mem || (nbinds && (!a->binds || !a->bind_outcomes))) {
        orbit_arena_destroy(&a->mem);
        free(a->binds);
        free(a->bind_outcomes);
        free(a);
        return NULL;
    }
    a->nbinds = nbinds;
    return a;
}

static Orbit__Ledger__Proposal *bind_prop(orbit_sched_act_t *a, const char *proposer,
                                          const char *capsule, const char *identity)
{
    Orbit__Ledger__IdentityBind b = ORBIT__LEDGER__IDENTITY_BIND__INIT;
    b.capsule = (char *)capsule;
    b.identity = (char *)identity;
    Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
    cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_IDENTITY_BIND;
    cm.identity_bind = &b;
    Orbit__Ledger__Proposal p = ORBIT__LEDGER__PROPOSAL__INIT;
    p.client_id = (char *)proposer;
    p.commitment = &cm;
    return own_copy(a, &p);
}

orbit_sched_act_t *orbit_sched_act_revoke(const char *proposer, Orbit__Ledger__RefKind kind,
                                          const char *key, orbit_sched_why_t why,
                                          const char *fence_key, uint64_t fence_index)
{
    if (strlen(key) >= ORBIT_SCHED_ID_MAX)
        return NULL;
    orbit_sched_act_t *a = act_new(ORBIT_SCHED_ACT_REVOKE, key, 0);
    if (!a)
        return NULL;
    a->why = why;
    a->fence_index = fence_index;
    Orbit__Ledger__Ref ref = ORBIT__LEDGER__REF__INIT;
    ref.kind = kind;
    ref.key = (char *)key;
    Orbit__Ledger__Revocation rv = ORBIT__LEDGER__REVOCATION__INIT;
    rv.what = &ref;
    Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
    cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_REVOCATION;
    cm.revocation = &rv;
    Orbit__Ledger__Proposal p = ORBIT__LEDGER__PROPOSAL__INIT;
    p.client_id = (char *)proposer;
    p.commitment = &cm;
    Orbit__Ledger__UnchangedSince us = ORBIT__LEDGER__UNCHANGED_SINCE__INIT;
    Orbit__Ledger__UnchangedSince *usp[1] = {&us};
    Orbit__Ledger__Precondition pre = ORBIT__LEDGER__PRECONDITION__INIT;
    if (fence_key) {
        us.key = (char *)fence_key;
        us.index = fence_index;
        pre.n_unchanged_since = 1;
        pre.unchanged_since = usp;
        p.precondition = &pre;
    }
    a->prop = own_copy(a, &p);
    if (!a->prop)
        orbit_sched_act_destroy(&a);
    return a;
}

/* ------------------------------------------------------------ reservations */

static void res_add(orbit_sched_res_t *a, const orbit_sched_res_t *b, int sign)
{
    a->cpu_m += sign * b->cpu_m;
    a->mem += sign * b->mem;
    a->gpus += sign * b->gpus;
}

static bool res_zero(const orbit_sched_res_t *a)
{
    return !a->cpu_m && !a->mem && !a->gpus;
}

static void reserve(zhashx_t *h, const char *name, const orbit_sched_res_t *r, int sign)
{
    if (!name || !*name)
        return;
    orbit_sched_res_t *x = map_get_or_add(h, name, sizeof *x);
    if (!x)
        return; /* out of memory: the ledger's preconditions still hold the line */
    res_add(x, r, sign);
    if (res_zero(x))
        zhashx_delete(h, name);
}

static void mark(orbit_sched_plan_t *p, const char *node)
{
    uint64_t b = orbit_sched_node_key(node) % MARK_BITS;
    p->marks[b / 64] |= 1ULL << (b % 64);
}

static bool marked(const orbit_sched_plan_t *p, uint64_t key)
{
    uint64_t b = key % MARK_BITS;
    return p->marks[b / 64] >> (b % 64) & 1;
}

/* What a node holds for placements in flight (sign 1: more, -1: less). */
static void reserve_node(orbit_sched_plan_t *p, const char *node, const orbit_sched_res_t *r,
                         int sign)
{
    if (sign > 0 && node)
        mark(p, node);
    reserve(p->reserved, node, r, sign);
}

static orbit_sched_res_t res_of(const Orbit__Ledger__Resources *r)
{
    orbit_sched_res_t x = {0, 0, 0};
    if (r) {
        x.cpu_m = r->cpu_m;
        x.mem = r->mem;
        x.gpus = r->gpus;
    }
    return x;
}

/* Reserve (sign 1) or release (-1) what a placement action holds. */
static void reserve_act(orbit_sched_plan_t *p, const orbit_sched_act_t *a, int sign)
{
    const Orbit__Ledger__Commitment *cm = a->prop ? a->prop->commitment : NULL;
    if (!cm)
        return;
    if (cm->kind_case == ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT) {
        orbit_sched_res_t e = res_of(cm->placement->envelope);
        reserve_node(p, cm->placement->node, &e, sign);
        reserve(p->quota, cm->placement->principal, &e, sign);
    } else if (cm->kind_case == ORBIT__LEDGER__COMMITMENT__KIND_GANG_PLACEMENT) {
        const Orbit__Ledger__GangPlacement *g = cm->gang_placement;
        for (size_t i = 0; i < g->n_members; i++) {
            orbit_sched_res_t e = res_of(g->members[i]->envelope);
            reserve_node(p, g->members[i]->node, &e, sign);
            reserve(p->quota, g->principal, &e, sign);
        }
    }
}

static void inflight_key(const orbit_sched_act_t *a, char *out)
{
    switch (a->kind) {
    case ORBIT_SCHED_ACT_PLACE: key_of(out, 'c', a->key); break;
    case ORBIT_SCHED_ACT_GANG: key_of(out, 'g', a->key); break;
    case ORBIT_SCHED_ACT_BIND: key_of(out, 'b', a->key); break;
    case ORBIT_SCHED_ACT_REVOKE: {
        const Orbit__Ledger__Revocation *r = a->prop->commitment->revocation;
        key_of(out, r->what->kind == ORBIT__LEDGER__REF_KIND__REF_GANG ? 'g' : 'c', a->key);
        break;
    }
    }
}

void orbit_sched_plan_track(orbit_sched_plan_t *p, const orbit_sched_act_t *a)
{
    char k[ORBIT_SCHED_KEY_MAX];
    inflight_key(a, k);
    if (zhashx_insert(p->inflight, k, (void *)a) == 0)
        p->st.in_flight++;
    reserve_act(p, a, 1);
}

bool orbit_sched_plan_busy(const orbit_sched_plan_t *p, Orbit__Ledger__RefKind kind,
                           const char *key)
{
    char k[ORBIT_SCHED_KEY_MAX];
    key_of(k, kind == ORBIT__LEDGER__REF_KIND__REF_GANG ? 'g' : 'c', key);
    return zhashx_lookup(p->inflight, k) != NULL;
}

static bool busy_key(const orbit_sched_plan_t *p, char kind, const char *id)
{
    char k[ORBIT_SCHED_KEY_MAX];
    key_of(k, kind, id);
    return zhashx_lookup(p->inflight, k) != NULL;
}

/* ------------------------------------------------------------ round state */

typedef struct {
    const char *capsule, *node, *gang, *identity;
    bool own;
    bool indexed; /* index parsed */
    uint32_t index;
    uint64_t placed_at;            /* ledger index of the placement */
    const orbit_capsule_t *health; /* its node's report of it, NULL: none */
} plc_t;

typedef struct {
    const char *mission, *module;
    const Orbit__Ledger__ModuleSpec *spec;
    uint64_t index;
    uint64_t version;  /* the view's version of the module */
    int64_t others_ms; /* the view's others_ms of the module */
    bool claimed;      /* another client placed in it within claim_ms */
    uint64_t order;    /* this scheduler's own rank among modules of one priority */
} mod_t;

typedef struct {
    orbit_sched_plan_t *p;
    const orbit_sched_view_t *v;
    int64_t now;
    orbit_sched_emit_fn emit;
    void *arg;
    int emitted;
    uint32_t limit;   /* actions this round may still emit */
    uint32_t retries; /* retry budget left */
    /* gang planning: the nodes chosen so far when restricted */
    const char **gang_nodes;
    size_t ngang_nodes;
    bool gang_restrict;
} round_t;

static void extra_of(void *arg, const orbit_sched_node_t *node, orbit_sched_extra_t *out)
{
    round_t *r = arg;
    orbit_sched_plan_t *p = r->p;
    if (marked(p, node->key)) {
        const orbit_sched_res_t *x = zhashx_lookup(p->reserved, node->name);
        if (x)
            out->reserved = *x;
        const uint64_t *g = zhashx_lookup(p->doubtful, node->name);
        if (g && *g >= p->gen)
            out->doubtful = true;
    }
    if (r->gang_restrict) {
        bool in = false;
        for (size_t i = 0; i < r->ngang_nodes && !in; i++)
            in = !strcmp(r->gang_nodes[i], node->name);
        if (!in)
            out->doubtful = true;
    }
}

/* The marks again from the maps: only entries still there. */
static void remark(orbit_sched_plan_t *p)
{
    memset(p->marks, 0, sizeof p->marks);
    for (void *x = zhashx_first(p->reserved); x; x = zhashx_next(p->reserved))
        mark(p, zhashx_cursor(p->reserved));
    for (uint64_t *g = zhashx_first(p->doubtful); g; g = zhashx_next(p->doubtful))
        if (*g >= p->gen)
            mark(p, zhashx_cursor(p->doubtful));
}

static bool room_left(round_t *r)
{
    if (r->limit == 0) {
        r->p->more = true;
        return false;
    }
    return true;
}

static void emit(round_t *r, orbit_sched_act_t *a)
{
    orbit_sched_plan_track(r->p, a);
    r->limit--;
    r->emitted++;
    r->emit(r->arg, a);
}

static int emit_revoke(round_t *r, Orbit__Ledger__RefKind kind, const char *key,
                       orbit_sched_why_t why)
{
    if (orbit_sched_plan_busy(r->p, kind, key) || !room_left(r))
        return ORBIT_OK;
    orbit_sched_act_t *a = orbit_sched_act_revoke(r->p->proposer, kind, key, why, NULL, 0);
    if (!a)
        return ORBIT_ENOMEM;
    emit(r, a);
    return ORBIT_OK;
}

/* Revoke a placement as a whole: its gang when it is a member. */
static int revoke_plc(round_t *r, const plc_t *c, orbit_sched_why_t why)
{
    if (c->gang && *c->gang)
        return emit_revoke(r, ORBIT__LEDGER__REF_KIND__REF_GANG, c->gang, why);
    return emit_revoke(r, ORBIT__LEDGER__REF_KIND__REF_PLACEMENT, c->capsule, why);
}

/* ------------------------------------------------------------ health */

static bool failed_state(const orbit_capsule_t *h)
{
    return h->state == ORBIT_CAPSULE_FAILED || h->state == ORBIT_CAPSULE_OOM_KILLED ||
           (h->state == ORBIT_CAPSULE_EXITED && h->exit_code != 0);
}

/* Health of c: >0 running, 0 other, <0 a failure not acted on yet (h set). */
static int health(round_t *r, const char *bkey, const plc_t *c, orbit_capsule_t *h)
{
    if (!c->health)
        return 0;
    *h = *c->health;
    if (h->state == ORBIT_CAPSULE_RUNNING)
        return 1;
    if (!failed_state(h))
        return 0;
    const backoff_t *b = zhashx_lookup(r->p->backoff, bkey);
    if (b && b->has_fail && b->fail_since == h->since_ms && b->fail_state == (int)h->state &&
        !strcmp(b->fail_node, c->node))
        return 0; /* the report acted on already (the node may still show it) */
    return -1;
}

/* Record a failure of key reported by node (h) at now. */
static void backoff_fail(orbit_sched_plan_t *p, const char *bkey, const char *node,
                         uint64_t placed_at, const orbit_capsule_t *h, int64_t now)
{
    backoff_t *b = map_get_or_add(p->backoff, bkey, sizeof *b);
    if (!b)
        return;
    b->delay_ms = b->delay_ms ? b->delay_ms * 2 : p->cfg.backoff_min_ms;
    if (b->delay_ms > p->cfg.backoff_max_ms)
        b->delay_ms = p->cfg.backoff_max_ms;
    b->not_before = now + b->delay_ms;
    b->running_since = 0;
    if (h) {
        b->has_fail = true;
        snprintf(b->fail_node, sizeof b->fail_node, "%s", node ? node : "");
        b->fail_since = h->since_ms;
        b->fail_state = (int)h->state;
        b->fail_placement = placed_at;
    }
    p->st.backoffs++;
}

/* A RUNNING (running) or other observation of key's placement: forget the
 * failures after backoff_reset_ms of running. */
static void backoff_seen(orbit_sched_plan_t *p, const char *bkey, bool running, int64_t now)
{
    backoff_t *b = zhashx_lookup(p->backoff, bkey);
    if (!b || now < b->not_before)
        return;
    if (!running) {
        b->running_since = 0;
        return;
    }
    if (!b->running_since)
        b->running_since = now;
    else if (now - b->running_since >= p->cfg.backoff_reset_ms)
        zhashx_delete(p->backoff, bkey);
}

/* A failure of key recorded from c's node (backoff_fail) whose delay has
 * passed while c, the failed placement, still stands: time to revoke it so
 * that the capsule is placed again. Until then the failed placement is left
 * alone, so its state and reason stay visible (mission status) for the
 * whole delay instead of flickering between revocation and the next try. */
static bool failure_due(round_t *r, const char *bkey, const plc_t *c)
{
    const backoff_t *b = zhashx_lookup(r->p->backoff, bkey);
    return b && b->has_fail && r->now >= b->not_before && b->fail_placement == c->placed_at &&
           !strcmp(b->fail_node, c->node) && c->health && c->health->since_ms == b->fail_since &&
           (int)c->health->state == b->fail_state;
}

static bool held_back(round_t *r, const char *bkey)
{
    const backoff_t *b = zhashx_lookup(r->p->backoff, bkey);
    if (b && r->now < b->not_before) {
        r->p->st.held_back++;
        return true;
    }
    return false;
}

/* A capsule that met conflicts: within the round's retry budget? */
static bool retry_ok(round_t *r, const char *bkey)
{
    if (!zhashx_lookup(r->p->conflicts, bkey))
        return true;
    if (r->retries == 0) {
        r->p->more = true;
        return false;
    }
    r->retries--;
    r->p->st.retries++;
    return true;
}

/* ------------------------------------------------------------ quota */

static bool quota_room(round_t *r, const char *principal, const orbit_sched_res_t *want)
{
    if (!principal || !*principal)
        return true;
    orbit_sched_quota_t q;
    if (orbit_sched_view_quota(r->v, principal, &q) != ORBIT_OK || !q.granted)
        return false;
    if (q.until_ms && q.until_ms <= orbit_sched_view_time(r->v))
        return false;
    orbit_sched_res_t res = {0, 0, 0};
    const orbit_sched_res_t *x = zhashx_lookup(r->p->quota, principal);
    if (x)
        res = *x;
    return q.grant.cpu_m - q.used.cpu_m - res.cpu_m >= want->cpu_m &&
           q.grant.mem - q.used.mem - res.mem >= want->mem &&
           q.grant.gpus - q.used.gpus - res.gpus >= want->gpus;
}

/* ------------------------------------------------------------ placing */

static orbit_sched_res_t spec_env(const Orbit__Ledger__ModuleSpec *s)
{
    return res_of(s->resources);
}

static const char *spec_principal(const Orbit__Ledger__ModuleSpec *s)
{
    return s->principal && *s->principal ? s->principal : NULL;
}

static int place_one(round_t *r, const mod_t *m, uint32_t i, const char *capsule, bool *stop)
{
    orbit_sched_plan_t *p = r->p;
    char ident[ORBIT_SCHED_ID_MAX], bkey[ORBIT_SCHED_KEY_MAX];
    if (orbit_sched_identity(m->mission, m->module, i, ident, sizeof ident) != ORBIT_OK)
        return ORBIT_OK; /* unreachable for valid capsule ids: same length */
    key_of(bkey, 'c', capsule);
    if (held_back(r, bkey) || !retry_ok(r, bkey))
        return ORBIT_OK;
    orbit_sched_res_t env = spec_env(m->spec);
    const char *principal = spec_principal(m->spec);
    if (!quota_room(r, principal, &env)) {
        p->st.quota_blocked++;
        *stop = true;
        return ORBIT_OK;
    }
    orbit_sched_need_t need = {env, m->spec->node_selector};
    orbit_sched_node_t n;
    if (orbit_sched_pick(r->v, &p->cfg.score, &p->rng, &need, extra_of, r, &n, NULL, &p->st.pick) !=
        ORBIT_OK) {
        p->st.unplaceable++;
        *stop = true; /* the module's other capsules need the same */
        return ORBIT_OK;
    }
    Orbit__Ledger__Resources envpb, cappb, qres;
    res_pb(&envpb, &env);
    res_pb(&qres, &env);
    cap_pb(&cappb, &n.capacity, &env);
    Orbit__Ledger__Placement pl = ORBIT__LEDGER__PLACEMENT__INIT;
    pl.capsule = (char *)capsule;
    pl.node = (char *)n.name;
    pl.envelope = &envpb;
    pl.has_epoch = true;
    pl.epoch = m->index;
    pl.principal = (char *)principal;
    Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
    cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT;
    cm.placement = &pl;
    Orbit__Ledger__NodeFits nf = ORBIT__LEDGER__NODE_FITS__INIT;
    nf.node = (char *)n.name;
    nf.capacity = &cappb;
    Orbit__Ledger__NodeFits *nfp[1] = {&nf};
    Orbit__Ledger__QuotaAvailable qa = ORBIT__LEDGER__QUOTA_AVAILABLE__INIT;
    qa.principal = (char *)principal;
    qa.resources = &qres;
    Orbit__Ledger__QuotaAvailable *qap[1] = {&qa};
    char *idf[1] = {ident};
    Orbit__Ledger__Precondition pre = ORBIT__LEDGER__PRECONDITION__INIT;
    pre.n_node_fits = 1;
    pre.node_fits = nfp;
    if (principal) {
        pre.n_quota_available = 1;
        pre.quota_available = qap;
    }
    if (!zhashx_lookup(p->selfbound, bkey)) {
        pre.n_identity_free = 1;
        pre.identity_free = idf;
    }
    Orbit__Ledger__Proposal prop = ORBIT__LEDGER__PROPOSAL__INIT;
    prop.client_id = p->proposer;
    prop.commitment = &cm;
    prop.precondition = &pre;
    orbit_sched_act_t *a = act_new(ORBIT_SCHED_ACT_PLACE, capsule, 1);
    if (!a)
        return ORBIT_ENOMEM;
    a->prop = own_copy(a, &prop);
    a->binds[0] = bind_prop(a, p->proposer, capsule, ident);
    if (!a->prop || !a->binds[0]) {
        orbit_sched_act_destroy(&a);
        return ORBIT_ENOMEM;
    }
    emit(r, a);
    return ORBIT_OK;
}

static uint32_t gcd_u32(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* FNV-1a of mission/module mixed with this scheduler's seed: where it starts
 * walking the module, its stride, and its rank among modules of equal
 * priority. */
static uint64_t module_offset(const orbit_sched_plan_t *p, const mod_t *m)
{
    uint64_t h = orbit_fnv1a_str(ORBIT_SCHED_HASH_START ^ p->cfg.seed, m->mission);
    h = orbit_fnv1a_str(orbit_fnv1a(h, "/", 1), m->module);
    orbit_sched_rng_t g;
    orbit_sched_rng_seed(&g, h);
    return orbit_sched_rng_next(&g);
}

/* Placements of a module, collected (strings borrowed from the view for
 * the round). */
typedef struct {
    plc_t *v;
    size_t n, cap;
    const mod_t *m;
    bool oom;
} plcs_t;

static int collect_plc(void *arg, const orbit_sched_placement_t *pl)
{
    plcs_t *c = arg;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        plc_t *v = realloc(c->v, cap * sizeof *v);
        if (!v) {
            c->oom = true;
            return 1;
        }
        c->v = v;
        c->cap = cap;
    }
    plc_t *x = &c->v[c->n++];
    memset(x, 0, sizeof *x);
    x->capsule = pl->capsule;
    x->node = pl->node;
    x->gang = pl->gang;
    x->identity = pl->identity;
    x->own = pl->own;
    x->placed_at = pl->index;
    x->health = pl->health;
    x->indexed =
        orbit_sched_capsule_index(pl->capsule, c->m->mission, c->m->module, &x->index) == 0;
    return 0;
}

/* Identity repair: a placement without identity for bind_repair_ms. */
static int check_bound(round_t *r, const mod_t *m, const plc_t *c)
{
    orbit_sched_plan_t *p = r->p;
    if (!c->indexed || (c->identity && *c->identity)) {
        zhashx_delete(p->unbound, c->capsule);
        return ORBIT_OK;
    }
    if (c->own || busy_key(p, 'c', c->capsule) || busy_key(p, 'b', c->capsule))
        return ORBIT_OK;
    int64_t *since = map_get_or_add(p->unbound, c->capsule, sizeof *since);
    if (!since)
        return ORBIT_ENOMEM;
    if (!*since)
        *since = r->now;
    if (r->now - *since < p->cfg.bind_repair_ms || !room_left(r))
        return ORBIT_OK;
    char ident[ORBIT_SCHED_ID_MAX];
    if (orbit_sched_identity(m->mission, m->module, c->index, ident, sizeof ident) != ORBIT_OK)
        return ORBIT_OK;
    orbit_sched_act_t *a = act_new(ORBIT_SCHED_ACT_BIND, c->capsule, 0);
    if (!a)
        return ORBIT_ENOMEM;
    a->prop = bind_prop(a, p->proposer, c->capsule, ident);
    if (!a->prop) {
        orbit_sched_act_destroy(&a);
        return ORBIT_ENOMEM;
    }
    *since = r->now; /* the next attempt after another period */
    emit(r, a);
    return ORBIT_OK;
}

/* Plan module m from its placements pl. *settled: nothing was left to do
 * and nothing may become due with time alone (see settled in
 * orbit_sched_plan). */
static int plan_single(round_t *r, const mod_t *m, plcs_t *pl, bool *settled)
{
    orbit_sched_plan_t *p = r->p;
    bool quiet = true;
    uint32_t count = m->spec->has_count ? m->spec->count : 0;
    uint8_t *bits = count ? calloc((count + 7) / 8, 1) : NULL;
    if (count && !bits)
        return ORBIT_ENOMEM;
    int rc = ORBIT_OK;
    uint32_t valid = 0;
    for (size_t i = 0; i < pl->n && !rc; i++) {
        const plc_t *c = &pl->v[i];
        if (!c->indexed || c->index >= count) {
            quiet = false;
            rc = revoke_plc(r, c, ORBIT_SCHED_WHY_SURPLUS);
            continue;
        }
        bits[c->index / 8] |= (uint8_t)(1u << (c->index % 8));
        valid++;
        char bkey[ORBIT_SCHED_KEY_MAX];
        key_of(bkey, 'c', c->capsule);
        orbit_capsule_t h;
        int hs = health(r, bkey, c, &h);
        if (hs < 0 && !(c->gang && *c->gang)) {
            backoff_fail(p, bkey, c->node, c->placed_at, &h,
                         r->now); /* revoked once the delay passed */
            quiet = false;
            continue;
        }
        if (!(c->gang && *c->gang) && failure_due(r, bkey, c)) {
            if (!orbit_sched_plan_busy(p, ORBIT__LEDGER__REF_KIND__REF_PLACEMENT, c->capsule) &&
                room_left(r))
                rc = revoke_plc(r, c, ORBIT_SCHED_WHY_FAILED);
            quiet = false;
            continue;
        }
        backoff_seen(p, bkey, hs > 0, r->now);
        rc = check_bound(r, m, c);
        /* What this walk leaves behind: a backoff runs out and a missing
         * identity is repaired with time alone; an action in flight ends
         * with a change to the view or a retry. */
        if (quiet && (!c->identity || !*c->identity || zhashx_lookup(p->backoff, bkey) ||
                      zhashx_lookup(p->inflight, bkey)))
            quiet = false;
    }
    *settled = !rc && quiet && valid >= count;
    if (rc || valid >= count) {
        free(bits);
        return rc;
    }
    /* This scheduler's own walk over the indexes: a start and a stride
     * coprime with count, both from its seed, so several schedulers on one
     * module mostly reach for different capsules. */
    uint64_t h = module_offset(p, m);
    uint32_t start = (uint32_t)(h % count), stride = 1;
    if (count > 2) {
        stride = (uint32_t)(1 + (h >> 32) % (count - 1));
        while (gcd_u32(stride, count) != 1)
            stride = stride % (count - 1) + 1;
    }
    bool stop = false;
    for (uint32_t j = 0; j < count && !rc && !stop; j++) {
        uint32_t i = (uint32_t)((start + (uint64_t)j * stride) % count);
        if (bits[i / 8] & (1u << (i % 8)))
            continue;
        char capsule[ORBIT_SCHED_ID_MAX];
        int n = snprintf(capsule, sizeof capsule, "%s/%s/%" PRIu32, m->mission, m->module, i);
        if (n < 0 || n > 63)
            break; /* every higher index is as long or longer */
        if (busy_key(p, 'c', capsule))
            continue;
        if (!room_left(r))
            break;
        rc = place_one(r, m, i, capsule, &stop);
    }
    free(bits);
    return rc;
}

static int plan_gang_place(round_t *r, const mod_t *m, const char *gang, uint32_t count)
{
    orbit_sched_plan_t *p = r->p;
    char gkey[ORBIT_SCHED_KEY_MAX];
    key_of(gkey, 'g', gang);
    if (held_back(r, gkey) || !retry_ok(r, gkey) || !room_left(r))
        return ORBIT_OK;
    if (count > GANG_MEMBERS_MAX) {
        p->st.unplaceable++;
        return ORBIT_OK;
    }
    orbit_sched_res_t env = spec_env(m->spec), total = {0, 0, 0};
    for (uint32_t i = 0; i < count; i++)
        res_add(&total, &env, 1);
    const char *principal = spec_principal(m->spec);
    if (!quota_room(r, principal, &total)) {
        p->st.quota_blocked++;
        return ORBIT_OK;
    }
    /* Choose every member, each seeing the ones before it as reserved. */
    char(*names)[ORBIT_SCHED_ID_MAX] = calloc(count, sizeof *names);
    char(*capsules)[ORBIT_SCHED_ID_MAX] = calloc(count, sizeof *capsules);
    char(*idents)[ORBIT_SCHED_ID_MAX] = calloc(count, sizeof *idents);
    const char **gnodes = calloc(GANG_NODES_MAX, sizeof *gnodes);
    char(*gstore)[ORBIT_SCHED_ID_MAX] = calloc(GANG_NODES_MAX, sizeof *gstore);
    orbit_sched_res_t *gcap = calloc(GANG_NODES_MAX, sizeof *gcap);
    Orbit__Ledger__GangMember *mem = calloc(count, sizeof *mem);
    Orbit__Ledger__GangMember **memp = calloc(count, sizeof *memp);
    Orbit__Ledger__NodeFits *nf = calloc(GANG_NODES_MAX, sizeof *nf);
    Orbit__Ledger__NodeFits **nfp = calloc(GANG_NODES_MAX, sizeof *nfp);
    Orbit__Ledger__Resources *caps = calloc(GANG_NODES_MAX, sizeof *caps);
    char **idf = calloc(count, sizeof *idf);
    orbit_sched_act_t *a = NULL;
    int rc = ORBIT_OK;
    uint32_t chosen = 0;
    if (!names || !capsules || !idents || !gnodes || !gstore || !gcap || !mem || !memp || !nf ||
        !nfp || !caps || !idf) {
        rc = ORBIT_ENOMEM;
        goto out;
    }
    r->gang_nodes = gnodes;
    r->ngang_nodes = 0;
    r->gang_restrict = false;
    orbit_sched_need_t need = {env, m->spec->node_selector};
    for (; chosen < count; chosen++) {
        int n = snprintf(capsules[chosen], ORBIT_SCHED_ID_MAX, "%s/%s/%" PRIu32, m->mission,
                         m->module, chosen);
        if (n < 0 || n > 63 ||
            orbit_sched_identity(m->mission, m->module, chosen, idents[chosen],
                                 ORBIT_SCHED_ID_MAX) != ORBIT_OK)
            break;
        r->gang_restrict = r->ngang_nodes >= GANG_NODES_MAX;
        orbit_sched_node_t nd;
        if (orbit_sched_pick(r->v, &p->cfg.score, &p->rng, &need, extra_of, r, &nd, NULL,
                             &p->st.pick) != ORBIT_OK)
            break;
        snprintf(names[chosen], ORBIT_SCHED_ID_MAX, "%s", nd.name);
        reserve_node(p, nd.name, &env, 1);
        size_t k = 0;
        while (k < r->ngang_nodes && strcmp(gnodes[k], nd.name))
            k++;
        if (k == r->ngang_nodes) {
            snprintf(gstore[k], ORBIT_SCHED_ID_MAX, "%s", nd.name);
            gnodes[k] = gstore[k];
            gcap[k] = nd.capacity;
            r->ngang_nodes++;
        }
    }
    r->gang_restrict = false;
    for (uint32_t i = 0; i < chosen; i++)
        reserve_node(p, names[i], &env, -1); /* the action reserves them again */
    if (chosen < count) {
        p->st.unplaceable++;
        goto out;
    }
    Orbit__Ledger__Resources envpb, qres;
    res_pb(&envpb, &env);
    res_pb(&qres, &total);
    for (uint32_t i = 0; i < count; i++) {
        orbit__ledger__gang_member__init(&mem[i]);
        mem[i].capsule = capsules[i];
        mem[i].node = names[i];
        mem[i].envelope = &envpb;
        memp[i] = &mem[i];
        idf[i] = idents[i];
    }
    for (size_t k = 0; k < r->ngang_nodes; k++) {
        orbit__ledger__node_fits__init(&nf[k]);
        nf[k].node = (char *)gnodes[k];
        cap_pb(&caps[k], &gcap[k], &env);
        nf[k].capacity = &caps[k];
        nfp[k] = &nf[k];
    }
    Orbit__Ledger__GangPlacement gp = ORBIT__LEDGER__GANG_PLACEMENT__INIT;
    gp.gang = (char *)gang;
    gp.n_members = count;
    gp.members = memp;
    gp.has_epoch = true;
    gp.epoch = m->index;
    gp.principal = (char *)principal;
    Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
    cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_GANG_PLACEMENT;
    cm.gang_placement = &gp;
    Orbit__Ledger__QuotaAvailable qa = ORBIT__LEDGER__QUOTA_AVAILABLE__INIT;
    qa.principal = (char *)principal;
    qa.resources = &qres;
    Orbit__Ledger__QuotaAvailable *qap[1] = {&qa};
    Orbit__Ledger__Precondition pre = ORBIT__LEDGER__PRECONDITION__INIT;
    pre.n_node_fits = r->ngang_nodes;
    pre.node_fits = nfp;
    if (principal) {
        pre.n_quota_available = 1;
        pre.quota_available = qap;
    }
    if (count <= GANG_NODES_MAX && !zhashx_lookup(p->selfbound, gkey)) {
        pre.n_identity_free = count;
        pre.identity_free = idf;
    }
    Orbit__Ledger__Proposal prop = ORBIT__LEDGER__PROPOSAL__INIT;
    prop.client_id = p->proposer;
    prop.commitment = &cm;
    prop.precondition = &pre;
    a = act_new(ORBIT_SCHED_ACT_GANG, gang, count);
    if (!a) {
        rc = ORBIT_ENOMEM;
        goto out;
    }
    a->prop = own_copy(a, &prop);
    for (uint32_t i = 0; i < count && a->prop; i++)
        if (!(a->binds[i] = bind_prop(a, p->proposer, capsules[i], idents[i])))
            rc = ORBIT_ENOMEM;
    if (!a->prop || rc) {
        orbit_sched_act_destroy(&a);
        rc = ORBIT_ENOMEM;
        goto out;
    }
    emit(r, a);
out:
    r->gang_nodes = NULL;
    r->ngang_nodes = 0;
    free(names);
    free(capsules);
    free(idents);
    free(gnodes);
    free(gstore);
    free(gcap);
    free(mem);
    free(memp);
    free(nf);
    free(nfp);
    free(caps);
    free(idf);
    return rc;
}

static int plan_gang(round_t *r, const mod_t *m, plcs_t *pl)
{
    orbit_sched_plan_t *p = r->p;
    uint32_t count = m->spec->has_count ? m->spec->count : 0;
    char gang[ORBIT_SCHED_ID_MAX];
    int n = snprintf(gang, sizeof gang, "%s/%s", m->mission, m->module);
    if (n < 0 || n > 63)
        return ORBIT_OK;
    char gkey[ORBIT_SCHED_KEY_MAX];
    key_of(gkey, 'g', gang);
    int rc = ORBIT_OK;
    uint32_t members = 0;
    bool bad = false;
    for (size_t i = 0; i < pl->n && !rc; i++) {
        const plc_t *c = &pl->v[i];
        if (!c->gang || strcmp(c->gang, gang) != 0) {
            rc = revoke_plc(r, c, ORBIT_SCHED_WHY_SURPLUS); /* outside the module's gang */
            continue;
        }
        members++;
        if (!c->indexed || c->index >= count)
            bad = true;
    }
    if (rc)
        return rc;
    if (members && (bad || members != count))
        return emit_revoke(r, ORBIT__LEDGER__REF_KIND__REF_GANG, gang, ORBIT_SCHED_WHY_SURPLUS);
    if (members) {
        bool failed = false, running = true, due = false;
        orbit_capsule_t h, fh;
        const plc_t *fc = NULL;
        for (size_t i = 0; i < pl->n; i++) {
            int hs = health(r, gkey, &pl->v[i], &h);
            if (hs < 0 && !failed) {
                failed = true;
                fh = h;
                fc = &pl->v[i];
            }
            running = running && hs > 0;
            due = due || failure_due(r, gkey, &pl->v[i]);
        }
        if (failed) {
            backoff_fail(p, gkey, fc->node, fc->placed_at, &fh,
                         r->now); /* revoked once the delay passed */
            return ORBIT_OK;
        }
        if (due) {
            if (busy_key(p, 'g', gang) || !room_left(r))
                return ORBIT_OK;
            return emit_revoke(r, ORBIT__LEDGER__REF_KIND__REF_GANG, gang, ORBIT_SCHED_WHY_FAILED);
        }
        backoff_seen(p, gkey, running, r->now);
        for (size_t i = 0; i < pl->n && !rc; i++)
            rc = check_bound(r, m, &pl->v[i]);
        return rc;
    }
    if (count == 0 || busy_key(p, 'g', gang))
        return ORBIT_OK;
    return plan_gang_place(r, m, gang, count);
}

static int plan_module(round_t *r, const mod_t *m)
{
    orbit_sched_plan_t *p = r->p;
    bool single = m->spec && !(m->spec->has_gang && m->spec->gang), settled = false;
    char key[2 * ORBIT_SCHED_ID_MAX]; /* mission/module */
    uint64_t *st = NULL;
    if (single && (size_t)snprintf(key, sizeof key, "%s/%s", m->mission, m->module) >= sizeof key)
        single = false; /* not a module the ledger names: walked every round */
    if (single && (st = zhashx_lookup(p->settled, key)) && *st == m->version) {
        p->st.settled++;
        return ORBIT_OK;
    }
    p->st.walks++;
    plcs_t pl = {NULL, 0, 0, m, false};
    int rc = orbit_sched_view_each_module_placement(r->v, m->mission, m->module, collect_plc, &pl);
    if (pl.oom)
        rc = ORBIT_ENOMEM;
    else
        rc = ORBIT_OK; /* ENOTFOUND: no placements */
    if (!rc && !m->spec) {
        for (size_t i = 0; i < pl.n && !rc; i++)
            rc = revoke_plc(r, &pl.v[i], ORBIT_SCHED_WHY_SURPLUS);
    } else if (!rc && m->spec->has_gang && m->spec->gang) {
        rc = plan_gang(r, m, &pl);
    } else if (!rc) {
        rc = plan_single(r, m, &pl, &settled);
    }
    free(pl.v);
    if (single && settled && (st || (st = map_get_or_add(p->settled, key, sizeof *st))))
        *st = m->version;
    else if (st)
        zhashx_delete(p->settled, key);
    return rc;
}

typedef struct {
    mod_t *v;
    size_t n, cap;
    bool oom;
} mods_t;

static int collect_mod(void *arg, const orbit_sched_module_t *m)
{
    mods_t *c = arg;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        mod_t *v = realloc(c->v, cap * sizeof *v);
        if (!v) {
            c->oom = true;
            return 1;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] =
        (mod_t){m->mission, m->module, m->spec, m->index, m->version, m->others_ms, false, 0};
    return 0;
}

static int cmp_mod(const void *a, const void *b)
{
    const mod_t *x = a, *y = b;
    if (!x->spec != !y->spec)
        return x->spec ? 1 : -1; /* revoked modules first: they free room */
    int32_t px = x->spec && x->spec->has_priority ? x->spec->priority : 0;
    int32_t py = y->spec && y->spec->has_priority ? y->spec->priority : 0;
    if (px != py)
        return px > py ? -1 : 1;
    if (x->claimed != y->claimed) /* one another scheduler is filling: fewer races */
        return x->claimed ? 1 : -1;
    if (x->order != y->order) /* each scheduler its own order: fewer races */
        return x->order < y->order ? -1 : 1;
    int c = strcmp(x->mission, y->mission);
    return c ? c : strcmp(x->module, y->module);
}

/* ------------------------------------------------------------ sweeping */

/* Whether id (a capsule "mission/module/i", or with gang a gang
 * "mission/module") is still something to act on: a placement of it stands,
 * or its module exists and (for a capsule) wants index i. */
static bool still_wanted(const orbit_sched_view_t *v, const char *id, bool gang)
{
    orbit_sched_placement_t pl;
    if (!gang && orbit_sched_view_placement(v, id, &pl) == ORBIT_OK)
        return true;
    char mission[ORBIT_SCHED_ID_MAX];
    if (snprintf(mission, sizeof mission, "%s", id) >= (int)sizeof mission)
        return true; /* not an id this planner makes: keep, not judged */
    char *cut = gang ? NULL : strrchr(mission, '/');
    if (cut)
        *cut = '\0'; /* mission/module */
    char *module = strrchr(mission, '/');
    if (!module)
        return false;
    *module++ = '\0';
    orbit_sched_module_t m;
    if (orbit_sched_view_module(v, mission, module, &m) != ORBIT_OK || !m.spec)
        return false;
    if (gang)
        return true;
    uint32_t i, count = m.spec->has_count ? m.spec->count : 0;
    return orbit_sched_capsule_index(id, mission, module, &i) == ORBIT_OK && i < count;
}

/* Drop the records of h whose capsule, gang or module is gone and has
 * nothing in flight. Keys are "c:<capsule>"/"g:<gang>", or with bare 'c'
 * bare capsule ids, with bare 'g' bare "mission/module" keys (judged as a
 * gang's: the module still has a spec). */
static uint64_t sweep_map(orbit_sched_plan_t *p, const orbit_sched_view_t *v, zhashx_t *h,
                          char bare)
{
    uint64_t dropped = 0;
    zlistx_t *keys = zhashx_keys(h);
    if (!keys)
        return 0; /* out of memory: the next sweep */
    for (const char *k = zlistx_first(keys); k; k = zlistx_next(keys)) {
        char kind = bare ? bare : k[0];
        const char *id = bare ? k : k + 2;
        if ((kind != 'c' && kind != 'g') || (!bare && k[1] != ':') || busy_key(p, kind, id) ||
            still_wanted(v, id, kind == 'g'))
            continue;
        zhashx_delete(h, k);
        dropped++;
    }
    zlistx_destroy(&keys);
    return dropped;
}

/* Backoffs, conflict counts, own identities and missing binds are kept per
 * capsule or gang, settled versions per module; a mission stopped or scaled
 * down would otherwise leave them behind for as long as the scheduler runs. */
static void sweep(orbit_sched_plan_t *p, const orbit_sched_view_t *v)
{
    p->st.forgotten += sweep_map(p, v, p->backoff, 0) + sweep_map(p, v, p->conflicts, 0) +
                       sweep_map(p, v, p->selfbound, 0) + sweep_map(p, v, p->unbound, 'c');
    sweep_map(p, v, p->settled, 'g'); /* a cache of walks, not memory of a capsule: not counted */
}

int orbit_sched_plan_round(orbit_sched_plan_t *p, const orbit_sched_view_t *v, int64_t now_ms,
                           orbit_sched_emit_fn emitfn, void *arg)
{
    if (p->cfg.sweep_ms > 0 && now_ms - p->last_sweep >= p->cfg.sweep_ms) {
        p->last_sweep = now_ms;
        sweep(p, v);
    }
    remark(p);
    round_t r;
    memset(&r, 0, sizeof r);
    r.p = p;
    r.v = v;
    r.now = now_ms;
    r.emit = emitfn;
    r.arg = arg;
    r.limit = p->st.in_flight >= p->cfg.window ? 0 : p->cfg.window - (uint32_t)p->st.in_flight;
    r.retries = p->cfg.retry_budget;
    p->more = false;
    p->st.rounds++;
    mods_t ms = {NULL, 0, 0, false};
    orbit_sched_view_each_module(v, collect_mod, &ms);
    int rc = ms.oom ? ORBIT_ENOMEM : ORBIT_OK;
    int64_t now = orbit_sched_view_time(v); /* ledger time: what others_ms is in */
    for (size_t i = 0; i < ms.n; i++) {
        mod_t *m = &ms.v[i];
        m->order = module_offset(p, m);
        m->claimed =
            p->cfg.claim_ms > 0 && m->others_ms > 0 && now - m->others_ms < p->cfg.claim_ms;
    }
    if (!rc && ms.n)
        qsort(ms.v, ms.n, sizeof *ms.v, cmp_mod);
    for (size_t i = 0; i < ms.n && !rc; i++)
        rc = plan_module(&r, &ms.v[i]);
    free(ms.v);
    return rc ? rc : r.emitted;
}

bool orbit_sched_plan_more(const orbit_sched_plan_t *p)
{
    return p->more;
}

void orbit_sched_plan_polled(orbit_sched_plan_t *p)
{
    p->gen++;
}

/* ------------------------------------------------------------ outcomes */

static size_t conflict_slot(const char *which)
{
    for (size_t i = 0; i + 1 < ORBIT_SCHED_CONFLICT_KINDS; i++)
        if (which && !strcmp(which, orbit_sched_conflict_names[i]))
            return i;
    return ORBIT_SCHED_CONFLICT_KINDS - 1;
}

static void note(orbit_sched_plan_t *p, orbit_sched_view_t *v, const Orbit__Ledger__Outcome *o,
                 const Orbit__Ledger__Proposal *prop)
{
    if (o->index > p->st.max_index)
        p->st.max_index = o->index;
    int rc = orbit_sched_view_note_own(v, o->index, prop);
    if (rc)
        orbit_warn("orbit-sched: noting ledger index %" PRIu64 " in the view: %s", o->index,
                   orbit_strerror(rc));
}

/* node_fits observed "NODE: what used+new=..." */
static void doubt_node(orbit_sched_plan_t *p, const char *observed, const char *fallback)
{
    char node[ORBIT_SCHED_ID_MAX];
    const char *colon = observed ? strchr(observed, ':') : NULL;
    if (colon && (size_t)(colon - observed) < sizeof node)
        snprintf(node, sizeof node, "%.*s", (int)(colon - observed), observed);
    else if (fallback)
        snprintf(node, sizeof node, "%s", fallback);
    else
        return;
    uint64_t *g = map_get_or_add(p->doubtful, node, sizeof *g);
    if (g) {
        *g = p->gen;
        mark(p, node);
    }
}

/* identity_free observed "IDENTITY bound to CAPSULE": bound to one of ours? */
static bool bound_to_self(const orbit_sched_act_t *a, const char *observed)
{
    const char *s = observed ? strstr(observed, " bound to ") : NULL;
    if (!s)
        return false;
    s += strlen(" bound to ");
    for (size_t i = 0; i < a->nbinds; i++)
        if (a->binds[i] && !strcmp(a->binds[i]->commitment->identity_bind->capsule, s))
            return true;
    return false;
}

static void log_outcome(orbit_sched_plan_t *p, const orbit_sched_act_t *a, const char *what,
                        const char *detail)
{
    uint64_t sup = 0;
    if (orbit_ratelimit_pass(&p->rl, zclock_mono(), &sup))
        orbit_warn("orbit-sched: %s %s: %s%s",
                   a->kind == ORBIT_SCHED_ACT_REVOKE ? "revoking" : "placing", a->key, what,
                   detail ? detail : "");
}

static void placed_conflict(orbit_sched_plan_t *p, const orbit_sched_act_t *a,
                            const Orbit__Ledger__Outcome *o, int64_t now)
{
    char bkey[ORBIT_SCHED_KEY_MAX];
    key_of(bkey, a->kind == ORBIT_SCHED_ACT_GANG ? 'g' : 'c', a->key);
    const char *w = o->which ? o->which : "";
    if (!strcmp(w, "capsule_placed") || !strcmp(w, "gang_placed"))
        return; /* another scheduler won: the view will show it */
    if (!strcmp(w, "node_fits")) {
        const char *node =
            a->kind == ORBIT_SCHED_ACT_PLACE ? a->prop->commitment->placement->node : NULL;
        doubt_node(p, o->observed, node);
    }
    if (!strcmp(w, "identity_free") && bound_to_self(a, o->observed)) {
        uint32_t *one = map_get_or_add(p->selfbound, bkey, sizeof *one);
        if (one)
            *one = 1;
        return; /* ours already: retried without the condition */
    }
    uint32_t *n = map_get_or_add(p->conflicts, bkey, sizeof *n);
    if (n && ++*n >= CONFLICTS_BEFORE_BACKOFF) {
        *n = 0;
        backoff_fail(p, bkey, NULL, 0, NULL, now);
    }
}

void orbit_sched_plan_done(orbit_sched_plan_t *p, orbit_sched_view_t *v, orbit_sched_act_t **pa,
                           int64_t now_ms)
{
    orbit_sched_act_t *a = *pa;
    char k[ORBIT_SCHED_KEY_MAX];
    inflight_key(a, k);
    if (zhashx_lookup(p->inflight, k) == a) {
        zhashx_delete(p->inflight, k);
        p->st.in_flight--;
        reserve_act(p, a, -1);
    }
    if (a->rc != ORBIT_OK || !a->outcome) {
        p->st.errors++;
        log_outcome(p, a, "no outcome: ", a->err[0] ? a->err : orbit_strerror(a->rc));
        orbit_sched_act_destroy(pa);
        return;
    }
    p->st.proposals++;
    const Orbit__Ledger__Outcome *o = a->outcome;
    switch (o->kind) {
    case ORBIT__LEDGER__OUTCOME_KIND__COMMITTED: {
        note(p, v, o, a->prop);
        char bkey[ORBIT_SCHED_KEY_MAX];
        key_of(bkey, a->kind == ORBIT_SCHED_ACT_GANG ? 'g' : 'c', a->key);
        if (a->kind == ORBIT_SCHED_ACT_PLACE) {
            p->st.placed++;
            zhashx_delete(p->conflicts, bkey);
        } else if (a->kind == ORBIT_SCHED_ACT_GANG) {
            p->st.placed += a->prop->commitment->gang_placement->n_members;
            p->st.gangs_placed++;
            zhashx_delete(p->conflicts, bkey);
        } else if (a->kind == ORBIT_SCHED_ACT_REVOKE) {
            p->st.revoked[a->why < ORBIT_SCHED_WHY_COUNT ? a->why : 0]++;
        } else {
            p->st.binds++;
        }
        break;
    }
    case ORBIT__LEDGER__OUTCOME_KIND__CONFLICT:
        p->st.conflicts[conflict_slot(o->which)]++;
        if (a->kind == ORBIT_SCHED_ACT_PLACE || a->kind == ORBIT_SCHED_ACT_GANG)
            placed_conflict(p, a, o, now_ms);
        else if (a->kind != ORBIT_SCHED_ACT_REVOKE || a->why != ORBIT_SCHED_WHY_REAPED)
            log_outcome(p, a, o->which ? o->which : "conflict", NULL);
        break;
    default:
        p->st.invalid++;
        log_outcome(p, a, "invalid: ", o->reason);
        break;
    }
    /* A failed capsule's revocation that did not commit (another scheduler
     * revoked it first, or no answer) needs nothing: the recorded failure is
     * still due, and is acted on again while the placement stands. */
    for (size_t i = 0; i < a->nbinds; i++) {
        const Orbit__Ledger__Outcome *b = a->bind_outcomes ? a->bind_outcomes[i] : NULL;
        if (!b)
            continue;
        p->st.proposals++;
        if (b->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED) {
            note(p, v, b, a->binds[i]);
            p->st.binds++;
        } else if (b->kind == ORBIT__LEDGER__OUTCOME_KIND__CONFLICT) {
            p->st.conflicts[conflict_slot(b->which)]++;
        } else {
            p->st.invalid++;
        }
    }
    orbit_sched_act_destroy(pa);
}

int orbit_sched_plan_backoff(const orbit_sched_plan_t *p, const char *key, int64_t *delay_ms,
                             int64_t *not_before_ms)
{
    const backoff_t *b = zhashx_lookup(p->backoff, key);
    if (!b)
        return ORBIT_ENOTFOUND;
    if (delay_ms)
        *delay_ms = b->delay_ms;
    if (not_before_ms)
        *not_before_ms = b->not_before;
    return ORBIT_OK;
}

void orbit_sched_plan_stats(const orbit_sched_plan_t *p, orbit_sched_plan_stats_t *out)
{
    *out = p->st;
    out->remembered = zhashx_size(p->backoff) + zhashx_size(p->conflicts) +
                      zhashx_size(p->selfbound) + zhashx_size(p->unbound);
}
