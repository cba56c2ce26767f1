/* ledger_prefault: the pages past a ledger's last page read into the page
 * cache and mapped writable ahead of its transactions (see
 * ledger_prefault.h). */
#include "ledger_prefault.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels answer EINVAL */
#endif

#include "orbit_log.h"

#define WINDOW_MIN ((size_t)1 << 20)
#define WINDOW_MAX ((size_t)32 << 20)
/* One readahead(2) and madvise(2) call: small enough that the kernel reads
 * it whole (it cuts a call at the larger of the device's readahead and
 * request sizes, at least 128 KiB on common devices), that the map's lock
 * is held briefly, and that a stop is noticed soon. */
#define STEP ((size_t)64 << 10)

struct orbit_ledger_prefault {
    MDB_env *env;
    int fd; /* the environment's data file */
    size_t psize;
    size_t map_size;
    uint8_t *map; /* LMDB's map of the file in this process; NULL: not found */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    size_t used;   /* bytes up to the end of the last page in use */
    size_t ready;  /* bytes populated from the start of the file */
    size_t window; /* kept populated past used */
    uint64_t populated, mapped;
    bool failed, quit;
    bool map_failed; /* the kernel refused to map pages ahead: read ahead only */
};

/* Whether the populated bytes fall short of used + window/2; under mu. */
static bool behind(const orbit_ledger_prefault_t *p)
{
    return !p->failed && p->ready < p->map_size && p->ready < p->used + p->window / 2;
}

/* The end of the window: used + window, within the file. Under mu. */
static size_t window_end(const orbit_ledger_prefault_t *p)
{
    size_t to = p->used + p->window; /* both at most the 4 GiB map */
    return to > p->map_size ? p->map_size : to;
}

/* Once behind, the thread fills the whole window before it waits again. */
static void *run(void *arg)
{
    orbit_ledger_prefault_t *p = arg;
    bool filling = false;
    pthread_mutex_lock(&p->mu);
    while (!p->quit) {
        filling = (filling || behind(p)) && !p->failed && p->ready < window_end(p);
        if (!filling) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        size_t from = p->ready > p->used ? p->ready : p->used;
        size_t to = window_end(p);
        size_t len = to - from > STEP ? STEP : to - from;
        pthread_mutex_unlock(&p->mu);
        bool map = p->map && !p->map_failed;
        int rc = readahead(p->fd, (off64_t)from, len) == 0 ? 0 : errno;
        int mrc = !rc && map && madvise(p->map + from, len, MADV_POPULATE_WRITE) != 0 ? errno : 0;
        /* logged outside mu: note() must not wait for a log write */
        if (rc != 0)
            orbit_warn("ledger: cannot read the data file ahead of apply (%s); apply "
                       "faults its pages in itself",
                       strerror(rc));
        else if (mrc != 0)
            orbit_warn("ledger: cannot map the data file's next pages writable ahead of apply "
                       "(%s); reading them ahead only",
                       strerror(mrc));
        pthread_mutex_lock(&p->mu);
        if (rc != 0) {
            p->failed = true;
            continue;
        }
        p->map_failed |= mrc != 0;
        p->ready = from + len;
        p->populated += len;
        if (map && !mrc)
            p->mapped += len;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Bytes up to the end of env's last page in use. */
static size_t used_bytes(MDB_env *env, size_t psize)
{
    MDB_envinfo info;
    if (mdb_env_info(env, &info) != 0)
        return 0;
    return ((size_t)info.me_last_pgno + 1) * psize;
}

/* One pass over /proc/self/maps for the mapping of inode ino (size bytes
 * from offset 0, shared and writable). The device is not compared: on
 * overlayfs and btrfs the maps file names another device than fstat. */
static uint8_t *scan_maps(unsigned long ino, size_t size)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return NULL;
    char *line = NULL;
    size_t cap = 0;
    uint8_t *found = NULL;
    while (!found && getline(&line, &cap, f) > 0) {
        unsigned long start, end, off, lino;
        unsigned maj, min;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu", &start, &end, perms, &off, &maj, &min,
                   &lino) == 7 &&
            lino == ino && off == 0 && end - start == size && perms[1] == 'w' && perms[3] == 's')
            found = (uint8_t *)(uintptr_t)start;
    }
    free(line);
    fclose(f);
    return found;
}

/* Where LMDB mapped the file of fd in this process: LMDB does not say.
 * Another thread mapping or unmapping meanwhile can make a pass over the
 * maps file miss a line, so it is read up to three times. NULL if there is
 * no such mapping. */
static uint8_t *find_map(int fd, size_t size)
{
    struct stat st;
    uint8_t *found = NULL;
    if (fstat(fd, &st) != 0)
        return NULL;
    for (int i = 0; i < 3 && !found; i++)
        found = scan_maps((unsigned long)st.st_ino, size);
    return found;
}

orbit_ledger_prefault_t *orbit_ledger_prefault_start(MDB_env *env)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_filehandle_t fd;
    if (!env || mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &st) != 0 ||
        mdb_env_get_fd(env, &fd) != 0)
        return NULL;
    orbit_ledger_prefault_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->env = env;
    p->fd = fd;
    p->psize = st.ms_psize;
    p->map_size = info.me_mapsize; /* LMDB sizes the file to the map (MDB_WRITEMAP) */
    p->map = find_map(fd, p->map_size);
    if (!p->map)
        orbit_warn("ledger: LMDB's map of its data file not found in /proc/self/maps; its next "
                   "pages are read ahead of apply but not mapped");
    p->window = WINDOW_MIN;
    p->used = used_bytes(env, p->psize);
    /* The pages in use, into the page cache in the background: LMDB's map
     * has no readahead (MDB_NORDAHEAD), so after a reboot each cold page
     * would be a 4 KiB read of its own. */
    (void)posix_fadvise(fd, 0, (off_t)p->used, POSIX_FADV_WILLNEED);
    p->ready = p->used; /* pages in use were touched when written */
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        goto fail_mu;
    if (pthread_cond_init(&p->cv, NULL) != 0)
        goto fail_cv;
    if (pthread_create(&p->thread, NULL, run, p) != 0)
        goto fail_thread;
    return p;
fail_thread:
    pthread_cond_destroy(&p->cv);
fail_cv:
    pthread_mutex_destroy(&p->mu);
fail_mu:
    free(p);
    return NULL;
}

void orbit_ledger_prefault_note(orbit_ledger_prefault_t *p)
{
    if (!p)
        return;
    size_t used = used_bytes(p->env, p->psize);
    pthread_mutex_lock(&p->mu);
    if (used > p->used) {
        /* Less than half the window left ahead: the thread refills it, and
         * the window doubles. Doubling only when a commit reached past what
         * was read (tried) let a follower's batch commit (~2.5 MB at full
         * load) outrun a small window again and again: its faults read
         * ahead in large folios, and the 16-25 ms stalls came back. */
        if (used + p->window / 2 > p->ready && p->window < WINDOW_MAX)
            p->window *= 2;
        p->used = used;
        if (behind(p))
            pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
}

orbit_ledger_prefault_stats_t orbit_ledger_prefault_stats(orbit_ledger_prefault_t *p)
{
    orbit_ledger_prefault_stats_t st = {0};
    if (!p)
        return st;
    pthread_mutex_lock(&p->mu);
    st.populated_bytes = p->populated;
    st.mapped_bytes = p->mapped;
    st.map_found = p->map != NULL;
    st.mapping = p->map && !p->map_failed;
    st.window_bytes = p->window;
    st.ahead_bytes = p->ready > p->used ? p->ready - p->used : 0;
    st.failed = p->failed;
    pthread_mutex_unlock(&p->mu);
    return st;
}

void orbit_ledger_prefault_stop(orbit_ledger_prefault_t **pp)
{
    if (!pp || !*pp)
        return;
    orbit_ledger_prefault_t *p = *pp;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    *pp = NULL;
}
