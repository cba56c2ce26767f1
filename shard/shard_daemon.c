/* shard_daemon: the orbit-shard event loop (ingest, reports, detail proxy). */
#include "shard_daemon.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_log.h"
#include "orbit_sock.h"
#include "shard_fetch.h"
#include "shard_pending.h"
#include "shard_place.h"

/* How long one topology read may take (the fetcher's thread waits, not the
 * loop), and how often the same topology complaint is repeated. */
#define FETCH_TIMEOUT_MS   2000
#define TOPO_LOG_REPEAT_MS 30000

#define REPORT_RING 16

typedef struct {
    char endpoint[256];
    zsock_t *sock;
    uint64_t seq, acked_gen;
    bool need_full;
    struct {
        uint64_t seq, gen;
        bool full;
    } ring[REPORT_RING];
} upstream_t;

typedef struct {
    uint64_t reports_sent, reports_dropped, acks_sent, acks_dropped;
    uint64_t acks_received, resyncs_received, detail_requests, detail_unknown;
    uint64_t bad_frames, frame_errors;
    /* discovery mode */
    uint64_t topology_fetches, topology_fetch_errors, topology_updates, topology_stale;
    uint64_t topology_undeclared, upstream_changes, bind_errors, place_errors;
} daemon_stats_t;

/* One complaint about the topology, repeated only when it changes kind or
 * after TOPO_LOG_REPEAT_MS (a shard waiting to be declared says so once). */
typedef enum {
    TOPO_OK = 0,
    TOPO_FETCH,      /* no replica answered, or the answer was unusable */
    TOPO_UNDECLARED, /* this shard is not (or no longer) in the topology */
    TOPO_PLACE,      /* declared, but its place cannot be used */
    TOPO_BIND,       /* its declared endpoint cannot be bound */
    TOPO_TIER,       /* its declared tier changed */
} topo_kind_t;

struct orbit_shard {
    orbit_shard_cfg_t cfg;
    zsock_t *router;
    upstream_t up[ORBIT_SHARD_UPSTREAMS_MAX];
    int nup;
    bool removed;               /* --root: a newer topology no longer has this shard; stop */
    orbit_shard_nodes_t *nodes; /* tier 1 */
    orbit_subtree_t *subtree;   /* tier 2+ */
    orbit_pending_table_t pending;
    orbit_arena_t *arena;
    orbit_rx_t rx;
    uint64_t incarnation;
    int64_t started_ms;
    int64_t next_report_ms;
    daemon_stats_t st;
    orbit_ratelimit_t rl;
    zloop_t *loop;
    /* discovery mode (cfg.roots): the fetcher, the place held and when to
     * read the topology again; epoch is 0 in flag mode */
    orbit_shard_fetch_t *fetch;
    orbit_shard_place_t place;
    orbit_shard_refetch_t refetch;
    uint64_t epoch;
    topo_kind_t topo_said;
    int64_t topo_said_ms;
};

static void log_bad(orbit_shard_t *s, const char *what, int rc)
{
    uint64_t suppressed = 0;
    if (orbit_ratelimit_pass(&s->rl, zclock_mono(), &suppressed))
        orbit_warn("shard %s: %s: %s (%llu similar lines suppressed)", s->cfg.id, what,
                   orbit_strerror(rc), (unsigned long long)suppressed);
}

static void log_topo(orbit_shard_t *s, topo_kind_t kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_topo(orbit_shard_t *s, topo_kind_t kind, const char *fmt, ...)
{
    int64_t now = zclock_mono();
    if (kind == s->topo_said && now - s->topo_said_ms < TOPO_LOG_REPEAT_MS)
        return;
    s->topo_said = kind;
    s->topo_said_ms = now;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    orbit_warn("%s", line);
}

/* ---------------------------------------------------------------- reports */

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

static Orbit__ShardInfo *self_info(orbit_shard_t *s, orbit_arena_t *a)
{
    Orbit__ShardInfo *i = orbit_arena_alloc(a, sizeof *i);
    Orbit__Counter **cs = orbit_arena_alloc(a, 40 * sizeof *cs);
    if (!i || !cs)
        return NULL;
    orbit__shard_info__init(i);
    i->id = s->cfg.id;
    i->tier = s->cfg.tier;
    i->has_reachable = i->has_nodes = i->has_interval_ms = i->has_last_report_ms_ago = true;
    i->reachable = true;
    i->interval_ms = s->cfg.interval_ms;
    size_t n = 0;
#define C(name, v) cs[n++] = counter(a, name, v)
    if (s->nodes) {
        const orbit_shard_nodes_stats_t *x = orbit_shard_nodes_stats(s->nodes);
        i->nodes = orbit_shard_nodes_count(s->nodes);
        C("frames", x->frames);
        C("deltas", x->deltas);
        C("applied", x->applied);
        C("full_states", x->full_states);
        C("reboots", x->reboots);
        C("duplicates", x->duplicates);
        C("gaps", x->gaps);
        C("unknown_nodes", x->unknown_nodes);
        C("stale_incarnations", x->stale_incarnations);
        C("invalid", x->invalid);
        C("bad_envelope", x->bad_envelope);
        C("bad_version", x->bad_version);
        C("bad_type", x->bad_type);
        C("bad_decode", x->bad_decode);
        C("shed", x->shed);
        C("rehomed_away", x->rehomed_away);
    } else {
        const orbit_subtree_stats_t *x = orbit_subtree_stats(s->subtree);
        i->nodes = orbit_subtree_rows_count(s->subtree);
        C("reports_received", x->reports);
        C("full_reports", x->full_reports);
        C("rows_applied", x->rows_applied);
        C("rows_removed", x->rows_removed);
        C("bad_envelope", x->bad_envelope);
        C("bad_version", x->bad_version);
        C("bad_type", x->bad_type);
        C("bad_decode", x->bad_decode);
        C("invalid_reports", x->invalid_reports);
        C("invalid_rows", x->invalid_rows);
        C("resyncs_requested", x->resyncs_requested);
        C("children_dropped", x->children_dropped);
    }
    C("bad_frames", s->st.bad_frames);
    C("reports_sent", s->st.reports_sent);
    C("reports_dropped", s->st.reports_dropped);
    C("acks_dropped", s->st.acks_dropped);
    C("resyncs_received", s->st.resyncs_received);
    C("detail_requests", s->st.detail_requests);
    if (s->fetch) {
        C("topology_epoch", s->epoch);
        C("topology_fetches", s->st.topology_fetches);
        C("topology_fetch_errors", s->st.topology_fetch_errors);
        C("topology_updates", s->st.topology_updates);
        C("topology_stale", s->st.topology_stale);
        C("topology_undeclared", s->st.topology_undeclared);
        C("upstream_changes", s->st.upstream_changes);
        C("bind_errors", s->st.bind_errors);
        C("place_errors", s->st.place_errors);
    }
#undef C
    for (size_t k = 0; k < n; k++)
        if (!cs[k])
            return NULL;
    i->n_counters = n;
    i->counters = cs;
    return i;
}

static void send_report(orbit_shard_t *s, upstream_t *u, int64_t now)
{
    orbit_arena_t *a = s->arena;
    orbit_arena_reset(a);
    bool warming = now - s->started_ms < s->cfg.warmup_ms;
    /* An upstream that may have missed a removal whose tombstone was
     * dropped gets the whole set instead. */
    uint64_t floor = s->nodes ? orbit_shard_nodes_removed_floor(s->nodes)
                              : orbit_subtree_removed_floor(s->subtree);
    bool full = u->need_full || warming || u->acked_gen < floor;
    uint64_t gen = s->nodes ? orbit_shard_nodes_gen(s->nodes) : orbit_subtree_gen(s->subtree);
    Orbit__ShardReport r = ORBIT__SHARD_REPORT__INIT;
    Orbit__Summary sum = ORBIT__SUMMARY__INIT;
    orbit_agg_pb_store_t store;
    orbit_agg_t agg;
    int rc;
    if (s->nodes) {
        orbit_shard_nodes_summary(s->nodes, &agg);
        rc = orbit_shard_nodes_rows(s->nodes, full ? 0 : u->acked_gen, a, &r.rows, &r.n_rows);
        if (rc == ORBIT_OK && !full)
            rc = orbit_shard_nodes_removed(s->nodes, u->acked_gen, a, &r.removed, &r.n_removed);
    } else {
        orbit_subtree_summary(s->subtree, &agg);
        rc = orbit_subtree_rows(s->subtree, full ? 0 : u->acked_gen, a, &r.rows, &r.n_rows);
        if (rc == ORBIT_OK && !full)
            rc = orbit_subtree_removed(s->subtree, u->acked_gen, a, &r.removed, &r.n_removed);
    }
    Orbit__ShardInfo *me = self_info(s, a);
    Orbit__ShardInfo **infos = orbit_arena_alloc(a, sizeof *infos);
    if (rc != ORBIT_OK || !me || !infos) {
        s->st.reports_dropped++;
        return;
    }
    infos[0] = me;
    size_t ninfos = 1;
    if (s->subtree && orbit_subtree_shards(s->subtree, now, a, &infos, &ninfos) != ORBIT_OK) {
        s->st.reports_dropped++;
        return;
    }
    orbit_agg_to_pb(&agg, &sum, &store);
    r.shard = s->cfg.id;
    r.tier = s->cfg.tier;
    r.incarnation = s->incarnation;
    r.seq = ++u->seq;
    r.has_full = r.has_warming = r.has_interval_ms = r.has_sent_ms = true;
    r.full = full;
    r.warming = warming;
    r.summary = &sum;
    r.shards = infos;
    r.n_shards = ninfos;
    r.interval_ms = s->cfg.interval_ms;
    r.sent_ms = zclock_time();
    r.has_topology_epoch = s->epoch > 0; /* discovery mode: what placed us */
    r.topology_epoch = s->epoch;
    rc = orbit_wire_send(u->sock, NULL, 0, ORBIT_MSG_SHARD_REPORT, &r.base);
    if (rc != ORBIT_OK) {
        s->st.reports_dropped++;
        return;
    }
    s->st.reports_sent++;
    int k = (int)(r.seq % REPORT_RING);
    u->ring[k].seq = r.seq;
    u->ring[k].gen = gen;
    u->ring[k].full = full;
}

static void on_report_ack(orbit_shard_t *s, upstream_t *u, const Orbit__ReportAck *ack)
{
    s->st.acks_received++;
    if (s->fetch && ack->has_topology_epoch)
        orbit_shard_refetch_saw(&s->refetch, ack->topology_epoch, zclock_mono(),
                                (uint32_t)randof((int)s->cfg.interval_ms));
    if (ack->has_resync && ack->resync) {
        s->st.resyncs_received++;
        u->need_full = true;
        u->acked_gen = 0;
        send_report(s, u, zclock_mono()); /* answer at once: the parent is blind */
        return;
    }
    int k = (int)(ack->seq % REPORT_RING);
    if (u->ring[k].seq != ack->seq)
        return; /* too old to matter */
    if (u->ring[k].gen > u->acked_gen || u->ring[k].full)
        u->acked_gen = u->ring[k].gen;
    if (u->ring[k].full)
        u->need_full = false;
}

/* ----------------------------------------------------------- detail proxy */

static void reply_detail_up(orbit_shard_t *s, zsock_t *up, uint64_t id, Orbit__NodeDetail *d,
                            const char *error)
{
    Orbit__DetailReply rep = ORBIT__DETAIL_REPLY__INIT;
    rep.request_id = id;
    rep.detail = d;
    rep.error = (char *)error;
    if (orbit_wire_send(up, NULL, 0, ORBIT_MSG_DETAIL_REPLY, &rep.base) != ORBIT_OK)
        s->st.acks_dropped++;
}

static void on_detail_request(orbit_shard_t *s, int ui, const Orbit__DetailRequest *q)
{
    s->st.detail_requests++;
    int64_t now = zclock_mono();
    if (s->nodes) {
        Orbit__NodeDetail *d = NULL;
        int rc = orbit_shard_nodes_detail(s->nodes, q->node, now, s->arena, &d);
        if (rc != ORBIT_OK)
            s->st.detail_unknown++;
        reply_detail_up(s, s->up[ui].sock, q->request_id, rc == ORBIT_OK ? d : NULL,
                        rc == ORBIT_OK ? NULL : "node not known to its shard");
        return;
    }
    const orbit_row_t *row = orbit_subtree_row(s->subtree, q->node);
    if (!row) {
        s->st.detail_unknown++;
        reply_detail_up(s, s->up[ui].sock, q->request_id, NULL, "node not known to this shard");
        return;
    }
    orbit_pending_t p;
    memset(&p, 0, sizeof p);
    p.orig_id = q->request_id;
    p.upstream = ui;
    p.deadline_ms = now + 3000;
    Orbit__DetailRequest fwd = ORBIT__DETAIL_REQUEST__INIT;
    fwd.request_id = orbit_pending_add(&s->pending, &p);
    fwd.node = q->node;
    const uint8_t *rid;
    size_t rid_len;
    orbit_subtree_route(row, &rid, &rid_len);
    if (orbit_wire_send(s->router, rid, rid_len, ORBIT_MSG_DETAIL_REQUEST, &fwd.base) != ORBIT_OK)
        s->st.acks_dropped++;
}

static void on_detail_reply(orbit_shard_t *s, Orbit__DetailReply *rep)
{
    orbit_pending_t p;
    if (!orbit_pending_take(&s->pending, rep->request_id, &p) || p.upstream < 0 ||
        p.upstream >= s->nup)
        return;
    reply_detail_up(s, s->up[p.upstream].sock, p.orig_id, rep->detail, rep->error);
}

/* ------------------------------------------------------------ socket I/O */

static int on_router(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    orbit_shard_t *s = arg;
    /* Drain fully but boundedly, so timers still run under a flood. */
    for (int budget = 0; budget < 4096; budget++) {
        int rc = orbit_wire_recv(sock, 1, &s->rx);
        if (rc == ORBIT_EAGAIN)
            break;
        if (rc != ORBIT_OK) {
            s->st.bad_frames++;
            log_bad(s, "malformed multipart message", rc);
            continue;
        }
        int64_t now = zclock_mono();
        orbit_arena_reset(s->arena);
        const uint8_t *buf = orbit_rx_data(&s->rx);
        size_t len = orbit_rx_size(&s->rx);
        if (s->nodes) {
            Orbit__LeafAck ack;
            rc = orbit_shard_nodes_ingest_frame(s->nodes, buf, len, now, s->arena, &ack);
            if (rc != ORBIT_OK) {
                log_bad(s, "rejected leaf frame", rc);
                continue;
            }
            if (orbit_wire_send(sock, s->rx.rid, s->rx.rid_len, ORBIT_MSG_LEAF_ACK, &ack.base) !=
                ORBIT_OK)
                s->st.acks_dropped++;
            else
                s->st.acks_sent++;
            continue;
        }
        orbit_msg_type_t type;
        rc = orbit_wire_peek(buf, len, &type);
        if (rc == ORBIT_OK && type == ORBIT_MSG_DETAIL_REPLY) {
            ProtobufCMessage *m;
            rc = orbit_wire_decode(buf, len, type, orbit_arena_allocator(s->arena), NULL, &m);
            if (rc == ORBIT_OK)
                on_detail_reply(s, (Orbit__DetailReply *)m);
            else
                s->st.bad_frames++;
            continue;
        }
        Orbit__ReportAck ack;
        rc = orbit_subtree_report_frame(s->subtree, buf, len, s->rx.rid, s->rx.rid_len, now,
                                        s->arena, &ack, NULL);
        if (rc != ORBIT_OK) {
            log_bad(s, "rejected child report", rc);
            continue;
        }
        ack.has_topology_epoch = true;
        ack.topology_epoch = s->epoch;
        if (orbit_wire_send(sock, s->rx.rid, s->rx.rid_len, ORBIT_MSG_REPORT_ACK, &ack.base) !=
            ORBIT_OK)
            s->st.acks_dropped++;
    }
    return 0;
}

static int on_upstream(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    orbit_shard_t *s = arg;
    int ui = 0;
    while (ui < s->nup && s->up[ui].sock != sock)
        ui++;
    if (ui == s->nup)
        return 0;
    for (int budget = 0; budget < 1024; budget++) {
        int rc = orbit_wire_recv(sock, 0, &s->rx);
        if (rc == ORBIT_EAGAIN)
            break;
        if (rc != ORBIT_OK) {
            s->st.bad_frames++;
            continue;
        }
        orbit_arena_reset(s->arena);
        ProtobufCMessage *m;
        orbit_msg_type_t type;
        rc = orbit_wire_decode(orbit_rx_data(&s->rx), orbit_rx_size(&s->rx), 0,
                               orbit_arena_allocator(s->arena), &type, &m);
        if (rc != ORBIT_OK) {
            s->st.bad_frames++;
            log_bad(s, "bad frame from upstream", rc);
            continue;
        }
        if (type == ORBIT_MSG_REPORT_ACK)
            on_report_ack(s, &s->up[ui], (Orbit__ReportAck *)m);
        else if (type == ORBIT_MSG_DETAIL_REQUEST)
            on_detail_request(s, ui, (Orbit__DetailRequest *)m);
        else
            s->st.bad_frames++;
    }
    return 0;
}

/* Runs four times per interval: liveness and child silence are checked at
 * that finer grain, and a report goes out early while warming up after a
 * restart or when a child just went silent or came back, so those changes
 * climb the tree in a fraction of an interval. Otherwise one report per
 * interval. */
static int on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    orbit_shard_t *s = arg;
    int64_t now = zclock_mono();
    bool urgent = now - s->started_ms < s->cfg.warmup_ms;
    if (s->nodes)
        orbit_shard_nodes_tick(s->nodes, now);
    else {
        uint64_t dropped = orbit_subtree_stats(s->subtree)->children_dropped;
        orbit_subtree_tick(s->subtree, now);
        urgent |= orbit_subtree_take_urgent(s->subtree);
        if (orbit_subtree_stats(s->subtree)->children_dropped != dropped)
            orbit_info("shard %s: a child shard left the topology and went silent: dropped "
                       "with its rows",
                       s->cfg.id);
    }
    /* Keep the regular cadence at exactly one report per interval: advance
     * by the interval (re-anchoring only after a stall), not from now, which
     * would drift by up to a quarter interval each time. Early reports do
     * not move it. */
    bool regular = now >= s->next_report_ms;
    if (regular) {
        s->next_report_ms += s->cfg.interval_ms;
        if (s->next_report_ms <= now)
            s->next_report_ms = now + s->cfg.interval_ms;
    }
    if (urgent || regular) {
        for (int i = 0; i < s->nup; i++)
            send_report(s, &s->up[i], now);
    }
    orbit_pending_t p;
    while (orbit_pending_expire(&s->pending, now, &p))
        if (p.upstream >= 0 && p.upstream < s->nup)
            reply_detail_up(s, s->up[p.upstream].sock, p.orig_id, NULL,
                            "child shard did not answer in time");
    if (s->nup) {
        uint64_t acked = s->up[0].acked_gen;
        for (int i = 1; i < s->nup; i++)
            if (s->up[i].acked_gen < acked)
                acked = s->up[i].acked_gen;
        if (s->nodes)
            orbit_shard_nodes_prune_removed(s->nodes, acked);
        else
            orbit_subtree_prune_removed(s->subtree, acked);
    }
    if (s->fetch && !orbit_shard_fetch_busy(s->fetch) &&
        orbit_shard_refetch_due(&s->refetch, now)) {
        if (orbit_shard_fetch_start(s->fetch) == ORBIT_OK)
            s->st.topology_fetches++;
    }
    return 0;
}

/* --------------------------------------------------------------- topology */

/* Connect a DEALER to each endpoint of list into up[] (*n of them); all or
 * nothing. */
static int connect_upstreams(const char *list, upstream_t *up, int *n, char *err, size_t errlen)
{
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_TREE);
    char *eps[ORBIT_SHARD_UPSTREAMS_MAX];
    int neps = 0;
    *n = 0;
    if (orbit_endpoints_split(list, "--upstream", eps, ORBIT_SHARD_UPSTREAMS_MAX, &neps, err,
                              errlen) != 0)
        return ORBIT_EINVAL;
    int rc = ORBIT_OK;
    for (int i = 0; i < neps; i++) {
        upstream_t *u = &up[*n];
        memset(u, 0, sizeof *u);
        snprintf(u->endpoint, sizeof u->endpoint, "%s", eps[i]);
        u->need_full = true;
        u->sock = rc == ORBIT_OK ? orbit_sock_connect(ZMQ_DEALER, eps[i], &o, err, errlen) : NULL;
        if (u->sock)
            (*n)++;
        else
            rc = ORBIT_EIO;
    }
    for (int i = 0; i < neps; i++)
        free(eps[i]);
    if (rc != ORBIT_OK) {
        for (int i = 0; i < *n; i++)
            zsock_destroy(&up[i].sock);
        *n = 0;
    }
    return rc;
}

/* The parent moved: report to list from now on (each new upstream starts
 * with a full report). The old sockets stay if the new ones cannot be had. */
static void repoint_upstreams(orbit_shard_t *s, const char *list)
{
    upstream_t fresh[ORBIT_SHARD_UPSTREAMS_MAX];
    int n = 0;
    char err[256] = "";
    if (connect_upstreams(list, fresh, &n, err, sizeof err) != ORBIT_OK) {
        s->st.place_errors++;
        log_topo(s, TOPO_PLACE, "shard %s: cannot report to %s: %s; still reporting to %s",
                 s->cfg.id, list, err, s->place.upstream);
        return;
    }
    for (int i = 0; i < s->nup; i++) {
        if (s->loop)
            zloop_reader_end(s->loop, s->up[i].sock);
        zsock_destroy(&s->up[i].sock);
    }
    memcpy(s->up, fresh, (size_t)n * sizeof *fresh);
    s->nup = n;
    for (int i = 0; s->loop && i < s->nup; i++)
        zloop_reader(s->loop, s->up[i].sock, on_upstream, s);
    s->st.upstream_changes++;
    snprintf(s->place.upstream, sizeof s->place.upstream, "%s", list);
    orbit_info("shard %s: now reporting to %s", s->cfg.id, list);
}

/* The declared endpoint changed (the shard left and joined again): listen
 * there too, then stop listening on the old one. */
static void rebind(orbit_shard_t *s, const char *listen)
{
    if (!orbit_endpoint_valid(listen) || zsock_bind(s->router, "%s", listen) < 0) {
        s->st.bind_errors++;
        log_topo(s, TOPO_BIND,
                 "shard %s: cannot listen on its declared endpoint %s: %s; still on %s", s->cfg.id,
                 listen, orbit_endpoint_valid(listen) ? zmq_strerror(errno) : "malformed endpoint",
                 s->place.listen);
        return;
    }
    zsock_unbind(s->router, "%s", s->place.listen);
    orbit_info("shard %s: now listening on %s", s->cfg.id, listen);
    snprintf(s->place.listen, sizeof s->place.listen, "%s", listen);
}

/* Take a topology read (t, owned; NULL: the read failed for reason why). */
static void take_topology(orbit_shard_t *s, orbit_topology_t *t, const char *why)
{
    int64_t now = zclock_mono();
    if (!t) {
        s->st.topology_fetch_errors++;
        orbit_shard_refetch_done(&s->refetch, false, 0, now);
        log_topo(s, TOPO_FETCH, "shard %s: cannot read the topology from %s: %s; retrying",
                 s->cfg.id, s->cfg.roots, why);
        return;
    }
    uint64_t epoch = orbit_topology_epoch(t);
    orbit_shard_refetch_done(&s->refetch, true, epoch, now);
    if (epoch <= s->epoch) {
        /* The safety net's read of the same tree, or a replica behind it. */
        if (epoch < s->epoch || s->refetch.seen > epoch)
            s->st.topology_stale++;
        orbit_topology_destroy(&t);
        return;
    }
    s->st.topology_updates++;
    s->epoch = epoch;
    orbit_shard_place_t p;
    char err[256] = "";
    int rc = orbit_shard_place_resolve(t, s->cfg.id, s->cfg.roots, &p, err, sizeof err);
    if (rc == ORBIT_ENOTFOUND) {
        /* A newer tree without this shard: its ShardLeave committed (the
         * ledger only allows that once it owns no racks and has no child
         * shards, i.e. after a drain). Its work is done: stop. */
        s->st.topology_undeclared++;
        s->removed = true;
        orbit_info("shard %s: no longer in the topology (epoch %llu): removed from the tree, "
                   "stopping",
                   s->cfg.id, (unsigned long long)epoch);
        orbit_topology_destroy(&t);
        return;
    } else if (rc != ORBIT_OK) {
        s->st.place_errors++;
        log_topo(s, TOPO_PLACE, "shard %s: topology epoch %llu: %s; keeping its place", s->cfg.id,
                 (unsigned long long)epoch, err);
    } else {
        if (p.tier != s->cfg.tier) {
            s->st.place_errors++;
            log_topo(s, TOPO_TIER,
                     "shard %s: declared tier is now %u, serving as tier %u until restarted",
                     s->cfg.id, p.tier, s->cfg.tier);
        }
        if (strcmp(p.listen, s->place.listen))
            rebind(s, p.listen);
        if (strcmp(p.upstream, s->place.upstream))
            repoint_upstreams(s, p.upstream);
        snprintf(s->place.parent, sizeof s->place.parent, "%s", p.parent);
        s->topo_said = TOPO_OK;
        zlistx_t *kids = NULL;
        if (s->subtree && orbit_topology_children(t, s->cfg.id, &kids) == ORBIT_OK)
            orbit_subtree_set_topology(s->subtree, epoch, &kids);
    }
    s->place.epoch = epoch;
    if (s->nodes) {
        zhashx_t *racks = orbit_shard_place_racks(t, s->cfg.id);
        orbit_shard_nodes_set_topology(s->nodes, epoch, racks ? &racks : NULL);
    }
    orbit_info("shard %s: topology epoch %llu", s->cfg.id, (unsigned long long)epoch);
    orbit_topology_destroy(&t);
}

static int on_fetched(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    (void)sock;
    orbit_shard_t *s = arg;
    char why[256] = "";
    orbit_topology_t *t = orbit_shard_fetch_take(s->fetch, why, sizeof why);
    if (t || !orbit_shard_fetch_busy(s->fetch))
        take_topology(s, t, why);
    return s->removed ? -1 : 0; /* -1 ends the loop: orbit_shard_run returns */
}

/* Discovery at start: read until this shard is declared with a usable
 * place (one line per kind of trouble), or until interrupted. */
static int discover(orbit_shard_t *s, orbit_topology_t **out, char *err, size_t errlen)
{
    for (;;) {
        char why[256] = "";
        orbit_topology_t *t = NULL;
        if (orbit_shard_fetch_start(s->fetch) == ORBIT_OK) {
            s->st.topology_fetches++;
            t = orbit_shard_fetch_take(s->fetch, why, sizeof why);
        }
        if (zsys_interrupted)
            break;
        int rc = ORBIT_EIO;
        if (!t) {
            s->st.topology_fetch_errors++;
            log_topo(s, TOPO_FETCH,
                     "shard %s: cannot read the topology from %s: %s; retrying every %u ms",
                     s->cfg.id, s->cfg.roots, why, s->cfg.interval_ms);
        } else {
            rc = orbit_shard_place_resolve(t, s->cfg.id, s->cfg.roots, &s->place, why, sizeof why);
            if (rc == ORBIT_OK) {
                *out = t;
                s->topo_said = TOPO_OK;
                return ORBIT_OK;
            }
            if (rc == ORBIT_ENOTFOUND)
                s->st.topology_undeclared++;
            else
                s->st.place_errors++;
            log_topo(s, rc == ORBIT_ENOTFOUND ? TOPO_UNDECLARED : TOPO_PLACE,
                     "%s (topology epoch %llu); retrying every %u ms", why,
                     (unsigned long long)orbit_topology_epoch(t), s->cfg.interval_ms);
            orbit_topology_destroy(&t);
        }
        zclock_sleep((int)s->cfg.interval_ms);
        if (zsys_interrupted)
            break;
    }
    snprintf(err, errlen, "interrupted while waiting for shard %s in the topology", s->cfg.id);
    return ORBIT_ESHUTDOWN;
}

/* -------------------------------------------------------------- lifecycle */

orbit_shard_t *orbit_shard_new(const orbit_shard_cfg_t *cfg, char *err, size_t errlen)
{
    if (cfg->roots && (cfg->listen || cfg->upstream)) {
        snprintf(err, errlen,
                 "--root finds the shard's endpoint and parent in the ledger: give it without "
                 "--listen and --upstream");
        return NULL;
    }
    if (!cfg->roots && (!cfg->listen || !cfg->upstream)) {
        snprintf(err, errlen, "give --root, or both --listen and --upstream");
        return NULL;
    }
    orbit_shard_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    orbit_topology_t *topo = NULL;
    s->cfg = *cfg;
    if (!s->cfg.interval_ms)
        s->cfg.interval_ms = 1000;
    orbit_pending_init(&s->pending);
    orbit_rx_init(&s->rx);
    if (cfg->roots) {
        s->fetch = orbit_shard_fetch_new(cfg->roots, FETCH_TIMEOUT_MS, err, errlen);
        if (!s->fetch || discover(s, &topo, err, errlen) != ORBIT_OK)
            goto fail;
        s->epoch = orbit_topology_epoch(topo);
        s->cfg.tier = s->place.tier;
        s->cfg.listen = s->place.listen;
        s->cfg.upstream = s->place.upstream;
        orbit_info("shard %s: declared in topology epoch %llu as tier %u at %s, reporting to %s",
                   s->cfg.id, (unsigned long long)s->epoch, s->place.tier, s->place.listen,
                   s->place.upstream);
    } else {
        snprintf(s->place.listen, sizeof s->place.listen, "%s", cfg->listen);
        snprintf(s->place.upstream, sizeof s->place.upstream, "%s", cfg->upstream);
    }
    s->started_ms = zclock_mono();
    s->incarnation = ((uint64_t)zclock_time() << 16) ^ (uint64_t)randof(65536) ^ 1;
    s->arena = orbit_arena_new(1 << 16);
    if (s->cfg.tier <= 1) {
        s->cfg.tier = 1;
        s->nodes = orbit_shard_nodes_new(s->cfg.id, &s->cfg.nodes);
    } else {
        s->subtree = orbit_subtree_new(s->cfg.id, s->cfg.tier, &s->cfg.subtree);
    }
    if (!s->arena || (!s->nodes && !s->subtree)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (topo && s->nodes) {
        zhashx_t *racks = orbit_shard_place_racks(topo, s->cfg.id);
        if (!racks) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        orbit_shard_nodes_set_topology(s->nodes, s->epoch, &racks);
    }
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, s->cfg.tier == 1 ? ORBIT_LINK_LEAF : ORBIT_LINK_TREE);
    s->router = orbit_sock_bind(ZMQ_ROUTER, s->cfg.listen, &o, err, errlen);
    if (!s->router) {
        if (topo) { /* say whose endpoint it is: the fix is in the ledger or on this host */
            char why[256];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errlen, "shard %s: declared endpoint: %s", s->cfg.id, why);
        }
        goto fail;
    }
    if (connect_upstreams(s->cfg.upstream, s->up, &s->nup, err, errlen) != ORBIT_OK)
        goto fail;
    if (s->fetch)
        orbit_shard_refetch_init(&s->refetch, s->cfg.interval_ms, s->epoch, zclock_mono());
    orbit_topology_destroy(&topo);
    return s;
fail:
    orbit_topology_destroy(&topo);
    orbit_shard_destroy(&s);
    return NULL;
}

int orbit_shard_run(orbit_shard_t *s)
{
    s->loop = zloop_new();
    zloop_reader(s->loop, s->router, on_router, s);
    for (int i = 0; i < s->nup; i++)
        zloop_reader(s->loop, s->up[i].sock, on_upstream, s);
    if (s->fetch)
        zloop_reader(s->loop, orbit_shard_fetch_sock(s->fetch), on_fetched, s);
    uint32_t sub = s->cfg.interval_ms / 4 ? s->cfg.interval_ms / 4 : 1;
    zloop_timer(s->loop, sub, 0, on_tick, s);
    orbit_info("shard %s (tier %u) serving on %s, %d upstream(s), report every %u ms", s->cfg.id,
               s->cfg.tier, s->place.listen, s->nup, s->cfg.interval_ms);
    zloop_start(s->loop);
    orbit_info("shard %s stopping", s->cfg.id);
    return 0;
}

void orbit_shard_destroy(orbit_shard_t **ps)
{
    if (!ps || !*ps)
        return;
    orbit_shard_t *s = *ps;
    zloop_destroy(&s->loop);
    orbit_shard_fetch_destroy(&s->fetch);
    for (int i = 0; i < s->nup; i++)
        zsock_destroy(&s->up[i].sock);
    zsock_destroy(&s->router);
    orbit_rx_close(&s->rx);
    orbit_shard_nodes_destroy(&s->nodes);
    orbit_subtree_destroy(&s->subtree);
    orbit_arena_destroy(&s->arena);
    free(s);
    *ps = NULL;
}
