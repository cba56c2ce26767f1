/* orbit_bench_stats: the arithmetic of benchmark reports — medians of
 * repeated runs and percentiles of bucketed histograms (such as the root's
 * row-age histogram, taken as the difference of two snapshots).
 *
 * Thread rules: none; pure functions. */
#ifndef ORBIT_BENCH_STATS_H
#define ORBIT_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Median of n values (n >= 1); sorts v in place. 0 when n is 0. */
double orbit_bench_median(double *v, size_t n);

/* Smallest and largest of n values (n >= 1). */
double orbit_bench_min(const double *v, size_t n);
double orbit_bench_max(const double *v, size_t n);

/* out[i] = after[i] - before[i] for i < n, clamped at 0 (a counter that went
 * backwards means the source restarted; its bucket contributes nothing).
 * Returns the sum of out. */
uint64_t orbit_bench_hist_diff(const uint64_t *after, const uint64_t *before, size_t n,
                               uint64_t *out);

/* The q-quantile (0 < q <= 1) of a histogram of n buckets of width bucket:
 * the upper edge of the first bucket at which the cumulative count reaches
 * q x total, so the true value is at most that. Returns -1 when the
 * histogram is empty, and the lower edge of the last bucket (marking "at
 * least") when the quantile falls into it, since it is open-ended. */
double orbit_bench_hist_quantile(const uint64_t *h, size_t n, double bucket, double q);

/* Parse "N[,N...]" given to --flag: at most cap counts, each in
 * min..max, into out; *n is how many. On failure err says, in one line,
 * what --flag must be. Errors: ORBIT_EINVAL. */
int orbit_bench_parse_counts(const char *s, const char *flag, uint32_t min, uint32_t max,
                             uint32_t *out, size_t cap, size_t *n, char *err, size_t errlen);

#endif
