/* orbit-bench: parse the command line and run one benchmark. */
#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_bench_apply.h"
#include "orbit_bench_ingest.h"
#include "orbit_bench_ledger.h"
#include "orbit_bench_plan.h"
#include "orbit_bench_sched.h"
#include "orbit_bench_stats.h"
#include "orbit_bench_tree.h"
#include "orbit_cli.h"
#include "orbit_err.h"
#include "orbit_log.h"

static const orbit_opt_t opts[] = {
    {"json", NULL, "print JSON instead of a table", false},
    {"seconds", "S", "measurement time (default: ingest 5, tree 10)", false},
    {"seed", "S", "seed of the simulated fleet (default 1)", false},
    /* ingest */
    {"nodes", "N",
     "ingest: nodes in the delta stream; ledger: nodes placed on; sched: simulated leaves; plan: "
     "nodes in the view "
     "(default 10000)",
     false},
    {"batch", "B", "ingest: node messages per frame; apply: proposals per entry (default 64)",
     false},
    {"rounds", "R", "ingest: rounds per run, the full-state round included (default 31)", false},
    {"full-every", "K", "ingest: every K-th round is full states (default 30)", false},
    {"mem-nodes", "N", "ingest: nodes for the memory figure, 0 = skip (default 100000)", false},
    {"gpu-fraction", "F", "ingest: share of GPU nodes (default 0.125)", false},
    {"socket", NULL, "ingest: through a shard daemon over tcp loopback instead", false},
    {"window", "W", "ingest --socket: frames in flight (default 256)", false},
    /* tree */
    {"leaves", "N[,N...]", "tree: leaf counts, one run each (default 1000,10000,100000)", false},
    {"leaf-interval-ms", "MS", "tree: leaf send interval (default 1000)", false},
    {"report-interval-ms", "MS", "tree: shard report interval (default 1000)", false},
    {"leaves-per-rack", "N", "tree: leaves per rack shard (default 5000)", false},
    {"racks-per-zone", "N", "tree: rack shards per zone shard (default 10)", false},
    {"converge-timeout-s", "S", "tree: bound on waiting for every leaf alive (default 30 + N/2000)",
     false},
    {"bindir", "DIR",
     "tree, ledger, sched: where orbit-root, orbit-shard, orbit-sim, orbit-sched are (default: "
     "beside me)",
     false},
    {"keep-logs", NULL, "tree, ledger, sched: keep the children's logs (ledger: and data)", false},
    /* ledger */
    {"proposers", "N[,N...]", "ledger: concurrent proposers, one run each (default 1,16,256)",
     false},
    {"failover-proposers", "N", "ledger: proposers during the leader kill, 0 = skip (default 16)",
     false},
    {"restart-entries", "N",
     "ledger: commitments in the ledger before the replica restart, 0 = skip (default 1000000)",
     false},
    {"fill-proposers", "N", "ledger: proposers filling the ledger (default 256)", false},
    {"conns", "C",
     "ledger: pipeline the proposers over C connections (orbit_ledger_pipe), 0 = a thread and "
     "client per proposer (default 0)",
     false},
    {"fill-timeout-s", "S", "ledger: bound on filling; the count reached is reported (default 600)",
     false},
    {"root-args", "'ARGS'",
     "ledger: extra orbit-root flags for every replica, space-separated (e.g. "
     "'--snapshot-threshold 1024')",
     false},
    /* sched, check */
    {"schedulers", "N[,N...]",
     "sched: concurrent orbit-sched processes, one run each (default 1,4)", false},
    {"capsules", "N", "sched, plan: capsules to place (default 40000)", false},
    {"gangs", "N", "sched: gang modules of 8 one-GPU capsules among them (default 10)", false},
    {"workers", "N",
     "sched: proposals in flight per scheduler (its --workers); plan: the planner's window "
     "(default 512)",
     false},
    {"refresh-ms", "MS", "sched: the schedulers' telemetry refresh period (default 1000)", false},
    {"place-timeout-s", "S", "sched: bound on waiting for all placed (default 300)", false},
    {"root", "ENDPOINT[,...]", "check: the root replicas of the cluster to check", false},
    /* apply */
    {"proposals", "N", "apply: proposals to apply (default 500000)", false},
    {"warmup", "N", "apply: proposals before the steady-state figure (default 200000)", false},
    /* plan */
    {"observers", "N", "plan: views that only watch, as other schedulers' would (0..16, default 3)",
     false},
    {NULL, NULL, NULL, false}};

static const orbit_cli_t cli = {"orbit-bench",
                                "Benchmarks: shard ingest throughput and memory; telemetry tree "
                                "freshness and root message rate; ledger commitments/s, latency, "
                                "failover and restart; scheduling placements/s with its invariant "
                                "check (also alone: check --root EPS); state machine apply cost "
                                "per proposal (apply); a scheduler's CPU per capsule placed, in "
                                "process (plan).",
                                "ingest|tree|ledger|sched|check|apply|plan [options]", "bench",
                                opts};

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int u32(zhashx_t *v, const char *name, uint32_t min, uint32_t max, uint32_t *out)
{
    char err[200];
    if (orbit_cli_u32(v, name, min, max, *out, out, err, sizeof err))
        orbit_cli_die(cli.prog, err);
    return 0;
}

static double real(zhashx_t *v, const char *name, double min, double max, double def)
{
    const char *s = orbit_cli_str(v, name);
    if (!s)
        return def;
    char *end, err[200];
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !(d >= min && d <= max)) {
        snprintf(err, sizeof err, "--%s must be a number in %g..%g, not '%s'", name, min, max, s);
        orbit_cli_die(cli.prog, err);
    }
    return d;
}

static void parse_leaves(const char *s, orbit_bench_tree_cfg_t *c)
{
    char err[200];
    if (orbit_bench_parse_counts(s, "leaves", 1, 10000000, c->leaves, ORBIT_BENCH_TREE_COUNTS_MAX,
                                 &c->nleaves, err, sizeof err))
        orbit_cli_die(cli.prog, err);
}

static int run_ingest(zhashx_t *v, bool json)
{
    orbit_bench_ingest_cfg_t c;
    orbit_bench_ingest_cfg_default(&c);
    c.stop = &stop_flag;
    uint32_t seed = 1;
    u32(v, "nodes", 1, 10000000, &c.nodes);
    u32(v, "seconds", 1, 3600, &c.seconds);
    u32(v, "batch", 1, 100000, &c.batch);
    u32(v, "rounds", 2, 100000, &c.rounds);
    u32(v, "full-every", 1, 100000, &c.full_every);
    u32(v, "mem-nodes", 0, 10000000, &c.mem_nodes);
    u32(v, "window", 1, 100000, &c.window);
    u32(v, "seed", 0, UINT32_MAX, &seed);
    c.seed = seed;
    c.gpu_fraction = real(v, "gpu-fraction", 0, 1, c.gpu_fraction);
    c.socket = orbit_cli_flag(v, "socket");
    orbit_bench_ingest_result_t r;
    char err[256] = "";
    int rc = orbit_bench_ingest_run(&c, &r, err, sizeof err);
    if (rc != ORBIT_OK) {
        fprintf(stderr, "orbit-bench: ingest: %s\n", err);
        return 1;
    }
    orbit_bench_ingest_print(&c, &r, json);
    return r.not_applied ? 1 : 0;
}

static int run_tree(zhashx_t *v, bool json)
{
    orbit_bench_tree_cfg_t c;
    orbit_bench_tree_cfg_default(&c);
    c.stop = &stop_flag;
    if (orbit_cli_str(v, "leaves"))
        parse_leaves(orbit_cli_str(v, "leaves"), &c);
    u32(v, "seconds", 1, 3600, &c.seconds);
    u32(v, "leaf-interval-ms", 10, 3600000, &c.leaf_interval_ms);
    u32(v, "report-interval-ms", 10, 3600000, &c.report_interval_ms);
    u32(v, "leaves-per-rack", 1, 10000000, &c.leaves_per_rack_shard);
    u32(v, "racks-per-zone", 1, 100000, &c.racks_per_zone);
    u32(v, "converge-timeout-s", 0, 86400, &c.converge_timeout_s);
    c.bindir = orbit_cli_str(v, "bindir");
    c.keep_logs = orbit_cli_flag(v, "keep-logs");
    orbit_bench_tree_result_t *r = calloc(c.nleaves, sizeof *r);
    if (!r)
        orbit_cli_die(cli.prog, "out of memory");
    int status = 0;
    size_t done = 0;
    for (; done < c.nleaves && !stop_flag; done++) {
        if (!json)
            fprintf(stderr, "orbit-bench: tree with %u leaves...\n", c.leaves[done]);
        if (orbit_bench_tree_run(&c, done, &r[done]) != ORBIT_OK)
            status = 1;
    }
    orbit_bench_tree_print(&c, r, done, json);
    free(r);
    return stop_flag ? 1 : status;
}

static int run_ledger(zhashx_t *v, bool json)
{
    orbit_bench_ledger_cfg_t c;
    orbit_bench_ledger_cfg_default(&c);
    c.stop = &stop_flag;
    char err[256];
    if (orbit_cli_str(v, "proposers") &&
        orbit_bench_ledger_parse_counts(orbit_cli_str(v, "proposers"), &c, err, sizeof err))
        orbit_cli_die(cli.prog, err);
    u32(v, "seconds", 1, 3600, &c.seconds);
    u32(v, "nodes", 1, 10000000, &c.nodes);
    u32(v, "failover-proposers", 0, 4096, &c.failover_proposers);
    u32(v, "restart-entries", 0, 100000000, &c.restart_entries);
    u32(v, "fill-proposers", 1, 4096, &c.fill_proposers);
    u32(v, "fill-timeout-s", 1, 86400, &c.fill_timeout_s);
    u32(v, "conns", 0, 64, &c.conns);
    c.bindir = orbit_cli_str(v, "bindir");
    c.root_args = orbit_cli_str(v, "root-args");
    c.keep_logs = orbit_cli_flag(v, "keep-logs");
    orbit_bench_ledger_result_t *r = calloc(1, sizeof *r);
    if (!r)
        orbit_cli_die(cli.prog, "out of memory");
    int rc = orbit_bench_ledger_run(&c, r);
    orbit_bench_ledger_print(&c, r, json);
    free(r);
    return rc != ORBIT_OK || stop_flag ? 1 : 0;
}

static int run_sched(zhashx_t *v, bool json)
{
    orbit_bench_sched_cfg_t c;
    orbit_bench_sched_cfg_default(&c);
    c.stop = &stop_flag;
    char err[256];
    if (orbit_cli_str(v, "schedulers") &&
        orbit_bench_sched_parse_counts(orbit_cli_str(v, "schedulers"), &c, err, sizeof err))
        orbit_cli_die(cli.prog, err);
    u32(v, "nodes", 1, 1000000, &c.nodes);
    u32(v, "capsules", 1, 10000000, &c.capsules);
    u32(v, "gangs", 0, 100000, &c.gangs);
    u32(v, "workers", 1, 4096, &c.workers);
    u32(v, "refresh-ms", 50, 3600000, &c.refresh_ms);
    u32(v, "place-timeout-s", 1, 86400, &c.place_timeout_s);
    c.bindir = orbit_cli_str(v, "bindir");
    c.keep_logs = orbit_cli_flag(v, "keep-logs");
    orbit_bench_sched_run_t *r = calloc(c.nschedulers, sizeof *r);
    if (!r)
        orbit_cli_die(cli.prog, "out of memory");
    int status = 0;
    size_t done = 0;
    for (; done < c.nschedulers && !stop_flag; done++) {
        if (!json)
            fprintf(stderr, "orbit-bench: sched with %u scheduler(s)...\n", c.schedulers[done]);
        if (orbit_bench_sched_run(&c, done, &r[done]) != ORBIT_OK)
            status = 1;
    }
    orbit_bench_sched_print(&c, r, done, json);
    free(r);
    return stop_flag ? 1 : status;
}

static int run_apply(zhashx_t *v, bool json)
{
    orbit_bench_apply_cfg_t c;
    orbit_bench_apply_cfg_default(&c);
    c.stop = &stop_flag;
    u32(v, "nodes", 1, 10000000, &c.nodes);
    u32(v, "batch", 1, 65536, &c.batch);
    u32(v, "proposals", 1, 100000000, &c.proposals);
    u32(v, "warmup", 0, 100000000, &c.warmup);
    u32(v, "seconds", 0, 86400, &c.seconds);
    orbit_bench_apply_result_t *r = calloc(1, sizeof *r);
    if (!r)
        orbit_cli_die(cli.prog, "out of memory");
    int rc = orbit_bench_apply_run(&c, r);
    orbit_bench_apply_print(&c, r, json);
    free(r);
    return rc != ORBIT_OK || stop_flag ? 1 : 0;
}

static int run_plan(zhashx_t *v, bool json)
{
    orbit_bench_plan_cfg_t c;
    orbit_bench_plan_cfg_default(&c);
    u32(v, "nodes", 1, 1000000, &c.nodes);
    u32(v, "capsules", 1, 10000000, &c.capsules);
    u32(v, "observers", 0, 16, &c.observers);
    u32(v, "workers", 1, 4096, &c.window);
    uint32_t seed = 1;
    u32(v, "seed", 0, UINT32_MAX, &seed);
    c.seed = seed;
    orbit_bench_plan_result_t r;
    int rc = orbit_bench_plan_run(&c, &r);
    orbit_bench_plan_print(&c, &r, json);
    return rc != ORBIT_OK ? 1 : 0;
}

static int run_check(zhashx_t *v, bool json)
{
    const char *roots = orbit_cli_str(v, "root");
    if (!roots)
        orbit_cli_die(cli.prog, "check needs --root ENDPOINT[,...]");
    zsys_init();
    orbit_bench_sched_check_t k;
    int rc = orbit_bench_sched_check(roots, 10000, &k);
    orbit_bench_sched_check_print(&k, json);
    return rc == ORBIT_OK && orbit_bench_sched_check_ok(&k) ? 0 : 1;
}

int main(int argc, char **argv)
{
    char err[256] = "";
    zhashx_t *v = NULL;
    char *pos[4];
    int npos = 0;
    int rc = orbit_cli_parse_mixed(&cli, argc, argv, &v, pos, 4, &npos, err, sizeof err);
    if (rc > 0)
        return 0;
    if (rc < 0)
        orbit_cli_die(cli.prog, err);
    if (npos != 1 ||
        (strcmp(pos[0], "ingest") && strcmp(pos[0], "tree") && strcmp(pos[0], "ledger") &&
         strcmp(pos[0], "sched") && strcmp(pos[0], "check") && strcmp(pos[0], "apply") &&
         strcmp(pos[0], "plan"))) {
        zhashx_destroy(&v);
        orbit_cli_die(cli.prog, "expected one benchmark: ingest, tree, ledger, sched, check, apply "
                                "or plan (see --help)");
    }
    /* Our own handlers: czmq's would only set zsys_interrupted. */
    zsys_handler_set(NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool json = orbit_cli_flag(v, "json");
    int status = !strcmp(pos[0], "ingest")   ? run_ingest(v, json)
                 : !strcmp(pos[0], "tree")   ? run_tree(v, json)
                 : !strcmp(pos[0], "ledger") ? run_ledger(v, json)
                 : !strcmp(pos[0], "sched")  ? run_sched(v, json)
                 : !strcmp(pos[0], "apply")  ? run_apply(v, json)
                 : !strcmp(pos[0], "plan")   ? run_plan(v, json)
                                             : run_check(v, json);
    zhashx_destroy(&v);
    return status;
}
