/* test_ledger_pipe: the pipelined ledger client against fake replicas
 * (ROUTER sockets on loopback served from the test's own thread) — batches
 * of at most ORBIT_LEDGER_BATCH_MAX, every outcome to its own proposal,
 * "not leader" followed, a silent replica left after its attempt time and
 * skipped for a while after,
 * per-proposal "retry" answers sent again with the same ids, deadlines
 * answered ORBIT_ETIMEDOUT, unstamped proposals refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "orbit_err.h"
#include "orbit_ledger_pipe.h"
#include "orbit_wire.h"

typedef enum { SILENT, NOT_LEADER, LEADER, LEADER_RETRY_ODD, RETRY_ALL } mode_t_;

typedef struct {
    zsock_t *router;
    char endpoint[64];
    mode_t_ mode;
    orbit_rx_t rx;
    int requests, max_batch;
    uint64_t seen[8192]; /* request ids of proposals answered "retry" */
    int nseen;
    uint64_t resent_ok; /* retried proposals that came back with the same id */
    bool hold_first;    /* keep the first request unanswered until released */
    Orbit__Ledger__Request *held;
    uint8_t held_rid[ORBIT_ROUTING_ID_MAX];
    size_t held_rid_len;
} fake_t;

static void fake_start(fake_t *f, mode_t_ mode)
{
    memset(f, 0, sizeof *f);
    f->router = zsock_new_router("@tcp://127.0.0.1:*");
    assert_non_null(f->router);
    char *ep = zsock_last_endpoint(f->router);
    assert_non_null(ep);
    snprintf(f->endpoint, sizeof f->endpoint, "%s", ep);
    free(ep);
    f->mode = mode;
    orbit_rx_init(&f->rx);
}

static void fake_stop(fake_t *f)
{
    orbit_rx_close(&f->rx);
    zsock_destroy(&f->router);
}

static bool seen_before(fake_t *f, uint64_t id)
{
    for (int i = 0; i < f->nseen; i++)
        if (f->seen[i] == id)
            return true;
    return false;
}

/* Answer req (freed here) from routing id rid: a committed outcome whose
 * index is the proposal's request id, so the test can check who got what. */
static void fake_answer(fake_t *f, Orbit__Ledger__Request *req, const uint8_t *rid, size_t rid_len)
{
    if (f->mode == SILENT) {
        orbit__ledger__request__free_unpacked(req, NULL);
        return;
    }
    size_t n = req->propose_batch->n_proposals;
    Orbit__Ledger__Reply rep = ORBIT__LEDGER__REPLY__INIT;
    rep.request_id = req->request_id;
    Orbit__Ledger__BatchResult *res = calloc(n, sizeof *res), **resp = calloc(n, sizeof *resp);
    Orbit__Ledger__Outcome *outs = calloc(n, sizeof *outs);
    assert_true(res && resp && outs);
    if (f->mode == NOT_LEADER) {
        rep.has_not_leader = rep.not_leader = true;
    } else {
        for (size_t i = 0; i < n; i++) {
            Orbit__Ledger__Proposal *p = req->propose_batch->proposals[i];
            orbit__ledger__batch_result__init(&res[i]);
            resp[i] = &res[i];
            bool retry =
                f->mode == RETRY_ALL || (f->mode == LEADER_RETRY_ODD && (p->request_id & 1) &&
                                         !seen_before(f, p->request_id));
            if (retry) {
                assert_true(f->nseen < 8192);
                if (f->mode == LEADER_RETRY_ODD)
                    f->seen[f->nseen++] = p->request_id;
                res[i].error = "not committed (leadership changed); retry";
                continue;
            }
            if (seen_before(f, p->request_id))
                f->resent_ok++;
            orbit__ledger__outcome__init(&outs[i]);
            outs[i].kind = ORBIT__LEDGER__OUTCOME_KIND__COMMITTED;
            outs[i].has_index = true;
            outs[i].index = p->request_id;
            res[i].outcome = &outs[i];
        }
        rep.results = resp;
        rep.n_results = n;
    }
    assert_int_equal(orbit_wire_send(f->router, rid, rid_len, ORBIT_MSG_LEDGER_REPLY, &rep.base),
                     ORBIT_OK);
    free(res), free(resp), free(outs);
    orbit__ledger__request__free_unpacked(req, NULL);
}

/* Answer every request queued on f (the first one held when asked). */
static void fake_serve(fake_t *f)
{
    while (orbit_wire_recv(f->router, 1, &f->rx) == ORBIT_OK) {
        ProtobufCMessage *m = NULL;
        assert_int_equal(orbit_wire_decode(orbit_rx_data(&f->rx), orbit_rx_size(&f->rx),
                                           ORBIT_MSG_LEDGER_REQUEST, NULL, NULL, &m),
                         ORBIT_OK);
        Orbit__Ledger__Request *req = (Orbit__Ledger__Request *)m;
        assert_int_equal(req->op_case, ORBIT__LEDGER__REQUEST__OP_PROPOSE_BATCH);
        size_t n = req->propose_batch->n_proposals;
        assert_true(n >= 1 && n <= ORBIT_LEDGER_BATCH_MAX);
        f->requests++;
        if ((int)n > f->max_batch)
            f->max_batch = (int)n;
        if (f->hold_first && !f->held && f->requests == 1) {
            f->held = req;
            memcpy(f->held_rid, f->rx.rid, f->rx.rid_len);
            f->held_rid_len = f->rx.rid_len;
            continue;
        }
        fake_answer(f, req, f->rx.rid, f->rx.rid_len);
    }
}

static void fake_release(fake_t *f)
{
    if (f->held)
        fake_answer(f, f->held, f->held_rid, f->held_rid_len);
    f->held = NULL;
}

typedef struct {
    Orbit__Ledger__Proposal p;
    Orbit__Ledger__Commitment cm;
    Orbit__Ledger__Lease lease;
    char name[32];
    int done, rc;
    uint64_t index;
} prop_t;

static prop_t *props_new(orbit_ledger_pipe_t *pp, int n)
{
    prop_t *xs = calloc((size_t)n, sizeof *xs);
    assert_non_null(xs);
    for (int i = 0; i < n; i++) {
        prop_t *x = &xs[i];
        snprintf(x->name, sizeof x->name, "lease-%d", i);
        orbit__ledger__lease__init(&x->lease);
        x->lease.resource = x->name;
        orbit__ledger__commitment__init(&x->cm);
        x->cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_LEASE;
        x->cm.lease = &x->lease;
        orbit__ledger__proposal__init(&x->p);
        x->p.commitment = &x->cm;
        orbit_ledger_pipe_stamp(pp, &x->p);
    }
    return xs;
}

/* Submit xs[from..to) with a timeout of ms each. */
static void submit_range(orbit_ledger_pipe_t *pp, prop_t *xs, int from, int to, int ms)
{
    for (int i = from; i < to; i++)
        assert_int_equal(orbit_ledger_pipe_submit(pp, &xs[i].p, ms, &xs[i]), ORBIT_OK);
}

/* Every one of xs[from..to) completed with an outcome. */
static void assert_all_ok(const prop_t *xs, int from, int to)
{
    for (int i = from; i < to; i++)
        assert_int_equal(xs[i].rc, ORBIT_OK);
}

/* Turn the crank until nothing is pending or ms pass: the pipe sends and
 * collects, the fakes answer. Returns completions seen. */
static int crank(orbit_ledger_pipe_t *pp, fake_t **fakes, int nf, int ms)
{
    orbit_ledger_done_t done[512];
    int got = 0;
    int64_t end = zclock_mono() + ms;
    while (orbit_ledger_pipe_pending(pp) && zclock_mono() < end) {
        size_t n = 0;
        assert_int_equal(orbit_ledger_pipe_wait(pp, 2, done, 512, &n), ORBIT_OK);
        for (size_t i = 0; i < n; i++) {
            prop_t *x = done[i].cookie;
            assert_int_equal(x->done, 0); /* exactly one completion each */
            x->done = 1;
            x->rc = done[i].rc;
            if (done[i].rc == ORBIT_OK) {
                assert_non_null(done[i].outcome);
                x->index = done[i].outcome->index;
                orbit__ledger__outcome__free_unpacked(done[i].outcome, NULL);
            } else {
                assert_null(done[i].outcome);
            }
            assert_true(done[i].latency_us >= 0);
            got++;
        }
        for (int k = 0; k < nf; k++)
            fake_serve(fakes[k]);
    }
    return got;
}

static void test_batches_every_outcome_to_its_proposal(void **state)
{
    (void)state;
    fake_t f;
    fake_start(&f, LEADER);
    char err[256];
    orbit_ledger_pipe_t *pp = orbit_ledger_pipe_new(f.endpoint, "pipe-test", err, sizeof err);
    assert_non_null(pp);
    enum { N = 2500 };
    prop_t *xs = props_new(pp, N);
    submit_range(pp, xs, 0, N, 10000);
    assert_int_equal(orbit_ledger_pipe_pending(pp), N);
    fake_t *fs[] = {&f};
    assert_int_equal(crank(pp, fs, 1, 10000), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(xs[i].rc, ORBIT_OK);
        assert_int_equal(xs[i].index, xs[i].p.request_id);
    }
    /* Sent in batches, none above the limit. */
    assert_true(f.requests >= 3 && f.requests < 100);
    assert_int_equal(f.max_batch, ORBIT_LEDGER_BATCH_MAX);
    orbit_ledger_pipe_stats_t st;
    orbit_ledger_pipe_stats(pp, &st);
    assert_int_equal(st.submitted, N);
    assert_int_equal(st.completed, N);
    assert_int_equal(st.timed_out, 0);
    assert_int_equal(st.requests, (uint64_t)f.requests);
    orbit_ledger_pipe_destroy(&pp);
    assert_null(pp);
    free(xs);
    fake_stop(&f);
}

static void test_follows_not_leader(void **state)
{
    (void)state;
    fake_t a, b;
    fake_start(&a, NOT_LEADER);
    fake_start(&b, LEADER);
    char roots[160], err[256];
    snprintf(roots, sizeof roots, "%s,%s", a.endpoint, b.endpoint);
    orbit_ledger_pipe_t *pp = orbit_ledger_pipe_new(roots, NULL, err, sizeof err);
    assert_non_null(pp);
    prop_t *xs = props_new(pp, 50);
    submit_range(pp, xs, 0, 50, 10000);
    fake_t *fs[] = {&a, &b};
    assert_int_equal(crank(pp, fs, 2, 10000), 50);
    for (int i = 0; i < 50; i++)
        assert_int_equal(xs[i].index, xs[i].p.request_id);
    assert_true(a.requests >= 1);
    orbit_ledger_pipe_stats_t st;
    orbit_ledger_pipe_stats(pp, &st);
    assert_true(st.not_leader >= 1);
    assert_true(st.resent >= 50);
    /* The pipe remembers the leader: later proposals go to b directly. */
    int before = a.requests;
    prop_t *ys = props_new(pp, 10);
    submit_range(pp, ys, 0, 10, 10000);
    assert_int_equal(crank(pp, fs, 2, 10000), 10);
    assert_int_equal(a.requests, before);
    orbit_ledger_pipe_destroy(&pp);
    free(xs);
    free(ys);
    fake_stop(&a);
    fake_stop(&b);
}

static void test_silent_replica_left_behind(void **state)
{
    (void)state;
    fake_t a, b;
    fake_start(&a, SILENT);
    fake_start(&b, LEADER);
    char roots[160], err[256];
    snprintf(roots, sizeof roots, "%s,%s", a.endpoint, b.endpoint);
    orbit_ledger_pipe_t *pp = orbit_ledger_pipe_new(roots, NULL, err, sizeof err);
    assert_non_null(pp);
    prop_t *xs = props_new(pp, 20);
    /* A 3 s timeout: the silent replica is left after its attempt time
     * (1 s), well before the proposals' deadline. */
    int64_t t0 = zclock_mono();
    submit_range(pp, xs, 0, 20, 3000);
    fake_t *fs[] = {&a, &b};
    assert_int_equal(crank(pp, fs, 2, 10000), 20);
    int64_t ms = zclock_mono() - t0;
    orbit_ledger_pipe_stats_t st;
    orbit_ledger_pipe_stats(pp, &st);
    assert_true(st.resent >= 20);
    assert_all_ok(xs, 0, 20);
    assert_true(ms >= 900); /* all OK: moved on before the 3 s deadline */
    assert_true(a.requests >= 1 && b.requests >= 1);
    orbit_ledger_pipe_destroy(&pp);
    free(xs);
    fake_stop(&a);
    fake_stop(&b);
}

/* After a replica left a request unanswered, the pipe skips it while it
 * looks for the new leader among the others (a dead leader costs one
 * attempt time, not one per round). */
static void test_silent_replica_skipped(void **state)
{
    (void)state;
    fake_t a, b, c;
    fake_start(&a, SILENT);
    fake_start(&b, LEADER);
    fake_start(&c, NOT_LEADER);
    char roots[240], err[256];
    snprintf(roots, sizeof roots, "%s,%s,%s", a.endpoint, b.endpoint, c.endpoint);
    orbit_ledger_pipe_t *pp = orbit_ledger_pipe_new(roots, NULL, err, sizeof err);
    assert_non_null(pp);
    fake_t *fs[] = {&a, &b, &c};
    prop_t *xs = props_new(pp, 30);
    submit_range(pp, xs, 0, 10, 5000); /* a is left after one second, b answers */
    assert_int_equal(crank(pp, fs, 3, 10000), 10);
    b.mode = NOT_LEADER; /* leadership moves to c */
    c.mode = LEADER;
    submit_range(pp, xs, 10, 20, 5000);
    assert_int_equal(crank(pp, fs, 3, 10000), 10);
    c.mode = NOT_LEADER; /* and back to b: the way from c to b passes a */
    b.mode = LEADER;
    int a_before = a.requests;
    int64_t t0 = zclock_mono();
    submit_range(pp, xs, 20, 30, 5000);
    assert_int_equal(crank(pp, fs, 3, 10000), 10);
    assert_int_equal(a.requests, a_before); /* a was skipped */
    assert_true(zclock_mono() - t0 < 900);  /* no attempt time spent on it */
    assert_all_ok(xs, 0, 30);
    orbit_ledger_pipe_destroy(&pp);
    free(xs);
    fake_stop(&a);
    fake_stop(&b);
    fake_stop(&c);
}

/* A leader that answers one batch late (it spans several entries) but
 * answers others meanwhile is not taken for silent: nothing is resent. */
static void test_busy_leader_not_silent(void **state)
{
    (void)state;
    fake_t f;
    fake_start(&f, LEADER);
    f.hold_first = true;
    char err[256];
    orbit_ledger_pipe_t *pp = orbit_ledger_pipe_new(f.endpoint, NULL, err, sizeof err);
    assert_non_null(pp);
    fake_t *fs[] = {&f};
    prop_t *xs = props_new(pp, 45);
    submit_range(pp, xs, 0, 5, 5000);
    int64_t end = zclock_mono() + 1500; /* past the 1 s attempt time */
    int next = 5, got = 0;
    while (zclock_mono() < end) {
        if (next < 45 && f.requests >= 1) {
            assert_int_equal(orbit_ledger_pipe_submit(pp, &xs[next].p, 5000, &xs[next]), ORBIT_OK);
            next++;
        }
        got += crank(pp, fs, 1, 40);
    }
    assert_true(got >= 10); /* others were answered while one batch waited */
    for (; next < 45; next++)
        assert_int_equal(orbit_ledger_pipe_submit(pp, &xs[next].p, 5000, &xs[next]), ORBIT_OK);
    fake_release(&f);
    got += crank(pp, fs, 1, 5000);
    assert_int_equal(got, 45);
    assert_all_ok(xs, 0, 45);
    orbit_ledger_pipe_stats_t st;
    orbit_ledger_pipe_stats(pp, &st);
    assert_int_equal(st.resent, 0);
    orbit_ledger_pipe_destroy(&pp);
    free(xs);
    fake_stop(&f);
}

/* Retry answers back off (5 ms doubling) instead of a request/error loop. */
static void test_retry_answers_back_off(void **state)
{
    (void)state;
    fake_t f;
    fake_start(&f, RETRY_ALL);
    char err[256];
    orbit_ledger_pipe_t *pp = orbit_ledger_pipe_new(f.endpoint, NULL, err, sizeof err);
    assert_non_null(pp);
    fake_t *fs[] = {&f};
    prop_t *xs = props_new(pp, 4);
    submit_range(pp, xs, 0, 4, 5000);
    assert_int_equal(crank(pp, fs, 1, 400), 0);
    /* 5 + 10 + 20 + 40 + 80 + 160 ms: about 7 requests in 400 ms, not hundreds */
    assert_true(f.requests >= 3 && f.requests <= 12);
    f.mode = LEADER;
    assert_int_equal(crank(pp, fs, 1, 5000), 4);
    assert_all_ok(xs, 0, 4);
    orbit_ledger_pipe_destroy(&pp);
    free(xs);
    fake_stop(&f);
}

static void test_retry_answers_keep_ids(void **state)
{
    (void)state;
    fake_t f;
    fake_start(&f, LEADER_RETRY_ODD);
    char err[256];
    orbit_ledger_pipe_t *pp = orbit_ledger_pipe_new(f.endpoint, NULL, err, sizeof err);
    assert_non_null(pp);
    prop_t *xs = props_new(pp, 100);
    submit_range(pp, xs, 0, 100, 10000);
    fake_t *fs[] = {&f};
    assert_int_equal(crank(pp, fs, 1, 10000), 100);
    /* The odd request ids were answered "retry" once and came back with
     * the same id; every proposal ended with its own outcome. */
    assert_int_equal(f.nseen, 50);
    assert_int_equal(f.resent_ok, 50);
    for (int i = 0; i < 100; i++)
        assert_int_equal(xs[i].index, xs[i].p.request_id);
    orbit_ledger_pipe_destroy(&pp);
    free(xs);
    fake_stop(&f);
}

static void test_deadline_and_bad_submit(void **state)
{
    (void)state;
    fake_t f;
    fake_start(&f, SILENT);
    char err[256];
    orbit_ledger_pipe_t *pp = orbit_ledger_pipe_new(f.endpoint, NULL, err, sizeof err);
    assert_non_null(pp);
    prop_t *xs = props_new(pp, 5);
    submit_range(pp, xs, 0, 5, 150);
    fake_t *fs[] = {&f};
    assert_int_equal(crank(pp, fs, 1, 5000), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(xs[i].rc, ORBIT_ETIMEDOUT);
    orbit_ledger_pipe_stats_t st;
    orbit_ledger_pipe_stats(pp, &st);
    assert_int_equal(st.timed_out, 5);
    assert_int_equal(orbit_ledger_pipe_pending(pp), 0);
    /* Unstamped: refused, nothing pending. */
    Orbit__Ledger__Proposal p = ORBIT__LEDGER__PROPOSAL__INIT;
    assert_int_equal(orbit_ledger_pipe_submit(pp, &p, 1000, NULL), ORBIT_EINVAL);
    assert_int_equal(orbit_ledger_pipe_submit(pp, NULL, 1000, NULL), ORBIT_EINVAL);
    assert_int_equal(orbit_ledger_pipe_pending(pp), 0);
    /* Bad endpoints: refused with a reason. */
    assert_null(orbit_ledger_pipe_new("", NULL, err, sizeof err));
    assert_true(strlen(err) > 0);
    orbit_ledger_pipe_destroy(&pp);
    orbit_ledger_pipe_destroy(&pp); /* NULL-safe */
    free(xs);
    fake_stop(&f);
}

int main(void)
{
    zsys_init();
    zsys_set_linger(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_every_outcome_to_its_proposal),
        cmocka_unit_test(test_follows_not_leader),
        cmocka_unit_test(test_silent_replica_left_behind),
        cmocka_unit_test(test_silent_replica_skipped),
        cmocka_unit_test(test_retry_answers_keep_ids),
        cmocka_unit_test(test_busy_leader_not_silent),
        cmocka_unit_test(test_retry_answers_back_off),
        cmocka_unit_test(test_deadline_and_bad_submit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
