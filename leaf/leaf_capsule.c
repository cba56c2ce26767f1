/* leaf_capsule: runs capsules as child processes (in cgroup v2 where the machine allows it) and
 * tracks their health. */
#include "leaf_capsule.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "orbit_err.h"
#include "orbit_log.h"

extern char **environ;

/* What a child reports through its exec pipe before exec (the pipe is CLOEXEC, so a successful
 * exec closes it with nothing written). */
enum { STAGE_CGROUP = 1, STAGE_STDIO = 2, STAGE_EXEC = 3 };
typedef struct {
    int stage;
    int err;
} child_msg_t;

typedef struct {
    char id[ORBIT_LEAF_CAPSULE_ID_MAX + 1];
    char cmd[64]; /* argv[0], for reasons */
    orbit_leaf_capsule_state_t state;
    int exit_code;
    char reason[ORBIT_LEAF_CAPSULE_REASON_MAX];
    pid_t pid;        /* 0 once reaped */
    int pipe_fd;      /* exec report; -1 once read to its end */
    bool exec_failed; /* reason says why */
    bool stopping, escalated;
    int64_t stop_deadline;
    char *cg;        /* cgroup directory while it exists */
    bool in_cg;      /* the child joined it */
    bool cg_pending; /* ended; the directory is still to be removed */
    uint64_t oom_base, oom_kills;
    orbit_leaf_capsule_res_t res;
    int64_t started_ms, ended_ms;
} capsule_t;

struct orbit_leaf_capsules {
    bool cgroups, cpu_ok, parent_created;
    char *parent;
    char *log_dir;
    uint32_t grace_ms;
    int64_t last_now;
    capsule_t **v;
    size_t n, cap;
    orbit_leaf_capsules_stats_t st;
};

static const char *const state_names[] = {"starting", "running",    "exited",
                                          "failed",   "oom_killed", "stopped"};

const char *orbit_leaf_capsule_state_name(orbit_leaf_capsule_state_t s)
{
    return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "?";
}

static bool terminal(const capsule_t *k)
{
    return k->state >= ORBIT_LEAF_CAPSULE_EXITED;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- small file helpers (cgroupfs files are short) ---- */

/* Write text to path in one write(2); returns 0 or -errno. */
static int put_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    int rc = w == (ssize_t)len ? 0 : (w < 0 ? -errno : -EIO);
    close(fd);
    return rc;
}

/* Read up to size-1 bytes of path into buf (NUL-terminated, trailing newline kept); returns the
 * length or -errno. */
static ssize_t get_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    return (ssize_t)n;
}

/* Whether the space-separated list contains word. */
static bool has_word(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += wl) {
        bool start = p == list || p[-1] == ' ' || p[-1] == '\n';
        bool end = p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n';
        if (start && end)
            return true;
    }
    return false;
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
}

/* Move fd above the standard descriptors so the child's dup2 onto 0..2 cannot clobber it. */
static int high_fd(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int saved = errno;
    close(fd);
    errno = saved;
    return h;
}

/* ---- cgroup decision ---- */

/* The first cgroup2 mount point from /proc/self/mountinfo. */
static int find_cgroup2(char *out, size_t size)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -1;
    char line[4096];
    int rc = -1;
    while (rc != 0 && fgets(line, sizeof line, f)) {
        const char *sep = strstr(line, " - ");
        char mnt[PATH_MAX], fstype[32];
        if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
            sscanf(sep + 3, "%31s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
            continue;
        if (strlen(mnt) < size) {
            strcpy(out, mnt);
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

#define OFF(...)                                                                                   \
    do {                                                                                           \
        orbit_errf(c->st.cgroups_reason, sizeof c->st.cgroups_reason, __VA_ARGS__);                \
        goto off;                                                                                  \
    } while (0)

/* Decide once whether capsules get cgroups; on any failure they run plain and the reason says
 * why. Leaves nothing behind when off. */
static void probe_cgroups(orbit_leaf_capsules_t *c, const orbit_leaf_capsules_cfg_t *cfg)
{
    char path[PATH_MAX], mnt[PATH_MAX], ctl[512];
    const char *want = cfg && cfg->cgroup_parent ? cfg->cgroup_parent : "orbit.slice";
    if (cfg && cfg->no_cgroups)
        OFF("disabled by configuration");
    if (want[0] == '/') {
        if (snprintf(path, sizeof path, "%s", want) >= (int)sizeof path)
            OFF("cgroup parent path too long");
    } else {
        if (find_cgroup2(mnt, sizeof mnt) != 0)
            OFF("cgroup v2 is not mounted");
        if (snprintf(path, sizeof path, "%s/%s", mnt, want) >= (int)sizeof path)
            OFF("cgroup parent path too long");
    }
    c->parent = strdup(path);
    if (!c->parent)
        OFF("out of memory");
    if (mkdir(path, 0755) == 0)
        c->parent_created = true;
    else if (errno != EEXIST)
        OFF("cannot create %s: %s", path, strerror(errno));

    char f[PATH_MAX + 32];
    snprintf(f, sizeof f, "%s/cgroup.controllers", path);
    if (get_file(f, ctl, sizeof ctl) < 0)
        OFF("%s is not a cgroup v2 directory (%s)", path, strerror(errno));
    if (!has_word(ctl, "memory")) {
        /* The parent's own parent has to pass the controllers down. */
        char up[PATH_MAX + 32], offered[512] = "";
        snprintf(up, sizeof up, "%s", path);
        char *slash = strrchr(up, '/');
        if (slash && slash != up) {
            strcpy(slash, "/cgroup.subtree_control");
            put_file(up, "+memory");
            put_file(up, "+cpu");
            put_file(up, "+pids");
            strcpy(slash, "/cgroup.controllers");
            if (get_file(up, offered, sizeof offered) > 0)
                chomp(offered);
        }
        if (get_file(f, ctl, sizeof ctl) < 0 || !has_word(ctl, "memory"))
            OFF("no memory controller in cgroup v2 for %s (the level above offers \"%s\"; a "
                "hybrid host keeps it in cgroup v1)",
                path, offered);
    }
    snprintf(f, sizeof f, "%s/cgroup.subtree_control", path);
    int rc = put_file(f, "+memory");
    if (rc < 0)
        OFF("cannot enable +memory in %s: %s", f, strerror(-rc));
    c->cpu_ok = has_word(ctl, "cpu") && put_file(f, "+cpu") == 0;
    if (has_word(ctl, "pids"))
        put_file(f, "+pids"); /* nice to have; no limit is set from it yet */
    c->cgroups = true;
    orbit_errf(c->st.cgroups_reason, sizeof c->st.cgroups_reason, "%s", path);
    orbit_info("capsules: cgroups on, under %s", path);
    return;
off:
    if (cfg && cfg->no_cgroups)
        orbit_info("capsules: plain processes (%s)", c->st.cgroups_reason);
    else
        orbit_warn("capsules: plain processes, no cgroups: %s", c->st.cgroups_reason);
    if (c->parent_created)
        rmdir(c->parent);
    c->parent_created = false;
    free(c->parent);
    c->parent = NULL;
}

#undef OFF

/* memory.events oom_kill of cgroup dir (0 when unreadable). */
static uint64_t read_oom_kills(const char *dir)
{
    char f[PATH_MAX + 32], buf[1024];
    snprintf(f, sizeof f, "%s/memory.events", dir);
    if (get_file(f, buf, sizeof buf) < 0)
        return 0;
    for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, "oom_kill ", 9) == 0)
            return strtoull(p + 9, NULL, 10);
    }
    return 0;
}

/* SIGKILL every process in cgroup dir: cgroup.kill (Linux 5.14), else one by one. */
static void cg_kill(const char *dir)
{
    char f[PATH_MAX + 32], buf[8192];
    snprintf(f, sizeof f, "%s/cgroup.kill", dir);
    if (put_file(f, "1") == 0)
        return;
    snprintf(f, sizeof f, "%s/cgroup.procs", dir);
    if (get_file(f, buf, sizeof buf) < 0)
        return;
    for (char *p = buf, *end; *p; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 0)
            kill((pid_t)pid, SIGKILL);
    }
}

/* Kill what is left in k's cgroup and remove it; EBUSY (processes still exiting) leaves it
 * pending for a later poll. */
static void cg_remove(orbit_leaf_capsules_t *c, capsule_t *k)
{
    if (!k->cg)
        return;
    cg_kill(k->cg);
    if (rmdir(k->cg) == 0 || errno == ENOENT) {
        free(k->cg);
        k->cg = NULL;
        k->cg_pending = false;
    } else if (errno == EBUSY) {
        k->cg_pending = true;
    } else {
        c->st.cgroup_errors++;
        free(k->cg);
        k->cg = NULL;
        k->cg_pending = false;
    }
}

/* Create and configure k's cgroup; on failure the capsule runs without one (counted). Returns
 * an O_CLOEXEC fd on its cgroup.procs for the child, or -1. */
static int cg_create(orbit_leaf_capsules_t *c, capsule_t *k)
{
    char dir[PATH_MAX], f[PATH_MAX + 32], v[64];
    int n = snprintf(dir, sizeof dir, "%s/cap-", c->parent);
    if (n < 0 || (size_t)n + strlen(k->id) >= sizeof dir)
        goto fail;
    for (const char *s = k->id; *s; s++)
        dir[n++] = *s == '/' ? '+' : *s; /* '+' is not an id character: no collisions */
    dir[n] = '\0';
    if (mkdir(dir, 0755) != 0 && (errno != EEXIST || rmdir(dir) != 0 || mkdir(dir, 0755) != 0))
        goto fail; /* a leftover still holding processes is not ours to kill */
    k->cg = strdup(dir);
    if (!k->cg) {
        rmdir(dir);
        goto fail;
    }
    if (k->res.mem) {
        snprintf(f, sizeof f, "%s/memory.max", dir);
        snprintf(v, sizeof v, "%" PRIu64, k->res.mem);
        if (put_file(f, v) != 0)
            goto undo;
        snprintf(f, sizeof f, "%s/memory.swap.max", dir);
        put_file(f, "0"); /* absent without swap accounting: then there is nothing to bound */
    }
    snprintf(f, sizeof f, "%s/memory.oom.group", dir);
    put_file(f, "1"); /* an OOM kill takes the whole capsule, not one of its processes */
    if (k->res.cpu_m && c->cpu_ok) {
        uint64_t quota = (uint64_t)k->res.cpu_m * 100;
        snprintf(f, sizeof f, "%s/cpu.max", dir);
        snprintf(v, sizeof v, "%" PRIu64 " 100000", quota < 1000 ? 1000 : quota);
        if (put_file(f, v) != 0)
            goto undo;
    }
    k->oom_base = read_oom_kills(dir);
    snprintf(f, sizeof f, "%s/cgroup.procs", dir);
    int fd = high_fd(open(f, O_WRONLY | O_CLOEXEC));
    if (fd >= 0)
        return fd;
undo:
    rmdir(k->cg);
    free(k->cg);
    k->cg = NULL;
fail:
    c->st.cgroup_errors++;
    return -1;
}

/* ---- lifecycle ---- */

orbit_leaf_capsules_t *orbit_leaf_capsules_new(const orbit_leaf_capsules_cfg_t *cfg)
{
    orbit_leaf_capsules_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->grace_ms = cfg && cfg->stop_grace_ms ? cfg->stop_grace_ms : ORBIT_LEAF_CAPSULE_GRACE_MS;
    if (cfg && cfg->log_dir && !(c->log_dir = strdup(cfg->log_dir))) {
        free(c);
        return NULL;
    }
    probe_cgroups(c, cfg);
    c->st.cgroups = c->cgroups;
    return c;
}

static capsule_t *find(const orbit_leaf_capsules_t *c, const char *id, size_t *at)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->v[i]->id, id) == 0) {
            if (at)
                *at = i;
            return c->v[i];
        }
    }
    return NULL;
}

static void capsule_free(capsule_t *k)
{
    if (!k)
        return;
    if (k->pipe_fd >= 0)
        close(k->pipe_fd);
    free(k->cg);
    free(k);
}

/* Signal k's process group; before the child's setsid the group does not exist yet, so signal
 * the child itself (its signals are blocked until it reset their dispositions). */
static void signal_group(pid_t pid, int sig)
{
    if (kill(-pid, sig) != 0 && errno == ESRCH)
        kill(pid, sig);
}

/* Read what the child reported; EOF without a failure means exec succeeded. */
static void read_report(orbit_leaf_capsules_t *c, capsule_t *k)
{
    while (k->pipe_fd >= 0) {
        child_msg_t m;
        ssize_t r = read(k->pipe_fd, &m, sizeof m);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r == (ssize_t)sizeof m) {
            if (m.stage == STAGE_CGROUP) {
                k->in_cg = false;
                c->st.cgroup_errors++;
            } else if (m.stage == STAGE_STDIO) {
                k->exec_failed = true;
                snprintf(k->reason, sizeof k->reason, "cannot set up stdio: %s", strerror(m.err));
            } else {
                k->exec_failed = true;
                if (m.err == ENOENT)
                    snprintf(k->reason, sizeof k->reason, "command not found: %s", k->cmd);
                else if (m.err == EACCES)
                    snprintf(k->reason, sizeof k->reason, "permission denied: %s", k->cmd);
                else
                    snprintf(k->reason, sizeof k->reason, "cannot exec %s: %s", k->cmd,
                             strerror(m.err));
            }
            continue;
        }
        close(k->pipe_fd); /* EOF, a short read or an error: nothing more will come */
        k->pipe_fd = -1;
        if (!k->exec_failed && k->state == ORBIT_LEAF_CAPSULE_STARTING)
            k->state = ORBIT_LEAF_CAPSULE_RUNNING;
    }
}

/* k's process was reaped with status (-1: lost): settle its terminal state. */
static void finish(orbit_leaf_capsules_t *c, capsule_t *k, int status, int64_t now)
{
    read_report(c, k);
    if (k->cg && k->in_cg)
        k->oom_kills = read_oom_kills(k->cg);
    bool clean = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (k->exec_failed) {
        k->state = ORBIT_LEAF_CAPSULE_FAILED;
    } else if (k->oom_kills > k->oom_base && !clean) {
        k->state = ORBIT_LEAF_CAPSULE_OOM_KILLED;
        snprintf(k->reason, sizeof k->reason, "out of memory (memory.max %" PRIu64 ")", k->res.mem);
    } else if (k->stopping) {
        k->state = ORBIT_LEAF_CAPSULE_STOPPED;
        if (k->escalated)
            snprintf(k->reason, sizeof k->reason, "stopped (SIGKILL after %" PRIu32 " ms grace)",
                     c->grace_ms);
        else
            snprintf(k->reason, sizeof k->reason, "stopped");
    } else if (status == -1) {
        k->state = ORBIT_LEAF_CAPSULE_FAILED;
        snprintf(k->reason, sizeof k->reason, "exit status lost (reaped elsewhere)");
    } else if (WIFEXITED(status)) {
        k->state = ORBIT_LEAF_CAPSULE_EXITED;
        k->exit_code = WEXITSTATUS(status);
    } else {
        int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        k->state = ORBIT_LEAF_CAPSULE_FAILED;
        snprintf(k->reason, sizeof k->reason, "signal %d (%s)", sig, strsignal(sig));
    }
    switch (k->state) {
    case ORBIT_LEAF_CAPSULE_EXITED: c->st.exited++; break;
    case ORBIT_LEAF_CAPSULE_OOM_KILLED: c->st.oom_killed++; break;
    case ORBIT_LEAF_CAPSULE_STOPPED: c->st.stopped++; break;
    default: c->st.failed++; break;
    }
    k->pid = 0;
    k->ended_ms = now;
    if (k->pipe_fd >= 0) {
        close(k->pipe_fd);
        k->pipe_fd = -1;
    }
    cg_remove(c, k);
}

/* If k's process ended, kill the rest of its group and cgroup, reap it and settle its state.
 * The zombie is looked at first (WNOWAIT) so its pid still pins the process group id while the
 * group is killed. block waits for the end. Returns whether it was reaped. */
static bool try_reap(orbit_leaf_capsules_t *c, capsule_t *k, int64_t now, bool block)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int flags = WEXITED | WNOWAIT | (block ? 0 : WNOHANG);
    int rc;
    while ((rc = waitid(P_PID, (id_t)k->pid, &si, flags)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        if (errno != ECHILD)
            return false;
        finish(c, k, -1, now); /* someone else reaped it */
        return true;
    }
    if (si.si_pid != k->pid)
        return false;
    kill(-k->pid, SIGKILL);
    if (k->cg)
        cg_kill(k->cg);
    int status = 0;
    while (waitpid(k->pid, &status, 0) < 0 && errno == EINTR)
        ;
    finish(c, k, status, now);
    return true;
}

static void escalate(orbit_leaf_capsules_t *c, capsule_t *k)
{
    signal_group(k->pid, SIGKILL);
    if (k->cg)
        cg_kill(k->cg);
    k->escalated = true;
    c->st.kill_escalations++;
}

void orbit_leaf_capsules_destroy(orbit_leaf_capsules_t **pp)
{
    if (!pp || !*pp)
        return;
    orbit_leaf_capsules_t *c = *pp;
    for (size_t i = 0; i < c->n; i++) {
        capsule_t *k = c->v[i];
        if (k->pid && !k->stopping) {
            signal_group(k->pid, SIGTERM);
            k->stopping = true;
        }
    }
    int64_t deadline = mono_ms() + c->grace_ms;
    for (bool live = true; live;) {
        live = false;
        for (size_t i = 0; i < c->n; i++)
            if (c->v[i]->pid && !try_reap(c, c->v[i], c->last_now, false))
                live = true;
        if (!live)
            break;
        if (mono_ms() >= deadline) {
            for (size_t i = 0; i < c->n; i++) {
                capsule_t *k = c->v[i];
                if (k->pid) {
                    if (!k->escalated)
                        escalate(c, k);
                    try_reap(c, k, c->last_now, true);
                }
            }
            break;
        }
        sleep_ms(10);
    }
    /* Killed processes leave their cgroups a moment after they are reaped. */
    for (int tries = 0; tries < 100; tries++) {
        bool busy = false;
        for (size_t i = 0; i < c->n; i++) {
            if (c->v[i]->cg) {
                cg_remove(c, c->v[i]);
                busy |= c->v[i]->cg != NULL;
            }
        }
        if (!busy)
            break;
        sleep_ms(10);
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i]->cg)
            c->st.cgroup_errors++; /* left behind */
        capsule_free(c->v[i]);
    }
    if (c->parent_created)
        rmdir(c->parent);
    free(c->v);
    free(c->parent);
    free(c->log_dir);
    free(c);
    *pp = NULL;
}

/* ---- start ---- */

static bool valid_id(const char *id)
{
    size_t n = strnlen(id, ORBIT_LEAF_CAPSULE_ID_MAX + 1);
    if (n == 0 || n > ORBIT_LEAF_CAPSULE_ID_MAX)
        return false;
    for (const char *s = id; *s; s++) {
        char ch = *s;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' || ch == '/' ||
                  ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

static void child_report(int fd, int stage, int err)
{
    child_msg_t m = {stage, err};
    ssize_t w = write(fd, &m, sizeof m);
    (void)w;
}

/* In the child between fork and exec: async-signal-safe calls only. */
static void child_main(int rep, int procs_fd, int in_fd, int out_fd, char *const argv[],
                       char **envp)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &sa, NULL); /* fails harmlessly for KILL, STOP and libc's own */
    setsid();
    if (procs_fd >= 0 && write(procs_fd, "0", 1) != 1)
        child_report(rep, STAGE_CGROUP, errno);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) {
        child_report(rep, STAGE_STDIO, errno);
        _exit(127);
    }
#ifdef CLOSE_RANGE_CLOEXEC
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); /* the agent's own descriptors stay with it */
#endif
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvpe(argv[0], argv, envp);
    child_report(rep, STAGE_EXEC, errno);
    _exit(127);
}

/* environ plus ORBIT_CAPSULE_ID=<id>; the pointer array and *var are the caller's to free. */
static char **build_env(const char *id, char **var)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    size_t len = strlen("ORBIT_CAPSULE_ID=") + strlen(id) + 1;
    *var = malloc(len);
    if (!env || !*var) {
        free(env);
        free(*var);
        *var = NULL;
        return NULL;
    }
    snprintf(*var, len, "ORBIT_CAPSULE_ID=%s", id);
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "ORBIT_CAPSULE_ID=", 17) != 0)
            env[j++] = environ[i];
    env[j++] = *var;
    env[j] = NULL;
    return env;
}

static int open_output(const orbit_leaf_capsules_t *c, const char *id, char *err, size_t errlen)
{
    if (!c->log_dir)
        return high_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/", c->log_dir);
    if (n < 0 || (size_t)n + strlen(id) + 5 >= sizeof path) {
        orbit_errf(err, errlen, "log path too long for capsule %s", id);
        errno = ENAMETOOLONG;
        return -1;
    }
    for (const char *s = id; *s; s++)
        path[n++] = *s == '/' ? '+' : *s;
    strcpy(path + n, ".log");
    int fd = high_fd(open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (fd < 0)
        orbit_errf(err, errlen, "cannot open log %s: %s", path, strerror(errno));
    return fd;
}

int orbit_leaf_capsule_start(orbit_leaf_capsules_t *c, const char *id, char *const argv[],
                             const orbit_leaf_capsule_res_t *res, int64_t now_ms, char *err,
                             size_t errlen)
{
    size_t at = 0;
    capsule_t *old = NULL, *k = NULL;
    int in_fd = -1, out_fd = -1, procs_fd = -1, p[2] = {-1, -1};
    char **env = NULL, *var = NULL;
    int rc = ORBIT_EINVAL;

    c->last_now = now_ms;
    if (!id || !valid_id(id)) {
        orbit_errf(err, errlen, "invalid capsule id (1..%d of [A-Za-z0-9._:/-])",
                   ORBIT_LEAF_CAPSULE_ID_MAX);
        goto rejected;
    }
    if (!argv || !argv[0] || !argv[0][0]) {
        orbit_errf(err, errlen, "capsule %s: empty command", id);
        goto rejected;
    }
    old = find(c, id, &at);
    if (old && !terminal(old)) {
        orbit_errf(err, errlen, "capsule %s is already %s", id,
                   orbit_leaf_capsule_state_name(old->state));
        goto rejected;
    }
    if (!old && c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        capsule_t **nv = realloc(c->v, ncap * sizeof *nv);
        if (!nv)
            goto nomem;
        c->v = nv;
        c->cap = ncap;
    }
    k = calloc(1, sizeof *k);
    if (!k)
        goto nomem;
    k->pipe_fd = -1;
    strcpy(k->id, id);
    snprintf(k->cmd, sizeof k->cmd, "%s", argv[0]);
    if (res)
        k->res = *res;
    k->started_ms = now_ms;

    rc = ORBIT_EIO;
    out_fd = open_output(c, id, err, errlen);
    if (out_fd < 0)
        goto fail;
    in_fd = high_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (in_fd < 0 || pipe2(p, O_CLOEXEC) != 0) {
        orbit_errf(err, errlen, "capsule %s: %s", id, strerror(errno));
        goto fail;
    }
    p[0] = high_fd(p[0]);
    p[1] = high_fd(p[1]);
    if (p[0] < 0 || p[1] < 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) != 0) {
        orbit_errf(err, errlen, "capsule %s: %s", id, strerror(errno));
        goto fail;
    }
    env = build_env(id, &var);
    if (!env) {
        rc = ORBIT_ENOMEM;
        goto nomem_fail;
    }
    if (c->cgroups) {
        procs_fd = cg_create(c, k);
        k->in_cg = procs_fd >= 0;
    }

    /* Signals stay blocked in the child until it has reset their handlers, so a stop that
     * arrives before exec kills it instead of running the agent's handlers. */
    sigset_t all, prev;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &prev);
    pid_t pid = fork();
    if (pid == 0)
        child_main(p[1], procs_fd, in_fd, out_fd, argv, env);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    if (pid < 0) {
        orbit_errf(err, errlen, "capsule %s: fork: %s", id, strerror(fork_errno));
        if (k->cg) {
            rmdir(k->cg);
            free(k->cg);
            k->cg = NULL;
        }
        goto fail;
    }
    k->pid = pid;
    k->pipe_fd = p[0];
    p[0] = -1;
    c->st.started++;
    if (old) {
        capsule_free(old);
        c->v[at] = k;
    } else {
        c->v[c->n++] = k;
    }
    k = NULL;
    rc = ORBIT_OK;
    goto out;

rejected:
    c->st.rejected++;
    return rc;
nomem:
    rc = ORBIT_ENOMEM;
nomem_fail:
    orbit_errf(err, errlen, "out of memory");
fail:
    capsule_free(k);
out:
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
    if (procs_fd >= 0)
        close(procs_fd);
    free(env);
    free(var);
    return rc;
}

/* ---- running ---- */

int orbit_leaf_capsule_stop(orbit_leaf_capsules_t *c, const char *id, int64_t now_ms)
{
    capsule_t *k = id ? find(c, id, NULL) : NULL;
    if (!k)
        return ORBIT_ENOTFOUND;
    if (terminal(k))
        return ORBIT_EINVAL;
    if (k->stopping)
        return ORBIT_OK;
    k->stopping = true;
    k->stop_deadline = now_ms + c->grace_ms;
    signal_group(k->pid, SIGTERM);
    return ORBIT_OK;
}

void orbit_leaf_capsules_poll(orbit_leaf_capsules_t *c, int64_t now_ms)
{
    c->last_now = now_ms;
    for (size_t i = 0; i < c->n; i++) {
        capsule_t *k = c->v[i];
        if (!k->pid) {
            if (k->cg_pending)
                cg_remove(c, k);
            continue;
        }
        read_report(c, k);
        if (k->cg && k->in_cg)
            k->oom_kills = read_oom_kills(k->cg);
        if (try_reap(c, k, now_ms, false))
            continue;
        if (k->stopping && !k->escalated && now_ms >= k->stop_deadline)
            escalate(c, k);
    }
}

static void fill_info(const capsule_t *k, orbit_leaf_capsule_info_t *out)
{
    memset(out, 0, sizeof *out);
    out->id = k->id;
    out->state = k->state;
    out->exit_code = k->exit_code;
    out->reason = k->reason;
    out->pid = k->pid;
    out->cgroup = k->in_cg;
    out->oom_kills = k->oom_kills;
    out->res = k->res;
    out->started_ms = k->started_ms;
    out->ended_ms = k->ended_ms;
}

int orbit_leaf_capsule_get(const orbit_leaf_capsules_t *c, const char *id,
                           orbit_leaf_capsule_info_t *out)
{
    const capsule_t *k = id ? find(c, id, NULL) : NULL;
    if (!k)
        return ORBIT_ENOTFOUND;
    fill_info(k, out);
    return ORBIT_OK;
}

int orbit_leaf_capsule_forget(orbit_leaf_capsules_t *c, const char *id)
{
    size_t at = 0;
    capsule_t *k = id ? find(c, id, &at) : NULL;
    if (!k)
        return ORBIT_ENOTFOUND;
    if (!terminal(k))
        return ORBIT_EAGAIN;
    if (k->cg) {
        cg_remove(c, k);
        if (k->cg)
            c->st.cgroup_errors++; /* left behind */
    }
    capsule_free(k);
    memmove(&c->v[at], &c->v[at + 1], (c->n - at - 1) * sizeof *c->v);
    c->n--;
    return ORBIT_OK;
}

size_t orbit_leaf_capsules_foreach(const orbit_leaf_capsules_t *c, orbit_leaf_capsule_fn fn,
                                   void *arg)
{
    for (size_t i = 0; fn && i < c->n; i++) {
        orbit_leaf_capsule_info_t info;
        fill_info(c->v[i], &info);
        fn(&info, arg);
    }
    return c->n;
}

void orbit_leaf_capsules_stats(const orbit_leaf_capsules_t *c, orbit_leaf_capsules_stats_t *out)
{
    *out = c->st;
}
