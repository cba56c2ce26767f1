/* ledger_dedup: the (client_id, request_id) → dedup record index in memory
 * (see ledger_dedup.h). */
#include "ledger_dedup.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "orbit_err.h"

#define MIN_CAP 1024 /* slots, a power of two */

/* A slot: seq 0 marks it empty (sequence numbers start at 1). */
typedef struct {
    uint64_t h, seq;
} slot_t;

struct orbit_ledger_dedup {
    slot_t *v;
    size_t cap, n; /* cap a power of two, n <= cap / 2 */
    uint64_t seed; /* per index: a client cannot aim pairs at one probe run */
};

orbit_ledger_dedup_t *orbit_ledger_dedup_new(void)
{
    orbit_ledger_dedup_t *d = calloc(1, sizeof *d);
    if (d && !(d->v = calloc(MIN_CAP, sizeof *d->v))) {
        free(d);
        return NULL;
    }
    if (d) {
        d->cap = MIN_CAP;
        if (getrandom(&d->seed, sizeof d->seed, GRND_NONBLOCK) != (ssize_t)sizeof d->seed)
            d->seed = (uint64_t)(uintptr_t)d ^ (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
    }
    return d;
}

void orbit_ledger_dedup_destroy(orbit_ledger_dedup_t **pd)
{
    if (!pd || !*pd)
        return;
    free((*pd)->v);
    free(*pd);
    *pd = NULL;
}

uint64_t orbit_ledger_dedup_hash(const orbit_ledger_dedup_t *d, const char *client_id,
                                 uint64_t request_id)
{
    uint64_t h = 14695981039346656037ull ^ d->seed; /* FNV-1a, seeded */
    for (const char *s = client_id; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    for (int i = 0; i < 8; i++)
        h = (h ^ (uint8_t)(request_id >> (8 * i))) * 1099511628211ull;
    return h ^ (h >> 29);
}

static size_t home(const orbit_ledger_dedup_t *d, uint64_t h)
{
    return (size_t)(h * 0x9e3779b97f4a7c15ull >> 17) & (d->cap - 1);
}

static void put_slot(slot_t *v, size_t cap, size_t at, uint64_t h, uint64_t seq)
{
    while (v[at].seq)
        at = (at + 1) & (cap - 1);
    v[at] = (slot_t){h, seq};
}

static int grow(orbit_ledger_dedup_t *d)
{
    size_t cap = d->cap * 2;
    slot_t *v = calloc(cap, sizeof *v);
    if (!v)
        return ORBIT_ENOMEM;
    orbit_ledger_dedup_t n = {v, cap, d->n, d->seed};
    for (size_t i = 0; i < d->cap; i++)
        if (d->v[i].seq)
            put_slot(v, cap, home(&n, d->v[i].h), d->v[i].h, d->v[i].seq);
    free(d->v);
    d->v = v;
    d->cap = cap;
    return ORBIT_OK;
}

int orbit_ledger_dedup_add(orbit_ledger_dedup_t *d, uint64_t h, uint64_t seq)
{
    if (!seq)
        return ORBIT_EINVAL;
    if ((d->n + 1) * 2 > d->cap && grow(d) != ORBIT_OK)
        return ORBIT_ENOMEM;
    put_slot(d->v, d->cap, home(d, h), h, seq);
    d->n++;
    return ORBIT_OK;
}

void orbit_ledger_dedup_remove(orbit_ledger_dedup_t *d, uint64_t h, uint64_t seq)
{
    size_t mask = d->cap - 1, at = home(d, h);
    while (d->v[at].seq && !(d->v[at].h == h && d->v[at].seq == seq))
        at = (at + 1) & mask;
    if (!d->v[at].seq)
        return;
    /* Backward-shift deletion: pull later slots of the run into the hole
     * when their home is not between the hole and them. */
    size_t hole = at;
    for (size_t j = (hole + 1) & mask; d->v[j].seq; j = (j + 1) & mask) {
        size_t k = home(d, d->v[j].h);
        bool stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);
        if (!stays) {
            d->v[hole] = d->v[j];
            hole = j;
        }
    }
    d->v[hole] = (slot_t){0, 0};
    d->n--;
}

int orbit_ledger_dedup_find(const orbit_ledger_dedup_t *d, uint64_t h,
                            int (*fn)(void *ctx, uint64_t seq), void *ctx)
{
    size_t mask = d->cap - 1;
    for (size_t at = home(d, h); d->v[at].seq; at = (at + 1) & mask)
        if (d->v[at].h == h) {
            int rc = fn(ctx, d->v[at].seq);
            if (rc)
                return rc;
        }
    return 0;
}

size_t orbit_ledger_dedup_size(const orbit_ledger_dedup_t *d)
{
    return d->n;
}
