/* orbit_bench_frames: pre-encoded leaf traffic for the ingest benchmark —
 * LeafBatch frames (envelope included, exactly as a leaf link sends them)
 * carrying what orbit-sim would send for a fleet of the sim's node model:
 * round 0 a full state per node, then one message per node per round, a
 * real delta against the node's previous round, or a full state every
 * full_every rounds.
 *
 * Every node message of the set carries the same incarnation, and node
 * messages of round r carry seq first_seq + r. Both are encoded as 9-byte
 * varints (values in [2^56, 2^63)) so that orbit_bench_frames_stamp can
 * rewrite them in place: a replay under a new incarnation is then, to a
 * shard, a reboot followed by fresh deltas rather than duplicates.
 *
 * Thread rules: none beyond the caller's; no I/O. */
#ifndef ORBIT_BENCH_FRAMES_H
#define ORBIT_BENCH_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "orbit_sim_model.h"

#define ORBIT_BENCH_STAMP_MIN (1ull << 56) /* smallest stampable incarnation or seq */
#define ORBIT_BENCH_STAMP_MAX (1ull << 63) /* exclusive */

typedef struct {
    uint8_t *buf; /* envelope + LeafBatch, malloc'd */
    size_t len;
    uint32_t deltas; /* node messages in the frame */
    uint32_t fulls;  /* of which full states */
} orbit_bench_frame_t;

typedef struct {
    orbit_bench_frame_t *frames; /* round by round, nodes in index order */
    size_t nframes;
    size_t *round_first; /* rounds + 1 entries: frames of round r are
                            [round_first[r], round_first[r + 1]) */
    uint32_t nodes, rounds;
    uint64_t deltas, fulls, bytes; /* totals over every frame */
    uint64_t incarnation, first_seq;
} orbit_bench_frames_t;

/* Build rounds (>= 1) rounds of traffic for the fleet described by model
 * (its reboot rate is ignored: a reboot would change the incarnation), in
 * frames of at most batch (>= 1) node messages; samples are stamped
 * start_wall_ms + r x model->interval_ms. incarnation and first_seq +
 * rounds must lie in [ORBIT_BENCH_STAMP_MIN, ORBIT_BENCH_STAMP_MAX).
 * On failure f is left empty (orbit_bench_frames_free is still safe).
 * Errors: ORBIT_EINVAL (bad arguments), ORBIT_ENOMEM. */
int orbit_bench_frames_build(orbit_bench_frames_t *f, const orbit_sim_model_cfg_t *model,
                             uint32_t rounds, uint32_t batch, uint32_t full_every,
                             int64_t start_wall_ms, uint64_t incarnation, uint64_t first_seq);

/* Rewrite, in place, the incarnation of every node message of round r and
 * its seq to seq (both in the stampable range).
 * Errors: ORBIT_EINVAL (out of range, or a frame that does not have the
 * layout this module wrote; frames already visited are rewritten). */
int orbit_bench_frames_stamp(orbit_bench_frames_t *f, uint32_t round, uint64_t incarnation,
                             uint64_t seq);

/* Free every frame and zero f; safe on a zeroed or failed set. */
void orbit_bench_frames_free(orbit_bench_frames_t *f);

#endif
