/* test_root_view: the root's queries over its merged view — validation,
 * filters (status, labels, minimum free), ordering with the name tie-break,
 * limit and matched count, the summary, the row-freshness histogram, and
 * capsules (Q_CAPSULES: prefix, (id, node) order, limit, effective node
 * status, prefix validation; capsules in Q_NODES rows). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "orbit_err.h"
#include "root_view.h"
#include "shard_agg.h"
#include "shard_subtree.h"

#define T0 900000

typedef struct {
    const char *name;
    int status;
    int64_t cpu_free, mem_free;
    uint32_t gpu_healthy;
    const char *labels; /* "k=v,k=v" */
    const char *caps;   /* "id:state[:exit],..." (state as orbit_capsule_state_name) */
} spec_t;

/* Two racks; ties on purpose: a1/a2 on CPU, a2/b1 on memory, a1/b1 on GPUs. */
/* Capsules: web/f/0 on two nodes (b1 still stopping an old placement). */
static const spec_t rack1[] = {
    {"a1", ORBIT_ALIVE, 4000, 100, 4, "rack=r1,gpu=h100", "web/f/1:running,web/f/0:running"},
    {"a2", ORBIT_ALIVE, 4000, 300, 0, "rack=r1", "batch/etl/0:exited:0"},
    {"a3", ORBIT_SUSPECT, 8000, 50, 2, "rack=r1,gpu=a100", NULL},
    {"a4", ORBIT_DOWN, 16000, 999, 8, "gpu=h100,rack=r1", "web/f/2:failed"},
};
static const spec_t rack2[] = {
    {"b1", ORBIT_ALIVE, 2000, 300, 4, "rack=r2,gpu=h100", "web/f/0:stopped,db/pg/0:running"},
    {"b2", ORBIT_ALIVE, 12000, 10, 1, "rack=r2,zone=z1", "web/f/10:starting"},
    {"b3", ORBIT_ALIVE, 0, 0, 0, "", NULL},
};

/* Capsules "id:state[:exit],..." -> wire capsules of w (storage in a). */
static void wire_capsules(orbit_arena_t *a, Orbit__NodeRow *w, const char *spec)
{
    if (!spec)
        return;
    char *text = orbit_arena_strdup(a, spec);
    w->capsules = orbit_arena_alloc(a, 4 * sizeof *w->capsules);
    for (char *save = NULL, *c = strtok_r(text, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
        Orbit__CapsuleHealth *h = orbit_arena_alloc(a, sizeof *h);
        orbit__capsule_health__init(h);
        char *st = strchr(c, ':'), *ex;
        *st++ = '\0';
        if ((ex = strchr(st, ':'))) {
            *ex++ = '\0';
            h->has_exit_code = true;
            h->exit_code = atoi(ex);
        }
        h->id = c;
        int k = 0;
        while (k < ORBIT_CAPSULE_STATE_COUNT &&
               strcmp(orbit_capsule_state_name((orbit_capsule_state_t)k), st))
            k++;
        assert_true(k < ORBIT_CAPSULE_STATE_COUNT);
        h->state = (Orbit__CapsuleState)k;
        if (k == ORBIT_CAPSULE_FAILED)
            h->reason = "command not found: x";
        w->capsules[w->n_capsules++] = h;
    }
}

typedef struct {
    orbit_subtree_t *t;
    orbit_arena_t *arena;
    Orbit__ViewQuery q;
    Orbit__ViewReply rep;
    Orbit__Label qlabels[20];
    Orbit__Label *qlabelp[20];
} view_fx_t;

/* A full report of one rack with the given rows. */
static void publish(view_fx_t *fx, const char *rack, uint64_t seq, const spec_t *rows, size_t n,
                    int64_t now)
{
    orbit_arena_t *a = fx->arena;
    Orbit__NodeRow **wr = orbit_arena_alloc(a, n * sizeof *wr);
    orbit_agg_t agg;
    memset(&agg, 0, sizeof agg);
    for (size_t i = 0; i < n; i++) {
        Orbit__NodeRow *w = orbit_arena_alloc(a, sizeof *w);
        orbit__node_row__init(w);
        w->node = (char *)rows[i].name;
        w->shard = (char *)rack;
        w->status = (Orbit__NodeStatus)rows[i].status;
        w->has_cpu_capacity_m = w->has_cpu_free_m = w->has_mem_capacity = w->has_mem_free = true;
        w->has_gpu_capacity = w->has_gpu_healthy = true;
        w->cpu_capacity_m = 16000;
        w->cpu_free_m = rows[i].cpu_free;
        w->mem_capacity = 1000;
        w->mem_free = rows[i].mem_free;
        w->gpu_capacity = 8;
        w->gpu_healthy = rows[i].gpu_healthy;
        /* Labels "k=v,k=v" -> wire labels. */
        char *text = orbit_arena_strdup(a, rows[i].labels);
        Orbit__Label **lp = orbit_arena_alloc(a, 4 * sizeof *lp);
        for (char *save = NULL, *kv = strtok_r(text, ",", &save); kv;
             kv = strtok_r(NULL, ",", &save)) {
            Orbit__Label *l = orbit_arena_alloc(a, sizeof *l);
            orbit__label__init(l);
            char *eq = strchr(kv, '=');
            *eq = '\0';
            l->key = kv;
            l->value = eq + 1;
            lp[w->n_labels++] = l;
        }
        w->labels = lp;
        wire_capsules(a, w, rows[i].caps);
        wr[i] = w;
        agg.nodes[rows[i].status]++;
    }
    Orbit__Summary sum = ORBIT__SUMMARY__INIT;
    orbit_agg_pb_store_t st;
    orbit_agg_to_pb(&agg, &sum, &st);
    Orbit__ShardReport r = ORBIT__SHARD_REPORT__INIT;
    r.shard = (char *)rack;
    r.tier = 1;
    r.incarnation = 1;
    r.seq = seq;
    r.has_full = r.full = true;
    r.has_interval_ms = true;
    r.interval_ms = 1000;
    r.summary = &sum;
    r.n_rows = n;
    r.rows = wr;
    Orbit__ReportAck ack;
    assert_int_equal(
        orbit_subtree_report(fx->t, &r, (const uint8_t *)rack, strlen(rack), now, &ack), ORBIT_OK);
    assert_false(ack.resync);
}

static int view_setup(void **state)
{
    view_fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    orbit_subtree_cfg_t cfg = {0};
    fx->t = orbit_subtree_new("root", 0, &cfg);
    fx->arena = orbit_arena_new(0);
    assert_non_null(fx->t);
    assert_non_null(fx->arena);
    publish(fx, "rack-1", 1, rack1, 4, T0);
    publish(fx, "rack-2", 1, rack2, 3, T0);
    orbit__view_query__init(&fx->q);
    fx->q.request_id = 1;
    fx->q.kind = ORBIT__QUERY_KIND__Q_NODES;
    for (int i = 0; i < 20; i++) {
        orbit__label__init(&fx->qlabels[i]);
        fx->qlabelp[i] = &fx->qlabels[i];
    }
    fx->q.labels = fx->qlabelp;
    *state = fx;
    return 0;
}

static int view_teardown(void **state)
{
    view_fx_t *fx = *state;
    orbit_subtree_destroy(&fx->t);
    orbit_arena_destroy(&fx->arena);
    free(fx);
    return 0;
}

static void add_label(view_fx_t *fx, const char *k, const char *v)
{
    fx->qlabels[fx->q.n_labels].key = (char *)k;
    fx->qlabels[fx->q.n_labels].value = (char *)v;
    fx->q.n_labels++;
}

/* Run the query (validated first) and return the row names, comma-joined
 * in reply order (cut at 255 characters). */
static const char *run(view_fx_t *fx)
{
    static char out[256];
    const char *reason = NULL;
    assert_int_equal(orbit_root_view_validate(&fx->q, &reason), ORBIT_OK);
    orbit__view_reply__init(&fx->rep);
    assert_int_equal(orbit_root_view_nodes(fx->t, &fx->q, fx->arena, &fx->rep), ORBIT_OK);
    assert_true(fx->rep.has_matched);
    assert_true(fx->rep.matched >= fx->rep.n_rows);
    out[0] = '\0';
    for (size_t i = 0; i < fx->rep.n_rows; i++) {
        assert_true(protobuf_c_message_check(&fx->rep.rows[i]->base));
        size_t used = strlen(out);
        snprintf(out + used, sizeof out - used, "%s%s", i ? "," : "", fx->rep.rows[i]->node);
    }
    return out;
}

/* ------------------------------------------------------------------ tests */

static void test_validate(void **state)
{
    view_fx_t *fx = *state;
    Orbit__ViewQuery *q = &fx->q;
    const char *reason = NULL;
#define BAD(why)                                                                                   \
    do {                                                                                           \
        reason = NULL;                                                                             \
        assert_int_equal(orbit_root_view_validate(q, &reason), ORBIT_EINVAL);                      \
        assert_non_null(reason);                                                                   \
        assert_string_equal(reason, (why));                                                        \
    } while (0)
#define GOOD() assert_int_equal(orbit_root_view_validate(q, &reason), ORBIT_OK)
    GOOD();
    q->kind = (Orbit__QueryKind)5;
    BAD("unknown query kind");
    q->kind = (Orbit__QueryKind)-1;
    BAD("unknown query kind");
    q->kind = ORBIT__QUERY_KIND__Q_NODE;
    BAD("node query needs a valid node name"); /* no node */
    q->node = "two words";
    BAD("node query needs a valid node name");
    q->node = "a1";
    GOOD();
    q->kind = ORBIT__QUERY_KIND__Q_NODES;
    q->has_status = true;
    q->status = (Orbit__NodeStatus)4;
    BAD("unknown status filter");
    q->status = (Orbit__NodeStatus)-2;
    BAD("unknown status filter");
    q->status = ORBIT__NODE_STATUS__UNREACHABLE;
    GOOD();
    q->has_order = true;
    q->order = (Orbit__Order)4;
    BAD("unknown order");
    q->order = ORBIT__ORDER__BY_GPU_FREE;
    GOOD();
    q->has_limit = true;
    q->limit = ORBIT_VIEW_LIMIT_MAX + 1;
    BAD("limit too large");
    q->limit = ORBIT_VIEW_LIMIT_MAX;
    GOOD();
    for (int i = 0; i < 16; i++)
        add_label(fx, "k", "v");
    GOOD();
    add_label(fx, "k", "v");
    BAD("too many label filters");
    q->n_labels = 1;
    fx->qlabels[0].key = "";
    BAD("invalid label filter");
    char key[ORBIT_LABEL_KEY_MAX + 2], value[ORBIT_LABEL_VALUE_MAX + 2];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    fx->qlabels[0].key = key;
    BAD("invalid label filter");
    key[ORBIT_LABEL_KEY_MAX] = '\0';
    GOOD();
    fx->qlabels[0].value = value;
    BAD("invalid label filter");
    value[ORBIT_LABEL_VALUE_MAX] = '\0';
    GOOD();
#undef BAD
#undef GOOD
}

static void test_all_by_name(void **state)
{
    view_fx_t *fx = *state;
    assert_string_equal(run(fx), "a1,a2,a3,a4,b1,b2,b3");
    assert_int_equal(fx->rep.matched, 7);
    /* Rows carry the effective status, their shard and labels. */
    Orbit__NodeRow *a3 = fx->rep.rows[2];
    assert_int_equal(a3->status, ORBIT__NODE_STATUS__SUSPECT);
    assert_string_equal(a3->shard, "rack-1");
    assert_int_equal(a3->cpu_free_m, 8000);
    assert_int_equal(a3->n_labels, 2);
    assert_string_equal(a3->labels[1]->key, "gpu");
    assert_string_equal(a3->labels[1]->value, "a100");
    assert_int_equal(fx->rep.rows[6]->n_labels, 0);
}

static void test_filter_status(void **state)
{
    view_fx_t *fx = *state;
    fx->q.has_status = true;
    fx->q.status = ORBIT__NODE_STATUS__ALIVE;
    assert_string_equal(run(fx), "a1,a2,b1,b2,b3");
    fx->q.status = ORBIT__NODE_STATUS__SUSPECT;
    assert_string_equal(run(fx), "a3");
    fx->q.status = ORBIT__NODE_STATUS__DOWN;
    assert_string_equal(run(fx), "a4");
    fx->q.status = ORBIT__NODE_STATUS__UNREACHABLE;
    assert_string_equal(run(fx), "");
    assert_int_equal(fx->rep.matched, 0);

    /* rack-2 goes silent: its nodes are unreachable (not down), rack-1's
     * keep their status. */
    publish(fx, "rack-1", 2, rack1, 4, T0 + 1000);
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 1600), 1);
    assert_string_equal(run(fx), "b1,b2,b3");
    fx->q.status = ORBIT__NODE_STATUS__ALIVE;
    assert_string_equal(run(fx), "a1,a2");
    fx->q.status = ORBIT__NODE_STATUS__DOWN;
    assert_string_equal(run(fx), "a4");
    fx->q.has_status = false;
    assert_string_equal(run(fx), "a1,a2,a3,a4,b1,b2,b3");
    assert_int_equal(fx->rep.rows[4]->status, ORBIT__NODE_STATUS__UNREACHABLE);
}

static void test_filter_labels(void **state)
{
    view_fx_t *fx = *state;
    add_label(fx, "rack", "r1");
    assert_string_equal(run(fx), "a1,a2,a3,a4");
    add_label(fx, "gpu", "h100"); /* every label must match */
    assert_string_equal(run(fx), "a1,a4");
    fx->q.n_labels = 0;
    add_label(fx, "gpu", "h100");
    assert_string_equal(run(fx), "a1,a4,b1");
    fx->q.n_labels = 0;
    add_label(fx, "zone", "z1");
    assert_string_equal(run(fx), "b2");
    /* Keys and values match exactly: no prefixes either way. */
    fx->q.n_labels = 0;
    add_label(fx, "rac", "r1");
    assert_string_equal(run(fx), "");
    fx->q.n_labels = 0;
    add_label(fx, "rack", "r");
    assert_string_equal(run(fx), "");
    fx->q.n_labels = 0;
    add_label(fx, "gpu", "h1000");
    assert_string_equal(run(fx), "");
    fx->q.n_labels = 0;
    add_label(fx, "gpu", "");
    assert_string_equal(run(fx), "");
}

static void test_filter_min_free(void **state)
{
    view_fx_t *fx = *state;
    fx->q.has_min_cpu_free_m = true;
    fx->q.min_cpu_free_m = 4000;
    assert_string_equal(run(fx), "a1,a2,a3,a4,b2");
    fx->q.min_cpu_free_m = 4001;
    assert_string_equal(run(fx), "a3,a4,b2");
    fx->q.has_min_cpu_free_m = false;
    fx->q.has_min_mem_free = true;
    fx->q.min_mem_free = 300;
    assert_string_equal(run(fx), "a2,a4,b1");
    fx->q.has_min_mem_free = false;
    fx->q.has_min_gpu_healthy = true;
    fx->q.min_gpu_healthy = 4;
    assert_string_equal(run(fx), "a1,a4,b1");
    /* Combined with a status and a label. */
    fx->q.has_status = true;
    fx->q.status = ORBIT__NODE_STATUS__ALIVE;
    assert_string_equal(run(fx), "a1,b1");
    add_label(fx, "rack", "r2");
    assert_string_equal(run(fx), "b1");
    /* Zero minimums filter nothing. */
    fx->q.n_labels = 0;
    fx->q.has_status = false;
    fx->q.min_gpu_healthy = 0;
    fx->q.has_min_cpu_free_m = fx->q.has_min_mem_free = true;
    fx->q.min_cpu_free_m = fx->q.min_mem_free = 0;
    assert_string_equal(run(fx), "a1,a2,a3,a4,b1,b2,b3");
}

static void test_order_and_limit(void **state)
{
    view_fx_t *fx = *state;
    fx->q.has_order = true;
    fx->q.order = ORBIT__ORDER__BY_CPU_FREE;
    assert_string_equal(run(fx), "a4,b2,a3,a1,a2,b1,b3");
    fx->q.order = ORBIT__ORDER__BY_MEM_FREE;
    assert_string_equal(run(fx), "a4,a2,b1,a1,a3,b2,b3");
    fx->q.order = ORBIT__ORDER__BY_GPU_FREE;
    assert_string_equal(run(fx), "a4,a1,b1,a3,b2,a2,b3");
    fx->q.order = ORBIT__ORDER__BY_NAME;
    assert_string_equal(run(fx), "a1,a2,a3,a4,b1,b2,b3");

    /* Top-k: the first k of the order, matched counts all. */
    fx->q.order = ORBIT__ORDER__BY_CPU_FREE;
    fx->q.has_limit = true;
    fx->q.limit = 3;
    assert_string_equal(run(fx), "a4,b2,a3");
    assert_int_equal(fx->rep.matched, 7);
    fx->q.limit = 1;
    fx->q.has_status = true;
    fx->q.status = ORBIT__NODE_STATUS__ALIVE;
    assert_string_equal(run(fx), "b2");
    assert_int_equal(fx->rep.matched, 5);
    fx->q.limit = 0; /* no limit */
    assert_string_equal(run(fx), "b2,a1,a2,b1,b3");
    fx->q.limit = 100;
    assert_string_equal(run(fx), "b2,a1,a2,b1,b3");
    assert_int_equal(fx->rep.matched, 5);
    /* Nothing matches: no rows, matched 0. */
    fx->q.status = ORBIT__NODE_STATUS__SUSPECT;
    fx->q.has_min_cpu_free_m = true;
    fx->q.min_cpu_free_m = 9000;
    assert_string_equal(run(fx), "");
    assert_int_equal(fx->rep.matched, 0);
    assert_int_equal(fx->rep.n_rows, 0);
}

static void test_order_survives_many_rows(void **state)
{
    view_fx_t *fx = *state;
    /* Enough rows to grow the collector several times over. */
    enum { N = 700 };
    static spec_t many[N];
    static char names[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "m%03d", i);
        many[i] = (spec_t){names[i],  ORBIT_ALIVE, (i * 37) % 1000, i % 7, (uint32_t)(i % 9 % 8),
                           "rack=r3", NULL};
    }
    publish(fx, "rack-3", 1, many, N, T0);
    fx->q.has_order = true;
    fx->q.order = ORBIT__ORDER__BY_CPU_FREE;
    add_label(fx, "rack", "r3");
    run(fx);
    assert_int_equal(fx->rep.n_rows, N);
    for (size_t i = 1; i < fx->rep.n_rows; i++) {
        const Orbit__NodeRow *p = fx->rep.rows[i - 1], *c = fx->rep.rows[i];
        assert_true(p->cpu_free_m > c->cpu_free_m ||
                    (p->cpu_free_m == c->cpu_free_m && strcmp(p->node, c->node) < 0));
    }
}

static void test_summary(void **state)
{
    view_fx_t *fx = *state;
    orbit__view_reply__init(&fx->rep);
    assert_int_equal(orbit_root_view_summary(fx->t, fx->arena, &fx->rep), ORBIT_OK);
    assert_non_null(fx->rep.summary);
    orbit_agg_t got, want;
    assert_int_equal(orbit_agg_from_pb(&got, fx->rep.summary), ORBIT_OK);
    orbit_subtree_summary(fx->t, &want);
    assert_true(orbit_agg_equal(&got, &want));
    assert_int_equal(got.nodes[ORBIT_ALIVE], 5);
    assert_int_equal(got.nodes[ORBIT_SUSPECT], 1);
    assert_int_equal(got.nodes[ORBIT_DOWN], 1);
    assert_int_equal(got.nodes[ORBIT_UNREACHABLE], 0);

    /* With rack-2 silent, its three nodes are counted unreachable. */
    publish(fx, "rack-1", 2, rack1, 4, T0 + 1000);
    orbit_subtree_tick(fx->t, T0 + 1600);
    orbit__view_reply__init(&fx->rep);
    assert_int_equal(orbit_root_view_summary(fx->t, fx->arena, &fx->rep), ORBIT_OK);
    assert_int_equal(orbit_agg_from_pb(&got, fx->rep.summary), ORBIT_OK);
    assert_int_equal(got.nodes[ORBIT_ALIVE], 2);
    assert_int_equal(got.nodes[ORBIT_UNREACHABLE], 3);
    assert_int_equal(orbit_agg_total(&got), 7);
    assert_true(protobuf_c_message_check(&fx->rep.base));
}

static void test_freshness(void **state)
{
    view_fx_t *fx = *state;
    static orbit_freshness_t f;
    memset(&f, 0, sizeof f);
    Orbit__NodeRow rows[7];
    Orbit__NodeRow *rp[7];
    const int64_t now = 1700000000000LL;
    const int64_t sampled[7] = {now, now - 25, now - 29999, now - 100000, now + 50, 0, -1};
    for (int i = 0; i < 7; i++) {
        orbit__node_row__init(&rows[i]);
        rows[i].has_sampled_ms = i != 6;
        rows[i].sampled_ms = sampled[i];
        rp[i] = &rows[i];
    }
    Orbit__ShardReport r = ORBIT__SHARD_REPORT__INIT;
    r.n_rows = 7;
    r.rows = rp;
    orbit_freshness_record(&f, &r, now);
    assert_int_equal(f.hist[0], 2); /* fresh, and from a clock ahead of ours */
    assert_int_equal(f.hist[2], 1); /* 25 ms */
    assert_int_equal(f.hist[ORBIT_FRESHNESS_BUCKETS - 1], 2); /* 29.999 s and 100 s */
    uint64_t total = 0;
    for (int i = 0; i < ORBIT_FRESHNESS_BUCKETS; i++)
        total += f.hist[i];
    assert_int_equal(total, 5); /* rows without a sample time are not counted */

    orbit__view_reply__init(&fx->rep);
    orbit_freshness_to_pb(&f, &fx->rep);
    assert_int_equal(fx->rep.n_row_age_hist, ORBIT_FRESHNESS_BUCKETS);
    assert_true(fx->rep.has_row_age_bucket_ms);
    assert_int_equal(fx->rep.row_age_bucket_ms, ORBIT_FRESHNESS_BUCKET_MS);
    assert_int_equal(fx->rep.row_age_hist[2], 1);
}

/* Run a Q_CAPSULES query (validated first): "id@node:node-status:state"
 * items, comma-joined in reply order (cut at 511 characters). */
static const char *run_capsules(view_fx_t *fx)
{
    static char out[512];
    fx->q.kind = ORBIT__QUERY_KIND__Q_CAPSULES;
    const char *reason = NULL;
    assert_int_equal(orbit_root_view_validate(&fx->q, &reason), ORBIT_OK);
    orbit__view_reply__init(&fx->rep);
    assert_int_equal(orbit_root_view_capsules(fx->t, &fx->q, fx->arena, &fx->rep), ORBIT_OK);
    assert_true(fx->rep.has_matched);
    assert_true(fx->rep.matched >= fx->rep.n_capsules);
    assert_int_equal(fx->rep.n_rows, 0);
    /* The reply packs (it is sent as is). */
    assert_true(protobuf_c_message_check(&fx->rep.base));
    out[0] = '\0';
    for (size_t i = 0; i < fx->rep.n_capsules; i++) {
        const Orbit__CapsuleRow *r = fx->rep.capsules[i];
        size_t used = strlen(out);
        snprintf(out + used, sizeof out - used, "%s%s@%s:%s:%s", i ? "," : "", r->health->id,
                 r->node, orbit_status_name(r->node_status),
                 orbit_capsule_state_name((orbit_capsule_state_t)r->health->state));
    }
    return out;
}

static void test_capsules_all_in_id_node_order(void **state)
{
    view_fx_t *fx = *state;
    assert_string_equal(run_capsules(fx), "batch/etl/0@a2:alive:exited,"
                                          "db/pg/0@b1:alive:running,"
                                          "web/f/0@a1:alive:running,"
                                          "web/f/0@b1:alive:stopped,"
                                          "web/f/1@a1:alive:running,"
                                          "web/f/10@b2:alive:starting,"
                                          "web/f/2@a4:down:failed");
    assert_int_equal(fx->rep.matched, 7);
    /* The health travels whole. */
    const Orbit__CapsuleHealth *h = fx->rep.capsules[0]->health;
    assert_true(h->has_exit_code);
    assert_int_equal(h->exit_code, 0);
    h = fx->rep.capsules[6]->health;
    assert_string_equal(h->reason, "command not found: x");
    /* An empty prefix is all of them too. */
    fx->q.capsule_prefix = "";
    run_capsules(fx);
    assert_int_equal(fx->rep.matched, 7);
}

static void test_capsules_prefix_and_limit(void **state)
{
    view_fx_t *fx = *state;
    fx->q.capsule_prefix = "web/f/1";
    assert_string_equal(run_capsules(fx), "web/f/1@a1:alive:running,web/f/10@b2:alive:starting");
    fx->q.capsule_prefix = "web/f/0";
    assert_string_equal(run_capsules(fx), "web/f/0@a1:alive:running,web/f/0@b1:alive:stopped");
    fx->q.capsule_prefix = "web/";
    fx->q.has_limit = true;
    fx->q.limit = 2;
    assert_string_equal(run_capsules(fx), "web/f/0@a1:alive:running,web/f/0@b1:alive:stopped");
    assert_int_equal(fx->rep.matched, 5);
    fx->q.limit = 0; /* 0: no limit */
    run_capsules(fx);
    assert_int_equal(fx->rep.n_capsules, 5);
    fx->q.capsule_prefix = "nothing/";
    assert_string_equal(run_capsules(fx), "");
    assert_int_equal(fx->rep.matched, 0);
    assert_null(fx->rep.capsules);
    /* A prefix as long as an id can be matches that id only. */
    fx->q.capsule_prefix = "batch/etl/0";
    assert_string_equal(run_capsules(fx), "batch/etl/0@a2:alive:exited");
    /* Node filters apply: capsules of rack r2's alive nodes. */
    fx->q.capsule_prefix = NULL;
    add_label(fx, "rack", "r2");
    assert_string_equal(run_capsules(fx), "db/pg/0@b1:alive:running,web/f/0@b1:alive:stopped,"
                                          "web/f/10@b2:alive:starting");
    fx->q.n_labels = 0;
    fx->q.has_status = true;
    fx->q.status = ORBIT__NODE_STATUS__DOWN;
    assert_string_equal(run_capsules(fx), "web/f/2@a4:down:failed");
}

static void test_capsules_of_silent_child_unreachable(void **state)
{
    view_fx_t *fx = *state;
    /* rack-1 keeps reporting, rack-2 falls silent. */
    publish(fx, "rack-1", 2, rack1, 4, T0 + 1000);
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 2000), 1);
    fx->q.capsule_prefix = "web/f/";
    assert_string_equal(run_capsules(fx), "web/f/0@a1:alive:running,"
                                          "web/f/0@b1:unreachable:stopped,"
                                          "web/f/1@a1:alive:running,"
                                          "web/f/10@b2:unreachable:starting,"
                                          "web/f/2@a4:down:failed");
    /* And back. */
    publish(fx, "rack-2", 2, rack2, 3, T0 + 2100);
    fx->q.capsule_prefix = "web/f/10";
    assert_string_equal(run_capsules(fx), "web/f/10@b2:alive:starting");
}

static void test_capsules_bad_prefix(void **state)
{
    view_fx_t *fx = *state;
    fx->q.kind = ORBIT__QUERY_KIND__Q_CAPSULES;
    const char *why = "capsule prefix must be id characters (A-Za-z0-9._-:/), at most 63 bytes";
    char longest[ORBIT_CAPSULE_ID_MAX + 1];
    memset(longest, 'p', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0'; /* 64 bytes */
    const char *bad[] = {"web f", "web/\n", "web*", "caf\xc3\xa9", longest};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *reason = NULL;
        fx->q.capsule_prefix = (char *)bad[i];
        assert_int_equal(orbit_root_view_validate(&fx->q, &reason), ORBIT_EINVAL);
        assert_non_null(reason);
        assert_string_equal(reason, why);
    }
    longest[ORBIT_CAPSULE_ID_MAX - 1] = '\0'; /* 63: fine, and matches nothing */
    fx->q.capsule_prefix = longest;
    assert_string_equal(run_capsules(fx), "");
    fx->q.capsule_prefix = "m-1.x_y:z/";
    assert_string_equal(run_capsules(fx), "");
}

static void test_nodes_rows_carry_capsules(void **state)
{
    view_fx_t *fx = *state;
    assert_string_equal(run(fx), "a1,a2,a3,a4,b1,b2,b3");
    const Orbit__NodeRow *a1 = fx->rep.rows[0], *a3 = fx->rep.rows[2], *b1 = fx->rep.rows[4];
    assert_int_equal(a1->n_capsules, 2);
    assert_string_equal(a1->capsules[0]->id, "web/f/0"); /* sorted by id */
    assert_string_equal(a1->capsules[1]->id, "web/f/1");
    assert_int_equal(a3->n_capsules, 0);
    assert_int_equal(b1->n_capsules, 2);
    assert_string_equal(b1->capsules[0]->id, "db/pg/0");
    assert_int_equal(b1->capsules[1]->state, ORBIT__CAPSULE_STATE__CAPSULE_STOPPED);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, view_setup, view_teardown)
    const struct CMUnitTest tests[] = {
        T(test_validate),
        T(test_all_by_name),
        T(test_filter_status),
        T(test_filter_labels),
        T(test_filter_min_free),
        T(test_order_and_limit),
        T(test_order_survives_many_rows),
        T(test_summary),
        T(test_freshness),
        T(test_capsules_all_in_id_node_order),
        T(test_capsules_prefix_and_limit),
        T(test_capsules_of_silent_child_unreachable),
        T(test_capsules_bad_prefix),
        T(test_nodes_rows_carry_capsules),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
