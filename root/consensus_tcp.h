/* consensus_tcp: raft 0.15's libuv TCP transport with TCP_NODELAY.
 *
 * raft's TCP transport never sets TCP_NODELAY, so Nagle's algorithm holds a
 * small AppendEntries back while an earlier one is unacknowledged, and the
 * follower's delayed ACK (40 ms on Linux) releases it: with a few entries in
 * flight, about one commitment in a hundred waited ~45 ms (p99 at 16
 * proposers: 48 ms, p50 4 ms). This transport wraps raft_uv_tcp: every
 * stream it accepts or connects gets TCP_NODELAY before raft sees it;
 * everything else is the TCP transport's.
 *
 * Engine-specific, like consensus_fsm.h: only consensus.c includes it. */
#ifndef ORBIT_ROOT_CONSENSUS_TCP_H
#define ORBIT_ROOT_CONSENSUS_TCP_H

#include <raft.h>
#include <raft/uv.h>

typedef struct {
    struct raft_uv_transport transport; /* hand &transport to raft_uv_init */
    struct raft_uv_transport tcp;       /* raft_uv_tcp, doing the work */
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
    unsigned long nodelay_errors; /* streams left with Nagle on (setsockopt failed) */
} orbit_consensus_tcp_t;

/* Initialise t on loop; raft's return codes. Release with
 * orbit_consensus_tcp_release once raft (and so the transport) is closed. */
int orbit_consensus_tcp_init(orbit_consensus_tcp_t *t, uv_loop_t *loop);
void orbit_consensus_tcp_release(orbit_consensus_tcp_t *t);

#endif
