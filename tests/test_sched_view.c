/* test_sched_view: the scheduling view's pure core — every commitment kind,
 * module merges, gangs, revocations releasing node usage and quota, quota
 * accounting, own notes (counted at once, never twice, out of order), gaps
 * and stale commits, telemetry rows (nodes from either side, status_since,
 * rows_done, capsule health from the placed node only), and a snapshot of
 * a real ledger giving the state that applying its commits one by one
 * gives. Proposals are written as JSON (single quotes for double). */
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
#include <jansson.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger.h"
#include "orbit_err.h"
#include "orbit_json.h"
#include "orbit_sched_view.h"
#include "test_sched_util.h" /* mkprop, T0, OK */

/* ---------------------------------------------------------------- building */

/* Apply commitment JSON at index; returns the view's code. */
static int commit_at(orbit_sched_view_t *v, uint64_t index, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int commit_at(orbit_sched_view_t *v, uint64_t index, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Orbit__Ledger__Proposal *p = mkprop_v(fmt, ap);
    va_end(ap);
    int rc = orbit_sched_view_apply_commit(v, index, T0 + (int64_t)index, p);
    orbit__ledger__proposal__free_unpacked(p, NULL);
    return rc;
}

static int note(orbit_sched_view_t *v, uint64_t index, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int note(orbit_sched_view_t *v, uint64_t index, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Orbit__Ledger__Proposal *p = mkprop_v(fmt, ap);
    va_end(ap);
    int rc = orbit_sched_view_note_own(v, index, p);
    orbit__ledger__proposal__free_unpacked(p, NULL);
    return rc;
}

#define PLACE(c, n, cpu)                                                                           \
    "{'placement':{'capsule':'" c "','node':'" n "','envelope':{'cpu_m':" #cpu "}}}"
#define PLACE_P(c, n, cpu, p)                                                                      \
    "{'placement':{'capsule':'" c "','node':'" n "','envelope':{'cpu_m':" #cpu                     \
    ",'mem':100,'gpus':1},'principal':'" p "'}}"
#define GRANT(p, cpu)  "{'quota_grant':{'principal':'" p "','resources':{'cpu_m':" #cpu "}}}"
#define REVOKE(k, key) "{'revocation':{'what':{'kind':'" k "','key':'" key "'}}}"
#define EXPIRE(k, key) "{'expiry':{'what':{'kind':'" k "','key':'" key "'}}}"
#define BIND(c, i)     "{'identity_bind':{'capsule':'" c "','identity':'" i "'}}"
#define ADJUST(m, x, spec)                                                                         \
    "{'module_adjustment':{'mission':'" m "','module':'" x "','adjustment':" spec "}}"
#define GANG3(g, p)                                                                                \
    "{'gang_placement':{'gang':'" g "','principal':'" p "','members':["                            \
    "{'capsule':'" g "/0','node':'n1','envelope':{'cpu_m':100}},"                                  \
    "{'capsule':'" g "/1','node':'n1','envelope':{'cpu_m':200}},"                                  \
    "{'capsule':'" g "/2','node':'n2','envelope':{'cpu_m':300,'gpus':1}}]}}"
#define LEASE(h, r) "{'lease':{'holder':'" h "','resource':'" r "','ttl_ms':1000}}"
#define JOIN(s)     "{'topology':{'join':{'shard':'" s "','tier':1}}}"

static orbit_sched_node_t node_of(orbit_sched_view_t *v, const char *name)
{
    orbit_sched_node_t n;
    int rc = orbit_sched_view_node(v, name, &n);
    if (rc)
        fail_msg("node %s: %s", name, orbit_strerror(rc));
    return n;
}

static orbit_sched_quota_t quota_of(orbit_sched_view_t *v, const char *principal)
{
    orbit_sched_quota_t q;
    int rc = orbit_sched_view_quota(v, principal, &q);
    if (rc)
        fail_msg("quota %s: %s", principal, orbit_strerror(rc));
    return q;
}

static int setup(void **state)
{
    *state = orbit_sched_view_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    orbit_sched_view_t *v = *state;
    orbit_sched_view_destroy(&v);
    assert_null(v);
    return 0;
}

/* ---------------------------------------------------------------- kinds */

static void test_every_kind(void **state)
{
    orbit_sched_view_t *v = *state;
    orbit_sched_placement_t p;
    orbit_sched_module_t m;
    OK(commit_at(v, 1, GRANT("team", 5000)));
    OK(commit_at(v, 2, PLACE_P("m/w/0", "n1", 1000, "team")));
    OK(commit_at(v, 3, GANG3("m/g", "team")));
    OK(commit_at(v, 4, BIND("m/w/0", "id-w0")));
    OK(commit_at(v, 5, ADJUST("m", "w", "{'count':3,'command':'sleep 1','gang':false}")));
    OK(commit_at(v, 6, LEASE("sched", "leader")));
    OK(commit_at(v, 7, JOIN("s1")));
    OK(commit_at(v, 8, EXPIRE("REF_LEASE", "leader")));
    OK(commit_at(v, 9, REVOKE("REF_LEASE", "leader")));
    assert_int_equal(orbit_sched_view_index(v), 9);
    assert_int_equal(orbit_sched_view_time(v), T0 + 9);
    orbit_sched_view_stats_t st;
    orbit_sched_view_stats(v, &st);
    assert_int_equal(st.commits_applied, 9);
    /* placement */
    OK(orbit_sched_view_placement(v, "m/w/0", &p));
    assert_string_equal(p.node, "n1");
    assert_string_equal(p.principal, "team");
    assert_string_equal(p.gang, "");
    assert_string_equal(p.identity, "id-w0");
    assert_int_equal(p.index, 2);
    assert_int_equal(p.envelope.cpu_m, 1000);
    assert_int_equal(p.envelope.mem, 100);
    assert_int_equal(p.envelope.gpus, 1);
    assert_false(p.own);
    /* node usage: single + two gang members on n1, one on n2 */
    orbit_sched_node_t n = node_of(v, "n1");
    assert_int_equal(n.committed.cpu_m, 1300);
    assert_int_equal(n.committed.gpus, 1);
    assert_int_equal(n.placements, 3);
    n = node_of(v, "n2");
    assert_int_equal(n.committed.cpu_m, 300);
    assert_int_equal(n.placements, 1);
    assert_int_equal(orbit_sched_view_node_count(v), 2);
    /* quota: grant and the usage of charged placements */
    orbit_sched_quota_t q = quota_of(v, "team");
    assert_true(q.granted);
    assert_int_equal(q.grant.cpu_m, 5000);
    assert_int_equal(q.used.cpu_m, 1600);
    assert_int_equal(q.used.mem, 100);
    assert_int_equal(q.used.gpus, 2);
    /* modules: m/w from its spec and placement, m/g from placements only */
    OK(orbit_sched_view_module(v, "m", "w", &m));
    assert_non_null(m.spec);
    assert_int_equal(m.spec->count, 3);
    assert_string_equal(m.spec->command, "sleep 1");
    assert_int_equal(m.index, 5);
    assert_int_equal(m.placed, 1);
    OK(orbit_sched_view_module(v, "m", "g", &m));
    assert_null(m.spec);
    assert_int_equal(m.index, 0);
    assert_int_equal(m.placed, 3);
    OK(orbit_sched_view_placement(v, "m/g/2", &p));
    assert_string_equal(p.gang, "m/g");
    assert_string_equal(p.identity, "");
    assert_int_equal(orbit_sched_view_module(v, "m", "x", &m), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_sched_view_placement(v, "m/w/1", &p), ORBIT_ENOTFOUND);
}

typedef struct {
    char text[1024];
    size_t off;
    int n;
    int stop_at;
} acc_t;

static int acc_place(void *arg, const orbit_sched_placement_t *p)
{
    acc_t *a = arg;
    a->off += (size_t)snprintf(a->text + a->off, sizeof a->text - a->off, "%s%s", a->n ? " " : "",
                               p->capsule);
    a->n++;
    return a->stop_at && a->n >= a->stop_at ? 7 : 0;
}

static int acc_module(void *arg, const orbit_sched_module_t *m)
{
    acc_t *a = arg;
    a->off += (size_t)snprintf(a->text + a->off, sizeof a->text - a->off, "%s%s/%s",
                               a->n ? " " : "", m->mission, m->module);
    a->n++;
    return 0;
}

static void test_module_merge(void **state)
{
    orbit_sched_view_t *v = *state;
    orbit_sched_module_t m;
    OK(commit_at(v, 1,
                 ADJUST("train", "w",
                        "{'count':4,'command':'run','resources':{'cpu_m':1000,'gpus':1},"
                        "'principal':'team','node_selector':'gpu=a100'}")));
    OK(commit_at(v, 2, ADJUST("train", "w", "{'count':8,'resources':{'mem':5}}")));
    OK(orbit_sched_view_module(v, "train", "w", &m));
    assert_int_equal(m.spec->count, 8);
    assert_string_equal(m.spec->command, "run");
    assert_string_equal(m.spec->principal, "team");
    assert_string_equal(m.spec->node_selector, "gpu=a100");
    assert_false(m.spec->resources->has_cpu_m); /* resources replaced whole */
    assert_int_equal(m.spec->resources->mem, 5);
    assert_int_equal(m.index, 2);
    /* a revoked module stays while it has placements, without a spec */
    OK(commit_at(v, 3, PLACE("train/w/0", "n1", 10)));
    OK(commit_at(v, 4, REVOKE("REF_MODULE", "train/w")));
    OK(orbit_sched_view_module(v, "train", "w", &m));
    assert_null(m.spec);
    assert_int_equal(m.index, 4);
    assert_int_equal(m.placed, 1);
    OK(commit_at(v, 5, ADJUST("other", "x", "{'count':1}")));
    acc_t a = {0};
    OK(orbit_sched_view_each_module(v, acc_module, &a));
    assert_int_equal(a.n, 2);
    OK(commit_at(v, 6, REVOKE("REF_PLACEMENT", "train/w/0")));
    assert_int_equal(orbit_sched_view_module(v, "train", "w", &m), ORBIT_ENOTFOUND);
    /* adjusting it again brings it back from nothing */
    OK(commit_at(v, 7, ADJUST("train", "w", "{'count':1}")));
    OK(orbit_sched_view_module(v, "train", "w", &m));
    assert_int_equal(m.spec->count, 1);
    assert_null(m.spec->command);
    assert_int_equal(m.index, 7);
}

static void test_gang_and_revocations(void **state)
{
    orbit_sched_view_t *v = *state;
    orbit_sched_placement_t p;
    acc_t a = {0};
    OK(commit_at(v, 1, GANG3("m/g", "team")));
    OK(commit_at(v, 2, PLACE_P("m/s/0", "n1", 50, "team")));
    OK(commit_at(v, 3, PLACE("m/s/1", "n2", 70)));
    OK(orbit_sched_view_each_module_placement(v, "m", "g", acc_place, &a));
    assert_int_equal(a.n, 3);
    for (int i = 0; i < 3; i++) {
        char c[16];
        snprintf(c, sizeof c, "m/g/%d", i);
        assert_non_null(strstr(a.text, c));
    }
    memset(&a, 0, sizeof a);
    OK(orbit_sched_view_each_node_placement(v, "n1", acc_place, &a));
    assert_int_equal(a.n, 3);
    memset(&a, 0, sizeof a);
    a.stop_at = 2;
    assert_int_equal(orbit_sched_view_each_placement(v, acc_place, &a), 7);
    assert_int_equal(a.n, 2);
    memset(&a, 0, sizeof a);
    OK(orbit_sched_view_each_placement(v, acc_place, &a));
    assert_int_equal(a.n, 5);
    assert_int_equal(quota_of(v, "team").used.cpu_m, 650);
    assert_false(quota_of(v, "team").granted);
    /* the gang goes whole: node usage and quota released */
    OK(commit_at(v, 4, REVOKE("REF_GANG", "m/g")));
    assert_int_equal(orbit_sched_view_placement(v, "m/g/1", &p), ORBIT_ENOTFOUND);
    orbit_sched_node_t n = node_of(v, "n1");
    assert_int_equal(n.committed.cpu_m, 50);
    assert_int_equal(n.placements, 1);
    n = node_of(v, "n2");
    assert_int_equal(n.committed.cpu_m, 70);
    assert_int_equal(n.committed.gpus, 0);
    assert_int_equal(quota_of(v, "team").used.cpu_m, 50);
    orbit_sched_module_t m;
    assert_int_equal(orbit_sched_view_module(v, "m", "g", &m), ORBIT_ENOTFOUND);
    /* a single placement */
    OK(commit_at(v, 5, REVOKE("REF_PLACEMENT", "m/s/0")));
    n = node_of(v, "n1");
    assert_int_equal(n.committed.cpu_m + n.committed.mem + n.committed.gpus, 0);
    assert_int_equal(n.placements, 0);
    orbit_sched_quota_t q;
    assert_int_equal(orbit_sched_view_quota(v, "team", &q), ORBIT_ENOTFOUND);
    /* the node stays known (usage zero) */
    assert_int_equal(orbit_sched_view_node_count(v), 2);
    /* identities */
    OK(commit_at(v, 6, BIND("m/s/1", "i1")));
    OK(orbit_sched_view_placement(v, "m/s/1", &p));
    assert_string_equal(p.identity, "i1");
    OK(commit_at(v, 7, REVOKE("REF_IDENTITY", "i1")));
    OK(orbit_sched_view_placement(v, "m/s/1", &p));
    assert_string_equal(p.identity, "");
    /* a binding made before the capsule is placed shows once it is */
    OK(commit_at(v, 8, BIND("m/s/2", "i2")));
    OK(commit_at(v, 9, PLACE("m/s/2", "n3", 1)));
    OK(orbit_sched_view_placement(v, "m/s/2", &p));
    assert_string_equal(p.identity, "i2");
}

static void test_quota_accounting(void **state)
{
    orbit_sched_view_t *v = *state;
    orbit_sched_quota_t q;
    assert_int_equal(orbit_sched_view_quota(v, "p", &q), ORBIT_ENOTFOUND);
    /* usage without a grant */
    OK(commit_at(v, 1, PLACE_P("a/b/0", "n1", 100, "p")));
    q = quota_of(v, "p");
    assert_false(q.granted);
    assert_int_equal(q.used.cpu_m, 100);
    /* a grant keeps usage; a new grant replaces the old */
    OK(commit_at(v, 2,
                 "{'quota_grant':{'principal':'p','resources':{'cpu_m':500,'mem':9},'priority':3,"
                 "'until_ms':%" PRId64 "}}",
                 (int64_t)(T0 + 1000)));
    q = quota_of(v, "p");
    assert_true(q.granted);
    assert_int_equal(q.grant.cpu_m, 500);
    assert_int_equal(q.grant.mem, 9);
    assert_int_equal(q.priority, 3);
    assert_int_equal(q.until_ms, T0 + 1000);
    assert_int_equal(q.used.cpu_m, 100);
    OK(commit_at(v, 3, GRANT("p", 800)));
    q = quota_of(v, "p");
    assert_int_equal(q.grant.cpu_m, 800);
    assert_int_equal(q.grant.mem, 0);
    assert_int_equal(q.priority, 0);
    assert_int_equal(q.until_ms, 0);
    /* expiry drops the grant and keeps the usage */
    OK(commit_at(v, 4, EXPIRE("REF_QUOTA", "p")));
    q = quota_of(v, "p");
    assert_false(q.granted);
    assert_int_equal(q.grant.cpu_m, 0);
    assert_int_equal(q.used.cpu_m, 100);
    /* revocation of a grant, the same */
    OK(commit_at(v, 5, GRANT("p", 1)));
    OK(commit_at(v, 6, REVOKE("REF_QUOTA", "p")));
    q = quota_of(v, "p");
    assert_false(q.granted);
    assert_int_equal(q.used.cpu_m, 100);
    /* a grant alone stays after its usage goes */
    OK(commit_at(v, 7, GRANT("p", 2)));
    OK(commit_at(v, 8, REVOKE("REF_PLACEMENT", "a/b/0")));
    q = quota_of(v, "p");
    assert_true(q.granted);
    assert_int_equal(q.used.cpu_m, 0);
    OK(commit_at(v, 9, REVOKE("REF_QUOTA", "p")));
    assert_int_equal(orbit_sched_view_quota(v, "p", &q), ORBIT_ENOTFOUND);
}

/* ---------------------------------------------------------------- own notes */

static void test_own_notes(void **state)
{
    orbit_sched_view_t *v = *state;
    orbit_sched_placement_t p;
    orbit_sched_view_stats_t st;
    OK(commit_at(v, 1, GRANT("team", 5000)));
    /* counted at once */
    OK(note(v, 2, PLACE_P("m/w/0", "n1", 1000, "team")));
    OK(orbit_sched_view_placement(v, "m/w/0", &p));
    assert_true(p.own);
    assert_int_equal(p.index, 2);
    assert_int_equal(node_of(v, "n1").committed.cpu_m, 1000);
    assert_int_equal(quota_of(v, "team").used.cpu_m, 1000);
    assert_int_equal(orbit_sched_view_index(v), 1); /* notes are not confirmed state */
    /* noted twice, or at or below the index held: ignored */
    OK(note(v, 2, PLACE_P("m/w/0", "n1", 1000, "team")));
    OK(note(v, 1, PLACE("m/w/9", "n1", 1)));
    assert_int_equal(orbit_sched_view_placement(v, "m/w/9", &p), ORBIT_ENOTFOUND);
    orbit_sched_view_stats(v, &st);
    assert_int_equal(st.own_noted, 1);
    /* the watch reaches it: not applied twice */
    OK(commit_at(v, 2, PLACE_P("m/w/0", "n1", 1000, "team")));
    OK(orbit_sched_view_placement(v, "m/w/0", &p));
    assert_false(p.own);
    orbit_sched_node_t n = node_of(v, "n1");
    assert_int_equal(n.committed.cpu_m, 1000);
    assert_int_equal(n.placements, 1);
    assert_int_equal(quota_of(v, "team").used.cpu_m, 1000);
    orbit_sched_view_stats(v, &st);
    assert_int_equal(st.own_confirmed, 1);
    assert_int_equal(st.commits_applied, 2);
}

/* Notes ahead of several unrelated commits (out-of-order events). */
static void test_own_notes_out_of_order(void **state)
{
    orbit_sched_view_t *v = *state;
    orbit_sched_placement_t p;
    orbit_sched_module_t m;
    orbit_sched_view_stats_t st;
    OK(commit_at(v, 1, ADJUST("m", "w", "{'count':1,'command':'a'}")));
    /* ours: 5 places a gang, 6 scales the module, 7 revokes someone's placement */
    OK(note(v, 6, ADJUST("m", "w", "{'count':5}")));
    OK(note(v, 5, GANG3("m/g", "team")));
    OK(note(v, 7, REVOKE("REF_PLACEMENT", "x/y/0")));
    assert_int_equal(node_of(v, "n1").committed.cpu_m, 300);
    assert_int_equal(quota_of(v, "team").used.cpu_m, 600);
    OK(orbit_sched_view_module(v, "m", "w", &m));
    assert_int_equal(m.spec->count, 5);
    /* others' commits in between: a command change of the same module, the
     * placement our revocation removes, an unrelated placement */
    OK(commit_at(v, 2, ADJUST("m", "w", "{'command':'b'}")));
    OK(commit_at(v, 3, PLACE("x/y/0", "n1", 40)));
    OK(commit_at(v, 4, PLACE("x/y/1", "n2", 2)));
    assert_int_equal(node_of(v, "n1").committed.cpu_m, 340);
    OK(commit_at(v, 5, GANG3("m/g", "team")));
    OK(commit_at(v, 6, ADJUST("m", "w", "{'count':5}")));
    OK(commit_at(v, 7, REVOKE("REF_PLACEMENT", "x/y/0")));
    /* exactly the ledger's state */
    orbit_sched_node_t n = node_of(v, "n1");
    assert_int_equal(n.committed.cpu_m, 300);
    assert_int_equal(n.placements, 2);
    n = node_of(v, "n2");
    assert_int_equal(n.committed.cpu_m, 302);
    assert_int_equal(n.placements, 2);
    assert_int_equal(quota_of(v, "team").used.cpu_m, 600);
    assert_int_equal(orbit_sched_view_placement(v, "x/y/0", &p), ORBIT_ENOTFOUND);
    OK(orbit_sched_view_placement(v, "m/g/1", &p));
    assert_false(p.own);
    assert_int_equal(p.index, 5);
    OK(orbit_sched_view_module(v, "m", "w", &m));
    assert_int_equal(m.spec->count, 5);
    assert_string_equal(m.spec->command, "b");
    assert_int_equal(m.index, 6);
    orbit_sched_view_stats(v, &st);
    assert_int_equal(st.own_noted, 3);
    assert_int_equal(st.own_confirmed, 3);
    assert_int_equal(orbit_sched_view_index(v), 7);
}

/* A note the watch does not confirm (something else committed at its
 * index) leaves nothing behind. */
static void test_own_note_not_confirmed(void **state)
{
    orbit_sched_view_t *v = *state;
    orbit_sched_placement_t p;
    OK(note(v, 1, PLACE("a/b/0", "n1", 10)));
    OK(commit_at(v, 1, PLACE("a/b/1", "n1", 20)));
    assert_int_equal(orbit_sched_view_placement(v, "a/b/0", &p), ORBIT_ENOTFOUND);
    assert_int_equal(node_of(v, "n1").committed.cpu_m, 20);
    assert_int_equal(node_of(v, "n1").placements, 1);
}

/* ---------------------------------------------------------------- order */

static void test_gap_and_stale(void **state)
{
    orbit_sched_view_t *v = *state;
    orbit_sched_placement_t p;
    orbit_sched_view_stats_t st;
    OK(commit_at(v, 1, PLACE("a/b/0", "n1", 10)));
    assert_int_equal(commit_at(v, 3, PLACE("a/b/1", "n1", 20)), ORBIT_EAGAIN);
    assert_int_equal(orbit_sched_view_index(v), 1);
    assert_int_equal(orbit_sched_view_placement(v, "a/b/1", &p), ORBIT_ENOTFOUND);
    assert_int_equal(node_of(v, "n1").committed.cpu_m, 10);
    /* stale: already held */
    OK(commit_at(v, 1, PLACE("a/b/2", "n1", 30)));
    assert_int_equal(orbit_sched_view_placement(v, "a/b/2", &p), ORBIT_ENOTFOUND);
    orbit_sched_view_stats(v, &st);
    assert_int_equal(st.stale_commits, 1);
    assert_int_equal(st.commits_applied, 1);
    OK(commit_at(v, 2, PLACE("a/b/1", "n1", 20)));
    assert_int_equal(node_of(v, "n1").committed.cpu_m, 30);
}

/* ---------------------------------------------------------------- telemetry */

/* A row with capacity, labels and capsules (ids, states) given. */
typedef struct {
    Orbit__NodeRow row;
    Orbit__Label l[2], *lp[2];
    Orbit__CapsuleHealth c[4], *cp[4];
} row_t;

static void mkrow(row_t *r, const char *node, Orbit__NodeStatus status, int64_t cpu, uint32_t gh,
                  const char *const *caps, size_t ncaps)
{
    memset(r, 0, sizeof *r);
    orbit__node_row__init(&r->row);
    r->row.node = (char *)node;
    r->row.status = status;
    r->row.shard = "rack-1";
    r->row.has_cpu_capacity_m = true;
    r->row.cpu_capacity_m = cpu;
    r->row.has_mem_capacity = true;
    r->row.mem_capacity = 1 << 20;
    r->row.has_gpu_capacity = true;
    r->row.gpu_capacity = 8;
    r->row.has_gpu_healthy = true;
    r->row.gpu_healthy = gh;
    r->row.has_mem_pressure = true;
    r->row.mem_pressure = 42;
    for (int i = 0; i < 2; i++) {
        orbit__label__init(&r->l[i]);
        r->lp[i] = &r->l[i];
    }
    r->l[0].key = "gpu";
    r->l[0].value = "a100";
    r->l[1].key = "zone";
    r->l[1].value = "b";
    r->row.n_labels = 2;
    r->row.labels = r->lp;
    for (size_t i = 0; i < ncaps && i < 4; i++) {
        orbit__capsule_health__init(&r->c[i]);
        r->c[i].id = (char *)caps[i];
        r->c[i].state = ORBIT__CAPSULE_STATE__CAPSULE_RUNNING;
        r->c[i].has_since_ms = true;
        r->c[i].since_ms = 77;
        r->cp[i] = &r->c[i];
    }
    r->row.n_capsules = ncaps;
    r->row.capsules = r->cp;
}

static void test_rows(void **state)
{
    orbit_sched_view_t *v = *state;
    row_t r;
    /* a placement on a node never seen: kept, capacity 0 */
    OK(commit_at(v, 1, PLACE("a/b/0", "n1", 10)));
    orbit_sched_node_t n = node_of(v, "n1");
    assert_false(n.seen);
    assert_int_equal(n.status, ORBIT__NODE_STATUS__UNREACHABLE);
    assert_int_equal(n.capacity.cpu_m, 0);
    assert_string_equal(n.shard, "");
    assert_int_equal(n.committed.cpu_m, 10);
    /* a row for it */
    mkrow(&r, "n1", ORBIT__NODE_STATUS__ALIVE, 4000, 6, NULL, 0);
    OK(orbit_sched_view_apply_row(v, &r.row, 100));
    n = node_of(v, "n1");
    assert_true(n.seen);
    assert_int_equal(n.status, ORBIT__NODE_STATUS__ALIVE);
    assert_int_equal(n.status_since_ms, 100);
    assert_int_equal(n.capacity.cpu_m, 4000);
    assert_int_equal(n.capacity.mem, 1 << 20);
    assert_int_equal(n.capacity.gpus, 6); /* healthy ones only */
    assert_int_equal(n.gpu_capacity, 8);
    assert_int_equal(n.mem_pressure, 42);
    assert_string_equal(n.shard, "rack-1");
    assert_string_equal(n.labels, "gpu=a100\nzone=b\n");
    assert_int_equal(n.committed.cpu_m, 10); /* rows never touch ledger state */
    /* a row creating a node */
    mkrow(&r, "n2", ORBIT__NODE_STATUS__ALIVE, 1000, 0, NULL, 0);
    OK(orbit_sched_view_apply_row(v, &r.row, 100));
    assert_int_equal(orbit_sched_view_node_count(v), 2);
    n = node_of(v, "n2");
    assert_int_equal(n.placements, 0);
    /* dense order is stable */
    orbit_sched_node_t a;
    OK(orbit_sched_view_node_at(v, 0, &a));
    assert_string_equal(a.name, "n1");
    OK(orbit_sched_view_node_at(v, 1, &a));
    assert_string_equal(a.name, "n2");
    assert_int_equal(orbit_sched_view_node_at(v, 2, &a), ORBIT_ENOTFOUND);
    /* status_since moves only with the status */
    mkrow(&r, "n1", ORBIT__NODE_STATUS__ALIVE, 3000, 6, NULL, 0);
    OK(orbit_sched_view_apply_row(v, &r.row, 200));
    n = node_of(v, "n1");
    assert_int_equal(n.status_since_ms, 100);
    assert_int_equal(n.capacity.cpu_m, 3000);
    mkrow(&r, "n1", ORBIT__NODE_STATUS__SUSPECT, 3000, 6, NULL, 0);
    OK(orbit_sched_view_apply_row(v, &r.row, 300));
    n = node_of(v, "n1");
    assert_int_equal(n.status, ORBIT__NODE_STATUS__SUSPECT);
    assert_int_equal(n.status_since_ms, 300);
    OK(orbit_sched_view_apply_row(v, &r.row, 400));
    assert_int_equal(node_of(v, "n1").status_since_ms, 300);
    /* a complete refresh without n2: n2 is not seen any more */
    orbit_sched_view_rows_done(v, 450);
    mkrow(&r, "n1", ORBIT__NODE_STATUS__SUSPECT, 3000, 6, NULL, 0);
    OK(orbit_sched_view_apply_row(v, &r.row, 500));
    orbit_sched_view_rows_done(v, 500);
    n = node_of(v, "n1");
    assert_true(n.seen);
    assert_int_equal(n.status_since_ms, 300);
    n = node_of(v, "n2");
    assert_false(n.seen);
    assert_int_equal(n.status, ORBIT__NODE_STATUS__UNREACHABLE);
    assert_int_equal(n.status_since_ms, 500);
    assert_int_equal(n.capacity.cpu_m, 0);
    assert_string_equal(n.shard, "");
    /* n1 keeps its ledger usage through all that */
    assert_int_equal(node_of(v, "n1").committed.cpu_m, 10);
    /* bad rows */
    mkrow(&r, "", ORBIT__NODE_STATUS__ALIVE, 1, 0, NULL, 0);
    assert_int_equal(orbit_sched_view_apply_row(v, &r.row, 1), ORBIT_EINVAL);
    mkrow(&r, "n3", (Orbit__NodeStatus)9, 1, 0, NULL, 0);
    assert_int_equal(orbit_sched_view_apply_row(v, &r.row, 1), ORBIT_EINVAL);
    assert_int_equal(orbit_sched_view_node(v, "n3", &n), ORBIT_ENOTFOUND);
    orbit_sched_view_stats_t st;
    orbit_sched_view_stats(v, &st);
    assert_int_equal(st.rows_applied, 6);
}

/* The health a placement carries: what orbit_sched_view_capsule_health
 * says of its capsule (NULL where that is ENOTFOUND). */
static const orbit_capsule_t *placed_health(orbit_sched_view_t *v, const char *capsule)
{
    orbit_sched_placement_t p;
    OK(orbit_sched_view_placement(v, capsule, &p));
    orbit_capsule_t h;
    int rc = orbit_sched_view_capsule_health(v, capsule, &h);
    if (rc == ORBIT_ENOTFOUND)
        assert_null(p.health);
    else {
        OK(rc);
        assert_non_null(p.health);
        assert_string_equal(p.health->id, capsule);
        assert_int_equal(p.health->state, h.state);
        assert_int_equal(p.health->since_ms, h.since_ms);
    }
    return p.health;
}

static void test_capsule_health(void **state)
{
    orbit_sched_view_t *v = *state;
    orbit_capsule_t h;
    row_t r;
    static const char *const on1[] = {"a/b/1", "a/b/0"};
    static const char *const on2[] = {"a/b/0", "a/b/2"};
    OK(commit_at(v, 1, PLACE("a/b/0", "n1", 10)));
    assert_int_equal(orbit_sched_view_capsule_health(v, "a/b/0", &h), ORBIT_ENOTFOUND);
    assert_null(placed_health(v, "a/b/0"));
    /* n2 reports a/b/0 (stale, from an old placement): ignored */
    mkrow(&r, "n2", ORBIT__NODE_STATUS__ALIVE, 1000, 0, on2, 2);
    r.c[0].state = ORBIT__CAPSULE_STATE__CAPSULE_FAILED;
    OK(orbit_sched_view_apply_row(v, &r.row, 1));
    assert_int_equal(orbit_sched_view_capsule_health(v, "a/b/0", &h), ORBIT_ENOTFOUND);
    /* n1, where it is placed, counts */
    mkrow(&r, "n1", ORBIT__NODE_STATUS__ALIVE, 1000, 0, on1, 2);
    r.c[1].state = ORBIT__CAPSULE_STATE__CAPSULE_EXITED;
    r.c[1].has_exit_code = true;
    r.c[1].exit_code = 3;
    OK(orbit_sched_view_apply_row(v, &r.row, 1));
    OK(orbit_sched_view_capsule_health(v, "a/b/0", &h));
    assert_string_equal(h.id, "a/b/0");
    assert_int_equal(h.state, ORBIT_CAPSULE_EXITED);
    assert_int_equal(h.exit_code, 3);
    assert_int_equal(h.since_ms, 77);
    assert_int_equal(placed_health(v, "a/b/0")->exit_code, 3);
    /* reported but not placed */
    assert_int_equal(orbit_sched_view_capsule_health(v, "a/b/1", &h), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_sched_view_capsule_health(v, "a/b/2", &h), ORBIT_ENOTFOUND);
    /* moved: revoked on n1, placed on n2, whose report counts now */
    OK(commit_at(v, 2, REVOKE("REF_PLACEMENT", "a/b/0")));
    OK(commit_at(v, 3, PLACE("a/b/0", "n2", 10)));
    OK(orbit_sched_view_capsule_health(v, "a/b/0", &h));
    assert_int_equal(h.state, ORBIT_CAPSULE_FAILED);
    assert_int_equal(placed_health(v, "a/b/0")->state, ORBIT_CAPSULE_FAILED);
}

/* The identity a placement carries, "" when none. */
static const char *placed_identity(orbit_sched_view_t *v, const char *capsule)
{
    orbit_sched_placement_t p;
    OK(orbit_sched_view_placement(v, capsule, &p));
    return p.identity;
}

/* A placement's identity follows its binds in every order: bound before
 * or after it is placed, moved away, unbound, kept across a new placement
 * of the same capsule (after a snapshot: test_snapshot_equals_replay). */
static void test_placement_identity(void **state)
{
    orbit_sched_view_t *v = *state;
    OK(commit_at(v, 1, BIND("a/b/0", "id-0"))); /* before its placement */
    OK(commit_at(v, 2, PLACE("a/b/0", "n1", 10)));
    assert_string_equal(placed_identity(v, "a/b/0"), "id-0");
    OK(commit_at(v, 3, PLACE("a/b/1", "n1", 10)));
    assert_string_equal(placed_identity(v, "a/b/1"), "");
    OK(commit_at(v, 4, BIND("a/b/1", "id-1"))); /* after */
    assert_string_equal(placed_identity(v, "a/b/1"), "id-1");
    OK(commit_at(v, 5, BIND("a/b/1", "id-0"))); /* id-0 moves; a/b/1 drops id-1 */
    assert_string_equal(placed_identity(v, "a/b/0"), "");
    assert_string_equal(placed_identity(v, "a/b/1"), "id-0");
    OK(commit_at(v, 6, BIND("a/b/0", "id-1")));
    assert_string_equal(placed_identity(v, "a/b/0"), "id-1");
    OK(commit_at(v, 7, REVOKE("REF_PLACEMENT", "a/b/0")));
    OK(commit_at(v, 8, PLACE("a/b/0", "n2", 10))); /* placed again: the bind stays */
    assert_string_equal(placed_identity(v, "a/b/0"), "id-1");
    OK(commit_at(v, 9, REVOKE("REF_IDENTITY", "id-1")));
    assert_string_equal(placed_identity(v, "a/b/0"), "");
    assert_string_equal(placed_identity(v, "a/b/1"), "id-0");
}

/* The version of module key "mission/module". */
static uint64_t version_of(orbit_sched_view_t *v, const char *mission, const char *module)
{
    orbit_sched_module_t m;
    OK(orbit_sched_view_module(v, mission, module, &m));
    return m.version;
}

/* A module's version moves with everything a planner reads of it (its spec,
 * its placements, their identities and health) and with nothing else. */
static void test_module_version(void **state)
{
    orbit_sched_view_t *v = *state;
    row_t r;
    static const char *const on1[] = {"a/b/0"};
    static const char *const on2[] = {"c/d/0"};
    OK(commit_at(v, 1, ADJUST("a", "b", "{'count':2,'command':'sleep 1','gang':false}")));
    OK(commit_at(v, 2, ADJUST("c", "d", "{'count':1,'command':'sleep 1','gang':false}")));
    uint64_t ab = version_of(v, "a", "b"), cd = version_of(v, "c", "d");
    assert_true(ab > 0 && cd > 0 && ab != cd);
    /* a placement: its module only */
    OK(commit_at(v, 3, PLACE("a/b/0", "n1", 10)));
    assert_true(version_of(v, "a", "b") > ab);
    assert_int_equal(version_of(v, "c", "d"), cd);
    ab = version_of(v, "a", "b");
    OK(commit_at(v, 4, PLACE("c/d/0", "n2", 10)));
    assert_int_equal(version_of(v, "a", "b"), ab);
    cd = version_of(v, "c", "d");
    /* an identity bound, moved to another capsule, unbound */
    OK(commit_at(v, 5, BIND("a/b/0", "id-0")));
    assert_true(version_of(v, "a", "b") > ab);
    assert_int_equal(version_of(v, "c", "d"), cd);
    ab = version_of(v, "a", "b");
    OK(commit_at(v, 6, BIND("c/d/0", "id-0"))); /* a/b/0 loses it */
    assert_true(version_of(v, "a", "b") > ab);
    assert_true(version_of(v, "c", "d") > cd);
    ab = version_of(v, "a", "b");
    cd = version_of(v, "c", "d");
    OK(commit_at(v, 7, REVOKE("REF_IDENTITY", "id-0")));
    assert_int_equal(version_of(v, "a", "b"), ab);
    assert_true(version_of(v, "c", "d") > cd);
    cd = version_of(v, "c", "d");
    /* health: a row whose capsules changed moves the modules placed on
     * that node; the same row again, or other fields of it, do not */
    mkrow(&r, "n1", ORBIT__NODE_STATUS__ALIVE, 1000, 0, on1, 1);
    OK(orbit_sched_view_apply_row(v, &r.row, 1));
    assert_true(version_of(v, "a", "b") > ab);
    assert_int_equal(version_of(v, "c", "d"), cd);
    ab = version_of(v, "a", "b");
    mkrow(&r, "n1", ORBIT__NODE_STATUS__SUSPECT, 2000, 0, on1, 1);
    OK(orbit_sched_view_apply_row(v, &r.row, 2));
    assert_int_equal(version_of(v, "a", "b"), ab);
    r.c[0].state = ORBIT__CAPSULE_STATE__CAPSULE_FAILED;
    OK(orbit_sched_view_apply_row(v, &r.row, 3));
    assert_true(version_of(v, "a", "b") > ab);
    ab = version_of(v, "a", "b");
    /* entries of other capsules on n1 come (one placed on n2, one placed
     * nowhere) while a/b/0's stays as it was: nothing moves */
    static const char *const more[] = {"a/b/0", "c/d/0", "x/y/0"};
    mkrow(&r, "n1", ORBIT__NODE_STATUS__SUSPECT, 2000, 0, more, 3);
    r.c[0].state = ORBIT__CAPSULE_STATE__CAPSULE_FAILED;
    OK(orbit_sched_view_apply_row(v, &r.row, 3));
    assert_int_equal(version_of(v, "a", "b"), ab);
    assert_int_equal(version_of(v, "c", "d"), cd);
    r.c[2].state = ORBIT__CAPSULE_STATE__CAPSULE_EXITED;
    OK(orbit_sched_view_apply_row(v, &r.row, 3));
    assert_int_equal(version_of(v, "a", "b"), ab);
    mkrow(&r, "n2", ORBIT__NODE_STATUS__ALIVE, 1000, 0, on2, 1);
    OK(orbit_sched_view_apply_row(v, &r.row, 4));
    assert_int_equal(version_of(v, "a", "b"), ab);
    assert_true(version_of(v, "c", "d") > cd);
    cd = version_of(v, "c", "d");
    /* a refresh without n1: its capsules' health is gone */
    orbit_sched_view_rows_done(v, 4); /* both rows were fresh: nothing goes */
    assert_int_equal(version_of(v, "a", "b"), ab);
    OK(orbit_sched_view_apply_row(v, &r.row, 5));
    orbit_sched_view_rows_done(v, 5);
    assert_true(version_of(v, "a", "b") > ab);
    assert_int_equal(version_of(v, "c", "d"), cd);
    ab = version_of(v, "a", "b");
    /* the spec, and the placement revoked */
    OK(commit_at(v, 8, ADJUST("a", "b", "{'count':1}")));
    assert_true(version_of(v, "a", "b") > ab);
    ab = version_of(v, "a", "b");
    OK(commit_at(v, 9, REVOKE("REF_PLACEMENT", "a/b/0")));
    assert_true(version_of(v, "a", "b") > ab);
    assert_int_equal(version_of(v, "c", "d"), cd);
    ab = version_of(v, "a", "b");
    /* an own placement counted ahead of the watch, then confirmed by it */
    OK(note(v, 10, PLACE("a/b/0", "n2", 10)));
    assert_true(version_of(v, "a", "b") > ab);
    ab = version_of(v, "a", "b");
    OK(commit_at(v, 10, PLACE("a/b/0", "n2", 10)));
    assert_true(version_of(v, "a", "b") > ab);
    assert_int_equal(version_of(v, "c", "d"), cd);
    /* another view of the same commitments never hands out the same
     * versions: a planner moved to it walks every module again */
    orbit_sched_view_t *w = orbit_sched_view_new();
    assert_non_null(w);
    OK(commit_at(w, 1, ADJUST("a", "b", "{'count':2,'command':'sleep 1','gang':false}")));
    orbit_sched_module_t m;
    OK(orbit_sched_view_module(w, "a", "b", &m));
    assert_true(m.version > version_of(v, "a", "b"));
    orbit_sched_view_destroy(&w);
}

/* others_ms: a placement by another client than the view's own stamps its
 * module with the entry time; its own (self, or self-anything) do not. */
static void test_others(void **state)
{
    orbit_sched_view_t *v = *state;
    OK(commit_at(v, 1, ADJUST("a", "b", "{'count':9,'command':'sleep 1','gang':false}")));
    OK(commit_at(v, 2, PLACE("a/b/0", "n1", 10))); /* no self: nothing is stamped */
    orbit_sched_module_t m;
    OK(orbit_sched_view_module(v, "a", "b", &m));
    assert_int_equal(m.others_ms, 0);
    orbit_sched_view_set_self(v, "t"); /* the test's proposals are "t"'s */
    OK(commit_at(v, 3, PLACE("a/b/1", "n1", 10)));
    OK(orbit_sched_view_module(v, "a", "b", &m));
    assert_int_equal(m.others_ms, 0);
    orbit_sched_view_set_self(v, "tt"); /* "t" is another client of "tt" */
    OK(commit_at(v, 4, PLACE("a/b/2", "n1", 10)));
    OK(orbit_sched_view_module(v, "a", "b", &m));
    assert_int_equal(m.others_ms, T0 + 4);
    /* a noted own placement confirmed by the watch is not another's */
    OK(note(v, 5, PLACE("a/b/3", "n1", 10)));
    OK(commit_at(v, 5, PLACE("a/b/3", "n1", 10)));
    OK(orbit_sched_view_module(v, "a", "b", &m));
    assert_int_equal(m.others_ms, T0 + 4);
    /* nor is a revocation, by anyone */
    OK(commit_at(v, 6, REVOKE("REF_PLACEMENT", "a/b/0")));
    OK(orbit_sched_view_module(v, "a", "b", &m));
    assert_int_equal(m.others_ms, T0 + 4);
    orbit_sched_view_set_self(v, NULL);
    OK(commit_at(v, 7, PLACE("a/b/4", "n1", 10)));
    OK(orbit_sched_view_module(v, "a", "b", &m));
    assert_int_equal(m.others_ms, T0 + 4);
}

/* ---------------------------------------------------------------- snapshots */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Everything the view says, as one text (nodes by name, placements by
 * capsule, modules, quotas of the principals named). */
typedef struct {
    char *text;
    size_t off, cap;
} dump_t;

static void dump_add(dump_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dump_add(dump_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(d->text + d->off, d->cap - d->off, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < d->cap - d->off);
    d->off += (size_t)n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct {
    char *lines[256];
    size_t n;
} lines_t;

static void lines_add(lines_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lines_add(lines_t *l, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert_true(l->n < 256);
    l->lines[l->n++] = strdup(buf);
}

static void lines_flush(lines_t *l, dump_t *d)
{
    qsort(l->lines, l->n, sizeof *l->lines, cmp_str);
    for (size_t i = 0; i < l->n; i++) {
        dump_add(d, "%s\n", l->lines[i]);
        free(l->lines[i]);
    }
    l->n = 0;
}

static int dump_place(void *arg, const orbit_sched_placement_t *p)
{
    lines_add(arg,
              "place %s node=%s principal=%s gang=%s env=%" PRId64 "/%" PRId64 "/%" PRId64
              " index=%" PRIu64 " identity=%s own=%d",
              p->capsule, p->node, p->principal, p->gang, p->envelope.cpu_m, p->envelope.mem,
              p->envelope.gpus, p->index, p->identity, p->own);
    return 0;
}

static int dump_module(void *arg, const orbit_sched_module_t *m)
{
    char *spec = NULL;
    if (m->spec) {
        json_t *j = orbit_json_from_pb(&m->spec->base);
        spec = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
    }
    lines_add(arg, "module %s/%s spec=%s index=%" PRIu64 " placed=%" PRIu64, m->mission, m->module,
              spec ? spec : "-", m->index, m->placed);
    free(spec);
    return 0;
}

static char *dump(orbit_sched_view_t *v, const char *const *principals)
{
    dump_t d = {malloc(1 << 16), 0, 1 << 16};
    lines_t l = {.n = 0};
    assert_non_null(d.text);
    d.text[0] = '\0';
    dump_add(&d, "index=%" PRIu64 " time=%" PRId64 "\n", orbit_sched_view_index(v),
             orbit_sched_view_time(v));
    for (size_t i = 0; i < orbit_sched_view_node_count(v); i++) {
        orbit_sched_node_t n;
        OK(orbit_sched_view_node_at(v, i, &n));
        lines_add(&l,
                  "node %s seen=%d status=%d since=%" PRId64 " cap=%" PRId64 " committed=%" PRId64
                  "/%" PRId64 "/%" PRId64 " placements=%" PRIu64,
                  n.name, n.seen, n.status, n.status_since_ms, n.capacity.cpu_m, n.committed.cpu_m,
                  n.committed.mem, n.committed.gpus, n.placements);
    }
    lines_flush(&l, &d);
    OK(orbit_sched_view_each_placement(v, dump_place, &l));
    lines_flush(&l, &d);
    OK(orbit_sched_view_each_module(v, dump_module, &l));
    lines_flush(&l, &d);
    for (size_t i = 0; principals[i]; i++) {
        orbit_sched_quota_t q;
        int rc = orbit_sched_view_quota(v, principals[i], &q);
        if (rc) {
            dump_add(&d, "quota %s none\n", principals[i]);
            continue;
        }
        dump_add(&d,
                 "quota %s granted=%d grant=%" PRId64 " used=%" PRId64 "/%" PRId64 "/%" PRId64
                 " prio=%d until=%" PRId64 "\n",
                 principals[i], q.granted, q.grant.cpu_m, q.used.cpu_m, q.used.mem, q.used.gpus,
                 q.priority, q.until_ms);
    }
    return d.text;
}

/* Entries of a ledger log, one proposal each. */
static const char *const script[] = {
    GRANT("team", 5000),
    "{'quota_grant':{'principal':'ops','resources':{'cpu_m':10},'priority':2,'until_ms':"
    "1700000900000}}",
    ADJUST("m", "w",
           "{'count':3,'command':'sleep 9','resources':{'cpu_m':100},"
           "'principal':'team','node_selector':'zone=b'}"),
    PLACE_P("m/w/0", "n1", 100, "team"),
    PLACE_P("m/w/1", "n2", 100, "team"),
    PLACE_P("m/w/2", "n1", 100, "team"),
    GANG3("m/g", "ops"),
    BIND("m/w/0", "spiffe:w0"),
    BIND("m/w/1", "spiffe:w1"),
    LEASE("sched", "leader"),
    JOIN("s1"),
    ADJUST("m", "w", "{'count':2}"),
    REVOKE("REF_PLACEMENT", "m/w/2"),
    REVOKE("REF_IDENTITY", "spiffe:w1"),
    ADJUST("m", "old", "{'count':1}"),
    PLACE("m/old/0", "n3", 5),
    REVOKE("REF_MODULE", "m/old"),
    ADJUST("x", "y", "{'count':0}"),
    REVOKE("REF_MODULE", "x/y"),
    PLACE_P("plain", "n2", 7, "nogrant"),
    GRANT("gone", 1),
    REVOKE("REF_QUOTA", "gone"),
    REVOKE("REF_QUOTA", "team"),
    PLACE_P("m/w/3", "n4", 1, "team"),
    REVOKE("REF_GANG", "m/g"),
    GANG3("m/h", "ops"),
};
#define NSCRIPT (sizeof script / sizeof script[0])

typedef struct {
    orbit_sched_view_t *v;
    uint64_t upto;
} replay_t;

static int replay(void *ctx, const orbit_ledger_commit_t *c)
{
    replay_t *r = ctx;
    if (c->index > r->upto)
        return 1;
    Orbit__Ledger__Proposal *p =
        orbit__ledger__proposal__unpack(NULL, c->proposal_len, c->proposal);
    assert_non_null(p);
    OK(orbit_sched_view_apply_commit(r->v, c->index, c->time_ms, p));
    orbit__ledger__proposal__free_unpacked(p, NULL);
    return 0;
}

/* A copy of snapshot snap (an LMDB data file) with one more identity record:
 * the first one's value (its capsule) under a new identity. */
static uint8_t *clash_identity(const uint8_t *snap, size_t len, size_t *out_len)
{
    char dir[64], path[96];
    snprintf(dir, sizeof dir, "/tmp/test-sched-clash-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(snap, 1, len, f), len);
    fclose(f);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 64), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 64u << 20), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "#identity", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
    uint8_t key[256], val[256];
    assert_true(k.mv_size < sizeof key - 2 && v.mv_size < sizeof val);
    memcpy(key, k.mv_data, k.mv_size);
    memcpy(val, v.mv_data, v.mv_size);
    mdb_cursor_close(cur);
    key[k.mv_size - 1] = key[k.mv_size - 1] == 'z' ? 'y' : 'z'; /* another identity */
    MDB_val k2 = {k.mv_size, key}, v2 = {v.mv_size, val};
    assert_int_equal(mdb_put(txn, dbi, &k2, &v2, MDB_NOOVERWRITE), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
    *out_len = (size_t)n;
    return b;
}

static void test_snapshot_equals_replay(void **state)
{
    (void)state;
    static const char *const principals[] = {"team", "ops", "nogrant", "gone", NULL};
    char dir[64], err[256];
    orbit_ledger_t *l = NULL;
    snprintf(dir, sizeof dir, "/tmp/test-sched-view-XXXXXX");
    assert_non_null(mkdtemp(dir));
    OK(orbit_ledger_open(dir, &l, err, sizeof err));
    for (size_t i = 0; i < NSCRIPT; i++) {
        Orbit__Ledger__Proposal *p = mkprop("%s", script[i]);
        Orbit__Ledger__Entry e = ORBIT__LEDGER__ENTRY__INIT;
        Orbit__Ledger__Outcome **out = NULL;
        size_t nout = 0;
        e.time_ms = T0 + 10 * (int64_t)i;
        e.n_proposals = 1;
        e.proposals = &p;
        size_t len = orbit__ledger__entry__get_packed_size(&e);
        uint8_t *b = malloc(len);
        assert_non_null(b);
        orbit__ledger__entry__pack(&e, b);
        OK(orbit_ledger_apply(l, b, len, i + 1, &out, &nout));
        assert_int_equal(nout, 1);
        if (out[0]->kind != ORBIT__LEDGER__OUTCOME_KIND__COMMITTED)
            fail_msg("script %zu: %s %s %s", i, out[0]->which ? out[0]->which : "",
                     out[0]->observed ? out[0]->observed : "",
                     out[0]->reason ? out[0]->reason : "");
        orbit_ledger_outcomes_free(out, nout);
        orbit__ledger__proposal__free_unpacked(p, NULL);
        free(b);
    }
    uint64_t top = orbit_ledger_index(l);
    assert_int_equal(top, NSCRIPT);
    uint8_t *snap = NULL;
    size_t snap_len = 0;
    OK(orbit_ledger_snapshot_buf(l, true, &snap, &snap_len, NULL));

    /* one by one */
    orbit_sched_view_t *a = orbit_sched_view_new();
    assert_non_null(a);
    replay_t r = {a, top};
    OK(orbit_ledger_history_from(l, 1, replay, &r, NULL));
    /* from the snapshot, onto a view that already has telemetry and
     * unrelated ledger state (replaced) */
    orbit_sched_view_t *b = orbit_sched_view_new();
    assert_non_null(b);
    OK(commit_at(b, 1, PLACE("junk/j/0", "n9", 1)));
    row_t row;
    mkrow(&row, "n1", ORBIT__NODE_STATUS__ALIVE, 8000, 1, NULL, 0);
    OK(orbit_sched_view_apply_row(b, &row.row, 5));
    mkrow(&row, "n1", ORBIT__NODE_STATUS__ALIVE, 8000, 1, NULL, 0);
    OK(orbit_sched_view_apply_row(a, &row.row, 5));
    OK(orbit_sched_view_load_snapshot(b, snap, snap_len, top, err, sizeof err));
    orbit_sched_view_stats_t st;
    orbit_sched_view_stats(b, &st);
    assert_int_equal(st.snapshots_loaded, 1);
    /* b knows n9 from its junk (an empty node now); a does not */
    orbit_sched_node_t n9 = node_of(b, "n9");
    assert_int_equal(n9.placements, 0);
    mkrow(&row, "n9", ORBIT__NODE_STATUS__ALIVE, 1, 0, NULL, 0);
    OK(orbit_sched_view_apply_row(a, &row.row, 5));
    OK(orbit_sched_view_apply_row(b, &row.row, 5));
    char *da = dump(a, principals), *db = dump(b, principals);
    assert_string_equal(da, db);
    /* the dump says what the ledger says */
    assert_non_null(strstr(da, "place m/w/0 node=n1 principal=team gang= env=100/100/1 index=4 "
                               "identity=spiffe:w0 own=0"));
    assert_non_null(strstr(da, "module m/old spec=- index=17 placed=1"));
    assert_null(strstr(da, "module x/y"));
    assert_non_null(strstr(da, "quota team granted=0 grant=0 used=201/300/3"));
    assert_non_null(strstr(da, "quota nogrant granted=0 grant=0 used=7/100/1"));
    assert_non_null(strstr(da, "quota gone none"));
    assert_non_null(strstr(da, "quota ops granted=1 grant=10 used=600/0/1 prio=2"));
    free(da);
    free(db);

    /* own notes above the snapshot survive a reload; those it holds go */
    OK(note(b, top + 2, PLACE("z/z/0", "n1", 1)));
    OK(orbit_sched_view_load_snapshot(b, snap, snap_len, top, err, sizeof err));
    orbit_sched_placement_t p;
    OK(orbit_sched_view_placement(b, "z/z/0", &p));
    assert_true(p.own);
    /* bad snapshots change nothing */
    da = dump(b, principals);
    assert_int_equal(orbit_sched_view_load_snapshot(b, snap, snap_len, top + 1, err, sizeof err),
                     ORBIT_EINVAL);
    assert_non_null(strstr(err, "ledger index"));
    uint8_t junk[4096];
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(orbit_sched_view_load_snapshot(b, junk, sizeof junk, 1, err, sizeof err),
                     ORBIT_EINVAL);
    assert_non_null(strstr(err, "not a ledger snapshot"));
    assert_int_equal(orbit_sched_view_load_snapshot(b, junk, 0, 1, err, sizeof err), ORBIT_EINVAL);
    db = dump(b, principals);
    assert_string_equal(da, db);
    free(da);
    free(db);
    orbit_sched_view_stats(b, &st);
    assert_int_equal(st.snapshots_loaded, 2);
    assert_int_equal(st.identity_clashes, 0);

    /* A snapshot whose raw identity records bind one capsule twice (which
     * the ledger never writes) is counted as it loads. */
    size_t clash_len = 0;
    uint8_t *clash = clash_identity(snap, snap_len, &clash_len);
    orbit_sched_view_t *c = orbit_sched_view_new();
    assert_non_null(c);
    OK(orbit_sched_view_load_snapshot(c, clash, clash_len, top, err, sizeof err));
    orbit_sched_view_stats(c, &st);
    assert_int_equal(st.identity_clashes, 1);
    free(clash);
    orbit_sched_view_destroy(&c);

    orbit_sched_view_destroy(&a);
    orbit_sched_view_destroy(&b);
    orbit_ledger_snapshot_free(snap, snap_len);
    orbit_ledger_close(&l);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Without sources: the network calls refuse, nothing crashes. */
static void test_no_sources(void **state)
{
    orbit_sched_view_t *v = *state;
    char err[128];
    bool changed = true;
    assert_int_equal(orbit_sched_view_sync(v, 10, err, sizeof err), ORBIT_EINVAL);
    assert_non_null(strstr(err, "not connected"));
    assert_int_equal(orbit_sched_view_poll(v, 0, 0, 10, &changed, err, sizeof err), ORBIT_EINVAL);
    assert_false(changed);
    assert_null(orbit_sched_view_connect("", err, sizeof err));
    assert_int_equal(orbit_sched_view_apply_commit(NULL, 1, 0, NULL), ORBIT_EINVAL);
    /* a commit without a commitment only moves the index */
    Orbit__Ledger__Proposal p = ORBIT__LEDGER__PROPOSAL__INIT;
    OK(orbit_sched_view_apply_commit(v, 1, 5, &p));
    assert_int_equal(orbit_sched_view_index(v), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_module_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gang_and_revocations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_accounting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_notes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_notes_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_note_not_confirmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_and_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capsule_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placement_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_module_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_others, setup, teardown),
        cmocka_unit_test(test_snapshot_equals_replay),
        cmocka_unit_test_setup_teardown(test_no_sources, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
