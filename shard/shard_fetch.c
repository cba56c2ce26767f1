/* shard_fetch: the topology read on an actor thread. */
#include "shard_fetch.h"

#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_ledger_client.h"
#include "topology_fetch.h"

struct orbit_shard_fetch {
    zactor_t *actor;
    bool busy;
};

typedef struct {
    orbit_ledger_client_t *client; /* owned by the actor once it runs */
    int timeout_ms;
} fetch_args_t;

/* Commands: "FETCH" -> answers "ps" (model or NULL, reason or ""). */
static void fetch_actor(zsock_t *pipe, void *arg)
{
    fetch_args_t *a = arg;
    zsock_signal(pipe, 0);
    for (;;) {
        char *cmd = zstr_recv(pipe);
        if (!cmd)
            break; /* interrupted */
        bool term = !strcmp(cmd, "$TERM");
        if (!term && !strcmp(cmd, "FETCH")) {
            char err[256] = "";
            orbit_topology_t *t =
                orbit_topology_fetch(a->client, true, a->timeout_ms, err, sizeof err);
            if (zsock_send(pipe, "ps", (void *)t, err) != 0)
                orbit_topology_destroy(&t);
        }
        zstr_free(&cmd);
        if (term)
            break;
    }
    orbit_ledger_client_destroy(&a->client);
    free(a);
}

orbit_shard_fetch_t *orbit_shard_fetch_new(const char *roots, int timeout_ms, char *err,
                                           size_t errlen)
{
    orbit_shard_fetch_t *f = calloc(1, sizeof *f);
    fetch_args_t *a = calloc(1, sizeof *a);
    if (!f || !a) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    a->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
    a->client = orbit_ledger_client_new(roots, NULL, err, errlen);
    if (!a->client)
        goto fail;
    f->actor = zactor_new(fetch_actor, a);
    if (!f->actor) {
        snprintf(err, errlen, "cannot start the topology fetcher thread");
        orbit_ledger_client_destroy(&a->client);
        goto fail;
    }
    return f; /* a is the actor's now */
fail:
    free(a);
    free(f);
    return NULL;
}

void orbit_shard_fetch_destroy(orbit_shard_fetch_t **pf)
{
    if (!pf || !*pf)
        return;
    orbit_shard_fetch_t *f = *pf;
    if (f->busy) {
        orbit_topology_t *t = orbit_shard_fetch_take(f, NULL, 0);
        orbit_topology_destroy(&t);
    }
    zactor_destroy(&f->actor);
    free(f);
    *pf = NULL;
}

int orbit_shard_fetch_start(orbit_shard_fetch_t *f)
{
    if (f->busy)
        return ORBIT_EAGAIN;
    if (zstr_send(f->actor, "FETCH") != 0)
        return ORBIT_EIO;
    f->busy = true;
    return ORBIT_OK;
}

bool orbit_shard_fetch_busy(const orbit_shard_fetch_t *f)
{
    return f->busy;
}

zsock_t *orbit_shard_fetch_sock(orbit_shard_fetch_t *f)
{
    return zactor_sock(f->actor);
}

orbit_topology_t *orbit_shard_fetch_take(orbit_shard_fetch_t *f, char *err, size_t errlen)
{
    void *t = NULL;
    char *why = NULL;
    if (!f->busy) {
        if (err && errlen)
            snprintf(err, errlen, "no topology fetch in flight");
        return NULL;
    }
    if (zsock_recv(f->actor, "ps", &t, &why) != 0) {
        /* Interrupted: the answer, if it comes, is read next time. */
        if (err && errlen)
            snprintf(err, errlen, "interrupted");
        return NULL;
    }
    f->busy = false;
    if (!t && err && errlen)
        snprintf(err, errlen, "%s", why && why[0] ? why : "topology read failed");
    zstr_free(&why);
    return t;
}
