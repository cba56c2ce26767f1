/* ledger_dedup: which dedup record holds a (client_id, request_id) pair,
 * kept in memory.
 *
 * The dedup table (storage format 7) is keyed by its records' sequence
 * numbers: appended in order, pruned from the front, so neither a put nor a
 * prune touches a random page. A lookup by pair goes through this index:
 * a hash of the pair → the sequence numbers stored under that hash (the
 * caller reads each record and compares the pair itself: two pairs may
 * share a hash). Derived from the table (built when the ledger first needs
 * it, rebuilt after a failed transaction or a restore), so it is not in
 * the state hash. Formats 3-6 kept the pairs as keys of their own B-tree,
 * plus an age index: every proposal inserted and deleted in two random
 * places of large trees (~25 % of apply's CPU), and pruning in batches
 * stalled the leader for ~20 ms.
 *
 * Open addressing with linear probing, at most half full; 16 bytes a
 * record.
 *
 * Thread rules: the ledger's applying thread. */
#ifndef ORBIT_LEDGER_DEDUP_H
#define ORBIT_LEDGER_DEDUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct orbit_ledger_dedup orbit_ledger_dedup_t;

/* An empty index; NULL on ENOMEM. */
orbit_ledger_dedup_t *orbit_ledger_dedup_new(void);
void orbit_ledger_dedup_destroy(orbit_ledger_dedup_t **pd);

/* The hash a pair is filed under in d (seeded per index, at random: the
 * index is derived and local, so replicas need not agree on it). */
uint64_t orbit_ledger_dedup_hash(const orbit_ledger_dedup_t *d, const char *client_id,
                                 uint64_t request_id);

/* Record seq under hash h. Errors: ORBIT_ENOMEM (the index is then
 * incomplete: the caller drops it and builds it again). */
int orbit_ledger_dedup_add(orbit_ledger_dedup_t *d, uint64_t h, uint64_t seq);
/* Forget seq under h (nothing if it is not there). */
void orbit_ledger_dedup_remove(orbit_ledger_dedup_t *d, uint64_t h, uint64_t seq);

/* Call fn(ctx, seq) for each seq recorded under h until it returns
 * non-zero; returns that value, or 0. */
int orbit_ledger_dedup_find(const orbit_ledger_dedup_t *d, uint64_t h,
                            int (*fn)(void *ctx, uint64_t seq), void *ctx);

/* Records in the index. */
size_t orbit_ledger_dedup_size(const orbit_ledger_dedup_t *d);

#endif
