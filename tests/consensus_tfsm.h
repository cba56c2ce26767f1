/* consensus_tfsm: the deterministic test state machine shared by the
 * consensus tests: a running hash of (index, entry bytes) plus a count and
 * the applied index, and observations (the index each sequence number was
 * applied at, re-applications) that are not part of the state. Entries
 * start with their sequence number (8 bytes, little endian). */
#ifndef ORBIT_TESTS_CONSENSUS_TFSM_H
#define ORBIT_TESTS_CONSENSUS_TFSM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus.h"
#include "orbit_err.h"
#include "orbit_hash.h"

#define MAX_SEQ 2048

typedef struct {
    /* The state (what a snapshot carries). */
    uint64_t hash, count, applied;
    /* Observations, not state. */
    uint64_t index_of[MAX_SEQ]; /* index each sequence number applied at */
    uint64_t restores;
    uint64_t reapplied; /* apply called with index <= applied: must stay 0 */
    int fail_apply;     /* next apply returns this */
    /* Deferring (tfsm_defer_ops with defer set): apply only keeps
     * (index, digest), tfsm_flush folds them in, as a follower's ledger. */
    int defer;
    size_t nheld;
    uint64_t held_index[64], held_fnv[64];
    int fail_flush; /* next flush returns this */
    uint64_t flushes;
} tfsm_t;

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static inline uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline int tfsm_apply(void *ctx, uint64_t index, const void *buf, size_t len, void **result)
{
    tfsm_t *s = ctx;
    const uint8_t *p = buf;
    uint64_t seq, *res;

    if (s->fail_apply != 0) {
        int rv = s->fail_apply;
        s->fail_apply = 0;
        return rv;
    }
    if (len < 8)
        return ORBIT_EINVAL;
    if (index <= s->applied)
        s->reapplied++;
    seq = get64(p);
    uint64_t fnv = orbit_fnv1a(ORBIT_FNV_OFFSET, p, len);
    if (s->defer) {
        if (s->nheld == sizeof s->held_index / sizeof s->held_index[0]) {
            /* a test holding more would apply out of order */
            fprintf(stderr, "consensus_tfsm: more than 64 entries deferred\n");
            abort();
        }
        s->held_index[s->nheld] = index;
        s->held_fnv[s->nheld++] = fnv;
        if (seq < MAX_SEQ)
            s->index_of[seq] = index;
        return 0; /* no result: nobody is answered */
    }
    s->hash = mix(mix(s->hash, index), fnv);
    s->count++;
    s->applied = index;
    if (seq < MAX_SEQ)
        s->index_of[seq] = index;
    /* An owned result: the adapter must route it to result_free. */
    res = malloc(sizeof *res);
    if (res != NULL)
        *res = index;
    *result = res;
    return 0;
}

static inline int tfsm_snapshot(void *ctx, uint64_t index, void **buf, size_t *len)
{
    tfsm_t *s = ctx;
    uint8_t *b = malloc(24);
    (void)index;
    if (b == NULL)
        return ORBIT_ENOMEM;
    put64(b, s->hash);
    put64(b + 8, s->count);
    put64(b + 16, s->applied);
    *buf = b;
    *len = 24;
    return 0;
}

static inline int tfsm_restore(void *ctx, uint64_t index, const void *buf, size_t len)
{
    tfsm_t *s = ctx;
    const uint8_t *b = buf;
    (void)index;
    if (len != 24)
        return ORBIT_EDECODE;
    s->hash = get64(b);
    s->count = get64(b + 8);
    s->applied = get64(b + 16);
    s->restores++;
    return 0;
}

static inline uint64_t tfsm_applied(void *ctx)
{
    return ((tfsm_t *)ctx)->applied;
}

static inline int tfsm_flush(void *ctx)
{
    tfsm_t *s = ctx;
    if (s->fail_flush != 0) {
        int rv = s->fail_flush;
        s->fail_flush = 0;
        return rv;
    }
    for (size_t i = 0; i < s->nheld; i++) {
        s->hash = mix(mix(s->hash, s->held_index[i]), s->held_fnv[i]);
        s->count++;
        s->applied = s->held_index[i];
    }
    s->nheld = 0;
    s->flushes++;
    return 0;
}

static inline int tfsm_snapshot_async(void *ctx, void **buf, size_t *len)
{
    return tfsm_snapshot(ctx, 0, buf, len);
}

static inline void tfsm_result_free(void *ctx, void *result)
{
    (void)ctx;
    free(result);
}

static const orbit_consensus_fsm_t tfsm_ops __attribute__((unused)) = {
    .apply = tfsm_apply,
    .snapshot = tfsm_snapshot,
    .restore = tfsm_restore,
    .applied_index = tfsm_applied,
    .result_free = tfsm_result_free,
};

/* The same with flush, deferring when tfsm_t.defer is set, and a snapshot
 * copied "on the worker" (fsm version 3), as the ledger's. */
static const orbit_consensus_fsm_t tfsm_defer_ops __attribute__((unused)) = {
    .apply = tfsm_apply,
    .snapshot = tfsm_snapshot,
    .snapshot_async = tfsm_snapshot_async,
    .restore = tfsm_restore,
    .applied_index = tfsm_applied,
    .result_free = tfsm_result_free,
    .flush = tfsm_flush,
};

#define assert_same_state(a, b)                                                                    \
    do {                                                                                           \
        assert_int_equal((a)->hash, (b)->hash);                                                    \
        assert_int_equal((a)->count, (b)->count);                                                  \
        assert_int_equal((a)->applied, (b)->applied);                                              \
    } while (0)

#endif
