/* topology_plan: dry runs of topology changes. */
#include "topology_plan.h"

#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"

void orbit_topology_plan_init(orbit_topology_plan_t *p)
{
    if (p)
        memset(p, 0, sizeof *p);
}

void orbit_topology_plan_close(orbit_topology_plan_t *p)
{
    if (!p)
        return;
    free(p->moves);
    free(p->suggested);
    orbit_topology_plan_init(p);
}

/* A growable array of moves. */
typedef struct {
    orbit_topology_move_t *v;
    size_t n, cap;
    uint64_t nodes;
} topo_moves_t;

static int topo_moves_add(topo_moves_t *m, const char *rack, const char *from, const char *to,
                          orbit_topology_nodes_fn nodes, void *ctx)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        orbit_topology_move_t *v = realloc(m->v, cap * sizeof *v);
        if (!v)
            return ORBIT_ENOMEM;
        m->v = v;
        m->cap = cap;
    }
    orbit_topology_move_t *e = &m->v[m->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->rack, sizeof e->rack, "%s", rack);
    snprintf(e->from, sizeof e->from, "%s", from);
    snprintf(e->to, sizeof e->to, "%s", to);
    e->nodes = nodes ? nodes(ctx, rack) : 0;
    m->nodes += e->nodes;
    return ORBIT_OK;
}

/* A leave as remove-shard runs it: drain, then leave. A shard with child
 * shards is refused by the leave itself before anything is drained, so the
 * reason names its racks and children as they are. */
static int topo_plan_leave(orbit_topology_t *m, const char *id, char *err, size_t errlen)
{
    orbit_topology_shard_t s;
    if (orbit_topology_get_shard(m, id, &s) == ORBIT_OK && !s.children && s.racks) {
        int rc = orbit_topology_drain(m, id, err, errlen);
        if (rc)
            return rc;
    }
    return orbit_topology_remove_shard(m, id, err, errlen);
}

/* Net owner changes between before and after, for every rack of after (a
 * batch never removes a rack). */
static int topo_diff(const orbit_topology_t *before, const orbit_topology_t *after,
                     orbit_topology_nodes_fn nodes, void *ctx, topo_moves_t *out)
{
    zlistx_t *racks = NULL;
    int rc = orbit_topology_racks_of(after, NULL, &racks);
    for (const char *r = rc ? NULL : zlistx_first(racks); r && !rc; r = zlistx_next(racks)) {
        char from[ORBIT_TOPOLOGY_NAME_MAX + 1] = "", to[ORBIT_TOPOLOGY_NAME_MAX + 1];
        orbit_topology_rack_owner(before, r, from);
        orbit_topology_rack_owner(after, r, to);
        if (strcmp(from, to))
            rc = topo_moves_add(out, r, from, to, nodes, ctx);
    }
    zlistx_destroy(&racks);
    return rc;
}

/* Racks that the tier-1 shards joined by the batch win by rendezvous in
 * `after` without owning them there. */
static int topo_suggest(const orbit_topology_t *after, const orbit_topology_change_t *changes,
                        size_t n, orbit_topology_nodes_fn nodes, void *ctx, topo_moves_t *out)
{
    bool any = false;
    for (size_t i = 0; i < n && !any; i++)
        any = changes[i].op == ORBIT_TOPOLOGY_JOIN && changes[i].tier == 1;
    if (!any)
        return ORBIT_OK;
    zlistx_t *racks = NULL;
    int rc = orbit_topology_racks_of(after, NULL, &racks);
    for (const char *r = rc ? NULL : zlistx_first(racks); r && !rc; r = zlistx_next(racks)) {
        char win[ORBIT_TOPOLOGY_NAME_MAX + 1], owner[ORBIT_TOPOLOGY_NAME_MAX + 1];
        rc = orbit_topology_natural_owner(after, r, win);
        if (rc == ORBIT_ENOTFOUND) { /* the batch left no tier-1 shard */
            rc = ORBIT_OK;
            break;
        }
        if (!rc)
            rc = orbit_topology_rack_owner(after, r, owner);
        if (rc || !strcmp(win, owner))
            continue;
        bool joined = false;
        for (size_t i = 0; i < n && !joined; i++)
            joined = changes[i].op == ORBIT_TOPOLOGY_JOIN && changes[i].tier == 1 &&
                     changes[i].shard && !strcmp(changes[i].shard, win);
        if (joined)
            rc = topo_moves_add(out, r, owner, win, nodes, ctx);
    }
    zlistx_destroy(&racks);
    return rc;
}

int orbit_topology_plan(const orbit_topology_t *t, const orbit_topology_change_t *changes, size_t n,
                        orbit_topology_nodes_fn nodes, void *ctx, orbit_topology_plan_t *out)
{
    if (!out)
        return ORBIT_EINVAL;
    orbit_topology_plan_close(out);
    if (!t || (!changes && n))
        return ORBIT_EINVAL;
    topo_moves_t moves = {0}, sugg = {0};
    orbit_topology_t *m = orbit_topology_dup(t);
    int rc = m ? ORBIT_OK : ORBIT_ENOMEM;
    for (size_t i = 0; i < n && !rc && !out->refused; i++) {
        const orbit_topology_change_t *c = &changes[i];
        int r = c->op == ORBIT_TOPOLOGY_LEAVE
                    ? topo_plan_leave(m, c->shard, out->reason, sizeof out->reason)
                    : orbit_topology_apply(m, c, out->reason, sizeof out->reason);
        if (r == ORBIT_ENOMEM) {
            rc = r;
        } else if (r) {
            out->refused = true;
            out->refused_at = i;
            out->code = r;
        }
    }
    if (!rc && !out->refused)
        rc = topo_diff(t, m, nodes, ctx, &moves);
    if (!rc && !out->refused)
        rc = topo_suggest(m, changes, n, nodes, ctx, &sugg);
    orbit_topology_destroy(&m);
    if (rc) {
        free(moves.v);
        free(sugg.v);
        orbit_topology_plan_init(out);
        return rc;
    }
    out->moves = moves.v;
    out->nmoves = moves.n;
    out->nodes_moved = moves.nodes;
    out->suggested = sugg.v;
    out->nsuggested = sugg.n;
    out->nodes_suggested = sugg.nodes;
    return ORBIT_OK;
}
