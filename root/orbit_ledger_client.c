/* orbit_ledger_client: requests to the root replicas with leader following
 * and idempotent retries. */
#include "orbit_ledger_client.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orbit_err.h"
#include "orbit_sock.h"
#include "orbit_wire.h"

#define MAX_ROOTS  8
#define ATTEMPT_MS 1000 /* per replica before trying the next one */

struct orbit_ledger_client {
    char *endpoints[MAX_ROOTS];
    zsock_t *socks[MAX_ROOTS];
    int n, leader; /* index of the replica believed to lead */
    char id[96];
    uint64_t next_request, next_transport;
    orbit_rx_t rx;
};

orbit_ledger_client_t *orbit_ledger_client_new(const char *roots, const char *client_id, char *err,
                                               size_t errlen)
{
    orbit_ledger_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    orbit_rx_init(&c->rx);
    if (orbit_endpoints_split(roots, "root", c->endpoints, MAX_ROOTS, &c->n, err, errlen) != 0) {
        orbit_ledger_client_destroy(&c);
        return NULL;
    }
    if (client_id && *client_id) {
        snprintf(c->id, sizeof c->id, "%s", client_id);
    } else {
        char host[64] = "client";
        gethostname(host, sizeof host - 1);
        snprintf(c->id, sizeof c->id, "%.40s-%d-%04x", host, (int)getpid(),
                 (unsigned)randof(65536));
    }
    /* Request ids start at the wall clock in microseconds, so a client that
     * reuses its id after a restart never repeats one. */
    c->next_request = (uint64_t)zclock_time() * 1000;
    c->next_transport = 1;
    return c;
}

void orbit_ledger_client_destroy(orbit_ledger_client_t **pc)
{
    if (!pc || !*pc)
        return;
    orbit_ledger_client_t *c = *pc;
    for (int i = 0; i < c->n; i++) {
        zsock_destroy(&c->socks[i]);
        free(c->endpoints[i]);
    }
    orbit_rx_close(&c->rx);
    free(c);
    *pc = NULL;
}

const char *orbit_ledger_client_id(const orbit_ledger_client_t *c)
{
    return c->id;
}

void orbit_ledger_client_stamp(orbit_ledger_client_t *c, Orbit__Ledger__Proposal *p)
{
    p->client_id = c->id;
    p->request_id = ++c->next_request;
}

static zsock_t *sock_for(orbit_ledger_client_t *c, int i)
{
    if (!c->socks[i]) {
        char err[256];
        orbit_sock_opts_t o;
        orbit_sock_opts_default(&o, ORBIT_LINK_CLIENT);
        o.immediate = false; /* queue until connected */
        c->socks[i] = orbit_sock_connect(ZMQ_DEALER, c->endpoints[i], &o, err, sizeof err);
    }
    return c->socks[i];
}

/* One attempt at replica i: send, wait up to ms for the matching reply. */
static int attempt(orbit_ledger_client_t *c, int i, Orbit__Ledger__Request *req, int ms,
                   Orbit__Ledger__Reply **reply)
{
    zsock_t *s = sock_for(c, i);
    if (!s)
        return ORBIT_EIO;
    req->request_id = c->next_transport++;
    size_t n = orbit__ledger__request__get_packed_size(req);
    zmq_msg_t m;
    if (zmq_msg_init_size(&m, ORBIT_WIRE_HDR + n) != 0)
        return ORBIT_ENOMEM;
    uint8_t *p = zmq_msg_data(&m);
    p[0] = ORBIT_WIRE_MAGIC;
    p[1] = ORBIT_WIRE_MAJOR;
    p[2] = ORBIT_WIRE_MINOR;
    p[3] = ORBIT_MSG_LEDGER_REQUEST;
    orbit__ledger__request__pack(req, p + ORBIT_WIRE_HDR);
    if (zmq_msg_send(&m, zsock_resolve(s), ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return ORBIT_ETIMEDOUT;
    }
    int64_t deadline = zclock_mono() + ms;
    zpoller_t *poller = zpoller_new(s, NULL);
    int rc = ORBIT_ETIMEDOUT;
    while (zclock_mono() < deadline) {
        if (!zpoller_wait(poller, (int)(deadline - zclock_mono())))
            break;
        if (orbit_wire_recv(s, 0, &c->rx) != ORBIT_OK)
            continue;
        orbit_msg_type_t type;
        const uint8_t *buf = orbit_rx_data(&c->rx);
        size_t len = orbit_rx_size(&c->rx);
        if (orbit_wire_peek(buf, len, &type) != ORBIT_OK || type != ORBIT_MSG_LEDGER_REPLY)
            continue;
        Orbit__Ledger__Reply *r =
            orbit__ledger__reply__unpack(NULL, len - ORBIT_WIRE_HDR, buf + ORBIT_WIRE_HDR);
        if (!r)
            continue;
        if (r->request_id != req->request_id) { /* a late answer to an earlier attempt */
            orbit__ledger__reply__free_unpacked(r, NULL);
            continue;
        }
        *reply = r;
        rc = ORBIT_OK;
        break;
    }
    zpoller_destroy(&poller);
    if (rc != ORBIT_OK) /* a fresh socket next time: nothing stale lingers */
        zsock_destroy(&c->socks[i]);
    return rc;
}

int orbit_ledger_client_replicas(const orbit_ledger_client_t *c)
{
    return c->n;
}

const char *orbit_ledger_client_endpoint(const orbit_ledger_client_t *c, int i)
{
    return i >= 0 && i < c->n ? c->endpoints[i] : NULL;
}

int orbit_ledger_client_call_one(orbit_ledger_client_t *c, int i, Orbit__Ledger__Request *req,
                                 int timeout_ms, Orbit__Ledger__Reply **reply)
{
    if (i < 0 || i >= c->n)
        return ORBIT_EINVAL;
    return attempt(c, i, req, timeout_ms, reply);
}

int orbit_ledger_client_call(orbit_ledger_client_t *c, Orbit__Ledger__Request *req, int timeout_ms,
                             Orbit__Ledger__Reply **reply)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    int rc = ORBIT_ETIMEDOUT;
    int tries = 0;
    while (zclock_mono() < deadline) {
        int left = (int)(deadline - zclock_mono());
        int i = c->leader;
        rc = attempt(c, i, req, left < ATTEMPT_MS ? left : ATTEMPT_MS, reply);
        if (rc == ORBIT_OK && !((*reply)->has_not_leader && (*reply)->not_leader))
            return ORBIT_OK;
        if (rc == ORBIT_OK) {
            orbit__ledger__reply__free_unpacked(*reply, NULL);
            *reply = NULL;
            rc = ORBIT_ETIMEDOUT;
        }
        c->leader = (c->leader + 1) % c->n;
        /* After a full round of "not leader" (an election in progress), wait
         * a little before asking again. */
        if (++tries % c->n == 0)
            zclock_sleep(50);
    }
    return rc;
}

int orbit_ledger_client_propose(orbit_ledger_client_t *c, Orbit__Ledger__Commitment *cm,
                                Orbit__Ledger__Precondition *pre, int timeout_ms,
                                Orbit__Ledger__Outcome **outcome, char *err, size_t errlen)
{
    Orbit__Ledger__Proposal p = ORBIT__LEDGER__PROPOSAL__INIT;
    orbit_ledger_client_stamp(c, &p);
    p.commitment = cm;
    p.precondition = pre;
    Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
    req.op_case = ORBIT__LEDGER__REQUEST__OP_PROPOSE;
    req.propose = &p;
    Orbit__Ledger__Reply *r = NULL;
    int rc = orbit_ledger_client_call(c, &req, timeout_ms, &r);
    if (rc != ORBIT_OK) {
        snprintf(err, errlen, "no leader answered: %s", orbit_strerror(rc));
        return rc;
    }
    if (!r->outcome) {
        snprintf(err, errlen, "%s", r->error ? r->error : "reply without an outcome");
        orbit__ledger__reply__free_unpacked(r, NULL);
        return ORBIT_EIO;
    }
    /* Detach the outcome from the reply. */
    *outcome = r->outcome;
    r->outcome = NULL;
    orbit__ledger__reply__free_unpacked(r, NULL);
    return ORBIT_OK;
}
