/* orbit_sched_view: a scheduler's picture of the cluster — the ledger's
 * commitments joined with the root view's node rows. */
#include "orbit_sched_view.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"
#include "ledger_hmap.h"
#include "orbit_err.h"
#include "orbit_hash.h"
#include "orbit_slab.h"
#include "orbit_wire.h"
#include "orbit_ledger_client.h"
#include "orbit_view_client.h"

/* A name of the ledger's vocabulary, with its NUL. */
#define NAME_CAP (ORBIT_LEDGER_NAME_MAX + 1)
/* "mission/module" */
#define MODKEY_CAP (2 * ORBIT_LEDGER_NAME_MAX + 2)
/* Watch items asked per reply: the most a replica returns in one reply. */
#define WATCH_MAX 9999

typedef struct sv_node sv_node_t;
typedef struct sv_module sv_module_t;
typedef struct sv_gang sv_gang_t;
typedef struct sv_quota sv_quota_t;
typedef struct sv_place sv_place_t;
typedef struct sv_bind sv_bind_t;

/* A node: telemetry (from rows) and ledger usage (from its placements).
 * What a pick reads of every sampled node comes first, so that the record's
 * first two cache lines (it is allocated on a line boundary) are all a
 * sample touches: the name, shard and labels follow. */
struct sv_node {
    orbit_sched_res_t capacity;
    orbit_sched_res_t committed;
    uint64_t placements;
    uint32_t gpu_capacity;
    uint32_t mem_pressure;
    Orbit__NodeStatus status;
    bool seen;    /* a row is held */
    bool fresh;   /* a row was applied since the last rows_done */
    uint64_t key; /* orbit_sched_node_key(name) */
    int64_t status_since_ms;
    char name[NAME_CAP];
    char shard[ORBIT_NAME_MAX];
    char labels[ORBIT_LABELS_MAX];
    orbit_capsule_t *health; /* the row's capsules, sorted by id */
    size_t nhealth;
    sv_place_t *head; /* its placements */
};

struct sv_module {
    char key[MODKEY_CAP]; /* "mission/module" */
    char mission[NAME_CAP];
    char module[NAME_CAP];
    Orbit__Ledger__ModuleSpec *spec; /* NULL: revoked or never adjusted */
    uint64_t index;
    uint64_t placed;
    uint64_t version;         /* stamped at each change a planner sees */
    int64_t others_ms;        /* entry time of the latest placement by another client */
    sv_place_t *head;         /* its placements */
    sv_module_t *prev, *next; /* every module */
};

struct sv_gang {
    char name[NAME_CAP];
    size_t members;
    sv_place_t *head;
};

struct sv_quota {
    char principal[NAME_CAP];
    bool granted;
    orbit_sched_res_t grant;
    orbit_sched_res_t used;
    int32_t priority;
    int64_t until_ms;
};

/* An active placement. node, module, gang and quota are resolved when it is
 * made; linking adds it to their lists and sums (and cannot fail). */
struct sv_place {
    char capsule[NAME_CAP];
    orbit_sched_res_t env;
    uint64_t index;
    bool own;
    sv_node_t *node;
    sv_module_t *mod;  /* NULL: the capsule id is not mission/module/index */
    sv_gang_t *gang;   /* NULL: not a gang member */
    sv_quota_t *quota; /* NULL: not charged */
    sv_bind_t *bind;   /* its capsule's identity, NULL: none */
    bool linked;
    sv_place_t *nprev, *nnext; /* on its node */
    sv_place_t *mprev, *mnext; /* of its module */
    sv_place_t *gprev, *gnext; /* of its gang */
};

/* An identity bound to a capsule: one record, found both ways (and from
 * the capsule's placement, while there is one). */
struct sv_bind {
    char identity[NAME_CAP];
    char capsule[NAME_CAP];
};

/* Entries found by a name they hold (a char array at off), on the ledger's
 * open-addressing map (ledger_hmap.h): a lookup compares 8-byte hashes in
 * one array and reads only the entry it returns. czmq's zhashx walked a
 * chain of items and their keys, each a cache miss: about half of applying
 * a watched placement and its bind went there. */
typedef struct {
    orbit_ledger_hmap_t *h;
    size_t off;
} sv_tab_t;

/* Everything the ledger decides (replaced whole by a snapshot). */
typedef struct {
    sv_tab_t places;                      /* capsule -> sv_place_t (owned) */
    sv_tab_t modules;                     /* "mission/module" -> sv_module_t (owned) */
    sv_module_t *mods;                    /* every module */
    sv_tab_t gangs;                       /* gang -> sv_gang_t (owned) */
    sv_tab_t quotas;                      /* principal -> sv_quota_t (owned) */
    sv_tab_t idents;                      /* identity -> sv_bind_t (owned) */
    sv_tab_t cap_idents;                  /* capsule -> sv_bind_t (the same records) */
    orbit_slab_t *place_slab, *bind_slab; /* where places and binds live */
} sv_ledger_t;

/* A COMMITTED proposal of this process, counted ahead of the watch. */
typedef struct {
    uint64_t index;
    uint8_t *packed; /* the packed proposal */
    size_t len;
} sv_note_t;

/* How a commitment is applied. */
typedef enum {
    MODE_WATCH,   /* in index order, from the watch */
    MODE_OWN,     /* ahead of the watch: placements of a placed capsule wait */
    MODE_CONFIRM, /* the watch reached a note: idempotent again */
} sv_mode_t;

struct orbit_sched_view {
    sv_node_t **nodes; /* dense, in order of appearance */
    size_t nnodes, capnodes;
    sv_tab_t node_index;     /* name -> sv_node_t (borrowed from nodes) */
    orbit_slab_t *node_slab; /* where nodes live */
    sv_ledger_t led;
    uint64_t index;
    int64_t time_ms;
    sv_note_t *notes; /* sorted by index */
    size_t nnotes, capnotes;
    bool needs_reload; /* an apply failed half-way: reload a snapshot */
    uint64_t telemetry_changes;
    char self[64]; /* this view's own proposer ("": unknown) */
    orbit_sched_view_stats_t st;
    /* network */
    orbit_ledger_client_t *lc;
    orbit_view_client_t *vc;
    orbit_arena_t *arena; /* watch and rows replies are decoded here */
    bool synced;
    bool refreshed;
    int64_t last_refresh_ms;
};

/* ------------------------------------------------------------ small helpers */

static void res_add(orbit_sched_res_t *a, const orbit_sched_res_t *b)
{
    a->cpu_m += b->cpu_m;
    a->mem += b->mem;
    a->gpus += b->gpus;
}

static void res_sub(orbit_sched_res_t *a, const orbit_sched_res_t *b)
{
    a->cpu_m -= b->cpu_m;
    a->mem -= b->mem;
    a->gpus -= b->gpus;
}

static bool res_zero(const orbit_sched_res_t *r)
{
    return !r->cpu_m && !r->mem && !r->gpus;
}

static orbit_sched_res_t res_of(const Orbit__Ledger__Resources *r)
{
    orbit_sched_res_t o = {0, 0, 0};
    if (r) {
        o.cpu_m = r->has_cpu_m ? r->cpu_m : 0;
        o.mem = r->has_mem ? r->mem : 0;
        o.gpus = r->has_gpus ? r->gpus : 0;
    }
    return o;
}

/* A name that fits the ledger's bound (what the ledger committed always
 * does; anything else is ignored rather than truncated into a collision). */
static bool name_ok(const char *s)
{
    return s && *s && strlen(s) <= ORBIT_LEDGER_NAME_MAX;
}

static bool str_set(const char *s)
{
    return s && *s;
}

/* Split capsule id mission/module/index into key "mission/module".
 * False when the id has another shape. */
static bool capsule_module(const char *capsule, char key[MODKEY_CAP])
{
    const char *a = strchr(capsule, '/');
    const char *b = a ? strchr(a + 1, '/') : NULL;
    if (!a || a == capsule || !b || b == a + 1 || !b[1] || (size_t)(b - capsule) >= MODKEY_CAP)
        return false;
    memcpy(key, capsule, (size_t)(b - capsule));
    key[b - capsule] = '\0';
    return true;
}

/* ------------------------------------------------------------ named tables */

static const char *tab_name(void *ctx, uint64_t v)
{
    return (const char *)(uintptr_t)v + *(const size_t *)ctx;
}

static int tab_init(sv_tab_t *t, size_t off)
{
    t->off = off;
    t->h = orbit_ledger_hmap_new();
    if (!t->h)
        return ORBIT_ENOMEM;
    orbit_ledger_hmap_set_huge(t->h); /* read at random */
    return ORBIT_OK;
}

/* Drop the table; fn (may be NULL) is called for every entry first. */
static void tab_close(sv_tab_t *t, void (*fn)(void *ctx, uint64_t v))
{
    if (t->h && fn)
        orbit_ledger_hmap_each(t->h, fn, NULL);
    orbit_ledger_hmap_destroy(&t->h);
}

static uint64_t tab_hash(const sv_tab_t *t, const void *e)
{
    return orbit_ledger_hmap_hash_str(t->h, (const char *)e + t->off);
}

static void *tab_get(const sv_tab_t *t, const char *name)
{
    if (!t->h || !name)
        return NULL;
    size_t off = t->off;
    return (void *)(uintptr_t)orbit_ledger_hmap_find_name(
        t->h, orbit_ledger_hmap_hash_str(t->h, name), name, tab_name, &off);
}

/* Add e, whose name is not in t yet. Errors: ORBIT_ENOMEM. */
static int tab_add(sv_tab_t *t, void *e)
{
    return orbit_ledger_hmap_add(t->h, tab_hash(t, e), (uint64_t)(uintptr_t)e);
}

/* Take e out of t (it is not freed). */
static void tab_del(sv_tab_t *t, void *e)
{
    orbit_ledger_hmap_remove(t->h, tab_hash(t, e), (uint64_t)(uintptr_t)e);
}

/* The entry of t named name (a char field of cap bytes at t's offset),
 * created zeroed (size bytes, from slab when given, else from the heap; on
 * cache lines of its own either way: a node's hot fields are its first
 * lines) when missing. NULL when name does not fit or out of memory. */
static void *tab_named_get(sv_tab_t *t, const char *name, size_t size, size_t cap,
                           orbit_slab_t *slab)
{
    void *e = tab_get(t, name);
    if (e)
        return e;
    size_t lines = (size + 63) / 64 * 64;
    if (strlen(name) >= cap)
        return NULL;
    if (slab)
        e = orbit_slab_alloc(slab);
    else if ((e = aligned_alloc(64, lines)))
        memset(e, 0, lines);
    if (!e)
        return NULL;
    memcpy((char *)e + t->off, name, strlen(name) + 1);
    if (tab_add(t, e) != ORBIT_OK) {
        if (slab)
            orbit_slab_free(slab, e);
        else
            free(e);
        return NULL;
    }
    return e;
}

#define TAB_GET(t, name, type, field, slab)                                                        \
    ((type *)tab_named_get((t), (name), sizeof(type), sizeof(((type *)0)->field), (slab)))

static void entry_free_v(void *ctx, uint64_t v)
{
    (void)ctx;
    free((void *)(uintptr_t)v);
}

static void module_free(sv_module_t *m)
{
    if (m && m->spec)
        orbit__ledger__module_spec__free_unpacked(m->spec, NULL);
    free(m);
}

static void module_free_v(void *ctx, uint64_t v)
{
    (void)ctx;
    module_free((sv_module_t *)(uintptr_t)v);
}

/* ------------------------------------------------------------ ledger state */

static void ledger_close(sv_ledger_t *s)
{
    /* placements first: nothing else points at them */
    tab_close(&s->places, NULL); /* their records go with the slabs */
    tab_close(&s->modules, module_free_v);
    tab_close(&s->gangs, entry_free_v);
    tab_close(&s->quotas, entry_free_v);
    tab_close(&s->cap_idents, NULL);
    tab_close(&s->idents, NULL);
    orbit_slab_destroy(&s->place_slab);
    orbit_slab_destroy(&s->bind_slab);
    s->mods = NULL;
}

static int ledger_init(sv_ledger_t *s)
{
    memset(s, 0, sizeof *s);
    if (tab_init(&s->places, offsetof(sv_place_t, capsule)) ||
        tab_init(&s->modules, offsetof(sv_module_t, key)) ||
        tab_init(&s->gangs, offsetof(sv_gang_t, name)) ||
        tab_init(&s->quotas, offsetof(sv_quota_t, principal)) ||
        tab_init(&s->idents, offsetof(sv_bind_t, identity)) ||
        tab_init(&s->cap_idents, offsetof(sv_bind_t, capsule)) ||
        !(s->place_slab = orbit_slab_new(sizeof(sv_place_t), 16)) ||
        !(s->bind_slab = orbit_slab_new(sizeof(sv_bind_t), 16))) {
        ledger_close(s);
        return ORBIT_ENOMEM;
    }
    return ORBIT_OK;
}

/* ------------------------------------------------------------ nodes */

uint64_t orbit_sched_node_key(const char *name)
{
    return orbit_fnv1a_str(ORBIT_FNV_OFFSET, name);
}

static sv_node_t *node_find(const orbit_sched_view_t *v, const char *name)
{
    return tab_get(&v->node_index, name);
}

static sv_node_t *node_get(orbit_sched_view_t *v, const char *name)
{
    sv_node_t *n = node_find(v, name);
    if (n)
        return n;
    if (v->nnodes == v->capnodes) {
        size_t cap = v->capnodes ? v->capnodes * 2 : 64;
        sv_node_t **a = realloc(v->nodes, cap * sizeof *a);
        if (!a)
            return NULL;
        v->nodes = a;
        v->capnodes = cap;
    }
    n = TAB_GET(&v->node_index, name, sv_node_t, name, v->node_slab);
    if (!n)
        return NULL;
    n->status = ORBIT__NODE_STATUS__UNREACHABLE;
    n->key = orbit_sched_node_key(n->name);
    v->nodes[v->nnodes++] = n;
    return n;
}

/* ------------------------------------------------------------ modules, gangs, quotas */

/* The last module version handed out, in this process. */
static uint64_t module_stamps;

/* A new version for m: its spec, a placement of it, a placement's identity
 * or health changed. Stamps come from one clock for the whole process, so a
 * version is never seen twice: not across a snapshot swap, and not by a
 * planner that is given another view. */
static void module_touch(sv_module_t *m)
{
    if (m)
        m->version = __atomic_add_fetch(&module_stamps, 1, __ATOMIC_RELAXED);
}

static sv_module_t *module_get(sv_ledger_t *s, const char *key)
{
    sv_module_t *m = tab_get(&s->modules, key);
    if (m)
        return m;
    const char *slash = strchr(key, '/');
    if (!slash || (size_t)(slash - key) >= NAME_CAP || strlen(slash + 1) >= NAME_CAP)
        return NULL;
    if (!(m = TAB_GET(&s->modules, key, sv_module_t, key, NULL)))
        return NULL;
    memcpy(m->mission, key, (size_t)(slash - key));
    snprintf(m->module, sizeof m->module, "%s", slash + 1);
    module_touch(m);
    m->next = s->mods;
    if (s->mods)
        s->mods->prev = m;
    s->mods = m;
    return m;
}

/* Drop module m when it has neither a spec nor a placement. */
static void module_gc(sv_ledger_t *s, sv_module_t *m)
{
    if (!m || m->spec || m->placed)
        return;
    if (m->prev)
        m->prev->next = m->next;
    else
        s->mods = m->next;
    if (m->next)
        m->next->prev = m->prev;
    tab_del(&s->modules, m);
    module_free(m);
}

static sv_gang_t *gang_get(sv_ledger_t *s, const char *name)
{
    return TAB_GET(&s->gangs, name, sv_gang_t, name, NULL);
}

static void gang_gc(sv_ledger_t *s, sv_gang_t *g)
{
    if (g && !g->members) {
        tab_del(&s->gangs, g);
        free(g);
    }
}

static sv_quota_t *quota_get(sv_ledger_t *s, const char *principal)
{
    return TAB_GET(&s->quotas, principal, sv_quota_t, principal, NULL);
}

/* Drop quota q when it has neither a grant nor usage. */
static void quota_gc(sv_ledger_t *s, sv_quota_t *q)
{
    if (q && !q->granted && res_zero(&q->used)) {
        tab_del(&s->quotas, q);
        free(q);
    }
}

/* ------------------------------------------------------------ placements */

/* Add p to its node, module, gang and principal. */
static void place_link(sv_place_t *p)
{
    sv_node_t *n = p->node;
    p->nprev = NULL;
    p->nnext = n->head;
    if (n->head)
        n->head->nprev = p;
    n->head = p;
    res_add(&n->committed, &p->env);
    n->placements++;
    if (p->mod) {
        p->mprev = NULL;
        p->mnext = p->mod->head;
        if (p->mod->head)
            p->mod->head->mprev = p;
        p->mod->head = p;
        p->mod->placed++;
        module_touch(p->mod);
    }
    if (p->gang) {
        p->gprev = NULL;
        p->gnext = p->gang->head;
        if (p->gang->head)
            p->gang->head->gprev = p;
        p->gang->head = p;
        p->gang->members++;
    }
    if (p->quota)
        res_add(&p->quota->used, &p->env);
    p->linked = true;
}

static void place_link_v(void *ctx, uint64_t v)
{
    (void)ctx;
    place_link((sv_place_t *)(uintptr_t)v);
}

static void place_unlink(sv_place_t *p)
{
    if (!p->linked)
        return;
    sv_node_t *n = p->node;
    if (p->nprev)
        p->nprev->nnext = p->nnext;
    else
        n->head = p->nnext;
    if (p->nnext)
        p->nnext->nprev = p->nprev;
    res_sub(&n->committed, &p->env);
    n->placements--;
    if (p->mod) {
        if (p->mprev)
            p->mprev->mnext = p->mnext;
        else
            p->mod->head = p->mnext;
        if (p->mnext)
            p->mnext->mprev = p->mprev;
        p->mod->placed--;
        module_touch(p->mod);
    }
    if (p->gang) {
        if (p->gprev)
            p->gprev->gnext = p->gnext;
        else
            p->gang->head = p->gnext;
        if (p->gnext)
            p->gnext->gprev = p->gprev;
        p->gang->members--;
    }
    if (p->quota)
        res_sub(&p->quota->used, &p->env);
    p->linked = false;
}

/* A new placement record in ledger state s, resolved but not linked (and
 * not in s->places). NULL when out of memory (records it created for
 * nothing are dropped again). */
static sv_place_t *place_make(orbit_sched_view_t *v, sv_ledger_t *s, const char *capsule,
                              const char *node, const char *principal, const char *gang,
                              orbit_sched_res_t env, uint64_t index, bool own)
{
    char key[MODKEY_CAP];
    sv_place_t *p = orbit_slab_alloc(s->place_slab);
    if (!p)
        return NULL;
    snprintf(p->capsule, sizeof p->capsule, "%s", capsule);
    p->env = env;
    p->index = index;
    p->own = own;
    p->node = node_get(v, node);
    bool ok = p->node != NULL;
    if (ok && capsule_module(capsule, key))
        ok = (p->mod = module_get(s, key)) != NULL;
    if (ok && str_set(gang))
        ok = (p->gang = gang_get(s, gang)) != NULL;
    if (ok && str_set(principal))
        ok = (p->quota = quota_get(s, principal)) != NULL;
    p->bind = tab_get(&s->cap_idents, capsule);
    if (!ok) {
        module_gc(s, p->mod);
        gang_gc(s, p->gang);
        quota_gc(s, p->quota);
        orbit_slab_free(s->place_slab, p);
        return NULL;
    }
    return p;
}

/* Unlink and free the placement of capsule (if any). */
static void place_remove(sv_ledger_t *s, sv_place_t *p)
{
    sv_module_t *m = p->mod;
    sv_gang_t *g = p->gang;
    sv_quota_t *q = p->quota;
    place_unlink(p);
    tab_del(&s->places, p);
    orbit_slab_free(s->place_slab, p);
    module_gc(s, m);
    gang_gc(s, g);
    quota_gc(s, q);
}

/* Place capsule (see sv_mode_t for an already placed capsule). */
static int place_add(orbit_sched_view_t *v, sv_mode_t mode, const char *capsule, const char *node,
                     const char *principal, const char *gang, orbit_sched_res_t env, uint64_t index)
{
    sv_ledger_t *s = &v->led;
    if (!name_ok(capsule) || !name_ok(node))
        return ORBIT_OK; /* never committed by a ledger: nothing to track */
    sv_place_t *old = tab_get(&s->places, capsule);
    if (old) {
        if (mode == MODE_OWN)
            return ORBIT_OK; /* the watch revokes the old one first */
        if (old->index == index) {
            if (old->own)
                module_touch(old->mod);
            old->own = false; /* confirmed */
            return ORBIT_OK;
        }
    }
    sv_place_t *p = place_make(v, s, capsule, node, principal, gang, env, index, mode == MODE_OWN);
    if (!p)
        return ORBIT_ENOMEM;
    /* linked before the old one goes, so that the records they share stay */
    place_link(p);
    if (old)
        place_remove(s, old); /* the ledger says this one holds now */
    if (tab_add(&s->places, p) != ORBIT_OK) {
        sv_module_t *m = p->mod;
        sv_gang_t *g = p->gang;
        sv_quota_t *q = p->quota;
        place_unlink(p);
        orbit_slab_free(s->place_slab, p);
        module_gc(s, m);
        gang_gc(s, g);
        quota_gc(s, q);
        return ORBIT_ENOMEM;
    }
    return ORBIT_OK;
}

static void place_revoke(sv_ledger_t *s, const char *capsule)
{
    sv_place_t *p = tab_get(&s->places, capsule);
    if (p)
        place_remove(s, p);
}

static void gang_revoke(sv_ledger_t *s, const char *gang)
{
    sv_gang_t *g = tab_get(&s->gangs, gang);
    /* the gang record goes with its last member */
    while (g && g->head) {
        bool last = g->members == 1;
        place_remove(s, g->head);
        if (last)
            break;
    }
}

/* ------------------------------------------------------------ identities */

/* Forget bind b (in both tables, or in one: removing what is not there
 * does nothing) and free it. The placement of its capsule, when it holds b,
 * loses its identity, and its module gets a new version. */
static void bind_drop(sv_ledger_t *s, sv_bind_t *b)
{
    sv_place_t *p = tab_get(&s->places, b->capsule);
    if (p && p->bind == b) {
        p->bind = NULL;
        module_touch(p->mod);
    }
    tab_del(&s->cap_idents, b);
    tab_del(&s->idents, b);
    orbit_slab_free(s->bind_slab, b);
}

static int ident_bind(sv_ledger_t *s, const char *identity, const char *capsule)
{
    if (!name_ok(identity) || !name_ok(capsule))
        return ORBIT_OK;
    sv_bind_t *cur = tab_get(&s->idents, identity);
    if (cur && !strcmp(cur->capsule, capsule))
        return ORBIT_OK;
    sv_bind_t *b = orbit_slab_alloc(s->bind_slab);
    if (!b)
        return ORBIT_ENOMEM;
    memcpy(b->identity, identity, strlen(identity) + 1); /* name_ok: they fit */
    memcpy(b->capsule, capsule, strlen(capsule) + 1);
    if (cur) /* the identity moves here */
        bind_drop(s, cur);
    sv_bind_t *prev = tab_get(&s->cap_idents, capsule);
    if (prev) /* the capsule had another identity */
        bind_drop(s, prev);
    if (tab_add(&s->idents, b) != ORBIT_OK) {
        orbit_slab_free(s->bind_slab, b);
        return ORBIT_ENOMEM;
    }
    if (tab_add(&s->cap_idents, b) != ORBIT_OK) {
        bind_drop(s, b);
        return ORBIT_ENOMEM;
    }
    sv_place_t *p = tab_get(&s->places, capsule);
    if (p) {
        p->bind = b;
        module_touch(p->mod);
    }
    return ORBIT_OK;
}

static void ident_unbind(sv_ledger_t *s, const char *identity)
{
    sv_bind_t *b = tab_get(&s->idents, identity);
    if (b)
        bind_drop(s, b);
}

/* ------------------------------------------------------------ module specs */

/* A malloc'd deep copy of spec (protobuf-c). NULL when out of memory. */
static Orbit__Ledger__ModuleSpec *spec_copy(const Orbit__Ledger__ModuleSpec *spec)
{
    return (Orbit__Ledger__ModuleSpec *)orbit_wire_copy(&spec->base);
}

/* The ledger's merge: each field present in a replaces the one of o (may
 * be NULL), resources as a whole. Malloc'd; NULL when out of memory. */
static Orbit__Ledger__ModuleSpec *spec_merge(const Orbit__Ledger__ModuleSpec *o,
                                             const Orbit__Ledger__ModuleSpec *a)
{
    Orbit__Ledger__ModuleSpec s;
    Orbit__Ledger__Resources res;
    orbit_ledger_module_merge(o, a, &s, &res);
    return spec_copy(&s);
}

static int module_adjust(sv_ledger_t *s, const Orbit__Ledger__ModuleAdjustment *m, uint64_t index)
{
    char key[MODKEY_CAP];
    if (!name_ok(m->mission) || !name_ok(m->module) || !m->adjustment)
        return ORBIT_OK;
    snprintf(key, sizeof key, "%s/%s", m->mission, m->module);
    sv_module_t *mod = module_get(s, key);
    if (!mod)
        return ORBIT_ENOMEM;
    Orbit__Ledger__ModuleSpec *spec = spec_merge(mod->spec, m->adjustment);
    if (!spec) {
        module_gc(s, mod);
        return ORBIT_ENOMEM;
    }
    if (mod->spec)
        orbit__ledger__module_spec__free_unpacked(mod->spec, NULL);
    mod->spec = spec;
    mod->index = index;
    module_touch(mod);
    return ORBIT_OK;
}

static void module_revoke(sv_ledger_t *s, const char *key, uint64_t index)
{
    sv_module_t *mod = tab_get(&s->modules, key);
    if (!mod)
        return;
    if (mod->spec)
        orbit__ledger__module_spec__free_unpacked(mod->spec, NULL);
    mod->spec = NULL;
    mod->index = index;
    module_touch(mod);
    module_gc(s, mod);
}

/* ------------------------------------------------------------ quotas */

static int quota_grant(sv_ledger_t *s, const Orbit__Ledger__QuotaGrant *g)
{
    if (!name_ok(g->principal))
        return ORBIT_OK;
    sv_quota_t *q = quota_get(s, g->principal);
    if (!q)
        return ORBIT_ENOMEM;
    q->granted = true;
    q->grant = res_of(g->resources);
    q->priority = g->has_priority ? g->priority : 0;
    q->until_ms = g->has_until_ms ? g->until_ms : 0;
    return ORBIT_OK;
}

static void quota_drop_grant(sv_ledger_t *s, const char *principal)
{
    sv_quota_t *q = tab_get(&s->quotas, principal);
    if (!q)
        return;
    q->granted = false;
    memset(&q->grant, 0, sizeof q->grant);
    q->priority = 0;
    q->until_ms = 0;
    quota_gc(s, q);
}

/* ------------------------------------------------------------ commitments */

static int apply_ref(orbit_sched_view_t *v, const Orbit__Ledger__Ref *r, bool expiry,
                     uint64_t index)
{
    sv_ledger_t *s = &v->led;
    if (!r || !r->key)
        return ORBIT_OK;
    switch (r->kind) {
    case ORBIT__LEDGER__REF_KIND__REF_PLACEMENT:
        if (!expiry)
            place_revoke(s, r->key);
        break;
    case ORBIT__LEDGER__REF_KIND__REF_GANG:
        if (!expiry)
            gang_revoke(s, r->key);
        break;
    case ORBIT__LEDGER__REF_KIND__REF_QUOTA: quota_drop_grant(s, r->key); break;
    case ORBIT__LEDGER__REF_KIND__REF_IDENTITY:
        if (!expiry)
            ident_unbind(s, r->key);
        break;
    case ORBIT__LEDGER__REF_KIND__REF_MODULE:
        if (!expiry)
            module_revoke(s, r->key, index);
        break;
    default: break; /* leases: not tracked */
    }
    return ORBIT_OK;
}

static int apply_gang(orbit_sched_view_t *v, sv_mode_t mode, const Orbit__Ledger__GangPlacement *g,
                      uint64_t index)
{
    int rc = ORBIT_OK;
    if (!name_ok(g->gang))
        return ORBIT_OK;
    for (size_t i = 0; i < g->n_members && !rc; i++) {
        const Orbit__Ledger__GangMember *m = g->members[i];
        rc = place_add(v, mode, m->capsule, m->node, g->principal, g->gang, res_of(m->envelope),
                       index);
    }
    return rc;
}

static int apply_commitment(orbit_sched_view_t *v, sv_mode_t mode, const Orbit__Ledger__Proposal *p,
                            uint64_t index)
{
    const Orbit__Ledger__Commitment *c = p ? p->commitment : NULL;
    if (!c)
        return ORBIT_OK;
    switch (c->kind_case) {
    case ORBIT__LEDGER__COMMITMENT__KIND_QUOTA_GRANT: return quota_grant(&v->led, c->quota_grant);
    case ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT: {
        const Orbit__Ledger__Placement *m = c->placement;
        return place_add(v, mode, m->capsule, m->node, m->principal, NULL, res_of(m->envelope),
                         index);
    }
    case ORBIT__LEDGER__COMMITMENT__KIND_GANG_PLACEMENT:
        return apply_gang(v, mode, c->gang_placement, index);
    case ORBIT__LEDGER__COMMITMENT__KIND_IDENTITY_BIND:
        return ident_bind(&v->led, c->identity_bind->identity, c->identity_bind->capsule);
    case ORBIT__LEDGER__COMMITMENT__KIND_MODULE_ADJUSTMENT:
        return module_adjust(&v->led, c->module_adjustment, index);
    case ORBIT__LEDGER__COMMITMENT__KIND_REVOCATION:
        return apply_ref(v, c->revocation ? c->revocation->what : NULL, false, index);
    case ORBIT__LEDGER__COMMITMENT__KIND_EXPIRY:
        return apply_ref(v, c->expiry ? c->expiry->what : NULL, true, index);
    default: return ORBIT_OK; /* leases, topology: only the index moves */
    }
}

/* Placements a confirmed note made that the watch's commitment did not
 * confirm (the caller noted something else at that index) go. */
static void drop_unconfirmed(orbit_sched_view_t *v, const sv_note_t *n)
{
    Orbit__Ledger__Proposal *p = orbit__ledger__proposal__unpack(NULL, n->len, n->packed);
    const Orbit__Ledger__Commitment *c = p ? p->commitment : NULL;
    if (!c)
        goto out;
    if (c->kind_case == ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT) {
        sv_place_t *pl = tab_get(&v->led.places, c->placement->capsule);
        if (pl && pl->own && pl->index == n->index)
            place_remove(&v->led, pl);
    } else if (c->kind_case == ORBIT__LEDGER__COMMITMENT__KIND_GANG_PLACEMENT) {
        for (size_t i = 0; i < c->gang_placement->n_members; i++) {
            sv_place_t *pl = tab_get(&v->led.places, c->gang_placement->members[i]->capsule);
            if (pl && pl->own && pl->index == n->index)
                place_remove(&v->led, pl);
        }
    }
out:
    if (p)
        orbit__ledger__proposal__free_unpacked(p, NULL);
}

/* ------------------------------------------------------------ own notes */

static size_t note_find(const orbit_sched_view_t *v, uint64_t index, bool *found)
{
    size_t lo = 0, hi = v->nnotes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->notes[mid].index < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < v->nnotes && v->notes[lo].index == index;
    return lo;
}

static void note_drop(orbit_sched_view_t *v, size_t i)
{
    free(v->notes[i].packed);
    memmove(v->notes + i, v->notes + i + 1, (v->nnotes - i - 1) * sizeof *v->notes);
    v->nnotes--;
}

/* ------------------------------------------------------------ lifecycle */

orbit_sched_view_t *orbit_sched_view_new(void)
{
    orbit_sched_view_t *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->arena = orbit_arena_new(1 << 20);
    v->node_slab = orbit_slab_new(sizeof(sv_node_t), 64);
    if (tab_init(&v->node_index, offsetof(sv_node_t, name)) || !v->arena || !v->node_slab ||
        ledger_init(&v->led) != ORBIT_OK) {
        tab_close(&v->node_index, NULL);
        orbit_slab_destroy(&v->node_slab);
        orbit_arena_destroy(&v->arena);
        free(v);
        return NULL;
    }
    return v;
}

void orbit_sched_view_destroy(orbit_sched_view_t **pv)
{
    if (!pv || !*pv)
        return;
    orbit_sched_view_t *v = *pv;
    ledger_close(&v->led);
    for (size_t i = 0; i < v->nnodes; i++)
        free(v->nodes[i]->health);
    free(v->nodes);
    tab_close(&v->node_index, NULL);
    orbit_slab_destroy(&v->node_slab); /* the nodes */
    for (size_t i = 0; i < v->nnotes; i++)
        free(v->notes[i].packed);
    free(v->notes);
    orbit_ledger_client_destroy(&v->lc);
    orbit_view_client_destroy(&v->vc);
    orbit_arena_destroy(&v->arena);
    free(v);
    *pv = NULL;
}

/* ------------------------------------------------------------ applying */

void orbit_sched_view_set_self(orbit_sched_view_t *v, const char *self)
{
    if (v)
        snprintf(v->self, sizeof v->self, "%s", self && strlen(self) < sizeof v->self ? self : "");
}

/* Whether p was proposed by another client than this view's own. */
static bool is_foreign(const orbit_sched_view_t *v, const Orbit__Ledger__Proposal *p)
{
    size_t n = strlen(v->self);
    if (!n || !p || !p->client_id)
        return false;
    return strncmp(p->client_id, v->self, n) != 0 ||
           (p->client_id[n] != '\0' && p->client_id[n] != '-');
}

/* Placement (or gang placement) p, applied, came from another client at
 * time_ms: its module says so (a gang's members share one module). */
static void stamp_others(orbit_sched_view_t *v, const Orbit__Ledger__Proposal *p, int64_t time_ms)
{
    const Orbit__Ledger__Commitment *c = p->commitment;
    const char *capsule = NULL;
    if (c && c->kind_case == ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT)
        capsule = c->placement->capsule;
    else if (c && c->kind_case == ORBIT__LEDGER__COMMITMENT__KIND_GANG_PLACEMENT &&
             c->gang_placement->n_members)
        capsule = c->gang_placement->members[0]->capsule;
    char key[MODKEY_CAP];
    sv_module_t *m;
    if (capsule && capsule_module(capsule, key) && (m = tab_get(&v->led.modules, key)))
        m->others_ms = time_ms;
}

int orbit_sched_view_apply_commit(orbit_sched_view_t *v, uint64_t index, int64_t time_ms,
                                  const Orbit__Ledger__Proposal *p)
{
    if (!v)
        return ORBIT_EINVAL;
    if (index <= v->index) {
        v->st.stale_commits++;
        return ORBIT_OK;
    }
    if (index > v->index + 1)
        return ORBIT_EAGAIN;
    bool noted = false;
    size_t at = note_find(v, index, &noted);
    int rc = apply_commitment(v, noted ? MODE_CONFIRM : MODE_WATCH, p, index);
    if (rc) {
        v->needs_reload = true; /* part of it may be applied */
        return rc;
    }
    if (!noted && is_foreign(v, p))
        stamp_others(v, p, time_ms);
    if (noted) {
        drop_unconfirmed(v, &v->notes[at]);
        note_drop(v, at);
        v->st.own_confirmed++;
    }
    v->index = index;
    v->time_ms = time_ms;
    v->st.commits_applied++;
    return ORBIT_OK;
}

int orbit_sched_view_note_own(orbit_sched_view_t *v, uint64_t index,
                              const Orbit__Ledger__Proposal *p)
{
    if (!v || !p)
        return ORBIT_EINVAL;
    if (index <= v->index)
        return ORBIT_OK;
    bool found = false;
    size_t at = note_find(v, index, &found);
    if (found)
        return ORBIT_OK; /* noted already */
    if (v->nnotes == v->capnotes) {
        size_t cap = v->capnotes ? v->capnotes * 2 : 16;
        sv_note_t *a = realloc(v->notes, cap * sizeof *a);
        if (!a)
            return ORBIT_ENOMEM;
        v->notes = a;
        v->capnotes = cap;
    }
    sv_note_t n = {index, NULL, orbit__ledger__proposal__get_packed_size(p)};
    n.packed = malloc(n.len ? n.len : 1);
    if (!n.packed)
        return ORBIT_ENOMEM;
    orbit__ledger__proposal__pack(p, n.packed);
    int rc = apply_commitment(v, MODE_OWN, p, index);
    if (rc) {
        free(n.packed);
        v->needs_reload = true;
        return rc;
    }
    memmove(v->notes + at + 1, v->notes + at, (v->nnotes - at) * sizeof *v->notes);
    v->notes[at] = n;
    v->nnotes++;
    v->st.own_noted++;
    return ORBIT_OK;
}

/* ------------------------------------------------------------ snapshots */

typedef struct {
    orbit_sched_view_t *v;
    sv_ledger_t *s;
} load_t;

static int load_placement(void *ctx, const orbit_ledger_placement_t *lp)
{
    load_t *ld = ctx;
    orbit_sched_res_t env = {lp->envelope.cpu_m, lp->envelope.mem, lp->envelope.gpus};
    sv_place_t *p = place_make(ld->v, ld->s, lp->capsule, lp->node, lp->principal, lp->gang, env,
                               lp->index, false);
    if (!p)
        return ORBIT_ENOMEM;
    if (tab_add(&ld->s->places, p) != ORBIT_OK) {
        orbit_slab_free(ld->s->place_slab, p);
        return ORBIT_ENOMEM;
    }
    return 0;
}

static int load_module(void *ctx, const char *mission, const char *module,
                       const Orbit__Ledger__ModuleSpec *spec, uint64_t epoch, uint64_t index)
{
    load_t *ld = ctx;
    char key[MODKEY_CAP];
    (void)epoch;
    snprintf(key, sizeof key, "%s/%s", mission, module);
    sv_module_t *m = module_get(ld->s, key);
    if (!m || !(m->spec = spec_copy(spec)))
        return ORBIT_ENOMEM;
    m->index = index;
    return 0;
}

static int load_quota(void *ctx, const char *principal, const orbit_ledger_quota_t *lq)
{
    load_t *ld = ctx;
    if (!lq->granted)
        return 0; /* usage comes with the placements */
    sv_quota_t *q = quota_get(ld->s, principal);
    if (!q)
        return ORBIT_ENOMEM;
    q->granted = true;
    q->grant = (orbit_sched_res_t){lq->grant.cpu_m, lq->grant.mem, lq->grant.gpus};
    q->priority = lq->priority;
    q->until_ms = lq->until_ms;
    return 0;
}

static int load_identity(void *ctx, const char *identity, const char *capsule)
{
    load_t *ld = ctx;
    const sv_bind_t *other = tab_get(&ld->s->cap_idents, capsule);
    if (other && strcmp(other->identity, identity))
        ld->v->st.identity_clashes++;
    return ident_bind(ld->s, identity, capsule);
}

/* Fill s from ledger l. Modules that only have placements get the
 * last-changed index of their key (their revocation). */
static int load_ledger(orbit_sched_view_t *v, orbit_ledger_t *l, sv_ledger_t *s)
{
    load_t ld = {v, s};
    int rc = orbit_ledger_each_module(l, load_module, &ld);
    if (!rc)
        rc = orbit_ledger_each_quota(l, load_quota, &ld);
    if (!rc)
        rc = orbit_ledger_each_identity(l, load_identity, &ld);
    if (!rc)
        rc = orbit_ledger_each_placement(l, load_placement, &ld);
    for (sv_module_t *m = s->mods; m && !rc; m = m->next) {
        char key[ORBIT_LEDGER_KEY_MAX + 1];
        if (m->spec)
            continue;
        snprintf(key, sizeof key, "module/%s", m->key);
        rc = orbit_ledger_key_index(l, key, &m->index);
    }
    return rc;
}

static int write_file(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return ORBIT_EIO;
    int rc = ORBIT_OK;
    while (n && !rc) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = ORBIT_EIO;
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    if (close(fd) != 0 && !rc)
        rc = ORBIT_EIO;
    return rc;
}

/* Remove the files orbit_ledger_open leaves in dir, then dir. */
static void remove_dir(const char *dir)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", "open.boot"};
    char path[4096];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, files[i]) < sizeof path)
            unlink(path);
    rmdir(dir);
}

int orbit_sched_view_load_snapshot(orbit_sched_view_t *v, const uint8_t *file, size_t len,
                                   uint64_t ledger_index, char *err, size_t errlen)
{
    char dir[4096], path[4200], lerr[256] = "";
    orbit_ledger_t *l = NULL;
    sv_ledger_t s;
    if (err && errlen)
        err[0] = '\0';
    if (!v || (!file && len))
        return ORBIT_EINVAL;
    if (!len) {
        orbit_errf(err, errlen, "sched view: empty snapshot");
        return ORBIT_EINVAL;
    }
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if ((size_t)snprintf(dir, sizeof dir, "%s/orbit-sched-view-XXXXXX", tmp) >= sizeof dir ||
        !mkdtemp(dir)) {
        orbit_errf(err, errlen, "sched view: cannot make a directory in %s: %s", tmp,
                   strerror(errno));
        return ORBIT_EIO;
    }
    if (ledger_init(&s) != ORBIT_OK) {
        rmdir(dir);
        orbit_errf(err, errlen, "sched view: out of memory");
        return ORBIT_ENOMEM;
    }
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int rc = write_file(path, file, len);
    if (rc) {
        orbit_errf(err, errlen, "sched view: cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    rc = orbit_ledger_open(dir, &l, lerr, sizeof lerr);
    if (rc) {
        orbit_errf(err, errlen, "sched view: not a ledger snapshot: %s", lerr);
        rc = rc == ORBIT_ENOMEM ? ORBIT_ENOMEM : rc == ORBIT_EIO ? ORBIT_EIO : ORBIT_EINVAL;
        goto out;
    }
    if (orbit_ledger_index(l) != ledger_index) {
        orbit_errf(err, errlen,
                   "sched view: the snapshot holds ledger index %" PRIu64 ", not %" PRIu64,
                   orbit_ledger_index(l), ledger_index);
        rc = ORBIT_EINVAL;
        goto out;
    }
    rc = load_ledger(v, l, &s);
    if (rc) {
        orbit_errf(err, errlen, "sched view: cannot read the snapshot: %s", orbit_strerror(rc));
        rc = rc == ORBIT_ENOMEM ? ORBIT_ENOMEM : rc == ORBIT_ECORRUPT ? ORBIT_EINVAL : ORBIT_EIO;
        goto out;
    }
    /* Swap: nodes keep their telemetry, their usage is that of s. */
    for (size_t i = 0; i < v->nnodes; i++) {
        sv_node_t *n = v->nodes[i];
        n->head = NULL;
        n->placements = 0;
        memset(&n->committed, 0, sizeof n->committed);
    }
    ledger_close(&v->led);
    v->led = s;
    memset(&s, 0, sizeof s);
    orbit_ledger_hmap_each(v->led.places.h, place_link_v, NULL);
    v->index = ledger_index;
    v->time_ms = orbit_ledger_time(l);
    v->needs_reload = false;
    v->st.snapshots_loaded++;
    /* Own notes the snapshot holds are confirmed; later ones count again. */
    while (v->nnotes && v->notes[0].index <= ledger_index) {
        note_drop(v, 0);
        v->st.own_confirmed++;
    }
    for (size_t i = 0; i < v->nnotes; i++) {
        Orbit__Ledger__Proposal *p =
            orbit__ledger__proposal__unpack(NULL, v->notes[i].len, v->notes[i].packed);
        int arc = p ? apply_commitment(v, MODE_OWN, p, v->notes[i].index) : ORBIT_ENOMEM;
        if (p)
            orbit__ledger__proposal__free_unpacked(p, NULL);
        if (arc)
            v->needs_reload = true; /* counted short: the next poll reloads */
    }
out:
    ledger_close(&s);
    orbit_ledger_close(&l);
    remove_dir(dir);
    return rc;
}

/* ------------------------------------------------------------ telemetry */

static int cmp_capsule(const void *a, const void *b)
{
    return strcmp(((const orbit_capsule_t *)a)->id, ((const orbit_capsule_t *)b)->id);
}

/* Node n's capsule health goes from a (na, sorted by id) to b (nb, the
 * same): the module of each capsule placed on n whose entry came, went or
 * changed has a new version. Only those: a refresh in a busy cluster
 * changes some capsules on most nodes, and versioning every module placed
 * there would leave no module settled. */
static void health_touch(orbit_sched_view_t *v, const sv_node_t *n, const orbit_capsule_t *a,
                         size_t na, const orbit_capsule_t *b, size_t nb)
{
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i].id, b[j].id);
        const char *id = c <= 0 ? a[i].id : b[j].id;
        bool same = c == 0 && !memcmp(&a[i], &b[j], sizeof *a);
        i += c <= 0;
        j += c >= 0;
        if (same)
            continue;
        const sv_place_t *p = tab_get(&v->led.places, id);
        if (p && p->node == n)
            module_touch(p->mod);
    }
}

/* The row's capsules as a sorted array (*out NULL when none). Entries with
 * an id that does not fit, or a state out of range, are left out. */
static int health_of(const Orbit__NodeRow *row, orbit_capsule_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!row->n_capsules)
        return ORBIT_OK;
    orbit_capsule_t *a = calloc(row->n_capsules, sizeof *a);
    if (!a)
        return ORBIT_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < row->n_capsules; i++) {
        const Orbit__CapsuleHealth *h = row->capsules[i];
        if (!h || !h->id || !*h->id || strlen(h->id) >= sizeof a[k].id || (int)h->state < 0 ||
            (int)h->state >= ORBIT_CAPSULE_STATE_COUNT)
            continue;
        snprintf(a[k].id, sizeof a[k].id, "%s", h->id);
        a[k].state = (orbit_capsule_state_t)h->state;
        a[k].exit_code = h->has_exit_code ? h->exit_code : 0;
        snprintf(a[k].reason, sizeof a[k].reason, "%s", h->reason ? h->reason : "");
        a[k].since_ms = h->has_since_ms ? h->since_ms : 0;
        k++;
    }
    qsort(a, k, sizeof *a, cmp_capsule);
    *out = a;
    *n = k;
    return ORBIT_OK;
}

/* Labels as packed "k=v\n" (those that fit). */
static void labels_of(const Orbit__NodeRow *row, char out[ORBIT_LABELS_MAX])
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < row->n_labels; i++) {
        const Orbit__Label *lb = row->labels[i];
        if (!lb || !lb->key || !lb->value)
            continue;
        size_t need = strlen(lb->key) + strlen(lb->value) + 2;
        if (off + need >= ORBIT_LABELS_MAX)
            break;
        off += (size_t)snprintf(out + off, ORBIT_LABELS_MAX - off, "%s=%s\n", lb->key, lb->value);
    }
}

static void set_status(sv_node_t *n, Orbit__NodeStatus st, int64_t now_ms, bool *changed)
{
    if (n->status != st) {
        n->status = st;
        n->status_since_ms = now_ms;
        *changed = true;
    }
}

int orbit_sched_view_apply_row(orbit_sched_view_t *v, const Orbit__NodeRow *row, int64_t now_ms)
{
    char labels[ORBIT_LABELS_MAX];
    orbit_capsule_t *health = NULL;
    size_t nhealth = 0;
    if (!v || !row || !row->node || !*row->node || strlen(row->node) > ORBIT_LEDGER_NAME_MAX ||
        (int)row->status < 0 || (int)row->status > ORBIT__NODE_STATUS__UNREACHABLE)
        return ORBIT_EINVAL;
    if (health_of(row, &health, &nhealth) != ORBIT_OK)
        return ORBIT_ENOMEM;
    sv_node_t *n = node_get(v, row->node);
    if (!n) {
        free(health);
        return ORBIT_ENOMEM;
    }
    bool changed = !n->seen;
    bool health_changed =
        nhealth != n->nhealth || (nhealth && memcmp(health, n->health, nhealth * sizeof *health));
    orbit_sched_res_t cap = {row->has_cpu_capacity_m ? row->cpu_capacity_m : 0,
                             row->has_mem_capacity ? row->mem_capacity : 0,
                             row->has_gpu_healthy ? row->gpu_healthy : 0};
    uint32_t gpu_cap = row->has_gpu_capacity ? row->gpu_capacity : 0;
    uint32_t pressure = row->has_mem_pressure ? row->mem_pressure : 0;
    labels_of(row, labels);
    changed |= memcmp(&cap, &n->capacity, sizeof cap) != 0 || gpu_cap != n->gpu_capacity ||
               pressure != n->mem_pressure || strcmp(labels, n->labels) != 0 ||
               strncmp(row->shard ? row->shard : "", n->shard, sizeof n->shard) != 0 ||
               health_changed;
    set_status(n, row->status, now_ms, &changed);
    n->seen = true;
    n->fresh = true;
    n->capacity = cap;
    n->gpu_capacity = gpu_cap;
    n->mem_pressure = pressure;
    memcpy(n->labels, labels, sizeof labels);
    snprintf(n->shard, sizeof n->shard, "%s", row->shard ? row->shard : "");
    if (health_changed)
        health_touch(v, n, n->health, n->nhealth, health, nhealth);
    free(n->health);
    n->health = health;
    n->nhealth = nhealth;
    if (changed)
        v->telemetry_changes++;
    v->st.rows_applied++;
    return ORBIT_OK;
}

void orbit_sched_view_rows_done(orbit_sched_view_t *v, int64_t now_ms)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->nnodes; i++) {
        sv_node_t *n = v->nodes[i];
        if (n->seen && !n->fresh) {
            bool status_changed = false;
            set_status(n, ORBIT__NODE_STATUS__UNREACHABLE, now_ms, &status_changed);
            n->seen = false;
            n->shard[0] = '\0';
            n->labels[0] = '\0';
            memset(&n->capacity, 0, sizeof n->capacity);
            n->gpu_capacity = 0;
            n->mem_pressure = 0;
            health_touch(v, n, n->health, n->nhealth, NULL, 0);
            free(n->health);
            n->health = NULL;
            n->nhealth = 0;
            v->telemetry_changes++;
        }
        n->fresh = false;
    }
}

uint64_t orbit_sched_view_index(const orbit_sched_view_t *v)
{
    return v ? v->index : 0;
}

int64_t orbit_sched_view_time(const orbit_sched_view_t *v)
{
    return v ? v->time_ms : 0;
}

/* ------------------------------------------------------------ queries */

size_t orbit_sched_view_node_count(const orbit_sched_view_t *v)
{
    return v ? v->nnodes : 0;
}

static void node_out(const sv_node_t *n, orbit_sched_node_t *out)
{
    out->name = n->name;
    out->key = n->key;
    out->seen = n->seen;
    out->status = n->seen ? n->status : ORBIT__NODE_STATUS__UNREACHABLE;
    out->status_since_ms = n->status_since_ms;
    out->shard = n->shard;
    out->labels = n->labels;
    out->capacity = n->capacity;
    out->gpu_capacity = n->gpu_capacity;
    out->mem_pressure = n->mem_pressure;
    out->committed = n->committed;
    out->placements = n->placements;
}

int orbit_sched_view_node_at(const orbit_sched_view_t *v, size_t i, orbit_sched_node_t *out)
{
    if (!v || !out)
        return ORBIT_EINVAL;
    if (i >= v->nnodes)
        return ORBIT_ENOTFOUND;
    node_out(v->nodes[i], out);
    return ORBIT_OK;
}

int orbit_sched_view_node(const orbit_sched_view_t *v, const char *name, orbit_sched_node_t *out)
{
    if (!v || !name || !out)
        return ORBIT_EINVAL;
    const sv_node_t *n = node_find(v, name);
    if (!n)
        return ORBIT_ENOTFOUND;
    node_out(n, out);
    return ORBIT_OK;
}

static void module_out(const sv_module_t *m, orbit_sched_module_t *out)
{
    out->mission = m->mission;
    out->module = m->module;
    out->spec = m->spec;
    out->index = m->index;
    out->placed = m->placed;
    out->version = m->version;
    out->others_ms = m->others_ms;
}

int orbit_sched_view_each_module(const orbit_sched_view_t *v, orbit_sched_module_fn fn, void *arg)
{
    if (!v || !fn)
        return ORBIT_EINVAL;
    for (const sv_module_t *m = v->led.mods; m; m = m->next) {
        orbit_sched_module_t out;
        module_out(m, &out);
        int rc = fn(arg, &out);
        if (rc)
            return rc;
    }
    return ORBIT_OK;
}

int orbit_sched_view_module(const orbit_sched_view_t *v, const char *mission, const char *module,
                            orbit_sched_module_t *out)
{
    char key[MODKEY_CAP];
    if (!v || !mission || !module || !out)
        return ORBIT_EINVAL;
    if ((size_t)snprintf(key, sizeof key, "%s/%s", mission, module) >= sizeof key)
        return ORBIT_ENOTFOUND;
    const sv_module_t *m = tab_get(&v->led.modules, key);
    if (!m)
        return ORBIT_ENOTFOUND;
    module_out(m, out);
    return ORBIT_OK;
}

/* bsearch: a capsule id against an entry of a node's report. */
static int cmp_id_capsule(const void *id, const void *c)
{
    return strcmp(id, ((const orbit_capsule_t *)c)->id);
}

/* p's capsule in its node's report (sorted by id), NULL: not there. */
static const orbit_capsule_t *place_health(const sv_place_t *p)
{
    const sv_node_t *n = p->node;
    return n->nhealth
               ? bsearch(p->capsule, n->health, n->nhealth, sizeof *n->health, cmp_id_capsule)
               : NULL;
}

static void place_out(const sv_place_t *p, orbit_sched_placement_t *out)
{
    out->capsule = p->capsule;
    out->node = p->node->name;
    out->principal = p->quota ? p->quota->principal : "";
    out->gang = p->gang ? p->gang->name : "";
    out->envelope = p->env;
    out->index = p->index;
    out->identity = p->bind ? p->bind->identity : "";
    out->own = p->own;
    out->health = place_health(p);
}

int orbit_sched_view_placement(const orbit_sched_view_t *v, const char *capsule,
                               orbit_sched_placement_t *out)
{
    if (!v || !capsule || !out)
        return ORBIT_EINVAL;
    const sv_place_t *p = tab_get(&v->led.places, capsule);
    if (!p)
        return ORBIT_ENOTFOUND;
    place_out(p, out);
    return ORBIT_OK;
}

int orbit_sched_view_each_module_placement(const orbit_sched_view_t *v, const char *mission,
                                           const char *module, orbit_sched_placement_fn fn,
                                           void *arg)
{
    char key[MODKEY_CAP];
    if (!v || !mission || !module || !fn)
        return ORBIT_EINVAL;
    if ((size_t)snprintf(key, sizeof key, "%s/%s", mission, module) >= sizeof key)
        return ORBIT_OK;
    const sv_module_t *m = tab_get(&v->led.modules, key);
    for (const sv_place_t *p = m ? m->head : NULL; p; p = p->mnext) {
        orbit_sched_placement_t out;
        place_out(p, &out);
        int rc = fn(arg, &out);
        if (rc)
            return rc;
    }
    return ORBIT_OK;
}

static int each_on_node(const sv_node_t *n, orbit_sched_placement_fn fn, void *arg)
{
    for (const sv_place_t *p = n->head; p; p = p->nnext) {
        orbit_sched_placement_t out;
        place_out(p, &out);
        int rc = fn(arg, &out);
        if (rc)
            return rc;
    }
    return ORBIT_OK;
}

int orbit_sched_view_each_node_placement(const orbit_sched_view_t *v, const char *node,
                                         orbit_sched_placement_fn fn, void *arg)
{
    if (!v || !node || !fn)
        return ORBIT_EINVAL;
    const sv_node_t *n = node_find(v, node);
    return n ? each_on_node(n, fn, arg) : ORBIT_OK;
}

int orbit_sched_view_each_placement(const orbit_sched_view_t *v, orbit_sched_placement_fn fn,
                                    void *arg)
{
    if (!v || !fn)
        return ORBIT_EINVAL;
    for (size_t i = 0; i < v->nnodes; i++) {
        int rc = each_on_node(v->nodes[i], fn, arg);
        if (rc)
            return rc;
    }
    return ORBIT_OK;
}

int orbit_sched_view_quota(const orbit_sched_view_t *v, const char *principal,
                           orbit_sched_quota_t *out)
{
    if (!v || !principal || !out)
        return ORBIT_EINVAL;
    const sv_quota_t *q = tab_get(&v->led.quotas, principal);
    if (!q)
        return ORBIT_ENOTFOUND;
    out->granted = q->granted;
    out->grant = q->grant;
    out->used = q->used;
    out->priority = q->priority;
    out->until_ms = q->until_ms;
    return ORBIT_OK;
}

int orbit_sched_view_capsule_health(const orbit_sched_view_t *v, const char *capsule,
                                    orbit_capsule_t *out)
{
    if (!v || !capsule || !out)
        return ORBIT_EINVAL;
    const sv_place_t *p = tab_get(&v->led.places, capsule);
    const orbit_capsule_t *h = p ? place_health(p) : NULL;
    if (!h)
        return ORBIT_ENOTFOUND;
    *out = *h;
    return ORBIT_OK;
}

void orbit_sched_view_stats(const orbit_sched_view_t *v, orbit_sched_view_stats_t *out)
{
    if (!out)
        return;
    if (!v) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = v->st;
}

/* ------------------------------------------------------------ network */

orbit_sched_view_t *orbit_sched_view_connect(const char *roots, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!roots || !*roots) {
        orbit_errf(err, errlen, "sched view: no root endpoints");
        return NULL;
    }
    orbit_sched_view_t *v = orbit_sched_view_new();
    if (!v) {
        orbit_errf(err, errlen, "sched view: out of memory");
        return NULL;
    }
    v->lc = orbit_ledger_client_new(roots, NULL, err, errlen);
    if (v->lc)
        v->vc = orbit_view_client_new(roots, err, errlen);
    if (!v->lc || !v->vc) {
        orbit_sched_view_destroy(&v);
        return NULL;
    }
    return v;
}

/* Milliseconds left until deadline; ORBIT_ETIMEDOUT when none. */
static int left_ms(int64_t deadline, int *ms)
{
    int64_t left = deadline - zclock_mono();
    if (left <= 0)
        return ORBIT_ETIMEDOUT;
    *ms = left > INT32_MAX ? INT32_MAX : (int)left;
    return ORBIT_OK;
}

/* One ledger request, its reply in *rep decoded with alloc (NULL: malloc;
 * free it as orbit_ledger_client_call_in says). A reply carrying an error
 * is ORBIT_EIO (reason in err). */
static int ledger_call(orbit_sched_view_t *v, Orbit__Ledger__Request *req, int64_t deadline,
                       const char *what, ProtobufCAllocator *alloc, Orbit__Ledger__Reply **rep,
                       char *err, size_t errlen)
{
    int ms = 0;
    *rep = NULL;
    int rc = left_ms(deadline, &ms);
    if (!rc)
        rc = orbit_ledger_client_call_in(v->lc, req, ms, alloc, rep);
    if (rc) {
        orbit_errf(err, errlen, "sched view: %s: %s", what, orbit_strerror(rc));
        return rc;
    }
    if ((*rep)->error) {
        orbit_errf(err, errlen, "sched view: %s: %s", what, (*rep)->error);
        orbit__ledger__reply__free_unpacked(*rep, alloc);
        *rep = NULL;
        return ORBIT_EIO;
    }
    return ORBIT_OK;
}

static int fetch_snapshot(orbit_sched_view_t *v, int64_t deadline, char *err, size_t errlen)
{
    Orbit__Ledger__SnapshotRequest sr = ORBIT__LEDGER__SNAPSHOT_REQUEST__INIT;
    Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
    Orbit__Ledger__Reply *rep = NULL;
    sr.has_stale = true;
    sr.stale = false;
    req.op_case = ORBIT__LEDGER__REQUEST__OP_SNAPSHOT;
    req.snapshot = &sr;
    int rc = ledger_call(v, &req, deadline, "snapshot", NULL, &rep, err, errlen);
    if (rc)
        return rc;
    if (!rep->has_snapshot || !rep->has_snapshot_ledger_index) {
        orbit_errf(err, errlen, "sched view: snapshot: no snapshot in the reply");
        rc = ORBIT_EIO;
    } else {
        rc = orbit_sched_view_load_snapshot(v, rep->snapshot.data, rep->snapshot.len,
                                            rep->snapshot_ledger_index, err, errlen);
        if (rc == ORBIT_EINVAL)
            rc = ORBIT_EIO; /* what a replica sent: not the caller's argument */
    }
    orbit__ledger__reply__free_unpacked(rep, NULL);
    return rc;
}

/* Read the watch from the index held until a reply has fewer items than
 * asked; Compacted, a gap or a half-applied commit reloads a snapshot. */
static int drain_watch(orbit_sched_view_t *v, int64_t deadline, char *err, size_t errlen)
{
    int rc = ORBIT_OK;
    for (;;) {
        if (v->needs_reload && (rc = fetch_snapshot(v, deadline, err, errlen)))
            return rc;
        Orbit__Ledger__WatchRequest w = ORBIT__LEDGER__WATCH_REQUEST__INIT;
        Orbit__Ledger__Request req = ORBIT__LEDGER__REQUEST__INIT;
        Orbit__Ledger__Reply *rep = NULL;
        w.from_index = v->index + 1;
        w.has_max = true;
        w.max = WATCH_MAX;
        w.has_stale = true;
        w.stale = false;
        req.op_case = ORBIT__LEDGER__REQUEST__OP_WATCH;
        req.watch = &w;
        /* A watch reply carries up to WATCH_MAX proposals: decoded in the
         * arena, it costs no malloc per field and one reset to free. */
        rc = ledger_call(v, &req, deadline, "watch", orbit_arena_allocator(v->arena), &rep, err,
                         errlen);
        if (rc) {
            orbit_arena_reset(v->arena);
            return rc;
        }
        v->st.watch_rounds++;
        if (rep->has_compacted_index) {
            v->needs_reload = true;
            orbit_arena_reset(v->arena);
            continue;
        }
        size_t n = rep->n_items;
        for (size_t i = 0; i < n && !rc; i++) {
            const Orbit__Ledger__Committed *it = rep->items[i];
            rc = orbit_sched_view_apply_commit(v, it->index, it->time_ms, it->proposal);
        }
        orbit_arena_reset(v->arena); /* nothing applied points into the reply */
        if (rc == ORBIT_EAGAIN) {
            v->st.gaps++;
            v->needs_reload = true;
            rc = ORBIT_OK;
            continue;
        }
        if (rc) {
            orbit_errf(err, errlen, "sched view: watch: %s", orbit_strerror(rc));
            return rc;
        }
        if (n < WATCH_MAX)
            return ORBIT_OK;
    }
}

static int refresh_rows(orbit_sched_view_t *v, int64_t deadline, int64_t now_ms, char *err,
                        size_t errlen)
{
    Orbit__ViewQuery q = ORBIT__VIEW_QUERY__INIT;
    Orbit__ViewReply *rep = NULL;
    int ms = 0;
    q.kind = ORBIT__QUERY_KIND__Q_NODES; /* no filter, no limit: every row */
    int rc = left_ms(deadline, &ms);
    if (!rc)
        rc = orbit_view_client_query_in(v->vc, &q, ms, orbit_arena_allocator(v->arena), &rep);
    if (rc) {
        orbit_arena_reset(v->arena);
        orbit_errf(err, errlen, "sched view: view: %s", orbit_strerror(rc));
        return rc;
    }
    if (rep->error) {
        orbit_errf(err, errlen, "sched view: view: %s", rep->error);
        orbit_arena_reset(v->arena);
        return ORBIT_EIO;
    }
    v->st.view_rounds++;
    for (size_t i = 0; i < rep->n_rows && !rc; i++) {
        int arc = orbit_sched_view_apply_row(v, rep->rows[i], now_ms);
        if (arc == ORBIT_ENOMEM)
            rc = arc;
    }
    orbit_arena_reset(v->arena); /* rows are copied, never pointed into */
    if (rc) {
        orbit_errf(err, errlen, "sched view: view: %s", orbit_strerror(rc));
        return rc;
    }
    orbit_sched_view_rows_done(v, now_ms);
    v->refreshed = true;
    v->last_refresh_ms = now_ms;
    return ORBIT_OK;
}

static int do_sync(orbit_sched_view_t *v, int64_t deadline, int64_t now_ms, char *err,
                   size_t errlen)
{
    int rc = fetch_snapshot(v, deadline, err, errlen);
    if (!rc)
        rc = drain_watch(v, deadline, err, errlen);
    if (!rc)
        rc = refresh_rows(v, deadline, now_ms, err, errlen);
    if (!rc)
        v->synced = true;
    return rc;
}

static int network_ready(const orbit_sched_view_t *v, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!v)
        return ORBIT_EINVAL;
    if (!v->lc || !v->vc) {
        orbit_errf(err, errlen, "sched view: not connected (made with orbit_sched_view_new)");
        return ORBIT_EINVAL;
    }
    return ORBIT_OK;
}

int orbit_sched_view_sync(orbit_sched_view_t *v, int timeout_ms, char *err, size_t errlen)
{
    int rc = network_ready(v, err, errlen);
    if (rc)
        return rc;
    int64_t now = zclock_mono();
    rc = do_sync(v, now + (timeout_ms > 0 ? timeout_ms : 1), now, err, errlen);
    if (rc)
        v->st.errors++;
    return rc;
}

int orbit_sched_view_poll(orbit_sched_view_t *v, int64_t now_ms, int refresh_ms, int timeout_ms,
                          bool *changed, char *err, size_t errlen)
{
    if (changed)
        *changed = false;
    int rc = network_ready(v, err, errlen);
    if (rc)
        return rc;
    uint64_t commits = v->st.commits_applied, snaps = v->st.snapshots_loaded,
             rows = v->telemetry_changes;
    int64_t deadline = zclock_mono() + (timeout_ms > 0 ? timeout_ms : 1);
    if (!v->synced) {
        rc = do_sync(v, deadline, now_ms, err, errlen);
    } else {
        rc = drain_watch(v, deadline, err, errlen);
        if (!rc && (!v->refreshed || now_ms - v->last_refresh_ms >= refresh_ms))
            rc = refresh_rows(v, deadline, now_ms, err, errlen);
    }
    if (rc)
        v->st.errors++;
    if (changed)
        *changed = v->st.commits_applied != commits || v->st.snapshots_loaded != snaps ||
                   v->telemetry_changes != rows;
    return rc;
}
