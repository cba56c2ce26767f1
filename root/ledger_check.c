/* ledger_check: validation and preconditions of ledger proposals. */
#include "ledger_check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_names.h"
#include "orbit_selector.h"

void orbit_ledger_conflict(orbit_ledger_verdict_t *v, const char *which, const char *fmt, ...)
{
    va_list ap;
    v->kind = ORBIT__LEDGER__OUTCOME_KIND__CONFLICT;
    snprintf(v->which, sizeof v->which, "%s", which);
    va_start(ap, fmt);
    vsnprintf(v->observed, sizeof v->observed, fmt, ap);
    va_end(ap);
}

void orbit_ledger_invalid(orbit_ledger_verdict_t *v, const char *fmt, ...)
{
    va_list ap;
    v->kind = ORBIT__LEDGER__OUTCOME_KIND__INVALID;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof v->reason, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ names */

/* The ledger's bounds are the vocabulary's (proto/orbit_names.h). */
_Static_assert(ORBIT_LEDGER_NAME_MAX == ORBIT_NAME_LEN_MAX, "name bound");
_Static_assert(ORBIT_LEDGER_CLIENT_MAX == ORBIT_CLIENT_ID_MAX, "client id bound");
_Static_assert(ORBIT_LEDGER_ENDPOINT_MAX == ORBIT_ENDPOINT_MAX, "endpoint bound");

bool orbit_ledger_plain_valid(const char *s)
{
    return orbit_name_plain_ok(s);
}

bool orbit_ledger_id_valid(const char *s)
{
    return orbit_name_id_ok(s);
}

bool orbit_ledger_client_id_valid(const char *s)
{
    return orbit_name_client_ok(s);
}

bool orbit_ledger_str_set(const char *s)
{
    return s && *s;
}

orbit_ledger_res_t orbit_ledger_res_of(const Orbit__Ledger__Resources *r)
{
    orbit_ledger_res_t o = {0, 0, 0};
    if (r) {
        o.cpu_m = r->has_cpu_m ? r->cpu_m : 0;
        o.mem = r->has_mem ? r->mem : 0;
        o.gpus = r->has_gpus ? (int64_t)r->gpus : 0;
    }
    return o;
}

/* Resources within the documented bounds (absent message: invalid). */
static bool res_ok(const Orbit__Ledger__Resources *r)
{
    if (!r)
        return false;
    if (r->has_cpu_m && (r->cpu_m < 0 || r->cpu_m > ORBIT_LEDGER_CPU_MAX_M))
        return false;
    if (r->has_mem && (r->mem < 0 || r->mem > ORBIT_LEDGER_MEM_MAX))
        return false;
    return !r->has_gpus || r->gpus <= ORBIT_LEDGER_GPUS_MAX;
}

/* Fleet-wide amounts (quota grants and quota_available): CPU and memory in
 * 0..ORBIT_LEDGER_SUM_MAX, GPUs any uint32, where res_ok bounds one
 * envelope. */
static bool sum_res_ok(const Orbit__Ledger__Resources *r)
{
    if (!r)
        return false;
    if (r->has_cpu_m && (r->cpu_m < 0 || r->cpu_m > ORBIT_LEDGER_SUM_MAX))
        return false;
    return !r->has_mem || (r->mem >= 0 && r->mem <= ORBIT_LEDGER_SUM_MAX); /* gpus: uint32 */
}

/* Printable ASCII without spaces, 1..max bytes. */
/* "mission/module" with both halves plain names. */
static bool module_key_ok(const char *key)
{
    const char *slash = key ? strchr(key, '/') : NULL;
    if (!slash || (size_t)(slash - key) > ORBIT_LEDGER_NAME_MAX)
        return false;
    char mission[ORBIT_LEDGER_NAME_MAX + 1];
    memcpy(mission, key, (size_t)(slash - key));
    mission[slash - key] = '\0';
    return orbit_ledger_plain_valid(mission) && orbit_ledger_plain_valid(slash + 1);
}

/* ------------------------------------------------------------ validation */

#define BAD(...)                                                                                   \
    do {                                                                                           \
        orbit_ledger_invalid(v, __VA_ARGS__);                                                      \
        return;                                                                                    \
    } while (0)

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns ORBIT_ENOMEM or ORBIT_OK (v tells the verdict). */
#define BADI(...)                                                                                  \
    do {                                                                                           \
        orbit_ledger_invalid(v, __VA_ARGS__);                                                      \
        return ORBIT_OK;                                                                           \
    } while (0)

static int check_gang(const Orbit__Ledger__GangPlacement *g, orbit_ledger_verdict_t *v)
{
    if (!orbit_ledger_id_valid(g->gang))
        BADI("gang_placement: invalid gang name");
    if (g->n_members == 0)
        BADI("gang_placement: no members");
    if (g->n_members > ORBIT_LEDGER_GANG_MAX)
        BADI("gang_placement: %zu members (at most %d)", g->n_members, ORBIT_LEDGER_GANG_MAX);
    if (orbit_ledger_str_set(g->principal) && !orbit_ledger_plain_valid(g->principal))
        BADI("gang_placement: invalid principal");
    for (size_t i = 0; i < g->n_members; i++) {
        const Orbit__Ledger__GangMember *m = g->members[i];
        if (!m || !orbit_ledger_id_valid(m->capsule))
            BADI("gang_placement: member %zu: invalid capsule name", i);
        if (!orbit_ledger_plain_valid(m->node))
            BADI("gang_placement: member %zu: invalid node name", i);
        if (!res_ok(m->envelope))
            BADI("gang_placement: member %zu: envelope out of range", i);
    }
    const char **names = malloc(g->n_members * sizeof *names);
    if (!names)
        return ORBIT_ENOMEM;
    for (size_t i = 0; i < g->n_members; i++)
        names[i] = g->members[i]->capsule;
    qsort(names, g->n_members, sizeof *names, cmp_str);
    const char *dup = NULL;
    for (size_t i = 1; i < g->n_members && !dup; i++)
        if (!strcmp(names[i - 1], names[i]))
            dup = names[i];
    if (dup)
        orbit_ledger_invalid(v, "gang_placement: capsule %s named twice", dup);
    free(names);
    return ORBIT_OK;
}

#undef BADI

static void check_ref(const char *what, const Orbit__Ledger__Ref *r, bool expiry,
                      orbit_ledger_verdict_t *v)
{
    if (!r || !r->key)
        BAD("%s: no reference", what);
    switch (r->kind) {
    case ORBIT__LEDGER__REF_KIND__REF_PLACEMENT:
    case ORBIT__LEDGER__REF_KIND__REF_GANG:
    case ORBIT__LEDGER__REF_KIND__REF_IDENTITY:
        if (expiry)
            BAD("%s: only leases and quotas expire", what);
        if (!orbit_ledger_id_valid(r->key))
            BAD("%s: invalid key", what);
        return;
    case ORBIT__LEDGER__REF_KIND__REF_LEASE:
        if (!orbit_ledger_id_valid(r->key))
            BAD("%s: invalid lease resource", what);
        return;
    case ORBIT__LEDGER__REF_KIND__REF_QUOTA:
        if (!orbit_ledger_plain_valid(r->key))
            BAD("%s: invalid principal", what);
        return;
    case ORBIT__LEDGER__REF_KIND__REF_MODULE:
        if (expiry)
            BAD("%s: only leases and quotas expire", what);
        if (!module_key_ok(r->key))
            BAD("%s: module key must be mission/module", what);
        return;
    default: BAD("%s: unknown reference kind %d", what, (int)r->kind);
    }
}

static void check_topology(const Orbit__Ledger__TopologyChange *t, orbit_ledger_verdict_t *v)
{
    switch (t->change_case) {
    case ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_JOIN: {
        const Orbit__Ledger__ShardJoin *j = t->join;
        if (!j || !orbit_ledger_plain_valid(j->shard))
            BAD("shard_join: invalid shard name");
        if (j->tier < 1 || j->tier > ORBIT_LEDGER_TIER_MAX)
            BAD("shard_join: tier %u out of range 1..%d", j->tier, ORBIT_LEDGER_TIER_MAX);
        if (orbit_ledger_str_set(j->parent) && !orbit_ledger_plain_valid(j->parent))
            BAD("shard_join: invalid parent name");
        if (orbit_ledger_str_set(j->parent) && !strcmp(j->parent, j->shard))
            BAD("shard_join: a shard cannot be its own parent");
        if (orbit_ledger_str_set(j->endpoint) &&
            !orbit_text_ok(j->endpoint, ORBIT_LEDGER_ENDPOINT_MAX))
            BAD("shard_join: invalid endpoint");
        return;
    }
    case ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_LEAVE:
        if (!t->leave || !orbit_ledger_plain_valid(t->leave->shard))
            BAD("shard_leave: invalid shard name");
        return;
    case ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_MOVE:
        if (!t->move || !orbit_ledger_plain_valid(t->move->rack))
            BAD("rack_move: invalid rack name");
        if (!orbit_ledger_plain_valid(t->move->shard))
            BAD("rack_move: invalid shard name");
        return;
    default: BAD("topology: no change set");
    }
}

static void check_module(const Orbit__Ledger__ModuleAdjustment *m, orbit_ledger_verdict_t *v)
{
    if (!orbit_ledger_plain_valid(m->mission))
        BAD("module_adjustment: invalid mission name");
    if (!orbit_ledger_plain_valid(m->module))
        BAD("module_adjustment: invalid module name");
    const Orbit__Ledger__ModuleSpec *s = m->adjustment;
    if (!s)
        BAD("module_adjustment: no adjustment");
    if (s->has_count && s->count > ORBIT_LEDGER_COUNT_MAX)
        BAD("module_adjustment: count %u above %d", s->count, ORBIT_LEDGER_COUNT_MAX);
    if (s->resources && !res_ok(s->resources))
        BAD("module_adjustment: resources out of range");
    if (s->command && strlen(s->command) > ORBIT_LEDGER_COMMAND_MAX)
        BAD("module_adjustment: command longer than %d bytes", ORBIT_LEDGER_COMMAND_MAX);
    if (orbit_ledger_str_set(s->principal) && !orbit_ledger_plain_valid(s->principal))
        BAD("module_adjustment: invalid principal");
    const char *why = NULL;
    if (s->node_selector && !orbit_selector_valid(s->node_selector, &why))
        BAD("module_adjustment: node_selector: %s", why ? why : "invalid");
}

static int check_commitment(const Orbit__Ledger__Commitment *c, int64_t time_ms,
                            orbit_ledger_verdict_t *v);

static void check_simple(const Orbit__Ledger__Commitment *c, int64_t time_ms,
                         orbit_ledger_verdict_t *v)
{
    switch (c->kind_case) {
    case ORBIT__LEDGER__COMMITMENT__KIND_QUOTA_GRANT: {
        const Orbit__Ledger__QuotaGrant *q = c->quota_grant;
        if (!q || !orbit_ledger_plain_valid(q->principal))
            BAD("quota_grant: invalid principal");
        if (!sum_res_ok(q->resources))
            BAD("quota_grant: resources out of range");
        if (q->has_until_ms && q->until_ms < 0)
            BAD("quota_grant: negative until_ms");
        if (q->has_until_ms && q->until_ms != 0 && q->until_ms <= time_ms)
            BAD("quota_grant: until_ms %" PRId64 " is not after the entry time %" PRId64,
                q->until_ms, time_ms);
        return;
    }
    case ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT: {
        const Orbit__Ledger__Placement *p = c->placement;
        if (!p || !orbit_ledger_id_valid(p->capsule))
            BAD("placement: invalid capsule name");
        if (!orbit_ledger_plain_valid(p->node))
            BAD("placement: invalid node name");
        if (!res_ok(p->envelope))
            BAD("placement: envelope out of range");
        if (orbit_ledger_str_set(p->principal) && !orbit_ledger_plain_valid(p->principal))
            BAD("placement: invalid principal");
        return;
    }
    case ORBIT__LEDGER__COMMITMENT__KIND_LEASE: {
        const Orbit__Ledger__Lease *l = c->lease;
        if (!l || !orbit_ledger_id_valid(l->holder))
            BAD("lease: invalid holder");
        if (!orbit_ledger_id_valid(l->resource))
            BAD("lease: invalid resource");
        if (l->ttl_ms <= 0 || l->ttl_ms > ORBIT_LEDGER_TTL_MAX_MS)
            BAD("lease: ttl_ms %" PRId64 " out of range 1..%lld", l->ttl_ms,
                ORBIT_LEDGER_TTL_MAX_MS);
        return;
    }
    case ORBIT__LEDGER__COMMITMENT__KIND_IDENTITY_BIND: {
        const Orbit__Ledger__IdentityBind *b = c->identity_bind;
        if (!b || !orbit_ledger_id_valid(b->capsule))
            BAD("identity_bind: invalid capsule name");
        if (!orbit_ledger_id_valid(b->identity))
            BAD("identity_bind: invalid identity");
        return;
    }
    case ORBIT__LEDGER__COMMITMENT__KIND_MODULE_ADJUSTMENT:
        if (!c->module_adjustment)
            BAD("module_adjustment: missing");
        check_module(c->module_adjustment, v);
        return;
    case ORBIT__LEDGER__COMMITMENT__KIND_REVOCATION:
        check_ref("revocation", c->revocation ? c->revocation->what : NULL, false, v);
        return;
    case ORBIT__LEDGER__COMMITMENT__KIND_TOPOLOGY:
        if (!c->topology)
            BAD("topology: missing");
        check_topology(c->topology, v);
        return;
    case ORBIT__LEDGER__COMMITMENT__KIND_EXPIRY:
        check_ref("expiry", c->expiry ? c->expiry->what : NULL, true, v);
        return;
    default: BAD("commitment: unknown or missing kind");
    }
}

static int check_commitment(const Orbit__Ledger__Commitment *c, int64_t time_ms,
                            orbit_ledger_verdict_t *v)
{
    if (c->kind_case != ORBIT__LEDGER__COMMITMENT__KIND_GANG_PLACEMENT) {
        check_simple(c, time_ms, v);
        return ORBIT_OK;
    }
    if (!c->gang_placement) {
        orbit_ledger_invalid(v, "gang_placement: missing");
        return ORBIT_OK;
    }
    return check_gang(c->gang_placement, v);
}

static void check_precondition(const Orbit__Ledger__Precondition *pc, orbit_ledger_verdict_t *v)
{
    if (pc->n_node_fits > ORBIT_LEDGER_COND_MAX || pc->n_unchanged_since > ORBIT_LEDGER_COND_MAX ||
        pc->n_identity_free > ORBIT_LEDGER_COND_MAX ||
        pc->n_quota_available > ORBIT_LEDGER_COND_MAX)
        BAD("precondition: more than %d conditions of one kind", ORBIT_LEDGER_COND_MAX);
    for (size_t i = 0; i < pc->n_node_fits; i++) {
        const Orbit__Ledger__NodeFits *f = pc->node_fits[i];
        if (!f || !orbit_ledger_plain_valid(f->node))
            BAD("node_fits: invalid node name");
        if (!res_ok(f->capacity))
            BAD("node_fits: capacity out of range");
    }
    for (size_t i = 0; i < pc->n_unchanged_since; i++) {
        const Orbit__Ledger__UnchangedSince *u = pc->unchanged_since[i];
        if (!u || !orbit_text_ok(u->key, ORBIT_LEDGER_KEY_MAX))
            BAD("unchanged_since: invalid key");
    }
    for (size_t i = 0; i < pc->n_identity_free; i++)
        if (!orbit_ledger_id_valid(pc->identity_free[i]))
            BAD("identity_free: invalid identity");
    for (size_t i = 0; i < pc->n_quota_available; i++) {
        const Orbit__Ledger__QuotaAvailable *q = pc->quota_available[i];
        if (!q || !orbit_ledger_plain_valid(q->principal))
            BAD("quota_available: invalid principal");
        if (!sum_res_ok(q->resources))
            BAD("quota_available: resources out of range");
    }
}

int orbit_ledger_check_valid(const Orbit__Ledger__Proposal *p, int64_t time_ms,
                             orbit_ledger_verdict_t *v)
{
    if (!p->commitment) {
        orbit_ledger_invalid(v, "no commitment");
        return ORBIT_OK;
    }
    int rc = check_commitment(p->commitment, time_ms, v);
    if (!rc && v->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED && p->precondition)
        check_precondition(p->precondition, v);
    return rc;
}

#undef BAD

/* ------------------------------------------------------------ preconditions */

/* What p's commitment newly places on node. */
static orbit_ledger_res_t new_on_node(const Orbit__Ledger__Commitment *c, const char *node)
{
    orbit_ledger_res_t sum = {0, 0, 0};
    if (c->kind_case == ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT) {
        if (!strcmp(c->placement->node, node))
            sum = orbit_ledger_res_of(c->placement->envelope);
    } else if (c->kind_case == ORBIT__LEDGER__COMMITMENT__KIND_GANG_PLACEMENT) {
        const Orbit__Ledger__GangPlacement *g = c->gang_placement;
        for (size_t i = 0; i < g->n_members; i++) {
            if (strcmp(g->members[i]->node, node))
                continue;
            orbit_ledger_res_t r = orbit_ledger_res_of(g->members[i]->envelope);
            sum.cpu_m += r.cpu_m; /* at most 1024 x the bounds: no overflow */
            sum.mem += r.mem;
            sum.gpus += r.gpus;
        }
    }
    return sum;
}

static bool fits(orbit_ledger_verdict_t *v, const char *node, const char *what, int64_t used,
                 int64_t add, bool has_cap, int64_t cap)
{
    /* used <= 2^62 and add <= 2^60: the sum cannot overflow */
    if (!has_cap || used + add <= cap)
        return true;
    orbit_ledger_conflict(v, "node_fits", "%s: %s used+new=%" PRId64 " > cap=%" PRId64, node, what,
                          used + add, cap);
    return false;
}

static int check_node_fits(orbit_ledger_tx_t *tx, const Orbit__Ledger__Proposal *p,
                           const Orbit__Ledger__NodeFits *f, orbit_ledger_verdict_t *v)
{
    orbit_ledger_node_t n;
    int rc = orbit_ledger_store_get_node(tx, f->node, &n);
    if (rc)
        return rc;
    orbit_ledger_res_t add = new_on_node(p->commitment, f->node);
    const Orbit__Ledger__Resources *cap = f->capacity;
    if (fits(v, f->node, "cpu_m", n.used.cpu_m, add.cpu_m, cap->has_cpu_m, cap->cpu_m) &&
        fits(v, f->node, "mem", n.used.mem, add.mem, cap->has_mem, cap->mem))
        fits(v, f->node, "gpus", n.used.gpus, add.gpus, cap->has_gpus, (int64_t)cap->gpus);
    return ORBIT_OK;
}

static bool room(orbit_ledger_verdict_t *v, const char *who, const char *what, int64_t grant,
                 int64_t used, int64_t want)
{
    if (grant - used >= want)
        return true;
    orbit_ledger_conflict(v, "quota_available", "%s: %s grant-used=%" PRId64 " < want=%" PRId64,
                          who, what, grant - used, want);
    return false;
}

static int check_quota(orbit_ledger_tx_t *tx, const Orbit__Ledger__QuotaAvailable *qa,
                       int64_t time_ms, orbit_ledger_verdict_t *v)
{
    orbit_ledger_quota_t q;
    int rc = orbit_ledger_store_get_quota(tx, qa->principal, &q);
    if (rc == ORBIT_ENOTFOUND || (!rc && !q.granted)) {
        orbit_ledger_conflict(v, "quota_available", "%s: no grant", qa->principal);
        return ORBIT_OK;
    }
    if (rc)
        return rc;
    if (q.until_ms && q.until_ms <= time_ms) {
        orbit_ledger_conflict(v, "quota_available", "%s: grant expired at %" PRId64, qa->principal,
                              q.until_ms);
        return ORBIT_OK;
    }
    orbit_ledger_res_t want = orbit_ledger_res_of(qa->resources);
    if (room(v, qa->principal, "cpu_m", q.grant.cpu_m, q.used.cpu_m, want.cpu_m) &&
        room(v, qa->principal, "mem", q.grant.mem, q.used.mem, want.mem))
        room(v, qa->principal, "gpus", q.grant.gpus, q.used.gpus, want.gpus);
    return ORBIT_OK;
}

int orbit_ledger_check_preconditions(orbit_ledger_tx_t *tx, const Orbit__Ledger__Proposal *p,
                                     int64_t time_ms, orbit_ledger_verdict_t *v)
{
    const Orbit__Ledger__Precondition *pc = p->precondition;
    int rc = ORBIT_OK;
    if (!pc)
        return ORBIT_OK;
#define HOLDS (v->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED)
    for (size_t i = 0; !rc && HOLDS && i < pc->n_node_fits; i++)
        rc = check_node_fits(tx, p, pc->node_fits[i], v);
    for (size_t i = 0; !rc && HOLDS && i < pc->n_unchanged_since; i++) {
        const Orbit__Ledger__UnchangedSince *u = pc->unchanged_since[i];
        uint64_t at = 0;
        rc = orbit_ledger_store_key_index(tx, u->key, &at);
        if (!rc && at > u->index)
            orbit_ledger_conflict(v, "unchanged_since", "%s changed at %" PRIu64, u->key, at);
    }
    for (size_t i = 0; !rc && HOLDS && i < pc->n_identity_free; i++) {
        char capsule[ORBIT_LEDGER_NAME_MAX + 1];
        rc = orbit_ledger_store_get_identity(tx, pc->identity_free[i], capsule);
        if (!rc)
            orbit_ledger_conflict(v, "identity_free", "%s bound to %s", pc->identity_free[i],
                                  capsule);
        else if (rc == ORBIT_ENOTFOUND)
            rc = ORBIT_OK;
    }
    for (size_t i = 0; !rc && HOLDS && i < pc->n_quota_available; i++)
        rc = check_quota(tx, pc->quota_available[i], time_ms, v);
#undef HOLDS
    return rc;
}
