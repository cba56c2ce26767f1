/* orbitctl: the operator's tool: queries of the root view (summary, node
 * lists, one node's detail, shards, capsules), as tables or --json; the ledger
 * (orbitctl_ledger.c), the topology (orbitctl_topology.c), missions and
 * quota (orbitctl_mission.c). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_cli.h"
#include "orbit_err.h"
#include "orbit_names.h"
#include "orbit_node.h"
#include "orbit_view_client.h"
#include "orbitctl.h"
#include "orbitctl_mission.h"
#include "shard_agg.h"

static const orbit_opt_t opts[] = {
    {"root", "ENDPOINT[,...]", "root replicas to ask (default: the local constellation)", false},
    {"json", NULL, "print JSON instead of tables", false},
    {"timeout-ms", "MS", "how long to wait for each replica (default 3000)", false},
    {"status", "STATUS", "view nodes/capsules: only (on) alive|suspect|down|unreachable nodes",
     false},
    {"label", "KEY=VALUE", "view nodes/capsules: only (on) nodes with this label", true},
    {"min-cpu", "MILLICORES", "view nodes/capsules: at least this much free CPU", false},
    {"min-mem", "BYTES", "view nodes/capsules: at least this much free memory", false},
    {"min-gpus", "N", "view nodes/capsules: at least N healthy GPUs", false},
    {"order", "KEY", "view nodes: name (default), cpu, mem or gpu (most free first)", false},
    {"limit", "N", "view nodes/capsules: at most N rows (top-k with --order)", false},
    {"from", "INDEX", "ledger watch: first ledger index (default 1)", false},
    {"prefix", "KEY", "ledger watch: only commitments touching keys with this prefix", false},
    {"follow", NULL, "ledger watch: keep waiting for new commitments", false},
    {"stale", NULL, "ledger get/watch: any replica answers from its own state", false},
    {"client-id", "ID", "ledger propose: client id for idempotent retries", false},
    {"snapshot", "DIR", "ledger get: read from a snapshot written by `ledger snapshot DIR`", false},
    {"tier", "N", "topology add-shard: the new shard's tier (1: rack shard, 2+: zone shard)",
     false},
    {"parent", "SHARD", "topology add-shard: the shard it reports to (default: the root)", false},
    {"endpoint", "ENDPOINT", "topology add-shard: where the new shard listens", false},
    {"take-racks", NULL, "topology add-shard: then move to it the racks rendezvous gives it",
     false},
    {"wait", NULL, "topology move-rack/remove-shard: wait until the nodes have re-homed", false},
    {"timeout-s", "S", "topology --wait: give up after S seconds (default 60)", false},
    {"epoch", "N", "topology changes: fence the change on this epoch (from `topology plan`)",
     false},
    {"module", "NAME", "mission status/stop: only this module", true},
    {"no-view-check", NULL, "mission submit: skip the check against the root view's nodes", false},
    {"cpu-m", "N", "quota grant: millicores", false},
    {"mem", "BYTES", "quota grant: memory", false},
    {"gpus", "N", "quota grant: GPUs", false},
    {"priority", "P", "quota grant: priority (default 0)", false},
    {"until-ms", "T", "quota grant: ends at this ledger time, ms since the epoch (0: never)",
     false},
    {NULL, NULL, NULL, false}};

static const orbit_cli_t cli = {
    "orbitctl", "Query and operate an Orbit constellation.",
    "[--root ENDPOINT[,...]] [--json] view summary|nodes|node NAME|shards|capsules [PREFIX]\n"
    "       orbitctl [--root ENDPOINT[,...]] [--json] ledger status|propose FILE|get KEY|"
    "watch|snapshot DIR|members [add ID HOST:PORT|remove ID|assign ID ROLE]\n"
    "       orbitctl [--root ENDPOINT[,...]] [--json] topology show\n"
    "       orbitctl topology plan add-shard ID --tier N [--parent P]|remove-shard ID|"
    "move-rack RACK SHARD\n"
    "       orbitctl topology add-shard ID --tier N [--parent P] --endpoint E [--take-racks]\n"
    "       orbitctl topology move-rack RACK SHARD [--wait] [--timeout-s S]\n"
    "       orbitctl topology remove-shard ID [--wait] [--timeout-s S]\n"
    "       orbitctl [--json] mission submit FILE [--no-view-check]|status MISSION [--module M]|"
    "scale MISSION MODULE COUNT|stop MISSION [--module M]\n"
    "       orbitctl [--json] quota grant PRINCIPAL --cpu-m N --mem BYTES --gpus N "
    "[--priority P] [--until-ms T]|show PRINCIPAL",
    "orbitctl", opts};

bool json_out;

/* ------------------------------------------------------------- formatting */

void dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

bool orbitctl_outcome_line(const Orbit__Ledger__Outcome *o, char *line, size_t len)
{
    switch (o->kind) {
    case ORBIT__LEDGER__OUTCOME_KIND__COMMITTED:
        snprintf(line, len, "committed at ledger index %" PRIu64, o->index);
        return true;
    case ORBIT__LEDGER__OUTCOME_KIND__CONFLICT:
        snprintf(line, len, "conflict: %s (observed %s)", o->which ? o->which : "?",
                 o->observed ? o->observed : "?");
        return false;
    default: snprintf(line, len, "invalid: %s", o->reason ? o->reason : "?"); return false;
    }
}

static json_t *summary_json(const Orbit__Summary *s, const Orbit__ViewReply *r)
{
    orbit_agg_t a;
    memset(&a, 0, sizeof a);
    if (s)
        orbit_agg_from_pb(&a, s);
    json_t *nodes = json_pack(
        "{s:I,s:I,s:I,s:I,s:I}", "total", (json_int_t)orbit_agg_total(&a), "alive",
        (json_int_t)a.nodes[ORBIT_ALIVE], "suspect", (json_int_t)a.nodes[ORBIT_SUSPECT], "down",
        (json_int_t)a.nodes[ORBIT_DOWN], "unreachable", (json_int_t)a.nodes[ORBIT_UNREACHABLE]);
    json_t *hist = json_array();
    for (int i = 0; i < ORBIT_PRESSURE_BUCKETS; i++)
        json_array_append_new(hist, json_integer((json_int_t)a.pressure_hist[i]));
    return json_pack("{s:o,s:{s:I,s:I},s:{s:I,s:I},s:{s:I,s:I,s:I,s:I},s:{s:o,s:I},s:{s:I,s:I}}",
                     "nodes", nodes, "cpu", "capacity_m", (json_int_t)a.cpu_capacity_m, "used_m",
                     (json_int_t)a.cpu_used_m, "memory", "capacity", (json_int_t)a.mem_capacity,
                     "used", (json_int_t)a.mem_used, "gpus", "capacity", (json_int_t)a.gpu_capacity,
                     "healthy", (json_int_t)a.gpus[ORBIT_GPU_HEALTHY], "degraded",
                     (json_int_t)a.gpus[ORBIT_GPU_DEGRADED], "failed",
                     (json_int_t)a.gpus[ORBIT_GPU_FAILED], "memory_pressure", "histogram", hist,
                     "unavailable", (json_int_t)a.pressure_unavailable, "root", "reports",
                     (json_int_t)r->root_reports, "uptime_ms", (json_int_t)r->root_uptime_ms);
}

static void print_summary(const Orbit__ViewReply *r)
{
    if (json_out) {
        dump(summary_json(r->summary, r));
        return;
    }
    orbit_agg_t a;
    memset(&a, 0, sizeof a);
    if (r->summary)
        orbit_agg_from_pb(&a, r->summary);
    printf("nodes    %" PRIu64 " total: %" PRIu64 " alive, %" PRIu64 " suspect, %" PRIu64
           " down, %" PRIu64 " unreachable\n",
           orbit_agg_total(&a), a.nodes[ORBIT_ALIVE], a.nodes[ORBIT_SUSPECT], a.nodes[ORBIT_DOWN],
           a.nodes[ORBIT_UNREACHABLE]);
    printf("cpu      %.1f cores, %.1f used (%.0f%%)\n", a.cpu_capacity_m / 1000.0,
           a.cpu_used_m / 1000.0,
           a.cpu_capacity_m ? 100.0 * (double)a.cpu_used_m / (double)a.cpu_capacity_m : 0.0);
    printf("memory   %.1f GiB, %.1f used (%.0f%%)\n", a.mem_capacity / 1073741824.0,
           a.mem_used / 1073741824.0,
           a.mem_capacity ? 100.0 * (double)a.mem_used / (double)a.mem_capacity : 0.0);
    printf("gpus     %" PRIu64 ": %" PRIu64 " healthy, %" PRIu64 " degraded, %" PRIu64 " failed\n",
           a.gpu_capacity, a.gpus[ORBIT_GPU_HEALTHY], a.gpus[ORBIT_GPU_DEGRADED],
           a.gpus[ORBIT_GPU_FAILED]);
    static const char *b[ORBIT_PRESSURE_BUCKETS] = {"0",     "<=1%",  "<=5%", "<=10%",
                                                    "<=25%", "<=50%", ">50%"};
    printf("mem psi ");
    for (int i = 0; i < ORBIT_PRESSURE_BUCKETS; i++)
        printf(" %s:%" PRIu64, b[i], a.pressure_hist[i]);
    printf(" n/a:%" PRIu64 "\n", a.pressure_unavailable);
}

static json_t *labels_json(Orbit__Label **ls, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, ls[i]->key, json_string(ls[i]->value));
    return o;
}

/* One capsule's health; absent fields are null. */
static json_t *capsule_json(const Orbit__CapsuleHealth *h)
{
    return json_pack("{s:s,s:s,s:o,s:o,s:o}", "id", h->id, "state",
                     orbit_capsule_state_name((orbit_capsule_state_t)h->state), "exit_code",
                     h->has_exit_code ? json_integer(h->exit_code) : json_null(), "reason",
                     h->reason && *h->reason ? json_string(h->reason) : json_null(), "since_ms",
                     h->has_since_ms ? json_integer((json_int_t)h->since_ms) : json_null());
}

static json_t *capsules_json(Orbit__CapsuleHealth **cs, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, capsule_json(cs[i]));
    return a;
}

static json_t *row_json(const Orbit__NodeRow *w)
{
    return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:i,s:i,s:i,s:I,s:o,s:o}", "node", w->node,
                     "status", orbit_status_name(w->status), "shard", w->shard, "cpu_capacity_m",
                     (json_int_t)w->cpu_capacity_m, "cpu_free_m", (json_int_t)w->cpu_free_m,
                     "mem_capacity", (json_int_t)w->mem_capacity, "mem_free",
                     (json_int_t)w->mem_free, "gpu_capacity", (int)w->gpu_capacity, "gpu_healthy",
                     (int)w->gpu_healthy, "mem_pressure", (int)w->mem_pressure, "sampled_ms",
                     (json_int_t)w->sampled_ms, "labels", labels_json(w->labels, w->n_labels),
                     "capsules", capsules_json(w->capsules, w->n_capsules));
}

static void print_nodes(const Orbit__ViewReply *r)
{
    if (json_out) {
        json_t *rows = json_array();
        for (size_t i = 0; i < r->n_rows; i++)
            json_array_append_new(rows, row_json(r->rows[i]));
        dump(json_pack("{s:I,s:o}", "matched", (json_int_t)r->matched, "nodes", rows));
        return;
    }
    printf("%-24s %-11s %-14s %15s %17s %7s %6s  %s\n", "NODE", "STATUS", "SHARD", "CPU FREE/CAP",
           "MEM FREE/CAP GiB", "GPU OK", "PSI", "LABELS");
    for (size_t i = 0; i < r->n_rows; i++) {
        const Orbit__NodeRow *w = r->rows[i];
        char cpu[32], mem[32], gpu[16], labels[256] = "";
        snprintf(cpu, sizeof cpu, "%.1f/%.1f", w->cpu_free_m / 1000.0, w->cpu_capacity_m / 1000.0);
        snprintf(mem, sizeof mem, "%.1f/%.1f", w->mem_free / 1073741824.0,
                 w->mem_capacity / 1073741824.0);
        snprintf(gpu, sizeof gpu, "%u/%u", w->gpu_healthy, w->gpu_capacity);
        size_t used = 0;
        for (size_t k = 0; k < w->n_labels && used < sizeof labels; k++)
            used += (size_t)snprintf(labels + used, sizeof labels - used, "%s%s=%s", k ? "," : "",
                                     w->labels[k]->key, w->labels[k]->value);
        printf("%-24s %-11s %-14s %15s %17s %7s %5.1f%%  %s\n", w->node,
               orbit_status_name(w->status), w->shard, cpu, mem, gpu, w->mem_pressure / 100.0,
               labels);
    }
    printf("(%zu of %" PRIu64 " matching nodes)\n", r->n_rows, r->matched);
}

static json_t *gpu_json(const Orbit__Gpu *g)
{
    static const char *health[] = {"healthy", "degraded", "failed"};
    return json_pack("{s:i,s:s,s:i,s:i,s:I,s:I,s:i,s:I,s:I,s:i,s:s}", "index", (int)g->index,
                     "uuid", g->uuid ? g->uuid : "", "temp_c", (int)g->temp_c, "util_pct",
                     (int)g->util_pct, "mem_used", (json_int_t)g->mem_used, "mem_total",
                     (json_int_t)g->mem_total, "power_mw", (int)g->power_mw, "ecc_corrected",
                     (json_int_t)g->ecc_corrected, "ecc_uncorrected",
                     (json_int_t)g->ecc_uncorrected, "last_xid", (int)g->last_xid, "health",
                     g->health <= 2 ? health[g->health] : "unknown");
}

/* "exit" column text: the code, or "-". */
static const char *exit_text(const Orbit__CapsuleHealth *h, char *buf, size_t n)
{
    if (!h->has_exit_code)
        return "-";
    snprintf(buf, n, "%d", (int)h->exit_code);
    return buf;
}

static void print_node_capsules(Orbit__CapsuleHealth **cs, size_t n)
{
    printf("capsules    %zu\n", n);
    for (size_t i = 0; i < n; i++) {
        const Orbit__CapsuleHealth *h = cs[i];
        printf("  %-40s %s", h->id, orbit_capsule_state_name((orbit_capsule_state_t)h->state));
        if (h->has_exit_code)
            printf(" (exit %d)", (int)h->exit_code);
        if (h->reason && *h->reason)
            printf(": %s", h->reason);
        printf("\n");
    }
}

static void print_node(const Orbit__ViewReply *r)
{
    const Orbit__NodeDetail *d = r->detail;
    const Orbit__NodeDelta *s = d ? d->state : NULL;
    if (json_out) {
        json_t *o = r->n_rows ? row_json(r->rows[0]) : json_object();
        if (s) {
            json_t *gpus = json_array();
            for (size_t i = 0; i < s->n_gpus; i++)
                json_array_append_new(gpus, gpu_json(s->gpus[i]));
            json_t *pressure =
                s->pressure && s->pressure_available
                    ? json_pack("{s:i,s:i,s:i,s:i,s:i}", "cpu_some", (int)s->pressure->cpu_some,
                                "mem_some", (int)s->pressure->mem_some, "mem_full",
                                (int)s->pressure->mem_full, "io_some", (int)s->pressure->io_some,
                                "io_full", (int)s->pressure->io_full)
                    : json_null();
            json_object_set_new(
                o, "state",
                json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:i,s:i,s:i,s:o,s:o,s:I}",
                          "incarnation", (json_int_t)s->incarnation, "seq", (json_int_t)s->seq,
                          "cpu_capacity_m", (json_int_t)s->cpu_capacity_m, "cpu_used_m",
                          (json_int_t)s->cpu_used_m, "mem_capacity", (json_int_t)s->mem_capacity,
                          "mem_used", (json_int_t)s->mem_used, "sampled_ms",
                          (json_int_t)s->sampled_ms, "load1", (int)s->load1, "load5", (int)s->load5,
                          "load15", (int)s->load15, "gpu_capacity", (int)s->gpu_capacity,
                          "pressure", pressure, "gpus", gpus, "last_heard_ms_ago",
                          (json_int_t)d->last_heard_ms_ago));
            json_object_set_new(json_object_get(o, "state"), "capsules",
                                capsules_json(s->capsules, s->n_capsules));
        }
        if (r->error)
            json_object_set_new(o, "error", json_string(r->error));
        dump(o);
        return;
    }
    if (r->n_rows) {
        const Orbit__NodeRow *w = r->rows[0];
        printf("node        %s\nstatus      %s\nshard       %s\n", w->node,
               orbit_status_name(w->status), w->shard);
    }
    if (r->error)
        printf("detail      unavailable: %s\n", r->error);
    if (!s) {
        /* No detail: the row's capsules are still known. */
        if (r->n_rows)
            print_node_capsules(r->rows[0]->capsules, r->rows[0]->n_capsules);
        return;
    }
    printf("heard       %" PRId64 " ms ago (incarnation %" PRIu64 ", seq %" PRIu64 ")\n",
           d->last_heard_ms_ago, s->incarnation, s->seq);
    printf("cpu         %.2f of %.2f cores used\n", s->cpu_used_m / 1000.0,
           s->cpu_capacity_m / 1000.0);
    printf("memory      %.2f of %.2f GiB used\n", s->mem_used / 1073741824.0,
           s->mem_capacity / 1073741824.0);
    printf("load        %.2f %.2f %.2f\n", s->load1 / 100.0, s->load5 / 100.0, s->load15 / 100.0);
    if (s->pressure_available && s->pressure)
        printf("pressure    cpu %.2f%%  mem %.2f%% (full %.2f%%)  io %.2f%% (full %.2f%%)\n",
               s->pressure->cpu_some / 100.0, s->pressure->mem_some / 100.0,
               s->pressure->mem_full / 100.0, s->pressure->io_some / 100.0,
               s->pressure->io_full / 100.0);
    else
        printf("pressure    unavailable\n");
    printf("labels     ");
    for (size_t i = 0; i < s->n_labels; i++)
        printf(" %s=%s", s->labels[i]->key, s->labels[i]->value);
    printf("\ngpus        %u\n", s->gpu_capacity);
    static const char *health[] = {"healthy", "degraded", "failed"};
    for (size_t i = 0; i < s->n_gpus; i++) {
        const Orbit__Gpu *g = s->gpus[i];
        printf("  gpu %-2u %s  %s  %d C  %u%%  %.1f/%.1f GiB  %.1f W  ecc %" PRIu64 "/%" PRIu64
               "  xid %u\n",
               g->index, g->uuid ? g->uuid : "-", g->health <= 2 ? health[g->health] : "?",
               g->temp_c, g->util_pct, g->mem_used / 1073741824.0, g->mem_total / 1073741824.0,
               g->power_mw / 1000.0, g->ecc_corrected, g->ecc_uncorrected, g->last_xid);
    }
    print_node_capsules(s->capsules, s->n_capsules);
}

static void print_capsules(const Orbit__ViewReply *r)
{
    if (json_out) {
        json_t *arr = json_array();
        for (size_t i = 0; i < r->n_capsules; i++) {
            const Orbit__CapsuleRow *c = r->capsules[i];
            json_t *o = capsule_json(c->health);
            json_object_set_new(o, "node", json_string(c->node));
            json_object_set_new(o, "node_status", json_string(orbit_status_name(c->node_status)));
            json_array_append_new(arr, o);
        }
        dump(json_pack("{s:I,s:o}", "matched", (json_int_t)r->matched, "capsules", arr));
        return;
    }
    printf("%-40s %-24s %-11s %-10s %5s  %s\n", "ID", "NODE", "NODE-STATUS", "STATE", "EXIT",
           "REASON");
    for (size_t i = 0; i < r->n_capsules; i++) {
        const Orbit__CapsuleRow *c = r->capsules[i];
        const Orbit__CapsuleHealth *h = c->health;
        char code[16];
        printf("%-40s %-24s %-11s %-10s %5s  %s\n", h->id, c->node,
               orbit_status_name(c->node_status),
               orbit_capsule_state_name((orbit_capsule_state_t)h->state),
               exit_text(h, code, sizeof code), h->reason && *h->reason ? h->reason : "-");
    }
    printf("(%zu of %" PRIu64 " matching capsules)\n", r->n_capsules, r->matched);
}

static void print_shards(const Orbit__ViewReply *r)
{
    if (json_out) {
        json_t *arr = json_array();
        for (size_t i = 0; i < r->n_shards; i++) {
            const Orbit__ShardInfo *s = r->shards[i];
            json_t *cs = json_object();
            for (size_t k = 0; k < s->n_counters; k++)
                json_object_set_new(cs, s->counters[k]->name,
                                    json_integer((json_int_t)s->counters[k]->value));
            json_array_append_new(arr,
                                  json_pack("{s:s,s:i,s:s?,s:b,s:I,s:I,s:i,s:o}", "id", s->id,
                                            "tier", (int)s->tier, "parent", s->parent, "reachable",
                                            s->reachable, "nodes", (json_int_t)s->nodes,
                                            "last_report_ms_ago", (json_int_t)s->last_report_ms_ago,
                                            "interval_ms", (int)s->interval_ms, "counters", cs));
        }
        dump(json_pack("{s:o}", "shards", arr));
        return;
    }
    printf("%-16s %4s %-16s %-11s %8s %12s  %s\n", "SHARD", "TIER", "PARENT", "REACHABLE", "NODES",
           "LAST REPORT", "NONZERO ERROR COUNTERS");
    for (size_t i = 0; i < r->n_shards; i++) {
        const Orbit__ShardInfo *s = r->shards[i];
        char last[32] = "-";
        if (s->has_last_report_ms_ago && s->parent)
            snprintf(last, sizeof last, "%" PRId64 " ms", s->last_report_ms_ago);
        printf("%-16s %4u %-16s %-11s %8" PRIu64 " %12s ", s->id, s->tier,
               s->parent ? s->parent : "-", s->reachable ? "yes" : "NO", s->nodes, last);
        static const char *good[] = {
            "frames",           "deltas",           "applied",          "full_states",
            "reports_sent",     "reports_received", "full_reports",     "rows_applied",
            "rows_removed",     "queries",          "reboots",          "detail_requests",
            "duplicates",       "children_dropped", "rehomed_away",     "topology_epoch",
            "topology_fetches", "topology_updates", "upstream_changes", NULL};
        for (size_t k = 0; k < s->n_counters; k++) {
            bool ok = false;
            for (int g = 0; good[g]; g++)
                ok |= !strcmp(good[g], s->counters[k]->name);
            if (!ok && s->counters[k]->value)
                printf(" %s=%" PRIu64, s->counters[k]->name, s->counters[k]->value);
        }
        printf("\n");
    }
}

/* ------------------------------------------------------------------ view */

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

static int cmd_view(zhashx_t *v, char **pos, int npos, char *err, size_t errlen)
{
    if (npos < 2) {
        snprintf(err, errlen, "view needs summary, nodes, node NAME, shards or capsules [PREFIX]");
        return 2;
    }
    Orbit__ViewQuery q = ORBIT__VIEW_QUERY__INIT;
    Orbit__Label lbuf[16], *lptr[16];
    const char *what = pos[1];
    int want_args = 2;
    if (!strcmp(what, "summary")) {
        q.kind = ORBIT__QUERY_KIND__Q_SUMMARY;
    } else if (!strcmp(what, "shards")) {
        q.kind = ORBIT__QUERY_KIND__Q_SHARDS;
    } else if (!strcmp(what, "node")) {
        q.kind = ORBIT__QUERY_KIND__Q_NODE;
        want_args = 3;
        if (npos < 3 || !orbit_name_valid(pos[2])) {
            snprintf(err, errlen, "view node needs a valid node name");
            return 2;
        }
        q.node = pos[2];
    } else if (!strcmp(what, "nodes") || !strcmp(what, "capsules")) {
        /* Capsules take the node filters too: capsules on matching nodes. */
        const bool caps = !strcmp(what, "capsules");
        q.kind = caps ? ORBIT__QUERY_KIND__Q_CAPSULES : ORBIT__QUERY_KIND__Q_NODES;
        if (caps && npos >= 3) {
            if (!orbit_name_id_ok(pos[2])) {
                snprintf(err, errlen,
                         "view capsules: PREFIX must be id characters (A-Za-z0-9._-:/), at most "
                         "%d bytes",
                         ORBIT_NAME_LEN_MAX);
                return 2;
            }
            q.capsule_prefix = pos[2];
            want_args = 3;
        }
        if (caps && orbit_cli_str(v, "order")) {
            snprintf(err, errlen, "--order applies to view nodes only (capsules come by id)");
            return 2;
        }
        const char *s;
        if ((s = orbit_cli_str(v, "status"))) {
            int st = orbit_status_parse(s);
            if (st < 0) {
                snprintf(err, errlen, "--status must be alive, suspect, down or unreachable");
                return 2;
            }
            q.has_status = true;
            q.status = (Orbit__NodeStatus)st;
        }
        if ((s = orbit_cli_str(v, "label"))) {
            char *copy = strdup(s);
            for (char *save = NULL, *kv = strtok_r(copy, ",", &save); kv;
                 kv = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(kv, '=');
                if (!eq || eq == kv || q.n_labels == 16) {
                    snprintf(err, errlen, "--label must be KEY=VALUE (at most 16)");
                    free(copy);
                    return 2;
                }
                *eq = '\0';
                orbit__label__init(&lbuf[q.n_labels]);
                lbuf[q.n_labels].key = strdup(kv);
                lbuf[q.n_labels].value = strdup(eq + 1);
                lptr[q.n_labels] = &lbuf[q.n_labels];
                q.n_labels++;
            }
            free(copy);
            q.labels = lptr;
        }
        if ((s = orbit_cli_str(v, "min-cpu"))) {
            if (parse_i64(s, &q.min_cpu_free_m)) {
                snprintf(err, errlen, "--min-cpu must be a non-negative number of millicores");
                return 2;
            }
            q.has_min_cpu_free_m = true;
        }
        if ((s = orbit_cli_str(v, "min-mem"))) {
            if (parse_i64(s, &q.min_mem_free)) {
                snprintf(err, errlen, "--min-mem must be a non-negative number of bytes");
                return 2;
            }
            q.has_min_mem_free = true;
        }
        if (orbit_cli_str(v, "min-gpus")) {
            if (orbit_cli_u32(v, "min-gpus", 0, ORBIT_GPUS_MAX, 0, &q.min_gpu_healthy, err, errlen))
                return 2;
            q.has_min_gpu_healthy = true;
        }
        if (orbit_cli_str(v, "limit")) {
            if (orbit_cli_u32(v, "limit", 0, 1000000, 0, &q.limit, err, errlen))
                return 2;
            q.has_limit = true;
        }
        if ((s = orbit_cli_str(v, "order"))) {
            static const char *names[] = {"name", "cpu", "mem", "gpu"};
            int o = -1;
            for (int i = 0; i < 4; i++)
                if (!strcmp(s, names[i]))
                    o = i;
            if (o < 0) {
                snprintf(err, errlen, "--order must be name, cpu, mem or gpu");
                return 2;
            }
            q.has_order = true;
            q.order = (Orbit__Order)o;
        }
    } else {
        snprintf(err, errlen, "unknown view '%s' (summary, nodes, node NAME, shards, capsules)",
                 what);
        return 2;
    }
    if (npos > want_args) {
        snprintf(err, errlen, "unexpected argument '%s'", pos[want_args]);
        return 2;
    }
    uint32_t timeout;
    if (orbit_cli_u32(v, "timeout-ms", 1, 600000, 3000, &timeout, err, errlen))
        return 2;
    const char *roots = orbit_cli_str(v, "root");
    orbit_view_client_t *c = orbit_view_client_new(roots ? roots : DEFAULT_ROOTS, err, errlen);
    if (!c)
        return 2;
    Orbit__ViewReply *r = NULL;
    int rc = orbit_view_client_query(c, &q, (int)timeout, &r);
    for (size_t i = 0; i < q.n_labels; i++) {
        free(lbuf[i].key);
        free(lbuf[i].value);
    }
    orbit_view_client_destroy(&c);
    if (rc != ORBIT_OK) {
        snprintf(err, errlen, "no root replica answered at %s (%s)", roots ? roots : DEFAULT_ROOTS,
                 orbit_strerror(rc));
        return 1;
    }
    int status = 0;
    if (r->error && q.kind != ORBIT__QUERY_KIND__Q_NODE) {
        snprintf(err, errlen, "root: %s", r->error);
        status = 1;
    } else if (q.kind == ORBIT__QUERY_KIND__Q_SUMMARY) {
        print_summary(r);
    } else if (q.kind == ORBIT__QUERY_KIND__Q_NODES) {
        print_nodes(r);
    } else if (q.kind == ORBIT__QUERY_KIND__Q_SHARDS) {
        print_shards(r);
    } else if (q.kind == ORBIT__QUERY_KIND__Q_CAPSULES) {
        print_capsules(r);
    } else {
        if (r->error && !r->n_rows) {
            snprintf(err, errlen, "%s: %s", q.node, r->error);
            status = 1;
        } else {
            print_node(r);
        }
    }
    orbit__view_reply__free_unpacked(r, NULL);
    return status;
}

int main(int argc, char **argv)
{
    char err[512] = "";
    zhashx_t *v = NULL;
    char *pos[8];
    int npos = 0;
    int rc = orbit_cli_parse_mixed(&cli, argc, argv, &v, pos, 8, &npos, err, sizeof err);
    if (rc > 0)
        return 0;
    if (rc < 0)
        orbit_cli_die(cli.prog, err);
    json_out = orbit_cli_flag(v, "json");
    int status = 2;
    if (npos == 0)
        snprintf(err, sizeof err, "missing command (try: orbitctl view summary; see --help)");
    else if (!strcmp(pos[0], "ledger"))
        status = orbitctl_ledger(v, pos, npos, err, sizeof err);
    else if (!strcmp(pos[0], "topology"))
        status = orbitctl_topology(v, pos, npos, err, sizeof err);
    else if (!strcmp(pos[0], "mission"))
        status = orbitctl_mission(v, pos, npos, err, sizeof err);
    else if (!strcmp(pos[0], "quota"))
        status = orbitctl_quota(v, pos, npos, err, sizeof err);
    else if (!strcmp(pos[0], "view"))
        status = cmd_view(v, pos, npos, err, sizeof err);
    else
        snprintf(err, sizeof err, "unknown command '%s' (see --help)", pos[0]);
    zhashx_destroy(&v);
    if (status) {
        fprintf(stderr, "orbitctl: %s\n", err);
        return status;
    }
    return 0;
}
