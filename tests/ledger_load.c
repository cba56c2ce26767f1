/* ledger_load: test tool driving the Ephemeris through the client library.
 *
 *   ledger_load ROOTS place NODE CAPACITY_M PROPOSERS COUNT [PREFIX]
 *       PROPOSERS threads (each its own client) propose COUNT placements
 *       each of 1000 m on NODE with node_fits(NODE, CAPACITY_M); prints one
 *       line per outcome: "committed CAPSULE INDEX" or "conflict CAPSULE WHICH".
 *       Every proposal is retried (same request id) until it has an outcome.
 *   ledger_load ROOTS pipe NODE CAPACITY_M INFLIGHT COUNT [PREFIX]
 *       the same COUNT placements through one orbit_ledger_pipe with
 *       INFLIGHT proposals in flight (sent as ProposeBatch requests); same
 *       output; a proposal without an outcome in time is submitted again
 *       with the same ids (up to 60 times).
 *   ledger_load ROOTS batch-check
 *       raw ProposeBatch requests to the leader: an empty batch and one of
 *       ORBIT_LEDGER_BATCH_MAX + 1 are refused with a reason; a batch of a
 *       placement, a second placement of the same capsule and an invalid
 *       one answers COMMITTED, CONFLICT(capsule_placed), INVALID in that
 *       order; sent again it answers the same outcomes with the same
 *       index (dedup). A request whose propose_batch occurs twice (which
 *       protobuf-c decodes as the last occurrence alone) commits and answers
 *       exactly that occurrence's proposal: the leader queues the proposals
 *       it decoded, not the ones its raw walk finds. Prints "batch-check ok"
 *       or the failure, exit 1.
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
#include "orbit_ledger_pipe.h"
#include "orbit_wire.h"

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

/* A placement of capsule on node (1000 m) under node_fits(node, capacity),
 * its parts in x. */
typedef struct {
    char capsule[64];
    Orbit__Ledger__Resources env, cap;
    Orbit__Ledger__Placement pl;
    Orbit__Ledger__Commitment cm;
    Orbit__Ledger__NodeFits fits, *fl[1];
    Orbit__Ledger__Precondition pre;
    Orbit__Ledger__Proposal p;
    int tries;
} place_t;

static void place_build(place_t *x, const char *node, int64_t capacity)
{
    orbit__ledger__resources__init(&x->env);
    x->env.has_cpu_m = true;
    x->env.cpu_m = 1000;
    orbit__ledger__placement__init(&x->pl);
    x->pl.capsule = x->capsule;
    x->pl.node = (char *)node;
    x->pl.envelope = &x->env;
    orbit__ledger__commitment__init(&x->cm);
    x->cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT;
    x->cm.placement = &x->pl;
    orbit__ledger__resources__init(&x->cap);
    x->cap.has_cpu_m = true;
    x->cap.cpu_m = capacity;
    orbit__ledger__node_fits__init(&x->fits);
    x->fits.node = (char *)node;
    x->fits.capacity = &x->cap;
    x->fl[0] = &x->fits;
    orbit__ledger__precondition__init(&x->pre);
    x->pre.n_node_fits = 1;
    x->pre.node_fits = x->fl;
    orbit__ledger__proposal__init(&x->p);
    x->p.commitment = &x->cm;
    x->p.precondition = &x->pre;
}

static int pipe_place(const char *roots, int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int inflight = atoi(argv[2]), count = atoi(argv[3]);
    const char *prefix = argc > 4 ? argv[4] : "pcap";
    if (inflight < 1 || count < 1 || count > 1000000)
        return 2;
    char err[256];
    orbit_ledger_pipe_t *pp = orbit_ledger_pipe_new(roots, NULL, err, sizeof err);
    place_t *xs = calloc((size_t)count, sizeof *xs);
    orbit_ledger_done_t *done = calloc((size_t)inflight, sizeof *done);
    if (!pp || !xs || !done) {
        fprintf(stderr, "ledger_load: %s\n", pp ? "out of memory" : err);
        return 2;
    }
    int next = 0, committed = 0, conflicts = 0, failures = 0;
    while (next < count || orbit_ledger_pipe_pending(pp)) {
        while (next < count && orbit_ledger_pipe_pending(pp) < (size_t)inflight) {
            place_t *x = &xs[next];
            snprintf(x->capsule, sizeof x->capsule, "%s-%d", prefix, next++);
            place_build(x, argv[0], atoll(argv[1]));
            orbit_ledger_pipe_stamp(pp, &x->p); /* once: retries keep the ids */
            orbit_ledger_pipe_submit(pp, &x->p, 2000, x);
        }
        size_t n = 0;
        if (orbit_ledger_pipe_wait(pp, 100, done, (size_t)inflight, &n) != ORBIT_OK)
            break;
        for (size_t i = 0; i < n; i++) {
            place_t *x = done[i].cookie;
            Orbit__Ledger__Outcome *o = done[i].outcome;
            if (!o) {
                if (++x->tries < 60 && orbit_ledger_pipe_submit(pp, &x->p, 2000, x) == ORBIT_OK)
                    continue;
                failures++;
                printf("failed %s\n", x->capsule);
            } else if (o->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED) {
                committed++;
                printf("committed %s %llu\n", x->capsule, (unsigned long long)o->index);
            } else {
                conflicts++;
                printf("conflict %s %s\n", x->capsule, o->which ? o->which : o->reason);
            }
            if (o)
                orbit__ledger__outcome__free_unpacked(o, NULL);
        }
        fflush(stdout);
    }
    orbit_ledger_pipe_stats_t st;
    orbit_ledger_pipe_stats(pp, &st);
    fprintf(stderr,
            "ledger_load: pipe: %d committed, %d conflicts, %d without an outcome; %llu "
            "requests, %llu resent\n",
            committed, conflicts, failures, (unsigned long long)st.requests,
            (unsigned long long)st.resent);
    orbit_ledger_pipe_destroy(&pp);
    free(xs);
    free(done);
    return failures ? 1 : 0;
}

/* Send one ProposeBatch of n proposals (ps) and return the reply. */
static Orbit__Ledger__Reply *batch_call(orbit_ledger_client_t *c, Orbit__Ledger__Proposal **ps,
                                        size_t n)
{
    Orbit__Ledger__ProposeBatch b = ORBIT__LEDGER__PROPOSE_BATCH__INIT;
    b.proposals = ps;
    b.n_proposals = n;
    Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
    req.op_case = ORBIT__LEDGER__REQUEST__OP_PROPOSE_BATCH;
    req.propose_batch = &b;
    Orbit__Ledger__Reply *r = NULL;
    return orbit_ledger_client_call(c, &req, 5000, &r) == ORBIT_OK ? r : NULL;
}

/* Send the encoded Request body[0..len) to each replica in turn on a
 * DEALER socket of its own; the first reply that is not "not leader". */
static Orbit__Ledger__Reply *raw_call(orbit_ledger_client_t *c, const uint8_t *body, size_t len)
{
    for (int i = 0; i < orbit_ledger_client_replicas(c); i++) {
        zsock_t *s = zsock_new_dealer(orbit_ledger_client_endpoint(c, i));
        if (!s)
            continue;
        zsock_set_rcvtimeo(s, 5000);
        zframe_t *f = zframe_new(NULL, ORBIT_WIRE_HDR + len);
        uint8_t *d = zframe_data(f);
        d[0] = ORBIT_WIRE_MAGIC;
        d[1] = ORBIT_WIRE_MAJOR;
        d[2] = ORBIT_WIRE_MINOR;
        d[3] = ORBIT_MSG_LEDGER_REQUEST;
        memcpy(d + ORBIT_WIRE_HDR, body, len);
        zframe_send(&f, s, 0);
        zframe_t *in = zframe_recv(s);
        zsock_destroy(&s);
        ProtobufCMessage *m = NULL;
        if (!in)
            continue;
        int rc = orbit_wire_decode(zframe_data(in), zframe_size(in), ORBIT_MSG_LEDGER_REPLY, NULL,
                                   NULL, &m);
        zframe_destroy(&in);
        if (rc != ORBIT_OK)
            continue;
        Orbit__Ledger__Reply *r = (Orbit__Ledger__Reply *)m;
        if (!r->not_leader)
            return r;
        orbit__ledger__reply__free_unpacked(r, NULL);
    }
    return NULL;
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("batch-check failed: " __VA_ARGS__);                                            \
            printf("\n");                                                                          \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static int batch_check(const char *roots)
{
    char err[256];
    orbit_ledger_client_t *c = orbit_ledger_client_new(roots, "batch-check", err, sizeof err);
    if (!c)
        return 2;
    /* Empty and oversized batches: refused with a reason, nothing applied. */
    Orbit__Ledger__Reply *r = batch_call(c, NULL, 0);
    CHECK(r && r->error && strstr(r->error, "1 to"), "empty batch: %s", r ? r->error : "no reply");
    orbit__ledger__reply__free_unpacked(r, NULL);
    size_t big = ORBIT_LEDGER_BATCH_MAX + 1;
    place_t *xs = calloc(big, sizeof *xs);
    Orbit__Ledger__Proposal **ps = calloc(big, sizeof *ps);
    CHECK(xs && ps, "out of memory");
    for (size_t i = 0; i < big; i++) {
        snprintf(xs[i].capsule, sizeof xs[i].capsule, "big-%zu", i);
        place_build(&xs[i], "bc-node", 1000000);
        orbit_ledger_client_stamp(c, &xs[i].p);
        ps[i] = &xs[i].p;
    }
    r = batch_call(c, ps, big);
    CHECK(r && r->error && strstr(r->error, "1 to 1024"), "oversized batch: %s",
          r ? r->error : "no reply");
    orbit__ledger__reply__free_unpacked(r, NULL);
    /* committed, conflict (the same capsule again), invalid (empty node) */
    place_t *x = xs;
    snprintf(x[0].capsule, sizeof x[0].capsule, "bc-one");
    snprintf(x[1].capsule, sizeof x[1].capsule, "bc-one");
    snprintf(x[2].capsule, sizeof x[2].capsule, "bc-two");
    place_build(&x[2], "", 1000000);
    orbit_ledger_client_stamp(c, &x[2].p);
    Orbit__Ledger__OutcomeKind want[3] = {ORBIT__LEDGER__OUTCOME_KIND__COMMITTED,
                                          ORBIT__LEDGER__OUTCOME_KIND__CONFLICT,
                                          ORBIT__LEDGER__OUTCOME_KIND__INVALID};
    uint64_t first_index = 0;
    for (int round = 0; round < 2; round++) { /* the second: a retry, same ids */
        r = batch_call(c, ps, 3);
        CHECK(r && r->n_results == 3, "3-batch: %s", r && r->error ? r->error : "no results");
        for (int i = 0; i < 3; i++) {
            Orbit__Ledger__Outcome *o = r->results[i]->outcome;
            CHECK(o && o->kind == want[i], "round %d result %d: kind %d, error %s", round, i,
                  o ? (int)o->kind : -1, r->results[i]->error ? r->results[i]->error : "-");
        }
        CHECK(!strcmp(r->results[1]->outcome->which, "capsule_placed"), "conflict which %s",
              r->results[1]->outcome->which);
        if (round == 0)
            first_index = r->results[0]->outcome->index;
        else
            CHECK(r->results[0]->outcome->index == first_index,
                  "retry answered index %llu, first %llu",
                  (unsigned long long)r->results[0]->outcome->index,
                  (unsigned long long)first_index);
        orbit__ledger__reply__free_unpacked(r, NULL);
    }
    /* propose_batch twice: {bc-split-1}, then {bc-split-2} */
    uint8_t p1[512], p2[512], b1[600], b2[600], req[1300];
    snprintf(x[3].capsule, sizeof x[3].capsule, "bc-split-1");
    snprintf(x[4].capsule, sizeof x[4].capsule, "bc-split-2");
    size_t l1 = orbit__ledger__proposal__pack(&x[3].p, p1);
    size_t l2 = orbit__ledger__proposal__pack(&x[4].p, p2);
    uint32_t bf = orbit_pb_field_number(&orbit__ledger__request__descriptor, "propose_batch");
    uint32_t pf = orbit_pb_field_number(&orbit__ledger__propose_batch__descriptor, "proposals");
    size_t n1 = orbit_pb_put_bytes_field(b1, pf, p1, l1);
    size_t n2 = orbit_pb_put_bytes_field(b2, pf, p2, l2);
    size_t rl = orbit_pb_put_varint_field(req, 1, 77);
    rl += orbit_pb_put_bytes_field(req + rl, bf, b1, n1);
    rl += orbit_pb_put_bytes_field(req + rl, bf, b2, n2);
    r = raw_call(c, req, rl);
    CHECK(r && r->n_results == 1 && r->results[0]->outcome &&
              r->results[0]->outcome->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED,
          "split batch: %zu results, error %s", r ? r->n_results : 0,
          r && r->error ? r->error : "-");
    orbit__ledger__reply__free_unpacked(r, NULL);
    char *json = NULL;
    char gerr[256] = "";
    int grc = orbit_ledger_client_get(c, "placement/bc-split-2", false, 5000, &json, NULL, gerr,
                                      sizeof gerr);
    CHECK(grc == ORBIT_OK && json && strstr(json, "bc-node"), "bc-split-2 not placed (%d)", grc);
    free(json);
    json = NULL;
    grc = orbit_ledger_client_get(c, "placement/bc-split-1", false, 5000, &json, NULL, gerr,
                                  sizeof gerr);
    CHECK(grc == ORBIT_ENOTFOUND || (json && !strstr(json, "bc-node")),
          "bc-split-1, in the occurrence decoding drops, was placed: %s", json ? json : "-");
    free(json);
    printf("batch-check ok (committed at %llu, the same on retry)\n",
           (unsigned long long)first_index);
    free(xs);
    free(ps);
    orbit_ledger_client_destroy(&c);
    return 0;
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
    if (argc >= 4 && !strcmp(argv[2], "pipe"))
        return pipe_place(argv[1], argc - 3, argv + 3);
    if (argc == 3 && !strcmp(argv[2], "batch-check"))
        return batch_check(argv[1]);
    if (argc == 4 && !strcmp(argv[2], "verify"))
        return verify(argv[1], argv[3]);
    fprintf(stderr, "usage: ledger_load ROOTS place NODE CAPACITY_M PROPOSERS COUNT [PREFIX]\n"
                    "       ledger_load ROOTS pipe NODE CAPACITY_M INFLIGHT COUNT [PREFIX]\n"
                    "       ledger_load ROOTS batch-check\n"
                    "       ledger_load ENDPOINT verify FILE\n");
    return 2;
}
