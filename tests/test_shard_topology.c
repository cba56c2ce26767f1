/* test_shard_topology: a shard in discovery mode — its place read from the
 * topology model (tier, endpoint, upstream = parent's endpoint or the
 * roots, owned racks), the refetch schedule (epochs in acks, jitter,
 * stale reads, failures, the safety net), the epoch stamped in leaf acks,
 * the forgetting of nodes re-homed away (rack not owned, and silent), and
 * the tombstones that report those removals upward. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "orbit_err.h"
#include "orbit_node.h"
#include "orbit_wire.h"
#include "shard_nodes.h"
#include "shard_place.h"
#include "shard_tomb.h"
#include "topology.h"

#define T0    100000 /* a monotonic clock well past zero */
#define IV    1000   /* every leaf's interval */
#define ROOTS "tcp://127.0.0.1:7400,tcp://127.0.0.1:7401"

/* ---------------------------------------------------------------- place */

/* root <- zone-1 (tier 2) <- rack-1, rack-2 (tier 1); rack-0 (tier 1)
 * under the root; racks r1, r2 owned by rack-1, r3 by rack-2. */
static int topo_setup(void **state)
{
    orbit_topology_t *t = orbit_topology_new();
    assert_non_null(t);
    assert_int_equal(orbit_topology_add_shard(t, "zone-1", 2, NULL, "tcp://h:7420", NULL, 0), 0);
    assert_int_equal(orbit_topology_add_shard(t, "rack-1", 1, "zone-1", "tcp://h:7411", NULL, 0),
                     0);
    assert_int_equal(orbit_topology_add_shard(t, "rack-2", 1, "zone-1", "tcp://h:7412", NULL, 0),
                     0);
    assert_int_equal(orbit_topology_add_shard(t, "rack-0", 1, NULL, "tcp://h:7410", NULL, 0), 0);
    assert_int_equal(orbit_topology_move_rack(t, "r1", "rack-1", NULL, 0), 0);
    assert_int_equal(orbit_topology_move_rack(t, "r2", "rack-1", NULL, 0), 0);
    assert_int_equal(orbit_topology_move_rack(t, "r3", "rack-2", NULL, 0), 0);
    orbit_topology_set_epoch(t, 42);
    *state = t;
    return 0;
}

static int topo_teardown(void **state)
{
    orbit_topology_t *t = *state;
    orbit_topology_destroy(&t);
    return 0;
}

static void test_place_under_a_parent(void **state)
{
    orbit_topology_t *t = *state;
    orbit_shard_place_t p;
    char err[256] = "";
    assert_int_equal(orbit_shard_place_resolve(t, "rack-1", ROOTS, &p, err, sizeof err), ORBIT_OK);
    assert_int_equal(p.tier, 1);
    assert_string_equal(p.parent, "zone-1");
    assert_string_equal(p.listen, "tcp://h:7411");
    assert_string_equal(p.upstream, "tcp://h:7420"); /* the parent's, not the roots */
    assert_int_equal(p.epoch, 42);
}

static void test_place_top_tier_reports_to_roots(void **state)
{
    orbit_topology_t *t = *state;
    orbit_shard_place_t p;
    assert_int_equal(orbit_shard_place_resolve(t, "zone-1", ROOTS, &p, NULL, 0), ORBIT_OK);
    assert_int_equal(p.tier, 2);
    assert_string_equal(p.parent, "");
    assert_string_equal(p.listen, "tcp://h:7420");
    assert_string_equal(p.upstream, ROOTS);
    /* A tier-1 shard without a parent too. */
    assert_int_equal(orbit_shard_place_resolve(t, "rack-0", ROOTS, &p, NULL, 0), ORBIT_OK);
    assert_int_equal(p.tier, 1);
    assert_string_equal(p.upstream, ROOTS);
}

static void test_place_refusals(void **state)
{
    orbit_topology_t *t = *state;
    orbit_shard_place_t p, before;
    memset(&p, 0x5a, sizeof p);
    before = p;
    char err[256] = "";
    /* Not declared (yet): the caller waits and retries. */
    assert_int_equal(orbit_shard_place_resolve(t, "rack-9", ROOTS, &p, err, sizeof err),
                     ORBIT_ENOTFOUND);
    assert_non_null(strstr(err, "rack-9 is not declared"));
    assert_memory_equal(&p, &before, sizeof p); /* nothing written on failure */
    /* Declared without an endpoint: nothing to bind. */
    assert_int_equal(orbit_topology_add_shard(t, "rack-5", 1, NULL, NULL, NULL, 0), 0);
    assert_int_equal(orbit_shard_place_resolve(t, "rack-5", ROOTS, &p, err, sizeof err),
                     ORBIT_EINVAL);
    assert_non_null(strstr(err, "without an endpoint"));
    /* A parent without an endpoint: nowhere to report. */
    assert_int_equal(orbit_topology_add_shard(t, "zone-2", 2, NULL, NULL, NULL, 0), 0);
    assert_int_equal(orbit_topology_add_shard(t, "rack-6", 1, "zone-2", "tcp://h:7416", NULL, 0),
                     0);
    assert_int_equal(orbit_shard_place_resolve(t, "rack-6", ROOTS, &p, err, sizeof err),
                     ORBIT_EINVAL);
    assert_non_null(strstr(err, "parent zone-2"));
    /* Top tier with no roots to report to. */
    assert_int_equal(orbit_shard_place_resolve(t, "rack-0", "", &p, err, sizeof err), ORBIT_EINVAL);
    assert_int_equal(orbit_shard_place_resolve(NULL, "rack-0", ROOTS, &p, err, sizeof err),
                     ORBIT_EINVAL);
    assert_memory_equal(&p, &before, sizeof p);
}

static void test_place_racks(void **state)
{
    orbit_topology_t *t = *state;
    zhashx_t *r = orbit_shard_place_racks(t, "rack-1");
    assert_non_null(r);
    assert_int_equal(zhashx_size(r), 2);
    assert_non_null(zhashx_lookup(r, "r1"));
    assert_non_null(zhashx_lookup(r, "r2"));
    assert_null(zhashx_lookup(r, "r3"));
    zhashx_destroy(&r);
    /* A zone shard or an unknown one owns nothing: an empty set. */
    r = orbit_shard_place_racks(t, "zone-1");
    assert_non_null(r);
    assert_int_equal(zhashx_size(r), 0);
    zhashx_destroy(&r);
    r = orbit_shard_place_racks(t, "nobody");
    assert_non_null(r);
    assert_int_equal(zhashx_size(r), 0);
    zhashx_destroy(&r);
}

/* -------------------------------------------------------------- refetch */

static void test_refetch_on_a_newer_epoch_after_jitter(void **state)
{
    (void)state;
    orbit_shard_refetch_t r;
    orbit_shard_refetch_init(&r, IV, 10, T0);
    assert_false(orbit_shard_refetch_due(&r, T0));
    /* Same or older epochs change nothing. */
    assert_false(orbit_shard_refetch_saw(&r, 10, T0, 0));
    assert_false(orbit_shard_refetch_saw(&r, 3, T0, 0));
    assert_false(orbit_shard_refetch_due(&r, T0 + 9 * IV));
    /* A newer one: due after the jitter, not before. */
    assert_true(orbit_shard_refetch_saw(&r, 12, T0, 300));
    assert_false(orbit_shard_refetch_due(&r, T0 + 299));
    assert_true(orbit_shard_refetch_due(&r, T0 + 300));
    /* Further acks do not push the fetch back. */
    assert_false(orbit_shard_refetch_saw(&r, 13, T0 + 100, 900));
    assert_true(orbit_shard_refetch_due(&r, T0 + 300));
    assert_int_equal(r.seen, 13);
    /* Jitter stays inside one interval whatever the caller passes. */
    orbit_shard_refetch_init(&r, IV, 10, T0);
    assert_true(orbit_shard_refetch_saw(&r, 11, T0, IV + 5));
    assert_true(orbit_shard_refetch_due(&r, T0 + 5));
}

static void test_refetch_stale_read_retries_next_interval(void **state)
{
    (void)state;
    orbit_shard_refetch_t r;
    orbit_shard_refetch_init(&r, IV, 10, T0);
    orbit_shard_refetch_saw(&r, 20, T0, 0);
    assert_true(orbit_shard_refetch_due(&r, T0));
    /* A replica still at 15: held moves to 15, but 20 was seen: again. */
    orbit_shard_refetch_done(&r, true, 15, T0 + 50);
    assert_int_equal(r.held, 15);
    assert_false(orbit_shard_refetch_due(&r, T0 + 50 + IV - 1));
    assert_true(orbit_shard_refetch_due(&r, T0 + 50 + IV));
    /* An older read than held does not move it back. */
    orbit_shard_refetch_done(&r, true, 12, T0 + 50 + IV);
    assert_int_equal(r.held, 15);
    assert_true(orbit_shard_refetch_due(&r, T0 + 50 + 2 * IV));
    /* Caught up: nothing due until the safety net. */
    orbit_shard_refetch_done(&r, true, 20, T0 + 3 * IV);
    assert_int_equal(r.held, 20);
    assert_false(orbit_shard_refetch_due(&r, T0 + 4 * IV));
    assert_false(orbit_shard_refetch_due(&r, T0 + 13 * IV - 1));
    assert_true(orbit_shard_refetch_due(&r, T0 + 13 * IV));
}

static void test_refetch_failure_and_safety_net(void **state)
{
    (void)state;
    orbit_shard_refetch_t r;
    orbit_shard_refetch_init(&r, IV, 10, T0);
    /* No epoch ever seen: the safety net reads every 10 intervals. */
    assert_false(orbit_shard_refetch_due(&r, T0 + ORBIT_SHARD_REFETCH_SAFETY * IV - 1));
    assert_true(orbit_shard_refetch_due(&r, T0 + ORBIT_SHARD_REFETCH_SAFETY * IV));
    /* It fails (no replica answered): again one interval later. */
    int64_t t1 = T0 + ORBIT_SHARD_REFETCH_SAFETY * IV;
    orbit_shard_refetch_done(&r, false, 0, t1);
    assert_int_equal(r.held, 10);
    assert_false(orbit_shard_refetch_due(&r, t1 + IV - 1));
    assert_true(orbit_shard_refetch_due(&r, t1 + IV));
    /* Succeeds at the same epoch: the next read is 10 intervals away. */
    orbit_shard_refetch_done(&r, true, 10, t1 + IV);
    assert_false(orbit_shard_refetch_due(&r, t1 + 10 * IV));
    assert_true(orbit_shard_refetch_due(&r, t1 + 11 * IV));
}

/* ------------------------------------------------------------ node table */

typedef struct {
    orbit_shard_nodes_t *n;
    orbit_arena_t *a;
    Orbit__LeafAck ack;
    uint64_t batch, seq;
} nodes_fx_t;

static int nodes_setup(void **state)
{
    nodes_fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    orbit_shard_nodes_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.suspect_missed = 3;
    cfg.down_missed = 10;
    cfg.default_interval_ms = IV;
    fx->n = orbit_shard_nodes_new("rack-1", &cfg);
    fx->a = orbit_arena_new(0);
    assert_non_null(fx->n);
    assert_non_null(fx->a);
    *state = fx;
    return 0;
}

static int nodes_teardown(void **state)
{
    nodes_fx_t *fx = *state;
    orbit_shard_nodes_destroy(&fx->n);
    orbit_arena_destroy(&fx->a);
    free(fx);
    return 0;
}

/* One full state of node (rack label rack, none when NULL) at now; returns
 * the node's verdict. */
static Orbit__Verdict send_full(nodes_fx_t *fx, const char *node, const char *rack, int64_t now)
{
    orbit_node_state_t st;
    orbit_node_state_init(&st);
    snprintf(st.name, sizeof st.name, "%s", node);
    st.incarnation = 1;
    st.sampled_ms = 1;
    st.interval_ms = IV;
    st.cpu_capacity_m = 8000;
    st.mem_capacity = 1LL << 34;
    if (rack)
        assert_int_equal(orbit_node_label_set(&st, "rack", rack), ORBIT_OK);
    orbit_arena_reset(fx->a);
    Orbit__NodeDelta *d = orbit_arena_alloc(fx->a, sizeof *d);
    assert_non_null(d);
    orbit__node_delta__init(d);
    assert_int_equal(orbit_node_delta_fill_arena(d, &st, NULL, ++fx->seq, fx->a), ORBIT_OK);
    Orbit__LeafBatch b = ORBIT__LEAF_BATCH__INIT;
    b.batch_id = ++fx->batch;
    b.n_deltas = 1;
    b.deltas = &d;
    assert_int_equal(orbit_shard_nodes_ingest(fx->n, &b, now, fx->a, &fx->ack), ORBIT_OK);
    orbit_node_state_close(&st);
    Orbit__Verdict v = fx->ack.verdict;
    for (size_t i = 0; i < fx->ack.n_nodes; i++)
        v = fx->ack.nodes[i]->verdict;
    return v;
}

static void own(nodes_fx_t *fx, uint64_t epoch, const char *rack)
{
    zhashx_t *racks = zhashx_new();
    assert_non_null(racks);
    if (rack)
        zhashx_insert(racks, rack, (void *)1);
    orbit_shard_nodes_set_topology(fx->n, epoch, &racks);
    assert_null(racks); /* taken over */
}

static bool has(nodes_fx_t *fx, const char *node)
{
    return orbit_shard_nodes_get(fx->n, node, NULL, NULL) != NULL;
}

/* The names the next incremental report since gen would list as removed. */
static size_t removed_since(nodes_fx_t *fx, uint64_t gen, const char *want)
{
    char **names = NULL;
    size_t n = 0;
    orbit_arena_reset(fx->a);
    assert_int_equal(orbit_shard_nodes_removed(fx->n, gen, fx->a, &names, &n), ORBIT_OK);
    bool found = !want;
    for (size_t i = 0; i < n; i++)
        found |= want && !strcmp(names[i], want);
    assert_true(found);
    return n;
}

static void test_epoch_in_leaf_acks(void **state)
{
    nodes_fx_t *fx = *state;
    /* Flag mode: epoch 0, and still stamped. */
    assert_int_equal(send_full(fx, "n1", "r1", T0), ORBIT__VERDICT__OK);
    assert_true(fx->ack.has_topology_epoch);
    assert_int_equal(fx->ack.topology_epoch, 0);
    /* Discovery mode: the epoch of the topology held, from the next ack on. */
    own(fx, 42, "r1");
    assert_int_equal(send_full(fx, "n2", "r1", T0), ORBIT__VERDICT__OK);
    assert_true(fx->ack.has_topology_epoch);
    assert_int_equal(fx->ack.topology_epoch, 42);
    /* A set without racks (NULL) keeps the racks, moves the epoch. */
    orbit_shard_nodes_set_topology(fx->n, 43, NULL);
    assert_int_equal(send_full(fx, "n3", "r1", T0), ORBIT__VERDICT__OK);
    assert_int_equal(fx->ack.topology_epoch, 43);
    orbit_shard_nodes_tick(fx->n, T0 + IV / 2);
    assert_int_equal(orbit_shard_nodes_count(fx->n), 3);
}

static void test_forget_rehomed_away_only_once_silent(void **state)
{
    nodes_fx_t *fx = *state;
    own(fx, 5, "r1");
    assert_int_equal(send_full(fx, "mine", "r1", T0), ORBIT__VERDICT__OK);
    assert_int_equal(send_full(fx, "moved", "r2", T0), ORBIT__VERDICT__OK); /* accepted */
    assert_int_equal(send_full(fx, "nolabel", NULL, T0), ORBIT__VERDICT__OK);
    uint64_t gen0 = orbit_shard_nodes_gen(fx->n);
    /* Silent for one interval, or two (a failed-over leaf's jitter): not yet. */
    orbit_shard_nodes_tick(fx->n, T0 + IV + 1);
    orbit_shard_nodes_tick(fx->n, T0 + 2 * IV);
    assert_true(has(fx, "moved"));
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->rehomed_away, 0);
    /* Still reporting here (a failover from its down owner): kept. */
    assert_int_equal(send_full(fx, "moved", "r2", T0 + IV), ORBIT__VERDICT__OK);
    orbit_shard_nodes_tick(fx->n, T0 + 3 * IV);
    assert_true(has(fx, "moved"));
    /* Silent for more than that: forgotten, not marked suspect. */
    assert_true(orbit_shard_nodes_tick(fx->n, T0 + 3 * IV + 1) >= 1);
    assert_false(has(fx, "moved"));
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->rehomed_away, 1);
    assert_true(orbit_shard_nodes_gen(fx->n) > gen0);
    /* The others are silent too, but ours or unlabelled: kept. */
    assert_true(has(fx, "mine"));
    assert_true(has(fx, "nolabel"));
    orbit_shard_nodes_tick(fx->n, T0 + 20 * IV);
    assert_true(has(fx, "mine"));
    assert_true(has(fx, "nolabel"));
    orbit_status_t st;
    assert_non_null(orbit_shard_nodes_get(fx->n, "mine", &st, NULL));
    assert_int_equal(st, ORBIT_DOWN);
    assert_int_equal(orbit_shard_nodes_count(fx->n), 2);
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->rehomed_away, 1);
    /* Rows after the removal do not list it; removed does. */
    Orbit__NodeRow **rows;
    size_t nrows;
    orbit_arena_reset(fx->a);
    assert_int_equal(orbit_shard_nodes_rows(fx->n, 0, fx->a, &rows, &nrows), ORBIT_OK);
    assert_int_equal(nrows, 2);
    assert_int_equal(removed_since(fx, gen0, "moved"), 1);
}

static void test_forget_follows_a_rack_moving_away(void **state)
{
    nodes_fx_t *fx = *state;
    own(fx, 5, "r1");
    assert_int_equal(send_full(fx, "a", "r1", T0), ORBIT__VERDICT__OK);
    orbit_shard_nodes_tick(fx->n, T0 + 5 * IV);
    assert_true(has(fx, "a")); /* our rack: suspect, not forgotten */
    /* r1 moves away in epoch 6: the silent node goes at the next tick. */
    own(fx, 6, NULL);
    orbit_shard_nodes_tick(fx->n, T0 + 5 * IV + 1);
    assert_false(has(fx, "a"));
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->rehomed_away, 1);
}

static void test_flag_mode_never_forgets(void **state)
{
    nodes_fx_t *fx = *state;
    assert_int_equal(send_full(fx, "a", "r9", T0), ORBIT__VERDICT__OK);
    orbit_shard_nodes_tick(fx->n, T0 + 50 * IV);
    orbit_status_t st;
    assert_non_null(orbit_shard_nodes_get(fx->n, "a", &st, NULL));
    assert_int_equal(st, ORBIT_DOWN);
    assert_int_equal(orbit_shard_nodes_stats(fx->n)->rehomed_away, 0);
    assert_int_equal(removed_since(fx, 0, NULL), 0);
}

static void test_removed_until_acked_and_cleared_on_return(void **state)
{
    nodes_fx_t *fx = *state;
    own(fx, 5, "r1");
    assert_int_equal(send_full(fx, "x", "r2", T0), ORBIT__VERDICT__OK);
    assert_int_equal(send_full(fx, "y", "r2", T0), ORBIT__VERDICT__OK);
    uint64_t g0 = orbit_shard_nodes_gen(fx->n);
    orbit_shard_nodes_tick(fx->n, T0 + 2 * IV + 1);
    assert_int_equal(orbit_shard_nodes_count(fx->n), 0);
    uint64_t g1 = orbit_shard_nodes_gen(fx->n);
    assert_int_equal(removed_since(fx, g0, "x"), 2);
    assert_int_equal(removed_since(fx, g1, NULL), 0); /* that upstream has it */
    /* x comes back (its owner went down): no longer listed as removed. */
    assert_int_equal(send_full(fx, "x", "r2", T0 + 3 * IV), ORBIT__VERDICT__OK);
    assert_true(has(fx, "x"));
    assert_int_equal(removed_since(fx, g0, "y"), 1);
    /* Every upstream acknowledged g1: the tombstone goes. */
    orbit_shard_nodes_prune_removed(fx->n, g1);
    assert_int_equal(removed_since(fx, 0, NULL), 0);
    assert_int_equal(orbit_shard_nodes_removed_floor(fx->n), 0);
}

/* ------------------------------------------------------------ tombstones */

static void test_tombs_bounded_raise_the_floor(void **state)
{
    (void)state;
    orbit_tombs_t *t = orbit_tombs_new(2);
    orbit_arena_t *a = orbit_arena_new(0);
    assert_non_null(t);
    assert_non_null(a);
    orbit_tombs_add(t, "a", 1);
    orbit_tombs_add(t, "b", 2);
    orbit_tombs_add(t, "b", 3); /* the same name again: still two */
    assert_int_equal(orbit_tombs_count(t), 2);
    assert_int_equal(orbit_tombs_floor(t), 0);
    char **names;
    size_t n;
    assert_int_equal(orbit_tombs_list(t, 1, a, &names, &n), ORBIT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "b");
    /* Past the cap: all go, and an upstream below 4 needs a full report. */
    orbit_tombs_add(t, "c", 4);
    assert_int_equal(orbit_tombs_count(t), 0);
    assert_int_equal(orbit_tombs_floor(t), 4);
    orbit_tombs_add(t, "d", 5);
    orbit_tombs_prune(t, 4);
    assert_int_equal(orbit_tombs_count(t), 1);
    orbit_tombs_prune(t, 5);
    assert_int_equal(orbit_tombs_count(t), 0);
    orbit_tombs_destroy(&t);
    assert_null(t);
    orbit_tombs_destroy(&t); /* NULL-safe */
    orbit_arena_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_place_under_a_parent, topo_setup, topo_teardown),
        cmocka_unit_test_setup_teardown(test_place_top_tier_reports_to_roots, topo_setup,
                                        topo_teardown),
        cmocka_unit_test_setup_teardown(test_place_refusals, topo_setup, topo_teardown),
        cmocka_unit_test_setup_teardown(test_place_racks, topo_setup, topo_teardown),
        cmocka_unit_test(test_refetch_on_a_newer_epoch_after_jitter),
        cmocka_unit_test(test_refetch_stale_read_retries_next_interval),
        cmocka_unit_test(test_refetch_failure_and_safety_net),
        cmocka_unit_test_setup_teardown(test_epoch_in_leaf_acks, nodes_setup, nodes_teardown),
        cmocka_unit_test_setup_teardown(test_forget_rehomed_away_only_once_silent, nodes_setup,
                                        nodes_teardown),
        cmocka_unit_test_setup_teardown(test_forget_follows_a_rack_moving_away, nodes_setup,
                                        nodes_teardown),
        cmocka_unit_test_setup_teardown(test_flag_mode_never_forgets, nodes_setup, nodes_teardown),
        cmocka_unit_test_setup_teardown(test_removed_until_acked_and_cleared_on_return, nodes_setup,
                                        nodes_teardown),
        cmocka_unit_test(test_tombs_bounded_raise_the_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
