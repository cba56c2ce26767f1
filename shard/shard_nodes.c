/* shard_nodes: ingest, dedup, liveness and material-change tracking of a
 * rack shard's leaf nodes. */
#include "shard_nodes.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_hash.h"
#include "shard_tomb.h"

typedef struct {
    orbit_node_state_t st; /* st.name is the hash key (not copied) */
    uint64_t seq;          /* last applied sequence number */
    int64_t heard_ms;      /* when the last applied message arrived */
    uint64_t gen;          /* generation of the last material change */
    uint64_t sig;          /* signature of the row-relevant fields */
    uint32_t labels_hash;  /* of st.labels, refreshed when labels change */
    uint8_t status;
} shard_node_t;

struct orbit_shard_nodes {
    char id[ORBIT_NAME_MAX];
    orbit_shard_nodes_cfg_t cfg;
    zhashx_t *nodes; /* name -> shard_node_t */
    uint64_t gen;
    orbit_shard_nodes_stats_t stats;
    int64_t window_start_ms; /* ingest budget: one-second windows */
    uint32_t window_count;
    zhashx_t *racks;      /* discovery mode: racks owned; NULL in flag mode */
    orbit_tombs_t *tombs; /* forgotten nodes not yet acknowledged upstream */
};

static void node_free(void **item)
{
    shard_node_t *e = *item;
    if (e) {
        orbit_node_state_close(&e->st);
        free(e);
        *item = NULL;
    }
}

orbit_shard_nodes_t *orbit_shard_nodes_new(const char *id, const orbit_shard_nodes_cfg_t *cfg)
{
    if (!orbit_name_valid(id))
        return NULL;
    orbit_shard_nodes_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    snprintf(n->id, sizeof n->id, "%s", id);
    n->cfg = *cfg;
    if (!n->cfg.suspect_missed)
        n->cfg.suspect_missed = 3;
    if (n->cfg.down_missed <= n->cfg.suspect_missed)
        n->cfg.down_missed = n->cfg.suspect_missed + 7;
    if (!n->cfg.default_interval_ms)
        n->cfg.default_interval_ms = 1000;
    n->nodes = zhashx_new();
    n->tombs = orbit_tombs_new(0);
    if (!n->nodes || !n->tombs) {
        zhashx_destroy(&n->nodes);
        orbit_tombs_destroy(&n->tombs);
        free(n);
        return NULL;
    }
    /* Keys point into the entries themselves: no copy, no free. */
    zhashx_set_key_duplicator(n->nodes, NULL);
    zhashx_set_key_destructor(n->nodes, NULL);
    zhashx_set_destructor(n->nodes, node_free);
    return n;
}

void orbit_shard_nodes_destroy(orbit_shard_nodes_t **pn)
{
    if (!pn || !*pn)
        return;
    zhashx_destroy(&(*pn)->nodes);
    zhashx_destroy(&(*pn)->racks);
    orbit_tombs_destroy(&(*pn)->tombs);
    free(*pn);
    *pn = NULL;
}

static uint32_t gpu_healthy(const orbit_node_state_t *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->ngpus; i++)
        n += s->gpus[i].health == ORBIT_GPU_HEALTHY;
    return n;
}

static int64_t free_bucket(int64_t cap, int64_t used)
{
    if (cap <= 0)
        return -1;
    int64_t free_ = cap > used ? cap - used : 0;
    return free_ * 16 / cap;
}

/* What makes a row change materially: status, capacities, labels, free
 * capacity in sixteenths, healthy GPUs, pressure bucket. Mixed a word at a
 * time (this runs on every delta); the label text is hashed only when it
 * changes. */
static uint64_t row_signature(const shard_node_t *e)
{
    const orbit_node_state_t *s = &e->st;
    const uint64_t v[9] = {
        (uint64_t)e->status | (uint64_t)s->ngpus << 8 | (uint64_t)gpu_healthy(s) << 16 |
            (uint64_t)(s->pressure_available ? orbit_pressure_bucket(s->pressure.mem_some) : 15)
                << 24,
        (uint64_t)s->cpu_capacity_m,
        (uint64_t)s->mem_capacity,
        s->gpu_capacity,
        (uint64_t)free_bucket(s->cpu_capacity_m, s->cpu_used_m),
        (uint64_t)free_bucket(s->mem_capacity, s->mem_used),
        e->labels_hash,
        0x9e3779b97f4a7c15ULL,
        0};
    uint64_t h = 0;
    for (int i = 0; i < 8; i++) {
        h ^= v[i];
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    return h;
}

/* Capsules are compared exactly rather than hashed into the signature: a
 * node keeps its size (no hash to store), and a capsule's end is never lost
 * to a collision. Only lists carried by a delta are looked at. */
static bool capsule_same(const orbit_capsule_t *c, const Orbit__CapsuleHealth *w)
{
    return (int)c->state == (int)w->state && c->exit_code == (w->has_exit_code ? w->exit_code : 0);
}

static int cmp_key_capsule(const void *key, const void *elem)
{
    return strcmp(key, ((const orbit_capsule_t *)elem)->id);
}

/* Would applying d change s's capsules by id, state or exit code? d is
 * validated (ids unique), so equal counts and every entry found equal in s's
 * sorted list mean the same set. */
static bool capsules_change(const orbit_node_state_t *s, const Orbit__NodeDelta *d, bool full)
{
    if (!(d->has_capsules_set && d->capsules_set))
        return full && s->ncapsules > 0; /* a full state without them clears them */
    if (d->n_capsules != s->ncapsules)
        return true;
    for (size_t i = 0; i < d->n_capsules; i++) {
        const orbit_capsule_t *c =
            bsearch(d->capsules[i]->id, s->capsules, s->ncapsules, sizeof *c, cmp_key_capsule);
        if (!c || !capsule_same(c, d->capsules[i]))
            return true;
    }
    return false;
}

static void mark_if_changed(orbit_shard_nodes_t *n, shard_node_t *e, bool force)
{
    uint64_t sig = row_signature(e);
    if (force || sig != e->sig || e->gen == 0) {
        e->sig = sig;
        e->gen = ++n->gen;
    }
}

static uint32_t interval_of(const orbit_shard_nodes_t *n, const shard_node_t *e)
{
    return e->st.interval_ms ? e->st.interval_ms : n->cfg.default_interval_ms;
}

/* Admission against the per-second ingest budget. */
static bool budget_admit(orbit_shard_nodes_t *n, uint32_t count, int64_t now)
{
    if (now - n->window_start_ms >= 1000) {
        n->window_start_ms = now;
        n->window_count = 0;
    }
    /* A batch is admitted while the window has room, so one larger than the
     * whole limit still gets through (overshooting once) instead of never. */
    if (n->cfg.ingest_limit && n->window_count >= n->cfg.ingest_limit)
        return false;
    n->window_count += count;
    return true;
}

/* Per-node verdicts other than OK are listed in the ack. */
static void ack_node(Orbit__NodeAck **list, size_t *count, orbit_arena_t *a,
                     const Orbit__NodeDelta *d, Orbit__Verdict v, const char *reason)
{
    Orbit__NodeAck *na = orbit_arena_alloc(a, sizeof *na);
    if (!na)
        return; /* the sender will time out and resend a full state */
    orbit__node_ack__init(na);
    na->node = d->node;
    na->seq = d->seq;
    na->verdict = v;
    na->reason = (char *)reason;
    list[(*count)++] = na;
}

static Orbit__Verdict ingest_one(orbit_shard_nodes_t *n, const Orbit__NodeDelta *d, int64_t now,
                                 const char **reason)
{
    const bool full = d->has_full && d->full;
    *reason = NULL;
    if (!orbit_name_valid(d->node)) {
        n->stats.invalid++;
        *reason = "invalid node name";
        return ORBIT__VERDICT__REJECTED;
    }
    shard_node_t *e = zhashx_lookup(n->nodes, d->node);
    if (!e && !full) {
        n->stats.unknown_nodes++;
        return ORBIT__VERDICT__RESYNC;
    }
    if (e) {
        if (d->incarnation < e->st.incarnation) {
            n->stats.stale_incarnations++;
            *reason = "stale incarnation";
            return ORBIT__VERDICT__REJECTED;
        }
        if (d->incarnation > e->st.incarnation && !full) {
            n->stats.gaps++;
            return ORBIT__VERDICT__RESYNC;
        }
        if (d->incarnation == e->st.incarnation) {
            if (d->seq <= e->seq) {
                n->stats.duplicates++;
                return ORBIT__VERDICT__DUPLICATE;
            }
            if (!full && d->seq != e->seq + 1) {
                n->stats.gaps++;
                return ORBIT__VERDICT__RESYNC;
            }
        }
    }
    if (orbit_node_delta_validate(d, e && !full ? &e->st : NULL, reason) != ORBIT_OK) {
        n->stats.invalid++;
        return ORBIT__VERDICT__REJECTED;
    }
    const bool caps_changed = e && capsules_change(&e->st, d, full);
    bool fresh = false;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            n->stats.nomem++;
            *reason = "shard out of memory";
            return ORBIT__VERDICT__OVERLOADED;
        }
        snprintf(e->st.name, sizeof e->st.name, "%s", d->node);
        fresh = true;
    } else if (full && d->incarnation > e->st.incarnation) {
        n->stats.reboots++;
    }
    if (orbit_node_delta_apply(&e->st, d) != ORBIT_OK) {
        n->stats.nomem++;
        if (fresh) {
            orbit_node_state_close(&e->st);
            free(e);
        }
        return ORBIT__VERDICT__RESYNC;
    }
    if (fresh && zhashx_insert(n->nodes, e->st.name, e) != 0) {
        orbit_node_state_close(&e->st);
        free(e);
        n->stats.nomem++;
        return ORBIT__VERDICT__RESYNC;
    }
    if (fresh)
        orbit_tombs_forget(n->tombs, e->st.name); /* back before its removal was acked */
    if (full || (d->has_labels_set && d->labels_set))
        e->labels_hash =
            (uint32_t)orbit_fnv1a(ORBIT_FNV_OFFSET, e->st.labels, strlen(e->st.labels));
    e->seq = d->seq;
    e->heard_ms = now;
    e->status = ORBIT_ALIVE;
    n->stats.applied++;
    if (full)
        n->stats.full_states++;
    mark_if_changed(n, e, caps_changed);
    return ORBIT__VERDICT__OK;
}

int orbit_shard_nodes_ingest(orbit_shard_nodes_t *n, const Orbit__LeafBatch *b, int64_t now,
                             orbit_arena_t *a, Orbit__LeafAck *ack)
{
    orbit__leaf_ack__init(ack);
    ack->batch_id = b->batch_id;
    ack->shard = n->id;
    ack->has_topology_epoch = true;
    ack->topology_epoch = n->cfg.topology_epoch;
    n->stats.deltas += b->n_deltas;
    if (!budget_admit(n, (uint32_t)b->n_deltas, now)) {
        n->stats.shed += b->n_deltas;
        /* Shedding drops the data, not the heartbeat: a node we are too busy
         * to update is still alive. A lookup is far cheaper than an apply. */
        for (size_t i = 0; i < b->n_deltas; i++) {
            shard_node_t *e = zhashx_lookup(n->nodes, b->deltas[i]->node);
            if (e && b->deltas[i]->incarnation == e->st.incarnation)
                e->heard_ms = now;
        }
        ack->verdict = ORBIT__VERDICT__OVERLOADED;
        ack->has_in_flight = ack->has_limit = true;
        ack->in_flight = n->window_count;
        ack->limit = n->cfg.ingest_limit;
        return ORBIT_OK;
    }
    ack->verdict = ORBIT__VERDICT__OK;
    Orbit__NodeAck **list = b->n_deltas ? orbit_arena_alloc(a, b->n_deltas * sizeof *list) : NULL;
    size_t count = 0;
    for (size_t i = 0; i < b->n_deltas; i++) {
        const char *reason;
        Orbit__Verdict v = ingest_one(n, b->deltas[i], now, &reason);
        if (v != ORBIT__VERDICT__OK && list)
            ack_node(list, &count, a, b->deltas[i], v, reason);
    }
    ack->n_nodes = count;
    ack->nodes = list;
    return ORBIT_OK;
}

int orbit_shard_nodes_ingest_frame(orbit_shard_nodes_t *n, const uint8_t *buf, size_t len,
                                   int64_t now, orbit_arena_t *a, Orbit__LeafAck *ack)
{
    n->stats.frames++;
    ProtobufCMessage *m = NULL;
    int rc = orbit_wire_decode(buf, len, ORBIT_MSG_LEAF_BATCH, orbit_arena_allocator(a), NULL, &m);
    switch (rc) {
    case ORBIT_OK: break;
    case ORBIT_EVERSION: n->stats.bad_version++; return rc;
    case ORBIT_ETYPE: n->stats.bad_type++; return rc;
    case ORBIT_EDECODE: n->stats.bad_decode++; return rc;
    default: n->stats.bad_envelope++; return rc;
    }
    return orbit_shard_nodes_ingest(n, (Orbit__LeafBatch *)m, now, a, ack);
}

void orbit_shard_nodes_set_topology(orbit_shard_nodes_t *n, uint64_t epoch, zhashx_t **racks)
{
    n->cfg.topology_epoch = epoch;
    if (racks && *racks) {
        zhashx_destroy(&n->racks);
        n->racks = *racks;
        *racks = NULL;
    }
}

/* Re-homed away: the node's rack is another shard's (discovery mode only)
 * and it has been silent for more than one of its intervals, so it now
 * reports to that owner. "More than one" is taken as two: a leaf that
 * failed over here sends once per interval give or take its jitter, and
 * must not be forgotten between two messages (it would flap at the root);
 * two is still well before suspect (suspect_missed, 3 by default). */
#define REHOMED_SILENT_INTERVALS 2

static bool rehomed_away(const orbit_shard_nodes_t *n, const shard_node_t *e, int64_t age)
{
    char rack[ORBIT_LABELS_MAX];
    return n->racks && age > REHOMED_SILENT_INTERVALS * (int64_t)interval_of(n, e) &&
           orbit_node_label_get(e->st.labels, "rack", rack, sizeof rack) &&
           !zhashx_lookup(n->racks, rack);
}

static void forget(orbit_shard_nodes_t *n, shard_node_t *e)
{
    orbit_tombs_add(n->tombs, e->st.name, ++n->gen);
    n->stats.rehomed_away++;
    zhashx_delete(n->nodes, e->st.name);
}

uint32_t orbit_shard_nodes_tick(orbit_shard_nodes_t *n, int64_t now)
{
    uint32_t changed = 0;
    zlistx_t *gone = NULL;
    for (shard_node_t *e = zhashx_first(n->nodes); e; e = zhashx_next(n->nodes)) {
        int64_t iv = interval_of(n, e);
        int64_t age = now - e->heard_ms;
        if (rehomed_away(n, e, age)) {
            /* Not deleted while the table's cursor walks it. If the list
             * cannot be had, the node goes on a later tick. */
            if (gone || (gone = zlistx_new()))
                zlistx_add_end(gone, e);
            continue;
        }
        uint8_t st = age > (int64_t)n->cfg.down_missed * iv      ? ORBIT_DOWN
                     : age > (int64_t)n->cfg.suspect_missed * iv ? ORBIT_SUSPECT
                                                                 : ORBIT_ALIVE;
        if (st != e->status) {
            e->status = st;
            mark_if_changed(n, e, false);
            changed++;
        }
    }
    for (shard_node_t *e = gone ? zlistx_first(gone) : NULL; e; e = zlistx_next(gone)) {
        forget(n, e);
        changed++;
    }
    zlistx_destroy(&gone);
    return changed;
}

int orbit_shard_nodes_removed(const orbit_shard_nodes_t *n, uint64_t since_gen, orbit_arena_t *a,
                              char ***names, size_t *count)
{
    return orbit_tombs_list(n->tombs, since_gen, a, names, count);
}

void orbit_shard_nodes_prune_removed(orbit_shard_nodes_t *n, uint64_t acked)
{
    orbit_tombs_prune(n->tombs, acked);
}

uint64_t orbit_shard_nodes_removed_floor(const orbit_shard_nodes_t *n)
{
    return orbit_tombs_floor(n->tombs);
}

uint64_t orbit_shard_nodes_gen(const orbit_shard_nodes_t *n)
{
    return n->gen;
}

static int fill_row(const orbit_shard_nodes_t *n, const shard_node_t *e, orbit_arena_t *a,
                    Orbit__NodeRow *r)
{
    const orbit_node_state_t *s = &e->st;
    orbit__node_row__init(r);
    r->node = (char *)s->name;
    r->status = (Orbit__NodeStatus)e->status;
    r->shard = (char *)n->id;
    r->has_cpu_capacity_m = r->has_cpu_free_m = r->has_mem_capacity = r->has_mem_free = true;
    r->has_gpu_capacity = r->has_gpu_healthy = r->has_mem_pressure = r->has_sampled_ms = true;
    r->cpu_capacity_m = s->cpu_capacity_m;
    r->cpu_free_m = s->cpu_capacity_m > s->cpu_used_m ? s->cpu_capacity_m - s->cpu_used_m : 0;
    r->mem_capacity = s->mem_capacity;
    r->mem_free = s->mem_capacity > s->mem_used ? s->mem_capacity - s->mem_used : 0;
    r->gpu_capacity = s->gpu_capacity;
    r->gpu_healthy = gpu_healthy(s);
    r->mem_pressure = s->pressure_available ? s->pressure.mem_some : 0;
    r->sampled_ms = s->sampled_ms;
    if (orbit_capsules_to_pb(s->capsules, s->ncapsules, a, &r->capsules) != ORBIT_OK)
        return ORBIT_ENOMEM;
    r->n_capsules = s->ncapsules;
    return orbit_arena_labels(a, s->labels, &r->labels, &r->n_labels);
}

int orbit_shard_nodes_rows(const orbit_shard_nodes_t *n, uint64_t since_gen, orbit_arena_t *a,
                           Orbit__NodeRow ***rows, size_t *nrows)
{
    size_t cap = zhashx_size(n->nodes), count = 0;
    *rows = NULL;
    *nrows = 0;
    if (!cap)
        return ORBIT_OK;
    Orbit__NodeRow **list = orbit_arena_alloc(a, cap * sizeof *list);
    if (!list)
        return ORBIT_ENOMEM;
    /* zhashx's cursor is part of the table; walking it is not a mutation of
     * the node set, so the const cast is sound. */
    zhashx_t *h = n->nodes;
    for (shard_node_t *e = zhashx_first(h); e; e = zhashx_next(h)) {
        if (e->gen <= since_gen)
            continue;
        Orbit__NodeRow *r = orbit_arena_alloc(a, sizeof *r);
        if (!r || fill_row(n, e, a, r) != ORBIT_OK)
            return ORBIT_ENOMEM;
        list[count++] = r;
    }
    *rows = list;
    *nrows = count;
    return ORBIT_OK;
}

void orbit_shard_nodes_summary(const orbit_shard_nodes_t *n, orbit_agg_t *agg)
{
    memset(agg, 0, sizeof *agg);
    zhashx_t *h = n->nodes;
    for (shard_node_t *e = zhashx_first(h); e; e = zhashx_next(h))
        orbit_agg_add_node(agg, (orbit_status_t)e->status, &e->st);
}

size_t orbit_shard_nodes_count(const orbit_shard_nodes_t *n)
{
    return zhashx_size(n->nodes);
}

const orbit_shard_nodes_stats_t *orbit_shard_nodes_stats(const orbit_shard_nodes_t *n)
{
    return &n->stats;
}

const orbit_node_state_t *orbit_shard_nodes_get(const orbit_shard_nodes_t *n, const char *name,
                                                orbit_status_t *status, int64_t *heard_ms)
{
    shard_node_t *e = zhashx_lookup(n->nodes, name);
    if (!e)
        return NULL;
    if (status)
        *status = (orbit_status_t)e->status;
    if (heard_ms)
        *heard_ms = e->heard_ms;
    return &e->st;
}

int orbit_shard_nodes_detail(const orbit_shard_nodes_t *n, const char *name, int64_t now,
                             orbit_arena_t *a, Orbit__NodeDetail **detail)
{
    shard_node_t *e = zhashx_lookup(n->nodes, name);
    if (!e)
        return ORBIT_ENOTFOUND;
    Orbit__NodeDetail *d = orbit_arena_alloc(a, sizeof *d);
    Orbit__NodeDelta *st = orbit_arena_alloc(a, sizeof *st);
    if (!d || !st)
        return ORBIT_ENOMEM;
    orbit__node_detail__init(d);
    orbit__node_delta__init(st);
    /* The state's strings are referenced, not copied: pack before the next
     * ingest. */
    int rc = orbit_node_delta_fill_arena(st, &e->st, NULL, e->seq, a);
    if (rc != ORBIT_OK)
        return rc;
    d->shard = (char *)n->id;
    d->status = (Orbit__NodeStatus)e->status;
    d->has_last_heard_ms_ago = true;
    d->last_heard_ms_ago = now - e->heard_ms;
    d->state = st;
    *detail = d;
    return ORBIT_OK;
}

size_t orbit_shard_nodes_heap_bytes(const orbit_shard_nodes_t *n)
{
    size_t bytes = 0;
    zhashx_t *h = n->nodes;
    for (shard_node_t *e = zhashx_first(h); e; e = zhashx_next(h))
        bytes += sizeof *e + orbit_node_state_heap_bytes(&e->st);
    return bytes;
}
