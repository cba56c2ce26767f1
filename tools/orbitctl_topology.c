/* orbitctl_topology: `orbitctl topology show|plan|add-shard|remove-shard|move-rack`,
 * the tree as the ledger holds it joined with the root view's live counts,
 * and changes proposed fenced on the topology epoch that was read. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_cli.h"
#include "orbit_err.h"
#include "orbit_ledger_client.h"
#include "orbit_view_client.h"
#include "orbitctl.h"
#include "topology.h"
#include "topology_fetch.h"
#include "topology_plan.h"

/* Exit statuses (see orbitctl.h). */
#define ST_OK      0
#define ST_FAIL    1
#define ST_USAGE   2
#define ST_PENDING 3

#define POLL_MS 500

typedef struct {
    zhashx_t *v;
    const char *roots;
    int timeout; /* ms, per ledger call and per view query */
    orbit_ledger_client_t *lc;
    orbit_view_client_t *vc;
    bool view_failed; /* a view query failed: node counts are missing */
    bool has_fence;   /* --epoch given: fence the first change on it */
    uint64_t fence;
} topo_ctx_t;

/* ------------------------------------------------------------ root view */

/* Ask the root view; NULL when no replica answered or it answered an error
 * (remembered in view_failed). */
static Orbit__ViewReply *view_query(topo_ctx_t *c, Orbit__ViewQuery *q)
{
    Orbit__ViewReply *r = NULL;
    if (orbit_view_client_query(c->vc, q, c->timeout, &r) != ORBIT_OK) {
        c->view_failed = true;
        return NULL;
    }
    if (r->error) {
        c->view_failed = true;
        orbit__view_reply__free_unpacked(r, NULL);
        return NULL;
    }
    return r;
}

/* Nodes labelled rack=RACK (limit: 0 = every row, else at most that many). */
static Orbit__ViewReply *rack_rows(topo_ctx_t *c, const char *rack, uint32_t limit)
{
    Orbit__ViewQuery q = ORBIT__VIEW_QUERY__INIT;
    Orbit__Label l = ORBIT__LABEL__INIT, *lp = &l;
    q.kind = ORBIT__QUERY_KIND__Q_NODES;
    l.key = "rack";
    l.value = (char *)rack;
    q.labels = &lp;
    q.n_labels = 1;
    if (limit) {
        q.has_limit = true;
        q.limit = limit;
    }
    return view_query(c, &q);
}

/* orbit_topology_nodes_fn: the root view's node count of a rack. */
static uint64_t rack_nodes(void *ctx, const char *rack)
{
    Orbit__ViewReply *r = rack_rows(ctx, rack, 1);
    uint64_t n = r ? r->matched : 0;
    if (r)
        orbit__view_reply__free_unpacked(r, NULL);
    return n;
}

/* ------------------------------------------------------------ ledger */

static orbit_topology_t *fetch(topo_ctx_t *c, char *err, size_t errlen)
{
    char why[384];
    orbit_topology_t *t = orbit_topology_fetch(c->lc, false, c->timeout, why, sizeof why);
    if (!t)
        snprintf(err, errlen, "cannot read the topology: %s", why);
    return t;
}

/* The epoch to fence the next change on: --epoch for the first change when
 * given, else the epoch of the topology just read. */
static uint64_t fence_epoch(topo_ctx_t *c, const orbit_topology_t *t)
{
    if (c->has_fence) {
        c->has_fence = false;
        return c->fence;
    }
    return orbit_topology_epoch(t);
}

/* Propose ch fenced on unchanged_since{"topology", epoch}. On COMMITTED,
 * *index is its ledger index (the new topology epoch) and 0 is returned;
 * otherwise ST_FAIL with one line in err. */
static int propose(topo_ctx_t *c, const orbit_topology_change_t *ch, uint64_t epoch,
                   uint64_t *index, char *err, size_t errlen)
{
    Orbit__Ledger__ShardJoin j = ORBIT__LEDGER__SHARD_JOIN__INIT;
    Orbit__Ledger__ShardLeave l = ORBIT__LEDGER__SHARD_LEAVE__INIT;
    Orbit__Ledger__RackMove m = ORBIT__LEDGER__RACK_MOVE__INIT;
    Orbit__Ledger__TopologyChange tc = ORBIT__LEDGER__TOPOLOGY_CHANGE__INIT;
    Orbit__Ledger__Commitment cm = ORBIT__LEDGER__COMMITMENT__INIT;
    Orbit__Ledger__UnchangedSince us = ORBIT__LEDGER__UNCHANGED_SINCE__INIT, *usp = &us;
    Orbit__Ledger__Precondition pre = ORBIT__LEDGER__PRECONDITION__INIT;
    switch (ch->op) {
    case ORBIT_TOPOLOGY_JOIN:
        j.shard = (char *)ch->shard;
        j.tier = ch->tier;
        j.parent = ch->parent && *ch->parent ? (char *)ch->parent : NULL;
        j.endpoint = ch->endpoint && *ch->endpoint ? (char *)ch->endpoint : NULL;
        tc.change_case = ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_JOIN;
        tc.join = &j;
        break;
    case ORBIT_TOPOLOGY_LEAVE:
        l.shard = (char *)ch->shard;
        tc.change_case = ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_LEAVE;
        tc.leave = &l;
        break;
    default:
        m.rack = (char *)ch->rack;
        m.shard = (char *)ch->shard;
        tc.change_case = ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_MOVE;
        tc.move = &m;
        break;
    }
    cm.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_TOPOLOGY;
    cm.topology = &tc;
    us.key = "topology";
    us.index = epoch;
    pre.unchanged_since = &usp;
    pre.n_unchanged_since = 1;
    Orbit__Ledger__Outcome *o = NULL;
    char why[384];
    if (orbit_ledger_client_propose(c->lc, &cm, &pre, c->timeout, &o, why, sizeof why) !=
        ORBIT_OK) {
        snprintf(err, errlen, "proposal not acknowledged: %s", why);
        return ST_FAIL;
    }
    int status = ST_FAIL;
    const char *which = o->which ? o->which : "?", *obs = o->observed ? o->observed : "";
    if (o->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED) {
        *index = o->index;
        status = ST_OK;
    } else if (o->kind == ORBIT__LEDGER__OUTCOME_KIND__CONFLICT &&
               !strcmp(which, "unchanged_since")) {
        /* observed: "topology changed at M" */
        const char *at = strrchr(obs, ' ');
        snprintf(err, errlen, "topology changed since epoch %" PRIu64 " (now %s); re-run", epoch,
                 at ? at + 1 : "?");
    } else if (o->kind == ORBIT__LEDGER__OUTCOME_KIND__CONFLICT) {
        snprintf(err, errlen, "refused by the ledger: %s: %s", which, obs);
    } else {
        snprintf(err, errlen, "refused by the ledger: %s", o->reason ? o->reason : "invalid");
    }
    orbit__ledger__outcome__free_unpacked(o, NULL);
    return status;
}

/* The model's own judgement of ch against t before anything is proposed. */
static int check_locally(const orbit_topology_t *t, const orbit_topology_change_t *ch, char *err,
                         size_t errlen)
{
    orbit_topology_t *m = orbit_topology_dup(t);
    char why[256];
    int rc = m ? orbit_topology_apply(m, ch, why, sizeof why) : ORBIT_ENOMEM;
    orbit_topology_destroy(&m);
    if (rc == ORBIT_ENOMEM)
        snprintf(err, errlen, "out of memory");
    else if (rc)
        snprintf(err, errlen, "refused: %s", why);
    return rc ? ST_FAIL : ST_OK;
}

/* ------------------------------------------------------------ json bits */

static json_t *moves_json(const orbit_topology_move_t *mv, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s,s:s?,s:s,s:I}", "rack", mv[i].rack, "from",
                                           mv[i].from[0] ? mv[i].from : NULL, "to", mv[i].to,
                                           "nodes", (json_int_t)mv[i].nodes));
    return a;
}

static void print_moves(const char *indent, const orbit_topology_move_t *mv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%srack %-16s %s -> %s (%" PRIu64 " nodes)\n", indent, mv[i].rack,
               mv[i].from[0] ? mv[i].from : "(none)", mv[i].to, mv[i].nodes);
}

/* ------------------------------------------------------------ show */

static const Orbit__ShardInfo *find_info(const Orbit__ViewReply *r, const char *id)
{
    for (size_t i = 0; r && i < r->n_shards; i++)
        if (!strcmp(r->shards[i]->id, id))
            return r->shards[i];
    return NULL;
}

/* Depth-first from the root: one JSON object per shard, or one line each. */
static void show_subtree(const orbit_topology_t *t, const char *parent, int depth,
                         const Orbit__ViewReply *view, json_t *arr)
{
    zlistx_t *kids = NULL;
    if (orbit_topology_children(t, parent, &kids) != ORBIT_OK)
        return;
    for (const char *id = zlistx_first(kids); id; id = zlistx_next(kids)) {
        orbit_topology_shard_t s;
        zlistx_t *racks = NULL;
        if (orbit_topology_get_shard(t, id, &s) != ORBIT_OK ||
            orbit_topology_racks_of(t, id, &racks) != ORBIT_OK)
            continue;
        const Orbit__ShardInfo *in = find_info(view, id);
        bool fresh = in && in->has_last_report_ms_ago;
        if (arr) {
            json_t *jr = json_array();
            for (const char *r = zlistx_first(racks); r; r = zlistx_next(racks))
                json_array_append_new(jr, json_string(r));
            json_array_append_new(
                arr, json_pack("{s:s,s:i,s:s?,s:s?,s:o,s:I,s:b,s:o}", "id", s.id, "tier",
                               (int)s.tier, "parent", s.parent[0] ? s.parent : NULL, "endpoint",
                               s.endpoint[0] ? s.endpoint : NULL, "racks", jr, "nodes",
                               (json_int_t)(in ? in->nodes : 0), "reachable", in && in->reachable,
                               "last_report_ms_ago",
                               fresh ? json_integer(in->last_report_ms_ago) : json_null()));
        } else {
            char fr[64];
            if (!in)
                snprintf(fr, sizeof fr, "not in the root view");
            else if (fresh)
                snprintf(fr, sizeof fr, "%s, report %" PRId64 " ms ago",
                         in->reachable ? "reachable" : "UNREACHABLE", in->last_report_ms_ago);
            else
                snprintf(fr, sizeof fr, "%s", in->reachable ? "reachable" : "UNREACHABLE");
            printf("%*s%s %s  tier %u  %s  nodes %" PRIu64 "  (%s)\n", 2 * depth, "",
                   s.tier == 1 ? "+-" : "+=", s.id, s.tier, s.endpoint[0] ? s.endpoint : "-",
                   in ? in->nodes : 0, fr);
            if (zlistx_size(racks)) {
                printf("%*s   racks:", 2 * depth, "");
                for (const char *r = zlistx_first(racks); r; r = zlistx_next(racks))
                    printf(" %s", r);
                printf("\n");
            }
        }
        zlistx_destroy(&racks);
        show_subtree(t, id, depth + 1, view, arr);
    }
    zlistx_destroy(&kids);
}

static int cmd_show(topo_ctx_t *c, char *err, size_t errlen)
{
    orbit_topology_t *t = fetch(c, err, errlen);
    if (!t)
        return ST_FAIL;
    Orbit__ViewQuery q = ORBIT__VIEW_QUERY__INIT;
    q.kind = ORBIT__QUERY_KIND__Q_SHARDS;
    Orbit__ViewReply *view = view_query(c, &q);
    if (json_out) {
        json_t *arr = json_array();
        show_subtree(t, NULL, 0, view, arr);
        dump(json_pack("{s:I,s:b,s:o}", "epoch", (json_int_t)orbit_topology_epoch(t), "view",
                       view != NULL, "shards", arr));
    } else {
        printf("root  (topology epoch %" PRIu64 ", %zu shards, %zu racks)\n",
               orbit_topology_epoch(t), orbit_topology_shard_count(t),
               orbit_topology_rack_count(t));
        show_subtree(t, NULL, 1, view, NULL);
        if (!view)
            printf("(the root view did not answer: node counts and freshness unknown)\n");
    }
    if (view)
        orbit__view_reply__free_unpacked(view, NULL);
    orbit_topology_destroy(&t);
    return ST_OK;
}

/* ------------------------------------------------------------ arguments */

/* Fill ch from `add-shard ID`, `remove-shard ID` or `move-rack RACK SHARD`
 * (args[0] is the verb) and the flags --tier, --parent, --endpoint. */
static int parse_change(topo_ctx_t *c, char **args, int nargs, orbit_topology_change_t *ch,
                        char *err, size_t errlen)
{
    memset(ch, 0, sizeof *ch);
    const char *verb = args[0];
    int want;
    if (!strcmp(verb, "add-shard")) {
        want = 2;
        ch->op = ORBIT_TOPOLOGY_JOIN;
        if (!orbit_cli_str(c->v, "tier")) {
            snprintf(err, errlen, "add-shard needs --tier N");
            return ST_USAGE;
        }
        if (orbit_cli_u32(c->v, "tier", 1, ORBIT_TOPOLOGY_TIER_MAX, 1, &ch->tier, err, errlen))
            return ST_USAGE;
        ch->parent = orbit_cli_str(c->v, "parent");
        ch->endpoint = orbit_cli_str(c->v, "endpoint");
    } else if (!strcmp(verb, "remove-shard")) {
        want = 2;
        ch->op = ORBIT_TOPOLOGY_LEAVE;
    } else if (!strcmp(verb, "move-rack")) {
        want = 3;
        ch->op = ORBIT_TOPOLOGY_MOVE;
    } else {
        snprintf(err, errlen, "unknown topology change '%s' (add-shard, remove-shard, move-rack)",
                 verb);
        return ST_USAGE;
    }
    if (nargs != want) {
        snprintf(err, errlen, nargs < want ? "%s needs %s" : "%s: unexpected argument '%s'", verb,
                 nargs < want ? (want == 3 ? "RACK SHARD" : "ID") : args[want]);
        return ST_USAGE;
    }
    if (ch->op == ORBIT_TOPOLOGY_MOVE) {
        ch->rack = args[1];
        ch->shard = args[2];
    } else {
        ch->shard = args[1];
    }
    return ST_OK;
}

/* ------------------------------------------------------------ plan */

static int cmd_plan(topo_ctx_t *c, const orbit_topology_change_t *chp, char **args, int nargs,
                    char *err, size_t errlen)
{
    orbit_topology_change_t ch = *chp;
    int st = ST_OK;
    orbit_topology_t *t = fetch(c, err, errlen);
    if (!t)
        return ST_FAIL;
    orbit_topology_plan_t p;
    orbit_topology_plan_init(&p);
    if (orbit_topology_plan(t, &ch, 1, rack_nodes, c, &p) != ORBIT_OK) {
        snprintf(err, errlen, "cannot plan: out of memory");
        orbit_topology_destroy(&t);
        return ST_FAIL;
    }
    uint64_t epoch = orbit_topology_epoch(t);
    if (json_out) {
        dump(json_pack("{s:I,s:s,s:b,s:s?,s:o,s:I,s:o,s:I,s:b}", "epoch", (json_int_t)epoch,
                       "change", args[0], "refused", p.refused, "reason",
                       p.refused ? p.reason : NULL, "moves", moves_json(p.moves, p.nmoves),
                       "nodes_moved", (json_int_t)p.nodes_moved, "suggested",
                       moves_json(p.suggested, p.nsuggested), "nodes_suggested",
                       (json_int_t)p.nodes_suggested, "node_counts", !c->view_failed));
    } else if (!p.refused) {
        printf("plan at topology epoch %" PRIu64 ": %s", epoch, args[0]);
        for (int i = 1; i < nargs; i++)
            printf(" %s", args[i]);
        printf("\n");
        if (ch.op == ORBIT_TOPOLOGY_LEAVE)
            printf("  drain first, then leave\n");
        print_moves("  move ", p.moves, p.nmoves);
        printf("  %zu rack(s) move, %" PRIu64 " node(s) re-home\n", p.nmoves, p.nodes_moved);
        if (ch.op == ORBIT_TOPOLOGY_JOIN) {
            printf(
                "  suggested by rendezvous for %s (add-shard --take-racks): %zu rack(s), %" PRIu64
                " node(s)\n",
                ch.shard, p.nsuggested, p.nodes_suggested);
            print_moves("  take ", p.suggested, p.nsuggested);
        }
        if (c->view_failed)
            printf("  (the root view did not answer: node counts unknown)\n");
        printf("  apply with --epoch %" PRIu64 " to refuse it if the tree changes meanwhile\n",
               epoch);
    }
    if (p.refused) {
        snprintf(err, errlen, "refused: %s", p.reason);
        st = ST_FAIL;
    }
    orbit_topology_plan_close(&p);
    orbit_topology_destroy(&t);
    return st;
}

/* ------------------------------------------------------------ waiting */

/* Progress of a wait: done when every node counted is re-homed. */
typedef struct {
    uint64_t rehomed, total;
    bool known; /* the view answered at least once */
} progress_t;

static void say_progress(const progress_t *pg)
{
    FILE *f = json_out ? stderr : stdout;
    fprintf(f, "re-homed %" PRIu64 "/%" PRIu64 "\n", pg->rehomed, pg->total);
    fflush(f);
}

/* Nodes labelled rack=RACK: how many the shard `to` owns. */
static bool poll_rack(topo_ctx_t *c, const char *rack, const char *to, progress_t *pg)
{
    Orbit__ViewReply *r = rack_rows(c, rack, 0);
    if (!r)
        return false;
    pg->total = r->n_rows;
    pg->rehomed = 0;
    for (size_t i = 0; i < r->n_rows; i++)
        pg->rehomed += !strcmp(r->rows[i]->shard, to);
    orbit__view_reply__free_unpacked(r, NULL);
    return true;
}

/* Every node row: how many the shard `from` still owns. total is the most
 * it has been seen to own during this wait. */
static bool poll_shard(topo_ctx_t *c, const char *from, progress_t *pg)
{
    Orbit__ViewQuery q = ORBIT__VIEW_QUERY__INIT;
    q.kind = ORBIT__QUERY_KIND__Q_NODES;
    Orbit__ViewReply *r = view_query(c, &q);
    if (!r)
        return false;
    uint64_t left = 0;
    for (size_t i = 0; i < r->n_rows; i++)
        left += !strcmp(r->rows[i]->shard, from);
    orbit__view_reply__free_unpacked(r, NULL);
    if (!pg->known || left > pg->total - pg->rehomed)
        pg->total = pg->rehomed + left;
    pg->rehomed = pg->total - left;
    return true;
}

/* Poll (a rack re-homing to `to`, or shard `from` draining) until done or
 * timeout_s; progress on each change. ST_OK or ST_FAIL with err. */
static int wait_rehomed(topo_ctx_t *c, const char *rack, const char *to, const char *from,
                        uint32_t timeout_s, progress_t *pg, char *err, size_t errlen)
{
    int64_t deadline = zclock_mono() + (int64_t)timeout_s * 1000;
    progress_t last = {UINT64_MAX, UINT64_MAX, false};
    memset(pg, 0, sizeof *pg);
    while (!zsys_interrupted) {
        bool ok = rack ? poll_rack(c, rack, to, pg) : poll_shard(c, from, pg);
        if (ok) {
            pg->known = true;
            if (pg->rehomed != last.rehomed || pg->total != last.total)
                say_progress(pg);
            last = *pg;
            if (pg->rehomed == pg->total)
                return ST_OK;
        }
        if (zclock_mono() >= deadline)
            break;
        zclock_sleep(POLL_MS);
    }
    if (!pg->known)
        snprintf(err, errlen, "timed out after %u s: the root view did not answer", timeout_s);
    else
        snprintf(err, errlen, "timed out after %u s: re-homed %" PRIu64 "/%" PRIu64, timeout_s,
                 pg->rehomed, pg->total);
    return ST_FAIL;
}

static int wait_flags(topo_ctx_t *c, bool *wait, uint32_t *timeout_s, char *err, size_t errlen)
{
    *wait = orbit_cli_flag(c->v, "wait");
    return orbit_cli_u32(c->v, "timeout-s", 1, 86400, 60, timeout_s, err, errlen) ? ST_USAGE
                                                                                  : ST_OK;
}

/* ------------------------------------------------------------ move-rack */

static int cmd_move_rack(topo_ctx_t *c, const orbit_topology_change_t *ch, char *err, size_t errlen)
{
    bool wait;
    uint32_t timeout_s;
    int st = wait_flags(c, &wait, &timeout_s, err, errlen);
    if (st)
        return st;
    orbit_topology_t *t = fetch(c, err, errlen);
    if (!t)
        return ST_FAIL;
    char from[ORBIT_TOPOLOGY_NAME_MAX + 1] = "";
    orbit_topology_rack_owner(t, ch->rack, from);
    uint64_t epoch = orbit_topology_epoch(t);
    bool already = !strcmp(from, ch->shard) && !c->has_fence;
    st = check_locally(t, ch, err, errlen);
    if (!st && !already)
        st = propose(c, ch, fence_epoch(c, t), &epoch, err, errlen);
    orbit_topology_destroy(&t);
    if (st)
        return st;
    if (!json_out) {
        if (already)
            printf("rack %s already owned by %s (topology epoch %" PRIu64 ")\n", ch->rack,
                   ch->shard, epoch);
        else
            printf("rack %s: %s -> %s committed, topology epoch %" PRIu64 "\n", ch->rack,
                   from[0] ? from : "(none)", ch->shard, epoch);
        fflush(stdout);
    }
    progress_t pg = {0, 0, false};
    if (wait)
        st = wait_rehomed(c, ch->rack, ch->shard, NULL, timeout_s, &pg, err, errlen);
    if (json_out) {
        json_t *o =
            json_pack("{s:s,s:s?,s:s,s:I,s:b}", "rack", ch->rack, "from", from[0] ? from : NULL,
                      "to", ch->shard, "epoch", (json_int_t)epoch, "changed", !already);
        if (wait)
            json_object_set_new(o, "rehomed",
                                json_pack("{s:I,s:I,s:b}", "nodes", (json_int_t)pg.rehomed, "total",
                                          (json_int_t)pg.total, "done", st == 0));
        dump(o);
    } else if (wait && !st) {
        printf("all %" PRIu64 " node(s) of rack %s are on %s\n", pg.total, ch->rack, ch->shard);
    }
    return st;
}

/* ------------------------------------------------------------ add-shard */

static int cmd_add_shard(topo_ctx_t *c, const orbit_topology_change_t *ch, char *err, size_t errlen)
{
    if (!ch->endpoint || !*ch->endpoint) {
        snprintf(err, errlen, "add-shard needs --endpoint ENDPOINT (where the shard listens)");
        return ST_USAGE;
    }
    bool take = orbit_cli_flag(c->v, "take-racks");
    orbit_topology_t *t = fetch(c, err, errlen);
    if (!t)
        return ST_FAIL;
    orbit_topology_plan_t p;
    orbit_topology_plan_init(&p);
    uint64_t epoch = 0;
    size_t moved = 0;
    uint64_t nodes = 0;
    int st = check_locally(t, ch, err, errlen);
    if (!st && take && orbit_topology_plan(t, ch, 1, rack_nodes, c, &p) != ORBIT_OK) {
        snprintf(err, errlen, "cannot plan: out of memory");
        st = ST_FAIL;
    }
    if (!st)
        st = propose(c, ch, fence_epoch(c, t), &epoch, err, errlen);
    if (!st && !json_out) {
        printf("shard %s joined (tier %u%s%s), topology epoch %" PRIu64 "\n", ch->shard, ch->tier,
               ch->parent && *ch->parent ? " under " : "", ch->parent ? ch->parent : "", epoch);
        fflush(stdout);
    }
    /* The suggested racks, each fenced on the epoch the previous change
     * left: anyone else's change in between stops the rest. */
    for (size_t i = 0; !st && take && i < p.nsuggested; i++) {
        orbit_topology_change_t mv = {ORBIT_TOPOLOGY_MOVE, p.suggested[i].to, 0, NULL, NULL,
                                      p.suggested[i].rack};
        char why[384];
        if (propose(c, &mv, epoch, &epoch, why, sizeof why)) {
            snprintf(err, errlen, "shard %s joined, but took %zu of %zu racks: %s", ch->shard,
                     moved, p.nsuggested, why);
            st = ST_FAIL;
            break;
        }
        moved++;
        nodes += p.suggested[i].nodes;
        if (!json_out)
            print_moves("  took ", &p.suggested[i], 1);
    }
    if (json_out && epoch)
        dump(json_pack("{s:s,s:b,s:I,s:o,s:I,s:I}", "shard", ch->shard, "joined", 1, "epoch",
                       (json_int_t)epoch, "moved", moves_json(p.suggested, moved), "racks_moved",
                       (json_int_t)moved, "nodes_moved", (json_int_t)nodes));
    else if (!st && take)
        printf("took %zu rack(s), %" PRIu64 " node(s) re-home\n", moved, nodes);
    orbit_topology_plan_close(&p);
    orbit_topology_destroy(&t);
    return st;
}

/* ------------------------------------------------------------ remove-shard */

/* Drain shard id (move each of its racks to its next candidate), then, when
 * the root view shows none of its nodes (waiting for that with --wait),
 * propose its leave. A second call after the drain finds no racks to move
 * and goes straight to the leave. */
static int cmd_remove_shard(topo_ctx_t *c, const orbit_topology_change_t *ch, char *err,
                            size_t errlen)
{
    bool wait;
    uint32_t timeout_s;
    int st = wait_flags(c, &wait, &timeout_s, err, errlen);
    if (st)
        return st;
    orbit_topology_t *t = fetch(c, err, errlen);
    if (!t)
        return ST_FAIL;
    orbit_topology_plan_t p;
    orbit_topology_plan_init(&p);
    uint64_t epoch = orbit_topology_epoch(t);
    size_t moved = 0;
    bool removed = false;
    progress_t pg = {0, 0, false};
    if (orbit_topology_plan(t, ch, 1, rack_nodes, c, &p) != ORBIT_OK) {
        snprintf(err, errlen, "cannot plan: out of memory");
        st = ST_FAIL;
    } else if (p.refused) {
        snprintf(err, errlen, "refused: %s", p.reason);
        st = ST_FAIL;
    }
    for (size_t i = 0; !st && i < p.nmoves; i++) {
        orbit_topology_change_t mv = {ORBIT_TOPOLOGY_MOVE, p.moves[i].to, 0, NULL, NULL,
                                      p.moves[i].rack};
        uint64_t at = i ? epoch : fence_epoch(c, t);
        char why[384];
        if (propose(c, &mv, at, &epoch, why, sizeof why)) {
            snprintf(err, errlen, "drained %zu of %zu racks of %s: %s", moved, p.nmoves, ch->shard,
                     why);
            st = ST_FAIL;
            break;
        }
        moved++;
        if (!json_out) {
            print_moves("drain ", &p.moves[i], 1);
            fflush(stdout);
        }
    }
    orbit_topology_destroy(&t);
    /* Its nodes leave it as their leaves re-home. */
    if (!st && wait) {
        st = wait_rehomed(c, NULL, NULL, ch->shard, timeout_s, &pg, err, errlen);
    } else if (!st) {
        if (!poll_shard(c, ch->shard, &pg)) {
            snprintf(err, errlen, "the root view did not answer: cannot tell whether %s is drained",
                     ch->shard);
            st = ST_FAIL;
        }
        pg.known = true;
    }
    /* The leave, judged on a fresh read: nothing may have come back to it. */
    if (!st && pg.rehomed == pg.total) {
        t = fetch(c, err, errlen);
        st = t ? check_locally(t, ch, err, errlen) : ST_FAIL;
        if (!st)
            st = propose(c, ch, moved ? orbit_topology_epoch(t) : fence_epoch(c, t), &epoch, err,
                         errlen);
        removed = !st;
        orbit_topology_destroy(&t);
    } else if (!st) {
        snprintf(err, errlen,
                 "%s still owns %" PRIu64 " node(s) in the root view; it leaves once they have "
                 "re-homed: run `orbitctl topology remove-shard %s` again then, or add --wait",
                 ch->shard, pg.total - pg.rehomed, ch->shard);
        st = ST_PENDING;
    }
    if (json_out && (moved || removed || st == ST_PENDING))
        dump(json_pack("{s:s,s:b,s:I,s:o,s:I,s:I,s:I}", "shard", ch->shard, "removed", removed,
                       "epoch", (json_int_t)epoch, "moved", moves_json(p.moves, moved),
                       "racks_moved", (json_int_t)moved, "nodes_left",
                       (json_int_t)(pg.total - pg.rehomed), "nodes_total", (json_int_t)pg.total));
    else if (removed)
        printf("shard %s left, topology epoch %" PRIu64 "\n", ch->shard, epoch);
    orbit_topology_plan_close(&p);
    return st;
}

/* ------------------------------------------------------------ entry */

int orbitctl_topology(zhashx_t *v, char **pos, int npos, char *err, size_t errlen)
{
    if (npos < 2) {
        snprintf(err, errlen, "topology needs show, plan, add-shard, remove-shard or move-rack");
        return ST_USAGE;
    }
    topo_ctx_t c = {0};
    c.v = v;
    uint32_t timeout;
    if (orbit_cli_u32(v, "timeout-ms", 1, 600000, 5000, &timeout, err, errlen))
        return ST_USAGE;
    c.timeout = (int)timeout;
    const char *e = orbit_cli_str(v, "epoch");
    if (e) {
        char *end;
        c.fence = strtoull(e, &end, 10);
        if (!*e || *end || e[0] == '-') {
            snprintf(err, errlen, "--epoch must be a topology epoch (a ledger index)");
            return ST_USAGE;
        }
        c.has_fence = true;
    }
    const char *what = pos[1];
    orbit_topology_change_t ch;
    int st = ST_OK;
    if (!strcmp(what, "show")) {
        if (npos > 2) {
            snprintf(err, errlen, "topology show: unexpected argument '%s'", pos[2]);
            return ST_USAGE;
        }
    } else if (!strcmp(what, "plan")) {
        if (npos < 3) {
            snprintf(err, errlen,
                     "topology plan needs add-shard ID, remove-shard ID or move-rack RACK SHARD");
            return ST_USAGE;
        }
        if ((st = parse_change(&c, pos + 2, npos - 2, &ch, err, errlen)))
            return st;
    } else if (!strcmp(what, "add-shard") || !strcmp(what, "remove-shard") ||
               !strcmp(what, "move-rack")) {
        if ((st = parse_change(&c, pos + 1, npos - 1, &ch, err, errlen)))
            return st;
    } else {
        snprintf(err, errlen, "unknown topology command '%s'", what);
        return ST_USAGE;
    }
    c.roots = orbit_cli_str(v, "root") ? orbit_cli_str(v, "root") : DEFAULT_ROOTS;
    c.lc = orbit_ledger_client_new(c.roots, orbit_cli_str(v, "client-id"), err, errlen);
    if (!c.lc)
        return ST_USAGE;
    c.vc = orbit_view_client_new(c.roots, err, errlen);
    if (!c.vc) {
        orbit_ledger_client_destroy(&c.lc);
        return ST_USAGE;
    }
    if (!strcmp(what, "show"))
        st = cmd_show(&c, err, errlen);
    else if (!strcmp(what, "plan"))
        st = cmd_plan(&c, &ch, pos + 2, npos - 2, err, errlen);
    else if (!strcmp(what, "add-shard"))
        st = cmd_add_shard(&c, &ch, err, errlen);
    else if (!strcmp(what, "remove-shard"))
        st = cmd_remove_shard(&c, &ch, err, errlen);
    else
        st = cmd_move_rack(&c, &ch, err, errlen);
    orbit_view_client_destroy(&c.vc);
    orbit_ledger_client_destroy(&c.lc);
    return st;
}
