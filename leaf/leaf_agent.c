/* leaf_agent: zloop wiring of procfs, NVML, leaf_link and shard failover. */
#include "leaf_agent.h"

#include <string.h>

#include "leaf_nvml.h"
#include "leaf_procfs.h"
#include "orbit_err.h"
#include "orbit_log.h"
#include "orbit_sock.h"

#define SAMPLE_ERROR_LOG_MS 60000
#define FAILOVER_LOG_MS     60000

struct orbit_leaf_agent {
    orbit_leaf_config_t cfg; /* own copies of the strings */
    orbit_leaf_procfs_t *procfs;
    orbit_leaf_nvml_t *nvml;
    orbit_leaf_link_t *link;
    zsock_t *sock;
    zloop_t *loop;
    size_t shard; /* index in cfg.shards */
    uint32_t intervals_away;
    uint32_t node;
    orbit_node_state_t state;
    int64_t sample_error_log_ms;
    int64_t failover_log_ms;
};

static int connect_to(orbit_leaf_agent_t *a, size_t shard, char *err, size_t errlen)
{
    orbit_sock_opts_t opts;
    orbit_sock_opts_default(&opts, ORBIT_LINK_LEAF);
    zsock_t *s = orbit_sock_connect(ZMQ_DEALER, a->cfg.shards[shard], &opts, err, errlen);
    if (!s)
        return ORBIT_EIO;
    a->sock = s;
    a->shard = shard;
    a->intervals_away = 0;
    return ORBIT_OK;
}

static int copy_config(orbit_leaf_config_t *dst, const orbit_leaf_config_t *src)
{
    memset(dst, 0, sizeof *dst);
    memcpy(dst->node, src->node, sizeof dst->node);
    memcpy(dst->labels, src->labels, sizeof dst->labels);
    dst->interval_ms = src->interval_ms;
    dst->full_every = src->full_every;
    dst->xid_window_s = src->xid_window_s;
    dst->xid_critical_window_s = src->xid_critical_window_s;
    dst->log_level = src->log_level;
    for (size_t i = 0; i < src->nshards; i++) {
        dst->shards[i] = strdup(src->shards[i]);
        if (!dst->shards[i])
            return ORBIT_ENOMEM;
        dst->nshards++;
    }
    if (src->nvml_lib && !(dst->nvml_lib = strdup(src->nvml_lib)))
        return ORBIT_ENOMEM;
    if (src->proc_root && !(dst->proc_root = strdup(src->proc_root)))
        return ORBIT_ENOMEM;
    return ORBIT_OK;
}

orbit_leaf_agent_t *orbit_leaf_agent_new(const orbit_leaf_config_t *cfg, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!cfg || !cfg->nshards || !orbit_name_valid(cfg->node)) {
        snprintf(err, errlen, "no shard endpoint or invalid node name");
        return NULL;
    }
    orbit_leaf_agent_t *a = calloc(1, sizeof *a);
    if (!a)
        goto nomem;
    orbit_node_state_init(&a->state);
    if (copy_config(&a->cfg, cfg) != ORBIT_OK)
        goto nomem;
    a->procfs = orbit_leaf_procfs_new(a->cfg.proc_root);
    if (!a->procfs)
        goto nomem;
    if (orbit_leaf_procfs_sample(a->procfs, &a->state, err, errlen) != ORBIT_OK)
        goto fail;
    a->nvml =
        orbit_leaf_nvml_new(a->cfg.nvml_lib, a->cfg.xid_window_s, a->cfg.xid_critical_window_s);
    if (!a->nvml)
        goto nomem;

    orbit_leaf_link_config_t lc;
    orbit_leaf_link_config_default(&lc);
    lc.interval_ms = a->cfg.interval_ms;
    lc.full_every = a->cfg.full_every;
    lc.max_batch = 1;
    a->link = orbit_leaf_link_new(NULL, &lc);
    if (!a->link || orbit_leaf_link_add_node(a->link, a->cfg.node, &a->node) != ORBIT_OK)
        goto nomem;
    if (connect_to(a, 0, err, errlen) != ORBIT_OK)
        goto fail;
    orbit_leaf_link_set_socket(a->link, a->sock);
    memcpy(a->state.name, a->cfg.node, sizeof a->state.name);
    memcpy(a->state.labels, a->cfg.labels, sizeof a->state.labels);
    a->state.interval_ms = a->cfg.interval_ms;
    return a;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    orbit_leaf_agent_destroy(&a);
    return NULL;
}

void orbit_leaf_agent_destroy(orbit_leaf_agent_t **pa)
{
    if (!pa || !*pa)
        return;
    orbit_leaf_agent_t *a = *pa;
    zloop_destroy(&a->loop);
    orbit_leaf_link_destroy(&a->link);
    zsock_destroy(&a->sock);
    orbit_leaf_nvml_destroy(&a->nvml);
    orbit_leaf_procfs_destroy(&a->procfs);
    orbit_node_state_close(&a->state);
    orbit_leaf_config_close(&a->cfg);
    free(a);
    *pa = NULL;
}

const orbit_leaf_link_stats_t *orbit_leaf_agent_stats(const orbit_leaf_agent_t *a)
{
    return orbit_leaf_link_stats(a->link);
}

size_t orbit_leaf_agent_shard_index(const orbit_leaf_agent_t *a)
{
    return a->shard;
}

/* ------------------------------------------------------------------- loop */

static int on_ack(zloop_t *loop, zsock_t *sock, void *arg);

/* Replace the socket by one to shards[to]; the link then sends a full
 * state. On failure keeps the old socket (tried again next interval). */
static void switch_shard(orbit_leaf_agent_t *a, size_t to, const char *why, int64_t now)
{
    char err[256];
    zsock_t *old = a->sock;
    size_t from = a->shard;
    bool loud = !a->failover_log_ms || now - a->failover_log_ms >= FAILOVER_LOG_MS;
    if (to == from) {
        /* The only shard: keep the socket, so that libzmq's reconnect
         * back-off keeps working, and start over with a full state. */
        orbit_leaf_link_set_socket(a->link, a->sock);
        if (loud) {
            orbit_info("shard %s %s; will send a full state when it answers", a->cfg.shards[from],
                       why);
            a->failover_log_ms = now;
        }
        return;
    }
    if (connect_to(a, to, err, sizeof err) != ORBIT_OK) {
        orbit_warn("failover to %s failed: %s", a->cfg.shards[to], err);
        return;
    }
    if (a->loop) {
        zloop_reader_end(a->loop, old);
        if (zloop_reader(a->loop, a->sock, on_ack, a) != 0)
            orbit_error("cannot watch the socket to %s", a->cfg.shards[to]);
    }
    zsock_destroy(&old);
    orbit_leaf_link_set_socket(a->link, a->sock);
    if (loud) {
        orbit_info("shard %s %s: now sending to %s", a->cfg.shards[from], why, a->cfg.shards[to]);
        a->failover_log_ms = now;
    } else {
        orbit_debug("shard %s %s: now sending to %s", a->cfg.shards[from], why, a->cfg.shards[to]);
    }
}

static void collect(orbit_leaf_agent_t *a, int64_t now)
{
    char err[256];
    int rc = orbit_leaf_procfs_sample(a->procfs, &a->state, err, sizeof err);
    if (rc != ORBIT_OK) {
        if (!a->sample_error_log_ms || now - a->sample_error_log_ms >= SAMPLE_ERROR_LOG_MS) {
            orbit_warn("sampling failed, not reporting: %s", err);
            a->sample_error_log_ms = now;
        }
        return;
    }
    if (orbit_leaf_nvml_sample(a->nvml, &a->state, now) != ORBIT_OK)
        return; /* ENOMEM: keep the previous GPU list, try again next time */
    a->state.sampled_ms = zclock_time();
    if (orbit_leaf_link_update(a->link, a->node, &a->state) != ORBIT_OK)
        orbit_warn("out of memory queueing the sample");
}

static void flush(orbit_leaf_agent_t *a, int64_t now)
{
    int rc = orbit_leaf_link_flush(a->link, now);
    if (rc < 0)
        orbit_warn("send failed: %s", orbit_strerror(rc));
}

static int on_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    orbit_leaf_agent_t *a = arg;
    int64_t now = zclock_mono();
    collect(a, now);
    unsigned ev = orbit_leaf_link_tick(a->link, now);
    if (ev & (ORBIT_LEAF_LINK_SILENT | ORBIT_LEAF_LINK_WRONG_SHARD)) {
        switch_shard(a, (a->shard + 1) % a->cfg.nshards,
                     (ev & ORBIT_LEAF_LINK_SILENT) ? "is silent" : "says wrong shard", now);
    } else if (a->shard != 0 && ++a->intervals_away >= ORBIT_LEAF_AGENT_RETURN_INTERVALS) {
        switch_shard(a, 0, "is not the preferred one", now);
    }
    flush(a, now);
    const orbit_leaf_link_stats_t *st = orbit_leaf_link_stats(a->link);
    orbit_debug("sent %" PRIu64 " full + %" PRIu64 " deltas, acked %" PRIu64 ", dropped %" PRIu64
                ", overloaded %" PRIu64 ", resync %" PRIu64,
                st->fulls_sent, st->deltas_sent, st->acked, st->dropped_nodes, st->overloaded,
                st->resync);
    return 0;
}

static int on_ack(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    (void)sock;
    orbit_leaf_agent_t *a = arg;
    int64_t now = zclock_mono();
    int rc = orbit_leaf_link_recv(a->link, now);
    if (rc < 0)
        orbit_warn("receive failed: %s", orbit_strerror(rc));
    if (orbit_leaf_link_needs_send(a->link))
        flush(a, now);
    return 0;
}

static int on_pipe(zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void)loop;
    (void)arg;
    char *cmd = zstr_recv(pipe);
    bool term = !cmd || streq(cmd, "$TERM");
    zstr_free(&cmd);
    return term ? -1 : 0;
}

int orbit_leaf_agent_run(orbit_leaf_agent_t *a, zsock_t *pipe)
{
    a->loop = zloop_new();
    if (!a->loop)
        return ORBIT_ENOMEM;
    int rc = ORBIT_OK;
    if (zloop_timer(a->loop, a->cfg.interval_ms, 0, on_timer, a) < 0 ||
        zloop_reader(a->loop, a->sock, on_ack, a) != 0 ||
        (pipe && zloop_reader(a->loop, pipe, on_pipe, a) != 0)) {
        rc = ORBIT_ENOMEM;
        goto cleanup;
    }
    orbit_info("node %s reporting every %u ms to %s", a->cfg.node, a->cfg.interval_ms,
               a->cfg.shards[a->shard]);
    on_timer(a->loop, 0, a); /* the first state goes out now, not an interval later */
    zloop_start(a->loop);
    orbit_info("stopping");
cleanup:
    zloop_destroy(&a->loop);
    return rc;
}
