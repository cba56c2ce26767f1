/* leaf_desired: what the ledger wants this node to run — the node's placements (from the
 * node listing and the watch), module commands, and the desired set handed to the agent.
 *
 * Pure functions over decoded ledger data, used by the watcher actor (leaf_watch.h) and the
 * agent (leaf_exec.h); the design of the whole path is at the top of leaf_exec.h.
 *
 * Thread rules: none; every function works only on the objects it is given. */
#ifndef ORBIT_LEAF_DESIRED_H
#define ORBIT_LEAF_DESIRED_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leaf_capsule.h"
#include "ledger.pb-c.h"
#include "orbit_node.h"

/* Bounds of a module command (JSON argv array): arguments, and bytes of all of them. */
#define ORBIT_LEAF_ARGV_MAX       256
#define ORBIT_LEAF_ARGV_BYTES_MAX 65536

/* One capsule the ledger places on this node. */
typedef struct {
    char id[ORBIT_CAPSULE_ID_MAX];   /* capsule id (the id rule, 1..63 bytes) */
    char gang[ORBIT_CAPSULE_ID_MAX]; /* the gang it belongs to; "" for a single placement */
    uint64_t index;                  /* ledger index of its placement (> 0) */
    int64_t cpu_m, mem;              /* envelope */
    uint32_t gpus;
} orbit_leaf_placed_t;

/* This node's placements, sorted by id, ids unique. Caller-owned: init / close. */
typedef struct {
    orbit_leaf_placed_t *v;
    size_t n, cap;
} orbit_leaf_placed_set_t;

void orbit_leaf_placed_init(orbit_leaf_placed_set_t *s);
/* Free and zero; NULL-safe. */
void orbit_leaf_placed_close(orbit_leaf_placed_set_t *s);
/* The entry for id, or NULL. */
const orbit_leaf_placed_t *orbit_leaf_placed_find(const orbit_leaf_placed_set_t *s, const char *id);

/* Replace s with the "capsules" of the ledger's node/<node> JSON ({"node", "used",
 * "placements", "capsules": [{"capsule", "envelope": {"cpu_m", "mem", "gpus"}, "index",
 * "principal"?, "gang"?}, ...]}). Unknown members are ignored; "node" must be node. A node
 * runs (and reports) at most ORBIT_CAPSULES_MAX capsules: the first that many of the listing
 * (the ledger lists them by id) are kept, and *beyond (may be NULL) is set to the number
 * left out.
 * Errors: ORBIT_EINVAL with a one-line reason in err (not JSON, not an object, another node,
 * "capsules" missing or not an array, an entry without a valid capsule id or a positive index,
 * an envelope value negative or not an integer, a gang that is not an id, a capsule twice),
 * ORBIT_ENOMEM. On error s and *beyond are unchanged. */
int orbit_leaf_placed_parse_node(orbit_leaf_placed_set_t *s, const char *json, const char *node,
                                 size_t *beyond, char *err, size_t errlen);

/* What a watch item did to the set. */
typedef enum {
    ORBIT_LEAF_ITEM_IGNORED = 0, /* does not concern this node (or names nothing of ours) */
    ORBIT_LEAF_ITEM_CHANGED = 1, /* placed or removed at least one capsule of ours */
} orbit_leaf_item_t;

/* Apply one watch item (a committed proposal found under the prefix "node/<node>", which also
 * matches other nodes whose names start with node) to s. Only these concern this node:
 *   Placement whose node is exactly node        -> capsule added (index = item's index);
 *   GangPlacement members whose node is node    -> each added, with the gang's name;
 *   Revocation REF_PLACEMENT of a capsule in s  -> removed;
 *   Revocation REF_GANG of a gang in s          -> every member of it removed.
 * Anything else is ORBIT_LEAF_ITEM_IGNORED. A capsule placed again replaces its entry.
 * Returns an orbit_leaf_item_t (>= 0), or
 * Errors: ORBIT_EINVAL with a reason in err (no proposal or commitment, a placement of this
 * node with an invalid capsule or gang id, or one that would exceed ORBIT_CAPSULES_MAX),
 * ORBIT_ENOMEM; s is then unchanged. */
int orbit_leaf_placed_apply(orbit_leaf_placed_set_t *s, const char *node,
                            const Orbit__Ledger__Committed *item, char *err, size_t errlen);

/* The module key "mission/module" of a capsule id "mission/module/index" (mission and module
 * plain names, index decimal digits without a leading zero unless "0") into out (size n).
 * Errors: ORBIT_EINVAL with a reason in err (id of another form, or too long for out). */
int orbit_leaf_capsule_module(const char *capsule, char *out, size_t n, char *err, size_t errlen);

/* A command as stored in ModuleSpec.command: a JSON array of 1..ORBIT_LEAF_ARGV_MAX strings,
 * the first not empty, none holding a NUL, ORBIT_LEAF_ARGV_BYTES_MAX bytes in all. *argv is a
 * new NULL-terminated array (free with orbit_leaf_argv_free).
 * Errors: ORBIT_EINVAL with a reason in err (*argv untouched), ORBIT_ENOMEM. */
int orbit_leaf_argv_parse(const char *json, char ***argv, char *err, size_t errlen);

/* The command of a module from the ledger's module/<mission>/<module> JSON ({"module",
 * "epoch", "spec": {"command": "<argv JSON>", ...}}), parsed as orbit_leaf_argv_parse does.
 * Errors: ORBIT_EINVAL with a reason in err (not JSON, no spec, no command, a bad command),
 * ORBIT_ENOMEM. */
int orbit_leaf_module_argv(const char *json, char ***argv, char *err, size_t errlen);

/* Copy of argv (NULL-terminated; NULL gives NULL). Returns NULL when out of memory. */
char **orbit_leaf_argv_dup(char *const *argv);
/* Free an argv from this module and set *argv NULL; NULL-safe. */
void orbit_leaf_argv_free(char ***argv);

/* One capsule the agent is to run: either argv (it can run) or a reason (it cannot: its
 * module is missing, its command is unusable, its id is not mission/module/index). */
typedef struct {
    char id[ORBIT_CAPSULE_ID_MAX];
    uint64_t index; /* its placement's ledger index: another index is another placement */
    orbit_leaf_capsule_res_t res;
    char **argv;                           /* NULL-terminated, owned; NULL when reason is set */
    char reason[ORBIT_CAPSULE_REASON_MAX]; /* "" when argv is set */
} orbit_leaf_want_t;

/* The whole desired set, sorted by id, ids unique. Caller-owned: init / close. */
typedef struct {
    orbit_leaf_want_t *v;
    size_t n;
} orbit_leaf_wants_t;

void orbit_leaf_wants_init(orbit_leaf_wants_t *w);
/* Free every argv and the array, zero w; NULL-safe. */
void orbit_leaf_wants_close(orbit_leaf_wants_t *w);
/* The entry for id, or NULL. */
const orbit_leaf_want_t *orbit_leaf_wants_find(const orbit_leaf_wants_t *w, const char *id);

/* Append a copy of want (argv copied) keeping w sorted; a want with the same id is replaced.
 * Errors: ORBIT_EINVAL (id invalid, or neither/both of argv and reason), ORBIT_ENOMEM (w
 * unchanged). */
int orbit_leaf_wants_put(orbit_leaf_wants_t *w, const orbit_leaf_want_t *want);

/* True when a and b name the same capsules with the same indexes, envelopes and reasons
 * (argv is not compared: one placement index has one command). */
bool orbit_leaf_wants_same(const orbit_leaf_wants_t *a, const orbit_leaf_wants_t *b);

/* The desired set as a message for the actor pipe: "WANTS", then six frames per capsule: id,
 * index, cpu_m, mem (decimal), reason, argv (each argument followed by a NUL; empty with a
 * reason). Returns NULL when out of memory. */
zmsg_t *orbit_leaf_wants_encode(const orbit_leaf_wants_t *w);

/* Decode such a message (not destroyed here) into out (initialised here; close it whatever
 * the result).
 * Errors: ORBIT_EINVAL with a reason in err (not "WANTS", a frame count that is not 1 + 6k,
 * more than ORBIT_CAPSULES_MAX capsules, an invalid or repeated id, a number that is not
 * decimal, neither or both of reason and argv, an argv not ending in NUL or with an empty
 * first argument), ORBIT_ENOMEM. */
int orbit_leaf_wants_decode(zmsg_t *msg, orbit_leaf_wants_t *out, char *err, size_t errlen);

#endif
