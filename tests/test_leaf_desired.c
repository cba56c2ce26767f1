/* test_leaf_desired: the node listing parse, the exact watch-item filter (placements, gang
 * members, revocations, other nodes sharing a name prefix), capsule ids to modules, argv JSON
 * and the desired-set message between the watcher and the agent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "leaf_desired.h"
#include "orbit_err.h"

typedef struct {
    orbit_leaf_placed_set_t s;
    char err[256];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    orbit_leaf_placed_init(&f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_placed_close(&f->s);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ node listing */

#define LISTING                                                                                    \
    "{\"node\":\"a1\",\"used\":{\"cpu_m\":1500,\"mem\":3,\"gpus\":1},\"placements\":2,"            \
    "\"capsules\":[{\"capsule\":\"m1/web/1\",\"envelope\":{\"cpu_m\":500,\"mem\":1,\"gpus\":0},"   \
    "\"index\":9,\"principal\":\"team-a\"},"                                                       \
    "{\"capsule\":\"m1/db/0\",\"envelope\":{\"cpu_m\":1000,\"mem\":2,\"gpus\":1},\"index\":7,"     \
    "\"gang\":\"g1\"}]}"

static void test_listing_good(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(
        orbit_leaf_placed_parse_node(&f->s, LISTING, "a1", NULL, f->err, sizeof f->err), ORBIT_OK);
    assert_int_equal(f->s.n, 2);
    assert_string_equal(f->s.v[0].id, "m1/db/0"); /* sorted by id */
    assert_string_equal(f->s.v[0].gang, "g1");
    assert_int_equal(f->s.v[0].index, 7);
    assert_int_equal(f->s.v[0].cpu_m, 1000);
    assert_int_equal(f->s.v[0].gpus, 1);
    const orbit_leaf_placed_t *p = orbit_leaf_placed_find(&f->s, "m1/web/1");
    assert_non_null(p);
    assert_string_equal(p->gang, "");
    assert_int_equal(p->mem, 1);
    assert_null(orbit_leaf_placed_find(&f->s, "m1/web/2"));
    /* An empty listing empties the set. */
    assert_int_equal(orbit_leaf_placed_parse_node(&f->s, "{\"node\":\"a1\",\"capsules\":[]}", "a1",
                                                  NULL, f->err, sizeof f->err),
                     ORBIT_OK);
    assert_int_equal(f->s.n, 0);
}

/* A listing longer than a node runs: the first ORBIT_CAPSULES_MAX (by id, as the ledger lists
 * them) are kept, the rest counted, not refused as a whole. */
static void test_listing_beyond_cap(void **state)
{
    fixture_t *f = *state;
    enum { N = ORBIT_CAPSULES_MAX + 44 };
    size_t cap = 64 + (size_t)N * 96;
    char *json = malloc(cap);
    assert_non_null(json);
    size_t at = (size_t)snprintf(json, cap, "{\"node\":\"a1\",\"capsules\":[");
    for (int i = 0; i < N; i++)
        at += (size_t)snprintf(json + at, cap - at,
                               "%s{\"capsule\":\"m1/web/%04d\",\"envelope\":{},\"index\":%d}",
                               i ? "," : "", i, i + 1);
    snprintf(json + at, cap - at, "]}");
    size_t beyond = 0;
    assert_int_equal(
        orbit_leaf_placed_parse_node(&f->s, json, "a1", &beyond, f->err, sizeof f->err), ORBIT_OK);
    assert_int_equal(f->s.n, ORBIT_CAPSULES_MAX);
    assert_int_equal(beyond, 44);
    assert_non_null(orbit_leaf_placed_find(&f->s, "m1/web/0000"));
    char last[32];
    snprintf(last, sizeof last, "m1/web/%04d", ORBIT_CAPSULES_MAX - 1);
    assert_non_null(orbit_leaf_placed_find(&f->s, last));
    snprintf(last, sizeof last, "m1/web/%04d", ORBIT_CAPSULES_MAX);
    assert_null(orbit_leaf_placed_find(&f->s, last));
    /* A bad entry past the cap still makes the listing bad. */
    snprintf(json + at, cap - at, ",{\"capsule\":\"x y\",\"envelope\":{},\"index\":1}]}");
    assert_int_equal(
        orbit_leaf_placed_parse_node(&f->s, json, "a1", &beyond, f->err, sizeof f->err),
        ORBIT_EINVAL);
    assert_int_equal(f->s.n, ORBIT_CAPSULES_MAX); /* unchanged */
    free(json);
}

static void test_listing_malformed(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(
        orbit_leaf_placed_parse_node(&f->s, LISTING, "a1", NULL, f->err, sizeof f->err), ORBIT_OK);
    static const char *const bad[] = {
        "not json",
        "[1,2]",
        "{\"node\":\"a10\",\"capsules\":[]}",
        "{\"node\":\"a1\"}",
        "{\"node\":\"a1\",\"capsules\":{}}",
        "{\"node\":\"a1\",\"capsules\":[{\"capsule\":\"x y\",\"envelope\":{},\"index\":1}]}",
        "{\"node\":\"a1\",\"capsules\":[{\"capsule\":\"a/b/0\",\"envelope\":{},\"index\":0}]}",
        "{\"node\":\"a1\",\"capsules\":[{\"capsule\":\"a/b/0\",\"envelope\":{\"cpu_m\":-1},"
        "\"index\":3}]}",
        "{\"node\":\"a1\",\"capsules\":[{\"capsule\":\"a/b/0\",\"envelope\":{\"mem\":\"1\"},"
        "\"index\":3}]}",
        "{\"node\":\"a1\",\"capsules\":[{\"capsule\":\"a/b/0\",\"index\":3}]}",
        "{\"node\":\"a1\",\"capsules\":[{\"capsule\":\"a/b/0\",\"envelope\":{},\"index\":3,"
        "\"gang\":7}]}",
        "{\"node\":\"a1\",\"capsules\":[{\"capsule\":\"a/b/0\",\"envelope\":{},\"index\":3},"
        "{\"capsule\":\"a/b/0\",\"envelope\":{},\"index\":4}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f->err[0] = '\0';
        assert_int_equal(
            orbit_leaf_placed_parse_node(&f->s, bad[i], "a1", NULL, f->err, sizeof f->err),
            ORBIT_EINVAL);
        assert_true(f->err[0] != '\0');
        assert_int_equal(f->s.n, 2); /* unchanged */
    }
    assert_int_equal(orbit_leaf_placed_parse_node(&f->s, NULL, "a1", NULL, f->err, sizeof f->err),
                     ORBIT_EINVAL);
}

/* ------------------------------------------------------------ watch items */

/* A committed proposal around commitment c. */
typedef struct {
    Orbit__Ledger__Committed it;
    Orbit__Ledger__Proposal p;
} item_t;

static void item_init(item_t *x, uint64_t index, Orbit__Ledger__Commitment *c)
{
    orbit__ledger__committed__init(&x->it);
    orbit__ledger__proposal__init(&x->p);
    x->p.client_id = "sched";
    x->p.request_id = index;
    x->p.commitment = c;
    x->it.index = index;
    x->it.time_ms = 1000;
    x->it.proposal = &x->p;
}

static int place(fixture_t *f, uint64_t index, const char *capsule, const char *node)
{
    Orbit__Ledger__Resources r = ORBIT__LEDGER__RESOURCES__INIT;
    r.has_cpu_m = r.has_mem = true;
    r.cpu_m = 250;
    r.mem = 1 << 20;
    Orbit__Ledger__Placement p = ORBIT__LEDGER__PLACEMENT__INIT;
    p.capsule = (char *)capsule;
    p.node = (char *)node;
    p.envelope = &r;
    Orbit__Ledger__Commitment c = ORBIT__LEDGER__COMMITMENT__INIT;
    c.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT;
    c.placement = &p;
    item_t x;
    item_init(&x, index, &c);
    return orbit_leaf_placed_apply(&f->s, "a1", &x.it, f->err, sizeof f->err);
}

static int revoke_ref(fixture_t *f, uint64_t index, Orbit__Ledger__RefKind kind, const char *key)
{
    Orbit__Ledger__Ref ref = ORBIT__LEDGER__REF__INIT;
    ref.kind = kind;
    ref.key = (char *)key;
    Orbit__Ledger__Revocation rv = ORBIT__LEDGER__REVOCATION__INIT;
    rv.what = &ref;
    Orbit__Ledger__Commitment c = ORBIT__LEDGER__COMMITMENT__INIT;
    c.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_REVOCATION;
    c.revocation = &rv;
    item_t x;
    item_init(&x, index, &c);
    return orbit_leaf_placed_apply(&f->s, "a1", &x.it, f->err, sizeof f->err);
}

/* A gang of members capsule[i] on node[i]. */
static int gang(fixture_t *f, uint64_t index, const char *name, size_t n, const char *const *caps,
                const char *const *nodes)
{
    Orbit__Ledger__Resources r = ORBIT__LEDGER__RESOURCES__INIT;
    Orbit__Ledger__GangMember m[4], *mp[4];
    for (size_t i = 0; i < n; i++) {
        orbit__ledger__gang_member__init(&m[i]);
        m[i].capsule = (char *)caps[i];
        m[i].node = (char *)nodes[i];
        m[i].envelope = &r;
        mp[i] = &m[i];
    }
    Orbit__Ledger__GangPlacement g = ORBIT__LEDGER__GANG_PLACEMENT__INIT;
    g.gang = (char *)name;
    g.n_members = n;
    g.members = mp;
    Orbit__Ledger__Commitment c = ORBIT__LEDGER__COMMITMENT__INIT;
    c.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_GANG_PLACEMENT;
    c.gang_placement = &g;
    item_t x;
    item_init(&x, index, &c);
    return orbit_leaf_placed_apply(&f->s, "a1", &x.it, f->err, sizeof f->err);
}

static void test_item_placement_exact_node(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(place(f, 5, "m1/web/0", "a1"), ORBIT_LEAF_ITEM_CHANGED);
    /* "node/a1" also matches node a10's items: ignored. */
    assert_int_equal(place(f, 6, "m1/web/1", "a10"), ORBIT_LEAF_ITEM_IGNORED);
    assert_int_equal(place(f, 7, "m1/web/2", "a"), ORBIT_LEAF_ITEM_IGNORED);
    assert_int_equal(f->s.n, 1);
    const orbit_leaf_placed_t *p = orbit_leaf_placed_find(&f->s, "m1/web/0");
    assert_non_null(p);
    assert_int_equal(p->index, 5);
    assert_int_equal(p->cpu_m, 250);
    assert_int_equal(p->mem, 1 << 20);
    /* Placed again (after a revocation this node did not see) replaces the entry. */
    assert_int_equal(place(f, 9, "m1/web/0", "a1"), ORBIT_LEAF_ITEM_CHANGED);
    assert_int_equal(f->s.n, 1);
    assert_int_equal(orbit_leaf_placed_find(&f->s, "m1/web/0")->index, 9);
    /* An invalid id placed on this node is refused, the set unchanged. */
    assert_int_equal(place(f, 10, "bad id", "a1"), ORBIT_EINVAL);
    assert_int_equal(f->s.n, 1);
    /* The same on another node is not ours to judge. */
    assert_int_equal(place(f, 11, "bad id", "a10"), ORBIT_LEAF_ITEM_IGNORED);
}

static void test_item_revocations(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(place(f, 1, "m1/web/0", "a1"), ORBIT_LEAF_ITEM_CHANGED);
    assert_int_equal(place(f, 2, "m1/web/1", "a1"), ORBIT_LEAF_ITEM_CHANGED);
    /* Another node's capsule (same prefix) revoked: nothing of ours. */
    assert_int_equal(revoke_ref(f, 3, ORBIT__LEDGER__REF_KIND__REF_PLACEMENT, "m1/web/7"),
                     ORBIT_LEAF_ITEM_IGNORED);
    assert_int_equal(revoke_ref(f, 4, ORBIT__LEDGER__REF_KIND__REF_PLACEMENT, "m1/web/0"),
                     ORBIT_LEAF_ITEM_CHANGED);
    assert_null(orbit_leaf_placed_find(&f->s, "m1/web/0"));
    assert_non_null(orbit_leaf_placed_find(&f->s, "m1/web/1"));
    /* Revoking a module or a quota does not stop capsules. */
    assert_int_equal(revoke_ref(f, 5, ORBIT__LEDGER__REF_KIND__REF_MODULE, "m1/web"),
                     ORBIT_LEAF_ITEM_IGNORED);
    assert_int_equal(revoke_ref(f, 6, ORBIT__LEDGER__REF_KIND__REF_QUOTA, "m1/web/1"),
                     ORBIT_LEAF_ITEM_IGNORED);
    assert_int_equal(f->s.n, 1);
}

static void test_item_gangs(void **state)
{
    fixture_t *f = *state;
    static const char *const caps[] = {"t/w/0", "t/w/1", "t/w/2"};
    static const char *const nodes[] = {"a1", "a10", "a1"};
    assert_int_equal(gang(f, 3, "g1", 3, caps, nodes), ORBIT_LEAF_ITEM_CHANGED);
    assert_int_equal(f->s.n, 2); /* the member on a10 is not ours */
    assert_string_equal(orbit_leaf_placed_find(&f->s, "t/w/0")->gang, "g1");
    assert_null(orbit_leaf_placed_find(&f->s, "t/w/1"));
    assert_int_equal(orbit_leaf_placed_find(&f->s, "t/w/2")->index, 3);
    /* A gang wholly on another node. */
    static const char *const other[] = {"a10", "a10"};
    assert_int_equal(gang(f, 4, "g2", 2, caps, other), ORBIT_LEAF_ITEM_IGNORED);
    /* A single placement beside the gang. */
    assert_int_equal(place(f, 5, "solo/x/0", "a1"), ORBIT_LEAF_ITEM_CHANGED);
    /* Revoking another gang changes nothing; revoking g1 removes both members only. */
    assert_int_equal(revoke_ref(f, 6, ORBIT__LEDGER__REF_KIND__REF_GANG, "g2"),
                     ORBIT_LEAF_ITEM_IGNORED);
    assert_int_equal(revoke_ref(f, 7, ORBIT__LEDGER__REF_KIND__REF_GANG, "g1"),
                     ORBIT_LEAF_ITEM_CHANGED);
    assert_int_equal(f->s.n, 1);
    assert_non_null(orbit_leaf_placed_find(&f->s, "solo/x/0"));
    /* All or nothing: a bad member of ours leaves the set as it was. */
    static const char *const half_bad[] = {"t/w/5", "no good"};
    static const char *const ours[] = {"a1", "a1"};
    assert_int_equal(gang(f, 8, "g3", 2, half_bad, ours), ORBIT_EINVAL);
    assert_int_equal(f->s.n, 1);
    assert_null(orbit_leaf_placed_find(&f->s, "t/w/5"));
}

static void test_item_malformed(void **state)
{
    fixture_t *f = *state;
    Orbit__Ledger__Committed it = ORBIT__LEDGER__COMMITTED__INIT;
    assert_int_equal(orbit_leaf_placed_apply(&f->s, "a1", &it, f->err, sizeof f->err),
                     ORBIT_EINVAL);
    assert_int_equal(orbit_leaf_placed_apply(&f->s, "a1", NULL, f->err, sizeof f->err),
                     ORBIT_EINVAL);
    /* Commitments of other kinds are not ours. */
    Orbit__Ledger__Resources r = ORBIT__LEDGER__RESOURCES__INIT;
    Orbit__Ledger__QuotaGrant q = ORBIT__LEDGER__QUOTA_GRANT__INIT;
    q.principal = "a1";
    q.resources = &r;
    Orbit__Ledger__Commitment c = ORBIT__LEDGER__COMMITMENT__INIT;
    c.kind_case = ORBIT__LEDGER__COMMITMENT__KIND_QUOTA_GRANT;
    c.quota_grant = &q;
    item_t x;
    item_init(&x, 3, &c);
    assert_int_equal(orbit_leaf_placed_apply(&f->s, "a1", &x.it, f->err, sizeof f->err),
                     ORBIT_LEAF_ITEM_IGNORED);
}

/* ------------------------------------------------------------ modules, argv */

static void test_capsule_module(void **state)
{
    (void)state;
    char key[128], err[128];
    assert_int_equal(orbit_leaf_capsule_module("m1/web/0", key, sizeof key, err, sizeof err),
                     ORBIT_OK);
    assert_string_equal(key, "m1/web");
    assert_int_equal(orbit_leaf_capsule_module("m.1/w_b-2/42", key, sizeof key, err, sizeof err),
                     ORBIT_OK);
    assert_string_equal(key, "m.1/w_b-2");
    static const char *const bad[] = {"hello-1", "m1/web", "m1/web/", "m1/web/01", "m1/web/x",
                                      "/web/0",  "m1//0",  "a/b/c/0", "m:1/web/0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(orbit_leaf_capsule_module(bad[i], key, sizeof key, err, sizeof err),
                         ORBIT_EINVAL);
        assert_non_null(strstr(err, "mission/module/index"));
    }
    /* Too long for the caller's buffer. */
    assert_int_equal(orbit_leaf_capsule_module("m1/web/0", key, 4, err, sizeof err), ORBIT_EINVAL);
}

static void test_argv_parse(void **state)
{
    (void)state;
    char **argv = NULL, err[128];
    assert_int_equal(orbit_leaf_argv_parse("[\"sleep\",\"300\"]", &argv, err, sizeof err),
                     ORBIT_OK);
    assert_string_equal(argv[0], "sleep");
    assert_string_equal(argv[1], "300");
    assert_null(argv[2]);
    orbit_leaf_argv_free(&argv);
    assert_null(argv);
    /* Empty later arguments are fine; escapes are decoded. */
    assert_int_equal(orbit_leaf_argv_parse("[\"echo\",\"\",\"a\\u00e9\"]", &argv, err, sizeof err),
                     ORBIT_OK);
    assert_string_equal(argv[1], "");
    assert_string_equal(argv[2], "a\xc3\xa9");
    orbit_leaf_argv_free(&argv);

    static const char *const bad[] = {
        "",
        "sleep 300",
        "{\"cmd\":\"sleep\"}",
        "[]",
        "[\"\"]",
        "[\"sleep\",300]",
        "[null]",
        "[\"a\\u0000b\"]",
        "\"sleep\"",
        "[\"sleep\"",
        NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(orbit_leaf_argv_parse(bad[i], &argv, err, sizeof err), ORBIT_EINVAL);
        assert_null(argv);
        assert_true(err[0] != '\0');
    }
    /* More than ORBIT_LEAF_ARGV_MAX arguments. */
    char *many = malloc(8 * (ORBIT_LEAF_ARGV_MAX + 2));
    assert_non_null(many);
    strcpy(many, "[\"x\"");
    for (int i = 0; i < ORBIT_LEAF_ARGV_MAX; i++)
        strcat(many, ",\"y\"");
    strcat(many, "]");
    assert_int_equal(orbit_leaf_argv_parse(many, &argv, err, sizeof err), ORBIT_EINVAL);
    free(many);
}

static void test_module_argv(void **state)
{
    (void)state;
    char **argv = NULL, err[128];
    assert_int_equal(
        orbit_leaf_module_argv("{\"module\":\"m1/web\",\"epoch\":0,\"spec\":{\"count\":2,"
                               "\"command\":\"[\\\"sleep\\\",\\\"300\\\"]\"}}",
                               &argv, err, sizeof err),
        ORBIT_OK);
    assert_string_equal(argv[0], "sleep");
    orbit_leaf_argv_free(&argv);
    assert_int_equal(orbit_leaf_module_argv("{\"module\":\"m1/web\",\"spec\":{\"count\":2}}", &argv,
                                            err, sizeof err),
                     ORBIT_EINVAL);
    assert_string_equal(err, "module has no command");
    assert_int_equal(orbit_leaf_module_argv("{\"module\":\"m1/web\"}", &argv, err, sizeof err),
                     ORBIT_EINVAL);
    assert_int_equal(
        orbit_leaf_module_argv("{\"spec\":{\"command\":\"sleep 300\"}}", &argv, err, sizeof err),
        ORBIT_EINVAL);
    assert_non_null(strstr(err, "command is not JSON"));
    assert_int_equal(orbit_leaf_module_argv("nope", &argv, err, sizeof err), ORBIT_EINVAL);
    assert_null(argv);
}

/* ------------------------------------------------------------ wants */

static void put(orbit_leaf_wants_t *w, const char *id, uint64_t index, char **argv,
                const char *reason)
{
    orbit_leaf_want_t x = {0};
    snprintf(x.id, sizeof x.id, "%s", id);
    x.index = index;
    x.res.cpu_m = 250;
    x.res.mem = 1ULL << 33;
    x.argv = argv;
    snprintf(x.reason, sizeof x.reason, "%s", reason);
    assert_int_equal(orbit_leaf_wants_put(w, &x), ORBIT_OK);
}

static void test_wants_roundtrip(void **state)
{
    (void)state;
    char *sleep_argv[] = {"sleep", "300", "", NULL};
    orbit_leaf_wants_t w, back;
    orbit_leaf_wants_init(&w);
    put(&w, "m1/web/1", 12, sleep_argv, "");
    put(&w, "m1/db/0", 11, NULL, "module m1/db is not in the ledger");
    put(&w, "m1/web/0", 10, sleep_argv, "");
    assert_int_equal(w.n, 3);
    assert_string_equal(w.v[0].id, "m1/db/0");
    zmsg_t *m = orbit_leaf_wants_encode(&w);
    assert_non_null(m);
    assert_int_equal(zmsg_size(m), 1 + 3 * 6);
    char err[128];
    assert_int_equal(orbit_leaf_wants_decode(m, &back, err, sizeof err), ORBIT_OK);
    zmsg_destroy(&m);
    assert_true(orbit_leaf_wants_same(&w, &back));
    const orbit_leaf_want_t *x = orbit_leaf_wants_find(&back, "m1/web/1");
    assert_non_null(x);
    assert_int_equal(x->index, 12);
    assert_int_equal(x->res.cpu_m, 250);
    assert_int_equal(x->res.mem, 1ULL << 33);
    assert_string_equal(x->argv[0], "sleep");
    assert_string_equal(x->argv[1], "300");
    assert_string_equal(x->argv[2], "");
    assert_null(x->argv[3]);
    x = orbit_leaf_wants_find(&back, "m1/db/0");
    assert_null(x->argv);
    assert_string_equal(x->reason, "module m1/db is not in the ledger");
    /* Another index is another placement. */
    put(&back, "m1/web/1", 13, sleep_argv, "");
    assert_false(orbit_leaf_wants_same(&w, &back));
    orbit_leaf_wants_close(&back);
    /* The empty set. */
    orbit_leaf_wants_t empty;
    orbit_leaf_wants_init(&empty);
    m = orbit_leaf_wants_encode(&empty);
    assert_int_equal(orbit_leaf_wants_decode(m, &back, err, sizeof err), ORBIT_OK);
    assert_int_equal(back.n, 0);
    assert_false(orbit_leaf_wants_same(&w, &back));
    zmsg_destroy(&m);
    orbit_leaf_wants_close(&back);
    orbit_leaf_wants_close(&w);
    /* put refuses neither or both of argv and reason, and bad ids. */
    orbit_leaf_want_t bad = {0};
    snprintf(bad.id, sizeof bad.id, "a/b/0");
    assert_int_equal(orbit_leaf_wants_put(&w, &bad), ORBIT_EINVAL);
    bad.argv = sleep_argv;
    snprintf(bad.reason, sizeof bad.reason, "why");
    assert_int_equal(orbit_leaf_wants_put(&w, &bad), ORBIT_EINVAL);
    bad.reason[0] = '\0';
    snprintf(bad.id, sizeof bad.id, "a b");
    assert_int_equal(orbit_leaf_wants_put(&w, &bad), ORBIT_EINVAL);
    assert_int_equal(w.n, 0);
}

/* A message with frames given as strings (an argv frame is written with its NULs). */
static zmsg_t *msg_of(size_t n, const char *const *frames, const size_t *lens)
{
    zmsg_t *m = zmsg_new();
    for (size_t i = 0; i < n; i++)
        zmsg_addmem(m, frames[i], lens ? lens[i] : strlen(frames[i]));
    return m;
}

static void test_wants_decode_errors(void **state)
{
    (void)state;
    char err[128];
    orbit_leaf_wants_t w;
    static const char argv[] = "sleep\0"
                               "5";
    const size_t L = sizeof argv; /* "sleep\0" "5\0" */
    struct {
        size_t n;
        const char *f[13];
        size_t len[13];
    } bad[] = {
        {1, {"NOPE"}, {4}},
        {3, {"WANTS", "a/b/0", "1"}, {5, 5, 1}},
        {7, {"WANTS", "a b", "1", "0", "0", "", argv}, {5, 3, 1, 1, 1, 0, L}},
        {7, {"WANTS", "a/b/0", "x", "0", "0", "", argv}, {5, 5, 1, 1, 1, 0, L}},
        {7, {"WANTS", "a/b/0", "01", "0", "0", "", argv}, {5, 5, 2, 1, 1, 0, L}},
        {7, {"WANTS", "a/b/0", "1", "99999999999", "0", "", argv}, {5, 5, 1, 11, 1, 0, L}},
        {7, {"WANTS", "a/b/0", "1", "0", "0", "why", argv}, {5, 5, 1, 1, 1, 3, L}},
        {7, {"WANTS", "a/b/0", "1", "0", "0", "", ""}, {5, 5, 1, 1, 1, 0, 0}},
        {7, {"WANTS", "a/b/0", "1", "0", "0", "", "sleep"}, {5, 5, 1, 1, 1, 0, 5}},
        {7, {"WANTS", "a/b/0", "1", "0", "0", "", argv}, {5, 5, 1, 1, 1, 0, 0}},
        {13,
         {"WANTS", "a/b/0", "1", "0", "0", "", argv, "a/b/0", "2", "0", "0", "", argv},
         {5, 5, 1, 1, 1, 0, L, 5, 1, 1, 1, 0, L}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zmsg_t *m = msg_of(bad[i].n, bad[i].f, bad[i].len);
        err[0] = '\0';
        assert_int_equal(orbit_leaf_wants_decode(m, &w, err, sizeof err), ORBIT_EINVAL);
        assert_true(err[0] != '\0');
        orbit_leaf_wants_close(&w);
        zmsg_destroy(&m);
    }
    /* An argv frame whose first argument is empty. */
    static const char empty_first[] = "\0x";
    const char *f[] = {"WANTS", "a/b/0", "1", "0", "0", "", empty_first};
    size_t len[] = {5, 5, 1, 1, 1, 0, sizeof empty_first};
    zmsg_t *m = msg_of(7, f, len);
    assert_int_equal(orbit_leaf_wants_decode(m, &w, err, sizeof err), ORBIT_EINVAL);
    orbit_leaf_wants_close(&w);
    zmsg_destroy(&m);
    assert_int_equal(orbit_leaf_wants_decode(NULL, &w, err, sizeof err), ORBIT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_listing_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing_beyond_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_placement_exact_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_revocations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_gangs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_malformed, setup, teardown),
        cmocka_unit_test(test_capsule_module),
        cmocka_unit_test(test_argv_parse),
        cmocka_unit_test(test_module_argv),
        cmocka_unit_test(test_wants_roundtrip),
        cmocka_unit_test(test_wants_decode_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
