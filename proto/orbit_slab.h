/* orbit_slab: records of one size carved from 2 MiB blocks that the kernel
 * may back with huge pages (MADV_HUGEPAGE), with a free list; and large
 * zeroed arrays mapped the same way.
 *
 * Why: a scheduling view reads its node, placement and bind records, and
 * the slots of its hash tables, at random. With 4 KiB pages nearly each
 * such read also misses the TLB, and the first touch of every page is a
 * fault (dear in a VM); one 2 MiB page covers 512 of them. Where the kernel
 * gives no huge page (transparent huge pages off), the memory is ordinary
 * pages, and only as fast as before.
 *
 * Under AddressSanitizer free records and the unused rest of a block are
 * poisoned, so its use-after-free and overflow checks still hold.
 *
 * Thread rules: one thread at a time per slab; the array calls are
 * stateless. */
#ifndef ORBIT_SLAB_H
#define ORBIT_SLAB_H

#include <stddef.h>

/* The size of a block, and the least array orbit_huge_calloc maps itself. */
#define ORBIT_SLAB_BLOCK (2u << 20)

typedef struct orbit_slab orbit_slab_t;

/* A slab of records of size bytes, each aligned to align (a power of two,
 * 16 to 4096). A block's first align bytes (at least a pointer's) link the
 * slab's blocks. NULL on a bad size or align (size 0, or more than a block
 * holds after that) or out of memory. */
orbit_slab_t *orbit_slab_new(size_t size, size_t align);
/* Every record goes with the slab. */
void orbit_slab_destroy(orbit_slab_t **ps);

/* A zeroed record; NULL out of memory. */
void *orbit_slab_alloc(orbit_slab_t *s);
/* Give record p (from s; NULL: nothing) back. */
void orbit_slab_free(orbit_slab_t *s, void *p);

/* Records handed out and not given back; blocks mapped. */
size_t orbit_slab_live(const orbit_slab_t *s);
size_t orbit_slab_blocks(const orbit_slab_t *s);

/* n zeroed elements of size bytes: calloc below ORBIT_SLAB_BLOCK bytes,
 * else a mapping of its own with MADV_HUGEPAGE. NULL on overflow or out of
 * memory. Give it back with orbit_huge_free and the same n and size. */
void *orbit_huge_calloc(size_t n, size_t size);
void orbit_huge_free(void *p, size_t n, size_t size);

#endif
