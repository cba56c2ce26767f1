/* consensus_segments: raft's log segments allocated as written zeros, and
 * their AIO contexts destroyed off raft's loop.
 *
 * raft 0.15 has no options for either, so orbit-root defines two libc
 * functions itself: an executable's definition comes before libc's for the
 * libraries it loads (libraft calls both through its PLT). Everything they
 * do not handle goes on to libc's own, found with dlsym(RTLD_NEXT).
 *
 * 1. posix_fallocate.
 * raft 0.15's libuv backend prepares each open segment (8 MiB) with
 * posix_fallocate and then appends to it with O_DIRECT | O_DSYNC writes. On
 * ext4 (and XFS) fallocate leaves unwritten extents, so nearly every append
 * also converts part of an extent: a metadata change that an O_DSYNC write
 * must make durable before it returns (through the journal, or, on the
 * journal-less ext4 of the build machines, by writing the extent tree and
 * inode itself). That is more device writes and flushes on the path of
 * every commitment. Measured on the build machine's virtio disk: a 4 KiB
 * O_DIRECT + RWF_DSYNC write took 0.42 ms into fallocated space and 0.27 ms
 * over written blocks; at 256 proposers the replicas' appends (~27 KB
 * each) took 2.0–3.6 ms on average in fallocated segments and 1.5–2.4 ms
 * in written ones, and commitments/s went up by ~10 %.
 *
 * Here, a range of at most 64 MiB that lies wholly at or past the end of a
 * file open for writing, which is how raft calls it on a segment it has
 * just created, is written with zeros,
 * through a descriptor of its own (O_DIRECT where the range allows it, so
 * the zeros do not fill the page cache) and synced once at the end (with
 * no /proc to reopen it through, libc's fallocate as before). Any
 * other range goes to libc's posix_fallocate unchanged: existing bytes are
 * never overwritten. The cost is a sequential write of each segment once,
 * off raft's loop (raft allocates in its thread pool). Should the process
 * die before that sync, the segment is at worst partly unwritten, as with
 * fallocate: raft's own appends are O_DSYNC either way.
 *
 * 2. syscall(SYS_io_destroy). Each open segment has a kernel AIO context
 * of its own, and raft destroys the old one on its loop when it moves to
 * the next segment. io_destroy waits for an RCU grace period: strace showed
 * it taking 27–39 ms, so at every segment change (~1.2 s apart at 256
 * proposers) each replica's loop stopped for that long, all three together
 * since their logs are the same: ~3 % of the proposals waited > 30 ms, the
 * p99. When none of the context's requests is in flight (this file counts
 * them through io_submit and io_getevents, which raft also makes through
 * syscall()), raft has no more use for it, so the call returns 0 at once
 * and a detached thread destroys the context; the 256-proposer p99 went
 * from 26–27 ms to 19–27 ms. With requests in flight (raft closing a
 * segment under load cancels them without waiting, then frees their
 * buffers once io_destroy returns), or if no thread can be started, the
 * call is made in place as before. Every other system call goes to libc's
 * syscall() unchanged.
 *
 * Thread rules: any thread (the context table has its own mutex). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The zeros go out in 1 MiB writes with a 1 ms pause between them, so the
 * appends' own writes and flushes get to the disk in between: the replicas
 * of one host reach a segment's end together (their logs are the same), and
 * prepare their next segments at the same time. Measured against writing
 * each segment in one go: 44,600–45,800 against 43,600–44,700 commitments/s
 * at 256 proposers. A segment takes 20–30 ms under load, in raft's thread
 * pool. Raft prepares its next segments ahead, but not before the first
 * segment change after a start: the appends then wait for those zeros,
 * once (no pause at all made that wait 21 instead of 27 ms). */
#define ZERO_CHUNK    ((size_t)1 << 20)
#define ZERO_MAX      ((off_t)64 << 20) /* larger ranges (not raft's) go to libc */
#define ZERO_PAUSE_NS 1000000L
#define DIRECT_ALIGN  4096

static const uint8_t zeros[ZERO_CHUNK] __attribute__((aligned(DIRECT_ALIGN)));

typedef int (*fallocate_fn)(int, off_t, off_t);
typedef long (*syscall_fn)(long, ...);

/* libc's own functions, the ones these definitions hide. */
static fallocate_fn next_posix_fallocate;
static syscall_fn next_syscall;
static pthread_once_t next_once = PTHREAD_ONCE_INIT;

static void resolve_next(void)
{
    void *sym = dlsym(RTLD_NEXT, "posix_fallocate");
    if (sym) /* ISO C has no object-to-function cast */
        memcpy(&next_posix_fallocate, &sym, sizeof next_posix_fallocate);
    sym = dlsym(RTLD_NEXT, "syscall");
    if (sym)
        memcpy(&next_syscall, &sym, sizeof next_syscall);
}

/* Resolved before main, so no first call races for them; a call before
 * this constructor (another library's) resolves them through the once. */
__attribute__((constructor)) static void resolve_early(void)
{
    pthread_once(&next_once, resolve_next);
}

static int libc_posix_fallocate(int fd, off_t offset, off_t len)
{
    pthread_once(&next_once, resolve_next);
    return next_posix_fallocate ? next_posix_fallocate(fd, offset, len) : ENOSYS;
}

/* A descriptor of fd's file of its own: without fd's O_DSYNC (one flush at
 * the end, not one per chunk), with O_DIRECT when `direct` (the zeros do not
 * fill the page cache). -1 when /proc cannot give one. */
static int reopen(int fd, bool direct)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return open(proc, O_WRONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
}

/* Write zeros over [offset, offset + len) of fd; an errno value or 0.
 * Without /proc, libc's fallocate as before. */
static int write_zeros(int fd, off_t offset, off_t len)
{
    bool direct = offset % DIRECT_ALIGN == 0 && len % DIRECT_ALIGN == 0;
    int zfd = reopen(fd, direct);
    if (zfd < 0 && direct) /* a file system without O_DIRECT */
        zfd = reopen(fd, direct = false);
    if (zfd < 0)
        return libc_posix_fallocate(fd, offset, len);
    int rc = 0;
    for (off_t at = offset, end = offset + len; at < end;) {
        size_t n = (size_t)(end - at) < ZERO_CHUNK ? (size_t)(end - at) : ZERO_CHUNK;
        ssize_t w = pwrite(zfd, zeros, n, at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EINVAL && direct) { /* O_DIRECT refused at write */
            close(zfd);
            if ((zfd = reopen(fd, direct = false)) < 0)
                return errno;
            continue;
        }
        if (w <= 0) {
            rc = w < 0 ? errno : EIO;
            break;
        }
        at += w;
        if (at < end)
            nanosleep(&(struct timespec){0, ZERO_PAUSE_NS}, NULL);
    }
    if (!rc && fdatasync(zfd) != 0)
        rc = errno;
    close(zfd);
    return rc;
}

int posix_fallocate(int fd, off_t offset, off_t len)
{
    struct stat st;
    if (offset < 0 || len <= 0 || offset > INT64_MAX - len)
        return EINVAL;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fstat(fd, &st) != 0)
        return errno;
    if (!S_ISREG(st.st_mode) || offset < st.st_size || len > ZERO_MAX ||
        (flags & O_ACCMODE) == O_RDONLY)
        return libc_posix_fallocate(fd, offset, len); /* its answer, e.g. EBADF */
    return write_zeros(fd, offset, len);
}

/* ------------------------------------------------------------- io_destroy */

/* The requests each AIO context has in the kernel: io_submit adds what it
 * queued, io_getevents takes away what it reaped. A context destroyed with
 * requests in flight is destroyed in place: io_destroy then waits for them,
 * and raft frees their buffers only after it returns (raft's writer, closing
 * under load, cancels what it has not reaped without waiting for it). So is
 * a context not made through syscall(), or any once the table has
 * overflowed. */
#define CONTEXTS 64

typedef struct {
    unsigned long ctx; /* 0: a free slot */
    long inflight;
} context_t;

static context_t contexts[CONTEXTS];
static bool contexts_overflowed;
static pthread_mutex_t contexts_mu = PTHREAD_MUTEX_INITIALIZER;

/* ctx's slot, or with add a free one taken for it; NULL when there is none.
 * Under contexts_mu. */
static context_t *context_slot(unsigned long ctx, bool add)
{
    context_t *free_slot = NULL;
    for (int i = 0; i < CONTEXTS; i++) {
        if (contexts[i].ctx == ctx)
            return &contexts[i];
        if (!free_slot && contexts[i].ctx == 0)
            free_slot = &contexts[i];
    }
    if (!add || !free_slot)
        return NULL;
    *free_slot = (context_t){ctx, 0};
    return free_slot;
}

/* Add delta to ctx's requests in flight; a delta of 0 (io_setup) or more
 * takes a slot for a context not seen yet. */
static void count_inflight(unsigned long ctx, long delta)
{
    pthread_mutex_lock(&contexts_mu);
    context_t *c = context_slot(ctx, delta >= 0);
    if (c)
        c->inflight += delta;
    else if (delta >= 0)
        contexts_overflowed = true;
    pthread_mutex_unlock(&contexts_mu);
}

/* Forget ctx; whether nothing of it is known to be in flight. */
static bool context_idle(unsigned long ctx)
{
    pthread_mutex_lock(&contexts_mu);
    context_t *c = context_slot(ctx, false);
    bool idle = c && c->inflight <= 0 && !contexts_overflowed;
    if (c)
        *c = (context_t){0, 0};
    pthread_mutex_unlock(&contexts_mu);
    return idle;
}

/* A test defines it to hold a deferred destroy until it has looked. */
void orbit_consensus_segments_destroy_hook(unsigned long ctx) __attribute__((weak));

static void *destroy_context(void *ctx)
{
    if (orbit_consensus_segments_destroy_hook)
        orbit_consensus_segments_destroy_hook((unsigned long)(uintptr_t)ctx);
    next_syscall(SYS_io_destroy, (long)(uintptr_t)ctx);
    return NULL;
}

/* Hand the destroy of AIO context ctx to a detached thread; false when no
 * thread could be started. */
static bool destroy_later(long ctx)
{
    pthread_attr_t attr;
    pthread_t t;
    if (pthread_attr_init(&attr) != 0)
        return false;
    bool ok = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
              pthread_create(&t, &attr, destroy_context, (void *)(uintptr_t)ctx) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}

/* syscall(2)'s six register arguments, passed on as they came (libc's
 * syscall() reads six whatever the number). */
long syscall(long number, ...)
{
    va_list ap;
    va_start(ap, number);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    pthread_once(&next_once, resolve_next);
    if (!next_syscall) {
        errno = ENOSYS;
        return -1;
    }
    if (number == SYS_io_destroy && context_idle((unsigned long)a1)) {
        int saved = errno; /* the caller may read errno of its last failed call */
        bool later = destroy_later(a1);
        errno = saved;
        if (later)
            return 0;
    }
    long rv = next_syscall(number, a1, a2, a3, a4, a5, a6);
    /* count_inflight leaves errno as the call left it (pthread's mutex
     * calls answer with their return value, never errno). */
    if (rv == 0 && number == SYS_io_setup && a2)
        count_inflight(*(unsigned long *)(uintptr_t)a2, 0); /* known from now on */
    else if (rv > 0 && number == SYS_io_submit)
        count_inflight((unsigned long)a1, rv);
    else if (rv > 0 && number == SYS_io_getevents)
        count_inflight((unsigned long)a1, -rv);
    return rv;
}
