/* test_shard_nodes: a rack shard's node table — ingest verdicts (apply,
 * resync, duplicate, gap, reboot, stale, invalid, overloaded), liveness by
 * each node's own interval, material-change generations and rows, summary,
 * detail, malformed-frame counters, a bounded fuzz of the ingest path, and
 * capsule lists (material changes, rows, detail, rejection). */
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
#include "shard_nodes.h"

#define GiB (1LL << 30)
#define T0  100000 /* a monotonic clock well past zero */

/* ---------------------------------------------------------------- fixture */

typedef struct {
    orbit_node_state_t st;   /* the leaf's current state */
    orbit_node_state_t sent; /* base of the next delta */
    uint64_t seq;
} leaf_t;

typedef struct {
    orbit_shard_nodes_t *n;
    orbit_shard_nodes_cfg_t cfg;
    orbit_arena_t *arena; /* decoding and acks; reset before every ingest */
    orbit_arena_t *build; /* deltas being built */
    Orbit__LeafAck ack;
    uint64_t batch_id;
    leaf_t leaves[16];
    int nleaves;
} nodes_fx_t;

static void make_table(nodes_fx_t *fx, uint32_t ingest_limit)
{
    orbit_shard_nodes_destroy(&fx->n);
    memset(&fx->cfg, 0, sizeof fx->cfg);
    fx->cfg.suspect_missed = 3;
    fx->cfg.down_missed = 10;
    fx->cfg.default_interval_ms = 1000;
    fx->cfg.ingest_limit = ingest_limit;
    fx->cfg.topology_epoch = 7;
    fx->n = orbit_shard_nodes_new("rack-1", &fx->cfg);
    assert_non_null(fx->n);
}

static int nodes_setup(void **state)
{
    nodes_fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    make_table(fx, 0);
    fx->arena = orbit_arena_new(0);
    fx->build = orbit_arena_new(0);
    assert_non_null(fx->arena);
    assert_non_null(fx->build);
    *state = fx;
    return 0;
}

static int nodes_teardown(void **state)
{
    nodes_fx_t *fx = *state;
    orbit_shard_nodes_destroy(&fx->n);
    assert_null(fx->n);
    orbit_shard_nodes_destroy(&fx->n); /* NULL-safe */
    for (int i = 0; i < fx->nleaves; i++) {
        orbit_node_state_close(&fx->leaves[i].st);
        orbit_node_state_close(&fx->leaves[i].sent);
    }
    orbit_arena_destroy(&fx->arena);
    orbit_arena_destroy(&fx->build);
    free(fx);
    return 0;
}

/* A 2-GPU node: CPU free 11800/16000 and memory free 46/64 GiB, both in the
 * middle of free-capacity bucket 11 (of 16). */
static leaf_t *add_leaf(nodes_fx_t *fx, const char *name, uint32_t interval_ms)
{
    assert_true(fx->nleaves < 16);
    leaf_t *l = &fx->leaves[fx->nleaves++];
    orbit_node_state_t *s = &l->st;
    orbit_node_state_init(s);
    orbit_node_state_init(&l->sent);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->incarnation = 1000;
    s->sampled_ms = 1;
    s->interval_ms = interval_ms;
    s->cpu_capacity_m = 16000;
    s->cpu_used_m = 4200;
    s->mem_capacity = 64 * GiB;
    s->mem_used = 18 * GiB;
    s->gpu_capacity = 2;
    s->load1 = 100;
    s->pressure_available = true;
    s->pressure.mem_some = 50;
    assert_int_equal(orbit_node_label_set(s, "rack", "r1"), ORBIT_OK);
    orbit_gpu_t gs[2] = {{.index = 0, .temp_c = 40, .mem_total = 80 * GiB},
                         {.index = 1, .temp_c = 41, .mem_total = 80 * GiB}};
    assert_int_equal(orbit_node_state_set_gpus(s, gs, 2), ORBIT_OK);
    return l;
}

/* The leaf's next message (full, or a delta against what it last sent). */
static Orbit__NodeDelta *leaf_delta(nodes_fx_t *fx, leaf_t *l, bool full)
{
    Orbit__NodeDelta *d = orbit_arena_alloc(fx->build, sizeof *d);
    assert_non_null(d);
    orbit__node_delta__init(d);
    l->st.sampled_ms += 1000;
    assert_int_equal(
        orbit_node_delta_fill_arena(d, &l->st, full ? NULL : &l->sent, ++l->seq, fx->build),
        ORBIT_OK);
    assert_int_equal(orbit_node_state_copy(&l->sent, &l->st), ORBIT_OK);
    return d;
}

/* Encode deltas as one batch and ingest the frame at now. */
static int ingest(nodes_fx_t *fx, Orbit__NodeDelta **ds, size_t n, int64_t now)
{
    Orbit__LeafBatch b = ORBIT__LEAF_BATCH__INIT;
    b.batch_id = ++fx->batch_id;
    b.n_deltas = n;
    b.deltas = ds;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(orbit_wire_encode(ORBIT_MSG_LEAF_BATCH, &b.base, &buf, &len), ORBIT_OK);
    orbit_arena_reset(fx->arena);
    int rc = orbit_shard_nodes_ingest_frame(fx->n, buf, len, now, fx->arena, &fx->ack);
    free(buf);
    orbit_arena_reset(fx->build);
    if (rc == ORBIT_OK) {
        assert_int_equal(fx->ack.batch_id, fx->batch_id);
        assert_string_equal(fx->ack.shard, "rack-1");
        assert_true(fx->ack.has_topology_epoch);
        assert_int_equal(fx->ack.topology_epoch, 7);
        /* The ack always packs (it is sent as is). */
        assert_true(protobuf_c_message_check(&fx->ack.base));
    }
    return rc;
}

/* The verdict for node in the last ack: listed, or the batch's. */
static Orbit__Verdict verdict_of(nodes_fx_t *fx, const char *node, const char **reason)
{
    for (size_t i = 0; i < fx->ack.n_nodes; i++)
        if (!strcmp(fx->ack.nodes[i]->node, node)) {
            if (reason)
                *reason = fx->ack.nodes[i]->reason;
            return fx->ack.nodes[i]->verdict;
        }
    if (reason)
        *reason = NULL;
    return fx->ack.verdict;
}

/* Send one message of leaf l at now; returns its verdict. */
static Orbit__Verdict send1(nodes_fx_t *fx, leaf_t *l, bool full, int64_t now)
{
    Orbit__NodeDelta *d = leaf_delta(fx, l, full);
    assert_int_equal(ingest(fx, &d, 1, now), ORBIT_OK);
    return verdict_of(fx, l->st.name, NULL);
}

/* The shard's copy of l, checked to equal what the leaf last sent. */
static const orbit_node_state_t *shard_copy(nodes_fx_t *fx, const char *name,
                                            orbit_status_t *status)
{
    return orbit_shard_nodes_get(fx->n, name, status, NULL);
}

#define ASSERT_SHARD_HAS(fx, l)                                                                    \
    do {                                                                                           \
        const orbit_node_state_t *c_ = shard_copy((fx), (l)->st.name, NULL);                       \
        assert_non_null(c_);                                                                       \
        assert_false(orbit_node_state_differs(c_, &(l)->sent));                                    \
    } while (0)

/* ------------------------------------------------------------------ ingest */

static void test_new_rejects_bad_id(void **state)
{
    nodes_fx_t *fx = *state;
    assert_null(orbit_shard_nodes_new("", &fx->cfg));
    assert_null(orbit_shard_nodes_new("rack 1", &fx->cfg));
    /* Zeroed liveness settings get sane defaults (down after suspect). */
    orbit_shard_nodes_cfg_t zero;
    memset(&zero, 0, sizeof zero);
    orbit_shard_nodes_t *n = orbit_shard_nodes_new("r", &zero);
    assert_non_null(n);
    assert_int_equal(orbit_shard_nodes_count(n), 0);
    orbit_shard_nodes_destroy(&n);
}

static void test_full_then_delta(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *a = add_leaf(fx, "node-a", 1000);
    assert_int_equal(send1(fx, a, true, T0), ORBIT__VERDICT__OK);
    assert_int_equal(fx->ack.verdict, ORBIT__VERDICT__OK);
    assert_int_equal(fx->ack.n_nodes, 0); /* OK verdicts are not listed */
    assert_int_equal(orbit_shard_nodes_count(fx->n), 1);
    ASSERT_SHARD_HAS(fx, a);

    a->st.cpu_used_m = 9000;
    a->st.load1 = 333;
    assert_int_equal(send1(fx, a, false, T0 + 1000), ORBIT__VERDICT__OK);
    ASSERT_SHARD_HAS(fx, a);
    int64_t heard = 0;
    orbit_status_t st = ORBIT_DOWN;
    const orbit_node_state_t *c = orbit_shard_nodes_get(fx->n, "node-a", &st, &heard);
    assert_int_equal(c->cpu_used_m, 9000);
    assert_int_equal(st, ORBIT_ALIVE);
    assert_int_equal(heard, T0 + 1000);

    const orbit_shard_nodes_stats_t *s = orbit_shard_nodes_stats(fx->n);
    assert_int_equal(s->frames, 2);
    assert_int_equal(s->deltas, 2);
    assert_int_equal(s->applied, 2);
    assert_int_equal(s->full_states, 1);
    assert_null(orbit_shard_nodes_get(fx->n, "node-b", NULL, NULL));
}

static void test_delta_for_unknown_node_resync(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *a = add_leaf(fx, "node-a", 1000);
    leaf_t *b = add_leaf(fx, "node-b", 1000);
    /* b's shard restarted: b's first message here is a delta. */
    Orbit__NodeDelta *ds[2] = {leaf_delta(fx, a, true), NULL};
    b->seq = 41;
    assert_int_equal(orbit_node_state_copy(&b->sent, &b->st), ORBIT_OK);
    b->st.cpu_used_m = 100;
    ds[1] = leaf_delta(fx, b, false);
    assert_int_equal(ingest(fx, ds, 2, T0), ORBIT_OK);
    assert_int_equal(fx->ack.verdict, ORBIT__VERDICT__OK);
    assert_int_equal(fx->ack.n_nodes, 1);
    assert_string_equal(fx->ack.nodes[0]->node, "node-b");
    assert_int_equal(fx->ack.nodes[0]->seq, 42);
    assert_int_equal(fx->ack.nodes[0]->verdict, ORBIT__VERDICT__RESYNC);
    assert_int_equal(verdict_of(fx, "node-a", NULL), ORBIT__VERDICT__OK);
    assert_int_equal(orbit_shard_nodes_count(fx->n), 1);
    assert_null(orbit_shard_nodes_get(fx->n, "node-b", NULL, NULL));
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->unknown_nodes, 1);
    /* The full state it sends in answer is applied. */
    assert_int_equal(send1(fx, b, true, T0 + 10), ORBIT__VERDICT__OK);
    ASSERT_SHARD_HAS(fx, b);
}

static void test_duplicate_seq(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *a = add_leaf(fx, "node-a", 1000);
    assert_int_equal(send1(fx, a, true, T0), ORBIT__VERDICT__OK);
    a->st.cpu_used_m = 5000;
    Orbit__NodeDelta *d = leaf_delta(fx, a, false);
    /* Encode it once, deliver it twice (a retry after a lost ack). */
    Orbit__LeafBatch b = ORBIT__LEAF_BATCH__INIT;
    b.batch_id = 900;
    b.n_deltas = 1;
    b.deltas = &d;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(orbit_wire_encode(ORBIT_MSG_LEAF_BATCH, &b.base, &buf, &len), ORBIT_OK);
    assert_int_equal(orbit_shard_nodes_ingest_frame(fx->n, buf, len, T0 + 1, fx->arena, &fx->ack),
                     ORBIT_OK);
    assert_int_equal(verdict_of(fx, "node-a", NULL), ORBIT__VERDICT__OK);
    assert_int_equal(orbit_shard_nodes_ingest_frame(fx->n, buf, len, T0 + 2, fx->arena, &fx->ack),
                     ORBIT_OK);
    assert_int_equal(fx->ack.batch_id, 900);
    assert_int_equal(verdict_of(fx, "node-a", NULL), ORBIT__VERDICT__DUPLICATE);
    free(buf);
    orbit_arena_reset(fx->build);
    ASSERT_SHARD_HAS(fx, a);
    int64_t heard = 0;
    orbit_shard_nodes_get(fx->n, "node-a", NULL, &heard);
    assert_int_equal(heard, T0 + 1); /* a replay is not a sign of life */

    /* An older sequence number (a full state included) is a duplicate too,
     * and changes nothing. */
    a->seq = 1;
    a->st.cpu_used_m = 1;
    assert_int_equal(send1(fx, a, true, T0 + 3), ORBIT__VERDICT__DUPLICATE);
    assert_int_equal(shard_copy(fx, "node-a", NULL)->cpu_used_m, 5000);
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->duplicates, 2);
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->applied, 2);
}

static void test_gap_resync_not_applied(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *a = add_leaf(fx, "node-a", 1000);
    assert_int_equal(send1(fx, a, true, T0), ORBIT__VERDICT__OK);
    a->st.cpu_used_m = 5000;
    leaf_delta(fx, a, false); /* lost on the way */
    a->st.mem_used = 20 * GiB;
    assert_int_equal(send1(fx, a, false, T0 + 2000), ORBIT__VERDICT__RESYNC);
    const orbit_node_state_t *c = shard_copy(fx, "node-a", NULL);
    assert_int_equal(c->cpu_used_m, 4200);
    assert_int_equal(c->mem_used, 18 * GiB);
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->gaps, 1);
    /* The full state that follows (a later seq) heals it. */
    assert_int_equal(send1(fx, a, true, T0 + 2100), ORBIT__VERDICT__OK);
    ASSERT_SHARD_HAS(fx, a);
    /* And deltas continue from there. */
    a->st.load1 = 7;
    assert_int_equal(send1(fx, a, false, T0 + 3000), ORBIT__VERDICT__OK);
    ASSERT_SHARD_HAS(fx, a);
}

static void test_reboot_and_stale_incarnation(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *a = add_leaf(fx, "node-a", 1000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(send1(fx, a, i == 0, T0 + i), ORBIT__VERDICT__OK);
    assert_int_equal(shard_copy(fx, "node-a", NULL)->incarnation, 1000);

    /* Rebooted: new incarnation, sequence numbers start again. A delta is
     * not enough (the shard holds the old life's state) ... */
    a->st.incarnation = 2000;
    a->seq = 0;
    a->st.cpu_used_m = 100;
    assert_int_equal(send1(fx, a, false, T0 + 10), ORBIT__VERDICT__RESYNC);
    assert_int_equal(shard_copy(fx, "node-a", NULL)->incarnation, 1000);
    /* ... a full state is accepted although its seq is lower. */
    assert_int_equal(send1(fx, a, true, T0 + 20), ORBIT__VERDICT__OK);
    ASSERT_SHARD_HAS(fx, a);
    assert_int_equal(shard_copy(fx, "node-a", NULL)->incarnation, 2000);
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->reboots, 1);
    a->st.cpu_used_m = 200;
    assert_int_equal(send1(fx, a, false, T0 + 30), ORBIT__VERDICT__OK);

    /* A message from the previous life (delayed in a queue) is refused,
     * full or not, with a reason. */
    a->st.incarnation = 1000;
    a->seq = 100;
    const char *reason = NULL;
    Orbit__NodeDelta *d = leaf_delta(fx, a, true);
    assert_int_equal(ingest(fx, &d, 1, T0 + 40), ORBIT_OK);
    assert_int_equal(verdict_of(fx, "node-a", &reason), ORBIT__VERDICT__REJECTED);
    assert_non_null(reason);
    assert_string_equal(reason, "stale incarnation");
    assert_int_equal(send1(fx, a, false, T0 + 41), ORBIT__VERDICT__REJECTED);
    const orbit_node_state_t *c = shard_copy(fx, "node-a", NULL);
    assert_int_equal(c->incarnation, 2000);
    assert_int_equal(c->cpu_used_m, 200);
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->stale_incarnations, 2);
}

static void test_invalid_delta_rejected_others_applied(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *a = add_leaf(fx, "node-a", 1000);
    leaf_t *b = add_leaf(fx, "node-b", 1000);
    leaf_t *c = add_leaf(fx, "node-c", 1000);
    Orbit__NodeDelta *ds[3] = {leaf_delta(fx, a, true), leaf_delta(fx, b, true), NULL};
    assert_int_equal(ingest(fx, ds, 2, T0), ORBIT_OK);

    /* b claims more memory than it has (against the capacity the shard
     * holds), in the middle of a batch. */
    a->st.cpu_used_m = 6000;
    b->st.mem_used = 65 * GiB;
    ds[0] = leaf_delta(fx, a, false);
    ds[1] = leaf_delta(fx, b, false);
    ds[2] = leaf_delta(fx, c, true);
    assert_int_equal(ingest(fx, ds, 3, T0 + 1000), ORBIT_OK);
    assert_int_equal(fx->ack.verdict, ORBIT__VERDICT__OK);
    assert_int_equal(fx->ack.n_nodes, 1);
    const char *reason = NULL;
    assert_int_equal(verdict_of(fx, "node-b", &reason), ORBIT__VERDICT__REJECTED);
    assert_string_equal(reason, "memory usage exceeds capacity");
    assert_int_equal(verdict_of(fx, "node-a", NULL), ORBIT__VERDICT__OK);
    assert_int_equal(verdict_of(fx, "node-c", NULL), ORBIT__VERDICT__OK);
    assert_int_equal(shard_copy(fx, "node-a", NULL)->cpu_used_m, 6000);
    assert_int_equal(shard_copy(fx, "node-b", NULL)->mem_used, 18 * GiB);
    assert_non_null(shard_copy(fx, "node-c", NULL));
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->invalid, 1);

    /* A bad name in a batch is rejected by name, too. */
    Orbit__NodeDelta bad = ORBIT__NODE_DELTA__INIT;
    bad.node = "bad name";
    bad.incarnation = 1;
    bad.seq = 1;
    bad.has_full = bad.full = true;
    Orbit__NodeDelta *one = &bad;
    assert_int_equal(ingest(fx, &one, 1, T0 + 1001), ORBIT_OK);
    assert_int_equal(verdict_of(fx, "bad name", &reason), ORBIT__VERDICT__REJECTED);
    assert_string_equal(reason, "invalid node name");
    assert_int_equal(orbit_shard_nodes_count(fx->n), 3);
}

static void test_overloaded_budget(void **state)
{
    nodes_fx_t *fx = *state;
    make_table(fx, 8);
    leaf_t *l[12];
    char name[16];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "n%d", i);
        l[i] = add_leaf(fx, name, 1000);
    }
    Orbit__NodeDelta *ds[12];
    for (int i = 0; i < 8; i++)
        ds[i] = leaf_delta(fx, l[i], true);
    assert_int_equal(ingest(fx, ds, 8, T0), ORBIT_OK);
    assert_int_equal(fx->ack.verdict, ORBIT__VERDICT__OK);
    assert_int_equal(orbit_shard_nodes_count(fx->n), 8);

    /* The window's 8 are used up within the same second: the whole batch is
     * refused, nothing of it applied. */
    for (int i = 0; i < 5; i++) {
        l[i]->st.cpu_used_m = 1000 + i;
        ds[i] = leaf_delta(fx, l[i], false);
    }
    assert_int_equal(ingest(fx, ds, 5, T0 + 500), ORBIT_OK);
    assert_int_equal(fx->ack.verdict, ORBIT__VERDICT__OVERLOADED);
    assert_true(fx->ack.has_in_flight && fx->ack.has_limit);
    assert_int_equal(fx->ack.in_flight, 8);
    assert_int_equal(fx->ack.limit, 8);
    assert_int_equal(fx->ack.n_nodes, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(shard_copy(fx, l[i]->st.name, NULL)->cpu_used_m, 4200);
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->shed, 5);
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->applied, 8);

    /* Shedding drops the data, not the heartbeat: 3.5 intervals after the
     * first message, the shed nodes are still alive, the others suspect. */
    orbit_shard_nodes_tick(fx->n, T0 + 3500);
    orbit_status_t st;
    shard_copy(fx, "n0", &st);
    assert_int_equal(st, ORBIT_ALIVE);
    shard_copy(fx, "n6", &st);
    assert_int_equal(st, ORBIT_SUSPECT);

    /* The next second, the refused deltas (same seqs, resent) are applied:
     * they were not half-applied before. */
    for (int i = 0; i < 5; i++) {
        l[i]->seq--;
        l[i]->st.sampled_ms -= 1000;
        ds[i] = orbit_arena_alloc(fx->build, sizeof *ds[i]);
        orbit__node_delta__init(ds[i]);
        orbit_node_state_t base;
        orbit_node_state_init(&base);
        assert_int_equal(orbit_node_state_copy(&base, &l[i]->st), ORBIT_OK);
        base.cpu_used_m = 4200;
        assert_int_equal(
            orbit_node_delta_fill_arena(ds[i], &l[i]->st, &base, ++l[i]->seq, fx->build), ORBIT_OK);
        orbit_node_state_close(&base);
    }
    assert_int_equal(ingest(fx, ds, 5, T0 + 4000), ORBIT_OK);
    assert_int_equal(fx->ack.verdict, ORBIT__VERDICT__OK);
    assert_int_equal(fx->ack.n_nodes, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(shard_copy(fx, l[i]->st.name, NULL)->cpu_used_m, 1000 + i);

    /* A batch larger than the whole limit is admitted in a fresh window
     * (overshooting once) rather than refused forever. */
    for (int i = 0; i < 12; i++)
        ds[i] = leaf_delta(fx, l[i], true);
    assert_int_equal(ingest(fx, ds, 12, T0 + 6000), ORBIT_OK);
    assert_int_equal(fx->ack.verdict, ORBIT__VERDICT__OK);
    assert_int_equal(orbit_shard_nodes_count(fx->n), 12);
}

/* -------------------------------------------------------------- liveness */

static void test_liveness_by_node_interval(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *fast = add_leaf(fx, "fast", 100); /* suspect after 300 ms, down after 1 s */
    leaf_t *slow = add_leaf(fx, "slow", 0);   /* says nothing: the shard's 1 s default */
    assert_int_equal(send1(fx, fast, true, T0), ORBIT__VERDICT__OK);
    Orbit__NodeDelta *d = leaf_delta(fx, slow, true);
    d->has_interval_ms = false; /* an interval of 0 on the wire is refused */
    assert_int_equal(ingest(fx, &d, 1, T0), ORBIT_OK);
    assert_int_equal(verdict_of(fx, "slow", NULL), ORBIT__VERDICT__OK);

    orbit_status_t st;
    assert_int_equal(orbit_shard_nodes_tick(fx->n, T0 + 300), 0);
    assert_int_equal(orbit_shard_nodes_tick(fx->n, T0 + 301), 1);
    shard_copy(fx, "fast", &st);
    assert_int_equal(st, ORBIT_SUSPECT);
    shard_copy(fx, "slow", &st);
    assert_int_equal(st, ORBIT_ALIVE);
    assert_int_equal(orbit_shard_nodes_tick(fx->n, T0 + 1000), 0);
    assert_int_equal(orbit_shard_nodes_tick(fx->n, T0 + 1001), 1);
    shard_copy(fx, "fast", &st);
    assert_int_equal(st, ORBIT_DOWN);

    assert_int_equal(orbit_shard_nodes_tick(fx->n, T0 + 3000), 0);
    assert_int_equal(orbit_shard_nodes_tick(fx->n, T0 + 3001), 1);
    shard_copy(fx, "slow", &st);
    assert_int_equal(st, ORBIT_SUSPECT);

    /* Any applied message brings a node back, even straight from down. */
    uint64_t gen = orbit_shard_nodes_gen(fx->n);
    assert_int_equal(send1(fx, fast, false, T0 + 5000), ORBIT__VERDICT__OK);
    shard_copy(fx, "fast", &st);
    assert_int_equal(st, ORBIT_ALIVE);
    assert_true(orbit_shard_nodes_gen(fx->n) > gen);
    assert_int_equal(orbit_shard_nodes_tick(fx->n, T0 + 5000), 0);

    assert_int_equal(orbit_shard_nodes_tick(fx->n, T0 + 10001), 2); /* slow down, fast down */
    shard_copy(fx, "slow", &st);
    assert_int_equal(st, ORBIT_DOWN);
    /* A duplicate is not a sign of life. */
    slow->seq--;
    Orbit__NodeDelta *dup = leaf_delta(fx, slow, false);
    assert_int_equal(ingest(fx, &dup, 1, T0 + 10002), ORBIT_OK);
    assert_int_equal(verdict_of(fx, "slow", NULL), ORBIT__VERDICT__DUPLICATE);
    shard_copy(fx, "slow", &st);
    assert_int_equal(st, ORBIT_DOWN);
}

static void test_liveness_configurable(void **state)
{
    nodes_fx_t *fx = *state;
    orbit_shard_nodes_destroy(&fx->n);
    fx->cfg.suspect_missed = 2;
    fx->cfg.down_missed = 4;
    fx->n = orbit_shard_nodes_new("rack-1", &fx->cfg);
    leaf_t *a = add_leaf(fx, "a", 500);
    assert_int_equal(send1(fx, a, true, T0), ORBIT__VERDICT__OK);
    orbit_status_t st;
    orbit_shard_nodes_tick(fx->n, T0 + 1001);
    shard_copy(fx, "a", &st);
    assert_int_equal(st, ORBIT_SUSPECT);
    orbit_shard_nodes_tick(fx->n, T0 + 2001);
    shard_copy(fx, "a", &st);
    assert_int_equal(st, ORBIT_DOWN);
}

/* ------------------------------------------------------ material changes */

/* Names of the rows changed since gen, sorted into one string. */
static void changed_since(nodes_fx_t *fx, uint64_t gen, char *out, size_t n)
{
    Orbit__NodeRow **rows = NULL;
    size_t nrows = 0;
    orbit_arena_reset(fx->arena);
    assert_int_equal(orbit_shard_nodes_rows(fx->n, gen, fx->arena, &rows, &nrows), ORBIT_OK);
    const char *names[16];
    assert_true(nrows <= 16);
    for (size_t i = 0; i < nrows; i++)
        names[i] = rows[i]->node;
    for (size_t i = 1; i < nrows; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    out[0] = '\0';
    for (size_t i = 0; i < nrows; i++) {
        strncat(out, names[i], n - strlen(out) - 1);
        if (i + 1 < nrows)
            strncat(out, ",", n - strlen(out) - 1);
    }
}

#define EXPECT_BUMP(fx, l, now, bump)                                                              \
    do {                                                                                           \
        uint64_t g_ = orbit_shard_nodes_gen((fx)->n);                                              \
        assert_int_equal(send1((fx), (l), false, (now)), ORBIT__VERDICT__OK);                      \
        if (bump)                                                                                  \
            assert_true(orbit_shard_nodes_gen((fx)->n) > g_);                                      \
        else                                                                                       \
            assert_int_equal(orbit_shard_nodes_gen((fx)->n), g_);                                  \
    } while (0)

static void test_gen_material_changes(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *a = add_leaf(fx, "node-a", 1000);
    assert_int_equal(orbit_shard_nodes_gen(fx->n), 0);
    assert_int_equal(send1(fx, a, true, T0), ORBIT__VERDICT__OK);
    assert_int_equal(orbit_shard_nodes_gen(fx->n), 1);
    int64_t t = T0;

    /* Within the same sixteenth of free capacity: not material. */
    a->st.cpu_used_m = 4900; /* free 11100/16000: still bucket 11 */
    EXPECT_BUMP(fx, a, t += 100, false);
    a->st.mem_used = 19 * GiB; /* free 45/64 GiB: still bucket 11 */
    EXPECT_BUMP(fx, a, t += 100, false);
    /* Neither load, GPU temperature, pressure within its bucket, nor time. */
    a->st.load1 = 900;
    a->st.load15 = 12;
    EXPECT_BUMP(fx, a, t += 100, false);
    a->st.gpus[0].temp_c = 60;
    EXPECT_BUMP(fx, a, t += 100, false);
    a->st.pressure.mem_some = 90;
    EXPECT_BUMP(fx, a, t += 100, false);
    EXPECT_BUMP(fx, a, t += 100, false);

    /* Crossing a bucket is. */
    a->st.cpu_used_m = 5100; /* free 10900: bucket 10 */
    EXPECT_BUMP(fx, a, t += 100, true);
    a->st.mem_used = 21 * GiB; /* free 43 GiB: bucket 10 */
    EXPECT_BUMP(fx, a, t += 100, true);
    /* So are GPU health, labels, pressure bucket, capacity, GPU count. */
    a->st.gpus[1].health = ORBIT_GPU_FAILED;
    EXPECT_BUMP(fx, a, t += 100, true);
    assert_int_equal(orbit_node_label_set(&a->st, "pool", "p2"), ORBIT_OK);
    EXPECT_BUMP(fx, a, t += 100, true);
    a->st.pressure.mem_some = 600;
    EXPECT_BUMP(fx, a, t += 100, true);
    a->st.pressure_available = false;
    memset(&a->st.pressure, 0, sizeof a->st.pressure);
    EXPECT_BUMP(fx, a, t += 100, true);
    a->st.mem_capacity = 128 * GiB;
    EXPECT_BUMP(fx, a, t += 100, true);
    a->st.gpu_capacity = 4;
    EXPECT_BUMP(fx, a, t += 100, true);
    assert_int_equal(orbit_node_state_set_gpus(&a->st, a->st.gpus, 1), ORBIT_OK);
    EXPECT_BUMP(fx, a, t += 100, true);

    /* Status: by tick, and back. */
    uint64_t g = orbit_shard_nodes_gen(fx->n);
    assert_int_equal(orbit_shard_nodes_tick(fx->n, t + 3001), 1);
    assert_true(orbit_shard_nodes_gen(fx->n) > g);
    g = orbit_shard_nodes_gen(fx->n);
    assert_int_equal(orbit_shard_nodes_tick(fx->n, t + 3002), 0);
    assert_int_equal(orbit_shard_nodes_gen(fx->n), g);
    EXPECT_BUMP(fx, a, t + 3003, true);

    /* Refused messages change nothing. */
    g = orbit_shard_nodes_gen(fx->n);
    a->st.cpu_used_m = 0;
    leaf_delta(fx, a, false); /* lost: the next is a gap */
    a->st.cpu_used_m = 15000;
    assert_int_equal(send1(fx, a, false, t + 4000), ORBIT__VERDICT__RESYNC);
    assert_int_equal(orbit_shard_nodes_gen(fx->n), g);
}

static void test_rows_since_gen(void **state)
{
    nodes_fx_t *fx = *state;
    char name[16], got[128];
    leaf_t *l[5];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "n%d", i);
        l[i] = add_leaf(fx, name, 1000);
        assert_int_equal(send1(fx, l[i], true, T0), ORBIT__VERDICT__OK);
    }
    changed_since(fx, 0, got, sizeof got);
    assert_string_equal(got, "n0,n1,n2,n3,n4");
    uint64_t g = orbit_shard_nodes_gen(fx->n);
    changed_since(fx, g, got, sizeof got);
    assert_string_equal(got, "");

    l[1]->st.cpu_used_m = 15000;
    assert_int_equal(send1(fx, l[1], false, T0 + 100), ORBIT__VERDICT__OK);
    l[3]->st.gpus[0].health = ORBIT_GPU_DEGRADED;
    assert_int_equal(send1(fx, l[3], false, T0 + 100), ORBIT__VERDICT__OK);
    l[4]->st.load1 = 1; /* immaterial */
    assert_int_equal(send1(fx, l[4], false, T0 + 100), ORBIT__VERDICT__OK);
    changed_since(fx, g, got, sizeof got);
    assert_string_equal(got, "n1,n3");
    uint64_t g2 = orbit_shard_nodes_gen(fx->n);
    l[3]->st.mem_used = 60 * GiB;
    assert_int_equal(send1(fx, l[3], false, T0 + 200), ORBIT__VERDICT__OK);
    changed_since(fx, g2, got, sizeof got);
    assert_string_equal(got, "n3");
    changed_since(fx, g, got, sizeof got);
    assert_string_equal(got, "n1,n3");

    /* A row carries what the parent filters and ranks on. */
    Orbit__NodeRow **rows = NULL;
    size_t nrows = 0;
    orbit_arena_reset(fx->arena);
    assert_int_equal(orbit_shard_nodes_rows(fx->n, g2, fx->arena, &rows, &nrows), ORBIT_OK);
    assert_int_equal(nrows, 1);
    Orbit__NodeRow *r = rows[0];
    assert_string_equal(r->node, "n3");
    assert_string_equal(r->shard, "rack-1");
    assert_int_equal(r->status, ORBIT__NODE_STATUS__ALIVE);
    assert_int_equal(r->cpu_capacity_m, 16000);
    assert_int_equal(r->cpu_free_m, 16000 - 4200);
    assert_int_equal(r->mem_capacity, 64 * GiB);
    assert_int_equal(r->mem_free, 4 * GiB);
    assert_int_equal(r->gpu_capacity, 2);
    assert_int_equal(r->gpu_healthy, 1);
    assert_int_equal(r->mem_pressure, 50);
    assert_int_equal(r->sampled_ms, l[3]->st.sampled_ms);
    assert_int_equal(r->n_labels, 1);
    assert_string_equal(r->labels[0]->key, "rack");
    assert_string_equal(r->labels[0]->value, "r1");
    assert_true(protobuf_c_message_check(&r->base));

    /* Empty table: no rows, no allocation needed. */
    make_table(fx, 0);
    assert_int_equal(orbit_shard_nodes_rows(fx->n, 0, fx->arena, &rows, &nrows), ORBIT_OK);
    assert_int_equal(nrows, 0);
    assert_null(rows);
}

static void test_summary_counts(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *a = add_leaf(fx, "a", 1000);
    leaf_t *b = add_leaf(fx, "b", 1000);
    leaf_t *c = add_leaf(fx, "c", 100);
    leaf_t *d = add_leaf(fx, "d", 300);
    b->st.pressure_available = false;
    memset(&b->st.pressure, 0, sizeof b->st.pressure);
    d->st.gpus[0].health = ORBIT_GPU_FAILED;
    d->st.pressure.mem_some = 7000;
    assert_int_equal(send1(fx, a, true, T0), ORBIT__VERDICT__OK);
    assert_int_equal(send1(fx, b, true, T0), ORBIT__VERDICT__OK);
    assert_int_equal(send1(fx, c, true, T0 - 2000), ORBIT__VERDICT__OK); /* long silent */
    assert_int_equal(send1(fx, d, true, T0 - 1000), ORBIT__VERDICT__OK); /* a while */
    orbit_shard_nodes_tick(fx->n, T0 + 500);
    orbit_status_t st;
    shard_copy(fx, "c", &st);
    assert_int_equal(st, ORBIT_DOWN);
    shard_copy(fx, "d", &st);
    assert_int_equal(st, ORBIT_SUSPECT);

    orbit_agg_t got, want;
    orbit_shard_nodes_summary(fx->n, &got);
    memset(&want, 0, sizeof want);
    orbit_agg_add_node(&want, ORBIT_ALIVE, &a->st);
    orbit_agg_add_node(&want, ORBIT_ALIVE, &b->st);
    orbit_agg_add_node(&want, ORBIT_DOWN, &c->st);
    orbit_agg_add_node(&want, ORBIT_SUSPECT, &d->st);
    assert_true(orbit_agg_equal(&got, &want));
    assert_int_equal(got.nodes[ORBIT_ALIVE], 2);
    assert_int_equal(got.nodes[ORBIT_SUSPECT], 1);
    assert_int_equal(got.nodes[ORBIT_DOWN], 1);
    assert_int_equal(got.cpu_capacity_m, 3 * 16000); /* the down node adds nothing */
    assert_int_equal(got.gpus[ORBIT_GPU_FAILED], 1);
    assert_int_equal(got.gpus[ORBIT_GPU_HEALTHY], 5);
    assert_int_equal(got.pressure_unavailable, 1);
    assert_int_equal(got.pressure_hist[1], 1); /* a: 0.5 % */
    assert_int_equal(got.pressure_hist[6], 1); /* d: 70 % */
    assert_true(orbit_shard_nodes_heap_bytes(fx->n) >= 4 * 2 * sizeof(orbit_gpu_t));
}

static void test_detail(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *a = add_leaf(fx, "node-a", 1000);
    assert_int_equal(send1(fx, a, true, T0), ORBIT__VERDICT__OK);
    a->st.gpus[1].util_pct = 93;
    assert_int_equal(send1(fx, a, false, T0 + 1000), ORBIT__VERDICT__OK);
    orbit_shard_nodes_tick(fx->n, T0 + 4500);

    Orbit__NodeDetail *d = NULL;
    orbit_arena_reset(fx->arena);
    assert_int_equal(orbit_shard_nodes_detail(fx->n, "nope", T0, fx->arena, &d), ORBIT_ENOTFOUND);
    assert_null(d);
    assert_int_equal(orbit_shard_nodes_detail(fx->n, "node-a", T0 + 4500, fx->arena, &d), ORBIT_OK);
    assert_non_null(d);
    assert_string_equal(d->shard, "rack-1");
    assert_int_equal(d->status, ORBIT__NODE_STATUS__SUSPECT);
    assert_int_equal(d->last_heard_ms_ago, 3500);
    assert_true(d->state->full);
    assert_int_equal(d->state->seq, 2);
    /* The detail carries the whole state: packed, unpacked and applied it
     * rebuilds what the leaf sent. */
    Orbit__DetailReply rep = ORBIT__DETAIL_REPLY__INIT;
    rep.request_id = 1;
    rep.detail = d;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(orbit_wire_encode(ORBIT_MSG_DETAIL_REPLY, &rep.base, &buf, &len), ORBIT_OK);
    ProtobufCMessage *m = NULL;
    assert_int_equal(orbit_wire_decode(buf, len, ORBIT_MSG_DETAIL_REPLY, NULL, NULL, &m), ORBIT_OK);
    free(buf);
    orbit_node_state_t rebuilt;
    orbit_node_state_init(&rebuilt);
    const Orbit__NodeDelta *st = ((Orbit__DetailReply *)m)->detail->state;
    assert_int_equal(orbit_node_delta_validate(st, NULL, NULL), ORBIT_OK);
    assert_int_equal(orbit_node_delta_apply(&rebuilt, st), ORBIT_OK);
    assert_false(orbit_node_state_differs(&rebuilt, &a->st));
    assert_int_equal(rebuilt.gpus[1].util_pct, 93);
    orbit_node_state_close(&rebuilt);
    protobuf_c_message_free_unpacked(m, NULL);
}

/* --------------------------------------------------------- malformed input */

static void test_ingest_frame_counters(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *a = add_leaf(fx, "node-a", 1000);
    Orbit__NodeDelta *d = leaf_delta(fx, a, true);
    Orbit__LeafBatch b = ORBIT__LEAF_BATCH__INIT;
    b.batch_id = 1;
    b.n_deltas = 1;
    b.deltas = &d;
    uint8_t *good = NULL;
    size_t len = 0;
    assert_int_equal(orbit_wire_encode(ORBIT_MSG_LEAF_BATCH, &b.base, &good, &len), ORBIT_OK);
    uint8_t *f = malloc(len);
    assert_non_null(f);
    const orbit_shard_nodes_stats_t *s = orbit_shard_nodes_stats(fx->n);
#define FEED(buf_, len_, rc_)                                                                      \
    assert_int_equal(                                                                              \
        orbit_shard_nodes_ingest_frame(fx->n, (buf_), (len_), T0, fx->arena, &fx->ack), (rc_))

    FEED(NULL, 0, ORBIT_ETRUNC);
    FEED(good, 3, ORBIT_ETRUNC);
    memcpy(f, good, len);
    f[0] ^= 0xFF;
    FEED(f, len, ORBIT_EMAGIC);
    assert_int_equal(s->bad_envelope, 3);

    memcpy(f, good, len);
    f[1] = 2;
    FEED(f, len, ORBIT_EVERSION);
    assert_int_equal(s->bad_version, 1);

    memcpy(f, good, len);
    f[3] = 99;
    FEED(f, len, ORBIT_ETYPE);
    f[3] = ORBIT_MSG_SHARD_REPORT; /* a known type, but not for this socket */
    FEED(f, len, ORBIT_ETYPE);
    f[3] = 0;
    FEED(f, len, ORBIT_ETYPE);
    assert_int_equal(s->bad_type, 3);

    memcpy(f, good, len);
    FEED(f, len - 1, ORBIT_EDECODE);
    memset(f + ORBIT_WIRE_HDR, 0xFF, len - ORBIT_WIRE_HDR);
    FEED(f, len, ORBIT_EDECODE);
    FEED(f, ORBIT_WIRE_HDR, ORBIT_EDECODE); /* no body: batch_id missing */
    assert_int_equal(s->bad_decode, 3);

    /* None of it touched the table; the good frame then goes through. */
    assert_int_equal(s->deltas, 0);
    assert_int_equal(orbit_shard_nodes_count(fx->n), 0);
    FEED(good, len, ORBIT_OK);
    assert_int_equal(orbit_shard_nodes_count(fx->n), 1);
    assert_int_equal(s->frames, 11);
    assert_int_equal(s->bad_envelope + s->bad_version + s->bad_type + s->bad_decode, 10);
#undef FEED
    free(f);
    free(good);
}

/* Every delta that arrived is accounted for by exactly one counter. */
static void assert_deltas_accounted(const orbit_shard_nodes_stats_t *s)
{
    uint64_t sum = s->applied + s->duplicates + s->gaps + s->unknown_nodes + s->stale_incarnations +
                   s->invalid + s->shed + s->nomem;
    if (sum != s->deltas)
        fail_msg("deltas %llu but outcomes %llu", (unsigned long long)s->deltas,
                 (unsigned long long)sum);
}

static uint64_t fuzz_rng;
static uint32_t frnd(uint32_t n)
{
    fuzz_rng ^= fuzz_rng << 13;
    fuzz_rng ^= fuzz_rng >> 7;
    fuzz_rng ^= fuzz_rng << 17;
    return n ? (uint32_t)(fuzz_rng % n) : 0;
}

static void test_fuzz_ingest(void **state)
{
    nodes_fx_t *fx = *state;
    make_table(fx, 50000);
    fuzz_rng = 0xC0FFEE1234567ULL;

    /* A pool of valid frames to mutate: full states and deltas of a few
     * nodes, some with GPUs, labels and a capsule. */
    enum { POOL = 24 };
    uint8_t *pool[POOL];
    size_t pool_len[POOL];
    char name[16];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "fz%d", i);
        add_leaf(fx, name, 100 + 100 * (uint32_t)i);
    }
    bool honest_full[4] = {true, true, true, true};
    uint64_t honest_ok = 0;
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "live%d", i);
        add_leaf(fx, name, 1000);
    }
    for (int k = 0; k < POOL; k++) {
        leaf_t *l = &fx->leaves[k % 4];
        l->st.cpu_used_m = frnd(16001);
        l->st.gpus[frnd(2)].temp_c = (int32_t)frnd(100);
        /* Now and then a capsule, so that mutations reach its fields. */
        orbit_capsule_t cap = {.state = (orbit_capsule_state_t)frnd(ORBIT_CAPSULE_STATE_COUNT),
                               .exit_code = (int32_t)frnd(3),
                               .since_ms = frnd(1000)};
        snprintf(cap.id, sizeof cap.id, "m/c/%u", frnd(3));
        snprintf(cap.reason, sizeof cap.reason, "%s", frnd(2) ? "signal 9 (Killed)" : "");
        assert_int_equal(orbit_node_state_set_capsules(&l->st, &cap, frnd(2)), ORBIT_OK);
        Orbit__NodeDelta *ds[2] = {leaf_delta(fx, l, k < 4 || frnd(3) == 0),
                                   leaf_delta(fx, &fx->leaves[(k + 1) % 4], true)};
        Orbit__LeafBatch b = ORBIT__LEAF_BATCH__INIT;
        b.batch_id = (uint64_t)k;
        b.n_deltas = 1 + (size_t)(k % 2);
        b.deltas = ds;
        assert_int_equal(orbit_wire_encode(ORBIT_MSG_LEAF_BATCH, &b.base, &pool[k], &pool_len[k]),
                         ORBIT_OK);
        orbit_arena_reset(fx->build);
    }

    const int frames = 20000;
    uint64_t rejected = 0, accepted = 0, acks_listed = 0;
    uint8_t buf[512];
    int64_t now = T0;
    for (int i = 0; i < frames; i++) {
        size_t len;
        leaf_t *honest = NULL;
        switch (frnd(4)) {
        case 3: { /* honest traffic from other leaves, between the garbage */
            leaf_t *l = &fx->leaves[4 + frnd(4)];
            l->st.cpu_used_m = frnd(16001);
            l->st.mem_used = (int64_t)frnd(64) * GiB;
            if (frnd(10) == 0)
                l->st.gpus[frnd(2)].health = (orbit_gpu_health_t)frnd(3);
            bool full = honest_full[l - &fx->leaves[4]] || frnd(20) == 0;
            Orbit__NodeDelta *d = leaf_delta(fx, l, full);
            Orbit__LeafBatch b = ORBIT__LEAF_BATCH__INIT;
            b.batch_id = 1000000 + (uint64_t)i;
            b.n_deltas = 1;
            b.deltas = &d;
            len = protobuf_c_message_get_packed_size(&b.base) + ORBIT_WIRE_HDR;
            assert_true(len <= sizeof buf);
            uint8_t *enc = NULL;
            assert_int_equal(orbit_wire_encode(ORBIT_MSG_LEAF_BATCH, &b.base, &enc, &len),
                             ORBIT_OK);
            memcpy(buf, enc, len);
            free(enc);
            orbit_arena_reset(fx->build);
            honest = l;
            break;
        }
        case 0: /* random bytes */
            len = frnd(300);
            for (size_t j = 0; j < len; j++)
                buf[j] = (uint8_t)frnd(256);
            break;
        case 1: /* a valid envelope, random body */
            len = ORBIT_WIRE_HDR + frnd(200);
            for (size_t j = 0; j < len; j++)
                buf[j] = (uint8_t)frnd(256);
            buf[0] = ORBIT_WIRE_MAGIC;
            buf[1] = ORBIT_WIRE_MAJOR;
            buf[2] = (uint8_t)frnd(3);
            buf[3] = frnd(8) ? ORBIT_MSG_LEAF_BATCH : (uint8_t)frnd(12);
            break;
        default: { /* a valid frame, mutated */
            int k = (int)frnd(POOL);
            len = pool_len[k];
            assert_true(len <= sizeof buf);
            memcpy(buf, pool[k], len);
            int flips = (int)frnd(4);
            for (int j = 0; j < flips; j++) {
                size_t at = ORBIT_WIRE_HDR + frnd((uint32_t)(len - ORBIT_WIRE_HDR));
                switch (frnd(3)) {
                case 0: buf[at] = (uint8_t)frnd(256); break;
                case 1: buf[at] ^= (uint8_t)(1u << frnd(8)); break;
                default: buf[at] = frnd(2) ? 0x00 : 0xFF; break;
                }
            }
            if (frnd(5) == 0)
                len = ORBIT_WIRE_HDR + frnd((uint32_t)(len - ORBIT_WIRE_HDR + 1));
            break;
        }
        }
        orbit_arena_reset(fx->arena);
        now += frnd(50);
        int rc = orbit_shard_nodes_ingest_frame(fx->n, buf, len, now, fx->arena, &fx->ack);
        if (rc == ORBIT_OK) {
            accepted++;
            assert_true(fx->ack.verdict == ORBIT__VERDICT__OK ||
                        fx->ack.verdict == ORBIT__VERDICT__OVERLOADED);
            for (size_t j = 0; j < fx->ack.n_nodes; j++) {
                Orbit__Verdict v = fx->ack.nodes[j]->verdict;
                assert_true(v != ORBIT__VERDICT__OK);
                assert_non_null(fx->ack.nodes[j]->node);
            }
            acks_listed += fx->ack.n_nodes;
            if (honest) {
                /* An honest leaf is never refused, except for a resync. */
                Orbit__Verdict v = verdict_of(fx, honest->st.name, NULL);
                assert_true(v == ORBIT__VERDICT__OK || v == ORBIT__VERDICT__RESYNC);
                honest_full[honest - &fx->leaves[4]] = v != ORBIT__VERDICT__OK;
                honest_ok += v == ORBIT__VERDICT__OK;
            }
            assert_true(protobuf_c_message_check(&fx->ack.base));
        } else {
            assert_null(honest);
            assert_true(rc == ORBIT_ETRUNC || rc == ORBIT_EMAGIC || rc == ORBIT_EVERSION ||
                        rc == ORBIT_ETYPE || rc == ORBIT_EDECODE);
            rejected++;
        }
        if (i % 500 == 0) {
            orbit_shard_nodes_tick(fx->n, now);
            orbit_agg_t agg;
            orbit_shard_nodes_summary(fx->n, &agg);
            assert_int_equal(orbit_agg_total(&agg), orbit_shard_nodes_count(fx->n));
            Orbit__NodeRow **rows = NULL;
            size_t nrows = 0;
            orbit_arena_reset(fx->arena);
            assert_int_equal(orbit_shard_nodes_rows(fx->n, 0, fx->arena, &rows, &nrows), ORBIT_OK);
            assert_int_equal(nrows, orbit_shard_nodes_count(fx->n));
            for (size_t j = 0; j < nrows; j++) {
                assert_true(rows[j]->cpu_free_m >= 0 && rows[j]->mem_free >= 0);
                assert_true(protobuf_c_message_check(&rows[j]->base));
            }
        }
    }
    const orbit_shard_nodes_stats_t *s = orbit_shard_nodes_stats(fx->n);
    print_message("fuzz: %d frames, %llu refused (envelope %llu, version %llu, type %llu, "
                  "decode %llu); %llu deltas: %llu applied, %llu invalid, %llu duplicate, "
                  "%llu gap, %llu unknown, %llu stale; %zu nodes\n",
                  frames, (unsigned long long)rejected, (unsigned long long)s->bad_envelope,
                  (unsigned long long)s->bad_version, (unsigned long long)s->bad_type,
                  (unsigned long long)s->bad_decode, (unsigned long long)s->deltas,
                  (unsigned long long)s->applied, (unsigned long long)s->invalid,
                  (unsigned long long)s->duplicates, (unsigned long long)s->gaps,
                  (unsigned long long)s->unknown_nodes, (unsigned long long)s->stale_incarnations,
                  orbit_shard_nodes_count(fx->n));
    assert_int_equal(s->frames, frames);
    assert_true(honest_ok > (uint64_t)frames / 5);
    for (int i = 4; i < 8; i++)
        if (!honest_full[i - 4])
            ASSERT_SHARD_HAS(fx, &fx->leaves[i]);
    assert_int_equal(s->bad_envelope + s->bad_version + s->bad_type + s->bad_decode, rejected);
    assert_int_equal(accepted + rejected, frames);
    assert_deltas_accounted(s);
    assert_int_equal(acks_listed, s->deltas - s->applied - s->shed);
    /* The fuzz reached every layer: envelopes, bodies, and the table. */
    assert_true(s->bad_envelope > 0 && s->bad_version > 0 && s->bad_type > 0);
    assert_true(s->bad_decode > 0);
    assert_true(s->applied > 0 && s->invalid > 0 && s->duplicates > 0);
    for (int k = 0; k < POOL; k++)
        free(pool[k]);
}

/* --------------------------------------------------------------- capsules */

static void set_capsules(leaf_t *l, const char *const *ids, const orbit_capsule_state_t *states,
                         uint32_t n)
{
    orbit_capsule_t cs[8];
    assert_true(n <= 8);
    memset(cs, 0, sizeof cs);
    for (uint32_t i = 0; i < n; i++) {
        snprintf(cs[i].id, sizeof cs[i].id, "%s", ids[i]);
        cs[i].state = states[i];
        cs[i].since_ms = 5000 + i;
    }
    assert_int_equal(orbit_node_state_set_capsules(&l->st, cs, n), ORBIT_OK);
}

static void test_capsule_change_is_material(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *a = add_leaf(fx, "node-a", 1000);
    assert_int_equal(send1(fx, a, true, T0), ORBIT__VERDICT__OK);
    int64_t t = T0;
    size_t base_heap = orbit_shard_nodes_heap_bytes(fx->n);

    /* A capsule appears. */
    const char *ids[] = {"m1/web/0", "m1/web/1"};
    orbit_capsule_state_t st[] = {ORBIT_CAPSULE_STARTING, ORBIT_CAPSULE_RUNNING};
    set_capsules(a, ids, st, 1);
    EXPECT_BUMP(fx, a, t += 100, true);
    ASSERT_SHARD_HAS(fx, a);
    /* Unchanged list: nothing to send, nothing material. */
    EXPECT_BUMP(fx, a, t += 100, false);
    /* A second one. */
    set_capsules(a, ids, st, 2);
    EXPECT_BUMP(fx, a, t += 100, true);
    assert_int_equal(orbit_shard_nodes_heap_bytes(fx->n), base_heap + 2 * sizeof(orbit_capsule_t));
    /* Reason or since_ms alone: sent (the detail shows it) but not material. */
    snprintf(a->st.capsules[1].reason, sizeof a->st.capsules[1].reason, "warming up");
    a->st.capsules[1].since_ms += 10;
    EXPECT_BUMP(fx, a, t += 100, false);
    ASSERT_SHARD_HAS(fx, a);
    /* State. */
    a->st.capsules[0].state = ORBIT_CAPSULE_RUNNING;
    EXPECT_BUMP(fx, a, t += 100, true);
    /* Exit code (a capsule that ended, then a different code). */
    a->st.capsules[1].state = ORBIT_CAPSULE_EXITED;
    a->st.capsules[1].exit_code = 1;
    EXPECT_BUMP(fx, a, t += 100, true);
    a->st.capsules[1].exit_code = 2;
    EXPECT_BUMP(fx, a, t += 100, true);
    /* Same count, another id. */
    snprintf(a->st.capsules[1].id, sizeof a->st.capsules[1].id, "m1/web/2");
    EXPECT_BUMP(fx, a, t += 100, true);
    ASSERT_SHARD_HAS(fx, a);
    /* A full state with the same list (a leaf resync): not material. */
    uint64_t g = orbit_shard_nodes_gen(fx->n);
    assert_int_equal(send1(fx, a, true, t += 100), ORBIT__VERDICT__OK);
    assert_int_equal(orbit_shard_nodes_gen(fx->n), g);
    /* A full state without the list clears it: material. */
    Orbit__NodeDelta *d = leaf_delta(fx, a, true);
    d->has_capsules_set = d->capsules_set = false;
    d->n_capsules = 0;
    assert_int_equal(ingest(fx, &d, 1, t += 100), ORBIT_OK);
    assert_int_equal(verdict_of(fx, "node-a", NULL), ORBIT__VERDICT__OK);
    assert_true(orbit_shard_nodes_gen(fx->n) > g);
    assert_int_equal(shard_copy(fx, "node-a", NULL)->ncapsules, 0);
    /* Nothing left: the node costs what it did before it had capsules. */
    assert_int_equal(orbit_shard_nodes_heap_bytes(fx->n), base_heap);
    /* And back, then all of them gone by a delta. */
    set_capsules(a, ids, st, 2);
    assert_int_equal(send1(fx, a, true, t += 100), ORBIT__VERDICT__OK);
    set_capsules(a, NULL, NULL, 0);
    EXPECT_BUMP(fx, a, t += 100, true);
    assert_int_equal(orbit_shard_nodes_heap_bytes(fx->n), base_heap);

    /* An invalid capsule list rejects the delta, counted, state kept. */
    set_capsules(a, ids, st, 2);
    assert_int_equal(send1(fx, a, false, t += 100), ORBIT__VERDICT__OK);
    uint64_t invalid = orbit_shard_nodes_stats(fx->n)->invalid;
    a->st.capsules[0].state = ORBIT_CAPSULE_STOPPED;
    d = leaf_delta(fx, a, false);
    d->capsules[1]->id = d->capsules[0]->id;
    assert_int_equal(ingest(fx, &d, 1, t += 100), ORBIT_OK);
    const char *why = NULL;
    assert_int_equal(verdict_of(fx, "node-a", &why), ORBIT__VERDICT__REJECTED);
    assert_string_equal(why, "duplicate capsule id");
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->invalid, invalid + 1);
    const orbit_node_state_t *c = shard_copy(fx, "node-a", NULL);
    assert_int_equal(c->ncapsules, 2);
    assert_int_equal(c->capsules[0].state, ORBIT_CAPSULE_STARTING);
}

static void test_rows_and_detail_carry_capsules(void **state)
{
    nodes_fx_t *fx = *state;
    leaf_t *a = add_leaf(fx, "node-a", 1000);
    leaf_t *b = add_leaf(fx, "node-b", 1000);
    const char *ids[] = {"m2/db/0", "m1/web/0", "m1/web/1"};
    orbit_capsule_state_t st[] = {ORBIT_CAPSULE_RUNNING, ORBIT_CAPSULE_FAILED,
                                  ORBIT_CAPSULE_EXITED};
    set_capsules(a, ids, st, 3);
    a->st.capsules[0].state = ORBIT_CAPSULE_FAILED; /* sorted: m1/web/0 first */
    snprintf(a->st.capsules[0].reason, sizeof a->st.capsules[0].reason, "command not found: x");
    a->st.capsules[1].exit_code = 7;
    assert_int_equal(send1(fx, a, true, T0), ORBIT__VERDICT__OK);
    assert_int_equal(send1(fx, b, true, T0), ORBIT__VERDICT__OK);

    Orbit__NodeRow **rows = NULL;
    size_t nrows = 0;
    orbit_arena_reset(fx->arena);
    assert_int_equal(orbit_shard_nodes_rows(fx->n, 0, fx->arena, &rows, &nrows), ORBIT_OK);
    assert_int_equal(nrows, 2);
    for (size_t i = 0; i < nrows; i++) {
        const Orbit__NodeRow *r = rows[i];
        assert_true(protobuf_c_message_check(&r->base));
        if (!strcmp(r->node, "node-b")) {
            assert_int_equal(r->n_capsules, 0);
            assert_null(r->capsules);
            continue;
        }
        assert_int_equal(r->n_capsules, 3);
        assert_string_equal(r->capsules[0]->id, "m1/web/0");
        assert_int_equal(r->capsules[0]->state, ORBIT__CAPSULE_STATE__CAPSULE_FAILED);
        assert_string_equal(r->capsules[0]->reason, "command not found: x");
        assert_string_equal(r->capsules[1]->id, "m1/web/1");
        assert_int_equal(r->capsules[1]->state, ORBIT__CAPSULE_STATE__CAPSULE_EXITED);
        assert_int_equal(r->capsules[1]->exit_code, 7);
        assert_string_equal(r->capsules[2]->id, "m2/db/0");
        assert_int_equal(r->capsules[2]->state, ORBIT__CAPSULE_STATE__CAPSULE_RUNNING);
        assert_int_equal(r->capsules[2]->since_ms, 5000);
    }
    /* Only the node whose capsule changed is re-reported. */
    uint64_t g = orbit_shard_nodes_gen(fx->n);
    a->st.capsules[2].state = ORBIT_CAPSULE_STOPPED;
    assert_int_equal(send1(fx, a, false, T0 + 100), ORBIT__VERDICT__OK);
    b->st.load1 = 7;
    assert_int_equal(send1(fx, b, false, T0 + 100), ORBIT__VERDICT__OK);
    orbit_arena_reset(fx->arena);
    assert_int_equal(orbit_shard_nodes_rows(fx->n, g, fx->arena, &rows, &nrows), ORBIT_OK);
    assert_int_equal(nrows, 1);
    assert_string_equal(rows[0]->node, "node-a");
    assert_int_equal(rows[0]->capsules[2]->state, ORBIT__CAPSULE_STATE__CAPSULE_STOPPED);

    /* The detail is the full state: capsules included. */
    Orbit__NodeDetail *d = NULL;
    orbit_arena_reset(fx->arena);
    assert_int_equal(orbit_shard_nodes_detail(fx->n, "node-a", T0 + 100, fx->arena, &d), ORBIT_OK);
    assert_true(d->state->has_capsules_set && d->state->capsules_set);
    assert_int_equal(d->state->n_capsules, 3);
    assert_string_equal(d->state->capsules[0]->reason, "command not found: x");
    assert_int_equal(orbit_shard_nodes_detail(fx->n, "node-b", T0 + 100, fx->arena, &d), ORBIT_OK);
    assert_true(d->state->has_capsules_set && d->state->capsules_set);
    assert_int_equal(d->state->n_capsules, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, nodes_setup, nodes_teardown)
    const struct CMUnitTest tests[] = {
        T(test_new_rejects_bad_id),
        T(test_full_then_delta),
        T(test_delta_for_unknown_node_resync),
        T(test_duplicate_seq),
        T(test_gap_resync_not_applied),
        T(test_reboot_and_stale_incarnation),
        T(test_invalid_delta_rejected_others_applied),
        T(test_overloaded_budget),
        T(test_liveness_by_node_interval),
        T(test_liveness_configurable),
        T(test_gen_material_changes),
        T(test_rows_since_gen),
        T(test_summary_counts),
        T(test_detail),
        T(test_ingest_frame_counters),
        T(test_fuzz_ingest),
        T(test_capsule_change_is_material),
        T(test_rows_and_detail_carry_capsules),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
