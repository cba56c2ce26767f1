/* test_ledger_applier: a follower's entries held, applied in batches on the
 * applier's thread after the batch time or at once by sync, failures kept
 * and retried (no more taken meanwhile), and everything applied when it
 * closes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ledger.h"
#include "ledger_applier.h"
#include "orbit_err.h"

typedef struct {
    char dir[64];
    orbit_ledger_t *l;
    uv_loop_t loop;
    uint8_t *entries[64];
    size_t lens[64];
} fx_t;

/* Entry i: one placement of capsule "c<i>" on node "n<i % 3>". */
static void build(fx_t *f, int i)
{
    char capsule[16], node[8];
    snprintf(capsule, sizeof capsule, "c%d", i);
    snprintf(node, sizeof node, "n%d", i % 3);
    Orbit__Ledger__Resources env = ORBIT__LEDGER__RESOURCES__INIT;
    env.has_cpu_m = true;
    env.cpu_m = 10;
    Orbit__Ledger__Placement pl = ORBIT__LEDGER__PLACEMENT__INIT;
    pl.capsule = capsule;
    pl.node = node;
    pl.envelope = &env;
    Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
    cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT;
    cm.placement = &pl;
    Orbit__Ledger__Proposal p = ORBIT__LEDGER__PROPOSAL__INIT, *pp = &p;
    p.client_id = "applier";
    p.request_id = (uint64_t)i + 1;
    p.commitment = &cm;
    Orbit__Ledger__Entry e = ORBIT__LEDGER__ENTRY__INIT;
    e.time_ms = 1764000000000 + i;
    e.n_proposals = 1;
    e.proposals = &pp;
    f->lens[i] = orbit__ledger__entry__get_packed_size(&e);
    f->entries[i] = malloc(f->lens[i]);
    assert_non_null(f->entries[i]);
    orbit__ledger__entry__pack(&e, f->entries[i]);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test-applier-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[256];
    assert_int_equal(orbit_ledger_open(f->dir, &f->l, err, sizeof err), ORBIT_OK);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    for (int i = 0; i < 64; i++)
        build(f, i);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    assert_int_equal(uv_loop_close(&f->loop), 0); /* every handle closed */
    orbit_ledger_close(&f->l);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    for (int i = 0; i < 64; i++)
        free(f->entries[i]);
    free(f);
    return 0;
}

static void hold(fx_t *f, orbit_ledger_applier_t *a, int from, int to)
{
    for (int i = from; i < to; i++)
        assert_int_equal(orbit_ledger_applier_hold(a, (uint64_t)i + 1, f->entries[i], f->lens[i]),
                         ORBIT_OK);
}

/* Turn the loop until the ledger's applied index is want (bounded). */
static void run_until_applied(fx_t *f, uint64_t want)
{
    for (int i = 0; i < 2000 && orbit_ledger_applied_index(f->l) != want; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (orbit_ledger_applied_index(f->l) != want)
        fail_msg("timed out after 10 s at applied index %llu, waiting for %llu",
                 (unsigned long long)orbit_ledger_applied_index(f->l), (unsigned long long)want);
}

static bool closed;
static void on_closed(void *arg)
{
    (void)arg;
    closed = true;
}

static void close_applier(fx_t *f, orbit_ledger_applier_t *a)
{
    closed = false;
    orbit_ledger_applier_close(a, on_closed, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(closed);
}

/* Held entries wait for the batch time, then the thread applies them all
 * in one transaction; pending names the last until then. */
static void test_batch_after_time(void **state)
{
    fx_t *f = *state;
    char err[256];
    orbit_ledger_applier_t *a = orbit_ledger_applier_new(f->l, &f->loop, 30, err, sizeof err);
    assert_non_null(a);
    assert_int_equal(orbit_ledger_applier_pending(a), 0);
    hold(f, a, 0, 10);
    assert_int_equal(orbit_ledger_applier_pending(a), 10);
    assert_int_equal(orbit_ledger_applied_index(f->l), 0); /* not yet */
    run_until_applied(f, 10);
    assert_int_equal(orbit_ledger_applied_index(f->l), 10);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the thread's completion */
    assert_int_equal(orbit_ledger_applier_sync(a), ORBIT_OK);
    assert_int_equal(orbit_ledger_applier_pending(a), 0);
    const orbit_ledger_applier_stats_t *st = orbit_ledger_applier_stats(a);
    assert_int_equal(st->held, 10);
    assert_int_equal(st->batches, 1);
    assert_int_equal(st->last_batch, 10);
    assert_int_equal(orbit_ledger_index(f->l), 10); /* ten placements */
    /* an index not above the last held is refused */
    assert_int_equal(orbit_ledger_applier_hold(a, 10, f->entries[10], f->lens[10]), ORBIT_EINVAL);
    close_applier(f, a);
}

/* sync applies at once what is held, whatever the batch time. */
static void test_sync_now(void **state)
{
    fx_t *f = *state;
    char err[256];
    orbit_ledger_applier_t *a = orbit_ledger_applier_new(f->l, &f->loop, 3600000, err, sizeof err);
    assert_non_null(a);
    hold(f, a, 0, 5);
    assert_int_equal(orbit_ledger_applier_sync(a), ORBIT_OK);
    assert_int_equal(orbit_ledger_applied_index(f->l), 5);
    hold(f, a, 5, 12);
    assert_int_equal(orbit_ledger_applier_pending(a), 12);
    /* closing applies what is held */
    close_applier(f, a);
    assert_int_equal(orbit_ledger_applied_index(f->l), 12);
    orbit_ledger_placement_t p;
    assert_int_equal(orbit_ledger_get_placement(f->l, "c11", &p), ORBIT_OK);
    assert_string_equal(p.node, "n2");
}

static int fail_left;
static int failing_apply(orbit_ledger_t *l, const orbit_ledger_entry_t *es, size_t n)
{
    if (fail_left > 0) {
        fail_left--;
        return ORBIT_EIO;
    }
    return orbit_ledger_apply_many(l, es, n);
}

/* A batch that fails on the thread is kept and applied by a later try,
 * nothing lost or out of order; meanwhile the applier takes no more entries
 * (their caller's sync fails, and raft is told). */
static void test_failure_kept(void **state)
{
    fx_t *f = *state;
    char err[256];
    orbit_ledger_applier_t *a = orbit_ledger_applier_new(f->l, &f->loop, 150, err, sizeof err);
    assert_non_null(a);
    orbit_ledger_applier_set_apply(a, failing_apply);
    fail_left = 1;
    hold(f, a, 0, 6);
    /* the thread's batch fails; the entries stay pending */
    for (int i = 0; i < 2000 && orbit_ledger_applier_stats(a)->failures == 0; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(orbit_ledger_applier_stats(a)->failures, 1);
    assert_int_equal(orbit_ledger_applied_index(f->l), 0);
    assert_int_equal(orbit_ledger_applier_pending(a), 6);
    /* while failing it takes nothing more: the caller syncs, and a sync
     * that fails too is the error raft gets (entries do not pile up) */
    assert_int_equal(orbit_ledger_applier_hold(a, 7, f->entries[6], f->lens[6]), ORBIT_EAGAIN);
    fail_left = 1;
    assert_int_equal(orbit_ledger_applier_sync(a), ORBIT_EIO);
    assert_int_equal(orbit_ledger_applier_stats(a)->failures, 2);
    assert_int_equal(orbit_ledger_applied_index(f->l), 0);
    assert_int_equal(orbit_ledger_applier_hold(a, 7, f->entries[6], f->lens[6]), ORBIT_EAGAIN);
    /* a sync that succeeds applies the kept ones in order; then it takes
     * entries again */
    assert_int_equal(orbit_ledger_applier_sync(a), ORBIT_OK);
    assert_int_equal(orbit_ledger_applied_index(f->l), 6);
    hold(f, a, 6, 9);
    run_until_applied(f, 9);
    assert_int_equal(orbit_ledger_applied_index(f->l), 9);
    assert_int_equal(orbit_ledger_index(f->l), 9);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(orbit_ledger_applier_sync(a), ORBIT_OK);
    assert_int_equal(orbit_ledger_applier_pending(a), 0);
    close_applier(f, a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_after_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_kept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
