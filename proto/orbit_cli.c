/* orbit_cli: option parsing, config files and the common flags. */
#include "orbit_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_log.h"

static const orbit_opt_t common[] = {
    {"config", "FILE", "read options from a czmq ZPL file (flags override it)", false},
    {"log-level", "LEVEL", "error, warn, info (default) or debug", false},
    {"help", NULL, "print this help and exit", false},
    {"version", NULL, "print the version and exit", false},
    {NULL, NULL, NULL, false}};

static const orbit_opt_t *find(const orbit_cli_t *cli, const char *name)
{
    for (const orbit_opt_t *o = cli->opts; o && o->name; o++)
        if (!strcmp(o->name, name))
            return o;
    for (const orbit_opt_t *o = common; o->name; o++)
        if (!strcmp(o->name, name))
            return o;
    return NULL;
}

static void help(const orbit_cli_t *cli)
{
    printf("Usage: %s %s\n%s\n\nOptions:\n", cli->prog, cli->usage, cli->summary);
    for (int pass = 0; pass < 2; pass++)
        for (const orbit_opt_t *o = pass ? common : cli->opts; o && o->name; o++) {
            char left[64];
            snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
            printf("  %-28s %s%s\n", left, o->help, o->repeat ? " (repeatable)" : "");
        }
}

static int set(zhashx_t *v, const orbit_opt_t *o, const char *value)
{
    const char *old = zhashx_lookup(v, o->name);
    if (old && o->repeat) {
        char *joined = zsys_sprintf("%s,%s", old, value);
        zhashx_update(v, o->name, joined);
        zstr_free(&joined);
    } else {
        zhashx_update(v, o->name, (void *)value);
    }
    return 0;
}

static void free_str(void **item)
{
    free(*item);
    *item = NULL;
}

static void *dup_str(const void *item)
{
    return strdup(item);
}

static int parse(const orbit_cli_t *cli, int argc, char **argv, zhashx_t **values,
                 int *first_positional, char **pos, int maxpos, int *npos, char *err, size_t errlen)
{
    zhashx_t *v = zhashx_new();
    zhashx_set_duplicator(v, dup_str);
    zhashx_set_destructor(v, free_str);
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (pos && strcmp(a, "--") != 0) {
                if (*npos == maxpos) {
                    snprintf(err, errlen, "too many arguments at '%.40s'", a);
                    goto fail;
                }
                pos[(*npos)++] = argv[i];
                continue;
            }
            if (!strcmp(a, "--"))
                i++;
            break;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (n >= sizeof name) {
            snprintf(err, errlen, "unknown option '%.40s'", a);
            goto fail;
        }
        memcpy(name, a + 2, n);
        name[n] = '\0';
        const orbit_opt_t *o = find(cli, name);
        if (!o) {
            snprintf(err, errlen, "unknown option '--%s' (see --help)", name);
            goto fail;
        }
        if (!strcmp(name, "help")) {
            help(cli);
            zhashx_destroy(&v);
            return 1;
        }
        if (!strcmp(name, "version")) {
            printf("%s %s\n", cli->prog, ORBIT_VERSION);
            zhashx_destroy(&v);
            return 1;
        }
        const char *value = "1";
        if (o->arg) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                snprintf(err, errlen, "--%s needs a value (%s)", name, o->arg);
                goto fail;
            }
        } else if (eq) {
            snprintf(err, errlen, "--%s takes no value", name);
            goto fail;
        }
        set(v, o, value);
    }
    const char *file = zhashx_lookup(v, "config");
    if (file) {
        zconfig_t *root = zconfig_load(file);
        if (!root) {
            snprintf(err, errlen, "cannot read config file '%s'", file);
            goto fail;
        }
        for (const orbit_opt_t *o = cli->opts; o && o->name; o++) {
            if (zhashx_lookup(v, o->name))
                continue;
            char path[128];
            snprintf(path, sizeof path, "%s/%s", cli->section, o->name);
            zconfig_t *item = zconfig_locate(root, path);
            if (!item)
                continue;
            if (o->repeat && zconfig_child(item)) {
                /* A section of key = value pairs, e.g. label/rack = r1. */
                for (zconfig_t *c = zconfig_child(item); c; c = zconfig_next(c)) {
                    char *kv = zsys_sprintf("%s=%s", zconfig_name(c),
                                            zconfig_value(c) ? zconfig_value(c) : "");
                    set(v, o, kv);
                    zstr_free(&kv);
                }
            } else if (zconfig_value(item) && *zconfig_value(item)) {
                set(v, o, zconfig_value(item));
            }
        }
        zconfig_destroy(&root);
    }
    const char *level = zhashx_lookup(v, "log-level");
    if (level) {
        int l = orbit_log_level_parse(level);
        if (l < 0) {
            snprintf(err, errlen, "--log-level must be error, warn, info or debug, not '%s'",
                     level);
            goto fail;
        }
        orbit_log_level = (orbit_log_level_t)l;
    }
    *values = v;
    *first_positional = i;
    return 0;
fail:
    zhashx_destroy(&v);
    return -1;
}

int orbit_cli_parse(const orbit_cli_t *cli, int argc, char **argv, zhashx_t **values,
                    int *first_positional, char *err, size_t errlen)
{
    return parse(cli, argc, argv, values, first_positional, NULL, 0, NULL, err, errlen);
}

int orbit_cli_parse_mixed(const orbit_cli_t *cli, int argc, char **argv, zhashx_t **values,
                          char **pos, int maxpos, int *npos, char *err, size_t errlen)
{
    int first;
    *npos = 0;
    return parse(cli, argc, argv, values, &first, pos, maxpos, npos, err, errlen);
}

const char *orbit_cli_str(zhashx_t *values, const char *name)
{
    return zhashx_lookup(values, name);
}

bool orbit_cli_flag(zhashx_t *values, const char *name)
{
    return zhashx_lookup(values, name) != NULL;
}

int orbit_cli_u32(zhashx_t *values, const char *name, uint32_t min, uint32_t max, uint32_t def,
                  uint32_t *out, char *err, size_t errlen)
{
    const char *s = zhashx_lookup(values, name);
    if (!s) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        snprintf(err, errlen, "--%s must be an integer in %u..%u, not '%s'", name, min, max, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

void orbit_cli_die(const char *prog, const char *reason)
{
    fprintf(stderr, "%s: %s\n", prog, reason);
    exit(2);
}
