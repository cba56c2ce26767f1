/* test_shard_pending: the bounded ring of forwarded detail requests — add,
 * take, expire, and overwriting the oldest when the ring wraps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shard_pending.h"

static int pending_setup(void **state)
{
    orbit_pending_table_t *t = malloc(sizeof *t);
    assert_non_null(t);
    memset(t, 0xA5, sizeof *t); /* init must not rely on zeroed memory */
    orbit_pending_init(t);
    *state = t;
    return 0;
}

static int pending_teardown(void **state)
{
    free(*state);
    return 0;
}

static orbit_pending_t request(uint64_t orig, int64_t deadline, int upstream, const char *rid)
{
    orbit_pending_t p;
    memset(&p, 0, sizeof p);
    p.orig_id = orig;
    p.deadline_ms = deadline;
    p.upstream = upstream;
    p.rid_len = strlen(rid);
    memcpy(p.rid, rid, p.rid_len);
    return p;
}

static void test_add_take(void **state)
{
    orbit_pending_table_t *t = *state;
    orbit_pending_t out;
    assert_false(orbit_pending_take(t, 1, &out)); /* empty */
    assert_false(orbit_pending_take(t, 0, &out)); /* 0 is never an id */

    orbit_pending_t a = request(500, 1000, 2, "client-a");
    orbit_pending_t b = request(501, 2000, -1, "client-b");
    uint64_t ia = orbit_pending_add(t, &a);
    uint64_t ib = orbit_pending_add(t, &b);
    assert_int_equal(ia, 1);
    assert_int_equal(ib, 2);

    memset(&out, 0, sizeof out);
    assert_true(orbit_pending_take(t, ib, &out));
    assert_int_equal(out.id, ib);
    assert_int_equal(out.orig_id, 501);
    assert_int_equal(out.deadline_ms, 2000);
    assert_int_equal(out.upstream, -1);
    assert_int_equal(out.rid_len, 8);
    assert_memory_equal(out.rid, "client-b", 8);
    /* Taken once only. */
    assert_false(orbit_pending_take(t, ib, &out));
    assert_true(orbit_pending_take(t, ia, &out));
    assert_int_equal(out.orig_id, 500);
    assert_int_equal(out.upstream, 2);
    assert_false(orbit_pending_take(t, ia, &out));
    /* An id never handed out. */
    assert_false(orbit_pending_take(t, 3, &out));
    assert_int_equal(t->overwritten, 0);
    assert_int_equal(t->expired, 0);
}

static void test_expire(void **state)
{
    orbit_pending_table_t *t = *state;
    orbit_pending_t a = request(1, 1000, 0, "a"), b = request(2, 3000, 0, "b"),
                    c = request(3, 2000, 0, "c");
    orbit_pending_add(t, &a);
    uint64_t ib = orbit_pending_add(t, &b);
    orbit_pending_add(t, &c);
    orbit_pending_t out;
    assert_false(orbit_pending_expire(t, 999, &out));
    assert_true(orbit_pending_expire(t, 1000, &out)); /* deadline reached */
    assert_int_equal(out.orig_id, 1);
    assert_false(orbit_pending_expire(t, 1999, &out));
    /* Several due at once come out one per call. */
    int n = 0;
    uint64_t seen = 0;
    while (orbit_pending_expire(t, 5000, &out)) {
        seen |= 1u << out.orig_id;
        n++;
    }
    assert_int_equal(n, 2);
    assert_int_equal(seen, (1u << 2) | (1u << 3));
    assert_int_equal(t->expired, 3);
    /* An expired request can no longer be taken (its answer is too late). */
    assert_false(orbit_pending_take(t, ib, &out));
}

static void test_wrap_overwrites_oldest(void **state)
{
    orbit_pending_table_t *t = *state;
    orbit_pending_t p = request(0, 1000, 0, "x");
    uint64_t first = 0, last = 0;
    for (int i = 0; i < ORBIT_PENDING_SLOTS + 3; i++) {
        p.orig_id = (uint64_t)i;
        last = orbit_pending_add(t, &p);
        if (i == 0)
            first = last;
    }
    /* The three oldest were forgotten (their askers time out) ... */
    assert_int_equal(t->overwritten, 3);
    orbit_pending_t out;
    assert_false(orbit_pending_take(t, first, &out));
    assert_false(orbit_pending_take(t, first + 1, &out));
    assert_false(orbit_pending_take(t, first + 2, &out));
    /* ... and their slots answer only to the new ids. */
    assert_true(orbit_pending_take(t, last, &out));
    assert_int_equal(out.orig_id, ORBIT_PENDING_SLOTS + 2);
    assert_true(orbit_pending_take(t, first + 3, &out));
    assert_int_equal(out.orig_id, 3);
    /* Every other request is still there. */
    int found = 0;
    for (uint64_t id = first + 4; id < last; id++)
        found += orbit_pending_take(t, id, &out);
    assert_int_equal(found, ORBIT_PENDING_SLOTS - 2);
    orbit_pending_t none;
    assert_false(orbit_pending_expire(t, INT64_MAX, &none));
}

static void test_taken_slot_is_not_an_overwrite(void **state)
{
    orbit_pending_table_t *t = *state;
    orbit_pending_t p = request(7, 1000, 0, "x"), out;
    /* Answered requests free their slot: a full turn of the ring later,
     * reusing it loses nothing. */
    for (int i = 0; i < 3 * ORBIT_PENDING_SLOTS; i++) {
        uint64_t id = orbit_pending_add(t, &p);
        assert_true(orbit_pending_take(t, id, &out));
    }
    assert_int_equal(t->overwritten, 0);
    /* An expired slot likewise. */
    uint64_t id = orbit_pending_add(t, &p);
    assert_true(orbit_pending_expire(t, 1000, &out));
    assert_int_equal(out.id, id);
    for (int i = 0; i < ORBIT_PENDING_SLOTS; i++)
        orbit_pending_add(t, &p);
    assert_int_equal(t->overwritten, 0);
    orbit_pending_add(t, &p);
    assert_int_equal(t->overwritten, 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, pending_setup, pending_teardown)
    const struct CMUnitTest tests[] = {
        T(test_add_take),
        T(test_expire),
        T(test_wrap_overwrites_oldest),
        T(test_taken_slot_is_not_an_overwrite),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
