/* leaf_watch: the actor that follows this node's placements in the ledger and hands the agent
 * the desired capsules (steps 1-4 of the design at the top of leaf_exec.h).
 *
 * A czmq zactor: a thread with its own orbit_ledger_client. It signals ready once started and
 * sends, whenever the desired set changes, one orbit_leaf_wants_encode message on its pipe
 * (read it from zactor_sock(actor) and decode it with orbit_leaf_wants_decode). It stops on
 * "$TERM" (zactor_destroy); a ledger call in progress delays that by at most the call's
 * timeout (orbit_leaf_home_fetch_timeout_ms of the interval, 100..2000 ms). Its counters
 * (orbit_leaf_watch_stats_t) go to the log: a debug line with every desired set sent, and
 * with every rate-limited warning (at most one per ORBIT_LEAF_WATCH_LOG_MS).
 *
 * Thread rules: the actor owns everything it creates; the caller only talks to its pipe. The
 * caller calls zsys_init() (or creates any czmq socket) before starting it. */
#ifndef ORBIT_LEAF_WATCH_H
#define ORBIT_LEAF_WATCH_H

#include <czmq.h>
#include <stddef.h>
#include <stdint.h>

#define ORBIT_LEAF_WATCH_PERIOD_MIN_MS  200
#define ORBIT_LEAF_WATCH_BACKOFF_MAX_MS 10000
#define ORBIT_LEAF_WATCH_BATCH          1000 /* items asked per WatchRequest */
#define ORBIT_LEAF_WATCH_LOG_MS         10000

typedef struct {
    const char *roots;    /* comma-separated root replica endpoints */
    const char *node;     /* this node */
    uint32_t interval_ms; /* poll period (raised to ORBIT_LEAF_WATCH_PERIOD_MIN_MS) */
} orbit_leaf_watch_cfg_t;

typedef struct {
    uint64_t node_gets;     /* node listings read */
    uint64_t watches;       /* WatchRequests answered */
    uint64_t items;         /* watch items seen */
    uint64_t items_applied; /* ... that changed this node's placements */
    uint64_t bad_items;     /* ... refused by orbit_leaf_placed_apply */
    uint64_t parse_errors;  /* node listings that did not parse */
    uint64_t beyond;        /* placements past ORBIT_CAPSULES_MAX in the last listing (not run) */
    uint64_t ledger_errors; /* calls that failed or answered an error */
    uint64_t compactions;   /* watches that found the history compacted */
    uint64_t module_gets;   /* module specs read */
    uint64_t unrunnable;    /* capsules given a reason instead of a command */
    uint64_t wants_sent;    /* desired sets sent to the agent */
} orbit_leaf_watch_stats_t;

/* Start the actor (cfg copied). Returns NULL with a reason in err when the client cannot be
 * created (a malformed endpoint) or out of memory. */
zactor_t *orbit_leaf_watch_new(const orbit_leaf_watch_cfg_t *cfg, char *err, size_t errlen);

#endif
