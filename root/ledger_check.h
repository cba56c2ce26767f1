/* ledger_check: internal to orbit_ledger — judging a proposal without
 * changing anything: validation (a pure function of the proposal and the
 * entry time: INVALID reasons) and preconditions (reads of the state:
 * CONFLICT{which, observed}). The rules are the ones ledger.h documents.
 *
 * Thread rules: those of the transaction passed in. */
#ifndef ORBIT_LEDGER_CHECK_H
#define ORBIT_LEDGER_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"
#include "ledger_store.h"

/* The judgement of one proposal. kind COMMITTED means "holds so far". */
typedef struct {
    Orbit__Ledger__OutcomeKind kind;
    uint64_t index;
    char which[64];
    char observed[256];
    char reason[256];
} orbit_ledger_verdict_t;

/* Set v to CONFLICT{which, observed formatted}. */
void orbit_ledger_conflict(orbit_ledger_verdict_t *v, const char *which, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Set v to INVALID{reason formatted}. */
void orbit_ledger_invalid(orbit_ledger_verdict_t *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Name rules (see ledger.h): plain names, ids, client ids. */
bool orbit_ledger_plain_valid(const char *s);
bool orbit_ledger_id_valid(const char *s);
bool orbit_ledger_client_id_valid(const char *s);

/* Resources of r (NULL: zeros). */
orbit_ledger_res_t orbit_ledger_res_of(const Orbit__Ledger__Resources *r);

/* A non-empty optional string (NULL or "" count as unset). */
bool orbit_ledger_str_set(const char *s);

/* Validate p (everything but its client id, which the caller checks before
 * the dedup table) at entry time time_ms. On a failure v becomes INVALID;
 * otherwise v is left as it is.
 * Errors: ORBIT_ENOMEM (v then unspecified; the entry must not be applied). */
int orbit_ledger_check_valid(const Orbit__Ledger__Proposal *p, int64_t time_ms,
                             orbit_ledger_verdict_t *v);

/* Evaluate p's precondition (p already valid) against the state in tx at
 * time_ms: node_fits, unchanged_since, identity_free, quota_available, first
 * failure reported as CONFLICT in v (otherwise v is left as it is).
 * Errors: the store's (v then unspecified). */
int orbit_ledger_check_preconditions(orbit_ledger_tx_t *tx, const Orbit__Ledger__Proposal *p,
                                     int64_t time_ms, orbit_ledger_verdict_t *v);

#endif
