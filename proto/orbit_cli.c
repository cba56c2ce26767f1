/* orbit_cli: option parsing, config files and the common flags. */
#include "orbit_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* A repeatable option's values are kept twice: joined with ',' under its
 * name (orbit_cli_str) and joined with '\n' under "\n" + name
 * (orbit_cli_list), a key no option can have. */
static void list_key(char *key, size_t size, const char *name)
{
    snprintf(key, size, "\n%s", name);
}

static void append(zhashx_t *v, const char *key, char sep, const char *value)
{
    const char *old = zhashx_lookup(v, key);
    if (!old) {
        zhashx_update(v, key, (void *)value);
        return;
    }
    char *joined = zsys_sprintf("%s%c%s", old, sep, value);
    zhashx_update(v, key, joined);
    zstr_free(&joined);
}

static void set(zhashx_t *v, const orbit_opt_t *o, const char *value)
{
    if (!o->repeat) {
        zhashx_update(v, o->name, (void *)value);
        return;
    }
    char key[80];
    list_key(key, sizeof key, o->name);
    append(v, o->name, ',', value);
    append(v, key, '\n', value);
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

static zhashx_t *values_new(void)
{
    zhashx_t *v = zhashx_new();
    zhashx_set_duplicator(v, dup_str);
    zhashx_set_destructor(v, free_str);
    return v;
}

/* An option the config file may set: the program's own and log-level. */
static const orbit_opt_t *find_in_file(const orbit_cli_t *cli, const char *name)
{
    if (!strcmp(name, "config") || !strcmp(name, "help") || !strcmp(name, "version"))
        return NULL;
    return find(cli, name);
}

/* Move the file's value of o (in fv) into v under the rules of o->repeat. */
static void take_from_file(zhashx_t *v, zhashx_t *fv, const orbit_opt_t *o)
{
    const char *file = zhashx_lookup(fv, o->name);
    if (!file)
        return;
    const char *flag = zhashx_lookup(v, o->name);
    char key[80];
    list_key(key, sizeof key, o->name);
    if (!flag) {
        zhashx_update(v, o->name, (void *)file);
        if (o->repeat)
            zhashx_update(v, key, zhashx_lookup(fv, key));
        return;
    }
    if (o->repeat != ORBIT_OPT_MERGE)
        return;
    char *joined = zsys_sprintf("%s,%s", file, flag);
    char *list =
        zsys_sprintf("%s\n%s", (char *)zhashx_lookup(fv, key), (char *)zhashx_lookup(v, key));
    zhashx_update(v, o->name, joined);
    zhashx_update(v, key, list);
    zstr_free(&joined);
    zstr_free(&list);
}

/* One key of the program's section into fv. */
static int read_key(const orbit_cli_t *cli, const char *file, zconfig_t *c, zhashx_t *fv, char *err,
                    size_t errlen)
{
    const char *name = zconfig_name(c);
    const orbit_opt_t *o = find_in_file(cli, name);
    if (!o) {
        snprintf(err, errlen, "config file '%s': unknown key %s/%.40s", file, cli->section, name);
        return -1;
    }
    if (o->repeat && zconfig_child(c)) {
        /* A section of key = value pairs, e.g. label/rack = r1. */
        for (zconfig_t *kv = zconfig_child(c); kv; kv = zconfig_next(kv)) {
            const char *value = zconfig_value(kv);
            char *pair = zsys_sprintf("%s=%s", zconfig_name(kv), value ? value : "");
            set(fv, o, pair);
            zstr_free(&pair);
        }
        return 0;
    }
    const char *value = zconfig_value(c);
    if (!value || !*value) {
        snprintf(err, errlen, "config file '%s': %s/%s has no value", file, cli->section, name);
        return -1;
    }
    if (!o->arg) {
        bool on = !strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes");
        bool off = !strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no");
        if (!on && !off) {
            snprintf(err, errlen, "config file '%s': %s/%s must be 1 or 0, not '%.40s'", file,
                     cli->section, name, value);
            return -1;
        }
        if (on)
            set(fv, o, "1");
        return 0;
    }
    set(fv, o, value);
    return 0;
}

/* Fill in from the config file what the flags did not set. */
static int load_file(const orbit_cli_t *cli, const char *file, zhashx_t *v, char *err,
                     size_t errlen)
{
    struct stat st;
    if (stat(file, &st) != 0 || access(file, R_OK) != 0) {
        snprintf(err, errlen, "cannot read config file '%s': %s", file, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) { /* czmq would read a directory or a pipe as empty */
        snprintf(err, errlen, "cannot read config file '%s': not a regular file", file);
        return -1;
    }
    /* Not zconfig_load: it leaks its zfile when the text is not ZPL. */
    zchunk_t *text = zchunk_slurp(file, 0);
    zconfig_t *root = text ? zconfig_chunk_load(text) : NULL;
    zchunk_destroy(&text);
    if (!root) {
        snprintf(err, errlen, "cannot read config file '%s': not valid ZPL", file);
        return -1;
    }
    int rc = 0;
    zhashx_t *fv = values_new();
    zconfig_t *section = cli->section ? zconfig_locate(root, cli->section) : NULL;
    for (zconfig_t *c = section ? zconfig_child(section) : NULL; c && rc == 0; c = zconfig_next(c))
        rc = read_key(cli, file, c, fv, err, errlen);
    if (rc == 0) {
        for (const orbit_opt_t *o = cli->opts; o && o->name; o++)
            take_from_file(v, fv, o);
        take_from_file(v, fv, find(cli, "log-level"));
    }
    zhashx_destroy(&fv);
    zconfig_destroy(&root);
    return rc;
}

static int parse(const orbit_cli_t *cli, int argc, char **argv, zhashx_t **values,
                 int *first_positional, char **pos, int maxpos, int *npos, char *err, size_t errlen)
{
    zhashx_t *v = values_new();
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
        if (!o->arg && eq) {
            snprintf(err, errlen, "--%s takes no value", name);
            goto fail;
        }
        if (!strcmp(name, "help")) {
            help(cli);
            zhashx_destroy(&v);
            return ORBIT_CLI_HELP;
        }
        if (!strcmp(name, "version")) {
            printf("%s %s\n", cli->prog, ORBIT_VERSION);
            zhashx_destroy(&v);
            return ORBIT_CLI_VERSION;
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
        }
        set(v, o, value);
    }
    const char *file = zhashx_lookup(v, "config");
    if (file && load_file(cli, file, v, err, errlen) != 0)
        goto fail;
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

zlist_t *orbit_cli_list(zhashx_t *values, const char *name)
{
    char key[80];
    list_key(key, sizeof key, name);
    const char *joined = zhashx_lookup(values, key);
    if (!joined)
        return NULL;
    zlist_t *list = zlist_new();
    if (!list)
        return NULL;
    zlist_autofree(list); /* zlist_append copies */
    char *copy = strdup(joined);
    for (char *p = copy; p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (zlist_append(list, p) != 0) {
            zlist_destroy(&list);
            break;
        }
        p = nl ? nl + 1 : NULL;
    }
    if (!copy)
        zlist_destroy(&list);
    free(copy);
    return list;
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
    /* strtoull alone would take " 5", "+5" and "-5" (as a huge number). */
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || errno || *end || v < min || v > max) {
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
