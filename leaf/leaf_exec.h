/* leaf_exec: the leaf runs the capsules the ledger places on its node and reports their health
 * through telemetry — reconciliation of the desired set against the capsule runner.
 *
 * ---------------------------------------------------------------- design
 * Delivery (leaf_watch.h, a zactor thread with its own ledger client, so that the agent's
 * zloop never waits on the ledger):
 *   1. `get node/<node>` (stale; linearizable after a compaction, see 2) gives the node's
 *      placements ("capsules": id, envelope, gang, placement index) and the key's
 *      last-changed index V (orbit_leaf_placed_parse_node). No such node: no placements.
 *   2. Every poll period (the leaf interval, at least ORBIT_LEAF_WATCH_PERIOD_MIN_MS) a stale
 *      WatchRequest{from_index = V + 1 (then next_index), prefix "node/<node>"}; each item is
 *      filtered exactly (orbit_leaf_placed_apply: the prefix of node a1 also matches a10, so
 *      placements are checked by node name; revocations of a placement or a gang remove the
 *      capsules of ours they name). A reply saying the history from there is compacted
 *      restarts at 1 with a linearizable get, and the watch then starts above the compacted
 *      index too (the node key cannot have changed between V and the get's index, and the
 *      get's index is at least the compacted index).
 *   3. Each capsule newly desired (an id, or an id with a new placement index) needs its
 *      module's command: `get module/<mission>/<module>` (stale; a "not found" is confirmed
 *      with a linearizable get, since a lagging replica may not have the module yet), the
 *      parsed argv cached per module until the module's index changes. A missing module, a
 *      command that is not a JSON argv, or a capsule id that is not mission/module/index
 *      makes the capsule FAILED with the reason, without a process. A later change of the
 *      module does not touch capsules already placed (a new placement picks it up).
 *   4. Whenever the desired set changes, the actor sends the agent the whole set (id,
 *      placement index, argv or reason, cpu_m, mem: orbit_leaf_wants_encode) on its pipe.
 *   The ledger unreachable (or answering garbage): the last desired set stays (capsules are
 *   never stopped because the ledger is silent); the actor retries with a doubling backoff
 *   (up to ORBIT_LEAF_WATCH_BACKOFF_MAX_MS) and counts and logs (rate-limited) the errors.
 *   The envelope's GPU count is not enforced by the leaf.
 *
 * Reconciliation (this module, on the agent's thread; pure apart from the runner):
 *   - a desired capsule not in the runner is started (a want with a reason is recorded as
 *     FAILED instead; a start the runner refuses becomes FAILED with its reason);
 *   - a capsule starting or running that is no longer desired, or desired for another
 *     placement index, is stopped (SIGTERM, SIGKILL after the grace) and ends STOPPED;
 *     the new placement starts once the old process has ended;
 *   - a terminal capsule (exited, failed, OOM-killed, stopped) that is still desired stays
 *     as it is: the leaf never restarts a capsule, the scheduler decides (with its backoff),
 *     by revoking and placing again;
 *   - a terminal capsule no longer desired is forgotten once its terminal state went out in
 *     at least one sample;
 *   - every sample (the agent's interval timer) polls the runner and writes the list into the
 *     node state (orbit_node_state_set_capsules), so the existing delta machinery sends it
 *     when it changes. since_ms is wall-clock: when the capsule entered its state.
 *   At most ORBIT_CAPSULES_MAX capsules are tracked; desired ones beyond wait (counted).
 *
 * Lifetime: capsules do not outlive the agent. On SIGTERM/SIGINT the agent's loop ends and
 * destroying the agent destroys the runner, which stops every capsule (SIGTERM to its process
 * group, SIGKILL after the grace) and waits for them. A leaf killed with SIGKILL cannot do
 * that; a restarted leaf does not adopt processes it did not start.
 *
 * Thread rules: an orbit_leaf_exec_t belongs to one thread (the agent's). */
#ifndef ORBIT_LEAF_EXEC_H
#define ORBIT_LEAF_EXEC_H

#include <stdint.h>

#include "leaf_capsule.h"
#include "leaf_desired.h"
#include "orbit_node.h"

typedef struct orbit_leaf_exec orbit_leaf_exec_t;

typedef struct {
    uint64_t wants;        /* desired sets received */
    uint64_t starts;       /* processes started */
    uint64_t start_errors; /* starts the runner refused (the capsule is FAILED) */
    uint64_t unrunnable;   /* wants with a reason (FAILED without a process) */
    uint64_t stops;        /* stops requested */
    uint64_t forgotten;    /* terminal capsules forgotten after being reported */
    uint64_t over_limit;   /* starts deferred: ORBIT_CAPSULES_MAX capsules tracked */
    uint64_t state_errors; /* the list could not be written into the node state */
} orbit_leaf_exec_stats_t;

/* New executor with its own capsule runner (cfg copied; see orbit_leaf_capsules_new; NULL
 * for defaults). Returns NULL when out of memory. */
orbit_leaf_exec_t *orbit_leaf_exec_new(const orbit_leaf_capsules_cfg_t *cfg);

/* Destroy the runner (stopping every capsule and waiting for them, up to the grace) and free
 * the executor. NULL-safe; clears *px. */
void orbit_leaf_exec_destroy(orbit_leaf_exec_t **px);

/* Replace the desired set with *w (taken over: *w is left empty) and reconcile at once
 * (monotonic now_ms): starts and stops as described above. Never fails: a start the runner
 * refuses makes that capsule FAILED. */
void orbit_leaf_exec_want(orbit_leaf_exec_t *x, orbit_leaf_wants_t *w, int64_t now_ms);

/* One sample: poll the runner (monotonic now_ms), forget terminal undesired capsules already
 * reported, reconcile (starts that waited for an old process or for room), and write every
 * tracked capsule into s (wall_ms: the wall clock now, for since_ms).
 * Errors: ORBIT_ENOMEM (s keeps its old list; counted in state_errors). */
int orbit_leaf_exec_sample(orbit_leaf_exec_t *x, int64_t now_ms, int64_t wall_ms,
                           orbit_node_state_t *s);

/* Capsules tracked (starting, running, or terminal and not forgotten yet). */
size_t orbit_leaf_exec_count(const orbit_leaf_exec_t *x);

/* The runner, for its stats and capsule views (valid while x lives). */
const orbit_leaf_capsules_t *orbit_leaf_exec_runner(const orbit_leaf_exec_t *x);

const orbit_leaf_exec_stats_t *orbit_leaf_exec_stats(const orbit_leaf_exec_t *x);

#endif
