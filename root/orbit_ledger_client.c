/* orbit_ledger_client: requests to the root replicas with leader following
 * and idempotent retries. */
#include "orbit_ledger_client.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orbit_err.h"
#include "orbit_replicas.h"

#define MAX_ROOTS  8
#define ATTEMPT_MS 1000 /* per replica before trying the next one */

struct orbit_ledger_client {
    orbit_replicas_t replicas;
    int leader; /* index of the replica believed to lead */
    char id[96];
    uint64_t next_request, next_transport;
};

orbit_ledger_client_t *orbit_ledger_client_new(const char *roots, const char *client_id, char *err,
                                               size_t errlen)
{
    orbit_ledger_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (orbit_replicas_init(&c->replicas, roots, err, errlen) != 0) {
        free(c);
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
    orbit_replicas_close(&(*pc)->replicas);
    free(*pc);
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

/* One attempt at replica i with a fresh transport id. */
static int attempt(orbit_ledger_client_t *c, int i, Orbit__Ledger__Request *req, int ms,
                   ProtobufCAllocator *alloc, Orbit__Ledger__Reply **reply)
{
    req->request_id = c->next_transport++;
    return orbit_replicas_call(&c->replicas, i, ORBIT_MSG_LEDGER_REQUEST, &req->base,
                               ORBIT_MSG_LEDGER_REPLY, ms, alloc, (ProtobufCMessage **)reply);
}

int orbit_ledger_client_replicas(const orbit_ledger_client_t *c)
{
    return c->replicas.n;
}

const char *orbit_ledger_client_endpoint(const orbit_ledger_client_t *c, int i)
{
    return i >= 0 && i < c->replicas.n ? c->replicas.endpoints[i] : NULL;
}

int orbit_ledger_client_call_one(orbit_ledger_client_t *c, int i, Orbit__Ledger__Request *req,
                                 int timeout_ms, Orbit__Ledger__Reply **reply)
{
    return attempt(c, i, req, timeout_ms, NULL, reply);
}

int orbit_ledger_client_call(orbit_ledger_client_t *c, Orbit__Ledger__Request *req, int timeout_ms,
                             Orbit__Ledger__Reply **reply)
{
    return orbit_ledger_client_call_in(c, req, timeout_ms, NULL, reply);
}

int orbit_ledger_client_call_in(orbit_ledger_client_t *c, Orbit__Ledger__Request *req,
                                int timeout_ms, ProtobufCAllocator *alloc,
                                Orbit__Ledger__Reply **reply)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    int rc = ORBIT_ETIMEDOUT;
    int tries = 0;
    while (zclock_mono() < deadline) {
        int left = (int)(deadline - zclock_mono());
        int i = c->leader;
        rc = attempt(c, i, req, left < ATTEMPT_MS ? left : ATTEMPT_MS, alloc, reply);
        if (rc == ORBIT_OK && !((*reply)->has_not_leader && (*reply)->not_leader))
            return ORBIT_OK;
        if (rc == ORBIT_OK) {
            orbit__ledger__reply__free_unpacked(*reply, alloc);
            *reply = NULL;
            rc = ORBIT_ETIMEDOUT;
        }
        c->leader = (c->leader + 1) % c->replicas.n;
        /* After a full round of "not leader" (an election in progress), wait
         * a little before asking again. */
        if (++tries % c->replicas.n == 0)
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

int orbit_ledger_client_get(orbit_ledger_client_t *c, const char *key, bool stale, int timeout_ms,
                            char **value, uint64_t *index, char *err, size_t errlen)
{
    Orbit__Ledger__GetRequest g = ORBIT__LEDGER__GET_REQUEST__INIT;
    g.key = (char *)key;
    g.has_stale = true;
    g.stale = stale;
    Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
    req.op_case = ORBIT__LEDGER__REQUEST__OP_GET;
    req.get = &g;
    Orbit__Ledger__Reply *r = NULL;
    *value = NULL;
    int rc = orbit_ledger_client_call(c, &req, timeout_ms, &r);
    if (rc != ORBIT_OK) {
        orbit_errf(err, errlen, "get %s: no root replica answered (%s)", key, orbit_strerror(rc));
        return rc;
    }
    if (r->error && *r->error) {
        orbit_errf(err, errlen, "get %s: %.200s", key, r->error);
        rc = ORBIT_EIO;
    } else if (!r->value) {
        rc = ORBIT_ENOTFOUND;
    } else if (!(*value = strdup(r->value))) {
        orbit_errf(err, errlen, "get %s: out of memory", key);
        rc = ORBIT_ENOMEM;
    } else if (index) {
        *index = r->value_index;
    }
    orbit__ledger__reply__free_unpacked(r, NULL);
    return rc;
}
