/* orbit-sched: the reference scheduler — places the capsules of every
 * mission module from a scheduling view, revokes surplus and failed ones,
 * and (when elected) reaps placements from long-dead nodes. */
#include <czmq.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orbit_cli.h"
#include "orbit_err.h"
#include "orbit_hash.h"
#include "orbit_ledger_client.h"
#include "orbit_log.h"
#include "orbit_names.h"
#include "orbit_sched_plan.h"
#include "orbit_sched_reaper.h"
#include "orbit_sched_view.h"
#include "orbit_sched_work.h"

#define PROPOSE_TIMEOUT_MS 5000
#define SYNC_TIMEOUT_MS    5000
#define POLL_TIMEOUT_MS    2000
#define ONCE_LIMIT_MS      10000
#define REAP_BATCH         256

static const orbit_opt_t opts[] = {
    {"root", "ENDPOINT[,...]", "root replicas (required)", false},
    {"name", "NAME",
     "this scheduler's name: lease holder and client id prefix (default "
     "<hostname>-<pid>)",
     false},
    {"workers", "N",
     "proposals in flight at once, pipelined on one ledger connection (1..4096, default 256)",
     false},
    {"sample", "K", "nodes examined per placement (power of K choices, default 32)", false},
    {"interval-ms", "MS", "round period (default 200)", false},
    {"refresh-ms", "MS", "telemetry refresh period of the view (default 1000)", false},
    {"max-pressure", "P", "memory pressure (avg10 x100) at which a node takes nothing (4000)",
     false},
    {"no-reaper", NULL, "never campaign for the reaper lease", false},
    {"reap-grace-ms", "MS", "a node DOWN this long loses its placements (default 30000)", false},
    {"reap-rate", "N", "revocations per second by the reaper, burst the same (default 20)", false},
    {"reap-max-down-pct", "PCT",
     "revoke nothing while more than PCT % of the nodes are down or unreachable (default 10)",
     false},
    {"reap-unsafe-trust-lease", NULL,
     "UNSAFE, tests only: act on the lease without checking its age locally", false},
    {"lease-ttl-ms", "MS", "reaper lease ttl, renewed every ttl/3 (default 5000)", false},
    {"once", NULL, "sync, run rounds until nothing is left to place (at most 10 s), exit", false},
    {"stats-every-ms", "MS", "stats line (and stats file) period (default 10000)", false},
    {"stats-file", "PATH", "write the counters as one JSON object there (atomically)", false},
    {NULL, NULL, NULL, false}};

static const orbit_cli_t cli = {
    "orbit-sched",
    "Reference scheduler: places mission capsules under ledger preconditions; the elected one "
    "also reaps placements from dead nodes.",
    "--root ENDPOINT[,...] [options]", "sched", opts};

typedef struct {
    const char *roots;
    char name[ORBIT_SCHED_ID_MAX];
    char prefix[128];
    uint32_t workers, sample, interval_ms, refresh_ms, max_pressure;
    uint32_t grace_ms, rate, max_down_pct, ttl_ms, stats_ms;
    bool reaper, trust_lease, once;
    const char *stats_file;
} cfg_t;

typedef struct {
    cfg_t *cfg;
    orbit_sched_view_t *view;
    orbit_sched_plan_t *plan;
    orbit_sched_reaper_t *reaper;
    orbit_sched_work_t *work;
    orbit_ledger_client_t *lease;
    int64_t started_ms;
    uint64_t submit_failed;
} sched_t;

static void parse(int argc, char **argv, cfg_t *c, zhashx_t **pv)
{
    char err[256] = "";
    int pos;
    int rc = orbit_cli_parse(&cli, argc, argv, pv, &pos, err, sizeof err);
    if (rc > 0)
        exit(0);
    if (rc < 0)
        orbit_cli_die(cli.prog, err);
    if (pos < argc) {
        snprintf(err, sizeof err, "unexpected argument '%s'", argv[pos]);
        orbit_cli_die(cli.prog, err);
    }
    zhashx_t *v = *pv;
    memset(c, 0, sizeof *c);
    c->roots = orbit_cli_str(v, "root");
    if (!c->roots || !*c->roots)
        orbit_cli_die(cli.prog, "--root is required");
    const char *name = orbit_cli_str(v, "name");
    char host[64] = "host";
    if (!name) {
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "host");
        host[sizeof host - 1] = '\0';
        snprintf(c->name, sizeof c->name, "%.40s-%ld", host, (long)getpid());
        for (char *s = c->name; *s; s++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *s))
                *s = '-';
    } else {
        if (strlen(name) > 40 || !orbit_name_plain_ok(name))
            orbit_cli_die(cli.prog, "--name must be 1-40 characters of [A-Za-z0-9._-]");
        snprintf(c->name, sizeof c->name, "%s", name);
    }
    if (orbit_cli_u32(v, "workers", 1, 4096, 256, &c->workers, err, sizeof err) ||
        orbit_cli_u32(v, "sample", 1, 100000, 32, &c->sample, err, sizeof err) ||
        orbit_cli_u32(v, "interval-ms", 1, 3600000, 200, &c->interval_ms, err, sizeof err) ||
        orbit_cli_u32(v, "refresh-ms", 10, 3600000, 1000, &c->refresh_ms, err, sizeof err) ||
        orbit_cli_u32(v, "max-pressure", 1, 10001, 4000, &c->max_pressure, err, sizeof err) ||
        orbit_cli_u32(v, "reap-grace-ms", 0, 86400000, 30000, &c->grace_ms, err, sizeof err) ||
        orbit_cli_u32(v, "reap-rate", 1, 1000000, 20, &c->rate, err, sizeof err) ||
        orbit_cli_u32(v, "reap-max-down-pct", 0, 100, 10, &c->max_down_pct, err, sizeof err) ||
        orbit_cli_u32(v, "lease-ttl-ms", 30, 86400000, 5000, &c->ttl_ms, err, sizeof err) ||
        orbit_cli_u32(v, "stats-every-ms", 10, 86400000, 10000, &c->stats_ms, err, sizeof err))
        orbit_cli_die(cli.prog, err);
    c->reaper = !orbit_cli_flag(v, "no-reaper");
    c->trust_lease = orbit_cli_flag(v, "reap-unsafe-trust-lease");
    c->once = orbit_cli_flag(v, "once");
    c->stats_file = orbit_cli_str(v, "stats-file");
    if (c->stats_file && !*c->stats_file)
        orbit_cli_die(cli.prog, "--stats-file needs a path");
    /* Client ids must differ between incarnations: the ledger's dedup table
     * remembers (client_id, request_id) for 10 minutes. */
    snprintf(c->prefix, sizeof c->prefix, "%s-%08x", c->name,
             (unsigned)(zclock_time() ^ ((int64_t)getpid() << 16) ^ (int64_t)random()));
}

/* ------------------------------------------------------------ stats */

static json_t *stats_json(sched_t *s)
{
    orbit_sched_plan_stats_t p;
    orbit_sched_plan_stats(s->plan, &p);
    orbit_sched_view_stats_t vs;
    orbit_sched_view_stats(s->view, &vs);
    uint64_t vi = orbit_sched_view_index(s->view);
    json_t *conf = json_object();
    uint64_t total = 0;
    for (size_t i = 0; i < ORBIT_SCHED_CONFLICT_KINDS; i++) {
        json_object_set_new(conf, orbit_sched_conflict_names[i],
                            json_integer((json_int_t)p.conflicts[i]));
        total += p.conflicts[i];
    }
    json_t *rev = json_object();
    for (int w = 0; w < ORBIT_SCHED_WHY_COUNT; w++)
        json_object_set_new(rev, orbit_sched_why_name((orbit_sched_why_t)w),
                            json_integer((json_int_t)p.revoked[w]));
    orbit_sched_reaper_stats_t r;
    memset(&r, 0, sizeof r);
    if (s->reaper)
        orbit_sched_reaper_stats(s->reaper, &r);
    json_t *j = json_pack(
        "{ss sI sI sI sI sI so sI sI so sI sI sI sI sI sI sI sI sI sI}", "name", s->cfg->name,
        "placed", (json_int_t)p.placed, "gangs_placed", (json_int_t)p.gangs_placed, "proposals",
        (json_int_t)p.proposals, "binds", (json_int_t)p.binds, "conflicts_total", (json_int_t)total,
        "conflicts", conf, "retries", (json_int_t)p.retries, "backoffs", (json_int_t)p.backoffs,
        "revoked", rev, "reaped", (json_int_t)r.reaped, "fenced", (json_int_t)r.fenced, "held_back",
        (json_int_t)p.held_back, "quota_blocked", (json_int_t)p.quota_blocked, "unplaceable",
        (json_int_t)p.unplaceable, "invalid", (json_int_t)p.invalid, "errors",
        (json_int_t)(p.errors + s->submit_failed), "in_flight", (json_int_t)p.in_flight, "rounds",
        (json_int_t)p.rounds, "uptime_ms", (json_int_t)(zclock_mono() - s->started_ms));
    if (!j)
        return NULL;
    json_object_set_new(j, "remembered", json_integer((json_int_t)p.remembered));
    json_object_set_new(j, "forgotten", json_integer((json_int_t)p.forgotten));
    json_object_set_new(j, "module_walks", json_integer((json_int_t)p.walks));
    json_object_set_new(j, "modules_settled", json_integer((json_int_t)p.settled));
    json_object_set_new(j, "view",
                        json_pack("{sI sI sI sI sI sI sI sI}", "index", (json_int_t)vi, "lag",
                                  (json_int_t)(p.max_index > vi ? p.max_index - vi : 0),
                                  "snapshots_loaded", (json_int_t)vs.snapshots_loaded,
                                  "commits_applied", (json_int_t)vs.commits_applied, "own_noted",
                                  (json_int_t)vs.own_noted, "rows_applied",
                                  (json_int_t)vs.rows_applied, "gaps", (json_int_t)vs.gaps,
                                  "errors", (json_int_t)vs.errors));
    json_object_set_new(j, "view_lag",
                        json_integer((json_int_t)(p.max_index > vi ? p.max_index - vi : 0)));
    json_object_set_new(j, "pick",
                        json_pack("{sI sI sI}", "picks", (json_int_t)p.pick.picks, "examined",
                                  (json_int_t)p.pick.examined, "full_scans",
                                  (json_int_t)p.pick.full_scans));
    if (s->reaper)
        json_object_set_new(
            j, "reaper",
            json_pack("{sb sI sI sI sI sI sI sI sI sI sI sI si si si}", "held", r.held, "epoch",
                      (json_int_t)r.epoch, "lease_index", (json_int_t)r.lease_index, "campaigns",
                      (json_int_t)r.campaigns, "acquired", (json_int_t)r.acquired, "renewed",
                      (json_int_t)r.renewed, "lost", (json_int_t)r.lost, "proposed",
                      (json_int_t)r.proposed, "stale", (json_int_t)r.stale, "disruption_stops",
                      (json_int_t)r.disruption_stops, "rate_limited", (json_int_t)r.rate_limited,
                      "expired_stops", (json_int_t)r.expired_stops, "down", (int)r.down, "dark",
                      (int)r.dark, "fleet", (int)r.fleet));
    return j;
}

static void stats_write(sched_t *s, bool log)
{
    json_t *j = stats_json(s);
    if (!j)
        return;
    if (log) {
        orbit_sched_plan_stats_t p;
        orbit_sched_plan_stats(s->plan, &p);
        uint64_t conflicts = 0;
        for (size_t i = 0; i < ORBIT_SCHED_CONFLICT_KINDS; i++)
            conflicts += p.conflicts[i];
        orbit_info("orbit-sched %s: placed %" PRIu64 " (gangs %" PRIu64 "), conflicts %" PRIu64
                   " (node_fits %" PRIu64 ", lost races %" PRIu64 ", quota %" PRIu64
                   "), retries %" PRIu64 ", revoked surplus %" PRIu64 " failed %" PRIu64
                   " reaped %" PRIu64 ", backoffs %" PRIu64 ", in flight %" PRIu64
                   ", view lag %" PRIu64,
                   s->cfg->name, p.placed, p.gangs_placed, conflicts, p.conflicts[0],
                   p.conflicts[3] + p.conflicts[4], p.conflicts[1], p.retries,
                   p.revoked[ORBIT_SCHED_WHY_SURPLUS], p.revoked[ORBIT_SCHED_WHY_FAILED],
                   p.revoked[ORBIT_SCHED_WHY_REAPED], p.backoffs, p.in_flight,
                   (uint64_t)json_integer_value(json_object_get(j, "view_lag")));
    }
    if (s->cfg->stats_file) {
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.tmp", s->cfg->stats_file);
        if (json_dump_file(j, tmp, JSON_COMPACT) != 0 || rename(tmp, s->cfg->stats_file) != 0)
            orbit_warn("orbit-sched: cannot write %s", s->cfg->stats_file);
    }
    json_decref(j);
}

/* ------------------------------------------------------------ loop */

static void finish(sched_t *s, orbit_sched_act_t *a)
{
    if (s->reaper && a->kind == ORBIT_SCHED_ACT_REVOKE && a->why == ORBIT_SCHED_WHY_REAPED)
        orbit_sched_reaper_done(s->reaper, a);
    orbit_sched_plan_done(s->plan, s->view, &a, zclock_mono());
}

static void emit_submit(void *arg, orbit_sched_act_t *a)
{
    sched_t *s = arg;
    if (orbit_sched_work_submit(s->work, a) != ORBIT_OK) {
        s->submit_failed++;
        a->rc = ORBIT_ENOMEM;
        finish(s, a); /* the reaper counts it answered too */
    }
}

static bool busy(void *arg, Orbit__Ledger__RefKind kind, const char *key)
{
    return orbit_sched_plan_busy(arg, kind, key);
}

static void reap(sched_t *s, int64_t now)
{
    orbit_sched_reap_t d[REAP_BATCH];
    size_t n = orbit_sched_reaper_decide(s->reaper, s->view, now, busy, s->plan, d, REAP_BATCH);
    for (size_t i = 0; i < n; i++) {
        orbit_sched_act_t *a = orbit_sched_reaper_act(s->reaper, s->cfg->name, &d[i]);
        if (!a)
            break;
        orbit_info("orbit-sched: reaping %s %s from node %s (down longer than %u ms)",
                   d[i].kind == ORBIT__LEDGER__REF_KIND__REF_GANG ? "gang" : "placement", d[i].key,
                   d[i].node, s->cfg->grace_ms);
        orbit_sched_plan_track(s->plan, a);
        emit_submit(s, a);
    }
}

static void lease_step(sched_t *s, int64_t now)
{
    if (!orbit_sched_reaper_lease_due(s->reaper, now))
        return;
    Orbit__Ledger__Lease l;
    Orbit__Ledger__Commitment cm;
    orbit_sched_reaper_lease_commitment(s->reaper, now, &l, &cm);
    Orbit__Ledger__Outcome *o = NULL;
    char err[200] = "";
    int rc = orbit_ledger_client_propose(s->lease, &cm, NULL, (int)(s->cfg->ttl_ms / 3), &o, err,
                                         sizeof err);
    if (rc)
        orbit_debug("orbit-sched: lease proposal: %s", err);
    orbit_sched_reaper_lease_result(s->reaper, now, rc, o);
    if (o)
        orbit__ledger__outcome__free_unpacked(o, NULL);
}

static void release_lease(sched_t *s)
{
    orbit_sched_act_t *a = orbit_sched_reaper_release(s->reaper, s->cfg->name);
    if (!a)
        return;
    orbit_sched_work_run(a, s->lease, 1000);
    if (a->rc == ORBIT_OK && a->outcome &&
        a->outcome->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED)
        orbit_info("orbit-sched: released the reaper lease");
    orbit_sched_act_destroy(&a);
}

static int run(sched_t *s)
{
    cfg_t *c = s->cfg;
    char err[256] = "";
    int64_t now = zclock_mono();
    int64_t next_round = now, next_poll = now, next_stats = now + c->stats_ms;
    int64_t poll_every = c->interval_ms < 50 ? c->interval_ms : 50;
    orbit_ratelimit_t rl = {0, 0, 2, 0};
    int status = 0;
    stats_write(s, false); /* synced: the file exists from here on */
    while (!zsys_interrupted) {
        now = zclock_mono();
        orbit_sched_act_t *a;
        while ((a = orbit_sched_work_collect(s->work, 0)))
            finish(s, a);
        if (now >= next_poll) {
            bool changed = false;
            int rc = orbit_sched_view_poll(s->view, now, (int)c->refresh_ms, POLL_TIMEOUT_MS,
                                           &changed, err, sizeof err);
            uint64_t sup = 0;
            if (rc && orbit_ratelimit_pass(&rl, now, &sup))
                orbit_warn("orbit-sched: view poll: %s", err);
            orbit_sched_plan_polled(s->plan);
            next_poll = now + poll_every;
        }
        /* Decide before renewing: what a paused holder does on waking is
         * what the fencing must stop. */
        if (s->reaper) {
            now = zclock_mono(); /* the poll may have taken seconds */
            reap(s, now);
            lease_step(s, now);
        }
        size_t pending = orbit_sched_work_pending(s->work);
        bool rounds_left = orbit_sched_plan_more(s->plan);
        if (now >= next_round || (rounds_left && pending < 256)) {
            int n = orbit_sched_plan_round(s->plan, s->view, now, emit_submit, s);
            if (n < 0)
                orbit_warn("orbit-sched: round: %s", orbit_strerror(n));
            next_round = now + c->interval_ms;
            if (c->once && n == 0 && orbit_sched_work_pending(s->work) == 0 &&
                !orbit_sched_plan_more(s->plan))
                break;
        }
        if (c->once && now - s->started_ms > ONCE_LIMIT_MS) {
            orbit_warn("orbit-sched: --once: work left after %d s", ONCE_LIMIT_MS / 1000);
            status = 1;
            break;
        }
        if (now >= next_stats) {
            stats_write(s, true);
            next_stats = now + c->stats_ms;
        }
        int64_t wake = next_round < next_poll ? next_round : next_poll;
        int wait = (int)(wake - zclock_mono());
        if (wait > 0 && (a = orbit_sched_work_collect(s->work, wait > 50 ? 50 : wait)))
            finish(s, a);
    }
    return status;
}

int main(int argc, char **argv)
{
    cfg_t c;
    zhashx_t *v = NULL;
    srandom((unsigned)(zclock_time() ^ getpid()));
    parse(argc, argv, &c, &v);
    zsys_init();
    zsys_set_logident("orbit-sched");
    zsys_set_logstream(stderr);
    char err[256] = "";
    sched_t s;
    memset(&s, 0, sizeof s);
    s.cfg = &c;
    s.started_ms = zclock_mono();
    int status = 1;
    s.view = orbit_sched_view_connect(c.roots, err, sizeof err);
    if (!s.view) {
        zhashx_destroy(&v);
        orbit_cli_die(cli.prog, err);
    }
    /* Its proposals go out as "<prefix>-pipe" (orbit_sched_work): the
     * view tells them from other schedulers' (modules being claimed). */
    orbit_sched_view_set_self(s.view, c.prefix);
    /* First sync: the ledger may still be electing. */
    for (;;) {
        int rc = orbit_sched_view_sync(s.view, SYNC_TIMEOUT_MS, err, sizeof err);
        if (rc == ORBIT_OK)
            break;
        if (zsys_interrupted || (c.once && zclock_mono() - s.started_ms > ONCE_LIMIT_MS)) {
            fprintf(stderr, "orbit-sched: no view: %s\n", err);
            goto out;
        }
        orbit_warn("orbit-sched: view sync: %s (retrying)", err);
        zclock_sleep(500);
    }
    s.work =
        orbit_sched_work_new(c.roots, c.prefix, c.workers, PROPOSE_TIMEOUT_MS, err, sizeof err);
    if (!s.work) {
        fprintf(stderr, "orbit-sched: %s\n", err);
        goto out;
    }
    orbit_sched_plan_cfg_t pc;
    orbit_sched_plan_cfg_default(&pc);
    pc.score.max_pressure = c.max_pressure;
    pc.score.sample = c.sample;
    pc.proposer = c.prefix;
    pc.window = c.workers * 2; /* in flight, plus as many ready to go */
    pc.seed = orbit_fnv1a_str(ORBIT_SCHED_HASH_START, c.prefix);
    s.plan = orbit_sched_plan_new(&pc);
    if (!s.plan) {
        fprintf(stderr, "orbit-sched: out of memory\n");
        goto out;
    }
    if (c.reaper) {
        char lid[160];
        snprintf(lid, sizeof lid, "%s-lease", c.prefix);
        s.lease = orbit_ledger_client_new(c.roots, lid, err, sizeof err);
        orbit_sched_reaper_cfg_t rc;
        orbit_sched_reaper_cfg_default(&rc);
        rc.holder = c.name;
        rc.ttl_ms = c.ttl_ms;
        rc.grace_ms = c.grace_ms;
        rc.rate = c.rate;
        rc.max_down_pct = c.max_down_pct;
        rc.trust_lease = c.trust_lease;
        s.reaper = orbit_sched_reaper_new(&rc);
        if (!s.lease || !s.reaper) {
            fprintf(stderr, "orbit-sched: %s\n", s.lease ? "out of memory" : err);
            goto out;
        }
        if (c.trust_lease)
            orbit_warn("orbit-sched: --reap-unsafe-trust-lease: only the ledger's fencing "
                       "guards the reaper");
    }
    orbit_info("orbit-sched %s: view at ledger index %" PRIu64 ", %zu nodes; %u in flight", c.name,
               orbit_sched_view_index(s.view), orbit_sched_view_node_count(s.view), c.workers);
    status = run(&s);
    /* Stop: let the workers finish what they hold, note what came back. */
    int64_t until = zclock_mono() + 2000;
    while (orbit_sched_work_pending(s.work) && zclock_mono() < until) {
        orbit_sched_act_t *a = orbit_sched_work_collect(s.work, 50);
        if (a)
            finish(&s, a);
    }
    if (s.reaper)
        release_lease(&s);
    stats_write(&s, true);
out:
    orbit_sched_work_destroy(&s.work);
    orbit_ledger_client_destroy(&s.lease);
    orbit_sched_reaper_destroy(&s.reaper);
    orbit_sched_plan_destroy(&s.plan);
    orbit_sched_view_destroy(&s.view);
    zhashx_destroy(&v);
    return status;
}
