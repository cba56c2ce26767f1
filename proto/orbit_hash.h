/* orbit_hash: FNV-1a, 64 bits, for the project's in-memory hash tables and
 * stable identifiers (the same bytes hash alike in every process and
 * version). Callers that must resist crafted keys mix in a seed of their
 * own. */
#ifndef ORBIT_HASH_H
#define ORBIT_HASH_H

#include <stddef.h>
#include <stdint.h>

#define ORBIT_FNV_OFFSET 14695981039346656037ULL
#define ORBIT_FNV_PRIME  1099511628211ULL

/* h advanced over the n bytes at p (start from ORBIT_FNV_OFFSET). */
static inline uint64_t orbit_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * ORBIT_FNV_PRIME;
    return h;
}

/* The same over the bytes of the string s (without its NUL; NULL hashes
 * as empty). */
static inline uint64_t orbit_fnv1a_str(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * ORBIT_FNV_PRIME;
    return h;
}

#endif
