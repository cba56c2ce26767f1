/* Tests of orbit_sim_capsules: which node a placement names, and the
 * per-node capsule lists the simulator reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "orbit_err.h"
#include "orbit_sim_capsules.h"

static void test_node_index(void **state)
{
    (void)state;
    assert_int_equal(orbit_sim_capsules_node_index("sim", 100, "sim-0"), 0);
    assert_int_equal(orbit_sim_capsules_node_index("sim", 100, "sim-99"), 99);
    assert_int_equal(orbit_sim_capsules_node_index("sim", 100, "sim-100"), -1); /* beyond */
    assert_int_equal(orbit_sim_capsules_node_index("sim", 100, "sim-07"), -1);  /* not ours */
    assert_int_equal(orbit_sim_capsules_node_index("sim", 100, "sima-1"), -1);
    assert_int_equal(orbit_sim_capsules_node_index("sim", 100, "sim-"), -1);
    assert_int_equal(orbit_sim_capsules_node_index("sim", 100, "sim-1x"), -1);
    assert_int_equal(orbit_sim_capsules_node_index("sim", 100, "sim--1"), -1);
    assert_int_equal(orbit_sim_capsules_node_index("sim", 100, "other-1"), -1);
    assert_int_equal(orbit_sim_capsules_node_index("a-b", 10, "a-b-3"), 3);
}

static void test_add_remove(void **state)
{
    (void)state;
    char err[128];
    orbit_sim_capsules_t *c = orbit_sim_capsules_new(NULL, "sim", 4, 100, err, sizeof err);
    assert_non_null(c);
    assert_null(orbit_sim_capsules_sock(c));
    assert_int_equal(orbit_sim_capsules_apply(c, true, 1, "m/web/0", 1000), ORBIT_OK);
    assert_int_equal(orbit_sim_capsules_apply(c, true, 1, "m/web/1", 2000), ORBIT_OK);
    assert_int_equal(orbit_sim_capsules_apply(c, true, 1, "m/web/0", 3000), ORBIT_OK); /* dup */
    const orbit_capsule_t *caps;
    assert_int_equal(orbit_sim_capsules_of(c, 1, &caps), 2);
    assert_string_equal(caps[0].id, "m/web/0");
    assert_int_equal(caps[0].state, ORBIT_CAPSULE_RUNNING);
    assert_int_equal(caps[0].since_ms, 1000); /* the duplicate changed nothing */
    assert_int_equal(orbit_sim_capsules_of(c, 0, &caps), 0);
    assert_int_equal(orbit_sim_capsules_of(c, 9, &caps), 0);
    assert_null(caps);

    assert_int_equal(orbit_sim_capsules_apply(c, false, 1, "m/web/0", 4000), ORBIT_OK);
    assert_int_equal(orbit_sim_capsules_apply(c, false, 1, "m/web/9", 4000), ORBIT_OK);
    assert_int_equal(orbit_sim_capsules_of(c, 1, &caps), 1);
    assert_string_equal(caps[0].id, "m/web/1");

    /* Bad input changes nothing. */
    assert_int_equal(orbit_sim_capsules_apply(c, true, 4, "m/web/2", 0), ORBIT_EINVAL);
    assert_int_equal(orbit_sim_capsules_apply(c, true, 0, "bad id", 0), ORBIT_EINVAL);
    assert_int_equal(orbit_sim_capsules_apply(c, true, 0, "", 0), ORBIT_EINVAL);

    orbit_sim_capsules_stats_t st;
    orbit_sim_capsules_stats(c, &st);
    assert_int_equal(st.placed, 2);
    assert_int_equal(st.removed, 1);
    assert_int_equal(st.capsules, 1);
    orbit_sim_capsules_destroy(&c);
    assert_null(c);
}

static void test_limit(void **state)
{
    (void)state;
    char err[128], id[32];
    orbit_sim_capsules_t *c = orbit_sim_capsules_new(NULL, "sim", 1, 100, err, sizeof err);
    assert_non_null(c);
    for (int i = 0; i < ORBIT_CAPSULES_MAX + 5; i++) {
        snprintf(id, sizeof id, "m/x/%d", i);
        assert_int_equal(orbit_sim_capsules_apply(c, true, 0, id, i), ORBIT_OK);
    }
    const orbit_capsule_t *caps;
    assert_int_equal(orbit_sim_capsules_of(c, 0, &caps), ORBIT_CAPSULES_MAX);
    orbit_sim_capsules_stats_t st;
    orbit_sim_capsules_stats(c, &st);
    assert_int_equal(st.dropped, 5);
    orbit_sim_capsules_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_index),
        cmocka_unit_test(test_add_remove),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
