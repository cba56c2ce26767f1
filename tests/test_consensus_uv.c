/* test_consensus_uv: three (and a fourth) replicas of the consensus seam in
 * one process, on one uv loop, over TCP on 127.0.0.1 with data directories
 * under a temporary directory and fsync on: bootstrap and election, 1000
 * proposals, failover when the leader closes, a restart that catches up
 * without re-applying, membership add/assign/remove, leadership transfer,
 * and the configuration and lifecycle errors. Every wait is bounded.
 *
 * `test_consensus_uv bench [SECONDS [SNAPSHOT_THRESHOLD]]` instead measures entries/s and latency
 * at 1, 16 and 256 proposals in flight (256-byte entries). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "consensus.h"
#include "consensus_tfsm.h"
#include "orbit_err.h"
#include "orbit_log.h"

#define N_NODES 4
#define ENTRY   61 /* not a multiple of 8: exercises the entry framing */
#define WAIT_MS 20000
/* Liveness, not the 1.5 s target (orbit-bench ledger measures that): the
 * three replicas share one loop here, under ASan, beside other tests on two
 * cores; one election in many rounds took 3,073 ms in such a run. */
#define FAILOVER_LIMIT_MS 4500

typedef struct cluster cluster_t;

typedef struct {
    cluster_t *cl;
    unsigned id;
    char addr[32];
    char dir[300];
    tfsm_t fsm; /* outlives close/reopen: stands for the durable LMDB state */
    orbit_consensus_t *c;
    bool closed;
    /* on_state observations */
    unsigned state_calls;
    bool is_leader;
    uint64_t term;
    unsigned leader_id;
} node_t;

struct cluster {
    uv_loop_t loop;
    uv_timer_t tick;
    char root[256];
    node_t nodes[N_NODES];
    orbit_consensus_peer_t peers[3];
    unsigned threshold, trailing;
    uint64_t snap_bytes;
    /* proposals */
    uint64_t next_seq;
    unsigned ok, failed, bad_result, bad_status, outstanding;
    uint64_t acked[4096]; /* indexes of acknowledged proposals, in order */
    /* membership / barrier callbacks */
    int cb_status;
    bool cb_done;
};

/* ---- harness --------------------------------------------------------- */

static unsigned free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tick_cb(uv_timer_t *t)
{
    (void)t; /* only wakes the loop so bounded waits can check the clock */
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

typedef bool (*pred_fn)(cluster_t *cl, void *arg);

/* Run the loop until pred holds or ms elapse; returns whether it held. */
static bool run_until(cluster_t *cl, pred_fn pred, void *arg, unsigned ms)
{
    uint64_t deadline = now_ms() + ms;
    while (!pred(cl, arg)) {
        if (now_ms() >= deadline)
            return false;
        uv_run(&cl->loop, UV_RUN_ONCE);
    }
    return true;
}

static void on_state(void *ctx, bool is_leader, uint64_t term, unsigned leader_id)
{
    node_t *n = ctx;
    n->state_calls++;
    n->is_leader = is_leader;
    n->term = term;
    n->leader_id = leader_id;
}

static int node_start(cluster_t *cl, unsigned i, bool with_peers, char *err, size_t errlen)
{
    node_t *n = &cl->nodes[i];
    orbit_consensus_cfg_t cfg = {
        .id = n->id,
        .address = n->addr,
        .data_dir = n->dir,
        .peers = with_peers ? cl->peers : NULL,
        .n_peers = with_peers ? 3 : 0,
        .snapshot_threshold = cl->threshold,
        .snapshot_trailing = cl->trailing,
        .snapshot_bytes = cl->snap_bytes,
        .fsm = &tfsm_ops,
        .fsm_ctx = &n->fsm,
        .on_state = on_state,
        .state_ctx = n,
    };
    int rv = orbit_consensus_new(&cfg, &cl->loop, &n->c, err, errlen);
    if (rv != 0)
        return rv;
    n->closed = false;
    return orbit_consensus_start(n->c, err, errlen);
}

static void node_closed(void *ctx)
{
    node_t *n = ctx;
    n->closed = true;
}

static bool is_closed(cluster_t *cl, void *arg)
{
    (void)cl;
    return ((node_t *)arg)->closed;
}

static void node_stop(cluster_t *cl, unsigned i)
{
    node_t *n = &cl->nodes[i];
    if (n->c == NULL)
        return;
    orbit_consensus_close(n->c, node_closed, n);
    n->c = NULL;
    assert_true(run_until(cl, is_closed, n, WAIT_MS));
}

static cluster_t *cluster_new(unsigned threshold, unsigned trailing)
{
    cluster_t *cl = calloc(1, sizeof *cl);
    assert_non_null(cl);
    snprintf(cl->root, sizeof cl->root, "/tmp/orbit-consensus-XXXXXX");
    assert_non_null(mkdtemp(cl->root));
    assert_int_equal(uv_loop_init(&cl->loop), 0);
    assert_int_equal(uv_timer_init(&cl->loop, &cl->tick), 0);
    assert_int_equal(uv_timer_start(&cl->tick, tick_cb, 10, 10), 0);
    cl->threshold = threshold;
    cl->trailing = trailing;
    for (unsigned i = 0; i < N_NODES; i++) {
        node_t *n = &cl->nodes[i];
        n->cl = cl;
        n->id = i + 1;
        snprintf(n->addr, sizeof n->addr, "127.0.0.1:%u", free_port());
        snprintf(n->dir, sizeof n->dir, "%s/node%u", cl->root, n->id);
        if (i < 3) {
            cl->peers[i].id = n->id;
            cl->peers[i].address = n->addr;
        }
    }
    return cl;
}

static void cluster_start3(cluster_t *cl)
{
    char err[256];
    for (unsigned i = 0; i < 3; i++)
        if (node_start(cl, i, true, err, sizeof err) != 0)
            fail_msg("node %u: %s", i + 1, err);
}

static void close_handle_cb(uv_handle_t *h)
{
    (void)h;
}

static void cluster_free(cluster_t *cl)
{
    for (unsigned i = 0; i < N_NODES; i++)
        node_stop(cl, i);
    uv_close((uv_handle_t *)&cl->tick, close_handle_cb);
    uv_run(&cl->loop, UV_RUN_DEFAULT);
    /* Every handle the seam opened is closed: the loop closes cleanly. */
    assert_int_equal(uv_loop_close(&cl->loop), 0);
    nftw(cl->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(cl);
}

/* Index of the single running leader, or N_NODES. */
static unsigned leader_index(cluster_t *cl)
{
    unsigned found = N_NODES, count = 0;
    for (unsigned i = 0; i < N_NODES; i++)
        if (cl->nodes[i].c != NULL && orbit_consensus_is_leader(cl->nodes[i].c)) {
            found = i;
            count++;
        }
    return count == 1 ? found : N_NODES;
}

static bool has_leader(cluster_t *cl, void *arg)
{
    (void)arg;
    return leader_index(cl) < N_NODES;
}

static unsigned wait_leader(cluster_t *cl)
{
    assert_true(run_until(cl, has_leader, NULL, WAIT_MS));
    return leader_index(cl);
}

static void done_cb(void *ctx, int status, uint64_t index, void *result)
{
    cluster_t *cl = ctx;
    cl->outstanding--;
    if (status != 0) {
        cl->failed++;
        /* Only an unknown outcome may be reported for a submitted entry. */
        if (status != ORBIT_ELEADERLOST && status != ORBIT_ESHUTDOWN)
            cl->bad_status++;
        assert_null(result);
        return;
    }
    if (cl->ok < sizeof cl->acked / sizeof cl->acked[0])
        cl->acked[cl->ok] = index;
    cl->ok++;
    /* The result apply produced on this replica, routed to its proposer. */
    if (result == NULL || *(uint64_t *)result != index)
        cl->bad_result++;
    free(result);
}

static int propose_one(cluster_t *cl, unsigned i, size_t len)
{
    uint8_t buf[512];
    assert_true(len >= 8 && len <= sizeof buf);
    put64(buf, cl->next_seq);
    for (size_t k = 8; k < len; k++)
        buf[k] = (uint8_t)(cl->next_seq * 7 + k);
    int rv = orbit_consensus_propose(cl->nodes[i].c, buf, len, done_cb, cl);
    if (rv == 0) {
        cl->next_seq++;
        cl->outstanding++;
    }
    return rv;
}

static bool none_outstanding(cluster_t *cl, void *arg)
{
    (void)arg;
    return cl->outstanding == 0;
}

static void propose_n_of(cluster_t *cl, unsigned i, unsigned count, size_t len)
{
    unsigned ok0 = cl->ok, failed0 = cl->failed;
    for (unsigned k = 0; k < count; k++)
        assert_int_equal(propose_one(cl, i, len), 0);
    assert_true(run_until(cl, none_outstanding, NULL, 60000));
    assert_int_equal(cl->failed, failed0);
    assert_int_equal(cl->bad_result, 0);
    assert_int_equal(cl->ok - ok0, count);
}

static void propose_n(cluster_t *cl, unsigned i, unsigned count)
{
    propose_n_of(cl, i, count, ENTRY);
}

/* Every running node's state machine equals node `ref`'s. */
static bool converged(cluster_t *cl, void *arg)
{
    const tfsm_t *ref = &cl->nodes[*(unsigned *)arg].fsm;
    for (unsigned i = 0; i < N_NODES; i++) {
        const tfsm_t *s = &cl->nodes[i].fsm;
        if (cl->nodes[i].c == NULL)
            continue;
        if (s->hash != ref->hash || s->count != ref->count || s->applied != ref->applied)
            return false;
    }
    return true;
}

static void assert_converged(cluster_t *cl, unsigned ref)
{
    assert_true(run_until(cl, converged, &ref, WAIT_MS));
    for (unsigned i = 0; i < N_NODES; i++)
        assert_int_equal(cl->nodes[i].fsm.reapplied, 0);
}

static void op_cb(void *ctx, int status)
{
    cluster_t *cl = ctx;
    cl->cb_status = status;
    cl->cb_done = true;
}

static bool op_finished(cluster_t *cl, void *arg)
{
    (void)arg;
    return cl->cb_done;
}

/* Run a request started with op_cb to completion; returns its status. */
static int wait_op(cluster_t *cl, int start_rv)
{
    if (start_rv != 0)
        return start_rv;
    assert_true(run_until(cl, op_finished, NULL, WAIT_MS));
    cl->cb_done = false;
    return cl->cb_status;
}

/* ---- tests ----------------------------------------------------------- */

/* Every replica's latest on_state names the leader *arg: a follower that
 * timed out under load (a pre-vote, no new term) reported no leader for a
 * moment, and the poll reports the leader again within its period. */
static bool leader_reported(cluster_t *cl, void *arg)
{
    unsigned l = *(unsigned *)arg;
    for (unsigned i = 0; i < 3; i++)
        if (cl->nodes[i].leader_id != cl->nodes[l].id)
            return false;
    return true;
}

static void test_uv_bootstrap_propose_1000(void **state)
{
    cluster_t *cl = cluster_new(0, 0);
    orbit_consensus_status_t st;
    const char *hint = NULL;
    unsigned l, f, hint_id = 0;
    (void)state;

    cluster_start3(cl);
    l = wait_leader(cl);
    f = (l + 1) % 3;
    propose_n(cl, l, 1000);
    assert_converged(cl, l);
    assert_int_equal(cl->nodes[l].fsm.count, 1000);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(cl->nodes[i].fsm.index_of[999], cl->nodes[l].fsm.applied);

    /* A follower refuses and names the leader. */
    assert_int_equal(propose_one(cl, f, ENTRY), ORBIT_ENOTLEADER);
    assert_int_equal(orbit_consensus_leader(cl->nodes[f].c, &hint_id, &hint), 0);
    assert_int_equal(hint_id, cl->nodes[l].id);
    assert_string_equal(hint, cl->nodes[l].addr);
    assert_int_equal(orbit_consensus_barrier(cl->nodes[f].c, op_cb, cl), ORBIT_ENOTLEADER);
    /* Bad proposals. */
    assert_int_equal(orbit_consensus_propose(cl->nodes[l].c, "x", 0, done_cb, cl), ORBIT_EINVAL);
    assert_int_equal(orbit_consensus_propose(cl->nodes[l].c, "x", 1, NULL, cl), ORBIT_EINVAL);
    assert_int_equal(
        orbit_consensus_propose(cl->nodes[l].c, "x", ORBIT_CONSENSUS_ENTRY_MAX + 1, done_cb, cl),
        ORBIT_ETOOBIG);
    /* Linearizable read point. */
    assert_int_equal(wait_op(cl, orbit_consensus_barrier(cl->nodes[l].c, op_cb, cl)), 0);

    /* Status agrees everywhere; the leader view reached every on_state. */
    assert_int_equal(orbit_consensus_status(cl->nodes[l].c, &st), 0);
    assert_int_equal(st.state, ORBIT_CONSENSUS_LEADER);
    assert_int_equal(st.n_servers, 3);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(st.servers[i].role, ORBIT_CONSENSUS_VOTER);
    assert_true(st.commit_index >= cl->nodes[l].fsm.applied);
    assert_int_equal(st.fsm_applied, 1000);
    assert_int_equal(st.fsm_skipped, 0);
    /* The leader's own appends started after its AppendEntries went out. */
    assert_true(st.appends_deferred >= 1);
    uint64_t term = st.term;
    assert_true(cl->nodes[l].is_leader);
    assert_true(run_until(cl, leader_reported, &l, WAIT_MS));
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(orbit_consensus_status(cl->nodes[i].c, &st), 0);
        assert_int_equal(st.leader_id, cl->nodes[l].id);
        assert_string_equal(st.leader_address, cl->nodes[l].addr);
        assert_int_equal(st.term, term);
        assert_true(cl->nodes[i].state_calls >= 1);
        assert_int_equal(cl->nodes[i].leader_id, cl->nodes[l].id);
        assert_int_equal(cl->nodes[i].term, term);
        if (i != l)
            assert_int_equal(st.appends_deferred, 0); /* followers append at once */
    }
    cluster_free(cl);
}

typedef struct {
    unsigned except;
} other_arg_t;

static bool other_leader(cluster_t *cl, void *arg)
{
    unsigned l = leader_index(cl);
    return l < N_NODES && l != ((other_arg_t *)arg)->except;
}

/* Close the leader with proposals in flight: each completes exactly once
 * before the close callback (committed, or an unknown outcome); another
 * leader is elected within the bound and commits; every acknowledged entry
 * is on the survivors; the closed replica restarts from its directory,
 * replays its log with every already-applied entry skipped, and catches
 * up. */
static void test_uv_failover_and_restart(void **state)
{
    /* Snapshots every 64 entries, but the log keeps 1024 behind each, so the
     * restarted replica catches up from the log (the snapshot path is
     * test_uv_membership_and_transfer's and the fixture's). */
    cluster_t *cl = cluster_new(64, 1024);
    orbit_consensus_status_t st;
    other_arg_t arg;
    char err[256];
    unsigned l, nl;
    uint64_t t0, t_elected, t_commit;
    (void)state;

    cluster_start3(cl);
    l = wait_leader(cl);
    propose_n(cl, l, 300);
    /* A few more in small batches land after the last snapshot (300 at once
     * may commit as one batch and be snapshotted whole), so a restart has
     * log entries to replay. */
    for (unsigned k = 0; k < 5; k++)
        propose_n(cl, l, 1);
    assert_converged(cl, l);
    assert_int_equal(orbit_consensus_status(cl->nodes[l].c, &st), 0);
    assert_true(st.snapshot_index > 0); /* threshold 64: snapshots exist */
    assert_true(st.snapshot_index < st.last_applied);
    uint64_t snap_before = st.snapshot_index;

    unsigned ok0 = cl->ok, failed0 = cl->failed;
    uint64_t seq0 = cl->next_seq;
    for (unsigned k = 0; k < 50; k++)
        assert_int_equal(propose_one(cl, l, ENTRY), 0);
    t0 = now_ms();
    node_stop(cl, l);
    unsigned acked = cl->ok - ok0, unknown = cl->failed - failed0;
    assert_int_equal(cl->outstanding, 0);
    assert_int_equal(acked + unknown, 50);
    assert_int_equal(cl->bad_status, 0);
    arg.except = l;
    assert_true(run_until(cl, other_leader, &arg, FAILOVER_LIMIT_MS + 2000));
    t_elected = now_ms() - t0;
    nl = leader_index(cl);
    assert_int_equal(propose_one(cl, nl, ENTRY), 0);
    assert_true(run_until(cl, none_outstanding, NULL, WAIT_MS));
    t_commit = now_ms() - t0;
    print_message("failover: new leader after %llu ms, next commit after %llu ms\n",
                  (unsigned long long)t_elected, (unsigned long long)t_commit);
    assert_true(t_elected <= FAILOVER_LIMIT_MS);
    assert_true(t_commit <= FAILOVER_LIMIT_MS);
    assert_true(cl->nodes[nl].is_leader || orbit_consensus_is_leader(cl->nodes[nl].c));

    propose_n(cl, nl, 200);
    assert_converged(cl, nl);
    /* Every proposal acknowledged before the close is on the survivors;
     * those with an unknown outcome may or may not have committed. */
    for (unsigned k = ok0; k < ok0 + acked; k++) {
        bool found = false;
        for (uint64_t q = seq0; q < seq0 + 50; q++)
            found |= cl->nodes[nl].fsm.index_of[q] == cl->acked[k];
        assert_true(found);
    }
    uint64_t total = cl->nodes[nl].fsm.count;
    uint64_t committed = total - 305 - 201;
    assert_true(committed >= acked && committed <= 50);
    print_message("closed with 50 in flight: %u acknowledged, %u unknown, %llu committed\n", acked,
                  unknown, (unsigned long long)committed);

    /* Restart the old leader with its durable state machine. */
    uint64_t applied_before = cl->nodes[l].fsm.applied;
    uint64_t count_before = cl->nodes[l].fsm.count;
    if (node_start(cl, l, true, err, sizeof err) != 0)
        fail_msg("restart: %s", err);
    assert_converged(cl, nl);
    assert_int_equal(cl->nodes[l].fsm.count, total);
    assert_int_equal(orbit_consensus_status(cl->nodes[l].c, &st), 0);
    print_message("restart: applied %llu before, skipped %llu replayed entries and %llu "
                  "snapshot(s), applied %llu new\n",
                  (unsigned long long)applied_before, (unsigned long long)st.fsm_skipped,
                  (unsigned long long)st.fsm_restore_skipped, (unsigned long long)st.fsm_applied);
    assert_true(st.fsm_restore_skipped >= 1); /* its last snapshot is older than its state */
    /* and so are the entries after it */
    assert_true(st.fsm_skipped >= 1);
    assert_true(st.fsm_skipped >= applied_before - snap_before);
    assert_int_equal(st.fsm_restored, 0);
    assert_int_equal(st.fsm_applied, total - count_before); /* only what it lacked */
    assert_int_equal(cl->nodes[l].fsm.reapplied, 0);
    cluster_free(cl);
}

/* Propose rounds x per entries of len bytes, one round at a time (raft
 * judges its snapshot threshold after each batch it applies). */
static void propose_rounds(cluster_t *cl, unsigned i, unsigned rounds, unsigned per, size_t len)
{
    for (unsigned r = 0; r < rounds; r++)
        propose_n_of(cl, i, per, len);
}

static bool snapshot_past(cluster_t *cl, void *arg)
{
    const unsigned *want = arg; /* {node, index} */
    orbit_consensus_status_t st;
    return orbit_consensus_status(cl->nodes[want[0]].c, &st) == 0 && st.snapshot_index > want[1];
}

/* Snapshots by bytes: with raft's entry threshold at its default (16384),
 * 600 entries of 500 bytes never reach it, and with the default byte budget
 * (64 MiB) no snapshot is taken; with a budget of 32 KiB the same load
 * brings snapshots forward on every replica, the log since the last one
 * stays within about a budget, and the replicas agree. (A follower that
 * restarts behind the leader's snapshot catches up by InstallSnapshot:
 * test_uv_membership_and_transfer.) */
static void test_uv_snapshot_by_bytes(void **state)
{
    orbit_consensus_status_t st;
    (void)state;

    cluster_t *cl = cluster_new(0, 0);
    cluster_start3(cl);
    unsigned l = wait_leader(cl);
    propose_rounds(cl, l, 20, 30, 500);
    assert_converged(cl, l);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(orbit_consensus_status(cl->nodes[i].c, &st), 0);
        assert_int_equal(st.snapshot_index, 0);
        assert_int_equal(st.snapshots_by_bytes, 0);
        assert_true(st.log_bytes >= 600 * 500);
    }
    cluster_free(cl);

    cl = cluster_new(0, 0);
    cl->snap_bytes = 32 << 10;
    cluster_start3(cl);
    l = wait_leader(cl);
    propose_rounds(cl, l, 20, 30, 500);
    assert_converged(cl, l);
    assert_int_equal(cl->nodes[l].fsm.count, 600);
    for (unsigned i = 0; i < 3; i++) {
        unsigned want[2] = {i, 400};
        assert_true(run_until(cl, snapshot_past, want, WAIT_MS));
        assert_int_equal(orbit_consensus_status(cl->nodes[i].c, &st), 0);
        /* ~300 KB in rounds of ~15 KB: a snapshot every third round. */
        assert_true(st.snapshots_by_bytes >= 4);
        assert_true(st.log_bytes < (32 << 10) + 30 * 512);
    }
    cluster_free(cl);
}

static void test_uv_membership_and_transfer(void **state)
{
    /* Small snapshot settings: the new server is too far behind for the
     * log and receives a snapshot over TCP. */
    cluster_t *cl = cluster_new(16, 4);
    orbit_consensus_status_t st;
    char err[256];
    unsigned l, target;
    orbit_consensus_t *lc;
    (void)state;

    cluster_start3(cl);
    l = wait_leader(cl);
    lc = cl->nodes[l].c;
    propose_n(cl, l, 50);

    /* A fourth server starts empty and is added, then promoted. */
    if (node_start(cl, 3, false, err, sizeof err) != 0)
        fail_msg("node 4: %s", err);
    assert_int_equal(orbit_consensus_add(lc, 4, cl->nodes[1].addr, op_cb, cl), ORBIT_EINVAL);
    assert_int_equal(orbit_consensus_add(lc, 0, cl->nodes[3].addr, op_cb, cl), ORBIT_EINVAL);
    assert_int_equal(orbit_consensus_add(lc, 4, "nohost", op_cb, cl), ORBIT_EINVAL);
    assert_int_equal(wait_op(cl, orbit_consensus_add(lc, 4, cl->nodes[3].addr, op_cb, cl)), 0);
    assert_int_equal(orbit_consensus_assign(lc, 4, ORBIT_CONSENSUS_SPARE, op_cb, cl),
                     ORBIT_EINVAL); /* already a spare */
    assert_int_equal(orbit_consensus_assign(lc, 9, ORBIT_CONSENSUS_VOTER, op_cb, cl),
                     ORBIT_ENOTFOUND);
    assert_int_equal(wait_op(cl, orbit_consensus_assign(lc, 4, ORBIT_CONSENSUS_VOTER, op_cb, cl)),
                     0);
    assert_int_equal(orbit_consensus_status(lc, &st), 0);
    assert_int_equal(st.n_servers, 4);
    assert_int_equal(st.servers[3].id, 4);
    assert_int_equal(st.servers[3].role, ORBIT_CONSENSUS_VOTER);
    propose_n(cl, l, 50);
    assert_converged(cl, l);
    assert_int_equal(cl->nodes[3].fsm.count, 100);
    assert_int_equal(orbit_consensus_status(cl->nodes[3].c, &st), 0);
    assert_true(st.fsm_restored >= 1);
    assert_true(cl->nodes[3].fsm.restores >= 1);

    /* And removed again. */
    assert_int_equal(orbit_consensus_remove(lc, 9, op_cb, cl), ORBIT_ENOTFOUND);
    assert_int_equal(wait_op(cl, orbit_consensus_remove(lc, 4, op_cb, cl)), 0);
    assert_int_equal(orbit_consensus_status(lc, &st), 0);
    assert_int_equal(st.n_servers, 3);
    node_stop(cl, 3);

    /* Hand leadership to a chosen follower. */
    target = (l + 1) % 3;
    assert_int_equal(orbit_consensus_transfer(lc, cl->nodes[l].id, op_cb, cl), ORBIT_EINVAL);
    assert_int_equal(wait_op(cl, orbit_consensus_transfer(lc, cl->nodes[target].id, op_cb, cl)), 0);
    assert_int_equal(wait_leader(cl), target);
    propose_n(cl, target, 10);
    assert_converged(cl, target);
    cluster_free(cl);
}

static void test_uv_config_errors(void **state)
{
    cluster_t *cl = cluster_new(0, 0);
    orbit_consensus_t *c = (orbit_consensus_t *)1;
    orbit_consensus_peer_t peers[2];
    char err[256];
    node_t *n = &cl->nodes[0];
    orbit_consensus_cfg_t good = {
        .id = 1,
        .address = n->addr,
        .data_dir = n->dir,
        .fsm = &tfsm_ops,
        .fsm_ctx = &n->fsm,
    };
    orbit_consensus_cfg_t cfg;
    orbit_consensus_fsm_t no_apply = tfsm_ops;
    (void)state;

    no_apply.apply = NULL;
#define EXPECT_BAD(mutation, code)                                                                 \
    do {                                                                                           \
        cfg = good;                                                                                \
        mutation;                                                                                  \
        err[0] = '\0';                                                                             \
        assert_int_equal(orbit_consensus_new(&cfg, &cl->loop, &c, err, sizeof err), (code));       \
        assert_null(c);                                                                            \
        assert_true(err[0] != '\0');                                                               \
    } while (0)
    EXPECT_BAD(cfg.id = 0, ORBIT_EINVAL);
    EXPECT_BAD(cfg.id = 256, ORBIT_EINVAL);
    EXPECT_BAD(cfg.address = "127.0.0.1", ORBIT_EINVAL);
    EXPECT_BAD(cfg.address = "127.0.0.1:0", ORBIT_EINVAL);
    EXPECT_BAD(cfg.data_dir = "", ORBIT_EINVAL);
    EXPECT_BAD(cfg.data_dir = "/proc/version", ORBIT_EINVAL);
    EXPECT_BAD(cfg.data_dir = "/nonexistent/a/b", ORBIT_EIO);
    EXPECT_BAD(cfg.fsm = &no_apply, ORBIT_EINVAL);
    EXPECT_BAD((cfg.heartbeat_ms = 500, cfg.election_timeout_ms = 400), ORBIT_EINVAL);
    peers[0] = (orbit_consensus_peer_t){2, cl->nodes[1].addr};
    peers[1] = (orbit_consensus_peer_t){3, cl->nodes[2].addr};
    EXPECT_BAD((cfg.peers = peers, cfg.n_peers = 2), ORBIT_EINVAL); /* self missing */
    peers[1] = (orbit_consensus_peer_t){1, cl->nodes[2].addr};
    EXPECT_BAD((cfg.peers = peers, cfg.n_peers = 2), ORBIT_EINVAL); /* self elsewhere */
    peers[1] = (orbit_consensus_peer_t){2, n->addr};
    EXPECT_BAD((cfg.peers = peers, cfg.n_peers = 2), ORBIT_EINVAL); /* id twice */
#undef EXPECT_BAD

    /* Created and closed without starting; calls in between are refused. */
    assert_int_equal(orbit_consensus_new(&good, &cl->loop, &c, err, sizeof err), 0);
    assert_int_equal(orbit_consensus_propose(c, "abcdefgh", 8, done_cb, cl), ORBIT_ESHUTDOWN);
    assert_false(orbit_consensus_is_leader(c));
    orbit_consensus_close(c, node_closed, n);
    assert_true(run_until(cl, is_closed, n, WAIT_MS));

    /* Bootstrapped once; a later start with another address for the same
     * id is a directory from another cluster, and is refused. */
    cluster_start3(cl);
    (void)wait_leader(cl);
    node_stop(cl, 0);
    snprintf(n->addr, sizeof n->addr, "127.0.0.1:%u", free_port());
    assert_int_equal(node_start(cl, 0, false, err, sizeof err), ORBIT_EINVAL);
    assert_non_null(strstr(err, "belongs to a cluster"));
    assert_int_equal(orbit_consensus_start(n->c, err, sizeof err), ORBIT_EINVAL); /* twice */
    node_stop(cl, 0);

    /* Its address already taken by another replica: listen fails. */
    snprintf(n->addr, sizeof n->addr, "%s", cl->nodes[1].addr);
    snprintf(n->dir, sizeof n->dir, "%s/other", cl->root);
    assert_int_equal(node_start(cl, 0, false, err, sizeof err), ORBIT_EIO);
    node_stop(cl, 0);
    cluster_free(cl);
}

/* ---- bench ----------------------------------------------------------- */

typedef struct {
    cluster_t *cl;
    unsigned leader;
    unsigned depth;
    uint64_t *lat_us;
    size_t n_lat, cap_lat;
    uint64_t *start_ns; /* by slot */
    bool running;
    unsigned in_flight;
    uint64_t done, errors;
} bench_t;

typedef struct {
    bench_t *b;
    unsigned slot;
} bench_slot_t;

static void bench_issue(bench_t *b, bench_slot_t *s);

static void bench_done(void *ctx, int status, uint64_t index, void *result)
{
    bench_slot_t *s = ctx;
    bench_t *b = s->b;
    (void)index;
    free(result);
    b->in_flight--;
    if (status != 0) {
        b->errors++;
    } else {
        b->done++;
        if (b->n_lat < b->cap_lat)
            b->lat_us[b->n_lat++] = (uv_hrtime() - b->start_ns[s->slot]) / 1000u;
    }
    if (b->running)
        bench_issue(b, s);
}

static void bench_issue(bench_t *b, bench_slot_t *s)
{
    uint8_t buf[256];
    put64(buf, b->cl->next_seq++);
    memset(buf + 8, (int)(b->cl->next_seq & 0xff), sizeof buf - 8);
    b->start_ns[s->slot] = uv_hrtime();
    if (orbit_consensus_propose(b->cl->nodes[b->leader].c, buf, sizeof buf, bench_done, s) == 0)
        b->in_flight++;
    else
        b->errors++;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool bench_drained(cluster_t *cl, void *arg)
{
    (void)cl;
    return ((bench_t *)arg)->in_flight == 0;
}

typedef struct {
    uint64_t deadline;
} until_t;

static bool time_passed(cluster_t *cl, void *arg)
{
    (void)cl;
    return now_ms() >= ((until_t *)arg)->deadline;
}

static int bench_main(int argc, char **argv)
{
    unsigned seconds = argc > 2 ? (unsigned)atoi(argv[2]) : 5;
    unsigned threshold = argc > 3 ? (unsigned)atoi(argv[3]) : 0;
    static const unsigned depths[] = {1, 16, 256};
    cluster_t *cl = cluster_new(threshold, 0);
    unsigned l;

    cluster_start3(cl);
    l = wait_leader(cl);
    printf("3 replicas on 127.0.0.1, fsync on, data under %s, 256-byte entries, %u s each, "
           "snapshot threshold %u\n",
           cl->root, seconds, threshold ? threshold : ORBIT_CONSENSUS_SNAPSHOT_THRESHOLD);
    for (size_t d = 0; d < sizeof depths / sizeof depths[0]; d++) {
        bench_t b = {.cl = cl, .leader = l, .depth = depths[d], .running = true};
        bench_slot_t *slots = calloc(b.depth, sizeof *slots);
        until_t until;
        b.cap_lat = 4000000;
        b.lat_us = malloc(b.cap_lat * sizeof *b.lat_us);
        b.start_ns = calloc(b.depth, sizeof *b.start_ns);
        /* one second of warm-up at this depth, not counted */
        for (unsigned k = 0; k < b.depth; k++) {
            slots[k] = (bench_slot_t){&b, k};
            bench_issue(&b, &slots[k]);
        }
        until.deadline = now_ms() + 1000;
        run_until(cl, time_passed, &until, 2000);
        b.done = b.errors = b.n_lat = 0;
        uint64_t t0 = uv_hrtime();
        until.deadline = now_ms() + seconds * 1000u;
        run_until(cl, time_passed, &until, seconds * 1000u + 1000u);
        double elapsed = (double)(uv_hrtime() - t0) / 1e9;
        uint64_t done = b.done;
        b.running = false;
        run_until(cl, bench_drained, &b, WAIT_MS);
        qsort(b.lat_us, b.n_lat, sizeof *b.lat_us, cmp_u64);
        printf("in flight %3u: %8.0f entries/s  p50 %6.2f ms  p99 %6.2f ms  (errors %llu)\n",
               b.depth, (double)done / elapsed,
               b.n_lat ? (double)b.lat_us[b.n_lat / 2] / 1000.0 : 0.0,
               b.n_lat ? (double)b.lat_us[(size_t)((double)b.n_lat * 0.99)] / 1000.0 : 0.0,
               (unsigned long long)b.errors);
        free(b.lat_us);
        free(b.start_ns);
        free(slots);
    }
    cluster_free(cl);
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uv_bootstrap_propose_1000),
        cmocka_unit_test(test_uv_failover_and_restart),
        cmocka_unit_test(test_uv_snapshot_by_bytes),
        cmocka_unit_test(test_uv_membership_and_transfer),
        cmocka_unit_test(test_uv_config_errors),
    };
    signal(SIGPIPE, SIG_IGN);
    orbit_log_level = ORBIT_LOG_WARN;
    if (argc > 1 && strcmp(argv[1], "bench") == 0)
        return bench_main(argc, argv);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
