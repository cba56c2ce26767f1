/* consensus: the seam between the Ephemeris ledger and its consensus engine.
 *
 * The ledger talks only to this header. Behind it sits canonical/raft 0.15
 * (Debian's libraft-dev) with its libuv I/O backend (log segments, metadata
 * and snapshots in cfg->data_dir, fsync before an entry counts as stored)
 * and its TCP transport. Nothing here names a raft type, so the engine
 * (e.g. cowsql/raft, or another Raft) can be swapped in consensus.c without
 * touching ledger code. The raft-specific adapter between the abstract state
 * machine below and raft's struct raft_fsm lives in consensus_fsm.h, which
 * only consensus.c and the engine's deterministic tests include.
 *
 * Model. One replica = one orbit_consensus_t. The caller supplies a state
 * machine (orbit_consensus_fsm_t): every replica applies the same committed
 * entries in the same order, so apply must be deterministic (no clock, no
 * randomness, no local state other than the state machine's own). A replica
 * whose state machine is durable (the ledger keeps it in LMDB together with
 * its applied index) is never handed an entry it has already applied: after
 * a restart raft replays its log from the last snapshot, and the seam skips
 * every entry whose index is <= applied_index(). Snapshots are whole-state
 * byte strings; raft takes one every cfg->snapshot_threshold applied entries
 * and compacts its log, keeping cfg->snapshot_trailing entries; a follower too
 * far behind receives the leader's snapshot and the seam calls restore().
 *
 * Threads. Everything runs on the caller's uv_loop_t, on the thread that
 * runs it; every function below must be called from that thread, and every
 * callback is invoked on it. There are no locks and no other threads of ours
 * (raft's libuv backend uses the loop's thread pool for disk writes; that is
 * internal to it).
 *
 * How the ZeroMQ side joins this loop (the client API, root view, shard
 * reports): one uv_poll_t watches each socket's ZMQ_FD on the same loop
 * (root_uvzmq.h implements it). That keeps Raft, the ledger and the sockets
 * on one thread with no shared state and no hand-off queue: a proposal is a
 * plain function call, and its done callback can answer the client directly.
 * The alternative, a czmq actor thread plus a wake-up pipe into the loop,
 * would need a queue in each direction and an owner for every object that
 * crosses it. The pitfall: ZMQ_FD is edge-triggered and only means "look at
 * ZMQ_EVENTS". One wake-up can stand for many messages, and a send on the
 * socket can consume the edge of messages that arrived meanwhile. So after
 * every wake-up, and after every send made outside the poll callback,
 * re-read ZMQ_EVENTS and drain with ZMQ_DONTWAIT until ZMQ_POLLIN is clear
 * (or a budget is reached, then stay awake with a uv_idle_t / uv_check_t so
 * timers and Raft are not starved). Never block in a callback: a blocking
 * zmq_recv or a long apply stalls heartbeats and triggers elections.
 *
 * Process: the TCP transport writes to sockets whose peer may have gone;
 * the process must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)).
 *
 * Errors are the project's negative ORBIT_* codes (orbit_err.h). */
#ifndef ORBIT_ROOT_CONSENSUS_H
#define ORBIT_ROOT_CONSENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Server ids are 1..ORBIT_CONSENSUS_ID_MAX (orbit-root --id N). */
#define ORBIT_CONSENSUS_ID_MAX 255
/* Longest "host:port" address, including its NUL. */
#define ORBIT_CONSENSUS_ADDR_MAX 128
/* Configuration entries reported by orbit_consensus_status (n_servers gives
 * the real count). */
#define ORBIT_CONSENSUS_MAX_SERVERS 16
/* Largest entry orbit_consensus_propose accepts, in bytes. */
#define ORBIT_CONSENSUS_ENTRY_MAX (16u << 20)

/* Defaults used when the matching cfg field is 0. A follower's election
 * timer is randomised between 1x and 2x (checked on every heartbeat tick).
 * After a leader dies, the survivor that times out first is refused while
 * the other still has a leader (Raft 4.2.3), and if that other one's log
 * is behind, neither wins until the first retries: up to 2x (the second
 * gives up on the leader) plus a candidate's retry, at most 1.5x
 * (orbit_consensus_election_draw): 3.5 x 400 = 1.4 s to the next leader in
 * the worst case, ~0.6-0.9 s typically (600 ms gave 0.9-2.4 s here, with
 * a third of the runs over 1.5 s). On a LAN, 400 ms is still far above the
 * round trip and the fsync; --election-ms raises it for slower links. */
#define ORBIT_CONSENSUS_ELECTION_MS_DEFAULT  400
#define ORBIT_CONSENSUS_HEARTBEAT_MS_DEFAULT 40
/* Snapshot every 16384 applied entries, keeping 2048 behind it, or sooner by
 * bytes (below). raft's own default (1024) halved throughput at 16+
 * proposals in flight with 0.15's libuv backend here (each snapshot stalls
 * the append pipeline: p99 at 16 in flight ~75 ms instead of ~5 ms) and
 * would copy the ledger's LMDB several times a second. The log kept on disk
 * and in memory stays bounded by threshold + trailing entries and by the
 * byte budget; a restart replays at most that (skipping entries already
 * applied). */
#define ORBIT_CONSENSUS_SNAPSHOT_THRESHOLD 16384
#define ORBIT_CONSENSUS_SNAPSHOT_TRAILING  2048
/* Entries carry from one to thousands of proposals, so a count of entries
 * alone bounds neither the log nor the work between snapshots: a snapshot is
 * also taken once the log since the last one holds this many bytes, or half
 * the last snapshot's state if that is more (consensus_fsm.h). */
#define ORBIT_CONSENSUS_SNAPSHOT_BYTES (64ull << 20)
/* Entries kept behind a snapshot whatever their size (a follower a moment
 * behind catches up from the log rather than by a snapshot). */
#define ORBIT_CONSENSUS_SNAPSHOT_TRAILING_MIN 64
#define ORBIT_CONSENSUS_STATE_POLL_MS         50

typedef struct orbit_consensus orbit_consensus_t;

typedef enum {
    ORBIT_CONSENSUS_UNAVAILABLE = 0, /* not started, or closing */
    ORBIT_CONSENSUS_FOLLOWER,
    ORBIT_CONSENSUS_CANDIDATE,
    ORBIT_CONSENSUS_LEADER
} orbit_consensus_state_t;

typedef enum {
    ORBIT_CONSENSUS_VOTER = 0, /* replicates the log and counts in majorities */
    ORBIT_CONSENSUS_STANDBY,   /* replicates the log, does not vote */
    ORBIT_CONSENSUS_SPARE      /* in the configuration only: no log, no vote */
} orbit_consensus_role_t;

/* The replicated state machine, supplied by the ledger. ctx is the
 * cfg->fsm_ctx given to orbit_consensus_new. All calls happen on the loop
 * thread, one at a time, never re-entrantly. */
typedef struct {
    /* Apply the committed entry at `index` (buf/len: borrowed, valid during
     * the call only). Called in commit order, exactly once per entry with
     * index > applied_index(), on every replica. Deterministic: the same
     * entries must give byte-identical state everywhere. Indexes increase
     * but need not be contiguous (raft's own barrier and configuration
     * entries never reach the state machine). Before returning 0 the entry's
     * effects and `index` as the new applied index must be made durable as
     * one unit (one LMDB transaction) — or, with flush below, the entry kept
     * for a later flush that applies it with the ones after it.
     *
     * *result (NULL on entry) is handed to the done callback of the
     * proposal that created the entry, if it was proposed on this replica
     * and is still waiting; otherwise it is given to result_free (or dropped
     * when result_free is NULL: then results must not own memory).
     *
     * A business outcome (a Conflict, an Invalid proposal) is a result, not
     * an error. Return non-zero only when the state could not be updated
     * (disk failure): raft then stops applying at this entry and retries it
     * on the next commit; the replica is unhealthy and should be restarted. */
    int (*apply)(void *ctx, uint64_t index, const void *buf, size_t len, void **result);

    /* Serialise the whole state, whose last applied raft index is `index`,
     * into *buf (ownership passes to the seam, which releases it with
     * snapshot_free, or free() without one, after raft has stored the
     * snapshot; raft only reads it) and *len. Called on the
     * loop thread, so it should be quick (a compact LMDB copy of a small
     * ledger); return ORBIT_EAGAIN to skip this round (raft retries after
     * more entries). Other non-zero returns also skip, and are logged. */
    int (*snapshot)(void *ctx, uint64_t index, void **buf, size_t *len);

    /* Optional, replaces snapshot for raft's own snapshots: serialise the
     * state into *buf and *len on a worker thread while apply goes on on the
     * loop (a large state copied on the loop would stall heartbeats and
     * cost elections). The copy may be newer than the raft index the
     * snapshot is filed under, never older, and must carry its own applied
     * index: after restore, applied_index() answers it and the entries the
     * copy already holds are skipped. Must be safe to run concurrently with
     * apply (LMDB: a read transaction). Same return rules as snapshot. */
    int (*snapshot_async)(void *ctx, void **buf, size_t *len);

    /* Replace the whole state with a snapshot taken by some replica's
     * snapshot() at raft index `index` (buf/len borrowed for the call).
     * Afterwards applied_index() must answer the applied index recorded in
     * the snapshot. Not called when applied_index() >= index already (a
     * restarted replica whose durable state is newer than raft's last
     * snapshot keeps its state). Return non-zero if buf does not decode or
     * the state could not be written; the state must then be unchanged. */
    int (*restore)(void *ctx, uint64_t index, const void *buf, size_t len);

    /* Highest raft index whose effects are in the durable state (0 for an
     * empty state). Read once when the replica starts and after every
     * restore; between those the seam tracks it from apply. */
    uint64_t (*applied_index)(void *ctx);

    /* Optional: make every entry that apply accepted durable. With it a
     * state machine may defer an entry (apply keeps a copy and returns 0,
     * with no result: a replica that answers nobody) and apply several in
     * one transaction later. The seam calls flush before it takes or
     * restores a snapshot, since a snapshot filed under raft's last applied
     * index must hold every entry up to it; a non-zero return skips that
     * snapshot round (raft retries later) or fails the restore. The state
     * machine flushes on its own for its reads and when it is to answer
     * proposals again. */
    int (*flush)(void *ctx);

    /* Optional: release a result that no done callback received. */
    void (*result_free)(void *ctx, void *result);

    /* Optional: release a buffer made by snapshot or snapshot_async (NULL:
     * they are malloc'd and released with free()). */
    void (*snapshot_free)(void *ctx, void *buf, size_t len);
} orbit_consensus_fsm_t;

/* One member of the initial cluster. */
typedef struct {
    unsigned id;         /* 1..ORBIT_CONSENSUS_ID_MAX */
    const char *address; /* "host:port" */
} orbit_consensus_peer_t;

/* The leader view changed: this replica became or stopped being leader, the
 * term moved, or the known leader changed (0: none known). Detected by
 * polling every cfg->state_poll_ms (raft 0.15 has no hook), so a change is
 * seen within one poll period. A new leader must not assume earlier entries
 * are applied locally until a barrier completes (orbit_consensus_barrier);
 * the ledger stamps entry times and proposes expiries from here. */
typedef void (*orbit_consensus_state_fn)(void *ctx, bool is_leader, uint64_t term,
                                         unsigned leader_id);

/* A proposal finished. status 0: the entry is committed and applied on this
 * replica at `index`, and result is what apply produced (ownership passes to
 * the callback; free it as the ledger's apply allocated it). Otherwise
 * status is one of
 *   ORBIT_ELEADERLOST  leadership was lost after the entry was appended: it
 *                      may still commit (index tells where); the outcome is
 *                      unknown, so retry idempotently through the new leader
 *   ORBIT_ESHUTDOWN    the replica closed while waiting; outcome unknown too
 *   ORBIT_EIO, ORBIT_ENOMEM  local failure; outcome unknown
 * and result is NULL. */
typedef void (*orbit_consensus_done_fn)(void *ctx, int status, uint64_t index, void *result);

/* A barrier, membership change or leadership transfer finished (status 0 or
 * a negative ORBIT_* code, listed with each call). */
typedef void (*orbit_consensus_cb_fn)(void *ctx, int status);

/* The replica is closed and its memory released. */
typedef void (*orbit_consensus_close_fn)(void *ctx);

typedef struct {
    unsigned id;          /* this server, 1..ORBIT_CONSENSUS_ID_MAX */
    const char *address;  /* "host:port" it listens on and is known by */
    const char *data_dir; /* raft's log, metadata and snapshots; created (one
                             level, mode 0700) if missing */
    /* The initial cluster (must include id with the same address), used to
     * bootstrap a data_dir holding no raft state. With state present it is
     * ignored and the replica rejoins with what the log says. Empty (0) for
     * a server that will be added to a running cluster with
     * orbit_consensus_add: it starts with no configuration and waits for the
     * leader to contact it. */
    const orbit_consensus_peer_t *peers;
    size_t n_peers;
    unsigned election_timeout_ms;      /* 0: ORBIT_CONSENSUS_ELECTION_MS_DEFAULT */
    unsigned heartbeat_ms;             /* 0: ..._HEARTBEAT_MS_DEFAULT; < election */
    unsigned snapshot_threshold;       /* entries between snapshots; 0: default */
    unsigned snapshot_trailing;        /* entries kept after one; 0: default */
    uint64_t snapshot_bytes;           /* log bytes between snapshots; 0: default */
    unsigned state_poll_ms;            /* leader-view poll period; 0: default */
    const orbit_consensus_fsm_t *fsm;  /* required: apply, snapshot, restore,
                                          applied_index */
    void *fsm_ctx;                     /* borrowed; outlives the replica */
    orbit_consensus_state_fn on_state; /* optional */
    void *state_ctx;
} orbit_consensus_cfg_t;

/* One configuration entry, as reported by orbit_consensus_status. */
typedef struct {
    unsigned id;
    char address[ORBIT_CONSENSUS_ADDR_MAX];
    orbit_consensus_role_t role;
} orbit_consensus_server_t;

typedef struct {
    orbit_consensus_state_t state;
    uint64_t term;
    uint64_t commit_index;   /* highest index known committed */
    uint64_t last_applied;   /* highest index applied here (raft's view,
                                counting barrier and configuration entries) */
    uint64_t last_index;     /* last index in the local log */
    uint64_t snapshot_index; /* last snapshot taken or installed (0: none) */
    unsigned leader_id;      /* 0: no leader known */
    char leader_address[ORBIT_CONSENSUS_ADDR_MAX];
    size_t n_servers; /* servers in the current configuration */
    orbit_consensus_server_t servers[ORBIT_CONSENSUS_MAX_SERVERS];
    /* What the seam did with the state machine since this replica started. */
    uint64_t fsm_applied;         /* entries given to apply */
    uint64_t fsm_skipped;         /* entries skipped: index <= applied_index */
    uint64_t fsm_restored;        /* snapshots given to restore */
    uint64_t fsm_restore_skipped; /* snapshots older than the state, skipped */
    uint64_t snapshots_by_bytes;  /* snapshots brought forward by log bytes */
    uint64_t log_bytes;           /* bytes of entries applied since the last one */
    uint64_t appends_deferred;    /* leader appends started after their sends */
} orbit_consensus_status_t;

/* Create a replica on loop: copies cfg (strings, peers and the fsm table;
 * fsm_ctx and state_ctx are borrowed), prepares raft, its libuv I/O in
 * data_dir and the TCP transport. Touches no network and writes no raft
 * state until orbit_consensus_start. On success *out owns the replica, which
 * must be closed with orbit_consensus_close. On failure *out is NULL,
 * nothing is left behind but data_dir (if it was created), and err (if
 * errlen > 0) holds a one-line reason.
 * Errors: ORBIT_EINVAL (bad id, address, peer list, timeouts or fsm table;
 * data_dir not a directory), ORBIT_ENOMEM, ORBIT_EIO (data_dir cannot be
 * created or opened). */
int orbit_consensus_new(const orbit_consensus_cfg_t *cfg, uv_loop_t *loop, orbit_consensus_t **out,
                        char *err, size_t errlen);

/* Check Raft's timers as orbit_consensus_new will (0: the default): the
 * heartbeat must be shorter than the election timeout. Callers that take
 * them from a user check them before touching any data directory.
 * Errors: ORBIT_EINVAL, with a one-line reason in err. */
int orbit_consensus_check_timers(unsigned election_ms, unsigned heartbeat_ms, char *err,
                                 size_t errlen);

/* Bootstrap data_dir from cfg->peers if it holds no raft state (once in its
 * life), load the log and snapshot (the fsm sees restore() for the last
 * snapshot unless its state is newer, then a replay of later entries with
 * already applied ones skipped), start listening and begin the state poll.
 * On failure err holds a one-line reason, and the replica must still be
 * closed with orbit_consensus_close (after the directory check below fails,
 * raft has loaded its state but not yet acted on it: close it at once).
 * Errors: ORBIT_EINVAL (already started or closing; data_dir holds the
 * state of a cluster where this id has another address), ORBIT_EIO (disk,
 * corrupt state, listen failure: address in use), ORBIT_ENOMEM. */
int orbit_consensus_start(orbit_consensus_t *c, char *err, size_t errlen);

/* Close asynchronously: stop the poll, wait until every entry of the local
 * log is on disk (at most 2 election timeouts + 1 s; meanwhile proposals may
 * still commit and complete with 0), close raft (waiting proposals and
 * requests complete with ORBIT_ELEADERLOST or ORBIT_ESHUTDOWN), then its I/O
 * and transport. For a planned shutdown of the leader, transfer leadership
 * first (orbit_consensus_transfer, close from its callback) so the cluster
 * needs no election. cb(ctx) runs on the loop once every handle is closed and
 * the replica's memory is freed; c is invalid from that moment (calls after
 * orbit_consensus_close and before cb answer ORBIT_ESHUTDOWN). cb may be
 * NULL. Safe to call from any callback of this replica, and after a failed
 * start. Calling it twice is a programmer error. The state machine is not
 * closed: that is the caller's (after cb). */
void orbit_consensus_close(orbit_consensus_t *c, orbit_consensus_close_fn cb, void *ctx);

/* Propose one entry (buf/len: copied; no reference kept). done(ctx, ...)
 * runs exactly once, later, on the loop, unless this call fails, in which
 * case it never runs. Any number of proposals may be in flight; they commit
 * in call order while leadership lasts.
 * Errors: ORBIT_ENOTLEADER (ask orbit_consensus_leader for a hint),
 * ORBIT_ESHUTDOWN (closing or not started), ORBIT_EINVAL (len 0 or done
 * NULL), ORBIT_ETOOBIG (len > ORBIT_CONSENSUS_ENTRY_MAX), ORBIT_ENOMEM,
 * ORBIT_EIO. */
int orbit_consensus_propose(orbit_consensus_t *c, const void *buf, size_t len,
                            orbit_consensus_done_fn done, void *ctx);

/* Linearizable read point: cb(ctx, 0) once every entry committed before the
 * call is applied on this replica and this replica was still leader when
 * the barrier committed; a read of the local state from cb is then
 * linearizable. Callback statuses: 0, ORBIT_ELEADERLOST, ORBIT_ESHUTDOWN.
 * Errors (no callback): ORBIT_ENOTLEADER, ORBIT_ESHUTDOWN, ORBIT_EINVAL
 * (cb NULL), ORBIT_ENOMEM. */
int orbit_consensus_barrier(orbit_consensus_t *c, orbit_consensus_cb_fn cb, void *ctx);

/* True if this replica is the leader right now. */
bool orbit_consensus_is_leader(orbit_consensus_t *c);

/* The leader this replica knows of: *id (0 if none) and *address (borrowed,
 * NULL if none; valid until control returns to the loop). Returns 0, or
 * ORBIT_ENOTFOUND when no leader is known. */
int orbit_consensus_leader(orbit_consensus_t *c, unsigned *id, const char **address);

/* Fill st (overwritten entirely; once closing, only state and the fsm
 * counters). Returns 0. */
int orbit_consensus_status(orbit_consensus_t *c, orbit_consensus_status_t *st);

/* Membership, on the leader, one change at a time. Each callback reports
 * when the new configuration is committed (0); ORBIT_ELEADERLOST or
 * ORBIT_ESHUTDOWN when the outcome is unknown (read the status); another
 * negative code when the change did not happen (ORBIT_EUNAVAIL: a server
 * being promoted did not catch up in time).
 * Errors (no callback): ORBIT_ENOTLEADER, ORBIT_ESHUTDOWN, ORBIT_EAGAIN
 * (another change is in progress), ORBIT_EINVAL (bad id/address/role, id
 * or address already in use, role unchanged, cb NULL), ORBIT_ENOTFOUND (no
 * such server), ORBIT_ENOMEM.
 *
 * Replacing a replica online: start the new server with no peers, add it
 * (it joins as a spare), assign it ORBIT_CONSENSUS_VOTER (raft first lets
 * it catch up as a non-voter, then promotes it), then remove the old one. */

/* Add server id at address (copied) as a spare. */
int orbit_consensus_add(orbit_consensus_t *c, unsigned id, const char *address,
                        orbit_consensus_cb_fn cb, void *ctx);
/* Give server id a new role (it must differ from the current one). */
int orbit_consensus_assign(orbit_consensus_t *c, unsigned id, orbit_consensus_role_t role,
                           orbit_consensus_cb_fn cb, void *ctx);
/* Remove server id (the leader itself may be removed: it steps down once
 * the change commits). */
int orbit_consensus_remove(orbit_consensus_t *c, unsigned id, orbit_consensus_cb_fn cb, void *ctx);

/* Hand leadership to voter id (0: the most up-to-date voter). cb(ctx, 0)
 * when the target is leader, ORBIT_ETIMEDOUT when it did not happen within
 * an election timeout, ORBIT_ESHUTDOWN when closing.
 * Errors (no callback): ORBIT_ENOTLEADER, ORBIT_ESHUTDOWN, ORBIT_EINVAL (id
 * is this server, not a voter, or unknown; cb NULL), ORBIT_ENOTFOUND (id 0
 * and no other voter), ORBIT_EAGAIN (a transfer is in progress),
 * ORBIT_ENOMEM. */
int orbit_consensus_transfer(orbit_consensus_t *c, unsigned id, orbit_consensus_cb_fn cb,
                             void *ctx);

/* Static name of a state or role ("leader", "voter", ...). */
const char *orbit_consensus_state_name(orbit_consensus_state_t s);
const char *orbit_consensus_role_name(orbit_consensus_role_t r);

#endif
