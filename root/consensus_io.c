/* consensus_io: the leader's own append started after its AppendEntries
 * (see consensus_io.h). */
#include "consensus_io.h"

#include <stddef.h>
#include <stdlib.h>

#include <czmq.h>

typedef struct {
    struct raft_io_append *req;
    const struct raft_entry *entries;
    unsigned n;
    raft_io_append_cb cb;
} pending_t;

/* d->io is the first member, so raft's io pointer is d. */
static orbit_consensus_io_t *io_of(struct raft_io *io)
{
    return (orbit_consensus_io_t *)(void *)((char *)io - offsetof(orbit_consensus_io_t, io));
}

/* A refused deferred append cannot be handed back to raft: raft took it as
 * started, and raft 0.15's libuv backend may refuse a request it has
 * already queued (and will complete itself), so completing it here could
 * complete it twice, and starting the appends queued after it would write
 * entries raft is about to drop. The log can no longer be trusted to match
 * memory: nothing more is started and the fatal hook is told (the replica
 * stops; on restart raft recovers from what is on disk). */
static void start_one(orbit_consensus_io_t *d, pending_t *p)
{
    if (!d->failed) {
        int rv = d->append(&d->io, p->req, p->entries, p->n, p->cb);
        d->n_deferred++;
        if (rv != 0) {
            d->failed = true;
            d->n_failed++;
            if (d->fatal)
                d->fatal(d->defer_arg, rv);
            else
                abort();
        }
    }
    free(p);
}

void orbit_consensus_io_flush(orbit_consensus_io_t *d)
{
    pending_t *p;
    while (d->queue && (p = zlistx_detach(d->queue, NULL)))
        start_one(d, p);
    if (d->wrapped)
        uv_idle_stop(&d->idle);
}

static void idle_cb(uv_idle_t *h)
{
    orbit_consensus_io_flush(h->data);
}

static int io_append(struct raft_io *io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    orbit_consensus_io_t *d = io_of(io);
    if (d->failed)
        return RAFT_IOERR;
    bool queue = d->wrapped && d->defer != NULL && d->defer(d->defer_arg);
    pending_t *p = queue ? malloc(sizeof *p) : NULL;
    if (p)
        *p = (pending_t){req, entries, n, cb};
    if (!p || !zlistx_add_end(d->queue, p)) {
        /* Not deferred (or no memory to queue it): keep the order. */
        free(p);
        orbit_consensus_io_flush(d);
        return d->append(io, req, entries, n, cb);
    }
    uv_idle_start(&d->idle, idle_cb);
    return 0;
}

static int io_truncate(struct raft_io *io, raft_index index)
{
    orbit_consensus_io_t *d = io_of(io);
    orbit_consensus_io_flush(d);
    return d->truncate(io, index);
}

static int io_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                           const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    orbit_consensus_io_t *d = io_of(io);
    orbit_consensus_io_flush(d);
    return d->snapshot_put(io, trailing, req, snapshot, cb);
}

static void io_close(struct raft_io *io, raft_io_close_cb cb)
{
    orbit_consensus_io_t *d = io_of(io);
    orbit_consensus_io_flush(d);
    d->close(io, cb);
}

void orbit_consensus_io_wrap(orbit_consensus_io_t *d, uv_loop_t *loop,
                             orbit_consensus_io_defer_fn defer, orbit_consensus_io_fatal_fn fatal,
                             void *arg)
{
    d->append = d->io.append;
    d->truncate = d->io.truncate;
    d->snapshot_put = d->io.snapshot_put;
    d->close = d->io.close;
    d->io.append = io_append;
    d->io.truncate = io_truncate;
    d->io.snapshot_put = io_snapshot_put;
    d->io.close = io_close;
    d->defer = defer;
    d->fatal = fatal;
    d->defer_arg = arg;
    d->failed = false;
    d->queue = zlistx_new();      /* NULL (no memory): appends are not deferred */
    uv_idle_init(loop, &d->idle); /* cannot fail */
    d->idle.data = d;
    d->wrapped = true;
}

void orbit_consensus_io_close_handle(orbit_consensus_io_t *d, uv_close_cb cb)
{
    orbit_consensus_io_flush(d);
    zlistx_destroy(&d->queue);
    d->wrapped = false;
    uv_close((uv_handle_t *)&d->idle, cb);
}
