/* test_orbit_sim_model: the simulator's fleet model — determinism by seed,
 * capacity totals known in advance, every state valid as a full state and
 * as a delta (and the codec round trip exact), reboots, GPU events that
 * clear, names, racks and labels, and configuration checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "orbit_err.h"
#include "orbit_node.h"
#include "orbit_sim_model.h"
#include "orbit_wire.h"

#define T0 1700000000000LL /* a wall clock, ms */

/* ---------------------------------------------------------------- fixture */

typedef struct {
    orbit_sim_model_cfg_t cfg;
    orbit_sim_model_t *m;
    orbit_arena_t *arena;
} model_fx_t;

static int model_setup(void **state)
{
    model_fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    orbit_sim_model_cfg_default(&fx->cfg);
    fx->cfg.nodes = 400;
    fx->cfg.racks = 10;
    fx->cfg.prefix = "t";
    fx->cfg.zone = "z-test";
    fx->cfg.seed = 42;
    fx->arena = orbit_arena_new(1 << 16);
    assert_non_null(fx->arena);
    *state = fx;
    return 0;
}

static int model_teardown(void **state)
{
    model_fx_t *fx = *state;
    orbit_sim_model_destroy(&fx->m);
    assert_null(fx->m);
    orbit_arena_destroy(&fx->arena);
    free(fx);
    return 0;
}

/* (Re)build fx->m from fx->cfg. */
static void model_open(model_fx_t *fx)
{
    orbit_sim_model_destroy(&fx->m);
    fx->m = orbit_sim_model_new(&fx->cfg);
    assert_non_null(fx->m);
    assert_int_equal(orbit_sim_model_nodes(fx->m), fx->cfg.nodes);
}

/* Pack msg, unpack it, validate against base, and return the decoded copy
 * (lives in the arena). */
static Orbit__NodeDelta *wire_roundtrip(model_fx_t *fx, Orbit__NodeDelta *msg,
                                        const orbit_node_state_t *base)
{
    size_t n = orbit__node_delta__get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    orbit__node_delta__pack(msg, buf);
    Orbit__NodeDelta *rx = orbit__node_delta__unpack(orbit_arena_allocator(fx->arena), n, buf);
    free(buf);
    assert_non_null(rx);
    const char *why = NULL;
    int rc = orbit_node_delta_validate(rx, base, &why);
    if (rc != ORBIT_OK)
        fail_msg("node %s rejected: %s", rx->node, why);
    return rx;
}

/* ------------------------------------------------------------------ tests */

static void test_same_seed_same_fleet(void **state)
{
    model_fx_t *fx = *state;
    orbit_sim_model_t *a = orbit_sim_model_new(&fx->cfg);
    orbit_sim_model_t *b = orbit_sim_model_new(&fx->cfg);
    assert_non_null(a);
    assert_non_null(b);
    orbit_node_state_t sa;
    orbit_node_state_init(&sa);
    /* Step b's nodes in reverse order: a node's path must not depend on it. */
    for (int step = 0; step < 30; step++) {
        for (uint32_t i = 0; i < fx->cfg.nodes; i++)
            (void)orbit_sim_model_step(a, i, T0 + step, NULL);
        for (uint32_t k = fx->cfg.nodes; k-- > 0;)
            (void)orbit_sim_model_step(b, k, T0 + step, NULL);
    }
    /* One more step each, compared node by node. */
    for (uint32_t i = 0; i < fx->cfg.nodes; i++) {
        assert_int_equal(orbit_node_state_copy(&sa, orbit_sim_model_step(a, i, T0 + 99, NULL)),
                         ORBIT_OK);
        const orbit_node_state_t *sb = orbit_sim_model_step(b, i, T0 + 99, NULL);
        assert_string_equal(sa.name, sb->name);
        assert_false(orbit_node_state_differs(&sa, sb));
    }
    orbit_node_state_close(&sa);
    orbit_sim_model_destroy(&a);
    orbit_sim_model_destroy(&b);

    /* Another seed: another fleet. */
    orbit_sim_totals_t t1, t2;
    orbit_sim_model_totals(&fx->cfg, &t1);
    fx->cfg.seed = 43;
    orbit_sim_model_totals(&fx->cfg, &t2);
    assert_int_equal(t1.nodes, t2.nodes);
    assert_true(t1.cpu_capacity_m != t2.cpu_capacity_m || t1.mem_capacity != t2.mem_capacity);
}

static void test_totals_match_states(void **state)
{
    model_fx_t *fx = *state;
    fx->cfg.nodes = 4000;
    fx->cfg.racks = 100;
    model_open(fx);
    orbit_sim_totals_t t;
    orbit_sim_model_totals(&fx->cfg, &t);
    uint64_t cpu = 0, mem = 0, gpus = 0, gpu_nodes = 0;
    for (uint32_t i = 0; i < fx->cfg.nodes; i++) {
        const orbit_node_state_t *s = orbit_sim_model_step(fx->m, i, T0, NULL);
        cpu += (uint64_t)s->cpu_capacity_m;
        mem += (uint64_t)s->mem_capacity;
        gpus += s->gpu_capacity;
        gpu_nodes += s->gpu_capacity > 0;
        assert_int_equal(s->ngpus, s->gpu_capacity);
        assert_true(s->gpu_capacity == 0 || s->gpu_capacity == ORBIT_SIM_GPUS_PER_NODE);
        /* The shapes of the brief: 16..128 cores, 64..1024 GiB. */
        assert_in_range(s->cpu_capacity_m, 16000, 128000);
        assert_in_range(s->mem_capacity >> 30, 64, 1024);
    }
    assert_int_equal(t.nodes, fx->cfg.nodes);
    assert_int_equal(t.cpu_capacity_m, cpu);
    assert_int_equal(t.mem_capacity, mem);
    assert_int_equal(t.gpu_capacity, gpus);
    assert_int_equal(t.gpu_nodes, gpu_nodes);
    /* 12.5 % GPU nodes, within sampling noise (sd ~ 21 nodes). */
    assert_in_range(gpu_nodes, 400, 600);

    fx->cfg.gpu_fraction = 0;
    orbit_sim_model_totals(&fx->cfg, &t);
    assert_int_equal(t.gpu_capacity, 0);
    fx->cfg.gpu_fraction = 1;
    orbit_sim_model_totals(&fx->cfg, &t);
    assert_int_equal(t.gpu_nodes, fx->cfg.nodes);
}

static void test_states_valid_and_roundtrip(void **state)
{
    model_fx_t *fx = *state;
    fx->cfg.nodes = 200;
    fx->cfg.gpu_fraction = 0.5;
    fx->cfg.reboots_per_hour = 36;    /* 1 % of steps */
    fx->cfg.gpu_events_per_hour = 72; /* 2 % of GPU steps */
    model_open(fx);
    orbit_node_state_t *prev = calloc(fx->cfg.nodes, sizeof *prev);
    orbit_node_state_t *shard = calloc(fx->cfg.nodes, sizeof *shard);
    assert_non_null(prev);
    assert_non_null(shard);
    uint64_t reboots = 0, events = 0, changed_fields = 0, deltas = 0;
    for (int step = 0; step < 150; step++) {
        for (uint32_t i = 0; i < fx->cfg.nodes; i++) {
            orbit_sim_step_t w;
            const orbit_node_state_t *s = orbit_sim_model_step(fx->m, i, T0 + step * 1000, &w);
            reboots += w.rebooted;
            events += w.gpu_events;
            bool full = step == 0 || w.rebooted;
            orbit_arena_reset(fx->arena);
            Orbit__NodeDelta msg = ORBIT__NODE_DELTA__INIT;
            assert_int_equal(
                orbit_node_delta_fill_arena(&msg, s, full ? NULL : &prev[i], 1 + step, fx->arena),
                ORBIT_OK);
            Orbit__NodeDelta *rx = wire_roundtrip(fx, &msg, full ? NULL : &shard[i]);
            if (!full) {
                deltas++;
                changed_fields += rx->has_cpu_used_m + rx->has_mem_used + (rx->pressure != NULL) +
                                  rx->has_gpus_set + rx->has_labels_set + rx->has_cpu_capacity_m;
                assert_false(rx->has_labels_set); /* labels never change */
                assert_false(rx->has_cpu_capacity_m);
            }
            snprintf(shard[i].name, sizeof shard[i].name, "%s", rx->node);
            assert_int_equal(orbit_node_delta_apply(&shard[i], rx), ORBIT_OK);
            /* What the shard rebuilt is exactly what the model said. */
            assert_false(orbit_node_state_differs(&shard[i], s));
            assert_int_equal(orbit_node_state_copy(&prev[i], s), ORBIT_OK);
        }
    }
    assert_true(reboots > 0);
    assert_true(events > 0);
    /* Real churn: on average more than one field changes per delta. */
    assert_true(changed_fields > deltas);
    for (uint32_t i = 0; i < fx->cfg.nodes; i++) {
        orbit_node_state_close(&prev[i]);
        orbit_node_state_close(&shard[i]);
    }
    free(prev);
    free(shard);
}

static void test_reboot_new_incarnation(void **state)
{
    model_fx_t *fx = *state;
    fx->cfg.nodes = 3;
    fx->cfg.racks = 1;
    fx->cfg.reboots_per_hour = 3600; /* with 1 s steps: every step after boot */
    model_open(fx);
    orbit_sim_step_t w;
    const orbit_node_state_t *s = orbit_sim_model_step(fx->m, 1, T0, &w);
    assert_false(w.rebooted); /* the first step boots, it does not reboot */
    uint64_t inc = s->incarnation;
    assert_int_equal(inc, T0);
    /* The same wall clock twice: incarnations still grow. */
    for (int k = 0; k < 3; k++) {
        s = orbit_sim_model_step(fx->m, 1, T0, &w);
        assert_true(w.rebooted);
        assert_true(s->incarnation > inc);
        inc = s->incarnation;
    }
    /* A later clock is taken as is. */
    s = orbit_sim_model_step(fx->m, 1, T0 + 5000, &w);
    assert_int_equal(s->incarnation, T0 + 5000);
    /* Other nodes are untouched by node 1's reboots. */
    s = orbit_sim_model_step(fx->m, 0, T0 + 6000, &w);
    assert_int_equal(s->incarnation, T0 + 6000);
    assert_false(w.rebooted);

    fx->cfg.reboots_per_hour = 0;
    model_open(fx);
    (void)orbit_sim_model_step(fx->m, 0, T0, NULL);
    for (int k = 0; k < 1000; k++) {
        s = orbit_sim_model_step(fx->m, 0, T0 + k, &w);
        assert_false(w.rebooted);
        assert_int_equal(s->incarnation, T0);
    }
}

static void test_gpu_events_flip_and_clear(void **state)
{
    model_fx_t *fx = *state;
    fx->cfg.nodes = 4;
    fx->cfg.racks = 1;
    fx->cfg.gpu_fraction = 1;
    fx->cfg.reboots_per_hour = 0;
    fx->cfg.gpu_events_per_hour = 3600; /* every healthy GPU step starts one */
    model_open(fx);
    char uuids[ORBIT_SIM_GPUS_PER_NODE][ORBIT_UUID_MAX];
    const orbit_node_state_t *s = orbit_sim_model_step(fx->m, 2, T0, NULL);
    assert_int_equal(s->ngpus, ORBIT_SIM_GPUS_PER_NODE);
    for (uint32_t g = 0; g < s->ngpus; g++) {
        assert_int_equal(s->gpus[g].health, ORBIT_GPU_HEALTHY);
        assert_int_equal(s->gpus[g].index, g);
        assert_int_equal(strlen(s->gpus[g].uuid), 40);
        assert_memory_equal(s->gpus[g].uuid, "GPU-", 4);
        memcpy(uuids[g], s->gpus[g].uuid, ORBIT_UUID_MAX);
        for (uint32_t h = 0; h < g; h++)
            assert_string_not_equal(uuids[g], uuids[h]);
    }
    orbit_sim_step_t w;
    s = orbit_sim_model_step(fx->m, 2, T0 + 1000, &w);
    assert_int_equal(w.gpu_events, ORBIT_SIM_GPUS_PER_NODE);
    for (uint32_t g = 0; g < s->ngpus; g++) {
        assert_int_not_equal(s->gpus[g].health, ORBIT_GPU_HEALTHY);
        assert_string_equal(s->gpus[g].uuid, uuids[g]); /* stable */
    }
    /* Events last 30..300 s: all have cleared (and new ones begun) by then. */
    uint64_t recovered = 0;
    bool healthy_seen = false;
    for (int k = 2; k < 320; k++) {
        s = orbit_sim_model_step(fx->m, 2, T0 + k * 1000, &w);
        recovered += w.gpu_recovered;
        for (uint32_t g = 0; g < s->ngpus; g++)
            healthy_seen |= s->gpus[g].health == ORBIT_GPU_HEALTHY;
    }
    assert_true(recovered >= ORBIT_SIM_GPUS_PER_NODE);
    assert_true(healthy_seen);
}

static void test_names_racks_labels(void **state)
{
    model_fx_t *fx = *state;
    model_open(fx);
    char name[ORBIT_NAME_MAX], want[ORBIT_LABELS_MAX];
    uint32_t last_rack = 0, per_rack[10] = {0};
    for (uint32_t i = 0; i < fx->cfg.nodes; i++) {
        orbit_sim_model_name(fx->m, i, name);
        char expect[32];
        snprintf(expect, sizeof expect, "t-%u", i);
        assert_string_equal(name, expect);
        uint32_t rack = orbit_sim_model_rack(fx->m, i);
        assert_true(rack < fx->cfg.racks);
        assert_true(rack >= last_rack); /* racks are contiguous runs of nodes */
        last_rack = rack;
        per_rack[rack]++;
        const orbit_node_state_t *s = orbit_sim_model_step(fx->m, i, T0, NULL);
        assert_string_equal(s->name, expect);
        snprintf(want, sizeof want, "rack=t-r%u\nzone=z-test\n", rack);
        assert_string_equal(s->labels, want);
    }
    for (uint32_t k = 0; k < 10; k++)
        assert_int_equal(per_rack[k], 40);
}

static void test_cfg_check(void **state)
{
    model_fx_t *fx = *state;
    char err[128];
    orbit_sim_model_cfg_t c = fx->cfg;
    assert_int_equal(orbit_sim_model_cfg_check(&c, err, sizeof err), ORBIT_OK);
#define BAD(field, value, needle)                                                                  \
    do {                                                                                           \
        c = fx->cfg;                                                                               \
        c.field = value;                                                                           \
        err[0] = '\0';                                                                             \
        assert_int_equal(orbit_sim_model_cfg_check(&c, err, sizeof err), ORBIT_EINVAL);            \
        assert_non_null(strstr(err, needle));                                                      \
        assert_null(orbit_sim_model_new(&c));                                                      \
    } while (0)
    BAD(nodes, 0, "--leaves");
    BAD(racks, 0, "--racks");
    BAD(racks, 401, "--racks");
    BAD(prefix, "a b", "--prefix");
    BAD(prefix, "", "--prefix");
    BAD(prefix, "p123456789012345678901234567890123456789x", "--prefix");
    BAD(zone, "a=b", "--zone");
    BAD(zone, "", "--zone");
    BAD(zone, "a\nb", "--zone");
    BAD(gpu_fraction, 1.5, "--gpu-fraction");
    BAD(gpu_fraction, -0.1, "--gpu-fraction");
    BAD(reboots_per_hour, -1, "reboot");
    BAD(gpu_events_per_hour, 1e9, "GPU event");
    BAD(interval_ms, 0, "interval");
#undef BAD
    /* A 40-byte prefix is the longest: the largest index still fits a name. */
    c = fx->cfg;
    c.prefix = "p123456789012345678901234567890123456789";
    c.nodes = ORBIT_SIM_NODES_MAX;
    c.racks = ORBIT_SIM_NODES_MAX;
    assert_int_equal(orbit_sim_model_cfg_check(&c, err, sizeof err), ORBIT_OK);
    char name[80];
    snprintf(name, sizeof name, "%s-%u", c.prefix, ORBIT_SIM_NODES_MAX - 1);
    assert_true(orbit_name_valid(name));
    snprintf(name, sizeof name, "%s-r%u", c.prefix, ORBIT_SIM_NODES_MAX - 1);
    assert_true(strlen(name) <= ORBIT_LABEL_VALUE_MAX);
}

static void test_heap_bytes(void **state)
{
    model_fx_t *fx = *state;
    fx->cfg.nodes = 100000;
    fx->cfg.racks = 2500;
    model_open(fx);
    /* The header's promise: about 5.2 MB for 100,000 nodes at 12.5 % GPU. */
    assert_in_range(orbit_sim_model_heap_bytes(fx->m), 4000000, 6500000);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, model_setup, model_teardown)
    const struct CMUnitTest tests[] = {
        T(test_same_seed_same_fleet),
        T(test_totals_match_states),
        T(test_states_valid_and_roundtrip),
        T(test_reboot_new_incarnation),
        T(test_gpu_events_flip_and_clear),
        T(test_names_racks_labels),
        T(test_cfg_check),
        T(test_heap_bytes),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
