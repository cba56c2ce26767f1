/* orbit_node: the compact in-memory state of one node and its wire codec
 * (full state, real deltas, validation). Shared by the leaf (builds and diffs
 * it), the simulator, and the shard (stores and applies it).
 *
 * Units are chosen so that every field is an integer: CPU in millicores,
 * memory in bytes, load and pressure in hundredths (load 1.25 -> 125,
 * PSI avg10 12.5 % -> 1250), power in milliwatts, times in milliseconds.
 *
 * Thread rules: none; every function works only on the objects it is given. */
#ifndef ORBIT_NODE_H
#define ORBIT_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "orbit.pb-c.h"

#define ORBIT_NAME_MAX        64  /* node and shard names, including the NUL */
#define ORBIT_UUID_MAX        48  /* GPU UUID text, including the NUL */
#define ORBIT_LABELS_MAX      256 /* packed "k=v\n" labels, including the NUL */
#define ORBIT_GPUS_MAX        64  /* a node claiming more GPUs is rejected */
#define ORBIT_LABEL_KEY_MAX   63
#define ORBIT_LABEL_VALUE_MAX 127

/* Plausibility bounds: anything beyond is rejected as absurd. */
#define ORBIT_CPU_MAX_M    (100000LL * 1000) /* 100,000 cores */
#define ORBIT_MEM_MAX      (1LL << 50)       /* 1 PiB */
#define ORBIT_GPU_MEM_MAX  (1LL << 40)       /* 1 TiB per GPU */
#define ORBIT_PRESSURE_MAX 10000             /* 100.00 % */
#define ORBIT_LOAD_MAX     (1000000u * 100u)

typedef enum {
    ORBIT_GPU_HEALTHY = 0,
    ORBIT_GPU_DEGRADED = 1,
    ORBIT_GPU_FAILED = 2,
    ORBIT_GPU_HEALTH_COUNT
} orbit_gpu_health_t;

typedef struct {
    uint32_t index;
    char uuid[ORBIT_UUID_MAX];
    int32_t temp_c;
    uint32_t util_pct;
    uint64_t mem_used;
    uint64_t mem_total;
    uint32_t power_mw;
    uint64_t ecc_corrected;
    uint64_t ecc_uncorrected;
    uint32_t last_xid;
    orbit_gpu_health_t health;
} orbit_gpu_t;

typedef struct {
    uint32_t cpu_some, mem_some, mem_full, io_some, io_full; /* avg10 x100 */
} orbit_pressure_t;

/* Capsules a node reports (execution plane): ids are the ledger's capsule
 * ids (mission/module/index, id characters, 1..63 bytes). */
#define ORBIT_CAPSULE_ID_MAX     64  /* including the NUL */
#define ORBIT_CAPSULE_REASON_MAX 128 /* including the NUL; longer reasons are cut */
#define ORBIT_CAPSULES_MAX       256 /* a node reporting more is rejected */

/* Same values as the wire's CapsuleState. */
typedef enum {
    ORBIT_CAPSULE_STARTING = 0,
    ORBIT_CAPSULE_RUNNING = 1,
    ORBIT_CAPSULE_EXITED = 2,
    ORBIT_CAPSULE_FAILED = 3,
    ORBIT_CAPSULE_OOM_KILLED = 4,
    ORBIT_CAPSULE_STOPPED = 5,
    ORBIT_CAPSULE_STATE_COUNT
} orbit_capsule_state_t;

typedef struct {
    char id[ORBIT_CAPSULE_ID_MAX];
    orbit_capsule_state_t state;
    int32_t exit_code;                     /* EXITED */
    char reason[ORBIT_CAPSULE_REASON_MAX]; /* "" or why (FAILED, OOM_KILLED) */
    int64_t since_ms;                      /* leaf clock: entered this state */
} orbit_capsule_t;

/* "starting", "running", "exited", "failed", "oom_killed", "stopped"; "?"
 * for anything else. */
const char *orbit_capsule_state_name(orbit_capsule_state_t s);

/* Everything a node reports about itself. Plain value type: copy with '='
 * only when gpus and capsules are NULL; use orbit_node_state_copy otherwise. */
typedef struct {
    char name[ORBIT_NAME_MAX];
    uint64_t incarnation; /* changes when the node reboots (ordered) */
    int64_t sampled_ms;   /* leaf wall clock at sampling */
    uint32_t interval_ms; /* the leaf's reporting interval */
    int64_t cpu_capacity_m, cpu_used_m;
    int64_t mem_capacity, mem_used;
    uint32_t gpu_capacity;
    uint32_t load1, load5, load15; /* x100 */
    bool pressure_available;
    orbit_pressure_t pressure;
    char labels[ORBIT_LABELS_MAX]; /* "k=v\n" pairs, sorted by key */
    uint32_t ngpus;
    orbit_gpu_t *gpus; /* heap array of ngpus, owned by the state */
    uint32_t ncapsules;
    orbit_capsule_t *capsules; /* heap array of ncapsules sorted by id, owned by the state */
} orbit_node_state_t;

/* Zero a state. */
void orbit_node_state_init(orbit_node_state_t *s);
/* Free the GPU and capsule arrays and zero the state. NULL-safe. */
void orbit_node_state_close(orbit_node_state_t *s);
/* Deep copy src into dst (dst's old GPUs and capsules are freed).
 * Errors: ORBIT_ENOMEM (dst unchanged). */
int orbit_node_state_copy(orbit_node_state_t *dst, const orbit_node_state_t *src);
/* Replace the GPU list with a copy of n entries.
 * Errors: ORBIT_ENOMEM (s unchanged), ORBIT_EINVAL (n > ORBIT_GPUS_MAX). */
int orbit_node_state_set_gpus(orbit_node_state_t *s, const orbit_gpu_t *gpus, uint32_t n);

/* Replace the capsule list with a copy of n entries, sorted by id. Reasons
 * are cut to ORBIT_CAPSULE_REASON_MAX - 1 bytes and any byte outside
 * printable ASCII becomes '?' (receivers reject them: see
 * orbit_capsules_validate).
 * Errors: ORBIT_ENOMEM (s unchanged), ORBIT_EINVAL (n > ORBIT_CAPSULES_MAX,
 * an id empty, too long or with a character outside the id rule, two
 * entries with one id, a state out of range, a negative since_ms; s
 * unchanged). */
int orbit_node_state_set_capsules(orbit_node_state_t *s, const orbit_capsule_t *caps, uint32_t n);

/* Capsule lists on the wire (NodeDelta.capsules, NodeRow.capsules), shared by
 * the node codec, the shards and the root view. */

/* Check a decoded capsule list: at most ORBIT_CAPSULES_MAX entries, ids by
 * the id rule (orbit_names.h) and unique, states in range, reasons printable
 * ASCII of at most ORBIT_CAPSULE_REASON_MAX - 1 bytes, since_ms >= 0. On
 * failure writes a short static reason to *reason (may be NULL).
 * Errors: ORBIT_EINVAL. */
int orbit_capsules_validate(Orbit__CapsuleHealth *const *caps, size_t n, const char **reason);

/* Copy a validated wire list into a new heap array sorted by id (*out NULL
 * when n is 0; free() it). Absent fields become 0 / "".
 * Errors: ORBIT_ENOMEM (*out untouched). */
int orbit_capsules_from_pb(Orbit__CapsuleHealth *const *caps, size_t n, orbit_capsule_t **out);

/* One wire entry (initialised here) for c; strings point into c. Zero fields
 * are left absent, except the exit code of an EXITED capsule. */
void orbit_capsule_to_pb(const orbit_capsule_t *c, Orbit__CapsuleHealth *out);

/* Wire entries for caps[0..n) in arena a (*out NULL when n is 0). Strings
 * point into caps: keep them alive and unchanged until packed.
 * Errors: ORBIT_ENOMEM. */
struct orbit_arena;
int orbit_capsules_to_pb(const orbit_capsule_t *caps, size_t n, struct orbit_arena *a,
                         Orbit__CapsuleHealth ***out);

/* Set label key=value, keeping labels sorted by key and keys unique.
 * Errors: ORBIT_EINVAL (empty or over-long key/value, '=' or '\n' inside,
 * or no room left); s unchanged on error. */
int orbit_node_label_set(orbit_node_state_t *s, const char *key, const char *value);
/* Copy the value of label key into out (size n). Returns true if present. */
bool orbit_node_label_get(const char *labels, const char *key, char *out, size_t n);

/* Bytes of heap held by s beyond sizeof(*s). */
size_t orbit_node_state_heap_bytes(const orbit_node_state_t *s);

/* Fill msg (caller-initialised with ORBIT__NODE_DELTA__INIT) with the fields
 * of cur that differ from base, or all fields when base is NULL (full state).
 * name, incarnation, seq and sampled_ms are always set. Lists (GPUs, labels,
 * capsules) go whole, with their *_set flag, when any entry differs (a
 * capsule by id, state, exit code, reason or since_ms), and always in a full
 * state. msg's repeated fields
 * point into buffers allocated in *scratch (one malloc'd block per call) and
 * into cur itself: keep cur alive and unchanged until msg is packed, then
 * free(*scratch).
 * Errors: ORBIT_ENOMEM (nothing to free). */
int orbit_node_delta_fill(Orbit__NodeDelta *msg, const orbit_node_state_t *cur,
                          const orbit_node_state_t *base, uint64_t seq, void **scratch);

/* Same, with every allocation in arena a (nothing to free; pointers still
 * reach into cur). */
struct orbit_arena;
int orbit_node_delta_fill_arena(Orbit__NodeDelta *msg, const orbit_node_state_t *cur,
                                const orbit_node_state_t *base, uint64_t seq,
                                struct orbit_arena *a);

/* Check every field of a decoded delta for plausibility: name length and
 * characters, bounds above, enum values, GPU count, used <= capacity (with the
 * capacity either in the delta or in base), label syntax, the capsule list
 * (orbit_capsules_validate; only with capsules_set). base may be NULL
 * (full state). On failure writes a short static reason to *reason.
 * Errors: ORBIT_EINVAL. */
int orbit_node_delta_validate(const Orbit__NodeDelta *msg, const orbit_node_state_t *base,
                              const char **reason);

/* Apply a validated delta (or full state: every absent field is then reset
 * to zero, and the GPU and capsule lists are emptied unless it carries them)
 * onto s. Lists with gpus_set / capsules_set are replaced wholesale (capsules
 * sorted by id). Names are not changed.
 * Errors: ORBIT_ENOMEM (s is then a mix of old and new: some fields and
 * lists updated, a list that could not be copied kept as it was, or empty
 * after a full state; the caller should request a resync). */
int orbit_node_delta_apply(orbit_node_state_t *s, const Orbit__NodeDelta *msg);

/* True if the two states differ in any reported field (not name). */
bool orbit_node_state_differs(const orbit_node_state_t *a, const orbit_node_state_t *b);

/* Derive one GPU's health from its sample: failed on uncorrectable ECC
 * errors or a critical XID (48, 62, 63, 64, 74, 79, 92, 94, 95) or temp >= 95 C;
 * degraded on temp >= 85 C, any other XID or corrected ECC >= 1000. */
orbit_gpu_health_t orbit_gpu_health_derive(const orbit_gpu_t *g);

/* Name syntax shared by nodes and shards: 1..63 bytes of [A-Za-z0-9._-]. */
bool orbit_name_valid(const char *name);

#endif
