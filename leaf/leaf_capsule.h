/* leaf_capsule: runs capsules as child processes (in cgroup v2 where the machine allows it) and
 * tracks their health. */
#ifndef ORBIT_LEAF_CAPSULE_H
#define ORBIT_LEAF_CAPSULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest capsule id (mission/module/index), in bytes. */
#define ORBIT_LEAF_CAPSULE_ID_MAX 200
/* Longest failure reason kept per capsule, including the NUL. */
#define ORBIT_LEAF_CAPSULE_REASON_MAX 160
/* Default stop grace when the configuration gives 0. */
#define ORBIT_LEAF_CAPSULE_GRACE_MS 5000

/* A capsule's health. STARTING until exec succeeded (or failed); the last four are terminal. */
typedef enum {
    ORBIT_LEAF_CAPSULE_STARTING = 0,
    ORBIT_LEAF_CAPSULE_RUNNING,
    ORBIT_LEAF_CAPSULE_EXITED,     /* exited by itself; exit_code holds the status */
    ORBIT_LEAF_CAPSULE_FAILED,     /* never ran (exec failed) or died of a signal; see reason */
    ORBIT_LEAF_CAPSULE_OOM_KILLED, /* its cgroup's memory.events oom_kill grew and it died */
    ORBIT_LEAF_CAPSULE_STOPPED,    /* ended after orbit_leaf_capsule_stop */
} orbit_leaf_capsule_state_t;

/* "starting", "running", "exited", "failed", "oom_killed", "stopped" ("?" for others). */
const char *orbit_leaf_capsule_state_name(orbit_leaf_capsule_state_t s);

/* The envelope a capsule runs in. 0 means unlimited. cpu_m is in thousandths of a CPU and becomes
 * cpu.max "<cpu_m*100> 100000"; mem is in bytes and becomes memory.max (with memory.swap.max 0,
 * so the envelope cannot be exceeded through swap). Both apply only when cgroups are on. */
typedef struct {
    uint32_t cpu_m;
    uint64_t mem;
} orbit_leaf_capsule_res_t;

typedef struct {
    /* Where capsule cgroups go. NULL means "orbit.slice"; a relative path is taken below the
     * first cgroup2 mount in /proc/self/mountinfo, an absolute one as is. Created when missing
     * (and then removed by destroy). */
    const char *cgroup_parent;
    bool no_cgroups;        /* run plain processes without probing */
    uint32_t stop_grace_ms; /* SIGTERM to SIGKILL; 0 means ORBIT_LEAF_CAPSULE_GRACE_MS */
    /* Each capsule's stdout and stderr are appended to <log_dir>/<id with '/' as '+'>.log;
     * NULL sends them to /dev/null. stdin is always /dev/null. */
    const char *log_dir;
} orbit_leaf_capsules_cfg_t;

/* One capsule as seen by orbit_leaf_capsule_get and orbit_leaf_capsules_foreach. The strings
 * belong to the runner and stay valid until the next call that changes the set (start, forget,
 * poll, destroy). */
typedef struct {
    const char *id;
    orbit_leaf_capsule_state_t state;
    int exit_code;      /* EXITED only */
    const char *reason; /* "" or why: "command not found: foo", "signal 9 (Killed)", ... */
    pid_t pid;          /* the process (and group) id; 0 once reaped */
    bool cgroup;        /* it runs (ran) in its own cgroup */
    uint64_t oom_kills; /* memory.events oom_kill of its cgroup (any process in it) */
    orbit_leaf_capsule_res_t res;
    int64_t started_ms, ended_ms; /* caller's clock; ended_ms 0 until terminal */
} orbit_leaf_capsule_info_t;

typedef void (*orbit_leaf_capsule_fn)(const orbit_leaf_capsule_info_t *info, void *arg);

typedef struct {
    uint64_t started;          /* processes forked */
    uint64_t exited;           /* -> EXITED */
    uint64_t failed;           /* -> FAILED */
    uint64_t oom_killed;       /* -> OOM_KILLED */
    uint64_t stopped;          /* -> STOPPED */
    uint64_t kill_escalations; /* SIGKILL sent because the grace ran out */
    uint64_t cgroup_errors;    /* a capsule ran without its cgroup, or one was left behind */
    uint64_t rejected;         /* starts refused for bad input (nothing started) */
    bool cgroups;              /* capsules get cgroups */
    char cgroups_reason[256];  /* why not (cgroups false), or the parent directory (true) */
} orbit_leaf_capsules_stats_t;

/* The capsules of one node. It reaps only the pids it forked (waitpid on each, never -1), so it
 * can share a process with other child-spawning code; it installs no signal handlers.
 *
 * Thread rules: one runner belongs to one thread. */
typedef struct orbit_leaf_capsules orbit_leaf_capsules_t;

/* New runner (cfg copied; NULL means all defaults). Decides once whether capsules get cgroups:
 * cgroup2 mounted, the parent created or present, its cgroup.controllers offering "memory"
 * (after trying "+memory +cpu +pids" in its own parent's cgroup.subtree_control) and
 * "+memory" (plus "+cpu", "+pids" where offered) enabled in the parent's cgroup.subtree_control.
 * When any step fails, capsules run as plain processes and stats say why; that is not an
 * error. Returns NULL when out of memory. */
orbit_leaf_capsules_t *orbit_leaf_capsules_new(const orbit_leaf_capsules_cfg_t *cfg);

/* Stop every capsule still running (SIGTERM to its process group, SIGKILL to the group and its
 * cgroup after the grace), wait for them, remove their cgroups and the parent if it created it,
 * then free the runner. Blocks up to the grace plus the time the kernel takes to reap.
 * NULL-safe; clears *pp. */
void orbit_leaf_capsules_destroy(orbit_leaf_capsules_t **pp);

/* Start capsule id running argv (argv[0] is looked up in PATH; argv copied, no reference kept)
 * in envelope res (NULL: unlimited). The child gets its own session and process group, stdin
 * /dev/null, output as configured, default signal dispositions, the runner's environment plus
 * ORBIT_CAPSULE_ID=<id>, and its cgroup (cgroups on: <parent>/cap-<id with '/' as '+'>) before
 * exec. The capsule is STARTING; poll makes it RUNNING once exec succeeded, or FAILED with a
 * reason when it did not. A terminal capsule with the same id is replaced. A cgroup that cannot
 * be set up never fails the start: the capsule runs without it and cgroup_errors counts it.
 *
 * On failure nothing is started, the set is unchanged and a one-line reason is written to err
 * (size errlen; may be NULL/0); bad input is counted in rejected.
 * Errors: ORBIT_EINVAL (id empty, over ORBIT_LEAF_CAPSULE_ID_MAX, or with a character outside
 * [A-Za-z0-9._:/-]; argv NULL or empty; id already starting or running), ORBIT_EIO (log file,
 * pipe or fork failed), ORBIT_ENOMEM. */
int orbit_leaf_capsule_start(orbit_leaf_capsules_t *c, const char *id, char *const argv[],
                             const orbit_leaf_capsule_res_t *res, int64_t now_ms, char *err,
                             size_t errlen);

/* Ask capsule id to stop: SIGTERM to its process group now; poll sends SIGKILL to the group
 * (and its cgroup) once now_ms + grace has passed. It becomes STOPPED when reaped (OOM_KILLED
 * if its cgroup saw an OOM kill first). Stopping a capsule already stopping is a no-op.
 * Errors: ORBIT_ENOTFOUND (no such capsule), ORBIT_EINVAL (already terminal). */
int orbit_leaf_capsule_stop(orbit_leaf_capsules_t *c, const char *id, int64_t now_ms);

/* Without blocking: see which STARTING capsules exec'd, reap those that ended (the rest of their
 * process group and cgroup is killed with them, so a capsule's processes end with it), read
 * each cgroup's oom_kill count, send SIGKILL to stops past their grace and remove the cgroups
 * of ended capsules. */
void orbit_leaf_capsules_poll(orbit_leaf_capsules_t *c, int64_t now_ms);

/* Copy capsule id's view into *out (strings as described at orbit_leaf_capsule_info_t).
 * Errors: ORBIT_ENOTFOUND (*out untouched). */
int orbit_leaf_capsule_get(const orbit_leaf_capsules_t *c, const char *id,
                           orbit_leaf_capsule_info_t *out);

/* Forget a terminal capsule (its record goes; its cgroup is already gone or retried by poll).
 * Errors: ORBIT_ENOTFOUND, ORBIT_EAGAIN (still starting or running: stop it first). */
int orbit_leaf_capsule_forget(orbit_leaf_capsules_t *c, const char *id);

/* Call fn for every capsule in start order. fn must not change the set. Returns the count. */
size_t orbit_leaf_capsules_foreach(const orbit_leaf_capsules_t *c, orbit_leaf_capsule_fn fn,
                                   void *arg);

/* Counters and the cgroup decision. */
void orbit_leaf_capsules_stats(const orbit_leaf_capsules_t *c, orbit_leaf_capsules_stats_t *out);

#endif
