/* orbit_sched_work: the proposer thread, one pipelined ledger connection. */
#include "orbit_sched_work.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "orbit_err.h"
#include "orbit_ledger_pipe.h"

#define WORKERS_MAX 4096 /* actions in flight */
#define POLL_MS     2    /* the pipe thread's look at new actions while answers are due */

/* An action in flight: the stage it is at and the proposals sent for it,
 * stamped by the pipe (the action's own proposals keep their fields). */
typedef struct flight flight_t;

typedef struct {
    flight_t *f;
    size_t which; /* 0: the action's proposal; i: bind i-1 */
} ticket_t;

struct flight {
    orbit_sched_act_t *a;
    size_t left;                    /* proposals sent and not answered */
    Orbit__Ledger__Proposal *props; /* 1 + nbinds: the proposal, then the binds */
    ticket_t *tickets;              /* 1 + nbinds: the pipe's cookies */
    flight_t *prev, *next;          /* the pipe thread's list of actions out */
};

/* The queues are the pool's shared state, owned by its mutex. */
struct orbit_sched_work {
    pthread_mutex_t mu;
    pthread_cond_t todo_cv, done_cv, ready_cv;
    zlist_t *todo, *done;
    size_t pending;
    bool stop, ready, failed;
    char err[256];
    char roots[1024], id[160];
    int timeout_ms;
    uint32_t max_flight;
    pthread_t thread;
    bool started;
};

void orbit_sched_work_run(orbit_sched_act_t *a, orbit_ledger_client_t *c, int timeout_ms)
{
    a->rc = orbit_ledger_client_propose(c, a->prop->commitment, a->prop->precondition, timeout_ms,
                                        &a->outcome, a->err, sizeof a->err);
    if (a->rc != ORBIT_OK || !a->outcome ||
        a->outcome->kind != ORBIT__LEDGER__OUTCOME_KIND__COMMITTED)
        return;
    for (size_t i = 0; i < a->nbinds; i++) {
        char err[160];
        Orbit__Ledger__Outcome *o = NULL;
        if (orbit_ledger_client_propose(c, a->binds[i]->commitment, a->binds[i]->precondition,
                                        timeout_ms, &o, err, sizeof err) == ORBIT_OK)
            a->bind_outcomes[i] = o;
    }
}

static void proposal_of(orbit_ledger_pipe_t *pp, const Orbit__Ledger__Proposal *from,
                        Orbit__Ledger__Proposal *to)
{
    orbit__ledger__proposal__init(to);
    to->commitment = from->commitment;
    to->precondition = from->precondition;
    orbit_ledger_pipe_stamp(pp, to);
}

static int send_one(orbit_ledger_pipe_t *pp, flight_t *f, size_t which, int timeout_ms)
{
    ticket_t *t = &f->tickets[which];
    t->f = f;
    t->which = which;
    int rc = orbit_ledger_pipe_submit(pp, &f->props[which], timeout_ms, t);
    if (!rc)
        f->left++;
    return rc;
}

static void flight_free(flight_t *f)
{
    if (f) {
        free(f->props);
        free(f->tickets);
        free(f);
    }
}

/* The pipe thread's actions out (a list: freed with their actions when the
 * pool stops with answers outstanding). */
typedef struct {
    flight_t *head;
    size_t n;
} flights_t;

static void flights_add(flights_t *l, flight_t *f)
{
    f->prev = NULL;
    f->next = l->head;
    if (l->head)
        l->head->prev = f;
    l->head = f;
    l->n++;
}

static void flights_del(flights_t *l, flight_t *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        l->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    l->n--;
}

static void hand_back(orbit_sched_work_t *p, orbit_sched_act_t *a)
{
    pthread_mutex_lock(&p->mu);
    if (zlist_append(p->done, a) != 0) {
        /* out of memory: the action is lost to the planner; count it as not
         * pending so the window does not shrink for good */
        p->pending--;
        orbit_sched_act_destroy(&a);
    }
    pthread_cond_signal(&p->done_cv);
    pthread_mutex_unlock(&p->mu);
}

/* Start an action: its proposal now; its binds once that commits. */
static void start_flight(orbit_sched_work_t *p, orbit_ledger_pipe_t *pp, flights_t *out,
                         orbit_sched_act_t *a)
{
    flight_t *f = calloc(1, sizeof *f);
    if (f) {
        f->props = calloc(1 + a->nbinds, sizeof *f->props);
        f->tickets = calloc(1 + a->nbinds, sizeof *f->tickets);
    }
    int rc = f && f->props && f->tickets ? ORBIT_OK : ORBIT_ENOMEM;
    if (!rc) {
        f->a = a;
        proposal_of(pp, a->prop, &f->props[0]);
        rc = send_one(pp, f, 0, p->timeout_ms);
    }
    if (rc) {
        a->rc = rc;
        snprintf(a->err, sizeof a->err, "cannot send: %s", orbit_strerror(rc));
        flight_free(f);
        hand_back(p, a);
        return;
    }
    flights_add(out, f);
}

/* One answer: the action's outcome (then its binds, all at once: they are
 * independent) or a bind's. The action goes back when nothing is left. */
static void on_done(orbit_sched_work_t *p, orbit_ledger_pipe_t *pp, flights_t *out,
                    orbit_ledger_done_t *d)
{
    ticket_t *t = d->cookie;
    flight_t *f = t->f;
    orbit_sched_act_t *a = f->a;
    f->left--;
    if (t->which == 0) {
        a->rc = d->rc;
        a->outcome = d->outcome;
        if (d->rc != ORBIT_OK)
            snprintf(a->err, sizeof a->err, "no leader answered: %s", orbit_strerror(d->rc));
        else if (a->outcome->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED)
            for (size_t i = 0; i < a->nbinds; i++) {
                proposal_of(pp, a->binds[i], &f->props[i + 1]);
                send_one(pp, f, i + 1, p->timeout_ms); /* not sent: not proposed */
            }
    } else if (d->rc == ORBIT_OK) {
        a->bind_outcomes[t->which - 1] = d->outcome;
    }
    if (!f->left) {
        flights_del(out, f);
        flight_free(f);
        hand_back(p, a);
    }
}

/* The pipe thread: takes actions while fewer than max_flight are out,
 * sends them on one pipelined connection, hands them back answered. */
static void *pipe_main(void *arg)
{
    orbit_sched_work_t *p = arg;
    char err[256] = "";
    orbit_ledger_pipe_t *pp = orbit_ledger_pipe_new(p->roots, p->id, err, sizeof err);
    orbit_ledger_done_t done[256];
    pthread_mutex_lock(&p->mu);
    if (pp)
        p->ready = true;
    else {
        p->failed = true;
        snprintf(p->err, sizeof p->err, "%s", err);
    }
    pthread_cond_broadcast(&p->ready_cv);
    pthread_mutex_unlock(&p->mu);
    flights_t out = {NULL, 0}; /* actions out */
    while (pp) {
        pthread_mutex_lock(&p->mu);
        if (!out.n && !p->stop && zlist_size(p->todo) == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p->todo_cv, &p->mu, &ts);
        }
        bool stop = p->stop;
        zlist_t *take = NULL;
        for (size_t k = out.n; !stop && k < p->max_flight && zlist_size(p->todo); k++) {
            if (!take && !(take = zlist_new()))
                break;
            orbit_sched_act_t *a = zlist_pop(p->todo);
            if (zlist_append(take, a) != 0) { /* out of memory: it waits for the next turn */
                zlist_push(p->todo, a);
                break;
            }
        }
        pthread_mutex_unlock(&p->mu);
        if (stop) {
            zlist_destroy(&take);
            break;
        }
        orbit_sched_act_t *a;
        while (take && (a = zlist_pop(take)))
            start_flight(p, pp, &out, a);
        zlist_destroy(&take);
        size_t n = 0;
        if (orbit_ledger_pipe_pending(pp) &&
            orbit_ledger_pipe_wait(pp, POLL_MS, done, 256, &n) == ORBIT_OK)
            for (size_t i = 0; i < n; i++)
                on_done(p, pp, &out, &done[i]);
    }
    /* Stopping: what is still out is dropped (a proposal may yet commit:
     * the planner's next view shows it). */
    orbit_ledger_pipe_destroy(&pp);
    while (out.head) {
        flight_t *f = out.head;
        flights_del(&out, f);
        orbit_sched_act_destroy(&f->a);
        flight_free(f);
    }
    return NULL;
}

static void free_acts(zlist_t *l)
{
    orbit_sched_act_t *a;
    while (l && (a = zlist_pop(l)))
        orbit_sched_act_destroy(&a);
}

void orbit_sched_work_destroy(orbit_sched_work_t **pw)
{
    if (!pw || !*pw)
        return;
    orbit_sched_work_t *p = *pw;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->todo_cv);
    pthread_mutex_unlock(&p->mu);
    if (p->started)
        pthread_join(p->thread, NULL);
    free_acts(p->todo);
    free_acts(p->done);
    zlist_destroy(&p->todo);
    zlist_destroy(&p->done);
    pthread_cond_destroy(&p->todo_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->ready_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    *pw = NULL;
}

orbit_sched_work_t *orbit_sched_work_new(const char *roots, const char *id_prefix, uint32_t workers,
                                         int timeout_ms, char *err, size_t errlen)
{
    if (workers == 0 || workers > WORKERS_MAX || strlen(roots) >= 1024) {
        orbit_errf(err, errlen, "workers must be 1..%d and the root list under 1024 bytes",
                   WORKERS_MAX);
        return NULL;
    }
    orbit_sched_work_t *p = calloc(1, sizeof *p);
    if (!p) {
        orbit_errf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->todo_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    pthread_cond_init(&p->ready_cv, NULL);
    snprintf(p->roots, sizeof p->roots, "%s", roots);
    snprintf(p->id, sizeof p->id, "%s-pipe", id_prefix);
    p->timeout_ms = timeout_ms;
    p->max_flight = workers;
    p->todo = zlist_new();
    p->done = zlist_new();
    if (!p->todo || !p->done) {
        orbit_errf(err, errlen, "out of memory");
        orbit_sched_work_destroy(&p);
        return NULL;
    }
    if (pthread_create(&p->thread, NULL, pipe_main, p) != 0) {
        orbit_errf(err, errlen, "cannot start the proposer thread: %s", strerror(errno));
        orbit_sched_work_destroy(&p);
        return NULL;
    }
    p->started = true;
    pthread_mutex_lock(&p->mu);
    while (!p->ready && !p->failed)
        pthread_cond_wait(&p->ready_cv, &p->mu);
    bool ok = p->ready;
    if (!ok)
        orbit_errf(err, errlen, "%s", p->err);
    pthread_mutex_unlock(&p->mu);
    if (!ok)
        orbit_sched_work_destroy(&p);
    return p;
}

int orbit_sched_work_submit(orbit_sched_work_t *w, orbit_sched_act_t *a)
{
    pthread_mutex_lock(&w->mu);
    int rc = zlist_append(w->todo, a) == 0 ? ORBIT_OK : ORBIT_ENOMEM;
    if (!rc) {
        w->pending++;
        pthread_cond_signal(&w->todo_cv);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

orbit_sched_act_t *orbit_sched_work_collect(orbit_sched_work_t *w, int wait_ms)
{
    pthread_mutex_lock(&w->mu);
    if (zlist_size(w->done) == 0 && wait_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (zlist_size(w->done) == 0)
            if (pthread_cond_timedwait(&w->done_cv, &w->mu, &ts) != 0)
                break;
    }
    orbit_sched_act_t *a = zlist_pop(w->done);
    if (a)
        w->pending--;
    pthread_mutex_unlock(&w->mu);
    return a;
}

size_t orbit_sched_work_pending(const orbit_sched_work_t *w)
{
    pthread_mutex_lock((pthread_mutex_t *)&w->mu);
    size_t n = w->pending;
    pthread_mutex_unlock((pthread_mutex_t *)&w->mu);
    return n;
}
