/* test_orbit_log: level names and the log rate limiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "orbit_log.h"

typedef struct {
    orbit_ratelimit_t rl;
    orbit_log_level_t saved_level;
} log_fx_t;

static int log_setup(void **state)
{
    static log_fx_t fx;
    fx = (log_fx_t){.saved_level = orbit_log_level};
    *state = &fx;
    return 0;
}

static int log_teardown(void **state)
{
    log_fx_t *fx = *state;
    orbit_log_level = fx->saved_level;
    return 0;
}

static void test_level_parse(void **state)
{
    (void)state;
    assert_int_equal(orbit_log_level_parse("error"), ORBIT_LOG_ERROR);
    assert_int_equal(orbit_log_level_parse("warn"), ORBIT_LOG_WARN);
    assert_int_equal(orbit_log_level_parse("info"), ORBIT_LOG_INFO);
    assert_int_equal(orbit_log_level_parse("debug"), ORBIT_LOG_DEBUG);
    assert_int_equal(orbit_log_level_parse("DEBUG"), -1);
    assert_int_equal(orbit_log_level_parse("warning"), -1);
    assert_int_equal(orbit_log_level_parse(""), -1);
    assert_int_equal(orbit_log_level_parse(NULL), -1);
}

static void test_ratelimit_burst_then_suppress(void **state)
{
    log_fx_t *fx = *state;
    uint64_t suppressed = 99;
    int64_t t = 10000;
    /* Default burst: five lines a second. */
    for (int i = 0; i < 5; i++) {
        assert_true(orbit_ratelimit_pass(&fx->rl, t + i, &suppressed));
        assert_int_equal(suppressed, 0);
    }
    for (int i = 0; i < 37; i++)
        assert_false(orbit_ratelimit_pass(&fx->rl, t + 10 + i, &suppressed));
    assert_false(orbit_ratelimit_pass(&fx->rl, t + 999, &suppressed));
    /* The next window's first line reports how many were dropped, once. */
    assert_true(orbit_ratelimit_pass(&fx->rl, t + 1000, &suppressed));
    assert_int_equal(suppressed, 38);
    assert_true(orbit_ratelimit_pass(&fx->rl, t + 1001, &suppressed));
    assert_int_equal(suppressed, 0);
}

static void test_ratelimit_custom_burst(void **state)
{
    log_fx_t *fx = *state;
    fx->rl.burst = 2;
    uint64_t suppressed = 0;
    assert_true(orbit_ratelimit_pass(&fx->rl, 5000, &suppressed));
    assert_true(orbit_ratelimit_pass(&fx->rl, 5000, &suppressed));
    assert_false(orbit_ratelimit_pass(&fx->rl, 5000, &suppressed));
    /* A long silence starts a fresh window. */
    assert_true(orbit_ratelimit_pass(&fx->rl, 90000, &suppressed));
    assert_int_equal(suppressed, 1);
    assert_true(orbit_ratelimit_pass(&fx->rl, 90001, &suppressed));
    assert_false(orbit_ratelimit_pass(&fx->rl, 90002, &suppressed));
}

static void test_level_macros_respect_level(void **state)
{
    (void)state;
    /* The macros must compile as statements and not evaluate their
     * arguments when the level is below. */
    int evaluated = 0;
    orbit_log_level = ORBIT_LOG_ERROR;
    orbit_debug("never %d", ++evaluated);
    orbit_info("never %d", ++evaluated);
    orbit_warn("never %d", ++evaluated);
    assert_int_equal(evaluated, 0);
    orbit_log_level = ORBIT_LOG_DEBUG;
    if (evaluated == 0)
        orbit_debug("shown %d", ++evaluated);
    else
        assert_true(0);
    assert_int_equal(evaluated, 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, log_setup, log_teardown)
    const struct CMUnitTest tests[] = {
        T(test_level_parse),
        T(test_ratelimit_burst_then_suppress),
        T(test_ratelimit_custom_burst),
        T(test_level_macros_respect_level),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
