/* orbit-root: parse configuration and run one root replica. */
#include <stdio.h>
#include <string.h>

#include "orbit_cli.h"
#include "orbit_log.h"
#include "root_daemon.h"

static const orbit_opt_t opts[] = {
    {"id", "N", "replica id, 1..255 (default 1)", false},
    {"listen", "ENDPOINT[,...]", "where shards and clients connect (required)", false},
    {"silent-pct", "PCT",
     "shard silence, in % of its interval, before its nodes are "
     "unreachable (default 150)",
     false},
    {"detail-timeout-ms", "MS", "how long a node-detail query waits for its shard (2000)", false},
    {NULL, NULL, NULL, false}};

static const orbit_cli_t cli = {"orbit-root",
                                "Root replica: the aggregated root view of the telemetry plane.",
                                "--listen ENDPOINT [options]", "root", opts};

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
    orbit_root_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = orbit_cli_str(v, "listen");
    if (!cfg.listen)
        orbit_cli_die(cli.prog, "--listen is required");
    if (orbit_cli_u32(v, "id", 1, 255, 1, &cfg.id, err, sizeof err) ||
        orbit_cli_u32(v, "silent-pct", 101, 100000, 150, &cfg.view.silent_pct, err, sizeof err) ||
        orbit_cli_u32(v, "detail-timeout-ms", 10, 600000, 2000, &cfg.detail_timeout_ms, err,
                      sizeof err))
        orbit_cli_die(cli.prog, err);
    zsys_set_logident("orbit-root");
    /* The libuv loop handles SIGINT/SIGTERM; czmq must not install its own. */
    zsys_handler_set(NULL);
    orbit_root_t *r = orbit_root_new(&cfg, err, sizeof err);
    if (!r)
        orbit_cli_die(cli.prog, err);
    orbit_root_run(r);
    orbit_root_destroy(&r);
    zhashx_destroy(&v);
    return 0;
}
