/* orbit_bench_frames: building and re-stamping pre-encoded leaf batches. */
#include "orbit_bench_frames.h"

#include <stdlib.h>
#include <string.h>

#include "orbit_err.h"
#include "orbit_node.h"
#include "orbit_wire.h"

/* Protobuf field numbers this module relies on (see orbit.proto). */
#define BATCH_DELTAS      2 /* LeafBatch.deltas */
#define DELTA_INCARNATION 2 /* NodeDelta.incarnation */
#define DELTA_SEQ         3 /* NodeDelta.seq */
#define WT_VARINT         0
#define WT_I64            1
#define WT_LEN            2
#define WT_I32            5
#define STAMP_BYTES       9

static bool stampable(uint64_t v)
{
    return v >= ORBIT_BENCH_STAMP_MIN && v < ORBIT_BENCH_STAMP_MAX;
}

static int push_frame(orbit_bench_frames_t *f, size_t *cap, const orbit_bench_frame_t *fr)
{
    if (f->nframes == *cap) {
        size_t n = *cap ? *cap * 2 : 256;
        orbit_bench_frame_t *g = realloc(f->frames, n * sizeof *g);
        if (!g)
            return ORBIT_ENOMEM;
        f->frames = g;
        *cap = n;
    }
    f->frames[f->nframes++] = *fr;
    f->deltas += fr->deltas;
    f->fulls += fr->fulls;
    f->bytes += fr->len;
    return ORBIT_OK;
}

/* Encode the k node messages of one frame. */
static int encode(orbit_bench_frames_t *f, size_t *cap, Orbit__NodeDelta **deltas, uint32_t k,
                  uint32_t fulls)
{
    Orbit__LeafBatch b = ORBIT__LEAF_BATCH__INIT;
    b.batch_id = f->nframes + 1;
    b.n_deltas = k;
    b.deltas = deltas;
    orbit_bench_frame_t fr = {NULL, 0, k, fulls};
    int rc = orbit_wire_encode(ORBIT_MSG_LEAF_BATCH, &b.base, &fr.buf, &fr.len);
    if (rc == ORBIT_OK && (rc = push_frame(f, cap, &fr)) != ORBIT_OK)
        free(fr.buf);
    return rc;
}

int orbit_bench_frames_build(orbit_bench_frames_t *f, const orbit_sim_model_cfg_t *model,
                             uint32_t rounds, uint32_t batch, uint32_t full_every,
                             int64_t start_wall_ms, uint64_t incarnation, uint64_t first_seq)
{
    memset(f, 0, sizeof *f);
    if (!model || !rounds || !batch || !full_every || !stampable(incarnation) ||
        !stampable(first_seq) || !stampable(first_seq + rounds))
        return ORBIT_EINVAL;
    orbit_sim_model_cfg_t mc = *model;
    mc.reboots_per_hour = 0;
    orbit_sim_model_t *m = orbit_sim_model_new(&mc);
    orbit_node_state_t *prev = calloc(mc.nodes, sizeof *prev);
    orbit_arena_t *a = orbit_arena_new(1 << 20);
    Orbit__NodeDelta **ptrs = calloc(batch, sizeof *ptrs);
    f->round_first = calloc((size_t)rounds + 1, sizeof *f->round_first);
    size_t cap = 0;
    int rc = ORBIT_ENOMEM;
    if (!m || !prev || !a || !ptrs || !f->round_first)
        goto out;
    f->nodes = mc.nodes;
    f->rounds = rounds;
    f->incarnation = incarnation;
    f->first_seq = first_seq;
    for (uint32_t r = 0; r < rounds; r++) {
        f->round_first[r] = f->nframes;
        bool full = r % full_every == 0;
        int64_t wall = start_wall_ms + (int64_t)r * mc.interval_ms;
        for (uint32_t i = 0; i < mc.nodes;) {
            uint32_t k = 0;
            orbit_arena_reset(a);
            for (; k < batch && i < mc.nodes; k++, i++) {
                const orbit_node_state_t *st = orbit_sim_model_step(m, i, wall, NULL);
                Orbit__NodeDelta *d = orbit_arena_alloc(a, sizeof *d);
                if (!d)
                    goto out;
                orbit__node_delta__init(d);
                rc = orbit_node_delta_fill_arena(d, st, full ? NULL : &prev[i], first_seq + r, a);
                if (rc != ORBIT_OK)
                    goto out;
                d->incarnation = incarnation;
                /* The fill points at the model's scratch (name, GPU UUIDs),
                 * which the next step overwrites: point it at our copy. */
                rc = orbit_node_state_copy(&prev[i], st);
                if (rc != ORBIT_OK)
                    goto out;
                d->node = prev[i].name;
                for (size_t g = 0; g < d->n_gpus; g++)
                    d->gpus[g]->uuid = prev[i].gpus[g].uuid;
                ptrs[k] = d;
            }
            rc = encode(f, &cap, ptrs, k, full ? k : 0);
            if (rc != ORBIT_OK)
                goto out;
        }
    }
    f->round_first[rounds] = f->nframes;
    rc = ORBIT_OK;
out:
    if (prev)
        for (uint32_t i = 0; i < mc.nodes; i++)
            orbit_node_state_close(&prev[i]);
    free(prev);
    free(ptrs);
    orbit_arena_destroy(&a);
    orbit_sim_model_destroy(&m);
    if (rc != ORBIT_OK)
        orbit_bench_frames_free(f);
    return rc;
}

void orbit_bench_frames_free(orbit_bench_frames_t *f)
{
    for (size_t i = 0; i < f->nframes; i++)
        free(f->frames[i].buf);
    free(f->frames);
    free(f->round_first);
    memset(f, 0, sizeof *f);
}

/* ------------------------------------------------------------ re-stamping */

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

static bool skip(const uint8_t **p, const uint8_t *end, unsigned wt)
{
    uint64_t n;
    switch (wt) {
    case WT_VARINT: return varint(p, end, &n);
    case WT_I64: n = 8; break;
    case WT_I32: n = 4; break;
    case WT_LEN:
        if (!varint(p, end, &n))
            return false;
        break;
    default: return false;
    }
    if (n > (uint64_t)(end - *p))
        return false;
    *p += n;
    return true;
}

/* Overwrite the 9-byte varint at p with v (stampable). */
static bool put9(uint8_t *p, const uint8_t *end, uint64_t v)
{
    if (end - p < STAMP_BYTES)
        return false;
    for (int i = 0; i < STAMP_BYTES - 1; i++)
        if (!(p[i] & 0x80))
            return false; /* not a 9-byte encoding: not ours */
    if (p[STAMP_BYTES - 1] & 0x80)
        return false;
    for (int i = 0; i < STAMP_BYTES - 1; i++, v >>= 7)
        p[i] = (uint8_t)(v & 0x7f) | 0x80;
    p[STAMP_BYTES - 1] = (uint8_t)v;
    return true;
}

static bool stamp_delta(uint8_t *p, const uint8_t *end, uint64_t incarnation, uint64_t seq)
{
    int seen = 0;
    while (p < end) {
        const uint8_t *q = p;
        uint64_t tag;
        if (!varint(&q, end, &tag))
            return false;
        p = (uint8_t *)q;
        unsigned field = (unsigned)(tag >> 3), wt = (unsigned)(tag & 7);
        if (wt == WT_VARINT && (field == DELTA_INCARNATION || field == DELTA_SEQ)) {
            if (!put9(p, end, field == DELTA_SEQ ? seq : incarnation))
                return false;
            p += STAMP_BYTES;
            seen++;
            continue;
        }
        if (!skip(&q, end, wt))
            return false;
        p = (uint8_t *)q;
    }
    return seen == 2;
}

static bool stamp_frame(orbit_bench_frame_t *fr, uint64_t incarnation, uint64_t seq)
{
    if (fr->len < ORBIT_WIRE_HDR)
        return false;
    uint8_t *p = fr->buf + ORBIT_WIRE_HDR;
    const uint8_t *end = fr->buf + fr->len;
    while (p < end) {
        const uint8_t *q = p;
        uint64_t tag, n;
        if (!varint(&q, end, &tag))
            return false;
        if ((tag >> 3) == BATCH_DELTAS && (tag & 7) == WT_LEN) {
            if (!varint(&q, end, &n) || n > (uint64_t)(end - q))
                return false;
            uint8_t *sub = fr->buf + (q - fr->buf);
            if (!stamp_delta(sub, sub + n, incarnation, seq))
                return false;
            p = sub + n;
            continue;
        }
        if (!skip(&q, end, (unsigned)(tag & 7)))
            return false;
        p = fr->buf + (q - fr->buf);
    }
    return true;
}

int orbit_bench_frames_stamp(orbit_bench_frames_t *f, uint32_t round, uint64_t incarnation,
                             uint64_t seq)
{
    if (round >= f->rounds || !stampable(incarnation) || !stampable(seq))
        return ORBIT_EINVAL;
    for (size_t i = f->round_first[round]; i < f->round_first[round + 1]; i++)
        if (!stamp_frame(&f->frames[i], incarnation, seq))
            return ORBIT_EINVAL;
    return ORBIT_OK;
}
