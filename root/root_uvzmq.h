/* root_uvzmq: reading a ZeroMQ socket from a libuv loop, so the root's Raft
 * engine (libuv) and its ZeroMQ sockets share one thread and no state.
 *
 * ZMQ_FD is edge-triggered and only says "look at ZMQ_EVENTS": a wake-up may
 * stand for many messages, and sending on the socket can consume the edge of
 * messages that arrived meanwhile. So the watcher (1) drains up to a budget
 * on every wake-up, (2) re-checks ZMQ_EVENTS after every loop iteration (a
 * uv_check handle), and (3) keeps the loop from blocking (a uv_idle handle)
 * while messages are still queued past the budget, so a flood cannot starve
 * timers and Raft, and no message waits for an edge that never comes.
 *
 * Thread rules: the loop's thread only. Lifecycle: orbit_uvzmq_stop closes
 * the handles asynchronously; the watcher's memory is released in the last
 * close callback, after which `closed` (if given) is called. */
#ifndef ORBIT_ROOT_UVZMQ_H
#define ORBIT_ROOT_UVZMQ_H

#include <czmq.h>
#include <uv.h>

typedef struct orbit_uvzmq orbit_uvzmq_t;

/* Called with the socket readable: receive at most `budget` messages without
 * blocking and return how many were received (fewer means the socket ran
 * dry or failed). */
typedef int (*orbit_uvzmq_fn)(zsock_t *sock, int budget, void *arg);

/* Watch sock (borrowed; must outlive the watcher) on loop.
 * Errors: ORBIT_ENOMEM, ORBIT_EIO (no ZMQ_FD or uv_poll failure). */
int orbit_uvzmq_start(uv_loop_t *loop, zsock_t *sock, int budget, orbit_uvzmq_fn fn, void *arg,
                      orbit_uvzmq_t **out);

/* Stop watching; closed(arg) runs once every handle is closed (may be NULL). */
void orbit_uvzmq_stop(orbit_uvzmq_t *w, void (*closed)(void *arg), void *arg);

/* Call after sending on the socket from outside the read callback: re-checks
 * ZMQ_EVENTS so arrivals whose edge the send consumed are not left waiting. */
void orbit_uvzmq_kick(orbit_uvzmq_t *w);

#endif
