/* leaf_home: candidate lists, the re-home plan, and the refetch schedule. */
#include "leaf_home.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "orbit_err.h"

int orbit_leaf_candidates_parse(orbit_leaf_candidates_t *c, const char *list)
{
    memset(c, 0, sizeof *c);
    if (!list)
        return ORBIT_EINVAL;
    for (const char *p = list; *p && c->n < ORBIT_LEAF_HOME_CANDIDATES_MAX;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len) {
            char *ep = strndup(p, len);
            if (!ep) {
                orbit_leaf_candidates_close(c);
                return ORBIT_ENOMEM;
            }
            c->ep[c->n++] = ep;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return c->n ? ORBIT_OK : ORBIT_EINVAL;
}

void orbit_leaf_candidates_close(orbit_leaf_candidates_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->ep[i]);
    memset(c, 0, sizeof *c);
}

bool orbit_leaf_candidates_equal(const orbit_leaf_candidates_t *a, const orbit_leaf_candidates_t *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->ep[i], b->ep[i]) != 0)
            return false;
    return true;
}

int orbit_leaf_candidates_find(const orbit_leaf_candidates_t *c, const char *ep)
{
    for (size_t i = 0; ep && i < c->n; i++)
        if (strcmp(c->ep[i], ep) == 0)
            return (int)i;
    return -1;
}

orbit_leaf_home_action_t orbit_leaf_home_plan(const orbit_leaf_candidates_t *old, size_t cur,
                                              const orbit_leaf_candidates_t *fresh, size_t *next)
{
    *next = 0;
    if (!old->n || cur >= old->n || strcmp(old->ep[0], fresh->ep[0]) != 0)
        return ORBIT_LEAF_HOME_SWITCH;
    if (orbit_leaf_candidates_equal(old, fresh)) {
        *next = cur;
        return ORBIT_LEAF_HOME_KEEP;
    }
    int at = orbit_leaf_candidates_find(fresh, old->ep[cur]);
    if (at < 0)
        return ORBIT_LEAF_HOME_SWITCH; /* the failover shard in use left the list */
    *next = (size_t)at;
    return ORBIT_LEAF_HOME_UPDATE;
}

/* ---------------------------------------------------------------- schedule */

void orbit_leaf_home_init(orbit_leaf_home_t *h, uint32_t interval_ms, uint64_t seed)
{
    memset(h, 0, sizeof *h);
    h->interval_ms = interval_ms;
    h->due_ms = INT64_MIN; /* the first read is due at once */
    if (!seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed =
            ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ ((uint64_t)getpid() << 32);
    }
    h->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
}

uint32_t orbit_leaf_home_jitter(orbit_leaf_home_t *h)
{
    /* xorshift64*: plenty for spreading a fleet's reads. */
    uint64_t x = h->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    h->rng = x;
    x *= 2685821657736338717ull;
    return h->interval_ms ? (uint32_t)((x >> 11) % h->interval_ms) : 0;
}

bool orbit_leaf_home_ack_epoch(orbit_leaf_home_t *h, uint64_t epoch, int64_t now_ms)
{
    if (epoch > h->seen_epoch)
        h->seen_epoch = epoch;
    if (!h->have || epoch <= h->held_epoch)
        return false; /* before the first read, one is due every interval anyway */
    int64_t at = now_ms + orbit_leaf_home_jitter(h);
    if (h->due_ms <= at)
        return false; /* a read is already scheduled sooner */
    h->due_ms = at;
    return true;
}

bool orbit_leaf_home_due(orbit_leaf_home_t *h, int64_t now_ms)
{
    if (h->due_ms == INT64_MAX || now_ms < h->due_ms)
        return false;
    h->stats.fetches++;
    if (h->have && h->seen_epoch > h->held_epoch)
        h->stats.refetches++;
    return true;
}

void orbit_leaf_home_failed(orbit_leaf_home_t *h, int64_t now_ms)
{
    h->stats.fetch_failures++;
    h->due_ms = now_ms + h->interval_ms;
}

bool orbit_leaf_home_fetched(orbit_leaf_home_t *h, uint64_t epoch, int64_t now_ms)
{
    bool adopt = !h->have || epoch >= h->held_epoch;
    if (adopt) {
        h->have = true;
        h->held_epoch = epoch;
    }
    if (epoch < h->seen_epoch) {
        /* A replica behind the shard that told us: read again later. */
        h->stats.stale_fetches++;
        h->due_ms = now_ms + h->interval_ms;
    } else {
        h->due_ms = INT64_MAX;
    }
    return adopt;
}

int orbit_leaf_home_fetch_timeout_ms(uint32_t interval_ms)
{
    uint32_t t = interval_ms / 2;
    return t < 100 ? 100 : t > 2000 ? 2000 : (int)t;
}
