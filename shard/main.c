/* orbit-shard: parse configuration and run one shard daemon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_cli.h"
#include "orbit_log.h"
#include "orbit_sock.h"
#include "shard_daemon.h"

static const orbit_opt_t opts[] = {
    {"id", "NAME", "shard name, unique in the tree (required)", false},
    {"root", "ENDPOINT[,...]",
     "root replicas: take tier, endpoint and parent from the topology in the ledger "
     "(instead of --tier, --listen, --upstream)",
     false},
    {"tier", "N", "1 = rack shard over leaves (default), 2+ = over shards", false},
    {"listen", "ENDPOINT[,...]", "where children connect (without --root: required)", false},
    {"upstream", "ENDPOINT[,...]", "parent shard or every root replica (without --root: required)",
     false},
    {"interval-ms", "MS", "report interval (default 1000)", false},
    {"suspect-missed", "N", "missed leaf intervals before suspect (default 3)", false},
    {"down-missed", "N", "missed leaf intervals before down (default 10)", false},
    {"ingest-limit", "N", "deltas accepted per second before Overloaded (0 = no limit)", false},
    {"silent-pct", "PCT", "child silence, in % of its interval, before unreachable (150)", false},
    {"warmup-ms", "MS", "after start, send full reports marked warming (default 2 intervals)",
     false},
    {NULL, NULL, NULL, false}};

static const orbit_cli_t cli = {
    "orbit-shard", "Aggregates leaves (tier 1) or shards (tier 2+) and reports upward.",
    "--id NAME (--root ENDPOINT[,...] | --listen ENDPOINT --upstream ENDPOINT[,...]) [options]",
    "shard", opts};

int main(int argc, char **argv)
{
    char err[256] = "";
    zhashx_t *v = NULL;
    int pos;
    int rc = orbit_cli_parse(&cli, argc, argv, &v, &pos, err, sizeof err);
    if (rc > 0)
        return 0;
    if (rc < 0)
        orbit_cli_die(cli.prog, err);
    if (pos < argc) {
        snprintf(err, sizeof err, "unexpected argument '%s'", argv[pos]);
        orbit_cli_die(cli.prog, err);
    }
    orbit_shard_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    const char *id = orbit_cli_str(v, "id");
    if (!id)
        orbit_cli_die(cli.prog, "--id is required");
    if (strlen(id) >= sizeof cfg.id || !orbit_name_valid(id))
        orbit_cli_die(cli.prog, "--id must be 1-63 characters of [A-Za-z0-9._-]");
    snprintf(cfg.id, sizeof cfg.id, "%s", id);
    cfg.listen = orbit_cli_str(v, "listen");
    cfg.upstream = orbit_cli_str(v, "upstream");
    cfg.roots = orbit_cli_str(v, "root");
    if (cfg.roots) {
        /* Discovery mode: the ledger says where this shard listens, at which
         * tier, and where it reports. */
        if (cfg.upstream)
            orbit_cli_die(cli.prog, "--root and --upstream exclude each other (with --root the "
                                    "parent comes from the topology in the ledger)");
        if (cfg.listen)
            orbit_cli_die(cli.prog, "--root and --listen exclude each other (with --root the "
                                    "shard listens on its endpoint declared in the ledger)");
        if (orbit_cli_str(v, "tier"))
            orbit_warn("--tier is ignored with --root: the tier comes from the ledger");
        char *eps[ORBIT_SHARD_UPSTREAMS_MAX];
        int n = 0;
        if (orbit_endpoints_split(cfg.roots, "--root", eps, ORBIT_SHARD_UPSTREAMS_MAX, &n, err,
                                  sizeof err) != 0)
            orbit_cli_die(cli.prog, err);
        for (int i = 0; i < n; i++)
            free(eps[i]);
    } else {
        if (!cfg.listen)
            orbit_cli_die(cli.prog, "--listen is required (or --root)");
        if (!cfg.upstream)
            orbit_cli_die(cli.prog, "--upstream is required (or --root)");
    }
    if (orbit_cli_u32(v, "tier", 1, 8, 1, &cfg.tier, err, sizeof err) ||
        orbit_cli_u32(v, "interval-ms", 10, 3600000, 1000, &cfg.interval_ms, err, sizeof err) ||
        orbit_cli_u32(v, "suspect-missed", 1, 1000, 3, &cfg.nodes.suspect_missed, err,
                      sizeof err) ||
        orbit_cli_u32(v, "down-missed", 2, 100000, 10, &cfg.nodes.down_missed, err, sizeof err) ||
        orbit_cli_u32(v, "ingest-limit", 0, 100000000, 0, &cfg.nodes.ingest_limit, err,
                      sizeof err) ||
        orbit_cli_u32(v, "silent-pct", 101, 100000, 150, &cfg.subtree.silent_pct, err,
                      sizeof err) ||
        orbit_cli_u32(v, "warmup-ms", 0, 3600000, 2 * cfg.interval_ms, &cfg.warmup_ms, err,
                      sizeof err))
        orbit_cli_die(cli.prog, err);
    if (cfg.nodes.down_missed <= cfg.nodes.suspect_missed)
        orbit_cli_die(cli.prog, "--down-missed must be larger than --suspect-missed");
    zsys_set_logident("orbit-shard");
    orbit_shard_t *s = orbit_shard_new(&cfg, err, sizeof err);
    if (!s && zsys_interrupted) { /* SIGTERM while waiting to be declared: a clean stop */
        orbit_info("%s", err);
        zhashx_destroy(&v);
        return 0;
    }
    if (!s)
        orbit_cli_die(cli.prog, err);
    orbit_shard_run(s);
    orbit_shard_destroy(&s);
    zhashx_destroy(&v);
    return 0;
}
