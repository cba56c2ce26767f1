/* ledger_nodes: the node → capsules index in memory (see ledger_nodes.h). */
#include "ledger_nodes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_hmap.h"
#include "orbit_err.h"
#include "orbit_hash.h"

typedef struct {
    bool add;
    const char *node, *capsule; /* the caller's, valid until commit or discard */
} staged_t;

/* One capsule: its name (owned) and the name's hash. */
typedef struct {
    uint64_t hash;
    char *name;
} cap_t;

/* A node's capsules in (hash, name) order: a lookup compares 8-byte hashes,
 * not names that share long prefixes in separate allocations (strcmp through
 * "mission.module." was most of the index's cost); name order is made when a
 * node's list is asked for, which is rare. */
typedef struct {
    char *node; /* owned */
    cap_t *v;
    size_t n, cap;
} caps_t;

struct orbit_ledger_nodes {
    orbit_ledger_hmap_t *nodes; /* hash of a node's name → its caps_t */
    staged_t *staged;           /* in order */
    size_t nstaged, capstaged;
    size_t capsules;
};

orbit_ledger_nodes_t *orbit_ledger_nodes_new(void)
{
    orbit_ledger_nodes_t *n = calloc(1, sizeof *n);
    if (n && !(n->nodes = orbit_ledger_hmap_new())) {
        free(n);
        return NULL;
    }
    return n;
}

static void caps_free(caps_t *c)
{
    for (size_t j = 0; j < c->n; j++)
        free(c->v[j].name);
    free(c->v);
    free(c->node);
    free(c);
}

static void caps_free_v(void *ctx, uint64_t v)
{
    (void)ctx;
    caps_free((caps_t *)(uintptr_t)v);
}

void orbit_ledger_nodes_destroy(orbit_ledger_nodes_t **pn)
{
    if (!pn || !*pn)
        return;
    orbit_ledger_nodes_t *n = *pn;
    if (n->nodes)
        orbit_ledger_hmap_each(n->nodes, caps_free_v, NULL);
    orbit_ledger_hmap_destroy(&n->nodes);
    free(n->staged);
    free(n);
    *pn = NULL;
}

/* A capsule's name, for its place in its node's array. */
static uint64_t name_hash(const char *s)
{
    return orbit_fnv1a_str(ORBIT_FNV_OFFSET, s);
}

/* A node's name, seeded by the map (names come from clients). */
static uint64_t node_hash(const orbit_ledger_nodes_t *n, const char *node)
{
    return orbit_ledger_hmap_hash_str(n->nodes, node);
}

static const char *node_name(void *ctx, uint64_t v)
{
    (void)ctx;
    return ((const caps_t *)(uintptr_t)v)->node;
}

/* node's capsules, or NULL. */
static caps_t *node_find(const orbit_ledger_nodes_t *n, uint64_t h, const char *node)
{
    return (caps_t *)(uintptr_t)orbit_ledger_hmap_find_name(n->nodes, h, node, node_name, NULL);
}

/* A new, empty entry for node (not in n). NULL on ENOMEM. */
static caps_t *node_add(orbit_ledger_nodes_t *n, uint64_t h, const char *node)
{
    caps_t *c = calloc(1, sizeof *c);
    if (c && !(c->node = strdup(node))) {
        free(c);
        return NULL;
    }
    if (c && orbit_ledger_hmap_add(n->nodes, h, (uint64_t)(uintptr_t)c) != ORBIT_OK) {
        caps_free(c);
        return NULL;
    }
    return c;
}

static int cap_cmp(uint64_t hash, const char *name, const cap_t *c)
{
    if (hash != c->hash)
        return hash < c->hash ? -1 : 1;
    return strcmp(name, c->name);
}

/* Position of capsule in c (found) or where it would go. */
static size_t caps_find(const caps_t *c, uint64_t hash, const char *capsule, bool *found)
{
    size_t lo = 0, hi = c->n;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = cap_cmp(hash, capsule, &c->v[mid]);
        if (d == 0) {
            *found = true;
            return mid;
        }
        if (d > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int orbit_ledger_nodes_set(orbit_ledger_nodes_t *n, bool add, const char *node, const char *capsule)
{
    uint64_t nh = node_hash(n, node);
    caps_t *c = node_find(n, nh, node);
    uint64_t hash = name_hash(capsule);
    bool found = false;
    size_t at = c ? caps_find(c, hash, capsule, &found) : 0;
    if (!add) {
        if (found) {
            free(c->v[at].name);
            memmove(c->v + at, c->v + at + 1, (c->n - at - 1) * sizeof *c->v);
            c->n--;
            n->capsules--;
            if (c->n == 0) {
                orbit_ledger_hmap_remove(n->nodes, nh, (uint64_t)(uintptr_t)c);
                caps_free(c);
            }
        }
        return ORBIT_OK;
    }
    if (found)
        return ORBIT_OK;
    if (!c && !(c = node_add(n, nh, node)))
        return ORBIT_ENOMEM;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        cap_t *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return ORBIT_ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    char *name = strdup(capsule);
    if (!name)
        return ORBIT_ENOMEM;
    memmove(c->v + at + 1, c->v + at, (c->n - at) * sizeof *c->v);
    c->v[at] = (cap_t){hash, name};
    c->n++;
    n->capsules++;
    return ORBIT_OK;
}

int orbit_ledger_nodes_stage(orbit_ledger_nodes_t *n, bool add, const char *node,
                             const char *capsule)
{
    if (n->nstaged == n->capstaged) {
        size_t cap = n->capstaged ? n->capstaged * 2 : 256;
        staged_t *v = realloc(n->staged, cap * sizeof *v);
        if (!v)
            return ORBIT_ENOMEM;
        n->staged = v;
        n->capstaged = cap;
    }
    n->staged[n->nstaged++] = (staged_t){add, node, capsule};
    return ORBIT_OK;
}

int orbit_ledger_nodes_commit(orbit_ledger_nodes_t *n)
{
    int rc = ORBIT_OK;
    for (size_t i = 0; i < n->nstaged && !rc; i++)
        rc = orbit_ledger_nodes_set(n, n->staged[i].add, n->staged[i].node, n->staged[i].capsule);
    n->nstaged = 0;
    return rc;
}

void orbit_ledger_nodes_discard(orbit_ledger_nodes_t *n)
{
    n->nstaged = 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

zlistx_t *orbit_ledger_nodes_list(orbit_ledger_nodes_t *n, const char *node)
{
    const caps_t *c = node_find(n, node_hash(n, node), node);
    const char **names = c ? malloc(c->n * sizeof *names) : NULL;
    zlistx_t *out = c && !names ? NULL : zlistx_new();
    if (out && c) {
        for (size_t i = 0; i < c->n; i++)
            names[i] = c->v[i].name;
        qsort(names, c->n, sizeof *names, name_cmp);
        for (size_t i = 0; out && i < c->n; i++)
            if (!zlistx_add_end(out, (void *)names[i]))
                zlistx_destroy(&out);
    }
    free(names);
    return out;
}

size_t orbit_ledger_nodes_size(const orbit_ledger_nodes_t *n)
{
    return n->capsules;
}
