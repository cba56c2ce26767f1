/* test_ledger: the Ephemeris state machine on temporary LMDB environments —
 * every kind under every precondition, invariants (gang atomicity, identity
 * uniqueness, lease exclusivity and epochs), entry-time expiry, quota
 * accounting, INVALID changing nothing, idempotent retries and dedup bounds,
 * determinism of a random log across replicas and reopen, crash-safety
 * shape, history and compaction, snapshot/restore, cluster id, and a fuzz of
 * mutated entries. Proposals are written as JSON (single quotes for double)
 * and converted with orbit_json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ledger.h"
#include "orbit_wire.h"
#include "ledger_hmap.h"
#include "ledger_nodes.h"
#include "ledger_sha256.h"
#include "orbit_err.h"
#include "orbit_json.h"

#define T0     1700000000000LL /* entry time of the first entry */
#define MAXOUT 4096

/* ---------------------------------------------------------------- fixture */

typedef struct {
    char dir[64];
    orbit_ledger_t *l;
    uint64_t raft;   /* last raft index given */
    int64_t time_ms; /* time of the next entry */
    uint64_t req;    /* last request id given */
    Orbit__Ledger__Outcome **out;
    size_t nout;
} fx_t;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void fx_open(fx_t *f)
{
    char err[256];
    int rc = orbit_ledger_open(f->dir, &f->l, err, sizeof err);
    if (rc)
        fail_msg("open %s: %s", f->dir, err);
}

static fx_t *fx_new(void)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test-ledger-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->time_ms = T0;
    fx_open(f);
    return f;
}

static void fx_free_out(fx_t *f)
{
    orbit_ledger_outcomes_free(f->out, f->nout);
    f->out = NULL;
    f->nout = 0;
}

static void fx_destroy(fx_t *f)
{
    if (!f)
        return;
    fx_free_out(f);
    orbit_ledger_close(&f->l);
    rm_rf(f->dir);
    free(f);
}

static int setup(void **state)
{
    *state = fx_new();
    return 0;
}

static int teardown(void **state)
{
    fx_destroy(*state);
    return 0;
}

/* ---------------------------------------------------------------- building */

/* A Proposal from JSON text (single quotes stand for double); client_id
 * "tester" and the next request id unless given. Free with
 * orbit__ledger__proposal__free_unpacked. */
static Orbit__Ledger__Proposal *mkprop_v(fx_t *f, const char *fmt, va_list ap)
{
    char err[256];
    json_error_t je;
    ProtobufCMessage *m = NULL;
    size_t cap = 1 << 17;
    char *text = malloc(cap);
    assert_non_null(text);
    if ((size_t)vsnprintf(text, cap, fmt, ap) >= cap)
        fail_msg("test JSON too long");
    for (char *p = text; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, je.text);
    if (!json_object_get(j, "client_id"))
        json_object_set_new(j, "client_id", json_string("tester"));
    if (!json_object_get(j, "request_id"))
        json_object_set_new(j, "request_id", json_integer((json_int_t)++f->req));
    if (orbit_json_to_pb(j, &orbit__ledger__proposal__descriptor, &m, err, sizeof err))
        fail_msg("test proposal %s: %s", text, err);
    json_decref(j);
    free(text);
    return (Orbit__Ledger__Proposal *)m;
}

static Orbit__Ledger__Proposal *mkprop(fx_t *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static Orbit__Ledger__Proposal *mkprop(fx_t *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Orbit__Ledger__Proposal *p = mkprop_v(f, fmt, ap);
    va_end(ap);
    return p;
}

/* Packed Entry of n proposals at time_ms (malloc'd). */
static uint8_t *pack_entry(int64_t time_ms, Orbit__Ledger__Proposal **ps, size_t n, size_t *len)
{
    Orbit__Ledger__Entry e = ORBIT__LEDGER__ENTRY__INIT;
    e.time_ms = time_ms;
    e.n_proposals = n;
    e.proposals = ps;
    *len = orbit__ledger__entry__get_packed_size(&e);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    orbit__ledger__entry__pack(&e, b);
    return b;
}

/* Apply packed bytes at the next raft index; outcomes kept in f. */
static void apply_bytes(fx_t *f, const uint8_t *b, size_t len)
{
    fx_free_out(f);
    int rc = orbit_ledger_apply(f->l, b, len, ++f->raft, &f->out, &f->nout);
    assert_int_equal(rc, ORBIT_OK);
    assert_int_equal(orbit_ledger_applied_index(f->l), f->raft);
}

/* Apply one entry of the n proposals (freed here). */
static void apply_props(fx_t *f, Orbit__Ledger__Proposal **ps, size_t n)
{
    size_t len;
    uint8_t *b = pack_entry(f->time_ms, ps, n, &len);
    apply_bytes(f, b, len);
    assert_int_equal(f->nout, n);
    free(b);
    for (size_t i = 0; i < n; i++)
        orbit__ledger__proposal__free_unpacked(ps[i], NULL);
}

/* Apply one proposal (JSON) as its own entry; its outcome (valid until the
 * next apply). */
static const Orbit__Ledger__Outcome *run(fx_t *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const Orbit__Ledger__Outcome *run(fx_t *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Orbit__Ledger__Proposal *p = mkprop_v(f, fmt, ap);
    va_end(ap);
    apply_props(f, &p, 1);
    return f->out[0];
}

static const char *kind_name(const Orbit__Ledger__Outcome *o)
{
    switch (o->kind) {
    case ORBIT__LEDGER__OUTCOME_KIND__COMMITTED: return "COMMITTED";
    case ORBIT__LEDGER__OUTCOME_KIND__CONFLICT: return "CONFLICT";
    case ORBIT__LEDGER__OUTCOME_KIND__INVALID: return "INVALID";
    default: return "?";
    }
}

static void outcome_fail(const Orbit__Ledger__Outcome *o, const char *want, const char *file,
                         int line)
{
    print_error("want %s, got %s index=%" PRIu64 " which=%s observed=%s reason=%s\n", want,
                kind_name(o), o->index, o->which ? o->which : "-", o->observed ? o->observed : "-",
                o->reason ? o->reason : "-");
    _fail(file, line);
}

static uint64_t committed_at(const Orbit__Ledger__Outcome *o, const char *file, int line)
{
    if (o->kind != ORBIT__LEDGER__OUTCOME_KIND__COMMITTED || !o->has_index || !o->index)
        outcome_fail(o, "COMMITTED", file, line);
    return o->index;
}

/* CONFLICT with which, and observed containing obs (NULL: anything). */
static void conflict_at(const Orbit__Ledger__Outcome *o, const char *which, const char *obs,
                        const char *file, int line)
{
    if (o->kind != ORBIT__LEDGER__OUTCOME_KIND__CONFLICT || !o->which || strcmp(o->which, which) ||
        (obs && (!o->observed || !strstr(o->observed, obs))) || o->has_index)
        outcome_fail(o, which, file, line);
}

static void invalid_at(const Orbit__Ledger__Outcome *o, const char *reason, const char *file,
                       int line)
{
    if (o->kind != ORBIT__LEDGER__OUTCOME_KIND__INVALID || !o->reason ||
        (reason && !strstr(o->reason, reason)) || o->has_index)
        outcome_fail(o, reason ? reason : "INVALID", file, line);
}

#define COMMITTED(o)            committed_at((o), __FILE__, __LINE__)
#define CONFLICT(o, which, obs) conflict_at((o), (which), (obs), __FILE__, __LINE__)
#define INVALID(o, reason)      invalid_at((o), (reason), __FILE__, __LINE__)

static void hash_of(fx_t *f, uint8_t h[ORBIT_LEDGER_HASH_LEN])
{
    assert_int_equal(orbit_ledger_hash(f->l, h), ORBIT_OK);
}

#define ASSERT_SAME_HASH(a, b) assert_memory_equal((a), (b), ORBIT_LEDGER_HASH_LEN)

/* Common commitments (C_*) and proposals made of them alone. */
#define C_PLACE(capsule, node, cpu)                                                                \
    "{'placement':{'capsule':'" capsule "','node':'" node "','envelope':{'cpu_m':" #cpu "}}}"
#define C_GRANT(principal, cpu)                                                                    \
    "{'quota_grant':{'principal':'" principal "','resources':{'cpu_m':" #cpu "}}}"
#define C_LEASE(holder, resource, ttl)                                                             \
    "{'lease':{'holder':'" holder "','resource':'" resource "','ttl_ms':" #ttl "}}"
#define C_BIND(capsule, identity)                                                                  \
    "{'identity_bind':{'capsule':'" capsule "','identity':'" identity "'}}"
#define C_REVOKE(kind, key) "{'revocation':{'what':{'kind':'" kind "','key':'" key "'}}}"
#define C_EXPIRE(kind, key) "{'expiry':{'what':{'kind':'" kind "','key':'" key "'}}}"
#define C_JOIN(shard, tier, parent)                                                                \
    "{'topology':{'join':{'shard':'" shard "','tier':" #tier ",'parent':'" parent "'}}}"
#define C_MOVE(rack, shard) "{'topology':{'move':{'rack':'" rack "','shard':'" shard "'}}}"
#define C_LEAVE(shard)      "{'topology':{'leave':{'shard':'" shard "'}}}"
#define WITH_ID(client, req, c)                                                                    \
    "{'client_id':'" client "','request_id':" #req ",'commitment':" c "}"
#define PROPOSE(c)       "{'commitment':" c "}"
#define PLACE(c, n, cpu) PROPOSE(C_PLACE(c, n, cpu))
#define GRANT(p, cpu)    PROPOSE(C_GRANT(p, cpu))
#define LEASE(h, r, ttl) PROPOSE(C_LEASE(h, r, ttl))
#define BIND(c, i)       PROPOSE(C_BIND(c, i))
#define REVOKE(k, key)   PROPOSE(C_REVOKE(k, key))
#define EXPIRE(k, key)   PROPOSE(C_EXPIRE(k, key))
#define JOIN(s, t, p)    PROPOSE(C_JOIN(s, t, p))
#define MOVE(r, s)       PROPOSE(C_MOVE(r, s))
#define LEAVE(s)         PROPOSE(C_LEAVE(s))

/* ---------------------------------------------------------------- basics */

static void sha256_vectors(void)
{
    static const struct {
        const char *in;
        const char *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        orbit_sha256_t s;
        uint8_t out[32];
        char hex[65];
        orbit_sha256_init(&s);
        /* fed byte by byte, to cross block boundaries piecewise */
        for (const char *p = v[i].in; *p; p++)
            orbit_sha256_update(&s, p, 1);
        orbit_sha256_final(&s, out);
        for (int k = 0; k < 32; k++)
            snprintf(hex + 2 * k, 3, "%02x", out[k]);
        assert_string_equal(hex, v[i].hex);
    }
    /* a million 'a' in odd chunks */
    orbit_sha256_t s;
    uint8_t out[32], chunk[997];
    char hex[65];
    memset(chunk, 'a', sizeof chunk);
    orbit_sha256_init(&s);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        orbit_sha256_update(&s, chunk, n);
        left -= n;
    }
    orbit_sha256_final(&s, out);
    for (int k = 0; k < 32; k++)
        snprintf(hex + 2 * k, 3, "%02x", out[k]);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void sha256_of(const uint8_t *p, size_t len, size_t step, uint8_t out[32])
{
    orbit_sha256_t s;
    orbit_sha256_init(&s);
    for (size_t at = 0; at < len; at += step)
        orbit_sha256_update(&s, p + at, len - at < step ? len - at : step);
    orbit_sha256_final(&s, out);
}

/* The known vectors with the portable code and with the CPU's SHA
 * extensions (where it has them), and the two agree on 600 pseudo-random
 * inputs of every length from 0 to 599 bytes fed in uneven pieces. */
static void test_sha256_vectors(void **state)
{
    (void)state;
    orbit_sha256_force_portable(true);
    assert_false(orbit_sha256_accelerated());
    sha256_vectors();
    orbit_sha256_force_portable(false);
    print_message("SHA extensions: %s\n", orbit_sha256_accelerated() ? "used" : "not on this CPU");
    sha256_vectors();
    uint8_t data[600], a[32], b[32];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof data; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        data[i] = (uint8_t)x;
    }
    for (size_t len = 0; len < sizeof data; len++) {
        size_t step = 1 + len % 97;
        orbit_sha256_force_portable(true);
        sha256_of(data, len, step, a);
        orbit_sha256_force_portable(false);
        sha256_of(data, len, step, b);
        assert_memory_equal(a, b, 32);
    }
}

static char *nodes_joined(orbit_ledger_nodes_t *n, const char *node, char *out, size_t cap)
{
    zlistx_t *l = orbit_ledger_nodes_list(n, node);
    size_t off = 0;
    assert_non_null(l);
    out[0] = '\0';
    for (const char *c = zlistx_first(l); c; c = zlistx_next(l))
        off += (size_t)snprintf(out + off, cap - off, "%s%s", off ? " " : "", c);
    zlistx_destroy(&l);
    return out;
}

/* Capsule "c<i>" is (add) or is no longer on node "m<i>", for i < count. */
static void nodes_set_many(orbit_ledger_nodes_t *n, bool add, int count)
{
    for (int i = 0; i < count; i++) {
        char node[16], c[16];
        snprintf(node, sizeof node, "m%04d", i);
        snprintf(c, sizeof c, "c%d", i);
        assert_int_equal(orbit_ledger_nodes_set(n, add, node, c), ORBIT_OK);
    }
}

/* The in-memory node index on its own: names in order, staged changes
 * taking effect only on commit, discard leaving it as it was, a node gone
 * with its last capsule. */
static void test_nodes_index_unit(void **state)
{
    (void)state;
    char b[256];
    orbit_ledger_nodes_t *n = orbit_ledger_nodes_new();
    assert_non_null(n);
    assert_string_equal(nodes_joined(n, "n1", b, sizeof b), "");
    assert_int_equal(orbit_ledger_nodes_set(n, true, "n1", "c"), ORBIT_OK);
    assert_int_equal(orbit_ledger_nodes_set(n, true, "n1", "a"), ORBIT_OK);
    assert_int_equal(orbit_ledger_nodes_set(n, true, "n1", "b"), ORBIT_OK);
    assert_int_equal(orbit_ledger_nodes_set(n, true, "n1", "a"), ORBIT_OK); /* again: once */
    assert_string_equal(nodes_joined(n, "n1", b, sizeof b), "a b c");
    assert_int_equal(orbit_ledger_nodes_size(n), 3);
    assert_int_equal(orbit_ledger_nodes_stage(n, false, "n1", "b"), ORBIT_OK);
    assert_int_equal(orbit_ledger_nodes_stage(n, true, "n2", "z"), ORBIT_OK);
    assert_string_equal(nodes_joined(n, "n1", b, sizeof b), "a b c"); /* not yet */
    orbit_ledger_nodes_discard(n);
    assert_int_equal(orbit_ledger_nodes_commit(n), ORBIT_OK); /* nothing staged */
    assert_string_equal(nodes_joined(n, "n1", b, sizeof b), "a b c");
    assert_string_equal(nodes_joined(n, "n2", b, sizeof b), "");
    assert_int_equal(orbit_ledger_nodes_stage(n, false, "n1", "b"), ORBIT_OK);
    assert_int_equal(orbit_ledger_nodes_stage(n, true, "n2", "z"), ORBIT_OK);
    assert_int_equal(orbit_ledger_nodes_stage(n, false, "n2", "z"), ORBIT_OK); /* in order */
    assert_int_equal(orbit_ledger_nodes_stage(n, true, "n2", "y"), ORBIT_OK);
    assert_int_equal(orbit_ledger_nodes_commit(n), ORBIT_OK);
    assert_string_equal(nodes_joined(n, "n1", b, sizeof b), "a c");
    assert_string_equal(nodes_joined(n, "n2", b, sizeof b), "y");
    assert_int_equal(orbit_ledger_nodes_set(n, false, "n2", "y"), ORBIT_OK);
    assert_int_equal(orbit_ledger_nodes_set(n, false, "n2", "nope"), ORBIT_OK);
    assert_string_equal(nodes_joined(n, "n2", b, sizeof b), "");
    assert_int_equal(orbit_ledger_nodes_size(n), 2);
    /* many on one node stay in order */
    for (int i = 99; i >= 0; i--) {
        char c[16];
        snprintf(c, sizeof c, "k%03d", i);
        assert_int_equal(orbit_ledger_nodes_set(n, true, "big", c), ORBIT_OK);
    }
    zlistx_t *l = orbit_ledger_nodes_list(n, "big");
    assert_int_equal(zlistx_size(l), 100);
    const char *prev = "";
    for (const char *c = zlistx_first(l); c; c = zlistx_next(l)) {
        assert_true(strcmp(prev, c) < 0);
        prev = c;
    }
    zlistx_destroy(&l);
    /* thousands of nodes (the node table grows several times): each keeps
     * its own capsules, also after they all leave and some come back */
    nodes_set_many(n, true, 3000);
    assert_int_equal(orbit_ledger_nodes_size(n), 3102);
    for (int i = 0; i < 3000; i += 7) {
        char node[16], want[16];
        snprintf(node, sizeof node, "m%04d", i);
        snprintf(want, sizeof want, "c%d", i);
        assert_string_equal(nodes_joined(n, node, b, sizeof b), want);
    }
    nodes_set_many(n, false, 3000);
    assert_int_equal(orbit_ledger_nodes_size(n), 102);
    assert_string_equal(nodes_joined(n, "m0042", b, sizeof b), "");
    assert_int_equal(orbit_ledger_nodes_set(n, true, "m0042", "back"), ORBIT_OK);
    assert_string_equal(nodes_joined(n, "m0042", b, sizeof b), "back");
    orbit_ledger_nodes_destroy(&n);
    assert_null(n);
}

static void test_open_empty(void **state)
{
    fx_t *f = *state;
    orbit_ledger_stats_t st;
    char err[128];
    assert_int_equal(orbit_ledger_applied_index(f->l), 0);
    assert_int_equal(orbit_ledger_index(f->l), 0);
    assert_int_equal(orbit_ledger_time(f->l), 0);
    assert_string_equal(orbit_ledger_cluster_id(f->l), "");
    assert_int_equal(orbit_ledger_stats(f->l, &st), ORBIT_OK);
    assert_int_equal(st.undecodable + st.dedup_entries + st.compacted_index + st.topology_epoch, 0);
    assert_int_equal(orbit_ledger_topology_epoch(f->l), 0);
    /* bad arguments */
    orbit_ledger_t *l = (orbit_ledger_t *)1;
    assert_int_equal(orbit_ledger_open(NULL, &l, err, sizeof err), ORBIT_EINVAL);
    assert_null(l);
    assert_int_equal(orbit_ledger_open(f->dir, NULL, err, sizeof err), ORBIT_EINVAL);
    assert_int_equal(orbit_ledger_open("/proc/no/such/dir", &l, err, sizeof err), ORBIT_EIO);
    assert_non_null(strstr(err, "/proc/no/such/dir"));
    Orbit__Ledger__Outcome **out = NULL;
    size_t n = 7;
    assert_int_equal(orbit_ledger_apply(NULL, NULL, 0, 1, &out, &n), ORBIT_EINVAL);
    assert_int_equal(n, 0);
    assert_int_equal(orbit_ledger_apply(f->l, NULL, 3, 1, &out, &n), ORBIT_EINVAL);
    orbit_ledger_close(NULL);
    orbit_ledger_t *none = NULL;
    orbit_ledger_close(&none);
}

/* The data file is mapped without readahead (MADV_RANDOM: "rr" in the
 * mapping's VmFlags), which the read-and-map-ahead thread needs
 * (ledger_prefault.h). */
static void test_map_without_readahead(void **state)
{
    fx_t *f = *state;
    char want[128], path[4096], line[8192];
    snprintf(want, sizeof want, "%s/data.mdb", f->dir);
    assert_non_null(realpath(want, path));
    FILE *sm = fopen("/proc/self/smaps", "r");
    assert_non_null(sm);
    bool in = false, found = false, rr = false;
    while (fgets(line, sizeof line, sm)) {
        line[strcspn(line, "\n")] = '\0';
        size_t ll = strlen(line), pl = strlen(path);
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2) /* a mapping's first line */
            in = ll > pl && !strcmp(line + ll - pl, path);
        if (in && !strncmp(line, "VmFlags:", 8)) {
            found = true;
            rr = strstr(line, " rr") != NULL;
        }
    }
    fclose(sm);
    assert_true(found);
    assert_true(rr);
}

static void test_placement(void **state)
{
    fx_t *f = *state;
    orbit_ledger_placement_t p;
    orbit_ledger_node_t n;
    uint64_t at;
    uint64_t i1 = COMMITTED(run(f, PLACE("c1", "n1", 1500)));
    assert_int_equal(i1, 1);
    assert_int_equal(orbit_ledger_index(f->l), 1);
    assert_int_equal(orbit_ledger_get_placement(f->l, "c1", &p), ORBIT_OK);
    assert_string_equal(p.node, "n1");
    assert_string_equal(p.principal, "");
    assert_int_equal(p.envelope.cpu_m, 1500);
    assert_int_equal(p.index, 1);
    assert_int_equal(orbit_ledger_get_node(f->l, "n1", &n), ORBIT_OK);
    assert_int_equal(n.used.cpu_m, 1500);
    assert_int_equal(n.placements, 1);
    assert_int_equal(orbit_ledger_key_index(f->l, "node/n1", &at), ORBIT_OK);
    assert_int_equal(at, 1);
    assert_int_equal(orbit_ledger_key_index(f->l, "placement/c1", &at), ORBIT_OK);
    assert_int_equal(at, 1);
    assert_int_equal(orbit_ledger_key_index(f->l, "node/n2", &at), ORBIT_OK);
    assert_int_equal(at, 0);
    /* the capsule is placed: unconditionally a conflict, nothing changes */
    CONFLICT(run(f, PLACE("c1", "n2", 1)), "capsule_placed", "node=n1");
    assert_int_equal(orbit_ledger_index(f->l), 1);
    assert_int_equal(orbit_ledger_get_node(f->l, "n2", &n), ORBIT_OK);
    assert_int_equal(n.placements, 0);
    uint64_t i2 = COMMITTED(
        run(f, "{'commitment':{'placement':{'capsule':'ns:c2/x','node':'n1','envelope':{'cpu_m':"
               "500,'mem':1024,'gpus':2},'epoch':9}}}"));
    assert_int_equal(i2, 2);
    assert_int_equal(orbit_ledger_get_node(f->l, "n1", &n), ORBIT_OK);
    assert_int_equal(n.used.cpu_m, 2000);
    assert_int_equal(n.used.mem, 1024);
    assert_int_equal(n.used.gpus, 2);
    assert_int_equal(n.placements, 2);
    assert_int_equal(orbit_ledger_get_placement(f->l, "ns:c2/x", &p), ORBIT_OK);
    assert_int_equal(p.epoch, 9);
    /* revocation releases the node envelope */
    uint64_t i3 = COMMITTED(run(f, REVOKE("REF_PLACEMENT", "c1")));
    assert_int_equal(i3, 3);
    assert_int_equal(orbit_ledger_get_placement(f->l, "c1", &p), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_ledger_get_node(f->l, "n1", &n), ORBIT_OK);
    assert_int_equal(n.used.cpu_m, 500);
    assert_int_equal(n.placements, 1);
    assert_int_equal(orbit_ledger_key_index(f->l, "node/n1", &at), ORBIT_OK);
    assert_int_equal(at, 3);
    /* A placement's key changes at its creation (read from its record) and
     * at its revocation (kept once the record is gone), and again when the
     * capsule is placed anew. */
    assert_int_equal(orbit_ledger_key_index(f->l, "placement/c1", &at), ORBIT_OK);
    assert_int_equal(at, 3);
    assert_int_equal(orbit_ledger_key_index(f->l, "placement/ns:c2/x", &at), ORBIT_OK);
    assert_int_equal(at, 2);
    uint64_t i4 = COMMITTED(run(f, PLACE("c1", "n2", 10)));
    assert_int_equal(orbit_ledger_key_index(f->l, "placement/c1", &at), ORBIT_OK);
    assert_int_equal(at, i4);
    uint64_t i5 = COMMITTED(run(f, REVOKE("REF_PLACEMENT", "c1")));
    assert_int_equal(orbit_ledger_key_index(f->l, "placement/c1", &at), ORBIT_OK);
    assert_int_equal(at, i5);
    INVALID(run(f, REVOKE("REF_PLACEMENT", "c1")), "no such placement");
    /* A node's key likewise: from its record while it holds placements
     * (format 6), from the last-changed table once the record is gone. */
    assert_int_equal(orbit_ledger_get_node(f->l, "n2", &n), ORBIT_OK);
    assert_int_equal(n.placements, 0);
    assert_int_equal(orbit_ledger_key_index(f->l, "node/n2", &at), ORBIT_OK);
    assert_int_equal(at, i5);
    assert_int_equal(orbit_ledger_get_node(f->l, "n1", &n), ORBIT_OK);
    assert_int_equal(n.changed, i3);
    uint64_t i6 = COMMITTED(run(f, REVOKE("REF_PLACEMENT", "ns:c2/x")));
    assert_int_equal(orbit_ledger_get_node(f->l, "n1", &n), ORBIT_OK);
    assert_int_equal(n.used.cpu_m + n.used.mem + n.used.gpus + (int64_t)n.placements, 0);
    assert_int_equal(orbit_ledger_key_index(f->l, "node/n1", &at), ORBIT_OK);
    assert_int_equal(at, i6);
    uint64_t i7 = COMMITTED(run(f, PLACE("c3", "n1", 10)));
    assert_int_equal(orbit_ledger_key_index(f->l, "node/n1", &at), ORBIT_OK);
    assert_int_equal(at, i7);
    char observed[64];
    snprintf(observed, sizeof observed, "node/n1 changed at %llu", (unsigned long long)i7);
    CONFLICT(run(f,
                 "{'commitment':{'placement':{'capsule':'cx','node':'n9','envelope':{}}},"
                 "'precondition':{'unchanged_since':[{'key':'node/n1','index':%d}]}}",
                 (int)i6),
             "unchanged_since", observed);
}

/* Several proposals in one entry see each other's effects, in order. */
static void test_entry_order(void **state)
{
    fx_t *f = *state;
    Orbit__Ledger__Proposal *ps[4] = {
        mkprop(f, PLACE("c1", "n1", 100)),
        mkprop(f, PLACE("c1", "n2", 100)),
        mkprop(f, REVOKE("REF_PLACEMENT", "c1")),
        mkprop(f, PLACE("c1", "n2", 100)),
    };
    apply_props(f, ps, 4);
    assert_int_equal(COMMITTED(f->out[0]), 1);
    CONFLICT(f->out[1], "capsule_placed", "node=n1");
    assert_int_equal(COMMITTED(f->out[2]), 2);
    assert_int_equal(COMMITTED(f->out[3]), 3);
    orbit_ledger_placement_t p;
    assert_int_equal(orbit_ledger_get_placement(f->l, "c1", &p), ORBIT_OK);
    assert_string_equal(p.node, "n2");
    /* an entry with no proposal still advances the applied index and time */
    f->time_ms += 5;
    apply_props(f, NULL, 0);
    assert_int_equal(orbit_ledger_time(f->l), f->time_ms);
    assert_int_equal(orbit_ledger_index(f->l), 3);
}

/* ---------------------------------------------------------------- preconditions */

static void test_node_fits(void **state)
{
    fx_t *f = *state;
    COMMITTED(run(f, "{'commitment':{'placement':{'capsule':'c1','node':'n1','envelope':{'cpu_m':"
                     "3000,'mem':4096,'gpus':1}}}}"));
#define FITS_PLACE(capsule, cap)                                                                   \
    "{'commitment':{'placement':{'capsule':'" capsule "','node':'n1','envelope':{'cpu_m':1000,"    \
    "'mem':1024,'gpus':1}}},'precondition':{'node_fits':[{'node':'n1','capacity':" cap "}]}}"
    CONFLICT(run(f, FITS_PLACE("c2", "{'cpu_m':3999,'mem':8192,'gpus':8}")), "node_fits",
             "n1: cpu_m used+new=4000 > cap=3999");
    CONFLICT(run(f, FITS_PLACE("c2", "{'cpu_m':4000,'mem':5000,'gpus':8}")), "node_fits",
             "n1: mem used+new=5120 > cap=5000");
    CONFLICT(run(f, FITS_PLACE("c2", "{'cpu_m':4000,'mem':5120,'gpus':1}")), "node_fits",
             "n1: gpus used+new=2 > cap=1");
    assert_int_equal(orbit_ledger_index(f->l), 1);
    /* exactly full fits; an absent field is not checked */
    COMMITTED(run(f, FITS_PLACE("c2", "{'cpu_m':4000,'mem':5120,'gpus':2}")));
    COMMITTED(run(f, FITS_PLACE("c3", "{'gpus':3}")));
    /* the condition may name another node: its usage alone is judged */
    CONFLICT(run(f, "{'commitment':{'lease':{'holder':'h','resource':'r','ttl_ms':10}},"
                    "'precondition':{'node_fits':[{'node':'n2','capacity':{'cpu_m':1}},"
                    "{'node':'n1','capacity':{'cpu_m':4999}}]}}"),
             "node_fits", "n1: cpu_m used+new=5000 > cap=4999");
    /* a gang counts every member on the node */
#define FITS_GANG(cap)                                                                             \
    "{'commitment':{'gang_placement':{'gang':'g','members':["                                      \
    "{'capsule':'g1','node':'n2','envelope':{'cpu_m':600}},"                                       \
    "{'capsule':'g2','node':'n2','envelope':{'cpu_m':600}},"                                       \
    "{'capsule':'g3','node':'n3','envelope':{'cpu_m':600}}]}},"                                    \
    "'precondition':{'node_fits':[{'node':'n3','capacity':{'cpu_m':600}},"                         \
    "{'node':'n2','capacity':{'cpu_m':" #cap "}}]}}"
    CONFLICT(run(f, FITS_GANG(1199)), "node_fits", "n2: cpu_m used+new=1200 > cap=1199");
    orbit_ledger_node_t n;
    assert_int_equal(orbit_ledger_get_node(f->l, "n2", &n), ORBIT_OK);
    assert_int_equal(n.placements, 0);
    COMMITTED(run(f, FITS_GANG(1200)));
    assert_int_equal(orbit_ledger_get_node(f->l, "n2", &n), ORBIT_OK);
    assert_int_equal(n.placements, 2);
    assert_int_equal(n.used.cpu_m, 1200);
}

static void test_unchanged_since(void **state)
{
    fx_t *f = *state;
    uint64_t i1 = COMMITTED(run(f, GRANT("p", 1000)));
    uint64_t i2 = COMMITTED(run(f, PLACE("c1", "n1", 10)));
#define UNCHANGED(key, idx)                                                                        \
    "{'commitment':{'placement':{'capsule':'cx','node':'n9','envelope':{}}},"                      \
    "'precondition':{'unchanged_since':[{'key':'" key "','index':%d}]}}"
    CONFLICT(run(f, UNCHANGED("node/n1", 1), 1), "unchanged_since", "node/n1 changed at 2");
    CONFLICT(run(f, UNCHANGED("principal/p", 0), 0), "unchanged_since", "principal/p changed at 1");
    /* index >= last change holds; a never-touched key holds from 0 */
    COMMITTED(run(f,
                  "{'commitment':{'placement':{'capsule':'cx','node':'n9','envelope':{}}},"
                  "'precondition':{'unchanged_since':[{'key':'node/n1','index':%d},{'key':"
                  "'principal/p','index':%d},{'key':'lease/nothing','index':0}]}}",
                  (int)i2, (int)i1));
    /* a placement's key, from its record while it exists */
    CONFLICT(run(f, UNCHANGED("placement/c1", 1), 1), "unchanged_since",
             "placement/c1 changed at 2");
    uint64_t i3 = COMMITTED(run(f, REVOKE("REF_PLACEMENT", "c1")));
    char seen[64];
    snprintf(seen, sizeof seen, "placement/c1 changed at %d", (int)i3);
    CONFLICT(run(f, UNCHANGED("placement/c1", 2), (int)i2), "unchanged_since", seen);
    COMMITTED(run(f,
                  "{'commitment':{'placement':{'capsule':'cy','node':'n9','envelope':{}}},"
                  "'precondition':{'unchanged_since':[{'key':'placement/c1','index':%d}]}}",
                  (int)i3));
}

static void test_identity_free(void **state)
{
    fx_t *f = *state;
    COMMITTED(run(f, BIND("c1", "spiffe://a/b")));
    CONFLICT(run(f, "{'commitment':{'identity_bind':{'capsule':'c2','identity':'id2'}},"
                    "'precondition':{'identity_free':['id2','spiffe://a/b']}}"),
             "identity_free", "spiffe://a/b bound to c1");
    COMMITTED(run(f, "{'commitment':{'identity_bind':{'capsule':'c2','identity':'id2'}},"
                     "'precondition':{'identity_free':['id2']}}"));
}

static void test_quota_available(void **state)
{
    fx_t *f = *state;
#define QA(principal, cpu)                                                                         \
    "{'commitment':{'placement':{'capsule':'c%d','node':'n1','envelope':{'cpu_m':" #cpu            \
    "},'principal':'" principal "'}},"                                                             \
    "'precondition':{'quota_available':[{'principal':'" principal "','resources':{'cpu_m':" #cpu   \
    "}}]}}"
    CONFLICT(run(f, QA("p", 100), 1), "quota_available", "p: no grant");
    COMMITTED(run(f,
                  "{'commitment':{'quota_grant':{'principal':'p','resources':{'cpu_m':1000,"
                  "'gpus':1},'until_ms':%" PRId64 "}}}",
                  f->time_ms + 60000));
    COMMITTED(run(f, QA("p", 600), 2));
    CONFLICT(run(f, QA("p", 600), 3), "quota_available", "p: cpu_m grant-used=400 < want=600");
    COMMITTED(run(f, QA("p", 400), 4));
    orbit_ledger_quota_t q;
    assert_int_equal(orbit_ledger_get_quota(f->l, "p", &q), ORBIT_OK);
    assert_true(q.granted);
    assert_int_equal(q.grant.cpu_m, 1000);
    assert_int_equal(q.used.cpu_m, 1000);
    COMMITTED(run(f, REVOKE("REF_PLACEMENT", "c2")));
    assert_int_equal(orbit_ledger_get_quota(f->l, "p", &q), ORBIT_OK);
    assert_int_equal(q.used.cpu_m, 400);
    /* the grant expires on entry time, not on the wall clock */
    f->time_ms += 60000;
    CONFLICT(run(f, QA("p", 1), 5), "quota_available", "grant expired at");
    /* gpus are judged too */
    COMMITTED(
        run(f, "{'commitment':{'quota_grant':{'principal':'p','resources':{'cpu_m':1000}}}}"));
    CONFLICT(run(f,
                 "{'commitment':{'lease':{'holder':'h','resource':'r','ttl_ms':1}},"
                 "'precondition':{'quota_available':[{'principal':'p','resources':{'gpus':1}}]}}"),
             "quota_available", "p: gpus grant-used=0 < want=1");
    /* a grant is fleet-wide: far beyond one envelope's bounds (64 GPUs,
     * 100,000 cores), up to the usage sums; negative is still invalid */
    COMMITTED(run(f, "{'commitment':{'quota_grant':{'principal':'big','resources':{'gpus':80000,"
                     "'cpu_m':1000000000000}}}}"));
    COMMITTED(run(f, "{'commitment':{'lease':{'holder':'h','resource':'r2','ttl_ms':1}},"
                     "'precondition':{'quota_available':[{'principal':'big','resources':"
                     "{'gpus':70000}}]}}"));
    INVALID(run(f, "{'commitment':{'quota_grant':{'principal':'big','resources':{'cpu_m':-1}}}}"),
            "quota_grant: resources out of range");
}

/* The first failing condition is the one reported, in the documented order. */
static void test_precondition_order(void **state)
{
    fx_t *f = *state;
    COMMITTED(run(f, PLACE("c1", "n1", 10)));
    COMMITTED(run(f, BIND("c1", "id1")));
    const char *all = "{'commitment':{'lease':{'holder':'h','resource':'r','ttl_ms':1}},"
                      "'precondition':{%s'unchanged_since':[{'key':'node/n1','index':0}],"
                      "'identity_free':['id1'],"
                      "'quota_available':[{'principal':'p','resources':{}}]}}";
    char text[1024];
    snprintf(text, sizeof text, all, "'node_fits':[{'node':'n1','capacity':{'cpu_m':1}}],");
    CONFLICT(run(f, "%s", text), "node_fits", NULL);
    snprintf(text, sizeof text, all, "");
    CONFLICT(run(f, "%s", text), "unchanged_since", NULL);
    CONFLICT(run(f, "{'commitment':{'lease':{'holder':'h','resource':'r','ttl_ms':1}},"
                    "'precondition':{'identity_free':['id0','id1'],"
                    "'quota_available':[{'principal':'p','resources':{}}]}}"),
             "identity_free", "id1 bound to c1");
    CONFLICT(run(f, "{'commitment':{'lease':{'holder':'h','resource':'r','ttl_ms':1}},"
                    "'precondition':{'quota_available':[{'principal':'p','resources':{}}]}}"),
             "quota_available", NULL);
    /* a precondition is judged before the commitment's own invariants */
    CONFLICT(run(f, "{'commitment':{'placement':{'capsule':'c1','node':'n1','envelope':{}}},"
                    "'precondition':{'identity_free':['id1']}}"),
             "identity_free", NULL);
}

/* Every commitment kind under every precondition: the failing condition
 * leaves the ledger index and the touched key alone; the holding one
 * commits. */
typedef struct {
    const char *name;
    const char *setup[4]; /* extra state the commitment needs */
    const char *commitment;
    const char *key; /* a key the commitment touches */
} kind_case_t;

static const kind_case_t kind_cases[] = {
    {"quota_grant",
     {NULL},
     "'quota_grant':{'principal':'p2','resources':{'cpu_m':1}}",
     "principal/p2"},
    {"placement",
     {NULL},
     "'placement':{'capsule':'cn','node':'n1','envelope':{'cpu_m':1}}",
     "node/n1"},
    {"gang_placement",
     {NULL},
     "'gang_placement':{'gang':'gn','members':[{'capsule':'g1','node':'n1','envelope':{}},"
     "{'capsule':'g2','node':'n2','envelope':{}}]}",
     "gang/gn"},
    {"lease", {NULL}, "'lease':{'holder':'h1','resource':'rn','ttl_ms':1000}", "lease/rn"},
    {"identity_bind", {NULL}, "'identity_bind':{'capsule':'cn','identity':'idn'}", "identity/idn"},
    {"module_adjustment",
     {NULL},
     "'module_adjustment':{'mission':'m','module':'x','adjustment':{'count':3}}",
     "module/m/x"},
    {"revocation",
     {NULL},
     "'revocation':{'what':{'kind':'REF_IDENTITY','key':'id-x'}}",
     "identity/id-x"},
    {"topology",
     {JOIN("s2", 2, ""), JOIN("s1", 1, "s2"), NULL},
     "'topology':{'move':{'rack':'k1','shard':'s1'}}",
     "topology"},
    {"expiry",
     {LEASE("h0", "r-old", 1000), NULL},
     "'expiry':{'what':{'kind':'REF_LEASE','key':'r-old'}}",
     "lease/r-old"},
};

static const char *const failing[] = {
    "'node_fits':[{'node':'n1','capacity':{'cpu_m':500}}]",
    "'unchanged_since':[{'key':'node/n1','index':0}]",
    "'identity_free':['id-x']",
    "'quota_available':[{'principal':'p','resources':{'cpu_m':1000000}}]",
};
static const char *const failing_which[] = {"node_fits", "unchanged_since", "identity_free",
                                            "quota_available"};
static const char *const holding[] = {
    "'node_fits':[{'node':'n1','capacity':{'cpu_m':100000000}}]",
    "'unchanged_since':[{'key':'node/n1','index':%" PRIu64 "}]",
    "'identity_free':['id-free']",
    "'quota_available':[{'principal':'p','resources':{'cpu_m':1}}]",
};

static void test_kinds_by_precondition(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof kind_cases / sizeof kind_cases[0]; k++) {
        const kind_case_t *kc = &kind_cases[k];
        for (size_t c = 0; c < 4; c++) {
            fx_t *f = fx_new();
            char pre[256], text[2048];
            uint64_t before, at_before, at;
            /* base state: a grant, a charged placement on n1, a bound identity */
            COMMITTED(run(f, GRANT("p", 100000)));
            COMMITTED(run(f, "{'commitment':{'placement':{'capsule':'base','node':'n1','envelope':"
                             "{'cpu_m':1000},'principal':'p'}}}"));
            COMMITTED(run(f, BIND("cx", "id-x")));
            for (size_t s = 0; kc->setup[s]; s++)
                COMMITTED(run(f, "%s", kc->setup[s]));
            f->time_ms += 5000; /* the setup lease has expired by now */
            before = orbit_ledger_index(f->l);
            assert_int_equal(orbit_ledger_key_index(f->l, kc->key, &at_before), ORBIT_OK);
            snprintf(text, sizeof text, "{'commitment':{%s},'precondition':{%s}}", kc->commitment,
                     failing[c]);
            const Orbit__Ledger__Outcome *o = run(f, "%s", text);
            if (o->kind != ORBIT__LEDGER__OUTCOME_KIND__CONFLICT ||
                strcmp(o->which, failing_which[c]))
                fail_msg("%s under failing %s: %s which=%s", kc->name, failing_which[c],
                         kind_name(o), o->which ? o->which : "-");
            assert_int_equal(orbit_ledger_index(f->l), before);
            assert_int_equal(orbit_ledger_key_index(f->l, kc->key, &at), ORBIT_OK);
            assert_int_equal(at, at_before);
            snprintf(pre, sizeof pre, holding[c], before);
            snprintf(text, sizeof text, "{'commitment':{%s},'precondition':{%s}}", kc->commitment,
                     pre);
            o = run(f, "%s", text);
            if (o->kind != ORBIT__LEDGER__OUTCOME_KIND__COMMITTED)
                fail_msg("%s under holding %s: %s which=%s observed=%s reason=%s", kc->name,
                         failing_which[c], kind_name(o), o->which ? o->which : "-",
                         o->observed ? o->observed : "-", o->reason ? o->reason : "-");
            assert_int_equal(o->index, before + 1);
            assert_int_equal(orbit_ledger_key_index(f->l, kc->key, &at), ORBIT_OK);
            assert_int_equal(at, before + 1);
            fx_destroy(f);
        }
    }
}

/* ---------------------------------------------------------------- invariants */

static void test_gang_atomicity(void **state)
{
    fx_t *f = *state;
    orbit_ledger_placement_t p;
    orbit_ledger_gang_t g;
    orbit_ledger_node_t n;
    orbit_ledger_quota_t q;
    uint8_t h1[32], h2[32];
    COMMITTED(run(f, PLACE("taken", "n2", 1)));
#define GANG(name, m3)                                                                             \
    "{'commitment':{'gang_placement':{'gang':'" name "','principal':'p','epoch':4,'members':["     \
    "{'capsule':'a','node':'n1','envelope':{'cpu_m':100}},"                                        \
    "{'capsule':'b','node':'n1','envelope':{'cpu_m':200}},"                                        \
    "{'capsule':'" m3 "','node':'n2','envelope':{'cpu_m':300,'gpus':1}}]}}}"
    CONFLICT(run(f, GANG("g", "taken")), "capsule_placed", "capsule=taken,node=n2");
    assert_int_equal(orbit_ledger_get_placement(f->l, "a", &p), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_ledger_get_placement(f->l, "b", &p), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_ledger_get_node(f->l, "n1", &n), ORBIT_OK);
    assert_int_equal(n.placements, 0);
    assert_int_equal(orbit_ledger_get_gang(f->l, "g", &g), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_ledger_get_quota(f->l, "p", &q), ORBIT_ENOTFOUND);
    /* malformed gangs are INVALID and change nothing at all */
    hash_of(f, h1);
    INVALID(run(f, GANG("g", "a")), "capsule a named twice");
    INVALID(run(f, "{'commitment':{'gang_placement':{'gang':'g','members':[]}}}"), "no members");
    char *big = malloc(1100 * 80);
    assert_non_null(big);
    size_t off = (size_t)sprintf(big, "{'commitment':{'gang_placement':{'gang':'g','members':[");
    for (int i = 0; i < 1025; i++)
        off += (size_t)sprintf(big + off, "%s{'capsule':'m%d','node':'n1','envelope':{}}",
                               i ? "," : "", i);
    sprintf(big + off, "]}}}");
    INVALID(run(f, "%s", big), "1025 members");
    free(big);
    hash_of(f, h2);
    ASSERT_SAME_HASH(h1, h2);
    /* the whole gang */
    uint64_t at = COMMITTED(run(f, GANG("g", "c")));
    assert_int_equal(orbit_ledger_get_gang(f->l, "g", &g), ORBIT_OK);
    assert_int_equal(g.members, 3);
    assert_int_equal(g.epoch, 4);
    assert_int_equal(g.index, at);
    assert_string_equal(g.principal, "p");
    assert_int_equal(orbit_ledger_get_placement(f->l, "b", &p), ORBIT_OK);
    assert_string_equal(p.gang, "g");
    assert_string_equal(p.principal, "p");
    assert_int_equal(orbit_ledger_get_node(f->l, "n1", &n), ORBIT_OK);
    assert_int_equal(n.placements, 2);
    assert_int_equal(n.used.cpu_m, 300);
    assert_int_equal(orbit_ledger_get_node(f->l, "n2", &n), ORBIT_OK);
    assert_int_equal(n.placements, 2);
    assert_int_equal(n.used.gpus, 1);
    assert_int_equal(orbit_ledger_get_quota(f->l, "p", &q), ORBIT_OK);
    assert_false(q.granted);
    assert_int_equal(q.used.cpu_m, 600);
    CONFLICT(run(f, GANG("g", "d")), "gang_placed", "members=3");
    /* a member alone cannot be revoked; the gang goes as a whole */
    INVALID(run(f, REVOKE("REF_PLACEMENT", "a")), "belongs to gang g");
    COMMITTED(run(f, REVOKE("REF_GANG", "g")));
    assert_int_equal(orbit_ledger_get_placement(f->l, "a", &p), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_ledger_get_placement(f->l, "c", &p), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_ledger_get_node(f->l, "n1", &n), ORBIT_OK);
    assert_int_equal(n.placements, 0);
    assert_int_equal(orbit_ledger_get_node(f->l, "n2", &n), ORBIT_OK);
    assert_int_equal(n.placements, 1);
    assert_int_equal(n.used.gpus, 0);
    assert_int_equal(orbit_ledger_get_quota(f->l, "p", &q), ORBIT_ENOTFOUND);
    INVALID(run(f, REVOKE("REF_GANG", "g")), "no such gang");
}

static void test_identity_uniqueness(void **state)
{
    fx_t *f = *state;
    char name[ORBIT_LEDGER_NAME_MAX + 1];
    COMMITTED(run(f, BIND("c1", "id1")));
    CONFLICT(run(f, BIND("c2", "id1")), "identity_bound", "capsule=c1");
    CONFLICT(run(f, BIND("c1", "id2")), "capsule_identity", "identity=id1");
    COMMITTED(run(f, BIND("c1", "id1"))); /* the same pair again */
    assert_int_equal(orbit_ledger_get_identity(f->l, "id1", name), ORBIT_OK);
    assert_string_equal(name, "c1");
    assert_int_equal(orbit_ledger_get_capsule_identity(f->l, "c1", name), ORBIT_OK);
    assert_string_equal(name, "id1");
    COMMITTED(run(f, REVOKE("REF_IDENTITY", "id1")));
    assert_int_equal(orbit_ledger_get_identity(f->l, "id1", name), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_ledger_get_capsule_identity(f->l, "c1", name), ORBIT_ENOTFOUND);
    INVALID(run(f, REVOKE("REF_IDENTITY", "id1")), "no such identity binding");
    COMMITTED(run(f, BIND("c2", "id1")));
    COMMITTED(run(f, BIND("c1", "id2")));
}

static void test_lease(void **state)
{
    fx_t *f = *state;
    orbit_ledger_lease_t ls;
    const Orbit__Ledger__Outcome *o;
    char want[128];
    int64_t t = f->time_ms;
    o = run(f, LEASE("h1", "ctl/reaper", 10000));
    COMMITTED(o);
    snprintf(want, sizeof want, "epoch=1,expires=%" PRId64, t + 10000);
    assert_string_equal(o->observed, want);
    /* exclusive: another holder conflicts while it is live */
    f->time_ms = t + 9999;
    snprintf(want, sizeof want, "holder=h1,expires=%" PRId64, t + 10000);
    CONFLICT(run(f, LEASE("h2", "ctl/reaper", 10000)), "lease_held", want);
    /* renewal by the holder extends and keeps the epoch */
    o = run(f, LEASE("h1", "ctl/reaper", 10000));
    COMMITTED(o);
    snprintf(want, sizeof want, "epoch=1,expires=%" PRId64, t + 19999);
    assert_string_equal(o->observed, want);
    assert_int_equal(orbit_ledger_get_lease(f->l, "ctl/reaper", &ls), ORBIT_OK);
    assert_string_equal(ls.holder, "h1");
    assert_int_equal(ls.expires_ms, t + 19999);
    assert_int_equal(ls.epoch, 1);
    /* expiry is judged on entry time only: the wall clock plays no part */
    f->time_ms = t + 19998;
    CONFLICT(run(f, LEASE("h2", "ctl/reaper", 10000)), "lease_held", NULL);
    INVALID(run(f, EXPIRE("REF_LEASE", "ctl/reaper")), "not expired");
    size_t n = 9;
    orbit_ledger_due_t due[4];
    assert_int_equal(orbit_ledger_due_expiries(f->l, t + 19998, due, 4, &n), ORBIT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(orbit_ledger_due_expiries(f->l, t + 19999, due, 4, &n), ORBIT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(due[0].kind, ORBIT__LEDGER__REF_KIND__REF_LEASE);
    assert_string_equal(due[0].key, "ctl/reaper");
    assert_int_equal(due[0].expires_ms, t + 19999);
    /* at expires the lease is over: a new holder takes it with a new epoch */
    f->time_ms = t + 19999;
    o = run(f, LEASE("h2", "ctl/reaper", 1000));
    COMMITTED(o);
    assert_non_null(strstr(o->observed, "epoch=2,"));
    /* the same holder after a lapse gets a new epoch too */
    f->time_ms += 1000;
    o = run(f, LEASE("h2", "ctl/reaper", 1000));
    COMMITTED(o);
    assert_non_null(strstr(o->observed, "epoch=3,"));
    /* the leader's expiry removes the holder, the epoch stays */
    f->time_ms += 1000;
    COMMITTED(run(f, EXPIRE("REF_LEASE", "ctl/reaper")));
    assert_int_equal(orbit_ledger_get_lease(f->l, "ctl/reaper", &ls), ORBIT_OK);
    assert_string_equal(ls.holder, "");
    assert_int_equal(ls.epoch, 3);
    assert_int_equal(orbit_ledger_due_expiries(f->l, INT64_MAX, due, 4, &n), ORBIT_OK);
    assert_int_equal(n, 0);
    /* a late duplicate expiry is harmless */
    uint8_t h1[32], h2[32];
    hash_of(f, h1);
    INVALID(run(f, EXPIRE("REF_LEASE", "ctl/reaper")), "no such lease");
    INVALID(run(f, EXPIRE("REF_LEASE", "never")), "no such lease");
    hash_of(f, h2);
    ASSERT_SAME_HASH(h1, h2);
    o = run(f, LEASE("h1", "ctl/reaper", 500));
    assert_non_null(strstr(o->observed, "epoch=4,"));
    COMMITTED(run(f, REVOKE("REF_LEASE", "ctl/reaper")));
    INVALID(run(f, REVOKE("REF_LEASE", "ctl/reaper")), "no such lease");
    o = run(f, LEASE("h1", "ctl/reaper", 500));
    assert_non_null(strstr(o->observed, "epoch=5,"));
    assert_int_equal(orbit_ledger_get_lease(f->l, "never", &ls), ORBIT_ENOTFOUND);
}

static void test_quota_accounting(void **state)
{
    fx_t *f = *state;
    orbit_ledger_quota_t q;
    orbit_ledger_due_t due[4];
    size_t n;
    int64_t until = f->time_ms + 1000;
    COMMITTED(run(f,
                  "{'commitment':{'quota_grant':{'principal':'p','resources':{'cpu_m':1000,'mem':"
                  "100},'priority':7,'until_ms':%" PRId64 "}}}",
                  until));
    COMMITTED(run(f, "{'commitment':{'placement':{'capsule':'c1','node':'n1','envelope':{'cpu_m':"
                     "300,'mem':10},'principal':'p'}}}"));
    /* a new grant replaces the old one and keeps the usage */
    COMMITTED(run(f,
                  "{'commitment':{'quota_grant':{'principal':'p','resources':{'cpu_m':2000},"
                  "'until_ms':%" PRId64 "}}}",
                  until + 1000));
    assert_int_equal(orbit_ledger_get_quota(f->l, "p", &q), ORBIT_OK);
    assert_true(q.granted);
    assert_int_equal(q.grant.cpu_m, 2000);
    assert_int_equal(q.grant.mem, 0);
    assert_int_equal(q.priority, 0);
    assert_int_equal(q.until_ms, until + 1000);
    assert_int_equal(q.used.cpu_m, 300);
    assert_int_equal(q.used.mem, 10);
    /* only the current grant's end is due */
    assert_int_equal(orbit_ledger_due_expiries(f->l, until + 999, due, 4, &n), ORBIT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(orbit_ledger_due_expiries(f->l, until + 1000, due, 4, &n), ORBIT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(due[0].kind, ORBIT__LEDGER__REF_KIND__REF_QUOTA);
    assert_string_equal(due[0].key, "p");
    INVALID(run(f, EXPIRE("REF_QUOTA", "p")), "not expired");
    f->time_ms = until + 1000;
    COMMITTED(run(f, EXPIRE("REF_QUOTA", "p")));
    assert_int_equal(orbit_ledger_get_quota(f->l, "p", &q), ORBIT_OK);
    assert_false(q.granted);
    assert_int_equal(q.used.cpu_m, 300);
    INVALID(run(f, EXPIRE("REF_QUOTA", "p")), "no such quota grant");
    INVALID(run(f, REVOKE("REF_QUOTA", "p")), "no such quota grant");
    /* an already-ended grant is refused; an unending one never expires */
    INVALID(run(f,
                "{'commitment':{'quota_grant':{'principal':'p','resources':{},'until_ms':%" PRId64
                "}}}",
                f->time_ms),
            "not after the entry time");
    COMMITTED(run(f, GRANT("p", 5)));
    INVALID(run(f, EXPIRE("REF_QUOTA", "p")), "not expired");
    COMMITTED(run(f, REVOKE("REF_QUOTA", "p")));
    COMMITTED(run(f, REVOKE("REF_PLACEMENT", "c1")));
    assert_int_equal(orbit_ledger_get_quota(f->l, "p", &q), ORBIT_ENOTFOUND);
    /* several due items come earliest first, bounded by max */
    COMMITTED(run(f, LEASE("h", "r1", 300)));
    COMMITTED(run(f, LEASE("h", "r2", 100)));
    COMMITTED(run(
        f, "{'commitment':{'quota_grant':{'principal':'q','resources':{},'until_ms':%" PRId64 "}}}",
        f->time_ms + 200));
    assert_int_equal(orbit_ledger_due_expiries(f->l, f->time_ms + 1000, due, 2, &n), ORBIT_OK);
    assert_int_equal(n, 2);
    assert_string_equal(due[0].key, "r2");
    assert_string_equal(due[1].key, "q");
    assert_int_equal(orbit_ledger_due_expiries(f->l, f->time_ms, NULL, 2, &n), ORBIT_EINVAL);
}

static void test_module_adjustment(void **state)
{
    fx_t *f = *state;
    Orbit__Ledger__ModuleSpec *s = NULL;
    uint64_t epoch = 0;
    COMMITTED(run(f, "{'commitment':{'module_adjustment':{'mission':'train','module':'workers',"
                     "'epoch':1,'adjustment':{'count':4,'command':'/bin/run --x','resources':{"
                     "'cpu_m':1000,'gpus':1},'principal':'team'}}}}"));
    COMMITTED(run(f, "{'commitment':{'module_adjustment':{'mission':'train','module':'workers',"
                     "'adjustment':{'count':8,'resources':{'mem':5}}}}}"));
    assert_int_equal(orbit_ledger_get_module(f->l, "train", "workers", &s, &epoch), ORBIT_OK);
    assert_true(s->has_count);
    assert_int_equal(s->count, 8);
    assert_string_equal(s->command, "/bin/run --x");
    assert_string_equal(s->principal, "team");
    assert_non_null(s->resources);
    assert_false(s->resources->has_cpu_m); /* resources replaced as a whole */
    assert_int_equal(s->resources->mem, 5);
    assert_false(s->has_gang);
    assert_int_equal(epoch, 1);
    orbit__ledger__module_spec__free_unpacked(s, NULL);
    uint64_t at;
    assert_int_equal(orbit_ledger_key_index(f->l, "mission/train", &at), ORBIT_OK);
    assert_int_equal(at, 2);
    COMMITTED(run(f, REVOKE("REF_MODULE", "train/workers")));
    assert_int_equal(orbit_ledger_get_module(f->l, "train", "workers", &s, NULL), ORBIT_ENOTFOUND);
    assert_null(s);
    INVALID(run(f, REVOKE("REF_MODULE", "train/workers")), "no such module");
    INVALID(run(f, REVOKE("REF_MODULE", "train")), "mission/module");
    /* the node selector merges like any field; a bad one is INVALID */
    COMMITTED(run(f, "{'commitment':{'module_adjustment':{'mission':'m','module':'x',"
                     "'adjustment':{'count':1,'node_selector':'gpu=a100,zone=b'}}}}"));
    COMMITTED(run(f, "{'commitment':{'module_adjustment':{'mission':'m','module':'x',"
                     "'adjustment':{'count':2}}}}"));
    assert_int_equal(orbit_ledger_get_module(f->l, "m", "x", &s, NULL), ORBIT_OK);
    assert_string_equal(s->node_selector, "gpu=a100,zone=b");
    assert_int_equal(s->count, 2);
    orbit__ledger__module_spec__free_unpacked(s, NULL);
    INVALID(run(f, "{'commitment':{'module_adjustment':{'mission':'m','module':'x',"
                   "'adjustment':{'node_selector':'zone=b,gpu=a100'}}}}"),
            "node_selector");
}

static void test_topology(void **state)
{
    fx_t *f = *state;
    orbit_ledger_shard_t s;
    char owner[ORBIT_LEDGER_NAME_MAX + 1];
    uint64_t i;
    i = COMMITTED(run(f, "{'commitment':{'topology':{'join':{'shard':'zone-a','tier':2,"
                         "'endpoint':'tcp://10.0.0.1:7401'}}}}"));
    assert_int_equal(orbit_ledger_topology_epoch(f->l), i);
    CONFLICT(run(f, JOIN("zone-a", 2, "")), "shard_exists", "tier=2");
    CONFLICT(run(f, JOIN("rack-1", 1, "zone-b")), "parent", "zone-b missing");
    COMMITTED(run(f, JOIN("rack-1", 1, "zone-a")));
    CONFLICT(run(f, JOIN("rack-2", 2, "zone-a")), "parent", "zone-a tier=2, want 3");
    i = COMMITTED(run(f, JOIN("rack-2", 1, "")));
    assert_int_equal(orbit_ledger_get_shard(f->l, "zone-a", &s), ORBIT_OK);
    assert_int_equal(s.children, 1);
    assert_string_equal(s.endpoint, "tcp://10.0.0.1:7401");
    CONFLICT(run(f, MOVE("r1", "zone-a")), "shard", "zone-a tier=2, want 1");
    CONFLICT(run(f, MOVE("r1", "nowhere")), "shard", "nowhere missing");
    assert_int_equal(orbit_ledger_topology_epoch(f->l), i);
    COMMITTED(run(f, MOVE("r1", "rack-1")));
    COMMITTED(run(f, MOVE("r2", "rack-1")));
    assert_int_equal(orbit_ledger_get_rack(f->l, "r1", owner), ORBIT_OK);
    assert_string_equal(owner, "rack-1");
    CONFLICT(run(f, LEAVE("zone-a")), "shard_busy", "racks=0,children=1");
    CONFLICT(run(f, LEAVE("rack-1")), "shard_busy", "racks=2,children=0");
    COMMITTED(run(f, MOVE("r1", "rack-2")));
    i = COMMITTED(run(f, MOVE("r2", "rack-2")));
    assert_int_equal(orbit_ledger_topology_epoch(f->l), i);
    assert_int_equal(orbit_ledger_get_shard(f->l, "rack-2", &s), ORBIT_OK);
    assert_int_equal(s.racks, 2);
    COMMITTED(run(f, LEAVE("rack-1")));
    COMMITTED(run(f, LEAVE("zone-a")));
    assert_int_equal(orbit_ledger_get_shard(f->l, "zone-a", &s), ORBIT_ENOTFOUND);
    INVALID(run(f, LEAVE("zone-a")), "no such shard");
    INVALID(run(f, JOIN("x", 0, "")), "tier 0");
    INVALID(run(f, JOIN("x", 17, "")), "tier 17");
    INVALID(run(f, JOIN("x", 1, "x")), "own parent");
    INVALID(run(f, "{'commitment':{'topology':{}}}"), "no change");
    orbit_ledger_stats_t st;
    assert_int_equal(orbit_ledger_stats(f->l, &st), ORBIT_OK);
    assert_int_equal(st.topology_epoch, orbit_ledger_topology_epoch(f->l));
}

/* ---------------------------------------------------------------- INVALID */

static void test_invalid_changes_nothing(void **state)
{
    fx_t *f = *state;
    static const char *const cases[] = {
        /* names */
        PLACE("", "n1", 1),
        PLACE("c", "", 1),
        PLACE("c", "n/1", 1),
        PLACE("c", "n 1", 1),
        PLACE("c1234567890123456789012345678901234567890123456789012345678901234", "n1", 1),
        PLACE("c", "n123456789012345678901234567890123456789012345678901234567890123", 1),
        "{'commitment':{'placement':{'capsule':'c','node':'n','envelope':{},'principal':'a/b'}}}",
        BIND("c", ""),
        BIND("c\\u00e9", "i"),
        LEASE("", "r", 10),
        GRANT("p:1", 1),
        /* resources */
        PLACE("c", "n1", -1),
        PLACE("c", "n1", 100000001),
        "{'commitment':{'placement':{'capsule':'c','node':'n','envelope':{'mem':-5}}}}",
        "{'commitment':{'placement':{'capsule':'c','node':'n','envelope':{'mem':1125899906842625}}}"
        "}",
        "{'commitment':{'placement':{'capsule':'c','node':'n','envelope':{'gpus':65}}}}",
        GRANT("p", -1),
        "{'commitment':{'module_adjustment':{'mission':'m','module':'x','adjustment':{'count':"
        "1000001}}}}",
        "{'commitment':{'module_adjustment':{'mission':'m/y','module':'x','adjustment':{}}}}",
        /* ttl */
        LEASE("h", "r", 0),
        LEASE("h", "r", -5),
        LEASE("h", "r", 86400001),
        /* kinds */
        "{'commitment':{}}",
        EXPIRE("REF_PLACEMENT", "c"),
        EXPIRE("REF_MODULE", "m/x"),
        /* revocations of what does not exist */
        REVOKE("REF_PLACEMENT", "c"),
        REVOKE("REF_GANG", "g"),
        REVOKE("REF_QUOTA", "p"),
        REVOKE("REF_LEASE", "r"),
        REVOKE("REF_IDENTITY", "i"),
        REVOKE("REF_MODULE", "m/x"),
        LEAVE("s"),
        /* client ids and preconditions */
        "{'client_id':'','commitment':" C_GRANT("p", 1) "}",
        "{'client_id':'a b','commitment':{'quota_grant':{'principal':'p','resources':{}}}}",
        "{'commitment':{'lease':{'holder':'h','resource':'r','ttl_ms':1}},'precondition':{"
        "'node_fits':[{'node':'','capacity':{}}]}}",
        "{'commitment':{'lease':{'holder':'h','resource':'r','ttl_ms':1}},'precondition':{"
        "'node_fits':[{'node':'n','capacity':{'cpu_m':-1}}]}}",
        "{'commitment':{'lease':{'holder':'h','resource':'r','ttl_ms':1}},'precondition':{"
        "'unchanged_since':[{'key':'','index':1}]}}",
        "{'commitment':{'lease':{'holder':'h','resource':'r','ttl_ms':1}},'precondition':{"
        "'identity_free':['']}}",
        "{'commitment':{'lease':{'holder':'h','resource':'r','ttl_ms':1}},'precondition':{"
        "'quota_available':[{'principal':'p','resources':{'mem':-1}}]}}",
    };
    uint8_t h1[32], h2[32];
    COMMITTED(run(f, PLACE("live", "n1", 5))); /* some state to keep */
    COMMITTED(run(f, "{'client_id':'c%0126d','commitment':" C_GRANT("keep", 1) "}", 0)); /* 127 */
    hash_of(f, h1);
    uint64_t index = orbit_ledger_index(f->l);
    orbit_ledger_stats_t st0, st1;
    assert_int_equal(orbit_ledger_stats(f->l, &st0), ORBIT_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const Orbit__Ledger__Outcome *o = run(f, "%s", cases[i]);
        if (o->kind != ORBIT__LEDGER__OUTCOME_KIND__INVALID || !o->reason || !*o->reason)
            fail_msg("case %zu (%s): %s", i, cases[i], kind_name(o));
        hash_of(f, h2);
        if (memcmp(h1, h2, sizeof h1))
            fail_msg("case %zu (%s) changed the state hash", i, cases[i]);
    }
    /* too many conditions and over-long client ids */
    char text[8192];
    size_t off = (size_t)snprintf(
        text, sizeof text, "{'commitment':" C_GRANT("p", 1) ",'precondition':{'identity_free':[");
    for (int i = 0; i <= ORBIT_LEDGER_COND_MAX; i++)
        off += (size_t)snprintf(text + off, sizeof text - off, "%s'i%d'", i ? "," : "", i);
    snprintf(text + off, sizeof text - off, "]}}");
    INVALID(run(f, "%s", text), "more than 64");
    INVALID(run(f, "{'client_id':'%0128d','commitment':" C_GRANT("p", 1) "}", 0), "client_id");
    hash_of(f, h2);
    ASSERT_SAME_HASH(h1, h2);
    assert_int_equal(orbit_ledger_index(f->l), index);
    assert_int_equal(orbit_ledger_stats(f->l, &st1), ORBIT_OK);
    assert_int_equal(st1.dedup_entries, st0.dedup_entries);
    assert_int_equal(st1.undecodable, 0);
}

/* ---------------------------------------------------------------- idempotency */

static void test_idempotent_retry(void **state)
{
    fx_t *f = *state;
    const Orbit__Ledger__Outcome *o;
    uint8_t h1[32], h2[32];
    uint64_t first = COMMITTED(run(f, WITH_ID("sched-1", 77, C_PLACE("c1", "n1", 100))));
    o = run(f, WITH_ID("sched-1", 78, C_PLACE("c1", "n2", 1)));
    CONFLICT(o, "capsule_placed", "node=n1");
    for (int i = 0; i < 5; i++)
        COMMITTED(run(f, LEASE("h", "r", 1000)));
    f->time_ms += 60000;
    hash_of(f, h1);
    uint64_t index = orbit_ledger_index(f->l);
    /* the retry returns the original outcome even with other content */
    o = run(f, WITH_ID("sched-1", 77, C_PLACE("zz", "n9", 1)));
    assert_int_equal(COMMITTED(o), first);
    o = run(f, WITH_ID("sched-1", 78, C_PLACE("c1", "n2", 1)));
    CONFLICT(o, "capsule_placed", "node=n1");
    orbit_ledger_placement_t p;
    assert_int_equal(orbit_ledger_get_placement(f->l, "zz", &p), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_ledger_index(f->l), index);
    hash_of(f, h2);
    ASSERT_SAME_HASH(h1, h2);
    /* the pair is per client */
    COMMITTED(run(f, WITH_ID("sched-2", 77, C_PLACE("zz", "n9", 1))));
    /* a retry in the same entry as the original gets the same outcome */
    Orbit__Ledger__Proposal *ps[2] = {
        mkprop(f, WITH_ID("x", 1, C_PLACE("c5", "n1", 1))),
        mkprop(f, WITH_ID("x", 1, C_PLACE("c5", "n1", 1))),
    };
    apply_props(f, ps, 2);
    assert_int_equal(COMMITTED(f->out[0]), COMMITTED(f->out[1]));
    /* INVALID outcomes are not remembered: a retry is judged again */
    INVALID(run(f, WITH_ID("x", 2, C_REVOKE("REF_LEASE", "q"))), "no such lease");
    COMMITTED(run(f, LEASE("h", "q", 1000)));
    COMMITTED(run(f, WITH_ID("x", 2, C_REVOKE("REF_LEASE", "q"))));
}

/* Build n copies of template proposal t with request ids from first. */
static uint8_t *bulk_entry(const Orbit__Ledger__Proposal *t, size_t n, uint64_t first,
                           int64_t time_ms, size_t *len)
{
    Orbit__Ledger__Proposal *v = calloc(n, sizeof *v);
    Orbit__Ledger__Proposal **pv = calloc(n, sizeof *pv);
    assert_non_null(v);
    assert_non_null(pv);
    for (size_t i = 0; i < n; i++) {
        v[i] = *t;
        v[i].request_id = first + i;
        pv[i] = &v[i];
    }
    uint8_t *b = pack_entry(time_ms, pv, n, len);
    free(v);
    free(pv);
    return b;
}

static int dedup_collect(void *ctx, uint64_t v)
{
    uint64_t *found = ctx;
    found[found[0]++ + 1] = v;
    return 0;
}

static void each_collect(void *ctx, uint64_t v)
{
    (void)dedup_collect(ctx, v);
}

static const char *name_at(void *ctx, uint64_t v)
{
    return ((const char *const *)ctx)[v - 1];
}

/* find_name: the value whose own name matches, not another under the same
 * hash; 0 when none does. */
static void test_hmap_find_name(void **state)
{
    (void)state;
    static const char *const names[] = {"alpha", "beta", "gamma"};
    orbit_ledger_hmap_t *m = orbit_ledger_hmap_new();
    assert_non_null(m);
    uint64_t ha = orbit_ledger_hmap_hash_str(m, "alpha");
    /* beta filed under alpha's hash: a collision find_name must see through */
    assert_int_equal(orbit_ledger_hmap_add(m, ha, 2), ORBIT_OK);
    assert_int_equal(orbit_ledger_hmap_add(m, ha, 1), ORBIT_OK);
    assert_int_equal(orbit_ledger_hmap_add(m, orbit_ledger_hmap_hash_str(m, "gamma"), 3), ORBIT_OK);
    assert_int_equal(orbit_ledger_hmap_find_name(m, ha, "alpha", name_at, (void *)names), 1);
    assert_int_equal(orbit_ledger_hmap_find_name(m, orbit_ledger_hmap_hash_str(m, "gamma"), "gamma",
                                                 name_at, (void *)names),
                     3);
    assert_int_equal(orbit_ledger_hmap_find_name(m, orbit_ledger_hmap_hash_str(m, "delta"), "delta",
                                                 name_at, (void *)names),
                     0);
    orbit_ledger_hmap_remove(m, ha, 1);
    assert_int_equal(orbit_ledger_hmap_find_name(m, ha, "alpha", name_at, (void *)names), 0);
    orbit_ledger_hmap_destroy(&m);
}

static int find_eq(void *ctx, uint64_t v)
{
    return v == *(const uint64_t *)ctx;
}

/* A map set huge grows past 2 MiB of slots and keeps every value: its
 * slot arrays move from calloc to their own mappings on the way, and each
 * goes back the way it came (under ASan a mapping given to free, or a
 * calloc'd array unmapped, fails here). Whether the kernel backs them with
 * huge pages is not visible from here. */
static void test_hmap_huge(void **state)
{
    (void)state;
    orbit_ledger_hmap_t *m = orbit_ledger_hmap_new();
    assert_non_null(m);
    orbit_ledger_hmap_set_huge(m);
    enum { N = 70000 }; /* 262,144 slots of 16 bytes: 4 MiB */
    for (uint64_t v = 1; v <= N; v++)
        assert_int_equal(orbit_ledger_hmap_add(m, v * 0x9e3779b97f4a7c15ull, v), ORBIT_OK);
    assert_int_equal(orbit_ledger_hmap_size(m), N);
    for (uint64_t v = 1; v <= N; v += 997)
        assert_int_equal(orbit_ledger_hmap_find(m, v * 0x9e3779b97f4a7c15ull, find_eq, &v), 1);
    orbit_ledger_hmap_remove(m, 5 * 0x9e3779b97f4a7c15ull, 5);
    uint64_t five = 5;
    assert_int_equal(orbit_ledger_hmap_find(m, 5 * 0x9e3779b97f4a7c15ull, find_eq, &five), 0);
    orbit_ledger_hmap_destroy(&m);
}

/* The hash map behind the dedup and node indexes: several values under one
 * hash (each found), removal of one leaves the others, a seed per map,
 * growth keeps everything, and random adds and removes agree with a plain
 * list (backward-shift deletion keeps every probe run intact). */
static void test_hmap_unit(void **state)
{
    (void)state;
    orbit_ledger_hmap_t *d = orbit_ledger_hmap_new();
    assert_non_null(d);
    orbit_ledger_hmap_t *e = orbit_ledger_hmap_new();
    assert_non_null(e);
    assert_int_not_equal(orbit_ledger_hmap_seed(d), orbit_ledger_hmap_seed(e));
    orbit_ledger_hmap_destroy(&e);
    assert_int_equal(orbit_ledger_hmap_add(d, 7, 0), ORBIT_EINVAL); /* 0 marks empty */
    uint64_t found[8] = {0};
    assert_int_equal(orbit_ledger_hmap_add(d, 7, 1), ORBIT_OK);
    assert_int_equal(orbit_ledger_hmap_add(d, 7, 2), ORBIT_OK);
    assert_int_equal(orbit_ledger_hmap_add(d, 9, 3), ORBIT_OK);
    assert_int_equal(orbit_ledger_hmap_find(d, 7, dedup_collect, found), 0);
    assert_int_equal(found[0], 2);
    assert_true((found[1] == 1 && found[2] == 2) || (found[1] == 2 && found[2] == 1));
    orbit_ledger_hmap_remove(d, 7, 1);
    orbit_ledger_hmap_remove(d, 7, 99); /* not there: nothing */
    memset(found, 0, sizeof found);
    orbit_ledger_hmap_find(d, 7, dedup_collect, found);
    assert_int_equal(found[0], 1);
    assert_int_equal(found[1], 2);
    assert_int_equal(orbit_ledger_hmap_size(d), 2);
    uint64_t all[8] = {0};
    orbit_ledger_hmap_each(d, each_collect, all);
    assert_int_equal(all[0], 2);
    assert_int_equal(all[1] + all[2], 2 + 3);
    orbit_ledger_hmap_destroy(&d);
    assert_null(d);

    /* against a model: hashes from a small range collide and cluster */
    enum { N = 6000 };
    static uint64_t hs[N];
    static bool in[N];
    d = orbit_ledger_hmap_new();
    assert_non_null(d);
    uint64_t rng = 42;
    size_t live = 0;
    for (int step = 0; step < 60000; step++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int i = (int)(rng % N);
        if (!hs[i])
            hs[i] = 1 + (rng >> 20) % 1500; /* ~4 seqs a hash */
        if (in[i]) {
            orbit_ledger_hmap_remove(d, hs[i], (uint64_t)i + 1);
            live--;
        } else {
            assert_int_equal(orbit_ledger_hmap_add(d, hs[i], (uint64_t)i + 1), ORBIT_OK);
            live++;
        }
        in[i] = !in[i];
        if (step % 997 == 0) {
            assert_int_equal(orbit_ledger_hmap_size(d), live);
            for (int j = 0; j < N; j++) {
                if (!hs[j])
                    continue;
                uint64_t got[64] = {0};
                orbit_ledger_hmap_find(d, hs[j], dedup_collect, got);
                bool seen = false;
                for (uint64_t k = 0; k < got[0]; k++)
                    seen |= got[k + 1] == (uint64_t)j + 1;
                assert_int_equal(seen, in[j]);
            }
        }
    }
    orbit_ledger_hmap_destroy(&d);
}

/* The pair index is rebuilt from the table: after a reopen a retry still
 * gets its original outcome. */
static void test_dedup_after_reopen(void **state)
{
    fx_t *f = *state;
    uint64_t first = COMMITTED(run(f, WITH_ID("r", 5, C_PLACE("c1", "n1", 1))));
    CONFLICT(run(f, WITH_ID("r", 6, C_PLACE("c1", "n1", 1))), "capsule_placed", NULL);
    orbit_ledger_close(&f->l);
    fx_open(f);
    assert_int_equal(COMMITTED(run(f, WITH_ID("r", 5, C_PLACE("c1", "n1", 1)))), first);
    CONFLICT(run(f, WITH_ID("r", 6, C_PLACE("c1", "n1", 1))), "capsule_placed", NULL);
    orbit_ledger_stats_t st;
    assert_int_equal(orbit_ledger_stats(f->l, &st), ORBIT_OK);
    assert_int_equal(st.dedup_entries, 2);
}

static void test_dedup_bounds(void **state)
{
    fx_t *f = *state;
    orbit_ledger_stats_t st;
    /* age: pairs older than 10 minutes of entry time are dropped */
    uint64_t first = COMMITTED(run(f, WITH_ID("a", 1, C_PLACE("c1", "n1", 1))));
    f->time_ms += ORBIT_LEDGER_DEDUP_AGE_MS;
    /* exactly 10 minutes: still known */
    assert_int_equal(COMMITTED(run(f, WITH_ID("a", 1, C_PLACE("c1", "n1", 1)))), first);
    assert_int_equal(orbit_ledger_stats(f->l, &st), ORBIT_OK);
    assert_int_equal(st.dedup_entries, 1);
    f->time_ms += 1;
    apply_props(f, NULL, 0); /* pruning happens at the end of every entry */
    assert_int_equal(orbit_ledger_stats(f->l, &st), ORBIT_OK);
    assert_int_equal(st.dedup_entries, 0);
    /* judged again */
    CONFLICT(run(f, WITH_ID("a", 1, C_PLACE("c1", "n1", 1))), "capsule_placed", NULL);
    /* count: at most 100,000 pairs, the oldest go first */
    Orbit__Ledger__Proposal *t =
        mkprop(f, "{'client_id':'bulk','commitment':" C_PLACE("c1", "n1", 1) "}");
    uint64_t req = 1;
    for (int e = 0; e < 101; e++) {
        size_t len;
        uint8_t *b = bulk_entry(t, 1000, req, f->time_ms, &len);
        req += 1000;
        apply_bytes(f, b, len);
        free(b);
        assert_int_equal(f->nout, 1000);
        CONFLICT(f->out[999], "capsule_placed", NULL);
    }
    orbit__ledger__proposal__free_unpacked(t, NULL);
    assert_int_equal(orbit_ledger_stats(f->l, &st), ORBIT_OK);
    assert_int_equal(st.dedup_entries, ORBIT_LEDGER_DEDUP_MAX);
    /* the 'a' pair and bulk 1..1000 were dropped: a revoke under a dropped
     * id applies; its own pair pushes out bulk 1001 at the end of its entry,
     * and one under a kept id replays */
    COMMITTED(run(f, WITH_ID("bulk", 1000, C_REVOKE("REF_PLACEMENT", "c1"))));
    assert_int_equal(orbit_ledger_stats(f->l, &st), ORBIT_OK);
    assert_int_equal(st.dedup_entries, ORBIT_LEDGER_DEDUP_MAX);
    CONFLICT(run(f, WITH_ID("bulk", 1002, C_REVOKE("REF_PLACEMENT", "c1"))), "capsule_placed",
             NULL);
    INVALID(run(f, WITH_ID("bulk", 1001, C_REVOKE("REF_PLACEMENT", "c1"))), "no such placement");
}

/* ---------------------------------------------------------------- determinism */

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t rnd(rng_t *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

static int rndn(rng_t *r, int n)
{
    return (int)(rnd(r) % (uint64_t)n);
}

/* A random proposal over a small universe of names, so that conflicts,
 * revocations, expiries and retries all happen. */
static Orbit__Ledger__Proposal *random_prop(fx_t *f, rng_t *r, int64_t now)
{
    char pre[512] = "", c[2048];
    int k = rndn(r, 12);
    switch (k) {
    case 0:
        snprintf(c, sizeof c,
                 "'quota_grant':{'principal':'p%d','resources':{'cpu_m':%d,'gpus':%d}%s}",
                 rndn(r, 3), rndn(r, 100000), rndn(r, 8), rndn(r, 2) ? "" : ",'until_ms':UNTIL");
        break;
    case 1:
    case 2:
        snprintf(
            c, sizeof c,
            "'placement':{'capsule':'c%d','node':'n%d','envelope':{'cpu_m':%d,'mem':%d,'gpus':%"
            "d}%s}",
            rndn(r, 40), rndn(r, 5), rndn(r, 4000), rndn(r, 1 << 20), rndn(r, 2),
            rndn(r, 2) ? ",'principal':'p1'" : "");
        break;
    case 3: {
        int n = 1 + rndn(r, 4), off = 0;
        off += snprintf(c + off, sizeof c - (size_t)off,
                        "'gang_placement':{'gang':'g%d',%s'members':[", rndn(r, 6),
                        rndn(r, 2) ? "'principal':'p2'," : "");
        for (int i = 0; i < n; i++)
            off += snprintf(c + off, sizeof c - (size_t)off,
                            "%s{'capsule':'c%d','node':'n%d','envelope':{'cpu_m':%d}}",
                            i ? "," : "", rndn(r, 40), rndn(r, 5), rndn(r, 1000));
        snprintf(c + off, sizeof c - (size_t)off, "]}");
        break;
    }
    case 4:
        snprintf(c, sizeof c, "'lease':{'holder':'h%d','resource':'r%d','ttl_ms':%d}", rndn(r, 3),
                 rndn(r, 3), 1 + rndn(r, 20000));
        break;
    case 5:
        snprintf(c, sizeof c, "'identity_bind':{'capsule':'c%d','identity':'i%d'}", rndn(r, 40),
                 rndn(r, 10));
        break;
    case 6:
        snprintf(c, sizeof c,
                 "'module_adjustment':{'mission':'m%d','module':'x%d','adjustment':{'count':%d}}",
                 rndn(r, 2), rndn(r, 2), rndn(r, 10));
        break;
    case 7:
    case 8: {
        static const char *const kinds[] = {"REF_PLACEMENT", "REF_GANG",     "REF_QUOTA",
                                            "REF_LEASE",     "REF_IDENTITY", "REF_MODULE"};
        static const char *const fmts[] = {"c%d", "g%d", "p%d", "r%d", "i%d", "m%d/x0"};
        int w = rndn(r, 6);
        char key[32];
        snprintf(key, sizeof key, fmts[w], rndn(r, w == 0 ? 40 : w == 4 ? 10 : 3));
        snprintf(c, sizeof c, "'revocation':{'what':{'kind':'%s','key':'%s'}}", kinds[w], key);
        break;
    }
    case 9:
        if (rndn(r, 2))
            snprintf(c, sizeof c, "'expiry':{'what':{'kind':'REF_LEASE','key':'r%d'}}", rndn(r, 3));
        else
            snprintf(c, sizeof c, "'expiry':{'what':{'kind':'REF_QUOTA','key':'p%d'}}", rndn(r, 3));
        break;
    case 10: {
        int s = rndn(r, 4);
        switch (rndn(r, 3)) {
        case 0:
            snprintf(c, sizeof c, "'topology':{'join':{'shard':'s%d','tier':%d,'parent':'%s'}}", s,
                     s < 2 ? 1 : 2, s < 2 ? (s ? "s2" : "s3") : "");
            break;
        case 1: snprintf(c, sizeof c, "'topology':{'leave':{'shard':'s%d'}}", s); break;
        default:
            snprintf(c, sizeof c, "'topology':{'move':{'rack':'k%d','shard':'s%d'}}", rndn(r, 4),
                     s);
        }
        break;
    }
    default:
        snprintf(c, sizeof c, "'placement':{'capsule':'c%d','node':'bad name','envelope':{}}",
                 rndn(r, 40)); /* INVALID */
    }
    char *u = strstr(c, "UNTIL");
    if (u) {
        char tail[2048];
        snprintf(tail, sizeof tail, "%s", u + 5);
        snprintf(u, sizeof c - (size_t)(u - c), "%" PRId64 "%s", now + 1 + rndn(r, 30000), tail);
    }
    switch (rndn(r, 6)) {
    case 0:
        snprintf(pre, sizeof pre,
                 ",'precondition':{'node_fits':[{'node':'n%d','capacity':{'cpu_m':%d}}]}",
                 rndn(r, 5), rndn(r, 20000));
        break;
    case 1:
        snprintf(pre, sizeof pre,
                 ",'precondition':{'unchanged_since':[{'key':'node/n%d','index':%" PRIu64 "}]}",
                 rndn(r, 5), orbit_ledger_index(f->l) / 2 + (uint64_t)rndn(r, 3));
        break;
    case 2:
        snprintf(
            pre, sizeof pre,
            ",'precondition':{'quota_available':[{'principal':'p%d','resources':{'cpu_m':%d}}],"
            "'identity_free':['i%d']}",
            rndn(r, 3), rndn(r, 5000), rndn(r, 10));
        break;
    default: break;
    }
    /* a few retries reuse a recent request id */
    uint64_t req = rndn(r, 10) == 0 && f->req > 5 ? f->req - (uint64_t)rndn(r, 5) : ++f->req;
    return mkprop(f, "{'client_id':'cl%d','request_id':%" PRIu64 ",'commitment':{%s}%s}",
                  rndn(r, 2), req, c, pre);
}

/* A random log: entries of 1..64 proposals (packed), advancing time. */
typedef struct {
    uint8_t **e;
    size_t *len;
    size_t n;
    size_t proposals;
} rlog_t;

static void rlog_make(rlog_t *lg, uint64_t seed, size_t proposals)
{
    fx_t *f = fx_new(); /* a scratch ledger so unchanged_since indexes look real */
    rng_t r = {seed};
    memset(lg, 0, sizeof *lg);
    lg->e = calloc(proposals, sizeof *lg->e);
    lg->len = calloc(proposals, sizeof *lg->len);
    assert_non_null(lg->e);
    assert_non_null(lg->len);
    while (lg->proposals < proposals) {
        size_t n = 1 + (size_t)rndn(&r, 64);
        if (n > proposals - lg->proposals)
            n = proposals - lg->proposals;
        Orbit__Ledger__Proposal *ps[64];
        f->time_ms += rndn(&r, 3000);
        for (size_t i = 0; i < n; i++)
            ps[i] = random_prop(f, &r, f->time_ms);
        lg->e[lg->n] = pack_entry(f->time_ms, ps, n, &lg->len[lg->n]);
        apply_bytes(f, lg->e[lg->n], lg->len[lg->n]);
        for (size_t i = 0; i < n; i++)
            orbit__ledger__proposal__free_unpacked(ps[i], NULL);
        lg->n++;
        lg->proposals += n;
    }
    fx_destroy(f);
}

static void rlog_free(rlog_t *lg)
{
    for (size_t i = 0; i < lg->n; i++)
        free(lg->e[i]);
    free(lg->e);
    free(lg->len);
}

static void test_determinism(void **state)
{
    (void)state;
    rlog_t lg;
    rlog_make(&lg, 0x9e3779b97f4a7c15ULL, 3000);
    fx_t *a = fx_new(), *b = fx_new();
    size_t kinds[3] = {0, 0, 0};
    for (size_t i = 0; i < lg.n; i++) {
        apply_bytes(a, lg.e[i], lg.len[i]);
        for (size_t k = 0; k < a->nout; k++)
            kinds[a->out[k]->kind]++;
        if (i == lg.n / 2) { /* b restarts half-way */
            orbit_ledger_close(&b->l);
            fx_open(b);
            assert_int_equal(orbit_ledger_applied_index(b->l), b->raft);
        }
        apply_bytes(b, lg.e[i], lg.len[i]);
        /* the same outcomes, byte for byte */
        assert_int_equal(a->nout, b->nout);
        for (size_t k = 0; k < a->nout; k++) {
            uint8_t x[1024], y[1024];
            size_t nx = orbit__ledger__outcome__pack(a->out[k], x);
            size_t ny = orbit__ledger__outcome__pack(b->out[k], y);
            assert_int_equal(nx, ny);
            assert_memory_equal(x, y, nx);
        }
        if (i % 16 == 0 || i == lg.n - 1) {
            uint8_t ha[32], hb[32];
            hash_of(a, ha);
            hash_of(b, hb);
            ASSERT_SAME_HASH(ha, hb);
        }
    }
    /* the log exercised every outcome kind */
    assert_true(kinds[0] > 300);
    assert_true(kinds[1] > 100);
    assert_true(kinds[2] > 100);
    assert_int_equal(orbit_ledger_index(a->l), orbit_ledger_index(b->l));
    uint8_t h[32], h2[32];
    hash_of(a, h);
    /* a third replica gets every entry twice (redelivery): no-ops */
    fx_t *c = fx_new();
    for (size_t i = 0; i < lg.n; i++) {
        apply_bytes(c, lg.e[i], lg.len[i]);
        Orbit__Ledger__Outcome **out = NULL;
        size_t n = 99;
        assert_int_equal(orbit_ledger_apply(c->l, lg.e[i], lg.len[i], c->raft, &out, &n), ORBIT_OK);
        assert_int_equal(n, 0);
        assert_null(out);
    }
    hash_of(c, h2);
    ASSERT_SAME_HASH(h, h2);
    /* a different log gives a different hash */
    fx_t *d = fx_new();
    for (size_t i = 0; i + 1 < lg.n; i++)
        apply_bytes(d, lg.e[i], lg.len[i]);
    hash_of(d, h2);
    assert_memory_not_equal(h, h2, 32);
    fx_destroy(a);
    fx_destroy(b);
    fx_destroy(c);
    fx_destroy(d);
    rlog_free(&lg);
}

/* Applied index and state live in one transaction: a reopen finds both. */
static void test_reopen_and_redelivery(void **state)
{
    fx_t *f = *state;
    uint8_t h1[32], h2[32];
    COMMITTED(run(f, PLACE("c1", "n1", 10)));
    COMMITTED(run(f, LEASE("h", "r", 1000)));
    f->time_ms += 7;
    COMMITTED(run(f, BIND("c1", "i1")));
    hash_of(f, h1);
    uint64_t applied = orbit_ledger_applied_index(f->l), index = orbit_ledger_index(f->l);
    int64_t t = orbit_ledger_time(f->l);
    orbit_ledger_close(&f->l);
    assert_null(f->l);
    fx_open(f);
    hash_of(f, h2);
    ASSERT_SAME_HASH(h1, h2);
    assert_int_equal(orbit_ledger_applied_index(f->l), applied);
    assert_int_equal(orbit_ledger_index(f->l), index);
    assert_int_equal(orbit_ledger_time(f->l), t);
    /* re-applying an index at or below the applied one is a no-op */
    Orbit__Ledger__Proposal *p = mkprop(f, PLACE("c2", "n1", 10));
    size_t len;
    uint8_t *b = pack_entry(f->time_ms, &p, 1, &len);
    Orbit__Ledger__Outcome **out = NULL;
    size_t n = 5;
    for (uint64_t i = 0; i <= applied; i++) {
        assert_int_equal(orbit_ledger_apply(f->l, b, len, i, &out, &n), ORBIT_OK);
        assert_int_equal(n, 0);
        assert_null(out);
    }
    hash_of(f, h2);
    ASSERT_SAME_HASH(h1, h2);
    assert_int_equal(orbit_ledger_applied_index(f->l), applied);
    /* indexes may skip (configuration entries are not the ledger's) */
    assert_int_equal(orbit_ledger_apply(f->l, b, len, applied + 5, &out, &n), ORBIT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(COMMITTED(out[0]), index + 1);
    assert_int_equal(orbit_ledger_applied_index(f->l), applied + 5);
    orbit_ledger_outcomes_free(out, n);
    orbit_ledger_outcomes_free(NULL, 0);
    free(b);
    orbit__ledger__proposal__free_unpacked(p, NULL);
}

/* Commits are not synced one by one: a process that dies without closing
 * loses nothing (same boot: the page cache holds it), while an environment
 * left open by another boot is discarded on open (Raft rebuilds it). */
static void test_crash_marker(void **state)
{
    fx_t *f = *state;
    char marker[sizeof f->dir + 16];
    snprintf(marker, sizeof marker, "%s/open.boot", f->dir);
    COMMITTED(run(f, PLACE("c1", "n1", 10)));
    assert_int_equal(access(marker, F_OK), 0);
    orbit_ledger_close(&f->l);
    assert_int_not_equal(access(marker, F_OK), 0); /* clean close: synced, marker gone */

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fx_open(f);
        f->out = NULL;
        if (!f->l || orbit_ledger_discarded(f->l))
            _exit(2);
        run(f, PLACE("c2", "n1", 10));
        _exit(orbit_ledger_applied_index(f->l) == 2 ? 0 : 3); /* no close, no sync */
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(access(marker, F_OK), 0); /* left behind by the "crash" */
    fx_open(f);
    assert_false(orbit_ledger_discarded(f->l));
    assert_int_equal(orbit_ledger_applied_index(f->l), 2);
    uint8_t h1[32], h2[32];
    hash_of(f, h1);
    orbit_ledger_close(&f->l);

    /* The same marker written under another boot: torn state is possible. */
    FILE *m = fopen(marker, "w");
    assert_non_null(m);
    fputs("00000000-0000-0000-0000-000000000000\n", m);
    fclose(m);
    fx_open(f);
    assert_true(orbit_ledger_discarded(f->l));
    assert_int_equal(orbit_ledger_applied_index(f->l), 0);
    assert_int_equal(orbit_ledger_index(f->l), 0);
    hash_of(f, h2);
    assert_memory_not_equal(h1, h2, sizeof h1);
    orbit_ledger_close(&f->l);
    fx_open(f); /* cleanly closed since: kept */
    assert_false(orbit_ledger_discarded(f->l));
}

static void test_undecodable_entry(void **state)
{
    fx_t *f = *state;
    orbit_ledger_stats_t st;
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12};
    COMMITTED(run(f, PLACE("c1", "n1", 10)));
    apply_bytes(f, junk, sizeof junk);
    assert_int_equal(f->nout, 0);
    /* negative time: refused as a whole */
    size_t len;
    Orbit__Ledger__Proposal *p = mkprop(f, PLACE("c2", "n1", 10));
    uint8_t *b = pack_entry(-1, &p, 1, &len);
    apply_bytes(f, b, len);
    assert_int_equal(f->nout, 0);
    free(b);
    orbit__ledger__proposal__free_unpacked(p, NULL);
    apply_bytes(f, NULL, 0); /* no bytes: the required time_ms is missing */
    assert_int_equal(orbit_ledger_stats(f->l, &st), ORBIT_OK);
    assert_int_equal(st.undecodable, 3);
    assert_int_equal(st.applied_index, 4);
    assert_int_equal(orbit_ledger_index(f->l), 1);
    orbit_ledger_placement_t pl;
    assert_int_equal(orbit_ledger_get_placement(f->l, "c2", &pl), ORBIT_ENOTFOUND);
}

/* The hash is exactly SHA-256 over (be32 klen, key, be32 vlen, value) of
 * every record but the history and the four local meta records, computed
 * here independently from the raw environment. */
static void test_hash_contract(void **state)
{
    fx_t *f = *state;
    uint8_t mine[32], theirs[32], cached[32];
    COMMITTED(run(f, PLACE("c1", "n1", 10)));
    COMMITTED(run(f, LEASE("h", "r", 1000)));
    COMMITTED(run(f, JOIN("s", 1, "")));
    COMMITTED(run(f, BIND("c1", "i1")));
    COMMITTED(run(
        f, "{'commitment':{'quota_grant':{'principal':'p','resources':{},'until_ms':%" PRId64 "}}}",
        f->time_ms + 5));
    char err[64];
    assert_int_equal(orbit_ledger_set_cluster_id(f->l, "x", err, sizeof err), ORBIT_OK);
    assert_int_equal(orbit_ledger_compact_history(f->l, 2), ORBIT_OK);
    hash_of(f, cached);
    orbit_ledger_close(&f->l);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    orbit_sha256_t s;
    size_t hashed = 0, skipped = 0;
    /* One sub-database per table, named "#<table>"; the hash walks them in
     * tag order as records (tag + key, value). */
    static const struct {
        char tag;
        const char *name;
    } tables[] = {{'c', "#capsule_identity"},
                  {'d', "#dedup"},
                  {'g', "#gang"},
                  {'h', "#history"},
                  {'i', "#identity"},
                  {'k', "#key"},
                  {'l', "#lease"},
                  {'m', "#meta"},
                  {'n', "#node"},
                  {'o', "#module"},
                  {'p', "#placement"},
                  {'q', "#quota"},
                  {'r', "#rack"},
                  {'s', "#shard"},
                  {'x', "#expiry"}};
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, f->dir, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    orbit_sha256_init(&s);
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        assert_int_equal(mdb_dbi_open(txn, tables[t].name, 0, &dbi), 0);
        assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
        while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
            static const char *const local[] = {"applied", "time", "cluster", "compacted"};
            bool skip = tables[t].tag == 'h';
            for (int i = 0; i < 4 && tables[t].tag == 'm'; i++)
                skip |= k.mv_size == strlen(local[i]) && !memcmp(k.mv_data, local[i], k.mv_size);
            if (skip) {
                skipped++;
                continue;
            }
            hashed++;
            size_t kn = k.mv_size + 1;
            uint8_t b[4] = {(uint8_t)(kn >> 24), (uint8_t)(kn >> 16), (uint8_t)(kn >> 8),
                            (uint8_t)kn};
            orbit_sha256_update(&s, b, 4);
            orbit_sha256_update(&s, &tables[t].tag, 1);
            orbit_sha256_update(&s, k.mv_data, k.mv_size);
            uint8_t c[4] = {(uint8_t)(v.mv_size >> 24), (uint8_t)(v.mv_size >> 16),
                            (uint8_t)(v.mv_size >> 8), (uint8_t)v.mv_size};
            orbit_sha256_update(&s, c, 4);
            orbit_sha256_update(&s, v.mv_data, v.mv_size);
        }
        mdb_cursor_close(cur);
    }
    orbit_sha256_final(&s, theirs);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    assert_int_equal(skipped, 4 + 3); /* the local meta and 3 history records */
    assert_true(hashed > 20);
    fx_open(f);
    hash_of(f, mine);
    ASSERT_SAME_HASH(mine, theirs);
    ASSERT_SAME_HASH(cached, theirs);
}

/* ---------------------------------------------------------------- history */

typedef struct {
    uint64_t idx[64];
    char keys[64][256];
    int n;
    int stop_after;
    const char *prefix;
} seen_t;

static int collect(void *ctx, const orbit_ledger_commit_t *c)
{
    seen_t *s = ctx;
    if (s->prefix && !orbit_ledger_commit_touches(c, s->prefix))
        return 0;
    Orbit__Ledger__Proposal *p =
        orbit__ledger__proposal__unpack(NULL, c->proposal_len, c->proposal);
    assert_non_null(p);
    orbit__ledger__proposal__free_unpacked(p, NULL);
    assert_true(c->time_ms >= T0);
    s->idx[s->n] = c->index;
    size_t off = 0;
    s->keys[s->n][0] = '\0';
    const char *k = c->keys;
    for (size_t i = 0; i < c->nkeys; i++) {
        off +=
            (size_t)snprintf(s->keys[s->n] + off, sizeof s->keys[0] - off, "%s%s", i ? " " : "", k);
        k += strlen(k) + 1;
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? 1 : 0;
}

static int fail_cb(void *ctx, const orbit_ledger_commit_t *c)
{
    (void)ctx;
    (void)c;
    return ORBIT_EIO;
}

static void test_history_and_compaction(void **state)
{
    fx_t *f = *state;
    seen_t s;
    uint64_t compacted = 9;
    uint8_t h1[32], h2[32];
    COMMITTED(run(f, "{'commitment':{'placement':{'capsule':'c1','node':'n1','envelope':{},"
                     "'principal':'p'}}}"));
    CONFLICT(run(f, PLACE("c1", "n1", 1)), "capsule_placed", NULL); /* not in history */
    COMMITTED(run(f, LEASE("h", "r", 100)));
    COMMITTED(run(f, JOIN("s1", 1, "")));
    COMMITTED(run(f, REVOKE("REF_PLACEMENT", "c1")));
    memset(&s, 0, sizeof s);
    assert_int_equal(orbit_ledger_history_from(f->l, 0, collect, &s, &compacted), ORBIT_OK);
    assert_int_equal(compacted, 0);
    assert_int_equal(s.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s.idx[i], (uint64_t)i + 1);
    assert_string_equal(s.keys[0], "node/n1 placement/c1 principal/p");
    assert_string_equal(s.keys[1], "lease/r");
    assert_string_equal(s.keys[2], "shard/s1 topology");
    assert_string_equal(s.keys[3], "node/n1 placement/c1 principal/p");
    /* from the middle, with a prefix filter, stopping early */
    memset(&s, 0, sizeof s);
    s.prefix = "node/";
    assert_int_equal(orbit_ledger_history_from(f->l, 2, collect, &s, NULL), ORBIT_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.idx[0], 4);
    memset(&s, 0, sizeof s);
    s.stop_after = 2;
    assert_int_equal(orbit_ledger_history_from(f->l, 1, collect, &s, NULL), ORBIT_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(orbit_ledger_history_from(f->l, 1, fail_cb, NULL, NULL), ORBIT_EIO);
    memset(&s, 0, sizeof s);
    assert_int_equal(orbit_ledger_history_from(f->l, 99, collect, &s, NULL), ORBIT_OK);
    assert_int_equal(s.n, 0);
    /* compaction is local: it changes no hash */
    hash_of(f, h1);
    assert_int_equal(orbit_ledger_compact_history(f->l, 2), ORBIT_OK);
    hash_of(f, h2);
    ASSERT_SAME_HASH(h1, h2);
    memset(&s, 0, sizeof s);
    assert_int_equal(orbit_ledger_history_from(f->l, 1, collect, &s, &compacted), ORBIT_ECOMPACTED);
    assert_int_equal(compacted, 2);
    assert_int_equal(s.n, 0);
    assert_int_equal(orbit_ledger_history_from(f->l, 2, collect, &s, &compacted), ORBIT_ECOMPACTED);
    assert_int_equal(orbit_ledger_history_from(f->l, 3, collect, &s, &compacted), ORBIT_OK);
    assert_int_equal(compacted, 2);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.idx[0], 3);
    /* never lowered; capped at the ledger index */
    assert_int_equal(orbit_ledger_compact_history(f->l, 1), ORBIT_OK);
    assert_int_equal(orbit_ledger_compact_history(f->l, 1000), ORBIT_OK);
    orbit_ledger_stats_t st;
    assert_int_equal(orbit_ledger_stats(f->l, &st), ORBIT_OK);
    assert_int_equal(st.compacted_index, 4);
    assert_int_equal(orbit_ledger_history_from(f->l, 4, collect, &s, &compacted), ORBIT_ECOMPACTED);
    assert_int_equal(compacted, 4);
    COMMITTED(run(f, LEASE("h", "r", 100)));
    memset(&s, 0, sizeof s);
    assert_int_equal(orbit_ledger_history_from(f->l, 5, collect, &s, NULL), ORBIT_OK);
    assert_int_equal(s.n, 1);
    hash_of(f, h2);
    assert_memory_not_equal(h1, h2, 32);
}

/* Apply keeps the history to history_keep commitments as it goes, in
 * steps bounded by each transaction's size, and that changes no hash. */
static void test_history_kept_by_apply(void **state)
{
    fx_t *f = *state;
    fx_t *g = fx_new(); /* the same entries, history kept whole */
    uint8_t h1[ORBIT_LEDGER_HASH_LEN], h2[ORBIT_LEDGER_HASH_LEN];
    orbit_ledger_set_history_keep(f->l, 5);
    orbit_ledger_stats_t st;
    for (int i = 1; i <= 20; i++) {
        COMMITTED(run(f, LEASE("h", "r%d", 100), i));
        COMMITTED(run(g, LEASE("h", "r%d", 100), i));
        assert_int_equal(orbit_ledger_stats(f->l, &st), ORBIT_OK);
        assert_int_equal(st.compacted_index, i > 5 ? i - 5 : 0);
    }
    uint64_t compacted = 0;
    seen_t s = {0};
    assert_int_equal(orbit_ledger_history_from(f->l, 15, collect, &s, &compacted),
                     ORBIT_ECOMPACTED);
    assert_int_equal(compacted, 15);
    assert_int_equal(orbit_ledger_history_from(f->l, 16, collect, &s, NULL), ORBIT_OK);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.idx[0], 16);
    hash_of(f, h1);
    hash_of(g, h2);
    ASSERT_SAME_HASH(h1, h2);
    /* A backlog (keep lowered from "all" to 10 after 300 commitments) goes
     * in steps: 256 + 2 records per one-commitment entry, not all at once. */
    for (int i = 21; i <= 300; i++)
        COMMITTED(run(g, LEASE("h", "r%d", 100), i));
    orbit_ledger_set_history_keep(g->l, 10);
    COMMITTED(run(g, LEASE("h", "r%d", 100), 301));
    assert_int_equal(orbit_ledger_stats(g->l, &st), ORBIT_OK);
    assert_int_equal(st.compacted_index, 258);
    COMMITTED(run(g, LEASE("h", "r%d", 100), 302));
    assert_int_equal(orbit_ledger_stats(g->l, &st), ORBIT_OK);
    assert_int_equal(st.compacted_index, 292); /* caught up: 302 - 10 */
    memset(&s, 0, sizeof s);
    assert_int_equal(orbit_ledger_history_from(g->l, 293, collect, &s, NULL), ORBIT_OK);
    assert_int_equal(s.n, 10);
    fx_destroy(g);
}

static void test_get_json(void **state)
{
    fx_t *f = *state;
    char *j = NULL;
    uint64_t at = 0;
    COMMITTED(run(f, "{'commitment':{'placement':{'capsule':'c1','node':'n1','envelope':{'cpu_m':"
                     "5},'principal':'p'}}}"));
    COMMITTED(run(f, JOIN("s1", 1, "")));
    COMMITTED(run(f, "{'commitment':{'module_adjustment':{'mission':'m','module':'x','adjustment':"
                     "{'count':2}}}}"));
    COMMITTED(run(f, "{'commitment':{'gang_placement':{'gang':'g','members':[{'capsule':'a','node':"
                     "'n2','envelope':{}}]}}}"));
    COMMITTED(run(f, LEASE("h", "r", 100)));
    COMMITTED(run(f, BIND("c1", "i1")));
    COMMITTED(run(f, MOVE("k1", "s1")));
    static const struct {
        const char *key;
        const char *has;
    } cases[] = {
        {"placement/c1", "\"node\":\"n1\""},
        {"node/n1", "\"placements\":1"},
        {"node/n1", "\"capsules\":[{\"capsule\":\"c1\",\"envelope\":{\"cpu_m\":5,\"gpus\":0,"
                    "\"mem\":0},\"index\":1,\"principal\":\"p\"}]"},
        {"node/n2", "\"capsules\":[{\"capsule\":\"a\""},
        {"node/none", "\"capsules\":[]"},
        {"principal/p", "\"granted\":false"},
        {"lease/r", "\"holder\":\"h\""},
        {"identity/i1", "\"capsule\":\"c1\""},
        {"module/m/x", "\"count\":2"},
        {"shard/s1", "\"racks\":1"},
        {"rack/k1", "\"shard\":\"s1\""},
        {"gang/g", "\"members\":[\"a\"]"},
        {"topology", "\"epoch\":7"},
        {"topology", "\"racks\":[{\"rack\":\"k1\",\"shard\":\"s1\"}]"},
        {"topology", "\"shards\":[{\"children\":0,\"endpoint\":\"\",\"parent\":\"\",\"racks\":1,"
                     "\"shard\":\"s1\",\"tier\":1}]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = orbit_ledger_get_json(f->l, cases[i].key, &j, &at);
        if (rc)
            fail_msg("%s: %s", cases[i].key, orbit_strerror(rc));
        if (!strstr(j, cases[i].has))
            fail_msg("%s: %s lacks %s", cases[i].key, j, cases[i].has);
        free(j);
    }
    assert_int_equal(orbit_ledger_get_json(f->l, "placement/c1", &j, &at), ORBIT_OK);
    assert_int_equal(at, 1);
    free(j);
    assert_int_equal(orbit_ledger_get_json(f->l, "placement/none", &j, &at), ORBIT_ENOTFOUND);
    assert_null(j);
    assert_int_equal(orbit_ledger_get_json(f->l, "bogus/x", &j, &at), ORBIT_EINVAL);
    assert_int_equal(orbit_ledger_get_json(f->l, "placement/", &j, &at), ORBIT_EINVAL);
    assert_int_equal(orbit_ledger_get_json(f->l, "placement", &j, &at), ORBIT_EINVAL);
}

/* ---------------------------------------------------------------- node index, walks */

/* get_json "node/<n>" as parsed JSON (the test owns it). */
static json_t *node_json(fx_t *f, const char *node)
{
    char key[128], *text = NULL;
    json_error_t je;
    snprintf(key, sizeof key, "node/%s", node);
    int rc = orbit_ledger_get_json(f->l, key, &text, NULL);
    if (rc)
        fail_msg("%s: %s", key, orbit_strerror(rc));
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fail_msg("%s: %s: %s", key, text, je.text);
    free(text);
    return j;
}

/* The capsules listed under node, space-separated, in listing order. */
static void node_list(fx_t *f, const char *node, char *out, size_t cap)
{
    json_t *j = node_json(f, node), *c;
    json_t *caps = json_object_get(j, "capsules");
    size_t i, off = 0;
    assert_true(json_is_array(caps));
    out[0] = '\0';
    json_array_foreach(caps, i, c)
    {
        off += (size_t)snprintf(out + off, cap - off, "%s%s", i ? " " : "",
                                json_string_value(json_object_get(c, "capsule")));
    }
    assert_int_equal(json_integer_value(json_object_get(j, "placements")), json_array_size(caps));
    json_decref(j);
}

static void test_node_index(void **state)
{
    fx_t *f = *state;
    char list[512];
    node_list(f, "n1", list, sizeof list);
    assert_string_equal(list, "");
    COMMITTED(run(f, PLACE("z", "n1", 10)));
    uint64_t ib = COMMITTED(
        run(f, "{'commitment':{'placement':{'capsule':'m/w/0','node':'n1','envelope':{'cpu_m':5,"
               "'mem':7,'gpus':1},'principal':'team'}}}"));
    COMMITTED(run(f, PLACE("a", "n2", 1)));
    uint64_t ig = COMMITTED(
        run(f, "{'commitment':{'gang_placement':{'gang':'m/g','principal':'team','members':["
               "{'capsule':'m/g/0','node':'n1','envelope':{'cpu_m':1}},"
               "{'capsule':'m/g/1','node':'n2','envelope':{'cpu_m':2}},"
               "{'capsule':'m/g/2','node':'n1','envelope':{'cpu_m':3}}]}}}"));
    node_list(f, "n1", list, sizeof list);
    assert_string_equal(list, "m/g/0 m/g/2 m/w/0 z");
    node_list(f, "n2", list, sizeof list);
    assert_string_equal(list, "a m/g/1");
    /* the entries carry the placement */
    json_t *j = node_json(f, "n1");
    json_t *e = json_array_get(json_object_get(j, "capsules"), 2);
    assert_string_equal(json_string_value(json_object_get(e, "capsule")), "m/w/0");
    assert_string_equal(json_string_value(json_object_get(e, "principal")), "team");
    assert_null(json_object_get(e, "gang"));
    assert_int_equal(json_integer_value(json_object_get(e, "index")), ib);
    json_t *env = json_object_get(e, "envelope");
    assert_int_equal(json_integer_value(json_object_get(env, "cpu_m")), 5);
    assert_int_equal(json_integer_value(json_object_get(env, "mem")), 7);
    assert_int_equal(json_integer_value(json_object_get(env, "gpus")), 1);
    e = json_array_get(json_object_get(j, "capsules"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "gang")), "m/g");
    assert_int_equal(json_integer_value(json_object_get(e, "index")), ig);
    e = json_array_get(json_object_get(j, "capsules"), 3);
    assert_null(json_object_get(e, "principal"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "used"), "cpu_m")),
                     10 + 5 + 1 + 3);
    json_decref(j);
    /* a refused gang leaves the index as it was */
    CONFLICT(run(f, "{'commitment':{'gang_placement':{'gang':'h','members':["
                    "{'capsule':'h0','node':'n3','envelope':{}},"
                    "{'capsule':'z','node':'n3','envelope':{}}]}}}"),
             "capsule_placed", "capsule=z");
    node_list(f, "n3", list, sizeof list);
    assert_string_equal(list, "");
    /* revocations take their capsules off */
    COMMITTED(run(f, REVOKE("REF_PLACEMENT", "z")));
    node_list(f, "n1", list, sizeof list);
    assert_string_equal(list, "m/g/0 m/g/2 m/w/0");
    COMMITTED(run(f, REVOKE("REF_GANG", "m/g")));
    node_list(f, "n1", list, sizeof list);
    assert_string_equal(list, "m/w/0");
    node_list(f, "n2", list, sizeof list);
    assert_string_equal(list, "a");
    COMMITTED(run(f, REVOKE("REF_PLACEMENT", "m/w/0")));
    j = node_json(f, "n1");
    assert_int_equal(json_array_size(json_object_get(j, "capsules")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "placements")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "used"), "cpu_m")), 0);
    json_decref(j);
    /* a node name that is a prefix of another does not list its capsules */
    COMMITTED(run(f, PLACE("b", "n22", 1)));
    node_list(f, "n2", list, sizeof list);
    assert_string_equal(list, "a");
    /* the same index, rebuilt by a replica from the same log: same hash */
    fx_t *g = fx_new();
    uint8_t h1[32], h2[32];
    assert_int_equal(orbit_ledger_hash(f->l, h1), ORBIT_OK);
    uint8_t *snap = NULL;
    size_t len = 0;
    char err[128];
    assert_int_equal(orbit_ledger_snapshot_buf(f->l, false, &snap, &len, NULL), ORBIT_OK);
    assert_int_equal(orbit_ledger_restore_buf(g->l, snap, len, err, sizeof err), ORBIT_OK);
    orbit_ledger_snapshot_free(snap, len);
    assert_int_equal(orbit_ledger_hash(g->l, h2), ORBIT_OK);
    ASSERT_SAME_HASH(h1, h2);
    node_list(g, "n2", list, sizeof list);
    assert_string_equal(list, "a");
    /* the index is memory, built from the placements: both count the same */
    size_t na = 0, nb = 0;
    assert_int_equal(orbit_ledger_index_nodes(f->l, &na), ORBIT_OK);
    assert_int_equal(orbit_ledger_index_nodes(g->l, &nb), ORBIT_OK);
    assert_int_equal(na, 2); /* a on n2, b on n22 */
    assert_int_equal(nb, 2);
    fx_destroy(g);
}

typedef struct {
    char text[2048];
    size_t off;
    int stop_after; /* > 0: return 1 after that many */
    int n;
    int fail; /* < 0: return it */
} walk_t;

static int walk_add(walk_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int walk_add(walk_t *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (w->off)
        w->off += (size_t)snprintf(w->text + w->off, sizeof w->text - w->off, ";");
    w->off += (size_t)vsnprintf(w->text + w->off, sizeof w->text - w->off, fmt, ap);
    va_end(ap);
    w->n++;
    if (w->fail)
        return w->fail;
    return w->stop_after && w->n >= w->stop_after ? 1 : 0;
}

static int walk_placement(void *ctx, const orbit_ledger_placement_t *p)
{
    return walk_add(ctx, "%s@%s,%s,%s,%" PRId64 ",%" PRIu64, p->capsule, p->node, p->principal,
                    p->gang, p->envelope.cpu_m, p->index);
}

static int walk_module(void *ctx, const char *mission, const char *module,
                       const Orbit__Ledger__ModuleSpec *spec, uint64_t epoch, uint64_t index)
{
    return walk_add(ctx, "%s|%s,count=%u,epoch=%" PRIu64 ",index=%" PRIu64, mission, module,
                    spec->count, epoch, index);
}

static int walk_quota(void *ctx, const char *principal, const orbit_ledger_quota_t *q)
{
    return walk_add(ctx, "%s,%d,%" PRId64 ",%" PRId64 ",%" PRId64, principal, q->granted,
                    q->grant.cpu_m, q->used.cpu_m, q->until_ms);
}

static int walk_identity(void *ctx, const char *identity, const char *capsule)
{
    return walk_add(ctx, "%s=%s", identity, capsule);
}

static void test_walks(void **state)
{
    fx_t *f = *state;
    walk_t w = {0};
    assert_int_equal(orbit_ledger_each_placement(f->l, walk_placement, &w), ORBIT_OK);
    assert_int_equal(orbit_ledger_each_module(f->l, walk_module, &w), ORBIT_OK);
    assert_int_equal(orbit_ledger_each_quota(f->l, walk_quota, &w), ORBIT_OK);
    assert_int_equal(orbit_ledger_each_identity(f->l, walk_identity, &w), ORBIT_OK);
    assert_int_equal(w.n, 0);
    COMMITTED(run(f, PLACE("c2", "n1", 20))); /* 1 */
    COMMITTED(run(f, "{'commitment':{'placement':{'capsule':'c1','node':'n2','envelope':{'cpu_m':"
                     "10},'principal':'p'}}}")); /* 2 */
    COMMITTED(run(f, "{'commitment':{'gang_placement':{'gang':'g','principal':'q','members':["
                     "{'capsule':'g0','node':'n1','envelope':{'cpu_m':1}}]}}}")); /* 3 */
    COMMITTED(run(f, GRANT("p", 100)));                                           /* 4 */
    COMMITTED(run(f, "{'commitment':{'module_adjustment':{'mission':'m','module':'x','epoch':3,"
                     "'adjustment':{'count':2}}}}")); /* 5 */
    COMMITTED(run(f, "{'commitment':{'module_adjustment':{'mission':'a','module':'b',"
                     "'adjustment':{'count':1}}}}")); /* 6 */
    COMMITTED(run(f, "{'commitment':{'module_adjustment':{'mission':'m','module':'x',"
                     "'adjustment':{'count':4}}}}")); /* 7 */
    COMMITTED(run(f, BIND("c2", "id2")));             /* 8 */
    COMMITTED(run(f, BIND("c1", "id1")));             /* 9 */
    COMMITTED(run(f, LEASE("h", "r", 100)));          /* 10 */
    COMMITTED(run(f, JOIN("s", 1, "")));              /* 11 */
    assert_int_equal(orbit_ledger_each_placement(f->l, walk_placement, &w), ORBIT_OK);
    assert_string_equal(w.text, "c1@n2,p,,10,2;c2@n1,,,20,1;g0@n1,q,g,1,3");
    memset(&w, 0, sizeof w);
    assert_int_equal(orbit_ledger_each_module(f->l, walk_module, &w), ORBIT_OK);
    assert_string_equal(w.text, "a|b,count=1,epoch=0,index=6;m|x,count=4,epoch=3,index=7");
    memset(&w, 0, sizeof w);
    assert_int_equal(orbit_ledger_each_quota(f->l, walk_quota, &w), ORBIT_OK);
    assert_string_equal(w.text, "p,1,100,10,0;q,0,0,1,0");
    memset(&w, 0, sizeof w);
    assert_int_equal(orbit_ledger_each_identity(f->l, walk_identity, &w), ORBIT_OK);
    assert_string_equal(w.text, "id1=c1;id2=c2");
    /* > 0 stops with success, < 0 is returned */
    memset(&w, 0, sizeof w);
    w.stop_after = 2;
    assert_int_equal(orbit_ledger_each_placement(f->l, walk_placement, &w), ORBIT_OK);
    assert_int_equal(w.n, 2);
    memset(&w, 0, sizeof w);
    w.fail = ORBIT_EIO;
    assert_int_equal(orbit_ledger_each_module(f->l, walk_module, &w), ORBIT_EIO);
    assert_int_equal(w.n, 1);
    assert_int_equal(orbit_ledger_each_quota(NULL, walk_quota, &w), ORBIT_EINVAL);
    assert_int_equal(orbit_ledger_each_identity(f->l, NULL, &w), ORBIT_EINVAL);
    /* removals leave the walks */
    COMMITTED(run(f, REVOKE("REF_MODULE", "a/b")));
    COMMITTED(run(f, REVOKE("REF_GANG", "g")));
    COMMITTED(run(f, REVOKE("REF_IDENTITY", "id2")));
    memset(&w, 0, sizeof w);
    assert_int_equal(orbit_ledger_each_module(f->l, walk_module, &w), ORBIT_OK);
    assert_int_equal(orbit_ledger_each_quota(f->l, walk_quota, &w), ORBIT_OK);
    assert_int_equal(orbit_ledger_each_identity(f->l, walk_identity, &w), ORBIT_OK);
    assert_int_equal(orbit_ledger_each_placement(f->l, walk_placement, &w), ORBIT_OK);
    assert_string_equal(w.text, "m|x,count=4,epoch=3,index=7;p,1,100,10,0;id1=c1;"
                                "c1@n2,p,,10,2;c2@n1,,,20,1");
}

/* ---------------------------------------------------------------- snapshots */

static void test_snapshot_restore(void **state)
{
    fx_t *f = *state;
    rlog_t lg;
    uint8_t ha[32], hb[32];
    char err[256];
    rlog_make(&lg, 42, 400);
    for (size_t i = 0; i < lg.n; i++)
        apply_bytes(f, lg.e[i], lg.len[i]);
    assert_int_equal(orbit_ledger_set_cluster_id(f->l, "orbit-test", err, sizeof err), ORBIT_OK);
    hash_of(f, ha);
    /* to a file and back into a fresh directory */
    char path[128];
    snprintf(path, sizeof path, "%s.snap", f->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    uint64_t applied = 0;
    assert_int_equal(orbit_ledger_snapshot(f->l, fd, &applied), ORBIT_OK);
    assert_int_equal(applied, orbit_ledger_applied_index(f->l));
    fx_t *g = fx_new();
    COMMITTED(run(g, PLACE("stale", "n1", 1))); /* replaced entirely */
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(orbit_ledger_restore(g->l, fd, err, sizeof err), ORBIT_OK);
    close(fd);
    unlink(path);
    hash_of(g, hb);
    ASSERT_SAME_HASH(ha, hb);
    assert_int_equal(orbit_ledger_applied_index(g->l), applied);
    assert_int_equal(orbit_ledger_index(g->l), orbit_ledger_index(f->l));
    assert_int_equal(orbit_ledger_time(g->l), orbit_ledger_time(f->l));
    assert_string_equal(orbit_ledger_cluster_id(g->l), "orbit-test");
    orbit_ledger_placement_t p;
    assert_int_equal(orbit_ledger_get_placement(g->l, "stale", &p), ORBIT_ENOTFOUND);
    /* both go on applying the same entries to the same hash */
    g->raft = f->raft;
    g->time_ms = f->time_ms;
    g->req = f->req;
    COMMITTED(run(f, PLACE("after", "n1", 1)));
    COMMITTED(run(g, PLACE("after", "n1", 1)));
    hash_of(f, ha);
    hash_of(g, hb);
    ASSERT_SAME_HASH(ha, hb);
    /* survives a reopen */
    orbit_ledger_close(&g->l);
    fx_open(g);
    hash_of(g, hb);
    ASSERT_SAME_HASH(ha, hb);
    /* through a buffer */
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(orbit_ledger_snapshot_buf(f->l, true, &buf, &len, &applied), ORBIT_OK);
    assert_true(len > 0);
    fx_t *h = fx_new();
    assert_int_equal(orbit_ledger_restore_buf(h->l, buf, len, err, sizeof err), ORBIT_OK);
    hash_of(h, hb);
    ASSERT_SAME_HASH(ha, hb);
    /* garbage and truncation are refused; the state stays */
    static const uint8_t junk[8192] = {1, 2, 3};
    assert_int_equal(orbit_ledger_restore_buf(h->l, junk, sizeof junk, err, sizeof err),
                     ORBIT_EINVAL);
    assert_non_null(strstr(err, "not a ledger snapshot"));
    assert_int_equal(orbit_ledger_restore_buf(h->l, buf, 100, err, sizeof err), ORBIT_EINVAL);
    assert_int_equal(orbit_ledger_restore_buf(h->l, buf, 0, err, sizeof err), ORBIT_EINVAL);
    hash_of(h, hb);
    ASSERT_SAME_HASH(ha, hb);
    /* a snapshot of another cluster is refused */
    fx_t *o = fx_new();
    assert_int_equal(orbit_ledger_set_cluster_id(o->l, "other", err, sizeof err), ORBIT_OK);
    assert_int_equal(orbit_ledger_restore_buf(o->l, buf, len, err, sizeof err), ORBIT_EINVAL);
    assert_non_null(strstr(err, "cluster"));
    assert_int_equal(orbit_ledger_applied_index(o->l), 0);
    /* a snapshot without a cluster id keeps ours */
    fx_t *plain = fx_new();
    COMMITTED(run(plain, PLACE("x", "n", 1)));
    orbit_ledger_snapshot_free(buf, len);
    assert_int_equal(orbit_ledger_snapshot_buf(plain->l, false, &buf, &len, NULL), ORBIT_OK);
    assert_int_equal(orbit_ledger_restore_buf(o->l, buf, len, err, sizeof err), ORBIT_OK);
    assert_string_equal(orbit_ledger_cluster_id(o->l), "other");
    assert_int_equal(orbit_ledger_get_placement(o->l, "x", &p), ORBIT_OK);
    orbit_ledger_snapshot_free(buf, len);
    fx_destroy(g);
    fx_destroy(h);
    fx_destroy(o);
    fx_destroy(plain);
    rlog_free(&lg);
}

static void test_cluster_id(void **state)
{
    fx_t *f = *state;
    char err[256] = "";
    assert_int_equal(orbit_ledger_set_cluster_id(f->l, "", err, sizeof err), ORBIT_EINVAL);
    assert_int_equal(orbit_ledger_set_cluster_id(f->l, "bad id", err, sizeof err), ORBIT_EINVAL);
    assert_int_equal(orbit_ledger_set_cluster_id(f->l, "prod-eu", err, sizeof err), ORBIT_OK);
    assert_int_equal(orbit_ledger_set_cluster_id(f->l, "prod-eu", err, sizeof err), ORBIT_OK);
    orbit_ledger_close(&f->l);
    fx_open(f);
    assert_string_equal(orbit_ledger_cluster_id(f->l), "prod-eu");
    assert_int_equal(orbit_ledger_set_cluster_id(f->l, "prod-us", err, sizeof err), ORBIT_EINVAL);
    assert_non_null(strstr(err, "belongs to cluster prod-eu, not prod-us"));
    assert_null(strchr(err, '\n'));
    assert_string_equal(orbit_ledger_cluster_id(f->l), "prod-eu");
    /* the cluster id is not replicated state: it does not enter the hash */
    uint8_t h1[32], h2[32];
    fx_t *g = fx_new();
    hash_of(f, h1);
    hash_of(g, h2);
    ASSERT_SAME_HASH(h1, h2);
    fx_destroy(g);
}

typedef struct {
    uint64_t *next; /* the index expected next */
} hist_t;

static int hist_in_order(void *ctx, const orbit_ledger_commit_t *c)
{
    hist_t *h = ctx;
    if (c->index != *h->next || c->nkeys < 1)
        return ORBIT_ECORRUPT;
    (*h->next)++;
    return 0;
}

/* Close f's ledger and start a bare LMDB environment in its place, with a
 * write transaction on its unnamed database. */
static void raw_env(fx_t *f, MDB_env **env, MDB_txn **txn, MDB_dbi *dbi)
{
    orbit_ledger_close(&f->l);
    rm_rf(f->dir);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(mdb_env_create(env), 0);
    assert_int_equal(mdb_env_open(*env, f->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(*env, NULL, 0, txn), 0);
    assert_int_equal(mdb_dbi_open(*txn, NULL, 0, dbi), 0);
}

/* Opening f's directory as a ledger is refused (reason in err). */
static void refused(fx_t *f, char *err, size_t errlen)
{
    orbit_ledger_t *l = NULL;
    assert_int_equal(orbit_ledger_open(f->dir, &l, err, errlen), ORBIT_ECORRUPT);
    assert_null(l);
}

/* A data directory that is not a ledger is refused. */
static void test_foreign_environment(void **state)
{
    fx_t *f = *state;
    char err[256];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    raw_env(f, &env, &txn, &dbi);
    MDB_val k = {1, "z"}, v = {1, "z"};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    refused(f, err, sizeof err);
    assert_non_null(strstr(err, "not a ledger"));
    rm_rf(f->dir);
    fx_open(f); /* recreated */
}

/* orbit_ledger_apply_many: entries applied in groups, each group one
 * transaction, end in exactly the state of applying them one by one —
 * later entries of a group see the earlier ones' placements, dedup pairs and
 * node index, an undecodable entry only counts, and applied entries are
 * skipped. */
static void test_apply_many(void **state)
{
    fx_t *f = *state;
    fx_t *g = fx_new();
    enum { ENTRIES = 24 };
    uint8_t *bytes[ENTRIES];
    size_t lens[ENTRIES];
    for (int e = 0; e < ENTRIES; e++) {
        Orbit__Ledger__Proposal *ps[6];
        size_t n = 0;
        if (e == 9) { /* not an entry */
            bytes[e] = malloc(3);
            assert_non_null(bytes[e]);
            memcpy(bytes[e], "\xff\xff\xff", 3);
            lens[e] = 3;
            continue;
        }
        for (int i = 0; i < 4; i++) /* some capsules placed twice: conflicts */
            ps[n++] =
                mkprop(f,
                       "{'client_id':'many','request_id':%d,'commitment':{'placement':{"
                       "'capsule':'c%d','node':'n%d','envelope':{'cpu_m':1}}},"
                       "'precondition':{'node_fits':[{'node':'n%d','capacity':{'cpu_m':60}}]}}",
                       e * 10 + i + 1, (e * 4 + i) % 70, i % 3, i % 3);
        if (e % 5 == 4) /* a retry of the previous entry's first: a dedup hit */
            ps[n++] = mkprop(f,
                             "{'client_id':'many','request_id':%d,'commitment':{'placement':{"
                             "'capsule':'c%d','node':'n%d','envelope':{'cpu_m':1}}}}",
                             (e - 1) * 10 + 1, ((e - 1) * 4) % 70, 0);
        if (e % 3 == 2) /* revoke a placement of the entry before */
            ps[n++] = mkprop(f,
                             "{'client_id':'many','request_id':%d,'commitment':{'revocation':{"
                             "'what':{'kind':'REF_PLACEMENT','key':'c%d'}}}}",
                             e * 10 + 9, ((e - 1) * 4 + 1) % 70);
        bytes[e] = pack_entry(1000 + e, ps, n, &lens[e]);
        for (size_t i = 0; i < n; i++)
            orbit__ledger__proposal__free_unpacked(ps[i], NULL);
    }
    /* f: one by one */
    for (int e = 0; e < ENTRIES; e++)
        apply_bytes(f, bytes[e], lens[e]);
    /* g: in groups of 1, 2, 3, ... */
    orbit_ledger_entry_t es[ENTRIES];
    for (int e = 0; e < ENTRIES; e++)
        es[e] = (orbit_ledger_entry_t){bytes[e], lens[e], (uint64_t)e + 1};
    int at = 0;
    for (int size = 1; at < ENTRIES; size++) {
        int k = at + size <= ENTRIES ? size : ENTRIES - at;
        assert_int_equal(orbit_ledger_apply_many(g->l, es + at, (size_t)k), ORBIT_OK);
        at += k;
        assert_int_equal(orbit_ledger_applied_index(g->l), (uint64_t)at);
    }
    uint8_t a[ORBIT_LEDGER_HASH_LEN], b[ORBIT_LEDGER_HASH_LEN];
    hash_of(f, a);
    hash_of(g, b);
    ASSERT_SAME_HASH(a, b);
    assert_int_equal(orbit_ledger_index(g->l), orbit_ledger_index(f->l));
    assert_true(orbit_ledger_index(g->l) > 40);
    for (int i = 0; i < 3; i++) {
        char key[16], *ja = NULL, *jb = NULL;
        snprintf(key, sizeof key, "node/n%d", i);
        assert_int_equal(orbit_ledger_get_json(f->l, key, &ja, NULL), ORBIT_OK);
        assert_int_equal(orbit_ledger_get_json(g->l, key, &jb, NULL), ORBIT_OK);
        assert_string_equal(ja, jb);
        free(ja);
        free(jb);
    }
    orbit_ledger_stats_t sf, sg;
    assert_int_equal(orbit_ledger_stats(f->l, &sf), ORBIT_OK);
    assert_int_equal(orbit_ledger_stats(g->l, &sg), ORBIT_OK);
    assert_int_equal(sg.undecodable, 1);
    assert_int_equal(sg.undecodable, sf.undecodable);
    assert_int_equal(sg.dedup_entries, sf.dedup_entries);
    /* applied ones again: nothing changes; indexes must increase */
    assert_int_equal(orbit_ledger_apply_many(g->l, es + 3, 5), ORBIT_OK);
    hash_of(g, b);
    ASSERT_SAME_HASH(a, b);
    orbit_ledger_entry_t back[2] = {es[1], es[0]};
    assert_int_equal(orbit_ledger_apply_many(g->l, back, 2), ORBIT_EINVAL);
    assert_int_equal(orbit_ledger_apply_many(g->l, NULL, 0), ORBIT_OK);
    for (int e = 0; e < ENTRIES; e++)
        free(bytes[e]);
    fx_destroy(g);
}

/* The Entry field numbers the leader frames entries with are the schema's. */
static void test_entry_field_numbers(void **state)
{
    (void)state;
    assert_int_equal(orbit_pb_field_number(&orbit__ledger__entry__descriptor, "time_ms"),
                     ORBIT_LEDGER_ENTRY_TIME);
    assert_int_equal(orbit_pb_field_number(&orbit__ledger__entry__descriptor, "proposals"),
                     ORBIT_LEDGER_ENTRY_PROPOSALS);
}

/* An environment of an older format (2: every record in the unnamed
 * database) is refused with one line that names both versions and the way
 * out. */
static void test_old_format_refused(void **state)
{
    fx_t *f = *state;
    char err[512];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    raw_env(f, &env, &txn, &dbi);
    uint8_t two[8] = {0, 0, 0, 0, 0, 0, 0, 2};
    MDB_val k = {8, "mversion"}, v = {8, two};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    MDB_val k2 = {3, "pc1"}, v2 = {1, "x"};
    assert_int_equal(mdb_put(txn, dbi, &k2, &v2, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    refused(f, err, sizeof err);
    assert_non_null(strstr(err, "format version 2, this build reads 7"));
    assert_non_null(strstr(err, "tools/orbit-up.sh reset"));
    assert_null(strchr(err, '\n'));
    rm_rf(f->dir);
    fx_open(f); /* recreated */
}

/* Many entries of many proposals: two ledgers fed the same entries agree on
 * the hash (which covers every table), one more entry on one of them makes
 * them differ, history stays in index order and complete, and a restore of
 * a snapshot reopens every table. */
static void test_tables_many_entries(void **state)
{
    fx_t *f = *state;
    fx_t *g = fx_new();
    uint8_t a[32], b[32];
    const int entries = 40, per = 50;
    for (int e = 0; e < entries; e++) {
        Orbit__Ledger__Proposal *ps[50], *qs[50];
        for (int i = 0; i < per; i++) {
            int n = e * per + i;
            const char *fmt =
                "{'client_id':'many','request_id':%d,'commitment':{'placement':{'capsule':"
                "'c%05d','node':'n%03d','principal':'p%d','envelope':{'cpu_m':1}}},"
                "'precondition':{'node_fits':[{'node':'n%03d','capacity':{'cpu_m':1000000}}]}}";
            ps[i] = mkprop(f, fmt, n + 1, n, n % 97, n % 5, n % 97);
            qs[i] = mkprop(g, fmt, n + 1, n, n % 97, n % 5, n % 97);
        }
        apply_props(f, ps, (size_t)per);
        apply_props(g, qs, (size_t)per);
        for (int i = 0; i < per; i++)
            COMMITTED(f->out[i]);
        f->time_ms += 7;
        g->time_ms += 7;
    }
    COMMITTED(run(f, LEASE("h", "r", 1000)));
    COMMITTED(run(g, LEASE("h", "r", 1000)));
    COMMITTED(run(f, BIND("c00001", "i1")));
    COMMITTED(run(g, BIND("c00001", "i1")));
    COMMITTED(run(f, JOIN("s", 1, "")));
    COMMITTED(run(g, JOIN("s", 1, "")));
    hash_of(f, a);
    hash_of(g, b);
    ASSERT_SAME_HASH(a, b);
    COMMITTED(run(g, MOVE("r1", "s")));
    hash_of(g, b);
    assert_memory_not_equal(a, b, ORBIT_LEDGER_HASH_LEN);
    /* history: every index once, in order, from anywhere */
    uint64_t last = orbit_ledger_index(f->l), want = 1;
    assert_int_equal(last, (uint64_t)entries * per + 3);
    hist_t h = {0};
    h.next = &want;
    assert_int_equal(orbit_ledger_history_from(f->l, 1, hist_in_order, &h, NULL), ORBIT_OK);
    assert_int_equal(want, last + 1);
    want = 1000;
    assert_int_equal(orbit_ledger_history_from(f->l, 1000, hist_in_order, &h, NULL), ORBIT_OK);
    assert_int_equal(want, last + 1);
    /* snapshot into g: same hash, and both go on alike */
    uint8_t *snap = NULL;
    size_t len = 0;
    char err[256];
    assert_int_equal(orbit_ledger_snapshot_buf(f->l, true, &snap, &len, NULL), ORBIT_OK);
    assert_int_equal(orbit_ledger_restore_buf(g->l, snap, len, err, sizeof err), ORBIT_OK);
    orbit_ledger_snapshot_free(snap, len);
    g->raft = f->raft;
    g->req = f->req; /* the same ids from here on */
    g->time_ms = f->time_ms;
    hash_of(g, b);
    ASSERT_SAME_HASH(a, b);
    COMMITTED(run(f, PLACE("z1", "n1", 1)));
    COMMITTED(run(g, PLACE("z1", "n1", 1)));
    hash_of(f, a);
    hash_of(g, b);
    ASSERT_SAME_HASH(a, b);
    want = 1;
    assert_int_equal(orbit_ledger_history_from(g->l, 1, hist_in_order, &h, NULL), ORBIT_OK);
    assert_int_equal(want, orbit_ledger_index(g->l) + 1);
    fx_destroy(g);
}

/* ---------------------------------------------------------------- fuzz */

static void test_fuzz(void **state)
{
    fx_t *f = *state;
    rng_t r = {0xfeedfacecafebeefULL};
    rlog_t lg;
    size_t invalid = 0, undecodable = 0, committed = 0;
    uint8_t before[32], after[32];
    rlog_make(&lg, 7, 300); /* a base of state to fuzz against */
    for (size_t i = 0; i < lg.n; i++)
        apply_bytes(f, lg.e[i], lg.len[i]);
    f->time_ms = orbit_ledger_time(f->l);
    for (int it = 0; it < 1500; it++) {
        Orbit__Ledger__Proposal *p = random_prop(f, &r, f->time_ms);
        size_t len;
        f->time_ms += rndn(&r, 100);
        uint8_t *b = pack_entry(f->time_ms, &p, 1, &len);
        orbit__ledger__proposal__free_unpacked(p, NULL);
        int mutations = rndn(&r, 4);
        for (int m = 0; m < mutations && len; m++) {
            switch (rndn(&r, 3)) {
            case 0: b[rndn(&r, (int)len)] ^= (uint8_t)(1u << rndn(&r, 8)); break;
            case 1: b[rndn(&r, (int)len)] = (uint8_t)rnd(&r); break;
            default: len = (size_t)rndn(&r, (int)len + 1);
            }
        }
        orbit_ledger_stats_t st0, st1;
        assert_int_equal(orbit_ledger_stats(f->l, &st0), ORBIT_OK);
        hash_of(f, before);
        apply_bytes(f, b, len);
        assert_int_equal(orbit_ledger_stats(f->l, &st1), ORBIT_OK);
        free(b);
        if (f->nout == 0) {
            undecodable++;
            continue;
        }
        for (size_t k = 0; k < f->nout; k++) {
            if (f->out[k]->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED)
                committed++;
        }
        /* an entry's time may prune old dedup pairs: that is the entry's
         * doing, not the proposal's */
        if (f->nout == 1 && f->out[0]->kind == ORBIT__LEDGER__OUTCOME_KIND__INVALID &&
            st0.dedup_entries == st1.dedup_entries) {
            invalid++;
            hash_of(f, after);
            ASSERT_SAME_HASH(before, after);
        }
    }
    /* random bytes too */
    for (int it = 0; it < 300; it++) {
        uint8_t b[256];
        size_t len = (size_t)rndn(&r, (int)sizeof b);
        for (size_t i = 0; i < len; i++)
            b[i] = (uint8_t)rnd(&r);
        apply_bytes(f, b, len);
    }
    assert_true(invalid > 50);
    assert_true(undecodable > 50);
    assert_true(committed > 50);
    rlog_free(&lg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_nodes_index_unit),
        cmocka_unit_test_setup_teardown(test_open_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_without_readahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_kept_by_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_fits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_since, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_available, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precondition_order, setup, teardown),
        cmocka_unit_test(test_kinds_by_precondition),
        cmocka_unit_test_setup_teardown(test_gang_atomicity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_uniqueness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_accounting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_module_adjustment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_topology, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_retry, setup, teardown),
        cmocka_unit_test(test_hmap_find_name),
        cmocka_unit_test(test_hmap_huge),
        cmocka_unit_test(test_hmap_unit),
        cmocka_unit_test_setup_teardown(test_dedup_after_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_bounds, setup, teardown),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test_setup_teardown(test_reopen_and_redelivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_contract, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_and_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_format_refused, setup, teardown),
        cmocka_unit_test(test_entry_field_numbers),
        cmocka_unit_test_setup_teardown(test_apply_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tables_many_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
