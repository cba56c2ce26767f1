/* shard_pending: a bounded table of node-detail requests forwarded down the
 * tree and waiting for an answer. A fixed ring: when full, the oldest
 * request is forgotten (its asker times out), so a flood of requests can
 * never grow memory. */
#ifndef ORBIT_SHARD_PENDING_H
#define ORBIT_SHARD_PENDING_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "orbit_wire.h"

#define ORBIT_PENDING_SLOTS 1024

typedef struct {
    uint64_t id;      /* our id, sent downward */
    uint64_t orig_id; /* the asker's id, restored on the way up */
    int64_t deadline_ms;
    int upstream;                      /* which upstream asked (shards), or -1 */
    uint8_t rid[ORBIT_ROUTING_ID_MAX]; /* who asked (root: the client) */
    size_t rid_len;
} orbit_pending_t;

typedef struct {
    orbit_pending_t slots[ORBIT_PENDING_SLOTS];
    uint64_t next_id;
    uint64_t overwritten, expired;
} orbit_pending_table_t;

void orbit_pending_init(orbit_pending_table_t *t);
/* Store p (copied) under a fresh id, which is returned. */
uint64_t orbit_pending_add(orbit_pending_table_t *t, const orbit_pending_t *p);
/* Remove and copy out the request with id; false if unknown or expired. */
bool orbit_pending_take(orbit_pending_table_t *t, uint64_t id, orbit_pending_t *out);
/* Remove one request whose deadline passed, copying it out; false if none. */
bool orbit_pending_expire(orbit_pending_table_t *t, int64_t now_ms, orbit_pending_t *out);

#endif
