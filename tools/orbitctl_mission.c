/* orbitctl_mission: missions (submit, status, scale, stop) and quota (grant,
 * show) on the Ephemeris; the contract is in orbitctl_mission.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "orbit_cli.h"
#include "orbit_err.h"
#include "orbit_json.h"
#include "orbit_ledger_client.h"
#include "orbit_names.h"
#include "orbit_node.h"
#include "orbit_selector.h"
#include "orbit_view_client.h"
#include "orbitctl.h"
#include "orbitctl_mission.h"

#define MODULES_MAX 1024 /* modules per mission file */

typedef struct {
    char name[ORBIT_LEDGER_NAME_MAX + 1];
    char *command; /* encoded: compact JSON array text */
    uint32_t count;
    int64_t cpu_m, mem;
    uint32_t gpus;
    int32_t priority;
    bool gang;
    char *selector; /* node_selector text ("" = any node) */
} module_t;

typedef struct {
    char mission[ORBIT_LEDGER_NAME_MAX + 1];
    char principal[ORBIT_LEDGER_NAME_MAX + 1];
    module_t *modules;
    size_t n;
} mission_t;

static void mission_close(mission_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->modules[i].command);
        free(m->modules[i].selector);
    }
    free(m->modules);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------ file parsing */

/* Every key of object o is one of allowed (NULL-terminated). */
static int only_keys(json_t *o, const char *const *allowed, const char *path, char *err,
                     size_t errlen)
{
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        bool ok = false;
        for (int i = 0; allowed[i]; i++)
            ok |= !strcmp(key, allowed[i]);
        if (!ok) {
            snprintf(err, errlen, "%s%s%s: unknown field", path, *path ? "." : "", key);
            return -1;
        }
    }
    return 0;
}

/* Integer o[key] in [min, max] into *out; def when absent and not required. */
static int get_int(json_t *o, const char *key, const char *path, bool required, int64_t min,
                   int64_t max, int64_t def, int64_t *out, char *err, size_t errlen)
{
    json_t *j = json_object_get(o, key);
    const char *dot = *path ? "." : "";
    if (!j) {
        if (required) {
            snprintf(err, errlen, "%s%s%s: missing", path, dot, key);
            return -1;
        }
        *out = def;
        return 0;
    }
    if (!json_is_integer(j)) {
        snprintf(err, errlen, "%s%s%s: must be an integer", path, dot, key);
        return -1;
    }
    json_int_t x = json_integer_value(j);
    if (x < min || x > max) {
        snprintf(err, errlen, "%s%s%s: %" PRId64 " out of range %" PRId64 "..%" PRId64, path, dot,
                 key, (int64_t)x, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

/* Plain name o[key] (required) copied into out. */
static int get_name(json_t *o, const char *key, const char *path, char *out, char *err,
                    size_t errlen)
{
    json_t *j = json_object_get(o, key);
    const char *dot = *path ? "." : "";
    if (!j) {
        snprintf(err, errlen, "%s%s%s: missing", path, dot, key);
        return -1;
    }
    if (!json_is_string(j) || strlen(json_string_value(j)) != json_string_length(j) ||
        !orbit_name_plain_ok(json_string_value(j))) {
        snprintf(err, errlen, "%s%s%s: must be a name of 1..%d characters [A-Za-z0-9._-]", path,
                 dot, key, ORBIT_LEDGER_NAME_MAX);
        return -1;
    }
    snprintf(out, ORBIT_LEDGER_NAME_MAX + 1, "%s", json_string_value(j));
    return 0;
}

/* Digits of the largest index of a module with count capsules. */
static size_t index_digits(uint32_t count)
{
    char buf[16];
    return (size_t)snprintf(buf, sizeof buf, "%u", count ? count - 1 : 0);
}

/* The capsule ids mission/module/0..count-1 fit the id rule. */
static bool capsule_ids_fit(const char *mission, const char *module, uint32_t count)
{
    return strlen(mission) + strlen(module) + 2 + index_digits(count) <= ORBIT_LEDGER_NAME_MAX;
}

/* Validate and encode the argv array j (path names it in errors). */
static int encode_command(json_t *j, const char *path, char **out, char *err, size_t errlen)
{
    if (!j) {
        snprintf(err, errlen, "%s.command: missing", path);
        return -1;
    }
    if (!json_is_array(j)) {
        snprintf(err, errlen, "%s.command: must be an array of strings (argv)", path);
        return -1;
    }
    if (json_array_size(j) == 0) {
        snprintf(err, errlen, "%s.command: empty", path);
        return -1;
    }
    size_t i;
    json_t *a;
    json_array_foreach(j, i, a)
    {
        if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a)) {
            snprintf(err, errlen, "%s.command[%zu]: must be a string without NUL bytes", path, i);
            return -1;
        }
        if (i == 0 && !json_string_length(a)) {
            snprintf(err, errlen, "%s.command[0]: empty program name", path);
            return -1;
        }
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (strlen(s) > ORBIT_LEDGER_COMMAND_MAX) {
        snprintf(err, errlen, "%s.command: longer than %d bytes once encoded", path,
                 ORBIT_LEDGER_COMMAND_MAX);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "node_selector": {"k": "v", ...} (absent: any node) as the ledger's
 * sorted "k=v,..." text (orbit_selector.h). */
static int encode_selector(json_t *j, const char *path, char **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!j)
        return (*out = strdup("")) ? 0 : -1;
    if (!json_is_object(j)) {
        snprintf(err, errlen, "%s.node_selector: must be an object of label values", path);
        return -1;
    }
    size_t n = json_object_size(j), i = 0, len = 1;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *k;
    json_t *x;
    json_object_foreach(j, k, x)
    {
        if (!json_is_string(x)) {
            snprintf(err, errlen, "%s.node_selector.%s: must be a string", path, k);
            free(keys);
            return -1;
        }
        keys[i++] = k;
        len += strlen(k) + strlen(json_string_value(x)) + 2;
    }
    qsort(keys, n, sizeof *keys, cmp_str);
    char *sel = calloc(1, len);
    for (i = 0; sel && i < n; i++) {
        if (i)
            strcat(sel, ",");
        strcat(sel, keys[i]);
        strcat(sel, "=");
        strcat(sel, json_string_value(json_object_get(j, keys[i])));
    }
    free(keys);
    const char *why = "out of memory";
    if (!sel || !orbit_selector_valid(sel, &why)) {
        snprintf(err, errlen, "%s.node_selector: %s", path, why);
        free(sel);
        return -1;
    }
    *out = sel;
    return 0;
}

static int parse_module(json_t *o, const char *mission, const char *path, module_t *m, char *err,
                        size_t errlen)
{
    static const char *const keys[] = {"name",     "command", "count",         "resources",
                                       "priority", "gang",    "node_selector", NULL};
    static const char *const rkeys[] = {"cpu_m", "mem", "gpus", NULL};
    if (!json_is_object(o)) {
        snprintf(err, errlen, "%s: must be an object", path);
        return -1;
    }
    int64_t x;
    if (only_keys(o, keys, path, err, errlen) || get_name(o, "name", path, m->name, err, errlen))
        return -1;
    if (get_int(o, "count", path, true, 1, ORBIT_LEDGER_COUNT_MAX, 0, &x, err, errlen))
        return -1;
    m->count = (uint32_t)x;
    if (!capsule_ids_fit(mission, m->name, m->count)) {
        snprintf(err, errlen,
                 "%s.name: capsule ids \"%s/%s/%u\" would exceed %d characters; shorten the "
                 "mission or module name",
                 path, mission, m->name, m->count - 1, ORBIT_LEDGER_NAME_MAX);
        return -1;
    }
    json_t *r = json_object_get(o, "resources");
    char rpath[96];
    snprintf(rpath, sizeof rpath, "%s.resources", path);
    if (!r) {
        snprintf(err, errlen, "%s: missing", rpath);
        return -1;
    }
    if (!json_is_object(r)) {
        snprintf(err, errlen, "%s: must be an object", rpath);
        return -1;
    }
    if (only_keys(r, rkeys, rpath, err, errlen) ||
        get_int(r, "cpu_m", rpath, false, 0, ORBIT_LEDGER_CPU_MAX_M, 0, &m->cpu_m, err, errlen) ||
        get_int(r, "mem", rpath, false, 0, ORBIT_LEDGER_MEM_MAX, 0, &m->mem, err, errlen) ||
        get_int(r, "gpus", rpath, false, 0, ORBIT_LEDGER_GPUS_MAX, 0, &x, err, errlen))
        return -1;
    m->gpus = (uint32_t)x;
    if (get_int(o, "priority", path, false, INT32_MIN, INT32_MAX, 0, &x, err, errlen))
        return -1;
    m->priority = (int32_t)x;
    json_t *g = json_object_get(o, "gang");
    if (g && !json_is_boolean(g)) {
        snprintf(err, errlen, "%s.gang: must be true or false", path);
        return -1;
    }
    m->gang = g && json_is_true(g);
    if (encode_selector(json_object_get(o, "node_selector"), path, &m->selector, err, errlen))
        return -1;
    return encode_command(json_object_get(o, "command"), path, &m->command, err, errlen);
}

/* Parse and validate FILE into m; on failure m is closed and err says
 * "FILE: path: reason". */
static int mission_load(const char *file, mission_t *m, char *err, size_t errlen)
{
    static const char *const keys[] = {"mission", "principal", "modules", NULL};
    char why[384] = "";
    json_error_t je;
    memset(m, 0, sizeof *m);
    json_t *j = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        snprintf(err, errlen, "%s:%d: %s", file, je.line, je.text);
        return -1;
    }
    int rc = -1;
    json_t *mods;
    if (!json_is_object(j)) {
        snprintf(why, sizeof why, "(top): must be an object");
        goto out;
    }
    if (only_keys(j, keys, "", why, sizeof why) ||
        get_name(j, "mission", "", m->mission, why, sizeof why) ||
        get_name(j, "principal", "", m->principal, why, sizeof why))
        goto out;
    mods = json_object_get(j, "modules");
    if (!mods) {
        snprintf(why, sizeof why, "modules: missing");
        goto out;
    }
    if (!json_is_array(mods) || !json_array_size(mods)) {
        snprintf(why, sizeof why, "modules: must be a non-empty array");
        goto out;
    }
    if (json_array_size(mods) > MODULES_MAX) {
        snprintf(why, sizeof why, "modules: more than %d", MODULES_MAX);
        goto out;
    }
    m->modules = calloc(json_array_size(mods), sizeof *m->modules);
    if (!m->modules) {
        snprintf(why, sizeof why, "out of memory");
        goto out;
    }
    size_t i;
    json_t *o;
    json_array_foreach(mods, i, o)
    {
        char path[32];
        snprintf(path, sizeof path, "modules[%zu]", i);
        m->n = i + 1;
        if (parse_module(o, m->mission, path, &m->modules[i], why, sizeof why))
            goto out;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(m->modules[k].name, m->modules[i].name)) {
                snprintf(why, sizeof why, "%s.name: \"%s\" already used by modules[%zu]", path,
                         m->modules[i].name, k);
                goto out;
            }
    }
    rc = 0;
out:
    if (rc) {
        snprintf(err, errlen, "%s: %s", file, why);
        mission_close(m);
    }
    json_decref(j);
    return rc;
}

/* ------------------------------------------------------------ ledger helpers */

/* get KEY: ORBIT_OK with *val (the parsed JSON object) and *index,
 * ORBIT_ENOTFOUND, or another error with err set. */
static int ledger_get(orbit_ledger_client_t *c, const char *key, int timeout, json_t **val,
                      uint64_t *index, char *err, size_t errlen)
{
    char *text = NULL;
    *val = NULL;
    int rc = orbit_ledger_client_get(c, key, false, timeout, &text, index, err, errlen);
    if (rc != ORBIT_OK)
        return rc;
    json_error_t je;
    *val = json_loads(text, 0, &je);
    free(text);
    if (!*val) {
        snprintf(err, errlen, "get %s: unreadable answer (%s)", key, je.text);
        return ORBIT_EIO;
    }
    return ORBIT_OK;
}

/* Propose cm (under pre, may be NULL) and describe the outcome as JSON in
 * *oj (the outcome message's fields) and a human line in line. Returns 0 if
 * committed, 1 if not (or on a transport failure, then *oj is NULL, err is
 * set and line says "not proposed: <err>"). */
static int propose(orbit_ledger_client_t *c, Orbit__Ledger__Commitment *cm,
                   Orbit__Ledger__Precondition *pre, int timeout, json_t **oj, char *line,
                   size_t linelen, char *err, size_t errlen)
{
    Orbit__Ledger__Outcome *o = NULL;
    *oj = NULL;
    if (orbit_ledger_client_propose(c, cm, pre, timeout, &o, err, errlen) != ORBIT_OK) {
        snprintf(line, linelen, "not proposed: %s", err);
        return 1;
    }
    *oj = orbit_json_from_pb(&o->base);
    int status = orbitctl_outcome_line(o, line, linelen) ? 0 : 1;
    orbit__ledger__outcome__free_unpacked(o, NULL);
    return status;
}

/* The modules of mission ever named in the ledger (adjusted or revoked),
 * from a watch from index 1 with prefix "module/<mission>/", in first-seen
 * order, into names (a list of strdup'd strings, autofree). */
static int mission_modules(orbit_ledger_client_t *c, const char *mission, int timeout,
                           zlist_t *names, char *err, size_t errlen)
{
    char prefix[ORBIT_LEDGER_NAME_MAX + 16];
    snprintf(prefix, sizeof prefix, "module/%s/", mission);
    uint64_t next = 1;
    for (;;) {
        Orbit__Ledger__WatchRequest w = ORBIT__LEDGER__WATCH_REQUEST__INIT;
        w.from_index = next;
        w.prefix = prefix;
        Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
        req.op_case = ORBIT__LEDGER__REQUEST__OP_WATCH;
        req.watch = &w;
        Orbit__Ledger__Reply *r = NULL;
        int rc = orbit_ledger_client_call(c, &req, timeout, &r);
        if (rc != ORBIT_OK) {
            snprintf(err, errlen, "watch %s: no root replica answered (%s)", prefix,
                     orbit_strerror(rc));
            return 1;
        }
        if (r->error || r->has_compacted_index) {
            if (r->error)
                snprintf(err, errlen, "watch %s: %s", prefix, r->error);
            else
                snprintf(err, errlen,
                         "the ledger history of mission %s is compacted (up to index %" PRIu64
                         "); name its modules with --module",
                         mission, r->compacted_index);
            orbit__ledger__reply__free_unpacked(r, NULL);
            return 1;
        }
        for (size_t i = 0; i < r->n_items; i++) {
            const Orbit__Ledger__Commitment *cm =
                r->items[i]->proposal ? r->items[i]->proposal->commitment : NULL;
            const char *name = NULL;
            if (cm && cm->kind_case == ORBIT__LEDGER__COMMITMENT__KIND_MODULE_ADJUSTMENT)
                name = cm->module_adjustment->module;
            else if (cm && cm->kind_case == ORBIT__LEDGER__COMMITMENT__KIND_REVOCATION &&
                     cm->revocation->what->kind == ORBIT__LEDGER__REF_KIND__REF_MODULE) {
                const char *slash = strchr(cm->revocation->what->key, '/');
                name = slash ? slash + 1 : NULL;
            }
            bool seen = false;
            for (const char *s = zlist_first(names); s && name; s = zlist_next(names))
                seen |= !strcmp(s, name);
            if (name && !seen)
                zlist_append(names, (void *)name);
        }
        bool more = r->n_items > 0 && r->has_next_index && r->next_index > next;
        if (more)
            next = r->next_index;
        orbit__ledger__reply__free_unpacked(r, NULL);
        if (!more)
            return 0;
    }
}

/* Module names from --module (repeatable), or from the ledger's history. */
static zlist_t *module_names(zhashx_t *v, orbit_ledger_client_t *c, const char *mission,
                             int timeout, char *err, size_t errlen, int *status)
{
    zlist_t *names = orbit_cli_list(v, "module");
    if (names) {
        for (const char *s = zlist_first(names); s; s = zlist_next(names))
            if (!orbit_name_plain_ok(s)) {
                snprintf(err, errlen, "--module: '%s' is not a valid module name", s);
                zlist_destroy(&names);
                *status = 2;
                return NULL;
            }
        return names;
    }
    names = zlist_new();
    if (!names) {
        snprintf(err, errlen, "out of memory");
        *status = 1;
        return NULL;
    }
    zlist_autofree(names);
    if (mission_modules(c, mission, timeout, names, err, errlen)) {
        zlist_destroy(&names);
        *status = 1;
        return NULL;
    }
    if (!zlist_size(names)) {
        snprintf(err, errlen, "no such mission: %s (no module was ever submitted)", mission);
        zlist_destroy(&names);
        *status = 1;
        return NULL;
    }
    return names;
}

/* ------------------------------------------------------------ submit */

/* The largest capacities of any node in the root view. */
/* Every node row of the root view (*r, free with
 * orbit__view_reply__free_unpacked). */
static int view_rows(zhashx_t *v, int timeout, Orbit__ViewReply **r, char *err, size_t errlen)
{
    const char *roots = orbit_cli_str(v, "root");
    orbit_view_client_t *vc = orbit_view_client_new(roots ? roots : DEFAULT_ROOTS, err, errlen);
    if (!vc)
        return 1;
    Orbit__ViewQuery q = ORBIT__VIEW_QUERY__INIT;
    q.kind = ORBIT__QUERY_KIND__Q_NODES;
    int rc = orbit_view_client_query(vc, &q, timeout, r);
    orbit_view_client_destroy(&vc);
    if (rc != ORBIT_OK) {
        snprintf(err, errlen,
                 "cannot reach the root view at %s (%s); refusing to submit unchecked "
                 "(--no-view-check to submit anyway)",
                 roots ? roots : DEFAULT_ROOTS, orbit_strerror(rc));
        return 1;
    }
    if ((*r)->error) {
        snprintf(err, errlen, "root view: %s (--no-view-check to submit anyway)", (*r)->error);
        orbit__view_reply__free_unpacked(*r, NULL);
        *r = NULL;
        return 1;
    }
    return 0;
}

/* True when the row's labels carry every label of selector sel. */
static bool row_selected(const Orbit__NodeRow *w, const char *sel)
{
    if (!sel || !*sel)
        return true;
    char labels[ORBIT_LABELS_MAX * 2] = "";
    size_t u = 0;
    for (size_t i = 0; i < w->n_labels && u < sizeof labels; i++)
        u += (size_t)snprintf(labels + u, sizeof labels - u, "%s=%s\n", w->labels[i]->key,
                              w->labels[i]->value);
    return orbit_selector_matches(sel, labels);
}

/* Every module fits on the largest node of the view that its selector
 * admits (per resource, whatever the node's status). */
static int check_view(zhashx_t *v, const char *file, const mission_t *m, int timeout, char *err,
                      size_t errlen)
{
    Orbit__ViewReply *r = NULL;
    if (view_rows(v, timeout, &r, err, errlen))
        return 1;
    int status = 0;
    for (size_t i = 0; i < m->n && !status; i++) {
        const module_t *x = &m->modules[i];
        int64_t cpu_m = 0, mem = 0;
        uint32_t gpus = 0;
        size_t nodes = 0;
        for (size_t k = 0; k < r->n_rows; k++) {
            const Orbit__NodeRow *w = r->rows[k];
            if (!row_selected(w, x->selector))
                continue;
            nodes++;
            if (w->cpu_capacity_m > cpu_m)
                cpu_m = w->cpu_capacity_m;
            if (w->mem_capacity > mem)
                mem = w->mem_capacity;
            if (w->gpu_capacity > gpus)
                gpus = w->gpu_capacity;
        }
        const char *what = NULL;
        int64_t want = 0, have = 0;
        if (x->gpus > gpus)
            what = "gpus", want = x->gpus, have = gpus;
        else if (x->cpu_m > cpu_m)
            what = "cpu_m", want = x->cpu_m, have = cpu_m;
        else if (x->mem > mem)
            what = "mem", want = x->mem, have = mem;
        if (!nodes && x->selector[0]) {
            snprintf(err, errlen, "%s: modules[%zu].node_selector: no node of %zu has labels %s",
                     file, i, r->n_rows, x->selector);
            status = 1;
        } else if (what && !nodes) {
            snprintf(err, errlen,
                     "%s: modules[%zu].resources.%s: %" PRId64
                     " impossible: the root view has no nodes",
                     file, i, what, want);
            status = 1;
        } else if (what) {
            snprintf(err, errlen,
                     "%s: modules[%zu].resources.%s: %" PRId64
                     " impossible: no node of %zu%s has more than %" PRId64,
                     file, i, what, want, nodes, x->selector[0] ? " selected" : "", have);
            status = 1;
        }
    }
    orbit__view_reply__free_unpacked(r, NULL);
    return status;
}

static int check_principal(orbit_ledger_client_t *c, const char *file, const char *principal,
                           int timeout, char *err, size_t errlen)
{
    char key[ORBIT_LEDGER_NAME_MAX + 16];
    snprintf(key, sizeof key, "principal/%s", principal);
    json_t *val = NULL;
    int rc = ledger_get(c, key, timeout, &val, NULL, err, errlen);
    if (rc != ORBIT_OK && rc != ORBIT_ENOTFOUND)
        return 1;
    bool granted = val && json_is_true(json_object_get(val, "granted"));
    json_decref(val);
    if (!granted) {
        snprintf(err, errlen, "%s: principal: %s has no quota grant (orbitctl quota grant %s ...)",
                 file, principal, principal);
        return 1;
    }
    return 0;
}

static int cmd_submit(zhashx_t *v, orbit_ledger_client_t *c, const char *file, int timeout,
                      char *err, size_t errlen)
{
    mission_t m;
    if (mission_load(file, &m, err, errlen))
        return 1;
    int status = 1;
    json_t *results = NULL;
    if (check_principal(c, file, m.principal, timeout, err, errlen))
        goto out;
    if (!orbit_cli_flag(v, "no-view-check") && check_view(v, file, &m, timeout, err, errlen))
        goto out;
    results = json_array();
    int failed = 0;
    for (size_t i = 0; i < m.n; i++) {
        const module_t *x = &m.modules[i];
        Orbit__Ledger__Resources r = ORBIT__LEDGER__RESOURCES__INIT;
        r.has_cpu_m = r.has_mem = r.has_gpus = true;
        r.cpu_m = x->cpu_m;
        r.mem = x->mem;
        r.gpus = x->gpus;
        Orbit__Ledger__ModuleSpec s = ORBIT__LEDGER__MODULE_SPEC__INIT;
        s.has_count = s.has_priority = s.has_gang = true;
        s.count = x->count;
        s.resources = &r;
        s.command = x->command;
        s.priority = x->priority;
        s.gang = x->gang;
        s.principal = m.principal;
        s.node_selector = x->selector;
        Orbit__Ledger__ModuleAdjustment ma = ORBIT__LEDGER__MODULE_ADJUSTMENT__INIT;
        ma.mission = m.mission;
        ma.module = (char *)x->name;
        ma.adjustment = &s;
        Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
        cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_MODULE_ADJUSTMENT;
        cm.module_adjustment = &ma;
        json_t *oj = NULL;
        char line[320] = "", why[256] = "";
        int st = propose(c, &cm, NULL, timeout, &oj, line, sizeof line, why, sizeof why);
        failed += st;
        if (!json_out)
            printf("%s/%s: %s\n", m.mission, x->name, line);
        json_array_append_new(results, json_pack("{s:s,s:o}", "module", x->name, "outcome",
                                                 oj ? oj : json_pack("{s:s}", "error", why)));
    }
    if (json_out) {
        dump(json_pack("{s:s,s:s,s:b,s:o}", "mission", m.mission, "principal", m.principal,
                       "committed", !failed, "modules", results));
        results = NULL;
    }
    status = failed ? 1 : 0;
    if (failed)
        snprintf(err, errlen, "%d of %zu modules not committed", failed, m.n);
out:
    json_decref(results);
    mission_close(&m);
    return status;
}

/* ------------------------------------------------------------ status */

/* Argv of an encoded command as one line (the stored text if it is not an
 * encoded argv). Caller frees. */
static char *command_line(const char *encoded)
{
    json_t *a = encoded ? json_loads(encoded, 0, NULL) : NULL;
    if (!json_is_array(a)) {
        json_decref(a);
        return strdup(encoded ? encoded : "-");
    }
    size_t len = 1, i;
    json_t *e;
    json_array_foreach(a, i, e) len += strlen(json_string_value(e) ? json_string_value(e) : "") + 1;
    char *s = calloc(1, len);
    json_array_foreach(a, i, e)
    {
        if (!s)
            break;
        if (i)
            strcat(s, " ");
        strcat(s, json_string_value(e) ? json_string_value(e) : "");
    }
    json_decref(a);
    return s;
}

/* What the nodes report about the capsules of mission/module (a Q_CAPSULES
 * query of the root view): capsule id -> {"node", "state", "exit_code",
 * "reason"}. NULL when the view cannot be asked (status then shows
 * placements only). */
static json_t *capsule_health(zhashx_t *v, const char *mission, const char *module, int timeout)
{
    const char *roots = orbit_cli_str(v, "root");
    char err[200], prefix[2 * ORBIT_LEDGER_NAME_MAX + 4];
    orbit_view_client_t *vc = orbit_view_client_new(roots ? roots : DEFAULT_ROOTS, err, sizeof err);
    if (!vc)
        return NULL;
    snprintf(prefix, sizeof prefix, "%s/%s/", mission, module);
    Orbit__ViewQuery q = ORBIT__VIEW_QUERY__INIT;
    q.kind = ORBIT__QUERY_KIND__Q_CAPSULES;
    q.capsule_prefix = prefix;
    Orbit__ViewReply *r = NULL;
    int rc = orbit_view_client_query(vc, &q, timeout, &r);
    orbit_view_client_destroy(&vc);
    if (rc != ORBIT_OK)
        return NULL;
    json_t *h = r->error ? NULL : json_object();
    for (size_t i = 0; h && i < r->n_capsules; i++) {
        const Orbit__CapsuleRow *row = r->capsules[i];
        const Orbit__CapsuleHealth *ch = row->health;
        json_t *e = json_pack("{s:s,s:s}", "node", row->node, "state",
                              orbit_capsule_state_name((orbit_capsule_state_t)ch->state));
        if (!e)
            continue;
        if (row->node_status != ORBIT__NODE_STATUS__ALIVE)
            json_object_set_new(
                e, "node_status",
                json_string(row->node_status == ORBIT__NODE_STATUS__SUSPECT ? "suspect"
                            : row->node_status == ORBIT__NODE_STATUS__DOWN  ? "down"
                                                                            : "unreachable"));
        if (ch->has_exit_code)
            json_object_set_new(e, "exit_code", json_integer(ch->exit_code));
        if (ch->reason && ch->reason[0])
            json_object_set_new(e, "reason", json_string(ch->reason));
        /* Several nodes may report one id (an old placement's node still
         * stopping it): the caller keeps the one its placement names. */
        char key[ORBIT_CAPSULE_ID_MAX + ORBIT_NAME_MAX + 2];
        snprintf(key, sizeof key, "%s@%s", ch->id, row->node);
        json_object_set_new(h, key, e);
    }
    orbit__view_reply__free_unpacked(r, NULL);
    return h;
}

/* Status of one module as JSON (state "active" or "stopped"). */
static int module_status(zhashx_t *v, orbit_ledger_client_t *c, const char *mission,
                         const char *module, int timeout, json_t **out, char *err, size_t errlen)
{
    char key[2 * ORBIT_LEDGER_NAME_MAX + 16];
    snprintf(key, sizeof key, "module/%s/%s", mission, module);
    json_t *val = NULL;
    uint64_t index = 0;
    int rc = ledger_get(c, key, timeout, &val, &index, err, errlen);
    if (rc == ORBIT_ENOTFOUND) {
        *out = json_pack("{s:s,s:s}", "module", module, "state", "stopped");
        return 0;
    }
    if (rc != ORBIT_OK)
        return 1;
    json_t *spec = json_object_get(val, "spec");
    uint32_t count = (uint32_t)json_integer_value(json_object_get(spec, "count"));
    json_t *o =
        json_pack("{s:s,s:s,s:I}", "module", module, "state", "active", "index", (json_int_t)index);
    json_object_set_new(o, "spec", spec ? json_incref(spec) : json_object());
    json_t *caps = json_array();
    json_t *health = capsule_health(v, mission, module, timeout);
    int placed = 0, running = 0;
    for (uint32_t i = 0; i < count; i++) {
        char capsule[ORBIT_LEDGER_NAME_MAX * 2 + 16], pkey[ORBIT_LEDGER_NAME_MAX * 2 + 32];
        snprintf(capsule, sizeof capsule, "%s/%s/%u", mission, module, i);
        snprintf(pkey, sizeof pkey, "placement/%s", capsule);
        json_t *p = NULL;
        rc = ledger_get(c, pkey, timeout, &p, NULL, err, errlen);
        if (rc != ORBIT_OK && rc != ORBIT_ENOTFOUND) {
            json_decref(health);
            json_decref(caps);
            json_decref(o);
            json_decref(val);
            return 1;
        }
        json_t *node = p ? json_object_get(p, "node") : NULL;
        placed += node != NULL;
        /* The capsule's state: pending (not placed), placed (no report from
         * its node yet), or what its node reports. */
        json_t *rep = NULL;
        if (node && health) {
            char hkey[sizeof capsule + ORBIT_NAME_MAX + 2];
            snprintf(hkey, sizeof hkey, "%s@%s", capsule, json_string_value(node));
            rep = json_object_get(health, hkey);
        }
        json_t *cj = json_pack("{s:s,s:s,s:O}", "capsule", capsule, "state",
                               !node ? "pending"
                               : rep ? json_string_value(json_object_get(rep, "state"))
                                     : "placed",
                               "node", node ? node : json_null());
        if (cj && rep) {
            const char *k;
            json_t *x;
            json_object_foreach(rep, k, x) if (strcmp(k, "node") && strcmp(k, "state"))
                json_object_set(cj, k, x);
            running += !strcmp(json_string_value(json_object_get(rep, "state")), "running");
        }
        json_array_append_new(caps, cj);
        json_decref(p);
    }
    json_decref(health);
    json_object_set_new(o, "placed", json_integer(placed));
    json_object_set_new(o, "running", json_integer(running));
    json_object_set_new(o, "capsules", caps);
    json_decref(val);
    *out = o;
    return 0;
}

static void print_module(const json_t *m)
{
    const char *name = json_string_value(json_object_get(m, "module"));
    if (!strcmp(json_string_value(json_object_get(m, "state")), "stopped")) {
        printf("module %s: stopped\n\n", name);
        return;
    }
    json_t *spec = json_object_get(m, "spec"), *r = json_object_get(spec, "resources");
    char *cmd = command_line(json_string_value(json_object_get(spec, "command")));
    printf("module %s: %d of %d placed, %d running (desired state at ledger index %" PRId64 ")\n",
           name, (int)json_integer_value(json_object_get(m, "placed")),
           (int)json_integer_value(json_object_get(spec, "count")),
           (int)json_integer_value(json_object_get(m, "running")),
           (int64_t)json_integer_value(json_object_get(m, "index")));
    printf("  command    %s\n", cmd ? cmd : "?");
    printf("  resources  cpu_m=%" PRId64 " mem=%" PRId64 " gpus=%" PRId64 "\n",
           (int64_t)json_integer_value(json_object_get(r, "cpu_m")),
           (int64_t)json_integer_value(json_object_get(r, "mem")),
           (int64_t)json_integer_value(json_object_get(r, "gpus")));
    printf("  principal  %s, priority %d%s\n",
           json_string_value(json_object_get(spec, "principal"))
               ? json_string_value(json_object_get(spec, "principal"))
               : "-",
           (int)json_integer_value(json_object_get(spec, "priority")),
           json_is_true(json_object_get(spec, "gang")) ? ", gang" : "");
    const char *sel = json_string_value(json_object_get(spec, "node_selector"));
    if (sel && *sel)
        printf("  nodes      with labels %s\n", sel);
    free(cmd);
    printf("  %-40s %-10s %-20s %s\n", "CAPSULE", "STATE", "NODE", "DETAIL");
    size_t i;
    json_t *cp;
    json_array_foreach(json_object_get(m, "capsules"), i, cp)
    {
        json_t *node = json_object_get(cp, "node"), *code = json_object_get(cp, "exit_code");
        const char *reason = json_string_value(json_object_get(cp, "reason"));
        const char *ns = json_string_value(json_object_get(cp, "node_status"));
        char detail[300] = "";
        size_t u = 0;
        if (json_is_integer(code))
            u += (size_t)snprintf(detail + u, sizeof detail - u, "exit %d ",
                                  (int)json_integer_value(code));
        if (reason && u < sizeof detail)
            u += (size_t)snprintf(detail + u, sizeof detail - u, "%s ", reason);
        if (ns && u < sizeof detail)
            snprintf(detail + u, sizeof detail - u, "(node %s)", ns);
        printf("  %-40s %-10s %-20s %s\n", json_string_value(json_object_get(cp, "capsule")),
               json_string_value(json_object_get(cp, "state")),
               json_is_string(node) ? json_string_value(node) : "-", detail);
    }
    printf("\n");
}

static int cmd_status(zhashx_t *v, orbit_ledger_client_t *c, const char *mission, int timeout,
                      char *err, size_t errlen)
{
    int status = 1;
    zlist_t *names = module_names(v, c, mission, timeout, err, errlen, &status);
    if (!names)
        return status;
    json_t *mods = json_array();
    status = 0;
    for (const char *s = zlist_first(names); s; s = zlist_next(names)) {
        json_t *m = NULL;
        if (module_status(v, c, mission, s, timeout, &m, err, errlen)) {
            status = 1;
            break;
        }
        json_array_append_new(mods, m);
    }
    if (!status) {
        if (json_out) {
            dump(json_pack("{s:s,s:o}", "mission", mission, "modules", mods));
            mods = NULL;
        } else {
            printf("mission %s\n\n", mission);
            size_t i;
            json_t *m;
            json_array_foreach(mods, i, m) print_module(m);
        }
    }
    json_decref(mods);
    zlist_destroy(&names);
    return status;
}

/* ------------------------------------------------------------ scale / stop */

static int cmd_scale(orbit_ledger_client_t *c, char **pos, int timeout, char *err, size_t errlen)
{
    const char *mission = pos[2], *module = pos[3];
    if (!orbit_name_plain_ok(mission) || !orbit_name_plain_ok(module)) {
        snprintf(err, errlen, "mission scale: invalid mission or module name");
        return 2;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(pos[4], &end, 10);
    if (!*pos[4] || *end || pos[4][0] == '-' || errno || n > ORBIT_LEDGER_COUNT_MAX) {
        snprintf(err, errlen, "mission scale: COUNT must be 0..%d", ORBIT_LEDGER_COUNT_MAX);
        return 2;
    }
    if (!capsule_ids_fit(mission, module, (uint32_t)n)) {
        snprintf(err, errlen,
                 "mission scale: capsule ids \"%s/%s/%llu\" would exceed %d characters", mission,
                 module, n ? n - 1 : 0, ORBIT_LEDGER_NAME_MAX);
        return 1;
    }
    char key[2 * ORBIT_LEDGER_NAME_MAX + 16];
    snprintf(key, sizeof key, "module/%s/%s", mission, module);
    json_t *val = NULL;
    uint64_t index = 0;
    int rc = ledger_get(c, key, timeout, &val, &index, err, errlen);
    if (rc == ORBIT_ENOTFOUND)
        snprintf(err, errlen, "no such module: %s/%s", mission, module);
    if (rc != ORBIT_OK)
        return 1;
    uint32_t was =
        (uint32_t)json_integer_value(json_object_get(json_object_get(val, "spec"), "count"));
    json_decref(val);
    Orbit__Ledger__ModuleSpec s = ORBIT__LEDGER__MODULE_SPEC__INIT;
    s.has_count = true;
    s.count = (uint32_t)n;
    Orbit__Ledger__ModuleAdjustment ma = ORBIT__LEDGER__MODULE_ADJUSTMENT__INIT;
    ma.mission = (char *)mission;
    ma.module = (char *)module;
    ma.adjustment = &s;
    Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
    cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_MODULE_ADJUSTMENT;
    cm.module_adjustment = &ma;
    /* Fenced on what was read: a module stopped or changed in between is a
     * conflict, never a module recreated from the count alone. */
    Orbit__Ledger__UnchangedSince u = ORBIT__LEDGER__UNCHANGED_SINCE__INIT;
    Orbit__Ledger__UnchangedSince *up = &u;
    u.key = key;
    u.index = index;
    Orbit__Ledger__Precondition pre = ORBIT__LEDGER__PRECONDITION__INIT;
    pre.n_unchanged_since = 1;
    pre.unchanged_since = &up;
    json_t *oj = NULL;
    char line[256] = "";
    int status = propose(c, &cm, &pre, timeout, &oj, line, sizeof line, err, errlen);
    if (!oj)
        return 1;
    if (json_out)
        dump(json_pack("{s:s,s:s,s:i,s:i,s:o}", "mission", mission, "module", module, "from",
                       (int)was, "to", (int)n, "outcome", oj));
    else {
        printf("%s/%s: count %u -> %llu: %s\n", mission, module, was, n, line);
        json_decref(oj);
    }
    if (status)
        snprintf(err, errlen, "%s/%s not scaled (%s)", mission, module, line);
    return status;
}

static int cmd_stop(zhashx_t *v, orbit_ledger_client_t *c, const char *mission, int timeout,
                    char *err, size_t errlen)
{
    if (!orbit_name_plain_ok(mission)) {
        snprintf(err, errlen, "mission stop: invalid mission name '%s'", mission);
        return 2;
    }
    bool named = orbit_cli_str(v, "module") != NULL;
    int status = 1;
    zlist_t *names = module_names(v, c, mission, timeout, err, errlen, &status);
    if (!names)
        return status;
    json_t *results = json_array();
    int failed = 0, stopped = 0;
    status = 0;
    for (const char *s = zlist_first(names); s; s = zlist_next(names)) {
        char key[2 * ORBIT_LEDGER_NAME_MAX + 16], ref[2 * ORBIT_LEDGER_NAME_MAX + 2];
        snprintf(key, sizeof key, "module/%s/%s", mission, s);
        snprintf(ref, sizeof ref, "%s/%s", mission, s);
        json_t *val = NULL;
        int rc = ledger_get(c, key, timeout, &val, NULL, err, errlen);
        json_decref(val);
        if (rc == ORBIT_ENOTFOUND && !named)
            continue; /* stopped before */
        if (rc == ORBIT_ENOTFOUND) {
            snprintf(err, errlen, "no such module: %s", ref);
            failed++;
            if (!json_out)
                printf("%s: not running\n", ref);
            json_array_append_new(results, json_pack("{s:s,s:{s:s}}", "module", s, "outcome",
                                                     "error", "no such module"));
            continue;
        }
        if (rc != ORBIT_OK) {
            status = 1;
            break;
        }
        Orbit__Ledger__Ref what = ORBIT__LEDGER__REF__INIT;
        what.kind = ORBIT__LEDGER__REF_KIND__REF_MODULE;
        what.key = ref;
        Orbit__Ledger__Revocation rv = ORBIT__LEDGER__REVOCATION__INIT;
        rv.what = &what;
        Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
        cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_REVOCATION;
        cm.revocation = &rv;
        json_t *oj = NULL;
        char line[320] = "", why[256] = "";
        int st = propose(c, &cm, NULL, timeout, &oj, line, sizeof line, why, sizeof why);
        failed += st;
        stopped += !st;
        if (!json_out)
            printf("%s: %s\n", ref, line);
        json_array_append_new(results, json_pack("{s:s,s:o}", "module", s, "outcome",
                                                 oj ? oj : json_pack("{s:s}", "error", why)));
    }
    if (!status && json_out) {
        dump(
            json_pack("{s:s,s:i,s:o}", "mission", mission, "stopped", stopped, "modules", results));
        results = NULL;
    } else if (!status && !json_out && !stopped && !failed) {
        printf("mission %s: nothing running\n", mission);
    }
    if (!status && failed) {
        if (failed > 1 || !strstr(err, "no such module"))
            snprintf(err, errlen, "%d module(s) of %s not stopped", failed, mission);
        status = 1;
    }
    json_decref(results);
    zlist_destroy(&names);
    return status;
}

/* The ledger client and per-call timeout of --root, --client-id and
 * --timeout-ms (default 5000 ms). NULL with a one-line reason in err. */
static orbit_ledger_client_t *client_open(zhashx_t *v, uint32_t *timeout, char *err, size_t errlen)
{
    if (orbit_cli_u32(v, "timeout-ms", 1, 600000, 5000, timeout, err, errlen))
        return NULL;
    const char *roots = orbit_cli_str(v, "root");
    return orbit_ledger_client_new(roots ? roots : DEFAULT_ROOTS, orbit_cli_str(v, "client-id"),
                                   err, errlen);
}

int orbitctl_mission(zhashx_t *v, char **pos, int npos, char *err, size_t errlen)
{
    static const char *usage =
        "mission submit FILE | status MISSION [--module M] | scale MISSION MODULE COUNT | "
        "stop MISSION [--module M]";
    if (npos < 2) {
        snprintf(err, errlen, "%s", usage);
        return 2;
    }
    const char *what = pos[1];
    int need = !strcmp(what, "scale") ? 5 : 3;
    if (strcmp(what, "submit") && strcmp(what, "status") && strcmp(what, "scale") &&
        strcmp(what, "stop")) {
        snprintf(err, errlen, "unknown mission command '%s' (%s)", what, usage);
        return 2;
    }
    if (npos != need) {
        if (npos < need)
            snprintf(err, errlen, "mission %s: missing argument (%s)", what, usage);
        else
            snprintf(err, errlen, "unexpected argument '%s'", pos[need]);
        return 2;
    }
    if (!strcmp(what, "status") && !orbit_name_plain_ok(pos[2])) {
        snprintf(err, errlen, "mission status: invalid mission name '%s'", pos[2]);
        return 2;
    }
    uint32_t timeout;
    orbit_ledger_client_t *c = client_open(v, &timeout, err, errlen);
    if (!c)
        return 2;
    int status;
    if (!strcmp(what, "submit"))
        status = cmd_submit(v, c, pos[2], (int)timeout, err, errlen);
    else if (!strcmp(what, "status"))
        status = cmd_status(v, c, pos[2], (int)timeout, err, errlen);
    else if (!strcmp(what, "scale"))
        status = cmd_scale(c, pos, (int)timeout, err, errlen);
    else
        status = cmd_stop(v, c, pos[2], (int)timeout, err, errlen);
    orbit_ledger_client_destroy(&c);
    return status;
}

/* ------------------------------------------------------------ quota */

/* Non-negative decimal int64 option within max (required). */
static int opt_i64(zhashx_t *v, const char *name, bool required, int64_t min, int64_t max,
                   int64_t def, int64_t *out, char *err, size_t errlen)
{
    const char *s = orbit_cli_str(v, name);
    if (!s) {
        if (required) {
            snprintf(err, errlen, "quota grant needs --%s", name);
            return -1;
        }
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno || x < min || x > max) {
        snprintf(err, errlen, "--%s: must be an integer in %" PRId64 "..%" PRId64, name, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

static int quota_grant(zhashx_t *v, orbit_ledger_client_t *c, const char *principal, int timeout,
                       char *err, size_t errlen)
{
    int64_t cpu_m, mem, gpus, prio, until;
    /* A grant is fleet-wide: bounded by the ledger's usage sums, not by one
     * envelope's limits. */
    if (opt_i64(v, "cpu-m", true, 0, ORBIT_LEDGER_SUM_MAX, 0, &cpu_m, err, errlen) ||
        opt_i64(v, "mem", true, 0, ORBIT_LEDGER_SUM_MAX, 0, &mem, err, errlen) ||
        opt_i64(v, "gpus", true, 0, UINT32_MAX, 0, &gpus, err, errlen) ||
        opt_i64(v, "priority", false, INT32_MIN, INT32_MAX, 0, &prio, err, errlen) ||
        opt_i64(v, "until-ms", false, 0, INT64_MAX, 0, &until, err, errlen))
        return 2;
    Orbit__Ledger__Resources r = ORBIT__LEDGER__RESOURCES__INIT;
    r.has_cpu_m = r.has_mem = r.has_gpus = true;
    r.cpu_m = cpu_m;
    r.mem = mem;
    r.gpus = (uint32_t)gpus;
    Orbit__Ledger__QuotaGrant g = ORBIT__LEDGER__QUOTA_GRANT__INIT;
    g.principal = (char *)principal;
    g.resources = &r;
    g.has_priority = g.has_until_ms = true;
    g.priority = (int32_t)prio;
    g.until_ms = until;
    Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
    cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_QUOTA_GRANT;
    cm.quota_grant = &g;
    json_t *oj = NULL;
    char line[256] = "";
    int status = propose(c, &cm, NULL, timeout, &oj, line, sizeof line, err, errlen);
    if (!oj)
        return 1;
    if (json_out)
        dump(json_pack("{s:s,s:o}", "principal", principal, "outcome", oj));
    else {
        printf("quota grant %s: %s\n", principal, line);
        json_decref(oj);
    }
    if (status)
        snprintf(err, errlen, "quota grant for %s not committed (%s)", principal, line);
    return status;
}

static int quota_show(orbit_ledger_client_t *c, const char *principal, int timeout, char *err,
                      size_t errlen)
{
    char key[ORBIT_LEDGER_NAME_MAX + 16];
    snprintf(key, sizeof key, "principal/%s", principal);
    json_t *val = NULL;
    uint64_t index = 0;
    int rc = ledger_get(c, key, timeout, &val, &index, err, errlen);
    if (rc == ORBIT_ENOTFOUND)
        snprintf(err, errlen, "%s: no quota grant and no usage", principal);
    if (rc != ORBIT_OK)
        return 1;
    if (json_out) {
        json_object_set_new(val, "index", json_integer((json_int_t)index));
        dump(val);
        return 0;
    }
    json_t *g = json_object_get(val, "grant"), *u = json_object_get(val, "used");
#define R(o, k) ((int64_t)json_integer_value(json_object_get(o, k)))
    printf("principal  %s (last changed at ledger index %" PRIu64 ")\n", principal, index);
    if (json_is_true(json_object_get(val, "granted"))) {
        printf("granted    cpu_m=%" PRId64 " mem=%" PRId64 " gpus=%" PRId64 "\n", R(g, "cpu_m"),
               R(g, "mem"), R(g, "gpus"));
        printf("priority   %" PRId64 "\n", R(val, "priority"));
        if (R(val, "until_ms"))
            printf("until      %" PRId64 " ms\n", R(val, "until_ms"));
        else
            printf("until      no end\n");
    } else {
        printf("granted    nothing (no quota grant)\n");
    }
    printf("used       cpu_m=%" PRId64 " mem=%" PRId64 " gpus=%" PRId64 "\n", R(u, "cpu_m"),
           R(u, "mem"), R(u, "gpus"));
#undef R
    json_decref(val);
    return 0;
}

int orbitctl_quota(zhashx_t *v, char **pos, int npos, char *err, size_t errlen)
{
    static const char *usage = "quota grant PRINCIPAL --cpu-m N --mem BYTES --gpus N "
                               "[--priority P] [--until-ms T] | show PRINCIPAL";
    if (npos < 2 || (strcmp(pos[1], "grant") && strcmp(pos[1], "show"))) {
        snprintf(err, errlen, "%s", usage);
        return 2;
    }
    if (npos != 3) {
        if (npos < 3)
            snprintf(err, errlen, "quota %s needs a principal (%s)", pos[1], usage);
        else
            snprintf(err, errlen, "unexpected argument '%s'", pos[3]);
        return 2;
    }
    if (!orbit_name_plain_ok(pos[2])) {
        snprintf(err, errlen, "quota %s: invalid principal name '%s'", pos[1], pos[2]);
        return 2;
    }
    uint32_t timeout;
    orbit_ledger_client_t *c = client_open(v, &timeout, err, errlen);
    if (!c)
        return 2;
    int status = !strcmp(pos[1], "grant") ? quota_grant(v, c, pos[2], (int)timeout, err, errlen)
                                          : quota_show(c, pos[2], (int)timeout, err, errlen);
    orbit_ledger_client_destroy(&c);
    return status;
}
