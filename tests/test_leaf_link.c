/* test_leaf_link: the leaf's delta protocol against a fake shard on an inproc ROUTER. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "leaf_link.h"
#include "orbit_err.h"
#include "orbit_log.h"
#include "orbit_sock.h"
#include "orbit_wire.h"

#define FIRST_SEQ 1000u
#define WAIT_MS   2000

typedef struct {
    zsock_t *router, *dealer;
    orbit_leaf_link_t *link;
    orbit_leaf_link_config_t cfg;
    uint8_t rid[ORBIT_ROUTING_ID_MAX];
    size_t rid_len;
    int64_t now;
    uint32_t node;
    orbit_node_state_t st;
} fixture_t;

static int endpoint_counter;

/* ---------------------------------------------------------------- helpers */

static void base_state(orbit_node_state_t *s)
{
    orbit_node_state_close(s);
    snprintf(s->name, sizeof s->name, "ignored");
    s->incarnation = 7ull << 16;
    s->sampled_ms = 1700000000000;
    s->interval_ms = 1000;
    s->cpu_capacity_m = 4000;
    s->cpu_used_m = 1000;
    s->mem_capacity = 16ll << 30;
    s->mem_used = 4ll << 30;
    s->gpu_capacity = 2;
    s->load1 = 125;
    s->load5 = 100;
    s->load15 = 50;
    s->pressure_available = true;
    s->pressure.cpu_some = 150;
    s->pressure.mem_some = 20;
    assert_int_equal(orbit_node_label_set(s, "rack", "r1"), ORBIT_OK);
    assert_int_equal(orbit_node_label_set(s, "zone", "z1"), ORBIT_OK);
    orbit_gpu_t g[2];
    memset(g, 0, sizeof g);
    for (uint32_t i = 0; i < 2; i++) {
        g[i].index = i;
        snprintf(g[i].uuid, sizeof g[i].uuid, "GPU-%u", i);
        g[i].temp_c = 40;
        g[i].mem_total = 80ull << 30;
        g[i].mem_used = 1ull << 30;
    }
    assert_int_equal(orbit_node_state_set_gpus(s, g, 2), ORBIT_OK);
}

static void make_link(fixture_t *f, const orbit_leaf_link_config_t *cfg)
{
    orbit_leaf_link_destroy(&f->link);
    f->cfg = *cfg;
    f->link = orbit_leaf_link_new(f->dealer, cfg);
    assert_non_null(f->link);
    assert_int_equal(orbit_leaf_link_add_node(f->link, "n1", &f->node), ORBIT_OK);
    assert_int_equal(f->node, 0);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    char ep[64], err[256];
    snprintf(ep, sizeof ep, "inproc://leaf-link-%d", ++endpoint_counter);
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_LEAF);
    f->router = orbit_sock_bind(ZMQ_ROUTER, ep, &o, err, sizeof err);
    assert_non_null(f->router);
    f->dealer = orbit_sock_connect(ZMQ_DEALER, ep, &o, err, sizeof err);
    assert_non_null(f->dealer);
    orbit_leaf_link_config_t cfg;
    orbit_leaf_link_config_default(&cfg);
    cfg.first_seq = FIRST_SEQ;
    cfg.seed = 42;
    make_link(f, &cfg);
    f->now = 1000000;
    orbit_node_state_init(&f->st);
    base_state(&f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_link_destroy(&f->link);
    assert_null(f->link);
    orbit_leaf_link_destroy(&f->link); /* NULL-safe */
    zsock_destroy(&f->dealer);
    zsock_destroy(&f->router);
    orbit_node_state_close(&f->st);
    free(f);
    return 0;
}

static bool wait_readable(zsock_t *s, int timeout_ms)
{
    zmq_pollitem_t it = {zsock_resolve(s), 0, ZMQ_POLLIN, 0};
    return zmq_poll(&it, 1, timeout_ms) == 1;
}

/* The next batch at the fake shard (NULL if none within timeout_ms). Free
 * with protobuf_c_message_free_unpacked. */
static Orbit__LeafBatch *shard_recv(fixture_t *f, int timeout_ms)
{
    if (!wait_readable(f->router, timeout_ms))
        return NULL;
    orbit_rx_t rx;
    orbit_rx_init(&rx);
    assert_int_equal(orbit_wire_recv(f->router, 1, &rx), ORBIT_OK);
    memcpy(f->rid, rx.rid, rx.rid_len);
    f->rid_len = rx.rid_len;
    ProtobufCMessage *m = NULL;
    assert_int_equal(orbit_wire_decode(orbit_rx_data(&rx), orbit_rx_size(&rx), ORBIT_MSG_LEAF_BATCH,
                                       NULL, NULL, &m),
                     ORBIT_OK);
    orbit_rx_close(&rx);
    return (Orbit__LeafBatch *)m;
}

#define batch_free(b) protobuf_c_message_free_unpacked(&(b)->base, NULL)

/* Ack batch_id with a batch verdict and optional per-node exceptions. */
static void shard_ack(fixture_t *f, uint64_t batch_id, Orbit__Verdict verdict,
                      Orbit__NodeAck **nodes, size_t n_nodes)
{
    Orbit__LeafAck ack = ORBIT__LEAF_ACK__INIT;
    ack.batch_id = batch_id;
    ack.verdict = verdict;
    ack.nodes = nodes;
    ack.n_nodes = n_nodes;
    assert_int_equal(orbit_wire_send(f->router, f->rid, f->rid_len, ORBIT_MSG_LEAF_ACK, &ack.base),
                     ORBIT_OK);
}

/* Let the link read the acks sent so far; expect `expect` applied. */
static void leaf_recv(fixture_t *f, int expect)
{
    int got = 0;
    for (int tries = 0; got < expect && tries < 100; tries++) {
        if (!wait_readable(f->dealer, WAIT_MS / 100))
            continue;
        int rc = orbit_leaf_link_recv(f->link, f->now);
        assert_true(rc >= 0);
        got += rc;
    }
    assert_int_equal(got, expect);
}

/* update + flush, expecting exactly one batch with one delta back. */
static Orbit__LeafBatch *send_one(fixture_t *f)
{
    assert_int_equal(orbit_leaf_link_update(f->link, f->node, &f->st), ORBIT_OK);
    assert_int_equal(orbit_leaf_link_flush(f->link, f->now), 1);
    Orbit__LeafBatch *b = shard_recv(f, WAIT_MS);
    assert_non_null(b);
    assert_int_equal(b->n_deltas, 1);
    return b;
}

static bool is_full(const Orbit__NodeDelta *d)
{
    return d->has_full && d->full;
}

static orbit_leaf_link_node_info_t info_of(fixture_t *f, uint32_t idx)
{
    orbit_leaf_link_node_info_t i;
    assert_int_equal(orbit_leaf_link_node_info(f->link, idx, &i), ORBIT_OK);
    return i;
}

/* Send and ack OK; returns the seq. */
static uint64_t send_acked(fixture_t *f)
{
    Orbit__LeafBatch *b = send_one(f);
    uint64_t seq = b->deltas[0]->seq;
    shard_ack(f, b->batch_id, ORBIT__VERDICT__OK, NULL, 0);
    batch_free(b);
    leaf_recv(f, 1);
    return seq;
}

/* ------------------------------------------------------------------ tests */

static void first_send_is_full(void **state)
{
    fixture_t *f = *state;
    Orbit__LeafBatch *b = send_one(f);
    assert_int_equal(b->batch_id, 1);
    const Orbit__NodeDelta *d = b->deltas[0];
    assert_string_equal(d->node, "n1"); /* the node's name, not the state's */
    assert_true(is_full(d));
    assert_int_equal(d->seq, FIRST_SEQ);
    assert_int_equal(d->incarnation, 7ull << 16);
    assert_true(d->has_cpu_capacity_m && d->has_mem_used && d->has_load15);
    assert_true(d->has_gpus_set && d->n_gpus == 2);
    assert_true(d->has_labels_set && d->n_labels == 2);
    assert_non_null(d->pressure);
    const char *reason = NULL;
    assert_int_equal(orbit_node_delta_validate(d, NULL, &reason), ORBIT_OK);
    batch_free(b);
    orbit_leaf_link_node_info_t i = info_of(f, 0);
    assert_int_equal(i.last_sent_seq, FIRST_SEQ);
    assert_int_equal(i.next_seq, FIRST_SEQ + 1);
    assert_false(i.needs_full);
    assert_false(i.queued);
    assert_int_equal(orbit_leaf_link_stats(f->link)->fulls_sent, 1);
    assert_int_equal(orbit_leaf_link_stats(f->link)->batches_sent, 1);
    /* Nothing queued: a flush sends nothing. */
    assert_int_equal(orbit_leaf_link_flush(f->link, f->now), 0);
}

static void unchanged_fields_are_absent_from_deltas(void **state)
{
    fixture_t *f = *state;
    send_acked(f);
    f->st.cpu_used_m = 2500;
    f->st.sampled_ms += 1000;
    Orbit__LeafBatch *b = send_one(f);
    const Orbit__NodeDelta *d = b->deltas[0];
    assert_false(is_full(d));
    assert_int_equal(d->seq, FIRST_SEQ + 1);
    assert_true(d->has_cpu_used_m);
    assert_int_equal(d->cpu_used_m, 2500);
    assert_true(d->has_sampled_ms); /* always there */
    assert_false(d->has_cpu_capacity_m || d->has_mem_capacity || d->has_mem_used);
    assert_false(d->has_load1 || d->has_load5 || d->has_load15 || d->has_interval_ms);
    assert_false(d->has_pressure_available);
    assert_null(d->pressure);
    assert_false(d->has_gpus_set);
    assert_int_equal(d->n_gpus, 0);
    assert_false(d->has_labels_set);
    batch_free(b);

    /* A GPU and a label change carry their whole lists. */
    shard_ack(f, 2, ORBIT__VERDICT__OK, NULL, 0);
    leaf_recv(f, 1);
    f->st.gpus[1].temp_c = 70;
    assert_int_equal(orbit_node_label_set(&f->st, "rack", "r2"), ORBIT_OK);
    b = send_one(f);
    d = b->deltas[0];
    assert_false(d->has_cpu_used_m);
    assert_true(d->has_gpus_set && d->n_gpus == 2);
    assert_int_equal(d->gpus[1]->temp_c, 70);
    assert_true(d->has_labels_set && d->n_labels == 2);
    batch_free(b);
}

/* caps := one capsule id in state st (reason r). */
static void set_caps(orbit_node_state_t *s, const char *id, orbit_capsule_state_t st, const char *r)
{
    orbit_capsule_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.id, sizeof c.id, "%s", id);
    c.state = st;
    snprintf(c.reason, sizeof c.reason, "%s", r);
    c.since_ms = 1700000000000;
    assert_int_equal(orbit_node_state_set_capsules(s, &c, 1), ORBIT_OK);
}

static void capsules_are_copied_and_carried_until_acked(void **state)
{
    fixture_t *f = *state;
    set_caps(&f->st, "m1/web/0", ORBIT_CAPSULE_RUNNING, "");
    Orbit__LeafBatch *b = send_one(f);
    assert_true(b->deltas[0]->has_capsules_set && b->deltas[0]->n_capsules == 1);
    shard_ack(f, b->batch_id, ORBIT__VERDICT__OK, NULL, 0);
    batch_free(b);
    leaf_recv(f, 1);

    /* The link keeps its own copy: the caller replaces (frees) its list after the update,
     * and the send still carries the list as it was at the update. */
    set_caps(&f->st, "m1/web/0", ORBIT_CAPSULE_FAILED, "command not found: x");
    assert_int_equal(orbit_leaf_link_update(f->link, f->node, &f->st), ORBIT_OK);
    set_caps(&f->st, "m1/web/9", ORBIT_CAPSULE_STOPPED, "");
    assert_int_equal(orbit_leaf_link_flush(f->link, f->now), 1);
    b = shard_recv(f, WAIT_MS);
    assert_non_null(b);
    const Orbit__NodeDelta *d = b->deltas[0];
    assert_false(is_full(d));
    assert_true(d->has_capsules_set && d->n_capsules == 1);
    assert_string_equal(d->capsules[0]->id, "m1/web/0");
    assert_int_equal(d->capsules[0]->state, ORBIT__CAPSULE_STATE__CAPSULE_FAILED);
    assert_string_equal(d->capsules[0]->reason, "command not found: x");
    uint64_t unacked_batch = b->batch_id;
    batch_free(b);

    /* Back to the acknowledged list while that send is unacknowledged: the list is still
     * carried (the shard may have applied the failed one). */
    set_caps(&f->st, "m1/web/0", ORBIT_CAPSULE_RUNNING, "");
    b = send_one(f);
    d = b->deltas[0];
    assert_true(d->has_capsules_set && d->n_capsules == 1);
    assert_int_equal(d->capsules[0]->state, ORBIT__CAPSULE_STATE__CAPSULE_RUNNING);
    shard_ack(f, unacked_batch, ORBIT__VERDICT__OK, NULL, 0);
    shard_ack(f, b->batch_id, ORBIT__VERDICT__OK, NULL, 0);
    batch_free(b);
    leaf_recv(f, 2);

    /* Acknowledged and unchanged: no list in the next delta; an empty list is a change. */
    f->st.cpu_used_m += 1;
    b = send_one(f);
    assert_false(b->deltas[0]->has_capsules_set);
    shard_ack(f, b->batch_id, ORBIT__VERDICT__OK, NULL, 0);
    batch_free(b);
    leaf_recv(f, 1);
    assert_int_equal(orbit_node_state_set_capsules(&f->st, NULL, 0), ORBIT_OK);
    b = send_one(f);
    assert_true(b->deltas[0]->has_capsules_set && b->deltas[0]->capsules_set);
    assert_int_equal(b->deltas[0]->n_capsules, 0);
    batch_free(b);

    /* A count without its array is refused. */
    orbit_node_state_t bad = f->st;
    bad.gpus = NULL;
    bad.ngpus = 0;
    bad.ncapsules = 1;
    bad.capsules = NULL;
    assert_int_equal(orbit_leaf_link_update(f->link, f->node, &bad), ORBIT_EINVAL);
}

static void ok_advances_baseline(void **state)
{
    fixture_t *f = *state;
    uint64_t s1 = send_acked(f);
    orbit_leaf_link_node_info_t i = info_of(f, 0);
    assert_int_equal(i.acked_seq, s1);
    assert_int_equal(i.unacked_fields, 0);

    /* seq 2: cpu 1000 -> 2000, not acknowledged yet. */
    f->st.cpu_used_m = 2000;
    Orbit__LeafBatch *b2 = send_one(f);
    uint64_t batch2 = b2->batch_id;
    batch_free(b2);
    assert_int_not_equal(info_of(f, 0).unacked_fields, 0);

    /* seq 3: cpu back to the acknowledged value, memory changes. The cpu
     * field must still be carried: the shard may have applied seq 2. */
    f->st.cpu_used_m = 1000;
    f->st.mem_used = 5ll << 30;
    Orbit__LeafBatch *b3 = send_one(f);
    const Orbit__NodeDelta *d = b3->deltas[0];
    assert_true(d->has_cpu_used_m);
    assert_int_equal(d->cpu_used_m, 1000);
    assert_true(d->has_mem_used);
    assert_false(d->has_load1);
    uint64_t batch3 = b3->batch_id, s3 = d->seq;
    batch_free(b3);

    /* An OK for the older seq does not move the baseline. */
    shard_ack(f, batch2, ORBIT__VERDICT__OK, NULL, 0);
    leaf_recv(f, 1);
    assert_int_equal(info_of(f, 0).acked_seq, s3 - 1);
    assert_int_not_equal(info_of(f, 0).unacked_fields, 0);

    /* The OK for the latest does: the next delta carries only news. */
    shard_ack(f, batch3, ORBIT__VERDICT__OK, NULL, 0);
    leaf_recv(f, 1);
    i = info_of(f, 0);
    assert_int_equal(i.acked_seq, s3);
    assert_int_equal(i.unacked_fields, 0);
    f->st.load1 = 300;
    Orbit__LeafBatch *b4 = send_one(f);
    d = b4->deltas[0];
    assert_true(d->has_load1);
    assert_false(d->has_cpu_used_m || d->has_mem_used);
    batch_free(b4);
    assert_int_equal(orbit_leaf_link_stats(f->link)->acked, 3);
}

static void duplicate_counts_as_ok(void **state)
{
    fixture_t *f = *state;
    Orbit__LeafBatch *b = send_one(f);
    shard_ack(f, b->batch_id, ORBIT__VERDICT__DUPLICATE, NULL, 0);
    batch_free(b);
    leaf_recv(f, 1);
    assert_int_equal(info_of(f, 0).unacked_fields, 0);
    assert_int_equal(orbit_leaf_link_stats(f->link)->duplicate, 1);
    f->st.load5 = 7;
    b = send_one(f);
    assert_false(is_full(b->deltas[0]));
    assert_false(b->deltas[0]->has_cpu_used_m);
    batch_free(b);
}

static void resync_sends_full_at_once(void **state)
{
    fixture_t *f = *state;
    send_acked(f);
    Orbit__LeafBatch *b = send_one(f);
    shard_ack(f, b->batch_id, ORBIT__VERDICT__RESYNC, NULL, 0);
    uint64_t seq = b->deltas[0]->seq;
    batch_free(b);
    assert_false(orbit_leaf_link_needs_send(f->link));
    leaf_recv(f, 1);
    assert_true(orbit_leaf_link_needs_send(f->link));
    assert_true(info_of(f, 0).needs_full);
    /* No new sample needed: the flush right away sends the full state. */
    assert_int_equal(orbit_leaf_link_flush(f->link, f->now), 1);
    assert_false(orbit_leaf_link_needs_send(f->link));
    b = shard_recv(f, WAIT_MS);
    assert_non_null(b);
    assert_true(is_full(b->deltas[0]));
    assert_int_equal(b->deltas[0]->seq, seq + 1);
    batch_free(b);
    assert_int_equal(orbit_leaf_link_stats(f->link)->resync, 1);
}

static void overloaded_rewinds_seq_and_backs_off(void **state)
{
    fixture_t *f = *state;
    send_acked(f);
    f->st.cpu_used_m = 3000;
    Orbit__LeafBatch *b = send_one(f);
    uint64_t seq = b->deltas[0]->seq;
    shard_ack(f, b->batch_id, ORBIT__VERDICT__OVERLOADED, NULL, 0);
    batch_free(b);
    leaf_recv(f, 1);

    orbit_leaf_link_node_info_t i = info_of(f, 0);
    assert_int_equal(i.next_seq, seq); /* rewound: the shard sees no gap */
    assert_int_equal(i.overloads, 1);
    /* n = 1: base x 2 = 2000 ms, x [0.5, 1.5) */
    int64_t wait = i.backoff_until_ms - f->now;
    assert_true(wait >= 1000 && wait < 3000);
    assert_true(i.queued);

    /* During back-off nothing goes out, even with a new sample. */
    f->now += 500;
    f->st.mem_used = 6ll << 30;
    assert_int_equal(orbit_leaf_link_update(f->link, f->node, &f->st), ORBIT_OK);
    assert_int_equal(orbit_leaf_link_flush(f->link, f->now), 0);
    assert_null(shard_recv(f, 50));

    /* After it, the same seq is sent again, carrying the unapplied field. */
    f->now = i.backoff_until_ms;
    assert_int_equal(orbit_leaf_link_flush(f->link, f->now), 1);
    b = shard_recv(f, WAIT_MS);
    assert_non_null(b);
    const Orbit__NodeDelta *d = b->deltas[0];
    assert_int_equal(d->seq, seq);
    assert_false(is_full(d));
    assert_true(d->has_cpu_used_m && d->cpu_used_m == 3000);
    assert_true(d->has_mem_used);

    /* A second overload doubles the back-off. */
    shard_ack(f, b->batch_id, ORBIT__VERDICT__OVERLOADED, NULL, 0);
    batch_free(b);
    leaf_recv(f, 1);
    i = info_of(f, 0);
    assert_int_equal(i.overloads, 2);
    wait = i.backoff_until_ms - f->now;
    assert_true(wait >= 2000 && wait < 6000);
    assert_int_equal(i.next_seq, seq);

    /* OK resets the count. */
    f->now = i.backoff_until_ms;
    assert_int_equal(orbit_leaf_link_flush(f->link, f->now), 1);
    b = shard_recv(f, WAIT_MS);
    assert_non_null(b);
    assert_int_equal(b->deltas[0]->seq, seq);
    shard_ack(f, b->batch_id, ORBIT__VERDICT__OK, NULL, 0);
    batch_free(b);
    leaf_recv(f, 1);
    assert_int_equal(info_of(f, 0).overloads, 0);
    assert_int_equal(orbit_leaf_link_stats(f->link)->overloaded, 2);
}

static void overload_backoff_is_capped(void **state)
{
    fixture_t *f = *state;
    send_acked(f);
    for (int k = 0; k < 12; k++) {
        Orbit__LeafBatch *b = send_one(f);
        shard_ack(f, b->batch_id, ORBIT__VERDICT__OVERLOADED, NULL, 0);
        batch_free(b);
        leaf_recv(f, 1);
        orbit_leaf_link_node_info_t i = info_of(f, 0);
        int64_t wait = i.backoff_until_ms - f->now;
        assert_true(wait <= 45000); /* cap 30 s x 1.5 */
        f->now = i.backoff_until_ms;
    }
    assert_int_equal(info_of(f, 0).overloads, 12);
}

static void overloaded_full_is_resent_full(void **state)
{
    fixture_t *f = *state;
    Orbit__LeafBatch *b = send_one(f);
    assert_true(is_full(b->deltas[0]));
    shard_ack(f, b->batch_id, ORBIT__VERDICT__OVERLOADED, NULL, 0);
    batch_free(b);
    leaf_recv(f, 1);
    f->now = info_of(f, 0).backoff_until_ms;
    assert_int_equal(orbit_leaf_link_flush(f->link, f->now), 1);
    b = shard_recv(f, WAIT_MS);
    assert_true(is_full(b->deltas[0]));
    assert_int_equal(b->deltas[0]->seq, FIRST_SEQ);
    batch_free(b);
}

static void rejected_needs_full_not_urgent(void **state)
{
    fixture_t *f = *state;
    send_acked(f);
    Orbit__LeafBatch *b = send_one(f);
    Orbit__NodeAck na = ORBIT__NODE_ACK__INIT;
    na.node = "n1";
    na.seq = b->deltas[0]->seq;
    na.verdict = ORBIT__VERDICT__REJECTED;
    na.reason = "cpu usage exceeds capacity";
    Orbit__NodeAck *list[] = {&na};
    shard_ack(f, b->batch_id, ORBIT__VERDICT__OK, list, 1);
    batch_free(b);
    leaf_recv(f, 1);
    assert_true(info_of(f, 0).needs_full);
    assert_false(orbit_leaf_link_needs_send(f->link));
    assert_int_equal(orbit_leaf_link_stats(f->link)->rejected, 1);
    assert_int_equal(orbit_leaf_link_stats(f->link)->acked, 1); /* only the first */
    b = send_one(f);
    assert_true(is_full(b->deltas[0]));
    batch_free(b);
}

static void full_every_k(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_link_config_t cfg = f->cfg;
    cfg.full_every = 3;
    make_link(f, &cfg);
    const bool expect[] = {true, false, false, true, false, false, true, false};
    for (size_t k = 0; k < sizeof expect / sizeof expect[0]; k++) {
        f->st.cpu_used_m = 100 * (int64_t)k;
        Orbit__LeafBatch *b = send_one(f);
        if (is_full(b->deltas[0]) != expect[k])
            fail_msg("send %zu: full=%d", k, is_full(b->deltas[0]));
        assert_int_equal(b->deltas[0]->seq, FIRST_SEQ + k);
        shard_ack(f, b->batch_id, ORBIT__VERDICT__OK, NULL, 0);
        batch_free(b);
        leaf_recv(f, 1);
    }
    /* K = 1: always full. */
    cfg.full_every = 1;
    make_link(f, &cfg);
    for (int k = 0; k < 3; k++) {
        Orbit__LeafBatch *b = send_one(f);
        assert_true(is_full(b->deltas[0]));
        batch_free(b);
    }
}

static void silence_is_detected(void **state)
{
    fixture_t *f = *state;
    send_acked(f);
    assert_int_equal(orbit_leaf_link_tick(f->link, f->now + 10000), 0); /* nothing in flight */
    f->now += 10000;
    Orbit__LeafBatch *b = send_one(f); /* never acknowledged */
    batch_free(b);
    assert_int_equal(orbit_leaf_link_tick(f->link, f->now + 2999), 0);
    assert_false(info_of(f, 0).needs_full);
    unsigned ev = orbit_leaf_link_tick(f->link, f->now + 3000);
    assert_true(ev & ORBIT_LEAF_LINK_SILENT);
    assert_true(info_of(f, 0).needs_full);
    assert_int_equal(orbit_leaf_link_stats(f->link)->silent_nodes, 1);
    assert_int_equal(orbit_leaf_link_stats(f->link)->shard_silent, 1);
    /* Reported once per episode. */
    assert_int_equal(orbit_leaf_link_tick(f->link, f->now + 3001), 0);
    /* A late ack for the expired batch is ignored; the next send is full. */
    shard_ack(f, 2, ORBIT__VERDICT__OK, NULL, 0);
    assert_true(wait_readable(f->dealer, WAIT_MS));
    assert_int_equal(orbit_leaf_link_recv(f->link, f->now), 0);
    assert_int_equal(orbit_leaf_link_stats(f->link)->ack_unknown, 1);
    f->now += 4000;
    b = send_one(f);
    assert_true(is_full(b->deltas[0]));
    batch_free(b);
}

static void dropped_sends_count_and_end_in_silence(void **state)
{
    fixture_t *f = *state;
    char err[256];
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_LEAF);
    zsock_t *lonely = orbit_sock_connect(ZMQ_DEALER, "tcp://127.0.0.1:9", &o, err, sizeof err);
    assert_non_null(lonely);
    orbit_leaf_link_set_socket(f->link, lonely);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(orbit_leaf_link_update(f->link, f->node, &f->st), ORBIT_OK);
        assert_int_equal(orbit_leaf_link_flush(f->link, f->now + k * 1000), 0);
    }
    const orbit_leaf_link_stats_t *st = orbit_leaf_link_stats(f->link);
    assert_int_equal(st->send_dropped, 4);
    assert_int_equal(st->dropped_nodes, 4);
    orbit_leaf_link_node_info_t i = info_of(f, 0);
    assert_int_equal(i.next_seq, FIRST_SEQ); /* no seq used */
    assert_true(i.queued);
    assert_true(orbit_leaf_link_tick(f->link, f->now + 3000) & ORBIT_LEAF_LINK_SILENT);
    /* Failing over to a live socket sends the full state. */
    orbit_leaf_link_set_socket(f->link, f->dealer);
    zsock_destroy(&lonely);
    assert_true(orbit_leaf_link_needs_send(f->link));
    assert_int_equal(orbit_leaf_link_flush(f->link, f->now + 4000), 1);
    Orbit__LeafBatch *b = shard_recv(f, WAIT_MS);
    assert_non_null(b);
    assert_true(is_full(b->deltas[0]));
    assert_int_equal(b->deltas[0]->seq, FIRST_SEQ);
    batch_free(b);
}

static void incarnation_change_sends_full(void **state)
{
    fixture_t *f = *state;
    send_acked(f);
    f->st.incarnation = 8ull << 16;
    Orbit__LeafBatch *b = send_one(f);
    assert_true(is_full(b->deltas[0]));
    assert_int_equal(b->deltas[0]->incarnation, 8ull << 16);
    batch_free(b);
}

static void many_nodes_batch_and_per_node_verdicts(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_link_config_t cfg = f->cfg;
    cfg.max_batch = 256;
    make_link(f, &cfg);
    enum { N = 600 };
    char name[32];
    for (uint32_t i = 1; i < N; i++) {
        uint32_t idx;
        snprintf(name, sizeof name, "node-%05u", i);
        assert_int_equal(orbit_leaf_link_add_node(f->link, name, &idx), ORBIT_OK);
        assert_int_equal(idx, i);
    }
    uint32_t idx;
    assert_int_equal(orbit_leaf_link_add_node(f->link, "node-00007", &idx), ORBIT_EINVAL);
    assert_int_equal(orbit_leaf_link_add_node(f->link, "bad name", &idx), ORBIT_EINVAL);
    assert_int_equal(orbit_leaf_link_find(f->link, "node-00599", &idx), ORBIT_OK);
    assert_int_equal(idx, 599);
    assert_int_equal(orbit_leaf_link_find(f->link, "node-99999", &idx), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_leaf_link_nodes(f->link), N);

    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(orbit_leaf_link_update(f->link, i, &f->st), ORBIT_OK);
    assert_int_equal(orbit_leaf_link_flush(f->link, f->now), N);
    size_t sizes[3] = {0};
    uint64_t ids[3] = {0};
    for (int k = 0; k < 3; k++) {
        Orbit__LeafBatch *b = shard_recv(f, WAIT_MS);
        assert_non_null(b);
        sizes[k] = b->n_deltas;
        ids[k] = b->batch_id;
        for (size_t j = 0; j < b->n_deltas; j++)
            assert_true(is_full(b->deltas[j]));
        batch_free(b);
    }
    assert_int_equal(sizes[0], 256);
    assert_int_equal(sizes[1], 256);
    assert_int_equal(sizes[2], 88);
    assert_null(shard_recv(f, 20));

    /* Batch 2 OK except node-00300 (RESYNC); batch 3 OVERLOADED. */
    Orbit__NodeAck na = ORBIT__NODE_ACK__INIT;
    na.node = "node-00300";
    na.seq = FIRST_SEQ;
    na.verdict = ORBIT__VERDICT__RESYNC;
    Orbit__NodeAck *list[] = {&na};
    shard_ack(f, ids[0], ORBIT__VERDICT__OK, NULL, 0);
    shard_ack(f, ids[1], ORBIT__VERDICT__OK, list, 1);
    shard_ack(f, ids[2], ORBIT__VERDICT__OVERLOADED, list, 1); /* list ignored */
    leaf_recv(f, 3);
    const orbit_leaf_link_stats_t *st = orbit_leaf_link_stats(f->link);
    assert_int_equal(st->acked, 511);
    assert_int_equal(st->resync, 1);
    assert_int_equal(st->overloaded, 88);
    assert_true(orbit_leaf_link_needs_send(f->link));
    assert_true(info_of(f, 300).needs_full);
    assert_false(info_of(f, 301).needs_full);
    assert_int_equal(info_of(f, 599).next_seq, FIRST_SEQ);
    assert_true(info_of(f, 599).needs_full); /* overloaded full: resent full */
    /* Only the resynced node goes now; the overloaded ones are backing off. */
    assert_int_equal(orbit_leaf_link_flush(f->link, f->now), 1);
    Orbit__LeafBatch *b = shard_recv(f, WAIT_MS);
    assert_non_null(b);
    assert_string_equal(b->deltas[0]->node, "node-00300");
    batch_free(b);
    assert_int_equal(orbit_leaf_link_flush(f->link, f->now + 60000), 88);
    for (int k = 0; k < 1; k++) {
        b = shard_recv(f, WAIT_MS);
        assert_non_null(b);
        assert_int_equal(b->n_deltas, 88);
        batch_free(b);
    }
}

static void unknown_and_bad_acks_are_counted(void **state)
{
    fixture_t *f = *state;
    Orbit__LeafAck ack = ORBIT__LEAF_ACK__INIT;
    ack.batch_id = 77;
    ack.verdict = ORBIT__VERDICT__OK;
    assert_int_equal(orbit_leaf_link_handle_ack(f->link, &ack, f->now), ORBIT_ENOTFOUND);
    ack.verdict = (Orbit__Verdict)42;
    assert_int_equal(orbit_leaf_link_handle_ack(f->link, &ack, f->now), ORBIT_EINVAL);
    Orbit__LeafBatch *b = send_one(f);
    /* A node ack for a seq never sent, and for an unknown node. */
    Orbit__NodeAck a1 = ORBIT__NODE_ACK__INIT, a2 = ORBIT__NODE_ACK__INIT;
    a1.node = "n1";
    a1.seq = FIRST_SEQ + 100;
    a2.node = "stranger";
    a2.seq = 1;
    Orbit__NodeAck *list[] = {&a1, &a2};
    ack.batch_id = b->batch_id;
    ack.verdict = ORBIT__VERDICT__OK;
    ack.nodes = list;
    ack.n_nodes = 2;
    assert_int_equal(orbit_leaf_link_handle_ack(f->link, &ack, f->now), ORBIT_OK);
    /* the same batch twice */
    assert_int_equal(orbit_leaf_link_handle_ack(f->link, &ack, f->now), ORBIT_ENOTFOUND);
    batch_free(b);
    const orbit_leaf_link_stats_t *st = orbit_leaf_link_stats(f->link);
    assert_int_equal(st->ack_unknown, 4);
    assert_int_equal(st->ack_bad, 1);
    assert_int_equal(st->acked, 0);
    /* A frame that is not a LeafAck. */
    Orbit__ReportAck ra = ORBIT__REPORT_ACK__INIT;
    assert_int_equal(orbit_wire_send(f->router, f->rid, f->rid_len, ORBIT_MSG_REPORT_ACK, &ra.base),
                     ORBIT_OK);
    assert_true(wait_readable(f->dealer, WAIT_MS));
    assert_int_equal(orbit_leaf_link_recv(f->link, f->now), 0);
    assert_int_equal(st->ack_bad, 2);
}

static void topology_epoch_is_the_highest_seen(void **state)
{
    fixture_t *f = *state;
    const orbit_leaf_link_stats_t *st = orbit_leaf_link_stats(f->link);
    assert_int_equal(st->topology_epoch, 0);
    Orbit__LeafAck ack = ORBIT__LEAF_ACK__INIT;
    ack.verdict = ORBIT__VERDICT__OK;
    ack.batch_id = 99; /* unknown batch: the epoch still counts */
    ack.has_topology_epoch = true;
    ack.topology_epoch = 5;
    assert_int_equal(orbit_leaf_link_handle_ack(f->link, &ack, f->now), ORBIT_ENOTFOUND);
    assert_int_equal(st->topology_epoch, 5);
    ack.topology_epoch = 3; /* an older shard: no step back */
    orbit_leaf_link_handle_ack(f->link, &ack, f->now);
    assert_int_equal(st->topology_epoch, 5);
    ack.has_topology_epoch = false; /* absent: unchanged */
    ack.topology_epoch = 9;
    orbit_leaf_link_handle_ack(f->link, &ack, f->now);
    assert_int_equal(st->topology_epoch, 5);
    /* Through the socket, on a real batch. */
    Orbit__LeafBatch *b = send_one(f);
    Orbit__LeafAck real = ORBIT__LEAF_ACK__INIT;
    real.batch_id = b->batch_id;
    real.verdict = ORBIT__VERDICT__OK;
    real.has_topology_epoch = true;
    real.topology_epoch = 7;
    assert_int_equal(orbit_wire_send(f->router, f->rid, f->rid_len, ORBIT_MSG_LEAF_ACK, &real.base),
                     ORBIT_OK);
    leaf_recv(f, 1);
    assert_int_equal(st->topology_epoch, 7);
    /* A re-home is a new socket: the node keeps its sequence (full state). */
    orbit_leaf_link_node_info_t before, after;
    assert_int_equal(orbit_leaf_link_node_info(f->link, f->node, &before), ORBIT_OK);
    orbit_leaf_link_set_socket(f->link, f->dealer);
    assert_int_equal(orbit_leaf_link_node_info(f->link, f->node, &after), ORBIT_OK);
    assert_int_equal(after.next_seq, before.next_seq);
    assert_true(after.needs_full);
    batch_free(b);
}

static void ring_forgets_the_oldest(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_link_config_t cfg = f->cfg;
    cfg.inflight_max = 64;
    cfg.max_batch = 1;
    make_link(f, &cfg);
    for (int k = 0; k < 70; k++) {
        Orbit__LeafBatch *b = send_one(f);
        batch_free(b);
    }
    assert_int_equal(orbit_leaf_link_stats(f->link)->forgotten, 6);
    Orbit__LeafAck ack = ORBIT__LEAF_ACK__INIT;
    ack.batch_id = 1;
    assert_int_equal(orbit_leaf_link_handle_ack(f->link, &ack, f->now), ORBIT_ENOTFOUND);
    ack.batch_id = 70;
    assert_int_equal(orbit_leaf_link_handle_ack(f->link, &ack, f->now), ORBIT_OK);
    assert_int_equal(info_of(f, 0).unacked_fields, 0);
}

static void seq_starts_at_monotonic_microseconds(void **state)
{
    fixture_t *f = *state;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    orbit_leaf_link_t *l = orbit_leaf_link_new(f->dealer, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(l);
    uint32_t idx;
    assert_int_equal(orbit_leaf_link_add_node(l, "n1", &idx), ORBIT_OK);
    orbit_leaf_link_node_info_t i;
    assert_int_equal(orbit_leaf_link_node_info(l, idx, &i), ORBIT_OK);
    uint64_t lo = (uint64_t)t0.tv_sec * 1000000 + (uint64_t)t0.tv_nsec / 1000;
    uint64_t hi = (uint64_t)t1.tv_sec * 1000000 + (uint64_t)t1.tv_nsec / 1000;
    assert_true(i.next_seq >= lo && i.next_seq <= hi);
    assert_int_equal(orbit_leaf_link_node_info(l, 5, &i), ORBIT_EINVAL);
    assert_int_equal(orbit_leaf_link_update(l, 5, &f->st), ORBIT_EINVAL);
    orbit_leaf_link_destroy(&l);
    orbit_leaf_link_config_t bad;
    orbit_leaf_link_config_default(&bad);
    bad.full_every = 0;
    assert_null(orbit_leaf_link_new(NULL, &bad));
    l = orbit_leaf_link_new(NULL, NULL);
    assert_int_equal(orbit_leaf_link_flush(l, 0), ORBIT_EINVAL);
    assert_int_equal(orbit_leaf_link_recv(l, 0), ORBIT_EINVAL);
    orbit_leaf_link_destroy(&l);
}

/* Property: a strict shard that applies messages in order (gaps only for
 * full states) always ends up with exactly the state the leaf sent, whatever
 * mix of OK, lost acks, OVERLOADED and RESYNC it answers. */
static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void mutate(orbit_node_state_t *s)
{
    switch (rnd() % 9) {
    case 0: s->cpu_used_m = (int64_t)(rnd() % 4001); break;
    case 1: s->mem_used = (int64_t)(rnd() % (uint64_t)s->mem_capacity); break;
    case 2: s->load1 = (uint32_t)(rnd() % 500); break;
    case 3:
        s->pressure_available = rnd() % 4 != 0;
        s->pressure.mem_some = (uint32_t)(rnd() % 10000);
        break;
    case 4: {
        uint32_t n = (uint32_t)(rnd() % 3);
        orbit_gpu_t g[2];
        memset(g, 0, sizeof g);
        for (uint32_t i = 0; i < n; i++) {
            g[i].index = i;
            g[i].temp_c = (int32_t)(30 + rnd() % 60);
            g[i].mem_total = 1000;
            g[i].mem_used = rnd() % 1000;
            g[i].health = orbit_gpu_health_derive(&g[i]);
        }
        assert_int_equal(orbit_node_state_set_gpus(s, g, n), ORBIT_OK);
        break;
    }
    case 5: assert_int_equal(orbit_node_label_set(s, "rack", rnd() % 2 ? "r1" : "r2"), 0); break;
    case 6: s->load1 = 125; break; /* back to an older value */
    case 7: s->cpu_used_m = 1000; break;
    default:
        if (rnd() % 20 == 0)
            s->incarnation++;
        break;
    }
    s->sampled_ms += 1000;
}

static void random_verdicts_keep_the_shard_exact(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_link_config_t cfg = f->cfg;
    cfg.full_every = 7;
    make_link(f, &cfg);
    orbit_node_state_t mirror, sent;
    orbit_node_state_init(&mirror);
    orbit_node_state_init(&sent);
    uint64_t mirror_seq = 0;
    bool mirror_valid = false;
    int applied = 0, fulls = 0, deltas = 0;
    for (int round = 0; round < 400; round++) {
        f->now += 1000;
        mutate(&f->st);
        mutate(&f->st);
        assert_int_equal(orbit_leaf_link_update(f->link, f->node, &f->st), ORBIT_OK);
        orbit_leaf_link_tick(f->link, f->now);
        int n = orbit_leaf_link_flush(f->link, f->now);
        assert_true(n == 0 || n == 1);
        if (!n)
            continue;
        assert_int_equal(orbit_node_state_copy(&sent, &f->st), ORBIT_OK);
        Orbit__LeafBatch *b = shard_recv(f, WAIT_MS);
        assert_non_null(b);
        const Orbit__NodeDelta *d = b->deltas[0];
        bool full = is_full(d);
        fulls += full;
        deltas += !full;
        unsigned r = (unsigned)(rnd() % 100);
        Orbit__Verdict v = r < 65   ? ORBIT__VERDICT__OK
                           : r < 80 ? ORBIT__VERDICT__OVERLOADED
                           : r < 85 ? ORBIT__VERDICT__RESYNC
                                    : (Orbit__Verdict)-1; /* applied, ack lost */
        /* The leaf must never make a strict shard see a gap. */
        if (!full &&
            (!mirror_valid || d->seq != mirror_seq + 1 || d->incarnation != mirror.incarnation))
            fail_msg("round %d: delta seq %" PRIu64 " after %" PRIu64, round, d->seq, mirror_seq);
        if (v == ORBIT__VERDICT__OK || v == (Orbit__Verdict)-1) {
            const char *reason = NULL;
            if (orbit_node_delta_validate(d, full ? NULL : &mirror, &reason) != ORBIT_OK)
                fail_msg("round %d: rejected: %s", round, reason);
            assert_int_equal(orbit_node_delta_apply(&mirror, d), ORBIT_OK);
            mirror_seq = d->seq;
            mirror_valid = true;
            applied++;
            /* The shard now holds exactly what was sent. */
            if (orbit_node_state_differs(&mirror, &sent))
                fail_msg("round %d: shard state diverged (seq %" PRIu64 ", full %d)", round, d->seq,
                         full);
        }
        if (v != (Orbit__Verdict)-1)
            shard_ack(f, b->batch_id, v, NULL, 0);
        batch_free(b);
        if (v != (Orbit__Verdict)-1)
            leaf_recv(f, 1);
        if (orbit_leaf_link_needs_send(f->link)) {
            /* RESYNC: the immediate full state */
            assert_int_equal(orbit_leaf_link_flush(f->link, f->now), 1);
            b = shard_recv(f, WAIT_MS);
            assert_non_null(b);
            assert_true(is_full(b->deltas[0]));
            assert_int_equal(orbit_node_delta_apply(&mirror, b->deltas[0]), ORBIT_OK);
            mirror_seq = b->deltas[0]->seq;
            mirror_valid = true;
            assert_false(orbit_node_state_differs(&mirror, &f->st));
            shard_ack(f, b->batch_id, ORBIT__VERDICT__OK, NULL, 0);
            batch_free(b);
            leaf_recv(f, 1);
        }
    }
    assert_true(applied > 150);
    assert_true(deltas > fulls);
    orbit_node_state_close(&mirror);
    orbit_node_state_close(&sent);
}

int main(void)
{
    orbit_log_level = ORBIT_LOG_ERROR;
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(first_send_is_full),
        T(unchanged_fields_are_absent_from_deltas),
        T(capsules_are_copied_and_carried_until_acked),
        T(ok_advances_baseline),
        T(duplicate_counts_as_ok),
        T(resync_sends_full_at_once),
        T(overloaded_rewinds_seq_and_backs_off),
        T(overload_backoff_is_capped),
        T(overloaded_full_is_resent_full),
        T(rejected_needs_full_not_urgent),
        T(full_every_k),
        T(silence_is_detected),
        T(dropped_sends_count_and_end_in_silence),
        T(incarnation_change_sends_full),
        T(many_nodes_batch_and_per_node_verdicts),
        T(unknown_and_bad_acks_are_counted),
        T(topology_epoch_is_the_highest_seen),
        T(ring_forgets_the_oldest),
        T(seq_starts_at_monotonic_microseconds),
        T(random_verdicts_keep_the_shard_exact),
    };
#undef T
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    return rc;
}
