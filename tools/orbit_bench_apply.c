/* orbit_bench_apply: apply cost of the ledger state machine, in process. */
#include "orbit_bench_apply.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ledger.h"
#include "orbit_bench_placement.h"
#include "orbit_bench_proc.h"
#include "orbit_err.h"

#define CLIENTS 256 /* as the fill proposers of "orbit-bench ledger" */

void orbit_bench_apply_cfg_default(orbit_bench_apply_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->nodes = 10000;
    c->batch = 64;
    c->proposals = 500000;
    c->seconds = 0;
    c->warmup = 200000;
    c->window = 100000;
    c->time_step_ms = 5;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One proposal's messages and strings, reused entry after entry. */
typedef orbit_bench_placement_t slot_t;

typedef struct {
    char cid[CLIENTS][32];
    uint64_t next_request[CLIENTS];
    uint32_t next_client;
    uint64_t rng;
} gen_t;

/* Fill s with the next proposal, as the ledger benchmark's proposer does. */
static void gen_proposal(gen_t *g, uint32_t nodes, slot_t *s)
{
    uint32_t client = g->next_client;
    g->next_client = (g->next_client + 1) % CLIENTS;
    uint64_t seq = g->next_request[client]++;
    orbit_bench_placement_build(s, 1, client, seq, (uint32_t)(rng_next(&g->rng) % nodes));
    s->p.client_id = g->cid[client];
    s->p.request_id = seq + 1;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < sizeof path)
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

static bool stopped(const orbit_bench_apply_cfg_t *c)
{
    return c->stop && *c->stop;
}

int orbit_bench_apply_run(const orbit_bench_apply_cfg_t *c, orbit_bench_apply_result_t *r)
{
    char dir[] = "/tmp/orbit-bench-apply.XXXXXX";
    char err[256] = "";
    orbit_ledger_t *l = NULL;
    slot_t *slots = NULL;
    Orbit__Ledger__Proposal **ps = NULL;
    uint8_t *buf = NULL;
    gen_t *g = NULL;
    int rc = ORBIT_OK;
    memset(r, 0, sizeof *r);
    if (!c->nodes || !c->batch || !c->proposals || !c->window) {
        snprintf(r->error, sizeof r->error, "nodes, batch, proposals and window must be > 0");
        return ORBIT_EINVAL;
    }
    if (!mkdtemp(dir)) {
        snprintf(r->error, sizeof r->error, "cannot create %s", dir);
        return ORBIT_EIO;
    }
    slots = calloc(c->batch, sizeof *slots);
    ps = calloc(c->batch, sizeof *ps);
    g = calloc(1, sizeof *g);
    if (!slots || !ps || !g) {
        rc = ORBIT_ENOMEM;
        snprintf(r->error, sizeof r->error, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < CLIENTS; i++)
        snprintf(g->cid[i], sizeof g->cid[i], "bench-apply-r1-p%04u", i);
    g->rng = 0x9e3779b97f4a7c15ull;
    rc = orbit_ledger_open(dir, &l, err, sizeof err);
    if (rc) {
        snprintf(r->error, sizeof r->error, "%s", err);
        goto out;
    }
    /* As a replica does: the node index in memory, kept by apply. */
    if ((rc = orbit_ledger_index_nodes(l, NULL)) != ORBIT_OK) {
        snprintf(r->error, sizeof r->error, "node index: %s", orbit_strerror(rc));
        goto out;
    }
    size_t bufcap = 0;
    int64_t timed_ns = 0, steady_ns = 0, window_ns = 0, time_ms = 1000000;
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    uint64_t window_from = 0, entry_bytes = 0;
    while (r->proposals < c->proposals && !stopped(c) &&
           !(c->seconds && timed_ns >= (int64_t)c->seconds * 1000000000)) {
        uint64_t left = c->proposals - r->proposals;
        size_t n = left < c->batch ? (size_t)left : c->batch;
        for (size_t i = 0; i < n; i++) {
            gen_proposal(g, c->nodes, &slots[i]);
            ps[i] = &slots[i].p;
        }
        Orbit__Ledger__Entry e = ORBIT__LEDGER__ENTRY__INIT;
        time_ms += c->time_step_ms;
        e.time_ms = time_ms;
        e.n_proposals = n;
        e.proposals = ps;
        size_t len = orbit__ledger__entry__get_packed_size(&e);
        if (len > bufcap) {
            uint8_t *nb = realloc(buf, len);
            if (!nb) {
                rc = ORBIT_ENOMEM;
                snprintf(r->error, sizeof r->error, "out of memory");
                goto out;
            }
            buf = nb;
            bufcap = len;
        }
        orbit__ledger__entry__pack(&e, buf);
        entry_bytes += len;
        Orbit__Ledger__Outcome **outs = NULL;
        size_t nouts = 0;
        int64_t t0 = orbit_bench_thread_cpu_ns(); /* the apply alone */
        rc = orbit_ledger_apply(l, buf, len, r->entries + 1, &outs, &nouts);
        for (size_t i = 0; !rc && i < nouts; i++) {
            if (outs[i]->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED)
                r->committed++;
            else if (outs[i]->kind == ORBIT__LEDGER__OUTCOME_KIND__CONFLICT)
                r->conflicts++;
            else
                r->invalid++;
        }
        orbit_ledger_outcomes_free(outs, nouts);
        int64_t dt = orbit_bench_thread_cpu_ns() - t0;
        if (rc) {
            snprintf(r->error, sizeof r->error, "apply of entry %" PRIu64 ": %s", r->entries + 1,
                     orbit_strerror(rc));
            goto out;
        }
        if (nouts != n) {
            rc = ORBIT_ECORRUPT;
            snprintf(r->error, sizeof r->error, "entry %" PRIu64 ": %zu outcomes for %zu proposals",
                     r->entries + 1, nouts, n);
            goto out;
        }
        timed_ns += dt;
        window_ns += dt;
        if (r->proposals >= c->warmup) {
            steady_ns += dt;
            r->steady_proposals += n;
        }
        r->proposals += n;
        r->entries++;
        if ((r->proposals - window_from >= c->window || r->proposals == c->proposals) &&
            r->nwindows < ORBIT_BENCH_APPLY_WINDOWS_MAX) {
            orbit_bench_apply_window_t *w = &r->windows[r->nwindows++];
            w->from = window_from;
            w->to = r->proposals;
            w->us_per_proposal = window_ns / 1e3 / (double)(w->to - w->from);
            window_from = r->proposals;
            window_ns = 0;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &w1);
    r->wall_s = (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) / 1e9;
    r->apply_s = timed_ns / 1e9;
    if (r->proposals) {
        r->us = timed_ns / 1e3 / (double)r->proposals;
        r->per_s = r->apply_s > 0 ? r->proposals / r->apply_s : 0;
        r->entry_bytes = (double)entry_bytes / (double)r->entries;
    }
    if (r->steady_proposals) {
        r->steady_us = steady_ns / 1e3 / (double)r->steady_proposals;
        r->steady_per_s = steady_ns > 0 ? r->steady_proposals / (steady_ns / 1e9) : 0;
    }
    r->ledger_index = orbit_ledger_index(l);
    orbit_ledger_stats_t st;
    if (orbit_ledger_stats(l, &st) == ORBIT_OK)
        r->dedup_entries = st.dedup_entries;
    /* What a Raft snapshot of this state costs (the replica's worker thread
     * makes the same copy). */
    uint8_t *snap = NULL;
    size_t snap_len = 0;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    if (orbit_ledger_snapshot_buf(l, false, &snap, &snap_len, NULL) == ORBIT_OK) {
        clock_gettime(CLOCK_MONOTONIC, &w1);
        r->snapshot_bytes = snap_len;
        r->snapshot_ms =
            (double)(w1.tv_sec - w0.tv_sec) * 1e3 + (double)(w1.tv_nsec - w0.tv_nsec) / 1e6;
        orbit_ledger_snapshot_free(snap, snap_len);
    }
    if (r->conflicts || r->invalid) {
        rc = ORBIT_ECORRUPT;
        snprintf(r->error, sizeof r->error,
                 "%" PRIu64 " conflicts and %" PRIu64 " invalid outcomes (every one must commit)",
                 r->conflicts, r->invalid);
    }
out:
    orbit_ledger_close(&l);
    if (!rc) {
        char path[512];
        struct stat sb;
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        if (stat(path, &sb) == 0)
            r->data_bytes = (uint64_t)sb.st_blocks * 512; /* WRITEMAP: st_size is the map size */
    }
    rm_dir(dir);
    free(buf);
    free(slots);
    free(ps);
    free(g);
    return rc;
}

void orbit_bench_apply_print(const orbit_bench_apply_cfg_t *c, const orbit_bench_apply_result_t *r,
                             bool json)
{
    if (json) {
        printf("{\"benchmark\":\"apply\",\"nodes\":%u,\"batch\":%u,\"warmup\":%u,"
               "\"proposals\":%" PRIu64 ",\"entries\":%" PRIu64 ",\"committed\":%" PRIu64
               ",\"conflicts\":%" PRIu64 ",\"invalid\":%" PRIu64 ",\"apply_s\":%.3f,"
               "\"wall_s\":%.3f,\"proposals_per_s\":%.0f,\"us_per_proposal\":%.3f,"
               "\"steady\":{\"proposals\":%" PRIu64 ",\"proposals_per_s\":%.0f,"
               "\"us_per_proposal\":%.3f},\"windows\":[",
               c->nodes, c->batch, c->warmup, r->proposals, r->entries, r->committed, r->conflicts,
               r->invalid, r->apply_s, r->wall_s, r->per_s, r->us, r->steady_proposals,
               r->steady_per_s, r->steady_us);
        for (size_t i = 0; i < r->nwindows; i++)
            printf("%s{\"from\":%" PRIu64 ",\"to\":%" PRIu64 ",\"us_per_proposal\":%.3f}",
                   i ? "," : "", r->windows[i].from, r->windows[i].to,
                   r->windows[i].us_per_proposal);
        printf("],\"ledger_index\":%" PRIu64 ",\"dedup_entries\":%" PRIu64
               ",\"data_bytes\":%" PRIu64 ",\"entry_bytes\":%.0f,\"snapshot_bytes\":%" PRIu64
               ",\"snapshot_ms\":%.1f,\"error\":",
               r->ledger_index, r->dedup_entries, r->data_bytes, r->entry_bytes, r->snapshot_bytes,
               r->snapshot_ms);
        if (r->error[0])
            printf("\"%s\"}\n", r->error); /* our own messages: no quoting needed */
        else
            printf("null}\n");
        return;
    }
    printf("ledger apply (in process, one thread, CPU time): placements with node_fits on %u "
           "nodes, %u per entry\n",
           c->nodes, c->batch);
    printf("  all          %.0f proposals/s, %.2f us/proposal  (%" PRIu64 " proposals, %" PRIu64
           " entries, %.2f s of apply CPU, %.2f s wall in all)\n",
           r->per_s, r->us, r->proposals, r->entries, r->apply_s, r->wall_s);
    if (r->steady_proposals)
        printf("  steady       %.0f proposals/s, %.2f us/proposal  (after the first %u)\n",
               r->steady_per_s, r->steady_us, c->warmup);
    else
        printf("  steady       not reached (needs more than %u proposals)\n", c->warmup);
    for (size_t i = 0; i < r->nwindows; i++)
        printf("  %9" PRIu64 "..%-9" PRIu64 " %.2f us/proposal\n", r->windows[i].from,
               r->windows[i].to, r->windows[i].us_per_proposal);
    printf("  end          ledger index %" PRIu64 ", %" PRIu64 " dedup pairs, data.mdb %.1f MiB, "
           "entries of %.0f bytes\n",
           r->ledger_index, r->dedup_entries, r->data_bytes / 1048576.0, r->entry_bytes);
    printf("  snapshot     %.1f MiB copied in %.0f ms (a Raft snapshot of the final state)\n",
           r->snapshot_bytes / 1048576.0, r->snapshot_ms);
    if (r->error[0])
        printf("  error        %s\n", r->error);
}
