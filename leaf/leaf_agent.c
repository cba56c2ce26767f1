/* leaf_agent: zloop wiring of procfs, NVML, leaf_link and shard failover. */
#include "leaf_agent.h"

#include <inttypes.h>
#include <string.h>

#include "leaf_exec.h"
#include "leaf_home.h"
#include "leaf_nvml.h"
#include "leaf_procfs.h"
#include "leaf_watch.h"
#include "orbit_err.h"
#include "orbit_log.h"
#include "orbit_sock.h"
#include "topology_fetch.h"

#define SAMPLE_ERROR_LOG_MS 60000
#define FAILOVER_LOG_MS     60000
#define DISCOVER_LOG_MS     10000
#define WANTS_LOG_MS        60000

struct orbit_leaf_agent {
    orbit_leaf_config_t cfg; /* own copies of the strings */
    orbit_leaf_procfs_t *procfs;
    orbit_leaf_nvml_t *nvml;
    orbit_leaf_link_t *link;
    zsock_t *sock; /* NULL in --root mode until the first topology */
    zloop_t *loop;
    orbit_leaf_candidates_t cand; /* shards in preference order (--shard, or the topology's) */
    size_t shard;                 /* index in cand */
    /* --root mode (roots != NULL): discovery and re-homing. */
    orbit_ledger_client_t *roots;
    char rack[ORBIT_LABEL_VALUE_MAX + 1];
    orbit_leaf_home_t home;
    int refetch_timer; /* one-shot timer of a jittered refetch; -1: none */
    int64_t discover_log_ms;
    uint64_t discover_suppressed;
    uint32_t intervals_away;
    uint32_t node;
    orbit_node_state_t state;
    int64_t sample_error_log_ms;
    int64_t failover_log_ms;
    /* --root with capsules: the ledger watcher and the executor (leaf_exec.h). */
    zactor_t *watch;
    orbit_leaf_exec_t *exec;
    uint64_t wants_errors; /* desired-set messages from the watcher that did not decode */
    int64_t wants_log_ms;
};

static int connect_to(orbit_leaf_agent_t *a, size_t shard, char *err, size_t errlen)
{
    orbit_sock_opts_t opts;
    orbit_sock_opts_default(&opts, ORBIT_LINK_LEAF);
    zsock_t *s = orbit_sock_connect(ZMQ_DEALER, a->cand.ep[shard], &opts, err, errlen);
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
    if (src->roots && !(dst->roots = strdup(src->roots)))
        return ORBIT_ENOMEM;
    if (src->nvml_lib && !(dst->nvml_lib = strdup(src->nvml_lib)))
        return ORBIT_ENOMEM;
    if (src->proc_root && !(dst->proc_root = strdup(src->proc_root)))
        return ORBIT_ENOMEM;
    dst->capsules = src->capsules;
    dst->no_cgroups = src->no_cgroups;
    dst->stop_grace_ms = src->stop_grace_ms;
    if (src->capsule_log_dir && !(dst->capsule_log_dir = strdup(src->capsule_log_dir)))
        return ORBIT_ENOMEM;
    if (src->cgroup_parent && !(dst->cgroup_parent = strdup(src->cgroup_parent)))
        return ORBIT_ENOMEM;
    return ORBIT_OK;
}

/* The capsule runner and the ledger watcher that feeds it. */
static int start_capsules(orbit_leaf_agent_t *a, char *err, size_t errlen)
{
    orbit_leaf_capsules_cfg_t cc = {
        .cgroup_parent = a->cfg.cgroup_parent,
        .no_cgroups = a->cfg.no_cgroups,
        .stop_grace_ms = a->cfg.stop_grace_ms,
        .log_dir = a->cfg.capsule_log_dir,
    };
    a->exec = orbit_leaf_exec_new(&cc);
    if (!a->exec) {
        orbit_errf(err, errlen, "out of memory");
        return ORBIT_ENOMEM;
    }
    /* The runner logs its cgroup decision itself. */
    orbit_leaf_watch_cfg_t wc = {a->cfg.roots, a->cfg.node, a->cfg.interval_ms};
    a->watch = orbit_leaf_watch_new(&wc, err, errlen);
    return a->watch ? ORBIT_OK : ORBIT_EIO;
}

orbit_leaf_agent_t *orbit_leaf_agent_new(const orbit_leaf_config_t *cfg, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!cfg || (!cfg->nshards == !cfg->roots) || !orbit_name_valid(cfg->node)) {
        snprintf(err, errlen,
                 "need exactly one of shard endpoints and root endpoints, and a "
                 "valid node name");
        return NULL;
    }
    orbit_leaf_agent_t *a = calloc(1, sizeof *a);
    if (!a)
        goto nomem;
    a->refetch_timer = -1;
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
    if (a->cfg.roots) {
        if (!orbit_leaf_config_rack(&a->cfg, a->rack, sizeof a->rack)) {
            snprintf(err, errlen, "--root needs this node's rack: --label rack=R");
            goto fail;
        }
        a->roots = orbit_ledger_client_new(a->cfg.roots, NULL, err, errlen);
        if (!a->roots)
            goto fail;
        orbit_leaf_home_init(&a->home, a->cfg.interval_ms, 0);
        /* No socket until the first topology names this rack's shards. */
        if (a->cfg.capsules && start_capsules(a, err, errlen) != ORBIT_OK)
            goto fail;
    } else {
        for (size_t i = 0; i < a->cfg.nshards && i < ORBIT_LEAF_HOME_CANDIDATES_MAX; i++) {
            if (!(a->cand.ep[i] = strdup(a->cfg.shards[i])))
                goto nomem;
            a->cand.n++;
        }
        if (connect_to(a, 0, err, errlen) != ORBIT_OK)
            goto fail;
        orbit_leaf_link_set_socket(a->link, a->sock);
    }
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
    /* The watcher first (no new desired sets), then every capsule is stopped and reaped:
     * capsules do not outlive the agent. */
    zactor_destroy(&a->watch);
    if (a->exec && orbit_leaf_exec_count(a->exec))
        orbit_info("stopping %zu capsule(s)", orbit_leaf_exec_count(a->exec));
    orbit_leaf_exec_destroy(&a->exec);
    orbit_leaf_link_destroy(&a->link);
    zsock_destroy(&a->sock);
    orbit_ledger_client_destroy(&a->roots);
    orbit_leaf_candidates_close(&a->cand);
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

const char *orbit_leaf_agent_endpoint(const orbit_leaf_agent_t *a)
{
    return a->sock ? a->cand.ep[a->shard] : NULL;
}

const orbit_leaf_home_stats_t *orbit_leaf_agent_home_stats(const orbit_leaf_agent_t *a)
{
    return a->roots ? &a->home.stats : NULL;
}

uint64_t orbit_leaf_agent_topology_epoch(const orbit_leaf_agent_t *a)
{
    return a->roots ? a->home.held_epoch : 0;
}

/* ------------------------------------------------------------------- loop */

static int on_ack(zloop_t *loop, zsock_t *sock, void *arg);

/* Replace the socket by one to cand.ep[to] and hand it to the link (which
 * then sends a full state). On failure the old socket stays. */
static int replace_socket(orbit_leaf_agent_t *a, size_t to, char *err, size_t errlen)
{
    zsock_t *old = a->sock;
    size_t from = a->shard;
    if (connect_to(a, to, err, errlen) != ORBIT_OK) {
        a->shard = from;
        return ORBIT_EIO;
    }
    if (a->loop) {
        if (old)
            zloop_reader_end(a->loop, old);
        if (zloop_reader(a->loop, a->sock, on_ack, a) != 0)
            orbit_error("cannot watch the socket to %s", a->cand.ep[to]);
    }
    zsock_destroy(&old);
    orbit_leaf_link_set_socket(a->link, a->sock);
    return ORBIT_OK;
}

/* Fail over (or return) to cand.ep[to]. On failure keeps the old socket
 * (tried again next interval). */
static void switch_shard(orbit_leaf_agent_t *a, size_t to, const char *why, int64_t now)
{
    char err[256];
    size_t from = a->shard;
    bool loud = !a->failover_log_ms || now - a->failover_log_ms >= FAILOVER_LOG_MS;
    if (to == from) {
        /* The only shard: keep the socket, so that libzmq's reconnect
         * back-off keeps working, and start over with a full state. */
        orbit_leaf_link_set_socket(a->link, a->sock);
        if (loud) {
            orbit_info("shard %s %s; will send a full state when it answers", a->cand.ep[from],
                       why);
            a->failover_log_ms = now;
        }
        return;
    }
    if (replace_socket(a, to, err, sizeof err) != ORBIT_OK) {
        orbit_warn("failover to %s failed: %s", a->cand.ep[to], err);
        return;
    }
    if (loud) {
        orbit_info("shard %s %s: now sending to %s", a->cand.ep[from], why, a->cand.ep[to]);
        a->failover_log_ms = now;
    } else {
        orbit_debug("shard %s %s: now sending to %s", a->cand.ep[from], why, a->cand.ep[to]);
    }
}

/* ------------------------------------------------------------- discovery */

/* A discovery warning, at most one line per DISCOVER_LOG_MS. */
static void discover_warn(orbit_leaf_agent_t *a, int64_t now, const char *what, const char *err)
{
    if (a->discover_log_ms && now - a->discover_log_ms < DISCOVER_LOG_MS) {
        a->discover_suppressed++;
        return;
    }
    orbit_warn("%s: %s; retrying every %u ms (%" PRIu64 " similar lines suppressed)", what, err,
               a->cfg.interval_ms, a->discover_suppressed);
    a->discover_log_ms = now;
    a->discover_suppressed = 0;
}

/* Adopt fresh (taken over) as the rack's candidates: the first socket,
 * a re-home to a new preferred shard, or only a new list. */
static void adopt(orbit_leaf_agent_t *a, orbit_leaf_candidates_t *fresh, int64_t now)
{
    size_t next = 0;
    orbit_leaf_home_action_t act = orbit_leaf_home_plan(&a->cand, a->shard, fresh, &next);
    if (act == ORBIT_LEAF_HOME_KEEP) {
        orbit_leaf_candidates_close(fresh);
        return;
    }
    orbit_leaf_candidates_t old = a->cand;
    size_t old_shard = a->shard;
    a->cand = *fresh;
    if (act == ORBIT_LEAF_HOME_UPDATE) {
        a->shard = next;
        a->home.stats.updates++;
        orbit_debug("topology epoch %" PRIu64 ": rack %s keeps %s, %zu candidate(s)",
                    a->home.held_epoch, a->rack, a->cand.ep[next], a->cand.n);
        orbit_leaf_candidates_close(&old);
        return;
    }
    char err[256];
    bool first = !a->sock;
    if (replace_socket(a, next, err, sizeof err) != ORBIT_OK) {
        /* Keep what works; the read is tried again next interval. */
        orbit_leaf_candidates_close(&a->cand);
        a->cand = old;
        a->shard = old_shard;
        orbit_leaf_home_failed(&a->home, now);
        discover_warn(a, now, "cannot connect to the rack's shard", err);
        return;
    }
    if (first) {
        orbit_info("topology epoch %" PRIu64 ": rack %s is served by %s (%zu candidate(s))",
                   a->home.held_epoch, a->rack, a->cand.ep[0], a->cand.n);
    } else {
        a->home.stats.rehomes++;
        orbit_info("topology epoch %" PRIu64 ": rack %s re-homed from %s to %s", a->home.held_epoch,
                   a->rack, old.ep[old_shard], a->cand.ep[0]);
    }
    orbit_leaf_candidates_close(&old);
}

/* Read the topology when one is due and follow it. */
static void discover(orbit_leaf_agent_t *a, int64_t now)
{
    if (!a->roots || !orbit_leaf_home_due(&a->home, now))
        return;
    char err[256], what[256];
    orbit_topology_t *t = orbit_topology_fetch(
        a->roots, true, orbit_leaf_home_fetch_timeout_ms(a->cfg.interval_ms), err, sizeof err);
    now = zclock_mono(); /* the read may have waited */
    if (!t) {
        orbit_leaf_home_failed(&a->home, now);
        discover_warn(a, now, "cannot read the topology from the roots", err);
        return;
    }
    uint64_t epoch = orbit_topology_epoch(t);
    char *list = orbit_topology_rack_endpoints(t, a->rack, err, sizeof err);
    orbit_topology_destroy(&t);
    if (!list) {
        orbit_leaf_home_failed(&a->home, now);
        snprintf(what, sizeof what, "topology epoch %" PRIu64 " has no shard for rack %s", epoch,
                 a->rack);
        discover_warn(a, now, what, err);
        return;
    }
    orbit_leaf_candidates_t fresh;
    int rc = orbit_leaf_candidates_parse(&fresh, list);
    free(list);
    if (rc != ORBIT_OK) {
        orbit_leaf_home_failed(&a->home, now);
        discover_warn(a, now, "cannot use the topology", orbit_strerror(rc));
        return;
    }
    if (!orbit_leaf_home_fetched(&a->home, epoch, now)) {
        orbit_leaf_candidates_close(&fresh);
        return; /* older than the one held */
    }
    if (a->home.seen_epoch > epoch)
        orbit_debug("topology epoch %" PRIu64 " read, shards are at %" PRIu64
                    "; reading again in %u ms",
                    epoch, a->home.seen_epoch, a->cfg.interval_ms);
    adopt(a, &fresh, now);
}

static int on_refetch(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    orbit_leaf_agent_t *a = arg;
    a->refetch_timer = -1;
    discover(a, zclock_mono());
    return 0;
}

/* After acks: a shard at a newer epoch schedules a jittered refetch. */
static void note_epoch(orbit_leaf_agent_t *a, int64_t now)
{
    if (!a->roots)
        return;
    uint64_t epoch = orbit_leaf_link_stats(a->link)->topology_epoch;
    if (!orbit_leaf_home_ack_epoch(&a->home, epoch, now) || !a->loop)
        return;
    if (a->refetch_timer >= 0)
        zloop_timer_end(a->loop, a->refetch_timer);
    int64_t delay = a->home.due_ms - now;
    a->refetch_timer = zloop_timer(a->loop, delay > 0 ? (size_t)delay : 1, 1, on_refetch, a);
    orbit_debug("shard is at topology epoch %" PRIu64 ", held %" PRIu64 ": reading in %" PRId64
                " ms",
                epoch, a->home.held_epoch, delay);
}

static void collect(orbit_leaf_agent_t *a, int64_t now)
{
    char err[256];
    /* Capsules first: the runner is polled (children reaped) even when procfs fails. */
    if (a->exec && orbit_leaf_exec_sample(a->exec, now, zclock_time(), &a->state) != ORBIT_OK)
        orbit_warn("out of memory reporting capsule health");
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
    discover(a, now);
    now = zclock_mono();
    collect(a, now);
    if (!a->sock)
        return 0; /* --root: no shard known yet */
    unsigned ev = orbit_leaf_link_tick(a->link, now);
    if (ev & (ORBIT_LEAF_LINK_SILENT | ORBIT_LEAF_LINK_WRONG_SHARD)) {
        switch_shard(a, (a->shard + 1) % a->cand.n,
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
    if (a->roots)
        orbit_debug("topology epoch %" PRIu64 " (shard says %" PRIu64 "): %" PRIu64
                    " reads (%" PRIu64 " failed, %" PRIu64 " refetches, %" PRIu64
                    " stale), %" PRIu64 " re-homes, %" PRIu64 " list updates",
                    a->home.held_epoch, a->home.seen_epoch, a->home.stats.fetches,
                    a->home.stats.fetch_failures, a->home.stats.refetches,
                    a->home.stats.stale_fetches, a->home.stats.rehomes, a->home.stats.updates);
    if (a->exec) {
        const orbit_leaf_exec_stats_t *x = orbit_leaf_exec_stats(a->exec);
        orbit_debug("capsules: %zu tracked, %" PRIu64 " desired sets, %" PRIu64 " started, %" PRIu64
                    " start errors, %" PRIu64 " unrunnable, %" PRIu64 " stops, %" PRIu64
                    " forgotten, %" PRIu64 " deferred",
                    orbit_leaf_exec_count(a->exec), x->wants, x->starts, x->start_errors,
                    x->unrunnable, x->stops, x->forgotten, x->over_limit);
    }
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
    note_epoch(a, now);
    if (orbit_leaf_link_needs_send(a->link))
        flush(a, now);
    return 0;
}

/* A desired set from the watcher. */
static int on_wants(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    orbit_leaf_agent_t *a = arg;
    char err[256];
    zmsg_t *msg = zmsg_recv(sock);
    orbit_leaf_wants_t w;
    int rc = orbit_leaf_wants_decode(msg, &w, err, sizeof err);
    zmsg_destroy(&msg);
    int64_t now = zclock_mono();
    if (rc == ORBIT_OK) {
        orbit_leaf_exec_want(a->exec, &w, now);
    } else {
        a->wants_errors++;
        if (!a->wants_log_ms || now - a->wants_log_ms >= WANTS_LOG_MS) {
            orbit_warn("desired capsules not used (%" PRIu64 " so far): %s", a->wants_errors, err);
            a->wants_log_ms = now;
        }
    }
    orbit_leaf_wants_close(&w);
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
        (a->sock && zloop_reader(a->loop, a->sock, on_ack, a) != 0) ||
        (pipe && zloop_reader(a->loop, pipe, on_pipe, a) != 0) ||
        (a->watch && zloop_reader(a->loop, zactor_sock(a->watch), on_wants, a) != 0)) {
        rc = ORBIT_ENOMEM;
        goto cleanup;
    }
    if (a->roots)
        orbit_info("node %s of rack %s reporting every %u ms; shards from the topology at %s",
                   a->cfg.node, a->rack, a->cfg.interval_ms, a->cfg.roots);
    else
        orbit_info("node %s reporting every %u ms to %s", a->cfg.node, a->cfg.interval_ms,
                   a->cand.ep[a->shard]);
    on_timer(a->loop, 0, a); /* the first state goes out now, not an interval later */
    zloop_start(a->loop);
    orbit_info("stopping");
cleanup:
    zloop_destroy(&a->loop);
    a->refetch_timer = -1;
    return rc;
}
