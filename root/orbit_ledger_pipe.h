/* orbit_ledger_pipe: pipelined proposing to the Ephemeris (installed header).
 *
 * One client thread keeps many proposals in flight on one connection:
 * submitted proposals go out in ProposeBatch requests of up to
 * ORBIT_LEDGER_BATCH_MAX, without waiting for the answers to earlier ones,
 * and their outcomes come back as completions, each with the cookie given
 * at submission. Leader following and retries are those of
 * orbit_ledger_client: a "not leader" answer or a silent replica (a request
 * unanswered for one second — or its proposals' timeout if shorter — with
 * nothing else heard from that replica meanwhile) sends the proposals on to
 * the next replica, and a silent replica is skipped for a few seconds; an
 * answer "not committed; retry" or "overloaded" sends them again after a
 * pause (5 ms, doubling to 500 ms while such answers keep coming) — always
 * with the (client_id, request_id) they were stamped with, so the ledger's
 * dedup table makes every retry safe and returns the original outcome.
 * Deadlines are judged every 5 ms.
 *
 *     orbit_ledger_pipe_t *pp = orbit_ledger_pipe_new(roots, NULL, err, sizeof err);
 *     for (...) {                      // p lives until its completion
 *         orbit_ledger_pipe_stamp(pp, p);
 *         orbit_ledger_pipe_submit(pp, p, 5000, cookie);
 *     }
 *     orbit_ledger_done_t done[64];
 *     size_t n;
 *     while (orbit_ledger_pipe_pending(pp)) {
 *         orbit_ledger_pipe_wait(pp, 100, done, 64, &n);
 *         for (size_t i = 0; i < n; i++) ... done[i].outcome, done[i].cookie
 *     }
 *
 * Thread rules: a pipe belongs to one thread; a program with pipes in
 * several threads calls zsys_init() once before starting them. */
#ifndef ORBIT_LEDGER_PIPE_H
#define ORBIT_LEDGER_PIPE_H

#include <stddef.h>
#include <stdint.h>

#include "ledger.pb-c.h"

/* Proposals in one ProposeBatch request (the replicas refuse more). */
#define ORBIT_LEDGER_BATCH_MAX 1024

typedef struct orbit_ledger_pipe orbit_ledger_pipe_t;

typedef struct {
    void *cookie;
    /* ORBIT_OK: outcome is set (malloc'd, the caller frees it with
     * orbit__ledger__outcome__free_unpacked); ORBIT_ETIMEDOUT: no outcome
     * within the proposal's timeout (it may still commit later: submit it
     * again with the same ids to learn its outcome). */
    int rc;
    Orbit__Ledger__Outcome *outcome;
    int64_t latency_us; /* from submit to completion */
} orbit_ledger_done_t;

/* Pipe to the comma-separated root endpoints; client_id as for
 * orbit_ledger_client_new (NULL: generated). NULL with a one-line reason in
 * err. */
orbit_ledger_pipe_t *orbit_ledger_pipe_new(const char *roots, const char *client_id, char *err,
                                           size_t errlen);
/* Close the sockets; proposals still pending are dropped without a
 * completion. NULL-safe. */
void orbit_ledger_pipe_destroy(orbit_ledger_pipe_t **pp);

/* Give p this pipe's client id and a fresh request id (once per logical
 * proposal; a resubmission after ORBIT_ETIMEDOUT keeps them). */
void orbit_ledger_pipe_stamp(orbit_ledger_pipe_t *pp, Orbit__Ledger__Proposal *p);

/* Queue p (borrowed until its completion is returned) to be sent with the
 * next batch; its outcome is due within timeout_ms. Sending happens in
 * orbit_ledger_pipe_wait. Errors: ORBIT_EINVAL (p not stamped by a valid
 * client id), ORBIT_ENOMEM. */
int orbit_ledger_pipe_submit(orbit_ledger_pipe_t *pp, Orbit__Ledger__Proposal *p, int timeout_ms,
                             void *cookie);

/* Proposals submitted whose completion has not been returned yet. */
size_t orbit_ledger_pipe_pending(const orbit_ledger_pipe_t *pp);

/* Send what is queued, then collect up to max completions into done,
 * waiting up to wait_ms for the first one (0: only what has arrived).
 * *n is the number returned. Errors: ORBIT_ENOMEM. */
int orbit_ledger_pipe_wait(orbit_ledger_pipe_t *pp, int wait_ms, orbit_ledger_done_t *done,
                           size_t max, size_t *n);

/* Counters since creation. */
typedef struct {
    uint64_t submitted, completed, timed_out;
    uint64_t requests;   /* ProposeBatch requests sent */
    uint64_t resent;     /* proposals sent again (leader change, silence, retry answers) */
    uint64_t not_leader; /* "not leader" answers */
} orbit_ledger_pipe_stats_t;
void orbit_ledger_pipe_stats(const orbit_ledger_pipe_t *pp, orbit_ledger_pipe_stats_t *st);

#endif
