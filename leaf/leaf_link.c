/* leaf_link: per-node delta state, batching, acks, back-off and silence. */
#include "leaf_link.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "orbit_err.h"
#include "orbit_log.h"
#include "orbit_wire.h"

#define NONE              UINT32_MAX
#define RECV_MAX_PER_CALL 10000
#define OVERLOADS_MAX     30

/* Fields a delta may carry, for the "unacknowledged" mask. */
enum {
    F_INTERVAL = 1u << 0,
    F_CPU_CAP = 1u << 1,
    F_CPU_USED = 1u << 2,
    F_MEM_CAP = 1u << 3,
    F_MEM_USED = 1u << 4,
    F_GPU_CAP = 1u << 5,
    F_LOAD1 = 1u << 6,
    F_LOAD5 = 1u << 7,
    F_LOAD15 = 1u << 8,
    F_PRESSURE_AVAIL = 1u << 9,
    F_PRESSURE = 1u << 10,
    F_GPUS = 1u << 11,
    F_LABELS = 1u << 12,
    F_CAPSULES = 1u << 13,
    F_ALL = (1u << 14) - 1,
};

/* Node flags. */
enum {
    N_NEEDS_FULL = 1u << 0,
    N_QUEUED = 1u << 1, /* in the pending or the deferred queue */
    N_HAS_STATE = 1u << 2,
};

typedef struct {
    orbit_node_state_t cur;  /* latest state from the caller; cur.name is the node's name */
    orbit_node_state_t sent; /* the state as of the latest send */
    uint64_t next_seq;
    uint64_t last_sent_seq; /* 0: never */
    uint64_t last_full_seq;
    uint64_t acked_seq;
    int64_t backoff_until_ms;
    uint32_t next;     /* queue link */
    uint32_t ack_mark; /* "listed in the ack being applied" stamp */
    uint16_t unacked;  /* F_* carried by sends not yet acknowledged */
    uint16_t sends_since_full;
    uint8_t overloads;
    uint8_t flags;
} node_t;

typedef struct {
    uint32_t head, tail;
} queue_t;

/* One remembered batch: its node sends are entries[first .. first+count). */
typedef struct {
    uint64_t id;
    int64_t sent_ms;
    uint32_t first, count;
    bool done;
} batch_t;

typedef struct {
    uint64_t seq;
    uint32_t node;
    uint32_t full;
} entry_t;

struct orbit_leaf_link {
    zsock_t *sock;
    orbit_leaf_link_config_t cfg;
    uint64_t rng;

    node_t *nodes;
    uint32_t nnodes, cap_nodes;
    uint32_t *index; /* open addressing: node index + 1, 0 = empty */
    uint32_t index_cap;

    queue_t pending, deferred;
    int64_t deferred_min_ms; /* earliest back-off end in the deferred queue */
    bool urgent;

    /* In-flight rings: batch ids are consecutive from batches[b_head].id. */
    batch_t *batches;
    entry_t *entries;
    uint32_t ring_cap; /* both rings */
    uint32_t b_head, b_count, e_head, e_count;
    uint64_t next_batch_id;

    int64_t attempt_since_ms; /* first send attempt since the last ack; 0 none */
    unsigned events;
    uint32_t ack_gen;

    orbit_ratelimit_t reject_log; /* REJECTED reasons: one line a second */

    /* Reusable flush buffers, max_batch long once grown. */
    Orbit__NodeDelta *deltas;
    Orbit__NodeDelta **delta_ptrs;
    void **scratch;
    uint32_t *batch_idx;
    uint32_t batch_buf_cap;

    orbit_arena_t *arena;
    orbit_leaf_link_stats_t stats;
};

/* ------------------------------------------------------------------ setup */

void orbit_leaf_link_config_default(orbit_leaf_link_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->interval_ms = 1000;
    c->full_every = 30;
    c->silence_intervals = 3;
    c->backoff_cap_ms = 30000;
    c->max_batch = 256;
}

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t rng_next(orbit_leaf_link_t *l)
{
    /* xorshift64*: plenty for jitter. */
    uint64_t x = l->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    l->rng = x;
    return x * 2685821657736338717ull;
}

orbit_leaf_link_t *orbit_leaf_link_new(zsock_t *sock, const orbit_leaf_link_config_t *cfg)
{
    orbit_leaf_link_config_t c;
    if (cfg)
        c = *cfg;
    else
        orbit_leaf_link_config_default(&c);
    if (!c.interval_ms || !c.full_every || !c.silence_intervals || !c.max_batch)
        return NULL;
    if (!c.backoff_base_ms)
        c.backoff_base_ms = c.interval_ms;
    if (!c.backoff_cap_ms)
        c.backoff_cap_ms = c.backoff_base_ms;
    if (!c.first_seq)
        c.first_seq = monotonic_us();
    if (!c.first_seq)
        c.first_seq = 1; /* 0 means "none" below */

    orbit_leaf_link_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->arena = orbit_arena_new(4096);
    if (!l->arena) {
        free(l);
        return NULL;
    }
    l->sock = sock;
    l->cfg = c;
    l->rng = c.seed ? c.seed : (monotonic_us() ^ ((uint64_t)getpid() << 32));
    if (!l->rng)
        l->rng = 0x9E3779B97F4A7C15ull;
    l->pending.head = l->pending.tail = NONE;
    l->deferred.head = l->deferred.tail = NONE;
    l->deferred_min_ms = INT64_MAX;
    l->next_batch_id = 1;
    l->reject_log.burst = 1;
    return l;
}

void orbit_leaf_link_destroy(orbit_leaf_link_t **pl)
{
    if (!pl || !*pl)
        return;
    orbit_leaf_link_t *l = *pl;
    for (uint32_t i = 0; i < l->nnodes; i++) {
        orbit_node_state_close(&l->nodes[i].cur);
        orbit_node_state_close(&l->nodes[i].sent);
    }
    free(l->nodes);
    free(l->index);
    free(l->batches);
    free(l->entries);
    free(l->deltas);
    free(l->delta_ptrs);
    free(l->scratch);
    free(l->batch_idx);
    orbit_arena_destroy(&l->arena);
    free(l);
    *pl = NULL;
}

/* ------------------------------------------------------------- name index */

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* Slot holding name, or the empty slot where it would go. */
static uint32_t index_slot(const orbit_leaf_link_t *l, const char *name)
{
    uint32_t mask = l->index_cap - 1;
    uint32_t i = name_hash(name) & mask;
    while (l->index[i] && strcmp(l->nodes[l->index[i] - 1].cur.name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

static int index_grow(orbit_leaf_link_t *l, uint32_t want_nodes)
{
    uint32_t cap = l->index_cap ? l->index_cap : 16;
    while (cap / 2 < want_nodes) {
        if (cap > UINT32_MAX / 2)
            return ORBIT_ENOMEM;
        cap *= 2;
    }
    if (cap == l->index_cap)
        return ORBIT_OK;
    uint32_t *old = l->index, old_cap = l->index_cap;
    uint32_t *fresh = calloc(cap, sizeof *fresh);
    if (!fresh)
        return ORBIT_ENOMEM;
    l->index = fresh;
    l->index_cap = cap;
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i])
            l->index[index_slot(l, l->nodes[old[i] - 1].cur.name)] = old[i];
    free(old);
    return ORBIT_OK;
}

int orbit_leaf_link_find(const orbit_leaf_link_t *l, const char *name, uint32_t *idx)
{
    if (!name || !l->index_cap)
        return ORBIT_ENOTFOUND;
    uint32_t v = l->index[index_slot(l, name)];
    if (!v)
        return ORBIT_ENOTFOUND;
    *idx = v - 1;
    return ORBIT_OK;
}

uint32_t orbit_leaf_link_nodes(const orbit_leaf_link_t *l)
{
    return l->nnodes;
}

/* ------------------------------------------------------------------ queues */

static void q_push(orbit_leaf_link_t *l, queue_t *q, uint32_t i)
{
    l->nodes[i].next = NONE;
    if (q->tail == NONE)
        q->head = i;
    else
        l->nodes[q->tail].next = i;
    q->tail = i;
}

static uint32_t q_pop(orbit_leaf_link_t *l, queue_t *q)
{
    uint32_t i = q->head;
    if (i == NONE)
        return NONE;
    q->head = l->nodes[i].next;
    if (q->head == NONE)
        q->tail = NONE;
    l->nodes[i].next = NONE;
    return i;
}

/* Append all of src to dst. */
static void q_splice(orbit_leaf_link_t *l, queue_t *dst, queue_t *src)
{
    if (src->head == NONE)
        return;
    if (dst->tail == NONE)
        dst->head = src->head;
    else
        l->nodes[dst->tail].next = src->head;
    dst->tail = src->tail;
    src->head = src->tail = NONE;
}

static void enqueue(orbit_leaf_link_t *l, uint32_t i)
{
    node_t *n = &l->nodes[i];
    if ((n->flags & N_QUEUED) || !(n->flags & N_HAS_STATE))
        return;
    n->flags |= N_QUEUED;
    q_push(l, &l->pending, i);
}

/* ------------------------------------------------------------------ nodes */

int orbit_leaf_link_add_node(orbit_leaf_link_t *l, const char *name, uint32_t *idx)
{
    uint32_t dummy;
    if (!orbit_name_valid(name) || orbit_leaf_link_find(l, name, &dummy) == ORBIT_OK)
        return ORBIT_EINVAL;
    if (l->nnodes >= NONE - 1)
        return ORBIT_ENOMEM;
    if (l->nnodes == l->cap_nodes) {
        uint32_t cap = l->cap_nodes ? l->cap_nodes * 2 : 1;
        if (cap < l->cap_nodes || cap > NONE - 1)
            cap = NONE - 1;
        node_t *grown = realloc(l->nodes, (size_t)cap * sizeof *grown);
        if (!grown)
            return ORBIT_ENOMEM;
        l->nodes = grown;
        l->cap_nodes = cap;
    }
    if (index_grow(l, l->nnodes + 1) != ORBIT_OK)
        return ORBIT_ENOMEM;
    uint32_t i = l->nnodes;
    node_t *n = &l->nodes[i];
    memset(n, 0, sizeof *n);
    orbit_node_state_init(&n->cur);
    orbit_node_state_init(&n->sent);
    snprintf(n->cur.name, sizeof n->cur.name, "%s", name);
    memcpy(n->sent.name, n->cur.name, sizeof n->sent.name);
    n->next_seq = l->cfg.first_seq;
    n->next = NONE;
    n->flags = N_NEEDS_FULL;
    l->nnodes++;
    l->index[index_slot(l, n->cur.name)] = i + 1;
    *idx = i;
    return ORBIT_OK;
}

/* dst := src keeping dst's name; deep copies of the GPU and capsule lists
 * (the caller's arrays are never kept), reusing dst's arrays when the counts
 * are unchanged. dst is unchanged on ORBIT_ENOMEM. */
static int state_assign(orbit_node_state_t *dst, const orbit_node_state_t *src)
{
    orbit_gpu_t *g = dst->gpus;
    orbit_capsule_t *c = dst->capsules;
    bool new_g = src->ngpus != dst->ngpus || (src->ngpus && !g);
    bool new_c = src->ncapsules != dst->ncapsules || (src->ncapsules && !c);
    if (new_g)
        g = src->ngpus ? malloc(src->ngpus * sizeof *g) : NULL;
    if (new_c)
        c = src->ncapsules ? malloc(src->ncapsules * sizeof *c) : NULL;
    if ((new_g && src->ngpus && !g) || (new_c && src->ncapsules && !c)) {
        if (new_g)
            free(g);
        if (new_c)
            free(c);
        return ORBIT_ENOMEM;
    }
    if (new_g)
        free(dst->gpus);
    if (new_c)
        free(dst->capsules);
    char name[ORBIT_NAME_MAX];
    memcpy(name, dst->name, sizeof name);
    *dst = *src;
    memcpy(dst->name, name, sizeof name);
    dst->gpus = g;
    dst->capsules = c;
    if (src->ngpus)
        memcpy(g, src->gpus, src->ngpus * sizeof *g);
    if (src->ncapsules)
        memcpy(c, src->capsules, src->ncapsules * sizeof *c);
    return ORBIT_OK;
}

int orbit_leaf_link_update(orbit_leaf_link_t *l, uint32_t idx, const orbit_node_state_t *state)
{
    if (idx >= l->nnodes || !state || state->ngpus > ORBIT_GPUS_MAX ||
        (state->ngpus && !state->gpus) || state->ncapsules > ORBIT_CAPSULES_MAX ||
        (state->ncapsules && !state->capsules))
        return ORBIT_EINVAL;
    node_t *n = &l->nodes[idx];
    uint64_t old_incarnation = n->cur.incarnation;
    int rc = state_assign(&n->cur, state);
    if (rc != ORBIT_OK)
        return rc;
    if ((n->flags & N_HAS_STATE) && n->cur.incarnation != old_incarnation)
        n->flags |= N_NEEDS_FULL;
    n->flags |= N_HAS_STATE;
    enqueue(l, idx);
    return ORBIT_OK;
}

int orbit_leaf_link_node_info(const orbit_leaf_link_t *l, uint32_t idx,
                              orbit_leaf_link_node_info_t *info)
{
    if (idx >= l->nnodes || !info)
        return ORBIT_EINVAL;
    const node_t *n = &l->nodes[idx];
    info->next_seq = n->next_seq;
    info->last_sent_seq = n->last_sent_seq;
    info->acked_seq = n->acked_seq;
    info->sends_since_full = n->sends_since_full;
    info->overloads = n->overloads;
    info->unacked_fields = n->unacked;
    info->backoff_until_ms = n->backoff_until_ms;
    info->needs_full = (n->flags & N_NEEDS_FULL) != 0;
    info->queued = (n->flags & N_QUEUED) != 0;
    info->has_state = (n->flags & N_HAS_STATE) != 0;
    return ORBIT_OK;
}

const orbit_leaf_link_stats_t *orbit_leaf_link_stats(const orbit_leaf_link_t *l)
{
    return &l->stats;
}

bool orbit_leaf_link_needs_send(const orbit_leaf_link_t *l)
{
    return l->urgent;
}

/* ------------------------------------------------------------------ rings */

static void ring_pop(orbit_leaf_link_t *l)
{
    batch_t *b = &l->batches[l->b_head];
    l->e_head = (l->e_head + b->count) % l->ring_cap;
    l->e_count -= b->count;
    l->b_head = (l->b_head + 1) % l->ring_cap;
    l->b_count--;
}

/* Make the rings hold at least cap slots, keeping their contents in order.
 * Unchanged on ORBIT_ENOMEM. */
static int ring_reserve(orbit_leaf_link_t *l, uint32_t cap)
{
    if (cap <= l->ring_cap)
        return ORBIT_OK;
    batch_t *nb = malloc((size_t)cap * sizeof *nb);
    entry_t *ne = malloc((size_t)cap * sizeof *ne);
    if (!nb || !ne) {
        free(nb);
        free(ne);
        return ORBIT_ENOMEM;
    }
    for (uint32_t k = 0; k < l->e_count; k++)
        ne[k] = l->entries[(l->e_head + k) % l->ring_cap];
    uint32_t first = 0;
    for (uint32_t k = 0; k < l->b_count; k++) {
        nb[k] = l->batches[(l->b_head + k) % l->ring_cap];
        nb[k].first = first;
        first += nb[k].count;
    }
    free(l->batches);
    free(l->entries);
    l->batches = nb;
    l->entries = ne;
    l->ring_cap = cap;
    l->b_head = 0;
    l->e_head = 0;
    return ORBIT_OK;
}

static uint32_t ring_want(const orbit_leaf_link_t *l)
{
    uint64_t want = l->cfg.inflight_max ? l->cfg.inflight_max : (uint64_t)l->nnodes * 4;
    if (want < 64)
        want = 64;
    return want > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)want;
}

/* The remembered batch with this id, or NULL. */
static batch_t *ring_find(orbit_leaf_link_t *l, uint64_t id)
{
    if (!l->b_count)
        return NULL;
    uint64_t oldest = l->batches[l->b_head].id;
    if (id < oldest || id - oldest >= l->b_count)
        return NULL;
    return &l->batches[(l->b_head + (uint32_t)(id - oldest)) % l->ring_cap];
}

static void ring_trim_done(orbit_leaf_link_t *l)
{
    while (l->b_count && l->batches[l->b_head].done)
        ring_pop(l);
}

/* Record a sent batch of k node sends; the oldest batches are forgotten
 * when the ring is full. Returns the batch (entries to be filled). */
static batch_t *ring_push(orbit_leaf_link_t *l, uint64_t id, int64_t now_ms, uint32_t k)
{
    while (l->b_count && (l->b_count == l->ring_cap || l->e_count + k > l->ring_cap)) {
        batch_t *old = &l->batches[l->b_head];
        if (!old->done)
            l->stats.forgotten += old->count;
        ring_pop(l);
    }
    uint32_t slot = (l->b_head + l->b_count) % l->ring_cap;
    batch_t *b = &l->batches[slot];
    b->id = id;
    b->sent_ms = now_ms;
    b->first = (l->e_head + l->e_count) % l->ring_cap;
    b->count = k;
    b->done = false;
    l->b_count++;
    l->e_count += k;
    return b;
}

static entry_t *ring_entry(orbit_leaf_link_t *l, const batch_t *b, uint32_t k)
{
    return &l->entries[(b->first + k) % l->ring_cap];
}

/* ------------------------------------------------------------------ flush */

/* Make ref differ from cur in every field of mask, so that
 * orbit_node_delta_fill includes them. ref is a shallow copy: its GPU and
 * capsule arrays are never dereferenced when the counts differ. */
static void force_fields(orbit_node_state_t *ref, const orbit_node_state_t *cur, unsigned mask)
{
    if (mask & F_INTERVAL)
        ref->interval_ms = cur->interval_ms + 1;
    if (mask & F_CPU_CAP)
        ref->cpu_capacity_m = cur->cpu_capacity_m ^ 1;
    if (mask & F_CPU_USED)
        ref->cpu_used_m = cur->cpu_used_m ^ 1;
    if (mask & F_MEM_CAP)
        ref->mem_capacity = cur->mem_capacity ^ 1;
    if (mask & F_MEM_USED)
        ref->mem_used = cur->mem_used ^ 1;
    if (mask & F_GPU_CAP)
        ref->gpu_capacity = cur->gpu_capacity + 1;
    if (mask & F_LOAD1)
        ref->load1 = cur->load1 + 1;
    if (mask & F_LOAD5)
        ref->load5 = cur->load5 + 1;
    if (mask & F_LOAD15)
        ref->load15 = cur->load15 + 1;
    if (mask & F_PRESSURE_AVAIL)
        ref->pressure_available = !cur->pressure_available;
    if (mask & F_PRESSURE)
        ref->pressure.cpu_some = cur->pressure.cpu_some + 1;
    if (mask & F_GPUS) {
        ref->ngpus = cur->ngpus + 1;
        ref->gpus = NULL;
    }
    if (mask & F_CAPSULES) {
        ref->ncapsules = cur->ncapsules + 1;
        ref->capsules = NULL;
    }
    if (mask & F_LABELS) {
        ref->labels[0] = '\x01'; /* no valid label list starts with a control byte */
        ref->labels[1] = '\0';
    }
}

static unsigned fields_of(const Orbit__NodeDelta *m)
{
    unsigned f = 0;
    f |= m->has_interval_ms ? F_INTERVAL : 0;
    f |= m->has_cpu_capacity_m ? F_CPU_CAP : 0;
    f |= m->has_cpu_used_m ? F_CPU_USED : 0;
    f |= m->has_mem_capacity ? F_MEM_CAP : 0;
    f |= m->has_mem_used ? F_MEM_USED : 0;
    f |= m->has_gpu_capacity ? F_GPU_CAP : 0;
    f |= m->has_load1 ? F_LOAD1 : 0;
    f |= m->has_load5 ? F_LOAD5 : 0;
    f |= m->has_load15 ? F_LOAD15 : 0;
    f |= m->has_pressure_available ? F_PRESSURE_AVAIL : 0;
    f |= m->pressure ? F_PRESSURE : 0;
    f |= (m->has_gpus_set && m->gpus_set) ? F_GPUS : 0;
    f |= (m->has_labels_set && m->labels_set) ? F_LABELS : 0;
    f |= (m->has_capsules_set && m->capsules_set) ? F_CAPSULES : 0;
    return f;
}

static bool send_is_full(const orbit_leaf_link_t *l, const node_t *n)
{
    return (n->flags & N_NEEDS_FULL) || !n->last_sent_seq ||
           (uint32_t)n->sends_since_full + 1 >= l->cfg.full_every;
}

static int batch_buffers(orbit_leaf_link_t *l)
{
    uint32_t cap = l->cfg.max_batch;
    if (l->batch_buf_cap >= cap)
        return ORBIT_OK;
    /* Grow gradually: a single-node leaf never pays for max_batch. */
    uint32_t want = l->batch_buf_cap ? l->batch_buf_cap * 2 : 1;
    while (want < cap && want < l->nnodes)
        want *= 2;
    if (want > cap)
        want = cap;
    Orbit__NodeDelta *d = realloc(l->deltas, want * sizeof *d);
    if (d)
        l->deltas = d;
    Orbit__NodeDelta **p = realloc(l->delta_ptrs, want * sizeof *p);
    if (p)
        l->delta_ptrs = p;
    void **s = realloc(l->scratch, want * sizeof *s);
    if (s)
        l->scratch = s;
    uint32_t *x = realloc(l->batch_idx, want * sizeof *x);
    if (x)
        l->batch_idx = x;
    if (!d || !p || !s || !x)
        return ORBIT_ENOMEM;
    l->batch_buf_cap = want;
    return ORBIT_OK;
}

/* Build, send and (on success) commit one batch of the k nodes in
 * batch_idx. Nothing about the nodes changes unless the send succeeded. */
static int send_batch(orbit_leaf_link_t *l, uint32_t k, int64_t now_ms)
{
    int rc = ORBIT_OK;
    uint32_t built = 0;
    for (; built < k; built++) {
        node_t *n = &l->nodes[l->batch_idx[built]];
        Orbit__NodeDelta *d = &l->deltas[built];
        orbit__node_delta__init(d);
        l->delta_ptrs[built] = d;
        l->scratch[built] = NULL;
        if (send_is_full(l, n)) {
            rc = orbit_node_delta_fill(d, &n->cur, NULL, n->next_seq, &l->scratch[built]);
        } else {
            orbit_node_state_t ref = n->sent;
            force_fields(&ref, &n->cur, n->unacked);
            rc = orbit_node_delta_fill(d, &n->cur, &ref, n->next_seq, &l->scratch[built]);
        }
        if (rc != ORBIT_OK)
            goto cleanup;
    }
    Orbit__LeafBatch batch = ORBIT__LEAF_BATCH__INIT;
    batch.batch_id = l->next_batch_id;
    batch.n_deltas = k;
    batch.deltas = l->delta_ptrs;
    if (!l->attempt_since_ms)
        l->attempt_since_ms = now_ms ? now_ms : 1;
    rc = orbit_wire_send(l->sock, NULL, 0, ORBIT_MSG_LEAF_BATCH, &batch.base);
    if (rc != ORBIT_OK)
        goto cleanup;

    /* Sent: commit every node. */
    batch_t *b = ring_push(l, l->next_batch_id, now_ms, k);
    l->next_batch_id++;
    l->stats.batches_sent++;
    for (uint32_t i = 0; i < k; i++) {
        uint32_t idx = l->batch_idx[i];
        node_t *n = &l->nodes[idx];
        const Orbit__NodeDelta *d = &l->deltas[i];
        bool full = d->has_full && d->full;
        entry_t *e = ring_entry(l, b, i);
        e->seq = d->seq;
        e->node = idx;
        e->full = full;
        n->last_sent_seq = d->seq;
        n->next_seq = d->seq + 1;
        if (full) {
            n->last_full_seq = d->seq;
            n->sends_since_full = 0;
            n->flags &= (uint8_t)~N_NEEDS_FULL;
            n->unacked = F_ALL;
            l->stats.fulls_sent++;
        } else {
            if (n->sends_since_full < UINT16_MAX)
                n->sends_since_full++;
            n->unacked |= (uint16_t)fields_of(d);
            l->stats.deltas_sent++;
        }
        if (state_assign(&n->sent, &n->cur) != ORBIT_OK) {
            /* Without the sent state no delta is safe: fall back to full. */
            n->flags |= N_NEEDS_FULL;
            n->unacked = F_ALL;
        }
    }
cleanup:
    /* A fill that failed allocated nothing; the ones before it did. */
    for (uint32_t i = 0; i < built; i++)
        free(l->scratch[i]);
    return rc;
}

int orbit_leaf_link_flush(orbit_leaf_link_t *l, int64_t now_ms)
{
    if (!l->sock)
        return ORBIT_EINVAL;
    l->urgent = false;
    if (l->deferred.head != NONE && now_ms >= l->deferred_min_ms) {
        q_splice(l, &l->pending, &l->deferred);
        l->deferred_min_ms = INT64_MAX;
    }
    if (l->pending.head == NONE)
        return 0;
    int rc = ring_reserve(l, ring_want(l));
    if (rc == ORBIT_OK)
        rc = batch_buffers(l);
    if (rc != ORBIT_OK)
        return rc;

    int sent = 0;
    while (l->pending.head != NONE) {
        uint32_t k = 0, max = l->batch_buf_cap;
        if (max > l->ring_cap)
            max = l->ring_cap;
        while (k < max && l->pending.head != NONE) {
            uint32_t i = q_pop(l, &l->pending);
            node_t *n = &l->nodes[i];
            if (n->backoff_until_ms > now_ms) {
                q_push(l, &l->deferred, i); /* stays N_QUEUED */
                if (n->backoff_until_ms < l->deferred_min_ms)
                    l->deferred_min_ms = n->backoff_until_ms;
                continue;
            }
            l->batch_idx[k++] = i;
        }
        if (!k)
            break;
        rc = send_batch(l, k, now_ms);
        if (rc != ORBIT_OK) {
            /* Put the batch back in front, in order, still queued. */
            queue_t back = {NONE, NONE};
            for (uint32_t j = 0; j < k; j++)
                q_push(l, &back, l->batch_idx[j]);
            q_splice(l, &back, &l->pending);
            l->pending = back;
            if (rc == ORBIT_EAGAIN) {
                l->stats.send_dropped++;
                l->stats.dropped_nodes += k;
                return sent;
            }
            l->stats.send_errors++;
            return rc;
        }
        for (uint32_t j = 0; j < k; j++)
            l->nodes[l->batch_idx[j]].flags &= (uint8_t)~N_QUEUED;
        sent += (int)k;
        /* The next batch may grow the buffers up to max_batch. */
        if (l->pending.head != NONE && batch_buffers(l) != ORBIT_OK)
            break;
    }
    return sent;
}

/* -------------------------------------------------------------------- acks */

static uint32_t backoff_ms(orbit_leaf_link_t *l, uint32_t n)
{
    uint64_t cap = l->cfg.backoff_cap_ms, d = l->cfg.backoff_base_ms;
    for (uint32_t i = 0; i < n && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    /* x [0.5, 1.5) */
    uint64_t permille = 500 + rng_next(l) % 1000;
    return (uint32_t)(d * permille / 1000);
}

static void log_reject(orbit_leaf_link_t *l, const node_t *n, const char *reason, int64_t now)
{
    uint64_t suppressed = 0;
    if (!orbit_ratelimit_pass(&l->reject_log, now, &suppressed))
        return;
    orbit_warn("link: shard rejected %s: %s (%" PRIu64 " similar lines suppressed)", n->cur.name,
               reason && *reason ? reason : "no reason given", suppressed);
}

static void apply_verdict(orbit_leaf_link_t *l, uint32_t idx, uint64_t seq, int verdict,
                          const char *reason, int64_t now_ms)
{
    node_t *n = &l->nodes[idx];
    if (!seq || seq > n->last_sent_seq) {
        l->stats.ack_unknown++;
        return;
    }
    switch (verdict) {
    case ORBIT__VERDICT__OK:
    case ORBIT__VERDICT__DUPLICATE:
        if (verdict == ORBIT__VERDICT__OK)
            l->stats.acked++;
        else
            l->stats.duplicate++;
        n->overloads = 0;
        if (seq > n->acked_seq)
            n->acked_seq = seq;
        if (seq == n->last_sent_seq)
            n->unacked = 0; /* the shard holds exactly n->sent */
        break;
    case ORBIT__VERDICT__OVERLOADED: {
        l->stats.overloaded++;
        if (n->overloads < OVERLOADS_MAX)
            n->overloads++;
        n->backoff_until_ms = now_ms + backoff_ms(l, n->overloads);
        if (seq == n->last_sent_seq && seq > n->acked_seq) {
            /* Not applied: send this seq again, so the shard sees no gap. */
            n->next_seq = seq;
            if (seq == n->last_full_seq)
                n->flags |= N_NEEDS_FULL;
        } else {
            /* A later send is in flight on top of the unapplied one. */
            n->flags |= N_NEEDS_FULL;
        }
        enqueue(l, idx);
        break;
    }
    case ORBIT__VERDICT__RESYNC:
        l->stats.resync++;
        n->flags |= N_NEEDS_FULL;
        if (n->backoff_until_ms <= now_ms)
            l->urgent = true;
        enqueue(l, idx);
        break;
    case ORBIT__VERDICT__REJECTED:
        l->stats.rejected++;
        n->flags |= N_NEEDS_FULL;
        log_reject(l, n, reason, now_ms);
        break;
    case ORBIT__VERDICT__WRONG_SHARD:
        l->stats.wrong_shard++;
        n->flags |= N_NEEDS_FULL;
        l->events |= ORBIT_LEAF_LINK_WRONG_SHARD;
        break;
    default: l->stats.ack_bad++; break;
    }
}

static bool verdict_known(int v)
{
    return v >= ORBIT__VERDICT__OK && v <= ORBIT__VERDICT__WRONG_SHARD;
}

int orbit_leaf_link_handle_ack(orbit_leaf_link_t *l, const Orbit__LeafAck *ack, int64_t now_ms)
{
    l->stats.acks++;
    l->attempt_since_ms = 0; /* the shard is alive, whatever it says */
    if (ack->has_topology_epoch && ack->topology_epoch > l->stats.topology_epoch)
        l->stats.topology_epoch = ack->topology_epoch;
    if (!verdict_known((int)ack->verdict)) {
        l->stats.ack_bad++;
        return ORBIT_EINVAL;
    }
    batch_t *b = ring_find(l, ack->batch_id);
    if (!b || b->done) {
        l->stats.ack_unknown++;
        return ORBIT_ENOTFOUND;
    }
    b->done = true;
    uint32_t mark = ++l->ack_gen;
    if (!mark)
        mark = ++l->ack_gen;
    /* OVERLOADED is batch-wide: nothing was applied, whatever is listed. */
    if (ack->verdict != ORBIT__VERDICT__OVERLOADED) {
        for (size_t i = 0; i < ack->n_nodes; i++) {
            const Orbit__NodeAck *na = ack->nodes[i];
            uint32_t idx;
            if (!na || orbit_leaf_link_find(l, na->node, &idx) != ORBIT_OK) {
                l->stats.ack_unknown++;
                continue;
            }
            l->nodes[idx].ack_mark = mark;
            apply_verdict(l, idx, na->seq, (int)na->verdict, na->reason, now_ms);
        }
    }
    for (uint32_t k = 0; k < b->count; k++) {
        const entry_t *e = ring_entry(l, b, k);
        if (l->nodes[e->node].ack_mark == mark)
            continue;
        apply_verdict(l, e->node, e->seq, (int)ack->verdict, NULL, now_ms);
    }
    ring_trim_done(l);
    return ORBIT_OK;
}

int orbit_leaf_link_recv(orbit_leaf_link_t *l, int64_t now_ms)
{
    if (!l->sock)
        return ORBIT_EINVAL;
    orbit_rx_t rx;
    orbit_rx_init(&rx);
    int applied = 0, rc = ORBIT_OK;
    for (int k = 0; k < RECV_MAX_PER_CALL; k++) {
        rc = orbit_wire_recv(l->sock, 0, &rx);
        if (rc == ORBIT_EAGAIN) {
            rc = ORBIT_OK;
            break;
        }
        if (rc == ORBIT_EIO)
            break;
        if (rc != ORBIT_OK) {
            l->stats.ack_bad++;
            rc = ORBIT_OK;
            continue;
        }
        ProtobufCMessage *m = NULL;
        int drc = orbit_wire_decode(orbit_rx_data(&rx), orbit_rx_size(&rx), ORBIT_MSG_LEAF_ACK,
                                    orbit_arena_allocator(l->arena), NULL, &m);
        if (drc != ORBIT_OK) {
            l->stats.ack_bad++;
        } else if (orbit_leaf_link_handle_ack(l, (const Orbit__LeafAck *)m, now_ms) == ORBIT_OK) {
            applied++;
        }
        orbit_arena_reset(l->arena);
    }
    orbit_rx_close(&rx);
    return rc == ORBIT_OK ? applied : rc;
}

/* -------------------------------------------------------------- timekeeping */

unsigned orbit_leaf_link_tick(orbit_leaf_link_t *l, int64_t now_ms)
{
    int64_t silence = (int64_t)l->cfg.silence_intervals * l->cfg.interval_ms;
    while (l->b_count) {
        batch_t *b = &l->batches[l->b_head];
        if (!b->done) {
            if (now_ms - b->sent_ms < silence)
                break;
            for (uint32_t k = 0; k < b->count; k++) {
                const entry_t *e = ring_entry(l, b, k);
                node_t *n = &l->nodes[e->node];
                if (n->last_sent_seq == e->seq && n->acked_seq < e->seq) {
                    n->flags |= N_NEEDS_FULL;
                    l->stats.silent_nodes++;
                }
            }
        }
        ring_pop(l);
    }
    if (l->attempt_since_ms && now_ms - l->attempt_since_ms >= silence) {
        l->events |= ORBIT_LEAF_LINK_SILENT;
        l->stats.shard_silent++;
        l->attempt_since_ms = 0;
    }
    unsigned ev = l->events;
    l->events = 0;
    return ev;
}

void orbit_leaf_link_set_socket(orbit_leaf_link_t *l, zsock_t *sock)
{
    l->sock = sock;
    while (l->b_count) {
        if (!l->batches[l->b_head].done)
            l->stats.forgotten += l->batches[l->b_head].count;
        ring_pop(l);
    }
    q_splice(l, &l->pending, &l->deferred);
    l->deferred_min_ms = INT64_MAX;
    l->attempt_since_ms = 0;
    for (uint32_t i = 0; i < l->nnodes; i++) {
        node_t *n = &l->nodes[i];
        n->flags |= N_NEEDS_FULL;
        n->overloads = 0;
        n->backoff_until_ms = 0;
        enqueue(l, i);
    }
    l->urgent = l->pending.head != NONE;
}
