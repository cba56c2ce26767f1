/* orbit_sched_view: a scheduler's picture of the cluster (installed header)
 * — an incremental join of the Ephemeris (authoritative commitments: desired
 * state, placements, quota, identities) and the root view (capacity,
 * liveness, healthy GPUs, memory pressure, capsule health).
 *
 * ---------------------------------------------------------------- sources
 * Ledger: one linearizable snapshot (the replica's LMDB file) loaded once,
 * then every commitment after it from a watch without prefix (ordered and
 * gap-free: ledger indexes are contiguous), applied one by one. A watch that
 * answers Compacted makes the view load a fresh snapshot. A scheduler's own
 * COMMITTED outcomes may be noted ahead of the watch
 * (orbit_sched_view_note_own): they count at once (node usage, quota,
 * placed capsules) and are dropped, not applied twice, when the watch
 * reaches their index.
 * Telemetry: node rows of the root view (Q_NODES, every row), applied as
 * events onto the node table; a node missing from a complete refresh is
 * kept with its ledger usage but marked not seen (status UNREACHABLE). Rows
 * never change ledger state and ledger events never change telemetry state:
 * a placement on a node not yet seen in telemetry is kept (the node exists
 * with capacity 0 until a row arrives), a row for a node without
 * placements creates it.
 *
 * ---------------------------------------------------------------- free room
 * A node's capacity for placing is what telemetry says (CPU, memory, and
 * only *healthy* GPUs); its committed usage is the sum of the envelopes of
 * its active placements in the ledger (plus own notes). A scheduler proposes
 * node_fits{node, capacity} with the capacity it saw; the ledger arbitrates.
 *
 * ---------------------------------------------------------------- missions
 * Capsule ids are mission/module/index (tools/orbitctl_mission.h); a
 * module's desired state is its ModuleSpec (ModuleAdjustment merges, a
 * module Revocation removes it). A module stays listed while it has a spec
 * or any placement (spec NULL: revoked, its placements are surplus).
 * Gang modules are placed as one GangPlacement named "mission/module".
 *
 * Thread rules: a view belongs to one thread. Strings and spec pointers
 * handed out stay valid until the next call that changes the view (load,
 * apply, note, row, poll, sync). Errors are project codes (orbit_err.h). */
#ifndef ORBIT_SCHED_VIEW_H
#define ORBIT_SCHED_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.pb-c.h"
#include "orbit.pb-c.h"
#include "orbit_node.h"

typedef struct orbit_sched_view orbit_sched_view_t;

typedef struct {
    int64_t cpu_m;
    int64_t mem;
    int64_t gpus;
} orbit_sched_res_t;

typedef struct {
    const char *name;
    uint64_t key;                /* orbit_sched_node_key(name) */
    bool seen;                   /* a telemetry row is held for it */
    Orbit__NodeStatus status;    /* from telemetry; UNREACHABLE when not seen */
    int64_t status_since_ms;     /* caller's clock when the status last changed */
    const char *shard;           /* "" when not seen */
    const char *labels;          /* packed "k=v\n", "" when none */
    orbit_sched_res_t capacity;  /* cpu_capacity_m, mem_capacity, gpu_healthy */
    uint32_t gpu_capacity;       /* all GPUs, healthy or not */
    uint32_t mem_pressure;       /* the row's pressure (avg10 x100) */
    orbit_sched_res_t committed; /* active envelopes (ledger + own notes) */
    uint64_t placements;         /* active placements on it */
} orbit_sched_node_t;

typedef struct {
    const char *mission;
    const char *module;
    const Orbit__Ledger__ModuleSpec *spec; /* NULL: revoked (or never adjusted) */
    uint64_t index;                        /* last adjustment's ledger index (0: none) */
                                           /* (a module revocation counts as one) */
    uint64_t placed;                       /* its active placements */
    uint64_t version;  /* changes whenever its spec, its placements, or their identities or */
                       /* health change (never the same value twice in one process) */
    int64_t others_ms; /* entry time of its latest placement by another client, from the */
                       /* watch (0: none; see orbit_sched_view_set_self) */
} orbit_sched_module_t;

typedef struct {
    const char *capsule;
    const char *node;
    const char *principal; /* "" when not charged */
    const char *gang;      /* "" when not a gang member */
    orbit_sched_res_t envelope;
    uint64_t index;       /* ledger index that placed it */
    const char *identity; /* "" when none bound */
    bool own;             /* noted ahead of the watch, not yet confirmed */
    /* Its capsule's entry in its node's row (NULL: none), as
     * orbit_sched_view_capsule_health gives it; borrowed until the view
     * next changes. */
    const orbit_capsule_t *health;
} orbit_sched_placement_t;

typedef struct {
    bool granted;
    orbit_sched_res_t grant;
    orbit_sched_res_t used; /* charged placements (ledger + own notes) */
    int32_t priority;
    int64_t until_ms; /* 0: no end */
} orbit_sched_quota_t;

typedef struct {
    uint64_t snapshots_loaded;
    uint64_t commits_applied; /* from the watch (or tests) */
    uint64_t own_noted;       /* note_own calls applied */
    uint64_t own_confirmed;   /* ... later reached by the watch */
    uint64_t stale_commits;   /* commits at or below the index held, ignored */
    uint64_t gaps;            /* a commit above index + 1: snapshot reloaded */
    uint64_t rows_applied;
    uint64_t watch_rounds, view_rounds;
    uint64_t errors; /* failed network rounds */
    /* Identity records of loaded snapshots that bind a capsule already bound
     * to another identity (the ledger refuses such binds: stays 0). */
    uint64_t identity_clashes;
} orbit_sched_view_stats_t;

/* ------------------------------------------------------------ pure core */

/* An empty view with no sources (tests feed it; orbit_sched_view_connect
 * makes one that reads the network). NULL when out of memory. */
orbit_sched_view_t *orbit_sched_view_new(void);

/* Name this view's own proposer: placements whose client_id is self, or
 * self followed by '-' and anything, are its own; a placement by any other
 * client that the watch delivers stamps its module's others_ms, so that a
 * scheduler can tell which modules another one is filling right now.
 * Without a self nothing is stamped. self is copied (at most 63 bytes;
 * longer, or NULL, clears it). */
void orbit_sched_view_set_self(orbit_sched_view_t *v, const char *self);
void orbit_sched_view_destroy(orbit_sched_view_t **pv);

/* Replace all ledger state with that of a snapshot (the LMDB data file of
 * a SnapshotReply) holding commitments up to ledger_index; telemetry is
 * kept, own notes above ledger_index are kept. Errors: ORBIT_EINVAL (not a
 * ledger snapshot; reason in err), ORBIT_EIO, ORBIT_ENOMEM. */
int orbit_sched_view_load_snapshot(orbit_sched_view_t *v, const uint8_t *file, size_t len,
                                   uint64_t ledger_index, char *err, size_t errlen);

/* Apply the commitment committed at index (a watch item). index <= the
 * index held: ignored (counted in stale_commits). index > held + 1:
 * ORBIT_EAGAIN (a gap; nothing applied: reload a snapshot). Commitments
 * the view does not track (leases, topology, expiries of leases) only
 * advance the index. Errors: ORBIT_EAGAIN, ORBIT_ENOMEM. */
int orbit_sched_view_apply_commit(orbit_sched_view_t *v, uint64_t index, int64_t time_ms,
                                  const Orbit__Ledger__Proposal *p);
/* On ORBIT_ENOMEM part of the commitment may be applied (the index does
 * not move): the view marks itself and the next poll reloads a snapshot.
 * A note reached by the watch is applied again idempotently (placements
 * confirmed, merges and revocations redone in index order), so notes and
 * unrelated commits in between may arrive in any order; a placement the
 * note made that the watch's commitment does not hold is dropped. */

/* Count a commitment this process saw COMMITTED at index before the watch
 * delivers it (see top). A note at or below the index held is ignored.
 * Errors: ORBIT_ENOMEM. */
int orbit_sched_view_note_own(orbit_sched_view_t *v, uint64_t index,
                              const Orbit__Ledger__Proposal *p);

/* Apply one root-view row at now_ms (the caller's monotonic clock). */
int orbit_sched_view_apply_row(orbit_sched_view_t *v, const Orbit__NodeRow *row, int64_t now_ms);

/* A complete refresh ended: nodes whose row was not applied since the
 * previous call are marked not seen. */
void orbit_sched_view_rows_done(orbit_sched_view_t *v, int64_t now_ms);
/* A node marked not seen loses its telemetry (capacity 0, shard and
 * labels "", no capsule health) and keeps its ledger usage. */

/* Ledger index held (confirmed by snapshot or watch; own notes excluded)
 * and the time of the last commitment applied. */
uint64_t orbit_sched_view_index(const orbit_sched_view_t *v);
int64_t orbit_sched_view_time(const orbit_sched_view_t *v);

/* ------------------------------------------------------------ queries */

/* A 64-bit hash of a node name (FNV-1a), the key field of its
 * orbit_sched_node_t: a caller that keeps its own sets of node names can
 * test them against a sampled node without reading its name. */
uint64_t orbit_sched_node_key(const char *name);

/* Nodes in a stable dense order (for sampling): count and the i-th. */
size_t orbit_sched_view_node_count(const orbit_sched_view_t *v);
int orbit_sched_view_node_at(const orbit_sched_view_t *v, size_t i, orbit_sched_node_t *out);
/* Errors: ORBIT_ENOTFOUND. */
int orbit_sched_view_node(const orbit_sched_view_t *v, const char *name, orbit_sched_node_t *out);

/* Call fn for every module (mission, module order unspecified). fn returns
 * 0 to go on, nonzero to stop (returned). */
typedef int (*orbit_sched_module_fn)(void *arg, const orbit_sched_module_t *m);
int orbit_sched_view_each_module(const orbit_sched_view_t *v, orbit_sched_module_fn fn, void *arg);
/* Errors: ORBIT_ENOTFOUND. */
int orbit_sched_view_module(const orbit_sched_view_t *v, const char *mission, const char *module,
                            orbit_sched_module_t *out);

typedef int (*orbit_sched_placement_fn)(void *arg, const orbit_sched_placement_t *p);
/* Placement of capsule. Errors: ORBIT_ENOTFOUND. */
int orbit_sched_view_placement(const orbit_sched_view_t *v, const char *capsule,
                               orbit_sched_placement_t *out);
/* Every placement of module mission/module (including own notes). */
int orbit_sched_view_each_module_placement(const orbit_sched_view_t *v, const char *mission,
                                           const char *module, orbit_sched_placement_fn fn,
                                           void *arg);
/* Every placement on node. */
int orbit_sched_view_each_node_placement(const orbit_sched_view_t *v, const char *node,
                                         orbit_sched_placement_fn fn, void *arg);
/* Every placement. */
int orbit_sched_view_each_placement(const orbit_sched_view_t *v, orbit_sched_placement_fn fn,
                                    void *arg);

/* Quota of principal. Errors: ORBIT_ENOTFOUND (no grant and no usage). */
int orbit_sched_view_quota(const orbit_sched_view_t *v, const char *principal,
                           orbit_sched_quota_t *out);

/* Health of capsule as reported by the node its placement names (telemetry
 * of other nodes about it is ignored). Errors: ORBIT_ENOTFOUND (not placed,
 * or not reported yet). */
int orbit_sched_view_capsule_health(const orbit_sched_view_t *v, const char *capsule,
                                    orbit_capsule_t *out);

void orbit_sched_view_stats(const orbit_sched_view_t *v, orbit_sched_view_stats_t *out);

/* ------------------------------------------------------------ network */

/* A view fed from the root replicas at roots (comma-separated endpoints):
 * its own ledger and view clients. Nothing is read until sync. NULL with a
 * one-line reason in err. */
orbit_sched_view_t *orbit_sched_view_connect(const char *roots, char *err, size_t errlen);

/* Load a linearizable snapshot, follow the watch to its head and refresh
 * telemetry once. Errors: ORBIT_ETIMEDOUT, ORBIT_EIO (reason in err),
 * ORBIT_ENOMEM. */
int orbit_sched_view_sync(orbit_sched_view_t *v, int timeout_ms, char *err, size_t errlen);
/* sync stamps rows with zclock_mono() (czmq's monotonic clock, the one
 * poll's now_ms is expected on). sync and poll on a view made with
 * orbit_sched_view_new: ORBIT_EINVAL. */

/* One round: read the watch from the index held until it is drained (a
 * gap or Compacted reloads a snapshot), and refresh telemetry when
 * refresh_ms have passed since the last refresh (now_ms: caller's
 * monotonic clock). *changed (may be NULL) is set when anything changed.
 * Errors: those of sync. */
int orbit_sched_view_poll(orbit_sched_view_t *v, int64_t now_ms, int refresh_ms, int timeout_ms,
                          bool *changed, char *err, size_t errlen);

#endif
