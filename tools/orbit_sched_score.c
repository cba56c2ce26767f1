/* orbit_sched_score: eligibility, bin-packing score and the sampled pick. */
#include "orbit_sched_score.h"

#include <string.h>

#include "orbit_err.h"
#include "orbit_selector.h"

void orbit_sched_score_cfg_default(orbit_sched_score_cfg_t *c)
{
    c->max_pressure = ORBIT_SCHED_PRESSURE_DEFAULT;
    c->sample = ORBIT_SCHED_SAMPLE_DEFAULT;
}

void orbit_sched_rng_seed(orbit_sched_rng_t *r, uint64_t seed)
{
    /* splitmix64 of the seed: never 0, which xorshift cannot leave */
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    r->s = z ? z : 0x2545f4914f6cdd1dULL;
}

uint64_t orbit_sched_rng_next(orbit_sched_rng_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

uint64_t orbit_sched_rng_below(orbit_sched_rng_t *r, uint64_t n)
{
    return n ? orbit_sched_rng_next(r) % n : 0;
}

/* Free room in one dimension asked for (want > 0). */
static bool room(int64_t cap, int64_t committed, int64_t reserved, int64_t want)
{
    return want <= 0 || cap - committed - reserved >= want;
}

bool orbit_sched_eligible(const orbit_sched_score_cfg_t *c, const orbit_sched_node_t *n,
                          const orbit_sched_extra_t *extra, const orbit_sched_need_t *need)
{
    static const orbit_sched_extra_t none;
    if (!extra)
        extra = &none;
    if (!n->seen || n->status != ORBIT__NODE_STATUS__ALIVE || extra->doubtful)
        return false;
    if (n->mem_pressure >= c->max_pressure)
        return false;
    /* A leaf reports (and so runs) at most ORBIT_CAPSULES_MAX capsules:
     * envelopes of nothing must not pile more onto one node. */
    if (n->placements >= ORBIT_CAPSULES_MAX)
        return false;
    const orbit_sched_res_t *e = &need->envelope;
    if (!room(n->capacity.cpu_m, n->committed.cpu_m, extra->reserved.cpu_m, e->cpu_m) ||
        !room(n->capacity.mem, n->committed.mem, extra->reserved.mem, e->mem) ||
        !room(n->capacity.gpus, n->committed.gpus, extra->reserved.gpus, e->gpus))
        return false;
    return orbit_selector_matches(need->selector, n->labels);
}

static double frac(int64_t used, int64_t cap)
{
    double f = (double)used / (double)cap;
    return f > 1.0 ? 1.0 : f;
}

double orbit_sched_score(const orbit_sched_node_t *n, const orbit_sched_extra_t *extra,
                         const orbit_sched_res_t *env)
{
    static const orbit_sched_extra_t none;
    if (!extra)
        extra = &none;
    double sum = 0, weight = 0;
    const orbit_sched_res_t *cap = &n->capacity;
    if (cap->cpu_m > 0) {
        sum += frac(n->committed.cpu_m + extra->reserved.cpu_m + env->cpu_m, cap->cpu_m);
        weight += 1;
    }
    if (cap->mem > 0) {
        sum += frac(n->committed.mem + extra->reserved.mem + env->mem, cap->mem);
        weight += 1;
    }
    if (cap->gpus > 0) {
        sum += 2 * frac(n->committed.gpus + extra->reserved.gpus + env->gpus, cap->gpus);
        weight += 2;
    }
    double s = weight > 0 ? sum / weight : 0;
    if (env->gpus <= 0 && (cap->gpus > 0 || n->gpu_capacity > 0))
        s -= 1.0; /* keep GPU nodes for GPU jobs while other nodes fit */
    return s;
}

typedef struct {
    bool found;
    double score;
    uint32_t pressure;
    size_t index;
    orbit_sched_node_t node;
} best_t;

static void consider(const orbit_sched_view_t *v, const orbit_sched_score_cfg_t *c, size_t i,
                     const orbit_sched_need_t *need, orbit_sched_extra_fn fn, void *arg, best_t *b,
                     orbit_sched_pick_stats_t *st)
{
    orbit_sched_node_t n;
    if (orbit_sched_view_node_at(v, i, &n) != ORBIT_OK)
        return;
    st->examined++;
    orbit_sched_extra_t x;
    memset(&x, 0, sizeof x);
    if (fn)
        fn(arg, &n, &x);
    if (!orbit_sched_eligible(c, &n, &x, need))
        return;
    double s = orbit_sched_score(&n, &x, &need->envelope);
    if (b->found && (s < b->score || (s == b->score && n.mem_pressure >= b->pressure)))
        return;
    b->found = true;
    b->score = s;
    b->pressure = n.mem_pressure;
    b->index = i;
    b->node = n;
}

int orbit_sched_pick(const orbit_sched_view_t *v, const orbit_sched_score_cfg_t *c,
                     orbit_sched_rng_t *rng, const orbit_sched_need_t *need,
                     orbit_sched_extra_fn extra, void *arg, orbit_sched_node_t *out, size_t *index,
                     orbit_sched_pick_stats_t *stats)
{
    orbit_sched_pick_stats_t local;
    if (!stats) {
        memset(&local, 0, sizeof local);
        stats = &local;
    }
    stats->picks++;
    best_t b;
    memset(&b, 0, sizeof b);
    size_t n = orbit_sched_view_node_count(v);
    size_t k = c->sample ? c->sample : 1;
    if (n <= k) {
        for (size_t i = 0; i < n; i++)
            consider(v, c, i, need, extra, arg, &b, stats);
    } else {
        for (size_t j = 0; j < k; j++)
            consider(v, c, (size_t)orbit_sched_rng_below(rng, n), need, extra, arg, &b, stats);
        if (!b.found) {
            stats->full_scans++;
            for (size_t i = 0; i < n; i++)
                consider(v, c, i, need, extra, arg, &b, stats);
        }
    }
    if (!b.found) {
        stats->unplaceable++;
        return ORBIT_ENOTFOUND;
    }
    *out = b.node;
    if (index)
        *index = b.index;
    return ORBIT_OK;
}
