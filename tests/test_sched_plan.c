/* test_sched_plan: the scheduler's rounds over a hand-built view — missing
 * capsules placed with their preconditions and binds, surplus revoked
 * (scale down, module revoked), gangs all or nothing and resized as a
 * whole, quota stopping placements, failed capsules kept for a doubling
 * backoff, then revoked and re-placed that resets after a minute running, priority
 * order, conflicts (doubtful nodes, lost races, identities bound to
 * themselves). Outcomes are written by the test in place of a worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "orbit_sched_plan.h"
#include "orbit_wire.h"
#include "test_sched_util.h"

#define ACTS_MAX   256
#define COPIES_MAX 16 /* a proposal and its binds */

typedef struct {
    orbit_sched_view_t *v;
    orbit_sched_plan_t *p;
    orbit_sched_act_t *acts[ACTS_MAX];
    size_t n;
} fx_t;

static void collect(void *arg, orbit_sched_act_t *a)
{
    fx_t *f = arg;
    if (f->n == ACTS_MAX)
        fail_msg("too many actions");
    f->acts[f->n++] = a;
}

static int setup_cfg(void **state, uint32_t window)
{
    fx_t *f = calloc(1, sizeof *f);
    orbit_sched_plan_cfg_t c;
    orbit_sched_plan_cfg_default(&c);
    c.window = window;
    c.seed = 9;
    f->v = orbit_sched_view_new();
    f->p = orbit_sched_plan_new(&c);
    *state = f;
    return f->v && f->p ? 0 : -1;
}

static int setup(void **state)
{
    return setup_cfg(state, 512);
}

static int setup_window1(void **state)
{
    return setup_cfg(state, 1);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    for (size_t i = 0; i < f->n; i++)
        orbit_sched_act_destroy(&f->acts[i]);
    orbit_sched_plan_destroy(&f->p);
    orbit_sched_view_destroy(&f->v);
    free(f);
    return 0;
}

/* Run a round at now; returns how many actions it emitted (kept in f). */
static size_t round_at(fx_t *f, int64_t now)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->acts[i])
            fail_msg("action %zu (%s) left unanswered", i, f->acts[i]->key);
    f->n = 0;
    int rc = orbit_sched_plan_round(f->p, f->v, now, collect, f);
    if (rc < 0)
        fail_msg("round: %s", orbit_strerror(rc));
    assert_int_equal((size_t)rc, f->n);
    return f->n;
}

static Orbit__Ledger__Outcome *outcome(Orbit__Ledger__OutcomeKind kind, uint64_t index,
                                       const char *which, const char *observed)
{
    Orbit__Ledger__Outcome *o = malloc(sizeof *o);
    orbit__ledger__outcome__init(o);
    o->kind = kind;
    o->has_index = index != 0;
    o->index = index;
    o->which = which ? strdup(which) : NULL;
    o->observed = observed ? strdup(observed) : NULL;
    return o;
}

static Orbit__Ledger__Proposal *dup_prop(const Orbit__Ledger__Proposal *p)
{
    return (Orbit__Ledger__Proposal *)orbit_wire_copy(&p->base);
}

/* Answer action i COMMITTED (binds too) as the ledger would, hand it back,
 * then let the "watch" deliver the same commitments at the same indexes. */
static void commit_act(fx_t *f, size_t i, int64_t now)
{
    orbit_sched_act_t *a = f->acts[i];
    uint64_t idx = orbit_sched_view_index(f->v) + 1;
    Orbit__Ledger__Proposal *copies[COPIES_MAX];
    size_t nc = 0;
    a->rc = ORBIT_OK;
    a->outcome = outcome(ORBIT__LEDGER__OUTCOME_KIND__COMMITTED, idx, NULL, NULL);
    copies[nc++] = dup_prop(a->prop);
    for (size_t b = 0; b < a->nbinds; b++) {
        a->bind_outcomes[b] =
            outcome(ORBIT__LEDGER__OUTCOME_KIND__COMMITTED, idx + 1 + b, NULL, NULL);
        copies[nc++] = dup_prop(a->binds[b]);
    }
    orbit_sched_plan_done(f->p, f->v, &f->acts[i], now);
    assert_null(f->acts[i]);
    for (size_t k = 0; k < nc; k++) {
        OK(orbit_sched_view_apply_commit(f->v, idx + k, T0 + (int64_t)(idx + k), copies[k]));
        orbit__ledger__proposal__free_unpacked(copies[k], NULL);
    }
}

static void commit_all(fx_t *f, int64_t now)
{
    for (size_t i = 0; i < f->n; i++)
        commit_act(f, i, now);
}

static void conflict_act(fx_t *f, size_t i, const char *which, const char *observed, int64_t now)
{
    orbit_sched_act_t *a = f->acts[i];
    a->rc = ORBIT_OK;
    a->outcome = outcome(ORBIT__LEDGER__OUTCOME_KIND__CONFLICT, 0, which, observed);
    orbit_sched_plan_done(f->p, f->v, &f->acts[i], now);
}

static const Orbit__Ledger__Placement *placement_of(const orbit_sched_act_t *a)
{
    assert_int_equal(a->kind, ORBIT_SCHED_ACT_PLACE);
    assert_int_equal(a->prop->commitment->kind_case, ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT);
    return a->prop->commitment->placement;
}

static const Orbit__Ledger__Ref *revoked(const orbit_sched_act_t *a)
{
    assert_int_equal(a->kind, ORBIT_SCHED_ACT_REVOKE);
    return a->prop->commitment->revocation->what;
}

static orbit_sched_plan_stats_t stats(fx_t *f)
{
    orbit_sched_plan_stats_t s;
    orbit_sched_plan_stats(f->p, &s);
    return s;
}

static size_t count_placed(fx_t *f, const char *mission, const char *mod)
{
    orbit_sched_module_t m;
    if (orbit_sched_view_module(f->v, mission, mod, &m) != ORBIT_OK)
        return 0;
    return (size_t)m.placed;
}

/* ---------------------------------------------------------------- tests */

static void test_missing_placed(void **state)
{
    fx_t *f = *state;
    alive(f->v, "n1", 4000, 8 * GIB, 0);
    alive(f->v, "n2", 4000, 8 * GIB, 0);
    grant(f->v, "alice", 100000, 100 * GIB, 0);
    module(f->v, "m", "web", 3, 1000, GIB, 0, 0, false, "alice");
    uint64_t mod_index = orbit_sched_view_index(f->v);
    assert_int_equal(round_at(f, 0), 3);
    bool seen[3] = {false, false, false};
    for (size_t i = 0; i < 3; i++) {
        const orbit_sched_act_t *a = f->acts[i];
        const Orbit__Ledger__Placement *pl = placement_of(a);
        uint32_t idx;
        OK(orbit_sched_capsule_index(pl->capsule, "m", "web", &idx));
        assert_true(idx < 3 && !seen[idx]);
        seen[idx] = true;
        assert_int_equal(pl->envelope->cpu_m, 1000);
        assert_int_equal(pl->envelope->mem, GIB);
        assert_int_equal(pl->epoch, mod_index);
        assert_string_equal(pl->principal, "alice");
        const Orbit__Ledger__Precondition *pre = a->prop->precondition;
        assert_int_equal(pre->n_node_fits, 1);
        assert_string_equal(pre->node_fits[0]->node, pl->node);
        assert_int_equal(pre->node_fits[0]->capacity->cpu_m, 4000);
        assert_int_equal(pre->node_fits[0]->capacity->mem, 8 * GIB);
        assert_false(pre->node_fits[0]->capacity->has_gpus); /* not asked for */
        assert_int_equal(pre->n_quota_available, 1);
        assert_string_equal(pre->quota_available[0]->principal, "alice");
        assert_int_equal(pre->quota_available[0]->resources->cpu_m, 1000);
        char ident[64];
        OK(orbit_sched_identity("m", "web", idx, ident, sizeof ident));
        assert_int_equal(pre->n_identity_free, 1);
        assert_string_equal(pre->identity_free[0], ident);
        assert_int_equal(a->nbinds, 1);
        assert_string_equal(a->binds[0]->commitment->identity_bind->identity, ident);
        assert_string_equal(a->binds[0]->commitment->identity_bind->capsule, pl->capsule);
    }
    /* In flight: the next round plans nothing twice. */
    orbit_sched_act_t *keep[3] = {f->acts[0], f->acts[1], f->acts[2]};
    f->n = 0;
    assert_int_equal(round_at(f, 1), 0);
    for (size_t i = 0; i < 3; i++)
        f->acts[i] = keep[i];
    f->n = 3;
    commit_all(f, 2);
    assert_int_equal(count_placed(f, "m", "web"), 3);
    orbit_sched_plan_stats_t s = stats(f);
    assert_int_equal(s.placed, 3);
    assert_int_equal(s.binds, 3);
    assert_int_equal(s.in_flight, 0);
    assert_int_equal(round_at(f, 3), 0);
    /* The bins are packed: 3 x 1000 m on two 4000 m nodes -> one node. */
    orbit_sched_node_t n1, n2;
    OK(orbit_sched_view_node(f->v, "n1", &n1));
    OK(orbit_sched_view_node(f->v, "n2", &n2));
    assert_true(n1.placements == 3 || n2.placements == 3);
}

/* What is in flight holds its node's room in later rounds too: the marks
 * that spare a pick its lookups are rebuilt every round, reservations
 * still there included. */
static void test_reserved_across_rounds(void **state)
{
    fx_t *f = *state;
    alive(f->v, "n1", 2000, 8 * GIB, 0);
    grant(f->v, "alice", 100000, 100 * GIB, 0);
    module(f->v, "a", "web", 2, 1000, GIB, 0, 0, false, "alice");
    assert_int_equal(round_at(f, 0), 2);
    orbit_sched_act_t *keep[2] = {f->acts[0], f->acts[1]};
    f->n = 0;
    /* Another module comes while both are in flight: n1 has no room. */
    module(f->v, "b", "api", 1, 1000, GIB, 0, 0, false, "alice");
    assert_int_equal(round_at(f, 1), 0);
    assert_int_equal(round_at(f, 2), 0);
    assert_true(stats(f).unplaceable > 0);
    f->acts[0] = keep[0];
    f->acts[1] = keep[1];
    f->n = 2;
    commit_all(f, 3);
    assert_int_equal(count_placed(f, "a", "web"), 2);
    assert_int_equal(round_at(f, 4), 0); /* still full, now in the ledger */
}

static void test_surplus(void **state)
{
    fx_t *f = *state;
    alive(f->v, "n1", 64000, 64 * GIB, 0);
    module(f->v, "m", "web", 5, 1000, GIB, 0, 0, false, NULL);
    assert_int_equal(round_at(f, 0), 5);
    assert_int_equal(f->acts[0]->prop->precondition->n_quota_available, 0);
    commit_all(f, 0);
    place(f->v, "m/web/x", "n1", 1, 1, 0);  /* not an index */
    place(f->v, "m/web/07", "n1", 1, 1, 0); /* leading zero */
    /* Scale down to 2: indexes 2, 3, 4 and the strays go. */
    commit(f->v, "{'module_adjustment':{'mission':'m','module':'web','adjustment':{'count':2}}}");
    assert_int_equal(round_at(f, 1), 5);
    for (size_t i = 0; i < 5; i++) {
        const Orbit__Ledger__Ref *r = revoked(f->acts[i]);
        assert_int_equal(f->acts[i]->why, ORBIT_SCHED_WHY_SURPLUS);
        assert_int_equal(r->kind, ORBIT__LEDGER__REF_KIND__REF_PLACEMENT);
        assert_true(strcmp(r->key, "m/web/0") && strcmp(r->key, "m/web/1"));
        assert_null(f->acts[i]->prop->precondition);
    }
    commit_all(f, 1);
    assert_int_equal(count_placed(f, "m", "web"), 2);
    assert_int_equal(stats(f).revoked[ORBIT_SCHED_WHY_SURPLUS], 5);
    assert_int_equal(round_at(f, 2), 0);
    /* The module is revoked: everything goes. */
    commit(f->v, "{'revocation':{'what':{'kind':'REF_MODULE','key':'m/web'}}}");
    assert_int_equal(round_at(f, 3), 2);
    commit_all(f, 3);
    assert_int_equal(count_placed(f, "m", "web"), 0);
    assert_int_equal(round_at(f, 4), 0);
}

static void test_gang(void **state)
{
    fx_t *f = *state;
    alive(f->v, "g2", 16000, 64 * GIB, 2);
    alive(f->v, "g1", 16000, 64 * GIB, 1);
    alive(f->v, "cpu", 64000, 256 * GIB, 0);
    module(f->v, "m", "train", 4, 1000, GIB, 1, 0, true, NULL);
    /* 3 GPUs in all for 4 members: nothing at all is proposed. */
    assert_int_equal(round_at(f, 0), 0);
    assert_int_equal(stats(f).unplaceable, 1);
    alive(f->v, "g4", 16000, 64 * GIB, 4);
    assert_int_equal(round_at(f, 1), 1);
    orbit_sched_act_t *a = f->acts[0];
    assert_int_equal(a->kind, ORBIT_SCHED_ACT_GANG);
    const Orbit__Ledger__GangPlacement *g = a->prop->commitment->gang_placement;
    assert_string_equal(g->gang, "m/train");
    assert_int_equal(g->n_members, 4);
    int gpus_on[3] = {0, 0, 0}; /* g1, g2, g4 */
    for (size_t i = 0; i < 4; i++) {
        const char *n = g->members[i]->node;
        assert_true(strcmp(n, "cpu") != 0);
        gpus_on[!strcmp(n, "g1") ? 0 : !strcmp(n, "g2") ? 1 : 2]++;
    }
    assert_true(gpus_on[0] <= 1 && gpus_on[1] <= 2 && gpus_on[2] <= 4); /* accounted together */
    const Orbit__Ledger__Precondition *pre = a->prop->precondition;
    size_t distinct = (gpus_on[0] > 0) + (gpus_on[1] > 0) + (gpus_on[2] > 0);
    assert_int_equal(pre->n_node_fits, distinct);
    assert_int_equal(pre->n_identity_free, 4);
    assert_int_equal(a->nbinds, 4);
    commit_all(f, 1);
    assert_int_equal(count_placed(f, "m", "train"), 4);
    assert_int_equal(stats(f).gangs_placed, 1);
    assert_int_equal(round_at(f, 2), 0);
    /* Resized: the gang goes as a whole, then comes back at the new size. */
    commit(f->v, "{'module_adjustment':{'mission':'m','module':'train','adjustment':{'count':3}}}");
    assert_int_equal(round_at(f, 3), 1);
    const Orbit__Ledger__Ref *r = revoked(f->acts[0]);
    assert_int_equal(r->kind, ORBIT__LEDGER__REF_KIND__REF_GANG);
    assert_string_equal(r->key, "m/train");
    commit_all(f, 3);
    assert_int_equal(round_at(f, 4), 1);
    assert_int_equal(f->acts[0]->prop->commitment->gang_placement->n_members, 3);
    commit_all(f, 4);
    assert_int_equal(count_placed(f, "m", "train"), 3);
}

static void test_quota(void **state)
{
    fx_t *f = *state;
    alive(f->v, "n1", 64000, 64 * GIB, 0);
    grant(f->v, "bob", 2500, 100 * GIB, 0);
    module(f->v, "m", "web", 5, 1000, GIB, 0, 0, false, "bob");
    /* Room for two: the planned ones count before they commit. */
    assert_int_equal(round_at(f, 0), 2);
    assert_int_equal(stats(f).quota_blocked, 1);
    commit_all(f, 0);
    assert_int_equal(round_at(f, 1), 0);
    assert_int_equal(stats(f).quota_blocked, 2);
    /* No grant at all: nothing. */
    module(f->v, "m", "api", 1, 1, 1, 0, 0, false, "nobody");
    assert_int_equal(round_at(f, 2), 0);
    /* More quota: the rest. */
    grant(f->v, "bob", 5000, 100 * GIB, 0);
    assert_int_equal(round_at(f, 3), 3);
    commit_all(f, 3);
    assert_int_equal(count_placed(f, "m", "web"), 5);
}

static void report(fx_t *f, const char *node, const char *capsule, Orbit__CapsuleState st,
                   int32_t code, int64_t since, int64_t now)
{
    row_spec_t s = {
        node, ORBIT__NODE_STATUS__ALIVE, 64000, 64 * GIB, 0, 0, 0, NULL, NULL, capsule, st, code,
        since};
    row(f->v, &s, now);
}

/* Revoke the failed placement once its delay has passed at `at`, and place
 * it again just after. */
static void revoke_then_place(fx_t *f, int64_t at)
{
    assert_int_equal(round_at(f, at - 1), 0); /* the failed placement stays meanwhile */
    assert_int_equal(round_at(f, at), 1);
    assert_int_equal(f->acts[0]->why, ORBIT_SCHED_WHY_FAILED);
    assert_string_equal(revoked(f->acts[0])->key, "m/bad/0");
    commit_all(f, at);
    assert_int_equal(count_placed(f, "m", "bad"), 0);
    assert_int_equal(round_at(f, at + 1), 1);
    assert_int_equal(f->acts[0]->kind, ORBIT_SCHED_ACT_PLACE);
    commit_all(f, at + 1);
    assert_int_equal(count_placed(f, "m", "bad"), 1);
}

static void test_failed_backoff(void **state)
{
    fx_t *f = *state;
    alive(f->v, "n1", 64000, 64 * GIB, 0);
    module(f->v, "m", "bad", 1, 1000, GIB, 0, 0, false, NULL);
    int64_t t = 100000;
    assert_int_equal(round_at(f, t), 1);
    commit_all(f, t);
    /* Fails: backed off 1 s, the failed placement (and its reason) kept
     * until then, then revoked and placed again. */
    report(f, "n1", "m/bad/0", ORBIT__CAPSULE_STATE__CAPSULE_FAILED, 0, 11, t);
    assert_int_equal(round_at(f, t), 0);
    int64_t delay, nb;
    OK(orbit_sched_plan_backoff(f->p, "c:m/bad/0", &delay, &nb));
    assert_int_equal(delay, 1000);
    assert_int_equal(nb, t + 1000);
    assert_int_equal(count_placed(f, "m", "bad"), 1);
    revoke_then_place(f, t + 1000);
    /* The new placement's node still shows the old FAILED report: not
     * acted on twice. */
    assert_int_equal(round_at(f, t + 1002), 0);
    assert_int_equal(count_placed(f, "m", "bad"), 1);
    /* Fails again (a new report): 2 s. */
    report(f, "n1", "m/bad/0", ORBIT__CAPSULE_STATE__CAPSULE_FAILED, 0, 22, t + 1100);
    assert_int_equal(round_at(f, t + 1100), 0);
    OK(orbit_sched_plan_backoff(f->p, "c:m/bad/0", &delay, &nb));
    assert_int_equal(delay, 2000);
    revoke_then_place(f, t + 3100);
    /* An OOM kill and a nonzero exit count as failures: 4 s, 8 s ... */
    report(f, "n1", "m/bad/0", ORBIT__CAPSULE_STATE__CAPSULE_EXITED, 3, 33, t + 3200);
    assert_int_equal(round_at(f, t + 3200), 0);
    OK(orbit_sched_plan_backoff(f->p, "c:m/bad/0", &delay, &nb));
    assert_int_equal(delay, 4000);
    revoke_then_place(f, t + 7200);
    /* Runs a minute: forgotten. */
    report(f, "n1", "m/bad/0", ORBIT__CAPSULE_STATE__CAPSULE_RUNNING, 0, 44, t + 7300);
    assert_int_equal(round_at(f, t + 7300), 0);
    assert_int_equal(round_at(f, t + 67299), 0);
    OK(orbit_sched_plan_backoff(f->p, "c:m/bad/0", NULL, NULL));
    assert_int_equal(round_at(f, t + 67300), 0);
    assert_int_equal(orbit_sched_plan_backoff(f->p, "c:m/bad/0", NULL, NULL), ORBIT_ENOTFOUND);
    /* The next failure starts at 1 s again. */
    report(f, "n1", "m/bad/0", ORBIT__CAPSULE_STATE__CAPSULE_OOM_KILLED, 0, 55, t + 70000);
    assert_int_equal(round_at(f, t + 70000), 0);
    OK(orbit_sched_plan_backoff(f->p, "c:m/bad/0", &delay, NULL));
    assert_int_equal(delay, 1000);
    revoke_then_place(f, t + 71000);
    assert_int_equal(stats(f).revoked[ORBIT_SCHED_WHY_FAILED], 4);
    assert_int_equal(stats(f).backoffs, 4);
}

/* A module every capsule of which is placed and bound, with nothing failed
 * or in flight, is passed over until the view changes it; what time alone
 * brings due (a missing identity's repair, a backoff) keeps it walked. */
static void test_settled_modules(void **state)
{
    fx_t *f = *state;
    alive(f->v, "n1", 64000, 64 * GIB, 0);
    module(f->v, "m", "w", 2, 1000, GIB, 0, 0, false, NULL);
    int64_t t = 100000;
    assert_int_equal(round_at(f, t), 2);
    commit_all(f, t);
    uint64_t walks = stats(f).walks;
    assert_int_equal(round_at(f, t + 1), 0); /* walked once more: settled there */
    assert_int_equal(stats(f).walks, walks + 1);
    assert_int_equal(stats(f).settled, 0);
    assert_int_equal(round_at(f, t + 2), 0);
    assert_int_equal(round_at(f, t + 60000), 0); /* time alone changes nothing */
    assert_int_equal(stats(f).walks, walks + 1);
    assert_int_equal(stats(f).settled, 2);
    /* Another module's placement, bound by someone else: its identity is
     * repaired after bind_repair_ms while the settled one stays passed over. */
    module(f->v, "m", "x", 1, 1000, GIB, 0, 0, false, NULL);
    place(f->v, "m/x/0", "n1", 1000, GIB, 0);
    t += 60000;
    assert_int_equal(round_at(f, t), 0);
    assert_int_equal(round_at(f, t + 4999), 0);
    assert_int_equal(round_at(f, t + 5000), 1);
    assert_int_equal(f->acts[0]->kind, ORBIT_SCHED_ACT_BIND);
    assert_string_equal(f->acts[0]->key, "m/x/0");
    commit_all(f, t + 5000);
    assert_int_equal(stats(f).settled, 5);
    /* A failure report changes the module's version: walked, backed off,
     * and walked every round until the delay passes and it is revoked. */
    t += 10000;
    report(f, "n1", "m/w/1", ORBIT__CAPSULE_STATE__CAPSULE_FAILED, 0, 11, t);
    walks = stats(f).walks;
    assert_int_equal(round_at(f, t), 0);
    OK(orbit_sched_plan_backoff(f->p, "c:m/w/1", NULL, NULL));
    assert_int_equal(round_at(f, t + 999), 0);
    assert_int_equal(round_at(f, t + 1000), 1);
    assert_int_equal(f->acts[0]->why, ORBIT_SCHED_WHY_FAILED);
    assert_string_equal(revoked(f->acts[0])->key, "m/w/1");
    assert_true(stats(f).walks >= walks + 3);
    commit_all(f, t + 1000);
}

static void test_exit_zero_is_done(void **state)
{
    fx_t *f = *state;
    alive(f->v, "n1", 64000, 64 * GIB, 0);
    module(f->v, "m", "job", 1, 1000, GIB, 0, 0, false, NULL);
    assert_int_equal(round_at(f, 0), 1);
    commit_all(f, 0);
    report(f, "n1", "m/job/0", ORBIT__CAPSULE_STATE__CAPSULE_EXITED, 0, 5, 1);
    assert_int_equal(round_at(f, 1), 0);
    assert_int_equal(count_placed(f, "m", "job"), 1);
}

static void test_gang_failure(void **state)
{
    fx_t *f = *state;
    alive(f->v, "n1", 64000, 64 * GIB, 0);
    module(f->v, "m", "g", 2, 1000, GIB, 0, 0, true, NULL);
    assert_int_equal(round_at(f, 0), 1);
    commit_all(f, 0);
    report(f, "n1", "m/g/1", ORBIT__CAPSULE_STATE__CAPSULE_FAILED, 0, 9, 10);
    /* The gang stays, failed member and all, for the delay... */
    assert_int_equal(round_at(f, 10), 0);
    OK(orbit_sched_plan_backoff(f->p, "g:m/g", NULL, NULL));
    assert_int_equal(round_at(f, 500), 0);
    assert_int_equal(count_placed(f, "m", "g"), 2);
    /* ... then goes as a whole, and comes back whole. */
    assert_int_equal(round_at(f, 1010), 1);
    assert_int_equal(revoked(f->acts[0])->kind, ORBIT__LEDGER__REF_KIND__REF_GANG);
    assert_int_equal(f->acts[0]->why, ORBIT_SCHED_WHY_FAILED);
    commit_all(f, 1010);
    assert_int_equal(count_placed(f, "m", "g"), 0);
    assert_int_equal(round_at(f, 1011), 1);
    assert_int_equal(f->acts[0]->kind, ORBIT_SCHED_ACT_GANG);
    commit_all(f, 1011);
    assert_int_equal(count_placed(f, "m", "g"), 2);
}

static void test_priority(void **state)
{
    fx_t *f = *state; /* window 1: one action per round */
    alive(f->v, "n1", 2000, 64 * GIB, 0);
    module(f->v, "m", "low", 1, 2000, GIB, 0, 1, false, NULL);
    module(f->v, "m", "high", 1, 2000, GIB, 0, 9, false, NULL);
    module(f->v, "a", "mid", 1, 2000, GIB, 0, 5, false, NULL);
    assert_int_equal(round_at(f, 0), 1);
    assert_string_equal(placement_of(f->acts[0])->capsule, "m/high/0");
    assert_true(orbit_sched_plan_more(f->p));
    commit_all(f, 0);
    /* The node is full: the others wait. */
    assert_int_equal(round_at(f, 1), 0);
    alive(f->v, "n2", 2000, 64 * GIB, 0);
    assert_int_equal(round_at(f, 2), 1);
    assert_string_equal(placement_of(f->acts[0])->capsule, "a/mid/0");
    commit_all(f, 2);
}

/* A module another scheduler placed in lately comes after the others of its
 * priority; the claim lapses with ledger time. */
static void test_claimed_modules(void **state)
{
    fx_t *f = *state;                               /* window 1: one action per round */
    orbit_sched_view_set_self(f->v, "orbit-sched"); /* the planner's proposer */
    alive(f->v, "n1", 64000, 64 * GIB, 0);
    module(f->v, "m", "a", 3, 1000, GIB, 0, 0, false, NULL);
    module(f->v, "m", "b", 3, 1000, GIB, 0, 0, false, NULL);
    assert_int_equal(round_at(f, 0), 1);
    char first[64], other[64];
    const char *c0 = placement_of(f->acts[0])->capsule; /* "m/a/i" or "m/b/i" */
    snprintf(first, sizeof first, "%.3s", c0);
    snprintf(other, sizeof other, "m/%c", c0[2] == 'a' ? 'b' : 'a');
    commit_all(f, 0);
    orbit_sched_module_t m;
    OK(orbit_sched_view_module(f->v, "m", first + 2, &m));
    assert_int_equal(m.others_ms, 0); /* our own placement */
    /* Unclaimed, the planner keeps to its own order: the same module. */
    assert_int_equal(round_at(f, 1), 1);
    assert_memory_equal(placement_of(f->acts[0])->capsule, first, 3);
    commit_all(f, 1);
    /* Another client (the test's "t") places in it: claimed, so the next
     * capsule goes to the other module although that one comes later. */
    char cap[80];
    for (int i = 0; i < 3; i++) {
        snprintf(cap, sizeof cap, "%.8s/%d", first, i);
        orbit_sched_placement_t pl;
        if (orbit_sched_view_placement(f->v, cap, &pl) != ORBIT_OK)
            break;
    }
    place(f->v, cap, "n1", 1000, GIB, 0);
    OK(orbit_sched_view_module(f->v, "m", first + 2, &m));
    assert_int_equal(m.others_ms, orbit_sched_view_time(f->v));
    module(f->v, "m", first + 2, 4, 1000, GIB, 0, 0, false, NULL); /* one more to place */
    assert_int_equal(round_at(f, 2), 1);
    assert_memory_equal(placement_of(f->acts[0])->capsule, other, 3);
    commit_all(f, 2);
    /* A second later in ledger time the claim has lapsed: its own order again. */
    Orbit__Ledger__Proposal *g = mkprop("{'quota_grant':{'principal':'x','resources':{}}}");
    OK(orbit_sched_view_apply_commit(f->v, orbit_sched_view_index(f->v) + 1,
                                     orbit_sched_view_time(f->v) + 1000, g));
    orbit__ledger__proposal__free_unpacked(g, NULL);
    assert_int_equal(round_at(f, 3), 1);
    assert_memory_equal(placement_of(f->acts[0])->capsule, first, 3);
    commit_all(f, 3);
}

static void test_conflicts(void **state)
{
    fx_t *f = *state;
    alive(f->v, "n1", 4000, 64 * GIB, 0); /* fuller after placing: preferred */
    alive(f->v, "n2", 8000, 64 * GIB, 0);
    module(f->v, "m", "web", 1, 1000, GIB, 0, 0, false, NULL);
    assert_int_equal(round_at(f, 0), 1);
    assert_string_equal(placement_of(f->acts[0])->node, "n1");
    conflict_act(f, 0, "node_fits", "n1: cpu_m used+new=9000 > cap=8000", 0);
    /* n1 is doubted until the next poll. */
    assert_int_equal(round_at(f, 1), 1);
    assert_string_equal(placement_of(f->acts[0])->node, "n2");
    assert_int_equal(stats(f).retries, 1);
    conflict_act(f, 0, "capsule_placed", "node=n7", 1);
    orbit_sched_plan_polled(f->p);
    assert_int_equal(round_at(f, 2), 1);
    assert_string_equal(placement_of(f->acts[0])->node, "n1");
    /* The identity is already ours (a revoked placement keeps it): the
     * next proposal goes without identity_free. */
    assert_int_equal(f->acts[0]->prop->precondition->n_identity_free, 1);
    conflict_act(f, 0, "identity_free", "0.web.m bound to m/web/0", 2);
    assert_int_equal(round_at(f, 3), 1);
    assert_int_equal(f->acts[0]->prop->precondition->n_identity_free, 0);
    commit_all(f, 3);
    orbit_sched_plan_stats_t s = stats(f);
    assert_int_equal(s.conflicts[0], 1); /* node_fits */
    assert_int_equal(s.conflicts[2], 1); /* identity_free */
    assert_int_equal(s.conflicts[3], 1); /* capsule_placed */
    assert_int_equal(s.placed, 1);
    /* A transport error: counted, retried next round. */
    module(f->v, "m", "api", 1, 1000, GIB, 0, 0, false, NULL);
    assert_int_equal(round_at(f, 4), 1);
    f->acts[0]->rc = ORBIT_ETIMEDOUT;
    orbit_sched_plan_done(f->p, f->v, &f->acts[0], 4);
    assert_int_equal(stats(f).errors, 1);
    assert_int_equal(round_at(f, 5), 1);
    commit_all(f, 5);
}

/* One capsule m/web/0 on n1 answered five quota conflicts in a row, at
 * times 0..4: it is held back as a failed one would be. */
static void five_conflicts(fx_t *f)
{
    alive(f->v, "n1", 8000, 64 * GIB, 0);
    module(f->v, "m", "web", 1, 1000, GIB, 0, 0, false, NULL);
    for (int i = 0; i < 5; i++) {
        orbit_sched_plan_polled(f->p);
        assert_int_equal(round_at(f, i), 1);
        conflict_act(f, 0, "quota_available", "x", i);
    }
}

static void test_conflict_backoff(void **state)
{
    fx_t *f = *state;
    five_conflicts(f);
    /* Five conflicts in a row: the capsule waits like a failed one. */
    assert_int_equal(round_at(f, 5), 0);
    assert_int_equal(round_at(f, 1004), 1);
    commit_all(f, 1004);
}

/* What the planner remembers per capsule (a conflict count, a backoff) is
 * kept while the capsule is wanted and dropped once its module no longer
 * wants it: a stopped mission leaves nothing behind. */
static void test_forget_gone(void **state)
{
    fx_t *f = *state;
    five_conflicts(f);
    OK(orbit_sched_plan_backoff(f->p, "c:m/web/0", NULL, NULL));
    assert_int_equal(stats(f).remembered, 2); /* its conflicts, its backoff */
    /* A sweep while the capsule is still wanted keeps both. */
    assert_int_equal(round_at(f, 15000), 1);
    conflict_act(f, 0, "quota_available", "x", 15000);
    assert_int_equal(stats(f).forgotten, 0);
    OK(orbit_sched_plan_backoff(f->p, "c:m/web/0", NULL, NULL));
    /* Scaled to nothing while a placement of it still stands (another
     * scheduler's): kept. */
    module(f->v, "m", "web", 0, 1000, GIB, 0, 0, false, NULL);
    place(f->v, "m/web/0", "n1", 1000, GIB, 0);
    assert_int_equal(round_at(f, 20000), 1); /* the surplus is revoked */
    f->acts[0]->rc = ORBIT_ETIMEDOUT;        /* its answer lost: the placement stays */
    orbit_sched_plan_done(f->p, f->v, &f->acts[0], 20000);
    assert_int_equal(round_at(f, 25000), 1);
    assert_int_equal(stats(f).forgotten, 0);
    OK(orbit_sched_plan_backoff(f->p, "c:m/web/0", NULL, NULL));
    /* Placement gone too: the next sweep drops them. */
    commit_act(f, 0, 25000);
    assert_int_equal(round_at(f, 30000), 0);
    assert_int_equal(stats(f).forgotten, 0); /* within sweep_ms of the last */
    assert_int_equal(round_at(f, 35000), 0);
    assert_int_equal(orbit_sched_plan_backoff(f->p, "c:m/web/0", NULL, NULL), ORBIT_ENOTFOUND);
    assert_int_equal(stats(f).forgotten, 2);
    assert_int_equal(stats(f).remembered, 0);
}

static void test_names(void **state)
{
    (void)state;
    uint32_t i;
    OK(orbit_sched_capsule_index("m/w/0", "m", "w", &i));
    assert_int_equal(i, 0);
    OK(orbit_sched_capsule_index("m/w/4294967295", "m", "w", &i));
    assert_int_equal(i, 4294967295u);
    assert_int_equal(orbit_sched_capsule_index("m/w/4294967296", "m", "w", &i), ORBIT_EINVAL);
    assert_int_equal(orbit_sched_capsule_index("m/w/01", "m", "w", &i), ORBIT_EINVAL);
    assert_int_equal(orbit_sched_capsule_index("m/w/", "m", "w", &i), ORBIT_EINVAL);
    assert_int_equal(orbit_sched_capsule_index("m/ww/1", "m", "w", &i), ORBIT_EINVAL);
    assert_int_equal(orbit_sched_capsule_index("mm/w/1", "m", "w", &i), ORBIT_EINVAL);
    assert_int_equal(orbit_sched_capsule_index("m/w/1a", "m", "w", &i), ORBIT_EINVAL);
    char id[64];
    OK(orbit_sched_identity("mission", "module", 12, id, sizeof id));
    assert_string_equal(id, "12.module.mission");
    char big[64];
    memset(big, 'a', 62);
    big[62] = '\0';
    assert_int_equal(orbit_sched_identity(big, "m", 1, id, sizeof id), ORBIT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_placed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved_across_rounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_surplus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gang, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_modules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_zero_is_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gang_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority, setup_window1, teardown),
        cmocka_unit_test_setup_teardown(test_claimed_modules, setup_window1, teardown),
        cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_gone, setup, teardown),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
