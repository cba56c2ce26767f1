/* consensus_tcp: raft's TCP transport with TCP_NODELAY on every stream. */
#include "consensus_tcp.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUTER(tcp) ((orbit_consensus_tcp_t *)((char *)(tcp)-offsetof(orbit_consensus_tcp_t, tcp)))
#define SELF(outer)                                                                                \
    ((orbit_consensus_tcp_t *)((char *)(outer)-offsetof(orbit_consensus_tcp_t, transport)))

typedef struct {
    struct raft_uv_connect inner;
    struct raft_uv_connect *outer;
    orbit_consensus_tcp_t *t;
} connect_t;

static void nodelay(orbit_consensus_tcp_t *t, struct uv_stream_s *stream)
{
    if (stream && stream->type == UV_TCP && uv_tcp_nodelay((uv_tcp_t *)stream, 1) != 0)
        t->nodelay_errors++;
}

static void copy_errmsg(orbit_consensus_tcp_t *t)
{
    snprintf(t->transport.errmsg, sizeof t->transport.errmsg, "%s", t->tcp.errmsg);
}

static int tcp_init(struct raft_uv_transport *outer, raft_id id, const char *address)
{
    orbit_consensus_tcp_t *t = SELF(outer);
    int rv = t->tcp.init(&t->tcp, id, address);
    if (rv != 0)
        copy_errmsg(t);
    return rv;
}

static void on_accept(struct raft_uv_transport *tcp, raft_id id, const char *address,
                      struct uv_stream_s *stream)
{
    orbit_consensus_tcp_t *t = OUTER(tcp);
    nodelay(t, stream);
    t->accept_cb(&t->transport, id, address, stream);
}

static int tcp_listen(struct raft_uv_transport *outer, raft_uv_accept_cb cb)
{
    orbit_consensus_tcp_t *t = SELF(outer);
    t->accept_cb = cb;
    int rv = t->tcp.listen(&t->tcp, on_accept);
    if (rv != 0)
        copy_errmsg(t);
    return rv;
}

/* Fires exactly once per connect, canceled ones included (the TCP transport
 * cancels pending connects on close), so the wrapper is always freed. */
static void on_connect(struct raft_uv_connect *inner, struct uv_stream_s *stream, int status)
{
    connect_t *c = (connect_t *)((char *)inner - offsetof(connect_t, inner));
    struct raft_uv_connect *outer = c->outer;
    if (status == 0)
        nodelay(c->t, stream);
    free(c);
    outer->cb(outer, stream, status);
}

static int tcp_connect(struct raft_uv_transport *outer, struct raft_uv_connect *req, raft_id id,
                       const char *address, raft_uv_connect_cb cb)
{
    orbit_consensus_tcp_t *t = SELF(outer);
    connect_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return RAFT_NOMEM;
    c->outer = req;
    c->t = t;
    req->cb = cb;
    int rv = t->tcp.connect(&t->tcp, &c->inner, id, address, on_connect);
    if (rv != 0) {
        copy_errmsg(t);
        free(c);
    }
    return rv;
}

static void on_close(struct raft_uv_transport *tcp)
{
    orbit_consensus_tcp_t *t = OUTER(tcp);
    if (t->close_cb != NULL)
        t->close_cb(&t->transport);
}

static void tcp_close(struct raft_uv_transport *outer, raft_uv_transport_close_cb cb)
{
    orbit_consensus_tcp_t *t = SELF(outer);
    t->close_cb = cb;
    t->tcp.close(&t->tcp, on_close);
}

int orbit_consensus_tcp_init(orbit_consensus_tcp_t *t, uv_loop_t *loop)
{
    memset(t, 0, sizeof *t);
    int rv = raft_uv_tcp_init(&t->tcp, loop);
    if (rv != 0)
        return rv;
    t->transport.init = tcp_init;
    t->transport.listen = tcp_listen;
    t->transport.connect = tcp_connect;
    t->transport.close = tcp_close;
    return 0;
}

void orbit_consensus_tcp_release(orbit_consensus_tcp_t *t)
{
    raft_uv_tcp_close(&t->tcp);
}
