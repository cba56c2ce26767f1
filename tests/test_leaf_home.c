/* test_leaf_home: the homing decisions — candidate lists, the re-home plan, refetch schedule and
 * jitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "leaf_home.h"
#include "orbit_err.h"

#define INTERVAL 1000

typedef struct {
    orbit_leaf_candidates_t old, fresh;
    orbit_leaf_home_t home;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    orbit_leaf_home_init(&f->home, INTERVAL, 42);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_candidates_close(&f->old);
    orbit_leaf_candidates_close(&f->fresh);
    orbit_leaf_candidates_close(&f->fresh); /* idempotent */
    free(f);
    return 0;
}

/* Paired helpers: parse both lists (must succeed). */
#define LISTS(f, a, b)                                                                             \
    do {                                                                                           \
        orbit_leaf_candidates_close(&(f)->old);                                                    \
        orbit_leaf_candidates_close(&(f)->fresh);                                                  \
        assert_int_equal(orbit_leaf_candidates_parse(&(f)->old, (a)), ORBIT_OK);                   \
        assert_int_equal(orbit_leaf_candidates_parse(&(f)->fresh, (b)), ORBIT_OK);                 \
    } while (0)

static void parse_lists(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(orbit_leaf_candidates_parse(&f->old, "tcp://a:1,,tcp://b:2,"), ORBIT_OK);
    assert_int_equal(f->old.n, 2);
    assert_string_equal(f->old.ep[0], "tcp://a:1");
    assert_string_equal(f->old.ep[1], "tcp://b:2");
    assert_int_equal(orbit_leaf_candidates_find(&f->old, "tcp://b:2"), 1);
    assert_int_equal(orbit_leaf_candidates_find(&f->old, "tcp://c:3"), -1);
    orbit_leaf_candidates_close(&f->old);
    assert_int_equal(f->old.n, 0);
    assert_int_equal(orbit_leaf_candidates_parse(&f->old, ""), ORBIT_EINVAL);
    assert_int_equal(orbit_leaf_candidates_parse(&f->old, ",,"), ORBIT_EINVAL);
    assert_int_equal(orbit_leaf_candidates_parse(&f->old, NULL), ORBIT_EINVAL);
    assert_int_equal(f->old.n, 0);
    /* Longer lists are cut at the maximum. */
    char big[1024] = "";
    for (int i = 0; i < 20; i++) {
        char ep[32];
        snprintf(ep, sizeof ep, "%stcp://h:%d", i ? "," : "", i + 1);
        strcat(big, ep);
    }
    assert_int_equal(orbit_leaf_candidates_parse(&f->old, big), ORBIT_OK);
    assert_int_equal(f->old.n, ORBIT_LEAF_HOME_CANDIDATES_MAX);
    assert_string_equal(f->old.ep[15], "tcp://h:16");
}

static void plan_first_connect(void **state)
{
    fixture_t *f = *state;
    size_t next = 99;
    assert_int_equal(orbit_leaf_candidates_parse(&f->fresh, "tcp://a:1,tcp://b:2"), ORBIT_OK);
    assert_int_equal(orbit_leaf_home_plan(&f->old, 0, &f->fresh, &next), ORBIT_LEAF_HOME_SWITCH);
    assert_int_equal(next, 0);
}

static void plan_same_list_keeps(void **state)
{
    fixture_t *f = *state;
    size_t next = 99;
    LISTS(f, "tcp://a:1,tcp://b:2", "tcp://a:1,tcp://b:2");
    assert_int_equal(orbit_leaf_home_plan(&f->old, 0, &f->fresh, &next), ORBIT_LEAF_HOME_KEEP);
    assert_int_equal(next, 0);
    /* Failed over to b: the same list keeps it there (the return timer
     * brings it back, not the topology). */
    assert_int_equal(orbit_leaf_home_plan(&f->old, 1, &f->fresh, &next), ORBIT_LEAF_HOME_KEEP);
    assert_int_equal(next, 1);
}

static void plan_new_owner_switches(void **state)
{
    fixture_t *f = *state;
    size_t next = 99;
    LISTS(f, "tcp://a:1,tcp://b:2", "tcp://c:3,tcp://a:1,tcp://b:2");
    assert_int_equal(orbit_leaf_home_plan(&f->old, 0, &f->fresh, &next), ORBIT_LEAF_HOME_SWITCH);
    assert_int_equal(next, 0);
    /* Even while failed over to the new owner's endpoint: go to index 0. */
    LISTS(f, "tcp://a:1,tcp://b:2", "tcp://b:2,tcp://a:1");
    assert_int_equal(orbit_leaf_home_plan(&f->old, 1, &f->fresh, &next), ORBIT_LEAF_HOME_SWITCH);
    assert_int_equal(next, 0);
}

static void plan_same_owner_never_touches_socket(void **state)
{
    fixture_t *f = *state;
    size_t next = 99;
    /* A shard added behind the owner: new list, same socket. */
    LISTS(f, "tcp://a:1,tcp://b:2", "tcp://a:1,tcp://c:3,tcp://b:2");
    assert_int_equal(orbit_leaf_home_plan(&f->old, 0, &f->fresh, &next), ORBIT_LEAF_HOME_UPDATE);
    assert_int_equal(next, 0);
    /* Failed over to b, which moved to index 2: stay on b. */
    assert_int_equal(orbit_leaf_home_plan(&f->old, 1, &f->fresh, &next), ORBIT_LEAF_HOME_UPDATE);
    assert_int_equal(next, 2);
    /* Failed over to b, which left the list: back to the owner. */
    LISTS(f, "tcp://a:1,tcp://b:2", "tcp://a:1,tcp://c:3");
    assert_int_equal(orbit_leaf_home_plan(&f->old, 1, &f->fresh, &next), ORBIT_LEAF_HOME_SWITCH);
    assert_int_equal(next, 0);
    /* A bad index is a fresh start. */
    assert_int_equal(orbit_leaf_home_plan(&f->old, 7, &f->fresh, &next), ORBIT_LEAF_HOME_SWITCH);
}

static void first_read_due_at_once_and_retried(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_home_t *h = &f->home;
    assert_true(orbit_leaf_home_due(h, 0));
    orbit_leaf_home_failed(h, 0);
    assert_false(orbit_leaf_home_due(h, INTERVAL - 1));
    assert_true(orbit_leaf_home_due(h, INTERVAL));
    /* Acks before the first read schedule nothing (reads are due anyway). */
    assert_false(orbit_leaf_home_ack_epoch(h, 5, INTERVAL));
    assert_true(orbit_leaf_home_fetched(h, 5, INTERVAL));
    assert_int_equal(h->held_epoch, 5);
    assert_false(orbit_leaf_home_due(h, 100 * INTERVAL)); /* none scheduled */
    assert_int_equal(h->stats.fetches, 2);
    assert_int_equal(h->stats.fetch_failures, 1);
    assert_int_equal(h->stats.refetches, 0);
}

static void higher_ack_epoch_schedules_jittered_refetch(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_home_t *h = &f->home;
    assert_true(orbit_leaf_home_due(h, 0));
    assert_true(orbit_leaf_home_fetched(h, 3, 0));
    /* Same or lower epochs: nothing. */
    assert_false(orbit_leaf_home_ack_epoch(h, 3, 10));
    assert_false(orbit_leaf_home_ack_epoch(h, 2, 10));
    assert_false(orbit_leaf_home_ack_epoch(h, 0, 10));
    /* Higher: a read within [now, now + interval). */
    assert_true(orbit_leaf_home_ack_epoch(h, 4, 10));
    assert_true(h->due_ms >= 10 && h->due_ms < 10 + INTERVAL);
    int64_t due = h->due_ms;
    /* More acks do not push it later. */
    for (int i = 0; i < 50; i++)
        orbit_leaf_home_ack_epoch(h, 4, 20);
    assert_true(h->due_ms <= due);
    due = h->due_ms;
    assert_false(orbit_leaf_home_due(h, due - 1));
    assert_true(orbit_leaf_home_due(h, due));
    assert_int_equal(h->stats.refetches, 1);
    /* The replica is behind (epoch 3 < 4): read again one interval later. */
    assert_true(orbit_leaf_home_fetched(h, 3, due));
    assert_int_equal(h->stats.stale_fetches, 1);
    assert_int_equal(h->due_ms, due + INTERVAL);
    assert_true(orbit_leaf_home_due(h, due + INTERVAL));
    assert_true(orbit_leaf_home_fetched(h, 4, due + INTERVAL));
    assert_int_equal(h->held_epoch, 4);
    assert_int_equal(h->due_ms, INT64_MAX);
    assert_int_equal(h->stats.refetches, 2);
    /* An older answer later on is not applied. */
    assert_false(orbit_leaf_home_fetched(h, 2, due + 2 * INTERVAL));
    assert_int_equal(h->held_epoch, 4);
}

static void intermediate_epoch_is_applied_and_retried(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_home_t *h = &f->home;
    assert_true(orbit_leaf_home_due(h, 0));
    assert_true(orbit_leaf_home_fetched(h, 1, 0));
    assert_true(orbit_leaf_home_ack_epoch(h, 9, 0));
    assert_true(orbit_leaf_home_due(h, h->due_ms));
    /* 5 is newer than what we hold (apply it) but older than 9 (again). */
    assert_true(orbit_leaf_home_fetched(h, 5, 100));
    assert_int_equal(h->held_epoch, 5);
    assert_int_equal(h->due_ms, 100 + INTERVAL);
    /* A newer ack while a retry is scheduled may bring it forward only. */
    orbit_leaf_home_ack_epoch(h, 10, 150);
    assert_true(h->due_ms <= 100 + INTERVAL);
    assert_int_equal(h->seen_epoch, 10);
}

static void jitter_bounds_and_spread(void **state)
{
    (void)state;
    orbit_leaf_home_t h;
    orbit_leaf_home_init(&h, INTERVAL, 7);
    uint32_t buckets[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint32_t j = orbit_leaf_home_jitter(&h);
        assert_true(j < INTERVAL);
        buckets[j / (INTERVAL / 10)]++;
    }
    /* Spread over the interval: each tenth gets roughly its share. */
    for (int b = 0; b < 10; b++)
        assert_true(buckets[b] > 800 && buckets[b] < 1200);
    orbit_leaf_home_init(&h, 1, 7);
    assert_int_equal(orbit_leaf_home_jitter(&h), 0);
    orbit_leaf_home_init(&h, 0, 0); /* seed from the clock; no division by zero */
    assert_int_equal(orbit_leaf_home_jitter(&h), 0);
    /* Two seeds, two different sequences (a fleet does not move in step). */
    orbit_leaf_home_t a, b;
    orbit_leaf_home_init(&a, INTERVAL, 1);
    orbit_leaf_home_init(&b, INTERVAL, 2);
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += orbit_leaf_home_jitter(&a) == orbit_leaf_home_jitter(&b);
    assert_true(same < 10);
}

/* A topology read may wait half an interval, never under 100 ms nor over 2 s. */
static void fetch_timeout_is_half_an_interval_clamped(void **state)
{
    (void)state;
    assert_int_equal(orbit_leaf_home_fetch_timeout_ms(1000), 500);
    assert_int_equal(orbit_leaf_home_fetch_timeout_ms(100), 100);
    assert_int_equal(orbit_leaf_home_fetch_timeout_ms(0), 100);
    assert_int_equal(orbit_leaf_home_fetch_timeout_ms(60000), 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(parse_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(plan_first_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(plan_same_list_keeps, setup, teardown),
        cmocka_unit_test_setup_teardown(plan_new_owner_switches, setup, teardown),
        cmocka_unit_test_setup_teardown(plan_same_owner_never_touches_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(first_read_due_at_once_and_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(higher_ack_epoch_schedules_jittered_refetch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(intermediate_epoch_is_applied_and_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(jitter_bounds_and_spread, setup, teardown),
        cmocka_unit_test(fetch_timeout_is_half_an_interval_clamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
