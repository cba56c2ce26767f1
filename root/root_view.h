/* root_view: answers view queries (summary, filtered node lists, top-k by
 * free resources, shard status, capsules by id prefix) from the root's merged
 * subtree. Node detail is not answered here: the daemon proxies it to the
 * owning shard.
 *
 * Thread rules: the owner thread of the subtree; no I/O. */
#ifndef ORBIT_ROOT_VIEW_H
#define ORBIT_ROOT_VIEW_H

#include "orbit.pb-c.h"
#include "orbit_wire.h"
#include "shard_subtree.h"

#define ORBIT_VIEW_LIMIT_MAX 1000000

/* Check a query's kind and filters (a capsule prefix: id characters only,
 * at most ORBIT_NAME_LEN_MAX bytes); on failure writes a static reason.
 * Errors: ORBIT_EINVAL. */
int orbit_root_view_validate(const Orbit__ViewQuery *q, const char **reason);

/* True if row passes every filter of q. */
bool orbit_root_view_match(const orbit_row_t *row, const Orbit__ViewQuery *q);

/* Fill rep (initialised by the caller, storage in a) with the rows matching
 * q, ordered by q->order (free resources descending, ties by name) and cut to
 * q->limit (0: all), each with its capsules. rep->matched is the count before
 * the cut. Strings point into t: send rep before t changes.
 * Errors: ORBIT_ENOMEM. */
int orbit_root_view_nodes(const orbit_subtree_t *t, const Orbit__ViewQuery *q, orbit_arena_t *a,
                          Orbit__ViewReply *rep);

/* Q_CAPSULES: fill rep->capsules (storage in a) with every capsule whose id
 * starts with q->capsule_prefix (absent or "": all) on the rows that pass
 * q's node filters (orbit_root_view_match), each with its node and the
 * node's effective status (unreachable for rows of a silent child), ordered
 * by (capsule id, node) and cut to q->limit (0: all). rep->matched is the
 * count before the cut. Strings point into t: send rep before t changes.
 * Errors: ORBIT_ENOMEM. */
int orbit_root_view_capsules(const orbit_subtree_t *t, const Orbit__ViewQuery *q, orbit_arena_t *a,
                             Orbit__ViewReply *rep);

/* Fill rep->summary (storage in a). Errors: ORBIT_ENOMEM. */
int orbit_root_view_summary(const orbit_subtree_t *t, orbit_arena_t *a, Orbit__ViewReply *rep);

/* Histogram of row ages at the root (wall clock from the leaf's sample to the
 * root applying the row), in ORBIT_FRESHNESS_BUCKET_MS buckets. */
#define ORBIT_FRESHNESS_BUCKET_MS 10
#define ORBIT_FRESHNESS_BUCKETS   3000

typedef struct {
    uint64_t hist[ORBIT_FRESHNESS_BUCKETS];
} orbit_freshness_t;

/* Record every row of report r at wall-clock time now_wall_ms. */
void orbit_freshness_record(orbit_freshness_t *f, const Orbit__ShardReport *r, int64_t now_wall_ms);
/* Point rep's histogram at f (borrowed until rep is sent). */
void orbit_freshness_to_pb(const orbit_freshness_t *f, Orbit__ViewReply *rep);

#endif
