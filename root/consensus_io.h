/* consensus_io: raft 0.15's libuv I/O with the leader's own append started
 * after its AppendEntries have gone out.
 *
 * raft 0.15's leader, given new entries, first starts its own append
 * (replicationTrigger: appendLeader, then the followers), and the libuv
 * backend's O_DIRECT write may complete inside io_submit: strace showed the
 * leader's loop blocked there for 0.07-0.9 ms before the AppendEntries to the
 * followers were even written. So a commitment paid two disk writes in
 * sequence, the leader's and then a follower's. This wrapper queues an append
 * made while `defer` says so (the leader) and starts the queued appends, in
 * order, from a uv_idle handle, that is once raft's current callback has
 * returned and the AppendEntries it sent are on the wire (libuv writes to a
 * socket at once when nothing is queued on it): the two writes overlap. An
 * idle handle rather than a check handle: while one is active the loop polls
 * without blocking, so the append starts at the next loop turn even when it
 * was made from a timer (a check handle would wait for the poll to return,
 * that is for the followers' answers). Raft is unaffected: an append's completion was always
 * asynchronous, and the leader still counts its own entry only when its
 * write completes.
 *
 * Order: truncate, snapshot_put and close start the queued appends first,
 * so the backend sees every request in the order raft made it.
 *
 * Engine-specific, like consensus_fsm.h: only consensus.c and its tests
 * include it. Thread rules: the loop's thread only. */
#ifndef ORBIT_ROOT_CONSENSUS_IO_H
#define ORBIT_ROOT_CONSENSUS_IO_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>
#include <raft.h>
#include <uv.h>

typedef bool (*orbit_consensus_io_defer_fn)(void *arg);
/* A deferred append the backend refused (raft's code rv): the log on disk
 * may no longer match raft's memory, so the replica must stop (NULL:
 * abort()). If it returns, nothing more is appended. */
typedef void (*orbit_consensus_io_fatal_fn)(void *arg, int rv);

typedef struct {
    struct raft_io io; /* first member: raft_uv_init fills it, raft_init takes &io */
    /* The backend's own methods, which do the work. */
    int (*append)(struct raft_io *io, struct raft_io_append *req, const struct raft_entry entries[],
                  unsigned n, raft_io_append_cb cb);
    int (*truncate)(struct raft_io *io, raft_index index);
    int (*snapshot_put)(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb);
    void (*close)(struct raft_io *io, raft_io_close_cb cb);
    uv_idle_t idle;
    bool wrapped;
    orbit_consensus_io_defer_fn defer;
    orbit_consensus_io_fatal_fn fatal;
    void *defer_arg;     /* for defer and fatal */
    bool failed;         /* a deferred append was refused: nothing more starts */
    zlistx_t *queue;     /* appends not started yet, in order */
    uint64_t n_deferred; /* appends started from the idle handle */
    uint64_t n_failed;   /* deferred appends the backend refused (fatal) */
} orbit_consensus_io_t;

/* Wrap the methods of d->io (already filled by raft_uv_init or a test's
 * own). defer(arg) is asked at each append: true queues it; fatal(arg, rv)
 * is told of a refused deferred append. Initialises the idle handle on loop
 * (close it with orbit_consensus_io_close_handle). */
void orbit_consensus_io_wrap(orbit_consensus_io_t *d, uv_loop_t *loop,
                             orbit_consensus_io_defer_fn defer, orbit_consensus_io_fatal_fn fatal,
                             void *arg);

/* Start every queued append now, in order. */
void orbit_consensus_io_flush(orbit_consensus_io_t *d);

/* Flush, then close the idle handle; cb(handle) once it is closed (the
 * memory of d must stay valid until then). Appends made afterwards are not
 * deferred. */
void orbit_consensus_io_close_handle(orbit_consensus_io_t *d, uv_close_cb cb);

#endif
