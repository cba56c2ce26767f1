/* test_orbit_node: labels, full and real deltas, the pack -> unpack ->
 * validate -> apply round trip, every plausibility rejection, GPU health
 * derivation, and capsule lists (set, diff, fill, apply, validation). */
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
#include "orbit_wire.h"

/* ---------------------------------------------------------------- fixture */

typedef struct {
    orbit_node_state_t cur;  /* what the leaf measured */
    orbit_node_state_t sent; /* what the leaf last sent (the delta base) */
    orbit_node_state_t rx;   /* what the shard rebuilt */
    orbit_arena_t *arena;
    uint64_t seq;
} node_fx_t;

static void make_gpu(orbit_gpu_t *g, uint32_t index)
{
    memset(g, 0, sizeof *g);
    g->index = index;
    snprintf(g->uuid, sizeof g->uuid, "GPU-%08x-0000-1111-2222", index * 7919u);
    g->temp_c = 40 + (int32_t)index;
    g->util_pct = 10 * index;
    g->mem_total = 80ULL << 30;
    g->mem_used = (uint64_t)index << 30;
    g->power_mw = 300000;
    g->health = ORBIT_GPU_HEALTHY;
}

/* A realistic 4-GPU node. */
static void make_state(orbit_node_state_t *s, const char *name)
{
    orbit_node_state_init(s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->incarnation = 0xB007;
    s->sampled_ms = 1700000000000LL;
    s->interval_ms = 1000;
    s->cpu_capacity_m = 64000;
    s->cpu_used_m = 12000;
    s->mem_capacity = 256LL << 30;
    s->mem_used = 100LL << 30;
    s->gpu_capacity = 4;
    s->load1 = 250;
    s->load5 = 200;
    s->load15 = 150;
    s->pressure_available = true;
    s->pressure = (orbit_pressure_t){120, 340, 10, 55, 5};
    assert_int_equal(orbit_node_label_set(s, "zone", "z1"), ORBIT_OK);
    assert_int_equal(orbit_node_label_set(s, "rack", "r1"), ORBIT_OK);
    assert_int_equal(orbit_node_label_set(s, "gpu", "h100"), ORBIT_OK);
    orbit_gpu_t gs[4];
    for (uint32_t i = 0; i < 4; i++)
        make_gpu(&gs[i], i);
    assert_int_equal(orbit_node_state_set_gpus(s, gs, 4), ORBIT_OK);
}

static int node_setup(void **state)
{
    node_fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    make_state(&fx->cur, "gpu-node-1");
    orbit_node_state_init(&fx->sent);
    orbit_node_state_init(&fx->rx);
    snprintf(fx->rx.name, sizeof fx->rx.name, "gpu-node-1");
    fx->arena = orbit_arena_new(0);
    assert_non_null(fx->arena);
    *state = fx;
    return 0;
}

static int node_teardown(void **state)
{
    node_fx_t *fx = *state;
    orbit_node_state_close(&fx->cur);
    orbit_node_state_close(&fx->sent);
    orbit_node_state_close(&fx->rx);
    orbit_arena_destroy(&fx->arena);
    free(fx);
    return 0;
}

/* Fill a delta of cur against base (NULL: full) in the arena. */
static Orbit__NodeDelta *fill(node_fx_t *fx, const orbit_node_state_t *base)
{
    Orbit__NodeDelta *m = orbit_arena_alloc(fx->arena, sizeof *m);
    assert_non_null(m);
    orbit__node_delta__init(m);
    assert_int_equal(orbit_node_delta_fill_arena(m, &fx->cur, base, ++fx->seq, fx->arena),
                     ORBIT_OK);
    return m;
}

/* The leaf's side and the shard's side of one message: fill against the last
 * sent state (or full), pack in a LeafBatch, decode, validate against what
 * the shard holds, apply. Returns the decoded delta (in the arena). */
static const Orbit__NodeDelta *transmit(node_fx_t *fx, bool full, bool use_malloc_fill)
{
    Orbit__NodeDelta m = ORBIT__NODE_DELTA__INIT, *ms[1] = {&m};
    void *scratch = NULL;
    if (use_malloc_fill)
        assert_int_equal(
            orbit_node_delta_fill(&m, &fx->cur, full ? NULL : &fx->sent, ++fx->seq, &scratch),
            ORBIT_OK);
    else
        assert_int_equal(orbit_node_delta_fill_arena(&m, &fx->cur, full ? NULL : &fx->sent,
                                                     ++fx->seq, fx->arena),
                         ORBIT_OK);
    Orbit__LeafBatch b = ORBIT__LEAF_BATCH__INIT;
    b.batch_id = fx->seq;
    b.n_deltas = 1;
    b.deltas = ms;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(orbit_wire_encode(ORBIT_MSG_LEAF_BATCH, &b.base, &buf, &len), ORBIT_OK);
    free(scratch);
    ProtobufCMessage *out = NULL;
    assert_int_equal(orbit_wire_decode(buf, len, ORBIT_MSG_LEAF_BATCH,
                                       orbit_arena_allocator(fx->arena), NULL, &out),
                     ORBIT_OK);
    free(buf);
    const Orbit__NodeDelta *d = ((Orbit__LeafBatch *)out)->deltas[0];
    const char *reason = NULL;
    assert_int_equal(orbit_node_delta_validate(d, full ? NULL : &fx->rx, &reason), ORBIT_OK);
    assert_null(reason);
    assert_int_equal(orbit_node_delta_apply(&fx->rx, d), ORBIT_OK);
    assert_int_equal(orbit_node_state_copy(&fx->sent, &fx->cur), ORBIT_OK);
    return d;
}

#define ASSERT_SAME_STATE(a, b)                                                                    \
    do {                                                                                           \
        assert_false(orbit_node_state_differs((a), (b)));                                          \
        assert_int_equal((a)->sampled_ms, (b)->sampled_ms);                                        \
    } while (0)

/* ----------------------------------------------------------------- labels */

static void test_label_set_get_order(void **state)
{
    node_fx_t *fx = *state;
    /* make_state inserted zone, rack, gpu: they are kept sorted by key. */
    assert_string_equal(fx->cur.labels, "gpu=h100\nrack=r1\nzone=z1\n");
    char v[16];
    assert_true(orbit_node_label_get(fx->cur.labels, "rack", v, sizeof v));
    assert_string_equal(v, "r1");
    assert_true(orbit_node_label_get(fx->cur.labels, "zone", v, sizeof v));
    assert_string_equal(v, "z1");
    assert_true(orbit_node_label_get(fx->cur.labels, "gpu", v, sizeof v));
    assert_string_equal(v, "h100");
    /* Prefixes and extensions of a key are other keys. */
    assert_false(orbit_node_label_get(fx->cur.labels, "rac", v, sizeof v));
    assert_false(orbit_node_label_get(fx->cur.labels, "racks", v, sizeof v));
    assert_false(orbit_node_label_get(fx->cur.labels, "h100", v, sizeof v));
    assert_false(orbit_node_label_get("", "rack", v, sizeof v));

    /* Keys sharing a prefix sort shortest first; "a" goes first, "zz" last. */
    assert_int_equal(orbit_node_label_set(&fx->cur, "rack2", "x"), ORBIT_OK);
    assert_int_equal(orbit_node_label_set(&fx->cur, "a", "1"), ORBIT_OK);
    assert_int_equal(orbit_node_label_set(&fx->cur, "zz", "9"), ORBIT_OK);
    assert_int_equal(orbit_node_label_set(&fx->cur, "r", "0"), ORBIT_OK);
    assert_string_equal(fx->cur.labels, "a=1\ngpu=h100\nr=0\nrack=r1\nrack2=x\nzone=z1\nzz=9\n");

    /* Replacing keeps one entry per key and the order. */
    assert_int_equal(orbit_node_label_set(&fx->cur, "rack", "r22"), ORBIT_OK);
    assert_int_equal(orbit_node_label_set(&fx->cur, "zz", "8"), ORBIT_OK);
    assert_int_equal(orbit_node_label_set(&fx->cur, "a", "0"), ORBIT_OK);
    assert_string_equal(fx->cur.labels, "a=0\ngpu=h100\nr=0\nrack=r22\nrack2=x\nzone=z1\nzz=8\n");
    assert_true(orbit_node_label_get(fx->cur.labels, "rack", v, sizeof v));
    assert_string_equal(v, "r22");

    /* A short output buffer gets a truncated, terminated value. */
    char small[3];
    assert_true(orbit_node_label_get(fx->cur.labels, "gpu", small, sizeof small));
    assert_string_equal(small, "h1");
    assert_true(orbit_node_label_get(fx->cur.labels, "gpu", NULL, 0)); /* presence only */
}

static void test_label_set_invalid(void **state)
{
    node_fx_t *fx = *state;
    char before[ORBIT_LABELS_MAX];
    memcpy(before, fx->cur.labels, sizeof before);
    char long_key[ORBIT_LABEL_KEY_MAX + 2], long_value[ORBIT_LABEL_VALUE_MAX + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    memset(long_value, 'v', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    const char *bad[][2] = {
        {"", "v"},     {"k", ""},    {"a=b", "v"},    {"k", "a=b"},      {"a\nb", "v"},
        {"k", "v\nw"}, {"k\t", "v"}, {long_key, "v"}, {"k", long_value},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(orbit_node_label_set(&fx->cur, bad[i][0], bad[i][1]), ORBIT_EINVAL);
        assert_string_equal(fx->cur.labels, before);
    }
    assert_int_equal(orbit_node_label_set(&fx->cur, NULL, "v"), ORBIT_EINVAL);
    assert_int_equal(orbit_node_label_set(&fx->cur, "k", NULL), ORBIT_EINVAL);
    /* The longest allowed key and value are fine. */
    long_key[ORBIT_LABEL_KEY_MAX] = '\0';
    long_value[ORBIT_LABEL_VALUE_MAX] = '\0';
    orbit_node_state_t s;
    orbit_node_state_init(&s);
    assert_int_equal(orbit_node_label_set(&s, long_key, long_value), ORBIT_OK);
    assert_int_equal(strlen(s.labels), ORBIT_LABEL_KEY_MAX + ORBIT_LABEL_VALUE_MAX + 2);

    /* Filling the packed list: the label that does not fit is refused and
     * the list stays as it was. */
    orbit_node_state_init(&s);
    int added = 0;
    for (int i = 0; i < 100; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%02d", i);
        char keep[ORBIT_LABELS_MAX];
        memcpy(keep, s.labels, sizeof keep);
        int rc = orbit_node_label_set(&s, k, "0123456789");
        if (rc != ORBIT_OK) {
            assert_int_equal(rc, ORBIT_EINVAL);
            assert_string_equal(s.labels, keep);
            break;
        }
        added++;
    }
    assert_int_equal(added, (ORBIT_LABELS_MAX - 1) / 15); /* "kNN=0123456789\n" */
    assert_true(strlen(s.labels) < ORBIT_LABELS_MAX);
    /* Replacing an existing key with a value of the same length still fits. */
    assert_int_equal(orbit_node_label_set(&s, "k00", "9876543210"), ORBIT_OK);
}

/* ------------------------------------------------------------ delta fill */

static void test_fill_full(void **state)
{
    node_fx_t *fx = *state;
    Orbit__NodeDelta *m = fill(fx, NULL);
    assert_string_equal(m->node, "gpu-node-1");
    assert_int_equal(m->incarnation, 0xB007);
    assert_int_equal(m->seq, 1);
    assert_true(m->has_full && m->full);
    assert_true(m->has_sampled_ms);
    assert_true(m->has_interval_ms && m->has_cpu_capacity_m && m->has_cpu_used_m);
    assert_true(m->has_mem_capacity && m->has_mem_used && m->has_gpu_capacity);
    assert_true(m->has_load1 && m->has_load5 && m->has_load15 && m->has_pressure_available);
    assert_int_equal(m->cpu_used_m, 12000);
    assert_int_equal(m->mem_capacity, 256LL << 30);
    assert_non_null(m->pressure);
    assert_int_equal(m->pressure->mem_some, 340);
    assert_true(m->has_gpus_set && m->gpus_set);
    assert_int_equal(m->n_gpus, 4);
    assert_int_equal(m->gpus[3]->index, 3);
    assert_string_equal(m->gpus[3]->uuid, fx->cur.gpus[3].uuid);
    assert_true(m->has_labels_set && m->labels_set);
    assert_int_equal(m->n_labels, 3);
    assert_string_equal(m->labels[0]->key, "gpu");
    assert_string_equal(m->labels[2]->value, "z1");
    assert_true(protobuf_c_message_check(&m->base));

    /* The malloc'd variant fills the same message and hands one block back. */
    Orbit__NodeDelta m2 = ORBIT__NODE_DELTA__INIT;
    void *scratch = NULL;
    assert_int_equal(orbit_node_delta_fill(&m2, &fx->cur, NULL, 1, &scratch), ORBIT_OK);
    assert_non_null(scratch);
    assert_int_equal(protobuf_c_message_get_packed_size(&m->base),
                     protobuf_c_message_get_packed_size(&m2.base));
    free(scratch);

    /* Without pressure, a full state carries no pressure message. */
    fx->cur.pressure_available = false;
    memset(&fx->cur.pressure, 0, sizeof fx->cur.pressure);
    m = fill(fx, NULL);
    assert_null(m->pressure);
    assert_true(m->has_pressure_available);
    assert_false(m->pressure_available);
}

static void test_fill_delta_only_changed(void **state)
{
    node_fx_t *fx = *state;
    orbit_node_state_t base;
    orbit_node_state_init(&base);
    assert_int_equal(orbit_node_state_copy(&base, &fx->cur), ORBIT_OK);

    /* Nothing changed but the sample time: only the identity fields. */
    fx->cur.sampled_ms += 1000;
    Orbit__NodeDelta *m = fill(fx, &base);
    assert_false(m->has_full && m->full);
    assert_true(m->has_sampled_ms);
    assert_int_equal(m->sampled_ms, base.sampled_ms + 1000);
    assert_false(m->has_interval_ms || m->has_cpu_capacity_m || m->has_cpu_used_m ||
                 m->has_mem_capacity || m->has_mem_used || m->has_gpu_capacity || m->has_load1 ||
                 m->has_load5 || m->has_load15 || m->has_pressure_available);
    assert_null(m->pressure);
    assert_false(m->has_gpus_set);
    assert_int_equal(m->n_gpus, 0);
    assert_false(m->has_labels_set);
    assert_int_equal(m->n_labels, 0);

    /* One scalar: only that one. */
    fx->cur.cpu_used_m = 13000;
    fx->cur.load5 = 201;
    m = fill(fx, &base);
    assert_true(m->has_cpu_used_m);
    assert_int_equal(m->cpu_used_m, 13000);
    assert_true(m->has_load5);
    assert_false(m->has_cpu_capacity_m || m->has_mem_used || m->has_load1 || m->has_load15);
    assert_false(m->has_gpus_set || m->has_labels_set);
    assert_null(m->pressure);

    /* Pressure: the whole pressure message. */
    fx->cur.pressure.io_full = 77;
    m = fill(fx, &base);
    assert_non_null(m->pressure);
    assert_int_equal(m->pressure->io_full, 77);
    assert_int_equal(m->pressure->cpu_some, 120);
    assert_false(m->has_pressure_available);

    /* One GPU's temperature: the whole list, flagged as a replacement. */
    fx->cur.gpus[2].temp_c = 71;
    m = fill(fx, &base);
    assert_true(m->has_gpus_set && m->gpus_set);
    assert_int_equal(m->n_gpus, 4);
    assert_int_equal(m->gpus[2]->temp_c, 71);
    assert_false(m->has_labels_set);

    /* Labels: the whole list. */
    assert_int_equal(orbit_node_label_set(&fx->cur, "pool", "batch"), ORBIT_OK);
    m = fill(fx, &base);
    assert_true(m->has_labels_set && m->labels_set);
    assert_int_equal(m->n_labels, 4);
    assert_string_equal(m->labels[1]->key, "pool");

    /* Now zero GPUs: gpus_set with an empty list, which is how "none"
     * differs from "unchanged". */
    assert_int_equal(orbit_node_state_set_gpus(&fx->cur, NULL, 0), ORBIT_OK);
    m = fill(fx, &base);
    assert_true(m->has_gpus_set && m->gpus_set);
    assert_int_equal(m->n_gpus, 0);
    /* And no labels at all. */
    fx->cur.labels[0] = '\0';
    m = fill(fx, &base);
    assert_true(m->has_labels_set && m->labels_set);
    assert_int_equal(m->n_labels, 0);
    orbit_node_state_close(&base);
}

/* ---------------------------------------------------------- the round trip */

static void test_roundtrip_full_then_deltas(void **state)
{
    node_fx_t *fx = *state;
    const Orbit__NodeDelta *d = transmit(fx, true, false);
    assert_true(d->full);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);
    assert_string_equal(fx->rx.name, "gpu-node-1");
    assert_int_equal(fx->rx.ngpus, 4);
    assert_string_equal(fx->rx.gpus[1].uuid, fx->cur.gpus[1].uuid);

    fx->cur.cpu_used_m = 30000;
    fx->cur.sampled_ms += 1000;
    d = transmit(fx, false, true);
    assert_false(d->has_mem_used);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);

    assert_int_equal(orbit_node_label_set(&fx->cur, "pool", "batch"), ORBIT_OK);
    transmit(fx, false, false);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);
    assert_string_equal(fx->rx.labels, "gpu=h100\npool=batch\nrack=r1\nzone=z1\n");

    fx->cur.gpus[0].temp_c = 88;
    fx->cur.gpus[0].health = ORBIT_GPU_DEGRADED;
    transmit(fx, false, true);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);
    assert_int_equal(fx->rx.gpus[0].health, ORBIT_GPU_DEGRADED);

    /* The node loses its GPUs (driver unloaded): now zero GPUs. */
    assert_int_equal(orbit_node_state_set_gpus(&fx->cur, NULL, 0), ORBIT_OK);
    fx->cur.gpu_capacity = 0;
    d = transmit(fx, false, false);
    assert_true(d->gpus_set);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);
    assert_int_equal(fx->rx.ngpus, 0);
    assert_null(fx->rx.gpus);

    /* A full state resets everything it does not carry. */
    fx->cur.load15 = 0;
    fx->cur.labels[0] = '\0';
    transmit(fx, true, true);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);
    assert_string_equal(fx->rx.labels, "");
}

static void test_roundtrip_pressure_lost_and_back(void **state)
{
    node_fx_t *fx = *state;
    transmit(fx, true, false);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);
    /* PSI becomes unreadable: the leaf reports it unavailable and zeroes the
     * values (leaf_procfs does); the shard must not keep the stale ones. */
    fx->cur.pressure_available = false;
    memset(&fx->cur.pressure, 0, sizeof fx->cur.pressure);
    transmit(fx, false, false);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);
    assert_false(fx->rx.pressure_available);
    assert_int_equal(fx->rx.pressure.mem_some, 0);
    /* ... and comes back. */
    fx->cur.pressure_available = true;
    fx->cur.pressure = (orbit_pressure_t){1, 2, 3, 4, 5};
    transmit(fx, false, true);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);
    assert_int_equal(fx->rx.pressure.io_full, 5);
    /* Available but all zero survives a full state too. */
    fx->cur.pressure = (orbit_pressure_t){0, 0, 0, 0, 0};
    transmit(fx, true, false);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);
    assert_true(fx->rx.pressure_available);
}

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* Random plausible changes, each sent as a real delta (a full state every
 * 9th message), must always rebuild the leaf's state exactly. */
static void test_roundtrip_random_walk(void **state)
{
    node_fx_t *fx = *state;
    rng_state = 0x9E3779B97F4A7C15ULL;
    fx->cur.gpu_capacity = 8;
    transmit(fx, true, false);
    static const char *keys[] = {"rack", "zone", "pool", "gpu", "tier"};
    static const char *vals[] = {"a", "b", "c-1", "h100", "x.y"};
    for (int step = 1; step <= 400; step++) {
        orbit_node_state_t *c = &fx->cur;
        c->sampled_ms += 1000;
        int changes = 1 + (int)rnd(3);
        for (int k = 0; k < changes; k++) {
            switch (rnd(9)) {
            case 0: c->cpu_used_m = rnd((uint32_t)c->cpu_capacity_m + 1); break;
            case 1: c->mem_used = (int64_t)rnd(1u << 30) * 256; break;
            case 2:
                c->cpu_capacity_m = 1000 + rnd(200000);
                if (c->cpu_used_m > c->cpu_capacity_m)
                    c->cpu_used_m = c->cpu_capacity_m;
                break;
            case 3:
                c->load1 = rnd(10000);
                c->load15 = rnd(10000);
                break;
            case 4:
                c->pressure_available = rnd(4) != 0;
                if (c->pressure_available)
                    c->pressure = (orbit_pressure_t){rnd(10001), rnd(10001), rnd(10001), rnd(10001),
                                                     rnd(10001)};
                else
                    memset(&c->pressure, 0, sizeof c->pressure);
                break;
            case 5: {
                orbit_gpu_t gs[8];
                uint32_t n = rnd(9);
                for (uint32_t i = 0; i < n; i++) {
                    make_gpu(&gs[i], i);
                    gs[i].temp_c = 30 + (int32_t)rnd(70);
                    gs[i].last_xid = rnd(3) ? 0 : 13;
                    gs[i].health = orbit_gpu_health_derive(&gs[i]);
                }
                assert_int_equal(orbit_node_state_set_gpus(c, gs, n), ORBIT_OK);
                break;
            }
            case 6:
                if (c->ngpus)
                    c->gpus[rnd(c->ngpus)].util_pct = rnd(101);
                break;
            case 7:
                assert_int_equal(orbit_node_label_set(c, keys[rnd(5)], vals[rnd(5)]), ORBIT_OK);
                break;
            case 8:
                if (rnd(4) == 0)
                    c->labels[0] = '\0';
                c->interval_ms = 100 + rnd(5000);
                break;
            }
        }
        transmit(fx, step % 9 == 0, step % 2 == 0);
        ASSERT_SAME_STATE(&fx->rx, &fx->cur);
        orbit_arena_reset(fx->arena);
    }
}

static void test_apply_full_resets_and_keeps_name(void **state)
{
    node_fx_t *fx = *state;
    transmit(fx, true, false);
    /* A full state carrying nothing but its identity zeroes the rest. */
    Orbit__NodeDelta m = ORBIT__NODE_DELTA__INIT;
    m.node = "some-other-name";
    m.incarnation = 5;
    m.seq = 99;
    m.has_full = m.full = true;
    assert_int_equal(orbit_node_delta_apply(&fx->rx, &m), ORBIT_OK);
    assert_string_equal(fx->rx.name, "gpu-node-1");
    assert_int_equal(fx->rx.incarnation, 5);
    assert_int_equal(fx->rx.cpu_capacity_m, 0);
    assert_int_equal(fx->rx.ngpus, 0);
    assert_null(fx->rx.gpus);
    assert_string_equal(fx->rx.labels, "");
    assert_false(fx->rx.pressure_available);
}

static void test_apply_derives_missing_gpu_health(void **state)
{
    node_fx_t *fx = *state;
    Orbit__Gpu g0 = ORBIT__GPU__INIT, g1 = ORBIT__GPU__INIT, *gs[2] = {&g0, &g1};
    g0.index = 0;
    g0.has_ecc_uncorrected = true;
    g0.ecc_uncorrected = 2; /* no health given: derived as failed */
    g1.index = 1;
    g1.has_health = true;
    g1.health = ORBIT__GPU_HEALTH__GPU_DEGRADED; /* given: taken as is */
    Orbit__NodeDelta m = ORBIT__NODE_DELTA__INIT;
    m.node = "gpu-node-1";
    m.incarnation = 1;
    m.seq = 1;
    m.has_full = m.full = true;
    m.has_gpus_set = m.gpus_set = true;
    m.n_gpus = 2;
    m.gpus = gs;
    assert_int_equal(orbit_node_delta_validate(&m, NULL, NULL), ORBIT_OK);
    assert_int_equal(orbit_node_delta_apply(&fx->rx, &m), ORBIT_OK);
    assert_int_equal(fx->rx.ngpus, 2);
    assert_int_equal(fx->rx.gpus[0].health, ORBIT_GPU_FAILED);
    assert_int_equal(fx->rx.gpus[1].health, ORBIT_GPU_DEGRADED);
    assert_string_equal(fx->rx.gpus[0].uuid, "");
}

/* ------------------------------------------------------------- validation */

#define EXPECT_INVALID(m, base, why)                                                               \
    do {                                                                                           \
        const char *reason_ = NULL;                                                                \
        assert_int_equal(orbit_node_delta_validate((m), (base), &reason_), ORBIT_EINVAL);          \
        assert_non_null(reason_);                                                                  \
        assert_string_equal(reason_, (why));                                                       \
    } while (0)

#define EXPECT_VALID(m, base)                                                                      \
    do {                                                                                           \
        const char *reason_ = NULL;                                                                \
        assert_int_equal(orbit_node_delta_validate((m), (base), &reason_), ORBIT_OK);              \
        assert_null(reason_);                                                                      \
    } while (0)

static void test_validate_good_full(void **state)
{
    node_fx_t *fx = *state;
    Orbit__NodeDelta *m = fill(fx, NULL);
    EXPECT_VALID(m, NULL);
    /* A NULL reason pointer is allowed. */
    assert_int_equal(orbit_node_delta_validate(m, NULL, NULL), ORBIT_OK);
    /* 63-byte names are the longest allowed. */
    char name[ORBIT_NAME_MAX];
    memset(name, 'n', ORBIT_NAME_MAX - 1);
    name[ORBIT_NAME_MAX - 1] = '\0';
    m->node = name;
    EXPECT_VALID(m, NULL);
    /* CPU usage may exceed capacity by 1 % (kernel accounting). */
    m->cpu_used_m = m->cpu_capacity_m + m->cpu_capacity_m / 100;
    EXPECT_VALID(m, NULL);
}

static void test_validate_rejects_resources(void **state)
{
    node_fx_t *fx = *state;
    Orbit__NodeDelta *m = fill(fx, NULL);
    m->cpu_used_m = -1;
    EXPECT_INVALID(m, NULL, "cpu usage out of range");
    m->cpu_used_m = 1000;
    m->mem_used = -4096;
    EXPECT_INVALID(m, NULL, "memory usage out of range");
    m->mem_used = m->mem_capacity + 1;
    EXPECT_INVALID(m, NULL, "memory usage exceeds capacity");
    m->mem_used = m->mem_capacity;
    EXPECT_VALID(m, NULL);
    m->cpu_used_m = m->cpu_capacity_m + m->cpu_capacity_m / 100 + 1;
    EXPECT_INVALID(m, NULL, "cpu usage exceeds capacity");
    m->cpu_used_m = 0;
    m->cpu_capacity_m = -64000;
    EXPECT_INVALID(m, NULL, "cpu capacity out of range");
    m->cpu_capacity_m = ORBIT_CPU_MAX_M + 1;
    EXPECT_INVALID(m, NULL, "cpu capacity out of range");
    m->cpu_capacity_m = 64000;
    m->mem_capacity = ORBIT_MEM_MAX + 1;
    EXPECT_INVALID(m, NULL, "memory capacity out of range");
    m->mem_capacity = 1LL << 30;
    m->mem_used = 0;
    m->load5 = ORBIT_LOAD_MAX + 1;
    EXPECT_INVALID(m, NULL, "load out of range");
    m->load5 = 0;
    m->pressure->mem_full = ORBIT_PRESSURE_MAX + 1;
    EXPECT_INVALID(m, NULL, "pressure out of range");
    m->pressure->mem_full = ORBIT_PRESSURE_MAX;
    EXPECT_VALID(m, NULL);
    /* A full state with usage but no capacity has capacity 0. */
    m->cpu_used_m = 1000;
    m->has_cpu_capacity_m = false;
    EXPECT_INVALID(m, &fx->cur, "cpu usage exceeds capacity");
}

static void test_validate_rejects_gpus(void **state)
{
    node_fx_t *fx = *state;
    Orbit__NodeDelta *m = fill(fx, NULL);
    m->gpu_capacity = 1000;
    EXPECT_INVALID(m, NULL, "gpu capacity out of range");
    m->gpu_capacity = ORBIT_GPUS_MAX;
    EXPECT_VALID(m, NULL);

    /* A million GPU samples, and then 65 distinct ones. */
    Orbit__Gpu **many = calloc(1000000, sizeof *many);
    assert_non_null(many);
    Orbit__Gpu *gs = calloc(ORBIT_GPUS_MAX + 1, sizeof *gs);
    assert_non_null(gs);
    for (size_t i = 0; i < 1000000; i++)
        many[i] = &gs[i % (ORBIT_GPUS_MAX + 1)];
    for (uint32_t i = 0; i <= ORBIT_GPUS_MAX; i++) {
        orbit__gpu__init(&gs[i]);
        gs[i].index = i;
    }
    Orbit__Gpu **keep = m->gpus;
    size_t keep_n = m->n_gpus;
    m->gpus = many;
    m->n_gpus = 1000000;
    EXPECT_INVALID(m, NULL, "too many gpus");
    m->n_gpus = ORBIT_GPUS_MAX + 1;
    EXPECT_INVALID(m, NULL, "too many gpus");
    m->n_gpus = ORBIT_GPUS_MAX; /* indexes 0..63: the most allowed */
    EXPECT_VALID(m, NULL);
    m->gpus = keep;
    m->n_gpus = keep_n;
    free(many);
    free(gs);

    m->gpu_capacity = 4;
    m->gpus[3]->index = 1;
    EXPECT_INVALID(m, NULL, "duplicate gpu index");
    m->gpus[3]->index = ORBIT_GPUS_MAX;
    EXPECT_INVALID(m, NULL, "gpu index out of range");
    m->gpus[3]->index = 3;
    EXPECT_VALID(m, NULL);

    m->gpus[1]->health = (Orbit__GpuHealth)3;
    EXPECT_INVALID(m, NULL, "unknown gpu health");
    m->gpus[1]->health = (Orbit__GpuHealth)-1;
    EXPECT_INVALID(m, NULL, "unknown gpu health");
    m->gpus[1]->health = ORBIT__GPU_HEALTH__GPU_FAILED;
    EXPECT_VALID(m, NULL);

    m->gpus[0]->temp_c = 500;
    EXPECT_INVALID(m, NULL, "gpu temperature out of range");
    m->gpus[0]->temp_c = -273;
    EXPECT_INVALID(m, NULL, "gpu temperature out of range");
    m->gpus[0]->temp_c = 45;
    m->gpus[0]->util_pct = 101;
    EXPECT_INVALID(m, NULL, "gpu utilisation out of range");
    m->gpus[0]->util_pct = 100;
    m->gpus[0]->mem_used = m->gpus[0]->mem_total + 1;
    EXPECT_INVALID(m, NULL, "gpu memory out of range");
    m->gpus[0]->mem_used = 0;
    m->gpus[0]->mem_total = ORBIT_GPU_MEM_MAX + 1;
    EXPECT_INVALID(m, NULL, "gpu memory out of range");
    m->gpus[0]->mem_total = 1 << 30;
    m->gpus[0]->power_mw = 10u * 1000 * 1000 + 1;
    EXPECT_INVALID(m, NULL, "gpu power out of range");
    m->gpus[0]->power_mw = 1;
    char uuid[ORBIT_UUID_MAX + 1];
    memset(uuid, 'u', ORBIT_UUID_MAX);
    uuid[ORBIT_UUID_MAX] = '\0';
    m->gpus[0]->uuid = uuid;
    EXPECT_INVALID(m, NULL, "gpu uuid too long");
    m->gpus[0]->uuid = NULL; /* optional */
    EXPECT_VALID(m, NULL);

    /* More samples than the declared capacity. */
    m->gpu_capacity = 3;
    EXPECT_INVALID(m, NULL, "more gpu samples than gpu capacity");
    m->gpu_capacity = 4;
    /* A list without its replacement flag is ambiguous. */
    m->gpus_set = false;
    EXPECT_INVALID(m, NULL, "gpu list without gpus_set");
}

static void test_validate_rejects_names_labels_interval(void **state)
{
    node_fx_t *fx = *state;
    Orbit__NodeDelta *m = fill(fx, NULL);
    char long_name[ORBIT_NAME_MAX + 1];
    memset(long_name, 'n', ORBIT_NAME_MAX);
    long_name[ORBIT_NAME_MAX] = '\0';
    const char *bad_names[] = {"", long_name, "gpu node", "a/b", "n\n", "ü", NULL};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        m->node = (char *)bad_names[i];
        EXPECT_INVALID(m, NULL, "invalid node name");
    }
    m->node = "ok-name_1.2";
    EXPECT_VALID(m, NULL);

    char *key = m->labels[1]->key;
    m->labels[1]->key = "ra=ck";
    EXPECT_INVALID(m, NULL, "invalid label");
    m->labels[1]->key = "";
    EXPECT_INVALID(m, NULL, "invalid label");
    m->labels[1]->key = key;
    m->labels[1]->value = "";
    EXPECT_INVALID(m, NULL, "invalid label");
    m->labels[1]->value = "two\nlines";
    EXPECT_INVALID(m, NULL, "invalid label");
    m->labels[1]->value = "r9";
    EXPECT_VALID(m, NULL);
    m->labels_set = false;
    EXPECT_INVALID(m, NULL, "label list without labels_set");
    m->labels_set = true;

    /* Labels that each pass but together overflow the packed form. */
    char value[ORBIT_LABEL_VALUE_MAX + 1];
    memset(value, 'v', ORBIT_LABEL_VALUE_MAX);
    value[ORBIT_LABEL_VALUE_MAX] = '\0';
    for (size_t i = 0; i < m->n_labels; i++)
        m->labels[i]->value = value;
    EXPECT_INVALID(m, NULL, "labels too long");
    m->n_labels = 1;
    EXPECT_VALID(m, NULL);

    m->interval_ms = 0;
    EXPECT_INVALID(m, NULL, "interval out of range");
    m->interval_ms = 9;
    EXPECT_INVALID(m, NULL, "interval out of range");
    m->interval_ms = 3600 * 1000 + 1;
    EXPECT_INVALID(m, NULL, "interval out of range");
    m->interval_ms = 10;
    EXPECT_VALID(m, NULL);
    m->has_interval_ms = false; /* absent is fine: the shard's default applies */
    EXPECT_VALID(m, NULL);
}

static void test_validate_delta_against_base(void **state)
{
    node_fx_t *fx = *state;
    orbit_node_state_t *base = &fx->cur; /* cpu 64000 m, mem 256 GiB, 4 GPUs of 4 */
    Orbit__NodeDelta m = ORBIT__NODE_DELTA__INIT;
    m.node = "gpu-node-1";
    m.incarnation = base->incarnation;
    m.seq = 2;

    m.has_cpu_used_m = true;
    m.cpu_used_m = 64640; /* capacity + 1 % */
    EXPECT_VALID(&m, base);
    m.cpu_used_m = 64641;
    EXPECT_INVALID(&m, base, "cpu usage exceeds capacity");
    m.has_cpu_capacity_m = true; /* ... unless the same delta raises the capacity */
    m.cpu_capacity_m = 128000;
    EXPECT_VALID(&m, base);
    m.has_cpu_capacity_m = m.has_cpu_used_m = false;

    /* Lowering the capacity below the usage the shard holds. */
    m.has_mem_capacity = true;
    m.mem_capacity = 64LL << 30;
    EXPECT_INVALID(&m, base, "memory usage exceeds capacity");
    m.has_mem_used = true;
    m.mem_used = 1LL << 30;
    EXPECT_VALID(&m, base);
    m.has_mem_capacity = m.has_mem_used = false;

    /* The same delta without a base: usage against capacity 0. */
    m.has_cpu_used_m = true;
    m.cpu_used_m = 1;
    EXPECT_INVALID(&m, NULL, "cpu usage exceeds capacity");
    /* A full state ignores the base. */
    m.has_full = m.full = true;
    EXPECT_INVALID(&m, base, "cpu usage exceeds capacity");
    m.has_full = m.full = false;
    m.has_cpu_used_m = false;

    /* GPUs against the base's capacity, and capacity against its samples. */
    Orbit__Gpu g[5], *gp[5];
    for (uint32_t i = 0; i < 5; i++) {
        orbit__gpu__init(&g[i]);
        g[i].index = i;
        gp[i] = &g[i];
    }
    m.has_gpus_set = m.gpus_set = true;
    m.n_gpus = 5;
    m.gpus = gp;
    EXPECT_INVALID(&m, base, "more gpu samples than gpu capacity");
    m.n_gpus = 4;
    EXPECT_VALID(&m, base);
    m.has_gpus_set = m.gpus_set = false;
    m.n_gpus = 0;
    m.has_gpu_capacity = true;
    m.gpu_capacity = 2;
    EXPECT_INVALID(&m, base, "more gpu samples than gpu capacity");
    m.has_gpus_set = m.gpus_set = true; /* shrinking both at once is fine */
    m.n_gpus = 2;
    EXPECT_VALID(&m, base);
}

static void test_gpu_health_derive(void **state)
{
    (void)state;
    static const struct {
        int32_t temp;
        uint32_t xid;
        uint64_t ecc_c, ecc_u;
        orbit_gpu_health_t want;
    } table[] = {
        {40, 0, 0, 0, ORBIT_GPU_HEALTHY},      {84, 0, 0, 0, ORBIT_GPU_HEALTHY},
        {85, 0, 0, 0, ORBIT_GPU_DEGRADED},     {94, 0, 0, 0, ORBIT_GPU_DEGRADED},
        {95, 0, 0, 0, ORBIT_GPU_FAILED},       {120, 0, 0, 0, ORBIT_GPU_FAILED},
        {-20, 0, 0, 0, ORBIT_GPU_HEALTHY},     {40, 13, 0, 0, ORBIT_GPU_DEGRADED},
        {40, 31, 0, 0, ORBIT_GPU_DEGRADED},    {40, 43, 0, 0, ORBIT_GPU_DEGRADED},
        {40, 48, 0, 0, ORBIT_GPU_FAILED},      {40, 62, 0, 0, ORBIT_GPU_FAILED},
        {40, 63, 0, 0, ORBIT_GPU_FAILED},      {40, 64, 0, 0, ORBIT_GPU_FAILED},
        {40, 74, 0, 0, ORBIT_GPU_FAILED},      {40, 79, 0, 0, ORBIT_GPU_FAILED},
        {40, 92, 0, 0, ORBIT_GPU_FAILED},      {40, 94, 0, 0, ORBIT_GPU_FAILED},
        {40, 95, 0, 0, ORBIT_GPU_FAILED},      {40, 0, 999, 0, ORBIT_GPU_HEALTHY},
        {40, 0, 1000, 0, ORBIT_GPU_DEGRADED},  {40, 0, 0, 1, ORBIT_GPU_FAILED},
        {86, 13, 5000, 0, ORBIT_GPU_DEGRADED}, {86, 13, 5000, 3, ORBIT_GPU_FAILED},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        orbit_gpu_t g;
        make_gpu(&g, 0);
        g.temp_c = table[i].temp;
        g.last_xid = table[i].xid;
        g.ecc_corrected = table[i].ecc_c;
        g.ecc_uncorrected = table[i].ecc_u;
        g.health = ORBIT_GPU_HEALTHY;
        if (orbit_gpu_health_derive(&g) != table[i].want)
            fail_msg("row %zu: temp %d xid %u ecc %llu/%llu gave %d, want %d", i, table[i].temp,
                     table[i].xid, (unsigned long long)table[i].ecc_c,
                     (unsigned long long)table[i].ecc_u, (int)orbit_gpu_health_derive(&g),
                     (int)table[i].want);
    }
}

/* ------------------------------------------------------------- state misc */

static void test_state_copy_and_gpus(void **state)
{
    node_fx_t *fx = *state;
    orbit_node_state_t copy;
    orbit_node_state_init(&copy);
    assert_int_equal(orbit_node_state_copy(&copy, &fx->cur), ORBIT_OK);
    assert_false(orbit_node_state_differs(&copy, &fx->cur));
    assert_ptr_not_equal(copy.gpus, fx->cur.gpus); /* deep */
    copy.gpus[0].util_pct = 99;
    assert_true(orbit_node_state_differs(&copy, &fx->cur));
    assert_int_equal(fx->cur.gpus[0].util_pct, 0);
    assert_int_equal(orbit_node_state_copy(&copy, &copy), ORBIT_OK); /* self copy */
    assert_int_equal(copy.gpus[0].util_pct, 99);
    assert_int_equal(orbit_node_state_heap_bytes(&copy), 4 * sizeof(orbit_gpu_t));

    /* differs looks at every reported field but not the name or sample time. */
    assert_int_equal(orbit_node_state_copy(&copy, &fx->cur), ORBIT_OK);
    snprintf(copy.name, sizeof copy.name, "other");
    copy.sampled_ms++;
    assert_false(orbit_node_state_differs(&copy, &fx->cur));
    copy.pressure.io_some++;
    assert_true(orbit_node_state_differs(&copy, &fx->cur));
    copy.pressure.io_some--;
    copy.labels[0] = 'G';
    assert_true(orbit_node_state_differs(&copy, &fx->cur));

    orbit_gpu_t many[ORBIT_GPUS_MAX + 1];
    memset(many, 0, sizeof many);
    assert_int_equal(orbit_node_state_set_gpus(&copy, many, ORBIT_GPUS_MAX + 1), ORBIT_EINVAL);
    assert_int_equal(copy.ngpus, 4); /* unchanged */
    assert_int_equal(orbit_node_state_set_gpus(&copy, many, ORBIT_GPUS_MAX), ORBIT_OK);
    assert_int_equal(copy.ngpus, ORBIT_GPUS_MAX);
    orbit_node_state_close(&copy);
    assert_null(copy.gpus);
    assert_int_equal(copy.ngpus, 0);
    orbit_node_state_close(NULL);
}

static void test_name_valid(void **state)
{
    (void)state;
    char n63[64], n64[65];
    memset(n63, 'a', 63);
    n63[63] = '\0';
    memset(n64, 'a', 64);
    n64[64] = '\0';
    assert_true(orbit_name_valid("a"));
    assert_true(orbit_name_valid("Rack-01_zone.eu"));
    assert_true(orbit_name_valid(n63));
    assert_false(orbit_name_valid(n64));
    assert_false(orbit_name_valid(""));
    assert_false(orbit_name_valid(NULL));
    assert_false(orbit_name_valid("a b"));
    assert_false(orbit_name_valid("a:b"));
    assert_false(orbit_name_valid("a=b"));
}

/* --------------------------------------------------------------- capsules */

static orbit_capsule_t capsule(const char *id, orbit_capsule_state_t st, int32_t exit_code,
                               const char *reason, int64_t since_ms)
{
    orbit_capsule_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.id, sizeof c.id, "%s", id);
    c.state = st;
    c.exit_code = exit_code;
    snprintf(c.reason, sizeof c.reason, "%s", reason);
    c.since_ms = since_ms;
    return c;
}

/* Three capsules given out of order. */
static void set_three_capsules(orbit_node_state_t *s)
{
    orbit_capsule_t cs[3] = {
        capsule("web/front/1", ORBIT_CAPSULE_RUNNING, 0, "", 1000),
        capsule("batch/etl/0", ORBIT_CAPSULE_EXITED, 3, "", 2000),
        capsule("web/front/0", ORBIT_CAPSULE_FAILED, 0, "command not found: nginx", 3000),
    };
    assert_int_equal(orbit_node_state_set_capsules(s, cs, 3), ORBIT_OK);
}

static void test_capsule_state_name(void **state)
{
    (void)state;
    assert_string_equal(orbit_capsule_state_name(ORBIT_CAPSULE_STARTING), "starting");
    assert_string_equal(orbit_capsule_state_name(ORBIT_CAPSULE_RUNNING), "running");
    assert_string_equal(orbit_capsule_state_name(ORBIT_CAPSULE_EXITED), "exited");
    assert_string_equal(orbit_capsule_state_name(ORBIT_CAPSULE_FAILED), "failed");
    assert_string_equal(orbit_capsule_state_name(ORBIT_CAPSULE_OOM_KILLED), "oom_killed");
    assert_string_equal(orbit_capsule_state_name(ORBIT_CAPSULE_STOPPED), "stopped");
    assert_string_equal(orbit_capsule_state_name(ORBIT_CAPSULE_STATE_COUNT), "?");
    assert_string_equal(orbit_capsule_state_name((orbit_capsule_state_t)-1), "?");
}

static void test_set_capsules_sorted_and_validated(void **state)
{
    node_fx_t *fx = *state;
    orbit_node_state_t *s = &fx->cur;
    set_three_capsules(s);
    assert_int_equal(s->ncapsules, 3);
    assert_string_equal(s->capsules[0].id, "batch/etl/0");
    assert_string_equal(s->capsules[1].id, "web/front/0");
    assert_string_equal(s->capsules[2].id, "web/front/1");
    assert_string_equal(s->capsules[1].reason, "command not found: nginx");
    assert_int_equal(s->capsules[0].exit_code, 3);
    size_t gpus = 4 * sizeof(orbit_gpu_t);
    assert_int_equal(orbit_node_state_heap_bytes(s), gpus + 3 * sizeof(orbit_capsule_t));

    /* Every rejection leaves the list as it was. */
    orbit_capsule_t bad[2] = {capsule("a/b/0", ORBIT_CAPSULE_RUNNING, 0, "", 0),
                              capsule("a/b/1", ORBIT_CAPSULE_RUNNING, 0, "", 0)};
    bad[1] = capsule("a/b/0", ORBIT_CAPSULE_EXITED, 1, "", 0);
    assert_int_equal(orbit_node_state_set_capsules(s, bad, 2), ORBIT_EINVAL); /* one id twice */
    bad[1] = capsule("", ORBIT_CAPSULE_RUNNING, 0, "", 0);
    assert_int_equal(orbit_node_state_set_capsules(s, bad, 2), ORBIT_EINVAL); /* empty id */
    bad[1] = capsule("a b", ORBIT_CAPSULE_RUNNING, 0, "", 0);
    assert_int_equal(orbit_node_state_set_capsules(s, bad, 2), ORBIT_EINVAL); /* id character */
    bad[1] = capsule("a/b/1", ORBIT_CAPSULE_RUNNING, 0, "", 0);
    memset(bad[1].id, 'x', sizeof bad[1].id); /* no NUL inside the buffer */
    assert_int_equal(orbit_node_state_set_capsules(s, bad, 2), ORBIT_EINVAL);
    bad[1] = capsule("a/b/1", ORBIT_CAPSULE_STATE_COUNT, 0, "", 0);
    assert_int_equal(orbit_node_state_set_capsules(s, bad, 2), ORBIT_EINVAL); /* state */
    bad[1] = capsule("a/b/1", ORBIT_CAPSULE_RUNNING, 0, "", -1);
    assert_int_equal(orbit_node_state_set_capsules(s, bad, 2), ORBIT_EINVAL); /* since_ms */
    orbit_capsule_t *many = calloc(ORBIT_CAPSULES_MAX + 1, sizeof *many);
    assert_non_null(many);
    for (uint32_t i = 0; i <= ORBIT_CAPSULES_MAX; i++)
        snprintf(many[i].id, sizeof many[i].id, "m/x/%u", i);
    assert_int_equal(orbit_node_state_set_capsules(s, many, ORBIT_CAPSULES_MAX + 1), ORBIT_EINVAL);
    assert_int_equal(s->ncapsules, 3);
    assert_string_equal(s->capsules[0].id, "batch/etl/0");
    /* The most allowed is fine, and so is a 63-byte id. */
    assert_int_equal(orbit_node_state_set_capsules(s, many, ORBIT_CAPSULES_MAX), ORBIT_OK);
    assert_int_equal(s->ncapsules, ORBIT_CAPSULES_MAX);
    free(many);
    orbit_capsule_t longest = capsule("", ORBIT_CAPSULE_RUNNING, 0, "", 0);
    memset(longest.id, 'i', ORBIT_CAPSULE_ID_MAX - 1);
    assert_int_equal(orbit_node_state_set_capsules(s, &longest, 1), ORBIT_OK);

    /* A reason is made one printable line at the source and cut to fit. */
    orbit_capsule_t r = capsule("a/b/0", ORBIT_CAPSULE_FAILED, 0, "two\nlines\t\x80", 0);
    memset(r.reason + 11, 'r', sizeof r.reason - 11); /* no NUL at all */
    assert_int_equal(orbit_node_state_set_capsules(s, &r, 1), ORBIT_OK);
    assert_int_equal(strlen(s->capsules[0].reason), ORBIT_CAPSULE_REASON_MAX - 1);
    assert_memory_equal(s->capsules[0].reason, "two?lines??rr", 13);

    /* Zero capsules: no heap at all. */
    assert_int_equal(orbit_node_state_set_capsules(s, NULL, 0), ORBIT_OK);
    assert_null(s->capsules);
    assert_int_equal(s->ncapsules, 0);
    assert_int_equal(orbit_node_state_heap_bytes(s), gpus);
}

static void test_capsules_copy_close_differs(void **state)
{
    node_fx_t *fx = *state;
    set_three_capsules(&fx->cur);
    orbit_node_state_t copy;
    orbit_node_state_init(&copy);
    assert_int_equal(orbit_node_state_copy(&copy, &fx->cur), ORBIT_OK);
    assert_ptr_not_equal(copy.capsules, fx->cur.capsules); /* deep */
    assert_false(orbit_node_state_differs(&copy, &fx->cur));
    /* Every field of a capsule counts. */
    copy.capsules[2].state = ORBIT_CAPSULE_STOPPED;
    assert_true(orbit_node_state_differs(&copy, &fx->cur));
    copy.capsules[2].state = ORBIT_CAPSULE_RUNNING;
    copy.capsules[0].exit_code = 4;
    assert_true(orbit_node_state_differs(&copy, &fx->cur));
    copy.capsules[0].exit_code = 3;
    copy.capsules[1].reason[0] = 'C';
    assert_true(orbit_node_state_differs(&copy, &fx->cur));
    copy.capsules[1].reason[0] = 'c';
    copy.capsules[1].since_ms++;
    assert_true(orbit_node_state_differs(&copy, &fx->cur));
    copy.capsules[1].since_ms--;
    copy.capsules[1].id[0] = 'W';
    assert_true(orbit_node_state_differs(&copy, &fx->cur));
    copy.capsules[1].id[0] = 'w';
    assert_false(orbit_node_state_differs(&copy, &fx->cur));
    assert_int_equal(orbit_node_state_set_capsules(&copy, NULL, 0), ORBIT_OK);
    assert_true(orbit_node_state_differs(&copy, &fx->cur));
    orbit_node_state_close(&copy);
    assert_null(copy.capsules);
    assert_int_equal(copy.ncapsules, 0);
}

static void test_capsules_fill_only_on_change(void **state)
{
    node_fx_t *fx = *state;
    /* Full: always the list and its flag, even when empty. */
    Orbit__NodeDelta *m = fill(fx, NULL);
    assert_true(m->has_capsules_set && m->capsules_set);
    assert_int_equal(m->n_capsules, 0);
    set_three_capsules(&fx->cur);
    m = fill(fx, NULL);
    assert_true(m->has_capsules_set && m->capsules_set);
    assert_int_equal(m->n_capsules, 3);
    assert_string_equal(m->capsules[0]->id, "batch/etl/0");
    assert_int_equal(m->capsules[0]->state, ORBIT__CAPSULE_STATE__CAPSULE_EXITED);
    assert_true(m->capsules[0]->has_exit_code);
    assert_int_equal(m->capsules[0]->exit_code, 3);
    assert_null(m->capsules[0]->reason);         /* "" is not sent */
    assert_false(m->capsules[2]->has_exit_code); /* running: no exit code */
    assert_string_equal(m->capsules[1]->reason, "command not found: nginx");
    assert_int_equal(m->capsules[2]->since_ms, 1000);

    orbit_node_state_t base;
    orbit_node_state_init(&base);
    assert_int_equal(orbit_node_state_copy(&base, &fx->cur), ORBIT_OK);
    /* Unchanged: not sent. */
    fx->cur.sampled_ms += 1000;
    fx->cur.cpu_used_m++;
    m = fill(fx, &base);
    assert_false(m->has_capsules_set);
    assert_int_equal(m->n_capsules, 0);
    /* Any field of any capsule: the whole list. */
    const struct {
        size_t i;
        int what;
    } changes[] = {{0, 0}, {1, 1}, {2, 2}, {2, 3}};
    for (size_t k = 0; k < sizeof changes / sizeof changes[0]; k++) {
        orbit_capsule_t *c = &fx->cur.capsules[changes[k].i];
        orbit_capsule_t saved = *c;
        switch (changes[k].what) {
        case 0: c->exit_code = 137; break;
        case 1: snprintf(c->reason, sizeof c->reason, "permission denied: nginx"); break;
        case 2: c->since_ms = 9999; break;
        default: c->state = ORBIT_CAPSULE_STOPPED; break;
        }
        m = fill(fx, &base);
        assert_true(m->has_capsules_set && m->capsules_set);
        assert_int_equal(m->n_capsules, 3);
        *c = saved;
    }
    /* All gone: the flag with an empty list. */
    assert_int_equal(orbit_node_state_set_capsules(&fx->cur, NULL, 0), ORBIT_OK);
    m = fill(fx, &base);
    assert_true(m->has_capsules_set && m->capsules_set);
    assert_int_equal(m->n_capsules, 0);
    assert_false(m->has_gpus_set || m->has_labels_set);

    /* The malloc'd variant carries the same. */
    set_three_capsules(&fx->cur);
    fx->cur.capsules[1].state = ORBIT_CAPSULE_STOPPED;
    Orbit__NodeDelta d = ORBIT__NODE_DELTA__INIT;
    void *scratch = NULL;
    assert_int_equal(orbit_node_delta_fill(&d, &fx->cur, &base, 7, &scratch), ORBIT_OK);
    assert_true(d.has_capsules_set && d.capsules_set);
    assert_int_equal(d.n_capsules, 3);
    assert_int_equal(d.capsules[1]->state, ORBIT__CAPSULE_STATE__CAPSULE_STOPPED);
    free(scratch);
    orbit_node_state_close(&base);
}

static void test_capsules_roundtrip_replace_clear(void **state)
{
    node_fx_t *fx = *state;
    set_three_capsules(&fx->cur);
    const Orbit__NodeDelta *d = transmit(fx, true, false);
    assert_int_equal(d->n_capsules, 3);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);
    assert_int_equal(fx->rx.ncapsules, 3);
    assert_string_equal(fx->rx.capsules[1].reason, "command not found: nginx");

    /* A delta without capsules keeps them. */
    fx->cur.cpu_used_m += 10;
    d = transmit(fx, false, true);
    assert_false(d->has_capsules_set);
    assert_int_equal(fx->rx.ncapsules, 3);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);

    /* Replaced wholesale: one ended, one new, one changed state. */
    orbit_capsule_t cs[3] = {
        capsule("web/front/1", ORBIT_CAPSULE_OOM_KILLED, 0, "out of memory", 5000),
        capsule("web/front/2", ORBIT_CAPSULE_STARTING, 0, "", 5001),
        capsule("batch/etl/0", ORBIT_CAPSULE_EXITED, 3, "", 2000),
    };
    assert_int_equal(orbit_node_state_set_capsules(&fx->cur, cs, 3), ORBIT_OK);
    d = transmit(fx, false, true);
    assert_true(d->has_capsules_set);
    ASSERT_SAME_STATE(&fx->rx, &fx->cur);
    assert_string_equal(fx->rx.capsules[2].id, "web/front/2");
    assert_int_equal(fx->rx.capsules[1].state, ORBIT_CAPSULE_OOM_KILLED);

    /* A decoded list in any order is stored sorted. */
    Orbit__CapsuleHealth w[2], *wp[2] = {&w[0], &w[1]};
    orbit__capsule_health__init(&w[0]);
    orbit__capsule_health__init(&w[1]);
    w[0].id = "z/z/0";
    w[1].id = "a/a/0";
    Orbit__NodeDelta m = ORBIT__NODE_DELTA__INIT;
    m.node = fx->rx.name;
    m.incarnation = fx->rx.incarnation;
    m.has_capsules_set = m.capsules_set = true;
    m.n_capsules = 2;
    m.capsules = wp;
    assert_int_equal(orbit_node_delta_validate(&m, &fx->rx, NULL), ORBIT_OK);
    assert_int_equal(orbit_node_delta_apply(&fx->rx, &m), ORBIT_OK);
    assert_int_equal(fx->rx.ncapsules, 2);
    assert_string_equal(fx->rx.capsules[0].id, "a/a/0");
    assert_string_equal(fx->rx.capsules[1].id, "z/z/0");
    assert_int_equal(fx->rx.capsules[1].state, ORBIT_CAPSULE_STARTING);
    assert_int_equal(fx->rx.capsules[1].exit_code, 0);
    assert_string_equal(fx->rx.capsules[1].reason, "");

    /* Emptied by a delta with the flag and no entries. */
    assert_int_equal(orbit_node_state_set_capsules(&fx->cur, NULL, 0), ORBIT_OK);
    d = transmit(fx, false, false);
    assert_true(d->has_capsules_set);
    assert_int_equal(fx->rx.ncapsules, 0);
    assert_null(fx->rx.capsules);

    /* A full state without the flag (an older sender) clears them. */
    set_three_capsules(&fx->rx);
    Orbit__NodeDelta *full = fill(fx, NULL);
    full->has_capsules_set = full->capsules_set = false;
    assert_int_equal(orbit_node_delta_apply(&fx->rx, full), ORBIT_OK);
    assert_int_equal(fx->rx.ncapsules, 0);
    assert_null(fx->rx.capsules);
}

static void test_validate_rejects_capsules(void **state)
{
    node_fx_t *fx = *state;
    set_three_capsules(&fx->cur);
    Orbit__NodeDelta *m = fill(fx, NULL);
    EXPECT_VALID(m, NULL);
    Orbit__CapsuleHealth *c = m->capsules[1];

    char *id = c->id;
    const char *bad_ids[] = {"", "web front", "web/front\n", "caf\xc3\xa9", "a=b", NULL};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        c->id = (char *)bad_ids[i];
        EXPECT_INVALID(m, NULL, "invalid capsule id");
    }
    char long_id[ORBIT_CAPSULE_ID_MAX + 1];
    memset(long_id, 'i', ORBIT_CAPSULE_ID_MAX);
    long_id[ORBIT_CAPSULE_ID_MAX] = '\0';
    c->id = long_id;
    EXPECT_INVALID(m, NULL, "invalid capsule id");
    long_id[ORBIT_CAPSULE_ID_MAX - 1] = '\0'; /* 63 bytes: the longest */
    EXPECT_VALID(m, NULL);
    c->id = m->capsules[2]->id;
    EXPECT_INVALID(m, NULL, "duplicate capsule id");
    c->id = id;

    c->state = (Orbit__CapsuleState)ORBIT_CAPSULE_STATE_COUNT;
    EXPECT_INVALID(m, NULL, "unknown capsule state");
    c->state = (Orbit__CapsuleState)-1;
    EXPECT_INVALID(m, NULL, "unknown capsule state");
    c->state = ORBIT__CAPSULE_STATE__CAPSULE_OOM_KILLED;
    EXPECT_VALID(m, NULL);

    char reason[ORBIT_CAPSULE_REASON_MAX + 1];
    memset(reason, 'r', ORBIT_CAPSULE_REASON_MAX);
    reason[ORBIT_CAPSULE_REASON_MAX] = '\0';
    c->reason = reason;
    EXPECT_INVALID(m, NULL, "capsule reason too long");
    reason[ORBIT_CAPSULE_REASON_MAX - 1] = '\0';
    EXPECT_VALID(m, NULL);
    c->reason = "two\nlines";
    EXPECT_INVALID(m, NULL, "capsule reason not one printable line");
    c->reason = "killed \x1b[31m";
    EXPECT_INVALID(m, NULL, "capsule reason not one printable line");
    c->reason = "";
    EXPECT_VALID(m, NULL);

    c->has_since_ms = true;
    c->since_ms = -1;
    EXPECT_INVALID(m, NULL, "capsule since_ms out of range");
    c->since_ms = 0;
    EXPECT_VALID(m, NULL);

    m->capsules_set = false;
    EXPECT_INVALID(m, NULL, "capsule list without capsules_set");
    m->capsules_set = true;

    /* Too many, and a duplicate far apart in a long list (the sorted check). */
    size_t n = ORBIT_CAPSULES_MAX + 1;
    Orbit__CapsuleHealth *ws = calloc(n, sizeof *ws), **wp = calloc(n, sizeof *wp);
    char(*ids)[16] = calloc(n, sizeof *ids);
    assert_true(ws && wp && ids);
    for (size_t i = 0; i < n; i++) {
        orbit__capsule_health__init(&ws[i]);
        snprintf(ids[i], sizeof ids[i], "m/x/%zu", i);
        ws[i].id = ids[i];
        wp[i] = &ws[i];
    }
    m->capsules = wp;
    m->n_capsules = n;
    EXPECT_INVALID(m, NULL, "too many capsules");
    m->n_capsules = ORBIT_CAPSULES_MAX;
    EXPECT_VALID(m, NULL);
    ws[200].id = ids[3];
    EXPECT_INVALID(m, NULL, "duplicate capsule id");
    /* orbit_capsules_validate alone, with and without a reason pointer. */
    assert_int_equal(orbit_capsules_validate(wp, ORBIT_CAPSULES_MAX, NULL), ORBIT_EINVAL);
    assert_int_equal(orbit_capsules_validate(wp, 3, NULL), ORBIT_OK);
    free(ids);
    free(wp);
    free(ws);
}

static void test_capsules_pb_helpers(void **state)
{
    node_fx_t *fx = *state;
    set_three_capsules(&fx->cur);
    Orbit__CapsuleHealth **w = NULL;
    assert_int_equal(orbit_capsules_to_pb(fx->cur.capsules, 0, fx->arena, &w), ORBIT_OK);
    assert_null(w);
    assert_int_equal(orbit_capsules_to_pb(fx->cur.capsules, 3, fx->arena, &w), ORBIT_OK);
    assert_string_equal(w[2]->id, "web/front/1");
    assert_int_equal(w[2]->state, ORBIT__CAPSULE_STATE__CAPSULE_RUNNING);
    /* Back, reversed on the way: sorted again, equal to the source. */
    Orbit__CapsuleHealth *rev[3] = {w[2], w[1], w[0]};
    orbit_capsule_t *back = NULL;
    assert_int_equal(orbit_capsules_from_pb(rev, 3, &back), ORBIT_OK);
    assert_non_null(back);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(back[i].id, fx->cur.capsules[i].id);
        assert_int_equal(back[i].state, fx->cur.capsules[i].state);
        assert_int_equal(back[i].exit_code, fx->cur.capsules[i].exit_code);
        assert_string_equal(back[i].reason, fx->cur.capsules[i].reason);
        assert_int_equal(back[i].since_ms, fx->cur.capsules[i].since_ms);
    }
    free(back);
    /* An exited capsule says its status even when it is 0. */
    Orbit__CapsuleHealth one;
    fx->cur.capsules[0].exit_code = 0;
    orbit_capsule_to_pb(&fx->cur.capsules[0], &one);
    assert_true(one.has_exit_code);
    assert_int_equal(one.exit_code, 0);
    assert_false(one.has_since_ms && one.since_ms == 0);
    back = (orbit_capsule_t *)1; /* overwritten with NULL for an empty list */
    assert_int_equal(orbit_capsules_from_pb(NULL, 0, &back), ORBIT_OK);
    assert_null(back);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, node_setup, node_teardown)
    const struct CMUnitTest tests[] = {
        T(test_label_set_get_order),
        T(test_label_set_invalid),
        T(test_fill_full),
        T(test_fill_delta_only_changed),
        T(test_roundtrip_full_then_deltas),
        T(test_roundtrip_pressure_lost_and_back),
        T(test_roundtrip_random_walk),
        T(test_apply_full_resets_and_keeps_name),
        T(test_apply_derives_missing_gpu_health),
        T(test_validate_good_full),
        T(test_validate_rejects_resources),
        T(test_validate_rejects_gpus),
        T(test_validate_rejects_names_labels_interval),
        T(test_validate_delta_against_base),
        cmocka_unit_test(test_gpu_health_derive),
        T(test_state_copy_and_gpus),
        cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_capsule_state_name),
        T(test_set_capsules_sorted_and_validated),
        T(test_capsules_copy_close_differs),
        T(test_capsules_fill_only_on_change),
        T(test_capsules_roundtrip_replace_clear),
        T(test_validate_rejects_capsules),
        T(test_capsules_pb_helpers),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
