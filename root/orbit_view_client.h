/* orbit_view_client: the client side of the root view API. Sends one
 * ViewQuery to the first root replica that answers (every replica keeps a
 * warm view) and returns its decoded reply.
 *
 * Thread rules: a client belongs to the thread that created it. */
#ifndef ORBIT_VIEW_CLIENT_H
#define ORBIT_VIEW_CLIENT_H

#include <stdint.h>

#include "orbit.pb-c.h"

typedef struct orbit_view_client orbit_view_client_t;

/* Client for the comma-separated root endpoints (copied). NULL with a reason
 * in err on a malformed endpoint list. */
orbit_view_client_t *orbit_view_client_new(const char *roots, char *err, size_t errlen);
void orbit_view_client_destroy(orbit_view_client_t **pc);

/* Send q (its request_id is assigned here) and wait up to timeout_ms per
 * replica, trying them in order. On success *reply is a malloc'd message
 * (free with orbit__view_reply__free_unpacked(reply, NULL)); a reply with
 * `error` set is still a success of the transport.
 * Errors: ORBIT_ETIMEDOUT (no replica answered), ORBIT_ENOMEM, ORBIT_EIO. */
int orbit_view_client_query(orbit_view_client_t *c, Orbit__ViewQuery *q, int timeout_ms,
                            Orbit__ViewReply **reply);

/* orbit_view_client_query with the reply decoded by alloc (NULL: malloc),
 * e.g. an arena's (orbit_arena_allocator): free it with
 * orbit__view_reply__free_unpacked(reply, alloc), or, for an arena, by
 * resetting the arena once the reply is no longer read. */
int orbit_view_client_query_in(orbit_view_client_t *c, Orbit__ViewQuery *q, int timeout_ms,
                               ProtobufCAllocator *alloc, Orbit__ViewReply **reply);

#endif
