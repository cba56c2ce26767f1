/* orbit_bench_stats: medians, histogram quantiles, count lists. */
#include "orbit_bench_stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "orbit_err.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double orbit_bench_median(double *v, size_t n)
{
    if (!n)
        return 0.0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double orbit_bench_min(const double *v, size_t n)
{
    double m = v[0];
    for (size_t i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

double orbit_bench_max(const double *v, size_t n)
{
    double m = v[0];
    for (size_t i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

uint64_t orbit_bench_hist_diff(const uint64_t *after, const uint64_t *before, size_t n,
                               uint64_t *out)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = after[i] > before[i] ? after[i] - before[i] : 0;
        total += out[i];
    }
    return total;
}

double orbit_bench_hist_quantile(const uint64_t *h, size_t n, double bucket, double q)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += h[i];
    if (!total || !n)
        return -1.0;
    double want = q * (double)total;
    uint64_t cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += h[i];
        if ((double)cum >= want)
            return i + 1 == n ? (double)i * bucket : (double)(i + 1) * bucket;
    }
    return (double)(n - 1) * bucket;
}

int orbit_bench_parse_counts(const char *s, const char *flag, uint32_t min, uint32_t max,
                             uint32_t *out, size_t cap, size_t *n, char *err, size_t errlen)
{
    size_t k = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (errno || end == p || *p == '-' || v < min || v > max || (*end && *end != ',') ||
            (*end == ',' && !end[1]) || k == cap) {
            snprintf(err, errlen,
                     "--%s must be up to %zu comma-separated counts in %u..%u, not '%s'", flag, cap,
                     min, max, s);
            return ORBIT_EINVAL;
        }
        out[k++] = (uint32_t)v;
        p = *end ? end + 1 : end;
    }
    if (!k) {
        snprintf(err, errlen, "--%s needs at least one count", flag);
        return ORBIT_EINVAL;
    }
    *n = k;
    return ORBIT_OK;
}
