/* leaf_config: orbit-leaf's flags and ZPL file, on top of orbit_cli. */
#include "leaf_config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "leaf_capsule.h"
#include "leaf_nvml.h"
#include "orbit_cli.h"
#include "orbit_err.h"
#include "orbit_sock.h"

static const orbit_opt_t opts[] = {
    {"node", "NAME", "node name (default: the host name)", ORBIT_OPT_ONCE},
    {"shard", "ENDPOINT[,...]", "shard endpoints, in order of preference (this or --root)",
     ORBIT_OPT_ONCE},
    {"root", "ENDPOINT[,...]",
     "root replica endpoints: find this rack's shards in the topology (needs --label rack=R)",
     ORBIT_OPT_ONCE},
    {"label", "KEY=VALUE", "a label, e.g. rack=r1; added to the file's labels", ORBIT_OPT_MERGE},
    {"interval-ms", "MS", "reporting interval, 10..3600000 (default 1000)", ORBIT_OPT_ONCE},
    {"full-every", "K", "send the full state every K messages, 1..100000 (default 30)",
     ORBIT_OPT_ONCE},
    {"xid-window-s", "S", "a GPU XID keeps it degraded for S seconds (default 600)",
     ORBIT_OPT_ONCE},
    {"xid-critical-window-s", "S", "a critical XID keeps it failed for S seconds (default 3600)",
     ORBIT_OPT_ONCE},
    {"nvml-lib", "PATH", "NVML library (default " ORBIT_LEAF_NVML_DEFAULT_LIB ")", ORBIT_OPT_ONCE},
    {"proc-root", "DIR", "procfs root (default /proc)", ORBIT_OPT_ONCE},
    {"no-capsules", NULL, "with --root: do not run the capsules the ledger places on this node",
     ORBIT_OPT_ONCE},
    {"capsule-log-dir", "DIR",
     "append each capsule's output to DIR/<id with / as +>.log (default: /dev/null)",
     ORBIT_OPT_ONCE},
    {"cgroup-parent", "PATH",
     "cgroup v2 directory for capsule cgroups, relative to the cgroup2 mount or absolute "
     "(default orbit.slice)",
     ORBIT_OPT_ONCE},
    {"no-cgroups", NULL, "run capsules as plain processes, without cgroups", ORBIT_OPT_ONCE},
    {"stop-grace-ms", "MS", "SIGTERM to SIGKILL when stopping a capsule, 1..600000 (default 5000)",
     ORBIT_OPT_ONCE},
    {NULL, NULL, NULL, ORBIT_OPT_ONCE},
};

static const orbit_cli_t cli = {
    .prog = "orbit-leaf",
    .summary = "Collects this node's state (procfs CPU, memory, load, PSI pressure; GPUs via "
               "NVML)\nand pushes deltas to its rack shard. With --root it also runs the "
               "capsules the ledger\nplaces on this node and reports their health; they are "
               "stopped when the leaf exits.\nA --config file holds the same keys under 'leaf'\n"
               "(leaf/shard = ... or leaf/root = ..., leaf/label/rack = r1).",
    .usage = "(--shard ENDPOINT[,...] | --root ENDPOINT[,...] --label rack=R) [options]",
    .section = "leaf",
    .opts = opts,
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return ORBIT_EINVAL;
}

/* A path option (not empty) into *slot, when given. */
static int set_path(char **slot, zhashx_t *v, const char *name, char *err, size_t errlen)
{
    const char *path = orbit_cli_str(v, name);
    if (!path)
        return ORBIT_OK;
    if (!*path)
        return fail(err, errlen, "--%s: empty path", name);
    free(*slot);
    *slot = strdup(path);
    return *slot ? ORBIT_OK : ORBIT_ENOMEM;
}

/* "a,b,c" into cfg->shards, each checked with orbit_endpoint_valid. */
static int set_shards(orbit_leaf_config_t *cfg, const char *list, char *err, size_t errlen)
{
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (cfg->nshards == ORBIT_LEAF_SHARDS_MAX)
            return fail(err, errlen, "--shard: more than %d endpoints", ORBIT_LEAF_SHARDS_MAX);
        char *ep = strndup(p, len);
        if (!ep)
            return ORBIT_ENOMEM;
        cfg->shards[cfg->nshards++] = ep;
        if (!orbit_endpoint_valid(ep))
            return fail(err, errlen, "--shard: malformed endpoint '%s'", ep);
        if (!comma)
            return ORBIT_OK;
        p = comma + 1;
    }
}

/* "a,b,c" root endpoints, each checked, kept as one string. */
static int set_roots(orbit_leaf_config_t *cfg, const char *list, char *err, size_t errlen)
{
    size_t n = 0;
    for (const char *p = list;; n++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *ep = strndup(p, len);
        if (!ep)
            return ORBIT_ENOMEM;
        bool ok = orbit_endpoint_valid(ep);
        if (!ok)
            fail(err, errlen, "--root: malformed endpoint '%s'", ep);
        free(ep);
        if (!ok)
            return ORBIT_EINVAL;
        if (!comma)
            break;
        p = comma + 1;
    }
    cfg->roots = strdup(list);
    return cfg->roots ? ORBIT_OK : ORBIT_ENOMEM;
}

bool orbit_leaf_config_rack(const orbit_leaf_config_t *cfg, char *out, size_t n)
{
    char tmp[ORBIT_LABEL_VALUE_MAX + 1];
    if (!orbit_node_label_get(cfg->labels, "rack", tmp, sizeof tmp) || !tmp[0])
        return false;
    if (out && n)
        snprintf(out, n, "%s", tmp);
    return true;
}

/* One "key=value" (from --label or leaf/label/key = value) into cfg->labels;
 * a later key replaces an earlier one. */
static int add_label(orbit_leaf_config_t *cfg, const char *kv, char *err, size_t errlen)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return fail(err, errlen, "bad label '%s' (want key=value)", kv);
    char key[ORBIT_LABEL_KEY_MAX + 2];
    size_t klen = (size_t)(eq - kv);
    if (klen >= sizeof key)
        klen = sizeof key - 1; /* too long either way: label_set rejects it */
    memcpy(key, kv, klen);
    key[klen] = '\0';
    orbit_node_state_t tmp;
    orbit_node_state_init(&tmp);
    memcpy(tmp.labels, cfg->labels, sizeof tmp.labels);
    if (orbit_node_label_set(&tmp, key, eq + 1) != ORBIT_OK)
        return fail(err, errlen,
                    "bad label '%s' (want key=value, key <= %d and "
                    "value <= %d printable characters, no '=')",
                    kv, ORBIT_LABEL_KEY_MAX, ORBIT_LABEL_VALUE_MAX);
    memcpy(cfg->labels, tmp.labels, sizeof cfg->labels);
    return ORBIT_OK;
}

static int set_labels(orbit_leaf_config_t *cfg, zhashx_t *v, char *err, size_t errlen)
{
    if (!orbit_cli_str(v, "label"))
        return ORBIT_OK;
    /* One by one rather than the ',' joined string: a value may hold ','. */
    zlist_t *labels = orbit_cli_list(v, "label");
    if (!labels)
        return ORBIT_ENOMEM;
    int rc = ORBIT_OK;
    for (const char *kv = zlist_first(labels); kv && rc == ORBIT_OK; kv = zlist_next(labels))
        rc = add_label(cfg, kv, err, errlen);
    zlist_destroy(&labels);
    return rc;
}

static int set_node(orbit_leaf_config_t *cfg, const char *node, char *err, size_t errlen)
{
    if (node) {
        if (!orbit_name_valid(node))
            return fail(err, errlen, "--node: invalid node name '%s' (1..63 of A-Z a-z 0-9 . _ -)",
                        node);
        snprintf(cfg->node, sizeof cfg->node, "%s", node);
        return ORBIT_OK;
    }
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !orbit_name_valid(host))
        return fail(err, errlen, "host name '%s' is not a valid node name; use --node", host);
    memcpy(cfg->node, host, strlen(host) + 1); /* a valid name fits */
    return ORBIT_OK;
}

/* The capsule runner's options; they need --root (capsules come from the ledger). */
static int set_capsules(orbit_leaf_config_t *cfg, zhashx_t *v, bool root, char *err, size_t errlen)
{
    static const char *const need_root[] = {"capsule-log-dir", "cgroup-parent", "no-cgroups",
                                            "stop-grace-ms"};
    for (size_t i = 0; !root && i < sizeof need_root / sizeof need_root[0]; i++)
        if (orbit_cli_str(v, need_root[i]))
            return fail(err, errlen, "--%s needs --root (capsules come from the ledger)",
                        need_root[i]);
    cfg->capsules = root && !orbit_cli_flag(v, "no-capsules");
    cfg->no_cgroups = orbit_cli_flag(v, "no-cgroups");
    if (orbit_cli_u32(v, "stop-grace-ms", 1, ORBIT_LEAF_STOP_GRACE_MAX_MS,
                      ORBIT_LEAF_CAPSULE_GRACE_MS, &cfg->stop_grace_ms, err, errlen) != 0)
        return ORBIT_EINVAL;
    int rc;
    if ((rc = set_path(&cfg->capsule_log_dir, v, "capsule-log-dir", err, errlen)) != ORBIT_OK ||
        (rc = set_path(&cfg->cgroup_parent, v, "cgroup-parent", err, errlen)) != ORBIT_OK)
        return rc;
    struct stat st;
    if (cfg->capsule_log_dir && (stat(cfg->capsule_log_dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        return fail(err, errlen, "--capsule-log-dir: '%s' is not a directory",
                    cfg->capsule_log_dir);
    return ORBIT_OK;
}

/* Everything orbit_cli left as strings, checked and converted (the host
 * name is looked up last, once the flags are known to be good). */
static int apply(orbit_leaf_config_t *cfg, zhashx_t *v, char *err, size_t errlen)
{
    int rc;
    const char *shard = orbit_cli_str(v, "shard");
    bool root_given = orbit_cli_str(v, "root") != NULL;
    if ((shard && (rc = set_shards(cfg, shard, err, errlen)) != ORBIT_OK) ||
        (rc = set_labels(cfg, v, err, errlen)) != ORBIT_OK)
        return rc;
    if (orbit_cli_u32(v, "interval-ms", ORBIT_LEAF_INTERVAL_MIN_MS, ORBIT_LEAF_INTERVAL_MAX_MS,
                      1000, &cfg->interval_ms, err, errlen) != 0 ||
        orbit_cli_u32(v, "full-every", 1, ORBIT_LEAF_FULL_EVERY_MAX, 30, &cfg->full_every, err,
                      errlen) != 0 ||
        orbit_cli_u32(v, "xid-window-s", 1, ORBIT_LEAF_XID_WINDOW_MAX_S, ORBIT_LEAF_XID_WINDOW_S,
                      &cfg->xid_window_s, err, errlen) != 0 ||
        orbit_cli_u32(v, "xid-critical-window-s", 1, ORBIT_LEAF_XID_WINDOW_MAX_S,
                      ORBIT_LEAF_XID_CRITICAL_WINDOW_S, &cfg->xid_critical_window_s, err,
                      errlen) != 0)
        return ORBIT_EINVAL;
    if ((rc = set_path(&cfg->nvml_lib, v, "nvml-lib", err, errlen)) != ORBIT_OK ||
        (rc = set_path(&cfg->proc_root, v, "proc-root", err, errlen)) != ORBIT_OK ||
        (rc = set_path(&cfg->config_file, v, "config", err, errlen)) != ORBIT_OK)
        return rc;
    if ((rc = set_capsules(cfg, v, root_given, err, errlen)) != ORBIT_OK)
        return rc;
    const char *level = orbit_cli_str(v, "log-level");
    if (level)
        cfg->log_level = (orbit_log_level_t)orbit_log_level_parse(level); /* checked by orbit_cli */
    const char *node = orbit_cli_str(v, "node");
    if (node && (rc = set_node(cfg, node, err, errlen)) != ORBIT_OK)
        return rc;
    const char *root = orbit_cli_str(v, "root");
    if (root && cfg->nshards)
        return fail(err, errlen, "--root and --shard exclude each other (give one)");
    if (root && (rc = set_roots(cfg, root, err, errlen)) != ORBIT_OK)
        return rc;
    if (root && !orbit_leaf_config_rack(cfg, NULL, 0))
        return fail(err, errlen, "--root needs this node's rack: --label rack=R");
    if (!cfg->nshards && !root)
        return fail(err, errlen,
                    "--shard or --root is required (this rack's shards, or the root replicas)");
    return node ? ORBIT_OK : set_node(cfg, NULL, err, errlen);
}

void orbit_leaf_config_close(orbit_leaf_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->capsule_log_dir);
    free(cfg->cgroup_parent);
    for (size_t i = 0; i < cfg->nshards; i++)
        free(cfg->shards[i]);
    free(cfg->roots);
    free(cfg->nvml_lib);
    free(cfg->proc_root);
    free(cfg->config_file);
    memset(cfg, 0, sizeof *cfg);
}

int orbit_leaf_config_parse(int argc, char **argv, orbit_leaf_config_t *cfg, char *err,
                            size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->log_level = ORBIT_LOG_INFO;
    if (err && errlen)
        err[0] = '\0';
    zhashx_t *v = NULL;
    int first = argc;
    int rc = orbit_cli_parse(&cli, argc, argv, &v, &first, err, errlen);
    if (rc == ORBIT_CLI_HELP || rc == ORBIT_CLI_VERSION) {
        cfg->help = rc == ORBIT_CLI_HELP;
        cfg->version = rc == ORBIT_CLI_VERSION;
        return ORBIT_OK;
    }
    if (rc != 0)
        return ORBIT_EINVAL;
    if (first < argc)
        rc = fail(err, errlen, "unexpected argument '%s'", argv[first]);
    else
        rc = apply(cfg, v, err, errlen);
    zhashx_destroy(&v);
    return rc;
}
