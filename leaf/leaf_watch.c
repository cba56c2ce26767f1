/* leaf_watch: the actor that follows this node's placements and sends the agent its desired set. */
#include "leaf_watch.h"

#include <inttypes.h>
#include <string.h>

#include "leaf_desired.h"
#include "leaf_home.h"
#include "orbit_err.h"
#include "orbit_ledger_client.h"
#include "orbit_log.h"
#include "orbit_names.h"

#define FOLLOW_ROUNDS 8   /* full watch batches read per step before yielding */
#define MODULES_MAX   512 /* cached module commands (the cache starts over beyond) */

/* A module's command as last read. */
typedef struct {
    uint64_t index; /* last-changed index of module/<key>; 0: not found */
    uint64_t step;  /* the step that read it */
    char **argv;    /* NULL: reason says why the module cannot run */
    char reason[ORBIT_CAPSULE_REASON_MAX];
} module_t;

typedef struct {
    zsock_t *pipe;
    orbit_ledger_client_t *client;
    char node[ORBIT_NAME_MAX];
    char prefix[ORBIT_NAME_MAX + 8];
    int period_ms, timeout_ms;
    bool need_get;     /* read the node listing before watching */
    bool linearizable; /* ... linearizably (after a compaction) */
    uint64_t from;     /* next ledger index to watch from */
    uint64_t compacted;
    uint64_t step;
    orbit_leaf_placed_set_t placed;
    orbit_leaf_wants_t sent;
    bool sent_once;
    zhashx_t *modules; /* "mission/module" -> module_t */
    int64_t log_ms;
    uint64_t suppressed;
    orbit_leaf_watch_stats_t st;
} watch_t;

static void module_free(void **item)
{
    module_t *m = *item;
    if (m) {
        orbit_leaf_argv_free(&m->argv);
        free(m);
    }
    *item = NULL;
}

static void log_stats(const watch_t *w)
{
    const orbit_leaf_watch_stats_t *s = &w->st;
    orbit_debug("capsule watch of %s: %" PRIu64 " listings, %" PRIu64 " watches, %" PRIu64
                " items (%" PRIu64 " ours, %" PRIu64 " bad), %" PRIu64 " parse errors, %" PRIu64
                " ledger errors, %" PRIu64 " compactions, %" PRIu64 " module reads, %" PRIu64
                " unrunnable, %" PRIu64 " sets sent",
                w->node, s->node_gets, s->watches, s->items, s->items_applied, s->bad_items,
                s->parse_errors, s->ledger_errors, s->compactions, s->module_gets, s->unrunnable,
                s->wants_sent);
}

/* A warning, at most one line per ORBIT_LEAF_WATCH_LOG_MS. */
static void warn(watch_t *w, const char *what, const char *err)
{
    int64_t now = zclock_mono();
    if (w->log_ms && now - w->log_ms < ORBIT_LEAF_WATCH_LOG_MS) {
        w->suppressed++;
        return;
    }
    orbit_warn("capsule watch: %s: %s (%" PRIu64 " similar lines suppressed; desired capsules "
               "kept as they are)",
               what, err, w->suppressed);
    log_stats(w);
    w->log_ms = now;
    w->suppressed = 0;
}

/* The ledger's index as one replica sees it. */
static int ledger_index(watch_t *w, uint64_t *out, char *err, size_t errlen)
{
    Orbit__Ledger__StatusRequest sr = ORBIT__LEDGER__STATUS_REQUEST__INIT;
    Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
    req.op_case = ORBIT__LEDGER__REQUEST__OP_STATUS;
    req.status = &sr;
    Orbit__Ledger__Reply *r = NULL;
    int rc = orbit_ledger_client_call(w->client, &req, w->timeout_ms, &r);
    if (rc != ORBIT_OK) {
        orbit_errf(err, errlen, "status: %s", orbit_strerror(rc));
        return rc;
    }
    if (r->error || !r->status || !r->status->has_ledger_index) {
        orbit_errf(err, errlen, "status: %s", r->error ? r->error : "no ledger index");
        rc = ORBIT_EIO;
    } else {
        *out = r->status->ledger_index;
    }
    orbit__ledger__reply__free_unpacked(r, NULL);
    return rc;
}

/* Step 1: the node listing. A node without a record has no placements: then the watch
 * starts above the ledger index read before a linearizable get that confirms it. */
static bool get_node(watch_t *w)
{
    char key[ORBIT_NAME_MAX + 8], err[256];
    char *value = NULL;
    uint64_t index = 0, above = 0;
    snprintf(key, sizeof key, "node/%s", w->node);
    int rc = orbit_ledger_client_get(w->client, key, !w->linearizable, w->timeout_ms, &value,
                                     &index, err, sizeof err);
    if (rc == ORBIT_ENOTFOUND) {
        rc = ledger_index(w, &above, err, sizeof err);
        if (rc == ORBIT_OK)
            rc = orbit_ledger_client_get(w->client, key, false, w->timeout_ms, &value, &index, err,
                                         sizeof err);
    }
    if (rc != ORBIT_OK && rc != ORBIT_ENOTFOUND) {
        w->st.ledger_errors++;
        warn(w, "cannot read the node's placements", err);
        return false;
    }
    w->st.node_gets++;
    if (rc == ORBIT_OK) {
        size_t beyond = 0;
        rc = orbit_leaf_placed_parse_node(&w->placed, value, w->node, &beyond, err, sizeof err);
        free(value);
        if (rc != ORBIT_OK) {
            w->st.parse_errors++;
            warn(w, "cannot use the node's placements", err);
            return false;
        }
        w->st.beyond = beyond;
        if (beyond) /* once per listing read: at start and after a compaction */
            orbit_warn("capsule watch: the ledger places %zu capsules on %s beyond the %d a node "
                       "runs; those are not run",
                       beyond, w->node, ORBIT_CAPSULES_MAX);
        above = index;
    } else {
        orbit_leaf_placed_close(&w->placed);
    }
    w->from = (above > w->compacted ? above : w->compacted) + 1;
    w->need_get = w->linearizable = false;
    return true;
}

/* Step 2: watch items from w->from. False on a ledger error; a compacted history asks for a
 * new listing (need_get) and is not an error. */
static bool follow(watch_t *w)
{
    char err[256];
    for (int round = 0; round < FOLLOW_ROUNDS; round++) {
        Orbit__Ledger__WatchRequest wr = ORBIT__LEDGER__WATCH_REQUEST__INIT;
        wr.from_index = w->from;
        wr.prefix = w->prefix;
        wr.has_max = wr.has_stale = true;
        wr.max = ORBIT_LEAF_WATCH_BATCH;
        wr.stale = true;
        Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
        req.op_case = ORBIT__LEDGER__REQUEST__OP_WATCH;
        req.watch = &wr;
        Orbit__Ledger__Reply *r = NULL;
        int rc = orbit_ledger_client_call(w->client, &req, w->timeout_ms, &r);
        if (rc != ORBIT_OK || r->error) {
            w->st.ledger_errors++;
            warn(w, "cannot watch the node's placements",
                 rc != ORBIT_OK ? orbit_strerror(rc) : r->error);
            if (r)
                orbit__ledger__reply__free_unpacked(r, NULL);
            return false;
        }
        w->st.watches++;
        if (r->has_compacted_index) {
            w->st.compactions++;
            orbit_info("capsule watch: ledger history up to %" PRIu64
                       " is compacted; reading the node's placements again",
                       r->compacted_index);
            w->compacted = r->compacted_index;
            w->need_get = w->linearizable = true;
            orbit__ledger__reply__free_unpacked(r, NULL);
            return true;
        }
        for (size_t i = 0; i < r->n_items; i++) {
            const Orbit__Ledger__Committed *it = r->items[i];
            if (!it || it->index < w->from)
                continue; /* never apply an item twice */
            w->st.items++;
            rc = orbit_leaf_placed_apply(&w->placed, w->node, it, err, sizeof err);
            if (rc < 0) {
                w->st.bad_items++;
                warn(w, "watch item refused", err);
            } else if (rc == ORBIT_LEAF_ITEM_CHANGED) {
                w->st.items_applied++;
            }
        }
        bool full = r->n_items >= ORBIT_LEAF_WATCH_BATCH;
        if (r->has_next_index && r->next_index > w->from)
            w->from = r->next_index;
        orbit__ledger__reply__free_unpacked(r, NULL);
        if (!full)
            break;
    }
    return true;
}

/* Step 3: the command of module key ("mission/module"), read at most once per step. NULL when
 * the ledger could not answer. */
static module_t *module_get(watch_t *w, const char *key)
{
    module_t *m = zhashx_lookup(w->modules, key);
    if (m && m->step == w->step)
        return m;
    char mkey[2 * ORBIT_NAME_LEN_MAX + 16], err[256];
    char *value = NULL;
    uint64_t index = 0;
    snprintf(mkey, sizeof mkey, "module/%s", key);
    int rc = orbit_ledger_client_get(w->client, mkey, true, w->timeout_ms, &value, &index, err,
                                     sizeof err);
    if (rc == ORBIT_ENOTFOUND) /* a lagging replica may not have it yet: ask the leader */
        rc = orbit_ledger_client_get(w->client, mkey, false, w->timeout_ms, &value, &index, err,
                                     sizeof err);
    if (rc != ORBIT_OK && rc != ORBIT_ENOTFOUND) {
        w->st.ledger_errors++;
        warn(w, "cannot read a module's command", err);
        return NULL;
    }
    w->st.module_gets++;
    if (!m) {
        if (zhashx_size(w->modules) >= MODULES_MAX)
            zhashx_purge(w->modules);
        m = calloc(1, sizeof *m);
        if (!m || zhashx_insert(w->modules, key, m) != 0) {
            free(m);
            free(value);
            warn(w, "cannot cache a module", "out of memory");
            return NULL;
        }
    }
    m->step = w->step;
    if (rc == ORBIT_ENOTFOUND) {
        orbit_leaf_argv_free(&m->argv);
        m->index = 0;
        orbit_errf(m->reason, sizeof m->reason, "module %s is not in the ledger", key);
        return m;
    }
    if (m->index == index && (m->argv || m->reason[0])) {
        free(value); /* unchanged since the last read: keep the parsed command */
        return m;
    }
    char **argv = NULL;
    rc = orbit_leaf_module_argv(value, &argv, err, sizeof err);
    free(value);
    if (rc == ORBIT_ENOMEM) {
        warn(w, "cannot parse a module", err);
        return NULL;
    }
    orbit_leaf_argv_free(&m->argv);
    m->argv = argv;
    m->index = index;
    if (rc == ORBIT_OK)
        m->reason[0] = '\0';
    else
        orbit_errf(m->reason, sizeof m->reason, "module %s: %s", key, err);
    return m;
}

/* The want of a capsule newly desired into x; false when the ledger could not answer. */
static bool resolve_one(watch_t *w, const orbit_leaf_placed_t *p, orbit_leaf_want_t *x)
{
    char key[2 * ORBIT_NAME_LEN_MAX + 2], err[ORBIT_CAPSULE_REASON_MAX];
    memset(x, 0, sizeof *x);
    memcpy(x->id, p->id, sizeof x->id);
    x->index = p->index;
    x->res.cpu_m = p->cpu_m > UINT32_MAX ? UINT32_MAX : (uint32_t)p->cpu_m;
    x->res.mem = (uint64_t)p->mem;
    if (orbit_leaf_capsule_module(p->id, key, sizeof key, err, sizeof err) != ORBIT_OK) {
        orbit_errf(x->reason, sizeof x->reason, "%s", err);
        return true;
    }
    const module_t *m = module_get(w, key);
    if (!m)
        return false;
    if (m->argv)
        x->argv = m->argv; /* borrowed: orbit_leaf_wants_put copies it */
    else
        orbit_errf(x->reason, sizeof x->reason, "%s", m->reason);
    return true;
}

/* Step 4: the desired set from the placements; sent when it changed. False when a module could
 * not be read (those capsules wait for the next step). */
static bool resolve(watch_t *w)
{
    orbit_leaf_wants_t next;
    orbit_leaf_wants_init(&next);
    bool ok = true;
    size_t fresh = 0;
    for (size_t i = 0; i < w->placed.n; i++) {
        const orbit_leaf_placed_t *p = &w->placed.v[i];
        const orbit_leaf_want_t *old = orbit_leaf_wants_find(&w->sent, p->id);
        orbit_leaf_want_t x;
        if (old && old->index == p->index) {
            x = *old;
        } else if (!ok || !resolve_one(w, p, &x)) {
            /* After one ledger error the others wait for the next step
             * too: each read could wait out its timeout while $TERM waits. */
            ok = false;
            continue;
        } else {
            fresh++;
            if (x.reason[0]) {
                w->st.unrunnable++;
                orbit_warn("capsule %s cannot run: %s", x.id, x.reason);
            }
        }
        if (orbit_leaf_wants_put(&next, &x) != ORBIT_OK) {
            ok = false;
            warn(w, "cannot build the desired set", "out of memory or a bad entry");
        }
    }
    if (w->sent_once && orbit_leaf_wants_same(&next, &w->sent)) {
        orbit_leaf_wants_close(&next);
        return ok;
    }
    zmsg_t *msg = orbit_leaf_wants_encode(&next);
    if (!msg || zmsg_send(&msg, w->pipe) != 0) {
        zmsg_destroy(&msg);
        orbit_leaf_wants_close(&next);
        warn(w, "cannot hand the desired set to the agent", "out of memory");
        return false;
    }
    orbit_info("capsules desired on %s: %zu (%zu new, %zu before)", w->node, next.n, fresh,
               w->sent.n);
    orbit_leaf_wants_close(&w->sent);
    w->sent = next;
    w->sent_once = true;
    w->st.wants_sent++;
    log_stats(w);
    return ok;
}

static bool step(watch_t *w)
{
    w->step++;
    if (w->need_get && !get_node(w))
        return false;
    if (!follow(w))
        return false;
    if (w->need_get)
        return true; /* compacted: a new listing next period */
    return resolve(w);
}

static void watch_actor(zsock_t *pipe, void *args)
{
    const orbit_leaf_watch_cfg_t *cfg = args;
    watch_t w = {0};
    char err[256] = "";
    w.pipe = pipe;
    w.need_get = true;
    snprintf(w.node, sizeof w.node, "%s", cfg->node);
    snprintf(w.prefix, sizeof w.prefix, "node/%s", cfg->node);
    w.period_ms =
        (int)(cfg->interval_ms > ORBIT_LEAF_WATCH_PERIOD_MIN_MS ? cfg->interval_ms
                                                                : ORBIT_LEAF_WATCH_PERIOD_MIN_MS);
    w.timeout_ms = orbit_leaf_home_fetch_timeout_ms(cfg->interval_ms);
    orbit_leaf_placed_init(&w.placed);
    orbit_leaf_wants_init(&w.sent);
    w.modules = zhashx_new();
    if (w.modules)
        zhashx_set_destructor(w.modules, module_free);
    w.client = w.modules ? orbit_ledger_client_new(cfg->roots, NULL, err, sizeof err) : NULL;
    if (!w.modules)
        snprintf(err, sizeof err, "out of memory");
    /* cfg belongs to the caller, which waits for this signal: nothing of it is used after. */
    zsock_signal(pipe, 0);
    zstr_send(pipe, w.client ? "OK" : err);
    zpoller_t *poller = zpoller_new(pipe, NULL);
    if (poller)
        zpoller_set_nonstop(poller, true);
    int64_t due = zclock_mono(), backoff = 0;
    while (poller) {
        /* Without a client only "$TERM" is awaited. */
        int64_t wait = due - zclock_mono();
        void *which = zpoller_wait(poller, !w.client ? -1 : wait > 0 ? (int)wait : 0);
        if (which == pipe) {
            char *cmd = zstr_recv(pipe);
            bool term = !cmd || streq(cmd, "$TERM");
            zstr_free(&cmd);
            if (term)
                break;
            continue;
        }
        if (!w.client || zclock_mono() < due)
            continue;
        if (step(&w)) {
            backoff = 0;
        } else {
            backoff = backoff ? backoff * 2 : w.period_ms;
            if (backoff > ORBIT_LEAF_WATCH_BACKOFF_MAX_MS)
                backoff = ORBIT_LEAF_WATCH_BACKOFF_MAX_MS;
        }
        due = zclock_mono() + (backoff ? backoff : w.period_ms);
    }
    zpoller_destroy(&poller);
    orbit_ledger_client_destroy(&w.client);
    zhashx_destroy(&w.modules);
    orbit_leaf_wants_close(&w.sent);
    orbit_leaf_placed_close(&w.placed);
}

zactor_t *orbit_leaf_watch_new(const orbit_leaf_watch_cfg_t *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->roots || !cfg->node || !orbit_name_valid(cfg->node)) {
        orbit_errf(err, errlen, "capsule watch needs root endpoints and a valid node name");
        return NULL;
    }
    zactor_t *a = zactor_new(watch_actor, (void *)cfg);
    if (!a) {
        orbit_errf(err, errlen, "cannot start the capsule watch thread");
        return NULL;
    }
    char *status = zstr_recv(a);
    if (!status || strcmp(status, "OK")) {
        orbit_errf(err, errlen, "%s", status ? status : "capsule watch did not start");
        zstr_free(&status);
        zactor_destroy(&a);
        return NULL;
    }
    zstr_free(&status);
    return a;
}
