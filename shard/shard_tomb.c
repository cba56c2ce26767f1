/* shard_tomb: tombstones of removed rows for incremental reports. */
#include "shard_tomb.h"

#include <czmq.h>
#include <stdlib.h>

#include "orbit_err.h"

struct orbit_tombs {
    zhashx_t *names; /* name (copied) -> generation, stored in the pointer */
    size_t cap;
    uint64_t floor;
};

orbit_tombs_t *orbit_tombs_new(size_t cap)
{
    orbit_tombs_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cap = cap ? cap : 65536;
    t->names = zhashx_new();
    if (!t->names) {
        free(t);
        return NULL;
    }
    return t;
}

void orbit_tombs_destroy(orbit_tombs_t **pt)
{
    if (!pt || !*pt)
        return;
    zhashx_destroy(&(*pt)->names);
    free(*pt);
    *pt = NULL;
}

void orbit_tombs_add(orbit_tombs_t *t, const char *name, uint64_t gen)
{
    void *v = (void *)(uintptr_t)gen;
    if (zhashx_size(t->names) >= t->cap && !zhashx_lookup(t->names, name)) {
        zhashx_purge(t->names);
        t->floor = gen;
        return;
    }
    zhashx_update(t->names, name, v);
    if (zhashx_lookup(t->names, name) != v) { /* out of memory */
        zhashx_purge(t->names);
        t->floor = gen;
    }
}

void orbit_tombs_forget(orbit_tombs_t *t, const char *name)
{
    zhashx_delete(t->names, name);
}

int orbit_tombs_list(orbit_tombs_t *t, uint64_t since_gen, orbit_arena_t *a, char ***names,
                     size_t *count)
{
    *names = NULL;
    *count = 0;
    size_t cap = zhashx_size(t->names), n = 0;
    if (!cap)
        return ORBIT_OK;
    char **list = orbit_arena_alloc(a, cap * sizeof *list);
    if (!list)
        return ORBIT_ENOMEM;
    for (void *v = zhashx_first(t->names); v; v = zhashx_next(t->names)) {
        if ((uint64_t)(uintptr_t)v <= since_gen)
            continue;
        list[n] = orbit_arena_strdup(a, zhashx_cursor(t->names));
        if (!list[n])
            return ORBIT_ENOMEM;
        n++;
    }
    *names = list;
    *count = n;
    return ORBIT_OK;
}

void orbit_tombs_prune(orbit_tombs_t *t, uint64_t acked)
{
    zlistx_t *old = NULL;
    for (void *v = zhashx_first(t->names); v; v = zhashx_next(t->names)) {
        if ((uint64_t)(uintptr_t)v > acked)
            continue;
        if (!old && !(old = zlistx_new()))
            return; /* pruning is housekeeping: try again next time */
        zlistx_add_end(old, (void *)zhashx_cursor(t->names));
    }
    for (const char *k = old ? zlistx_first(old) : NULL; k; k = zlistx_next(old))
        zhashx_delete(t->names, k);
    zlistx_destroy(&old);
}

uint64_t orbit_tombs_floor(const orbit_tombs_t *t)
{
    return t->floor;
}

size_t orbit_tombs_count(const orbit_tombs_t *t)
{
    return zhashx_size(t->names);
}
