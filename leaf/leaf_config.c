/* leaf_config: flag and ZPL parsing for orbit-leaf. */
#include "leaf_config.h"

#include <czmq.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orbit_err.h"
#include "orbit_sock.h"

typedef enum {
    K_NODE,
    K_SHARD,
    K_LABEL,
    K_INTERVAL,
    K_FULL_EVERY,
    K_NVML_LIB,
    K_PROC_ROOT,
    K_CONFIG,
    K_LOG_LEVEL,
    K_HELP,
    K_VERSION,
    K_ROOT,
} setting_t;

typedef struct {
    const char *name;
    setting_t key;
    bool takes_value;
} flag_t;

static const flag_t flags[] = {
    {"node", K_NODE, true},
    {"shard", K_SHARD, true},
    {"label", K_LABEL, true},
    {"interval-ms", K_INTERVAL, true},
    {"full-every", K_FULL_EVERY, true},
    {"nvml-lib", K_NVML_LIB, true},
    {"proc-root", K_PROC_ROOT, true},
    {"config", K_CONFIG, true},
    {"log-level", K_LOG_LEVEL, true},
    {"help", K_HELP, false},
    {"version", K_VERSION, false},
    {"root", K_ROOT, true},
};
#define NFLAGS (sizeof flags / sizeof flags[0])

void orbit_leaf_config_usage(FILE *out)
{
    fputs("usage: orbit-leaf [--node NAME] --shard ENDPOINT[,...] [--label key=value]...\n"
          "                  [--interval-ms MS] [--full-every K] [--nvml-lib PATH]\n"
          "                  [--proc-root DIR] [--config FILE] [--log-level LEVEL]\n"
          "                  [--help] [--version]\n"
          "\n"
          "Collects this node's state (procfs CPU, memory, load, PSI pressure; GPUs via NVML)\n"
          "and pushes deltas to its rack shard.\n"
          "\n"
          "  --node NAME         node name (default: the host name)\n"
          "  --shard LIST        shard endpoints in order of preference (tcp://host:port,...)\n"
          "  --label KEY=VALUE   a label (repeatable; rack and zone are ordinary labels)\n"
          "  --interval-ms MS    reporting interval, 10..3600000 (default 1000)\n"
          "  --full-every K      send the full state every K messages (default 30)\n"
          "  --nvml-lib PATH     NVML library (default libnvidia-ml.so.1)\n"
          "  --proc-root DIR     procfs root (default /proc)\n"
          "  --config FILE       ZPL file with the same keys under 'leaf'\n"
          "                      (leaf/shard, leaf/label/rack = r1, ...); flags override it\n"
          "  --log-level LEVEL   error, warn, info or debug (default info)\n"
          "  --help, --version\n",
          out);
}

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

static const flag_t *flag_find(const char *name, size_t len)
{
    for (size_t i = 0; i < NFLAGS; i++)
        if (strlen(flags[i].name) == len && !strncmp(flags[i].name, name, len))
            return &flags[i];
    return NULL;
}

static int parse_u32(const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
    if (!v || *v < '0' || *v > '9')
        return ORBIT_EINVAL;
    uint64_t n = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return ORBIT_EINVAL;
        n = n * 10 + (uint64_t)(*p - '0');
        if (n > max)
            return ORBIT_EINVAL;
    }
    if (n < min)
        return ORBIT_EINVAL;
    *out = (uint32_t)n;
    return ORBIT_OK;
}

static int set_string(char **slot, const char *v)
{
    char *copy = strdup(v);
    if (!copy)
        return ORBIT_ENOMEM;
    free(*slot);
    *slot = copy;
    return ORBIT_OK;
}

static void shards_clear(orbit_leaf_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nshards; i++)
        free(cfg->shards[i]);
    cfg->nshards = 0;
}

static int set_shards(orbit_leaf_config_t *cfg, const char *list, char *err, size_t errlen)
{
    char *copy = strdup(list);
    if (!copy)
        return ORBIT_ENOMEM;
    char *fresh[ORBIT_LEAF_SHARDS_MAX];
    size_t n = 0;
    int rc = ORBIT_OK;
    const char *p = copy;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == ORBIT_LEAF_SHARDS_MAX) {
            rc = fail(err, errlen, "--shard: more than %d endpoints", ORBIT_LEAF_SHARDS_MAX);
            goto cleanup;
        }
        fresh[n] = strndup(p, len);
        if (!fresh[n]) {
            rc = ORBIT_ENOMEM;
            goto cleanup;
        }
        n++;
        if (!orbit_endpoint_valid(fresh[n - 1])) {
            rc = fail(err, errlen, "--shard: malformed endpoint '%s'", fresh[n - 1]);
            goto cleanup;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    shards_clear(cfg);
    memcpy(cfg->shards, fresh, n * sizeof fresh[0]);
    cfg->nshards = n;
    n = 0;
cleanup:
    for (size_t i = 0; i < n; i++)
        free(fresh[i]);
    free(copy);
    return rc;
}

static int add_label(orbit_leaf_config_t *cfg, const char *key, const char *value,
                     const char *shown, char *err, size_t errlen)
{
    orbit_node_state_t tmp;
    orbit_node_state_init(&tmp);
    memcpy(tmp.labels, cfg->labels, sizeof tmp.labels);
    if (orbit_node_label_set(&tmp, key, value) != ORBIT_OK)
        return fail(err, errlen,
                    "bad label '%s' (want key=value, key <= %d and "
                    "value <= %d printable characters, no '=')",
                    shown, ORBIT_LABEL_KEY_MAX, ORBIT_LABEL_VALUE_MAX);
    memcpy(cfg->labels, tmp.labels, sizeof cfg->labels);
    return ORBIT_OK;
}

static int label_flag(orbit_leaf_config_t *cfg, const char *kv, char *err, size_t errlen)
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
    return add_label(cfg, key, eq + 1, kv, err, errlen);
}

/* Apply one setting (from a flag or the file). */
static int apply(orbit_leaf_config_t *cfg, setting_t k, const char *v, char *err, size_t errlen)
{
    switch (k) {
    case K_NODE:
        if (!orbit_name_valid(v))
            return fail(err, errlen, "--node: invalid node name '%s' (1..63 of A-Z a-z 0-9 . _ -)",
                        v);
        snprintf(cfg->node, sizeof cfg->node, "%s", v);
        return ORBIT_OK;
    case K_SHARD: return set_shards(cfg, v, err, errlen);
    case K_LABEL: return label_flag(cfg, v, err, errlen);
    case K_INTERVAL:
        if (parse_u32(v, ORBIT_LEAF_INTERVAL_MIN_MS, ORBIT_LEAF_INTERVAL_MAX_MS,
                      &cfg->interval_ms) != ORBIT_OK)
            return fail(err, errlen, "--interval-ms: '%s' is not a number in %d..%u", v,
                        ORBIT_LEAF_INTERVAL_MIN_MS, ORBIT_LEAF_INTERVAL_MAX_MS);
        return ORBIT_OK;
    case K_FULL_EVERY:
        if (parse_u32(v, 1, ORBIT_LEAF_FULL_EVERY_MAX, &cfg->full_every) != ORBIT_OK)
            return fail(err, errlen, "--full-every: '%s' is not a number in 1..%u", v,
                        ORBIT_LEAF_FULL_EVERY_MAX);
        return ORBIT_OK;
    case K_NVML_LIB:
        if (!*v)
            return fail(err, errlen, "--nvml-lib: empty path");
        return set_string(&cfg->nvml_lib, v);
    case K_PROC_ROOT:
        if (!*v)
            return fail(err, errlen, "--proc-root: empty path");
        return set_string(&cfg->proc_root, v);
    case K_LOG_LEVEL:
        if (orbit_leaf_log_parse(v, &cfg->log_level) != ORBIT_OK)
            return fail(err, errlen, "--log-level: '%s' is not error, warn, info or debug", v);
        return ORBIT_OK;
    case K_ROOT:
        return fail(err, errlen,
                    "--root: shard discovery through the root is not supported "
                    "yet; use --shard");
    case K_CONFIG:
    case K_HELP:
    case K_VERSION: return ORBIT_OK; /* handled in the first pass */
    }
    return ORBIT_EINVAL;
}

static int load_file(orbit_leaf_config_t *cfg, const char *path, char *err, size_t errlen)
{
    if (access(path, R_OK) != 0)
        return fail(err, errlen, "--config: cannot read '%s': %s", path, strerror(errno));
    zconfig_t *root = zconfig_load(path);
    if (!root)
        return fail(err, errlen, "--config: '%s' is not valid ZPL", path);
    int rc = ORBIT_OK;
    zconfig_t *leaf = zconfig_locate(root, "leaf");
    for (zconfig_t *c = leaf ? zconfig_child(leaf) : NULL; c && rc == ORBIT_OK;
         c = zconfig_next(c)) {
        const char *name = zconfig_name(c);
        const char *value = zconfig_value(c);
        if (!strcmp(name, "label")) {
            for (zconfig_t *l = zconfig_child(c); l && rc == ORBIT_OK; l = zconfig_next(l)) {
                const char *lv = zconfig_value(l);
                rc = add_label(cfg, zconfig_name(l), lv ? lv : "", zconfig_name(l), err, errlen);
            }
            continue;
        }
        const flag_t *f = flag_find(name, strlen(name));
        if (!f || !f->takes_value || f->key == K_CONFIG || f->key == K_LABEL) {
            rc = fail(err, errlen, "--config: '%s': unknown key leaf/%s", path, name);
            break;
        }
        if (!value || !*value) {
            rc = fail(err, errlen, "--config: '%s': leaf/%s has no value", path, name);
            break;
        }
        rc = apply(cfg, f->key, value, err, errlen);
    }
    zconfig_destroy(&root);
    return rc;
}

/* Split "--name[=value]" into its flag and inline value. */
static const flag_t *flag_of(const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    if (strncmp(arg, "--", 2) != 0)
        return NULL;
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    if (eq)
        *inline_value = eq + 1;
    return flag_find(name, len);
}

void orbit_leaf_config_close(orbit_leaf_config_t *cfg)
{
    if (!cfg)
        return;
    shards_clear(cfg);
    free(cfg->nvml_lib);
    free(cfg->proc_root);
    free(cfg->config_file);
    memset(cfg, 0, sizeof *cfg);
}

int orbit_leaf_config_parse(int argc, char **argv, orbit_leaf_config_t *cfg, char *err,
                            size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->interval_ms = 1000;
    cfg->full_every = 30;
    cfg->log_level = ORBIT_LEAF_LOG_INFO;
    if (err && errlen)
        err[0] = '\0';

    /* Pass 1: syntax of every argument, --help/--version, --config. */
    for (int i = 1; i < argc; i++) {
        const char *inline_value;
        const flag_t *f = flag_of(argv[i], &inline_value);
        if (!f) {
            if (!strncmp(argv[i], "--", 2))
                return fail(err, errlen, "unknown flag '%s'", argv[i]);
            return fail(err, errlen, "unexpected argument '%s'", argv[i]);
        }
        if (!f->takes_value) {
            if (inline_value)
                return fail(err, errlen, "--%s takes no value", f->name);
            cfg->help |= f->key == K_HELP;
            cfg->version |= f->key == K_VERSION;
            continue;
        }
        const char *v = inline_value;
        if (!v) {
            if (i + 1 >= argc)
                return fail(err, errlen, "--%s needs a value", f->name);
            v = argv[++i];
        }
        if (f->key == K_CONFIG && set_string(&cfg->config_file, v) != ORBIT_OK)
            return ORBIT_ENOMEM;
    }
    if (cfg->help || cfg->version)
        return ORBIT_OK;

    int rc;
    if (cfg->config_file && (rc = load_file(cfg, cfg->config_file, err, errlen)) != ORBIT_OK)
        return rc;

    /* Pass 2: flags override the file. */
    for (int i = 1; i < argc; i++) {
        const char *inline_value;
        const flag_t *f = flag_of(argv[i], &inline_value);
        if (!f->takes_value)
            continue;
        const char *v = inline_value ? inline_value : argv[++i];
        if ((rc = apply(cfg, f->key, v, err, errlen)) != ORBIT_OK)
            return rc;
    }

    if (!cfg->nshards)
        return fail(err, errlen, "--shard is required (endpoints of this rack's shards)");
    if (!cfg->node[0]) {
        char host[256] = "";
        if (gethostname(host, sizeof host - 1) != 0 || !orbit_name_valid(host))
            return fail(err, errlen, "host name '%s' is not a valid node name; use --node", host);
        snprintf(cfg->node, sizeof cfg->node, "%s", host);
    }
    return ORBIT_OK;
}
