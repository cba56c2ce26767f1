/* test_leaf_exec: reconciliation with a real capsule runner and real short processes (sleep,
 * true, false, a command that does not exist): desired capsules start, undesired ones stop,
 * terminal desired ones stay and are never restarted, terminal undesired ones are forgotten
 * once reported, a new placement of the same id replaces the old process, and the list lands
 * in the node state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "leaf_exec.h"
#include "orbit_err.h"

#define GRACE_MS 300
#define WAIT_MS  8000
#define WALL_MS  1700000000000LL /* a fixed wall clock, so since_ms can be checked */

typedef struct {
    orbit_leaf_exec_t *x;
    orbit_node_state_t s;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    orbit_leaf_capsules_cfg_t cfg = {.no_cgroups = true, .stop_grace_ms = GRACE_MS};
    f->x = orbit_leaf_exec_new(&cfg);
    if (!f->x) {
        free(f);
        return -1;
    }
    orbit_node_state_init(&f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_exec_destroy(&f->x);
    assert_null(f->x);
    orbit_node_state_close(&f->s);
    free(f);
    return 0;
}

static char *const SLEEP[] = {"sleep", "30", NULL};
static char *const TRUE_[] = {"true", NULL};
static char *const FALSE_[] = {"false", NULL};
static char *const MISSING[] = {"/nonexistent/cmd", NULL};

/* Add capsule id (placement index) running argv, or unrunnable with reason, to w. */
static void want(orbit_leaf_wants_t *w, const char *id, uint64_t index, char *const *argv,
                 const char *reason)
{
    orbit_leaf_want_t x = {0};
    snprintf(x.id, sizeof x.id, "%s", id);
    x.index = index;
    x.argv = (char **)argv;
    snprintf(x.reason, sizeof x.reason, "%s", reason ? reason : "");
    assert_int_equal(orbit_leaf_wants_put(w, &x), ORBIT_OK);
}

/* Hand the set built by the callers' want() calls to the executor. */
static void give(fixture_t *f, orbit_leaf_wants_t *w)
{
    orbit_leaf_exec_want(f->x, w, zclock_mono());
    assert_int_equal(w->n, 0); /* taken over */
}

static void sample(fixture_t *f)
{
    int64_t now = zclock_mono();
    assert_int_equal(orbit_leaf_exec_sample(f->x, now, WALL_MS + now, &f->s), ORBIT_OK);
}

/* The reported entry for id, or NULL. */
static const orbit_capsule_t *reported(const fixture_t *f, const char *id)
{
    for (uint32_t i = 0; i < f->s.ncapsules; i++)
        if (!strcmp(f->s.capsules[i].id, id))
            return &f->s.capsules[i];
    return NULL;
}

/* Sample until id is reported in state st (fails the test after WAIT_MS). */
static const orbit_capsule_t *sample_until(fixture_t *f, const char *id, orbit_capsule_state_t st)
{
    int64_t deadline = zclock_mono() + WAIT_MS;
    while (zclock_mono() < deadline) {
        sample(f);
        const orbit_capsule_t *c = reported(f, id);
        if (c && c->state == st)
            return c;
        zclock_sleep(10);
    }
    fail_msg("%s never reported %s", id, orbit_capsule_state_name(st));
    return NULL;
}

static pid_t pid_of(const fixture_t *f, const char *id)
{
    orbit_leaf_capsule_info_t info;
    if (orbit_leaf_capsule_get(orbit_leaf_exec_runner(f->x), id, &info) != ORBIT_OK)
        return 0;
    return info.pid;
}

static uint64_t runner_started(const fixture_t *f)
{
    orbit_leaf_capsules_stats_t st;
    orbit_leaf_capsules_stats(orbit_leaf_exec_runner(f->x), &st);
    return st.started;
}

/* m1/web/0 and m1/web/1 placed, both running sleep (w is empty after). */
static void two_sleepers(fixture_t *f, orbit_leaf_wants_t *w)
{
    want(w, "m1/web/0", 5, SLEEP, NULL);
    want(w, "m1/web/1", 6, SLEEP, NULL);
    give(f, w);
    sample_until(f, "m1/web/0", ORBIT_CAPSULE_RUNNING);
    sample_until(f, "m1/web/1", ORBIT_CAPSULE_RUNNING);
}

static void test_start_desired(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_wants_t w;
    orbit_leaf_wants_init(&w);
    want(&w, "m1/web/0", 5, SLEEP, NULL);
    want(&w, "m1/web/1", 6, TRUE_, NULL);
    int64_t t0 = zclock_mono();
    give(f, &w);
    /* Started at once, not a sample later. */
    assert_int_equal(runner_started(f), 2);
    assert_int_equal(orbit_leaf_exec_count(f->x), 2);
    assert_true(pid_of(f, "m1/web/0") > 0);
    const orbit_capsule_t *c = sample_until(f, "m1/web/0", ORBIT_CAPSULE_RUNNING);
    assert_true(c->since_ms >= WALL_MS + t0 && c->since_ms <= WALL_MS + zclock_mono());
    assert_string_equal(c->reason, "");
    c = sample_until(f, "m1/web/1", ORBIT_CAPSULE_EXITED);
    assert_int_equal(c->exit_code, 0);
    /* The node state carries both, sorted by id. */
    assert_int_equal(f->s.ncapsules, 2);
    assert_string_equal(f->s.capsules[0].id, "m1/web/0");
    assert_string_equal(f->s.capsules[1].id, "m1/web/1");
    assert_int_equal(orbit_leaf_exec_stats(f->x)->starts, 2);
}

static void test_stop_undesired_then_forget(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_wants_t w;
    orbit_leaf_wants_init(&w);
    two_sleepers(f, &w);
    pid_t pid = pid_of(f, "m1/web/0");
    assert_true(pid > 0);
    /* m1/web/0 is no longer desired: stopped (SIGTERM), reported STOPPED once, then gone. */
    want(&w, "m1/web/1", 6, SLEEP, NULL);
    give(f, &w);
    assert_int_equal(orbit_leaf_exec_stats(f->x)->stops, 1);
    sample_until(f, "m1/web/0", ORBIT_CAPSULE_STOPPED);
    assert_true(kill(pid, 0) != 0); /* reaped: no such process */
    assert_int_equal(orbit_leaf_exec_count(f->x), 2);
    sample(f);
    assert_null(reported(f, "m1/web/0"));
    assert_non_null(reported(f, "m1/web/1"));
    assert_int_equal(orbit_leaf_exec_count(f->x), 1);
    assert_int_equal(orbit_leaf_exec_stats(f->x)->forgotten, 1);
    /* The runner forgot it too. */
    orbit_leaf_capsule_info_t info;
    assert_int_equal(orbit_leaf_capsule_get(orbit_leaf_exec_runner(f->x), "m1/web/0", &info),
                     ORBIT_ENOTFOUND);
    /* Everything undesired: the state ends empty. */
    give(f, &w);
    sample_until(f, "m1/web/1", ORBIT_CAPSULE_STOPPED);
    sample(f);
    assert_int_equal(f->s.ncapsules, 0);
    assert_int_equal(orbit_leaf_exec_count(f->x), 0);
}

static void test_terminal_desired_kept(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_wants_t w;
    orbit_leaf_wants_init(&w);
    want(&w, "m1/job/0", 3, FALSE_, NULL);
    want(&w, "m1/job/1", 4, MISSING, NULL);
    give(f, &w);
    const orbit_capsule_t *c = sample_until(f, "m1/job/0", ORBIT_CAPSULE_EXITED);
    assert_int_equal(c->exit_code, 1);
    c = sample_until(f, "m1/job/1", ORBIT_CAPSULE_FAILED);
    assert_non_null(strstr(c->reason, "/nonexistent/cmd"));
    int64_t failed_since = c->since_ms;
    /* Still desired, same placements: never restarted, however often sampled or re-sent. */
    for (int i = 0; i < 5; i++) {
        want(&w, "m1/job/0", 3, FALSE_, NULL);
        want(&w, "m1/job/1", 4, MISSING, NULL);
        give(f, &w);
        sample(f);
        zclock_sleep(10);
    }
    assert_int_equal(runner_started(f), 2);
    assert_int_equal(reported(f, "m1/job/0")->state, ORBIT_CAPSULE_EXITED);
    assert_int_equal(reported(f, "m1/job/1")->state, ORBIT_CAPSULE_FAILED);
    assert_int_equal(reported(f, "m1/job/1")->since_ms, failed_since);
    /* The two clocks read a moment apart (or the wall clock stepped): the
     * reported time of a state does not move with them. */
    int64_t exited_since = reported(f, "m1/job/0")->since_ms;
    for (int64_t skew = -1; skew <= 1000; skew += 1001) {
        int64_t now = zclock_mono();
        assert_int_equal(orbit_leaf_exec_sample(f->x, now, WALL_MS + now + skew, &f->s), ORBIT_OK);
        assert_int_equal(reported(f, "m1/job/1")->since_ms, failed_since);
        assert_int_equal(reported(f, "m1/job/0")->since_ms, exited_since);
    }
    assert_int_equal(orbit_leaf_exec_stats(f->x)->forgotten, 0);
    /* A new placement (another index) of a terminal capsule starts it again. */
    want(&w, "m1/job/0", 9, TRUE_, NULL);
    want(&w, "m1/job/1", 4, MISSING, NULL);
    give(f, &w);
    assert_int_equal(runner_started(f), 3);
    c = sample_until(f, "m1/job/0", ORBIT_CAPSULE_EXITED);
    assert_int_equal(c->exit_code, 0);
}

static void test_new_placement_replaces_running(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_wants_t w;
    orbit_leaf_wants_init(&w);
    want(&w, "m1/web/0", 5, SLEEP, NULL);
    give(f, &w);
    sample_until(f, "m1/web/0", ORBIT_CAPSULE_RUNNING);
    pid_t old = pid_of(f, "m1/web/0");
    /* Revoked and placed again between two reads: same id, another index. The old process
     * is stopped first; the new one starts once it has ended. */
    want(&w, "m1/web/0", 8, SLEEP, NULL);
    give(f, &w);
    assert_int_equal(orbit_leaf_exec_stats(f->x)->stops, 1);
    assert_int_equal(runner_started(f), 1);
    int64_t deadline = zclock_mono() + WAIT_MS;
    while (runner_started(f) < 2 && zclock_mono() < deadline) {
        sample(f);
        zclock_sleep(10);
    }
    assert_int_equal(runner_started(f), 2);
    assert_true(kill(old, 0) != 0);
    sample_until(f, "m1/web/0", ORBIT_CAPSULE_RUNNING);
    pid_t fresh = pid_of(f, "m1/web/0");
    assert_true(fresh > 0 && fresh != old);
    assert_int_equal(f->s.ncapsules, 1);
}

static void test_unrunnable(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_wants_t w;
    orbit_leaf_wants_init(&w);
    want(&w, "m1/gone/0", 5, NULL, "module m1/gone is not in the ledger");
    want(&w, "m1/web/0", 6, SLEEP, NULL);
    give(f, &w);
    assert_int_equal(runner_started(f), 1); /* no process for the unrunnable one */
    assert_int_equal(orbit_leaf_exec_stats(f->x)->unrunnable, 1);
    const orbit_capsule_t *c = sample_until(f, "m1/gone/0", ORBIT_CAPSULE_FAILED);
    assert_string_equal(c->reason, "module m1/gone is not in the ledger");
    assert_true(c->since_ms > WALL_MS);
    /* Kept while desired. */
    want(&w, "m1/gone/0", 5, NULL, "module m1/gone is not in the ledger");
    want(&w, "m1/web/0", 6, SLEEP, NULL);
    give(f, &w);
    sample(f);
    sample(f);
    assert_non_null(reported(f, "m1/gone/0"));
    assert_int_equal(orbit_leaf_exec_stats(f->x)->unrunnable, 1);
    /* Undesired: reported before, so forgotten at the next sample. */
    want(&w, "m1/web/0", 6, SLEEP, NULL);
    give(f, &w);
    sample(f);
    assert_null(reported(f, "m1/gone/0"));
    assert_non_null(reported(f, "m1/web/0"));
}

static void test_terminal_undesired_reported_once(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_wants_t w;
    orbit_leaf_wants_init(&w);
    want(&w, "m1/x/0", 1, NULL, "capsule id is not mission/module/index");
    give(f, &w);
    /* Undesired before any sample: still reported once, then forgotten. */
    give(f, &w);
    sample(f);
    const orbit_capsule_t *c = reported(f, "m1/x/0");
    assert_non_null(c);
    assert_int_equal(c->state, ORBIT_CAPSULE_FAILED);
    sample(f);
    assert_null(reported(f, "m1/x/0"));
    assert_int_equal(orbit_leaf_exec_count(f->x), 0);
}

static void test_long_missing_command(void **state)
{
    fixture_t *f = *state;
    char path[200];
    memset(path, 'z', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    char *const argv[] = {path, NULL};
    orbit_leaf_wants_t w;
    orbit_leaf_wants_init(&w);
    want(&w, "m1/long/0", 1, argv, NULL);
    give(f, &w);
    const orbit_capsule_t *c = sample_until(f, "m1/long/0", ORBIT_CAPSULE_FAILED);
    /* The runner keeps the start of the command; the reason fits the wire's limit. */
    assert_true(strlen(c->reason) < ORBIT_CAPSULE_REASON_MAX);
    assert_non_null(strstr(c->reason, "command not found: /zzz"));
}

/* Destroying the executor stops what still runs and reaps it. */
static void test_destroy_stops(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_wants_t w;
    orbit_leaf_wants_init(&w);
    two_sleepers(f, &w);
    pid_t a = pid_of(f, "m1/web/0"), b = pid_of(f, "m1/web/1");
    orbit_leaf_exec_destroy(&f->x);
    assert_null(f->x);
    assert_true(kill(a, 0) != 0);
    assert_true(kill(b, 0) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_desired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_undesired_then_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminal_desired_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_placement_replaces_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unrunnable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminal_undesired_reported_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_missing_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_stops, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
