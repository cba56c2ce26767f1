/* test_leaf_capsule: capsules as real child processes — exit codes, exec failures, stops with
 * and without escalation, no orphans, bad input, logs, and cgroup limits and OOM kills where
 * this machine offers cgroup v2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "leaf_capsule.h"
#include "orbit_err.h"

#define GRACE_MS 300
#define WAIT_MS  8000

typedef struct {
    orbit_leaf_capsules_t *r;
    char slice[64];
    char tmp[64];
} fixture_t;

/* Alive and not a zombie (an orphan reaped late by init still answers kill(pid, 0)). */
static int alive(pid_t pid)
{
    if (kill(pid, 0) != 0)
        return 0;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return !(rp && rp[1] == ' ' && rp[2] == 'Z');
}

static int gone_within(pid_t pid, int ms)
{
    for (int64_t end = zclock_mono() + ms; zclock_mono() < end; zclock_sleep(5))
        if (!alive(pid))
            return 1;
    return !alive(pid);
}

static orbit_leaf_capsules_t *make(fixture_t *f, uint32_t grace, const char *log_dir)
{
    orbit_leaf_capsules_cfg_t cfg = {
        .cgroup_parent = f->slice, .stop_grace_ms = grace, .log_dir = log_dir};
    orbit_leaf_capsules_t *r = orbit_leaf_capsules_new(&cfg);
    assert_non_null(r);
    return r;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->slice, sizeof f->slice, "orbit-test-%d.slice", (int)getpid());
    snprintf(f->tmp, sizeof f->tmp, "/tmp/test_leaf_capsule.XXXXXX");
    assert_non_null(mkdtemp(f->tmp));
    f->r = make(f, GRACE_MS, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_capsules_destroy(&f->r);
    orbit_leaf_capsules_destroy(&f->r); /* NULL-safe */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->tmp);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Poll until capsule id is in state want (or any terminal state when want is -1). */
static orbit_leaf_capsule_info_t wait_state(orbit_leaf_capsules_t *r, const char *id, int want)
{
    orbit_leaf_capsule_info_t in;
    for (int64_t end = zclock_mono() + WAIT_MS;; zclock_sleep(5)) {
        orbit_leaf_capsules_poll(r, zclock_mono());
        assert_int_equal(orbit_leaf_capsule_get(r, id, &in), ORBIT_OK);
        if ((int)in.state == want || (want < 0 && in.state >= ORBIT_LEAF_CAPSULE_EXITED))
            return in;
        if (zclock_mono() > end)
            fail_msg("%s: still %s (reason \"%s\"), wanted %s", id,
                     orbit_leaf_capsule_state_name(in.state), in.reason,
                     want < 0 ? "terminal" : orbit_leaf_capsule_state_name(want));
    }
}

/* Paired helpers: start must succeed / must be refused with ORBIT_EINVAL. */
#define START_OK(r, id, ...)                                                                       \
    do {                                                                                           \
        char *const argv_[] = {__VA_ARGS__, NULL};                                                 \
        char err_[256] = "";                                                                       \
        int rc_ =                                                                                  \
            orbit_leaf_capsule_start((r), (id), argv_, NULL, zclock_mono(), err_, sizeof err_);    \
        if (rc_ != ORBIT_OK)                                                                       \
            fail_msg("start %s: %s", (id), err_);                                                  \
    } while (0)
#define START_REFUSED(r, id, argv)                                                                 \
    do {                                                                                           \
        char err_[256] = "";                                                                       \
        assert_int_equal(                                                                          \
            orbit_leaf_capsule_start((r), (id), (argv), NULL, zclock_mono(), err_, sizeof err_),   \
            ORBIT_EINVAL);                                                                         \
        assert_true(err_[0] != '\0');                                                              \
    } while (0)

static void stop_sleep(void **state)
{
    fixture_t *f = *state;
    START_OK(f->r, "m/web/0", "sleep", "30");
    orbit_leaf_capsule_info_t in = wait_state(f->r, "m/web/0", ORBIT_LEAF_CAPSULE_RUNNING);
    pid_t pid = in.pid;
    assert_true(pid > 0);
    assert_true(alive(pid));
    assert_int_equal(orbit_leaf_capsule_stop(f->r, "m/web/0", zclock_mono()), ORBIT_OK);
    assert_int_equal(orbit_leaf_capsule_stop(f->r, "m/web/0", zclock_mono()), ORBIT_OK); /* again */
    in = wait_state(f->r, "m/web/0", ORBIT_LEAF_CAPSULE_STOPPED);
    assert_int_equal(in.pid, 0);
    assert_true(in.ended_ms >= in.started_ms);
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    orbit_leaf_capsules_stats_t st;
    orbit_leaf_capsules_stats(f->r, &st);
    assert_int_equal(st.started, 1);
    assert_int_equal(st.stopped, 1);
    assert_int_equal(st.kill_escalations, 0); /* sleep dies of SIGTERM */
    /* A terminal capsule cannot be stopped again. */
    assert_int_equal(orbit_leaf_capsule_stop(f->r, "m/web/0", zclock_mono()), ORBIT_EINVAL);
    assert_int_equal(orbit_leaf_capsule_stop(f->r, "nope", zclock_mono()), ORBIT_ENOTFOUND);
}

static void exit_codes(void **state)
{
    fixture_t *f = *state;
    START_OK(f->r, "t", "true");
    START_OK(f->r, "f", "false");
    START_OK(f->r, "seven", "sh", "-c", "exit 7");
    orbit_leaf_capsule_info_t in = wait_state(f->r, "t", -1);
    assert_int_equal(in.state, ORBIT_LEAF_CAPSULE_EXITED);
    assert_int_equal(in.exit_code, 0);
    in = wait_state(f->r, "f", -1);
    assert_int_equal(in.state, ORBIT_LEAF_CAPSULE_EXITED);
    assert_int_equal(in.exit_code, 1);
    in = wait_state(f->r, "seven", -1);
    assert_int_equal(in.state, ORBIT_LEAF_CAPSULE_EXITED);
    assert_int_equal(in.exit_code, 7);
    assert_string_equal(in.reason, "");
    orbit_leaf_capsules_stats_t st;
    orbit_leaf_capsules_stats(f->r, &st);
    assert_int_equal(st.started, 3);
    assert_int_equal(st.exited, 3);
    assert_int_equal(st.failed, 0);
}

static void command_not_found(void **state)
{
    fixture_t *f = *state;
    START_OK(f->r, "ghost", "orbit-no-such-command-xyz", "--flag");
    orbit_leaf_capsule_info_t in = wait_state(f->r, "ghost", -1);
    assert_int_equal(in.state, ORBIT_LEAF_CAPSULE_FAILED);
    assert_non_null(strstr(in.reason, "not found"));
    assert_non_null(strstr(in.reason, "orbit-no-such-command-xyz"));
    /* Not executable: a failure with its own reason, not EXITED(126). */
    char path[128];
    snprintf(path, sizeof path, "%s/noexec", f->tmp);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("#!/bin/sh\nexit 0\n", fp);
    fclose(fp);
    chmod(path, 0644);
    START_OK(f->r, "noexec", path);
    in = wait_state(f->r, "noexec", -1);
    assert_int_equal(in.state, ORBIT_LEAF_CAPSULE_FAILED);
    assert_non_null(strstr(in.reason, "permission denied"));
    orbit_leaf_capsules_stats_t st;
    orbit_leaf_capsules_stats(f->r, &st);
    assert_int_equal(st.failed, 2);
    assert_int_equal(st.exited, 0);
}

static void killed_by_signal(void **state)
{
    fixture_t *f = *state;
    START_OK(f->r, "suicide", "sh", "-c", "kill -9 $$");
    orbit_leaf_capsule_info_t in = wait_state(f->r, "suicide", -1);
    assert_int_equal(in.state, ORBIT_LEAF_CAPSULE_FAILED);
    assert_non_null(strstr(in.reason, "signal 9"));
}

static void term_ignored_escalates(void **state)
{
    fixture_t *f = *state;
    START_OK(f->r, "stubborn", "sh", "-c", "trap '' TERM; sleep 30");
    orbit_leaf_capsule_info_t in = wait_state(f->r, "stubborn", ORBIT_LEAF_CAPSULE_RUNNING);
    pid_t pid = in.pid;
    /* Let sh install its trap before asking it to stop. */
    for (int64_t end = zclock_mono() + 200; zclock_mono() < end; zclock_sleep(5))
        orbit_leaf_capsules_poll(f->r, zclock_mono());
    int64_t t0 = zclock_mono();
    assert_int_equal(orbit_leaf_capsule_stop(f->r, "stubborn", t0), ORBIT_OK);
    in = wait_state(f->r, "stubborn", -1);
    assert_int_equal(in.state, ORBIT_LEAF_CAPSULE_STOPPED);
    assert_true(zclock_mono() - t0 >= GRACE_MS);
    assert_non_null(strstr(in.reason, "SIGKILL"));
    assert_true(gone_within(pid, 1000));
    orbit_leaf_capsules_stats_t st;
    orbit_leaf_capsules_stats(f->r, &st);
    assert_int_equal(st.kill_escalations, 1);
    assert_int_equal(st.stopped, 1);
}

/* A capsule's processes end with it: a background child left by its shell is killed. */
static void group_ends_with_capsule(void **state)
{
    fixture_t *f = *state;
    char script[512], pidfile[128];
    snprintf(pidfile, sizeof pidfile, "%s/bg.pid", f->tmp);
    snprintf(script, sizeof script, "sleep 30 & echo $! > %s.tmp; mv %s.tmp %s; exit 3", pidfile,
             pidfile, pidfile);
    START_OK(f->r, "leaver", "sh", "-c", script);
    orbit_leaf_capsule_info_t in = wait_state(f->r, "leaver", -1);
    assert_int_equal(in.state, ORBIT_LEAF_CAPSULE_EXITED);
    assert_int_equal(in.exit_code, 3);
    FILE *fp = fopen(pidfile, "r");
    assert_non_null(fp);
    int bg = 0;
    assert_int_equal(fscanf(fp, "%d", &bg), 1);
    fclose(fp);
    assert_true(bg > 0);
    assert_true(gone_within(bg, 2000));
}

static void destroy_kills_survivors(void **state)
{
    fixture_t *f = *state;
    START_OK(f->r, "a", "sleep", "30");
    START_OK(f->r, "b", "sh", "-c", "trap '' TERM; sleep 30");
    orbit_leaf_capsule_info_t a = wait_state(f->r, "a", ORBIT_LEAF_CAPSULE_RUNNING);
    orbit_leaf_capsule_info_t b = wait_state(f->r, "b", ORBIT_LEAF_CAPSULE_RUNNING);
    for (int64_t end = zclock_mono() + 200; zclock_mono() < end; zclock_sleep(5))
        orbit_leaf_capsules_poll(f->r, zclock_mono());
    int64_t t0 = zclock_mono();
    orbit_leaf_capsules_destroy(&f->r);
    assert_null(f->r);
    assert_true(zclock_mono() - t0 < GRACE_MS + 2000);
    assert_false(alive(a.pid));
    assert_false(alive(b.pid));
    assert_int_equal(kill(a.pid, 0), -1); /* reaped, not zombies */
    assert_int_equal(kill(b.pid, 0), -1);
}

static void bad_input(void **state)
{
    fixture_t *f = *state;
    char *const sleep_argv[] = {"sleep", "30", NULL};
    char *const empty_argv[] = {NULL};
    char *const blank_argv[] = {"", NULL};
    START_OK(f->r, "dup", "sleep", "30");
    START_REFUSED(f->r, "dup", sleep_argv);
    START_REFUSED(f->r, "x", empty_argv);
    START_REFUSED(f->r, "x", blank_argv);
    START_REFUSED(f->r, "x", NULL);
    START_REFUSED(f->r, "", sleep_argv);
    START_REFUSED(f->r, NULL, sleep_argv);
    START_REFUSED(f->r, "a b", sleep_argv);
    START_REFUSED(f->r, "a;rm", sleep_argv);
    START_REFUSED(f->r, "caf\xc3\xa9", sleep_argv);
    char longid[ORBIT_LEAF_CAPSULE_ID_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    START_REFUSED(f->r, longid, sleep_argv);
    longid[ORBIT_LEAF_CAPSULE_ID_MAX] = '\0'; /* exactly the maximum is fine */
    START_OK(f->r, longid, "true");
    wait_state(f->r, longid, -1);

    orbit_leaf_capsules_stats_t st;
    orbit_leaf_capsules_stats(f->r, &st);
    assert_int_equal(st.rejected, 10);
    assert_int_equal(st.started, 2);
    assert_int_equal(orbit_leaf_capsules_foreach(f->r, NULL, NULL), 2);
    orbit_leaf_capsule_info_t in;
    assert_int_equal(orbit_leaf_capsule_get(f->r, "x", &in), ORBIT_ENOTFOUND);
}

static void restart_and_forget(void **state)
{
    fixture_t *f = *state;
    START_OK(f->r, "m/job/1", "sh", "-c", "exit 2");
    orbit_leaf_capsule_info_t in = wait_state(f->r, "m/job/1", -1);
    assert_int_equal(in.exit_code, 2);
    /* A terminal capsule is replaced by a new start with its id. */
    START_OK(f->r, "m/job/1", "sleep", "30");
    in = wait_state(f->r, "m/job/1", ORBIT_LEAF_CAPSULE_RUNNING);
    assert_int_equal(in.exit_code, 0);
    assert_int_equal(orbit_leaf_capsules_foreach(f->r, NULL, NULL), 1);
    assert_int_equal(orbit_leaf_capsule_forget(f->r, "m/job/1"), ORBIT_EAGAIN);
    assert_int_equal(orbit_leaf_capsule_stop(f->r, "m/job/1", zclock_mono()), ORBIT_OK);
    wait_state(f->r, "m/job/1", ORBIT_LEAF_CAPSULE_STOPPED);
    assert_int_equal(orbit_leaf_capsule_forget(f->r, "m/job/1"), ORBIT_OK);
    assert_int_equal(orbit_leaf_capsule_get(f->r, "m/job/1", &in), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_leaf_capsule_forget(f->r, "m/job/1"), ORBIT_ENOTFOUND);
    assert_int_equal(orbit_leaf_capsules_foreach(f->r, NULL, NULL), 0);
}

typedef struct {
    int n, running, exited;
    char ids[4][32];
} seen_t;

static void see(const orbit_leaf_capsule_info_t *in, void *arg)
{
    seen_t *s = arg;
    if (s->n < 4)
        snprintf(s->ids[s->n], sizeof s->ids[0], "%s", in->id);
    s->n++;
    s->running += in->state == ORBIT_LEAF_CAPSULE_RUNNING;
    s->exited += in->state == ORBIT_LEAF_CAPSULE_EXITED;
}

static void foreach_in_start_order(void **state)
{
    fixture_t *f = *state;
    START_OK(f->r, "m/a/0", "sleep", "30");
    START_OK(f->r, "m/a/1", "true");
    START_OK(f->r, "m/b/0", "sleep", "30");
    wait_state(f->r, "m/a/0", ORBIT_LEAF_CAPSULE_RUNNING);
    wait_state(f->r, "m/a/1", ORBIT_LEAF_CAPSULE_EXITED);
    wait_state(f->r, "m/b/0", ORBIT_LEAF_CAPSULE_RUNNING);
    seen_t s = {0};
    assert_int_equal(orbit_leaf_capsules_foreach(f->r, see, &s), 3);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.running, 2);
    assert_int_equal(s.exited, 1);
    assert_string_equal(s.ids[0], "m/a/0");
    assert_string_equal(s.ids[1], "m/a/1");
    assert_string_equal(s.ids[2], "m/b/0");
    assert_string_equal(orbit_leaf_capsule_state_name(ORBIT_LEAF_CAPSULE_OOM_KILLED), "oom_killed");
    assert_string_equal(orbit_leaf_capsule_state_name((orbit_leaf_capsule_state_t)99), "?");
}

static void logs_and_env(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_capsules_destroy(&f->r);
    f->r = make(f, GRACE_MS, f->tmp);
    START_OK(f->r, "m/log/0", "sh", "-c", "echo out-$ORBIT_CAPSULE_ID; echo err >&2; cat");
    orbit_leaf_capsule_info_t in = wait_state(f->r, "m/log/0", -1); /* cat sees /dev/null */
    assert_int_equal(in.state, ORBIT_LEAF_CAPSULE_EXITED);
    assert_int_equal(in.exit_code, 0);
    char path[128], buf[256] = "";
    snprintf(path, sizeof path, "%s/m+log+0.log", f->tmp);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_string_equal(buf, "out-m/log/0\nerr\n");

    /* An unwritable log directory refuses the start; nothing runs. */
    orbit_leaf_capsules_destroy(&f->r);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/missing", f->tmp);
    f->r = make(f, GRACE_MS, missing);
    char *const argv[] = {"true", NULL};
    char err[256] = "";
    assert_int_equal(
        orbit_leaf_capsule_start(f->r, "x", argv, NULL, zclock_mono(), err, sizeof err), ORBIT_EIO);
    assert_non_null(strstr(err, "missing"));
    assert_int_equal(orbit_leaf_capsules_foreach(f->r, NULL, NULL), 0);
}

static void cgroup_decision(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_capsules_stats_t st;
    orbit_leaf_capsules_stats(f->r, &st);
    assert_true(st.cgroups_reason[0] != '\0');
    print_message("cgroups %s: %s\n", st.cgroups ? "on" : "off", st.cgroups_reason);
    orbit_leaf_capsules_cfg_t cfg = {.no_cgroups = true};
    orbit_leaf_capsules_t *plain = orbit_leaf_capsules_new(&cfg);
    assert_non_null(plain);
    orbit_leaf_capsules_stats(plain, &st);
    assert_false(st.cgroups);
    assert_string_equal(st.cgroups_reason, "disabled by configuration");
    orbit_leaf_capsules_destroy(&plain);
    /* A parent that is not in a cgroup filesystem: off with a reason, starts still work. */
    char dir[128];
    snprintf(dir, sizeof dir, "%s/notcg", f->tmp);
    cfg = (orbit_leaf_capsules_cfg_t){.cgroup_parent = dir};
    plain = orbit_leaf_capsules_new(&cfg);
    assert_non_null(plain);
    orbit_leaf_capsules_stats(plain, &st);
    assert_false(st.cgroups);
    assert_non_null(strstr(st.cgroups_reason, "not a cgroup v2 directory"));
    struct stat sb;
    assert_int_equal(stat(dir, &sb), -1); /* the directory it made is gone again */
    START_OK(plain, "p", "true");
    orbit_leaf_capsule_info_t in = wait_state(plain, "p", -1);
    assert_int_equal(in.state, ORBIT_LEAF_CAPSULE_EXITED);
    assert_false(in.cgroup);
    orbit_leaf_capsules_destroy(&plain);
}

/* A parent that passes the probe but whose capsule cgroups cannot be configured (a plain
 * directory dressed as one): the capsule still runs, without a cgroup, and it is counted. */
static void cgroup_setup_failure_runs_plain(void **state)
{
    fixture_t *f = *state;
    char dir[128], path[192];
    snprintf(dir, sizeof dir, "%s/fakecg", f->tmp);
    assert_int_equal(mkdir(dir, 0755), 0);
    const char *files[] = {"cgroup.controllers", "cgroup.subtree_control"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(i == 0 ? "cpu memory pids\n" : "", fp);
        fclose(fp);
    }
    orbit_leaf_capsules_cfg_t cfg = {.cgroup_parent = dir, .stop_grace_ms = GRACE_MS};
    orbit_leaf_capsules_t *r = orbit_leaf_capsules_new(&cfg);
    assert_non_null(r);
    orbit_leaf_capsules_stats_t st;
    orbit_leaf_capsules_stats(r, &st);
    assert_true(st.cgroups);
    assert_string_equal(st.cgroups_reason, dir);
    char *const argv[] = {"sh", "-c", "exit 5", NULL};
    orbit_leaf_capsule_res_t res = {.cpu_m = 250, .mem = 1u << 30};
    char err[256] = "";
    assert_int_equal(
        orbit_leaf_capsule_start(r, "m/x/0", argv, &res, zclock_mono(), err, sizeof err), ORBIT_OK);
    orbit_leaf_capsule_info_t in = wait_state(r, "m/x/0", -1);
    assert_int_equal(in.state, ORBIT_LEAF_CAPSULE_EXITED);
    assert_int_equal(in.exit_code, 5);
    assert_false(in.cgroup);
    assert_int_equal(in.res.mem, 1u << 30);
    orbit_leaf_capsules_stats(r, &st);
    assert_int_equal(st.cgroup_errors, 1);
    struct stat sb;
    snprintf(path, sizeof path, "%s/cap-m+x+0", dir);
    assert_int_equal(stat(path, &sb), -1); /* the half-made cgroup was removed */
    orbit_leaf_capsules_destroy(&r);
    assert_int_equal(stat(dir, &sb), 0); /* not created by the runner: left alone */
}

static int skip_without_cgroups(fixture_t *f, char *parent, size_t size)
{
    orbit_leaf_capsules_stats_t st;
    orbit_leaf_capsules_stats(f->r, &st);
    if (!st.cgroups) {
        print_message("skipped: no writable cgroup v2 here (%s)\n", st.cgroups_reason);
        return 1;
    }
    snprintf(parent, size, "%s", st.cgroups_reason);
    return 0;
}

static void cgroup_limits(void **state)
{
    fixture_t *f = *state;
    char parent[256], path[512], buf[128];
    if (skip_without_cgroups(f, parent, sizeof parent))
        skip();
    char *const argv[] = {"sleep", "30", NULL};
    orbit_leaf_capsule_res_t res = {.cpu_m = 500, .mem = 64u << 20};
    char err[256] = "";
    assert_int_equal(
        orbit_leaf_capsule_start(f->r, "m/lim/0", argv, &res, zclock_mono(), err, sizeof err),
        ORBIT_OK);
    orbit_leaf_capsule_info_t in = wait_state(f->r, "m/lim/0", ORBIT_LEAF_CAPSULE_RUNNING);
    assert_true(in.cgroup);
    snprintf(path, sizeof path, "%s/cap-m+lim+0/memory.max", parent);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof buf, fp));
    fclose(fp);
    assert_string_equal(buf, "67108864\n");
    snprintf(path, sizeof path, "%s/cap-m+lim+0/cgroup.procs", parent);
    fp = fopen(path, "r");
    assert_non_null(fp);
    int pid = 0;
    assert_int_equal(fscanf(fp, "%d", &pid), 1);
    fclose(fp);
    assert_int_equal(pid, in.pid);
    snprintf(path, sizeof path, "%s/cap-m+lim+0/cpu.max", parent);
    fp = fopen(path, "r");
    if (fp) { /* only when the cpu controller could be enabled */
        assert_non_null(fgets(buf, sizeof buf, fp));
        fclose(fp);
        assert_string_equal(buf, "50000 100000\n");
    }
    assert_int_equal(orbit_leaf_capsule_stop(f->r, "m/lim/0", zclock_mono()), ORBIT_OK);
    wait_state(f->r, "m/lim/0", ORBIT_LEAF_CAPSULE_STOPPED);
    snprintf(path, sizeof path, "%s/cap-m+lim+0", parent);
    struct stat sb;
    for (int64_t end = zclock_mono() + 2000; stat(path, &sb) == 0 && zclock_mono() < end;
         zclock_sleep(5))
        orbit_leaf_capsules_poll(f->r, zclock_mono());
    assert_int_equal(stat(path, &sb), -1); /* removed after the capsule ended */
}

static void oom_killed(void **state)
{
    fixture_t *f = *state;
    char parent[256];
    if (skip_without_cgroups(f, parent, sizeof parent))
        skip();
    char *const argv[] = {"sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo done",
                          NULL};
    orbit_leaf_capsule_res_t res = {.mem = 32u << 20};
    char err[256] = "";
    assert_int_equal(
        orbit_leaf_capsule_start(f->r, "hog", argv, &res, zclock_mono(), err, sizeof err),
        ORBIT_OK);
    orbit_leaf_capsule_info_t in = wait_state(f->r, "hog", -1);
    assert_int_equal(in.state, ORBIT_LEAF_CAPSULE_OOM_KILLED);
    assert_true(in.oom_kills > 0);
    assert_non_null(strstr(in.reason, "out of memory"));
    orbit_leaf_capsules_stats_t st;
    orbit_leaf_capsules_stats(f->r, &st);
    assert_int_equal(st.oom_killed, 1);
    assert_int_equal(st.failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(stop_sleep, setup, teardown),
        cmocka_unit_test_setup_teardown(exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(command_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_by_signal, setup, teardown),
        cmocka_unit_test_setup_teardown(term_ignored_escalates, setup, teardown),
        cmocka_unit_test_setup_teardown(group_ends_with_capsule, setup, teardown),
        cmocka_unit_test_setup_teardown(destroy_kills_survivors, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(restart_and_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(foreach_in_start_order, setup, teardown),
        cmocka_unit_test_setup_teardown(logs_and_env, setup, teardown),
        cmocka_unit_test_setup_teardown(cgroup_decision, setup, teardown),
        cmocka_unit_test_setup_teardown(cgroup_setup_failure_runs_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(cgroup_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(oom_killed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
