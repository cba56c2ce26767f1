/* test_sched_reaper: the reaper's decisions over a hand-built view — the
 * grace period (timed from when this holder first saw the node down, afresh
 * for a new holding), the token bucket, the disruption stop, unreachable
 * nodes never reaped, gangs revoked as a whole — and its lease: nothing
 * without it, revocations fenced with the latest renewal's index, fenced
 * outcomes ending the holding (but not those overtaken by its own renewal),
 * and no action once the local age of the renewal reaches the ttl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "orbit_sched_reaper.h"
#include "test_sched_util.h"

#define GRACE 30000
#define TTL   5000

typedef struct {
    orbit_sched_view_t *v;
    orbit_sched_reaper_t *r;
    orbit_sched_reap_t out[64];
} fx_t;

static int setup_rate(void **state, uint32_t rate, bool trust)
{
    fx_t *f = calloc(1, sizeof *f);
    orbit_sched_reaper_cfg_t c;
    orbit_sched_reaper_cfg_default(&c);
    c.holder = "sched-a";
    c.ttl_ms = TTL;
    c.grace_ms = GRACE;
    c.rate = rate;
    c.max_down_pct = 10;
    c.trust_lease = trust;
    f->v = orbit_sched_view_new();
    f->r = orbit_sched_reaper_new(&c);
    *state = f;
    return f->v && f->r ? 0 : -1;
}

static int setup(void **state)
{
    return setup_rate(state, 1000, false);
}

static int setup_slow(void **state)
{
    return setup_rate(state, 2, false);
}

static int setup_trust(void **state)
{
    return setup_rate(state, 1000, true);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    orbit_sched_reaper_destroy(&f->r);
    orbit_sched_view_destroy(&f->v);
    free(f);
    return 0;
}

/* A lease outcome as the ledger gives it. */
static void lease_outcome(fx_t *f, int64_t sent, Orbit__Ledger__OutcomeKind kind, uint64_t index,
                          uint64_t epoch)
{
    Orbit__Ledger__Outcome o = ORBIT__LEDGER__OUTCOME__INIT;
    char obs[96];
    o.kind = kind;
    o.has_index = kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED;
    o.index = index;
    if (kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED)
        snprintf(obs, sizeof obs, "epoch=%" PRIu64 ",expires=%" PRId64, epoch,
                 (int64_t)(T0 + sent + TTL));
    else {
        o.which = "lease_held";
        snprintf(obs, sizeof obs, "holder=sched-b,expires=%" PRId64, (int64_t)(T0 + sent + TTL));
    }
    o.observed = obs;
    orbit_sched_reaper_lease_result(f->r, sent, ORBIT_OK, &o);
}

/* Ten alive nodes n0..n9 with a placement each (n9's in a gang of two
 * with one on n8), then n0 reported DOWN at now. */
static void fleet(fx_t *f)
{
    char n[16], c[32];
    for (int i = 0; i < 10; i++) {
        snprintf(n, sizeof n, "n%d", i);
        alive(f->v, n, 8000, 8 * GIB, 0);
        if (i < 8) {
            snprintf(c, sizeof c, "m/w/%d", i);
            place(f->v, c, n, 100, 1, 0);
        }
    }
    commit(f->v, "{'gang_placement':{'gang':'m/g','members':["
                 "{'capsule':'m/g/0','node':'n8','envelope':{'cpu_m':1}},"
                 "{'capsule':'m/g/1','node':'n9','envelope':{'cpu_m':1}}]}}");
}

static size_t decide(fx_t *f, int64_t now)
{
    return orbit_sched_reaper_decide(f->r, f->v, now, NULL, NULL, f->out, 64);
}

static orbit_sched_reaper_stats_t stats(fx_t *f)
{
    orbit_sched_reaper_stats_t s;
    orbit_sched_reaper_stats(f->r, &s);
    return s;
}

static void test_lease_needed(void **state)
{
    fx_t *f = *state;
    fleet(f);
    status(f->v, "n0", ORBIT__NODE_STATUS__DOWN, 0);
    assert_true(orbit_sched_reaper_lease_due(f->r, 0));
    Orbit__Ledger__Lease l;
    Orbit__Ledger__Commitment cm;
    orbit_sched_reaper_lease_commitment(f->r, 1, &l, &cm);
    assert_string_equal(l.holder, "sched-a");
    assert_string_equal(l.resource, "reaper");
    assert_int_equal(l.ttl_ms, TTL);
    assert_false(orbit_sched_reaper_lease_due(f->r, 2));
    /* Held by another: nothing, campaign again after ttl/3. */
    lease_outcome(f, 1, ORBIT__LEDGER__OUTCOME_KIND__CONFLICT, 0, 0);
    assert_int_equal(decide(f, GRACE * 3), 0);
    assert_false(orbit_sched_reaper_lease_due(f->r, 1 + TTL / 3 - 1));
    assert_true(orbit_sched_reaper_lease_due(f->r, 1 + TTL / 3));
    /* A transport error teaches nothing. */
    orbit_sched_reaper_lease_result(f->r, 5, ORBIT_ETIMEDOUT, NULL);
    assert_false(stats(f).held);
}

static void acquire(fx_t *f, int64_t sent, uint64_t index, uint64_t epoch)
{
    Orbit__Ledger__Lease l;
    Orbit__Ledger__Commitment cm;
    orbit_sched_reaper_lease_commitment(f->r, sent, &l, &cm);
    lease_outcome(f, sent, ORBIT__LEDGER__OUTCOME_KIND__COMMITTED, index, epoch);
}

static void test_grace(void **state)
{
    fx_t *f = *state;
    fleet(f);
    acquire(f, 0, 40, 1);
    assert_true(stats(f).held);
    assert_int_equal(stats(f).lease_index, 40);
    status(f->v, "n0", ORBIT__NODE_STATUS__DOWN, 1000);
    /* The timer starts when this holder first sees it down (t = 1000). */
    for (int64_t t = 1000; t <= 1000 + GRACE; t += 1000) {
        acquire(f, t, 40 + (uint64_t)t / 1000, 1); /* renewals: same epoch */
        assert_int_equal(decide(f, t), 0);
    }
    acquire(f, 1000 + GRACE, 100, 1);
    assert_int_equal(decide(f, 1000 + GRACE + 1), 1);
    assert_int_equal(f->out[0].kind, ORBIT__LEDGER__REF_KIND__REF_PLACEMENT);
    assert_string_equal(f->out[0].key, "m/w/0");
    assert_string_equal(f->out[0].node, "n0");
    /* The action is fenced with the latest renewal's index. */
    orbit_sched_act_t *a = orbit_sched_reaper_act(f->r, "sched-a-1", &f->out[0]);
    assert_non_null(a);
    assert_int_equal(a->why, ORBIT_SCHED_WHY_REAPED);
    assert_int_equal(a->fence_index, 100);
    const Orbit__Ledger__Precondition *pre = a->prop->precondition;
    assert_int_equal(pre->n_unchanged_since, 1);
    assert_string_equal(pre->unchanged_since[0]->key, "lease/reaper");
    assert_int_equal(pre->unchanged_since[0]->index, 100);
    assert_int_equal(a->prop->commitment->revocation->what->kind,
                     ORBIT__LEDGER__REF_KIND__REF_PLACEMENT);
    orbit_sched_act_destroy(&a);
    /* Back alive: the timer stops; down again: it starts over. */
    status(f->v, "n0", ORBIT__NODE_STATUS__ALIVE, 32000);
    acquire(f, 32000, 101, 1);
    assert_int_equal(decide(f, 32000), 0);
    status(f->v, "n0", ORBIT__NODE_STATUS__DOWN, 33000);
    assert_int_equal(decide(f, 33000), 0);
    acquire(f, 33000 + GRACE, 102, 1);
    assert_int_equal(decide(f, 33000 + GRACE), 0);
    assert_int_equal(decide(f, 33000 + GRACE + 1), 1);
}

static void test_new_holding_restarts_timers(void **state)
{
    fx_t *f = *state;
    fleet(f);
    acquire(f, 0, 10, 1);
    status(f->v, "n0", ORBIT__NODE_STATUS__DOWN, 0);
    assert_int_equal(decide(f, 0), 0);
    /* Lost, then held again with a new epoch: its timers start afresh. */
    lease_outcome(f, 1000, ORBIT__LEDGER__OUTCOME_KIND__CONFLICT, 0, 0);
    assert_false(stats(f).held);
    acquire(f, 20000, 50, 2);
    assert_int_equal(stats(f).acquired, 2);
    assert_int_equal(decide(f, 20000), 0);
    acquire(f, GRACE + 1, 51, 2);
    assert_int_equal(decide(f, GRACE + 1), 0); /* down since 20000 for this holding */
    acquire(f, 20000 + GRACE, 52, 2);
    assert_int_equal(decide(f, 20000 + GRACE + 1), 1);
}

static void test_gang_and_unreachable(void **state)
{
    fx_t *f = *state;
    fleet(f);
    acquire(f, 0, 10, 1);
    status(f->v, "n9", ORBIT__NODE_STATUS__DOWN, 0);
    assert_int_equal(decide(f, 0), 0);
    acquire(f, GRACE + 1, 11, 1);
    assert_int_equal(decide(f, GRACE + 1), 1);
    assert_int_equal(f->out[0].kind, ORBIT__LEDGER__REF_KIND__REF_GANG);
    assert_string_equal(f->out[0].key, "m/g");
    /* Unreachable (the observers failed), for however long: nothing. */
    status(f->v, "n9", ORBIT__NODE_STATUS__ALIVE, GRACE + 2);
    status(f->v, "n3", ORBIT__NODE_STATUS__UNREACHABLE, GRACE + 2);
    for (int64_t t = GRACE + 2; t < 5 * GRACE; t += GRACE / 2) {
        acquire(f, t, 12 + (uint64_t)t, 1);
        assert_int_equal(decide(f, t), 0);
    }
}

static bool busy_w0(void *arg, Orbit__Ledger__RefKind kind, const char *key)
{
    (void)arg;
    return kind == ORBIT__LEDGER__REF_KIND__REF_PLACEMENT && !strcmp(key, "m/w/0");
}

static void test_busy(void **state)
{
    fx_t *f = *state;
    fleet(f);
    place(f->v, "m/x/0", "n0", 1, 1, 0);
    acquire(f, 0, 10, 1);
    status(f->v, "n0", ORBIT__NODE_STATUS__DOWN, 0);
    assert_int_equal(decide(f, 0), 0);
    acquire(f, GRACE + 1, 11, 1);
    size_t n = orbit_sched_reaper_decide(f->r, f->v, GRACE + 1, busy_w0, NULL, f->out, 64);
    assert_int_equal(n, 1);
    assert_string_equal(f->out[0].key, "m/x/0");
}

static void test_rate_limit(void **state)
{
    fx_t *f = *state; /* 2 per second, burst 2 */
    fleet(f);
    for (int i = 0; i < 5; i++) {
        char c[32];
        snprintf(c, sizeof c, "m/y/%d", i);
        place(f->v, c, "n1", 1, 1, 0);
    }
    acquire(f, 0, 10, 1);
    status(f->v, "n1", ORBIT__NODE_STATUS__DOWN, 0);
    assert_int_equal(decide(f, 0), 0);
    int64_t t = GRACE + 1;
    acquire(f, t, 11, 1);
    assert_int_equal(decide(f, t), 2); /* the burst */
    assert_int_equal(stats(f).rate_limited, 1);
    assert_int_equal(decide(f, t + 499), 0);
    assert_int_equal(decide(f, t + 500), 1); /* one token per 500 ms */
    assert_int_equal(decide(f, t + 1000), 1);
    /* Idle for long: never more than the burst at once. */
    acquire(f, t + 4000, 12, 1);
    assert_int_equal(decide(f, t + 4000), 2);
}

static void test_disruption(void **state)
{
    fx_t *f = *state; /* 10 nodes, 10 % */
    fleet(f);
    acquire(f, 0, 10, 1);
    status(f->v, "n0", ORBIT__NODE_STATUS__DOWN, 0);
    status(f->v, "n1", ORBIT__NODE_STATUS__UNREACHABLE, 0);
    assert_int_equal(decide(f, 0), 0);
    acquire(f, GRACE + 1, 11, 1);
    /* 2 of 10 dark (20 % > 10 %): nothing at all. */
    assert_int_equal(decide(f, GRACE + 1), 0);
    orbit_sched_reaper_stats_t s = stats(f);
    assert_int_equal(s.disruption_stops, 2); /* both decisions (logged once) */
    assert_int_equal(s.down, 1);
    assert_int_equal(s.dark, 2);
    assert_int_equal(s.fleet, 10);
    /* 1 of 10 (10 %, not more): the down node is reaped; its timer ran
     * all along. */
    status(f->v, "n1", ORBIT__NODE_STATUS__ALIVE, GRACE + 2);
    assert_int_equal(decide(f, GRACE + 2), 1);
    assert_string_equal(f->out[0].key, "m/w/0");
}

static orbit_sched_act_t *answered(fx_t *f, const orbit_sched_reap_t *d, const char *which)
{
    orbit_sched_act_t *a = orbit_sched_reaper_act(f->r, "p", d);
    a->rc = ORBIT_OK;
    a->outcome = malloc(sizeof *a->outcome);
    orbit__ledger__outcome__init(a->outcome);
    a->outcome->kind =
        which ? ORBIT__LEDGER__OUTCOME_KIND__CONFLICT : ORBIT__LEDGER__OUTCOME_KIND__COMMITTED;
    a->outcome->which = which ? strdup(which) : NULL;
    return a;
}

static void test_fencing(void **state)
{
    fx_t *f = *state;
    fleet(f);
    acquire(f, 0, 10, 1);
    status(f->v, "n0", ORBIT__NODE_STATUS__DOWN, 0);
    status(f->v, "n0", ORBIT__NODE_STATUS__DOWN, 0);
    assert_int_equal(decide(f, 0), 0);
    acquire(f, GRACE + 1, 20, 1);
    assert_int_equal(decide(f, GRACE + 1), 1);
    orbit_sched_reap_t d = f->out[0];
    orbit_sched_act_t *old = orbit_sched_reaper_act(f->r, "p", &d); /* fence 20 */
    assert_int_equal(old->fence_index, 20);
    /* Committed: counted. */
    orbit_sched_act_t *a = answered(f, &d, NULL);
    orbit_sched_reaper_done(f->r, a);
    orbit_sched_act_destroy(&a);
    assert_int_equal(stats(f).reaped, 1);
    /* Renewed since: a conflict on the older index is our own renewal. */
    acquire(f, GRACE + 100, 21, 1);
    old->rc = ORBIT_OK;
    old->outcome = malloc(sizeof *old->outcome);
    orbit__ledger__outcome__init(old->outcome);
    old->outcome->kind = ORBIT__LEDGER__OUTCOME_KIND__CONFLICT;
    old->outcome->which = strdup("unchanged_since");
    orbit_sched_reaper_done(f->r, old);
    orbit_sched_act_destroy(&old);
    assert_int_equal(stats(f).stale, 1);
    assert_int_equal(stats(f).fenced, 0);
    assert_true(stats(f).held);
    /* On the current index: fenced. The holding ends; nothing more. */
    a = answered(f, &d, "unchanged_since");
    assert_int_equal(a->fence_index, 21);
    orbit_sched_reaper_done(f->r, a);
    orbit_sched_act_destroy(&a);
    assert_int_equal(stats(f).fenced, 1);
    assert_false(stats(f).held);
    assert_int_equal(decide(f, GRACE + 200), 0);
    assert_null(orbit_sched_reaper_release(f->r, "p"));
    /* Campaigning again, held with a new epoch: acts after its own grace. */
    assert_true(orbit_sched_reaper_lease_due(f->r, GRACE + 100 + TTL / 3));
    acquire(f, GRACE + 2000, 30, 2);
    assert_int_equal(decide(f, GRACE + 2000), 0);
    /* Released on a clean stop, fenced like the rest. */
    orbit_sched_act_t *rel = orbit_sched_reaper_release(f->r, "p");
    assert_non_null(rel);
    assert_int_equal(rel->prop->commitment->revocation->what->kind,
                     ORBIT__LEDGER__REF_KIND__REF_LEASE);
    assert_string_equal(rel->prop->commitment->revocation->what->key, "reaper");
    assert_int_equal(rel->prop->precondition->unchanged_since[0]->index, 30);
    orbit_sched_act_destroy(&rel);
}

static void test_lease_age(void **state)
{
    fx_t *f = *state;
    fleet(f);
    acquire(f, 1000, 10, 1);
    status(f->v, "n0", ORBIT__NODE_STATUS__DOWN, 0);
    assert_true(orbit_sched_reaper_may_act(f->r, 1000 + TTL - 1));
    assert_false(orbit_sched_reaper_may_act(f->r, 1000 + TTL));
    assert_int_equal(decide(f, 1000), 0); /* timer starts */
    /* Renewal due after ttl/3; if it never succeeds the holder stops at
     * ttl by its own clock, whatever it saw. */
    assert_false(orbit_sched_reaper_lease_due(f->r, 1000 + TTL / 3 - 1));
    assert_true(orbit_sched_reaper_lease_due(f->r, 1000 + TTL / 3));
    assert_int_equal(decide(f, 1000 + GRACE + 1), 0);
    assert_true(stats(f).expired_stops >= 1);
    acquire(f, 1000 + GRACE + 1, 11, 1);
    assert_int_equal(decide(f, 1000 + GRACE + 1), 1);
}

/* A renewal would overtake the revocations in flight (stale): it waits for
 * them until the holding is 2 ttl/3 old, and no new revocation starts past
 * that age before the renewal. */
static void test_renewal_waits_for_revocations(void **state)
{
    fx_t *f = *state;
    fleet(f);
    acquire(f, 0, 10, 1);
    status(f->v, "n0", ORBIT__NODE_STATUS__DOWN, 0);
    assert_int_equal(decide(f, 0), 0);
    const int64_t t = GRACE + 1, every = TTL / 3;
    acquire(f, t, 20, 1); /* renewed: a fresh holding */
    assert_int_equal(decide(f, t), 1);
    orbit_sched_act_t *a = answered(f, &f->out[0], NULL); /* in flight */
    assert_false(orbit_sched_reaper_lease_due(f->r, t + every));
    assert_true(orbit_sched_reaper_lease_due(f->r, t + 2 * every));
    assert_int_equal(decide(f, t + 2 * every), 0); /* renew first */
    orbit_sched_reaper_done(f->r, a);
    orbit_sched_act_destroy(&a);
    assert_int_equal(stats(f).reaped, 1);
    assert_true(orbit_sched_reaper_lease_due(f->r, t + every)); /* nothing in flight */
}

static void test_trust_lease(void **state)
{
    fx_t *f = *state; /* UNSAFE mode: only the ledger's fencing guards */
    fleet(f);
    acquire(f, 0, 10, 1);
    status(f->v, "n0", ORBIT__NODE_STATUS__DOWN, 0);
    assert_int_equal(decide(f, 0), 0);
    assert_true(orbit_sched_reaper_may_act(f->r, 10 * TTL));
    assert_int_equal(decide(f, GRACE + 1), 1);
    orbit_sched_act_t *a = answered(f, &f->out[0], "unchanged_since");
    orbit_sched_reaper_done(f->r, a);
    orbit_sched_act_destroy(&a);
    assert_int_equal(stats(f).fenced, 1);
    assert_false(orbit_sched_reaper_may_act(f->r, GRACE + 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lease_needed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renewal_waits_for_revocations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_holding_restarts_timers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gang_and_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup_slow, teardown),
        cmocka_unit_test_setup_teardown(test_disruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fencing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust_lease, setup_trust, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
