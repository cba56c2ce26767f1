/* test_sched_score: eligibility (status, pressure, room, unhealthy GPUs,
 * selectors, doubt), the bin-packing score (fuller nodes first, GPU jobs on
 * GPU nodes, CPU jobs off them) and the sampled pick (deterministic per
 * seed, full scan when the sample finds nothing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "orbit_sched_score.h"
#include "test_sched_util.h"

static int setup(void **state)
{
    *state = orbit_sched_view_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    orbit_sched_view_t *v = *state;
    orbit_sched_view_destroy(&v);
    return 0;
}

static orbit_sched_node_t node_of(orbit_sched_view_t *v, const char *name)
{
    orbit_sched_node_t n;
    OK(orbit_sched_view_node(v, name, &n));
    return n;
}

static bool fits(orbit_sched_view_t *v, const char *node, int64_t cpu, int64_t mem, int64_t gpus)
{
    orbit_sched_score_cfg_t c;
    orbit_sched_score_cfg_default(&c);
    orbit_sched_need_t need = {{cpu, mem, gpus}, NULL};
    orbit_sched_node_t n = node_of(v, node);
    return orbit_sched_eligible(&c, &n, NULL, &need);
}

static void test_status(void **state)
{
    orbit_sched_view_t *v = *state;
    status(v, "alive", ORBIT__NODE_STATUS__ALIVE, 0);
    status(v, "suspect", ORBIT__NODE_STATUS__SUSPECT, 0);
    status(v, "down", ORBIT__NODE_STATUS__DOWN, 0);
    status(v, "unreach", ORBIT__NODE_STATUS__UNREACHABLE, 0);
    place(v, "m/x/0", "ghost", 0, 0, 0); /* known from the ledger only: never seen */
    assert_true(fits(v, "alive", 1000, GIB, 0));
    assert_false(fits(v, "suspect", 1000, GIB, 0));
    assert_false(fits(v, "down", 1000, GIB, 0));
    assert_false(fits(v, "unreach", 1000, GIB, 0));
    assert_false(fits(v, "ghost", 0, 0, 0));
    /* A node that vanished from a complete refresh is not seen any more. */
    orbit_sched_view_rows_done(v, 1);
    status(v, "down", ORBIT__NODE_STATUS__DOWN, 2);
    orbit_sched_view_rows_done(v, 3);
    assert_false(fits(v, "alive", 1000, GIB, 0));
}

static void test_pressure_and_room(void **state)
{
    orbit_sched_view_t *v = *state;
    row_spec_t s = {
        "p", ORBIT__NODE_STATUS__ALIVE, 4000, 8 * GIB, 4, 2, 3999, NULL, NULL, NULL, 0, 0, 0};
    row(v, &s, 0);
    assert_true(fits(v, "p", 4000, 8 * GIB, 2));
    assert_false(fits(v, "p", 4001, GIB, 0));
    assert_false(fits(v, "p", 1, 8 * GIB + 1, 0));
    assert_false(fits(v, "p", 1, 1, 3)); /* 4 GPUs, 2 healthy: 3 do not fit */
    s.pressure = 4000;                   /* at the threshold: out */
    row(v, &s, 1);
    assert_false(fits(v, "p", 1, 1, 0));
    orbit_sched_score_cfg_t c;
    orbit_sched_score_cfg_default(&c);
    c.max_pressure = 5000;
    orbit_sched_need_t need = {{1, 1, 0}, NULL};
    orbit_sched_node_t n = node_of(v, "p");
    assert_true(orbit_sched_eligible(&c, &n, NULL, &need));
    /* Committed usage and the caller's reservations count. */
    s.pressure = 0;
    row(v, &s, 2);
    place(v, "m/x/0", "p", 3000, GIB, 1);
    assert_true(fits(v, "p", 1000, 7 * GIB, 1));
    assert_false(fits(v, "p", 1001, GIB, 0));
    assert_false(fits(v, "p", 1, GIB, 2));
    orbit_sched_extra_t x = {{500, 0, 0}, false};
    n = node_of(v, "p");
    need.envelope = (orbit_sched_res_t){600, 0, 0};
    assert_false(orbit_sched_eligible(&c, &n, &x, &need));
    need.envelope.cpu_m = 500;
    assert_true(orbit_sched_eligible(&c, &n, &x, &need));
    x.doubtful = true;
    assert_false(orbit_sched_eligible(&c, &n, &x, &need));
}

/* A node holding ORBIT_CAPSULES_MAX placements takes no more, however small
 * the envelope: its leaf would not report (nor run) them. */
static void test_capsule_cap(void **state)
{
    orbit_sched_view_t *v = *state;
    row_spec_t s = {
        "c", ORBIT__NODE_STATUS__ALIVE, 64000, 64 * GIB, 0, 0, 0, NULL, NULL, NULL, 0, 0, 0};
    row(v, &s, 0);
    char id[32];
    for (int i = 0; i < ORBIT_CAPSULES_MAX - 1; i++) {
        snprintf(id, sizeof id, "m/x/%d", i);
        place(v, id, "c", 0, 0, 0);
    }
    assert_true(fits(v, "c", 0, 0, 0));
    place(v, "m/x/last", "c", 0, 0, 0);
    assert_false(fits(v, "c", 0, 0, 0));
}

static void test_selector(void **state)
{
    orbit_sched_view_t *v = *state;
    row_spec_t s = {
        "z1", ORBIT__NODE_STATUS__ALIVE, 4000, 8 * GIB, 0, 0, 0, "zone", "a", NULL, 0, 0, 0};
    row(v, &s, 0);
    orbit_sched_score_cfg_t c;
    orbit_sched_score_cfg_default(&c);
    orbit_sched_node_t n = node_of(v, "z1");
    orbit_sched_need_t need = {{1, 1, 0}, "zone=a"};
    assert_true(orbit_sched_eligible(&c, &n, NULL, &need));
    need.selector = "zone=b";
    assert_false(orbit_sched_eligible(&c, &n, NULL, &need));
    need.selector = "";
    assert_true(orbit_sched_eligible(&c, &n, NULL, &need));
}

static void test_binpack(void **state)
{
    orbit_sched_view_t *v = *state;
    alive(v, "empty", 8000, 16 * GIB, 0);
    alive(v, "half", 8000, 16 * GIB, 0);
    alive(v, "full", 8000, 16 * GIB, 0);
    place(v, "m/x/0", "half", 4000, 8 * GIB, 0);
    place(v, "m/x/1", "full", 7000, 15 * GIB, 0);
    orbit_sched_res_t env = {1000, GIB, 0};
    orbit_sched_node_t e = node_of(v, "empty"), h = node_of(v, "half"), f = node_of(v, "full");
    assert_true(orbit_sched_score(&f, NULL, &env) > orbit_sched_score(&h, NULL, &env));
    assert_true(orbit_sched_score(&h, NULL, &env) > orbit_sched_score(&e, NULL, &env));
    /* The pick (all nodes examined: fewer than K) takes the fullest that fits. */
    orbit_sched_score_cfg_t c;
    orbit_sched_score_cfg_default(&c);
    orbit_sched_rng_t rng;
    orbit_sched_rng_seed(&rng, 7);
    orbit_sched_need_t need = {env, NULL};
    orbit_sched_node_t out;
    OK(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, NULL));
    assert_string_equal(out.name, "full");
    need.envelope = (orbit_sched_res_t){2000, GIB, 0}; /* "full" has 1000 left */
    OK(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, NULL));
    assert_string_equal(out.name, "half");
    need.envelope = (orbit_sched_res_t){9000, GIB, 0};
    assert_int_equal(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, NULL),
                     ORBIT_ENOTFOUND);
}

static void test_pressure_breaks_ties(void **state)
{
    orbit_sched_view_t *v = *state;
    row_spec_t a = {
        "a", ORBIT__NODE_STATUS__ALIVE, 4000, 8 * GIB, 0, 0, 900, NULL, NULL, NULL, 0, 0, 0};
    row_spec_t b = a;
    b.node = "b";
    b.pressure = 100;
    row(v, &a, 0);
    row(v, &b, 0);
    orbit_sched_score_cfg_t c;
    orbit_sched_score_cfg_default(&c);
    orbit_sched_rng_t rng;
    orbit_sched_rng_seed(&rng, 1);
    orbit_sched_need_t need = {{1000, GIB, 0}, NULL};
    orbit_sched_node_t out;
    OK(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, NULL));
    assert_string_equal(out.name, "b");
}

static void test_gpu_preference(void **state)
{
    orbit_sched_view_t *v = *state;
    alive(v, "cpu", 16000, 64 * GIB, 0);
    alive(v, "gpu4", 16000, 64 * GIB, 4);
    alive(v, "gpu8", 16000, 64 * GIB, 8);
    place(v, "m/x/0", "gpu4", 1000, GIB, 3);
    orbit_sched_score_cfg_t c;
    orbit_sched_score_cfg_default(&c);
    orbit_sched_rng_t rng;
    orbit_sched_rng_seed(&rng, 3);
    orbit_sched_node_t out;
    /* A CPU job avoids GPU nodes even though gpu4 is fuller in CPU terms. */
    orbit_sched_need_t need = {{1000, GIB, 0}, NULL};
    OK(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, NULL));
    assert_string_equal(out.name, "cpu");
    /* ... but takes one when nothing else fits. */
    need.envelope = (orbit_sched_res_t){1000, 100 * GIB, 0};
    assert_int_equal(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, NULL),
                     ORBIT_ENOTFOUND);
    alive(v, "cpu", 1000, GIB, 0); /* shrink the CPU node */
    need.envelope = (orbit_sched_res_t){2000, GIB, 0};
    OK(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, NULL));
    assert_true(!strcmp(out.name, "gpu4") || !strcmp(out.name, "gpu8"));
    /* A GPU job goes to the GPU node with the fewest GPUs left that fits. */
    need.envelope = (orbit_sched_res_t){1000, GIB, 1};
    OK(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, NULL));
    assert_string_equal(out.name, "gpu4");
    need.envelope.gpus = 2;
    OK(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, NULL));
    assert_string_equal(out.name, "gpu8");
}

static void doubt_b(void *arg, const orbit_sched_node_t *node, orbit_sched_extra_t *out)
{
    (void)arg;
    assert_int_equal(node->key, orbit_sched_node_key(node->name));
    out->doubtful = !strcmp(node->name, "b");
}

static void test_extra_fn(void **state)
{
    orbit_sched_view_t *v = *state;
    alive(v, "a", 4000, 8 * GIB, 0);
    alive(v, "b", 4000, 8 * GIB, 0);
    place(v, "m/x/0", "b", 3000, GIB, 0); /* b is fuller but doubted */
    orbit_sched_score_cfg_t c;
    orbit_sched_score_cfg_default(&c);
    orbit_sched_rng_t rng;
    orbit_sched_rng_seed(&rng, 3);
    orbit_sched_need_t need = {{500, GIB, 0}, NULL};
    orbit_sched_node_t out;
    OK(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, NULL));
    assert_string_equal(out.name, "b");
    OK(orbit_sched_pick(v, &c, &rng, &need, doubt_b, NULL, &out, NULL, NULL));
    assert_string_equal(out.name, "a");
}

/* 200 nodes, K = 4: the sample depends on the seed only; a sample that
 * finds nothing falls back to one full scan. */
static void test_sampling(void **state)
{
    orbit_sched_view_t *v = *state;
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "n%03d", i);
        alive(v, name, 8000, 16 * GIB, 0);
        char cap[32]; /* various fill levels */
        snprintf(cap, sizeof cap, "m/x/%d", i);
        place(v, cap, name, (i * 37) % 7000, GIB, 0);
    }
    orbit_sched_score_cfg_t c;
    orbit_sched_score_cfg_default(&c);
    c.sample = 4;
    orbit_sched_need_t need = {{500, GIB, 0}, NULL};
    char first[8][32];
    for (int round = 0; round < 2; round++) {
        orbit_sched_rng_t rng;
        orbit_sched_rng_seed(&rng, 42);
        for (int k = 0; k < 8; k++) {
            orbit_sched_node_t out;
            orbit_sched_pick_stats_t st = {0, 0, 0, 0};
            OK(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, &st));
            assert_int_equal(st.examined, 4);
            assert_int_equal(st.full_scans, 0);
            if (round == 0)
                snprintf(first[k], sizeof first[k], "%s", out.name);
            else
                assert_string_equal(first[k], out.name);
        }
    }
    /* Another seed samples other nodes. */
    orbit_sched_rng_t r1, r2;
    orbit_sched_rng_seed(&r1, 42);
    orbit_sched_rng_seed(&r2, 43);
    int same = 0;
    for (int k = 0; k < 32; k++)
        same += orbit_sched_rng_below(&r1, 200) == orbit_sched_rng_below(&r2, 200);
    assert_true(same < 8);
    /* Only one node fits: the sample (almost surely) misses it, the scan
     * finds it. */
    alive(v, "n199", 64000, 16 * GIB, 0);
    need.envelope = (orbit_sched_res_t){20000, GIB, 0};
    orbit_sched_rng_t rng;
    orbit_sched_rng_seed(&rng, 5);
    orbit_sched_node_t out;
    orbit_sched_pick_stats_t st = {0, 0, 0, 0};
    OK(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, &st));
    assert_string_equal(out.name, "n199");
    assert_true(st.examined >= 200);
    need.envelope.cpu_m = 100000;
    st = (orbit_sched_pick_stats_t){0, 0, 0, 0};
    assert_int_equal(orbit_sched_pick(v, &c, &rng, &need, NULL, NULL, &out, NULL, &st),
                     ORBIT_ENOTFOUND);
    assert_int_equal(st.full_scans, 1);
    assert_int_equal(st.unplaceable, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pressure_and_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capsule_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_selector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binpack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pressure_breaks_ties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpu_preference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extra_fn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sampling, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
