/* orbit_bench_tree: a root, zone and rack shards and simulators as child
 * processes; freshness and message rate at the root. */
#include "orbit_bench_tree.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orbit_bench_proc.h"
#include "orbit_bench_stats.h"
#include "orbit_err.h"
#include "orbit_view_client.h"
#include "root_view.h"
#include "shard_agg.h"

#define QUERY_TIMEOUT_MS 3000
#define START_CHECK_MS   500
#define STOP_GRACE_MS    5000
#define POLL_MS          500

enum { ROLE_SIMS, ROLE_RACKS, ROLE_ZONES, ROLE_ROOT, ROLES };
static const char *role_names[ROLES] = {"sims", "racks", "zones", "root"};

typedef struct {
    uint64_t total, alive;
    uint64_t reports;
    int64_t uptime_ms;
    uint64_t hist[ORBIT_FRESHNESS_BUCKETS];
    double bucket_ms;
} snapshot_t;

typedef struct {
    orbit_bench_proc_t *procs;
    int *role;
    size_t n, cap;
} fleet_t;

void orbit_bench_tree_cfg_default(orbit_bench_tree_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->leaves[0] = 1000;
    c->leaves[1] = 10000;
    c->leaves[2] = 100000;
    c->nleaves = 3;
    c->leaf_interval_ms = 1000;
    c->report_interval_ms = 1000;
    c->seconds = 10;
    c->leaves_per_rack_shard = 5000;
    c->racks_per_zone = 10;
}

static bool stopped(const orbit_bench_tree_cfg_t *c)
{
    return c->stop && *c->stop;
}

/* ---------------------------------------------------------------- queries */

static int snapshot(orbit_view_client_t *vc, snapshot_t *s)
{
    Orbit__ViewQuery q = ORBIT__VIEW_QUERY__INIT;
    q.kind = ORBIT__QUERY_KIND__Q_SUMMARY;
    q.has_with_freshness = true;
    q.with_freshness = true;
    Orbit__ViewReply *rep = NULL;
    int rc = orbit_view_client_query(vc, &q, QUERY_TIMEOUT_MS, &rep);
    if (rc != ORBIT_OK)
        return rc;
    orbit_agg_t a;
    memset(s, 0, sizeof *s);
    if (rep->error || !rep->summary || orbit_agg_from_pb(&a, rep->summary) != ORBIT_OK) {
        orbit__view_reply__free_unpacked(rep, NULL);
        return ORBIT_EINVAL;
    }
    s->total = orbit_agg_total(&a);
    s->alive = a.nodes[ORBIT_ALIVE];
    s->reports = rep->root_reports;
    s->uptime_ms = rep->root_uptime_ms;
    size_t n = rep->n_row_age_hist < ORBIT_FRESHNESS_BUCKETS ? rep->n_row_age_hist
                                                             : ORBIT_FRESHNESS_BUCKETS;
    memcpy(s->hist, rep->row_age_hist, n * sizeof *s->hist);
    s->bucket_ms = rep->has_row_age_bucket_ms ? rep->row_age_bucket_ms : ORBIT_FRESHNESS_BUCKET_MS;
    orbit__view_reply__free_unpacked(rep, NULL);
    return ORBIT_OK;
}

/* ------------------------------------------------------------ processes */

static orbit_bench_proc_t *fleet_add(fleet_t *f, int role)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        orbit_bench_proc_t *p = realloc(f->procs, cap * sizeof *p);
        if (!p)
            return NULL;
        f->procs = p;
        int *r = realloc(f->role, cap * sizeof *r);
        if (!r)
            return NULL;
        f->role = r;
        f->cap = cap;
    }
    f->role[f->n] = role;
    memset(&f->procs[f->n], 0, sizeof f->procs[f->n]);
    return &f->procs[f->n++];
}

static int start(fleet_t *f, int role, const char *name, char *const argv[], const char *logdir,
                 orbit_bench_tree_result_t *r)
{
    orbit_bench_proc_t *p = fleet_add(f, role);
    if (!p || orbit_bench_proc_start(p, name, argv, logdir) != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "cannot start %s", name);
        return ORBIT_EIO;
    }
    return ORBIT_OK;
}

/* Every child still running? Names the first that is not. */
static int check_alive(fleet_t *f, orbit_bench_tree_result_t *r)
{
    for (size_t i = 0; i < f->n; i++)
        if (!orbit_bench_proc_alive(&f->procs[i])) {
            snprintf(r->error, sizeof r->error, "%.60s exited (status %d); see %.160s",
                     f->procs[i].name, f->procs[i].status, f->procs[i].log);
            return ORBIT_EIO;
        }
    return ORBIT_OK;
}

static void sample_usage(fleet_t *f, double *cpu, uint64_t *rss)
{
    orbit_bench_procs_usage(f->procs, f->n, f->role, ROLES, cpu, rss);
}

static void remove_logs(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e = readdir(d); e; e = readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* ------------------------------------------------------------------- run */

typedef struct {
    char root[4096], shard[4096], sim[4096];
} bins_t;

static int find_bins(const orbit_bench_tree_cfg_t *c, bins_t *b, orbit_bench_tree_result_t *r)
{
    if (orbit_bench_find_binary(c->bindir, "root", "orbit-root", b->root, sizeof b->root) ||
        orbit_bench_find_binary(c->bindir, "shard", "orbit-shard", b->shard, sizeof b->shard) ||
        orbit_bench_find_binary(c->bindir, "tools", "orbit-sim", b->sim, sizeof b->sim)) {
        snprintf(r->error, sizeof r->error, "binary not found (last tried %.200s); use --bindir",
                 !access(b->root, X_OK) ? (!access(b->shard, X_OK) ? b->sim : b->shard) : b->root);
        return ORBIT_ENOTFOUND;
    }
    return ORBIT_OK;
}

static int spawn_tree(const orbit_bench_tree_cfg_t *c, const bins_t *b, fleet_t *f,
                      orbit_bench_tree_result_t *r, char *root_ep, size_t root_ep_len)
{
    uint32_t nr = r->rack_shards, nz = r->zone_shards;
    int *ports = calloc(1 + nz + nr, sizeof *ports);
    char(*eps)[40] = calloc(1 + nz + nr, sizeof *eps);
    int rc = ORBIT_EIO;
    if (!ports || !eps || orbit_bench_free_ports(ports, 1 + nz + nr) != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "no free loopback ports");
        goto out;
    }
    for (uint32_t i = 0; i < 1 + nz + nr; i++)
        snprintf(eps[i], sizeof eps[i], "tcp://127.0.0.1:%d", ports[i]);
    const char *root = eps[0];
    snprintf(root_ep, root_ep_len, "%s", root);
    char iv[16], liv[16], name[64], leaves[16], prefix[32], zone[32], seed[16];
    snprintf(iv, sizeof iv, "%u", c->report_interval_ms);
    snprintf(liv, sizeof liv, "%u", c->leaf_interval_ms);

    char *root_argv[] = {(char *)b->root, "--listen", (char *)root, "--log-level", "warn", NULL};
    if ((rc = start(f, ROLE_ROOT, "root", root_argv, r->logdir, r)) != ORBIT_OK)
        goto out;
    for (uint32_t z = 0; z < nz; z++) {
        snprintf(name, sizeof name, "zone-%u", z);
        char *argv[] = {
            (char *)b->shard, "--id",       name,         "--tier",        "2", "--listen",
            eps[1 + z],       "--upstream", (char *)root, "--interval-ms", iv,  "--log-level",
            "warn",           NULL};
        if ((rc = start(f, ROLE_ZONES, name, argv, r->logdir, r)) != ORBIT_OK)
            goto out;
    }
    for (uint32_t k = 0; k < nr; k++) {
        uint32_t z = (uint32_t)((uint64_t)k * nz / nr);
        snprintf(name, sizeof name, "rack-%u", k);
        char *argv[] = {
            (char *)b->shard, "--id",       name,       "--tier",        "1", "--listen",
            eps[1 + nz + k],  "--upstream", eps[1 + z], "--interval-ms", iv,  "--log-level",
            "warn",           NULL};
        if ((rc = start(f, ROLE_RACKS, name, argv, r->logdir, r)) != ORBIT_OK)
            goto out;
    }
    /* One simulator per zone, over the rack shards of that zone. */
    for (uint32_t z = 0; z < nz; z++) {
        char list[4096] = "";
        size_t used = 0;
        for (uint32_t k = 0; k < nr; k++)
            if ((uint32_t)((uint64_t)k * nz / nr) == z)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? "," : "",
                                         eps[1 + nz + k]);
        uint32_t n = r->leaves / nz + (z < r->leaves % nz);
        snprintf(leaves, sizeof leaves, "%u", n);
        snprintf(prefix, sizeof prefix, "z%u", z);
        snprintf(zone, sizeof zone, "zone-%u", z);
        snprintf(seed, sizeof seed, "%u", z + 1);
        snprintf(name, sizeof name, "sim-%u", z);
        char *argv[] = {(char *)b->sim, "--leaves",      leaves,  "--shard",
                        list,           "--interval-ms", liv,     "--prefix",
                        prefix,         "--zone",        zone,    "--seed",
                        seed,           "--stats-ms",    "10000", NULL};
        if ((rc = start(f, ROLE_SIMS, name, argv, r->logdir, r)) != ORBIT_OK)
            goto out;
    }
    orbit_bench_sleep_ms(START_CHECK_MS, c->stop);
    rc = check_alive(f, r);
out:
    free(ports);
    free(eps);
    return rc;
}

/* Poll the root until it counts every leaf alive, within the bound. */
static int converge(const orbit_bench_tree_cfg_t *c, orbit_view_client_t *vc, fleet_t *f,
                    orbit_bench_tree_result_t *r, int64_t t0)
{
    uint32_t limit_s = c->converge_timeout_s ? c->converge_timeout_s : 30 + r->leaves / 2000;
    int64_t deadline = t0 + (int64_t)limit_s * 1000;
    snapshot_t s;
    memset(&s, 0, sizeof s);
    while (!stopped(c)) {
        int rc = snapshot(vc, &s);
        if (rc == ORBIT_OK && s.alive == r->leaves && s.total == r->leaves) {
            r->converged = true;
            r->converge_s = (double)(orbit_bench_now_ms() - t0) / 1000.0;
            return ORBIT_OK;
        }
        if (check_alive(f, r) != ORBIT_OK)
            return ORBIT_EIO;
        if (orbit_bench_now_ms() >= deadline) {
            snprintf(r->error, sizeof r->error,
                     "root counted %" PRIu64 " of %u leaves alive (%" PRIu64 " total) after %u s",
                     s.alive, r->leaves, s.total, limit_s);
            return ORBIT_ETIMEDOUT;
        }
        orbit_bench_sleep_ms(POLL_MS, c->stop);
    }
    snprintf(r->error, sizeof r->error, "interrupted");
    return ORBIT_ETIMEDOUT;
}

static int measure(const orbit_bench_tree_cfg_t *c, orbit_view_client_t *vc, fleet_t *f,
                   orbit_bench_tree_result_t *r)
{
    static snapshot_t s0, s1; /* 24 KiB each: not on the stack */
    static uint64_t diff[ORBIT_FRESHNESS_BUCKETS];
    double cpu0[ROLES], cpu1[ROLES];
    uint64_t rss[ROLES];
    /* Let the first (full, warming) reports pass before the window. */
    uint32_t settle = 2 * (c->report_interval_ms > c->leaf_interval_ms ? c->report_interval_ms
                                                                       : c->leaf_interval_ms);
    orbit_bench_sleep_ms(settle, c->stop);
    if (snapshot(vc, &s0) != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "root stopped answering");
        return ORBIT_ETIMEDOUT;
    }
    sample_usage(f, cpu0, rss);
    int64_t t0 = orbit_bench_now_ms();
    r->alive_min = s0.alive;
    for (;;) {
        int64_t left = t0 + (int64_t)c->seconds * 1000 - orbit_bench_now_ms();
        if (left <= 0 || stopped(c))
            break;
        orbit_bench_sleep_ms(left < 1000 ? left : 1000, c->stop);
        snapshot_t mid;
        if (snapshot(vc, &mid) == ORBIT_OK && mid.alive < r->alive_min)
            r->alive_min = mid.alive;
    }
    if (snapshot(vc, &s1) != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "root stopped answering");
        return ORBIT_ETIMEDOUT;
    }
    double wall = (double)(orbit_bench_now_ms() - t0) / 1000.0;
    sample_usage(f, cpu1, rss);
    if (s1.alive < r->alive_min)
        r->alive_min = s1.alive;
    r->window_s = (double)(s1.uptime_ms - s0.uptime_ms) / 1000.0;
    if (r->window_s <= 0)
        r->window_s = wall;
    r->rows = orbit_bench_hist_diff(s1.hist, s0.hist, ORBIT_FRESHNESS_BUCKETS, diff);
    r->p50_ms = orbit_bench_hist_quantile(diff, ORBIT_FRESHNESS_BUCKETS, s1.bucket_ms, 0.50);
    r->p99_ms = orbit_bench_hist_quantile(diff, ORBIT_FRESHNESS_BUCKETS, s1.bucket_ms, 0.99);
    r->root_msgs_per_s = (double)(s1.reports - s0.reports) / r->window_s;
    r->expected_msgs_per_s = r->zone_shards * 1000.0 / c->report_interval_ms;
    for (int k = 0; k < ROLES; k++) {
        r->roles[k].cpu_pct = wall > 0 ? 100.0 * (cpu1[k] - cpu0[k]) / wall : 0;
        r->roles[k].rss_bytes = rss[k];
    }
    if (stopped(c)) {
        snprintf(r->error, sizeof r->error, "interrupted");
        return ORBIT_ETIMEDOUT;
    }
    /* A process that died during the window makes the figures suspect. */
    return check_alive(f, r);
}

int orbit_bench_tree_run(const orbit_bench_tree_cfg_t *c, size_t i, orbit_bench_tree_result_t *r)
{
    memset(r, 0, sizeof *r);
    r->leaves = c->leaves[i];
    r->p50_ms = r->p99_ms = -1;
    uint32_t per_rack = c->leaves_per_rack_shard ? c->leaves_per_rack_shard : 5000;
    uint32_t per_zone = c->racks_per_zone ? c->racks_per_zone : 10;
    r->rack_shards = (r->leaves + per_rack - 1) / per_rack;
    if (r->rack_shards < 2)
        r->rack_shards = 2;
    r->zone_shards = (r->rack_shards + per_zone - 1) / per_zone;
    if (r->zone_shards < 1)
        r->zone_shards = 1;
    r->sims = r->zone_shards;
    for (int k = 0; k < ROLES; k++)
        snprintf(r->roles[k].name, sizeof r->roles[k].name, "%s", role_names[k]);
    r->roles[ROLE_SIMS].procs = r->sims;
    r->roles[ROLE_RACKS].procs = r->rack_shards;
    r->roles[ROLE_ZONES].procs = r->zone_shards;
    r->roles[ROLE_ROOT].procs = 1;

    bins_t *b = calloc(1, sizeof *b);
    fleet_t f = {NULL, NULL, 0, 0};
    orbit_view_client_t *vc = NULL;
    char root_ep[64] = "", err[256];
    int rc = ORBIT_ENOMEM;
    if (!b) {
        snprintf(r->error, sizeof r->error, "out of memory");
        goto out;
    }
    if ((rc = find_bins(c, b, r)) != ORBIT_OK)
        goto out;
    snprintf(r->logdir, sizeof r->logdir, "/tmp/orbit-bench-%u-XXXXXX", r->leaves);
    if (!mkdtemp(r->logdir)) {
        snprintf(r->error, sizeof r->error, "cannot create a log directory in /tmp");
        r->logdir[0] = '\0';
        rc = ORBIT_EIO;
        goto out;
    }
    int64_t t0 = orbit_bench_now_ms();
    if ((rc = spawn_tree(c, b, &f, r, root_ep, sizeof root_ep)) != ORBIT_OK)
        goto out;
    vc = orbit_view_client_new(root_ep, err, sizeof err);
    if (!vc) {
        snprintf(r->error, sizeof r->error, "view client: %.200s", err);
        rc = ORBIT_EIO;
        goto out;
    }
    if ((rc = converge(c, vc, &f, r, t0)) != ORBIT_OK)
        goto out;
    rc = measure(c, vc, &f, r);
out:
    orbit_view_client_destroy(&vc);
    if (f.n && orbit_bench_proc_stop_all(f.procs, f.n, STOP_GRACE_MS) > 0 && rc == ORBIT_OK)
        snprintf(r->error, sizeof r->error, "some processes needed SIGKILL; see %.200s", r->logdir);
    if (r->logdir[0] && rc == ORBIT_OK && !r->error[0] && !c->keep_logs) {
        remove_logs(r->logdir);
        r->logdir[0] = '\0';
    }
    free(f.procs);
    free(f.role);
    free(b);
    return rc;
}

/* ---------------------------------------------------------------- output */

static void fmt_ms(char *out, size_t n, double ms)
{
    if (ms < 0)
        snprintf(out, n, "n/a");
    else
        snprintf(out, n, "%.0f", ms);
}

void orbit_bench_tree_print(const orbit_bench_tree_cfg_t *c, const orbit_bench_tree_result_t *r,
                            size_t n, bool json)
{
    double target = c->leaf_interval_ms + 2.0 * c->report_interval_ms;
    if (json) {
        printf("{\"benchmark\":\"tree\",\"leaf_interval_ms\":%u,\"report_interval_ms\":%u,"
               "\"seconds\":%u,\"target_p99_ms\":%.0f,\"runs\":[",
               c->leaf_interval_ms, c->report_interval_ms, c->seconds, target);
        for (size_t i = 0; i < n; i++) {
            const orbit_bench_tree_result_t *x = &r[i];
            printf(
                "%s{\"leaves\":%u,\"rack_shards\":%u,\"zone_shards\":%u,\"sims\":%u,"
                "\"converged\":%s,\"converge_s\":%.1f,\"alive_min\":%" PRIu64
                ",\"window_s\":%.1f,\"rows\":%" PRIu64 ",\"age_p50_ms\":%.0f,"
                "\"age_p99_ms\":%.0f,\"root_msgs_per_s\":%.2f,\"expected_msgs_per_s\":%.2f,"
                "\"ledger_entries\":null,\"ledger_note\":\"view-only root: no ledger in this run\","
                "\"roles\":{",
                i ? "," : "", x->leaves, x->rack_shards, x->zone_shards, x->sims,
                x->converged ? "true" : "false", x->converge_s, x->alive_min, x->window_s, x->rows,
                x->p50_ms, x->p99_ms, x->root_msgs_per_s, x->expected_msgs_per_s);
            for (int k = 0; k < ROLES; k++)
                printf("%s\"%s\":{\"procs\":%u,\"cpu_pct\":%.1f,\"rss_bytes\":%" PRIu64 "}",
                       k ? "," : "", x->roles[k].name, x->roles[k].procs, x->roles[k].cpu_pct,
                       x->roles[k].rss_bytes);
            printf("},\"error\":");
            if (x->error[0]) {
                putchar('"');
                for (const char *p = x->error; *p; p++)
                    if (*p == '"' || *p == '\\')
                        printf("\\%c", *p);
                    else if ((unsigned char)*p >= 0x20)
                        putchar(*p);
                putchar('"');
            } else {
                printf("null");
            }
            putchar('}');
        }
        printf("]}\n");
        return;
    }
    printf("telemetry tree: leaf interval %u ms, report interval %u ms, %u s window; "
           "target p99 <= %.0f ms\n",
           c->leaf_interval_ms, c->report_interval_ms, c->seconds, target);
    printf("%8s %5s %5s %9s %9s %8s %8s %8s %12s %9s   %-27s %-23s\n", "leaves", "racks", "zones",
           "converge", "alive", "rows/s", "p50 ms", "p99 ms", "root msg/s", "expected",
           "cpu % sims/racks/zones/root", "RSS MiB (same order)");
    for (size_t i = 0; i < n; i++) {
        const orbit_bench_tree_result_t *x = &r[i];
        char p50[16], p99[16], conv[16], cpu[64], rss[64];
        fmt_ms(p50, sizeof p50, x->p50_ms);
        fmt_ms(p99, sizeof p99, x->p99_ms);
        if (x->converged)
            snprintf(conv, sizeof conv, "%.1f s", x->converge_s);
        else
            snprintf(conv, sizeof conv, "no");
        snprintf(cpu, sizeof cpu, "%.1f/%.1f/%.1f/%.1f", x->roles[0].cpu_pct, x->roles[1].cpu_pct,
                 x->roles[2].cpu_pct, x->roles[3].cpu_pct);
        snprintf(rss, sizeof rss, "%.0f/%.0f/%.0f/%.0f", x->roles[0].rss_bytes / 1048576.0,
                 x->roles[1].rss_bytes / 1048576.0, x->roles[2].rss_bytes / 1048576.0,
                 x->roles[3].rss_bytes / 1048576.0);
        printf("%8u %5u %5u %9s %9" PRIu64 " %8.0f %8s %8s %12.2f %9.2f   %-27s %-23s\n", x->leaves,
               x->rack_shards, x->zone_shards, conv, x->alive_min,
               x->window_s > 0 ? x->rows / x->window_s : 0.0, p50, p99, x->root_msgs_per_s,
               x->expected_msgs_per_s, cpu, rss);
        if (x->error[0])
            printf("         error: %s\n", x->error);
        if (x->logdir[0])
            printf("         logs: %s\n", x->logdir);
    }
    printf("ledger entries caused by telemetry: not counted here, the root runs view-only "
           "(telemetry has no path into the ledger by construction)\n");
}
