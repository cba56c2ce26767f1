/* ledger: the Ephemeris state machine — deterministic apply of committed
 * entries to LMDB, reads, state hash, history, snapshots. */
#include "ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger_check.h"
#include "ledger_hmap.h"
#include "ledger_nodes.h"
#include "ledger_prefault.h"
#include "ledger_sha256.h"
#include "ledger_store.h"
#include "orbit_err.h"
#include "orbit_json.h"
#include "orbit_wire.h"

#define TIME_MAX (1LL << 62) /* entry times above this are refused (no overflow in time + ttl) */

struct orbit_ledger {
    MDB_env *env;                     /* NULL after a failed restore */
    MDB_dbi dbi[ORBIT_LEDGER_TABLES]; /* reopened with the environment */
    char *dir;
    orbit_ledger_buf_t scratch; /* record encoding */
    orbit_ledger_buf_t keys;    /* keys touched by the proposal being applied */
    size_t nkeys;
    orbit_ledger_buf_t keys_sorted;    /* keys_commit's scratch: pointers, then copies */
    orbit_ledger_buf_t packed;         /* proposal / outcome packing */
    orbit_arena_t *arena;              /* the entry being applied, decoded */
    orbit_ledger_nodes_t *nodes;       /* node -> capsules; NULL until first needed */
    orbit_ledger_hmap_t *dedup;        /* dedup pair -> record seq; NULL until first needed */
    orbit_ledger_prefault_t *prefault; /* with env; NULL if it could not start */
    /* Cache of the committed meta (updated after each commit). */
    uint64_t applied;
    uint64_t index;
    int64_t time_ms;
    uint8_t chain[ORBIT_LEDGER_HASH_LEN];
    char cluster[ORBIT_LEDGER_NAME_MAX + 1];
    bool discarded;        /* a crashed boot's environment was thrown away on open */
    uint64_t history_keep; /* commitments of history kept by apply; 0: all */
    /* The last state hash, valid until the state changes (status polls
     * hash an idle ledger often; the hash walks the whole state). */
    bool hash_valid;
    uint8_t hash[ORBIT_LEDGER_HASH_LEN];
};

/* ------------------------------------------------------------ transactions */

static int tx_begin(orbit_ledger_t *l, bool write, orbit_ledger_tx_t *tx)
{
    if (!l->env)
        return ORBIT_EIO;
    memset(tx, 0, sizeof *tx);
    tx->dbi = l->dbi;
    tx->scratch = &l->scratch;
    return orbit_ledger_store_err(mdb_txn_begin(l->env, NULL, write ? 0 : MDB_RDONLY, &tx->txn));
}

static void tx_abort(orbit_ledger_tx_t *tx)
{
    orbit_ledger_store_tx_close(tx);
    if (tx->txn)
        mdb_txn_abort(tx->txn);
    tx->txn = NULL;
}

static int tx_commit(orbit_ledger_tx_t *tx)
{
    orbit_ledger_store_tx_close(tx);
    int rc = orbit_ledger_store_err(mdb_txn_commit(tx->txn));
    tx->txn = NULL;
    return rc;
}

/* A u64 meta value, 0 when absent. */
static int meta_u64(orbit_ledger_tx_t *tx, const char *name, uint64_t *v)
{
    int rc = orbit_ledger_store_get_u64(tx, name, v);
    if (rc == ORBIT_ENOTFOUND) {
        *v = 0;
        rc = ORBIT_OK;
    }
    return rc;
}

/* Load the cached meta from tx. */
static int load_cache(orbit_ledger_t *l, orbit_ledger_tx_t *tx)
{
    uint64_t t = 0;
    const uint8_t *p;
    size_t n;
    int rc = meta_u64(tx, ORBIT_LEDGER_META_APPLIED, &l->applied);
    if (!rc)
        rc = meta_u64(tx, ORBIT_LEDGER_META_INDEX, &l->index);
    if (!rc)
        rc = meta_u64(tx, ORBIT_LEDGER_META_TIME, &t);
    if (rc)
        return rc;
    l->time_ms = (int64_t)t;
    memset(l->chain, 0, sizeof l->chain);
    rc = orbit_ledger_store_get_raw(tx, ORBIT_LEDGER_META_CHAIN, &p, &n);
    if (!rc && n != sizeof l->chain)
        return ORBIT_ECORRUPT;
    if (!rc)
        memcpy(l->chain, p, n);
    else if (rc != ORBIT_ENOTFOUND)
        return rc;
    l->cluster[0] = '\0';
    rc = orbit_ledger_store_get_raw(tx, ORBIT_LEDGER_META_CLUSTER, &p, &n);
    if (!rc && n >= sizeof l->cluster)
        return ORBIT_ECORRUPT;
    if (!rc) {
        memcpy(l->cluster, p, n);
        l->cluster[n] = '\0';
    }
    return rc == ORBIT_ENOTFOUND ? ORBIT_OK : rc;
}

/* ------------------------------------------------------------ durability */

/* The environment runs with MDB_NOSYNC | MDB_WRITEMAP: a commit is a write to
 * the shared mapping, no fsync. Durability comes from the Raft log, which is
 * fsynced before an entry is acknowledged and replayed on every start (the
 * consensus seam skips entries at or below the applied index). A process
 * crash (kill -9) loses nothing: every commit is in the page cache, which
 * outlives the process, and LMDB writes the meta page last. An OS crash or a
 * power loss may leave a torn environment, though. So while the environment
 * is open, OPEN_MARKER holds the kernel's boot id; a start that finds a
 * marker written under another boot (or unreadable) discards data.mdb and
 * starts empty, and Raft rebuilds the state from its durable snapshot and
 * log. A clean close syncs the environment, then removes the marker. */
#define OPEN_MARKER "open.boot"
#define BOOT_ID_LEN 36

static void boot_id(char out[BOOT_ID_LEN + 1])
{
    memset(out, 0, BOOT_ID_LEN + 1);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (!fgets(out, BOOT_ID_LEN + 1, f))
            out[0] = '\0';
        fclose(f);
    }
    out[strcspn(out, "\n")] = '\0';
}

static int sync_dir(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return ORBIT_EIO;
    int rc = fsync(dfd) == 0 ? ORBIT_OK : ORBIT_EIO;
    close(dfd);
    return rc;
}

/* Discard a possibly torn environment left by a crashed boot, then mark the
 * directory open under this boot. */
static int marker_open(orbit_ledger_t *l, char *err, size_t errlen)
{
    char path[4096], data[4096], lock[4096], now[BOOT_ID_LEN + 1], then[BOOT_ID_LEN + 2] = "";
    if ((size_t)snprintf(path, sizeof path, "%s/" OPEN_MARKER, l->dir) >= sizeof path ||
        (size_t)snprintf(data, sizeof data, "%s/data.mdb", l->dir) >= sizeof data ||
        (size_t)snprintf(lock, sizeof lock, "%s/lock.mdb", l->dir) >= sizeof lock) {
        orbit_errf(err, errlen, "ledger: data directory path too long");
        return ORBIT_EINVAL;
    }
    boot_id(now);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(then, sizeof then, f))
            then[0] = '\0';
        fclose(f);
        then[strcspn(then, "\n")] = '\0';
        if (!now[0] || strcmp(then, now) != 0) {
            /* Open when the machine went down: the page cache that held the
             * unsynced commits is gone. */
            if ((unlink(data) != 0 && errno != ENOENT) || (unlink(lock) != 0 && errno != ENOENT)) {
                orbit_errf(err, errlen,
                           "ledger: cannot discard the state left by a crash in %s: %s", l->dir,
                           strerror(errno));
                return ORBIT_EIO;
            }
            l->discarded = true;
        }
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t n = strlen(now);
    bool ok =
        fd >= 0 && write(fd, now, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok || sync_dir(l->dir) != ORBIT_OK) {
        orbit_errf(err, errlen, "ledger: cannot write %s: %s", path, strerror(errno));
        return ORBIT_EIO;
    }
    return ORBIT_OK;
}

/* Sync the environment; on success the marker goes. */
static void marker_close(orbit_ledger_t *l)
{
    char path[4096];
    if (!l->env || mdb_env_sync(l->env, 1) != MDB_SUCCESS)
        return;
    if ((size_t)snprintf(path, sizeof path, "%s/" OPEN_MARKER, l->dir) < sizeof path &&
        unlink(path) == 0)
        sync_dir(l->dir);
}

bool orbit_ledger_discarded(const orbit_ledger_t *l)
{
    return l && l->discarded;
}

/* ------------------------------------------------------------ lifecycle */

/* The format version the unnamed main database of txn says: version 3 and
 * later keep it in the "#meta" table (*version is then 3: the table says
 * which); versions 1 and 2 kept every record in the main database, the
 * version under "mversion". *fresh: the main database is empty.
 * Errors: ORBIT_ENOTFOUND (an LMDB database that is not a ledger),
 * ORBIT_EIO, ORBIT_ECORRUPT. */
static int main_version(MDB_txn *txn, uint64_t *version, bool *fresh)
{
    MDB_dbi main;
    MDB_stat st;
    MDB_val k = {8, "mversion"}, v;
    *fresh = false;
    int rc = orbit_ledger_store_err(mdb_dbi_open(txn, NULL, 0, &main));
    if (!rc)
        rc = orbit_ledger_store_err(mdb_stat(txn, main, &st));
    if (rc)
        return rc == ORBIT_ENOTFOUND ? ORBIT_EIO : rc;
    if (st.ms_entries == 0) {
        *fresh = true;
        return ORBIT_OK;
    }
    rc = orbit_ledger_store_err(mdb_get(txn, main, &k, &v));
    if (!rc) {
        /* formats 1 and 2: the u64 is the record's value */
        if (v.mv_size != 8)
            return ORBIT_ECORRUPT;
        *version = 0;
        for (int i = 0; i < 8; i++)
            *version = *version << 8 | ((const uint8_t *)v.mv_data)[i];
        return ORBIT_OK;
    }
    if (rc != ORBIT_ENOTFOUND)
        return rc;
    MDB_dbi meta;
    rc = orbit_ledger_store_err(mdb_dbi_open(txn, "#meta", 0, &meta));
    if (rc == ORBIT_EIO)
        rc = ORBIT_ENOTFOUND; /* a "#meta" that is not a table (MDB_INCOMPATIBLE) */
    if (!rc)
        *version = ORBIT_LEDGER_FORMAT;
    return rc;
}

/* Open the environment in l->dir, stamp or check the format version, load
 * the cache. On failure l->env is NULL. */
static int env_open(orbit_ledger_t *l, char *err, size_t errlen)
{
    orbit_ledger_tx_t tx = {0};
    l->hash_valid = false;
    orbit_ledger_nodes_destroy(&l->nodes); /* of the state before, if any */
    orbit_ledger_hmap_destroy(&l->dedup);
    int mrc = mdb_env_create(&l->env);
    if (mrc) {
        l->env = NULL;
        orbit_errf(err, errlen, "ledger: %s", mdb_strerror(mrc));
        return orbit_ledger_store_err(mrc);
    }
    mrc = mdb_env_set_mapsize(l->env, (size_t)ORBIT_LEDGER_MAP_SIZE);
    if (!mrc)
        mrc = mdb_env_set_maxdbs(l->env, ORBIT_LEDGER_MAXDBS);
    if (!mrc)
        /* No sync on commit: see "durability" above. No readahead on the
         * map (MADV_RANDOM): the pages a transaction writes next are read
         * and mapped ahead by a thread (ledger_prefault.h), which a fault's
         * readahead would undo. That thread also asks the kernel to read
         * the pages in use at start, so that a cold file (after a clean
         * reboot) is not read a page at a time. */
        mrc = mdb_env_open(l->env, l->dir, MDB_NOTLS | MDB_NOSYNC | MDB_WRITEMAP | MDB_NORDAHEAD,
                           0600);
    if (mrc) {
        orbit_errf(err, errlen, "ledger: cannot open %s: %s", l->dir, mdb_strerror(mrc));
        int rc = orbit_ledger_store_err(mrc);
        mdb_env_close(l->env);
        l->env = NULL;
        return rc == ORBIT_ENOTFOUND ? ORBIT_EIO : rc;
    }
    uint64_t version = 0;
    bool fresh = false;
    int rc = tx_begin(l, true, &tx);
    if (!rc)
        rc = main_version(tx.txn, &version, &fresh);
    if (!rc && fresh)
        version = ORBIT_LEDGER_FORMAT; /* a new environment: this format */
    if (!rc && version == ORBIT_LEDGER_FORMAT)
        rc = orbit_ledger_store_tables_open(tx.txn, true, l->dbi);
    if (!rc && version == ORBIT_LEDGER_FORMAT && !fresh)
        rc = orbit_ledger_store_get_u64(&tx, ORBIT_LEDGER_META_VERSION, &version);
    if (!rc && fresh)
        rc = orbit_ledger_store_put_u64(&tx, ORBIT_LEDGER_META_VERSION, version);
    if (rc == ORBIT_ENOTFOUND) {
        orbit_errf(err, errlen, "ledger: %s holds an LMDB database that is not a ledger", l->dir);
        rc = ORBIT_ECORRUPT;
    } else if (!rc && version != ORBIT_LEDGER_FORMAT) {
        orbit_errf(err, errlen,
                   "ledger: %s has format version %" PRIu64 ", this build reads %d (its state "
                   "comes back from the other replicas once it is deleted; a local "
                   "constellation: tools/orbit-up.sh reset)",
                   l->dir, version, ORBIT_LEDGER_FORMAT);
        rc = ORBIT_ECORRUPT;
    }
    if (!rc)
        rc = load_cache(l, &tx);
    if (!rc)
        rc = tx_commit(&tx);
    if (rc) {
        tx_abort(&tx);
        if (err && errlen && !*err)
            orbit_errf(err, errlen, "ledger: cannot open %s: %s", l->dir, orbit_strerror(rc));
        mdb_env_close(l->env);
        l->env = NULL;
        return rc;
    }
    l->prefault = orbit_ledger_prefault_start(l->env);
    return ORBIT_OK;
}

/* Close l->env (the prefault thread reads through its descriptor: stopped
 * first). */
static void env_close(orbit_ledger_t *l)
{
    orbit_ledger_prefault_stop(&l->prefault);
    if (l->env)
        mdb_env_close(l->env);
    l->env = NULL;
}

int orbit_ledger_open(const char *dir, orbit_ledger_t **lp, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!lp)
        return ORBIT_EINVAL;
    *lp = NULL;
    if (!dir || !*dir) {
        orbit_errf(err, errlen, "ledger: no data directory");
        return ORBIT_EINVAL;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        orbit_errf(err, errlen, "ledger: cannot create %s: %s", dir, strerror(errno));
        return ORBIT_EIO;
    }
    orbit_ledger_t *l = calloc(1, sizeof *l);
    /* Decoding an entry into an arena: hundreds of proposals cost a few
     * chunk allocations instead of several mallocs and frees each. */
    if (!l || !(l->dir = strdup(dir)) || !(l->arena = orbit_arena_new(64 << 10))) {
        if (l)
            free(l->dir);
        free(l);
        orbit_errf(err, errlen, "ledger: out of memory");
        return ORBIT_ENOMEM;
    }
    int rc = marker_open(l, err, errlen);
    if (!rc)
        rc = env_open(l, err, errlen);
    if (rc) {
        orbit_ledger_close(&l);
        return rc;
    }
    *lp = l;
    return ORBIT_OK;
}

void orbit_ledger_close(orbit_ledger_t **lp)
{
    if (!lp || !*lp)
        return;
    orbit_ledger_t *l = *lp;
    if (l->env)
        marker_close(l);
    env_close(l);
    orbit_ledger_buf_free(&l->scratch);
    orbit_ledger_buf_free(&l->keys);
    orbit_ledger_buf_free(&l->keys_sorted);
    orbit_ledger_buf_free(&l->packed);
    orbit_arena_destroy(&l->arena);
    orbit_ledger_nodes_destroy(&l->nodes);
    orbit_ledger_hmap_destroy(&l->dedup);
    free(l->dir);
    free(l);
    *lp = NULL;
}

const char *orbit_ledger_cluster_id(const orbit_ledger_t *l)
{
    return l ? l->cluster : "";
}

int orbit_ledger_set_cluster_id(orbit_ledger_t *l, const char *id, char *err, size_t errlen)
{
    orbit_ledger_tx_t tx = {0};
    if (!l || !orbit_ledger_id_valid(id)) {
        orbit_errf(err, errlen, "ledger: invalid cluster id");
        return ORBIT_EINVAL;
    }
    if (l->cluster[0]) {
        if (!strcmp(l->cluster, id))
            return ORBIT_OK;
        orbit_errf(err, errlen, "ledger: data directory %s belongs to cluster %s, not %s", l->dir,
                   l->cluster, id);
        return ORBIT_EINVAL;
    }
    int rc = tx_begin(l, true, &tx);
    if (!rc)
        rc = orbit_ledger_store_put_raw(&tx, ORBIT_LEDGER_META_CLUSTER, id, strlen(id));
    if (!rc)
        rc = tx_commit(&tx);
    tx_abort(&tx);
    if (rc) {
        orbit_errf(err, errlen, "ledger: cannot store the cluster id: %s", orbit_strerror(rc));
        return rc;
    }
    snprintf(l->cluster, sizeof l->cluster, "%s", id);
    return ORBIT_OK;
}

/* ------------------------------------------------------------ touched keys */

static int key_add(orbit_ledger_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int key_add(orbit_ledger_t *l, const char *fmt, ...)
{
    char k[ORBIT_LEDGER_KEY_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(k, sizeof k, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof k)
        return ORBIT_EINVAL; /* names are validated: cannot happen */
    int rc = orbit_ledger_buf_put(&l->keys, k, (size_t)n + 1);
    if (!rc)
        l->nkeys++;
    return rc;
}

/* key_add(l, "<prefix><name>") without formatting (the hot path). */
static int key_add_name(orbit_ledger_t *l, const char *prefix, const char *name)
{
    size_t pn = strlen(prefix), nn = strlen(name);
    if (pn + nn > ORBIT_LEDGER_KEY_MAX)
        return ORBIT_EINVAL; /* names are validated: cannot happen */
    int rc = orbit_ledger_buf_reserve(&l->keys, pn + nn + 1);
    if (rc)
        return rc;
    memcpy(l->keys.p + l->keys.len, prefix, pn);
    memcpy(l->keys.p + l->keys.len + pn, name, nn + 1);
    l->keys.len += pn + nn + 1;
    l->nkeys++;
    return ORBIT_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sort and deduplicate the touched keys in place; record index on each —
 * except a key whose own record carries it: a placement this proposal
 * created, or a node it changed that still holds placements. Those records
 * hold their last change while they exist (orbit_ledger_store_key_index
 * reads it from there), which saves a random insert into the last-changed
 * table per placement for each (formats 4 and 6). The history still lists
 * every touched key.
 * The pointers and the copy they point into live in l->keys_sorted (no
 * allocation once it has grown to the largest proposal's keys). */
static int keys_commit(orbit_ledger_t *l, orbit_ledger_tx_t *tx, uint64_t index)
{
    if (!l->nkeys)
        return ORBIT_OK;
    size_t vbytes = l->nkeys * sizeof(const char *);
    l->keys_sorted.len = 0;
    int rc = orbit_ledger_buf_reserve(&l->keys_sorted, vbytes + l->keys.len);
    if (rc)
        return rc;
    const char **v = (const char **)(void *)l->keys_sorted.p; /* malloc'd: aligned */
    char *copy = (char *)l->keys_sorted.p + vbytes;
    memcpy(copy, l->keys.p, l->keys.len);
    size_t off = 0;
    for (size_t i = 0; i < l->nkeys; i++) {
        v[i] = copy + off;
        off += strlen(copy + off) + 1;
    }
    if (l->nkeys > 1)
        qsort(v, l->nkeys, sizeof *v, cmp_str);
    size_t n = 0;
    l->keys.len = 0;
    for (size_t i = 0; i < l->nkeys && !rc; i++) {
        if (i && !strcmp(v[i], v[i - 1]))
            continue;
        rc = orbit_ledger_buf_put(&l->keys, v[i], strlen(v[i]) + 1);
        if (!rc && !orbit_ledger_store_key_carried(tx, v[i], index))
            rc = orbit_ledger_store_touch(tx, v[i], index);
        n++;
    }
    l->nkeys = n;
    return rc;
}

/* ------------------------------------------------------------ usage arithmetic */

static bool res_add(orbit_ledger_res_t *sum, const orbit_ledger_res_t *r)
{
    if (sum->cpu_m > ORBIT_LEDGER_SUM_MAX - r->cpu_m || sum->mem > ORBIT_LEDGER_SUM_MAX - r->mem ||
        sum->gpus > ORBIT_LEDGER_SUM_MAX - r->gpus)
        return false;
    sum->cpu_m += r->cpu_m;
    sum->mem += r->mem;
    sum->gpus += r->gpus;
    return true;
}

/* Release r from sum; usage below zero means the store is inconsistent. */
static int res_sub(orbit_ledger_res_t *sum, const orbit_ledger_res_t *r)
{
    if (sum->cpu_m < r->cpu_m || sum->mem < r->mem || sum->gpus < r->gpus)
        return ORBIT_ECORRUPT;
    sum->cpu_m -= r->cpu_m;
    sum->mem -= r->mem;
    sum->gpus -= r->gpus;
    return ORBIT_OK;
}

static int quota_or_empty(orbit_ledger_tx_t *tx, const char *principal, orbit_ledger_quota_t *q)
{
    int rc = orbit_ledger_store_get_quota(tx, principal, q);
    if (rc == ORBIT_ENOTFOUND) {
        memset(q, 0, sizeof *q);
        rc = ORBIT_OK;
    }
    return rc;
}

/* A placement of capsule on node made (add) or removed by the entry being
 * applied: staged in the node index, if there is one yet (the names are
 * copied into the entry's arena, which lives until the commit). */
static int nodes_note(orbit_ledger_t *l, bool add, const char *node, const char *capsule)
{
    if (!l->nodes)
        return ORBIT_OK;
    const char *n = orbit_arena_strdup(l->arena, node);
    const char *c = orbit_arena_strdup(l->arena, capsule);
    return n && c ? orbit_ledger_nodes_stage(l->nodes, add, n, c) : ORBIT_ENOMEM;
}

static int nodes_add_one(void *ctx, const orbit_ledger_placement_t *p)
{
    return orbit_ledger_nodes_set(ctx, true, p->node, p->capsule);
}

/* Build the node index from the placements, read in tx. */
static int nodes_build(orbit_ledger_t *l, orbit_ledger_tx_t *tx)
{
    if (l->nodes)
        return ORBIT_OK;
    orbit_ledger_nodes_t *n = orbit_ledger_nodes_new();
    if (!n)
        return ORBIT_ENOMEM;
    int rc = orbit_ledger_store_placement_each(tx, nodes_add_one, n);
    if (rc)
        orbit_ledger_nodes_destroy(&n);
    l->nodes = n;
    return rc;
}

/* Remove placement p (already read) from its node and principal, as the
 * change at index. */
static int release(orbit_ledger_t *l, orbit_ledger_tx_t *tx, const orbit_ledger_placement_t *p,
                   uint64_t index)
{
    orbit_ledger_node_t n;
    int rc = orbit_ledger_store_get_node(tx, p->node, &n);
    if (!rc && n.placements == 0)
        rc = ORBIT_ECORRUPT;
    if (!rc)
        rc = res_sub(&n.used, &p->envelope);
    if (rc)
        return rc;
    n.placements--;
    rc = orbit_ledger_store_put_node(tx, p->node, &n, index);
    if (!rc && p->principal[0]) {
        orbit_ledger_quota_t q;
        rc = quota_or_empty(tx, p->principal, &q); /* absent: zero usage */
        if (!rc)
            rc = res_sub(&q.used, &p->envelope);
        if (!rc)
            rc = orbit_ledger_store_put_quota(tx, p->principal, &q);
        if (!rc)
            rc = key_add_name(l, "principal/", p->principal);
    }
    if (!rc)
        rc = orbit_ledger_store_del_placement(tx, p->capsule);
    if (!rc)
        rc = nodes_note(l, false, p->node, p->capsule);
    if (!rc)
        rc = key_add_name(l, "placement/", p->capsule);
    if (!rc)
        rc = key_add_name(l, "node/", p->node);
    return rc;
}

/* ------------------------------------------------------------ commitments
 * Each apply_* judges its invariants first (setting v to CONFLICT or
 * INVALID and returning ORBIT_OK without writing anything), then writes.
 * A negative return aborts the whole entry. */

typedef struct {
    orbit_ledger_t *l;
    orbit_ledger_tx_t *tx;
    int64_t time_ms;
    uint64_t index; /* the index this proposal gets if it commits */
    orbit_ledger_verdict_t *v;
} ctx_t;

static int apply_placement(ctx_t *c, const Orbit__Ledger__Placement *m)
{
    orbit_ledger_placement_t p;
    orbit_ledger_node_t n;
    orbit_ledger_quota_t q;
    bool charged = orbit_ledger_str_set(m->principal);
    int rc = orbit_ledger_store_get_placement(c->tx, m->capsule, &p);
    if (!rc) {
        orbit_ledger_conflict(c->v, "capsule_placed", "node=%s", p.node);
        return ORBIT_OK;
    }
    if (rc != ORBIT_ENOTFOUND)
        return rc;
    memset(&p, 0, sizeof p);
    snprintf(p.capsule, sizeof p.capsule, "%s", m->capsule);
    snprintf(p.node, sizeof p.node, "%s", m->node);
    if (charged)
        snprintf(p.principal, sizeof p.principal, "%s", m->principal);
    p.envelope = orbit_ledger_res_of(m->envelope);
    p.epoch = m->has_epoch ? m->epoch : 0;
    p.index = c->index;
    rc = orbit_ledger_store_get_node(c->tx, m->node, &n);
    if (!rc && charged)
        rc = quota_or_empty(c->tx, m->principal, &q);
    if (rc)
        return rc;
    if (!res_add(&n.used, &p.envelope)) {
        orbit_ledger_conflict(c->v, "overflow", "usage of node %s", m->node);
        return ORBIT_OK;
    }
    if (charged && !res_add(&q.used, &p.envelope)) {
        orbit_ledger_conflict(c->v, "overflow", "usage of principal %s", m->principal);
        return ORBIT_OK;
    }
    n.placements++;
    rc = orbit_ledger_store_put_placement(c->tx, &p);
    if (!rc)
        rc = nodes_note(c->l, true, m->node, m->capsule);
    if (!rc)
        rc = orbit_ledger_store_put_node(c->tx, m->node, &n, c->index);
    if (!rc && charged)
        rc = orbit_ledger_store_put_quota(c->tx, m->principal, &q);
    if (!rc)
        rc = key_add_name(c->l, "placement/", m->capsule);
    if (!rc)
        rc = key_add_name(c->l, "node/", m->node);
    if (!rc && charged)
        rc = key_add_name(c->l, "principal/", m->principal);
    return rc;
}

typedef struct {
    const char *node;
    orbit_ledger_res_t add;
    uint64_t count; /* members on the node */
} node_add_t;

static int cmp_node_add(const void *a, const void *b)
{
    return strcmp(((const node_add_t *)a)->node, ((const node_add_t *)b)->node);
}

static int apply_gang(ctx_t *c, const Orbit__Ledger__GangPlacement *g)
{
    orbit_ledger_gang_t gr;
    orbit_ledger_placement_t p;
    orbit_ledger_quota_t q;
    bool charged = orbit_ledger_str_set(g->principal);
    node_add_t *adds = NULL;
    const char **names = NULL;
    size_t nadds = 0;
    int rc = orbit_ledger_store_get_gang(c->tx, g->gang, &gr, NULL, NULL);
    if (!rc) {
        orbit_ledger_conflict(c->v, "gang_placed", "members=%zu", gr.members);
        return ORBIT_OK;
    }
    if (rc != ORBIT_ENOTFOUND)
        return rc;
    rc = ORBIT_OK;
    for (size_t i = 0; i < g->n_members; i++) {
        rc = orbit_ledger_store_get_placement(c->tx, g->members[i]->capsule, &p);
        if (!rc) {
            orbit_ledger_conflict(c->v, "capsule_placed", "capsule=%s,node=%s", p.capsule, p.node);
            return ORBIT_OK;
        }
        if (rc != ORBIT_ENOTFOUND)
            return rc;
    }
    /* Sum per node (sorted by name so the writes happen in one order). */
    adds = calloc(g->n_members, sizeof *adds);
    names = calloc(g->n_members, sizeof *names);
    if (!adds || !names) {
        rc = ORBIT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < g->n_members; i++) {
        adds[i].node = g->members[i]->node;
        adds[i].add = orbit_ledger_res_of(g->members[i]->envelope);
        adds[i].count = 1;
        names[i] = g->members[i]->capsule;
    }
    qsort(adds, g->n_members, sizeof *adds, cmp_node_add);
    for (size_t i = 0; i < g->n_members; i++) {
        if (nadds && !strcmp(adds[nadds - 1].node, adds[i].node)) {
            res_add(&adds[nadds - 1].add, &adds[i].add); /* <= 1024 x bounds */
            adds[nadds - 1].count++;
            continue;
        }
        adds[nadds++] = adds[i];
    }
    orbit_ledger_res_t total = {0, 0, 0};
    for (size_t i = 0; i < nadds; i++) {
        orbit_ledger_node_t n;
        rc = orbit_ledger_store_get_node(c->tx, adds[i].node, &n);
        if (rc)
            goto out;
        if (!res_add(&n.used, &adds[i].add)) {
            orbit_ledger_conflict(c->v, "overflow", "usage of node %s", adds[i].node);
            goto out;
        }
        res_add(&total, &adds[i].add);
    }
    if (charged) {
        rc = quota_or_empty(c->tx, g->principal, &q);
        if (rc)
            goto out;
        if (!res_add(&q.used, &total)) {
            orbit_ledger_conflict(c->v, "overflow", "usage of principal %s", g->principal);
            goto out;
        }
    }
    /* Every check passed: write. */
    for (size_t i = 0; i < nadds && !rc; i++) {
        orbit_ledger_node_t n;
        rc = orbit_ledger_store_get_node(c->tx, adds[i].node, &n);
        if (!rc) {
            res_add(&n.used, &adds[i].add); /* checked above */
            n.placements += adds[i].count;
            rc = orbit_ledger_store_put_node(c->tx, adds[i].node, &n, c->index);
        }
        if (!rc)
            rc = key_add_name(c->l, "node/", adds[i].node);
    }
    for (size_t i = 0; i < g->n_members && !rc; i++) {
        const Orbit__Ledger__GangMember *m = g->members[i];
        memset(&p, 0, sizeof p);
        snprintf(p.capsule, sizeof p.capsule, "%s", m->capsule);
        snprintf(p.node, sizeof p.node, "%s", m->node);
        snprintf(p.gang, sizeof p.gang, "%s", g->gang);
        if (charged)
            snprintf(p.principal, sizeof p.principal, "%s", g->principal);
        p.envelope = orbit_ledger_res_of(m->envelope);
        p.epoch = g->has_epoch ? g->epoch : 0;
        p.index = c->index;
        rc = orbit_ledger_store_put_placement(c->tx, &p);
        if (!rc)
            rc = nodes_note(c->l, true, m->node, m->capsule);
        if (!rc)
            rc = key_add_name(c->l, "placement/", m->capsule);
    }
    if (!rc && charged) {
        rc = orbit_ledger_store_put_quota(c->tx, g->principal, &q);
        if (!rc)
            rc = key_add_name(c->l, "principal/", g->principal);
    }
    if (!rc) {
        memset(&gr, 0, sizeof gr);
        snprintf(gr.gang, sizeof gr.gang, "%s", g->gang);
        if (charged)
            snprintf(gr.principal, sizeof gr.principal, "%s", g->principal);
        gr.epoch = g->has_epoch ? g->epoch : 0;
        gr.index = c->index;
        rc = orbit_ledger_store_put_gang(c->tx, &gr, names, g->n_members);
    }
    if (!rc)
        rc = key_add(c->l, "gang/%s", g->gang);
out:
    free(adds);
    free(names);
    return rc;
}

static int apply_quota(ctx_t *c, const Orbit__Ledger__QuotaGrant *m)
{
    orbit_ledger_quota_t q;
    int rc = quota_or_empty(c->tx, m->principal, &q);
    if (!rc && q.granted && q.until_ms)
        rc = orbit_ledger_store_expiry_del(c->tx, q.until_ms, ORBIT__LEDGER__REF_KIND__REF_QUOTA,
                                           m->principal);
    if (rc)
        return rc;
    q.granted = true;
    q.grant = orbit_ledger_res_of(m->resources);
    q.priority = m->has_priority ? m->priority : 0;
    q.until_ms = m->has_until_ms ? m->until_ms : 0;
    if (q.until_ms)
        rc = orbit_ledger_store_expiry_add(c->tx, q.until_ms, ORBIT__LEDGER__REF_KIND__REF_QUOTA,
                                           m->principal);
    if (!rc)
        rc = orbit_ledger_store_put_quota(c->tx, m->principal, &q);
    return rc ? rc : key_add_name(c->l, "principal/", m->principal);
}

static int apply_lease(ctx_t *c, const Orbit__Ledger__Lease *m)
{
    orbit_ledger_lease_t ls;
    int rc = orbit_ledger_store_get_lease(c->tx, m->resource, &ls);
    if (rc == ORBIT_ENOTFOUND) {
        memset(&ls, 0, sizeof ls);
        rc = ORBIT_OK;
    }
    if (rc)
        return rc;
    bool held = ls.holder[0] != '\0';
    bool live = held && ls.expires_ms > c->time_ms;
    bool same = held && !strcmp(ls.holder, m->holder);
    if (live && !same) {
        orbit_ledger_conflict(c->v, "lease_held", "holder=%s,expires=%" PRId64, ls.holder,
                              ls.expires_ms);
        return ORBIT_OK;
    }
    if (held)
        rc = orbit_ledger_store_expiry_del(c->tx, ls.expires_ms, ORBIT__LEDGER__REF_KIND__REF_LEASE,
                                           m->resource);
    if (rc)
        return rc;
    if (!(live && same))
        ls.epoch++; /* a new holding: a new fencing token */
    snprintf(ls.holder, sizeof ls.holder, "%s", m->holder);
    ls.expires_ms = c->time_ms + m->ttl_ms;
    rc = orbit_ledger_store_expiry_add(c->tx, ls.expires_ms, ORBIT__LEDGER__REF_KIND__REF_LEASE,
                                       m->resource);
    if (!rc)
        rc = orbit_ledger_store_put_lease(c->tx, m->resource, &ls);
    if (!rc)
        rc = key_add(c->l, "lease/%s", m->resource);
    if (!rc)
        snprintf(c->v->observed, sizeof c->v->observed, "epoch=%" PRIu64 ",expires=%" PRId64,
                 ls.epoch, ls.expires_ms);
    return rc;
}

static int apply_bind(ctx_t *c, const Orbit__Ledger__IdentityBind *m)
{
    char other[ORBIT_LEDGER_NAME_MAX + 1];
    int rc = orbit_ledger_store_get_identity(c->tx, m->identity, other);
    if (!rc) {
        if (strcmp(other, m->capsule))
            orbit_ledger_conflict(c->v, "identity_bound", "capsule=%s", other);
        else
            rc = key_add(c->l, "identity/%s", m->identity); /* the same pair again */
        return rc;
    }
    if (rc != ORBIT_ENOTFOUND)
        return rc;
    rc = orbit_ledger_store_get_capsule_identity(c->tx, m->capsule, other);
    if (!rc) {
        orbit_ledger_conflict(c->v, "capsule_identity", "identity=%s", other);
        return ORBIT_OK;
    }
    if (rc != ORBIT_ENOTFOUND)
        return rc;
    rc = orbit_ledger_store_bind(c->tx, m->identity, m->capsule);
    return rc ? rc : key_add(c->l, "identity/%s", m->identity);
}

void orbit_ledger_module_merge(const Orbit__Ledger__ModuleSpec *o,
                               const Orbit__Ledger__ModuleSpec *a, Orbit__Ledger__ModuleSpec *s,
                               Orbit__Ledger__Resources *res)
{
    orbit__ledger__module_spec__init(s);
    orbit__ledger__resources__init(res);
#define MERGE(f)                                                                                   \
    do {                                                                                           \
        if (a->has_##f) {                                                                          \
            s->has_##f = 1;                                                                        \
            s->f = a->f;                                                                           \
        } else if (o && o->has_##f) {                                                              \
            s->has_##f = 1;                                                                        \
            s->f = o->f;                                                                           \
        }                                                                                          \
    } while (0)
    MERGE(count);
    MERGE(priority);
    MERGE(gang);
#undef MERGE
    const Orbit__Ledger__Resources *r = a->resources ? a->resources : o ? o->resources : NULL;
    if (r) {
        /* a fresh message: no unknown fields travel into the state */
        res->has_cpu_m = r->has_cpu_m;
        res->cpu_m = r->cpu_m;
        res->has_mem = r->has_mem;
        res->mem = r->mem;
        res->has_gpus = r->has_gpus;
        res->gpus = r->gpus;
        s->resources = res;
    }
    s->command = a->command ? a->command : o ? o->command : NULL;
    s->principal = a->principal ? a->principal : o ? o->principal : NULL;
    s->node_selector = a->node_selector ? a->node_selector : o ? o->node_selector : NULL;
}

static int apply_module(ctx_t *c, const Orbit__Ledger__ModuleAdjustment *m)
{
    char key[2 * ORBIT_LEDGER_NAME_MAX + 2];
    Orbit__Ledger__ModuleSpec *old = NULL;
    Orbit__Ledger__ModuleSpec s;
    Orbit__Ledger__Resources res;
    uint64_t epoch = 0;
    snprintf(key, sizeof key, "%s/%s", m->mission, m->module);
    int rc = orbit_ledger_store_get_module(c->tx, key, &old, &epoch);
    if (rc && rc != ORBIT_ENOTFOUND)
        return rc;
    orbit_ledger_module_merge(old, m->adjustment, &s, &res);
    if (m->has_epoch)
        epoch = m->epoch;
    rc = orbit_ledger_store_put_module(c->tx, key, &s, epoch);
    if (!rc)
        rc = key_add(c->l, "mission/%s", m->mission);
    if (!rc)
        rc = key_add(c->l, "module/%s", key);
    if (old)
        orbit__ledger__module_spec__free_unpacked(old, NULL);
    return rc;
}

/* Remove the quota grant of principal (usage stays). */
static int drop_grant(ctx_t *c, const char *principal, orbit_ledger_quota_t *q)
{
    int rc = ORBIT_OK;
    if (q->until_ms)
        rc = orbit_ledger_store_expiry_del(c->tx, q->until_ms, ORBIT__LEDGER__REF_KIND__REF_QUOTA,
                                           principal);
    q->granted = false;
    memset(&q->grant, 0, sizeof q->grant);
    q->priority = 0;
    q->until_ms = 0;
    if (!rc)
        rc = orbit_ledger_store_put_quota(c->tx, principal, q);
    return rc ? rc : key_add_name(c->l, "principal/", principal);
}

/* Clear the holder of lease ls on resource (the epoch stays). */
static int drop_lease(ctx_t *c, const char *resource, orbit_ledger_lease_t *ls)
{
    int rc = orbit_ledger_store_expiry_del(c->tx, ls->expires_ms,
                                           ORBIT__LEDGER__REF_KIND__REF_LEASE, resource);
    ls->holder[0] = '\0';
    ls->expires_ms = 0;
    if (!rc)
        rc = orbit_ledger_store_put_lease(c->tx, resource, ls);
    return rc ? rc : key_add(c->l, "lease/%s", resource);
}

static int revoke_gang(ctx_t *c, const char *gang)
{
    orbit_ledger_gang_t g;
    const uint8_t *mem;
    size_t mlen, off = 0;
    int rc = orbit_ledger_store_get_gang(c->tx, gang, &g, &mem, &mlen);
    if (rc == ORBIT_ENOTFOUND) {
        orbit_ledger_invalid(c->v, "no such gang %s", gang);
        return ORBIT_OK;
    }
    if (rc)
        return rc;
    /* mem points into the gang record's page, which the writes below may
     * move: copy the member block first. */
    uint8_t *copy = malloc(mlen ? mlen : 1);
    if (!copy)
        return ORBIT_ENOMEM;
    memcpy(copy, mem, mlen);
    for (size_t i = 0; i < g.members && !rc; i++) {
        char capsule[ORBIT_LEDGER_NAME_MAX + 1];
        orbit_ledger_placement_t p;
        rc = orbit_ledger_store_gang_member(copy, mlen, &off, capsule);
        if (!rc)
            rc = orbit_ledger_store_get_placement(c->tx, capsule, &p);
        if (rc == ORBIT_ENOTFOUND)
            rc = ORBIT_ECORRUPT;
        if (!rc)
            rc = release(c->l, c->tx, &p, c->index);
    }
    free(copy);
    if (!rc)
        rc = orbit_ledger_store_del_gang(c->tx, gang);
    return rc ? rc : key_add(c->l, "gang/%s", gang);
}

static int apply_revocation(ctx_t *c, const Orbit__Ledger__Ref *r)
{
    const char *key = r->key;
    int rc;
    switch (r->kind) {
    case ORBIT__LEDGER__REF_KIND__REF_PLACEMENT: {
        orbit_ledger_placement_t p;
        rc = orbit_ledger_store_get_placement(c->tx, key, &p);
        if (rc == ORBIT_ENOTFOUND)
            orbit_ledger_invalid(c->v, "no such placement %s", key);
        else if (!rc && p.gang[0])
            orbit_ledger_invalid(c->v, "capsule %s belongs to gang %s (revoke the gang)", key,
                                 p.gang);
        else if (!rc)
            return release(c->l, c->tx, &p, c->index);
        return rc == ORBIT_ENOTFOUND ? ORBIT_OK : rc;
    }
    case ORBIT__LEDGER__REF_KIND__REF_GANG: return revoke_gang(c, key);
    case ORBIT__LEDGER__REF_KIND__REF_QUOTA: {
        orbit_ledger_quota_t q;
        rc = orbit_ledger_store_get_quota(c->tx, key, &q);
        if (rc == ORBIT_ENOTFOUND || (!rc && !q.granted)) {
            orbit_ledger_invalid(c->v, "no such quota grant for %s", key);
            return ORBIT_OK;
        }
        return rc ? rc : drop_grant(c, key, &q);
    }
    case ORBIT__LEDGER__REF_KIND__REF_LEASE: {
        orbit_ledger_lease_t ls;
        rc = orbit_ledger_store_get_lease(c->tx, key, &ls);
        if (rc == ORBIT_ENOTFOUND || (!rc && !ls.holder[0])) {
            orbit_ledger_invalid(c->v, "no such lease %s", key);
            return ORBIT_OK;
        }
        return rc ? rc : drop_lease(c, key, &ls);
    }
    case ORBIT__LEDGER__REF_KIND__REF_IDENTITY: {
        char capsule[ORBIT_LEDGER_NAME_MAX + 1];
        rc = orbit_ledger_store_get_identity(c->tx, key, capsule);
        if (rc == ORBIT_ENOTFOUND) {
            orbit_ledger_invalid(c->v, "no such identity binding %s", key);
            return ORBIT_OK;
        }
        if (!rc)
            rc = orbit_ledger_store_unbind(c->tx, key, capsule);
        return rc ? rc : key_add(c->l, "identity/%s", key);
    }
    case ORBIT__LEDGER__REF_KIND__REF_MODULE: {
        Orbit__Ledger__ModuleSpec *s = NULL;
        rc = orbit_ledger_store_get_module(c->tx, key, &s, NULL);
        if (rc == ORBIT_ENOTFOUND) {
            orbit_ledger_invalid(c->v, "no such module %s", key);
            return ORBIT_OK;
        }
        if (rc)
            return rc;
        orbit__ledger__module_spec__free_unpacked(s, NULL);
        size_t mission_len = (size_t)(strchr(key, '/') - key);
        rc = orbit_ledger_store_del_module(c->tx, key);
        if (!rc)
            rc = key_add(c->l, "mission/%.*s", (int)mission_len, key);
        return rc ? rc : key_add(c->l, "module/%s", key);
    }
    default: orbit_ledger_invalid(c->v, "unknown reference kind"); return ORBIT_OK;
    }
}

static int apply_expiry(ctx_t *c, const Orbit__Ledger__Ref *r)
{
    int rc;
    if (r->kind == ORBIT__LEDGER__REF_KIND__REF_LEASE) {
        orbit_ledger_lease_t ls;
        rc = orbit_ledger_store_get_lease(c->tx, r->key, &ls);
        if (rc == ORBIT_ENOTFOUND || (!rc && !ls.holder[0])) {
            orbit_ledger_invalid(c->v, "no such lease %s", r->key);
            return ORBIT_OK;
        }
        if (!rc && ls.expires_ms > c->time_ms) {
            orbit_ledger_invalid(c->v, "not expired (expires=%" PRId64 ")", ls.expires_ms);
            return ORBIT_OK;
        }
        return rc ? rc : drop_lease(c, r->key, &ls);
    }
    orbit_ledger_quota_t q;
    rc = orbit_ledger_store_get_quota(c->tx, r->key, &q);
    if (rc == ORBIT_ENOTFOUND || (!rc && !q.granted)) {
        orbit_ledger_invalid(c->v, "no such quota grant for %s", r->key);
        return ORBIT_OK;
    }
    if (!rc && (q.until_ms == 0 || q.until_ms > c->time_ms)) {
        orbit_ledger_invalid(c->v, "not expired (until_ms=%" PRId64 ")", q.until_ms);
        return ORBIT_OK;
    }
    return rc ? rc : drop_grant(c, r->key, &q);
}

static int shard_or_conflict(ctx_t *c, const char *name, orbit_ledger_shard_t *s, const char *which,
                             bool *missing)
{
    int rc = orbit_ledger_store_get_shard(c->tx, name, s);
    *missing = rc == ORBIT_ENOTFOUND;
    if (*missing)
        orbit_ledger_conflict(c->v, which, "%s missing", name);
    return *missing ? ORBIT_OK : rc;
}

static int apply_join(ctx_t *c, const Orbit__Ledger__ShardJoin *j)
{
    orbit_ledger_shard_t s, parent;
    bool has_parent = orbit_ledger_str_set(j->parent), missing = false;
    int rc = orbit_ledger_store_get_shard(c->tx, j->shard, &s);
    if (!rc) {
        orbit_ledger_conflict(c->v, "shard_exists", "tier=%u", s.tier);
        return ORBIT_OK;
    }
    if (rc != ORBIT_ENOTFOUND)
        return rc;
    if (has_parent) {
        rc = shard_or_conflict(c, j->parent, &parent, "parent", &missing);
        if (rc || missing)
            return rc;
        if (parent.tier != j->tier + 1) {
            orbit_ledger_conflict(c->v, "parent", "%s tier=%u, want %u", j->parent, parent.tier,
                                  j->tier + 1);
            return ORBIT_OK;
        }
    }
    memset(&s, 0, sizeof s);
    snprintf(s.shard, sizeof s.shard, "%s", j->shard);
    s.tier = j->tier;
    if (has_parent)
        snprintf(s.parent, sizeof s.parent, "%s", j->parent);
    if (orbit_ledger_str_set(j->endpoint))
        snprintf(s.endpoint, sizeof s.endpoint, "%s", j->endpoint);
    rc = orbit_ledger_store_put_shard(c->tx, &s);
    if (!rc && has_parent) {
        parent.children++;
        rc = orbit_ledger_store_put_shard(c->tx, &parent);
        if (!rc)
            rc = key_add(c->l, "shard/%s", j->parent);
    }
    return rc ? rc : key_add(c->l, "shard/%s", j->shard);
}

static int apply_leave(ctx_t *c, const Orbit__Ledger__ShardLeave *m)
{
    orbit_ledger_shard_t s, parent;
    int rc = orbit_ledger_store_get_shard(c->tx, m->shard, &s);
    if (rc == ORBIT_ENOTFOUND) {
        orbit_ledger_invalid(c->v, "no such shard %s", m->shard);
        return ORBIT_OK;
    }
    if (rc)
        return rc;
    if (s.racks || s.children) {
        orbit_ledger_conflict(c->v, "shard_busy", "racks=%" PRIu64 ",children=%" PRIu64, s.racks,
                              s.children);
        return ORBIT_OK;
    }
    if (s.parent[0]) {
        rc = orbit_ledger_store_get_shard(c->tx, s.parent, &parent);
        if (rc == ORBIT_ENOTFOUND || (!rc && parent.children == 0))
            rc = ORBIT_ECORRUPT;
        if (rc)
            return rc;
        parent.children--;
        rc = orbit_ledger_store_put_shard(c->tx, &parent);
        if (!rc)
            rc = key_add(c->l, "shard/%s", s.parent);
    }
    if (!rc)
        rc = orbit_ledger_store_del_shard(c->tx, m->shard);
    return rc ? rc : key_add(c->l, "shard/%s", m->shard);
}

static int apply_move(ctx_t *c, const Orbit__Ledger__RackMove *m)
{
    orbit_ledger_shard_t to, from;
    char old[ORBIT_LEDGER_NAME_MAX + 1];
    bool missing = false;
    int rc = shard_or_conflict(c, m->shard, &to, "shard", &missing);
    if (rc || missing)
        return rc;
    if (to.tier != 1) {
        orbit_ledger_conflict(c->v, "shard", "%s tier=%u, want 1", m->shard, to.tier);
        return ORBIT_OK;
    }
    rc = orbit_ledger_store_get_rack(c->tx, m->rack, old);
    if (rc == ORBIT_ENOTFOUND) {
        old[0] = '\0';
        rc = ORBIT_OK;
    }
    if (rc)
        return rc;
    if (!strcmp(old, m->shard))
        return key_add(c->l, "rack/%s", m->rack); /* already there */
    if (old[0]) {
        rc = orbit_ledger_store_get_shard(c->tx, old, &from);
        if (rc == ORBIT_ENOTFOUND || (!rc && from.racks == 0))
            rc = ORBIT_ECORRUPT;
        if (rc)
            return rc;
        from.racks--;
        rc = orbit_ledger_store_put_shard(c->tx, &from);
        if (!rc)
            rc = key_add(c->l, "shard/%s", old);
    }
    to.racks++;
    if (!rc)
        rc = orbit_ledger_store_put_shard(c->tx, &to);
    if (!rc)
        rc = orbit_ledger_store_put_rack(c->tx, m->rack, m->shard);
    if (!rc)
        rc = key_add(c->l, "shard/%s", m->shard);
    return rc ? rc : key_add(c->l, "rack/%s", m->rack);
}

static int apply_commitment(ctx_t *c, const Orbit__Ledger__Commitment *cm)
{
    int rc;
    switch (cm->kind_case) {
    case ORBIT__LEDGER__COMMITMENT__KIND_QUOTA_GRANT: return apply_quota(c, cm->quota_grant);
    case ORBIT__LEDGER__COMMITMENT__KIND_PLACEMENT: return apply_placement(c, cm->placement);
    case ORBIT__LEDGER__COMMITMENT__KIND_GANG_PLACEMENT: return apply_gang(c, cm->gang_placement);
    case ORBIT__LEDGER__COMMITMENT__KIND_LEASE: return apply_lease(c, cm->lease);
    case ORBIT__LEDGER__COMMITMENT__KIND_IDENTITY_BIND: return apply_bind(c, cm->identity_bind);
    case ORBIT__LEDGER__COMMITMENT__KIND_MODULE_ADJUSTMENT:
        return apply_module(c, cm->module_adjustment);
    case ORBIT__LEDGER__COMMITMENT__KIND_REVOCATION:
        return apply_revocation(c, cm->revocation->what);
    case ORBIT__LEDGER__COMMITMENT__KIND_TOPOLOGY:
        switch (cm->topology->change_case) {
        case ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_JOIN:
            rc = apply_join(c, cm->topology->join);
            break;
        case ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_LEAVE:
            rc = apply_leave(c, cm->topology->leave);
            break;
        case ORBIT__LEDGER__TOPOLOGY_CHANGE__CHANGE_MOVE:
            rc = apply_move(c, cm->topology->move);
            break;
        default: orbit_ledger_invalid(c->v, "topology: no change set"); return ORBIT_OK;
        }
        return rc ? rc : key_add(c->l, "topology");
    case ORBIT__LEDGER__COMMITMENT__KIND_EXPIRY: return apply_expiry(c, cm->expiry->what);
    default: orbit_ledger_invalid(c->v, "commitment: unknown or missing kind"); return ORBIT_OK;
    }
}

/* ------------------------------------------------------------ apply */

/* Pack verdict v into l->packed. */
static int pack_verdict(orbit_ledger_t *l, const orbit_ledger_verdict_t *v)
{
    Orbit__Ledger__Outcome o = ORBIT__LEDGER__OUTCOME__INIT;
    o.kind = v->kind;
    if (v->kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED) {
        o.has_index = 1;
        o.index = v->index;
    }
    o.which = v->which[0] ? (char *)v->which : NULL;
    o.observed = v->observed[0] ? (char *)v->observed : NULL;
    o.reason = v->reason[0] ? (char *)v->reason : NULL;
    size_t n = orbit__ledger__outcome__get_packed_size(&o);
    l->packed.len = 0;
    int rc = orbit_ledger_buf_reserve(&l->packed, n);
    if (rc)
        return rc;
    l->packed.len = orbit__ledger__outcome__pack(&o, l->packed.p);
    return ORBIT_OK;
}

/* Chain digest: H(previous, index, time, proposal bytes). */
static void chain_step(uint8_t chain[ORBIT_LEDGER_HASH_LEN], uint64_t index, int64_t time_ms,
                       const uint8_t *p, size_t len)
{
    orbit_sha256_t s;
    uint8_t b[16];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(index >> (56 - 8 * i));
        b[8 + i] = (uint8_t)((uint64_t)time_ms >> (56 - 8 * i));
    }
    orbit_sha256_init(&s);
    orbit_sha256_update(&s, chain, ORBIT_LEDGER_HASH_LEN);
    orbit_sha256_update(&s, b, sizeof b);
    orbit_sha256_update(&s, p, len);
    orbit_sha256_final(&s, chain);
}

/* The running counters of the entries being applied, written back to the
 * meta table once, at the end of the transaction (a batch of entries would
 * otherwise put each several times). A value is written when some entry
 * changed it, as if each entry had written its own: a value changed and
 * changed back within a batch is still written, so the state (and its hash)
 * does not depend on how entries were batched. */
typedef struct {
    uint64_t index; /* last ledger index given */
    uint8_t chain[ORBIT_LEDGER_HASH_LEN];
    uint64_t dedup_seq;
    uint64_t dedup_count;
    uint64_t applied; /* raft index of the last entry applied */
    int64_t time_ms;  /* entry time of the last entry */
    bool index_set, dedup_seq_set, dedup_count_set, time_set, applied_set;
} run_t;

/* Find the bytes of each of the n proposals (Entry field 2) in the packed
 * entry, in order, so that history and the chain digest take them as they
 * came instead of packing each proposal again. False if the entry's wire
 * form is not the plain one (the caller then packs). */
static bool entry_slices(const uint8_t *entry, size_t len, size_t n, orbit_pb_slice_t *out)
{
    size_t found = 0;
    return orbit_pb_slices(entry, len, ORBIT_LEDGER_ENTRY_PROPOSALS, out, n, &found) && found == n;
}

/* The outcome COMMITTED{index} as orbit__ledger__outcome__unpack would give
 * it (free with orbit__ledger__outcome__free_unpacked). */
static Orbit__Ledger__Outcome *outcome_committed(uint64_t index)
{
    Orbit__Ledger__Outcome *o = malloc(sizeof *o);
    if (o) {
        orbit__ledger__outcome__init(o);
        o->kind = ORBIT__LEDGER__OUTCOME_KIND__COMMITTED;
        o->has_index = 1;
        o->index = index;
    }
    return o;
}

/* Judge and apply one proposal; *out gets its outcome (malloc'd). raw (may
 * be NULL: pack p) is p's bytes in the entry. */
static int apply_proposal(orbit_ledger_t *l, orbit_ledger_tx_t *tx,
                          const Orbit__Ledger__Proposal *p, const orbit_pb_slice_t *raw,
                          int64_t time_ms, run_t *r, Orbit__Ledger__Outcome **out)
{
    orbit_ledger_verdict_t v;
    memset(&v, 0, sizeof v);
    v.kind = ORBIT__LEDGER__OUTCOME_KIND__COMMITTED;
    bool dedup = orbit_ledger_client_id_valid(p->client_id);
    const uint8_t *stored = NULL;
    size_t stored_len = 0;
    int rc = ORBIT_OK;
    l->keys.len = 0;
    l->nkeys = 0;
    if (dedup) {
        rc = orbit_ledger_store_dedup_get(tx, p->client_id, p->request_id, &stored, &stored_len);
        if (!rc) {
            if (!out)
                return ORBIT_OK;
            *out = orbit__ledger__outcome__unpack(NULL, stored_len, stored);
            return *out ? ORBIT_OK : ORBIT_ECORRUPT;
        }
        if (rc != ORBIT_ENOTFOUND)
            return rc;
        rc = ORBIT_OK;
    } else {
        orbit_ledger_invalid(&v, "invalid client_id");
    }
    if (v.kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED)
        rc = orbit_ledger_check_valid(p, time_ms, &v);
    if (!rc && v.kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED)
        rc = orbit_ledger_check_preconditions(tx, p, time_ms, &v);
    ctx_t c = {l, tx, time_ms, r->index + 1, &v};
    if (!rc && v.kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED)
        rc = apply_commitment(&c, p->commitment);
    if (rc)
        return rc;
    if (v.kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED) {
        v.index = ++r->index;
        rc = keys_commit(l, tx, v.index);
        if (rc)
            return rc;
        const uint8_t *pb;
        size_t pn;
        if (raw) {
            pb = raw->p;
            pn = raw->len;
        } else {
            size_t n = orbit__ledger__proposal__get_packed_size(p);
            l->packed.len = 0;
            rc = orbit_ledger_buf_reserve(&l->packed, n);
            if (rc)
                return rc;
            l->packed.len = orbit__ledger__proposal__pack(p, l->packed.p);
            pb = l->packed.p;
            pn = l->packed.len;
        }
        rc = orbit_ledger_store_history_put(tx, v.index, time_ms, (const char *)l->keys.p,
                                            l->keys.len, l->nkeys, pb, pn);
        if (rc)
            return rc;
        chain_step(r->chain, v.index, time_ms, pb, pn);
    }
    rc = pack_verdict(l, &v);
    if (!rc && dedup && v.kind != ORBIT__LEDGER__OUTCOME_KIND__INVALID) {
        rc = orbit_ledger_store_dedup_put(tx, p->client_id, p->request_id, time_ms,
                                          r->dedup_seq + 1, l->packed.p, l->packed.len);
        if (!rc) {
            r->dedup_seq++;
            r->dedup_count++;
        }
    }
    if (rc || !out)
        return rc;
    if (v.kind == ORBIT__LEDGER__OUTCOME_KIND__COMMITTED && !v.observed[0] && !v.which[0] &&
        !v.reason[0])
        *out = outcome_committed(v.index); /* the common case: no unpack */
    else
        *out = orbit__ledger__outcome__unpack(NULL, l->packed.len, l->packed.p);
    return *out ? ORBIT_OK : ORBIT_ENOMEM;
}

void orbit_ledger_outcomes_free(Orbit__Ledger__Outcome **outcomes, size_t n)
{
    if (!outcomes)
        return;
    for (size_t i = 0; i < n; i++)
        if (outcomes[i])
            orbit__ledger__outcome__free_unpacked(outcomes[i], NULL);
    free(outcomes);
}

/* Apply one entry inside tx, after the entries r already carries (r->applied
 * and the rest start as l's). outs (NULL: no outcomes wanted) receives a
 * malloc'd array of *nouts outcomes; on failure the caller aborts tx and
 * frees *outs with orbit_ledger_outcomes_free(*outs, *nouts). */
static int apply_entry(orbit_ledger_t *l, orbit_ledger_tx_t *tx, const uint8_t *entry, size_t len,
                       uint64_t raft_index, run_t *r, Orbit__Ledger__Outcome ***outs, size_t *nouts)
{
    if (raft_index <= r->applied)
        return ORBIT_OK;
    int rc = ORBIT_OK;
    Orbit__Ledger__Entry *e =
        orbit__ledger__entry__unpack(orbit_arena_allocator(l->arena), len, entry);
    if (!e || e->time_ms < 0 || e->time_ms > TIME_MAX || e->n_proposals > ORBIT_LEDGER_ENTRY_MAX) {
        uint64_t bad = 0;
        rc = meta_u64(tx, ORBIT_LEDGER_META_UNDECODABLE, &bad);
        if (!rc)
            rc = orbit_ledger_store_put_u64(tx, ORBIT_LEDGER_META_UNDECODABLE, bad + 1);
    } else {
        r->time_ms = e->time_ms;
        uint64_t index0 = r->index, seq0 = r->dedup_seq, count0 = r->dedup_count;
        orbit_pb_slice_t *raw = NULL;
        if (e->n_proposals) {
            if (outs && !(*outs = calloc(e->n_proposals, sizeof **outs)))
                rc = ORBIT_ENOMEM;
            if (!rc && !(raw = orbit_arena_alloc(l->arena, e->n_proposals * sizeof *raw)))
                rc = ORBIT_ENOMEM;
        }
        bool sliced = !rc && e->n_proposals && entry_slices(entry, len, e->n_proposals, raw);
        for (size_t i = 0; !rc && i < e->n_proposals; i++) {
            rc = apply_proposal(l, tx, e->proposals[i], sliced ? &raw[i] : NULL, r->time_ms, r,
                                outs ? &(*outs)[i] : NULL);
            if (outs)
                (*nouts)++;
        }
        if (!rc)
            rc = orbit_ledger_store_dedup_prune(tx, r->time_ms - ORBIT_LEDGER_DEDUP_AGE_MS,
                                                ORBIT_LEDGER_DEDUP_MAX, &r->dedup_count);
        r->dedup_seq_set |= r->dedup_seq != seq0;
        r->dedup_count_set |= r->dedup_count != count0;
        r->index_set |= r->index != index0;
        r->time_set = true;
    }
    if (!rc) {
        r->applied = raft_index;
        r->applied_set = true;
    }
    return rc;
}

/* Write back what the entries of r changed (see run_t). */
static int put_run(orbit_ledger_tx_t *tx, const run_t *r)
{
    int rc = ORBIT_OK;
    if (!rc && r->dedup_seq_set)
        rc = orbit_ledger_store_put_u64(tx, ORBIT_LEDGER_META_DEDUP_SEQ, r->dedup_seq);
    if (!rc && r->dedup_count_set)
        rc = orbit_ledger_store_put_u64(tx, ORBIT_LEDGER_META_DEDUP_COUNT, r->dedup_count);
    if (!rc && r->index_set)
        rc = orbit_ledger_store_put_u64(tx, ORBIT_LEDGER_META_INDEX, r->index);
    if (!rc && r->index_set)
        rc = orbit_ledger_store_put_raw(tx, ORBIT_LEDGER_META_CHAIN, r->chain, sizeof r->chain);
    if (!rc && r->time_set)
        rc = orbit_ledger_store_put_u64(tx, ORBIT_LEDGER_META_TIME, (uint64_t)r->time_ms);
    if (!rc && r->applied_set)
        rc = orbit_ledger_store_put_u64(tx, ORBIT_LEDGER_META_APPLIED, r->applied);
    return rc;
}

/* Within tx, drop the history up to target, at most step records past the
 * compacted mark, and move the mark there (never back). */
static int compact_to(orbit_ledger_tx_t *tx, uint64_t target, uint64_t step)
{
    uint64_t mark = 0;
    int rc = meta_u64(tx, ORBIT_LEDGER_META_COMPACTED, &mark);
    if (rc || target <= mark)
        return rc;
    uint64_t upto = target - mark > step ? mark + step : target;
    rc = orbit_ledger_store_history_drop(tx, upto);
    return rc ? rc : orbit_ledger_store_put_u64(tx, ORBIT_LEDGER_META_COMPACTED, upto);
}

/* History records dropped by one apply transaction, beyond twice the
 * commitments it added: enough to catch up after history_keep was lowered
 * or compaction was off, in steps short enough not to stall the apply. */
#define COMPACT_STEP_MIN 256

/* Keep history to l->history_keep commitments behind r->index, within tx:
 * the oldest go, at most COMPACT_STEP_MIN + twice the commitments that tx
 * added (from index0), so each transaction does a share of the work that
 * follows its own size. Where each replica compacts to is its own (not
 * replicated, not hashed): in the steady state it is index - keep on every
 * replica with the same --history-keep, but while a backlog is worked off
 * (keep lowered, or a ledger of an older format) the steps follow each
 * replica's transactions, which differ (the leader applies an entry per
 * transaction, a follower a batch). An idle ledger works off no backlog:
 * compaction runs with apply. */
static int compact_step(orbit_ledger_t *l, orbit_ledger_tx_t *tx, const run_t *r, uint64_t index0)
{
    if (!l->history_keep || r->index <= l->history_keep)
        return ORBIT_OK;
    return compact_to(tx, r->index - l->history_keep, COMPACT_STEP_MIN + 2 * (r->index - index0));
}

/* Apply es[0..n) in one transaction; outcomes only for a single entry. */
static int apply_entries(orbit_ledger_t *l, const orbit_ledger_entry_t *es, size_t n,
                         Orbit__Ledger__Outcome ***outcomes, size_t *nout)
{
    orbit_ledger_tx_t tx = {0};
    Orbit__Ledger__Outcome **outs = NULL;
    size_t nouts = 0;
    run_t r = {0};
    if (!l->env)
        return ORBIT_EIO;
    if (outcomes && n != 1)
        return ORBIT_EINVAL; /* one entry's outcomes, in one array */
    if (es[n - 1].raft_index <= l->applied)
        return ORBIT_OK;
    int rc = tx_begin(l, true, &tx);
    if (!rc && !l->dedup) { /* built from the table on first need */
        if (!(l->dedup = orbit_ledger_hmap_new()))
            rc = ORBIT_ENOMEM;
        if (!rc)
            rc = orbit_ledger_store_dedup_index(&tx, l->dedup);
    }
    tx.dedup = l->dedup;
    if (!rc)
        rc = meta_u64(&tx, ORBIT_LEDGER_META_DEDUP_SEQ, &r.dedup_seq);
    if (!rc)
        rc = meta_u64(&tx, ORBIT_LEDGER_META_DEDUP_COUNT, &r.dedup_count);
    r.applied = l->applied;
    r.index = l->index;
    r.time_ms = l->time_ms;
    memcpy(r.chain, l->chain, sizeof r.chain);
    orbit_arena_reset(l->arena);
    for (size_t i = 0; !rc && i < n; i++)
        rc = apply_entry(l, &tx, es[i].entry, es[i].len, es[i].raft_index, &r,
                         outcomes ? &outs : NULL, &nouts);
    if (!rc)
        rc = compact_step(l, &tx, &r, l->index);
    if (!rc)
        rc = put_run(&tx, &r);
    if (!rc)
        rc = tx_commit(&tx);
    if (rc) {
        tx_abort(&tx);
        if (l->nodes)
            orbit_ledger_nodes_discard(l->nodes);
        orbit_ledger_hmap_destroy(&l->dedup); /* changed with tx: built again */
        orbit_arena_reset(l->arena);          /* the entries, names staged in the node index */
        orbit_ledger_outcomes_free(outs, nouts);
        return rc;
    }
    orbit_ledger_prefault_note(l->prefault);
    l->applied = r.applied;
    l->hash_valid = false;
    l->index = r.index;
    l->time_ms = r.time_ms;
    memcpy(l->chain, r.chain, sizeof r.chain);
    if (l->nodes && orbit_ledger_nodes_commit(l->nodes) != ORBIT_OK)
        orbit_ledger_nodes_destroy(&l->nodes); /* incomplete: built again when needed */
    orbit_arena_reset(l->arena);
    if (outcomes) {
        *outcomes = nouts ? outs : NULL;
        *nout = nouts;
        if (!nouts)
            free(outs);
    }
    return ORBIT_OK;
}

int orbit_ledger_apply(orbit_ledger_t *l, const uint8_t *entry, size_t len, uint64_t raft_index,
                       Orbit__Ledger__Outcome ***outcomes, size_t *n)
{
    if (outcomes)
        *outcomes = NULL;
    if (n)
        *n = 0;
    if (!l || !outcomes || !n || (!entry && len))
        return ORBIT_EINVAL;
    orbit_ledger_entry_t e = {entry, len, raft_index};
    return apply_entries(l, &e, 1, outcomes, n);
}

int orbit_ledger_apply_many(orbit_ledger_t *l, const orbit_ledger_entry_t *entries, size_t n)
{
    if (!l || (!entries && n))
        return ORBIT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((!entries[i].entry && entries[i].len) ||
            (i && entries[i].raft_index <= entries[i - 1].raft_index))
            return ORBIT_EINVAL;
    return n ? apply_entries(l, entries, n, NULL, NULL) : ORBIT_OK;
}

/* ------------------------------------------------------------ position */

uint64_t orbit_ledger_applied_index(const orbit_ledger_t *l)
{
    return l ? l->applied : 0;
}

uint64_t orbit_ledger_index(const orbit_ledger_t *l)
{
    return l ? l->index : 0;
}

int64_t orbit_ledger_time(const orbit_ledger_t *l)
{
    return l ? l->time_ms : 0;
}

int orbit_ledger_stats(orbit_ledger_t *l, orbit_ledger_stats_t *st)
{
    orbit_ledger_tx_t tx = {0};
    if (!l || !st)
        return ORBIT_EINVAL;
    memset(st, 0, sizeof *st);
    int rc = tx_begin(l, false, &tx);
    if (!rc)
        rc = meta_u64(&tx, ORBIT_LEDGER_META_UNDECODABLE, &st->undecodable);
    if (!rc)
        rc = meta_u64(&tx, ORBIT_LEDGER_META_DEDUP_COUNT, &st->dedup_entries);
    if (!rc)
        rc = meta_u64(&tx, ORBIT_LEDGER_META_COMPACTED, &st->compacted_index);
    if (!rc)
        rc = orbit_ledger_store_key_index(&tx, "topology", &st->topology_epoch);
    tx_abort(&tx);
    st->applied_index = l->applied;
    st->ledger_index = l->index;
    st->time_ms = l->time_ms;
    return rc;
}

/* ------------------------------------------------------------ reads */

#define READ(l, call)                                                                              \
    do {                                                                                           \
        orbit_ledger_tx_t tx_ = {0};                                                               \
        orbit_ledger_tx_t *tx = &tx_;                                                              \
        int rc_ = tx_begin(l, false, tx);                                                          \
        if (!rc_)                                                                                  \
            rc_ = (call);                                                                          \
        tx_abort(tx);                                                                              \
        return rc_;                                                                                \
    } while (0)

int orbit_ledger_get_placement(orbit_ledger_t *l, const char *capsule,
                               orbit_ledger_placement_t *out)
{
    if (!l || !capsule || !out)
        return ORBIT_EINVAL;
    READ(l, orbit_ledger_store_get_placement(tx, capsule, out));
}

int orbit_ledger_get_gang(orbit_ledger_t *l, const char *gang, orbit_ledger_gang_t *out)
{
    if (!l || !gang || !out)
        return ORBIT_EINVAL;
    READ(l, orbit_ledger_store_get_gang(tx, gang, out, NULL, NULL));
}

int orbit_ledger_get_node(orbit_ledger_t *l, const char *node, orbit_ledger_node_t *out)
{
    if (!l || !node || !out)
        return ORBIT_EINVAL;
    READ(l, orbit_ledger_store_get_node(tx, node, out));
}

int orbit_ledger_get_quota(orbit_ledger_t *l, const char *principal, orbit_ledger_quota_t *out)
{
    if (!l || !principal || !out)
        return ORBIT_EINVAL;
    READ(l, orbit_ledger_store_get_quota(tx, principal, out));
}

int orbit_ledger_get_lease(orbit_ledger_t *l, const char *resource, orbit_ledger_lease_t *out)
{
    if (!l || !resource || !out)
        return ORBIT_EINVAL;
    READ(l, orbit_ledger_store_get_lease(tx, resource, out));
}

int orbit_ledger_get_identity(orbit_ledger_t *l, const char *identity,
                              char capsule[ORBIT_LEDGER_NAME_MAX + 1])
{
    if (!l || !identity || !capsule)
        return ORBIT_EINVAL;
    READ(l, orbit_ledger_store_get_identity(tx, identity, capsule));
}

int orbit_ledger_get_capsule_identity(orbit_ledger_t *l, const char *capsule,
                                      char identity[ORBIT_LEDGER_NAME_MAX + 1])
{
    if (!l || !capsule || !identity)
        return ORBIT_EINVAL;
    READ(l, orbit_ledger_store_get_capsule_identity(tx, capsule, identity));
}

int orbit_ledger_get_module(orbit_ledger_t *l, const char *mission, const char *module,
                            Orbit__Ledger__ModuleSpec **spec, uint64_t *epoch)
{
    char key[2 * ORBIT_LEDGER_NAME_MAX + 2];
    if (!l || !mission || !module || !spec)
        return ORBIT_EINVAL;
    *spec = NULL;
    if (strlen(mission) > ORBIT_LEDGER_NAME_MAX || strlen(module) > ORBIT_LEDGER_NAME_MAX)
        return ORBIT_ENOTFOUND;
    snprintf(key, sizeof key, "%s/%s", mission, module);
    READ(l, orbit_ledger_store_get_module(tx, key, spec, epoch));
}

int orbit_ledger_get_shard(orbit_ledger_t *l, const char *shard, orbit_ledger_shard_t *out)
{
    if (!l || !shard || !out)
        return ORBIT_EINVAL;
    READ(l, orbit_ledger_store_get_shard(tx, shard, out));
}

int orbit_ledger_get_rack(orbit_ledger_t *l, const char *rack,
                          char shard[ORBIT_LEDGER_NAME_MAX + 1])
{
    if (!l || !rack || !shard)
        return ORBIT_EINVAL;
    READ(l, orbit_ledger_store_get_rack(tx, rack, shard));
}

int orbit_ledger_key_index(orbit_ledger_t *l, const char *key, uint64_t *index)
{
    if (!l || !key || !index)
        return ORBIT_EINVAL;
    *index = 0;
    READ(l, orbit_ledger_store_key_index(tx, key, index));
}

uint64_t orbit_ledger_topology_epoch(orbit_ledger_t *l)
{
    uint64_t epoch = 0;
    if (orbit_ledger_key_index(l, "topology", &epoch))
        return 0;
    return epoch;
}

/* ------------------------------------------------------------ JSON reads */

static json_t *res_json(const orbit_ledger_res_t *r)
{
    return json_pack("{sIsIsI}", "cpu_m", (json_int_t)r->cpu_m, "mem", (json_int_t)r->mem, "gpus",
                     (json_int_t)r->gpus);
}

typedef struct {
    orbit_ledger_tx_t *tx;
    json_t *list;
} node_capsules_t;

/* One entry of a node's "capsules": its placement, without epoch. */
static int node_capsule_json(void *ctx, const char *capsule)
{
    node_capsules_t *nc = ctx;
    orbit_ledger_placement_t p;
    int rc = orbit_ledger_store_get_placement(nc->tx, capsule, &p);
    if (rc == ORBIT_ENOTFOUND)
        return ORBIT_ECORRUPT; /* the index names a placement that is gone */
    if (rc)
        return rc;
    json_t *o = json_pack("{sssosI}", "capsule", p.capsule, "envelope", res_json(&p.envelope),
                          "index", (json_int_t)p.index);
    bool ok = o != NULL;
    if (ok && p.principal[0])
        ok = !json_object_set_new(o, "principal", json_string(p.principal));
    if (ok && p.gang[0])
        ok = !json_object_set_new(o, "gang", json_string(p.gang));
    if (!ok) {
        json_decref(o);
        return ORBIT_ENOMEM;
    }
    return json_array_append_new(nc->list, o) ? ORBIT_ENOMEM : ORBIT_OK;
}

/* The object named key as JSON (j), read in tx. */
static int object_json(orbit_ledger_t *l, orbit_ledger_tx_t *tx, const char *kind, const char *name,
                       json_t **j)
{
    int rc;
    *j = NULL;
    if (!strcmp(kind, "placement")) {
        orbit_ledger_placement_t p;
        if ((rc = orbit_ledger_store_get_placement(tx, name, &p)))
            return rc;
        *j = json_pack("{sssssosIsI}", "capsule", p.capsule, "node", p.node, "envelope",
                       res_json(&p.envelope), "epoch", (json_int_t)p.epoch, "index",
                       (json_int_t)p.index);
        if (*j && p.principal[0])
            json_object_set_new(*j, "principal", json_string(p.principal));
        if (*j && p.gang[0])
            json_object_set_new(*j, "gang", json_string(p.gang));
    } else if (!strcmp(kind, "gang")) {
        orbit_ledger_gang_t g;
        const uint8_t *mem;
        size_t mlen, off = 0;
        if ((rc = orbit_ledger_store_get_gang(tx, name, &g, &mem, &mlen)))
            return rc;
        json_t *members = json_array();
        for (size_t i = 0; members && i < g.members; i++) {
            char capsule[ORBIT_LEDGER_NAME_MAX + 1];
            if ((rc = orbit_ledger_store_gang_member(mem, mlen, &off, capsule))) {
                json_decref(members);
                return rc;
            }
            json_array_append_new(members, json_string(capsule));
        }
        *j = json_pack("{sssIsIso}", "gang", g.gang, "epoch", (json_int_t)g.epoch, "index",
                       (json_int_t)g.index, "members", members);
        if (*j && g.principal[0])
            json_object_set_new(*j, "principal", json_string(g.principal));
    } else if (!strcmp(kind, "node")) {
        orbit_ledger_node_t n;
        node_capsules_t nc = {tx, json_array()};
        if ((rc = orbit_ledger_store_get_node(tx, name, &n))) {
            json_decref(nc.list);
            return rc;
        }
        if (!nc.list)
            return ORBIT_ENOMEM;
        zlistx_t *caps = NULL;
        rc = nodes_build(l, tx);
        if (!rc && !(caps = orbit_ledger_nodes_list(l->nodes, name)))
            rc = ORBIT_ENOMEM;
        for (const char *c = caps ? zlistx_first(caps) : NULL; c && !rc; c = zlistx_next(caps))
            rc = node_capsule_json(&nc, c);
        zlistx_destroy(&caps);
        if (rc) {
            json_decref(nc.list);
            return rc;
        }
        *j = json_pack("{sssosIso}", "node", name, "used", res_json(&n.used), "placements",
                       (json_int_t)n.placements, "capsules", nc.list);
    } else if (!strcmp(kind, "principal")) {
        orbit_ledger_quota_t q;
        if ((rc = orbit_ledger_store_get_quota(tx, name, &q)))
            return rc;
        *j = json_pack("{sssbsososisI}", "principal", name, "granted", q.granted, "grant",
                       res_json(&q.grant), "used", res_json(&q.used), "priority", (int)q.priority,
                       "until_ms", (json_int_t)q.until_ms);
    } else if (!strcmp(kind, "lease")) {
        orbit_ledger_lease_t ls;
        if ((rc = orbit_ledger_store_get_lease(tx, name, &ls)))
            return rc;
        *j = json_pack("{sssssIsI}", "resource", name, "holder", ls.holder, "expires_ms",
                       (json_int_t)ls.expires_ms, "epoch", (json_int_t)ls.epoch);
    } else if (!strcmp(kind, "identity")) {
        char capsule[ORBIT_LEDGER_NAME_MAX + 1];
        if ((rc = orbit_ledger_store_get_identity(tx, name, capsule)))
            return rc;
        *j = json_pack("{ssss}", "identity", name, "capsule", capsule);
    } else if (!strcmp(kind, "module")) {
        Orbit__Ledger__ModuleSpec *s = NULL;
        uint64_t epoch = 0;
        if ((rc = orbit_ledger_store_get_module(tx, name, &s, &epoch)))
            return rc;
        *j = json_pack("{sssIso}", "module", name, "epoch", (json_int_t)epoch, "spec",
                       orbit_json_from_pb(&s->base));
        orbit__ledger__module_spec__free_unpacked(s, NULL);
    } else if (!strcmp(kind, "shard")) {
        orbit_ledger_shard_t s;
        if ((rc = orbit_ledger_store_get_shard(tx, name, &s)))
            return rc;
        *j = json_pack("{sssisssssIsI}", "shard", s.shard, "tier", (int)s.tier, "parent", s.parent,
                       "endpoint", s.endpoint, "children", (json_int_t)s.children, "racks",
                       (json_int_t)s.racks);
    } else if (!strcmp(kind, "rack")) {
        char shard[ORBIT_LEDGER_NAME_MAX + 1];
        if ((rc = orbit_ledger_store_get_rack(tx, name, shard)))
            return rc;
        *j = json_pack("{ssss}", "rack", name, "shard", shard);
    } else {
        return ORBIT_EINVAL;
    }
    return *j ? ORBIT_OK : ORBIT_ENOMEM;
}

/* The whole tree: {"epoch", "shards":[{shard, tier, parent, endpoint,
 * children, racks}], "racks":[{rack, shard}]}, both in name order. */
static int topo_shard_json(void *ctx, const orbit_ledger_shard_t *s)
{
    json_t *o = json_pack("{sssIsssssIsI}", "shard", s->shard, "tier", (json_int_t)s->tier,
                          "parent", s->parent, "endpoint", s->endpoint, "children",
                          (json_int_t)s->children, "racks", (json_int_t)s->racks);
    return o && !json_array_append_new(ctx, o) ? ORBIT_OK : ORBIT_ENOMEM;
}

static int topo_rack_json(void *ctx, const char *rack, const char *shard)
{
    json_t *o = json_pack("{ssss}", "rack", rack, "shard", shard);
    return o && !json_array_append_new(ctx, o) ? ORBIT_OK : ORBIT_ENOMEM;
}

static int topology_json(orbit_ledger_tx_t *tx, uint64_t epoch, json_t **out)
{
    json_t *shards = json_array(), *racks = json_array();
    int rc = shards && racks ? ORBIT_OK : ORBIT_ENOMEM;
    if (!rc)
        rc = orbit_ledger_store_shard_each(tx, topo_shard_json, shards);
    if (!rc)
        rc = orbit_ledger_store_rack_each(tx, topo_rack_json, racks);
    if (!rc) {
        *out = json_pack("{sIsOsO}", "epoch", (json_int_t)epoch, "shards", shards, "racks", racks);
        rc = *out ? ORBIT_OK : ORBIT_ENOMEM;
    }
    json_decref(shards);
    json_decref(racks);
    return rc;
}

int orbit_ledger_index_nodes(orbit_ledger_t *l, size_t *capsules)
{
    if (!l)
        return ORBIT_EINVAL;
    if (!l->env)
        return ORBIT_EIO;
    orbit_ledger_tx_t tx = {0};
    int rc = l->nodes ? ORBIT_OK : tx_begin(l, false, &tx);
    if (!rc)
        rc = nodes_build(l, &tx); /* nothing to do when built */
    tx_abort(&tx);
    if (!rc && capsules)
        *capsules = orbit_ledger_nodes_size(l->nodes);
    return rc;
}

int orbit_ledger_get_json(orbit_ledger_t *l, const char *key, char **json, uint64_t *index)
{
    char kind[16];
    const char *name = "";
    json_t *j = NULL;
    if (!l || !key || !json)
        return ORBIT_EINVAL;
    *json = NULL;
    if (index)
        *index = 0;
    const char *slash = strchr(key, '/');
    size_t klen = slash ? (size_t)(slash - key) : strlen(key);
    if (klen >= sizeof kind || strlen(key) > ORBIT_LEDGER_KEY_MAX)
        return ORBIT_EINVAL;
    memcpy(kind, key, klen);
    kind[klen] = '\0';
    if (slash)
        name = slash + 1;
    if (slash ? !*name : strcmp(kind, "topology"))
        return ORBIT_EINVAL;
    orbit_ledger_tx_t tx = {0};
    uint64_t at = 0;
    int rc = tx_begin(l, false, &tx);
    if (!rc)
        rc = orbit_ledger_store_key_index(&tx, key, &at);
    if (!rc && !strcmp(kind, "topology")) {
        rc = topology_json(&tx, at, &j);
    } else if (!rc) {
        rc = object_json(l, &tx, kind, name, &j);
    }
    tx_abort(&tx);
    if (!rc) {
        *json = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        rc = *json ? ORBIT_OK : ORBIT_ENOMEM;
    }
    json_decref(j);
    if (!rc && index)
        *index = at;
    return rc;
}

/* ------------------------------------------------------------ walks */

/* A callback's > 0 (stop) is success. */
static int walk_rc(int rc)
{
    return rc > 0 ? ORBIT_OK : rc;
}

int orbit_ledger_each_placement(orbit_ledger_t *l, orbit_ledger_placement_fn fn, void *ctx)
{
    if (!l || !fn)
        return ORBIT_EINVAL;
    READ(l, walk_rc(orbit_ledger_store_placement_each(tx, fn, ctx)));
}

typedef struct {
    orbit_ledger_tx_t *tx;
    orbit_ledger_module_fn fn;
    void *ctx;
} module_walk_t;

static int module_walk_one(void *ctx, const char *key, const Orbit__Ledger__ModuleSpec *spec,
                           uint64_t epoch)
{
    module_walk_t *w = ctx;
    char mission[ORBIT_LEDGER_NAME_MAX + 1], k[ORBIT_LEDGER_KEY_MAX + 1];
    const char *slash = strchr(key, '/');
    uint64_t index = 0;
    if (!slash || slash == key || (size_t)(slash - key) > ORBIT_LEDGER_NAME_MAX || !slash[1])
        return ORBIT_ECORRUPT;
    memcpy(mission, key, (size_t)(slash - key));
    mission[slash - key] = '\0';
    snprintf(k, sizeof k, "module/%s", key); /* key <= 127 bytes: fits */
    int rc = orbit_ledger_store_key_index(w->tx, k, &index);
    return rc ? rc : w->fn(w->ctx, mission, slash + 1, spec, epoch, index);
}

int orbit_ledger_each_module(orbit_ledger_t *l, orbit_ledger_module_fn fn, void *ctx)
{
    if (!l || !fn)
        return ORBIT_EINVAL;
    orbit_ledger_tx_t tx = {0};
    module_walk_t w = {&tx, fn, ctx};
    int rc = tx_begin(l, false, &tx);
    if (!rc)
        rc = walk_rc(orbit_ledger_store_module_each(&tx, module_walk_one, &w));
    tx_abort(&tx);
    return rc;
}

int orbit_ledger_each_quota(orbit_ledger_t *l, orbit_ledger_quota_fn fn, void *ctx)
{
    if (!l || !fn)
        return ORBIT_EINVAL;
    READ(l, walk_rc(orbit_ledger_store_quota_each(tx, fn, ctx)));
}

int orbit_ledger_each_identity(orbit_ledger_t *l, orbit_ledger_identity_fn fn, void *ctx)
{
    if (!l || !fn)
        return ORBIT_EINVAL;
    READ(l, walk_rc(orbit_ledger_store_identity_each(tx, fn, ctx)));
}

/* ------------------------------------------------------------ history */

int orbit_ledger_history_from(orbit_ledger_t *l, uint64_t from_index, orbit_ledger_commit_fn fn,
                              void *ctx, uint64_t *compacted)
{
    orbit_ledger_tx_t tx = {0};
    uint64_t mark = 0;
    if (compacted)
        *compacted = 0;
    if (!l || !fn)
        return ORBIT_EINVAL;
    if (from_index == 0)
        from_index = 1;
    int rc = tx_begin(l, false, &tx);
    if (!rc)
        rc = meta_u64(&tx, ORBIT_LEDGER_META_COMPACTED, &mark);
    if (!rc && compacted)
        *compacted = mark;
    if (!rc && mark && from_index <= mark)
        rc = ORBIT_ECOMPACTED;
    if (!rc)
        rc = orbit_ledger_store_history_each(&tx, from_index, fn, ctx);
    tx_abort(&tx);
    return rc;
}

bool orbit_ledger_commit_touches(const orbit_ledger_commit_t *c, const char *prefix)
{
    if (!c)
        return false;
    if (!prefix || !*prefix)
        return true;
    size_t plen = strlen(prefix);
    const char *k = c->keys;
    for (size_t i = 0; i < c->nkeys; i++) {
        if (!strncmp(k, prefix, plen))
            return true;
        k += strlen(k) + 1;
    }
    return false;
}

void orbit_ledger_set_history_keep(orbit_ledger_t *l, uint64_t keep)
{
    if (l)
        l->history_keep = keep;
}

int orbit_ledger_compact_history(orbit_ledger_t *l, uint64_t upto_index)
{
    orbit_ledger_tx_t tx = {0};
    if (!l)
        return ORBIT_EINVAL;
    if (upto_index > l->index)
        upto_index = l->index;
    int rc = tx_begin(l, true, &tx);
    if (!rc)
        rc = compact_to(&tx, upto_index, UINT64_MAX);
    if (!rc)
        rc = tx_commit(&tx);
    tx_abort(&tx);
    return rc;
}

/* ------------------------------------------------------------ leader helpers */

int orbit_ledger_due_expiries(orbit_ledger_t *l, int64_t now_ms, orbit_ledger_due_t *out,
                              size_t max, size_t *n)
{
    if (n)
        *n = 0;
    if (!l || !n || (!out && max))
        return ORBIT_EINVAL;
    READ(l, orbit_ledger_store_expiry_due(tx, now_ms, out, max, n));
}

/* ------------------------------------------------------------ hash */

/* Feed one record, as (tag + key, value) with 32-bit big-endian lengths. */
static void hash_record(orbit_sha256_t *s, char tag, const MDB_val *k, const MDB_val *v)
{
    uint8_t len[8];
    size_t klen = k->mv_size + 1;
    for (int i = 0; i < 4; i++) {
        len[i] = (uint8_t)(klen >> (24 - 8 * i));
        len[4 + i] = (uint8_t)(v->mv_size >> (24 - 8 * i));
    }
    orbit_sha256_update(s, len, 4);
    orbit_sha256_update(s, &tag, 1);
    orbit_sha256_update(s, k->mv_data, k->mv_size);
    orbit_sha256_update(s, len + 4, 4);
    orbit_sha256_update(s, v->mv_data, v->mv_size);
}

int orbit_ledger_hash(orbit_ledger_t *l, uint8_t out[ORBIT_LEDGER_HASH_LEN])
{
    orbit_ledger_tx_t tx = {0};
    MDB_cursor *cur = NULL;
    orbit_sha256_t s;
    if (!l || !out)
        return ORBIT_EINVAL;
    if (l->hash_valid && l->env) {
        memcpy(out, l->hash, ORBIT_LEDGER_HASH_LEN);
        return ORBIT_OK;
    }
    int rc = tx_begin(l, false, &tx);
    if (rc)
        goto out;
    orbit_sha256_init(&s);
    /* Every table but history (covered by the chain digest), in tag order:
     * the records as one keyspace of tag + key would order them. */
    for (int t = 0; !rc && t < ORBIT_LEDGER_TABLES; t++) {
        if (t == ORBIT_LEDGER_T_HISTORY)
            continue;
        char tag = orbit_ledger_store_table_tag((orbit_ledger_table_t)t);
        rc = orbit_ledger_store_err(mdb_cursor_open(tx.txn, l->dbi[t], &cur));
        if (rc)
            break;
        MDB_val k, v;
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        for (; mrc == MDB_SUCCESS; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            if (orbit_ledger_store_hashed((orbit_ledger_table_t)t, k.mv_data, k.mv_size))
                hash_record(&s, tag, &k, &v);
        rc = mrc == MDB_NOTFOUND ? ORBIT_OK : orbit_ledger_store_err(mrc);
        mdb_cursor_close(cur);
        cur = NULL;
    }
    if (!rc) {
        orbit_sha256_final(&s, out);
        memcpy(l->hash, out, ORBIT_LEDGER_HASH_LEN);
        l->hash_valid = true;
    }
out:
    tx_abort(&tx);
    return rc;
}

/* ------------------------------------------------------------ snapshots */

/* A copy of the environment to fd (compacted or as it is). With
 * applied_index, on the applying thread: no apply runs during the copy, so
 * the copy holds exactly the cached applied index. */
static int copy_to(orbit_ledger_t *l, int fd, bool compact, uint64_t *applied_index)
{
    int rc = orbit_ledger_store_err(mdb_env_copyfd2(l->env, fd, compact ? MDB_CP_COMPACT : 0));
    if (rc == ORBIT_ENOTFOUND)
        rc = ORBIT_EIO;
    if (!rc && applied_index)
        *applied_index = l->applied;
    return rc;
}

int orbit_ledger_snapshot(orbit_ledger_t *l, int fd, uint64_t *applied_index)
{
    if (!l || fd < 0)
        return ORBIT_EINVAL;
    if (!l->env)
        return ORBIT_EIO;
    return copy_to(l, fd, true, applied_index);
}

int orbit_ledger_snapshot_buf(orbit_ledger_t *l, bool compact, uint8_t **buf, size_t *len,
                              uint64_t *applied_index)
{
    if (buf)
        *buf = NULL;
    if (len)
        *len = 0;
    if (!l || !buf || !len)
        return ORBIT_EINVAL;
    if (!l->env)
        return ORBIT_EIO;
    /* An anonymous memory file, mapped: no disk under /tmp, no second copy
     * into a heap buffer (a 370 MiB ledger took 1.5 s through a tmpfile and
     * pread, 0.13-0.25 s this way). */
    int fd = memfd_create("orbit-ledger-snapshot", MFD_CLOEXEC);
    if (fd < 0)
        return errno == ENOMEM ? ORBIT_ENOMEM : ORBIT_EIO;
    int rc = copy_to(l, fd, compact, applied_index);
    off_t size = rc ? 0 : lseek(fd, 0, SEEK_END);
    if (!rc && size <= 0)
        rc = ORBIT_EIO;
    void *m = MAP_FAILED;
    if (!rc && (m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED)
        rc = errno == ENOMEM ? ORBIT_ENOMEM : ORBIT_EIO;
    close(fd);
    if (rc)
        return rc;
    *buf = m;
    *len = (size_t)size;
    return ORBIT_OK;
}

void orbit_ledger_snapshot_free(uint8_t *buf, size_t len)
{
    if (buf)
        munmap(buf, len);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ORBIT_EIO;
        p += w;
        n -= (size_t)w;
    }
    return ORBIT_OK;
}

/* Check the LMDB file at path: a ledger of this format whose cluster id is
 * compatible with ours; *cluster_empty says whether it has none. */
static int check_snapshot(orbit_ledger_t *l, const char *path, bool *cluster_empty, char *err,
                          size_t errlen)
{
    MDB_env *env = NULL;
    MDB_dbi dbi[ORBIT_LEDGER_TABLES];
    orbit_ledger_tx_t tx = {0};
    int rc = ORBIT_OK;
    int mrc = mdb_env_create(&env);
    if (!mrc)
        mrc = mdb_env_set_mapsize(env, (size_t)ORBIT_LEDGER_MAP_SIZE);
    if (!mrc)
        mrc = mdb_env_set_maxdbs(env, ORBIT_LEDGER_MAXDBS);
    if (!mrc)
        mrc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600);
    if (!mrc)
        mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, &tx.txn);
    if (mrc) {
        orbit_errf(err, errlen, "ledger: not a ledger snapshot: %s", mdb_strerror(mrc));
        rc = mrc == ENOMEM ? ORBIT_ENOMEM : ORBIT_EINVAL;
        goto out;
    }
    tx.dbi = dbi;
    tx.scratch = &l->scratch;
    uint64_t version = 0;
    const uint8_t *p;
    size_t n;
    /* a snapshot of another format has not these tables */
    rc = orbit_ledger_store_tables_open(tx.txn, false, dbi);
    if (!rc)
        rc = orbit_ledger_store_get_u64(&tx, ORBIT_LEDGER_META_VERSION, &version);
    if (rc || version != ORBIT_LEDGER_FORMAT) {
        orbit_errf(err, errlen, "ledger: not a ledger snapshot of format %d", ORBIT_LEDGER_FORMAT);
        rc = ORBIT_EINVAL;
        goto out;
    }
    rc = orbit_ledger_store_get_raw(&tx, ORBIT_LEDGER_META_CLUSTER, &p, &n);
    *cluster_empty = rc == ORBIT_ENOTFOUND;
    if (rc == ORBIT_ENOTFOUND) {
        rc = ORBIT_OK;
    } else if (!rc && l->cluster[0] && (n != strlen(l->cluster) || memcmp(p, l->cluster, n))) {
        orbit_errf(err, errlen, "ledger: snapshot of cluster %.*s, this replica is of cluster %s",
                   (int)(n > ORBIT_LEDGER_NAME_MAX ? ORBIT_LEDGER_NAME_MAX : n), (const char *)p,
                   l->cluster);
        rc = ORBIT_EINVAL;
    } else if (rc) {
        orbit_errf(err, errlen, "ledger: unreadable snapshot");
        rc = ORBIT_EINVAL;
    }
out:
    orbit_ledger_store_tx_close(&tx);
    if (tx.txn)
        mdb_txn_abort(tx.txn);
    if (env)
        mdb_env_close(env);
    return rc;
}

/* Replace the environment's data file with the checked snapshot at tmp. */
static int swap_in(orbit_ledger_t *l, const char *tmp, char *err, size_t errlen)
{
    char data[4096];
    char cluster[ORBIT_LEDGER_NAME_MAX + 1];
    bool cluster_empty = true;
    int rc = check_snapshot(l, tmp, &cluster_empty, err, errlen);
    if (rc)
        return rc;
    if ((size_t)snprintf(data, sizeof data, "%s/data.mdb", l->dir) >= sizeof data)
        return ORBIT_EINVAL;
    snprintf(cluster, sizeof cluster, "%s", l->cluster);
    env_close(l);
    if (rename(tmp, data) != 0) {
        orbit_errf(err, errlen, "ledger: cannot rename the snapshot into place: %s",
                   strerror(errno));
        rc = ORBIT_EIO;
    }
    int dfd = open(l->dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    /* Reopen whatever is in place now: the old state if the rename failed. */
    int orc = env_open(l, rc ? NULL : err, errlen);
    if (!rc)
        rc = orc;
    if (!rc && cluster_empty && cluster[0])
        rc = orbit_ledger_set_cluster_id(l, cluster, err, errlen); /* keep ours */
    return rc;
}

int orbit_ledger_restore(orbit_ledger_t *l, int fd, char *err, size_t errlen)
{
    char tmp[4096];
    uint8_t buf[65536];
    if (err && errlen)
        err[0] = '\0';
    if (!l || fd < 0)
        return ORBIT_EINVAL;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/restore.mdb.tmp", l->dir) >= sizeof tmp)
        return ORBIT_EINVAL;
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        orbit_errf(err, errlen, "ledger: cannot create %s: %s", tmp, strerror(errno));
        return ORBIT_EIO;
    }
    int rc = ORBIT_OK;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = ORBIT_EIO;
        if (r <= 0)
            break;
        rc = write_all(out, buf, (size_t)r);
        if (rc)
            break;
    }
    if (!rc && fsync(out) != 0)
        rc = ORBIT_EIO;
    close(out);
    if (rc)
        orbit_errf(err, errlen, "ledger: cannot copy the snapshot: %s", strerror(errno));
    if (!rc)
        rc = swap_in(l, tmp, err, errlen);
    unlink(tmp);
    return rc;
}

int orbit_ledger_restore_buf(orbit_ledger_t *l, const uint8_t *buf, size_t len, char *err,
                             size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!l || (!buf && len))
        return ORBIT_EINVAL;
    FILE *f = tmpfile();
    if (!f)
        return ORBIT_EIO;
    int rc = write_all(fileno(f), buf, len);
    if (!rc && lseek(fileno(f), 0, SEEK_SET) != 0)
        rc = ORBIT_EIO;
    if (!rc)
        rc = orbit_ledger_restore(l, fileno(f), err, errlen);
    fclose(f);
    return rc;
}
