/* orbit_ledger_pipe: many proposals in flight, sent in batches. */
#include "orbit_ledger_pipe.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_ledger_client.h"
#include "orbit_replicas.h"
#include "orbit_wire.h"

#define ATTEMPT_MS      1000  /* a batch unanswered this long goes to the next replica */
#define MIN_ATTEMPT_US  50000 /* ... or as long as its shortest proposal timeout, not below this */
#define ROUND_US        20000 /* pause after every replica said "not leader" */
#define BATCHES_MAX     64    /* requests in flight at once */
#define EXPIRE_EVERY_US 5000  /* deadlines are judged this often */
#define SILENT_SKIP_US  3000000 /* a replica that left a request unanswered is skipped this long */
#define BACKOFF_MIN_US  5000    /* first pause after "overloaded" and other retry answers ... */
#define BACKOFF_MAX_US  500000  /* ... doubling up to this while they keep coming */

typedef struct {
    Orbit__Ledger__Proposal *p; /* NULL: free slot */
    void *cookie;
    int64_t submitted_us, deadline_us;
    uint64_t tid; /* transport id of the request carrying it; 0: queued */
} slot_t;

typedef struct {
    uint64_t tid; /* 0: unused */
    int replica;
    int64_t sent_us, attempt_us; /* unanswered after attempt_us: next replica */
    size_t n;
    uint32_t *slots;
} batch_t;

struct orbit_ledger_pipe {
    orbit_ledger_client_t *client; /* ids and stamping */
    orbit_replicas_t replicas;
    int leader;
    int not_leader_round;                        /* consecutive replicas that said "not leader" */
    int64_t silent_until_us[ORBIT_REPLICAS_MAX]; /* left unanswered: skipped until then */
    int64_t heard_us[ORBIT_REPLICAS_MAX];        /* last reply from each replica */
    int64_t backoff_us; /* pause after answers asking for a retry (0: none lately) */
    int64_t hold_until_us;
    int64_t expired_us; /* last look for expired proposals */
    uint64_t next_tid;
    slot_t *slots;
    uint32_t cap;
    uint32_t *free_list;
    size_t n_free;
    uint32_t *queue; /* ring of slot indices waiting to be sent */
    size_t q_head, q_len;
    batch_t batches[BATCHES_MAX];
    orbit_ledger_done_t *done; /* completions not yet returned */
    size_t n_done, done_cap;
    size_t pending;
    orbit_ledger_pipe_stats_t st;
};

static int64_t now_us(void)
{
    return zclock_usecs();
}

orbit_ledger_pipe_t *orbit_ledger_pipe_new(const char *roots, const char *client_id, char *err,
                                           size_t errlen)
{
    orbit_ledger_pipe_t *pp = calloc(1, sizeof *pp);
    if (!pp) {
        orbit_errf(err, errlen, "out of memory");
        return NULL;
    }
    pp->client = orbit_ledger_client_new(roots, client_id, err, errlen);
    if (!pp->client) {
        free(pp);
        return NULL;
    }
    if (orbit_replicas_init(&pp->replicas, roots, err, errlen) != 0) {
        orbit_ledger_client_destroy(&pp->client);
        free(pp);
        return NULL;
    }
    pp->next_tid = 1;
    return pp;
}

void orbit_ledger_pipe_destroy(orbit_ledger_pipe_t **pp)
{
    if (!pp || !*pp)
        return;
    orbit_ledger_pipe_t *p = *pp;
    for (size_t i = 0; i < p->n_done; i++)
        if (p->done[i].outcome)
            orbit__ledger__outcome__free_unpacked(p->done[i].outcome, NULL);
    for (int i = 0; i < BATCHES_MAX; i++)
        free(p->batches[i].slots);
    orbit_replicas_close(&p->replicas);
    orbit_ledger_client_destroy(&p->client);
    free(p->slots);
    free(p->free_list);
    free(p->queue);
    free(p->done);
    free(p);
    *pp = NULL;
}

void orbit_ledger_pipe_stamp(orbit_ledger_pipe_t *pp, Orbit__Ledger__Proposal *p)
{
    orbit_ledger_client_stamp(pp->client, p);
}

size_t orbit_ledger_pipe_pending(const orbit_ledger_pipe_t *pp)
{
    return pp->pending;
}

void orbit_ledger_pipe_stats(const orbit_ledger_pipe_t *pp, orbit_ledger_pipe_stats_t *st)
{
    *st = pp->st;
}

/* Double the slot table (and the free list and queue sized with it). */
static int grow(orbit_ledger_pipe_t *pp)
{
    uint32_t cap = pp->cap ? pp->cap * 2 : 256;
    slot_t *s = realloc(pp->slots, cap * sizeof *s);
    if (!s)
        return ORBIT_ENOMEM;
    pp->slots = s;
    uint32_t *f = realloc(pp->free_list, cap * sizeof *f);
    if (!f)
        return ORBIT_ENOMEM;
    pp->free_list = f;
    uint32_t *q = malloc(cap * sizeof *q);
    if (!q)
        return ORBIT_ENOMEM;
    for (size_t i = 0; i < pp->q_len; i++) /* unwrap the ring */
        q[i] = pp->queue[(pp->q_head + i) % pp->cap];
    free(pp->queue);
    pp->queue = q;
    pp->q_head = 0;
    for (uint32_t i = pp->cap; i < cap; i++) {
        memset(&s[i], 0, sizeof s[i]);
        f[pp->n_free++] = cap - 1 - (i - pp->cap);
    }
    pp->cap = cap;
    return ORBIT_OK;
}

static void enqueue(orbit_ledger_pipe_t *pp, uint32_t i)
{
    pp->slots[i].tid = 0;
    pp->queue[(pp->q_head + pp->q_len++) % pp->cap] = i;
}

int orbit_ledger_pipe_submit(orbit_ledger_pipe_t *pp, Orbit__Ledger__Proposal *p, int timeout_ms,
                             void *cookie)
{
    if (!p || !p->client_id || !*p->client_id)
        return ORBIT_EINVAL;
    if (!pp->n_free && grow(pp) != ORBIT_OK)
        return ORBIT_ENOMEM;
    uint32_t i = pp->free_list[--pp->n_free];
    slot_t *s = &pp->slots[i];
    s->p = p;
    s->cookie = cookie;
    s->submitted_us = now_us();
    s->deadline_us = s->submitted_us + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000;
    enqueue(pp, i);
    pp->pending++;
    pp->st.submitted++;
    return ORBIT_OK;
}

static int complete(orbit_ledger_pipe_t *pp, uint32_t i, int rc, Orbit__Ledger__Outcome *o)
{
    if (pp->n_done == pp->done_cap) {
        size_t cap = pp->done_cap ? pp->done_cap * 2 : 256;
        orbit_ledger_done_t *d = realloc(pp->done, cap * sizeof *d);
        if (!d)
            return ORBIT_ENOMEM;
        pp->done = d;
        pp->done_cap = cap;
    }
    slot_t *s = &pp->slots[i];
    orbit_ledger_done_t *d = &pp->done[pp->n_done++];
    d->cookie = s->cookie;
    d->rc = rc;
    d->outcome = o;
    d->latency_us = now_us() - s->submitted_us;
    s->p = NULL;
    s->tid = 0;
    pp->free_list[pp->n_free++] = i;
    pp->st.completed++;
    if (rc == ORBIT_ETIMEDOUT)
        pp->st.timed_out++;
    return ORBIT_OK;
}

/* Every slot of b still carried by it goes back to the queue. */
static void requeue(orbit_ledger_pipe_t *pp, batch_t *b)
{
    for (size_t k = 0; k < b->n; k++) {
        slot_t *s = &pp->slots[b->slots[k]];
        if (s->p && s->tid == b->tid) {
            enqueue(pp, b->slots[k]);
            pp->st.resent++;
        }
    }
    b->tid = 0;
}

/* The replica after `from` that has not gone silent lately (any one if all
 * have): after a leader dies, the pipe asks the survivors in turn while
 * they elect, instead of waiting out the dead one on every round. */
static int after(const orbit_ledger_pipe_t *pp, int from)
{
    int64_t now = now_us();
    for (int k = 1; k <= pp->replicas.n; k++) {
        int i = (from + k) % pp->replicas.n;
        if (pp->silent_until_us[i] <= now)
            return i;
    }
    return (from + 1) % pp->replicas.n;
}

static void next_replica(orbit_ledger_pipe_t *pp, int from)
{
    if (pp->leader != from)
        return; /* someone already moved on */
    pp->leader = after(pp, pp->leader);
    if (++pp->not_leader_round >= pp->replicas.n) {
        pp->not_leader_round = 0;
        pp->hold_until_us = now_us() + ROUND_US; /* an election is under way */
    }
}

/* Send queued proposals in batches while a request slot is free. */
static int send_queued(orbit_ledger_pipe_t *pp)
{
    if (!pp->q_len || now_us() < pp->hold_until_us)
        return ORBIT_OK;
    Orbit__Ledger__Proposal **ps = malloc(ORBIT_LEDGER_BATCH_MAX * sizeof *ps);
    if (!ps)
        return ORBIT_ENOMEM;
    int rc = ORBIT_OK;
    while (pp->q_len) {
        batch_t *b = NULL;
        for (int k = 0; k < BATCHES_MAX && !b; k++)
            if (!pp->batches[k].tid)
                b = &pp->batches[k];
        if (!b)
            break;
        if (!b->slots && !(b->slots = malloc(ORBIT_LEDGER_BATCH_MAX * sizeof *b->slots))) {
            rc = ORBIT_ENOMEM;
            break;
        }
        zsock_t *sock = orbit_replicas_sock(&pp->replicas, pp->leader);
        if (!sock)
            break;
        size_t n = 0;
        int64_t attempt = ATTEMPT_MS * 1000LL;
        while (n < ORBIT_LEDGER_BATCH_MAX && n < pp->q_len) {
            uint32_t i = pp->queue[(pp->q_head + n) % pp->cap];
            const slot_t *s = &pp->slots[i];
            if (s->deadline_us - s->submitted_us < attempt) /* short timeouts move on sooner */
                attempt = s->deadline_us - s->submitted_us;
            b->slots[n] = i;
            ps[n++] = s->p;
        }
        Orbit__Ledger__ProposeBatch pb = ORBIT__LEDGER__PROPOSE_BATCH__INIT;
        pb.proposals = ps;
        pb.n_proposals = n;
        Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
        req.request_id = pp->next_tid;
        req.op_case = ORBIT__LEDGER__REQUEST__OP_PROPOSE_BATCH;
        req.propose_batch = &pb;
        if (orbit_wire_send(sock, NULL, 0, ORBIT_MSG_LEDGER_REQUEST, &req.base) != ORBIT_OK)
            break; /* queue full or no route yet: try again on the next wait */
        b->tid = pp->next_tid++;
        b->replica = pp->leader;
        b->sent_us = now_us();
        b->attempt_us = attempt > MIN_ATTEMPT_US ? attempt : MIN_ATTEMPT_US;
        b->n = n;
        for (size_t k = 0; k < n; k++)
            pp->slots[b->slots[k]].tid = b->tid;
        pp->q_head = (pp->q_head + n) % pp->cap;
        pp->q_len -= n;
        pp->st.requests++;
    }
    free(ps);
    return rc;
}

static batch_t *batch_of(orbit_ledger_pipe_t *pp, uint64_t tid)
{
    for (int k = 0; k < BATCHES_MAX; k++)
        if (tid && pp->batches[k].tid == tid)
            return &pp->batches[k];
    return NULL;
}

static int on_reply(orbit_ledger_pipe_t *pp, Orbit__Ledger__Reply *r)
{
    batch_t *b = batch_of(pp, r->request_id);
    if (!b)
        return ORBIT_OK; /* an answer to a batch already sent elsewhere */
    if (r->has_not_leader && r->not_leader) {
        pp->st.not_leader++;
        next_replica(pp, b->replica);
        requeue(pp, b);
        return ORBIT_OK;
    }
    pp->not_leader_round = 0;
    bool retry = r->n_results != b->n; /* an error for the whole request: retry it */
    int rc = ORBIT_OK;
    for (size_t k = 0; k < b->n && !rc && !retry; k++) {
        uint32_t i = b->slots[k];
        slot_t *s = &pp->slots[i];
        if (!s->p || s->tid != b->tid)
            continue; /* timed out meanwhile */
        Orbit__Ledger__BatchResult *res = r->results[k];
        if (res->outcome) {
            rc = complete(pp, i, ORBIT_OK, res->outcome);
            if (!rc)
                res->outcome = NULL;
        } else {
            enqueue(pp, i); /* not committed, overloaded: same ids again */
            pp->st.resent++;
            retry = true;
        }
    }
    requeue(pp, b); /* what is left of it (all of it after a request error or out of memory) */
    /* Retry answers mean a struggling or changing leader: pause sending,
     * longer while they keep coming, instead of a request/error loop. */
    if (retry) {
        pp->backoff_us = pp->backoff_us ? pp->backoff_us * 2 : BACKOFF_MIN_US;
        if (pp->backoff_us > BACKOFF_MAX_US)
            pp->backoff_us = BACKOFF_MAX_US;
        pp->hold_until_us = now_us() + pp->backoff_us;
    } else {
        pp->backoff_us = 0;
    }
    return rc;
}

/* Proposals past their deadline complete with ORBIT_ETIMEDOUT; batches
 * unanswered for ATTEMPT_MS go to the next replica on a fresh socket. */
static int expire(orbit_ledger_pipe_t *pp)
{
    int64_t now = now_us();
    if (now - pp->expired_us < EXPIRE_EVERY_US)
        return ORBIT_OK;
    pp->expired_us = now;
    /* A replica is silent when a request to it has waited its attempt
     * time and nothing at all came from it meanwhile (a busy leader still
     * answers other batches; a batch may take several entries). Its
     * socket is dropped with every request on it. */
    for (int k = 0; k < BATCHES_MAX; k++) {
        batch_t *b = &pp->batches[k];
        if (!b->tid)
            continue;
        int r = b->replica;
        int64_t since = b->sent_us > pp->heard_us[r] ? b->sent_us : pp->heard_us[r];
        if (now - since < b->attempt_us)
            continue;
        orbit_replicas_drop(&pp->replicas, r);
        pp->silent_until_us[r] = now + SILENT_SKIP_US;
        if (pp->leader == r)
            pp->leader = after(pp, pp->leader);
        for (int j = 0; j < BATCHES_MAX; j++)
            if (pp->batches[j].tid && pp->batches[j].replica == r)
                requeue(pp, &pp->batches[j]);
    }
    size_t keep = 0;
    int rc = ORBIT_OK;
    for (size_t k = 0; k < pp->q_len; k++) {
        uint32_t i = pp->queue[(pp->q_head + k) % pp->cap];
        if (!rc && now >= pp->slots[i].deadline_us)
            rc = complete(pp, i, ORBIT_ETIMEDOUT, NULL);
        else
            pp->queue[(pp->q_head + keep++) % pp->cap] = i;
    }
    pp->q_len = keep;
    for (uint32_t i = 0; i < pp->cap && !rc; i++)
        if (pp->slots[i].p && pp->slots[i].tid && now >= pp->slots[i].deadline_us)
            rc = complete(pp, i, ORBIT_ETIMEDOUT, NULL);
    return rc;
}

/* Read every reply already queued on the replica sockets. */
static int drain(orbit_ledger_pipe_t *pp)
{
    for (int i = 0; i < pp->replicas.n; i++) {
        zsock_t *sock = pp->replicas.socks[i];
        while (sock && (zsock_events(sock) & ZMQ_POLLIN)) {
            if (orbit_wire_recv(sock, 0, &pp->replicas.rx) != ORBIT_OK)
                break;
            pp->heard_us[i] = now_us();
            ProtobufCMessage *m = NULL;
            if (orbit_wire_decode(orbit_rx_data(&pp->replicas.rx), orbit_rx_size(&pp->replicas.rx),
                                  ORBIT_MSG_LEDGER_REPLY, NULL, NULL, &m) != ORBIT_OK)
                continue;
            int rc = on_reply(pp, (Orbit__Ledger__Reply *)m);
            protobuf_c_message_free_unpacked(m, NULL);
            if (rc)
                return rc;
        }
    }
    return ORBIT_OK;
}

static void take(orbit_ledger_pipe_t *pp, orbit_ledger_done_t *done, size_t max, size_t *n)
{
    size_t k = pp->n_done < max ? pp->n_done : max;
    memcpy(done, pp->done, k * sizeof *done);
    memmove(pp->done, pp->done + k, (pp->n_done - k) * sizeof *pp->done);
    pp->n_done -= k;
    pp->pending -= k;
    *n = k;
}

int orbit_ledger_pipe_wait(orbit_ledger_pipe_t *pp, int wait_ms, orbit_ledger_done_t *done,
                           size_t max, size_t *n)
{
    *n = 0;
    int64_t deadline = now_us() + (int64_t)(wait_ms > 0 ? wait_ms : 0) * 1000;
    for (;;) {
        /* Replies first: an answer already here is never taken for silence. */
        int rc = drain(pp);
        if (!rc)
            rc = expire(pp);
        if (!rc)
            rc = send_queued(pp);
        if (rc)
            return rc;
        if (pp->n_done || !max) {
            take(pp, done, max, n);
            return ORBIT_OK;
        }
        int64_t now = now_us();
        if (now >= deadline)
            return ORBIT_OK;
        /* Sleep until a reply, the end of the wait, or the next look at the
         * timers (deadlines and attempt times are judged every
         * EXPIRE_EVERY_US while anything is pending; a held-back send may
         * be due sooner). */
        int64_t wake = deadline;
        if (pp->pending && pp->expired_us + EXPIRE_EVERY_US < wake)
            wake = pp->expired_us + EXPIRE_EVERY_US;
        if (pp->q_len && pp->hold_until_us > now && pp->hold_until_us < wake)
            wake = pp->hold_until_us;
        if (wake <= now)
            wake = now + 1000; /* due but judged a moment ago: no spin */
        zmq_pollitem_t items[ORBIT_REPLICAS_MAX];
        int k = 0;
        for (int i = 0; i < pp->replicas.n; i++)
            if (pp->replicas.socks[i])
                items[k++] =
                    (zmq_pollitem_t){zsock_resolve(pp->replicas.socks[i]), 0, ZMQ_POLLIN, 0};
        long ms = (long)((wake - now + 999) / 1000); /* >= 1: never an infinite poll */
        if (k)
            zmq_poll(items, k, ms);
        else
            zclock_sleep((int)ms);
    }
}
