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
    char *node; /* owned */
    cap_t *v;
    size_t n, cap;
} caps_t;

/* The nodes: open addressing with linear probing, at most half full, the
 * name's hash in the slot (czmq's zhashx cost a third of the index's time
 * in a profile). A node keeps its slot once it held a capsule: nodes are
 * the fleet, a bounded set. */
typedef struct {
    uint64_t h;
    caps_t *c; /* NULL: empty slot */
} slot_t;

struct orbit_ledger_nodes {
    slot_t *slots;
    size_t nslots, nnodes;
    staged_t *staged; /* in order */
    size_t nstaged, capstaged;
    size_t capsules;
};

#define MIN_SLOTS 1024

orbit_ledger_nodes_t *orbit_ledger_nodes_new(void)
{
    orbit_ledger_nodes_t *n = calloc(1, sizeof *n);
    if (!n || !(n->slots = calloc(MIN_SLOTS, sizeof *n->slots))) {
        free(n);
        return NULL;
    }
    n->nslots = MIN_SLOTS;
    return n;
}

void orbit_ledger_nodes_destroy(orbit_ledger_nodes_t **pn)
{
    if (!pn || !*pn)
        return;
    orbit_ledger_nodes_t *n = *pn;
    for (size_t i = 0; i < n->nslots; i++) {
        caps_t *c = n->slots[i].c;
        if (!c)
            continue;
        for (size_t j = 0; j < c->n; j++)
            free(c->v[j].name);
        free(c->v);
        free(c->node);
        free(c);
    }
    free(n->slots);
    free(n->staged);
    free(n);
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

static size_t slot_of(const orbit_ledger_nodes_t *n, uint64_t h)
{
    return (size_t)(h * 0x9e3779b97f4a7c15ull >> 17) & (n->nslots - 1);
}

/* node's capsules, or NULL. */
static caps_t *node_find(const orbit_ledger_nodes_t *n, uint64_t h, const char *node)
{
    for (size_t at = slot_of(n, h); n->slots[at].c; at = (at + 1) & (n->nslots - 1))
        if (n->slots[at].h == h && !strcmp(n->slots[at].c->node, node))
            return n->slots[at].c;
    return NULL;
}

static void slot_put(slot_t *slots, size_t nslots, size_t at, uint64_t h, caps_t *c)
{
    while (slots[at].c)
        at = (at + 1) & (nslots - 1);
    slots[at] = (slot_t){h, c};
}

/* A new, empty entry for node (not in n). NULL on ENOMEM. */
static caps_t *node_add(orbit_ledger_nodes_t *n, uint64_t h, const char *node)
{
    if ((n->nnodes + 1) * 2 > n->nslots) {
        size_t nslots = n->nslots * 2;
        slot_t *slots = calloc(nslots, sizeof *slots);
        if (!slots)
            return NULL;
        orbit_ledger_nodes_t grown = {.slots = slots, .nslots = nslots};
        for (size_t i = 0; i < n->nslots; i++)
            if (n->slots[i].c)
                slot_put(slots, nslots, slot_of(&grown, n->slots[i].h), n->slots[i].h,
                         n->slots[i].c);
        free(n->slots);
        n->slots = slots;
        n->nslots = nslots;
    }
    caps_t *c = calloc(1, sizeof *c);
    if (c && !(c->node = strdup(node))) {
        free(c);
        c = NULL;
    }
    if (!c)
        return NULL;
    slot_put(n->slots, n->nslots, slot_of(n, h), h, c);
    n->nnodes++;
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
    uint64_t nh = name_hash(node);
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
            if (c->n == 0) { /* the node keeps its slot, not the array */
                free(c->v);
                c->v = NULL;
                c->cap = 0;
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
    const caps_t *c = node_find(n, name_hash(node), node);
    if (c && !c->n)
        c = NULL;
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
