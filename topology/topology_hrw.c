/* topology_hrw: rendezvous hashing of racks over shards. */
#include "topology_hrw.h"

#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_hash.h"

/* splitmix64's finalizer: FNV-1a alone leaves the high bits of names that
 * differ only in their last byte too alike to rank fairly. */
static uint64_t topo_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t orbit_topology_hrw_weight(const char *rack, const char *shard)
{
    uint64_t h = orbit_fnv1a_str(ORBIT_FNV_OFFSET, rack);
    /* The separator keeps ("ab", "c") and ("a", "bc") apart; names never
     * contain a NUL byte. */
    h *= ORBIT_FNV_PRIME;
    return topo_mix(orbit_fnv1a_str(h, shard));
}

bool orbit_topology_hrw_before(const char *rack, const char *a, const char *b)
{
    uint64_t wa = orbit_topology_hrw_weight(rack, a), wb = orbit_topology_hrw_weight(rack, b);
    if (wa != wb)
        return wa > wb;
    return strcmp(a ? a : "", b ? b : "") < 0;
}

int orbit_topology_hrw_pick(const char *rack, const char *const *shards, size_t n, size_t *winner)
{
    if (n == 0)
        return ORBIT_ENOTFOUND;
    if (!rack || !shards || !winner)
        return ORBIT_EINVAL;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        if (!shards[i])
            return ORBIT_EINVAL;
        if (i && orbit_topology_hrw_before(rack, shards[i], shards[best]))
            best = i;
    }
    *winner = best;
    return ORBIT_OK;
}

typedef struct {
    uint64_t weight;
    const char *name;
} topo_ranked_t;

static int topo_ranked_cmp(const void *pa, const void *pb)
{
    const topo_ranked_t *a = pa, *b = pb;
    if (a->weight != b->weight)
        return a->weight > b->weight ? -1 : 1;
    return strcmp(a->name, b->name);
}

int orbit_topology_hrw_rank(const char *rack, const char **shards, size_t n)
{
    if (n == 0)
        return ORBIT_OK;
    if (!rack || !shards)
        return ORBIT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!shards[i])
            return ORBIT_EINVAL;
    topo_ranked_t *r = malloc(n * sizeof *r);
    if (!r)
        return ORBIT_ENOMEM;
    /* Weights computed once each, not once per comparison. */
    for (size_t i = 0; i < n; i++) {
        r[i].weight = orbit_topology_hrw_weight(rack, shards[i]);
        r[i].name = shards[i];
    }
    qsort(r, n, sizeof *r, topo_ranked_cmp);
    for (size_t i = 0; i < n; i++)
        shards[i] = r[i].name;
    free(r);
    return ORBIT_OK;
}
