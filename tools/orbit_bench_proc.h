/* orbit_bench_proc: the child processes of a benchmark — finding the built
 * binaries, picking free loopback ports, starting children with their
 * output in log files, sampling their CPU time and RSS, and stopping them
 * within a bound (SIGTERM, then SIGKILL).
 *
 * Every child is started with PR_SET_PDEATHSIG = SIGTERM, so a benchmark
 * that dies does not leave daemons behind.
 *
 * Thread rules: the caller's thread; waitpid is only called for the pids
 * given. */
#ifndef ORBIT_BENCH_PROC_H
#define ORBIT_BENCH_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;     /* 0: not running (never started, or reaped) */
    int status;    /* wait status once reaped */
    char name[64]; /* e.g. "rack-3" */
    char log[512]; /* where its stdout and stderr go */
} orbit_bench_proc_t;

/* Find binary `name` for a benchmark: in bindir (when not NULL) itself or
 * its subdir; else next to the running executable, then in
 * <exe dir>/../<subdir> (the build tree's layout). Writes the path to out.
 * Errors: ORBIT_ENOTFOUND (out holds the last place tried). */
int orbit_bench_find_binary(const char *bindir, const char *subdir, const char *name, char *out,
                            size_t outlen);

/* Pick n distinct free TCP ports on 127.0.0.1 (ports are bound at once,
 * then all released, so they are distinct; a race with other processes
 * remains possible and shows up as a child that fails to bind).
 * Errors: ORBIT_EIO. */
int orbit_bench_free_ports(int *ports, size_t n);

/* Start argv[0] with argv (NULL-terminated), stdout and stderr appended to
 * <logdir>/<name>.log, stdin from /dev/null. p is filled in.
 * Errors: ORBIT_EIO (fork failed; p->pid stays 0). A failing exec shows up
 * as a child exiting with status 127. */
int orbit_bench_proc_start(orbit_bench_proc_t *p, const char *name, char *const argv[],
                           const char *logdir);

/* True while the child runs; reaps it (and records its status) otherwise. */
bool orbit_bench_proc_alive(orbit_bench_proc_t *p);

/* Send SIGTERM to every running child of ps, wait for them up to grace_ms,
 * then SIGKILL and reap the rest. Returns how many needed SIGKILL. */
int orbit_bench_proc_stop_all(orbit_bench_proc_t *ps, size_t n, int grace_ms);

/* CPU time (utime + stime, in seconds) and resident set (bytes) of a
 * running process from /proc.
 * Errors: ORBIT_ENOTFOUND (no such process). */
int orbit_bench_proc_usage(pid_t pid, double *cpu_s, uint64_t *rss_bytes);

/* CPU time and resident set summed by role over the n children of ps:
 * child i counts to role[i] (0..roles-1) in cpu[] and rss[] (either may be
 * NULL). A child not running counts nothing. */
void orbit_bench_procs_usage(const orbit_bench_proc_t *ps, size_t n, const int *role, int roles,
                             double *cpu, uint64_t *rss);

/* Monotonic clock in milliseconds. */
int64_t orbit_bench_now_ms(void);

/* CPU time of the calling thread in nanoseconds (user and system, page
 * faults included): an in-process figure that other processes do not
 * disturb. Reading it is a system call. */
int64_t orbit_bench_thread_cpu_ns(void);

/* Sleep ms milliseconds, or less when *stop becomes true (checked every
 * 50 ms; stop may be NULL). */
void orbit_bench_sleep_ms(int64_t ms, volatile const int *stop);

#endif
