/* leaf_procfs: procfs collectors (stat, meminfo, loadavg, PSI, boot id). */
#include "leaf_procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orbit_err.h"

#define BOOT_ID_MAX 64

struct orbit_leaf_procfs {
    char *root;
    bool have_prev; /* previous CPU counters are valid */
    uint64_t prev_busy, prev_total;
    int64_t last_used_m; /* repeated when two samples fall in the same jiffy */
    bool have_incarnation;
    uint64_t incarnation;
    char boot_id[BOOT_ID_MAX];
};

/* What one sample reads, committed to the state only when complete. */
typedef struct {
    uint64_t busy, total, btime;
    uint32_t ncpu;
    bool have_cpu, have_btime;
    int64_t mem_total, mem_used;
    uint32_t load[3];
    bool pressure_available;
    orbit_pressure_t pressure;
} sample_t;

orbit_leaf_procfs_t *orbit_leaf_procfs_new(const char *root)
{
    orbit_leaf_procfs_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->root = strdup(root ? root : "/proc");
    if (!p->root) {
        free(p);
        return NULL;
    }
    return p;
}

void orbit_leaf_procfs_destroy(orbit_leaf_procfs_t **pp)
{
    if (!pp || !*pp)
        return;
    free((*pp)->root);
    free(*pp);
    *pp = NULL;
}

/* ---------------------------------------------------------------- parsing */

int orbit_leaf_procfs_parse_centi(const char *text, const char **end, uint32_t *out)
{
    const char *p = text;
    uint64_t whole = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        whole = whole * 10 + (uint64_t)(*p - '0');
        if (whole > UINT32_MAX / 100)
            return ORBIT_EINVAL;
        p++;
        digits++;
    }
    uint64_t frac = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n < 2)
                frac = frac * 10 + (uint64_t)(*p - '0');
            n++;
            digits++;
            p++;
        }
        if (n == 1)
            frac *= 10;
    }
    if (!digits)
        return ORBIT_EINVAL;
    uint64_t v = whole * 100 + frac;
    if (v > UINT32_MAX)
        return ORBIT_EINVAL;
    *out = (uint32_t)v;
    if (end)
        *end = p;
    return ORBIT_OK;
}

/* Parse one unsigned decimal after optional blanks; false when none. */
static bool parse_u64(const char **pp, uint64_t *out)
{
    const char *p = *pp;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p < '0' || *p > '9')
        return false;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        p++;
    }
    *out = v;
    *pp = p;
    return true;
}

static void set_read_err(char *err, size_t errlen, const char *path, int e)
{
    if (err && errlen)
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
}

/* Read a small file whole into buf (NUL-terminated). Returns the length or
 * a negative errno. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t used = 0;
    while (used + 1 < size) {
        ssize_t n = read(fd, buf + used, size - 1 - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    return (ssize_t)used;
}

/* ------------------------------------------------------------------- stat */

static bool parse_cpu_line(const char *line, sample_t *s)
{
    /* user nice system idle iowait irq softirq steal; guest and guest_nice
     * are already counted in user and nice. */
    uint64_t v[8] = {0};
    const char *p = line + 3;
    int n = 0;
    while (n < 8 && parse_u64(&p, &v[n]))
        n++;
    if (n < 4)
        return false;
    uint64_t idle = v[3] + v[4];
    uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    s->busy = busy;
    s->total = busy + idle;
    s->have_cpu = true;
    return true;
}

static int read_stat(const char *path, sample_t *s, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        set_read_err(err, errlen, path, errno);
        return ORBIT_EIO;
    }
    /* Lines that do not fit (intr, softirq on big machines) are skipped in
     * pieces: only the start of a line is ever interpreted. */
    char line[512];
    bool at_start = true;
    while (fgets(line, sizeof line, f)) {
        bool whole = strchr(line, '\n') != NULL;
        if (at_start) {
            if (!strncmp(line, "cpu", 3)) {
                if (line[3] == ' ') {
                    if (!parse_cpu_line(line, s))
                        break;
                } else if (line[3] >= '0' && line[3] <= '9') {
                    s->ncpu++;
                }
            } else if (!strncmp(line, "btime ", 6)) {
                const char *p = line + 6;
                s->have_btime = parse_u64(&p, &s->btime);
            }
        }
        at_start = whole;
    }
    bool io_error = ferror(f);
    fclose(f);
    if (io_error || !s->have_cpu || !s->ncpu || !s->have_btime) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path,
                     io_error ? "read error" : "no cpu, cpuN or btime line");
        return ORBIT_EIO;
    }
    return ORBIT_OK;
}

/* ---------------------------------------------------------------- meminfo */

static int read_meminfo(const char *path, sample_t *s, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        set_read_err(err, errlen, path, errno);
        return ORBIT_EIO;
    }
    uint64_t total = 0, avail = 0, mfree = 0, buffers = 0, cached = 0;
    bool have_total = false, have_avail = false;
    char line[256];
    bool at_start = true;
    while (fgets(line, sizeof line, f)) {
        bool whole = strchr(line, '\n') != NULL;
        if (at_start) {
            const char *p = strchr(line, ':');
            if (p) {
                size_t klen = (size_t)(p - line);
                uint64_t v;
                p++;
                if (parse_u64(&p, &v)) {
#define KEY(k) (klen == sizeof(k) - 1 && !strncmp(line, k, klen))
                    if (KEY("MemTotal"))
                        total = v, have_total = true;
                    else if (KEY("MemAvailable"))
                        avail = v, have_avail = true;
                    else if (KEY("MemFree"))
                        mfree = v;
                    else if (KEY("Buffers"))
                        buffers = v;
                    else if (KEY("Cached"))
                        cached = v;
#undef KEY
                }
            }
        }
        at_start = whole;
    }
    fclose(f);
    if (!have_total) {
        if (err && errlen)
            snprintf(err, errlen, "%s: no MemTotal line", path);
        return ORBIT_EIO;
    }
    if (!have_avail) /* kernels before 3.14: the classic estimate */
        avail = mfree + buffers + cached;
    if (avail > total)
        avail = total;
    /* kB -> bytes, clamped to what the wire accepts. */
    const uint64_t max_kb = (uint64_t)ORBIT_MEM_MAX / 1024;
    if (total > max_kb)
        total = max_kb;
    if (avail > total)
        avail = total;
    s->mem_total = (int64_t)(total * 1024);
    s->mem_used = (int64_t)((total - avail) * 1024);
    return ORBIT_OK;
}

/* ---------------------------------------------------------------- loadavg */

static int read_loadavg(const char *path, sample_t *s, char *err, size_t errlen)
{
    char buf[128];
    ssize_t n = read_small(path, buf, sizeof buf);
    if (n < 0) {
        set_read_err(err, errlen, path, (int)-n);
        return ORBIT_EIO;
    }
    const char *p = buf;
    for (int i = 0; i < 3; i++) {
        while (*p == ' ')
            p++;
        if (orbit_leaf_procfs_parse_centi(p, &p, &s->load[i]) != ORBIT_OK) {
            if (err && errlen)
                snprintf(err, errlen, "%s: malformed", path);
            return ORBIT_EIO;
        }
        if (s->load[i] > ORBIT_LOAD_MAX)
            s->load[i] = ORBIT_LOAD_MAX;
    }
    return ORBIT_OK;
}

/* --------------------------------------------------------------- pressure */

/* avg10 of the "some" or "full" line of a PSI file; false if absent. */
static bool psi_avg10(const char *text, const char *kind, uint32_t *out)
{
    size_t klen = strlen(kind);
    for (const char *line = text; line && *line;) {
        if (!strncmp(line, kind, klen) && line[klen] == ' ') {
            const char *a = strstr(line, "avg10=");
            const char *eol = strchr(line, '\n');
            if (!a || (eol && a > eol))
                return false;
            uint32_t v;
            if (orbit_leaf_procfs_parse_centi(a + 6, NULL, &v) != ORBIT_OK)
                return false;
            *out = v > ORBIT_PRESSURE_MAX ? ORBIT_PRESSURE_MAX : v;
            return true;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return false;
}

static void read_pressure(const char *root, sample_t *s)
{
    char path[PATH_MAX], buf[256];
    orbit_pressure_t pr = {0};
    bool ok = true;
    snprintf(path, sizeof path, "%s/pressure/cpu", root);
    ok = ok && read_small(path, buf, sizeof buf) > 0 && psi_avg10(buf, "some", &pr.cpu_some);
    snprintf(path, sizeof path, "%s/pressure/memory", root);
    ok = ok && read_small(path, buf, sizeof buf) > 0 && psi_avg10(buf, "some", &pr.mem_some) &&
         psi_avg10(buf, "full", &pr.mem_full);
    snprintf(path, sizeof path, "%s/pressure/io", root);
    ok = ok && read_small(path, buf, sizeof buf) > 0 && psi_avg10(buf, "some", &pr.io_some) &&
         psi_avg10(buf, "full", &pr.io_full);
    s->pressure_available = ok;
    if (ok)
        s->pressure = pr;
}

/* ------------------------------------------------------------ incarnation */

uint64_t orbit_leaf_procfs_incarnation(uint64_t btime, const char *boot_id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)(boot_id ? boot_id : ""); *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    uint16_t folded = (uint16_t)((h >> 16) ^ (h & 0xffffu));
    return (btime << 16) | folded;
}

static void read_boot_id(const char *root, char *out, size_t n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sys/kernel/random/boot_id", root);
    ssize_t len = read_small(path, out, n);
    if (len < 0) {
        out[0] = '\0'; /* no boot id (odd container): btime alone orders boots */
        return;
    }
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
}

/* ----------------------------------------------------------------- sample */

/* busy/total x capacity, without overflowing 64 bits. */
static int64_t cpu_used_m(uint64_t dbusy, uint64_t dtotal, uint32_t ncpu)
{
    uint64_t cap = (uint64_t)ncpu * 1000;
    while (dbusy && dbusy > UINT64_MAX / cap) {
        dbusy >>= 1;
        dtotal >>= 1;
    }
    if (!dtotal)
        return 0;
    uint64_t used = dbusy * cap / dtotal;
    return (int64_t)(used > cap ? cap : used);
}

int orbit_leaf_procfs_sample(orbit_leaf_procfs_t *p, orbit_node_state_t *st, char *err,
                             size_t errlen)
{
    char path[PATH_MAX];
    sample_t s;
    memset(&s, 0, sizeof s);
    if (err && errlen)
        err[0] = '\0';

    snprintf(path, sizeof path, "%s/stat", p->root);
    int rc = read_stat(path, &s, err, errlen);
    if (rc != ORBIT_OK)
        return rc;
    snprintf(path, sizeof path, "%s/meminfo", p->root);
    rc = read_meminfo(path, &s, err, errlen);
    if (rc != ORBIT_OK)
        return rc;
    snprintf(path, sizeof path, "%s/loadavg", p->root);
    rc = read_loadavg(path, &s, err, errlen);
    if (rc != ORBIT_OK)
        return rc;
    read_pressure(p->root, &s);

    char boot_id[BOOT_ID_MAX];
    read_boot_id(p->root, boot_id, sizeof boot_id);

    /* Everything read: commit. */
    if (s.ncpu > ORBIT_CPU_MAX_M / 1000)
        s.ncpu = (uint32_t)(ORBIT_CPU_MAX_M / 1000);
    int64_t used = 0;
    if (p->have_prev && s.total >= p->prev_total && s.busy >= p->prev_busy) {
        uint64_t dtotal = s.total - p->prev_total;
        used = dtotal ? cpu_used_m(s.busy - p->prev_busy, dtotal, s.ncpu) : p->last_used_m;
    }
    /* Counters that went backwards (CPU hot-unplug) restart the rate. */
    p->have_prev = true;
    p->prev_busy = s.busy;
    p->prev_total = s.total;
    p->last_used_m = used;

    if (!p->have_incarnation || strcmp(boot_id, p->boot_id) != 0) {
        p->incarnation = orbit_leaf_procfs_incarnation(s.btime, boot_id);
        memcpy(p->boot_id, boot_id, sizeof boot_id);
        p->have_incarnation = true;
    }

    st->incarnation = p->incarnation;
    st->cpu_capacity_m = (int64_t)s.ncpu * 1000;
    st->cpu_used_m = used;
    st->mem_capacity = s.mem_total;
    st->mem_used = s.mem_used;
    st->load1 = s.load[0];
    st->load5 = s.load[1];
    st->load15 = s.load[2];
    st->pressure_available = s.pressure_available;
    if (s.pressure_available)
        st->pressure = s.pressure;
    else
        memset(&st->pressure, 0, sizeof st->pressure);
    return ORBIT_OK;
}
