/* orbit_sim: pacing, routing and link wiring of the simulated leaves. */
#include "orbit_sim.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "leaf_agent.h"
#include "leaf_home.h"
#include "leaf_link.h"
#include "orbit_err.h"
#include "orbit_log.h"
#include "orbit_sim_capsules.h"
#include "orbit_sock.h"
#include "topology_fetch.h"

#define DISCOVER_LOG_MS 10000

typedef struct {
    orbit_sim_t *sim;
    zsock_t *sock; /* --root: NULL until the rack has a shard */
    orbit_leaf_link_t *link;
    uint32_t endpoint; /* --shard: index in endpoints */
    /* --root: the rack's candidates and the one in use. */
    orbit_leaf_candidates_t cand;
    size_t cur;
    uint32_t intervals_away;
} sim_link_t;

struct orbit_sim {
    orbit_sim_cfg_t cfg;
    orbit_sim_model_t *model;
    char *endpoints[ORBIT_SIM_ENDPOINTS_MAX];
    uint32_t nendpoints;
    sim_link_t *links;
    uint32_t nlinks;
    uint16_t *leaf_link; /* per node: its link */
    uint32_t *leaf_idx;  /* per node: its index in that link */
    zloop_t *loop;
    uint32_t tick_ms;
    int64_t cycle_start_ms; /* monotonic start of the current interval */
    uint32_t next;          /* next node to step in this interval */
    int64_t last_link_tick_ms;
    orbit_sim_stats_t st;
    uint64_t last_sent; /* for the rate in the stats line */
    int64_t last_stats_ms, started_ms;
    orbit_ratelimit_t rl;
    /* --root: discovery (links[k] serves rack k). */
    orbit_ledger_client_t *roots;
    char *prefix;
    orbit_leaf_home_t home;
    int refetch_timer; /* -1: none */
    int64_t discover_log_ms;
    uint64_t discover_suppressed;
    orbit_ratelimit_t move_log;
    /* cfg.ledger: the capsules of every node, and a state to stamp them on. */
    orbit_sim_capsules_t *caps;
    orbit_node_state_t with_caps;
};

uint32_t orbit_sim_default_sockets(uint32_t leaves)
{
    uint32_t n = (leaves + 999) / 1000;
    return n < 1 ? 1 : n > 16 ? 16 : n;
}

/* ---------------------------------------------------------------- set-up */

static int parse_endpoints(orbit_sim_t *s, const char *list, char *err, size_t errlen)
{
    int n = 0;
    if (orbit_endpoints_split(list, "--shard", s->endpoints, ORBIT_SIM_ENDPOINTS_MAX, &n, err,
                              errlen) != 0)
        return ORBIT_EINVAL;
    s->nendpoints = (uint32_t)n;
    return ORBIT_OK;
}

/* The link settings every simulated leaf shares. */
static void link_config(const orbit_sim_t *s, orbit_leaf_link_config_t *lc)
{
    orbit_leaf_link_config_default(lc);
    lc->interval_ms = s->cfg.model.interval_ms;
    if (s->cfg.full_every)
        lc->full_every = s->cfg.full_every;
}

/* --root: one link per rack, no socket yet. */
static int open_rack_links(orbit_sim_t *s, char *err, size_t errlen)
{
    uint32_t n = s->cfg.model.racks;
    s->links = calloc(n, sizeof *s->links);
    if (!s->links) {
        snprintf(err, errlen, "out of memory");
        return ORBIT_ENOMEM;
    }
    orbit_leaf_link_config_t lc;
    link_config(s, &lc);
    for (uint32_t k = 0; k < n; k++) {
        sim_link_t *l = &s->links[k];
        l->sim = s;
        lc.seed = s->cfg.model.seed * 1000003u + k + 1;
        l->link = orbit_leaf_link_new(NULL, &lc);
        s->nlinks = k + 1;
        if (!l->link) {
            snprintf(err, errlen, "out of memory");
            return ORBIT_ENOMEM;
        }
    }
    return ORBIT_OK;
}

static int open_links(orbit_sim_t *s, char *err, size_t errlen)
{
    if (s->roots)
        return open_rack_links(s, err, errlen);
    uint32_t n = s->cfg.sockets ? s->cfg.sockets : orbit_sim_default_sockets(s->cfg.model.nodes);
    if (n > ORBIT_SIM_SOCKETS_MAX) {
        snprintf(err, errlen, "--sockets must be in 1..%d", ORBIT_SIM_SOCKETS_MAX);
        return ORBIT_EINVAL;
    }
    if (n < s->nendpoints)
        n = s->nendpoints; /* every endpoint needs a socket of its own */
    s->links = calloc(n, sizeof *s->links);
    if (!s->links) {
        snprintf(err, errlen, "out of memory");
        return ORBIT_ENOMEM;
    }
    orbit_leaf_link_config_t lc;
    link_config(s, &lc);
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_LEAF);
    for (uint32_t j = 0; j < n; j++) {
        sim_link_t *l = &s->links[j];
        l->sim = s;
        l->endpoint = j % s->nendpoints;
        l->sock = orbit_sock_connect(ZMQ_DEALER, s->endpoints[l->endpoint], &o, err, errlen);
        if (!l->sock)
            return ORBIT_EIO;
        lc.seed = s->cfg.model.seed * 1000003u + j + 1;
        l->link = orbit_leaf_link_new(l->sock, &lc);
        s->nlinks = j + 1;
        if (!l->link) {
            snprintf(err, errlen, "out of memory");
            return ORBIT_ENOMEM;
        }
    }
    return ORBIT_OK;
}

/* Deal every node to a link: rack k -> endpoint k mod n -> that endpoint's
 * sockets in turn. */
static int route_nodes(orbit_sim_t *s, char *err, size_t errlen)
{
    uint32_t nodes = s->cfg.model.nodes;
    uint32_t per_ep[ORBIT_SIM_ENDPOINTS_MAX] = {0}, dealt[ORBIT_SIM_ENDPOINTS_MAX] = {0};
    for (uint32_t j = 0; !s->roots && j < s->nlinks; j++)
        per_ep[s->links[j].endpoint]++;
    s->leaf_link = malloc(nodes * sizeof *s->leaf_link);
    s->leaf_idx = malloc(nodes * sizeof *s->leaf_idx);
    if (!s->leaf_link || !s->leaf_idx) {
        snprintf(err, errlen, "out of memory");
        return ORBIT_ENOMEM;
    }
    for (uint32_t i = 0; i < nodes; i++) {
        uint32_t j;
        if (s->roots) {
            j = orbit_sim_model_rack(s->model, i); /* one link per rack */
        } else {
            uint32_t e = orbit_sim_model_rack(s->model, i) % s->nendpoints;
            /* Socket j serves endpoint j mod n: the k-th of them is e + k n. */
            uint32_t k = dealt[e]++ % per_ep[e];
            j = e + k * s->nendpoints;
        }
        char name[ORBIT_NAME_MAX];
        orbit_sim_model_name(s->model, i, name);
        int rc = orbit_leaf_link_add_node(s->links[j].link, name, &s->leaf_idx[i]);
        if (rc != ORBIT_OK) {
            snprintf(err, errlen, "cannot add node %s: %s", name, orbit_strerror(rc));
            return rc;
        }
        s->leaf_link[i] = (uint16_t)j;
    }
    if (!s->roots && s->cfg.model.racks < s->nendpoints)
        orbit_warn("sim: %u racks for %u shard endpoints: some endpoints get no leaves",
                   s->cfg.model.racks, s->nendpoints);
    return ORBIT_OK;
}

orbit_sim_t *orbit_sim_new(const orbit_sim_cfg_t *cfg, char *err, size_t errlen)
{
    if (orbit_sim_model_cfg_check(&cfg->model, err, errlen) != ORBIT_OK)
        return NULL;
    if (cfg->sockets > ORBIT_SIM_SOCKETS_MAX) {
        snprintf(err, errlen, "--sockets must be in 1..%d", ORBIT_SIM_SOCKETS_MAX);
        return NULL;
    }
    orbit_sim_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->cfg.shards = s->cfg.roots = s->cfg.ledger = NULL; /* parsed; not kept */
    orbit_node_state_init(&s->with_caps);
    s->refetch_timer = -1;
    if (!cfg->shards == !cfg->roots) {
        snprintf(err, errlen, "give exactly one of --shard and --root");
        goto fail;
    }
    if (cfg->roots) {
        if (cfg->model.racks > ORBIT_SIM_ROOT_RACKS_MAX) {
            snprintf(err, errlen, "--root: at most %d racks (one socket per rack), not %u",
                     ORBIT_SIM_ROOT_RACKS_MAX, cfg->model.racks);
            goto fail;
        }
        s->roots = orbit_ledger_client_new(cfg->roots, NULL, err, errlen);
        s->prefix = strdup(cfg->model.prefix ? cfg->model.prefix : ORBIT_SIM_DEFAULT_PREFIX);
        if (!s->roots || !s->prefix) {
            if (s->roots)
                snprintf(err, errlen, "out of memory");
            goto fail;
        }
        orbit_leaf_home_init(&s->home, cfg->model.interval_ms, cfg->model.seed * 7919u + 1);
        s->move_log.burst = 5;
    } else if (parse_endpoints(s, cfg->shards, err, errlen) != ORBIT_OK) {
        goto fail;
    }
    s->model = orbit_sim_model_new(&cfg->model);
    if (!s->model) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->ledger) {
        s->caps = orbit_sim_capsules_new(
            cfg->ledger, cfg->model.prefix ? cfg->model.prefix : ORBIT_SIM_DEFAULT_PREFIX,
            cfg->model.nodes, cfg->model.interval_ms, err, errlen);
        if (!s->caps)
            goto fail;
    }
    /* The model copied prefix and zone; nothing else keeps the caller's. */
    s->cfg.model.prefix = s->cfg.model.zone = NULL;
    if (open_links(s, err, errlen) != ORBIT_OK || route_nodes(s, err, errlen) != ORBIT_OK)
        goto fail;
    uint32_t t = cfg->model.interval_ms / 100;
    s->tick_ms = t < 1 ? 1 : t > 20 ? 20 : t;
    return s;
fail:
    orbit_sim_destroy(&s);
    return NULL;
}

void orbit_sim_destroy(orbit_sim_t **ps)
{
    if (!ps || !*ps)
        return;
    orbit_sim_t *s = *ps;
    zloop_destroy(&s->loop);
    for (uint32_t j = 0; j < s->nlinks; j++) {
        orbit_leaf_link_destroy(&s->links[j].link);
        zsock_destroy(&s->links[j].sock);
        orbit_leaf_candidates_close(&s->links[j].cand);
    }
    orbit_ledger_client_destroy(&s->roots);
    orbit_sim_capsules_destroy(&s->caps);
    orbit_node_state_close(&s->with_caps);
    free(s->prefix);
    free(s->links);
    free(s->leaf_link);
    free(s->leaf_idx);
    orbit_sim_model_destroy(&s->model);
    for (uint32_t e = 0; e < s->nendpoints; e++)
        free(s->endpoints[e]);
    free(s);
    *ps = NULL;
}

/* ------------------------------------------------------------------ stats */

void orbit_sim_stats(const orbit_sim_t *s, orbit_sim_stats_t *out)
{
    *out = s->st;
    for (uint32_t j = 0; j < s->nlinks; j++) {
        const orbit_leaf_link_stats_t *x = orbit_leaf_link_stats(s->links[j].link);
        out->batches += x->batches_sent;
        out->sent += x->fulls_sent + x->deltas_sent;
        out->fulls += x->fulls_sent;
        out->acked += x->acked + x->duplicate;
        out->overloaded += x->overloaded;
        out->resync += x->resync;
        out->rejected += x->rejected;
        out->wrong_shard += x->wrong_shard;
        out->send_dropped += x->dropped_nodes;
        out->silent += x->silent_nodes;
    }
    if (s->roots) {
        out->topology_epoch = s->home.held_epoch;
        out->fetches = s->home.stats.fetches;
        out->fetch_failures = s->home.stats.fetch_failures;
        out->refetches = s->home.stats.refetches;
        out->stale_fetches = s->home.stats.stale_fetches;
        out->rehomes = s->home.stats.rehomes;
    }
    if (s->caps) {
        orbit_sim_capsules_stats_t c;
        orbit_sim_capsules_stats(s->caps, &c);
        out->capsules = c.capsules;
        out->capsule_updates = c.updates;
    }
}

const char *orbit_sim_rack_endpoint(const orbit_sim_t *s, uint32_t rack)
{
    if (!s->roots || rack >= s->nlinks || !s->links[rack].sock)
        return NULL;
    return s->links[rack].cand.ep[s->links[rack].cur];
}

/* The rate is over the last period, or over the whole run when final. */
static void log_stats(orbit_sim_t *s, int64_t now, bool final)
{
    orbit_sim_stats_t x;
    orbit_sim_stats(s, &x);
    int64_t since = final ? s->started_ms : s->last_stats_ms;
    uint64_t base = final ? 0 : s->last_sent;
    double secs = (double)(now - since) / 1000.0;
    double rate = secs > 0 ? (double)(x.sent - base) / secs : 0.0;
    s->last_sent = x.sent;
    s->last_stats_ms = now;
    orbit_info("sim: %u leaves on %u sockets: sent %" PRIu64 " (%.0f/s, %" PRIu64
               " full) acked %" PRIu64 " overloaded %" PRIu64 " resync %" PRIu64
               " rejected %" PRIu64 " dropped %" PRIu64 " silent %" PRIu64 " reboots %" PRIu64
               " gpu-events %" PRIu64 " lagged %" PRIu64,
               s->cfg.model.nodes, s->nlinks, x.sent, rate, x.fulls, x.acked, x.overloaded,
               x.resync, x.rejected, x.send_dropped, x.silent, x.reboots, x.gpu_events, x.lagged);
    if (s->roots)
        orbit_info("sim: topology epoch %" PRIu64 ": %" PRIu64 " reads (%" PRIu64
                   " failed, %" PRIu64 " refetches, %" PRIu64 " stale), rack links: %" PRIu64
                   " re-homes, %" PRIu64 " failovers, %" PRIu64 " returns, wrong-shard %" PRIu64,
                   x.topology_epoch, x.fetches, x.fetch_failures, x.refetches, x.stale_fetches,
                   x.rehomes, x.failovers, x.returns, x.wrong_shard);
    if (s->caps)
        orbit_info("sim: %" PRIu64 " capsules running, %" PRIu64 " placement updates", x.capsules,
                   x.capsule_updates);
}

/* ------------------------------------------------------------------- loop */

static const char *link_endpoint(const orbit_sim_t *s, const sim_link_t *l)
{
    return s->roots ? l->cand.ep[l->cur] : s->endpoints[l->endpoint];
}

static void flush_link(orbit_sim_t *s, sim_link_t *l, int64_t now)
{
    if (!l->sock)
        return; /* --root: the rack has no shard yet */
    int rc = orbit_leaf_link_flush(l->link, now);
    if (rc < 0) {
        uint64_t suppressed = 0;
        s->st.link_errors++;
        if (orbit_ratelimit_pass(&s->rl, now, &suppressed))
            orbit_warn("sim: send to %s failed: %s (%" PRIu64 " similar lines suppressed)",
                       link_endpoint(s, l), orbit_strerror(rc), suppressed);
    }
}

static int on_sock(zloop_t *loop, zsock_t *sock, void *arg);

/* ------------------------------------------------------- --root: homing */

/* Point rack link l at l->cand.ep[to] with a new socket (the link then
 * sends full states). On failure the old socket and index stay. */
static int rack_connect(orbit_sim_t *s, sim_link_t *l, size_t to, char *err, size_t errlen)
{
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_LEAF);
    zsock_t *sock = orbit_sock_connect(ZMQ_DEALER, l->cand.ep[to], &o, err, errlen);
    if (!sock)
        return ORBIT_EIO;
    if (s->loop) {
        if (l->sock)
            zloop_reader_end(s->loop, l->sock);
        if (zloop_reader(s->loop, sock, on_sock, l) != 0)
            orbit_error("sim: cannot watch the socket to %s", l->cand.ep[to]);
    }
    zsock_destroy(&l->sock);
    l->sock = sock;
    l->cur = to;
    l->intervals_away = 0;
    orbit_leaf_link_set_socket(l->link, sock);
    return ORBIT_OK;
}

static void move_log(orbit_sim_t *s, int64_t now, uint32_t rack, const char *from, const char *to,
                     const char *why)
{
    uint64_t suppressed = 0;
    if (orbit_ratelimit_pass(&s->move_log, now, &suppressed))
        orbit_info("sim: rack %s-r%u: %s %s, now %s (%" PRIu64 " similar lines suppressed)",
                   s->prefix, rack, from ? from : "-", why, to, suppressed);
}

/* Silence, "wrong shard" and the return to the preferred shard, per rack. */
static void rack_failover(orbit_sim_t *s, uint32_t rack, unsigned ev, int64_t now)
{
    sim_link_t *l = &s->links[rack];
    if (!l->sock)
        return;
    size_t to;
    const char *why;
    if (ev & (ORBIT_LEAF_LINK_SILENT | ORBIT_LEAF_LINK_WRONG_SHARD)) {
        to = (l->cur + 1) % l->cand.n;
        why = (ev & ORBIT_LEAF_LINK_SILENT) ? "is silent" : "says wrong shard";
    } else if (l->cur != 0 && ++l->intervals_away >= ORBIT_LEAF_AGENT_RETURN_INTERVALS) {
        to = 0;
        why = "is not the preferred one";
    } else {
        return;
    }
    if (to == l->cur) {
        /* The only candidate: keep the socket (libzmq reconnects), send
         * full states when it answers. */
        orbit_leaf_link_set_socket(l->link, l->sock);
        return;
    }
    char err[256], from[256];
    snprintf(from, sizeof from, "%s", l->cand.ep[l->cur]);
    if (rack_connect(s, l, to, err, sizeof err) != ORBIT_OK) {
        s->st.link_errors++;
        return;
    }
    if (to == 0)
        s->st.returns++;
    else
        s->st.failovers++;
    move_log(s, now, rack, from, l->cand.ep[to], why);
}

static void discover_warn(orbit_sim_t *s, int64_t now, const char *what, const char *err)
{
    if (s->discover_log_ms && now - s->discover_log_ms < DISCOVER_LOG_MS) {
        s->discover_suppressed++;
        return;
    }
    orbit_warn("sim: %s: %s; retrying every %u ms (%" PRIu64 " similar lines suppressed)", what,
               err, s->cfg.model.interval_ms, s->discover_suppressed);
    s->discover_log_ms = now;
    s->discover_suppressed = 0;
}

/* Rack k's candidates in t, planned against what its link uses. Returns
 * false when the rack has no candidate (or memory ran out). */
static bool rack_adopt(orbit_sim_t *s, const orbit_topology_t *t, uint32_t k, int64_t now,
                       char *err, size_t errlen)
{
    char rack[ORBIT_LABEL_VALUE_MAX + 1];
    snprintf(rack, sizeof rack, "%s-r%u", s->prefix, k);
    char *list = orbit_topology_rack_endpoints(t, rack, err, errlen);
    orbit_leaf_candidates_t fresh;
    int rc = list ? orbit_leaf_candidates_parse(&fresh, list) : ORBIT_EINVAL;
    free(list);
    if (rc != ORBIT_OK)
        return false;
    sim_link_t *l = &s->links[k];
    size_t next = 0;
    orbit_leaf_home_action_t act = orbit_leaf_home_plan(&l->cand, l->cur, &fresh, &next);
    if (act == ORBIT_LEAF_HOME_KEEP) {
        orbit_leaf_candidates_close(&fresh);
        return true;
    }
    orbit_leaf_candidates_t old = l->cand;
    size_t old_cur = l->cur;
    l->cand = fresh;
    if (act == ORBIT_LEAF_HOME_UPDATE) {
        l->cur = next;
        s->home.stats.updates++;
        orbit_leaf_candidates_close(&old);
        return true;
    }
    bool first = !l->sock;
    if (rack_connect(s, l, next, err, errlen) != ORBIT_OK) {
        orbit_leaf_candidates_close(&l->cand);
        l->cand = old;
        l->cur = old_cur;
        s->st.link_errors++;
        return false;
    }
    if (!first) {
        s->home.stats.rehomes++;
        move_log(s, now, k, old.ep[old_cur], l->cand.ep[0], "re-homed by the topology");
    }
    orbit_leaf_candidates_close(&old);
    return true;
}

/* One topology read for every rack, when one is due. */
static void discover(orbit_sim_t *s, int64_t now)
{
    if (!s->roots || !orbit_leaf_home_due(&s->home, now))
        return;
    char err[256], what[256];
    orbit_topology_t *t = orbit_topology_fetch(
        s->roots, true, orbit_leaf_home_fetch_timeout_ms(s->cfg.model.interval_ms), err,
        sizeof err);
    now = zclock_mono();
    if (!t) {
        orbit_leaf_home_failed(&s->home, now);
        discover_warn(s, now, "cannot read the topology from the roots", err);
        return;
    }
    uint64_t epoch = orbit_topology_epoch(t);
    if (epoch < s->home.held_epoch && s->home.have) {
        orbit_leaf_home_fetched(&s->home, epoch, now); /* older: not applied, read again */
        orbit_topology_destroy(&t);
        return;
    }
    uint32_t homed = 0, bad = UINT32_MAX;
    char bad_err[256] = "";
    for (uint32_t k = 0; k < s->nlinks; k++) {
        if (rack_adopt(s, t, k, now, err, sizeof err)) {
            homed++;
        } else if (bad == UINT32_MAX) {
            bad = k;
            snprintf(bad_err, sizeof bad_err, "%s", err);
        }
    }
    orbit_topology_destroy(&t);
    if (!homed) {
        orbit_leaf_home_failed(&s->home, now);
        snprintf(what, sizeof what, "topology epoch %" PRIu64 " has no shard for rack %s-r%u",
                 epoch, s->prefix, bad);
        discover_warn(s, now, what, bad_err);
        return;
    }
    bool was = s->home.have;
    orbit_leaf_home_fetched(&s->home, epoch, now);
    if (bad != UINT32_MAX) {
        /* Some racks without a shard: read again next interval for them. */
        orbit_leaf_home_failed(&s->home, now);
        snprintf(what, sizeof what, "topology epoch %" PRIu64 ": rack %s-r%u has no shard", epoch,
                 s->prefix, bad);
        discover_warn(s, now, what, bad_err);
    }
    if (!was)
        orbit_info("sim: topology epoch %" PRIu64 ": %u of %u racks homed", epoch, homed,
                   s->nlinks);
}

static int on_refetch(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    orbit_sim_t *s = arg;
    s->refetch_timer = -1;
    discover(s, zclock_mono());
    return 0;
}

/* After acks on l: a shard at a newer epoch schedules a jittered read. */
static void note_epoch(orbit_sim_t *s, sim_link_t *l, int64_t now)
{
    uint64_t epoch = orbit_leaf_link_stats(l->link)->topology_epoch;
    if (!orbit_leaf_home_ack_epoch(&s->home, epoch, now) || !s->loop)
        return;
    if (s->refetch_timer >= 0)
        zloop_timer_end(s->loop, s->refetch_timer);
    int64_t delay = s->home.due_ms - now;
    s->refetch_timer = zloop_timer(s->loop, delay > 0 ? (size_t)delay : 1, 1, on_refetch, s);
}

static int64_t due_ms(const orbit_sim_t *s, uint32_t i)
{
    return s->cycle_start_ms +
           (int64_t)((uint64_t)i * s->cfg.model.interval_ms / s->cfg.model.nodes);
}

/* The model's state of node i with its capsules (NULL when out of memory). */
static const orbit_node_state_t *stamp_capsules(orbit_sim_t *s, uint32_t i,
                                                const orbit_node_state_t *st)
{
    const orbit_capsule_t *caps;
    uint32_t n = orbit_sim_capsules_of(s->caps, i, &caps);
    if (orbit_node_state_copy(&s->with_caps, st) != ORBIT_OK ||
        orbit_node_state_set_capsules(&s->with_caps, caps, n) != ORBIT_OK)
        return NULL;
    return &s->with_caps;
}

static int on_caps(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    (void)sock;
    orbit_sim_t *s = arg;
    return orbit_sim_capsules_recv(s->caps, zclock_time()) == 0 ? 0 : -1;
}

static int on_pace(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    orbit_sim_t *s = arg;
    const uint32_t nodes = s->cfg.model.nodes, interval = s->cfg.model.interval_ms;
    int64_t now = zclock_mono(), wall = zclock_time();
    int64_t behind = now - due_ms(s, s->next);
    if (behind > (int64_t)interval) {
        int64_t skip = behind / interval;
        s->cycle_start_ms += skip * interval;
        s->st.lagged += (uint64_t)skip;
    }
    for (uint32_t done = 0; done < nodes && due_ms(s, s->next) <= now; done++) {
        uint32_t i = s->next;
        orbit_sim_step_t w;
        const orbit_node_state_t *st = orbit_sim_model_step(s->model, i, wall, &w);
        s->st.steps++;
        s->st.reboots += w.rebooted;
        s->st.gpu_events += w.gpu_events;
        s->st.gpu_recovered += w.gpu_recovered;
        if (s->caps)
            st = stamp_capsules(s, i, st);
        int rc = st ? orbit_leaf_link_update(s->links[s->leaf_link[i]].link, s->leaf_idx[i], st)
                    : ORBIT_ENOMEM;
        if (rc != ORBIT_OK)
            s->st.link_errors++;
        if (++s->next == nodes) {
            s->next = 0;
            s->cycle_start_ms += interval;
        }
    }
    for (uint32_t j = 0; j < s->nlinks; j++)
        flush_link(s, &s->links[j], now);
    if (now - s->last_link_tick_ms >= (int64_t)interval) {
        s->last_link_tick_ms = now;
        for (uint32_t j = 0; j < s->nlinks; j++) {
            unsigned ev = orbit_leaf_link_tick(s->links[j].link, now);
            if (s->roots)
                rack_failover(s, j, ev, now);
        }
        discover(s, now); /* retries and the first read; refetches have their own timer */
    }
    return 0;
}

static int on_sock(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    (void)sock;
    sim_link_t *l = arg;
    int64_t now = zclock_mono();
    if (orbit_leaf_link_recv(l->link, now) < 0)
        l->sim->st.link_errors++;
    if (l->sim->roots)
        note_epoch(l->sim, l, now);
    if (orbit_leaf_link_needs_send(l->link))
        flush_link(l->sim, l, now); /* RESYNC: the shard is waiting for a full state */
    return 0;
}

static int on_stats(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    log_stats(arg, zclock_mono(), false);
    return 0;
}

static int on_deadline(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    (void)arg;
    return -1; /* ends zloop_start */
}

int orbit_sim_run(orbit_sim_t *s)
{
    s->loop = zloop_new();
    if (!s->loop)
        return ORBIT_ENOMEM;
    for (uint32_t j = 0; j < s->nlinks; j++)
        if (s->links[j].sock)
            zloop_reader(s->loop, s->links[j].sock, on_sock, &s->links[j]);
    if (s->caps)
        zloop_reader(s->loop, orbit_sim_capsules_sock(s->caps), on_caps, s);
    zloop_timer(s->loop, s->tick_ms, 0, on_pace, s);
    if (s->cfg.stats_ms)
        zloop_timer(s->loop, s->cfg.stats_ms, 0, on_stats, s);
    if (s->cfg.duration_ms)
        zloop_timer(s->loop, s->cfg.duration_ms, 1, on_deadline, s);
    int64_t now = zclock_mono();
    s->cycle_start_ms = now;
    s->last_link_tick_ms = now;
    s->last_stats_ms = now;
    s->started_ms = now;
    if (s->roots) {
        orbit_info("sim: %u leaves in %u racks, shards from the topology (one socket per rack), "
                   "every %u ms",
                   s->cfg.model.nodes, s->cfg.model.racks, s->cfg.model.interval_ms);
        discover(s, now);
    } else {
        orbit_info("sim: %u leaves in %u racks to %u shard endpoint(s) over %u sockets, every %u "
                   "ms",
                   s->cfg.model.nodes, s->cfg.model.racks, s->nendpoints, s->nlinks,
                   s->cfg.model.interval_ms);
    }
    zloop_start(s->loop);
    s->refetch_timer = -1;
    log_stats(s, zclock_mono(), true);
    return 0;
}
