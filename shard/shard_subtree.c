/* shard_subtree: child shards, their reports and the rows they own. */
#include "shard_subtree.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "shard_tomb.h"

struct orbit_subtree_child {
    char id[ORBIT_NAME_MAX];
    uint32_t tier;
    uint64_t incarnation, last_seq;
    uint64_t topology_epoch; /* of the topology that placed it (0: flag mode) */
    int64_t heard_ms;
    uint32_t interval_ms;
    bool reachable, warming;
    bool went_silent; /* during the current tick only */
    bool synced;      /* a full report was applied (incarnation 0 is a valid value) */
    orbit_agg_t summary;
    uint64_t unseen; /* rows kept from before a restart, not yet re-reported */
    uint8_t rid[ORBIT_ROUTING_ID_MAX];
    size_t rid_len;
    uint8_t *infos; /* packed ViewReply holding only the child's ShardInfo list */
    size_t infos_len;
    int64_t infos_ms;
};

struct orbit_subtree {
    char self[ORBIT_NAME_MAX];
    uint32_t tier;
    orbit_subtree_cfg_t cfg;
    zhashx_t *children; /* id -> child */
    zhashx_t *rows;     /* name -> row */
    uint64_t gen;
    orbit_tombs_t *tombs;    /* removed rows, for incremental reports (tier >= 1) */
    bool urgent;             /* a change the parent should hear before the next interval */
    uint64_t topology_epoch; /* of the topology this level holds (0: none) */
    zlistx_t *declared;      /* ids it places here (strings); NULL: no topology */
    orbit_subtree_stats_t stats;
};

static void child_free(void **item)
{
    orbit_subtree_child_t *c = *item;
    if (c) {
        free(c->infos);
        free(c);
        *item = NULL;
    }
}

static void row_free(void **item)
{
    orbit_row_t *r = *item;
    if (r) {
        free(r->labels);
        free(r->capsules);
        free(r);
        *item = NULL;
    }
}

orbit_subtree_t *orbit_subtree_new(const char *self, uint32_t tier, const orbit_subtree_cfg_t *c)
{
    if (!orbit_name_valid(self))
        return NULL;
    orbit_subtree_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    snprintf(t->self, sizeof t->self, "%s", self);
    t->tier = tier;
    t->cfg = *c;
    if (!t->cfg.silent_pct)
        t->cfg.silent_pct = 150;
    t->children = zhashx_new();
    t->rows = zhashx_new();
    /* The root's view (tier 0) reports to nobody: no tombstones there. */
    t->tombs = tier ? orbit_tombs_new(0) : NULL;
    if (!t->children || !t->rows || (tier && !t->tombs)) {
        zhashx_destroy(&t->children);
        zhashx_destroy(&t->rows);
        orbit_tombs_destroy(&t->tombs);
        free(t);
        return NULL;
    }
    zhashx_set_key_duplicator(t->children, NULL);
    zhashx_set_key_destructor(t->children, NULL);
    zhashx_set_destructor(t->children, child_free);
    zhashx_set_key_duplicator(t->rows, NULL);
    zhashx_set_key_destructor(t->rows, NULL);
    zhashx_set_destructor(t->rows, row_free);
    return t;
}

void orbit_subtree_destroy(orbit_subtree_t **pt)
{
    if (!pt || !*pt)
        return;
    zhashx_destroy(&(*pt)->rows); /* rows point at children: drop them first */
    zhashx_destroy(&(*pt)->children);
    zlistx_destroy(&(*pt)->declared);
    orbit_tombs_destroy(&(*pt)->tombs);
    free(*pt);
    *pt = NULL;
}

static void bump(orbit_subtree_t *t, orbit_row_t *r)
{
    r->gen = ++t->gen;
}

/* Every row of child c changed its effective status. */
static void bump_child_rows(orbit_subtree_t *t, orbit_subtree_child_t *c)
{
    for (orbit_row_t *r = zhashx_first(t->rows); r; r = zhashx_next(t->rows))
        if (r->owner == c)
            bump(t, r);
}

static bool row_valid(const Orbit__NodeRow *w)
{
    if (!orbit_name_valid(w->node) || !orbit_name_valid(w->shard))
        return false;
    if ((int)w->status < 0 || (int)w->status >= ORBIT_STATUS_COUNT)
        return false;
    if (w->cpu_capacity_m < 0 || w->cpu_capacity_m > ORBIT_CPU_MAX_M || w->cpu_free_m < 0 ||
        w->cpu_free_m > w->cpu_capacity_m || w->mem_capacity < 0 ||
        w->mem_capacity > ORBIT_MEM_MAX || w->mem_free < 0 || w->mem_free > w->mem_capacity ||
        w->gpu_capacity > ORBIT_GPUS_MAX || w->gpu_healthy > w->gpu_capacity ||
        w->mem_pressure > ORBIT_PRESSURE_MAX)
        return false;
    size_t packed = 0;
    for (size_t i = 0; i < w->n_labels; i++) {
        const Orbit__Label *l = w->labels[i];
        size_t k = strlen(l->key), v = strlen(l->value);
        if (!k || k > ORBIT_LABEL_KEY_MAX || !v || v > ORBIT_LABEL_VALUE_MAX ||
            strpbrk(l->key, "=\n") || strchr(l->value, '\n'))
            return false;
        packed += k + v + 2;
    }
    return packed < ORBIT_LABELS_MAX &&
           orbit_capsules_validate(w->capsules, w->n_capsules, NULL) == ORBIT_OK;
}

static char *pack_labels(const Orbit__NodeRow *w)
{
    size_t n = 1;
    for (size_t i = 0; i < w->n_labels; i++)
        n += strlen(w->labels[i]->key) + strlen(w->labels[i]->value) + 2;
    char *s = malloc(n), *p = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < w->n_labels; i++)
        p += sprintf(p, "%s=%s\n", w->labels[i]->key, w->labels[i]->value);
    *p = '\0';
    return s;
}

static int apply_row(orbit_subtree_t *t, orbit_subtree_child_t *c, const Orbit__NodeRow *w,
                     int64_t now)
{
    char *labels = pack_labels(w);
    orbit_capsule_t *caps = NULL;
    if (!labels || orbit_capsules_from_pb(w->capsules, w->n_capsules, &caps) != ORBIT_OK) {
        free(labels);
        return ORBIT_ENOMEM;
    }
    orbit_row_t *r = zhashx_lookup(t->rows, w->node);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) {
            free(labels);
            free(caps);
            return ORBIT_ENOMEM;
        }
        snprintf(r->name, sizeof r->name, "%s", w->node);
        if (zhashx_insert(t->rows, r->name, r) != 0) {
            free(labels);
            free(caps);
            free(r);
            return ORBIT_ENOMEM;
        }
        if (t->tombs)
            orbit_tombs_forget(t->tombs, r->name);
    } else if (r->unseen && r->owner) {
        r->owner->unseen--;
    }
    free(r->labels);
    r->labels = labels;
    free(r->capsules);
    r->capsules = caps;
    r->ncapsules = (uint32_t)w->n_capsules;
    snprintf(r->shard, sizeof r->shard, "%s", w->shard);
    r->owner = c;
    r->unseen = false;
    r->status = (uint8_t)w->status;
    r->cpu_capacity_m = w->cpu_capacity_m;
    r->cpu_free_m = w->cpu_free_m;
    r->mem_capacity = w->mem_capacity;
    r->mem_free = w->mem_free;
    r->gpu_capacity = w->gpu_capacity;
    r->gpu_healthy = w->gpu_healthy;
    r->mem_pressure = w->mem_pressure;
    r->sampled_ms = w->sampled_ms;
    r->updated_ms = now;
    bump(t, r);
    return ORBIT_OK;
}

static void remove_row(orbit_subtree_t *t, orbit_row_t *r)
{
    if (r->unseen && r->owner)
        r->owner->unseen--;
    t->stats.rows_removed++;
    t->gen++;
    if (t->tombs) /* named in incremental reports upstream until acknowledged */
        orbit_tombs_add(t->tombs, r->name, t->gen);
    zhashx_delete(t->rows, r->name);
}

/* Remove the rows child c owns (only those not re-reported since its
 * restart, when unseen_only). False out of memory: then none is removed. */
static bool remove_rows_of(orbit_subtree_t *t, const orbit_subtree_child_t *c, bool unseen_only)
{
    zlistx_t *rows = zlistx_new(); /* removing while walking t->rows is not allowed */
    bool listed = rows != NULL;
    for (orbit_row_t *r = listed ? zhashx_first(t->rows) : NULL; r; r = zhashx_next(t->rows))
        if (r->owner == c && (r->unseen || !unseen_only) && !zlistx_add_end(rows, r)) {
            listed = false;
            break;
        }
    for (orbit_row_t *r = listed ? zlistx_first(rows) : NULL; r; r = zlistx_next(rows))
        remove_row(t, r);
    zlistx_destroy(&rows);
    return listed;
}

static void store_infos(orbit_subtree_child_t *c, const Orbit__ShardReport *r, int64_t now)
{
    Orbit__ViewReply holder = ORBIT__VIEW_REPLY__INIT;
    holder.n_shards = r->n_shards;
    holder.shards = r->shards;
    size_t n = protobuf_c_message_get_packed_size(&holder.base);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return; /* keep the previous list; shard listing is best effort */
    protobuf_c_message_pack(&holder.base, buf);
    free(c->infos);
    c->infos = buf;
    c->infos_len = n;
    c->infos_ms = now;
}

int orbit_subtree_report(orbit_subtree_t *t, const Orbit__ShardReport *r, const uint8_t *rid,
                         size_t rid_len, int64_t now, Orbit__ReportAck *ack)
{
    orbit__report_ack__init(ack);
    orbit_agg_t summary;
    if (!orbit_name_valid(r->shard) || !strcmp(r->shard, t->self) ||
        (t->tier && r->tier >= t->tier) || r->tier == 0 ||
        orbit_agg_from_pb(&summary, r->summary) != ORBIT_OK ||
        (r->has_interval_ms && (r->interval_ms < 10 || r->interval_ms > 3600 * 1000))) {
        t->stats.invalid_reports++;
        return ORBIT_EINVAL;
    }
    t->stats.reports++;
    const bool full = r->has_full && r->full;
    orbit_subtree_child_t *c = zhashx_lookup(t->children, r->shard);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c)
            return ORBIT_ENOMEM;
        snprintf(c->id, sizeof c->id, "%s", r->shard);
        if (zhashx_insert(t->children, c->id, c) != 0) {
            free(c);
            return ORBIT_ENOMEM;
        }
        c->reachable = false;
    }
    /* Incarnations grow with the child's start time: a report of an older
     * one is still in flight from a dead process and must not take the
     * child (or its routing id) back. */
    if (c->synced && r->incarnation < c->incarnation) {
        t->stats.stale_reports++;
        return ORBIT_EINVAL;
    }
    /* The child may have reconnected from a new socket: always route replies
     * to where the latest report came from. */
    memcpy(c->rid, rid, rid_len);
    c->rid_len = rid_len;
    c->heard_ms = now;
    c->tier = r->tier;
    c->topology_epoch = r->has_topology_epoch ? r->topology_epoch : 0;
    c->interval_ms = r->has_interval_ms ? r->interval_ms : 1000;
    ack->seq = r->seq;
    if (!full && (!c->synced || r->incarnation != c->incarnation)) {
        /* A child we do not know (or that restarted) must start with a full
         * report; keep its old rows until then. */
        t->stats.resyncs_requested++;
        ack->has_resync = ack->resync = true;
        return ORBIT_OK;
    }
    if (c->synced && r->incarnation == c->incarnation && r->seq <= c->last_seq) {
        t->stats.stale_reports++;
        return ORBIT_OK;
    }
    if (full) {
        t->urgent = true; /* a (re)started child: its rows come back now */
        t->stats.full_reports++;
        c->unseen = 0;
        for (orbit_row_t *row = zhashx_first(t->rows); row; row = zhashx_next(t->rows))
            if (row->owner == c) {
                row->unseen = true;
                c->unseen++;
            }
    }
    c->incarnation = r->incarnation;
    c->last_seq = r->seq;
    c->synced = true;
    c->warming = r->has_warming && r->warming;
    c->summary = summary;
    for (size_t i = 0; i < r->n_rows; i++) {
        if (!row_valid(r->rows[i])) {
            t->stats.invalid_rows++;
            continue;
        }
        if (apply_row(t, c, r->rows[i], now) == ORBIT_OK)
            t->stats.rows_applied++;
    }
    for (size_t i = 0; i < r->n_removed; i++) {
        orbit_row_t *row = zhashx_lookup(t->rows, r->removed[i]);
        if (row && row->owner == c)
            remove_row(t, row);
    }
    if (full || (!c->warming && c->unseen)) {
        /* Rows the child no longer has: gone, unless it is still warming up
         * after a restart (then shown unreachable until re-reported). Once
         * warm-up is over they are gone even if the report saying so is an
         * incremental one (a shard sends full reports only while warming). */
        if (c->warming) {
            for (orbit_row_t *row = zhashx_first(t->rows); row; row = zhashx_next(t->rows))
                if (row->owner == c && row->unseen)
                    bump(t, row);
        } else {
            remove_rows_of(t, c, true); /* out of memory: again at the next report */
        }
    }
    if (!c->reachable) {
        c->reachable = true;
        t->urgent = true;
        bump_child_rows(t, c);
    }
    store_infos(c, r, now);
    return ORBIT_OK;
}

int orbit_subtree_report_frame(orbit_subtree_t *t, const uint8_t *buf, size_t len,
                               const uint8_t *rid, size_t rid_len, int64_t now, orbit_arena_t *a,
                               Orbit__ReportAck *ack, ProtobufCMessage **decoded)
{
    ProtobufCMessage *m = NULL;
    int rc =
        orbit_wire_decode(buf, len, ORBIT_MSG_SHARD_REPORT, orbit_arena_allocator(a), NULL, &m);
    switch (rc) {
    case ORBIT_OK: break;
    case ORBIT_EVERSION: t->stats.bad_version++; return rc;
    case ORBIT_ETYPE: t->stats.bad_type++; return rc;
    case ORBIT_EDECODE: t->stats.bad_decode++; return rc;
    default: t->stats.bad_envelope++; return rc;
    }
    if (decoded)
        *decoded = m;
    return orbit_subtree_report(t, (Orbit__ShardReport *)m, rid, rid_len, now, ack);
}

void orbit_subtree_set_topology(orbit_subtree_t *t, uint64_t epoch, zlistx_t **declared)
{
    zlistx_destroy(&t->declared);
    t->declared = *declared;
    *declared = NULL;
    t->topology_epoch = epoch;
}

/* A child silent for longer than this is unreachable. */
static int64_t silence_limit(const orbit_subtree_t *t, const orbit_subtree_child_t *c)
{
    return (int64_t)c->interval_ms * t->cfg.silent_pct / 100;
}

static bool declared_here(const orbit_subtree_t *t, const char *id)
{
    for (const char *d = zlistx_first(t->declared); d; d = zlistx_next(t->declared))
        if (!strcmp(d, id))
            return true;
    return false;
}

/* Children that left the tree: silent, placed by a topology no newer than
 * ours, which does not place them here. Dropped with their rows. */
static void drop_departed(orbit_subtree_t *t, int64_t now)
{
    if (!t->declared)
        return;
    zlistx_t *gone = NULL;
    zhashx_t *h = t->children;
    for (orbit_subtree_child_t *c = zhashx_first(h); c; c = zhashx_next(h)) {
        if (now - c->heard_ms <= silence_limit(t, c) || !c->topology_epoch ||
            c->topology_epoch > t->topology_epoch || declared_here(t, c->id))
            continue;
        if ((!gone && !(gone = zlistx_new())) || !zlistx_add_end(gone, c))
            break; /* out of memory: the rest wait for a later tick */
    }
    for (orbit_subtree_child_t *c = gone ? zlistx_first(gone) : NULL; c; c = zlistx_next(gone)) {
        /* Every row of the child goes before the child: none may point at
         * it afterwards. Out of memory, the child stays for a later tick. */
        if (!remove_rows_of(t, c, false))
            continue;
        zhashx_delete(h, c->id);
        t->stats.children_dropped++;
        t->urgent = true;
    }
    zlistx_destroy(&gone);
}

uint32_t orbit_subtree_tick(orbit_subtree_t *t, int64_t now)
{
    uint32_t changed = 0;
    for (orbit_subtree_child_t *c = zhashx_first(t->children); c; c = zhashx_next(t->children)) {
        if (c->reachable && now - c->heard_ms > silence_limit(t, c)) {
            c->reachable = false;
            c->went_silent = true;
            changed++;
        }
    }
    if (changed) {
        t->urgent = true;
        for (orbit_row_t *r = zhashx_first(t->rows); r; r = zhashx_next(t->rows))
            if (r->owner->went_silent)
                bump(t, r);
        for (orbit_subtree_child_t *c = zhashx_first(t->children); c; c = zhashx_next(t->children))
            c->went_silent = false;
    }
    drop_departed(t, now);
    return changed;
}

bool orbit_subtree_take_urgent(orbit_subtree_t *t)
{
    bool u = t->urgent;
    t->urgent = false;
    return u;
}

uint64_t orbit_subtree_gen(const orbit_subtree_t *t)
{
    return t->gen;
}

orbit_status_t orbit_subtree_row_status(const orbit_row_t *row)
{
    if (!row->owner || !row->owner->reachable || row->unseen)
        return ORBIT_UNREACHABLE;
    return (orbit_status_t)row->status;
}

void orbit_subtree_summary(const orbit_subtree_t *t, orbit_agg_t *agg)
{
    memset(agg, 0, sizeof *agg);
    zhashx_t *h = t->children;
    for (orbit_subtree_child_t *c = zhashx_first(h); c; c = zhashx_next(h)) {
        if (c->reachable) {
            orbit_agg_merge(agg, &c->summary);
            agg->nodes[ORBIT_UNREACHABLE] += c->unseen;
        } else {
            orbit_agg_merge_unreachable(agg, &c->summary);
            agg->nodes[ORBIT_UNREACHABLE] += c->unseen;
        }
    }
}

int orbit_subtree_row_to_pb(const orbit_row_t *row, orbit_arena_t *a, Orbit__NodeRow *w)
{
    orbit__node_row__init(w);
    w->node = (char *)row->name;
    w->shard = (char *)row->shard;
    w->status = (Orbit__NodeStatus)orbit_subtree_row_status(row);
    w->has_cpu_capacity_m = w->has_cpu_free_m = w->has_mem_capacity = w->has_mem_free = true;
    w->has_gpu_capacity = w->has_gpu_healthy = w->has_mem_pressure = w->has_sampled_ms = true;
    w->cpu_capacity_m = row->cpu_capacity_m;
    w->cpu_free_m = row->cpu_free_m;
    w->mem_capacity = row->mem_capacity;
    w->mem_free = row->mem_free;
    w->gpu_capacity = row->gpu_capacity;
    w->gpu_healthy = row->gpu_healthy;
    w->mem_pressure = row->mem_pressure;
    w->sampled_ms = row->sampled_ms;
    if (orbit_capsules_to_pb(row->capsules, row->ncapsules, a, &w->capsules) != ORBIT_OK)
        return ORBIT_ENOMEM;
    w->n_capsules = row->ncapsules;
    return orbit_arena_labels(a, row->labels, &w->labels, &w->n_labels);
}

int orbit_subtree_rows(const orbit_subtree_t *t, uint64_t since_gen, orbit_arena_t *a,
                       Orbit__NodeRow ***rows, size_t *nrows)
{
    size_t cap = zhashx_size(t->rows), count = 0;
    *rows = NULL;
    *nrows = 0;
    if (!cap)
        return ORBIT_OK;
    Orbit__NodeRow **list = orbit_arena_alloc(a, cap * sizeof *list);
    if (!list)
        return ORBIT_ENOMEM;
    zhashx_t *h = t->rows;
    for (orbit_row_t *r = zhashx_first(h); r; r = zhashx_next(h)) {
        if (r->gen <= since_gen)
            continue;
        Orbit__NodeRow *w = orbit_arena_alloc(a, sizeof *w);
        if (!w || orbit_subtree_row_to_pb(r, a, w) != ORBIT_OK)
            return ORBIT_ENOMEM;
        list[count++] = w;
    }
    *rows = list;
    *nrows = count;
    return ORBIT_OK;
}

int orbit_subtree_shards(const orbit_subtree_t *t, int64_t now, orbit_arena_t *a,
                         Orbit__ShardInfo ***out, size_t *n)
{
    zhashx_t *h = t->children;
    /* First pass: decode every child's list to know the total. */
    size_t total = *n;
    Orbit__ViewReply **lists = orbit_arena_alloc(a, (zhashx_size(h) + 1) * sizeof *lists);
    if (!lists)
        return ORBIT_ENOMEM;
    size_t k = 0;
    for (orbit_subtree_child_t *c = zhashx_first(h); c; c = zhashx_next(h), k++) {
        lists[k] = c->infos
                       ? orbit__view_reply__unpack(orbit_arena_allocator(a), c->infos_len, c->infos)
                       : NULL;
        total += lists[k] ? lists[k]->n_shards : 0;
    }
    Orbit__ShardInfo **arr = orbit_arena_alloc(a, (total + 1) * sizeof *arr);
    if (!arr)
        return ORBIT_ENOMEM;
    if (*n)
        memcpy(arr, *out, *n * sizeof *arr);
    size_t m = *n;
    k = 0;
    for (orbit_subtree_child_t *c = zhashx_first(h); c; c = zhashx_next(h), k++) {
        if (!lists[k])
            continue;
        int64_t since = now - c->infos_ms;
        for (size_t i = 0; i < lists[k]->n_shards; i++) {
            Orbit__ShardInfo *s = lists[k]->shards[i];
            if (i == 0) {
                /* The child itself, as seen from here. */
                s->parent = orbit_arena_strdup(a, t->self);
                s->has_last_report_ms_ago = true;
                s->last_report_ms_ago = now - c->heard_ms;
            } else if (s->has_last_report_ms_ago) {
                s->last_report_ms_ago += since;
            }
            s->has_reachable = true;
            s->reachable = c->reachable && (i == 0 || s->reachable);
            arr[m++] = s;
        }
    }
    *out = arr;
    *n = m;
    return ORBIT_OK;
}

const orbit_row_t *orbit_subtree_row(const orbit_subtree_t *t, const char *name)
{
    return zhashx_lookup(t->rows, name);
}

void orbit_subtree_route(const orbit_row_t *row, const uint8_t **rid, size_t *rid_len)
{
    *rid = row->owner->rid;
    *rid_len = row->owner->rid_len;
}

void orbit_subtree_foreach(const orbit_subtree_t *t, orbit_row_fn fn, void *ctx)
{
    zhashx_t *h = t->rows;
    for (orbit_row_t *r = zhashx_first(h); r; r = zhashx_next(h))
        if (!fn(r, ctx))
            break;
}

size_t orbit_subtree_rows_count(const orbit_subtree_t *t)
{
    return zhashx_size(t->rows);
}

size_t orbit_subtree_children(const orbit_subtree_t *t)
{
    return zhashx_size(t->children);
}

const orbit_subtree_stats_t *orbit_subtree_stats(const orbit_subtree_t *t)
{
    return &t->stats;
}

int orbit_subtree_removed(const orbit_subtree_t *t, uint64_t since_gen, orbit_arena_t *a,
                          char ***names, size_t *count)
{
    if (!t->tombs) {
        *names = NULL;
        *count = 0;
        return ORBIT_OK;
    }
    return orbit_tombs_list(t->tombs, since_gen, a, names, count);
}

void orbit_subtree_prune_removed(orbit_subtree_t *t, uint64_t acked)
{
    if (t->tombs)
        orbit_tombs_prune(t->tombs, acked);
}

uint64_t orbit_subtree_removed_floor(const orbit_subtree_t *t)
{
    return t->tombs ? orbit_tombs_floor(t->tombs) : 0;
}
