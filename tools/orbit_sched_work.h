/* orbit_sched_work: the scheduler's proposer — one thread with one
 * pipelined ledger connection (orbit_ledger_pipe) keeping up to `workers`
 * actions (orbit_sched_plan.h) in flight at once, taken from a queue,
 * proposed and handed back with their outcomes.
 *
 * An action is owned by the pool from submit until collect returns it
 * (the pool fills rc, err, outcome and bind_outcomes meanwhile); the
 * planning thread owns it before and after. The pool proposes the action's
 * proposal and, when that COMMITTED, all of its binds at once (they are
 * independent: a failed bind does not stop the others). Each proposal is
 * sent with the pipe's client id and its own request id, and retried with
 * them until the timeout.
 *
 * Thread rules: new, submit, collect, pending and destroy are called from
 * one thread (the planning thread). zsys_init() must have run before new. */
#ifndef ORBIT_SCHED_WORK_H
#define ORBIT_SCHED_WORK_H

#include <stddef.h>
#include <stdint.h>

#include "orbit_ledger_client.h"
#include "orbit_sched_plan.h"

typedef struct orbit_sched_work orbit_sched_work_t;

/* Run a on client c (timeout_ms for each proposal): fills a->rc, a->err,
 * a->outcome, a->bind_outcomes. Usable without a pool. */
void orbit_sched_work_run(orbit_sched_act_t *a, orbit_ledger_client_t *c, int timeout_ms);

/* Start the proposer thread (client id "<id_prefix>-pipe" on roots) with
 * at most workers (1..4096) actions in flight. Returns once its connection
 * is set up, or NULL with a one-line reason in err (no thread left
 * running). */
orbit_sched_work_t *orbit_sched_work_new(const char *roots, const char *id_prefix, uint32_t workers,
                                         int timeout_ms, char *err, size_t errlen);

/* Stop the proposer thread, join it and free every action still queued,
 * in flight (its answer is not awaited) or done. NULL-safe; clears *pw. */
void orbit_sched_work_destroy(orbit_sched_work_t **pw);

/* Queue a (ownership passes to the pool). Errors: ORBIT_ENOMEM (a is still
 * the caller's). */
int orbit_sched_work_submit(orbit_sched_work_t *w, orbit_sched_act_t *a);

/* A finished action (ownership back to the caller), waiting up to wait_ms
 * for one; NULL when none. */
orbit_sched_act_t *orbit_sched_work_collect(orbit_sched_work_t *w, int wait_ms);

/* Actions submitted and not collected yet. */
size_t orbit_sched_work_pending(const orbit_sched_work_t *w);

#endif
