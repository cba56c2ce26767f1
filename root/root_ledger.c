/* root_ledger: the client API of the Ephemeris on one root replica. */
#include "root_ledger.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ledger.h"
#include "ledger_applier.h"
#include "orbit_err.h"
#include "orbit_hash.h"
#include "orbit_ledger_pipe.h"
#include "orbit_log.h"
#include "orbit_wire.h"
#include "topology_fetch.h"

#define DEFAULT_BATCH_MAX    4096
#define PIPELINE_ENTRIES     2
#define FLUSH_HOLD_MS        20
#define DEFAULT_QUEUE_MAX    65536
#define DEFAULT_HISTORY_KEEP 100000
#define TICK_MS              250
/* How long a follower holds its first committed entry before it applies
 * what it holds in one LMDB transaction (ledger_applier.h; the byte and
 * entry caps are there, the scaling by replica id in fsm_apply's comment). */
#define DEFAULT_APPLY_BATCH_MS 100
#define EXPIRY_CLIENT          "orbit-expiry"

typedef struct gather gather_t;

typedef struct {
    uint8_t rid[ORBIT_ROUTING_ID_MAX];
    size_t rid_len; /* 0: nobody to answer (leader-made proposal) */
    uint64_t transport_id;
    gather_t *g; /* a ProposeBatch member: answered in slot of g */
    uint32_t slot;
} asker_t;

/* The answers of one ProposeBatch, sent together when the last arrives. */
struct gather {
    asker_t who; /* the sender of the batch (g NULL) */
    size_t n, left;
    Orbit__Ledger__BatchResult *res;
    Orbit__Ledger__BatchResult **resp;
};

typedef struct {
    orbit_root_ledger_t *rl;
    size_t n;
    asker_t *who;
} batch_t;

/* A queued proposal's encoding: qb[off, off + len). */
typedef struct {
    size_t off, len;
} qslot_t;

typedef struct {
    Orbit__Ledger__Outcome **o;
    size_t n;
} fsm_result_t;

typedef struct {
    orbit_root_ledger_t *rl;
    asker_t who;
    char *key; /* get */
} op_t;

struct orbit_root_ledger {
    orbit_root_ledger_cfg_t cfg;
    char *data_dir, *raft, *cluster;
    uv_loop_t *loop;
    zsock_t *router;
    orbit_ledger_t *ledger;
    orbit_consensus_t *cons;
    int64_t last_time;
    /* Proposals waiting for the next flush, as their encodings back to back
     * in qb (proposal i at qs[i]): an entry is framed from them by copying.
     * A batch whose proposals slice out of the request is copied, not
     * encoded again (requests are still decoded, to validate them). */
    uint8_t *qb;
    size_t qb_len, qb_cap;
    qslot_t *qs;
    asker_t *qw;
    size_t qn, qcap;
    orbit_arena_t *arena;            /* the request being handled */
    orbit_ledger_applier_t *applier; /* a follower's entries (see fsm_apply) */
    size_t inflight;
    size_t entries_inflight; /* Raft entries proposed, not yet committed or failed */
    uv_timer_t flush, tick;
    int open_handles;
    void (*closed)(void *);
    void *closed_arg;
    orbit_root_ledger_stats_t st;
    orbit_ratelimit_t rl;
};

/* ------------------------------------------------------------ state machine */

/* Every entry raft counts applied is in the ledger (the applier's held
 * ones applied first). A failure leaves them held. */
static int sync_applier(orbit_root_ledger_t *rl)
{
    return rl->applier ? orbit_ledger_applier_sync(rl->applier) : ORBIT_OK;
}

static int fsm_flush(void *ctx)
{
    return sync_applier(ctx);
}

/* A follower answers nobody, so it hands its entries to the applier
 * (ledger_applier.h), which applies them in batches on its own thread: one
 * LMDB transaction per --apply-batch-ms instead of one per entry (~25 %
 * less CPU per proposal), without stalling raft on this loop. The batch
 * time differs by replica id, so the followers are not all busy at once.
 * Reads, a snapshot, a restore and leadership sync first, so nothing reads
 * a state that misses an entry raft counts applied. The leader applies each
 * entry at once: its outcomes are the answers. */
static int fsm_apply(void *ctx, uint64_t index, const void *buf, size_t len, void **result)
{
    orbit_root_ledger_t *rl = ctx;
    if (rl->applier && !orbit_consensus_is_leader(rl->cons) &&
        orbit_ledger_applier_hold(rl->applier, index, buf, len) == ORBIT_OK)
        return 0;
    int rc = sync_applier(rl);
    fsm_result_t *r = rc ? NULL : calloc(1, sizeof *r);
    if (!rc && !r)
        rc = ORBIT_ENOMEM;
    if (!rc)
        rc = orbit_ledger_apply(rl->ledger, buf, len, index, &r->o, &r->n);
    if (rc != ORBIT_OK) {
        free(r);
        orbit_error("ledger: cannot apply entry %llu: %s", (unsigned long long)index,
                    orbit_strerror(rc));
        return rc;
    }
    *result = r;
    return 0;
}

static void fsm_result_free(void *ctx, void *result)
{
    (void)ctx;
    fsm_result_t *r = result;
    if (r) {
        orbit_ledger_outcomes_free(r->o, r->n);
        free(r);
    }
}

/* raft's worker thread: a copy of the data file through an LMDB read
 * transaction, concurrent with apply on the loop; the copy carries its
 * applied index. Not compacted: the ledger mostly grows, so a compact copy
 * saves little and costs twice the CPU. */
static int fsm_snapshot_async(void *ctx, void **buf, size_t *len)
{
    orbit_root_ledger_t *rl = ctx;
    uint8_t *b = NULL;
    int rc = orbit_ledger_snapshot_buf(rl->ledger, false, &b, len, NULL);
    *buf = b;
    return rc;
}

/* The same copy on the loop (the seam's table requires it; with
 * snapshot_async present raft's snapshots go through the worker). */
static int fsm_snapshot(void *ctx, uint64_t index, void **buf, size_t *len)
{
    (void)index;
    return fsm_snapshot_async(ctx, buf, len);
}

static void fsm_snapshot_free(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    orbit_ledger_snapshot_free(buf, len);
}

static int fsm_restore(void *ctx, uint64_t index, const void *buf, size_t len)
{
    (void)index;
    orbit_root_ledger_t *rl = ctx;
    char err[256] = "";
    int rc = orbit_ledger_restore_buf(rl->ledger, buf, len, err, sizeof err);
    if (rc != ORBIT_OK) {
        orbit_error("ledger: cannot restore a snapshot: %s", err);
        return rc;
    }
    orbit_info("ledger: restored a snapshot of %.1f MiB, applied index %llu",
               (double)len / 1048576.0, (unsigned long long)orbit_ledger_applied_index(rl->ledger));
    /* Failing here only defers the node index to the next "node/..." get. */
    (void)orbit_ledger_index_nodes(rl->ledger, NULL);
    return rc;
}

static uint64_t fsm_applied(void *ctx)
{
    orbit_root_ledger_t *rl = ctx;
    uint64_t held = rl->applier ? orbit_ledger_applier_pending(rl->applier) : 0;
    return held ? held : orbit_ledger_applied_index(rl->ledger);
}

static const orbit_consensus_fsm_t fsm = {.apply = fsm_apply,
                                          .snapshot = fsm_snapshot,
                                          .snapshot_async = fsm_snapshot_async,
                                          .snapshot_free = fsm_snapshot_free,
                                          .restore = fsm_restore,
                                          .applied_index = fsm_applied,
                                          .flush = fsm_flush,
                                          .result_free = fsm_result_free};

static void on_state(void *ctx, bool is_leader, uint64_t term, unsigned leader_id)
{
    orbit_root_ledger_t *rl = ctx;
    orbit_info("ledger: replica %u: %s (term %llu, leader %u)", rl->cfg.id,
               is_leader ? "leader" : "follower", (unsigned long long)term, leader_id);
    if (is_leader)
        (void)sync_applier(rl); /* its next apply flushes too */
}

/* ---------------------------------------------------------------- replies */

static void send_reply(orbit_root_ledger_t *rl, const asker_t *w, Orbit__Ledger__Reply *rep)
{
    if (!w->rid_len)
        return;
    rep->request_id = w->transport_id;
    orbit_wire_send(rl->router, w->rid, w->rid_len, ORBIT_MSG_LEDGER_REPLY, &rep->base);
}

static void reply_error(orbit_root_ledger_t *rl, const asker_t *w, const char *error)
{
    Orbit__Ledger__Reply rep = ORBIT__LEDGER__REPLY__INIT;
    rep.error = (char *)error;
    send_reply(rl, w, &rep);
}

static void gather_release(orbit_root_ledger_t *rl, gather_t *g)
{
    if (--g->left)
        return;
    Orbit__Ledger__Reply rep = ORBIT__LEDGER__REPLY__INIT;
    rep.results = g->resp;
    rep.n_results = g->n;
    send_reply(rl, &g->who, &rep);
    for (size_t i = 0; i < g->n; i++)
        if (g->res[i].outcome)
            orbit__ledger__outcome__free_unpacked(g->res[i].outcome, NULL);
    free(g->res);
    free(g->resp);
    free(g);
}

/* Answer one proposal: with *o (taken: *o is NULL afterwards) or error.
 * A batch member fills its slot; the batch is answered with its last. */
static void answer_proposal(orbit_root_ledger_t *rl, const asker_t *w, Orbit__Ledger__Outcome **o,
                            const char *error)
{
    Orbit__Ledger__Outcome *out = o ? *o : NULL;
    if (o)
        *o = NULL;
    if (w->g) {
        Orbit__Ledger__BatchResult *r = &w->g->res[w->slot];
        r->outcome = out;
        r->error = out ? NULL : (char *)error;
        gather_release(rl, w->g);
        return;
    }
    Orbit__Ledger__Reply rep = ORBIT__LEDGER__REPLY__INIT;
    rep.outcome = out;
    rep.error = out ? NULL : (char *)error;
    send_reply(rl, w, &rep);
    if (out)
        orbit__ledger__outcome__free_unpacked(out, NULL);
}

static void reply_not_leader(orbit_root_ledger_t *rl, const asker_t *w)
{
    Orbit__Ledger__Reply rep = ORBIT__LEDGER__REPLY__INIT;
    rep.has_not_leader = rep.not_leader = true;
    unsigned id = 0;
    const char *addr = NULL;
    if (orbit_consensus_leader(rl->cons, &id, &addr) == 0 && id) {
        rep.has_leader_id = true;
        rep.leader_id = id;
        rep.leader_address = (char *)addr;
    }
    rl->st.not_leader++;
    send_reply(rl, w, &rep);
}

/* ------------------------------------------------------------- proposing */

static void on_flush(uv_timer_t *t);

static void on_committed(void *ctx, int status, uint64_t index, void *result)
{
    (void)index;
    batch_t *b = ctx;
    orbit_root_ledger_t *rl = b->rl;
    fsm_result_t *r = result;
    for (size_t i = 0; i < b->n; i++) {
        if (status == 0 && r && i < r->n && r->o[i]) {
            answer_proposal(rl, &b->who[i], &r->o[i], NULL);
        } else {
            rl->st.lost++;
            answer_proposal(rl, &b->who[i], NULL,
                            "not committed (leadership changed); retry with the same request id");
        }
    }
    rl->inflight -= b->n;
    rl->entries_inflight--;
    /* Proposals held back while the pipeline was full go out now (restarting
     * a held timer, which would otherwise wait out its hold). */
    if (rl->qn)
        uv_timer_start(&rl->flush, on_flush, 0, 0);
    fsm_result_free(rl, r);
    free(b->who);
    free(b);
}

/* Entry time: the leader's clock, never below the last applied entry's
 * time nor the last time this replica stamped, so time is monotonic across
 * leader changes even with skewed clocks. */
static int64_t stamp(orbit_root_ledger_t *rl)
{
    (void)sync_applier(rl); /* a new leader's applier may still hold entries */
    int64_t t = zclock_time();
    int64_t applied = orbit_ledger_time(rl->ledger);
    if (t < applied)
        t = applied;
    if (t < rl->last_time)
        t = rl->last_time;
    rl->last_time = t;
    return t;
}

/* The next entry from the first n queued proposals: Entry{time_ms,
 * proposals} framed by hand around their bytes (the field numbers are
 * ledger.h's). A malloc'd buffer; NULL on ENOMEM. */
static uint8_t *frame_entry(orbit_root_ledger_t *rl, size_t n, size_t *len)
{
    int64_t t = stamp(rl);
    size_t total = orbit_pb_varint_field_size(ORBIT_LEDGER_ENTRY_TIME, (uint64_t)t);
    for (size_t i = 0; i < n; i++)
        total += orbit_pb_bytes_field_size(ORBIT_LEDGER_ENTRY_PROPOSALS, rl->qs[i].len);
    uint8_t *buf = malloc(total);
    if (!buf)
        return NULL;
    size_t at = orbit_pb_put_varint_field(buf, ORBIT_LEDGER_ENTRY_TIME, (uint64_t)t);
    for (size_t i = 0; i < n; i++)
        at += orbit_pb_put_bytes_field(buf + at, ORBIT_LEDGER_ENTRY_PROPOSALS,
                                       rl->qb + rl->qs[i].off, rl->qs[i].len);
    *len = at;
    return buf;
}

/* Everything queued becomes one entry: never more than batch_max, since
 * queued() flushes as the queue reaches it. */
static void flush(orbit_root_ledger_t *rl)
{
    size_t n = rl->qn;
    if (!n)
        return;
    batch_t *b = calloc(1, sizeof *b);
    asker_t *who = malloc(n * sizeof *who);
    size_t len = 0;
    uint8_t *buf = b && who ? frame_entry(rl, n, &len) : NULL;
    int rc = ORBIT_ENOMEM;
    if (buf) {
        memcpy(who, rl->qw, n * sizeof *who);
        b->rl = rl;
        b->n = n;
        b->who = who;
        rc = orbit_consensus_propose(rl->cons, buf, len, on_committed, b);
    }
    free(buf);
    if (rc == 0) {
        rl->st.entries++;
        rl->inflight += n;
        rl->entries_inflight++;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (rc == ORBIT_ENOMEM)
                answer_proposal(rl, &rl->qw[i], NULL, "leader out of memory; retry");
            else if (rl->qw[i].g)
                answer_proposal(rl, &rl->qw[i], NULL, "not the leader any more; retry");
            else
                reply_not_leader(rl, &rl->qw[i]);
        }
        free(who);
        free(b);
    }
    rl->qn = 0;
    rl->qb_len = 0;
}

static void on_flush(uv_timer_t *t)
{
    flush(t->data);
}

/* Room for the next queued proposal's len bytes, its slot taken with asker
 * w; NULL when there is none, w then answered. The caller writes the bytes
 * and calls queued(). */
static uint8_t *queue_slot(orbit_root_ledger_t *rl, size_t len, const asker_t *w)
{
    if (rl->qn + rl->inflight >= rl->cfg.queue_max) {
        rl->st.overloaded++;
        answer_proposal(rl, w, NULL, "overloaded: too many proposals in flight; retry");
        return NULL;
    }
    if (rl->qn == rl->qcap) {
        size_t cap = rl->qcap ? rl->qcap * 2 : 256;
        qslot_t *qs = realloc(rl->qs, cap * sizeof *qs);
        if (qs)
            rl->qs = qs;
        asker_t *qw = qs ? realloc(rl->qw, cap * sizeof *qw) : NULL;
        if (!qs || !qw) {
            answer_proposal(rl, w, NULL, "leader out of memory; retry");
            return NULL;
        }
        rl->qw = qw;
        rl->qcap = cap;
    }
    if (rl->qb_cap - rl->qb_len < len || !rl->qb) { /* also for an empty first one */
        size_t cap = rl->qb_cap ? rl->qb_cap : 64 * 1024;
        while (cap - rl->qb_len < len)
            cap *= 2;
        uint8_t *qb = realloc(rl->qb, cap);
        if (!qb) {
            answer_proposal(rl, w, NULL, "leader out of memory; retry");
            return NULL;
        }
        rl->qb = qb;
        rl->qb_cap = cap;
    }
    rl->qs[rl->qn] = (qslot_t){rl->qb_len, len};
    rl->qw[rl->qn] = *w;
    return rl->qb + rl->qb_len;
}

/* The slot queue_slot gave is filled: it joins the queue. */
static void queued(orbit_root_ledger_t *rl)
{
    rl->qb_len += rl->qs[rl->qn].len;
    rl->qn++;
    rl->st.proposals++;
    if (rl->qn >= rl->cfg.batch_max)
        flush(rl);
    else if (!uv_is_active((uv_handle_t *)&rl->flush))
        /* Everything that arrives before the loop's next turn shares one
         * entry: under load batches fill, idle proposals wait no time. With
         * PIPELINE_ENTRIES entries already in flight, the next entry waits
         * for one of them to commit (or FLUSH_HOLD_MS at most): every entry
         * costs an LMDB transaction and an fsync on each replica, so fewer,
         * fuller entries carry more proposals per second. */
        uv_timer_start(&rl->flush, on_flush,
                       rl->entries_inflight < PIPELINE_ENTRIES ? 0 : FLUSH_HOLD_MS, 0);
}

/* Queue the encoded proposal raw[0..len) (copied) for the next entry. */
static void enqueue_raw(orbit_root_ledger_t *rl, const uint8_t *raw, size_t len, const asker_t *w)
{
    uint8_t *at = queue_slot(rl, len, w);
    if (at) {
        memcpy(at, raw, len);
        queued(rl);
    }
}

/* Queue p (encoded into the queue) for the next entry. */
static void enqueue(orbit_root_ledger_t *rl, const Orbit__Ledger__Proposal *p, const asker_t *w)
{
    size_t len = orbit__ledger__proposal__get_packed_size(p);
    uint8_t *at = queue_slot(rl, len, w);
    if (at) {
        orbit__ledger__proposal__pack(p, at);
        queued(rl);
    }
}

/* Field numbers of Request.propose_batch and ProposeBatch.proposals, from
 * the descriptors (proto/ledger.proto). */
static uint32_t request_batch_field, batch_proposals_field;

/* The encoded proposals of the ProposeBatch request body[0..len), in order,
 * into out[0..n): false when they are not exactly the n that decoding found
 * (then the decoded ones are encoded again instead). */
static bool batch_slices(const uint8_t *body, size_t len, size_t n, orbit_pb_slice_t *out)
{
    orbit_pb_slice_t batches[4];
    size_t nb = 0, found = 0;
    if (!orbit_pb_slices(body, len, request_batch_field, batches, 4, &nb))
        return false;
    for (size_t i = 0; i < nb; i++)
        if (!orbit_pb_slices(batches[i].p, batches[i].len, batch_proposals_field, out, n, &found))
            return false;
    return found == n;
}

/* Queue every proposal of batch b under one gather: the bytes of raw[i]
 * when raw is not NULL, else each proposal encoded again. */
static void enqueue_batch(orbit_root_ledger_t *rl, const Orbit__Ledger__ProposeBatch *b,
                          const orbit_pb_slice_t *raw, const asker_t *w)
{
    size_t n = b->n_proposals;
    gather_t *g = calloc(1, sizeof *g);
    if (g) {
        g->res = calloc(n, sizeof *g->res);
        g->resp = calloc(n, sizeof *g->resp);
    }
    if (!g || !g->res || !g->resp) {
        if (g) {
            free(g->res);
            free(g->resp);
        }
        free(g);
        reply_error(rl, w, "leader out of memory; retry");
        return;
    }
    g->who = *w;
    g->n = n;
    g->left = n + 1; /* held until every member is queued */
    rl->st.batches++;
    for (size_t i = 0; i < n; i++) {
        orbit__ledger__batch_result__init(&g->res[i]);
        g->resp[i] = &g->res[i];
    }
    for (size_t i = 0; i < n; i++) {
        asker_t m = *w;
        m.g = g;
        m.slot = (uint32_t)i;
        if (raw)
            enqueue_raw(rl, raw[i].p, raw[i].len, &m);
        else
            enqueue(rl, b->proposals[i], &m);
    }
    gather_release(rl, g);
}

/* ------------------------------------------------------------ reads */

static void answer_get(orbit_root_ledger_t *rl, const asker_t *w, const char *key)
{
    (void)sync_applier(rl); /* a failure answers from the state as it is */
    Orbit__Ledger__Reply rep = ORBIT__LEDGER__REPLY__INIT;
    char *json = NULL;
    uint64_t index = 0;
    int rc = orbit_ledger_get_json(rl->ledger, key, &json, &index);
    if (rc == ORBIT_OK) {
        rep.value = json;
        rep.has_value_index = true;
        rep.value_index = index;
    } else if (rc != ORBIT_ENOTFOUND) {
        rep.error = rc == ORBIT_EINVAL ? "unknown key form (placement/<capsule>, node/<node>, "
                                         "principal/<p>, lease/<r>, identity/<id>, gang/<g>, "
                                         "module/<mission>/<module>, shard/<s>, rack/<r>, "
                                         "topology)"
                                       : "storage error";
    }
    send_reply(rl, w, &rep);
    free(json);
}

static void answer_snapshot(orbit_root_ledger_t *rl, const asker_t *w)
{
    (void)sync_applier(rl);
    Orbit__Ledger__Reply rep = ORBIT__LEDGER__REPLY__INIT;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (orbit_ledger_snapshot_buf(rl->ledger, true, &buf, &len, NULL) == ORBIT_OK) {
        rep.has_snapshot = rep.has_snapshot_ledger_index = true;
        rep.snapshot.data = buf;
        rep.snapshot.len = len;
        rep.snapshot_ledger_index = orbit_ledger_index(rl->ledger);
    } else {
        rep.error = "cannot copy the ledger";
    }
    send_reply(rl, w, &rep);
    orbit_ledger_snapshot_free(buf, len);
}

static void on_snapshot_barrier(void *ctx, int status)
{
    op_t *op = ctx;
    if (status == 0)
        answer_snapshot(op->rl, &op->who);
    else
        reply_not_leader(op->rl, &op->who);
    free(op);
}

static void on_barrier(void *ctx, int status)
{
    op_t *op = ctx;
    if (status == 0)
        answer_get(op->rl, &op->who, op->key);
    else
        reply_not_leader(op->rl, &op->who);
    free(op->key);
    free(op);
}

typedef struct {
    Orbit__Ledger__Committed **items;
    size_t n, max;
    const char *prefix;
    uint64_t last;
    bool nomem;
    orbit_arena_t *arena; /* items and their proposals */
} watch_ctx_t;

static int collect(void *ctx, const orbit_ledger_commit_t *c)
{
    watch_ctx_t *w = ctx;
    w->last = c->index;
    if (w->prefix && *w->prefix && !orbit_ledger_commit_touches(c, w->prefix))
        return 0;
    /* History holds proposals as their clients encoded them; decoded in the
     * arena, a proposal that repeats a oneof member (protobuf-c drops the
     * earlier one without freeing it) costs nothing past this request. */
    Orbit__Ledger__Proposal *p = orbit__ledger__proposal__unpack(orbit_arena_allocator(w->arena),
                                                                 c->proposal_len, c->proposal);
    Orbit__Ledger__Committed *it = orbit_arena_alloc(w->arena, sizeof *it);
    if (!p || !it) {
        w->nomem = true;
        return 1;
    }
    orbit__ledger__committed__init(it);
    it->index = c->index;
    it->time_ms = c->time_ms;
    it->proposal = p;
    w->items[w->n++] = it;
    return w->n >= w->max ? 1 : 0;
}

static void answer_watch(orbit_root_ledger_t *rl, const asker_t *who,
                         const Orbit__Ledger__WatchRequest *q)
{
    (void)sync_applier(rl);
    Orbit__Ledger__Reply rep = ORBIT__LEDGER__REPLY__INIT;
    watch_ctx_t w = {NULL,      0, q->has_max && q->max && q->max <= 10000 ? q->max : 1000,
                     q->prefix, 0, false,
                     rl->arena};
    w.items = orbit_arena_alloc(rl->arena, w.max * sizeof *w.items);
    uint64_t compacted = 0;
    uint64_t from = q->from_index ? q->from_index : 1;
    int rc = w.items ? orbit_ledger_history_from(rl->ledger, from, collect, &w, &compacted)
                     : ORBIT_ENOMEM;
    if (rc == ORBIT_ECOMPACTED) {
        rep.has_compacted_index = true;
        rep.compacted_index = compacted;
    } else if (rc != ORBIT_OK || w.nomem) {
        rep.error = "cannot read the history";
    } else {
        rep.items = w.items;
        rep.n_items = w.n;
        rep.has_next_index = true;
        rep.next_index = w.last ? w.last + 1 : from;
    }
    send_reply(rl, who, &rep); /* w's allocations go with the request's arena */
}

static void answer_status(orbit_root_ledger_t *rl, const asker_t *who)
{
    (void)sync_applier(rl);
    orbit_consensus_status_t cs;
    orbit_consensus_status(rl->cons, &cs);
    orbit_ledger_stats_t ls;
    memset(&ls, 0, sizeof ls);
    orbit_ledger_stats(rl->ledger, &ls);
    uint8_t h[ORBIT_LEDGER_HASH_LEN];
    char hex[2 * ORBIT_LEDGER_HASH_LEN + 1] = "";
    if (orbit_ledger_hash(rl->ledger, h) == ORBIT_OK)
        for (int i = 0; i < ORBIT_LEDGER_HASH_LEN; i++)
            snprintf(hex + 2 * i, 3, "%02x", h[i]);
    Orbit__Ledger__Status s = ORBIT__LEDGER__STATUS__INIT;
    Orbit__Ledger__Replica reps[ORBIT_CONSENSUS_MAX_SERVERS], *rp[ORBIT_CONSENSUS_MAX_SERVERS];
    for (size_t i = 0; i < cs.n_servers; i++) {
        orbit__ledger__replica__init(&reps[i]);
        reps[i].id = cs.servers[i].id;
        reps[i].address = cs.servers[i].address;
        reps[i].has_role = reps[i].has_leader = true;
        /* the wire's roles: 0 standby, 1 voter, 2 spare */
        reps[i].role = cs.servers[i].role == ORBIT_CONSENSUS_VOTER     ? 1
                       : cs.servers[i].role == ORBIT_CONSENSUS_STANDBY ? 0
                                                                       : 2;
        reps[i].leader = cs.servers[i].id == cs.leader_id;
        rp[i] = &reps[i];
    }
    s.has_leader_id = s.has_term = s.has_commit_index = s.has_applied_index = true;
    s.has_ledger_index = s.has_id = s.has_time_ms = s.has_snapshot_index = true;
    s.leader_id = cs.leader_id;
    s.leader_address = cs.leader_address;
    s.term = cs.term;
    s.commit_index = cs.commit_index;
    s.applied_index = ls.applied_index;
    s.ledger_index = ls.ledger_index;
    s.replicas = rp;
    s.n_replicas = cs.n_servers;
    s.id = rl->cfg.id;
    s.time_ms = ls.time_ms;
    s.state_hash = hex;
    s.snapshot_index = ls.compacted_index;
    s.has_raft_snapshot_index = true;
    s.raft_snapshot_index = cs.snapshot_index;
    if (rl->applier) {
        const orbit_ledger_applier_stats_t *as = orbit_ledger_applier_stats(rl->applier);
        s.has_apply_held = s.has_apply_batches = s.has_apply_failures = true;
        s.apply_held = as->held;
        s.apply_batches = as->batches;
        s.apply_failures = as->failures;
    }
    Orbit__Ledger__Reply rep = ORBIT__LEDGER__REPLY__INIT;
    rep.status = &s;
    send_reply(rl, who, &rep);
}

/* ------------------------------------------------------------ membership */

static void on_member(void *ctx, int status)
{
    op_t *op = ctx;
    if (status == 0) {
        Orbit__Ledger__Reply rep = ORBIT__LEDGER__REPLY__INIT;
        send_reply(op->rl, &op->who, &rep);
    } else {
        reply_error(op->rl, &op->who, orbit_strerror(status));
    }
    free(op);
}

static void member_change(orbit_root_ledger_t *rl, const asker_t *w,
                          const Orbit__Ledger__MemberChange *m)
{
    op_t *op = calloc(1, sizeof *op);
    if (!op) {
        reply_error(rl, w, "out of memory");
        return;
    }
    op->rl = rl;
    op->who = *w;
    int rc;
    switch (m->op) {
    case ORBIT__LEDGER__MEMBER_CHANGE__OP__ADD:
        rc = m->address ? orbit_consensus_add(rl->cons, m->id, m->address, on_member, op)
                        : ORBIT_EINVAL;
        break;
    case ORBIT__LEDGER__MEMBER_CHANGE__OP__REMOVE:
        rc = orbit_consensus_remove(rl->cons, m->id, on_member, op);
        break;
    case ORBIT__LEDGER__MEMBER_CHANGE__OP__ASSIGN: {
        orbit_consensus_role_t role = m->role == 1   ? ORBIT_CONSENSUS_VOTER
                                      : m->role == 0 ? ORBIT_CONSENSUS_STANDBY
                                                     : ORBIT_CONSENSUS_SPARE;
        rc = m->has_role && m->role <= 2
                 ? orbit_consensus_assign(rl->cons, m->id, role, on_member, op)
                 : ORBIT_EINVAL;
        break;
    }
    default: rc = ORBIT_EINVAL; break;
    }
    if (rc != 0) {
        free(op);
        reply_error(rl, w, orbit_strerror(rc));
    }
}

/* ---------------------------------------------------------------- requests */

void orbit_root_ledger_request(orbit_root_ledger_t *rl, const uint8_t *rid, size_t rid_len,
                               const uint8_t *buf, size_t len)
{
    rl->st.requests++;
    ProtobufCMessage *m = NULL;
    orbit_arena_reset(rl->arena); /* the last request's */
    if (orbit_wire_decode(buf, len, ORBIT_MSG_LEDGER_REQUEST, orbit_arena_allocator(rl->arena),
                          NULL, &m) != ORBIT_OK) {
        rl->st.bad_requests++;
        uint64_t suppressed = 0;
        if (orbit_ratelimit_pass(&rl->rl, zclock_mono(), &suppressed))
            orbit_warn("ledger: undecodable request (%llu similar suppressed)",
                       (unsigned long long)suppressed);
        return;
    }
    Orbit__Ledger__Request *req = (Orbit__Ledger__Request *)m;
    asker_t w;
    memcpy(w.rid, rid, rid_len);
    w.rid_len = rid_len;
    w.transport_id = req->request_id;
    w.g = NULL;
    w.slot = 0;
    switch (req->op_case) {
    case ORBIT__LEDGER__REQUEST__OP_PROPOSE:
        if (!orbit_consensus_is_leader(rl->cons)) {
            reply_not_leader(rl, &w);
            break;
        }
        enqueue(rl, req->propose, &w);
        break;
    case ORBIT__LEDGER__REQUEST__OP_PROPOSE_BATCH:
        if (req->propose_batch->n_proposals == 0 ||
            req->propose_batch->n_proposals > ORBIT_LEDGER_BATCH_MAX) {
            rl->st.bad_requests++;
            char why[96];
            snprintf(why, sizeof why, "a batch holds 1 to %d proposals, not %zu",
                     ORBIT_LEDGER_BATCH_MAX, req->propose_batch->n_proposals);
            reply_error(rl, &w, why);
        } else if (!orbit_consensus_is_leader(rl->cons)) {
            reply_not_leader(rl, &w);
        } else {
            size_t n = req->propose_batch->n_proposals;
            orbit_pb_slice_t *raw = orbit_arena_alloc(rl->arena, n * sizeof *raw);
            bool sliced = raw && batch_slices(buf + ORBIT_WIRE_HDR, len - ORBIT_WIRE_HDR, n, raw);
            enqueue_batch(rl, req->propose_batch, sliced ? raw : NULL, &w);
        }
        break;
    case ORBIT__LEDGER__REQUEST__OP_GET:
        if (req->get->has_stale && req->get->stale) {
            answer_get(rl, &w, req->get->key);
        } else if (!orbit_consensus_is_leader(rl->cons)) {
            reply_not_leader(rl, &w);
        } else {
            op_t *op = calloc(1, sizeof *op);
            if (op) {
                op->rl = rl;
                op->who = w;
                op->key = strdup(req->get->key);
            }
            if (!op || !op->key || orbit_consensus_barrier(rl->cons, on_barrier, op) != 0) {
                if (op)
                    free(op->key);
                free(op);
                reply_not_leader(rl, &w);
            }
        }
        break;
    case ORBIT__LEDGER__REQUEST__OP_WATCH:
        /* The leader has applied everything acknowledged so far; a follower
         * may be a heartbeat behind, so it answers only when asked stale. */
        if (!(req->watch->has_stale && req->watch->stale) && !orbit_consensus_is_leader(rl->cons))
            reply_not_leader(rl, &w);
        else
            answer_watch(rl, &w, req->watch);
        break;
    case ORBIT__LEDGER__REQUEST__OP_STATUS: answer_status(rl, &w); break;
    case ORBIT__LEDGER__REQUEST__OP_SNAPSHOT:
        if (req->snapshot->has_stale && req->snapshot->stale) {
            answer_snapshot(rl, &w);
        } else if (!orbit_consensus_is_leader(rl->cons)) {
            reply_not_leader(rl, &w);
        } else {
            op_t *op = calloc(1, sizeof *op);
            if (op) {
                op->rl = rl;
                op->who = w;
            }
            if (!op || orbit_consensus_barrier(rl->cons, on_snapshot_barrier, op) != 0) {
                free(op);
                reply_not_leader(rl, &w);
            }
        }
        break;
    case ORBIT__LEDGER__REQUEST__OP_MEMBER:
        if (!orbit_consensus_is_leader(rl->cons))
            reply_not_leader(rl, &w);
        else
            member_change(rl, &w, req->member);
        break;
    default:
        rl->st.bad_requests++;
        reply_error(rl, &w, "request without an operation");
        break;
    }
    orbit_arena_reset(rl->arena); /* req */
}

/* ------------------------------------------------------------ housekeeping */

static uint64_t expiry_request_id(const orbit_ledger_due_t *d)
{
    uint64_t h = orbit_fnv1a_str(ORBIT_FNV_OFFSET ^ (uint64_t)d->kind, d->key);
    return (h ^ (uint64_t)d->expires_ms) * ORBIT_FNV_PRIME;
}

/* Leader: propose Expiry for what has expired, so watchers see it. */
static void on_tick(uv_timer_t *t)
{
    orbit_root_ledger_t *rl = t->data;
    if (orbit_consensus_is_leader(rl->cons) && rl->qn + rl->inflight == 0 &&
        sync_applier(rl) == ORBIT_OK) {
        orbit_ledger_due_t due[64];
        size_t n = 0;
        int64_t now = zclock_time();
        if (now < rl->last_time)
            now = rl->last_time;
        if (orbit_ledger_due_expiries(rl->ledger, now, due, 64, &n) == ORBIT_OK) {
            for (size_t i = 0; i < n; i++) {
                Orbit__Ledger__Proposal p = ORBIT__LEDGER__PROPOSAL__INIT;
                Orbit__Ledger__Commitment c = ORBIT__LEDGER__COMMITMENT__INIT;
                Orbit__Ledger__Expiry x = ORBIT__LEDGER__EXPIRY__INIT;
                Orbit__Ledger__Ref ref = ORBIT__LEDGER__REF__INIT;
                ref.kind = due[i].kind;
                ref.key = due[i].key;
                x.what = &ref;
                c.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_EXPIRY;
                c.expiry = &x;
                p.client_id = (char *)EXPIRY_CLIENT;
                p.request_id = expiry_request_id(&due[i]);
                p.commitment = &c;
                asker_t nobody = {{0}, 0, 0, NULL, 0};
                enqueue(rl, &p, &nobody);
            }
        }
    }
}

/* ---------------------------------------------------------------- lifecycle */

int orbit_root_ledger_parse_peers(const char *list, orbit_root_ledger_cfg_t *cfg, char **storage,
                                  char *err, size_t errlen)
{
    char *copy = strdup(list ? list : "");
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return ORBIT_ENOMEM;
    }
    cfg->n_peers = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        char *end = NULL;
        unsigned long id = eq ? strtoul(item, &end, 10) : 0;
        if (!eq || end != eq || id < 1 || id > 255 || !strchr(eq + 1, ':') ||
            cfg->n_peers == ORBIT_ROOT_PEERS_MAX) {
            snprintf(err, errlen,
                     "--peers wants ID=HOST:PORT,... (ids 1..255, at most %d), not "
                     "'%.60s'",
                     ORBIT_ROOT_PEERS_MAX, item);
            free(copy);
            return ORBIT_EINVAL;
        }
        for (size_t i = 0; i < cfg->n_peers; i++)
            if (cfg->peers[i].id == id) {
                snprintf(err, errlen, "--peers names id %lu twice", id);
                free(copy);
                return ORBIT_EINVAL;
            }
        cfg->peers[cfg->n_peers].id = (unsigned)id;
        cfg->peers[cfg->n_peers].address = eq + 1;
        cfg->n_peers++;
    }
    *storage = copy;
    return ORBIT_OK;
}

orbit_root_ledger_t *orbit_root_ledger_new(const orbit_root_ledger_cfg_t *cfg, uv_loop_t *loop,
                                           zsock_t *router, char *err, size_t errlen)
{
    orbit_root_ledger_t *rl = calloc(1, sizeof *rl);
    if (!rl) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rl->cfg = *cfg;
    rl->loop = loop;
    rl->router = router;
    if (!rl->cfg.batch_max)
        rl->cfg.batch_max = DEFAULT_BATCH_MAX;
    if (!rl->cfg.queue_max)
        rl->cfg.queue_max = DEFAULT_QUEUE_MAX;
    if (!rl->cfg.history_keep)
        rl->cfg.history_keep = DEFAULT_HISTORY_KEEP;
    if (!rl->cfg.apply_batch_ms)
        rl->cfg.apply_batch_ms = DEFAULT_APPLY_BATCH_MS;
    char ledger_dir[1024], raft_dir[1024];
    snprintf(ledger_dir, sizeof ledger_dir, "%s/ledger", cfg->data_dir);
    snprintf(raft_dir, sizeof raft_dir, "%s/raft", cfg->data_dir);
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create data directory '%s': %s", cfg->data_dir,
                 strerror(errno));
        free(rl);
        return NULL;
    }
    request_batch_field =
        orbit_pb_field_number(&orbit__ledger__request__descriptor, "propose_batch");
    batch_proposals_field =
        orbit_pb_field_number(&orbit__ledger__propose_batch__descriptor, "proposals");
    if (!(rl->arena = orbit_arena_new(64 * 1024))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (orbit_ledger_open(ledger_dir, &rl->ledger, err, errlen) != ORBIT_OK)
        goto fail;
    if (orbit_ledger_discarded(rl->ledger))
        orbit_warn("ledger: the machine went down while %s was open; its unsynced state was "
                   "discarded and is rebuilt from the Raft snapshot and log",
                   ledger_dir);
    if (orbit_ledger_set_cluster_id(rl->ledger, cfg->cluster, err, errlen) != ORBIT_OK)
        goto fail;
    rl->last_time = orbit_ledger_time(rl->ledger);
    /* Apply compacts the history as it goes (orbit_ledger_set_history_keep):
     * compacting 100,000 records at once on a tick stalled this loop
     * 25-50 ms, on the leader too, every ~2 s at full load. */
    orbit_ledger_set_history_keep(rl->ledger, rl->cfg.history_keep);
    /* The node -> capsules index lives in memory: built now, before Raft
     * runs, rather than by the first "get node/..." on the loop. */
    size_t indexed = 0;
    if (orbit_ledger_index_nodes(rl->ledger, &indexed) != ORBIT_OK) {
        snprintf(err, errlen, "ledger: cannot index the placements by node (out of memory?)");
        goto fail;
    }
    orbit_info("ledger: %zu placements indexed by node", indexed);
    orbit_consensus_cfg_t cc;
    memset(&cc, 0, sizeof cc);
    cc.id = cfg->id;
    cc.address = cfg->raft;
    cc.data_dir = raft_dir;
    cc.peers = cfg->peers;
    cc.n_peers = cfg->n_peers;
    cc.election_timeout_ms = cfg->election_ms;
    cc.heartbeat_ms = cfg->heartbeat_ms;
    /* Replicas hold the same log, so with the same thresholds all three
     * would snapshot at the same index and write a copy of the state
     * (~120 MB after 10 s at full load) at once: the 256-proposer p99 over
     * 12 s was 23.7-30.8 ms with that, 16.9-19.1 ms staggered. Replica id
     * i waits (4 + i % 3) / 4 of each threshold: 1.25, 1.5, 1 for ids 1,
     * 2, 3. */
    uint64_t quarters = 4 + cfg->id % 3;
    uint64_t entries =
        (cfg->snapshot_threshold ? cfg->snapshot_threshold : ORBIT_CONSENSUS_SNAPSHOT_THRESHOLD) *
        quarters / 4;
    cc.snapshot_threshold = entries > UINT_MAX ? UINT_MAX : (unsigned)entries;
    cc.snapshot_bytes =
        (cfg->snapshot_bytes ? cfg->snapshot_bytes : ORBIT_CONSENSUS_SNAPSHOT_BYTES) * quarters / 4;
    cc.fsm = &fsm;
    cc.fsm_ctx = rl;
    cc.on_state = on_state;
    cc.state_ctx = rl;
    if (orbit_consensus_new(&cc, loop, &rl->cons, err, errlen) != 0)
        goto fail;
    uv_timer_init(loop, &rl->flush);
    uv_timer_init(loop, &rl->tick);
    rl->flush.data = rl->tick.data = rl;
    rl->open_handles = 2;
    /* replica id i waits (2 + i % 3) / 3 of the batch time */
    rl->applier = orbit_ledger_applier_new(
        rl->ledger, loop, (uint64_t)rl->cfg.apply_batch_ms * (2 + rl->cfg.id % 3) / 3, err, errlen);
    if (rl->applier)
        rl->open_handles++; /* closed after consensus */
    if (!rl->applier || orbit_consensus_start(rl->cons, err, errlen) != 0) {
        /* Nothing else runs on the loop yet: turn it until the replica and
         * our timers are closed, so nothing is left behind. */
        orbit_root_ledger_close(rl, NULL, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        return NULL;
    }
    uv_timer_start(&rl->tick, on_tick, TICK_MS, TICK_MS);
    return rl;
fail:
    orbit_ledger_close(&rl->ledger);
    orbit_arena_destroy(&rl->arena);
    free(rl);
    return NULL;
}

static void finish_close(orbit_root_ledger_t *rl)
{
    free(rl->qb);
    free(rl->qs);
    free(rl->qw);
    orbit_arena_destroy(&rl->arena);
    orbit_ledger_close(&rl->ledger);
    void (*done)(void *) = rl->closed;
    void *arg = rl->closed_arg;
    free(rl);
    if (done)
        done(arg);
}

/* One of the handles (the timers, the applier) is closed. */
static void handle_closed(orbit_root_ledger_t *rl)
{
    if (--rl->open_handles == 0 && !rl->cons)
        finish_close(rl);
}

static void on_handle_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_applier_closed(void *ctx)
{
    handle_closed(ctx);
}

static void on_cons_closed(void *ctx)
{
    orbit_root_ledger_t *rl = ctx;
    rl->cons = NULL;
    /* Raft applies nothing more: the applier applies what it holds (what
     * it cannot is applied again from the Raft log at the next start). */
    if (rl->applier) {
        orbit_ledger_applier_t *a = rl->applier;
        rl->applier = NULL;
        orbit_ledger_applier_close(a, on_applier_closed, rl);
        return;
    }
    if (rl->open_handles == 0)
        finish_close(rl);
}

static void close_now(orbit_root_ledger_t *rl)
{
    /* Proposals still waiting for an entry are answered now (a batch's
     * answer goes out with its last member). */
    for (size_t i = 0; i < rl->qn; i++)
        answer_proposal(rl, &rl->qw[i], NULL,
                        "replica shutting down; retry with the same request id");
    rl->qn = 0;
    rl->qb_len = 0;
    uv_close((uv_handle_t *)&rl->flush, on_handle_closed);
    uv_close((uv_handle_t *)&rl->tick, on_handle_closed);
    orbit_consensus_close(rl->cons, on_cons_closed, rl);
}

static void on_handed_over(void *ctx, int status)
{
    orbit_root_ledger_t *rl = ctx;
    if (status == 0)
        orbit_info("ledger: replica %u: leadership handed over, closing", rl->cfg.id);
    else
        orbit_warn("ledger: replica %u: leadership not handed over (%s), closing; the others "
                   "elect a leader",
                   rl->cfg.id, orbit_strerror(status));
    close_now(rl);
}

void orbit_root_ledger_close(orbit_root_ledger_t *rl, void (*done)(void *arg), void *arg)
{
    if (!rl)
        return;
    rl->closed = done;
    rl->closed_arg = arg;
    /* A planned stop of the leader hands leadership to the most up-to-date
     * voter first (at most an election timeout), so the cluster commits on
     * without waiting out an election. */
    if (rl->cons && orbit_consensus_is_leader(rl->cons) &&
        orbit_consensus_transfer(rl->cons, 0, on_handed_over, rl) == ORBIT_OK) {
        orbit_info("ledger: replica %u: leader stopping, handing leadership over", rl->cfg.id);
        return;
    }
    close_now(rl);
}

const orbit_root_ledger_stats_t *orbit_root_ledger_stats(const orbit_root_ledger_t *rl)
{
    return &rl->st;
}

uint64_t orbit_root_ledger_topology_epoch(orbit_root_ledger_t *rl)
{
    /* Asked on every shard report: no sync with the applier (it would apply
     * the follower's held entries here, on the loop). The epoch is one read
     * of the committed LMDB state in a read transaction of its own, which
     * the applier's write transaction does not disturb (MDB_NOTLS); on a
     * follower it is as of the last applied batch. */
    return rl && rl->ledger ? orbit_ledger_topology_epoch(rl->ledger) : 0;
}

int orbit_root_ledger_top_shards(orbit_root_ledger_t *rl, uint64_t *epoch, zlistx_t **ids)
{
    *ids = NULL;
    *epoch = 0;
    if (!rl || !rl->ledger)
        return ORBIT_EINVAL;
    char *json = NULL;
    int rc = orbit_ledger_get_json(rl->ledger, "topology", &json, NULL);
    if (rc != ORBIT_OK)
        return rc;
    char err[256];
    orbit_topology_t *t = orbit_topology_from_json(json, err, sizeof err);
    free(json);
    if (!t)
        return ORBIT_EIO; /* the ledger's own text: only out of memory fails here */
    *epoch = orbit_topology_epoch(t);
    rc = orbit_topology_children(t, NULL, ids);
    orbit_topology_destroy(&t);
    return rc;
}
