/* orbit-root: parse configuration and run one root replica. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_cli.h"
#include "orbit_log.h"
#include "root_daemon.h"

static const orbit_opt_t opts[] = {
    {"id", "N", "replica id, 1..255 (default 1)", false},
    {"listen", "ENDPOINT[,...]", "where shards and clients connect (required)", false},
    {"data", "DIR", "ledger data directory (with --raft and --peers: runs the Ephemeris)", false},
    {"raft", "HOST:PORT", "where this replica's Raft listens", false},
    {"peers", "ID=HOST:PORT,...", "the initial cluster, used when DIR is empty", false},
    {"join", NULL, "start with an empty DIR and wait to be added (orbitctl ledger members add)",
     false},
    {"cluster", "NAME", "cluster name; a DIR of another cluster is refused (default orbit)", false},
    {"snapshot-threshold", "N",
     "Raft entries between snapshots (default 16384; x1.25, x1.5, x1 for ids 1, 2, 3)", false},
    {"snapshot-mib", "N",
     "MiB of Raft log that bring a snapshot forward (default 64; scaled alike)", false},
    {"history-keep", "N", "committed commitments kept for watch (default 100000)", false},
    {"apply-batch-ms", "MS",
     "how long a follower holds committed entries to apply them in one transaction "
     "(default 100, scaled by (2 + id % 3) / 3)",
     false},
    {"election-ms", "MS",
     "Raft election timeout, randomised between 1x and 2x (default 400; a dead leader is "
     "replaced within 1-3.5x of it)",
     false},
    {"heartbeat-ms", "MS", "Raft heartbeat period, below --election-ms (default 40)", false},
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
    orbit_root_ledger_cfg_t lc;
    memset(&lc, 0, sizeof lc);
    char *peers_storage = NULL;
    const char *data = orbit_cli_str(v, "data"), *raft = orbit_cli_str(v, "raft"),
               *peers = orbit_cli_str(v, "peers");
    bool join = orbit_cli_flag(v, "join");
    if (data || raft || peers || join) {
        if (!data || !raft || (!peers && !join))
            orbit_cli_die(cli.prog, "--data and --raft go with --peers (or --join)");
        if (peers && join)
            orbit_cli_die(cli.prog, "--join and --peers exclude each other");
        uint32_t keep, snap_mib, batch_ms, election_ms, heartbeat_ms;
        if (orbit_cli_u32(v, "snapshot-threshold", 2, 100000000, ORBIT_CONSENSUS_SNAPSHOT_THRESHOLD,
                          &lc.snapshot_threshold, err, sizeof err) ||
            orbit_cli_u32(v, "snapshot-mib", 1, 1u << 20,
                          (uint32_t)(ORBIT_CONSENSUS_SNAPSHOT_BYTES >> 20), &snap_mib, err,
                          sizeof err) ||
            orbit_cli_u32(v, "history-keep", 1, 100000000, 100000, &keep, err, sizeof err) ||
            orbit_cli_u32(v, "apply-batch-ms", 1, 3600000, 100, &batch_ms, err, sizeof err) ||
            orbit_cli_u32(v, "election-ms", 20, 600000, ORBIT_CONSENSUS_ELECTION_MS_DEFAULT,
                          &election_ms, err, sizeof err) ||
            orbit_cli_u32(v, "heartbeat-ms", 5, 600000, ORBIT_CONSENSUS_HEARTBEAT_MS_DEFAULT,
                          &heartbeat_ms, err, sizeof err) ||
            (peers && orbit_root_ledger_parse_peers(peers, &lc, &peers_storage, err, sizeof err)))
            orbit_cli_die(cli.prog, err);
        lc.history_keep = keep;
        lc.apply_batch_ms = batch_ms;
        if (orbit_consensus_check_timers(election_ms, heartbeat_ms, err, sizeof err))
            orbit_cli_die(cli.prog, err); /* before the data directory is touched */
        lc.election_ms = election_ms;
        lc.heartbeat_ms = heartbeat_ms;
        lc.snapshot_bytes = (uint64_t)snap_mib << 20;
        if (!strchr(raft, ':'))
            orbit_cli_die(cli.prog, "--raft wants HOST:PORT");
        lc.id = cfg.id;
        lc.data_dir = data;
        lc.raft = raft;
        lc.cluster = orbit_cli_str(v, "cluster") ? orbit_cli_str(v, "cluster") : "orbit";
        cfg.ledger = &lc;
    }
    zsys_set_logident("orbit-root");
    /* The libuv loop handles SIGINT/SIGTERM; czmq must not install its own.
     * A Raft peer that dies mid-write must cost an EPIPE, not the process. */
    zsys_handler_set(NULL);
    signal(SIGPIPE, SIG_IGN);
    orbit_root_t *r = orbit_root_new(&cfg, err, sizeof err);
    if (!r) {
        fprintf(stderr, "%s: %s\n", cli.prog, err);
        zhashx_destroy(&v);
        free(peers_storage);
        return 1;
    }
    orbit_root_run(r);
    orbit_root_destroy(&r);
    zhashx_destroy(&v);
    free(peers_storage);
    return 0;
}
