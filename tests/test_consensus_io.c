/* test_consensus_io: the leader's own append deferred until after its sends
 * (root/consensus_io.h), against a recording fake of raft's I/O methods. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "consensus_io.h"

typedef struct {
    char calls[64]; /* one letter per backend call, in order: a(ppend) t s c */
    int append_rv;  /* what the backend's append returns */
    bool defer;     /* what the predicate answers */
    int n_cb;       /* completions (the backend's business: must stay 0) */
    bool closed;
    int fatal_rv; /* what the fatal hook was told (0: not called) */
} rec_t;

static rec_t rec;

static void note(char c)
{
    size_t n = strlen(rec.calls);
    assert_true(n + 1 < sizeof rec.calls);
    rec.calls[n] = c;
}

static void append_cb(struct raft_io_append *req, int status);

static int fake_append(struct raft_io *io, struct raft_io_append *req,
                       const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    (void)io;
    /* The request, entries, count and callback reach the backend as raft
     * gave them. */
    assert_ptr_equal(req->data, (void *)entries);
    assert_int_equal(n, 1);
    assert_ptr_equal(cb, append_cb);
    note('a');
    return rec.append_rv;
}

static int fake_truncate(struct raft_io *io, raft_index index)
{
    (void)io;
    (void)index;
    note('t');
    return 0;
}

static int fake_snapshot_put(struct raft_io *io, unsigned trailing,
                             struct raft_io_snapshot_put *req, const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb)
{
    (void)io;
    (void)trailing;
    (void)req;
    (void)snapshot;
    (void)cb;
    note('s');
    return 0;
}

static void fake_close(struct raft_io *io, raft_io_close_cb cb)
{
    (void)io;
    (void)cb;
    note('c');
}

static bool defer_pred(void *arg)
{
    assert_ptr_equal(arg, &rec);
    return rec.defer;
}

static void fatal_hook(void *arg, int rv)
{
    assert_ptr_equal(arg, &rec);
    rec.fatal_rv = rv;
}

static void append_cb(struct raft_io_append *req, int status)
{
    (void)req;
    (void)status;
    rec.n_cb++;
}

static void handle_closed(uv_handle_t *h)
{
    (void)h;
    rec.closed = true;
}

typedef struct {
    uv_loop_t loop;
    orbit_consensus_io_t d;
    struct raft_io_append req[4];
    struct raft_entry entries[4];
} fx_t;

static int setup(void **state)
{
    static fx_t fx;
    memset(&fx, 0, sizeof fx);
    memset(&rec, 0, sizeof rec);
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    fx.d.io.append = fake_append;
    fx.d.io.truncate = fake_truncate;
    fx.d.io.snapshot_put = fake_snapshot_put;
    fx.d.io.close = fake_close;
    orbit_consensus_io_wrap(&fx.d, &fx.loop, defer_pred, fatal_hook, &rec);
    for (int i = 0; i < 4; i++)
        fx.req[i].data = &fx.entries[i];
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    if (fx->d.wrapped)
        orbit_consensus_io_close_handle(&fx->d, handle_closed);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_true(rec.closed);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    return 0;
}

static int append(fx_t *fx, int i)
{
    return fx->d.io.append(&fx->d.io, &fx->req[i], &fx->entries[i], 1, append_cb);
}

/* Not the leader: an append goes to the backend at once. */
static void test_pass_through(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(append(fx, 0), 0);
    assert_string_equal(rec.calls, "a");
    assert_int_equal(fx->d.n_deferred, 0);
    /* Nothing keeps the loop alive. */
    assert_int_equal(uv_run(&fx->loop, UV_RUN_NOWAIT), 0);
}

/* The leader: appends wait for the next loop turn, then start in order;
 * the loop does not block meanwhile (an idle handle), and stops being kept
 * alive once they are started. */
static void test_deferred_to_next_turn(void **state)
{
    fx_t *fx = *state;
    rec.defer = true;
    assert_int_equal(append(fx, 0), 0);
    assert_int_equal(append(fx, 1), 0);
    assert_string_equal(rec.calls, "");
    uv_run(&fx->loop, UV_RUN_ONCE); /* would block forever without the idle handle */
    assert_string_equal(rec.calls, "aa");
    assert_int_equal(fx->d.n_deferred, 2);
    assert_int_equal(zlistx_size(fx->d.queue), 0);
    assert_int_equal(uv_run(&fx->loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(rec.n_cb, 0); /* completions are the backend's business */
}

/* Truncate, snapshot_put and close start the queued appends first; a later
 * append that is not deferred still comes after the queued ones. */
static void test_order_kept(void **state)
{
    fx_t *fx = *state;
    rec.defer = true;
    append(fx, 0);
    append(fx, 1);
    fx->d.io.truncate(&fx->d.io, 5);
    assert_string_equal(rec.calls, "aat");
    append(fx, 2);
    fx->d.io.snapshot_put(&fx->d.io, 0, NULL, NULL, NULL);
    assert_string_equal(rec.calls, "aatas");
    append(fx, 3);
    rec.defer = false;
    append(fx, 0);
    assert_string_equal(rec.calls, "aatasaa");
    rec.defer = true;
    append(fx, 1);
    fx->d.io.close(&fx->d.io, NULL);
    assert_string_equal(rec.calls, "aatasaaac");
}

/* A deferred append the backend refuses is fatal: the hook is told, the
 * appends queued after it are never started (they would write entries
 * raft is about to drop), nothing is completed behind the backend's back
 * (it may own the request already), and later appends are refused. */
static void test_refused_append_is_fatal(void **state)
{
    fx_t *fx = *state;
    rec.defer = true;
    append(fx, 0);
    append(fx, 1);
    rec.append_rv = RAFT_IOERR;
    uv_run(&fx->loop, UV_RUN_ONCE);
    assert_string_equal(rec.calls, "a");
    assert_int_equal(rec.fatal_rv, RAFT_IOERR);
    assert_int_equal(rec.n_cb, 0);
    assert_int_equal(fx->d.n_failed, 1);
    assert_int_equal(zlistx_size(fx->d.queue), 0);
    rec.defer = false;
    assert_int_equal(append(fx, 2), RAFT_IOERR);
    assert_string_equal(rec.calls, "a");
}

/* Closing the handle starts what is queued; appends afterwards go straight
 * to the backend. */
static void test_close_handle_flushes(void **state)
{
    fx_t *fx = *state;
    rec.defer = true;
    append(fx, 0);
    orbit_consensus_io_close_handle(&fx->d, handle_closed);
    assert_string_equal(rec.calls, "a");
    append(fx, 1);
    assert_string_equal(rec.calls, "aa");
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_true(rec.closed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pass_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_to_next_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_append_is_fatal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_handle_flushes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
