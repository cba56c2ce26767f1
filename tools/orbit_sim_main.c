/* orbit-sim: parse the command line and run the leaf simulator. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_cli.h"
#include "orbit_log.h"
#include "orbit_sim.h"

static const orbit_opt_t opts[] = {
    {"leaves", "N", "number of simulated leaves (required)", false},
    {"shard", "ENDPOINT[,...]", "rack shard endpoints; rack k goes to endpoint k mod n", false},
    {"root", "ENDPOINT[,...]",
     "or root replica endpoints: each rack finds its shard in the topology, fails over and "
     "re-homes (one socket per rack, at most 1000 racks)",
     false},
    {"interval-ms", "MS", "each leaf sends once per interval (default 1000)", false},
    {"prefix", "P", "leaf names P-<i>, racks P-r<k> (default sim)", false},
    {"racks", "R", "racks the leaves are spread over (default: one per 40 leaves)", false},
    {"zone", "Z", "value of every leaf's zone label (default zone-1)", false},
    {"sockets", "S", "DEALER sockets (default: one per 1000 leaves, at most 16)", false},
    {"gpu-fraction", "F", "share of leaves with 8 GPUs, 0..1 (default 0.125)", false},
    {"seed", "S", "seed of the fleet's shapes and churn (default 1)", false},
    {"full-every", "K", "every K-th message of a leaf is a full state (default 30)", false},
    {"duration-ms", "MS", "stop after this long (default: until SIGTERM)", false},
    {"stats-ms", "MS", "period of the stats line at info level, 0 = none (default 10000)", false},
    {"reboots-per-hour", "X", "reboots per leaf-hour of simulated time (default 2)", false},
    {"gpu-events-per-hour", "X", "XID/ECC events per GPU-hour (default 0.2)", false},
    {"ledger", "ENDPOINT[,...]",
     "root replica endpoints to learn placements from: capsules placed on the simulated nodes "
     "are reported running until revoked (default: no capsules)",
     false},
    {"print-totals", NULL, "print the fleet's capacity totals as JSON and exit", false},
    {NULL, NULL, NULL, false}};

static const orbit_cli_t cli = {
    "orbit-sim", "Simulates N leaves with realistic churn, sending deltas to rack shards.",
    "--leaves N (--shard ENDPOINT[,...] | --root ENDPOINT[,...]) [options]", "sim", opts};

/* A real number option in [min, max]; def when absent. */
static int opt_double(zhashx_t *v, const char *name, double min, double max, double def,
                      double *out, char *err, size_t errlen)
{
    const char *s = orbit_cli_str(v, name);
    if (!s) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(d) || d < min || d > max) {
        snprintf(err, errlen, "--%s must be a number in %g..%g, not '%s'", name, min, max, s);
        return -1;
    }
    *out = d;
    return 0;
}

static int opt_u64(zhashx_t *v, const char *name, uint64_t def, uint64_t *out, char *err,
                   size_t errlen)
{
    const char *s = orbit_cli_str(v, name);
    if (!s) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        snprintf(err, errlen, "--%s must be an unsigned integer, not '%s'", name, s);
        return -1;
    }
    *out = x;
    return 0;
}

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
        snprintf(err, sizeof err, "unexpected argument '%.60s'", argv[pos]);
        orbit_cli_die(cli.prog, err);
    }

    orbit_sim_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    orbit_sim_model_cfg_default(&cfg.model);
    if (!orbit_cli_str(v, "leaves"))
        orbit_cli_die(cli.prog, "--leaves is required");
    if (orbit_cli_u32(v, "leaves", 1, ORBIT_SIM_NODES_MAX, 1, &cfg.model.nodes, err, sizeof err))
        orbit_cli_die(cli.prog, err);
    uint32_t racks_default = (cfg.model.nodes + 39) / 40;
    if (orbit_cli_u32(v, "interval-ms", 10, 3600000, 1000, &cfg.model.interval_ms, err,
                      sizeof err) ||
        orbit_cli_u32(v, "racks", 1, cfg.model.nodes, racks_default, &cfg.model.racks, err,
                      sizeof err) ||
        orbit_cli_u32(v, "sockets", 1, ORBIT_SIM_SOCKETS_MAX, 0, &cfg.sockets, err, sizeof err) ||
        orbit_cli_u32(v, "full-every", 1, 1000000, 30, &cfg.full_every, err, sizeof err) ||
        orbit_cli_u32(v, "duration-ms", 1, UINT32_MAX, 0, &cfg.duration_ms, err, sizeof err) ||
        orbit_cli_u32(v, "stats-ms", 0, 86400000, 10000, &cfg.stats_ms, err, sizeof err) ||
        opt_double(v, "gpu-fraction", 0.0, 1.0, 0.125, &cfg.model.gpu_fraction, err, sizeof err) ||
        opt_double(v, "reboots-per-hour", 0.0, 3600.0, 2.0, &cfg.model.reboots_per_hour, err,
                   sizeof err) ||
        opt_double(v, "gpu-events-per-hour", 0.0, 3600.0, 0.2, &cfg.model.gpu_events_per_hour, err,
                   sizeof err) ||
        opt_u64(v, "seed", 1, &cfg.model.seed, err, sizeof err))
        orbit_cli_die(cli.prog, err);
    if (orbit_cli_str(v, "prefix"))
        cfg.model.prefix = orbit_cli_str(v, "prefix");
    if (orbit_cli_str(v, "zone"))
        cfg.model.zone = orbit_cli_str(v, "zone");
    if (orbit_sim_model_cfg_check(&cfg.model, err, sizeof err) != 0)
        orbit_cli_die(cli.prog, err);

    if (orbit_cli_flag(v, "print-totals")) {
        orbit_sim_totals_t t;
        orbit_sim_model_totals(&cfg.model, &t);
        printf("{\"nodes\":%" PRIu64 ",\"gpu_nodes\":%" PRIu64 ",\"cpu_capacity_m\":%" PRIu64
               ",\"mem_capacity\":%" PRIu64 ",\"gpu_capacity\":%" PRIu64 "}\n",
               t.nodes, t.gpu_nodes, t.cpu_capacity_m, t.mem_capacity, t.gpu_capacity);
        zhashx_destroy(&v);
        return 0;
    }
    cfg.shards = orbit_cli_str(v, "shard");
    cfg.roots = orbit_cli_str(v, "root");
    cfg.ledger = orbit_cli_str(v, "ledger");
    if (!cfg.shards && !cfg.roots)
        orbit_cli_die(cli.prog, "--shard is required (or --root)");
    if (cfg.shards && cfg.roots)
        orbit_cli_die(cli.prog, "--shard and --root exclude each other (give one)");
    if (cfg.roots && orbit_cli_str(v, "sockets"))
        orbit_cli_die(cli.prog, "--sockets does not apply to --root (one socket per rack)");
    if (cfg.roots && cfg.model.racks > ORBIT_SIM_ROOT_RACKS_MAX) {
        snprintf(err, sizeof err, "--root: at most %d racks (one socket per rack), not %u",
                 ORBIT_SIM_ROOT_RACKS_MAX, cfg.model.racks);
        orbit_cli_die(cli.prog, err);
    }

    zsys_set_logident("orbit-sim");
    /* SIGTERM from here on ends the run cleanly (czmq's handler), even while
     * a large fleet is still being built. */
    zsys_init();
    orbit_sim_t *s = orbit_sim_new(&cfg, err, sizeof err);
    if (!s)
        orbit_cli_die(cli.prog, err);
    orbit_sim_run(s);
    orbit_sim_destroy(&s);
    zhashx_destroy(&v);
    return 0;
}
