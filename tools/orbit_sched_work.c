/* orbit_sched_work: proposer threads, one ledger client each. */
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

#define WORKERS_MAX 256

typedef struct worker {
    struct orbit_sched_work *pool;
    pthread_t thread;
    bool started;
    uint32_t i;
    char id[160];
} worker_t;

/* The queues are the pool's shared state, owned by its mutex. */
struct orbit_sched_work {
    pthread_mutex_t mu;
    pthread_cond_t todo_cv, done_cv, ready_cv;
    zlist_t *todo, *done;
    size_t pending;
    bool stop;
    uint32_t ready, failed;
    char err[256];
    char roots[1024];
    int timeout_ms;
    uint32_t n;
    worker_t *w;
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

static void *worker_main(void *arg)
{
    worker_t *me = arg;
    orbit_sched_work_t *p = me->pool;
    char err[256] = "";
    orbit_ledger_client_t *c = orbit_ledger_client_new(p->roots, me->id, err, sizeof err);
    pthread_mutex_lock(&p->mu);
    if (c)
        p->ready++;
    else {
        p->failed++;
        snprintf(p->err, sizeof p->err, "worker %u: %s", me->i, err);
    }
    pthread_cond_broadcast(&p->ready_cv);
    while (c) {
        while (!p->stop && zlist_size(p->todo) == 0)
            pthread_cond_wait(&p->todo_cv, &p->mu);
        if (p->stop)
            break;
        orbit_sched_act_t *a = zlist_pop(p->todo);
        pthread_mutex_unlock(&p->mu);
        orbit_sched_work_run(a, c, p->timeout_ms);
        pthread_mutex_lock(&p->mu);
        if (zlist_append(p->done, a) != 0) {
            /* out of memory: the action is lost to the planner; count it
             * as not pending so the window does not shrink for good */
            p->pending--;
            orbit_sched_act_destroy(&a);
        }
        pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    orbit_ledger_client_destroy(&c);
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
    for (uint32_t i = 0; i < p->n; i++)
        if (p->w[i].started)
            pthread_join(p->w[i].thread, NULL);
    free_acts(p->todo);
    free_acts(p->done);
    zlist_destroy(&p->todo);
    zlist_destroy(&p->done);
    pthread_cond_destroy(&p->todo_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->ready_cv);
    pthread_mutex_destroy(&p->mu);
    free(p->w);
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
    p->timeout_ms = timeout_ms;
    p->todo = zlist_new();
    p->done = zlist_new();
    p->w = calloc(workers, sizeof *p->w);
    if (!p->todo || !p->done || !p->w) {
        orbit_errf(err, errlen, "out of memory");
        orbit_sched_work_destroy(&p);
        return NULL;
    }
    p->n = workers;
    uint32_t started = 0;
    for (uint32_t i = 0; i < workers; i++) {
        worker_t *w = &p->w[i];
        w->pool = p;
        w->i = i;
        snprintf(w->id, sizeof w->id, "%s-w%u", id_prefix, i);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            orbit_errf(err, errlen, "cannot start worker thread %u: %s", i, strerror(errno));
            break;
        }
        w->started = true;
        started++;
    }
    pthread_mutex_lock(&p->mu);
    while (p->ready + p->failed < started)
        pthread_cond_wait(&p->ready_cv, &p->mu);
    bool ok = started == workers && p->failed == 0;
    if (!ok && p->failed)
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
