/* root_daemon: root view ingest, queries and detail proxy on a libuv loop. */
#include "root_daemon.h"

#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_log.h"
#include "orbit_sock.h"
#include "ledger.pb-c.h"
#include "root_uvzmq.h"
#include "root_view.h"
#include "shard_pending.h"

typedef struct {
    uint64_t reports, queries, bad_frames, bad_queries, replies_dropped, details_forwarded;
} root_stats_t;

struct orbit_root {
    orbit_root_cfg_t cfg;
    char name[ORBIT_NAME_MAX];
    zsock_t *router;
    orbit_subtree_t *view;
    orbit_freshness_t freshness;
    orbit_pending_table_t pending;
    orbit_arena_t *arena;
    orbit_rx_t rx;
    int64_t started_ms;
    root_stats_t st;
    orbit_ratelimit_t rl;
    uv_loop_t loop;
    uv_timer_t tick;
    uv_signal_t sigint, sigterm;
    orbit_uvzmq_t *watch;
    orbit_root_ledger_t *ledger;
    uint64_t topology_epoch; /* of the topology last given to the view */
    int open_handles;
};

static void log_bad(orbit_root_t *r, const char *what, int rc)
{
    uint64_t suppressed = 0;
    if (orbit_ratelimit_pass(&r->rl, zclock_mono(), &suppressed))
        orbit_warn("%s: %s: %s (%llu similar lines suppressed)", r->name, what, orbit_strerror(rc),
                   (unsigned long long)suppressed);
}

static void reply(orbit_root_t *r, const uint8_t *rid, size_t rid_len, Orbit__ViewReply *rep)
{
    if (orbit_wire_send(r->router, rid, rid_len, ORBIT_MSG_VIEW_REPLY, &rep->base) != ORBIT_OK)
        r->st.replies_dropped++;
}

static Orbit__Counter *counter(orbit_arena_t *a, const char *name, uint64_t v)
{
    Orbit__Counter *c = orbit_arena_alloc(a, sizeof *c);
    if (c) {
        orbit__counter__init(c);
        c->name = (char *)name;
        c->value = v;
    }
    return c;
}

static int shards_reply(orbit_root_t *r, int64_t now, Orbit__ViewReply *rep)
{
    orbit_arena_t *a = r->arena;
    Orbit__ShardInfo *me = orbit_arena_alloc(a, sizeof *me);
    Orbit__Counter **cs = orbit_arena_alloc(a, 16 * sizeof *cs);
    Orbit__ShardInfo **list = orbit_arena_alloc(a, sizeof *list);
    if (!me || !cs || !list)
        return ORBIT_ENOMEM;
    orbit__shard_info__init(me);
    me->id = r->name;
    me->tier = 0;
    me->has_reachable = me->has_nodes = true;
    me->reachable = true;
    me->nodes = orbit_subtree_rows_count(r->view);
    const orbit_subtree_stats_t *x = orbit_subtree_stats(r->view);
    size_t n = 0;
    cs[n++] = counter(a, "reports_received", x->reports);
    cs[n++] = counter(a, "full_reports", x->full_reports);
    cs[n++] = counter(a, "rows_applied", x->rows_applied);
    cs[n++] = counter(a, "invalid_reports", x->invalid_reports);
    cs[n++] = counter(a, "invalid_rows", x->invalid_rows);
    cs[n++] = counter(a, "bad_envelope", x->bad_envelope);
    cs[n++] = counter(a, "bad_version", x->bad_version);
    cs[n++] = counter(a, "bad_type", x->bad_type + r->st.bad_frames);
    cs[n++] = counter(a, "bad_decode", x->bad_decode);
    cs[n++] = counter(a, "queries", r->st.queries);
    cs[n++] = counter(a, "bad_queries", r->st.bad_queries);
    cs[n++] = counter(a, "replies_dropped", r->st.replies_dropped);
    cs[n++] = counter(a, "children_dropped", x->children_dropped);
    for (size_t i = 0; i < n; i++)
        if (!cs[i])
            return ORBIT_ENOMEM;
    me->counters = cs;
    me->n_counters = n;
    list[0] = me;
    rep->shards = list;
    rep->n_shards = 1;
    return orbit_subtree_shards(r->view, now, a, &rep->shards, &rep->n_shards);
}

static void on_query(orbit_root_t *r, const Orbit__ViewQuery *q, int64_t now)
{
    r->st.queries++;
    Orbit__ViewReply rep = ORBIT__VIEW_REPLY__INIT;
    rep.request_id = q->request_id;
    rep.has_root_reports = rep.has_root_uptime_ms = true;
    rep.root_reports = orbit_subtree_stats(r->view)->reports;
    rep.root_uptime_ms = now - r->started_ms;
    const char *reason = NULL;
    int rc = orbit_root_view_validate(q, &reason);
    if (rc != ORBIT_OK) {
        r->st.bad_queries++;
        rep.error = (char *)reason;
        reply(r, r->rx.rid, r->rx.rid_len, &rep);
        return;
    }
    switch (q->kind) {
    case ORBIT__QUERY_KIND__Q_SUMMARY:
        rc = orbit_root_view_summary(r->view, r->arena, &rep);
        if (q->has_with_freshness && q->with_freshness)
            orbit_freshness_to_pb(&r->freshness, &rep);
        break;
    case ORBIT__QUERY_KIND__Q_NODES:
        rc = orbit_root_view_summary(r->view, r->arena, &rep);
        if (rc == ORBIT_OK)
            rc = orbit_root_view_nodes(r->view, q, r->arena, &rep);
        break;
    case ORBIT__QUERY_KIND__Q_SHARDS: rc = shards_reply(r, now, &rep); break;
    case ORBIT__QUERY_KIND__Q_CAPSULES:
        rc = orbit_root_view_capsules(r->view, q, r->arena, &rep);
        break;
    case ORBIT__QUERY_KIND__Q_NODE: {
        const orbit_row_t *row = orbit_subtree_row(r->view, q->node);
        if (!row) {
            rep.error = "unknown node";
            break;
        }
        orbit_pending_t p;
        memset(&p, 0, sizeof p);
        p.orig_id = q->request_id;
        p.upstream = -1;
        p.deadline_ms = now + r->cfg.detail_timeout_ms;
        memcpy(p.rid, r->rx.rid, r->rx.rid_len);
        p.rid_len = r->rx.rid_len;
        Orbit__DetailRequest fwd = ORBIT__DETAIL_REQUEST__INIT;
        fwd.request_id = orbit_pending_add(&r->pending, &p);
        fwd.node = q->node;
        const uint8_t *rid;
        size_t rid_len;
        orbit_subtree_route(row, &rid, &rid_len);
        if (orbit_wire_send(r->router, rid, rid_len, ORBIT_MSG_DETAIL_REQUEST, &fwd.base) ==
            ORBIT_OK) {
            r->st.details_forwarded++;
            return; /* answered when the shard replies, or on timeout */
        }
        orbit_pending_take(&r->pending, fwd.request_id, &p);
        rep.error = "owning shard is unreachable";
        break;
    }
    default: rep.error = "unknown query kind"; break;
    }
    if (rc != ORBIT_OK)
        rep.error = "out of memory";
    reply(r, r->rx.rid, r->rx.rid_len, &rep);
}

/* A detail answer from a shard, or a timeout (rep NULL): answer the client
 * with the node's row and whatever detail arrived. */
static void finish_detail(orbit_root_t *r, const orbit_pending_t *p, const char *node,
                          Orbit__DetailReply *dr)
{
    Orbit__ViewReply rep = ORBIT__VIEW_REPLY__INIT;
    rep.request_id = p->orig_id;
    if (dr) {
        rep.detail = dr->detail;
        rep.error = dr->error;
        node = dr->detail && dr->detail->state ? dr->detail->state->node : node;
    } else {
        rep.error = "owning shard did not answer in time";
    }
    const orbit_row_t *row = node ? orbit_subtree_row(r->view, node) : NULL;
    Orbit__NodeRow w;
    Orbit__NodeRow *rows[1] = {&w};
    if (row && orbit_subtree_row_to_pb(row, r->arena, &w) == ORBIT_OK) {
        rep.rows = rows;
        rep.n_rows = 1;
    }
    reply(r, p->rid, p->rid_len, &rep);
}

static int on_router(zsock_t *sock, int budget, void *arg)
{
    orbit_root_t *r = arg;
    int got = 0;
    for (; got < budget; got++) {
        int rc = orbit_wire_recv(sock, 1, &r->rx);
        if (rc == ORBIT_EAGAIN)
            break;
        if (rc != ORBIT_OK) {
            r->st.bad_frames++;
            log_bad(r, "malformed multipart message", rc);
            continue;
        }
        int64_t now = zclock_mono();
        orbit_arena_reset(r->arena);
        const uint8_t *buf = orbit_rx_data(&r->rx);
        size_t len = orbit_rx_size(&r->rx);
        orbit_msg_type_t type;
        rc = orbit_wire_peek(buf, len, &type);
        if (rc == ORBIT_OK && type == ORBIT_MSG_SHARD_REPORT) {
            Orbit__ReportAck ack;
            ProtobufCMessage *m = NULL;
            rc = orbit_subtree_report_frame(r->view, buf, len, r->rx.rid, r->rx.rid_len, now,
                                            r->arena, &ack, &m);
            if (rc != ORBIT_OK) {
                log_bad(r, "rejected shard report", rc);
                continue;
            }
            /* Shards in discovery mode refetch the tree when this is ahead
             * of theirs; a replica without a ledger has no epoch to give. */
            if (r->ledger) {
                ack.has_topology_epoch = true;
                ack.topology_epoch = orbit_root_ledger_topology_epoch(r->ledger);
            }
            if (!(ack.has_resync && ack.resync))
                orbit_freshness_record(&r->freshness, (Orbit__ShardReport *)m, zclock_time());
            r->st.reports++;
            if (orbit_wire_send(sock, r->rx.rid, r->rx.rid_len, ORBIT_MSG_REPORT_ACK, &ack.base) !=
                ORBIT_OK)
                r->st.replies_dropped++;
            continue;
        }
        ProtobufCMessage *m = NULL;
        if (rc == ORBIT_OK)
            rc = orbit_wire_decode(buf, len, type, orbit_arena_allocator(r->arena), NULL, &m);
        if (rc == ORBIT_OK && type == ORBIT_MSG_VIEW_QUERY) {
            on_query(r, (Orbit__ViewQuery *)m, now);
        } else if (rc == ORBIT_OK && type == ORBIT_MSG_LEDGER_REQUEST) {
            if (r->ledger) {
                orbit_root_ledger_request(r->ledger, r->rx.rid, r->rx.rid_len, buf, len);
            } else {
                Orbit__Ledger__Request *q = (Orbit__Ledger__Request *)m;
                Orbit__Ledger__Reply rep = ORBIT__LEDGER__REPLY__INIT;
                rep.request_id = q->request_id;
                rep.error = "this root replica runs without a ledger (start it with --data, "
                            "--raft and --peers)";
                if (orbit_wire_send(sock, r->rx.rid, r->rx.rid_len, ORBIT_MSG_LEDGER_REPLY,
                                    &rep.base) != ORBIT_OK)
                    r->st.replies_dropped++;
            }
        } else if (rc == ORBIT_OK && type == ORBIT_MSG_DETAIL_REPLY) {
            Orbit__DetailReply *dr = (Orbit__DetailReply *)m;
            orbit_pending_t p;
            if (orbit_pending_take(&r->pending, dr->request_id, &p))
                finish_detail(r, &p, NULL, dr);
        } else {
            r->st.bad_frames++;
            log_bad(r, "unusable frame", rc == ORBIT_OK ? ORBIT_ETYPE : rc);
        }
    }
    return got;
}

static void on_tick(uv_timer_t *t)
{
    orbit_root_t *r = t->data;
    int64_t now = zclock_mono();
    /* The ledger's topology tells the view which shards report here, so a
     * shard that left the tree is dropped from it once silent. */
    uint64_t epoch = orbit_root_ledger_topology_epoch(r->ledger);
    if (epoch && epoch != r->topology_epoch) {
        zlistx_t *top = NULL;
        if (orbit_root_ledger_top_shards(r->ledger, &epoch, &top) == ORBIT_OK) {
            orbit_subtree_set_topology(r->view, epoch, &top);
            r->topology_epoch = epoch;
        }
        zlistx_destroy(&top);
    }
    uint64_t dropped = orbit_subtree_stats(r->view)->children_dropped;
    if (orbit_subtree_tick(r->view, now))
        orbit_info("%s: a shard went silent; its nodes are unreachable", r->name);
    if (orbit_subtree_stats(r->view)->children_dropped != dropped)
        orbit_info("%s: a shard left the topology and went silent: dropped with its rows", r->name);
    orbit_pending_t p;
    while (orbit_pending_expire(&r->pending, now, &p)) {
        orbit_arena_reset(r->arena);
        finish_detail(r, &p, NULL, NULL);
    }
}

static void on_closed(uv_handle_t *h)
{
    orbit_root_t *r = h->data;
    r->open_handles--;
}

static void on_watch_closed(void *arg)
{
    orbit_root_t *r = arg;
    r->open_handles--;
}

/* SIGINT/SIGTERM: close every handle; uv_run returns once they are closed. */
static void on_signal(uv_signal_t *h, int signum)
{
    orbit_root_t *r = h->data;
    orbit_info("%s: signal %d, stopping", r->name, signum);
    uv_close((uv_handle_t *)&r->tick, on_closed);
    uv_close((uv_handle_t *)&r->sigint, on_closed);
    uv_close((uv_handle_t *)&r->sigterm, on_closed);
    orbit_uvzmq_stop(r->watch, on_watch_closed, r);
    r->watch = NULL;
    if (r->ledger) {
        orbit_root_ledger_close(r->ledger, NULL, NULL);
        r->ledger = NULL;
    }
}

orbit_root_t *orbit_root_new(const orbit_root_cfg_t *cfg, char *err, size_t errlen)
{
    orbit_root_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    if (!r->cfg.detail_timeout_ms)
        r->cfg.detail_timeout_ms = 2000;
    snprintf(r->name, sizeof r->name, "root-%u", cfg->id);
    orbit_pending_init(&r->pending);
    orbit_rx_init(&r->rx);
    r->started_ms = zclock_mono();
    if (uv_loop_init(&r->loop) != 0) {
        snprintf(err, errlen, "cannot create the event loop");
        free(r);
        return NULL;
    }
    r->view = orbit_subtree_new(r->name, 0, &cfg->view);
    r->arena = orbit_arena_new(1 << 16);
    if (!r->view || !r->arena) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_TREE);
    r->router = orbit_sock_bind(ZMQ_ROUTER, cfg->listen, &o, err, errlen);
    if (!r->router)
        goto fail;
    if (cfg->ledger) {
        r->ledger = orbit_root_ledger_new(cfg->ledger, &r->loop, r->router, err, errlen);
        if (!r->ledger)
            goto fail;
    }
    return r;
fail:
    orbit_root_destroy(&r);
    return NULL;
}

int orbit_root_run(orbit_root_t *r)
{
    if (orbit_uvzmq_start(&r->loop, r->router, 1024, on_router, r, &r->watch) != ORBIT_OK)
        return ORBIT_EIO;
    uv_timer_init(&r->loop, &r->tick);
    uv_signal_init(&r->loop, &r->sigint);
    uv_signal_init(&r->loop, &r->sigterm);
    r->tick.data = r->sigint.data = r->sigterm.data = r;
    r->open_handles = 4;
    uv_timer_start(&r->tick, on_tick, 100, 100);
    uv_signal_start(&r->sigint, on_signal, SIGINT);
    uv_signal_start(&r->sigterm, on_signal, SIGTERM);
    orbit_info("%s serving the root view", r->name);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    orbit_info("%s stopped", r->name);
    return 0;
}

void orbit_root_destroy(orbit_root_t **pr)
{
    if (!pr || !*pr)
        return;
    orbit_root_t *r = *pr;
    if (r->open_handles == 0)
        uv_loop_close(&r->loop);
    zsock_destroy(&r->router);
    orbit_rx_close(&r->rx);
    orbit_subtree_destroy(&r->view);
    orbit_arena_destroy(&r->arena);
    free(r);
    *pr = NULL;
}
