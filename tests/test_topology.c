/* test_topology: the federation tree model — every refusal of add, remove
 * and move (with its reason, changing nothing), cycles, whole-model
 * validation, the epoch check, the lists the CLI draws from, rendezvous
 * hashing (pinned values, spread, stability when a shard is added or
 * removed), candidate order, drains, plan accuracy against the changes
 * actually applied, and a differential run of random changes through both
 * the model and the real ledger state machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger.h"
#include "orbit_err.h"
#include "topology.h"
#include "topology_hrw.h"
#include "topology_plan.h"

/* The model must take exactly the names, endpoints and tiers the ledger
 * takes (the differential test below checks the rules themselves). */
_Static_assert(ORBIT_TOPOLOGY_NAME_MAX == ORBIT_LEDGER_NAME_MAX, "name bound");
_Static_assert(ORBIT_TOPOLOGY_ENDPOINT_MAX == ORBIT_LEDGER_ENDPOINT_MAX, "endpoint bound");
_Static_assert(ORBIT_TOPOLOGY_TIER_MAX == ORBIT_LEDGER_TIER_MAX, "tier bound");

#define NRACKS 1000

/* ---------------------------------------------------------------- fixture */

typedef struct {
    orbit_topology_t *t;
    char err[256];
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->t = orbit_topology_new();
    assert_non_null(f->t);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    orbit_topology_destroy(&f->t);
    assert_null(f->t);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static void add_ok_at(orbit_topology_t *t, const char *id, uint32_t tier, const char *parent,
                      const char *file, int line)
{
    char err[256] = "";
    int rc = orbit_topology_add_shard(t, id, tier, parent, NULL, err, sizeof err);
    if (rc) {
        print_error("add %s: %s (%d)\n", id, err, rc);
        _fail(file, line);
    }
}

static void move_ok_at(orbit_topology_t *t, const char *rack, const char *shard, const char *file,
                       int line)
{
    char err[256] = "";
    int rc = orbit_topology_move_rack(t, rack, shard, err, sizeof err);
    if (rc) {
        print_error("move %s to %s: %s (%d)\n", rack, shard, err, rc);
        _fail(file, line);
    }
}

#define ADD_OK(t, id, tier, parent) add_ok_at((t), (id), (tier), (parent), __FILE__, __LINE__)
#define MOVE_OK(t, rack, shard)     move_ok_at((t), (rack), (shard), __FILE__, __LINE__)

/* rc is code and err starts with prefix. */
static void refused_at(int rc, const char *err, int code, const char *prefix, const char *file,
                       int line)
{
    if (rc != code || strncmp(err, prefix, strlen(prefix))) {
        print_error("want %d \"%s…\", got %d \"%s\"\n", code, prefix, rc, err);
        _fail(file, line);
    }
}
#define REFUSED(rc, err, code, prefix) refused_at((rc), (err), (code), (prefix), __FILE__, __LINE__)

/* The whole model as text (epoch, shards, racks, in name order): equal
 * texts, equal models. malloc'd. */
static char *dump(const orbit_topology_t *t)
{
    size_t cap = 1 << 16, off = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    off += (size_t)snprintf(s, cap, "epoch %" PRIu64 "\n", orbit_topology_epoch(t));
    zlistx_t *l = NULL;
    assert_int_equal(orbit_topology_shards_of_tier(t, 0, &l), ORBIT_OK);
    for (const char *id = zlistx_first(l); id; id = zlistx_next(l)) {
        orbit_topology_shard_t sh;
        assert_int_equal(orbit_topology_get_shard(t, id, &sh), ORBIT_OK);
        off += (size_t)snprintf(s + off, cap - off, "shard %s %u <%s> <%s>\n", sh.id, sh.tier,
                                sh.parent, sh.endpoint);
        assert_true(off < cap);
    }
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_racks_of(t, NULL, &l), ORBIT_OK);
    for (const char *r = zlistx_first(l); r; r = zlistx_next(l)) {
        char owner[ORBIT_TOPOLOGY_NAME_MAX + 1];
        assert_int_equal(orbit_topology_rack_owner(t, r, owner), ORBIT_OK);
        off += (size_t)snprintf(s + off, cap - off, "rack %s %s\n", r, owner);
        assert_true(off < cap);
    }
    zlistx_destroy(&l);
    return s;
}

#define ASSERT_UNCHANGED(t, before)                                                                \
    do {                                                                                           \
        char *now_ = dump(t);                                                                      \
        assert_string_equal(now_, (before));                                                       \
        free(now_);                                                                                \
    } while (0)

/* l holds exactly want[0..n), in that order. */
static void list_is_at(zlistx_t *l, const char *const *want, size_t n, const char *file, int line)
{
    size_t i = 0;
    for (const char *s = zlistx_first(l); s; s = zlistx_next(l), i++)
        if (i >= n || strcmp(s, want[i])) {
            print_error("item %zu: got %s, want %s\n", i, s, i < n ? want[i] : "(end)");
            _fail(file, line);
        }
    if (i != n) {
        print_error("got %zu items, want %zu\n", i, n);
        _fail(file, line);
    }
}
#define LIST_IS(l, ...)                                                                            \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__};                                                 \
        list_is_at((l), want_, sizeof want_ / sizeof want_[0], __FILE__, __LINE__);                \
    } while (0)

/*   root ← zone-a(2) ← rack-1(1): r1 r2, rack-2(1): r3
 *        ← zone-b(2) ← rack-3(1): r4
 *        ← solo(1)                                      */
static void build_tree(orbit_topology_t *t)
{
    ADD_OK(t, "zone-a", 2, NULL);
    ADD_OK(t, "zone-b", 2, "");
    ADD_OK(t, "rack-1", 1, "zone-a");
    ADD_OK(t, "rack-2", 1, "zone-a");
    ADD_OK(t, "rack-3", 1, "zone-b");
    ADD_OK(t, "solo", 1, NULL);
    MOVE_OK(t, "r1", "rack-1");
    MOVE_OK(t, "r2", "rack-1");
    MOVE_OK(t, "r3", "rack-2");
    MOVE_OK(t, "r4", "rack-3");
}

static const char *rack_name(char *buf, size_t len, int i)
{
    snprintf(buf, len, "rack-%04d", i);
    return buf;
}

/* nshards tier-1 shards s00.. under the root and NRACKS racks, each owned by
 * its rendezvous winner. */
static void build_flat(orbit_topology_t *t, int nshards)
{
    char id[16], rack[16], owner[ORBIT_TOPOLOGY_NAME_MAX + 1];
    for (int i = 0; i < nshards; i++) {
        snprintf(id, sizeof id, "s%02d", i);
        ADD_OK(t, id, 1, NULL);
    }
    for (int i = 0; i < NRACKS; i++) {
        rack_name(rack, sizeof rack, i);
        assert_int_equal(orbit_topology_natural_owner(t, rack, owner), ORBIT_OK);
        MOVE_OK(t, rack, owner);
    }
}

/* Nodes of a rack: a deterministic function of its name. */
static uint64_t nodes_of(void *ctx, const char *rack)
{
    int *calls = ctx;
    if (calls)
        (*calls)++;
    uint64_t n = 0;
    for (const char *p = rack; *p; p++)
        n = n * 31 + (unsigned char)*p;
    return 1 + n % 97;
}

/* The moves between two models as "rack:from>to" lines, computed with the
 * public reads only. malloc'd. */
static char *observed_moves(const orbit_topology_t *before, const orbit_topology_t *after,
                            uint64_t *nodes)
{
    size_t cap = 1 << 17, off = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = '\0';
    *nodes = 0;
    zlistx_t *l = NULL;
    assert_int_equal(orbit_topology_racks_of(after, NULL, &l), ORBIT_OK);
    for (const char *r = zlistx_first(l); r; r = zlistx_next(l)) {
        char from[ORBIT_TOPOLOGY_NAME_MAX + 1] = "", to[ORBIT_TOPOLOGY_NAME_MAX + 1];
        int rc = orbit_topology_rack_owner(before, r, from);
        assert_true(rc == ORBIT_OK || rc == ORBIT_ENOTFOUND);
        assert_int_equal(orbit_topology_rack_owner(after, r, to), ORBIT_OK);
        if (strcmp(from, to)) {
            off += (size_t)snprintf(s + off, cap - off, "%s:%s>%s\n", r, from, to);
            *nodes += nodes_of(NULL, r);
            assert_true(off < cap);
        }
    }
    zlistx_destroy(&l);
    /* a rack never disappears */
    assert_int_equal(orbit_topology_rack_count(after) >= orbit_topology_rack_count(before), 1);
    return s;
}

static char *plan_moves(const orbit_topology_move_t *m, size_t n)
{
    size_t cap = 1 << 17, off = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        off += (size_t)snprintf(s + off, cap - off, "%s:%s>%s\n", m[i].rack, m[i].from, m[i].to);
        assert_int_equal(m[i].nodes, nodes_of(NULL, m[i].rack));
        assert_true(off < cap);
    }
    return s;
}

/* Apply a batch the way a plan describes it (a leave drains first) to t. */
static int apply_as_planned(orbit_topology_t *t, const orbit_topology_change_t *c, size_t n,
                            size_t *failed_at, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        int rc;
        orbit_topology_shard_t s;
        if (c[i].op == ORBIT_TOPOLOGY_LEAVE) {
            rc = ORBIT_OK;
            if (orbit_topology_get_shard(t, c[i].shard, &s) == ORBIT_OK && !s.children)
                rc = orbit_topology_drain(t, c[i].shard, err, errlen);
            if (!rc)
                rc = orbit_topology_remove_shard(t, c[i].shard, err, errlen);
        } else {
            rc = orbit_topology_apply(t, &c[i], err, errlen);
        }
        if (rc) {
            *failed_at = i;
            return rc;
        }
    }
    return ORBIT_OK;
}

/* Plan the batch, apply it as planned to a copy, and check that the plan
 * says what happened: same refusal, or the same net moves and node sums. */
static void check_plan_matches(const orbit_topology_t *t, const orbit_topology_change_t *c,
                               size_t n)
{
    char *before = dump(t);
    orbit_topology_plan_t p;
    orbit_topology_plan_init(&p);
    int calls = 0;
    assert_int_equal(orbit_topology_plan(t, c, n, nodes_of, &calls, &p), ORBIT_OK);
    ASSERT_UNCHANGED(t, before);
    free(before);

    orbit_topology_t *copy = orbit_topology_dup(t);
    assert_non_null(copy);
    char err[256] = "";
    size_t at = 0;
    int rc = apply_as_planned(copy, c, n, &at, err, sizeof err);
    if (rc) {
        assert_true(p.refused);
        assert_int_equal(p.refused_at, at);
        assert_int_equal(p.code, rc);
        assert_string_equal(p.reason, err);
        assert_int_equal(p.nmoves + p.nsuggested, 0);
    } else {
        assert_false(p.refused);
        uint64_t nodes;
        char *want = observed_moves(t, copy, &nodes), *got = plan_moves(p.moves, p.nmoves);
        assert_string_equal(got, want);
        assert_int_equal(p.nodes_moved, nodes);
        free(want);
        free(got);
        uint64_t sum = 0;
        for (size_t i = 0; i < p.nsuggested; i++)
            sum += p.suggested[i].nodes;
        assert_int_equal(p.nodes_suggested, sum);
        assert_int_equal((size_t)calls, p.nmoves + p.nsuggested);
        assert_int_equal(orbit_topology_validate(copy, err, sizeof err), ORBIT_OK);
    }
    orbit_topology_destroy(&copy);
    orbit_topology_plan_close(&p);
}

/* xorshift64*: deterministic across platforms. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static uint32_t rndn(uint64_t *s, uint32_t n)
{
    return (uint32_t)(rnd(s) % n);
}

/* ---------------------------------------------------------------- lifecycle */

static void test_lifecycle(void **state)
{
    fx_t *f = *state;
    assert_int_equal(orbit_topology_shard_count(f->t), 0);
    assert_int_equal(orbit_topology_rack_count(f->t), 0);
    assert_int_equal(orbit_topology_epoch(f->t), 0);
    assert_int_equal(orbit_topology_validate(f->t, f->err, sizeof f->err), ORBIT_OK);
    assert_null(orbit_topology_dup(NULL));
    orbit_topology_t *t = NULL;
    orbit_topology_destroy(&t); /* NULL-safe */
    orbit_topology_destroy(NULL);
    build_tree(f->t);
    t = orbit_topology_dup(f->t);
    assert_non_null(t);
    char *a = dump(f->t);
    ASSERT_UNCHANGED(t, a);
    /* a copy is independent */
    MOVE_OK(t, "r1", "solo");
    ASSERT_UNCHANGED(f->t, a);
    free(a);
    orbit_topology_destroy(&t);
    assert_null(t);
}

/* ---------------------------------------------------------------- add */

static void test_add_shard(void **state)
{
    fx_t *f = *state;
    orbit_topology_shard_t s;
    assert_int_equal(orbit_topology_add_shard(f->t, "zone-a", 2, NULL, "tcp://10.0.0.1:7401",
                                              f->err, sizeof f->err),
                     ORBIT_OK);
    ADD_OK(f->t, "rack-1", 1, "zone-a");
    ADD_OK(f->t, "top", 5, NULL); /* an empty parent takes any tier */
    ADD_OK(f->t, "x", 16, "");
    assert_int_equal(orbit_topology_get_shard(f->t, "zone-a", &s), ORBIT_OK);
    assert_string_equal(s.id, "zone-a");
    assert_int_equal(s.tier, 2);
    assert_string_equal(s.parent, "");
    assert_string_equal(s.endpoint, "tcp://10.0.0.1:7401");
    assert_int_equal(s.children, 1);
    assert_int_equal(s.racks, 0);
    assert_int_equal(orbit_topology_get_shard(f->t, "rack-1", &s), ORBIT_OK);
    assert_string_equal(s.parent, "zone-a");
    assert_string_equal(s.endpoint, "");
    assert_int_equal(orbit_topology_get_shard(f->t, "nope", &s), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_topology_get_shard(f->t, NULL, &s), ORBIT_EINVAL);
    assert_int_equal(orbit_topology_shard_count(f->t), 4);
    /* the longest name the ledger takes */
    char longest[ORBIT_TOPOLOGY_NAME_MAX + 1];
    memset(longest, 'n', ORBIT_TOPOLOGY_NAME_MAX);
    longest[ORBIT_TOPOLOGY_NAME_MAX] = '\0';
    ADD_OK(f->t, longest, 1, NULL);
    assert_int_equal(orbit_topology_validate(f->t, f->err, sizeof f->err), ORBIT_OK);
}

static void test_add_shard_refusals(void **state)
{
    fx_t *f = *state;
    build_tree(f->t);
    char toolong[ORBIT_TOPOLOGY_NAME_MAX + 2], longep[ORBIT_TOPOLOGY_ENDPOINT_MAX + 2];
    memset(toolong, 'n', sizeof toolong - 1);
    toolong[sizeof toolong - 1] = '\0';
    memset(longep, 'e', sizeof longep - 1);
    longep[sizeof longep - 1] = '\0';
    static const struct {
        const char *id;
        uint32_t tier;
        const char *parent, *endpoint;
        int code;
        const char *reason;
    } cases[] = {
        {"bad name", 1, NULL, NULL, ORBIT_EINVAL, "shard_join: invalid shard name"},
        {"", 1, NULL, NULL, ORBIT_EINVAL, "shard_join: invalid shard name"},
        {NULL, 1, NULL, NULL, ORBIT_EINVAL, "shard_join: invalid shard name"},
        {"a/b", 1, NULL, NULL, ORBIT_EINVAL, "shard_join: invalid shard name"},
        {"x", 0, NULL, NULL, ORBIT_EINVAL, "shard_join: tier 0 out of range 1..16"},
        {"x", 17, NULL, NULL, ORBIT_EINVAL, "shard_join: tier 17 out of range 1..16"},
        {"x", 1, "zone a", NULL, ORBIT_EINVAL, "shard_join: invalid parent name"},
        {"x", 1, "x", NULL, ORBIT_EINVAL, "shard_join: a shard cannot be its own parent"},
        {"x", 1, NULL, "tcp://h :1", ORBIT_EINVAL, "shard_join: invalid endpoint"},
        /* form before state: an existing id with a bad endpoint is malformed */
        {"zone-a", 2, NULL, "bad\tep", ORBIT_EINVAL, "shard_join: invalid endpoint"},
        {"zone-a", 2, NULL, NULL, ORBIT_EINVAL, "shard_exists: zone-a exists (tier=2)"},
        {"rack-1", 1, "zone-b", NULL, ORBIT_EINVAL, "shard_exists: rack-1 exists (tier=1)"},
        {"x", 1, "zone-x", NULL, ORBIT_ENOTFOUND, "parent: zone-x missing"},
        {"x", 2, "zone-a", NULL, ORBIT_EINVAL, "parent: zone-a tier=2, want 3"},
        {"x", 1, "rack-1", NULL, ORBIT_EINVAL, "parent: rack-1 tier=1, want 2"},
        {"x", 1, "solo", NULL, ORBIT_EINVAL, "parent: solo tier=1, want 2"},
    };
    char *before = dump(f->t);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f->err[0] = '\0';
        int rc = orbit_topology_add_shard(f->t, cases[i].id, cases[i].tier, cases[i].parent,
                                          cases[i].endpoint, f->err, sizeof f->err);
        REFUSED(rc, f->err, cases[i].code, cases[i].reason);
        assert_string_equal(f->err, cases[i].reason);
        ASSERT_UNCHANGED(f->t, before);
    }
    REFUSED(orbit_topology_add_shard(f->t, toolong, 1, NULL, NULL, f->err, sizeof f->err), f->err,
            ORBIT_EINVAL, "shard_join: invalid shard name");
    REFUSED(orbit_topology_add_shard(f->t, "x", 1, toolong, NULL, f->err, sizeof f->err), f->err,
            ORBIT_EINVAL, "shard_join: invalid parent name");
    REFUSED(orbit_topology_add_shard(f->t, "x", 1, NULL, longep, f->err, sizeof f->err), f->err,
            ORBIT_EINVAL, "shard_join: invalid endpoint");
    longep[ORBIT_TOPOLOGY_ENDPOINT_MAX] = '\0'; /* 255 bytes: fine */
    ASSERT_UNCHANGED(f->t, before);
    assert_int_equal(orbit_topology_add_shard(f->t, "x", 1, NULL, longep, NULL, 0), ORBIT_OK);
    /* err is optional, and a short one is cut, not overrun */
    assert_int_equal(orbit_topology_add_shard(f->t, "x", 1, NULL, NULL, NULL, 0), ORBIT_EINVAL);
    char tiny[8];
    assert_int_equal(orbit_topology_add_shard(f->t, "x", 1, NULL, NULL, tiny, sizeof tiny),
                     ORBIT_EINVAL);
    assert_string_equal(tiny, "shard_e");
    assert_int_equal(orbit_topology_add_shard(NULL, "y", 1, NULL, NULL, NULL, 0), ORBIT_EINVAL);
    free(before);
}

/* A cycle cannot be built with add alone (a parent is always one tier up);
 * in a model loaded inconsistent, add still refuses to close a loop. */
static void test_add_refuses_cycle(void **state)
{
    fx_t *f = *state;
    orbit_topology_shard_t a = {.id = "a", .tier = 3, .parent = "b"};
    assert_int_equal(orbit_topology_put_shard(f->t, &a, f->err, sizeof f->err), ORBIT_OK);
    REFUSED(orbit_topology_validate(f->t, f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "parent: a under b, missing");
    char *before = dump(f->t);
    REFUSED(orbit_topology_add_shard(f->t, "b", 2, "a", NULL, f->err, sizeof f->err), f->err,
            ORBIT_EINVAL, "cycle: b would be its own ancestor through a");
    ASSERT_UNCHANGED(f->t, before);
    free(before);
}

/* ---------------------------------------------------------------- remove */

static void test_remove_shard(void **state)
{
    fx_t *f = *state;
    orbit_topology_shard_t s;
    build_tree(f->t);
    char *before = dump(f->t);
    REFUSED(orbit_topology_remove_shard(f->t, "bad name", f->err, sizeof f->err), f->err,
            ORBIT_EINVAL, "shard_leave: invalid shard name");
    REFUSED(orbit_topology_remove_shard(f->t, NULL, f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "shard_leave: invalid shard name");
    REFUSED(orbit_topology_remove_shard(f->t, "nope", f->err, sizeof f->err), f->err,
            ORBIT_ENOTFOUND, "no such shard nope");
    REFUSED(orbit_topology_remove_shard(f->t, "rack-1", f->err, sizeof f->err), f->err,
            ORBIT_EINVAL, "shard_busy: rack-1 racks=2,children=0");
    REFUSED(orbit_topology_remove_shard(f->t, "zone-a", f->err, sizeof f->err), f->err,
            ORBIT_EINVAL, "shard_busy: zone-a racks=0,children=2");
    ASSERT_UNCHANGED(f->t, before);
    free(before);

    assert_int_equal(orbit_topology_remove_shard(f->t, "solo", f->err, sizeof f->err), ORBIT_OK);
    assert_int_equal(orbit_topology_get_shard(f->t, "solo", &s), ORBIT_ENOTFOUND);
    MOVE_OK(f->t, "r1", "rack-2");
    MOVE_OK(f->t, "r2", "rack-3");
    assert_int_equal(orbit_topology_remove_shard(f->t, "rack-1", f->err, sizeof f->err), ORBIT_OK);
    REFUSED(orbit_topology_remove_shard(f->t, "zone-a", f->err, sizeof f->err), f->err,
            ORBIT_EINVAL, "shard_busy: zone-a racks=0,children=1");
    MOVE_OK(f->t, "r1", "rack-3");
    MOVE_OK(f->t, "r3", "rack-3");
    assert_int_equal(orbit_topology_remove_shard(f->t, "rack-2", f->err, sizeof f->err), ORBIT_OK);
    assert_int_equal(orbit_topology_remove_shard(f->t, "zone-a", f->err, sizeof f->err), ORBIT_OK);
    assert_int_equal(orbit_topology_get_shard(f->t, "rack-3", &s), ORBIT_OK);
    assert_int_equal(s.racks, 4);
    assert_int_equal(orbit_topology_shard_count(f->t), 2);
    assert_int_equal(orbit_topology_validate(f->t, f->err, sizeof f->err), ORBIT_OK);
}

/* ---------------------------------------------------------------- move */

static void test_move_rack(void **state)
{
    fx_t *f = *state;
    char owner[ORBIT_TOPOLOGY_NAME_MAX + 1];
    build_tree(f->t);
    assert_int_equal(orbit_topology_rack_count(f->t), 4);
    assert_int_equal(orbit_topology_rack_owner(f->t, "r9", owner), ORBIT_ENOTFOUND);
    MOVE_OK(f->t, "r9", "solo"); /* a new rack */
    assert_int_equal(orbit_topology_rack_owner(f->t, "r9", owner), ORBIT_OK);
    assert_string_equal(owner, "solo");
    char *before = dump(f->t);
    MOVE_OK(f->t, "r9", "solo"); /* already there: no change */
    ASSERT_UNCHANGED(f->t, before);
    REFUSED(orbit_topology_move_rack(f->t, "r1", "zone-a", f->err, sizeof f->err), f->err,
            ORBIT_EINVAL, "shard: zone-a tier=2, want 1");
    REFUSED(orbit_topology_move_rack(f->t, "r1", "nowhere", f->err, sizeof f->err), f->err,
            ORBIT_ENOTFOUND, "shard: nowhere missing");
    REFUSED(orbit_topology_move_rack(f->t, "new", "nowhere", f->err, sizeof f->err), f->err,
            ORBIT_ENOTFOUND, "shard: nowhere missing");
    REFUSED(orbit_topology_move_rack(f->t, "r 1", "solo", f->err, sizeof f->err), f->err,
            ORBIT_EINVAL, "rack_move: invalid rack name");
    REFUSED(orbit_topology_move_rack(f->t, NULL, "solo", f->err, sizeof f->err), f->err,
            ORBIT_EINVAL, "rack_move: invalid rack name");
    REFUSED(orbit_topology_move_rack(f->t, "r1", "", f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "rack_move: invalid shard name");
    ASSERT_UNCHANGED(f->t, before);
    free(before);
    MOVE_OK(f->t, "r1", "rack-3");
    assert_int_equal(orbit_topology_rack_owner(f->t, "r1", owner), ORBIT_OK);
    assert_string_equal(owner, "rack-3");
    assert_int_equal(orbit_topology_rack_owner(f->t, NULL, owner), ORBIT_EINVAL);
    assert_int_equal(orbit_topology_rack_count(f->t), 5);
}

static void test_apply_and_pb(void **state)
{
    fx_t *f = *state;
    orbit_topology_change_t c;
    Orbit__Ledger__TopologyChange pb = ORBIT__LEDGER__TOPOLOGY_CHANGE__INIT;
    Orbit__Ledger__ShardJoin j = ORBIT__LEDGER__SHARD_JOIN__INIT;
    Orbit__Ledger__ShardLeave l = ORBIT__LEDGER__SHARD_LEAVE__INIT;
    Orbit__Ledger__RackMove m = ORBIT__LEDGER__RACK_MOVE__INIT;
    orbit_topology_shard_t s;
    char owner[ORBIT_TOPOLOGY_NAME_MAX + 1];

    assert_int_equal(orbit_topology_change_from_pb(&pb, &c), ORBIT_EINVAL); /* no change set */
    assert_int_equal(orbit_topology_change_from_pb(NULL, &c), ORBIT_EINVAL);
    j.shard = "rk";
    j.tier = 1;
    j.endpoint = "tcp://127.0.0.1:7500";
    pb.change_case = ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_JOIN;
    pb.join = &j;
    assert_int_equal(orbit_topology_change_from_pb(&pb, &c), ORBIT_OK);
    assert_int_equal(c.op, ORBIT_TOPOLOGY_JOIN);
    assert_int_equal(orbit_topology_apply(f->t, &c, f->err, sizeof f->err), ORBIT_OK);
    assert_int_equal(orbit_topology_get_shard(f->t, "rk", &s), ORBIT_OK);
    assert_string_equal(s.endpoint, "tcp://127.0.0.1:7500");

    m.rack = "k1";
    m.shard = "rk";
    pb.change_case = ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_MOVE;
    pb.move = &m;
    assert_int_equal(orbit_topology_change_from_pb(&pb, &c), ORBIT_OK);
    assert_int_equal(orbit_topology_apply(f->t, &c, f->err, sizeof f->err), ORBIT_OK);
    assert_int_equal(orbit_topology_rack_owner(f->t, "k1", owner), ORBIT_OK);
    assert_string_equal(owner, "rk");

    l.shard = "rk";
    pb.change_case = ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_LEAVE;
    pb.leave = &l;
    assert_int_equal(orbit_topology_change_from_pb(&pb, &c), ORBIT_OK);
    REFUSED(orbit_topology_apply(f->t, &c, f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "shard_busy: rk racks=1,children=0");

    c.op = (orbit_topology_op_t)0;
    REFUSED(orbit_topology_apply(f->t, &c, f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "topology: no change set");
    REFUSED(orbit_topology_apply(f->t, NULL, f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "topology: no change set");
}

/* ---------------------------------------------------------------- validate */

static void put(orbit_topology_t *t, const char *id, uint32_t tier, const char *parent)
{
    orbit_topology_shard_t s;
    char err[256];
    memset(&s, 0, sizeof s);
    snprintf(s.id, sizeof s.id, "%s", id);
    s.tier = tier;
    snprintf(s.parent, sizeof s.parent, "%s", parent);
    assert_int_equal(orbit_topology_put_shard(t, &s, err, sizeof err), ORBIT_OK);
}

static void validate_fails(void (*build)(orbit_topology_t *), const char *want)
{
    char err[256] = "";
    orbit_topology_t *t = orbit_topology_new();
    assert_non_null(t);
    build(t);
    assert_int_equal(orbit_topology_validate(t, err, sizeof err), ORBIT_EINVAL);
    assert_string_equal(err, want);
    orbit_topology_destroy(&t);
}

static void cycle2(orbit_topology_t *t)
{
    put(t, "x", 1, "y");
    put(t, "y", 2, "x");
}

static void cycle3_behind_tail(orbit_topology_t *t)
{
    put(t, "a", 1, "p");
    put(t, "p", 2, "q");
    put(t, "q", 3, "r");
    put(t, "r", 4, "p");
}

static void missing_parent(orbit_topology_t *t)
{
    put(t, "a", 1, "zz");
    put(t, "b", 1, "");
}

static void bad_tier(orbit_topology_t *t)
{
    put(t, "z", 3, "");
    put(t, "a", 1, "z");
}

static void orphan_rack(orbit_topology_t *t)
{
    put(t, "s", 1, "");
    assert_int_equal(orbit_topology_put_rack(t, "r", "ghost", NULL, 0), ORBIT_OK);
}

static void zone_rack(orbit_topology_t *t)
{
    put(t, "z", 2, "");
    assert_int_equal(orbit_topology_put_rack(t, "r", "z", NULL, 0), ORBIT_OK);
}

static void test_validate(void **state)
{
    fx_t *f = *state;
    build_tree(f->t);
    assert_int_equal(orbit_topology_validate(f->t, f->err, sizeof f->err), ORBIT_OK);
    validate_fails(cycle2, "cycle: x -> y -> x");
    validate_fails(cycle3_behind_tail, "cycle: p -> q -> r -> p");
    validate_fails(missing_parent, "parent: a under zz, missing");
    validate_fails(bad_tier, "tier: a tier=1 under z tier=3, want 2");
    validate_fails(orphan_rack, "orphan_rack: r owner ghost missing");
    validate_fails(zone_rack, "orphan_rack: r owner z tier=2, want 1");
    /* a long loop reported into a short buffer is cut, not overrun */
    orbit_topology_t *t = orbit_topology_new();
    assert_non_null(t);
    char id[8], parent[8], small[20];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "c%02d", i);
        snprintf(parent, sizeof parent, "c%02d", (i + 1) % 40);
        put(t, id, (uint32_t)(i % 16) + 1, parent);
    }
    assert_int_equal(orbit_topology_validate(t, small, sizeof small), ORBIT_EINVAL);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(strncmp(small, "cycle: ", 7), 0);
    assert_int_equal(orbit_topology_validate(t, NULL, 0), ORBIT_EINVAL);
    orbit_topology_destroy(&t);
}

static void test_put(void **state)
{
    fx_t *f = *state;
    orbit_topology_shard_t s, got;
    memset(&s, 0, sizeof s);
    snprintf(s.id, sizeof s.id, "p");
    s.tier = 0;
    REFUSED(orbit_topology_put_shard(f->t, &s, f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "shard: p tier 0 out of range");
    s.tier = 1;
    snprintf(s.parent, sizeof s.parent, "p");
    REFUSED(orbit_topology_put_shard(f->t, &s, f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "shard: p cannot be its own parent");
    snprintf(s.parent, sizeof s.parent, "b d");
    REFUSED(orbit_topology_put_shard(f->t, &s, f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "shard: p invalid parent name");
    s.parent[0] = '\0';
    snprintf(s.endpoint, sizeof s.endpoint, "a b");
    REFUSED(orbit_topology_put_shard(f->t, &s, f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "shard: p invalid endpoint");
    s.endpoint[0] = '\0';
    memset(s.id, 'x', sizeof s.id); /* unterminated */
    REFUSED(orbit_topology_put_shard(f->t, &s, f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "shard: unterminated field");
    REFUSED(orbit_topology_put_shard(f->t, NULL, f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "shard: invalid shard name");
    REFUSED(orbit_topology_put_rack(f->t, "r r", "s", f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "rack: invalid rack name");
    REFUSED(orbit_topology_put_rack(f->t, "r", NULL, f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "rack: r invalid owner name");
    assert_int_equal(orbit_topology_shard_count(f->t), 0);
    assert_int_equal(orbit_topology_rack_count(f->t), 0);
    /* put replaces, and ignores the derived counts it is given */
    put(f->t, "p", 1, "");
    put(f->t, "p", 2, "");
    snprintf(s.id, sizeof s.id, "q");
    s.tier = 1;
    s.racks = 99;
    s.children = 7;
    assert_int_equal(orbit_topology_put_shard(f->t, &s, f->err, sizeof f->err), ORBIT_OK);
    assert_int_equal(orbit_topology_get_shard(f->t, "p", &got), ORBIT_OK);
    assert_int_equal(got.tier, 2);
    assert_int_equal(orbit_topology_get_shard(f->t, "q", &got), ORBIT_OK);
    assert_int_equal(got.racks + got.children, 0);
    assert_int_equal(orbit_topology_shard_count(f->t), 2);
}

/* ---------------------------------------------------------------- epoch */

static void test_epoch(void **state)
{
    fx_t *f = *state;
    assert_int_equal(orbit_topology_check_epoch(f->t, 0, f->err, sizeof f->err), ORBIT_OK);
    orbit_topology_set_epoch(f->t, 7);
    build_tree(f->t); /* changes never move the epoch themselves */
    assert_int_equal(orbit_topology_epoch(f->t), 7);
    assert_int_equal(orbit_topology_check_epoch(f->t, 7, f->err, sizeof f->err), ORBIT_OK);
    REFUSED(orbit_topology_check_epoch(f->t, 6, f->err, sizeof f->err), f->err, ORBIT_EAGAIN,
            "stale_epoch: expected 6, topology at 7");
    REFUSED(orbit_topology_check_epoch(f->t, 8, f->err, sizeof f->err), f->err, ORBIT_EAGAIN,
            "stale_epoch: expected 8, topology at 7");
    orbit_topology_t *c = orbit_topology_dup(f->t);
    assert_non_null(c);
    assert_int_equal(orbit_topology_epoch(c), 7);
    orbit_topology_destroy(&c);
}

/* ---------------------------------------------------------------- lists */

static void test_lists(void **state)
{
    fx_t *f = *state;
    zlistx_t *l = NULL;
    build_tree(f->t);
    assert_int_equal(orbit_topology_children(f->t, NULL, &l), ORBIT_OK);
    LIST_IS(l, "solo", "zone-a", "zone-b");
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_children(f->t, "", &l), ORBIT_OK);
    LIST_IS(l, "solo", "zone-a", "zone-b");
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_children(f->t, "zone-a", &l), ORBIT_OK);
    LIST_IS(l, "rack-1", "rack-2");
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_children(f->t, "rack-1", &l), ORBIT_OK);
    assert_int_equal(zlistx_size(l), 0);
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_shards_of_tier(f->t, 1, &l), ORBIT_OK);
    LIST_IS(l, "rack-1", "rack-2", "rack-3", "solo");
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_shards_of_tier(f->t, 2, &l), ORBIT_OK);
    LIST_IS(l, "zone-a", "zone-b");
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_shards_of_tier(f->t, 0, &l), ORBIT_OK);
    assert_int_equal(zlistx_size(l), 6);
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_racks_of(f->t, "rack-1", &l), ORBIT_OK);
    LIST_IS(l, "r1", "r2");
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_racks_of(f->t, "zone-a", &l), ORBIT_OK);
    assert_int_equal(zlistx_size(l), 0);
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_racks_of(f->t, NULL, &l), ORBIT_OK);
    /* the list owns copies: it outlives the model */
    orbit_topology_destroy(&f->t);
    LIST_IS(l, "r1", "r2", "r3", "r4");
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_racks_of(NULL, NULL, &l), ORBIT_EINVAL);
    assert_null(l);
    assert_int_equal(orbit_topology_children(NULL, NULL, &l), ORBIT_EINVAL);
    assert_int_equal(orbit_topology_candidates(NULL, "r", &l), ORBIT_EINVAL);
}

/* ---------------------------------------------------------------- rendezvous */

static void test_hrw_pinned(void **state)
{
    (void)state;
    /* Leaves, shards and orbitctl of every version must rank alike: these
     * values may never change. */
    assert_int_equal(orbit_topology_hrw_weight("", ""), 0x25fc6dd36ce04b20ULL);
    assert_int_equal(orbit_topology_hrw_weight("r1", "s1"), 0xc1045122d9939868ULL);
    assert_int_equal(orbit_topology_hrw_weight("rack-0001", "rack-shard-a"), 0x0e32708141178b70ULL);
    /* the separator keeps the pair apart from its concatenation */
    assert_true(orbit_topology_hrw_weight("ab", "c") != orbit_topology_hrw_weight("a", "bc"));
    assert_true(orbit_topology_hrw_weight("r1", "s1") != orbit_topology_hrw_weight("s1", "r1"));
    assert_int_equal(orbit_topology_hrw_weight(NULL, NULL), orbit_topology_hrw_weight("", ""));

    size_t w = 99;
    const char *none[1] = {NULL};
    assert_int_equal(orbit_topology_hrw_pick("r", none, 0, &w), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_topology_hrw_pick("r", none, 1, &w), ORBIT_EINVAL);
    assert_int_equal(orbit_topology_hrw_pick(NULL, none, 1, &w), ORBIT_EINVAL);
    assert_int_equal(w, 99);
    assert_int_equal(orbit_topology_hrw_rank("r", (const char **)none, 1), ORBIT_EINVAL);
    assert_int_equal(orbit_topology_hrw_rank("r", NULL, 0), ORBIT_OK);
}

static void test_hrw_rank_order(void **state)
{
    (void)state;
    const char *base[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    const size_t n = sizeof base / sizeof base[0];
    char rack[16];
    for (int r = 0; r < 50; r++) {
        rack_name(rack, sizeof rack, r);
        const char *x[8], *y[8];
        memcpy(x, base, sizeof x);
        for (size_t i = 0; i < n; i++) /* another input order */
            y[i] = base[(i * 3 + (size_t)r) % n];
        assert_int_equal(orbit_topology_hrw_rank(rack, x, n), ORBIT_OK);
        assert_int_equal(orbit_topology_hrw_rank(rack, y, n), ORBIT_OK);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(x[i], y[i]);
        for (size_t i = 1; i < n; i++) {
            assert_true(orbit_topology_hrw_weight(rack, x[i - 1]) >=
                        orbit_topology_hrw_weight(rack, x[i]));
            assert_true(orbit_topology_hrw_before(rack, x[i - 1], x[i]));
            assert_false(orbit_topology_hrw_before(rack, x[i], x[i - 1]));
        }
        size_t w;
        assert_int_equal(orbit_topology_hrw_pick(rack, base, n, &w), ORBIT_OK);
        assert_string_equal(base[w], x[0]);
    }
}

/* Racks spread evenly: each of 10 shards wins about a tenth of them. */
static void test_hrw_spread(void **state)
{
    (void)state;
    const char *ids[10] = {"s00", "s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09"};
    int wins[10] = {0};
    char rack[16];
    for (int r = 0; r < NRACKS; r++) {
        size_t w;
        assert_int_equal(orbit_topology_hrw_pick(rack_name(rack, sizeof rack, r), ids, 10, &w),
                         ORBIT_OK);
        wins[w]++;
    }
    for (int i = 0; i < 10; i++) { /* expected 100, sd 9.5 */
        if (wins[i] < 60 || wins[i] > 140)
            fail_msg("shard %d wins %d of %d racks", i, wins[i], NRACKS);
    }
}

/* Adding one shard to N changes the winner of about 1/(N+1) of the racks,
 * and every one of them to the new shard. */
static void test_hrw_add_moves_only_to_new(void **state)
{
    (void)state;
    static const int sizes[] = {1, 2, 3, 4, 5, 8, 10, 16, 32, 64};
    const char *ids[65];
    char names[65][8], rack[16];
    for (int i = 0; i < 65; i++) {
        snprintf(names[i], sizeof names[i], "s%02d", i);
        ids[i] = names[i];
    }
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int n = sizes[k], changed = 0;
        for (int r = 0; r < NRACKS; r++) {
            size_t before, after;
            rack_name(rack, sizeof rack, r);
            assert_int_equal(orbit_topology_hrw_pick(rack, ids, (size_t)n, &before), ORBIT_OK);
            assert_int_equal(orbit_topology_hrw_pick(rack, ids, (size_t)n + 1, &after), ORBIT_OK);
            if (before != after) {
                assert_int_equal(after, n); /* moved to the new shard, nowhere else */
                changed++;
            }
        }
        double p = 1.0 / (n + 1), want = NRACKS * p, sd = sqrt(NRACKS * p * (1 - p));
        if (fabs(changed - want) > 4 * sd + 1)
            fail_msg("N=%d: %d racks changed, want %.1f ± %.1f", n, changed, want, 4 * sd + 1);
    }
}

/* Removing a shard changes the winner only of its own racks, each to the
 * rack's second choice. */
static void test_hrw_remove_moves_only_its_racks(void **state)
{
    (void)state;
    const char *all[10] = {"s00", "s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09"};
    const char *rest[9];
    for (int gone = 0; gone < 10; gone++) {
        int k = 0, moved = 0;
        for (int i = 0; i < 10; i++)
            if (i != gone)
                rest[k++] = all[i];
        char rack[16];
        for (int r = 0; r < NRACKS; r++) {
            size_t before, after;
            const char *ranked[10];
            rack_name(rack, sizeof rack, r);
            memcpy(ranked, all, sizeof ranked);
            assert_int_equal(orbit_topology_hrw_rank(rack, ranked, 10), ORBIT_OK);
            assert_int_equal(orbit_topology_hrw_pick(rack, all, 10, &before), ORBIT_OK);
            assert_int_equal(orbit_topology_hrw_pick(rack, rest, 9, &after), ORBIT_OK);
            if (strcmp(all[before], rest[after])) {
                assert_string_equal(all[before], all[gone]);
                assert_string_equal(rest[after], ranked[1]);
                moved++;
            } else {
                assert_string_not_equal(all[before], all[gone]);
            }
        }
        assert_true(moved > 0);
    }
}

/* ---------------------------------------------------------------- candidates */

static void test_candidates(void **state)
{
    fx_t *f = *state;
    zlistx_t *l = NULL, *again = NULL;
    build_tree(f->t);
    /* r3 is owned by rack-2: owner first, then the other tier-1 shards
     * ranked, zone shards never */
    assert_int_equal(orbit_topology_candidates(f->t, "r3", &l), ORBIT_OK);
    assert_int_equal(zlistx_size(l), 4);
    assert_string_equal(zlistx_first(l), "rack-2");
    const char *others[3] = {"rack-1", "rack-3", "solo"};
    assert_int_equal(orbit_topology_hrw_rank("r3", others, 3), ORBIT_OK);
    LIST_IS(l, "rack-2", others[0], others[1], others[2]);

    /* the same on every call, in a copy, and in a model built in another
     * order */
    assert_int_equal(orbit_topology_candidates(f->t, "r3", &again), ORBIT_OK);
    LIST_IS(again, "rack-2", others[0], others[1], others[2]);
    zlistx_destroy(&again);
    orbit_topology_t *c = orbit_topology_dup(f->t);
    assert_non_null(c);
    assert_int_equal(orbit_topology_candidates(c, "r3", &again), ORBIT_OK);
    LIST_IS(again, "rack-2", others[0], others[1], others[2]);
    zlistx_destroy(&again);
    orbit_topology_destroy(&c);
    c = orbit_topology_new();
    assert_non_null(c);
    ADD_OK(c, "solo", 1, NULL);
    ADD_OK(c, "zone-b", 2, NULL);
    ADD_OK(c, "rack-3", 1, "zone-b");
    ADD_OK(c, "zone-a", 2, NULL);
    ADD_OK(c, "rack-2", 1, "zone-a");
    ADD_OK(c, "rack-1", 1, "zone-a");
    MOVE_OK(c, "r3", "rack-2");
    assert_int_equal(orbit_topology_candidates(c, "r3", &again), ORBIT_OK);
    LIST_IS(again, "rack-2", others[0], others[1], others[2]);
    zlistx_destroy(&again);
    orbit_topology_destroy(&c);
    zlistx_destroy(&l);

    /* an unknown rack: the pure rendezvous order, the natural owner first */
    char nat[ORBIT_TOPOLOGY_NAME_MAX + 1];
    const char *all[4] = {"rack-1", "rack-2", "rack-3", "solo"};
    assert_int_equal(orbit_topology_hrw_rank("r-new", all, 4), ORBIT_OK);
    assert_int_equal(orbit_topology_candidates(f->t, "r-new", &l), ORBIT_OK);
    LIST_IS(l, all[0], all[1], all[2], all[3]);
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_natural_owner(f->t, "r-new", nat), ORBIT_OK);
    assert_string_equal(nat, all[0]);

    assert_int_equal(orbit_topology_candidates(f->t, "bad rack", &l), ORBIT_EINVAL);
    assert_null(l);
    /* no tier-1 shard: no candidate */
    c = orbit_topology_new();
    assert_non_null(c);
    ADD_OK(c, "zone", 2, NULL);
    assert_int_equal(orbit_topology_candidates(c, "r1", &l), ORBIT_OK);
    assert_int_equal(zlistx_size(l), 0);
    zlistx_destroy(&l);
    assert_int_equal(orbit_topology_natural_owner(c, "r1", nat), ORBIT_ENOTFOUND);
    orbit_topology_destroy(&c);
}

/* ---------------------------------------------------------------- drain */

static void test_drain(void **state)
{
    fx_t *f = *state;
    char rack[16], owner[ORBIT_TOPOLOGY_NAME_MAX + 1], next[NRACKS][ORBIT_TOPOLOGY_NAME_MAX + 1];
    char before_owner[NRACKS][ORBIT_TOPOLOGY_NAME_MAX + 1];
    build_flat(f->t, 5);
    for (int r = 0; r < NRACKS; r++) {
        zlistx_t *l = NULL;
        rack_name(rack, sizeof rack, r);
        assert_int_equal(orbit_topology_candidates(f->t, rack, &l), ORBIT_OK);
        snprintf(before_owner[r], sizeof before_owner[r], "%s", (char *)zlistx_first(l));
        snprintf(next[r], sizeof next[r], "%s", (char *)zlistx_next(l));
        zlistx_destroy(&l);
    }
    orbit_topology_shard_t s;
    assert_int_equal(orbit_topology_get_shard(f->t, "s02", &s), ORBIT_OK);
    assert_true(s.racks > 100);
    assert_int_equal(orbit_topology_drain(f->t, "s02", f->err, sizeof f->err), ORBIT_OK);
    for (int r = 0; r < NRACKS; r++) {
        rack_name(rack, sizeof rack, r);
        assert_int_equal(orbit_topology_rack_owner(f->t, rack, owner), ORBIT_OK);
        /* its racks went to their next candidate; no other rack moved */
        assert_string_equal(owner, strcmp(before_owner[r], "s02") ? before_owner[r] : next[r]);
    }
    assert_int_equal(orbit_topology_get_shard(f->t, "s02", &s), ORBIT_OK);
    assert_int_equal(s.racks, 0);
    assert_int_equal(orbit_topology_remove_shard(f->t, "s02", f->err, sizeof f->err), ORBIT_OK);
    assert_int_equal(orbit_topology_validate(f->t, f->err, sizeof f->err), ORBIT_OK);

    /* refusals change nothing */
    orbit_topology_t *t = orbit_topology_new();
    assert_non_null(t);
    ADD_OK(t, "zone", 2, NULL);
    ADD_OK(t, "only", 1, "zone");
    MOVE_OK(t, "r1", "only");
    char *before = dump(t);
    REFUSED(orbit_topology_drain(t, "only", f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "shard_busy: only racks=1 and no other tier-1 shard");
    REFUSED(orbit_topology_drain(t, "nope", f->err, sizeof f->err), f->err, ORBIT_ENOTFOUND,
            "no such shard nope");
    REFUSED(orbit_topology_drain(t, "no pe", f->err, sizeof f->err), f->err, ORBIT_EINVAL,
            "drain: invalid shard name");
    /* a shard without racks drains to nothing, even with no other shard */
    assert_int_equal(orbit_topology_drain(t, "zone", f->err, sizeof f->err), ORBIT_OK);
    ASSERT_UNCHANGED(t, before);
    free(before);
    orbit_topology_destroy(&t);
}

/* ---------------------------------------------------------------- plan */

static void test_plan_moves(void **state)
{
    fx_t *f = *state;
    build_tree(f->t);
    const orbit_topology_change_t c[] = {
        {.op = ORBIT_TOPOLOGY_MOVE, .rack = "r1", .shard = "rack-2"},
        {.op = ORBIT_TOPOLOGY_MOVE, .rack = "r1", .shard = "rack-3"}, /* net: rack-1 → rack-3 */
        {.op = ORBIT_TOPOLOGY_MOVE, .rack = "r9", .shard = "solo"},   /* a new rack */
        {.op = ORBIT_TOPOLOGY_MOVE, .rack = "r2", .shard = "rack-1"}, /* already there */
        {.op = ORBIT_TOPOLOGY_MOVE, .rack = "r3", .shard = "solo"},
        {.op = ORBIT_TOPOLOGY_MOVE, .rack = "r3", .shard = "rack-2"}, /* and back */
    };
    orbit_topology_plan_t p;
    orbit_topology_plan_init(&p);
    assert_int_equal(orbit_topology_plan(f->t, c, 6, nodes_of, NULL, &p), ORBIT_OK);
    assert_false(p.refused);
    assert_int_equal(p.nmoves, 2);
    assert_string_equal(p.moves[0].rack, "r1");
    assert_string_equal(p.moves[0].from, "rack-1");
    assert_string_equal(p.moves[0].to, "rack-3");
    assert_string_equal(p.moves[1].rack, "r9");
    assert_string_equal(p.moves[1].from, "");
    assert_string_equal(p.moves[1].to, "solo");
    assert_int_equal(p.nodes_moved, nodes_of(NULL, "r1") + nodes_of(NULL, "r9"));
    assert_int_equal(p.nsuggested, 0);
    /* without a counter, no nodes; a plan struct is reusable without close */
    assert_int_equal(orbit_topology_plan(f->t, c, 6, NULL, NULL, &p), ORBIT_OK);
    assert_int_equal(p.nmoves, 2);
    assert_int_equal(p.nodes_moved + p.moves[0].nodes + p.moves[1].nodes, 0);
    /* an empty batch */
    assert_int_equal(orbit_topology_plan(f->t, NULL, 0, NULL, NULL, &p), ORBIT_OK);
    assert_int_equal(p.nmoves + p.nsuggested, 0);
    assert_false(p.refused);
    assert_int_equal(orbit_topology_plan(NULL, c, 1, NULL, NULL, &p), ORBIT_EINVAL);
    assert_int_equal(orbit_topology_plan(f->t, NULL, 1, NULL, NULL, &p), ORBIT_EINVAL);
    assert_int_equal(orbit_topology_plan(f->t, c, 1, NULL, NULL, NULL), ORBIT_EINVAL);
    orbit_topology_plan_close(&p);
    orbit_topology_plan_close(&p);
    orbit_topology_plan_close(NULL);
    check_plan_matches(f->t, c, 6);
}

/* add-shard: the join moves nothing; the suggestions are exactly the racks
 * the new shard wins, about 1/(N+1) of them, from wherever they are. */
static void test_plan_join_suggests_takeover(void **state)
{
    fx_t *f = *state;
    build_flat(f->t, 10);
    const orbit_topology_change_t c = {.op = ORBIT_TOPOLOGY_JOIN, .shard = "new", .tier = 1};
    orbit_topology_plan_t p;
    orbit_topology_plan_init(&p);
    assert_int_equal(orbit_topology_plan(f->t, &c, 1, nodes_of, NULL, &p), ORBIT_OK);
    assert_false(p.refused);
    assert_int_equal(p.nmoves, 0);
    double q = 1.0 / 11, want = NRACKS * q, sd = sqrt(NRACKS * q * (1 - q));
    if (fabs((double)p.nsuggested - want) > 4 * sd + 1)
        fail_msg("%zu racks suggested, want %.1f", p.nsuggested, want);
    orbit_topology_t *after = orbit_topology_dup(f->t);
    assert_non_null(after);
    ADD_OK(after, "new", 1, NULL);
    size_t k = 0;
    uint64_t nodes = 0;
    char rack[16], nat[ORBIT_TOPOLOGY_NAME_MAX + 1], owner[ORBIT_TOPOLOGY_NAME_MAX + 1];
    for (int r = 0; r < NRACKS; r++) {
        rack_name(rack, sizeof rack, r);
        assert_int_equal(orbit_topology_natural_owner(after, rack, nat), ORBIT_OK);
        assert_int_equal(orbit_topology_rack_owner(f->t, rack, owner), ORBIT_OK);
        if (strcmp(nat, "new")) {
            assert_string_equal(nat, owner); /* nobody else's winner changed */
            continue;
        }
        assert_true(k < p.nsuggested);
        assert_string_equal(p.suggested[k].rack, rack);
        assert_string_equal(p.suggested[k].from, owner);
        assert_string_equal(p.suggested[k].to, "new");
        nodes += nodes_of(NULL, rack);
        k++;
    }
    assert_int_equal(k, p.nsuggested);
    assert_int_equal(p.nodes_suggested, nodes);
    orbit_topology_destroy(&after);

    /* a zone shard joining suggests nothing; a join under a zone does */
    const orbit_topology_change_t zone[] = {
        {.op = ORBIT_TOPOLOGY_JOIN, .shard = "z", .tier = 2},
        {.op = ORBIT_TOPOLOGY_JOIN, .shard = "zr", .tier = 1, .parent = "z"},
    };
    assert_int_equal(orbit_topology_plan(f->t, zone, 1, NULL, NULL, &p), ORBIT_OK);
    assert_int_equal(p.nmoves + p.nsuggested, 0);
    assert_int_equal(orbit_topology_plan(f->t, zone, 2, NULL, NULL, &p), ORBIT_OK);
    assert_true(p.nsuggested > 0);
    for (size_t i = 0; i < p.nsuggested; i++)
        assert_string_equal(p.suggested[i].to, "zr");
    /* joined then left in the same batch: nothing to suggest */
    const orbit_topology_change_t gone[] = {
        {.op = ORBIT_TOPOLOGY_JOIN, .shard = "tmp", .tier = 1},
        {.op = ORBIT_TOPOLOGY_LEAVE, .shard = "tmp"},
    };
    assert_int_equal(orbit_topology_plan(f->t, gone, 2, NULL, NULL, &p), ORBIT_OK);
    assert_int_equal(p.nmoves + p.nsuggested, 0);
    orbit_topology_plan_close(&p);
    check_plan_matches(f->t, &c, 1);
}

/* remove-shard: its racks, and only its racks, go to their next candidate;
 * with racks at their rendezvous owners that is their new rendezvous
 * winner. */
static void test_plan_leave_drains(void **state)
{
    fx_t *f = *state;
    build_flat(f->t, 10);
    orbit_topology_shard_t s;
    assert_int_equal(orbit_topology_get_shard(f->t, "s03", &s), ORBIT_OK);
    const orbit_topology_change_t c = {.op = ORBIT_TOPOLOGY_LEAVE, .shard = "s03"};
    orbit_topology_plan_t p;
    orbit_topology_plan_init(&p);
    assert_int_equal(orbit_topology_plan(f->t, &c, 1, nodes_of, NULL, &p), ORBIT_OK);
    assert_false(p.refused);
    assert_int_equal(p.nmoves, s.racks);
    uint64_t nodes = 0;
    for (size_t i = 0; i < p.nmoves; i++) {
        zlistx_t *l = NULL;
        assert_string_equal(p.moves[i].from, "s03");
        assert_int_equal(orbit_topology_candidates(f->t, p.moves[i].rack, &l), ORBIT_OK);
        zlistx_first(l);
        assert_string_equal(p.moves[i].to, zlistx_next(l));
        zlistx_destroy(&l);
        nodes += p.moves[i].nodes;
    }
    orbit_topology_t *after = orbit_topology_dup(f->t);
    assert_non_null(after);
    assert_int_equal(orbit_topology_drain(after, "s03", f->err, sizeof f->err), ORBIT_OK);
    assert_int_equal(orbit_topology_remove_shard(after, "s03", f->err, sizeof f->err), ORBIT_OK);
    for (size_t i = 0; i < p.nmoves; i++) {
        char nat[ORBIT_TOPOLOGY_NAME_MAX + 1];
        assert_int_equal(orbit_topology_natural_owner(after, p.moves[i].rack, nat), ORBIT_OK);
        assert_string_equal(p.moves[i].to, nat);
    }
    assert_int_equal(p.nodes_moved, nodes);
    orbit_topology_destroy(&after);
    orbit_topology_plan_close(&p);
    check_plan_matches(f->t, &c, 1);
}

static void test_plan_refused(void **state)
{
    fx_t *f = *state;
    build_tree(f->t);
    char *before = dump(f->t);
    orbit_topology_plan_t p;
    orbit_topology_plan_init(&p);
    const orbit_topology_change_t dup[] = {
        {.op = ORBIT_TOPOLOGY_MOVE, .rack = "r1", .shard = "solo"},
        {.op = ORBIT_TOPOLOGY_JOIN, .shard = "zone-a", .tier = 2},
    };
    assert_int_equal(orbit_topology_plan(f->t, dup, 2, nodes_of, NULL, &p), ORBIT_OK);
    assert_true(p.refused);
    assert_int_equal(p.refused_at, 1);
    assert_int_equal(p.code, ORBIT_EINVAL);
    assert_string_equal(p.reason, "shard_exists: zone-a exists (tier=2)");
    assert_int_equal(p.nmoves + p.nsuggested, 0);
    assert_int_equal(p.nodes_moved, 0);
    ASSERT_UNCHANGED(f->t, before);

    const orbit_topology_change_t zone = {.op = ORBIT_TOPOLOGY_LEAVE, .shard = "zone-a"};
    assert_int_equal(orbit_topology_plan(f->t, &zone, 1, NULL, NULL, &p), ORBIT_OK);
    assert_true(p.refused);
    assert_string_equal(p.reason, "shard_busy: zone-a racks=0,children=2 (drain racks and remove "
                                  "child shards first)");
    const orbit_topology_change_t nope = {.op = ORBIT_TOPOLOGY_LEAVE, .shard = "nope"};
    assert_int_equal(orbit_topology_plan(f->t, &nope, 1, NULL, NULL, &p), ORBIT_OK);
    assert_true(p.refused);
    assert_int_equal(p.code, ORBIT_ENOTFOUND);
    const orbit_topology_change_t wrong = {
        .op = ORBIT_TOPOLOGY_MOVE, .rack = "r1", .shard = "zone-b"};
    assert_int_equal(orbit_topology_plan(f->t, &wrong, 1, NULL, NULL, &p), ORBIT_OK);
    assert_true(p.refused);
    assert_string_equal(p.reason, "shard: zone-b tier=2, want 1");
    ASSERT_UNCHANGED(f->t, before);
    free(before);
    orbit_topology_plan_close(&p);

    /* the last tier-1 shard cannot be drained */
    orbit_topology_t *t = orbit_topology_new();
    assert_non_null(t);
    ADD_OK(t, "only", 1, NULL);
    MOVE_OK(t, "r1", "only");
    const orbit_topology_change_t last = {.op = ORBIT_TOPOLOGY_LEAVE, .shard = "only"};
    assert_int_equal(orbit_topology_plan(t, &last, 1, NULL, NULL, &p), ORBIT_OK);
    assert_true(p.refused);
    REFUSED(p.code, p.reason, ORBIT_EINVAL, "shard_busy: only racks=1 and no other tier-1 shard");
    orbit_topology_plan_close(&p);
    check_plan_matches(t, &last, 1);
    orbit_topology_destroy(&t);
}

/* Random models and random batches: the plan always equals what applying
 * the batch does. */
static void test_plan_random(void **state)
{
    fx_t *f = *state;
    static const char *shards[] = {"a", "b", "c", "d", "e", "f", "zone1", "zone2", "top"};
    static const char *racks[] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"};
    const uint32_t ns = sizeof shards / sizeof shards[0], nr = sizeof racks / sizeof racks[0];
    uint64_t seed = 0x70901061ULL;
    for (int round = 0; round < 300; round++) {
        orbit_topology_t *t = orbit_topology_new();
        assert_non_null(t);
        orbit_topology_change_t c[8];
        for (int i = 0; i < 40; i++) { /* a random valid-ish model */
            uint32_t tier = 1 + rndn(&seed, 3);
            const char *parent = rndn(&seed, 2) ? shards[rndn(&seed, ns)] : NULL;
            orbit_topology_add_shard(t, shards[rndn(&seed, ns)], tier, parent, NULL, NULL, 0);
            orbit_topology_move_rack(t, racks[rndn(&seed, nr)], shards[rndn(&seed, ns)], NULL, 0);
        }
        assert_int_equal(orbit_topology_validate(t, f->err, sizeof f->err), ORBIT_OK);
        size_t n = 1 + rndn(&seed, 8);
        for (size_t i = 0; i < n; i++) {
            memset(&c[i], 0, sizeof c[i]);
            switch (rndn(&seed, 3)) {
            case 0:
                c[i].op = ORBIT_TOPOLOGY_JOIN;
                c[i].shard = shards[rndn(&seed, ns)];
                c[i].tier = 1 + rndn(&seed, 3);
                c[i].parent = rndn(&seed, 2) ? shards[rndn(&seed, ns)] : NULL;
                break;
            case 1:
                c[i].op = ORBIT_TOPOLOGY_LEAVE;
                c[i].shard = shards[rndn(&seed, ns)];
                break;
            default:
                c[i].op = ORBIT_TOPOLOGY_MOVE;
                c[i].rack = racks[rndn(&seed, nr)];
                c[i].shard = shards[rndn(&seed, ns)];
            }
        }
        check_plan_matches(t, c, n);
        orbit_topology_destroy(&t);
    }
}

/* ---------------------------------------------------------------- the ledger */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Random topology changes, well-formed and not, through the real ledger
 * state machine and the model side by side: the same ones commit, refusals
 * use the ledger's words, and the two hold the same tree after every entry. */
static void test_same_rules_as_ledger(void **state)
{
    fx_t *f = *state;
    char dir[64], err[256];
    snprintf(dir, sizeof dir, "/tmp/test-topology-XXXXXX");
    assert_non_null(mkdtemp(dir));
    orbit_ledger_t *l = NULL;
    assert_int_equal(orbit_ledger_open(dir, &l, err, sizeof err), ORBIT_OK);

    static const char *names[] = {"s0", "s1", "s2", "s3", "s4", "s5", "bad name", "", "s/x"};
    static const char *racks[] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "bad rack"};
    static const char *eps[] = {"", "tcp://10.0.0.1:7401", "tcp://a b", "ipc://x"};
    static const uint32_t tiers[] = {1, 1, 1, 2, 2, 3, 0, 17};
    const uint32_t nn = sizeof names / sizeof names[0], nk = sizeof racks / sizeof racks[0];
    enum { ENTRIES = 40, PER = 40 };
    uint64_t seed = 0x1ed6e7ULL, req = 0, committed = 0, conflicts = 0, invalid = 0;
    for (int e = 0; e < ENTRIES; e++) {
        Orbit__Ledger__Proposal props[PER], *pp[PER];
        Orbit__Ledger__Commitment cms[PER];
        Orbit__Ledger__TopologyChange tcs[PER];
        Orbit__Ledger__ShardJoin joins[PER];
        Orbit__Ledger__ShardLeave leaves[PER];
        Orbit__Ledger__RackMove moves[PER];
        for (int i = 0; i < PER; i++) {
            orbit__ledger__proposal__init(&props[i]);
            orbit__ledger__commitment__init(&cms[i]);
            orbit__ledger__topology_change__init(&tcs[i]);
            props[i].client_id = "topology-test";
            props[i].request_id = ++req;
            props[i].commitment = &cms[i];
            cms[i].kind_case = ORBIT__LEDGER__COMMITMENT__KIND_TOPOLOGY;
            cms[i].topology = &tcs[i];
            uint32_t op = rndn(&seed, 10);
            if (op < 4) {
                orbit__ledger__shard_join__init(&joins[i]);
                joins[i].shard = (char *)names[rndn(&seed, nn)];
                joins[i].tier = tiers[rndn(&seed, 8)];
                joins[i].parent = rndn(&seed, 2) ? (char *)names[rndn(&seed, nn)] : (char *)"";
                joins[i].endpoint = (char *)eps[rndn(&seed, 4)];
                tcs[i].change_case = ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_JOIN;
                tcs[i].join = &joins[i];
            } else if (op < 6) {
                orbit__ledger__shard_leave__init(&leaves[i]);
                leaves[i].shard = (char *)names[rndn(&seed, nn)];
                tcs[i].change_case = ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_LEAVE;
                tcs[i].leave = &leaves[i];
            } else {
                orbit__ledger__rack_move__init(&moves[i]);
                moves[i].rack = (char *)racks[rndn(&seed, nk)];
                moves[i].shard = (char *)names[rndn(&seed, nn)];
                tcs[i].change_case = ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_MOVE;
                tcs[i].move = &moves[i];
            }
            pp[i] = &props[i];
        }
        Orbit__Ledger__Entry entry = ORBIT__LEDGER__ENTRY__INIT;
        entry.time_ms = 1700000000000LL + e;
        entry.n_proposals = PER;
        entry.proposals = pp;
        size_t len = orbit__ledger__entry__get_packed_size(&entry);
        uint8_t *buf = malloc(len);
        assert_non_null(buf);
        orbit__ledger__entry__pack(&entry, buf);
        Orbit__Ledger__Outcome **out = NULL;
        size_t nout = 0;
        assert_int_equal(orbit_ledger_apply(l, buf, len, (uint64_t)e + 1, &out, &nout), ORBIT_OK);
        assert_int_equal(nout, PER);
        free(buf);

        for (int i = 0; i < PER; i++) {
            orbit_topology_change_t c;
            assert_int_equal(orbit_topology_change_from_pb(&tcs[i], &c), ORBIT_OK);
            f->err[0] = '\0';
            int rc = orbit_topology_apply(f->t, &c, f->err, sizeof f->err);
            const Orbit__Ledger__Outcome *o = out[i];
            switch (o->kind) {
            case ORBIT__LEDGER__OUTCOME_KIND__COMMITTED:
                if (rc)
                    fail_msg("entry %d #%d: ledger committed, model refused: %s", e, i, f->err);
                committed++;
                break;
            case ORBIT__LEDGER__OUTCOME_KIND__CONFLICT: {
                size_t w = strlen(o->which);
                if (!rc || strncmp(f->err, o->which, w) || f->err[w] != ':' ||
                    !strstr(f->err, o->observed))
                    fail_msg("entry %d #%d: ledger CONFLICT %s \"%s\", model %d \"%s\"", e, i,
                             o->which, o->observed, rc, f->err);
                conflicts++;
                break;
            }
            default:
                if (!rc || strcmp(f->err, o->reason))
                    fail_msg("entry %d #%d: ledger INVALID \"%s\", model %d \"%s\"", e, i,
                             o->reason, rc, f->err);
                invalid++;
            }
        }
        orbit_ledger_outcomes_free(out, nout);
        orbit_topology_set_epoch(f->t, orbit_ledger_topology_epoch(l));

        /* the same tree */
        for (uint32_t k = 0; k < nn; k++) {
            orbit_ledger_shard_t ls;
            orbit_topology_shard_t ms;
            int lr = orbit_ledger_get_shard(l, names[k], &ls);
            int mr = orbit_topology_get_shard(f->t, names[k], &ms);
            assert_int_equal(lr == ORBIT_OK, mr == ORBIT_OK);
            if (lr)
                continue;
            assert_int_equal(ls.tier, ms.tier);
            assert_string_equal(ls.parent, ms.parent);
            assert_string_equal(ls.endpoint, ms.endpoint);
            assert_int_equal(ls.children, ms.children);
            assert_int_equal(ls.racks, ms.racks);
        }
        for (uint32_t k = 0; k < nk; k++) {
            char lo[ORBIT_LEDGER_NAME_MAX + 1], mo[ORBIT_TOPOLOGY_NAME_MAX + 1];
            int lr = orbit_ledger_get_rack(l, racks[k], lo);
            int mr = orbit_topology_rack_owner(f->t, racks[k], mo);
            assert_int_equal(lr == ORBIT_OK, mr == ORBIT_OK);
            if (!lr)
                assert_string_equal(lo, mo);
        }
        assert_int_equal(orbit_topology_validate(f->t, f->err, sizeof f->err), ORBIT_OK);
    }
    /* the run exercised every outcome */
    assert_true(committed > 100);
    assert_true(conflicts > 100);
    assert_true(invalid > 100);
    assert_true(orbit_topology_epoch(f->t) > 0);
    orbit_ledger_close(&l);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_lifecycle),
        T(test_add_shard),
        T(test_add_shard_refusals),
        T(test_add_refuses_cycle),
        T(test_remove_shard),
        T(test_move_rack),
        T(test_apply_and_pb),
        T(test_validate),
        T(test_put),
        T(test_epoch),
        T(test_lists),
        T(test_hrw_pinned),
        T(test_hrw_rank_order),
        T(test_hrw_spread),
        T(test_hrw_add_moves_only_to_new),
        T(test_hrw_remove_moves_only_its_racks),
        T(test_candidates),
        T(test_drain),
        T(test_plan_moves),
        T(test_plan_join_suggests_takeover),
        T(test_plan_leave_drains),
        T(test_plan_refused),
        T(test_plan_random),
        T(test_same_rules_as_ledger),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
