/* ledger_prefault: the pages just past an LMDB environment's last page are
 * in the page cache and mapped writable in LMDB's map before a transaction
 * writes them (its writes there do not fault), the window grows with the
 * rate of growth, and the thread stops cleanly. */
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
#include <linux/magic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/statfs.h>
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
    bool tmpfs;
} env_t;

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    /* In the working directory (the build tree under ctest), not /tmp:
     * readahead(2) does nothing on tmpfs. */
    snprintf(e->dir, sizeof e->dir, "orbit-prefault-XXXXXX");
    struct statfs fs;
    if (!mkdtemp(e->dir) || statfs(e->dir, &fs) != 0)
        return -1;
    e->tmpfs = fs.f_type == TMPFS_MAGIC;
    if (mdb_env_create(&e->env) || mdb_env_set_mapsize(e->env, MAP_SIZE) ||
        mdb_env_open(e->env, e->dir, MDB_NOSYNC | MDB_WRITEMAP | MDB_NOTLS | MDB_NORDAHEAD, 0600))
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

/* How many pages of [from, to) of the data file are in the page cache. */
static size_t cached_pages(env_t *e, size_t from, size_t to)
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
    size_t cached = 0;
    for (size_t i = 0; i < n; i++)
        cached += vec[i] & 1;
    free(vec);
    munmap(map, MAP_SIZE);
    return cached;
}

/* Whether every page of [from, to) is in the page cache. */
static bool resident(env_t *e, size_t from, size_t to)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return cached_pages(e, from, to) == (to - from / pg * pg + pg - 1) / pg;
}

/* LMDB's map of the data file in this process, found by its path. */
static uint8_t *lmdb_map(env_t *e)
{
    char path[4096], want[256], line[8192];
    snprintf(want, sizeof want, "%s/data.mdb", e->dir);
    assert_non_null(realpath(want, path));
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    uint8_t *found = NULL;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        line[strcspn(line, "\n")] = '\0';
        size_t ll = strlen(line), pl = strlen(path);
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && ll > pl && !strcmp(line + ll - pl, path) &&
            b - a == MAP_SIZE)
            found = (uint8_t *)(uintptr_t)a;
    }
    fclose(f);
    assert_non_null(found);
    return found;
}

/* How many pages of [from, to) of LMDB's map are mapped in this process
 * (present in /proc/self/pagemap, bit 63; reading ahead alone maps none). */
static size_t mapped_pages(env_t *e, size_t from, size_t to)
{
    uint8_t *map = lmdb_map(e);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    assert_true(fd >= 0);
    for (size_t off = from / pg * pg; off < to; off += pg) {
        uint64_t entry = 0;
        off_t at = (off_t)((uintptr_t)(map + off) / pg * sizeof entry);
        assert_int_equal(pread(fd, &entry, sizeof entry, at), (ssize_t)sizeof entry);
        n += (entry >> 63) & 1;
    }
    close(fd);
    return n;
}

/* This thread's page faults (a page the fault reads in, if only a hole's
 * zeros, counts as a major one). */
static long faults(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_THREAD, &ru), 0);
    return ru.ru_minflt + ru.ru_majflt;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The thread's stats once it has populated at least `bytes` (0: any) and
 * has at least half its window ahead (ahead), or has failed; waits 10 s at
 * most. */
static orbit_ledger_prefault_stats_t wait_for(orbit_ledger_prefault_t *p, uint64_t bytes,
                                              bool ahead)
{
    orbit_ledger_prefault_stats_t st = orbit_ledger_prefault_stats(p);
    for (int i = 0; i < 1000 && !st.failed &&
                    (st.populated_bytes < bytes || (ahead && st.ahead_bytes < st.window_bytes / 2));
         i++) {
        sleep_ms(10);
        st = orbit_ledger_prefault_stats(p);
    }
    return st;
}

static orbit_ledger_prefault_stats_t wait_populated(orbit_ledger_prefault_t *p, uint64_t bytes)
{
    return wait_for(p, bytes, false);
}

static orbit_ledger_prefault_stats_t wait_ahead(orbit_ledger_prefault_t *p)
{
    return wait_for(p, 0, true);
}

/* A thread for e, once it has made its first window (1 MiB) ready. */
static orbit_ledger_prefault_t *start_first_window(env_t *e, orbit_ledger_prefault_stats_t *st)
{
    orbit_ledger_prefault_t *p = orbit_ledger_prefault_start(e->env);
    assert_non_null(p);
    *st = wait_populated(p, MIB);
    return p;
}

static void test_window_past_the_end_is_cached(void **state)
{
    env_t *e = *state;
    if (e->tmpfs)
        skip();
    /* At start: the first window, 1 MiB past the last page. */
    orbit_ledger_prefault_stats_t st;
    orbit_ledger_prefault_t *p = start_first_window(e, &st);
    assert_false(st.failed);
    assert_int_equal(st.window_bytes, MIB);
    assert_true(st.populated_bytes >= MIB);
    size_t end = used(e);
    assert_true(resident(e, end, end + MIB));
    /* No growth: it stays there. */
    sleep_ms(50);
    st = orbit_ledger_prefault_stats(p);
    assert_int_equal(st.window_bytes, MIB);
    assert_int_equal(st.populated_bytes, MIB);
    /* Small commits: the window moves along with the end. */
    for (int i = 0; i < 40; i++) {
        grow(e, 64 << 10);
        orbit_ledger_prefault_note(p);
        st = wait_ahead(p);
    }
    end = used(e);
    assert_true(end > 2 * MIB);
    assert_true(st.ahead_bytes >= st.window_bytes / 2);
    assert_true(resident(e, end, end + st.window_bytes / 2));
    orbit_ledger_prefault_stop(&p);
    assert_null(p);
}

static void test_window_grows_with_the_rate(void **state)
{
    env_t *e = *state;
    if (e->tmpfs)
        skip();
    orbit_ledger_prefault_stats_t st;
    orbit_ledger_prefault_t *p = start_first_window(e, &st);
    /* Commits of a little over 2 MiB: each leaves less than half the
     * window ahead until it is 8 MiB; more if the thread fell behind. */
    for (int i = 0; i < 6; i++) {
        grow(e, 2 * MIB);
        orbit_ledger_prefault_note(p);
        wait_ahead(p);
    }
    assert_true(orbit_ledger_prefault_stats(p).window_bytes >= 8 * MIB);
    /* Commits of 20 MiB each reach past any window: it stops at its cap. */
    for (int i = 0; i < 5; i++) {
        grow(e, 20 * MIB);
        orbit_ledger_prefault_note(p);
    }
    st = orbit_ledger_prefault_stats(p);
    assert_int_equal(st.window_bytes, 32 * MIB);
    st = wait_ahead(p);
    assert_false(st.failed);
    size_t end = used(e);
    assert_true(resident(e, end, end + 16 * MIB));
    /* Nothing read beyond the window (with a megabyte to spare). */
    assert_int_equal(cached_pages(e, end + 34 * MIB, end + 40 * MIB), 0);
    orbit_ledger_prefault_stop(&p);
}

/* The window is mapped writable in LMDB's map: the pages past the end are
 * present, none past the window, and a transaction that writes a few
 * hundred new pages there takes a handful of faults, not one a page. */
static void test_window_is_mapped_writable(void **state)
{
    env_t *e = *state;
    if (e->tmpfs)
        skip();
    orbit_ledger_prefault_stats_t st;
    orbit_ledger_prefault_t *p = start_first_window(e, &st);
    assert_true(st.map_found); /* LMDB's map, in /proc/self/maps */
    if (!st.mapping) {
        orbit_ledger_prefault_stop(&p);
        skip(); /* the kernel refused (before 5.14): reading ahead only, as the log says */
    }
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), end = used(e);
    assert_true(st.mapped_bytes >= MIB);
    assert_int_equal(mapped_pages(e, end, end + MIB), MIB / pg);
    assert_int_equal(mapped_pages(e, end + MIB + pg, end + 2 * MIB), 0);
    /* Grow by 512 KiB, inside the window: ~128 new pages written. */
    long before = faults();
    grow(e, 512 << 10);
    long taken = faults() - before;
    assert_true(used(e) >= end + (512 << 10));
    assert_true(taken < 32);
    /* Without the thread, once past what it mapped, the same growth faults
     * once a page: the check above tells the two apart. */
    orbit_ledger_prefault_stop(&p);
    grow(e, 2 * MIB);
    size_t end2 = used(e);
    assert_int_equal(mapped_pages(e, end2, end2 + MIB), 0);
    before = faults();
    grow(e, 512 << 10);
    assert_true(faults() - before >= 64);
}

/* NULL is harmless everywhere; a stop joins a thread that may be busy. */
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
        cmocka_unit_test_setup_teardown(test_window_is_mapped_writable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_and_null, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
