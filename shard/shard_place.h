/* shard_place: where a shard in discovery mode (--root) sits in the tree —
 * its tier, the endpoint it binds, where it reports, the racks it owns —
 * read from a topology model, and when it should read the topology again
 * (epochs seen in acks, retries, the safety-net refetch).
 *
 * Pure: no I/O, no clock (times are the caller's monotonic milliseconds),
 * no randomness (the caller passes its jitter).
 *
 * Thread rules: a place and a refetch schedule belong to one thread. */
#ifndef ORBIT_SHARD_PLACE_H
#define ORBIT_SHARD_PLACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topology.h"

/* Room for the upstream list: a parent's endpoint, or every root replica. */
#define ORBIT_SHARD_PLACE_UPSTREAM_MAX 2048

typedef struct {
    uint32_t tier;
    char parent[ORBIT_TOPOLOGY_NAME_MAX + 1];      /* "": reports to the root */
    char listen[ORBIT_TOPOLOGY_ENDPOINT_MAX + 1];  /* the declared endpoint */
    char upstream[ORBIT_SHARD_PLACE_UPSTREAM_MAX]; /* comma-separated */
    uint64_t epoch;                                /* of the topology read */
} orbit_shard_place_t;

/* Fill *out with shard id's place in t: tier and endpoint as declared,
 * upstream = the parent's declared endpoint, or roots (copied) when the
 * shard has no parent. *out is written only on success.
 * Errors (one line in err):
 *   ORBIT_ENOTFOUND  id is not declared in t (yet)
 *   ORBIT_EINVAL     NULL argument; id declared without an endpoint; its
 *                    parent missing or without an endpoint; roots empty or
 *                    too long. */
int orbit_shard_place_resolve(const orbit_topology_t *t, const char *id, const char *roots,
                              orbit_shard_place_t *out, char *err, size_t errlen);

/* A new hash set (keys copied, values unused) of the racks shard id owns
 * in t; empty when it owns none or is not declared. NULL on ENOMEM. The
 * caller destroys it with zhashx_destroy. */
zhashx_t *orbit_shard_place_racks(const orbit_topology_t *t, const char *id);

/* ---------------------------------------------------------- refetch */

/* When to read the topology again. The rules:
 * - an ack carrying an epoch above the one held schedules a fetch after a
 *   random delay in [0, interval) (the caller's jitter), so a fleet that
 *   learns of a change at once does not read at once;
 * - a fetch that fails, or returns an epoch still below the highest seen
 *   (a stale replica), is tried again one interval later;
 * - every 10 intervals after the last fetch a fetch is due anyway (the
 *   safety net, for a shard whose acks carry no epoch). */
#define ORBIT_SHARD_REFETCH_SAFETY 10

typedef struct {
    uint32_t interval_ms;
    uint64_t held;     /* epoch of the topology held */
    uint64_t seen;     /* highest epoch seen in an ack */
    int64_t due_ms;    /* next fetch prompted by an epoch or a retry; -1: none */
    int64_t safety_ms; /* next safety-net fetch */
} orbit_shard_refetch_t;

/* Start holding epoch `held`, fetched at now_ms. */
void orbit_shard_refetch_init(orbit_shard_refetch_t *r, uint32_t interval_ms, uint64_t held,
                              int64_t now_ms);
/* An ack said epoch; jitter_ms in [0, interval) is used only when this
 * schedules a fetch. Returns true when a fetch was scheduled by this call. */
bool orbit_shard_refetch_saw(orbit_shard_refetch_t *r, uint64_t epoch, int64_t now_ms,
                             uint32_t jitter_ms);
/* True when a fetch should start at now_ms. */
bool orbit_shard_refetch_due(const orbit_shard_refetch_t *r, int64_t now_ms);
/* A fetch finished at now_ms: ok with the epoch it read (which the caller
 * now holds if it is not older than the held one), or failed (ok false). */
void orbit_shard_refetch_done(orbit_shard_refetch_t *r, bool ok, uint64_t epoch, int64_t now_ms);

#endif
