/* shard_place: a discovery-mode shard's place in the tree, and its refetch
 * schedule. */
#include "shard_place.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "orbit_err.h"

int orbit_shard_place_resolve(const orbit_topology_t *t, const char *id, const char *roots,
                              orbit_shard_place_t *out, char *err, size_t errlen)
{
    if (!t || !id || !roots || !out) {
        orbit_errf(err, errlen, "invalid argument");
        return ORBIT_EINVAL;
    }
    orbit_topology_shard_t me, parent;
    if (orbit_topology_get_shard(t, id, &me) != ORBIT_OK) {
        orbit_errf(err, errlen, "shard %s is not declared in the topology", id);
        return ORBIT_ENOTFOUND;
    }
    if (!me.endpoint[0]) {
        orbit_errf(err, errlen, "shard %s is declared without an endpoint", id);
        return ORBIT_EINVAL;
    }
    orbit_shard_place_t p;
    memset(&p, 0, sizeof p);
    p.tier = me.tier;
    p.epoch = orbit_topology_epoch(t);
    snprintf(p.parent, sizeof p.parent, "%s", me.parent);
    snprintf(p.listen, sizeof p.listen, "%s", me.endpoint);
    if (me.parent[0]) {
        if (orbit_topology_get_shard(t, me.parent, &parent) != ORBIT_OK) {
            orbit_errf(err, errlen, "parent %s of shard %s is not in the topology", me.parent, id);
            return ORBIT_EINVAL;
        }
        if (!parent.endpoint[0]) {
            orbit_errf(err, errlen, "parent %s of shard %s has no endpoint", me.parent, id);
            return ORBIT_EINVAL;
        }
        snprintf(p.upstream, sizeof p.upstream, "%s", parent.endpoint);
    } else {
        if (!roots[0] || strlen(roots) >= sizeof p.upstream) {
            orbit_errf(err, errlen, "root endpoint list is empty or too long");
            return ORBIT_EINVAL;
        }
        snprintf(p.upstream, sizeof p.upstream, "%s", roots);
    }
    *out = p;
    return ORBIT_OK;
}

zhashx_t *orbit_shard_place_racks(const orbit_topology_t *t, const char *id)
{
    zhashx_t *set = zhashx_new();
    zlistx_t *racks = NULL;
    if (!set || orbit_topology_racks_of(t, id, &racks) != ORBIT_OK)
        goto fail;
    for (const char *r = zlistx_first(racks); r; r = zlistx_next(racks))
        if (zhashx_insert(set, r, (void *)1) != 0 && !zhashx_lookup(set, r))
            goto fail;
    zlistx_destroy(&racks);
    return set;
fail:
    zlistx_destroy(&racks);
    zhashx_destroy(&set);
    return NULL;
}

/* ------------------------------------------------------------ refetch */

void orbit_shard_refetch_init(orbit_shard_refetch_t *r, uint32_t interval_ms, uint64_t held,
                              int64_t now)
{
    memset(r, 0, sizeof *r);
    r->interval_ms = interval_ms ? interval_ms : 1000;
    r->held = r->seen = held;
    r->due_ms = -1;
    r->safety_ms = now + (int64_t)ORBIT_SHARD_REFETCH_SAFETY * r->interval_ms;
}

bool orbit_shard_refetch_saw(orbit_shard_refetch_t *r, uint64_t epoch, int64_t now,
                             uint32_t jitter_ms)
{
    if (epoch > r->seen)
        r->seen = epoch;
    if (epoch <= r->held || r->due_ms >= 0)
        return false; /* nothing new, or a fetch is already scheduled */
    r->due_ms = now + (int64_t)(jitter_ms % r->interval_ms);
    return true;
}

bool orbit_shard_refetch_due(const orbit_shard_refetch_t *r, int64_t now)
{
    return (r->due_ms >= 0 && now >= r->due_ms) || now >= r->safety_ms;
}

void orbit_shard_refetch_done(orbit_shard_refetch_t *r, bool ok, uint64_t epoch, int64_t now)
{
    r->due_ms = -1;
    if (ok && epoch > r->held)
        r->held = epoch;
    /* Any read, answered or not, restarts the safety net's count; a failed
     * one is retried by due_ms below. */
    r->safety_ms = now + (int64_t)ORBIT_SHARD_REFETCH_SAFETY * r->interval_ms;
    /* Failed, or read from a replica that has not applied what an ack
     * announced: again one interval later. */
    if (!ok || r->seen > r->held)
        r->due_ms = now + r->interval_ms;
}
