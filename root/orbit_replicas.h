/* orbit_replicas: the request/reply transport both root clients share — one
 * DEALER per root replica (created on first use, dropped after a silent
 * attempt so a stale answer cannot linger), and one call: send a message to
 * replica i and wait for the reply of the expected type carrying the same
 * request_id (field 1 of both messages).
 *
 * Thread rules: a replica set belongs to one thread. */
#ifndef ORBIT_REPLICAS_H
#define ORBIT_REPLICAS_H

#include <czmq.h>
#include <stddef.h>
#include <stdint.h>

#include "orbit_wire.h"

#define ORBIT_REPLICAS_MAX 8

typedef struct {
    char *endpoints[ORBIT_REPLICAS_MAX];
    zsock_t *socks[ORBIT_REPLICAS_MAX];
    int n;
    orbit_rx_t rx;
} orbit_replicas_t;

/* Parse the comma-separated root endpoints into r (zeroed first).
 * Returns 0, or -1 with a one-line reason in err (r then holds nothing). */
int orbit_replicas_init(orbit_replicas_t *r, const char *roots, char *err, size_t errlen);
/* Close every socket and free the endpoints. NULL-safe. */
void orbit_replicas_close(orbit_replicas_t *r);

/* The DEALER to replica i, connected on first use (NULL: bad i or no
 * socket). */
zsock_t *orbit_replicas_sock(orbit_replicas_t *r, int i);
/* Close the socket to replica i (a fresh one next time: no stale answer
 * lingers). */
void orbit_replicas_drop(orbit_replicas_t *r, int i);

/* Send msg (envelope type `type`, its request_id field already set) to
 * replica i, then wait up to timeout_ms for a `reply_type` message with the
 * same request_id, which is decoded with alloc (NULL: malloc) into *reply
 * (free with protobuf_c_message_free_unpacked(*reply, alloc)). Answers to
 * earlier requests are skipped.
 * Errors: ORBIT_EINVAL (bad i), ORBIT_EIO (no socket), ORBIT_ETIMEDOUT,
 * ORBIT_ENOMEM. */
int orbit_replicas_call(orbit_replicas_t *r, int i, orbit_msg_type_t type,
                        const ProtobufCMessage *msg, orbit_msg_type_t reply_type, int timeout_ms,
                        ProtobufCAllocator *alloc, ProtobufCMessage **reply);

#endif
