/* orbit_node: node state, deltas between states, validation and apply. */
#include "orbit_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_names.h"
#include "orbit_wire.h"

void orbit_node_state_init(orbit_node_state_t *s)
{
    memset(s, 0, sizeof *s);
}

void orbit_node_state_close(orbit_node_state_t *s)
{
    if (!s)
        return;
    free(s->gpus);
    free(s->capsules);
    memset(s, 0, sizeof *s);
}

int orbit_node_state_set_gpus(orbit_node_state_t *s, const orbit_gpu_t *gpus, uint32_t n)
{
    if (n > ORBIT_GPUS_MAX)
        return ORBIT_EINVAL;
    orbit_gpu_t *copy = NULL;
    if (n) {
        copy = malloc(n * sizeof *copy);
        if (!copy)
            return ORBIT_ENOMEM;
        memcpy(copy, gpus, n * sizeof *copy);
    }
    free(s->gpus);
    s->gpus = copy;
    s->ngpus = n;
    return ORBIT_OK;
}

int orbit_node_state_copy(orbit_node_state_t *dst, const orbit_node_state_t *src)
{
    if (dst == src)
        return ORBIT_OK;
    orbit_gpu_t *copy = NULL;
    orbit_capsule_t *caps = NULL;
    if (src->ngpus) {
        copy = malloc(src->ngpus * sizeof *copy);
        if (!copy)
            goto nomem;
        memcpy(copy, src->gpus, src->ngpus * sizeof *copy);
    }
    if (src->ncapsules) {
        caps = malloc(src->ncapsules * sizeof *caps);
        if (!caps)
            goto nomem;
        memcpy(caps, src->capsules, src->ncapsules * sizeof *caps);
    }
    free(dst->gpus);
    free(dst->capsules);
    *dst = *src;
    dst->gpus = copy;
    dst->capsules = caps;
    return ORBIT_OK;
nomem:
    free(copy);
    return ORBIT_ENOMEM;
}

size_t orbit_node_state_heap_bytes(const orbit_node_state_t *s)
{
    return s->ngpus * sizeof(orbit_gpu_t) + s->ncapsules * sizeof(orbit_capsule_t);
}

/* --------------------------------------------------------------- capsules */

const char *orbit_capsule_state_name(orbit_capsule_state_t st)
{
    static const char *names[ORBIT_CAPSULE_STATE_COUNT] = {"starting", "running",    "exited",
                                                           "failed",   "oom_killed", "stopped"};
    return (int)st >= 0 && st < ORBIT_CAPSULE_STATE_COUNT ? names[st] : "?";
}

static int cmp_capsule_id(const void *pa, const void *pb)
{
    return strcmp(((const orbit_capsule_t *)pa)->id, ((const orbit_capsule_t *)pb)->id);
}

/* An id held in a fixed buffer: NUL-terminated inside it and by the id rule. */
static bool capsule_id_ok(const char id[ORBIT_CAPSULE_ID_MAX])
{
    return memchr(id, '\0', ORBIT_CAPSULE_ID_MAX) && orbit_name_id_ok(id);
}

static bool reason_char_ok(char c)
{
    return c >= 0x20 && c < 0x7f;
}

int orbit_node_state_set_capsules(orbit_node_state_t *s, const orbit_capsule_t *caps, uint32_t n)
{
    if (n > ORBIT_CAPSULES_MAX)
        return ORBIT_EINVAL;
    for (uint32_t i = 0; i < n; i++)
        if (!capsule_id_ok(caps[i].id) || (int)caps[i].state < 0 ||
            caps[i].state >= ORBIT_CAPSULE_STATE_COUNT || caps[i].since_ms < 0)
            return ORBIT_EINVAL;
    orbit_capsule_t *copy = NULL;
    if (n) {
        copy = malloc(n * sizeof *copy);
        if (!copy)
            return ORBIT_ENOMEM;
        memcpy(copy, caps, n * sizeof *copy);
        qsort(copy, n, sizeof *copy, cmp_capsule_id);
        for (uint32_t i = 1; i < n; i++)
            if (!strcmp(copy[i - 1].id, copy[i].id)) {
                free(copy);
                return ORBIT_EINVAL;
            }
        /* The reason is cut and made one printable line here, at the
         * source, because receivers reject anything else. */
        for (uint32_t i = 0; i < n; i++) {
            orbit_capsule_t *c = &copy[i];
            c->reason[sizeof c->reason - 1] = '\0';
            for (char *p = c->reason; *p; p++)
                if (!reason_char_ok(*p))
                    *p = '?';
        }
    }
    free(s->capsules);
    s->capsules = copy;
    s->ncapsules = n;
    return ORBIT_OK;
}

static int cmp_pb_id(const void *pa, const void *pb)
{
    return strcmp((*(Orbit__CapsuleHealth *const *)pa)->id,
                  (*(Orbit__CapsuleHealth *const *)pb)->id);
}

#define BAD(why)                                                                                   \
    do {                                                                                           \
        *reason = (why);                                                                           \
        return ORBIT_EINVAL;                                                                       \
    } while (0)

int orbit_capsules_validate(Orbit__CapsuleHealth *const *caps, size_t n, const char **reason)
{
    static const char *unused;
    if (!reason)
        reason = &unused;
    if (n > ORBIT_CAPSULES_MAX)
        BAD("too many capsules");
    for (size_t i = 0; i < n; i++) {
        const Orbit__CapsuleHealth *c = caps[i];
        if (!c || !orbit_name_id_ok(c->id))
            BAD("invalid capsule id");
        if ((int)c->state < 0 || (int)c->state >= (int)ORBIT_CAPSULE_STATE_COUNT)
            BAD("unknown capsule state");
        if (c->has_since_ms && c->since_ms < 0)
            BAD("capsule since_ms out of range");
        if (c->reason) {
            size_t len = 0;
            for (const char *p = c->reason; *p; p++, len++)
                if (!reason_char_ok(*p))
                    BAD("capsule reason not one printable line");
            if (len > ORBIT_CAPSULE_REASON_MAX - 1)
                BAD("capsule reason too long");
        }
    }
    /* Duplicates: pairwise for the usual handful, sorted beyond that. */
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (!strcmp(caps[i]->id, caps[j]->id))
                    BAD("duplicate capsule id");
    } else {
        Orbit__CapsuleHealth *sorted[ORBIT_CAPSULES_MAX];
        memcpy(sorted, caps, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_pb_id);
        for (size_t i = 1; i < n; i++)
            if (!strcmp(sorted[i - 1]->id, sorted[i]->id))
                BAD("duplicate capsule id");
    }
    return ORBIT_OK;
}

int orbit_capsules_from_pb(Orbit__CapsuleHealth *const *caps, size_t n, orbit_capsule_t **out)
{
    orbit_capsule_t *cs = NULL;
    if (n) {
        cs = calloc(n, sizeof *cs);
        if (!cs)
            return ORBIT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const Orbit__CapsuleHealth *w = caps[i];
        orbit_capsule_t *c = &cs[i];
        snprintf(c->id, sizeof c->id, "%s", w->id);
        c->state = (orbit_capsule_state_t)w->state;
        c->exit_code = w->has_exit_code ? w->exit_code : 0;
        if (w->reason)
            snprintf(c->reason, sizeof c->reason, "%s", w->reason);
        c->since_ms = w->has_since_ms ? w->since_ms : 0;
    }
    if (n > 1)
        qsort(cs, n, sizeof *cs, cmp_capsule_id);
    *out = cs;
    return ORBIT_OK;
}

/* Only what is not zero goes on the wire (absent reads back as zero), except
 * an exited capsule's status: "exited 0" is worth saying. */
void orbit_capsule_to_pb(const orbit_capsule_t *c, Orbit__CapsuleHealth *w)
{
    orbit__capsule_health__init(w);
    w->id = (char *)c->id;
    w->state = (Orbit__CapsuleState)c->state;
    w->has_exit_code = c->exit_code != 0 || c->state == ORBIT_CAPSULE_EXITED;
    w->exit_code = c->exit_code;
    w->reason = c->reason[0] ? (char *)c->reason : NULL;
    w->has_since_ms = c->since_ms != 0;
    w->since_ms = c->since_ms;
}

int orbit_capsules_to_pb(const orbit_capsule_t *caps, size_t n, orbit_arena_t *a,
                         Orbit__CapsuleHealth ***out)
{
    *out = NULL;
    if (!n)
        return ORBIT_OK;
    Orbit__CapsuleHealth **ptrs = orbit_arena_alloc(a, n * sizeof *ptrs);
    Orbit__CapsuleHealth *ws = orbit_arena_alloc(a, n * sizeof *ws);
    if (!ptrs || !ws)
        return ORBIT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        orbit_capsule_to_pb(&caps[i], &ws[i]);
        ptrs[i] = &ws[i];
    }
    *out = ptrs;
    return ORBIT_OK;
}

bool orbit_name_valid(const char *name)
{
    if (!name)
        return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= ORBIT_NAME_MAX - 1)
            return false;
    }
    return n > 0;
}

/* ----------------------------------------------------------------- labels */

static bool label_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (const char *p = s; *p; p++)
        if (*p == '=' || *p == '\n' || (unsigned char)*p < 0x20)
            return false;
    return true;
}

int orbit_node_label_set(orbit_node_state_t *s, const char *key, const char *value)
{
    if (!key || !value || !label_text_ok(key, ORBIT_LABEL_KEY_MAX) ||
        !label_text_ok(value, ORBIT_LABEL_VALUE_MAX))
        return ORBIT_EINVAL;
    /* Rebuild the packed list with key inserted in order (or replaced). */
    char out[ORBIT_LABELS_MAX];
    size_t used = 0, klen = strlen(key);
    bool placed = false;
    const char *p = s->labels;
    while (*p || !placed) {
        const char *eol = *p ? strchr(p, '\n') : NULL;
        const char *eq = eol ? memchr(p, '=', (size_t)(eol - p)) : NULL;
        int cmp = 1;
        if (eq) {
            size_t n = (size_t)(eq - p);
            cmp = strncmp(p, key, n < klen ? n : klen);
            if (cmp == 0)
                cmp = n < klen ? -1 : (n > klen ? 1 : 0);
        }
        if (!placed && cmp >= 0) {
            int w = snprintf(out + used, sizeof out - used, "%s=%s\n", key, value);
            if (w < 0 || (size_t)w >= sizeof out - used)
                return ORBIT_EINVAL;
            used += (size_t)w;
            placed = true;
            if (cmp == 0 && eol) { /* replaced: skip the old pair */
                p = eol + 1;
                continue;
            }
        }
        if (!eol)
            break;
        size_t n = (size_t)(eol - p) + 1;
        if (n >= sizeof out - used)
            return ORBIT_EINVAL;
        memcpy(out + used, p, n);
        used += n;
        p = eol + 1;
    }
    out[used] = '\0';
    memcpy(s->labels, out, used + 1);
    return ORBIT_OK;
}

bool orbit_node_label_get(const char *labels, const char *key, char *out, size_t n)
{
    size_t klen = strlen(key);
    for (const char *p = labels; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (!eol)
            break;
        if ((size_t)(eol - p) > klen && !strncmp(p, key, klen) && p[klen] == '=') {
            size_t vlen = (size_t)(eol - p) - klen - 1;
            if (n) {
                size_t c = vlen < n - 1 ? vlen : n - 1;
                memcpy(out, p + klen + 1, c);
                out[c] = '\0';
            }
            return true;
        }
        p = eol + 1;
    }
    return false;
}

/* ------------------------------------------------------------------- diff */

static bool gpus_equal(const orbit_node_state_t *a, const orbit_node_state_t *b)
{
    if (a->ngpus != b->ngpus)
        return false;
    for (uint32_t i = 0; i < a->ngpus; i++) {
        const orbit_gpu_t *x = &a->gpus[i], *y = &b->gpus[i];
        if (x->index != y->index || strcmp(x->uuid, y->uuid) || x->temp_c != y->temp_c ||
            x->util_pct != y->util_pct || x->mem_used != y->mem_used ||
            x->mem_total != y->mem_total || x->power_mw != y->power_mw ||
            x->ecc_corrected != y->ecc_corrected || x->ecc_uncorrected != y->ecc_uncorrected ||
            x->last_xid != y->last_xid || x->health != y->health)
            return false;
    }
    return true;
}

static bool capsules_equal(const orbit_node_state_t *a, const orbit_node_state_t *b)
{
    if (a->ncapsules != b->ncapsules)
        return false;
    for (uint32_t i = 0; i < a->ncapsules; i++) {
        const orbit_capsule_t *x = &a->capsules[i], *y = &b->capsules[i];
        if (x->state != y->state || x->exit_code != y->exit_code || x->since_ms != y->since_ms ||
            strcmp(x->id, y->id) || strcmp(x->reason, y->reason))
            return false;
    }
    return true;
}

static bool pressure_equal(const orbit_pressure_t *a, const orbit_pressure_t *b)
{
    return a->cpu_some == b->cpu_some && a->mem_some == b->mem_some && a->mem_full == b->mem_full &&
           a->io_some == b->io_some && a->io_full == b->io_full;
}

bool orbit_node_state_differs(const orbit_node_state_t *a, const orbit_node_state_t *b)
{
    return a->incarnation != b->incarnation || a->interval_ms != b->interval_ms ||
           a->cpu_capacity_m != b->cpu_capacity_m || a->cpu_used_m != b->cpu_used_m ||
           a->mem_capacity != b->mem_capacity || a->mem_used != b->mem_used ||
           a->gpu_capacity != b->gpu_capacity || a->load1 != b->load1 || a->load5 != b->load5 ||
           a->load15 != b->load15 || a->pressure_available != b->pressure_available ||
           !pressure_equal(&a->pressure, &b->pressure) || strcmp(a->labels, b->labels) ||
           !gpus_equal(a, b) || !capsules_equal(a, b);
}

static size_t count_labels(const char *labels)
{
    size_t n = 0;
    for (const char *p = labels; *p; p++)
        n += *p == '\n';
    return n;
}

static int delta_fill(Orbit__NodeDelta *m, const orbit_node_state_t *cur,
                      const orbit_node_state_t *base, uint64_t seq, orbit_arena_t *a,
                      void **scratch)
{
    const bool full = base == NULL;
    m->node = (char *)cur->name;
    m->incarnation = cur->incarnation;
    m->seq = seq;
    m->has_full = full;
    m->full = full;
    m->has_sampled_ms = true;
    m->sampled_ms = cur->sampled_ms;
#define SET_IF(field, src)                                                                         \
    do {                                                                                           \
        if (full || cur->src != base->src) {                                                       \
            m->has_##field = true;                                                                 \
            m->field = cur->src;                                                                   \
        }                                                                                          \
    } while (0)
    SET_IF(interval_ms, interval_ms);
    SET_IF(cpu_capacity_m, cpu_capacity_m);
    SET_IF(cpu_used_m, cpu_used_m);
    SET_IF(mem_capacity, mem_capacity);
    SET_IF(mem_used, mem_used);
    SET_IF(gpu_capacity, gpu_capacity);
    SET_IF(load1, load1);
    SET_IF(load5, load5);
    SET_IF(load15, load15);
    SET_IF(pressure_available, pressure_available);
#undef SET_IF
    /* Pressure goes whenever the receiver's copy would otherwise differ:
     * zeros after a full state, the base's values after a delta (a leaf that
     * loses PSI zeroes them, and the shard must not keep the stale ones). */
    static const orbit_pressure_t no_pressure;
    bool send_pressure =
        full ? cur->pressure_available || !pressure_equal(&cur->pressure, &no_pressure)
             : !pressure_equal(&cur->pressure, &base->pressure);
    bool send_gpus = full || !gpus_equal(cur, base);
    bool send_labels = full || strcmp(cur->labels, base->labels) != 0;
    bool send_capsules = full || !capsules_equal(cur, base);
    size_t nlabels = send_labels ? count_labels(cur->labels) : 0;
    size_t ngpus = send_gpus ? cur->ngpus : 0;
    size_t ncaps = send_capsules ? cur->ncapsules : 0;

    /* One block for every submessage and pointer array, so the caller frees once. */
    size_t need = sizeof(Orbit__Pressure) + ngpus * (sizeof(Orbit__Gpu) + sizeof(void *)) +
                  nlabels * (sizeof(Orbit__Label) + sizeof(void *)) +
                  ncaps * (sizeof(Orbit__CapsuleHealth) + sizeof(void *)) + sizeof(cur->labels);
    char *block = a ? orbit_arena_alloc(a, need) : malloc(need);
    if (!block)
        return ORBIT_ENOMEM;
    if (!a)
        *scratch = block;
    char *p = block;

    if (send_pressure) {
        Orbit__Pressure *pr = (Orbit__Pressure *)p;
        p += sizeof *pr;
        orbit__pressure__init(pr);
        pr->has_cpu_some = pr->has_mem_some = pr->has_mem_full = true;
        pr->has_io_some = pr->has_io_full = true;
        pr->cpu_some = cur->pressure.cpu_some;
        pr->mem_some = cur->pressure.mem_some;
        pr->mem_full = cur->pressure.mem_full;
        pr->io_some = cur->pressure.io_some;
        pr->io_full = cur->pressure.io_full;
        m->pressure = pr;
    } else {
        p += sizeof(Orbit__Pressure);
    }
    if (send_gpus) {
        m->has_gpus_set = true;
        m->gpus_set = true;
        Orbit__Gpu **ptrs = (Orbit__Gpu **)p;
        p += ngpus * sizeof(void *);
        Orbit__Gpu *gs = (Orbit__Gpu *)p;
        p += ngpus * sizeof(Orbit__Gpu);
        for (size_t i = 0; i < ngpus; i++) {
            const orbit_gpu_t *g = &cur->gpus[i];
            Orbit__Gpu *o = &gs[i];
            orbit__gpu__init(o);
            o->index = g->index;
            o->uuid = (char *)g->uuid;
            o->has_temp_c = o->has_util_pct = o->has_mem_used = o->has_mem_total = true;
            o->has_power_mw = o->has_ecc_corrected = o->has_ecc_uncorrected = true;
            o->has_last_xid = o->has_health = true;
            o->temp_c = g->temp_c;
            o->util_pct = g->util_pct;
            o->mem_used = g->mem_used;
            o->mem_total = g->mem_total;
            o->power_mw = g->power_mw;
            o->ecc_corrected = g->ecc_corrected;
            o->ecc_uncorrected = g->ecc_uncorrected;
            o->last_xid = g->last_xid;
            o->health = (Orbit__GpuHealth)g->health;
            ptrs[i] = o;
        }
        m->n_gpus = ngpus;
        m->gpus = ptrs;
    }
    if (send_capsules) {
        m->has_capsules_set = true;
        m->capsules_set = true;
        Orbit__CapsuleHealth **ptrs = (Orbit__CapsuleHealth **)p;
        p += ncaps * sizeof(void *);
        Orbit__CapsuleHealth *cs = (Orbit__CapsuleHealth *)p;
        p += ncaps * sizeof(Orbit__CapsuleHealth);
        for (size_t i = 0; i < ncaps; i++) {
            orbit_capsule_to_pb(&cur->capsules[i], &cs[i]);
            ptrs[i] = &cs[i];
        }
        m->n_capsules = ncaps;
        m->capsules = ncaps ? ptrs : NULL;
    }
    if (send_labels) {
        m->has_labels_set = true;
        m->labels_set = true;
        Orbit__Label **ptrs = (Orbit__Label **)p;
        p += nlabels * sizeof(void *);
        Orbit__Label *ls = (Orbit__Label *)p;
        p += nlabels * sizeof(Orbit__Label);
        char *text = p; /* a copy of the packed labels, split in place */
        memcpy(text, cur->labels, sizeof cur->labels);
        size_t i = 0;
        for (char *line = text; *line && i < nlabels;) {
            char *eol = strchr(line, '\n');
            char *eq = strchr(line, '=');
            *eol = '\0';
            *eq = '\0';
            orbit__label__init(&ls[i]);
            ls[i].key = line;
            ls[i].value = eq + 1;
            ptrs[i] = &ls[i];
            i++;
            line = eol + 1;
        }
        m->n_labels = i;
        m->labels = ptrs;
    }
    return ORBIT_OK;
}

int orbit_node_delta_fill(Orbit__NodeDelta *m, const orbit_node_state_t *cur,
                          const orbit_node_state_t *base, uint64_t seq, void **scratch)
{
    *scratch = NULL;
    return delta_fill(m, cur, base, seq, NULL, scratch);
}

int orbit_node_delta_fill_arena(Orbit__NodeDelta *m, const orbit_node_state_t *cur,
                                const orbit_node_state_t *base, uint64_t seq, orbit_arena_t *a)
{
    return delta_fill(m, cur, base, seq, a, NULL);
}

/* ------------------------------------------------------------- validation */

int orbit_node_delta_validate(const Orbit__NodeDelta *m, const orbit_node_state_t *base,
                              const char **reason)
{
    static const char *unused;
    if (!reason)
        reason = &unused;
    const bool full = m->has_full && m->full;
    if (!orbit_name_valid(m->node))
        BAD("invalid node name");
    if (m->has_interval_ms && (m->interval_ms < 10 || m->interval_ms > 3600 * 1000))
        BAD("interval out of range");
    if (m->has_cpu_capacity_m && (m->cpu_capacity_m < 0 || m->cpu_capacity_m > ORBIT_CPU_MAX_M))
        BAD("cpu capacity out of range");
    if (m->has_cpu_used_m && (m->cpu_used_m < 0 || m->cpu_used_m > ORBIT_CPU_MAX_M))
        BAD("cpu usage out of range");
    if (m->has_mem_capacity && (m->mem_capacity < 0 || m->mem_capacity > ORBIT_MEM_MAX))
        BAD("memory capacity out of range");
    if (m->has_mem_used && (m->mem_used < 0 || m->mem_used > ORBIT_MEM_MAX))
        BAD("memory usage out of range");
    if (m->has_gpu_capacity && m->gpu_capacity > ORBIT_GPUS_MAX)
        BAD("gpu capacity out of range");
    if ((m->has_load1 && m->load1 > ORBIT_LOAD_MAX) ||
        (m->has_load5 && m->load5 > ORBIT_LOAD_MAX) ||
        (m->has_load15 && m->load15 > ORBIT_LOAD_MAX))
        BAD("load out of range");
    if (m->pressure) {
        const Orbit__Pressure *p = m->pressure;
        if (p->cpu_some > ORBIT_PRESSURE_MAX || p->mem_some > ORBIT_PRESSURE_MAX ||
            p->mem_full > ORBIT_PRESSURE_MAX || p->io_some > ORBIT_PRESSURE_MAX ||
            p->io_full > ORBIT_PRESSURE_MAX)
            BAD("pressure out of range");
    }
    /* Used must fit the capacity in force after the delta (usage may briefly
     * exceed allocatable CPU by the kernel's accounting, hence no slack on
     * memory but 1 % on CPU). */
    int64_t cpu_cap = m->has_cpu_capacity_m ? m->cpu_capacity_m
                      : (base && !full)     ? base->cpu_capacity_m
                                            : 0;
    int64_t cpu_used = m->has_cpu_used_m ? m->cpu_used_m : (base && !full) ? base->cpu_used_m : 0;
    int64_t mem_cap = m->has_mem_capacity ? m->mem_capacity
                      : (base && !full)   ? base->mem_capacity
                                          : 0;
    int64_t mem_used = m->has_mem_used ? m->mem_used : (base && !full) ? base->mem_used : 0;
    if (cpu_used > cpu_cap + cpu_cap / 100)
        BAD("cpu usage exceeds capacity");
    if (mem_used > mem_cap)
        BAD("memory usage exceeds capacity");
    if (m->n_gpus > ORBIT_GPUS_MAX)
        BAD("too many gpus");
    if (m->n_gpus && !(m->has_gpus_set && m->gpus_set))
        BAD("gpu list without gpus_set");
    for (size_t i = 0; i < m->n_gpus; i++) {
        const Orbit__Gpu *g = m->gpus[i];
        if (g->index >= ORBIT_GPUS_MAX)
            BAD("gpu index out of range");
        for (size_t j = 0; j < i; j++)
            if (m->gpus[j]->index == g->index)
                BAD("duplicate gpu index");
        if (g->uuid && strlen(g->uuid) >= ORBIT_UUID_MAX)
            BAD("gpu uuid too long");
        if (g->has_temp_c && (g->temp_c < -60 || g->temp_c > 200))
            BAD("gpu temperature out of range");
        if (g->has_util_pct && g->util_pct > 100)
            BAD("gpu utilisation out of range");
        if ((g->has_mem_total && g->mem_total > ORBIT_GPU_MEM_MAX) ||
            (g->has_mem_used && g->mem_used > g->mem_total))
            BAD("gpu memory out of range");
        if (g->has_power_mw && g->power_mw > 10u * 1000 * 1000)
            BAD("gpu power out of range");
        if (g->has_health && ((int)g->health < 0 || (int)g->health >= (int)ORBIT_GPU_HEALTH_COUNT))
            BAD("unknown gpu health");
    }
    uint32_t gpu_cap = m->has_gpu_capacity ? m->gpu_capacity
                       : (base && !full)   ? base->gpu_capacity
                                           : 0;
    uint32_t ngpus = (m->has_gpus_set && m->gpus_set) ? (uint32_t)m->n_gpus
                     : (base && !full)                ? base->ngpus
                                                      : 0;
    if (ngpus > gpu_cap && gpu_cap)
        BAD("more gpu samples than gpu capacity");
    if (m->n_labels && !(m->has_labels_set && m->labels_set))
        BAD("label list without labels_set");
    size_t packed = 0;
    for (size_t i = 0; i < m->n_labels; i++) {
        const Orbit__Label *l = m->labels[i];
        if (!label_text_ok(l->key, ORBIT_LABEL_KEY_MAX) ||
            !label_text_ok(l->value, ORBIT_LABEL_VALUE_MAX))
            BAD("invalid label");
        packed += strlen(l->key) + strlen(l->value) + 2;
    }
    if (packed >= ORBIT_LABELS_MAX)
        BAD("labels too long");
    if (m->n_capsules && !(m->has_capsules_set && m->capsules_set))
        BAD("capsule list without capsules_set");
    return orbit_capsules_validate(m->capsules, m->n_capsules, reason);
}

/* ------------------------------------------------------------------ apply */

int orbit_node_delta_apply(orbit_node_state_t *s, const Orbit__NodeDelta *m)
{
    const bool full = m->has_full && m->full;
    if (full) {
        char name[ORBIT_NAME_MAX];
        memcpy(name, s->name, sizeof name);
        free(s->gpus);
        free(s->capsules);
        memset(s, 0, sizeof *s);
        memcpy(s->name, name, sizeof name);
    }
    s->incarnation = m->incarnation;
    if (m->has_sampled_ms)
        s->sampled_ms = m->sampled_ms;
#define TAKE(field)                                                                                \
    do {                                                                                           \
        if (m->has_##field)                                                                        \
            s->field = m->field;                                                                   \
    } while (0)
    TAKE(interval_ms);
    TAKE(cpu_capacity_m);
    TAKE(cpu_used_m);
    TAKE(mem_capacity);
    TAKE(mem_used);
    TAKE(gpu_capacity);
    TAKE(load1);
    TAKE(load5);
    TAKE(load15);
    TAKE(pressure_available);
#undef TAKE
    if (m->pressure) {
        s->pressure.cpu_some = m->pressure->cpu_some;
        s->pressure.mem_some = m->pressure->mem_some;
        s->pressure.mem_full = m->pressure->mem_full;
        s->pressure.io_some = m->pressure->io_some;
        s->pressure.io_full = m->pressure->io_full;
    }
    if (m->has_labels_set && m->labels_set) {
        /* Rebuilt in a scratch state: orbit_node_label_set keeps it sorted. */
        orbit_node_state_t tmp;
        memset(&tmp, 0, sizeof tmp);
        for (size_t i = 0; i < m->n_labels; i++)
            if (orbit_node_label_set(&tmp, m->labels[i]->key, m->labels[i]->value) != ORBIT_OK)
                break; /* validated beforehand; cannot happen */
        memcpy(s->labels, tmp.labels, sizeof s->labels);
    }
    if (m->has_capsules_set && m->capsules_set) {
        orbit_capsule_t *cs = NULL;
        if (orbit_capsules_from_pb(m->capsules, m->n_capsules, &cs) != ORBIT_OK)
            return ORBIT_ENOMEM;
        free(s->capsules);
        s->capsules = cs;
        s->ncapsules = (uint32_t)m->n_capsules;
    }
    if (m->has_gpus_set && m->gpus_set) {
        /* GPU lists usually keep their length between samples: reuse the
         * array then, so a steady GPU node costs no allocation per delta. */
        orbit_gpu_t *gs = NULL;
        if (m->n_gpus == s->ngpus && s->gpus) {
            gs = s->gpus;
            memset(gs, 0, m->n_gpus * sizeof *gs);
        } else if (m->n_gpus) {
            gs = calloc(m->n_gpus, sizeof *gs);
            if (!gs)
                return ORBIT_ENOMEM;
        }
        for (size_t i = 0; i < m->n_gpus; i++) {
            const Orbit__Gpu *g = m->gpus[i];
            orbit_gpu_t *o = &gs[i];
            o->index = g->index;
            if (g->uuid) {
                strncpy(o->uuid, g->uuid, sizeof o->uuid - 1);
            }
            o->temp_c = g->temp_c;
            o->util_pct = g->util_pct;
            o->mem_used = g->mem_used;
            o->mem_total = g->mem_total;
            o->power_mw = g->power_mw;
            o->ecc_corrected = g->ecc_corrected;
            o->ecc_uncorrected = g->ecc_uncorrected;
            o->last_xid = g->last_xid;
            o->health = g->has_health ? (orbit_gpu_health_t)g->health : orbit_gpu_health_derive(o);
        }
        if (gs != s->gpus)
            free(s->gpus);
        s->gpus = gs;
        s->ngpus = (uint32_t)m->n_gpus;
    }
    return ORBIT_OK;
}

orbit_gpu_health_t orbit_gpu_health_derive(const orbit_gpu_t *g)
{
    static const uint32_t critical[] = {48, 62, 63, 64, 74, 79, 92, 94, 95};
    if (g->ecc_uncorrected > 0 || g->temp_c >= 95)
        return ORBIT_GPU_FAILED;
    for (size_t i = 0; i < sizeof critical / sizeof critical[0]; i++)
        if (g->last_xid == critical[i])
            return ORBIT_GPU_FAILED;
    if (g->temp_c >= 85 || g->last_xid != 0 || g->ecc_corrected >= 1000)
        return ORBIT_GPU_DEGRADED;
    return ORBIT_GPU_HEALTHY;
}
