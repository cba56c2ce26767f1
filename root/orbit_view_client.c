/* orbit_view_client: query the root view with failover across replicas. */
#include "orbit_view_client.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_sock.h"
#include "orbit_wire.h"

#define MAX_ROOTS 8

struct orbit_view_client {
    char *endpoints[MAX_ROOTS];
    zsock_t *socks[MAX_ROOTS];
    int n;
    uint64_t next_id;
    orbit_rx_t rx;
};

orbit_view_client_t *orbit_view_client_new(const char *roots, char *err, size_t errlen)
{
    orbit_view_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    orbit_rx_init(&c->rx);
    c->next_id = (uint64_t)zclock_time();
    if (orbit_endpoints_split(roots, "root", c->endpoints, MAX_ROOTS, &c->n, err, errlen) != 0)
        orbit_view_client_destroy(&c);
    return c;
}

void orbit_view_client_destroy(orbit_view_client_t **pc)
{
    if (!pc || !*pc)
        return;
    orbit_view_client_t *c = *pc;
    for (int i = 0; i < c->n; i++) {
        zsock_destroy(&c->socks[i]);
        free(c->endpoints[i]);
    }
    orbit_rx_close(&c->rx);
    free(c);
    *pc = NULL;
}

static int ask(orbit_view_client_t *c, int i, Orbit__ViewQuery *q, int timeout_ms,
               Orbit__ViewReply **reply)
{
    char err[256];
    if (!c->socks[i]) {
        orbit_sock_opts_t o;
        orbit_sock_opts_default(&o, ORBIT_LINK_CLIENT);
        o.immediate = false; /* queue the query until the connection is up */
        c->socks[i] = orbit_sock_connect(ZMQ_DEALER, c->endpoints[i], &o, err, sizeof err);
        if (!c->socks[i])
            return ORBIT_EIO;
    }
    int rc = orbit_wire_send(c->socks[i], NULL, 0, ORBIT_MSG_VIEW_QUERY, &q->base);
    if (rc != ORBIT_OK)
        return rc == ORBIT_EAGAIN ? ORBIT_ETIMEDOUT : rc;
    int64_t deadline = zclock_mono() + timeout_ms;
    zpoller_t *p = zpoller_new(c->socks[i], NULL);
    rc = ORBIT_ETIMEDOUT;
    while (zclock_mono() < deadline) {
        if (!zpoller_wait(p, (int)(deadline - zclock_mono())))
            break;
        if (orbit_wire_recv(c->socks[i], 0, &c->rx) != ORBIT_OK)
            continue;
        ProtobufCMessage *m = NULL;
        if (orbit_wire_decode(orbit_rx_data(&c->rx), orbit_rx_size(&c->rx), ORBIT_MSG_VIEW_REPLY,
                              NULL, NULL, &m) != ORBIT_OK)
            continue;
        Orbit__ViewReply *r = (Orbit__ViewReply *)m;
        if (r->request_id != q->request_id) { /* a late answer to an older query */
            orbit__view_reply__free_unpacked(r, NULL);
            continue;
        }
        *reply = r;
        rc = ORBIT_OK;
        break;
    }
    zpoller_destroy(&p);
    if (rc != ORBIT_OK) /* drop the socket so a stale answer cannot linger */
        zsock_destroy(&c->socks[i]);
    return rc;
}

int orbit_view_client_query(orbit_view_client_t *c, Orbit__ViewQuery *q, int timeout_ms,
                            Orbit__ViewReply **reply)
{
    int rc = ORBIT_ETIMEDOUT;
    for (int i = 0; i < c->n; i++) {
        q->request_id = ++c->next_id;
        rc = ask(c, i, q, timeout_ms, reply);
        if (rc == ORBIT_OK)
            return rc;
    }
    return rc;
}
