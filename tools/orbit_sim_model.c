/* orbit_sim_model: node shapes, usage walks, GPU events and reboots. */
#include "orbit_sim_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"

#define GIB          (1LL << 30)
#define GPU_MEM      (80 * GIB)
#define NOT_GPU      UINT32_MAX
#define HOUR_MS      3600000.0
#define EVENT_MIN_MS 30000
#define EVENT_MAX_MS 300000

/* Salts of the per-node hashes, so that each property is independent. */
enum { SALT_SHAPE = 1, SALT_GPU = 2, SALT_RNG = 3, SALT_UUID = 16 };

typedef struct {
    uint32_t cores, mem_gib, gpus;
    uint32_t weight; /* relative frequency within its kind */
} shape_t;

/* CPU nodes first, then GPU nodes. */
static const shape_t shapes[] = {
    {16, 64, 0, 15},   {32, 128, 0, 25},  {64, 256, 0, 30}, {64, 512, 0, 15},
    {128, 512, 0, 10}, {128, 1024, 0, 5}, {64, 512, 8, 40}, {128, 1024, 8, 60},
};
#define CPU_SHAPES 6
#define ALL_SHAPES ((uint32_t)(sizeof shapes / sizeof shapes[0]))

typedef struct {
    uint64_t rng;                         /* splitmix64 state of this node's stream */
    uint64_t incarnation;                 /* 0: not booted yet */
    uint32_t load5_fx, load15_fx;         /* load x100, 16.16 fixed point */
    uint32_t gpu_first;                   /* first of its GPUs in m->gpus, or NOT_GPU */
    uint16_t cpu_pm, mem_pm;              /* usage in 1/10000 of capacity */
    uint16_t cpu_some, mem_some, io_some; /* PSI avg10 x100 */
    uint8_t shape;
} sim_node_t;

typedef struct {
    uint32_t ecc_corrected;
    uint16_t event_left; /* steps until the current event clears; 0: none */
    uint16_t mem_pm;
    int8_t temp_c;
    uint8_t util_pct;
    uint8_t xid;
    uint8_t ecc_uncorrected;
} sim_gpu_t;

struct orbit_sim_model {
    orbit_sim_model_cfg_t cfg;
    char prefix[ORBIT_SIM_PREFIX_MAX + 1];
    char zone[ORBIT_LABEL_VALUE_MAX + 1];
    sim_node_t *nodes;
    sim_gpu_t *gpus;
    uint32_t ngpus;
    double p_reboot, p_gpu_event; /* per step */
    uint32_t alpha5, alpha15;     /* load averaging per step, x65536 */
    uint32_t event_min_steps, event_max_steps;
    orbit_node_state_t scratch; /* what step returns */
    orbit_gpu_t scratch_gpus[ORBIT_SIM_GPUS_PER_NODE];
    uint32_t scratch_rack; /* rack whose labels scratch.labels holds */
};

/* ------------------------------------------------------------------ random */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t hash3(uint64_t seed, uint64_t idx, uint64_t salt)
{
    return mix64(seed ^ mix64(idx * 0x9E3779B97F4A7C15ull + salt));
}

static uint64_t next64(uint64_t *state)
{
    *state += 0x9E3779B97F4A7C15ull;
    return mix64(*state);
}

static double unit(uint64_t *state)
{
    return (double)(next64(state) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [lo, hi]. */
static int64_t range(uint64_t *state, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next64(state) % (uint64_t)(hi - lo + 1));
}

/* Triangular step in [-a, a], centred on 0: a cheap bell for random walks. */
static int64_t step(uint64_t *state, int64_t a)
{
    return (range(state, -a, a) + range(state, -a, a)) / 2;
}

/* v + d reflected into [lo, hi]. */
static int64_t walk(int64_t v, int64_t d, int64_t lo, int64_t hi)
{
    v += d;
    if (v < lo)
        v = 2 * lo - v;
    if (v > hi)
        v = 2 * hi - v;
    return v < lo ? lo : v > hi ? hi : v;
}

/* ------------------------------------------------------------------ shapes */

static bool is_gpu_node(const orbit_sim_model_cfg_t *c, uint32_t idx)
{
    return (double)(hash3(c->seed, idx, SALT_GPU) >> 11) * 0x1.0p-53 < c->gpu_fraction;
}

static uint32_t pick_shape(const orbit_sim_model_cfg_t *c, uint32_t idx)
{
    bool gpu = is_gpu_node(c, idx);
    uint32_t first = gpu ? CPU_SHAPES : 0, last = gpu ? ALL_SHAPES : CPU_SHAPES;
    uint32_t total = 0;
    for (uint32_t s = first; s < last; s++)
        total += shapes[s].weight;
    uint32_t r = (uint32_t)(hash3(c->seed, idx, SALT_SHAPE) % total);
    for (uint32_t s = first; s < last; s++) {
        if (r < shapes[s].weight)
            return s;
        r -= shapes[s].weight;
    }
    return last - 1;
}

/* -------------------------------------------------------------- lifecycle */

void orbit_sim_model_cfg_default(orbit_sim_model_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->nodes = 1;
    c->racks = 1;
    c->prefix = ORBIT_SIM_DEFAULT_PREFIX;
    c->zone = ORBIT_SIM_DEFAULT_ZONE;
    c->gpu_fraction = 0.125;
    c->seed = 1;
    c->interval_ms = 1000;
    c->reboots_per_hour = 2.0;
    c->gpu_events_per_hour = 0.2;
}

static bool zone_ok(const char *z)
{
    size_t n = z ? strlen(z) : 0;
    if (n == 0 || n > ORBIT_LABEL_VALUE_MAX)
        return false;
    for (const char *p = z; *p; p++)
        if (*p == '=' || (unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

int orbit_sim_model_cfg_check(const orbit_sim_model_cfg_t *c, char *err, size_t errlen)
{
    const char *why = NULL;
    if (c->nodes < 1 || c->nodes > ORBIT_SIM_NODES_MAX)
        why = "--leaves must be in 1..10000000";
    else if (c->racks < 1 || c->racks > c->nodes)
        why = "--racks must be in 1..leaves";
    else if (!c->prefix || strlen(c->prefix) > ORBIT_SIM_PREFIX_MAX || !orbit_name_valid(c->prefix))
        why = "--prefix must be 1-40 characters of [A-Za-z0-9._-]";
    else if (!zone_ok(c->zone))
        why = "--zone must be 1-127 printable characters without '='";
    else if (!(c->gpu_fraction >= 0.0 && c->gpu_fraction <= 1.0))
        why = "--gpu-fraction must be in 0..1";
    else if (!(c->reboots_per_hour >= 0.0 && c->reboots_per_hour <= 3600.0))
        why = "reboot rate must be in 0..3600 per node-hour";
    else if (!(c->gpu_events_per_hour >= 0.0 && c->gpu_events_per_hour <= 3600.0))
        why = "GPU event rate must be in 0..3600 per GPU-hour";
    else if (c->interval_ms == 0)
        why = "interval must be positive";
    if (why) {
        snprintf(err, errlen, "%s", why);
        return ORBIT_EINVAL;
    }
    return ORBIT_OK;
}

static uint32_t fx_alpha(uint32_t interval_ms, double window_ms)
{
    double a = 1.0 - exp(-(double)interval_ms / window_ms);
    uint32_t fx = (uint32_t)(a * 65536.0 + 0.5);
    return fx ? fx : 1;
}

static uint32_t clamp_steps(double ms, uint32_t interval_ms)
{
    double s = ms / interval_ms;
    return s < 1 ? 1 : s > UINT16_MAX ? UINT16_MAX : (uint32_t)s;
}

orbit_sim_model_t *orbit_sim_model_new(const orbit_sim_model_cfg_t *cfg)
{
    char err[128];
    if (!cfg || orbit_sim_model_cfg_check(cfg, err, sizeof err) != ORBIT_OK)
        return NULL;
    orbit_sim_model_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cfg = *cfg;
    snprintf(m->prefix, sizeof m->prefix, "%s", cfg->prefix);
    snprintf(m->zone, sizeof m->zone, "%s", cfg->zone);
    m->cfg.prefix = m->prefix;
    m->cfg.zone = m->zone;
    m->nodes = calloc(cfg->nodes, sizeof *m->nodes);
    if (!m->nodes)
        goto fail;
    uint32_t ngpus = 0;
    for (uint32_t i = 0; i < cfg->nodes; i++) {
        sim_node_t *n = &m->nodes[i];
        n->shape = (uint8_t)pick_shape(cfg, i);
        n->rng = hash3(cfg->seed, i, SALT_RNG);
        n->gpu_first = shapes[n->shape].gpus ? ngpus : NOT_GPU;
        ngpus += shapes[n->shape].gpus;
    }
    if (ngpus) {
        m->gpus = calloc(ngpus, sizeof *m->gpus);
        if (!m->gpus)
            goto fail;
    }
    m->ngpus = ngpus;
    m->p_reboot = cfg->reboots_per_hour * cfg->interval_ms / HOUR_MS;
    m->p_gpu_event = cfg->gpu_events_per_hour * cfg->interval_ms / HOUR_MS;
    m->alpha5 = fx_alpha(cfg->interval_ms, 300000.0);
    m->alpha15 = fx_alpha(cfg->interval_ms, 900000.0);
    m->event_min_steps = clamp_steps(EVENT_MIN_MS, cfg->interval_ms);
    m->event_max_steps = clamp_steps(EVENT_MAX_MS, cfg->interval_ms);
    orbit_node_state_init(&m->scratch);
    m->scratch_rack = UINT32_MAX;
    return m;
fail:
    orbit_sim_model_destroy(&m);
    return NULL;
}

void orbit_sim_model_destroy(orbit_sim_model_t **pm)
{
    if (!pm || !*pm)
        return;
    orbit_sim_model_t *m = *pm;
    free(m->nodes);
    free(m->gpus);
    free(m);
    *pm = NULL;
}

uint32_t orbit_sim_model_nodes(const orbit_sim_model_t *m)
{
    return m->cfg.nodes;
}

static uint32_t rack_of(const orbit_sim_model_cfg_t *c, uint32_t idx)
{
    return (uint32_t)((uint64_t)idx * c->racks / c->nodes);
}

uint32_t orbit_sim_model_rack(const orbit_sim_model_t *m, uint32_t idx)
{
    return rack_of(&m->cfg, idx);
}

void orbit_sim_model_name(const orbit_sim_model_t *m, uint32_t idx, char *out)
{
    snprintf(out, ORBIT_NAME_MAX, "%s-%u", m->prefix, idx);
}

void orbit_sim_model_totals(const orbit_sim_model_cfg_t *cfg, orbit_sim_totals_t *t)
{
    memset(t, 0, sizeof *t);
    for (uint32_t i = 0; i < cfg->nodes; i++) {
        const shape_t *s = &shapes[pick_shape(cfg, i)];
        t->nodes++;
        t->gpu_nodes += s->gpus != 0;
        t->cpu_capacity_m += (uint64_t)s->cores * 1000;
        t->mem_capacity += (uint64_t)s->mem_gib * GIB;
        t->gpu_capacity += s->gpus;
    }
}

size_t orbit_sim_model_heap_bytes(const orbit_sim_model_t *m)
{
    return m->cfg.nodes * sizeof *m->nodes + m->ngpus * sizeof *m->gpus;
}

/* -------------------------------------------------------------------- step */

static void boot(orbit_sim_model_t *m, sim_node_t *n, int64_t now_wall_ms)
{
    uint64_t now = now_wall_ms > 0 ? (uint64_t)now_wall_ms : 1;
    bool first = n->incarnation == 0;
    n->incarnation = n->incarnation + 1 > now ? n->incarnation + 1 : now;
    const shape_t *s = &shapes[n->shape];
    /* A fresh boot runs little; a first boot joins a fleet already at work. */
    n->cpu_pm = (uint16_t)(first ? range(&n->rng, 1000, 7000) : range(&n->rng, 300, 1000));
    n->mem_pm = (uint16_t)(first ? range(&n->rng, 2000, 7000) : range(&n->rng, 1000, 2000));
    n->cpu_some = n->mem_some = n->io_some = 0;
    uint64_t load = (uint64_t)s->cores * n->cpu_pm / 100; /* x100 */
    n->load5_fx = n->load15_fx = (uint32_t)(load << 16);
    for (uint32_t g = 0; g < s->gpus; g++) {
        sim_gpu_t *x = &m->gpus[n->gpu_first + g];
        memset(x, 0, sizeof *x);
        x->util_pct = (uint8_t)(first ? range(&n->rng, 0, 100) : 0);
        x->temp_c = (int8_t)(32 + x->util_pct * 45 / 100);
        x->mem_pm = (uint16_t)(first ? range(&n->rng, 0, 9000) : 0);
    }
}

static void walk_node(orbit_sim_model_t *m, sim_node_t *n)
{
    n->cpu_pm = (uint16_t)walk(n->cpu_pm, step(&n->rng, 300), 100, 9800);
    n->mem_pm = (uint16_t)walk(n->mem_pm, step(&n->rng, 100), 500, 9700);
    /* Pressure follows saturation, with occasional spikes that decay. */
    int64_t cpu_target = n->cpu_pm > 8000 ? (n->cpu_pm - 8000) * 2 : 0;
    n->cpu_some = (uint16_t)((n->cpu_some * 3 + cpu_target) / 4);
    int64_t mem_target = n->mem_pm > 9000 ? (n->mem_pm - 9000) * 4 : 0;
    int64_t mem = (n->mem_some * 7 + mem_target * 3) / 10;
    if (unit(&n->rng) < 0.01)
        mem += range(&n->rng, 100, 2000);
    n->mem_some = (uint16_t)(mem > ORBIT_PRESSURE_MAX ? ORBIT_PRESSURE_MAX : mem);
    int64_t io = n->io_some * 6 / 10;
    if (unit(&n->rng) < 0.02)
        io += range(&n->rng, 50, 1500);
    n->io_some = (uint16_t)(io > ORBIT_PRESSURE_MAX ? ORBIT_PRESSURE_MAX : io);
    /* Load averages: exponential decay towards load1, as the kernel does. */
    uint64_t cores = shapes[n->shape].cores;
    int64_t load1 = (int64_t)(cores * n->cpu_pm / 100);
    int64_t target = load1 << 16;
    n->load5_fx = (uint32_t)(n->load5_fx + ((target - (int64_t)n->load5_fx) * m->alpha5 >> 16));
    n->load15_fx = (uint32_t)(n->load15_fx + ((target - (int64_t)n->load15_fx) * m->alpha15 >> 16));
}

/* Critical XIDs fail a GPU, others degrade it (see orbit_gpu_health_derive). */
static const uint8_t event_xids[] = {79, 48, 13, 31, 94, 0 /* 0: uncorrectable ECC */};

static void walk_gpu(orbit_sim_model_t *m, sim_node_t *n, sim_gpu_t *g, orbit_sim_step_t *w)
{
    g->util_pct = (uint8_t)walk(g->util_pct, step(&n->rng, 15), 0, 100);
    int64_t target = 32 + g->util_pct * 45 / 100;
    int64_t t = g->temp_c + (target > g->temp_c ? 1 : target < g->temp_c ? -1 : 0);
    g->temp_c = (int8_t)walk(t, step(&n->rng, 1), 25, 83);
    g->mem_pm = (uint16_t)walk(g->mem_pm, step(&n->rng, 300), 0, 10000);
    if (unit(&n->rng) < 0.0005)
        g->ecc_corrected += (uint32_t)range(&n->rng, 1, 3);
    if (g->event_left) {
        if (--g->event_left == 0) {
            g->xid = 0;
            g->ecc_uncorrected = 0;
            w->gpu_recovered++;
        }
    } else if (m->p_gpu_event > 0 && unit(&n->rng) < m->p_gpu_event) {
        uint8_t xid = event_xids[range(&n->rng, 0, sizeof event_xids - 1)];
        g->xid = xid;
        g->ecc_uncorrected = xid == 0;
        g->event_left = (uint16_t)range(&n->rng, m->event_min_steps, m->event_max_steps);
        w->gpu_events++;
    }
}

static void hex(char *out, uint64_t v, int digits)
{
    static const char d[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        out[i] = d[v & 15];
}

/* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", stable per (seed, node, gpu). */
static void gpu_uuid(const orbit_sim_model_t *m, uint32_t idx, uint32_t g, char *out)
{
    uint64_t a = hash3(m->cfg.seed, idx, SALT_UUID + 2 * g);
    uint64_t b = hash3(m->cfg.seed, idx, SALT_UUID + 2 * g + 1);
    memcpy(out, "GPU-", 4);
    hex(out + 4, a >> 32, 8);
    out[12] = '-';
    hex(out + 13, a >> 16, 4);
    out[17] = '-';
    hex(out + 18, a, 4);
    out[22] = '-';
    hex(out + 23, b >> 48, 4);
    out[27] = '-';
    hex(out + 28, b, 12);
    out[40] = '\0';
}

static void fill_state(orbit_sim_model_t *m, uint32_t idx, int64_t now_wall_ms)
{
    const sim_node_t *n = &m->nodes[idx];
    const shape_t *sh = &shapes[n->shape];
    orbit_node_state_t *s = &m->scratch;
    orbit_sim_model_name(m, idx, s->name);
    s->incarnation = n->incarnation;
    s->sampled_ms = now_wall_ms;
    s->interval_ms = m->cfg.interval_ms;
    s->cpu_capacity_m = (int64_t)sh->cores * 1000;
    s->cpu_used_m = s->cpu_capacity_m * n->cpu_pm / 10000;
    s->mem_capacity = (int64_t)sh->mem_gib * GIB;
    s->mem_used = s->mem_capacity / 10000 * n->mem_pm;
    s->gpu_capacity = sh->gpus;
    s->load1 = (uint32_t)(sh->cores * n->cpu_pm / 100);
    s->load5 = n->load5_fx >> 16;
    s->load15 = n->load15_fx >> 16;
    s->pressure_available = true;
    s->pressure.cpu_some = n->cpu_some;
    s->pressure.mem_some = n->mem_some;
    s->pressure.mem_full = n->mem_some / 3u;
    s->pressure.io_some = n->io_some;
    s->pressure.io_full = n->io_some / 2u;
    uint32_t rack = rack_of(&m->cfg, idx);
    if (rack != m->scratch_rack) {
        /* Sorted by key: rack < zone. */
        snprintf(s->labels, sizeof s->labels, "rack=%s-r%u\nzone=%s\n", m->prefix, rack, m->zone);
        m->scratch_rack = rack;
    }
    s->ngpus = sh->gpus;
    s->gpus = sh->gpus ? m->scratch_gpus : NULL;
    for (uint32_t g = 0; g < sh->gpus; g++) {
        const sim_gpu_t *x = &m->gpus[n->gpu_first + g];
        orbit_gpu_t *o = &m->scratch_gpus[g];
        o->index = g;
        gpu_uuid(m, idx, g, o->uuid);
        o->temp_c = x->temp_c;
        o->util_pct = x->util_pct;
        o->mem_total = (uint64_t)GPU_MEM;
        o->mem_used = (uint64_t)GPU_MEM / 10000 * x->mem_pm;
        o->power_mw = 70000 + x->util_pct * 6300u;
        o->ecc_corrected = x->ecc_corrected;
        o->ecc_uncorrected = x->ecc_uncorrected;
        o->last_xid = x->xid;
        o->health = orbit_gpu_health_derive(o);
    }
}

const orbit_node_state_t *orbit_sim_model_step(orbit_sim_model_t *m, uint32_t idx,
                                               int64_t now_wall_ms, orbit_sim_step_t *what)
{
    orbit_sim_step_t w = {false, 0, 0};
    sim_node_t *n = &m->nodes[idx];
    if (n->incarnation == 0) {
        boot(m, n, now_wall_ms);
    } else if (m->p_reboot > 0 && unit(&n->rng) < m->p_reboot) {
        boot(m, n, now_wall_ms);
        w.rebooted = true;
    } else {
        walk_node(m, n);
        for (uint32_t g = 0; g < shapes[n->shape].gpus; g++)
            walk_gpu(m, n, &m->gpus[n->gpu_first + g], &w);
    }
    fill_state(m, idx, now_wall_ms);
    if (what)
        *what = w;
    return &m->scratch;
}
