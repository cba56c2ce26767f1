/* test_sched_util: building a scheduling view by hand for the scheduler's
 * unit tests — commitments written as JSON (single quotes stand for
 * double) applied at consecutive indexes, and telemetry rows. Header-only,
 * included once per test program. */
#ifndef TEST_SCHED_UTIL_H
#define TEST_SCHED_UTIL_H

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_json.h"
#include "orbit_sched_view.h"

#define T0  1700000000000LL
#define GIB (1LL << 30)

#define OK(call) assert_int_equal((call), ORBIT_OK)

/* Not every test program uses every helper. */
#define UTIL static __attribute__((unused))

UTIL Orbit__Ledger__Proposal *mkprop_v(const char *fmt, va_list ap)
{
    char text[8192], full[8400], err[256];
    json_error_t je;
    ProtobufCMessage *m = NULL;
    static uint64_t req;
    if ((size_t)vsnprintf(text, sizeof text, fmt, ap) >= sizeof text)
        fail_msg("test JSON too long");
    snprintf(full, sizeof full, "{'client_id':'t','request_id':%" PRIu64 ",'commitment':%s}", ++req,
             text);
    for (char *p = full; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_t *j = json_loads(full, 0, &je);
    if (!j)
        fail_msg("bad test JSON %s: %s", full, je.text);
    if (orbit_json_to_pb(j, &orbit__ledger__proposal__descriptor, &m, err, sizeof err))
        fail_msg("test proposal %s: %s", full, err);
    json_decref(j);
    return (Orbit__Ledger__Proposal *)m;
}

/* The proposal of commitment JSON fmt (single quotes for double). */
UTIL Orbit__Ledger__Proposal *mkprop(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
UTIL Orbit__Ledger__Proposal *mkprop(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Orbit__Ledger__Proposal *p = mkprop_v(fmt, ap);
    va_end(ap);
    return p;
}

/* Apply the commitment (JSON) at the view's next index. */
UTIL void commit(orbit_sched_view_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
UTIL void commit(orbit_sched_view_t *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Orbit__Ledger__Proposal *p = mkprop_v(fmt, ap);
    va_end(ap);
    uint64_t idx = orbit_sched_view_index(v) + 1;
    int rc = orbit_sched_view_apply_commit(v, idx, T0 + (int64_t)idx, p);
    orbit__ledger__proposal__free_unpacked(p, NULL);
    if (rc)
        fail_msg("commit at %" PRIu64 ": %s", idx, orbit_strerror(rc));
}

/* A module's desired state. */
UTIL void module(orbit_sched_view_t *v, const char *mission, const char *mod, uint32_t count,
                 int64_t cpu_m, int64_t mem, uint32_t gpus, int32_t prio, bool gang,
                 const char *principal)
{
    char pr[96] = "";
    if (principal)
        snprintf(pr, sizeof pr, ",'principal':'%s'", principal);
    commit(v,
           "{'module_adjustment':{'mission':'%s','module':'%s','adjustment':{'count':%u,"
           "'resources':{'cpu_m':%" PRId64 ",'mem':%" PRId64 ",'gpus':%u},'command':'[]',"
           "'priority':%d,'gang':%s%s}}}",
           mission, mod, count, cpu_m, mem, gpus, prio, gang ? "true" : "false", pr);
}

UTIL void grant(orbit_sched_view_t *v, const char *principal, int64_t cpu_m, int64_t mem,
                uint32_t gpus)
{
    commit(v,
           "{'quota_grant':{'principal':'%s','resources':{'cpu_m':%" PRId64 ",'mem':%" PRId64
           ",'gpus':%u}}}",
           principal, cpu_m, mem, gpus);
}

UTIL void place(orbit_sched_view_t *v, const char *capsule, const char *node, int64_t cpu_m,
                int64_t mem, uint32_t gpus)
{
    commit(v,
           "{'placement':{'capsule':'%s','node':'%s','envelope':{'cpu_m':%" PRId64 ",'mem':%" PRId64
           ",'gpus':%u}}}",
           capsule, node, cpu_m, mem, gpus);
}

/* A telemetry row. */
typedef struct {
    const char *node;
    Orbit__NodeStatus status;
    int64_t cpu_m, mem;
    uint32_t gpus, gpus_healthy, pressure;
    const char *label_k, *label_v; /* one label, or NULL */
    const char *cap_id;            /* one capsule reported, or NULL */
    Orbit__CapsuleState cap_state;
    int32_t cap_exit;
    int64_t cap_since;
} row_spec_t;

UTIL void row(orbit_sched_view_t *v, const row_spec_t *s, int64_t now)
{
    Orbit__NodeRow r = ORBIT__NODE_ROW__INIT;
    r.node = (char *)s->node;
    r.status = s->status;
    r.shard = "rack-1";
    r.has_cpu_capacity_m = true;
    r.cpu_capacity_m = s->cpu_m;
    r.has_mem_capacity = true;
    r.mem_capacity = s->mem;
    r.has_gpu_capacity = true;
    r.gpu_capacity = s->gpus;
    r.has_gpu_healthy = true;
    r.gpu_healthy = s->gpus_healthy;
    r.has_mem_pressure = true;
    r.mem_pressure = s->pressure;
    Orbit__Label l = ORBIT__LABEL__INIT;
    Orbit__Label *lp[1] = {&l};
    if (s->label_k) {
        l.key = (char *)s->label_k;
        l.value = (char *)s->label_v;
        r.n_labels = 1;
        r.labels = lp;
    }
    Orbit__CapsuleHealth h = ORBIT__CAPSULE_HEALTH__INIT;
    Orbit__CapsuleHealth *hp[1] = {&h};
    if (s->cap_id) {
        h.id = (char *)s->cap_id;
        h.state = s->cap_state;
        h.has_exit_code = true;
        h.exit_code = s->cap_exit;
        h.has_since_ms = true;
        h.since_ms = s->cap_since;
        if (s->cap_state == ORBIT__CAPSULE_STATE__CAPSULE_FAILED)
            h.reason = "exec: no such file";
        r.n_capsules = 1;
        r.capsules = hp;
    }
    int rc = orbit_sched_view_apply_row(v, &r, now);
    if (rc)
        fail_msg("row %s: %s", s->node, orbit_strerror(rc));
}

/* An alive node of cpu_m millicores, mem bytes and gpus healthy GPUs. */
UTIL void alive(orbit_sched_view_t *v, const char *node, int64_t cpu_m, int64_t mem, uint32_t gpus)
{
    row_spec_t s = {
        node, ORBIT__NODE_STATUS__ALIVE, cpu_m, mem, gpus, gpus, 0, NULL, NULL, NULL, 0, 0, 0};
    row(v, &s, 0);
}

UTIL void status(orbit_sched_view_t *v, const char *node, Orbit__NodeStatus st, int64_t now)
{
    row_spec_t s = {node, st, 4000, 8 * GIB, 0, 0, 0, NULL, NULL, NULL, 0, 0, 0};
    row(v, &s, now);
}

#endif
