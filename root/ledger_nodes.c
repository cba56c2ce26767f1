/* ledger_nodes: the node → capsules index in memory (see ledger_nodes.h). */
#include "ledger_nodes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"

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
    cap_t *v;
    size_t n, cap;
} caps_t;

struct orbit_ledger_nodes {
    zhashx_t *nodes;  /* node -> caps_t */
    staged_t *staged; /* in order */
    size_t nstaged, capstaged;
    size_t capsules;
};

static void caps_free(void **p)
{
    caps_t *c = *p;
    if (c) {
        for (size_t i = 0; i < c->n; i++)
            free(c->v[i].name);
        free(c->v);
        free(c);
    }
    *p = NULL;
}

orbit_ledger_nodes_t *orbit_ledger_nodes_new(void)
{
    orbit_ledger_nodes_t *n = calloc(1, sizeof *n);
    if (!n || !(n->nodes = zhashx_new())) {
        orbit_ledger_nodes_destroy(&n);
        return NULL;
    }
    zhashx_set_destructor(n->nodes, caps_free);
    return n;
}

void orbit_ledger_nodes_destroy(orbit_ledger_nodes_t **pn)
{
    if (!pn || !*pn)
        return;
    zhashx_destroy(&(*pn)->nodes);
    free((*pn)->staged);
    free(*pn);
    *pn = NULL;
}

/* FNV-1a, 64 bits. */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
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
    caps_t *c = zhashx_lookup(n->nodes, node);
    uint64_t hash = name_hash(capsule);
    bool found = false;
    size_t at = c ? caps_find(c, hash, capsule, &found) : 0;
    if (!add) {
        if (found) {
            free(c->v[at].name);
            memmove(c->v + at, c->v + at + 1, (c->n - at - 1) * sizeof *c->v);
            c->n--;
            n->capsules--;
            if (c->n == 0)
                zhashx_delete(n->nodes, node);
        }
        return ORBIT_OK;
    }
    if (found)
        return ORBIT_OK;
    if (!c) {
        if (!(c = calloc(1, sizeof *c)))
            return ORBIT_ENOMEM;
        if (zhashx_insert(n->nodes, node, c) != 0) {
            free(c);
            return ORBIT_ENOMEM;
        }
    }
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
    const caps_t *c = zhashx_lookup(n->nodes, node);
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
