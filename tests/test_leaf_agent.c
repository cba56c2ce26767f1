/* test_leaf_agent: the agent's loop end to end against fake shards on inproc ROUTERs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "leaf_agent.h"
#include "orbit_err.h"
#include "orbit_log.h"
#include "orbit_sock.h"
#include "orbit_wire.h"

#define DEADLINE_MS 5000

typedef struct {
    zsock_t *shard[2];
    orbit_leaf_config_t cfg;
    orbit_leaf_agent_t *agent;
    zactor_t *actor;
} fixture_t;

static int counter;

static void actor_fn(zsock_t *pipe, void *arg)
{
    zsock_signal(pipe, 0);
    orbit_leaf_agent_run(arg, pipe);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    setenv("FAKE_NVML_GPUS", "2", 1);
    char eps[2][64], err[256];
    orbit_sock_opts_t o;
    orbit_sock_opts_default(&o, ORBIT_LINK_LEAF);
    for (int i = 0; i < 2; i++) {
        snprintf(eps[i], sizeof eps[i], "inproc://leaf-agent-%d-%d", ++counter, i);
        f->shard[i] = orbit_sock_bind(ZMQ_ROUTER, eps[i], &o, err, sizeof err);
        assert_non_null(f->shard[i]);
    }
    char shards[160];
    snprintf(shards, sizeof shards, "%s,%s", eps[0], eps[1]);
    char *argv[] = {"orbit-leaf", "--node",     "agent-test",    "--shard", shards,
                    "--label",    "rack=r1",    "--interval-ms", "30",      "--full-every",
                    "1000",       "--nvml-lib", FAKE_NVML_PATH,  NULL};
    int argc = (int)(sizeof argv / sizeof argv[0]) - 1;
    assert_int_equal(orbit_leaf_config_parse(argc, argv, &f->cfg, err, sizeof err), ORBIT_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    zactor_destroy(&f->actor);
    orbit_leaf_agent_destroy(&f->agent);
    assert_null(f->agent);
    for (int i = 0; i < 2; i++)
        zsock_destroy(&f->shard[i]);
    orbit_leaf_config_close(&f->cfg);
    free(f);
    return 0;
}

static void start(fixture_t *f)
{
    char err[256];
    f->agent = orbit_leaf_agent_new(&f->cfg, err, sizeof err);
    if (!f->agent)
        fail_msg("agent: %s", err);
    f->actor = zactor_new(actor_fn, f->agent);
    assert_non_null(f->actor);
}

/* Next batch from either shard within timeout: which one in *from. */
static Orbit__LeafBatch *next_batch(fixture_t *f, int timeout_ms, int *from, uint8_t *rid,
                                    size_t *rid_len)
{
    zmq_pollitem_t it[2] = {{zsock_resolve(f->shard[0]), 0, ZMQ_POLLIN, 0},
                            {zsock_resolve(f->shard[1]), 0, ZMQ_POLLIN, 0}};
    if (zmq_poll(it, 2, timeout_ms) <= 0)
        return NULL;
    *from = (it[0].revents & ZMQ_POLLIN) ? 0 : 1;
    orbit_rx_t rx;
    orbit_rx_init(&rx);
    assert_int_equal(orbit_wire_recv(f->shard[*from], 1, &rx), ORBIT_OK);
    memcpy(rid, rx.rid, rx.rid_len);
    *rid_len = rx.rid_len;
    ProtobufCMessage *m = NULL;
    assert_int_equal(orbit_wire_decode(orbit_rx_data(&rx), orbit_rx_size(&rx), ORBIT_MSG_LEAF_BATCH,
                                       NULL, NULL, &m),
                     ORBIT_OK);
    orbit_rx_close(&rx);
    return (Orbit__LeafBatch *)m;
}

static void ack(fixture_t *f, int from, const uint8_t *rid, size_t rid_len, uint64_t batch_id)
{
    Orbit__LeafAck a = ORBIT__LEAF_ACK__INIT;
    a.batch_id = batch_id;
    a.verdict = ORBIT__VERDICT__OK;
    assert_int_equal(orbit_wire_send(f->shard[from], rid, rid_len, ORBIT_MSG_LEAF_ACK, &a.base),
                     ORBIT_OK);
}

static void sends_full_then_deltas(void **state)
{
    fixture_t *f = *state;
    start(f);
    uint8_t rid[ORBIT_ROUTING_ID_MAX];
    size_t rid_len;
    int from, fulls = 0, deltas = 0;
    int64_t deadline = zclock_mono() + DEADLINE_MS;
    while (deltas < 3 && zclock_mono() < deadline) {
        Orbit__LeafBatch *b = next_batch(f, 200, &from, rid, &rid_len);
        if (!b)
            continue;
        assert_int_equal(from, 0);
        assert_int_equal(b->n_deltas, 1);
        const Orbit__NodeDelta *d = b->deltas[0];
        assert_string_equal(d->node, "agent-test");
        const char *reason = NULL;
        bool full = d->has_full && d->full;
        if (!fulls) {
            assert_true(full); /* the first message */
            assert_int_equal(orbit_node_delta_validate(d, NULL, &reason), ORBIT_OK);
            assert_true(d->has_gpu_capacity && d->gpu_capacity == 2);
            assert_int_equal(d->n_gpus, 2);
            assert_int_equal(d->n_labels, 1);
            assert_string_equal(d->labels[0]->key, "rack");
            assert_int_equal(d->interval_ms, 30);
            assert_true(d->cpu_capacity_m >= 1000);
        }
        fulls += full;
        deltas += !full;
        ack(f, from, rid, rid_len, b->batch_id);
        protobuf_c_message_free_unpacked(&b->base, NULL);
    }
    assert_int_equal(fulls, 1);
    assert_true(deltas >= 3);
    zactor_destroy(&f->actor); /* $TERM: the loop ends */
    const orbit_leaf_link_stats_t *st = orbit_leaf_agent_stats(f->agent);
    assert_true(st->acked >= 3);
    assert_int_equal(st->fulls_sent, 1);
}

static void fails_over_and_returns(void **state)
{
    fixture_t *f = *state;
    start(f);
    uint8_t rid[ORBIT_ROUTING_ID_MAX];
    size_t rid_len;
    int from;
    int phase = 0; /* 0: heard on A; 1: full on B; 2: full on A again */
    int64_t deadline = zclock_mono() + DEADLINE_MS;
    while (phase < 3 && zclock_mono() < deadline) {
        Orbit__LeafBatch *b = next_batch(f, 200, &from, rid, &rid_len);
        if (!b)
            continue;
        bool full = b->deltas[0]->has_full && b->deltas[0]->full;
        if (phase == 0 && from == 0)
            phase = 1; /* the preferred shard never answers */
        else if (phase == 1 && from == 1 && full)
            phase = 2; /* silent for 3 intervals: failed over with a full state */
        else if (phase == 2 && from == 0 && full)
            phase = 3; /* 10 intervals later: back to the preferred shard */
        if (from == 1)
            ack(f, from, rid, rid_len, b->batch_id);
        protobuf_c_message_free_unpacked(&b->base, NULL);
    }
    if (phase < 3)
        fail_msg("stuck in phase %d", phase);
    zactor_destroy(&f->actor);
    assert_true(orbit_leaf_agent_stats(f->agent)->shard_silent >= 1);
}

static void bad_proc_root_fails_at_start(void **state)
{
    fixture_t *f = *state;
    free(f->cfg.proc_root);
    f->cfg.proc_root = strdup("/nonexistent/proc");
    char err[256] = "";
    assert_null(orbit_leaf_agent_new(&f->cfg, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/proc/stat"));
}

int main(void)
{
    orbit_log_level = ORBIT_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sends_full_then_deltas, setup, teardown),
        cmocka_unit_test_setup_teardown(fails_over_and_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_proc_root_fails_at_start, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    return rc;
}
