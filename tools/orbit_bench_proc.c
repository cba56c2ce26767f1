/* orbit_bench_proc: starting, sampling and stopping benchmark children. */
#include "orbit_bench_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "orbit_err.h"

int64_t orbit_bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t orbit_bench_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void orbit_bench_sleep_ms(int64_t ms, volatile const int *stop)
{
    int64_t end = orbit_bench_now_ms() + ms;
    for (;;) {
        int64_t left = end - orbit_bench_now_ms();
        if (left <= 0 || (stop && *stop))
            return;
        if (left > 50)
            left = 50;
        struct timespec ts = {left / 1000, (long)(left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static bool executable(const char *path)
{
    return access(path, X_OK) == 0;
}

int orbit_bench_find_binary(const char *bindir, const char *subdir, const char *name, char *out,
                            size_t outlen)
{
    if (bindir) {
        snprintf(out, outlen, "%s/%s", bindir, name);
        if (executable(out))
            return ORBIT_OK;
        snprintf(out, outlen, "%s/%s/%s", bindir, subdir, name);
        return executable(out) ? ORBIT_OK : ORBIT_ENOTFOUND;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        snprintf(out, outlen, "%s", name);
        return ORBIT_ENOTFOUND;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(out, outlen, "%s/%s", self, name);
    if (executable(out))
        return ORBIT_OK;
    snprintf(out, outlen, "%s/../%s/%s", self, subdir, name);
    return executable(out) ? ORBIT_OK : ORBIT_ENOTFOUND;
}

int orbit_bench_free_ports(int *ports, size_t n)
{
    int *fds = calloc(n ? n : 1, sizeof *fds);
    if (!fds)
        return ORBIT_EIO;
    int rc = ORBIT_OK;
    size_t opened = 0;
    for (; opened < n; opened++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
            if (fd >= 0)
                close(fd);
            rc = ORBIT_EIO;
            break;
        }
        fds[opened] = fd;
        ports[opened] = ntohs(a.sin_port);
    }
    for (size_t i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    return rc;
}

int orbit_bench_proc_start(orbit_bench_proc_t *p, const char *name, char *const argv[],
                           const char *logdir)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->log, sizeof p->log, "%s/%s.log", logdir, name);
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return ORBIT_EIO;
    if (pid == 0) {
        /* Die with the benchmark, whatever happens to it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        int in = open("/dev/null", O_RDONLY);
        int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in >= 0)
            dup2(in, 0);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    p->pid = pid;
    return ORBIT_OK;
}

bool orbit_bench_proc_alive(orbit_bench_proc_t *p)
{
    if (p->pid <= 0)
        return false;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == 0)
        return true;
    if (r == p->pid)
        p->status = st;
    p->pid = 0;
    return false;
}

int orbit_bench_proc_stop_all(orbit_bench_proc_t *ps, size_t n, int grace_ms)
{
    for (size_t i = 0; i < n; i++)
        if (orbit_bench_proc_alive(&ps[i]))
            kill(ps[i].pid, SIGTERM);
    int64_t deadline = orbit_bench_now_ms() + grace_ms;
    for (;;) {
        size_t running = 0;
        for (size_t i = 0; i < n; i++)
            running += orbit_bench_proc_alive(&ps[i]);
        if (!running || orbit_bench_now_ms() >= deadline)
            break;
        orbit_bench_sleep_ms(20, NULL);
    }
    int killed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!orbit_bench_proc_alive(&ps[i]))
            continue;
        kill(ps[i].pid, SIGKILL);
        waitpid(ps[i].pid, &ps[i].status, 0);
        ps[i].pid = 0;
        killed++;
    }
    return killed;
}

void orbit_bench_procs_usage(const orbit_bench_proc_t *ps, size_t n, const int *role, int roles,
                             double *cpu, uint64_t *rss)
{
    for (int k = 0; k < roles; k++) {
        if (cpu)
            cpu[k] = 0;
        if (rss)
            rss[k] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        double c;
        uint64_t m;
        if (ps[i].pid > 0 && orbit_bench_proc_usage(ps[i].pid, &c, &m) == ORBIT_OK) {
            if (cpu)
                cpu[role[i]] += c;
            if (rss)
                rss[role[i]] += m;
        }
    }
}

int orbit_bench_proc_usage(pid_t pid, double *cpu_s, uint64_t *rss_bytes)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return ORBIT_ENOTFOUND;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name (which may hold spaces and ')'). */
    char *p = strrchr(buf, ')');
    if (!p)
        return ORBIT_ENOTFOUND;
    unsigned long utime = 0, stime = 0;
    long rss_pages = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime cutime cstime priority nice threads itrealvalue starttime
     * vsize rss */
    if (sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d "
               "%*u %*u %ld",
               &utime, &stime, &rss_pages) != 3)
        return ORBIT_ENOTFOUND;
    long hz = sysconf(_SC_CLK_TCK);
    *cpu_s = (double)(utime + stime) / (double)(hz > 0 ? hz : 100);
    *rss_bytes = (uint64_t)rss_pages * (uint64_t)sysconf(_SC_PAGESIZE);
    return ORBIT_OK;
}
