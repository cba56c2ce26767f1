/* shard_agg: node summaries and their associative merge. */
#include "shard_agg.h"

#include <string.h>

#include "orbit_err.h"

static const char *status_names[ORBIT_STATUS_COUNT] = {"alive", "suspect", "down", "unreachable"};

const char *orbit_status_name(int status)
{
    if (status < 0 || status >= ORBIT_STATUS_COUNT)
        return "unknown";
    return status_names[status];
}

int orbit_status_parse(const char *s)
{
    for (int i = 0; i < ORBIT_STATUS_COUNT; i++)
        if (s && !strcmp(s, status_names[i]))
            return i;
    return -1;
}

int orbit_pressure_bucket(uint32_t v)
{
    static const uint32_t upper[ORBIT_PRESSURE_BUCKETS - 1] = {0, 100, 500, 1000, 2500, 5000};
    for (int i = 0; i < ORBIT_PRESSURE_BUCKETS - 1; i++)
        if (v <= upper[i])
            return i;
    return ORBIT_PRESSURE_BUCKETS - 1;
}

void orbit_agg_add_node(orbit_agg_t *agg, orbit_status_t status, const orbit_node_state_t *s)
{
    agg->nodes[status]++;
    if (status != ORBIT_ALIVE && status != ORBIT_SUSPECT)
        return;
    agg->cpu_capacity_m += (uint64_t)s->cpu_capacity_m;
    agg->cpu_used_m += (uint64_t)s->cpu_used_m;
    agg->mem_capacity += (uint64_t)s->mem_capacity;
    agg->mem_used += (uint64_t)s->mem_used;
    agg->gpu_capacity += s->gpu_capacity;
    for (uint32_t i = 0; i < s->ngpus; i++)
        agg->gpus[s->gpus[i].health]++;
    if (s->pressure_available)
        agg->pressure_hist[orbit_pressure_bucket(s->pressure.mem_some)]++;
    else
        agg->pressure_unavailable++;
}

void orbit_agg_merge(orbit_agg_t *dst, const orbit_agg_t *src)
{
    for (int i = 0; i < ORBIT_STATUS_COUNT; i++)
        dst->nodes[i] += src->nodes[i];
    dst->cpu_capacity_m += src->cpu_capacity_m;
    dst->cpu_used_m += src->cpu_used_m;
    dst->mem_capacity += src->mem_capacity;
    dst->mem_used += src->mem_used;
    dst->gpu_capacity += src->gpu_capacity;
    for (int i = 0; i < ORBIT_GPU_HEALTH_COUNT; i++)
        dst->gpus[i] += src->gpus[i];
    for (int i = 0; i < ORBIT_PRESSURE_BUCKETS; i++)
        dst->pressure_hist[i] += src->pressure_hist[i];
    dst->pressure_unavailable += src->pressure_unavailable;
}

void orbit_agg_merge_unreachable(orbit_agg_t *dst, const orbit_agg_t *src)
{
    dst->nodes[ORBIT_UNREACHABLE] += orbit_agg_total(src);
}

uint64_t orbit_agg_total(const orbit_agg_t *agg)
{
    uint64_t n = 0;
    for (int i = 0; i < ORBIT_STATUS_COUNT; i++)
        n += agg->nodes[i];
    return n;
}

bool orbit_agg_equal(const orbit_agg_t *a, const orbit_agg_t *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

void orbit_agg_to_pb(const orbit_agg_t *agg, Orbit__Summary *pb, orbit_agg_pb_store_t *st)
{
    memcpy(st->nodes, agg->nodes, sizeof st->nodes);
    memcpy(st->gpus, agg->gpus, sizeof st->gpus);
    memcpy(st->hist, agg->pressure_hist, sizeof st->hist);
    pb->n_nodes_by_status = ORBIT_STATUS_COUNT;
    pb->nodes_by_status = st->nodes;
    pb->has_cpu_capacity_m = pb->has_cpu_used_m = pb->has_mem_capacity = true;
    pb->has_mem_used = pb->has_gpu_capacity = pb->has_pressure_unavailable = true;
    pb->cpu_capacity_m = agg->cpu_capacity_m;
    pb->cpu_used_m = agg->cpu_used_m;
    pb->mem_capacity = agg->mem_capacity;
    pb->mem_used = agg->mem_used;
    pb->gpu_capacity = agg->gpu_capacity;
    pb->n_gpus_by_health = ORBIT_GPU_HEALTH_COUNT;
    pb->gpus_by_health = st->gpus;
    pb->n_mem_pressure_hist = ORBIT_PRESSURE_BUCKETS;
    pb->mem_pressure_hist = st->hist;
    pb->pressure_unavailable = agg->pressure_unavailable;
}

int orbit_agg_from_pb(orbit_agg_t *agg, const Orbit__Summary *pb)
{
    if (!pb || pb->n_nodes_by_status > ORBIT_STATUS_COUNT ||
        pb->n_gpus_by_health > ORBIT_GPU_HEALTH_COUNT ||
        pb->n_mem_pressure_hist > ORBIT_PRESSURE_BUCKETS)
        return ORBIT_EINVAL;
    orbit_agg_t a;
    memset(&a, 0, sizeof a);
    for (size_t i = 0; i < pb->n_nodes_by_status; i++)
        a.nodes[i] = pb->nodes_by_status[i];
    for (size_t i = 0; i < pb->n_gpus_by_health; i++)
        a.gpus[i] = pb->gpus_by_health[i];
    for (size_t i = 0; i < pb->n_mem_pressure_hist; i++)
        a.pressure_hist[i] = pb->mem_pressure_hist[i];
    a.cpu_capacity_m = pb->cpu_capacity_m;
    a.cpu_used_m = pb->cpu_used_m;
    a.mem_capacity = pb->mem_capacity;
    a.mem_used = pb->mem_used;
    a.gpu_capacity = pb->gpu_capacity;
    a.pressure_unavailable = pb->pressure_unavailable;
    /* Absurd sums (more used than capacity) mean a broken or hostile child. */
    if (a.cpu_used_m > a.cpu_capacity_m + a.cpu_capacity_m / 100 || a.mem_used > a.mem_capacity)
        return ORBIT_EINVAL;
    *agg = a;
    return ORBIT_OK;
}
