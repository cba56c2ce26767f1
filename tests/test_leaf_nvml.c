/* test_leaf_nvml: the NVML collector against tests/fake_nvml.c loaded by path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dlfcn.h>

#include "leaf_nvml.h"
#include "orbit_err.h"
#include "orbit_log.h"

#ifndef FAKE_NVML_PATH
#error "FAKE_NVML_PATH must name the fake NVML library"
#endif

#define GIB     (1024ull * 1024 * 1024)
#define T0      1000000 /* the injected clock's start, ms */
#define MINUTES (60 * 1000)

static const char *fake_vars[] = {
    "FAKE_NVML_INIT_FAIL", "FAKE_NVML_GPUS",          "FAKE_NVML_TEMP",
    "FAKE_NVML_UTIL",      "FAKE_NVML_POWER_MW",      "FAKE_NVML_MEM_USED",
    "FAKE_NVML_XID",       "FAKE_NVML_ECC_CORRECTED", "FAKE_NVML_ECC_UNCORRECTED",
    "FAKE_NVML_LOST",      "FAKE_NVML_HANDLE_FAIL",   "FAKE_NVML_ECC_UNSUPPORTED",
    "FAKE_NVML_NO_EVENTS",
};

typedef struct {
    orbit_leaf_nvml_t *n;
    orbit_node_state_t s;
} fixture_t;

static int setup(void **state)
{
    for (size_t i = 0; i < sizeof fake_vars / sizeof fake_vars[0]; i++)
        unsetenv(fake_vars[i]);
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    orbit_node_state_init(&f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    orbit_leaf_nvml_destroy(&f->n);
    assert_null(f->n);
    orbit_node_state_close(&f->s);
    free(f);
    return 0;
}

/* Load the fake with the environment as set and the XID windows given (0:
 * the defaults), and take one sample at T0. */
static void load_with_windows(fixture_t *f, const char *path, uint32_t xid_window_s,
                              uint32_t xid_critical_window_s)
{
    orbit_leaf_nvml_destroy(&f->n);
    f->n = orbit_leaf_nvml_new(path, xid_window_s, xid_critical_window_s);
    assert_non_null(f->n);
    assert_int_equal(orbit_leaf_nvml_sample(f->n, &f->s, T0), ORBIT_OK);
}

static void load_and_sample(fixture_t *f, const char *path)
{
    load_with_windows(f, path, 0, 0);
}

/* Sample again with the clock at now_ms. */
static void sample_at(fixture_t *f, int64_t now_ms)
{
    assert_int_equal(orbit_leaf_nvml_sample(f->n, &f->s, now_ms), ORBIT_OK);
}

/* Queue an XID event on GPU i of the loaded fake (its test hook). */
static void inject_xid(unsigned i, unsigned long long xid)
{
    void *lib = dlopen(FAKE_NVML_PATH, RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(lib);
    int (*inject)(unsigned, unsigned long long) = NULL;
    void *sym = dlsym(lib, "fake_nvml_inject_xid");
    assert_non_null(sym);
    memcpy(&inject, &sym, sizeof inject); /* no object-to-function cast */
    assert_int_equal(inject(i, xid), 0);
    dlclose(lib);
}

/* GPU i reports xid with health h. */
#define assert_xid(f, i, xid, h)                                                                   \
    do {                                                                                           \
        assert_int_equal((f)->s.gpus[i].last_xid, (xid));                                          \
        assert_int_equal((f)->s.gpus[i].health, (h));                                              \
    } while (0)

/* The sampled state must pass the shard's validation as a full state. */
static void assert_valid_on_wire(const orbit_node_state_t *s)
{
    orbit_node_state_t copy;
    orbit_node_state_init(&copy);
    assert_int_equal(orbit_node_state_copy(&copy, s), ORBIT_OK);
    snprintf(copy.name, sizeof copy.name, "n1");
    copy.interval_ms = 1000;
    Orbit__NodeDelta d = ORBIT__NODE_DELTA__INIT;
    void *scratch = NULL;
    assert_int_equal(orbit_node_delta_fill(&d, &copy, NULL, 1, &scratch), ORBIT_OK);
    const char *reason = NULL;
    int rc = orbit_node_delta_validate(&d, NULL, &reason);
    free(scratch);
    orbit_node_state_close(&copy);
    if (rc != ORBIT_OK)
        fail_msg("delta rejected: %s", reason);
}

static void two_healthy_gpus(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_GPUS", "2", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    assert_true(orbit_leaf_nvml_available(f->n));
    assert_int_equal(orbit_leaf_nvml_count(f->n), 2);
    assert_int_equal(f->s.gpu_capacity, 2);
    assert_int_equal(f->s.ngpus, 2);
    for (uint32_t i = 0; i < 2; i++) {
        const orbit_gpu_t *g = &f->s.gpus[i];
        char uuid[64];
        snprintf(uuid, sizeof uuid, "GPU-00000000-0000-0000-0000-0000000000%02u", i);
        assert_int_equal(g->index, i);
        assert_string_equal(g->uuid, uuid);
        assert_int_equal(g->temp_c, 40 + i);
        assert_int_equal(g->util_pct, 10 * i);
        assert_int_equal(g->mem_total, 80 * GIB);
        assert_int_equal(g->mem_used, (i + 1) * GIB);
        assert_int_equal(g->power_mw, 100000 + i);
        assert_int_equal(g->ecc_corrected, 0);
        assert_int_equal(g->ecc_uncorrected, 0);
        assert_int_equal(g->last_xid, 0);
        assert_int_equal(g->health, ORBIT_GPU_HEALTHY);
    }
    assert_valid_on_wire(&f->s);
}

static void critical_xid_fails_that_gpu_only(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_GPUS", "3", 1);
    setenv("FAKE_NVML_XID", "1:79,2:13", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    assert_int_equal(f->s.ngpus, 3);
    assert_int_equal(f->s.gpus[0].health, ORBIT_GPU_HEALTHY);
    assert_int_equal(f->s.gpus[1].last_xid, 79);
    assert_int_equal(f->s.gpus[1].health, ORBIT_GPU_FAILED);
    assert_int_equal(f->s.gpus[2].last_xid, 13); /* not critical */
    assert_int_equal(f->s.gpus[2].health, ORBIT_GPU_DEGRADED);
    /* The event is delivered once; the XID stays (within its window). */
    sample_at(f, T0 + 1);
    assert_int_equal(f->s.gpus[1].last_xid, 79);
    assert_int_equal(f->s.gpus[1].health, ORBIT_GPU_FAILED);
    assert_valid_on_wire(&f->s);
}

static void minor_xid_ages_out_after_its_window(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_XID", "1:13", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    assert_xid(f, 0, 0, ORBIT_GPU_HEALTHY);
    assert_xid(f, 1, 13, ORBIT_GPU_DEGRADED);
    sample_at(f, T0 + 10 * MINUTES - 1);
    assert_xid(f, 1, 13, ORBIT_GPU_DEGRADED);
    sample_at(f, T0 + 10 * MINUTES);
    assert_xid(f, 1, 0, ORBIT_GPU_HEALTHY);
    assert_valid_on_wire(&f->s);
    /* Gone for good: no event, no XID. */
    sample_at(f, T0 + 20 * MINUTES);
    assert_xid(f, 1, 0, ORBIT_GPU_HEALTHY);
}

static void critical_xid_ages_out_after_an_hour(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_XID", "0:79", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    assert_xid(f, 0, 79, ORBIT_GPU_FAILED);
    sample_at(f, T0 + 10 * MINUTES); /* past the minor window */
    assert_xid(f, 0, 79, ORBIT_GPU_FAILED);
    sample_at(f, T0 + 60 * MINUTES - 1);
    assert_xid(f, 0, 79, ORBIT_GPU_FAILED);
    sample_at(f, T0 + 60 * MINUTES);
    assert_xid(f, 0, 0, ORBIT_GPU_HEALTHY);
    assert_xid(f, 1, 0, ORBIT_GPU_HEALTHY);
}

static void minor_xid_does_not_hide_a_critical_one(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_XID", "0:79", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    inject_xid(0, 13);
    sample_at(f, T0 + 1 * MINUTES);
    assert_xid(f, 0, 79, ORBIT_GPU_FAILED);
    inject_xid(0, 31);
    sample_at(f, T0 + 55 * MINUTES);
    assert_xid(f, 0, 79, ORBIT_GPU_FAILED);
    /* The critical one ages out; the minor one, 5 minutes old, shows. */
    sample_at(f, T0 + 60 * MINUTES);
    assert_xid(f, 0, 31, ORBIT_GPU_DEGRADED);
    sample_at(f, T0 + 65 * MINUTES - 1);
    assert_xid(f, 0, 31, ORBIT_GPU_DEGRADED);
    sample_at(f, T0 + 65 * MINUTES);
    assert_xid(f, 0, 0, ORBIT_GPU_HEALTHY);
}

static void a_new_xid_restarts_its_window(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_XID", "1:13", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    inject_xid(1, 13); /* the same XID again, 8 minutes later */
    sample_at(f, T0 + 8 * MINUTES);
    assert_xid(f, 1, 13, ORBIT_GPU_DEGRADED);
    sample_at(f, T0 + 17 * MINUTES);
    assert_xid(f, 1, 13, ORBIT_GPU_DEGRADED);
    sample_at(f, T0 + 18 * MINUTES);
    assert_xid(f, 1, 0, ORBIT_GPU_HEALTHY);
    /* A newer critical XID replaces the older one. */
    inject_xid(1, 79);
    sample_at(f, T0 + 20 * MINUTES);
    inject_xid(1, 48);
    sample_at(f, T0 + 30 * MINUTES);
    assert_xid(f, 1, 48, ORBIT_GPU_FAILED);
    sample_at(f, T0 + 89 * MINUTES);
    assert_xid(f, 1, 48, ORBIT_GPU_FAILED);
    sample_at(f, T0 + 90 * MINUTES);
    assert_xid(f, 1, 0, ORBIT_GPU_HEALTHY);
}

static void xid_windows_are_configurable(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_XID", "0:13,1:79", 1);
    load_with_windows(f, FAKE_NVML_PATH, 5, 20);
    assert_xid(f, 0, 13, ORBIT_GPU_DEGRADED);
    assert_xid(f, 1, 79, ORBIT_GPU_FAILED);
    sample_at(f, T0 + 4999);
    assert_xid(f, 0, 13, ORBIT_GPU_DEGRADED);
    sample_at(f, T0 + 5000);
    assert_xid(f, 0, 0, ORBIT_GPU_HEALTHY);
    assert_xid(f, 1, 79, ORBIT_GPU_FAILED);
    sample_at(f, T0 + 20000);
    assert_xid(f, 1, 0, ORBIT_GPU_HEALTHY);
}

static void xid_on_a_hot_gpu_leaves_it_degraded(void **state)
{
    fixture_t *f = *state;
    /* Ageing out clears the XID, not the other reasons for the health. */
    setenv("FAKE_NVML_TEMP", "0:88", 1);
    setenv("FAKE_NVML_XID", "0:13", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    assert_xid(f, 0, 13, ORBIT_GPU_DEGRADED);
    sample_at(f, T0 + 10 * MINUTES);
    assert_xid(f, 0, 0, ORBIT_GPU_DEGRADED);
}

static void uncorrected_ecc_fails(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_ECC_UNCORRECTED", "0:2", 1);
    setenv("FAKE_NVML_ECC_CORRECTED", "1:1500", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    assert_int_equal(f->s.gpus[0].ecc_uncorrected, 2);
    assert_int_equal(f->s.gpus[0].health, ORBIT_GPU_FAILED);
    assert_int_equal(f->s.gpus[1].ecc_corrected, 1500);
    assert_int_equal(f->s.gpus[1].health, ORBIT_GPU_DEGRADED);
}

static void hot_gpu_is_degraded(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_TEMP", "0:88,1:96", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    assert_int_equal(f->s.gpus[0].temp_c, 88);
    assert_int_equal(f->s.gpus[0].health, ORBIT_GPU_DEGRADED);
    assert_int_equal(f->s.gpus[1].health, ORBIT_GPU_FAILED);
}

static void ecc_unsupported_counts_as_zero(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_ECC_UNSUPPORTED", "1", 1);
    setenv("FAKE_NVML_NO_EVENTS", "1", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    assert_int_equal(f->s.ngpus, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f->s.gpus[i].ecc_uncorrected, 0);
        assert_int_equal(f->s.gpus[i].health, ORBIT_GPU_HEALTHY);
        assert_int_equal(f->s.gpus[i].mem_total, 80 * GIB); /* the rest still read */
    }
}

static void lost_gpu_does_not_lose_the_others(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_GPUS", "4", 1);
    setenv("FAKE_NVML_LOST", "1", 1);
    setenv("FAKE_NVML_HANDLE_FAIL", "2", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    assert_int_equal(f->s.gpu_capacity, 4);
    assert_int_equal(f->s.ngpus, 4);
    assert_int_equal(f->s.gpus[0].health, ORBIT_GPU_HEALTHY);
    assert_int_equal(f->s.gpus[1].health, ORBIT_GPU_FAILED);
    assert_int_equal(f->s.gpus[2].health, ORBIT_GPU_FAILED);
    assert_int_equal(f->s.gpus[2].index, 2);
    assert_int_equal(f->s.gpus[3].health, ORBIT_GPU_HEALTHY);
    assert_int_equal(f->s.gpus[3].temp_c, 43);
    assert_valid_on_wire(&f->s);
}

static void values_are_clamped_to_the_wire_bounds(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_GPUS", "80", 1);
    setenv("FAKE_NVML_UTIL", "150", 1);
    setenv("FAKE_NVML_TEMP", "250", 1);
    setenv("FAKE_NVML_MEM_USED", "0:999999999999999", 1);
    setenv("FAKE_NVML_POWER_MW", "4000000000", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    assert_int_equal(f->s.gpu_capacity, ORBIT_GPUS_MAX);
    assert_int_equal(f->s.ngpus, ORBIT_GPUS_MAX);
    assert_int_equal(f->s.gpus[0].util_pct, 100);
    assert_int_equal(f->s.gpus[0].temp_c, 200);
    assert_int_equal(f->s.gpus[0].mem_used, f->s.gpus[0].mem_total);
    assert_int_equal(f->s.gpus[0].power_mw, 10u * 1000 * 1000);
    assert_valid_on_wire(&f->s);
}

static void init_failure_reports_no_gpus(void **state)
{
    fixture_t *f = *state;
    /* Start from a state that had GPUs: they must be cleared. */
    load_and_sample(f, FAKE_NVML_PATH);
    assert_int_equal(f->s.ngpus, 2);
    setenv("FAKE_NVML_INIT_FAIL", "1", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    assert_false(orbit_leaf_nvml_available(f->n));
    assert_int_equal(orbit_leaf_nvml_count(f->n), 0);
    assert_int_equal(f->s.gpu_capacity, 0);
    assert_int_equal(f->s.ngpus, 0);
    assert_null(f->s.gpus);
}

static void absent_library_reports_no_gpus(void **state)
{
    fixture_t *f = *state;
    load_and_sample(f, "/nonexistent/libnvidia-ml.so.1");
    assert_false(orbit_leaf_nvml_available(f->n));
    assert_int_equal(f->s.gpu_capacity, 0);
    assert_int_equal(f->s.ngpus, 0);
    /* Retries are quiet and still answer no GPUs. */
    for (int i = 0; i < ORBIT_LEAF_NVML_RETRY + 1; i++)
        sample_at(f, T0 + i);
    assert_int_equal(f->s.ngpus, 0);
}

static void library_without_nvml_symbols(void **state)
{
    fixture_t *f = *state;
    /* A real library that is not NVML. */
    load_and_sample(f, "libm.so.6");
    assert_false(orbit_leaf_nvml_available(f->n));
    assert_int_equal(f->s.ngpus, 0);
}

static void late_driver_is_picked_up_on_retry(void **state)
{
    fixture_t *f = *state;
    setenv("FAKE_NVML_INIT_FAIL", "1", 1);
    load_and_sample(f, FAKE_NVML_PATH);
    assert_int_equal(f->s.ngpus, 0);
    unsetenv("FAKE_NVML_INIT_FAIL");
    for (int i = 0; i < ORBIT_LEAF_NVML_RETRY; i++)
        sample_at(f, T0 + i);
    assert_true(orbit_leaf_nvml_available(f->n));
    assert_int_equal(f->s.ngpus, 2);
}

int main(void)
{
    orbit_log_level = ORBIT_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(two_healthy_gpus, setup, teardown),
        cmocka_unit_test_setup_teardown(critical_xid_fails_that_gpu_only, setup, teardown),
        cmocka_unit_test_setup_teardown(minor_xid_ages_out_after_its_window, setup, teardown),
        cmocka_unit_test_setup_teardown(critical_xid_ages_out_after_an_hour, setup, teardown),
        cmocka_unit_test_setup_teardown(minor_xid_does_not_hide_a_critical_one, setup, teardown),
        cmocka_unit_test_setup_teardown(a_new_xid_restarts_its_window, setup, teardown),
        cmocka_unit_test_setup_teardown(xid_windows_are_configurable, setup, teardown),
        cmocka_unit_test_setup_teardown(xid_on_a_hot_gpu_leaves_it_degraded, setup, teardown),
        cmocka_unit_test_setup_teardown(uncorrected_ecc_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(hot_gpu_is_degraded, setup, teardown),
        cmocka_unit_test_setup_teardown(ecc_unsupported_counts_as_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_gpu_does_not_lose_the_others, setup, teardown),
        cmocka_unit_test_setup_teardown(values_are_clamped_to_the_wire_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(init_failure_reports_no_gpus, setup, teardown),
        cmocka_unit_test_setup_teardown(absent_library_reports_no_gpus, setup, teardown),
        cmocka_unit_test_setup_teardown(library_without_nvml_symbols, setup, teardown),
        cmocka_unit_test_setup_teardown(late_driver_is_picked_up_on_retry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
