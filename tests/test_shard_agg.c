/* test_shard_agg: what one node contributes to a summary, associativity of
 * rack -> zone -> root merges (also with an unreachable rack), and the
 * summary's wire form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "orbit_err.h"
#include "orbit_wire.h"
#include "shard_agg.h"

#define NODES 600
#define RACKS 12
#define ZONES 3

typedef struct {
    orbit_node_state_t nodes[NODES];
    orbit_status_t status[NODES];
    int rack[NODES];
    uint64_t rng;
} agg_fx_t;

static uint32_t rnd(agg_fx_t *fx, uint32_t n)
{
    fx->rng ^= fx->rng << 13;
    fx->rng ^= fx->rng >> 7;
    fx->rng ^= fx->rng << 17;
    return (uint32_t)(fx->rng % n);
}

static void random_node(agg_fx_t *fx, orbit_node_state_t *s, int i)
{
    orbit_node_state_init(s);
    snprintf(s->name, sizeof s->name, "node-%d", i);
    s->cpu_capacity_m = 1000 * (1 + rnd(fx, 128));
    s->cpu_used_m = rnd(fx, (uint32_t)s->cpu_capacity_m + 1);
    s->mem_capacity = (int64_t)(1 + rnd(fx, 1024)) << 30;
    s->mem_used = (int64_t)rnd(fx, (uint32_t)(s->mem_capacity >> 20)) << 20;
    s->pressure_available = rnd(fx, 5) != 0;
    if (s->pressure_available)
        s->pressure.mem_some = rnd(fx, 4) ? rnd(fx, 200) : rnd(fx, 10001);
    uint32_t n = rnd(fx, 9);
    s->gpu_capacity = n + rnd(fx, 2);
    orbit_gpu_t gs[8];
    memset(gs, 0, sizeof gs);
    for (uint32_t g = 0; g < n; g++) {
        gs[g].index = g;
        gs[g].health = (orbit_gpu_health_t)rnd(fx, ORBIT_GPU_HEALTH_COUNT);
    }
    assert_int_equal(orbit_node_state_set_gpus(s, gs, n), ORBIT_OK);
}

static void build(agg_fx_t *fx, uint64_t seed)
{
    fx->rng = seed;
    for (int i = 0; i < NODES; i++) {
        orbit_node_state_close(&fx->nodes[i]);
        random_node(fx, &fx->nodes[i], i);
        fx->status[i] = (orbit_status_t)rnd(fx, ORBIT_STATUS_COUNT);
        fx->rack[i] = (int)rnd(fx, RACKS);
    }
}

static int agg_setup(void **state)
{
    agg_fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    build(fx, 0x2545F4914F6CDD1DULL);
    *state = fx;
    return 0;
}

static int agg_teardown(void **state)
{
    agg_fx_t *fx = *state;
    for (int i = 0; i < NODES; i++)
        orbit_node_state_close(&fx->nodes[i]);
    free(fx);
    return 0;
}

#define ASSERT_AGG_EQUAL(a, b)                                                                     \
    do {                                                                                           \
        if (!orbit_agg_equal((a), (b)))                                                            \
            fail_msg(                                                                              \
                "summaries differ: nodes %llu/%llu cpu %llu/%llu gpus %llu/%llu",                  \
                (unsigned long long)orbit_agg_total(a), (unsigned long long)orbit_agg_total(b),    \
                (unsigned long long)(a)->cpu_capacity_m, (unsigned long long)(b)->cpu_capacity_m,  \
                (unsigned long long)(a)->gpus[0], (unsigned long long)(b)->gpus[0]);               \
    } while (0)

/* ------------------------------------------------------------- add node */

static void test_add_node_by_status(void **state)
{
    agg_fx_t *fx = *state;
    orbit_node_state_t s;
    orbit_node_state_init(&s);
    s.cpu_capacity_m = 8000;
    s.cpu_used_m = 2000;
    s.mem_capacity = 1000;
    s.mem_used = 400;
    s.gpu_capacity = 2;
    s.pressure_available = true;
    s.pressure.mem_some = 700; /* 7 %: the <=10 % bucket */
    orbit_gpu_t gs[2] = {{.index = 0, .health = ORBIT_GPU_HEALTHY},
                         {.index = 1, .health = ORBIT_GPU_FAILED}};
    assert_int_equal(orbit_node_state_set_gpus(&s, gs, 2), ORBIT_OK);

    orbit_agg_t a;
    memset(&a, 0, sizeof a);
    orbit_agg_add_node(&a, ORBIT_ALIVE, &s);
    orbit_agg_add_node(&a, ORBIT_SUSPECT, &s);
    assert_int_equal(a.nodes[ORBIT_ALIVE], 1);
    assert_int_equal(a.nodes[ORBIT_SUSPECT], 1);
    assert_int_equal(a.cpu_capacity_m, 16000);
    assert_int_equal(a.cpu_used_m, 4000);
    assert_int_equal(a.mem_capacity, 2000);
    assert_int_equal(a.mem_used, 800);
    assert_int_equal(a.gpu_capacity, 4);
    assert_int_equal(a.gpus[ORBIT_GPU_HEALTHY], 2);
    assert_int_equal(a.gpus[ORBIT_GPU_FAILED], 2);
    assert_int_equal(a.gpus[ORBIT_GPU_DEGRADED], 0);
    assert_int_equal(a.pressure_hist[3], 2);
    assert_int_equal(a.pressure_unavailable, 0);

    /* Down and unreachable nodes are counted and contribute nothing else. */
    orbit_agg_t b = a;
    orbit_agg_add_node(&b, ORBIT_DOWN, &s);
    orbit_agg_add_node(&b, ORBIT_UNREACHABLE, &s);
    assert_int_equal(b.nodes[ORBIT_DOWN], 1);
    assert_int_equal(b.nodes[ORBIT_UNREACHABLE], 1);
    assert_int_equal(orbit_agg_total(&b), 4);
    b.nodes[ORBIT_DOWN] = b.nodes[ORBIT_UNREACHABLE] = 0;
    ASSERT_AGG_EQUAL(&b, &a);

    /* A node without PSI counts as such. */
    s.pressure_available = false;
    orbit_agg_add_node(&a, ORBIT_ALIVE, &s);
    assert_int_equal(a.pressure_unavailable, 1);
    assert_int_equal(a.pressure_hist[3], 2);
    orbit_node_state_close(&s);
    (void)fx;
}

static void test_pressure_buckets(void **state)
{
    (void)state;
    static const struct {
        uint32_t v;
        int bucket;
    } cases[] = {{0, 0},    {1, 1},    {100, 1},   {101, 2},       {500, 2},
                 {501, 3},  {1000, 3}, {1001, 4},  {2500, 4},      {2501, 5},
                 {5000, 5}, {5001, 6}, {10000, 6}, {UINT32_MAX, 6}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(orbit_pressure_bucket(cases[i].v), cases[i].bucket);
}

static void test_status_names(void **state)
{
    (void)state;
    for (int i = 0; i < ORBIT_STATUS_COUNT; i++)
        assert_int_equal(orbit_status_parse(orbit_status_name(i)), i);
    assert_string_equal(orbit_status_name(ORBIT_UNREACHABLE), "unreachable");
    assert_string_equal(orbit_status_name(4), "unknown");
    assert_string_equal(orbit_status_name(-1), "unknown");
    assert_int_equal(orbit_status_parse("Alive"), -1);
    assert_int_equal(orbit_status_parse(NULL), -1);
}

/* ----------------------------------------------------------- associativity */

/* Aggregate nodes per rack, racks into zones (rack % ZONES), zones into the
 * root; unreachable_rack (or -1) is merged as unreachable into its zone.
 * The flat aggregation counts that rack's nodes as unreachable. */
static void check_tree_equals_flat(agg_fx_t *fx, int unreachable_rack)
{
    orbit_agg_t rack[RACKS], zone[ZONES], root, flat;
    memset(rack, 0, sizeof rack);
    memset(zone, 0, sizeof zone);
    memset(&root, 0, sizeof root);
    memset(&flat, 0, sizeof flat);
    for (int i = 0; i < NODES; i++) {
        orbit_agg_add_node(&rack[fx->rack[i]], fx->status[i], &fx->nodes[i]);
        orbit_agg_add_node(&flat,
                           fx->rack[i] == unreachable_rack ? ORBIT_UNREACHABLE : fx->status[i],
                           &fx->nodes[i]);
    }
    for (int r = 0; r < RACKS; r++) {
        if (r == unreachable_rack)
            orbit_agg_merge_unreachable(&zone[r % ZONES], &rack[r]);
        else
            orbit_agg_merge(&zone[r % ZONES], &rack[r]);
    }
    /* Zones merge in a different order than racks were built. */
    for (int z = ZONES - 1; z >= 0; z--)
        orbit_agg_merge(&root, &zone[z]);
    ASSERT_AGG_EQUAL(&root, &flat);
    assert_int_equal(orbit_agg_total(&root), NODES);

    /* Merging racks straight into the root, in reverse order, is the same. */
    orbit_agg_t direct;
    memset(&direct, 0, sizeof direct);
    for (int r = RACKS - 1; r >= 0; r--) {
        if (r == unreachable_rack)
            orbit_agg_merge_unreachable(&direct, &rack[r]);
        else
            orbit_agg_merge(&direct, &rack[r]);
    }
    ASSERT_AGG_EQUAL(&direct, &flat);
}

static void test_merge_associative(void **state)
{
    agg_fx_t *fx = *state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        build(fx, seed * 0x9E3779B97F4A7C15ULL);
        check_tree_equals_flat(fx, -1);
    }
}

static void test_merge_unreachable_rack(void **state)
{
    agg_fx_t *fx = *state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        build(fx, seed * 0xD1B54A32D192ED03ULL);
        int victim = (int)(seed % RACKS);
        check_tree_equals_flat(fx, victim);

        /* The unreachable rack's resources are gone, its count is not. */
        orbit_agg_t all, without;
        memset(&all, 0, sizeof all);
        memset(&without, 0, sizeof without);
        uint64_t in_victim = 0;
        for (int i = 0; i < NODES; i++) {
            orbit_agg_add_node(&all, fx->status[i], &fx->nodes[i]);
            if (fx->rack[i] == victim)
                in_victim++;
            else
                orbit_agg_add_node(&without, fx->status[i], &fx->nodes[i]);
        }
        orbit_agg_t rack;
        memset(&rack, 0, sizeof rack);
        for (int i = 0; i < NODES; i++)
            if (fx->rack[i] == victim)
                orbit_agg_add_node(&rack, fx->status[i], &fx->nodes[i]);
        orbit_agg_merge_unreachable(&without, &rack);
        assert_int_equal(orbit_agg_total(&without), NODES);
        assert_int_equal(without.nodes[ORBIT_UNREACHABLE],
                         all.nodes[ORBIT_UNREACHABLE] - rack.nodes[ORBIT_UNREACHABLE] + in_victim);
        assert_true(without.cpu_capacity_m <= all.cpu_capacity_m);
    }
}

/* ---------------------------------------------------------------- wire form */

static void test_pb_roundtrip(void **state)
{
    agg_fx_t *fx = *state;
    orbit_agg_t a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < NODES; i++)
        orbit_agg_add_node(&a, fx->status[i], &fx->nodes[i]);

    Orbit__Summary pb = ORBIT__SUMMARY__INIT;
    orbit_agg_pb_store_t st;
    orbit_agg_to_pb(&a, &pb, &st);
    assert_int_equal(pb.n_nodes_by_status, ORBIT_STATUS_COUNT);
    assert_int_equal(pb.n_gpus_by_health, ORBIT_GPU_HEALTH_COUNT);
    assert_int_equal(pb.n_mem_pressure_hist, ORBIT_PRESSURE_BUCKETS);

    /* Through the wire, as a report's summary. */
    size_t n = protobuf_c_message_get_packed_size(&pb.base);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    protobuf_c_message_pack(&pb.base, buf);
    Orbit__Summary *back = orbit__summary__unpack(NULL, n, buf);
    free(buf);
    assert_non_null(back);
    orbit_agg_t b;
    memset(&b, 0xFF, sizeof b);
    assert_int_equal(orbit_agg_from_pb(&b, back), ORBIT_OK);
    orbit__summary__free_unpacked(back, NULL);
    ASSERT_AGG_EQUAL(&b, &a);

    /* An empty summary reads as zeros. */
    Orbit__Summary empty = ORBIT__SUMMARY__INIT;
    orbit_agg_t z, zeros;
    memset(&zeros, 0, sizeof zeros);
    memset(&z, 0xFF, sizeof z);
    assert_int_equal(orbit_agg_from_pb(&z, &empty), ORBIT_OK);
    ASSERT_AGG_EQUAL(&z, &zeros);
}

static void test_from_pb_rejects(void **state)
{
    (void)state;
    uint64_t arr[16] = {1, 2, 3, 4, 5, 6, 7, 8};
    orbit_agg_t a, before;
    memset(&a, 0x5A, sizeof a);
    before = a;
    Orbit__Summary pb = ORBIT__SUMMARY__INIT;

    /* Arrays longer than ours come from a newer, incompatible writer. */
    pb.nodes_by_status = arr;
    pb.n_nodes_by_status = ORBIT_STATUS_COUNT + 1;
    assert_int_equal(orbit_agg_from_pb(&a, &pb), ORBIT_EINVAL);
    pb.n_nodes_by_status = 2; /* shorter is fine */
    pb.gpus_by_health = arr;
    pb.n_gpus_by_health = ORBIT_GPU_HEALTH_COUNT + 1;
    assert_int_equal(orbit_agg_from_pb(&a, &pb), ORBIT_EINVAL);
    pb.n_gpus_by_health = 0;
    pb.mem_pressure_hist = arr;
    pb.n_mem_pressure_hist = ORBIT_PRESSURE_BUCKETS + 1;
    assert_int_equal(orbit_agg_from_pb(&a, &pb), ORBIT_EINVAL);
    pb.n_mem_pressure_hist = 0;

    /* More used than capacity. */
    pb.has_mem_capacity = pb.has_mem_used = true;
    pb.mem_capacity = 100;
    pb.mem_used = 101;
    assert_int_equal(orbit_agg_from_pb(&a, &pb), ORBIT_EINVAL);
    pb.mem_used = 100;
    pb.has_cpu_capacity_m = pb.has_cpu_used_m = true;
    pb.cpu_capacity_m = 100000;
    pb.cpu_used_m = 101001; /* beyond the 1 % CPU accounting slack */
    assert_int_equal(orbit_agg_from_pb(&a, &pb), ORBIT_EINVAL);
    assert_int_equal(orbit_agg_from_pb(&a, NULL), ORBIT_EINVAL);
    /* agg untouched by every rejection. */
    assert_memory_equal(&a, &before, sizeof a);

    pb.cpu_used_m = 101000;
    assert_int_equal(orbit_agg_from_pb(&a, &pb), ORBIT_OK);
    assert_int_equal(a.nodes[0], 1);
    assert_int_equal(a.nodes[1], 2);
    assert_int_equal(a.nodes[2], 0);
    assert_int_equal(a.cpu_used_m, 101000);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, agg_setup, agg_teardown)
    const struct CMUnitTest tests[] = {
        T(test_add_node_by_status),
        cmocka_unit_test(test_pressure_buckets),
        cmocka_unit_test(test_status_names),
        T(test_merge_associative),
        T(test_merge_unreachable_rack),
        T(test_pb_roundtrip),
        cmocka_unit_test(test_from_pb_rejects),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
