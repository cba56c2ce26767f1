/* leaf_exec: reconcile the desired capsules against the runner; capsule health into node state. */
#include "leaf_exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"

/* One capsule the executor knows: a process in the runner, or a failure without one. */
typedef struct {
    char id[ORBIT_CAPSULE_ID_MAX];
    uint64_t index;                        /* the placement it was started (or failed) for */
    bool proc;                             /* the runner holds it */
    bool stopping;                         /* stop requested */
    bool reported;                         /* its terminal state went out in a sample */
    char reason[ORBIT_CAPSULE_REASON_MAX]; /* !proc: why it never ran */
    int64_t since_ms;                      /* !proc: monotonic time of the failure */
} track_t;

struct orbit_leaf_exec {
    orbit_leaf_capsules_t *run;
    orbit_leaf_wants_t want;
    track_t *t;
    size_t n, cap;
    /* Wall clock minus monotonic clock, taken at the first sample: since_ms
     * of a capsule must not move from sample to sample (the scheduler
     * recognises a failure report by it), which recomputing it from two
     * clocks read a moment apart would make it do. */
    int64_t wall_offset;
    bool has_offset;
    orbit_leaf_exec_stats_t st;
};

orbit_leaf_exec_t *orbit_leaf_exec_new(const orbit_leaf_capsules_cfg_t *cfg)
{
    orbit_leaf_exec_t *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    orbit_leaf_wants_init(&x->want);
    x->run = orbit_leaf_capsules_new(cfg);
    if (!x->run) {
        free(x);
        return NULL;
    }
    return x;
}

void orbit_leaf_exec_destroy(orbit_leaf_exec_t **px)
{
    if (!px || !*px)
        return;
    orbit_leaf_exec_t *x = *px;
    orbit_leaf_capsules_destroy(&x->run);
    orbit_leaf_wants_close(&x->want);
    free(x->t);
    free(x);
    *px = NULL;
}

size_t orbit_leaf_exec_count(const orbit_leaf_exec_t *x)
{
    return x->n;
}

const orbit_leaf_capsules_t *orbit_leaf_exec_runner(const orbit_leaf_exec_t *x)
{
    return x->run;
}

const orbit_leaf_exec_stats_t *orbit_leaf_exec_stats(const orbit_leaf_exec_t *x)
{
    return &x->st;
}

static track_t *track_find(orbit_leaf_exec_t *x, const char *id)
{
    for (size_t i = 0; i < x->n; i++)
        if (!strcmp(x->t[i].id, id))
            return &x->t[i];
    return NULL;
}

/* Drop track i (forgetting its runner record). */
static void track_remove(orbit_leaf_exec_t *x, size_t i)
{
    if (x->t[i].proc)
        orbit_leaf_capsule_forget(x->run, x->t[i].id);
    x->t[i] = x->t[--x->n];
}

static bool runner_terminal(orbit_leaf_capsule_state_t s)
{
    return s != ORBIT_LEAF_CAPSULE_STARTING && s != ORBIT_LEAF_CAPSULE_RUNNING;
}

/* Terminal: a failure without a process, or a process that ended (or that the runner lost). */
static bool track_terminal(const orbit_leaf_exec_t *x, const track_t *t)
{
    orbit_leaf_capsule_info_t info;
    if (!t->proc || orbit_leaf_capsule_get(x->run, t->id, &info) != ORBIT_OK)
        return true;
    return runner_terminal(info.state);
}

/* True when t is not what the desired set asks for (absent, or another placement). */
static bool track_unwanted(const orbit_leaf_exec_t *x, const track_t *t)
{
    const orbit_leaf_want_t *w = orbit_leaf_wants_find(&x->want, t->id);
    return !w || w->index != t->index;
}

/* Start (or record as failed) want w as a new track; room is checked by the caller. */
static void start(orbit_leaf_exec_t *x, const orbit_leaf_want_t *w, int64_t now_ms)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 8;
        track_t *t = realloc(x->t, cap * sizeof *t);
        if (!t)
            return; /* tried again at the next reconcile */
        x->t = t;
        x->cap = cap;
    }
    track_t *t = &x->t[x->n];
    memset(t, 0, sizeof *t);
    memcpy(t->id, w->id, sizeof t->id);
    t->index = w->index;
    t->since_ms = now_ms;
    if (w->reason[0]) {
        snprintf(t->reason, sizeof t->reason, "%s", w->reason);
        x->st.unrunnable++;
    } else {
        char err[ORBIT_LEAF_CAPSULE_REASON_MAX];
        int rc = orbit_leaf_capsule_start(x->run, w->id, w->argv, &w->res, now_ms, err, sizeof err);
        if (rc == ORBIT_OK) {
            t->proc = true;
            x->st.starts++;
        } else {
            orbit_errf(t->reason, sizeof t->reason, "cannot start: %s",
                       err[0] ? err : orbit_strerror(rc));
            x->st.start_errors++;
        }
    }
    x->n++;
}

static void reconcile(orbit_leaf_exec_t *x, int64_t now_ms)
{
    for (size_t i = 0; i < x->n; i++) {
        track_t *t = &x->t[i];
        if (!t->proc || t->stopping || track_terminal(x, t) || !track_unwanted(x, t))
            continue;
        if (orbit_leaf_capsule_stop(x->run, t->id, now_ms) == ORBIT_OK) {
            t->stopping = true;
            x->st.stops++;
        }
    }
    for (size_t k = 0; k < x->want.n; k++) {
        const orbit_leaf_want_t *w = &x->want.v[k];
        track_t *t = track_find(x, w->id);
        if (t && t->index == w->index)
            continue; /* running, or terminal and kept as it is */
        if (t) {
            if (!track_terminal(x, t))
                continue; /* the old placement's process is being stopped */
            track_remove(x, (size_t)(t - x->t));
        }
        if (x->n >= ORBIT_CAPSULES_MAX) {
            x->st.over_limit++;
            continue;
        }
        start(x, w, now_ms);
    }
}

void orbit_leaf_exec_want(orbit_leaf_exec_t *x, orbit_leaf_wants_t *w, int64_t now_ms)
{
    orbit_leaf_wants_close(&x->want);
    x->want = *w;
    orbit_leaf_wants_init(w);
    x->st.wants++;
    reconcile(x, now_ms);
}

/* Wall-clock time of monotonic t, never negative. */
static int64_t wall_of(const orbit_leaf_exec_t *x, int64_t t)
{
    int64_t v = t + x->wall_offset;
    return v > 0 ? v : 0;
}

static orbit_capsule_state_t map_state(orbit_leaf_capsule_state_t s)
{
    switch (s) {
    case ORBIT_LEAF_CAPSULE_STARTING: return ORBIT_CAPSULE_STARTING;
    case ORBIT_LEAF_CAPSULE_RUNNING: return ORBIT_CAPSULE_RUNNING;
    case ORBIT_LEAF_CAPSULE_EXITED: return ORBIT_CAPSULE_EXITED;
    case ORBIT_LEAF_CAPSULE_OOM_KILLED: return ORBIT_CAPSULE_OOM_KILLED;
    case ORBIT_LEAF_CAPSULE_STOPPED: return ORBIT_CAPSULE_STOPPED;
    case ORBIT_LEAF_CAPSULE_FAILED:
    default: return ORBIT_CAPSULE_FAILED;
    }
}

/* Track t as reported health. */
static void fill(const orbit_leaf_exec_t *x, const track_t *t, int64_t now_ms, orbit_capsule_t *c)
{
    memset(c, 0, sizeof *c);
    memcpy(c->id, t->id, sizeof c->id);
    orbit_leaf_capsule_info_t info;
    if (!t->proc) {
        c->state = ORBIT_CAPSULE_FAILED;
        snprintf(c->reason, sizeof c->reason, "%s", t->reason);
        c->since_ms = wall_of(x, t->since_ms);
    } else if (orbit_leaf_capsule_get(x->run, t->id, &info) == ORBIT_OK) {
        c->state = map_state(info.state);
        c->exit_code = info.state == ORBIT_LEAF_CAPSULE_EXITED ? info.exit_code : 0;
        snprintf(c->reason, sizeof c->reason, "%s", info.reason ? info.reason : "");
        c->since_ms = wall_of(x, runner_terminal(info.state) && info.ended_ms ? info.ended_ms
                                                                              : info.started_ms);
    } else {
        c->state = ORBIT_CAPSULE_FAILED;
        snprintf(c->reason, sizeof c->reason, "lost by the runner");
        c->since_ms = wall_of(x, now_ms);
    }
}

int orbit_leaf_exec_sample(orbit_leaf_exec_t *x, int64_t now_ms, int64_t wall_ms,
                           orbit_node_state_t *s)
{
    if (!x->has_offset) {
        x->wall_offset = wall_ms - now_ms;
        x->has_offset = true;
    }
    orbit_leaf_capsules_poll(x->run, now_ms);
    for (size_t i = x->n; i-- > 0;) {
        const track_t *t = &x->t[i];
        if (t->reported && track_unwanted(x, t) && track_terminal(x, t)) {
            track_remove(x, i);
            x->st.forgotten++;
        }
    }
    reconcile(x, now_ms);
    orbit_capsule_t *caps = x->n ? calloc(x->n, sizeof *caps) : NULL;
    if (x->n && !caps) {
        x->st.state_errors++;
        return ORBIT_ENOMEM;
    }
    for (size_t i = 0; i < x->n; i++)
        fill(x, &x->t[i], now_ms, &caps[i]);
    int rc = orbit_node_state_set_capsules(s, caps, (uint32_t)x->n);
    if (rc == ORBIT_OK) {
        for (size_t i = 0; i < x->n; i++)
            if (caps[i].state != ORBIT_CAPSULE_STARTING && caps[i].state != ORBIT_CAPSULE_RUNNING)
                x->t[i].reported = true;
    } else {
        x->st.state_errors++;
    }
    free(caps);
    return rc;
}
