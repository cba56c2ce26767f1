/* orbit_bench_plan: a scheduler's cost per capsule placed, in process (see
 * orbit_bench_plan.h). */
#include "orbit_bench_plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.pb-c.h"
#include "orbit.pb-c.h"
#include "orbit_bench_proc.h"
#include "orbit_err.h"
#include "orbit_sched_plan.h"
#include "orbit_sched_view.h"
#include "orbit_wire.h"

#define MODULE_SIZE  1000
#define CAPSULE_CPU  250 /* mCPU a capsule asks for (the principal's usage counts capsules) */
#define OBSERVER_MAX 16
#define MIB          (1LL << 20)
#define GIB          (1LL << 30)

void orbit_bench_plan_cfg_default(orbit_bench_plan_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->nodes = 10000;
    c->capsules = 40000;
    c->observers = 3;
    c->window = 512;
    c->seed = 1;
}

typedef struct {
    orbit_sched_plan_t *plan;
    orbit_sched_view_t *views[1 + OBSERVER_MAX]; /* [0]: the planner's */
    size_t nviews;
    orbit_arena_t *arena;
    orbit_sched_act_t **acts; /* what the current round emitted */
    size_t nacts, capacts;
    bool oom;
    uint64_t index; /* the ledger index of the last commitment */
    double t_round, t_done, t_watch, t_observers;
    uint64_t commitments;
} bench_t;

static double cpu_s(void)
{
    return (double)orbit_bench_thread_cpu_ns() * 1e-9;
}

static void collect(void *arg, orbit_sched_act_t *a)
{
    bench_t *b = arg;
    if (b->nacts == b->capacts) {
        size_t cap = b->capacts ? b->capacts * 2 : 1024;
        orbit_sched_act_t **v = realloc(b->acts, cap * sizeof *v);
        if (!v) {
            b->oom = true;
            a->rc = ORBIT_ENOMEM; /* handed back unanswered: no longer in flight */
            orbit_sched_plan_done(b->plan, b->views[0], &a, 0);
            return;
        }
        b->acts = v;
        b->capacts = cap;
    }
    b->acts[b->nacts++] = a;
}

/* One commitment to deliver: packed, at its ledger index. */
typedef struct {
    uint8_t *buf;
    size_t len;
    uint64_t index;
} packed_t;

typedef struct {
    packed_t *v;
    size_t n, cap;
} batch_t;

static void batch_clear(batch_t *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->v[i].buf);
    q->n = 0;
}

/* Pack p as the commitment at the next index (untimed). */
static int batch_add(bench_t *b, batch_t *q, const Orbit__Ledger__Proposal *p)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 1024;
        packed_t *v = realloc(q->v, cap * sizeof *v);
        if (!v)
            return ORBIT_ENOMEM;
        q->v = v;
        q->cap = cap;
    }
    size_t len = orbit__ledger__proposal__get_packed_size(p);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return ORBIT_ENOMEM;
    orbit__ledger__proposal__pack(p, buf);
    q->v[q->n++] = (packed_t){buf, len, ++b->index};
    return ORBIT_OK;
}

/* Deliver q to every view in index order, as a watch does (decoded in an
 * arena, applied, the arena reset), timing the planner's view apart from
 * the observers'. The clock is read once per view and batch: reading a
 * thread's CPU clock is a system call, dear enough here to skew the
 * figures if made per commitment. */
static int deliver(bench_t *b, const batch_t *q, int64_t time_ms)
{
    for (size_t i = 0; i < b->nviews; i++) {
        double t0 = cpu_s();
        int rc = ORBIT_OK;
        for (size_t k = 0; k < q->n && !rc; k++) {
            Orbit__Ledger__Proposal *p = orbit__ledger__proposal__unpack(
                orbit_arena_allocator(b->arena), q->v[k].len, q->v[k].buf);
            rc = p ? orbit_sched_view_apply_commit(b->views[i], q->v[k].index, time_ms, p)
                   : ORBIT_ENOMEM;
            orbit_arena_reset(b->arena);
        }
        *(i ? &b->t_observers : &b->t_watch) += cpu_s() - t0;
        if (rc)
            return rc;
    }
    b->commitments += q->n;
    return ORBIT_OK;
}

static int deliver_commitment(bench_t *b, batch_t *q, Orbit__Ledger__Commitment *cm)
{
    Orbit__Ledger__Proposal p = ORBIT__LEDGER__PROPOSAL__INIT;
    p.client_id = "bench";
    p.request_id = b->index + 1;
    p.commitment = cm;
    return batch_add(b, q, &p);
}

static Orbit__Ledger__Outcome *committed(uint64_t index)
{
    Orbit__Ledger__Outcome *o = calloc(1, sizeof *o);
    if (o) {
        orbit__ledger__outcome__init(o);
        o->kind = ORBIT__LEDGER__OUTCOME_KIND__COMMITTED;
        o->has_index = true;
        o->index = index;
    }
    return o;
}

/* Answer action a COMMITTED, its binds too, at the next indexes, with its
 * commitments added to q (untimed). */
static int answer(bench_t *b, batch_t *q, orbit_sched_act_t *a)
{
    a->rc = ORBIT_OK;
    int rc = batch_add(b, q, a->prop);
    if (!rc && !(a->outcome = committed(b->index)))
        rc = ORBIT_ENOMEM;
    for (size_t i = 0; i < a->nbinds && !rc; i++) {
        rc = batch_add(b, q, a->binds[i]);
        if (!rc && !(a->bind_outcomes[i] = committed(b->index)))
            rc = ORBIT_ENOMEM;
    }
    return rc;
}

static int setup(const orbit_bench_plan_cfg_t *c, bench_t *b, batch_t *q)
{
    for (size_t i = 0; i < b->nviews; i++) {
        for (uint32_t k = 0; k < c->nodes; k++) {
            char name[32];
            snprintf(name, sizeof name, "node-%05" PRIu32, k);
            Orbit__NodeRow r = ORBIT__NODE_ROW__INIT;
            r.node = name;
            r.status = ORBIT__NODE_STATUS__ALIVE;
            r.shard = "rack-1";
            r.has_cpu_capacity_m = r.has_mem_capacity = true;
            r.cpu_capacity_m = 64000;
            r.mem_capacity = 256 * GIB;
            if (orbit_sched_view_apply_row(b->views[i], &r, 0) != ORBIT_OK)
                return ORBIT_ENOMEM;
        }
        orbit_sched_view_rows_done(b->views[i], 0);
    }
    Orbit__Ledger__Resources all = ORBIT__LEDGER__RESOURCES__INIT;
    all.has_cpu_m = all.has_mem = true;
    all.cpu_m = 1000000000;
    all.mem = 1LL << 55;
    Orbit__Ledger__QuotaGrant g = ORBIT__LEDGER__QUOTA_GRANT__INIT;
    g.principal = "bench";
    g.resources = &all;
    Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
    cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_QUOTA_GRANT;
    cm.quota_grant = &g;
    int rc = deliver_commitment(b, q, &cm);
    for (uint32_t k = 0, left = c->capsules; left && !rc; k++) {
        uint32_t n = left > MODULE_SIZE ? MODULE_SIZE : left;
        char module[32];
        snprintf(module, sizeof module, "worker-%03" PRIu32, k);
        Orbit__Ledger__Resources env = ORBIT__LEDGER__RESOURCES__INIT;
        env.has_cpu_m = env.has_mem = true;
        env.cpu_m = CAPSULE_CPU;
        env.mem = 256 * MIB;
        Orbit__Ledger__ModuleSpec s = ORBIT__LEDGER__MODULE_SPEC__INIT;
        s.has_count = true;
        s.count = n;
        s.resources = &env;
        s.command = "[\"sleep\",\"600\"]";
        s.principal = "bench";
        Orbit__Ledger__ModuleAdjustment m = ORBIT__LEDGER__MODULE_ADJUSTMENT__INIT;
        m.mission = "bench";
        m.module = module;
        m.adjustment = &s;
        cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_MODULE_ADJUSTMENT;
        cm.module_adjustment = &m;
        rc = deliver_commitment(b, q, &cm);
        left -= n;
    }
    if (!rc)
        rc = deliver(b, q, 0);
    batch_clear(q);
    /* setting up is not what is measured */
    b->t_watch = b->t_observers = 0;
    b->commitments = 0;
    return rc;
}

static uint64_t placed(const orbit_sched_view_t *v)
{
    orbit_sched_quota_t q;
    if (orbit_sched_view_quota(v, "bench", &q) != ORBIT_OK)
        return 0;
    return (uint64_t)(q.used.cpu_m / CAPSULE_CPU);
}

int orbit_bench_plan_run(const orbit_bench_plan_cfg_t *c, orbit_bench_plan_result_t *r)
{
    memset(r, 0, sizeof *r);
    if (!c->nodes || !c->capsules || !c->window || c->observers > OBSERVER_MAX) {
        snprintf(r->error, sizeof r->error,
                 "nodes, capsules and window must be > 0, observers "
                 "at most 16");
        return ORBIT_EINVAL;
    }
    bench_t b;
    memset(&b, 0, sizeof b);
    orbit_sched_plan_cfg_t pc;
    orbit_sched_plan_cfg_default(&pc);
    pc.seed = c->seed;
    pc.window = c->window;
    pc.proposer = "bench-plan";
    b.plan = orbit_sched_plan_new(&pc);
    b.arena = orbit_arena_new(1 << 16);
    b.nviews = 1 + c->observers;
    int rc = b.plan && b.arena ? ORBIT_OK : ORBIT_ENOMEM;
    for (size_t i = 0; i < b.nviews && !rc; i++)
        if (!(b.views[i] = orbit_sched_view_new()))
            rc = ORBIT_ENOMEM;
    batch_t q = {NULL, 0, 0};
    if (!rc)
        rc = setup(c, &b, &q);
    int64_t now = 1000;
    uint64_t stalled = 0;
    while (!rc && placed(b.views[0]) < c->capsules) {
        b.nacts = 0;
        double t0 = cpu_s();
        int n = orbit_sched_plan_round(b.plan, b.views[0], now, collect, &b);
        b.t_round += cpu_s() - t0;
        r->rounds++;
        if (n < 0 || b.oom) {
            rc = ORBIT_ENOMEM;
            break;
        }
        r->actions += b.nacts;
        stalled = b.nacts ? 0 : stalled + 1;
        if (stalled > 100) {
            rc = ORBIT_ECORRUPT;
            snprintf(r->error, sizeof r->error,
                     "rounds stopped placing at %" PRIu64 " of %" PRIu32 " capsules",
                     placed(b.views[0]), c->capsules);
            break;
        }
        for (size_t i = 0; i < b.nacts && !rc; i++)
            rc = answer(&b, &q, b.acts[i]);
        t0 = cpu_s();
        for (size_t i = 0; i < b.nacts; i++)
            if (!rc)
                orbit_sched_plan_done(b.plan, b.views[0], &b.acts[i], now);
            else
                orbit_sched_act_destroy(&b.acts[i]);
        b.t_done += cpu_s() - t0;
        if (!rc)
            rc = deliver(&b, &q, now);
        batch_clear(&q);
        now += 1;
    }
    if (rc && !r->error[0])
        snprintf(r->error, sizeof r->error, "%s", orbit_strerror(rc));
    r->placed = placed(b.views[0]);
    r->commitments = b.commitments;
    double per = r->placed ? 1e6 / (double)r->placed : 0;
    r->round_us = b.t_round * per;
    r->done_us = b.t_done * per;
    r->watch_us = b.t_watch * per;
    r->observer_us = c->observers ? b.t_observers * per / c->observers : 0;
    r->total_s = b.t_round + b.t_done + b.t_watch + b.t_observers;
    for (size_t i = 0; i < b.nviews; i++)
        orbit_sched_view_destroy(&b.views[i]);
    orbit_sched_plan_destroy(&b.plan);
    orbit_arena_destroy(&b.arena);
    free(b.acts);
    batch_clear(&q);
    free(q.v);
    return rc;
}

void orbit_bench_plan_print(const orbit_bench_plan_cfg_t *c, const orbit_bench_plan_result_t *r,
                            bool json)
{
    double own = r->round_us + r->done_us + r->watch_us;
    if (json) {
        printf("{\"nodes\":%" PRIu32 ",\"capsules\":%" PRIu32 ",\"observers\":%" PRIu32
               ",\"window\":%" PRIu32 ",\"placed\":%" PRIu64 ",\"rounds\":%" PRIu64
               ",\"actions\":%" PRIu64 ",\"commitments\":%" PRIu64
               ",\"us_per_placement\":{\"rounds\":%.2f,\"done\":%.2f,\"watch\":%.2f,"
               "\"scheduler\":%.2f,\"per_observer\":%.2f},\"cpu_s\":%.3f",
               c->nodes, c->capsules, c->observers, c->window, r->placed, r->rounds, r->actions,
               r->commitments, r->round_us, r->done_us, r->watch_us, own, r->observer_us,
               r->total_s);
        if (r->error[0])
            printf(",\"error\":\"%s\"", r->error);
        printf("}\n");
        return;
    }
    printf("planning in process: %" PRIu32 " nodes, %" PRIu32 " capsules in modules of %d, "
           "window %" PRIu32 ", %" PRIu32 " observer view(s)\n",
           c->nodes, c->capsules, MODULE_SIZE, c->window, c->observers);
    printf("placed %" PRIu64 " in %" PRIu64 " rounds (%" PRIu64 " actions, %" PRIu64
           " commitments watched)\n",
           r->placed, r->rounds, r->actions, r->commitments);
    printf("CPU us per capsule placed: rounds %.2f, outcomes %.2f, own watch %.2f -> scheduler "
           "%.2f; each observer's watch %.2f\n",
           r->round_us, r->done_us, r->watch_us, own, r->observer_us);
    if (r->error[0])
        printf("error: %s\n", r->error);
}
