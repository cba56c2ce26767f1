/* root_view: queries over the root's merged view. */
#include "root_view.h"

#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_names.h"

int orbit_root_view_validate(const Orbit__ViewQuery *q, const char **reason)
{
    if ((int)q->kind < 0 || q->kind > ORBIT__QUERY_KIND__Q_CAPSULES) {
        *reason = "unknown query kind";
        return ORBIT_EINVAL;
    }
    if (q->kind == ORBIT__QUERY_KIND__Q_NODE && !orbit_name_valid(q->node)) {
        *reason = "node query needs a valid node name";
        return ORBIT_EINVAL;
    }
    if (q->has_status && ((int)q->status < 0 || (int)q->status >= ORBIT_STATUS_COUNT)) {
        *reason = "unknown status filter";
        return ORBIT_EINVAL;
    }
    if (q->has_order && ((int)q->order < 0 || q->order > ORBIT__ORDER__BY_GPU_FREE)) {
        *reason = "unknown order";
        return ORBIT_EINVAL;
    }
    if (q->has_limit && q->limit > ORBIT_VIEW_LIMIT_MAX) {
        *reason = "limit too large";
        return ORBIT_EINVAL;
    }
    if (q->capsule_prefix && *q->capsule_prefix && !orbit_name_id_ok(q->capsule_prefix)) {
        *reason = "capsule prefix must be id characters (A-Za-z0-9._-:/), at most 63 bytes";
        return ORBIT_EINVAL;
    }
    if (q->n_labels > 16) {
        *reason = "too many label filters";
        return ORBIT_EINVAL;
    }
    for (size_t i = 0; i < q->n_labels; i++)
        if (!*q->labels[i]->key || strlen(q->labels[i]->key) > ORBIT_LABEL_KEY_MAX ||
            strlen(q->labels[i]->value) > ORBIT_LABEL_VALUE_MAX) {
            *reason = "invalid label filter";
            return ORBIT_EINVAL;
        }
    return ORBIT_OK;
}

bool orbit_root_view_match(const orbit_row_t *row, const Orbit__ViewQuery *q)
{
    orbit_status_t st = orbit_subtree_row_status(row);
    if (q->has_status && (int)q->status != (int)st)
        return false;
    if (q->has_min_cpu_free_m && row->cpu_free_m < q->min_cpu_free_m)
        return false;
    if (q->has_min_mem_free && row->mem_free < q->min_mem_free)
        return false;
    if (q->has_min_gpu_healthy && row->gpu_healthy < q->min_gpu_healthy)
        return false;
    for (size_t i = 0; i < q->n_labels; i++) {
        char v[ORBIT_LABEL_VALUE_MAX + 1];
        if (!orbit_node_label_get(row->labels, q->labels[i]->key, v, sizeof v) ||
            strcmp(v, q->labels[i]->value) != 0)
            return false;
    }
    return true;
}

typedef struct {
    const Orbit__ViewQuery *q;
    const orbit_row_t **rows;
    size_t n, cap;
    bool nomem;
} collect_t;

static bool collect(const orbit_row_t *row, void *ctx)
{
    collect_t *c = ctx;
    if (!orbit_root_view_match(row, c->q))
        return true;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        const orbit_row_t **r = realloc(c->rows, cap * sizeof *r);
        if (!r) {
            c->nomem = true;
            return false;
        }
        c->rows = r;
        c->cap = cap;
    }
    c->rows[c->n++] = row;
    return true;
}

static int64_t key_of(const orbit_row_t *r, Orbit__Order order)
{
    switch (order) {
    case ORBIT__ORDER__BY_CPU_FREE: return r->cpu_free_m;
    case ORBIT__ORDER__BY_MEM_FREE: return r->mem_free;
    case ORBIT__ORDER__BY_GPU_FREE: return r->gpu_healthy;
    default: return 0;
    }
}

/* qsort_r comparator (glibc argument order): ctx is the Orbit__Order. */
static int cmp_rows(const void *pa, const void *pb, void *ctx)
{
    Orbit__Order order = *(const Orbit__Order *)ctx;
    const orbit_row_t *a = *(const orbit_row_t *const *)pa, *b = *(const orbit_row_t *const *)pb;
    int64_t ka = key_of(a, order), kb = key_of(b, order);
    if (ka != kb)
        return ka > kb ? -1 : 1;
    return strcmp(a->name, b->name);
}

int orbit_root_view_nodes(const orbit_subtree_t *t, const Orbit__ViewQuery *q, orbit_arena_t *a,
                          Orbit__ViewReply *rep)
{
    collect_t c = {q, NULL, 0, 0, false};
    orbit_subtree_foreach(t, collect, &c);
    int rc = ORBIT_ENOMEM;
    if (c.nomem)
        goto out;
    Orbit__Order order = q->has_order ? q->order : ORBIT__ORDER__BY_NAME;
    if (c.n > 1)
        qsort_r(c.rows, c.n, sizeof *c.rows, cmp_rows, &order);
    size_t n = q->has_limit && q->limit && q->limit < c.n ? q->limit : c.n;
    rep->has_matched = true;
    rep->matched = c.n;
    rep->n_rows = 0;
    if (n) {
        rep->rows = orbit_arena_alloc(a, n * sizeof *rep->rows);
        if (!rep->rows)
            goto out;
        for (size_t i = 0; i < n; i++) {
            Orbit__NodeRow *w = orbit_arena_alloc(a, sizeof *w);
            if (!w || orbit_subtree_row_to_pb(c.rows[i], a, w) != ORBIT_OK)
                goto out;
            rep->rows[rep->n_rows++] = w;
        }
    }
    rc = ORBIT_OK;
out:
    free(c.rows);
    return rc;
}

/* One capsule found, and the row that reports it. */
typedef struct {
    const orbit_row_t *row;
    const orbit_capsule_t *cap;
} cap_hit_t;

typedef struct {
    const Orbit__ViewQuery *q;
    const char *prefix;
    size_t prefix_len;
    cap_hit_t *hits;
    size_t n, cap;
    bool nomem;
} cap_collect_t;

static bool collect_capsules(const orbit_row_t *row, void *ctx)
{
    cap_collect_t *c = ctx;
    if (!row->ncapsules || !orbit_root_view_match(row, c->q))
        return true;
    for (uint32_t i = 0; i < row->ncapsules; i++) {
        const orbit_capsule_t *k = &row->capsules[i];
        if (strncmp(k->id, c->prefix, c->prefix_len) != 0)
            continue;
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 256;
            cap_hit_t *h = realloc(c->hits, cap * sizeof *h);
            if (!h) {
                c->nomem = true;
                return false;
            }
            c->hits = h;
            c->cap = cap;
        }
        c->hits[c->n++] = (cap_hit_t){row, k};
    }
    return true;
}

static int cmp_hits(const void *pa, const void *pb)
{
    const cap_hit_t *a = pa, *b = pb;
    int c = strcmp(a->cap->id, b->cap->id);
    return c ? c : strcmp(a->row->name, b->row->name);
}

int orbit_root_view_capsules(const orbit_subtree_t *t, const Orbit__ViewQuery *q, orbit_arena_t *a,
                             Orbit__ViewReply *rep)
{
    const char *prefix = q->capsule_prefix ? q->capsule_prefix : "";
    cap_collect_t c = {q, prefix, strlen(prefix), NULL, 0, 0, false};
    orbit_subtree_foreach(t, collect_capsules, &c);
    int rc = ORBIT_ENOMEM;
    if (c.nomem)
        goto out;
    if (c.n > 1)
        qsort(c.hits, c.n, sizeof *c.hits, cmp_hits);
    size_t n = q->has_limit && q->limit && q->limit < c.n ? q->limit : c.n;
    rep->has_matched = true;
    rep->matched = c.n;
    rep->n_capsules = 0;
    if (n) {
        rep->capsules = orbit_arena_alloc(a, n * sizeof *rep->capsules);
        Orbit__CapsuleRow *rows = orbit_arena_alloc(a, n * sizeof *rows);
        Orbit__CapsuleHealth *hs = orbit_arena_alloc(a, n * sizeof *hs);
        if (!rep->capsules || !rows || !hs)
            goto out;
        for (size_t i = 0; i < n; i++) {
            orbit__capsule_row__init(&rows[i]);
            rows[i].node = (char *)c.hits[i].row->name;
            rows[i].node_status = (Orbit__NodeStatus)orbit_subtree_row_status(c.hits[i].row);
            orbit_capsule_to_pb(c.hits[i].cap, &hs[i]);
            rows[i].health = &hs[i];
            rep->capsules[i] = &rows[i];
        }
        rep->n_capsules = n;
    }
    rc = ORBIT_OK;
out:
    free(c.hits);
    return rc;
}

int orbit_root_view_summary(const orbit_subtree_t *t, orbit_arena_t *a, Orbit__ViewReply *rep)
{
    orbit_agg_t agg;
    orbit_subtree_summary(t, &agg);
    Orbit__Summary *s = orbit_arena_alloc(a, sizeof *s);
    orbit_agg_pb_store_t *st = orbit_arena_alloc(a, sizeof *st);
    if (!s || !st)
        return ORBIT_ENOMEM;
    orbit__summary__init(s);
    orbit_agg_to_pb(&agg, s, st);
    rep->summary = s;
    return ORBIT_OK;
}

void orbit_freshness_record(orbit_freshness_t *f, const Orbit__ShardReport *r, int64_t now)
{
    for (size_t i = 0; i < r->n_rows; i++) {
        if (!r->rows[i]->has_sampled_ms || r->rows[i]->sampled_ms <= 0)
            continue;
        int64_t age = now - r->rows[i]->sampled_ms;
        int64_t b = age < 0 ? 0 : age / ORBIT_FRESHNESS_BUCKET_MS;
        f->hist[b >= ORBIT_FRESHNESS_BUCKETS ? ORBIT_FRESHNESS_BUCKETS - 1 : b]++;
    }
}

void orbit_freshness_to_pb(const orbit_freshness_t *f, Orbit__ViewReply *rep)
{
    rep->n_row_age_hist = ORBIT_FRESHNESS_BUCKETS;
    rep->row_age_hist = (uint64_t *)f->hist;
    rep->has_row_age_bucket_ms = true;
    rep->row_age_bucket_ms = ORBIT_FRESHNESS_BUCKET_MS;
}
