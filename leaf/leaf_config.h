/* leaf_config: orbit-leaf's configuration from flags and a ZPL file (flags win). */
#ifndef ORBIT_LEAF_CONFIG_H
#define ORBIT_LEAF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "orbit_log.h"
#include "orbit_node.h"

#define ORBIT_LEAF_SHARDS_MAX        16
#define ORBIT_LEAF_INTERVAL_MIN_MS   10
#define ORBIT_LEAF_INTERVAL_MAX_MS   3600000u
#define ORBIT_LEAF_FULL_EVERY_MAX    100000u
#define ORBIT_LEAF_XID_WINDOW_MAX_S  604800u /* a week */
#define ORBIT_LEAF_STOP_GRACE_MAX_MS 600000u

/* The command line (orbit_cli: "--flag=value" works too, and --help prints
 * every flag):
 *   orbit-leaf (--shard ENDPOINT[,...] | --root ENDPOINT[,...] --label rack=R)
 *              [--node NAME] [--label KEY=VALUE]...
 *              [--interval-ms MS] [--full-every K] [--xid-window-s S]
 *              [--xid-critical-window-s S] [--nvml-lib PATH]
 *              [--proc-root DIR] [--no-capsules] [--capsule-log-dir DIR]
 *              [--cgroup-parent PATH] [--no-cgroups] [--stop-grace-ms MS]
 *              [--config FILE] [--log-level LEVEL] [--help] [--version]
 * With --root the leaf discovers its shards: it reads the topology from the
 * root replicas and uses its rack's candidates (leaf_agent.h); --root needs
 * a rack label and excludes --shard (from the file too: a flag does not
 * override the other mode's key, both together are an error).
 * With --root the leaf also runs the capsules the ledger places on its node
 * (leaf_exec.h) unless --no-capsules; --capsule-log-dir (an existing
 * directory; default: output to /dev/null), --cgroup-parent, --no-cgroups and
 * --stop-grace-ms (1..600000, default ORBIT_LEAF_CAPSULE_GRACE_MS) configure
 * the capsule runner (leaf_capsule.h) and need --root.
 * The ZPL file holds the same keys under "leaf" (leaf/node, leaf/shard, leaf/root,
 * leaf/interval-ms, leaf/full-every, leaf/xid-window-s,
 * leaf/xid-critical-window-s, leaf/nvml-lib, leaf/proc-root, leaf/no-capsules,
 * leaf/capsule-log-dir, leaf/cgroup-parent, leaf/no-cgroups,
 * leaf/stop-grace-ms, leaf/log-level,
 * and one leaf/label/KEY = VALUE per label); unknown keys are errors. A flag
 * overrides the file's value; flag labels are merged over file labels (same
 * key: the flag wins). */
typedef struct {
    char node[ORBIT_NAME_MAX];           /* default: the host name */
    char *shards[ORBIT_LEAF_SHARDS_MAX]; /* preference order; heap strings */
    size_t nshards;
    char *roots;                    /* --root: comma-separated root endpoints; NULL: --shard */
    char labels[ORBIT_LABELS_MAX];  /* packed "k=v\n", sorted (orbit_node_state_t form) */
    uint32_t interval_ms;           /* default 1000 */
    uint32_t full_every;            /* default 30 */
    uint32_t xid_window_s;          /* default ORBIT_LEAF_XID_WINDOW_S (leaf_nvml.h) */
    uint32_t xid_critical_window_s; /* default ORBIT_LEAF_XID_CRITICAL_WINDOW_S */
    char *nvml_lib;                 /* NULL: libnvidia-ml.so.1 */
    char *proc_root;                /* NULL: /proc */
    char *config_file;              /* NULL: none */
    bool capsules;                  /* run the ledger's capsules: --root without --no-capsules */
    char *capsule_log_dir;          /* NULL: capsule output to /dev/null */
    char *cgroup_parent;            /* NULL: the runner's default (orbit.slice) */
    bool no_cgroups;                /* plain processes, no cgroup probing */
    uint32_t stop_grace_ms;         /* SIGTERM to SIGKILL; default ORBIT_LEAF_CAPSULE_GRACE_MS */
    orbit_log_level_t log_level;    /* default info */
    bool help, version;             /* printed; nothing else is validated then */
} orbit_leaf_config_t;

/* Parse argv into cfg (initialised here; release with
 * orbit_leaf_config_close whatever the result). With --help or --version
 * the text is printed on stdout (orbit_cli) and the result is ORBIT_OK with
 * cfg->help / cfg->version set and the other flags unchecked. --log-level
 * (flag or file) is also applied to orbit_log_level by orbit_cli_parse,
 * before the leaf's own checks.
 * Errors: ORBIT_EINVAL with a one-line reason (no program name, no newline)
 * in err (size errlen): unknown flag, missing value, value out of range,
 * malformed endpoint, invalid node name or label, neither or both of
 * --shard and --root, --root without a rack label, a capsule option
 * without --root, a capsule log directory that is not a directory, unreadable or
 * invalid config file, unknown key in it. ORBIT_ENOMEM. */
int orbit_leaf_config_parse(int argc, char **argv, orbit_leaf_config_t *cfg, char *err,
                            size_t errlen);

/* The value of cfg's rack label copied into out (size n); false when none. */
bool orbit_leaf_config_rack(const orbit_leaf_config_t *cfg, char *out, size_t n);

/* Free what cfg holds and zero it; NULL-safe. */
void orbit_leaf_config_close(orbit_leaf_config_t *cfg);

#endif
