/* test_topology_fetch: the ledger's "get topology" text into the model —
 * parents before children whatever the order, rack owners, the epoch; every
 * malformed or inconsistent answer refused with a reason; a rack's
 * candidate endpoints (owner first, rendezvous order after, shards without
 * an endpoint skipped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "orbit_err.h"
#include "topology.h"
#include "topology_fetch.h"

/* As the ledger writes it (name order), but a child listed before its
 * parent to check the passes. */
static const char *TREE =
    "{\"epoch\":42,\"shards\":["
    "{\"shard\":\"rack-a\",\"tier\":1,\"parent\":\"zone-1\",\"endpoint\":\"tcp://h:1\","
    "\"children\":0,\"racks\":2},"
    "{\"shard\":\"rack-b\",\"tier\":1,\"parent\":\"zone-1\",\"endpoint\":\"tcp://h:2\","
    "\"children\":0,\"racks\":1},"
    "{\"shard\":\"rack-c\",\"tier\":1,\"parent\":\"\",\"endpoint\":\"\",\"children\":0,"
    "\"racks\":0},"
    "{\"shard\":\"zone-1\",\"tier\":2,\"parent\":\"\",\"endpoint\":\"tcp://h:9\","
    "\"children\":2,\"racks\":0}],"
    "\"racks\":[{\"rack\":\"r1\",\"shard\":\"rack-a\"},{\"rack\":\"r2\",\"shard\":\"rack-a\"},"
    "{\"rack\":\"r3\",\"shard\":\"rack-b\"}]}";

static void test_from_json(void **state)
{
    (void)state;
    char err[256] = "";
    orbit_topology_t *t = orbit_topology_from_json(TREE, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_int_equal(orbit_topology_epoch(t), 42);
    assert_int_equal(orbit_topology_shard_count(t), 4);
    assert_int_equal(orbit_topology_rack_count(t), 3);
    orbit_topology_shard_t s;
    assert_int_equal(orbit_topology_get_shard(t, "rack-a", &s), ORBIT_OK);
    assert_string_equal(s.parent, "zone-1");
    assert_string_equal(s.endpoint, "tcp://h:1");
    assert_int_equal(s.tier, 1);
    assert_int_equal(s.racks, 2);
    assert_int_equal(orbit_topology_get_shard(t, "zone-1", &s), ORBIT_OK);
    assert_int_equal(s.children, 2);
    char owner[ORBIT_TOPOLOGY_NAME_MAX + 1];
    assert_int_equal(orbit_topology_rack_owner(t, "r3", owner), ORBIT_OK);
    assert_string_equal(owner, "rack-b");
    assert_int_equal(orbit_topology_validate(t, err, sizeof err), ORBIT_OK);
    orbit_topology_destroy(&t);
    assert_null(t);

    t = orbit_topology_from_json("{\"epoch\":0,\"shards\":[],\"racks\":[]}", err, sizeof err);
    assert_non_null(t);
    assert_int_equal(orbit_topology_shard_count(t), 0);
    orbit_topology_destroy(&t);
}

static void test_bad_json(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *says;
    } cases[] = {
        {NULL, "not a topology"},
        {"", "not a topology"},
        {"[1,2]", "not a topology"},
        {"{\"shards\":[],\"racks\":[]}", "not a topology"},
        {"{\"epoch\":-1,\"shards\":[],\"racks\":[]}", "not a topology"},
        {"{\"epoch\":1,\"shards\":{},\"racks\":[]}", "not a topology"},
        {"{\"epoch\":1,\"shards\":[{\"tier\":1}],\"racks\":[]}", "needs shard and tier"},
        {"{\"epoch\":1,\"shards\":[{\"shard\":\"s\",\"tier\":0}],\"racks\":[]}", "tier"},
        {"{\"epoch\":1,\"shards\":[{\"shard\":\"s\",\"tier\":99}],\"racks\":[]}", "tier"},
        {"{\"epoch\":1,\"shards\":[{\"shard\":\"s\",\"tier\":1,\"parent\":\"nope\"}],"
         "\"racks\":[]}",
         "parent that is not in the tree"},
        {"{\"epoch\":1,\"shards\":[{\"shard\":\"s\",\"tier\":1},{\"shard\":\"s\",\"tier\":1}],"
         "\"racks\":[]}",
         "shard_exists"},
        {"{\"epoch\":1,\"shards\":[{\"shard\":\"z\",\"tier\":3},{\"shard\":\"s\",\"tier\":1,"
         "\"parent\":\"z\"}],\"racks\":[]}",
         "parent"},
        {"{\"epoch\":1,\"shards\":[],\"racks\":[{\"rack\":\"r\"}]}", "rack without"},
        {"{\"epoch\":1,\"shards\":[],\"racks\":[{\"rack\":\"r\",\"shard\":\"s\"}]}", "s"},
        {"{\"epoch\":1,\"shards\":[{\"shard\":\"z\",\"tier\":2}],\"racks\":[{\"rack\":\"r\","
         "\"shard\":\"z\"}]}",
         "tier"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        orbit_topology_t *t = orbit_topology_from_json(cases[i].json, err, sizeof err);
        if (t)
            fail_msg("case %zu accepted", i);
        if (!strstr(err, cases[i].says) || strncmp(err, "topology: ", 10) != 0)
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].says);
    }
}

static void test_rack_endpoints(void **state)
{
    (void)state;
    char err[256] = "";
    orbit_topology_t *t = orbit_topology_from_json(TREE, err, sizeof err);
    assert_non_null(t);
    /* The owner first; rack-c has no endpoint and is skipped. */
    char *eps = orbit_topology_rack_endpoints(t, "r3", err, sizeof err);
    assert_non_null(eps);
    assert_string_equal(eps, "tcp://h:2,tcp://h:1");
    free(eps);
    eps = orbit_topology_rack_endpoints(t, "r1", err, sizeof err);
    assert_non_null(eps);
    assert_string_equal(eps, "tcp://h:1,tcp://h:2");
    free(eps);
    /* A rack nobody owns: the pure rendezvous order, the same every call. */
    char *a = orbit_topology_rack_endpoints(t, "r-new", err, sizeof err);
    char *b = orbit_topology_rack_endpoints(t, "r-new", err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    assert_true(!strcmp(a, "tcp://h:1,tcp://h:2") || !strcmp(a, "tcp://h:2,tcp://h:1"));
    free(a);
    free(b);
    orbit_topology_destroy(&t);

    /* No tier-1 shard with an endpoint: no candidates, a reason. */
    t = orbit_topology_from_json("{\"epoch\":3,\"shards\":[{\"shard\":\"s\",\"tier\":1}],"
                                 "\"racks\":[{\"rack\":\"r\",\"shard\":\"s\"}]}",
                                 err, sizeof err);
    assert_non_null(t);
    err[0] = '\0';
    assert_null(orbit_topology_rack_endpoints(t, "r", err, sizeof err));
    assert_non_null(strstr(err, "no tier-1 shard with an endpoint"));
    assert_null(orbit_topology_rack_endpoints(NULL, "r", err, sizeof err));
    orbit_topology_destroy(&t);
}

static void test_fetch_without_client(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(orbit_topology_fetch(NULL, true, 100, err, sizeof err));
    assert_non_null(strstr(err, "no ledger client"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_json),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_rack_endpoints),
        cmocka_unit_test(test_fetch_without_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
