/* root_uvzmq: edge-triggered ZMQ_FD on libuv with full, budgeted draining. */
#include "root_uvzmq.h"

#include <stdlib.h>

#include "orbit_err.h"

struct orbit_uvzmq {
    uv_poll_t poll;
    uv_check_t check;
    uv_idle_t idle;
    zsock_t *sock;
    int budget;
    orbit_uvzmq_fn fn;
    void *arg;
    int open_handles;
    void (*closed)(void *arg);
    void *closed_arg;
    int stopping;
};

static int readable(orbit_uvzmq_t *w)
{
    return (zsock_events(w->sock) & ZMQ_POLLIN) != 0;
}

static void on_idle(uv_idle_t *h)
{
    orbit_uvzmq_t *w = h->data;
    if (!readable(w)) {
        uv_idle_stop(h);
        return;
    }
    w->fn(w->sock, w->budget, w->arg);
    if (!readable(w))
        uv_idle_stop(h);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    orbit_uvzmq_t *w = h->data;
    if (w->stopping)
        return;
    w->fn(w->sock, w->budget, w->arg);
    if (readable(w))
        uv_idle_start(&w->idle, on_idle);
}

static void on_check(uv_check_t *h)
{
    orbit_uvzmq_t *w = h->data;
    if (!w->stopping && readable(w))
        uv_idle_start(&w->idle, on_idle);
}

int orbit_uvzmq_start(uv_loop_t *loop, zsock_t *sock, int budget, orbit_uvzmq_fn fn, void *arg,
                      orbit_uvzmq_t **out)
{
    orbit_uvzmq_t *w = calloc(1, sizeof *w);
    if (!w)
        return ORBIT_ENOMEM;
    w->sock = sock;
    w->budget = budget > 0 ? budget : 1024;
    w->fn = fn;
    w->arg = arg;
    int fd = zsock_fd(sock);
    if (fd < 0 || uv_poll_init(loop, &w->poll, fd) != 0) {
        free(w);
        return ORBIT_EIO;
    }
    uv_check_init(loop, &w->check);
    uv_idle_init(loop, &w->idle);
    w->poll.data = w->check.data = w->idle.data = w;
    w->open_handles = 3;
    uv_poll_start(&w->poll, UV_READABLE, on_poll);
    uv_check_start(&w->check, on_check);
    /* Messages may already be queued: their edge happened before we looked. */
    uv_idle_start(&w->idle, on_idle);
    *out = w;
    return ORBIT_OK;
}

static void on_closed(uv_handle_t *h)
{
    orbit_uvzmq_t *w = h->data;
    if (--w->open_handles == 0) {
        void (*cb)(void *) = w->closed;
        void *arg = w->closed_arg;
        free(w);
        if (cb)
            cb(arg);
    }
}

void orbit_uvzmq_stop(orbit_uvzmq_t *w, void (*closed)(void *arg), void *arg)
{
    if (!w || w->stopping)
        return;
    w->stopping = 1;
    w->closed = closed;
    w->closed_arg = arg;
    uv_close((uv_handle_t *)&w->poll, on_closed);
    uv_close((uv_handle_t *)&w->check, on_closed);
    uv_close((uv_handle_t *)&w->idle, on_closed);
}

void orbit_uvzmq_kick(orbit_uvzmq_t *w)
{
    if (w && !w->stopping && readable(w))
        uv_idle_start(&w->idle, on_idle);
}
