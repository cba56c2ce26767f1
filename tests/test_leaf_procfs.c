/* test_leaf_procfs: the procfs collectors against a fake proc tree. */
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "leaf_procfs.h"
#include "orbit_err.h"

typedef struct {
    char root[64];
    orbit_leaf_procfs_t *p;
    orbit_node_state_t s;
} fixture_t;

static void put(fixture_t *f, const char *rel, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", f->root, rel);
    /* create parent directories */
    for (char *slash = strchr(path + strlen(f->root) + 1, '/'); slash;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0755);
        *slash = '/';
    }
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    fputs(text, out);
    fclose(out);
}

static void drop(fixture_t *f, const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", f->root, rel);
    unlink(path);
}

/* A /proc/stat with 4 CPUs and the given aggregate counters. */
static void put_stat(fixture_t *f, unsigned long long user, unsigned long long system,
                     unsigned long long idle, unsigned long long iowait, unsigned long long btime)
{
    char text[1024];
    snprintf(text, sizeof text,
             "cpu  %llu 0 %llu %llu %llu 0 0 0 0 0\n"
             "cpu0 1 0 1 1 0 0 0 0 0 0\ncpu1 1 0 1 1 0 0 0 0 0 0\n"
             "cpu2 1 0 1 1 0 0 0 0 0 0\ncpu3 1 0 1 1 0 0 0 0 0 0\n"
             "intr 12345 0 0 0\nctxt 999\nbtime %llu\nprocesses 42\n",
             user, system, idle, iowait, btime);
    put(f, "stat", text);
}

static void put_basics(fixture_t *f)
{
    put_stat(f, 100, 100, 800, 0, 1700000000);
    put(f, "meminfo",
        "MemTotal:       16384000 kB\nMemFree:         1000000 kB\n"
        "MemAvailable:    4096000 kB\nBuffers:          100000 kB\nCached:          2000000 kB\n");
    put(f, "loadavg", "1.25 0.50 12.05 3/200 12345\n");
    put(f, "sys/kernel/random/boot_id", "8f1e6c2a-1b1c-4c1e-9a55-0d3f5e1c2b3a\n");
}

static void put_pressure(fixture_t *f)
{
    put(f, "pressure/cpu",
        "some avg10=1.50 avg60=0.20 avg300=0.10 total=12345\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    put(f, "pressure/memory",
        "some avg10=12.34 avg60=1.00 avg300=0.50 total=1\n"
        "full avg10=5.00 avg60=1.00 avg300=0.50 total=1\n");
    put(f, "pressure/io",
        "some avg10=0.07 avg60=0.00 avg300=0.00 total=1\n"
        "full avg10=100.00 avg60=0.00 avg300=0.00 total=1\n");
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->root, sizeof f->root, "/tmp/orbit-procfs-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    put_basics(f);
    f->p = orbit_leaf_procfs_new(f->root);
    assert_non_null(f->p);
    orbit_node_state_init(&f->s);
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_procfs_destroy(&f->p);
    assert_null(f->p);
    orbit_node_state_close(&f->s);
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

#define SAMPLE_OK(f)                                                                               \
    do {                                                                                           \
        char err_[256];                                                                            \
        int rc_ = orbit_leaf_procfs_sample((f)->p, &(f)->s, err_, sizeof err_);                    \
        if (rc_ != ORBIT_OK)                                                                       \
            fail_msg("sample: %s", err_);                                                          \
    } while (0)

/* ------------------------------------------------------------------ tests */

static void cpu_first_sample_reports_zero_then_delta(void **state)
{
    fixture_t *f = *state;
    SAMPLE_OK(f);
    assert_int_equal(f->s.cpu_capacity_m, 4000);
    assert_int_equal(f->s.cpu_used_m, 0);
    /* +300 busy (user 200, system 100), +100 idle: 75 % of 4 CPUs. */
    put_stat(f, 300, 200, 850, 50, 1700000000);
    SAMPLE_OK(f);
    assert_int_equal(f->s.cpu_used_m, 3000);
    /* iowait counts as idle: +100 iowait only -> 0 used. */
    put_stat(f, 300, 200, 850, 150, 1700000000);
    SAMPLE_OK(f);
    assert_int_equal(f->s.cpu_used_m, 0);
}

static void cpu_counters_backwards_restart_the_rate(void **state)
{
    fixture_t *f = *state;
    put_stat(f, 1000, 1000, 1000, 0, 1700000000);
    SAMPLE_OK(f);
    put_stat(f, 10, 10, 10, 0, 1700000000);
    SAMPLE_OK(f);
    assert_int_equal(f->s.cpu_used_m, 0);
    put_stat(f, 20, 10, 20, 0, 1700000000); /* +10 busy of +20 */
    SAMPLE_OK(f);
    assert_int_equal(f->s.cpu_used_m, 2000);
}

static void cpu_same_jiffy_repeats_last_rate(void **state)
{
    fixture_t *f = *state;
    SAMPLE_OK(f);
    put_stat(f, 200, 100, 900, 0, 1700000000); /* +100 busy of +200 */
    SAMPLE_OK(f);
    assert_int_equal(f->s.cpu_used_m, 2000);
    SAMPLE_OK(f); /* nothing moved */
    assert_int_equal(f->s.cpu_used_m, 2000);
}

static void stat_long_lines_are_skipped_whole(void **state)
{
    fixture_t *f = *state;
    /* An intr line longer than the reader's buffer whose continuation
     * happens to start with "cpu7": it must not count as a CPU. */
    char text[4096];
    int n = snprintf(text, sizeof text, "cpu  1 0 1 8 0 0 0 0 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\nintr");
    int intr_start = n - 4;
    while (n - intr_start < 511)
        text[n++] = 'x';
    n += snprintf(text + n, sizeof text - (size_t)n, "cpu7 1 1 1 1 0 0 0 0\nbtime 1700000000\n");
    put(f, "stat", text);
    SAMPLE_OK(f);
    assert_int_equal(f->s.cpu_capacity_m, 1000);
}

static void meminfo_capacity_and_used(void **state)
{
    fixture_t *f = *state;
    SAMPLE_OK(f);
    assert_int_equal(f->s.mem_capacity, 16384000LL * 1024);
    assert_int_equal(f->s.mem_used, (16384000LL - 4096000LL) * 1024);
}

static void meminfo_without_available_uses_free_buffers_cached(void **state)
{
    fixture_t *f = *state;
    put(f, "meminfo",
        "MemTotal:       1000 kB\nMemFree:         100 kB\nBuffers:          50 kB\n"
        "Cached:          250 kB\n");
    SAMPLE_OK(f);
    assert_int_equal(f->s.mem_capacity, 1000 * 1024);
    assert_int_equal(f->s.mem_used, 600 * 1024);
}

static void loadavg_in_hundredths(void **state)
{
    fixture_t *f = *state;
    SAMPLE_OK(f);
    assert_int_equal(f->s.load1, 125);
    assert_int_equal(f->s.load5, 50);
    assert_int_equal(f->s.load15, 1205);
}

static void pressure_present(void **state)
{
    fixture_t *f = *state;
    put_pressure(f);
    SAMPLE_OK(f);
    assert_true(f->s.pressure_available);
    assert_int_equal(f->s.pressure.cpu_some, 150);
    assert_int_equal(f->s.pressure.mem_some, 1234);
    assert_int_equal(f->s.pressure.mem_full, 500);
    assert_int_equal(f->s.pressure.io_some, 7);
    assert_int_equal(f->s.pressure.io_full, 10000);
}

static void pressure_absent_is_not_an_error(void **state)
{
    fixture_t *f = *state;
    SAMPLE_OK(f);
    assert_false(f->s.pressure_available);
    /* partly present (no io file) counts as absent, and clears old values */
    put_pressure(f);
    SAMPLE_OK(f);
    assert_true(f->s.pressure_available);
    drop(f, "pressure/io");
    SAMPLE_OK(f);
    assert_false(f->s.pressure_available);
    assert_int_equal(f->s.pressure.mem_some, 0);
}

static void incarnation_orders_boots(void **state)
{
    (void)state;
    /* Whatever the boot ids hash to, a later btime wins. */
    assert_true(orbit_leaf_procfs_incarnation(1700000001, "aaaa") >
                orbit_leaf_procfs_incarnation(1700000000, "zzzz"));
    assert_true(orbit_leaf_procfs_incarnation(1700000001, "zzzz") >
                orbit_leaf_procfs_incarnation(1700000000, "aaaa"));
    assert_int_equal(orbit_leaf_procfs_incarnation(1700000000, "x") >> 16, 1700000000);
    assert_int_not_equal(orbit_leaf_procfs_incarnation(5, "boot-a"),
                         orbit_leaf_procfs_incarnation(5, "boot-b"));
    assert_int_equal(orbit_leaf_procfs_incarnation(5, "boot-a"),
                     orbit_leaf_procfs_incarnation(5, "boot-a"));
}

static void incarnation_follows_boot_id_not_btime_jitter(void **state)
{
    fixture_t *f = *state;
    SAMPLE_OK(f);
    uint64_t first = f->s.incarnation;
    assert_int_equal(
        first, orbit_leaf_procfs_incarnation(1700000000, "8f1e6c2a-1b1c-4c1e-9a55-0d3f5e1c2b3a"));
    /* btime read one second off (a known kernel wobble): same boot. */
    put_stat(f, 100, 100, 800, 0, 1700000001);
    SAMPLE_OK(f);
    assert_int_equal(f->s.incarnation, first);
    /* A new boot id is a new boot, and the later btime orders it after. */
    put_stat(f, 1, 1, 1, 0, 1700003600);
    put(f, "sys/kernel/random/boot_id", "0c4a7a0e-9d4b-4c55-8f3a-5b0f3b1b2c99\n");
    SAMPLE_OK(f);
    assert_int_not_equal(f->s.incarnation, first);
    assert_true(f->s.incarnation > first);
}

static void missing_stat_is_eio_and_leaves_state(void **state)
{
    fixture_t *f = *state;
    SAMPLE_OK(f);
    orbit_node_state_t before = f->s;
    drop(f, "stat");
    char err[256] = "";
    assert_int_equal(orbit_leaf_procfs_sample(f->p, &f->s, err, sizeof err), ORBIT_EIO);
    assert_non_null(strstr(err, "/stat"));
    assert_memory_equal(&before, &f->s, sizeof before);
}

static void missing_meminfo_or_loadavg_is_eio(void **state)
{
    fixture_t *f = *state;
    char err[256] = "";
    drop(f, "meminfo");
    assert_int_equal(orbit_leaf_procfs_sample(f->p, &f->s, err, sizeof err), ORBIT_EIO);
    assert_non_null(strstr(err, "meminfo"));
    put(f, "meminfo", "MemFree: 12 kB\n");
    assert_int_equal(orbit_leaf_procfs_sample(f->p, &f->s, err, sizeof err), ORBIT_EIO);
    assert_non_null(strstr(err, "MemTotal"));
    put_basics(f);
    drop(f, "loadavg");
    assert_int_equal(orbit_leaf_procfs_sample(f->p, &f->s, NULL, 0), ORBIT_EIO);
}

static void malformed_stat_is_eio(void **state)
{
    fixture_t *f = *state;
    char err[256] = "";
    put(f, "stat", "cpu0 1 2 3 4\nbtime 5\n"); /* no aggregate line */
    assert_int_equal(orbit_leaf_procfs_sample(f->p, &f->s, err, sizeof err), ORBIT_EIO);
    put(f, "stat", "cpu  1 2 3 4\ncpu0 1 2 3 4\n"); /* no btime */
    assert_int_equal(orbit_leaf_procfs_sample(f->p, &f->s, err, sizeof err), ORBIT_EIO);
    assert_non_null(strstr(err, "btime"));
}

static void missing_root_is_eio(void **state)
{
    (void)state;
    orbit_leaf_procfs_t *p = orbit_leaf_procfs_new("/nonexistent/orbit-proc");
    orbit_node_state_t s;
    orbit_node_state_init(&s);
    char err[256] = "";
    assert_int_equal(orbit_leaf_procfs_sample(p, &s, err, sizeof err), ORBIT_EIO);
    assert_non_null(strstr(err, "/nonexistent/orbit-proc/stat"));
    orbit_leaf_procfs_destroy(&p);
    orbit_leaf_procfs_destroy(&p); /* NULL-safe */
}

static void centi_parsing(void **state)
{
    (void)state;
    uint32_t v = 0;
    const char *end;
    assert_int_equal(orbit_leaf_procfs_parse_centi("0.5", NULL, &v), ORBIT_OK);
    assert_int_equal(v, 50);
    assert_int_equal(orbit_leaf_procfs_parse_centi("3", NULL, &v), ORBIT_OK);
    assert_int_equal(v, 300);
    assert_int_equal(orbit_leaf_procfs_parse_centi("1.239 x", &end, &v), ORBIT_OK);
    assert_int_equal(v, 123);
    assert_string_equal(end, " x");
    assert_int_equal(orbit_leaf_procfs_parse_centi("0.07", NULL, &v), ORBIT_OK);
    assert_int_equal(v, 7);
    assert_int_equal(orbit_leaf_procfs_parse_centi("", NULL, &v), ORBIT_EINVAL);
    assert_int_equal(orbit_leaf_procfs_parse_centi("abc", NULL, &v), ORBIT_EINVAL);
    assert_int_equal(orbit_leaf_procfs_parse_centi("-1", NULL, &v), ORBIT_EINVAL);
    assert_int_equal(orbit_leaf_procfs_parse_centi("99999999999", NULL, &v), ORBIT_EINVAL);
}

static void real_proc_samples(void **state)
{
    (void)state;
    orbit_leaf_procfs_t *p = orbit_leaf_procfs_new(NULL);
    orbit_node_state_t s;
    orbit_node_state_init(&s);
    char err[256];
    if (orbit_leaf_procfs_sample(p, &s, err, sizeof err) != ORBIT_OK) {
        orbit_leaf_procfs_destroy(&p);
        skip(); /* no usable /proc here */
    }
    assert_true(s.cpu_capacity_m >= 1000);
    assert_true(s.mem_capacity > 0 && s.mem_used <= s.mem_capacity);
    assert_true(s.incarnation > (1ull << 16));
    orbit_leaf_procfs_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(cpu_first_sample_reports_zero_then_delta, setup, teardown),
        cmocka_unit_test_setup_teardown(cpu_counters_backwards_restart_the_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(cpu_same_jiffy_repeats_last_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(stat_long_lines_are_skipped_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(meminfo_capacity_and_used, setup, teardown),
        cmocka_unit_test_setup_teardown(meminfo_without_available_uses_free_buffers_cached, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(loadavg_in_hundredths, setup, teardown),
        cmocka_unit_test_setup_teardown(pressure_present, setup, teardown),
        cmocka_unit_test_setup_teardown(pressure_absent_is_not_an_error, setup, teardown),
        cmocka_unit_test(incarnation_orders_boots),
        cmocka_unit_test_setup_teardown(incarnation_follows_boot_id_not_btime_jitter, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(missing_stat_is_eio_and_leaves_state, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_meminfo_or_loadavg_is_eio, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_stat_is_eio, setup, teardown),
        cmocka_unit_test(missing_root_is_eio),
        cmocka_unit_test(centi_parsing),
        cmocka_unit_test(real_proc_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
