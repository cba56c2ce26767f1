/* orbit_slab: records in huge-page blocks (see orbit_slab.h). */
#include "orbit_slab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <sanitizer/asan_interface.h>

/* Each block starts with the address of the block before it (the slab's
 * list of blocks, for destroy); records follow, from the first boundary of
 * their alignment. */
struct orbit_slab {
    size_t size;  /* a record, rounded up to its alignment */
    size_t first; /* offset of a block's first record */
    void *last;   /* the newest block; each holds the one before */
    size_t nblocks;
    char *next, *end; /* the unused rest of the newest block */
    void *free;       /* given back: each holds the next in its first bytes */
    size_t live;
};

/* A block on a block boundary (so that it can be one huge page), advised
 * as such. NULL out of memory. */
static void *block_map(void)
{
    size_t want = 2 * (size_t)ORBIT_SLAB_BLOCK;
    char *m = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uintptr_t at = ((uintptr_t)m + ORBIT_SLAB_BLOCK - 1) & ~(uintptr_t)(ORBIT_SLAB_BLOCK - 1);
    char *b = (char *)at;
    if (b > m)
        munmap(m, (size_t)(b - m));
    size_t tail = (size_t)(m + want - (b + ORBIT_SLAB_BLOCK));
    if (tail)
        munmap(b + ORBIT_SLAB_BLOCK, tail);
    madvise(b, ORBIT_SLAB_BLOCK, MADV_HUGEPAGE); /* advice: refused, ordinary pages */
    return b;
}

orbit_slab_t *orbit_slab_new(size_t size, size_t align)
{
    if (!size || align < 16 || align > 4096 || (align & (align - 1)))
        return NULL;
    size_t first = (sizeof(void *) + align - 1) & ~(align - 1);
    if (size > ORBIT_SLAB_BLOCK - first)
        return NULL;
    orbit_slab_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->size = (size + align - 1) & ~(align - 1);
    s->first = first;
    return s;
}

void orbit_slab_destroy(orbit_slab_t **ps)
{
    if (!ps || !*ps)
        return;
    orbit_slab_t *s = *ps;
    for (void *b = s->last, *prev; b; b = prev) {
        memcpy(&prev, b, sizeof prev); /* the header is never poisoned */
        ASAN_UNPOISON_MEMORY_REGION(b, ORBIT_SLAB_BLOCK);
        munmap(b, ORBIT_SLAB_BLOCK);
    }
    free(s);
    *ps = NULL;
}

void *orbit_slab_alloc(orbit_slab_t *s)
{
    char *p;
    if (s->free) {
        p = s->free;
        ASAN_UNPOISON_MEMORY_REGION(p, s->size);
        memcpy(&s->free, p, sizeof s->free);
    } else {
        if ((size_t)(s->end - s->next) < s->size) {
            char *b = block_map();
            if (!b)
                return NULL;
            memcpy(b, &s->last, sizeof s->last);
            s->last = b;
            s->nblocks++;
            s->next = b + s->first;
            s->end = b + ORBIT_SLAB_BLOCK;
            ASAN_POISON_MEMORY_REGION(s->next, ORBIT_SLAB_BLOCK - s->first);
        }
        p = s->next;
        s->next += s->size;
        ASAN_UNPOISON_MEMORY_REGION(p, s->size);
    }
    memset(p, 0, s->size); /* a fresh block is zero already; a reused record is not */
    s->live++;
    return p;
}

void orbit_slab_free(orbit_slab_t *s, void *p)
{
    if (!p)
        return;
    memcpy(p, &s->free, sizeof s->free);
    s->free = p;
    s->live--;
    ASAN_POISON_MEMORY_REGION(p, s->size);
}

size_t orbit_slab_live(const orbit_slab_t *s)
{
    return s ? s->live : 0;
}

size_t orbit_slab_blocks(const orbit_slab_t *s)
{
    return s ? s->nblocks : 0;
}

void *orbit_huge_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t len = n * size;
    if (len < ORBIT_SLAB_BLOCK)
        return calloc(n ? n : 1, size ? size : 1);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, len, MADV_HUGEPAGE);
    return p;
}

void orbit_huge_free(void *p, size_t n, size_t size)
{
    if (!p)
        return;
    if (n * size < ORBIT_SLAB_BLOCK)
        free(p);
    else
        munmap(p, n * size);
}
