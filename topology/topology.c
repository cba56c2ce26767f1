/* topology: the federation tree model, its ledger rules, validation and
 * reads. */
#include "topology.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_names.h"
#include "topology_hrw.h"

typedef struct {
    char rack[ORBIT_TOPOLOGY_NAME_MAX + 1]; /* the hash key (not copied) */
    char owner[ORBIT_TOPOLOGY_NAME_MAX + 1];
} topo_rack_t;

struct orbit_topology {
    zhashx_t *shards; /* id -> orbit_topology_shard_t (counts kept 0; derived on read) */
    zhashx_t *racks;  /* rack -> topo_rack_t */
    uint64_t epoch;
};

/* ------------------------------------------------------------ helpers */

static int topo_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int topo_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static bool topo_set(const char *s)
{
    return s && *s;
}

static void topo_free(void **item)
{
    free(*item);
    *item = NULL;
}

static zhashx_t *topo_table(void)
{
    zhashx_t *h = zhashx_new();
    if (h) {
        /* Keys point into the entries themselves: no copy, no free. */
        zhashx_set_key_duplicator(h, NULL);
        zhashx_set_key_destructor(h, NULL);
        zhashx_set_destructor(h, topo_free);
    }
    return h;
}

static int topo_strcmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void *topo_strdup(const void *s)
{
    return strdup(s);
}

static void topo_strfree(void **s)
{
    free(*s);
    *s = NULL;
}

/* The keys of h in strcmp order, borrowed from the entries (valid until h
 * changes). NULL on ENOMEM. */
static zlistx_t *topo_sorted_keys(zhashx_t *h)
{
    zlistx_t *keys = zhashx_keys(h);
    if (keys) {
        zlistx_set_comparator(keys, topo_strcmp);
        zlistx_sort(keys);
    }
    return keys;
}

/* A list that owns copies of the strings added to it. */
static zlistx_t *topo_string_list(void)
{
    zlistx_t *l = zlistx_new();
    if (l) {
        zlistx_set_duplicator(l, topo_strdup);
        zlistx_set_destructor(l, topo_strfree);
        zlistx_set_comparator(l, topo_strcmp);
    }
    return l;
}

static orbit_topology_shard_t *topo_shard(const orbit_topology_t *t, const char *id)
{
    return id ? zhashx_lookup(t->shards, id) : NULL;
}

static uint64_t topo_count_children(const orbit_topology_t *t, const char *id)
{
    uint64_t n = 0;
    for (orbit_topology_shard_t *s = zhashx_first(t->shards); s; s = zhashx_next(t->shards))
        n += !strcmp(s->parent, id);
    return n;
}

static uint64_t topo_count_racks(const orbit_topology_t *t, const char *id)
{
    uint64_t n = 0;
    for (topo_rack_t *r = zhashx_first(t->racks); r; r = zhashx_next(t->racks))
        n += !strcmp(r->owner, id);
    return n;
}

/* ------------------------------------------------------------ lifecycle */

orbit_topology_t *orbit_topology_new(void)
{
    orbit_topology_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->shards = topo_table();
    t->racks = topo_table();
    if (!t->shards || !t->racks)
        orbit_topology_destroy(&t);
    return t;
}

void orbit_topology_destroy(orbit_topology_t **pt)
{
    if (!pt || !*pt)
        return;
    zhashx_destroy(&(*pt)->shards);
    zhashx_destroy(&(*pt)->racks);
    free(*pt);
    *pt = NULL;
}

/* Insert src, or overwrite the entry of the same id in place (its key
 * points into it, so the entry itself must stay). */
static int topo_insert_shard(orbit_topology_t *t, const orbit_topology_shard_t *src)
{
    orbit_topology_shard_t *s = zhashx_lookup(t->shards, src->id);
    bool fresh = !s;
    if (fresh && !(s = malloc(sizeof *s)))
        return ORBIT_ENOMEM;
    *s = *src;
    s->children = s->racks = 0;
    if (fresh && zhashx_insert(t->shards, s->id, s)) {
        free(s);
        return ORBIT_ENOMEM;
    }
    return ORBIT_OK;
}

/* Set rack's owner (an existing entry is rewritten in place). */
static int topo_insert_rack(orbit_topology_t *t, const char *rack, const char *owner)
{
    topo_rack_t *r = zhashx_lookup(t->racks, rack);
    if (r) {
        snprintf(r->owner, sizeof r->owner, "%s", owner);
        return ORBIT_OK;
    }
    r = malloc(sizeof *r);
    if (!r)
        return ORBIT_ENOMEM;
    snprintf(r->rack, sizeof r->rack, "%s", rack);
    snprintf(r->owner, sizeof r->owner, "%s", owner);
    if (zhashx_insert(t->racks, r->rack, r)) {
        free(r);
        return ORBIT_ENOMEM;
    }
    return ORBIT_OK;
}

orbit_topology_t *orbit_topology_dup(const orbit_topology_t *t)
{
    if (!t)
        return NULL;
    orbit_topology_t *c = orbit_topology_new();
    int rc = c ? ORBIT_OK : ORBIT_ENOMEM;
    for (orbit_topology_shard_t *s = rc ? NULL : zhashx_first(t->shards); s && !rc;
         s = zhashx_next(t->shards))
        rc = topo_insert_shard(c, s);
    for (topo_rack_t *r = rc ? NULL : zhashx_first(t->racks); r && !rc; r = zhashx_next(t->racks))
        rc = topo_insert_rack(c, r->rack, r->owner);
    if (rc)
        orbit_topology_destroy(&c);
    else
        c->epoch = t->epoch;
    return c;
}

/* ------------------------------------------------------------ epoch */

uint64_t orbit_topology_epoch(const orbit_topology_t *t)
{
    return t ? t->epoch : 0;
}

void orbit_topology_set_epoch(orbit_topology_t *t, uint64_t epoch)
{
    if (t)
        t->epoch = epoch;
}

int orbit_topology_check_epoch(const orbit_topology_t *t, uint64_t expected, char *err,
                               size_t errlen)
{
    uint64_t at = orbit_topology_epoch(t);
    if (expected != at)
        return topo_fail(err, errlen, ORBIT_EAGAIN,
                         "stale_epoch: expected %" PRIu64 ", topology at %" PRIu64, expected, at);
    return ORBIT_OK;
}

/* ------------------------------------------------------------ changes */

/* Walking up the parent names from `from`, do we meet id? (Then making id
 * from's child closes a loop.) Names, not entries: a loaded model may name
 * id as a parent before id exists. Bounded by the shard count, so a model
 * that already loops (put_shard) cannot trap the walk. */
static bool topo_reaches(const orbit_topology_t *t, const char *from, const char *id)
{
    size_t steps = zhashx_size(t->shards) + 1;
    for (const char *name = from; name[0] && steps--;) {
        if (!strcmp(name, id))
            return true;
        const orbit_topology_shard_t *s = topo_shard(t, name);
        if (!s)
            return false;
        name = s->parent;
    }
    return false;
}

int orbit_topology_add_shard(orbit_topology_t *t, const char *id, uint32_t tier, const char *parent,
                             const char *endpoint, char *err, size_t errlen)
{
    if (!t)
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard_join: no model");
    /* Form first, in the ledger's order (ledger_check.c check_topology). */
    if (!orbit_name_plain_ok(id))
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard_join: invalid shard name");
    if (tier < 1 || tier > ORBIT_TOPOLOGY_TIER_MAX)
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard_join: tier %u out of range 1..%d", tier,
                         ORBIT_TOPOLOGY_TIER_MAX);
    if (topo_set(parent) && !orbit_name_plain_ok(parent))
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard_join: invalid parent name");
    if (topo_set(parent) && !strcmp(parent, id))
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard_join: a shard cannot be its own parent");
    if (topo_set(endpoint) && !orbit_text_ok(endpoint, ORBIT_TOPOLOGY_ENDPOINT_MAX))
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard_join: invalid endpoint");
    /* Then the state, in the ledger's order (ledger.c apply_join). */
    const orbit_topology_shard_t *old = topo_shard(t, id);
    if (old)
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard_exists: %s exists (tier=%u)", id,
                         old->tier);
    if (topo_set(parent)) {
        const orbit_topology_shard_t *p = topo_shard(t, parent);
        if (!p)
            return topo_fail(err, errlen, ORBIT_ENOTFOUND, "parent: %s missing", parent);
        if (p->tier != tier + 1)
            return topo_fail(err, errlen, ORBIT_EINVAL, "parent: %s tier=%u, want %u", parent,
                             p->tier, tier + 1);
        if (topo_reaches(t, parent, id))
            return topo_fail(err, errlen, ORBIT_EINVAL,
                             "cycle: %s would be its own ancestor through %s", id, parent);
    }
    orbit_topology_shard_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.id, sizeof s.id, "%s", id);
    s.tier = tier;
    if (topo_set(parent))
        snprintf(s.parent, sizeof s.parent, "%s", parent);
    if (topo_set(endpoint))
        snprintf(s.endpoint, sizeof s.endpoint, "%s", endpoint);
    int rc = topo_insert_shard(t, &s);
    return rc ? topo_fail(err, errlen, rc, "shard_join: out of memory") : ORBIT_OK;
}

int orbit_topology_remove_shard(orbit_topology_t *t, const char *id, char *err, size_t errlen)
{
    if (!t)
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard_leave: no model");
    if (!orbit_name_plain_ok(id))
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard_leave: invalid shard name");
    if (!topo_shard(t, id))
        return topo_fail(err, errlen, ORBIT_ENOTFOUND, "no such shard %s", id);
    uint64_t racks = topo_count_racks(t, id), children = topo_count_children(t, id);
    if (racks || children)
        return topo_fail(err, errlen, ORBIT_EINVAL,
                         "shard_busy: %s racks=%" PRIu64 ",children=%" PRIu64
                         " (drain racks and remove child shards first)",
                         id, racks, children);
    zhashx_delete(t->shards, id);
    return ORBIT_OK;
}

int orbit_topology_move_rack(orbit_topology_t *t, const char *rack, const char *shard, char *err,
                             size_t errlen)
{
    if (!t)
        return topo_fail(err, errlen, ORBIT_EINVAL, "rack_move: no model");
    if (!orbit_name_plain_ok(rack))
        return topo_fail(err, errlen, ORBIT_EINVAL, "rack_move: invalid rack name");
    if (!orbit_name_plain_ok(shard))
        return topo_fail(err, errlen, ORBIT_EINVAL, "rack_move: invalid shard name");
    const orbit_topology_shard_t *to = topo_shard(t, shard);
    if (!to)
        return topo_fail(err, errlen, ORBIT_ENOTFOUND, "shard: %s missing", shard);
    if (to->tier != 1)
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard: %s tier=%u, want 1", shard, to->tier);
    int rc = topo_insert_rack(t, rack, shard);
    return rc ? topo_fail(err, errlen, rc, "rack_move: out of memory") : ORBIT_OK;
}

int orbit_topology_apply(orbit_topology_t *t, const orbit_topology_change_t *c, char *err,
                         size_t errlen)
{
    if (!c)
        return topo_fail(err, errlen, ORBIT_EINVAL, "topology: no change set");
    switch (c->op) {
    case ORBIT_TOPOLOGY_JOIN:
        return orbit_topology_add_shard(t, c->shard, c->tier, c->parent, c->endpoint, err, errlen);
    case ORBIT_TOPOLOGY_LEAVE: return orbit_topology_remove_shard(t, c->shard, err, errlen);
    case ORBIT_TOPOLOGY_MOVE: return orbit_topology_move_rack(t, c->rack, c->shard, err, errlen);
    default: return topo_fail(err, errlen, ORBIT_EINVAL, "topology: no change set");
    }
}

int orbit_topology_change_from_pb(const Orbit__Ledger__TopologyChange *pb,
                                  orbit_topology_change_t *c)
{
    if (!pb || !c)
        return ORBIT_EINVAL;
    orbit_topology_change_t o;
    memset(&o, 0, sizeof o);
    switch (pb->change_case) {
    case ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_JOIN:
        if (!pb->join)
            return ORBIT_EINVAL;
        o.op = ORBIT_TOPOLOGY_JOIN;
        o.shard = pb->join->shard;
        o.tier = pb->join->tier;
        o.parent = pb->join->parent;
        o.endpoint = pb->join->endpoint;
        break;
    case ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_LEAVE:
        if (!pb->leave)
            return ORBIT_EINVAL;
        o.op = ORBIT_TOPOLOGY_LEAVE;
        o.shard = pb->leave->shard;
        break;
    case ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_MOVE:
        if (!pb->move)
            return ORBIT_EINVAL;
        o.op = ORBIT_TOPOLOGY_MOVE;
        o.rack = pb->move->rack;
        o.shard = pb->move->shard;
        break;
    default: return ORBIT_EINVAL;
    }
    *c = o;
    return ORBIT_OK;
}

/* Ids of every tier-1 shard other than `except` (may be NULL), borrowed;
 * *n of them in a malloc'd array (NULL when *n is 0). */
static int topo_tier1(const orbit_topology_t *t, const char *except, const char ***ids, size_t *n)
{
    size_t cap = zhashx_size(t->shards), k = 0;
    const char **a = cap ? malloc(cap * sizeof *a) : NULL;
    if (cap && !a)
        return ORBIT_ENOMEM;
    for (orbit_topology_shard_t *s = zhashx_first(t->shards); s; s = zhashx_next(t->shards))
        if (s->tier == 1 && (!except || strcmp(s->id, except)))
            a[k++] = s->id;
    *ids = a;
    *n = k;
    return ORBIT_OK;
}

int orbit_topology_drain(orbit_topology_t *t, const char *id, char *err, size_t errlen)
{
    if (!t)
        return topo_fail(err, errlen, ORBIT_EINVAL, "drain: no model");
    if (!orbit_name_plain_ok(id))
        return topo_fail(err, errlen, ORBIT_EINVAL, "drain: invalid shard name");
    if (!topo_shard(t, id))
        return topo_fail(err, errlen, ORBIT_ENOTFOUND, "no such shard %s", id);
    const char **others = NULL;
    size_t nothers = 0;
    zlistx_t *racks = NULL;
    int rc = orbit_topology_racks_of(t, id, &racks);
    if (!rc)
        rc = topo_tier1(t, id, &others, &nothers);
    if (rc) {
        topo_fail(err, errlen, rc, "drain: out of memory");
        goto out;
    }
    if (zlistx_size(racks) && !nothers) {
        rc = topo_fail(err, errlen, ORBIT_EINVAL,
                       "shard_busy: %s racks=%zu and no other tier-1 shard to drain them to", id,
                       zlistx_size(racks));
        goto out;
    }
    /* Every rack already exists, so the moves below only rewrite owners and
     * cannot fail: the drain is all or nothing. */
    for (const char *r = zlistx_first(racks); r; r = zlistx_next(racks)) {
        size_t w = 0;
        orbit_topology_hrw_pick(r, others, nothers, &w);
        topo_rack_t *e = zhashx_lookup(t->racks, r);
        snprintf(e->owner, sizeof e->owner, "%s", others[w]);
    }
out:
    zlistx_destroy(&racks);
    free(others);
    return rc;
}

/* ------------------------------------------------------------ loading */

static int topo_shard_fields_ok(const orbit_topology_shard_t *s, char *err, size_t errlen)
{
    if (!s || !orbit_name_plain_ok(s->id))
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard: invalid shard name");
    if (s->tier < 1 || s->tier > ORBIT_TOPOLOGY_TIER_MAX)
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard: %s tier %u out of range 1..%d", s->id,
                         s->tier, ORBIT_TOPOLOGY_TIER_MAX);
    if (s->parent[0] && !orbit_name_plain_ok(s->parent))
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard: %s invalid parent name", s->id);
    if (s->parent[0] && !strcmp(s->parent, s->id))
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard: %s cannot be its own parent", s->id);
    if (s->endpoint[0] && !orbit_text_ok(s->endpoint, ORBIT_TOPOLOGY_ENDPOINT_MAX))
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard: %s invalid endpoint", s->id);
    return ORBIT_OK;
}

int orbit_topology_put_shard(orbit_topology_t *t, const orbit_topology_shard_t *s, char *err,
                             size_t errlen)
{
    if (!t)
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard: no model");
    /* The fixed arrays may arrive unterminated from a careless caller. */
    if (s && (!memchr(s->id, 0, sizeof s->id) || !memchr(s->parent, 0, sizeof s->parent) ||
              !memchr(s->endpoint, 0, sizeof s->endpoint)))
        return topo_fail(err, errlen, ORBIT_EINVAL, "shard: unterminated field");
    int rc = topo_shard_fields_ok(s, err, errlen);
    if (!rc && (rc = topo_insert_shard(t, s)))
        topo_fail(err, errlen, rc, "shard: out of memory");
    return rc;
}

int orbit_topology_put_rack(orbit_topology_t *t, const char *rack, const char *owner, char *err,
                            size_t errlen)
{
    if (!t)
        return topo_fail(err, errlen, ORBIT_EINVAL, "rack: no model");
    if (!orbit_name_plain_ok(rack))
        return topo_fail(err, errlen, ORBIT_EINVAL, "rack: invalid rack name");
    if (!orbit_name_plain_ok(owner))
        return topo_fail(err, errlen, ORBIT_EINVAL, "rack: %s invalid owner name", rack);
    int rc = topo_insert_rack(t, rack, owner);
    return rc ? topo_fail(err, errlen, rc, "rack: out of memory") : ORBIT_OK;
}

/* "cycle: a -> b -> … -> a" for the loop reached from start, if any. */
static bool topo_find_cycle(const orbit_topology_t *t, const char *start, char *err, size_t errlen)
{
    size_t n = zhashx_size(t->shards);
    const orbit_topology_shard_t *s = topo_shard(t, start);
    /* After n steps a chain that has not ended is inside its loop. */
    for (size_t i = 0; s && i < n; i++)
        s = topo_shard(t, s->parent);
    if (!s)
        return false;
    if (err && errlen) {
        /* Every shard on the loop has its parent, so the walk never ends on
         * NULL; it stops back at first or when err is full. */
        const orbit_topology_shard_t *first = s;
        int w = snprintf(err, errlen, "cycle: %s", first->id);
        size_t off = 0;
        do {
            s = topo_shard(t, s->parent);
            if (w < 0 || (off += (size_t)w) >= errlen)
                break;
            w = snprintf(err + off, errlen - off, " -> %s", s->id);
        } while (s != first);
    }
    return true;
}

int orbit_topology_validate(const orbit_topology_t *t, char *err, size_t errlen)
{
    if (!t)
        return topo_fail(err, errlen, ORBIT_EINVAL, "validate: no model");
    zlistx_t *ids = topo_sorted_keys(t->shards), *racks = topo_sorted_keys(t->racks);
    int rc = ids && racks ? ORBIT_OK : topo_fail(err, errlen, ORBIT_ENOMEM, "out of memory");
    for (const char *id = rc ? NULL : zlistx_first(ids); id; id = zlistx_next(ids))
        if (topo_find_cycle(t, id, err, errlen)) {
            rc = ORBIT_EINVAL;
            break;
        }
    for (const char *id = rc ? NULL : zlistx_first(ids); id && !rc; id = zlistx_next(ids)) {
        const orbit_topology_shard_t *s = topo_shard(t, id);
        if (s->parent[0] && !topo_shard(t, s->parent))
            rc =
                topo_fail(err, errlen, ORBIT_EINVAL, "parent: %s under %s, missing", id, s->parent);
    }
    for (const char *id = rc ? NULL : zlistx_first(ids); id && !rc; id = zlistx_next(ids)) {
        const orbit_topology_shard_t *s = topo_shard(t, id), *p = topo_shard(t, s->parent);
        if (p && p->tier != s->tier + 1)
            rc = topo_fail(err, errlen, ORBIT_EINVAL, "tier: %s tier=%u under %s tier=%u, want %u",
                           id, s->tier, p->id, p->tier, s->tier + 1);
    }
    for (const char *r = rc ? NULL : zlistx_first(racks); r && !rc; r = zlistx_next(racks)) {
        const topo_rack_t *e = zhashx_lookup(t->racks, r);
        const orbit_topology_shard_t *o = topo_shard(t, e->owner);
        if (!o)
            rc = topo_fail(err, errlen, ORBIT_EINVAL, "orphan_rack: %s owner %s missing", r,
                           e->owner);
        else if (o->tier != 1)
            rc = topo_fail(err, errlen, ORBIT_EINVAL, "orphan_rack: %s owner %s tier=%u, want 1", r,
                           e->owner, o->tier);
    }
    zlistx_destroy(&ids);
    zlistx_destroy(&racks);
    return rc;
}

/* ------------------------------------------------------------ reads */

size_t orbit_topology_shard_count(const orbit_topology_t *t)
{
    return t ? zhashx_size(t->shards) : 0;
}

size_t orbit_topology_rack_count(const orbit_topology_t *t)
{
    return t ? zhashx_size(t->racks) : 0;
}

int orbit_topology_get_shard(const orbit_topology_t *t, const char *id, orbit_topology_shard_t *out)
{
    if (!t || !id || !out)
        return ORBIT_EINVAL;
    const orbit_topology_shard_t *s = topo_shard(t, id);
    if (!s)
        return ORBIT_ENOTFOUND;
    *out = *s;
    out->children = topo_count_children(t, id);
    out->racks = topo_count_racks(t, id);
    return ORBIT_OK;
}

int orbit_topology_rack_owner(const orbit_topology_t *t, const char *rack,
                              char owner[ORBIT_TOPOLOGY_NAME_MAX + 1])
{
    if (!t || !rack || !owner)
        return ORBIT_EINVAL;
    const topo_rack_t *r = zhashx_lookup(t->racks, rack);
    if (!r)
        return ORBIT_ENOTFOUND;
    memcpy(owner, r->owner, sizeof r->owner);
    return ORBIT_OK;
}

/* Selection for the shard lists: by parent, or by tier. */
typedef struct {
    const char *parent; /* NULL: select by tier */
    uint32_t tier;      /* 0: any */
} topo_select_t;

static bool topo_selected(const orbit_topology_shard_t *s, const topo_select_t *sel)
{
    if (sel->parent)
        return !strcmp(s->parent, sel->parent);
    return !sel->tier || s->tier == sel->tier;
}

static int topo_shard_list(const orbit_topology_t *t, const topo_select_t *sel, zlistx_t **out)
{
    if (!out)
        return ORBIT_EINVAL;
    *out = NULL;
    if (!t)
        return ORBIT_EINVAL;
    zlistx_t *l = topo_string_list();
    int rc = l ? ORBIT_OK : ORBIT_ENOMEM;
    for (orbit_topology_shard_t *s = rc ? NULL : zhashx_first(t->shards); s && !rc;
         s = zhashx_next(t->shards))
        if (topo_selected(s, sel) && !zlistx_add_end(l, s->id))
            rc = ORBIT_ENOMEM;
    if (rc)
        zlistx_destroy(&l);
    else
        zlistx_sort(l);
    *out = l;
    return rc;
}

int orbit_topology_children(const orbit_topology_t *t, const char *parent, zlistx_t **out)
{
    topo_select_t sel = {parent ? parent : "", 0};
    return topo_shard_list(t, &sel, out);
}

int orbit_topology_shards_of_tier(const orbit_topology_t *t, uint32_t tier, zlistx_t **out)
{
    topo_select_t sel = {NULL, tier};
    return topo_shard_list(t, &sel, out);
}

int orbit_topology_racks_of(const orbit_topology_t *t, const char *shard, zlistx_t **out)
{
    if (!out)
        return ORBIT_EINVAL;
    *out = NULL;
    if (!t)
        return ORBIT_EINVAL;
    zlistx_t *l = topo_string_list();
    int rc = l ? ORBIT_OK : ORBIT_ENOMEM;
    for (topo_rack_t *r = rc ? NULL : zhashx_first(t->racks); r && !rc; r = zhashx_next(t->racks))
        if ((!shard || !strcmp(r->owner, shard)) && !zlistx_add_end(l, r->rack))
            rc = ORBIT_ENOMEM;
    if (rc)
        zlistx_destroy(&l);
    else
        zlistx_sort(l);
    *out = l;
    return rc;
}

int orbit_topology_candidates(const orbit_topology_t *t, const char *rack, zlistx_t **out)
{
    if (!out)
        return ORBIT_EINVAL;
    *out = NULL;
    if (!t || !orbit_name_plain_ok(rack))
        return ORBIT_EINVAL;
    const topo_rack_t *r = zhashx_lookup(t->racks, rack);
    const orbit_topology_shard_t *owner = r ? topo_shard(t, r->owner) : NULL;
    if (owner && owner->tier != 1)
        owner = NULL;
    const char **ids = NULL;
    size_t n = 0;
    zlistx_t *l = topo_string_list();
    int rc = l ? topo_tier1(t, owner ? owner->id : NULL, &ids, &n) : ORBIT_ENOMEM;
    if (!rc)
        rc = orbit_topology_hrw_rank(rack, ids, n);
    if (!rc && owner && !zlistx_add_end(l, (void *)owner->id))
        rc = ORBIT_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++)
        if (!zlistx_add_end(l, (void *)ids[i]))
            rc = ORBIT_ENOMEM;
    free(ids);
    if (rc)
        zlistx_destroy(&l);
    *out = l;
    return rc;
}

int orbit_topology_natural_owner(const orbit_topology_t *t, const char *rack,
                                 char owner[ORBIT_TOPOLOGY_NAME_MAX + 1])
{
    if (!t || !rack || !owner)
        return ORBIT_EINVAL;
    const char **ids = NULL;
    size_t n = 0, w = 0;
    int rc = topo_tier1(t, NULL, &ids, &n);
    if (!rc)
        rc = orbit_topology_hrw_pick(rack, ids, n, &w);
    if (!rc)
        snprintf(owner, ORBIT_TOPOLOGY_NAME_MAX + 1, "%s", ids[w]);
    free(ids);
    return rc;
}
