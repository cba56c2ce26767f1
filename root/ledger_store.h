/* ledger_store: internal to orbit_ledger — the LMDB key layout of the ledger,
 * its versioned record codecs, and typed reads and writes inside one
 * transaction. Nothing here judges a commitment; ledger.c does.
 *
 * Layout: one LMDB sub-database (named DBI) per table, so that each tree is
 * only as deep as its own table; a record is known by its table's tag byte
 * and its key within the table:
 *   'm' name               meta (u64 or string): see ORBIT_LEDGER_META_*
 *   'k' key                last-changed ledger index of a key (u64)
 *   'p' capsule            placement
 *   'n' node               node usage (absent: nothing placed)
 *   'g' gang               gang (member capsules)
 *   'q' principal          quota grant and usage
 *   'l' resource           lease
 *   'i' identity           bound capsule;  'c' capsule → identity
 *   'o' mission/module     module spec (packed Orbit__Ledger__ModuleSpec)
 *   's' shard              shard;  'r' rack → owner shard
 *   'x' be64(expires) kind key     expiry index of leases and quotas
 *   'd' be64(seq)          dedup record: time, request id, client id,
 *                          outcome; appended (MDB_APPEND), pruned from
 *                          its front; found by pair through an index in
 *                          memory (ledger_hmap.h)
 *   'h' be64(index)        history of committed commitments (appended)
 * The unnamed main database holds only the sub-database names ("#" + the
 * table's name). The logical record of a table entry is (tag + key, value):
 * the state hash walks the tables in tag order and each in key order, so it
 * sees the records in the order one keyspace sorted by tag + key would.
 * Integers in keys are big-endian (key order = numeric order); record values
 * start with ORBIT_LEDGER_FORMAT and use big-endian fixed-width integers and
 * u8-length-prefixed strings, so equal states are equal bytes.
 *
 * Every function returns 0, ORBIT_ENOTFOUND (gets), ORBIT_ENOMEM, ORBIT_EIO
 * (LMDB) or ORBIT_ECORRUPT (a record that does not decode). Writes are
 * visible to later reads of the same transaction. Walks (*_each) call fn
 * for each record; a non-zero return of fn stops the walk and is returned.
 *
 * Thread rules: those of the transaction (the ledger's thread). */
#ifndef ORBIT_LEDGER_STORE_H
#define ORBIT_LEDGER_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"

/* 2: the node → capsule index ('e'); 3: one sub-database per table, the
 * dedup age index carries the pair's time; 4: a placement's key is not in
 * the last-changed table while the placement exists (its record's index
 * is the key's last change); 5: no node → capsule index (it is kept in
 * memory, ledger_nodes.h); 6: a node's record carries its last change; 7:
 * dedup records keyed by sequence number, no age index (pairs are found
 * through an index in memory, ledger_hmap.h) */
#define ORBIT_LEDGER_FORMAT 7

/* Meta names (u64 unless said). */
#define ORBIT_LEDGER_META_VERSION     "version"
#define ORBIT_LEDGER_META_APPLIED     "applied"   /* not hashed */
#define ORBIT_LEDGER_META_TIME        "time"      /* not hashed (i64) */
#define ORBIT_LEDGER_META_CLUSTER     "cluster"   /* not hashed (string) */
#define ORBIT_LEDGER_META_COMPACTED   "compacted" /* not hashed */
#define ORBIT_LEDGER_META_INDEX       "index"
#define ORBIT_LEDGER_META_CHAIN       "chain" /* 32 bytes */
#define ORBIT_LEDGER_META_UNDECODABLE "undecodable"
#define ORBIT_LEDGER_META_DEDUP_SEQ   "dedup_seq"
#define ORBIT_LEDGER_META_DEDUP_COUNT "dedup_count"

/* Growable scratch buffer (owned by the ledger, reused across records). */
typedef struct {
    uint8_t *p;
    size_t len;
    size_t cap;
} orbit_ledger_buf_t;

/* The tables, in tag order (the order of the state hash). */
typedef enum {
    ORBIT_LEDGER_T_CAPSULE_IDENTITY, /* 'c' */
    ORBIT_LEDGER_T_DEDUP,            /* 'd' */
    ORBIT_LEDGER_T_GANG,             /* 'g' */
    ORBIT_LEDGER_T_HISTORY,          /* 'h' */
    ORBIT_LEDGER_T_IDENTITY,         /* 'i' */
    ORBIT_LEDGER_T_KEY,              /* 'k' */
    ORBIT_LEDGER_T_LEASE,            /* 'l' */
    ORBIT_LEDGER_T_META,             /* 'm' */
    ORBIT_LEDGER_T_NODE,             /* 'n' */
    ORBIT_LEDGER_T_MODULE,           /* 'o' */
    ORBIT_LEDGER_T_PLACEMENT,        /* 'p' */
    ORBIT_LEDGER_T_QUOTA,            /* 'q' */
    ORBIT_LEDGER_T_RACK,             /* 'r' */
    ORBIT_LEDGER_T_SHARD,            /* 's' */
    ORBIT_LEDGER_T_EXPIRY,           /* 'x' */
    ORBIT_LEDGER_TABLES
} orbit_ledger_table_t;

/* Sub-databases the environment needs (mdb_env_set_maxdbs). */
#define ORBIT_LEDGER_MAXDBS (ORBIT_LEDGER_TABLES + 2)

/* A transaction and the handles it works with. cur[t] is opened on the
 * first use of table t and kept, so that a read and a write of the same key
 * (get then put) find the leaf page already under the cursor instead of
 * descending the tree twice; orbit_ledger_store_tx_close closes them. The
 * node cache holds the last node record read or written in this
 * transaction (every node write goes through put_node, which keeps it). */
typedef struct {
    MDB_txn *txn;
    const MDB_dbi *dbi; /* ORBIT_LEDGER_TABLES handles */
    MDB_cursor *cur[ORBIT_LEDGER_TABLES];
    orbit_ledger_buf_t *scratch;
    bool node_cached;
    char node_name[ORBIT_LEDGER_NAME_MAX + 1];
    orbit_ledger_node_t node;
    struct orbit_ledger_hmap *dedup; /* write transactions: dedup pair → record seq */
} orbit_ledger_tx_t;

/* Open (with create: creating those missing) the table handles of txn's
 * environment into dbi. Errors: ORBIT_ENOTFOUND (a table is missing and
 * create is false), ORBIT_EIO. */
int orbit_ledger_store_tables_open(MDB_txn *txn, bool create, MDB_dbi dbi[ORBIT_LEDGER_TABLES]);

/* Tag byte of table t. */
char orbit_ledger_store_table_tag(orbit_ledger_table_t t);

/* Close the cursors tx opened (before its transaction ends; a read-only
 * transaction's cursors must be closed by hand) and forget the node cache. */
void orbit_ledger_store_tx_close(orbit_ledger_tx_t *tx);

/* Map an LMDB return code to a project code. */
int orbit_ledger_store_err(int mdb_rc);

/* Make room for n more bytes after b->len. Errors: ORBIT_ENOMEM. */
int orbit_ledger_buf_reserve(orbit_ledger_buf_t *b, size_t n);
/* Append n bytes to b. Errors: ORBIT_ENOMEM (b unchanged). */
int orbit_ledger_buf_put(orbit_ledger_buf_t *b, const void *data, size_t n);
void orbit_ledger_buf_free(orbit_ledger_buf_t *b);

/* True if the record with key k (klen bytes) of table t is part of the
 * state hash (not history, not the local meta). */
bool orbit_ledger_store_hashed(orbit_ledger_table_t t, const uint8_t *k, size_t klen);

/* ---------------------------------------------------------------- meta */
int orbit_ledger_store_get_u64(orbit_ledger_tx_t *tx, const char *name, uint64_t *v);
int orbit_ledger_store_put_u64(orbit_ledger_tx_t *tx, const char *name, uint64_t v);
/* Raw meta bytes (borrowed from the transaction). */
int orbit_ledger_store_get_raw(orbit_ledger_tx_t *tx, const char *name, const uint8_t **v,
                               size_t *len);
int orbit_ledger_store_put_raw(orbit_ledger_tx_t *tx, const char *name, const void *v, size_t len);

/* ---------------------------------------------------------------- key index */
/* Last-changed index of key; 0 (and 0 returned) if never touched. For
 * "placement/<capsule>" while the placement exists: its record's index; for
 * "node/<node>" while it holds placements: its record's changed index. */
int orbit_ledger_store_key_index(orbit_ledger_tx_t *tx, const char *key, uint64_t *index);
int orbit_ledger_store_touch(orbit_ledger_tx_t *tx, const char *key, uint64_t index);
/* True when key's own record carries index as its last change, so the key
 * needs no last-changed record: "placement/<capsule>" whose placement was
 * created at index, "node/<node>" whose record was written at index. */
bool orbit_ledger_store_key_carried(orbit_ledger_tx_t *tx, const char *key, uint64_t index);

/* ---------------------------------------------------------------- objects */
int orbit_ledger_store_get_placement(orbit_ledger_tx_t *tx, const char *capsule,
                                     orbit_ledger_placement_t *out);
int orbit_ledger_store_put_placement(orbit_ledger_tx_t *tx, const orbit_ledger_placement_t *p);
int orbit_ledger_store_del_placement(orbit_ledger_tx_t *tx, const char *capsule);

/* Every placement in capsule order. */
typedef int (*orbit_ledger_store_placement_fn)(void *ctx, const orbit_ledger_placement_t *p);
int orbit_ledger_store_placement_each(orbit_ledger_tx_t *tx, orbit_ledger_store_placement_fn fn,
                                      void *ctx);

/* Zero usage if absent. A put is the node's change at ledger index `index`,
 * which the record carries (n->changed is ignored): what
 * unchanged_since("node/...") judges while the node holds placements. A
 * put with no placements deletes the record (the caller then records the
 * key's change in the last-changed table). */
int orbit_ledger_store_get_node(orbit_ledger_tx_t *tx, const char *node, orbit_ledger_node_t *out);
int orbit_ledger_store_put_node(orbit_ledger_tx_t *tx, const char *node,
                                const orbit_ledger_node_t *n, uint64_t index);

/* A put with no grant and zero usage deletes the record. */
int orbit_ledger_store_get_quota(orbit_ledger_tx_t *tx, const char *principal,
                                 orbit_ledger_quota_t *out);
int orbit_ledger_store_put_quota(orbit_ledger_tx_t *tx, const char *principal,
                                 const orbit_ledger_quota_t *q);
/* Every quota record (grant or usage) in principal order. */
typedef int (*orbit_ledger_store_quota_fn)(void *ctx, const char *principal,
                                           const orbit_ledger_quota_t *q);
int orbit_ledger_store_quota_each(orbit_ledger_tx_t *tx, orbit_ledger_store_quota_fn fn, void *ctx);

int orbit_ledger_store_get_lease(orbit_ledger_tx_t *tx, const char *resource,
                                 orbit_ledger_lease_t *out);
int orbit_ledger_store_put_lease(orbit_ledger_tx_t *tx, const char *resource,
                                 const orbit_ledger_lease_t *ls);

/* Identity bindings, both directions (bind writes both, unbind deletes both). */
int orbit_ledger_store_get_identity(orbit_ledger_tx_t *tx, const char *identity,
                                    char capsule[ORBIT_LEDGER_NAME_MAX + 1]);
int orbit_ledger_store_get_capsule_identity(orbit_ledger_tx_t *tx, const char *capsule,
                                            char identity[ORBIT_LEDGER_NAME_MAX + 1]);
int orbit_ledger_store_bind(orbit_ledger_tx_t *tx, const char *identity, const char *capsule);
int orbit_ledger_store_unbind(orbit_ledger_tx_t *tx, const char *identity, const char *capsule);
/* Every binding in identity order. */
typedef int (*orbit_ledger_store_pair_fn)(void *ctx, const char *a, const char *b);
int orbit_ledger_store_identity_each(orbit_ledger_tx_t *tx, orbit_ledger_store_pair_fn fn,
                                     void *ctx);

/* Module spec; *spec malloc'd (protobuf-c). key is "mission/module". */
int orbit_ledger_store_get_module(orbit_ledger_tx_t *tx, const char *key,
                                  Orbit__Ledger__ModuleSpec **spec, uint64_t *epoch);
int orbit_ledger_store_put_module(orbit_ledger_tx_t *tx, const char *key,
                                  const Orbit__Ledger__ModuleSpec *spec, uint64_t epoch);
int orbit_ledger_store_del_module(orbit_ledger_tx_t *tx, const char *key);
/* Every module spec in key order; spec is borrowed for the call. */
typedef int (*orbit_ledger_store_module_fn)(void *ctx, const char *key,
                                            const Orbit__Ledger__ModuleSpec *spec, uint64_t epoch);
int orbit_ledger_store_module_each(orbit_ledger_tx_t *tx, orbit_ledger_store_module_fn fn,
                                   void *ctx);

/* Gang: *members (may be NULL) points into the transaction's memory:
 * out->members names of NAME_MAX+1 bytes each, read them with
 * orbit_ledger_store_gang_member. */
int orbit_ledger_store_get_gang(orbit_ledger_tx_t *tx, const char *gang, orbit_ledger_gang_t *out,
                                const uint8_t **members, size_t *members_len);
/* The i-th member name of a gang record's member block (into name).
 * Errors: ORBIT_ECORRUPT. */
int orbit_ledger_store_gang_member(const uint8_t *members, size_t len, size_t *off,
                                   char name[ORBIT_LEDGER_NAME_MAX + 1]);
int orbit_ledger_store_put_gang(orbit_ledger_tx_t *tx, const orbit_ledger_gang_t *g,
                                const char *const *members, size_t n);
int orbit_ledger_store_del_gang(orbit_ledger_tx_t *tx, const char *gang);

int orbit_ledger_store_get_shard(orbit_ledger_tx_t *tx, const char *shard,
                                 orbit_ledger_shard_t *out);
int orbit_ledger_store_put_shard(orbit_ledger_tx_t *tx, const orbit_ledger_shard_t *s);
int orbit_ledger_store_del_shard(orbit_ledger_tx_t *tx, const char *shard);

int orbit_ledger_store_get_rack(orbit_ledger_tx_t *tx, const char *rack,
                                char shard[ORBIT_LEDGER_NAME_MAX + 1]);
int orbit_ledger_store_put_rack(orbit_ledger_tx_t *tx, const char *rack, const char *shard);
/* Every shard, then every rack, in name order. */
typedef int (*orbit_ledger_shard_fn)(void *ctx, const orbit_ledger_shard_t *s);
typedef int (*orbit_ledger_rack_fn)(void *ctx, const char *rack, const char *shard);
int orbit_ledger_store_shard_each(orbit_ledger_tx_t *tx, orbit_ledger_shard_fn fn, void *ctx);
int orbit_ledger_store_rack_each(orbit_ledger_tx_t *tx, orbit_ledger_rack_fn fn, void *ctx);

/* ---------------------------------------------------------------- expiry index */
int orbit_ledger_store_expiry_add(orbit_ledger_tx_t *tx, int64_t expires_ms,
                                  Orbit__Ledger__RefKind kind, const char *key);
int orbit_ledger_store_expiry_del(orbit_ledger_tx_t *tx, int64_t expires_ms,
                                  Orbit__Ledger__RefKind kind, const char *key);
/* Expiry index entries with expires <= now_ms, earliest first. */
int orbit_ledger_store_expiry_due(orbit_ledger_tx_t *tx, int64_t now_ms, orbit_ledger_due_t *out,
                                  size_t max, size_t *n);

/* ---------------------------------------------------------------- dedup */
/* The stored outcome bytes (borrowed) of (client_id, request_id). */
int orbit_ledger_store_dedup_get(orbit_ledger_tx_t *tx, const char *client_id, uint64_t request_id,
                                 const uint8_t **outcome, size_t *len);
/* Store the outcome of (client_id, request_id) as record seq (above every
 * stored one: appended) and add it to tx->dedup. */
int orbit_ledger_store_dedup_put(orbit_ledger_tx_t *tx, const char *client_id, uint64_t request_id,
                                 int64_t time_ms, uint64_t seq, const uint8_t *outcome, size_t len);
/* Drop records older than cutoff_ms, then the oldest beyond max_count, from
 * the table's front (and from tx->dedup); *count (the number of records) is
 * updated. */
int orbit_ledger_store_dedup_prune(orbit_ledger_tx_t *tx, int64_t cutoff_ms, uint64_t max_count,
                                   uint64_t *count);
/* Add every stored record to d (built when a ledger first needs it).
 * Errors: ORBIT_ENOMEM, ORBIT_ECORRUPT, ORBIT_EIO. */
int orbit_ledger_store_dedup_index(orbit_ledger_tx_t *tx, struct orbit_ledger_hmap *d);

/* ---------------------------------------------------------------- history */
/* keys: nkeys NUL-terminated strings back to back (keys_len bytes). index
 * must be above every stored one (history is appended). */
int orbit_ledger_store_history_put(orbit_ledger_tx_t *tx, uint64_t index, int64_t time_ms,
                                   const char *keys, size_t keys_len, size_t nkeys,
                                   const uint8_t *proposal, size_t len);
int orbit_ledger_store_history_each(orbit_ledger_tx_t *tx, uint64_t from, orbit_ledger_commit_fn fn,
                                    void *ctx);
/* Delete history records with index <= upto. */
int orbit_ledger_store_history_drop(orbit_ledger_tx_t *tx, uint64_t upto);

#endif
