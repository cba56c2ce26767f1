/* consensus_segments: posix_fallocate, as orbit-root defines it for raft's
 * segments, writes zeros past a file's end (no unwritten extents), leaves
 * existing bytes alone, and keeps the descriptor's flags; syscall() destroys
 * AIO contexts on a thread of its own and passes everything else on. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stddef.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define SEGMENT (8 << 20) /* raft 0.15's open segment */

/* In the working directory (the build tree under ctest), not /tmp: the
 * cases need a disk file system (O_DIRECT, extents), and /tmp may be tmpfs. */
static char dir[] = "orbit-segments-XXXXXX";
static bool on_tmpfs;
static char path[sizeof dir + 16];

static int setup(void **state)
{
    (void)state;
    struct statfs fs;
    if (!mkdtemp(dir) || statfs(dir, &fs) != 0)
        return -1;
    on_tmpfs = fs.f_type == TMPFS_MAGIC;
    snprintf(path, sizeof path, "%s/open-1", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

/* Extents of fd that are unwritten (fallocated, never written); -1 when
 * the file system cannot say (no FIEMAP). */
static int unwritten_extents(int fd)
{
    size_t n = 256;
    struct fiemap *fm = calloc(1, sizeof *fm + n * sizeof(struct fiemap_extent));
    assert_non_null(fm);
    fm->fm_length = FIEMAP_MAX_OFFSET;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = (uint32_t)n;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) {
        free(fm);
        return -1;
    }
    int unwritten = 0;
    for (uint32_t i = 0; i < fm->fm_mapped_extents; i++)
        if (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN)
            unwritten++;
    free(fm);
    return unwritten;
}

/* path created anew (a failed case before may have left it) with flags. */
static int fresh(int flags)
{
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | flags, 0600);
    assert_true(fd >= 0);
    return fd;
}

static void assert_size(int fd, off_t size)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, size);
}

static void assert_zeros(int fd, off_t from, off_t to)
{
    static uint8_t buf[1 << 16];
    for (off_t at = from; at < to;) {
        size_t want = (size_t)(to - at) < sizeof buf ? (size_t)(to - at) : sizeof buf;
        ssize_t n = pread(fd, buf, want, at);
        assert_true(n > 0);
        for (ssize_t i = 0; i < n; i++)
            if (buf[i]) {
                fail_msg("byte %lld is %u, not 0", (long long)(at + i), buf[i]);
            }
        at += n;
    }
}

/* A segment as raft creates it: O_DSYNC, then allocated, then direct I/O. */
static void test_new_segment_is_written_zeros(void **state)
{
    (void)state;
    if (on_tmpfs)
        skip(); /* no extents to look at */
    int fd = fresh(O_DSYNC);
    int flags = fcntl(fd, F_GETFL);
    assert_int_equal(posix_fallocate(fd, 0, SEGMENT), 0);
    assert_int_equal(fcntl(fd, F_GETFL), flags); /* fd's flags untouched */
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, SEGMENT);
    assert_true(st.st_blocks * 512 >= SEGMENT); /* allocated, not sparse */
    int unwritten = unwritten_extents(fd);
    if (unwritten < 0)
        skip();                     /* no FIEMAP: the one check libc's fallocate would fail */
    assert_int_equal(unwritten, 0); /* libc's would leave unwritten extents */
    assert_zeros(fd, 0, SEGMENT);
    close(fd);
    unlink(path);
}

/* Past the end but not block-aligned: buffered zeros, same result. */
static void test_unaligned_tail_range(void **state)
{
    (void)state;
    int fd = fresh(0);
    assert_int_equal(pwrite(fd, "abc", 3, 0), 3);
    assert_int_equal(posix_fallocate(fd, 3, 10000), 0);
    assert_size(fd, 10003);
    char head[3];
    assert_int_equal(pread(fd, head, 3, 0), 3);
    assert_memory_equal(head, "abc", 3);
    assert_zeros(fd, 3, 10003);
    close(fd);
    unlink(path);
}

/* A range over existing bytes goes to libc: nothing is overwritten. */
static void test_existing_bytes_kept(void **state)
{
    (void)state;
    int fd = fresh(0);
    uint8_t data[8192];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(pwrite(fd, data, sizeof data, 0), (ssize_t)sizeof data);
    assert_int_equal(posix_fallocate(fd, 0, 1 << 20), 0);
    assert_size(fd, 1 << 20);
    uint8_t back[sizeof data];
    assert_int_equal(pread(fd, back, sizeof back, 0), (ssize_t)sizeof back);
    assert_memory_equal(back, data, sizeof data);
    close(fd);
    unlink(path);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    int fd = fresh(0);
    assert_int_equal(posix_fallocate(fd, -1, 4096), EINVAL);
    assert_int_equal(posix_fallocate(fd, 0, 0), EINVAL);
    assert_int_equal(posix_fallocate(fd, INT64_MAX - 10, 4096), EINVAL);
    close(fd);
    unlink(path);
    assert_int_equal(posix_fallocate(fd, 0, 4096), EBADF); /* closed */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(posix_fallocate(p[1], 0, 4096), ESPIPE); /* libc's answer */
    close(p[0]);
    close(p[1]);
}

typedef unsigned long aio_ctx_t;

/* Whether AIO context ctx is still there (io_getevents answers, not EINVAL). */
static bool context_alive(aio_ctx_t ctx)
{
    struct {
        uint64_t data, obj;
        int64_t res, res2;
    } ev[1];
    struct timespec zero = {0, 0};
    return syscall(SYS_io_getevents, ctx, 0L, 1L, ev, &zero) >= 0;
}

/* A descriptor open for reading only: libc's answer, nothing written. */
static void test_read_only_descriptor(void **state)
{
    (void)state;
    close(fresh(0));
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(posix_fallocate(fd, 0, 1 << 20), EBADF);
    assert_size(fd, 0);
    close(fd);
    unlink(path);
}

/* The deferred destroy waits here until the test has looked. */
static sem_t hook_release;
static int hook_calls;

void orbit_consensus_segments_destroy_hook(unsigned long ctx);
void orbit_consensus_segments_destroy_hook(unsigned long ctx)
{
    (void)ctx;
    __atomic_add_fetch(&hook_calls, 1, __ATOMIC_SEQ_CST);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10; /* bounded: a failed test must not hang the thread */
    while (sem_timedwait(&hook_release, &until) != 0 && errno == EINTR)
        ;
}

/* A context with a write in flight (submitted, not reaped) is destroyed in
 * place: io_destroy waits for the write, and the context is gone when it
 * returns (raft frees the write's buffer after that). */
static void test_io_destroy_with_a_write_in_flight(void **state)
{
    (void)state;
    if (on_tmpfs)
        skip(); /* O_DIRECT */
    int fd = fresh(O_DIRECT);
    void *buf = NULL;
    assert_int_equal(posix_memalign(&buf, 4096, 4096), 0);
    memset(buf, 7, 4096);
    aio_ctx_t ctx = 0;
    assert_int_equal(syscall(SYS_io_setup, 1L, &ctx), 0);
    struct iocb cb = {0};
    cb.aio_lio_opcode = IOCB_CMD_PWRITE;
    cb.aio_fildes = (uint32_t)fd;
    cb.aio_buf = (uint64_t)(uintptr_t)buf;
    cb.aio_nbytes = 4096;
    struct iocb *cbs[1] = {&cb};
    assert_int_equal(syscall(SYS_io_submit, ctx, 1L, cbs), 1);
    int calls = __atomic_load_n(&hook_calls, __ATOMIC_SEQ_CST);
    assert_int_equal(syscall(SYS_io_destroy, ctx), 0);
    assert_false(context_alive(ctx)); /* destroyed before the call returned */
    assert_int_equal(__atomic_load_n(&hook_calls, __ATOMIC_SEQ_CST), calls); /* not deferred */
    free(buf);
    assert_size(fd, 4096); /* the write was done, not lost */
    close(fd);
    unlink(path);
}

static void test_io_destroy_is_deferred(void **state)
{
    (void)state;
    assert_int_equal(sem_init(&hook_release, 0, 0), 0);
    int calls = __atomic_load_n(&hook_calls, __ATOMIC_SEQ_CST);
    aio_ctx_t ctx = 0;
    assert_int_equal(syscall(SYS_io_setup, 1L, &ctx), 0); /* passed on, and known */
    assert_true(context_alive(ctx));
    assert_int_equal(syscall(SYS_io_destroy, ctx), 0);
    /* Returned while the thread holds the destroy: the context is there. */
    assert_true(context_alive(ctx));
    sem_post(&hook_release);
    bool alive = true;
    for (int i = 0; i < 500 && alive; i++) {
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        alive = context_alive(ctx);
    }
    assert_false(alive); /* destroyed, by the thread, within 5 s */
    assert_int_equal(__atomic_load_n(&hook_calls, __ATOMIC_SEQ_CST), calls + 1);
    /* Forgotten: a second destroy is made in place, and libc's answer is
     * EINVAL. */
    errno = 0;
    assert_int_equal(syscall(SYS_io_destroy, ctx), -1);
    assert_int_equal(errno, EINVAL);
    sem_destroy(&hook_release);
}

static void test_other_syscalls_pass_on(void **state)
{
    (void)state;
    assert_int_equal(syscall(SYS_getpid), getpid());
    errno = 0;
    assert_int_equal(syscall(100000L), -1);
    assert_int_equal(errno, ENOSYS);
    int p[2];
    assert_int_equal(syscall(SYS_pipe2, p, 0), 0); /* arguments passed on */
    assert_int_equal(syscall(SYS_write, p[1], "xy", 2L), 2);
    char buf[2];
    assert_int_equal(read(p[0], buf, 2), 2);
    assert_memory_equal(buf, "xy", 2);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_segment_is_written_zeros),
        cmocka_unit_test(test_unaligned_tail_range),
        cmocka_unit_test(test_existing_bytes_kept),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_read_only_descriptor),
        cmocka_unit_test(test_io_destroy_with_a_write_in_flight),
        cmocka_unit_test(test_io_destroy_is_deferred),
        cmocka_unit_test(test_other_syscalls_pass_on),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
