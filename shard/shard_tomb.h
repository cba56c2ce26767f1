/* shard_tomb: tombstones of rows a shard removed (a node forgotten, a row a
 * child dropped), so that incremental reports can name them in
 * ShardReport.removed until every upstream has acknowledged a report past
 * the removal. Generations are the owning table's (shard_nodes,
 * shard_subtree): a tombstone made at generation g is news to an upstream
 * whose acknowledged generation is below g.
 *
 * Bounded: past cap tombstones they are all dropped and the floor rises to
 * the newest one's generation; an upstream acknowledged below the floor
 * must get a full report instead (its rows are then the whole set).
 *
 * Thread rules: one owner thread, no I/O. */
#ifndef ORBIT_SHARD_TOMB_H
#define ORBIT_SHARD_TOMB_H

#include <stddef.h>
#include <stdint.h>

#include "orbit_wire.h"

typedef struct orbit_tombs orbit_tombs_t;

/* New empty set holding at most cap tombstones (0: 65,536). NULL on ENOMEM. */
orbit_tombs_t *orbit_tombs_new(size_t cap);
/* Free; NULL-safe, clears *pt. */
void orbit_tombs_destroy(orbit_tombs_t **pt);

/* Record that name (copied) was removed at generation gen (> 0). On ENOMEM
 * or past cap, every tombstone goes and the floor rises to gen: nothing is
 * lost, the next report to a lagging upstream is full. */
void orbit_tombs_add(orbit_tombs_t *t, const char *name, uint64_t gen);
/* name exists again: its tombstone (if any) goes. */
void orbit_tombs_forget(orbit_tombs_t *t, const char *name);
/* The names removed after since_gen, as an arena array of arena strings in
 * a. Errors: ORBIT_ENOMEM (*names NULL, *count 0). */
int orbit_tombs_list(orbit_tombs_t *t, uint64_t since_gen, orbit_arena_t *a, char ***names,
                     size_t *count);
/* Every upstream has acknowledged generation acked: older tombstones go. */
void orbit_tombs_prune(orbit_tombs_t *t, uint64_t acked);
/* Highest generation of a tombstone dropped unreported (0: none). */
uint64_t orbit_tombs_floor(const orbit_tombs_t *t);
size_t orbit_tombs_count(const orbit_tombs_t *t);

#endif
