/* ledger_load: test tool driving the Ephemeris through the client library.
 *
 *   ledger_load ROOTS place NODE CAPACITY_M PROPOSERS COUNT [PREFIX]
 *       PROPOSERS threads (each its own client) propose COUNT placements
 *       each of 1000 m on NODE with node_fits(NODE, CAPACITY_M); prints one
 *       line per outcome: "committed CAPSULE INDEX" or "conflict CAPSULE WHICH".
 *       Every proposal is retried (same request id) until it has an outcome.
 *   ledger_load ENDPOINT verify FILE
 *       reads "committed CAPSULE INDEX" lines and checks, with stale reads on
 *       that one replica, that every capsule is placed; prints the count
 *       missing and exits 1 if any.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "orbit_err.h"
#include "orbit_ledger_client.h"

typedef struct {
    const char *roots, *node, *prefix;
    int64_t capacity;
    int id, count;
    int committed, conflicts, failures;
    pthread_mutex_t *out;
} worker_t;

static void *propose_loop(void *arg)
{
    worker_t *w = arg;
    char err[256];
    orbit_ledger_client_t *c = orbit_ledger_client_new(w->roots, NULL, err, sizeof err);
    if (!c) {
        fprintf(stderr, "ledger_load: %s\n", err);
        w->failures = w->count;
        return NULL;
    }
    for (int i = 0; i < w->count; i++) {
        char capsule[64];
        snprintf(capsule, sizeof capsule, "%s-%d-%d", w->prefix, w->id, i);
        Orbit__Ledger__Resources env = ORBIT__LEDGER__RESOURCES__INIT;
        env.has_cpu_m = true;
        env.cpu_m = 1000;
        Orbit__Ledger__Placement pl = ORBIT__LEDGER__PLACEMENT__INIT;
        pl.capsule = capsule;
        pl.node = (char *)w->node;
        pl.envelope = &env;
        Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
        cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT;
        cm.placement = &pl;
        Orbit__Ledger__Resources cap = ORBIT__LEDGER__RESOURCES__INIT;
        cap.has_cpu_m = true;
        cap.cpu_m = w->capacity;
        Orbit__Ledger__NodeFits fits = ORBIT__LEDGER__NODE_FITS__INIT;
        fits.node = (char *)w->node;
        fits.capacity = &cap;
        Orbit__Ledger__NodeFits *fl[1] = {&fits};
        Orbit__Ledger__Precondition pre = ORBIT__LEDGER__PRECONDITION__INIT;
        pre.n_node_fits = 1;
        pre.node_fits = fl;
        /* One logical proposal: stamp once, retry with the same ids. */
        Orbit__Ledger__Proposal p = ORBIT__LEDGER__PROPOSAL__INIT;
        orbit_ledger_client_stamp(c, &p);
        p.commitment = &cm;
        p.precondition = &pre;
        Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
        req.op_case = ORBIT__LEDGER__REQUEST__OP_PROPOSE;
        req.propose = &p;
        Orbit__Ledger__Outcome *o = NULL;
        for (int attempt = 0; attempt < 60 && !o; attempt++) {
            Orbit__Ledger__Reply *r = NULL;
            if (orbit_ledger_client_call(c, &req, 2000, &r) != ORBIT_OK)
                continue;
            if (r->outcome) {
                o = r->outcome;
                r->outcome = NULL;
            }
            orbit__ledger__reply__free_unpacked(r, NULL);
        }
        pthread_mutex_lock(w->out);
        if (!o) {
            w->failures++;
            printf("failed %s\n", capsule);
        } else if (o->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED) {
            w->committed++;
            printf("committed %s %llu\n", capsule, (unsigned long long)o->index);
        } else {
            w->conflicts++;
            printf("conflict %s %s\n", capsule, o->which ? o->which : o->reason);
        }
        fflush(stdout);
        pthread_mutex_unlock(w->out);
        if (o)
            orbit__ledger__outcome__free_unpacked(o, NULL);
    }
    orbit_ledger_client_destroy(&c);
    return NULL;
}

static int place(const char *roots, int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int n = atoi(argv[2]);
    if (n < 1 || n > 256)
        return 2;
    worker_t *ws = calloc((size_t)n, sizeof *ws);
    pthread_t *ts = calloc((size_t)n, sizeof *ts);
    pthread_mutex_t out = PTHREAD_MUTEX_INITIALIZER;
    for (int i = 0; i < n; i++) {
        ws[i].roots = roots;
        ws[i].node = argv[0];
        ws[i].capacity = atoll(argv[1]);
        ws[i].count = atoi(argv[3]);
        ws[i].prefix = argc > 4 ? argv[4] : "cap";
        ws[i].id = i;
        ws[i].out = &out;
        pthread_create(&ts[i], NULL, propose_loop, &ws[i]);
    }
    int committed = 0, conflicts = 0, failures = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(ts[i], NULL);
        committed += ws[i].committed;
        conflicts += ws[i].conflicts;
        failures += ws[i].failures;
    }
    fprintf(stderr, "ledger_load: %d committed, %d conflicts, %d without an outcome\n", committed,
            conflicts, failures);
    free(ws);
    free(ts);
    return failures ? 1 : 0;
}

static int verify(const char *endpoint, const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return 2;
    char err[256];
    orbit_ledger_client_t *c = orbit_ledger_client_new(endpoint, NULL, err, sizeof err);
    if (!c) {
        fclose(f);
        return 2;
    }
    char line[256], capsule[128];
    unsigned long long index;
    int checked = 0, missing = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "committed %127s %llu", capsule, &index) != 2)
            continue;
        char key[160];
        snprintf(key, sizeof key, "placement/%s", capsule);
        Orbit__Ledger__GetRequest g = ORBIT__LEDGER__GET_REQUEST__INIT;
        g.key = key;
        g.has_stale = g.stale = true;
        Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
        req.op_case = ORBIT__LEDGER__REQUEST__OP_GET;
        req.get = &g;
        Orbit__Ledger__Reply *r = NULL;
        checked++;
        if (orbit_ledger_client_call_one(c, 0, &req, 3000, &r) != ORBIT_OK || !r->value) {
            missing++;
            fprintf(stderr, "ledger_load: %s missing at %s\n", capsule, endpoint);
        }
        if (r)
            orbit__ledger__reply__free_unpacked(r, NULL);
    }
    fclose(f);
    orbit_ledger_client_destroy(&c);
    printf("verified %d acknowledged placements at %s: %d missing\n", checked, endpoint, missing);
    return missing ? 1 : 0;
}

int main(int argc, char **argv)
{
    /* czmq's global state must be set up before threads create sockets. */
    zsys_init();
    if (argc >= 4 && !strcmp(argv[2], "place"))
        return place(argv[1], argc - 3, argv + 3);
    if (argc == 4 && !strcmp(argv[2], "verify"))
        return verify(argv[1], argv[3]);
    fprintf(stderr, "usage: ledger_load ROOTS place NODE CAPACITY_M PROPOSERS COUNT [PREFIX]\n"
                    "       ledger_load ENDPOINT verify FILE\n");
    return 2;
}
