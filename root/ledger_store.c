/* ledger_store: the ledger's LMDB key layout and versioned record codecs. */
#include "ledger_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_hmap.h"
#include "orbit_hash.h"
#include "orbit_err.h"

#define KEY_CAP 512 /* LMDB's default maximum key size is 511 */

int orbit_ledger_store_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return ORBIT_OK;
    case MDB_NOTFOUND: return ORBIT_ENOTFOUND;
    case ENOMEM: return ORBIT_ENOMEM;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH: return ORBIT_ECORRUPT;
    default: return ORBIT_EIO;
    }
}

/* ------------------------------------------------------------ buffers */

int orbit_ledger_buf_reserve(orbit_ledger_buf_t *b, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return ORBIT_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    return ORBIT_OK;
}

int orbit_ledger_buf_put(orbit_ledger_buf_t *b, const void *data, size_t n)
{
    int rc = orbit_ledger_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    return ORBIT_OK;
}

void orbit_ledger_buf_free(orbit_ledger_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Record writer over the transaction's scratch buffer; the first failure
 * sticks, so a record is written with a chain of puts and one check. */
typedef struct {
    orbit_ledger_buf_t *b;
    int rc;
} wr_t;

static void wr_start(wr_t *w, orbit_ledger_buf_t *b)
{
    w->b = b;
    b->len = 0;
    uint8_t v = ORBIT_LEDGER_FORMAT;
    w->rc = orbit_ledger_buf_put(b, &v, 1);
}

static void wr_bytes(wr_t *w, const void *p, size_t n)
{
    if (!w->rc)
        w->rc = orbit_ledger_buf_put(w->b, p, n);
}

static void be64(uint8_t out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t rd_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void wr_u64(wr_t *w, uint64_t v)
{
    uint8_t b[8];
    be64(b, v);
    wr_bytes(w, b, 8);
}

static void wr_i64(wr_t *w, int64_t v)
{
    wr_u64(w, (uint64_t)v);
}

/* Strings are at most 255 bytes (names 63, endpoints 255). */
static void wr_str(wr_t *w, const char *s)
{
    size_t n = strlen(s);
    if (n > 255) {
        w->rc = w->rc ? w->rc : ORBIT_EINVAL;
        return;
    }
    uint8_t len = (uint8_t)n;
    wr_bytes(w, &len, 1);
    wr_bytes(w, s, n);
}

static void wr_res(wr_t *w, const orbit_ledger_res_t *r)
{
    wr_i64(w, r->cpu_m);
    wr_i64(w, r->mem);
    wr_i64(w, r->gpus);
}

/* Record reader: any short read or bad version marks it bad. */
typedef struct {
    const uint8_t *p;
    size_t n;
    bool bad;
} rd_t;

static void rd_start(rd_t *r, const MDB_val *v)
{
    r->p = v->mv_data;
    r->n = v->mv_size;
    r->bad = r->n < 1 || r->p[0] != ORBIT_LEDGER_FORMAT;
    if (!r->bad) {
        r->p++;
        r->n--;
    }
}

static const uint8_t *rd_take(rd_t *r, size_t n)
{
    if (r->bad || r->n < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->n -= n;
    return p;
}

static uint64_t rd_u64(rd_t *r)
{
    const uint8_t *p = rd_take(r, 8);
    return p ? rd_be64(p) : 0;
}

static int64_t rd_i64(rd_t *r)
{
    return (int64_t)rd_u64(r);
}

static void rd_str(rd_t *r, char *out, size_t cap)
{
    const uint8_t *lp = rd_take(r, 1);
    size_t n = lp ? *lp : 0;
    const uint8_t *s = rd_take(r, n);
    if (!s || n >= cap) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

static void rd_res(rd_t *r, orbit_ledger_res_t *res)
{
    res->cpu_m = rd_i64(r);
    res->mem = rd_i64(r);
    res->gpus = rd_i64(r);
}

/* A fully consumed, well-formed record. */
static int rd_end(const rd_t *r)
{
    return r->bad || r->n ? ORBIT_ECORRUPT : ORBIT_OK;
}

/* ------------------------------------------------------------ raw access */

typedef struct {
    uint8_t b[KEY_CAP];
    size_t n;
} key_t_;

static int mkkey(key_t_ *k, char tag, const char *s)
{
    size_t n = strlen(s);
    if (n + 1 > sizeof k->b)
        return ORBIT_EINVAL;
    k->b[0] = (uint8_t)tag;
    memcpy(k->b + 1, s, n);
    k->n = n + 1;
    return ORBIT_OK;
}

/* ------------------------------------------------------------ tables */

static const struct {
    char tag;
    const char *name; /* sub-database name */
} tables[ORBIT_LEDGER_TABLES] = {
    [ORBIT_LEDGER_T_CAPSULE_IDENTITY] = {'c', "#capsule_identity"},
    [ORBIT_LEDGER_T_DEDUP] = {'d', "#dedup"},
    [ORBIT_LEDGER_T_GANG] = {'g', "#gang"},
    [ORBIT_LEDGER_T_HISTORY] = {'h', "#history"},
    [ORBIT_LEDGER_T_IDENTITY] = {'i', "#identity"},
    [ORBIT_LEDGER_T_KEY] = {'k', "#key"},
    [ORBIT_LEDGER_T_LEASE] = {'l', "#lease"},
    [ORBIT_LEDGER_T_META] = {'m', "#meta"},
    [ORBIT_LEDGER_T_NODE] = {'n', "#node"},
    [ORBIT_LEDGER_T_MODULE] = {'o', "#module"},
    [ORBIT_LEDGER_T_PLACEMENT] = {'p', "#placement"},
    [ORBIT_LEDGER_T_QUOTA] = {'q', "#quota"},
    [ORBIT_LEDGER_T_RACK] = {'r', "#rack"},
    [ORBIT_LEDGER_T_SHARD] = {'s', "#shard"},
    [ORBIT_LEDGER_T_EXPIRY] = {'x', "#expiry"},
};

char orbit_ledger_store_table_tag(orbit_ledger_table_t t)
{
    return t < ORBIT_LEDGER_TABLES ? tables[t].tag : '\0';
}

int orbit_ledger_store_tables_open(MDB_txn *txn, bool create, MDB_dbi dbi[ORBIT_LEDGER_TABLES])
{
    for (int t = 0; t < ORBIT_LEDGER_TABLES; t++) {
        int rc = orbit_ledger_store_err(
            mdb_dbi_open(txn, tables[t].name, create ? MDB_CREATE : 0, &dbi[t]));
        if (rc)
            return rc == ORBIT_ENOTFOUND ? rc : ORBIT_EIO;
    }
    return ORBIT_OK;
}

void orbit_ledger_store_tx_close(orbit_ledger_tx_t *tx)
{
    for (int t = 0; t < ORBIT_LEDGER_TABLES; t++) {
        if (tx->cur[t])
            mdb_cursor_close(tx->cur[t]);
        tx->cur[t] = NULL;
    }
    tx->node_cached = false;
}

/* The table of tag (keys built by mkkey and friends start with it). */
static orbit_ledger_table_t table_of(uint8_t tag)
{
    switch (tag) {
    case 'c': return ORBIT_LEDGER_T_CAPSULE_IDENTITY;
    case 'd': return ORBIT_LEDGER_T_DEDUP;
    case 'g': return ORBIT_LEDGER_T_GANG;
    case 'h': return ORBIT_LEDGER_T_HISTORY;
    case 'i': return ORBIT_LEDGER_T_IDENTITY;
    case 'k': return ORBIT_LEDGER_T_KEY;
    case 'l': return ORBIT_LEDGER_T_LEASE;
    case 'm': return ORBIT_LEDGER_T_META;
    case 'n': return ORBIT_LEDGER_T_NODE;
    case 'o': return ORBIT_LEDGER_T_MODULE;
    case 'p': return ORBIT_LEDGER_T_PLACEMENT;
    case 'q': return ORBIT_LEDGER_T_QUOTA;
    case 'r': return ORBIT_LEDGER_T_RACK;
    case 's': return ORBIT_LEDGER_T_SHARD;
    default: return ORBIT_LEDGER_T_EXPIRY; /* 'x' */
    }
}

/* The transaction's cursor on table t. */
static int cursor(orbit_ledger_tx_t *tx, orbit_ledger_table_t t, MDB_cursor **cur)
{
    if (!tx->cur[t]) {
        int rc = orbit_ledger_store_err(mdb_cursor_open(tx->txn, tx->dbi[t], &tx->cur[t]));
        if (rc) {
            tx->cur[t] = NULL;
            return rc == ORBIT_ENOTFOUND ? ORBIT_EIO : rc;
        }
    }
    *cur = tx->cur[t];
    return ORBIT_OK;
}

/* k->b[0] is the tag: the table; the key within it is the rest. Every
 * access goes through the table's one cursor (see orbit_ledger_tx_t). */
static int get(orbit_ledger_tx_t *tx, const key_t_ *k, MDB_val *v)
{
    MDB_cursor *cur;
    MDB_val kv = {k->n - 1, (void *)(k->b + 1)};
    int rc = cursor(tx, table_of(k->b[0]), &cur);
    return rc ? rc : orbit_ledger_store_err(mdb_cursor_get(cur, &kv, v, MDB_SET));
}

static int put_flags(orbit_ledger_tx_t *tx, const key_t_ *k, const void *data, size_t n,
                     unsigned flags)
{
    MDB_cursor *cur;
    MDB_val kv = {k->n - 1, (void *)(k->b + 1)};
    MDB_val v = {n, (void *)data};
    int rc = cursor(tx, table_of(k->b[0]), &cur);
    if (rc)
        return rc;
    rc = orbit_ledger_store_err(mdb_cursor_put(cur, &kv, &v, flags));
    /* an append below the last key: not this format's data */
    return rc == ORBIT_EIO && (flags & MDB_APPEND) ? ORBIT_ECORRUPT : rc;
}

static int put(orbit_ledger_tx_t *tx, const key_t_ *k, const void *data, size_t n)
{
    return put_flags(tx, k, data, n, 0);
}

static int put_wr(orbit_ledger_tx_t *tx, const key_t_ *k, const wr_t *w)
{
    return w->rc ? w->rc : put(tx, k, w->b->p, w->b->len);
}

/* Deleting what is not there is fine. */
static int del(orbit_ledger_tx_t *tx, const key_t_ *k)
{
    MDB_cursor *cur;
    MDB_val kv = {k->n - 1, (void *)(k->b + 1)}, v;
    int rc = cursor(tx, table_of(k->b[0]), &cur);
    if (rc)
        return rc;
    int mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET);
    if (mrc == MDB_SUCCESS)
        mrc = mdb_cursor_del(cur, 0);
    return mrc == MDB_NOTFOUND ? ORBIT_OK : orbit_ledger_store_err(mrc);
}

/* Walk table t from its first record at or after key from (NULL: from its
 * start) with a cursor of its own (callbacks may read other records). */
typedef int (*rec_fn)(void *ctx, const MDB_val *k, const MDB_val *v);
static int table_walk(orbit_ledger_tx_t *tx, orbit_ledger_table_t t, const MDB_val *from, rec_fn fn,
                      void *ctx)
{
    MDB_cursor *cur = NULL;
    MDB_val k = {0, NULL}, v;
    int rc = orbit_ledger_store_err(mdb_cursor_open(tx->txn, tx->dbi[t], &cur));
    if (rc)
        return rc == ORBIT_ENOTFOUND ? ORBIT_EIO : rc;
    if (from)
        k = *from;
    int mrc = mdb_cursor_get(cur, &k, &v, from ? MDB_SET_RANGE : MDB_FIRST);
    for (; !rc && mrc == MDB_SUCCESS; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        rc = fn(ctx, &k, &v);
    if (rc > 0)
        rc = ORBIT_OK; /* fn stopped the walk */
    else if (!rc && mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
        rc = orbit_ledger_store_err(mrc);
    mdb_cursor_close(cur);
    return rc;
}

/* Walk the records of the table of tag, calling fn with each name
 * (NUL-terminated copy, at most max bytes) and value. */
typedef int (*tag_fn)(void *ctx, const char *name, const MDB_val *v);
typedef struct {
    size_t max;
    tag_fn fn;
    void *ctx;
    int rc; /* fn's */
} tag_walk_t;

static int tag_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    tag_walk_t *w = ctx;
    char name[KEY_CAP];
    if (k->mv_size > w->max || k->mv_size >= sizeof name || memchr(k->mv_data, 0, k->mv_size))
        return ORBIT_ECORRUPT;
    memcpy(name, k->mv_data, k->mv_size);
    name[k->mv_size] = '\0';
    w->rc = w->fn(w->ctx, name, v);
    return w->rc > 0 ? 1 : w->rc;
}

static int tag_each(orbit_ledger_tx_t *tx, char tag, size_t max, tag_fn fn, void *ctx)
{
    tag_walk_t w = {max, fn, ctx, 0};
    int rc = table_walk(tx, table_of((uint8_t)tag), NULL, tag_one, &w);
    return rc ? rc : w.rc; /* a stop (> 0) of fn is passed back */
}

bool orbit_ledger_store_hashed(orbit_ledger_table_t t, const uint8_t *k, size_t klen)
{
    static const char *const local[] = {ORBIT_LEDGER_META_APPLIED, ORBIT_LEDGER_META_TIME,
                                        ORBIT_LEDGER_META_CLUSTER, ORBIT_LEDGER_META_COMPACTED};
    if (t == ORBIT_LEDGER_T_HISTORY)
        return false; /* covered by the chain digest */
    if (t != ORBIT_LEDGER_T_META)
        return true;
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (klen == strlen(local[i]) && !memcmp(k, local[i], klen))
            return false;
    return true;
}

/* ------------------------------------------------------------ meta */

int orbit_ledger_store_get_raw(orbit_ledger_tx_t *tx, const char *name, const uint8_t **v,
                               size_t *len)
{
    key_t_ k;
    MDB_val val;
    int rc = mkkey(&k, 'm', name);
    if (!rc)
        rc = get(tx, &k, &val);
    if (!rc) {
        *v = val.mv_data;
        *len = val.mv_size;
    }
    return rc;
}

int orbit_ledger_store_put_raw(orbit_ledger_tx_t *tx, const char *name, const void *v, size_t len)
{
    key_t_ k;
    int rc = mkkey(&k, 'm', name);
    return rc ? rc : put(tx, &k, v, len);
}

int orbit_ledger_store_get_u64(orbit_ledger_tx_t *tx, const char *name, uint64_t *v)
{
    const uint8_t *p;
    size_t n;
    int rc = orbit_ledger_store_get_raw(tx, name, &p, &n);
    if (rc)
        return rc;
    if (n != 8)
        return ORBIT_ECORRUPT;
    *v = rd_be64(p);
    return ORBIT_OK;
}

int orbit_ledger_store_put_u64(orbit_ledger_tx_t *tx, const char *name, uint64_t v)
{
    uint8_t b[8];
    be64(b, v);
    return orbit_ledger_store_put_raw(tx, name, b, 8);
}

/* ------------------------------------------------------------ key index */

#define PLACEMENT_KEY "placement/"
#define NODE_KEY      "node/"

int orbit_ledger_store_key_index(orbit_ledger_tx_t *tx, const char *key, uint64_t *index)
{
    key_t_ k;
    MDB_val v;
    *index = 0;
    if (!strncmp(key, PLACEMENT_KEY, sizeof PLACEMENT_KEY - 1)) {
        orbit_ledger_placement_t p;
        int prc = orbit_ledger_store_get_placement(tx, key + sizeof PLACEMENT_KEY - 1, &p);
        if (prc == ORBIT_OK) {
            *index = p.index;
            return ORBIT_OK;
        }
        if (prc != ORBIT_ENOTFOUND && prc != ORBIT_EINVAL)
            return prc;
        /* gone (or never there): its revocation's index, if any */
    } else if (!strncmp(key, NODE_KEY, sizeof NODE_KEY - 1)) {
        orbit_ledger_node_t n;
        int nrc = orbit_ledger_store_get_node(tx, key + sizeof NODE_KEY - 1, &n);
        if (nrc == ORBIT_OK && n.placements) {
            *index = n.changed;
            return ORBIT_OK;
        }
        if (nrc != ORBIT_OK && nrc != ORBIT_EINVAL)
            return nrc;
        /* empty: the change that emptied it, if any */
    }
    int rc = mkkey(&k, 'k', key);
    if (!rc)
        rc = get(tx, &k, &v);
    if (rc == ORBIT_ENOTFOUND)
        return ORBIT_OK;
    if (rc)
        return rc;
    if (v.mv_size != 8)
        return ORBIT_ECORRUPT;
    *index = rd_be64(v.mv_data);
    return ORBIT_OK;
}

bool orbit_ledger_store_key_carried(orbit_ledger_tx_t *tx, const char *key, uint64_t index)
{
    if (!strncmp(key, PLACEMENT_KEY, sizeof PLACEMENT_KEY - 1)) {
        orbit_ledger_placement_t p;
        return orbit_ledger_store_get_placement(tx, key + sizeof PLACEMENT_KEY - 1, &p) ==
                   ORBIT_OK &&
               p.index == index;
    }
    if (!strncmp(key, NODE_KEY, sizeof NODE_KEY - 1)) {
        orbit_ledger_node_t n;
        return orbit_ledger_store_get_node(tx, key + sizeof NODE_KEY - 1, &n) == ORBIT_OK &&
               n.placements && n.changed == index;
    }
    return false;
}

int orbit_ledger_store_touch(orbit_ledger_tx_t *tx, const char *key, uint64_t index)
{
    key_t_ k;
    uint8_t b[8];
    be64(b, index);
    int rc = mkkey(&k, 'k', key);
    return rc ? rc : put(tx, &k, b, 8);
}

/* ------------------------------------------------------------ placements */

static int placement_decode(const char *capsule, const MDB_val *v, orbit_ledger_placement_t *out)
{
    rd_t r;
    memset(out, 0, sizeof *out);
    if (strlen(capsule) > ORBIT_LEDGER_NAME_MAX)
        return ORBIT_ECORRUPT;
    strcpy(out->capsule, capsule);
    rd_start(&r, v);
    rd_str(&r, out->node, sizeof out->node);
    rd_str(&r, out->principal, sizeof out->principal);
    rd_str(&r, out->gang, sizeof out->gang);
    rd_res(&r, &out->envelope);
    out->epoch = rd_u64(&r);
    out->index = rd_u64(&r);
    return rd_end(&r);
}

int orbit_ledger_store_get_placement(orbit_ledger_tx_t *tx, const char *capsule,
                                     orbit_ledger_placement_t *out)
{
    key_t_ k;
    MDB_val v;
    int rc = mkkey(&k, 'p', capsule);
    if (!rc)
        rc = get(tx, &k, &v);
    return rc ? rc : placement_decode(capsule, &v, out);
}

typedef struct {
    orbit_ledger_store_placement_fn fn;
    void *ctx;
} placement_each_t;

static int placement_one(void *ctx, const char *name, const MDB_val *v)
{
    placement_each_t *e = ctx;
    orbit_ledger_placement_t p;
    int rc = placement_decode(name, v, &p);
    return rc ? rc : e->fn(e->ctx, &p);
}

int orbit_ledger_store_placement_each(orbit_ledger_tx_t *tx, orbit_ledger_store_placement_fn fn,
                                      void *ctx)
{
    placement_each_t e = {fn, ctx};
    return tag_each(tx, 'p', ORBIT_LEDGER_NAME_MAX, placement_one, &e);
}

int orbit_ledger_store_put_placement(orbit_ledger_tx_t *tx, const orbit_ledger_placement_t *p)
{
    key_t_ k;
    wr_t w;
    int rc = mkkey(&k, 'p', p->capsule);
    if (rc)
        return rc;
    wr_start(&w, tx->scratch);
    wr_str(&w, p->node);
    wr_str(&w, p->principal);
    wr_str(&w, p->gang);
    wr_res(&w, &p->envelope);
    wr_u64(&w, p->epoch);
    wr_u64(&w, p->index);
    return put_wr(tx, &k, &w);
}

int orbit_ledger_store_del_placement(orbit_ledger_tx_t *tx, const char *capsule)
{
    key_t_ k;
    int rc = mkkey(&k, 'p', capsule);
    return rc ? rc : del(tx, &k);
}

/* ------------------------------------------------------------ nodes */

/* Remember n as node's record in this transaction. */
static void node_cache(orbit_ledger_tx_t *tx, const char *node, const orbit_ledger_node_t *n)
{
    size_t len = strlen(node);
    tx->node_cached = len < sizeof tx->node_name;
    if (tx->node_cached) {
        memcpy(tx->node_name, node, len + 1);
        tx->node = *n;
    }
}

int orbit_ledger_store_get_node(orbit_ledger_tx_t *tx, const char *node, orbit_ledger_node_t *out)
{
    key_t_ k;
    MDB_val v;
    rd_t r;
    if (tx->node_cached && !strcmp(tx->node_name, node)) {
        *out = tx->node;
        return ORBIT_OK;
    }
    memset(out, 0, sizeof *out);
    int rc = mkkey(&k, 'n', node);
    if (!rc)
        rc = get(tx, &k, &v);
    if (rc == ORBIT_ENOTFOUND) {
        node_cache(tx, node, out);
        return ORBIT_OK;
    }
    if (rc)
        return rc;
    rd_start(&r, &v);
    rd_res(&r, &out->used);
    out->placements = rd_u64(&r);
    out->changed = rd_u64(&r);
    rc = rd_end(&r);
    if (!rc)
        node_cache(tx, node, out);
    return rc;
}

int orbit_ledger_store_put_node(orbit_ledger_tx_t *tx, const char *node,
                                const orbit_ledger_node_t *in, uint64_t index)
{
    key_t_ k;
    wr_t w;
    orbit_ledger_node_t stamped = *in, *n = &stamped;
    stamped.changed = index;
    int rc = mkkey(&k, 'n', node);
    if (rc)
        return rc;
    tx->node_cached = false; /* until the write is done */
    if (n->placements == 0) {
        rc = del(tx, &k);
    } else {
        wr_start(&w, tx->scratch);
        wr_res(&w, &n->used);
        wr_u64(&w, n->placements);
        wr_u64(&w, n->changed);
        rc = put_wr(tx, &k, &w);
    }
    if (!rc)
        node_cache(tx, node, n->placements ? n : &(orbit_ledger_node_t){0});
    return rc;
}

/* ------------------------------------------------------------ quotas */

static int quota_decode(const MDB_val *v, orbit_ledger_quota_t *out)
{
    rd_t r;
    memset(out, 0, sizeof *out);
    rd_start(&r, v);
    const uint8_t *g = rd_take(&r, 1);
    out->granted = g && *g;
    rd_res(&r, &out->grant);
    rd_res(&r, &out->used);
    out->priority = (int32_t)(uint32_t)rd_u64(&r);
    out->until_ms = rd_i64(&r);
    return rd_end(&r);
}

int orbit_ledger_store_get_quota(orbit_ledger_tx_t *tx, const char *principal,
                                 orbit_ledger_quota_t *out)
{
    key_t_ k;
    MDB_val v;
    int rc = mkkey(&k, 'q', principal);
    if (!rc)
        rc = get(tx, &k, &v);
    return rc ? rc : quota_decode(&v, out);
}

typedef struct {
    orbit_ledger_store_quota_fn fn;
    void *ctx;
} quota_each_t;

static int quota_one(void *ctx, const char *name, const MDB_val *v)
{
    quota_each_t *e = ctx;
    orbit_ledger_quota_t q;
    int rc = quota_decode(v, &q);
    return rc ? rc : e->fn(e->ctx, name, &q);
}

int orbit_ledger_store_quota_each(orbit_ledger_tx_t *tx, orbit_ledger_store_quota_fn fn, void *ctx)
{
    quota_each_t e = {fn, ctx};
    return tag_each(tx, 'q', ORBIT_LEDGER_NAME_MAX, quota_one, &e);
}

int orbit_ledger_store_put_quota(orbit_ledger_tx_t *tx, const char *principal,
                                 const orbit_ledger_quota_t *q)
{
    key_t_ k;
    wr_t w;
    int rc = mkkey(&k, 'q', principal);
    if (rc)
        return rc;
    if (!q->granted && !q->used.cpu_m && !q->used.mem && !q->used.gpus)
        return del(tx, &k);
    wr_start(&w, tx->scratch);
    uint8_t g = q->granted ? 1 : 0;
    wr_bytes(&w, &g, 1);
    wr_res(&w, &q->grant);
    wr_res(&w, &q->used);
    wr_u64(&w, (uint32_t)q->priority);
    wr_i64(&w, q->until_ms);
    return put_wr(tx, &k, &w);
}

/* ------------------------------------------------------------ leases */

int orbit_ledger_store_get_lease(orbit_ledger_tx_t *tx, const char *resource,
                                 orbit_ledger_lease_t *out)
{
    key_t_ k;
    MDB_val v;
    rd_t r;
    int rc = mkkey(&k, 'l', resource);
    if (!rc)
        rc = get(tx, &k, &v);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    rd_start(&r, &v);
    rd_str(&r, out->holder, sizeof out->holder);
    out->expires_ms = rd_i64(&r);
    out->epoch = rd_u64(&r);
    return rd_end(&r);
}

int orbit_ledger_store_put_lease(orbit_ledger_tx_t *tx, const char *resource,
                                 const orbit_ledger_lease_t *ls)
{
    key_t_ k;
    wr_t w;
    int rc = mkkey(&k, 'l', resource);
    if (rc)
        return rc;
    wr_start(&w, tx->scratch);
    wr_str(&w, ls->holder);
    wr_i64(&w, ls->expires_ms);
    wr_u64(&w, ls->epoch);
    return put_wr(tx, &k, &w);
}

/* ------------------------------------------------------------ identities */

static int get_name(orbit_ledger_tx_t *tx, char tag, const char *key,
                    char out[ORBIT_LEDGER_NAME_MAX + 1])
{
    key_t_ k;
    MDB_val v;
    rd_t r;
    int rc = mkkey(&k, tag, key);
    if (!rc)
        rc = get(tx, &k, &v);
    if (rc)
        return rc;
    rd_start(&r, &v);
    rd_str(&r, out, ORBIT_LEDGER_NAME_MAX + 1);
    return rd_end(&r);
}

static int put_name(orbit_ledger_tx_t *tx, char tag, const char *key, const char *name)
{
    key_t_ k;
    wr_t w;
    int rc = mkkey(&k, tag, key);
    if (rc)
        return rc;
    wr_start(&w, tx->scratch);
    wr_str(&w, name);
    return put_wr(tx, &k, &w);
}

int orbit_ledger_store_get_identity(orbit_ledger_tx_t *tx, const char *identity,
                                    char capsule[ORBIT_LEDGER_NAME_MAX + 1])
{
    return get_name(tx, 'i', identity, capsule);
}

int orbit_ledger_store_get_capsule_identity(orbit_ledger_tx_t *tx, const char *capsule,
                                            char identity[ORBIT_LEDGER_NAME_MAX + 1])
{
    return get_name(tx, 'c', capsule, identity);
}

int orbit_ledger_store_bind(orbit_ledger_tx_t *tx, const char *identity, const char *capsule)
{
    int rc = put_name(tx, 'i', identity, capsule);
    return rc ? rc : put_name(tx, 'c', capsule, identity);
}

int orbit_ledger_store_unbind(orbit_ledger_tx_t *tx, const char *identity, const char *capsule)
{
    key_t_ k;
    int rc = mkkey(&k, 'i', identity);
    if (!rc)
        rc = del(tx, &k);
    if (!rc)
        rc = mkkey(&k, 'c', capsule);
    return rc ? rc : del(tx, &k);
}

typedef struct {
    orbit_ledger_store_pair_fn fn;
    void *ctx;
} pair_each_t;

static int identity_one(void *ctx, const char *name, const MDB_val *v)
{
    pair_each_t *e = ctx;
    char capsule[ORBIT_LEDGER_NAME_MAX + 1];
    rd_t r;
    rd_start(&r, v);
    rd_str(&r, capsule, sizeof capsule);
    int rc = rd_end(&r);
    return rc ? rc : e->fn(e->ctx, name, capsule);
}

int orbit_ledger_store_identity_each(orbit_ledger_tx_t *tx, orbit_ledger_store_pair_fn fn,
                                     void *ctx)
{
    pair_each_t e = {fn, ctx};
    return tag_each(tx, 'i', ORBIT_LEDGER_NAME_MAX, identity_one, &e);
}

/* ------------------------------------------------------------ modules */

static int module_decode(const MDB_val *v, Orbit__Ledger__ModuleSpec **spec, uint64_t *epoch)
{
    rd_t r;
    rd_start(&r, v);
    uint64_t e = rd_u64(&r);
    if (r.bad)
        return ORBIT_ECORRUPT;
    Orbit__Ledger__ModuleSpec *s = orbit__ledger__module_spec__unpack(NULL, r.n, r.p);
    if (!s)
        return ORBIT_ECORRUPT;
    *spec = s;
    if (epoch)
        *epoch = e;
    return ORBIT_OK;
}

int orbit_ledger_store_get_module(orbit_ledger_tx_t *tx, const char *key,
                                  Orbit__Ledger__ModuleSpec **spec, uint64_t *epoch)
{
    key_t_ k;
    MDB_val v;
    int rc = mkkey(&k, 'o', key);
    if (!rc)
        rc = get(tx, &k, &v);
    return rc ? rc : module_decode(&v, spec, epoch);
}

typedef struct {
    orbit_ledger_store_module_fn fn;
    void *ctx;
} module_each_t;

static int module_one(void *ctx, const char *name, const MDB_val *v)
{
    module_each_t *e = ctx;
    Orbit__Ledger__ModuleSpec *spec = NULL;
    uint64_t epoch = 0;
    int rc = module_decode(v, &spec, &epoch);
    if (rc)
        return rc;
    rc = e->fn(e->ctx, name, spec, epoch);
    orbit__ledger__module_spec__free_unpacked(spec, NULL);
    return rc;
}

int orbit_ledger_store_module_each(orbit_ledger_tx_t *tx, orbit_ledger_store_module_fn fn,
                                   void *ctx)
{
    module_each_t e = {fn, ctx};
    return tag_each(tx, 'o', 2 * ORBIT_LEDGER_NAME_MAX + 1, module_one, &e);
}

int orbit_ledger_store_put_module(orbit_ledger_tx_t *tx, const char *key,
                                  const Orbit__Ledger__ModuleSpec *spec, uint64_t epoch)
{
    key_t_ k;
    wr_t w;
    int rc = mkkey(&k, 'o', key);
    if (rc)
        return rc;
    wr_start(&w, tx->scratch);
    wr_u64(&w, epoch);
    size_t n = orbit__ledger__module_spec__get_packed_size(spec);
    if (!w.rc)
        w.rc = orbit_ledger_buf_reserve(tx->scratch, n);
    if (w.rc)
        return w.rc;
    orbit__ledger__module_spec__pack(spec, tx->scratch->p + tx->scratch->len);
    tx->scratch->len += n;
    return put_wr(tx, &k, &w);
}

int orbit_ledger_store_del_module(orbit_ledger_tx_t *tx, const char *key)
{
    key_t_ k;
    int rc = mkkey(&k, 'o', key);
    return rc ? rc : del(tx, &k);
}

/* ------------------------------------------------------------ gangs */

int orbit_ledger_store_get_gang(orbit_ledger_tx_t *tx, const char *gang, orbit_ledger_gang_t *out,
                                const uint8_t **members, size_t *members_len)
{
    key_t_ k;
    MDB_val v;
    rd_t r;
    int rc = mkkey(&k, 'g', gang);
    if (!rc)
        rc = get(tx, &k, &v);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    if (strlen(gang) > ORBIT_LEDGER_NAME_MAX)
        return ORBIT_ECORRUPT;
    strcpy(out->gang, gang);
    rd_start(&r, &v);
    rd_str(&r, out->principal, sizeof out->principal);
    out->epoch = rd_u64(&r);
    out->index = rd_u64(&r);
    out->members = (size_t)rd_u64(&r);
    if (r.bad || out->members > ORBIT_LEDGER_GANG_MAX)
        return ORBIT_ECORRUPT;
    if (members) {
        *members = r.p;
        *members_len = r.n;
    }
    return ORBIT_OK;
}

int orbit_ledger_store_gang_member(const uint8_t *members, size_t len, size_t *off,
                                   char name[ORBIT_LEDGER_NAME_MAX + 1])
{
    if (*off >= len)
        return ORBIT_ECORRUPT;
    size_t n = members[*off];
    if (n > ORBIT_LEDGER_NAME_MAX || *off + 1 + n > len)
        return ORBIT_ECORRUPT;
    memcpy(name, members + *off + 1, n);
    name[n] = '\0';
    *off += 1 + n;
    return ORBIT_OK;
}

int orbit_ledger_store_put_gang(orbit_ledger_tx_t *tx, const orbit_ledger_gang_t *g,
                                const char *const *members, size_t n)
{
    key_t_ k;
    wr_t w;
    int rc = mkkey(&k, 'g', g->gang);
    if (rc)
        return rc;
    wr_start(&w, tx->scratch);
    wr_str(&w, g->principal);
    wr_u64(&w, g->epoch);
    wr_u64(&w, g->index);
    wr_u64(&w, n);
    for (size_t i = 0; i < n; i++)
        wr_str(&w, members[i]);
    return put_wr(tx, &k, &w);
}

int orbit_ledger_store_del_gang(orbit_ledger_tx_t *tx, const char *gang)
{
    key_t_ k;
    int rc = mkkey(&k, 'g', gang);
    return rc ? rc : del(tx, &k);
}

/* ------------------------------------------------------------ topology */

int orbit_ledger_store_get_shard(orbit_ledger_tx_t *tx, const char *shard,
                                 orbit_ledger_shard_t *out)
{
    key_t_ k;
    MDB_val v;
    rd_t r;
    int rc = mkkey(&k, 's', shard);
    if (!rc)
        rc = get(tx, &k, &v);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    if (strlen(shard) > ORBIT_LEDGER_NAME_MAX)
        return ORBIT_ECORRUPT;
    strcpy(out->shard, shard);
    rd_start(&r, &v);
    out->tier = (uint32_t)rd_u64(&r);
    rd_str(&r, out->parent, sizeof out->parent);
    rd_str(&r, out->endpoint, sizeof out->endpoint);
    out->children = rd_u64(&r);
    out->racks = rd_u64(&r);
    return rd_end(&r);
}

int orbit_ledger_store_put_shard(orbit_ledger_tx_t *tx, const orbit_ledger_shard_t *s)
{
    key_t_ k;
    wr_t w;
    int rc = mkkey(&k, 's', s->shard);
    if (rc)
        return rc;
    wr_start(&w, tx->scratch);
    wr_u64(&w, s->tier);
    wr_str(&w, s->parent);
    wr_str(&w, s->endpoint);
    wr_u64(&w, s->children);
    wr_u64(&w, s->racks);
    return put_wr(tx, &k, &w);
}

int orbit_ledger_store_del_shard(orbit_ledger_tx_t *tx, const char *shard)
{
    key_t_ k;
    int rc = mkkey(&k, 's', shard);
    return rc ? rc : del(tx, &k);
}

int orbit_ledger_store_get_rack(orbit_ledger_tx_t *tx, const char *rack,
                                char shard[ORBIT_LEDGER_NAME_MAX + 1])
{
    return get_name(tx, 'r', rack, shard);
}

int orbit_ledger_store_put_rack(orbit_ledger_tx_t *tx, const char *rack, const char *shard)
{
    return put_name(tx, 'r', rack, shard);
}

typedef struct {
    orbit_ledger_shard_fn shard;
    orbit_ledger_rack_fn rack;
    void *ctx;
} each_t;

static int shard_one(void *ctx, const char *name, const MDB_val *v)
{
    each_t *e = ctx;
    orbit_ledger_shard_t s;
    rd_t r;
    memset(&s, 0, sizeof s);
    strcpy(s.shard, name);
    rd_start(&r, v);
    s.tier = (uint32_t)rd_u64(&r);
    rd_str(&r, s.parent, sizeof s.parent);
    rd_str(&r, s.endpoint, sizeof s.endpoint);
    s.children = rd_u64(&r);
    s.racks = rd_u64(&r);
    int rc = rd_end(&r);
    return rc ? rc : e->shard(e->ctx, &s);
}

static int rack_one(void *ctx, const char *name, const MDB_val *v)
{
    each_t *e = ctx;
    char shard[ORBIT_LEDGER_NAME_MAX + 1];
    rd_t r;
    rd_start(&r, v);
    rd_str(&r, shard, sizeof shard);
    int rc = rd_end(&r);
    return rc ? rc : e->rack(e->ctx, name, shard);
}

int orbit_ledger_store_shard_each(orbit_ledger_tx_t *tx, orbit_ledger_shard_fn fn, void *ctx)
{
    each_t e = {fn, NULL, ctx};
    return tag_each(tx, 's', ORBIT_LEDGER_NAME_MAX, shard_one, &e);
}

int orbit_ledger_store_rack_each(orbit_ledger_tx_t *tx, orbit_ledger_rack_fn fn, void *ctx)
{
    each_t e = {NULL, fn, ctx};
    return tag_each(tx, 'r', ORBIT_LEDGER_NAME_MAX, rack_one, &e);
}

/* ------------------------------------------------------------ expiry index */

static int expiry_key(key_t_ *k, int64_t expires_ms, Orbit__Ledger__RefKind kind, const char *key)
{
    size_t n = strlen(key);
    if (10 + n > sizeof k->b || expires_ms < 0)
        return ORBIT_EINVAL;
    k->b[0] = 'x';
    be64(k->b + 1, (uint64_t)expires_ms);
    k->b[9] = (uint8_t)kind;
    memcpy(k->b + 10, key, n);
    k->n = 10 + n;
    return ORBIT_OK;
}

int orbit_ledger_store_expiry_add(orbit_ledger_tx_t *tx, int64_t expires_ms,
                                  Orbit__Ledger__RefKind kind, const char *key)
{
    key_t_ k;
    int rc = expiry_key(&k, expires_ms, kind, key);
    return rc ? rc : put(tx, &k, "", 0);
}

int orbit_ledger_store_expiry_del(orbit_ledger_tx_t *tx, int64_t expires_ms,
                                  Orbit__Ledger__RefKind kind, const char *key)
{
    key_t_ k;
    int rc = expiry_key(&k, expires_ms, kind, key);
    return rc ? rc : del(tx, &k);
}

typedef struct {
    int64_t now_ms;
    orbit_ledger_due_t *out;
    size_t max, *n;
} due_walk_t;

static int due_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    due_walk_t *w = ctx;
    const uint8_t *kb = k->mv_data;
    (void)v;
    if (*w->n >= w->max)
        return 1;
    if (k->mv_size < 10 || k->mv_size - 9 > ORBIT_LEDGER_NAME_MAX)
        return ORBIT_ECORRUPT;
    int64_t at = (int64_t)rd_be64(kb);
    if (at > w->now_ms)
        return 1;
    orbit_ledger_due_t *d = &w->out[(*w->n)++];
    d->kind = (Orbit__Ledger__RefKind)kb[8];
    d->expires_ms = at;
    memcpy(d->key, kb + 9, k->mv_size - 9);
    d->key[k->mv_size - 9] = '\0';
    return 0;
}

int orbit_ledger_store_expiry_due(orbit_ledger_tx_t *tx, int64_t now_ms, orbit_ledger_due_t *out,
                                  size_t max, size_t *n)
{
    due_walk_t w = {now_ms, out, max, n};
    *n = 0;
    return table_walk(tx, ORBIT_LEDGER_T_EXPIRY, NULL, due_one, &w);
}

/* ------------------------------------------------------------ dedup */

/* The hash a pair is filed under in index m (seeded by m). */
static uint64_t pair_hash(const orbit_ledger_hmap_t *m, const char *client_id, uint64_t request_id)
{
    uint8_t id[8];
    be64(id, request_id);
    return orbit_fnv1a(orbit_ledger_hmap_hash_str(m, client_id), id, sizeof id);
}

static void seq_key(key_t_ *k, uint64_t seq)
{
    k->b[0] = 'd';
    be64(k->b + 1, seq);
    k->n = 9;
}

/* A dedup record: format, time, request id, client id, outcome. */
typedef struct {
    int64_t time_ms;
    uint64_t request_id;
    char client_id[ORBIT_LEDGER_CLIENT_MAX + 1];
    const uint8_t *outcome; /* borrowed from the value */
    size_t len;
} dedup_rec_t;

static int dedup_decode(const MDB_val *v, dedup_rec_t *out)
{
    rd_t r;
    rd_start(&r, v);
    out->time_ms = rd_i64(&r);
    out->request_id = rd_u64(&r);
    rd_str(&r, out->client_id, sizeof out->client_id);
    if (r.bad)
        return ORBIT_ECORRUPT;
    out->outcome = r.p;
    out->len = r.n;
    return ORBIT_OK;
}

typedef struct {
    orbit_ledger_tx_t *tx;
    const char *client_id;
    uint64_t request_id;
    const uint8_t *outcome;
    size_t len;
    int rc;
} dedup_find_t;

/* Is record seq the pair's? 1 when found (out filled), -1 on an error. */
static int dedup_match(void *ctx, uint64_t seq)
{
    dedup_find_t *f = ctx;
    key_t_ k;
    MDB_val v;
    dedup_rec_t rec;
    seq_key(&k, seq);
    int rc = get(f->tx, &k, &v);
    if (!rc)
        rc = dedup_decode(&v, &rec);
    if (rc) {
        f->rc = rc == ORBIT_ENOTFOUND ? ORBIT_ECORRUPT : rc; /* the index names it */
        return -1;
    }
    if (rec.request_id != f->request_id || strcmp(rec.client_id, f->client_id))
        return 0; /* another pair with the same hash */
    f->outcome = rec.outcome;
    f->len = rec.len;
    return 1;
}

int orbit_ledger_store_dedup_get(orbit_ledger_tx_t *tx, const char *client_id, uint64_t request_id,
                                 const uint8_t **outcome, size_t *len)
{
    if (!tx->dedup)
        return ORBIT_EIO;
    dedup_find_t f = {tx, client_id, request_id, NULL, 0, ORBIT_OK};
    int found = orbit_ledger_hmap_find(tx->dedup, pair_hash(tx->dedup, client_id, request_id),
                                       dedup_match, &f);
    if (found < 0)
        return f.rc;
    if (!found)
        return ORBIT_ENOTFOUND;
    *outcome = f.outcome;
    *len = f.len;
    return ORBIT_OK;
}

int orbit_ledger_store_dedup_put(orbit_ledger_tx_t *tx, const char *client_id, uint64_t request_id,
                                 int64_t time_ms, uint64_t seq, const uint8_t *outcome, size_t len)
{
    key_t_ k;
    wr_t w;
    if (!tx->dedup)
        return ORBIT_EIO;
    seq_key(&k, seq);
    wr_start(&w, tx->scratch);
    wr_i64(&w, time_ms);
    wr_u64(&w, request_id);
    wr_str(&w, client_id);
    wr_bytes(&w, outcome, len);
    int rc = w.rc ? w.rc : put_flags(tx, &k, w.b->p, w.b->len, MDB_APPEND);
    if (!rc)
        rc = orbit_ledger_hmap_add(tx->dedup, pair_hash(tx->dedup, client_id, request_id), seq);
    return rc;
}

int orbit_ledger_store_dedup_prune(orbit_ledger_tx_t *tx, int64_t cutoff_ms, uint64_t max_count,
                                   uint64_t *count)
{
    MDB_cursor *cur = NULL;
    if (!tx->dedup)
        return ORBIT_EIO;
    int rc = cursor(tx, ORBIT_LEDGER_T_DEDUP, &cur);
    /* The oldest record is the table's first; after each delete the next
     * one is (a descent along the left edge, no key compares). */
    while (!rc && *count > 0) {
        MDB_val k, v;
        dedup_rec_t rec;
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (mrc == MDB_NOTFOUND) {
            rc = ORBIT_ECORRUPT; /* the count says there is one */
            break;
        }
        rc = orbit_ledger_store_err(mrc);
        if (!rc && k.mv_size != 8)
            rc = ORBIT_ECORRUPT;
        if (!rc)
            rc = dedup_decode(&v, &rec);
        if (rc)
            break;
        if (rec.time_ms >= cutoff_ms && *count <= max_count)
            break;
        orbit_ledger_hmap_remove(tx->dedup, pair_hash(tx->dedup, rec.client_id, rec.request_id),
                                 rd_be64(k.mv_data));
        rc = orbit_ledger_store_err(mdb_cursor_del(cur, 0));
        if (!rc)
            (*count)--;
    }
    return rc;
}

int orbit_ledger_store_dedup_index(orbit_ledger_tx_t *tx, orbit_ledger_hmap_t *d)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc = cursor(tx, ORBIT_LEDGER_T_DEDUP, &cur);
    int mrc = rc ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (!rc && mrc == MDB_SUCCESS) {
        dedup_rec_t rec;
        rc = k.mv_size == 8 ? dedup_decode(&v, &rec) : ORBIT_ECORRUPT;
        if (!rc)
            rc = orbit_ledger_hmap_add(d, pair_hash(d, rec.client_id, rec.request_id),
                                       rd_be64(k.mv_data));
        if (!rc)
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (!rc && mrc != MDB_NOTFOUND)
        rc = orbit_ledger_store_err(mrc);
    return rc;
}

/* ------------------------------------------------------------ history */

static void history_key(key_t_ *k, uint64_t index)
{
    k->b[0] = 'h';
    be64(k->b + 1, index);
    k->n = 9;
}

int orbit_ledger_store_history_put(orbit_ledger_tx_t *tx, uint64_t index, int64_t time_ms,
                                   const char *keys, size_t keys_len, size_t nkeys,
                                   const uint8_t *proposal, size_t len)
{
    key_t_ k;
    wr_t w;
    history_key(&k, index);
    wr_start(&w, tx->scratch);
    wr_i64(&w, time_ms);
    wr_u64(&w, nkeys);
    wr_u64(&w, keys_len);
    wr_bytes(&w, keys, keys_len);
    wr_bytes(&w, proposal, len);
    return w.rc ? w.rc : put_flags(tx, &k, w.b->p, w.b->len, MDB_APPEND);
}

typedef struct {
    orbit_ledger_commit_fn fn;
    void *ctx;
} history_walk_t;

static int history_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    history_walk_t *w = ctx;
    if (k->mv_size != 8)
        return ORBIT_ECORRUPT;
    rd_t r;
    orbit_ledger_commit_t c = {.index = rd_be64(k->mv_data)};
    rd_start(&r, v);
    c.time_ms = rd_i64(&r);
    c.nkeys = (size_t)rd_u64(&r);
    uint64_t klen = rd_u64(&r);
    if (klen > r.n)
        r.bad = true;
    c.keys = (const char *)rd_take(&r, (size_t)klen);
    if (r.bad || (klen && c.keys[klen - 1] != '\0'))
        return ORBIT_ECORRUPT;
    c.proposal = r.p;
    c.proposal_len = r.n;
    int rc = w->fn(w->ctx, &c);
    return rc > 0 ? 1 : rc; /* > 0: stop, history_each returns ORBIT_OK */
}

int orbit_ledger_store_history_each(orbit_ledger_tx_t *tx, uint64_t from, orbit_ledger_commit_fn fn,
                                    void *ctx)
{
    key_t_ start;
    history_key(&start, from);
    history_walk_t w = {fn, ctx};
    MDB_val k = {start.n - 1, start.b + 1};
    return table_walk(tx, ORBIT_LEDGER_T_HISTORY, &k, history_one, &w);
}

int orbit_ledger_store_history_drop(orbit_ledger_tx_t *tx, uint64_t upto)
{
    MDB_cursor *cur;
    int rc = cursor(tx, ORBIT_LEDGER_T_HISTORY, &cur);
    while (!rc) {
        MDB_val k, v;
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (mrc == MDB_NOTFOUND)
            break;
        rc = orbit_ledger_store_err(mrc);
        if (rc)
            break;
        if (k.mv_size != 8 || rd_be64(k.mv_data) > upto)
            break;
        rc = orbit_ledger_store_err(mdb_cursor_del(cur, 0));
    }
    return rc;
}
