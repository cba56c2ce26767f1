/* orbit_replicas: request/reply with one root replica at a time. */
#include "orbit_replicas.h"

#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_sock.h"

int orbit_replicas_init(orbit_replicas_t *r, const char *roots, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    orbit_rx_init(&r->rx);
    return orbit_endpoints_split(roots, "root", r->endpoints, ORBIT_REPLICAS_MAX, &r->n, err,
                                 errlen);
}

void orbit_replicas_close(orbit_replicas_t *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++) {
        zsock_destroy(&r->socks[i]);
        free(r->endpoints[i]);
    }
    r->n = 0;
    orbit_rx_close(&r->rx);
}

zsock_t *orbit_replicas_sock(orbit_replicas_t *r, int i)
{
    if (i < 0 || i >= r->n)
        return NULL;
    if (!r->socks[i]) {
        char err[256];
        orbit_sock_opts_t o;
        orbit_sock_opts_default(&o, ORBIT_LINK_CLIENT);
        o.immediate = false; /* queue the request until the connection is up */
        r->socks[i] = orbit_sock_connect(ZMQ_DEALER, r->endpoints[i], &o, err, sizeof err);
    }
    return r->socks[i];
}

void orbit_replicas_drop(orbit_replicas_t *r, int i)
{
    if (i >= 0 && i < r->n)
        zsock_destroy(&r->socks[i]);
}

/* The request_id of a message: field 1, a uint64, in every request and
 * reply type that travels through here. */
static uint64_t request_id(const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(m->descriptor, 1);
    if (!f || f->type != PROTOBUF_C_TYPE_UINT64)
        return 0;
    return *(const uint64_t *)((const char *)m + f->offset);
}

int orbit_replicas_call(orbit_replicas_t *r, int i, orbit_msg_type_t type,
                        const ProtobufCMessage *msg, orbit_msg_type_t reply_type, int timeout_ms,
                        ProtobufCAllocator *alloc, ProtobufCMessage **reply)
{
    if (i < 0 || i >= r->n)
        return ORBIT_EINVAL;
    if (!orbit_replicas_sock(r, i))
        return ORBIT_EIO;
    int rc = orbit_wire_send(r->socks[i], NULL, 0, type, msg);
    if (rc != ORBIT_OK)
        return rc == ORBIT_EAGAIN ? ORBIT_ETIMEDOUT : rc;
    uint64_t id = request_id(msg);
    int64_t deadline = zclock_mono() + timeout_ms;
    zpoller_t *p = zpoller_new(r->socks[i], NULL);
    rc = ORBIT_ETIMEDOUT;
    while (zclock_mono() < deadline) {
        if (!zpoller_wait(p, (int)(deadline - zclock_mono())))
            break;
        if (orbit_wire_recv(r->socks[i], 0, &r->rx) != ORBIT_OK)
            continue;
        ProtobufCMessage *m = NULL;
        if (orbit_wire_decode(orbit_rx_data(&r->rx), orbit_rx_size(&r->rx), reply_type, alloc, NULL,
                              &m) != ORBIT_OK)
            continue;
        if (request_id(m) != id) { /* a late answer to an earlier request */
            protobuf_c_message_free_unpacked(m, alloc);
            continue;
        }
        *reply = m;
        rc = ORBIT_OK;
        break;
    }
    zpoller_destroy(&p);
    if (rc != ORBIT_OK) /* a fresh socket next time: nothing stale lingers */
        orbit_replicas_drop(r, i);
    return rc;
}
