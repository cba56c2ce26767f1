/* ledger_applier: a follower's entries applied in batches on a thread of
 * their own (see ledger_applier.h). */
#include "ledger_applier.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_log.h"

/* A batch also goes at once when the held entries reach these (an entry
 * is ~25 KB under load); at four times these the loop applies them itself
 * (the thread is behind: the loop waits rather than memory grows). */
#define BATCH_BYTES   (8u << 20)
#define BATCH_ENTRIES 1024

/* Held entries: copies, in index order. */
typedef struct {
    orbit_ledger_entry_t *v;
    size_t n, cap, bytes;
} list_t;

struct orbit_ledger_applier {
    orbit_ledger_t *ledger;
    orbit_ledger_applier_fn apply;
    uint64_t batch_ms;
    list_t held; /* loop: not yet handed to the thread */
    list_t work; /* the thread's batch (the loop's again once !busy) */
    uint64_t last_index;
    orbit_ledger_applier_stats_t st;
    /* shared with the thread, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool busy, quit;
    bool ran;     /* the thread finished `work` (rc says how); collect takes it */
    int rc;       /* the last batch's */
    bool failing; /* a batch failed and none has succeeded since */
    /* loop */
    uv_timer_t timer;
    uv_async_t done;
    int open_handles;
    void (*closed)(void *);
    void *closed_arg;
};

static void list_free(list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((void *)l->v[i].entry);
    l->n = 0;
    l->bytes = 0;
}

static void *run(void *arg)
{
    orbit_ledger_applier_t *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->busy && !a->quit)
            pthread_cond_wait(&a->cv, &a->mu);
        if (!a->busy)
            break; /* quit, nothing handed over */
        pthread_mutex_unlock(&a->mu);
        int rc = a->apply(a->ledger, a->work.v, a->work.n);
        pthread_mutex_lock(&a->mu);
        a->rc = rc;
        a->ran = true;
        a->busy = false;
        pthread_cond_broadcast(&a->cv);
        uv_async_send(&a->done);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* The outcome rc of applying batch l, here or on the thread: on success
 * its entries go; on failure they stay, the applier is failing until a
 * batch succeeds, and the failure is logged. */
static void settle(orbit_ledger_applier_t *a, list_t *l, int rc)
{
    a->failing = rc != ORBIT_OK;
    if (rc == ORBIT_OK) {
        a->st.batches++;
        a->st.last_batch = l->n;
        list_free(l);
        return;
    }
    a->st.failures++;
    orbit_error("ledger: cannot apply entries %llu..%llu: %s (kept, tried again)",
                (unsigned long long)l->v[0].raft_index,
                (unsigned long long)l->v[l->n - 1].raft_index, orbit_strerror(rc));
}

/* The thread's batch is done (or there was none): settle it; a failed one
 * stays in work, to be handed over (or applied by sync) before what is
 * held. True if it failed. Loop, thread idle. */
static bool collect(orbit_ledger_applier_t *a)
{
    pthread_mutex_lock(&a->mu);
    bool ran = a->ran;
    a->ran = false;
    pthread_mutex_unlock(&a->mu);
    if (!ran || !a->work.n)
        return false; /* nothing the thread finished (work may hold an unapplied batch) */
    settle(a, &a->work, a->rc);
    return a->failing;
}

static void wait_idle(orbit_ledger_applier_t *a)
{
    pthread_mutex_lock(&a->mu);
    while (a->busy)
        pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    collect(a);
}

static bool is_busy(orbit_ledger_applier_t *a)
{
    pthread_mutex_lock(&a->mu);
    bool busy = a->busy;
    pthread_mutex_unlock(&a->mu);
    return busy;
}

/* Give the thread its next batch, if it is idle: a failed batch again
 * (collect left it in work), else what is held. */
static void hand_over(orbit_ledger_applier_t *a)
{
    if (is_busy(a))
        return;
    collect(a);
    if (!a->work.n) { /* else a failed batch: it first */
        if (!a->held.n)
            return;
        list_t t = a->work; /* empty, keeps its array */
        a->work = a->held;
        a->held = t;
    }
    uv_timer_stop(&a->timer);
    pthread_mutex_lock(&a->mu);
    a->busy = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void on_timer(uv_timer_t *t)
{
    hand_over(t->data); /* while busy: on_done hands over when the thread is done */
}

static void on_done(uv_async_t *h)
{
    orbit_ledger_applier_t *a = h->data;
    if (is_busy(a))
        return; /* the loop gave it another batch since: its own send follows */
    bool failed = collect(a);
    if (!a->held.n && !a->work.n)
        return;
    if (uv_is_active((uv_handle_t *)&a->timer))
        return; /* the first held has not waited batch_ms yet */
    if (failed) /* again after batch_ms, not in a tight loop */
        uv_timer_start(&a->timer, on_timer, a->batch_ms, 0);
    else
        hand_over(a); /* the first held waited batch_ms while the thread was busy */
}

orbit_ledger_applier_t *orbit_ledger_applier_new(orbit_ledger_t *l, uv_loop_t *loop,
                                                 uint64_t batch_ms, char *err, size_t errlen)
{
    orbit_ledger_applier_t *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->ledger = l;
    a->apply = orbit_ledger_apply_many;
    a->batch_ms = batch_ms ? batch_ms : 1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (pthread_create(&a->thread, NULL, run, a) != 0) {
        snprintf(err, errlen, "cannot start the ledger's apply thread");
        pthread_cond_destroy(&a->cv);
        pthread_mutex_destroy(&a->mu);
        free(a);
        return NULL;
    }
    uv_timer_init(loop, &a->timer);
    uv_async_init(loop, &a->done, on_done);
    a->timer.data = a->done.data = a;
    return a;
}

int orbit_ledger_applier_hold(orbit_ledger_applier_t *a, uint64_t index, const void *buf,
                              size_t len)
{
    if (index <= a->last_index || (!buf && len))
        return ORBIT_EINVAL;
    if (a->failing)
        return ORBIT_EAGAIN; /* the caller syncs and gives raft the error */
    if (a->held.n == a->held.cap) {
        size_t cap = a->held.cap ? a->held.cap * 2 : 64;
        orbit_ledger_entry_t *v = realloc(a->held.v, cap * sizeof *v);
        if (!v)
            return ORBIT_ENOMEM;
        a->held.v = v;
        a->held.cap = cap;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return ORBIT_ENOMEM;
    if (len)
        memcpy(copy, buf, len);
    a->held.v[a->held.n++] = (orbit_ledger_entry_t){copy, len, index};
    a->held.bytes += len;
    a->last_index = index;
    a->st.held++;
    if (a->held.bytes >= 4 * (size_t)BATCH_BYTES || a->held.n >= 4 * BATCH_ENTRIES)
        (void)orbit_ledger_applier_sync(a); /* the thread is behind */
    else if (a->held.bytes >= BATCH_BYTES || a->held.n >= BATCH_ENTRIES)
        hand_over(a);
    if (a->held.n && !uv_is_active((uv_handle_t *)&a->timer))
        uv_timer_start(&a->timer, on_timer, a->batch_ms, 0);
    return ORBIT_OK;
}

/* Apply l's entries here (the thread idle); on failure they stay. */
static int apply_here(orbit_ledger_applier_t *a, list_t *l)
{
    if (!l->n)
        return ORBIT_OK;
    int rc = a->apply(a->ledger, l->v, l->n);
    settle(a, l, rc);
    return rc;
}

int orbit_ledger_applier_sync(orbit_ledger_applier_t *a)
{
    if (!a->work.n && !a->held.n)
        return ORBIT_OK; /* the common case on a leader: no lock taken (the thread
                          * only ever runs with work.n > 0) */
    wait_idle(a);
    if (!a->work.n && !a->held.n)
        return ORBIT_OK;
    uv_timer_stop(&a->timer);
    int rc = apply_here(a, &a->work); /* a failed batch, kept in work */
    if (!rc)
        rc = apply_here(a, &a->held);
    if (rc)
        uv_timer_start(&a->timer, on_timer, a->batch_ms, 0);
    return rc;
}

uint64_t orbit_ledger_applier_pending(const orbit_ledger_applier_t *a)
{
    return a->held.n || a->work.n ? a->last_index : 0;
}

const orbit_ledger_applier_stats_t *orbit_ledger_applier_stats(const orbit_ledger_applier_t *a)
{
    return &a->st;
}

void orbit_ledger_applier_set_apply(orbit_ledger_applier_t *a, orbit_ledger_applier_fn fn)
{
    a->apply = fn ? fn : orbit_ledger_apply_many;
}

static void on_closed(uv_handle_t *h)
{
    orbit_ledger_applier_t *a = h->data;
    if (--a->open_handles)
        return;
    void (*closed)(void *) = a->closed;
    void *arg = a->closed_arg;
    free(a->held.v);
    free(a->work.v);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
    if (closed)
        closed(arg);
}

void orbit_ledger_applier_close(orbit_ledger_applier_t *a, void (*closed)(void *arg), void *arg)
{
    (void)orbit_ledger_applier_sync(a); /* what fails is replayed from the log */
    pthread_mutex_lock(&a->mu);
    a->quit = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    list_free(&a->held);
    list_free(&a->work);
    a->closed = closed;
    a->closed_arg = arg;
    a->open_handles = 2;
    uv_close((uv_handle_t *)&a->timer, on_closed);
    uv_close((uv_handle_t *)&a->done, on_closed);
}
