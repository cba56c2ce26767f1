/* consensus: the seam's engine, canonical/raft 0.15 with its libuv backend
 * and TCP transport, driven on the caller's loop. */
#include "consensus.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>

#include "consensus_fsm.h"
#include "consensus_io.h"
#include "consensus_tcp.h"
#include "orbit_err.h"
#include "orbit_log.h"

/* A proposal waiting for its entry to commit. Linked in index order on the
 * replica's list so the fsm adapter can hand it the apply result. */
typedef struct prop {
    struct raft_apply req; /* req.data = this */
    orbit_consensus_t *c;
    orbit_consensus_done_fn done;
    void *ctx;
    uint64_t index;
    void *result;
    struct prop *prev, *next;
} prop_t;

typedef enum { OP_BARRIER, OP_CHANGE, OP_TRANSFER } op_kind_t;

/* A barrier, membership change or leadership transfer in flight. */
typedef struct op {
    union {
        struct raft_barrier barrier;
        struct raft_change change;
        struct raft_transfer transfer;
    } u;
    op_kind_t kind;
    orbit_consensus_t *c;
    orbit_consensus_cb_fn cb;
    void *ctx;
    struct op *prev, *next;
} op_t;

struct orbit_consensus {
    uv_loop_t *loop;
    unsigned id;
    char address[ORBIT_CONSENSUS_ADDR_MAX];
    char *data_dir;
    orbit_consensus_peer_t *peers; /* addresses point into peer_addr */
    char (*peer_addr)[ORBIT_CONSENSUS_ADDR_MAX];
    size_t n_peers;
    unsigned election_ms, heartbeat_ms, snap_threshold, snap_trailing, poll_ms;
    uint64_t snap_bytes;

    orbit_consensus_tcp_t transport; /* raft_uv_tcp with TCP_NODELAY */
    orbit_consensus_io_t cio;        /* raft_uv, leader appends after its sends */
    struct raft raft;
    orbit_consensus_fsm_adapter_t fsm;

    uv_timer_t poll;
    orbit_consensus_state_fn on_state;
    void *state_ctx;
    bool seen_leader;
    uint64_t seen_term;
    unsigned seen_leader_id;

    prop_t *props_head, *props_tail;
    op_t *ops;

    uint64_t rng;            /* election-timeout randomness, seeded per replica */
    uint64_t drain_deadline; /* loop time at which close stops waiting */

    bool started, closing;
    bool engine_closed; /* raft_close's callback ran */
    bool idle_open;     /* consensus_io's idle handle is not closed yet */
    orbit_consensus_close_fn close_cb;
    void *close_ctx;
};

/* raft's codes to ours. */
static int map_raft(int rv)
{
    switch (rv) {
    case 0: return ORBIT_OK;
    case RAFT_NOMEM: return ORBIT_ENOMEM;
    case RAFT_BADID:
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
    case RAFT_BADROLE:
    case RAFT_MALFORMED:
    case RAFT_INVALID:
    case RAFT_NAMETOOLONG: return ORBIT_EINVAL;
    case RAFT_NOTLEADER: return ORBIT_ENOTLEADER;
    case RAFT_LEADERSHIPLOST: return ORBIT_ELEADERLOST;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED: return ORBIT_ESHUTDOWN;
    case RAFT_CANTCHANGE:
    case RAFT_BUSY: return ORBIT_EAGAIN;
    case RAFT_TOOBIG: return ORBIT_ETOOBIG;
    case RAFT_NOTFOUND: return ORBIT_ENOTFOUND;
    case RAFT_NOCONNECTION: return ORBIT_EUNAVAIL;
    default: return ORBIT_EIO;
    }
}

static bool valid_address(const char *a)
{
    const char *colon;
    char *end;
    long port;

    if (a == NULL || a[0] == '\0' || strlen(a) >= ORBIT_CONSENSUS_ADDR_MAX)
        return false;
    colon = strrchr(a, ':');
    if (colon == NULL || colon == a || colon[1] == '\0')
        return false;
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    return errno == 0 && *end == '\0' && port > 0 && port <= 65535;
}

static bool valid_id(unsigned id)
{
    return id >= 1 && id <= ORBIT_CONSENSUS_ID_MAX;
}

/* ---- proposals ------------------------------------------------------- */

static void prop_link(orbit_consensus_t *c, prop_t *p)
{
    p->prev = c->props_tail;
    p->next = NULL;
    if (c->props_tail != NULL)
        c->props_tail->next = p;
    else
        c->props_head = p;
    c->props_tail = p;
}

static void prop_unlink(orbit_consensus_t *c, prop_t *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        c->props_head = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    else
        c->props_tail = p->prev;
    p->prev = p->next = NULL;
}

/* The adapter offers every apply result here. Proposals are linked in the
 * order raft assigned their indexes and entries apply in index order, so
 * the match is normally the head. */
static bool claim_result(void *arg, uint64_t index, void *result)
{
    orbit_consensus_t *c = arg;
    for (prop_t *p = c->props_head; p != NULL && p->index <= index; p = p->next) {
        if (p->index == index) {
            p->result = result;
            return true;
        }
    }
    return false;
}

static void release_result(orbit_consensus_t *c, void *result)
{
    if (result != NULL && c->fsm.ops.result_free != NULL)
        c->fsm.ops.result_free(c->fsm.ctx, result);
}

static void apply_cb(struct raft_apply *req, int status, void *unused)
{
    prop_t *p = req->data;
    orbit_consensus_t *c = p->c;
    void *result = p->result;
    (void)unused; /* results travel through claim_result */

    prop_unlink(c, p);
    if (status != 0) {
        release_result(c, result);
        result = NULL;
    }
    p->done(p->ctx, map_raft(status), p->index, result);
    free(p);
}

int orbit_consensus_propose(orbit_consensus_t *c, const void *buf, size_t len,
                            orbit_consensus_done_fn done, void *ctx)
{
    struct raft_buffer rb;
    prop_t *p;
    int rv;

    if (c->closing || !c->started)
        return ORBIT_ESHUTDOWN;
    if (buf == NULL || len == 0 || done == NULL)
        return ORBIT_EINVAL;
    if (len > ORBIT_CONSENSUS_ENTRY_MAX)
        return ORBIT_ETOOBIG;
    if (raft_state(&c->raft) != RAFT_LEADER)
        return ORBIT_ENOTLEADER;

    p = calloc(1, sizeof *p);
    rb.len = orbit_consensus_entry_size(len);
    rb.base = raft_malloc(rb.len);
    if (p == NULL || rb.base == NULL) {
        free(p);
        raft_free(rb.base);
        return ORBIT_ENOMEM;
    }
    orbit_consensus_entry_wrap(rb.base, buf, len);
    p->req.data = p;
    p->c = c;
    p->done = done;
    p->ctx = ctx;
    /* Linked before raft_apply so a result can never find it missing. */
    p->index = raft_last_index(&c->raft) + 1;
    prop_link(c, p);
    rv = raft_apply(&c->raft, &p->req, &rb, 1, apply_cb);
    if (rv != 0) {
        prop_unlink(c, p);
        free(p);
        raft_free(rb.base); /* ownership passes to raft only on success */
        return map_raft(rv);
    }
    p->index = p->req.index;
    return ORBIT_OK;
}

/* ---- barrier, membership, transfer ----------------------------------- */

static op_t *op_new(orbit_consensus_t *c, op_kind_t kind, orbit_consensus_cb_fn cb, void *ctx)
{
    op_t *o = calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    o->kind = kind;
    o->c = c;
    o->cb = cb;
    o->ctx = ctx;
    o->next = c->ops;
    if (c->ops != NULL)
        c->ops->prev = o;
    c->ops = o;
    return o;
}

static void op_free(op_t *o)
{
    orbit_consensus_t *c = o->c;
    if (o->prev != NULL)
        o->prev->next = o->next;
    else
        c->ops = o->next;
    if (o->next != NULL)
        o->next->prev = o->prev;
    free(o);
}

static void op_done(op_t *o, int status)
{
    orbit_consensus_cb_fn cb = o->cb;
    void *ctx = o->ctx;
    op_free(o);
    cb(ctx, status);
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    op_done(req->data, map_raft(status));
}

static void change_cb(struct raft_change *req, int status)
{
    op_done(req->data, map_raft(status));
}

static void transfer_cb(struct raft_transfer *req)
{
    op_t *o = req->data;
    orbit_consensus_t *c = o->c;
    raft_id leader = 0;
    const char *address = NULL;

    raft_leader(&c->raft, &leader, &address);
    if (c->closing)
        op_done(o, ORBIT_ESHUTDOWN);
    else
        op_done(o, leader != 0 && leader == req->id ? ORBIT_OK : ORBIT_ETIMEDOUT);
}

/* Common checks of every leader-only request. */
static int leader_request_check(orbit_consensus_t *c, orbit_consensus_cb_fn cb)
{
    if (c->closing || !c->started)
        return ORBIT_ESHUTDOWN;
    if (cb == NULL)
        return ORBIT_EINVAL;
    if (raft_state(&c->raft) != RAFT_LEADER)
        return ORBIT_ENOTLEADER;
    return ORBIT_OK;
}

int orbit_consensus_barrier(orbit_consensus_t *c, orbit_consensus_cb_fn cb, void *ctx)
{
    int rv = leader_request_check(c, cb);
    op_t *o;

    if (rv != 0)
        return rv;
    o = op_new(c, OP_BARRIER, cb, ctx);
    if (o == NULL)
        return ORBIT_ENOMEM;
    o->u.barrier.data = o;
    rv = raft_barrier(&c->raft, &o->u.barrier, barrier_cb);
    if (rv != 0) {
        op_free(o);
        return map_raft(rv);
    }
    return ORBIT_OK;
}

static const struct raft_server *config_get(orbit_consensus_t *c, unsigned id)
{
    for (unsigned i = 0; i < c->raft.configuration.n; i++)
        if (c->raft.configuration.servers[i].id == id)
            return &c->raft.configuration.servers[i];
    return NULL;
}

int orbit_consensus_add(orbit_consensus_t *c, unsigned id, const char *address,
                        orbit_consensus_cb_fn cb, void *ctx)
{
    int rv = leader_request_check(c, cb);
    op_t *o;

    if (rv != 0)
        return rv;
    if (!valid_id(id) || !valid_address(address))
        return ORBIT_EINVAL;
    o = op_new(c, OP_CHANGE, cb, ctx);
    if (o == NULL)
        return ORBIT_ENOMEM;
    o->u.change.data = o;
    rv = raft_add(&c->raft, &o->u.change, id, address, change_cb);
    if (rv != 0) {
        op_free(o);
        return map_raft(rv);
    }
    return ORBIT_OK;
}

static int role_to_raft(orbit_consensus_role_t role)
{
    switch (role) {
    case ORBIT_CONSENSUS_VOTER: return RAFT_VOTER;
    case ORBIT_CONSENSUS_STANDBY: return RAFT_STANDBY;
    case ORBIT_CONSENSUS_SPARE: return RAFT_SPARE;
    }
    return -1;
}

static orbit_consensus_role_t role_from_raft(int role)
{
    switch (role) {
    case RAFT_VOTER: return ORBIT_CONSENSUS_VOTER;
    case RAFT_STANDBY: return ORBIT_CONSENSUS_STANDBY;
    default: return ORBIT_CONSENSUS_SPARE;
    }
}

int orbit_consensus_assign(orbit_consensus_t *c, unsigned id, orbit_consensus_role_t role,
                           orbit_consensus_cb_fn cb, void *ctx)
{
    int rv = leader_request_check(c, cb);
    int raft_role = role_to_raft(role);
    const struct raft_server *s;
    op_t *o;

    if (rv != 0)
        return rv;
    if (!valid_id(id) || raft_role < 0)
        return ORBIT_EINVAL;
    s = config_get(c, id);
    if (s == NULL)
        return ORBIT_ENOTFOUND;
    if (s->role == raft_role)
        return ORBIT_EINVAL;
    o = op_new(c, OP_CHANGE, cb, ctx);
    if (o == NULL)
        return ORBIT_ENOMEM;
    o->u.change.data = o;
    rv = raft_assign(&c->raft, &o->u.change, id, raft_role, change_cb);
    if (rv != 0) {
        op_free(o);
        return map_raft(rv);
    }
    return ORBIT_OK;
}

int orbit_consensus_remove(orbit_consensus_t *c, unsigned id, orbit_consensus_cb_fn cb, void *ctx)
{
    int rv = leader_request_check(c, cb);
    op_t *o;

    if (rv != 0)
        return rv;
    if (!valid_id(id))
        return ORBIT_EINVAL;
    if (config_get(c, id) == NULL)
        return ORBIT_ENOTFOUND;
    o = op_new(c, OP_CHANGE, cb, ctx);
    if (o == NULL)
        return ORBIT_ENOMEM;
    o->u.change.data = o;
    rv = raft_remove(&c->raft, &o->u.change, id, change_cb);
    if (rv != 0) {
        op_free(o);
        return map_raft(rv);
    }
    return ORBIT_OK;
}

int orbit_consensus_transfer(orbit_consensus_t *c, unsigned id, orbit_consensus_cb_fn cb, void *ctx)
{
    int rv = leader_request_check(c, cb);
    op_t *o;

    if (rv != 0)
        return rv;
    if (id != 0 && !valid_id(id))
        return ORBIT_EINVAL;
    if (c->raft.transfer != NULL)
        return ORBIT_EAGAIN;
    o = op_new(c, OP_TRANSFER, cb, ctx);
    if (o == NULL)
        return ORBIT_ENOMEM;
    o->u.transfer.data = o;
    rv = raft_transfer(&c->raft, &o->u.transfer, id, transfer_cb);
    if (rv != 0) {
        op_free(o);
        return rv == RAFT_BADID ? ORBIT_EINVAL : map_raft(rv);
    }
    return ORBIT_OK;
}

/* ---- queries --------------------------------------------------------- */

bool orbit_consensus_is_leader(orbit_consensus_t *c)
{
    return c->started && !c->closing && raft_state(&c->raft) == RAFT_LEADER;
}

int orbit_consensus_leader(orbit_consensus_t *c, unsigned *id, const char **address)
{
    raft_id lid = 0;
    const char *laddr = NULL;

    if (c->started && !c->closing)
        raft_leader(&c->raft, &lid, &laddr);
    if (id != NULL)
        *id = (unsigned)lid;
    if (address != NULL)
        *address = lid != 0 ? laddr : NULL;
    return lid != 0 ? ORBIT_OK : ORBIT_ENOTFOUND;
}

static orbit_consensus_state_t state_now(orbit_consensus_t *c)
{
    if (!c->started || c->closing)
        return ORBIT_CONSENSUS_UNAVAILABLE;
    switch (raft_state(&c->raft)) {
    case RAFT_FOLLOWER: return ORBIT_CONSENSUS_FOLLOWER;
    case RAFT_CANDIDATE: return ORBIT_CONSENSUS_CANDIDATE;
    case RAFT_LEADER: return ORBIT_CONSENSUS_LEADER;
    default: return ORBIT_CONSENSUS_UNAVAILABLE;
    }
}

int orbit_consensus_status(orbit_consensus_t *c, orbit_consensus_status_t *st)
{
    const char *laddr = NULL;
    const struct raft_configuration *conf = &c->raft.configuration;

    memset(st, 0, sizeof *st);
    st->fsm_applied = c->fsm.n_applied;
    st->fsm_skipped = c->fsm.n_skipped;
    st->fsm_restored = c->fsm.n_restored;
    st->snapshots_by_bytes = c->fsm.n_snapshots_by_bytes;
    st->appends_deferred = c->cio.n_deferred;
    st->log_bytes = c->fsm.log_bytes;
    st->fsm_restore_skipped = c->fsm.n_restore_skipped;
    st->state = state_now(c);
    if (c->closing)
        return ORBIT_OK; /* raft's state may already be released */
    st->term = c->raft.current_term;
    st->commit_index = c->raft.commit_index;
    st->last_applied = c->raft.last_applied;
    st->last_index = c->started ? raft_last_index(&c->raft) : 0;
    st->snapshot_index = c->raft.log.snapshot.last_index;
    orbit_consensus_leader(c, &st->leader_id, &laddr);
    if (laddr != NULL)
        snprintf(st->leader_address, sizeof st->leader_address, "%s", laddr);
    st->n_servers = conf->n;
    for (unsigned i = 0; i < conf->n && i < ORBIT_CONSENSUS_MAX_SERVERS; i++) {
        st->servers[i].id = (unsigned)conf->servers[i].id;
        snprintf(st->servers[i].address, sizeof st->servers[i].address, "%s",
                 conf->servers[i].address);
        st->servers[i].role = role_from_raft(conf->servers[i].role);
    }
    return ORBIT_OK;
}

const char *orbit_consensus_state_name(orbit_consensus_state_t s)
{
    switch (s) {
    case ORBIT_CONSENSUS_UNAVAILABLE: return "unavailable";
    case ORBIT_CONSENSUS_FOLLOWER: return "follower";
    case ORBIT_CONSENSUS_CANDIDATE: return "candidate";
    case ORBIT_CONSENSUS_LEADER: return "leader";
    }
    return "unknown";
}

const char *orbit_consensus_role_name(orbit_consensus_role_t r)
{
    switch (r) {
    case ORBIT_CONSENSUS_VOTER: return "voter";
    case ORBIT_CONSENSUS_STANDBY: return "standby";
    case ORBIT_CONSENSUS_SPARE: return "spare";
    }
    return "unknown";
}

/* ---- leader-view poll ------------------------------------------------ */

static void poll_cb(uv_timer_t *t)
{
    orbit_consensus_t *c = t->data;
    raft_id lid = 0;
    const char *laddr = NULL;
    bool is_leader;
    uint64_t term;

    if (c->closing)
        return;
    raft_leader(&c->raft, &lid, &laddr);
    is_leader = raft_state(&c->raft) == RAFT_LEADER;
    term = c->raft.current_term;
    if (is_leader == c->seen_leader && term == c->seen_term && lid == c->seen_leader_id)
        return;
    if (is_leader != c->seen_leader || lid != c->seen_leader_id)
        orbit_info("consensus %u: %s, term %llu, leader %llu", c->id,
                   is_leader ? "leader" : "not leader", (unsigned long long)term,
                   (unsigned long long)lid);
    c->seen_leader = is_leader;
    c->seen_term = term;
    c->seen_leader_id = (unsigned)lid;
    if (c->on_state != NULL)
        c->on_state(c->state_ctx, is_leader, term, (unsigned)lid);
}

/* ---- lifecycle ------------------------------------------------------- */

static void consensus_free(orbit_consensus_t *c)
{
    free(c->data_dir);
    free(c->peers);
    free(c->peer_addr);
    free(c);
}

int orbit_consensus_check_timers(unsigned election_ms, unsigned heartbeat_ms, char *err,
                                 size_t errlen)
{
    unsigned e = election_ms ? election_ms : ORBIT_CONSENSUS_ELECTION_MS_DEFAULT;
    unsigned h = heartbeat_ms ? heartbeat_ms : ORBIT_CONSENSUS_HEARTBEAT_MS_DEFAULT;
    if (h >= e) {
        orbit_errf(err, errlen, "heartbeat %u ms must be shorter than the election timeout %u ms",
                   h, e);
        return ORBIT_EINVAL;
    }
    return ORBIT_OK;
}

static int copy_cfg(orbit_consensus_t *c, const orbit_consensus_cfg_t *cfg, char *err,
                    size_t errlen)
{
    bool self_listed = false;

    if (!valid_id(cfg->id)) {
        orbit_errf(err, errlen, "server id %u is not in 1..%d", cfg->id, ORBIT_CONSENSUS_ID_MAX);
        return ORBIT_EINVAL;
    }
    if (!valid_address(cfg->address)) {
        orbit_errf(err, errlen, "raft address '%s' is not host:port",
                   cfg->address ? cfg->address : "");
        return ORBIT_EINVAL;
    }
    if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
        orbit_errf(err, errlen, "no data directory");
        return ORBIT_EINVAL;
    }
    if (cfg->fsm == NULL || cfg->fsm->apply == NULL || cfg->fsm->snapshot == NULL ||
        cfg->fsm->restore == NULL || cfg->fsm->applied_index == NULL) {
        orbit_errf(err, errlen, "state machine lacks apply, snapshot, restore or applied_index");
        return ORBIT_EINVAL;
    }
    if (orbit_consensus_check_timers(cfg->election_timeout_ms, cfg->heartbeat_ms, err, errlen))
        return ORBIT_EINVAL;
    c->election_ms =
        cfg->election_timeout_ms ? cfg->election_timeout_ms : ORBIT_CONSENSUS_ELECTION_MS_DEFAULT;
    c->heartbeat_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : ORBIT_CONSENSUS_HEARTBEAT_MS_DEFAULT;
    c->snap_threshold = cfg->snapshot_threshold;
    c->snap_trailing = cfg->snapshot_trailing;
    c->snap_bytes = cfg->snapshot_bytes;
    c->poll_ms = cfg->state_poll_ms ? cfg->state_poll_ms : ORBIT_CONSENSUS_STATE_POLL_MS;
    c->id = cfg->id;
    snprintf(c->address, sizeof c->address, "%s", cfg->address);
    c->data_dir = strdup(cfg->data_dir);
    if (c->data_dir == NULL)
        return ORBIT_ENOMEM;

    if (cfg->n_peers > 0) {
        if (cfg->peers == NULL) {
            orbit_errf(err, errlen, "peer list missing");
            return ORBIT_EINVAL;
        }
        c->peers = calloc(cfg->n_peers, sizeof *c->peers);
        c->peer_addr = calloc(cfg->n_peers, sizeof *c->peer_addr);
        if (c->peers == NULL || c->peer_addr == NULL)
            return ORBIT_ENOMEM;
        for (size_t i = 0; i < cfg->n_peers; i++) {
            const orbit_consensus_peer_t *p = &cfg->peers[i];
            if (!valid_id(p->id) || !valid_address(p->address)) {
                orbit_errf(err, errlen, "peer %zu: bad id %u or address '%s'", i + 1, p->id,
                           p->address ? p->address : "");
                return ORBIT_EINVAL;
            }
            for (size_t j = 0; j < i; j++) {
                if (cfg->peers[j].id == p->id || strcmp(cfg->peers[j].address, p->address) == 0) {
                    orbit_errf(err, errlen, "peer %u (%s) listed twice", p->id, p->address);
                    return ORBIT_EINVAL;
                }
            }
            if (p->id == cfg->id) {
                if (strcmp(p->address, cfg->address) != 0) {
                    orbit_errf(err, errlen, "peer list gives server %u address %s, not %s", p->id,
                               p->address, cfg->address);
                    return ORBIT_EINVAL;
                }
                self_listed = true;
            }
            snprintf(c->peer_addr[i], sizeof c->peer_addr[i], "%s", p->address);
            c->peers[i].id = p->id;
            c->peers[i].address = c->peer_addr[i];
        }
        if (!self_listed) {
            orbit_errf(err, errlen, "peer list does not include this server (%u)", cfg->id);
            return ORBIT_EINVAL;
        }
        c->n_peers = cfg->n_peers;
    }
    c->on_state = cfg->on_state;
    c->state_ctx = cfg->state_ctx;
    return ORBIT_OK;
}

static int prepare_dir(const char *dir, char *err, size_t errlen)
{
    struct stat sb;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        orbit_errf(err, errlen, "cannot create data directory %s: %s", dir, strerror(errno));
        return ORBIT_EIO;
    }
    if (stat(dir, &sb) != 0) {
        orbit_errf(err, errlen, "cannot open data directory %s: %s", dir, strerror(errno));
        return ORBIT_EIO;
    }
    if (!S_ISDIR(sb.st_mode)) {
        orbit_errf(err, errlen, "data directory %s is not a directory", dir);
        return ORBIT_EINVAL;
    }
    return ORBIT_OK;
}

/* raft 0.15's libuv backend draws randomized election timeouts from the
 * process-global rand() (which raft_uv_init seeds from getrandom). Anything
 * else in the process that reseeds rand() with a constant would make every
 * replica draw the same timeouts and split votes again and again, so each
 * replica gets its own generator (seeded from the clock, the pid and its
 * id) and the engine depends on no global state. Candidates retry sooner
 * than followers give up on a leader (orbit_consensus_election_draw). */
static int engine_random(struct raft_io *io, int min, int max)
{
    orbit_consensus_t *c = (orbit_consensus_t *)((char *)io - offsetof(orbit_consensus_t, cio.io));

    return orbit_consensus_election_draw(&c->rng, raft_state(&c->raft) == RAFT_CANDIDATE, min, max);
}

/* consensus_io asks this at each append: the leader's own appends start
 * once its AppendEntries are sent. */
static bool defer_append(void *arg)
{
    orbit_consensus_t *c = arg;
    return raft_state(&c->raft) == RAFT_LEADER;
}

/* consensus_io could not start the leader's own append: what is on disk may
 * no longer match raft's log in memory. Stop; a restart recovers from the
 * log on disk. */
static void append_failed(void *arg, int rv)
{
    orbit_consensus_t *c = arg;
    orbit_error("consensus %u: the leader's log append in %s failed (%s); stopping: restart the "
                "replica, it recovers from its log",
                c->id, c->data_dir, raft_strerror(rv));
    exit(EXIT_FAILURE);
}

int orbit_consensus_new(const orbit_consensus_cfg_t *cfg, uv_loop_t *loop, orbit_consensus_t **out,
                        char *err, size_t errlen)
{
    orbit_consensus_t *c;
    int rv;

    *out = NULL;
    orbit_errf(err, errlen, "%s", "");
    if (cfg == NULL || loop == NULL) {
        orbit_errf(err, errlen, "no configuration or loop");
        return ORBIT_EINVAL;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return ORBIT_ENOMEM;
    c->loop = loop;
    rv = copy_cfg(c, cfg, err, errlen);
    if (rv != 0)
        goto err_free;
    rv = prepare_dir(c->data_dir, err, errlen);
    if (rv != 0)
        goto err_free;
    rv = orbit_consensus_fsm_init(&c->fsm, cfg->fsm, cfg->fsm_ctx);
    assert(rv == 0); /* copy_cfg checked the table */
    orbit_consensus_fsm_set_claim(&c->fsm, claim_result, c);

    rv = orbit_consensus_tcp_init(&c->transport, loop);
    if (rv != 0) {
        orbit_errf(err, errlen, "raft transport: %s", raft_strerror(rv));
        rv = map_raft(rv);
        goto err_free;
    }
    rv = raft_uv_init(&c->cio.io, loop, c->data_dir, &c->transport.transport);
    if (rv != 0) {
        orbit_errf(err, errlen, "raft storage in %s: %s", c->data_dir, c->cio.io.errmsg);
        rv = rv == RAFT_NOMEM ? ORBIT_ENOMEM : ORBIT_EIO;
        goto err_transport;
    }
    /* Snapshots are stored as they are, not LZ4-compressed: compression cost
     * every replica CPU and a second buffer the size of the state at every
     * snapshot (with it off, 256 pipelined proposers did ~4 % more
     * commitments/s over 20 s runs here), and a restart reads them back
     * without decompressing. The disk holds the state's size instead. */
    raft_uv_set_snapshot_compression(&c->cio.io, false);
    /* raft 0.15's libuv backend implements async_work (a uv_queue_work) but
     * still says struct raft_io version 1, and raft_init refuses an fsm
     * with snapshot_async on a version-1 io. Version 2 adds exactly that
     * one field, so declare what is there. */
    if (c->cio.io.version < 2 && c->cio.io.async_work != NULL)
        c->cio.io.version = 2;
    rv = raft_init(&c->raft, &c->cio.io, &c->fsm.fsm, c->id, c->address);
    if (rv != 0) {
        orbit_errf(err, errlen, "raft init: %s", raft_errmsg(&c->raft));
        rv = rv == RAFT_NOMEM ? ORBIT_ENOMEM : ORBIT_EIO;
        goto err_io;
    }
    c->raft.data = c;
    orbit_consensus_io_wrap(&c->cio, loop, defer_append, append_failed, c);
    c->idle_open = true;
    c->rng = (uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (c->id * 0x9e3779b97f4a7c15ull)) | 1;
    c->cio.io.random = engine_random;
    orbit_consensus_fsm_bind(&c->fsm, &c->raft);
    orbit_consensus_raft_tune(&c->raft, c->election_ms, c->heartbeat_ms, c->snap_threshold,
                              c->snap_trailing);
    orbit_consensus_fsm_set_snapshot_policy(&c->fsm, c->snap_threshold, c->snap_trailing,
                                            c->snap_bytes);
    uv_timer_init(loop, &c->poll); /* cannot fail */
    c->poll.data = c;
    *out = c;
    return ORBIT_OK;

err_io:
    raft_uv_close(&c->cio.io);
err_transport:
    orbit_consensus_tcp_release(&c->transport);
err_free:
    consensus_free(c);
    return rv;
}

/* Bootstrap if the directory is pristine: raft refuses (RAFT_CANTBOOTSTRAP)
 * once any state exists, which is how "bootstrap once" is enforced. */
static int bootstrap(orbit_consensus_t *c, char *err, size_t errlen)
{
    struct raft_configuration conf;
    int rv = 0;

    if (c->n_peers == 0)
        return ORBIT_OK;
    raft_configuration_init(&conf);
    for (size_t i = 0; i < c->n_peers && rv == 0; i++)
        rv = raft_configuration_add(&conf, c->peers[i].id, c->peers[i].address, RAFT_VOTER);
    if (rv == 0)
        rv = raft_bootstrap(&c->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP) {
        orbit_info("consensus %u: %s holds raft state; rejoining", c->id, c->data_dir);
        return ORBIT_OK;
    }
    if (rv != 0) {
        orbit_errf(err, errlen, "bootstrap in %s: %s", c->data_dir, raft_errmsg(&c->raft));
        return map_raft(rv) == ORBIT_ENOMEM ? ORBIT_ENOMEM : ORBIT_EIO;
    }
    orbit_info("consensus %u: bootstrapped a %zu-server cluster in %s", c->id, c->n_peers,
               c->data_dir);
    return ORBIT_OK;
}

int orbit_consensus_start(orbit_consensus_t *c, char *err, size_t errlen)
{
    const struct raft_server *self;
    int rv;

    orbit_errf(err, errlen, "%s", "");
    if (c->started || c->closing) {
        orbit_errf(err, errlen, "already started or closing");
        return ORBIT_EINVAL;
    }
    rv = bootstrap(c, err, errlen);
    if (rv != 0)
        return rv;
    rv = raft_start(&c->raft);
    if (rv != 0) {
        /* raft 0.15 often leaves its message empty (a busy port, for one):
         * fall back to the code's own description. */
        const char *why = raft_errmsg(&c->raft);
        orbit_errf(err, errlen, "raft start (%s, %s): %s", c->address, c->data_dir,
                   why && *why ? why : raft_strerror(rv));
        return rv == RAFT_NOMEM ? ORBIT_ENOMEM : ORBIT_EIO;
    }
    c->started = true;
    /* A directory copied from another cluster (or another server) names this
     * id with a different address: refuse rather than join the wrong log. */
    self = config_get(c, c->id);
    if (self != NULL && strcmp(self->address, c->address) != 0) {
        orbit_errf(err, errlen,
                   "data directory %s belongs to a cluster where server %u is %s, not %s",
                   c->data_dir, c->id, self->address, c->address);
        return ORBIT_EINVAL;
    }
    uv_timer_start(&c->poll, poll_cb, c->poll_ms, c->poll_ms);
    return ORBIT_OK;
}

/* Both raft (with its I/O and transport) and consensus_io's idle handle are
 * closed: free the replica and tell the owner. */
static void close_finish(orbit_consensus_t *c)
{
    if (!c->engine_closed || c->idle_open)
        return;
    orbit_consensus_close_fn cb = c->close_cb;
    void *ctx = c->close_ctx;
    consensus_free(c);
    if (cb != NULL)
        cb(ctx);
}

/* Raft, its I/O and transport are closed: complete whatever raft never
 * called back and release them. */
static void engine_closed_cb(struct raft *r)
{
    orbit_consensus_t *c = r->data;
    raft_uv_close(&c->cio.io);
    orbit_consensus_tcp_release(&c->transport);
    while (c->props_head != NULL) {
        prop_t *p = c->props_head;
        prop_unlink(c, p);
        release_result(c, p->result);
        p->done(p->ctx, ORBIT_ESHUTDOWN, p->index, NULL);
        free(p);
    }
    while (c->ops != NULL)
        op_done(c->ops, ORBIT_ESHUTDOWN);
    c->engine_closed = true;
    close_finish(c);
}

static void io_idle_closed_cb(uv_handle_t *h)
{
    orbit_consensus_io_t *d = h->data;
    orbit_consensus_t *c =
        (orbit_consensus_t *)(void *)((char *)d - offsetof(orbit_consensus_t, cio));
    c->idle_open = false;
    close_finish(c);
}

/* The poll timer is closed (one loop turn after orbit_consensus_close, so
 * raft_close never runs inside one of raft's own callbacks). consensus_io
 * starts what it has queued and closes its idle handle, and raft closes in
 * the same turn (no loop turn in between in which raft could start an
 * append that its close would cancel); the replica is freed once both are
 * done. */
static void poll_close_cb(uv_handle_t *h)
{
    orbit_consensus_t *c = h->data;
    if (c->cio.wrapped)
        orbit_consensus_io_close_handle(&c->cio, io_idle_closed_cb);
    raft_close(&c->raft, engine_closed_cb);
}

/* Every entry in the local log is on disk: no append is in flight. */
static bool appends_done(orbit_consensus_t *c)
{
    return !c->started || c->raft.last_stored >= raft_last_index(&c->raft);
}

/* Close waits for in-flight appends first. raft 0.15 cancels them when it
 * closes, and a cancelled leader append truncates the in-memory log from its
 * first index; the next cancelled append then releases and truncates
 * entries that are gone, and the process crashes (seen here closing a
 * leader with 50 proposals in flight). Once every entry is stored there is
 * nothing to cancel. The wait is bounded (a stuck disk must not block
 * shutdown forever); the poll timer, no longer needed, does the waiting. */
static void drain_cb(uv_timer_t *t)
{
    orbit_consensus_t *c = t->data;
    if (appends_done(c) || uv_now(c->loop) >= c->drain_deadline) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, poll_close_cb);
    }
}

void orbit_consensus_close(orbit_consensus_t *c, orbit_consensus_close_fn cb, void *ctx)
{
    assert(!c->closing);
    c->closing = true;
    c->close_cb = cb;
    c->close_ctx = ctx;
    uv_timer_stop(&c->poll);
    if (!appends_done(c)) {
        c->drain_deadline = uv_now(c->loop) + 2u * c->election_ms + 1000u;
        uv_timer_start(&c->poll, drain_cb, 1, 1);
        return;
    }
    uv_close((uv_handle_t *)&c->poll, poll_close_cb);
}
