/* orbit_bench_sched: schedulers placing missions over a simulated fleet,
 * and the ledger invariant check. */
#include "orbit_bench_sched.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "orbit_bench_proc.h"
#include "orbit_bench_stats.h"
#include "orbit_err.h"
#include "orbit_ledger_client.h"
#include "orbit_sched_view.h"
#include "orbit_view_client.h"
#include "root_view.h"

#define REPLICAS       3
#define SHARDS         2
#define MODULE_MAX     1000
#define GANG_SIZE      8
#define CAPSULE_CPU_M  250
#define CAPSULE_MEM    (256LL << 20)
#define PRINCIPAL      "bench"
#define CALL_MS        5000
#define LEADER_WAIT_MS 20000
#define STOP_GRACE_MS  5000
#define SYNC_WAIT_MS   30000
#define POLL_MS        20
#define SCHED_MAX      64

typedef struct {
    char dir[256];
    char bins[4][512]; /* root, shard, sim, sched */
    char roots[REPLICAS * 40];
    orbit_bench_proc_t procs[REPLICAS + SHARDS + 1 + SCHED_MAX];
    size_t nprocs;
} cluster_t;

enum { BIN_ROOT, BIN_SHARD, BIN_SIM, BIN_SCHED };

void orbit_bench_sched_cfg_default(orbit_bench_sched_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->schedulers[0] = 1;
    c->schedulers[1] = 4;
    c->nschedulers = 2;
    c->nodes = 10000;
    c->capsules = 40000;
    c->gangs = 10;
    c->workers = 512;
    c->refresh_ms = 1000;
    c->place_timeout_s = 300;
}

int orbit_bench_sched_parse_counts(const char *s, orbit_bench_sched_cfg_t *c, char *err,
                                   size_t errlen)
{
    return orbit_bench_parse_counts(s, "schedulers", 1, SCHED_MAX, c->schedulers,
                                    ORBIT_BENCH_SCHED_COUNTS_MAX, &c->nschedulers, err, errlen);
}

static bool stopped(const orbit_bench_sched_cfg_t *c)
{
    return c->stop && *c->stop;
}

/* ------------------------------------------------------------------ check */

typedef struct {
    orbit_bench_sched_check_t *k;
    const orbit_sched_view_t *v;
    zhashx_t *identities; /* identity -> capsule */
    zhashx_t *gangs;      /* gang -> member count (as a pointer-sized integer) */
} check_ctx_t;

static int check_placement(void *arg, const orbit_sched_placement_t *p)
{
    check_ctx_t *x = arg;
    x->k->placements++;
    orbit_sched_node_t nd;
    Orbit__NodeStatus st = orbit_sched_view_node(x->v, p->node, &nd) == ORBIT_OK && nd.seen
                               ? nd.status
                               : ORBIT__NODE_STATUS__UNREACHABLE;
    x->k->on_alive += st == ORBIT__NODE_STATUS__ALIVE;
    x->k->on_suspect += st == ORBIT__NODE_STATUS__SUSPECT;
    x->k->on_down += st == ORBIT__NODE_STATUS__DOWN;
    x->k->on_unreachable += st == ORBIT__NODE_STATUS__UNREACHABLE;
    if (p->identity[0]) {
        x->k->identities++;
        const char *other = zhashx_lookup(x->identities, p->identity);
        if (other && strcmp(other, p->capsule))
            x->k->identity_twice++;
        else
            zhashx_insert(x->identities, p->identity, (void *)p->capsule);
    }
    if (p->gang[0]) {
        uintptr_t n = (uintptr_t)zhashx_lookup(x->gangs, p->gang);
        zhashx_update(x->gangs, p->gang, (void *)(n + 1));
    }
    return 0;
}

static int check_module(void *arg, const orbit_sched_module_t *m)
{
    check_ctx_t *x = arg;
    if (!m->spec)
        return 0;
    x->k->modules++;
    uint32_t count = m->spec->has_count ? m->spec->count : 0;
    if (m->placed == count)
        x->k->modules_at_count++;
    if (m->spec->has_gang && m->spec->gang) {
        char gang[160];
        snprintf(gang, sizeof gang, "%s/%s", m->mission, m->module);
        uintptr_t n = (uintptr_t)zhashx_lookup(x->gangs, gang);
        if (n) {
            x->k->gangs++;
            if (n != count)
                x->k->gangs_broken++;
        }
    }
    return 0;
}

static int load_snapshot(orbit_ledger_client_t *lc, orbit_sched_view_t *v, int timeout_ms,
                         orbit_bench_sched_check_t *k)
{
    Orbit__Ledger__SnapshotRequest sr = ORBIT__LEDGER__SNAPSHOT_REQUEST__INIT;
    Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
    req.op_case = ORBIT__LEDGER__REQUEST__OP_SNAPSHOT;
    req.snapshot = &sr;
    Orbit__Ledger__Reply *rep = NULL;
    int rc = orbit_ledger_client_call(lc, &req, timeout_ms, &rep);
    if (rc != ORBIT_OK) {
        snprintf(k->error, sizeof k->error, "snapshot: %s", orbit_strerror(rc));
        return rc;
    }
    if (rep->error || !rep->has_snapshot) {
        snprintf(k->error, sizeof k->error, "snapshot: %.200s",
                 rep->error ? rep->error : "no snapshot in the reply");
        orbit__ledger__reply__free_unpacked(rep, NULL);
        return ORBIT_EIO;
    }
    char err[200] = "";
    k->ledger_index = rep->snapshot_ledger_index;
    rc = orbit_sched_view_load_snapshot(v, rep->snapshot.data, rep->snapshot.len,
                                        rep->snapshot_ledger_index, err, sizeof err);
    orbit__ledger__reply__free_unpacked(rep, NULL);
    if (rc != ORBIT_OK)
        snprintf(k->error, sizeof k->error, "snapshot: %.200s", err);
    return rc;
}

static int load_rows(orbit_view_client_t *vc, orbit_sched_view_t *v, int timeout_ms,
                     orbit_bench_sched_check_t *k)
{
    Orbit__ViewQuery q = ORBIT__VIEW_QUERY__INIT;
    q.kind = ORBIT__QUERY_KIND__Q_NODES;
    q.has_limit = true;
    q.limit = ORBIT_VIEW_LIMIT_MAX;
    Orbit__ViewReply *rep = NULL;
    int rc = orbit_view_client_query(vc, &q, timeout_ms, &rep);
    if (rc != ORBIT_OK) {
        snprintf(k->error, sizeof k->error, "view: %s", orbit_strerror(rc));
        return rc;
    }
    if (rep->error) {
        snprintf(k->error, sizeof k->error, "view: %.200s", rep->error);
        orbit__view_reply__free_unpacked(rep, NULL);
        return ORBIT_EIO;
    }
    int64_t now = zclock_mono();
    for (size_t i = 0; i < rep->n_rows; i++)
        orbit_sched_view_apply_row(v, rep->rows[i], now);
    orbit_sched_view_rows_done(v, now);
    orbit__view_reply__free_unpacked(rep, NULL);
    return ORBIT_OK;
}

int orbit_bench_sched_check(const char *roots, int timeout_ms, orbit_bench_sched_check_t *k)
{
    memset(k, 0, sizeof *k);
    char err[200] = "";
    orbit_ledger_client_t *lc = orbit_ledger_client_new(roots, NULL, err, sizeof err);
    orbit_view_client_t *vc = lc ? orbit_view_client_new(roots, err, sizeof err) : NULL;
    orbit_sched_view_t *v = orbit_sched_view_new();
    check_ctx_t x = {k, v, zhashx_new(), zhashx_new()};
    int rc = ORBIT_ENOMEM;
    if (!lc || !vc) {
        snprintf(k->error, sizeof k->error, "%.200s", err);
        rc = ORBIT_EIO;
        goto out;
    }
    if (!v || !x.identities || !x.gangs) {
        snprintf(k->error, sizeof k->error, "out of memory");
        goto out;
    }
    /* Rows first: the ledger snapshot taken after them can only hold more
     * placements, never fewer, than the capacity they were checked against
     * when proposed. */
    if ((rc = load_rows(vc, v, timeout_ms, k)) != ORBIT_OK ||
        (rc = load_snapshot(lc, v, timeout_ms, k)) != ORBIT_OK)
        goto out;
    size_t n = orbit_sched_view_node_count(v);
    for (size_t i = 0; i < n; i++) {
        orbit_sched_node_t nd;
        if (orbit_sched_view_node_at(v, i, &nd) != ORBIT_OK)
            continue;
        k->nodes++;
        if (!nd.seen)
            continue;
        k->nodes_seen++;
        if (nd.committed.cpu_m > nd.capacity.cpu_m || nd.committed.mem > nd.capacity.mem ||
            nd.committed.gpus > nd.capacity.gpus)
            k->over_capacity++;
    }
    orbit_sched_view_each_placement(v, check_placement, &x);
    orbit_sched_view_each_module(v, check_module, &x);
    /* The view keeps identities one-to-one; the snapshot's raw identity
     * records are checked as they were loaded. */
    orbit_sched_view_stats_t vs;
    orbit_sched_view_stats(v, &vs);
    k->identity_twice += vs.identity_clashes;
    rc = ORBIT_OK;
out:
    zhashx_destroy(&x.identities);
    zhashx_destroy(&x.gangs);
    orbit_sched_view_destroy(&v);
    orbit_view_client_destroy(&vc);
    orbit_ledger_client_destroy(&lc);
    return rc;
}

bool orbit_bench_sched_check_ok(const orbit_bench_sched_check_t *k)
{
    return !k->error[0] && !k->over_capacity && !k->identity_twice && !k->gangs_broken;
}

/* ---------------------------------------------------------------- cluster */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static orbit_bench_proc_t *proc_add(cluster_t *cl)
{
    if (cl->nprocs == sizeof cl->procs / sizeof cl->procs[0])
        return NULL;
    return &cl->procs[cl->nprocs++];
}

static int start(cluster_t *cl, const char *name, char *const argv[], orbit_bench_sched_run_t *r)
{
    orbit_bench_proc_t *p = proc_add(cl);
    if (!p || orbit_bench_proc_start(p, name, argv, cl->dir) != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "cannot start %s", name);
        return ORBIT_EIO;
    }
    return ORBIT_OK;
}

static int check_alive(cluster_t *cl, orbit_bench_sched_run_t *r)
{
    for (size_t i = 0; i < cl->nprocs; i++)
        if (!orbit_bench_proc_alive(&cl->procs[i])) {
            snprintf(r->error, sizeof r->error, "%s exited early (status %d); see %.150s",
                     cl->procs[i].name, cl->procs[i].status, cl->procs[i].log);
            return ORBIT_EIO;
        }
    return ORBIT_OK;
}

static int find_bins(const orbit_bench_sched_cfg_t *c, cluster_t *cl, orbit_bench_sched_run_t *r)
{
    static const char *names[4][2] = {{"root", "orbit-root"},
                                      {"shard", "orbit-shard"},
                                      {"tools", "orbit-sim"},
                                      {"tools", "orbit-sched"}};
    for (int i = 0; i < 4; i++)
        if (orbit_bench_find_binary(c->bindir, names[i][0], names[i][1], cl->bins[i],
                                    sizeof cl->bins[i]) != ORBIT_OK) {
            snprintf(r->error, sizeof r->error, "%s not found (last tried %.150s); use --bindir",
                     names[i][1], cl->bins[i]);
            return ORBIT_ENOTFOUND;
        }
    return ORBIT_OK;
}

static int spawn_cluster(const orbit_bench_sched_cfg_t *c, cluster_t *cl,
                         orbit_bench_sched_run_t *r)
{
    int ports[2 * REPLICAS + SHARDS];
    if (orbit_bench_free_ports(ports, 2 * REPLICAS + SHARDS) != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "no free loopback ports");
        return ORBIT_EIO;
    }
    char peers[REPLICAS * 32] = "", raft[REPLICAS][32], data[REPLICAS][300];
    size_t pu = 0, ru = 0;
    for (int i = 0; i < REPLICAS; i++) {
        snprintf(raft[i], sizeof raft[i], "127.0.0.1:%d", ports[i]);
        snprintf(data[i], sizeof data[i], "%s/data%d", cl->dir, i + 1);
        pu += (size_t)snprintf(peers + pu, sizeof peers - pu, "%s%d=%s", i ? "," : "", i + 1,
                               raft[i]);
        ru += (size_t)snprintf(cl->roots + ru, sizeof cl->roots - ru, "%stcp://127.0.0.1:%d",
                               i ? "," : "", ports[REPLICAS + i]);
    }
    for (int i = 0; i < REPLICAS; i++) {
        char id[8], name[16], listen[40];
        snprintf(id, sizeof id, "%d", i + 1);
        snprintf(name, sizeof name, "root%d", i + 1);
        snprintf(listen, sizeof listen, "tcp://127.0.0.1:%d", ports[REPLICAS + i]);
        char *argv[] = {
            cl->bins[BIN_ROOT], "--id", id,         "--data", data[i],       "--raft", raft[i],
            "--peers",          peers,  "--listen", listen,   "--log-level", "warn",   NULL};
        if (start(cl, name, argv, r) != ORBIT_OK)
            return ORBIT_EIO;
    }
    char shard_eps[SHARDS * 40] = "";
    size_t su = 0;
    for (int i = 0; i < SHARDS; i++) {
        char id[16], listen[40];
        snprintf(id, sizeof id, "bench-%d", i + 1);
        snprintf(listen, sizeof listen, "tcp://127.0.0.1:%d", ports[2 * REPLICAS + i]);
        su += (size_t)snprintf(shard_eps + su, sizeof shard_eps - su, "%s%s", i ? "," : "", listen);
        char *argv[] = {cl->bins[BIN_SHARD],
                        "--id",
                        id,
                        "--tier",
                        "1",
                        "--listen",
                        listen,
                        "--upstream",
                        cl->roots,
                        "--log-level",
                        "warn",
                        NULL};
        if (start(cl, id, argv, r) != ORBIT_OK)
            return ORBIT_EIO;
    }
    char leaves[16];
    snprintf(leaves, sizeof leaves, "%u", c->nodes);
    char *argv[] = {cl->bins[BIN_SIM],
                    "--leaves",
                    leaves,
                    "--shard",
                    shard_eps,
                    "--prefix",
                    "bench",
                    "--reboots-per-hour",
                    "0",
                    "--gpu-events-per-hour",
                    "0",
                    "--stats-ms",
                    "0",
                    "--log-level",
                    "warn",
                    NULL};
    return start(cl, "sim", argv, r);
}

/* Poll the view until every leaf is alive (bounded). */
static int converge(const orbit_bench_sched_cfg_t *c, cluster_t *cl, orbit_view_client_t *vc,
                    orbit_bench_sched_run_t *r)
{
    int64_t deadline = orbit_bench_now_ms() + 60000 + c->nodes;
    while (orbit_bench_now_ms() < deadline && !stopped(c)) {
        if (check_alive(cl, r) != ORBIT_OK)
            return ORBIT_EIO;
        Orbit__ViewQuery q = ORBIT__VIEW_QUERY__INIT;
        q.kind = ORBIT__QUERY_KIND__Q_NODES;
        q.has_status = true;
        q.status = ORBIT__NODE_STATUS__ALIVE;
        q.has_limit = true;
        q.limit = 1;
        Orbit__ViewReply *rep = NULL;
        if (orbit_view_client_query(vc, &q, 2000, &rep) == ORBIT_OK) {
            uint64_t alive = rep->error ? 0 : rep->matched;
            orbit__view_reply__free_unpacked(rep, NULL);
            if (alive >= c->nodes)
                return ORBIT_OK;
        }
        orbit_bench_sleep_ms(250, c->stop);
    }
    snprintf(r->error, sizeof r->error, "the %u leaves were not all alive in time; see %.150s",
             c->nodes, cl->dir);
    return ORBIT_ETIMEDOUT;
}

static int propose(orbit_ledger_client_t *lc, Orbit__Ledger__Commitment *cm,
                   orbit_bench_sched_run_t *r, const char *what)
{
    Orbit__Ledger__Outcome *o = NULL;
    char err[200] = "";
    int rc = orbit_ledger_client_propose(lc, cm, NULL, CALL_MS, &o, err, sizeof err);
    if (rc != ORBIT_OK || o->kind != ORBIT__LEDGER__OUTCOME_KIND__COMMITTED) {
        snprintf(r->error, sizeof r->error, "%s: %.180s", what,
                 rc != ORBIT_OK ? (err[0] ? err : orbit_strerror(rc))
                 : o->reason    ? o->reason
                 : o->which     ? o->which
                                : "not committed");
        if (o)
            orbit__ledger__outcome__free_unpacked(o, NULL);
        return rc != ORBIT_OK ? rc : ORBIT_EIO;
    }
    orbit__ledger__outcome__free_unpacked(o, NULL);
    return ORBIT_OK;
}

static int grant_quota(orbit_ledger_client_t *lc, orbit_bench_sched_run_t *r)
{
    Orbit__Ledger__Resources res = ORBIT__LEDGER__RESOURCES__INIT;
    res.has_cpu_m = res.has_mem = res.has_gpus = true;
    res.cpu_m = 100000000LL;
    res.mem = 1LL << 50;
    res.gpus = 1000000;
    Orbit__Ledger__QuotaGrant g = ORBIT__LEDGER__QUOTA_GRANT__INIT;
    g.principal = PRINCIPAL;
    g.resources = &res;
    Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
    cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_QUOTA_GRANT;
    cm.quota_grant = &g;
    return propose(lc, &cm, r, "quota grant");
}

/* One ModuleAdjustment: module m of mission "bench-<k>". */
static int submit_module(orbit_ledger_client_t *lc, uint32_t k, uint32_t count, bool gang,
                         orbit_bench_sched_run_t *r)
{
    char mission[32], module[16];
    snprintf(mission, sizeof mission, "%s-%u", gang ? "gang" : "bench", k);
    snprintf(module, sizeof module, "%s", gang ? "train" : "web");
    Orbit__Ledger__Resources res = ORBIT__LEDGER__RESOURCES__INIT;
    res.has_cpu_m = res.has_mem = res.has_gpus = true;
    res.cpu_m = CAPSULE_CPU_M;
    res.mem = CAPSULE_MEM;
    res.gpus = gang ? 1 : 0;
    Orbit__Ledger__ModuleSpec spec = ORBIT__LEDGER__MODULE_SPEC__INIT;
    spec.has_count = spec.has_priority = spec.has_gang = true;
    spec.count = count;
    spec.resources = &res;
    spec.command = "[\"sleep\",\"600\"]";
    spec.priority = gang ? 10 : 0;
    spec.gang = gang;
    spec.principal = PRINCIPAL;
    Orbit__Ledger__ModuleAdjustment ma = ORBIT__LEDGER__MODULE_ADJUSTMENT__INIT;
    ma.mission = mission;
    ma.module = module;
    ma.adjustment = &spec;
    Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
    cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_MODULE_ADJUSTMENT;
    cm.module_adjustment = &ma;
    return propose(lc, &cm, r, "module adjustment");
}

/* Capsules placed so far: the principal's charged CPU / the capsule CPU. */
static int placed_now(orbit_ledger_client_t *lc, uint64_t *placed)
{
    char *value = NULL, err[200];
    int rc = orbit_ledger_client_get(lc, "principal/" PRINCIPAL, false, CALL_MS, &value, NULL, err,
                                     sizeof err);
    if (rc != ORBIT_OK)
        return rc;
    json_error_t je;
    json_t *j = json_loads(value, 0, &je);
    free(value);
    json_int_t cpu =
        j ? json_integer_value(json_object_get(json_object_get(j, "used"), "cpu_m")) : 0;
    json_decref(j);
    if (!j)
        return ORBIT_EIO;
    *placed = (uint64_t)(cpu / CAPSULE_CPU_M);
    return ORBIT_OK;
}

/* Sum a counter over the schedulers' stats files: a number, or an object
 * of numbers (counts by kind) summed. */
static uint64_t stat_sum(json_t *j, const char *name)
{
    json_t *x = json_object_get(j, name);
    if (json_is_integer(x))
        return (uint64_t)json_integer_value(x);
    uint64_t n = 0;
    const char *k;
    json_t *y;
    json_object_foreach(x, k, y) if (json_is_integer(y)) n += (uint64_t)json_integer_value(y);
    return n;
}

static void read_stats(cluster_t *cl, uint32_t s, orbit_bench_sched_run_t *r)
{
    for (uint32_t i = 0; i < s; i++) {
        char path[320];
        snprintf(path, sizeof path, "%s/sched%u.json", cl->dir, i + 1);
        json_error_t je;
        json_t *j = json_load_file(path, 0, &je);
        if (!j)
            continue;
        r->conflicts += stat_sum(j, "conflicts");
        r->retries += stat_sum(j, "retries");
        r->proposals += stat_sum(j, "proposals");
        json_decref(j);
    }
}

static int start_schedulers(const orbit_bench_sched_cfg_t *c, cluster_t *cl, uint32_t s,
                            orbit_bench_sched_run_t *r)
{
    char workers[16], refresh[16];
    snprintf(workers, sizeof workers, "%u", c->workers);
    snprintf(refresh, sizeof refresh, "%u", c->refresh_ms);
    for (uint32_t i = 0; i < s; i++) {
        char name[32], stats[320];
        snprintf(name, sizeof name, "sched%u", i + 1);
        snprintf(stats, sizeof stats, "%s/%s.json", cl->dir, name);
        char *argv[] = {cl->bins[BIN_SCHED],
                        "--root",
                        cl->roots,
                        "--name",
                        name,
                        "--workers",
                        workers,
                        "--refresh-ms",
                        refresh,
                        "--no-reaper",
                        "--stats-file",
                        stats,
                        "--stats-every-ms",
                        "500",
                        "--log-level",
                        "warn",
                        NULL};
        if (start(cl, name, argv, r) != ORBIT_OK)
            return ORBIT_EIO;
    }
    /* Each writes its stats file once its view is synced. */
    int64_t deadline = orbit_bench_now_ms() + SYNC_WAIT_MS;
    for (uint32_t i = 0; i < s; i++) {
        char path[320];
        snprintf(path, sizeof path, "%s/sched%u.json", cl->dir, i + 1);
        while (access(path, R_OK) != 0) {
            if (check_alive(cl, r) != ORBIT_OK)
                return ORBIT_EIO;
            if (orbit_bench_now_ms() > deadline || stopped(c)) {
                snprintf(r->error, sizeof r->error, "sched%u wrote no stats in %d s", i + 1,
                         SYNC_WAIT_MS / 1000);
                return ORBIT_ETIMEDOUT;
            }
            orbit_bench_sleep_ms(50, c->stop);
        }
    }
    return ORBIT_OK;
}

enum { CPU_SCHED, CPU_ROOT, CPU_REST };

/* CPU seconds so far of the cluster's children, by kind (cpu[3]). A child
 * gone counts nothing, which the check for dead children reports anyway. */
static void cluster_cpu(const cluster_t *cl, double cpu[3])
{
    int role[sizeof cl->procs / sizeof cl->procs[0]];
    for (size_t i = 0; i < cl->nprocs; i++) {
        const char *n = cl->procs[i].name;
        role[i] = !strncmp(n, "sched", 5)  ? CPU_SCHED
                  : !strncmp(n, "root", 4) ? CPU_ROOT
                                           : CPU_REST;
    }
    orbit_bench_procs_usage(cl->procs, cl->nprocs, role, 3, cpu, NULL);
}

static int submit_and_wait(const orbit_bench_sched_cfg_t *c, cluster_t *cl,
                           orbit_ledger_client_t *lc, orbit_bench_sched_run_t *r)
{
    uint32_t gang_capsules = c->gangs * GANG_SIZE;
    uint32_t plain = c->capsules > gang_capsules ? c->capsules - gang_capsules : 0;
    uint64_t total = (uint64_t)plain + gang_capsules;
    double cpu0[3], cpu1[3];
    cluster_cpu(cl, cpu0);
    int64_t t0 = orbit_bench_now_ms();
    for (uint32_t g = 0; g < c->gangs; g++)
        if (submit_module(lc, g, GANG_SIZE, true, r) != ORBIT_OK)
            return ORBIT_EIO;
    for (uint32_t k = 0, left = plain; left; k++) {
        uint32_t n = left > MODULE_MAX ? MODULE_MAX : left;
        if (submit_module(lc, k, n, false, r) != ORBIT_OK)
            return ORBIT_EIO;
        left -= n;
    }
    int64_t deadline = t0 + (int64_t)c->place_timeout_s * 1000;
    r->first_ms = r->all_ms = -1;
    while (!stopped(c)) {
        uint64_t placed = 0;
        int64_t now = orbit_bench_now_ms();
        if (placed_now(lc, &placed) == ORBIT_OK) {
            r->placed = placed;
            if (placed && r->first_ms < 0)
                r->first_ms = (double)(now - t0);
            if (placed >= total) {
                r->all_ms = (double)(now - t0);
                r->per_s = r->all_ms > 0 ? (double)total * 1000.0 / r->all_ms : 0;
                cluster_cpu(cl, cpu1);
                r->sched_cpu_us = (cpu1[CPU_SCHED] - cpu0[CPU_SCHED]) * 1e6 / (double)total;
                r->root_cpu_us = (cpu1[CPU_ROOT] - cpu0[CPU_ROOT]) * 1e6 / (double)total;
                r->rest_cpu_us = (cpu1[CPU_REST] - cpu0[CPU_REST]) * 1e6 / (double)total;
                if (r->sched_cpu_us < 0 || r->root_cpu_us < 0 || r->rest_cpu_us < 0)
                    r->sched_cpu_us = r->root_cpu_us = r->rest_cpu_us = -1; /* a child left */
                return ORBIT_OK;
            }
        }
        if (now > deadline) {
            r->per_s = (double)r->placed * 1000.0 / (double)(now - t0);
            snprintf(r->error, sizeof r->error,
                     "%" PRIu64 " of %" PRIu64 " capsules placed after %u s; see %.120s", r->placed,
                     total, c->place_timeout_s, cl->dir);
            return ORBIT_ETIMEDOUT;
        }
        if (check_alive(cl, r) != ORBIT_OK)
            return ORBIT_EIO;
        orbit_bench_sleep_ms(POLL_MS, c->stop);
    }
    snprintf(r->error, sizeof r->error, "interrupted");
    return ORBIT_EIO;
}

int orbit_bench_sched_run(const orbit_bench_sched_cfg_t *c, size_t i, orbit_bench_sched_run_t *r)
{
    memset(r, 0, sizeof *r);
    r->first_ms = r->all_ms = -1;
    r->sched_cpu_us = r->root_cpu_us = r->rest_cpu_us = -1;
    r->schedulers = c->schedulers[i];
    zsys_init();
    cluster_t *cl = calloc(1, sizeof *cl);
    orbit_ledger_client_t *lc = NULL;
    orbit_view_client_t *vc = NULL;
    char err[200] = "";
    int rc = ORBIT_ENOMEM;
    if (!cl) {
        snprintf(r->error, sizeof r->error, "out of memory");
        return rc;
    }
    snprintf(cl->dir, sizeof cl->dir, "/tmp/orbit-bench-sched-XXXXXX");
    if (!mkdtemp(cl->dir)) {
        snprintf(r->error, sizeof r->error, "cannot create a directory in /tmp");
        cl->dir[0] = '\0';
        rc = ORBIT_EIO;
        goto out;
    }
    snprintf(r->dir, sizeof r->dir, "%s", cl->dir);
    if ((rc = find_bins(c, cl, r)) != ORBIT_OK || (rc = spawn_cluster(c, cl, r)) != ORBIT_OK)
        goto out;
    lc = orbit_ledger_client_new(cl->roots, NULL, err, sizeof err);
    vc = lc ? orbit_view_client_new(cl->roots, err, sizeof err) : NULL;
    if (!lc || !vc) {
        snprintf(r->error, sizeof r->error, "client: %.200s", err);
        rc = ORBIT_EIO;
        goto out;
    }
    if ((rc = converge(c, cl, vc, r)) != ORBIT_OK || (rc = grant_quota(lc, r)) != ORBIT_OK ||
        (rc = start_schedulers(c, cl, r->schedulers, r)) != ORBIT_OK ||
        (rc = submit_and_wait(c, cl, lc, r)) != ORBIT_OK)
        goto out;
    orbit_bench_sleep_ms(1500, c->stop); /* one more stats write from every scheduler */
    read_stats(cl, r->schedulers, r);
    rc = orbit_bench_sched_check(cl->roots, 30000, &r->check);
    if (rc == ORBIT_OK && !orbit_bench_sched_check_ok(&r->check)) {
        snprintf(r->error, sizeof r->error, "invariant check failed%s%.150s",
                 r->check.error[0] ? ": " : "", r->check.error);
        rc = ORBIT_EIO;
    }
out:
    if (rc != ORBIT_OK)
        read_stats(cl, r->schedulers, r);
    orbit_view_client_destroy(&vc);
    orbit_ledger_client_destroy(&lc);
    orbit_bench_proc_stop_all(cl->procs, cl->nprocs, STOP_GRACE_MS);
    if (cl->dir[0] && rc == ORBIT_OK && !c->keep_logs) {
        nftw(cl->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        r->dir[0] = '\0';
    }
    free(cl);
    return rc;
}

/* ------------------------------------------------------------------ print */

/* ,"error":"<text>" with the text JSON-escaped. */
static void print_json_error(const char *text)
{
    json_t *e = json_string(text);
    char *s = e ? json_dumps(e, JSON_ENCODE_ANY) : NULL;
    printf(",\"error\":%s", s ? s : "\"?\"");
    free(s);
    json_decref(e);
}

/* The check as one JSON object (no newline). */
static void check_json(const orbit_bench_sched_check_t *k)
{
    printf("{\"ledger_index\":%" PRIu64 ",\"placements\":%" PRIu64 ",\"identities\":%" PRIu64
           ",\"modules\":%" PRIu64 ",\"modules_at_count\":%" PRIu64 ",\"nodes\":%" PRIu64
           ",\"nodes_seen\":%" PRIu64 ",\"over_capacity\":%" PRIu64 ",\"identity_twice\":%" PRIu64
           ",\"gangs\":%" PRIu64 ",\"gangs_broken\":%" PRIu64 ",\"on_alive\":%" PRIu64
           ",\"on_suspect\":%" PRIu64 ",\"on_down\":%" PRIu64 ",\"on_unreachable\":%" PRIu64
           ",\"ok\":%s",
           k->ledger_index, k->placements, k->identities, k->modules, k->modules_at_count, k->nodes,
           k->nodes_seen, k->over_capacity, k->identity_twice, k->gangs, k->gangs_broken,
           k->on_alive, k->on_suspect, k->on_down, k->on_unreachable,
           orbit_bench_sched_check_ok(k) ? "true" : "false");
    if (k->error[0])
        print_json_error(k->error);
    printf("}");
}

void orbit_bench_sched_check_print(const orbit_bench_sched_check_t *k, bool json)
{
    if (json) {
        check_json(k);
        printf("\n");
        return;
    }
    if (k->error[0])
        printf("check failed to run: %s\n", k->error);
    printf("ledger index %" PRIu64 ": %" PRIu64 " placements, %" PRIu64 " identities, %" PRIu64
           "/%" PRIu64 " modules at their count, %" PRIu64 " nodes (%" PRIu64 " in the view)\n",
           k->ledger_index, k->placements, k->identities, k->modules_at_count, k->modules, k->nodes,
           k->nodes_seen);
    printf("nodes over capacity: %" PRIu64 "; identities bound twice: %" PRIu64
           "; gangs broken: %" PRIu64 " of %" PRIu64 " -> %s\n",
           k->over_capacity, k->identity_twice, k->gangs_broken, k->gangs,
           orbit_bench_sched_check_ok(k) ? "ok" : "VIOLATED");
    printf("placements on nodes alive %" PRIu64 ", suspect %" PRIu64 ", down %" PRIu64
           ", unreachable or unseen %" PRIu64 "\n",
           k->on_alive, k->on_suspect, k->on_down, k->on_unreachable);
}

void orbit_bench_sched_print(const orbit_bench_sched_cfg_t *c, const orbit_bench_sched_run_t *r,
                             size_t n, bool json)
{
    if (json) {
        printf("{\"nodes\":%u,\"capsules\":%u,\"gangs\":%u,\"workers\":%u,\"runs\":[", c->nodes,
               c->capsules, c->gangs, c->workers);
        for (size_t i = 0; i < n; i++) {
            const orbit_bench_sched_run_t *x = &r[i];
            printf("%s{\"schedulers\":%u,\"placed\":%" PRIu64
                   ",\"first_ms\":%.0f,\"all_ms\":%.0f,\"placements_per_s\":%.0f,"
                   "\"conflicts\":%" PRIu64 ",\"retries\":%" PRIu64 ",\"proposals\":%" PRIu64
                   ",\"conflict_rate\":%.4f,\"cpu_us_per_placement\":{\"schedulers\":%.1f,"
                   "\"replicas\":%.1f,\"rest\":%.1f},\"check\":",
                   i ? "," : "", x->schedulers, x->placed, x->first_ms, x->all_ms, x->per_s,
                   x->conflicts, x->retries, x->proposals,
                   x->proposals ? (double)x->conflicts / (double)x->proposals : 0.0,
                   x->sched_cpu_us, x->root_cpu_us, x->rest_cpu_us);
            check_json(&x->check);
            if (x->error[0])
                print_json_error(x->error);
            printf("}");
        }
        printf("]}\n");
        return;
    }
    printf("scheduling: %u simulated nodes, %u capsules (%u gangs of %d), %u workers per "
           "scheduler\n",
           c->nodes, c->capsules, c->gangs, GANG_SIZE, c->workers);
    printf("%-11s %9s %10s %12s %13s %10s %9s %9s %10s %s\n", "schedulers", "placed", "first",
           "all placed", "placements/s", "conflicts", "rate", "retries", "invariants",
           "CPU us/placement: schedulers replicas rest");
    for (size_t i = 0; i < n; i++) {
        const orbit_bench_sched_run_t *x = &r[i];
        printf("%-11u %9" PRIu64 " %8.0fms %10.0fms %13.0f %10" PRIu64 " %8.2f%% %9" PRIu64
               " %10s %.1f %.1f %.1f\n",
               x->schedulers, x->placed, x->first_ms, x->all_ms, x->per_s, x->conflicts,
               x->proposals ? 100.0 * (double)x->conflicts / (double)x->proposals : 0.0, x->retries,
               orbit_bench_sched_check_ok(&x->check) ? "ok" : "VIOLATED", x->sched_cpu_us,
               x->root_cpu_us, x->rest_cpu_us);
        if (x->error[0])
            printf("  error: %s\n", x->error);
    }
}
