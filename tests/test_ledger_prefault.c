/* ledger_prefault: the pages just past an LMDB environment's last page are
 * in the page cache before a transaction writes them, the window grows
 * with the rate of growth, and the thread stops cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ledger_prefault.h"

#define MAP_SIZE ((size_t)256 << 20)
#define MIB      ((size_t)1 << 20)

typedef struct {
    char dir[64];
    MDB_env *env;
    MDB_dbi dbi;
    size_t psize;
    uint64_t next_key;
} env_t;

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    snprintf(e->dir, sizeof e->dir, "/tmp/orbit-prefault-XXXXXX");
    if (!mkdtemp(e->dir) || mdb_env_create(&e->env) || mdb_env_set_mapsize(e->env, MAP_SIZE) ||
        mdb_env_open(e->env, e->dir, MDB_NOSYNC | MDB_WRITEMAP | MDB_NOTLS, 0600))
        return -1;
    MDB_txn *txn;
    MDB_stat st;
    if (mdb_txn_begin(e->env, NULL, 0, &txn) || mdb_dbi_open(txn, NULL, 0, &e->dbi) ||
        mdb_txn_commit(txn) || mdb_env_stat(e->env, &st))
        return -1;
    e->psize = st.ms_psize;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    char path[128];
    mdb_env_close(e->env);
    snprintf(path, sizeof path, "%s/data.mdb", e->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", e->dir);
    unlink(path);
    rmdir(e->dir);
    free(e);
    return 0;
}

/* Grow the environment by about `bytes` of values in one transaction. */
static void grow(env_t *e, size_t bytes)
{
    static uint8_t val[16 << 10];
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(e->env, NULL, 0, &txn), 0);
    for (size_t done = 0; done < bytes; done += sizeof val) {
        uint64_t k = e->next_key++;
        MDB_val key = {sizeof k, &k}, v = {sizeof val, val};
        memset(val, (int)(k & 0xff) | 1, sizeof val);
        assert_int_equal(mdb_put(txn, e->dbi, &key, &v, 0), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
}

/* Bytes up to the end of the last page in use. */
static size_t used(env_t *e)
{
    MDB_envinfo info;
    assert_int_equal(mdb_env_info(e->env, &info), 0);
    return ((size_t)info.me_last_pgno + 1) * e->psize;
}

/* Whether every page of [from, to) of the data file is in the page cache. */
static bool resident(env_t *e, size_t from, size_t to)
{
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", e->dir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    uint8_t *map = mmap(NULL, MAP_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(map != MAP_FAILED);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    from = from / pg * pg;
    size_t n = (to - from + pg - 1) / pg;
    unsigned char *vec = malloc(n);
    assert_non_null(vec);
    assert_int_equal(mincore(map + from, to - from, vec), 0);
    bool all = true;
    for (size_t i = 0; i < n; i++)
        all = all && (vec[i] & 1);
    free(vec);
    munmap(map, MAP_SIZE);
    return all;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait (at most 10 s) until the thread has populated at least `bytes`. */
static orbit_ledger_prefault_stats_t wait_populated(orbit_ledger_prefault_t *p, uint64_t bytes)
{
    orbit_ledger_prefault_stats_t st = orbit_ledger_prefault_stats(p);
    for (int i = 0; i < 1000 && st.populated_bytes < bytes && !st.failed; i++) {
        sleep_ms(10);
        st = orbit_ledger_prefault_stats(p);
    }
    return st;
}

static void test_window_past_the_end_is_cached(void **state)
{
    env_t *e = *state;
    orbit_ledger_prefault_t *p = orbit_ledger_prefault_start(e->env);
    assert_non_null(p);
    /* At start: the first window, 1 MiB past the last page. */
    orbit_ledger_prefault_stats_t st = wait_populated(p, MIB);
    assert_false(st.failed);
    assert_int_equal(st.window_bytes, MIB);
    assert_true(st.populated_bytes >= MIB);
    size_t end = used(e);
    assert_true(resident(e, end, end + MIB));
    /* A small commit keeps the window where it is and moves it along. */
    grow(e, 64 << 10);
    orbit_ledger_prefault_note(p);
    end = used(e);
    assert_int_equal(orbit_ledger_prefault_stats(p).window_bytes, MIB);
    for (int i = 0; i < 1000 && !resident(e, end, end + MIB / 2); i++)
        sleep_ms(10);
    assert_true(resident(e, end, end + MIB / 2));
    orbit_ledger_prefault_stop(&p);
    assert_null(p);
}

static void test_window_grows_with_the_rate(void **state)
{
    env_t *e = *state;
    orbit_ledger_prefault_t *p = orbit_ledger_prefault_start(e->env);
    assert_non_null(p);
    wait_populated(p, MIB);
    /* Commits of a little over 2 MiB outrun windows of 1, 2 and 4 MiB
     * (each leaves less than half of it populated): it doubles to 8 MiB
     * at least, more if the thread fell behind. */
    for (int i = 0; i < 6; i++) {
        grow(e, 2 * MIB);
        orbit_ledger_prefault_note(p);
    }
    assert_true(orbit_ledger_prefault_stats(p).window_bytes >= 8 * MIB);
    /* Commits of 40 MiB: the window stops at its cap. */
    for (int i = 0; i < 2; i++) {
        grow(e, 40 * MIB);
        orbit_ledger_prefault_note(p);
    }
    orbit_ledger_prefault_stats_t st = orbit_ledger_prefault_stats(p);
    assert_int_equal(st.window_bytes, 32 * MIB);
    size_t end = used(e);
    for (int i = 0; i < 1000 && !resident(e, end, end + 16 * MIB); i++)
        sleep_ms(10);
    assert_true(resident(e, end, end + 16 * MIB));
    st = orbit_ledger_prefault_stats(p);
    assert_false(st.failed);
    /* Nothing beyond the window past the last page. */
    assert_true(st.populated_bytes <= end + 32 * MIB);
    orbit_ledger_prefault_stop(&p);
}

/* The map's end bounds the window; NULL is harmless everywhere. */
static void test_bounds_and_null(void **state)
{
    env_t *e = *state;
    orbit_ledger_prefault_note(NULL);
    orbit_ledger_prefault_stats_t st = orbit_ledger_prefault_stats(NULL);
    assert_int_equal(st.populated_bytes, 0);
    orbit_ledger_prefault_t *none = NULL;
    orbit_ledger_prefault_stop(&none);
    orbit_ledger_prefault_stop(NULL);
    assert_null(orbit_ledger_prefault_start(NULL));
    orbit_ledger_prefault_t *p = orbit_ledger_prefault_start(e->env);
    assert_non_null(p);
    /* Stopped while it may still be populating: joins, frees. */
    orbit_ledger_prefault_stop(&p);
    assert_null(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_window_past_the_end_is_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_grows_with_the_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_and_null, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
