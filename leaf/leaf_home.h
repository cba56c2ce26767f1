/* leaf_home: the pure decisions of discovery and re-homing (when to refetch the topology, where a
 * rack's link goes). */
#ifndef ORBIT_LEAF_HOME_H
#define ORBIT_LEAF_HOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Failover candidates kept per rack: the owner and the next ones in
 * rendezvous order; a longer list is cut (failing over past 16 shards
 * helps nobody). */
#define ORBIT_LEAF_HOME_CANDIDATES_MAX 16

/* A rack's candidate endpoints, in order of preference (heap strings). */
typedef struct {
    char *ep[ORBIT_LEAF_HOME_CANDIDATES_MAX];
    size_t n;
} orbit_leaf_candidates_t;

/* Parse a comma-separated list ("a,b,c"; empty items skipped) into c
 * (initialised here; release with orbit_leaf_candidates_close whatever the
 * result). Items past ORBIT_LEAF_HOME_CANDIDATES_MAX are dropped.
 * Errors: ORBIT_EINVAL (list NULL or without an item), ORBIT_ENOMEM. */
int orbit_leaf_candidates_parse(orbit_leaf_candidates_t *c, const char *list);

/* Free the strings and zero c; NULL-safe. */
void orbit_leaf_candidates_close(orbit_leaf_candidates_t *c);

/* Same endpoints in the same order. */
bool orbit_leaf_candidates_equal(const orbit_leaf_candidates_t *a,
                                 const orbit_leaf_candidates_t *b);

/* Index of ep in c, or -1. */
int orbit_leaf_candidates_find(const orbit_leaf_candidates_t *c, const char *ep);

/* What a rack's link does with a freshly fetched candidate list. */
typedef enum {
    ORBIT_LEAF_HOME_KEEP,   /* same list: nothing changes */
    ORBIT_LEAF_HOME_UPDATE, /* new list, same preferred shard, the endpoint in use is still a
                               candidate: adopt the list, keep the socket */
    ORBIT_LEAF_HOME_SWITCH, /* re-home: a new socket to fresh->ep[*next] (= 0), full state */
} orbit_leaf_home_action_t;

/* Decide for a link that uses old->ep[cur] (old->n == 0: not connected
 * yet) given fresh (n >= 1):
 * - equal lists: KEEP, *next = cur;
 * - not connected yet, or a new preferred shard (fresh->ep[0] differs from
 *   old->ep[0]): SWITCH, *next = 0;
 * - same preferred shard: UPDATE with *next the index of the endpoint in use
 *   in fresh, or SWITCH to 0 when it is no longer a candidate.
 * So a change that does not move a rack's owner never touches its socket. */
orbit_leaf_home_action_t orbit_leaf_home_plan(const orbit_leaf_candidates_t *old, size_t cur,
                                              const orbit_leaf_candidates_t *fresh, size_t *next);

/* Counters, never reset. */
typedef struct {
    uint64_t fetches;        /* topology reads attempted */
    uint64_t fetch_failures; /* of which failed (no replica, bad reply, rack without candidates) */
    uint64_t refetches;      /* reads prompted by an ack epoch above the held one */
    uint64_t stale_fetches;  /* reads whose epoch was still below the epoch seen in acks */
    uint64_t rehomes;        /* links switched to a new preferred shard by a topology change */
    uint64_t updates;        /* candidate lists adopted without touching the socket */
} orbit_leaf_home_stats_t;

/* When to read the topology. One per topology reader (a leaf, or a whole
 * simulator: one read serves every rack).
 * - Before the first good read a read is due every interval.
 * - An ack carrying an epoch above the held one schedules a read after a
 *   random delay in [0, interval), so a fleet does not stampede the roots.
 * - A read that fails, or whose epoch is still below the highest epoch seen,
 *   is tried again one interval later.
 * Thread rules: one thread. */
typedef struct {
    uint64_t held_epoch; /* epoch of the topology in use; 0: none yet */
    uint64_t seen_epoch; /* highest epoch seen in acks */
    bool have;           /* a topology has been read */
    int64_t due_ms;      /* next read; INT64_MAX: none scheduled */
    uint32_t interval_ms;
    uint64_t rng;
    orbit_leaf_home_stats_t stats;
} orbit_leaf_home_t;

/* Initialise h: no topology, a read due at once. seed 0 picks one from the
 * clock and pid. */
void orbit_leaf_home_init(orbit_leaf_home_t *h, uint32_t interval_ms, uint64_t seed);

/* How long one topology read may wait: half an interval, within 100 ms
 * .. 2 s (the read blocks the caller's loop). */
int orbit_leaf_home_fetch_timeout_ms(uint32_t interval_ms);

/* A random delay in [0, interval_ms) (0 when interval_ms is 0). */
uint32_t orbit_leaf_home_jitter(orbit_leaf_home_t *h);

/* An ack carried epoch (0: none). Returns true when it scheduled a read
 * (epoch above the held one and no read scheduled sooner). */
bool orbit_leaf_home_ack_epoch(orbit_leaf_home_t *h, uint64_t epoch, int64_t now_ms);

/* True when a read is due at now_ms (count it in fetches/refetches here). */
bool orbit_leaf_home_due(orbit_leaf_home_t *h, int64_t now_ms);

/* The read failed: try again one interval later. */
void orbit_leaf_home_failed(orbit_leaf_home_t *h, int64_t now_ms);

/* A read returned a topology at epoch. Returns true when the caller should
 * apply it (the first read, or an epoch not below the held one; held_epoch
 * is then epoch; applying the held epoch again changes nothing but lets a
 * switch that failed be retried); false for an older answer. When epoch is below seen_epoch the
 * read is scheduled again one interval later (counted in stale_fetches); otherwise none is. */
bool orbit_leaf_home_fetched(orbit_leaf_home_t *h, uint64_t epoch, int64_t now_ms);

#endif
