/* orbit_bench_ledger: three orbit-root replicas as child processes;
 * commitments/s, latency, failover and restart times of the Ephemeris. */
#include "orbit_bench_ledger.h"

#include <czmq.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "orbit_bench_placement.h"
#include "orbit_bench_proc.h"
#include "orbit_bench_stats.h"
#include "orbit_err.h"
#include "orbit_ledger_client.h"
#include "orbit_ledger_pipe.h"

#define REPLICAS         3
#define STATUS_MS        1000
#define LEADER_WAIT_MS   30000
#define CALL_MS          2000 /* a throughput proposal without an outcome by then is an error */
#define FAILOVER_CALL_MS 200  /* short, so proposers move on from a dead leader quickly */
#define FAILOVER_WAIT_MS 15000
#define CATCHUP_WAIT_MS  120000
#define STOP_GRACE_MS    5000

typedef struct {
    orbit_bench_proc_t procs[REPLICAS];
    char raft[REPLICAS][32], listen[REPLICAS][40], data[REPLICAS][300];
    char peers[128], roots[160], bin[4096], dir[256];
    char extra_buf[256]; /* cfg->root_args, split in place into extra */
    char *extra[ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX + 1];
} cluster_t;

typedef struct {
    uint64_t applied, ledger;
    unsigned id, leader;
} status_t;

int orbit_bench_ledger_split_args(const char *args, char *buf, size_t buflen,
                                  char *out[ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX + 1], char *err,
                                  size_t errlen)
{
    size_t n = 0;
    out[0] = NULL;
    if (!args)
        return 0;
    if (strlen(args) >= buflen) {
        snprintf(err, errlen, "--root-args is longer than %zu characters", buflen - 1);
        return -1;
    }
    snprintf(buf, buflen, "%s", args);
    for (char *save = NULL, *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (n == ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX) {
            snprintf(err, errlen, "--root-args has more than %d words",
                     ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX);
            return -1;
        }
        out[n++] = w;
    }
    out[n] = NULL;
    return 0;
}

void orbit_bench_ledger_cfg_default(orbit_bench_ledger_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->proposers[0] = 1;
    c->proposers[1] = 16;
    c->proposers[2] = 256;
    c->nproposers = 3;
    c->seconds = 10;
    c->failover_proposers = 16;
    c->restart_entries = 1000000;
    c->fill_proposers = 256;
    c->fill_timeout_s = 600;
    c->nodes = 10000;
}

int orbit_bench_ledger_parse_counts(const char *s, orbit_bench_ledger_cfg_t *c, char *err,
                                    size_t errlen)
{
    return orbit_bench_parse_counts(s, "proposers", 1, 4096, c->proposers,
                                    ORBIT_BENCH_LEDGER_COUNTS_MAX, &c->nproposers, err, errlen);
}

static bool stopped(const orbit_bench_ledger_cfg_t *c)
{
    return c->stop && *c->stop;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---------------------------------------------------------------- cluster */

static int replica_start(cluster_t *cl, int i)
{
    char id[12], name[24];
    snprintf(id, sizeof id, "%d", i + 1);
    snprintf(name, sizeof name, "root%d", i + 1);
    char *argv[14 + ORBIT_BENCH_LEDGER_ROOT_ARGS_MAX] = {
        cl->bin,   "--id",    id,         "--data",      cl->data[i],   "--raft", cl->raft[i],
        "--peers", cl->peers, "--listen", cl->listen[i], "--log-level", "warn"};
    size_t n = 13;
    for (char **a = cl->extra; *a; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    return orbit_bench_proc_start(&cl->procs[i], name, argv, cl->dir);
}

static int status_one(orbit_ledger_client_t *lc, int i, int ms, status_t *st)
{
    Orbit__Ledger__StatusRequest sr = ORBIT__LEDGER__STATUS_REQUEST__INIT;
    Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
    req.op_case = ORBIT__LEDGER__REQUEST__OP_STATUS;
    req.status = &sr;
    Orbit__Ledger__Reply *rep = NULL;
    int rc = orbit_ledger_client_call_one(lc, i, &req, ms, &rep);
    if (rc != ORBIT_OK)
        return rc;
    if (!rep->status) {
        orbit__ledger__reply__free_unpacked(rep, NULL);
        return ORBIT_EIO;
    }
    st->applied = rep->status->applied_index;
    st->ledger = rep->status->ledger_index;
    st->id = rep->status->id;
    st->leader = rep->status->leader_id;
    orbit__ledger__reply__free_unpacked(rep, NULL);
    return ORBIT_OK;
}

/* The leader (1-based id) as the leader itself reports it, within ms; 0 if
 * none. skip: a replica index not to ask (-1: none). */
static unsigned find_leader(const orbit_bench_ledger_cfg_t *c, orbit_ledger_client_t *lc, int skip,
                            int64_t ms, status_t *lst)
{
    int64_t deadline = orbit_bench_now_ms() + ms;
    while (orbit_bench_now_ms() < deadline && !stopped(c)) {
        for (int i = 0; i < REPLICAS; i++) {
            status_t st;
            if (i == skip || status_one(lc, i, 300, &st) != ORBIT_OK)
                continue;
            if (st.leader >= 1 && st.leader <= REPLICAS && st.leader == st.id) {
                if (lst)
                    *lst = st;
                return st.leader;
            }
        }
        orbit_bench_sleep_ms(10, c->stop);
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* ---------------------------------------------------------------- proposers */

typedef struct shared shared_t;

typedef struct {
    shared_t *sh;
    int id;
    int first;      /* pipelined: the first proposer id it carries */
    uint32_t count; /* pipelined: proposers it carries */
    pthread_t thread;
    bool started;
    uint64_t committed, conflicts, invalid, errors;
    uint32_t *lat_us; /* latencies of committed proposals */
    size_t nlat, caplat;
    uint64_t bytes, sent;
} worker_t;

struct shared {
    const char *roots;
    uint32_t nodes, run;
    int call_ms;
    bool retry; /* retry a proposal (same ids) until it has an outcome */
    atomic_int go, stop;
    atomic_llong reaped_us; /* failover: when the old leader was reaped (0: not yet) */
    atomic_llong first_ack_us;
};

static void note_latency(worker_t *w, int64_t us)
{
    if (w->nlat == w->caplat) {
        size_t cap = w->caplat ? w->caplat * 2 : 4096;
        uint32_t *p = realloc(w->lat_us, cap * sizeof *p);
        if (!p)
            return;
        w->lat_us = p;
        w->caplat = cap;
    }
    w->lat_us[w->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

typedef orbit_bench_placement_t prop_t;

static void prop_build(prop_t *x, const shared_t *sh, int id, uint64_t seq, uint64_t *rng)
{
    orbit_bench_placement_build(x, sh->run, (uint32_t)id, seq,
                                (uint32_t)(rng_next(rng) % sh->nodes));
}

/* Count one outcome (taken) that arrived at t1 for a proposal sent at t0. */
static void note_outcome(worker_t *w, Orbit__Ledger__Outcome *o, int64_t t0, int64_t t1)
{
    shared_t *sh = w->sh;
    if (o->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED) {
        if (!atomic_load(&sh->stop)) {
            w->committed++;
            note_latency(w, t1 - t0);
        }
        long long reaped = atomic_load(&sh->reaped_us);
        if (reaped && t1 > reaped) {
            long long cur = atomic_load(&sh->first_ack_us);
            while ((!cur || t1 < cur) && !atomic_compare_exchange_weak(&sh->first_ack_us, &cur, t1))
                ;
        }
    } else if (o->kind == ORBIT__LEDGER__OUTCOME_KIND__CONFLICT) {
        w->conflicts++;
    } else {
        w->invalid++;
    }
    orbit__ledger__outcome__free_unpacked(o, NULL);
}

static uint64_t rng_seed(const shared_t *sh, int id)
{
    return 0x9e3779b97f4a7c15ull ^ ((uint64_t)sh->run << 32) ^ (uint64_t)(id + 1);
}

/* A synchronous proposer: one thread, one client, one proposal at a time. */
static void *proposer(void *arg)
{
    worker_t *w = arg;
    shared_t *sh = w->sh;
    char err[256], cid[64];
    snprintf(cid, sizeof cid, "bench-%d-r%u-p%04d", (int)getpid(), sh->run, w->id);
    orbit_ledger_client_t *lc = orbit_ledger_client_new(sh->roots, cid, err, sizeof err);
    if (!lc) {
        w->errors++;
        return NULL;
    }
    uint64_t rng = rng_seed(sh, w->id);
    prop_t *x = malloc(sizeof *x);
    if (!x) {
        w->errors++;
        orbit_ledger_client_destroy(&lc);
        return NULL;
    }
    while (!atomic_load(&sh->go) && !atomic_load(&sh->stop))
        zclock_sleep(1);
    for (uint64_t seq = 0; !atomic_load(&sh->stop); seq++) {
        prop_build(x, sh, w->id, seq, &rng);
        orbit_ledger_client_stamp(lc, &x->p);
        Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
        req.op_case = ORBIT__LEDGER__REQUEST__OP_PROPOSE;
        req.propose = &x->p;
        req.request_id = UINT32_MAX; /* typical size of the transport id */
        w->bytes += orbit__ledger__request__get_packed_size(&req);
        w->sent++;
        int64_t t0 = now_us();
        Orbit__Ledger__Outcome *o = NULL;
        bool failed = false;
        do {
            Orbit__Ledger__Reply *rep = NULL;
            int rc = orbit_ledger_client_call(lc, &req, sh->call_ms, &rep);
            if (rc == ORBIT_OK) {
                if (rep->outcome) {
                    o = rep->outcome;
                    rep->outcome = NULL;
                }
                orbit__ledger__reply__free_unpacked(rep, NULL);
            }
            if (!o && !sh->retry)
                failed = true;
        } while (!o && !failed && !atomic_load(&sh->stop));
        if (!o) {
            if (!atomic_load(&sh->stop) || !sh->retry)
                w->errors++;
            continue;
        }
        note_outcome(w, o, t0, now_us());
    }
    free(x);
    orbit_ledger_client_destroy(&lc);
    return NULL;
}

/* Proposer i of a pipelined connection submits its next proposal. Its
 * bytes on the wire: the proposal plus its field tag and length prefix in
 * the ProposeBatch. */
static void pipe_next(worker_t *w, orbit_ledger_pipe_t *pp, prop_t *xs, uint64_t *seqs, uint32_t i,
                      uint64_t *rng)
{
    prop_t *x = &xs[i];
    prop_build(x, w->sh, w->first + (int)i, seqs[i]++, rng);
    orbit_ledger_pipe_stamp(pp, &x->p);
    size_t n = orbit__ledger__proposal__get_packed_size(&x->p);
    w->bytes += n + 1 + (n < 128 ? 1 : n < 16384 ? 2 : 3);
    w->sent++;
    if (orbit_ledger_pipe_submit(pp, &x->p, w->sh->call_ms, x) != ORBIT_OK)
        w->errors++;
}

/* A pipelined connection: one thread, one orbit_ledger_pipe, carrying
 * w->count proposers, each with exactly one proposal in flight: when its
 * outcome arrives, the proposer's next proposal is submitted. */
static void *pipe_worker(void *arg)
{
    worker_t *w = arg;
    shared_t *sh = w->sh;
    char err[256], cid[64];
    snprintf(cid, sizeof cid, "bench-%d-r%u-c%04d", (int)getpid(), sh->run, w->id);
    orbit_ledger_pipe_t *pp = orbit_ledger_pipe_new(sh->roots, cid, err, sizeof err);
    prop_t *xs = calloc(w->count, sizeof *xs);
    uint64_t *seqs = calloc(w->count, sizeof *seqs);
    orbit_ledger_done_t *done = calloc(w->count, sizeof *done);
    uint64_t rng = rng_seed(sh, w->id);
    if (!pp || !xs || !seqs || !done) {
        w->errors++;
        goto out;
    }
    while (!atomic_load(&sh->go) && !atomic_load(&sh->stop))
        zclock_sleep(1);
    for (uint32_t i = 0; i < w->count; i++)
        pipe_next(w, pp, xs, seqs, i, &rng);
    while (orbit_ledger_pipe_pending(pp) && !atomic_load(&sh->stop)) {
        size_t n = 0;
        if (orbit_ledger_pipe_wait(pp, 50, done, w->count, &n) != ORBIT_OK) {
            w->errors++;
            break;
        }
        int64_t t1 = now_us();
        for (size_t k = 0; k < n; k++) {
            prop_t *x = done[k].cookie;
            if (done[k].rc == ORBIT_OK)
                note_outcome(w, done[k].outcome, t1 - done[k].latency_us, t1);
            else if (!atomic_load(&sh->stop) && !sh->retry)
                w->errors++;
            if (done[k].rc != ORBIT_OK && sh->retry) { /* same ids again */
                orbit_ledger_pipe_submit(pp, &x->p, sh->call_ms, x);
                continue;
            }
            pipe_next(w, pp, xs, seqs, (uint32_t)(x - xs), &rng);
        }
    }
out:
    orbit_ledger_pipe_destroy(&pp);
    free(xs);
    free(seqs);
    free(done);
    return NULL;
}

typedef struct {
    shared_t sh;
    worker_t *ws;
    uint32_t n;
} crew_t;

/* n proposers: n threads, or over conns pipelined connections (threads)
 * when conns > 0. */
static int crew_start(crew_t *k, const char *roots, uint32_t n, uint32_t conns, uint32_t nodes,
                      uint32_t run, int call_ms, bool retry)
{
    memset(k, 0, sizeof *k);
    k->sh.roots = roots;
    k->sh.nodes = nodes;
    k->sh.run = run;
    k->sh.call_ms = call_ms;
    k->sh.retry = retry;
    uint32_t threads = conns ? (conns < n ? conns : n) : n;
    k->ws = calloc(threads, sizeof *k->ws);
    if (!k->ws)
        return ORBIT_ENOMEM;
    k->n = threads;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    uint32_t first = 0;
    for (uint32_t i = 0; i < threads; i++) {
        k->ws[i].sh = &k->sh;
        k->ws[i].id = (int)i;
        k->ws[i].first = (int)first;
        k->ws[i].count = n / threads + (i < n % threads ? 1 : 0);
        first += k->ws[i].count;
        if (pthread_create(&k->ws[i].thread, &attr, conns ? pipe_worker : proposer, &k->ws[i]) !=
            0) {
            pthread_attr_destroy(&attr);
            return ORBIT_EIO;
        }
        k->ws[i].started = true;
    }
    pthread_attr_destroy(&attr);
    return ORBIT_OK;
}

/* Counters summed over the crew at this moment (racy reads of plain
 * counters: good enough for progress; the final sums follow the join). */
static uint64_t crew_committed(const crew_t *k)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < k->n; i++)
        s += ((volatile worker_t *)&k->ws[i])->committed;
    return s;
}

static void crew_join(crew_t *k)
{
    atomic_store(&k->sh.stop, 1);
    for (uint32_t i = 0; i < k->n; i++)
        if (k->ws[i].started)
            pthread_join(k->ws[i].thread, NULL);
}

static void crew_free(crew_t *k)
{
    for (uint32_t i = 0; i < k->n; i++)
        free(k->ws[i].lat_us);
    free(k->ws);
    k->ws = NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void crew_sum(crew_t *k, orbit_bench_ledger_run_t *run, double *bytes)
{
    size_t nlat = 0;
    uint64_t b = 0, sent = 0;
    for (uint32_t i = 0; i < k->n; i++) {
        run->committed += k->ws[i].committed;
        run->conflicts += k->ws[i].conflicts;
        run->invalid += k->ws[i].invalid;
        run->errors += k->ws[i].errors;
        nlat += k->ws[i].nlat;
        b += k->ws[i].bytes;
        sent += k->ws[i].sent;
    }
    if (bytes && sent)
        *bytes = (double)b / (double)sent;
    run->p50_ms = run->p99_ms = -1;
    uint32_t *all = nlat ? malloc(nlat * sizeof *all) : NULL;
    if (!all)
        return;
    size_t at = 0;
    for (uint32_t i = 0; i < k->n; i++) {
        memcpy(all + at, k->ws[i].lat_us, k->ws[i].nlat * sizeof *all);
        at += k->ws[i].nlat;
    }
    qsort(all, nlat, sizeof *all, cmp_u32);
    run->p50_ms = all[(size_t)(0.50 * (double)(nlat - 1))] / 1000.0;
    run->p99_ms = all[(size_t)(0.99 * (double)(nlat - 1))] / 1000.0;
    free(all);
}

/* ------------------------------------------------------------------ phases */

static int check_alive(cluster_t *cl, orbit_bench_ledger_result_t *r)
{
    for (int i = 0; i < REPLICAS; i++)
        if (!orbit_bench_proc_alive(&cl->procs[i])) {
            snprintf(r->error, sizeof r->error, "%.40s exited (status %d); see %.180s",
                     cl->procs[i].name, cl->procs[i].status, cl->procs[i].log);
            return ORBIT_EIO;
        }
    return ORBIT_OK;
}

static int throughput(const orbit_bench_ledger_cfg_t *c, cluster_t *cl, uint32_t n, uint32_t run,
                      orbit_bench_ledger_run_t *out, double *bytes, orbit_bench_ledger_result_t *r)
{
    crew_t k;
    memset(out, 0, sizeof *out);
    out->proposers = n;
    int rc = crew_start(&k, cl->roots, n, c->conns, c->nodes, run, CALL_MS, false);
    if (rc == ORBIT_OK) {
        /* Let every client connect, then measure a fixed window. */
        orbit_bench_sleep_ms(200 + n, c->stop);
        int64_t t0 = now_us();
        atomic_store(&k.sh.go, 1);
        orbit_bench_sleep_ms((int64_t)c->seconds * 1000, c->stop);
        atomic_store(&k.sh.stop, 1);
        out->window_s = (double)(now_us() - t0) / 1e6;
    } else {
        snprintf(r->error, sizeof r->error, "cannot start %u proposer threads", n);
    }
    crew_join(&k);
    crew_sum(&k, out, bytes);
    crew_free(&k);
    out->per_s = out->window_s > 0 ? (double)out->committed / out->window_s : 0;
    if (rc == ORBIT_OK)
        rc = check_alive(cl, r);
    return rc;
}

/* Wait until replica i answers status with the leader's applied index.
 * Returns the time of the first answer (us) in *first and of the match in
 * *match. */
static int catch_up(const orbit_bench_ledger_cfg_t *c, orbit_ledger_client_t *lc, int i,
                    unsigned leader, int64_t ms, int64_t *first, int64_t *match, uint64_t *target)
{
    int64_t deadline = orbit_bench_now_ms() + ms;
    *first = 0;
    while (orbit_bench_now_ms() < deadline && !stopped(c)) {
        status_t st, ls;
        if (status_one(lc, i, 200, &st) == ORBIT_OK) {
            if (!*first)
                *first = now_us();
            if (status_one(lc, (int)leader - 1, STATUS_MS, &ls) == ORBIT_OK &&
                st.applied == ls.applied && st.applied > 0) {
                *match = now_us();
                *target = ls.applied;
                return ORBIT_OK;
            }
            continue; /* ask again at once: the answer itself paces the loop */
        }
        orbit_bench_sleep_ms(5, c->stop);
    }
    return ORBIT_ETIMEDOUT;
}

static int failover(const orbit_bench_ledger_cfg_t *c, cluster_t *cl, orbit_ledger_client_t *lc,
                    orbit_bench_ledger_result_t *r)
{
    crew_t k;
    unsigned old = 0;
    int rc = crew_start(&k, cl->roots, c->failover_proposers, c->conns, c->nodes, 100,
                        FAILOVER_CALL_MS, true);
    if (rc != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "cannot start the failover proposers");
        goto out;
    }
    atomic_store(&k.sh.go, 1);
    orbit_bench_sleep_ms(2000, c->stop);
    old = find_leader(c, lc, -1, 5000, NULL);
    if (!old) {
        snprintf(r->error, sizeof r->error, "failover: no leader before the kill");
        rc = ORBIT_ETIMEDOUT;
        goto out;
    }
    r->old_leader = old;
    orbit_bench_proc_t *p = &cl->procs[old - 1];
    int64_t t_kill = now_us();
    kill(p->pid, SIGKILL);
    for (int64_t d = orbit_bench_now_ms() + 5000;
         orbit_bench_proc_alive(p) && orbit_bench_now_ms() < d;)
        zclock_sleep(1);
    atomic_store(&k.sh.reaped_us, (long long)now_us());
    int64_t deadline = orbit_bench_now_ms() + FAILOVER_WAIT_MS;
    unsigned nl = 0;
    while (orbit_bench_now_ms() < deadline && !stopped(c)) {
        if (!nl) {
            status_t st;
            nl = find_leader(c, lc, (int)old - 1, 10, &st);
            if (nl) {
                r->new_leader = nl;
                r->election_ms = (double)(now_us() - t_kill) / 1000.0;
            }
        }
        if (atomic_load(&k.sh.first_ack_us) && nl)
            break;
        zclock_sleep(2);
    }
    long long ack = atomic_load(&k.sh.first_ack_us);
    if (!ack) {
        snprintf(r->error, sizeof r->error, "failover: no commitment within %d ms of the kill",
                 FAILOVER_WAIT_MS);
        rc = ORBIT_ETIMEDOUT;
        goto out;
    }
    r->failover_ms = (double)(ack - t_kill) / 1000.0;
    /* Keep proposing a little while the killed replica comes back. */
    if (replica_start(cl, (int)old - 1) != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "cannot restart root%u", old);
        rc = ORBIT_EIO;
        goto out;
    }
    orbit_bench_sleep_ms(500, c->stop);
out:
    crew_join(&k);
    crew_free(&k);
    if (rc == ORBIT_OK && r->new_leader) {
        int64_t f, m;
        uint64_t t;
        if (catch_up(c, lc, (int)old - 1, r->new_leader, CATCHUP_WAIT_MS, &f, &m, &t) != ORBIT_OK) {
            snprintf(r->error, sizeof r->error, "failover: root%u did not catch up", old);
            rc = ORBIT_ETIMEDOUT;
        }
    }
    return rc;
}

static int restart(const orbit_bench_ledger_cfg_t *c, cluster_t *cl, orbit_ledger_client_t *lc,
                   orbit_bench_ledger_result_t *r)
{
    status_t ls;
    unsigned leader = find_leader(c, lc, -1, 10000, &ls);
    if (!leader) {
        snprintf(r->error, sizeof r->error, "restart: no leader");
        return ORBIT_ETIMEDOUT;
    }
    /* Fill. */
    if (ls.ledger < c->restart_entries) {
        crew_t k;
        int64_t t0 = now_us();
        uint64_t start_ledger = ls.ledger;
        int rc =
            crew_start(&k, cl->roots, c->fill_proposers, c->conns, c->nodes, 200, CALL_MS, false);
        if (rc == ORBIT_OK) {
            atomic_store(&k.sh.go, 1);
            int64_t deadline = orbit_bench_now_ms() + (int64_t)c->fill_timeout_s * 1000;
            int64_t last_print = 0;
            while (orbit_bench_now_ms() < deadline && !stopped(c)) {
                orbit_bench_sleep_ms(500, c->stop);
                if (ls.ledger + crew_committed(&k) < c->restart_entries)
                    continue;
                if (status_one(lc, (int)leader - 1, STATUS_MS, &ls) == ORBIT_OK &&
                    ls.ledger >= c->restart_entries)
                    break;
                if (orbit_bench_now_ms() - last_print > 10000) {
                    last_print = orbit_bench_now_ms();
                    fprintf(stderr, "orbit-bench: ledger filled to %" PRIu64 "\n", ls.ledger);
                }
            }
        }
        crew_join(&k);
        crew_free(&k);
        if (rc != ORBIT_OK) {
            snprintf(r->error, sizeof r->error, "cannot start the fill proposers");
            return rc;
        }
        leader = find_leader(c, lc, -1, 10000, &ls);
        if (!leader) {
            snprintf(r->error, sizeof r->error, "restart: no leader after the fill");
            return ORBIT_ETIMEDOUT;
        }
        r->fill_s = (double)(now_us() - t0) / 1e6;
        r->fill_per_s = r->fill_s > 0 ? (double)(ls.ledger - start_ledger) / r->fill_s : 0;
    }
    r->filled = ls.ledger;
    /* Every replica at the same applied index before the stop. */
    int victim = (int)leader % REPLICAS; /* a follower */
    int64_t f, m;
    uint64_t t;
    if (catch_up(c, lc, victim, leader, CATCHUP_WAIT_MS, &f, &m, &t) != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "restart: root%d never caught up before the stop",
                 victim + 1);
        return ORBIT_ETIMEDOUT;
    }
    orbit_bench_proc_t *p = &cl->procs[victim];
    kill(p->pid, SIGTERM);
    int64_t d = orbit_bench_now_ms() + STOP_GRACE_MS;
    while (orbit_bench_proc_alive(p) && orbit_bench_now_ms() < d)
        zclock_sleep(5);
    if (orbit_bench_proc_alive(p)) {
        kill(p->pid, SIGKILL);
        while (orbit_bench_proc_alive(p))
            zclock_sleep(5);
    }
    int64_t t0 = now_us();
    if (replica_start(cl, victim) != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "cannot restart root%d", victim + 1);
        return ORBIT_EIO;
    }
    if (catch_up(c, lc, victim, leader, CATCHUP_WAIT_MS, &f, &m, &t) != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "restart: root%d did not catch up within %d s",
                 victim + 1, CATCHUP_WAIT_MS / 1000);
        return ORBIT_ETIMEDOUT;
    }
    r->first_answer_ms = (double)(f - t0) / 1000.0;
    r->restart_ms = (double)(m - t0) / 1000.0;
    r->target_index = t;
    return ORBIT_OK;
}

/* -------------------------------------------------------------------- run */

static int setup(const orbit_bench_ledger_cfg_t *c, cluster_t *cl, orbit_bench_ledger_result_t *r)
{
    if (orbit_bench_ledger_split_args(c->root_args, cl->extra_buf, sizeof cl->extra_buf, cl->extra,
                                      r->error, sizeof r->error))
        return ORBIT_EINVAL;
    if (orbit_bench_find_binary(c->bindir, "root", "orbit-root", cl->bin, sizeof cl->bin)) {
        snprintf(r->error, sizeof r->error,
                 "orbit-root not found (last tried %.180s); use --bindir", cl->bin);
        return ORBIT_ENOTFOUND;
    }
    snprintf(cl->dir, sizeof cl->dir, "/tmp/orbit-bench-ledger-XXXXXX");
    if (!mkdtemp(cl->dir)) {
        snprintf(r->error, sizeof r->error, "cannot create a directory in /tmp");
        cl->dir[0] = '\0';
        return ORBIT_EIO;
    }
    snprintf(r->dir, sizeof r->dir, "%s", cl->dir);
    int ports[2 * REPLICAS];
    if (orbit_bench_free_ports(ports, 2 * REPLICAS) != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "no free loopback ports");
        return ORBIT_EIO;
    }
    size_t pu = 0, ru = 0;
    for (int i = 0; i < REPLICAS; i++) {
        snprintf(cl->raft[i], sizeof cl->raft[i], "127.0.0.1:%d", ports[i]);
        snprintf(cl->listen[i], sizeof cl->listen[i], "tcp://127.0.0.1:%d", ports[REPLICAS + i]);
        snprintf(cl->data[i], sizeof cl->data[i], "%s/data%d", cl->dir, i + 1);
        pu += (size_t)snprintf(cl->peers + pu, sizeof cl->peers - pu, "%s%d=%s", i ? "," : "",
                               i + 1, cl->raft[i]);
        ru += (size_t)snprintf(cl->roots + ru, sizeof cl->roots - ru, "%s%s", i ? "," : "",
                               cl->listen[i]);
    }
    for (int i = 0; i < REPLICAS; i++)
        if (replica_start(cl, i) != ORBIT_OK) {
            snprintf(r->error, sizeof r->error, "cannot start root%d", i + 1);
            return ORBIT_EIO;
        }
    return ORBIT_OK;
}

int orbit_bench_ledger_run(const orbit_bench_ledger_cfg_t *c, orbit_bench_ledger_result_t *r)
{
    memset(r, 0, sizeof *r);
    r->failover_ms = r->election_ms = r->restart_ms = r->first_answer_ms = -1;
    r->fill_s = r->fill_per_s = -1;
    zsys_init(); /* before any thread creates a socket */
    cluster_t *cl = calloc(1, sizeof *cl);
    orbit_ledger_client_t *lc = NULL;
    char err[256];
    int rc = ORBIT_ENOMEM;
    if (!cl) {
        snprintf(r->error, sizeof r->error, "out of memory");
        return rc;
    }
    int64_t t0 = now_us();
    if ((rc = setup(c, cl, r)) != ORBIT_OK)
        goto out;
    lc = orbit_ledger_client_new(cl->roots, NULL, err, sizeof err);
    if (!lc) {
        snprintf(r->error, sizeof r->error, "client: %.200s", err);
        rc = ORBIT_EIO;
        goto out;
    }
    if (!find_leader(c, lc, -1, LEADER_WAIT_MS, NULL)) {
        snprintf(r->error, sizeof r->error, "no leader within %d s; see %.180s",
                 LEADER_WAIT_MS / 1000, cl->dir);
        rc = ORBIT_ETIMEDOUT;
        goto out;
    }
    r->leader_s = (double)(now_us() - t0) / 1e6;
    for (size_t i = 0; i < c->nproposers && !stopped(c); i++) {
        if (!c->stop || !*c->stop)
            fprintf(stderr, "orbit-bench: ledger with %u proposers...\n", c->proposers[i]);
        rc = throughput(c, cl, c->proposers[i], (uint32_t)i + 1, &r->runs[i], &r->request_bytes, r);
        r->nruns = i + 1;
        if (rc != ORBIT_OK)
            goto out;
    }
    if (c->failover_proposers && !stopped(c)) {
        fprintf(stderr, "orbit-bench: ledger failover with %u proposers...\n",
                c->failover_proposers);
        if ((rc = failover(c, cl, lc, r)) != ORBIT_OK)
            goto out;
    }
    if (c->restart_entries && !stopped(c)) {
        fprintf(stderr, "orbit-bench: ledger restart with %u commitments...\n", c->restart_entries);
        if ((rc = restart(c, cl, lc, r)) != ORBIT_OK)
            goto out;
    }
    if (stopped(c)) {
        snprintf(r->error, sizeof r->error, "interrupted");
        rc = ORBIT_EIO;
    }
out:
    orbit_ledger_client_destroy(&lc);
    if (orbit_bench_proc_stop_all(cl->procs, REPLICAS, STOP_GRACE_MS) > 0 && !r->error[0])
        snprintf(r->error, sizeof r->error, "some replicas needed SIGKILL; see %.200s", cl->dir);
    if (cl->dir[0] && rc == ORBIT_OK && !r->error[0] && !c->keep_logs) {
        nftw(cl->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        r->dir[0] = '\0';
    }
    free(cl);
    return rc;
}

/* ------------------------------------------------------------------ print */

static void json_num(const char *name, double v, bool comma)
{
    if (v < 0)
        printf("\"%s\":null%s", name, comma ? "," : "");
    else
        printf("\"%s\":%.3f%s", name, v, comma ? "," : "");
}

void orbit_bench_ledger_print(const orbit_bench_ledger_cfg_t *c,
                              const orbit_bench_ledger_result_t *r, bool json)
{
    if (json) {
        printf("{\"bench\":\"ledger\",\"replicas\":%d,\"seconds\":%u,\"nodes\":%u,\"conns\":%u,",
               REPLICAS, c->seconds, c->nodes, c->conns);
        json_num("leader_s", r->leader_s, true);
        json_num("request_bytes", r->request_bytes, true);
        printf("\"throughput\":[");
        for (size_t i = 0; i < r->nruns; i++) {
            const orbit_bench_ledger_run_t *x = &r->runs[i];
            printf("%s{\"proposers\":%u,\"window_s\":%.3f,\"committed\":%" PRIu64
                   ",\"conflicts\":%" PRIu64 ",\"invalid\":%" PRIu64 ",\"errors\":%" PRIu64 ",",
                   i ? "," : "", x->proposers, x->window_s, x->committed, x->conflicts, x->invalid,
                   x->errors);
            json_num("commitments_per_s", x->per_s, true);
            json_num("p50_ms", x->p50_ms, true);
            json_num("p99_ms", x->p99_ms, false);
            printf("}");
        }
        printf("],\"failover\":{\"proposers\":%u,\"old_leader\":%u,\"new_leader\":%u,",
               c->failover_proposers, r->old_leader, r->new_leader);
        json_num("election_ms", r->election_ms, true);
        json_num("kill_to_commit_ms", r->failover_ms, false);
        printf("},\"restart\":{\"target_entries\":%u,\"commitments\":%" PRIu64
               ",\"applied_index\":%" PRIu64 ",",
               c->restart_entries, r->filled, r->target_index);
        json_num("fill_s", r->fill_s, true);
        json_num("fill_per_s", r->fill_per_s, true);
        json_num("first_answer_ms", r->first_answer_ms, true);
        json_num("caught_up_ms", r->restart_ms, false);
        printf("},\"error\":");
        if (r->error[0]) {
            putchar('"');
            for (const char *p = r->error; *p; p++)
                if (*p == '"' || *p == '\\')
                    printf("\\%c", *p);
                else if ((unsigned char)*p >= 0x20)
                    putchar(*p);
            putchar('"');
        } else {
            printf("null");
        }
        printf("}\n");
        return;
    }
    printf("ledger: 3 replicas on loopback, fsync on; placements with node_fits on %u nodes, "
           "%.0f-byte proposals; ",
           c->nodes, r->request_bytes);
    if (c->conns)
        printf("proposers pipelined over %u connection%s\n", c->conns, c->conns > 1 ? "s" : "");
    else
        printf("a thread and client per proposer\n");
    printf("%10s %12s %10s %10s %10s %8s %8s %8s\n", "proposers", "commits/s", "p50 ms", "p99 ms",
           "committed", "conflict", "invalid", "errors");
    for (size_t i = 0; i < r->nruns; i++) {
        const orbit_bench_ledger_run_t *x = &r->runs[i];
        printf("%10u %12.0f %10.3f %10.3f %10" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
               x->proposers, x->per_s, x->p50_ms, x->p99_ms, x->committed, x->conflicts, x->invalid,
               x->errors);
    }
    if (r->failover_ms >= 0)
        printf("failover (%u proposers, kill -9 root%u): new leader root%u seen after %.0f ms, "
               "first commit after %.0f ms\n",
               c->failover_proposers, r->old_leader, r->new_leader, r->election_ms, r->failover_ms);
    if (r->restart_ms >= 0) {
        char fill[64] = "already there from the runs above";
        if (r->fill_per_s >= 0)
            snprintf(fill, sizeof fill, "filled at %.0f/s", r->fill_per_s);
        printf("restart: %" PRIu64 " commitments (%s), applied index %" PRIu64
               ": first status after %.0f ms, caught up after %.0f ms\n",
               r->filled, fill, r->target_index, r->first_answer_ms, r->restart_ms);
    }
    if (r->error[0])
        printf("error: %s\n", r->error);
    if (r->dir[0])
        printf("data and logs: %s\n", r->dir);
}
