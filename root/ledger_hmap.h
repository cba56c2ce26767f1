/* ledger_hmap: a multimap from 64-bit hashes to non-zero 64-bit values, in
 * memory, for the ledger's derived indexes:
 * - dedup pairs → the sequence numbers of their records (storage format 7
 *   keys dedup records by sequence: appended, pruned from the front, so
 *   neither a put nor a prune touches a random page; formats 3-6 kept the
 *   pairs as keys of their own B-tree plus an age index, and every proposal
 *   inserted and deleted at random places of two large trees, ~25 % of
 *   apply's CPU);
 * - node names → their capsules (ledger_nodes.c; czmq's zhashx cost a third
 *   of that index's time).
 * Several values may share a hash: the caller confirms a candidate itself
 * (reads the record, compares the name). Each map has a random seed that
 * callers mix into their hashes, so a client cannot aim keys at one probe
 * run; a derived index need not hash alike on every replica.
 *
 * Open addressing with linear probing, at most half full, backward-shift
 * deletion; 16 bytes a slot.
 *
 * Thread rules: one thread at a time (the ledger's). */
#ifndef ORBIT_LEDGER_HMAP_H
#define ORBIT_LEDGER_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct orbit_ledger_hmap orbit_ledger_hmap_t;

/* An empty map; NULL on ENOMEM. */
orbit_ledger_hmap_t *orbit_ledger_hmap_new(void);
void orbit_ledger_hmap_destroy(orbit_ledger_hmap_t **pm);
/* From now on, slot arrays of 2 MiB and more are mapped as huge pages
 * (orbit_huge_calloc): for a map read at random and grown off any
 * latency-critical loop (the scheduling view's tables). The ledger's own
 * indexes keep the heap: a huge page is zeroed whole at its first touch,
 * and on the leader's loop that showed in the 256-proposer p99. Call it
 * before the map grows past 2 MiB (later, it does nothing). */
void orbit_ledger_hmap_set_huge(orbit_ledger_hmap_t *m);

/* This map's seed, to start the caller's hashes from. */
uint64_t orbit_ledger_hmap_seed(const orbit_ledger_hmap_t *m);
/* FNV-1a of s (NULL as empty) started from this map's seed. */
uint64_t orbit_ledger_hmap_hash_str(const orbit_ledger_hmap_t *m, const char *s);

/* Record value v (non-zero) under hash h. Errors: ORBIT_EINVAL (v 0),
 * ORBIT_ENOMEM (nothing recorded). */
int orbit_ledger_hmap_add(orbit_ledger_hmap_t *m, uint64_t h, uint64_t v);
/* Forget v under h (nothing if it is not there). */
void orbit_ledger_hmap_remove(orbit_ledger_hmap_t *m, uint64_t h, uint64_t v);

/* Call fn(ctx, v) for each v recorded under h until it returns non-zero;
 * returns that value, or 0. */
int orbit_ledger_hmap_find(const orbit_ledger_hmap_t *m, uint64_t h,
                           int (*fn)(void *ctx, uint64_t v), void *ctx);
/* The value recorded under h (orbit_ledger_hmap_hash_str(m, name)) whose
 * own name (name_of(ctx, v)) is name, or 0: the lookup of an index keyed by
 * a name its values hold. */
uint64_t orbit_ledger_hmap_find_name(const orbit_ledger_hmap_t *m, uint64_t h, const char *name,
                                     const char *(*name_of)(void *ctx, uint64_t v), void *ctx);

/* Call fn(ctx, v) for every value, in no order. */
void orbit_ledger_hmap_each(const orbit_ledger_hmap_t *m, void (*fn)(void *ctx, uint64_t v),
                            void *ctx);

/* Values in the map. */
size_t orbit_ledger_hmap_size(const orbit_ledger_hmap_t *m);

#endif
