/* orbit_view_client: query the root view with failover across replicas. */
#include "orbit_view_client.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_replicas.h"

struct orbit_view_client {
    orbit_replicas_t replicas;
    uint64_t next_id;
};

orbit_view_client_t *orbit_view_client_new(const char *roots, char *err, size_t errlen)
{
    orbit_view_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->next_id = (uint64_t)zclock_time();
    if (orbit_replicas_init(&c->replicas, roots, err, errlen) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

void orbit_view_client_destroy(orbit_view_client_t **pc)
{
    if (!pc || !*pc)
        return;
    orbit_replicas_close(&(*pc)->replicas);
    free(*pc);
    *pc = NULL;
}

int orbit_view_client_query(orbit_view_client_t *c, Orbit__ViewQuery *q, int timeout_ms,
                            Orbit__ViewReply **reply)
{
    return orbit_view_client_query_in(c, q, timeout_ms, NULL, reply);
}

int orbit_view_client_query_in(orbit_view_client_t *c, Orbit__ViewQuery *q, int timeout_ms,
                               ProtobufCAllocator *alloc, Orbit__ViewReply **reply)
{
    int rc = ORBIT_ETIMEDOUT;
    for (int i = 0; i < c->replicas.n; i++) {
        q->request_id = ++c->next_id;
        rc = orbit_replicas_call(&c->replicas, i, ORBIT_MSG_VIEW_QUERY, &q->base,
                                 ORBIT_MSG_VIEW_REPLY, timeout_ms, alloc,
                                 (ProtobufCMessage **)reply);
        if (rc == ORBIT_OK)
            return rc;
    }
    return rc;
}
