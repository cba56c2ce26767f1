/* orbit_sched_score: where one capsule goes — node eligibility, the
 * bin-packing score and the sampled pick (power of K choices) over a
 * scheduling view (root/orbit_sched_view.h).
 *
 * Eligible: the node is seen, ALIVE (never SUSPECT, DOWN or UNREACHABLE),
 * its memory pressure is below cfg.max_pressure, its labels satisfy the
 * module's node selector, the caller does not doubt it, and capacity -
 * committed - reserved >= envelope in every dimension the envelope asks for
 * (CPU, memory, healthy GPUs). "reserved" is what the caller has planned on
 * the node and not yet seen in the view (proposals in flight).
 *
 * Score (higher is better): bin-packing — the mean over the dimensions the
 * node has of used-after-placing / capacity, GPUs counted twice, so the
 * fullest node that still fits wins and GPU jobs go to the GPU nodes with
 * the fewest GPUs left; a job that asks for no GPU loses a full point on a
 * node that has GPUs, so CPU jobs avoid GPU nodes while any other node
 * fits. Equal scores: lower memory pressure wins, then the first examined.
 *
 * Pick: up to cfg.sample random nodes of the view's dense order (every
 * node when there are no more than that, in order), drawn with the
 * caller's seeded PRNG; the best eligible one wins. When none of the
 * sample is eligible, one full scan. Several schedulers with different
 * seeds sample different nodes, which keeps their conflicts low.
 *
 * Thread rules: none beyond the view's (pure functions over a borrowed
 * view). */
#ifndef ORBIT_SCHED_SCORE_H
#define ORBIT_SCHED_SCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "orbit_sched_view.h"

#define ORBIT_SCHED_PRESSURE_DEFAULT 4000 /* 40.00 % avg10 mem some */
#define ORBIT_SCHED_SAMPLE_DEFAULT   32

typedef struct {
    uint32_t max_pressure; /* eligible only below this (avg10 x100) */
    uint32_t sample;       /* K of the power of K choices (>= 1) */
} orbit_sched_score_cfg_t;

void orbit_sched_score_cfg_default(orbit_sched_score_cfg_t *c);

/* A small seeded PRNG (xorshift64*), one per scheduler. */
typedef struct {
    uint64_t s;
} orbit_sched_rng_t;

void orbit_sched_rng_seed(orbit_sched_rng_t *r, uint64_t seed);
uint64_t orbit_sched_rng_next(orbit_sched_rng_t *r);
/* Uniform in [0, n) (n > 0). */
uint64_t orbit_sched_rng_below(orbit_sched_rng_t *r, uint64_t n);

/* What the caller knows about a node beyond the view. */
typedef struct {
    orbit_sched_res_t reserved; /* planned on it, not yet in the view */
    bool doubtful;              /* a recent conflict: skip until the view catches up */
} orbit_sched_extra_t;

/* Fill *out for node (out is zeroed before the call); NULL fn: nothing. */
typedef void (*orbit_sched_extra_fn)(void *arg, const orbit_sched_node_t *node,
                                     orbit_sched_extra_t *out);

/* What one capsule needs. */
typedef struct {
    orbit_sched_res_t envelope;
    const char *selector; /* ModuleSpec.node_selector; NULL or "": any node */
} orbit_sched_need_t;

/* Eligibility of n for need, given extra (may be NULL). */
bool orbit_sched_eligible(const orbit_sched_score_cfg_t *c, const orbit_sched_node_t *n,
                          const orbit_sched_extra_t *extra, const orbit_sched_need_t *need);

/* Score of n for envelope env (see top); extra may be NULL. Meaningful only
 * for eligible nodes. */
double orbit_sched_score(const orbit_sched_node_t *n, const orbit_sched_extra_t *extra,
                         const orbit_sched_res_t *env);

typedef struct {
    uint64_t picks, examined, full_scans, unplaceable;
} orbit_sched_pick_stats_t;

/* Choose a node for need (see top). On ORBIT_OK *out is the node (its
 * strings borrowed from the view until it changes) and *index (may be NULL)
 * its position in the dense order. stats may be NULL.
 * Errors: ORBIT_ENOTFOUND (no eligible node at all). */
int orbit_sched_pick(const orbit_sched_view_t *v, const orbit_sched_score_cfg_t *c,
                     orbit_sched_rng_t *rng, const orbit_sched_need_t *need,
                     orbit_sched_extra_fn extra, void *arg, orbit_sched_node_t *out, size_t *index,
                     orbit_sched_pick_stats_t *stats);

#endif
