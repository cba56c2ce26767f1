/* leaf_desired: the node's placements, module commands and the agent's desired set. */
#include "leaf_desired.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_names.h"

/* ------------------------------------------------------------ placed set */

void orbit_leaf_placed_init(orbit_leaf_placed_set_t *s)
{
    memset(s, 0, sizeof *s);
}

void orbit_leaf_placed_close(orbit_leaf_placed_set_t *s)
{
    if (!s)
        return;
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Index of id in the array v of n elements of size bytes, sorted by an id
 * string at their start (offset 0), or where it would go (*found false). */
static size_t id_pos(const void *v, size_t n, size_t size, const char *id, bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp((const char *)v + mid * size, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

_Static_assert(offsetof(orbit_leaf_placed_t, id) == 0, "id_pos needs the id first");
_Static_assert(offsetof(orbit_leaf_want_t, id) == 0, "id_pos needs the id first");

static size_t placed_pos(const orbit_leaf_placed_set_t *s, const char *id, bool *found)
{
    return id_pos(s->v, s->n, sizeof *s->v, id, found);
}

const orbit_leaf_placed_t *orbit_leaf_placed_find(const orbit_leaf_placed_set_t *s, const char *id)
{
    bool found;
    size_t i = placed_pos(s, id, &found);
    return found ? &s->v[i] : NULL;
}

/* Insert or replace p. Errors: ORBIT_ENOMEM, ORBIT_EINVAL (full); s unchanged. */
static int placed_put(orbit_leaf_placed_set_t *s, const orbit_leaf_placed_t *p)
{
    bool found;
    size_t i = placed_pos(s, p->id, &found);
    if (found) {
        s->v[i] = *p;
        return ORBIT_OK;
    }
    if (s->n >= ORBIT_CAPSULES_MAX)
        return ORBIT_EINVAL;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        orbit_leaf_placed_t *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return ORBIT_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
    s->v[i] = *p;
    s->n++;
    return ORBIT_OK;
}

static void placed_remove_at(orbit_leaf_placed_set_t *s, size_t i)
{
    memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
    s->n--;
}

/* A non-negative JSON integer member (absent: 0) into *out. */
static bool json_nonneg(const json_t *o, const char *key, int64_t max, int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v) {
        *out = 0;
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

/* One entry of the listing into *p. */
static int parse_entry(const json_t *e, size_t k, orbit_leaf_placed_t *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    const char *id = json_string_value(json_object_get(e, "capsule"));
    if (!json_is_object(e) || !id || !orbit_name_id_ok(id)) {
        orbit_errf(err, errlen, "capsules[%zu]: no valid capsule id", k);
        return ORBIT_EINVAL;
    }
    memcpy(p->id, id, strlen(id) + 1);
    const json_t *idx = json_object_get(e, "index");
    if (!json_is_integer(idx) || json_integer_value(idx) <= 0) {
        orbit_errf(err, errlen, "capsule %s: no positive index", id);
        return ORBIT_EINVAL;
    }
    p->index = (uint64_t)json_integer_value(idx);
    const json_t *gang = json_object_get(e, "gang");
    if (gang) {
        const char *g = json_string_value(gang);
        if (!g || !orbit_name_id_ok(g)) {
            orbit_errf(err, errlen, "capsule %s: gang is not a valid id", id);
            return ORBIT_EINVAL;
        }
        memcpy(p->gang, g, strlen(g) + 1);
    }
    const json_t *env = json_object_get(e, "envelope");
    int64_t gpus = 0;
    if (!json_is_object(env) || !json_nonneg(env, "cpu_m", INT64_MAX, &p->cpu_m) ||
        !json_nonneg(env, "mem", INT64_MAX, &p->mem) ||
        !json_nonneg(env, "gpus", UINT32_MAX, &gpus)) {
        orbit_errf(err, errlen, "capsule %s: envelope is not {cpu_m, mem, gpus} >= 0", id);
        return ORBIT_EINVAL;
    }
    p->gpus = (uint32_t)gpus;
    return ORBIT_OK;
}

int orbit_leaf_placed_parse_node(orbit_leaf_placed_set_t *s, const char *json, const char *node,
                                 size_t *beyond, char *err, size_t errlen)
{
    json_error_t jerr;
    orbit_leaf_placed_set_t fresh;
    orbit_leaf_placed_init(&fresh);
    int rc = ORBIT_EINVAL;
    json_t *j = json ? json_loads(json, 0, &jerr) : NULL;
    if (!j) {
        orbit_errf(err, errlen, "node listing is not JSON: %s", json ? jerr.text : "(none)");
        goto done;
    }
    const char *name = json_string_value(json_object_get(j, "node"));
    if (!json_is_object(j) || !name || strcmp(name, node)) {
        orbit_errf(err, errlen, "node listing is not an object for node %s", node);
        goto done;
    }
    const json_t *caps = json_object_get(j, "capsules");
    if (!json_is_array(caps)) {
        orbit_errf(err, errlen, "node listing of %s has no \"capsules\" array", node);
        goto done;
    }
    size_t over = 0;
    for (size_t k = 0; k < json_array_size(caps); k++) {
        orbit_leaf_placed_t p;
        if ((rc = parse_entry(json_array_get(caps, k), k, &p, err, errlen)) != ORBIT_OK)
            goto done;
        if (fresh.n >= ORBIT_CAPSULES_MAX) { /* more than a node reports: not run */
            over++;
            continue;
        }
        if (orbit_leaf_placed_find(&fresh, p.id)) {
            orbit_errf(err, errlen, "capsule %s listed twice", p.id);
            rc = ORBIT_EINVAL;
            goto done;
        }
        if ((rc = placed_put(&fresh, &p)) != ORBIT_OK)
            goto done;
    }
    orbit_leaf_placed_close(s);
    *s = fresh;
    orbit_leaf_placed_init(&fresh);
    if (beyond)
        *beyond = over;
    rc = ORBIT_OK;
done:
    if (rc == ORBIT_ENOMEM)
        orbit_errf(err, errlen, "out of memory");
    json_decref(j);
    orbit_leaf_placed_close(&fresh);
    return rc;
}

static void envelope_of(const Orbit__Ledger__Resources *r, orbit_leaf_placed_t *p)
{
    if (!r)
        return;
    p->cpu_m = r->has_cpu_m && r->cpu_m > 0 ? r->cpu_m : 0;
    p->mem = r->has_mem && r->mem > 0 ? r->mem : 0;
    p->gpus = r->has_gpus ? r->gpus : 0;
}

/* Placement of capsule on node into s (when node is ours). */
static int apply_place(orbit_leaf_placed_set_t *s, const char *node, const char *capsule,
                       const char *pnode, const Orbit__Ledger__Resources *env, const char *gang,
                       uint64_t index, bool *changed, char *err, size_t errlen)
{
    if (!pnode || strcmp(pnode, node))
        return ORBIT_OK;
    orbit_leaf_placed_t p = {0};
    if (!capsule || !orbit_name_id_ok(capsule) || (gang && !orbit_name_id_ok(gang))) {
        orbit_errf(err, errlen, "item %" PRIu64 ": placement on %s with an invalid id", index,
                   node);
        return ORBIT_EINVAL;
    }
    memcpy(p.id, capsule, strlen(capsule) + 1);
    if (gang)
        memcpy(p.gang, gang, strlen(gang) + 1);
    p.index = index;
    envelope_of(env, &p);
    int rc = placed_put(s, &p);
    if (rc == ORBIT_EINVAL)
        orbit_errf(err, errlen, "item %" PRIu64 ": more than %d capsules on %s", index,
                   ORBIT_CAPSULES_MAX, node);
    else if (rc == ORBIT_ENOMEM)
        orbit_errf(err, errlen, "out of memory");
    *changed = *changed || rc == ORBIT_OK;
    return rc;
}

int orbit_leaf_placed_apply(orbit_leaf_placed_set_t *s, const char *node,
                            const Orbit__Ledger__Committed *item, char *err, size_t errlen)
{
    if (!item || !item->proposal || !item->proposal->commitment) {
        orbit_errf(err, errlen, "watch item without a commitment");
        return ORBIT_EINVAL;
    }
    const Orbit__Ledger__Commitment *c = item->proposal->commitment;
    bool changed = false;
    int rc = ORBIT_OK;
    switch (c->kind_case) {
    case ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT: {
        const Orbit__Ledger__Placement *p = c->placement;
        rc = apply_place(s, node, p->capsule, p->node, p->envelope, NULL, item->index, &changed,
                         err, errlen);
        break;
    }
    case ORBIT__LEDGER__COMMITMENT__KIND_GANG_PLACEMENT: {
        /* All members or none: work on a copy. */
        const Orbit__Ledger__GangPlacement *g = c->gang_placement;
        orbit_leaf_placed_set_t tmp = *s;
        tmp.v = malloc((s->cap ? s->cap : 1) * sizeof *tmp.v);
        if (!tmp.v) {
            orbit_errf(err, errlen, "out of memory");
            return ORBIT_ENOMEM;
        }
        tmp.cap = s->cap ? s->cap : 1;
        if (s->n)
            memcpy(tmp.v, s->v, s->n * sizeof *tmp.v);
        for (size_t i = 0; rc == ORBIT_OK && i < g->n_members; i++) {
            const Orbit__Ledger__GangMember *m = g->members[i];
            rc = m ? apply_place(&tmp, node, m->capsule, m->node, m->envelope, g->gang, item->index,
                                 &changed, err, errlen)
                   : ORBIT_EINVAL;
        }
        if (rc == ORBIT_OK) {
            free(s->v);
            *s = tmp;
        } else {
            free(tmp.v);
            changed = false;
        }
        break;
    }
    case ORBIT__LEDGER__COMMITMENT__KIND_REVOCATION: {
        const Orbit__Ledger__Ref *what = c->revocation ? c->revocation->what : NULL;
        if (!what || !what->key)
            break;
        if (what->kind == ORBIT__LEDGER__REF_KIND__REF_PLACEMENT) {
            bool found;
            size_t i = placed_pos(s, what->key, &found);
            if (found) {
                placed_remove_at(s, i);
                changed = true;
            }
        } else if (what->kind == ORBIT__LEDGER__REF_KIND__REF_GANG) {
            for (size_t i = s->n; i-- > 0;) {
                if (s->v[i].gang[0] && !strcmp(s->v[i].gang, what->key)) {
                    placed_remove_at(s, i);
                    changed = true;
                }
            }
        }
        break;
    }
    default: break;
    }
    if (rc != ORBIT_OK)
        return rc;
    return changed ? ORBIT_LEAF_ITEM_CHANGED : ORBIT_LEAF_ITEM_IGNORED;
}

/* ------------------------------------------------------------ modules, argv */

static bool digits_ok(const char *s)
{
    if (!*s || (s[0] == '0' && s[1]))
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

int orbit_leaf_capsule_module(const char *capsule, char *out, size_t n, char *err, size_t errlen)
{
    const char *a = capsule ? strchr(capsule, '/') : NULL;
    const char *b = a ? strchr(a + 1, '/') : NULL;
    char mission[ORBIT_NAME_LEN_MAX + 1], module[ORBIT_NAME_LEN_MAX + 1];
    bool ok = b && (size_t)(a - capsule) < sizeof mission && (size_t)(b - a - 1) < sizeof module;
    if (ok) {
        memcpy(mission, capsule, (size_t)(a - capsule));
        mission[a - capsule] = '\0';
        memcpy(module, a + 1, (size_t)(b - a - 1));
        module[b - a - 1] = '\0';
        ok = orbit_name_plain_ok(mission) && orbit_name_plain_ok(module) && digits_ok(b + 1);
    }
    if (!ok) {
        orbit_errf(err, errlen, "capsule id %s is not mission/module/index",
                   capsule ? capsule : "(null)");
        return ORBIT_EINVAL;
    }
    int len = snprintf(out, n, "%s/%s", mission, module);
    if (len < 0 || (size_t)len >= n) {
        orbit_errf(err, errlen, "module key of %s is too long", capsule);
        return ORBIT_EINVAL;
    }
    return ORBIT_OK;
}

void orbit_leaf_argv_free(char ***argv)
{
    if (!argv || !*argv)
        return;
    for (char **p = *argv; *p; p++)
        free(*p);
    free(*argv);
    *argv = NULL;
}

char **orbit_leaf_argv_dup(char *const *argv)
{
    if (!argv)
        return NULL;
    size_t n = 0;
    while (argv[n])
        n++;
    char **out = calloc(n + 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++) {
        if (!(out[i] = strdup(argv[i]))) {
            orbit_leaf_argv_free(&out);
            return NULL;
        }
    }
    return out;
}

/* argv from a decoded JSON value. */
static int argv_from_json(const json_t *j, char ***argv, char *err, size_t errlen)
{
    size_t n = json_array_size(j), bytes = 0;
    if (!json_is_array(j) || n == 0 || n > ORBIT_LEAF_ARGV_MAX) {
        orbit_errf(err, errlen, "command is not an array of 1..%d strings", ORBIT_LEAF_ARGV_MAX);
        return ORBIT_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(j, i);
        if (!json_is_string(a)) {
            orbit_errf(err, errlen, "command[%zu] is not a string", i);
            return ORBIT_EINVAL;
        }
        size_t len = json_string_length(a);
        if (strlen(json_string_value(a)) != len) {
            orbit_errf(err, errlen, "command[%zu] holds a NUL byte", i);
            return ORBIT_EINVAL;
        }
        bytes += len + 1;
    }
    if (!json_string_length(json_array_get(j, 0))) {
        orbit_errf(err, errlen, "command[0] is empty");
        return ORBIT_EINVAL;
    }
    if (bytes > ORBIT_LEAF_ARGV_BYTES_MAX) {
        orbit_errf(err, errlen, "command is longer than %d bytes", ORBIT_LEAF_ARGV_BYTES_MAX);
        return ORBIT_EINVAL;
    }
    char **out = calloc(n + 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++) {
        if (!(out[i] = strdup(json_string_value(json_array_get(j, i)))))
            orbit_leaf_argv_free(&out);
    }
    if (!out) {
        orbit_errf(err, errlen, "out of memory");
        return ORBIT_ENOMEM;
    }
    *argv = out;
    return ORBIT_OK;
}

int orbit_leaf_argv_parse(const char *json, char ***argv, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *j = json ? json_loads(json, JSON_DECODE_ANY, &jerr) : NULL;
    if (!j) {
        orbit_errf(err, errlen, "command is not JSON: %s", json ? jerr.text : "(none)");
        return ORBIT_EINVAL;
    }
    int rc = argv_from_json(j, argv, err, errlen);
    json_decref(j);
    return rc;
}

int orbit_leaf_module_argv(const char *json, char ***argv, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *j = json ? json_loads(json, 0, &jerr) : NULL;
    if (!j) {
        orbit_errf(err, errlen, "module is not JSON: %s", json ? jerr.text : "(none)");
        return ORBIT_EINVAL;
    }
    const char *cmd = json_string_value(json_object_get(json_object_get(j, "spec"), "command"));
    int rc = ORBIT_EINVAL;
    if (!cmd)
        orbit_errf(err, errlen, "module has no command");
    else
        rc = orbit_leaf_argv_parse(cmd, argv, err, errlen);
    json_decref(j);
    return rc;
}

/* ------------------------------------------------------------ wants */

void orbit_leaf_wants_init(orbit_leaf_wants_t *w)
{
    memset(w, 0, sizeof *w);
}

void orbit_leaf_wants_close(orbit_leaf_wants_t *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        orbit_leaf_argv_free(&w->v[i].argv);
    free(w->v);
    memset(w, 0, sizeof *w);
}

static size_t wants_pos(const orbit_leaf_wants_t *w, const char *id, bool *found)
{
    return id_pos(w->v, w->n, sizeof *w->v, id, found);
}

const orbit_leaf_want_t *orbit_leaf_wants_find(const orbit_leaf_wants_t *w, const char *id)
{
    bool found;
    size_t i = wants_pos(w, id, &found);
    return found ? &w->v[i] : NULL;
}

int orbit_leaf_wants_put(orbit_leaf_wants_t *w, const orbit_leaf_want_t *want)
{
    if (!orbit_name_id_ok(want->id) || !want->argv == !want->reason[0] ||
        (want->argv && (!want->argv[0] || !want->argv[0][0])))
        return ORBIT_EINVAL;
    orbit_leaf_want_t copy = *want;
    if (want->argv && !(copy.argv = orbit_leaf_argv_dup(want->argv)))
        return ORBIT_ENOMEM;
    bool found;
    size_t i = wants_pos(w, want->id, &found);
    if (found) {
        orbit_leaf_argv_free(&w->v[i].argv);
        w->v[i] = copy;
        return ORBIT_OK;
    }
    orbit_leaf_want_t *v = realloc(w->v, (w->n + 1) * sizeof *v);
    if (!v) {
        orbit_leaf_argv_free(&copy.argv);
        return ORBIT_ENOMEM;
    }
    w->v = v;
    memmove(&w->v[i + 1], &w->v[i], (w->n - i) * sizeof *w->v);
    w->v[i] = copy;
    w->n++;
    return ORBIT_OK;
}

bool orbit_leaf_wants_same(const orbit_leaf_wants_t *a, const orbit_leaf_wants_t *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const orbit_leaf_want_t *x = &a->v[i], *y = &b->v[i];
        if (strcmp(x->id, y->id) || x->index != y->index || x->res.cpu_m != y->res.cpu_m ||
            x->res.mem != y->res.mem || strcmp(x->reason, y->reason))
            return false;
    }
    return true;
}

#define WANT_FRAMES 6

static bool add_u64(zmsg_t *m, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return zmsg_addstr(m, buf) == 0;
}

zmsg_t *orbit_leaf_wants_encode(const orbit_leaf_wants_t *w)
{
    zmsg_t *m = zmsg_new();
    bool ok = m && zmsg_addstr(m, "WANTS") == 0;
    for (size_t i = 0; ok && i < w->n; i++) {
        const orbit_leaf_want_t *x = &w->v[i];
        size_t len = 0;
        for (char **a = x->argv; a && *a; a++)
            len += strlen(*a) + 1;
        char *buf = len ? malloc(len) : NULL;
        size_t off = 0;
        for (char **a = x->argv; buf && a && *a; a++) {
            memcpy(buf + off, *a, strlen(*a) + 1);
            off += strlen(*a) + 1;
        }
        ok = (!len || buf) && zmsg_addstr(m, x->id) == 0 && add_u64(m, x->index) &&
             add_u64(m, x->res.cpu_m) && add_u64(m, x->res.mem) && zmsg_addstr(m, x->reason) == 0 &&
             zmsg_addmem(m, buf, len) == 0;
        free(buf);
    }
    if (!ok)
        zmsg_destroy(&m);
    return m;
}

/* A frame as a NUL-terminated string (of at most max bytes) into out. */
static bool frame_str(zframe_t *f, char *out, size_t max)
{
    size_t n = zframe_size(f);
    if (n >= max || memchr(zframe_data(f), '\0', n))
        return false;
    memcpy(out, zframe_data(f), n);
    out[n] = '\0';
    return true;
}

static bool frame_u64(zframe_t *f, uint64_t max, uint64_t *out)
{
    char buf[24];
    if (!frame_str(f, buf, sizeof buf) || !buf[0] || (buf[0] == '0' && buf[1]))
        return false;
    for (const char *p = buf; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    errno = 0;
    unsigned long long v = strtoull(buf, NULL, 10);
    if (errno || v > max)
        return false;
    *out = v;
    return true;
}

/* The argv frame (arguments each followed by a NUL) into a new argv. */
static int frame_argv(zframe_t *f, char ***argv)
{
    const char *d = (const char *)zframe_data(f);
    size_t n = zframe_size(f), count = 0;
    if (n == 0 || d[n - 1] != '\0' || d[0] == '\0' || n > ORBIT_LEAF_ARGV_BYTES_MAX)
        return ORBIT_EINVAL;
    for (size_t i = 0; i < n; i++)
        count += d[i] == '\0';
    if (count > ORBIT_LEAF_ARGV_MAX)
        return ORBIT_EINVAL;
    char **out = calloc(count + 1, sizeof *out);
    size_t k = 0;
    for (size_t off = 0; out && off < n; k++) {
        size_t len = strlen(d + off);
        if (!(out[k] = strdup(d + off)))
            orbit_leaf_argv_free(&out);
        off += len + 1;
    }
    if (!out)
        return ORBIT_ENOMEM;
    *argv = out;
    return ORBIT_OK;
}

int orbit_leaf_wants_decode(zmsg_t *msg, orbit_leaf_wants_t *out, char *err, size_t errlen)
{
    orbit_leaf_wants_init(out);
    size_t frames = msg ? zmsg_size(msg) : 0;
    zframe_t *f = msg ? zmsg_first(msg) : NULL;
    if (!f || !zframe_streq(f, "WANTS") || (frames - 1) % WANT_FRAMES) {
        orbit_errf(err, errlen, "not a WANTS message of 1 + %d frames per capsule", WANT_FRAMES);
        return ORBIT_EINVAL;
    }
    if ((frames - 1) / WANT_FRAMES > ORBIT_CAPSULES_MAX) {
        orbit_errf(err, errlen, "more than %d capsules", ORBIT_CAPSULES_MAX);
        return ORBIT_EINVAL;
    }
    for (size_t k = 0; k < (frames - 1) / WANT_FRAMES; k++) {
        orbit_leaf_want_t x = {0};
        uint64_t cpu = 0, mem = 0;
        zframe_t *fid = zmsg_next(msg), *findex = zmsg_next(msg), *fcpu = zmsg_next(msg),
                 *fmem = zmsg_next(msg), *freason = zmsg_next(msg), *fargv = zmsg_next(msg);
        if (!frame_str(fid, x.id, sizeof x.id) || !orbit_name_id_ok(x.id) ||
            !frame_u64(findex, UINT64_MAX, &x.index) || !frame_u64(fcpu, UINT32_MAX, &cpu) ||
            !frame_u64(fmem, UINT64_MAX, &mem) || !frame_str(freason, x.reason, sizeof x.reason) ||
            (zframe_size(fargv) == 0) == !x.reason[0]) {
            orbit_errf(err, errlen, "capsule %zu: bad id, number, or reason/argv", k);
            return ORBIT_EINVAL;
        }
        if (orbit_leaf_wants_find(out, x.id)) {
            orbit_errf(err, errlen, "capsule %s twice", x.id);
            return ORBIT_EINVAL;
        }
        x.res.cpu_m = (uint32_t)cpu;
        x.res.mem = mem;
        int rc = x.reason[0] ? ORBIT_OK : frame_argv(fargv, &x.argv);
        if (rc == ORBIT_EINVAL)
            orbit_errf(err, errlen, "capsule %s: bad argv frame", x.id);
        if (rc == ORBIT_OK) {
            rc = orbit_leaf_wants_put(out, &x);
            if (rc == ORBIT_EINVAL)
                orbit_errf(err, errlen, "capsule %s: bad entry", x.id);
        }
        orbit_leaf_argv_free(&x.argv);
        if (rc == ORBIT_ENOMEM)
            orbit_errf(err, errlen, "out of memory");
        if (rc != ORBIT_OK)
            return rc;
    }
    return ORBIT_OK;
}
