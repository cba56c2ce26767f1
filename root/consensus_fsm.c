/* consensus_fsm: the raft 0.15 struct raft_fsm adapter (index derivation,
 * skip-if-applied, snapshot envelope, result routing). */
#include "consensus_fsm.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_log.h"

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t adapter_applied(orbit_consensus_fsm_adapter_t *a)
{
    if (!a->applied_known) {
        a->applied = a->ops.applied_index(a->ctx);
        a->applied_known = true;
    }
    return a->applied;
}

static void release_result(orbit_consensus_fsm_adapter_t *a, uint64_t index, void *result)
{
    if (a->claim != NULL && a->claim(a->claim_arg, index, result))
        return;
    if (result != NULL && a->ops.result_free != NULL)
        a->ops.result_free(a->ctx, result);
}

/* raft's libuv log store needs every entry to be a multiple of 8 bytes
 * long (otherwise a restarted replica misreads its segments), so
 * orbit_consensus_propose wraps each entry: "OBE1", the payload length
 * (u32, little endian), the payload, zero padding. Unwrap it here; an entry
 * without the header (proposed by something else) passes through as is. */
static void entry_unwrap(const struct raft_buffer *buf, const void **p, size_t *n)
{
    const uint8_t *b = buf->base;
    *p = buf->base;
    *n = buf->len;
    if (buf->len < ORBIT_CONSENSUS_ENTRY_HDR || memcmp(b, ORBIT_CONSENSUS_ENTRY_MAGIC, 4) != 0)
        return;
    size_t len = (size_t)b[4] | (size_t)b[5] << 8 | (size_t)b[6] << 16 | (size_t)b[7] << 24;
    if (len > buf->len - ORBIT_CONSENSUS_ENTRY_HDR || orbit_consensus_entry_size(len) != buf->len)
        return;
    *p = b + ORBIT_CONSENSUS_ENTRY_HDR;
    *n = len;
}

size_t orbit_consensus_entry_size(size_t payload)
{
    return (ORBIT_CONSENSUS_ENTRY_HDR + payload + 7) & ~(size_t)7;
}

void orbit_consensus_entry_wrap(void *dst, const void *payload, size_t len)
{
    uint8_t *d = dst;
    size_t total = orbit_consensus_entry_size(len);
    memcpy(d, ORBIT_CONSENSUS_ENTRY_MAGIC, 4);
    d[4] = (uint8_t)len;
    d[5] = (uint8_t)(len >> 8);
    d[6] = (uint8_t)(len >> 16);
    d[7] = (uint8_t)(len >> 24);
    memcpy(d + ORBIT_CONSENSUS_ENTRY_HDR, payload, len);
    memset(d + ORBIT_CONSENSUS_ENTRY_HDR + len, 0, total - ORBIT_CONSENSUS_ENTRY_HDR - len);
}

/* Bring the next snapshot forward once the log since the last one holds
 * enough bytes: raft takes one when last_applied - snapshot index >=
 * threshold, so a threshold of 1 takes it right after this entry. */
static void count_logged(orbit_consensus_fsm_adapter_t *a, size_t len)
{
    a->log_bytes += len;
    uint64_t limit = a->snap_bytes > a->state_bytes / 2 ? a->snap_bytes : a->state_bytes / 2;
    if (a->snap_bytes && !a->snap_forced && a->log_bytes >= limit) {
        a->snap_forced = true;
        a->n_snapshots_by_bytes++;
        raft_set_snapshot_threshold(a->raft, 1);
    }
}

/* A snapshot point at index, taken or restored: raft's threshold goes back
 * to its entry count and the bytes are counted from here. */
static void snapshot_point(orbit_consensus_fsm_adapter_t *a, uint64_t index)
{
    if (a->snap_forced)
        raft_set_snapshot_threshold(a->raft, a->snap_threshold);
    a->snap_forced = false;
    a->snap_index = index;
    a->log_bytes = 0;
}

/* A snapshot at index is being taken (loop thread): the entries kept
 * behind it are trimmed to about a quarter of the byte budget, judged by
 * the mean size of the entries since the last one. */
static void snapshot_taken(orbit_consensus_fsm_adapter_t *a, uint64_t index)
{
    if (a->snap_bytes) {
        uint64_t n = index > a->snap_index ? index - a->snap_index : 0;
        uint64_t mean = n ? a->log_bytes / n : 0;
        uint64_t keep = mean ? a->snap_bytes / 4 / mean : a->snap_trailing;
        if (keep < ORBIT_CONSENSUS_SNAPSHOT_TRAILING_MIN)
            keep = ORBIT_CONSENSUS_SNAPSHOT_TRAILING_MIN;
        if (keep > a->snap_trailing)
            keep = a->snap_trailing;
        raft_set_snapshot_trailing(a->raft, (unsigned)keep);
    }
    a->log_bytes_taken = a->log_bytes;
    snapshot_point(a, index);
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    orbit_consensus_fsm_adapter_t *a = fsm->data;
    void *res = NULL;
    int rv;

    assert(a->raft != NULL); /* orbit_consensus_fsm_bind was not called */
    /* raft 0.15 gives no index: see consensus_fsm.h for why this holds. */
    uint64_t index = (uint64_t)a->raft->last_applied + 1;
    *result = NULL;

    if (index <= a->last_index) {
        /* Would mean the derivation above no longer holds for this raft. */
        a->n_out_of_order++;
        orbit_error("consensus: apply at index %llu after %llu: index derivation broken",
                    (unsigned long long)index, (unsigned long long)a->last_index);
    }
    if (index <= adapter_applied(a)) {
        /* Already in the durable state (a restarted replica replaying its
         * log): acknowledge without applying twice. */
        a->n_skipped++;
        a->last_index = index;
        release_result(a, index, NULL);
        count_logged(a, buf->len);
        return 0;
    }
    const void *payload;
    size_t plen;
    entry_unwrap(buf, &payload, &plen);
    rv = a->ops.apply(a->ctx, index, payload, plen, &res);
    if (rv != 0) {
        /* raft stops here and retries this entry on the next commit. */
        a->n_apply_errors++;
        orbit_error("consensus: apply of entry %llu failed: %s", (unsigned long long)index,
                    orbit_strerror(rv));
        if (res != NULL && a->ops.result_free != NULL)
            a->ops.result_free(a->ctx, res);
        return RAFT_IOERR;
    }
    a->n_applied++;
    a->applied = index;
    a->last_index = index;
    release_result(a, index, res);
    count_logged(a, buf->len);
    return 0;
}

static void state_free(orbit_consensus_fsm_adapter_t *a, void *data, size_t len)
{
    if (data == NULL)
        return;
    if (a->ops.snapshot_free != NULL)
        a->ops.snapshot_free(a->ctx, data, len);
    else
        free(data);
}

/* Every entry apply accepted into the state (ops.flush), before a snapshot
 * is taken or restored. */
static int state_flush(orbit_consensus_fsm_adapter_t *a)
{
    int rv = a->ops.flush ? a->ops.flush(a->ctx) : 0;
    if (rv != 0) {
        a->n_flush_errors++;
        orbit_warn("consensus: cannot bring the state up to applied index %llu: %s",
                   (unsigned long long)a->applied, orbit_strerror(rv));
    }
    return rv;
}

/* fsm version 2: bufs[0] is our envelope header, bufs[1] the state
 * machine's bytes; both are released in fsm_snapshot_finalize once raft has
 * stored them (or failed to). */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    orbit_consensus_fsm_adapter_t *a = fsm->data;
    uint64_t index = (uint64_t)a->raft->last_applied;
    struct raft_buffer *b;
    uint8_t *hdr;
    void *data = NULL;
    size_t len = 0;
    int rv;

    *bufs = NULL;
    *n_bufs = 0;
    if (state_flush(a) != 0)
        return RAFT_BUSY; /* transient for raft: it retries later */
    rv = a->ops.snapshot(a->ctx, index, &data, &len);
    if (rv != 0) {
        if (rv != ORBIT_EAGAIN)
            orbit_warn("consensus: snapshot at %llu failed: %s", (unsigned long long)index,
                       orbit_strerror(rv));
        state_free(a, data, len);
        return RAFT_BUSY; /* transient for raft: it retries later */
    }
    b = calloc(2, sizeof *b);
    hdr = malloc(ORBIT_CONSENSUS_SNAP_HDR);
    if (b == NULL || hdr == NULL) {
        free(b);
        free(hdr);
        state_free(a, data, len);
        return RAFT_NOMEM;
    }
    memcpy(hdr, ORBIT_CONSENSUS_SNAP_MAGIC, 8);
    put_u32(hdr + 8, ORBIT_CONSENSUS_SNAP_VERSION);
    put_u32(hdr + 12, ORBIT_CONSENSUS_SNAP_HDR);
    put_u64(hdr + 16, index);
    b[0].base = hdr;
    b[0].len = ORBIT_CONSENSUS_SNAP_HDR;
    b[1].base = data;
    b[1].len = len;
    *bufs = b;
    *n_bufs = 2;
    snapshot_taken(a, index);
    return 0;
}

/* fsm version 3 (the state machine has snapshot_async): on the loop only
 * the envelope, with the raft index; the state's bytes are added by
 * fsm_snapshot_async on raft's worker thread. */
static int fsm_snapshot_header(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    orbit_consensus_fsm_adapter_t *a = fsm->data;
    *bufs = NULL;
    *n_bufs = 0;
    if (state_flush(a) != 0)
        return RAFT_BUSY;
    struct raft_buffer *b = calloc(2, sizeof *b);
    uint8_t *hdr = malloc(ORBIT_CONSENSUS_SNAP_HDR);
    if (b == NULL || hdr == NULL) {
        free(b);
        free(hdr);
        return RAFT_NOMEM;
    }
    memcpy(hdr, ORBIT_CONSENSUS_SNAP_MAGIC, 8);
    put_u32(hdr + 8, ORBIT_CONSENSUS_SNAP_VERSION);
    put_u32(hdr + 12, ORBIT_CONSENSUS_SNAP_HDR);
    put_u64(hdr + 16, (uint64_t)a->raft->last_applied);
    b[0].base = hdr;
    b[0].len = ORBIT_CONSENSUS_SNAP_HDR;
    *bufs = b;
    *n_bufs = 2; /* b[1] filled by fsm_snapshot_async */
    snapshot_taken(a, (uint64_t)a->raft->last_applied);
    return 0;
}

/* Worker thread: touches only the state machine's thread-safe copy and the
 * buffers raft handed over; no adapter field. */
static int fsm_snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    orbit_consensus_fsm_adapter_t *a = fsm->data;
    void *data = NULL;
    size_t len = 0;
    if (*bufs == NULL || *n_bufs != 2)
        return RAFT_INVALID;
    int rv = a->ops.snapshot_async(a->ctx, &data, &len);
    if (rv != 0) {
        state_free(a, data, len);
        return RAFT_BUSY;
    }
    (*bufs)[1].base = data;
    (*bufs)[1].len = len;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    orbit_consensus_fsm_adapter_t *a = fsm->data;
    if (*bufs != NULL && *n_bufs == 2 && (*bufs)[1].base != NULL)
        a->state_bytes = (*bufs)[1].len;
    else if (*bufs != NULL && *n_bufs == 2)
        /* the state's copy failed (snapshot_async): its log bytes count
         * towards the next one again */
        a->log_bytes += a->log_bytes_taken;
    if (*bufs != NULL) {
        /* bufs[0] is our envelope header, bufs[1] the state's bytes. */
        for (unsigned i = 0; i < *n_bufs; i++)
            if (i == 1)
                state_free(a, (*bufs)[i].base, (*bufs)[i].len);
            else
                free((*bufs)[i].base);
        free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* raft hands over buf->base on success (we raft_free it); on failure raft
 * keeps ownership and frees it itself. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    orbit_consensus_fsm_adapter_t *a = fsm->data;
    const uint8_t *p = buf->base;
    uint64_t index;
    int rv;

    if (buf->len < ORBIT_CONSENSUS_SNAP_HDR || memcmp(p, ORBIT_CONSENSUS_SNAP_MAGIC, 8) != 0 ||
        get_u32(p + 8) != ORBIT_CONSENSUS_SNAP_VERSION ||
        get_u32(p + 12) != ORBIT_CONSENSUS_SNAP_HDR) {
        a->n_bad_snapshots++;
        orbit_error("consensus: snapshot of %zu bytes has no valid v%u envelope; refused", buf->len,
                    ORBIT_CONSENSUS_SNAP_VERSION);
        return RAFT_MALFORMED;
    }
    index = get_u64(p + 16);
    if (state_flush(a) != 0)
        return RAFT_IOERR;
    a->applied_known = false;
    if (index != 0 && adapter_applied(a) >= index) {
        /* The durable state already covers the snapshot (raft loads its last
         * snapshot on every start): keep it. */
        a->n_restore_skipped++;
    } else {
        rv = a->ops.restore(a->ctx, index, p + ORBIT_CONSENSUS_SNAP_HDR,
                            buf->len - ORBIT_CONSENSUS_SNAP_HDR);
        if (rv != 0) {
            a->n_bad_snapshots++;
            orbit_error("consensus: restore of snapshot %llu failed: %s", (unsigned long long)index,
                        orbit_strerror(rv));
            return RAFT_MALFORMED;
        }
        a->n_restored++;
        a->applied_known = false; /* re-read from the restored state */
    }
    /* Entries after the snapshot are new whatever happened above. */
    a->last_index = index;
    a->state_bytes = buf->len - ORBIT_CONSENSUS_SNAP_HDR;
    snapshot_point(a, index);
    raft_free(buf->base);
    return 0;
}

int orbit_consensus_fsm_init(orbit_consensus_fsm_adapter_t *a, const orbit_consensus_fsm_t *ops,
                             void *ctx)
{
    if (ops == NULL || ops->apply == NULL || ops->snapshot == NULL || ops->restore == NULL ||
        ops->applied_index == NULL)
        return ORBIT_EINVAL;
    memset(a, 0, sizeof *a);
    a->ops = *ops;
    a->ctx = ctx;
    /* version 2: snapshot_finalize, we own the snapshot buffers; version 3
     * adds snapshot_async (raft runs it through io->async_work). */
    a->fsm.version = ops->snapshot_async ? 3 : 2;
    a->fsm.data = a;
    a->fsm.apply = fsm_apply;
    a->fsm.snapshot = ops->snapshot_async ? fsm_snapshot_header : fsm_snapshot;
    a->fsm.restore = fsm_restore;
    a->fsm.snapshot_finalize = fsm_snapshot_finalize;
    a->fsm.snapshot_async = ops->snapshot_async ? fsm_snapshot_async : NULL;
    return ORBIT_OK;
}

void orbit_consensus_fsm_set_snapshot_policy(orbit_consensus_fsm_adapter_t *a, unsigned threshold,
                                             unsigned trailing, uint64_t bytes)
{
    a->snap_threshold = threshold ? threshold : ORBIT_CONSENSUS_SNAPSHOT_THRESHOLD;
    a->snap_trailing = trailing ? trailing : ORBIT_CONSENSUS_SNAPSHOT_TRAILING;
    a->snap_bytes = bytes ? bytes : ORBIT_CONSENSUS_SNAPSHOT_BYTES;
}

void orbit_consensus_fsm_bind(orbit_consensus_fsm_adapter_t *a, struct raft *r)
{
    a->raft = r;
}

void orbit_consensus_fsm_set_claim(orbit_consensus_fsm_adapter_t *a, orbit_consensus_claim_fn claim,
                                   void *arg)
{
    a->claim = claim;
    a->claim_arg = arg;
}

int orbit_consensus_election_draw(uint64_t *rng, bool candidate, int min, int max)
{
    uint64_t x = *rng;

    if (candidate)
        max = min + (max - min) / 2;
    if (max <= min)
        return min;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return min + (int)((x * 0x2545f4914f6cdd1dull) % (uint64_t)(max - min));
}

void orbit_consensus_raft_tune(struct raft *r, unsigned election_ms, unsigned heartbeat_ms,
                               unsigned snapshot_threshold, unsigned snapshot_trailing)
{
    raft_set_election_timeout(r, election_ms ? election_ms : ORBIT_CONSENSUS_ELECTION_MS_DEFAULT);
    raft_set_heartbeat_timeout(r,
                               heartbeat_ms ? heartbeat_ms : ORBIT_CONSENSUS_HEARTBEAT_MS_DEFAULT);
    raft_set_snapshot_threshold(r, snapshot_threshold ? snapshot_threshold
                                                      : ORBIT_CONSENSUS_SNAPSHOT_THRESHOLD);
    raft_set_snapshot_trailing(r, snapshot_trailing ? snapshot_trailing
                                                    : ORBIT_CONSENSUS_SNAPSHOT_TRAILING);
    raft_set_pre_vote(r, true);
}
