/* test_orbit_bench: the benchmark arithmetic (median, histogram difference
 * and quantiles) and the pre-encoded frames: their layout, that a shard
 * applies every message, and that re-stamping turns a replay into a reboot
 * plus fresh deltas instead of duplicates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "orbit_bench_frames.h"
#include "orbit_bench_ledger.h"
#include "orbit_bench_plan.h"
#include "orbit_bench_proc.h"
#include "orbit_bench_stats.h"
#include "orbit_err.h"
#include "orbit_wire.h"
#include "shard_nodes.h"

#define NODES  50
#define ROUNDS 4
#define BATCH  16
#define INC    (ORBIT_BENCH_STAMP_MIN + 5)
#define SEQ    (ORBIT_BENCH_STAMP_MIN + 100)

/* ------------------------------------------------------------------ stats */

static void test_median_min_max(void **state)
{
    (void)state;
    double odd[] = {5, 1, 3};
    assert_true(orbit_bench_median(odd, 3) == 3.0);
    double even[] = {4, 1, 3, 2};
    assert_true(orbit_bench_median(even, 4) == 2.5);
    assert_true(orbit_bench_median(even, 0) == 0.0);
    double v[] = {2, -1, 7};
    assert_true(orbit_bench_min(v, 3) == -1.0);
    assert_true(orbit_bench_max(v, 3) == 7.0);
}

static void test_parse_counts(void **state)
{
    (void)state;
    uint32_t v[3];
    size_t n = 0;
    char err[160];
    assert_int_equal(
        orbit_bench_parse_counts("1,16,256", "proposers", 1, 4096, v, 3, &n, err, sizeof err),
        ORBIT_OK);
    assert_int_equal(n, 3);
    assert_int_equal(v[2], 256);
    const char *bad[] = {"", "0", "1,,2", "1,2,3,4", "-1", "5000", "1x", "1,", NULL};
    for (int i = 0; bad[i]; i++) {
        err[0] = '\0';
        assert_int_equal(
            orbit_bench_parse_counts(bad[i], "proposers", 1, 4096, v, 3, &n, err, sizeof err),
            ORBIT_EINVAL);
        assert_non_null(strstr(err, "--proposers"));
    }
}

static void test_split_root_args(void **state)
{
    (void)state;
    char buf[64], err[128];
    char *out[ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX + 1];
    assert_int_equal(orbit_bench_ledger_split_args(NULL, buf, sizeof buf, out, err, sizeof err), 0);
    assert_null(out[0]);
    assert_int_equal(orbit_bench_ledger_split_args("  --snapshot-threshold  1024 ", buf, sizeof buf,
                                                   out, err, sizeof err),
                     0);
    assert_string_equal(out[0], "--snapshot-threshold");
    assert_string_equal(out[1], "1024");
    assert_null(out[2]);
    /* spaces and tabs; exactly ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX words fit */
    char words[64] = "", msg[64];
    for (int i = 0; i < ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX; i++)
        snprintf(words + strlen(words), sizeof words - strlen(words), "%sw%d", i % 2 ? "\t" : " ",
                 i);
    assert_int_equal(orbit_bench_ledger_split_args(words, buf, sizeof buf, out, err, sizeof err),
                     0);
    assert_string_equal(out[0], "w0");
    assert_string_equal(out[1], "w1");
    snprintf(msg, sizeof msg, "w%d", ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX - 1);
    assert_string_equal(out[ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX - 1], msg);
    assert_null(out[ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX]);
    strcat(words, " one-more");
    assert_int_equal(orbit_bench_ledger_split_args(words, buf, sizeof buf, out, err, sizeof err),
                     -1);
    snprintf(msg, sizeof msg, "more than %d words", ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX);
    assert_non_null(strstr(err, msg));
    char longer[100];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(orbit_bench_ledger_split_args(longer, buf, sizeof buf, out, err, sizeof err),
                     -1);
    snprintf(msg, sizeof msg, "longer than %zu", sizeof buf - 1);
    assert_non_null(strstr(err, msg));
}

static void test_hist_quantiles(void **state)
{
    (void)state;
    uint64_t before[6] = {5, 5, 0, 0, 0, 0};
    uint64_t after[6] = {5, 15, 80, 4, 1, 0};
    uint64_t d[6];
    assert_int_equal(orbit_bench_hist_diff(after, before, 6, d), 95);
    assert_int_equal(d[0], 0);
    assert_int_equal(d[1], 10);
    /* 10 in [10,20), 80 in [20,30), 4 in [30,40), 1 in [40,50): upper edges. */
    assert_true(orbit_bench_hist_quantile(d, 6, 10, 0.10) == 20.0);
    assert_true(orbit_bench_hist_quantile(d, 6, 10, 0.50) == 30.0);
    assert_true(orbit_bench_hist_quantile(d, 6, 10, 0.95) == 40.0); /* 90.25 of 95: bucket 3 */
    assert_true(orbit_bench_hist_quantile(d, 6, 10, 0.99) == 50.0); /* 94.05: bucket 4 */
    assert_true(orbit_bench_hist_quantile(d, 6, 10, 1.0) == 50.0);
    /* A counter that went backwards contributes nothing. */
    uint64_t reset[6] = {0, 0, 0, 0, 0, 0};
    assert_int_equal(orbit_bench_hist_diff(reset, after, 6, d), 0);
    assert_true(orbit_bench_hist_quantile(d, 6, 10, 0.5) == -1.0);
    /* The last bucket is open-ended: its lower edge, "at least". */
    uint64_t tail[3] = {1, 0, 9};
    assert_true(orbit_bench_hist_quantile(tail, 3, 10, 0.99) == 20.0);
}

/* ----------------------------------------------------------------- frames */

typedef struct {
    orbit_bench_frames_t f;
    orbit_arena_t *arena;
    orbit_shard_nodes_t *table;
} frames_fx_t;

static int frames_setup(void **state)
{
    frames_fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    orbit_sim_model_cfg_t m;
    orbit_sim_model_cfg_default(&m);
    m.nodes = NODES;
    m.racks = 5;
    m.gpu_fraction = 0.3;
    m.gpu_events_per_hour = 600;
    assert_int_equal(
        orbit_bench_frames_build(&fx->f, &m, ROUNDS, BATCH, 3, 1700000000000LL, INC, SEQ),
        ORBIT_OK);
    fx->arena = orbit_arena_new(1 << 16);
    orbit_shard_nodes_cfg_t nc;
    memset(&nc, 0, sizeof nc);
    fx->table = orbit_shard_nodes_new("test-rack", &nc);
    assert_non_null(fx->arena);
    assert_non_null(fx->table);
    *state = fx;
    return 0;
}

static int frames_teardown(void **state)
{
    frames_fx_t *fx = *state;
    orbit_bench_frames_free(&fx->f);
    assert_null(fx->f.frames);
    orbit_bench_frames_free(&fx->f); /* twice is safe */
    orbit_arena_destroy(&fx->arena);
    orbit_shard_nodes_destroy(&fx->table);
    free(fx);
    return 0;
}

/* Ingest every frame; every message must be applied. */
static void feed_all(frames_fx_t *fx)
{
    for (size_t i = 0; i < fx->f.nframes; i++) {
        Orbit__LeafAck ack;
        orbit_arena_reset(fx->arena);
        assert_int_equal(orbit_shard_nodes_ingest_frame(fx->table, fx->f.frames[i].buf,
                                                        fx->f.frames[i].len, 1000, fx->arena, &ack),
                         ORBIT_OK);
        assert_int_equal(ack.verdict, ORBIT__VERDICT__OK);
        assert_int_equal(ack.n_nodes, 0); /* nothing but OK */
    }
}

/* Decode frame i and check its messages' stamps and fullness. */
static void check_frame(frames_fx_t *fx, size_t i, uint64_t inc, uint64_t seq, bool full)
{
    ProtobufCMessage *m;
    orbit_arena_reset(fx->arena);
    assert_int_equal(orbit_wire_decode(fx->f.frames[i].buf, fx->f.frames[i].len,
                                       ORBIT_MSG_LEAF_BATCH, orbit_arena_allocator(fx->arena), NULL,
                                       &m),
                     ORBIT_OK);
    const Orbit__LeafBatch *b = (const Orbit__LeafBatch *)m;
    assert_int_equal(b->batch_id, i + 1);
    assert_int_equal(b->n_deltas, fx->f.frames[i].deltas);
    for (size_t k = 0; k < b->n_deltas; k++) {
        assert_int_equal(b->deltas[k]->incarnation, inc);
        assert_int_equal(b->deltas[k]->seq, seq);
        assert_int_equal(b->deltas[k]->has_full && b->deltas[k]->full, full);
    }
}

static void test_frames_layout(void **state)
{
    frames_fx_t *fx = *state;
    const orbit_bench_frames_t *f = &fx->f;
    size_t per_round = (NODES + BATCH - 1) / BATCH;
    assert_int_equal(f->nodes, NODES);
    assert_int_equal(f->rounds, ROUNDS);
    assert_int_equal(f->nframes, ROUNDS * per_round);
    assert_int_equal(f->deltas, ROUNDS * NODES);
    assert_int_equal(f->fulls, 2 * NODES); /* rounds 0 and 3 (full_every 3) */
    uint64_t bytes = 0;
    for (uint32_t r = 0; r < ROUNDS; r++) {
        assert_int_equal(f->round_first[r], r * per_round);
        for (size_t i = f->round_first[r]; i < f->round_first[r + 1]; i++) {
            check_frame(fx, i, INC, SEQ + r, r % 3 == 0);
            bytes += f->frames[i].len;
        }
    }
    assert_int_equal(f->bytes, bytes);
    /* Deltas are real: a delta frame is much smaller than a full one. */
    assert_true(f->frames[f->round_first[1]].len < f->frames[0].len);
}

static void test_frames_apply_then_duplicates(void **state)
{
    frames_fx_t *fx = *state;
    feed_all(fx);
    const orbit_shard_nodes_stats_t *st = orbit_shard_nodes_stats(fx->table);
    assert_int_equal(orbit_shard_nodes_count(fx->table), NODES);
    assert_int_equal(st->applied, ROUNDS * NODES);
    assert_int_equal(st->gaps + st->invalid + st->duplicates, 0);
    /* A plain replay is all duplicates. */
    Orbit__LeafAck ack;
    orbit_arena_reset(fx->arena);
    assert_int_equal(orbit_shard_nodes_ingest_frame(fx->table, fx->f.frames[0].buf,
                                                    fx->f.frames[0].len, 1000, fx->arena, &ack),
                     ORBIT_OK);
    assert_int_equal(st->duplicates, fx->f.frames[0].deltas);
}

static void test_frames_stamp_replay_is_reboot(void **state)
{
    frames_fx_t *fx = *state;
    feed_all(fx);
    for (uint32_t r = 0; r < ROUNDS; r++)
        assert_int_equal(orbit_bench_frames_stamp(&fx->f, r, INC + 1, SEQ + ROUNDS + r), ORBIT_OK);
    for (uint32_t r = 0; r < ROUNDS; r++)
        for (size_t i = fx->f.round_first[r]; i < fx->f.round_first[r + 1]; i++)
            check_frame(fx, i, INC + 1, SEQ + ROUNDS + r, r % 3 == 0);
    feed_all(fx);
    const orbit_shard_nodes_stats_t *st = orbit_shard_nodes_stats(fx->table);
    assert_int_equal(st->applied, 2 * ROUNDS * NODES);
    assert_int_equal(st->reboots, NODES);
    assert_int_equal(st->duplicates + st->gaps + st->invalid, 0);
}

static void test_frames_bad_arguments(void **state)
{
    frames_fx_t *fx = *state;
    assert_int_equal(orbit_bench_frames_stamp(&fx->f, ROUNDS, INC, SEQ), ORBIT_EINVAL);
    assert_int_equal(orbit_bench_frames_stamp(&fx->f, 0, 7, SEQ), ORBIT_EINVAL);
    assert_int_equal(orbit_bench_frames_stamp(&fx->f, 0, INC, ORBIT_BENCH_STAMP_MAX), ORBIT_EINVAL);
    /* A frame that is not of the expected layout is refused, not mangled. */
    uint8_t saved = fx->f.frames[0].buf[ORBIT_WIRE_HDR];
    fx->f.frames[0].buf[ORBIT_WIRE_HDR] = 0x07; /* field 0, wire type 7: invalid */
    assert_int_equal(orbit_bench_frames_stamp(&fx->f, 0, INC, SEQ), ORBIT_EINVAL);
    fx->f.frames[0].buf[ORBIT_WIRE_HDR] = saved;

    orbit_bench_frames_t g;
    orbit_sim_model_cfg_t m;
    orbit_sim_model_cfg_default(&m);
    assert_int_equal(orbit_bench_frames_build(&g, &m, 0, 1, 1, 0, INC, SEQ), ORBIT_EINVAL);
    assert_int_equal(orbit_bench_frames_build(&g, &m, 1, 0, 1, 0, INC, SEQ), ORBIT_EINVAL);
    assert_int_equal(orbit_bench_frames_build(&g, &m, 1, 1, 1, 0, 12, SEQ), ORBIT_EINVAL);
    assert_int_equal(orbit_bench_frames_build(&g, &m, 1, 1, 1, 0, INC, ORBIT_BENCH_STAMP_MAX - 1),
                     ORBIT_EINVAL);
    assert_null(g.frames);
    assert_int_equal(g.nframes, 0);
}

/* Usage summed by role: a running child counts to its role, one not
 * running to nothing. */
static void test_procs_usage(void **state)
{
    (void)state;
    orbit_bench_proc_t ps[3];
    memset(ps, 0, sizeof ps);
    ps[0].pid = getpid();
    ps[2].pid = getpid(); /* counted twice: both in role 1 */
    int role[3] = {1, 0, 1};
    volatile uint64_t x = 0;
    for (uint64_t i = 0; i < 20000000; i++) /* some CPU time of our own */
        x += i;
    double cpu[2] = {-1, -1}, self = 0;
    uint64_t rss[2] = {1, 1}, self_rss = 0;
    orbit_bench_procs_usage(ps, 3, role, 2, cpu, rss);
    assert_int_equal(orbit_bench_proc_usage(getpid(), &self, &self_rss), ORBIT_OK);
    assert_true(cpu[0] == 0 && rss[0] == 0); /* ps[1] is not running */
    assert_true(cpu[1] > 0 && cpu[1] <= 2 * self + 0.01);
    assert_true(rss[1] >= self_rss && rss[1] > 0);
    orbit_bench_procs_usage(ps, 3, role, 2, cpu, NULL); /* rss not wanted */
    assert_true(cpu[1] > 0);
}

/* orbit-bench plan places every capsule, watches two commitments for each
 * (placement and bind) after the module adjustments, and times every part. */
static void test_plan_places_all(void **state)
{
    (void)state;
    orbit_bench_plan_cfg_t c;
    orbit_bench_plan_cfg_default(&c);
    c.nodes = 200;
    c.capsules = 2500; /* modules of 1,000, 1,000 and 500 */
    c.observers = 2;
    c.window = 256;
    orbit_bench_plan_result_t r;
    assert_int_equal(orbit_bench_plan_run(&c, &r), ORBIT_OK);
    assert_string_equal(r.error, "");
    assert_int_equal(r.placed, 2500);
    assert_int_equal(r.actions, 2500);
    assert_int_equal(r.commitments, 5000);
    assert_true(r.rounds >= 2500 / 256);
    assert_true(r.round_us > 0 && r.done_us > 0 && r.watch_us > 0 && r.observer_us > 0);
    /* nowhere to place: the rounds stop placing, which is an error */
    c.nodes = 1;
    c.capsules = 300; /* 256 at most per node */
    assert_int_equal(orbit_bench_plan_run(&c, &r), ORBIT_ECORRUPT);
    assert_int_equal(r.placed, 256);
    assert_non_null(strstr(r.error, "stopped placing at 256 of 300"));
    c.capsules = 0;
    assert_int_equal(orbit_bench_plan_run(&c, &r), ORBIT_EINVAL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, frames_setup, frames_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_median_min_max),
        cmocka_unit_test(test_hist_quantiles),
        cmocka_unit_test(test_parse_counts),
        cmocka_unit_test(test_split_root_args),
        cmocka_unit_test(test_plan_places_all),
        cmocka_unit_test(test_procs_usage),
        T(test_frames_layout),
        T(test_frames_apply_then_duplicates),
        T(test_frames_stamp_replay_is_reboot),
        T(test_frames_bad_arguments),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
