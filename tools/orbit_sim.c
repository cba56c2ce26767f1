/* orbit_sim: pacing, routing and link wiring of the simulated leaves. */
#include "orbit_sim.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "leaf_link.h"
#include "orbit_err.h"
#include "orbit_log.h"
#include "orbit_sock.h"

typedef struct {
    orbit_sim_t *sim;
    zsock_t *sock;
    orbit_leaf_link_t *link;
    uint32_t endpoint;
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

static int open_links(orbit_sim_t *s, char *err, size_t errlen)
{
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
    orbit_leaf_link_config_default(&lc);
    lc.interval_ms = s->cfg.model.interval_ms;
    if (s->cfg.full_every)
        lc.full_every = s->cfg.full_every;
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
    for (uint32_t j = 0; j < s->nlinks; j++)
        per_ep[s->links[j].endpoint]++;
    s->leaf_link = malloc(nodes * sizeof *s->leaf_link);
    s->leaf_idx = malloc(nodes * sizeof *s->leaf_idx);
    if (!s->leaf_link || !s->leaf_idx) {
        snprintf(err, errlen, "out of memory");
        return ORBIT_ENOMEM;
    }
    for (uint32_t i = 0; i < nodes; i++) {
        uint32_t e = orbit_sim_model_rack(s->model, i) % s->nendpoints;
        /* Socket j serves endpoint j mod n: the k-th of them is e + k n. */
        uint32_t k = dealt[e]++ % per_ep[e];
        uint32_t j = e + k * s->nendpoints;
        char name[ORBIT_NAME_MAX];
        orbit_sim_model_name(s->model, i, name);
        int rc = orbit_leaf_link_add_node(s->links[j].link, name, &s->leaf_idx[i]);
        if (rc != ORBIT_OK) {
            snprintf(err, errlen, "cannot add node %s: %s", name, orbit_strerror(rc));
            return rc;
        }
        s->leaf_link[i] = (uint16_t)j;
    }
    if (s->cfg.model.racks < s->nendpoints)
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
    s->cfg.shards = NULL; /* parsed into endpoints; not kept */
    if (parse_endpoints(s, cfg->shards, err, errlen) != ORBIT_OK)
        goto fail;
    s->model = orbit_sim_model_new(&cfg->model);
    if (!s->model) {
        snprintf(err, errlen, "out of memory");
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
    }
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
}

/* ------------------------------------------------------------------- loop */

static void flush_link(orbit_sim_t *s, sim_link_t *l, int64_t now)
{
    int rc = orbit_leaf_link_flush(l->link, now);
    if (rc < 0) {
        uint64_t suppressed = 0;
        s->st.link_errors++;
        if (orbit_ratelimit_pass(&s->rl, now, &suppressed))
            orbit_warn("sim: send to %s failed: %s (%" PRIu64 " similar lines suppressed)",
                       s->endpoints[l->endpoint], orbit_strerror(rc), suppressed);
    }
}

static int64_t due_ms(const orbit_sim_t *s, uint32_t i)
{
    return s->cycle_start_ms +
           (int64_t)((uint64_t)i * s->cfg.model.interval_ms / s->cfg.model.nodes);
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
        int rc = orbit_leaf_link_update(s->links[s->leaf_link[i]].link, s->leaf_idx[i], st);
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
        for (uint32_t j = 0; j < s->nlinks; j++)
            orbit_leaf_link_tick(s->links[j].link, now);
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
        zloop_reader(s->loop, s->links[j].sock, on_sock, &s->links[j]);
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
    orbit_info("sim: %u leaves in %u racks to %u shard endpoint(s) over %u sockets, every %u ms",
               s->cfg.model.nodes, s->cfg.model.racks, s->nendpoints, s->nlinks,
               s->cfg.model.interval_ms);
    zloop_start(s->loop);
    log_stats(s, zclock_mono(), true);
    return 0;
}
