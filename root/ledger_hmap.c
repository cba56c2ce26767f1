/* ledger_hmap: hashes → values in memory, for the ledger's derived indexes
 * (see ledger_hmap.h). */
#include "ledger_hmap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "orbit_err.h"
#include "orbit_hash.h"
#include "orbit_slab.h"

#define MIN_CAP 1024 /* slots, a power of two */

/* A slot: v 0 marks it empty. */
typedef struct {
    uint64_t h, v;
} slot_t;

struct orbit_ledger_hmap {
    slot_t *slots;
    size_t cap, n; /* cap a power of two, n <= cap / 2 */
    uint64_t seed;
    bool huge; /* slot arrays of 2 MiB and more in huge pages */
};

static slot_t *slots_new(const orbit_ledger_hmap_t *m, size_t cap)
{
    return m->huge ? orbit_huge_calloc(cap, sizeof(slot_t)) : calloc(cap, sizeof(slot_t));
}

static void slots_free(const orbit_ledger_hmap_t *m, slot_t *slots, size_t cap)
{
    if (m->huge)
        orbit_huge_free(slots, cap, sizeof(slot_t));
    else
        free(slots);
}

orbit_ledger_hmap_t *orbit_ledger_hmap_new(void)
{
    orbit_ledger_hmap_t *m = calloc(1, sizeof *m);
    if (m && !(m->slots = slots_new(m, MIN_CAP))) {
        free(m);
        return NULL;
    }
    if (m) {
        m->cap = MIN_CAP;
        if (getrandom(&m->seed, sizeof m->seed, GRND_NONBLOCK) != (ssize_t)sizeof m->seed)
            m->seed = (uint64_t)(uintptr_t)m ^ (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
    }
    return m;
}

void orbit_ledger_hmap_destroy(orbit_ledger_hmap_t **pm)
{
    if (!pm || !*pm)
        return;
    slots_free(*pm, (*pm)->slots, (*pm)->cap);
    free(*pm);
    *pm = NULL;
}

void orbit_ledger_hmap_set_huge(orbit_ledger_hmap_t *m)
{
    if (m->huge || m->cap * sizeof(slot_t) >= ORBIT_SLAB_BLOCK)
        return; /* only while the slots are still from calloc */
    m->huge = true;
}

uint64_t orbit_ledger_hmap_seed(const orbit_ledger_hmap_t *m)
{
    return m->seed;
}

uint64_t orbit_ledger_hmap_hash_str(const orbit_ledger_hmap_t *m, const char *s)
{
    return orbit_fnv1a_str(ORBIT_FNV_OFFSET ^ m->seed, s);
}

static size_t home(size_t cap, uint64_t h)
{
    return (size_t)(h * 0x9e3779b97f4a7c15ull >> 17) & (cap - 1);
}

static void put_slot(slot_t *slots, size_t cap, uint64_t h, uint64_t v)
{
    size_t at = home(cap, h);
    while (slots[at].v)
        at = (at + 1) & (cap - 1);
    slots[at] = (slot_t){h, v};
}

int orbit_ledger_hmap_add(orbit_ledger_hmap_t *m, uint64_t h, uint64_t v)
{
    if (!v)
        return ORBIT_EINVAL;
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap * 2;
        slot_t *slots = slots_new(m, cap);
        if (!slots)
            return ORBIT_ENOMEM;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].v)
                put_slot(slots, cap, m->slots[i].h, m->slots[i].v);
        slots_free(m, m->slots, m->cap);
        m->slots = slots;
        m->cap = cap;
    }
    put_slot(m->slots, m->cap, h, v);
    m->n++;
    return ORBIT_OK;
}

void orbit_ledger_hmap_remove(orbit_ledger_hmap_t *m, uint64_t h, uint64_t v)
{
    size_t mask = m->cap - 1, at = home(m->cap, h);
    while (m->slots[at].v && !(m->slots[at].h == h && m->slots[at].v == v))
        at = (at + 1) & mask;
    if (!m->slots[at].v)
        return;
    /* Backward-shift deletion: pull later slots of the run into the hole
     * when their home is not between the hole and them. */
    size_t hole = at;
    for (size_t j = (hole + 1) & mask; m->slots[j].v; j = (j + 1) & mask) {
        size_t k = home(m->cap, m->slots[j].h);
        bool stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);
        if (!stays) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole] = (slot_t){0, 0};
    m->n--;
}

int orbit_ledger_hmap_find(const orbit_ledger_hmap_t *m, uint64_t h,
                           int (*fn)(void *ctx, uint64_t v), void *ctx)
{
    size_t mask = m->cap - 1;
    for (size_t at = home(m->cap, h); m->slots[at].v; at = (at + 1) & mask)
        if (m->slots[at].h == h) {
            int rc = fn(ctx, m->slots[at].v);
            if (rc)
                return rc;
        }
    return 0;
}

uint64_t orbit_ledger_hmap_find_name(const orbit_ledger_hmap_t *m, uint64_t h, const char *name,
                                     const char *(*name_of)(void *ctx, uint64_t v), void *ctx)
{
    size_t mask = m->cap - 1;
    for (size_t at = home(m->cap, h); m->slots[at].v; at = (at + 1) & mask)
        if (m->slots[at].h == h && !strcmp(name_of(ctx, m->slots[at].v), name))
            return m->slots[at].v; /* not another name with the same hash */
    return 0;
}

void orbit_ledger_hmap_each(const orbit_ledger_hmap_t *m, void (*fn)(void *ctx, uint64_t v),
                            void *ctx)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].v)
            fn(ctx, m->slots[i].v);
}

size_t orbit_ledger_hmap_size(const orbit_ledger_hmap_t *m)
{
    return m->n;
}
