/* topology_fetch: the ledger's topology as a model (see topology_fetch.h). */
#include "topology_fetch.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"

#define GET_KEY "topology"

static orbit_topology_t *fail(orbit_topology_t *t, char *err, size_t errlen, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "topology: %s", why);
    orbit_topology_destroy(&t);
    return NULL;
}

static const char *str_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

orbit_topology_t *orbit_topology_from_json(const char *json, char *err, size_t errlen)
{
    char why[256];
    json_error_t je;
    json_t *root = json ? json_loads(json, 0, &je) : NULL;
    orbit_topology_t *t = orbit_topology_new();
    if (!t) {
        json_decref(root);
        return fail(NULL, err, errlen, "out of memory");
    }
    json_t *epoch = json_object_get(root, "epoch"), *shards = json_object_get(root, "shards"),
           *racks = json_object_get(root, "racks");
    if (!json_is_object(root) || !json_is_integer(epoch) || json_integer_value(epoch) < 0 ||
        !json_is_array(shards) || !json_is_array(racks)) {
        json_decref(root);
        return fail(t, err, errlen, "not a topology object (epoch, shards, racks)");
    }
    orbit_topology_set_epoch(t, (uint64_t)json_integer_value(epoch));
    /* Parents before children: add in passes, each adding every shard
     * whose parent is known; a pass that adds nothing ends it. */
    size_t n = json_array_size(shards), added = 0;
    bool *done = calloc(n ? n : 1, sizeof *done);
    if (!done) {
        json_decref(root);
        return fail(t, err, errlen, "out of memory");
    }
    for (bool progress = true; progress && added < n;) {
        progress = false;
        for (size_t i = 0; i < n; i++) {
            if (done[i])
                continue;
            json_t *s = json_array_get(shards, i), *tier = json_object_get(s, "tier");
            const char *id = str_of(s, "shard"), *parent = str_of(s, "parent"),
                       *endpoint = str_of(s, "endpoint");
            if (!id || !json_is_integer(tier) || json_integer_value(tier) < 1 ||
                json_integer_value(tier) > ORBIT_TOPOLOGY_TIER_MAX) {
                snprintf(why, sizeof why, "shard %zu: needs shard and tier 1..%d", i,
                         ORBIT_TOPOLOGY_TIER_MAX);
                free(done);
                json_decref(root);
                return fail(t, err, errlen, why);
            }
            orbit_topology_shard_t known;
            if (parent && *parent && orbit_topology_get_shard(t, parent, &known) != ORBIT_OK)
                continue; /* its parent comes in a later pass */
            if (orbit_topology_add_shard(t, id, (uint32_t)json_integer_value(tier), parent,
                                         endpoint, why, sizeof why) != ORBIT_OK) {
                free(done);
                json_decref(root);
                return fail(t, err, errlen, why);
            }
            done[i] = true;
            added++;
            progress = true;
        }
    }
    free(done);
    if (added < n) {
        json_decref(root);
        return fail(t, err, errlen, "a shard names a parent that is not in the tree");
    }
    for (size_t i = 0; i < json_array_size(racks); i++) {
        json_t *r = json_array_get(racks, i);
        const char *rack = str_of(r, "rack"), *shard = str_of(r, "shard");
        if (!rack || !shard) {
            json_decref(root);
            return fail(t, err, errlen, "a rack without rack and shard");
        }
        if (orbit_topology_move_rack(t, rack, shard, why, sizeof why) != ORBIT_OK) {
            json_decref(root);
            return fail(t, err, errlen, why);
        }
    }
    json_decref(root);
    return t;
}

orbit_topology_t *orbit_topology_fetch(orbit_ledger_client_t *c, bool stale, int timeout_ms,
                                       char *err, size_t errlen)
{
    char why[256] = "", *text = NULL;
    if (!c)
        return fail(NULL, err, errlen, "no ledger client");
    int rc = orbit_ledger_client_get(c, GET_KEY, stale, timeout_ms, &text, NULL, why, sizeof why);
    if (rc == ORBIT_ENOTFOUND)
        snprintf(why, sizeof why, "the root replica answered without a value");
    if (rc != ORBIT_OK)
        return fail(NULL, err, errlen, why);
    orbit_topology_t *t = orbit_topology_from_json(text, err, errlen);
    free(text);
    return t;
}

char *orbit_topology_rack_endpoints(const orbit_topology_t *t, const char *rack, char *err,
                                    size_t errlen)
{
    zlistx_t *ids = NULL;
    if (!t || !rack || orbit_topology_candidates(t, rack, &ids) != ORBIT_OK) {
        if (err && errlen)
            snprintf(err, errlen, "topology: no candidates for rack '%s'", rack ? rack : "");
        return NULL;
    }
    size_t cap = 1;
    for (const char *id = zlistx_first(ids); id; id = zlistx_next(ids)) {
        orbit_topology_shard_t s;
        if (orbit_topology_get_shard(t, id, &s) == ORBIT_OK)
            cap += strlen(s.endpoint) + 1;
    }
    char *out = calloc(1, cap);
    for (const char *id = zlistx_first(ids); out && id; id = zlistx_next(ids)) {
        orbit_topology_shard_t s;
        if (orbit_topology_get_shard(t, id, &s) != ORBIT_OK || !s.endpoint[0])
            continue;
        if (*out)
            strcat(out, ",");
        strcat(out, s.endpoint);
    }
    zlistx_destroy(&ids);
    if (!out || !*out) {
        if (err && errlen)
            snprintf(err, errlen, "topology: no tier-1 shard with an endpoint for rack '%s'", rack);
        free(out);
        return NULL;
    }
    return out;
}
