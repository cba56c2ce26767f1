/* orbit_bench_ingest: shard ingest throughput and memory per node. */
#include "orbit_bench_ingest.h"

#include <czmq.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "orbit_bench_frames.h"
#include "orbit_bench_proc.h"
#include "orbit_bench_stats.h"
#include "orbit_err.h"
#include "orbit_log.h"
#include "orbit_sock.h"
#include "orbit_wire.h"
#include "shard_daemon.h"
#include "shard_nodes.h"

#define MAX_RUNS       10000
#define MIN_RUNS       3
#define STAMP_BASE     (ORBIT_BENCH_STAMP_MIN + 1)
#define FAKE_NOW_MS    1000000
#define ACK_SILENCE_MS 10000
#define START_WAIT_MS  10000

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

void orbit_bench_ingest_cfg_default(orbit_bench_ingest_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->nodes = 10000;
    c->seconds = 5;
    c->batch = 64;
    c->rounds = 31;
    c->full_every = 30;
    c->mem_nodes = 100000;
    c->window = 256;
    c->gpu_fraction = 0.125;
    c->seed = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void model_cfg(const orbit_bench_ingest_cfg_t *c, uint32_t nodes, orbit_sim_model_cfg_t *m)
{
    orbit_sim_model_cfg_default(m);
    m->nodes = nodes;
    m->racks = (nodes + 39) / 40;
    m->prefix = "bench";
    m->gpu_fraction = c->gpu_fraction;
    m->seed = c->seed;
}

static int build(const orbit_bench_ingest_cfg_t *c, uint32_t nodes, uint32_t rounds,
                 orbit_bench_frames_t *f, char *err, size_t errlen)
{
    orbit_sim_model_cfg_t m;
    model_cfg(c, nodes, &m);
    int rc = orbit_bench_frames_build(f, &m, rounds, c->batch, c->full_every, zclock_time(),
                                      STAMP_BASE, STAMP_BASE);
    if (rc != ORBIT_OK)
        snprintf(err, errlen, "cannot build %u x %u frames: %s", nodes, rounds, orbit_strerror(rc));
    return rc;
}

static orbit_shard_nodes_t *table_new(void)
{
    orbit_shard_nodes_cfg_t nc;
    memset(&nc, 0, sizeof nc); /* defaults; no ingest limit */
    return orbit_shard_nodes_new("bench-rack", &nc);
}

/* Feed frames [from, to) to t; returns the number of frames the shard could
 * not use at all. */
static uint64_t feed(orbit_shard_nodes_t *t, const orbit_bench_frames_t *f, size_t from, size_t to,
                     orbit_arena_t *a)
{
    uint64_t bad = 0;
    for (size_t i = from; i < to; i++) {
        Orbit__LeafAck ack;
        if (orbit_shard_nodes_ingest_frame(t, f->frames[i].buf, f->frames[i].len, FAKE_NOW_MS, a,
                                           &ack) != ORBIT_OK)
            bad++;
        orbit_arena_reset(a);
    }
    return bad;
}

/* ------------------------------------------------------------ in process */

static int throughput(const orbit_bench_ingest_cfg_t *c, orbit_bench_ingest_result_t *r, char *err,
                      size_t errlen)
{
    orbit_bench_frames_t f;
    int rc = build(c, c->nodes, c->rounds, &f, err, errlen);
    if (rc != ORBIT_OK)
        return rc;
    orbit_arena_t *a = orbit_arena_new(1 << 16);
    double *rates = calloc(MAX_RUNS, sizeof *rates);
    if (!a || !rates) {
        snprintf(err, errlen, "out of memory");
        rc = ORBIT_ENOMEM;
        goto out;
    }
    size_t first = f.round_first[1];
    uint64_t timed = 0, timed_fulls = 0, timed_bytes = 0;
    for (size_t i = first; i < f.nframes; i++) {
        timed += f.frames[i].deltas;
        timed_fulls += f.frames[i].fulls;
        timed_bytes += f.frames[i].len;
    }
    double total = 0;
    uint32_t runs = 0;
    while (runs < MAX_RUNS && (runs < MIN_RUNS || total < c->seconds) && !(c->stop && *c->stop)) {
        orbit_shard_nodes_t *t = table_new();
        if (!t) {
            snprintf(err, errlen, "out of memory");
            rc = ORBIT_ENOMEM;
            goto out;
        }
        feed(t, &f, 0, first, a);
        uint64_t applied0 = orbit_shard_nodes_stats(t)->applied;
        double t0 = now_s();
        feed(t, &f, first, f.nframes, a);
        double dt = now_s() - t0;
        uint64_t applied = orbit_shard_nodes_stats(t)->applied - applied0;
        r->not_applied += timed - applied;
        orbit_shard_nodes_destroy(&t);
        rates[runs++] = (double)timed / (dt > 0 ? dt : 1e-9);
        total += dt;
    }
    r->runs = runs;
    r->deltas_per_run = timed;
    r->full_share = timed ? (double)timed_fulls / (double)timed : 0;
    r->bytes_per_message = timed ? (double)timed_bytes / (double)timed : 0;
    r->rate_min = orbit_bench_min(rates, runs);
    r->rate_max = orbit_bench_max(rates, runs);
    r->rate_median = orbit_bench_median(rates, runs);
out:
    free(rates);
    orbit_arena_destroy(&a);
    orbit_bench_frames_free(&f);
    return rc;
}

static uint64_t rss_bytes(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t kb = 0;
    while (fp && fgets(line, sizeof line, fp))
        if (sscanf(line, "VmRSS: %lu kB", &kb) == 1)
            break;
    if (fp)
        fclose(fp);
    return kb * 1024;
}

static uint64_t malloc_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* orbit_shard_nodes_heap_bytes is documented as a per-node average but
 * (at the time of writing) returns the table's total; accept either: no
 * node takes 64 KiB, and no table of 1,000 nodes takes less. */
static double heap_per_node(size_t v, size_t count)
{
    return count >= 1000 && v > 65536 ? (double)v / (double)count : (double)v;
}

static int memory(const orbit_bench_ingest_cfg_t *c, orbit_bench_ingest_result_t *r, char *err,
                  size_t errlen)
{
    orbit_bench_frames_t f;
    int rc = build(c, c->mem_nodes, 3, &f, err, errlen);
    if (rc != ORBIT_OK)
        return rc;
    orbit_arena_t *a = orbit_arena_new(1 << 16);
    orbit_shard_nodes_t *warm = table_new();
    if (!a || !warm) {
        snprintf(err, errlen, "out of memory");
        rc = ORBIT_ENOMEM;
        goto out;
    }
    /* Grow the decode arena to its working size before measuring. */
    feed(warm, &f, 0, f.round_first[1], a);
    orbit_shard_nodes_destroy(&warm);
    malloc_trim(0);
    uint64_t m0 = malloc_bytes(), rss0 = rss_bytes();
    orbit_shard_nodes_t *t = table_new();
    if (!t) {
        snprintf(err, errlen, "out of memory");
        rc = ORBIT_ENOMEM;
        goto out;
    }
    feed(t, &f, 0, f.nframes, a);
    uint64_t m1 = malloc_bytes(), rss1 = rss_bytes();
    size_t count = orbit_shard_nodes_count(t);
    r->mem_nodes = (uint32_t)count;
    r->heap_per_node = heap_per_node(orbit_shard_nodes_heap_bytes(t), count);
    if (count && !SANITIZED) {
        r->malloc_per_node = m1 > m0 ? (double)(m1 - m0) / (double)count : 0;
        r->rss_per_node = rss1 > rss0 ? (double)(rss1 - rss0) / (double)count : 0;
    }
    orbit_shard_nodes_destroy(&t);
out:
    orbit_arena_destroy(&a);
    orbit_bench_frames_free(&f);
    return rc;
}

/* ------------------------------------------------------------ over tcp */

typedef struct {
    zsock_t *sock;
    const orbit_bench_frames_t *f;
    uint32_t window;
    orbit_arena_t *a;
    orbit_rx_t rx;
    uint64_t sent, acked; /* frames */
    uint64_t acked_deltas, not_applied;
    int64_t last_ack_ms;
    double last_ack_s;
    volatile const int *stop;
} sender_t;

/* Wait up to timeout_ms for acks and account for all that are queued. */
static void pump(sender_t *s, int timeout_ms)
{
    zmq_pollitem_t it = {zsock_resolve(s->sock), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return;
    while (orbit_wire_recv(s->sock, 0, &s->rx) == ORBIT_OK) {
        ProtobufCMessage *m;
        orbit_arena_reset(s->a);
        if (orbit_wire_decode(orbit_rx_data(&s->rx), orbit_rx_size(&s->rx), ORBIT_MSG_LEAF_ACK,
                              orbit_arena_allocator(s->a), NULL, &m) != ORBIT_OK)
            continue;
        const Orbit__LeafAck *ack = (const Orbit__LeafAck *)m;
        if (ack->batch_id < 1 || ack->batch_id > s->f->nframes)
            continue;
        uint32_t n = s->f->frames[ack->batch_id - 1].deltas;
        uint32_t bad = ack->verdict == ORBIT__VERDICT__OK ? (uint32_t)ack->n_nodes : n;
        s->acked++;
        s->acked_deltas += n - bad;
        s->not_applied += bad;
        s->last_ack_ms = orbit_bench_now_ms();
        s->last_ack_s = now_s();
    }
}

static bool silent(const sender_t *s)
{
    return orbit_bench_now_ms() - s->last_ack_ms > ACK_SILENCE_MS || (s->stop && *s->stop);
}

static int send_frame(sender_t *s, size_t i)
{
    while (s->sent - s->acked >= s->window) {
        pump(s, 100);
        if (silent(s))
            return ORBIT_ETIMEDOUT;
    }
    const orbit_bench_frame_t *fr = &s->f->frames[i];
    while (zmq_send(zsock_resolve(s->sock), fr->buf, fr->len, ZMQ_DONTWAIT) < 0) {
        if (errno != EAGAIN)
            return ORBIT_EIO;
        pump(s, 10);
        if (silent(s))
            return ORBIT_ETIMEDOUT;
    }
    s->sent++;
    return ORBIT_OK;
}

static int drain(sender_t *s)
{
    while (s->acked < s->sent) {
        pump(s, 100);
        if (silent(s))
            return ORBIT_ETIMEDOUT;
    }
    return ORBIT_OK;
}

static void shard_child(int port, int dead_port)
{
    /* The parent's handlers only set its stop flag: let SIGTERM end us. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    orbit_log_level = ORBIT_LOG_WARN;
    char listen[64], up[64], err[256];
    snprintf(listen, sizeof listen, "tcp://127.0.0.1:%d", port);
    snprintf(up, sizeof up, "tcp://127.0.0.1:%d", dead_port);
    orbit_shard_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.id, sizeof cfg.id, "bench-rack");
    cfg.tier = 1;
    cfg.listen = listen;
    cfg.upstream = up; /* nobody listens: reports are dropped, as they may be */
    cfg.interval_ms = 1000;
    orbit_shard_t *s = orbit_shard_new(&cfg, err, sizeof err);
    if (!s) {
        fprintf(stderr, "orbit-bench: shard: %s\n", err);
        _exit(1);
    }
    orbit_shard_run(s);
    orbit_shard_destroy(&s);
    _exit(0);
}

static int over_socket(const orbit_bench_ingest_cfg_t *c, orbit_bench_ingest_result_t *r, char *err,
                       size_t errlen)
{
    orbit_bench_frames_t f;
    int rc = build(c, c->nodes, c->rounds, &f, err, errlen);
    if (rc != ORBIT_OK)
        return rc;
    int ports[2];
    sender_t s;
    memset(&s, 0, sizeof s);
    orbit_rx_init(&s.rx);
    orbit_bench_proc_t child;
    memset(&child, 0, sizeof child);
    snprintf(child.name, sizeof child.name, "shard");
    if (orbit_bench_free_ports(ports, 2) != ORBIT_OK) {
        snprintf(err, errlen, "no free loopback port");
        rc = ORBIT_EIO;
        goto out;
    }
    /* Fork before this process has a ZeroMQ context. */
    fflush(stdout);
    child.pid = fork();
    if (child.pid < 0) {
        child.pid = 0;
        snprintf(err, errlen, "fork: %s", strerror(errno));
        rc = ORBIT_EIO;
        goto out;
    }
    if (child.pid == 0)
        shard_child(ports[0], ports[1]);

    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", ports[0]);
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_LEAF);
    s.sock = orbit_sock_connect(ZMQ_DEALER, ep, &o, err, errlen);
    s.a = orbit_arena_new(1 << 16);
    if (!s.sock || !s.a) {
        rc = ORBIT_EIO;
        goto out;
    }
    s.f = &f;
    s.window = c->window;
    s.stop = c->stop;
    /* Round 0 (every node's first full state) is not timed; the first ack
     * may wait for the daemon to start. */
    s.last_ack_ms = orbit_bench_now_ms() + START_WAIT_MS;
    for (size_t i = 0; i < f.round_first[1] && rc == ORBIT_OK; i++)
        rc = send_frame(&s, i);
    if (rc == ORBIT_OK)
        rc = drain(&s);
    if (rc != ORBIT_OK) {
        snprintf(err, errlen, "the shard daemon did not acknowledge the first round");
        goto out;
    }
    uint64_t base_deltas = s.acked_deltas, base_bad = s.not_applied;
    uint64_t base_bytes = 0, fulls = 0, msgs = 0;
    double t0 = now_s();
    for (uint32_t pass = 0, round = 1;
         rc == ORBIT_OK && now_s() - t0 < c->seconds && !(c->stop && *c->stop); round++) {
        if (round == f.rounds) {
            round = 0;
            pass++;
        }
        if (pass > 0) {
            rc = orbit_bench_frames_stamp(&f, round, STAMP_BASE + pass,
                                          STAMP_BASE + (uint64_t)pass * f.rounds + round);
            if (rc != ORBIT_OK) {
                snprintf(err, errlen, "cannot re-stamp frames");
                break;
            }
        }
        for (size_t i = f.round_first[round]; i < f.round_first[round + 1] && rc == ORBIT_OK; i++) {
            rc = send_frame(&s, i);
            base_bytes += f.frames[i].len;
            fulls += f.frames[i].fulls;
            msgs += f.frames[i].deltas;
        }
    }
    if (rc == ORBIT_OK)
        rc = drain(&s);
    if (rc != ORBIT_OK) {
        if (!*err)
            snprintf(err, errlen, "acks stopped arriving (%s)", orbit_strerror(rc));
        goto out;
    }
    double dt = s.last_ack_s - t0;
    r->runs = 1;
    r->deltas_per_run = s.acked_deltas - base_deltas;
    r->not_applied = s.not_applied - base_bad;
    r->seconds = dt;
    r->rate_median = r->rate_min = r->rate_max = dt > 0 ? (double)r->deltas_per_run / dt : 0;
    r->full_share = msgs ? (double)fulls / (double)msgs : 0;
    r->bytes_per_message = msgs ? (double)base_bytes / (double)msgs : 0;
out:
    zsock_destroy(&s.sock);
    orbit_rx_close(&s.rx);
    orbit_arena_destroy(&s.a);
    orbit_bench_proc_stop_all(&child, 1, 5000);
    orbit_bench_frames_free(&f);
    return rc;
}

/* ------------------------------------------------------------------ API */

int orbit_bench_ingest_run(const orbit_bench_ingest_cfg_t *c, orbit_bench_ingest_result_t *r,
                           char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (!c->nodes || !c->batch || c->rounds < 2 || !c->full_every || !c->window) {
        snprintf(err, errlen, "nodes, batch, window and full-every must be positive, rounds >= 2");
        return ORBIT_EINVAL;
    }
    if (c->socket)
        return over_socket(c, r, err, errlen);
    int rc = throughput(c, r, err, errlen);
    if (rc == ORBIT_OK && c->mem_nodes)
        rc = memory(c, r, err, errlen);
    return rc;
}

void orbit_bench_ingest_print(const orbit_bench_ingest_cfg_t *c,
                              const orbit_bench_ingest_result_t *r, bool json)
{
    const char *mode = c->socket ? "socket" : "in-process";
    if (json) {
        printf("{\"benchmark\":\"ingest\",\"mode\":\"%s\",\"nodes\":%u,\"batch\":%u,"
               "\"rounds\":%u,\"full_every\":%u,\"runs\":%u,\"deltas_per_run\":%llu,"
               "\"deltas_per_s\":{\"median\":%.0f,\"min\":%.0f,\"max\":%.0f},"
               "\"full_share\":%.4f,\"bytes_per_message\":%.1f,\"not_applied\":%llu",
               mode, c->nodes, c->batch, c->rounds, c->full_every, r->runs,
               (unsigned long long)r->deltas_per_run, r->rate_median, r->rate_min, r->rate_max,
               r->full_share, r->bytes_per_message, (unsigned long long)r->not_applied);
        if (c->socket)
            printf(",\"seconds\":%.3f", r->seconds);
        if (r->mem_nodes)
            printf(",\"memory\":{\"nodes\":%u,\"heap_bytes_per_node\":%.0f,"
                   "\"malloc_bytes_per_node\":%.0f,\"rss_bytes_per_node\":%.0f,"
                   "\"sanitized\":%s}",
                   r->mem_nodes, r->heap_per_node, r->malloc_per_node, r->rss_per_node,
                   SANITIZED ? "true" : "false");
        printf(",\"target\":{\"deltas_per_s\":500000,\"bytes_per_node\":1024}}\n");
        return;
    }
    printf("shard ingest (%s%s): %u nodes, frames of %u, %u rounds, full state every %u\n", mode,
           c->socket ? ", tcp loopback, shard daemon in a child process" : ", one thread", c->nodes,
           c->batch, c->rounds, c->full_every);
    if (c->socket)
        printf("  deltas/s     %.0f  (%llu acknowledged in %.2f s)\n", r->rate_median,
               (unsigned long long)r->deltas_per_run, r->seconds);
    else
        printf("  deltas/s     median %.0f  (min %.0f, max %.0f; %u runs of %llu)\n",
               r->rate_median, r->rate_min, r->rate_max, r->runs,
               (unsigned long long)r->deltas_per_run);
    printf("  messages     %.1f %% full states, %.0f bytes each on the wire, %llu not applied\n",
           100.0 * r->full_share, r->bytes_per_message, (unsigned long long)r->not_applied);
    printf("  target       >= 500000 deltas/s on one core: %s\n",
           r->rate_median >= 500000 ? "met" : "MISSED");
    if (r->mem_nodes) {
        printf("  memory       %u nodes: %.0f B/node (orbit_shard_nodes_heap_bytes)", r->mem_nodes,
               r->heap_per_node);
        if (SANITIZED)
            printf(", malloc/RSS n/a (sanitizer build)\n");
        else
            printf(", %.0f B/node malloc'd (mallinfo2), %.0f B/node RSS growth\n",
                   r->malloc_per_node, r->rss_per_node);
        double worst =
            r->malloc_per_node > r->heap_per_node ? r->malloc_per_node : r->heap_per_node;
        printf("  target       <= 1024 B/node: %s\n", worst <= 1024 ? "met" : "MISSED");
    }
}
