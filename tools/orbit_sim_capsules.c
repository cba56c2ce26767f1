/* orbit_sim_capsules: placements on simulated nodes, learned on an actor
 * thread from a scheduling view, reported RUNNING. */
#include "orbit_sim_capsules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_log.h"
#include "orbit_names.h"
#include "orbit_sched_view.h"

#define SYNC_TIMEOUT_MS 5000
#define POLL_TIMEOUT_MS 2000
#define FRAMES_MAX      4096 /* changes per message (3 frames each) */

typedef struct {
    orbit_capsule_t *caps;
    uint32_t n, cap;
} node_caps_t;

struct orbit_sim_capsules {
    zactor_t *actor;
    char *prefix;
    uint32_t nodes;
    node_caps_t *per_node;
    orbit_sim_capsules_stats_t st;
};

typedef struct {
    char *roots;
    char *prefix;
    uint32_t nodes;
    uint32_t poll_ms;
} actor_args_t;

int64_t orbit_sim_capsules_node_index(const char *prefix, uint32_t nodes, const char *name)
{
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) || name[pl] != '-')
        return -1;
    const char *d = name + pl + 1;
    if (*d < '0' || *d > '9' || (d[0] == '0' && d[1]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(d, &end, 10);
    if (errno || *end || v >= nodes)
        return -1;
    return (int64_t)v;
}

/* ---------------------------------------------------------------- actor */

typedef struct {
    const char *prefix;
    uint32_t nodes;
    zhashx_t *now; /* capsule -> node index + 1 (as a pointer-sized integer) */
} collect_t;

static int collect(void *arg, const orbit_sched_placement_t *p)
{
    collect_t *c = arg;
    int64_t idx = orbit_sim_capsules_node_index(c->prefix, c->nodes, p->node);
    if (idx >= 0)
        zhashx_insert(c->now, p->capsule, (void *)(uintptr_t)(idx + 1));
    return 0;
}

/* Append one change; flush the message when it is full. */
static void change(zsock_t *pipe, zmsg_t **msg, bool add, uintptr_t idx1, const char *capsule)
{
    if (!*msg)
        *msg = zmsg_new();
    zmsg_addstr(*msg, add ? "+" : "-");
    zmsg_addstrf(*msg, "%lu", (unsigned long)(idx1 - 1));
    zmsg_addstr(*msg, capsule);
    if (zmsg_size(*msg) >= FRAMES_MAX * 3)
        zmsg_send(msg, pipe);
}

/* Send the difference between what was announced (sent) and now; sent
 * becomes now. */
static void announce(zsock_t *pipe, zhashx_t **sent, zhashx_t **now)
{
    zmsg_t *msg = NULL;
    for (void *v = zhashx_first(*sent); v; v = zhashx_next(*sent)) {
        const char *k = zhashx_cursor(*sent);
        void *w = zhashx_lookup(*now, k);
        if (w != v)
            change(pipe, &msg, false, (uintptr_t)v, k);
    }
    for (void *v = zhashx_first(*now); v; v = zhashx_next(*now)) {
        const char *k = zhashx_cursor(*now);
        if (zhashx_lookup(*sent, k) != v)
            change(pipe, &msg, true, (uintptr_t)v, k);
    }
    if (msg)
        zmsg_send(&msg, pipe);
    zhashx_destroy(sent);
    *sent = *now;
    *now = NULL;
}

static void sim_actor(zsock_t *pipe, void *arg)
{
    actor_args_t *a = arg;
    char err[256] = "";
    orbit_sched_view_t *v = orbit_sched_view_connect(a->roots, err, sizeof err);
    zhashx_t *sent = zhashx_new();
    zsock_signal(pipe, 0);
    if (!v)
        orbit_error("sim: capsules: %s", err);
    bool synced = false;
    int64_t last_log = 0;
    zpoller_t *poller = zpoller_new(pipe, NULL);
    while (v && sent && poller) {
        zsock_t *which = zpoller_wait(poller, (int)a->poll_ms);
        if (which == pipe || zpoller_terminated(poller))
            break; /* "$TERM" or interrupted */
        int64_t now = zclock_mono();
        bool changed = false;
        int rc = synced ? orbit_sched_view_poll(v, now, 3600 * 1000, POLL_TIMEOUT_MS, &changed, err,
                                                sizeof err)
                        : orbit_sched_view_sync(v, SYNC_TIMEOUT_MS, err, sizeof err);
        if (rc != ORBIT_OK) {
            if (now - last_log >= 10000) {
                orbit_warn("sim: capsules: ledger: %s", err);
                last_log = now;
            }
            continue; /* keep every capsule as announced */
        }
        if (!synced)
            changed = synced = true;
        if (!changed)
            continue;
        collect_t c = {a->prefix, a->nodes, zhashx_new()};
        if (!c.now)
            continue;
        orbit_sched_view_each_placement(v, collect, &c);
        announce(pipe, &sent, &c.now);
    }
    zpoller_destroy(&poller);
    zhashx_destroy(&sent);
    orbit_sched_view_destroy(&v);
    free(a->roots);
    free(a->prefix);
    free(a);
    /* Wait for "$TERM" if we left on an error, as zactor expects. */
    if (!zsys_interrupted) {
        char *cmd;
        while ((cmd = zstr_recv(pipe))) {
            bool term = !strcmp(cmd, "$TERM");
            zstr_free(&cmd);
            if (term)
                break;
        }
    }
}

/* ---------------------------------------------------------------- owner */

orbit_sim_capsules_t *orbit_sim_capsules_new(const char *roots, const char *prefix, uint32_t nodes,
                                             uint32_t poll_ms, char *err, size_t errlen)
{
    orbit_sim_capsules_t *c = calloc(1, sizeof *c);
    if (!c || !(c->prefix = strdup(prefix)) ||
        !(c->per_node = calloc(nodes ? nodes : 1, sizeof *c->per_node))) {
        snprintf(err, errlen, "out of memory");
        orbit_sim_capsules_destroy(&c);
        return NULL;
    }
    c->nodes = nodes;
    if (!roots)
        return c;
    actor_args_t *a = calloc(1, sizeof *a);
    if (!a || !(a->roots = strdup(roots)) || !(a->prefix = strdup(prefix))) {
        if (a) {
            free(a->roots);
            free(a);
        }
        snprintf(err, errlen, "out of memory");
        orbit_sim_capsules_destroy(&c);
        return NULL;
    }
    a->nodes = nodes;
    a->poll_ms = poll_ms < 50 ? 50 : poll_ms;
    c->actor = zactor_new(sim_actor, a);
    if (!c->actor) {
        free(a->roots);
        free(a->prefix);
        free(a);
        snprintf(err, errlen, "cannot start the capsule reader thread");
        orbit_sim_capsules_destroy(&c);
        return NULL;
    }
    return c;
}

void orbit_sim_capsules_destroy(orbit_sim_capsules_t **pc)
{
    if (!pc || !*pc)
        return;
    orbit_sim_capsules_t *c = *pc;
    zactor_destroy(&c->actor);
    if (c->per_node)
        for (uint32_t i = 0; i < c->nodes; i++)
            free(c->per_node[i].caps);
    free(c->per_node);
    free(c->prefix);
    free(c);
    *pc = NULL;
}

zsock_t *orbit_sim_capsules_sock(orbit_sim_capsules_t *c)
{
    return c->actor ? zactor_sock(c->actor) : NULL;
}

int orbit_sim_capsules_apply(orbit_sim_capsules_t *c, bool add, uint32_t idx, const char *capsule,
                             int64_t wall_ms)
{
    if (idx >= c->nodes || !orbit_name_id_ok(capsule) || strlen(capsule) >= ORBIT_CAPSULE_ID_MAX)
        return ORBIT_EINVAL;
    node_caps_t *nc = &c->per_node[idx];
    uint32_t at = 0;
    while (at < nc->n && strcmp(nc->caps[at].id, capsule))
        at++;
    if (!add) {
        if (at == nc->n)
            return ORBIT_OK;
        nc->caps[at] = nc->caps[--nc->n];
        c->st.removed++;
        c->st.capsules--;
        return ORBIT_OK;
    }
    if (at < nc->n)
        return ORBIT_OK;
    if (nc->n >= ORBIT_CAPSULES_MAX) {
        c->st.dropped++;
        return ORBIT_OK;
    }
    if (nc->n == nc->cap) {
        uint32_t cap = nc->cap ? nc->cap * 2 : 4;
        orbit_capsule_t *m = realloc(nc->caps, cap * sizeof *m);
        if (!m)
            return ORBIT_ENOMEM;
        nc->caps = m;
        nc->cap = cap;
    }
    orbit_capsule_t *k = &nc->caps[nc->n++];
    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "%s", capsule);
    k->state = ORBIT_CAPSULE_RUNNING;
    k->since_ms = wall_ms;
    c->st.placed++;
    c->st.capsules++;
    return ORBIT_OK;
}

int orbit_sim_capsules_recv(orbit_sim_capsules_t *c, int64_t wall_ms)
{
    zmsg_t *msg = zmsg_recv(zactor_sock(c->actor));
    if (!msg)
        return -1;
    c->st.updates++;
    for (;;) {
        char *op = zmsg_popstr(msg);
        if (!op)
            break;
        char *idx = zmsg_popstr(msg), *cap = zmsg_popstr(msg);
        char *end = NULL;
        unsigned long i = idx ? strtoul(idx, &end, 10) : 0;
        if (!idx || !cap || !end || *end || (strcmp(op, "+") && strcmp(op, "-")) ||
            orbit_sim_capsules_apply(c, op[0] == '+', (uint32_t)i, cap, wall_ms) != ORBIT_OK)
            c->st.bad++;
        zstr_free(&op);
        zstr_free(&idx);
        zstr_free(&cap);
    }
    zmsg_destroy(&msg);
    return 0;
}

uint32_t orbit_sim_capsules_of(const orbit_sim_capsules_t *c, uint32_t idx,
                               const orbit_capsule_t **caps)
{
    if (idx >= c->nodes) {
        *caps = NULL;
        return 0;
    }
    *caps = c->per_node[idx].caps;
    return c->per_node[idx].n;
}

void orbit_sim_capsules_stats(const orbit_sim_capsules_t *c, orbit_sim_capsules_stats_t *out)
{
    *out = c->st;
}
