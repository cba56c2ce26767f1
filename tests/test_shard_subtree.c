/* test_shard_subtree: a zone shard's (or the root's) table of child shards
 * and their rows — resync of unknown children, full and incremental reports,
 * removals, warming restarts, silence making rows unreachable (never down),
 * generations, invalid input, the shard list, envelope counters, and the
 * capsules rows carry (kept, replaced, re-emitted, invalid ones rejected). */
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
#include "shard_subtree.h"

#define T0 500000

/* ------------------------------------------------------------ child model */

/* One capsule of a row. */
typedef struct {
    char id[80];
    int state;
    int32_t exit_code;
    char reason[160];
} ccap_t;

/* One node row as a child shard holds it. */
typedef struct {
    char name[32];
    int status;
    int64_t cpu_cap, cpu_free, mem_cap, mem_free;
    uint32_t gpu_cap, gpu_healthy, pressure;
    char rack[32];
    bool present;
    ccap_t caps[4];
    int ncaps;
} crow_t;

/* A child shard: identity, sequence, and its current rows. */
typedef struct {
    char id[32];
    uint32_t tier;
    uint64_t inc, seq;
    uint32_t interval_ms;
    uint64_t epoch; /* topology epoch its reports carry (0: flag mode) */
    crow_t rows[16];
    int nrows;
} child_t;

typedef struct {
    orbit_subtree_t *t;
    orbit_arena_t *arena;
    Orbit__ReportAck ack;
    child_t kids[4];
    int nkids;
    /* Extra fields of the next report (cleared by every send). */
    const char *removed[4];
    size_t nremoved;
    Orbit__ShardInfo **infos;
    size_t ninfos;
} sub_fx_t;

static int sub_setup(void **state)
{
    sub_fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    orbit_subtree_cfg_t cfg = {0}; /* silent_pct: default 150 */
    fx->t = orbit_subtree_new("zone-1", 2, &cfg);
    assert_non_null(fx->t);
    fx->arena = orbit_arena_new(0);
    assert_non_null(fx->arena);
    *state = fx;
    return 0;
}

static int sub_teardown(void **state)
{
    sub_fx_t *fx = *state;
    orbit_subtree_destroy(&fx->t);
    assert_null(fx->t);
    orbit_subtree_destroy(&fx->t);
    orbit_arena_destroy(&fx->arena);
    free(fx);
    return 0;
}

static child_t *add_child(sub_fx_t *fx, const char *id, uint64_t inc)
{
    assert_true(fx->nkids < 4);
    child_t *c = &fx->kids[fx->nkids++];
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    c->tier = 1;
    c->inc = inc;
    c->interval_ms = 1000;
    return c;
}

/* Add (or find) row name of child c: 8 cores, 4 free; 64 units of memory,
 * 32 free; 2 GPUs, both healthy; alive. */
static crow_t *add_row(child_t *c, const char *name)
{
    for (int i = 0; i < c->nrows; i++)
        if (!strcmp(c->rows[i].name, name))
            return &c->rows[i];
    assert_true(c->nrows < 16);
    crow_t *r = &c->rows[c->nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->status = ORBIT_ALIVE;
    r->cpu_cap = 8000;
    r->cpu_free = 4000;
    r->mem_cap = 64;
    r->mem_free = 32;
    r->gpu_cap = 2;
    r->gpu_healthy = 2;
    r->pressure = 10;
    char rack[sizeof r->rack];
    memcpy(rack, c->id, sizeof rack); /* r lies inside c: copy out first */
    snprintf(r->rack, sizeof r->rack, "%s", rack);
    r->present = true;
    return r;
}

static Orbit__NodeRow *wire_row(sub_fx_t *fx, const child_t *c, const crow_t *r)
{
    Orbit__NodeRow *w = orbit_arena_alloc(fx->arena, sizeof *w);
    Orbit__Label **lp = orbit_arena_alloc(fx->arena, sizeof *lp);
    Orbit__Label *l = orbit_arena_alloc(fx->arena, sizeof *l);
    assert_true(w && lp && l);
    orbit__node_row__init(w);
    orbit__label__init(l);
    l->key = "rack";
    l->value = (char *)r->rack;
    lp[0] = l;
    w->node = (char *)r->name;
    w->status = (Orbit__NodeStatus)r->status;
    w->shard = (char *)c->id;
    w->has_cpu_capacity_m = w->has_cpu_free_m = w->has_mem_capacity = w->has_mem_free = true;
    w->has_gpu_capacity = w->has_gpu_healthy = w->has_mem_pressure = true;
    w->cpu_capacity_m = r->cpu_cap;
    w->cpu_free_m = r->cpu_free;
    w->mem_capacity = r->mem_cap;
    w->mem_free = r->mem_free;
    w->gpu_capacity = r->gpu_cap;
    w->gpu_healthy = r->gpu_healthy;
    w->mem_pressure = r->pressure;
    w->has_sampled_ms = true;
    w->sampled_ms = 1234;
    w->n_labels = 1;
    w->labels = lp;
    if (r->ncaps) {
        w->n_capsules = (size_t)r->ncaps;
        w->capsules = orbit_arena_alloc(fx->arena, (size_t)r->ncaps * sizeof *w->capsules);
        assert_non_null(w->capsules);
        for (int i = 0; i < r->ncaps; i++) {
            Orbit__CapsuleHealth *h = orbit_arena_alloc(fx->arena, sizeof *h);
            assert_non_null(h);
            orbit__capsule_health__init(h);
            h->id = (char *)r->caps[i].id;
            h->state = (Orbit__CapsuleState)r->caps[i].state;
            h->has_exit_code = true;
            h->exit_code = r->caps[i].exit_code;
            h->reason = r->caps[i].reason[0] ? (char *)r->caps[i].reason : NULL;
            h->has_since_ms = true;
            h->since_ms = 100 + i;
            w->capsules[i] = h;
        }
    }
    return w;
}

static void add_cap(crow_t *r, const char *id, int state, int32_t exit_code, const char *reason)
{
    assert_true(r->ncaps < 4);
    ccap_t *c = &r->caps[r->ncaps++];
    snprintf(c->id, sizeof c->id, "%s", id);
    c->state = state;
    c->exit_code = exit_code;
    snprintf(c->reason, sizeof c->reason, "%s", reason);
}

/* The summary a child computes over its present rows. */
static void child_summary(const child_t *c, orbit_agg_t *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < c->nrows; i++) {
        const crow_t *r = &c->rows[i];
        /* Rows a child would never produce (injected to test the parent's
         * checks) stay out of its summary. */
        if (!r->present || r->status < 0 || r->status >= ORBIT_STATUS_COUNT || r->cpu_cap < 0 ||
            r->cpu_free < 0 || r->cpu_free > r->cpu_cap || r->mem_free < 0 ||
            r->mem_free > r->mem_cap || r->gpu_healthy > r->gpu_cap)
            continue;
        a->nodes[r->status]++;
        if (r->status != ORBIT_ALIVE && r->status != ORBIT_SUSPECT)
            continue;
        a->cpu_capacity_m += (uint64_t)r->cpu_cap;
        a->cpu_used_m += (uint64_t)(r->cpu_cap - r->cpu_free);
        a->mem_capacity += (uint64_t)r->mem_cap;
        a->mem_used += (uint64_t)(r->mem_cap - r->mem_free);
        a->gpu_capacity += r->gpu_cap;
        a->gpus[ORBIT_GPU_HEALTHY] += r->gpu_healthy;
        a->gpus[ORBIT_GPU_FAILED] += r->gpu_cap - r->gpu_healthy;
        a->pressure_hist[orbit_pressure_bucket(r->pressure)]++;
    }
}

/* Send c's next report: every present row when full, else only the rows
 * named in `only` (a comma-separated list, "" for none). */
static int send_report(sub_fx_t *fx, child_t *c, bool full, bool warming, const char *only,
                       int64_t now)
{
    Orbit__ShardReport r = ORBIT__SHARD_REPORT__INIT;
    Orbit__Summary sum = ORBIT__SUMMARY__INIT;
    orbit_agg_pb_store_t store;
    orbit_agg_t agg;
    child_summary(c, &agg);
    orbit_agg_to_pb(&agg, &sum, &store);
    Orbit__NodeRow *rows[16];
    size_t n = 0;
    for (int i = 0; i < c->nrows; i++) {
        const crow_t *cr = &c->rows[i];
        if (!cr->present)
            continue;
        if (!full) {
            char pattern[40];
            snprintf(pattern, sizeof pattern, ",%s,", cr->name);
            char list[256];
            snprintf(list, sizeof list, ",%s,", only ? only : "");
            if (!strstr(list, pattern))
                continue;
        }
        rows[n++] = wire_row(fx, c, cr);
    }
    Orbit__ShardInfo self = ORBIT__SHARD_INFO__INIT, *selfp[1] = {&self};
    self.id = c->id;
    self.tier = c->tier;
    self.has_reachable = self.reachable = true;
    r.shard = c->id;
    r.tier = c->tier;
    r.incarnation = c->inc;
    r.seq = ++c->seq;
    r.has_full = r.has_warming = r.has_interval_ms = true;
    r.full = full;
    r.warming = warming;
    r.interval_ms = c->interval_ms;
    r.has_topology_epoch = c->epoch > 0;
    r.topology_epoch = c->epoch;
    r.summary = &sum;
    r.n_rows = n;
    r.rows = rows;
    r.n_removed = fx->nremoved;
    r.removed = (char **)fx->removed;
    r.n_shards = fx->ninfos ? fx->ninfos : 1;
    r.shards = fx->ninfos ? fx->infos : selfp;
    fx->nremoved = 0;
    fx->ninfos = 0;
    /* What travels is what a parent decodes: go through the wire. */
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(orbit_wire_encode(ORBIT_MSG_SHARD_REPORT, &r.base, &buf, &len), ORBIT_OK);
    memset(&fx->ack, 0xEE, sizeof fx->ack);
    ProtobufCMessage *decoded = NULL;
    int rc = orbit_subtree_report_frame(fx->t, buf, len, (const uint8_t *)c->id, strlen(c->id), now,
                                        fx->arena, &fx->ack, &decoded);
    free(buf);
    /* The decoded report is handed back (the root records row ages from it). */
    assert_non_null(decoded);
    assert_string_equal(((Orbit__ShardReport *)decoded)->shard, c->id);
    if (rc == ORBIT_OK)
        assert_int_equal(fx->ack.seq, c->seq);
    return rc;
}

static orbit_status_t status_of(sub_fx_t *fx, const char *node)
{
    const orbit_row_t *row = orbit_subtree_row(fx->t, node);
    assert_non_null(row);
    return orbit_subtree_row_status(row);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Names (sorted, comma-joined) and effective statuses of rows changed since gen. */
static void changed_since(sub_fx_t *fx, uint64_t gen, char *out, size_t n)
{
    Orbit__NodeRow **rows = NULL;
    size_t nrows = 0;
    assert_int_equal(orbit_subtree_rows(fx->t, gen, fx->arena, &rows, &nrows), ORBIT_OK);
    char items[16][48];
    assert_true(nrows <= 16);
    for (size_t i = 0; i < nrows; i++) {
        assert_true(protobuf_c_message_check(&rows[i]->base));
        snprintf(items[i], sizeof items[i], "%s:%s", rows[i]->node,
                 orbit_status_name(rows[i]->status));
    }
    qsort(items, nrows, sizeof items[0], cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < nrows; i++) {
        strncat(out, items[i], n - strlen(out) - 1);
        if (i + 1 < nrows)
            strncat(out, ",", n - strlen(out) - 1);
    }
}

#define ASSERT_CHANGED(fx, gen, want)                                                              \
    do {                                                                                           \
        char got_[512];                                                                            \
        changed_since((fx), (gen), got_, sizeof got_);                                             \
        assert_string_equal(got_, (want));                                                         \
    } while (0)

/* ------------------------------------------------------------------ tests */

static void test_new_rejects_bad_name(void **state)
{
    (void)state;
    orbit_subtree_cfg_t cfg = {0};
    assert_null(orbit_subtree_new("", 2, &cfg));
    assert_null(orbit_subtree_new("zone 1", 2, &cfg));
}

static void test_unknown_child_nonfull_resync(void **state)
{
    sub_fx_t *fx = *state;
    child_t *c = add_child(fx, "rack-1", 77);
    add_row(c, "n0");
    /* A child we never heard of sends an incremental report. */
    c->seq = 40;
    assert_int_equal(send_report(fx, c, false, false, "n0", T0), ORBIT_OK);
    assert_true(fx->ack.has_resync && fx->ack.resync);
    assert_int_equal(fx->ack.seq, 41);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 0);
    assert_int_equal(orbit_subtree_stats(fx->t)->resyncs_requested, 1);
    orbit_agg_t sum;
    orbit_subtree_summary(fx->t, &sum);
    assert_int_equal(orbit_agg_total(&sum), 0);
    /* Its full report is taken. */
    assert_int_equal(send_report(fx, c, true, false, NULL, T0 + 10), ORBIT_OK);
    assert_false(fx->ack.has_resync && fx->ack.resync);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 1);
    assert_int_equal(status_of(fx, "n0"), ORBIT_ALIVE);
}

static void test_unknown_child_zero_incarnation_resync(void **state)
{
    sub_fx_t *fx = *state;
    /* Incarnation 0 is a valid value, not "the one we already know". */
    child_t *c = add_child(fx, "rack-0", 0);
    add_row(c, "n0");
    assert_int_equal(send_report(fx, c, false, false, "n0", T0), ORBIT_OK);
    assert_true(fx->ack.has_resync && fx->ack.resync);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 0);
    assert_int_equal(send_report(fx, c, false, false, "n0", T0 + 1), ORBIT_OK);
    assert_true(fx->ack.has_resync && fx->ack.resync);
    assert_int_equal(send_report(fx, c, true, false, NULL, T0 + 2), ORBIT_OK);
    assert_false(fx->ack.has_resync && fx->ack.resync);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 1);
    /* From then on incremental reports are applied. */
    add_row(c, "n1");
    assert_int_equal(send_report(fx, c, false, false, "n1", T0 + 3), ORBIT_OK);
    assert_false(fx->ack.has_resync && fx->ack.resync);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 2);
}

static void test_full_report_creates_rows(void **state)
{
    sub_fx_t *fx = *state;
    child_t *c = add_child(fx, "rack-1", 5);
    add_row(c, "n0");
    add_row(c, "n1")->status = ORBIT_SUSPECT;
    crow_t *r2 = add_row(c, "n2");
    r2->status = ORBIT_DOWN;
    r2->cpu_free = 8000;
    assert_int_equal(send_report(fx, c, true, false, NULL, T0), ORBIT_OK);
    assert_false(fx->ack.resync);
    assert_int_equal(orbit_subtree_children(fx->t), 1);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 3);
    assert_int_equal(orbit_subtree_stats(fx->t)->full_reports, 1);
    assert_int_equal(orbit_subtree_stats(fx->t)->rows_applied, 3);

    const orbit_row_t *row = orbit_subtree_row(fx->t, "n1");
    assert_non_null(row);
    assert_string_equal(row->name, "n1");
    assert_string_equal(row->shard, "rack-1");
    assert_string_equal(row->labels, "rack=rack-1\n");
    assert_int_equal(row->cpu_capacity_m, 8000);
    assert_int_equal(row->cpu_free_m, 4000);
    assert_int_equal(row->gpu_healthy, 2);
    assert_int_equal(row->updated_ms, T0);
    assert_int_equal(orbit_subtree_row_status(row), ORBIT_SUSPECT);
    assert_int_equal(status_of(fx, "n2"), ORBIT_DOWN);
    assert_null(orbit_subtree_row(fx->t, "n9"));

    /* Replies go back where the report came from. */
    const uint8_t *rid = NULL;
    size_t rid_len = 0;
    orbit_subtree_route(row, &rid, &rid_len);
    assert_int_equal(rid_len, 6);
    assert_memory_equal(rid, "rack-1", 6);

    /* The merged summary is the child's. */
    orbit_agg_t got, want;
    orbit_subtree_summary(fx->t, &got);
    child_summary(c, &want);
    assert_true(orbit_agg_equal(&got, &want));
    assert_int_equal(got.nodes[ORBIT_DOWN], 1);

    /* Every row goes up in the zone's own report. */
    ASSERT_CHANGED(fx, 0, "n0:alive,n1:suspect,n2:down");
}

static void test_incremental_report(void **state)
{
    sub_fx_t *fx = *state;
    child_t *c = add_child(fx, "rack-1", 5);
    add_row(c, "n0");
    add_row(c, "n1");
    add_row(c, "n2");
    assert_int_equal(send_report(fx, c, true, false, NULL, T0), ORBIT_OK);
    uint64_t g = orbit_subtree_gen(fx->t);

    add_row(c, "n1")->cpu_free = 100;
    add_row(c, "n3")->status = ORBIT_SUSPECT;
    assert_int_equal(send_report(fx, c, false, false, "n1,n3", T0 + 1000), ORBIT_OK);
    assert_false(fx->ack.resync);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 4);
    assert_int_equal(orbit_subtree_row(fx->t, "n1")->cpu_free_m, 100);
    assert_int_equal(orbit_subtree_row(fx->t, "n1")->updated_ms, T0 + 1000);
    assert_int_equal(orbit_subtree_row(fx->t, "n0")->updated_ms, T0);
    assert_int_equal(status_of(fx, "n3"), ORBIT_SUSPECT);
    ASSERT_CHANGED(fx, g, "n1:alive,n3:suspect");
    orbit_agg_t got, want;
    orbit_subtree_summary(fx->t, &got);
    child_summary(c, &want);
    assert_true(orbit_agg_equal(&got, &want));

    /* A replayed or older report is ignored (and still acknowledged). */
    g = orbit_subtree_gen(fx->t);
    add_row(c, "n1")->cpu_free = 7000;
    c->seq--;
    assert_int_equal(send_report(fx, c, false, false, "n1", T0 + 2000), ORBIT_OK);
    assert_false(fx->ack.resync);
    c->seq -= 2;
    assert_int_equal(send_report(fx, c, true, false, NULL, T0 + 2000), ORBIT_OK);
    assert_int_equal(orbit_subtree_stats(fx->t)->stale_reports, 2);
    assert_int_equal(orbit_subtree_row(fx->t, "n1")->cpu_free_m, 100);
    assert_int_equal(orbit_subtree_gen(fx->t), g);
}

static void test_removed_list(void **state)
{
    sub_fx_t *fx = *state;
    child_t *a = add_child(fx, "rack-1", 5);
    child_t *b = add_child(fx, "rack-2", 6);
    add_row(a, "n0");
    add_row(a, "n1");
    add_row(b, "m0");
    assert_int_equal(send_report(fx, a, true, false, NULL, T0), ORBIT_OK);
    assert_int_equal(send_report(fx, b, true, false, NULL, T0), ORBIT_OK);
    uint64_t g = orbit_subtree_gen(fx->t);

    /* rack-1 says n1 is gone; it cannot remove rack-2's rows, nor unknown ones. */
    add_row(a, "n1")->present = false;
    fx->removed[0] = "n1";
    fx->removed[1] = "m0";
    fx->removed[2] = "never-seen";
    fx->nremoved = 3;
    assert_int_equal(send_report(fx, a, false, false, "", T0 + 1000), ORBIT_OK);
    assert_null(orbit_subtree_row(fx->t, "n1"));
    assert_non_null(orbit_subtree_row(fx->t, "m0"));
    assert_non_null(orbit_subtree_row(fx->t, "n0"));
    assert_int_equal(orbit_subtree_rows_count(fx->t), 2);
    assert_int_equal(orbit_subtree_stats(fx->t)->rows_removed, 1);
    /* A removal moves the generation, and the zone names it in its own
     * incremental reports upward until its parent acknowledges past it. */
    assert_true(orbit_subtree_gen(fx->t) > g);
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(orbit_subtree_removed(fx->t, g, fx->arena, &names, &n), ORBIT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "n1");
    assert_int_equal(orbit_subtree_removed_floor(fx->t), 0);
    orbit_subtree_prune_removed(fx->t, orbit_subtree_gen(fx->t));
    assert_int_equal(orbit_subtree_removed(fx->t, 0, fx->arena, &names, &n), ORBIT_OK);
    assert_int_equal(n, 0);
    /* n0 goes, then comes back before anyone acknowledged: not named. */
    add_row(a, "n0")->present = false;
    fx->removed[0] = "n0";
    fx->nremoved = 1;
    uint64_t g2 = orbit_subtree_gen(fx->t);
    assert_int_equal(send_report(fx, a, false, false, "", T0 + 2000), ORBIT_OK);
    add_row(a, "n0")->present = true;
    assert_int_equal(send_report(fx, a, false, false, "n0", T0 + 3000), ORBIT_OK);
    assert_int_equal(orbit_subtree_removed(fx->t, g2, fx->arena, &names, &n), ORBIT_OK);
    assert_int_equal(n, 0);
}

static void test_full_report_drops_missing_rows(void **state)
{
    sub_fx_t *fx = *state;
    child_t *c = add_child(fx, "rack-1", 5);
    add_row(c, "n0");
    add_row(c, "n1");
    add_row(c, "n2");
    assert_int_equal(send_report(fx, c, true, false, NULL, T0), ORBIT_OK);
    add_row(c, "n1")->present = false;
    add_row(c, "n2")->present = false;
    assert_int_equal(send_report(fx, c, true, false, NULL, T0 + 1000), ORBIT_OK);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 1);
    assert_null(orbit_subtree_row(fx->t, "n1"));
    assert_null(orbit_subtree_row(fx->t, "n2"));
    assert_int_equal(orbit_subtree_stats(fx->t)->rows_removed, 2);
    orbit_agg_t sum;
    orbit_subtree_summary(fx->t, &sum);
    assert_int_equal(orbit_agg_total(&sum), 1);
    assert_int_equal(sum.nodes[ORBIT_UNREACHABLE], 0);
}

static void test_warming_restart_keeps_rows_unreachable(void **state)
{
    sub_fx_t *fx = *state;
    child_t *c = add_child(fx, "rack-1", 5);
    add_row(c, "n0");
    add_row(c, "n1");
    add_row(c, "n2");
    assert_int_equal(send_report(fx, c, true, false, NULL, T0), ORBIT_OK);

    /* The rack shard restarts (nothing on disk): new incarnation, and while
     * its leaves come back it only knows n0. */
    c->inc = 6;
    c->seq = 0;
    add_row(c, "n1")->present = false;
    add_row(c, "n2")->present = false;
    uint64_t g = orbit_subtree_gen(fx->t);
    assert_int_equal(send_report(fx, c, true, true, NULL, T0 + 1000), ORBIT_OK);
    assert_false(fx->ack.resync);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 3);
    assert_int_equal(status_of(fx, "n0"), ORBIT_ALIVE);
    assert_int_equal(status_of(fx, "n1"), ORBIT_UNREACHABLE); /* not down, not gone */
    assert_int_equal(status_of(fx, "n2"), ORBIT_UNREACHABLE);
    ASSERT_CHANGED(fx, g, "n0:alive,n1:unreachable,n2:unreachable");
    orbit_agg_t sum;
    orbit_subtree_summary(fx->t, &sum);
    assert_int_equal(sum.nodes[ORBIT_ALIVE], 1);
    assert_int_equal(sum.nodes[ORBIT_UNREACHABLE], 2);
    assert_int_equal(orbit_agg_total(&sum), 3);

    /* n1's leaf reports again: back to its reported status. */
    add_row(c, "n1")->present = true;
    add_row(c, "n1")->status = ORBIT_SUSPECT;
    g = orbit_subtree_gen(fx->t);
    assert_int_equal(send_report(fx, c, true, true, NULL, T0 + 2000), ORBIT_OK);
    assert_int_equal(status_of(fx, "n1"), ORBIT_SUSPECT);
    assert_int_equal(status_of(fx, "n2"), ORBIT_UNREACHABLE);
    orbit_subtree_summary(fx->t, &sum);
    assert_int_equal(sum.nodes[ORBIT_SUSPECT], 1);
    assert_int_equal(sum.nodes[ORBIT_UNREACHABLE], 1);
    assert_int_equal(orbit_agg_total(&sum), 3);

    /* Warm-up over: n2 never came back, so it is gone — also when the
     * first report after warm-up is an incremental one (the rack shard
     * only sends full reports while warming). */
    assert_int_equal(send_report(fx, c, false, false, "", T0 + 3000), ORBIT_OK);
    assert_null(orbit_subtree_row(fx->t, "n2"));
    assert_int_equal(orbit_subtree_rows_count(fx->t), 2);
    orbit_subtree_summary(fx->t, &sum);
    assert_int_equal(sum.nodes[ORBIT_UNREACHABLE], 0);
    assert_int_equal(orbit_agg_total(&sum), 2);
}

static void test_warming_ends_with_full_report(void **state)
{
    sub_fx_t *fx = *state;
    child_t *c = add_child(fx, "rack-1", 5);
    add_row(c, "n0");
    add_row(c, "n1");
    assert_int_equal(send_report(fx, c, true, false, NULL, T0), ORBIT_OK);
    c->inc = 9;
    c->seq = 0;
    add_row(c, "n1")->present = false;
    assert_int_equal(send_report(fx, c, true, true, NULL, T0 + 1000), ORBIT_OK);
    assert_int_equal(status_of(fx, "n1"), ORBIT_UNREACHABLE);
    assert_int_equal(send_report(fx, c, true, false, NULL, T0 + 2000), ORBIT_OK);
    assert_null(orbit_subtree_row(fx->t, "n1"));
    assert_int_equal(status_of(fx, "n0"), ORBIT_ALIVE);
}

static void test_silent_child_unreachable(void **state)
{
    sub_fx_t *fx = *state;
    child_t *a = add_child(fx, "rack-1", 5);
    child_t *b = add_child(fx, "rack-2", 6);
    add_row(a, "a0");
    add_row(a, "a1")->status = ORBIT_DOWN;
    add_row(b, "b0");
    b->interval_ms = 4000;
    assert_int_equal(send_report(fx, a, true, false, NULL, T0), ORBIT_OK);
    assert_int_equal(send_report(fx, b, true, false, NULL, T0), ORBIT_OK);

    /* 150 % of rack-1's 1 s interval. */
    uint64_t g = orbit_subtree_gen(fx->t);
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 1500), 0);
    assert_int_equal(orbit_subtree_gen(fx->t), g);
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 1501), 1);
    assert_int_equal(status_of(fx, "a0"), ORBIT_UNREACHABLE);
    assert_int_equal(status_of(fx, "a1"), ORBIT_UNREACHABLE); /* down -> unreachable, too */
    assert_int_equal(status_of(fx, "b0"), ORBIT_ALIVE);
    /* The stored row keeps what the child said, for when it comes back. */
    assert_int_equal(orbit_subtree_row(fx->t, "a1")->status, ORBIT_DOWN);
    ASSERT_CHANGED(fx, g, "a0:unreachable,a1:unreachable");
    orbit_agg_t sum, want_b;
    orbit_subtree_summary(fx->t, &sum);
    child_summary(b, &want_b);
    assert_int_equal(sum.nodes[ORBIT_UNREACHABLE], 2);
    assert_int_equal(sum.nodes[ORBIT_ALIVE], 1);
    assert_int_equal(sum.nodes[ORBIT_DOWN], 0); /* never down because the observer failed */
    assert_int_equal(sum.cpu_capacity_m, want_b.cpu_capacity_m);
    /* Still silent: nothing more changes. */
    g = orbit_subtree_gen(fx->t);
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 3000), 0);
    assert_int_equal(orbit_subtree_gen(fx->t), g);

    /* rack-2 goes silent by its own (longer) interval. */
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 6000), 0);
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 6001), 1);
    assert_int_equal(status_of(fx, "b0"), ORBIT_UNREACHABLE);

    /* rack-1 reports again (an incremental report with no rows): its rows
     * are reachable and back to their reported status, and go up again. */
    g = orbit_subtree_gen(fx->t);
    assert_int_equal(send_report(fx, a, false, false, "", T0 + 7000), ORBIT_OK);
    assert_int_equal(status_of(fx, "a0"), ORBIT_ALIVE);
    assert_int_equal(status_of(fx, "a1"), ORBIT_DOWN);
    ASSERT_CHANGED(fx, g, "a0:alive,a1:down");
    orbit_subtree_summary(fx->t, &sum);
    assert_int_equal(sum.nodes[ORBIT_UNREACHABLE], 1); /* b0 */
    assert_int_equal(sum.nodes[ORBIT_DOWN], 1);
    assert_int_equal(sum.nodes[ORBIT_ALIVE], 1);
}

static void test_silent_pct_configurable(void **state)
{
    sub_fx_t *fx = *state;
    orbit_subtree_destroy(&fx->t);
    orbit_subtree_cfg_t cfg = {.silent_pct = 300};
    fx->t = orbit_subtree_new("zone-1", 2, &cfg);
    assert_non_null(fx->t);
    child_t *a = add_child(fx, "rack-1", 5);
    a->interval_ms = 200;
    add_row(a, "a0");
    assert_int_equal(send_report(fx, a, true, false, NULL, T0), ORBIT_OK);
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 600), 0);
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 601), 1);
    assert_int_equal(status_of(fx, "a0"), ORBIT_UNREACHABLE);
}

static void test_invalid_rows_skipped(void **state)
{
    sub_fx_t *fx = *state;
    child_t *c = add_child(fx, "rack-1", 5);
    add_row(c, "ok0");
    add_row(c, "bad0")->cpu_free = 9000; /* more free than capacity */
    add_row(c, "bad1")->mem_free = -1;
    add_row(c, "bad2")->status = 9;
    add_row(c, "bad3")->gpu_healthy = 3; /* of 2 */
    add_row(c, "bad4")->pressure = 10001;
    add_row(c, "bad5")->cpu_cap = -5;
    add_row(c, "ok1");
    snprintf(add_row(c, "eqval")->rack, 32, "r=1"); /* '=' in a value is fine */
    assert_int_equal(send_report(fx, c, true, false, NULL, T0), ORBIT_OK);
    assert_int_equal(orbit_subtree_stats(fx->t)->invalid_rows, 6);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 3);
    assert_non_null(orbit_subtree_row(fx->t, "ok0"));
    assert_non_null(orbit_subtree_row(fx->t, "ok1"));
    assert_string_equal(orbit_subtree_row(fx->t, "eqval")->labels, "rack=r=1\n");
    assert_null(orbit_subtree_row(fx->t, "bad0"));
    assert_null(orbit_subtree_row(fx->t, "bad2"));
}

static void test_invalid_row_names_and_labels(void **state)
{
    sub_fx_t *fx = *state;
    /* Hand-built rows: the child model cannot express these. */
    Orbit__Label eqkey = ORBIT__LABEL__INIT, empty = ORBIT__LABEL__INIT;
    eqkey.key = "ra=ck";
    eqkey.value = "r1";
    empty.key = "rack";
    empty.value = "";
    Orbit__Label *l1[1] = {&eqkey}, *l2[1] = {&empty};
    Orbit__NodeRow rows[5];
    Orbit__NodeRow *rp[5];
    for (int i = 0; i < 5; i++) {
        orbit__node_row__init(&rows[i]);
        rows[i].node = "fine";
        rows[i].shard = "rack-1";
        rows[i].status = ORBIT__NODE_STATUS__ALIVE;
        rp[i] = &rows[i];
    }
    rows[0].node = "bad name";
    rows[1].shard = "";
    rows[2].n_labels = 1;
    rows[2].labels = l1;
    rows[3].n_labels = 1;
    rows[3].labels = l2;
    uint64_t zeros[4] = {1, 0, 0, 0};
    Orbit__Summary sum = ORBIT__SUMMARY__INIT;
    sum.n_nodes_by_status = 4;
    sum.nodes_by_status = zeros;
    Orbit__ShardReport r = ORBIT__SHARD_REPORT__INIT;
    r.shard = "rack-1";
    r.tier = 1;
    r.incarnation = 3;
    r.seq = 1;
    r.has_full = r.full = true;
    r.summary = &sum;
    r.n_rows = 5;
    r.rows = rp;
    assert_int_equal(orbit_subtree_report(fx->t, &r, (const uint8_t *)"x", 1, T0, &fx->ack),
                     ORBIT_OK);
    assert_int_equal(orbit_subtree_stats(fx->t)->invalid_rows, 4);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 1);
    assert_non_null(orbit_subtree_row(fx->t, "fine"));
}

static void test_invalid_report_rejected(void **state)
{
    sub_fx_t *fx = *state;
    uint64_t counts[5] = {1, 0, 0, 0, 0};
    Orbit__Summary sum = ORBIT__SUMMARY__INIT;
    sum.n_nodes_by_status = 4;
    sum.nodes_by_status = counts;
    Orbit__ShardReport r = ORBIT__SHARD_REPORT__INIT;
    r.shard = "rack-1";
    r.tier = 1;
    r.incarnation = 3;
    r.seq = 1;
    r.has_full = r.full = true;
    r.summary = &sum;
    const uint8_t *rid = (const uint8_t *)"rid";
    int rejected = 0;
#define REJECT()                                                                                   \
    do {                                                                                           \
        assert_int_equal(orbit_subtree_report(fx->t, &r, rid, 3, T0, &fx->ack), ORBIT_EINVAL);     \
        rejected++;                                                                                \
    } while (0)

    sum.has_mem_capacity = sum.has_mem_used = true;
    sum.mem_capacity = 10;
    sum.mem_used = 11; /* more used than there is */
    REJECT();
    sum.mem_used = 10;
    sum.n_nodes_by_status = 5; /* from a newer writer we cannot read */
    REJECT();
    sum.n_nodes_by_status = 4;
    r.summary = NULL;
    REJECT();
    r.summary = &sum;
    r.shard = "rack 1";
    REJECT();
    r.shard = "zone-1"; /* ourselves */
    REJECT();
    r.shard = "rack-1";
    r.tier = 0;
    REJECT();
    r.tier = 2; /* a peer, not a child */
    REJECT();
    r.tier = 3;
    REJECT();
    r.tier = 1;
    r.has_interval_ms = true;
    r.interval_ms = 5;
    REJECT();
    r.interval_ms = 3600 * 1000 + 1;
    REJECT();
#undef REJECT
    assert_int_equal(orbit_subtree_stats(fx->t)->invalid_reports, (uint64_t)rejected);
    assert_int_equal(orbit_subtree_stats(fx->t)->reports, 0);
    assert_int_equal(orbit_subtree_children(fx->t), 0);
    /* The same report, fixed, is accepted. */
    r.interval_ms = 1000;
    assert_int_equal(orbit_subtree_report(fx->t, &r, rid, 3, T0, &fx->ack), ORBIT_OK);
    assert_int_equal(orbit_subtree_children(fx->t), 1);
}

static void test_tiers(void **state)
{
    sub_fx_t *fx = *state;
    /* A zone (tier 2) takes rack shards only. */
    child_t *rack = add_child(fx, "rack-1", 1);
    assert_int_equal(send_report(fx, rack, true, false, NULL, T0), ORBIT_OK);
    child_t *peer = add_child(fx, "zone-2", 1);
    peer->tier = 2;
    assert_int_equal(send_report(fx, peer, true, false, NULL, T0), ORBIT_EINVAL);
    peer->tier = 3;
    assert_int_equal(send_report(fx, peer, true, false, NULL, T0), ORBIT_EINVAL);
    assert_int_equal(orbit_subtree_children(fx->t), 1);

    /* The root (tier 0) takes any tier. */
    orbit_subtree_destroy(&fx->t);
    orbit_subtree_cfg_t cfg = {0};
    fx->t = orbit_subtree_new("root", 0, &cfg);
    assert_non_null(fx->t);
    rack->seq = peer->seq = 0;
    assert_int_equal(send_report(fx, rack, true, false, NULL, T0), ORBIT_OK);
    assert_int_equal(send_report(fx, peer, true, false, NULL, T0), ORBIT_OK);
    peer->tier = 7;
    assert_int_equal(send_report(fx, peer, true, false, NULL, T0), ORBIT_OK);
    assert_int_equal(orbit_subtree_children(fx->t), 2);
}

static void test_child_restart_new_incarnation(void **state)
{
    sub_fx_t *fx = *state;
    child_t *c = add_child(fx, "rack-1", 100);
    add_row(c, "n0");
    add_row(c, "n1");
    for (int i = 0; i < 5; i++)
        assert_int_equal(send_report(fx, c, i == 0, false, i ? "" : NULL, T0 + i), ORBIT_OK);

    /* Restarted: a new incarnation, seq from 1 again. Incremental reports
     * are answered with a resync, and the rows we have stay meanwhile. */
    c->inc = 200;
    c->seq = 0;
    add_row(c, "n1")->cpu_free = 1;
    assert_int_equal(send_report(fx, c, false, false, "n1", T0 + 100), ORBIT_OK);
    assert_true(fx->ack.resync);
    assert_int_equal(orbit_subtree_row(fx->t, "n1")->cpu_free_m, 4000);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 2);
    /* The full report (seq 2, lower than the old 5) is applied. */
    add_row(c, "n0")->present = false;
    add_row(c, "n2");
    assert_int_equal(send_report(fx, c, true, false, NULL, T0 + 200), ORBIT_OK);
    assert_false(fx->ack.resync);
    assert_int_equal(orbit_subtree_row(fx->t, "n1")->cpu_free_m, 1);
    assert_null(orbit_subtree_row(fx->t, "n0"));
    assert_non_null(orbit_subtree_row(fx->t, "n2"));
    /* Reports of the old incarnation, still in flight from the dead
     * process, are refused outright — full ones too — and counted. */
    c->inc = 100;
    c->seq = 10;
    uint64_t stale = orbit_subtree_stats(fx->t)->stale_reports;
    assert_int_equal(send_report(fx, c, false, false, "n1", T0 + 300), ORBIT_EINVAL);
    add_row(c, "n0")->present = true;
    assert_int_equal(send_report(fx, c, true, false, NULL, T0 + 301), ORBIT_EINVAL);
    assert_int_equal(orbit_subtree_stats(fx->t)->stale_reports, stale + 2);
    assert_null(orbit_subtree_row(fx->t, "n0"));
    assert_int_equal(orbit_subtree_row(fx->t, "n1")->cpu_free_m, 1);
    assert_int_equal(orbit_subtree_stats(fx->t)->resyncs_requested, 1);
}

static void test_node_moves_between_children(void **state)
{
    sub_fx_t *fx = *state;
    child_t *a = add_child(fx, "rack-1", 1);
    child_t *b = add_child(fx, "rack-2", 2);
    add_row(a, "mover");
    add_row(a, "stay");
    assert_int_equal(send_report(fx, a, true, false, NULL, T0), ORBIT_OK);
    /* The node re-homes to rack-2 (topology change). */
    add_row(b, "mover");
    assert_int_equal(send_report(fx, b, true, false, NULL, T0 + 10), ORBIT_OK);
    assert_string_equal(orbit_subtree_row(fx->t, "mover")->shard, "rack-2");
    /* rack-1's next full report no longer has it: rack-2's row stays. */
    add_row(a, "mover")->present = false;
    assert_int_equal(send_report(fx, a, true, false, NULL, T0 + 20), ORBIT_OK);
    assert_non_null(orbit_subtree_row(fx->t, "mover"));
    assert_string_equal(orbit_subtree_row(fx->t, "mover")->shard, "rack-2");
    /* rack-1 going silent does not make it unreachable either. */
    assert_int_equal(send_report(fx, b, false, false, "", T0 + 1000), ORBIT_OK);
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 1600), 1);
    assert_int_equal(status_of(fx, "stay"), ORBIT_UNREACHABLE);
    assert_int_equal(status_of(fx, "mover"), ORBIT_ALIVE);
}

static void test_shards_list(void **state)
{
    sub_fx_t *fx = *state;
    orbit_subtree_destroy(&fx->t);
    orbit_subtree_cfg_t cfg = {0};
    fx->t = orbit_subtree_new("root", 0, &cfg);
    assert_non_null(fx->t);

    /* A zone reporting itself and its two racks (one of them silent). */
    child_t *zone = add_child(fx, "zone-1", 1);
    zone->tier = 2;
    Orbit__ShardInfo zi = ORBIT__SHARD_INFO__INIT, r1 = ORBIT__SHARD_INFO__INIT,
                     r2 = ORBIT__SHARD_INFO__INIT;
    zi.id = "zone-1";
    zi.tier = 2;
    zi.has_reachable = zi.reachable = true;
    r1.id = "rack-1";
    r1.tier = 1;
    r1.parent = "zone-1";
    r1.has_reachable = r1.reachable = true;
    r1.has_last_report_ms_ago = true;
    r1.last_report_ms_ago = 300;
    r2.id = "rack-2";
    r2.tier = 1;
    r2.parent = "zone-1";
    r2.has_reachable = true;
    r2.reachable = false;
    Orbit__ShardInfo *infos[3] = {&zi, &r1, &r2};
    fx->infos = infos;
    fx->ninfos = 3;
    assert_int_equal(send_report(fx, zone, true, false, NULL, T0), ORBIT_OK);
    /* And a rack reporting directly. */
    child_t *rack = add_child(fx, "rack-9", 3);
    assert_int_equal(send_report(fx, rack, true, false, NULL, T0 + 100), ORBIT_OK);

    /* The caller's own entry comes first and is kept. */
    Orbit__ShardInfo me = ORBIT__SHARD_INFO__INIT, *mine[1] = {&me};
    me.id = "root";
    Orbit__ShardInfo **list = mine;
    size_t n = 1;
    assert_int_equal(orbit_subtree_shards(fx->t, T0 + 400, fx->arena, &list, &n), ORBIT_OK);
    assert_int_equal(n, 5);
    assert_string_equal(list[0]->id, "root");
    int zpos = -1, r9 = -1;
    for (size_t i = 1; i < n; i++) {
        if (!strcmp(list[i]->id, "zone-1"))
            zpos = (int)i;
        if (!strcmp(list[i]->id, "rack-9"))
            r9 = (int)i;
    }
    assert_true(zpos > 0 && r9 > 0);
    /* Each child first, then its descendants, in its order. */
    assert_string_equal(list[zpos + 1]->id, "rack-1");
    assert_string_equal(list[zpos + 2]->id, "rack-2");
    assert_string_equal(list[zpos]->parent, "root");
    assert_int_equal(list[zpos]->last_report_ms_ago, 400);
    assert_true(list[zpos]->reachable);
    assert_true(list[zpos + 1]->reachable);
    assert_false(list[zpos + 2]->reachable);
    /* A descendant's age grows with the age of the report that carried it. */
    assert_int_equal(list[zpos + 1]->last_report_ms_ago, 700);
    assert_string_equal(list[zpos + 1]->parent, "zone-1");
    assert_string_equal(list[r9]->parent, "root");
    assert_int_equal(list[r9]->last_report_ms_ago, 300);
    assert_int_equal(list[r9]->tier, 1);

    /* The zone goes silent: it and everything under it is unreachable. */
    orbit_subtree_tick(fx->t, T0 + 1550);
    list = mine;
    n = 1;
    assert_int_equal(orbit_subtree_shards(fx->t, T0 + 1550, fx->arena, &list, &n), ORBIT_OK);
    assert_int_equal(n, 5);
    for (size_t i = 1; i < n; i++) {
        bool under_zone = !strcmp(list[i]->id, "zone-1") || !strcmp(list[i]->id, "rack-1") ||
                          !strcmp(list[i]->id, "rack-2");
        assert_true(list[i]->has_reachable);
        if (under_zone)
            assert_false(list[i]->reachable);
        else
            assert_true(list[i]->reachable);
    }
}

static void test_report_frame_counters(void **state)
{
    sub_fx_t *fx = *state;
    Orbit__ReportAck notreport = ORBIT__REPORT_ACK__INIT;
    notreport.seq = 1;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(orbit_wire_encode(ORBIT_MSG_REPORT_ACK, &notreport.base, &buf, &len),
                     ORBIT_OK);
    const uint8_t rid[] = "r";
    assert_int_equal(
        orbit_subtree_report_frame(fx->t, buf, len, rid, 1, T0, fx->arena, &fx->ack, NULL),
        ORBIT_ETYPE);
    assert_int_equal(
        orbit_subtree_report_frame(fx->t, buf, 2, rid, 1, T0, fx->arena, &fx->ack, NULL),
        ORBIT_ETRUNC);
    buf[0] = 0;
    assert_int_equal(
        orbit_subtree_report_frame(fx->t, buf, len, rid, 1, T0, fx->arena, &fx->ack, NULL),
        ORBIT_EMAGIC);
    buf[0] = ORBIT_WIRE_MAGIC;
    buf[1] = 3;
    assert_int_equal(
        orbit_subtree_report_frame(fx->t, buf, len, rid, 1, T0, fx->arena, &fx->ack, NULL),
        ORBIT_EVERSION);
    buf[1] = ORBIT_WIRE_MAJOR;
    buf[3] = ORBIT_MSG_SHARD_REPORT; /* a report ack's body is no report */
    assert_int_equal(
        orbit_subtree_report_frame(fx->t, buf, len, rid, 1, T0, fx->arena, &fx->ack, NULL),
        ORBIT_EDECODE);
    free(buf);
    const orbit_subtree_stats_t *s = orbit_subtree_stats(fx->t);
    assert_int_equal(s->bad_type, 1);
    assert_int_equal(s->bad_envelope, 2);
    assert_int_equal(s->bad_version, 1);
    assert_int_equal(s->bad_decode, 1);
    assert_int_equal(s->reports, 0);
    /* A good one passes (and is counted as a report). */
    child_t *c = add_child(fx, "rack-1", 1);
    assert_int_equal(send_report(fx, c, true, false, NULL, T0), ORBIT_OK);
    assert_int_equal(s->reports, 1);
}

static void test_urgent_changes(void **state)
{
    sub_fx_t *fx = *state;
    child_t *a = add_child(fx, "rack-1", 1);
    add_row(a, "a0");
    assert_false(orbit_subtree_take_urgent(fx->t));
    /* A (re)started child's full report goes up at once, once. */
    assert_int_equal(send_report(fx, a, true, false, NULL, T0), ORBIT_OK);
    assert_true(orbit_subtree_take_urgent(fx->t));
    assert_false(orbit_subtree_take_urgent(fx->t));
    /* An ordinary incremental report can wait for the interval. */
    add_row(a, "a0")->cpu_free = 10;
    assert_int_equal(send_report(fx, a, false, false, "a0", T0 + 1000), ORBIT_OK);
    assert_false(orbit_subtree_take_urgent(fx->t));
    /* Going silent and coming back cannot. */
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 2600), 1);
    assert_true(orbit_subtree_take_urgent(fx->t));
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 2700), 0);
    assert_false(orbit_subtree_take_urgent(fx->t));
    assert_int_equal(send_report(fx, a, false, false, "", T0 + 3000), ORBIT_OK);
    assert_true(orbit_subtree_take_urgent(fx->t));
    assert_false(orbit_subtree_take_urgent(fx->t));
}

static bool count_rows(const orbit_row_t *row, void *ctx)
{
    (void)row;
    return ++*(int *)ctx < 2; /* stop after two */
}

static void test_foreach_stops_early(void **state)
{
    sub_fx_t *fx = *state;
    child_t *c = add_child(fx, "rack-1", 1);
    for (int i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof name, "n%d", i);
        add_row(c, name);
    }
    assert_int_equal(send_report(fx, c, true, false, NULL, T0), ORBIT_OK);
    int seen = 0;
    orbit_subtree_foreach(fx->t, count_rows, &seen);
    assert_int_equal(seen, 2);
}

static void test_rows_keep_capsules(void **state)
{
    sub_fx_t *fx = *state;
    child_t *c = add_child(fx, "rack-1", 5);
    crow_t *a = add_row(c, "a0");
    add_cap(a, "web/front/1", ORBIT_CAPSULE_RUNNING, 0, "");
    add_cap(a, "web/front/0", ORBIT_CAPSULE_FAILED, 0, "command not found: nginx");
    add_row(c, "a1");
    assert_int_equal(send_report(fx, c, true, false, NULL, T0), ORBIT_OK);
    const orbit_row_t *row = orbit_subtree_row(fx->t, "a0");
    assert_non_null(row);
    assert_int_equal(row->ncapsules, 2);
    assert_string_equal(row->capsules[0].id, "web/front/0"); /* sorted */
    assert_int_equal(row->capsules[0].state, ORBIT_CAPSULE_FAILED);
    assert_string_equal(row->capsules[0].reason, "command not found: nginx");
    assert_int_equal(row->capsules[0].since_ms, 101);
    assert_string_equal(row->capsules[1].id, "web/front/1");
    row = orbit_subtree_row(fx->t, "a1");
    assert_int_equal(row->ncapsules, 0);
    assert_null(row->capsules); /* no capsules, no heap */

    /* Re-emitted upward (a zone shard forwards them to its parent). */
    Orbit__NodeRow **rows = NULL;
    size_t nrows = 0;
    assert_int_equal(orbit_subtree_rows(fx->t, 0, fx->arena, &rows, &nrows), ORBIT_OK);
    assert_int_equal(nrows, 2);
    for (size_t i = 0; i < nrows; i++) {
        assert_true(protobuf_c_message_check(&rows[i]->base));
        if (strcmp(rows[i]->node, "a0")) {
            assert_int_equal(rows[i]->n_capsules, 0);
            continue;
        }
        assert_int_equal(rows[i]->n_capsules, 2);
        assert_string_equal(rows[i]->capsules[0]->id, "web/front/0");
        assert_int_equal(rows[i]->capsules[0]->state, ORBIT__CAPSULE_STATE__CAPSULE_FAILED);
        assert_string_equal(rows[i]->capsules[0]->reason, "command not found: nginx");
        assert_null(rows[i]->capsules[1]->reason);
    }

    /* Replaced whole by the next version of the row. */
    a->ncaps = 0;
    add_cap(a, "web/front/1", ORBIT_CAPSULE_EXITED, 3, "");
    assert_int_equal(send_report(fx, c, false, false, "a0", T0 + 100), ORBIT_OK);
    row = orbit_subtree_row(fx->t, "a0");
    assert_int_equal(row->ncapsules, 1);
    assert_int_equal(row->capsules[0].state, ORBIT_CAPSULE_EXITED);
    assert_int_equal(row->capsules[0].exit_code, 3);
    /* Emptied by a row without any. */
    a->ncaps = 0;
    assert_int_equal(send_report(fx, c, false, false, "a0", T0 + 200), ORBIT_OK);
    row = orbit_subtree_row(fx->t, "a0");
    assert_int_equal(row->ncapsules, 0);
    assert_null(row->capsules);
    /* A row with capsules removed by its child frees them (ASan checks). */
    add_cap(a, "web/front/2", ORBIT_CAPSULE_STARTING, 0, "");
    assert_int_equal(send_report(fx, c, false, false, "a0", T0 + 300), ORBIT_OK);
    assert_int_equal(orbit_subtree_row(fx->t, "a0")->ncapsules, 1);
    a->present = false;
    assert_int_equal(send_report(fx, c, true, false, NULL, T0 + 400), ORBIT_OK);
    assert_null(orbit_subtree_row(fx->t, "a0"));
    /* Rows left holding capsules are freed with the table (teardown). */
    add_cap(add_row(c, "a2"), "batch/etl/0", ORBIT_CAPSULE_RUNNING, 0, "");
    assert_int_equal(send_report(fx, c, false, false, "a2", T0 + 500), ORBIT_OK);
    assert_int_equal(orbit_subtree_stats(fx->t)->invalid_rows, 0);
}

static void test_invalid_capsule_rows_rejected(void **state)
{
    sub_fx_t *fx = *state;
    child_t *c = add_child(fx, "rack-1", 5);
    crow_t *keep = add_row(c, "keep");
    add_cap(keep, "m/x/0", ORBIT_CAPSULE_RUNNING, 0, "");
    add_cap(add_row(c, "ok"), "m/x/1", ORBIT_CAPSULE_STOPPED, 0, "stopped");
    assert_int_equal(send_report(fx, c, true, false, NULL, T0), ORBIT_OK);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 2);

    crow_t *r;
    r = add_row(c, "dup");
    add_cap(r, "m/x/2", ORBIT_CAPSULE_RUNNING, 0, "");
    add_cap(r, "m/x/2", ORBIT_CAPSULE_EXITED, 0, "");
    add_cap(add_row(c, "state"), "m/x/3", 6, 0, "");
    add_cap(add_row(c, "idchar"), "m x 4", ORBIT_CAPSULE_RUNNING, 0, "");
    add_cap(add_row(c, "idempty"), "", ORBIT_CAPSULE_RUNNING, 0, "");
    char longid[ORBIT_CAPSULE_ID_MAX + 1];
    memset(longid, 'i', ORBIT_CAPSULE_ID_MAX);
    longid[ORBIT_CAPSULE_ID_MAX] = '\0';
    add_cap(add_row(c, "idlong"), longid, ORBIT_CAPSULE_RUNNING, 0, "");
    char longreason[ORBIT_CAPSULE_REASON_MAX + 1];
    memset(longreason, 'r', ORBIT_CAPSULE_REASON_MAX);
    longreason[ORBIT_CAPSULE_REASON_MAX] = '\0';
    add_cap(add_row(c, "reason"), "m/x/5", ORBIT_CAPSULE_FAILED, 0, longreason);
    add_cap(add_row(c, "newline"), "m/x/6", ORBIT_CAPSULE_FAILED, 0, "a\nb");
    /* The kept row's new version is invalid: the old one stays. */
    keep->caps[0].state = -1;
    assert_int_equal(send_report(fx, c, false, false,
                                 "keep,dup,state,idchar,idempty,idlong,reason,newline", T0 + 100),
                     ORBIT_OK);
    assert_int_equal(orbit_subtree_stats(fx->t)->invalid_rows, 8);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 2);
    const orbit_row_t *row = orbit_subtree_row(fx->t, "keep");
    assert_int_equal(row->ncapsules, 1);
    assert_int_equal(row->capsules[0].state, ORBIT_CAPSULE_RUNNING);
    assert_null(orbit_subtree_row(fx->t, "dup"));
    /* The longest id and reason that fit are fine. */
    longid[ORBIT_CAPSULE_ID_MAX - 1] = '\0';
    longreason[ORBIT_CAPSULE_REASON_MAX - 1] = '\0';
    snprintf(add_row(c, "idlong")->caps[0].id, sizeof r->caps[0].id, "%s", longid);
    snprintf(add_row(c, "reason")->caps[0].reason, sizeof r->caps[0].reason, "%s", longreason);
    assert_int_equal(send_report(fx, c, false, false, "idlong,reason", T0 + 200), ORBIT_OK);
    assert_int_equal(orbit_subtree_stats(fx->t)->invalid_rows, 8);
    assert_int_equal(strlen(orbit_subtree_row(fx->t, "reason")->capsules[0].reason),
                     ORBIT_CAPSULE_REASON_MAX - 1);
}

/* ------------------------------------------------------------ leaving */

static void *dup_str(const void *s)
{
    return strdup(s);
}

static void free_str(void **p)
{
    free(*p);
    *p = NULL;
}

/* Give the table a topology of epoch that places the children in ids (a
 * comma-separated list, "" for none) here. */
static void declare(sub_fx_t *fx, uint64_t epoch, const char *ids)
{
    zlistx_t *l = zlistx_new();
    assert_non_null(l);
    zlistx_set_duplicator(l, dup_str);
    zlistx_set_destructor(l, free_str);
    char copy[128];
    snprintf(copy, sizeof copy, "%s", ids);
    for (char *save = NULL, *id = strtok_r(copy, ",", &save); id; id = strtok_r(NULL, ",", &save))
        assert_non_null(zlistx_add_end(l, id));
    orbit_subtree_set_topology(fx->t, epoch, &l);
    assert_null(l);
}

/* Ids of the children in the shard listing, sorted and comma-joined. */
static void listed_children(sub_fx_t *fx, char *out, size_t n)
{
    Orbit__ShardInfo **infos = NULL;
    size_t ninfos = 0;
    assert_int_equal(orbit_subtree_shards(fx->t, T0, fx->arena, &infos, &ninfos), ORBIT_OK);
    char items[8][32];
    assert_true(ninfos <= 8);
    for (size_t i = 0; i < ninfos; i++)
        snprintf(items[i], sizeof items[i], "%s", infos[i]->id);
    qsort(items, ninfos, sizeof items[0], cmp_str);
    out[0] = '\0';
    for (size_t i = 0, used = 0; i < ninfos; i++) {
        int w = snprintf(out + used, n - used, "%s%s", i ? "," : "", items[i]);
        assert_true(w > 0 && (size_t)w < n - used);
        used += (size_t)w;
    }
}

/* A drained shard leaves the topology, sends its last report and stops: once
 * silent, the parent drops it with the rows it still owned, names them
 * removed upstream, and its stale summary no longer counts. */
static void test_departed_child_dropped(void **state)
{
    sub_fx_t *fx = *state;
    child_t *a = add_child(fx, "rack-1", 5);
    child_t *b = add_child(fx, "rack-2", 6);
    a->epoch = b->epoch = 10;
    declare(fx, 10, "rack-1,rack-2");
    add_row(a, "a0");
    add_row(b, "b0");
    add_row(b, "b1");
    assert_int_equal(send_report(fx, a, true, false, NULL, T0), ORBIT_OK);
    assert_int_equal(send_report(fx, b, true, false, NULL, T0), ORBIT_OK);
    /* b1's rack moves to rack-1 (epoch 11); rack-1 reports it first, and
     * rack-2's last report (epoch 11) still counts it: it has not yet
     * noticed b1's silence. */
    a->epoch = b->epoch = 11;
    add_row(a, "b1");
    assert_int_equal(send_report(fx, a, false, false, "b1", T0 + 100), ORBIT_OK);
    assert_int_equal(send_report(fx, b, false, false, "", T0 + 200), ORBIT_OK);
    assert_string_equal(orbit_subtree_row(fx->t, "b1")->shard, "rack-1");

    /* The ShardLeave of rack-2 (epoch 12). While rack-2 is still heard
     * from, it stays. */
    declare(fx, 12, "rack-1");
    a->epoch = 12;
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 1000), 0);
    assert_int_equal(orbit_subtree_children(fx->t), 2);
    orbit_agg_t sum;
    orbit_subtree_summary(fx->t, &sum);
    assert_int_equal(sum.nodes[ORBIT_ALIVE], 4); /* b1 twice: rack-2's summary is stale */

    /* rack-2 goes silent: dropped at once, with b0 (still its own); b1 stays
     * with rack-1. */
    assert_int_equal(send_report(fx, a, false, false, "", T0 + 1600), ORBIT_OK);
    (void)orbit_subtree_take_urgent(fx->t);
    uint64_t g = orbit_subtree_gen(fx->t);
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 1701), 1);
    assert_int_equal(orbit_subtree_children(fx->t), 1);
    assert_int_equal(orbit_subtree_stats(fx->t)->children_dropped, 1);
    assert_true(orbit_subtree_take_urgent(fx->t));
    assert_null(orbit_subtree_row(fx->t, "b0"));
    assert_int_equal(status_of(fx, "b1"), ORBIT_ALIVE);
    assert_int_equal(status_of(fx, "a0"), ORBIT_ALIVE);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 2);
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(orbit_subtree_removed(fx->t, g, fx->arena, &names, &n), ORBIT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "b0");
    orbit_agg_t want;
    orbit_subtree_summary(fx->t, &sum);
    child_summary(a, &want);
    assert_memory_equal(&sum, &want, sizeof sum); /* nothing of rack-2 left */
    char listed[128];
    listed_children(fx, listed, sizeof listed);
    assert_string_equal(listed, "rack-1");
    /* Nothing more to drop. */
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 5000), 1); /* rack-1 now silent too */
    assert_int_equal(orbit_subtree_stats(fx->t)->children_dropped, 1);
    assert_int_equal(orbit_subtree_children(fx->t), 1);
}

/* Silent children that may still belong here are kept, their rows
 * unreachable: one in flag mode, one placed by a newer topology than ours,
 * one our topology declares. */
static void test_departed_needs_proof(void **state)
{
    sub_fx_t *fx = *state;
    child_t *flag = add_child(fx, "rack-1", 5);
    child_t *newer = add_child(fx, "rack-2", 6);
    child_t *ours = add_child(fx, "rack-3", 7);
    newer->epoch = 20;
    ours->epoch = 10;
    add_row(flag, "f0");
    add_row(newer, "n0");
    add_row(ours, "o0");
    for (int i = 0; i < 3; i++)
        assert_int_equal(send_report(fx, &fx->kids[i], true, false, NULL, T0), ORBIT_OK);
    /* Without a topology nothing is dropped, declared or not. */
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 1501), 3);
    assert_int_equal(orbit_subtree_children(fx->t), 3);

    declare(fx, 15, "rack-3");
    assert_int_equal(orbit_subtree_tick(fx->t, T0 + 3000), 0);
    assert_int_equal(orbit_subtree_children(fx->t), 3);
    assert_int_equal(orbit_subtree_stats(fx->t)->children_dropped, 0);
    assert_int_equal(status_of(fx, "f0"), ORBIT_UNREACHABLE);
    assert_int_equal(status_of(fx, "n0"), ORBIT_UNREACHABLE);
    assert_int_equal(status_of(fx, "o0"), ORBIT_UNREACHABLE);

    /* Our topology catches up with rack-2's and still does not place it
     * here: it rejoined elsewhere. */
    declare(fx, 20, "rack-3");
    orbit_subtree_tick(fx->t, T0 + 3100);
    assert_int_equal(orbit_subtree_children(fx->t), 2);
    assert_null(orbit_subtree_row(fx->t, "n0"));
    assert_non_null(orbit_subtree_row(fx->t, "o0"));
    /* rack-3 leaves too; the flag-mode child stays whatever happens. */
    declare(fx, 25, "");
    orbit_subtree_tick(fx->t, T0 + 3200);
    assert_int_equal(orbit_subtree_children(fx->t), 1);
    assert_int_equal(orbit_subtree_stats(fx->t)->children_dropped, 2);
    assert_int_equal(status_of(fx, "f0"), ORBIT_UNREACHABLE);
    assert_int_equal(orbit_subtree_rows_count(fx->t), 1);

    /* A dropped child that reports again is a new one: it must resync. */
    assert_int_equal(send_report(fx, ours, false, false, "", T0 + 3300), ORBIT_OK);
    assert_true(fx->ack.has_resync && fx->ack.resync);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, sub_setup, sub_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_name),
        T(test_unknown_child_nonfull_resync),
        T(test_unknown_child_zero_incarnation_resync),
        T(test_full_report_creates_rows),
        T(test_incremental_report),
        T(test_removed_list),
        T(test_full_report_drops_missing_rows),
        T(test_warming_restart_keeps_rows_unreachable),
        T(test_warming_ends_with_full_report),
        T(test_silent_child_unreachable),
        T(test_silent_pct_configurable),
        T(test_invalid_rows_skipped),
        T(test_invalid_row_names_and_labels),
        T(test_invalid_report_rejected),
        T(test_tiers),
        T(test_child_restart_new_incarnation),
        T(test_node_moves_between_children),
        T(test_shards_list),
        T(test_report_frame_counters),
        T(test_urgent_changes),
        T(test_foreach_stops_early),
        T(test_rows_keep_capsules),
        T(test_invalid_capsule_rows_rejected),
        T(test_departed_child_dropped),
        T(test_departed_needs_proof),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
