/* ledger_applier: a follower's committed entries, applied in batches on a
 * thread of their own.
 *
 * A follower answers nobody, so it need not apply an entry the moment raft
 * commits it. The applier keeps a copy of each entry and hands what it holds
 * to its thread once the first has waited batch_ms (or a batch is large):
 * the thread applies them with orbit_ledger_apply_many, one LMDB transaction
 * for thousands of proposals (each transaction copies every page it
 * changes, so this costs ~25 % less per proposal than a transaction per
 * entry of ~100). Applying on the loop instead stalled raft for the
 * length of the batch: the follower's acknowledgements waited, and so did
 * the leader's commits (p99 grew with batch_ms).
 *
 * Ownership: the thread touches the ledger only while it holds a batch; the
 * loop must call orbit_ledger_applier_sync before it touches the ledger in
 * any other way (a read, a snapshot, a restore, leadership). sync waits for
 * the thread and applies the rest on the caller's thread, so afterwards
 * the ledger holds every entry given to the applier.
 *
 * Thread rules: every function on the loop thread of `loop`. */
#ifndef ORBIT_ROOT_LEDGER_APPLIER_H
#define ORBIT_ROOT_LEDGER_APPLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ledger.h"

typedef struct orbit_ledger_applier orbit_ledger_applier_t;

typedef struct {
    uint64_t held;       /* entries taken */
    uint64_t batches;    /* transactions that applied them */
    uint64_t failures;   /* batches that failed (their entries are kept and retried) */
    uint64_t last_batch; /* entries in the last batch */
} orbit_ledger_applier_stats_t;

/* An applier for l (borrowed, must outlive it) on loop; the first entry
 * held waits batch_ms (>= 1) at most. NULL on failure, with a reason. */
orbit_ledger_applier_t *orbit_ledger_applier_new(orbit_ledger_t *l, uv_loop_t *loop,
                                                 uint64_t batch_ms, char *err, size_t errlen);

/* Keep a copy of the committed entry buf[0..len) at raft index `index`
 * (above every index held). Errors (nothing kept: sync, then apply it
 * directly): ORBIT_ENOMEM, ORBIT_EAGAIN (a batch failed and none has been
 * applied since: the caller's sync fails too and raft is told, rather
 * than entries piling up), ORBIT_EINVAL (an index not above the last). */
int orbit_ledger_applier_hold(orbit_ledger_applier_t *a, uint64_t index, const void *buf,
                              size_t len);

/* Apply everything held: wait for the thread's batch, then apply the rest
 * here. Errors: those of orbit_ledger_apply_many (the entries that failed
 * stay held and are tried again by the next sync or batch). */
int orbit_ledger_applier_sync(orbit_ledger_applier_t *a);

/* The raft index of the last entry held and not yet known applied; 0 when
 * the ledger holds everything given. */
uint64_t orbit_ledger_applier_pending(const orbit_ledger_applier_t *a);

const orbit_ledger_applier_stats_t *orbit_ledger_applier_stats(const orbit_ledger_applier_t *a);

/* For tests: apply batches with fn instead of orbit_ledger_apply_many (on
 * the thread and in sync); set before the first hold. */
typedef int (*orbit_ledger_applier_fn)(orbit_ledger_t *l, const orbit_ledger_entry_t *entries,
                                       size_t n);
void orbit_ledger_applier_set_apply(orbit_ledger_applier_t *a, orbit_ledger_applier_fn fn);

/* Apply what is held (best effort: what fails is applied again from the
 * Raft log at the next start), stop the thread, close the loop handles and
 * free a; closed(arg) runs when that is done. */
void orbit_ledger_applier_close(orbit_ledger_applier_t *a, void (*closed)(void *arg), void *arg);

#endif
